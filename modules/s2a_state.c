#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_strings.h>

#include "s2a_lock.h"
#include "s2a_sha256.h"
#include "s2a_state.h"

/* A conversation bound to the account (state key) that serves it. */
typedef struct {
    apr_uint64_t session;
    apr_int64_t key;
    apr_time_t expires;
} binding_t;

/* Accounts and the limits of users and keys live in tables of their own, so
 * that many limited keys can never push an account out. */
#define S2A_LIMITS_PER_ACCOUNT 4

/* Tells a segment laid out by this build from one another build left (a
 * graceful restart into a new module keeps the parent's memory). */
#define S2A_STATE_LAYOUT 0x53324132u /* "S2A2" */

typedef struct {
    apr_uint32_t layout;
    apr_uint32_t lock_ready; /* the lock outlives a graceful restart: made once */
    s2a_lock lock;
    apr_uint32_t generation;
    /* the latest end of any lock taken: before it passes, s2a_state_locked_until
     * looks; after, no lock is held and the table is not searched */
    apr_uint64_t lock_horizon;
    apr_uint32_t nslots;
    apr_uint32_t nbindings;
    s2a_account_state slots[];
    /* followed by nslots * S2A_LIMITS_PER_ACCOUNT limit slots, then nbindings binding_t */
} shared_t;

typedef struct {
    s2a_account_state *base;
    apr_uint32_t n;
} table_t;

struct s2a_state {
    shared_t *shm;
    table_t accounts;
    table_t limits;
    binding_t *bindings;
};

/* This process's id, asked once (a system call, made under the lock
 * otherwise); a child forgets its parent's at fork. */
static volatile apr_uint32_t own_pid;
static pthread_once_t own_pid_once = PTHREAD_ONCE_INIT;

static void forget_own_pid(void)
{
    apr_atomic_set32(&own_pid, 0);
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, forget_own_pid);
}

static apr_int32_t self(void)
{
    apr_uint32_t pid = apr_atomic_read32(&own_pid);
    if (!pid) {
        pid = (apr_uint32_t)getpid();
        apr_atomic_set32(&own_pid, pid);
    }
    return (apr_int32_t)pid;
}

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

apr_int64_t s2a_state_key_user(apr_pool_t *p, const char *secret, apr_int64_t user_id)
{
    return s2a_state_key(apr_psprintf(p, "user:%s:%" APR_INT64_T_FMT, secret, user_id));
}

apr_int64_t s2a_state_key_spend(apr_pool_t *p, const char *secret, const char *kind, apr_int64_t id,
                                apr_int64_t total_limit, const s2a_windows *w, apr_int64_t now)
{
    s2a_window_view v[S2A_WINDOWS];
    const char *name = apr_psprintf(p, "%s:%s:%" APR_INT64_T_FMT ":%" APR_INT64_T_FMT, kind, secret,
                                    id, total_limit);
    int i;
    s2a_windows_view(w, now, v);
    for (i = 0; i < S2A_WINDOWS; i++) {
        if (v[i].limit > 0) {
            name = apr_psprintf(p, "%s:%" APR_INT64_T_FMT "@%" APR_INT64_T_FMT, name, v[i].limit,
                                v[i].run);
        }
    }
    return s2a_state_key(name);
}

int s2a_state_spend_settlement(apr_pool_t *p, const char *secret, const char *kind, apr_int64_t id,
                               apr_int64_t total_limit, const s2a_windows *w, apr_int64_t left_now,
                               apr_int64_t now, apr_int64_t held_key, apr_int64_t held,
                               apr_int64_t spent, s2a_settlement out[2])
{
    apr_int64_t next = s2a_state_key_spend(p, secret, kind, id, total_limit, w, now);
    memset(out, 0, 2 * sizeof(*out));
    out[0].key = held_key;
    out[0].held = held;
    if (next == held_key) {
        out[0].spent = spent;
        return 1;
    }
    out[1].key = next;
    out[1].spent = spent;
    out[1].open = 1;
    out[1].known = left_now;
    return 2;
}

apr_int64_t s2a_state_key_account(apr_pool_t *p, const char *secret, apr_int64_t id,
                                  int refreshable, const char *credential)
{
    if (refreshable) {
        return s2a_state_key(
            apr_psprintf(p, "account:%s:%" APR_INT64_T_FMT, secret ? secret : "", id));
    }
    return s2a_state_key(credential);
}

int s2a_state_fits(const void *base, apr_size_t size, int nslots, int nbindings)
{
    const shared_t *shm = base;
    return size == s2a_state_size(nslots, nbindings) && shm->layout == S2A_STATE_LAYOUT &&
           shm->lock_ready;
}

apr_size_t s2a_state_size(int nslots, int nbindings)
{
    return sizeof(shared_t) +
           (apr_size_t)nslots * (1 + S2A_LIMITS_PER_ACCOUNT) * sizeof(s2a_account_state) +
           (apr_size_t)nbindings * sizeof(binding_t);
}

s2a_state *s2a_state_init(apr_pool_t *p, void *base, int nslots, int nbindings)
{
    s2a_state *st = apr_pcalloc(p, sizeof(*st));
    pthread_once(&own_pid_once, watch_forks);
    st->shm = base;
    if (!st->shm->lock_ready) {
        if (s2a_lock_init(&st->shm->lock) != APR_SUCCESS) {
            return NULL;
        }
        st->shm->layout = S2A_STATE_LAYOUT;
        st->shm->lock_ready = 1;
    }
    st->shm->nslots = (apr_uint32_t)nslots;
    st->shm->nbindings = (apr_uint32_t)nbindings;
    st->accounts.base = st->shm->slots;
    st->accounts.n = (apr_uint32_t)nslots;
    st->limits.base = st->shm->slots + nslots;
    st->limits.n = (apr_uint32_t)nslots * S2A_LIMITS_PER_ACCOUNT;
    st->bindings = (binding_t *)(st->limits.base + st->limits.n);
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

/* A slot that holds nothing worth keeping: no request, no rest, no error. */
static int idle(const s2a_account_state *s, apr_time_t now)
{
    return !s->in_flight && !s->error && s->rate_limited_until <= now &&
           s->overloaded_until <= now && s->rate_minute < apr_time_sec(now) / 60 &&
           s->locked_until <= now && !s->held;
}

/* Open addressing on the key; the caller holds the lock. When the table is
 * full, the idle slot used longest ago is taken over (a credential that was
 * rotated away, say). */
static s2a_account_state *table_slot(table_t *t, apr_int64_t id, int create)
{
    apr_uint32_t n = t->n, i, h = (apr_uint32_t)((apr_uint64_t)id % n);
    s2a_account_state *reuse = NULL;
    apr_time_t now = 0; /* read once a slot is weighed for reuse */
    for (i = 0; i < n; i++) {
        s2a_account_state *s = &t->base[(h + i) % n];
        if (s->key == id) {
            return s;
        }
        if (s->key == 0) {
            if (!create) {
                return NULL;
            }
            reuse = s;
            break;
        }
        if (create && !now) {
            now = apr_time_now();
        }
        if (create && idle(s, now) && (!reuse || s->last_used < reuse->last_used)) {
            reuse = s;
        }
    }
    if (!reuse) {
        return NULL;
    }
    memset(reuse, 0, sizeof(*reuse));
    reuse->key = id;
    return reuse;
}

static int lock(s2a_state *st)
{
    return s2a_lock_take(&st->shm->lock);
}

static void unlock(s2a_state *st)
{
    s2a_lock_give(&st->shm->lock);
}

static s2a_account_state *slot(s2a_state *st, apr_int64_t id, int create)
{
    return table_slot(&st->accounts, id, create);
}

static s2a_account_state *limit_slot(s2a_state *st, apr_int64_t id)
{
    return table_slot(&st->limits, id, 1);
}

/* Counts one more request of this process in flight. */
static void hold(s2a_account_state *s)
{
    apr_int32_t me = self();
    int i, free_at = -1;
    s->in_flight++;
    for (i = 0; i < S2A_STATE_OWNERS; i++) {
        if (s->owner_pid[i] == me) {
            s->owner_count[i]++;
            return;
        }
        if (free_at < 0 && !s->owner_count[i]) {
            free_at = i;
        }
    }
    /* with no room left the place is counted but cannot be reclaimed */
    if (free_at >= 0) {
        s->owner_pid[free_at] = me;
        s->owner_count[free_at] = 1;
    }
}

static void unhold(s2a_account_state *s)
{
    apr_int32_t me = self();
    int i;
    if (s->in_flight > 0) {
        s->in_flight--;
    }
    for (i = 0; i < S2A_STATE_OWNERS; i++) {
        if (s->owner_pid[i] == me && s->owner_count[i] > 0) {
            s->owner_count[i]--;
            return;
        }
    }
}

/* A place given back, the lock held: an account's, or a key's or user's. */
static void release_locked(s2a_state *st, apr_int64_t key)
{
    s2a_account_state *s = slot(st, key, 0);
    if (s) {
        unhold(s);
    }
}

static void release_limit_locked(s2a_state *st, apr_int64_t key)
{
    s2a_account_state *s = table_slot(&st->limits, key, 0);
    if (s) {
        unhold(s);
    }
}

/* Gives back the places of processes that are gone (a crashed child never
 * released them). Only run on a full slot: it costs a kill(pid, 0) each. */
static void reclaim(s2a_account_state *s)
{
    apr_time_t now = apr_time_now();
    int i;
    /* at most once a second a slot: waiting requests re-check every 50 ms */
    if (now - s->reclaimed_at < apr_time_from_sec(1)) {
        return;
    }
    s->reclaimed_at = now;
    for (i = 0; i < S2A_STATE_OWNERS; i++) {
        if (s->owner_count[i] > 0 && kill((pid_t)s->owner_pid[i], 0) != 0 && errno == ESRCH) {
            s->in_flight -= s->owner_count[i];
            if (s->in_flight < 0) {
                s->in_flight = 0;
            }
            s->owner_count[i] = 0;
        }
    }
}

/* Room for one more request: after giving back the places of dead processes
 * if it looks full. */
static int has_room(s2a_account_state *s, int limit)
{
    if (!limit || s->in_flight < limit) {
        return 1;
    }
    reclaim(s);
    return s->in_flight < limit;
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

/* The pick without a conversation, the lock held. */
static int pick_locked(s2a_state *st, const s2a_candidate *c, int n, apr_time_t now)
{
    int i, best = S2A_PICK_NONE, busy = 0;
    s2a_account_state *bs = NULL;
    for (i = 0; i < n; i++) {
        s2a_account_state *s = slot(st, c[i].key, 1);
        if (!s) {
            continue;
        }
        if (s->error || s->rate_limited_until > now || s->overloaded_until > now) {
            continue;
        }
        if (!has_room(s, c[i].concurrency)) {
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
        hold(bs);
    }
    return bs ? best : busy ? S2A_PICK_BUSY : S2A_PICK_NONE;
}

/* Probes a few places of the binding table; the caller holds the lock. */
#define S2A_BINDING_PROBES 8

static binding_t *binding_find(s2a_state *st, apr_uint64_t session)
{
    apr_uint32_t n = st->shm->nbindings, i;
    for (i = 0; n && i < S2A_BINDING_PROBES && i < n; i++) {
        binding_t *b = &st->bindings[(session + i) % n];
        if (b->session == session) {
            return b;
        }
    }
    return NULL;
}

/* The binding's place: its own, else a free or expired one, else the one
 * expiring first among the probed. */
static binding_t *binding_place(s2a_state *st, apr_uint64_t session, apr_time_t now)
{
    apr_uint32_t n = st->shm->nbindings, i;
    binding_t *found = binding_find(st, session), *oldest = NULL;
    if (found || !n) {
        return found;
    }
    for (i = 0; i < S2A_BINDING_PROBES && i < n; i++) {
        binding_t *b = &st->bindings[(session + i) % n];
        if (!b->session || b->expires <= now) {
            return b;
        }
        if (!oldest || b->expires < oldest->expires) {
            oldest = b;
        }
    }
    return oldest;
}

/* The pick for a conversation, the lock held. */
static int pick_sticky_locked(s2a_state *st, const s2a_candidate *c, int n, apr_time_t now,
                              apr_uint64_t session, apr_time_t ttl, int wait_for_bound)
{
    binding_t *b;
    int i, pick;

    if (!session || !ttl || !st->shm->nbindings) {
        return pick_locked(st, c, n, now);
    }
    b = binding_find(st, session);
    for (i = 0; b && b->expires > now && i < n; i++) {
        s2a_account_state *s;
        if (c[i].key != b->key || !(s = slot(st, c[i].key, 1))) {
            continue;
        }
        if (s->error || s->rate_limited_until > now || s->overloaded_until > now) {
            break; /* it cannot serve: the conversation moves */
        }
        if (!has_room(s, c[i].concurrency)) {
            if (wait_for_bound) {
                return S2A_PICK_BUSY;
            }
            break;
        }
        s->last_used = now;
        hold(s);
        b->expires = now + ttl;
        return i;
    }
    pick = pick_locked(st, c, n, now);
    if (pick >= 0 && (b = binding_place(st, session, now))) {
        b->session = session;
        b->key = c[pick].key;
        b->expires = now + ttl;
    }
    return pick;
}

apr_int64_t s2a_state_bound(s2a_state *st, apr_uint64_t session, apr_time_t now)
{
    binding_t *b;
    apr_int64_t key = 0;
    if (!lock(st)) {
        return 0;
    }
    b = binding_find(st, session);
    if (b && b->expires > now) {
        key = b->key;
    }
    unlock(st);
    return key;
}

int s2a_state_acquire(s2a_state *st, apr_int64_t key, int limit)
{
    s2a_account_state *s;
    int ok = 0;
    if (!limit) {
        return -1;
    }
    if (!lock(st)) {
        return 0;
    }
    s = limit_slot(st, key);
    if (!s) {
        ok = -1; /* no room to count it: the limit does not hold the request back */
    } else if (has_room(s, limit)) {
        hold(s);
        ok = 1;
    }
    unlock(st);
    return ok;
}

int s2a_state_rate(s2a_state *st, apr_int64_t key, int per_minute, apr_time_t now,
                   apr_time_t *retry_at)
{
    apr_int64_t minute = apr_time_sec(now) / 60;
    s2a_account_state *s;
    int ok = 0;
    if (!per_minute) {
        return 1;
    }
    if (!lock(st)) {
        return 0;
    }
    s = limit_slot(st, key);
    ok = !s; /* no room to count it: let it through */
    if (s) {
        if (s->rate_minute != minute) {
            s->rate_minute = minute;
            s->rate_count = 0;
        }
        if (s->rate_count < per_minute) {
            s->rate_count++;
            ok = 1;
        }
    }
    unlock(st);
    *retry_at = apr_time_from_sec((minute + 1) * 60);
    return ok;
}

/* A balance about to be used at `now` (the lock held): one not known, or
 * idle, starts at `known`. */
static void balance_in_use(s2a_account_state *s, apr_int64_t known, apr_time_t now)
{
    if (!s->balance_used) {
        s->balance = known; /* new, or forgotten: holds in flight stay */
    } else if (now - s->balance_used > S2A_BALANCE_IDLE) {
        s->balance = known;
        s->held = 0; /* what a crashed process held, say */
    }
    s->balance_used = now;
}

/* s2a_state_reserve, the lock held. */
static int reserve_locked(s2a_state *st, apr_int64_t key, apr_int64_t known, apr_int64_t amount,
                          apr_time_t now)
{
    s2a_account_state *s = limit_slot(st, key);
    int ok;
    if (!s) {
        return known > 0 ? -1 : 0;
    }
    balance_in_use(s, known, now);
    ok = s->balance - s->held > 0;
    if (ok) {
        s->held += amount;
    }
    return ok;
}

int s2a_state_reserve(s2a_state *st, apr_int64_t key, apr_int64_t known, apr_int64_t amount,
                      apr_time_t now)
{
    int ok;
    if (!lock(st)) {
        return known > 0 ? -1 : 0;
    }
    ok = reserve_locked(st, key, known, amount, now);
    unlock(st);
    return ok;
}

int s2a_state_pick_holding(s2a_state *st, const s2a_candidate *c, int n, apr_time_t now,
                           apr_uint64_t session, apr_time_t ttl, int wait_for_bound,
                           apr_int64_t balance_key, apr_int64_t known, int *held)
{
    int pick;
    *held = 0;
    if (!lock(st)) {
        return S2A_PICK_NONE;
    }
    if (balance_key && !reserve_locked(st, balance_key, known, 0, now)) {
        unlock(st);
        return S2A_PICK_BROKE;
    }
    pick = pick_sticky_locked(st, c, n, now, session, ttl, wait_for_bound);
    if (pick >= 0 && balance_key &&
        !(*held = reserve_locked(st, balance_key, known, c[pick].hold, now))) {
        release_locked(st, c[pick].key);
        pick = S2A_PICK_BROKE;
    }
    unlock(st);
    return pick;
}

static void settle_locked(s2a_state *st, apr_int64_t key, apr_int64_t held, apr_int64_t charged)
{
    s2a_account_state *s = table_slot(&st->limits, key, 0);
    if (s) {
        s->held = s->held > held ? s->held - held : 0;
        s->balance -= charged;
    }
}

static void spend_locked(s2a_state *st, apr_int64_t key, apr_int64_t known, apr_int64_t charged,
                         apr_time_t now)
{
    s2a_account_state *s = limit_slot(st, key);
    if (s) {
        balance_in_use(s, known, now);
        s->balance -= charged;
    }
}

void s2a_state_forget_balance(s2a_state *st, apr_int64_t key)
{
    s2a_account_state *s;
    if (!lock(st)) {
        return;
    }
    s = table_slot(&st->limits, key, 0);
    if (s) {
        s->balance_used = 0;
    }
    unlock(st);
}

void s2a_state_release_limit(s2a_state *st, apr_int64_t key)
{
    if (!lock(st)) {
        return;
    }
    release_limit_locked(st, key);
    unlock(st);
}

void s2a_state_release(s2a_state *st, apr_int64_t key)
{
    if (!lock(st)) {
        return;
    }
    release_locked(st, key);
    unlock(st);
}

void s2a_state_finish(s2a_state *st, const s2a_state_place *places, int n,
                      const s2a_settlement *holds, int nholds, apr_time_t now)
{
    int i;
    if (!lock(st)) {
        return;
    }
    for (i = 0; i < n; i++) {
        if (places[i].key && places[i].account) {
            release_locked(st, places[i].key);
        } else if (places[i].key) {
            release_limit_locked(st, places[i].key);
        }
    }
    for (i = 0; i < nholds; i++) {
        if (holds[i].key && holds[i].open) {
            spend_locked(st, holds[i].key, holds[i].known, holds[i].spent, now);
        } else if (holds[i].key) {
            settle_locked(st, holds[i].key, holds[i].held, holds[i].spent);
        }
    }
    unlock(st);
}

#define S2A_STATE_SETTER(name, field, type)                                                        \
    void name(s2a_state *st, apr_int64_t key, type value)                                          \
    {                                                                                              \
        s2a_account_state *s;                                                                      \
        if (!lock(st)) {                                                                           \
            return;                                                                                \
        }                                                                                          \
        s = slot(st, key, 1);                                                                      \
        if (s) {                                                                                   \
            s->field = value;                                                                      \
        }                                                                                          \
        unlock(st);                                                                                \
    }

S2A_STATE_SETTER(s2a_state_set_rate_limited, rate_limited_until, apr_time_t)
S2A_STATE_SETTER(s2a_state_set_overloaded, overloaded_until, apr_time_t)
S2A_STATE_SETTER(s2a_state_set_error, error, int)

void s2a_state_clear(s2a_state *st, apr_int64_t key, int error)
{
    s2a_account_state *s;
    if (!lock(st)) {
        return;
    }
    s = slot(st, key, 0);
    if (s) {
        s->rate_limited_until = 0;
        s->overloaded_until = 0;
        if (error) {
            s->error = 0;
        }
    }
    unlock(st);
}

void s2a_state_set_window(s2a_state *st, apr_int64_t key, int status, apr_time_t reset,
                          apr_time_t now)
{
    s2a_account_state *s;
    if (!lock(st)) {
        return;
    }
    s = slot(st, key, 1);
    if (s) {
        s->window_status = status;
        s->window_reset = reset;
        if (status == S2A_WINDOW_REJECTED && reset > now && reset > s->rate_limited_until) {
            s->rate_limited_until = reset;
        }
    }
    unlock(st);
}

int s2a_state_lock(s2a_state *st, apr_int64_t key, apr_time_t ttl, apr_time_t now)
{
    s2a_account_state *s;
    int got = 0;
    if (!lock(st)) {
        return 0;
    }
    s = limit_slot(st, key);
    if (s && s->locked_until <= now) {
        s->locked_until = now + ttl;
        got = 1;
        if ((apr_uint64_t)s->locked_until > apr_atomic_read64(&st->shm->lock_horizon)) {
            apr_atomic_set64(&st->shm->lock_horizon, (apr_uint64_t)s->locked_until);
        }
    }
    unlock(st);
    return got;
}

void s2a_state_unlock(s2a_state *st, apr_int64_t key)
{
    s2a_account_state *s;
    if (!lock(st)) {
        return;
    }
    s = table_slot(&st->limits, key, 0);
    if (s) {
        s->locked_until = 0;
    }
    unlock(st);
}

int s2a_state_any_lock(s2a_state *st, apr_time_t now)
{
    return (apr_time_t)apr_atomic_read64(&st->shm->lock_horizon) > now;
}

apr_time_t s2a_state_locked_until(s2a_state *st, apr_int64_t key, apr_time_t now)
{
    s2a_account_state *s;
    apr_time_t until = 0;
    if (!s2a_state_any_lock(st, now) || !lock(st)) {
        return 0;
    }
    s = table_slot(&st->limits, key, 0);
    if (s && s->locked_until > now) {
        until = s->locked_until;
    }
    unlock(st);
    return until;
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
