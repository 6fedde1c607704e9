/* What an upstream's answer means: for the account that gave it (a rest,
 * the error state, a token refresh), for the request (another account may
 * serve it), and for the client (the status and message it gets when none
 * does). The gateway's glue carries these decisions out. */
#ifndef S2A_POLICY_H
#define S2A_POLICY_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

/* What happens to the account. */
typedef enum {
    S2A_ACCOUNT_KEEP = 0,     /* nothing changes */
    S2A_ACCOUNT_RATE_LIMITED, /* rests until the upstream's reset */
    S2A_ACCOUNT_OVERLOADED,   /* rests Sub2apiOverloadCooldown */
    S2A_ACCOUNT_REFRESH,      /* its token is refreshed, and it may serve again */
    S2A_ACCOUNT_ERROR         /* out of service until an operator re-enables it */
} s2a_account_action;

/* The verdict on one attempt's answer. */
typedef struct {
    int failed;                /* about the account, not the request: never shown */
    s2a_account_action action; /* for the account */
    int fail_over;             /* another account may serve the request */
    int unexpected;            /* a status outside the account's custom error codes */
    int client_status;         /* what the client gets when none does */
    const char *message;       /* its message */
} s2a_verdict;

/* What is known when an answer's status comes. */
typedef struct {
    int status;
    const apr_array_header_t *error_codes; /* the account's custom error codes; NULL: all */
    int refreshable;                       /* the account has a refresh token */
    int refreshed;                         /* a token was refreshed during this request already */
    int refused;    /* an account refused its credentials (401/403) during this request */
    int count_only; /* a count_tokens request: free, so it rests no account */
} s2a_policy_case;

/* Judges an answer. 401, 403, 429 and 5xx say something about the account:
 * the answer fails, and the request may go to another account. 429 rests
 * the account until its reset, 529 for the overload cooldown; 401 refreshes
 * a refreshable account's token once per request, else (and 403) puts it
 * in error. A failing status outside the custom error codes changes
 * nothing for the account and ends the request with 500. Other statuses
 * (2xx, 400, 404, 413...) describe the request: they pass to the client
 * (failed 0).
 * No single request takes more than one account out of service: when a
 * second account refuses the credentials in the same request, the request
 * is the cause; that account is left as it is and the request ends. And a
 * count_tokens request, which costs nothing, rests no account: its 429 goes
 * back to the client without a switch, its 529 switches without a rest. */
void s2a_policy_judge(const s2a_policy_case *c, s2a_verdict *out);

/* A second look at a verdict once the answer's error body is whole (at
 * most S2A_POLICY_BODY_MAX bytes of it): the upstream's message may say more
 * than its status.
 * - A 400 saying the organization is disabled, its credit is spent, or its
 *   credential is not allowed (OAuth not allowed for the organization,
 *   serving Claude Code only) is about the account: error state, failover;
 *   the client never sees it.
 * - A 403 about one model, beta or feature the organization may not use is
 *   about this request on this account: it fails over, and the account is
 *   not put in error. Any other 403 stands.
 * Returns 1 when the verdict changed. */
#define S2A_POLICY_BODY_MAX (64 * 1024)
int s2a_policy_reread(apr_pool_t *p, const s2a_policy_case *c, const char *body, apr_size_t len,
                      s2a_verdict *v);

/* Until when a rate-limited account rests: the upstream's
 * anthropic-ratelimit-unified-reset (Unix seconds) when it lies ahead, else
 * its retry-after (seconds), else `now + cooldown`. Either header may be
 * NULL. */
apr_time_t s2a_policy_rest_until(const char *unified_reset, const char *retry_after, apr_time_t now,
                                 apr_interval_time_t cooldown);

/* The upstream's 5-hour window status (anthropic-ratelimit-unified-5h-status)
 * as S2A_WINDOW_* of s2a_state.h; -1 when the header is absent. */
int s2a_policy_window(const char *status_header);

/* mod_proxy got no answer and reports `proxy_status`: may the request go
 * to another account? A 503 means the upstream could not be reached: it
 * never saw the request. After a 502 (the connection broke) or a 504 (no
 * answer in time) the upstream may have received the request and may be
 * running it: another account would run it again, so only when
 * `uncertain` is allowed (Sub2apiFailoverUncertain). */
int s2a_policy_unreachable(int proxy_status, int uncertain);

#endif
