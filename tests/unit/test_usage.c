/* Usage from SSE events and from plain JSON answers. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_usage.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static int sse(s2a_usage *u, const char *event, const char *data)
{
    return s2a_usage_apply_sse(u, event, strlen(event), data, strlen(data));
}

static const char START[] =
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","
    "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],"
    "\"model\":\"claude-sonnet-4-20250514\",\"stop_reason\":null,\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":2048,"
    "\"cache_read_input_tokens\":10240,\"cache_creation\":{\"ephemeral_5m_input_tokens\":1536,"
    "\"ephemeral_1h_input_tokens\":512},\"output_tokens\":2,\"service_tier\":\"standard\"}}}";

static const char *delta(apr_int64_t out)
{
    return apr_psprintf(pool,
                        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                        "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%" APR_INT64_T_FMT
                        "}}",
                        out);
}

static void test_stream(void)
{
    s2a_usage u;

    memset(&u, 0, sizeof(u));
    S2A_CHECK_INT(sse(&u, "message_start", START), 1);
    S2A_CHECK_INT(u.input, 472);
    S2A_CHECK_INT(u.cache_creation, 2048);
    S2A_CHECK_INT(u.cache_1h, 512);
    S2A_CHECK_INT(u.cache_read, 10240);
    S2A_CHECK_INT(u.output, 2);
    S2A_CHECK_INT(u.seen_start, 1);
    S2A_CHECK_INT(u.seen_delta, 0);

    /* Events between start and delta do not touch usage. */
    S2A_CHECK_INT(sse(&u, "content_block_start",
                      "{\"type\":\"content_block_start\",\"index\":0,"
                      "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"),
                  0);
    S2A_CHECK_INT(sse(&u, "ping", "{\"type\": \"ping\"}"), 0);

    /* output_tokens in deltas is cumulative: the last one wins, nothing adds up. */
    S2A_CHECK_INT(sse(&u, "message_delta", delta(5)), 1);
    S2A_CHECK_INT(u.output, 5);
    S2A_CHECK_INT(u.seen_delta, 1);
    S2A_CHECK_INT(sse(&u, "message_delta", delta(12)), 1);
    S2A_CHECK_INT(sse(&u, "message_delta", delta(30)), 1);
    S2A_CHECK_INT(u.output, 30);
    /* A repeated delta changes nothing. */
    S2A_CHECK_INT(sse(&u, "message_delta", delta(30)), 0);
    S2A_CHECK_INT(u.output, 30);
    /* Start figures survive deltas that do not carry them. */
    S2A_CHECK_INT(u.input, 472);
    S2A_CHECK_INT(u.cache_creation, 2048);
    S2A_CHECK_INT(u.cache_1h, 512);
    S2A_CHECK_INT(u.cache_read, 10240);

    S2A_CHECK_INT(sse(&u, "message_stop", "{\"type\":\"message_stop\"}"), 0);
}

static void test_split(void)
{
    s2a_usage u;

    /* Only the split: the total is its sum. */
    memset(&u, 0, sizeof(u));
    S2A_CHECK_INT(sse(&u, "message_start",
                      "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,"
                      "\"cache_creation\":{\"ephemeral_5m_input_tokens\":300,"
                      "\"ephemeral_1h_input_tokens\":700},\"output_tokens\":1}}}"),
                  1);
    S2A_CHECK_INT(u.cache_creation, 1000);
    S2A_CHECK_INT(u.cache_1h, 700);

    /* Total and split both present: the total is not added to the split. */
    memset(&u, 0, sizeof(u));
    sse(&u, "message_start",
        "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,"
        "\"cache_creation_input_tokens\":1000,\"cache_creation\":{"
        "\"ephemeral_5m_input_tokens\":1000,\"ephemeral_1h_input_tokens\":0}}}}");
    S2A_CHECK_INT(u.cache_creation, 1000);
    S2A_CHECK_INT(u.cache_1h, 0);

    /* A 1h figure larger than the total is capped: no token is billed twice. */
    memset(&u, 0, sizeof(u));
    sse(&u, "message_start",
        "{\"type\":\"message_start\",\"message\":{\"usage\":{"
        "\"cache_creation_input_tokens\":100,\"cache_creation\":{"
        "\"ephemeral_1h_input_tokens\":400}}}}");
    S2A_CHECK_INT(u.cache_creation, 100);
    S2A_CHECK_INT(u.cache_1h, 100);

    /* Absurd figures saturate rather than overflow. */
    memset(&u, 0, sizeof(u));
    sse(&u, "message_start",
        "{\"type\":\"message_start\",\"message\":{\"usage\":{\"cache_creation\":{"
        "\"ephemeral_5m_input_tokens\":9223372036854775807,"
        "\"ephemeral_1h_input_tokens\":9223372036854775807}}}}");
    S2A_CHECK_INT(u.cache_creation, APR_INT64_MAX);
    S2A_CHECK_INT(u.cache_1h, APR_INT64_MAX);

    /* No split: everything is 5m. */
    memset(&u, 0, sizeof(u));
    sse(&u, "message_start",
        "{\"type\":\"message_start\",\"message\":{\"usage\":{"
        "\"cache_creation_input_tokens\":100}}}");
    S2A_CHECK_INT(u.cache_creation, 100);
    S2A_CHECK_INT(u.cache_1h, 0);
}

static void test_delta_with_input(void)
{
    s2a_usage u;

    /* Providers that report input only at the end. */
    memset(&u, 0, sizeof(u));
    sse(&u, "message_start",
        "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":0,"
        "\"output_tokens\":0}}}");
    S2A_CHECK_INT(sse(&u, "message_delta",
                      "{\"type\":\"message_delta\",\"usage\":{\"input_tokens\":1200,"
                      "\"cache_creation_input_tokens\":300,\"cache_read_input_tokens\":4000,"
                      "\"cache_creation\":{\"ephemeral_5m_input_tokens\":100,"
                      "\"ephemeral_1h_input_tokens\":200},\"output_tokens\":77}}"),
                  1);
    S2A_CHECK_INT(u.input, 1200);
    S2A_CHECK_INT(u.cache_creation, 300);
    S2A_CHECK_INT(u.cache_1h, 200);
    S2A_CHECK_INT(u.cache_read, 4000);
    S2A_CHECK_INT(u.output, 77);

    /* Full cumulative usage repeated in the next delta: overwritten, never added. */
    sse(&u, "message_delta",
        "{\"type\":\"message_delta\",\"usage\":{\"input_tokens\":1200,"
        "\"cache_creation_input_tokens\":300,\"cache_read_input_tokens\":4000,"
        "\"output_tokens\":90}}");
    S2A_CHECK_INT(u.input, 1200);
    S2A_CHECK_INT(u.cache_creation, 300);
    S2A_CHECK_INT(u.cache_read, 4000);
    S2A_CHECK_INT(u.output, 90);

    /* Zeros in a delta do not erase what is known. */
    sse(&u, "message_delta",
        "{\"type\":\"message_delta\",\"usage\":{\"input_tokens\":0,"
        "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},"
        "\"output_tokens\":95}}");
    S2A_CHECK_INT(u.input, 1200);
    S2A_CHECK_INT(u.cache_creation, 300);
    S2A_CHECK_INT(u.cache_1h, 200);
    S2A_CHECK_INT(u.cache_read, 4000);
    S2A_CHECK_INT(u.output, 95);
}

static void test_unnamed_and_slices(void)
{
    s2a_usage u;
    const char *buf;
    apr_size_t n;

    /* No event name: the data's type decides. */
    memset(&u, 0, sizeof(u));
    S2A_CHECK_INT(s2a_usage_apply_sse(&u, "", 0, START, strlen(START)), 1);
    S2A_CHECK_INT(u.input, 472);
    S2A_CHECK_INT(s2a_usage_apply_sse(&u, NULL, 0, delta(9), strlen(delta(9))), 1);
    S2A_CHECK_INT(u.output, 9);
    /* Unnamed event whose text merely mentions message_delta. */
    buf = "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
          "\"text\":\"\\\"message_delta\\\"\"},\"usage\":{\"output_tokens\":1}}";
    S2A_CHECK_INT(s2a_usage_apply_sse(&u, NULL, 0, buf, strlen(buf)), 0);
    S2A_CHECK_INT(u.output, 9);

    /* Name and data are length-delimited, not NUL-terminated. */
    memset(&u, 0, sizeof(u));
    buf = apr_pstrcat(pool, delta(42), "GARBAGE", NULL);
    n = strlen(delta(42));
    S2A_CHECK_INT(s2a_usage_apply_sse(&u, "message_deltaXYZ", 13, buf, n), 1);
    S2A_CHECK_INT(u.output, 42);
    S2A_CHECK_INT(s2a_usage_apply_sse(&u, "message_deltaXYZ", 13, buf, n + 7), 0);
    S2A_CHECK_INT(s2a_usage_apply_sse(&u, "message_deltaXYZ", 16, buf, n), 0);
    /* Trailing whitespace is fine. */
    buf = apr_pstrcat(pool, delta(43), " \r\n", NULL);
    S2A_CHECK_INT(sse(&u, "message_delta", buf), 1);
    S2A_CHECK_INT(u.output, 43);
}

/* A stream cut before message_delta: output estimated from the text sent. */
static void test_output_estimate(void)
{
    s2a_usage u;

    memset(&u, 0, sizeof(u));
    S2A_CHECK_INT(sse(&u, "message_start", START), 1);
    S2A_CHECK_INT(s2a_usage_output_estimate(&u), 2); /* nothing sent yet: the reported 2 */
    S2A_CHECK_INT(sse(&u, "content_block_delta",
                      "{\"type\":\"content_block_delta\",\"index\":0,"
                      "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello, world\"}}"),
                  0);
    S2A_CHECK_INT(u.delta_bytes, 12);
    S2A_CHECK_INT(s2a_usage_output_estimate(&u), 3);
    S2A_CHECK_INT(sse(&u, "content_block_delta",
                      "{\"type\":\"content_block_delta\",\"index\":1,"
                      "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"abcdefghi\"}}"),
                  0);
    /* unnamed event, tool input */
    S2A_CHECK_INT(s2a_usage_apply_sse(&u, NULL, 0,
                                      "{\"type\":\"content_block_delta\",\"index\":2,"
                                      "\"delta\":{\"type\":\"input_json_delta\","
                                      "\"partial_json\":\"{\\\"a\\\":1\"}}",
                                      strlen("{\"type\":\"content_block_delta\",\"index\":2,"
                                             "\"delta\":{\"type\":\"input_json_delta\","
                                             "\"partial_json\":\"{\\\"a\\\":1\"}}")),
                  0);
    S2A_CHECK_INT(u.delta_bytes, 12 + 9 + 8);
    S2A_CHECK_INT(s2a_usage_output_estimate(&u), 8);
    /* a signature carries the whole thinking where the thinking is summarized:
     * it counts, named or not */
    S2A_CHECK_INT(sse(&u, "content_block_delta",
                      "{\"type\":\"content_block_delta\",\"index\":1,"
                      "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"xyz\"}}"),
                  0);
    S2A_CHECK_INT(s2a_usage_apply_sse(&u, NULL, 0,
                                      "{\"type\":\"content_block_delta\",\"index\":1,"
                                      "\"delta\":{\"type\":\"signature_delta\","
                                      "\"signature\": \"EqQB\"}}",
                                      strlen("{\"type\":\"content_block_delta\",\"index\":1,"
                                             "\"delta\":{\"type\":\"signature_delta\","
                                             "\"signature\": \"EqQB\"}}")),
                  0);
    S2A_CHECK_INT(u.delta_bytes, 29 + 3 + 4);
    /* broken events and other types add nothing */
    S2A_CHECK_INT(sse(&u, "content_block_delta",
                      "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"abc"),
                  0);
    S2A_CHECK_INT(sse(&u, "ping", "{\"type\":\"ping\",\"delta\":{\"text\":\"abcd\"}}"), 0);
    S2A_CHECK_INT(u.delta_bytes, 36);
    /* escaped quotes and backslashes inside the text do not end it early */
    S2A_CHECK_INT(sse(&u, "content_block_delta",
                      "{\"type\":\"content_block_delta\",\"index\":0,"
                      "\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\\"b\\\\\"}}"),
                  0);
    S2A_CHECK_INT(u.delta_bytes, 36 + 6);
    /* spaced out JSON, as some encoders write it */
    S2A_CHECK_INT(sse(&u, "content_block_delta",
                      "{\"type\": \"content_block_delta\", \"index\": 0, "
                      "\"delta\": {\"type\": \"text_delta\", \"text\" :  \"abcd\"}}"),
                  0);
    S2A_CHECK_INT(u.delta_bytes, 36 + 6 + 4);
    /* thinking that quotes a "text" member: the thinking is what is measured */
    S2A_CHECK_INT(sse(&u, "content_block_delta",
                      "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                      "\"thinking_delta\",\"thinking\":\"x\\\"text\\\":\\\"y\"}}"),
                  0);
    S2A_CHECK_INT(u.delta_bytes, 36 + 6 + 4 + 13);
    /* the final count, when it comes, is what counts */
    S2A_CHECK_INT(sse(&u, "message_delta", delta(5)), 1);
    S2A_CHECK_INT(u.output, 5);
    S2A_CHECK_INT(s2a_usage_output_estimate(&u), 15);
}

static void test_malformed(void)
{
    static const char *bad[] = {
        "",
        "{",
        "not json",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5}",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5}}}",
        "[1,2,3]",
        "null",
        "{\"type\":\"message_delta\",\"usage\":\"lots\"}",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":\"5\"}}",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-5}}",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5.5}}",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":null}}",
        "{\"type\":\"message_delta\",\"usage\":[5]}",
    };
    s2a_usage u, ref;
    apr_size_t i;

    memset(&u, 0, sizeof(u));
    sse(&u, "message_start", START);
    sse(&u, "message_delta", delta(7));
    ref = u;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        S2A_CHECK_INT(sse(&u, "message_delta", bad[i]), 0);
        S2A_CHECK_INT(sse(&u, "message_start", bad[i]), 0);
    }
    S2A_CHECK_INT(u.output, ref.output);
    S2A_CHECK_INT(u.input, ref.input);
    S2A_CHECK_INT(u.cache_creation, ref.cache_creation);
    S2A_CHECK_INT(u.cache_read, ref.cache_read);

    /* message_start whose usage sits outside "message" is not usage. */
    S2A_CHECK_INT(sse(&u, "message_start",
                      "{\"type\":\"message_start\",\"usage\":"
                      "{\"input_tokens\":99999}}"),
                  0);
    S2A_CHECK_INT(u.input, 472);
    /* Ignored events are not parsed: a malformed ping is simply skipped. */
    S2A_CHECK_INT(sse(&u, "ping", "{{{{"), 0);
}

static apr_int64_t delta_output(const char *figure)
{
    s2a_usage u;
    const char *d = apr_pstrcat(
        pool, "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":", figure, "}}", NULL);

    memset(&u, 0, sizeof(u));
    u.output = 77;
    sse(&u, "message_delta", d);
    return u.output;
}

/* A count the usage object lacks is absent: its span has no text, not even
 * an end to compute (UBSan: no offset may be added to its NULL). */
static void test_absent_counts(void)
{
    s2a_usage u;

    memset(&u, 0, sizeof(u));
    u.input = 5;
    S2A_CHECK_INT(sse(&u, "message_delta", "{\"usage\":{\"output_tokens\":3}}"), 1);
    S2A_CHECK_INT(u.output, 3);
    S2A_CHECK_INT(u.input, 5);
    S2A_CHECK_INT(u.cache_creation, 0);
    S2A_CHECK_INT(u.cache_read, 0);
}

static void test_counts(void)
{
    s2a_usage u;

    /* Integers only, none negative; a rejected figure is absent, the old value stays. */
    S2A_CHECK_INT(delta_output("0"), 0);
    S2A_CHECK_INT(delta_output("-0"), 0);
    S2A_CHECK_INT(delta_output("1234567"), 1234567);
    S2A_CHECK_INT(delta_output("1e3"), 77);
    S2A_CHECK_INT(delta_output("1E3"), 77);
    S2A_CHECK_INT(delta_output("10.0"), 77);
    S2A_CHECK_INT(delta_output("-1"), 77);
    S2A_CHECK_INT(delta_output("-9223372036854775809"), 77);
    S2A_CHECK_INT(delta_output("true"), 77);
    S2A_CHECK_INT(delta_output("{}"), 77);
    /* Too large for 64 bits: saturated. */
    S2A_CHECK_INT(delta_output("9223372036854775806"), APR_INT64_MAX - 1);
    S2A_CHECK_INT(delta_output("9223372036854775807"), APR_INT64_MAX);
    S2A_CHECK_INT(delta_output("9223372036854775808"), APR_INT64_MAX);
    S2A_CHECK_INT(delta_output("18446744073709551616"), APR_INT64_MAX);
    S2A_CHECK_INT(delta_output("99999999999999999999999999999"), APR_INT64_MAX);
    /* Not JSON numbers at all: the whole event is malformed. */
    S2A_CHECK_INT(delta_output("00"), 77);
    S2A_CHECK_INT(delta_output("5."), 77);
    S2A_CHECK_INT(delta_output("-.5"), 77);

    /* Keys are compared decoded; a repeated key counts with its last value. */
    memset(&u, 0, sizeof(u));
    S2A_CHECK_INT(sse(&u, "message_start",
                      "{\"type\":\"message_start\",\"message\":{\"usage\":{"
                      "\"inp\\u0075t_tokens\":11,\"output_tokens\":3,\"output_tokens\":4,"
                      "\"cache_creation\":{\"ephemeral_1h_input_tokens\":9},"
                      "\"cache_creation\":{\"ephemeral_5m_input_tokens\":2}}}}"),
                  1);
    S2A_CHECK_INT(u.input, 11);
    S2A_CHECK_INT(u.output, 4);
    S2A_CHECK_INT(u.cache_creation, 2);
    S2A_CHECK_INT(u.cache_1h, 0);

    /* Everything inside message, usage and delta is validated; a member nobody reads is
       only checked for balance. */
    memset(&u, 0, sizeof(u));
    S2A_CHECK_INT(sse(&u, "message_start",
                      "{\"type\":\"message_start\",\"message\":{\"content\":[01],"
                      "\"usage\":{\"input_tokens\":5}}}"),
                  0);
    S2A_CHECK_INT(sse(&u, "message_delta",
                      "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":tru},"
                      "\"usage\":{\"output_tokens\":5}}"),
                  0);
    S2A_CHECK_INT(sse(&u, "message_delta",
                      "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5,\"x\":[1 2]}}"),
                  0);
    S2A_CHECK_INT(sse(&u, "message_delta",
                      "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                      "\"context\":{\"applied\":[01]},\"usage\":{\"output_tokens\":5}}"),
                  1);
    S2A_CHECK_INT(sse(&u, "message_delta",
                      "{\"type\":\"message_delta\",\"context\":{\"applied\":[},"
                      "\"usage\":{\"output_tokens\":6}}"),
                  0);
    S2A_CHECK_INT(u.output, 5);

    /* An unnamed event's type is compared decoded too. */
    memset(&u, 0, sizeof(u));
    S2A_CHECK_INT(sse(&u, "",
                      "{\"type\":\"message\\u005fdelta\",\"note\":\"message_delta\","
                      "\"usage\":{\"output_tokens\":8}}"),
                  1);
    S2A_CHECK_INT(u.output, 8);
}

static const char BODY[] =
    "{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-20250514\",\"content\":[{\"type\":\"text\","
    "\"text\":\"Hi! \\\"quoted\\\" {braces} \\u00e9\"},{\"type\":\"tool_use\",\"id\":\"t1\","
    "\"name\":\"x\",\"input\":{\"a\":[1,2,{\"b\":[[[[{\"c\":null}]]]]}]}}],"
    "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":2095,"
    "\"cache_creation_input_tokens\":600,\"cache_read_input_tokens\":1800,"
    "\"cache_creation\":{\"ephemeral_5m_input_tokens\":200,\"ephemeral_1h_input_tokens\":400},"
    "\"output_tokens\":503,\"service_tier\":\"standard\"}}\n";

static int body_in_chunks(const char *body, apr_size_t len, apr_size_t chunk, s2a_usage *u,
                          const char **model)
{
    apr_pool_t *sub;
    s2a_usage_json *j;
    apr_size_t off;
    int rc;

    apr_pool_create(&sub, pool);
    j = s2a_usage_json_create(sub);
    for (off = 0; off < len; off += chunk) {
        s2a_usage_json_feed(j, body + off, off + chunk > len ? len - off : chunk);
    }
    rc = s2a_usage_json_finish(j, u, model);
    if (model && *model) {
        *model = apr_pstrdup(pool, *model);
    }
    apr_pool_destroy(sub);
    return rc;
}

static void test_json_body(void)
{
    apr_size_t len = strlen(BODY), chunk;
    s2a_usage u;
    const char *model = NULL;
    int wrong = 0;

    S2A_CHECK_INT(body_in_chunks(BODY, len, len, &u, &model), 1);
    S2A_CHECK_INT(u.input, 2095);
    S2A_CHECK_INT(u.output, 503);
    S2A_CHECK_INT(u.cache_creation, 600);
    S2A_CHECK_INT(u.cache_1h, 400);
    S2A_CHECK_INT(u.cache_read, 1800);
    S2A_CHECK_INT(u.seen_start, 1);
    S2A_CHECK_INT(u.seen_delta, 0);
    S2A_CHECK_STR(model, "claude-sonnet-4-20250514");

    for (chunk = 1; chunk <= len; chunk++) {
        s2a_usage v;
        model = NULL;
        if (body_in_chunks(BODY, len, chunk, &v, &model) != 1 || v.input != u.input ||
            v.output != u.output || v.cache_creation != u.cache_creation ||
            v.cache_1h != u.cache_1h || v.cache_read != u.cache_read || !model ||
            strcmp(model, "claude-sonnet-4-20250514") != 0) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);

    /* Every truncation of the body is incomplete. */
    wrong = 0;
    for (chunk = 0; chunk + 1 < len; chunk++) {
        s2a_usage v;
        if (body_in_chunks(BODY, chunk, 7, &v, NULL) != 0 || v.output != 0) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);

    /* A long answer (tool input and text far larger than a read) in 8 KB pieces. */
    {
        apr_size_t big = 3 * 1024 * 1024, at;
        const char *head = "{\"model\":\"claude-\\u0073onnet\",\"content\":[{\"type\":\"text\","
                           "\"text\":\"";
        const char *tail = "\"}],\"usage\":{\"input_tokens\":7,\"output_tokens\":65000}}";
        char *doc = apr_palloc(pool, big + 200);
        at = strlen(head);
        memcpy(doc, head, at);
        while (at < big) {
            memcpy(doc + at, "ab \\\" {[", 8);
            at += 8;
        }
        memcpy(doc + at, tail, strlen(tail));
        at += strlen(tail);
        model = NULL;
        S2A_CHECK_INT(body_in_chunks(doc, at, 8192, &u, &model), 1);
        S2A_CHECK_INT(u.input, 7);
        S2A_CHECK_INT(u.output, 65000);
        S2A_CHECK_STR(model, "claude-sonnet");
        S2A_CHECK_INT(body_in_chunks(doc, at - 1, 8192, &u, NULL), 0);
    }

    /* Data after the document, invalid JSON, no usage, not an object. */
    S2A_CHECK_INT(body_in_chunks("{\"usage\":{\"input_tokens\":1}} x", 31, 5, &u, NULL), 0);
    S2A_CHECK_INT(body_in_chunks("{\"usage\":{\"input_tokens\":1},}", 29, 5, &u, NULL), 0);
    S2A_CHECK_INT(body_in_chunks("{\"model\":\"m\"}", 13, 3, &u, &model), 0);
    S2A_CHECK_STR(model, "m");
    S2A_CHECK_INT(body_in_chunks("[{\"usage\":{}}]", 14, 3, &u, &model), 0);
    S2A_CHECK(model == NULL);
    S2A_CHECK_INT(body_in_chunks("", 0, 1, &u, NULL), 0);
    /* An error body has no usage. */
    S2A_CHECK_INT(body_in_chunks("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}",
                                 52, 52, &u, NULL),
                  0);
}

static void test_json_abandoned(void)
{
    apr_pool_t *sub;
    s2a_usage_json *j;

    /* Never finished: everything lives in the pool (the leak check under valgrind is what
       verifies this). */
    apr_pool_create(&sub, pool);
    j = s2a_usage_json_create(sub);
    s2a_usage_json_feed(j, BODY, 100);
    apr_pool_destroy(sub);

    /* Complete but never finished. */
    apr_pool_create(&sub, pool);
    j = s2a_usage_json_create(sub);
    s2a_usage_json_feed(j, BODY, strlen(BODY));
    apr_pool_destroy(sub);
}

/* The server tools' uses: cumulative in message_delta, whole in a JSON answer; a bad
 * count is absent, never a partial figure. */
static void test_server_tools(void)
{
    static const char json[] =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"usage\":{\"input_tokens\":10,"
        "\"output_tokens\":5,\"server_tool_use\":{\"web_search_requests\":3,"
        "\"web_fetch_requests\":2}}}";
    s2a_usage u;
    s2a_usage_json *j;

    memset(&u, 0, sizeof(u));
    S2A_CHECK_INT(sse(&u, "message_start", START), 1);
    S2A_CHECK_INT(u.web_search, 0);
    S2A_CHECK_INT(sse(&u, "message_delta",
                      "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":40,"
                      "\"server_tool_use\":{\"web_search_requests\":1}}}"),
                  1);
    S2A_CHECK_INT(u.web_search, 1);
    S2A_CHECK_INT(sse(&u, "message_delta",
                      "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":90,"
                      "\"server_tool_use\":{\"web_search_requests\":2,"
                      "\"web_fetch_requests\":1}}}"),
                  1);
    S2A_CHECK(u.web_search == 2 && u.web_fetch == 1 && u.output == 90);
    /* not a count: left as it was */
    sse(&u, "message_delta",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":91,"
        "\"server_tool_use\":{\"web_search_requests\":1.5,\"web_fetch_requests\":-1}}}");
    S2A_CHECK(u.web_search == 2 && u.web_fetch == 1 && u.output == 91);
    /* not an object: the whole event is one the scanner takes, the tools absent */
    sse(&u, "message_delta",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":92,"
        "\"server_tool_use\":7}}");
    S2A_CHECK(u.web_search == 2 && u.output == 92);
    j = s2a_usage_json_create(pool);
    s2a_usage_json_feed(j, json, strlen(json));
    S2A_CHECK_INT(s2a_usage_json_finish(j, &u, NULL), 1);
    S2A_CHECK(u.web_search == 3 && u.web_fetch == 2 && u.input == 10);
}

/* One usage object read on its own, as a whole answer's is. */
static void test_read_object(void)
{
    static const char *const keys[] = {"usage"};
    static const char body[] =
        "{\"usage\":{\"input_tokens\":12,\"output_tokens\":7,"
        "\"cache_read_input_tokens\":100,\"cache_creation\":{\"ephemeral_5m_input_tokens\":3,"
        "\"ephemeral_1h_input_tokens\":4}}}";
    s2a_json_span v;
    s2a_usage u;
    const char *err;

    S2A_CHECK_INT(s2a_json_scan_object(pool, body, strlen(body), keys, 1, &v, &err), 0);
    S2A_CHECK_INT(s2a_usage_read(&u, &v), 1);
    S2A_CHECK(u.input == 12 && u.output == 7 && u.cache_read == 100);
    S2A_CHECK(u.cache_creation == 7 && u.cache_1h == 4 && u.seen_start && !u.seen_delta);
    v.type = S2A_JSON_NONE;
    S2A_CHECK_INT(s2a_usage_read(&u, &v), 0);
    S2A_CHECK(u.input == 0 && u.output == 0 && !u.seen_start);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_stream();
    test_split();
    test_delta_with_input();
    test_unnamed_and_slices();
    test_output_estimate();
    test_malformed();
    test_absent_counts();
    test_counts();
    test_json_body();
    test_json_abandoned();
    test_server_tools();
    test_read_object();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_usage");
}
