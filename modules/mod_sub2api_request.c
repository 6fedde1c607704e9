/* The request: translate_name hands POST .../v1/messages (and the OpenAI
 * doors, which become Messages requests) to mod_proxy;
 * fixups admit it (the client's key, the balance or subscription, the body
 * read and checked, the key's and user's limits, the first account chosen
 * and the body it is sent); the replay input filter hands mod_proxy that
 * body. */
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_key_limits.h"
#include "s2a_buf.h"
#include "s2a_sha256.h"

#define MESSAGES_PATH "/v1/messages"
#define COUNT_TOKENS_PATH "/v1/messages/count_tokens"

/* POST .../v1/messages is handed to mod_proxy at translation time, so httpd
 * never walks the file system for it. Nothing else of the location ever
 * becomes a proxy request. */
int s2a_request_translate(request_rec *r)
{
    s2a_dir_conf *dc = s2a_dir_conf_of(r);
    s2a_endpoint endpoint;
    if (!dc->balancer || !ap_is_initial_req(r)) {
        return DECLINED;
    }
    /* errors from here on (access checks included) are Anthropic-shaped */
    apr_table_setn(r->notes, S2A_ERROR_NOTE, "");
    endpoint = s2a_endpoint_of(r->uri);
    if (r->method_number != M_POST || !s2a_endpoint_proxied(endpoint)) {
        return DECLINED;
    }
    if (s2a_door_of(endpoint) != S2A_DOOR_MESSAGES) {
        /* the upstream is sent a Messages request; OpenAI's query words mean
         * nothing to it */
        r->filename = apr_pstrcat(r->pool, "proxy:", dc->balancer, MESSAGES_PATH, NULL);
    } else {
        r->filename =
            apr_pstrcat(r->pool, "proxy:", dc->balancer,
                        endpoint == S2A_ENDPOINT_MESSAGES ? MESSAGES_PATH : COUNT_TOKENS_PATH,
                        r->args ? "?" : "", r->args ? r->args : "", NULL);
    }
    r->proxyreq = PROXYREQ_REVERSE;
    r->handler = "proxy-server";
    apr_table_setn(r->notes, "proxy-nocanon", "1");
    return OK;
}

/* While a streamed request waits for a place, the client gets SSE pings, as
 * from the upstream itself, so that it and proxies between see it alive. The
 * first one sends the 200 and the event-stream headers. */
static void ping(request_rec *r, s2a_request *q)
{
    apr_size_t len;
    const char *event = s2a_door_ping(q->door.kind, &len);
    apr_time_t now = apr_time_now();
    apr_bucket_brigade *bb;
    if (!q->body.stream ||
        now - (q->pinged ? q->pinged : q->start) < apr_time_from_msec(S2A_PING_MSEC)) {
        return;
    }
    if (!q->committed) {
        r->status = HTTP_OK;
        ap_set_content_type(r, "text/event-stream");
        apr_table_setn(r->headers_out, "cache-control", "no-cache");
        q->committed = 1;
    }
    q->pinged = now;
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb,
                            apr_bucket_immortal_create(event, len, r->connection->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(r->connection->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
}

/* Refuses a request: an Anthropic error status, or on a stream that pings
 * began (its 200 is sent), an error event that ends it. */
static int refuse(request_rec *r, s2a_request *q, int status, const char *message)
{
    if (!q->committed) {
        return s2a_fail(r, status, message);
    }
    s2a_send_error_event(r, status, message);
    return DONE;
}

static int store_unavailable(request_rec *r, s2a_request *q)
{
    apr_table_setn(r->err_headers_out, "retry-after", "1");
    return refuse(r, q, HTTP_SERVICE_UNAVAILABLE,
                  "The gateway's shared state cannot be reached; retry shortly");
}

/* Reads the whole body into one buffer; mod_proxy gets it back from the
 * replay filter, so nothing spools to disk. */
static int read_body(request_rec *r, apr_off_t max, s2a_buf *body)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t expect = 64 * 1024;
    apr_bucket_brigade *bb;
    int seen_eos = 0;

    if (cl) {
        apr_off_t n = apr_atoi64(cl);
        if (n > max) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return s2a_fail(
                r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                apr_psprintf(r->pool, "Request body exceeds %" APR_OFF_T_FMT " bytes", max));
        }
        /* sized once: a body never holds more than it declared */
        if (n >= 0) {
            expect = (apr_size_t)n + 1;
        }
    }
    s2a_buf_init(body, r->pool, expect);
    /* a chunked body grows, at most to the limit */
    s2a_buf_limit(body, (apr_size_t)max + 1);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!seen_eos) {
        apr_bucket *b;
        apr_status_t rv =
            ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ, 65536);
        if (rv != APR_SUCCESS) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return s2a_fail(r, ap_map_http_request_error(rv, HTTP_BAD_REQUEST),
                            "The request body could not be read");
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t n;
            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                continue;
            }
            if (apr_bucket_read(b, &data, &n, APR_BLOCK_READ) != APR_SUCCESS) {
                return s2a_fail(r, HTTP_BAD_REQUEST, "The request body could not be read");
            }
            if ((apr_off_t)(body->len + n) > max) {
                r->connection->keepalive = AP_CONN_CLOSE;
                return s2a_fail(
                    r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                    apr_psprintf(r->pool, "Request body exceeds %" APR_OFF_T_FMT " bytes", max));
            }
            s2a_buf_append(body, data, n);
        }
        apr_brigade_cleanup(bb);
    }
    if (!body->data) {
        s2a_buf_append(body, "", 0);
    }
    return OK;
}

typedef struct {
    request_rec *r;
    s2a_request *q;
} places_owner;

/* What the request's holds settle: its balance; or its allowance and its
 * key's budget, on the next run's figure for what it spent when a window
 * ended while it ran (s2a_state_spend_settlement). */
static int settlements(request_rec *r, s2a_request *q, s2a_settlement *out)
{
    apr_int64_t now = apr_time_sec(apr_time_now());
    int n = 0;
    memset(out, 0, 4 * sizeof(*out));
    if (q->held && q->key.subscription) {
        n += s2a_state_spend_settlement(r->pool, q->secret, "allowance", q->key.sub_id, 0,
                                        &q->key.windows, s2a_windows_left(&q->key.windows, now),
                                        now, q->hold_key, q->held, q->counted, out);
    } else if (q->held) {
        out[n].key = q->hold_key;
        out[n].held = q->held;
        out[n++].spent = q->counted;
    }
    if (q->budget_held) {
        n += s2a_state_spend_settlement(r->pool, q->secret, "budget", q->key.id, q->key.budget,
                                        &q->key.budget_windows, s2a_key_budget_left(&q->key, now),
                                        now, q->budget_key, q->budget_held, q->charged, out + n);
    }
    return n;
}

/* The request's end: its places back and its balance hold settled, in one
 * call to the store (one round trip with Redis). */
static apr_status_t release_places(void *data)
{
    places_owner *o = data;
    s2a_request *q = o->q;
    s2a_place none = {0, 0, 0, 0};
    s2a_place *const places[] = {q->attempt ? &q->attempt->place : &none, &q->key_place,
                                 &q->user_place};
    size_t i;
    s2a_settlement holds[4];
    int n = settlements(o->r, q, holds);
    if (s2a_g.store->ops->finish(s2a_g.store, places, 3, holds, n) != APR_SUCCESS) {
        /* places free themselves when their lease ends */
        s2a_store_failed(o->r, "giving places back");
        if (q->held || q->budget_held) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, o->r,
                          S2ALOGNO(0209) "a balance hold was not settled (%" APR_INT64_T_FMT
                                         " nano-USD held); it ends with the user's idle balance",
                          q->held + q->budget_held);
        }
    }
    for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
        places[i]->key = 0;
    }
    q->held = 0;
    q->budget_held = 0;
    return APR_SUCCESS;
}

/* A key of a subscription group needs a running subscription with room left
 * in each of its windows (as the key cache last read them). */
static int check_subscription(request_rec *r, const s2a_key_rec *key)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), reset;
    char when[APR_RFC822_DATE_LEN];
    int w;
    if (!key->sub_id || !key->sub_active) {
        return s2a_fail(r, HTTP_FORBIDDEN,
                        "This API key's group is used by subscription, and there is no "
                        "active subscription to it");
    }
    if (key->sub_expires_at <= now) {
        apr_rfc822_date(when, apr_time_from_sec(key->sub_expires_at));
        return s2a_fail(
            r, HTTP_FORBIDDEN,
            apr_pstrcat(r->pool, "The subscription to this API key's group ended on ", when, NULL));
    }
    w = s2a_windows_exhausted(&key->windows, now, &reset);
    if (w >= 0) {
        apr_rfc822_date(when, apr_time_from_sec(reset));
        apr_table_setn(r->err_headers_out, "retry-after",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT, reset - now));
        return s2a_fail(r, HTTP_TOO_MANY_REQUESTS,
                        apr_psprintf(r->pool,
                                     "The %s allowance of this subscription is used up; it "
                                     "starts again on %s",
                                     s2a_window_names[w], when));
    }
    return OK;
}

/* Sleeps between two looks for a free place; a stream gets its pings. */
static void wait_a_little(request_rec *r, s2a_request *q)
{
    ping(r, q);
    apr_sleep(apr_time_from_msec(50));
    q->waited += apr_time_from_msec(50);
}

typedef enum { PLACES_TAKEN, PLACES_KEY_FULL, PLACES_USER_FULL, PLACES_STORE_DOWN } places_result;

/* A place among the key's and the user's concurrent requests, waiting up to
 * Sub2apiSlotWait. */
static places_result take_places(request_rec *r, s2a_request *q)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(q->sconf->slot_wait);
    int need_key = q->key.concurrency > 0, need_user = q->key.user_concurrency > 0;
    s2a_store *st = s2a_g.store;
    int taken;
    for (;;) {
        apr_time_t now = apr_time_now();
        if (need_key) {
            if (st->ops->acquire(st, q->key.key_state, q->key.concurrency, now, &taken,
                                 &q->key_place) != APR_SUCCESS) {
                s2a_store_failed(r, "counting the key's requests");
                return PLACES_STORE_DOWN;
            }
            need_key = !taken;
        }
        if (!need_key && need_user) {
            if (st->ops->acquire(st, q->balance_key, q->key.user_concurrency, now, &taken,
                                 &q->user_place) != APR_SUCCESS) {
                s2a_store_failed(r, "counting the user's requests");
                return PLACES_STORE_DOWN;
            }
            need_user = !taken;
        }
        if (!need_key && !need_user) {
            return PLACES_TAKEN;
        }
        if (now >= deadline || r->connection->aborted) {
            return need_key ? PLACES_KEY_FULL : PLACES_USER_FULL;
        }
        wait_a_little(r, q);
    }
}

/* The first account, holding `hold` (may be NULL) of the balance; when all
 * that could serve are full, waits up to Sub2apiSlotWait for one to free
 * up. A conversation waits a little for its own account before it moves to
 * another (and loses its prompt cache). */
static s2a_choice_result choose_first(request_rec *r, s2a_request *q, s2a_hold *hold)
{
    apr_time_t now = apr_time_now();
    apr_time_t deadline = now + apr_time_from_sec(q->sconf->slot_wait);
    apr_time_t sticky = now + apr_time_from_msec(S2A_STICKY_WAIT_MSEC);
    s2a_choice_ask ask = {q->key.group_id, q->body.model, NULL, q->session, 0, q->count_only, hold};
    for (;;) {
        s2a_choice_result rc;
        ask.wait_for_bound = now < sticky && now < deadline;
        rc = s2a_catalog_choose(r, q->sconf, &ask, q->attempt);
        if (rc != S2A_CHOICE_BUSY || now >= deadline || r->connection->aborted) {
            return rc;
        }
        wait_a_little(r, q);
        now = apr_time_now();
    }
}

/* Time first, so ids sort by time and the usage table's unique index grows
 * at its end; the random part keeps ids of one microsecond apart. */
static const char *new_request_id(apr_pool_t *p)
{
    unsigned char rnd[6] = {0};
    apr_generate_random_bytes(rnd, sizeof(rnd));
    return apr_psprintf(p, "req_%013" APR_UINT64_T_HEX_FMT "%s", (apr_uint64_t)apr_time_now(),
                        s2a_hex(p, rnd, sizeof(rnd)));
}

/* The pseudonym key, read from the database once per process. */
static const char *pseudonym_key(request_rec *r, s2a_srv_conf *sc)
{
    const char *secret = apr_atomic_casptr((volatile void **)&sc->secret, NULL, NULL);
    if (!secret) {
        s2a_dbc c;
        void *h;
        apr_thread_mutex_lock(sc->catalog->mutex);
        if (s2a_dbc_open(r->pool, r->server, &c, &h)) {
            secret = s2a_secret(r->pool, r->server, sc, &c);
            s2a_dbc_close(r->server, h);
        }
        apr_thread_mutex_unlock(sc->catalog->mutex);
    }
    return secret;
}

/* One more request of a kind, per minute, from `who`; 0 with a 429 set when
 * the minute is used up. */
static int within(request_rec *r, const char *who, int per_minute, int *rc)
{
    apr_time_t retry_at;
    int allowed = 1;
    if (s2a_g.store->ops->rate(s2a_g.store, s2a_state_key(who), per_minute, apr_time_now(),
                               &allowed, &retry_at) != APR_SUCCESS) {
        s2a_store_failed(r, "counting requests of the client endpoints");
        return 1;
    }
    if (!allowed) {
        apr_table_setn(
            r->err_headers_out, "retry-after",
            apr_psprintf(r->pool, "%" APR_TIME_T_FMT, apr_time_sec(retry_at - apr_time_now()) + 1));
        *rc = s2a_fail(r, HTTP_TOO_MANY_REQUESTS,
                       "Too many requests to this endpoint; retry shortly");
    }
    return allowed;
}

/* The client endpoints besides /v1/messages go to their handlers, within
 * their rates: a key may ask for its models and standing
 * S2A_ENDPOINT_PER_MINUTE times a minute, and try S2A_REDEEM_PER_KEY redeem
 * codes, an address S2A_REDEEM_PER_ADDRESS (codes cannot be guessed at
 * speed). Any other path is not served. */
static int other_endpoint(request_rec *r, s2a_request *q, s2a_endpoint endpoint)
{
    const char *kind = endpoint == S2A_ENDPOINT_REDEEM ? "redeem" : "read";
    int rc = OK;
    if (endpoint == S2A_ENDPOINT_NONE) {
        return s2a_fail(r, HTTP_NOT_FOUND,
                        apr_psprintf(r->pool, "%s %s is not served here", r->method, r->uri));
    }
    if (!within(r, apr_psprintf(r->pool, "%s:key:%s", kind, q->key_hash),
                endpoint == S2A_ENDPOINT_REDEEM ? S2A_REDEEM_PER_KEY : S2A_ENDPOINT_PER_MINUTE,
                &rc) ||
        (endpoint == S2A_ENDPOINT_REDEEM &&
         !within(r, apr_pstrcat(r->pool, "redeem:address:", r->useragent_ip, NULL),
                 S2A_REDEEM_PER_ADDRESS, &rc))) {
        return rc;
    }
    r->handler = endpoint == S2A_ENDPOINT_USAGE    ? S2A_USAGE_HANDLER
                 : endpoint == S2A_ENDPOINT_REDEEM ? S2A_REDEEM_HANDLER
                                                   : S2A_MODELS_HANDLER;
    return OK;
}

/* The key's requests per minute. */
static int check_rate(request_rec *r, s2a_request *q)
{
    apr_time_t retry_at;
    int allowed = 1;
    if (s2a_g.store->ops->rate(s2a_g.store, q->key.key_state, q->key.rpm_limit, apr_time_now(),
                               &allowed, &retry_at) != APR_SUCCESS) {
        s2a_store_failed(r, "counting the key's requests per minute");
        return store_unavailable(r, q);
    }
    if (!allowed) {
        apr_table_setn(
            r->err_headers_out, "retry-after",
            apr_psprintf(r->pool, "%" APR_TIME_T_FMT, apr_time_sec(retry_at - apr_time_now()) + 1));
        return s2a_fail(r, HTTP_TOO_MANY_REQUESTS,
                        apr_psprintf(r->pool,
                                     "This API key may send %d requests per minute; retry "
                                     "shortly",
                                     q->key.rpm_limit));
    }
    return OK;
}

/* What the request holds from while it runs: its user's balance, or its
 * subscription's allowance (the least left of the windows, counted before
 * the multiplier as the windows count); 0 for neither. */
static int hold_from(request_rec *r, s2a_request *q, s2a_hold *hold)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), left;
    memset(hold, 0, sizeof(*hold));
    if (q->count_only) {
        return 0;
    }
    if (!q->key.subscription) {
        hold->balance.key = q->balance_key;
        hold->balance.known = q->key.balance_nano;
        hold->multiplier_ppm = q->key.multiplier_ppm;
    } else if ((left = s2a_windows_left(&q->key.windows, now)) >= 0) {
        hold->balance.key = s2a_state_key_spend(r->pool, q->secret, "allowance", q->key.sub_id, 0,
                                                &q->key.windows, now);
        hold->balance.known = left;
        hold->multiplier_ppm = 1000000;
    } else {
        return 0;
    }
    s2a_body_estimate(&q->body, &hold->estimate);
    q->hold_key = hold->balance.key;
    return 1;
}

/* The refusal of a request whose allowance is spoken for: used up, counting
 * what the requests in flight hold. */
static int allowance_refused(request_rec *r, s2a_request *q)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), reset = 0;
    char when[APR_RFC822_DATE_LEN];
    int w = s2a_windows_tightest(&q->key.windows, now, &reset);
    if (!reset) {
        /* the window has not started as far as this process knows: what is
         * there is held by requests that started it */
        apr_table_setn(r->err_headers_out, "retry-after", "1");
        return refuse(r, q, HTTP_TOO_MANY_REQUESTS,
                      apr_psprintf(r->pool,
                                   "The %s allowance of this subscription is held by requests "
                                   "in progress; retry shortly",
                                   s2a_window_names[w >= 0 ? w : 0]));
    }
    apr_rfc822_date(when, apr_time_from_sec(reset));
    apr_table_setn(r->err_headers_out, "retry-after",
                   apr_psprintf(r->pool, "%" APR_INT64_T_FMT, reset - now));
    return refuse(r, q, HTTP_TOO_MANY_REQUESTS,
                  apr_psprintf(r->pool,
                               "The %s allowance of this subscription is used up, counting "
                               "requests in progress; it starts again on %s",
                               s2a_window_names[w], when));
}

/* The first account, with the balance or allowance hold, and what it is
 * sent. */
static int choose_account(request_rec *r, s2a_request *q)
{
    s2a_hold hold;
    int with_hold = hold_from(r, q, &hold);
    s2a_choice_result found;

    q->tried = apr_array_make(r->pool, 4, sizeof(apr_int64_t));
    q->attempt = s2a_attempt_make(r->pool, NULL);
    found = choose_first(r, q, with_hold ? &hold : NULL);
    if (found == S2A_CHOSEN && with_hold && hold.held == 1) {
        q->held = hold.amount; /* settled by release_places */
    }
    switch (found) {
    case S2A_CHOSEN:
        break;
    case S2A_CHOICE_STORE_DOWN:
        return store_unavailable(r, q);
    case S2A_CHOICE_BROKE:
        if (q->key.subscription) {
            return allowance_refused(r, q);
        }
        return refuse(r, q, HTTP_PAYMENT_REQUIRED,
                      "Your credit balance is too low to access the API");
    case S2A_CHOICE_BUSY:
        apr_table_setn(r->err_headers_out, "retry-after", "1");
        return refuse(r, q, HTTP_TOO_MANY_REQUESTS,
                      apr_psprintf(r->pool,
                                   "Every account serving model %s is at its concurrency "
                                   "limit; retry shortly",
                                   q->body.model));
    case S2A_CHOICE_NO_DATABASE:
        apr_table_setn(r->err_headers_out, "retry-after", "1");
        return refuse(r, q, HTTP_SERVICE_UNAVAILABLE, S2A_NO_DATABASE);
    case S2A_CHOICE_NONE:
        return refuse(
            r, q, HTTP_SERVICE_UNAVAILABLE,
            apr_psprintf(r->pool, "No upstream account can serve model %s now", q->body.model));
    }
    APR_ARRAY_PUSH(q->tried, apr_int64_t) = q->attempt->account.id;
    if (!s2a_attempt_ready(r, q, q->attempt)) {
        return refuse(r, q, HTTP_BAD_REQUEST,
                      apr_psprintf(r->pool, "model: %s has no price on this gateway",
                                   q->attempt->upstream_model));
    }
    return OK;
}

/* A budget of the key that is used up, as the key cache last read it. */
static int check_key_budget(request_rec *r, const s2a_key_rec *key)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), reset = 0;
    char when[APR_RFC822_DATE_LEN];
    int w = s2a_key_budget_used_up(key, now, &reset);
    if (w < 0) {
        return OK;
    }
    if (w == S2A_KEY_BUDGET_TOTAL) {
        return s2a_fail(r, HTTP_PAYMENT_REQUIRED,
                        apr_psprintf(r->pool, "This API key's budget of $%s is used up",
                                     s2a_usd_format(r->pool, key->budget)));
    }
    apr_rfc822_date(when, apr_time_from_sec(reset));
    apr_table_setn(r->err_headers_out, "retry-after",
                   apr_psprintf(r->pool, "%" APR_INT64_T_FMT, reset - now));
    return s2a_fail(r, HTTP_PAYMENT_REQUIRED,
                    apr_psprintf(r->pool,
                                 "This API key's %s budget is used up; it starts again on %s",
                                 s2a_window_names[w], when));
}

/* The key's budget, held for the request's estimated cost at the chosen
 * account's prices while it runs, as its user's balance is. */
static int hold_key_budget(request_rec *r, s2a_request *q)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), left = s2a_key_budget_left(&q->key, now);
    s2a_balance budget;
    s2a_usage estimate;
    s2a_cost cost;
    int held = 0;
    if (q->count_only || left < 0) {
        return OK;
    }
    budget.key = s2a_state_key_spend(r->pool, q->secret, "budget", q->key.id, q->key.budget,
                                     &q->key.budget_windows, now);
    budget.known = left;
    s2a_body_estimate(&q->body, &estimate);
    s2a_cost_compute(q->attempt->price, &estimate, q->key.multiplier_ppm, &cost);
    if (s2a_g.store->ops->reserve(s2a_g.store, &budget, cost.actual, apr_time_now(), &held) !=
        APR_SUCCESS) {
        return store_unavailable(r, q);
    }
    if (!held) {
        return refuse(r, q, HTTP_PAYMENT_REQUIRED,
                      "This API key's budget is used up, counting the requests in progress");
    }
    if (held == 1) {
        q->budget_key = budget.key;
        q->budget_held = cost.actual;
    }
    return OK;
}

/* The server tools the body lists: allowed by the key's group and priced
 * for the model the account is sent (s2a_body_tools_refused). */
static int check_tools(request_rec *r, s2a_request *q)
{
    const char *message = NULL;
    int status = q->count_only ? 0
                               : s2a_body_tools_refused(r->pool, &q->body, q->attempt->price,
                                                        q->key.server_tools, &message);
    return status ? refuse(r, q, status, message) : OK;
}

/* What the key may spend, and the pseudonym key its requests need. */
static int check_spending(request_rec *r, s2a_request *q)
{
    int rc;
    if (!q->count_only && (rc = check_key_budget(r, &q->key)) != OK) {
        return rc;
    }
    /* counting tokens is free: no balance or allowance is asked */
    if (!q->count_only && q->key.subscription) {
        if ((rc = check_subscription(r, &q->key)) != OK) {
            return rc;
        }
    } else if (!q->count_only && q->key.balance_nano <= 0) {
        return s2a_fail(r, HTTP_PAYMENT_REQUIRED,
                        "Your credit balance is too low to access the API");
    }
    if (!(q->secret = pseudonym_key(r, q->sconf))) {
        return s2a_no_database(r);
    }
    return OK;
}

/* The body, read whole and checked (an OpenAI door's made into the Messages
 * body it stands for), and the conversation it belongs to. */
static int read_request(request_rec *r, s2a_request *q, apr_off_t max_body)
{
    const char *err = NULL;
    s2a_openai_error refusal;
    s2a_buf body;
    int rc;
    if ((rc = read_body(r, max_body > 0 ? max_body : S2A_DEFAULT_MAX_BODY, &body)) != OK) {
        return rc;
    }
    if (q->door.kind != S2A_DOOR_MESSAGES) {
        if (s2a_door_read(r->pool, &q->door, body.data, body.len, apr_time_sec(r->request_time),
                          &q->body, &refusal) != 0) {
            q->body.raw = body.data; /* read: the connection may stay */
            return s2a_fail_at(r, refusal.status, refusal.message, refusal.param);
        }
    } else if (s2a_body_read(r->pool, body.data, body.len, &q->body, &err) != 0) {
        return s2a_fail(r, HTTP_BAD_REQUEST, err);
    }
    if (!s2a_key_model_allowed(&q->key, q->body.model)) {
        return s2a_fail(r, HTTP_FORBIDDEN,
                        apr_psprintf(r->pool, "This API key may not use model %s", q->body.model));
    }
    q->session = q->count_only || !q->sconf->sticky_ttl
                     ? 0
                     : s2a_body_session(r->pool, &q->body, q->key.group_id, q->key.user_id,
                                        apr_table_get(r->headers_in, "x-claude-code-session-id"));
    return OK;
}

/* From here on the request holds places: they go back when it ends. */
static void begin_holding(request_rec *r, s2a_request *q)
{
    places_owner *owner = apr_palloc(r->pool, sizeof(*owner));
    owner->r = r;
    owner->q = q;
    apr_pool_cleanup_register(r->pool, owner, release_places, apr_pool_cleanup_null);
    /* set now: a stream that waits below sends its headers with the first ping */
    q->request_id = new_request_id(r->pool);
    apr_table_setn(r->err_headers_out, "x-sub2api-request-id", q->request_id);
    /* the user's limits and balance live under one key */
    q->balance_key = q->key.user_state ? q->key.user_state
                                       : s2a_state_key_user(r->pool, q->secret, q->key.user_id);
}

/* The key's and the user's places. */
static int take_key_and_user_places(request_rec *r, s2a_request *q)
{
    places_result places = q->count_only ? PLACES_TAKEN : take_places(r, q);
    if (places == PLACES_STORE_DOWN) {
        return store_unavailable(r, q);
    }
    if (places != PLACES_TAKEN) {
        apr_table_setn(r->err_headers_out, "retry-after", "1");
        return refuse(r, q, HTTP_TOO_MANY_REQUESTS,
                      places == PLACES_USER_FULL
                          ? "Too many concurrent requests for this user; retry shortly"
                          : "Too many concurrent requests for this API key; retry shortly");
    }
    return OK;
}

/* The request's admission, in order: the key first, whatever the path
 * (nothing is served to a stranger); then the limits, before the body (a
 * slow or large upload waits its turn); then the body, the account and
 * what it is sent. */
static int admit(request_rec *r, s2a_request *q, s2a_endpoint endpoint, apr_off_t max_body)
{
    int rc;
    if ((rc = s2a_authenticate(r, q->sconf, &q->key, &q->key_hash)) != OK) {
        return rc;
    }
    if (!s2a_endpoint_proxied(endpoint)) {
        return other_endpoint(r, q, endpoint);
    }
    if (r->method_number != M_POST) {
        ap_allow_methods(r, REPLACE_ALLOW, "POST", NULL);
        return s2a_fail(r, HTTP_METHOD_NOT_ALLOWED,
                        apr_pstrcat(r->pool, "Use POST for ", r->uri, NULL));
    }
    if ((rc = check_spending(r, q)) != OK || (rc = check_rate(r, q)) != OK) {
        return rc;
    }
    begin_holding(r, q);
    q->proxy_filename = r->filename;
    if ((rc = take_key_and_user_places(r, q)) != OK || (rc = read_request(r, q, max_body)) != OK ||
        (rc = choose_account(r, q)) != OK || (rc = check_tools(r, q)) != OK ||
        (rc = hold_key_budget(r, q)) != OK) {
        return rc;
    }
    r->filename = apr_pstrdup(r->pool, q->attempt->filename);
    ap_add_input_filter_handle(s2a_g.replay_filter, NULL, r, r->connection);
    ap_add_output_filter_handle(s2a_g.answer_filter, NULL, r, r->connection);
    return OK;
}

int s2a_request_fixups(request_rec *r)
{
    s2a_dir_conf *dc = s2a_dir_conf_of(r);
    s2a_srv_conf *sc = s2a_server_conf(r->server);
    s2a_endpoint endpoint;
    s2a_request *q;
    int rc;

    if (!dc->balancer || !ap_is_initial_req(r)) {
        return DECLINED;
    }
    /* every answer of the gateway location is Anthropic-shaped */
    apr_table_setn(r->notes, S2A_ERROR_NOTE, "");
    if (!sc->prices || !sc->catalog) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      S2ALOGNO(0201) "gateway location without Sub2apiPriceTable");
        return s2a_fail(r, HTTP_INTERNAL_SERVER_ERROR, "The gateway is not configured");
    }
    endpoint = s2a_endpoint_of(r->uri);
    q = apr_pcalloc(r->pool, sizeof(*q));
    q->sconf = sc;
    q->start = r->request_time;
    q->fixups_at = apr_time_now();
    q->count_only = endpoint == S2A_ENDPOINT_COUNT_TOKENS;
    q->door.kind = s2a_door_of(endpoint);
    q->door.memo = s2a_g.tools_memo;
    /* set now: a request refused below is counted and logged with what is known */
    ap_set_module_config(r->request_config, &sub2api_module, q);
    rc = admit(r, q, endpoint, dc->max_body);
    if (rc != OK && !q->body.raw && ap_request_has_body(r)) {
        /* refused unread: httpd must not read a body it does not want, to
         * keep a connection */
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    return rc;
}

/* Hands mod_proxy the attempt's body and EOS in one call, whatever it asked
 * for: it then sends a Content-Length and does not spool. */
apr_status_t s2a_request_replay(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                apr_read_type_e block, apr_off_t readbytes)
{
    s2a_request *q = s2a_request_of(f->r);
    s2a_attempt *a = q ? q->attempt : NULL;
    (void)mode;
    (void)block;
    (void)readbytes;
    if (a && !a->body_served) {
        int i;
        a->body_served = 1;
        for (i = 0; i < a->body->nelts; i++) {
            const s2a_piece *pc = &APR_ARRAY_IDX(a->body, i, s2a_piece);
            if (pc->len) {
                APR_BRIGADE_INSERT_TAIL(
                    bb, apr_bucket_immortal_create(pc->p, pc->len, bb->bucket_alloc));
            }
        }
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
    return APR_SUCCESS;
}
