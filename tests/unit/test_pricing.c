/* Price table parsing and exact cost arithmetic. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_pricing.h"
#include "s2a_test.h"

static apr_pool_t *pool;

/* Claude Sonnet 4 list prices per token, as the table writes them. */
static const char TABLE[] =
    "{\n"
    "  \"sample_spec\": {\"input_cost_per_token\": 0.0, \"output_cost_per_token\": 0.0,\n"
    "                  \"max_tokens\": \"set to max_output_tokens\"},\n"
    "  \"claude-sonnet-4-20250514\": {\"input_cost_per_token\": 3e-06,\n"
    "    \"output_cost_per_token\": 1.5e-05, \"cache_creation_input_token_cost\": 3.75e-06,\n"
    "    \"cache_creation_input_token_cost_above_1hr\": 6e-06,\n"
    "    \"cache_read_input_token_cost\": 3e-07, \"litellm_provider\": \"anthropic\",\n"
    "    \"supports_vision\": true, \"max_tokens\": 64000},\n"
    "  \"anthropic/claude-opus-4-1\": {\"input_cost_per_token\": 1.5e-05,\n"
    "    \"output_cost_per_token\": 7.5e-05},\n"
    "  \"text-embedding-3-small\": {\"input_cost_per_token\": 2e-08, \"mode\": \"embedding\"},\n"
    "  \"forms\": {\"input_cost_per_token\": 0.000003, \"output_cost_per_token\": 3E-6,\n"
    "    \"cache_creation_input_token_cost\": 0.3e-5,\n"
    "    \"cache_creation_input_token_cost_above_1hr\": 30e-7,\n"
    "    \"cache_read_input_token_cost\": 3.0000e-06},\n"
    "  \"free\": {\"input_cost_per_token\": 0, \"output_cost_per_token\": 0.0,\n"
    "    \"cache_read_input_token_cost\": null},\n"
    "  \"whole\": {\"input_cost_per_token\": 2, \"output_cost_per_token\": 1.5e-05},\n"
    "  \"too-fine\": {\"input_cost_per_token\": 2.9999900000000002e-06,\n"
    "    \"output_cost_per_token\": 1.5e-05},\n"
    "  \"not-an-entry\": [1, 2, 3]\n"
    "}\n";

static s2a_pricing *table(void)
{
    s2a_pricing *t = NULL;
    const char *err = NULL;

    S2A_CHECK_INT(s2a_pricing_parse(pool, TABLE, strlen(TABLE), &t, &err), APR_SUCCESS);
    S2A_CHECK(err == NULL);
    return t;
}

static void test_table(void)
{
    s2a_pricing *t = table();
    const s2a_price *pr;
    const char *first = NULL;

    if (!t) {
        return;
    }
    /* sonnet, opus, forms, free, whole; not sample_spec, the embedding (no output price),
       the entry with sub-pico precision or the non-object. */
    S2A_CHECK_INT(s2a_pricing_count(t), 5);
    S2A_CHECK_INT(s2a_pricing_skipped(t, &first), 1);
    S2A_CHECK_STR(first, "too-fine");
    S2A_CHECK(s2a_pricing_lookup(t, "too-fine") == NULL);
    S2A_CHECK(s2a_pricing_lookup(t, "sample_spec") == NULL);
    S2A_CHECK(s2a_pricing_lookup(t, "text-embedding-3-small") == NULL);
    S2A_CHECK(s2a_pricing_lookup(t, "not-an-entry") == NULL);
    S2A_CHECK(s2a_pricing_lookup(t, "claude-unknown") == NULL);
    S2A_CHECK(s2a_pricing_lookup(t, NULL) == NULL);

    pr = s2a_pricing_lookup(t, "claude-sonnet-4-20250514");
    S2A_CHECK(pr != NULL);
    if (pr) {
        S2A_CHECK_INT(pr->input, 3000000);
        S2A_CHECK_INT(pr->output, 15000000);
        S2A_CHECK_INT(pr->cache_write_5m, 3750000);
        S2A_CHECK_INT(pr->cache_write_1h, 6000000);
        S2A_CHECK_INT(pr->cache_read, 300000);
    }

    /* Found under "anthropic/" + name; missing cache prices follow Anthropic's ratios. */
    pr = s2a_pricing_lookup(t, "claude-opus-4-1");
    S2A_CHECK(pr != NULL);
    S2A_CHECK(pr == s2a_pricing_lookup(t, "anthropic/claude-opus-4-1"));
    if (pr) {
        S2A_CHECK_INT(pr->input, 15000000);
        S2A_CHECK_INT(pr->output, 75000000);
        S2A_CHECK_INT(pr->cache_write_5m, 18750000);
        S2A_CHECK_INT(pr->cache_write_1h, 30000000);
        S2A_CHECK_INT(pr->cache_read, 1500000);
    }

    /* The same price in five spellings. */
    pr = s2a_pricing_lookup(t, "forms");
    S2A_CHECK(pr != NULL);
    if (pr) {
        S2A_CHECK_INT(pr->input, 3000000);
        S2A_CHECK_INT(pr->output, 3000000);
        S2A_CHECK_INT(pr->cache_write_5m, 3000000);
        S2A_CHECK_INT(pr->cache_write_1h, 3000000);
        S2A_CHECK_INT(pr->cache_read, 3000000);
    }

    pr = s2a_pricing_lookup(t, "free");
    S2A_CHECK(pr != NULL);
    if (pr) {
        S2A_CHECK_INT(pr->input, 0);
        S2A_CHECK_INT(pr->cache_read, 0);
    }
    pr = s2a_pricing_lookup(t, "whole");
    S2A_CHECK(pr != NULL);
    if (pr) {
        S2A_CHECK_INT(pr->input, 2000000000000LL);
        S2A_CHECK_INT(pr->cache_write_5m, 2500000000000LL);
    }
}

static void test_fallback_rounding(void)
{
    static const char tiny[] = "{\"m\":{\"input_cost_per_token\":1e-12,"
                               "\"output_cost_per_token\":1e-12}}";
    s2a_pricing *t = NULL;
    const char *err = NULL;
    const s2a_price *pr;

    S2A_CHECK_INT(s2a_pricing_parse(pool, tiny, strlen(tiny), &t, &err), APR_SUCCESS);
    pr = t ? s2a_pricing_lookup(t, "m") : NULL;
    S2A_CHECK(pr != NULL);
    if (pr) {
        S2A_CHECK_INT(pr->input, 1);
        S2A_CHECK_INT(pr->cache_write_5m, 1); /* 1.25 rounds to 1 */
        S2A_CHECK_INT(pr->cache_write_1h, 2);
        S2A_CHECK_INT(pr->cache_read, 0); /* 0.1 rounds to 0 */
    }
}

/* Parsing must fail, with a message containing want. */
static void expect_error(const char *json, const char *want)
{
    s2a_pricing *t = (s2a_pricing *)&t;
    const char *err = NULL;

    S2A_CHECK(s2a_pricing_parse(pool, json, strlen(json), &t, &err) != APR_SUCCESS);
    S2A_CHECK(t == NULL);
    S2A_CHECK(err != NULL && strstr(err, want) != NULL);
    if (err && !strstr(err, want)) {
        fprintf(stderr, "  message was: %s\n", err);
    }
}

static void test_malformed(void)
{
    expect_error("", "invalid JSON");
    expect_error("{\"m\": {\"input_cost_per_token\": 3e-06,", "invalid JSON");
    expect_error("{\"m\": {]}", "invalid JSON");
    expect_error("{} x", "data after the end");
    expect_error("[]", "not a JSON object");
    expect_error("{\"m\":{\"input_cost_per_token\":-3e-06,\"output_cost_per_token\":1e-06}}",
                 "model \"m\": input_cost_per_token is negative");
    expect_error("{\"m\":{\"input_cost_per_token\":\"3e-06\",\"output_cost_per_token\":1e-06}}",
                 "model \"m\": input_cost_per_token is not a number");
    expect_error("{\"m\":{\"input_cost_per_token\":1e-06,\"output_cost_per_token\":1e-06,"
                 "\"cache_read_input_token_cost\":true}}",
                 "cache_read_input_token_cost is not a number");
    expect_error("{\"m\":{\"input_cost_per_token\":1e400,\"output_cost_per_token\":1e-06}}",
                 "input_cost_per_token is too large");
    expect_error("{\"m\":{\"input_cost_per_token\":99999999,\"output_cost_per_token\":1e-06}}",
                 "input_cost_per_token is too large");
    expect_error("{\"m\":{\"input_cost_per_token\":NaN,\"output_cost_per_token\":1e-06}}",
                 "input_cost_per_token");
}

static void test_load(void)
{
    const char *dir = NULL, *path;
    char *tmpl;
    apr_file_t *f;
    s2a_pricing *t = NULL;
    const char *err = NULL;

    S2A_CHECK_INT(apr_temp_dir_get(&dir, pool), APR_SUCCESS);
    tmpl = apr_pstrcat(pool, dir, "/s2a_test_pricing_XXXXXX", NULL);
    S2A_CHECK_INT(
        apr_file_mktemp(&f, tmpl, APR_FOPEN_CREATE | APR_FOPEN_WRITE | APR_FOPEN_EXCL, pool),
        APR_SUCCESS);
    path = tmpl;
    apr_file_puts(TABLE, f);
    apr_file_close(f);
    S2A_CHECK_INT(s2a_pricing_load(pool, path, &t, &err), APR_SUCCESS);
    S2A_CHECK_INT(s2a_pricing_count(t), 5);

    apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_TRUNCATE, APR_OS_DEFAULT, pool);
    apr_file_puts("{\"m\":{\"input_cost_per_token\":-1,\"output_cost_per_token\":1}}", f);
    apr_file_close(f);
    S2A_CHECK(s2a_pricing_load(pool, path, &t, &err) != APR_SUCCESS);
    S2A_CHECK(err && strstr(err, path) && strstr(err, "is negative"));
    apr_file_remove(path, pool);

    S2A_CHECK(s2a_pricing_load(pool, path, &t, &err) != APR_SUCCESS);
    S2A_CHECK(t == NULL);
    S2A_CHECK(err && strstr(err, path) == err);
}

static const s2a_price SONNET4 = {3000000, 15000000, 3750000, 6000000, 300000};

static s2a_usage usage(apr_int64_t in, apr_int64_t out, apr_int64_t cc, apr_int64_t c1h,
                       apr_int64_t cr)
{
    s2a_usage u;
    memset(&u, 0, sizeof(u));
    u.input = in;
    u.output = out;
    u.cache_creation = cc;
    u.cache_1h = c1h;
    u.cache_read = cr;
    return u;
}

static void test_cost(void)
{
    s2a_usage u = usage(1000, 500, 2000, 1000, 3000);
    s2a_cost c;

    /* in 1000 * 3e-6 = 0.003; out 500 * 1.5e-5 = 0.0075;
       write 1000 * 3.75e-6 + 1000 * 6e-6 = 0.00975; read 3000 * 3e-7 = 0.0009;
       total 0.02115; actual x1.5 = 0.031725 (USD). */
    s2a_cost_compute(&SONNET4, &u, 1500000, &c);
    S2A_CHECK_INT(c.input, 3000000);
    S2A_CHECK_INT(c.output, 7500000);
    S2A_CHECK_INT(c.cache_write, 9750000);
    S2A_CHECK_INT(c.cache_read, 900000);
    S2A_CHECK_INT(c.total, 21150000);
    S2A_CHECK_INT(c.actual, 31725000);

    /* Each class alone. */
    u = usage(1, 0, 0, 0, 0);
    s2a_cost_compute(&SONNET4, &u, 1000000, &c);
    S2A_CHECK_INT(c.input, 3000);
    S2A_CHECK_INT(c.total, 3000);
    S2A_CHECK_INT(c.output + c.cache_write + c.cache_read, 0);
    u = usage(0, 1, 0, 0, 0);
    s2a_cost_compute(&SONNET4, &u, 1000000, &c);
    S2A_CHECK_INT(c.output, 15000);
    u = usage(0, 0, 1, 0, 0);
    s2a_cost_compute(&SONNET4, &u, 1000000, &c);
    S2A_CHECK_INT(c.cache_write, 3750);
    u = usage(0, 0, 1, 1, 0);
    s2a_cost_compute(&SONNET4, &u, 1000000, &c);
    S2A_CHECK_INT(c.cache_write, 6000);
    u = usage(0, 0, 0, 0, 1);
    s2a_cost_compute(&SONNET4, &u, 1000000, &c);
    S2A_CHECK_INT(c.cache_read, 300);
    S2A_CHECK_INT(c.actual, 300);

    /* A 1h count above the total is capped at it. */
    u = usage(0, 0, 10, 50, 0);
    s2a_cost_compute(&SONNET4, &u, 1000000, &c);
    S2A_CHECK_INT(c.cache_write, 60000);

    /* Multiplier 0 and negative counts cost nothing. */
    u = usage(-5, -1, -3, -2, -9);
    s2a_cost_compute(&SONNET4, &u, 1000000, &c);
    S2A_CHECK_INT(c.total, 0);
    u = usage(1000, 0, 0, 0, 0);
    s2a_cost_compute(&SONNET4, &u, 0, &c);
    S2A_CHECK_INT(c.total, 3000000);
    S2A_CHECK_INT(c.actual, 0);
}

static void test_rounding(void)
{
    static const s2a_price PICO = {1, 1, 1, 1, 1};
    s2a_usage u;
    s2a_cost c;

    /* 500 pico is half a nano: up. 499 is not. */
    u = usage(500, 499, 0, 0, 0);
    s2a_cost_compute(&PICO, &u, 1000000, &c);
    S2A_CHECK_INT(c.input, 1);
    S2A_CHECK_INT(c.output, 0);
    S2A_CHECK_INT(c.total, 1); /* 999 pico */
    S2A_CHECK_INT(c.actual, 1);

    /* The total is rounded once from the exact sum, not summed from rounded classes. */
    u = usage(400, 400, 0, 0, 0);
    s2a_cost_compute(&PICO, &u, 1000000, &c);
    S2A_CHECK_INT(c.input + c.output, 0);
    S2A_CHECK_INT(c.total, 1);

    /* actual is rounded once from total_pico * multiplier: 1499 pico x 1.001 = 1500.499 pico
       -> 2 nano, where rounding the total first would give 1. */
    u = usage(1499, 0, 0, 0, 0);
    s2a_cost_compute(&PICO, &u, 1001000, &c);
    S2A_CHECK_INT(c.total, 1);
    S2A_CHECK_INT(c.actual, 2);
    /* 333 pico x 1.5 = 499.5 pico -> 0; 334 x 1.5 = 501 -> 1. */
    u = usage(333, 0, 0, 0, 0);
    s2a_cost_compute(&PICO, &u, 1500000, &c);
    S2A_CHECK_INT(c.actual, 0);
    u = usage(334, 0, 0, 0, 0);
    s2a_cost_compute(&PICO, &u, 1500000, &c);
    S2A_CHECK_INT(c.actual, 1);
    /* 1000 pico x 1.5 = 1.5 nano, exactly half: up. */
    u = usage(1000, 0, 0, 0, 0);
    s2a_cost_compute(&PICO, &u, 1500000, &c);
    S2A_CHECK_INT(c.actual, 2);
}

static void test_huge(void)
{
    static const s2a_price OPUS = {15000000, 75000000, 18750000, 30000000, 1500000};
    static const s2a_price MAX = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    s2a_usage u = usage(1000000000, 1000000000, 1000000000, 400000000, 1000000000);
    s2a_cost c;

    /* 1e9 tokens per class at Opus prices: 15000 + 75000 + (6e8 * 18.75e-6 + 4e8 * 3e-5 =
       11250 + 12000) + 1500 USD = 114750 USD; x 2.5 = 286875 USD. */
    s2a_cost_compute(&OPUS, &u, 2500000, &c);
    S2A_CHECK_INT(c.input, 15000000000000LL);
    S2A_CHECK_INT(c.output, 75000000000000LL);
    S2A_CHECK_INT(c.cache_write, 23250000000000LL);
    S2A_CHECK_INT(c.cache_read, 1500000000000LL);
    S2A_CHECK_INT(c.total, 114750000000000LL);
    S2A_CHECK_INT(c.actual, 286875000000000LL);

    /* Absurd figures saturate instead of wrapping. */
    u = usage(INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX / 2, INT64_MAX);
    s2a_cost_compute(&MAX, &u, INT64_MAX, &c);
    S2A_CHECK_INT(c.total, INT64_MAX);
    S2A_CHECK_INT(c.actual, INT64_MAX);
    S2A_CHECK_INT(c.input, INT64_MAX);
    s2a_cost_compute(&SONNET4, &u, 1000000, &c);
    S2A_CHECK(c.total > 0 && c.actual == c.total);
}

static void test_usd(void)
{
    static const apr_int64_t samples[] = {
        0,          1,
        -1,         999999999,
        1000000000, 12500000000LL,
        -1000,      123456789012LL,
        INT64_MAX,  INT64_MIN + 1,
    };
    apr_int64_t n = 0;
    apr_size_t i;

    S2A_CHECK_INT(s2a_usd_parse_nano("12.5", &n), 0);
    S2A_CHECK_INT(n, 12500000000LL);
    S2A_CHECK_INT(s2a_usd_parse_nano("0.000001", &n), 0);
    S2A_CHECK_INT(n, 1000);
    S2A_CHECK_INT(s2a_usd_parse_nano("1e-3", &n), 0);
    S2A_CHECK_INT(n, 1000000);
    S2A_CHECK_INT(s2a_usd_parse_nano("-0.000001", &n), 0);
    S2A_CHECK_INT(n, -1000);
    S2A_CHECK_INT(s2a_usd_parse_nano("+5", &n), 0);
    S2A_CHECK_INT(n, 5000000000LL);
    S2A_CHECK_INT(s2a_usd_parse_nano(".5", &n), 0);
    S2A_CHECK_INT(n, 500000000);
    S2A_CHECK_INT(s2a_usd_parse_nano("5.", &n), 0);
    S2A_CHECK_INT(n, 5000000000LL);
    S2A_CHECK_INT(s2a_usd_parse_nano("0.0000000005", &n), 0);
    S2A_CHECK_INT(n, 1);
    S2A_CHECK_INT(s2a_usd_parse_nano("0.00000000049999", &n), 0);
    S2A_CHECK_INT(n, 0);
    S2A_CHECK_INT(s2a_usd_parse_nano("-0.0000000015", &n), 0);
    S2A_CHECK_INT(n, -2);
    S2A_CHECK_INT(s2a_usd_parse_nano("1.0000000005", &n), 0);
    S2A_CHECK_INT(n, 1000000001);
    S2A_CHECK_INT(s2a_usd_parse_nano("0.12345678949999999999999999999999999999999999999999999999999"
                                     "999999999999999",
                                     &n),
                  0);
    S2A_CHECK_INT(n, 123456789);
    S2A_CHECK_INT(s2a_usd_parse_nano("25E2", &n), 0);
    S2A_CHECK_INT(n, 2500000000000LL);
    S2A_CHECK_INT(s2a_usd_parse_nano("0e999999999999", &n), 0);
    S2A_CHECK_INT(n, 0);
    S2A_CHECK_INT(s2a_usd_parse_nano("1e-999999999999", &n), 0);
    S2A_CHECK_INT(n, 0);
    S2A_CHECK_INT(s2a_usd_parse_nano("9223372036.854775807", &n), 0);
    S2A_CHECK_INT(n, INT64_MAX);

    S2A_CHECK_INT(s2a_usd_parse_nano("9223372036.854775808", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("1e10", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("1e999999999999", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("-", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano(".", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("abc", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("1.2.3", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("1e", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("1e+", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano(" 1", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("1 ", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("0x10", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano("NaN", &n), -1);
    S2A_CHECK_INT(s2a_usd_parse_nano(NULL, &n), -1);

    S2A_CHECK_STR(s2a_usd_format(pool, 12500000000LL), "12.5");
    S2A_CHECK_STR(s2a_usd_format(pool, -1000), "-0.000001");
    S2A_CHECK_STR(s2a_usd_format(pool, 0), "0");
    S2A_CHECK_STR(s2a_usd_format(pool, 1), "0.000000001");
    S2A_CHECK_STR(s2a_usd_format(pool, 1000000000), "1");
    S2A_CHECK_STR(s2a_usd_format(pool, -3000000000LL), "-3");
    S2A_CHECK_STR(s2a_usd_format(pool, 31725000), "0.031725");
    S2A_CHECK_STR(s2a_usd_format(pool, INT64_MIN), "-9223372036.854775808");
    for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        n = 42;
        S2A_CHECK_INT(s2a_usd_parse_nano(s2a_usd_format(pool, samples[i]), &n), 0);
        S2A_CHECK_INT(n, samples[i]);
    }
}

static void test_multiplier(void)
{
    apr_int64_t ppm = 0;

    S2A_CHECK_INT(s2a_multiplier_parse_ppm("1", &ppm), 0);
    S2A_CHECK_INT(ppm, 1000000);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("1.5", &ppm), 0);
    S2A_CHECK_INT(ppm, 1500000);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("0.8", &ppm), 0);
    S2A_CHECK_INT(ppm, 800000);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("2e0", &ppm), 0);
    S2A_CHECK_INT(ppm, 2000000);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("0.0000005", &ppm), 0);
    S2A_CHECK_INT(ppm, 1);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("0.0000004", &ppm), -1);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("0", &ppm), -1);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("-1", &ppm), -1);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("1,5", &ppm), -1);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm("", &ppm), -1);
    S2A_CHECK_INT(s2a_multiplier_parse_ppm(NULL, &ppm), -1);
    S2A_CHECK_INT(ppm, 1);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_table();
    test_fallback_rounding();
    test_malformed();
    test_load();
    test_cost();
    test_rounding();
    test_huge();
    test_usd();
    test_multiplier();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_pricing");
}
