/* The store interface: the same cases against the shm provider and against
 * the redis provider talking to a real redis-server this program starts on
 * a free port, in plain and over TLS (rediss://, with a certificate made
 * here). Then what only Redis can do to us: lose its scripts, go away and
 * come back, refuse a password or show a certificate we do not trust. */
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_store.h"
#include "s2a_test.h"

/* The test's redis-server asks for a password, as a shared one would. */
#define REDIS_PASSWORD "unit-store-secret"

static int redis_port, redis_tls_port;
static pid_t redis_pid;
/* the server's certificate (its own CA), and one that did not sign it */
static char tls_dir[] = "/tmp/s2a-store-tls-XXXXXX";
static char tls_cert[64], tls_key[64], tls_other[64];

static const char *redis_url(apr_pool_t *p, const char *password)
{
    return apr_psprintf(p, "redis://:%s@127.0.0.1:%d/3", password, redis_port);
}

static const char *redis_tls_url(apr_pool_t *p, const char *host, const char *ca)
{
    return apr_psprintf(p, "rediss://:%s@%s:%d/3?ca=%s", REDIS_PASSWORD, host, redis_tls_port, ca);
}

/* A self-signed certificate for 127.0.0.1 (and another one), by openssl. */
static int make_certificates(void)
{
    char cmd[512];
    if (!mkdtemp(tls_dir)) {
        return 0;
    }
    apr_snprintf(tls_cert, sizeof(tls_cert), "%s/cert.pem", tls_dir);
    apr_snprintf(tls_key, sizeof(tls_key), "%s/key.pem", tls_dir);
    apr_snprintf(tls_other, sizeof(tls_other), "%s/other.pem", tls_dir);
    apr_snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
                 " -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null &&"
                 " openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
                 " -addext subjectAltName=IP:127.0.0.1 -keyout %s/other-key.pem -out %s"
                 " 2>/dev/null",
                 tls_key, tls_cert, tls_dir, tls_other);
    return system(cmd) == 0;
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

/* A command on a connection of the test's own (not the store's). */
static int redis_do(const char *cmd)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    redisReply *r;
    int ok = 0;
    if (c && !c->err) {
        r = redisCommand(c, "AUTH %s", REDIS_PASSWORD);
        if (r) {
            freeReplyObject(r);
        }
        r = redisCommand(c, cmd);
        ok = r && r->type != REDIS_REPLY_ERROR;
        if (r) {
            freeReplyObject(r);
        }
    }
    if (c) {
        redisFree(c);
    }
    return ok;
}

static int redis_start(void)
{
    char port[16], tls_port[16];
    int i;
    if (!redis_port) {
        redis_port = free_port();
    }
    if (!redis_tls_port) {
        redis_tls_port = free_port();
    }
    apr_snprintf(port, sizeof(port), "%d", redis_port);
    apr_snprintf(tls_port, sizeof(tls_port), "%d", redis_tls_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) {
            _exit(126);
        }
        /* one server: plain on one port, TLS on another */
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", "--requirepass", REDIS_PASSWORD,
               "--tls-port", tls_port, "--tls-cert-file", tls_cert, "--tls-key-file", tls_key,
               "--tls-ca-cert-file", tls_cert, "--tls-auth-clients", "no", (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 200; i++) {
        if (redis_do("PING")) {
            return 1;
        }
        usleep(25000);
    }
    return 0;
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

typedef struct {
    const char *name;
    s2a_store *(*make)(apr_pool_t *p);
} provider;

static s2a_state *make_state(apr_pool_t *p)
{
    return s2a_state_init(p, apr_pcalloc(p, s2a_state_size(64, 64)), 64, 64);
}

static s2a_store *make_shm(apr_pool_t *p)
{
    return s2a_store_shm(p, make_state(p));
}

static s2a_store *make_redis(apr_pool_t *p)
{
    const char *err = NULL;
    s2a_redis_url *u = s2a_redis_url_parse(p, redis_url(p, REDIS_PASSWORD), &err);
    s2a_store *st = NULL;
    redis_do("FLUSHALL");
    if (!u || s2a_store_redis(p, u, make_state(p), &st) != APR_SUCCESS) {
        return NULL;
    }
    return st;
}

static int pick(s2a_store *st, const s2a_candidate *c, int n, apr_time_t now, apr_uint64_t session,
                int wait, s2a_place *place)
{
    int picked = -99, held = -99;
    s2a_place unused;
    apr_status_t rv = st->ops->pick(st, c, n, now, session, session ? apr_time_from_sec(60) : 0,
                                    wait, NULL, &picked, place ? place : &unused, &held);
    S2A_CHECK_INT(held, 0);
    return rv == APR_SUCCESS ? picked : -99;
}

static void test_priority_then_least_recently_used(s2a_store *st)
{
    s2a_candidate c[3] = {{11, 50, 0, 0}, {12, 10, 0, 0}, {13, 10, 0, 0}};
    apr_time_t t = apr_time_now();
    int first = pick(st, c, 3, t, 0, 0, NULL);
    int second = pick(st, c, 3, t + 1, 0, 0, NULL);
    int third = pick(st, c, 3, t + 2, 0, 0, NULL);
    S2A_CHECK(first == 1 || first == 2);
    S2A_CHECK(second == 1 || second == 2);
    S2A_CHECK(first != second);
    S2A_CHECK_INT(third, first);
}

static void test_rests_and_errors(s2a_store *st)
{
    s2a_candidate c[2] = {{21, 10, 0, 0}, {22, 20, 0, 0}};
    apr_time_t now = apr_time_now();
    s2a_account_state a;

    S2A_CHECK_INT(st->ops->set_rate_limited(st, 21, now + apr_time_from_sec(60)), APR_SUCCESS);
    S2A_CHECK_INT(pick(st, c, 2, now, 0, 0, NULL), 1);
    S2A_CHECK_INT(pick(st, c, 2, now + apr_time_from_sec(61), 0, 0, NULL), 0);

    S2A_CHECK_INT(st->ops->set_overloaded(st, 21, now + apr_time_from_sec(600)), APR_SUCCESS);
    S2A_CHECK_INT(st->ops->set_error(st, 22, 1), APR_SUCCESS);
    S2A_CHECK_INT(pick(st, c, 2, now + apr_time_from_sec(100), 0, 0, NULL), S2A_PICK_NONE);

    st->ops->clear(st, 22, 0); /* the rests only: the error stays */
    S2A_CHECK_INT(st->ops->get(st, 22, now, &a), APR_SUCCESS);
    S2A_CHECK_INT(a.error, 1);
    st->ops->clear(st, 21, 1);
    S2A_CHECK_INT(pick(st, c, 2, now + apr_time_from_sec(100), 0, 0, NULL), 0);
    S2A_CHECK_INT(st->ops->get(st, 21, now, &a), APR_SUCCESS);
    S2A_CHECK_INT(a.overloaded_until, 0);
    S2A_CHECK_INT(a.last_used, now + apr_time_from_sec(100));
}

static void test_concurrency(s2a_store *st)
{
    s2a_candidate c[2] = {{31, 10, 1, 0}, {32, 10, 2, 0}};
    apr_time_t now = apr_time_now();
    s2a_place p[4];
    s2a_account_state a;
    int i;

    /* three places in all: then every account is full */
    for (i = 0; i < 3; i++) {
        S2A_CHECK(pick(st, c, 2, now + i, 0, 0, &p[i]) >= 0);
    }
    S2A_CHECK_INT(pick(st, c, 2, now + 3, 0, 0, NULL), S2A_PICK_BUSY);
    st->ops->get(st, 32, now, &a);
    S2A_CHECK_INT(a.in_flight, 2);
    S2A_CHECK_INT(st->ops->release(st, &p[0]), APR_SUCCESS);
    S2A_CHECK(pick(st, c, 2, now + 4, 0, 0, &p[3]) >= 0);
    S2A_CHECK_INT(p[3].key, p[0].key);
    S2A_CHECK_INT(p[3].account, 1);
    for (i = 1; i < 4; i++) {
        st->ops->release(st, &p[i]);
    }
    st->ops->get(st, 31, now, &a);
    S2A_CHECK_INT(a.in_flight, 0);
    st->ops->get(st, 32, now, &a);
    S2A_CHECK_INT(a.in_flight, 0);
}

static void test_lower_load_wins(s2a_store *st)
{
    s2a_candidate c[2] = {{41, 10, 10, 0}, {42, 10, 2, 0}};
    apr_time_t now = apr_time_now();
    s2a_place p;
    /* one request on each: 1/10 is less loaded than 1/2 */
    S2A_CHECK(pick(st, c, 2, now, 0, 0, &p) >= 0);
    S2A_CHECK(pick(st, c, 2, now + 1, 0, 0, &p) >= 0);
    S2A_CHECK_INT(pick(st, c, 2, now + 2, 0, 0, &p), 0);
    S2A_CHECK_INT(pick(st, c, 2, now + 3, 0, 0, &p), 0);
}

static void test_sticky(s2a_store *st)
{
    s2a_candidate c[3] = {{51, 10, 1, 0}, {52, 10, 0, 0}, {53, 10, 0, 0}};
    apr_time_t now = apr_time_now();
    apr_uint64_t session = 0xabcdef12345ULL;
    s2a_place p, q;
    int bound = pick(st, c, 3, now, session, 0, &p), again, other;

    S2A_CHECK(bound >= 0);
    /* later requests of the conversation keep it, though others were used less */
    st->ops->release(st, &p);
    again = pick(st, c, 3, now + 10, session, 0, &p);
    S2A_CHECK_INT(again, bound);
    st->ops->release(st, &p);
    again = pick(st, c, 3, now + 20, session, 0, &p);
    S2A_CHECK_INT(again, bound);
    st->ops->release(st, &p);

    /* the bound account rests: the conversation moves and stays moved */
    st->ops->set_rate_limited(st, c[bound].key, now + apr_time_from_sec(600));
    other = pick(st, c, 3, now + 30, session, 0, &p);
    S2A_CHECK(other >= 0 && other != bound);
    st->ops->release(st, &p);
    st->ops->clear(st, c[bound].key, 1);
    S2A_CHECK_INT(pick(st, c, 3, now + 40, session, 0, &p), other);
    st->ops->release(st, &p);

    /* a full bound account: wait for it, or move when not waiting */
    S2A_CHECK_INT(pick(st, c, 1, now + 50, 77, 0, &p), 0);
    S2A_CHECK_INT(pick(st, c, 3, now + 60, 77, 1, &q), S2A_PICK_BUSY);
    S2A_CHECK(pick(st, c, 3, now + 70, 77, 0, &q) > 0);
    st->ops->release(st, &p);
    st->ops->release(st, &q);
}

static void test_limits(s2a_store *st)
{
    apr_time_t now = apr_time_now();
    s2a_place p[3];
    int t[4];
    S2A_CHECK_INT(st->ops->acquire(st, 61, 2, now, &t[0], &p[0]), APR_SUCCESS);
    st->ops->acquire(st, 61, 2, now, &t[1], &p[1]);
    st->ops->acquire(st, 61, 2, now, &t[2], &p[2]);
    S2A_CHECK_INT(t[0], 1);
    S2A_CHECK_INT(t[1], 1);
    S2A_CHECK_INT(t[2], 0);
    S2A_CHECK_INT(p[0].account, 0);
    st->ops->release(st, &p[0]);
    st->ops->acquire(st, 61, 2, now, &t[3], &p[2]);
    S2A_CHECK_INT(t[3], 1);
    /* no limit: let through, nothing to give back */
    st->ops->acquire(st, 62, 0, now, &t[0], &p[0]);
    S2A_CHECK_INT(t[0], -1);
    st->ops->release(st, &p[1]);
    st->ops->release(st, &p[2]);
}

static void test_rate(s2a_store *st)
{
    apr_time_t now = apr_time_from_sec(apr_time_sec(apr_time_now()) / 60 * 60 + 5);
    apr_time_t retry = 0;
    int ok, i, passed = 0;
    for (i = 0; i < 4; i++) {
        S2A_CHECK_INT(st->ops->rate(st, 71, 3, now, &ok, &retry), APR_SUCCESS);
        passed += ok;
    }
    S2A_CHECK_INT(passed, 3);
    S2A_CHECK_INT(retry, now + apr_time_from_sec(55));
    st->ops->rate(st, 71, 3, now + apr_time_from_sec(60), &ok, &retry);
    S2A_CHECK_INT(ok, 1);
    st->ops->rate(st, 72, 0, now, &ok, &retry);
    S2A_CHECK_INT(ok, 1);
}

static void test_window(s2a_store *st)
{
    s2a_candidate c[1] = {{81, 10, 0, 0}};
    apr_time_t now = apr_time_now();
    s2a_account_state a;
    st->ops->set_window(st, 81, S2A_WINDOW_WARNING, now + apr_time_from_sec(3600), now);
    S2A_CHECK_INT(pick(st, c, 1, now, 0, 0, NULL), 0);
    st->ops->set_window(st, 81, S2A_WINDOW_REJECTED, now + apr_time_from_sec(3600), now);
    S2A_CHECK_INT(pick(st, c, 1, now + 1, 0, 0, NULL), S2A_PICK_NONE);
    st->ops->get(st, 81, now, &a);
    S2A_CHECK_INT(a.window_status, S2A_WINDOW_REJECTED);
    S2A_CHECK_INT(a.window_reset, now + apr_time_from_sec(3600));
    S2A_CHECK_INT(a.rate_limited_until, now + apr_time_from_sec(3600));
    S2A_CHECK_INT(pick(st, c, 1, now + apr_time_from_sec(3601), 0, 0, NULL), 0);
}

static void test_lock(s2a_store *st)
{
    int got = -1;
    S2A_CHECK_INT(st->ops->lock(st, "oauth:1", apr_time_from_msec(300), &got), APR_SUCCESS);
    S2A_CHECK_INT(got, 1);
    st->ops->lock(st, "oauth:1", apr_time_from_msec(300), &got);
    S2A_CHECK_INT(got, 0);
    st->ops->lock(st, "oauth:2", apr_time_from_msec(300), &got);
    S2A_CHECK_INT(got, 1);
    S2A_CHECK_INT(st->ops->unlock(st, "oauth:1"), APR_SUCCESS);
    st->ops->lock(st, "oauth:1", apr_time_from_msec(300), &got);
    S2A_CHECK_INT(got, 1);
    /* a holder that never unlocks loses the lock when its time is up */
    apr_sleep(apr_time_from_msec(350));
    st->ops->lock(st, "oauth:2", apr_time_from_msec(300), &got);
    S2A_CHECK_INT(got, 1);
}

/* A balance spent by requests in flight: let in while something is left
 * unheld, charged on settling, brought again after an operator's change.
 * The pick holds it; an account without limit serves, its place is given
 * back at once. */
static int let_in(s2a_store *st, apr_int64_t user, apr_int64_t known, apr_int64_t amount)
{
    s2a_candidate c = {700, 1, 0, amount};
    s2a_balance bal = {user, known};
    s2a_place pl;
    s2a_place *const one[] = {&pl};
    int picked = -99, held = -99;
    S2A_CHECK_INT(st->ops->pick(st, &c, 1, apr_time_now(), 0, 0, 0, &bal, &picked, &pl, &held),
                  APR_SUCCESS);
    if (picked == 0) {
        S2A_CHECK_INT(st->ops->finish(st, one, 1, NULL, 0), APR_SUCCESS);
        return held;
    }
    S2A_CHECK_INT(picked, S2A_PICK_BROKE);
    S2A_CHECK_INT(held, 0);
    return 0;
}

/* A pick the balance refuses takes no place; one that finds every account
 * full holds nothing; the hold is the picked candidate's own. */
static void test_balance_and_places(s2a_store *st)
{
    s2a_candidate c[2] = {{710, 1, 1, 400}, {711, 2, 1, 30}};
    s2a_balance broke = {520, 0}, rich = {521, 1000};
    s2a_place a, b, none;
    s2a_place *const both[] = {&a, &b};
    apr_time_t now = apr_time_now();
    int picked = -99, held = -99;

    S2A_CHECK_INT(st->ops->pick(st, c, 2, now, 0, 0, 0, &broke, &picked, &a, &held), APR_SUCCESS);
    S2A_CHECK_INT(picked, S2A_PICK_BROKE);
    /* the refused pick left both accounts free */
    S2A_CHECK_INT(pick(st, c, 2, now, 0, 0, &a), 0);
    S2A_CHECK_INT(pick(st, c, 2, now, 0, 0, &b), 1);
    S2A_CHECK_INT(st->ops->pick(st, c, 2, now, 0, 0, 0, &rich, &picked, &none, &held), APR_SUCCESS);
    S2A_CHECK_INT(picked, S2A_PICK_BUSY);
    S2A_CHECK_INT(held, 0);
    S2A_CHECK_INT(st->ops->finish(st, both, 1, NULL, 0), APR_SUCCESS);
    /* the first is free again: it serves and 400 of 1000 are held */
    S2A_CHECK_INT(st->ops->pick(st, c, 2, now, 0, 0, 0, &rich, &picked, &a, &held), APR_SUCCESS);
    S2A_CHECK_INT(picked, 0);
    S2A_CHECK_INT(held, 1);
    S2A_CHECK_INT(let_in(st, 521, 1000, 599), 1);
    S2A_CHECK_INT(let_in(st, 521, 1000, 1), 1);
    S2A_CHECK_INT(let_in(st, 521, 1000, 1), 0);
    /* settled at 100: 900 left, 600 held */
    {
        s2a_settlement done = {521, 400, 100, 0, 0};
        S2A_CHECK_INT(st->ops->finish(st, both, 2, &done, 1), APR_SUCCESS);
    }
    S2A_CHECK_INT(let_in(st, 521, 1000, 300), 1);
    S2A_CHECK_INT(let_in(st, 521, 1000, 1), 0);
}

/* A request that held `held` ends having cost `charged`, with no place. */
static apr_status_t settle(s2a_store *st, apr_int64_t user, apr_int64_t held, apr_int64_t charged)
{
    s2a_settlement done = {user, held, charged, 0, 0};
    return st->ops->finish(st, NULL, 0, &done, 1);
}

static void test_balance(s2a_store *st)
{
    /* the first request brings the database's figure, 1000 */
    S2A_CHECK_INT(let_in(st, 501, 1000, 600), 1);
    /* 400 unheld: the next is let in, though it holds more than that */
    S2A_CHECK_INT(let_in(st, 501, 999999, 600), 1);
    S2A_CHECK_INT(let_in(st, 501, 1000, 1), 0);
    /* the first cost 300: balance 700, 600 held */
    S2A_CHECK_INT(settle(st, 501, 600, 300), APR_SUCCESS);
    S2A_CHECK_INT(let_in(st, 501, 1000, 50), 1);
    /* the second cost 700: balance 0, 50 held */
    settle(st, 501, 600, 700);
    S2A_CHECK_INT(let_in(st, 501, 1000, 50), 0);
    settle(st, 501, 50, 0);
    S2A_CHECK_INT(let_in(st, 501, 1000, 1), 0);
    /* an operator topped it up: the next request brings the new figure */
    S2A_CHECK_INT(st->ops->forget_balance(st, 501), APR_SUCCESS);
    S2A_CHECK_INT(let_in(st, 501, 500, 100), 1);
    /* ... and holds in flight survive a second change */
    st->ops->forget_balance(st, 501);
    S2A_CHECK_INT(let_in(st, 501, 60, 10), 0);
    settle(st, 501, 100, 0);
    S2A_CHECK_INT(let_in(st, 501, 1, 10), 1);
    /* users are apart; nothing known at zero lets nothing in */
    S2A_CHECK_INT(let_in(st, 502, 0, 10), 0);
    S2A_CHECK_INT(let_in(st, 503, 5, 10), 1);
    /* places and the hold go back together */
    {
        s2a_place kp, none;
        s2a_place *const both[] = {&kp, &none};
        int taken = 0;
        memset(&none, 0, sizeof(none));
        S2A_CHECK_INT(st->ops->acquire(st, 601, 1, apr_time_now(), &taken, &kp), APR_SUCCESS);
        S2A_CHECK_INT(taken, 1);
        S2A_CHECK_INT(let_in(st, 602, 100, 100), 1);
        S2A_CHECK_INT(let_in(st, 602, 100, 1), 0);
        st->ops->acquire(st, 601, 1, apr_time_now(), &taken, &none);
        S2A_CHECK_INT(taken, 0);
        memset(&none, 0, sizeof(none));
        s2a_settlement done = {602, 100, 40, 0, 0};
        S2A_CHECK_INT(st->ops->finish(st, both, 2, &done, 1), APR_SUCCESS);
        st->ops->acquire(st, 601, 1, apr_time_now(), &taken, &kp);
        S2A_CHECK_INT(taken, 1);
        S2A_CHECK_INT(let_in(st, 602, 100, 1), 1);
        S2A_CHECK_INT(st->ops->finish(st, both, 1, NULL, 0), APR_SUCCESS);
    }
    /* settling a user never seen changes nothing */
    S2A_CHECK_INT(settle(st, 504, 10, 10), APR_SUCCESS);
    S2A_CHECK_INT(let_in(st, 504, 20, 10), 1);
}

/* A window ended while a request ran: its hold comes off the figure it held
 * from, and what it spent goes off the next run's, opened at the windows'
 * figure when no request holds from it yet, else charged as it stands. */
/* reserve's answer for `amount` of `b` now: 1 held, 0 refused. */
static int holds(s2a_store *st, const s2a_balance *b, apr_int64_t amount)
{
    int held = -99;
    S2A_CHECK_INT(st->ops->reserve(st, b, amount, apr_time_now(), &held), APR_SUCCESS);
    return held;
}

static void test_spend_on_the_next_run(s2a_store *st)
{
    s2a_balance old = {831, 1000}, next = {832, 999999};
    s2a_settlement done[2];

    memset(done, 0, sizeof(done));
    S2A_CHECK_INT(holds(st, &old, 100), 1);
    S2A_CHECK_INT(holds(st, &old, 900), 1);
    done[0].key = 831;
    done[0].held = 100;
    done[1].key = 832;
    done[1].spent = 40;
    done[1].open = 1;
    done[1].known = 500;
    S2A_CHECK_INT(st->ops->finish(st, NULL, 0, done, 2), APR_SUCCESS);
    /* 831: the hold is off, nothing spent: 1000 less the 900 still held */
    S2A_CHECK_INT(holds(st, &old, 1), 1);
    /* 832 opened at 500 less 40, not at the 999999 a later request knows */
    S2A_CHECK_INT(holds(st, &next, 460), 1);
    S2A_CHECK_INT(holds(st, &next, 1), 0);
    /* a figure known already is charged as it stands */
    done[1].spent = 60;
    done[1].known = 999999;
    S2A_CHECK_INT(st->ops->finish(st, NULL, 0, done + 1, 1), APR_SUCCESS);
    done[0].key = 832;
    done[0].held = 460;
    S2A_CHECK_INT(st->ops->finish(st, NULL, 0, done, 1), APR_SUCCESS);
    S2A_CHECK_INT(holds(st, &next, 400), 1);
    S2A_CHECK_INT(holds(st, &next, 1), 0);
}

/* One request may end holding a place and several balances at once (its
 * user, its key's budget, its allowance windows): one finish settles all. */
static void test_finish_many(s2a_store *st)
{
    s2a_candidate c = {720, 1, 1, 0};
    s2a_balance b[4] = {{811, 100}, {812, 100}, {813, 100}, {814, 100}};
    s2a_settlement done[4];
    s2a_place pl;
    s2a_place *const one[] = {&pl};
    int i, held = -99;
    memset(done, 0, sizeof(done));
    S2A_CHECK_INT(pick(st, &c, 1, apr_time_now(), 0, 0, &pl), 0);
    for (i = 0; i < 4; i++) {
        S2A_CHECK_INT(st->ops->reserve(st, &b[i], 100, apr_time_now(), &held), APR_SUCCESS);
        S2A_CHECK_INT(held, 1);
        done[i].key = b[i].key;
        done[i].held = 100;
        done[i].spent = 10 * (i + 1);
    }
    S2A_CHECK_INT(st->ops->finish(st, one, 1, done, 4), APR_SUCCESS);
    /* the place is free again and each balance lost only what was spent */
    S2A_CHECK_INT(pick(st, &c, 1, apr_time_now(), 0, 0, &pl), 0);
    S2A_CHECK_INT(st->ops->finish(st, one, 1, NULL, 0), APR_SUCCESS);
    for (i = 0; i < 4; i++) {
        S2A_CHECK_INT(st->ops->reserve(st, &b[i], 90 - 10 * i, apr_time_now(), &held), APR_SUCCESS);
        S2A_CHECK_INT(held, 1);
        S2A_CHECK_INT(st->ops->reserve(st, &b[i], 1, apr_time_now(), &held), APR_SUCCESS);
        S2A_CHECK_INT(held, 0);
    }
}

static void test_generation(s2a_store *st)
{
    apr_uint32_t g = st->ops->generation(st, 0);
    S2A_CHECK_INT(st->ops->bump(st), APR_SUCCESS);
    S2A_CHECK(st->ops->generation(st, 0) != g);
}

/* A second balance (a key's budget) held outside the pick: let in while
 * something is left unheld, and settled with the first in one finish. */
static void test_reserve(s2a_store *st)
{
    s2a_balance budget = {801, 1000};
    s2a_settlement both[2] = {{801, 600, 250, 0, 0}, {802, 600, 250, 0, 0}};
    int held = -99;
    S2A_CHECK_INT(st->ops->reserve(st, &budget, 600, apr_time_now(), &held), APR_SUCCESS);
    S2A_CHECK_INT(held, 1);
    S2A_CHECK_INT(st->ops->reserve(st, &budget, 600, apr_time_now(), &held), APR_SUCCESS);
    S2A_CHECK_INT(held, 1);
    S2A_CHECK_INT(st->ops->reserve(st, &budget, 1, apr_time_now(), &held), APR_SUCCESS);
    S2A_CHECK_INT(held, 0);
    S2A_CHECK_INT(let_in(st, 802, 5000, 600), 1);
    /* one request ends: 750 left of the budget, 600 held */
    S2A_CHECK_INT(st->ops->finish(st, NULL, 0, both, 2), APR_SUCCESS);
    S2A_CHECK_INT(st->ops->reserve(st, &budget, 100, apr_time_now(), &held), APR_SUCCESS);
    S2A_CHECK_INT(held, 1);
    /* the other cost the rest */
    both[0].spent = 750;
    S2A_CHECK_INT(st->ops->finish(st, NULL, 0, both, 1), APR_SUCCESS);
    both[0].held = 100;
    both[0].spent = 0;
    S2A_CHECK_INT(st->ops->finish(st, NULL, 0, both, 1), APR_SUCCESS);
    S2A_CHECK_INT(st->ops->reserve(st, &budget, 1, apr_time_now(), &held), APR_SUCCESS);
    S2A_CHECK_INT(held, 0);
    /* the user's balance was settled with it: 5000 - 250, nothing held */
    S2A_CHECK_INT(let_in(st, 802, 1, 4750), 1);
    S2A_CHECK_INT(let_in(st, 802, 1, 1), 0);
}

static void run_common(apr_pool_t *root, const provider *pv)
{
    void (*const tests[])(s2a_store *) = {test_priority_then_least_recently_used,
                                          test_rests_and_errors,
                                          test_concurrency,
                                          test_lower_load_wins,
                                          test_sticky,
                                          test_limits,
                                          test_rate,
                                          test_window,
                                          test_lock,
                                          test_balance,
                                          test_balance_and_places,
                                          test_reserve,
                                          test_finish_many,
                                          test_spend_on_the_next_run,
                                          test_generation};
    size_t i;
    for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        apr_pool_t *p;
        s2a_store *st;
        int before = s2a_test_failed;
        apr_pool_create(&p, root);
        st = pv->make(p);
        S2A_CHECK(st != NULL);
        if (st) {
            S2A_CHECK_STR(st->ops->name, pv->name);
            tests[i](st);
        }
        if (s2a_test_failed != before) {
            fprintf(stderr, "  (provider %s, case %zu)\n", pv->name, i + 1);
        }
        apr_pool_destroy(p);
    }
}

/* Another node's process sees the same places and bindings. */
static void test_two_nodes(apr_pool_t *p)
{
    s2a_store *a = make_redis(p), *b;
    s2a_candidate c[2] = {{91, 10, 1, 0}, {92, 10, 1, 0}};
    apr_time_t now = apr_time_now();
    s2a_place pa, pb;
    const char *err = NULL;
    apr_uint32_t gen;
    int bound;
    s2a_store_redis(p, s2a_redis_url_parse(p, redis_url(p, REDIS_PASSWORD), &err), make_state(p),
                    &b);
    S2A_CHECK(pick(a, c, 2, now, 5, 0, &pa) >= 0);
    /* b's process cannot take a's place, and the conversation waits for it */
    S2A_CHECK_INT(pick(b, c, 2, now + 1, 5, 1, &pb), S2A_PICK_BUSY);
    S2A_CHECK(pick(b, c, 2, now + 2, 0, 0, &pb) >= 0);
    S2A_CHECK(pb.key != pa.key);
    S2A_CHECK_INT(pick(a, c, 2, now + 3, 0, 0, NULL), S2A_PICK_BUSY);
    /* a's release is seen by b */
    bound = pa.key == c[0].key ? 0 : 1;
    a->ops->release(a, &pa);
    S2A_CHECK_INT(pick(b, c, 2, now + 4, 5, 1, &pa), bound);
    /* a change made through one is seen by the other when it asks afresh */
    gen = b->ops->generation(b, 1);
    S2A_CHECK_INT(a->ops->bump(a), APR_SUCCESS);
    S2A_CHECK(b->ops->generation(b, 1) != gen);
}

/* A place whose process died (never released) frees itself when its lease
 * ends; a renewed one holds. */
static void test_lease(apr_pool_t *p)
{
    s2a_store *st = make_redis(p);
    s2a_candidate c[1] = {{101, 10, 1, 0}};
    apr_time_t now = apr_time_now();
    s2a_place held;
    S2A_CHECK_INT(pick(st, c, 1, now, 0, 0, &held), 0);
    S2A_CHECK_INT(pick(st, c, 1, now + S2A_STORE_LEASE / 2, 0, 0, NULL), S2A_PICK_BUSY);
    S2A_CHECK_INT(st->ops->renew(st, &held, now + S2A_STORE_LEASE / 2), APR_SUCCESS);
    S2A_CHECK_INT(held.renewed, now + S2A_STORE_LEASE / 2);
    S2A_CHECK_INT(pick(st, c, 1, now + S2A_STORE_LEASE + 1, 0, 0, NULL), S2A_PICK_BUSY);
    S2A_CHECK_INT(pick(st, c, 1, now + S2A_STORE_LEASE * 2, 0, 0, NULL), 0);
}

/* The places of a process that died without giving them back (its
 * heartbeat stopped) are taken back by the next process that finds the
 * account full; a live process's places stay. */
static void test_dead_process_places(apr_pool_t *p)
{
    s2a_candidate c[1] = {{121, 10, 2, 0}};
    s2a_store *live = make_redis(p), *dead;
    apr_time_t now = apr_time_now();
    apr_pool_t *dp;
    s2a_place held;
    const char *err = NULL;

    apr_pool_create(&dp, p);
    s2a_store_redis(dp, s2a_redis_url_parse(dp, redis_url(dp, REDIS_PASSWORD), &err),
                    make_state(dp), &dead);
    S2A_CHECK_INT(pick(live, c, 1, now, 0, 0, &held), 0);
    S2A_CHECK_INT(pick(dead, c, 1, now, 0, 0, &held), 0);
    apr_pool_destroy(dp); /* its heartbeat ends; its place is never released */
    S2A_CHECK_INT(pick(live, c, 1, now, 0, 0, NULL), S2A_PICK_BUSY);
    apr_sleep(apr_time_from_msec(3300));
    S2A_CHECK_INT(pick(live, c, 1, now, 0, 0, &held), 0);
    S2A_CHECK_INT(pick(live, c, 1, now, 0, 0, NULL), S2A_PICK_BUSY);
}

/* Redis loses its scripts, goes away, comes back: operations fail while it
 * is gone and work again without a new store. */
static void test_server_lost(apr_pool_t *p)
{
    s2a_store *st = make_redis(p);
    s2a_candidate c[1] = {{111, 10, 0, 0}};
    apr_time_t now = apr_time_now();
    s2a_place pl;
    int picked = -99, ok = -1;
    apr_time_t retry;

    S2A_CHECK_INT(pick(st, c, 1, now, 0, 0, &pl), 0);
    S2A_CHECK(redis_do("SCRIPT FLUSH"));
    S2A_CHECK_INT(pick(st, c, 1, now, 0, 0, &pl), 0);

    redis_stop();
    S2A_CHECK(st->ops->pick(st, c, 1, now, 0, 0, 0, NULL, &picked, &pl, &ok) != APR_SUCCESS);
    S2A_CHECK(st->ops->rate(st, 5, 10, now, &ok, &retry) != APR_SUCCESS);
    S2A_CHECK(strstr(st->ops->last_error(st, p), "127.0.0.1") != NULL);
    /* the password never shows; the port does */
    S2A_CHECK(strstr(st->ops->last_error(st, p), apr_itoa(p, redis_port)) != NULL);
    S2A_CHECK(strstr(st->ops->last_error(st, p), REDIS_PASSWORD) == NULL);
    S2A_CHECK(redis_start());
    apr_sleep(apr_time_from_msec(600));
    S2A_CHECK_INT(pick(st, c, 1, now, 0, 0, &pl), 0);
    S2A_CHECK_INT(st->ops->rate(st, 5, 10, now, &ok, &retry), APR_SUCCESS);
    S2A_CHECK_INT(ok, 1);
}

/* A wrong password: operations fail, and the error says the server refused
 * it, also while the store waits to retry, without the password itself. */
static void test_wrong_password(apr_pool_t *p)
{
    const char *err = NULL, *said;
    s2a_store *st = NULL;
    s2a_candidate c[1] = {{131, 10, 0, 0}};
    s2a_place pl;
    apr_time_t retry;
    int ok = -1, picked = -99;

    S2A_CHECK_INT(s2a_store_redis(p, s2a_redis_url_parse(p, redis_url(p, "wrong-secret"), &err),
                                  make_state(p), &st),
                  APR_SUCCESS);
    if (!st) {
        return;
    }
    S2A_CHECK(st->ops->pick(st, c, 1, apr_time_now(), 0, 0, 0, NULL, &picked, &pl, &ok) !=
              APR_SUCCESS);
    said = st->ops->last_error(st, p);
    S2A_CHECK(strstr(said, "AUTH refused") != NULL && strstr(said, "WRONGPASS") != NULL);
    S2A_CHECK(strstr(said, "wrong-secret") == NULL);
    S2A_CHECK(st->ops->rate(st, 5, 10, apr_time_now(), &ok, &retry) != APR_SUCCESS);
    said = st->ops->last_error(st, p);
    S2A_CHECK(strstr(said, "AUTH refused") != NULL && strstr(said, "retrying shortly") != NULL);
}

static s2a_store *make_redis_tls(apr_pool_t *p)
{
    const char *err = NULL;
    s2a_redis_url *u = s2a_redis_url_parse(p, redis_tls_url(p, "127.0.0.1", tls_cert), &err);
    s2a_store *st = NULL;
    redis_do("FLUSHALL");
    if (!u || s2a_store_redis(p, u, make_state(p), &st) != APR_SUCCESS) {
        return NULL;
    }
    return st;
}

/* What a TLS store says when the server cannot be trusted: a certificate no
 * CA of ours signed, or one for another name. Nothing is sent to it. */
static void test_tls_refused(apr_pool_t *p)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost"};
    const char *cas[] = {tls_other, tls_cert};
    s2a_candidate c[1] = {{141, 10, 0, 0}};
    int i;

    for (i = 0; i < 2; i++) {
        const char *err = NULL, *said;
        s2a_store *st = NULL;
        s2a_place pl;
        int ok = -1, picked = -99;
        S2A_CHECK_INT(
            s2a_store_redis(p, s2a_redis_url_parse(p, redis_tls_url(p, hosts[i], cas[i]), &err),
                            make_state(p), &st),
            APR_SUCCESS);
        if (!st) {
            continue;
        }
        S2A_CHECK(st->ops->pick(st, c, 1, apr_time_now(), 0, 0, 0, NULL, &picked, &pl, &ok) !=
                  APR_SUCCESS);
        said = st->ops->last_error(st, p);
        S2A_CHECK(strstr(said, "certificate is refused") != NULL);
        S2A_CHECK(strstr(said, REDIS_PASSWORD) == NULL);
    }
    /* a CA file that cannot be read says so */
    {
        const char *err = NULL;
        s2a_store *st = NULL;
        s2a_place pl;
        int ok = -1, picked = -99;
        s2a_store_redis(
            p, s2a_redis_url_parse(p, redis_tls_url(p, "127.0.0.1", "/nonexistent.pem"), &err),
            make_state(p), &st);
        S2A_CHECK(st != NULL);
        if (st) {
            S2A_CHECK(st->ops->pick(st, c, 1, apr_time_now(), 0, 0, 0, NULL, &picked, &pl, &ok) !=
                      APR_SUCCESS);
            S2A_CHECK(strstr(st->ops->last_error(st, p), "cannot read the CA file") != NULL);
        }
    }
}

static void test_url(apr_pool_t *p)
{
    const char *err = NULL;
    s2a_redis_url *u = s2a_redis_url_parse(p, "redis://10.0.0.5:6380/2", &err);
    S2A_CHECK(u != NULL);
    if (u) {
        S2A_CHECK_STR(u->host, "10.0.0.5");
        S2A_CHECK_INT(u->port, 6380);
        S2A_CHECK_INT(u->db, 2);
        S2A_CHECK(u->password == NULL && u->user == NULL);
    }
    u = s2a_redis_url_parse(p, "redis://:s3cret@cache.local", &err);
    S2A_CHECK(u && u->port == 6379 && u->db == 0 && !u->user);
    S2A_CHECK(u && strcmp(u->password, "s3cret") == 0 && strcmp(u->host, "cache.local") == 0);
    u = s2a_redis_url_parse(p, "redis://gw:pw@h:1/", &err);
    S2A_CHECK(u && strcmp(u->user, "gw") == 0 && strcmp(u->password, "pw") == 0 && u->port == 1);
    S2A_CHECK(s2a_redis_url_parse(p, "http://h:6379", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "redis://h:0", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "redis://h:70000", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "redis://h:x", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "redis://:6379", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "redis://h/db", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "redis://secret@h", &err) == NULL);
    S2A_CHECK(err && !strstr(err, "secret"));
    /* TLS, with its CA file or the system's store */
    u = s2a_redis_url_parse(p, "rediss://:pw@cache.local:6380/1?ca=/etc/ssl/r.pem", &err);
    S2A_CHECK(u && u->tls && u->port == 6380 && u->db == 1);
    S2A_CHECK(u && u->ca_file && strcmp(u->ca_file, "/etc/ssl/r.pem") == 0);
    S2A_CHECK(u && strcmp(u->host, "cache.local") == 0 && strcmp(u->password, "pw") == 0);
    u = s2a_redis_url_parse(p, "rediss://h", &err);
    S2A_CHECK(u && u->tls && !u->ca_file && u->port == 6379);
    u = s2a_redis_url_parse(p, "redis://h", &err);
    S2A_CHECK(u && !u->tls);
    S2A_CHECK(s2a_redis_url_parse(p, "redis://h?ca=/x", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "rediss://h?ca=", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "rediss://h?verify=no", &err) == NULL);
    S2A_CHECK(s2a_redis_url_parse(p, "rediss://h?ca=/a&x=1", &err) == NULL);
}

int main(void)
{
    const provider shm = {"shm", make_shm}, redis = {"redis", make_redis},
                   redis_tls = {"redis", make_redis_tls};
    apr_pool_t *p;
    int rc;
    /* as httpd's children: a TLS pipe's server may go away mid-write */
    signal(SIGPIPE, SIG_IGN);
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_url(p);
    run_common(p, &shm);
    if (!make_certificates()) {
        fprintf(stderr, "openssl could not make the test's certificates\n");
        s2a_test_failed++;
    } else if (!redis_start()) {
        fprintf(stderr, "redis-server could not be started (is it installed?)\n");
        s2a_test_failed++;
    } else {
        run_common(p, &redis);
        run_common(p, &redis_tls);
        test_tls_refused(p);
        test_two_nodes(p);
        test_lease(p);
        test_dead_process_places(p);
        test_server_lost(p);
        test_wrong_password(p);
    }
    redis_stop();
    if (*tls_cert) {
        char cmd[96];
        apr_snprintf(cmd, sizeof(cmd), "rm -rf %s", tls_dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", tls_dir);
        }
    }
    rc = S2A_TEST_SUMMARY("store");
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
