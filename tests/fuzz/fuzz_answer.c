/* An answer on its way (s2a_answer.h) and the policy's second look at it
 * (s2a_policy.h). Fed in chunks and released as the output filter does,
 * the client receives exactly what the mode promises: the upstream's bytes
 * as they came, with only the model renamed (never more than was fed plus
 * the new name), or the error as one SSE event, or nothing; the usage read
 * is that of the whole answer; an error body is kept whole. The policy
 * changes its verdict only for the messages it names, and a rest never
 * ends before it begins.
 *
 * Input: status, Content-Type, flags and a chunking seed, then the body. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "s2a_answer.h"
#include "s2a_json.h"
#include "s2a_policy.h"

static const int statuses[] = {200, 201, 400, 403, 404, 413, 429, 500, 529, 401, 302, 204};
static const char *const types[] = {NULL,
                                    "application/json",
                                    "text/event-stream",
                                    "text/event-stream; charset=utf-8",
                                    "TEXT/EVENT-STREAM",
                                    "text/event-strea"};

enum {
    DROPPED = 1,
    COUNT_ONLY = 2,
    COMMITTED = 4,
    RENAME = 8,
    BROKEN = 16,
    ODD_NAME = 32,
    BEDROCK = 64 /* a count from Bedrock: CountTokens' answer */
};

typedef struct {
    char *p;
    size_t len;
} out_t;

static void put(out_t *o, const char *data, size_t n)
{
    memcpy(o->p + o->len, data, n);
    o->len += n;
}

static s2a_answer_mode mode_of(int status, const char *type, int flags)
{
    if (flags & DROPPED) {
        return S2A_ANSWER_DROP;
    }
    if (status >= 300) {
        return flags & COMMITTED ? S2A_ANSWER_EVENT : S2A_ANSWER_ERROR;
    }
    if (flags & COUNT_ONLY) {
        return flags & BEDROCK ? S2A_ANSWER_COUNT : S2A_ANSWER_PASS;
    }
    return type && strncasecmp(type, "text/event-stream", 17) == 0 ? S2A_ANSWER_STREAM
                                                                   : S2A_ANSWER_JSON;
}

/* The body as one SSE error event: line breaks start data lines, CRs and
 * the final line breaks go. */
static char *as_event(apr_pool_t *p, const char *b, size_t n, size_t *len)
{
    char *out = apr_palloc(p, 7 * n + 32), *o = out;
    size_t i;

    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r')) {
        n--;
    }
    o += sprintf(o, "event: error\ndata: ");
    for (i = 0; i < n; i++) {
        if (b[i] == '\n') {
            o += sprintf(o, "\ndata: ");
        } else if (b[i] != '\r') {
            *o++ = b[i];
        }
    }
    o += sprintf(o, "\n\n");
    *len = (size_t)(o - out);
    return out;
}

/* What a stream's client receives when its first event names the model. */
static const char *renamed_stream(apr_pool_t *p, const char *b, size_t n, const char *rename,
                                  size_t *len)
{
    size_t i, ev = 0, rlen;
    const char *first;
    char *out;

    for (i = 0; i + 1 < n && !ev; i++) {
        if (b[i] == '\n' && b[i + 1] == '\n') {
            ev = i + 2;
        } else if (i + 3 < n && memcmp(b + i, "\r\n\r\n", 4) == 0) {
            ev = i + 4;
        }
    }
    *len = n;
    if (!ev || !(first = s2a_sse_rewrite_message_model(p, b, ev, rename, &rlen))) {
        return b;
    }
    out = apr_palloc(p, rlen + n - ev + 1);
    memcpy(out, first, rlen);
    memcpy(out + rlen, b + ev, n - ev);
    *len = rlen + n - ev;
    return out;
}

/* What a JSON answer's client receives: its first top-level model renamed. */
static const char *renamed_json(apr_pool_t *p, const char *b, size_t n, const char *rename,
                                size_t *len)
{
    size_t off, vlen;
    s2a_json_edit e;

    *len = n;
    if (s2a_json_prefix_find_model(b, n, &off, &vlen) != 1) {
        return b;
    }
    e.off = off;
    e.len = vlen;
    e.text = s2a_json_quote(p, rename);
    e.text_len = strlen(e.text);
    return s2a_json_splice(p, b, n, &e, 1, len);
}

static void add_usage(void *baton, const char *event, apr_size_t elen, const char *data,
                      apr_size_t dlen)
{
    s2a_usage_apply_sse(baton, event, elen, data, dlen);
}

/* The usage of the whole answer, read in one piece. */
static int whole_usage(apr_pool_t *p, s2a_answer_mode mode, const char *b, size_t n, s2a_usage *u)
{
    memset(u, 0, sizeof(*u));
    if (mode == S2A_ANSWER_STREAM) {
        s2a_sse *sse = s2a_sse_create(p, S2A_ANSWER_MAX_EVENT, add_usage, u);
        s2a_sse_only(sse, (const char *const[]){"message_start", "message_delta",
                                                "content_block_delta", NULL});
        s2a_sse_feed(sse, b, n);
        return u->seen_start;
    }
    if (mode == S2A_ANSWER_JSON) {
        s2a_usage_json *j = s2a_usage_json_create(p);
        s2a_usage_json_feed(j, b, n);
        return s2a_usage_json_finish(j, u, NULL);
    }
    return 0;
}

static void check_answer(apr_pool_t *p, int status, const char *type, int flags, uint8_t seed,
                         const char *b, size_t n)
{
    const char *rename = !(flags & RENAME) ? NULL : flags & ODD_NAME ? "a\"b\x01\xff" : "claude-c";
    s2a_answer_mode mode = mode_of(status, type, flags);
    size_t at, step, want_len = n, bound;
    const char *want = b, *released, *kept;
    apr_size_t rlen, klen = 0;
    s2a_usage got_u, want_u;
    s2a_answer a;
    out_t out;

    out.p = apr_palloc(p, 7 * n + 64 + (rename ? strlen(s2a_json_quote(p, rename)) : 0));
    out.len = 0;
    s2a_answer_start(&a, p, status, type, flags & DROPPED, flags & COUNT_ONLY, flags & COMMITTED,
                     rename, NULL);
    if ((flags & BEDROCK) && a.mode == S2A_ANSWER_PASS) {
        s2a_answer_from_cloud(&a, S2A_CLOUD_BEDROCK, NULL);
    }
    FUZZ_CHECK(a.mode == mode);
    for (at = 0, step = 1 + seed % 13; at < n; at += step, step = 1 + (step * 5 + seed) % 97) {
        size_t k = n - at < step ? n - at : step;
        int passes = s2a_answer_feed(&a, b + at, k);
        if ((released = s2a_answer_release(&a, &rlen))) {
            put(&out, released, rlen);
        }
        if (passes) {
            put(&out, b + at, k);
        }
    }
    s2a_answer_end(&a, flags & BROKEN);
    FUZZ_CHECK(a.ended && a.broken == !!(flags & BROKEN));
    if ((released = s2a_answer_release(&a, &rlen))) {
        put(&out, released, rlen);
    }
    FUZZ_CHECK(s2a_answer_release(&a, &rlen) == NULL);
    switch (mode) {
    case S2A_ANSWER_DROP:
        want_len = 0;
        break;
    case S2A_ANSWER_EVENT:
        want = as_event(p, b, n, &want_len);
        break;
    case S2A_ANSWER_STREAM:
        if (rename) {
            want = renamed_stream(p, b, n, rename, &want_len);
        }
        break;
    case S2A_ANSWER_JSON:
        if (rename) {
            want = renamed_json(p, b, n, rename, &want_len);
        }
        break;
    case S2A_ANSWER_COUNT:
        /* a count, rewritten, or the body as it came */
        if ((kept = s2a_bedrock_count_answer(p, b, n)) != NULL) {
            want = kept;
            want_len = strlen(kept);
        }
        break;
    default:
        break;
    }
    FUZZ_CHECK(out.len == want_len && memcmp(out.p, want, want_len) == 0);
    /* a count's name is one byte longer than CountTokens' */
    bound = mode == S2A_ANSWER_EVENT   ? 7 * n + 32
            : mode == S2A_ANSWER_COUNT ? n + 1
                                       : n + (rename ? strlen(s2a_json_quote(p, rename)) : 0);
    FUZZ_CHECK(out.len <= bound);

    FUZZ_CHECK(s2a_answer_usage(&a, &got_u) == whole_usage(p, mode, b, n, &want_u));
    FUZZ_CHECK(memcmp(&got_u, &want_u, sizeof(got_u)) == 0);
    kept = s2a_answer_error_body(&a, &klen);
    if (mode == S2A_ANSWER_ERROR || mode == S2A_ANSWER_EVENT || mode == S2A_ANSWER_DROP) {
        FUZZ_CHECK(n > S2A_POLICY_BODY_MAX || (kept && klen == n && memcmp(kept, b, n) == 0));
    } else {
        FUZZ_CHECK(kept == NULL);
    }
}

static int says_any(const char *text, const char *const *phrases)
{
    for (; *phrases; phrases++) {
        if (strstr(text, *phrases)) {
            return 1;
        }
    }
    return 0;
}

/* The error's message in lower case, NULL when the body has none. */
static const char *message_of(apr_pool_t *p, const char *b, size_t n)
{
    static const char *const keys[] = {"error"};
    s2a_json_span error, message;
    const char *err;
    char *text, *c;

    if (s2a_json_scan_object(p, b, n, keys, 1, &error, &err) != 0 ||
        !s2a_json_object_get(&error, "message", &message) ||
        !(text = s2a_json_string_dup(p, &message))) {
        return NULL;
    }
    for (c = text; *c; c++) {
        *c = (char)apr_tolower(*c);
    }
    return text;
}

static int same_verdict(const s2a_verdict *a, const s2a_verdict *b)
{
    return a->failed == b->failed && a->action == b->action && a->fail_over == b->fail_over &&
           a->unexpected == b->unexpected && a->client_status == b->client_status &&
           a->message == b->message;
}

static void check_reread(apr_pool_t *p, int status, int flags, const char *b, size_t n)
{
    static const char *const about_account[] = {
        "organization has been disabled", "credit balance is too low",
        "not allowed for this organization", "only authorized for use with claude code", NULL};
    static const char *const about_one_thing[] = {"model", "beta", "feature", NULL};
    s2a_policy_case c = {status,          NULL, flags & 1, (flags >> 1) & 1, (flags >> 2) & 1,
                         (flags >> 3) & 1};
    s2a_verdict before, v;
    const char *text = message_of(p, b, n);
    int r, want = 0;

    s2a_policy_judge(&c, &before);
    v = before;
    r = s2a_policy_reread(p, &c, b, n, &v);
    if (text && status == 400) {
        want = !before.failed && says_any(text, about_account);
    } else if (text && status == 403) {
        want = before.failed && before.action == S2A_ACCOUNT_ERROR &&
               !says_any(text, about_account) && says_any(text, about_one_thing);
    }
    FUZZ_CHECK(r == want);
    FUZZ_CHECK(r == !same_verdict(&before, &v));
    if (r) {
        FUZZ_CHECK(v.failed && v.message);
        FUZZ_CHECK(status != 403 || v.action == S2A_ACCOUNT_KEEP);
    }
}

/* The body's first two lines as the rate-limit headers: a rest ends after
 * it begins. */
static void check_rest(apr_pool_t *p, const char *b, size_t n, uint64_t when)
{
    const char *nl = memchr(b, '\n', n);
    const char *reset = apr_pstrmemdup(p, b, nl ? (size_t)(nl - b) : n);
    const char *retry = nl ? apr_pstrmemdup(p, nl + 1, n - (size_t)(nl + 1 - b)) : NULL;
    apr_time_t now = (apr_time_t)(when % ((uint64_t)1 << 62));
    apr_interval_time_t cooldown = apr_time_from_sec(30);
    int window;

    FUZZ_CHECK(s2a_policy_rest_until(reset, retry, now, cooldown) > now);
    FUZZ_CHECK(s2a_policy_rest_until(NULL, reset, now, cooldown) > now);
    window = s2a_policy_window(reset);
    FUZZ_CHECK(window >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};
    int status = statuses[fuzz_u8(&in) % (sizeof(statuses) / sizeof(statuses[0]))];
    const char *type = types[fuzz_u8(&in) % (sizeof(types) / sizeof(types[0]))];
    int flags = fuzz_u8(&in);
    uint8_t seed = fuzz_u8(&in);
    size_t n;
    const uint8_t *body = fuzz_take(&in, size, &n);
    const char *b = fuzz_copy(p, body, n, 0);

    check_answer(p, status, type, flags, seed, b, n);
    check_reread(p, status, flags, b, n);
    check_rest(p, b, n, (uint64_t)seed << 40 | (uint64_t)flags << 32 | (uint32_t)n);
    apr_pool_destroy(p);
    return 0;
}
