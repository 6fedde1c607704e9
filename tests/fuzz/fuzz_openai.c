/* The OpenAI-compatible doors (s2a_openai_chat.h, s2a_openai_responses.h):
 * a request is either refused with a 400 that says why or becomes a
 * Messages body json-c reads strictly; an answer's stream gives the same
 * bytes whole, split at a byte the input picks and byte by byte, every
 * record of it JSON of the shape the door promises, ending as it must; a
 * whole answer is JSON or NULL.
 *
 * Input: the door and what it reads (first byte), the split point, then
 * the body or the upstream's bytes. */
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_request.h"
#include "s2a_openai_chat.h"
#include "s2a_openai_responses.h"
#include "../unit/s2a_test_body.h"

/* Streams fed byte by byte up to this size (each byte is a feed). */
#define BYTEWISE_MAX 2048

/* The door's Messages body reads the same scanned as where its marks say. */
static int built_reads(apr_pool_t *p, const char *body, size_t n, const s2a_body_marks *marks)
{
    s2a_body checked, built;
    const char *err = NULL;
    return s2a_body_read(p, body, n, &checked, &err) == 0 &&
           s2a_body_read_built(p, body, n, marks, &built, &err) == 0 &&
           same_fields(&checked.f, &built.f) && strcmp(checked.model, built.model) == 0 &&
           checked.stream == built.stream && checked.server_tools == built.server_tools;
}

static json_object *parse(const char *text, size_t n)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;

    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, text, (int)n);
    if (o && (json_tokener_get_error(tok) != json_tokener_success ||
              json_tokener_get_parse_end(tok) != n)) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static int is_json(const char *text, size_t n)
{
    json_object *o = parse(text, n);

    json_object_put(o);
    return o != NULL;
}

/* A memo of tools translations that lives as long as the fuzzer: it may
 * know an input's tools array from any input before. */
static s2a_tools_memo *fuzz_memo(void)
{
    static s2a_tools_memo *memo;
    static apr_pool_t *memo_pool;

    if (!memo) {
        apr_pool_create(&memo_pool, NULL);
        memo = s2a_tools_memo_make(memo_pool, 4, 16 * 1024);
    }
    return memo;
}

/* The same body read twice through the fuzzer's memo gives what `req`
 * (read without one) holds, or when NULL the same refusal as `err`. */
static int memo_agrees(apr_pool_t *p, const uint8_t *body, size_t n, const s2a_chat_request *req,
                       const s2a_openai_error *err)
{
    s2a_tools_memo *memo = fuzz_memo();
    int k;

    for (k = 0; k < 2; k++) {
        s2a_chat_request again;
        s2a_openai_error again_err;

        memset(&again_err, 0, sizeof(again_err));
        if (s2a_chat_request_read(p, fuzz_copy(p, body, n, 0), n, memo, &again, &again_err) !=
            (req ? 0 : -1)) {
            return 0;
        }
        if (req ? again.len != req->len || memcmp(again.body, req->body, req->len) ||
                      memcmp(&again.marks, &req->marks, sizeof(req->marks)) ||
                      again.tools != req->tools || again.max_tokens != req->max_tokens
                : again_err.status != err->status || strcmp(again_err.message, err->message)) {
            return 0;
        }
    }
    return 1;
}

static void check_refusal(const s2a_openai_error *e)
{
    FUZZ_CHECK(e->status == 400 && e->type && e->message && *e->message);
    FUZZ_CHECK(!strcmp(e->type, "invalid_request_error"));
}

static void chat_request(apr_pool_t *p, const uint8_t *body, size_t n)
{
    s2a_chat_request req;
    s2a_openai_error err;
    json_object *o;

    memset(&err, 0, sizeof(err));
    if (s2a_chat_request_read(p, fuzz_copy(p, body, n, 0), n, NULL, &req, &err) != 0) {
        FUZZ_CHECK(req.body == NULL);
        check_refusal(&err);
        FUZZ_CHECK(memo_agrees(p, body, n, NULL, &err));
        return;
    }
    FUZZ_CHECK(memo_agrees(p, body, n, &req, NULL));
    FUZZ_CHECK(req.body && strlen(req.body) == req.len && req.model && *req.model);
    FUZZ_CHECK(req.max_tokens >= 1 && req.thinking >= 0 && req.tools >= 0);
    FUZZ_CHECK(!req.include_usage || req.stream);
    o = parse(req.body, req.len);
    FUZZ_CHECK(o != NULL);
    /* what the request path reads by the marks (s2a_body_read_built) passes every check */
    FUZZ_CHECK(built_reads(p, req.body, req.len, &req.marks));
    FUZZ_CHECK(json_object_array_length(json_object_object_get(o, "messages")) > 0);
    json_object_put(o);
}

/* memo_agrees for the Responses door: the custom tools' names too. */
static int responses_memo_agrees(apr_pool_t *p, const uint8_t *body, size_t n,
                                 const s2a_responses_request *req, const s2a_openai_error *err)
{
    int k, i;

    for (k = 0; k < 2; k++) {
        s2a_responses_request again;
        s2a_openai_error again_err;

        memset(&again_err, 0, sizeof(again_err));
        if (s2a_responses_request_read(p, fuzz_copy(p, body, n, 0), n, fuzz_memo(), &again,
                                       &again_err) != (req ? 0 : -1)) {
            return 0;
        }
        if (!req) {
            if (again_err.status != err->status || strcmp(again_err.message, err->message)) {
                return 0;
            }
            continue;
        }
        if (again.len != req->len || memcmp(again.body, req->body, req->len) ||
            memcmp(&again.marks, &req->marks, sizeof(req->marks)) || again.tools != req->tools ||
            strcmp(again.echo, req->echo) || again.custom->nelts != req->custom->nelts) {
            return 0;
        }
        for (i = 0; i < req->custom->nelts; i++) {
            if (strcmp(APR_ARRAY_IDX(again.custom, i, const char *),
                       APR_ARRAY_IDX(req->custom, i, const char *)) != 0) {
                return 0;
            }
        }
    }
    return 1;
}

static void responses_request(apr_pool_t *p, const uint8_t *body, size_t n)
{
    s2a_responses_request req;
    s2a_openai_error err;
    const char *echo;

    memset(&err, 0, sizeof(err));
    if (s2a_responses_request_read(p, fuzz_copy(p, body, n, 0), n, NULL, &req, &err) != 0) {
        FUZZ_CHECK(req.body == NULL);
        check_refusal(&err);
        FUZZ_CHECK(responses_memo_agrees(p, body, n, NULL, &err));
        return;
    }
    FUZZ_CHECK(responses_memo_agrees(p, body, n, &req, NULL));
    FUZZ_CHECK(req.body && strlen(req.body) == req.len && req.model && *req.model);
    FUZZ_CHECK(req.max_tokens >= 1 && req.thinking >= 0 && req.tools >= req.custom->nelts);
    FUZZ_CHECK(is_json(req.body, req.len) && built_reads(p, req.body, req.len, &req.marks));
    echo = apr_pstrcat(p, "{", req.echo, "}", NULL);
    FUZZ_CHECK(is_json(echo, strlen(echo)));
}

/* The stream's output fed data[0..n) in pieces ending at cuts[0..k). */
static s2a_buf run(apr_pool_t *p, int responses, const void *req, const uint8_t *data, size_t n,
                   const size_t *cuts, size_t k)
{
    s2a_chat_stream *chat = NULL;
    s2a_responses_stream *resp = NULL;
    s2a_buf out;
    size_t from = 0, i;

    s2a_buf_init(&out, p, 0);
    if (responses) {
        resp = s2a_responses_stream_create(p, req, 1733500000);
    } else {
        chat = s2a_chat_stream_create(p, req, 1733500000);
    }
    for (i = 0; i <= k; i++) {
        size_t to = i < k ? cuts[i] : n;
        const char *piece = fuzz_copy(p, data + from, to - from, 0);

        if (responses) {
            s2a_responses_stream_feed(resp, piece, to - from, &out);
        } else {
            s2a_chat_stream_feed(chat, piece, to - from, &out);
        }
        from = to;
    }
    if (responses) {
        s2a_responses_stream_end(resp, &out);
        FUZZ_CHECK(s2a_responses_stream_done(resp));
    } else {
        s2a_chat_stream_end(chat, &out);
        FUZZ_CHECK(s2a_chat_stream_done(chat));
    }
    return out;
}

/* Chat: `data: {json}` records, `: ping`, and one `data: [DONE]`, last. */
static void check_chat(const s2a_buf *out)
{
    const char *s = out->data, *end = out->data + out->len, *e;
    int done = 0;

    for (; s < end; s = e + 2) {
        e = memmem(s, (size_t)(end - s), "\n\n", 2);
        FUZZ_CHECK(e != NULL && !done);
        if (e - s == 6 && !strncmp(s, ": ping", 6)) {
            continue;
        }
        FUZZ_CHECK(!strncmp(s, "data: ", 6));
        if (e - s == 12 && !strncmp(s + 6, "[DONE]", 6)) {
            done = 1;
        } else {
            FUZZ_CHECK(is_json(s + 6, (size_t)(e - s - 6)));
        }
    }
    FUZZ_CHECK(done);
}

/* Responses: `event: <type>` records whose data is JSON of that type,
 * numbered from 0, the last a response's end; `: ping` between. */
static void check_responses(const s2a_buf *out)
{
    const char *s = out->data, *end = out->data + out->len, *e, *nl, *type = NULL;
    long long seq = 0;

    for (; s < end; s = e + 2) {
        json_object *o, *v;

        e = memmem(s, (size_t)(end - s), "\n\n", 2);
        FUZZ_CHECK(e != NULL);
        if (e - s == 6 && !strncmp(s, ": ping", 6)) {
            continue;
        }
        nl = memchr(s, '\n', (size_t)(e - s));
        FUZZ_CHECK(!strncmp(s, "event: ", 7) && nl && !strncmp(nl + 1, "data: ", 6));
        type = apr_pstrmemdup(out->pool, s + 7, (apr_size_t)(nl - s - 7));
        o = parse(nl + 7, (size_t)(e - nl - 7));
        FUZZ_CHECK(o != NULL);
        FUZZ_CHECK(json_object_object_get_ex(o, "type", &v) &&
                   !strcmp(json_object_get_string(v), type));
        FUZZ_CHECK(json_object_object_get_ex(o, "sequence_number", &v) &&
                   json_object_get_int64(v) == seq++);
        json_object_put(o);
    }
    FUZZ_CHECK(type && (!strcmp(type, "response.completed") ||
                        !strcmp(type, "response.incomplete") || !strcmp(type, "response.failed")));
}

static void stream(apr_pool_t *p, int responses, fuzz_input *in)
{
    static const char codex[] = "{\"model\":\"m\",\"input\":\"q\",\"tools\":[{\"type\":\"custom\","
                                "\"name\":\"apply_patch\"}],\"reasoning\":{\"effort\":\"low\"}}";
    s2a_chat_request chat;
    s2a_responses_request resp;
    s2a_openai_error err;
    const void *req;
    size_t cut = fuzz_u16(in), n, i, *every;
    const uint8_t *data = fuzz_take(in, in->n, &n);
    s2a_buf whole, split, bytewise;

    memset(&chat, 0, sizeof(chat));
    chat.model = "gpt-4o";
    chat.stream = 1;
    chat.include_usage = cut & 1;
    FUZZ_CHECK(s2a_responses_request_read(p, codex, sizeof(codex) - 1, NULL, &resp, &err) == 0);
    req = responses ? (const void *)&resp : (const void *)&chat;

    whole = run(p, responses, req, data, n, NULL, 0);
    cut = n ? cut % (n + 1) : 0;
    split = run(p, responses, req, data, n, &cut, 1);
    FUZZ_CHECK(split.len == whole.len && !memcmp(split.data, whole.data, whole.len));
    if (n <= BYTEWISE_MAX && n) {
        every = apr_palloc(p, n * sizeof(*every));
        for (i = 0; i < n; i++) {
            every[i] = i + 1;
        }
        bytewise = run(p, responses, req, data, n, every, n - 1);
        FUZZ_CHECK(bytewise.len == whole.len && !memcmp(bytewise.data, whole.data, whole.len));
    }
    if (responses) {
        check_responses(&whole);
    } else {
        check_chat(&whole);
    }
}

static void answers(apr_pool_t *p, fuzz_input *in)
{
    s2a_chat_request chat;
    s2a_responses_request resp;
    size_t n, len;
    const uint8_t *data = fuzz_take(in, in->n, &n);
    const char *json = fuzz_copy(p, data, n, 0);
    char *out;

    memset(&chat, 0, sizeof(chat));
    memset(&resp, 0, sizeof(resp));
    chat.model = resp.model = "gpt-4o";
    if ((out = s2a_chat_answer(p, &chat, 1, json, n, &len))) {
        FUZZ_CHECK(strlen(out) == len && is_json(out, len));
    }
    if ((out = s2a_responses_answer(p, &resp, 1, json, n, &len))) {
        FUZZ_CHECK(strlen(out) == len && is_json(out, len));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};
    const uint8_t *body;
    size_t n;

    switch (fuzz_u8(&in) % 5) {
    case 0:
        body = fuzz_take(&in, in.n, &n);
        chat_request(p, body, n);
        break;
    case 1:
        body = fuzz_take(&in, in.n, &n);
        responses_request(p, body, n);
        break;
    case 2:
        stream(p, 0, &in);
        break;
    case 3:
        stream(p, 1, &in);
        break;
    default:
        answers(p, &in);
        break;
    }
    apr_pool_destroy(p);
    return 0;
}
