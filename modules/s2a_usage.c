/* Token usage extraction with the allocation-free scanner: stream events one by one, the
   non-stream body once it is complete. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <limits.h>
#include <string.h>

#include <apr_strings.h>

#include "s2a_json.h"
#include "s2a_usage.h"

/* The figures of one usage object; -1 where absent or not a usable count. */
typedef struct {
    apr_int64_t in, out, cc, cr, c5m, c1h, ws, wf;
} counts;

static int usage_differs(const s2a_usage *a, const s2a_usage *b)
{
    return a->input != b->input || a->output != b->output ||
           a->cache_creation != b->cache_creation || a->cache_1h != b->cache_1h ||
           a->cache_read != b->cache_read || a->web_search != b->web_search ||
           a->web_fetch != b->web_fetch || a->seen_start != b->seen_start ||
           a->seen_delta != b->seen_delta;
}

/* A count from the raw number text: integers only (no fraction or exponent), none below
   zero ("-0" is 0), saturating at APR_INT64_MAX. */
static apr_int64_t count_of_span(const s2a_json_span *v)
{
    const char *s, *end;
    apr_int64_t n = 0;
    int neg = 0;

    /* an absent value has no text: not even its end may be computed */
    if (v->type != S2A_JSON_NUMBER) {
        return -1;
    }
    s = v->p;
    end = v->p + v->len;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    for (; s < end; s++) {
        int d = *s - '0';

        if (d < 0 || d > 9) {
            return -1;
        }
        n = n > (APR_INT64_MAX - d) / 10 ? APR_INT64_MAX : n * 10 + d;
    }
    return neg && n ? -1 : n;
}

/* usage is an object span inside validated data. Returns 0 if it cannot be read. */
static int counts_of_span(const s2a_json_span *usage, counts *c)
{
    static const char *const keys[] = {"input_tokens",
                                       "output_tokens",
                                       "cache_creation_input_tokens",
                                       "cache_read_input_tokens",
                                       "cache_creation",
                                       "server_tool_use"};
    static const char *const split_keys[] = {"ephemeral_5m_input_tokens",
                                             "ephemeral_1h_input_tokens"};
    static const char *const tool_keys[] = {"web_search_requests", "web_fetch_requests"};
    s2a_json_span v[6], w[2];
    const char *err;

    if (s2a_json_scan_object(NULL, usage->p, usage->len, keys, 6, v, &err) != 0) {
        return 0;
    }
    c->ws = c->wf = -1;
    if (v[5].type == S2A_JSON_OBJECT) {
        if (s2a_json_scan_object(NULL, v[5].p, v[5].len, tool_keys, 2, w, &err) != 0) {
            return 0;
        }
        c->ws = count_of_span(&w[0]);
        c->wf = count_of_span(&w[1]);
    }
    c->in = count_of_span(&v[0]);
    c->out = count_of_span(&v[1]);
    c->cc = count_of_span(&v[2]);
    c->cr = count_of_span(&v[3]);
    c->c5m = c->c1h = -1;
    if (v[4].type == S2A_JSON_OBJECT) {
        if (s2a_json_scan_object(NULL, v[4].p, v[4].len, split_keys, 2, w, &err) != 0) {
            return 0;
        }
        c->c5m = count_of_span(&w[0]);
        c->c1h = count_of_span(&w[1]);
    }
    return 1;
}

/* Apply the figures of a usage object. A start (or full body) sets every figure it carries;
   a delta always sets the cumulative output but only non-zero input and cache figures, since
   some providers send zeros there that must not erase what message_start reported. */
static void apply_counts(s2a_usage *u, const counts *c, int is_delta)
{
    apr_int64_t in = c->in, out = c->out, cc = c->cc, cr = c->cr, c5m = c->c5m, c1h = c->c1h;
    apr_int64_t min = is_delta ? 1 : 0;

    /* The split stands in for the total only when the total is absent. */
    if (cc < 0 && (c5m >= 0 || c1h >= 0)) {
        c5m = c5m > 0 ? c5m : 0;
        cc = c1h > 0 ? c1h : 0;
        cc = c5m > APR_INT64_MAX - cc ? APR_INT64_MAX : cc + c5m;
    }

    if (out >= 0) {
        u->output = out;
    }
    if (c->ws >= 0) {
        u->web_search = c->ws;
    }
    if (c->wf >= 0) {
        u->web_fetch = c->wf;
    }
    if (in >= min) {
        u->input = in;
    }
    if (cr >= min) {
        u->cache_read = cr;
    }
    if (cc >= min) {
        u->cache_creation = cc;
    }
    if (c1h >= min) {
        u->cache_1h = c1h;
    }
    if (u->cache_1h > u->cache_creation) {
        u->cache_1h = u->cache_creation;
    }
    if (is_delta) {
        u->seen_delta = 1;
    } else {
        u->seen_start = 1;
    }
}

static int name_is(const char *s, apr_size_t len, const char *name)
{
    return len == strlen(name) && memcmp(s, name, len) == 0;
}

static const char *find(const char *hay, apr_size_t hlen, const char *needle)
{
    apr_size_t nlen = strlen(needle);
    const char *p = hay, *end = hay + hlen;

    while (end - p >= (apr_ssize_t)nlen && (p = memchr(p, needle[0], (size_t)(end - p)))) {
        if (end - p >= (apr_ssize_t)nlen && memcmp(p, needle, nlen) == 0) {
            return p;
        }
        p++;
    }
    return NULL;
}

static int contains(const char *hay, apr_size_t hlen, const char *needle)
{
    return find(hay, hlen, needle) != NULL;
}

/* The generated text of a content_block_delta: text, thinking, a thinking
 * block's signature (it carries the whole thinking, sealed, where the text
 * is only a summary) or tool input. */
static void count_delta_text(s2a_usage *u, const s2a_json_span *delta)
{
    static const char *const fields[] = {"text", "thinking", "partial_json", "signature"};
    s2a_json_span v;
    int i;

    if (delta->type != S2A_JSON_OBJECT) {
        return;
    }
    for (i = 0; i < 4; i++) {
        if (s2a_json_object_get(delta, fields[i], &v) && v.type == S2A_JSON_STRING) {
            u->delta_bytes += (apr_int64_t)v.len - 2;
            return;
        }
    }
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

/* The same for a named content_block_delta event, without reading the whole
 * event: it comes dozens of times per answer and only feeds an estimate. The
 * member is found by its raw name: inside a string every quote is escaped,
 * so `"text"` followed by a colon cannot occur there. */
static void count_string(s2a_usage *u, const char *p, const char *end)
{
    const char *start = p;
    for (; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            u->delta_bytes += p - start;
            return;
        }
    }
}

static void count_delta_raw(s2a_usage *u, const char *data, apr_size_t dlen)
{
    static const char *const fields[] = {"\"text\"", "\"thinking\"", "\"partial_json\"",
                                         "\"signature\""};
    /* as the API writes them, without spaces: one search finds the text */
    static const char *const tight[] = {"\"text\":\"", "\"thinking\":\"", "\"partial_json\":\"",
                                        "\"signature\":\""};
    const char *end = data + dlen;
    int i;

    for (i = 0; i < 4; i++) {
        const char *at = memmem(data, dlen, tight[i], strlen(tight[i]));
        if (at) {
            count_string(u, at + strlen(tight[i]), end);
            return;
        }
    }
    for (i = 0; i < 4; i++) {
        const char *at = find(data, dlen, fields[i]), *p;
        if (!at) {
            continue;
        }
        p = skip_space(at + strlen(fields[i]), end);
        if (p >= end || *p != ':') {
            continue;
        }
        p = skip_space(p + 1, end);
        if (p < end && *p == '"') {
            count_string(u, p + 1, end);
        }
        return;
    }
}

apr_int64_t s2a_usage_output_estimate(const s2a_usage *u)
{
    apr_int64_t est = (u->delta_bytes + S2A_BYTES_PER_TOKEN - 1) / S2A_BYTES_PER_TOKEN;

    return est > u->output ? est : u->output;
}

int s2a_usage_apply_sse(s2a_usage *u, const char *event, apr_size_t elen, const char *data,
                        apr_size_t dlen)
{
    /* The scanner validates the values of requested keys in full (see s2a_json.h); "delta"
       is asked for only so that every container these events carry is checked. */
    static const char *const keys[] = {"type", "message", "usage", "delta"};
    s2a_json_span root[4], usage;
    s2a_usage before = *u;
    const char *err;
    counts c;
    int is_delta;

    if (elen) {
        if (name_is(event, elen, "message_delta")) {
            is_delta = 1;
        } else if (name_is(event, elen, "message_start")) {
            is_delta = 0;
        } else if (name_is(event, elen, "content_block_delta")) {
            count_delta_raw(u, data, dlen);
            return 0;
        } else {
            return 0;
        }
    } else if (!contains(data, dlen, "\"message_start\"") &&
               !contains(data, dlen, "\"message_delta\"") &&
               !contains(data, dlen, "\"content_block_delta\"")) {
        return 0;
    } else {
        is_delta = -1;
    }

    if (s2a_json_scan_object(NULL, data, dlen, keys, 4, root, &err) != 0) {
        return 0;
    }
    if (is_delta < 0) {
        /* Unnamed event: its data's "type" decides. */
        if (s2a_json_string_equals(&root[0], "message_delta")) {
            is_delta = 1;
        } else if (s2a_json_string_equals(&root[0], "message_start")) {
            is_delta = 0;
        } else if (s2a_json_string_equals(&root[0], "content_block_delta")) {
            is_delta = 2;
        } else {
            return 0;
        }
    }
    if (is_delta == 2) {
        count_delta_text(u, &root[3]);
        return 0;
    }
    if (is_delta) {
        usage = root[2];
    } else if (root[1].type != S2A_JSON_OBJECT || !s2a_json_object_get(&root[1], "usage", &usage)) {
        return 0;
    }
    if (usage.type == S2A_JSON_OBJECT && counts_of_span(&usage, &c)) {
        apply_counts(u, &c, is_delta);
    }
    return usage_differs(&before, u);
}

int s2a_usage_read(s2a_usage *u, const s2a_json_span *usage)
{
    counts c;

    memset(u, 0, sizeof(*u));
    if (usage->type != S2A_JSON_OBJECT || !counts_of_span(usage, &c)) {
        return 0;
    }
    apply_counts(u, &c, 0);
    return 1;
}

struct s2a_usage_json {
    apr_pool_t *pool;
    char *buf;
    apr_size_t len, cap;
    int failed; /* larger than S2A_USAGE_JSON_MAX */
};

s2a_usage_json *s2a_usage_json_create(apr_pool_t *p)
{
    s2a_usage_json *j = apr_pcalloc(p, sizeof(*j));

    j->pool = p;
    return j;
}

void s2a_usage_json_feed(s2a_usage_json *j, const char *buf, apr_size_t len)
{
    if (j->failed || !len) {
        return;
    }
    if (len > S2A_USAGE_JSON_MAX - j->len) {
        j->failed = 1;
        return;
    }
    if (j->len + len > j->cap) {
        apr_size_t cap = j->cap ? j->cap : 4096;
        char *nb;

        while (cap < j->len + len) {
            cap *= 2;
        }
        nb = apr_palloc(j->pool, cap);
        if (j->len) {
            memcpy(nb, j->buf, j->len);
        }
        j->buf = nb;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, buf, len);
    j->len += len;
}

const char *s2a_usage_json_text(const s2a_usage_json *j, apr_size_t *len)
{
    *len = j->len;
    return j->buf;
}

int s2a_usage_json_finish(s2a_usage_json *j, s2a_usage *u, const char **model)
{
    static const char *const keys[] = {"usage", "model"};
    s2a_json_span v[2];
    const char *err;

    if (model) {
        *model = NULL;
    }
    memset(u, 0, sizeof(*u));
    if (j->failed || !j->len || s2a_json_scan_object(NULL, j->buf, j->len, keys, 2, v, &err) != 0) {
        return 0;
    }
    if (model && v[1].type == S2A_JSON_STRING) {
        *model = s2a_json_string_dup(j->pool, &v[1]);
    }
    return s2a_usage_read(u, &v[0]);
}
