/* An upstream account's status: see s2a_status.h. */
#include <string.h>

#include "s2a_status.h"

const char *const s2a_status_names[S2A_STATUSES] = {"active",         "disabled",     "error",
                                                    "unschedulable",  "rate_limited", "overloaded",
                                                    "window_rejected"};

const char *s2a_window_status_name(int window_status)
{
    static const char *const names[] = {"unknown", "allowed", "allowed_warning", "rejected"};
    return window_status >= 0 && window_status <= S2A_WINDOW_REJECTED ? names[window_status]
                                                                      : names[0];
}

s2a_status s2a_account_status(const char *row_status, int schedulable, const s2a_account_state *st,
                              apr_time_t now, apr_time_t *until)
{
    *until = 0;
    if (!row_status || (strcmp(row_status, "active") != 0 && strcmp(row_status, "error") != 0)) {
        return S2A_STATUS_DISABLED;
    }
    if (strcmp(row_status, "error") == 0 || st->error) {
        return S2A_STATUS_ERROR;
    }
    if (!schedulable) {
        return S2A_STATUS_UNSCHEDULABLE;
    }
    if (st->overloaded_until > now && st->overloaded_until > st->rate_limited_until) {
        *until = st->overloaded_until;
        return S2A_STATUS_OVERLOADED;
    }
    if (st->rate_limited_until > now) {
        *until = st->rate_limited_until;
        /* a rejected window rests the account as a 429 does, until it resets */
        return st->window_status == S2A_WINDOW_REJECTED && st->window_reset >= *until
                   ? S2A_STATUS_WINDOW_REJECTED
                   : S2A_STATUS_RATE_LIMITED;
    }
    return S2A_STATUS_ACTIVE;
}
