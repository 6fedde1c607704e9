/* What an upstream's answer means: see s2a_policy.h. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "s2a_errors.h"
#include "s2a_json.h"
#include "s2a_policy.h"
#include "s2a_state.h"

static int about_account(int status)
{
    return status == 401 || status == 403 || status == 429 || status >= 500;
}

static int among(const apr_array_header_t *codes, int status)
{
    int i;
    for (i = 0; i < codes->nelts; i++) {
        if (APR_ARRAY_IDX(codes, i, int) == status) {
            return 1;
        }
    }
    return 0;
}

void s2a_policy_judge(const s2a_policy_case *c, s2a_verdict *out)
{
    int status = c->status;
    memset(out, 0, sizeof(*out));
    out->client_status = status;
    if (!about_account(status)) {
        return;
    }
    out->failed = 1;
    if (c->error_codes && !among(c->error_codes, status)) {
        out->unexpected = 1;
        out->client_status = 500;
        out->message = "Upstream gateway error";
        return;
    }
    out->fail_over = 1;
    out->client_status = s2a_upstream_status_map(status);
    if (status == 429) {
        out->action = c->count_only ? S2A_ACCOUNT_KEEP : S2A_ACCOUNT_RATE_LIMITED;
        out->fail_over = !c->count_only;
        out->message = "The upstream account is rate limited; retry later";
    } else if (status == 529) {
        out->action = c->count_only ? S2A_ACCOUNT_KEEP : S2A_ACCOUNT_OVERLOADED;
        out->message = "The upstream is overloaded; retry later";
    } else if (status == 401 || status == 403) {
        out->message = "The upstream rejected the gateway's credentials";
        if (c->refused) {
            out->fail_over = 0;
        } else {
            out->action = status == 401 && c->refreshable && !c->refreshed ? S2A_ACCOUNT_REFRESH
                                                                           : S2A_ACCOUNT_ERROR;
        }
    } else {
        out->message = "The upstream answered with an error";
    }
}

/* The upstream's error.message, lowercased; NULL when the body has none. */
static char *error_message(apr_pool_t *p, const char *body, apr_size_t len)
{
    static const char *const keys[] = {"error"};
    s2a_json_span error, message;
    const char *err;
    char *text, *c;
    if (!body || s2a_json_scan_object(p, body, len, keys, 1, &error, &err) != 0 ||
        error.type != S2A_JSON_OBJECT || !s2a_json_object_get(&error, "message", &message) ||
        !(text = s2a_json_string_dup(p, &message))) {
        return NULL;
    }
    for (c = text; *c; c++) {
        *c = (char)apr_tolower(*c);
    }
    return text;
}

static int says_any(const char *text, const char *const *phrases)
{
    for (; *phrases; phrases++) {
        if (strstr(text, *phrases)) {
            return 1;
        }
    }
    return 0;
}

int s2a_policy_reread(apr_pool_t *p, const s2a_policy_case *c, const char *body, apr_size_t len,
                      s2a_verdict *v)
{
    static const char *const about_account[] = {
        "organization has been disabled", "credit balance is too low",
        "not allowed for this organization", "only authorized for use with claude code", NULL};
    static const char *const about_one_thing[] = {"model", "beta", "feature", NULL};
    const char *text;

    if ((c->status != 400 && c->status != 403) || len > S2A_POLICY_BODY_MAX ||
        !(text = error_message(p, body, len))) {
        return 0;
    }
    if (c->status == 400 && !v->failed && says_any(text, about_account)) {
        s2a_policy_case as_refusal = *c;
        as_refusal.status = 403;
        s2a_policy_judge(&as_refusal, v);
        return 1;
    }
    if (c->status == 403 && v->failed && v->action == S2A_ACCOUNT_ERROR &&
        !says_any(text, about_account) && says_any(text, about_one_thing)) {
        v->action = S2A_ACCOUNT_KEEP;
        v->message = "The upstream account may not serve this request";
        return 1;
    }
    return 0;
}

apr_time_t s2a_policy_rest_until(const char *unified_reset, const char *retry_after, apr_time_t now,
                                 apr_interval_time_t cooldown)
{
    apr_int64_t n;
    /* a time past what apr_time_t holds is no time: as if not sent */
    if (unified_reset && (n = apr_atoi64(unified_reset)) > apr_time_sec(now) &&
        n <= APR_INT64_MAX / APR_USEC_PER_SEC) {
        return apr_time_from_sec(n);
    }
    if (retry_after && (n = apr_atoi64(retry_after)) > 0 &&
        n <= (APR_INT64_MAX - now) / APR_USEC_PER_SEC) {
        return now + apr_time_from_sec(n);
    }
    return now + cooldown;
}

int s2a_policy_window(const char *status_header)
{
    if (!status_header) {
        return -1;
    }
    return strcmp(status_header, "allowed") == 0           ? S2A_WINDOW_ALLOWED
           : strcmp(status_header, "allowed_warning") == 0 ? S2A_WINDOW_WARNING
           : strcmp(status_header, "rejected") == 0        ? S2A_WINDOW_REJECTED
                                                           : S2A_WINDOW_UNKNOWN;
}

int s2a_policy_unreachable(int proxy_status, int uncertain)
{
    return proxy_status == 503 || (uncertain && (proxy_status == 502 || proxy_status == 504));
}
