/* One growable byte buffer in a pool, for bodies and answers whose length is
 * known only at their end. */
#ifndef S2A_BUF_H
#define S2A_BUF_H

#include <apr_pools.h>

/* `data` holds `len` bytes and a NUL after them once anything was added
 * (NULL before). Growing doubles the capacity; the old block stays in the
 * pool until it is cleared, so a buffer of N bytes costs up to 2N. */
typedef struct {
    apr_pool_t *pool;
    char *data;
    apr_size_t len;
    apr_size_t cap;
    apr_size_t limit; /* room never grows past it unless an append needs more; 0: none */
} s2a_buf;

/* An empty buffer; `expect` (may be 0) is the room taken at the first
 * append when it is larger than what that append needs. */
void s2a_buf_init(s2a_buf *b, apr_pool_t *p, apr_size_t expect);

/* The most room growing takes (a caller that refuses more than `limit`
 * bytes then holds at most twice that in all). */
void s2a_buf_limit(s2a_buf *b, apr_size_t limit);

void s2a_buf_append(s2a_buf *b, const char *data, apr_size_t n);

/* Empties the buffer, keeping its room. */
void s2a_buf_reset(s2a_buf *b);

#endif
