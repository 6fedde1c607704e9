/* AES-256 (FIPS 197) in Galois/Counter Mode (NIST SP 800-38D), 96-bit nonces only.
 * The S-box is a plain table; GHASH multiplies bit by bit with masks, so neither
 * the hash key nor the data steers a branch or a memory index there. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <apr_base64.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_aead.h"
#include "s2a_sha256.h"

#define AES_ROUNDS 14
#define AES_RK_LEN (16 * (AES_ROUNDS + 1))
#define TEXT_PREFIX "s2a-gcm1:"
#define TEXT_PREFIX_LEN (sizeof(TEXT_PREFIX) - 1)

static const unsigned char sbox[256] = {
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
};

typedef struct {
    unsigned char rk[AES_RK_LEN]; /* expanded key, round keys back to back */
    uint64_t h_hi, h_lo;          /* hash subkey H = E(K, 0^128) */
} gcm_ctx;

static unsigned char xtime(unsigned char a)
{
    return (unsigned char)((a << 1) ^ (0x1b & -(a >> 7)));
}

static void aes_expand(unsigned char rk[AES_RK_LEN], const unsigned char key[S2A_AEAD_KEY_LEN])
{
    unsigned char rcon = 1;
    apr_size_t i;

    memcpy(rk, key, S2A_AEAD_KEY_LEN);
    for (i = S2A_AEAD_KEY_LEN; i < AES_RK_LEN; i += 4) {
        unsigned char t[4];
        memcpy(t, rk + i - 4, 4);
        if (i % S2A_AEAD_KEY_LEN == 0) {
            unsigned char t0 = t[0];
            t[0] = sbox[t[1]] ^ rcon;
            t[1] = sbox[t[2]];
            t[2] = sbox[t[3]];
            t[3] = sbox[t0];
            rcon = xtime(rcon);
        } else if (i % S2A_AEAD_KEY_LEN == 16) {
            t[0] = sbox[t[0]];
            t[1] = sbox[t[1]];
            t[2] = sbox[t[2]];
            t[3] = sbox[t[3]];
        }
        rk[i] = rk[i - S2A_AEAD_KEY_LEN] ^ t[0];
        rk[i + 1] = rk[i + 1 - S2A_AEAD_KEY_LEN] ^ t[1];
        rk[i + 2] = rk[i + 2 - S2A_AEAD_KEY_LEN] ^ t[2];
        rk[i + 3] = rk[i + 3 - S2A_AEAD_KEY_LEN] ^ t[3];
    }
}

/* SubBytes then ShiftRows; the state is column-major, byte r + 4c is row r, column c. */
static void sub_shift(unsigned char s[16])
{
    unsigned char t[16];
    int r, c;

    for (c = 0; c < 4; c++) {
        for (r = 0; r < 4; r++) {
            t[r + 4 * c] = sbox[s[r + 4 * ((c + r) & 3)]];
        }
    }
    memcpy(s, t, 16);
    s2a_wipe(t, sizeof(t));
}

static void mix_columns(unsigned char s[16])
{
    int c;

    for (c = 0; c < 4; c++) {
        unsigned char *a = s + 4 * c;
        unsigned char a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
        unsigned char all = a0 ^ a1 ^ a2 ^ a3;
        a[0] = a0 ^ all ^ xtime(a0 ^ a1);
        a[1] = a1 ^ all ^ xtime(a1 ^ a2);
        a[2] = a2 ^ all ^ xtime(a2 ^ a3);
        a[3] = a3 ^ all ^ xtime(a3 ^ a0);
    }
}

static void add_round_key(unsigned char s[16], const unsigned char *k)
{
    int i;
    for (i = 0; i < 16; i++) {
        s[i] ^= k[i];
    }
}

static void aes_encrypt(const unsigned char rk[AES_RK_LEN], const unsigned char in[16],
                        unsigned char out[16])
{
    unsigned char s[16];
    int round;

    memcpy(s, in, 16);
    add_round_key(s, rk);
    for (round = 1; round < AES_ROUNDS; round++) {
        sub_shift(s);
        mix_columns(s);
        add_round_key(s, rk + 16 * round);
    }
    sub_shift(s);
    add_round_key(s, rk + 16 * AES_ROUNDS);
    memcpy(out, s, 16);
    s2a_wipe(s, sizeof(s));
}

static uint64_t load_be64(const unsigned char *b)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = (v << 8) | b[i];
    }
    return v;
}

static void store_be64(unsigned char *b, uint64_t v)
{
    int i;
    for (i = 7; i >= 0; i--) {
        b[i] = (unsigned char)v;
        v >>= 8;
    }
}

static void gcm_init(gcm_ctx *g, const unsigned char key[S2A_AEAD_KEY_LEN])
{
    unsigned char h[16] = {0};

    aes_expand(g->rk, key);
    aes_encrypt(g->rk, h, h);
    g->h_hi = load_be64(h);
    g->h_lo = load_be64(h + 8);
    s2a_wipe(h, sizeof(h));
}

/* y = y * H in GF(2^128), SP 800-38D algorithm 1, with masks in place of branches. */
static void gf_mul_h(const gcm_ctx *g, uint64_t y[2])
{
    uint64_t z_hi = 0, z_lo = 0, v_hi = g->h_hi, v_lo = g->h_lo;
    int i;

    for (i = 0; i < 128; i++) {
        uint64_t bit = i < 64 ? (y[0] >> (63 - i)) & 1 : (y[1] >> (127 - i)) & 1;
        uint64_t mask = (uint64_t)0 - bit;
        uint64_t carry = (uint64_t)0 - (v_lo & 1);
        z_hi ^= v_hi & mask;
        z_lo ^= v_lo & mask;
        v_lo = (v_lo >> 1) | (v_hi << 63);
        v_hi = (v_hi >> 1) ^ (UINT64_C(0xe100000000000000) & carry);
    }
    y[0] = z_hi;
    y[1] = z_lo;
}

/* Absorbs data into the hash, the last partial block padded with zeros. */
static void ghash_update(const gcm_ctx *g, uint64_t y[2], const unsigned char *data, apr_size_t len)
{
    while (len > 0) {
        unsigned char block[16] = {0};
        apr_size_t n = len < 16 ? len : 16;
        memcpy(block, data, n);
        y[0] ^= load_be64(block);
        y[1] ^= load_be64(block + 8);
        gf_mul_h(g, y);
        data += n;
        len -= n;
    }
}

/* The tag for aad and ciphertext: GHASH with the bit lengths, masked by E(K, J0). */
static void gcm_tag(const gcm_ctx *g, const unsigned char nonce[S2A_AEAD_NONCE_LEN],
                    const unsigned char *aad, apr_size_t aad_len, const unsigned char *ct,
                    apr_size_t len, unsigned char tag[S2A_AEAD_TAG_LEN])
{
    uint64_t y[2] = {0, 0};
    unsigned char j0[16], mask[16];
    int i;

    ghash_update(g, y, aad, aad_len);
    ghash_update(g, y, ct, len);
    y[0] ^= (uint64_t)aad_len * 8;
    y[1] ^= (uint64_t)len * 8;
    gf_mul_h(g, y);

    memcpy(j0, nonce, S2A_AEAD_NONCE_LEN);
    j0[12] = 0;
    j0[13] = 0;
    j0[14] = 0;
    j0[15] = 1;
    aes_encrypt(g->rk, j0, mask);
    store_be64(tag, y[0]);
    store_be64(tag + 8, y[1]);
    for (i = 0; i < S2A_AEAD_TAG_LEN; i++) {
        tag[i] ^= mask[i];
    }
    s2a_wipe(mask, sizeof(mask));
    s2a_wipe(y, sizeof(y));
}

/* Counter mode from counter 2 (1 masks the tag); in and out may be the same buffer. */
static void gcm_ctr(const gcm_ctx *g, const unsigned char nonce[S2A_AEAD_NONCE_LEN],
                    const unsigned char *in, apr_size_t len, unsigned char *out)
{
    unsigned char cb[16], ks[16];
    uint32_t ctr = 2;
    apr_size_t off, i;

    memcpy(cb, nonce, S2A_AEAD_NONCE_LEN);
    for (off = 0; off < len; off += 16) {
        apr_size_t n = len - off < 16 ? len - off : 16;
        cb[12] = (unsigned char)(ctr >> 24);
        cb[13] = (unsigned char)(ctr >> 16);
        cb[14] = (unsigned char)(ctr >> 8);
        cb[15] = (unsigned char)ctr;
        ctr++;
        aes_encrypt(g->rk, cb, ks);
        for (i = 0; i < n; i++) {
            out[off + i] = in[off + i] ^ ks[i];
        }
    }
    s2a_wipe(ks, sizeof(ks));
}

void s2a_aead_seal(const unsigned char key[S2A_AEAD_KEY_LEN],
                   const unsigned char nonce[S2A_AEAD_NONCE_LEN], const unsigned char *aad,
                   apr_size_t aad_len, const unsigned char *plain, apr_size_t len,
                   unsigned char *out)
{
    gcm_ctx g;

    gcm_init(&g, key);
    gcm_ctr(&g, nonce, plain, len, out);
    gcm_tag(&g, nonce, aad, aad_len, out, len, out + len);
    s2a_wipe(&g, sizeof(g));
}

int s2a_aead_open(const unsigned char key[S2A_AEAD_KEY_LEN],
                  const unsigned char nonce[S2A_AEAD_NONCE_LEN], const unsigned char *aad,
                  apr_size_t aad_len, const unsigned char *in, apr_size_t len, unsigned char *out)
{
    gcm_ctx g;
    unsigned char tag[S2A_AEAD_TAG_LEN];
    apr_size_t clen;
    int ok;

    if (len < S2A_AEAD_TAG_LEN) {
        return -1;
    }
    clen = len - S2A_AEAD_TAG_LEN;
    gcm_init(&g, key);
    gcm_tag(&g, nonce, aad, aad_len, in, clen, tag);
    ok = s2a_ct_equal(tag, in + clen, S2A_AEAD_TAG_LEN);
    /* Nothing is decrypted unless the tag holds: forged input yields no plaintext. */
    if (ok) {
        gcm_ctr(&g, nonce, in, clen, out);
    } else if (clen > 0) {
        memset(out, 0, clen);
    }
    s2a_wipe(&g, sizeof(g));
    s2a_wipe(tag, sizeof(tag));
    return ok ? 0 : -1;
}

int s2a_aead_is_sealed(const char *text)
{
    return text != NULL && strncmp(text, TEXT_PREFIX, TEXT_PREFIX_LEN) == 0;
}

char *s2a_aead_seal_text(apr_pool_t *p, const unsigned char key[S2A_AEAD_KEY_LEN], const char *aad,
                         const char *plain)
{
    apr_size_t len = strlen(plain);
    apr_size_t raw_len;
    unsigned char *raw;
    char *text;

    if (!aad) {
        aad = "";
    }
    /* apr_base64 counts in int. */
    if (len > (apr_size_t)INT_MAX / 4 * 3 - S2A_AEAD_NONCE_LEN - S2A_AEAD_TAG_LEN) {
        return NULL;
    }
    raw_len = S2A_AEAD_NONCE_LEN + len + S2A_AEAD_TAG_LEN;
    raw = apr_palloc(p, raw_len);
    if (apr_generate_random_bytes(raw, S2A_AEAD_NONCE_LEN) != APR_SUCCESS) {
        return NULL;
    }
    s2a_aead_seal(key, raw, (const unsigned char *)aad, strlen(aad), (const unsigned char *)plain,
                  len, raw + S2A_AEAD_NONCE_LEN);
    text = apr_palloc(p, TEXT_PREFIX_LEN + (apr_size_t)apr_base64_encode_len((int)raw_len));
    memcpy(text, TEXT_PREFIX, TEXT_PREFIX_LEN);
    apr_base64_encode_binary(text + TEXT_PREFIX_LEN, raw, (int)raw_len);
    return text;
}

/* Strict base64: apr_base64_decode stops quietly at the first stray character. */
static int valid_base64(const char *s, apr_size_t n)
{
    apr_size_t i, pad = 0;

    if (n == 0 || n % 4 != 0) {
        return 0;
    }
    while (pad < 2 && s[n - 1 - pad] == '=') {
        pad++;
    }
    for (i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/')) {
            return 0;
        }
    }
    return 1;
}

char *s2a_aead_open_text(apr_pool_t *p, const unsigned char key[S2A_AEAD_KEY_LEN], const char *aad,
                         const char *text)
{
    const char *b64;
    apr_size_t b64_len;
    unsigned char *raw;
    char *plain;
    int raw_len;

    if (!s2a_aead_is_sealed(text)) {
        return NULL;
    }
    if (!aad) {
        aad = "";
    }
    b64 = text + TEXT_PREFIX_LEN;
    b64_len = strlen(b64);
    if (b64_len > INT_MAX || !valid_base64(b64, b64_len)) {
        return NULL;
    }
    raw = apr_palloc(p, (apr_size_t)apr_base64_decode_len(b64));
    raw_len = apr_base64_decode_binary(raw, b64);
    if (raw_len < S2A_AEAD_NONCE_LEN + S2A_AEAD_TAG_LEN) {
        return NULL;
    }
    plain = apr_palloc(p, (apr_size_t)raw_len - S2A_AEAD_NONCE_LEN - S2A_AEAD_TAG_LEN + 1);
    if (s2a_aead_open(key, raw, (const unsigned char *)aad, strlen(aad), raw + S2A_AEAD_NONCE_LEN,
                      (apr_size_t)raw_len - S2A_AEAD_NONCE_LEN, (unsigned char *)plain) != 0) {
        return NULL;
    }
    plain[raw_len - S2A_AEAD_NONCE_LEN - S2A_AEAD_TAG_LEN] = '\0';
    return plain;
}
