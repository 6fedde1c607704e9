/* A key's own limits, set by its operator: the models it may use and what
 * it may spend (its actual cost, after the group's multiplier): a total
 * budget and daily, weekly and monthly budgets, counted in windows as
 * subscriptions' allowances are (s2a_subscription.h). */
#ifndef S2A_KEY_LIMITS_H
#define S2A_KEY_LIMITS_H

#include "s2a_db_catalog.h"

/* Longest list of model patterns a key keeps, as text. */
#define S2A_KEY_MODELS_MAX 1024
/* At most this many patterns, each of 1 to 128 characters. */
#define S2A_KEY_MODEL_PATTERNS 32

/* 1 when the key may use `model`: it names no model, or one of its
 * patterns (apr_fnmatch globs, case-sensitive) matches. */
int s2a_key_model_allowed(const s2a_key_rec *k, const char *model);

/* Of `ids` (const char *), those the key may use, in order: `ids` itself
 * when the key names no model. */
apr_array_header_t *s2a_key_models_only(apr_pool_t *p, const apr_array_header_t *ids,
                                        const s2a_key_rec *k);

/* The patterns of a models array as the admin API takes it (JSON text of
 * an array of strings; "" or "[]": none) into `out` (size
 * S2A_KEY_MODELS_MAX), one per line. 0 with *err when it is not one. */
int s2a_key_models_parse(const char *json, char *out, const char **err);

/* What the key may still spend at `now` (Unix seconds), as the database
 * last told: the least of its budget left and its windows' budgets left,
 * never below 0; -1 when nothing limits it. */
apr_int64_t s2a_key_budget_left(const s2a_key_rec *k, apr_int64_t now);

/* Whether a budget of the key is used up at `now`: -1 none; S2A_WINDOWS
 * its total budget; else the index of the used-up window, with *reset_at
 * its end. */
#define S2A_KEY_BUDGET_TOTAL S2A_WINDOWS
int s2a_key_budget_used_up(const s2a_key_rec *k, apr_int64_t now, apr_int64_t *reset_at);

#endif
