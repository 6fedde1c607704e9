/* mod_sub2api: a metered, multi-tenant Anthropic-compatible gateway inside
 * httpd. This file is the module record: configuration, directives and hook
 * registration. The work happens in modules/. */
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_request.h>
#include <ap_provider.h>
#include <http_core.h>
#include <http_main.h>
#include <apr_atomic.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include "mod_sub2api_private.h"
#include <mod_dbd.h>
#include "s2a_aead.h"
#include "s2a_identity.h"
#include "s2a_sha256.h"

s2a_globals s2a_g;

static void *create_srv_conf(apr_pool_t *p, server_rec *s)
{
    s2a_srv_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->rate_limit_cooldown = -1;
    c->overload_cooldown = -1;
    c->cache_ttl = -1;
    c->max_switches = -1;
    c->slot_wait = -1;
    c->sticky_ttl = -1;
    return c;
}

#define MERGE(f, unset) c->f = (add->f != (unset)) ? add->f : base->f

static void *merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    s2a_srv_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    MERGE(admin_token_hash, NULL);
    MERGE(price_file, NULL);
    MERGE(prices, NULL);
    MERGE(unpriced_model, NULL);
    MERGE(secret_file, NULL);
    MERGE(cred_key, NULL);
    MERGE(secret, NULL);
    MERGE(rate_limit_cooldown, -1);
    MERGE(overload_cooldown, -1);
    MERGE(cache_ttl, -1);
    MERGE(max_switches, -1);
    MERGE(slot_wait, -1);
    MERGE(sticky_ttl, -1);
    MERGE(oauth_token_url, NULL);
    MERGE(oauth_client_id, NULL);
    /* not inherited: a virtual host may bill to a database of its own */
    c->journal = add->journal;
    return c;
}

static void *create_dir_conf(apr_pool_t *p, char *dir)
{
    s2a_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)dir;
    c->max_body = -1;
    c->server_timing = -1;
    return c;
}

static void *merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    s2a_dir_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    MERGE(balancer, NULL);
    MERGE(max_body, -1);
    MERGE(server_timing, -1);
    return c;
}

static s2a_srv_conf *srv_conf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &sub2api_module);
}

static const char *set_admin_token(cmd_parms *cmd, void *dc, const char *arg)
{
    unsigned char d[S2A_SHA256_LEN];
    (void)dc;
    if (strlen(arg) < 16) {
        return "Sub2apiAdminToken must be at least 16 characters long";
    }
    s2a_sha256(arg, strlen(arg), d);
    srv_conf(cmd)->admin_token_hash = s2a_hex(cmd->pool, d, sizeof(d));
    return NULL;
}

/* Loaded while the configuration is read, so `apachectl configtest` rejects
 * a broken table. */
/* The text of the last good table of each file, kept in the process pool
 * (the module itself is unloaded at a restart), so that a file broken at a
 * graceful restart leaves the table loaded before in use. */
typedef struct {
    apr_pool_t *pool;
    const char *text;
    apr_size_t len;
} kept_table;

static const char *set_price_table(cmd_parms *cmd, void *dc, const char *arg)
{
    s2a_srv_conf *sc = srv_conf(cmd);
    const char *err = NULL, *skipped = NULL, *key, *text, *again = NULL;
    kept_table *k = NULL;
    void *data = NULL;
    int nskipped;
    (void)dc;
    sc->price_file = ap_server_root_relative(cmd->pool, arg);
    key = apr_pstrcat(cmd->temp_pool, "s2a-prices:", sc->price_file, NULL);
    if (apr_pool_userdata_get(&data, key, ap_pglobal) == APR_SUCCESS) {
        k = data;
    }
    if (s2a_pricing_load(cmd->pool, sc->price_file, &sc->prices, &err) != APR_SUCCESS) {
        if (!k || s2a_pricing_parse(cmd->pool, k->text, k->len, &sc->prices, &again) !=
                      APR_SUCCESS) {
            return apr_psprintf(cmd->pool, "Sub2apiPriceTable: %s", err);
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                     S2ALOGNO(0015) "Sub2apiPriceTable: %s; the table loaded before stays in use",
                     err);
        return NULL;
    }
    if (!k) {
        k = apr_pcalloc(ap_pglobal, sizeof(*k));
        apr_pool_create(&k->pool, ap_pglobal);
        apr_pool_userdata_set(k, key, apr_pool_cleanup_null, ap_pglobal);
    } else {
        apr_pool_clear(k->pool);
    }
    text = s2a_pricing_source(sc->prices, &k->len);
    k->text = apr_pmemdup(k->pool, text, k->len + 1);
    nskipped = s2a_pricing_skipped(sc->prices, &skipped);
    if (nskipped) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                     S2ALOGNO(0010) "Sub2apiPriceTable %s: %d entries without exact prices "
                                    "skipped (first: %s)",
                     sc->price_file, nskipped, skipped);
    }
    return NULL;
}

/* Sub2apiUnpricedModel reject | <model of the price table> */
static const char *set_unpriced(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    srv_conf(cmd)->unpriced_model = strcasecmp(arg, "reject") == 0 ? "" : arg;
    return NULL;
}

/* The token endpoint is reached with the module's own small HTTP client,
 * which speaks no TLS: https endpoints go through a local location that
 * proxies to them (mod_proxy + mod_ssl). */
static const char *set_oauth_url(cmd_parms *cmd, void *dc, const char *arg)
{
    apr_uri_t u;
    (void)dc;
    if (apr_uri_parse(cmd->pool, arg, &u) != APR_SUCCESS || !u.scheme || !u.hostname) {
        return "Sub2apiOAuthTokenURL: an http:// URL is required";
    }
    if (strcmp(u.scheme, "http") != 0) {
        return "Sub2apiOAuthTokenURL: only http:// is spoken; point it at a local location that "
               "proxies to the https endpoint (see docs/directives.md)";
    }
    srv_conf(cmd)->oauth_token_url = arg;
    return NULL;
}

static const char *set_oauth_client(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    if (!*arg) {
        return "Sub2apiOAuthClientID: a client id is required";
    }
    srv_conf(cmd)->oauth_client_id = arg;
    return NULL;
}

static const char *set_journal(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    srv_conf(cmd)->journal = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

static const char *set_secret_file(cmd_parms *cmd, void *dc, const char *arg)
{
    s2a_srv_conf *sc = srv_conf(cmd);
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    (void)dc;
    sc->secret_file = ap_server_root_relative(cmd->pool, arg);
    if (apr_file_open(&f, sc->secret_file, APR_FOPEN_READ, 0, cmd->pool) != APR_SUCCESS ||
        apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS || fi.size > 4096) {
        return apr_psprintf(cmd->pool, "Sub2apiUserIdSecretFile: cannot read %s", sc->secret_file);
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(cmd->pool, n + 1);
    apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    buf[n] = '\0';
    if (strlen(buf) < S2A_IDENTITY_SECRET_MIN) {
        return apr_psprintf(cmd->pool, "Sub2apiUserIdSecretFile: %s holds fewer than %d characters",
                            sc->secret_file, S2A_IDENTITY_SECRET_MIN);
    }
    sc->secret = buf;
    return NULL;
}

/* 64 hex characters: the AES-256 key upstream credentials are sealed with. */
static const char *set_credential_key(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    unsigned char *key = apr_palloc(cmd->pool, S2A_AEAD_KEY_LEN);
    char hex[S2A_AEAD_KEY_LEN * 2 + 2];
    apr_size_t n = 0, i;
    apr_file_t *f;
    (void)dc;
    if (apr_file_open(&f, path, APR_FOPEN_READ, 0, cmd->pool) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "Sub2apiCredentialKeyFile: cannot read %s", path);
    }
    apr_file_read_full(f, hex, sizeof(hex), &n);
    apr_file_close(f);
    while (n && (hex[n - 1] == '\n' || hex[n - 1] == '\r')) {
        n--;
    }
    for (i = 0; n == S2A_AEAD_KEY_LEN * 2 && i < S2A_AEAD_KEY_LEN; i++) {
        if (!apr_isxdigit(hex[2 * i]) || !apr_isxdigit(hex[2 * i + 1])) {
            break;
        }
        key[i] = (unsigned char)((apr_isdigit(hex[2 * i]) ? hex[2 * i] - '0'
                                                          : (apr_tolower(hex[2 * i]) - 'a' + 10))
                                     << 4 |
                                 (apr_isdigit(hex[2 * i + 1])
                                      ? hex[2 * i + 1] - '0'
                                      : (apr_tolower(hex[2 * i + 1]) - 'a' + 10)));
    }
    if (n != S2A_AEAD_KEY_LEN * 2 || i != S2A_AEAD_KEY_LEN) {
        return apr_psprintf(cmd->pool,
                            "Sub2apiCredentialKeyFile: %s must hold 64 hex characters "
                            "(e.g. from: openssl rand -hex 32)",
                            path);
    }
    srv_conf(cmd)->cred_key = key;
    return NULL;
}

static const char *const credential_aad = "s2a-account-credential";

const char *s2a_credential_seal(apr_pool_t *p, s2a_srv_conf *sc, const char *plain)
{
    return sc->cred_key ? s2a_aead_seal_text(p, sc->cred_key, credential_aad, plain) : plain;
}

const char *s2a_credential_open(apr_pool_t *p, s2a_srv_conf *sc, const char *stored)
{
    if (!s2a_aead_is_sealed(stored)) {
        return stored; /* written before a key was set */
    }
    return sc->cred_key ? s2a_aead_open_text(p, sc->cred_key, credential_aad, stored) : NULL;
}

static const char *parse_seconds(cmd_parms *cmd, const char *arg, int min, int *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || v < min || v > 86400 * 365) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds >= %d",
                            cmd->directive->directive, arg, min);
    }
    *out = (int)v;
    return NULL;
}

/* Directives that take seconds: where the value goes and its minimum. */
typedef struct {
    apr_size_t offset;
    int min;
} seconds_field;

static const seconds_field rate_limit_cooldown = {APR_OFFSETOF(s2a_srv_conf, rate_limit_cooldown),
                                                  1};
static const seconds_field overload_cooldown = {APR_OFFSETOF(s2a_srv_conf, overload_cooldown), 1};
static const seconds_field slot_wait = {APR_OFFSETOF(s2a_srv_conf, slot_wait), 0};
static const seconds_field sticky_ttl = {APR_OFFSETOF(s2a_srv_conf, sticky_ttl), 0};
static const seconds_field cache_ttl = {APR_OFFSETOF(s2a_srv_conf, cache_ttl), 0};

static const char *set_seconds(cmd_parms *cmd, void *dc, const char *arg)
{
    const seconds_field *f = cmd->info;
    (void)dc;
    return parse_seconds(cmd, arg, f->min, (int *)((char *)srv_conf(cmd) + f->offset));
}

static const char *set_max_switches(cmd_parms *cmd, void *dc, const char *arg)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    (void)dc;
    if (*arg == '\0' || *end != '\0' || v < 0 || v > 10) {
        return apr_psprintf(cmd->pool,
                            "Sub2apiMaxAccountSwitches: '%s' is not a number from 0 to 10", arg);
    }
    srv_conf(cmd)->max_switches = (int)v;
    return NULL;
}

static const char *set_gateway(cmd_parms *cmd, void *dc, const char *arg)
{
    s2a_dir_conf *c = dc;
    if (strncasecmp(arg, "balancer://", 11) != 0 || arg[11] == '\0') {
        return apr_psprintf(cmd->pool, "Sub2apiGateway: '%s' is not a balancer://name URL", arg);
    }
    c->balancer = apr_pstrdup(cmd->pool, arg);
    while (*c->balancer && c->balancer[strlen(c->balancer) - 1] == '/') {
        ((char *)c->balancer)[strlen(c->balancer) - 1] = '\0';
    }
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *dc, const char *arg)
{
    s2a_dir_conf *c = dc;
    char *end;
    apr_off_t v;
    if (apr_strtoff(&v, arg, &end, 10) != APR_SUCCESS || *end || v < 1024 ||
        v > (apr_off_t)1024 * 1024 * 1024) {
        return apr_psprintf(
            cmd->pool, "Sub2apiMaxBodySize: '%s' is not a size in bytes from 1024 to 1 GiB", arg);
    }
    c->max_body = v;
    return NULL;
}

/* Whole-server numbers: where they go and the range they may take. */
typedef struct {
    int *field;
    int min;
    int max;
} global_int;

static const global_int max_accounts = {&s2a_g.max_accounts, 16, 1000000};
static const global_int max_sessions = {&s2a_g.max_sessions, 64, 100000000};
static const global_int oauth_watch = {&s2a_g.oauth_watch_sec, 1, 3600};

static const char *set_global_int(cmd_parms *cmd, void *dc, const char *arg)
{
    const global_int *g = cmd->info;
    char *end;
    long v = strtol(arg, &end, 10);
    (void)dc;
    if (ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return ap_check_cmd_context(cmd, GLOBAL_ONLY);
    }
    if (*end || end == arg || v < g->min || v > g->max) {
        return apr_psprintf(cmd->pool, "%s must be between %d and %d", cmd->cmd->name, g->min,
                            g->max);
    }
    *g->field = (int)v;
    return NULL;
}

static const char *set_store(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = NULL;
    (void)dc;
    if (ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return ap_check_cmd_context(cmd, GLOBAL_ONLY);
    }
    if (strcmp(arg, "shm") == 0) {
        s2a_g.store_url = NULL;
        return NULL;
    }
    s2a_g.store_url = s2a_redis_url_parse(cmd->pool, arg, &err);
    return s2a_g.store_url ? NULL
                           : apr_pstrcat(cmd->pool, "Sub2apiStore: shm or redis://host:port/db (",
                                         err, ")", NULL);
}

static const command_rec s2a_cmds[] = {
    AP_INIT_TAKE1("Sub2apiAdminToken", set_admin_token, NULL, RSRC_CONF,
                  "Bearer token that opens the admin API"),
    AP_INIT_TAKE1("Sub2apiPriceTable", set_price_table, NULL, RSRC_CONF,
                  "Price table file (LiteLLM model_prices JSON format)"),
    AP_INIT_TAKE1("Sub2apiUnpricedModel", set_unpriced, NULL, RSRC_CONF,
                  "reject (default), or the model of the price table whose prices apply to "
                  "models the table lacks"),
    AP_INIT_TAKE1("Sub2apiCredentialKeyFile", set_credential_key, NULL, RSRC_CONF,
                  "File with the AES-256 key (64 hex) upstream credentials are sealed with"),
    AP_INIT_TAKE1("Sub2apiUserIdSecretFile", set_secret_file, NULL, RSRC_CONF,
                  "File with the key of the metadata.user_id pseudonyms"),
    AP_INIT_TAKE1("Sub2apiRateLimitCooldown", set_seconds, (void *)&rate_limit_cooldown, RSRC_CONF,
                  "Seconds an account rests after a 429 without a reset header"),
    AP_INIT_TAKE1("Sub2apiOverloadCooldown", set_seconds, (void *)&overload_cooldown, RSRC_CONF,
                  "Seconds an account rests after a 529"),
    AP_INIT_TAKE1("Sub2apiSlotWait", set_seconds, (void *)&slot_wait, RSRC_CONF,
                  "Seconds a request waits for an account below its concurrency"),
    AP_INIT_TAKE1("Sub2apiStickyTTL", set_seconds, (void *)&sticky_ttl, RSRC_CONF,
                  "Seconds a conversation stays bound to its account (0: off)"),
    AP_INIT_TAKE1("Sub2apiMaxSessions", set_global_int, (void *)&max_sessions, RSRC_CONF,
                  "Conversations the shared state can bind to accounts"),
    AP_INIT_TAKE1("Sub2apiJournal", set_journal, NULL, RSRC_CONF,
                  "File keeping the virtual host's usage rows while its database is away"),
    AP_INIT_TAKE1("Sub2apiCacheTTL", set_seconds, (void *)&cache_ttl, RSRC_CONF,
                  "Seconds keys and accounts stay cached in a process"),
    AP_INIT_TAKE1("Sub2apiMaxAccountSwitches", set_max_switches, NULL, RSRC_CONF,
                  "How many other accounts a failed request is sent to"),
    AP_INIT_TAKE1("Sub2apiGateway", set_gateway, NULL, ACCESS_CONF,
                  "balancer://name whose members are the upstream endpoints"),
    AP_INIT_FLAG("Sub2apiServerTiming", ap_set_flag_slot,
                 (void *)APR_OFFSETOF(s2a_dir_conf, server_timing), RSRC_CONF | ACCESS_CONF,
                 "On: answers carry Server-Timing with the gateway's own time before the "
                 "upstream"),
    AP_INIT_TAKE1("Sub2apiMaxBodySize", set_max_body, NULL, RSRC_CONF | ACCESS_CONF,
                  "Largest request body accepted, in bytes"),
    AP_INIT_TAKE1("Sub2apiMaxAccounts", set_global_int, (void *)&max_accounts, RSRC_CONF,
                  "Accounts the shared state has room for"),
    AP_INIT_TAKE1("Sub2apiOAuthTokenURL", set_oauth_url, NULL, RSRC_CONF,
                  "http:// URL of the OAuth token endpoint that refreshes account tokens"),
    AP_INIT_TAKE1("Sub2apiOAuthRefreshInterval", set_global_int, (void *)&oauth_watch, RSRC_CONF,
                  "Seconds between looks for account tokens that end soon"),
    AP_INIT_TAKE1("Sub2apiOAuthClientID", set_oauth_client, NULL, RSRC_CONF,
                  "OAuth client id sent with token refreshes"),
    AP_INIT_TAKE1("Sub2apiStore", set_store, NULL, RSRC_CONF,
                  "Where the account pool's state lives: shm, or redis://host:port/db"),
    {NULL}};

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    (void)pconf;
    s2a_g.max_accounts = S2A_DEFAULT_MAX_ACCOUNTS;
    s2a_g.max_sessions = S2A_DEFAULT_MAX_SESSIONS;
    s2a_g.store_url = NULL;
    s2a_g.oauth_watch_sec = S2A_DEFAULT_OAUTH_WATCH;
    return OK;
}

/* Checks that need the whole configuration; they run under configtest too. */
static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *sp;
    (void)pconf;
    (void)plog;
    (void)ptemp;
    for (sp = s; sp; sp = sp->next) {
        s2a_srv_conf *sc = ap_get_module_config(sp->module_config, &sub2api_module);
        if (sc->unpriced_model && *sc->unpriced_model &&
            (!sc->prices || !s2a_pricing_lookup(sc->prices, sc->unpriced_model))) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, sp,
                         S2ALOGNO(0016) "Sub2apiUnpricedModel %s: the virtual host's price table "
                                        "has no such model",
                         sc->unpriced_model);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* The account pool's state (with its lock) outlives a graceful restart: it
 * lives in the process pool, made once, so that the old generation's
 * requests give their places back where the new generation counts them. A
 * new Sub2apiMaxAccounts or Sub2apiMaxSessions, or a module laying the
 * state out otherwise, starts a fresh segment. The mutex only keeps
 * children from migrating the schema at once. */
typedef struct {
    apr_shm_t *shm;
    apr_proc_mutex_t *mutex;
    int max_accounts, max_sessions;
} kept_state;

static apr_status_t keep_state(server_rec *s)
{
    apr_pool_t *pproc = s->process->pool;
    apr_size_t size = s2a_state_size(s2a_g.max_accounts, s2a_g.max_sessions);
    kept_state *k = NULL;
    apr_status_t rv;
    apr_pool_userdata_get((void **)&k, "sub2api-state", pproc);
    if (!k) {
        k = apr_pcalloc(pproc, sizeof(*k));
        apr_pool_userdata_set(k, "sub2api-state", apr_pool_cleanup_null, pproc);
    }
    if (!k->mutex) {
        rv = apr_proc_mutex_create(&k->mutex, NULL, APR_LOCK_PROC_PTHREAD, pproc);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, S2ALOGNO(0003) "cannot create mutex");
            return rv;
        }
    }
    if (!k->shm || k->max_accounts != s2a_g.max_accounts ||
        k->max_sessions != s2a_g.max_sessions ||
        !s2a_state_fits(apr_shm_baseaddr_get(k->shm), apr_shm_size_get(k->shm),
                        s2a_g.max_accounts, s2a_g.max_sessions)) {
        apr_shm_t *shm;
        rv = apr_shm_create(&shm, size, NULL, pproc);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         S2ALOGNO(0004) "cannot create %" APR_SIZE_T_FMT " bytes of shared memory",
                         size);
            return rv;
        }
        if (k->shm) {
            apr_shm_destroy(k->shm); /* the old generation keeps its mapping */
        }
        memset(apr_shm_baseaddr_get(shm), 0, size);
        k->shm = shm;
        k->max_accounts = s2a_g.max_accounts;
        k->max_sessions = s2a_g.max_sessions;
    }
    s2a_g.shm = k->shm;
    s2a_g.mutex = k->mutex;
    return APR_SUCCESS;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *sp;
    apr_status_t rv;
    (void)plog;
    (void)ptemp;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    for (sp = s; sp; sp = sp->next) {
        s2a_srv_conf *sc = ap_get_module_config(sp->module_config, &sub2api_module);
        if (sc->rate_limit_cooldown < 0) {
            sc->rate_limit_cooldown = S2A_DEFAULT_RATE_LIMIT_COOLDOWN;
        }
        if (sc->overload_cooldown < 0) {
            sc->overload_cooldown = S2A_DEFAULT_OVERLOAD_COOLDOWN;
        }
        if (sc->cache_ttl < 0) {
            sc->cache_ttl = S2A_DEFAULT_CACHE_TTL;
        }
        if (sc->max_switches < 0) {
            sc->max_switches = S2A_DEFAULT_MAX_SWITCHES;
        }
        if (sc->slot_wait < 0) {
            sc->slot_wait = S2A_DEFAULT_SLOT_WAIT;
        }
        if (sc->sticky_ttl < 0) {
            sc->sticky_ttl = S2A_DEFAULT_STICKY_TTL;
        }
        if (sc->prices) {
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, sp, S2ALOGNO(0002) "price table %s: %d models",
                         sc->price_file, s2a_pricing_count(sc->prices));
        }
    }

    rv = keep_state(s);
    if (rv != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (sp = s; sp; sp = sp->next) {
        s2a_srv_conf *sc = ap_get_module_config(sp->module_config, &sub2api_module);
        if (sc->oauth_token_url && sc->oauth_client_id) {
            s2a_oauth_watch(pconf, s);
            break;
        }
    }
    s2a_g.state = s2a_state_init(pconf, apr_shm_baseaddr_get(s2a_g.shm), s2a_g.max_accounts,
                                 s2a_g.max_sessions);
    if (!s2a_g.state) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     S2ALOGNO(0018) "cannot make the shared state's lock");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (s2a_metrics_post_config(s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return s2a_writer_journals(pconf, s);
}

static int from_dbd(ap_dbd_t *d, s2a_dbc *c)
{
    if (!d) {
        return 0;
    }
    c->driver = d->driver;
    c->handle = d->handle;
    c->prepared = d->prepared;
    c->pool = d->pool;
    return s2a_db_alive(c, d->pool);
}

int s2a_dbc_open(apr_pool_t *p, server_rec *s, s2a_dbc *c, void **handle)
{
    ap_dbd_t *d = ap_dbd_open(p, s);
    *handle = d;
    if (d && !from_dbd(d, c)) {
        ap_dbd_close(s, d); /* back to the pool: its next user gets it reconnected */
        d = NULL;
    }
    if (!d) {
        s2a_metrics_note(S2A_COUNT_DB_ERRORS);
    }
    return d != NULL;
}

void s2a_dbc_close(server_rec *s, void *handle)
{
    ap_dbd_close(s, handle);
}

int s2a_dbc_acquire(request_rec *r, s2a_dbc *c)
{
    if (!from_dbd(ap_dbd_acquire(r), c)) {
        s2a_metrics_note(S2A_COUNT_DB_ERRORS);
        return 0;
    }
    return 1;
}

/* Without Sub2apiUserIdSecretFile the pseudonym key lives in the database,
 * made once by whichever process gets there first. */
const char *s2a_secret(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *c)
{
    unsigned char rnd[32];
    const char *value = NULL, *err = NULL;
    if (sc->secret) {
        return sc->secret;
    }
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS ||
        s2a_db_secret(c, p, "user_id_secret", s2a_hex(p, rnd, sizeof(rnd)), &value, &err) !=
            APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0011) "no key for user pseudonyms yet: %s",
                     err ? err : "no randomness");
        return NULL;
    }
    apr_cpystrn(sc->secret_buf, value, sizeof(sc->secret_buf));
    apr_atomic_casptr((volatile void **)&sc->secret, sc->secret_buf, NULL);
    return sc->secret;
}

/* Every child brings the schema up to date before it serves; the mutex keeps
 * children of one host from migrating at the same time. */
static void migrate(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc)
{
    s2a_dbc c;
    void *h;
    const char *err = NULL;
    if (!s2a_dbc_open(p, s, &c, &h)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0005) "no database connection (check DBDriver/DBDParams)");
        return;
    }
    apr_proc_mutex_lock(s2a_g.mutex);
    if (s2a_db_migrate(&c, p, &err) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, S2ALOGNO(0006) "schema migration failed: %s",
                     err);
    } else {
        s2a_secret(p, s, sc, &c);
    }
    apr_proc_mutex_unlock(s2a_g.mutex);
    s2a_dbc_close(s, h);
}

void s2a_store_failed(request_rec *r, const char *doing)
{
    s2a_metrics_note(S2A_COUNT_STORE_ERRORS);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, S2ALOGNO(0012) "%s store failed %s: %s",
                  s2a_g.store->ops->name, doing,
                  s2a_g.store->ops->last_error(s2a_g.store, r->pool));
}

void s2a_bump(server_rec *s, apr_pool_t *p)
{
    if (s2a_g.store->ops->bump(s2a_g.store) != APR_SUCCESS) {
        /* other hosts reload within Sub2apiCacheTTL anyway */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     S2ALOGNO(0013) "%s store failed telling other hosts to reload: %s",
                     s2a_g.store->ops->name, s2a_g.store->ops->last_error(s2a_g.store, p));
    }
}

/* Connections to Redis are made by the process that uses them. */
static int store_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    if (!s2a_g.store_url) {
        s2a_g.store = s2a_store_shm(pchild, s2a_g.state);
        return 1;
    }
    rv = s2a_store_redis(pchild, s2a_g.store_url, s2a_g.state, &s2a_g.store);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, S2ALOGNO(0014) "redis store not set up");
        return 0;
    }
    return 1;
}

static void child_init(apr_pool_t *pchild, server_rec *s)
{
    server_rec *sp;
    if (!store_init(pchild, s)) {
        return;
    }
    if (s2a_db_child_init(pchild) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, S2ALOGNO(0008) "catalog init failed");
        return;
    }
    s2a_oauth_child_init(pchild);
    for (sp = s; sp; sp = sp->next) {
        s2a_srv_conf *sc = ap_get_module_config(sp->module_config, &sub2api_module);
        if (sc->catalog) {
            continue; /* a vhost sharing its config with the main server */
        }
        if (s2a_catalog_create(pchild, &sc->catalog) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, sp, S2ALOGNO(0008) "catalog init failed");
            return;
        }
        if (sc->price_file) {
            migrate(pchild, sp, sc);
        }
    }
    if (s2a_writer_child_init(pchild, s) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, S2ALOGNO(0009) "usage writer did not start");
    }
}

static int handler(request_rec *r)
{
    if (!r->handler) {
        return DECLINED;
    }
    if (strcmp(r->handler, "sub2api-admin") == 0) {
        return s2a_admin_handler(r);
    }
    if (strcmp(r->handler, S2A_USAGE_HANDLER) == 0) {
        return s2a_usage_handler(r);
    }
    if (strcmp(r->handler, S2A_REDEEM_HANDLER) == 0) {
        return s2a_redeem_handler(r);
    }
    if (strcmp(r->handler, S2A_MODELS_HANDLER) == 0) {
        return s2a_models_handler(r);
    }
    if (strcmp(r->handler, S2A_METRICS_HANDLER) == 0) {
        return s2a_metrics_handler(r);
    }
    if (strcmp(r->handler, S2A_HEALTH_HANDLER) == 0) {
        return s2a_health_handler(r);
    }
    if (strcmp(r->handler, S2A_DASHBOARD_HANDLER) == 0) {
        return s2a_dashboard_handler(r);
    }
    return DECLINED;
}

static void register_hooks(apr_pool_t *p)
{
    static const char *const pre_dbd[] = {"mod_dbd.c", NULL};
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, pre_dbd, NULL, APR_HOOK_LAST);
    ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
    s2a_gateway_register_hooks(p);
}

module AP_MODULE_DECLARE_DATA sub2api_module = {STANDARD20_MODULE_STUFF,
                                                create_dir_conf,
                                                merge_dir_conf,
                                                create_srv_conf,
                                                merge_srv_conf,
                                                s2a_cmds,
                                                register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
                                                AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};
