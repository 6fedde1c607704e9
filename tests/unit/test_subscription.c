/* Subscription windows: used up, emptied at their end, each on its own. */
#include <string.h>

#include "s2a_subscription.h"
#include "s2a_test.h"

int main(void)
{
    s2a_windows w;
    apr_int64_t reset = -1, now = 1800000000;

    memset(&w, 0, sizeof(w));
    /* no limits, or nothing used yet: room */
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now, &reset), -1);
    w.limit[0] = 1000;
    w.limit[2] = 50000;
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now, &reset), -1);
    /* the daily allowance used up an hour after its first use */
    w.start[0] = now - 3600;
    w.usage[0] = 999;
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now, &reset), -1);
    w.usage[0] = 1000;
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now, &reset), 0);
    S2A_CHECK_INT(reset, now - 3600 + 86400);
    S2A_CHECK_STR(s2a_window_names[0], "daily");
    /* a day after its start it is empty again */
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now - 3600 + 86400, &reset), -1);
    /* the monthly one, over its limit, reports itself with its own end */
    w.usage[0] = 0;
    w.start[2] = now - 29 * 86400;
    w.usage[2] = 60000;
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now, &reset), 2);
    S2A_CHECK_INT(reset, now + 86400);
    S2A_CHECK_STR(s2a_window_names[2], "monthly");
    /* a window without a limit never stops anything */
    w.limit[2] = 0;
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now, &reset), -1);
    /* weekly lasts seven days */
    w.limit[1] = 10;
    w.usage[1] = 10;
    w.start[1] = now - 6 * 86400;
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now, &reset), 1);
    S2A_CHECK_INT(reset, now + 86400);
    S2A_CHECK_INT(s2a_windows_exhausted(&w, now + 86400, &reset), -1);
    return S2A_TEST_SUMMARY("test_subscription");
}
