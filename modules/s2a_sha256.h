/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), plus hex and constant-time helpers. */
#ifndef S2A_SHA256_H
#define S2A_SHA256_H

#include <stdint.h>
#include <apr_pools.h>

#define S2A_SHA256_LEN 32

typedef struct {
    uint32_t state[8];
    uint64_t bytes;          /* total message length so far */
    unsigned char block[64]; /* pending partial block */
    apr_size_t used;         /* bytes pending in block */
} s2a_sha256_ctx;

void s2a_sha256_init(s2a_sha256_ctx *c);
void s2a_sha256_update(s2a_sha256_ctx *c, const void *data, apr_size_t len);
void s2a_sha256_final(s2a_sha256_ctx *c, unsigned char out[S2A_SHA256_LEN]);
void s2a_sha256(const void *data, apr_size_t len, unsigned char out[S2A_SHA256_LEN]);
void s2a_hmac_sha256(const void *key, apr_size_t klen, const void *msg, apr_size_t mlen,
                     unsigned char out[S2A_SHA256_LEN]);

/* Whether blocks go through the CPU's SHA extensions (x86-64 SHA-NI), found at first use;
 * `portable` != 0 makes every later block take the portable code instead, for tests that
 * compare the two. */
int s2a_sha256_hardware(int portable);

/* Lowercase hex of bin (2 * len chars + NUL), allocated from p. */
char *s2a_hex(apr_pool_t *p, const unsigned char *bin, apr_size_t len);

/* Clears len bytes of key material in a way the compiler may not drop as
 * a dead store. */
void s2a_wipe(void *p, apr_size_t len);

/* Constant-time comparison of two equal-length buffers; 1 if equal. */
int s2a_ct_equal(const void *a, const void *b, apr_size_t len);

#endif
