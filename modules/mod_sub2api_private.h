/* Shared declarations of the httpd glue (mod_sub2api*.c). */
#ifndef MOD_SUB2API_PRIVATE_H
#define MOD_SUB2API_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_proc_mutex.h>
#include <apr_thread_mutex.h>

#include "s2a_db_billing.h"
#include "s2a_db_catalog.h"
#include "s2a_db_oauth.h"
#include "s2a_db_schema.h"
#include "s2a_json.h"
#include "s2a_metrics.h"
#include "s2a_pricing.h"
#include "s2a_sse.h"
#include "s2a_state.h"
#include "s2a_store.h"
#include "s2a_usage.h"

APLOG_USE_MODULE(sub2api);

/* Our own message numbers: "S2A" + four digits, never httpd's AH numbers. */
#define S2ALOGNO(n) "S2A" #n ": "

#define S2A_DEFAULT_MAX_BODY (32 * 1024 * 1024)
/* output a request without max_tokens is expected to cost, for its balance hold */
#define S2A_ESTIMATE_MAX_TOKENS 4096
#define S2A_DEFAULT_RATE_LIMIT_COOLDOWN 300
#define S2A_DEFAULT_OVERLOAD_COOLDOWN 600
#define S2A_DEFAULT_CACHE_TTL 5
#define S2A_DEFAULT_MAX_ACCOUNTS 1024
#define S2A_DEFAULT_MAX_SWITCHES 3
#define S2A_DEFAULT_SLOT_WAIT 10
#define S2A_DEFAULT_STICKY_TTL 3600
#define S2A_DEFAULT_MAX_SESSIONS 65536
#define S2A_DEFAULT_OAUTH_WATCH 30
/* how long a conversation waits for its full account before moving */
#define S2A_STICKY_WAIT_MSEC 2000
/* a streamed request that waits for a place gets a ping this often */
#define S2A_PING_MSEC 1000

/* One load of the account list. Requests use it without the catalog's
 * mutex (a store call may take a while) and hold a reference meanwhile; the
 * last reference destroys it. */
typedef struct {
    apr_pool_t *pool;             /* holds the list and this struct */
    apr_array_header_t *accounts; /* s2a_account */
    volatile apr_uint32_t refs;   /* the catalog's own while current, plus users */
    apr_uint32_t gen;
    apr_time_t loaded;
} s2a_account_list;

/* Per-process cache of what the database says about keys and accounts. */
typedef struct {
    apr_thread_mutex_t *mutex;
    s2a_account_list *list;
    apr_uint32_t loads; /* lists loaded so far */
    apr_pool_t *keys_pool;
    apr_hash_t *keys; /* key hash -> s2a_key_rec */
    /* the set before the last reset: answers while the database is away */
    apr_pool_t *old_keys_pool;
    apr_hash_t *old_keys;
    apr_uint32_t keys_gen;
    apr_time_t keys_loaded;
} s2a_catalog;

typedef struct {
    const char *admin_token_hash; /* SHA-256 hex; the token itself is not kept */
    const char *price_file;
    s2a_pricing *prices;
    const char *unpriced_model;    /* Sub2apiUnpricedModel: "" reject, NULL unset */
    int rate_limit_cooldown; /* seconds, -1 unset */
    int overload_cooldown;
    int cache_ttl;
    int max_switches;              /* -1 unset */
    int slot_wait;                 /* seconds a request waits for a free account; -1 unset */
    int sticky_ttl;                /* seconds a conversation stays bound to its account; -1 unset */
    const unsigned char *cred_key; /* Sub2apiCredentialKeyFile: 32 bytes; NULL: none */
    const char *oauth_token_url;   /* Sub2apiOAuthTokenURL */
    const char *oauth_client_id;   /* Sub2apiOAuthClientID */
    const char *secret_file;       /* Sub2apiUserIdSecretFile */
    const char *journal;           /* Sub2apiJournal: this host's usage rows while its database is away */
    void *secret;                  /* key of the metadata.user_id pseudonyms (text); set once */
    char secret_buf[129];          /* holds it when it comes from the database */
    s2a_catalog *catalog;
} s2a_srv_conf;

typedef struct {
    const char *balancer; /* "balancer://name" serving this location */
    apr_off_t max_body;   /* -1 unset */
    int server_timing;    /* Sub2apiServerTiming; -1 unset */
} s2a_dir_conf;

/* Process-wide state set up in post_config and child_init. */
typedef struct {
    s2a_state *state;               /* this host's shared memory */
    s2a_store *store;               /* the account pool's state: shm, or redis (Sub2apiStore) */
    const s2a_redis_url *store_url; /* NULL: shm */
    apr_proc_mutex_t *mutex;
    apr_shm_t *shm;
    int max_accounts;
    int max_sessions;
    int oauth_watch_sec; /* Sub2apiOAuthRefreshInterval */
} s2a_globals;

extern s2a_globals s2a_g;

/* A stretch of the body sent upstream. */
typedef struct {
    const char *p;
    apr_size_t len;
} s2a_piece;

/* What one gateway request carries from fixups to logging. */
typedef struct {
    s2a_srv_conf *sconf;
    const char *request_id;
    const char *secret;       /* the pseudonym key */
    apr_array_header_t *body; /* s2a_piece: the edited body, pointing into the read one */
    int body_served;
    const char *raw_body; /* the body as the client sent it */
    apr_size_t raw_len;
    s2a_json_span fields[6];   /* model, messages, stream, metadata, system, max_tokens */
    apr_int64_t balance_key;   /* the user's limits and balance in the store */
    apr_int64_t held;          /* of it, for this request (0: nothing held) */
    apr_int64_t charged;       /* what the billed attempt cost */
    apr_uint64_t session;      /* the conversation's key, 0 if none */
    char *proxy_filename;      /* "proxy:balancer://…", as each attempt starts */
    int attempt;               /* 1 for the first account, +1 per switch */
    apr_array_header_t *tried; /* ids of the accounts tried */
    s2a_account next;          /* the account to switch to, when have_next */
    const char *next_model;
    int have_next;
    int swallow; /* this attempt's answer is dropped: the request goes to `next` */
    s2a_key_rec key;
    s2a_account account; /* copy of the chosen account, r->pool memory */
    const s2a_price *price;
    const char *model;          /* as the client asked */
    const char *upstream_model; /* as sent upstream */
    int stream;
    int count_only;    /* POST /v1/messages/count_tokens: no place, no hold, no usage row */
    int committed;     /* a 200 event stream was begun with pings while waiting */
    apr_time_t pinged; /* when the last ping went out */
    apr_time_t start;
    apr_time_t first_byte;
    /* the gateway's own time (metrics, Server-Timing, notes) */
    apr_time_t fixups_at;            /* the gateway's fixups began */
    apr_interval_time_t waited;      /* of it, waiting for a free place */
    apr_time_t sent_at;              /* the answering attempt went upstream */
    apr_time_t headers_at;           /* its answer's headers came */
    apr_interval_time_t own_time;    /* before the first attempt went upstream */
    apr_interval_time_t filter_time; /* reading the answer */
    int billed;                      /* a usage row was queued: usage and charged hold */
    s2a_place account_place; /* the places this request holds (key 0: none) */
    s2a_place next_place;
    s2a_place key_place;
    s2a_place user_place;
    int refreshed; /* the account's token was refreshed after a 401 */

    /* answer side */
    int answered;        /* the output filter saw the answer's start */
    int upstream_status; /* status from the upstream, 0 if none */
    int replaced;        /* body replaced by our own error */
    int eos;
    int upstream_broken; /* an ERROR bucket came from mod_proxy */
    int rewrite_model;   /* the answer's model is to be renamed */
    int holding;         /* answer bytes are held back (see release_held) */
    int as_event;        /* the held body goes out as an SSE error event */
    char *hold;
    apr_size_t hold_len;
    apr_size_t hold_cap;
    s2a_sse *sse;
    s2a_usage_json *usage_json;
    s2a_usage usage;
} s2a_req;

s2a_req *s2a_req_get(request_rec *r);

/* Database access through mod_dbd. */
int s2a_dbc_acquire(request_rec *r, s2a_dbc *c);
int s2a_dbc_open(apr_pool_t *p, server_rec *s, s2a_dbc *c, void **handle);
void s2a_dbc_close(server_rec *s, void *handle);

/* Catalog (mod_sub2api_catalog.c). */
apr_status_t s2a_catalog_create(apr_pool_t *p, s2a_catalog **out);
/* 1 found, 0 unknown, -1 database unavailable. */
int s2a_catalog_key(request_rec *r, s2a_srv_conf *sc, const char *key_hash, s2a_key_rec *out);
/* What a request holds of its user's balance while it runs: its estimated
 * tokens at the prices of the model the chosen account maps it to. */
typedef struct {
    s2a_balance balance;
    s2a_usage estimate;
    apr_int64_t multiplier_ppm;
    int held;           /* set by the choice: as the store's pick */
    apr_int64_t amount; /* set by the choice: what is held */
} s2a_hold;

/* Chooses an account of the group serving the model, other than the ids in
 * `exclude` (may be NULL), counts it in flight and copies it into *out. A
 * conversation (`session`, 0 for none) stays on its bound account while it
 * can serve; see s2a_state_pick_sticky for `wait_for_bound`. `no_limit`:
 * accounts at their concurrency count as free and no place is kept (*place
 * has key 0): for requests that take none. `hold` (may be NULL): the
 * balance is held from in the same step.
 * Returns 1 chosen (its place in *place), 0 none available, -1 database
 * unavailable, -2 all that could serve (or the bound one) are at their
 * concurrency, -3 the store failed (logged), -4 the balance is spent. */
int s2a_catalog_choose(request_rec *r, s2a_srv_conf *sc, apr_int64_t group_id, const char *model,
                       const apr_array_header_t *exclude, apr_uint64_t session, int wait_for_bound,
                       int no_limit, s2a_hold *hold, s2a_account *out, const char **upstream_model,
                       s2a_place *place);
/* The prices of an upstream model: its own, else Sub2apiUnpricedModel's;
 * NULL when neither is in the table. */
const s2a_price *s2a_price_of(s2a_srv_conf *sc, const char *upstream_model);

/* The account list (loaded when stale), held until s2a_catalog_release;
 * NULL when the database was never reached. */
s2a_account_list *s2a_catalog_accounts(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc);
void s2a_catalog_release(s2a_account_list *l);
/* The model names the group's schedulable accounts serve (unsorted, may
 * repeat): their mappings' names, and the price table's Anthropic models
 * when one serves every model. NULL when the database was never reached. */
apr_array_header_t *s2a_catalog_models(request_rec *r, s2a_srv_conf *sc, apr_int64_t group_id);

/* Logs a failed store operation (what was being done, and why). */
void s2a_store_failed(request_rec *r, const char *doing);
/* Moves the store's generation: caches of every process reload. */
void s2a_bump(server_rec *s, apr_pool_t *p);

/* The pseudonym key: from Sub2apiUserIdSecretFile, else from the database
 * (made there once). NULL when the database cannot be reached. Callers
 * serialize: child_init, or request threads under the catalog mutex. */
const char *s2a_secret(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *c);

/* Upstream credentials as stored: sealed with AES-256-GCM when a
 * Sub2apiCredentialKeyFile is set. open gives NULL for a sealed value that
 * cannot be opened (no key, another key, tampered). */
const char *s2a_credential_seal(apr_pool_t *p, s2a_srv_conf *sc, const char *plain);
const char *s2a_credential_open(apr_pool_t *p, s2a_srv_conf *sc, const char *stored);

/* OAuth refresh (mod_sub2api_oauth.c). Makes sure account `id` has a usable
 * access token: refreshed when it ends within S2A_OAUTH_MARGIN_SEC, or when
 * it is `rejected` (the token the upstream answered 401 to; NULL: none).
 * 1 with the plain token in *plain; 0 when none can be had (logged). */
int s2a_oauth_ensure(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, apr_int64_t id,
                     const char *rejected, const char **plain);
/* Registers the background refresher with mod_watchdog. */
void s2a_oauth_watch(apr_pool_t *pconf, server_rec *s);
/* The child stops: runs of the refresher end, and a child's pool does not
 * go while one is in progress. */
void s2a_oauth_child_init(apr_pool_t *pchild);
int s2a_oauth_stopping(void);
/* Where an account's state lives in the store: its credential's key, or for
 * an account with a refresh token (its credential changes) its id within
 * its database. `plain` may be NULL for such accounts. */
apr_int64_t s2a_account_state_key(apr_pool_t *p, s2a_srv_conf *sc, apr_int64_t id, int refreshable,
                                  const char *plain);
/* Where a user's limits and balance live in the store: its id within its
 * database, told apart from other databases by their pseudonym keys. */
apr_int64_t s2a_user_state_key(apr_pool_t *p, const char *secret, apr_int64_t user_id);

/* Gateway (mod_sub2api_gateway.c). */
void s2a_gateway_register_hooks(apr_pool_t *p);
/* The client's API key (x-api-key or Authorization: Bearer) found and usable:
 * OK with *out, else the status of the error it has set. */
int s2a_authenticate(request_rec *r, s2a_srv_conf *sc, s2a_key_rec *out, const char **key_hash);

/* What clients call besides /v1/messages (mod_sub2api_client.c). */
#define S2A_USAGE_HANDLER "sub2api-usage"
#define S2A_REDEEM_HANDLER "sub2api-redeem"
#define S2A_MODELS_HANDLER "sub2api-models"
int s2a_usage_handler(request_rec *r);
int s2a_redeem_handler(request_rec *r);
int s2a_models_handler(request_rec *r);
/* A request body that is one JSON object (or empty: {}), at most 1 MiB;
 * released with the request. 0 if it is not. (mod_sub2api_admin.c) */
int s2a_read_json(request_rec *r, json_object **out);

/* Admin API (mod_sub2api_admin.c). */
int s2a_admin_handler(request_rec *r);

/* Prometheus metrics and the health check (mod_sub2api_metrics.c). */
#define S2A_METRICS_HANDLER "sub2api-metrics"
#define S2A_HEALTH_HANDLER "sub2api-health"
int s2a_metrics_handler(request_rec *r);
int s2a_health_handler(request_rec *r);
/* post_config: the shared memory of the metrics, kept across restarts. */
int s2a_metrics_post_config(server_rec *s);
/* Counts one of the unlabelled counters (S2A_COUNT_*), or moves a gauge. */
void s2a_metrics_note(int counter);
void s2a_metrics_move(int gauge, apr_int64_t delta);
/* log_transaction: a finished request of a gateway location. */
void s2a_metrics_request_done(request_rec *r, s2a_req *q);

/* Admin page (mod_sub2api_dashboard.c). */
#define S2A_DASHBOARD_HANDLER "sub2api-dashboard"
int s2a_dashboard_handler(request_rec *r);

/* Usage writer (mod_sub2api_writer.c). */
apr_status_t s2a_writer_child_init(apr_pool_t *pchild, server_rec *s);
/* post_config: each virtual host's journal file, made for the child user. */
int s2a_writer_journals(apr_pool_t *pconf, server_rec *s);
void s2a_writer_enqueue(request_rec *r, const s2a_usage_row *row);

/* Anthropic-shaped error for a status the gateway decides itself. */
int s2a_fail(request_rec *r, int status, const char *message);

#endif
