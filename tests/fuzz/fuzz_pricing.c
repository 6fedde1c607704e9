/* The price table and money arithmetic (s2a_pricing.h). A table that
 * parses prices every entry json-c sees there at exactly its decimal text
 * (or skips it for precision), with the documented cache defaults, and its
 * Anthropic list is sorted and looked up. Costs equal the header's formula
 * computed here in 128 bits. Decimal USD and multiplier texts parse to the
 * exact rounded value or are refused for their syntax or range, and every
 * amount's text parses back to it.
 *
 * Input: a table when it starts with '{'; else 5 prices, 5 counts and a
 * multiplier (8 bytes each), then lines of decimal text. */
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_pricing.h"

__extension__ typedef unsigned __int128 u128;

/* The largest price a table takes (larger ones fail it). */
#define PRICE_LIMIT (INT64_MAX / 8)

static apr_int64_t nano_of(u128 pico)
{
    u128 n = (pico + 500) / 1000;
    return n > (u128)INT64_MAX ? INT64_MAX : (apr_int64_t)n;
}

static u128 nonneg(apr_int64_t v)
{
    return v < 0 ? 0 : (u128)v;
}

/* The header's formula, in 128 bits; 0 when actual cannot be computed here
 * without overflow. */
static int cost_model(const s2a_price *pr, const s2a_usage *u, apr_int64_t ppm, s2a_cost *out)
{
    u128 created = nonneg(u->cache_creation), hour = nonneg(u->cache_1h), in, op, cw, cr, st;
    u128 total;
    u128 m = nonneg(ppm);

    u128 tokens = nonneg(u->input) + created + nonneg(u->cache_read);
    apr_int64_t rate[5] = {pr->input, pr->output, pr->cache_write_5m, pr->cache_write_1h,
                           pr->cache_read};
    int i, pick = -1;

    if (hour > created) {
        hour = created;
    }
    /* the highest long-context threshold the input tokens exceed decides every rate */
    for (i = 0; i < pr->ntiers; i++) {
        if (tokens > (u128)pr->tier[i].above &&
            (pick < 0 || pr->tier[i].above > pr->tier[pick].above)) {
            pick = i;
        }
    }
    out->above = pick < 0 ? 0 : pr->tier[pick].above;
    if (pick >= 0) {
        const s2a_price_tier *t = &pr->tier[pick];
        rate[0] = t->input;
        rate[1] = t->output;
        rate[2] = t->cache_write_5m;
        rate[3] = t->cache_write_1h;
        rate[4] = t->cache_read;
    }
    in = nonneg(u->input) * (u128)rate[0];
    op = nonneg(u->output) * (u128)rate[1];
    cw = (created - hour) * (u128)rate[2] + hour * (u128)rate[3];
    cr = nonneg(u->cache_read) * (u128)rate[4];
    st = nonneg(u->web_search) * (u128)(pr->web_search_set ? pr->web_search : 0);
    total = in + op + cw + cr + st;
    out->input = nano_of(in);
    out->output = nano_of(op);
    out->cache_write = nano_of(cw);
    out->cache_read = nano_of(cr);
    out->server_tools = nano_of(st);
    out->total = nano_of(total);
    if (m && total > ~(u128)0 / m) {
        return 0;
    }
    total = (total * m + 500000000) / 1000000000;
    out->actual = total > (u128)INT64_MAX ? INT64_MAX : (apr_int64_t)total;
    return 1;
}

static void check_cost(const s2a_price *pr, const s2a_usage *u, apr_int64_t ppm)
{
    s2a_cost got, want, at_one;

    s2a_cost_compute(pr, u, ppm, &got);
    FUZZ_CHECK(got.input >= 0 && got.output >= 0 && got.cache_write >= 0 && got.cache_read >= 0);
    FUZZ_CHECK(got.total >= 0 && got.actual >= 0);
    if (cost_model(pr, u, ppm, &want)) {
        FUZZ_CHECK(memcmp(&got, &want, sizeof(got)) == 0);
    } else {
        FUZZ_CHECK(got.input == want.input && got.output == want.output &&
                   got.cache_write == want.cache_write && got.cache_read == want.cache_read &&
                   got.total == want.total);
    }
    s2a_cost_compute(pr, u, 1000000, &at_one);
    FUZZ_CHECK(at_one.actual == at_one.total);
}

/* Decimal text by its syntax: [+-] digits [. digits] [e [+-] digits], at
 * least one digit before the exponent. */
static int decimal_syntax(const char *s)
{
    int digits = 0;

    if (*s == '+' || *s == '-') {
        s++;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        digits++;
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++) {
            digits++;
        }
    }
    if (!digits) {
        return 0;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') {
            s++;
        }
        if (!(*s >= '0' && *s <= '9')) {
            return 0;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    return *s == '\0';
}

/* The nano value of a text without exponent, rounded half away from zero
 * past 9 decimals: 1 with *v, 0 out of range, -1 not such a text. */
static int plain_nano(const char *s, apr_int64_t *v)
{
    u128 mag = 0;
    int neg = 0, decimals = 0, round_up = 0;
    const u128 limit = (u128)1 << 100;

    if (strpbrk(s, "eE")) {
        return -1;
    }
    if (*s == '+' || *s == '-') {
        neg = *s++ == '-';
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        mag = mag * 10 + (u128)(*s - '0');
        if (mag > limit) {
            return 0;
        }
    }
    if (*s == '.') {
        s++;
    }
    for (; *s >= '0' && *s <= '9'; s++, decimals++) {
        if (decimals < 9) {
            mag = mag * 10 + (u128)(*s - '0');
        } else if (decimals == 9) {
            round_up = *s >= '5';
        }
    }
    for (; decimals < 9; decimals++) {
        mag *= 10;
    }
    mag += (u128)round_up;
    if (mag > (u128)INT64_MAX) {
        return 0;
    }
    *v = neg ? -(apr_int64_t)mag : (apr_int64_t)mag;
    return 1;
}

static void check_text(apr_pool_t *p, const char *s)
{
    apr_int64_t nano = 0, again = 0, ppm = 0, want = 0;
    int r = s2a_usd_parse_nano(s, &nano), plain;
    int m = s2a_multiplier_parse_ppm(s, &ppm);

    FUZZ_CHECK(r == 0 || r == -1);
    if (!decimal_syntax(s)) {
        FUZZ_CHECK(r == -1 && m == -1);
        return;
    }
    plain = strlen(s) < 40 ? plain_nano(s, &want) : -1;
    if (plain == 1) {
        FUZZ_CHECK(r == 0 && nano == want);
    } else if (plain == 0) {
        FUZZ_CHECK(r == -1);
    }
    if (r == 0) {
        FUZZ_CHECK(s2a_usd_parse_nano(s2a_usd_format(p, nano), &again) == 0 && again == nano);
        if (nano > 0 && nano % 1000 == 0) {
            FUZZ_CHECK(m == 0 && ppm == nano / 1000);
        }
        if (nano <= 0) {
            FUZZ_CHECK(m == -1);
        }
    }
    if (m == 0) {
        FUZZ_CHECK(ppm > 0);
    }
}

/* The price of each field of a priced entry: its text's, or the default. */
static void check_entry(const s2a_price *pr, json_object *entry)
{
    static const char *const fields[] = {
        "input_cost_per_token", "output_cost_per_token", "cache_creation_input_token_cost",
        "cache_creation_input_token_cost_above_1hr", "cache_read_input_token_cost"};
    const apr_int64_t got[] = {pr->input, pr->output, pr->cache_write_5m, pr->cache_write_1h,
                               pr->cache_read};
    const apr_int64_t defaults[] = {0, 0, (pr->input * 5 + 2) / 4, pr->input * 2,
                                    (pr->input + 5) / 10};
    apr_int64_t nano;
    json_object *v;
    int i;

    for (i = 0; i < 5; i++) {
        if (json_object_object_get_ex(entry, fields[i], &v) && v) {
            FUZZ_CHECK(got[i] >= 0 && got[i] <= PRICE_LIMIT);
            /* the same text read as nano-USD is the pico price rounded */
            FUZZ_CHECK(s2a_usd_parse_nano(json_object_get_string(v), &nano) == 0);
            FUZZ_CHECK(nano == nano_of((u128)got[i]));
        } else {
            FUZZ_CHECK(i >= 2 && got[i] == defaults[i]);
        }
    }
}

static void check_table(apr_pool_t *p, const char *buf, size_t len)
{
    s2a_pricing *t = NULL;
    const char *err = NULL, *first = NULL;
    const apr_array_header_t *anthropic;
    json_tokener *tok;
    json_object *root;
    int skipped, i;

    if (s2a_pricing_parse(p, buf, len, &t, &err) != APR_SUCCESS) {
        FUZZ_CHECK(t == NULL && err && *err);
        return;
    }
    FUZZ_CHECK(t && !err && s2a_pricing_count(t) >= 0);
    skipped = s2a_pricing_skipped(t, &first);
    FUZZ_CHECK(skipped >= 0 && (skipped > 0) == (first != NULL));
    anthropic = s2a_pricing_anthropic(t);
    for (i = 0; i < anthropic->nelts; i++) {
        const char *name = APR_ARRAY_IDX(anthropic, i, const char *);
        FUZZ_CHECK(!strchr(name, '/') && s2a_pricing_lookup(t, name));
        FUZZ_CHECK(i == 0 || strcmp(APR_ARRAY_IDX(anthropic, i - 1, const char *), name) < 0);
    }
    if (memmem(buf, len, "\\u0000", 6)) {
        return; /* json-c cuts such names where the table's hash does not */
    }
    tok = json_tokener_new();
    root = json_tokener_parse_ex(tok, buf, (int)len);
    FUZZ_CHECK(json_object_is_type(root, json_type_object));
    {
        json_object_object_foreach(root, name, entry)
        {
            const s2a_price *pr;
            json_object *in, *out;

            /* "anthropic/<name>" would answer for a name skipped */
            if (!json_object_is_type(entry, json_type_object) || strcmp(name, "sample_spec") == 0 ||
                json_object_object_get_ex(root, apr_pstrcat(p, "anthropic/", name, NULL), NULL)) {
                continue;
            }
            pr = s2a_pricing_lookup(t, name);
            if (!json_object_object_get_ex(entry, "input_cost_per_token", &in) || !in ||
                !json_object_object_get_ex(entry, "output_cost_per_token", &out) || !out) {
                FUZZ_CHECK(pr == NULL);
            } else if (!pr) {
                FUZZ_CHECK(skipped > 0);
            } else {
                check_entry(pr, entry);
                /* a model it lacks, priced by a rule that names this one */
                {
                    apr_array_header_t *rules = apr_array_make(p, 1, sizeof(s2a_price_rule));
                    const s2a_price_rule *used = NULL;
                    s2a_price_rule *r = apr_array_push(rules);
                    r->pattern = "*";
                    r->model = name;
                    FUZZ_CHECK(s2a_pricing_resolve(t, rules, "\x01no such model", &used) == pr);
                    FUZZ_CHECK(used == r);
                    FUZZ_CHECK(s2a_pricing_resolve(t, rules, name, &used) == pr && !used);
                }
            }
        }
    }
    json_object_put(root);
    json_tokener_free(tok);
}

static void check_numbers(apr_pool_t *p, fuzz_input *in)
{
    s2a_price pr;
    s2a_usage u;
    apr_int64_t ppm,
        *prices[] = {&pr.input, &pr.output, &pr.cache_write_5m, &pr.cache_write_1h, &pr.cache_read};
    apr_int64_t *counts[] = {&u.input,    &u.output,     &u.cache_creation,
                             &u.cache_1h, &u.cache_read, &u.web_search};
    int i;

    memset(&u, 0, sizeof(u));
    memset(&pr, 0, sizeof(pr));
    for (i = 0; i < 5; i++) {
        *prices[i] = (apr_int64_t)(fuzz_u64(in) % ((uint64_t)PRICE_LIMIT + 1));
    }
    pr.web_search = (apr_int64_t)(fuzz_u64(in) % ((uint64_t)PRICE_LIMIT + 1));
    pr.web_search_set = (int)(fuzz_u64(in) & 1);
    /* long-context tiers, thresholds as the table allows them (1 to 10^9 thousand) */
    pr.ntiers = (int)(fuzz_u64(in) % (S2A_PRICE_TIERS + 1));
    for (i = 0; i < pr.ntiers; i++) {
        s2a_price_tier *t = &pr.tier[i];
        t->above = (apr_int64_t)(fuzz_u64(in) % 1000000000 + 1) * 1000;
        t->input = (apr_int64_t)(fuzz_u64(in) % ((uint64_t)PRICE_LIMIT + 1));
        t->output = (apr_int64_t)(fuzz_u64(in) % ((uint64_t)PRICE_LIMIT + 1));
        t->cache_write_5m = (apr_int64_t)(fuzz_u64(in) % ((uint64_t)PRICE_LIMIT + 1));
        t->cache_write_1h = (apr_int64_t)(fuzz_u64(in) % ((uint64_t)PRICE_LIMIT + 1));
        t->cache_read = (apr_int64_t)(fuzz_u64(in) % ((uint64_t)PRICE_LIMIT + 1));
    }
    for (i = 0; i < 6; i++) {
        *counts[i] = (apr_int64_t)fuzz_u64(in);
    }
    ppm = (apr_int64_t)fuzz_u64(in);
    check_cost(&pr, &u, ppm);
    check_cost(&pr, &u, ppm < 0 ? -(ppm + 1) : ppm >> 32);
    for (i = 0; i < 6; i++) {
        *counts[i] >>= 32;
    }
    check_cost(&pr, &u, ppm >> 40);
    FUZZ_CHECK(s2a_usd_format(p, (apr_int64_t)(ppm == INT64_MIN ? 0 : ppm)) != NULL);
    if (ppm != INT64_MIN) {
        apr_int64_t back = 0;
        /* every amount but INT64_MIN, whose magnitude no text may have */
        FUZZ_CHECK(s2a_usd_parse_nano(s2a_usd_format(p, ppm), &back) == 0 && back == ppm);
    }
    while (in->n) {
        size_t n;
        const uint8_t *line = fuzz_take(in, in->n, &n);
        const uint8_t *nl = memchr(line, '\n', n);
        if (nl) {
            in->p = nl + 1;
            in->n = n - (size_t)(nl + 1 - line);
            n = (size_t)(nl - line);
        }
        check_text(p, fuzz_copy(p, line, n, 1));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};

    if (size && data[0] == '{') {
        check_table(p, fuzz_copy(p, data, size, 0), size);
    } else {
        check_numbers(p, &in);
    }
    apr_pool_destroy(p);
    return 0;
}
