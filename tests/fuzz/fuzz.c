/* What every harness shares: see fuzz.h. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "fuzz.h"

apr_size_t fuzz_allocated;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    apr_initialize();
    atexit(apr_terminate);
    return 0;
}

apr_pool_t *fuzz_pool(void)
{
    apr_pool_t *p = NULL;
    FUZZ_CHECK(apr_pool_create_unmanaged_ex(&p, NULL, NULL) == APR_SUCCESS);
    fuzz_allocated = 0;
    return p;
}

static apr_status_t free_block(void *block)
{
    free(block);
    return APR_SUCCESS;
}

/* A malloc of exactly `size` bytes, freed with the pool. */
static void *block_of(apr_pool_t *p, apr_size_t size)
{
    void *block = malloc(size ? size : 1);
    FUZZ_CHECK(block != NULL);
    apr_pool_cleanup_register(p, block, free_block, apr_pool_cleanup_null);
    return block;
}

/* The harnesses link with --wrap for these: each block the core takes is a
 * malloc of its own size, so an access past it is caught where a pool's
 * larger blocks would hide it. */
void *__wrap_apr_palloc(apr_pool_t *p, apr_size_t size)
{
    fuzz_allocated += size;
    return block_of(p, size);
}

void *__wrap_apr_pmemdup(apr_pool_t *p, const void *m, apr_size_t n)
{
    void *d;
    if (!m) {
        return NULL;
    }
    d = __wrap_apr_palloc(p, n);
    memcpy(d, m, n);
    return d;
}

char *__wrap_apr_pstrmemdup(apr_pool_t *p, const char *s, apr_size_t n)
{
    char *d;
    if (!s) {
        return NULL;
    }
    d = __wrap_apr_palloc(p, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *__wrap_apr_pstrndup(apr_pool_t *p, const char *s, apr_size_t n)
{
    const char *end;
    if (!s) {
        return NULL;
    }
    end = memchr(s, '\0', n);
    return __wrap_apr_pstrmemdup(p, s, end ? (apr_size_t)(end - s) : n);
}

char *__wrap_apr_pstrdup(apr_pool_t *p, const char *s)
{
    return s ? __wrap_apr_pstrmemdup(p, s, strlen(s)) : NULL;
}

char *fuzz_copy(apr_pool_t *p, const void *data, size_t n, int terminated)
{
    char *c = block_of(p, n + (terminated ? 1 : 0));
    if (n) {
        memcpy(c, data, n);
    }
    if (terminated) {
        c[n] = '\0';
    }
    return c;
}

uint8_t fuzz_u8(fuzz_input *in)
{
    uint8_t v = 0;
    if (in->n) {
        v = in->p[0];
        in->p++;
        in->n--;
    }
    return v;
}

uint16_t fuzz_u16(fuzz_input *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

uint64_t fuzz_u64(fuzz_input *in)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = v << 8 | fuzz_u8(in);
    }
    return v;
}

const uint8_t *fuzz_take(fuzz_input *in, size_t want, size_t *len)
{
    const uint8_t *at = in->p;
    *len = want < in->n ? want : in->n;
    in->p += *len;
    in->n -= *len;
    return at;
}
