/* A key's own limits: see s2a_key_limits.h. */
#include <string.h>

#include <apr_fnmatch.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_key_limits.h"

int s2a_key_model_allowed(const s2a_key_rec *k, const char *model)
{
    const char *line = k->models;
    char pattern[S2A_KEY_MODELS_MAX];
    if (!*line) {
        return 1;
    }
    while (*line) {
        size_t n = strcspn(line, "\n");
        memcpy(pattern, line, n);
        pattern[n] = '\0';
        if (apr_fnmatch(pattern, model, 0) == APR_SUCCESS) {
            return 1;
        }
        line += n + (line[n] == '\n');
    }
    return 0;
}

apr_array_header_t *s2a_key_models_only(apr_pool_t *p, const apr_array_header_t *ids,
                                        const s2a_key_rec *k)
{
    apr_array_header_t *out;
    int i;
    if (!k->models[0]) {
        return (apr_array_header_t *)ids;
    }
    out = apr_array_make(p, ids->nelts ? ids->nelts : 1, sizeof(const char *));
    for (i = 0; i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (s2a_key_model_allowed(k, id)) {
            APR_ARRAY_PUSH(out, const char *) = id;
        }
    }
    return out;
}

static int pattern_ok(const char *s, size_t n)
{
    size_t i;
    if (n < 1 || n > 128) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

int s2a_key_models_parse(const char *json, char *out, const char **err)
{
    static const char *const message =
        "models: an array of at most 32 model names or patterns (1 to 128 characters, "
        "no spaces or control characters)";
    json_object *v;
    size_t i, used = 0, n;
    int ok = 1;

    out[0] = '\0';
    if (!json || !*json) {
        return 1;
    }
    v = json_tokener_parse(json);
    if (!v || !json_object_is_type(v, json_type_array) ||
        json_object_array_length(v) > S2A_KEY_MODEL_PATTERNS) {
        json_object_put(v);
        *err = message;
        return 0;
    }
    n = json_object_array_length(v);
    for (i = 0; ok && i < n; i++) {
        json_object *m = json_object_array_get_idx(v, i);
        const char *s = json_object_get_string(m);
        size_t len = (size_t)json_object_get_string_len(m);
        ok = json_object_is_type(m, json_type_string) && strlen(s) == len && pattern_ok(s, len) &&
             used + len + 1 < S2A_KEY_MODELS_MAX;
        if (ok) {
            memcpy(out + used, s, len);
            used += len;
            out[used++] = i + 1 < n ? '\n' : '\0';
        }
    }
    json_object_put(v);
    if (!ok) {
        out[0] = '\0';
        *err = message;
    }
    return ok;
}

apr_int64_t s2a_key_budget_left(const s2a_key_rec *k, apr_int64_t now)
{
    apr_int64_t left = s2a_windows_left(&k->budget_windows, now);
    if (k->budget > 0) {
        apr_int64_t total = k->budget > k->spent ? k->budget - k->spent : 0;
        if (left < 0 || total < left) {
            left = total;
        }
    }
    return left;
}

int s2a_key_budget_used_up(const s2a_key_rec *k, apr_int64_t now, apr_int64_t *reset_at)
{
    if (k->budget > 0 && k->spent >= k->budget) {
        *reset_at = 0;
        return S2A_KEY_BUDGET_TOTAL;
    }
    return s2a_windows_exhausted(&k->budget_windows, now, reset_at);
}
