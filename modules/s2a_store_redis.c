/* The redis store: the account pool's state in one Redis server, shared by
 * the httpd nodes that use it. Every read-modify-write is one Lua script
 * (modules/redis/, run by EVALSHA), so that nodes never interleave inside an
 * operation. Reaching the server (connections, retries, the heartbeat) is
 * s2a_redis_conn's; this file says what each operation sends. The contract,
 * the pick policy and how the shm provider meets the same: docs/store.md.
 *
 * Keys (all under "s2a:"):
 *   acct:<state key>   hash: used, rl (rate limited until), ov (overloaded
 *                      until), err, ws/wr (5-hour window status and reset)
 *   busy:<state key>   sorted set of the places held, scored by lease end
 *   rpm:<key>:<minute> requests counted in one clock minute
 *   bind:<session>     the account a conversation is bound to (with a TTL)
 *   bal:<state key>    hash of a balance (a user's, a subscription's
 *                      allowance, a key's budget): b (the balance), h (held
 *                      by requests in flight); gone after S2A_BALANCE_IDLE
 *   lock:<name>        a lock, valued by its holder
 *   alive:<instance>   there while the process that holds places under
 *                      this name lives (a heartbeat renews it)
 *   gen                the generation counter
 * Times are microseconds since the epoch, as APR counts them. */
#include <string.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "s2a_redis_conn.h"
#include "s2a_store.h"
/* generated from modules/redis/ by the build */
#include "s2a_redis_scripts.h"

typedef struct {
    s2a_redis_conn *conn;
    const char *instance; /* names this process's places and locks */
    s2a_state *local;
    volatile apr_uint32_t tokens;
    /* guards what follows; the connections' own lock may be taken inside
     * it, never the other way round */
    apr_thread_mutex_t *mutex;
    apr_time_t gen_read;
    apr_uint32_t remote_gen;
} redis_store;

static redis_store *impl(s2a_store *st)
{
    return st->impl;
}

static void member(redis_store *rs, s2a_redis_cmd *cmd, apr_uint64_t token)
{
    s2a_redis_cmd_fmt(cmd, "%s:%" APR_UINT64_T_FMT, rs->instance, token);
}

static apr_uint32_t redis_generation(s2a_store *st, int fresh)
{
    redis_store *rs = impl(st);
    apr_time_t now = apr_time_now();
    apr_uint32_t local = rs->local ? s2a_state_generation(rs->local) : 0;
    apr_uint32_t remote;
    int read = 0;
    s2a_redis_cmd cmd;
    long long v;

    apr_thread_mutex_lock(rs->mutex);
    if ((fresh || now - rs->gen_read >= apr_time_from_msec(S2A_REDIS_GENERATION_MSEC)) &&
        !s2a_redis_conn_down(rs->conn)) {
        rs->gen_read = now; /* one thread reads; the others use the last value */
        read = 1;
    }
    remote = rs->remote_gen;
    apr_thread_mutex_unlock(rs->mutex);
    if (read && s2a_redis_cmd_init(rs->conn, &cmd, 2)) {
        s2a_redis_cmd_str(&cmd, "GET");
        s2a_redis_cmd_str(&cmd, "s2a:gen");
        if (s2a_redis_run_int(rs->conn, &cmd, &v) == APR_SUCCESS) {
            remote = (apr_uint32_t)v;
            apr_thread_mutex_lock(rs->mutex);
            rs->remote_gen = remote;
            apr_thread_mutex_unlock(rs->mutex);
        }
    }
    return local + remote;
}

static apr_status_t redis_bump(s2a_store *st)
{
    redis_store *rs = impl(st);
    long long v;
    s2a_redis_cmd cmd;
    apr_status_t rv;
    if (rs->local) {
        s2a_state_bump(rs->local);
    }
    if (!s2a_redis_cmd_init(rs->conn, &cmd, 2)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_str(&cmd, "INCR");
    s2a_redis_cmd_str(&cmd, "s2a:gen");
    rv = s2a_redis_run_int(rs->conn, &cmd, &v);
    if (rv == APR_SUCCESS) {
        apr_thread_mutex_lock(rs->mutex);
        rs->remote_gen = (apr_uint32_t)v;
        apr_thread_mutex_unlock(rs->mutex);
    }
    return rv;
}

static apr_uint64_t new_token(redis_store *rs)
{
    return apr_atomic_inc32(&rs->tokens) + 1;
}

static apr_time_t lease_msec(void)
{
    return apr_time_as_msec(S2A_STORE_LEASE);
}

/* Removes this pick's member from the busy sets of the candidates other
 * than `kept` (-1: all); best effort, the lease ends it otherwise. */
static void forget(redis_store *rs, const s2a_candidate *c, int n, int kept, apr_uint64_t token)
{
    int i;
    for (i = 0; i < n; i++) {
        s2a_redis_cmd cmd;
        if (i == kept || !s2a_redis_cmd_init(rs->conn, &cmd, 3)) {
            continue;
        }
        s2a_redis_cmd_str(&cmd, "ZREM");
        s2a_redis_cmd_fmt(&cmd, "s2a:busy:%" APR_INT64_T_FMT, c[i].key);
        member(rs, &cmd, token);
        s2a_redis_run_int(rs->conn, &cmd, NULL);
    }
}

static apr_status_t redis_pick(s2a_store *st, const s2a_candidate *c, int n, apr_time_t now,
                               apr_uint64_t session, apr_time_t ttl, int wait_for_bound,
                               const s2a_balance *bal, int *picked, s2a_place *place, int *held)
{
    redis_store *rs = impl(st);
    apr_uint64_t token = new_token(rs);
    apr_time_t ttl_ms = session ? apr_time_as_msec(ttl) : 0;
    int with_balance = bal && bal->key;
    redisReply *r;
    long long v;
    apr_status_t rv;
    s2a_redis_cmd cmd;
    int i, resent;

    *held = 0;
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_PICK, 2 + 2 * n,
                              2 + 2 * n + 8 + 4 * n)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_fmt(&cmd, "s2a:bind:%" APR_UINT64_T_FMT, session);
    for (i = 0; i < n; i++) {
        s2a_redis_cmd_fmt(&cmd, "s2a:acct:%" APR_INT64_T_FMT, c[i].key);
        s2a_redis_cmd_fmt(&cmd, "s2a:busy:%" APR_INT64_T_FMT, c[i].key);
    }
    /* a key is named either way: the key count stays what the script expects */
    s2a_redis_cmd_fmt(&cmd, "s2a:bal:%" APR_INT64_T_FMT, with_balance ? bal->key : 0);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, now);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, ttl_ms);
    s2a_redis_cmd_str(&cmd, wait_for_bound ? "1" : "0");
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, now + S2A_STORE_LEASE);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, lease_msec());
    member(rs, &cmd, token);
    if (with_balance) {
        s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, bal->known);
    } else {
        s2a_redis_cmd_str(&cmd, "");
    }
    s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, apr_time_as_msec(S2A_BALANCE_IDLE));
    for (i = 0; i < n; i++) {
        s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, c[i].key);
        s2a_redis_cmd_fmt(&cmd, "%d", c[i].priority);
        s2a_redis_cmd_fmt(&cmd, "%d", c[i].concurrency);
        s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, c[i].hold);
    }
    r = s2a_redis_run(rs->conn, &cmd);
    resent = cmd.resent;
    s2a_redis_cmd_free(&cmd);
    rv = r && r->type == REDIS_REPLY_INTEGER ? APR_SUCCESS : APR_EGENERAL;
    v = rv == APR_SUCCESS ? r->integer : S2A_PICK_NONE;
    if (r) {
        freeReplyObject(r);
    }
    if (rv == APR_SUCCESS && (v >= n || v < S2A_PICK_BROKE)) {
        s2a_redis_conn_set_error(rs->conn, "unexpected reply", NULL);
        rv = APR_EGENERAL;
    }
    if (resent) {
        /* the first sending may have taken a place the answer never named
         * (a hold it took stays until the balance idles) */
        forget(rs, c, n, rv == APR_SUCCESS ? (int)v : -1, token);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *picked = (int)v;
    if (v >= 0) {
        place->key = c[v].key;
        place->token = token;
        place->account = 1;
        place->renewed = now;
        *held = with_balance;
    }
    return APR_SUCCESS;
}

static apr_status_t redis_acquire(s2a_store *st, apr_int64_t key, int limit, apr_time_t now,
                                  int *taken, s2a_place *place)
{
    redis_store *rs = impl(st);
    apr_uint64_t token;
    long long v;
    apr_status_t rv;
    s2a_redis_cmd cmd;
    if (!limit) {
        *taken = -1;
        return APR_SUCCESS;
    }
    token = new_token(rs);
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_ACQUIRE, 1, 6)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_fmt(&cmd, "s2a:busy:%" APR_INT64_T_FMT, key);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, now);
    s2a_redis_cmd_fmt(&cmd, "%d", limit);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, now + S2A_STORE_LEASE);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, lease_msec());
    member(rs, &cmd, token);
    rv = s2a_redis_run_int(rs->conn, &cmd, &v);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *taken = v ? 1 : 0;
    if (v) {
        place->key = key;
        place->token = token;
        place->account = 0;
        place->renewed = now;
    }
    return APR_SUCCESS;
}

static apr_status_t redis_release(s2a_store *st, const s2a_place *place)
{
    redis_store *rs = impl(st);
    s2a_redis_cmd cmd;
    if (!s2a_redis_cmd_init(rs->conn, &cmd, 3)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_str(&cmd, "ZREM");
    s2a_redis_cmd_fmt(&cmd, "s2a:busy:%" APR_INT64_T_FMT, place->key);
    member(rs, &cmd, place->token);
    return s2a_redis_run_int(rs->conn, &cmd, NULL);
}

static apr_status_t redis_renew(s2a_store *st, s2a_place *place, apr_time_t now)
{
    redis_store *rs = impl(st);
    apr_status_t rv;
    s2a_redis_cmd cmd;
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_RENEW, 1, 4)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_fmt(&cmd, "s2a:busy:%" APR_INT64_T_FMT, place->key);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, now + S2A_STORE_LEASE);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, lease_msec());
    member(rs, &cmd, place->token);
    rv = s2a_redis_run_int(rs->conn, &cmd, NULL);
    if (rv == APR_SUCCESS) {
        place->renewed = now;
    }
    return rv;
}

static apr_status_t redis_rate(s2a_store *st, apr_int64_t key, int per_minute, apr_time_t now,
                               int *ok, apr_time_t *retry_at)
{
    redis_store *rs = impl(st);
    apr_int64_t minute = apr_time_sec(now) / 60;
    long long v;
    apr_status_t rv;
    s2a_redis_cmd cmd;
    *retry_at = apr_time_from_sec((minute + 1) * 60);
    if (!per_minute) {
        *ok = 1;
        return APR_SUCCESS;
    }
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_RATE, 1, 2)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_fmt(&cmd, "s2a:rpm:%" APR_INT64_T_FMT ":%" APR_INT64_T_FMT, key, minute);
    s2a_redis_cmd_fmt(&cmd, "%d", per_minute);
    rv = s2a_redis_run_int(rs->conn, &cmd, &v);
    if (rv == APR_SUCCESS) {
        *ok = v ? 1 : 0;
    }
    return rv;
}

/* HSET of one or more fields of an account. */
static apr_status_t hset(redis_store *rs, apr_int64_t key, int nfields, const char *const *names,
                         const apr_int64_t *values)
{
    s2a_redis_cmd cmd;
    int i;
    if (!s2a_redis_cmd_init(rs->conn, &cmd, 2 + 2 * nfields)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_str(&cmd, "HSET");
    s2a_redis_cmd_fmt(&cmd, "s2a:acct:%" APR_INT64_T_FMT, key);
    for (i = 0; i < nfields; i++) {
        s2a_redis_cmd_str(&cmd, names[i]);
        s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, values[i]);
    }
    return s2a_redis_run_int(rs->conn, &cmd, NULL);
}

static apr_status_t redis_set_rate_limited(s2a_store *st, apr_int64_t key, apr_time_t until)
{
    static const char *const f[] = {"rl"};
    return hset(impl(st), key, 1, f, &until);
}

static apr_status_t redis_set_overloaded(s2a_store *st, apr_int64_t key, apr_time_t until)
{
    static const char *const f[] = {"ov"};
    return hset(impl(st), key, 1, f, &until);
}

static apr_status_t redis_set_error(s2a_store *st, apr_int64_t key, int error)
{
    static const char *const f[] = {"err"};
    apr_int64_t v = error ? 1 : 0;
    return hset(impl(st), key, 1, f, &v);
}

static apr_status_t redis_clear(s2a_store *st, apr_int64_t key, int error)
{
    static const char *const f[] = {"rl", "ov", "err"};
    static const apr_int64_t zero[] = {0, 0, 0};
    return hset(impl(st), key, error ? 3 : 2, f, zero);
}

static apr_status_t redis_set_window(s2a_store *st, apr_int64_t key, int status, apr_time_t reset,
                                     apr_time_t now)
{
    redis_store *rs = impl(st);
    s2a_redis_cmd cmd;
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_WINDOW, 1, 5)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_fmt(&cmd, "s2a:acct:%" APR_INT64_T_FMT, key);
    s2a_redis_cmd_fmt(&cmd, "%d", status);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, reset);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, now);
    s2a_redis_cmd_fmt(&cmd, "%d", S2A_WINDOW_REJECTED);
    return s2a_redis_run_int(rs->conn, &cmd, NULL);
}

static apr_status_t redis_get(s2a_store *st, apr_int64_t key, apr_time_t now,
                              s2a_account_state *out)
{
    redis_store *rs = impl(st);
    apr_status_t rv = APR_EGENERAL;
    redisReply *r;
    s2a_redis_cmd cmd;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_GET, 2, 3)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_fmt(&cmd, "s2a:acct:%" APR_INT64_T_FMT, key);
    s2a_redis_cmd_fmt(&cmd, "s2a:busy:%" APR_INT64_T_FMT, key);
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, now);
    r = s2a_redis_run(rs->conn, &cmd);
    s2a_redis_cmd_free(&cmd);
    if (!r) {
        return rv;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 7) {
        apr_int64_t v[7];
        for (i = 0; i < 7; i++) {
            const redisReply *e = r->element[i];
            v[i] = e->type == REDIS_REPLY_STRING ? apr_atoi64(e->str) : 0;
        }
        out->key = key;
        out->last_used = v[0];
        out->rate_limited_until = v[1];
        out->overloaded_until = v[2];
        out->error = (apr_int32_t)v[3];
        out->window_status = (apr_int32_t)v[4];
        out->window_reset = v[5];
        out->in_flight = (apr_int32_t)v[6];
        rv = APR_SUCCESS;
    } else {
        s2a_redis_conn_set_error(rs->conn, "unexpected reply", NULL);
    }
    freeReplyObject(r);
    return rv;
}

static apr_status_t redis_lock(s2a_store *st, const char *name, apr_time_t ttl, int *got)
{
    redis_store *rs = impl(st);
    redisReply *r;
    s2a_redis_cmd cmd;
    if (!s2a_redis_cmd_init(rs->conn, &cmd, 6)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_str(&cmd, "SET");
    s2a_redis_cmd_fmt(&cmd, "s2a:lock:%" APR_INT64_T_FMT, s2a_state_key(name));
    s2a_redis_cmd_str(&cmd, rs->instance);
    s2a_redis_cmd_str(&cmd, "NX");
    s2a_redis_cmd_str(&cmd, "PX");
    s2a_redis_cmd_fmt(&cmd, "%" APR_TIME_T_FMT, apr_time_as_msec(ttl) + 1);
    r = s2a_redis_run(rs->conn, &cmd);
    s2a_redis_cmd_free(&cmd);
    if (!r) {
        return APR_EGENERAL;
    }
    *got = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return APR_SUCCESS;
}

static apr_status_t redis_unlock(s2a_store *st, const char *name)
{
    redis_store *rs = impl(st);
    s2a_redis_cmd cmd;
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_UNLOCK, 1, 2)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_fmt(&cmd, "s2a:lock:%" APR_INT64_T_FMT, s2a_state_key(name));
    s2a_redis_cmd_str(&cmd, rs->instance);
    return s2a_redis_run_int(rs->conn, &cmd, NULL);
}

static apr_status_t redis_forget_balance(s2a_store *st, apr_int64_t key)
{
    redis_store *rs = impl(st);
    s2a_redis_cmd cmd;
    if (!s2a_redis_cmd_init(rs->conn, &cmd, 3)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_str(&cmd, "HDEL");
    s2a_redis_cmd_fmt(&cmd, "s2a:bal:%" APR_INT64_T_FMT, key);
    s2a_redis_cmd_str(&cmd, "b");
    return s2a_redis_run_int(rs->conn, &cmd, NULL);
}

static apr_status_t redis_reserve(s2a_store *st, const s2a_balance *bal, apr_int64_t amount,
                                  apr_time_t now, int *held)
{
    redis_store *rs = impl(st);
    s2a_redis_cmd cmd;
    long long v = 0;
    apr_status_t rv;
    (void)now;
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_RESERVE, 1, 4)) {
        return APR_ENOMEM;
    }
    s2a_redis_cmd_fmt(&cmd, "s2a:bal:%" APR_INT64_T_FMT, bal->key);
    s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, bal->known);
    s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, amount);
    s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, apr_time_as_msec(S2A_BALANCE_IDLE));
    rv = s2a_redis_run_int(rs->conn, &cmd, &v);
    *held = rv == APR_SUCCESS && v == 1;
    return rv;
}

static apr_status_t redis_finish(s2a_store *st, s2a_place *const *places, int n,
                                 const s2a_settlement *holds, int nholds)
{
    redis_store *rs = impl(st);
    int i, taken = 0, settled = 0;
    s2a_redis_cmd cmd;
    for (i = 0; i < n; i++) {
        taken += places[i]->key != 0;
    }
    for (i = 0; i < nholds; i++) {
        settled += holds[i].key != 0;
    }
    if (!taken && !settled) {
        return APR_SUCCESS;
    }
    if (!s2a_redis_cmd_script(rs->conn, &cmd, S2A_REDIS_SCRIPT_FINISH, taken + settled,
                              2 * taken + 4 * settled + 2)) {
        return APR_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if (places[i]->key) {
            s2a_redis_cmd_fmt(&cmd, "s2a:busy:%" APR_INT64_T_FMT, places[i]->key);
        }
    }
    for (i = 0; i < nholds; i++) {
        if (holds[i].key) {
            s2a_redis_cmd_fmt(&cmd, "s2a:bal:%" APR_INT64_T_FMT, holds[i].key);
        }
    }
    s2a_redis_cmd_fmt(&cmd, "%d", taken);
    s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, apr_time_as_msec(S2A_BALANCE_IDLE));
    for (i = 0; i < n; i++) {
        if (places[i]->key) {
            member(rs, &cmd, places[i]->token);
        }
    }
    for (i = 0; i < nholds; i++) {
        if (holds[i].key) {
            s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, -holds[i].held);
            s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, -holds[i].spent);
            if (holds[i].open) {
                s2a_redis_cmd_fmt(&cmd, "%" APR_INT64_T_FMT, holds[i].known);
            } else {
                s2a_redis_cmd_fmt(&cmd, "%s", "");
            }
        }
    }
    return s2a_redis_run_int(rs->conn, &cmd, NULL);
}

static const char *redis_last_error(s2a_store *st, apr_pool_t *p)
{
    return s2a_redis_conn_last_error(impl(st)->conn, p);
}

static const s2a_store_ops redis_ops = {
    "redis",
    redis_generation,
    redis_bump,
    redis_pick,
    redis_acquire,
    redis_release,
    redis_renew,
    redis_rate,
    redis_set_rate_limited,
    redis_set_overloaded,
    redis_set_error,
    redis_clear,
    redis_set_window,
    redis_get,
    redis_lock,
    redis_unlock,
    redis_forget_balance,
    redis_reserve,
    redis_finish,
    redis_last_error,
};

apr_status_t s2a_store_redis(apr_pool_t *p, const s2a_redis_url *url, s2a_state *local,
                             s2a_store **out)
{
    s2a_store *st = apr_pcalloc(p, sizeof(*st));
    redis_store *rs = apr_pcalloc(p, sizeof(*rs));
    apr_status_t rv;

    rs->local = local;
    if ((rv = apr_thread_mutex_create(&rs->mutex, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS ||
        (rv = s2a_redis_conn_open(p, url, s2a_redis_scripts, S2A_REDIS_SCRIPT_COUNT,
                                  "s2a:alive:", &rs->conn)) != APR_SUCCESS) {
        return rv;
    }
    rs->instance = s2a_redis_conn_instance(rs->conn);
    st->ops = &redis_ops;
    st->impl = rs;
    *out = st;
    return APR_SUCCESS;
}
