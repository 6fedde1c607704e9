/* An upstream account's status: whether it serves now and, if not, why
 * and until when, from its row (status, schedulable) and the state the
 * store keeps of it. One vocabulary for the admin API, the metrics,
 * sub2apictl and the admin page. */
#ifndef S2A_STATUS_H
#define S2A_STATUS_H

#include "s2a_state.h"

typedef enum {
    S2A_STATUS_ACTIVE,         /* serves */
    S2A_STATUS_DISABLED,       /* an operator took it out of service */
    S2A_STATUS_ERROR,          /* the upstream refused its credential: out until re-enabled */
    S2A_STATUS_UNSCHEDULABLE,  /* kept out of the choice, its status left as it is */
    S2A_STATUS_RATE_LIMITED,   /* resting after a 429 */
    S2A_STATUS_OVERLOADED,     /* resting after a 529 */
    S2A_STATUS_WINDOW_REJECTED /* resting until its rejected 5-hour window resets */
} s2a_status;

#define S2A_STATUSES 7

/* "active", "disabled", "error", "unschedulable", "rate_limited",
 * "overloaded", "window_rejected": by s2a_status. */
extern const char *const s2a_status_names[S2A_STATUSES];

/* The 5-hour window's status (S2A_WINDOW_*) as a name: "unknown",
 * "allowed", "allowed_warning" or "rejected". */
const char *s2a_window_status_name(int window_status);

/* The status at `now` of an account whose row says `row_status` ("active",
 * "disabled" or "error"; any other counts as disabled) and `schedulable`,
 * and whose state in the store is `st` (zeroed when never seen). The first
 * that holds: disabled, error (the row's or the store's), unschedulable,
 * resting, active. A resting account is named by the rest that ends last:
 * 529, else its rejected 5-hour window when the window resets no earlier
 * than the 429 rest it set, else 429. *until is the end of the rest; 0 for
 * every status that is no rest. */
s2a_status s2a_account_status(const char *row_status, int schedulable, const s2a_account_state *st,
                              apr_time_t now, apr_time_t *until);

#endif
