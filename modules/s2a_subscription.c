/* Subscription windows: see s2a_subscription.h. */
#include "s2a_subscription.h"

const char *const s2a_window_names[S2A_WINDOWS] = {"daily", "weekly", "monthly"};
const apr_int64_t s2a_window_seconds[S2A_WINDOWS] = {86400, 7 * 86400, 30 * 86400};
const char *const s2a_subscription_state_names[4] = {"active", "disabled", "ended", "used_up"};

void s2a_windows_view(const s2a_windows *w, apr_int64_t now, s2a_window_view out[S2A_WINDOWS])
{
    int i;
    for (i = 0; i < S2A_WINDOWS; i++) {
        apr_int64_t end = w->start[i] + s2a_window_seconds[i];
        int running = w->start[i] > 0 && now < end;
        out[i].limit = w->limit[i] > 0 ? w->limit[i] : 0;
        out[i].used = running ? w->usage[i] : 0;
        out[i].resets_at = running ? end : 0;
        out[i].run = running ? w->runs[i] : w->runs[i] + 1;
        out[i].left = !out[i].limit                 ? -1
                      : out[i].used >= out[i].limit ? 0
                                                    : out[i].limit - out[i].used;
    }
}

apr_int64_t s2a_windows_left(const s2a_windows *w, apr_int64_t now)
{
    s2a_window_view v[S2A_WINDOWS];
    apr_int64_t left = -1;
    int i;
    s2a_windows_view(w, now, v);
    for (i = 0; i < S2A_WINDOWS; i++) {
        if (v[i].left >= 0 && (left < 0 || v[i].left < left)) {
            left = v[i].left;
        }
    }
    return left;
}

int s2a_windows_tightest(const s2a_windows *w, apr_int64_t now, apr_int64_t *reset_at)
{
    s2a_window_view v[S2A_WINDOWS];
    int i, tightest = -1;
    s2a_windows_view(w, now, v);
    for (i = 0; i < S2A_WINDOWS; i++) {
        if (v[i].left >= 0 && (tightest < 0 || v[i].left < v[tightest].left)) {
            tightest = i;
        }
    }
    *reset_at = tightest >= 0 ? v[tightest].resets_at : 0;
    return tightest;
}

int s2a_windows_exhausted(const s2a_windows *w, apr_int64_t now, apr_int64_t *reset_at)
{
    s2a_window_view v[S2A_WINDOWS];
    int i;
    s2a_windows_view(w, now, v);
    for (i = 0; i < S2A_WINDOWS; i++) {
        if (v[i].limit && v[i].resets_at && v[i].used >= v[i].limit) {
            *reset_at = v[i].resets_at;
            return i;
        }
    }
    return -1;
}

s2a_subscription_state s2a_subscription_state_at(int active, apr_int64_t expires_at,
                                                 const s2a_windows *w, apr_int64_t now)
{
    apr_int64_t reset;
    if (!active) {
        return S2A_SUBSCRIPTION_DISABLED;
    }
    if (expires_at <= now) {
        return S2A_SUBSCRIPTION_ENDED;
    }
    return s2a_windows_exhausted(w, now, &reset) >= 0 ? S2A_SUBSCRIPTION_USED_UP
                                                      : S2A_SUBSCRIPTION_ACTIVE;
}
