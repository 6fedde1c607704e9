#include <string.h>

#include <apr_atomic.h>

#include "s2a_sha256.h"
#include "s2a_state.h"

typedef struct {
    apr_uint32_t generation;
    apr_uint32_t nslots;
    s2a_account_state slots[];
} shared_t;

struct s2a_state {
    shared_t *shm;
    apr_proc_mutex_t *mutex;
};

apr_int64_t s2a_state_key(const char *credential)
{
    unsigned char d[S2A_SHA256_LEN];
    apr_uint64_t k = 0;
    int i;
    s2a_sha256(credential, strlen(credential), d);
    for (i = 0; i < 8; i++) {
        k = (k << 8) | d[i];
    }
    k &= 0x7fffffffffffffffULL;
    return k ? (apr_int64_t)k : 1;
}

apr_size_t s2a_state_size(int nslots)
{
    return sizeof(shared_t) + (apr_size_t)nslots * sizeof(s2a_account_state);
}

s2a_state *s2a_state_init(apr_pool_t *p, void *base, int nslots, apr_proc_mutex_t *mutex)
{
    s2a_state *st = apr_pcalloc(p, sizeof(*st));
    st->shm = base;
    st->shm->nslots = (apr_uint32_t)nslots;
    st->mutex = mutex;
    return st;
}

apr_uint32_t s2a_state_generation(s2a_state *st)
{
    return apr_atomic_read32(&st->shm->generation);
}

void s2a_state_bump(s2a_state *st)
{
    apr_atomic_inc32(&st->shm->generation);
}

/* Open addressing on the account id; the caller holds the mutex. */
static s2a_account_state *slot(s2a_state *st, apr_int64_t id, int create)
{
    apr_uint32_t n = st->shm->nslots, i, h = (apr_uint32_t)((apr_uint64_t)id % n);
    for (i = 0; i < n; i++) {
        s2a_account_state *s = &st->shm->slots[(h + i) % n];
        if (s->key == id) {
            return s;
        }
        if (s->key == 0) {
            if (!create) {
                return NULL;
            }
            memset(s, 0, sizeof(*s));
            s->key = id;
            return s;
        }
    }
    return NULL;
}

static int lock(s2a_state *st)
{
    return apr_proc_mutex_lock(st->mutex) == APR_SUCCESS;
}

static void unlock(s2a_state *st)
{
    apr_proc_mutex_unlock(st->mutex);
}

/* <0, 0, >0 as a's load (in flight / concurrency) is below, equal to or
 * above b's; no limit counts as no load. */
static int load_cmp(const s2a_account_state *a, int ca, const s2a_account_state *b, int cb)
{
    apr_int64_t la = ca ? (apr_int64_t)a->in_flight * (cb ? cb : 1) : 0;
    apr_int64_t lb = cb ? (apr_int64_t)b->in_flight * (ca ? ca : 1) : 0;
    return la < lb ? -1 : la > lb;
}

static int better(const s2a_candidate *c, const s2a_account_state *s, const s2a_candidate *bc,
                  const s2a_account_state *bs)
{
    int l;
    if (c->priority != bc->priority) {
        return c->priority < bc->priority;
    }
    l = load_cmp(s, c->concurrency, bs, bc->concurrency);
    return l ? l < 0 : s->last_used < bs->last_used;
}

int s2a_state_pick(s2a_state *st, const s2a_candidate *c, int n, apr_time_t now)
{
    int i, best = S2A_PICK_NONE, busy = 0;
    s2a_account_state *bs = NULL;
    if (!lock(st)) {
        return S2A_PICK_NONE;
    }
    for (i = 0; i < n; i++) {
        s2a_account_state *s = slot(st, c[i].key, 1);
        if (!s) {
            continue;
        }
        if (s->error || s->rate_limited_until > now || s->overloaded_until > now) {
            continue;
        }
        if (c[i].concurrency && s->in_flight >= c[i].concurrency) {
            busy = 1;
            continue;
        }
        if (!bs || better(&c[i], s, &c[best], bs)) {
            best = i;
            bs = s;
        }
    }
    if (bs) {
        bs->last_used = now;
        bs->in_flight++;
    }
    unlock(st);
    return bs ? best : busy ? S2A_PICK_BUSY : S2A_PICK_NONE;
}

void s2a_state_release(s2a_state *st, apr_int64_t key)
{
    s2a_account_state *s;
    if (!lock(st)) {
        return;
    }
    s = slot(st, key, 0);
    if (s && s->in_flight > 0) {
        s->in_flight--;
    }
    unlock(st);
}

#define S2A_STATE_SETTER(name, field, type)                                                        \
    void name(s2a_state *st, apr_int64_t key, type value)                                   \
    {                                                                                              \
        s2a_account_state *s;                                                                      \
        if (!lock(st)) {                                                                           \
            return;                                                                                \
        }                                                                                          \
        s = slot(st, key, 1);                                                               \
        if (s) {                                                                                   \
            s->field = value;                                                                      \
        }                                                                                          \
        unlock(st);                                                                                \
    }

S2A_STATE_SETTER(s2a_state_set_rate_limited, rate_limited_until, apr_time_t)
S2A_STATE_SETTER(s2a_state_set_overloaded, overloaded_until, apr_time_t)
S2A_STATE_SETTER(s2a_state_set_error, error, int)

void s2a_state_clear(s2a_state *st, apr_int64_t key)
{
    s2a_account_state *s;
    if (!lock(st)) {
        return;
    }
    s = slot(st, key, 0);
    if (s) {
        s->rate_limited_until = 0;
        s->overloaded_until = 0;
        s->error = 0;
    }
    unlock(st);
}

void s2a_state_get(s2a_state *st, apr_int64_t key, s2a_account_state *out)
{
    s2a_account_state *s;
    memset(out, 0, sizeof(*out));
    if (!lock(st)) {
        return;
    }
    s = slot(st, key, 0);
    if (s) {
        *out = *s;
    }
    unlock(st);
}
