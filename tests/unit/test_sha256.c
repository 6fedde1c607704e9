/* SHA-256 against NIST vectors, HMAC-SHA256 against RFC 4231, helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "s2a_sha256.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static const char *sha_hex(const void *data, apr_size_t len)
{
    unsigned char d[S2A_SHA256_LEN];
    s2a_sha256(data, len, d);
    return s2a_hex(pool, d, sizeof(d));
}

static const char *hmac_hex(const void *key, apr_size_t klen, const void *msg, apr_size_t mlen)
{
    unsigned char d[S2A_SHA256_LEN];
    s2a_hmac_sha256(key, klen, msg, mlen, d);
    return s2a_hex(pool, d, sizeof(d));
}

static void test_nist(void)
{
    static const char m448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    static const char m896[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                               "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    s2a_sha256_ctx c;
    unsigned char d[S2A_SHA256_LEN];
    char chunk[1000];
    int i;

    S2A_CHECK_STR(sha_hex("", 0),
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    S2A_CHECK_STR(sha_hex("abc", 3),
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    S2A_CHECK_STR(sha_hex(m448, strlen(m448)),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    S2A_CHECK_STR(sha_hex(m896, strlen(m896)),
                  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    memset(chunk, 'a', sizeof(chunk));
    s2a_sha256_init(&c);
    for (i = 0; i < 1000; i++) {
        s2a_sha256_update(&c, chunk, sizeof(chunk));
    }
    s2a_sha256_final(&c, d);
    S2A_CHECK_STR(s2a_hex(pool, d, sizeof(d)),
                  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Lengths around the padding boundary (55/56/63/64 bytes) take different final paths. */
static void test_padding_edges(void)
{
    static const struct {
        apr_size_t len;
        const char *hex;
    } v[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    };
    char buf[64];
    apr_size_t i;

    memset(buf, 'a', sizeof(buf));
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        S2A_CHECK_STR(sha_hex(buf, v[i].len), v[i].hex);
    }
}

static void test_split_updates(void)
{
    unsigned char msg[200], one[S2A_SHA256_LEN], two[S2A_SHA256_LEN], three[S2A_SHA256_LEN];
    apr_size_t i, cut;
    int mismatches = 0;

    for (i = 0; i < sizeof(msg); i++) {
        msg[i] = (unsigned char)(i * 7 + 3);
    }
    s2a_sha256(msg, sizeof(msg), one);
    for (cut = 0; cut <= sizeof(msg); cut++) {
        s2a_sha256_ctx c;
        s2a_sha256_init(&c);
        s2a_sha256_update(&c, msg, cut);
        s2a_sha256_update(&c, msg + cut, sizeof(msg) - cut);
        s2a_sha256_final(&c, two);
        if (memcmp(one, two, sizeof(one)) != 0) {
            mismatches++;
        }
    }
    S2A_CHECK_INT(mismatches, 0);

    /* Byte by byte as well. */
    {
        s2a_sha256_ctx c;
        s2a_sha256_init(&c);
        for (i = 0; i < sizeof(msg); i++) {
            s2a_sha256_update(&c, msg + i, 1);
        }
        s2a_sha256_final(&c, three);
        S2A_CHECK(memcmp(one, three, sizeof(one)) == 0);
    }
}

static void test_hmac(void)
{
    unsigned char k[131], d[50];
    int i;

    memset(k, 0x0b, 20);
    S2A_CHECK_STR(hmac_hex(k, 20, "Hi There", 8),
                  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    S2A_CHECK_STR(hmac_hex("Jefe", 4, "what do ya want for nothing?", 28),
                  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    memset(k, 0xaa, 20);
    memset(d, 0xdd, 50);
    S2A_CHECK_STR(hmac_hex(k, 20, d, 50),
                  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

    for (i = 0; i < 25; i++) {
        k[i] = (unsigned char)(i + 1);
    }
    memset(d, 0xcd, 50);
    S2A_CHECK_STR(hmac_hex(k, 25, d, 50),
                  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

    memset(k, 0xaa, 131);
    S2A_CHECK_STR(hmac_hex(k, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54),
                  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    {
        static const char m[] =
            "This is a test using a larger than block-size key and a larger than block-size "
            "data. The key needs to be hashed before being used by the HMAC algorithm.";
        S2A_CHECK_STR(hmac_hex(k, 131, m, strlen(m)),
                      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    }
}

static void test_helpers(void)
{
    static const unsigned char bin[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    unsigned char a[32], b[32];

    S2A_CHECK_STR(s2a_hex(pool, bin, sizeof(bin)), "00017f80abff");
    S2A_CHECK_STR(s2a_hex(pool, bin, 0), "");

    memset(a, 0x42, sizeof(a));
    memcpy(b, a, sizeof(b));
    S2A_CHECK_INT(s2a_ct_equal(a, b, sizeof(a)), 1);
    b[31] ^= 0x01;
    S2A_CHECK_INT(s2a_ct_equal(a, b, sizeof(a)), 0);
    b[31] ^= 0x01;
    b[0] ^= 0x80;
    S2A_CHECK_INT(s2a_ct_equal(a, b, sizeof(a)), 0);
    S2A_CHECK_INT(s2a_ct_equal(a, b, 0), 1);
}

/* The SHA-NI blocks equal the portable ones for every length up to 1,100 bytes (every
 * padding case, several blocks) of bytes that use all bit positions. */
static void test_hardware_equals_portable(void)
{
    unsigned char msg[1100], hw[S2A_SHA256_LEN], sw[S2A_SHA256_LEN];
    apr_size_t len;
    int mismatches = 0;

    for (len = 0; len < sizeof(msg); len++) {
        msg[len] = (unsigned char)(len * 151 + (len >> 3) * 29 + 0x5a);
    }
    if (!s2a_sha256_hardware(0)) {
        printf("test_sha256: no SHA-NI on this CPU, the portable blocks alone were checked\n");
        return;
    }
    for (len = 0; len <= sizeof(msg); len++) {
        s2a_sha256_hardware(0);
        s2a_sha256(msg, len, hw);
        s2a_sha256_hardware(1);
        s2a_sha256(msg, len, sw);
        if (memcmp(hw, sw, sizeof(hw)) != 0) {
            mismatches++;
        }
    }
    s2a_sha256_hardware(0);
    S2A_CHECK_INT(mismatches, 0);
}

int main(void)
{
    int portable;

    apr_initialize();
    apr_pool_create(&pool, NULL);

    /* the vectors through both block functions where the CPU has SHA-NI */
    for (portable = 1; portable >= 0; portable--) {
        s2a_sha256_hardware(portable);
        test_nist();
        test_padding_edges();
        test_split_updates();
        test_hmac();
    }
    test_hardware_equals_portable();
    test_helpers();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_sha256");
}
