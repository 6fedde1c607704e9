/* Unit tests for the incremental event-stream parser and the message_start model rewrite. */
#include "s2a_json.h"
#include "s2a_sse.h"
#include "s2a_test.h"

#include <stdlib.h>

#include <apr_general.h>
#include <apr_strings.h>

/* A streamed answer as the upstream sends it, one event per row. */
static const char *const STREAM[][2] = {
    {"message_start",
     "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Vx3nQk8UY6Lz2TbWfH9pJc\","
     "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
     "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,"
     "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":13427,\"output_tokens\":1,"
     "\"service_tier\":\"standard\"}}}"},
    {"content_block_start",
     "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
     "\"text\":\"\"}}"},
    {"ping", "{\"type\": \"ping\"}"},
    {"content_block_delta",
     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
     "\"text\":\"Here is\"}}"},
    {"content_block_delta",
     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
     "\"text\":\" the fix:\\n\\n```c\\n\"}}"},
    {"content_block_delta",
     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
     "\"text\":\"printf(\\\"data: %s\\\\r\\\\n\\\", s);\"}}"},
    {"content_block_delta",
     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
     "\"text\":\"\\n```\\nevent: none:\"}}"},
    {"content_block_delta",
     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
     "\"text\":\" \\u00e9t\\u00e9 \xf0\x9f\x98\x80\"}}"},
    {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"},
    {"message_delta",
     "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
     "\"usage\":{\"output_tokens\":15}}"},
    {"message_stop", "{\"type\":\"message_stop\"}"},
};
#define NSTREAM (sizeof(STREAM) / sizeof(STREAM[0]))

/* What the callback saw, flattened so that runs can be compared as strings. */
typedef struct {
    char log[16384];
    apr_size_t len;
    int calls;
    int bad_views;
} recorder;

static void on_event(void *baton, const char *event, apr_size_t event_len, const char *data,
                     apr_size_t data_len)
{
    recorder *r = baton;

    r->calls++;
    if (event[event_len] != '\0' || data[data_len] != '\0')
        r->bad_views++;
    if (r->len + event_len + data_len + 3 > sizeof(r->log))
        return;
    memcpy(r->log + r->len, event, event_len);
    r->len += event_len;
    r->log[r->len++] = '|';
    memcpy(r->log + r->len, data, data_len);
    r->len += data_len;
    r->log[r->len++] = '\n';
    r->log[r->len] = '\0';
}

static void feed_exact(s2a_sse *s, const char *buf, apr_size_t len)
{
    /* A buffer of exactly len bytes: reads past it are caught by the memory checkers. */
    char *copy = malloc(len ? len : 1);

    memcpy(copy, buf, len);
    s2a_sse_feed(s, copy, len);
    free(copy);
}

/* The stream text for STREAM with the given line ending, optionally with the noise a
 * server may add: comments, ids, retry hints. */
static char *build_stream(apr_pool_t *p, const char *eol, int noise, apr_size_t *len)
{
    char *t = "";
    apr_size_t i;

    for (i = 0; i < NSTREAM; i++) {
        if (noise)
            t = apr_pstrcat(p, t, ": keep-alive", eol, "id: ", apr_itoa(p, (int)i), eol, NULL);
        t = apr_pstrcat(p, t, "event: ", STREAM[i][0], eol, NULL);
        if (noise)
            t = apr_pstrcat(p, t, "retry: 3000", eol, ":", eol, NULL);
        t = apr_pstrcat(p, t, "data: ", STREAM[i][1], eol, eol, NULL);
    }
    *len = strlen(t);
    return t;
}

static const char *expected_log(apr_pool_t *p)
{
    const char *t = "";
    apr_size_t i;

    for (i = 0; i < NSTREAM; i++)
        t = apr_pstrcat(p, t, STREAM[i][0], "|", STREAM[i][1], "\n", NULL);
    return t;
}

typedef struct {
    int wrong;          /* runs whose events differed from the expectation */
    apr_size_t events;  /* from the last run */
    apr_size_t dropped; /* from the last run */
} outcome;

static void check_run(s2a_sse *s, recorder *r, const char *want, apr_size_t want_events,
                      apr_size_t want_dropped, outcome *o)
{
    if (strcmp(r->log, want) != 0 || r->bad_views || s2a_sse_events(s) != want_events ||
        s2a_sse_dropped(s) != want_dropped)
        o->wrong++;
    o->events = s2a_sse_events(s);
    o->dropped = s2a_sse_dropped(s);
}

/* The event filter run_all sets on its parsers; NULL for none. */
static const char *const *run_only;

/* Parse text whole, one byte at a time, at every single split point and in chunks of every
 * size up to 64; every run must give want (the flattened events) and the counters. */
static int run_all(apr_pool_t *parent, const char *text, apr_size_t len, apr_size_t max_event,
                   const char *want, apr_size_t want_events, apr_size_t want_dropped)
{
    outcome o = {0, 0, 0};
    apr_size_t k, i;
    int mode;

    for (mode = 0; mode < 3; mode++) {
        apr_size_t runs = mode == 0 ? 1 : mode == 1 ? len + 1 : 64;

        for (k = 0; k < runs; k++) {
            apr_pool_t *p;
            recorder *r = calloc(1, sizeof(*r));
            s2a_sse *s;

            apr_pool_create(&p, parent);
            s = s2a_sse_create(p, max_event, on_event, r);
            if (run_only)
                s2a_sse_only(s, run_only);
            if (mode == 0) {
                feed_exact(s, text, len);
            } else if (mode == 1) {
                feed_exact(s, text, k);
                feed_exact(s, text + k, len - k);
            } else {
                for (i = 0; i < len; i += k + 1)
                    feed_exact(s, text + i, len - i < k + 1 ? len - i : k + 1);
            }
            check_run(s, r, want, want_events, want_dropped, &o);
            apr_pool_destroy(p);
            free(r);
        }
    }
    if (o.wrong)
        fprintf(stderr, "%d runs differ for: %.60s\n", o.wrong, text);
    return o.wrong;
}

static int run_str(apr_pool_t *p, const char *text, const char *want, apr_size_t want_events)
{
    return run_all(p, text, strlen(text), 4096, want, want_events, 0);
}

static void test_stream(apr_pool_t *p)
{
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    const char *want = expected_log(p);
    apr_size_t i, len;
    int noise;

    for (i = 0; i < 3; i++) {
        for (noise = 0; noise < 2; noise++) {
            char *t = build_stream(p, eols[i], noise, &len);
            S2A_CHECK_INT(run_all(p, t, len, 4096, want, NSTREAM, 0), 0);
        }
    }

    /* One direct look at the first event, independent of the flattened log. */
    {
        recorder *r = calloc(1, sizeof(*r));
        s2a_sse *s = s2a_sse_create(p, 4096, on_event, r);
        char *t = build_stream(p, "\r\n", 0, &len);
        const char *head = "message_start|{\"type\":\"message_start\",";
        const char *tail = "\nmessage_stop|{\"type\":\"message_stop\"}\n";

        s2a_sse_feed(s, t, len);
        S2A_CHECK_INT(r->calls, 11);
        S2A_CHECK(strncmp(r->log, head, strlen(head)) == 0);
        S2A_CHECK(strstr(r->log, "\nping|{\"type\": \"ping\"}\n") != NULL);
        S2A_CHECK(strcmp(r->log + r->len - strlen(tail), tail) == 0);
        free(r);
    }
}

static void test_fields(apr_pool_t *p)
{
    /* Multi-line data joins with \n whatever the line endings; one leading space is stripped. */
    S2A_CHECK_INT(run_str(p, "data: a\ndata:b\ndata\ndata:  c\n\n", "message|a\nb\n\n c\n", 1), 0);
    S2A_CHECK_INT(
        run_str(p, "data: a\r\ndata:b\r\ndata\r\ndata:  c\r\n\r\n", "message|a\nb\n\n c\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "data: a\rdata:b\rdata\rdata:  c\r\r", "message|a\nb\n\n c\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "data: a\r\ndata: b\rdata: c\n\r\n", "message|a\nb\nc\n", 1), 0);
    /* \r\r is a line end then a blank line; \n\r too. */
    S2A_CHECK_INT(
        run_str(p, "data: a\r\rdata: b\n\rdata: c\r\n\n", "message|a\nmessage|b\nmessage|c\n", 3),
        0);
    /* Comments, unknown fields, case-sensitive names, only the first colon splits. */
    S2A_CHECK_INT(run_str(p,
                          ":comment\n: data: no\nid: 7\nretry: 10\nData: x\ndatax: y\ndat: z\n"
                          "data: v: w\n:\n\n",
                          "message|v: w\n", 1),
                  0);
    /* An event with no data line is not dispatched, and its name does not leak. */
    S2A_CHECK_INT(run_str(p, "event: lost\n\ndata: y\n\n", "message|y\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "event: lost\nid: 1\n\n\n\n", "", 0), 0);
    /* The last event name wins; an empty one means "message". */
    S2A_CHECK_INT(run_str(p, "event: a\nevent: b\ndata: d\n\n", "b|d\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "event: a\nevent:\ndata: d\n\n", "message|d\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "event\ndata: d\n\n", "message|d\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "event:  sp\ndata: d\n\n", " sp|d\n", 1), 0);
    /* A data line with no value still makes an event, with empty data. */
    S2A_CHECK_INT(run_str(p, "data\n\n", "message|\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "data:\n\n", "message|\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "data: \n\n", "message|\n", 1), 0);
    /* Field names longer than any known one are ignored. */
    S2A_CHECK_INT(run_str(p, "eventevent: x\ndatadatadata: y\ndata: d\n\n", "message|d\n", 1), 0);
    /* Nothing is dispatched before the blank line. */
    S2A_CHECK_INT(run_str(p, "event: x\ndata: tail\n", "", 0), 0);
    S2A_CHECK_INT(run_str(p, "\n\n\r\n\r", "", 0), 0);

    /* Bytes inside values are opaque, NUL included. */
    {
        static const char nul[] = "data: a\0b\n\n";
        recorder *r = calloc(1, sizeof(*r));
        s2a_sse *s = s2a_sse_create(p, 64, on_event, r);

        s2a_sse_feed(s, nul, sizeof(nul) - 1);
        S2A_CHECK_INT(r->calls, 1);
        S2A_CHECK_INT(r->len, strlen("message|") + 4);
        S2A_CHECK(memcmp(r->log, "message|a\0b\n", 12) == 0);
        free(r);
    }

    /* Without a callback, events are still counted. */
    {
        s2a_sse *s = s2a_sse_create(p, 64, NULL, NULL);
        s2a_sse_feed(s, "data: 1\n\ndata: 2\n\n", 18);
        S2A_CHECK_INT(s2a_sse_events(s), 2);
    }
}

static void test_oversized(apr_pool_t *p)
{
    char big[201], *t;
    const char *want;

    memset(big, 'x', 200);
    big[200] = '\0';

    /* A 200-byte event among small ones with a 64-byte cap: skipped and counted, the next
     * one parsed normally, however the bytes arrive. */
    t = apr_pstrcat(p, "event: a\ndata: 1\n\nevent: huge\ndata: ", big, "\n\n",
                    "event: b\ndata: 2\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "a|1\nb|2\n", 3, 1), 0);
    t = apr_pstrcat(p, "event: a\r\ndata: 1\r\n\r\nevent: huge\r\ndata: ", big, "\r\n\r\n",
                    "event: b\r\ndata: 2\r\n\r\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "a|1\nb|2\n", 3, 1), 0);

    /* The cap counts the joined data and the event name; exactly at the cap is fine. */
    want = apr_pstrcat(p, "message|", apr_pstrndup(p, big, 64), "\n", NULL);
    t = apr_pstrcat(p, "data: ", apr_pstrndup(p, big, 64), "\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, want, 1, 0), 0);
    t = apr_pstrcat(p, "data: ", apr_pstrndup(p, big, 65), "\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "", 1, 1), 0);
    want = apr_pstrcat(p, "message|", apr_pstrndup(p, big, 32), "\n", apr_pstrndup(p, big, 31),
                       "\n", NULL);
    t = apr_pstrcat(p, "data: ", apr_pstrndup(p, big, 32), "\ndata: ", apr_pstrndup(p, big, 31),
                    "\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, want, 1, 0), 0);
    t = apr_pstrcat(p, "data: ", apr_pstrndup(p, big, 32), "\ndata: ", apr_pstrndup(p, big, 32),
                    "\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "", 1, 1), 0);
    want = apr_pstrcat(p, "abcd|", apr_pstrndup(p, big, 60), "\n", NULL);
    t = apr_pstrcat(p, "event: abcd\ndata: ", apr_pstrndup(p, big, 60), "\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, want, 1, 0), 0);
    t = apr_pstrcat(p, "event: abcd\ndata: ", apr_pstrndup(p, big, 61), "\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "", 1, 1), 0);
    /* A huge event name is as bad as huge data. */
    t = apr_pstrcat(p, "event: ", big, "\ndata: 1\n\ndata: 2\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "message|2\n", 2, 1), 0);
    /* A later short "event:" line does not rescue an event that already overflowed. */
    t = apr_pstrcat(p, "event: ", big, "\nevent: ok\ndata: 1\n\ndata: 2\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "message|2\n", 2, 1), 0);
}

static void feed_str(s2a_sse *s, const char *text)
{
    s2a_sse_feed(s, text, strlen(text));
}

static void test_only(apr_pool_t *p)
{
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    static const char *const wanted[] = {"message_start", "message_delta", "error", NULL};
    const char *want = "";
    char big[201], *t;
    apr_size_t i, len;
    int noise;

    for (i = 0; i < NSTREAM; i++) {
        if (strcmp(STREAM[i][0], "message_start") == 0 ||
            strcmp(STREAM[i][0], "message_delta") == 0)
            want = apr_pstrcat(p, want, STREAM[i][0], "|", STREAM[i][1], "\n", NULL);
    }
    run_only = wanted;
    /* The answer stream: two events reported, all of them counted. */
    for (i = 0; i < 3; i++) {
        for (noise = 0; noise < 2; noise++) {
            t = build_stream(p, eols[i], noise, &len);
            S2A_CHECK_INT(run_all(p, t, len, 4096, want, NSTREAM, 0), 0);
        }
    }
    /* No name, or an empty one: always reported. An explicit "message" is a name. */
    S2A_CHECK_INT(run_str(p, "data: x\n\nevent:\ndata: y\n\nevent\ndata: z\n\n",
                          "message|x\nmessage|y\nmessage|z\n", 3),
                  0);
    S2A_CHECK_INT(run_str(p, "event: message\ndata: x\n\n", "", 1), 0);
    /* Names match exactly. */
    S2A_CHECK_INT(run_str(p,
                          "event: message_star\ndata: 1\n\nevent: message_startx\ndata: 2\n\n"
                          "event: Error\ndata: 3\n\nevent: error\ndata: 4\n\n",
                          "error|4\n", 4),
                  0);
    /* Data before the event line: kept, then judged by the final name. */
    S2A_CHECK_INT(run_str(p, "data: a\nevent: ping\ndata: b\n\n", "", 1), 0);
    S2A_CHECK_INT(
        run_str(p, "data: a\nevent: message_delta\ndata: b\n\n", "message_delta|a\nb\n", 1), 0);
    S2A_CHECK_INT(run_str(p, "data: a\nevent: message_delta\nevent: ping\n\n", "", 1), 0);
    /* A wanted name replacing an unwanted one before any data: reported in full. */
    S2A_CHECK_INT(run_str(p, "event: ping\nevent: error\ndata: a\ndata: b\n\n", "error|a\nb\n", 1),
                  0);
    /* Once a data line was not kept, the event is never reported half. */
    S2A_CHECK_INT(
        run_str(p, "event: ping\ndata: a\nevent: error\ndata: b\n\ndata: c\n\n", "message|c\n", 2),
        0);
    /* The filter is per event: the name of a skipped one does not leak. */
    S2A_CHECK_INT(run_str(p, "event: ping\ndata: a\n\ndata: b\n\n", "message|b\n", 2), 0);
    /* Unwanted data is not buffered, so it cannot overflow the cap. */
    memset(big, 'x', 200);
    big[200] = '\0';
    t = apr_pstrcat(p, "event: ping\ndata: ", big, "\ndata: ", big, "\n\nevent: error\ndata: e\n\n",
                    NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "error|e\n", 2, 0), 0);
    t = apr_pstrcat(p, "event: error\ndata: ", big, "\n\nevent: error\ndata: e\n\n", NULL);
    S2A_CHECK_INT(run_all(p, t, strlen(t), 64, "error|e\n", 2, 1), 0);
    run_only = NULL;

    /* The list is copied; NULL reports everything again. */
    {
        recorder *r = calloc(1, sizeof(*r));
        s2a_sse *s = s2a_sse_create(p, 4096, on_event, r);
        char name[] = "keep";
        const char *list[] = {name, NULL};

        s2a_sse_only(s, list);
        memcpy(name, "lose", 4);
        feed_str(s, "event: keep\ndata: 1\n\nevent: lose\ndata: 2\n\n");
        S2A_CHECK_STR(r->log, "keep|1\n");
        s2a_sse_only(s, NULL);
        feed_str(s, "event: lose\ndata: 3\n\n");
        S2A_CHECK_STR(r->log, "keep|1\nlose|3\n");
        /* An empty list wants no named event at all. */
        list[0] = NULL;
        s2a_sse_only(s, list);
        feed_str(s, "event: keep\ndata: 4\n\ndata: 5\n\n");
        S2A_CHECK_STR(r->log, "keep|1\nlose|3\nmessage|5\n");
        S2A_CHECK_INT(s2a_sse_events(s), 5);
        S2A_CHECK_INT(s2a_sse_dropped(s), 0);
        free(r);
    }
}

/* Many events through one parser: the buffers are reused, and the parser keeps working
 * after thousands of events of growing and shrinking sizes. */
static void test_reuse(apr_pool_t *p)
{
    recorder *r = calloc(1, sizeof(*r));
    s2a_sse *s = s2a_sse_create(p, 1000, on_event, r);
    char data[1200];
    int i, ok = 0;

    memset(data, 'd', sizeof(data));
    for (i = 0; i < 5000; i++) {
        int n = (i * 37) % 1200;
        char head[32];

        r->len = 0;
        r->log[0] = '\0';
        snprintf(head, sizeof(head), "event: e%d\ndata: ", i % 10);
        s2a_sse_feed(s, head, strlen(head));
        s2a_sse_feed(s, data, (apr_size_t)n);
        s2a_sse_feed(s, "\n\n", 2);
        if (n + 2 <= 1000 ? r->len == (apr_size_t)n + 4 && r->log[1] == (char)('0' + i % 10)
                          : r->len == 0)
            ok++;
    }
    S2A_CHECK_INT(ok, 5000);
    S2A_CHECK_INT(s2a_sse_events(s), 5000);
    S2A_CHECK(s2a_sse_dropped(s) > 0 && s2a_sse_dropped(s) < 5000);
    free(r);
}

static const char MESSAGE_START_DATA[] =
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Vx3nQk8UY6Lz2TbWfH9pJc\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
    "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":13427,\"output_tokens\":1,"
    "\"service_tier\":\"standard\"}}}";

static char *rewrite(apr_pool_t *p, const char *raw, const char *model, apr_size_t *len)
{
    return s2a_sse_rewrite_message_model(p, raw, strlen(raw), model, len);
}

static void test_rewrite(apr_pool_t *p)
{
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    apr_size_t i, len = 0;
    char *out;

    for (i = 0; i < 3; i++) {
        const char *e = eols[i];
        const char *raw =
            apr_pstrcat(p, "event: message_start", e, "data: ", MESSAGE_START_DATA, e, e, NULL);
        char *want =
            apr_pstrcat(p, "event: message_start", e, "data: ", MESSAGE_START_DATA, e, e, NULL);
        char *at = strstr(want, "claude-sonnet-4-5-20250929");

        /* Everything but the model value stays byte-identical. */
        want = apr_pstrcat(p, apr_pstrndup(p, want, (apr_size_t)(at - want)), "my-model",
                           at + strlen("claude-sonnet-4-5-20250929"), NULL);
        out = rewrite(p, raw, "my-model", &len);
        S2A_CHECK_STR(out, want);
        S2A_CHECK_INT(len, strlen(want));
    }

    /* The rewritten event parses back to the new model, quoted as needed. */
    {
        static const char *const keys[] = {"message"};
        const char *raw =
            apr_pstrcat(p, "event: message_start\ndata: ", MESSAGE_START_DATA, "\n\n", NULL);
        recorder *r = calloc(1, sizeof(*r));
        s2a_sse *s = s2a_sse_create(p, 4096, on_event, r);
        s2a_json_span msg, model;
        const char *err = NULL;
        char *data;

        out = rewrite(p, raw, "we\"ird\\name\n", &len);
        S2A_CHECK(out != NULL);
        s2a_sse_feed(s, out, len);
        S2A_CHECK_INT(r->calls, 1);
        data = strchr(r->log, '|') + 1;
        S2A_CHECK_INT(s2a_json_scan_object(p, data, strlen(data) - 1, keys, 1, &msg, &err), 0);
        S2A_CHECK_INT(s2a_json_object_get(&msg, "model", &model), 1);
        S2A_CHECK_STR(s2a_json_string_dup(p, &model), "we\"ird\\name\n");
        free(r);
    }

    /* Data without the space after the colon, no event line, a comment, trailing noise. */
    out = rewrite(p, ":c\ndata:{\"type\":\"message_start\",\"message\":{\"model\":\"a\"}}\n\n", "b",
                  &len);
    S2A_CHECK_STR(out, ":c\ndata:{\"type\":\"message_start\",\"message\":{\"model\":\"b\"}}\n\n");
    /* Only the message's own model changes, not nested or top-level look-alikes. */
    out = rewrite(p,
                  "data: {\"model\":\"top\",\"message\":{\"content\":[{\"model\":\"in\"}],"
                  "\"x\":\"\\\"model\\\":\\\"s\\\"\",\"model\":\"real\"}}\n\n",
                  "new", &len);
    S2A_CHECK_STR(out, "data: {\"model\":\"top\",\"message\":{\"content\":[{\"model\":\"in\"}],"
                       "\"x\":\"\\\"model\\\":\\\"s\\\"\",\"model\":\"new\"}}\n\n");

    /* Nothing to rewrite. */
    S2A_CHECK(rewrite(p,
                      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                      "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"model\"}}\n\n",
                      "x", &len) == NULL);
    S2A_CHECK(rewrite(p, "data: {\"model\":\"top\",\"message\":{\"id\":\"1\"}}\n\n", "x", &len) ==
              NULL);
    S2A_CHECK(rewrite(p, "data: {\"message\":{\"model\":null}}\n\n", "x", &len) == NULL);
    S2A_CHECK(rewrite(p, "data: {\"message\":\"{\\\"model\\\":\\\"a\\\"}\"}\n\n", "x", &len) ==
              NULL);
    S2A_CHECK(rewrite(p, "data: {\"message\":{\"model\":\"a\"}\n\n", "x", &len) == NULL);
    S2A_CHECK(rewrite(p, "data: {\"message\":\ndata: {\"model\":\"a\"}}\n\n", "x", &len) == NULL);
    S2A_CHECK(rewrite(p, "data: {\"message\":{\"model\":\"a\"}}\ndata\n\n", "x", &len) == NULL);
    S2A_CHECK(rewrite(p, "event: message_start\n\n", "x", &len) == NULL);
    S2A_CHECK(rewrite(p, "", "x", &len) == NULL);
    S2A_CHECK(rewrite(p, "data: {\"message\":{\"model\":\"a\"}}\n\n", NULL, &len) == NULL);
    S2A_CHECK(rewrite(p,
                      "data: {\"message\":{\"model\":\"a\"}}\ndata: {\"message\":{\"model\":\"b\"}}"
                      "\n\n",
                      "x", &len) == NULL);
    /* "datum:" and "datax" are not data lines. */
    S2A_CHECK(rewrite(p, "datum: {\"message\":{\"model\":\"a\"}}\n\n", "x", &len) == NULL);
    S2A_CHECK(rewrite(p, "datax{\"message\":{\"model\":\"a\"}}\n\n", "x", &len) == NULL);
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);

    test_stream(p);
    test_fields(p);
    test_oversized(p);
    test_only(p);
    test_reuse(p);
    test_rewrite(p);

    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_sse");
}
