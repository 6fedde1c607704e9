/* Bedrock's event-stream answer as the Anthropic stream it carries: frames
 * built here as AWS encodes them (prelude, headers, payload, CRCs), read
 * whole and split at every byte; exceptions, corrupt and cut streams. */
#include <stdio.h>

#include <apr_base64.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <zlib.h>

#include "s2a_eventstream.h"
#include "s2a_test.h"

static apr_pool_t *pool;

#include "s2a_test_frames.h"

static const char *const events[] = {
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_bdrk_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],"
    "\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}",
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello \\u00e9\"}}",
    "{\"type\":\"content_block_stop\",\"index\":0}",
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
    "\"usage\":{\"output_tokens\":7}}",
    "{\"type\":\"message_stop\",\"amazon-bedrock-invocationMetrics\":{\"inputTokenCount\":12,"
    "\"outputTokenCount\":7}}"};
#define NEVENTS (sizeof(events) / sizeof(events[0]))

static s2a_buf stream_of_events(void)
{
    s2a_buf s;
    size_t i;
    s2a_buf_init(&s, pool, 4096);
    for (i = 0; i < NEVENTS; i++) {
        chunk(pool, &s, events[i]);
    }
    return s;
}

static char *expected_sse(void)
{
    static const char *const names[] = {"message_start",       "content_block_start",
                                        "content_block_delta", "content_block_stop",
                                        "message_delta",       "message_stop"};
    char *out = "";
    size_t i;
    for (i = 0; i < NEVENTS; i++) {
        out = apr_pstrcat(pool, out, "event: ", names[i], "\ndata: ", events[i], "\n\n", NULL);
    }
    return out;
}

/* What the reader writes for stream[0..n) fed in pieces of `step` (0:
 * whole), and its end. */
static char *read_all(const char *s, apr_size_t n, apr_size_t step, int *rc)
{
    s2a_eventstream *es = s2a_eventstream_create(pool, 0);
    s2a_buf out;
    apr_size_t at;
    int r = 0;
    s2a_buf_init(&out, pool, 1024);
    for (at = 0; at < n; at += step ? step : n) {
        apr_size_t k = step && n - at > step ? step : n - at;
        r |= s2a_eventstream_feed(es, s + at, k, &out);
    }
    r |= s2a_eventstream_end(es, &out);
    *rc = r;
    s2a_buf_append(&out, "", 0);
    return out.data;
}

static void test_crc(void)
{
    /* the standard check value, and a continued computation */
    S2A_CHECK_INT(s2a_crc32(0, "123456789", 9), 0xCBF43926u);
    S2A_CHECK_INT(s2a_crc32(s2a_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
    S2A_CHECK_INT(s2a_crc32(0, "", 0), 0);
    /* the short runs' tables and zlib agree at every length, split anywhere */
    {
        static unsigned char bytes[2100];
        apr_size_t n, cut;
        unsigned seed = 11;
        int wrong = 0;

        for (n = 0; n < sizeof(bytes); n++) {
            seed = seed * 1103515245u + 12345u;
            bytes[n] = (unsigned char)(seed >> 16);
        }
        for (n = 0; n <= sizeof(bytes); n += n < 64 ? 1 : 37) {
            apr_uint32_t whole = (apr_uint32_t)crc32_z(0, bytes, n);
            wrong += s2a_crc32(0, bytes, n) != whole;
            cut = n / 3;
            wrong += s2a_crc32(s2a_crc32(0, bytes, cut), bytes + cut, n - cut) != whole;
        }
        S2A_CHECK_INT(wrong, 0);
    }
}

static void test_stream(void)
{
    s2a_buf s = stream_of_events();
    const char *want = expected_sse();
    apr_size_t step;
    int rc, wrong = 0;

    S2A_CHECK_STR(read_all(s.data, s.len, 0, &rc), want);
    S2A_CHECK_INT(rc, 0);
    for (step = 1; step <= s.len; step++) {
        const char *got = read_all(s.data, s.len, step, &rc);
        wrong += strcmp(got, want) != 0 || rc != 0;
    }
    S2A_CHECK_INT(wrong, 0);
    /* an event of another kind (no chunk) carries nothing */
    {
        s2a_buf h, t;
        s2a_buf_init(&h, pool, 64);
        s2a_buf_init(&t, pool, 256);
        header(&h, ":event-type", "metadata");
        header(&h, ":message-type", "event");
        frame(pool, &t, &h, "{}");
        chunk(pool, &t, events[0]);
        S2A_CHECK(strncmp(read_all(t.data, t.len, 0, &rc), "event: message_start\ndata: ", 27) ==
                  0);
        S2A_CHECK_INT(rc, 0);
    }
}

static void test_exception(void)
{
    s2a_buf s = stream_of_events(), h;
    s2a_bedrock_error e;
    const char *got;
    int rc;

    s.len = 0;
    chunk(pool, &s, events[0]);
    s2a_buf_init(&h, pool, 64);
    header(&h, ":exception-type", "throttlingException");
    header(&h, ":content-type", "application/json");
    header(&h, ":message-type", "exception");
    frame(pool, &s, &h, "{\"message\":\"Too many tokens, please wait\"}");
    chunk(pool, &s, events[1]); /* after the end: ignored */
    got = read_all(s.data, s.len, 0, &rc);
    S2A_CHECK_INT(rc, -1);
    S2A_CHECK(strstr(got,
                     "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                     "\"rate_limit_error\",\"message\":\"Too many tokens, please wait\"}}\n\n") !=
              NULL);
    S2A_CHECK(strstr(got, "content_block_start") == NULL);

    s2a_bedrock_exception("ThrottlingException", 19, &e);
    S2A_CHECK_INT(e.status, 429);
    S2A_CHECK_STR(e.type, "rate_limit_error");
    s2a_bedrock_exception("ServiceUnavailableException:http://internal.amazon.com/coral/", 61, &e);
    S2A_CHECK_INT(e.status, 529);
    S2A_CHECK_STR(e.type, "overloaded_error");
    s2a_bedrock_exception("modelNotReadyException", 22, &e);
    S2A_CHECK_INT(e.status, 529);
    s2a_bedrock_exception("AccessDeniedException", 21, &e);
    S2A_CHECK_INT(e.status, 403);
    s2a_bedrock_exception("validationException", 19, &e);
    S2A_CHECK_INT(e.status, 400);
    s2a_bedrock_exception("ModelTimeoutException", 21, &e);
    S2A_CHECK_INT(e.status, 504);
    s2a_bedrock_exception("SomethingNew", 12, &e);
    S2A_CHECK_INT(e.status, 500);
    s2a_bedrock_exception("", 0, &e);
    S2A_CHECK_INT(e.status, 500);
    /* a prefix or a longer name is not the name */
    s2a_bedrock_exception("Throttling", 10, &e);
    S2A_CHECK_INT(e.status, 500);
}

/* Corrupt, impossible and cut streams end with an error event, once; what
 * came before them went out. */
static void test_broken(void)
{
    s2a_buf s = stream_of_events();
    apr_size_t first = 0, i;
    const char *got;
    int rc, wrong = 0;

    /* the first message's length */
    first = (apr_size_t)((unsigned char)s.data[2] << 8 | (unsigned char)s.data[3]);
    /* any single flipped bit is caught by a CRC or the lengths */
    for (i = 0; i < s.len; i++) {
        char *copy = apr_pmemdup(pool, s.data, s.len);
        copy[i] ^= 0x10;
        got = read_all(copy, s.len, 0, &rc);
        /* one error event, the last record */
        wrong += rc != -1 || !strstr(got, "event: error\ndata: ") ||
                 strstr(strstr(got, "event: error") + 1, "event: ") != NULL;
        /* the messages before the damaged one went out whole */
        if (i >= first && strncmp(got, "event: message_start\n", 21) != 0) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);
    /* cut anywhere inside a message: the end says so */
    for (i = 1; i < first; i++) {
        got = read_all(s.data, i, 0, &rc);
        wrong += rc != -1 || strstr(got, "ended inside a message") == NULL;
    }
    S2A_CHECK_INT(wrong, 0);
    /* larger than the reader's cap */
    {
        s2a_eventstream *es = s2a_eventstream_create(pool, 64);
        s2a_buf out;
        s2a_buf_init(&out, pool, 256);
        S2A_CHECK_INT(s2a_eventstream_feed(es, s.data, s.len, &out), -1);
        S2A_CHECK(strstr(s2a_eventstream_broken(es), "larger") != NULL);
        S2A_CHECK_INT(s2a_eventstream_feed(es, s.data, s.len, &out), -1);
        S2A_CHECK_INT(s2a_eventstream_messages(es), 0);
    }
    /* bytes that are not base64, or not an Anthropic event */
    {
        s2a_buf h, t;
        s2a_buf_init(&h, pool, 64);
        header(&h, ":event-type", "chunk");
        header(&h, ":message-type", "event");
        s2a_buf_init(&t, pool, 256);
        frame(pool, &t, &h, "{\"bytes\":\"!!!!\"}");
        got = read_all(t.data, t.len, 0, &rc);
        S2A_CHECK(rc == -1 && strstr(got, "not base64"));
        t.len = 0;
        frame(pool, &t, &h, "{\"bytes\":\"eyJhIjoxfQ==\"}"); /* {"a":1} */
        got = read_all(t.data, t.len, 0, &rc);
        S2A_CHECK(rc == -1 && strstr(got, "not an Anthropic event"));
        t.len = 0;
        frame(pool, &t, &h, "[1]");
        got = read_all(t.data, t.len, 0, &rc);
        S2A_CHECK(rc == -1 && strstr(got, "without its bytes"));
    }
}

/* A chunk whose payload is `payload` (its bytes written by the caller). */
static const char *payload_read(const char *payload, int *rc)
{
    s2a_buf h, s;
    s2a_buf_init(&h, pool, 64);
    s2a_buf_init(&s, pool, 256);
    header(&h, ":event-type", "chunk");
    header(&h, ":message-type", "event");
    frame(pool, &s, &h, payload);
    return read_all(s.data, s.len, 0, rc);
}

/* The payload's other spellings: keys in another order, spaces, an
 * escaped '/', base64 without its padding; and what is not base64. Only
 * the bytes are read: what follows them in the payload is not judged. */
static void test_payloads(void)
{
    /* {"type":"ping"} and {"type":"message_stop"} */
    static const char ping_sse[] = "event: ping\ndata: {\"type\":\"ping\"}\n\n";
    static const char *const same[] = {
        "{\"bytes\":\"eyJ0eXBlIjoicGluZyJ9\",\"p\":\"ab\"}",
        "{\"p\":\"ab\",\"bytes\":\"eyJ0eXBlIjoicGluZyJ9\"}",
        "{ \"bytes\" : \"eyJ0eXBlIjoicGluZyJ9\" }",
        "{\"bytes\":\"eyJ0eXBlIjoicGluZyJ9\"}",
    };
    static const char *const refused[] = {
        "{\"bytes\":\"eyJ0eXBlIjoicGluZyJ9*\"}",            /* not a base64 digit */
        "{\"bytes\":\"eyJ0eXBlIjoicGluZyJ9e\"}",            /* one digit over */
        "{\"bytes\":\"=eyJ0eXBlIjoicGluZyJ9\"}",            /* padding first */
        "{\"bytes\":\"e30=\"}",                             /* {}: no type */
        "{\"bytes\":\"eyJ0eXBlIjoiUElORyJ9\"}",             /* {"type":"PING"} */
        "{\"bytes\":\"eyJ0eXBlIjoicGluZyIsIngiOiIBIn0=\"}", /* a control character */
        "{\"bites\":\"eyJ0eXBlIjoicGluZyJ9\"}",
        "[]",
        "",
    };
    size_t i;
    int rc;
    for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        S2A_CHECK_STR(payload_read(same[i], &rc), ping_sse);
        S2A_CHECK_INT(rc, 0);
    }
    /* "\/" is a '/' in JSON; padding may be left out */
    S2A_CHECK_STR(
        payload_read("{\"bytes\":\"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIiwieCI6Ij8\\/In0=\"}", &rc),
        "event: message_stop\ndata: {\"type\":\"message_stop\",\"x\":\"?\?\"}\n\n");
    S2A_CHECK_STR(payload_read("{\"bytes\":\"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0\"}", &rc),
                  "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    /* line breaks between the JSON's tokens are taken out: they would end the record */
    S2A_CHECK_STR(payload_read("{\"bytes\":\"eyJ0eXBlIjoicGluZyIsDQogIngiOgoxfQ==\"}", &rc),
                  "event: ping\ndata: {\"type\":\"ping\", \"x\":1}\n\n");
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *out = payload_read(refused[i], &rc);
        S2A_CHECK_INT(rc, -1);
        S2A_CHECK(strstr(out, "event: error") != NULL);
    }
}

/* Base64 of every length from 20 to 400 digits, padded and not, its text using every
 * printable character; then one digit at a time, at each place of a long one, replaced by
 * what is not a digit: the decoding takes sixteen digits a step where the CPU can. */
static void test_base64_lengths(void)
{
    static const char bad[] = "*-_=:@[`{ \x01\x7f\x80\xff";
    char text[320], b64[460], payload[520];
    apr_size_t fill, at, k;
    int rc, wrong = 0, places = 0;

    for (fill = 0; fill <= 280; fill++) {
        apr_size_t i, n = (apr_size_t)snprintf(text, sizeof(text), "{\"type\":\"ping\",\"x\":\"");
        const char *sse;

        for (i = 0; i < fill; i++) {
            char c = (char)(' ' + (fill * 7 + i * 13) % 95);
            text[n++] = c == '"' || c == '\\' ? 'q' : c;
        }
        memcpy(text + n, "\"}", 3);
        apr_base64_encode(b64, text, (int)strlen(text));
        sse = apr_pstrcat(pool, "event: ping\ndata: ", text, "\n\n", NULL);
        snprintf(payload, sizeof(payload), "{\"bytes\":\"%s\"}", b64);
        if (strcmp(payload_read(payload, &rc), sse) != 0 || rc != 0) {
            wrong++;
        }
        b64[strcspn(b64, "=")] = '\0';
        snprintf(payload, sizeof(payload), "{\"bytes\":\"%s\"}", b64);
        if (strcmp(payload_read(payload, &rc), sse) != 0 || rc != 0) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);

    snprintf(text, sizeof(text), "{\"type\":\"ping\",\"x\":\"%s%s\"}",
             "0123456789abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ+/?>~!");
    apr_base64_encode(b64, text, (int)strlen(text));
    for (at = 0; b64[at] && b64[at] != '='; at++) {
        for (k = 0; k < sizeof(bad) - 1; k++) {
            const char *out;

            if (bad[k] == '=' && !b64[at + 1]) {
                continue; /* padding there is base64 */
            }
            snprintf(payload, sizeof(payload), "{\"bytes\":\"%.*s%c%s\"}", (int)at, b64, bad[k],
                     b64 + at + 1);
            out = payload_read(payload, &rc);
            if (rc != -1 || !strstr(out, "not base64")) {
                wrong++;
            }
        }
        places++;
    }
    S2A_CHECK_INT(wrong, 0);
    S2A_CHECK(places > 100);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_crc();
    test_stream();
    test_exception();
    test_broken();
    test_payloads();
    test_base64_lengths();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("eventstream");
}
