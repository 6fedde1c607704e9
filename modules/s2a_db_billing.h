/* Every write of money, in one place: usage rows with their deductions and
 * subscription windows, redeem codes, balance changes with the balance log,
 * and subscriptions started or extended. */
#ifndef S2A_DB_BILLING_H
#define S2A_DB_BILLING_H

#include "s2a_db.h"
#include "s2a_subscription.h"

/* One answered attempt to bill. */
typedef struct {
    char request_id[64];
    int attempt;
    apr_int64_t user_id, api_key_id, account_id, group_id;
    char model[128];
    char upstream_model[128];
    apr_int64_t input_tokens, output_tokens, cache_creation_tokens, cache_creation_1h_tokens,
        cache_read_tokens;
    apr_int64_t input_cost, output_cost, cache_creation_cost, cache_read_cost, total_cost,
        actual_cost;
    apr_int64_t multiplier_ppm;
    /* server tools: the uses the upstream counted, and their per-use charges (part of
     * total_cost) */
    apr_int64_t web_search_requests, web_fetch_requests, server_tool_cost;
    int stream;
    char api[16]; /* the door the client used: "messages", "chat" or "responses" */
    int status;
    char outcome[24];
    apr_int64_t duration_ms, first_token_ms, created_at;
    int subscription; /* billed to the subscription's windows (total), not the balance */
} s2a_usage_row;

/* Writes rows and deducts each row's actual cost from its user's balance (a
 * subscription row: adds its total cost to the subscription's windows), and
 * adds each row's actual cost to what its key spent, in total and in the
 * key's windows, all in one transaction. A row whose (request_id, attempt)
 * exists is skipped. *depleted receives the ids of users whose balance is
 * now <= 0 or whose subscription window is now used up, and of keys whose
 * budget is now used up. */
apr_status_t s2a_db_usage_write(s2a_dbc *c, apr_pool_t *p, const s2a_usage_row *rows, int n,
                                apr_array_header_t *depleted, const char **err);

/* Sets (`set`) or adds `amount` to a user's balance and records the change
 * with its actor and reason in the balance log, in one transaction; the
 * recorded delta is exact while charges are written meanwhile. 1 with the
 * new balance in *after, 0 no such user, -1 failed (*err). */
int s2a_db_balance_change(s2a_dbc *c, apr_pool_t *p, apr_int64_t user_id, int set,
                          apr_int64_t amount, const char *actor, const char *reason,
                          apr_int64_t *after, const char **err);
/* The same change and log row inside a transaction the caller began (and
 * ends): they are committed or rolled back with the caller's statements.
 * The caller ends it rolled back unless this returns 1. */
int s2a_db_balance_change_in(s2a_dbc *c, apr_pool_t *p, apr_int64_t user_id, int set,
                             apr_int64_t amount, const char *actor, const char *reason,
                             apr_int64_t *after, const char **err);

/* Starts a user's subscription to a group for `days`, or extends the one
 * there is (from its end while it runs, else from now); *id names it.
 * 0, or -1 with *err. */
int s2a_db_subscription_extend(s2a_dbc *c, apr_pool_t *p, apr_int64_t user_id, apr_int64_t group_id,
                               apr_int64_t days, apr_int64_t *id, const char **err);

/* What a redeem code gave. */
typedef struct {
    int subscription;     /* days of a group's subscription, else a balance amount */
    apr_int64_t amount;   /* nano-USD added to the balance */
    apr_int64_t group_id; /* the subscription's group */
    apr_int64_t days;
} s2a_redeemed;

/* Redeems the code (by its hash) for the user, once across all processes and
 * nodes: adds the amount to the balance (recorded in the balance log) or
 * starts or extends the subscription, in one transaction. 1 redeemed, 0 no
 * such code, -1 used already, -2 database error (*err). */
int s2a_db_redeem(s2a_dbc *c, apr_pool_t *p, const char *code_hash, apr_int64_t user_id,
                  s2a_redeemed *out, const char **err);

#endif
