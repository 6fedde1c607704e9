/* Token usage extraction. json-c is fine here: these documents are small. */
#include <limits.h>
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_usage.h"

/* Answers can carry deeply nested tool input; the default depth of 32 is too tight. */
#define JSON_DEPTH 256

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

/* Apply a usage object. A start (or full body) sets every figure it carries; a delta always
   sets the cumulative output but only non-zero input and cache figures, since some providers
   send zeros there that must not erase what message_start reported. */
static void apply_usage(s2a_usage *u, json_object *usage, int is_delta)
{
    apr_int64_t in = count_of(usage, "input_tokens");
    apr_int64_t out = count_of(usage, "output_tokens");
    apr_int64_t cc = count_of(usage, "cache_creation_input_tokens");
    apr_int64_t cr = count_of(usage, "cache_read_input_tokens");
    apr_int64_t c5m = -1, c1h = -1;
    apr_int64_t min = is_delta ? 1 : 0;
    json_object *split;

    if (json_object_object_get_ex(usage, "cache_creation", &split) &&
        json_object_is_type(split, json_type_object)) {
        c5m = count_of(split, "ephemeral_5m_input_tokens");
        c1h = count_of(split, "ephemeral_1h_input_tokens");
    }
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

/* Whole JSON document in [buf, buf+len), nothing but whitespace after it; NULL otherwise. */
static json_object *parse_whole(const char *buf, apr_size_t len)
{
    json_tokener *tok;
    json_object *obj;

    if (len > INT_MAX || !(tok = json_tokener_new_ex(JSON_DEPTH))) {
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    if (obj && (json_tokener_get_error(tok) != json_tokener_success ||
                !all_space(buf + json_tokener_get_parse_end(tok),
                           len - json_tokener_get_parse_end(tok)))) {
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    return obj;
}

int s2a_usage_apply_sse(s2a_usage *u, const char *event, apr_size_t elen, const char *data,
                        apr_size_t dlen)
{
    json_object *root, *type, *holder, *usage;
    s2a_usage before = *u;
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

    root = parse_whole(data, dlen);
    if (!root || !json_object_is_type(root, json_type_object)) {
        goto done;
    }
    if (is_delta < 0) {
        /* Unnamed event: its data's "type" decides. */
        if (!json_object_object_get_ex(root, "type", &type) ||
            !json_object_is_type(type, json_type_string)) {
            goto done;
        }
        if (strcmp(json_object_get_string(type), "message_delta") == 0) {
            is_delta = 1;
        } else if (strcmp(json_object_get_string(type), "message_start") == 0) {
            is_delta = 0;
        } else {
            goto done;
        }
    }
    holder = root;
    if (!is_delta && (!json_object_object_get_ex(root, "message", &holder) ||
                      !json_object_is_type(holder, json_type_object))) {
        goto done;
    }
    if (json_object_object_get_ex(holder, "usage", &usage) &&
        json_object_is_type(usage, json_type_object)) {
        apply_usage(u, usage, is_delta);
    }
done:
    json_object_put(root);
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
        apply_usage(u, usage, 0);
        found = 1;
    }
    if (model && json_object_object_get_ex(j->root, "model", &m) &&
        json_object_is_type(m, json_type_string)) {
        *model = apr_pstrmemdup(j->pool, json_object_get_string(m),
                                (apr_size_t)json_object_get_string_len(m));
    }
    return found;
}
