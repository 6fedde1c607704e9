/* One attempt's answer on its way to the client: see s2a_answer.h. */
#include <string.h>

#include <apr_strings.h>

#include "s2a_answer.h"
#include "s2a_errors.h"
#include "s2a_json.h"

static void on_event(void *baton, const char *event, apr_size_t elen, const char *data,
                     apr_size_t dlen)
{
    s2a_usage_apply_sse(baton, event, elen, data, dlen);
}

void s2a_answer_start(s2a_answer *a, apr_pool_t *p, int status, const char *content_type,
                      int dropped, int count_only, int committed, const char *rename,
                      const s2a_door *door)
{
    /* Bedrock's frames become SSE, then go on as an SSE stream does */
    int framed = content_type && strncasecmp(content_type, S2A_ANSWER_EVENTSTREAM_TYPE,
                                             sizeof(S2A_ANSWER_EVENTSTREAM_TYPE) - 1) == 0;
    int sse = framed || (content_type && strncasecmp(content_type, "text/event-stream", 17) == 0);
    memset(a, 0, sizeof(*a));
    a->pool = p;
    a->status = status;
    a->door = door && door->kind != S2A_DOOR_MESSAGES ? door : NULL;
    s2a_buf_init(&a->held, p, 0);
    if (dropped) {
        a->mode = S2A_ANSWER_DROP;
    } else if (status >= 300) {
        /* an error body names no model */
        a->mode = committed ? S2A_ANSWER_EVENT : S2A_ANSWER_ERROR;
        a->holding = 1;
    } else if (count_only) {
        a->mode = S2A_ANSWER_PASS; /* {"input_tokens": n}: nothing to read or rename */
    } else if (sse && a->door) {
        /* the translation reads the usage on the way */
        a->mode = S2A_ANSWER_STREAM;
        a->translation = s2a_door_stream_create(p, a->door);
        s2a_buf_init(&a->translated, p, 4096);
    } else if (sse) {
        a->mode = S2A_ANSWER_STREAM;
        a->rename = rename;
        a->holding = rename != NULL;
        a->sse = s2a_sse_create(p, S2A_ANSWER_MAX_EVENT, on_event, &a->usage);
        /* usage rides on the message events; the text deltas are measured for
         * the estimate a stream cut short is billed by */
        s2a_sse_only(a->sse, (const char *const[]){"message_start", "message_delta",
                                                   "content_block_delta", NULL});
    } else {
        a->mode = S2A_ANSWER_JSON;
        a->rename = rename;
        a->holding = 1;
        a->json = s2a_usage_json_create(p);
    }
    if (framed && a->mode == S2A_ANSWER_STREAM) {
        a->eventstream = s2a_eventstream_create(p, 0);
        s2a_buf_init(&a->decoded, p, 4096);
        if (!a->translation) {
            s2a_buf_init(&a->translated, p, 4096);
        }
    }
}

void s2a_answer_from_cloud(s2a_answer *a, s2a_cloud cloud, const char *error_type)
{
    a->cloud = cloud;
    a->error_type = error_type ? apr_pstrdup(a->pool, error_type) : NULL;
    if (cloud == S2A_CLOUD_BEDROCK && a->mode == S2A_ANSWER_PASS) {
        a->mode = S2A_ANSWER_COUNT;
        a->holding = 1;
    }
}

/* SSE decoded from Bedrock's frames, on its way as the upstream's own SSE
 * would go: translated for a door, else read for usage and held or let go
 * (into `translated`). */
static void feed_decoded(s2a_answer *a, const char *data, apr_size_t n)
{
    if (!n) {
        return;
    }
    if (a->translation) {
        s2a_door_stream_feed(a->translation, data, n, &a->translated);
        a->usage = *s2a_door_stream_usage(a->translation);
    } else {
        s2a_sse_feed(a->sse, data, n);
        s2a_buf_append(a->holding ? &a->held : &a->translated, data, n);
    }
    if (a->client_left) {
        a->translated.len = 0; /* read on for the usage, sent nowhere */
    }
}

int s2a_answer_feed(s2a_answer *a, const char *data, apr_size_t n)
{
    if (a->eventstream && a->mode == S2A_ANSWER_STREAM) {
        a->decoded.len = 0;
        s2a_eventstream_feed(a->eventstream, data, n, &a->decoded);
        feed_decoded(a, a->decoded.data, a->decoded.len);
        return 0;
    }
    switch (a->mode) {
    case S2A_ANSWER_DROP:
        if (!a->too_long && a->held.len + n <= S2A_POLICY_BODY_MAX) {
            s2a_buf_append(&a->held, data, n);
        } else {
            a->too_long = 1;
        }
        return 0;
    case S2A_ANSWER_STREAM:
        if (a->translation) {
            s2a_door_stream_feed(a->translation, data, n, &a->translated);
            a->usage = *s2a_door_stream_usage(a->translation);
            if (a->client_left) {
                a->translated.len = 0; /* read on for the usage, sent nowhere */
            }
            return 0;
        }
        s2a_sse_feed(a->sse, data, n);
        break;
    case S2A_ANSWER_JSON:
        /* the JSON reader keeps the bytes: they are the hold too */
        s2a_usage_json_feed(a->json, data, n);
        return !a->holding;
    default:
        break;
    }
    if (a->holding) {
        s2a_buf_append(&a->held, data, n);
        return 0;
    }
    return 1;
}

void s2a_answer_end(s2a_answer *a, int broken)
{
    if (a->eventstream && a->mode == S2A_ANSWER_STREAM && !a->ended && !broken) {
        /* a message left cut short is an error event */
        a->decoded.len = 0;
        s2a_eventstream_end(a->eventstream, &a->decoded);
        feed_decoded(a, a->decoded.data, a->decoded.len);
    }
    if (a->translation && !a->ended && !a->client_left) {
        s2a_door_stream_end(a->translation, &a->translated);
    }
    a->ended = 1;
    a->broken = a->broken || broken;
}

int s2a_answer_client_left(s2a_answer *a, apr_time_t now, apr_interval_time_t drain)
{
    a->client_left = 1;
    a->holding = 0; /* nothing is sent any more, so nothing waits */
    if (a->mode != S2A_ANSWER_STREAM || a->usage.seen_delta || a->ended || drain <= 0) {
        return 0;
    }
    a->draining = 1;
    a->drain_until = now + drain;
    return 1;
}

int s2a_answer_drained(s2a_answer *a, apr_time_t now)
{
    if (a->draining && (a->usage.seen_delta || a->ended || now >= a->drain_until)) {
        a->draining = 0;
        return 1;
    }
    return !a->draining;
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

/* The held stream with its first event's model renamed. */
static const char *stream_release(s2a_answer *a, apr_size_t *len)
{
    apr_size_t ev = first_event_len(a->held.data, a->held.len), out_len = 0;
    char *out, *joined;
    if (!ev && !a->ended && a->held.len <= S2A_ANSWER_MAX_STREAM_HOLD) {
        return NULL;
    }
    out = ev ? s2a_sse_rewrite_message_model(a->pool, a->held.data, ev, a->rename, &out_len) : NULL;
    if (!out) {
        *len = a->held.len;
        return a->held.data;
    }
    joined = apr_palloc(a->pool, out_len + a->held.len - ev);
    memcpy(joined, out, out_len);
    memcpy(joined + out_len, a->held.data + ev, a->held.len - ev);
    *len = out_len + a->held.len - ev;
    return joined;
}

/* The held JSON answer with its model renamed. */
static const char *json_release(s2a_answer *a, apr_size_t *len)
{
    const char *text = s2a_usage_json_text(a->json, len);
    apr_size_t off, vlen;
    s2a_json_edit e;
    const char *translated;
    apr_size_t translated_len;
    if (!a->ended && *len <= S2A_ANSWER_MAX_JSON_HOLD) {
        return NULL;
    }
    if (a->door &&
        (translated = s2a_door_answer(a->pool, a->door, text, *len, &translated_len)) != NULL) {
        *len = translated_len;
        return translated;
    }
    if (!a->rename || s2a_json_prefix_find_model(text, *len, &off, &vlen) != 1) {
        return text;
    }
    e.off = off;
    e.len = vlen;
    e.text = s2a_json_quote(a->pool, a->rename);
    e.text_len = strlen(e.text);
    return s2a_json_splice(a->pool, text, *len, &e, 1, len);
}

/* A cloud's error body in the Anthropic API's shape, in place of the held
 * one (Vertex passes the model's own errors in that shape already). */
static void cloud_error(s2a_answer *a)
{
    s2a_cloud_error e;
    const char *body;
    if (a->cloud == S2A_CLOUD_NONE || a->cloud_error_done) {
        return;
    }
    a->cloud_error_done = 1;
    s2a_cloud_error_read(a->pool, a->cloud, a->status, a->error_type, a->held.data, a->held.len,
                         &e);
    if (e.anthropic) {
        return;
    }
    body = s2a_error_body(a->pool, a->status, e.message ? e.message : s2a_error_message(a->status));
    a->held.len = 0;
    s2a_buf_append(&a->held, body, strlen(body));
}

/* The held error body, as it came. */
static const char *error_release(s2a_answer *a, apr_size_t *len)
{
    if (!a->ended && a->held.len <= S2A_ANSWER_MAX_JSON_HOLD) {
        return NULL;
    }
    cloud_error(a);
    if (a->door) {
        return s2a_door_upstream_error(a->pool, a->door, a->status,
                                       a->held.data ? a->held.data : "", a->held.len, len);
    }
    *len = a->held.len;
    return a->held.data ? a->held.data : "";
}

/* The held error body as one SSE error event; a line break in it starts
 * another data line, as SSE joins them. */
static const char *event_release(s2a_answer *a, apr_size_t *len)
{
    const char *in = a->held.data ? a->held.data : "";
    apr_size_t i, n = a->held.len;
    char *out, *o;
    if (!a->ended && a->held.len <= S2A_ANSWER_MAX_JSON_HOLD) {
        return NULL;
    }
    cloud_error(a);
    in = a->held.data ? a->held.data : "";
    n = a->held.len;
    if (a->door) {
        return s2a_door_upstream_error_event(a->pool, a->door, a->status, in, n, len);
    }
    while (n && (in[n - 1] == '\n' || in[n - 1] == '\r')) {
        n--;
    }
    out = apr_palloc(a->pool, n * 7 + 32); /* every byte a line break at worst */
    o = apr_cpystrn(out, "event: error\ndata: ", 32);
    for (i = 0; i < n; i++) {
        if (in[i] == '\r') {
            continue;
        }
        if (in[i] == '\n') {
            memcpy(o, "\ndata: ", 7);
            o += 7;
        } else {
            *o++ = in[i];
        }
    }
    memcpy(o, "\n\n", 2);
    *len = (apr_size_t)(o + 2 - out);
    return out;
}

/* The held CountTokens answer as count_tokens answers; as it came when it
 * is not one. */
static const char *count_release(s2a_answer *a, apr_size_t *len)
{
    const char *out;
    if (!a->ended && a->held.len <= S2A_ANSWER_MAX_JSON_HOLD) {
        return NULL;
    }
    if (a->ended && (out = s2a_bedrock_count_answer(a->pool, a->held.data ? a->held.data : "",
                                                    a->held.len)) != NULL) {
        *len = strlen(out);
        return out;
    }
    *len = a->held.len;
    return a->held.data ? a->held.data : "";
}

const char *s2a_answer_release(s2a_answer *a, apr_size_t *len)
{
    const char *out;
    if (a->translation || (a->eventstream && a->mode == S2A_ANSWER_STREAM && !a->holding)) {
        if (!a->translated.len) {
            return NULL;
        }
        *len = a->translated.len;
        a->translated.len = 0;
        return a->translated.data;
    }
    if (!a->holding || a->mode == S2A_ANSWER_DROP) {
        return NULL;
    }
    out = a->mode == S2A_ANSWER_STREAM  ? stream_release(a, len)
          : a->mode == S2A_ANSWER_JSON  ? json_release(a, len)
          : a->mode == S2A_ANSWER_ERROR ? error_release(a, len)
          : a->mode == S2A_ANSWER_COUNT ? count_release(a, len)
                                        : event_release(a, len);
    if (out) {
        a->holding = 0;
        a->released = 1;
    }
    return out;
}

int s2a_answer_usage(s2a_answer *a, s2a_usage *u)
{
    if (a->mode == S2A_ANSWER_STREAM) {
        *u = a->usage;
        return a->usage.seen_start;
    }
    if (a->mode == S2A_ANSWER_JSON) {
        return s2a_usage_json_finish(a->json, u, NULL);
    }
    memset(u, 0, sizeof(*u));
    return 0;
}

const char *s2a_answer_error_body(const s2a_answer *a, apr_size_t *len)
{
    if ((a->mode != S2A_ANSWER_ERROR && a->mode != S2A_ANSWER_EVENT &&
         a->mode != S2A_ANSWER_DROP) ||
        a->too_long || a->held.len > S2A_POLICY_BODY_MAX) {
        return NULL;
    }
    *len = a->held.len;
    return a->held.data ? a->held.data : "";
}

const char *s2a_answer_broken_event(const s2a_answer *a, apr_size_t *len)
{
    if (a->translation) {
        return NULL;
    }
    return s2a_door_error_event(a->pool, S2A_DOOR_MESSAGES, 502,
                                "The upstream connection broke mid-stream", len);
}
