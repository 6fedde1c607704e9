/* The shm store: one host's shared memory (s2a_state). Nothing here can fail
 * for want of a server; a place is told apart by its process, which is how
 * the places of a crashed process are taken back. */
#include "s2a_store.h"

static s2a_state *state_of(s2a_store *st)
{
    return st->impl;
}

static apr_uint32_t shm_generation(s2a_store *st, int fresh)
{
    (void)fresh;
    return s2a_state_generation(state_of(st));
}

static apr_status_t shm_bump(s2a_store *st)
{
    s2a_state_bump(state_of(st));
    return APR_SUCCESS;
}

/* As the redis store: a spent balance is refused before anything is
 * picked, and the hold follows the pick, all in one step. */
static apr_status_t shm_pick(s2a_store *st, const s2a_candidate *c, int n, apr_time_t now,
                             apr_uint64_t session, apr_time_t ttl, int wait_for_bound,
                             const s2a_balance *bal, int *picked, s2a_place *place, int *held)
{
    *picked = s2a_state_pick_holding(state_of(st), c, n, now, session, ttl, wait_for_bound,
                                     bal ? bal->key : 0, bal ? bal->known : 0, held);
    if (*picked < 0) {
        return APR_SUCCESS;
    }
    place->key = c[*picked].key;
    place->token = 0;
    place->account = 1;
    place->renewed = now;
    return APR_SUCCESS;
}

static apr_status_t shm_acquire(s2a_store *st, apr_int64_t key, int limit, apr_time_t now,
                                int *taken, s2a_place *place)
{
    *taken = s2a_state_acquire(state_of(st), key, limit);
    if (*taken > 0) {
        place->key = key;
        place->token = 0;
        place->account = 0;
        place->renewed = now;
    }
    return APR_SUCCESS;
}

static apr_status_t shm_release(s2a_store *st, const s2a_place *place)
{
    if (place->account) {
        s2a_state_release(state_of(st), place->key);
    } else {
        s2a_state_release_limit(state_of(st), place->key);
    }
    return APR_SUCCESS;
}

/* Places here are held by their process, not by a lease. */
static apr_status_t shm_renew(s2a_store *st, s2a_place *place, apr_time_t now)
{
    (void)st;
    place->renewed = now;
    return APR_SUCCESS;
}

static apr_status_t shm_rate(s2a_store *st, apr_int64_t key, int per_minute, apr_time_t now,
                             int *ok, apr_time_t *retry_at)
{
    *ok = s2a_state_rate(state_of(st), key, per_minute, now, retry_at);
    return APR_SUCCESS;
}

static apr_status_t shm_set_rate_limited(s2a_store *st, apr_int64_t key, apr_time_t until)
{
    s2a_state_set_rate_limited(state_of(st), key, until);
    return APR_SUCCESS;
}

static apr_status_t shm_set_overloaded(s2a_store *st, apr_int64_t key, apr_time_t until)
{
    s2a_state_set_overloaded(state_of(st), key, until);
    return APR_SUCCESS;
}

static apr_status_t shm_set_error(s2a_store *st, apr_int64_t key, int error)
{
    s2a_state_set_error(state_of(st), key, error);
    return APR_SUCCESS;
}

static apr_status_t shm_clear(s2a_store *st, apr_int64_t key, int error)
{
    s2a_state_clear(state_of(st), key, error);
    return APR_SUCCESS;
}

static apr_status_t shm_set_window(s2a_store *st, apr_int64_t key, int status, apr_time_t reset,
                                   apr_time_t now)
{
    s2a_state_set_window(state_of(st), key, status, reset, now);
    return APR_SUCCESS;
}

static apr_status_t shm_get(s2a_store *st, apr_int64_t key, apr_time_t now, s2a_account_state *out)
{
    (void)now;
    s2a_state_get(state_of(st), key, out);
    return APR_SUCCESS;
}

static apr_status_t shm_lock(s2a_store *st, const char *name, apr_time_t ttl, int *got)
{
    *got = s2a_state_lock(state_of(st), s2a_state_key(name), ttl, apr_time_now());
    return APR_SUCCESS;
}

static apr_status_t shm_unlock(s2a_store *st, const char *name)
{
    s2a_state_unlock(state_of(st), s2a_state_key(name));
    return APR_SUCCESS;
}

static apr_status_t shm_forget_balance(s2a_store *st, apr_int64_t key)
{
    s2a_state_forget_balance(state_of(st), key);
    return APR_SUCCESS;
}

static apr_status_t shm_reserve(s2a_store *st, const s2a_balance *bal, apr_int64_t amount,
                                apr_time_t now, int *held)
{
    *held = s2a_state_reserve(state_of(st), bal->key, bal->known, amount, now);
    return APR_SUCCESS;
}

/* Places are copied this many at a time (a request holds three). */
#define SHM_FINISH_PLACES 4

static apr_status_t shm_finish(s2a_store *st, s2a_place *const *places, int n,
                               const s2a_settlement *holds, int nholds)
{
    s2a_state_place given[SHM_FINISH_PLACES];
    int i, k = 0;
    for (i = 0; i < n; i++) {
        given[k].key = places[i]->key;
        given[k++].account = places[i]->account;
        if (k == SHM_FINISH_PLACES && i + 1 < n) {
            s2a_state_finish(state_of(st), given, k, NULL, 0, 0);
            k = 0;
        }
    }
    s2a_state_finish(state_of(st), given, k, holds, nholds, apr_time_now());
    return APR_SUCCESS;
}

static const char *shm_last_error(s2a_store *st, apr_pool_t *p)
{
    (void)st;
    (void)p;
    return "no error";
}

static const s2a_store_ops shm_ops = {
    "shm",
    shm_generation,
    shm_bump,
    shm_pick,
    shm_acquire,
    shm_release,
    shm_renew,
    shm_rate,
    shm_set_rate_limited,
    shm_set_overloaded,
    shm_set_error,
    shm_clear,
    shm_set_window,
    shm_get,
    shm_lock,
    shm_unlock,
    shm_forget_balance,
    shm_reserve,
    shm_finish,
    shm_last_error,
};

s2a_store *s2a_store_shm(apr_pool_t *p, s2a_state *state)
{
    s2a_store *st = apr_pcalloc(p, sizeof(*st));
    st->ops = &shm_ops;
    st->impl = state;
    return st;
}
