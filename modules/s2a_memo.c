/* A fixed-size memory of digests: see s2a_memo.h. */
#include <string.h>

#include "s2a_memo.h"

#define WAYS 4

typedef struct {
    unsigned char digest[S2A_MEMO_DIGEST];
    apr_int64_t value;
    apr_uint64_t stamp; /* when it was put; 0: empty */
} entry_t;

struct s2a_memo {
    int nsets;
    apr_uint64_t clock;
    entry_t *entries; /* nsets * WAYS */
};

s2a_memo *s2a_memo_make(apr_pool_t *p, int capacity)
{
    s2a_memo *m = apr_pcalloc(p, sizeof(*m));
    m->nsets = capacity > WAYS ? (capacity + WAYS - 1) / WAYS : 1;
    m->entries = apr_pcalloc(p, sizeof(entry_t) * (apr_size_t)m->nsets * WAYS);
    return m;
}

/* Digests are hashes already: their first bytes pick the set. */
static entry_t *set_of(const s2a_memo *m, const unsigned char *digest)
{
    apr_uint64_t h;
    memcpy(&h, digest, sizeof(h));
    return &m->entries[(h % (apr_uint64_t)m->nsets) * WAYS];
}

int s2a_memo_get(const s2a_memo *m, const unsigned char *digest, apr_int64_t *value)
{
    entry_t *set = set_of(m, digest);
    int i;
    for (i = 0; i < WAYS; i++) {
        if (set[i].stamp && memcmp(set[i].digest, digest, S2A_MEMO_DIGEST) == 0) {
            *value = set[i].value;
            return 1;
        }
    }
    return 0;
}

void s2a_memo_put(s2a_memo *m, const unsigned char *digest, apr_int64_t value)
{
    entry_t *set = set_of(m, digest), *slot = &set[0];
    int i;
    for (i = 0; i < WAYS; i++) {
        if (set[i].stamp && memcmp(set[i].digest, digest, S2A_MEMO_DIGEST) == 0) {
            slot = &set[i];
            break;
        }
        if (set[i].stamp < slot->stamp) {
            slot = &set[i]; /* the oldest, or an empty one */
        }
    }
    memcpy(slot->digest, digest, S2A_MEMO_DIGEST);
    slot->value = value;
    slot->stamp = ++m->clock;
}

void s2a_memo_clear(s2a_memo *m)
{
    memset(m->entries, 0, sizeof(entry_t) * (apr_size_t)m->nsets * WAYS);
    m->clock = 0;
}
