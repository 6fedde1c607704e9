/* Model price table (LiteLLM model_prices_and_context_window.json format) and exact integer
   cost arithmetic. Money is never floating point: prices are pico-USD (1e-12) per token and
   amounts are nano-USD (1e-9). */
#ifndef S2A_PRICING_H
#define S2A_PRICING_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "s2a_usage.h"

/* Long-context rates: what every token of a request whose input tokens (input + cache writes
   + cache reads) exceed `above` costs. LiteLLM writes them as the base field's name with
   "_above_<N>k_tokens" appended (e.g. input_cost_per_token_above_200k_tokens). */
#define S2A_PRICE_TIERS 4
typedef struct {
    apr_int64_t above; /* input tokens a request must exceed (N * 1000) */
    apr_int64_t input, output, cache_write_5m, cache_write_1h, cache_read; /* pico-USD per token */
} s2a_price_tier;

typedef struct {
    apr_int64_t input, output, cache_write_5m, cache_write_1h, cache_read; /* pico-USD per token */
    int ntiers;                           /* long-context tiers, by `above` ascending */
    s2a_price_tier tier[S2A_PRICE_TIERS]; /* each with all five prices filled in */
    /* the web search tool, pico-USD per search (search_context_cost_per_query: a number,
       or its search_context_size_medium); web_search_set 0: not priced */
    apr_int64_t web_search;
    int web_search_set;
} s2a_price;

typedef struct s2a_pricing s2a_pricing;

/* Load a price table file. On failure returns non-success and sets *err to a pool string
   naming the file and the problem. */
apr_status_t s2a_pricing_load(apr_pool_t *p, const char *path, s2a_pricing **out, const char **err);

/* The text a table was loaded from (NULL for a parsed one), e.g. to parse it
   again later. */
const char *s2a_pricing_source(const s2a_pricing *t, apr_size_t *len);

/* Parse a price table from memory. Prices are read from the number's decimal text, exactly.
   Entries without input or output cost are skipped, as is "sample_spec". A negative, non-numeric
   or absurdly large price, or a long-context field whose threshold is not 1 to 10^9 thousand
   tokens, fails the whole table; a price with more precision than pico-USD, or more than
   S2A_PRICE_TIERS thresholds, skips only its entry (see s2a_pricing_skipped). Missing cache
   prices default to Anthropic's ratios: 5 m write 1.25 x input, 1 h write 2 x input, read
   0.1 x input. A long-context price the entry does not give is the base price of its class
   (as LiteLLM reads the format). Fields with anything after "_tokens" (service tiers such as
   "_priority") are not read. A syntax error names its line and column. */
apr_status_t s2a_pricing_parse(apr_pool_t *p, const char *json, apr_size_t len, s2a_pricing **out,
                               const char **err);

/* Exact name; else "anthropic/" + name; else NULL. */
const s2a_price *s2a_pricing_lookup(const s2a_pricing *t, const char *model);

/* A price fallback rule (Sub2apiPriceFallback): a model without a price of its own whose
   name matches `pattern` (apr_fnmatch: *, ?, [...], case-sensitive) is billed at the prices
   of `model`. */
typedef struct {
    const char *pattern;
    const char *model;
} s2a_price_rule;

/* The prices `model` is billed at: its own; else those of the model named by the first of
   `rules` (s2a_price_rule, in order; may be NULL) whose pattern matches it, or NULL when the
   table lacks that model. *rule (if not NULL) gets the rule that priced it, NULL when it has
   prices of its own or none. */
const s2a_price *s2a_pricing_resolve(const s2a_pricing *t, const apr_array_header_t *rules,
                                     const char *model, const s2a_price_rule **rule);

/* The first of `rules` whose model the table lacks (a configuration error), or NULL. */
const s2a_price_rule *s2a_pricing_rules_check(const s2a_pricing *t,
                                              const apr_array_header_t *rules);

/* The models of Anthropic's own API in the table (litellm_provider "anthropic",
   no "vendor/" prefix), sorted by name: what a gateway account serving every
   model offers. */
const apr_array_header_t *s2a_pricing_anthropic(const s2a_pricing *t);

/* The table as GET .../prices shows it: {"count", "skipped", "data": [{"model", the five
   prices (as the table names them, USD per token in decimal text, defaulted cache prices
   filled in), "long_context": [{"above_tokens", the five}]}], by name; "fallbacks":
   [{"pattern", "model"}] from `rules` in order}. A new object (json_object_put). */
json_object *s2a_pricing_json(apr_pool_t *p, const s2a_pricing *t, const apr_array_header_t *rules);

/* Number of models loaded. */
int s2a_pricing_count(const s2a_pricing *t);

/* Number of entries skipped because a price was finer than pico-USD or they had more than
   S2A_PRICE_TIERS long-context thresholds; *first (if not NULL) gets the first such model
   name, or NULL. */
int s2a_pricing_skipped(const s2a_pricing *t, const char **first);

/* Amounts in nano-USD. */
typedef struct {
    apr_int64_t input, output, cache_write, cache_read; /* per class, before multiplier */
    apr_int64_t server_tools; /* per-use charges of server tools, before multiplier */
    apr_int64_t total;        /* sum of the classes, before multiplier */
    apr_int64_t actual;       /* total * multiplier */
    apr_int64_t above;        /* the threshold of the long-context rates applied; 0: base rates */
} s2a_cost;

/* Cost of u at prices pr with a rate multiplier in parts per million (1.0 = 1000000).
   The rates: those of the highest long-context tier whose threshold the request's input
   tokens (input + cache_creation + cache_read) exceed, for all of its tokens, output
   included; else the base rates (exactly at a threshold: base). Each class is tokens * price
   in pico-USD; total is their exact sum; every nano figure is its pico amount / 1000 rounded
   half up; actual = total_pico * multiplier_ppm / 1e6 rounded half up to nano, in one step.
   cache_write = (cache_creation - cache_1h) * 5 m price + cache_1h * 1 h price. server_tools
   = web searches * the web search price (web fetches cost tokens only); it is part of total.
   Negative counts or multiplier count as 0; results saturate at INT64_MAX rather than wrap. */
void s2a_cost_compute(const s2a_price *pr, const s2a_usage *u, apr_int64_t multiplier_ppm,
                      s2a_cost *out);

/* Decimal USD text ("12.5", "-0.000001", "1e-3") to nano-USD, rounded half away from zero
   past 9 decimals. 0 on success, -1 on bad syntax or out of range. */
int s2a_usd_parse_nano(const char *text, apr_int64_t *nano);

/* nano-USD as decimal text, up to 9 decimals, trailing zeros trimmed ("12.5", "-0.000001",
   "0"). */
char *s2a_usd_format(apr_pool_t *p, apr_int64_t nano);

/* Multiplier text ("1", "1.5", "0.8") to parts per million, rounded half up past 6 decimals.
   0 on success, -1 on bad syntax or a value that is not > 0. */
int s2a_multiplier_parse_ppm(const char *text, apr_int64_t *ppm);

#endif
