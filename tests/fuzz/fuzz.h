/* What every harness shares: APR started once, a fresh pool per input, the
 * core's pool allocations made visible to AddressSanitizer, checks that
 * abort, and the input read as parameters and pieces. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <apr_pools.h>

/* A property the API promises: a failure is a crash libFuzzer keeps. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A pool of its own, with its own allocator: destroying it gives every byte
 * back, so LeakSanitizer sees what the input left behind. */
apr_pool_t *fuzz_pool(void);

/* Bytes the core asked its pools for (apr_palloc and the dup functions)
 * since the last fuzz_pool(). */
extern apr_size_t fuzz_allocated;

/* A copy of data[0..n) in a block of exactly n bytes, or n + 1 with a NUL
 * (`terminated`): reading past it is an error ASan reports. Freed with the
 * pool. */
char *fuzz_copy(apr_pool_t *p, const void *data, size_t n, int terminated);

/* The input read from the front: parameters first, then the rest. Reads
 * past the end give zeros. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_input;

uint8_t fuzz_u8(fuzz_input *in);
uint16_t fuzz_u16(fuzz_input *in);
uint64_t fuzz_u64(fuzz_input *in);

/* The next `want` bytes (fewer at the end) as a piece; *len gets its size. */
const uint8_t *fuzz_take(fuzz_input *in, size_t want, size_t *len);

#endif
