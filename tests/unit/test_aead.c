/* AES-256-GCM against the GCM specification's AES-256 vectors, round trips,
 * forgery rejection, and the text form stored in the database. */
#include <stdlib.h>
#include <string.h>

#include <apr_base64.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_aead.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static apr_size_t unhex(const char *hex, unsigned char *out)
{
    apr_size_t i, n = strlen(hex) / 2;
    for (i = 0; i < n; i++) {
        char byte[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        out[i] = (unsigned char)strtoul(byte, NULL, 16);
    }
    return n;
}

static const char *tohex(const unsigned char *b, apr_size_t n)
{
    char *s = apr_palloc(pool, 2 * n + 1);
    apr_size_t i;
    for (i = 0; i < n; i++) {
        apr_snprintf(s + 2 * i, 3, "%02x", b[i]);
    }
    s[2 * n] = '\0';
    return s;
}

typedef struct {
    const char *name, *key, *iv, *aad, *plain, *cipher, *tag;
} gcm_vector;

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16 (AES-256).
   Case 13 is E(K, J0) alone, so it pins the block cipher on an all-zero key. */
static const gcm_vector vectors[] = {
    {"case 13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"case 14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"case 15", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"case 16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

static void test_vectors(void)
{
    apr_size_t v;

    for (v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
        const gcm_vector *t = &vectors[v];
        unsigned char key[32], iv[12], aad[64], plain[64], out[80], back[64];
        apr_size_t aad_len, len;

        S2A_CHECK_INT(unhex(t->key, key), S2A_AEAD_KEY_LEN);
        S2A_CHECK_INT(unhex(t->iv, iv), S2A_AEAD_NONCE_LEN);
        aad_len = unhex(t->aad, aad);
        len = unhex(t->plain, plain);

        s2a_aead_seal(key, iv, aad_len ? aad : NULL, aad_len, plain, len, out);
        S2A_CHECK_STR(tohex(out, len), t->cipher);
        S2A_CHECK_STR(tohex(out + len, S2A_AEAD_TAG_LEN), t->tag);

        memset(back, 0xaa, sizeof(back));
        S2A_CHECK_INT(s2a_aead_open(key, iv, aad, aad_len, out, len + S2A_AEAD_TAG_LEN, back), 0);
        S2A_CHECK(memcmp(back, plain, len) == 0);
    }
}

static void fill(unsigned char *b, apr_size_t n, unsigned seed)
{
    apr_size_t i;
    for (i = 0; i < n; i++) {
        b[i] = (unsigned char)(seed * 131 + i * 29 + (i >> 3));
    }
}

static void test_round_trip(void)
{
    unsigned char key[32], nonce[12], aad[32], plain[100], sealed[116], back[100];
    apr_size_t len;
    int all_ok = 1, all_differ = 1;

    fill(key, sizeof(key), 1);
    fill(nonce, sizeof(nonce), 2);
    for (len = 0; len <= 100; len++) {
        apr_size_t aad_len = len % 23;
        fill(plain, len, (unsigned)len);
        fill(aad, aad_len, (unsigned)len + 7);
        s2a_aead_seal(key, nonce, aad, aad_len, plain, len, sealed);
        if (len > 0 && memcmp(sealed, plain, len) == 0) {
            all_differ = 0;
        }
        memset(back, 0x5a, sizeof(back));
        if (s2a_aead_open(key, nonce, aad, aad_len, sealed, len + 16, back) != 0 ||
            memcmp(back, plain, len) != 0) {
            all_ok = 0;
        }
    }
    S2A_CHECK(all_ok);
    S2A_CHECK(all_differ);

    /* Sealing and opening in place, as the buffers may alias. */
    fill(plain, 50, 9);
    memcpy(sealed, plain, 50);
    s2a_aead_seal(key, nonce, NULL, 0, sealed, 50, sealed);
    S2A_CHECK(memcmp(sealed, plain, 50) != 0);
    S2A_CHECK_INT(s2a_aead_open(key, nonce, NULL, 0, sealed, 66, sealed), 0);
    S2A_CHECK(memcmp(sealed, plain, 50) == 0);
}

static int all_zero(const unsigned char *b, apr_size_t n)
{
    apr_size_t i;
    for (i = 0; i < n; i++) {
        if (b[i]) {
            return 0;
        }
    }
    return 1;
}

static void test_tamper(void)
{
    enum { LEN = 37, AAD_LEN = 11 };
    unsigned char key[32], nonce[12], aad[AAD_LEN], plain[LEN], sealed[LEN + 16], back[LEN];
    apr_size_t i;
    int rejected = 1, zeroed = 1;
    const unsigned char flips[] = {0x01, 0x80, 0xff};
    apr_size_t f;

    fill(key, sizeof(key), 3);
    fill(nonce, sizeof(nonce), 4);
    fill(aad, sizeof(aad), 5);
    fill(plain, sizeof(plain), 6);
    s2a_aead_seal(key, nonce, aad, AAD_LEN, plain, LEN, sealed);
    S2A_CHECK_INT(s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, sizeof(sealed), back), 0);

    for (f = 0; f < sizeof(flips); f++) {
        for (i = 0; i < sizeof(sealed); i++) {
            sealed[i] ^= flips[f];
            memset(back, 0xee, sizeof(back));
            if (s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, sizeof(sealed), back) != -1) {
                rejected = 0;
            }
            if (!all_zero(back, sizeof(back))) {
                zeroed = 0;
            }
            sealed[i] ^= flips[f];
        }
        for (i = 0; i < sizeof(nonce); i++) {
            nonce[i] ^= flips[f];
            if (s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, sizeof(sealed), back) != -1) {
                rejected = 0;
            }
            nonce[i] ^= flips[f];
        }
        for (i = 0; i < sizeof(aad); i++) {
            aad[i] ^= flips[f];
            if (s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, sizeof(sealed), back) != -1) {
                rejected = 0;
            }
            aad[i] ^= flips[f];
        }
        for (i = 0; i < sizeof(key); i++) {
            key[i] ^= flips[f];
            if (s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, sizeof(sealed), back) != -1) {
                rejected = 0;
            }
            key[i] ^= flips[f];
        }
    }
    S2A_CHECK(rejected);
    S2A_CHECK(zeroed);

    /* Dropped aad, shortened or extended aad, truncated input, input shorter than a tag. */
    S2A_CHECK_INT(s2a_aead_open(key, nonce, NULL, 0, sealed, sizeof(sealed), back), -1);
    S2A_CHECK_INT(s2a_aead_open(key, nonce, aad, AAD_LEN - 1, sealed, sizeof(sealed), back), -1);
    S2A_CHECK_INT(s2a_aead_open(key, nonce, sealed, AAD_LEN + 1, sealed, sizeof(sealed), back), -1);
    S2A_CHECK_INT(s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, sizeof(sealed) - 1, back), -1);
    S2A_CHECK_INT(s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, 15, back), -1);
    S2A_CHECK_INT(s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, 0, back), -1);

    /* Untouched input still opens after all that. */
    S2A_CHECK_INT(s2a_aead_open(key, nonce, aad, AAD_LEN, sealed, sizeof(sealed), back), 0);
    S2A_CHECK(memcmp(back, plain, LEN) == 0);
}

static void test_text(void)
{
    static const char aad[] = "account-credential";
    static const char *plains[] = {"", "x", "sk-ant-oat01-abcdefghijklmnopqrstuvwxyz0123456789",
                                   "{\"refresh_token\":\"r\",\"access\":\"\xc3\xa9t\xc3\xa9\"}"};
    unsigned char key[32], other[32];
    apr_size_t i;
    char *s, *s2, *bad;
    char *long_plain;

    fill(key, sizeof(key), 11);
    memcpy(other, key, sizeof(key));
    other[31] ^= 1;

    for (i = 0; i < sizeof(plains) / sizeof(plains[0]); i++) {
        s = s2a_aead_seal_text(pool, key, aad, plains[i]);
        S2A_CHECK(s != NULL);
        S2A_CHECK(s2a_aead_is_sealed(s));
        /* Short secrets may turn up in base64 by chance; longer ones must not show. */
        S2A_CHECK(strlen(plains[i]) < 8 || strstr(s, plains[i]) == NULL);
        S2A_CHECK_STR(s2a_aead_open_text(pool, key, aad, s), plains[i]);
        S2A_CHECK(s2a_aead_open_text(pool, other, aad, s) == NULL);
        S2A_CHECK(s2a_aead_open_text(pool, key, "user-secret", s) == NULL);
        S2A_CHECK(s2a_aead_open_text(pool, key, "", s) == NULL);
    }

    long_plain = apr_palloc(pool, 5001);
    memset(long_plain, 'q', 5000);
    long_plain[5000] = '\0';
    s = s2a_aead_seal_text(pool, key, aad, long_plain);
    S2A_CHECK_STR(s2a_aead_open_text(pool, key, aad, s), long_plain);

    /* A fresh nonce each time: equal secrets do not give equal column values. */
    s = s2a_aead_seal_text(pool, key, aad, "same");
    s2 = s2a_aead_seal_text(pool, key, aad, "same");
    S2A_CHECK(strcmp(s, s2) != 0);
    S2A_CHECK_INT(strlen(s), strlen("s2a-gcm1:") + apr_base64_encode_len(12 + 4 + 16) - 1);
    S2A_CHECK_STR(s2a_aead_open_text(pool, key, aad, s2), "same");

    /* NULL aad is the empty aad. */
    s = s2a_aead_seal_text(pool, key, NULL, "n");
    S2A_CHECK_STR(s2a_aead_open_text(pool, key, "", s), "n");

    /* Truncated: a whole base64 quantum off (valid base64, tag fails), one char off. */
    s = s2a_aead_seal_text(pool, key, aad, "a longer secret value here");
    bad = apr_pstrndup(pool, s, strlen(s) - 4);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, bad) == NULL);
    bad = apr_pstrndup(pool, s, strlen(s) - 1);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, bad) == NULL);
    bad = apr_pstrndup(pool, s, strlen("s2a-gcm1:") + 36);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, bad) == NULL);

    /* A changed base64 character anywhere. */
    {
        int rejected = 1;
        apr_size_t j, n = strlen(s);
        for (j = strlen("s2a-gcm1:"); j < n; j++) {
            bad = apr_pstrdup(pool, s);
            bad[j] = bad[j] == 'A' ? 'B' : 'A';
            if (s2a_aead_open_text(pool, key, aad, bad) != NULL) {
                rejected = 0;
            }
        }
        S2A_CHECK(rejected);
    }

    /* Garbage. */
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, NULL) == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, "") == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, "sk-ant-plain-secret") == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, "s2a-gcm1:") == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, "s2a-gcm1:!!!!") == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, "s2a-gcm1:AAAA") == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, "s2a-gcm1:====") == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, apr_pstrcat(pool, s, "AAAA", NULL)) == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad, apr_pstrcat(pool, s, " ", NULL)) == NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad,
                                 apr_pstrcat(pool, "S2A-GCM1:", s + strlen("s2a-gcm1:"), NULL)) ==
              NULL);
    S2A_CHECK(s2a_aead_open_text(pool, key, aad,
                                 "s2a-gcm1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == NULL);

    S2A_CHECK_INT(s2a_aead_is_sealed("s2a-gcm1:"), 1);
    S2A_CHECK_INT(s2a_aead_is_sealed("s2a-gcm1:abcd"), 1);
    S2A_CHECK_INT(s2a_aead_is_sealed("s2a-gcm1"), 0);
    S2A_CHECK_INT(s2a_aead_is_sealed("s2a-gcm2:abcd"), 0);
    S2A_CHECK_INT(s2a_aead_is_sealed(" s2a-gcm1:abcd"), 0);
    S2A_CHECK_INT(s2a_aead_is_sealed(""), 0);
    S2A_CHECK_INT(s2a_aead_is_sealed(NULL), 0);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_vectors();
    test_round_trip();
    test_tamper();
    test_text();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_aead");
}
