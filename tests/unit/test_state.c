/* Shared account state: which account a request gets and when one rests. */
#include <stdlib.h>

#include <apr_general.h>

#include "s2a_state.h"
#include "s2a_test.h"

static s2a_state *make_state(apr_pool_t *p, int nslots)
{
    apr_proc_mutex_t *m;
    void *base = apr_pcalloc(p, s2a_state_size(nslots));
    if (apr_proc_mutex_create(&m, NULL, APR_LOCK_PROC_PTHREAD, p) != APR_SUCCESS) {
        return NULL;
    }
    return s2a_state_init(p, base, nslots, m);
}

static void test_priority_then_least_recently_used(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[3] = {{1, 50}, {2, 10}, {3, 10}};
    apr_time_t t = apr_time_from_sec(1000);
    int first, second, third;

    first = s2a_state_pick(st, c, 3, t);
    second = s2a_state_pick(st, c, 3, t + 1);
    third = s2a_state_pick(st, c, 3, t + 2);
    /* the two priority-10 accounts alternate; priority 50 is never taken */
    S2A_CHECK(first == 1 || first == 2);
    S2A_CHECK(second == 1 || second == 2);
    S2A_CHECK(first != second);
    S2A_CHECK_INT(third, first);
}

static void test_cooling_and_error_accounts_are_skipped(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[2] = {{7, 10}, {8, 20}};
    apr_time_t now = apr_time_from_sec(5000);
    s2a_account_state a;

    s2a_state_set_rate_limited(st, 7, now + apr_time_from_sec(60));
    S2A_CHECK_INT(s2a_state_pick(st, c, 2, now), 1);
    /* once the reset time has passed it serves again */
    S2A_CHECK_INT(s2a_state_pick(st, c, 2, now + apr_time_from_sec(61)), 0);

    s2a_state_set_overloaded(st, 7, now + apr_time_from_sec(600));
    s2a_state_set_error(st, 8, 1);
    S2A_CHECK_INT(s2a_state_pick(st, c, 2, now + apr_time_from_sec(100)), -1);

    s2a_state_clear(st, 7);
    S2A_CHECK_INT(s2a_state_pick(st, c, 2, now + apr_time_from_sec(100)), 0);
    s2a_state_get(st, 7, &a);
    S2A_CHECK_INT(a.overloaded_until, 0);
    S2A_CHECK_INT(a.error, 0);
    s2a_state_get(st, 8, &a);
    S2A_CHECK_INT(a.error, 1);
}

static void test_in_flight_counts(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    s2a_candidate c[1] = {{42, 1}};
    s2a_account_state a;
    int i;

    for (i = 0; i < 3; i++) {
        S2A_CHECK_INT(s2a_state_pick(st, c, 1, apr_time_from_sec(10 + i)), 0);
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

static void test_generation(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 16);
    apr_uint32_t g = s2a_state_generation(st);
    s2a_state_bump(st);
    s2a_state_bump(st);
    S2A_CHECK_INT(s2a_state_generation(st), g + 2);
}

/* A full table still answers: accounts without a slot are simply not chosen. */
static void test_full_table(apr_pool_t *p)
{
    s2a_state *st = make_state(p, 4);
    s2a_candidate c[6];
    int i, picked = 0;
    for (i = 0; i < 6; i++) {
        c[i].key = 100 + i;
        c[i].priority = 1;
    }
    for (i = 0; i < 6; i++) {
        int k = s2a_state_pick(st, c, 6, apr_time_from_sec(100 + i));
        S2A_CHECK(k >= 0 && k < 6);
        picked += k >= 0;
    }
    S2A_CHECK_INT(picked, 6);
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_priority_then_least_recently_used(p);
    test_cooling_and_error_accounts_are_skipped(p);
    test_in_flight_counts(p);
    test_generation(p);
    test_full_table(p);
    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_state");
}
