/* The redis store: the account pool's state in one Redis server, shared by
 * the httpd nodes that use it. Every read-modify-write is one Lua script
 * (modules/redis/, run by EVALSHA), so that nodes never interleave inside an
 * operation.
 *
 * Keys (all under "s2a:"):
 *   acct:<state key>   hash: used, rl (rate limited until), ov (overloaded
 *                      until), err, ws/wr (5-hour window status and reset)
 *   busy:<state key>   sorted set of the places held, scored by lease end
 *   rpm:<key>:<minute> requests counted in one clock minute
 *   bind:<session>     the account a conversation is bound to (with a TTL)
 *   bal:<state key>    hash of a user's balance: b (the balance), h (held
 *                      by requests in flight); gone after S2A_BALANCE_IDLE
 *   lock:<name>        a lock, valued by its holder
 *   alive:<instance>   there while the process that holds places under
 *                      this name lives (a heartbeat renews it)
 *   gen                the generation counter
 * Times are microseconds since the epoch, as APR counts them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_reslist.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "s2a_store.h"
/* generated from modules/redis/ by the build */
#include "s2a_redis_scripts.h"

#define CONNECT_MSEC 250
#define COMMAND_MSEC 1000
/* after a failed connect, operations fail at once for this long */
#define RETRY_MSEC 500
#define POOL_SOFT_MAX 4
#define POOL_HARD_MAX 64
#define ARG_MAX_LEN 64
/* a process's places are taken back this long after its last heartbeat */
#define ALIVE_MSEC 3000
#define HEARTBEAT_MSEC 1000

typedef struct {
    redisContext *c;
    apr_uint32_t epoch; /* of the store when made */
} conn_t;

typedef struct {
    s2a_redis_url url;
    s2a_state *local;
    apr_reslist_t *conns;
    apr_thread_mutex_t *mutex; /* guards what follows */
    char sha[S2A_REDIS_SCRIPT_COUNT][41];
    char err[160];
    apr_time_t down_until;
    apr_time_t gen_read;
    apr_uint32_t remote_gen;
    volatile apr_uint32_t epoch; /* moves when a connection breaks */
    volatile apr_uint32_t tokens;
    char instance[17]; /* names this process's places and locks */
    apr_thread_t *heartbeat;
    apr_thread_cond_t *wake;
    int stopping;
} redis_store;

/* Arguments of one command, numbers formatted in place. */
typedef struct {
    int argc;
    int script; /* an EVALSHA of this script, -1 for other commands */
    int resent; /* run() sent it a second time: the first may have run */
    const char **argv;
    size_t *len;
    char *buf;
} args_t;

static int args_init(args_t *a, int max)
{
    a->argc = 0;
    a->script = -1;
    a->resent = 0;
    a->argv = malloc(sizeof(*a->argv) * (size_t)max);
    a->len = malloc(sizeof(*a->len) * (size_t)max);
    a->buf = malloc((size_t)max * ARG_MAX_LEN);
    return a->argv && a->len && a->buf;
}

static void args_free(args_t *a)
{
    free(a->argv);
    free(a->len);
    free(a->buf);
}

static void args_str(args_t *a, const char *s)
{
    a->argv[a->argc] = s;
    a->len[a->argc++] = strlen(s);
}

static void args_fmt(args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void args_fmt(args_t *a, const char *fmt, ...)
{
    char *slot = a->buf + (size_t)a->argc * ARG_MAX_LEN;
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(slot, ARG_MAX_LEN, fmt, ap);
    va_end(ap);
    a->argv[a->argc] = slot;
    a->len[a->argc++] = n < ARG_MAX_LEN ? (size_t)n : ARG_MAX_LEN - 1;
}

static redis_store *impl(s2a_store *st)
{
    return st->impl;
}

static void set_err(redis_store *rs, const char *what, const char *detail)
{
    apr_thread_mutex_lock(rs->mutex);
    apr_snprintf(rs->err, sizeof(rs->err), "%s:%d: %s%s%s", rs->url.host, rs->url.port, what,
                 detail ? ": " : "", detail ? detail : "");
    apr_thread_mutex_unlock(rs->mutex);
}

static redisReply *plain_command(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    void *reply;
    va_start(ap, fmt);
    reply = redisvCommand(c, fmt, ap);
    va_end(ap);
    return reply;
}

/* Loads the scripts into the server; they are found again by SHA1. */
static int load_scripts(redis_store *rs, redisContext *c)
{
    int i;
    for (i = 0; i < S2A_REDIS_SCRIPT_COUNT; i++) {
        redisReply *r = plain_command(c, "SCRIPT LOAD %s", s2a_redis_scripts[i]);
        int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
        if (ok) {
            apr_thread_mutex_lock(rs->mutex);
            memcpy(rs->sha[i], r->str, 40);
            rs->sha[i][40] = '\0';
            apr_thread_mutex_unlock(rs->mutex);
        } else {
            set_err(rs, "loading scripts",
                    r && r->type == REDIS_REPLY_ERROR ? r->str
                    : c->err                          ? c->errstr
                                                      : "no reply");
        }
        if (r) {
            freeReplyObject(r);
        }
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

/* A reply that is an error or no reply at all; frees it. */
static int setup_failed(redis_store *rs, redisContext *c, redisReply *r, const char *what)
{
    int failed = !r || r->type == REDIS_REPLY_ERROR;
    if (failed) {
        /* the server's words, never the password that was sent */
        set_err(rs, what, r ? r->str : c->errstr);
    }
    if (r) {
        freeReplyObject(r);
    }
    return failed;
}

static apr_status_t conn_make(void **res, void *params, apr_pool_t *pool)
{
    redis_store *rs = params;
    struct timeval connect_tv = {0, CONNECT_MSEC * 1000};
    struct timeval command_tv = {COMMAND_MSEC / 1000, (COMMAND_MSEC % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(rs->url.host, rs->url.port, connect_tv);
    conn_t *conn;
    (void)pool;

    if (!c || c->err) {
        set_err(rs, "cannot connect", c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, command_tv) != REDIS_OK) {
        set_err(rs, "cannot set a timeout", c->errstr);
        goto fail;
    }
    if (rs->url.password &&
        setup_failed(rs, c,
                     rs->url.user ? plain_command(c, "AUTH %s %s", rs->url.user, rs->url.password)
                                  : plain_command(c, "AUTH %s", rs->url.password),
                     "AUTH refused")) {
        goto fail;
    }
    if (rs->url.db && setup_failed(rs, c, plain_command(c, "SELECT %d", rs->url.db), "SELECT")) {
        goto fail;
    }
    if (!load_scripts(rs, c)) {
        goto fail;
    }
    conn = malloc(sizeof(*conn));
    if (!conn) {
        goto fail;
    }
    conn->c = c;
    conn->epoch = apr_atomic_read32(&rs->epoch);
    *res = conn;
    return APR_SUCCESS;

fail:
    if (c) {
        redisFree(c);
    }
    apr_thread_mutex_lock(rs->mutex);
    rs->down_until = apr_time_now() + apr_time_from_msec(RETRY_MSEC);
    apr_thread_mutex_unlock(rs->mutex);
    return APR_ECONNREFUSED;
}

static apr_status_t conn_free(void *res, void *params, apr_pool_t *pool)
{
    conn_t *conn = res;
    (void)params;
    (void)pool;
    redisFree(conn->c);
    free(conn);
    return APR_SUCCESS;
}

static int is_down(redis_store *rs)
{
    int down;
    apr_thread_mutex_lock(rs->mutex);
    down = apr_time_now() < rs->down_until;
    apr_thread_mutex_unlock(rs->mutex);
    return down;
}

/* A pooled connection made after the last one that broke: a broken
 * connection usually means the server went away, so its siblings made
 * before are dropped too rather than tried one by one. */
static conn_t *checkout(redis_store *rs)
{
    int i;
    for (i = 0; i <= POOL_HARD_MAX; i++) {
        void *res;
        conn_t *conn;
        if (is_down(rs)) {
            set_err(rs, "unreachable", "retrying shortly");
            return NULL;
        }
        if (apr_reslist_acquire(rs->conns, &res) != APR_SUCCESS) {
            return NULL;
        }
        conn = res;
        if (conn->epoch == apr_atomic_read32(&rs->epoch)) {
            return conn;
        }
        apr_reslist_invalidate(rs->conns, conn);
    }
    return NULL;
}

/* The SHA1 a script is known by; the first connection made learns it. */
static void set_sha(redis_store *rs, args_t *a)
{
    char *slot = a->buf + ARG_MAX_LEN;
    apr_thread_mutex_lock(rs->mutex);
    memcpy(slot, rs->sha[a->script], 41);
    apr_thread_mutex_unlock(rs->mutex);
    a->argv[1] = slot;
    a->len[1] = strlen(slot);
}

/* Runs one command; after a broken connection once more on a new one, and
 * after NOSCRIPT (the server lost its scripts) once more with them loaded.
 * The reply is the caller's to free; NULL on failure (see last_error). */
static redisReply *run(redis_store *rs, args_t *a)
{
    int attempt;
    for (attempt = 0; attempt < 2; attempt++) {
        conn_t *conn = checkout(rs);
        redisReply *r;
        if (!conn) {
            return NULL;
        }
        a->resent = attempt > 0;
        if (a->script >= 0) {
            set_sha(rs, a);
        }
        r = redisCommandArgv(conn->c, a->argc, a->argv, a->len);
        if (!r) {
            set_err(rs, "connection lost", conn->c->errstr);
            apr_atomic_inc32(&rs->epoch);
            apr_reslist_invalidate(rs->conns, conn);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && attempt == 0) {
            freeReplyObject(r);
            if (!load_scripts(rs, conn->c)) {
                apr_reslist_invalidate(rs->conns, conn);
                return NULL;
            }
            apr_reslist_release(rs->conns, conn);
            continue;
        }
        apr_reslist_release(rs->conns, conn);
        if (r->type == REDIS_REPLY_ERROR) {
            set_err(rs, "command refused", r->str);
            freeReplyObject(r);
            return NULL;
        }
        return r;
    }
    return NULL;
}

/* Starts EVALSHA of a script with `nkeys` keys; room for `max` arguments. */
static int eval_init(redis_store *rs, args_t *a, int script, int nkeys, int max)
{
    if (!args_init(a, max + 3)) {
        set_err(rs, "out of memory", NULL);
        return 0;
    }
    args_str(a, "EVALSHA");
    args_str(a, ""); /* set_sha */
    args_fmt(a, "%d", nkeys);
    a->script = script;
    return 1;
}

/* Runs the command and frees its arguments; an integer reply in *out. */
static apr_status_t run_int(redis_store *rs, args_t *a, long long *out)
{
    redisReply *r = run(rs, a);
    apr_status_t rv = APR_EGENERAL;
    args_free(a);
    if (!r) {
        return rv;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        if (out) {
            *out = r->integer;
        }
        rv = APR_SUCCESS;
    } else if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING ||
               r->type == REDIS_REPLY_NIL) {
        if (out) {
            *out = r->type == REDIS_REPLY_NIL ? 0 : r->str ? apr_atoi64(r->str) : 0;
        }
        rv = APR_SUCCESS;
    } else {
        set_err(rs, "unexpected reply", NULL);
    }
    freeReplyObject(r);
    return rv;
}

static void member(redis_store *rs, args_t *a, apr_uint64_t token)
{
    args_fmt(a, "%s:%" APR_UINT64_T_FMT, rs->instance, token);
}

static apr_uint32_t redis_generation(s2a_store *st, int fresh)
{
    redis_store *rs = impl(st);
    apr_time_t now = apr_time_now();
    apr_uint32_t local = rs->local ? s2a_state_generation(rs->local) : 0;
    apr_uint32_t remote;
    int read = 0;
    args_t a;
    long long v;

    apr_thread_mutex_lock(rs->mutex);
    if ((fresh || now - rs->gen_read >= apr_time_from_msec(S2A_REDIS_GENERATION_MSEC)) &&
        now >= rs->down_until) {
        rs->gen_read = now; /* one thread reads; the others use the last value */
        read = 1;
    }
    remote = rs->remote_gen;
    apr_thread_mutex_unlock(rs->mutex);
    if (read && args_init(&a, 2)) {
        args_str(&a, "GET");
        args_str(&a, "s2a:gen");
        if (run_int(rs, &a, &v) == APR_SUCCESS) {
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
    args_t a;
    apr_status_t rv;
    if (rs->local) {
        s2a_state_bump(rs->local);
    }
    if (!args_init(&a, 2)) {
        return APR_ENOMEM;
    }
    args_str(&a, "INCR");
    args_str(&a, "s2a:gen");
    rv = run_int(rs, &a, &v);
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
        args_t a;
        if (i == kept || !args_init(&a, 3)) {
            continue;
        }
        args_str(&a, "ZREM");
        args_fmt(&a, "s2a:busy:%" APR_INT64_T_FMT, c[i].key);
        member(rs, &a, token);
        run_int(rs, &a, NULL);
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
    args_t a;
    int i, resent;

    *held = 0;
    if (!eval_init(rs, &a, S2A_REDIS_SCRIPT_PICK, 2 + 2 * n, 2 + 2 * n + 8 + 4 * n)) {
        return APR_ENOMEM;
    }
    args_fmt(&a, "s2a:bind:%" APR_UINT64_T_FMT, session);
    for (i = 0; i < n; i++) {
        args_fmt(&a, "s2a:acct:%" APR_INT64_T_FMT, c[i].key);
        args_fmt(&a, "s2a:busy:%" APR_INT64_T_FMT, c[i].key);
    }
    /* a key is named either way: the key count stays what the script expects */
    args_fmt(&a, "s2a:bal:%" APR_INT64_T_FMT, with_balance ? bal->key : 0);
    args_fmt(&a, "%" APR_TIME_T_FMT, now);
    args_fmt(&a, "%" APR_TIME_T_FMT, ttl_ms);
    args_str(&a, wait_for_bound ? "1" : "0");
    args_fmt(&a, "%" APR_TIME_T_FMT, now + S2A_STORE_LEASE);
    args_fmt(&a, "%" APR_TIME_T_FMT, lease_msec());
    member(rs, &a, token);
    if (with_balance) {
        args_fmt(&a, "%" APR_INT64_T_FMT, bal->known);
    } else {
        args_str(&a, "");
    }
    args_fmt(&a, "%" APR_INT64_T_FMT, apr_time_as_msec(S2A_BALANCE_IDLE));
    for (i = 0; i < n; i++) {
        args_fmt(&a, "%" APR_INT64_T_FMT, c[i].key);
        args_fmt(&a, "%d", c[i].priority);
        args_fmt(&a, "%d", c[i].concurrency);
        args_fmt(&a, "%" APR_INT64_T_FMT, c[i].hold);
    }
    r = run(rs, &a);
    resent = a.resent;
    args_free(&a);
    rv = r && r->type == REDIS_REPLY_INTEGER ? APR_SUCCESS : APR_EGENERAL;
    v = rv == APR_SUCCESS ? r->integer : S2A_PICK_NONE;
    if (r) {
        freeReplyObject(r);
    }
    if (rv == APR_SUCCESS && (v >= n || v < S2A_PICK_BROKE)) {
        set_err(rs, "unexpected reply", NULL);
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
    args_t a;
    if (!limit) {
        *taken = -1;
        return APR_SUCCESS;
    }
    token = new_token(rs);
    if (!eval_init(rs, &a, S2A_REDIS_SCRIPT_ACQUIRE, 1, 6)) {
        return APR_ENOMEM;
    }
    args_fmt(&a, "s2a:busy:%" APR_INT64_T_FMT, key);
    args_fmt(&a, "%" APR_TIME_T_FMT, now);
    args_fmt(&a, "%d", limit);
    args_fmt(&a, "%" APR_TIME_T_FMT, now + S2A_STORE_LEASE);
    args_fmt(&a, "%" APR_TIME_T_FMT, lease_msec());
    member(rs, &a, token);
    rv = run_int(rs, &a, &v);
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
    args_t a;
    if (!args_init(&a, 3)) {
        return APR_ENOMEM;
    }
    args_str(&a, "ZREM");
    args_fmt(&a, "s2a:busy:%" APR_INT64_T_FMT, place->key);
    member(rs, &a, place->token);
    return run_int(rs, &a, NULL);
}

static apr_status_t redis_renew(s2a_store *st, s2a_place *place, apr_time_t now)
{
    redis_store *rs = impl(st);
    apr_status_t rv;
    args_t a;
    if (!eval_init(rs, &a, S2A_REDIS_SCRIPT_RENEW, 1, 4)) {
        return APR_ENOMEM;
    }
    args_fmt(&a, "s2a:busy:%" APR_INT64_T_FMT, place->key);
    args_fmt(&a, "%" APR_TIME_T_FMT, now + S2A_STORE_LEASE);
    args_fmt(&a, "%" APR_TIME_T_FMT, lease_msec());
    member(rs, &a, place->token);
    rv = run_int(rs, &a, NULL);
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
    args_t a;
    *retry_at = apr_time_from_sec((minute + 1) * 60);
    if (!per_minute) {
        *ok = 1;
        return APR_SUCCESS;
    }
    if (!eval_init(rs, &a, S2A_REDIS_SCRIPT_RATE, 1, 2)) {
        return APR_ENOMEM;
    }
    args_fmt(&a, "s2a:rpm:%" APR_INT64_T_FMT ":%" APR_INT64_T_FMT, key, minute);
    args_fmt(&a, "%d", per_minute);
    rv = run_int(rs, &a, &v);
    if (rv == APR_SUCCESS) {
        *ok = v ? 1 : 0;
    }
    return rv;
}

/* HSET of one or more fields of an account. */
static apr_status_t hset(redis_store *rs, apr_int64_t key, int nfields, const char *const *names,
                         const apr_int64_t *values)
{
    args_t a;
    int i;
    if (!args_init(&a, 2 + 2 * nfields)) {
        return APR_ENOMEM;
    }
    args_str(&a, "HSET");
    args_fmt(&a, "s2a:acct:%" APR_INT64_T_FMT, key);
    for (i = 0; i < nfields; i++) {
        args_str(&a, names[i]);
        args_fmt(&a, "%" APR_INT64_T_FMT, values[i]);
    }
    return run_int(rs, &a, NULL);
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
    args_t a;
    if (!eval_init(rs, &a, S2A_REDIS_SCRIPT_WINDOW, 1, 5)) {
        return APR_ENOMEM;
    }
    args_fmt(&a, "s2a:acct:%" APR_INT64_T_FMT, key);
    args_fmt(&a, "%d", status);
    args_fmt(&a, "%" APR_TIME_T_FMT, reset);
    args_fmt(&a, "%" APR_TIME_T_FMT, now);
    args_fmt(&a, "%d", S2A_WINDOW_REJECTED);
    return run_int(rs, &a, NULL);
}

static apr_status_t redis_get(s2a_store *st, apr_int64_t key, apr_time_t now,
                              s2a_account_state *out)
{
    redis_store *rs = impl(st);
    apr_status_t rv = APR_EGENERAL;
    redisReply *r;
    args_t a;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!eval_init(rs, &a, S2A_REDIS_SCRIPT_GET, 2, 3)) {
        return APR_ENOMEM;
    }
    args_fmt(&a, "s2a:acct:%" APR_INT64_T_FMT, key);
    args_fmt(&a, "s2a:busy:%" APR_INT64_T_FMT, key);
    args_fmt(&a, "%" APR_TIME_T_FMT, now);
    r = run(rs, &a);
    args_free(&a);
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
        set_err(rs, "unexpected reply", NULL);
    }
    freeReplyObject(r);
    return rv;
}

static apr_status_t redis_lock(s2a_store *st, const char *name, apr_time_t ttl, int *got)
{
    redis_store *rs = impl(st);
    redisReply *r;
    args_t a;
    if (!args_init(&a, 6)) {
        return APR_ENOMEM;
    }
    args_str(&a, "SET");
    args_fmt(&a, "s2a:lock:%" APR_INT64_T_FMT, s2a_state_key(name));
    args_str(&a, rs->instance);
    args_str(&a, "NX");
    args_str(&a, "PX");
    args_fmt(&a, "%" APR_TIME_T_FMT, apr_time_as_msec(ttl) + 1);
    r = run(rs, &a);
    args_free(&a);
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
    args_t a;
    if (!eval_init(rs, &a, S2A_REDIS_SCRIPT_UNLOCK, 1, 2)) {
        return APR_ENOMEM;
    }
    args_fmt(&a, "s2a:lock:%" APR_INT64_T_FMT, s2a_state_key(name));
    args_str(&a, rs->instance);
    return run_int(rs, &a, NULL);
}

static apr_status_t redis_forget_balance(s2a_store *st, apr_int64_t key)
{
    redis_store *rs = impl(st);
    args_t a;
    if (!args_init(&a, 3)) {
        return APR_ENOMEM;
    }
    args_str(&a, "HDEL");
    args_fmt(&a, "s2a:bal:%" APR_INT64_T_FMT, key);
    args_str(&a, "b");
    return run_int(rs, &a, NULL);
}

static apr_status_t redis_finish(s2a_store *st, s2a_place *const *places, int n,
                                 apr_int64_t balance_key, apr_int64_t held, apr_int64_t charged)
{
    redis_store *rs = impl(st);
    int i, taken = 0;
    args_t a;
    for (i = 0; i < n; i++) {
        taken += places[i]->key != 0;
    }
    if (!taken && !balance_key) {
        return APR_SUCCESS;
    }
    if (!eval_init(rs, &a, S2A_REDIS_SCRIPT_FINISH, taken + (balance_key != 0), 2 * taken + 4)) {
        return APR_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if (places[i]->key) {
            args_fmt(&a, "s2a:busy:%" APR_INT64_T_FMT, places[i]->key);
        }
    }
    if (balance_key) {
        args_fmt(&a, "s2a:bal:%" APR_INT64_T_FMT, balance_key);
    }
    args_fmt(&a, "%d", taken);
    for (i = 0; i < n; i++) {
        if (places[i]->key) {
            member(rs, &a, places[i]->token);
        }
    }
    if (balance_key) {
        args_fmt(&a, "%" APR_INT64_T_FMT, -held);
        args_fmt(&a, "%" APR_INT64_T_FMT, -charged);
    }
    return run_int(rs, &a, NULL);
}

static const char *redis_last_error(s2a_store *st, apr_pool_t *p)
{
    redis_store *rs = impl(st);
    const char *copy;
    apr_thread_mutex_lock(rs->mutex);
    copy = apr_pstrdup(p, rs->err);
    apr_thread_mutex_unlock(rs->mutex);
    return copy;
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
    redis_finish,
    redis_last_error,
};

/* Marks this process alive for ALIVE_MSEC; a failed beat is simply tried
 * again a beat later. */
static void heartbeat(redis_store *rs)
{
    args_t a;
    if (args_init(&a, 5)) {
        args_str(&a, "SET");
        args_fmt(&a, "s2a:alive:%s", rs->instance);
        args_str(&a, "1");
        args_str(&a, "PX");
        args_fmt(&a, "%d", ALIVE_MSEC);
        run_int(rs, &a, NULL);
    }
}

static void *APR_THREAD_FUNC beat(apr_thread_t *t, void *data)
{
    redis_store *rs = data;
    apr_thread_mutex_lock(rs->mutex);
    while (!rs->stopping) {
        apr_thread_mutex_unlock(rs->mutex);
        heartbeat(rs);
        apr_thread_mutex_lock(rs->mutex);
        if (!rs->stopping) {
            apr_thread_cond_timedwait(rs->wake, rs->mutex, apr_time_from_msec(HEARTBEAT_MSEC));
        }
    }
    apr_thread_mutex_unlock(rs->mutex);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* A pre-cleanup: runs before the thread's own pool and the connections go. */
static apr_status_t stop_heartbeat(void *data)
{
    redis_store *rs = data;
    apr_status_t rv;
    apr_thread_mutex_lock(rs->mutex);
    rs->stopping = 1;
    apr_thread_cond_signal(rs->wake);
    apr_thread_mutex_unlock(rs->mutex);
    apr_thread_join(&rv, rs->heartbeat);
    return APR_SUCCESS;
}

apr_status_t s2a_store_redis(apr_pool_t *p, const s2a_redis_url *url, s2a_state *local,
                             s2a_store **out)
{
    s2a_store *st = apr_pcalloc(p, sizeof(*st));
    redis_store *rs = apr_pcalloc(p, sizeof(*rs));
    unsigned char rnd[8];
    apr_status_t rv;
    int i;

    rs->url = *url;
    rs->local = local;
    if ((rv = apr_generate_random_bytes(rnd, sizeof(rnd))) != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < 8; i++) {
        apr_snprintf(rs->instance + 2 * i, 3, "%02x", rnd[i]);
    }
    if ((rv = apr_thread_mutex_create(&rs->mutex, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS) {
        return rv;
    }
    rv = apr_reslist_create(&rs->conns, 0, POOL_SOFT_MAX, POOL_HARD_MAX, apr_time_from_sec(60),
                            conn_make, conn_free, rs, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_reslist_timeout_set(rs->conns, apr_time_from_msec(COMMAND_MSEC));
    /* alive before it holds its first place */
    heartbeat(rs);
    if ((rv = apr_thread_cond_create(&rs->wake, p)) != APR_SUCCESS ||
        (rv = apr_thread_create(&rs->heartbeat, NULL, beat, rs, p)) != APR_SUCCESS) {
        return rv;
    }
    apr_pool_pre_cleanup_register(p, rs, stop_heartbeat);
    st->ops = &redis_ops;
    st->impl = rs;
    *out = st;
    return APR_SUCCESS;
}

s2a_redis_url *s2a_redis_url_parse(apr_pool_t *p, const char *url, const char **err)
{
    s2a_redis_url *u = apr_pcalloc(p, sizeof(*u));
    const char *rest, *at, *slash, *colon;
    char *hostport;

    if (strncmp(url, "redis://", 8) != 0) {
        *err = "must start with redis://";
        return NULL;
    }
    rest = url + 8;
    slash = strchr(rest, '/');
    at = strchr(rest, '@');
    if (at && (!slash || at < slash)) {
        const char *sep = memchr(rest, ':', (size_t)(at - rest));
        if (!sep) {
            *err = "credentials must be written user:password@ or :password@";
            return NULL;
        }
        u->user = sep > rest ? apr_pstrmemdup(p, rest, (size_t)(sep - rest)) : NULL;
        u->password = apr_pstrmemdup(p, sep + 1, (size_t)(at - sep - 1));
        rest = at + 1;
    }
    hostport = slash ? apr_pstrmemdup(p, rest, (size_t)(slash - rest)) : apr_pstrdup(p, rest);
    colon = strrchr(hostport, ':');
    u->port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || end == colon + 1 || port < 1 || port > 65535) {
            *err = "the port must be a number from 1 to 65535";
            return NULL;
        }
        u->port = (int)port;
        hostport[colon - hostport] = '\0';
    }
    if (!*hostport) {
        *err = "a host is required";
        return NULL;
    }
    u->host = hostport;
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 65535) {
            *err = "the database must be a number after the /";
            return NULL;
        }
        u->db = (int)db;
    }
    return u;
}
