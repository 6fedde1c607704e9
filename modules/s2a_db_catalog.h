/* Keys and accounts as requests read them (the per-process caches load
 * them from here), and the one state the request path writes to an
 * account: its error state. */
#ifndef S2A_DB_CATALOG_H
#define S2A_DB_CATALOG_H

#include "s2a_cloud.h"
#include "s2a_db.h"
#include "s2a_subscription.h"

/* A client key with what admission needs of its user, group and
 * subscription. */
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
    int server_tools;     /* its group lets requests use server tools */
    apr_int64_t sub_id;   /* the user's subscription to the group, 0: none */
    apr_int64_t sub_expires_at;
    int sub_active;
    s2a_windows windows; /* the group's allowances, the subscription's use */
    char group_name[256];
    /* the key's own limits (s2a_key_limits.h) */
    apr_int64_t budget; /* its total budget, 0: none */
    apr_int64_t spent;  /* all it spent */
    s2a_windows budget_windows;
    char models[1024]; /* the patterns of the models it may use, one per line; "": all */
} s2a_key_rec;

/* An upstream account. */
typedef struct {
    apr_int64_t id;
    const char *name;
    const char *type;
    const char *credential;
    const char *endpoint;
    int priority;
    int concurrency;
    const char *status;              /* as the row says: active, disabled or error */
    int schedulable;                 /* the row's schedulable */
    int active;                      /* status active and schedulable */
    apr_int64_t state_key;           /* s2a_state_key() of the credential: the caller's */
    apr_hash_t *mapping;             /* client model -> upstream model; empty serves all */
    apr_array_header_t *error_codes; /* int: error statuses it reacts to; NULL: all */
    apr_array_header_t *group_ids;   /* apr_int64_t */
    int refreshable;                 /* has a refresh token */
    apr_int64_t expires_at;          /* the access token's end, Unix seconds; 0 unknown */
    apr_table_t *headers;            /* fixed upstream headers; NULL: none */
    const char *egress;              /* the forward proxy it leaves through (s2a_egress.h); NULL:
                                        none */
    s2a_cloud cloud;                 /* NONE: Anthropic's API */
    const char *region;              /* a cloud's region */
    const char *project;             /* Vertex's project (the key's when the row has none) */
    s2a_bedrock_credential *bedrock; /* Bedrock's credential, read; NULL for the others */
    const char *problem;             /* why a cloud account's row cannot serve; NULL: none */
} s2a_account;

/* 1 found, 0 unknown key, -1 database error. */
int s2a_db_key_lookup(s2a_dbc *c, apr_pool_t *p, const char *key_hash, s2a_key_rec *out);

/* What an account's secret (credential, fixed headers, egress) is as stored, in
 * plain; NULL when it cannot be opened. */
typedef struct {
    const char *(*open)(void *baton, apr_pool_t *p, apr_int64_t id, const char *stored);
    void *baton;
} s2a_db_opener;

/* Every account with its groups and mapping, allocated from p, its secrets
 * opened by `opener`: an account whose credential, headers or egress do not open
 * has credential NULL and is not active. A Vertex account's credential is
 * its access token ("" before the first), its service-account key read for
 * its project; a Bedrock account's is read into `bedrock`. A cloud account
 * whose key, credential, region or project is not usable is not active
 * and says why in `problem`. */
apr_status_t s2a_db_accounts_load(s2a_dbc *c, apr_pool_t *p, const s2a_db_opener *opener,
                                  apr_array_header_t **out, const char **err);

/* Puts account `id` in error state (it serves no more until an operator
 * re-enables it), saying why. */
apr_status_t s2a_db_account_error(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char *message,
                                  const char **err);

#endif
