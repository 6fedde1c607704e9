/* Failover: mod_proxy's request_status hook runs after each attempt. An
 * attempt failed when the upstream answered about the account (its verdict,
 * judged as the answer began, kept it from the client) or could not be
 * reached before any answer. The account then bears the consequences (a
 * rest, the error state, a token refresh), and the request goes to another
 * account of the group while switches are left; otherwise the client gets
 * the gateway's own error. No account is switched once the client has a
 * byte of an answer. */
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_errors.h"

static void mark_account_error(request_rec *r, const s2a_attempt *a)
{
    const char *err = NULL;
    s2a_dbc c;
    void *h = NULL;
    int ok;
    if (s2a_g.store->ops->set_error(s2a_g.store, a->account.state_key, 1) != APR_SUCCESS) {
        s2a_store_failed(r, "marking an account in error");
    }
    ok = s2a_dbc_open(r->pool, r->server, &c, &h) &&
         s2a_db_account_error(&c, r->pool, a->account.id,
                              apr_psprintf(r->pool, "upstream answered %d", a->answer.status),
                              &err) == APR_SUCCESS;
    if (h) {
        s2a_dbc_close(r->server, h);
    }
    if (!ok) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      S2ALOGNO(0204) "account %" APR_INT64_T_FMT " error state not saved: %s",
                      a->account.id, err ? err : "no database");
    }
    s2a_bump(r->server, r->pool);
}

static void untry(s2a_request *q, apr_int64_t id)
{
    int i;
    for (i = 0; i < q->tried->nelts; i++) {
        if (APR_ARRAY_IDX(q->tried, i, apr_int64_t) == id) {
            APR_ARRAY_IDX(q->tried, i, apr_int64_t) =
                APR_ARRAY_IDX(q->tried, q->tried->nelts - 1, apr_int64_t);
            q->tried->nelts--;
            return;
        }
    }
}

/* What the verdict means for the account. A 401 token is refreshed once per
 * request: the account may then serve this request again (its place is
 * given up first, so that a full account can take it again); *refreshed
 * gets the new token. */
static void bear_consequences(request_rec *r, s2a_request *q, s2a_attempt *a,
                              const char **refreshed)
{
    s2a_store *st = s2a_g.store;
    switch (a->verdict.action) {
    case S2A_ACCOUNT_RATE_LIMITED:
        if (st->ops->set_rate_limited(st, a->account.state_key, a->rest_until) != APR_SUCCESS) {
            s2a_store_failed(r, "resting a rate-limited account");
        }
        break;
    case S2A_ACCOUNT_OVERLOADED:
        if (st->ops->set_overloaded(
                st, a->account.state_key,
                apr_time_now() + apr_time_from_sec(q->sconf->overload_cooldown)) != APR_SUCCESS) {
            s2a_store_failed(r, "resting an overloaded account");
        }
        break;
    case S2A_ACCOUNT_REFRESH:
        q->refreshed = 1;
        if (s2a_oauth_ensure(r->pool, r->server, q->sconf, a->account.id, a->account.credential,
                             refreshed)) {
            untry(q, a->account.id);
            s2a_give_back(r, &a->place);
        } else {
            mark_account_error(r, a);
            q->refused = 1;
        }
        break;
    case S2A_ACCOUNT_ERROR:
        mark_account_error(r, a);
        q->refused = 1;
        break;
    case S2A_ACCOUNT_KEEP:
        break;
    }
}

/* The next attempt, when the request may switch again and an account is
 * free; NULL otherwise. */
static s2a_attempt *choose_next(request_rec *r, s2a_request *q)
{
    s2a_choice_ask ask = {q->key.group_id, q->body.model, q->tried, q->session, 0,
                          q->count_only,   NULL};
    s2a_attempt *next;
    if (q->attempt->number > q->sconf->max_switches) {
        return NULL;
    }
    next = s2a_attempt_make(r->pool, q->attempt);
    if (s2a_catalog_choose(r, q->sconf, &ask, next) != S2A_CHOSEN) {
        return NULL;
    }
    if (!s2a_attempt_ready(r, q, next)) {
        s2a_give_back(r, &next->place);
        return NULL;
    }
    return next;
}

/* The request goes to `next`: mod_proxy's handler runs again, and the
 * replay filter serves the body the new account is sent. */
static void switch_to(request_rec *r, s2a_request *q, s2a_attempt *next, int *status)
{
    s2a_attempt *failed = q->attempt;
    apr_bucket_brigade *kept = NULL;
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  S2ALOGNO(0207) "attempt %d: account %" APR_INT64_T_FMT " %s %d; "
                                 "sending the request to account %" APR_INT64_T_FMT,
                  failed->number, failed->account.id,
                  failed->headers_at ? "answered" : "could not be reached:",
                  failed->headers_at ? failed->answer.status : *status, next->account.id);
    s2a_give_back(r, &failed->place);
    q->attempt = next;
    APR_ARRAY_PUSH(q->tried, apr_int64_t) = next->account.id;
    /* what mod_proxy kept of the old body must not be sent again */
    apr_pool_userdata_get((void **)&kept, "proxy-req-input", r->pool);
    if (kept) {
        apr_brigade_cleanup(kept);
    }
    r->status = HTTP_OK;
    r->status_line = NULL;
    apr_table_clear(r->headers_out);
    /* mod_proxy_balancer rewrote it to the failed member's URL (the next
     * account's path may differ too); mod_proxy_http notes about the failed
     * attempt must not count against the next one */
    r->filename = apr_pstrdup(r->pool, next->filename);
    apr_table_unset(r->notes, "proxy_timedout");
    apr_table_unset(r->notes, "proxy-100-continue");
    *status = ap_run_handler(r);
}

/* The client gets the gateway's own error instead of the failed answer: a
 * JSON error, or an error event on a stream whose 200 it has. */
static void answer_error(request_rec *r, s2a_request *q, int status, const char *message,
                         const char *retry_after)
{
    apr_bucket_brigade *bb;
    const char *body;
    q->attempt->answer.mode = S2A_ANSWER_PASS;
    r->status = status; /* as the logs and metrics show it */
    if (q->committed) {
        s2a_send_error_event(r, status, message);
        return;
    }
    apr_table_clear(r->headers_out);
    if (retry_after) {
        apr_table_setn(r->headers_out, "retry-after", retry_after);
    }
    r->status_line = NULL;
    r->content_encoding = NULL;
    ap_set_content_type(r, "application/json");
    body = s2a_door_error_body(r->pool, q->door.kind, status, message, NULL, NULL);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(
        bb, apr_bucket_pool_create(body, strlen(body), r->pool, r->connection->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
}

/* An answer about the account. */
static void failed_answer(request_rec *r, s2a_request *q, int *status)
{
    s2a_attempt *a = q->attempt, *next;
    const char *refreshed = NULL, *retry_after = NULL;
    bear_consequences(r, q, a, &refreshed);
    if (a->verdict.fail_over && (next = choose_next(r, q))) {
        if (refreshed && next->account.id == a->account.id) {
            /* this process's list may not have the new token yet */
            next->account.credential = refreshed;
        }
        switch_to(r, q, next, status);
        return;
    }
    if (!a->verdict.unexpected) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      S2ALOGNO(0205) "account %" APR_INT64_T_FMT " answered %d; client gets %d",
                      a->account.id, a->answer.status, a->verdict.client_status);
    } else {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      S2ALOGNO(0208) "account %" APR_INT64_T_FMT " answered %d, outside its "
                                     "custom error codes; client gets %d",
                      a->account.id, a->answer.status, a->verdict.client_status);
    }
    if (a->verdict.action == S2A_ACCOUNT_RATE_LIMITED) {
        retry_after = apr_psprintf(r->pool, "%" APR_TIME_T_FMT,
                                   apr_time_sec(a->rest_until - apr_time_now()) + 1);
    }
    answer_error(r, q, a->verdict.client_status, a->verdict.message, retry_after);
    *status = q->committed ? DONE : OK;
}

int s2a_failover_request_status(int *status, request_rec *r)
{
    s2a_request *q = s2a_request_of(r);
    s2a_attempt *next;
    if (!q || !q->attempt || r->main) {
        return OK;
    }
    if (q->attempt->headers_at) {
        if (q->attempt->verdict.failed) {
            failed_answer(r, q, status);
        }
        return OK;
    }
    if (*status != HTTP_BAD_GATEWAY && *status != HTTP_SERVICE_UNAVAILABLE &&
        *status != HTTP_GATEWAY_TIME_OUT) {
        return OK;
    }
    if (!s2a_policy_unreachable(q->attempt->egress_unreachable ? HTTP_SERVICE_UNAVAILABLE : *status,
                                q->sconf->failover_uncertain == 1)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      S2ALOGNO(0212) "account %" APR_INT64_T_FMT " gave no answer (%d) after the "
                                     "request may have reached it; it goes to no other account "
                                     "(Sub2apiFailoverUncertain)",
                      q->attempt->account.id, *status);
    } else if ((next = choose_next(r, q))) {
        switch_to(r, q, next, status);
    } else if (q->committed) {
        /* the 200 is out: the error goes as an event, not a page */
        s2a_send_error_event(r, *status, s2a_error_message(*status));
        *status = DONE;
    }
    return OK;
}
