/* The redis store's connections: see s2a_redis_conn.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_reslist.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include <unistd.h>

#include "s2a_redis_conn.h"
#include "s2a_tls_pipe.h"

#define CONNECT_MSEC 250
/* a TLS connection: the connect, the name's lookup and the handshake */
#define TLS_CONNECT_MSEC 2000
#define COMMAND_MSEC 1000
/* after a failed connect, commands fail at once for this long */
#define RETRY_MSEC 500
#define POOL_SOFT_MAX 4
#define POOL_HARD_MAX 64
#define POOL_IDLE_SEC 60
#define WORD_ROOM (S2A_REDIS_WORD_MAX + 1)
/* the heartbeat's key lasts this long after the last beat */
#define ALIVE_MSEC 3000
#define HEARTBEAT_MSEC 1000

typedef struct {
    redisContext *c;
    apr_uint32_t epoch; /* of the pool when made */
} conn_t;

struct s2a_redis_conn {
    s2a_redis_url url;
    const char *const *scripts;
    int nscripts;
    const char *alive_key;
    apr_reslist_t *conns;
    volatile apr_uint32_t epoch; /* moves when a connection breaks */
    char instance[17];
    apr_thread_t *heartbeat;
    apr_thread_cond_t *wake;
    apr_thread_mutex_t *mutex; /* guards what follows */
    char (*sha)[41];
    char err[160];
    char down_reason[160]; /* why the last connect failed, said while down */
    s2a_tls_client *tls;   /* rediss://: what its connections share; NULL when it failed */
    char tls_err[160];     /* why it failed */
    apr_time_t down_until;
    int stopping;
};

int s2a_redis_cmd_init(s2a_redis_conn *rc, s2a_redis_cmd *cmd, int max)
{
    cmd->argc = 0;
    cmd->max = max;
    cmd->overflow = 0;
    cmd->script = -1;
    cmd->resent = 0;
    cmd->argv = malloc(sizeof(*cmd->argv) * (size_t)max);
    cmd->len = malloc(sizeof(*cmd->len) * (size_t)max);
    cmd->buf = malloc((size_t)max * WORD_ROOM);
    if (!cmd->argv || !cmd->len || !cmd->buf) {
        s2a_redis_cmd_free(cmd);
        s2a_redis_conn_set_error(rc, "out of memory", NULL);
        return 0;
    }
    return 1;
}

void s2a_redis_cmd_free(s2a_redis_cmd *cmd)
{
    free(cmd->argv);
    free(cmd->len);
    free(cmd->buf);
}

/* Whether one more word fits; notes the overflow when not. */
static int room(s2a_redis_cmd *cmd)
{
    if (cmd->argc < cmd->max) {
        return 1;
    }
    cmd->overflow = 1;
    return 0;
}

void s2a_redis_cmd_str(s2a_redis_cmd *cmd, const char *s)
{
    if (!room(cmd)) {
        return;
    }
    cmd->argv[cmd->argc] = s;
    cmd->len[cmd->argc++] = strlen(s);
}

void s2a_redis_cmd_fmt(s2a_redis_cmd *cmd, const char *fmt, ...)
{
    char *slot = cmd->buf + (size_t)cmd->argc * WORD_ROOM;
    va_list ap;
    int n;
    if (!room(cmd)) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(slot, WORD_ROOM, fmt, ap);
    va_end(ap);
    cmd->argv[cmd->argc] = slot;
    cmd->len[cmd->argc++] = n < WORD_ROOM ? (size_t)n : S2A_REDIS_WORD_MAX;
}

int s2a_redis_cmd_script(s2a_redis_conn *rc, s2a_redis_cmd *cmd, int script, int nkeys, int max)
{
    if (!s2a_redis_cmd_init(rc, cmd, max + 3)) {
        return 0;
    }
    s2a_redis_cmd_str(cmd, "EVALSHA");
    s2a_redis_cmd_str(cmd, ""); /* set_sha */
    s2a_redis_cmd_fmt(cmd, "%d", nkeys);
    cmd->script = script;
    return 1;
}

void s2a_redis_conn_set_error(s2a_redis_conn *rc, const char *what, const char *detail)
{
    apr_thread_mutex_lock(rc->mutex);
    apr_snprintf(rc->err, sizeof(rc->err), "%s:%d: %s%s%s", rc->url.host, rc->url.port, what,
                 detail ? ": " : "", detail ? detail : "");
    apr_thread_mutex_unlock(rc->mutex);
}

const char *s2a_redis_conn_last_error(s2a_redis_conn *rc, apr_pool_t *p)
{
    const char *copy;
    apr_thread_mutex_lock(rc->mutex);
    copy = apr_pstrdup(p, rc->err);
    apr_thread_mutex_unlock(rc->mutex);
    return copy;
}

const char *s2a_redis_conn_instance(const s2a_redis_conn *rc)
{
    return rc->instance;
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
static int load_scripts(s2a_redis_conn *rc, redisContext *c)
{
    int i;
    for (i = 0; i < rc->nscripts; i++) {
        redisReply *r = plain_command(c, "SCRIPT LOAD %s", rc->scripts[i]);
        int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
        if (ok) {
            apr_thread_mutex_lock(rc->mutex);
            memcpy(rc->sha[i], r->str, 40);
            rc->sha[i][40] = '\0';
            apr_thread_mutex_unlock(rc->mutex);
        } else {
            s2a_redis_conn_set_error(rc, "loading scripts",
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
static int setup_failed(s2a_redis_conn *rc, redisContext *c, redisReply *r, const char *what)
{
    int failed = !r || r->type == REDIS_REPLY_ERROR;
    if (failed) {
        /* the server's words, never the password that was sent */
        s2a_redis_conn_set_error(rc, what, r ? r->str : c->errstr);
    }
    if (r) {
        freeReplyObject(r);
    }
    return failed;
}

static apr_status_t conn_make(void **res, void *params, apr_pool_t *pool)
{
    s2a_redis_conn *rc = params;
    struct timeval connect_tv = {0, CONNECT_MSEC * 1000};
    struct timeval command_tv = {COMMAND_MSEC / 1000, (COMMAND_MSEC % 1000) * 1000};
    redisContext *c = NULL;
    conn_t *conn;
    (void)pool;

    if (rc->url.tls) {
        char why[160];
        int fd = !rc->tls ? -1
                          : s2a_tls_pipe_open(rc->tls, rc->url.host, rc->url.port, TLS_CONNECT_MSEC,
                                              why, sizeof(why));
        if (fd < 0) {
            s2a_redis_conn_set_error(rc, "cannot connect over TLS", rc->tls ? why : rc->tls_err);
            goto fail;
        }
        /* hiredis reads and writes the pipe; closing it ends the TLS connection */
        if (!(c = redisConnectFd(fd))) {
            close(fd);
        }
    } else {
        c = redisConnectWithTimeout(rc->url.host, rc->url.port, connect_tv);
    }
    if (!c || c->err) {
        s2a_redis_conn_set_error(rc, "cannot connect", c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, command_tv) != REDIS_OK) {
        s2a_redis_conn_set_error(rc, "cannot set a timeout", c->errstr);
        goto fail;
    }
    if (rc->url.password &&
        setup_failed(rc, c,
                     rc->url.user ? plain_command(c, "AUTH %s %s", rc->url.user, rc->url.password)
                                  : plain_command(c, "AUTH %s", rc->url.password),
                     "AUTH refused")) {
        goto fail;
    }
    if (rc->url.db && setup_failed(rc, c, plain_command(c, "SELECT %d", rc->url.db), "SELECT")) {
        goto fail;
    }
    if (!load_scripts(rc, c)) {
        goto fail;
    }
    conn = malloc(sizeof(*conn));
    if (!conn) {
        goto fail;
    }
    conn->c = c;
    conn->epoch = apr_atomic_read32(&rc->epoch);
    *res = conn;
    return APR_SUCCESS;

fail:
    if (c) {
        redisFree(c);
    }
    apr_thread_mutex_lock(rc->mutex);
    rc->down_until = apr_time_now() + apr_time_from_msec(RETRY_MSEC);
    apr_cpystrn(rc->down_reason, rc->err, sizeof(rc->down_reason));
    apr_thread_mutex_unlock(rc->mutex);
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

int s2a_redis_conn_down(s2a_redis_conn *rc)
{
    int down;
    apr_thread_mutex_lock(rc->mutex);
    down = apr_time_now() < rc->down_until;
    apr_thread_mutex_unlock(rc->mutex);
    return down;
}

/* While down, the error names why the last connect failed. */
static void set_down_error(s2a_redis_conn *rc)
{
    apr_thread_mutex_lock(rc->mutex);
    apr_snprintf(rc->err, sizeof(rc->err), "%s (retrying shortly)", rc->down_reason);
    apr_thread_mutex_unlock(rc->mutex);
}

/* A pooled connection made after the last one that broke: a broken
 * connection usually means the server went away, so its siblings made
 * before are dropped too rather than tried one by one. */
static conn_t *checkout(s2a_redis_conn *rc)
{
    int i;
    for (i = 0; i <= POOL_HARD_MAX; i++) {
        void *res;
        conn_t *conn;
        if (s2a_redis_conn_down(rc)) {
            set_down_error(rc);
            return NULL;
        }
        if (apr_reslist_acquire(rc->conns, &res) != APR_SUCCESS) {
            return NULL;
        }
        conn = res;
        if (conn->epoch == apr_atomic_read32(&rc->epoch)) {
            return conn;
        }
        apr_reslist_invalidate(rc->conns, conn);
    }
    return NULL;
}

/* The SHA1 a script is known by; the first connection made learns it. */
static void set_sha(s2a_redis_conn *rc, s2a_redis_cmd *cmd)
{
    char *slot = cmd->buf + WORD_ROOM;
    apr_thread_mutex_lock(rc->mutex);
    memcpy(slot, rc->sha[cmd->script], 41);
    apr_thread_mutex_unlock(rc->mutex);
    cmd->argv[1] = slot;
    cmd->len[1] = strlen(slot);
}

redisReply *s2a_redis_run(s2a_redis_conn *rc, s2a_redis_cmd *cmd)
{
    int attempt;
    if (cmd->overflow) {
        s2a_redis_conn_set_error(rc, "command has more words than its room", NULL);
        return NULL;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        conn_t *conn = checkout(rc);
        redisReply *r;
        if (!conn) {
            return NULL;
        }
        cmd->resent = attempt > 0;
        if (cmd->script >= 0) {
            set_sha(rc, cmd);
        }
        r = redisCommandArgv(conn->c, cmd->argc, cmd->argv, cmd->len);
        if (!r) {
            s2a_redis_conn_set_error(rc, "connection lost", conn->c->errstr);
            apr_atomic_inc32(&rc->epoch);
            apr_reslist_invalidate(rc->conns, conn);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && attempt == 0) {
            freeReplyObject(r);
            if (!load_scripts(rc, conn->c)) {
                apr_reslist_invalidate(rc->conns, conn);
                return NULL;
            }
            apr_reslist_release(rc->conns, conn);
            continue;
        }
        apr_reslist_release(rc->conns, conn);
        if (r->type == REDIS_REPLY_ERROR) {
            s2a_redis_conn_set_error(rc, "command refused", r->str);
            freeReplyObject(r);
            return NULL;
        }
        return r;
    }
    return NULL;
}

apr_status_t s2a_redis_run_int(s2a_redis_conn *rc, s2a_redis_cmd *cmd, long long *out)
{
    redisReply *r = s2a_redis_run(rc, cmd);
    apr_status_t rv = APR_EGENERAL;
    s2a_redis_cmd_free(cmd);
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
        s2a_redis_conn_set_error(rc, "unexpected reply", NULL);
    }
    freeReplyObject(r);
    return rv;
}

/* Marks this process alive for ALIVE_MSEC; a failed beat is simply tried
 * again a beat later. */
static void heartbeat(s2a_redis_conn *rc)
{
    s2a_redis_cmd cmd;
    if (s2a_redis_cmd_init(rc, &cmd, 5)) {
        s2a_redis_cmd_str(&cmd, "SET");
        s2a_redis_cmd_str(&cmd, rc->alive_key);
        s2a_redis_cmd_str(&cmd, "1");
        s2a_redis_cmd_str(&cmd, "PX");
        s2a_redis_cmd_fmt(&cmd, "%d", ALIVE_MSEC);
        s2a_redis_run_int(rc, &cmd, NULL);
    }
}

static void *APR_THREAD_FUNC beat(apr_thread_t *t, void *data)
{
    s2a_redis_conn *rc = data;
    apr_thread_mutex_lock(rc->mutex);
    while (!rc->stopping) {
        apr_thread_mutex_unlock(rc->mutex);
        heartbeat(rc);
        apr_thread_mutex_lock(rc->mutex);
        if (!rc->stopping) {
            apr_thread_cond_timedwait(rc->wake, rc->mutex, apr_time_from_msec(HEARTBEAT_MSEC));
        }
    }
    apr_thread_mutex_unlock(rc->mutex);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* A pre-cleanup: runs before the thread's own pool and the connections go. */
static apr_status_t free_tls(void *data)
{
    s2a_tls_client_free(data);
    return APR_SUCCESS;
}

static apr_status_t stop_heartbeat(void *data)
{
    s2a_redis_conn *rc = data;
    apr_status_t rv;
    apr_thread_mutex_lock(rc->mutex);
    rc->stopping = 1;
    apr_thread_cond_signal(rc->wake);
    apr_thread_mutex_unlock(rc->mutex);
    apr_thread_join(&rv, rc->heartbeat);
    return APR_SUCCESS;
}

apr_status_t s2a_redis_conn_open(apr_pool_t *p, const s2a_redis_url *url,
                                 const char *const *scripts, int nscripts, const char *alive_prefix,
                                 s2a_redis_conn **out)
{
    s2a_redis_conn *rc = apr_pcalloc(p, sizeof(*rc));
    unsigned char rnd[8];
    apr_status_t rv;
    int i;

    rc->url = *url;
    rc->scripts = scripts;
    rc->nscripts = nscripts;
    rc->sha = apr_pcalloc(p, sizeof(*rc->sha) * (apr_size_t)nscripts);
    if ((rv = apr_generate_random_bytes(rnd, sizeof(rnd))) != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < 8; i++) {
        apr_snprintf(rc->instance + 2 * i, 3, "%02x", rnd[i]);
    }
    rc->alive_key = apr_pstrcat(p, alive_prefix, rc->instance, NULL);
    if ((rv = apr_thread_mutex_create(&rc->mutex, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS) {
        return rv;
    }
    if (rc->url.tls &&
        (rc->tls = s2a_tls_client_make(rc->url.ca_file, rc->tls_err, sizeof(rc->tls_err)))) {
        /* registered before the connections: freed after them */
        apr_pool_cleanup_register(p, rc->tls, free_tls, apr_pool_cleanup_null);
    }
    rv = apr_reslist_create(&rc->conns, 0, POOL_SOFT_MAX, POOL_HARD_MAX,
                            apr_time_from_sec(POOL_IDLE_SEC), conn_make, conn_free, rc, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_reslist_timeout_set(rc->conns, apr_time_from_msec(COMMAND_MSEC));
    /* alive before it holds its first place */
    heartbeat(rc);
    if ((rv = apr_thread_cond_create(&rc->wake, p)) != APR_SUCCESS ||
        (rv = apr_thread_create(&rc->heartbeat, NULL, beat, rc, p)) != APR_SUCCESS) {
        return rv;
    }
    apr_pool_pre_cleanup_register(p, rc, stop_heartbeat);
    *out = rc;
    return APR_SUCCESS;
}

s2a_redis_url *s2a_redis_url_parse(apr_pool_t *p, const char *url, const char **err)
{
    s2a_redis_url *u = apr_pcalloc(p, sizeof(*u));
    const char *rest, *at, *slash, *colon, *query;
    char *hostport;

    if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        rest = url + 9;
        u->tls = 1;
    } else {
        *err = "must start with redis:// or rediss://";
        return NULL;
    }
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
    if ((query = strchr(rest, '?')) != NULL) {
        if (!u->tls || strncmp(query + 1, "ca=", 3) != 0 || !query[4] || strchr(query + 4, '&')) {
            *err = "the only query is ?ca=/path of the CA file, with rediss://";
            return NULL;
        }
        u->ca_file = apr_pstrdup(p, query + 4);
        rest = apr_pstrmemdup(p, rest, (size_t)(query - rest));
    }
    slash = strchr(rest, '/');
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
