/* One attempt's answer on its way to the client: what the client receives,
 * byte for byte, however the upstream's bytes are split, and the usage read
 * on the way. */
#include <stdlib.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_answer.h"
#include "s2a_test.h"

static apr_pool_t *pool;

#include "s2a_test_frames.h"

static const char stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-up\","
    "\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const char json[] =
    "{\"id\":\"msg_2\",\"type\":\"message\",\"model\":\"claude-up\",\"content\":[{\"type\":"
    "\"text\",\"text\":\"hi\"}],\"usage\":{\"input_tokens\":7,\"output_tokens\":3}}";

/* What the client receives when the answer comes in the given cuts: each
 * call passes what was fed and let through, after what the hold released
 * (the filter inserts it before them). */
typedef struct {
    s2a_answer a;
    char *out;
    apr_size_t len;
} run_t;

static void deliver(run_t *t, const char *data, apr_size_t n)
{
    const char *released;
    apr_size_t rlen;
    int passes = s2a_answer_feed(&t->a, data, n);
    released = s2a_answer_release(&t->a, &rlen);
    if (released) {
        memcpy(t->out + t->len, released, rlen);
        t->len += rlen;
    }
    if (passes) {
        memcpy(t->out + t->len, data, n);
        t->len += n;
    }
}

static void finish(run_t *t)
{
    const char *released;
    apr_size_t rlen;
    s2a_answer_end(&t->a, 0);
    released = s2a_answer_release(&t->a, &rlen);
    if (released) {
        memcpy(t->out + t->len, released, rlen);
        t->len += rlen;
    }
    t->out[t->len] = '\0';
}

/* The answer fed in two pieces cut at `cut` (and then ended). */
static const char *received(const char *body, apr_size_t cut, int status, const char *type,
                            int count_only, int committed, const char *rename, s2a_usage *u,
                            int *have)
{
    apr_size_t len = strlen(body);
    run_t t;
    t.out = apr_palloc(pool, 2 * len + 256);
    t.len = 0;
    s2a_answer_start(&t.a, pool, status, type, 0, count_only, committed, rename, NULL);
    deliver(&t, body, cut);
    deliver(&t, body + cut, len - cut);
    finish(&t);
    if (u) {
        *have = s2a_answer_usage(&t.a, u);
    }
    return t.out;
}

static char *replaced(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    return apr_pstrcat(pool, apr_pstrmemdup(pool, text, (apr_size_t)(at - text)), to,
                       at + strlen(from), NULL);
}

static void test_stream(void)
{
    const char *renamed = replaced(stream, "\"model\":\"claude-up\"", "\"model\":\"claude\"");
    apr_size_t cut, len = strlen(stream);
    int wrong = 0, have = 0;
    s2a_usage u;

    for (cut = 0; cut <= len; cut++) {
        const char *plain = received(stream, cut, 200, "text/event-stream", 0, 0, NULL, &u, &have);
        const char *named = received(stream, cut, 200, "text/event-stream; charset=utf-8", 0, 0,
                                     "claude", NULL, NULL);
        if (strcmp(plain, stream) != 0 || strcmp(named, renamed) != 0 || !have || u.input != 10 ||
            u.cache_read != 5 || u.output != 42 || !u.seen_delta) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);

    /* without renaming nothing waits; with it, only the first event */
    {
        run_t t;
        t.out = apr_palloc(pool, 4 * len);
        t.len = 0;
        s2a_answer_start(&t.a, pool, 200, "text/event-stream", 0, 0, 0, "claude", NULL);
        S2A_CHECK_INT(s2a_answer_feed(&t.a, stream, 30), 0);
        S2A_CHECK(s2a_answer_release(&t.a, &cut) == NULL);
        deliver(&t, stream + 30, len - 30);
        S2A_CHECK_INT(t.len, strlen(renamed));
        S2A_CHECK_INT(s2a_answer_feed(&t.a, "x", 1), 1);
    }
}

/* The events of `stream` as Bedrock frames them. */
static s2a_buf bedrock_stream(void)
{
    s2a_buf s;
    const char *at = stream;
    s2a_buf_init(&s, pool, 1024);
    while ((at = strstr(at, "data: ")) != NULL) {
        const char *end = strstr(at, "\n\n");
        chunk(pool, &s, apr_pstrmemdup(pool, at + 6, (apr_size_t)(end - at - 6)));
        at = end;
    }
    return s;
}

static void test_bedrock_stream(void)
{
    s2a_buf framed = bedrock_stream();
    const char *renamed = replaced(stream, "\"model\":\"claude-up\"", "\"model\":\"claude\"");
    apr_size_t cut;
    int wrong = 0, have = 0;
    s2a_usage u;

    /* the client gets the SSE the frames carry, however they are cut */
    for (cut = 0; cut <= framed.len; cut++) {
        run_t t;
        t.out = apr_palloc(pool, 4 * framed.len);
        t.len = 0;
        s2a_answer_start(&t.a, pool, 200, S2A_ANSWER_EVENTSTREAM_TYPE, 0, 0, 0,
                         cut % 2 ? "claude" : NULL, NULL);
        deliver(&t, framed.data, cut);
        deliver(&t, framed.data + cut, framed.len - cut);
        finish(&t);
        have = s2a_answer_usage(&t.a, &u);
        if (strcmp(t.out, cut % 2 ? renamed : stream) != 0 || !have || u.input != 10 ||
            u.output != 42 || !u.seen_delta) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);

    /* a corrupt frame ends the stream with an error event; what came is read */
    {
        run_t t;
        s2a_buf bad = bedrock_stream();
        t.out = apr_palloc(pool, 4 * bad.len);
        t.len = 0;
        bad.data[bad.len - 5] ^= 1; /* the last message's payload */
        s2a_answer_start(&t.a, pool, 200, S2A_ANSWER_EVENTSTREAM_TYPE, 0, 0, 0, NULL, NULL);
        deliver(&t, bad.data, bad.len);
        finish(&t);
        S2A_CHECK(strstr(t.out, "event: message_delta") != NULL);
        S2A_CHECK(strstr(t.out, "event: message_stop") == NULL);
        S2A_CHECK(strstr(t.out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                                "\"api_error\"") != NULL);
        S2A_CHECK(s2a_answer_usage(&t.a, &u) && u.output == 42);
    }

    /* a stream cut inside a frame ends with an error event too */
    {
        run_t t;
        t.out = apr_palloc(pool, 4 * framed.len);
        t.len = 0;
        s2a_answer_start(&t.a, pool, 200, S2A_ANSWER_EVENTSTREAM_TYPE, 0, 0, 0, NULL, NULL);
        deliver(&t, framed.data, framed.len - 3);
        finish(&t);
        S2A_CHECK(strstr(t.out, "event: error") != NULL);
        S2A_CHECK(strstr(t.out, "event: message_stop") == NULL);
    }

    /* an OpenAI door's client gets the translation of what the frames carry */
    {
        run_t t;
        s2a_door door;
        memset(&door, 0, sizeof(door));
        door.kind = S2A_DOOR_CHAT;
        door.chat.model = "claude";
        t.out = apr_palloc(pool, 8 * framed.len + 4096);
        t.len = 0;
        s2a_answer_start(&t.a, pool, 200, S2A_ANSWER_EVENTSTREAM_TYPE, 0, 0, 0, NULL, &door);
        deliver(&t, framed.data, framed.len);
        finish(&t);
        S2A_CHECK(strstr(t.out, "\"content\":\"Hello\"") != NULL);
        S2A_CHECK(strstr(t.out, "data: [DONE]") != NULL);
        S2A_CHECK(s2a_answer_usage(&t.a, &u) && u.input == 10 && u.output == 42);
    }
}

/* A cloud's error body reaches the client in the Anthropic API's shape. */
/* An answer of `status` from `cloud`, fed in two pieces cut at `cut` and ended; *early (may
 * be NULL): the bytes that went out before the second piece. */
static const char *from_cloud(int status, int count_only, int committed, s2a_cloud cloud,
                              const char *error_type, const char *body, apr_size_t cut,
                              apr_size_t *early)
{
    apr_size_t len = strlen(body);
    run_t t;
    t.out = apr_palloc(pool, 8 * len + 256);
    t.len = 0;
    s2a_answer_start(&t.a, pool, status, "application/json", 0, count_only, committed, NULL, NULL);
    s2a_answer_from_cloud(&t.a, cloud, error_type);
    deliver(&t, body, cut);
    if (early) {
        *early = t.len;
    }
    deliver(&t, body + cut, len - cut);
    finish(&t);
    return t.out;
}

static void test_cloud_errors(void)
{
    static const char google[] = "{\"error\":{\"code\":429,\"message\":\"Quota "
                                 "exceeded\",\"status\":\"RESOURCE_EXHAUSTED\"}}";
    static const char amazon[] = "{\"message\":\"Malformed input request\"}";
    static const char anthropic[] =
        "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"m\"}}";
    apr_size_t cut;
    int wrong = 0;
    for (cut = 0; cut <= sizeof(google) - 1; cut++) {
        wrong += strcmp(from_cloud(429, 0, 0, S2A_CLOUD_VERTEX, NULL, google, cut, NULL),
                        "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                        "\"message\":\"Quota exceeded\"}}") != 0;
    }
    S2A_CHECK_INT(wrong, 0);
    S2A_CHECK_STR(received(anthropic, 3, 400, "application/json", 0, 0, NULL, NULL, NULL),
                  anthropic);
    S2A_CHECK_STR(from_cloud(400, 0, 0, S2A_CLOUD_BEDROCK, "ValidationException", amazon, 5, NULL),
                  "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                  "\"message\":\"Malformed input request\"}}");
    /* the same on a stream whose 200 went out: one error event */
    S2A_CHECK_STR(from_cloud(400, 0, 1, S2A_CLOUD_BEDROCK, "ValidationException", amazon, 5, NULL),
                  "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                  "\"invalid_request_error\",\"message\":\"Malformed input request\"}}\n\n");
}

/* Bedrock's CountTokens answer, cut anywhere, reaches the client as count_tokens answers; a
 * count from elsewhere, or what is no count, goes as it came. */
static void test_counts(void)
{
    static const char counted[] = "{\"inputTokens\": 1234}";
    static const char *const not_counts[] = {"{\"inputTokens\":1.5}", "{\"inputTokens\":-1}",
                                             "{\"inputTokens\":\"7\"}", "{\"other\":1}"};
    apr_size_t cut, early;
    int wrong = 0, k;

    for (cut = 0; cut <= sizeof(counted) - 1; cut++) {
        wrong += strcmp(from_cloud(200, 1, 0, S2A_CLOUD_BEDROCK, NULL, counted, cut, &early),
                        "{\"input_tokens\":1234}") != 0;
        wrong += early != 0; /* nothing goes before the end */
    }
    S2A_CHECK_INT(wrong, 0);
    for (k = 0; k < 4; k++) {
        S2A_CHECK_STR(from_cloud(200, 1, 0, S2A_CLOUD_BEDROCK, NULL, not_counts[k], 3, NULL),
                      not_counts[k]);
    }
    /* Vertex and Anthropic answer count_tokens in its own shape: it passes at once */
    S2A_CHECK_STR(from_cloud(200, 1, 0, S2A_CLOUD_VERTEX, NULL, "{\"input_tokens\":3}", 18, &early),
                  "{\"input_tokens\":3}");
    S2A_CHECK_INT(early, 18);
}

static void test_json(void)
{
    const char *renamed = replaced(json, "\"model\":\"claude-up\"", "\"model\":\"claude\"");
    apr_size_t cut, len = strlen(json);
    int wrong = 0, have = 0;
    s2a_usage u;

    for (cut = 0; cut <= len; cut++) {
        const char *plain = received(json, cut, 200, "application/json", 0, 0, NULL, &u, &have);
        const char *named = received(json, cut, 200, NULL, 0, 0, "claude", NULL, NULL);
        if (strcmp(plain, json) != 0 || strcmp(named, renamed) != 0 || !have || u.input != 7 ||
            u.output != 3) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);

    /* held whole until its end, so usage is read before the client could leave */
    {
        s2a_answer a;
        s2a_answer_start(&a, pool, 200, "application/json", 0, 0, 0, NULL, NULL);
        S2A_CHECK_INT(s2a_answer_feed(&a, json, len), 0);
        S2A_CHECK(s2a_answer_release(&a, &cut) == NULL);
        s2a_answer_end(&a, 0);
        S2A_CHECK(s2a_answer_release(&a, &cut) != NULL);
        S2A_CHECK_INT(cut, len);
    }

    /* an empty answer to a renamed model: nothing to rename, nothing sent */
    {
        s2a_answer a;
        s2a_answer_start(&a, pool, 200, "application/json", 0, 0, 0, "claude", NULL);
        s2a_answer_end(&a, 0);
        S2A_CHECK(s2a_answer_release(&a, &cut) == NULL);
        S2A_CHECK_INT(s2a_answer_usage(&a, &u), 0);
    }

    /* a JSON answer past the hold's limit goes on, renamed, and its usage is
     * still read at its end */
    {
        apr_size_t big = S2A_ANSWER_MAX_JSON_HOLD + 200 * 1024, at, sent = 0;
        const char *head = "{\"model\":\"claude-up\",\"content\":[{\"type\":\"text\",\"text\":\"";
        const char *tail = "\"}],\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}";
        char *doc = malloc(big + 200);
        s2a_answer a;
        const char *out;
        int passed = 0;
        at = strlen(head);
        memcpy(doc, head, at);
        memset(doc + at, 'a', big - at);
        memcpy(doc + big, tail, strlen(tail));
        big += strlen(tail);
        s2a_answer_start(&a, pool, 200, "application/json", 0, 0, 0, "claude", NULL);
        for (at = 0; at < big; at += 65536) {
            apr_size_t n = big - at < 65536 ? big - at : 65536;
            if (s2a_answer_feed(&a, doc + at, n)) {
                passed++;
                sent += n;
            }
            if ((out = s2a_answer_release(&a, &n)) != NULL) {
                S2A_CHECK(strncmp(out, "{\"model\":\"claude\",", 18) == 0);
                sent += n;
            }
        }
        s2a_answer_end(&a, 0);
        S2A_CHECK(passed > 0);
        S2A_CHECK_INT(sent, big - 3); /* "claude-up" became "claude" */
        S2A_CHECK_INT(s2a_answer_usage(&a, &u), 1);
        S2A_CHECK_INT(u.output, 2);
        free(doc);
    }
}

static void test_errors(void)
{
    const char *err = "{\"type\":\"error\",\n\"error\":{\"type\":\"invalid_request_error\"}}\n";
    const char *event = "event: error\ndata: {\"type\":\"error\",\ndata: \"error\":{\"type\":"
                        "\"invalid_request_error\"}}\n\n";
    apr_size_t cut, len = strlen(err);
    int wrong = 0, have = 1;
    s2a_usage u;

    for (cut = 0; cut <= len; cut++) {
        /* an error that describes the request passes as it is... */
        if (strcmp(received(err, cut, 400, "application/json", 0, 0, "claude", &u, &have), err) !=
                0 ||
            have ||
            /* ...and becomes one error event on a stream the client has a 200 of */
            strcmp(received(err, cut, 400, "application/json", 0, 1, "claude", NULL, NULL),
                   event) != 0) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);
    S2A_CHECK_STR(received("", 0, 500, "application/json", 0, 1, NULL, NULL, NULL),
                  "event: error\ndata: \n\n");

    /* count_tokens passes unread; its errors are read like others */
    S2A_CHECK_STR(received(err, 3, 400, "application/json", 1, 0, NULL, NULL, NULL), err);
    S2A_CHECK_STR(
        received("{\"input_tokens\":12}", 5, 200, "application/json", 1, 0, "claude", &u, &have),
        "{\"input_tokens\":12}");
    S2A_CHECK_INT(have, 0);

    /* an answer about the account: nothing of it, but its body is kept for
     * the policy's second look, up to what the policy reads */
    {
        s2a_answer a;
        const char *body;
        apr_size_t blen;
        s2a_answer_start(&a, pool, 429, "application/json", 1, 0, 0, NULL, NULL);
        S2A_CHECK_INT(a.mode, S2A_ANSWER_DROP);
        S2A_CHECK_INT(s2a_answer_feed(&a, err, 10), 0);
        S2A_CHECK_INT(s2a_answer_feed(&a, err + 10, len - 10), 0);
        s2a_answer_end(&a, 0);
        S2A_CHECK(s2a_answer_release(&a, &cut) == NULL);
        S2A_CHECK_INT(s2a_answer_usage(&a, &u), 0);
        body = s2a_answer_error_body(&a, &blen);
        S2A_CHECK(body && blen == len && memcmp(body, err, len) == 0);
        {
            char *big = apr_palloc(pool, S2A_POLICY_BODY_MAX);
            memset(big, ' ', S2A_POLICY_BODY_MAX);
            S2A_CHECK_INT(s2a_answer_feed(&a, big, S2A_POLICY_BODY_MAX), 0);
            S2A_CHECK(s2a_answer_error_body(&a, &blen) == NULL);
        }
    }
    /* an error that describes the request waits for its end, for the same
     * look, and then goes as it came */
    {
        s2a_answer a;
        const char *body;
        apr_size_t blen;
        s2a_answer_start(&a, pool, 400, "application/json", 0, 0, 0, NULL, NULL);
        S2A_CHECK_INT(a.mode, S2A_ANSWER_ERROR);
        S2A_CHECK_INT(s2a_answer_feed(&a, err, len), 0);
        S2A_CHECK(s2a_answer_release(&a, &cut) == NULL);
        body = s2a_answer_error_body(&a, &blen);
        S2A_CHECK(body && blen == len);
        s2a_answer_end(&a, 0);
        S2A_CHECK(s2a_answer_release(&a, &cut) != NULL && cut == len);
        S2A_CHECK_INT(a.released, 1);
    }
    /* a successful answer has no error body */
    {
        s2a_answer a;
        apr_size_t blen;
        s2a_answer_start(&a, pool, 200, "application/json", 0, 0, 0, NULL, NULL);
        S2A_CHECK(s2a_answer_error_body(&a, &blen) == NULL);
    }

    /* a stream cut short: what came is read, the final count is missing */
    {
        s2a_answer a;
        s2a_answer_start(&a, pool, 200, "text/event-stream", 0, 0, 0, NULL, NULL);
        S2A_CHECK_INT(s2a_answer_feed(&a, stream, 300), 1);
        s2a_answer_end(&a, 1);
        S2A_CHECK_INT(a.broken, 1);
        S2A_CHECK_INT(s2a_answer_usage(&a, &u), 1);
        S2A_CHECK_INT(u.seen_delta, 0);
        S2A_CHECK(u.delta_bytes > 0);
        S2A_CHECK(strstr(s2a_answer_broken_event(&a, &cut), "event: error\ndata: {") != NULL);
    }
}

/* The client leaves: a stream without its final count is drained until the
 * count comes or the time is up; anything else ends at once. */
static void test_client_left(void)
{
    const char *delta = strstr(stream, "event: message_delta");
    apr_size_t head = (apr_size_t)(delta - stream);
    apr_time_t t0 = apr_time_from_sec(1000);
    s2a_answer a;
    s2a_usage u;

    /* the final count comes while draining: that is what the row gets */
    s2a_answer_start(&a, pool, 200, "text/event-stream", 0, 0, 0, "claude", NULL);
    S2A_CHECK_INT(s2a_answer_feed(&a, stream, 20), 0); /* the first event waits */
    S2A_CHECK_INT(s2a_answer_client_left(&a, t0, apr_time_from_sec(3)), 1);
    S2A_CHECK_INT(a.client_left && a.draining, 1);
    S2A_CHECK_INT(s2a_answer_feed(&a, stream + 20, head - 20), 1); /* nothing waits now */
    S2A_CHECK_INT(a.held.len, 20);
    S2A_CHECK_INT(s2a_answer_drained(&a, t0 + 1), 0);
    s2a_answer_feed(&a, delta, strlen(delta));
    S2A_CHECK_INT(s2a_answer_drained(&a, t0 + 2), 1);
    S2A_CHECK_INT(a.draining, 0);
    S2A_CHECK_INT(s2a_answer_usage(&a, &u), 1);
    S2A_CHECK_INT(u.output, 42);
    S2A_CHECK_INT(u.seen_delta, 1);

    /* the time runs out first; the drain ends exactly at its limit */
    s2a_answer_start(&a, pool, 200, "text/event-stream", 0, 0, 0, NULL, NULL);
    s2a_answer_feed(&a, stream, head);
    S2A_CHECK_INT(s2a_answer_client_left(&a, t0, apr_time_from_sec(3)), 1);
    S2A_CHECK_INT(s2a_answer_drained(&a, t0 + apr_time_from_sec(3) - 1), 0);
    S2A_CHECK_INT(s2a_answer_drained(&a, t0 + apr_time_from_sec(3)), 1);
    S2A_CHECK_INT(s2a_answer_drained(&a, t0 + apr_time_from_sec(4)), 1);
    /* the upstream's answer ends first */
    s2a_answer_start(&a, pool, 200, "text/event-stream", 0, 0, 0, NULL, NULL);
    s2a_answer_feed(&a, stream, head);
    S2A_CHECK_INT(s2a_answer_client_left(&a, t0, apr_time_from_sec(3)), 1);
    s2a_answer_end(&a, 1);
    S2A_CHECK_INT(s2a_answer_drained(&a, t0), 1);

    /* nothing to wait for: the count came, no drain time, not a stream */
    s2a_answer_start(&a, pool, 200, "text/event-stream", 0, 0, 0, NULL, NULL);
    s2a_answer_feed(&a, stream, strlen(stream));
    S2A_CHECK_INT(s2a_answer_client_left(&a, t0, apr_time_from_sec(3)), 0);
    S2A_CHECK_INT(a.client_left, 1);
    S2A_CHECK_INT(a.draining, 0);
    S2A_CHECK_INT(s2a_answer_drained(&a, t0), 1);
    s2a_answer_start(&a, pool, 200, "text/event-stream", 0, 0, 0, NULL, NULL);
    s2a_answer_feed(&a, stream, head);
    S2A_CHECK_INT(s2a_answer_client_left(&a, t0, 0), 0);
    s2a_answer_start(&a, pool, 200, "application/json", 0, 0, 0, NULL, NULL);
    S2A_CHECK_INT(s2a_answer_client_left(&a, t0, apr_time_from_sec(3)), 0);
    s2a_answer_start(&a, pool, 400, "application/json", 0, 0, 0, NULL, NULL);
    S2A_CHECK_INT(s2a_answer_client_left(&a, t0, apr_time_from_sec(3)), 0);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_stream();
    test_bedrock_stream();
    test_cloud_errors();
    test_counts();
    test_json();
    test_errors();
    test_client_left();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_answer");
}
