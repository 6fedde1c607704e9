/* Shared account state: which account a request gets and when one rests. */
#include <stdlib.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_shm.h>
#include <apr_thread_proc.h>

#include "s2a_state.h"
#include "s2a_test.h"

static s2a_state *make_state(apr_pool_t *p, int nslots)
{
    return s2a_state_init(p, apr_pcalloc(p, s2a_state_size(nslots, 64)), nslots, 64);
}

/* The pick without a balance, for a conversation or none (session 0). */
static int pick_sticky(s2a_state *st, const s2a_candidate *c, int n, apr_time_t now,
                       apr_uint64_t session, apr_time_t ttl, int wait_for_bound)
{
    int held;
    return s2a_state_pick_holding(st, c, n, now, session, ttl, wait_for_bound, 0, 0, &held);
}

static int pick(s2a_state *st, const s2a_candidate *c, int n, apr_time_t now)
{
    return pick_sticky(st, c, n, now, 0, 0, 0);
}

/* A request's end that only settles one hold. */
static void settle(s2a_state *st, apr_int64_t key, apr_int64_t held, apr_int64_t spent)
{
    s2a_settlement h = {key, held, spent, 0, 0};
    s2a_state_finish(st, NULL, 0, &h, 1, 0);
}

/* One that only spends from a figure it did not hold from. */
static void spend(s2a_state *st, apr_int64_t key, apr_int64_t known, apr_int64_t spent,
                  apr_time_t now)
{
    s2a_settlement h = {key, 0, spent, 1, known};
    s2a_state_finish(st, NULL, 0, &h, 1, now);
}

static void test_priority_then_least_recently_used(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[3] = {{1, 50, 0, 0}, {2, 10, 0, 0}, {3, 10, 0, 0}};
    apr_time_t t = apr_time_from_sec(1000);
    int first, second, third;

    first = pick(st, c, 3, t);
    second = pick(st, c, 3, t + 1);
    third = pick(st, c, 3, t + 2);
    /* the two priority-10 accounts alternate; priority 50 is never taken */
    S2A_CHECK(first == 1 || first == 2);
    S2A_CHECK(second == 1 || second == 2);
    S2A_CHECK(first != second);
    S2A_CHECK_INT(third, first);
}

static void test_cooling_and_error_accounts_are_skipped(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[2] = {{7, 10, 0, 0}, {8, 20, 0, 0}};
    apr_time_t now = apr_time_from_sec(5000);
    s2a_account_state a;

    s2a_state_set_rate_limited(st, 7, now + apr_time_from_sec(60));
    S2A_CHECK_INT(pick(st, c, 2, now), 1);
    /* once the reset time has passed it serves again */
    S2A_CHECK_INT(pick(st, c, 2, now + apr_time_from_sec(61)), 0);

    s2a_state_set_overloaded(st, 7, now + apr_time_from_sec(600));
    s2a_state_set_error(st, 8, 1);
    S2A_CHECK_INT(pick(st, c, 2, now + apr_time_from_sec(100)), S2A_PICK_NONE);

    s2a_state_clear(st, 8, 0); /* rests only: the error stays */
    s2a_state_get(st, 8, &a);
    S2A_CHECK_INT(a.error, 1);
    s2a_state_clear(st, 7, 1);
    S2A_CHECK_INT(pick(st, c, 2, now + apr_time_from_sec(100)), 0);
    s2a_state_get(st, 7, &a);
    S2A_CHECK_INT(a.overloaded_until, 0);
    S2A_CHECK_INT(a.error, 0);
    s2a_state_get(st, 8, &a);
    S2A_CHECK_INT(a.error, 1);
}

static void test_in_flight_counts(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[1] = {{42, 1, 0, 0}};
    s2a_account_state a;
    int i;

    for (i = 0; i < 3; i++) {
        S2A_CHECK_INT(pick(st, c, 1, apr_time_from_sec(10 + i)), 0);
    }
    s2a_state_get(st, 42, &a);
    S2A_CHECK_INT(a.in_flight, 3);
    S2A_CHECK_INT(a.last_used, apr_time_from_sec(12));
    for (i = 0; i < 5; i++) {
        s2a_state_release(st, 42); /* more releases than picks never go below zero */
    }
    s2a_state_get(st, 42, &a);
    S2A_CHECK_INT(a.in_flight, 0);
    s2a_state_get(st, 99, &a);
    S2A_CHECK_INT(a.key, 0);
}

/* Full accounts are passed over; the least loaded of equal priority wins. */
static void test_concurrency_and_load(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[2] = {{11, 10, 2, 0}, {12, 10, 4, 0}};
    s2a_account_state a, b;
    int i, picks[6];

    /* six picks fill both; loads stay level, so the larger one takes more */
    for (i = 0; i < 6; i++) {
        picks[i] = pick(st, c, 2, apr_time_from_sec(100 + i));
    }
    s2a_state_get(st, 11, &a);
    s2a_state_get(st, 12, &b);
    S2A_CHECK_INT(a.in_flight, 2);
    S2A_CHECK_INT(b.in_flight, 4);
    for (i = 0; i < 6; i++) {
        S2A_CHECK(picks[i] == 0 || picks[i] == 1);
    }
    S2A_CHECK_INT(pick(st, c, 2, apr_time_from_sec(200)), S2A_PICK_BUSY);
    s2a_state_release(st, 12);
    S2A_CHECK_INT(pick(st, c, 2, apr_time_from_sec(201)), 1);
    S2A_CHECK_INT(pick(st, c, 2, apr_time_from_sec(202)), S2A_PICK_BUSY);

    /* a full account with better priority does not block a free one */
    {
        s2a_candidate d[2] = {{21, 1, 1, 0}, {22, 9, 1, 0}};
        S2A_CHECK_INT(pick(st, d, 2, apr_time_from_sec(300)), 0);
        S2A_CHECK_INT(pick(st, d, 2, apr_time_from_sec(301)), 1);
        S2A_CHECK_INT(pick(st, d, 2, apr_time_from_sec(302)), S2A_PICK_BUSY);
        s2a_state_set_overloaded(st, 22, apr_time_from_sec(10000));
        /* one full, one resting: busy, since the full one frees up first */
        S2A_CHECK_INT(pick(st, d, 2, apr_time_from_sec(303)), S2A_PICK_BUSY);
    }
}

static void test_lower_load_wins(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[2] = {{31, 5, 10, 0}, {32, 5, 10, 0}};
    int first = pick(st, c, 2, apr_time_from_sec(1));
    /* the other one is idle, so it comes next... */
    int second = pick(st, c, 2, apr_time_from_sec(2));
    /* ...and with both at 1, the least recently used goes next */
    int third = pick(st, c, 2, apr_time_from_sec(3));
    S2A_CHECK(first != second);
    S2A_CHECK_INT(third, first);
    s2a_state_release(st, c[second].key);
    s2a_state_release(st, c[second].key);
    /* first carries 2, second 0: the idle one wins */
    S2A_CHECK_INT(pick(st, c, 2, apr_time_from_sec(4)), second);
}

/* A conversation stays on its account while that account can serve it. */
static void test_sticky(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[3] = {{41, 10, 1, 0}, {42, 10, 1, 0}, {43, 10, 1, 0}};
    apr_time_t t = apr_time_from_sec(1000), ttl = apr_time_from_sec(3600);
    int first, i;

    first = pick_sticky(st, c, 3, t, 777, ttl, 1);
    S2A_CHECK(first >= 0);
    S2A_CHECK_INT(s2a_state_bound(st, 777, t), c[first].key);
    /* other requests move the least-recently-used order; 777 does not move */
    for (i = 0; i < 3; i++) {
        s2a_state_release(st, c[first].key);
        S2A_CHECK_INT(pick_sticky(st, c, 3, t + i + 1, 777, ttl, 1), first);
    }
    /* full: wait for it, or leave it */
    S2A_CHECK_INT(pick_sticky(st, c, 3, t + 10, 777, ttl, 1), S2A_PICK_BUSY);
    i = pick_sticky(st, c, 3, t + 11, 777, ttl, 0);
    S2A_CHECK(i >= 0 && i != first);
    S2A_CHECK_INT(s2a_state_bound(st, 777, t + 11), c[i].key);
    s2a_state_release(st, c[first].key);
    first = i;
    s2a_state_release(st, c[first].key);

    /* resting: the conversation moves at once */
    s2a_state_set_rate_limited(st, c[first].key, t + apr_time_from_sec(60));
    i = pick_sticky(st, c, 3, t + 12, 777, ttl, 1);
    S2A_CHECK(i >= 0 && i != first);
    S2A_CHECK_INT(s2a_state_bound(st, 777, t + 12), c[i].key);
    s2a_state_release(st, c[i].key);

    /* not among the candidates (e.g. does not serve the model): moves */
    first = i;
    {
        s2a_candidate d[1] = {c[first == 0 ? 2 : 0]};
        S2A_CHECK_INT(pick_sticky(st, d, 1, t + 13, 777, ttl, 1), 0);
        S2A_CHECK_INT(s2a_state_bound(st, 777, t + 13), d[0].key);
        s2a_state_release(st, d[0].key);
    }

    /* expired bindings are gone; no session, no binding */
    S2A_CHECK_INT(s2a_state_bound(st, 777, t + 14 + ttl), 0);
    S2A_CHECK(pick_sticky(st, c, 3, t + 20, 0, ttl, 1) >= 0);
    S2A_CHECK_INT(s2a_state_bound(st, 0, t + 20), 0);
}

/* A full binding table evicts what expires first, never fails. */
static void test_binding_table_full(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[1] = {{51, 1, 0, 0}};
    apr_uint64_t s;
    int bound = 0;
    for (s = 1; s <= 200; s++) {
        S2A_CHECK_INT(
            pick_sticky(st, c, 1, apr_time_from_sec((apr_int64_t)s), s, apr_time_from_sec(100), 1),
            0);
    }
    for (s = 1; s <= 200; s++) {
        bound += s2a_state_bound(st, s, apr_time_from_sec(200)) != 0;
    }
    /* the newest ones are kept, up to the table's size */
    S2A_CHECK(bound > 0 && bound <= 64);
    S2A_CHECK_INT(s2a_state_bound(st, 200, apr_time_from_sec(200)), 51);
}

/* Many limited keys never push an account out of the shared state. */
static void test_limits_do_not_evict_accounts(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[1] = {{77, 1, 0, 0}};
    apr_time_t retry;
    apr_int64_t k;
    S2A_CHECK_INT(pick(st, c, 1, apr_time_from_sec(1)), 0);
    for (k = 1000; k < 1200; k++) {
        S2A_CHECK(s2a_state_rate(st, k, 5, apr_time_from_sec(2), &retry) == 1);
    }
    s2a_state_release(st, 77);
    S2A_CHECK_INT(pick(st, c, 1, apr_time_from_sec(3)), 0);
}

/* Users and keys: places and requests per minute. */
static void test_user_and_key_limits(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    apr_time_t t = apr_time_from_sec(6000030), retry = 0; /* 30 s into a minute */
    int i;

    S2A_CHECK_INT(s2a_state_acquire(st, 900, 2), 1);
    S2A_CHECK_INT(s2a_state_acquire(st, 900, 2), 1);
    S2A_CHECK_INT(s2a_state_acquire(st, 900, 2), 0);
    s2a_state_release_limit(st, 900);
    S2A_CHECK_INT(s2a_state_acquire(st, 900, 2), 1);
    S2A_CHECK_INT(s2a_state_acquire(st, 901, 0), -1); /* no limit: through, uncounted */
    /* limits and accounts keep to their own tables */
    {
        s2a_candidate c[1] = {{900, 1, 1, 0}};
        S2A_CHECK_INT(pick(st, c, 1, t), 0);
    }

    for (i = 0; i < 3; i++) {
        S2A_CHECK_INT(s2a_state_rate(st, 902, 3, t + i, &retry), 1);
    }
    S2A_CHECK_INT(s2a_state_rate(st, 902, 3, t + 5, &retry), 0);
    S2A_CHECK_INT(retry, apr_time_from_sec(6000060));
    /* the next minute starts afresh */
    S2A_CHECK_INT(s2a_state_rate(st, 902, 3, apr_time_from_sec(6000060), &retry), 1);
    S2A_CHECK_INT(s2a_state_rate(st, 903, 0, t, &retry), 1);
}

/* A lock read without taking it: how an address over its failures is told
 * to every process (the counter and the block share the address's slot). */
static void test_locked_until(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    apr_time_t t = apr_time_from_sec(6000030), retry = 0;
    S2A_CHECK_INT(s2a_state_locked_until(st, 904, t), 0);
    S2A_CHECK_INT(s2a_state_any_lock(st, t), 0);
    S2A_CHECK_INT(s2a_state_rate(st, 904, 1, t, &retry), 1);
    S2A_CHECK_INT(s2a_state_rate(st, 904, 1, t, &retry), 0);
    S2A_CHECK_INT(s2a_state_lock(st, 904, retry - t, t), 1);
    S2A_CHECK_INT(s2a_state_any_lock(st, t + 1), 1);
    S2A_CHECK_INT(s2a_state_locked_until(st, 904, t + 1), apr_time_from_sec(6000060));
    S2A_CHECK_INT(s2a_state_locked_until(st, 904, apr_time_from_sec(6000060)), 0);
    S2A_CHECK_INT(s2a_state_locked_until(st, 905, t), 0);
    /* a shorter lock taken later leaves the horizon at the longer one's end */
    S2A_CHECK_INT(s2a_state_lock(st, 906, apr_time_from_sec(2), t), 1);
    S2A_CHECK_INT(s2a_state_any_lock(st, t + apr_time_from_sec(5)), 1);
    S2A_CHECK_INT(s2a_state_locked_until(st, 904, t + apr_time_from_sec(5)),
                  apr_time_from_sec(6000060));
    S2A_CHECK_INT(s2a_state_any_lock(st, apr_time_from_sec(6000060)), 0);
    s2a_state_unlock(st, 904);
    S2A_CHECK_INT(s2a_state_locked_until(st, 904, t), 0);
}

/* A process that dies holding places gives them back: the next request
 * that finds the account full reclaims them. */
static void test_dead_process_places_come_back(apr_pool_t *p)
{
    apr_shm_t *shm;
    apr_proc_t proc;
    s2a_state *st;
    s2a_candidate c[1] = {{61, 1, 1, 0}}, other[1] = {{62, 1, 0, 0}};
    int code;
    apr_exit_why_e why;

    if (apr_shm_create(&shm, s2a_state_size(8, 64), NULL, p) != APR_SUCCESS) {
        S2A_CHECK(!"shared memory");
        return;
    }
    memset(apr_shm_baseaddr_get(shm), 0, s2a_state_size(8, 64));
    st = s2a_state_init(p, apr_shm_baseaddr_get(shm), 8, 64);
    /* this process has held a place before it forks: the child is told
     * apart by its own id all the same */
    S2A_CHECK_INT(pick(st, other, 1, apr_time_from_sec(1)), 0);
    s2a_state_release(st, 62);
    if (apr_proc_fork(&proc, p) == APR_INCHILD) {
        /* takes the only place and dies without giving it back */
        _exit(pick(st, c, 1, apr_time_from_sec(1)) == 0 ? 0 : 1);
    }
    apr_proc_wait(&proc, &code, &why, APR_WAIT);
    S2A_CHECK_INT(code, 0);
    S2A_CHECK_INT(pick(st, c, 1, apr_time_from_sec(2)), 0);
    /* a live holder (this process) keeps its place */
    S2A_CHECK_INT(pick(st, c, 1, apr_time_from_sec(3)), S2A_PICK_BUSY);
    s2a_state_release(st, 61);
    S2A_CHECK_INT(s2a_state_acquire(st, 61, 1), 1);
    S2A_CHECK_INT(s2a_state_acquire(st, 61, 1), 0);
}

/* A graceful restart keeps the parent's memory: only a state this build
 * laid out, for the same sizes, is taken up again. */
static void test_fits(apr_pool_t *p)
{
    apr_size_t size = s2a_state_size(8, 64);
    void *base = apr_pcalloc(p, size);
    S2A_CHECK_INT(s2a_state_fits(base, size, 8, 64), 0);
    S2A_CHECK(s2a_state_init(p, base, 8, 64) != NULL);
    S2A_CHECK_INT(s2a_state_fits(base, size, 8, 64), 1);
    S2A_CHECK_INT(s2a_state_fits(base, size, 8, 32), 0);
    S2A_CHECK_INT(s2a_state_fits(base, size - 16, 8, 64), 0);
    /* laid out again: its lock and contents are kept */
    S2A_CHECK_INT(pick(s2a_state_init(p, base, 8, 64), (s2a_candidate[]){{7, 1, 1, 0}}, 1,
                       apr_time_from_sec(1)),
                  0);
    S2A_CHECK_INT(pick(s2a_state_init(p, base, 8, 64), (s2a_candidate[]){{7, 1, 1, 0}}, 1,
                       apr_time_from_sec(2)),
                  S2A_PICK_BUSY);
}

static void test_generation(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    apr_uint32_t g = s2a_state_generation(st);
    s2a_state_bump(st);
    s2a_state_bump(st);
    S2A_CHECK_INT(s2a_state_generation(st), g + 2);
}

/* A full table takes over idle slots: every account can still be chosen. */
static void test_full_table(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 4);
    s2a_candidate c[6];
    int i, picked = 0;
    for (i = 0; i < 6; i++) {
        c[i].key = 100 + i;
        c[i].priority = 1;
        c[i].concurrency = 0;
    }
    for (i = 0; i < 6; i++) {
        int k = pick(st, c, 6, apr_time_from_sec(100 + i));
        S2A_CHECK(k >= 0 && k < 6);
        picked += k >= 0;
    }
    S2A_CHECK_INT(picked, 6);
    /* ...but a slot with a request in flight is never taken over */
    {
        s2a_state *st2 = make_state(p, 2);
        s2a_candidate a[1] = {{201, 1, 0, 0}}, b[1] = {{202, 1, 0, 0}}, d[1] = {{203, 1, 0, 0}};
        s2a_account_state s;
        S2A_CHECK_INT(pick(st2, a, 1, apr_time_from_sec(1)), 0);
        S2A_CHECK_INT(pick(st2, b, 1, apr_time_from_sec(2)), 0);
        S2A_CHECK_INT(pick(st2, d, 1, apr_time_from_sec(3)), S2A_PICK_NONE);
        s2a_state_release(st2, 201);
        S2A_CHECK_INT(pick(st2, d, 1, apr_time_from_sec(4)), 0);
        s2a_state_get(st2, 202, &s);
        S2A_CHECK_INT(s.in_flight, 1);
    }
}

/* A balance unused for S2A_BALANCE_IDLE is brought from the database again,
 * and what was held then (a crashed process's requests) is let go; a user
 * with a hold is never pushed out of a full table. */
static void test_balance_idle(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 1);
    apr_time_t now = apr_time_now();
    int i;
    S2A_CHECK_INT(s2a_state_reserve(st, 77, 100, 500, now), 1);
    S2A_CHECK_INT(s2a_state_reserve(st, 77, 100, 1, now + 1), 0);
    S2A_CHECK_INT(s2a_state_reserve(st, 77, 300, 1, now + 1 + S2A_BALANCE_IDLE), 0);
    S2A_CHECK_INT(s2a_state_reserve(st, 77, 300, 1, now + 2 + 2 * S2A_BALANCE_IDLE), 1);
    /* the table (4 limit slots) fills with others: the held one stays */
    for (i = 0; i < 8; i++) {
        s2a_state_reserve(st, 1000 + i, 10, 0, now);
    }
    S2A_CHECK_INT(s2a_state_reserve(st, 77, 0, 1, now + 3 + 2 * S2A_BALANCE_IDLE), 1);
}

/* An allowance's key stays while its windows run and when the row of a
 * request that counted before a window started starts it; it moves when a
 * window ends or changes its limit, or for another subscription. */
static void test_allowance_key(apr_pool_t *p)
{
    s2a_windows w;
    apr_int64_t now = 1700000000, k;
    memset(&w, 0, sizeof(w));
    w.limit[0] = 10000000;
    w.limit[2] = 90000000;
    k = s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, now);
    S2A_CHECK(k != 0);
    S2A_CHECK(k != s2a_state_key_user(p, "s", 5));
    S2A_CHECK(k != s2a_state_key_spend(p, "s", "allowance", 6, 0, &w, now));
    S2A_CHECK(k != s2a_state_key_spend(p, "t", "allowance", 5, 0, &w, now));
    /* the first row starts the daily window: the figure is the one the
     * requests before it held from; it holds for the day */
    w.start[0] = now;
    w.usage[0] = 4500000;
    w.runs[0] = 1;
    S2A_CHECK_INT(s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, now), k);
    S2A_CHECK_INT(s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, now + 86399), k);
    /* usage moves nothing; a window without a limit moves nothing */
    w.usage[0] = 9000000;
    w.start[1] = now - 10;
    S2A_CHECK_INT(s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, now + 5), k);
    /* the day ends: a new figure, which the row starting the next day's
     * window keeps */
    S2A_CHECK(s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, now + 86400) != k);
    {
        apr_int64_t next = s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, now + 90000);
        w.start[0] = now + 90000;
        w.usage[0] = 1;
        w.runs[0] = 2;
        S2A_CHECK_INT(s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, now + 90001), next);
        w.start[0] = now;
        w.usage[0] = 9000000;
        w.runs[0] = 1;
    }
    /* a key's budget is apart from an allowance; its total limit counts */
    S2A_CHECK(s2a_state_key_spend(p, "s", "budget", 5, 0, &w, now + 5) != k);
    S2A_CHECK(s2a_state_key_spend(p, "s", "allowance", 5, 1, &w, now + 5) != k);
    /* an operator changes a limit */
    w.limit[2] = 80000000;
    S2A_CHECK(s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, now + 5) != k);
}

static void check_settlement(const s2a_settlement *s, apr_int64_t key, apr_int64_t held,
                             apr_int64_t spent, int open)
{
    S2A_CHECK_INT(s->key, key);
    S2A_CHECK_INT(s->held, held);
    S2A_CHECK_INT(s->spent, spent);
    S2A_CHECK_INT(s->open, open);
}

/* A request settles on the figure it held from, unless a window ended
 * while it ran: then what it spent goes to the next run's. */
static void test_spend_settlement(apr_pool_t *p)
{
    s2a_windows w;
    s2a_settlement out[2];
    apr_int64_t start = 1700000000, held_key;
    memset(&w, 0, sizeof(w));
    w.limit[0] = 10000000;
    w.usage[0] = 4000000;
    w.start[0] = start;
    w.runs[0] = 3;
    held_key = s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, start + 100);
    S2A_CHECK_INT(s2a_state_spend_settlement(p, "s", "allowance", 5, 0, &w, 6000000, start + 200,
                                             held_key, 450, 300, out),
                  1);
    check_settlement(&out[0], held_key, 450, 300, 0);
    /* the day ended during the request */
    S2A_CHECK_INT(s2a_state_spend_settlement(p, "s", "allowance", 5, 0, &w, 10000000, start + 86400,
                                             held_key, 450, 300, out),
                  2);
    check_settlement(&out[0], held_key, 450, 0, 0);
    check_settlement(&out[1], s2a_state_key_spend(p, "s", "allowance", 5, 0, &w, start + 86400), 0,
                     300, 1);
    S2A_CHECK_INT(out[1].known, 10000000);
}

/* What a request spent on a figure it did not hold from: one never seen,
 * or idle, opens at what is known; one in use is charged as it stands. */
static void test_spend(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    apr_time_t now = apr_time_from_sec(1700000000);
    spend(st, 940, 500, 40, now);
    S2A_CHECK_INT(s2a_state_reserve(st, 940, 999, 460, now), 1);
    S2A_CHECK_INT(s2a_state_reserve(st, 940, 999, 1, now), 0);
    spend(st, 940, 999, 60, now);
    settle(st, 940, 460, 0);
    S2A_CHECK_INT(s2a_state_reserve(st, 940, 999, 400, now), 1);
    S2A_CHECK_INT(s2a_state_reserve(st, 940, 999, 1, now), 0);
    /* idle: opened again, what was held forgotten */
    spend(st, 940, 100, 30, now + S2A_BALANCE_IDLE + 1);
    S2A_CHECK_INT(s2a_state_reserve(st, 940, 999, 70, now + S2A_BALANCE_IDLE + 2), 1);
    S2A_CHECK_INT(s2a_state_reserve(st, 940, 999, 1, now + S2A_BALANCE_IDLE + 2), 0);
}

/* The pick and the balance's hold in one step: a spent balance picks
 * nothing and takes no place; a pick it cannot hold for is given back. */
static void test_pick_holding(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[2] = {{71, 1, 0, 60}, {72, 2, 1, 60}};
    s2a_account_state a;
    apr_time_t now = apr_time_from_sec(1700000000);
    int held = 7;

    S2A_CHECK_INT(s2a_state_pick_holding(st, c, 2, now, 0, 0, 0, 0, 0, &held), 0);
    S2A_CHECK_INT(held, 0);
    s2a_state_release(st, 71);
    S2A_CHECK_INT(s2a_state_pick_holding(st, c, 2, now, 0, 0, 0, 950, 100, &held), 0);
    S2A_CHECK_INT(held, 1);
    S2A_CHECK_INT(s2a_state_pick_holding(st, c, 2, now, 0, 0, 0, 950, 100, &held), 0);
    S2A_CHECK_INT(held, 1);
    /* 100 known, 120 held: spent */
    S2A_CHECK_INT(s2a_state_pick_holding(st, c, 2, now, 0, 0, 0, 950, 100, &held), S2A_PICK_BROKE);
    S2A_CHECK_INT(held, 0);
    s2a_state_get(st, 71, &a);
    S2A_CHECK_INT(a.in_flight, 2);
    /* one request settles at 30: 70 left, 60 held */
    s2a_state_release(st, 71);
    settle(st, 950, 60, 30);
    /* a full account holds nothing */
    c[0].concurrency = 1;
    c[1].concurrency = 0;
    S2A_CHECK_INT(s2a_state_pick_holding(st, c, 1, now, 0, 0, 0, 950, 100, &held), S2A_PICK_BUSY);
    S2A_CHECK_INT(held, 0);
    S2A_CHECK_INT(s2a_state_reserve(st, 950, 100, 0, now), 1);
    /* a bound conversation is held for like any pick */
    S2A_CHECK_INT(
        s2a_state_pick_holding(st, c + 1, 1, now, 99, apr_time_from_sec(60), 1, 950, 100, &held),
        0);
    S2A_CHECK_INT(held, 1);
    S2A_CHECK_INT(s2a_state_bound(st, 99, now), 72);
    S2A_CHECK_INT(
        s2a_state_pick_holding(st, c + 1, 1, now, 99, apr_time_from_sec(60), 1, 950, 100, &held),
        S2A_PICK_BROKE);
    s2a_state_get(st, 72, &a);
    S2A_CHECK_INT(a.in_flight, 1);
}

/* A request's end gives back every kind of place it held and settles
 * both kinds of hold, in one step. */
static void test_finish(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[1] = {{81, 1, 1, 0}};
    s2a_state_place places[3] = {{81, 1}, {0, 0}, {82, 0}};
    s2a_settlement holds[2];
    s2a_account_state a;
    apr_time_t now = apr_time_from_sec(1700000000);

    memset(holds, 0, sizeof(holds));
    S2A_CHECK_INT(pick(st, c, 1, now), 0);
    S2A_CHECK_INT(s2a_state_acquire(st, 82, 1), 1);
    S2A_CHECK_INT(s2a_state_reserve(st, 960, 100, 80, now), 1);
    holds[0].key = 960;
    holds[0].held = 80;
    holds[0].spent = 75;
    holds[1].key = 961;
    holds[1].open = 1;
    holds[1].known = 50;
    holds[1].spent = 20;
    s2a_state_finish(st, places, 3, holds, 2, now);
    s2a_state_get(st, 81, &a);
    S2A_CHECK_INT(a.in_flight, 0);
    S2A_CHECK_INT(s2a_state_acquire(st, 82, 1), 1);
    /* 100 - 75 left, nothing held: a hold of 25 is let in, then nothing */
    S2A_CHECK_INT(s2a_state_reserve(st, 960, 100, 25, now), 1);
    S2A_CHECK_INT(s2a_state_reserve(st, 960, 100, 0, now), 0);
    /* the open figure started at 50 and spent 20 */
    S2A_CHECK_INT(s2a_state_reserve(st, 961, 999, 30, now), 1);
    S2A_CHECK_INT(s2a_state_reserve(st, 961, 999, 0, now), 0);
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_priority_then_least_recently_used(p);
    test_cooling_and_error_accounts_are_skipped(p);
    test_in_flight_counts(p);
    test_concurrency_and_load(p);
    test_lower_load_wins(p);
    test_sticky(p);
    test_binding_table_full(p);
    test_user_and_key_limits(p);
    test_limits_do_not_evict_accounts(p);
    test_dead_process_places_come_back(p);
    test_generation(p);
    test_fits(p);
    test_full_table(p);
    test_balance_idle(p);
    test_allowance_key(p);
    test_spend_settlement(p);
    test_spend(p);
    test_pick_holding(p);
    test_finish(p);
    test_locked_until(p);
    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_state");
}
