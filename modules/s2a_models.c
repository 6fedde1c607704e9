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

apr_int64_t s2a_model_created(const char *id)
{
    const char *d = date_suffix(id);
    apr_int64_t y, m, day, era, yoe, doy, doe;
    if (!d) {
        return 0;
    }
    y = (d[1] - '0') * 1000 + (d[2] - '0') * 100 + (d[3] - '0') * 10 + (d[4] - '0');
    m = (d[5] - '0') * 10 + (d[6] - '0');
    day = (d[7] - '0') * 10 + (d[8] - '0');
    if (m < 1 || m > 12 || day < 1 || day > 31) {
        return 0;
    }
    /* days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
     * days_from_civil) */
    y -= m <= 2;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (era * 146097 + doe - 719468) * 86400;
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
                       ",\"created_at\":\"", s2a_model_created_at(p, id),
                       "\",\"object\":\"model\",\"created\":",
                       apr_psprintf(p, "%" APR_INT64_T_FMT, s2a_model_created(id)),
                       ",\"owned_by\":\"anthropic\"}", NULL);
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
        p, "{\"object\":\"list\",\"data\":[", apr_array_pstrcat(p, parts, ','),
        "],\"has_more\":", more ? "true" : "false", ",\"first_id\":",
        from < to ? s2a_json_quote(p, APR_ARRAY_IDX(ids, from, const char *)) : "null",
        ",\"last_id\":",
        from < to ? s2a_json_quote(p, APR_ARRAY_IDX(ids, to - 1, const char *)) : "null", "}",
        NULL);
}
