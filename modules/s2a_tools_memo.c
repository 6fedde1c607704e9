/* Translations of tools arrays, remembered by their bytes: see s2a_tools_memo.h. */
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_thread_rwlock.h>

#include "s2a_tools_memo.h"

typedef struct {
    char *data;     /* the array's bytes, its translation's, the aside; malloc'd */
    apr_size_t cap; /* data's room */
    apr_size_t len; /* the array's length; 0: empty slot */
    apr_size_t out_len;
    apr_size_t aside_len;
    int door;
    int count;
    apr_uint32_t used; /* the memo's clock when last found or put */
} slot_t;

struct s2a_tools_memo {
    apr_thread_rwlock_t *lock; /* readers copy out; a writer replaces a slot */
    apr_uint32_t clock;
    apr_size_t max_len;
    int nslots;
    slot_t *slots;
};

static apr_status_t memo_free(void *data)
{
    s2a_tools_memo *m = data;
    int i;

    for (i = 0; i < m->nslots; i++) {
        free(m->slots[i].data);
        m->slots[i].data = NULL;
    }
    return APR_SUCCESS;
}

s2a_tools_memo *s2a_tools_memo_make(apr_pool_t *p, int slots, apr_size_t max_len)
{
    s2a_tools_memo *m = apr_pcalloc(p, sizeof(*m));

    if (apr_thread_rwlock_create(&m->lock, p) != APR_SUCCESS) {
        return NULL;
    }
    m->nslots = slots > 0 ? slots : 1;
    m->max_len = max_len;
    m->slots = apr_pcalloc(p, sizeof(slot_t) * (apr_size_t)m->nslots);
    apr_pool_cleanup_register(p, m, memo_free, apr_pool_cleanup_null);
    return m;
}

static slot_t *find(s2a_tools_memo *m, int door, const char *tools, apr_size_t len)
{
    int i;

    for (i = 0; i < m->nslots; i++) {
        slot_t *s = &m->slots[i];
        if (s->len == len && s->door == door && memcmp(s->data, tools, len) == 0) {
            return s;
        }
    }
    return NULL;
}

int s2a_tools_memo_get(s2a_tools_memo *m, int door, const char *tools, apr_size_t len, s2a_buf *b,
                       s2a_buf *aside, int *count)
{
    slot_t *s;

    if (!m || !len || len > m->max_len || apr_thread_rwlock_rdlock(m->lock) != APR_SUCCESS) {
        return 0;
    }
    if ((s = find(m, door, tools, len)) != NULL) {
        s2a_buf_append(b, s->data + s->len, s->out_len);
        if (aside) {
            s2a_buf_append(aside, s->data + s->len + s->out_len, s->aside_len);
        }
        *count = s->count;
        apr_atomic_set32(&s->used, apr_atomic_inc32(&m->clock) + 1);
    }
    apr_thread_rwlock_unlock(m->lock);
    return s != NULL;
}

void s2a_tools_memo_put(s2a_tools_memo *m, int door, const char *tools, apr_size_t len,
                        const char *out, apr_size_t out_len, const char *aside,
                        apr_size_t aside_len, int count)
{
    apr_size_t need = len + out_len + aside_len;
    slot_t *s;
    int i;

    if (!m || !len || len > m->max_len || apr_thread_rwlock_wrlock(m->lock) != APR_SUCCESS) {
        return;
    }
    /* another thread may have put the same array meanwhile */
    if (!find(m, door, tools, len)) {
        for (s = &m->slots[0], i = 1; i < m->nslots; i++) {
            if (m->slots[i].used < s->used) {
                s = &m->slots[i]; /* the least recently used, or an empty one */
            }
        }
        s->len = 0;
        if (s->cap < need) {
            char *data = malloc(need);
            if (data) {
                free(s->data);
                s->data = data;
                s->cap = need;
            }
        }
        if (s->cap >= need) {
            memcpy(s->data, tools, len);
            memcpy(s->data + len, out, out_len);
            if (aside_len) {
                memcpy(s->data + len + out_len, aside, aside_len);
            }
            s->len = len;
            s->out_len = out_len;
            s->aside_len = aside_len;
            s->door = door;
            s->count = count;
            s->used = apr_atomic_inc32(&m->clock) + 1;
        }
    }
    apr_thread_rwlock_unlock(m->lock);
}
