/* The door a request came in by: what its clients get back. An OpenAI
 * door's answer goes through s2a_answer translated, the same bytes however
 * the upstream's are split, with the usage read on the way; errors and
 * pings in the door's shape. */
#include <stdlib.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_answer.h"
#include "s2a_door.h"
#include "s2a_test.h"

static apr_pool_t *pool;

#include "s2a_test_json.h"
#include "s2a_test_body.h"

static const char stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-up\",\"content\":[],\"stop_reason\":null,"
    "\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
    "\"usage\":{\"output_tokens\":42}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char json[] =
    "{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-up\","
    "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"stop_reason\":\"end_turn\","
    "\"usage\":{\"input_tokens\":7,\"output_tokens\":3}}";

static const char upstream_error[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
    "\"message\":\"prompt is too long: 210000 tokens > 200000 maximum\"}}";

/* A door read from a small request of its kind. */
static s2a_door door_of(s2a_door_kind kind, int streamed)
{
    s2a_door d;
    s2a_openai_error err;
    s2a_body built;
    const char *raw;
    memset(&d, 0, sizeof(d));
    d.kind = kind;
    raw = kind == S2A_DOOR_CHAT
              ? apr_psprintf(pool,
                             "{\"model\":\"claude-sonnet-4-5\",\"stream\":%s,\"stream_options\":"
                             "{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
                             "\"content\":\"hi\"}]}",
                             streamed ? "true" : "false")
              : apr_psprintf(pool,
                             "{\"model\":\"claude-sonnet-4-5\",\"stream\":%s,\"store\":false,"
                             "\"input\":\"hi\"}",
                             streamed ? "true" : "false");
    S2A_CHECK_INT(s2a_door_read(pool, &d, raw, strlen(raw), 1790000000, &built, &err), 0);
    S2A_CHECK(built.raw && built.len == strlen(built.raw) &&
              strstr(built.raw, "\"messages\":[") != NULL);
    S2A_CHECK_STR(built.model, "claude-sonnet-4-5");
    S2A_CHECK_INT(built.stream, streamed);
    /* what the door wrote is a Messages body, its fields where the door says */
    {
        s2a_body messages;
        const char *why;
        S2A_CHECK_INT(s2a_body_read(pool, built.raw, built.len, &messages, &why), 0);
        S2A_CHECK(same_fields(&messages.f, &built.f));
        S2A_CHECK_STR(messages.model, built.model);
    }
    return d;
}

/* What the client gets when the answer comes in cuts of `step` bytes (0:
 * whole), each release copied at once (its buffer is written again). */
static char *deliver(const s2a_door *d, int status, const char *type, const char *in, apr_size_t n,
                     apr_size_t step, apr_size_t *out_len, s2a_usage *u)
{
    s2a_answer a;
    s2a_buf out;
    const char *released;
    apr_size_t at, rlen;
    s2a_buf_init(&out, pool, 1024);
    s2a_answer_start(&a, pool, status, type, 0, 0, 0, NULL, d);
    for (at = 0; at < n; at += step ? step : n) {
        apr_size_t k = step && n - at > step ? step : n - at;
        if (s2a_answer_feed(&a, in + at, k)) {
            s2a_buf_append(&out, in + at, k);
        }
        if ((released = s2a_answer_release(&a, &rlen))) {
            s2a_buf_append(&out, released, rlen);
        }
    }
    s2a_answer_end(&a, 0);
    if ((released = s2a_answer_release(&a, &rlen))) {
        s2a_buf_append(&out, released, rlen);
    }
    s2a_buf_append(&out, "", 0);
    if (u) {
        S2A_CHECK_INT(s2a_answer_usage(&a, u), 1);
    }
    *out_len = out.len;
    return out.data;
}

static void test_kinds(void)
{
    apr_size_t n;
    S2A_CHECK_INT(s2a_door_of(S2A_ENDPOINT_CHAT), S2A_DOOR_CHAT);
    S2A_CHECK_INT(s2a_door_of(S2A_ENDPOINT_RESPONSES), S2A_DOOR_RESPONSES);
    S2A_CHECK_INT(s2a_door_of(S2A_ENDPOINT_MESSAGES), S2A_DOOR_MESSAGES);
    S2A_CHECK_INT(s2a_door_of(S2A_ENDPOINT_MODELS), S2A_DOOR_MESSAGES);
    S2A_CHECK_STR(s2a_door_name(S2A_DOOR_MESSAGES), "messages");
    S2A_CHECK_STR(s2a_door_name(S2A_DOOR_CHAT), "chat");
    S2A_CHECK_STR(s2a_door_name(S2A_DOOR_RESPONSES), "responses");
    /* an OpenAI client's SSE reader takes any event for a chunk: a comment */
    S2A_CHECK_STR(s2a_door_ping(S2A_DOOR_CHAT, &n), ": ping\n\n");
    S2A_CHECK_INT(n, 8);
    S2A_CHECK_STR(s2a_door_ping(S2A_DOOR_RESPONSES, &n), ": ping\n\n");
    S2A_CHECK(strncmp(s2a_door_ping(S2A_DOOR_MESSAGES, &n), "event: ping\n", 12) == 0);
}

/* The gateway's own errors, in each door's shape. */
static void test_errors(void)
{
    apr_size_t n;
    char *body = s2a_door_error_body(pool, S2A_DOOR_CHAT, 401, "Invalid API key", NULL, &n);
    json_object *o = parse(body, n);
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(str_at(o, "error/type"), "authentication_error");
    S2A_CHECK_STR(str_at(o, "error/code"), "invalid_api_key");
    S2A_CHECK_STR(str_at(o, "error/message"), "Invalid API key");
    json_object_put(o);

    body = s2a_door_error_body(pool, S2A_DOOR_RESPONSES, 400, "n: only 1", "n", &n);
    o = parse(body, n);
    S2A_CHECK_STR(str_at(o, "error/type"), "invalid_request_error");
    S2A_CHECK_STR(str_at(o, "error/param"), "n");
    json_object_put(o);

    body = s2a_door_error_body(pool, S2A_DOOR_MESSAGES, 429, "slow down", "n", NULL);
    o = parse(body, strlen(body));
    S2A_CHECK_STR(str_at(o, "type"), "error");
    S2A_CHECK_STR(str_at(o, "error/type"), "rate_limit_error");
    json_object_put(o);

    /* on a stream whose 200 is out: a chat chunk with the error, then [DONE] */
    body = s2a_door_error_event(pool, S2A_DOOR_CHAT, 503, "No account", &n);
    S2A_CHECK(strncmp(body, "data: {\"error\":{", 16) == 0);
    S2A_CHECK(n > 16 && strcmp(body + n - 16, "\n\ndata: [DONE]\n\n") == 0);
    body = s2a_door_error_event(pool, S2A_DOOR_RESPONSES, 503, "No account", &n);
    S2A_CHECK(
        strncmp(body, "event: error\ndata: {\"type\":\"error\",\"code\":\"overloaded\"", 53) == 0);
    S2A_CHECK(strstr(body, "\"message\":\"No account\"") != NULL);
    body = s2a_door_error_event(pool, S2A_DOOR_MESSAGES, 503, "No account", &n);
    S2A_CHECK(strncmp(body, "event: error\ndata: {\"type\":\"error\"", 34) == 0);
    S2A_CHECK_INT(n, strlen(body));
}

/* A chat stream: the same chunks however the upstream's bytes are split;
 * usage read for the bill as from a Messages stream. */
static void test_chat_stream(void)
{
    s2a_door d = door_of(S2A_DOOR_CHAT, 1);
    apr_size_t whole_len, len, step;
    s2a_usage u;
    char *whole =
        deliver(&d, 200, "text/event-stream", stream, sizeof(stream) - 1, 0, &whole_len, &u);
    int wrong = 0;
    S2A_CHECK(strstr(whole, "\"object\":\"chat.completion.chunk\"") != NULL);
    S2A_CHECK(strstr(whole, "\"content\":\"Hello\"") != NULL);
    S2A_CHECK(strstr(whole, "\"finish_reason\":\"stop\"") != NULL);
    S2A_CHECK(strstr(whole, "\"model\":\"claude-sonnet-4-5\"") != NULL);
    S2A_CHECK(strstr(whole, "event:") == NULL);
    S2A_CHECK(strcmp(whole + whole_len - 14, "data: [DONE]\n\n") == 0);
    S2A_CHECK_INT(u.input, 10);
    S2A_CHECK_INT(u.cache_read, 5);
    S2A_CHECK_INT(u.output, 42);
    S2A_CHECK_INT(u.seen_delta, 1);
    for (step = 1; step < sizeof(stream); step++) {
        char *cut =
            deliver(&d, 200, "text/event-stream", stream, sizeof(stream) - 1, step, &len, NULL);
        wrong += len != whole_len || memcmp(cut, whole, len) != 0;
    }
    S2A_CHECK_INT(wrong, 0);
}

/* A Responses stream the same way; its last event completes the response. */
static void test_responses_stream(void)
{
    s2a_door d = door_of(S2A_DOOR_RESPONSES, 1);
    apr_size_t whole_len, len, step;
    s2a_usage u;
    char *whole =
        deliver(&d, 200, "text/event-stream", stream, sizeof(stream) - 1, 0, &whole_len, &u);
    int wrong = 0;
    S2A_CHECK(strncmp(whole, "event: response.created\n", 24) == 0);
    S2A_CHECK(strstr(whole, "event: response.output_text.delta\n") != NULL);
    S2A_CHECK(strstr(whole, "event: response.completed\n") != NULL);
    S2A_CHECK_INT(u.output, 42);
    for (step = 1; step < sizeof(stream); step += 7) {
        char *cut =
            deliver(&d, 200, "text/event-stream", stream, sizeof(stream) - 1, step, &len, NULL);
        wrong += len != whole_len || memcmp(cut, whole, len) != 0;
    }
    S2A_CHECK_INT(wrong, 0);
}

/* A stream cut before its end is ended in the door's shape; the usage that
 * came is still read (a stream cut short is billed by it). */
static void test_cut_stream(void)
{
    s2a_door d = door_of(S2A_DOOR_CHAT, 1);
    const char *cut_at = strstr(stream, "event: content_block_stop");
    apr_size_t len;
    s2a_usage u;
    char *out =
        deliver(&d, 200, "text/event-stream", stream, (apr_size_t)(cut_at - stream), 0, &len, &u);
    S2A_CHECK(strstr(out, "data: {\"error\":{") != NULL);
    S2A_CHECK(strcmp(out + len - 14, "data: [DONE]\n\n") == 0);
    S2A_CHECK_INT(u.seen_start, 1);
    S2A_CHECK_INT(u.seen_delta, 0);
    S2A_CHECK(u.delta_bytes > 0);
    /* counted as the Messages door counts the same stream */
    {
        s2a_door messages;
        s2a_usage m;
        memset(&messages, 0, sizeof(messages));
        messages.kind = S2A_DOOR_MESSAGES;
        deliver(&messages, 200, "text/event-stream", stream, (apr_size_t)(cut_at - stream), 0, &len,
                &m);
        S2A_CHECK_INT(u.delta_bytes, m.delta_bytes);
    }

    /* the upstream's connection broke: the end says so, no Messages event */
    {
        s2a_answer a;
        const char *released;
        apr_size_t n;
        s2a_answer_start(&a, pool, 200, "text/event-stream", 0, 0, 0, NULL, &d);
        S2A_CHECK_INT(s2a_answer_feed(&a, stream, 40), 0);
        s2a_answer_end(&a, 1);
        S2A_CHECK(s2a_answer_broken_event(&a, &n) == NULL);
        released = s2a_answer_release(&a, &n);
        S2A_CHECK(released && strstr(apr_pstrmemdup(pool, released, n), "data: [DONE]") != NULL);
    }

    /* the client left: read on for the usage, nothing kept for it */
    {
        s2a_answer a;
        apr_size_t n;
        s2a_answer_start(&a, pool, 200, "text/event-stream", 0, 0, 0, NULL, &d);
        S2A_CHECK_INT(s2a_answer_client_left(&a, 0, apr_time_from_sec(3)), 1);
        S2A_CHECK_INT(s2a_answer_feed(&a, stream, sizeof(stream) - 1), 0);
        S2A_CHECK(s2a_answer_release(&a, &n) == NULL);
        S2A_CHECK_INT(s2a_answer_drained(&a, 1), 1);
        s2a_answer_end(&a, 0);
        S2A_CHECK(s2a_answer_release(&a, &n) == NULL);
    }
}

/* Whole answers and the upstream's errors. */
static void test_whole(void)
{
    s2a_door chat = door_of(S2A_DOOR_CHAT, 0), responses = door_of(S2A_DOOR_RESPONSES, 0);
    s2a_door messages;
    apr_size_t len;
    s2a_usage u;
    json_object *o;
    char *out = deliver(&chat, 200, "application/json", json, sizeof(json) - 1, 5, &len, &u);
    o = parse(out, len);
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(str_at(o, "object"), "chat.completion");
    S2A_CHECK_STR(str_at(o, "model"), "claude-sonnet-4-5");
    S2A_CHECK_STR(str_at(o, "choices/0/message/content"), "hi");
    S2A_CHECK_INT(int_at(o, "usage/prompt_tokens"), 7);
    S2A_CHECK_INT(int_at(o, "created"), 1790000000);
    json_object_put(o);
    S2A_CHECK_INT(u.input, 7);
    S2A_CHECK_INT(u.output, 3);

    out = deliver(&responses, 200, "application/json", json, sizeof(json) - 1, 0, &len, NULL);
    o = parse(out, len);
    S2A_CHECK_STR(str_at(o, "object"), "response");
    S2A_CHECK_STR(str_at(o, "status"), "completed");
    json_object_put(o);

    /* not a Messages answer: as it came */
    out = deliver(&chat, 200, "application/json", "[1]", 3, 0, &len, NULL);
    S2A_CHECK_STR(out, "[1]");

    /* an upstream error keeps its message, in OpenAI's shape */
    out = deliver(&chat, 400, "application/json", upstream_error, sizeof(upstream_error) - 1, 3,
                  &len, NULL);
    o = parse(out, len);
    S2A_CHECK_STR(str_at(o, "error/type"), "invalid_request_error");
    S2A_CHECK_STR(str_at(o, "error/code"), "context_length_exceeded");
    S2A_CHECK(strstr(str_at(o, "error/message"), "prompt is too long") != NULL);
    json_object_put(o);

    /* the same error on a stream whose 200 went out with pings */
    {
        s2a_answer a;
        const char *released;
        apr_size_t n;
        s2a_answer_start(&a, pool, 400, "application/json", 0, 0, 1, NULL, &responses);
        S2A_CHECK_INT(s2a_answer_feed(&a, upstream_error, sizeof(upstream_error) - 1), 0);
        s2a_answer_end(&a, 0);
        released = s2a_answer_release(&a, &n);
        S2A_CHECK(released &&
                  strncmp(released, "event: error\ndata: {\"type\":\"error\"", 34) == 0);
        S2A_CHECK(strstr(apr_pstrmemdup(pool, released, n), "prompt is too long") != NULL);
    }

    /* Messages' door: nothing translated */
    memset(&messages, 0, sizeof(messages));
    out = deliver(&messages, 400, "application/json", upstream_error, sizeof(upstream_error) - 1, 0,
                  &len, NULL);
    S2A_CHECK_STR(out, upstream_error);
}

/* A body of a door that cannot be read is refused with the door's 400. */
static void test_refused(void)
{
    s2a_door d;
    s2a_openai_error err;
    s2a_body body;
    static const char raw[] = "{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\","
                              "\"content\":\"hi\"}]}";
    memset(&d, 0, sizeof(d));
    d.kind = S2A_DOOR_CHAT;
    S2A_CHECK_INT(s2a_door_read(pool, &d, raw, sizeof(raw) - 1, 1, &body, &err), -1);
    S2A_CHECK_INT(err.status, 400);
    S2A_CHECK_STR(err.param, "n");
    d.kind = S2A_DOOR_RESPONSES;
    S2A_CHECK_INT(s2a_door_read(pool, &d, "{\"model\":\"m\",\"input\":\"x\",\"store\":true}", 38, 1,
                                &body, &err),
                  -1);
    S2A_CHECK_STR(err.param, "store");
    d.kind = S2A_DOOR_MESSAGES;
    S2A_CHECK_INT(s2a_door_read(pool, &d, raw, sizeof(raw) - 1, 1, &body, &err), -1);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_kinds();
    test_errors();
    test_chat_stream();
    test_responses_stream();
    test_cut_stream();
    test_whole();
    test_refused();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_door");
}
