/* SHA-256 per FIPS 180-4 and HMAC per RFC 2104. */
#include <pthread.h>
#include <string.h>

#include "s2a_sha256.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define S2A_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void compress_portable(uint32_t st[8], const unsigned char *blk)
{
    uint32_t w[64];
    uint32_t a, b, c, d, e, f, g, h;
    int i;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
               (uint32_t)blk[4 * i + 2] << 8 | (uint32_t)blk[4 * i + 3];
    }
    for (i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = st[0];
    b = st[1];
    c = st[2];
    d = st[3];
    e = st[4];
    f = st[5];
    g = st[6];
    h = st[7];
    for (i = 0; i < 64; i++) {
        uint32_t t1 =
            h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
    st[4] += e;
    st[5] += f;
    st[6] += g;
    st[7] += h;
}

#ifdef S2A_SHA_NI
/* One block with the SHA extensions (SHA-NI), four rounds per step. The instructions keep
 * the state as ABEF and CDGH, A and C in the top lanes. */
__attribute__((target("sha,sse4.1"))) static void compress_sha_ni(uint32_t st[8],
                                                                  const unsigned char *blk)
{
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i abcd = _mm_loadu_si128((const __m128i *)&st[0]);
    __m128i efgh = _mm_loadu_si128((const __m128i *)&st[4]);
    __m128i badc = _mm_shuffle_epi32(abcd, 0xB1);
    __m128i hgfe = _mm_shuffle_epi32(efgh, 0x1B);
    __m128i abef = _mm_alignr_epi8(badc, hgfe, 8);
    __m128i cdgh = _mm_blend_epi16(hgfe, badc, 0xF0);
    const __m128i abef_in = abef, cdgh_in = cdgh;
    __m128i w[4];
    int i;

    for (i = 0; i < 16; i++) {
        __m128i wk;

        if (i < 4) {
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk + 16 * i)), byte_swap);
        } else {
            /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at a time */
            __m128i t = _mm_sha256msg1_epu32(w[i % 4], w[(i + 1) % 4]);

            t = _mm_add_epi32(t, _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4));
            w[i % 4] = _mm_sha256msg2_epu32(t, w[(i + 3) % 4]);
        }
        wk = _mm_add_epi32(w[i % 4], _mm_loadu_si128((const __m128i *)&K[4 * i]));
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
    {
        __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
        __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);

        _mm_storeu_si128((__m128i *)&st[0], _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128((__m128i *)&st[4], _mm_alignr_epi8(dchg, feba, 8));
    }
}

static int sha_ni_present(void)
{
    unsigned int a, b, c, d;

    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) {
        return 0;
    }
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#endif

static pthread_once_t choice_once = PTHREAD_ONCE_INIT;
static int hardware;      /* the CPU has SHA-NI */
static int portable_only; /* set by tests to compare the two */

static void choose(void)
{
#ifdef S2A_SHA_NI
    hardware = sha_ni_present();
#endif
}

static void compress(uint32_t st[8], const unsigned char *blk)
{
    pthread_once(&choice_once, choose);
#ifdef S2A_SHA_NI
    if (hardware && !portable_only) {
        compress_sha_ni(st, blk);
        return;
    }
#endif
    compress_portable(st, blk);
}

int s2a_sha256_hardware(int portable)
{
    pthread_once(&choice_once, choose);
    portable_only = portable;
    return hardware && !portable;
}

void s2a_sha256_init(s2a_sha256_ctx *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->state, iv, sizeof(iv));
    c->bytes = 0;
    c->used = 0;
}

void s2a_sha256_update(s2a_sha256_ctx *c, const void *data, apr_size_t len)
{
    const unsigned char *in = data;

    c->bytes += len;
    if (c->used) {
        apr_size_t take = 64 - c->used;
        if (take > len) {
            take = len;
        }
        memcpy(c->block + c->used, in, take);
        c->used += take;
        in += take;
        len -= take;
        if (c->used < 64) {
            return;
        }
        compress(c->state, c->block);
        c->used = 0;
    }
    /* Whole blocks straight from the input, no copy. */
    while (len >= 64) {
        compress(c->state, in);
        in += 64;
        len -= 64;
    }
    if (len) {
        memcpy(c->block, in, len);
        c->used = len;
    }
}

void s2a_sha256_final(s2a_sha256_ctx *c, unsigned char out[S2A_SHA256_LEN])
{
    uint64_t bits = c->bytes * 8;
    int i;

    c->block[c->used++] = 0x80;
    if (c->used > 56) {
        memset(c->block + c->used, 0, 64 - c->used);
        compress(c->state, c->block);
        c->used = 0;
    }
    memset(c->block + c->used, 0, 56 - c->used);
    for (i = 0; i < 8; i++) {
        c->block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    }
    compress(c->state, c->block);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c->state[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->state[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->state[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->state[i];
    }
}

void s2a_sha256(const void *data, apr_size_t len, unsigned char out[S2A_SHA256_LEN])
{
    s2a_sha256_ctx c;

    s2a_sha256_init(&c);
    s2a_sha256_update(&c, data, len);
    s2a_sha256_final(&c, out);
}

void s2a_hmac_sha256(const void *key, apr_size_t klen, const void *msg, apr_size_t mlen,
                     unsigned char out[S2A_SHA256_LEN])
{
    unsigned char k[64], pad[64], inner[S2A_SHA256_LEN];
    s2a_sha256_ctx c;
    int i;

    memset(k, 0, sizeof(k));
    if (klen > sizeof(k)) {
        s2a_sha256(key, klen, k);
    } else if (klen) {
        memcpy(k, key, klen);
    }

    for (i = 0; i < 64; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    s2a_sha256_init(&c);
    s2a_sha256_update(&c, pad, sizeof(pad));
    s2a_sha256_update(&c, msg, mlen);
    s2a_sha256_final(&c, inner);

    for (i = 0; i < 64; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    s2a_sha256_init(&c);
    s2a_sha256_update(&c, pad, sizeof(pad));
    s2a_sha256_update(&c, inner, sizeof(inner));
    s2a_sha256_final(&c, out);
}

char *s2a_hex(apr_pool_t *p, const unsigned char *bin, apr_size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = apr_palloc(p, 2 * len + 1);
    apr_size_t i;

    for (i = 0; i < len; i++) {
        s[2 * i] = digits[bin[i] >> 4];
        s[2 * i + 1] = digits[bin[i] & 0x0f];
    }
    s[2 * len] = '\0';
    return s;
}

void s2a_wipe(void *p, apr_size_t len)
{
    volatile unsigned char *v = p;
    while (len--) {
        *v++ = 0;
    }
}

int s2a_ct_equal(const void *a, const void *b, apr_size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        diff |= x[i] ^ y[i];
    }
    return diff == 0;
}
