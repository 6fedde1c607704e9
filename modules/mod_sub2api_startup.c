/* Start-up: defaults before the configuration is read, checks that need all
 * of it, the shared memory kept across graceful restarts (account state,
 * metrics), and in each child the store, the caches, the schema and the
 * usage writer. */
#include <http_core.h>
#include <http_main.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_http.h"

/* label sets (server, model, account, status) with series of their own */
#define S2A_METRICS_SERIES 4096
#define METRICS_KEY "mod_sub2api:metrics"

int s2a_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
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

/* What prices a model the table lacks: the Sub2apiPriceFallback rules in
 * order, then Sub2apiUnpricedModel's model for any other. 0 (logged) when
 * one names a model the price table lacks. */
static int fallback_rules(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc)
{
    const s2a_price_rule *bad;
    sc->fallbacks = apr_array_copy(p, sc->price_rules);
    if (sc->unpriced_model && *sc->unpriced_model) {
        s2a_price_rule *any = apr_array_push(sc->fallbacks);
        any->pattern = "*";
        any->model = sc->unpriced_model;
    }
    if (!sc->fallbacks->nelts || !(bad = s2a_pricing_rules_check(sc->prices, sc->fallbacks))) {
        return 1;
    }
    if (bad->model == sc->unpriced_model) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                     S2ALOGNO(0016) "Sub2apiUnpricedModel %s: the virtual host's price table "
                                    "has no such model",
                     bad->model);
    } else {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s,
                     S2ALOGNO(0016) "Sub2apiPriceFallback \"%s\" %s: the virtual host's price "
                                    "table has no such model",
                     bad->pattern, bad->model);
    }
    return 0;
}

/* Checks that need the whole configuration; they run under configtest too. */
int s2a_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *sp;
    (void)pconf;
    (void)plog;
    for (sp = s; sp; sp = sp->next) {
        s2a_srv_conf *sc = ap_get_module_config(sp->module_config, &sub2api_module);
        const char *balancer = s2a_lbmethod_check(ptemp, sp);
        if (balancer) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, sp, S2ALOGNO(0019) "%s",
                         balancer);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!fallback_rules(pconf, sp, sc)) {
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
    if (!k->shm || k->max_accounts != s2a_g.max_accounts || k->max_sessions != s2a_g.max_sessions ||
        !s2a_state_fits(apr_shm_baseaddr_get(k->shm), apr_shm_size_get(k->shm), s2a_g.max_accounts,
                        s2a_g.max_sessions)) {
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

/* The metrics' memory is made once per httpd run and kept by the parent
 * across restarts, so counters go on over graceful restarts and the old
 * generation's children still count the requests they finish. A restart
 * into a build that lays them out otherwise starts new memory (the old
 * generation keeps its own). */
static int keep_metrics(server_rec *s)
{
    apr_size_t size = s2a_metrics_size(S2A_METRICS_SERIES);
    apr_shm_t *shm = NULL, *old = NULL;
    apr_status_t rv;
    void *data = NULL;

    apr_pool_userdata_get(&data, METRICS_KEY, s->process->pool);
    shm = data;
    if (shm &&
        !s2a_metrics_attach(apr_shm_baseaddr_get(shm), apr_shm_size_get(shm), S2A_METRICS_SERIES)) {
        old = shm;
        shm = NULL;
    }
    if (!shm) {
        rv = apr_shm_create(&shm, size, NULL, s->process->pool);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         S2ALOGNO(0017) "cannot create %" APR_SIZE_T_FMT
                                        " bytes of shared memory for metrics",
                         size);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        memset(apr_shm_baseaddr_get(shm), 0, size);
        s2a_metrics_init(apr_shm_baseaddr_get(shm), S2A_METRICS_SERIES);
        apr_pool_userdata_set(shm, METRICS_KEY, apr_pool_cleanup_null, s->process->pool);
        if (old) {
            apr_shm_destroy(old);
        }
    }
    s2a_g.metrics = s2a_metrics_attach(apr_shm_baseaddr_get(shm), size, S2A_METRICS_SERIES);
    return OK;
}

int s2a_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *sp;
    apr_status_t rv;
    (void)plog;
    (void)ptemp;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    /* before any thread: the children inherit it */
    if (!s2a_http_init()) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     S2ALOGNO(0020) "libcurl could not be set up (token refreshes)");
        return HTTP_INTERNAL_SERVER_ERROR;
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
        if (sc->drain_timeout < 0) {
            sc->drain_timeout = S2A_DEFAULT_DRAIN_TIMEOUT;
        }
        if (sc->auth_failure_limit < 0) {
            sc->auth_failure_limit = S2A_DEFAULT_AUTH_FAILURE_LIMIT;
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
    if (keep_metrics(s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return s2a_writer_journals(pconf, s);
}

/* Every child brings the schema up to date before it serves; the mutex keeps
 * children of one host from migrating at the same time. The connection is
 * taken under it: its check (s2a_db_alive) then sees the schema a child
 * before it migrated, which SQLite's statements would otherwise refuse as
 * changed. */
static void migrate(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc)
{
    s2a_dbc c;
    void *h;
    const char *err = NULL;
    apr_proc_mutex_lock(s2a_g.mutex);
    if (!s2a_dbc_open(p, s, &c, &h)) {
        apr_proc_mutex_unlock(s2a_g.mutex);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0005) "no database connection (check DBDriver/DBDParams)");
        return;
    }
    if (s2a_db_migrate(&c, p, &err) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, S2ALOGNO(0006) "schema migration failed: %s",
                     err);
    } else {
        s2a_secret(p, s, sc, &c);
    }
    s2a_dbc_close(s, h);
    apr_proc_mutex_unlock(s2a_g.mutex);
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

void s2a_child_init(apr_pool_t *pchild, server_rec *s)
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
    if (!(s2a_g.tools_memo =
              s2a_tools_memo_make(pchild, S2A_TOOLS_MEMO_SLOTS, S2A_TOOLS_MEMO_MAX_LEN))) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     S2ALOGNO(0021) "no memo of tools translations: the OpenAI doors read "
                                    "every tools array in full");
    }
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
