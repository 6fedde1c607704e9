/* A fixed-size memory of digests, each with a number: what a process
 * remembers about strangers (unknown keys, addresses that failed too
 * often) without letting them grow it. It never holds more than its
 * capacity: a new entry pushes out the oldest of its set of four. Not
 * thread-safe: callers serialize. */
#ifndef S2A_MEMO_H
#define S2A_MEMO_H

#include <apr_pools.h>

#define S2A_MEMO_DIGEST 32

typedef struct s2a_memo s2a_memo;

/* A memo of `capacity` entries (rounded up to a multiple of four), from p. */
s2a_memo *s2a_memo_make(apr_pool_t *p, int capacity);

/* 1 with *value when `digest` is remembered, else 0. */
int s2a_memo_get(const s2a_memo *m, const unsigned char *digest, apr_int64_t *value);

/* Remembers `digest` with `value` (replacing its old value). */
void s2a_memo_put(s2a_memo *m, const unsigned char *digest, apr_int64_t value);

/* Forgets everything. */
void s2a_memo_clear(s2a_memo *m);

#endif
