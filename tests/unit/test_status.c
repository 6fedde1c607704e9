/* An account's status from its row and its state in the store: each
 * status, the order they are judged in, and rests that ended. */
#include <string.h>

#include "s2a_status.h"
#include "s2a_test.h"

#define NOW apr_time_from_sec(1800000000)
#define SEC(n) apr_time_from_sec(n)

static s2a_status status_of(const char *row, int schedulable, const s2a_account_state *st,
                            apr_time_t *until)
{
    return s2a_account_status(row, schedulable, st, NOW, until);
}

int main(void)
{
    s2a_account_state st;
    apr_time_t until = -1;

    memset(&st, 0, sizeof(st));
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_ACTIVE);
    S2A_CHECK_INT(until, 0);
    S2A_CHECK_STR(s2a_status_names[S2A_STATUS_ACTIVE], "active");
    S2A_CHECK_INT(status_of("disabled", 1, &st, &until), S2A_STATUS_DISABLED);
    S2A_CHECK_INT(status_of("frozen", 1, &st, &until), S2A_STATUS_DISABLED);
    S2A_CHECK_INT(status_of(NULL, 1, &st, &until), S2A_STATUS_DISABLED);
    S2A_CHECK_INT(status_of("error", 1, &st, &until), S2A_STATUS_ERROR);
    S2A_CHECK_INT(status_of("active", 0, &st, &until), S2A_STATUS_UNSCHEDULABLE);
    S2A_CHECK_STR(s2a_status_names[S2A_STATUS_UNSCHEDULABLE], "unschedulable");

    /* the store's error flag makes an active row an error; disabled wins */
    st.error = 1;
    S2A_CHECK_INT(status_of("active", 0, &st, &until), S2A_STATUS_ERROR);
    S2A_CHECK_INT(status_of("disabled", 1, &st, &until), S2A_STATUS_DISABLED);
    st.error = 0;

    /* a 429 rest, and one that ended */
    st.rate_limited_until = NOW + SEC(60);
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_RATE_LIMITED);
    S2A_CHECK_INT(until, NOW + SEC(60));
    S2A_CHECK_STR(s2a_status_names[S2A_STATUS_RATE_LIMITED], "rate_limited");
    S2A_CHECK_INT(status_of("active", 0, &st, &until), S2A_STATUS_UNSCHEDULABLE);
    S2A_CHECK_INT(until, 0);
    st.rate_limited_until = NOW;
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_ACTIVE);
    S2A_CHECK_INT(until, 0);

    /* a 529 rest; with a 429 rest too, the one that ends last names it */
    st.overloaded_until = NOW + SEC(600);
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_OVERLOADED);
    S2A_CHECK_INT(until, NOW + SEC(600));
    st.rate_limited_until = NOW + SEC(900);
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_RATE_LIMITED);
    S2A_CHECK_INT(until, NOW + SEC(900));
    st.rate_limited_until = NOW + SEC(600);
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_RATE_LIMITED);
    st.overloaded_until = NOW - SEC(1);
    st.rate_limited_until = 0;
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_ACTIVE);

    /* a rejected 5-hour window rests the account until it resets */
    st.window_status = S2A_WINDOW_REJECTED;
    st.window_reset = NOW + SEC(3600);
    st.rate_limited_until = st.window_reset;
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_WINDOW_REJECTED);
    S2A_CHECK_INT(until, NOW + SEC(3600));
    S2A_CHECK_STR(s2a_status_names[S2A_STATUS_WINDOW_REJECTED], "window_rejected");
    /* a 429 rest longer than the window's: the 429 names it */
    st.rate_limited_until = NOW + SEC(7200);
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_RATE_LIMITED);
    /* the window reset: rejected as last reported, but no rest */
    st.window_reset = NOW - SEC(10);
    st.rate_limited_until = st.window_reset;
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_ACTIVE);
    /* rests ended by an operator (clear_cooldown) leave the window's report */
    st.window_reset = NOW + SEC(3600);
    st.rate_limited_until = 0;
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_ACTIVE);
    /* a warning is no rest */
    st.window_status = S2A_WINDOW_WARNING;
    st.rate_limited_until = NOW + SEC(5);
    S2A_CHECK_INT(status_of("active", 1, &st, &until), S2A_STATUS_RATE_LIMITED);

    S2A_CHECK_STR(s2a_window_status_name(S2A_WINDOW_UNKNOWN), "unknown");
    S2A_CHECK_STR(s2a_window_status_name(S2A_WINDOW_WARNING), "allowed_warning");
    S2A_CHECK_STR(s2a_window_status_name(S2A_WINDOW_REJECTED), "rejected");
    S2A_CHECK_STR(s2a_window_status_name(17), "unknown");
    S2A_CHECK_STR(s2a_window_status_name(-1), "unknown");
    return S2A_TEST_SUMMARY("test_status");
}
