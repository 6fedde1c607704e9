/* Subscription windows: a group may grant its users a daily, a weekly and a
 * monthly allowance (nano-USD of `total` cost) instead of charging balances.
 * Each window starts at its first use and lasts 1, 7 or 30 days; the next
 * use after its end starts it again, empty. */
#ifndef S2A_SUBSCRIPTION_H
#define S2A_SUBSCRIPTION_H

#include <apr.h>

#define S2A_WINDOWS 3

/* "daily", "weekly", "monthly" and their lengths in seconds. */
extern const char *const s2a_window_names[S2A_WINDOWS];
extern const apr_int64_t s2a_window_seconds[S2A_WINDOWS];

typedef struct {
    apr_int64_t limit[S2A_WINDOWS]; /* 0: no limit */
    apr_int64_t usage[S2A_WINDOWS];
    apr_int64_t start[S2A_WINDOWS]; /* Unix seconds; 0: not started */
} s2a_windows;

/* The first window whose allowance is used up at `now` (its index), with
 * *reset_at its end; -1 when every window has room. A window past its end
 * counts as empty. */
int s2a_windows_exhausted(const s2a_windows *w, apr_int64_t now, apr_int64_t *reset_at);

#endif
