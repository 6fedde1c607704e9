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
    /* where a syntax error is, as an editor counts */
    expect_error("{\n  \"m\": {\n    \"input_cost_per_token\": 3e-06,,\n", "at line 3, column 35");
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

static const s2a_price SONNET4 = {.input = 3000000,
                                  .output = 15000000,
                                  .cache_write_5m = 3750000,
                                  .cache_write_1h = 6000000,
                                  .cache_read = 300000};

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
    static const s2a_price PICO = {
        .input = 1, .output = 1, .cache_write_5m = 1, .cache_write_1h = 1, .cache_read = 1};
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
    static const s2a_price OPUS = {.input = 15000000,
                                   .output = 75000000,
                                   .cache_write_5m = 18750000,
                                   .cache_write_1h = 30000000,
                                   .cache_read = 1500000};
    static const s2a_price MAX = {.input = INT64_MAX,
                                  .output = INT64_MAX,
                                  .cache_write_5m = INT64_MAX,
                                  .cache_write_1h = INT64_MAX,
                                  .cache_read = INT64_MAX};
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

/* Claude Sonnet 4.5 with its long-context rates (over 200k input tokens: 2x input and cache,
   1.5x output), as LiteLLM writes them; models with partial, several or broken tiers. */
static const char LONG_TABLE[] =
    "{\"long\": {\"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05,\n"
    "  \"cache_creation_input_token_cost\": 3.75e-06,\n"
    "  \"cache_creation_input_token_cost_above_1hr\": 6e-06,\n"
    "  \"cache_read_input_token_cost\": 3e-07,\n"
    "  \"input_cost_per_token_above_200k_tokens\": 6e-06,\n"
    "  \"output_cost_per_token_above_200k_tokens\": 2.25e-05,\n"
    "  \"cache_creation_input_token_cost_above_200k_tokens\": 7.5e-06,\n"
    "  \"cache_creation_input_token_cost_above_1hr_above_200k_tokens\": 1.2e-05,\n"
    "  \"cache_read_input_token_cost_above_200k_tokens\": 6e-07,\n"
    "  \"input_cost_per_token_above_200k_tokens_priority\": 1e-05,\n"
    "  \"cache_creation_input_token_cost_above_1hr_flex\": 1},\n"
    " \"flat\": {\"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05},\n"
    " \"partial\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 2e-06,\n"
    "  \"cache_read_input_token_cost\": 5e-07,\n"
    "  \"input_cost_per_token_above_200k_tokens\": 2e-06,\n"
    "  \"output_cost_per_token_above_200k_tokens\": null},\n"
    " \"multi\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06,\n"
    "  \"input_cost_per_token_above_272k_tokens\": 4e-06,\n"
    "  \"input_cost_per_token_above_128k_tokens\": 2e-06,\n"
    "  \"output_cost_per_token_above_128k_tokens\": 3e-06},\n"
    " \"five\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06,\n"
    "  \"input_cost_per_token_above_1k_tokens\": 2e-06,\n"
    "  \"input_cost_per_token_above_2k_tokens\": 2e-06,\n"
    "  \"input_cost_per_token_above_3k_tokens\": 2e-06,\n"
    "  \"input_cost_per_token_above_4k_tokens\": 2e-06,\n"
    "  \"input_cost_per_token_above_5k_tokens\": 2e-06},\n"
    " \"fine-tier\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06,\n"
    "  \"input_cost_per_token_above_200k_tokens\": 1.0000000000001e-06}}\n";

static void test_long_context_table(void)
{
    s2a_pricing *t = NULL;
    const char *err = NULL, *first = NULL;
    const s2a_price *pr;

    S2A_CHECK_INT(s2a_pricing_parse(pool, LONG_TABLE, strlen(LONG_TABLE), &t, &err), APR_SUCCESS);
    if (!t) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    /* five thresholds do not fit in a price; a sub-pico tier price skips its entry */
    S2A_CHECK_INT(s2a_pricing_count(t), 4);
    S2A_CHECK_INT(s2a_pricing_skipped(t, &first), 2);
    S2A_CHECK(s2a_pricing_lookup(t, "five") == NULL);
    S2A_CHECK(s2a_pricing_lookup(t, "fine-tier") == NULL);

    pr = s2a_pricing_lookup(t, "long");
    S2A_CHECK(pr != NULL);
    if (pr) {
        S2A_CHECK_INT(pr->input, 3000000);
        S2A_CHECK_INT(pr->ntiers, 1);
        S2A_CHECK_INT(pr->tier[0].above, 200000);
        S2A_CHECK_INT(pr->tier[0].input, 6000000);
        S2A_CHECK_INT(pr->tier[0].output, 22500000);
        S2A_CHECK_INT(pr->tier[0].cache_write_5m, 7500000);
        S2A_CHECK_INT(pr->tier[0].cache_write_1h, 12000000);
        S2A_CHECK_INT(pr->tier[0].cache_read, 600000);
    }
    pr = s2a_pricing_lookup(t, "flat");
    S2A_CHECK(pr != NULL && pr->ntiers == 0);

    /* what a tier does not give is the base price of its class (a null too) */
    pr = s2a_pricing_lookup(t, "partial");
    S2A_CHECK(pr != NULL);
    if (pr) {
        S2A_CHECK_INT(pr->ntiers, 1);
        S2A_CHECK_INT(pr->tier[0].input, 2000000);
        S2A_CHECK_INT(pr->tier[0].output, 2000000);
        S2A_CHECK_INT(pr->tier[0].cache_write_5m, 1250000);
        S2A_CHECK_INT(pr->tier[0].cache_write_1h, 2000000);
        S2A_CHECK_INT(pr->tier[0].cache_read, 500000);
    }

    /* several thresholds, sorted */
    pr = s2a_pricing_lookup(t, "multi");
    S2A_CHECK(pr != NULL);
    if (pr) {
        S2A_CHECK_INT(pr->ntiers, 2);
        S2A_CHECK_INT(pr->tier[0].above, 128000);
        S2A_CHECK_INT(pr->tier[0].input, 2000000);
        S2A_CHECK_INT(pr->tier[0].output, 3000000);
        S2A_CHECK_INT(pr->tier[1].above, 272000);
        S2A_CHECK_INT(pr->tier[1].input, 4000000);
        S2A_CHECK_INT(pr->tier[1].output, 1000000);
    }

    /* thresholds that are no number of thousands of tokens, and bad tier prices */
    expect_error("{\"m\":{\"input_cost_per_token\":1,\"output_cost_per_token\":1,"
                 "\"input_cost_per_token_above_0k_tokens\":2}}",
                 "input_cost_per_token_above_0k_tokens names no threshold");
    expect_error("{\"m\":{\"input_cost_per_token\":1,\"output_cost_per_token\":1,"
                 "\"output_cost_per_token_above_0200k_tokens\":2}}",
                 "names no threshold");
    expect_error("{\"m\":{\"input_cost_per_token\":1,\"output_cost_per_token\":1,"
                 "\"cache_read_input_token_cost_above_1000000001k_tokens\":2}}",
                 "names no threshold");
    expect_error("{\"m\":{\"input_cost_per_token\":1,\"output_cost_per_token\":1,"
                 "\"input_cost_per_token_above_99999999999999999999999k_tokens\":2}}",
                 "names no threshold");
    expect_error("{\"m\":{\"input_cost_per_token\":1,\"output_cost_per_token\":1,"
                 "\"input_cost_per_token_above_200k_tokens\":-1}}",
                 "model \"m\": input_cost_per_token_above_200k_tokens is negative");
    expect_error("{\"m\":{\"input_cost_per_token\":1,\"output_cost_per_token\":1,"
                 "\"output_cost_per_token_above_200k_tokens\":\"6e-6\"}}",
                 "output_cost_per_token_above_200k_tokens is not a number");
    expect_error("{\"m\":{\"input_cost_per_token\":1,\"output_cost_per_token\":1,"
                 "\"cache_read_input_token_cost_above_200k_tokens\":1e300}}",
                 "is too large");
    /* the largest threshold is taken */
    {
        static const char big[] = "{\"m\":{\"input_cost_per_token\":1e-6,"
                                  "\"output_cost_per_token\":1e-6,"
                                  "\"input_cost_per_token_above_1000000000k_tokens\":2e-6}}";
        s2a_pricing *b = NULL;
        S2A_CHECK_INT(s2a_pricing_parse(pool, big, strlen(big), &b, &err), APR_SUCCESS);
        pr = b ? s2a_pricing_lookup(b, "m") : NULL;
        S2A_CHECK(pr != NULL && pr->ntiers == 1 && pr->tier[0].above == 1000000000000LL);
    }
}

static void test_long_context_cost(void)
{
    s2a_pricing *t = NULL;
    const char *err = NULL;
    const s2a_price *lng, *flat, *multi;
    s2a_usage u;
    s2a_cost c;

    S2A_CHECK_INT(s2a_pricing_parse(pool, LONG_TABLE, strlen(LONG_TABLE), &t, &err), APR_SUCCESS);
    if (!t) {
        return;
    }
    lng = s2a_pricing_lookup(t, "long");
    flat = s2a_pricing_lookup(t, "flat");
    multi = s2a_pricing_lookup(t, "multi");
    if (!lng || !flat || !multi) {
        S2A_CHECK(0);
        return;
    }

    /* 199,999 and 200,000 input tokens: base rates; "exceed" is > 200,000 */
    u = usage(199999, 1000, 0, 0, 0);
    s2a_cost_compute(lng, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 0);
    S2A_CHECK_INT(c.input, 599997000);
    S2A_CHECK_INT(c.output, 15000000);
    S2A_CHECK_INT(c.total, 614997000);
    u = usage(200000, 1000, 0, 0, 0);
    s2a_cost_compute(lng, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 0);
    S2A_CHECK_INT(c.input, 600000000);
    S2A_CHECK_INT(c.total, 615000000);
    /* 200,001: every token at the long-context rates, output included */
    u = usage(200001, 1000, 0, 0, 0);
    s2a_cost_compute(lng, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 200000);
    S2A_CHECK_INT(c.input, 1200006000);
    S2A_CHECK_INT(c.output, 22500000);
    S2A_CHECK_INT(c.total, 1222506000);
    S2A_CHECK_INT(c.actual, 1222506000);

    /* cache writes and reads count towards the threshold, and are billed at its rates:
       100,000 + 60,000 (20,000 of them 1 h) + 40,001 = 200,001 */
    u = usage(100000, 2000, 60000, 20000, 40001);
    s2a_cost_compute(lng, &u, 1500000, &c);
    S2A_CHECK_INT(c.above, 200000);
    S2A_CHECK_INT(c.input, 600000000);                   /* 100,000 x 6e-6 */
    S2A_CHECK_INT(c.output, 45000000);                   /* 2,000 x 2.25e-5 */
    S2A_CHECK_INT(c.cache_write, 300000000 + 240000000); /* 40,000 x 7.5e-6 + 20,000 x 1.2e-5 */
    S2A_CHECK_INT(c.cache_read, 24000600);               /* 40,001 x 6e-7 */
    S2A_CHECK_INT(c.total, 1209000600);
    S2A_CHECK_INT(c.actual, 1813500900); /* x 1.5 */
    /* one token fewer: all at the base rates */
    u = usage(100000, 2000, 60000, 20000, 40000);
    s2a_cost_compute(lng, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 0);
    S2A_CHECK_INT(c.total, 300000000 + 30000000 + 150000000 + 120000000 + 12000000);
    /* output never counts towards the threshold */
    u = usage(150000, 900000, 0, 0, 0);
    s2a_cost_compute(lng, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 0);

    /* a model without long-context fields: base rates at any size */
    u = usage(500000, 1000, 0, 0, 300000);
    s2a_cost_compute(flat, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 0);
    S2A_CHECK_INT(c.input, 1500000000);
    S2A_CHECK_INT(c.cache_read, 90000000);
    S2A_CHECK_INT(c.output, 15000000);

    /* several thresholds: the highest one exceeded */
    u = usage(128000, 10, 0, 0, 0);
    s2a_cost_compute(multi, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 0);
    S2A_CHECK_INT(c.input, 128000000);
    u = usage(128001, 10, 0, 0, 0);
    s2a_cost_compute(multi, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 128000);
    S2A_CHECK_INT(c.input, 256002000);
    S2A_CHECK_INT(c.output, 30000);
    u = usage(272001, 10, 0, 0, 0);
    s2a_cost_compute(multi, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 272000);
    S2A_CHECK_INT(c.input, 1088004000);
    S2A_CHECK_INT(c.output, 10000);

    /* negative counts add nothing to the input that is compared */
    u = usage(200001, 0, -5, 0, -7);
    s2a_cost_compute(lng, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 200000);
    u = usage(-1, 0, 150000, 0, 50001);
    s2a_cost_compute(lng, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 200000);
    S2A_CHECK_INT(c.input, 0);

    /* counts whose sum overflows 64 bits: still above, saturated, no wrap */
    u = usage(INT64_MAX, INT64_MAX, INT64_MAX, 0, INT64_MAX);
    s2a_cost_compute(lng, &u, 1000000, &c);
    S2A_CHECK_INT(c.above, 200000);
    S2A_CHECK_INT(c.total, INT64_MAX);
    S2A_CHECK_INT(c.actual, INT64_MAX);

    /* a price filled by hand with nonsense tiers is read safely */
    {
        s2a_price odd = *lng;
        odd.ntiers = 99; /* clamped to the array */
        odd.tier[1].above = -1;
        odd.tier[2].above = 0;
        odd.tier[3].above = INT64_MAX;
        odd.tier[2].input = -5;
        u = usage(10, 0, 0, 0, 0);
        s2a_cost_compute(&odd, &u, 1000000, &c);
        S2A_CHECK_INT(c.above, 0); /* the tier above 0 applies, with a price below 0 as 0 */
        S2A_CHECK_INT(c.input, 0);
        odd.ntiers = -3;
        s2a_cost_compute(&odd, &u, 1000000, &c);
        S2A_CHECK_INT(c.input, 30000);
    }
}

/* Every truncation of a valid table is refused (or, once only whitespace is missing, read). */
static void test_truncations(void)
{
    const char *text = LONG_TABLE;
    apr_size_t len = strlen(text), i, end = len;
    int refused = 0;

    while (end && (text[end - 1] == '\n' || text[end - 1] == ' ')) {
        end--;
    }
    for (i = 0; i < len; i++) {
        s2a_pricing *t = (s2a_pricing *)&t;
        const char *err = NULL;
        apr_status_t rv = s2a_pricing_parse(pool, text, i, &t, &err);
        if (i < end) {
            refused += rv != APR_SUCCESS && t == NULL && err != NULL;
        } else {
            S2A_CHECK_INT(rv, APR_SUCCESS);
        }
    }
    S2A_CHECK_INT(refused, (long long)end);
}

static void add_rule(apr_array_header_t *rules, const char *pattern, const char *model)
{
    s2a_price_rule *r = apr_array_push(rules);
    r->pattern = pattern;
    r->model = model;
}

static void test_fallback_rules(void)
{
    s2a_pricing *t = table();
    apr_array_header_t *rules = apr_array_make(pool, 4, sizeof(s2a_price_rule));
    const s2a_price_rule *rule = (const s2a_price_rule *)&rule;
    const s2a_price *sonnet, *opus, *pr;
    char long_name[600];

    if (!t) {
        return;
    }
    sonnet = s2a_pricing_lookup(t, "claude-sonnet-4-20250514");
    opus = s2a_pricing_lookup(t, "claude-opus-4-1");
    add_rule(rules, "claude-opus-*", "claude-opus-4-1"); /* found under anthropic/ */
    add_rule(rules, "claude-sonnet-?-[0-9]*", "claude-sonnet-4-20250514");
    add_rule(rules, "claude-haiku-*", "claude-haiku-9"); /* not in the table */
    add_rule(rules, "*", "claude-sonnet-4-20250514");

    /* a model with prices of its own is never priced by a rule */
    pr = s2a_pricing_resolve(t, rules, "forms", &rule);
    S2A_CHECK(pr == s2a_pricing_lookup(t, "forms") && rule == NULL);
    pr = s2a_pricing_resolve(t, rules, "claude-opus-4-1", &rule);
    S2A_CHECK(pr == opus && rule == NULL);

    /* the first rule that matches decides */
    pr = s2a_pricing_resolve(t, rules, "claude-opus-4-8", &rule);
    S2A_CHECK(pr == opus);
    S2A_CHECK(rule == &APR_ARRAY_IDX(rules, 0, s2a_price_rule));
    pr = s2a_pricing_resolve(t, rules, "claude-sonnet-5-5", &rule);
    S2A_CHECK(pr == sonnet && rule == &APR_ARRAY_IDX(rules, 1, s2a_price_rule));
    /* "?" is one character, [0-9] one digit, case counts: the catch-all takes them */
    pr = s2a_pricing_resolve(t, rules, "claude-sonnet-45-x", &rule);
    S2A_CHECK(pr == sonnet && rule == &APR_ARRAY_IDX(rules, 3, s2a_price_rule));
    pr = s2a_pricing_resolve(t, rules, "Claude-Opus-4-8", &rule);
    S2A_CHECK(rule == &APR_ARRAY_IDX(rules, 3, s2a_price_rule));
    /* a first match naming a model the table lacks prices nothing: no later rule */
    pr = s2a_pricing_resolve(t, rules, "claude-haiku-5-5", &rule);
    S2A_CHECK(pr == NULL && rule == NULL);

    /* no rules, no match, no model */
    S2A_CHECK(s2a_pricing_resolve(t, NULL, "claude-opus-4-8", &rule) == NULL && rule == NULL);
    S2A_CHECK(s2a_pricing_resolve(t, rules, NULL, &rule) == NULL && rule == NULL);
    apr_array_pop(rules); /* the catch-all */
    S2A_CHECK(s2a_pricing_resolve(t, rules, "gpt-9", &rule) == NULL && rule == NULL);
    S2A_CHECK(s2a_pricing_resolve(t, rules, "claude-opus-4-8", NULL) == opus);
    S2A_CHECK(s2a_pricing_resolve(NULL, rules, "claude-opus-4-8", &rule) == NULL);
    /* a name longer than any lookup key still matches a glob, and is refused safely */
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    memcpy(long_name, "claude-opus-", 12);
    S2A_CHECK(s2a_pricing_resolve(t, rules, long_name, &rule) == opus);
    S2A_CHECK(s2a_pricing_resolve(t, rules, long_name + 12, &rule) == NULL);

    /* the check names the first rule whose model the table lacks */
    S2A_CHECK(s2a_pricing_rules_check(t, rules) == &APR_ARRAY_IDX(rules, 2, s2a_price_rule));
    apr_array_pop(rules);
    S2A_CHECK(s2a_pricing_rules_check(t, rules) == NULL);
    S2A_CHECK(s2a_pricing_rules_check(t, NULL) == NULL);
    S2A_CHECK(s2a_pricing_rules_check(NULL, rules) == &APR_ARRAY_IDX(rules, 0, s2a_price_rule));
}

static void test_json(void)
{
    s2a_pricing *t = NULL;
    const char *err = NULL;
    apr_array_header_t *rules = apr_array_make(pool, 2, sizeof(s2a_price_rule));
    json_object *out, *data, *m, *v, *tiers;
    size_t i;
    int found = 0;

    S2A_CHECK_INT(s2a_pricing_parse(pool, LONG_TABLE, strlen(LONG_TABLE), &t, &err), APR_SUCCESS);
    if (!t) {
        return;
    }
    add_rule(rules, "claude-opus-*", "long");
    out = s2a_pricing_json(pool, t, rules);
    S2A_CHECK(json_object_object_get_ex(out, "count", &v) && json_object_get_int(v) == 4);
    S2A_CHECK(json_object_object_get_ex(out, "skipped", &v) && json_object_get_int(v) == 2);
    S2A_CHECK(json_object_object_get_ex(out, "data", &data) && json_object_array_length(data) == 4);
    /* by name */
    m = json_object_array_get_idx(data, 0);
    S2A_CHECK(json_object_object_get_ex(m, "model", &v));
    S2A_CHECK_STR(json_object_get_string(v), "flat");
    for (i = 0; i < json_object_array_length(data); i++) {
        m = json_object_array_get_idx(data, i);
        json_object_object_get_ex(m, "model", &v);
        if (strcmp(json_object_get_string(v), "long") != 0) {
            continue;
        }
        found = 1;
        S2A_CHECK_STR(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN),
                      "{\"model\":\"long\",\"input_cost_per_token\":\"0.000003\","
                      "\"output_cost_per_token\":\"0.000015\","
                      "\"cache_creation_input_token_cost\":\"0.00000375\","
                      "\"cache_creation_input_token_cost_above_1hr\":\"0.000006\","
                      "\"cache_read_input_token_cost\":\"0.0000003\","
                      "\"long_context\":[{\"above_tokens\":200000,"
                      "\"input_cost_per_token\":\"0.000006\","
                      "\"output_cost_per_token\":\"0.0000225\","
                      "\"cache_creation_input_token_cost\":\"0.0000075\","
                      "\"cache_creation_input_token_cost_above_1hr\":\"0.000012\","
                      "\"cache_read_input_token_cost\":\"0.0000006\"}],"
                      "\"web_search_cost_per_search\":null}");
    }
    S2A_CHECK(found);
    m = json_object_array_get_idx(data, 0); /* flat: defaulted cache prices, no tiers */
    S2A_CHECK(json_object_object_get_ex(m, "cache_read_input_token_cost", &v));
    S2A_CHECK_STR(json_object_get_string(v), "0.0000003");
    S2A_CHECK(json_object_object_get_ex(m, "long_context", &tiers) &&
              json_object_array_length(tiers) == 0);
    S2A_CHECK(json_object_object_get_ex(out, "fallbacks", &v));
    S2A_CHECK_STR(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                  "[{\"pattern\":\"claude-opus-*\",\"model\":\"long\"}]");
    json_object_put(out);

    /* prices of every size come out exactly, whole dollars too */
    t = table();
    out = s2a_pricing_json(pool, t, NULL);
    json_object_object_get_ex(out, "data", &data);
    for (i = 0; i < json_object_array_length(data); i++) {
        m = json_object_array_get_idx(data, i);
        json_object_object_get_ex(m, "model", &v);
        if (strcmp(json_object_get_string(v), "whole") == 0) {
            json_object_object_get_ex(m, "input_cost_per_token", &v);
            S2A_CHECK_STR(json_object_get_string(v), "2");
            json_object_object_get_ex(m, "cache_creation_input_token_cost", &v);
            S2A_CHECK_STR(json_object_get_string(v), "2.5");
        }
        if (strcmp(json_object_get_string(v), "free") == 0) {
            json_object_object_get_ex(m, "input_cost_per_token", &v);
            S2A_CHECK_STR(json_object_get_string(v), "0");
        }
    }
    json_object_object_get_ex(out, "fallbacks", &v);
    S2A_CHECK(json_object_array_length(v) == 0);
    json_object_put(out);
    out = s2a_pricing_json(pool, NULL, NULL);
    S2A_CHECK(json_object_object_get_ex(out, "count", &v) && json_object_get_int(v) == 0);
    json_object_put(out);
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

/* The web search tool: priced per search from search_context_cost_per_query (a number,
 * or its medium size), billed in server_tools and in the total. */
static void test_web_search(void)
{
    static const char table[] =
        "{\"obj\": {\"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05,"
        " \"search_context_cost_per_query\": {\"search_context_size_low\": 0.02,"
        " \"search_context_size_medium\": 0.01, \"search_context_size_high\": 0.03}},"
        " \"num\": {\"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05,"
        " \"search_context_cost_per_query\": 0.01},"
        " \"none\": {\"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05}}";
    s2a_pricing *t = NULL;
    const s2a_price *obj, *num, *none;
    const char *err = NULL;
    s2a_usage u;
    s2a_cost c;

    S2A_CHECK_INT(s2a_pricing_parse(pool, table, strlen(table), &t, &err), APR_SUCCESS);
    obj = s2a_pricing_lookup(t, "obj");
    num = s2a_pricing_lookup(t, "num");
    none = s2a_pricing_lookup(t, "none");
    S2A_CHECK(obj && num && none);
    if (!obj || !num || !none) {
        return;
    }
    S2A_CHECK(obj->web_search_set && obj->web_search == 10000000000LL);
    S2A_CHECK(num->web_search_set && num->web_search == 10000000000LL);
    S2A_CHECK(!none->web_search_set);
    memset(&u, 0, sizeof(u));
    u.input = 1000;
    u.output = 100;
    u.web_search = 3;
    u.web_fetch = 5; /* fetches cost tokens only */
    s2a_cost_compute(obj, &u, 1500000, &c);
    S2A_CHECK_INT(c.server_tools, 30000000);
    S2A_CHECK_INT(c.total, 3000000 + 1500000 + 30000000);
    S2A_CHECK_INT(c.actual, (3000000 + 1500000 + 30000000) * 3 / 2);
    /* an unpriced tool adds nothing here: the request path refuses it first */
    s2a_cost_compute(none, &u, 1000000, &c);
    S2A_CHECK_INT(c.server_tools, 0);
    /* the largest counts saturate, never wrap */
    u.web_search = APR_INT64_MAX;
    s2a_cost_compute(num, &u, 1000000, &c);
    S2A_CHECK(c.server_tools == APR_INT64_MAX && c.total == APR_INT64_MAX);
    /* a bad price breaks the table, naming the field */
    {
        static const char bad[] =
            "{\"m\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06,"
            " \"search_context_cost_per_query\": {\"search_context_size_medium\": -1}}}";
        t = NULL;
        S2A_CHECK(s2a_pricing_parse(pool, bad, strlen(bad), &t, &err) != APR_SUCCESS);
        S2A_CHECK(err && strstr(err, "search_context_size_medium") != NULL);
    }
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
    test_long_context_table();
    test_long_context_cost();
    test_truncations();
    test_fallback_rules();
    test_json();
    test_usd();
    test_multiplier();

    test_web_search();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_pricing");
}
