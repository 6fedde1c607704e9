/* What the OpenAI-compatible doors share: errors, numbers, the figures of
 * an answer, stream events and the pieces of the Messages body. */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_errors.h"
#include "s2a_openai.h"
#include "s2a_test.h"

static apr_pool_t *pool;

#include "s2a_test_json.h"

/* The span of the JSON value `text`, read by the scanner as a member. */
static s2a_json_span span(const char *text)
{
    static const char *const keys[] = {"v"};
    s2a_json_span v;
    const char *why;
    char *wrapped = apr_pstrcat(pool, "{\"v\":", text, "}", NULL);

    if (s2a_json_scan_object(pool, wrapped, strlen(wrapped), keys, 1, &v, &why) != 0) {
        fprintf(stderr, "not JSON: %s (%s)\n", text, why);
        abort();
    }
    return v;
}

static s2a_json_span none(void)
{
    s2a_json_span v;

    memset(&v, 0, sizeof(v));
    return v;
}

/* The buffer's text, between `before` and `after`, parsed. */
static json_object *parse_wrapped(const char *before, const s2a_buf *b, const char *after)
{
    const char *text = apr_pstrcat(
        pool, before, b->data ? apr_pstrmemdup(pool, b->data, b->len) : "", after, NULL);

    return parse(text, strlen(text));
}

static void test_error_of_status(void)
{
    static const struct {
        int status;
        const char *type, *code;
    } rows[] = {{400, "invalid_request_error", NULL},
                {401, "authentication_error", "invalid_api_key"},
                {402, "insufficient_quota", "insufficient_quota"},
                {403, "permission_error", NULL},
                {404, "not_found_error", NULL},
                {413, "invalid_request_error", "request_too_large"},
                {422, "invalid_request_error", NULL},
                {429, "rate_limit_error", "rate_limit_exceeded"},
                {500, "server_error", NULL},
                {502, "server_error", NULL},
                {503, "server_error", "overloaded"},
                {529, "server_error", "overloaded"}};
    s2a_openai_error e;
    apr_size_t k, len;
    json_object *o;
    char *body;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        s2a_openai_error_of_status(&e, rows[k].status, "words");
        S2A_CHECK_INT(e.status, rows[k].status);
        S2A_CHECK_STR(e.type, rows[k].type);
        S2A_CHECK(rows[k].code ? e.code && !strcmp(e.code, rows[k].code) : !e.code);
        S2A_CHECK(e.param == NULL);
        S2A_CHECK_STR(e.message, "words");
    }
    /* no message: the status's own words */
    s2a_openai_error_of_status(&e, 429, NULL);
    S2A_CHECK(e.message && *e.message);

    /* the body: one object, param and code null when unset */
    s2a_openai_error_of_status(&e, 401, "Bad \"key\"\n");
    body = s2a_openai_error_body(pool, &e, &len);
    S2A_CHECK_INT(len, strlen(body));
    o = parse(body, len);
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(str_at(o, "error/message"), "Bad \"key\"\n");
    S2A_CHECK_STR(str_at(o, "error/type"), "authentication_error");
    S2A_CHECK_STR(str_at(o, "error/code"), "invalid_api_key");
    S2A_CHECK(at(o, "error/param") == NULL &&
              json_object_object_get_ex(at(o, "error"), "param", NULL));
    json_object_put(o);

    S2A_CHECK_INT(s2a_openai_refuse(&e, "messages[0].role", "no"), -1);
    S2A_CHECK_INT(e.status, 400);
    S2A_CHECK_STR(e.type, "invalid_request_error");
    body = s2a_openai_error_body(pool, &e, NULL);
    o = parse(body, strlen(body));
    S2A_CHECK_STR(str_at(o, "error/param"), "messages[0].role");
    S2A_CHECK(at(o, "error/code") == NULL);
    json_object_put(o);
}

static void error_of(int status, const char *body, s2a_openai_error *e)
{
    s2a_openai_error_of_anthropic(pool, status, body, body ? strlen(body) : 0, e);
}

static void test_error_of_anthropic(void)
{
    s2a_openai_error e;

    error_of(529,
             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
             "\"Overloaded\"},\"request_id\":\"req_011CSHoEeqs5C35K2UUqR7Fy\"}",
             &e);
    S2A_CHECK_INT(e.status, 529);
    S2A_CHECK_STR(e.type, "server_error");
    S2A_CHECK_STR(e.code, "overloaded");
    S2A_CHECK_STR(e.message, "Overloaded");

    error_of(400,
             "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
             "\"prompt is too long: 213427 tokens > 200000 maximum\"}}",
             &e);
    S2A_CHECK_STR(e.type, "invalid_request_error");
    S2A_CHECK_STR(e.code, "context_length_exceeded");
    S2A_CHECK_STR(e.message, "prompt is too long: 213427 tokens > 200000 maximum");

    error_of(400,
             "{\"type\":\"error\",\"error\":{\"type\":\"billing_error\",\"message\":\"Your "
             "credit balance is too low\"}}",
             &e);
    S2A_CHECK_STR(e.type, "insufficient_quota");
    S2A_CHECK_STR(e.code, "insufficient_quota");

    error_of(429,
             "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
             "\"Number of request tokens has exceeded your per-minute rate limit\"}}",
             &e);
    S2A_CHECK_STR(e.type, "rate_limit_error");
    S2A_CHECK_STR(e.code, "rate_limit_exceeded");

    /* an escaped message is decoded; an unknown type keeps the status's */
    error_of(500, "{\"error\":{\"type\":\"mystery\",\"message\":\"caf\\u00e9 \\\"x\\\"\"}}", &e);
    S2A_CHECK_STR(e.type, "server_error");
    S2A_CHECK_STR(e.message, "caf\xc3\xa9 \"x\"");

    /* unreadable, empty or without an error object: the status's words */
    error_of(502, "<html>Bad Gateway</html>", &e);
    S2A_CHECK_STR(e.type, "server_error");
    S2A_CHECK_STR(e.message, s2a_error_message(502));
    error_of(401, NULL, &e);
    S2A_CHECK_STR(e.type, "authentication_error");
    S2A_CHECK_STR(e.message, s2a_error_message(401));
    error_of(403, "{\"error\":\"forbidden\"}", &e);
    S2A_CHECK_STR(e.type, "permission_error");
    error_of(400, "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"\"}}", &e);
    S2A_CHECK_STR(e.message, s2a_error_message(400));
    error_of(400, "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"x\"", &e);
    S2A_CHECK_STR(e.message, s2a_error_message(400));
}

static void test_put(void)
{
    s2a_buf b;
    json_object *o;
    const char raw[] = "a\"b\\c\n\r\t\x01\x1f\x7f \xc3\xa9/";

    s2a_buf_init(&b, pool, 0);
    s2a_openai_put_string(&b, raw);
    S2A_CHECK_STR(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9/\"");
    o = parse(b.data, b.len);
    S2A_CHECK_STR(o ? json_object_get_string(o) : NULL, raw);
    json_object_put(o);

    s2a_buf_reset(&b);
    s2a_openai_put_int(&b, APR_INT64_MIN);
    S2A_CHECK_STR(b.data, "-9223372036854775808");
    s2a_buf_reset(&b);
    S2A_PUT(&b, "[");
    s2a_openai_put_escaped(&b, "", 0);
    S2A_PUT(&b, "]");
    S2A_CHECK_STR(b.data, "[]");
}

/* The check read byte by byte, as its contract says. */
static int control_free_bytewise(const char *s, apr_size_t n)
{
    apr_size_t i;
    int in_string = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 && (in_string || (c != '\t' && c != '\n' && c != '\r'))) {
            return 0;
        }
        if (in_string && c == '\\') {
            if (++i < n && (unsigned char)s[i] < 0x20) {
                return 0;
            }
        } else if (c == '"') {
            in_string = !in_string;
        }
    }
    return 1;
}

static void test_control_free(void)
{
    static const struct {
        const char *text;
        int ok;
    } rows[] = {{"{\"a\": [1,\n\t2]}\r\n", 1},   {"{\"a\":\"b\\n\\\"c\\\\\"}", 1},
                {"{\"a\":\"\xc3\xa9\x7f\"}", 1}, {"{\"a\":\"b\nc\"}", 0},
                {"{\"a\":\"b\tc\"}", 0},         {"{\"a\":\"\\\n\"}", 0},
                {"{\"a\":1,\x01\"b\":2}", 0},    {"{\"a\":\"\x1f\"}", 0}};
    apr_size_t k;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        S2A_CHECK_INT(s2a_openai_control_free(rows[k].text, strlen(rows[k].text)), rows[k].ok);
    }
    /* a NUL inside a string */
    S2A_CHECK(!s2a_openai_control_free("{\"a\":\"\0\"}", 8));
    S2A_CHECK(s2a_openai_control_free("", 0));
    /* eight bytes at a time where nothing matters, byte by byte elsewhere: the
     * same answers as a plain reading of every byte, wherever the bytes fall */
    {
        static const char alphabet[] = "aaaaaaaa\"\\\n\t\x01\x1f\x7f\xc3\xa9 ";
        char text[40];
        int round, wrong = 0;
        unsigned seed = 7;

        for (round = 0; round < 200000; round++) {
            apr_size_t n = (apr_size_t)(round % 40), i;
            for (i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                text[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
            }
            wrong += s2a_openai_control_free(text, n) != control_free_bytewise(text, n);
        }
        S2A_CHECK_INT(wrong, 0);
    }
    /* one control byte anywhere in text that is otherwise free of them, high
     * bytes around it (which are not ones) */
    {
        char text[72];
        apr_size_t at;
        int wrong = 0;

        for (at = 0; at < sizeof(text); at++) {
            memset(text, 'a', sizeof(text));
            text[(at + 5) % sizeof(text)] = '\xff';
            text[(at + 9) % sizeof(text)] = '\x80';
            wrong += !s2a_openai_control_free(text, sizeof(text));
            text[at] = '\x01';
            wrong += s2a_openai_control_free(text, sizeof(text));
        }
        S2A_CHECK_INT(wrong, 0);
    }
}

static void test_integer(void)
{
    static const struct {
        const char *text;
        int ok;
        apr_int64_t v;
    } rows[] = {{"0", 1, 0},
                {"-0", 1, 0},
                {"4096", 1, 4096},
                {"-17", 1, -17},
                {"9223372036854775807", 1, APR_INT64_MAX},
                {"9223372036854775808", 1, APR_INT64_MAX},
                {"99999999999999999999999999999", 1, APR_INT64_MAX},
                {"-9223372036854775808", 1, APR_INT64_MIN},
                {"-9223372036854775809", 1, APR_INT64_MIN},
                {"-99999999999999999999999999999", 1, APR_INT64_MIN},
                {"1.0", 0, 0},
                {"1e3", 0, 0},
                {"\"12\"", 0, 0},
                {"true", 0, 0},
                {"null", 0, 0}};
    apr_size_t k;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        s2a_json_span v = span(rows[k].text);
        apr_int64_t n = 12345;
        S2A_CHECK_INT(s2a_openai_integer(&v, &n), rows[k].ok);
        S2A_CHECK_INT(n, rows[k].ok ? rows[k].v : 12345);
    }
}

static void test_milli(void)
{
    static const struct {
        const char *text;
        int ok;
        apr_int64_t v;
    } rows[] = {{"0", 1, 0},
                {"1", 1, 1000},
                {"0.7", 1, 700},
                {"-0.5", 1, -500},
                {"0.0005", 1, 0},
                {"0.123456789", 1, 123},
                {"2.5e-1", 1, 250},
                {"1E2", 1, 100000},
                {"1e+2", 1, 100000},
                {"0e5", 1, 0},
                {"1e999", 1, APR_INT64_MAX},
                {"1e9999999999999", 1, APR_INT64_MAX},
                {"-1e999", 1, -APR_INT64_MAX},
                {"1e-999", 1, 0},
                {"123456789012345678901234567890", 1, APR_INT64_MAX},
                {"0.000000000000000000000000001e30", 1, 1000000},
                {"\"1\"", 0, 0},
                {"[1]", 0, 0}};
    apr_size_t k;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        s2a_json_span v = span(rows[k].text);
        apr_int64_t n = 12345;
        S2A_CHECK_INT(s2a_openai_milli(&v, &n), rows[k].ok);
        S2A_CHECK_INT(n, rows[k].ok ? rows[k].v : 12345);
    }
}

static void test_finish_and_tokens(void)
{
    static const char *const rows[][2] = {{"\"end_turn\"", "stop"},
                                          {"\"stop_sequence\"", "stop"},
                                          {"\"pause_turn\"", "stop"},
                                          {"\"max_tokens\"", "length"},
                                          {"\"model_context_window_exceeded\"", "length"},
                                          {"\"tool_use\"", "tool_calls"},
                                          {"\"refusal\"", "content_filter"},
                                          {"\"t\\u006fol_use\"", "tool_calls"},
                                          {"\"something_new\"", "stop"},
                                          {"null", "stop"}};
    s2a_usage u;
    s2a_openai_tokens t;
    s2a_json_span v;
    apr_size_t k;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        v = span(rows[k][0]);
        S2A_CHECK_STR(s2a_openai_finish_reason(&v), rows[k][1]);
    }
    v = none();
    S2A_CHECK_STR(s2a_openai_finish_reason(&v), "stop");

    memset(&u, 0, sizeof(u));
    u.input = 472;
    u.cache_creation = 2048;
    u.cache_read = 10240;
    u.output = 93;
    s2a_openai_tokens_of(&u, &t);
    S2A_CHECK_INT(t.prompt, 472 + 2048 + 10240);
    S2A_CHECK_INT(t.completion, 93);
    S2A_CHECK_INT(t.total, 472 + 2048 + 10240 + 93);
    S2A_CHECK_INT(t.cached, 10240);

    u.cache_read = APR_INT64_MAX;
    s2a_openai_tokens_of(&u, &t);
    S2A_CHECK_INT(t.prompt, APR_INT64_MAX);
    S2A_CHECK_INT(t.total, APR_INT64_MAX);
}

static s2a_aev_kind event(const char *name, const char *data, s2a_anthropic_event *ev)
{
    /* exact-size copies: a read past either is caught by the memory checkers */
    char *n = malloc(strlen(name) + 1), *d = malloc(strlen(data) + 1);
    s2a_aev_kind kind;

    memcpy(n, name, strlen(name));
    memcpy(d, data, strlen(data));
    kind = s2a_anthropic_event_read(n, strlen(name), d, strlen(data), ev);
    /* the spans point into data: copied out before it goes */
    if (ev->text.type == S2A_JSON_STRING) {
        ev->text.p = apr_pstrmemdup(pool, ev->text.p, ev->text.len);
    }
    if (ev->id.type == S2A_JSON_STRING) {
        ev->id.p = apr_pstrmemdup(pool, ev->id.p, ev->id.len);
    }
    if (ev->name.type == S2A_JSON_STRING) {
        ev->name.p = apr_pstrmemdup(pool, ev->name.p, ev->name.len);
    }
    if (ev->stop.type == S2A_JSON_STRING) {
        ev->stop.p = apr_pstrmemdup(pool, ev->stop.p, ev->stop.len);
    }
    if (ev->err_type.type == S2A_JSON_STRING) {
        ev->err_type.p = apr_pstrmemdup(pool, ev->err_type.p, ev->err_type.len);
    }
    if (ev->err_message.type == S2A_JSON_STRING) {
        ev->err_message.p = apr_pstrmemdup(pool, ev->err_message.p, ev->err_message.len);
    }
    free(n);
    free(d);
    return kind;
}

static void test_events(void)
{
    s2a_anthropic_event ev;

    S2A_CHECK_INT(event("message_start",
                        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":"
                        "\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":"
                        "{\"input_tokens\":5,\"output_tokens\":1}}}",
                        &ev),
                  S2A_AEV_MESSAGE_START);
    S2A_CHECK(s2a_json_string_equals(&ev.id, "msg_01"));
    S2A_CHECK_INT(ev.index, -1);

    S2A_CHECK_INT(event("content_block_start",
                        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
                        "{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\","
                        "\"input\":{}}}",
                        &ev),
                  S2A_AEV_BLOCK_START);
    S2A_CHECK_INT(ev.index, 1);
    S2A_CHECK_INT(ev.block, S2A_BLOCK_TOOL_USE);
    S2A_CHECK(s2a_json_string_equals(&ev.id, "toolu_01A"));
    S2A_CHECK(s2a_json_string_equals(&ev.name, "get_weather"));

    event("content_block_start",
          "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
          "\"text\":\"\"}}",
          &ev);
    S2A_CHECK_INT(ev.block, S2A_BLOCK_TEXT);
    S2A_CHECK_INT(ev.text.len, 2);
    event("content_block_start",
          "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
          "\"redacted_thinking\",\"data\":\"EmwKAhgB\"}}",
          &ev);
    S2A_CHECK_INT(ev.block, S2A_BLOCK_REDACTED_THINKING);
    S2A_CHECK(s2a_json_string_equals(&ev.text, "EmwKAhgB"));
    event("content_block_start",
          "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":"
          "\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\"}}",
          &ev);
    S2A_CHECK_INT(ev.block, S2A_BLOCK_OTHER);
    S2A_CHECK_INT(ev.id.type, S2A_JSON_NONE);

    static const struct {
        const char *delta;
        s2a_block_kind kind;
        const char *text;
    } deltas[] = {
        {"{\"type\":\"text_delta\",\"text\":\"Hi \\\"there\\\"\"}", S2A_BLOCK_TEXT, "Hi \"there\""},
        {"{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}", S2A_BLOCK_THINKING, "hmm"},
        {"{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}", S2A_BLOCK_SIGNATURE, "EqQB"},
        {"{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}", S2A_BLOCK_TOOL_USE,
         "{\"city\": "},
        {"{\"type\":\"text_delta\"}", S2A_BLOCK_OTHER, NULL},
        {"{\"type\":\"text_delta\",\"text\":5}", S2A_BLOCK_OTHER, NULL},
        {"{\"type\":\"citations_delta\",\"citation\":{}}", S2A_BLOCK_OTHER, NULL}};
    apr_size_t k;
    for (k = 0; k < sizeof(deltas) / sizeof(deltas[0]); k++) {
        const char *data = apr_pstrcat(pool,
                                       "{\"type\":\"content_block_delta\",\"index\":0,"
                                       "\"delta\":",
                                       deltas[k].delta, "}", NULL);
        S2A_CHECK_INT(event("content_block_delta", data, &ev), S2A_AEV_BLOCK_DELTA);
        S2A_CHECK_INT(ev.block, deltas[k].kind);
        S2A_CHECK_INT(ev.index, 0);
        if (deltas[k].text) {
            S2A_CHECK(s2a_json_string_equals(&ev.text, deltas[k].text));
        }
    }

    S2A_CHECK_INT(event("message_delta",
                        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
                        "\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}",
                        &ev),
                  S2A_AEV_MESSAGE_DELTA);
    S2A_CHECK(s2a_json_string_equals(&ev.stop, "tool_use"));
    S2A_CHECK_INT(event("message_stop", "{\"type\":\"message_stop\"}", &ev), S2A_AEV_MESSAGE_STOP);
    S2A_CHECK_INT(event("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":3}", &ev),
                  S2A_AEV_BLOCK_STOP);
    S2A_CHECK_INT(ev.index, 3);
    S2A_CHECK_INT(event("ping", "{\"type\": \"ping\"}", &ev), S2A_AEV_PING);
    S2A_CHECK_INT(event("error",
                        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                        "\"message\":\"Overloaded\"}}",
                        &ev),
                  S2A_AEV_ERROR);
    S2A_CHECK(s2a_json_string_equals(&ev.err_type, "overloaded_error"));
    S2A_CHECK(s2a_json_string_equals(&ev.err_message, "Overloaded"));

    /* the data's type decides; the name only when it has none */
    S2A_CHECK_INT(event("ping", "{\"type\":\"message_stop\"}", &ev), S2A_AEV_MESSAGE_STOP);
    S2A_CHECK_INT(event("message_stop", "{}", &ev), S2A_AEV_MESSAGE_STOP);
    S2A_CHECK_INT(event("message", "{\"type\":\"p\\u0069ng\"}", &ev), S2A_AEV_PING);
    S2A_CHECK_INT(event("message_stop", "{\"type\":\"brand_new\"}", &ev), S2A_AEV_OTHER);
    S2A_CHECK_INT(event("message_stop", "{\"type\":7}", &ev), S2A_AEV_OTHER);
    /* a raw control character (a line end inside a string): not JSON */
    S2A_CHECK_INT(event("content_block_delta",
                        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                        "\"text_delta\",\"text\":\"a\n\nb\"}}",
                        &ev),
                  S2A_AEV_OTHER);
    /* not one JSON object: skipped */
    S2A_CHECK_INT(event("message_stop", "{\"type\":\"message_stop\"", &ev), S2A_AEV_OTHER);
    S2A_CHECK_INT(event("message_stop", "", &ev), S2A_AEV_OTHER);
    S2A_CHECK_INT(event("content_block_delta",
                        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                        "\"text_delta\",\"text\":\"x\"}",
                        &ev),
                  S2A_AEV_OTHER);
    /* an index that is not a count */
    event("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":-2}", &ev);
    S2A_CHECK_INT(ev.index, -1);
    event("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1.5}", &ev);
    S2A_CHECK_INT(ev.index, -1);
}

/* A delta as the API writes it reads as the same delta spaced out (which
 * only the scanner reads), whatever it holds: good and bad strings, every
 * kind, indexes near and past the reader's limits, bytes after it. */
static void test_deltas_as_written(void)
{
    static const char *const deltas[] = {
        "\"text_delta\",\"text\":\"Hello\"",
        "\"text_delta\",\"text\":\"\"",
        "\"text_delta\",\"text\":\"a\\\"b\\\\\\n\\u00e9\\ud83d\\ude00\"",
        "\"text_delta\",\"text\":\"bad \\x escape\"",
        "\"text_delta\",\"text\":\"bad \\u12 escape\"",
        "\"text_delta\",\"text\":\"raw\ttab\"",
        "\"text_delta\",\"text\":\"cut",
        "\"text_delta\",\"text\":\"ends with a backslash\\\"",
        "\"thinking_delta\",\"thinking\":\"hmm\"",
        "\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"",
        "\"signature_delta\",\"signature\":\"EqQB\"",
        "\"text_delta\",\"thinking\":\"mixed\"",
        "\"citations_delta\",\"citation\":{}"};
    static const char *const indexes[] = {"0", "7", "123456789", "1234567890", "01", "-1", "1.5"};
    static const char *const tails[] = {"}}", "}} ", "},\"x\":1}", "}}}", "}"};
    size_t d, i, t;
    int wrong = 0;

    for (d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
        for (i = 0; i < sizeof(indexes) / sizeof(indexes[0]); i++) {
            for (t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
                const char *tight =
                    apr_pstrcat(pool, "{\"type\":\"content_block_delta\",\"index\":", indexes[i],
                                ",\"delta\":{\"type\":", deltas[d], tails[t], NULL);
                const char *spaced =
                    apr_pstrcat(pool, "{\"type\": \"content_block_delta\",\"index\":", indexes[i],
                                ",\"delta\":{\"type\":", deltas[d], tails[t], NULL);
                s2a_anthropic_event a, b;
                s2a_aev_kind ka = event("content_block_delta", tight, &a);
                s2a_aev_kind kb = event("content_block_delta", spaced, &b);
                if (ka != kb || a.index != b.index || a.block != b.block ||
                    a.text.type != b.text.type || a.text.len != b.text.len ||
                    (a.text.len && memcmp(a.text.p, b.text.p, a.text.len) != 0)) {
                    wrong++;
                    fprintf(stderr, "differs: %s\n", tight);
                }
            }
        }
    }
    S2A_CHECK_INT(wrong, 0);
}

static void test_budget_and_adaptive(void)
{
    static const struct {
        const char *effort;
        apr_int64_t budget;
    } rows[] = {{"\"none\"", 0},
                {"\"minimal\"", 0},
                {"\"low\"", S2A_OPENAI_BUDGET_LOW},
                {"\"medium\"", S2A_OPENAI_BUDGET_MEDIUM},
                {"\"high\"", S2A_OPENAI_BUDGET_HIGH},
                {"\"xhigh\"", S2A_OPENAI_BUDGET_XHIGH},
                {"null", 0},
                {"\"HIGH\"", -1},
                {"\"max\"", -1},
                {"3", -1}};
    static const struct {
        const char *model;
        int adaptive;
    } models[] = {{"claude-sonnet-4-6", 1},
                  {"claude-opus-4-6", 1},
                  {"claude-opus-4-7", 1},
                  {"claude-opus-5", 1},
                  {"claude-4.6-opus", 1},
                  {"claude-sonnet-4-6-20260217", 1},
                  {"claude-opus-4-10", 1},
                  {"claude-sonnet-4-5", 0},
                  {"claude-sonnet-4-5-20250929", 0},
                  {"claude-opus-4-1-20250805", 0},
                  {"claude-sonnet-4-20250514", 0},
                  {"claude-3-7-sonnet-20250219", 0},
                  {"claude-3-5-haiku-latest", 0},
                  {"claude_haiku_4_5", 0},
                  {"claude-sonnet", 0},
                  {"gpt-4o", 0},
                  {"", 0}};
    apr_size_t k;
    s2a_json_span v;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        v = span(rows[k].effort);
        S2A_CHECK_INT(s2a_openai_budget(&v), rows[k].budget);
    }
    v = none();
    S2A_CHECK_INT(s2a_openai_budget(&v), 0);
    for (k = 0; k < sizeof(models) / sizeof(models[0]); k++) {
        if (s2a_openai_adaptive(models[k].model) != models[k].adaptive) {
            fprintf(stderr, "adaptive(%s) wrong\n", models[k].model);
        }
        S2A_CHECK_INT(s2a_openai_adaptive(models[k].model), models[k].adaptive);
    }
}

/* One text block for `text` (a JSON string literal) in a message of role. */
static void text_in(s2a_openai_msgs *m, s2a_openai_role role, const char *text)
{
    s2a_json_span v = span(text);

    s2a_openai_msgs_block(m, role, S2A_BLOCK_TEXT, 0);
    s2a_openai_text_block(m->b, &v, NULL);
}

static void test_msgs(void)
{
    s2a_openai_msgs m;
    s2a_buf b;
    json_object *o;

    /* nothing: an empty array, and nothing against thinking */
    s2a_buf_init(&b, pool, 0);
    s2a_openai_msgs_start(&m, &b);
    s2a_openai_msgs_end(&m);
    S2A_CHECK_STR(b.data, "\"messages\":[]");
    S2A_CHECK_INT(m.messages, 0);
    S2A_CHECK(s2a_openai_msgs_may_think(&m));

    /* adjacent messages of one role are merged, the roles alternate */
    s2a_buf_init(&b, pool, 0);
    s2a_openai_msgs_start(&m, &b);
    text_in(&m, S2A_ROLE_USER, "\"one\"");
    text_in(&m, S2A_ROLE_USER, "\"two\"");
    text_in(&m, S2A_ROLE_ASSISTANT, "\"three\"");
    text_in(&m, S2A_ROLE_USER, "\"four\"");
    s2a_openai_msgs_end(&m);
    S2A_CHECK_INT(m.messages, 3);
    o = parse_wrapped("{", &b, "}");
    S2A_CHECK(o != NULL);
    S2A_CHECK_INT(json_object_array_length(at(o, "messages")), 3);
    S2A_CHECK_STR(str_at(o, "messages/0/role"), "user");
    S2A_CHECK_INT(json_object_array_length(at(o, "messages/0/content")), 2);
    S2A_CHECK_STR(str_at(o, "messages/0/content/1/text"), "two");
    S2A_CHECK_STR(str_at(o, "messages/1/role"), "assistant");
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/type"), "text");
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/text"), "four");
    S2A_CHECK(s2a_openai_msgs_may_think(&m));
    json_object_put(o);

    /* a tool loop whose assistant turn has no thinking: no thinking */
    s2a_buf_init(&b, pool, 0);
    s2a_openai_msgs_start(&m, &b);
    text_in(&m, S2A_ROLE_USER, "\"weather?\"");
    s2a_openai_msgs_block(&m, S2A_ROLE_ASSISTANT, S2A_BLOCK_TOOL_USE, 0);
    S2A_PUT(&b, "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"w\",\"input\":{}}");
    s2a_openai_msgs_block(&m, S2A_ROLE_USER, S2A_BLOCK_OTHER, 1);
    S2A_PUT(&b, "{\"type\":\"tool_result\",\"tool_use_id\":\"t1\"}");
    S2A_CHECK(!s2a_openai_msgs_may_think(&m));
    /* ...until a plain user turn follows */
    text_in(&m, S2A_ROLE_ASSISTANT, "\"sunny\"");
    text_in(&m, S2A_ROLE_USER, "\"thanks\"");
    S2A_CHECK(s2a_openai_msgs_may_think(&m));
    s2a_openai_msgs_end(&m);
    o = parse_wrapped("{", &b, "}");
    S2A_CHECK(o != NULL);
    S2A_CHECK_INT(json_object_array_length(at(o, "messages")), 5);
    json_object_put(o);

    /* the same loop after an assistant turn that began with thinking */
    s2a_buf_init(&b, pool, 0);
    s2a_openai_msgs_start(&m, &b);
    text_in(&m, S2A_ROLE_USER, "\"weather?\"");
    s2a_openai_msgs_block(&m, S2A_ROLE_ASSISTANT, S2A_BLOCK_THINKING, 0);
    S2A_PUT(&b, "{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"s\"}");
    s2a_openai_msgs_block(&m, S2A_ROLE_ASSISTANT, S2A_BLOCK_TOOL_USE, 0);
    S2A_PUT(&b, "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"w\",\"input\":{}}");
    S2A_CHECK(s2a_openai_msgs_may_think(&m));
    s2a_openai_msgs_block(&m, S2A_ROLE_USER, S2A_BLOCK_OTHER, 1);
    S2A_PUT(&b, "{\"type\":\"tool_result\",\"tool_use_id\":\"t1\"}");
    S2A_CHECK(s2a_openai_msgs_may_think(&m));
    S2A_CHECK_INT(m.thinking_blocks, 1);
    s2a_openai_msgs_end(&m);

    /* a conversation that ends with an assistant prefill of text */
    s2a_buf_init(&b, pool, 0);
    s2a_openai_msgs_start(&m, &b);
    text_in(&m, S2A_ROLE_USER, "\"hi\"");
    text_in(&m, S2A_ROLE_ASSISTANT, "\"{\"");
    S2A_CHECK(!s2a_openai_msgs_may_think(&m));
    s2a_openai_msgs_end(&m);
}

/* The block image_block writes for url (a JSON string literal), parsed;
 * NULL with *why when refused. */
static json_object *image(const char *url, int document, const char **why)
{
    s2a_json_span v = span(url), cc = none();
    s2a_buf b;

    s2a_buf_init(&b, pool, 0);
    *why = NULL;
    if (s2a_openai_image_block(pool, &b, &v, document, &cc, why) != 0) {
        return NULL;
    }
    return parse(b.data, b.len);
}

static void test_image_block(void)
{
    const char *why;
    json_object *o;
    s2a_json_span v, cc;
    s2a_buf b;

    o = image("\"data:image/png;base64,iVBORw0KGgo=\"", 0, &why);
    S2A_CHECK_STR(str_at(o, "type"), "image");
    S2A_CHECK_STR(str_at(o, "source/type"), "base64");
    S2A_CHECK_STR(str_at(o, "source/media_type"), "image/png");
    S2A_CHECK_STR(str_at(o, "source/data"), "iVBORw0KGgo=");
    json_object_put(o);

    /* escaped slashes in the data, and the header written with escapes */
    o = image("\"data:image/jpeg;base64,/9j\\/4AAQ\"", 0, &why);
    S2A_CHECK_STR(str_at(o, "source/data"), "/9j/4AAQ");
    json_object_put(o);
    o = image("\"data:image\\/webp;BASE64,UklGR\\u0067\"", 0, &why);
    S2A_CHECK_STR(str_at(o, "source/media_type"), "image/webp");
    S2A_CHECK_STR(str_at(o, "source/data"), "UklGRg");
    json_object_put(o);
    /* parameters after the media type */
    o = image("\"data:image/gif;name=a.gif;base64,R0lG\"", 0, &why);
    S2A_CHECK_STR(str_at(o, "source/media_type"), "image/gif");
    json_object_put(o);

    o = image("\"https://upload.wikimedia.org/a/b.jpg?x=1&y=\\\"2\\\"\"", 0, &why);
    S2A_CHECK_STR(str_at(o, "source/type"), "url");
    S2A_CHECK_STR(str_at(o, "source/url"), "https://upload.wikimedia.org/a/b.jpg?x=1&y=\"2\"");
    json_object_put(o);
    o = image("\"HTTP://example.com/x.png\"", 0, &why);
    S2A_CHECK_STR(str_at(o, "source/url"), "HTTP://example.com/x.png");
    json_object_put(o);

    /* documents: a PDF when the media type is missing */
    o = image("\"data:application/pdf;base64,JVBERi0=\"", 1, &why);
    S2A_CHECK_STR(str_at(o, "type"), "document");
    S2A_CHECK_STR(str_at(o, "source/media_type"), "application/pdf");
    json_object_put(o);
    o = image("\"data:;base64,JVBERi0=\"", 1, &why);
    S2A_CHECK_STR(str_at(o, "source/media_type"), "application/pdf");
    json_object_put(o);
    o = image("\"JVBERi0xLjQK\"", 1, &why);
    S2A_CHECK_STR(str_at(o, "source/type"), "base64");
    S2A_CHECK_STR(str_at(o, "source/data"), "JVBERi0xLjQK");
    json_object_put(o);

    /* refused */
    S2A_CHECK(image("\"data:;base64,iVBO\"", 0, &why) == NULL && why);
    S2A_CHECK(image("\"data:image/png,rawbytes\"", 0, &why) == NULL && why);
    S2A_CHECK(image("\"data:image/png;base64\"", 0, &why) == NULL && why);
    S2A_CHECK(image("\"ftp://example.com/x.png\"", 0, &why) == NULL && why);
    S2A_CHECK(image("\"file:///etc/passwd\"", 1, &why) == NULL && why);
    S2A_CHECK(image("\"\"", 0, &why) == NULL && why);
    S2A_CHECK(image("\"JVBERi0xLjQK\"", 0, &why) == NULL && why);
    S2A_CHECK(image("{\"url\":\"https://x\"}", 0, &why) == NULL && why);
    S2A_CHECK(image("\"data:image/png\\u0000;base64,AA\"", 0, &why) == NULL && why);

    /* cache_control comes along */
    v = span("\"https://example.com/a.png\"");
    cc = span("{\"type\":\"ephemeral\"}");
    s2a_buf_init(&b, pool, 0);
    S2A_CHECK_INT(s2a_openai_image_block(pool, &b, &v, 0, &cc, &why), 0);
    o = parse(b.data, b.len);
    S2A_CHECK_STR(str_at(o, "cache_control/type"), "ephemeral");
    json_object_put(o);

    v = span("\"\"");
    S2A_CHECK(s2a_openai_blank(&v));
    v = span("\" \\n\\t\\r \"");
    S2A_CHECK(s2a_openai_blank(&v));
    v = span("\" \\n.\"");
    S2A_CHECK(!s2a_openai_blank(&v));
    v = span("\"\\u0020\"");
    S2A_CHECK(!s2a_openai_blank(&v));
    v = span("\"\\\\n\"");
    S2A_CHECK(!s2a_openai_blank(&v));

    s2a_buf_init(&b, pool, 0);
    v = span("\"a\\nb\"");
    s2a_openai_text_block(&b, &v, &cc);
    o = parse(b.data, b.len);
    S2A_CHECK_STR(str_at(o, "text"), "a\nb");
    S2A_CHECK_STR(str_at(o, "cache_control/type"), "ephemeral");
    json_object_put(o);
}

static int tool_id(const char *id, const char **out)
{
    s2a_json_span v = span(id);
    s2a_buf b;

    s2a_buf_init(&b, pool, 0);
    if (!s2a_openai_put_tool_id(pool, &b, &v)) {
        return 0;
    }
    *out = b.data;
    return 1;
}

static void test_tool_id(void)
{
    const char *out = NULL;

    S2A_CHECK(tool_id("\"call_abc-1_XYZ\"", &out));
    S2A_CHECK_STR(out, "\"call_abc-1_XYZ\"");
    S2A_CHECK(tool_id("\"toolu_01A09q90qw90lq917835lq9\"", &out));
    S2A_CHECK_STR(out, "\"toolu_01A09q90qw90lq917835lq9\"");
    S2A_CHECK(tool_id("\"fc.1:2\"", &out));
    S2A_CHECK_STR(out, "\"fc_2e1_3a2\"");
    /* escapes are decoded first: the same id however it is spelt */
    S2A_CHECK(tool_id("\"fc\\u002e1\\u003a2\"", &out));
    S2A_CHECK_STR(out, "\"fc_2e1_3a2\"");
    S2A_CHECK(tool_id("\"\xc3\xa9 \\\"\"", &out));
    S2A_CHECK_STR(out, "\"_c3_a9_20_22\"");
    S2A_CHECK(tool_id("\"\"", &out));
    S2A_CHECK_STR(out, "\"_\"");
    S2A_CHECK(!tool_id("5", &out));
    S2A_CHECK(!tool_id("null", &out));
    S2A_CHECK(!tool_id("\"a\\u0000b\"", &out));
}

/* The tool_use block for arguments (a JSON literal), parsed; NULL when
 * refused, the buffer then as it was. */
static json_object *tool_use(const char *id, const char *name, const char *arguments)
{
    s2a_json_span i = span(id), n = span(name), a = arguments ? span(arguments) : none();
    s2a_buf b;
    const char *why = NULL;

    s2a_buf_init(&b, pool, 0);
    S2A_PUT(&b, "[");
    if (s2a_openai_tool_use_block(pool, &b, &i, &n, &a, &why) != 0) {
        S2A_CHECK(why != NULL);
        return NULL;
    }
    S2A_PUT(&b, "]");
    return parse(b.data, b.len);
}

static void test_tool_use_block(void)
{
    json_object *o;

    o = tool_use("\"call_Xy\"", "\"get_weather\"",
                 "\"{\\\"location\\\": \\\"Paris, France\\\", \\\"unit\\\": \\\"celsius\\\"}\"");
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(str_at(o, "0/type"), "tool_use");
    S2A_CHECK_STR(str_at(o, "0/id"), "call_Xy");
    S2A_CHECK_STR(str_at(o, "0/name"), "get_weather");
    S2A_CHECK_STR(str_at(o, "0/input/location"), "Paris, France");
    S2A_CHECK_STR(str_at(o, "0/input/unit"), "celsius");
    json_object_put(o);

    /* nested values and unicode escapes survive the decoding */
    o = tool_use("\"c\"", "\"f\"",
                 "\"{\\\"a\\\":[1,{\\\"b\\\":null}],\\\"s\\\":\\\"\\\\u00e9\\\\n\\\"}\"");
    S2A_CHECK_INT(int_at(o, "0/input/a/0"), 1);
    S2A_CHECK_STR(str_at(o, "0/input/s"), "\xc3\xa9\n");
    json_object_put(o);

    /* blank, absent or null arguments: an empty object */
    o = tool_use("\"c\"", "\"f\"", "\"  \\n\"");
    S2A_CHECK(o && json_object_object_length(at(o, "0/input")) == 0);
    json_object_put(o);
    o = tool_use("\"c\"", "\"f\"", "\"\"");
    S2A_CHECK(o && json_object_object_length(at(o, "0/input")) == 0);
    json_object_put(o);
    o = tool_use("\"c\"", "\"f\"", NULL);
    S2A_CHECK(o && json_object_object_length(at(o, "0/input")) == 0);
    json_object_put(o);
    o = tool_use("\"c\"", "\"f\"", "null");
    S2A_CHECK(o && json_object_object_length(at(o, "0/input")) == 0);
    json_object_put(o);
    /* an object sent as it is */
    o = tool_use("\"c\"", "\"f\"", "{\"q\":\"x\"}");
    S2A_CHECK_STR(str_at(o, "0/input/q"), "x");
    json_object_put(o);

    /* refused: not an object, not JSON, cut short, or two values */
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "\"[1,2]\"") == NULL);
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "\"\\\"text\\\"\"") == NULL);
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "\"{\\\"a\\\":\"") == NULL);
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "\"{} {}\"") == NULL);
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "\"{\\\"a\\\":tru}\"") == NULL);
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "\"{\\\"a\\\":1}}\"") == NULL);
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "\"\\u0000\"") == NULL);
    /* a raw line end inside the arguments' string, once decoded */
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "\"{\\\"a\\\":\\\"x\\ny\\\"}\"") == NULL);
    o = tool_use("\"c\"", "\"f\"", "\"{\\n\\\"a\\\":\\t1}\"");
    S2A_CHECK_INT(int_at(o, "0/input/a"), 1);
    json_object_put(o);
    S2A_CHECK(tool_use("\"c\"", "\"f\"", "5") == NULL);
    S2A_CHECK(tool_use("\"c\"", "7", "\"{}\"") == NULL);
    S2A_CHECK(tool_use("7", "\"f\"", "\"{}\"") == NULL);

    /* a refused id leaves the buffer as it was */
    {
        s2a_json_span i = span("null"), n = span("\"f\""), a = span("\"{}\"");
        const char *why;
        s2a_buf b;

        s2a_buf_init(&b, pool, 0);
        S2A_PUT(&b, "[");
        S2A_CHECK_INT(s2a_openai_tool_use_block(pool, &b, &i, &n, &a, &why), -1);
        S2A_CHECK_INT(b.len, 1);
    }
}

static json_object *tool(const char *name, const char *description, const char *parameters)
{
    s2a_json_span n = span(name), d = description ? span(description) : none(),
                  p = parameters ? span(parameters) : none();
    s2a_buf b;

    s2a_buf_init(&b, pool, 0);
    if (s2a_openai_tool(&b, &n, &d, &p) != 0) {
        return NULL;
    }
    return parse(b.data, b.len);
}

static void test_tool(void)
{
    json_object *o;

    o = tool("\"get_weather\"", "\"The weather\"",
             "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
             "\"required\":[\"city\"],\"additionalProperties\":false}");
    S2A_CHECK_STR(str_at(o, "name"), "get_weather");
    S2A_CHECK_STR(str_at(o, "description"), "The weather");
    S2A_CHECK_STR(str_at(o, "input_schema/properties/city/type"), "string");
    S2A_CHECK_STR(str_at(o, "input_schema/required/0"), "city");
    json_object_put(o);

    o = tool("\"now\"", NULL, NULL);
    S2A_CHECK_STR(str_at(o, "input_schema/type"), "object");
    S2A_CHECK(at(o, "input_schema/properties") != NULL);
    S2A_CHECK(at(o, "description") == NULL);
    json_object_put(o);
    o = tool("\"now\"", "null", "null");
    S2A_CHECK_STR(str_at(o, "input_schema/type"), "object");
    json_object_put(o);

    /* a schema without its type gets one */
    o = tool("\"f\"", NULL, "{ \"properties\": {\"a\": {}} }");
    S2A_CHECK_STR(str_at(o, "input_schema/type"), "object");
    S2A_CHECK(at(o, "input_schema/properties/a") != NULL);
    json_object_put(o);
    o = tool("\"f\"", NULL, "{ \n }");
    S2A_CHECK_STR(str_at(o, "input_schema/type"), "object");
    S2A_CHECK_INT(json_object_object_length(at(o, "input_schema")), 1);
    json_object_put(o);

    S2A_CHECK(tool("5", NULL, NULL) == NULL);
    S2A_CHECK(tool("\"f\"", "5", NULL) == NULL);
    S2A_CHECK(tool("\"f\"", NULL, "[]") == NULL);
    S2A_CHECK(tool("\"f\"", NULL, "\"{}\"") == NULL);
}

static void test_tool_choice(void)
{
    static const struct {
        const char *choice;
        s2a_openai_choice want;
        const char *name;
    } rows[] = {
        {"\"auto\"", S2A_TOOL_CHOICE_AUTO, NULL},
        {"null", S2A_TOOL_CHOICE_AUTO, NULL},
        {"\"none\"", S2A_TOOL_CHOICE_NONE, NULL},
        {"\"required\"", S2A_TOOL_CHOICE_REQUIRED, NULL},
        {"{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}", S2A_TOOL_CHOICE_NAMED,
         "get_weather"},
        {"{\"type\":\"function\",\"name\":\"shell\"}", S2A_TOOL_CHOICE_NAMED, "shell"},
        {"\"any\"", S2A_TOOL_CHOICE_INVALID, NULL},
        {"{\"type\":\"function\"}", S2A_TOOL_CHOICE_INVALID, NULL},
        {"{\"type\":\"function\",\"function\":{\"name\":5}}", S2A_TOOL_CHOICE_INVALID, NULL},
        {"{\"type\":\"allowed_tools\"}", S2A_TOOL_CHOICE_INVALID, NULL},
        {"true", S2A_TOOL_CHOICE_INVALID, NULL}};
    apr_size_t k;
    s2a_json_span v, name;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        v = span(rows[k].choice);
        name = none();
        S2A_CHECK_INT(s2a_openai_tool_choice(&v, &name), rows[k].want);
        if (rows[k].name) {
            S2A_CHECK(s2a_json_string_equals(&name, rows[k].name));
        }
    }
    v = none();
    S2A_CHECK_INT(s2a_openai_tool_choice(&v, &name), S2A_TOOL_CHOICE_AUTO);
}

static void test_json_instruction(void)
{
    s2a_json_span schema = span("{\"type\":\"object\",\n\"properties\":{\"a\":{\"type\":"
                                "\"string\",\"pattern\":\"^\\\\d+$\"}}}"),
                  no = none();
    json_object *o, *inner;
    const char *text;
    s2a_buf b;

    s2a_buf_init(&b, pool, 0);
    s2a_openai_json_instruction(&b, &schema);
    o = parse(b.data, b.len);
    S2A_CHECK_STR(str_at(o, "type"), "text");
    text = str_at(o, "text");
    S2A_CHECK(text && strstr(text, "JSON Schema: {"));
    /* the schema is in the text as it was sent */
    inner = text ? parse(strchr(text, '{'), strlen(strchr(text, '{'))) : NULL;
    S2A_CHECK_STR(str_at(inner, "properties/a/pattern"), "^\\d+$");
    json_object_put(inner);
    json_object_put(o);

    s2a_buf_init(&b, pool, 0);
    s2a_openai_json_instruction(&b, &no);
    o = parse(b.data, b.len);
    S2A_CHECK(str_at(o, "text") && strstr(str_at(o, "text"), "JSON object"));
    json_object_put(o);
}

/* The tail of t after a conversation m, parsed (with *max and *budget). */
static json_object *tail(const s2a_openai_tail *t, const s2a_openai_msgs *m, apr_int64_t *max,
                         apr_int64_t *budget)
{
    s2a_buf b;
    s2a_body_marks marks;

    memset(&marks, 0, sizeof(marks));
    s2a_buf_init(&b, pool, 0);
    s2a_openai_write_tail(&b, t, m, &marks, max, budget);
    /* the marks say where max_tokens and stream went */
    S2A_CHECK_STR(apr_pstrmemdup(pool, b.data + marks.max_tokens.off, marks.max_tokens.len),
                  apr_psprintf(pool, "%" APR_INT64_T_FMT, *max));
    S2A_CHECK_STR(apr_pstrmemdup(pool, b.data + marks.stream.off, marks.stream.len),
                  t->stream ? "true" : "");
    return parse_wrapped("{\"model\":\"m\"", &b, "}");
}

static void test_tail(void)
{
    s2a_openai_tail t;
    s2a_openai_msgs plain, loop;
    s2a_buf b;
    apr_int64_t max, budget;
    json_object *o;

    s2a_buf_init(&b, pool, 0);
    s2a_openai_msgs_start(&plain, &b);
    text_in(&plain, S2A_ROLE_USER, "\"hi\"");
    s2a_openai_msgs_end(&plain);
    s2a_buf_init(&b, pool, 0);
    s2a_openai_msgs_start(&loop, &b);
    text_in(&loop, S2A_ROLE_USER, "\"hi\"");
    s2a_openai_msgs_block(&loop, S2A_ROLE_ASSISTANT, S2A_BLOCK_TOOL_USE, 0);
    s2a_openai_msgs_block(&loop, S2A_ROLE_USER, S2A_BLOCK_OTHER, 1);
    s2a_openai_msgs_end(&loop);

    /* no thinking: sampling as sent, capped at 1 */
    memset(&t, 0, sizeof(t));
    t.max_tokens = 1000;
    t.temperature = span("0.7");
    t.user = span("\"user-123\"");
    t.stream = 1;
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK(o != NULL);
    S2A_CHECK_INT(int_at(o, "max_tokens"), 1000);
    S2A_CHECK(json_object_get_double(at(o, "temperature")) == 0.7);
    S2A_CHECK(at(o, "thinking") == NULL);
    S2A_CHECK_STR(str_at(o, "metadata/user_id"), "user-123");
    S2A_CHECK(json_object_get_boolean(at(o, "stream")));
    S2A_CHECK_INT(max, 1000);
    S2A_CHECK_INT(budget, 0);
    json_object_put(o);

    t.temperature = span("1.5");
    t.top_p = span("0.9");
    t.user = none();
    t.stream = 0;
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK_INT(int_at(o, "temperature"), 1);
    S2A_CHECK(at(o, "top_p") == NULL); /* one of the two */
    S2A_CHECK(!json_object_object_get_ex(o, "stream", NULL));
    S2A_CHECK(!json_object_object_get_ex(o, "metadata", NULL));
    json_object_put(o);
    t.temperature = none();
    t.top_p = span("1e0");
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK_INT(int_at(o, "top_p"), 1);
    json_object_put(o);
    t.top_p = span("0.95");
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK(json_object_get_double(at(o, "top_p")) == 0.95);
    json_object_put(o);

    /* a budget: max_tokens grows by it, sampling is left out */
    t.budget = S2A_OPENAI_BUDGET_MEDIUM;
    t.temperature = span("0.2");
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK_STR(str_at(o, "thinking/type"), "enabled");
    S2A_CHECK_INT(int_at(o, "thinking/budget_tokens"), S2A_OPENAI_BUDGET_MEDIUM);
    S2A_CHECK_INT(int_at(o, "max_tokens"), 1000 + S2A_OPENAI_BUDGET_MEDIUM);
    S2A_CHECK(!json_object_object_get_ex(o, "temperature", NULL));
    S2A_CHECK(!json_object_object_get_ex(o, "top_p", NULL));
    S2A_CHECK_INT(max, 1000 + S2A_OPENAI_BUDGET_MEDIUM);
    S2A_CHECK_INT(budget, S2A_OPENAI_BUDGET_MEDIUM);
    S2A_CHECK(s2a_openai_thinks(&t, &plain));
    json_object_put(o);

    /* the growth stops at the cap, or at the client's own larger max */
    t.max_tokens = 60000;
    t.budget = S2A_OPENAI_BUDGET_HIGH;
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK_INT(int_at(o, "max_tokens"), S2A_OPENAI_MAX_TOKENS_CAP);
    S2A_CHECK(int_at(o, "thinking/budget_tokens") < int_at(o, "max_tokens"));
    json_object_put(o);
    t.max_tokens = 128000;
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK_INT(int_at(o, "max_tokens"), 128000);
    json_object_put(o);
    t.max_tokens = APR_INT64_MAX;
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK_INT(max, APR_INT64_MAX);
    json_object_put(o);

    /* an adaptive model: its effort, the budget an allowance */
    t.max_tokens = 4096;
    t.adaptive = 1;
    t.budget = S2A_OPENAI_BUDGET_XHIGH;
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK_STR(str_at(o, "thinking/type"), "adaptive");
    S2A_CHECK(at(o, "thinking/budget_tokens") == NULL);
    S2A_CHECK_STR(str_at(o, "output_config/effort"), "max");
    S2A_CHECK_INT(max, 4096 + S2A_OPENAI_BUDGET_XHIGH);
    S2A_CHECK_INT(budget, S2A_OPENAI_BUDGET_XHIGH);
    json_object_put(o);
    t.budget = S2A_OPENAI_BUDGET_LOW;
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK_STR(str_at(o, "output_config/effort"), "low");
    json_object_put(o);

    /* a forced tool or a tool loop without thinking: none */
    t.forced_tool = 1;
    S2A_CHECK(!s2a_openai_thinks(&t, &plain));
    o = tail(&t, &plain, &max, &budget);
    S2A_CHECK(at(o, "thinking") == NULL);
    S2A_CHECK_INT(max, 4096);
    S2A_CHECK_INT(budget, 0);
    S2A_CHECK(json_object_get_double(at(o, "temperature")) == 0.2);
    json_object_put(o);
    t.forced_tool = 0;
    t.adaptive = 0;
    S2A_CHECK(!s2a_openai_thinks(&t, &loop));
    o = tail(&t, &loop, &max, &budget);
    S2A_CHECK(at(o, "thinking") == NULL);
    json_object_put(o);
}

static int sampling(const char *temperature, const char *top_p, s2a_openai_error *e)
{
    s2a_json_span t = temperature ? span(temperature) : none(), p = top_p ? span(top_p) : none();

    return s2a_openai_check_sampling(&t, &p, e);
}

static void test_sampling(void)
{
    s2a_openai_error e;
    s2a_json_span t = span("null"), p = span("null");

    S2A_CHECK_INT(s2a_openai_check_sampling(&t, &p, &e), 0);
    S2A_CHECK_INT(t.type, S2A_JSON_NONE);
    S2A_CHECK_INT(p.type, S2A_JSON_NONE);
    S2A_CHECK_INT(sampling(NULL, NULL, &e), 0);
    S2A_CHECK_INT(sampling("0", "0", &e), 0);
    S2A_CHECK_INT(sampling("2", "1", &e), 0);
    S2A_CHECK_INT(sampling("0.7", "0.95", &e), 0);

    memset(&e, 0, sizeof(e));
    S2A_CHECK_INT(sampling("-0.1", NULL, &e), -1);
    S2A_CHECK_INT(e.status, 400);
    S2A_CHECK_STR(e.param, "temperature");
    S2A_CHECK_INT(sampling("2.01", NULL, &e), -1);
    S2A_CHECK_STR(e.param, "temperature");
    S2A_CHECK_INT(sampling("\"0.5\"", NULL, &e), -1);
    S2A_CHECK_STR(e.param, "temperature");
    S2A_CHECK_INT(sampling(NULL, "1.5", &e), -1);
    S2A_CHECK_STR(e.param, "top_p");
    S2A_CHECK_INT(sampling(NULL, "-1", &e), -1);
    S2A_CHECK_STR(e.param, "top_p");
    S2A_CHECK_INT(sampling(NULL, "true", &e), -1);
    S2A_CHECK_STR(e.param, "top_p");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_error_of_status();
    test_error_of_anthropic();
    test_put();
    test_control_free();
    test_integer();
    test_milli();
    test_finish_and_tokens();
    test_events();
    test_deltas_as_written();
    test_budget_and_adaptive();
    test_msgs();
    test_image_block();
    test_tool_id();
    test_tool_use_block();
    test_tool();
    test_tool_choice();
    test_json_instruction();
    test_tail();
    test_sampling();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_openai");
}
