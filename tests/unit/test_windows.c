/* Subscription windows as they stand: limit, used, left and when each
 * resets; the least left; a subscription's standing. */
#include <string.h>

#include "s2a_subscription.h"
#include "s2a_test.h"

int main(void)
{
    s2a_windows w;
    s2a_window_view v[S2A_WINDOWS];
    apr_int64_t now = 1800000000;

    memset(&w, 0, sizeof(w));
    /* no limits, nothing used: nothing to run out */
    s2a_windows_view(&w, now, v);
    S2A_CHECK_INT(v[0].limit, 0);
    S2A_CHECK_INT(v[0].used, 0);
    S2A_CHECK_INT(v[0].left, -1);
    S2A_CHECK_INT(v[0].resets_at, 0);
    S2A_CHECK_INT(s2a_windows_left(&w, now), -1);

    /* a daily window an hour into its day */
    w.limit[0] = 1000;
    w.usage[0] = 300;
    w.start[0] = now - 3600;
    s2a_windows_view(&w, now, v);
    S2A_CHECK_INT(v[0].limit, 1000);
    S2A_CHECK_INT(v[0].used, 300);
    S2A_CHECK_INT(v[0].left, 700);
    S2A_CHECK_INT(v[0].resets_at, now - 3600 + 86400);
    S2A_CHECK_INT(v[0].run, 0);
    S2A_CHECK_INT(s2a_windows_left(&w, now), 700);
    /* the same window at its end and after: empty, not running */
    s2a_windows_view(&w, now - 3600 + 86400, v);
    S2A_CHECK_INT(v[0].used, 0);
    S2A_CHECK_INT(v[0].left, 1000);
    S2A_CHECK_INT(v[0].resets_at, 0);
    /* it counts for the next run, the one the next row starts */
    S2A_CHECK_INT(v[0].run, 1);
    w.runs[0] = 4;
    s2a_windows_view(&w, now, v);
    S2A_CHECK_INT(v[0].run, 4);
    s2a_windows_view(&w, now - 3600 + 86400, v);
    S2A_CHECK_INT(v[0].run, 5);
    w.runs[0] = 0;
    /* a limit before the window's first use */
    w.limit[2] = 50000;
    s2a_windows_view(&w, now, v);
    S2A_CHECK_INT(v[2].used, 0);
    S2A_CHECK_INT(v[2].left, 50000);
    S2A_CHECK_INT(v[2].resets_at, 0);
    S2A_CHECK_INT(v[2].run, 1);
    /* a window used past its limit has nothing left, never less */
    w.usage[0] = 1200;
    s2a_windows_view(&w, now, v);
    S2A_CHECK_INT(v[0].left, 0);
    S2A_CHECK_INT(s2a_windows_left(&w, now), 0);
    /* usage in a window without a limit counts, but limits nothing */
    w.usage[1] = 99;
    w.start[1] = now - 10;
    s2a_windows_view(&w, now, v);
    S2A_CHECK_INT(v[1].used, 99);
    S2A_CHECK_INT(v[1].left, -1);
    S2A_CHECK_INT(v[1].resets_at, now - 10 + 7 * 86400);
    /* the least left is the weekly's once it has the smallest room */
    w.usage[0] = 0;
    w.limit[1] = 100;
    S2A_CHECK_INT(s2a_windows_left(&w, now), 1);
    {
        apr_int64_t reset = -1;
        S2A_CHECK_INT(s2a_windows_tightest(&w, now, &reset), 1);
        S2A_CHECK_INT(reset, now - 10 + 7 * 86400);
        /* the monthly, before its first use, has the least: no end yet */
        w.limit[0] = 0;
        w.limit[1] = 0;
        w.limit[2] = 7;
        S2A_CHECK_INT(s2a_windows_tightest(&w, now, &reset), 2);
        S2A_CHECK_INT(reset, 0);
        w.limit[2] = 0;
        S2A_CHECK_INT(s2a_windows_tightest(&w, now, &reset), -1);
        w.limit[0] = 1000;
        w.limit[1] = 100;
        w.limit[2] = 50000;
    }
    /* a negative limit counts as none */
    w.limit[1] = -5;
    s2a_windows_view(&w, now, v);
    S2A_CHECK_INT(v[1].limit, 0);
    S2A_CHECK_INT(v[1].left, -1);
    w.limit[1] = 0;

    /* standings, judged in order */
    S2A_CHECK_INT(s2a_subscription_state_at(1, now + 60, &w, now), S2A_SUBSCRIPTION_ACTIVE);
    S2A_CHECK_INT(s2a_subscription_state_at(0, now + 60, &w, now), S2A_SUBSCRIPTION_DISABLED);
    S2A_CHECK_INT(s2a_subscription_state_at(1, now, &w, now), S2A_SUBSCRIPTION_ENDED);
    S2A_CHECK_INT(s2a_subscription_state_at(0, now - 1, &w, now), S2A_SUBSCRIPTION_DISABLED);
    w.usage[0] = 1000;
    S2A_CHECK_INT(s2a_subscription_state_at(1, now + 60, &w, now), S2A_SUBSCRIPTION_USED_UP);
    S2A_CHECK_INT(s2a_subscription_state_at(1, now + 86400, &w, now - 3600 + 86400),
                  S2A_SUBSCRIPTION_ACTIVE);
    S2A_CHECK_STR(s2a_subscription_state_names[S2A_SUBSCRIPTION_USED_UP], "used_up");
    S2A_CHECK_STR(s2a_subscription_state_names[S2A_SUBSCRIPTION_ENDED], "ended");
    return S2A_TEST_SUMMARY("test_windows");
}
