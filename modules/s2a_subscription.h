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
    apr_int64_t runs[S2A_WINDOWS];  /* how many times it has started */
} s2a_windows;

/* A window as it stands at a moment. */
typedef struct {
    apr_int64_t limit;     /* 0: no limit */
    apr_int64_t used;      /* 0 before its first use and once past its end */
    apr_int64_t left;      /* limit - used, never below 0; -1: no limit */
    apr_int64_t resets_at; /* its end while it runs; 0 when it does not */
    apr_int64_t run;       /* the run it counts: the one running, else the next */
} s2a_window_view;

/* Each window at `now`: what it allows, what is used and left, and when
 * it ends. A window past its end counts as empty and not running. */
void s2a_windows_view(const s2a_windows *w, apr_int64_t now, s2a_window_view out[S2A_WINDOWS]);

/* The least allowance left at `now` among the windows with a limit; -1
 * when none has one. */
apr_int64_t s2a_windows_left(const s2a_windows *w, apr_int64_t now);

/* The window with the least allowance left at `now` (its index), with
 * *reset_at its end (0 while it has not started); -1 when none has a
 * limit. */
int s2a_windows_tightest(const s2a_windows *w, apr_int64_t now, apr_int64_t *reset_at);

/* The first window whose allowance is used up at `now` (its index), with
 * *reset_at its end; -1 when every window has room. */
int s2a_windows_exhausted(const s2a_windows *w, apr_int64_t now, apr_int64_t *reset_at);

/* A subscription's standing. */
typedef enum {
    S2A_SUBSCRIPTION_ACTIVE,   /* its keys' requests are let in */
    S2A_SUBSCRIPTION_DISABLED, /* an operator disabled it */
    S2A_SUBSCRIPTION_ENDED,    /* past its expires_at */
    S2A_SUBSCRIPTION_USED_UP   /* a window's allowance is used up until it resets */
} s2a_subscription_state;

/* "active", "disabled", "ended", "used_up": by s2a_subscription_state. */
extern const char *const s2a_subscription_state_names[4];

/* The standing at `now` of a subscription `active` or not, ending at
 * `expires_at`, with windows `w`; the first that holds of disabled, ended,
 * used up. */
s2a_subscription_state s2a_subscription_state_at(int active, apr_int64_t expires_at,
                                                 const s2a_windows *w, apr_int64_t now);

#endif
