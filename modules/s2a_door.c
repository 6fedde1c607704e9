/* The door a request came in by: see s2a_door.h. */
#include <string.h>

#include <apr_strings.h>

#include "s2a_door.h"
#include "s2a_errors.h"

s2a_door_kind s2a_door_of(s2a_endpoint endpoint)
{
    return endpoint == S2A_ENDPOINT_CHAT        ? S2A_DOOR_CHAT
           : endpoint == S2A_ENDPOINT_RESPONSES ? S2A_DOOR_RESPONSES
                                                : S2A_DOOR_MESSAGES;
}

const char *s2a_door_name(s2a_door_kind kind)
{
    return kind == S2A_DOOR_CHAT ? "chat" : kind == S2A_DOOR_RESPONSES ? "responses" : "messages";
}

int s2a_door_read(apr_pool_t *p, s2a_door *d, const char *raw, apr_size_t len, apr_int64_t created,
                  s2a_body *body, s2a_openai_error *err)
{
    const char *why;
    d->created = created;
    if (d->kind == S2A_DOOR_CHAT) {
        if (s2a_chat_request_read(p, raw, len, d->memo, &d->chat, err) != 0) {
            return -1;
        }
        if (s2a_body_read_built(p, d->chat.body, d->chat.len, &d->chat.marks, body, &why) != 0) {
            return s2a_openai_refuse(err, NULL, why);
        }
        return 0;
    }
    if (d->kind == S2A_DOOR_RESPONSES) {
        if (s2a_responses_request_read(p, raw, len, d->memo, &d->responses, err) != 0) {
            return -1;
        }
        if (s2a_body_read_built(p, d->responses.body, d->responses.len, &d->responses.marks, body,
                                &why) != 0) {
            return s2a_openai_refuse(err, NULL, why);
        }
        return 0;
    }
    s2a_openai_refuse(err, NULL, "This request has no door to be read by");
    return -1;
}

char *s2a_door_error_body(apr_pool_t *p, s2a_door_kind kind, int status, const char *message,
                          const char *param, apr_size_t *len)
{
    s2a_openai_error e;
    char *body;
    if (kind == S2A_DOOR_MESSAGES) {
        body = s2a_error_body(p, status, message);
        if (len) {
            *len = strlen(body);
        }
        return body;
    }
    s2a_openai_error_of_status(&e, status, message);
    e.param = param;
    return s2a_openai_error_body(p, &e, len);
}

/* The records that end a stream with error e. */
static char *error_records(apr_pool_t *p, s2a_door_kind kind, const s2a_openai_error *e,
                           apr_size_t *len)
{
    s2a_buf b;
    apr_size_t n;
    const char *body;
    s2a_buf_init(&b, p, 256);
    if (kind == S2A_DOOR_RESPONSES) {
        /* the SDKs raise an `error` event's message */
        S2A_PUT(&b, "event: error\ndata: {\"type\":\"error\",\"code\":");
        s2a_openai_put_string(&b, e->code ? e->code : e->type);
        S2A_PUT(&b, ",\"message\":");
        s2a_openai_put_string(&b, e->message ? e->message : "");
        S2A_PUT(&b, ",\"param\":null,\"sequence_number\":0}\n\n");
    } else {
        /* a chunk that holds "error" is raised by the SDKs */
        body = s2a_openai_error_body(p, e, &n);
        S2A_PUT(&b, "data: ");
        s2a_buf_append(&b, body, n);
        S2A_PUT(&b, "\n\ndata: [DONE]\n\n");
    }
    *len = b.len;
    return b.data;
}

char *s2a_door_error_event(apr_pool_t *p, s2a_door_kind kind, int status, const char *message,
                           apr_size_t *len)
{
    s2a_openai_error e;
    char *ev;
    if (kind == S2A_DOOR_MESSAGES) {
        ev = apr_pstrcat(p, "event: error\ndata: ", s2a_error_body(p, status, message), "\n\n",
                         NULL);
        *len = strlen(ev);
        return ev;
    }
    s2a_openai_error_of_status(&e, status, message);
    return error_records(p, kind, &e, len);
}

const char *s2a_door_ping(s2a_door_kind kind, apr_size_t *len)
{
    static const char event[] = "event: ping\ndata: {\"type\": \"ping\"}\n\n";
    static const char comment[] = ": ping\n\n";
    if (kind == S2A_DOOR_MESSAGES) {
        *len = sizeof(event) - 1;
        return event;
    }
    *len = sizeof(comment) - 1;
    return comment;
}

const char *s2a_door_upstream_error(apr_pool_t *p, const s2a_door *d, int status, const char *body,
                                    apr_size_t len, apr_size_t *out_len)
{
    s2a_openai_error e;
    if (d->kind == S2A_DOOR_MESSAGES) {
        *out_len = len;
        return body;
    }
    s2a_openai_error_of_anthropic(p, status, body, len, &e);
    return s2a_openai_error_body(p, &e, out_len);
}

const char *s2a_door_upstream_error_event(apr_pool_t *p, const s2a_door *d, int status,
                                          const char *body, apr_size_t len, apr_size_t *out_len)
{
    s2a_openai_error e;
    s2a_openai_error_of_anthropic(p, status, body, len, &e);
    if (d->kind == S2A_DOOR_MESSAGES) {
        return s2a_door_error_event(p, d->kind, status, e.message, out_len);
    }
    return error_records(p, d->kind, &e, out_len);
}

const char *s2a_door_answer(apr_pool_t *p, const s2a_door *d, const char *json, apr_size_t len,
                            apr_size_t *out_len)
{
    if (d->kind == S2A_DOOR_CHAT) {
        return s2a_chat_answer(p, &d->chat, d->created, json, len, out_len);
    }
    if (d->kind == S2A_DOOR_RESPONSES) {
        return s2a_responses_answer(p, &d->responses, d->created, json, len, out_len);
    }
    return NULL;
}

struct s2a_door_stream {
    s2a_chat_stream *chat;
    s2a_responses_stream *responses;
};

s2a_door_stream *s2a_door_stream_create(apr_pool_t *p, const s2a_door *d)
{
    s2a_door_stream *s = apr_pcalloc(p, sizeof(*s));
    if (d->kind == S2A_DOOR_RESPONSES) {
        s->responses = s2a_responses_stream_create(p, &d->responses, d->created);
    } else {
        s->chat = s2a_chat_stream_create(p, &d->chat, d->created);
    }
    return s;
}

void s2a_door_stream_feed(s2a_door_stream *s, const char *data, apr_size_t n, s2a_buf *out)
{
    if (s->responses) {
        s2a_responses_stream_feed(s->responses, data, n, out);
    } else {
        s2a_chat_stream_feed(s->chat, data, n, out);
    }
}

void s2a_door_stream_end(s2a_door_stream *s, s2a_buf *out)
{
    if (s->responses) {
        s2a_responses_stream_end(s->responses, out);
    } else {
        s2a_chat_stream_end(s->chat, out);
    }
}

const s2a_usage *s2a_door_stream_usage(const s2a_door_stream *s)
{
    return s->responses ? s2a_responses_stream_usage(s->responses) : s2a_chat_stream_usage(s->chat);
}
