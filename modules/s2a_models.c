#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "s2a_json.h"
#include "s2a_models.h"

/* Where the id's trailing "-YYYYMMDD" starts, or NULL. */
static const char *date_suffix(const char *id)
{
    apr_size_t n = strlen(id);
    int i;
    if (n < 9 || id[n - 9] != '-') {
        return NULL;
    }
    for (i = 0; i < 8; i++) {
        if (id[n - 8 + i] < '0' || id[n - 8 + i] > '9') {
            return NULL;
        }
    }
    return id + n - 9;
}

static int all_digits(const char *s, apr_size_t n)
{
    apr_size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return n > 0;
}

char *s2a_model_display_name(apr_pool_t *p, const char *id)
{
    const char *date = date_suffix(id);
    apr_size_t end = date ? (apr_size_t)(date - id) : strlen(id);
    char *out = apr_palloc(p, end + 1), *o = out;
    apr_size_t i = 0;
    int prev_number = 0;

    while (i < end) {
        apr_size_t j = i;
        while (j < end && id[j] != '-') {
            j++;
        }
        if (j > i) {
            int number = all_digits(id + i, j - i);
            if (o > out) {
                *o++ = number && prev_number ? '.' : ' ';
            }
            memcpy(o, id + i, j - i);
            if (!number && *o >= 'a' && *o <= 'z') {
                *o = (char)(*o - 'a' + 'A');
            }
            o += j - i;
            prev_number = number;
        }
        i = j + 1;
    }
    *o = '\0';
    return out;
}

char *s2a_model_created_at(apr_pool_t *p, const char *id)
{
    const char *d = date_suffix(id);
    if (!d) {
        return apr_pstrdup(p, "1970-01-01T00:00:00Z");
    }
    return apr_psprintf(p, "%.4s-%.2s-%.2sT00:00:00Z", d + 1, d + 5, d + 7);
}

static int newest_first(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    const char *dx = date_suffix(x), *dy = date_suffix(y);
    int c = strcmp(dy ? dy + 1 : "", dx ? dx + 1 : "");
    return c ? c : strcmp(x, y);
}

void s2a_models_sort(apr_array_header_t *ids)
{
    const char **v = (const char **)ids->elts;
    int i, n = 0;
    qsort(v, (size_t)ids->nelts, sizeof(*v), newest_first);
    for (i = 0; i < ids->nelts; i++) {
        if (n == 0 || strcmp(v[n - 1], v[i]) != 0) {
            v[n++] = v[i];
        }
    }
    ids->nelts = n;
}

char *s2a_model_json(apr_pool_t *p, const char *id)
{
    return apr_pstrcat(p, "{\"type\":\"model\",\"id\":", s2a_json_quote(p, id),
                       ",\"display_name\":", s2a_json_quote(p, s2a_model_display_name(p, id)),
                       ",\"created_at\":\"", s2a_model_created_at(p, id), "\"}", NULL);
}

static int index_of(const apr_array_header_t *ids, const char *id)
{
    int i;
    for (i = 0; i < ids->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(ids, i, const char *), id) == 0) {
            return i;
        }
    }
    return -1;
}

char *s2a_models_page(apr_pool_t *p, const apr_array_header_t *ids, const char *after_id,
                      const char *before_id, int limit)
{
    int from = 0, to = ids->nelts, i, more;
    apr_array_header_t *parts = apr_array_make(p, 8, sizeof(const char *));

    if (after_id) {
        int at = index_of(ids, after_id);
        from = at < 0 ? ids->nelts : at + 1;
    } else if (before_id) {
        int at = index_of(ids, before_id);
        to = at < 0 ? 0 : at;
    }
    /* before_id pages back: the `limit` entries just before it */
    if (before_id && !after_id && to - from > limit) {
        from = to - limit;
        more = 1;
    } else {
        more = to - from > limit;
        if (more) {
            to = from + limit;
        }
    }
    for (i = from; i < to; i++) {
        APR_ARRAY_PUSH(parts, const char *) =
            s2a_model_json(p, APR_ARRAY_IDX(ids, i, const char *));
    }
    return apr_pstrcat(
        p, "{\"data\":[", apr_array_pstrcat(p, parts, ','),
        "],\"has_more\":", more ? "true" : "false", ",\"first_id\":",
        from < to ? s2a_json_quote(p, APR_ARRAY_IDX(ids, from, const char *)) : "null",
        ",\"last_id\":",
        from < to ? s2a_json_quote(p, APR_ARRAY_IDX(ids, to - 1, const char *)) : "null", "}",
        NULL);
}
