/* The answer: the output filter every gateway request's answer passes
 * through. It judges the upstream's status (s2a_policy): an answer about
 * the account never reaches the client, and failover decides what happens
 * next. Anything else goes on as it comes (s2a_answer): event by event for
 * a stream, whole for a JSON answer, with the model renamed back to the
 * client's name and the usage read on the way.
 *
 * When the client leaves a stream before its final usage, the answer is
 * drained: mod_proxy's loop is kept reading (the connection's abort is
 * hidden from it meanwhile) and the bytes go nowhere, until the usage came
 * or Sub2apiDrainTimeout passed; an input filter on mod_proxy's request for
 * the answer bounds each read by that time. */
#include <http_core.h>
#include <http_protocol.h>
#include <apr_poll.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_headers.h"

/* The upstream's 5-hour usage window of the account, from any answer. */
static void read_window(request_rec *r, const s2a_attempt *a)
{
    const char *reset = apr_table_get(r->headers_out, "anthropic-ratelimit-unified-5h-reset");
    int window =
        s2a_policy_window(apr_table_get(r->headers_out, "anthropic-ratelimit-unified-5h-status"));
    if (window >= 0 &&
        s2a_g.store->ops->set_window(s2a_g.store, a->account.state_key, window,
                                     reset ? apr_time_from_sec(apr_atoi64(reset)) : 0,
                                     apr_time_now()) != APR_SUCCESS) {
        s2a_store_failed(r, "recording an account's 5-hour window");
    }
}

static void strip_account_headers(apr_table_t *t)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;
    for (i = arr->nelts - 1; i >= 0; i--) {
        if (e[i].key && s2a_header_names_account(e[i].key)) {
            apr_table_unset(t, e[i].key);
            arr = apr_table_elts(t);
            e = (const apr_table_entry_t *)arr->elts;
            i = arr->nelts;
        }
    }
}

/* Sub2apiServerTiming: the gateway's time before the upstream, and the
 * upstream's until its headers, in the header browsers and tools read. */
static void server_timing(request_rec *r, const s2a_request *q)
{
    if (s2a_dir_conf_of(r)->server_timing == 1 && q->attempt->sent_at) {
        apr_table_setn(
            r->headers_out, "Server-Timing",
            apr_psprintf(r->pool, "sub2api;dur=%.3f, upstream;dur=%.3f",
                         (double)q->own_time / 1000.0,
                         (double)(q->attempt->headers_at - q->attempt->sent_at) / 1000.0));
    }
}

static void policy_case(const s2a_request *q, const s2a_attempt *a, int status, s2a_policy_case *c)
{
    c->status = status;
    c->error_codes = a->account.error_codes;
    c->refreshable = a->account.refreshable;
    c->refreshed = q->refreshed;
    c->refused = q->refused;
    c->count_only = q->count_only;
}

/* The answer's headers came: what it means, and how it goes on. */
static void start(request_rec *r, s2a_request *q, s2a_attempt *a)
{
    s2a_cloud cloud = a->account.cloud;
    const char *error_type =
        cloud == S2A_CLOUD_BEDROCK ? apr_table_get(r->headers_out, "x-amzn-errortype") : NULL;
    s2a_policy_case c;
    int status = s2a_cloud_status(cloud, r->status, error_type);
    if (status != r->status) {
        /* a cloud's status as the Anthropic API would have answered */
        r->status = status;
        r->status_line = NULL;
    }
    policy_case(q, a, r->status, &c);
    a->headers_at = apr_time_now();
    read_window(r, a);
    s2a_policy_judge(&c, &a->verdict);
    if (a->verdict.action == S2A_ACCOUNT_RATE_LIMITED) {
        a->rest_until = s2a_policy_rest_until(
            apr_table_get(r->headers_out, "anthropic-ratelimit-unified-reset"),
            apr_table_get(r->headers_out, "retry-after"), a->headers_at,
            apr_time_from_sec(q->sconf->rate_limit_cooldown));
    }
    s2a_answer_start(&a->answer, r->pool, r->status, r->content_type, a->verdict.failed,
                     q->count_only, q->committed, a->renamed ? q->body.model : NULL, &q->door);
    s2a_answer_from_cloud(&a->answer, cloud, error_type);
    if (a->verdict.failed) {
        return;
    }
    strip_account_headers(r->headers_out);
    if (a->answer.eventstream) {
        ap_set_content_type(r, "text/event-stream; charset=utf-8");
    }
    if (cloud != S2A_CLOUD_NONE && r->status >= 300) {
        /* rewritten in the Anthropic API's shape */
        ap_set_content_type(r, "application/json");
        apr_table_unset(r->headers_out, "Content-Length");
    }
    if (a->answer.mode == S2A_ANSWER_JSON || a->answer.mode == S2A_ANSWER_COUNT || a->answer.door ||
        a->answer.eventstream) {
        /* recomputed when the held, translated or decoded answer goes out with its end */
        apr_table_unset(r->headers_out, "Content-Length");
    }
    server_timing(r, q);
}

/* An error body read whole: the upstream's message may say more than its
 * status (s2a_policy_reread). An error that turns out to be about the
 * account is dropped before the client saw any of it; failover goes on
 * from there. */
static void second_look(request_rec *r, s2a_request *q, s2a_attempt *a)
{
    s2a_policy_case c;
    const char *body;
    apr_size_t len;
    if (!(body = s2a_answer_error_body(&a->answer, &len))) {
        return;
    }
    policy_case(q, a, a->answer.status, &c);
    if (s2a_policy_reread(r->pool, &c, body, len, &a->verdict) && a->verdict.failed &&
        !a->answer.released) {
        a->answer.mode = S2A_ANSWER_DROP;
    }
}

/* A long answer (a stream of many minutes) keeps its places past their
 * lease. */
static void renew_places(request_rec *r, s2a_request *q)
{
    s2a_place *const places[] = {&q->attempt->place, &q->key_place, &q->user_place};
    apr_time_t now = apr_time_now();
    size_t i;
    for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
        s2a_place *pl = places[i];
        if (pl->key && now - pl->renewed > S2A_STORE_LEASE / 2 &&
            s2a_g.store->ops->renew(s2a_g.store, pl, now) != APR_SUCCESS) {
            s2a_store_failed(r, "renewing a place");
            pl->renewed = now; /* tried again half a lease later */
        }
    }
}

int s2a_answer_create_req(request_rec *r, request_rec *upstream)
{
    s2a_request *q = s2a_request_of(r);
    if (q) {
        q->upstream_answer = upstream;
    }
    return OK;
}

/* The client left: drain the answer if it is worth it (s2a_answer). */
static int start_drain(request_rec *r, s2a_request *q, s2a_attempt *a)
{
    apr_interval_time_t drain = q->upstream_answer ? apr_time_from_sec(q->sconf->drain_timeout) : 0;
    if (!s2a_answer_client_left(&a->answer, apr_time_now(), drain)) {
        return 0;
    }
    ap_add_input_filter_handle(s2a_g.drain_filter, r, q->upstream_answer,
                               q->upstream_answer->connection);
    r->connection->aborted = 0; /* mod_proxy reads on only for a client it thinks is there */
    return 1;
}

static void end_drain(request_rec *r)
{
    r->connection->aborted = 1; /* as it was, for logging and every hook after */
}

/* Waits until the upstream's connection has bytes or `left` passed. */
static void wait_readable(conn_rec *upstream, apr_pool_t *p, apr_interval_time_t left)
{
    apr_pollfd_t pfd;
    apr_int32_t n;
    memset(&pfd, 0, sizeof(pfd));
    pfd.p = p;
    pfd.desc_type = APR_POLL_SOCKET;
    pfd.reqevents = APR_POLLIN;
    pfd.desc.s = ap_get_conn_socket(upstream);
    apr_poll(&pfd, 1, &n, left);
}

/* Reads of a drained answer end when the drain does: APR_EOF makes
 * mod_proxy close the upstream connection and stop, without an error. */
apr_status_t s2a_answer_drain_clock(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                    apr_read_type_e block, apr_off_t readbytes)
{
    request_rec *client = f->ctx;
    s2a_answer *a = &s2a_request_of(client)->attempt->answer;
    for (;;) {
        apr_interval_time_t left;
        apr_status_t rv;
        if (!a->draining) {
            return ap_get_brigade(f->next, bb, mode, block, readbytes);
        }
        if (s2a_answer_drained(a, apr_time_now())) {
            end_drain(client);
            return APR_EOF;
        }
        rv = ap_get_brigade(f->next, bb, mode, APR_NONBLOCK_READ, readbytes);
        if (block == APR_NONBLOCK_READ ||
            !(APR_STATUS_IS_EAGAIN(rv) || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb)))) {
            return rv;
        }
        left = a->drain_until - apr_time_now();
        if (left > 0) { /* apr_poll waits for ever on a negative time */
            wait_readable(f->c, client->pool, left);
        }
    }
}

apr_status_t s2a_answer_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    s2a_request *q = s2a_request_of(r);
    apr_time_t t0 = apr_time_now();
    const char *released;
    apr_size_t len;
    apr_bucket *b, *next;
    apr_status_t rv;
    s2a_attempt *a;

    if (!q || !q->attempt) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    a = q->attempt;
    if (!a->headers_at) {
        start(r, q, a);
    }
    renew_places(r, q);
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = next) {
        const char *data;
        apr_size_t n;
        next = APR_BUCKET_NEXT(b);
        if (APR_BUCKET_IS_EOS(b) || AP_BUCKET_IS_ERROR(b)) {
            s2a_answer_end(&a->answer, AP_BUCKET_IS_ERROR(b));
            if (AP_BUCKET_IS_ERROR(b) && a->answer.mode == S2A_ANSWER_STREAM &&
                !a->answer.client_left) {
                /* tell a streaming client why its stream ends, as the API does */
                const char *ev = s2a_answer_broken_event(&a->answer, &n);
                if (ev) {
                    APR_BUCKET_INSERT_BEFORE(
                        b, apr_bucket_pool_create(ev, n, r->pool, bb->bucket_alloc));
                }
            }
            if (APR_BUCKET_IS_EOS(b)) {
                second_look(r, q, a);
            }
            continue;
        }
        if (APR_BUCKET_IS_METADATA(b) || apr_bucket_read(b, &data, &n, APR_BLOCK_READ)) {
            continue;
        }
        if (n && !a->first_byte) {
            a->first_byte = apr_time_now();
        }
        if (!s2a_answer_feed(&a->answer, data, n)) {
            apr_bucket_delete(b);
        }
    }
    if (a->answer.draining) {
        apr_brigade_cleanup(bb);
        q->filter_time += apr_time_now() - t0;
        if (!s2a_answer_drained(&a->answer, apr_time_now())) {
            return APR_SUCCESS;
        }
        end_drain(r);
        return APR_ECONNABORTED;
    }
    if (a->answer.mode == S2A_ANSWER_DROP) {
        /* failover decides what the client gets */
        apr_brigade_cleanup(bb);
        q->filter_time += apr_time_now() - t0;
        return APR_SUCCESS;
    }
    released = s2a_answer_release(&a->answer, &len);
    if (released) {
        /* a translation's (or a decoded stream's) buffer is written again by
         * the next feed */
        APR_BRIGADE_INSERT_HEAD(
            bb, a->answer.translation || a->answer.eventstream
                    ? apr_bucket_heap_create(released, len, NULL, bb->bucket_alloc)
                    : apr_bucket_pool_create(released, len, r->pool, bb->bucket_alloc));
    }
    q->filter_time += apr_time_now() - t0;
    if ((a->answer.mode == S2A_ANSWER_ERROR || a->answer.mode == S2A_ANSWER_JSON ||
         a->answer.mode == S2A_ANSWER_COUNT) &&
        a->answer.holding) {
        /* Not even the headers go while the answer is held: an error may yet
         * be the account's, and a JSON answer goes with its Content-Length
         * once whole. A flush passed on now (mod_proxy flushes when the
         * upstream pauses) would send the headers without a length. */
        apr_brigade_cleanup(bb);
        return APR_SUCCESS;
    }
    rv = ap_pass_brigade(f->next, bb);
    if ((rv != APR_SUCCESS || r->connection->aborted) && !a->answer.client_left &&
        start_drain(r, q, a)) {
        return APR_SUCCESS;
    }
    return rv;
}
