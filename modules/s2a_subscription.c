/* Subscription windows: see s2a_subscription.h. */
#include "s2a_subscription.h"

const char *const s2a_window_names[S2A_WINDOWS] = {"daily", "weekly", "monthly"};
const apr_int64_t s2a_window_seconds[S2A_WINDOWS] = {86400, 7 * 86400, 30 * 86400};

int s2a_windows_exhausted(const s2a_windows *w, apr_int64_t now, apr_int64_t *reset_at)
{
    int i;
    for (i = 0; i < S2A_WINDOWS; i++) {
        apr_int64_t end = w->start[i] + s2a_window_seconds[i];
        if (w->limit[i] > 0 && w->start[i] > 0 && now < end && w->usage[i] >= w->limit[i]) {
            *reset_at = end;
            return i;
        }
    }
    return -1;
}
