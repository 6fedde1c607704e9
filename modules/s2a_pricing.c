/* Price table and exact cost arithmetic. */
#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_fnmatch.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_pricing.h"

__extension__ typedef unsigned __int128 u128;

#define PICO_PER_NANO 1000
#define PPM 1000000
/* Above this a price is surely a mistake, and the default ratios cannot overflow. */
#define PRICE_MAX (INT64_MAX / 8)

struct s2a_pricing {
    apr_hash_t *models;            /* name -> s2a_price */
    apr_array_header_t *anthropic; /* const char *: Anthropic's own models, by name */
    int skipped;
    const char *first_skipped;
    const char *source; /* the file's text, when loaded from a file */
    apr_size_t source_len;
};

enum { DEC_OK = 0, DEC_SYNTAX = -1, DEC_INEXACT = -2, DEC_RANGE = -3 };

/* Significant digits kept. Any int64 result has at most 19 digits left of the point, so the
   rounding digit is always among these; later digits only matter as "some were non-zero". */
#define DEC_MAX_SIG 64
#define DEC_MAX_EXP 100000

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Decimal text [+-]digits[.digits][e[+-]digits] times 10^scale as an integer. With half_up,
   digits past the unit are rounded half away from zero; without, they must all be zero. */
static int decimal_scaled(const char *s, int scale, int half_up, apr_int64_t *out)
{
    unsigned char sig[DEC_MAX_SIG];
    int nsig = 0, sticky = 0, neg = 0, digits = 0, inexact, i;
    long point = 0, exp = 0, k;
    uint64_t v = 0;

    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    /* The value is 0.sig * 10^point; leading zeros only move the point. */
    for (; is_digit(*s); s++, digits++) {
        if (nsig == 0 && *s == '0') {
            continue;
        }
        if (nsig < DEC_MAX_SIG) {
            sig[nsig++] = (unsigned char)(*s - '0');
        } else if (*s != '0') {
            sticky = 1;
        }
        point++;
    }
    if (*s == '.') {
        for (s++; is_digit(*s); s++, digits++) {
            if (nsig == 0 && *s == '0') {
                point--;
            } else if (nsig < DEC_MAX_SIG) {
                sig[nsig++] = (unsigned char)(*s - '0');
            } else if (*s != '0') {
                sticky = 1;
            }
        }
    }
    if (!digits) {
        return DEC_SYNTAX;
    }
    if (*s == 'e' || *s == 'E') {
        int eneg = 0, edigits = 0;
        s++;
        if (*s == '-' || *s == '+') {
            eneg = *s == '-';
            s++;
        }
        for (; is_digit(*s); s++, edigits++) {
            if (exp < DEC_MAX_EXP) {
                exp = exp * 10 + (*s - '0');
            }
        }
        if (!edigits) {
            return DEC_SYNTAX;
        }
        if (eneg) {
            exp = -exp;
        }
    }
    if (*s) {
        return DEC_SYNTAX;
    }
    if (nsig == 0) {
        *out = 0;
        return DEC_OK;
    }

    /* k significant digits land left of the point once scaled. */
    k = point + exp + scale;
    if (k > 19) {
        return DEC_RANGE;
    }
    for (i = 0; i < k; i++) {
        v = v * 10 + (i < nsig ? sig[i] : 0);
    }
    inexact = sticky;
    for (i = k > 0 ? (int)k : 0; i < nsig; i++) {
        inexact |= sig[i] != 0;
    }
    if (inexact && !half_up) {
        return DEC_INEXACT;
    }
    if (inexact && k >= 0 && k < nsig && sig[k] >= 5) {
        v++;
    }
    if (v > INT64_MAX) {
        return DEC_RANGE;
    }
    *out = neg ? -(apr_int64_t)v : (apr_int64_t)v;
    return DEC_OK;
}

int s2a_usd_parse_nano(const char *text, apr_int64_t *nano)
{
    return text && decimal_scaled(text, 9, 1, nano) == DEC_OK ? 0 : -1;
}

int s2a_multiplier_parse_ppm(const char *text, apr_int64_t *ppm)
{
    apr_int64_t v;

    if (!text || decimal_scaled(text, 6, 1, &v) != DEC_OK || v <= 0) {
        return -1;
    }
    *ppm = v;
    return 0;
}

/* v / 10^places as decimal text, trailing zeros trimmed; places 1 to 18. */
static char *decimal_format(apr_pool_t *p, apr_int64_t v, int places)
{
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, unit = 1;
    uint64_t whole, frac;
    char digits[20];
    int n = places, i;

    for (i = 0; i < places; i++) {
        unit *= 10;
    }
    whole = mag / unit;
    frac = mag % unit;
    if (!frac) {
        return apr_psprintf(p, "%s%" APR_UINT64_T_FMT, v < 0 ? "-" : "", whole);
    }
    while (frac % 10 == 0) {
        frac /= 10;
        n--;
    }
    digits[n] = '\0';
    while (n--) {
        digits[n] = (char)('0' + frac % 10);
        frac /= 10;
    }
    return apr_psprintf(p, "%s%" APR_UINT64_T_FMT ".%s", v < 0 ? "-" : "", whole, digits);
}

char *s2a_usd_format(apr_pool_t *p, apr_int64_t nano)
{
    return decimal_format(p, nano, 9);
}

enum { PRICE_SET, PRICE_ABSENT, PRICE_INEXACT, PRICE_BAD };

/* One price field of a model entry, from the number's original text. */
static int price_field(apr_pool_t *p, json_object *entry, const char *model, const char *field,
                       apr_int64_t *out, const char **err)
{
    json_object *v;
    const char *why;

    if (!json_object_object_get_ex(entry, field, &v) || v == NULL) {
        return PRICE_ABSENT;
    }
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
        why = "is not a number";
    } else {
        switch (decimal_scaled(json_object_get_string(v), 12, 0, out)) {
        case DEC_OK:
            if (*out >= 0 && *out <= PRICE_MAX) {
                return PRICE_SET;
            }
            why = *out < 0 ? "is negative" : "is too large";
            break;
        case DEC_INEXACT:
            return PRICE_INEXACT;
        case DEC_RANGE:
            why = "is too large";
            break;
        default:
            why = "is not a decimal number";
            break;
        }
    }
    *err = apr_psprintf(p, "model \"%s\": %s %s", model, field, why);
    return PRICE_BAD;
}

/* The five price fields of an entry, in the order of s2a_price's. */
static const char *const fields[] = {
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
    "cache_read_input_token_cost",
};
#define FIELDS 5

/* Long-context thresholds, in thousands of tokens: 1 to 10^9. */
#define TIER_K_MAX 1000000000LL

/* Whether `key` is a long-context field: one of `fields` + "_above_" + digits + "k_tokens".
   1 with *field (its index) and *k (the digits' value, or -1 when they are no usable
   threshold), 0 when it is not such a field. */
static int tier_field(const char *key, int *field, apr_int64_t *k)
{
    static const char above[] = "_above_", tail[] = "k_tokens";
    int i;

    for (i = 0; i < FIELDS; i++) {
        apr_size_t n = strlen(fields[i]);
        const char *d, *s;
        apr_int64_t v = 0;

        if (strncmp(key, fields[i], n) != 0 || strncmp(key + n, above, sizeof(above) - 1) != 0) {
            continue;
        }
        d = s = key + n + sizeof(above) - 1;
        while (is_digit(*s)) {
            v = v > TIER_K_MAX ? v : v * 10 + (*s - '0');
            s++;
        }
        if (s == d || strcmp(s, tail) != 0) {
            continue; /* e.g. "..._above_1hr", or a service tier ("..._tokens_priority") */
        }
        *field = i;
        *k = *d == '0' || v > TIER_K_MAX ? -1 : v;
        return 1;
    }
    return 0;
}

static int by_threshold(const void *a, const void *b)
{
    const s2a_price_tier *x = a, *y = b;
    return x->above < y->above ? -1 : x->above > y->above;
}

static apr_int64_t *tier_slot(s2a_price_tier *t, int field)
{
    apr_int64_t *slots[] = {&t->input, &t->output, &t->cache_write_5m, &t->cache_write_1h,
                            &t->cache_read};
    return slots[field];
}

static apr_int64_t base_price(const s2a_price *pr, int field)
{
    const apr_int64_t v[] = {pr->input, pr->output, pr->cache_write_5m, pr->cache_write_1h,
                             pr->cache_read};
    return v[field];
}

/* The long-context fields of an entry into pr->tier (base prices filled in first). Same
   results as parse_entry. */
static int parse_tiers(apr_pool_t *p, json_object *entry, const char *model, s2a_price *pr,
                       const char **err)
{
    unsigned char given[S2A_PRICE_TIERS][FIELDS];
    int result = PRICE_SET, i, j;

    memset(given, 0, sizeof(given));
    pr->ntiers = 0;
    json_object_object_foreach(entry, key, v)
    {
        apr_int64_t k, price;
        int field, r;

        (void)v;
        if (!tier_field(key, &field, &k)) {
            continue;
        }
        if (k < 0) {
            *err = apr_psprintf(p,
                                "model \"%s\": %s names no threshold of 1 to %lld thousand "
                                "tokens",
                                model, key, (long long)TIER_K_MAX);
            return PRICE_BAD;
        }
        r = price_field(p, entry, model, key, &price, err);
        if (r == PRICE_BAD) {
            return PRICE_BAD;
        }
        if (r == PRICE_INEXACT) {
            result = PRICE_INEXACT;
            continue;
        }
        if (r != PRICE_SET) {
            continue; /* null */
        }
        for (i = 0; i < pr->ntiers && pr->tier[i].above != k * 1000; i++) {
        }
        if (i == pr->ntiers) {
            if (pr->ntiers == S2A_PRICE_TIERS) {
                result = PRICE_INEXACT; /* more thresholds than a price holds: skipped */
                continue;
            }
            pr->ntiers++;
            pr->tier[i].above = k * 1000;
        }
        *tier_slot(&pr->tier[i], field) = price;
        given[i][field] = 1;
    }
    for (i = 0; i < pr->ntiers; i++) {
        for (j = 0; j < FIELDS; j++) {
            if (!given[i][j]) {
                *tier_slot(&pr->tier[i], j) = base_price(pr, j);
            }
        }
    }
    qsort(pr->tier, (size_t)pr->ntiers, sizeof(pr->tier[0]), by_threshold);
    return result;
}

/* The web search tool's price per search: LiteLLM's search_context_cost_per_query, a
   number or an object of prices by context size (Anthropic's are all the same: the
   medium one is read). */
static int web_search_price(apr_pool_t *p, json_object *entry, const char *model, s2a_price *pr,
                            const char **err)
{
    json_object *q;
    int r;
    if (!json_object_object_get_ex(entry, "search_context_cost_per_query", &q) || !q) {
        return PRICE_ABSENT;
    }
    r = json_object_is_type(q, json_type_object)
            ? price_field(p, q, model, "search_context_size_medium", &pr->web_search, err)
            : price_field(p, entry, model, "search_context_cost_per_query", &pr->web_search, err);
    pr->web_search_set = r == PRICE_SET;
    return r;
}

/* Parses one model entry into *pr. PRICE_SET when it has a price, PRICE_ABSENT or
   PRICE_INEXACT when it is to be skipped, PRICE_BAD (with *err) when the table is broken. */
static int parse_entry(apr_pool_t *p, json_object *entry, const char *model, s2a_price *pr,
                       const char **err)
{
    apr_int64_t *slots[] = {&pr->input, &pr->output, &pr->cache_write_5m, &pr->cache_write_1h,
                            &pr->cache_read};
    int got[FIELDS], skip = PRICE_SET, search, i;

    memset(pr, 0, sizeof(*pr));
    for (i = 0; i < FIELDS; i++) {
        got[i] = price_field(p, entry, model, fields[i], slots[i], err);
        if (got[i] == PRICE_BAD) {
            return PRICE_BAD;
        }
        if (got[i] == PRICE_INEXACT) {
            skip = PRICE_INEXACT;
        }
    }
    /* Anthropic's published ratios; exact for any price that is a multiple of 10 pico-USD,
       rounded half up below that. */
    if (got[2] == PRICE_ABSENT) {
        pr->cache_write_5m = (pr->input * 5 + 2) / 4;
    }
    if (got[3] == PRICE_ABSENT) {
        pr->cache_write_1h = pr->input * 2;
    }
    if (got[4] == PRICE_ABSENT) {
        pr->cache_read = (pr->input + 5) / 10;
    }
    i = parse_tiers(p, entry, model, pr, err);
    if (i == PRICE_BAD || (search = web_search_price(p, entry, model, pr, err)) == PRICE_BAD) {
        return PRICE_BAD;
    }
    if (search == PRICE_INEXACT) {
        skip = PRICE_INEXACT;
    }
    if (got[0] == PRICE_ABSENT || got[1] == PRICE_ABSENT) {
        return PRICE_ABSENT;
    }
    return skip != PRICE_SET ? skip : i;
}

/* Adds every priced entry of the top-level object to t. */
static apr_status_t add_models(apr_pool_t *p, s2a_pricing *t, json_object *root, const char **err)
{
    struct json_object_iterator it = json_object_iter_begin(root);
    struct json_object_iterator end = json_object_iter_end(root);

    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *name = json_object_iter_peek_name(&it);
        json_object *entry = json_object_iter_peek_value(&it);
        s2a_price pr;
        int r;

        if (!json_object_is_type(entry, json_type_object) || strcmp(name, "sample_spec") == 0) {
            continue;
        }
        r = parse_entry(p, entry, name, &pr, err);
        if (r == PRICE_BAD) {
            return APR_EINVAL;
        }
        if (r == PRICE_INEXACT) {
            if (!t->skipped++) {
                t->first_skipped = apr_pstrdup(p, name);
            }
        } else if (r == PRICE_SET) {
            json_object *provider;
            const char *key = apr_pstrdup(p, name);
            apr_hash_set(t->models, key, APR_HASH_KEY_STRING, apr_pmemdup(p, &pr, sizeof(pr)));
            /* the names Anthropic's API takes: not "anthropic/…" aliases, not
             * other providers' copies (Bedrock, Vertex) */
            if (json_object_object_get_ex(entry, "litellm_provider", &provider) &&
                json_object_is_type(provider, json_type_string) &&
                strcmp(json_object_get_string(provider), "anthropic") == 0 && !strchr(name, '/')) {
                APR_ARRAY_PUSH(t->anthropic, const char *) = key;
            }
        }
    }
    return APR_SUCCESS;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

apr_status_t s2a_pricing_parse(apr_pool_t *p, const char *json, apr_size_t len, s2a_pricing **out,
                               const char **err)
{
    json_tokener *tok = NULL;
    json_object *root = NULL;
    s2a_pricing *t;
    apr_status_t rv = APR_EINVAL;
    apr_size_t end;

    *out = NULL;
    *err = NULL;
    if (len > INT_MAX) {
        *err = "price table too large";
        return APR_EINVAL;
    }
    tok = json_tokener_new();
    if (!tok) {
        *err = "out of memory";
        return APR_ENOMEM;
    }
    root = json_tokener_parse_ex(tok, json, (int)len);
    if (json_tokener_get_error(tok) == json_tokener_continue) {
        *err = "invalid JSON: unexpected end of data";
        goto done;
    }
    if (json_tokener_get_error(tok) != json_tokener_success) {
        apr_size_t at = (apr_size_t)json_tokener_get_parse_end(tok), line = 1, col = 1, i;
        for (i = 0; i < at && i < len; i++) {
            line += json[i] == '\n';
            col = json[i] == '\n' ? 1 : col + 1;
        }
        *err = apr_psprintf(p,
                            "invalid JSON at line %" APR_SIZE_T_FMT ", column %" APR_SIZE_T_FMT
                            " (offset %" APR_SIZE_T_FMT "): %s",
                            line, col, at, json_tokener_error_desc(json_tokener_get_error(tok)));
        goto done;
    }
    for (end = json_tokener_get_parse_end(tok); end < len; end++) {
        if (json[end] != ' ' && json[end] != '\t' && json[end] != '\r' && json[end] != '\n') {
            *err =
                apr_psprintf(p, "invalid JSON: data after the end at offset %" APR_SIZE_T_FMT, end);
            goto done;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        *err = "top level is not a JSON object";
        goto done;
    }

    t = apr_pcalloc(p, sizeof(*t));
    t->models = apr_hash_make(p);
    t->anthropic = apr_array_make(p, 16, sizeof(const char *));
    if (add_models(p, t, root, err) != APR_SUCCESS) {
        goto done;
    }
    qsort(t->anthropic->elts, (size_t)t->anthropic->nelts, sizeof(const char *), by_name);
    *out = t;
    rv = APR_SUCCESS;
done:
    json_object_put(root);
    json_tokener_free(tok);
    return rv;
}

apr_status_t s2a_pricing_load(apr_pool_t *p, const char *path, s2a_pricing **out, const char **err)
{
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    apr_status_t rv;
    char *buf = NULL, ebuf[256];
    apr_size_t got = 0;

    *out = NULL;
    *err = NULL;
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    }
    if (rv == APR_SUCCESS && (fi.size < 0 || fi.size > INT_MAX)) {
        rv = APR_EINVAL;
    }
    if (rv == APR_SUCCESS) {
        buf = apr_palloc(p, (apr_size_t)fi.size + 1);
        rv = apr_file_read_full(f, buf, (apr_size_t)fi.size, &got);
        if (rv == APR_EOF) {
            rv = APR_SUCCESS;
        }
    }
    if (f) {
        apr_file_close(f);
    }
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: %s", path,
                            rv == APR_EINVAL ? "file too large"
                                             : apr_strerror(rv, ebuf, sizeof(ebuf)));
        return rv;
    }
    buf[got] = '\0';
    rv = s2a_pricing_parse(p, buf, got, out, err);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "%s: %s", path, *err);
    } else {
        (*out)->source = buf;
        (*out)->source_len = got;
    }
    return rv;
}

const char *s2a_pricing_source(const s2a_pricing *t, apr_size_t *len)
{
    *len = t->source_len;
    return t->source;
}

const s2a_price *s2a_pricing_lookup(const s2a_pricing *t, const char *model)
{
    static const char vendor[] = "anthropic/";
    char key[256];
    apr_size_t len;
    const s2a_price *pr;

    if (!t || !model) {
        return NULL;
    }
    pr = apr_hash_get(t->models, model, APR_HASH_KEY_STRING);
    if (pr) {
        return pr;
    }
    len = strlen(model);
    if (len + sizeof(vendor) > sizeof(key)) {
        return NULL;
    }
    memcpy(key, vendor, sizeof(vendor) - 1);
    memcpy(key + sizeof(vendor) - 1, model, len);
    return apr_hash_get(t->models, key, (apr_ssize_t)(sizeof(vendor) - 1 + len));
}

const s2a_price *s2a_pricing_resolve(const s2a_pricing *t, const apr_array_header_t *rules,
                                     const char *model, const s2a_price_rule **rule)
{
    const s2a_price *price = s2a_pricing_lookup(t, model);
    int i;

    if (rule) {
        *rule = NULL;
    }
    if (price || !model) {
        return price;
    }
    for (i = 0; rules && i < rules->nelts; i++) {
        const s2a_price_rule *r = &APR_ARRAY_IDX(rules, i, s2a_price_rule);
        if (r->pattern && apr_fnmatch(r->pattern, model, 0) == APR_SUCCESS) {
            price = s2a_pricing_lookup(t, r->model);
            if (price && rule) {
                *rule = r;
            }
            return price;
        }
    }
    return NULL;
}

const s2a_price_rule *s2a_pricing_rules_check(const s2a_pricing *t, const apr_array_header_t *rules)
{
    int i;
    for (i = 0; rules && i < rules->nelts; i++) {
        const s2a_price_rule *r = &APR_ARRAY_IDX(rules, i, s2a_price_rule);
        if (!s2a_pricing_lookup(t, r->model)) {
            return r;
        }
    }
    return NULL;
}

const apr_array_header_t *s2a_pricing_anthropic(const s2a_pricing *t)
{
    return t->anthropic;
}

/* The five prices of a base or a tier, under the table's names, in USD per token. */
static void prices_json(apr_pool_t *p, json_object *o, const apr_int64_t v[FIELDS])
{
    int i;
    for (i = 0; i < FIELDS; i++) {
        json_object_object_add(o, fields[i], json_object_new_string(decimal_format(p, v[i], 12)));
    }
}

json_object *s2a_pricing_json(apr_pool_t *p, const s2a_pricing *t, const apr_array_header_t *rules)
{
    json_object *out = json_object_new_object(), *data = json_object_new_array();
    json_object *fallbacks = json_object_new_array();
    apr_array_header_t *names =
        apr_array_make(p, t ? (int)apr_hash_count(t->models) : 0, sizeof(const char *));
    apr_hash_index_t *hi;
    int i, j;

    for (hi = t ? apr_hash_first(p, t->models) : NULL; hi; hi = apr_hash_next(hi)) {
        APR_ARRAY_PUSH(names, const char *) = apr_hash_this_key(hi);
    }
    qsort(names->elts, (size_t)names->nelts, sizeof(const char *), by_name);
    for (i = 0; i < names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(names, i, const char *);
        const s2a_price *pr = s2a_pricing_lookup(t, name);
        const apr_int64_t base[FIELDS] = {pr->input, pr->output, pr->cache_write_5m,
                                          pr->cache_write_1h, pr->cache_read};
        json_object *m = json_object_new_object(), *tiers = json_object_new_array();

        json_object_object_add(m, "model", json_object_new_string(name));
        prices_json(p, m, base);
        for (j = 0; j < pr->ntiers; j++) {
            const s2a_price_tier *tr = &pr->tier[j];
            const apr_int64_t v[FIELDS] = {tr->input, tr->output, tr->cache_write_5m,
                                           tr->cache_write_1h, tr->cache_read};
            json_object *o = json_object_new_object();
            json_object_object_add(o, "above_tokens", json_object_new_int64(tr->above));
            prices_json(p, o, v);
            json_object_array_add(tiers, o);
        }
        json_object_object_add(m, "long_context", tiers);
        /* USD per search, as the table writes it; null: the web search tool is not priced */
        json_object_object_add(m, "web_search_cost_per_search",
                               pr->web_search_set
                                   ? json_object_new_string(decimal_format(p, pr->web_search, 12))
                                   : NULL);
        json_object_array_add(data, m);
    }
    for (i = 0; rules && i < rules->nelts; i++) {
        const s2a_price_rule *r = &APR_ARRAY_IDX(rules, i, s2a_price_rule);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "pattern", json_object_new_string(r->pattern));
        json_object_object_add(o, "model", json_object_new_string(r->model));
        json_object_array_add(fallbacks, o);
    }
    json_object_object_add(out, "count", json_object_new_int(names->nelts));
    json_object_object_add(out, "skipped", json_object_new_int(t ? t->skipped : 0));
    json_object_object_add(out, "data", data);
    json_object_object_add(out, "fallbacks", fallbacks);
    return out;
}

int s2a_pricing_count(const s2a_pricing *t)
{
    return t ? (int)apr_hash_count(t->models) : 0;
}

int s2a_pricing_skipped(const s2a_pricing *t, const char **first)
{
    if (first) {
        *first = t ? t->first_skipped : NULL;
    }
    return t ? t->skipped : 0;
}

static apr_int64_t nonneg(apr_int64_t v)
{
    return v < 0 ? 0 : v;
}

/* Prices within [0, PRICE_MAX], as the table guarantees, whoever filled the struct. */
static uint64_t price_of(apr_int64_t v)
{
    return (uint64_t)(v < 0 ? 0 : v > PRICE_MAX ? PRICE_MAX : v);
}

/* pico / 1000, rounded half up, saturated. */
static apr_int64_t pico_to_nano(u128 pico)
{
    u128 n = (pico + PICO_PER_NANO / 2) / PICO_PER_NANO;
    return n > (u128)INT64_MAX ? INT64_MAX : (apr_int64_t)n;
}

/* The rates a request is billed at: the highest tier whose threshold its input tokens exceed,
   else the base. Sets *above to that threshold (0: base). */
static void rates_of(const s2a_price *pr, const s2a_usage *u, uint64_t rate[5], apr_int64_t *above)
{
    u128 in =
        (u128)nonneg(u->input) + (u128)nonneg(u->cache_creation) + (u128)nonneg(u->cache_read);
    int n = pr->ntiers < 0 ? 0 : pr->ntiers > S2A_PRICE_TIERS ? S2A_PRICE_TIERS : pr->ntiers;
    int i, pick = -1;

    for (i = 0; i < n; i++) {
        if (pr->tier[i].above >= 0 && in > (u128)pr->tier[i].above &&
            (pick < 0 || pr->tier[i].above > pr->tier[pick].above)) {
            pick = i;
        }
    }
    if (pick < 0) {
        *above = 0;
        rate[0] = price_of(pr->input);
        rate[1] = price_of(pr->output);
        rate[2] = price_of(pr->cache_write_5m);
        rate[3] = price_of(pr->cache_write_1h);
        rate[4] = price_of(pr->cache_read);
        return;
    }
    *above = pr->tier[pick].above;
    rate[0] = price_of(pr->tier[pick].input);
    rate[1] = price_of(pr->tier[pick].output);
    rate[2] = price_of(pr->tier[pick].cache_write_5m);
    rate[3] = price_of(pr->tier[pick].cache_write_1h);
    rate[4] = price_of(pr->tier[pick].cache_read);
}

void s2a_cost_compute(const s2a_price *pr, const s2a_usage *u, apr_int64_t multiplier_ppm,
                      s2a_cost *out)
{
    apr_int64_t created = nonneg(u->cache_creation);
    apr_int64_t hour = nonneg(u->cache_1h);
    u128 in, op, cw, cr, st, total, q, r, actual;
    uint64_t ppm = (uint64_t)nonneg(multiplier_ppm), rate[5];
    const u128 scale = (u128)PICO_PER_NANO * PPM;

    if (hour > created) {
        hour = created;
    }
    rates_of(pr, u, rate, &out->above);
    /* Prices are below 2^60 and counts below 2^63, so each product is below 2^123 and
       the sum of the six below 2^126: no overflow in 128 bits. */
    in = (u128)nonneg(u->input) * rate[0];
    op = (u128)nonneg(u->output) * rate[1];
    cw = (u128)(created - hour) * rate[2] + (u128)hour * rate[3];
    cr = (u128)nonneg(u->cache_read) * rate[4];
    st = (u128)nonneg(u->web_search) * price_of(pr->web_search_set ? pr->web_search : 0);
    total = in + op + cw + cr + st;

    out->input = pico_to_nano(in);
    out->output = pico_to_nano(op);
    out->cache_write = pico_to_nano(cw);
    out->cache_read = pico_to_nano(cr);
    out->server_tools = pico_to_nano(st);
    out->total = pico_to_nano(total);

    /* total * ppm / 1e9 rounded half up, split so the product cannot overflow. */
    q = total / scale;
    r = total % scale;
    if (q && ppm > ~(u128)0 / 4 / q) {
        out->actual = INT64_MAX;
        return;
    }
    actual = q * ppm + (r * ppm + scale / 2) / scale;
    out->actual = actual > (u128)INT64_MAX ? INT64_MAX : (apr_int64_t)actual;
}
