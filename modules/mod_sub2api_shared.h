/* The glue's one header: what the httpd glue files (mod_sub2api*.c) share.
 * mod_sub2api.c registers the hooks and handlers each glue file defines;
 * those files call only what this header declares as shared (configuration,
 * database handles, errors, JSON I/O, counters; defined in
 * mod_sub2api_shared.c) and the services below them (the catalog, the OAuth
 * refresh, the usage writer), never another hook file's functions. */
#ifndef MOD_SUB2API_SHARED_H
#define MOD_SUB2API_SHARED_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <mod_proxy.h>
#include <util_filter.h>
#include <apr_proc_mutex.h>
#include <apr_thread_mutex.h>

#include "s2a_attempt.h"
#include "s2a_db_billing.h"
#include "s2a_db_catalog.h"
#include "s2a_db_oauth.h"
#include "s2a_db_schema.h"
#include "s2a_door.h"
#include "s2a_json.h"
#include "s2a_memo.h"
#include "s2a_metrics.h"
#include "s2a_pricing.h"
#include "s2a_request.h"
#include "s2a_state.h"
#include "s2a_store.h"
#include "s2a_usage.h"

APLOG_USE_MODULE(sub2api);

/* Our own message numbers: "S2A" + four digits, never httpd's AH numbers. */
#define S2ALOGNO(n) "S2A" #n ": "

#define S2A_DEFAULT_MAX_BODY (32 * 1024 * 1024)
#define S2A_DEFAULT_RATE_LIMIT_COOLDOWN 300
/* Seconds a stream whose client left is read on for the upstream's usage. */
#define S2A_DEFAULT_DRAIN_TIMEOUT 3
#define S2A_DEFAULT_OVERLOAD_COOLDOWN 600
#define S2A_DEFAULT_CACHE_TTL 5
#define S2A_DEFAULT_MAX_ACCOUNTS 1024
#define S2A_DEFAULT_MAX_SWITCHES 3
#define S2A_DEFAULT_SLOT_WAIT 10
#define S2A_DEFAULT_STICKY_TTL 3600
#define S2A_DEFAULT_MAX_SESSIONS 65536
#define S2A_DEFAULT_OAUTH_WATCH 30
#define S2A_DEFAULT_AUTH_FAILURE_LIMIT 60
/* entries of a catalog's memories of strangers */
#define S2A_UNKNOWN_KEYS 16384
/* known keys a process caches at most (their number is the database's) */
#define S2A_KNOWN_KEYS 100000
/* models priced by a fallback rule a process remembers having logged */
#define S2A_FALLBACKS_TOLD 1024
/* tools arrays whose translation a process keeps, and the longest kept:
 * a session's client sends the same array each turn */
#define S2A_TOOLS_MEMO_SLOTS 8
#define S2A_TOOLS_MEMO_MAX_LEN (512 * 1024)
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
    /* strangers, in memory of a fixed size: keys the database does not know */
    s2a_memo *unknown_keys;
    /* models billed by a price fallback rule that the log was told of */
    s2a_memo *fallbacks_told;
} s2a_catalog;

typedef struct {
    const char *admin_token_hash; /* SHA-256 hex; the token itself is not kept */
    const char *price_file;
    s2a_pricing *prices;
    const char *unpriced_model;      /* Sub2apiUnpricedModel: "" reject, NULL unset */
    apr_array_header_t *price_rules; /* Sub2apiPriceFallback: s2a_price_rule, in order */
    /* what prices a model the table lacks (set by check_config): the rules, then
     * Sub2apiUnpricedModel's model for any other */
    apr_array_header_t *fallbacks;
    int rate_limit_cooldown; /* seconds, -1 unset */
    int overload_cooldown;
    int cache_ttl;
    int max_switches;              /* -1 unset */
    int failover_uncertain;        /* Sub2apiFailoverUncertain; -1 unset */
    int auth_failure_limit;        /* Sub2apiAuthFailureLimit per minute and address; -1 unset */
    int slot_wait;                 /* seconds a request waits for a free account; -1 unset */
    int sticky_ttl;                /* seconds a conversation stays bound to its account; -1 unset */
    int drain_timeout;             /* Sub2apiDrainTimeout, seconds; -1 unset */
    const unsigned char *cred_key; /* Sub2apiCredentialKeyFile: 32 bytes; NULL: none */
    const char *oauth_token_url;   /* Sub2apiOAuthTokenURL */
    const char *oauth_client_id;   /* Sub2apiOAuthClientID */
    const char *oauth_ca_file;     /* Sub2apiOAuthCAFile; NULL: the system's store */
    const char *secret_file;       /* Sub2apiUserIdSecretFile */
    const char *journal;  /* Sub2apiJournal: this host's usage rows while its database is away */
    void *secret;         /* key of the metadata.user_id pseudonyms (text); set once */
    char secret_buf[129]; /* holds it when it comes from the database */
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
    int oauth_watch_sec;            /* Sub2apiOAuthRefreshInterval */
    s2a_metrics *metrics;           /* counters in shared memory; NULL until post_config */
    s2a_tools_memo *tools_memo;     /* the OpenAI doors' tools translations; NULL: none */
    ap_filter_rec_t *replay_filter; /* mod_sub2api_request.c */
    ap_filter_rec_t *answer_filter; /* mod_sub2api_answer.c */
    ap_filter_rec_t *drain_filter;  /* mod_sub2api_answer.c */
    ap_filter_rec_t *error_filter;  /* mod_sub2api_error_page.c */
} s2a_globals;

extern s2a_globals s2a_g;

/* One request of a gateway location, from fixups to logging (kept in
 * r->request_config). What belongs to one account's try is its attempt. */
typedef struct {
    s2a_srv_conf *sconf;
    const char *request_id;
    const char *secret;   /* the pseudonym key */
    const char *key_hash; /* the client key's SHA-256, hex */
    s2a_key_rec key;
    s2a_door door; /* the door it came in by: what its body was read to, how it is answered */
    s2a_body body;
    int count_only;               /* POST /v1/messages/count_tokens: no place, hold or usage row */
    apr_uint64_t session;         /* the conversation's key, 0 if none */
    apr_int64_t balance_key;      /* the user's limits and balance in the store */
    apr_int64_t hold_key;         /* the balance, or the subscription's allowance, held from */
    apr_int64_t held;             /* of it, for this request (0: nothing held) */
    apr_int64_t budget_key;       /* the key's budget, held from (s2a_key_limits) */
    apr_int64_t budget_held;      /* of it, for this request (0: nothing held) */
    s2a_place key_place;          /* among the key's requests (key 0: none) */
    s2a_place user_place;         /* among the user's requests */
    char *proxy_filename;         /* "proxy:balancer://...": where an Anthropic account goes */
    apr_array_header_t *tried;    /* ids of the accounts tried */
    s2a_attempt *attempt;         /* the current attempt; NULL before the first */
    request_rec *upstream_answer; /* mod_proxy's request its answer is read with */
    int refreshed;                /* an account's token was refreshed after a 401 */
    int refused;                  /* an account was put in error for refusing its credentials */
    int committed;                /* a 200 event stream was begun with pings while waiting */
    apr_time_t pinged;            /* when the last ping went out */
    apr_time_t start;
    /* the gateway's own time (metrics, Server-Timing, notes) */
    apr_time_t fixups_at;            /* the gateway's fixups began */
    apr_interval_time_t waited;      /* of it, waiting for a free place */
    apr_interval_time_t own_time;    /* before the first attempt went upstream */
    apr_interval_time_t filter_time; /* reading the answer */
    int billed;                      /* a usage row was queued */
    s2a_usage usage;                 /* what it billed */
    apr_int64_t charged;             /* what it cost */
    apr_int64_t counted;             /* what it takes from its hold's figure: the cost, or for an
                                        allowance the total before the multiplier */
} s2a_request;

/* The gateway request of r; NULL for any other. */
#define s2a_request_of(r)                                                                          \
    ((s2a_request *)ap_get_module_config((r)->request_config, &sub2api_module))

/* ---- Shared (mod_sub2api_shared.c) ---- */

#define s2a_server_conf(s)                                                                         \
    ((s2a_srv_conf *)ap_get_module_config((s)->module_config, &sub2api_module))
#define s2a_dir_conf_of(r)                                                                         \
    ((s2a_dir_conf *)ap_get_module_config((r)->per_dir_config, &sub2api_module))

/* The error for a status the gateway decides itself, in the shape of the
 * request's door (Anthropic's, or OpenAI's for its doors): the message is
 * noted and httpd's error page becomes it (see mod_sub2api_error_page.c).
 * Returns `status`. s2a_fail_at also names the field at fault (`param`,
 * which OpenAI's shape carries). */
#define S2A_ERROR_NOTE "sub2api-json-error"
#define S2A_ERROR_PARAM_NOTE "sub2api-json-error-param"
int s2a_fail(request_rec *r, int status, const char *message);
int s2a_fail_at(request_rec *r, int status, const char *message, const char *param);
/* s2a_fail for a database out of reach: 503 with retry-after, as an outage
 * of seconds (a restart, a failover) is what it most often is. */
int s2a_no_database(request_rec *r);
#define S2A_NO_DATABASE "The gateway cannot reach its database; retry shortly"
/* An error event on an event stream whose 200 is sent already. */
void s2a_send_error_event(request_rec *r, int status, const char *message);

/* A request body that is one JSON object (or empty: {}), at most 1 MiB;
 * released with the request. 0 if it is not. */
int s2a_read_json(request_rec *r, json_object **out);
/* `o`, released with the pool (NULL stays NULL). */
json_object *s2a_json_pooled(apr_pool_t *p, json_object *o);
/* Sends `o` as the JSON answer with `status`; the caller still owns `o`. */
int s2a_send_json(request_rec *r, int status, json_object *o);
/* An Anthropic-shaped error answer, written at once (handlers). */
int s2a_send_error(request_rec *r, int status, const char *message);

/* Database access through mod_dbd: a request's connection, or one opened
 * for a pool (threads, child start). 0 when the database cannot be
 * reached. */
int s2a_dbc_acquire(request_rec *r, s2a_dbc *c);
int s2a_dbc_open(apr_pool_t *p, server_rec *s, s2a_dbc *c, void **handle);
void s2a_dbc_close(server_rec *s, void *handle);

/* The pseudonym key: from Sub2apiUserIdSecretFile, else from the database
 * (made there once). NULL when the database cannot be reached. Callers
 * serialize: child_init, or request threads under the catalog mutex. */
const char *s2a_secret(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *c);

/* An account's secrets (credential, refresh token, fixed headers) as
 * stored: sealed with AES-256-GCM when a Sub2apiCredentialKeyFile is set,
 * bound to account `id` (a sealed value moved to another account's row
 * does not open). open gives NULL for a sealed value that cannot be opened
 * (no key, another key, another account, tampered). */
const char *s2a_credential_seal(apr_pool_t *p, s2a_srv_conf *sc, apr_int64_t id, const char *plain);
const char *s2a_credential_open(apr_pool_t *p, s2a_srv_conf *sc, apr_int64_t id,
                                const char *stored);
/* Where account `id`'s state lives in the store (s2a_state_key_account with
 * this host's pseudonym key). */
apr_int64_t s2a_account_state_key(apr_pool_t *p, s2a_srv_conf *sc, apr_int64_t id, int refreshable,
                                  const char *plain);

/* Logs a failed store operation (what was being done, and why). */
void s2a_store_failed(request_rec *r, const char *doing);
/* Gives a place back (key 0: none) and forgets it; when the store fails
 * the place frees itself at the end of its lease. */
void s2a_give_back(request_rec *r, s2a_place *place);
/* Moves the store's generation: caches of every process reload. */
void s2a_bump(server_rec *s, apr_pool_t *p);
/* Requests charge the balance the store keeps ahead of the database: after
 * a change outside requests (an operator, a redeem code) the next request
 * brings the database's figure. 0 when the store could not be told. */
int s2a_forget_balance(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *c,
                       apr_int64_t user_id);

/* Counts one of the unlabelled counters (S2A_COUNT_*), or moves a gauge. */
void s2a_metrics_note(int counter);
void s2a_metrics_move(int gauge, apr_int64_t delta);
/* A virtual host as metrics name it: "host:port". */
const char *s2a_server_label(apr_pool_t *p, server_rec *s);

/* ---- Services below the hooks ---- */

/* Catalog (mod_sub2api_catalog.c). */
apr_status_t s2a_catalog_create(apr_pool_t *p, s2a_catalog **out);
/* The key whose SHA-256 is `digest` (its hex: `key_hash`): 1 found, 0
 * unknown, -1 database unavailable. */
int s2a_catalog_key(request_rec *r, s2a_srv_conf *sc, const unsigned char *digest,
                    const char *key_hash, s2a_key_rec *out);
/* What a request holds of its user's balance while it runs: its estimated
 * usage at the prices of the model the chosen account is sent. */
typedef struct {
    s2a_balance balance;
    s2a_usage estimate;
    apr_int64_t multiplier_ppm;
    int held;           /* set by the choice: as the store's pick */
    apr_int64_t amount; /* set by the choice: what is held */
} s2a_hold;

/* What a choice of an account asks for. */
typedef struct {
    apr_int64_t group_id;
    const char *model;                 /* as the client asked */
    const apr_array_header_t *exclude; /* ids of accounts tried already; may be NULL */
    apr_uint64_t session;              /* the conversation, 0: none */
    int wait_for_bound;                /* see s2a_state_pick_holding */
    int no_limit;   /* accounts at their concurrency count as free and no place is kept: for
                       requests that take none */
    s2a_hold *hold; /* the balance is held from in the same step; may be NULL */
} s2a_choice_ask;

typedef enum {
    S2A_CHOSEN = 1,      /* the attempt has its account, model and place */
    S2A_CHOICE_NONE = 0, /* no account can serve */
    S2A_CHOICE_NO_DATABASE = -1,
    S2A_CHOICE_BUSY = -2,       /* all that could serve (or the bound one) are full */
    S2A_CHOICE_STORE_DOWN = -3, /* the store failed (logged) */
    S2A_CHOICE_BROKE = -4       /* the user's balance is spent */
} s2a_choice_result;

/* The members of the location's balancer an operator took out in
 * balancer-manager (disabled, stopped or draining), by name (const char *);
 * NULL when none. Their accounts are not chosen until they are back. */
apr_array_header_t *s2a_members_closed(request_rec *r);

/* Chooses an account of the group serving the model and counts it in flight:
 * the attempt gets its copy, the model it is sent and its place. A
 * conversation stays on its bound account while it can serve. */
s2a_choice_result s2a_catalog_choose(request_rec *r, s2a_srv_conf *sc, const s2a_choice_ask *ask,
                                     s2a_attempt *into);
/* An attempt whose account was chosen, made ready to go: the account's
 * token fresh, its prices, and the body it is sent. 0 when the model it is
 * sent has no price (a request that is billed cannot go there). */
int s2a_attempt_ready(request_rec *r, s2a_request *q, s2a_attempt *a);
/* The prices of an upstream model: its own, else those a fallback rule
 * names (*rule: that rule, or NULL); NULL when neither. */
#define s2a_price_of(sc, upstream_model, rule)                                                     \
    s2a_pricing_resolve((sc)->prices, (sc)->fallbacks, (upstream_model), (rule))

/* The account list (loaded when stale), held until s2a_catalog_release;
 * NULL when the database was never reached. */
s2a_account_list *s2a_catalog_accounts(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc);
void s2a_catalog_release(s2a_account_list *l);
/* The model names the group's schedulable accounts serve (unsorted, may
 * repeat): their mappings' names, and the price table's Anthropic models
 * when one serves every model. NULL when the database was never reached. */
apr_array_header_t *s2a_catalog_models(request_rec *r, s2a_srv_conf *sc, apr_int64_t group_id);

/* The client's API key (x-api-key or Authorization: Bearer) found and usable:
 * OK with *out, else the status of the error it has set. */
int s2a_authenticate(request_rec *r, s2a_srv_conf *sc, s2a_key_rec *out, const char **key_hash);

/* OAuth refresh (mod_sub2api_oauth.c). Makes sure account `id` has a usable
 * access token: refreshed when it ends within S2A_OAUTH_MARGIN_SEC, or when
 * it is `rejected` (the token the upstream answered 401 to; NULL: none).
 * 1 with the plain token in *plain; 0 when none can be had (logged). */
int s2a_oauth_ensure(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, apr_int64_t id,
                     const char *rejected, const char **plain);
/* An account whose token ends within S2A_OAUTH_MARGIN_SEC gets a new one
 * before it serves; when that fails, the old token is tried still. */
void s2a_oauth_freshen(request_rec *r, s2a_srv_conf *sc, s2a_account *a);
/* post_config: registers the background refresher with mod_watchdog. */
void s2a_oauth_watch(apr_pool_t *pconf, server_rec *s);
/* The child stops: runs of the refresher end, and a child's pool does not
 * go while one is in progress. */
void s2a_oauth_child_init(apr_pool_t *pchild);
int s2a_oauth_stopping(void);

/* Usage writer (mod_sub2api_writer.c). */
/* post_config: each virtual host's journal file, made for the child user. */
int s2a_writer_journals(apr_pool_t *pconf, server_rec *s);
apr_status_t s2a_writer_child_init(apr_pool_t *pchild, server_rec *s);
void s2a_writer_enqueue(request_rec *r, const s2a_usage_row *row);

/* ---- Hooks and handlers, registered by mod_sub2api.c ---- */

/* Start-up (mod_sub2api_startup.c): defaults, shared memory kept across
 * graceful restarts, the schema, the store, the caches and the writer. */
int s2a_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int s2a_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
int s2a_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
void s2a_child_init(apr_pool_t *pchild, server_rec *s);

/* The request path, in the order it runs. */
/* mod_sub2api_request.c: translate_name, fixups, the replay input filter. */
int s2a_request_translate(request_rec *r);
int s2a_request_fixups(request_rec *r);
apr_status_t s2a_request_replay(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                apr_read_type_e block, apr_off_t readbytes);
/* mod_sub2api_lbmethod.c: registers the balancer's `sub2api` lbmethod and
 * its guard (mod_proxy's pre_request), which lets only admitted requests
 * reach such a balancer. */
void s2a_lbmethod_register(apr_pool_t *p);
/* check_config: why a virtual host's sub2api balancers cannot serve (a
 * stickysession); NULL when they can. */
const char *s2a_lbmethod_check(apr_pool_t *p, server_rec *s);
/* mod_sub2api_egress.c: mod_proxy's scheme_handler, first: an attempt whose
 * account has an egress goes through that forward proxy. */
int s2a_egress_scheme_handler(request_rec *r, proxy_worker *worker, proxy_server_conf *conf,
                              char *url, const char *proxyhost, apr_port_t proxyport);
/* mod_sub2api_upstream.c: mod_proxy's fixups, on the headers sent upstream. */
int s2a_upstream_fixups(request_rec *r);
/* mod_sub2api_answer.c: the output filter of the answer; mod_proxy's
 * create_req, where the upstream's answer is about to be read; the input
 * filter that bounds the read of an answer whose client left. */
apr_status_t s2a_answer_filter(ap_filter_t *f, apr_bucket_brigade *bb);
int s2a_answer_create_req(request_rec *r, request_rec *upstream);
apr_status_t s2a_answer_drain_clock(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                    apr_read_type_e block, apr_off_t readbytes);
/* mod_sub2api_failover.c: mod_proxy's request_status, after each attempt. */
int s2a_failover_request_status(int *status, request_rec *r);
/* mod_sub2api_billing.c: log_transaction. */
int s2a_billing_log_transaction(request_rec *r);
/* mod_sub2api_error_page.c: insert_error_filter and its filter, and the
 * handler an ErrorDocument names for httpd's own errors. */
#define S2A_ERROR_HANDLER "sub2api-error"
void s2a_error_page_insert(request_rec *r);
apr_status_t s2a_error_page_filter(ap_filter_t *f, apr_bucket_brigade *bb);
int s2a_error_page_handler(request_rec *r);

/* What clients call besides /v1/messages (mod_sub2api_v1.c): GET /v1/usage,
 * POST /v1/redeem, GET /v1/models[/{id}]. */
/* requests a key may make of /v1/models and /v1/usage, and redeem codes a
 * key and an address may try, per minute */
#define S2A_ENDPOINT_PER_MINUTE 120
#define S2A_REDEEM_PER_KEY 10
#define S2A_REDEEM_PER_ADDRESS 30
#define S2A_USAGE_HANDLER "sub2api-usage"
#define S2A_REDEEM_HANDLER "sub2api-redeem"
#define S2A_MODELS_HANDLER "sub2api-models"
int s2a_v1_handler(request_rec *r);

/* SetHandler sub2api-admin (mod_sub2api_admin.c). */
#define S2A_ADMIN_HANDLER "sub2api-admin"
int s2a_admin_handler(request_rec *r);

/* SetHandler sub2api-metrics and sub2api-health (mod_sub2api_metrics.c). */
#define S2A_METRICS_HANDLER "sub2api-metrics"
#define S2A_HEALTH_HANDLER "sub2api-health"
int s2a_metrics_handler(request_rec *r);
int s2a_health_handler(request_rec *r);

/* SetHandler sub2api-dashboard (mod_sub2api_dashboard.c). */
#define S2A_DASHBOARD_HANDLER "sub2api-dashboard"
int s2a_dashboard_handler(request_rec *r);

#endif
