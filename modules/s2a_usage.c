/* Token usage extraction. Stream events go through the allocation-free scanner; the
   non-stream body, which arrives in pieces, through an incremental json-c parser. */
#include <limits.h>
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_json.h"
#include "s2a_usage.h"

/* Answers can carry deeply nested tool input; an answer the parser refuses is not billed,
   so the default depth of 32 is too tight. */
#define JSON_DEPTH 256

/* The figures of one usage object; -1 where absent or not a usable count. */
typedef struct {
    apr_int64_t in, out, cc, cr, c5m, c1h;
} counts;

/* Non-negative integer member, or -1 when absent or not a usable count. */
static apr_int64_t count_of(json_object *obj, const char *key)
{
    json_object *v;
    int64_t n;

    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int)) {
        return -1;
    }
    n = json_object_get_int64(v);
    return n < 0 ? -1 : (apr_int64_t)n;
}

static int usage_differs(const s2a_usage *a, const s2a_usage *b)
{
    return a->input != b->input || a->output != b->output ||
           a->cache_creation != b->cache_creation || a->cache_1h != b->cache_1h ||
           a->cache_read != b->cache_read || a->seen_start != b->seen_start ||
           a->seen_delta != b->seen_delta;
}

static void counts_of_json(json_object *usage, counts *c)
{
    json_object *split;

    c->in = count_of(usage, "input_tokens");
    c->out = count_of(usage, "output_tokens");
    c->cc = count_of(usage, "cache_creation_input_tokens");
    c->cr = count_of(usage, "cache_read_input_tokens");
    c->c5m = c->c1h = -1;
    if (json_object_object_get_ex(usage, "cache_creation", &split) &&
        json_object_is_type(split, json_type_object)) {
        c->c5m = count_of(split, "ephemeral_5m_input_tokens");
        c->c1h = count_of(split, "ephemeral_1h_input_tokens");
    }
}

/* The scanner's counterpart of count_of, read from the raw number text: integers only (no
   fraction or exponent), none below zero ("-0" is 0), saturating at APR_INT64_MAX like
   json-c does. */
static apr_int64_t count_of_span(const s2a_json_span *v)
{
    const char *s = v->p, *end = v->p + v->len;
    apr_int64_t n = 0;
    int neg = 0;

    if (v->type != S2A_JSON_NUMBER) {
        return -1;
    }
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
    static const char *const keys[] = {"input_tokens", "output_tokens",
                                       "cache_creation_input_tokens", "cache_read_input_tokens",
                                       "cache_creation"};
    static const char *const split_keys[] = {"ephemeral_5m_input_tokens",
                                             "ephemeral_1h_input_tokens"};
    s2a_json_span v[5], w[2];
    const char *err;

    if (s2a_json_scan_object(NULL, usage->p, usage->len, keys, 5, v, &err) != 0) {
        return 0;
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

static int contains(const char *hay, apr_size_t hlen, const char *needle)
{
    apr_size_t nlen = strlen(needle), i;

    for (i = 0; i + nlen <= hlen; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0) {
            return 1;
        }
    }
    return 0;
}

static int all_space(const char *s, apr_size_t len)
{
    apr_size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
            return 0;
        }
    }
    return 1;
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
        } else {
            return 0;
        }
    } else if (!contains(data, dlen, "\"message_start\"") &&
               !contains(data, dlen, "\"message_delta\"")) {
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
        } else {
            return 0;
        }
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

struct s2a_usage_json {
    apr_pool_t *pool;
    json_tokener *tok; /* NULL once parsing has ended */
    json_object *root; /* the complete document, if one was parsed */
    int failed;        /* invalid JSON, or data after the document */
};

static apr_status_t usage_json_cleanup(void *data)
{
    s2a_usage_json *j = data;

    if (j->tok) {
        json_tokener_free(j->tok);
        j->tok = NULL;
    }
    if (j->root) {
        json_object_put(j->root);
        j->root = NULL;
    }
    return APR_SUCCESS;
}

s2a_usage_json *s2a_usage_json_create(apr_pool_t *p)
{
    s2a_usage_json *j = apr_pcalloc(p, sizeof(*j));

    j->pool = p;
    j->tok = json_tokener_new_ex(JSON_DEPTH);
    if (j->tok) {
        json_tokener_set_flags(j->tok, JSON_TOKENER_STRICT);
    } else {
        j->failed = 1;
    }
    apr_pool_cleanup_register(p, j, usage_json_cleanup, apr_pool_cleanup_null);
    return j;
}

void s2a_usage_json_feed(s2a_usage_json *j, const char *buf, apr_size_t len)
{
    while (len && !j->failed) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        enum json_tokener_error err;
        apr_size_t used;

        if (!j->tok) {
            /* The document is complete: only trailing whitespace may follow. */
            j->failed = !all_space(buf, len);
            return;
        }
        j->root = json_tokener_parse_ex(j->tok, buf, n);
        err = json_tokener_get_error(j->tok);
        if (err == json_tokener_continue) {
            buf += n;
            len -= (apr_size_t)n;
            continue;
        }
        if (err != json_tokener_success || !j->root) {
            j->failed = 1;
            return;
        }
        used = json_tokener_get_parse_end(j->tok);
        json_tokener_free(j->tok);
        j->tok = NULL;
        buf += used;
        len -= used;
    }
}

int s2a_usage_json_finish(s2a_usage_json *j, s2a_usage *u, const char **model)
{
    json_object *usage, *m;
    int found = 0;

    if (model) {
        *model = NULL;
    }
    memset(u, 0, sizeof(*u));
    if (j->failed || j->tok || !j->root || !json_object_is_type(j->root, json_type_object)) {
        return 0;
    }
    if (json_object_object_get_ex(j->root, "usage", &usage) &&
        json_object_is_type(usage, json_type_object)) {
        counts c;

        counts_of_json(usage, &c);
        apply_counts(u, &c, 0);
        found = 1;
    }
    if (model && json_object_object_get_ex(j->root, "model", &m) &&
        json_object_is_type(m, json_type_string)) {
        *model = apr_pstrmemdup(j->pool, json_object_get_string(m),
                                (apr_size_t)json_object_get_string_len(m));
    }
    return found;
}
