/* The request path of POST /v1/messages: authentication and body handling
 * in fixups, the replay input filter, the lbmethod provider, credentials in
 * mod_proxy's fixups, and the output filter that reads usage on the way. */
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_provider.h>
#include <mod_proxy.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "mod_sub2api_private.h"
#include "s2a_oauth.h"
#include "s2a_beta.h"
#include "s2a_errors.h"
#include "s2a_identity.h"
#include "s2a_json.h"
#include "s2a_keys.h"
#include "s2a_session.h"
#include "s2a_sha256.h"

#define S2A_REPLAY_FILTER "SUB2API_REPLAY"
#define S2A_ANSWER_FILTER "SUB2API_ANSWER"
#define S2A_ERROR_FILTER "SUB2API_ERROR"
#define S2A_MAX_SSE_EVENT (1024 * 1024)
#define S2A_MAX_HOLD (256 * 1024)
#define S2A_MAX_JSON_HOLD (8 * 1024 * 1024)
#define S2A_ERROR_NOTE "sub2api-json-error"
#define MESSAGES_PATH "/v1/messages"
#define COUNT_TOKENS_PATH "/v1/messages/count_tokens"

static APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) * retry_worker;
static ap_filter_rec_t *replay_filter_handle;
static ap_filter_rec_t *answer_filter_handle;

s2a_req *s2a_req_get(request_rec *r)
{
    return ap_get_module_config(r->request_config, &sub2api_module);
}

/* The error body is built only when httpd sends an error page (see
 * insert_error_filter), so the request path pays nothing for it. */
int s2a_fail(request_rec *r, int status, const char *message)
{
    apr_table_setn(r->notes, S2A_ERROR_NOTE, message);
    return status;
}

/* An error event on a stream already begun (see ping). */
static void send_error_event(request_rec *r, int status, const char *message)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_brigade_printf(bb, NULL, NULL, "event: error\ndata: %s\n\n",
                       s2a_error_body(r->pool, status, message));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(r->connection->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
}

/* Refuses a request: an Anthropic error status, or on a stream that pings
 * began (its 200 is sent), an error event that ends it. */
static int refuse(request_rec *r, s2a_req *q, int status, const char *message)
{
    if (!q->committed) {
        return s2a_fail(r, status, message);
    }
    send_error_event(r, status, message);
    return DONE;
}

/* While a streamed request waits for a place, the client gets SSE pings, as
 * from the upstream itself, so that it and proxies between see it alive. The
 * first one sends the 200 and the event-stream headers. */
static void ping(request_rec *r, s2a_req *q)
{
    static const char event[] = "event: ping\ndata: {\"type\": \"ping\"}\n\n";
    apr_time_t now = apr_time_now();
    apr_bucket_brigade *bb;
    if (!q->stream ||
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
    APR_BRIGADE_INSERT_TAIL(
        bb, apr_bucket_immortal_create(event, sizeof(event) - 1, r->connection->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(r->connection->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
}

/* Headers a client may pass to the upstream; everything else stays here.
 * Lengths first: a request carries a dozen or more headers, each checked. */
#define ALLOWED(name) {name, sizeof(name) - 1}
static const struct {
    const char *name;
    apr_size_t len;
} allowed_headers[] = {ALLOWED("accept"),
                       ALLOWED("accept-language"),
                       ALLOWED("anthropic-beta"),
                       ALLOWED("anthropic-dangerous-direct-browser-access"),
                       ALLOWED("anthropic-version"),
                       ALLOWED("content-type"),
                       ALLOWED("sec-fetch-mode"),
                       ALLOWED("user-agent"),
                       ALLOWED("x-app"),
                       ALLOWED("x-stainless-arch"),
                       ALLOWED("x-stainless-helper-method"),
                       ALLOWED("x-stainless-lang"),
                       ALLOWED("x-stainless-os"),
                       ALLOWED("x-stainless-package-version"),
                       ALLOWED("x-stainless-retry-count"),
                       ALLOWED("x-stainless-runtime"),
                       ALLOWED("x-stainless-runtime-version"),
                       ALLOWED("x-stainless-timeout"),
                       ALLOWED("host"),
                       ALLOWED("expect"),
                       {NULL, 0}};

static int header_allowed(const char *name)
{
    apr_size_t len = strlen(name);
    int i;
    for (i = 0; allowed_headers[i].name; i++) {
        if (allowed_headers[i].len == len && strcasecmp(name, allowed_headers[i].name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    apr_size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reads the whole body into one buffer; mod_proxy gets it back from the
 * replay filter, so nothing spools to disk. */
static int read_body(request_rec *r, apr_off_t max, char **out, apr_size_t *out_len)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t cap = 64 * 1024, len = 0;
    apr_bucket_brigade *bb;
    char *buf;
    int seen_eos = 0;

    if (cl) {
        apr_off_t n = apr_atoi64(cl);
        if (n > max) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return s2a_fail(
                r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                apr_psprintf(r->pool, "Request body exceeds %" APR_OFF_T_FMT " bytes", max));
        }
        /* trust the declared length only as far as 1 MiB: it grows with what arrives */
        if (n >= 0) {
            cap = (apr_size_t)(n < 1024 * 1024 ? n + 1 : 1024 * 1024);
        }
    }
    buf = apr_palloc(r->pool, cap);
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
            if ((apr_off_t)(len + n) > max) {
                r->connection->keepalive = AP_CONN_CLOSE;
                return s2a_fail(
                    r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                    apr_psprintf(r->pool, "Request body exceeds %" APR_OFF_T_FMT " bytes", max));
            }
            if (len + n + 1 > cap) {
                char *nb;
                while (len + n + 1 > cap) {
                    cap *= 2;
                }
                nb = apr_palloc(r->pool, cap);
                memcpy(nb, buf, len);
                buf = nb;
            }
            memcpy(buf + len, data, n);
            len += n;
        }
        apr_brigade_cleanup(bb);
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return OK;
}

static void give_back(request_rec *r, s2a_place *place)
{
    if (place->key) {
        if (s2a_g.store->ops->release(s2a_g.store, place) != APR_SUCCESS) {
            /* the place frees itself when its lease ends */
            s2a_store_failed(r, "giving a place back");
        }
        place->key = 0;
    }
}

typedef struct {
    request_rec *r;
    s2a_req *q;
} places_owner;

static int store_unavailable(request_rec *r, s2a_req *q)
{
    apr_table_setn(r->err_headers_out, "retry-after", "1");
    return refuse(r, q, HTTP_SERVICE_UNAVAILABLE,
                  "The gateway's shared state cannot be reached; retry shortly");
}

/* The request's end: its places back and its balance hold settled, in one
 * call to the store (one round trip with Redis). */
static apr_status_t release_places(void *data)
{
    places_owner *o = data;
    s2a_req *q = o->q;
    s2a_place *const places[] = {&q->account_place, &q->next_place, &q->key_place,
                                 &q->user_place};
    size_t i;
    if (s2a_g.store->ops->finish(s2a_g.store, places, 4, q->held ? q->balance_key : 0, q->held,
                                 q->charged) != APR_SUCCESS) {
        /* places free themselves when their lease ends */
        s2a_store_failed(o->r, "giving places back");
        if (q->held) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, o->r,
                          S2ALOGNO(0209) "a balance hold was not settled (%" APR_INT64_T_FMT
                                         " nano-USD held); it ends with the user's idle balance",
                          q->held);
        }
    }
    for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
        places[i]->key = 0;
    }
    q->have_next = 0;
    q->held = 0;
    return APR_SUCCESS;
}

/* Where the limits and balance of a user are counted: by its id within its
 * database (whose secret tells databases apart); the key cache has it. */
static apr_int64_t user_state(request_rec *r, s2a_req *q)
{
    return q->key.user_state ? q->key.user_state
                             : s2a_user_state_key(r->pool, q->secret, q->key.user_id);
}

int s2a_authenticate(request_rec *r, s2a_srv_conf *sc, s2a_key_rec *out, const char **key_hash)
{
    const char *key = s2a_key_from_headers(r->pool, apr_table_get(r->headers_in, "x-api-key"),
                                           apr_table_get(r->headers_in, "Authorization"));
    int found;
    if (!key) {
        return s2a_fail(r, HTTP_UNAUTHORIZED,
                        "An API key is required in the x-api-key or Authorization header");
    }
    *key_hash = s2a_key_hash(r->pool, key);
    found = s2a_catalog_key(r, sc, *key_hash, out);
    if (found < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, S2ALOGNO(0202) "key lookup: no database");
        return s2a_fail(r, HTTP_INTERNAL_SERVER_ERROR, "The gateway cannot reach its database");
    }
    if (!found) {
        return s2a_fail(r, HTTP_UNAUTHORIZED, "invalid x-api-key");
    }
    if (!out->active) {
        return s2a_fail(r, HTTP_UNAUTHORIZED, "This API key is disabled");
    }
    if (out->expires_at && out->expires_at <= apr_time_sec(apr_time_now())) {
        return s2a_fail(r, HTTP_UNAUTHORIZED, "This API key has expired");
    }
    return OK;
}

/* A key of a subscription group needs a running subscription with room left
 * in each of its windows (as the key cache last read them). */
static int check_subscription(request_rec *r, s2a_req *q)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), reset;
    char when[APR_RFC822_DATE_LEN];
    int w;
    if (!q->key.sub_id || !q->key.sub_active) {
        return s2a_fail(r, HTTP_FORBIDDEN,
                        "This API key's group is used by subscription, and there is no "
                        "active subscription to it");
    }
    if (q->key.sub_expires_at <= now) {
        apr_rfc822_date(when, apr_time_from_sec(q->key.sub_expires_at));
        return s2a_fail(r, HTTP_FORBIDDEN,
                        apr_pstrcat(r->pool, "The subscription to this API key's group ended on ",
                                    when, NULL));
    }
    w = s2a_windows_exhausted(&q->key.windows, now, &reset);
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

/* A request holds its estimated cost of the user's balance until it is
 * billed: input at S2A_BYTES_PER_TOKEN bytes of body per token, output up
 * to max_tokens; the account chosen decides the prices. */
static void estimate_hold(request_rec *r, s2a_req *q, apr_size_t body_len,
                          const s2a_json_span *max_tokens, s2a_hold *hold)
{
    memset(hold, 0, sizeof(*hold));
    hold->balance.key = q->balance_key;
    hold->balance.known = q->key.balance_nano;
    hold->multiplier_ppm = q->key.multiplier_ppm;
    hold->estimate.input = (apr_int64_t)body_len / S2A_BYTES_PER_TOKEN;
    hold->estimate.output = S2A_ESTIMATE_MAX_TOKENS;
    if (max_tokens->type == S2A_JSON_NUMBER && max_tokens->len < 9) {
        apr_int64_t v = apr_atoi64(apr_pstrmemdup(r->pool, max_tokens->p, max_tokens->len));
        if (v > 0) {
            hold->estimate.output = v;
        }
    }
}

/* A place among the key's and the user's concurrent requests, waiting up to
 * Sub2apiSlotWait: 1 taken, 0 the key's are all taken, -1 the user's, -3
 * the store failed. */
static int take_places(request_rec *r, s2a_req *q, apr_int64_t kstate)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(q->sconf->slot_wait);
    apr_int64_t ustate = q->balance_key;
    int need_key = q->key.concurrency > 0, need_user = q->key.user_concurrency > 0;
    s2a_store *st = s2a_g.store;
    int taken;
    for (;;) {
        apr_time_t now = apr_time_now();
        if (need_key) {
            if (st->ops->acquire(st, kstate, q->key.concurrency, now, &taken, &q->key_place) !=
                APR_SUCCESS) {
                s2a_store_failed(r, "counting the key's requests");
                return -3;
            }
            need_key = !taken;
        }
        if (!need_key && need_user) {
            if (st->ops->acquire(st, ustate, q->key.user_concurrency, now, &taken,
                                 &q->user_place) != APR_SUCCESS) {
                s2a_store_failed(r, "counting the user's requests");
                return -3;
            }
            need_user = !taken;
        }
        if (!need_key && !need_user) {
            return 1;
        }
        if (now >= deadline || r->connection->aborted) {
            return need_key ? 0 : -1;
        }
        ping(r, q);
        apr_sleep(apr_time_from_msec(50));
        q->waited += apr_time_from_msec(50);
    }
}

/* An OAuth account whose token ends soon gets a new one before it serves
 * (S2A_OAUTH_MARGIN_SEC); when that fails the old token is tried still. */
static void freshen(request_rec *r, s2a_req *q, s2a_account *a)
{
    const char *plain;
    if (a->refreshable && a->expires_at &&
        a->expires_at <= apr_time_sec(apr_time_now()) + S2A_OAUTH_MARGIN_SEC &&
        s2a_oauth_ensure(r->pool, r->server, q->sconf, a->id, NULL, &plain)) {
        a->credential = plain; /* its state key is its id's: unchanged */
    }
}

/* Finds the account the request goes to next, if it may switch again. */
static int choose_next(request_rec *r, s2a_req *q)
{
    if (q->have_next) {
        return 1;
    }
    if (q->attempt > q->sconf->max_switches ||
        s2a_catalog_choose(r, q->sconf, q->key.group_id, q->model, q->tried, q->session, 0,
                           q->count_only, NULL, &q->next, &q->next_model, &q->next_place) != 1) {
        return 0;
    }
    q->have_next = 1;
    if (!q->count_only && !s2a_price_of(q->sconf, q->next_model)) {
        give_back(r, &q->next_place);
        q->have_next = 0;
    }
    if (q->have_next) {
        freshen(r, q, &q->next);
    }
    return q->have_next;
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

/* Messages for the failures mod_proxy reports itself. */
static const char *default_message(int status)
{
    switch (status) {
    case HTTP_BAD_GATEWAY:
        return "The upstream could not be reached or broke the connection";
    case HTTP_SERVICE_UNAVAILABLE:
        return "No upstream is reachable right now";
    case HTTP_GATEWAY_TIME_OUT:
        return "The upstream did not answer in time";
    default:
        return "The gateway could not complete the request";
    }
}

/* POST .../v1/messages is handed to mod_proxy at translation time, so httpd
 * never walks the file system for it. */
static int gateway_translate(request_rec *r)
{
    s2a_dir_conf *dc = ap_get_module_config(r->per_dir_config, &sub2api_module);
    const char *path = MESSAGES_PATH;
    if (!dc->balancer || !ap_is_initial_req(r)) {
        return DECLINED;
    }
    /* errors from here on (access checks included) are Anthropic-shaped */
    apr_table_setn(r->notes, S2A_ERROR_NOTE, "");
    if (r->method_number != M_POST) {
        return DECLINED;
    }
    if (ends_with(r->uri, COUNT_TOKENS_PATH)) {
        path = COUNT_TOKENS_PATH;
    } else if (!ends_with(r->uri, MESSAGES_PATH)) {
        return DECLINED;
    }
    r->filename = apr_pstrcat(r->pool, "proxy:", dc->balancer, path, r->args ? "?" : "",
                              r->args ? r->args : "", NULL);
    r->proxyreq = PROXYREQ_REVERSE;
    r->handler = "proxy-server";
    apr_table_setn(r->notes, "proxy-nocanon", "1");
    return OK;
}

static int check_fields(request_rec *r, const s2a_json_span *f, const char **model, int *stream)
{
    if (f[0].type != S2A_JSON_STRING || !(*model = s2a_json_string_dup(r->pool, &f[0])) ||
        !**model) {
        return s2a_fail(r, HTTP_BAD_REQUEST, "model: a non-empty string is required");
    }
    if (f[1].type != S2A_JSON_ARRAY) {
        return s2a_fail(r, HTTP_BAD_REQUEST, "messages: an array is required");
    }
    if (f[2].type != S2A_JSON_NONE && f[2].type != S2A_JSON_TRUE && f[2].type != S2A_JSON_FALSE) {
        return s2a_fail(r, HTTP_BAD_REQUEST, "stream: must be a boolean");
    }
    if (f[3].type != S2A_JSON_NONE && f[3].type != S2A_JSON_OBJECT) {
        return s2a_fail(r, HTTP_BAD_REQUEST, "metadata: must be an object");
    }
    *stream = f[2].type == S2A_JSON_TRUE;
    return OK;
}

static int edit_before(const void *a, const void *b)
{
    const s2a_json_edit *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* The new metadata.user_id: a pseudonym of (user, account) in the form the
 * client used, and where it goes in the body. */
static void user_id_edit(request_rec *r, s2a_req *q, const char *body, const s2a_json_span *top,
                         const s2a_json_span *meta, s2a_json_edit *e)
{
    const char *ps = s2a_identity_pseudonym(r->pool, (const unsigned char *)q->secret,
                                            strlen(q->secret), q->key.user_id, q->account.id);
    s2a_json_span uid;
    const char *original = NULL, *value;

    if (meta->type == S2A_JSON_OBJECT && s2a_json_object_get(meta, "user_id", &uid)) {
        if (uid.type == S2A_JSON_STRING) {
            original = s2a_json_string_dup(r->pool, &uid);
        }
        value = s2a_json_quote(r->pool, s2a_identity_user_id(r->pool, ps, original));
        e->off = (apr_size_t)(uid.p - body);
        e->len = uid.len;
        e->text = value;
    } else if (meta->type == S2A_JSON_OBJECT) {
        const char *in = meta->p + 1;
        while (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r') {
            in++;
        }
        value = s2a_json_quote(r->pool, s2a_identity_user_id(r->pool, ps, NULL));
        e->off = (apr_size_t)(meta->p + 1 - body);
        e->len = 0;
        e->text = apr_pstrcat(r->pool, "\"user_id\":", value, *in == '}' ? "" : ",", NULL);
    } else {
        value = s2a_json_quote(r->pool, s2a_identity_user_id(r->pool, ps, NULL));
        e->off = (apr_size_t)(top->p + 1 - body);
        e->len = 0;
        e->text = apr_pstrcat(r->pool, "\"metadata\":{\"user_id\":", value, "},", NULL);
    }
    e->text_len = strlen(e->text);
}

/* The body goes upstream as pieces of the bytes read plus the edits: the
 * model mapping and the user pseudonym. Nothing is copied. */
static void edit_body(request_rec *r, s2a_req *q)
{
    const char *body = q->raw_body;
    apr_size_t len = q->raw_len;
    const s2a_json_span *f = q->fields;
    s2a_json_edit e[2];
    s2a_json_span top;
    apr_size_t at = 0;
    int n = 0, i;

    top.p = body;
    while (*top.p != '{') {
        top.p++;
    }
    q->rewrite_model = 0;
    if (strcmp(q->model, q->upstream_model) != 0) {
        e[n].off = (apr_size_t)(f[0].p - body);
        e[n].len = f[0].len;
        e[n].text = s2a_json_quote(r->pool, q->upstream_model);
        e[n].text_len = strlen(e[n].text);
        n++;
        q->rewrite_model = 1;
    }
    /* the count_tokens API takes no metadata: added only to a request's */
    if (!q->count_only || f[3].type == S2A_JSON_OBJECT) {
        user_id_edit(r, q, body, &top, &f[3], &e[n++]);
    }
    qsort(e, (size_t)n, sizeof(e[0]), edit_before);
    q->body = apr_array_make(r->pool, 2 * n + 1, sizeof(s2a_piece));
    for (i = 0; i < n; i++) {
        s2a_piece *before = apr_array_push(q->body), *text = apr_array_push(q->body);
        before->p = body + at;
        before->len = e[i].off - at;
        text->p = e[i].text;
        text->len = e[i].text_len;
        at = e[i].off + e[i].len;
    }
    APR_ARRAY_PUSH(q->body, s2a_piece).p = body + at;
    APR_ARRAY_IDX(q->body, q->body->nelts - 1, s2a_piece).len = len - at;
}

/* The conversation this request belongs to (see s2a_session.h). */
static apr_uint64_t session_key(request_rec *r, s2a_req *q, const s2a_json_span *f)
{
    s2a_json_span uid;
    const char *user_id = NULL;
    if (!q->sconf->sticky_ttl) {
        return 0;
    }
    if (f[3].type == S2A_JSON_OBJECT && s2a_json_object_get(&f[3], "user_id", &uid) &&
        uid.type == S2A_JSON_STRING) {
        user_id = s2a_json_string_dup(r->pool, &uid);
    }
    return s2a_session_key(r->pool, q->key.group_id, q->key.user_id,
                           apr_table_get(r->headers_in, "x-claude-code-session-id"), user_id, &f[4],
                           &f[1]);
}

/* The first account, holding `hold` (may be NULL) of the balance; when all
 * that could serve are full, waits up to Sub2apiSlotWait for one to free
 * up. A conversation waits a little for its own account before it moves to
 * another (and loses its prompt cache). */
static int choose_first(request_rec *r, s2a_req *q, s2a_hold *hold)
{
    apr_time_t now = apr_time_now();
    apr_time_t deadline = now + apr_time_from_sec(q->sconf->slot_wait);
    apr_time_t sticky = now + apr_time_from_msec(S2A_STICKY_WAIT_MSEC);
    for (;;) {
        int rc = s2a_catalog_choose(r, q->sconf, q->key.group_id, q->model, NULL, q->session,
                                    now < sticky && now < deadline, q->count_only, hold,
                                    &q->account, &q->upstream_model, &q->account_place);
        if (rc != -2 || now >= deadline || r->connection->aborted) {
            return rc;
        }
        ping(r, q);
        apr_sleep(apr_time_from_msec(50));
        q->waited += apr_time_from_msec(50);
        now = apr_time_now();
    }
}

static int gateway_fixups(request_rec *r)
{
    static const char *const fields[] = {"model",    "messages", "stream",
                                         "metadata", "system",   "max_tokens"};
    s2a_dir_conf *dc = ap_get_module_config(r->per_dir_config, &sub2api_module);
    s2a_srv_conf *sc = ap_get_module_config(r->server->module_config, &sub2api_module);
    s2a_json_span f[6];
    s2a_req *q;
    const char *key_hash, *err = NULL;
    apr_time_t retry_at;
    apr_int64_t kstate;
    places_owner *owner;
    char *body = NULL;
    apr_size_t body_len = 0;
    s2a_hold hold;
    int rc, found, count_only, with_hold, allowed = 0;

    if (!dc->balancer || !ap_is_initial_req(r)) {
        return DECLINED;
    }
    /* every answer of the gateway location is Anthropic-shaped */
    apr_table_setn(r->notes, S2A_ERROR_NOTE, "");
    if (ends_with(r->uri, "/v1/usage") || ends_with(r->uri, "/v1/redeem")) {
        r->handler = ends_with(r->uri, "/v1/usage") ? S2A_USAGE_HANDLER : S2A_REDEEM_HANDLER;
        return OK;
    }
    if (ends_with(r->uri, "/v1/models") || strstr(r->uri, "/v1/models/")) {
        r->handler = S2A_MODELS_HANDLER;
        return OK;
    }
    count_only = ends_with(r->uri, COUNT_TOKENS_PATH);
    if (!count_only && !ends_with(r->uri, MESSAGES_PATH)) {
        return s2a_fail(r, HTTP_NOT_FOUND,
                        apr_psprintf(r->pool, "%s %s is not served here", r->method, r->uri));
    }
    if (r->method_number != M_POST) {
        ap_allow_methods(r, REPLACE_ALLOW, "POST", NULL);
        return s2a_fail(r, HTTP_METHOD_NOT_ALLOWED,
                        apr_pstrcat(r->pool, "Use POST for ",
                                    count_only ? COUNT_TOKENS_PATH : MESSAGES_PATH, NULL));
    }
    if (!sc->prices || !sc->catalog) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      S2ALOGNO(0201) "gateway location without Sub2apiPriceTable");
        return s2a_fail(r, HTTP_INTERNAL_SERVER_ERROR, "The gateway is not configured");
    }

    q = apr_pcalloc(r->pool, sizeof(*q));
    q->sconf = sc;
    q->start = r->request_time;
    q->fixups_at = apr_time_now();
    q->count_only = count_only;
    /* set now: a request refused below is counted and logged with what is known */
    ap_set_module_config(r->request_config, &sub2api_module, q);
    if ((rc = s2a_authenticate(r, sc, &q->key, &key_hash)) != OK) {
        return rc;
    }
    /* counting tokens is free: no balance, allowance or limit is asked */
    if (!count_only && q->key.subscription) {
        if ((rc = check_subscription(r, q)) != OK) {
            return rc;
        }
    } else if (!count_only && q->key.balance_nano <= 0) {
        return s2a_fail(r, HTTP_PAYMENT_REQUIRED,
                        "Your credit balance is too low to access the API");
    }

    q->secret = apr_atomic_casptr((volatile void **)&sc->secret, NULL, NULL);
    if (!q->secret) {
        s2a_dbc c;
        void *h;
        apr_thread_mutex_lock(sc->catalog->mutex);
        if (s2a_dbc_open(r->pool, r->server, &c, &h)) {
            q->secret = s2a_secret(r->pool, r->server, sc, &c);
            s2a_dbc_close(r->server, h);
        }
        apr_thread_mutex_unlock(sc->catalog->mutex);
        if (!q->secret) {
            return s2a_fail(r, HTTP_INTERNAL_SERVER_ERROR, "The gateway cannot reach its database");
        }
    }
    rc = read_body(r, dc->max_body > 0 ? dc->max_body : S2A_DEFAULT_MAX_BODY, &body, &body_len);
    if (rc != OK) {
        return rc;
    }
    if (s2a_json_scan_object(r->pool, body, body_len, fields, 6, f, &err) != 0) {
        return s2a_fail(r, HTTP_BAD_REQUEST,
                        apr_pstrcat(r->pool, "The request body is not valid JSON: ", err, NULL));
    }
    if ((rc = check_fields(r, f, &q->model, &q->stream)) != OK) {
        return rc;
    }
    q->session = count_only ? 0 : session_key(r, q, f);
    kstate = q->key.key_state;
    if (count_only) {
        allowed = 1;
    } else if (s2a_g.store->ops->rate(s2a_g.store, kstate, q->key.rpm_limit, apr_time_now(),
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
    owner = apr_palloc(r->pool, sizeof(*owner));
    owner->r = r;
    owner->q = q;
    apr_pool_cleanup_register(r->pool, owner, release_places, apr_pool_cleanup_null);
    /* set now: a stream that waits below sends its headers with the first ping */
    q->request_id = new_request_id(r->pool);
    apr_table_setn(r->err_headers_out, "x-sub2api-request-id", q->request_id);
    /* the user's limits and balance live under one key */
    q->balance_key = user_state(r, q);
    if (count_only) {
        rc = 1;
    } else if ((rc = take_places(r, q, kstate)) == -3) {
        return store_unavailable(r, q);
    }
    if (rc != 1) {
        apr_table_setn(r->err_headers_out, "retry-after", "1");
        return refuse(r, q, HTTP_TOO_MANY_REQUESTS,
                      rc < 0 ? "Too many concurrent requests for this user; retry shortly"
                             : "Too many concurrent requests for this API key; retry shortly");
    }

    q->tried = apr_array_make(r->pool, 4, sizeof(apr_int64_t));
    q->attempt = 1;
    with_hold = !count_only && !q->key.subscription;
    if (with_hold) {
        estimate_hold(r, q, body_len, &f[5], &hold);
    }
    found = choose_first(r, q, with_hold ? &hold : NULL);
    if (found == -3) {
        return store_unavailable(r, q);
    }
    if (found == -4) {
        return refuse(r, q, HTTP_PAYMENT_REQUIRED,
                      "Your credit balance is too low to access the API");
    }
    if (found == 1 && with_hold && hold.held == 1) {
        q->held = hold.amount; /* settled by release_places */
    }
    if (found == -2) {
        apr_table_setn(r->err_headers_out, "retry-after", "1");
        return refuse(r, q, HTTP_TOO_MANY_REQUESTS,
                      apr_psprintf(r->pool,
                                   "Every account serving model %s is at its concurrency "
                                   "limit; retry shortly",
                                   q->model));
    }
    if (found < 0) {
        return refuse(r, q, HTTP_INTERNAL_SERVER_ERROR, "The gateway cannot reach its database");
    }
    if (!found) {
        return refuse(
            r, q, HTTP_SERVICE_UNAVAILABLE,
            apr_psprintf(r->pool, "No upstream account can serve model %s now", q->model));
    }
    APR_ARRAY_PUSH(q->tried, apr_int64_t) = q->account.id;
    freshen(r, q, &q->account);
    q->price = s2a_price_of(sc, q->upstream_model);
    if (!q->price && !count_only) {
        return refuse(
            r, q, HTTP_BAD_REQUEST,
            apr_psprintf(r->pool, "model: %s has no price on this gateway", q->upstream_model));
    }

    q->raw_body = body;
    q->raw_len = body_len;
    q->proxy_filename = r->filename;
    memcpy(q->fields, f, sizeof(q->fields));
    edit_body(r, q);

    ap_add_input_filter_handle(replay_filter_handle, NULL, r, r->connection);
    ap_add_output_filter_handle(answer_filter_handle, NULL, r, r->connection);
    return OK;
}

/* Hands mod_proxy the edited body and EOS in one call, whatever it asked
 * for: it then sends a Content-Length and does not spool. */
static apr_status_t replay_filter(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                  apr_read_type_e block, apr_off_t readbytes)
{
    s2a_req *q = s2a_req_get(f->r);
    (void)mode;
    (void)block;
    (void)readbytes;
    if (q && !q->body_served) {
        int i;
        q->body_served = 1;
        for (i = 0; i < q->body->nelts; i++) {
            const s2a_piece *pc = &APR_ARRAY_IDX(q->body, i, s2a_piece);
            if (pc->len) {
                APR_BRIGADE_INSERT_TAIL(
                    bb, apr_bucket_immortal_create(pc->p, pc->len, bb->bucket_alloc));
            }
        }
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
    return APR_SUCCESS;
}

/* The lbmethod finder runs under the balancer lock: a lookup, no I/O. */
static proxy_worker *find_worker(proxy_balancer *balancer, request_rec *r)
{
    s2a_req *q = s2a_req_get(r);
    int i;
    if (!q) {
        return NULL;
    }
    for (i = 0; i < balancer->workers->nelts; i++) {
        proxy_worker *w = APR_ARRAY_IDX(balancer->workers, i, proxy_worker *);
        const char *name = *w->s->name_ex ? w->s->name_ex : w->s->name;
        apr_size_t n = strlen(q->account.endpoint);
        while (n && q->account.endpoint[n - 1] == '/') {
            n--;
        }
        if (strncasecmp(name, q->account.endpoint, n) == 0 &&
            (name[n] == '\0' || (name[n] == '/' && name[n + 1] == '\0'))) {
            /* All accounts may share one member (api.anthropic.com): one
             * failed connection must not stop them all until the member's
             * retry time. Accounts rest on their own, so the member serves
             * whatever state mod_proxy gave it. */
            if (!PROXY_WORKER_IS_USABLE(w) && retry_worker) {
                retry_worker("BALANCER", w, r->server);
            }
            return w;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  S2ALOGNO(0203) "account %" APR_INT64_T_FMT " endpoint %s is not a member of %s",
                  q->account.id, q->account.endpoint, balancer->s->name);
    return NULL;
}

static apr_status_t lb_noop(proxy_balancer *balancer, server_rec *s)
{
    (void)balancer;
    (void)s;
    return APR_SUCCESS;
}

static const proxy_balancer_method lbmethod = {"sub2api", find_worker, NULL,
                                               lb_noop,   lb_noop,     NULL};

/* After an attempt: when the upstream failed before the client got a byte,
 * the request goes to another account of the group. mod_proxy's handler runs
 * again for it, with the body the replay filter serves anew. */
static int request_status(int *status, request_rec *r)
{
    s2a_req *q = s2a_req_get(r);
    apr_bucket_brigade *kept = NULL;
    s2a_account failed;

    if (!q || r->main) {
        return OK;
    }
    if (!q->swallow) {
        if (q->answered || (*status != HTTP_BAD_GATEWAY && *status != HTTP_SERVICE_UNAVAILABLE &&
                            *status != HTTP_GATEWAY_TIME_OUT)) {
            return OK;
        }
        if (!choose_next(r, q)) {
            if (q->committed) {
                /* the 200 is out: the error goes as an event, not a page */
                send_error_event(r, *status, default_message(*status));
                *status = DONE;
            }
            return OK;
        }
    }
    failed = q->account;
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  S2ALOGNO(0207) "attempt %d: account %" APR_INT64_T_FMT " %s %d; "
                                 "sending the request to account %" APR_INT64_T_FMT,
                  q->attempt, failed.id, q->answered ? "answered" : "could not be reached:",
                  q->answered ? q->upstream_status : *status, q->next.id);
    give_back(r, &q->account_place);
    q->account_place = q->next_place;
    q->next_place.key = 0;
    q->account = q->next;
    q->upstream_model = q->next_model;
    q->price = s2a_price_of(q->sconf, q->upstream_model);
    q->have_next = 0;
    q->attempt++;
    APR_ARRAY_PUSH(q->tried, apr_int64_t) = q->account.id;
    edit_body(r, q);
    q->body_served = 0;
    q->swallow = q->answered = q->replaced = q->eos = q->upstream_broken = 0;
    q->upstream_status = 0;
    q->holding = 0;
    q->as_event = 0;
    q->hold = NULL;
    q->hold_len = q->hold_cap = 0;
    q->sse = NULL;
    q->usage_json = NULL;
    q->first_byte = 0;
    memset(&q->usage, 0, sizeof(q->usage));
    /* what mod_proxy kept of the old body must not be sent again */
    apr_pool_userdata_get((void **)&kept, "proxy-req-input", r->pool);
    if (kept) {
        apr_brigade_cleanup(kept);
    }
    r->status = HTTP_OK;
    r->status_line = NULL;
    apr_table_clear(r->headers_out);
    /* mod_proxy_balancer rewrote it to the failed member's URL; mod_proxy_http
     * notes about the failed attempt must not count against the next one */
    r->filename = q->proxy_filename;
    apr_table_unset(r->notes, "proxy_timedout");
    apr_table_unset(r->notes, "proxy-100-continue");
    *status = ap_run_handler(r);
    return OK;
}

/* Runs on the copy of the headers mod_proxy is about to send: only the
 * allow-list and the account's credential leave the gateway. */
static int proxy_fixups(request_rec *r)
{
    s2a_req *q = s2a_req_get(r);
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    apr_table_t *h;
    apr_time_t now;
    int i;

    if (!q) {
        return OK;
    }
    now = apr_time_now();
    if (!q->sent_at) {
        q->own_time = now - q->fixups_at - q->waited;
    }
    q->sent_at = now;
    arr = apr_table_elts(r->headers_in);
    e = (const apr_table_entry_t *)arr->elts;
    h = apr_table_make(r->pool, arr->nelts + 2);
    for (i = 0; i < arr->nelts; i++) {
        if (e[i].key && header_allowed(e[i].key)) {
            apr_table_addn(h, e[i].key, e[i].val);
        }
    }
    if (strcmp(q->account.type, "apikey") == 0) {
        apr_table_setn(h, "x-api-key", q->account.credential);
    } else {
        apr_table_setn(h, "Authorization",
                       apr_pstrcat(r->pool, "Bearer ", q->account.credential, NULL));
        apr_table_setn(
            h, "anthropic-beta",
            s2a_beta_for_oauth(r->pool, apr_table_get(h, "anthropic-beta"), q->upstream_model));
    }
    if (q->account.headers) {
        /* the operator's fixed headers (checked by the admin API) win */
        apr_table_overlap(h, q->account.headers, APR_OVERLAP_TABLES_SET);
    }
    if (!apr_table_get(h, "content-type")) {
        apr_table_setn(h, "Content-Type", "application/json");
    }
    if (!apr_table_get(h, "anthropic-version")) {
        apr_table_setn(h, "anthropic-version", "2023-06-01");
    }
    r->headers_in = h;
    return OK;
}

static void on_sse_event(void *baton, const char *event, apr_size_t elen, const char *data,
                         apr_size_t dlen)
{
    s2a_usage_apply_sse(baton, event, elen, data, dlen);
}

static apr_time_t reset_time(request_rec *r, s2a_srv_conf *sc, apr_time_t now)
{
    const char *v = apr_table_get(r->headers_out, "anthropic-ratelimit-unified-reset");
    apr_int64_t n;
    if (v && (n = apr_atoi64(v)) > apr_time_sec(now)) {
        return apr_time_from_sec(n);
    }
    v = apr_table_get(r->headers_out, "retry-after");
    if (v && (n = apr_atoi64(v)) > 0) {
        return now + apr_time_from_sec(n);
    }
    return now + apr_time_from_sec(sc->rate_limit_cooldown);
}

static void mark_account_error(request_rec *r, s2a_req *q, int status)
{
    const char *err = NULL;
    s2a_dbc c;
    void *h = NULL;
    int ok;
    if (s2a_g.store->ops->set_error(s2a_g.store, q->account.state_key, 1) != APR_SUCCESS) {
        s2a_store_failed(r, "marking an account in error");
    }
    ok = s2a_dbc_open(r->pool, r->server, &c, &h) &&
         s2a_db_account_error(&c, r->pool, q->account.id,
                              apr_psprintf(r->pool, "upstream answered %d", status),
                              &err) == APR_SUCCESS;
    if (h) {
        s2a_dbc_close(r->server, h);
    }
    if (!ok) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      S2ALOGNO(0204) "account %" APR_INT64_T_FMT " error state not saved: %s",
                      q->account.id, err ? err : "no database");
    }
    s2a_bump(r->server, r->pool);
}

/* The client gets our own error instead of the upstream's answer. */
static void replace_answer(request_rec *r, s2a_req *q, int status, const char *msg,
                           const char *retry_after)
{
    apr_table_clear(r->headers_out);
    if (retry_after) {
        apr_table_setn(r->headers_out, "retry-after", retry_after);
    }
    r->status = status;
    r->status_line = NULL;
    r->content_encoding = NULL;
    q->replaced = 1;
    q->hold = s2a_error_body(r->pool, status, msg);
    if (q->committed) {
        q->hold = apr_pstrcat(r->pool, "event: error\ndata: ", q->hold, "\n\n", NULL);
    } else {
        ap_set_content_type(r, "application/json");
    }
    q->hold_len = strlen(q->hold);
}

static void untry(s2a_req *q, apr_int64_t id)
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

/* Upstream errors: the account's state follows, and the client gets our own
 * error instead of the upstream's body. */
static void take_upstream_error(request_rec *r, s2a_req *q)
{
    int status = q->upstream_status;
    int mapped = s2a_upstream_status_map(status);
    apr_time_t now = apr_time_now();
    const char *retry_after = NULL, *refreshed = NULL;
    const char *msg;

    if (status == 429) {
        apr_time_t until = reset_time(r, q->sconf, now);
        if (s2a_g.store->ops->set_rate_limited(s2a_g.store, q->account.state_key, until) !=
            APR_SUCCESS) {
            s2a_store_failed(r, "resting a rate-limited account");
        }
        retry_after = apr_psprintf(r->pool, "%" APR_TIME_T_FMT, apr_time_sec(until - now) + 1);
        msg = "The upstream account is rate limited; retry later";
    } else if (status == 529) {
        if (s2a_g.store->ops->set_overloaded(
                s2a_g.store, q->account.state_key,
                now + apr_time_from_sec(q->sconf->overload_cooldown)) != APR_SUCCESS) {
            s2a_store_failed(r, "resting an overloaded account");
        }
        msg = "The upstream is overloaded; retry later";
    } else if (status == 401 && q->account.refreshable && !q->refreshed) {
        /* a token the upstream no longer takes: refreshed once, and the
         * account may serve this request again with the new one (its place
         * is given up first, so a full account can take it again) */
        q->refreshed = 1;
        if (s2a_oauth_ensure(r->pool, r->server, q->sconf, q->account.id, q->account.credential,
                             &refreshed)) {
            untry(q, q->account.id);
            give_back(r, &q->account_place);
        } else {
            mark_account_error(r, q, status);
        }
        msg = "The upstream rejected the gateway's credentials";
    } else if (status == 401 || status == 403) {
        mark_account_error(r, q, status);
        msg = "The upstream rejected the gateway's credentials";
    } else {
        msg = "The upstream answered with an error";
    }
    if (choose_next(r, q)) {
        if (refreshed && q->next.id == q->account.id) {
            /* this process's list may not have the new token yet */
            q->next.credential = refreshed;
        }
        /* nothing reaches the client; request_status sends the request on */
        q->swallow = 1;
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  S2ALOGNO(0205) "account %" APR_INT64_T_FMT " answered %d; client gets %d",
                  q->account.id, status, mapped);
    replace_answer(r, q, mapped, msg, retry_after);
}

static void strip_account_headers(apr_table_t *t)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;
    for (i = arr->nelts - 1; i >= 0; i--) {
        if (e[i].key && (strncasecmp(e[i].key, "anthropic-ratelimit-", 20) == 0 ||
                         strcasecmp(e[i].key, "anthropic-organization-id") == 0)) {
            apr_table_unset(t, e[i].key);
            arr = apr_table_elts(t);
            e = (const apr_table_entry_t *)arr->elts;
            i = arr->nelts;
        }
    }
}

/* Answers that say something about the account, not the request: they
 * change the account's state, are never shown, and may switch accounts.
 * Other 4xx (400, 404, 413, 422...) describe the request and pass through. */
static int account_failure(int status)
{
    return status == 401 || status == 403 || status == 429 || status >= 500;
}

/* The upstream's 5-hour usage window of the account, from any answer. */
static void read_window(request_rec *r, s2a_req *q)
{
    const char *status = apr_table_get(r->headers_out, "anthropic-ratelimit-unified-5h-status");
    const char *reset = apr_table_get(r->headers_out, "anthropic-ratelimit-unified-5h-reset");
    int code;
    if (!status) {
        return;
    }
    code = strcmp(status, "allowed") == 0           ? S2A_WINDOW_ALLOWED
           : strcmp(status, "allowed_warning") == 0 ? S2A_WINDOW_WARNING
           : strcmp(status, "rejected") == 0        ? S2A_WINDOW_REJECTED
                                                    : S2A_WINDOW_UNKNOWN;
    if (s2a_g.store->ops->set_window(s2a_g.store, q->account.state_key, code,
                                     reset ? apr_time_from_sec(apr_atoi64(reset)) : 0,
                                     apr_time_now()) != APR_SUCCESS) {
        s2a_store_failed(r, "recording an account's 5-hour window");
    }
}

/* With custom error codes, an error status outside the list changes
 * nothing about the account: the client gets a plain 500. */
static int outside_error_codes(const s2a_req *q, int status)
{
    int i;
    if (!q->account.error_codes) {
        return 0;
    }
    for (i = 0; i < q->account.error_codes->nelts; i++) {
        if (APR_ARRAY_IDX(q->account.error_codes, i, int) == status) {
            return 0;
        }
    }
    return 1;
}

static void start_answer(request_rec *r, s2a_req *q)
{
    const char *ct = r->content_type ? r->content_type : "";
    q->answered = 1;
    q->upstream_status = r->status;
    read_window(r, q);
    if (account_failure(r->status) && outside_error_codes(q, r->status)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      S2ALOGNO(0208) "account %" APR_INT64_T_FMT " answered %d, outside its "
                                     "custom error codes; client gets 500",
                      q->account.id, r->status);
        replace_answer(r, q, HTTP_INTERNAL_SERVER_ERROR, "Upstream gateway error", NULL);
        return;
    }
    if (account_failure(r->status)) {
        take_upstream_error(r, q);
        return;
    }
    strip_account_headers(r->headers_out);
    if (q->count_only) {
        q->stream = 0; /* {"input_tokens": n}: nothing to read or rename */
        return;
    }
    if (r->status >= 300) {
        q->rewrite_model = 0; /* a 4xx error body names no model */
        if (q->committed) {
            /* the client already has a 200 event stream: the error body
             * goes as an error event, whole */
            q->stream = 0;
            q->holding = 1;
            q->as_event = 1;
        }
        return;
    }
    if (strncasecmp(ct, "text/event-stream", 17) == 0) {
        q->stream = 1;
        q->holding = q->rewrite_model;
        q->sse = s2a_sse_create(r->pool, S2A_MAX_SSE_EVENT, on_sse_event, &q->usage);
        /* usage rides on the message events; the text deltas are measured for the
         * estimate a stream cut short is billed by */
        s2a_sse_only(q->sse, (const char *const[]){"message_start", "message_delta",
                                                   "content_block_delta", NULL});
    } else {
        q->stream = 0;
        q->holding = 1;
        q->usage_json = s2a_usage_json_create(r->pool);
        /* recomputed when the held answer goes out with its end */
        apr_table_unset(r->headers_out, "Content-Length");
    }
}

/* Length of the first SSE event in buf, or 0 if it is not complete yet. */
static apr_size_t first_event_len(const char *buf, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n') {
            return i + 2;
        }
        if (buf[i] == '\r' && buf[i + 1] == '\n' && i + 3 < len && buf[i + 2] == '\r' &&
            buf[i + 3] == '\n') {
            return i + 4;
        }
    }
    return 0;
}

/* The held error body as one SSE error event; a line break in it starts
 * another data line, as SSE joins them. */
static void as_error_event(request_rec *r, s2a_req *q)
{
    apr_size_t i, n = q->hold_len;
    char *out, *o;
    while (n && (q->hold[n - 1] == '\n' || q->hold[n - 1] == '\r')) {
        n--;
    }
    out = apr_palloc(r->pool, n * 7 + 32); /* every byte a line break at worst */
    o = apr_cpystrn(out, "event: error\ndata: ", 32);
    for (i = 0; i < n; i++) {
        if (q->hold[i] == '\r') {
            continue;
        }
        if (q->hold[i] == '\n') {
            memcpy(o, "\ndata: ", 7);
            o += 7;
        } else {
            *o++ = q->hold[i];
        }
    }
    memcpy(o, "\n\n", 2);
    q->hold = out;
    q->hold_len = (apr_size_t)(o + 2 - out);
}

/* Decides whether the held bytes may go, renaming the model first where
 * needed: a stream after its first event, a JSON answer after its end (so
 * its usage is read before the client can leave). Returns 1 to release. */
static int release_held(request_rec *r, s2a_req *q)
{
    char *out = NULL;
    apr_size_t out_len = 0;
    int final = q->eos || q->hold_len > (q->stream ? S2A_MAX_HOLD : S2A_MAX_JSON_HOLD);
    if (q->stream) {
        apr_size_t ev = first_event_len(q->hold, q->hold_len);
        if (!ev && !final) {
            return 0;
        }
        if (ev && q->rewrite_model) {
            out = s2a_sse_rewrite_message_model(r->pool, q->hold, ev, q->model, &out_len);
        }
        if (out) {
            char *joined = apr_palloc(r->pool, out_len + q->hold_len - ev);
            memcpy(joined, out, out_len);
            memcpy(joined + out_len, q->hold + ev, q->hold_len - ev);
            q->hold = joined;
            q->hold_len = out_len + q->hold_len - ev;
        }
        return 1;
    } else {
        apr_size_t off, vlen;
        if (!final) {
            return 0;
        }
        if (q->as_event) {
            as_error_event(r, q);
            return 1;
        }
        if (q->rewrite_model &&
            s2a_json_prefix_find_model(q->hold, q->hold_len, &off, &vlen) == 1) {
            s2a_json_edit e;
            e.off = off;
            e.len = vlen;
            e.text = s2a_json_quote(r->pool, q->model);
            e.text_len = strlen(e.text);
            q->hold = s2a_json_splice(r->pool, q->hold, q->hold_len, &e, 1, &q->hold_len);
        }
        return 1;
    }
}

static void hold_append(request_rec *r, s2a_req *q, const char *data, apr_size_t n)
{
    if (q->hold_len + n > q->hold_cap) {
        apr_size_t cap = q->hold_cap ? q->hold_cap : 16384;
        char *nb;
        while (cap < q->hold_len + n) {
            cap *= 2;
        }
        nb = apr_palloc(r->pool, cap);
        if (q->hold_len) {
            memcpy(nb, q->hold, q->hold_len);
        }
        q->hold = nb;
        q->hold_cap = cap;
    }
    memcpy(q->hold + q->hold_len, data, n);
    q->hold_len += n;
}

/* A long answer (a stream of many minutes) keeps its places past their
 * lease. */
static void renew_places(request_rec *r, s2a_req *q)
{
    s2a_place *const places[] = {&q->account_place, &q->key_place, &q->user_place};
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

/* Sub2apiServerTiming: the gateway's time before the upstream, and the
 * upstream's until its headers, in the header browsers and tools read. */
static void server_timing(request_rec *r, s2a_req *q)
{
    s2a_dir_conf *dc = ap_get_module_config(r->per_dir_config, &sub2api_module);
    if (dc->server_timing == 1 && q->sent_at) {
        apr_table_setn(r->headers_out, "Server-Timing",
                       apr_psprintf(r->pool, "sub2api;dur=%.3f, upstream;dur=%.3f",
                                    (double)q->own_time / 1000.0,
                                    (double)(q->headers_at - q->sent_at) / 1000.0));
    }
}

static apr_status_t answer_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    s2a_req *q = s2a_req_get(r);
    apr_bucket *b, *next;
    apr_time_t t0 = apr_time_now();
    int holding;

    if (!q) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    if (!q->answered) {
        q->headers_at = t0;
        start_answer(r, q);
        server_timing(r, q);
    }
    renew_places(r, q);
    if (q->swallow) {
        apr_brigade_cleanup(bb);
        return APR_SUCCESS;
    }
    holding = q->holding && !q->replaced;
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = next) {
        const char *data;
        apr_size_t n;
        next = APR_BUCKET_NEXT(b);
        if (APR_BUCKET_IS_EOS(b)) {
            q->eos = 1;
            continue;
        }
        if (AP_BUCKET_IS_ERROR(b)) {
            q->upstream_broken = 1;
            if (q->sse && !q->replaced) {
                /* tell a streaming client why its stream ends, as the API does */
                const char *ev = apr_pstrcat(
                    r->pool, "event: error\ndata: ",
                    s2a_error_body(r->pool, 502, "The upstream connection broke mid-stream"),
                    "\n\n", NULL);
                APR_BUCKET_INSERT_BEFORE(
                    b, apr_bucket_pool_create(ev, strlen(ev), r->pool, bb->bucket_alloc));
            }
            continue;
        }
        if (APR_BUCKET_IS_METADATA(b)) {
            continue;
        }
        if (apr_bucket_read(b, &data, &n, APR_BLOCK_READ) != APR_SUCCESS) {
            continue;
        }
        if (n && !q->first_byte) {
            q->first_byte = apr_time_now();
        }
        if (q->sse) {
            s2a_sse_feed(q->sse, data, n);
        } else if (q->usage_json) {
            s2a_usage_json_feed(q->usage_json, data, n);
        }
        if (q->replaced || holding) {
            if (holding) {
                hold_append(r, q, data, n);
            }
            apr_bucket_delete(b);
        }
    }
    if (holding && release_held(r, q)) {
        q->holding = 0;
        APR_BRIGADE_INSERT_HEAD(
            bb, apr_bucket_pool_create(q->hold, q->hold_len, r->pool, bb->bucket_alloc));
    }
    if (q->replaced && q->hold) {
        APR_BRIGADE_INSERT_HEAD(
            bb, apr_bucket_pool_create(q->hold, q->hold_len, r->pool, bb->bucket_alloc));
        q->hold = NULL;
    }
    q->filter_time += apr_time_now() - t0;
    return ap_pass_brigade(f->next, bb);
}

/* Error pages of our requests are JSON, not httpd's HTML. */
static apr_status_t error_type_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    ap_set_content_type(f->r, "application/json");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

/* Runs just before httpd looks up the error page it is about to send. */
static void insert_error_filter(request_rec *r)
{
    const char *msg = apr_table_get(r->notes, S2A_ERROR_NOTE);
    if (!msg) {
        return;
    }
    ap_custom_response(r, r->status,
                       s2a_error_body(r->pool, r->status, *msg ? msg : default_message(r->status)));
    ap_add_output_filter(S2A_ERROR_FILTER, NULL, r, r->connection);
}

static const char *outcome(request_rec *r, s2a_req *q)
{
    if (r->connection->aborted) {
        return "client_aborted";
    }
    if (q->upstream_broken || !q->eos || (q->stream && !q->usage.seen_delta)) {
        return "upstream_cut";
    }
    return "ok";
}

/* One usage row per answered attempt, handed to the writer thread. */
static void bill(request_rec *r, s2a_req *q)
{
    s2a_usage_row row;
    s2a_cost cost;
    int have;

    if (q->count_only || !q->answered || q->replaced || q->upstream_status < 200 ||
        q->upstream_status >= 300) {
        return;
    }
    have = q->stream ? q->usage.seen_start : s2a_usage_json_finish(q->usage_json, &q->usage, NULL);
    if (!have) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      S2ALOGNO(0206) "answer without usage from account %" APR_INT64_T_FMT
                                     "; nothing billed",
                      q->account.id);
        return;
    }
    if (q->stream && !q->usage.seen_delta) {
        /* cut short: the final count never came; bill the text that went out */
        q->usage.output = s2a_usage_output_estimate(&q->usage);
    }
    s2a_cost_compute(q->price, &q->usage, q->key.multiplier_ppm, &cost);
    q->charged = cost.actual;
    memset(&row, 0, sizeof(row));
    apr_cpystrn(row.request_id, q->request_id, sizeof(row.request_id));
    row.attempt = q->attempt;
    row.user_id = q->key.user_id;
    row.api_key_id = q->key.id;
    row.account_id = q->account.id;
    row.group_id = q->key.group_id;
    apr_cpystrn(row.model, q->model, sizeof(row.model));
    apr_cpystrn(row.upstream_model, q->upstream_model, sizeof(row.upstream_model));
    row.input_tokens = q->usage.input;
    row.output_tokens = q->usage.output;
    row.cache_creation_tokens = q->usage.cache_creation;
    row.cache_creation_1h_tokens = q->usage.cache_1h;
    row.cache_read_tokens = q->usage.cache_read;
    row.input_cost = cost.input;
    row.output_cost = cost.output;
    row.cache_creation_cost = cost.cache_write;
    row.cache_read_cost = cost.cache_read;
    row.total_cost = cost.total;
    row.actual_cost = cost.actual;
    row.multiplier_ppm = q->key.multiplier_ppm;
    row.subscription = q->key.subscription;
    row.stream = q->stream;
    row.status = r->status;
    apr_cpystrn(row.outcome, outcome(r, q), sizeof(row.outcome));
    row.duration_ms = apr_time_as_msec(apr_time_now() - q->start);
    row.first_token_ms = q->first_byte ? apr_time_as_msec(q->first_byte - q->start) : 0;
    row.created_at = apr_time_sec(apr_time_now());
    s2a_writer_enqueue(r, &row);
    q->billed = 1;
}

/* The notes are new: added, not set (which would look for them first). */
static void note(request_rec *r, const char *name, const char *value)
{
    apr_table_addn(r->notes, name, value);
}

static void note_int(request_rec *r, const char *name, apr_int64_t value)
{
    note(r, name, apr_off_t_toa(r->pool, (apr_off_t)value));
}

/* What LogFormat's %{sub2api-...}n fields show; unset ones log as "-". */
static void set_notes(request_rec *r, s2a_req *q)
{
    if (q->key.id) {
        note_int(r, "sub2api-user", q->key.user_id);
        note_int(r, "sub2api-key", q->key.id);
    }
    if (q->model) {
        note(r, "sub2api-model", q->model);
    }
    if (q->request_id) {
        note(r, "sub2api-request-id", q->request_id);
    }
    if (q->attempt) {
        note_int(r, "sub2api-attempts", q->attempt);
    }
    if (q->sent_at) {
        note_int(r, "sub2api-account", q->account.id);
        note(r, "sub2api-upstream-model", q->upstream_model);
        note_int(r, "sub2api-added-us", q->own_time + q->filter_time);
    }
    if (q->billed) {
        note_int(r, "sub2api-input-tokens", q->usage.input);
        note_int(r, "sub2api-output-tokens", q->usage.output);
        note_int(r, "sub2api-cache-write-tokens", q->usage.cache_creation);
        note_int(r, "sub2api-cache-read-tokens", q->usage.cache_read);
        note(r, "sub2api-cost", s2a_usd_format(r->pool, q->charged));
        note(r, "sub2api-outcome", outcome(r, q));
    }
}

/* Runs before mod_log_config, so that the notes are there for LogFormat. */
static int log_request(request_rec *r)
{
    s2a_req *q = s2a_req_get(r);
    if (!q && !apr_table_get(r->notes, S2A_ERROR_NOTE)) {
        return DECLINED; /* not a request of a gateway location */
    }
    if (q) {
        bill(r, q);
        set_notes(r, q);
    }
    s2a_metrics_request_done(r, q);
    return OK;
}

static void retrieve_optional_fns(void)
{
    retry_worker = APR_RETRIEVE_OPTIONAL_FN(ap_proxy_retry_worker);
}

void s2a_gateway_register_hooks(apr_pool_t *p)
{
    static const char *const before_proxy[] = {"mod_proxy.c", NULL};
    static const char *const before_log[] = {"mod_log_config.c", NULL};
    ap_hook_optional_fn_retrieve(retrieve_optional_fns, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(gateway_translate, NULL, before_proxy, APR_HOOK_FIRST);
    ap_hook_fixups(gateway_fixups, NULL, before_proxy, APR_HOOK_REALLY_FIRST);
    ap_hook_insert_error_filter(insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(log_request, NULL, before_log, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(proxy, fixups, proxy_fixups, NULL, NULL, APR_HOOK_LAST);
    APR_OPTIONAL_HOOK(proxy, request_status, request_status, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_provider(p, PROXY_LBMETHOD, "sub2api", "0", &lbmethod);
    replay_filter_handle =
        ap_register_input_filter(S2A_REPLAY_FILTER, replay_filter, NULL, AP_FTYPE_CONTENT_SET);
    answer_filter_handle =
        ap_register_output_filter(S2A_ANSWER_FILTER, answer_filter, NULL, AP_FTYPE_CONTENT_SET - 1);
    ap_register_output_filter(S2A_ERROR_FILTER, error_type_filter, NULL, AP_FTYPE_PROTOCOL - 1);
}
