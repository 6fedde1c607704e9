/* Database schema and queries over apr_dbd. One SQL text serves SQLite and
 * PostgreSQL: apr_dbd translates the typed placeholders per driver. */
#ifndef S2A_DB_H
#define S2A_DB_H

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "s2a_subscription.h"

/* A connection as mod_dbd hands it out; prepared statements are cached in
 * `prepared`, which lives as long as the connection. */
typedef struct {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_hash_t *prepared;
    apr_pool_t *pool;
} s2a_dbc;

typedef struct {
    apr_int64_t id;
    apr_int64_t user_id;
    apr_int64_t group_id;
    apr_int64_t expires_at; /* unix seconds, 0 = never */
    apr_int64_t balance_nano;
    apr_int64_t multiplier_ppm;
    /* where the key's and the user's limits live in the store (set by the
     * cache the record comes from; 0: not known) */
    apr_int64_t key_state;
    apr_int64_t user_state;
    int active;           /* key and user both active */
    int concurrency;      /* requests of this key at once, 0: no limit */
    int rpm_limit;        /* requests of this key per minute, 0: no limit */
    int user_concurrency; /* requests of its user at once, 0: no limit */
    int subscription;     /* its group bills by subscription, not balance */
    apr_int64_t sub_id;   /* the user's subscription to the group, 0: none */
    apr_int64_t sub_expires_at;
    int sub_active;
    s2a_windows windows; /* the group's allowances, the subscription's use */
    char group_name[256];
} s2a_key_rec;

typedef struct {
    apr_int64_t id;
    const char *name;
    const char *type;
    const char *credential;
    const char *endpoint;
    int priority;
    int concurrency;
    int active;                      /* status active and schedulable */
    apr_int64_t state_key;           /* s2a_state_key() of the credential: the caller's */
    apr_hash_t *mapping;             /* client model -> upstream model; empty serves all */
    apr_array_header_t *error_codes; /* int: error statuses it reacts to; NULL: all */
    apr_array_header_t *group_ids;   /* apr_int64_t */
    int refreshable;                 /* has a refresh token */
    apr_int64_t expires_at;          /* the access token's end, Unix seconds; 0 unknown */
    apr_table_t *headers;            /* fixed upstream headers; NULL: none */
} s2a_account;

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
    int stream;
    int status;
    char outcome[24];
    apr_int64_t duration_ms, first_token_ms, created_at;
    int subscription; /* billed to the subscription's windows (total), not the balance */
} s2a_usage_row;

/* Creates or upgrades the schema. */
apr_status_t s2a_db_migrate(s2a_dbc *c, apr_pool_t *p, const char **err);

/* The secret kept in the database under `name`; `fresh` is stored first if
 * there is none yet, so every process and node sharing the database ends up
 * with the same value. */
apr_status_t s2a_db_secret(s2a_dbc *c, apr_pool_t *p, const char *name, const char *fresh,
                           const char **value, const char **err);

/* 1 found, 0 unknown key, -1 database error. */
int s2a_db_key_lookup(s2a_dbc *c, apr_pool_t *p, const char *key_hash, s2a_key_rec *out);

/* Every account with its groups and mapping, allocated from p. */
apr_status_t s2a_db_accounts_load(s2a_dbc *c, apr_pool_t *p, apr_array_header_t **out,
                                  const char **err);

/* Writes rows and deducts each row's actual cost from its user's balance (a
 * subscription row: adds its total cost to the subscription's windows), all
 * in one transaction. A row whose (request_id, attempt) exists is skipped.
 * *depleted receives the ids of users whose balance is now <= 0 or whose
 * subscription window is now used up. */
apr_status_t s2a_db_usage_write(s2a_dbc *c, apr_pool_t *p, const s2a_usage_row *rows, int n,
                                apr_array_header_t *depleted, const char **err);

/* Generic access for the admin API. `sql` uses apr_dbd typed placeholders;
 * every argument is passed as text. */
int s2a_db_exec(s2a_dbc *c, apr_pool_t *p, const char *sql, int nargs, const char **args,
                int *nrows, const char **err);
/* Rows as a json array of objects; `types` has one letter per column:
 * 'i' integer, 's' string, 'b' boolean from an integer, 'j' JSON text. */
int s2a_db_rows(s2a_dbc *c, apr_pool_t *p, const char *sql, const char *types, int nargs,
                const char **args, json_object **out, const char **err);
/* INSERT ... RETURNING id. */
int s2a_db_insert(s2a_dbc *c, apr_pool_t *p, const char *sql, int nargs, const char **args,
                  apr_int64_t *id, const char **err);

/* A pooled PostgreSQL connection looks fine after the server restarted until
 * a statement fails on it: one cheap statement finds out, and reconnects;
 * statements prepared on an earlier server session are prepared again.
 * 0 if the database cannot be reached. */
int s2a_db_alive(s2a_dbc *c, apr_pool_t *p);

/* What a redeem code gave. */
typedef struct {
    int subscription;      /* days of a group's subscription, else a balance amount */
    apr_int64_t amount;    /* nano-USD added to the balance */
    apr_int64_t group_id;  /* the subscription's group */
    apr_int64_t days;
} s2a_redeemed;

/* Redeems the code (by its hash) for the user, once across all processes and
 * nodes: adds the amount to the balance (recorded in the balance log) or
 * starts or extends the subscription, in one transaction. 1 redeemed, 0 no
 * such code, -1 used already, -2 database error (*err). */
int s2a_db_redeem(s2a_dbc *c, apr_pool_t *p, const char *code_hash, apr_int64_t user_id,
                  s2a_redeemed *out, const char **err);

/* Once per process before transactions are used (see s2a_db_begin). */
apr_status_t s2a_db_child_init(apr_pool_t *p);

/* A transaction on the connection; s2a_db_end commits when ok, else rolls
 * back (also after a failed commit). 0 on success. Each s2a_db_begin that
 * returns 0 must be followed by s2a_db_end: on SQLite it holds the process's
 * write turn. */
int s2a_db_begin(s2a_dbc *c);
int s2a_db_end(s2a_dbc *c, int ok);

/* OAuth tokens of one account, as stored (sealed or plain). APR_NOTFOUND
 * when there is no such account. */
apr_status_t s2a_db_oauth_get(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char **credential,
                              const char **refresh_token, apr_int64_t *expires_at,
                              const char **err);
apr_status_t s2a_db_oauth_save(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char *credential,
                               const char *refresh_token, apr_int64_t expires_at, const char **err);
/* Active accounts with a refresh token whose access token ends before
 * `before` (Unix seconds). */
apr_status_t s2a_db_oauth_due(s2a_dbc *c, apr_pool_t *p, apr_int64_t before,
                              apr_array_header_t **ids, const char **err);

#endif
