/* mod_sub2api: a metered, multi-tenant Anthropic-compatible gateway inside
 * httpd. This file is the module record: configuration, directives and hook
 * registration. The work happens in modules/. */
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_main.h>
#include <http_request.h>
#include <mod_proxy.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include "mod_sub2api_shared.h"
#include "s2a_aead.h"
#include "s2a_http.h"
#include "s2a_identity.h"
#include "s2a_sha256.h"

static void *create_srv_conf(apr_pool_t *p, server_rec *s)
{
    s2a_srv_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->rate_limit_cooldown = -1;
    c->overload_cooldown = -1;
    c->cache_ttl = -1;
    c->max_switches = -1;
    c->failover_uncertain = -1;
    c->auth_failure_limit = -1;
    c->slot_wait = -1;
    c->sticky_ttl = -1;
    c->drain_timeout = -1;
    c->price_rules = apr_array_make(p, 4, sizeof(s2a_price_rule));
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
    /* a virtual host with rules of its own has those alone */
    c->price_rules = add->price_rules->nelts ? add->price_rules : base->price_rules;
    MERGE(secret_file, NULL);
    MERGE(cred_key, NULL);
    MERGE(secret, NULL);
    MERGE(rate_limit_cooldown, -1);
    MERGE(overload_cooldown, -1);
    MERGE(cache_ttl, -1);
    MERGE(max_switches, -1);
    MERGE(failover_uncertain, -1);
    MERGE(auth_failure_limit, -1);
    MERGE(slot_wait, -1);
    MERGE(sticky_ttl, -1);
    MERGE(drain_timeout, -1);
    MERGE(oauth_token_url, NULL);
    MERGE(oauth_client_id, NULL);
    MERGE(oauth_ca_file, NULL);
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
        if (!k ||
            s2a_pricing_parse(cmd->pool, k->text, k->len, &sc->prices, &again) != APR_SUCCESS) {
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
                     S2ALOGNO(0010) "Sub2apiPriceTable %s: %d entries skipped: prices "
                                    "finer than 1e-12 USD, or more than %d long-context "
                                    "thresholds (first: %s)",
                     sc->price_file, nskipped, S2A_PRICE_TIERS, skipped);
    }
    return NULL;
}

/* Sub2apiPriceFallback <glob> <model of the price table>, in order */
static const char *set_price_fallback(cmd_parms *cmd, void *dc, const char *pattern,
                                      const char *model)
{
    s2a_price_rule *r;
    (void)dc;
    if (!*pattern || !*model) {
        return "Sub2apiPriceFallback: a pattern and a model of the price table are required";
    }
    r = apr_array_push(srv_conf(cmd)->price_rules);
    r->pattern = pattern;
    r->model = model;
    return NULL;
}

/* Sub2apiUnpricedModel reject | <model of the price table> */
static const char *set_unpriced(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    srv_conf(cmd)->unpriced_model = strcasecmp(arg, "reject") == 0 ? "" : arg;
    return NULL;
}

/* The token endpoint carries refresh tokens: https://, or http:// to this
 * host only (s2a_http_url_allowed). */
static const char *set_oauth_url(cmd_parms *cmd, void *dc, const char *arg)
{
    apr_uri_t u;
    (void)dc;
    if (apr_uri_parse(cmd->pool, arg, &u) != APR_SUCCESS || !u.scheme || !u.hostname) {
        return "Sub2apiOAuthTokenURL: an https:// URL is required";
    }
    if (!s2a_http_url_allowed(arg)) {
        return "Sub2apiOAuthTokenURL: https:// is required (http:// only to 127.0.0.1, [::1] or "
               "localhost): the calls carry refresh tokens";
    }
    srv_conf(cmd)->oauth_token_url = arg;
    return NULL;
}

static const char *set_oauth_ca(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_file_t *f;
    (void)dc;
    if (!path || apr_file_open(&f, path, APR_FOPEN_READ, 0, cmd->temp_pool) != APR_SUCCESS) {
        return apr_pstrcat(cmd->pool, "Sub2apiOAuthCAFile: cannot read ", arg, NULL);
    }
    apr_file_close(f);
    srv_conf(cmd)->oauth_ca_file = path;
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
static const seconds_field drain_timeout = {APR_OFFSETOF(s2a_srv_conf, drain_timeout), 0};

static const char *set_seconds(cmd_parms *cmd, void *dc, const char *arg)
{
    const seconds_field *f = cmd->info;
    (void)dc;
    return parse_seconds(cmd, arg, f->min, (int *)((char *)srv_conf(cmd) + f->offset));
}

/* On or Off, into a field of the server's configuration. */
static const char *set_server_flag(cmd_parms *cmd, void *dc, int on)
{
    (void)dc;
    *(int *)((char *)srv_conf(cmd) + (apr_size_t)cmd->info) = on;
    return NULL;
}

/* Directives that take a count: where it goes and its range. */
typedef struct {
    apr_size_t offset;
    int min;
    int max;
} count_field;

static const count_field auth_failure_limit = {APR_OFFSETOF(s2a_srv_conf, auth_failure_limit), 0,
                                               1000000};

static const char *set_count(cmd_parms *cmd, void *dc, const char *arg)
{
    const count_field *f = cmd->info;
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    (void)dc;
    if (*arg == '\0' || *end != '\0' || v < f->min || v > f->max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number from %d to %d",
                            cmd->directive->directive, arg, f->min, f->max);
    }
    *(int *)((char *)srv_conf(cmd) + f->offset) = (int)v;
    return NULL;
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
    if (!s2a_g.store_url) {
        return apr_pstrcat(cmd->pool, "Sub2apiStore: shm, redis://host:port/db or rediss://... (",
                           err, ")", NULL);
    }
    /* the CA file is read by every child: refuse one that cannot be read now */
    if (s2a_g.store_url->ca_file) {
        apr_file_t *f;
        if (apr_file_open(&f, s2a_g.store_url->ca_file, APR_FOPEN_READ, 0, cmd->temp_pool) !=
            APR_SUCCESS) {
            return apr_pstrcat(cmd->pool, "Sub2apiStore: cannot read the CA file ",
                               s2a_g.store_url->ca_file, NULL);
        }
        apr_file_close(f);
    }
    return NULL;
}

static const command_rec s2a_cmds[] = {
    AP_INIT_TAKE1("Sub2apiAdminToken", set_admin_token, NULL, RSRC_CONF,
                  "Bearer token that opens the admin API"),
    AP_INIT_TAKE1("Sub2apiPriceTable", set_price_table, NULL, RSRC_CONF,
                  "Price table file (LiteLLM model_prices JSON format)"),
    AP_INIT_TAKE1("Sub2apiUnpricedModel", set_unpriced, NULL, RSRC_CONF,
                  "reject (default), or the model of the price table whose prices apply to "
                  "models the table lacks"),
    AP_INIT_TAKE2("Sub2apiPriceFallback", set_price_fallback, NULL, RSRC_CONF,
                  "A glob of model names and the model of the price table whose prices apply to "
                  "those the table lacks (repeatable; the first match wins)"),
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
    AP_INIT_TAKE1("Sub2apiDrainTimeout", set_seconds, (void *)&drain_timeout, RSRC_CONF,
                  "Seconds a stream whose client left is read on for the upstream's own usage "
                  "(0: billed at once by estimate)"),
    AP_INIT_TAKE1("Sub2apiMaxSessions", set_global_int, (void *)&max_sessions, RSRC_CONF,
                  "Conversations the shared state can bind to accounts"),
    AP_INIT_TAKE1("Sub2apiJournal", set_journal, NULL, RSRC_CONF,
                  "File keeping the virtual host's usage rows while its database is away"),
    AP_INIT_TAKE1("Sub2apiCacheTTL", set_seconds, (void *)&cache_ttl, RSRC_CONF,
                  "Seconds keys and accounts stay cached in a process"),
    AP_INIT_TAKE1("Sub2apiMaxAccountSwitches", set_max_switches, NULL, RSRC_CONF,
                  "How many other accounts a failed request is sent to"),
    AP_INIT_TAKE1("Sub2apiAuthFailureLimit", set_count, (void *)&auth_failure_limit, RSRC_CONF,
                  "Failed authentications a client address may make per minute before it gets "
                  "429 (0: no limit)"),
    AP_INIT_FLAG("Sub2apiFailoverUncertain", set_server_flag,
                 (void *)APR_OFFSETOF(s2a_srv_conf, failover_uncertain), RSRC_CONF,
                 "On: a request the upstream may have received before its connection broke "
                 "or timed out goes to another account too (it may run twice)"),
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
                  "https:// URL of the OAuth token endpoint that refreshes account tokens"),
    AP_INIT_TAKE1("Sub2apiOAuthCAFile", set_oauth_ca, NULL, RSRC_CONF,
                  "CA certificates (PEM) the token endpoint's certificate is verified against; "
                  "default: the system's store"),
    AP_INIT_TAKE1("Sub2apiOAuthRefreshInterval", set_global_int, (void *)&oauth_watch, RSRC_CONF,
                  "Seconds between looks for account tokens that end soon"),
    AP_INIT_TAKE1("Sub2apiOAuthClientID", set_oauth_client, NULL, RSRC_CONF,
                  "OAuth client id sent with token refreshes"),
    AP_INIT_TAKE1("Sub2apiStore", set_store, NULL, RSRC_CONF,
                  "Where the account pool's state lives: shm, or redis://host:port/db"),
    {NULL}};

/* Every hook and filter of the module, in the order a request meets them;
 * each is defined in the glue file named beside it. */
static void register_hooks(apr_pool_t *p)
{
    static const char *const pre_dbd[] = {"mod_dbd.c", NULL};
    static const char *const before_proxy[] = {"mod_proxy.c", NULL};
    static const char *const before_log[] = {"mod_log_config.c", NULL};
    /* the egress runs mod_proxy_http itself, with its forward proxy */
    static const char *const before_proxy_http[] = {"mod_proxy_http.c", NULL};

    /* mod_sub2api_startup.c */
    ap_hook_pre_config(s2a_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(s2a_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(s2a_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(s2a_child_init, pre_dbd, NULL, APR_HOOK_LAST);

    /* mod_sub2api_request.c */
    ap_hook_translate_name(s2a_request_translate, NULL, before_proxy, APR_HOOK_FIRST);
    ap_hook_fixups(s2a_request_fixups, NULL, before_proxy, APR_HOOK_REALLY_FIRST);
    s2a_g.replay_filter =
        ap_register_input_filter("SUB2API_REPLAY", s2a_request_replay, NULL, AP_FTYPE_CONTENT_SET);
    /* mod_sub2api_lbmethod.c: the provider, and its guard before the balancer's */
    s2a_lbmethod_register(p);
    /* mod_sub2api_upstream.c */
    proxy_hook_scheme_handler(s2a_egress_scheme_handler, NULL, before_proxy_http, APR_HOOK_FIRST);
    APR_OPTIONAL_HOOK(proxy, fixups, s2a_upstream_fixups, NULL, NULL, APR_HOOK_LAST);
    /* mod_sub2api_answer.c: below mod_deflate, so the answer is read as sent */
    s2a_g.answer_filter = ap_register_output_filter("SUB2API_ANSWER", s2a_answer_filter, NULL,
                                                    AP_FTYPE_CONTENT_SET - 1);
    APR_OPTIONAL_HOOK(proxy, create_req, s2a_answer_create_req, NULL, NULL, APR_HOOK_MIDDLE);
    s2a_g.drain_filter =
        ap_register_input_filter("SUB2API_DRAIN", s2a_answer_drain_clock, NULL, AP_FTYPE_RESOURCE);
    /* mod_sub2api_failover.c */
    APR_OPTIONAL_HOOK(proxy, request_status, s2a_failover_request_status, NULL, NULL,
                      APR_HOOK_MIDDLE);
    /* mod_sub2api_error_page.c */
    ap_hook_insert_error_filter(s2a_error_page_insert, NULL, NULL, APR_HOOK_MIDDLE);
    s2a_g.error_filter = ap_register_output_filter("SUB2API_ERROR", s2a_error_page_filter, NULL,
                                                   AP_FTYPE_PROTOCOL - 1);
    /* mod_sub2api_billing.c */
    ap_hook_log_transaction(s2a_billing_log_transaction, NULL, before_log, APR_HOOK_MIDDLE);

    /* handlers: mod_sub2api_v1.c, _admin.c, _metrics.c, _dashboard.c, _error_page.c */
    ap_hook_handler(s2a_v1_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(s2a_admin_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(s2a_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(s2a_health_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(s2a_dashboard_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(s2a_error_page_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA __attribute__((visibility("default")))
sub2api_module = {STANDARD20_MODULE_STUFF,
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
