/* Keeping the access tokens of OAuth, setup-token and Vertex accounts fresh
 * (a Vertex account's is made from its service-account key): on the
 * request path before one ends, once after the upstream answered 401, and
 * from a mod_watchdog callback for accounts nothing asked for. A refresh
 * runs once across all processes and nodes: whoever takes the store's lock
 * for the account calls the token endpoint; the others wait and read the
 * new token from the database. */
#include <apr_atomic.h>
#include <apr_strings.h>
#include <mod_watchdog.h>

#include "mod_sub2api_shared.h"
#include "s2a_http.h"
#include "s2a_oauth.h"
#include "s2a_vertex_key.h"

#define S2A_OAUTH_LOCK_SEC 30
/* the whole call (connect, TLS, send and read) stays within the lock's time */
#define S2A_OAUTH_CALL_SEC 10
#define S2A_OAUTH_WAIT_SEC 15
/* after a failed call, the endpoint is not asked for the account this long */
#define S2A_OAUTH_BACKOFF_SEC 30

static int still_good(apr_int64_t expires_at, apr_int64_t now)
{
    return expires_at == 0 || expires_at > now + S2A_OAUTH_MARGIN_SEC;
}

/* A refresh token the endpoint refused is dead: the account waits for an
 * operator (re-authorization), as after a 401 it cannot recover from. */
static void refused(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *db, apr_int64_t id,
                    const char *words)
{
    const char *err = NULL;
    if (s2a_db_account_error(db, p, id, apr_pstrcat(p, "token refresh refused: ", words, NULL),
                             &err) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0503) "account %" APR_INT64_T_FMT " error state not saved: %s", id,
                     err);
    }
    s2a_g.store->ops->set_error(s2a_g.store, s2a_account_state_key(p, sc, id, 1, NULL), 1);
    s2a_bump(s, p);
}

/* The grant a token endpoint is asked for: Anthropic's refresh_token
 * grant, or a Vertex service account's signed assertion (its key is the
 * account's "refresh token"). NULL when there is none to make. */
static const char *grant_for(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, apr_int64_t id,
                             const s2a_db_tokens *t, const char *refresh, const char **url,
                             const char **content_type)
{
    s2a_vertex_key key;
    const char *assertion, *err = NULL;
    if (strcmp(t->type, "vertex") != 0) {
        if (!sc->oauth_token_url || !sc->oauth_client_id) {
            return NULL;
        }
        *url = sc->oauth_token_url;
        *content_type = "application/json";
        return s2a_oauth_refresh_body(p, refresh, sc->oauth_client_id);
    }
    if (s2a_vertex_key_read(p, refresh, strlen(refresh), &key, &err) != 0 ||
        !(assertion = s2a_vertex_assertion(p, &key, apr_time_sec(apr_time_now()), &err))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0501) "account %" APR_INT64_T_FMT " token refresh failed: its "
                                    "service-account key: %s",
                     id, err);
        return NULL;
    }
    *url = key.token_uri;
    *content_type = "application/x-www-form-urlencoded";
    return s2a_vertex_token_form(p, assertion);
}

/* Calls the token endpoint and stores what it gives: 1 done, 0 failed (the
 * endpoint unreachable or broken: try later), -1 refused (account in error).
 * The caller holds the account's lock. */
static int refresh_now(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *db, apr_int64_t id,
                       const s2a_db_tokens *tokens, const char *refresh_token, const char **plain,
                       apr_int64_t *expires_in)
{
    const char *answer = NULL, *err = NULL, *grant, *url = NULL, *content_type = NULL;
    apr_size_t len = 0;
    s2a_oauth_tokens t;
    apr_int64_t now = apr_time_sec(apr_time_now());
    int status = 0, vertex = strcmp(tokens->type, "vertex") == 0;
    apr_status_t saved;

    s2a_http_options call = {apr_time_from_sec(S2A_OAUTH_CALL_SEC), sc->oauth_ca_file, NULL};

    /* the refresh leaves the way the account's requests do, or not at all */
    if (*tokens->egress && !(call.proxy = s2a_credential_open(p, sc, id, tokens->egress))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0501) "account %" APR_INT64_T_FMT " token refresh failed: its "
                                    "egress does not open",
                     id);
        return 0;
    }
    if (call.proxy && !*call.proxy) {
        call.proxy = NULL;
    }
    if (!(grant = grant_for(p, s, sc, id, tokens, refresh_token, &url, &content_type))) {
        return 0;
    }
    if (s2a_http_post(p, url, content_type, grant, &call, &status, &answer, &len, &err) !=
        APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0501) "account %" APR_INT64_T_FMT " token refresh failed: %s", id,
                     err);
        return 0;
    }
    if (status >= 400 && status < 500) {
        const char *words = s2a_oauth_error_words(p, answer, len);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0502) "account %" APR_INT64_T_FMT " token refresh refused (%d): %s; "
                                    "the account is in error state",
                     id, status, words);
        refused(p, s, sc, db, id, words);
        return -1;
    }
    if (status != 200 || s2a_oauth_parse(p, answer, len, &t, &err) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0501) "account %" APR_INT64_T_FMT " token refresh failed (%d): %s",
                     id, status, status != 200 ? s2a_oauth_error_words(p, answer, len) : err);
        return 0;
    }
    saved =
        vertex
            ? s2a_db_vertex_token_save(db, p, id, s2a_credential_seal(p, sc, id, t.access_token),
                                       t.expires_in ? now + t.expires_in : 0, &err)
            : s2a_db_oauth_save(
                  db, p, id, s2a_credential_seal(p, sc, id, t.access_token),
                  s2a_credential_seal(p, sc, id, t.refresh_token ? t.refresh_token : refresh_token),
                  t.expires_in ? now + t.expires_in : 0, &err);
    if (saved != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0503) "account %" APR_INT64_T_FMT " new tokens not saved: %s", id,
                     err ? err : "no such account");
        return 0;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 S2ALOGNO(0504) "account %" APR_INT64_T_FMT
                                " token refreshed; valid %" APR_INT64_T_FMT " s",
                 id, t.expires_in);
    s2a_bump(s, p);
    *plain = t.access_token;
    *expires_in = t.expires_in;
    return 1;
}

/* The refresh itself, by the holder of the account's lock. Each call of the
 * endpoint first takes the account's attempt marker for
 * S2A_OAUTH_BACKOFF_SEC: a failure leaves it there, so the endpoint is not
 * asked again before then; a success removes it (unless the new token is
 * itself so short-lived that it would be refreshed at once). */
static int refresh_locked(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *db,
                          apr_int64_t id, const s2a_db_tokens *tokens, const char *refresh,
                          const char *attempt, const char **plain)
{
    s2a_store *st = s2a_g.store;
    apr_int64_t expires_in = 0;
    int first = 0, rc;
    if (st->ops->lock(st, attempt, apr_time_from_sec(S2A_OAUTH_BACKOFF_SEC), &first) !=
            APR_SUCCESS ||
        !first) {
        return 0;
    }
    rc = refresh_now(p, s, sc, db, id, tokens, refresh, plain, &expires_in);
    if (rc > 0 && (expires_in == 0 || expires_in > 2 * S2A_OAUTH_MARGIN_SEC)) {
        st->ops->unlock(st, attempt);
    }
    return rc > 0;
}

/* Whether the token read is the one to use: good for a while yet, or
 * (after the upstream refused `rejected`) already another. */
static int usable(const char *current, const char *rejected, apr_int64_t expires_at)
{
    return current && *current &&
           (rejected ? strcmp(current, rejected) != 0
                     : still_good(expires_at, apr_time_sec(apr_time_now())));
}

int s2a_oauth_ensure(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, apr_int64_t id,
                     const char *rejected, const char **plain)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(S2A_OAUTH_WAIT_SEC);
    const char *secret = sc->secret, *lock, *attempt;
    if (!secret) {
        return 0;
    }
    /* the pseudonym key tells databases sharing one store apart */
    lock = apr_psprintf(p, "oauth:%s:%" APR_INT64_T_FMT, secret, id);
    attempt = apr_pstrcat(p, lock, ":attempt", NULL);
    for (;;) {
        const char *err = NULL, *current, *refresh;
        s2a_db_tokens t;
        s2a_dbc db;
        void *h;
        int got = 0, ok;

        if (!s2a_dbc_open(p, s, &db, &h)) {
            return 0;
        }
        if (s2a_db_oauth_get(&db, p, id, &t, &err) != APR_SUCCESS) {
            s2a_dbc_close(s, h);
            return 0;
        }
        current = s2a_credential_open(p, sc, id, t.credential);
        if (usable(current, rejected, t.expires_at)) {
            s2a_dbc_close(s, h);
            *plain = current;
            return 1;
        }
        if (!*t.refresh_token) {
            s2a_dbc_close(s, h);
            return 0;
        }
        if (s2a_g.store->ops->lock(s2a_g.store, lock, apr_time_from_sec(S2A_OAUTH_LOCK_SEC),
                                   &got) != APR_SUCCESS) {
            s2a_dbc_close(s, h);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         S2ALOGNO(0505) "account %" APR_INT64_T_FMT " refresh lock: %s", id,
                         s2a_g.store->ops->last_error(s2a_g.store, p));
            return 0;
        }
        if (got) {
            /* read again under the lock: the last holder may just have saved */
            ok = s2a_db_oauth_get(&db, p, id, &t, &err) == APR_SUCCESS &&
                 usable(current = s2a_credential_open(p, sc, id, t.credential), rejected,
                        t.expires_at);
            if (ok) {
                *plain = current;
            } else {
                refresh = *t.refresh_token ? s2a_credential_open(p, sc, id, t.refresh_token) : NULL;
                ok = refresh && refresh_locked(p, s, sc, &db, id, &t, refresh, attempt, plain);
            }
            s2a_g.store->ops->unlock(s2a_g.store, lock);
            s2a_dbc_close(s, h);
            return ok;
        }
        s2a_dbc_close(s, h);
        if (!rejected && current && *current && t.expires_at > apr_time_sec(apr_time_now())) {
            return 0; /* another refreshes it; meanwhile the old token still works */
        }
        if (apr_time_now() >= deadline || s2a_oauth_stopping()) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         S2ALOGNO(0506) "account %" APR_INT64_T_FMT " refresh by another process "
                                        "did not finish in time",
                         id);
            return 0;
        }
        apr_sleep(apr_time_from_msec(100));
    }
}

void s2a_oauth_freshen(request_rec *r, s2a_srv_conf *sc, s2a_account *a)
{
    const char *plain;
    /* a Vertex account has no token before its first */
    if (a->refreshable &&
        (!*a->credential ||
         (a->expires_at && a->expires_at <= apr_time_sec(apr_time_now()) + S2A_OAUTH_MARGIN_SEC)) &&
        s2a_oauth_ensure(r->pool, r->server, sc, a->id, NULL, &plain)) {
        a->credential = plain; /* its state key is its id's: unchanged */
    }
}

/* The background refresher runs in mod_watchdog's thread, which may outlive
 * this child's pool: the child waits for a run in progress before its
 * store and database connections go. */
static volatile apr_uint32_t watch_stop;
static volatile apr_uint32_t watch_busy;

int s2a_oauth_stopping(void)
{
    return apr_atomic_read32(&watch_stop) != 0;
}

static apr_status_t stop_watch(void *data)
{
    int i;
    (void)data;
    apr_atomic_set32(&watch_stop, 1);
    for (i = 0; i < 2000 && apr_atomic_read32(&watch_busy); i++) {
        apr_sleep(apr_time_from_msec(10));
    }
    return APR_SUCCESS;
}

void s2a_oauth_child_init(apr_pool_t *pchild)
{
    apr_atomic_set32(&watch_stop, 0);
    apr_pool_pre_cleanup_register(pchild, NULL, stop_watch);
}

/* Refreshes, in one child of the host, the accounts whose tokens end soon
 * though no request asked for them. */
static apr_status_t watch(int state, void *data, apr_pool_t *wp)
{
    server_rec *s = data, *sp;
    apr_pool_t *p;
    if (state != AP_WATCHDOG_STATE_RUNNING) {
        return APR_SUCCESS;
    }
    /* busy first, then the check: stop_watch sets the flag, then waits */
    apr_atomic_inc32(&watch_busy);
    if (s2a_oauth_stopping() || !s2a_g.store) {
        apr_atomic_dec32(&watch_busy);
        return APR_SUCCESS;
    }
    /* mod_watchdog may hand the same pool to every run */
    apr_pool_create(&p, wp);
    for (sp = s; sp; sp = sp->next) {
        s2a_srv_conf *sc = ap_get_module_config(sp->module_config, &sub2api_module);
        apr_array_header_t *due = NULL;
        const char *err = NULL, *plain;
        s2a_dbc db;
        void *h;
        int i;
        if (!sc->catalog ||
            (sp != s && sc == ap_get_module_config(s->module_config, &sub2api_module))) {
            continue;
        }
        if (!s2a_dbc_open(p, sp, &db, &h)) {
            continue;
        }
        if (s2a_db_oauth_due(
                &db, p, apr_time_sec(apr_time_now()) + S2A_OAUTH_MARGIN_SEC + s2a_g.oauth_watch_sec,
                &due, &err) != APR_SUCCESS) {
            due = NULL;
        }
        s2a_dbc_close(sp, h);
        for (i = 0; due && i < due->nelts && !s2a_oauth_stopping(); i++) {
            s2a_oauth_ensure(p, sp, sc, APR_ARRAY_IDX(due, i, apr_int64_t), NULL, &plain);
        }
    }
    apr_pool_destroy(p);
    apr_atomic_dec32(&watch_busy);
    /* anything else would end the callback for good */
    return APR_SUCCESS;
}

void s2a_oauth_watch(apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *reg =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    ap_watchdog_t *wd;
    if (!get || !reg) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     S2ALOGNO(0507) "mod_watchdog is not loaded: tokens are refreshed only "
                                    "when a request needs them");
        return;
    }
    if (get(&wd, "sub2api-oauth", 0, 1, pconf) != APR_SUCCESS ||
        reg(wd, apr_time_from_sec(s2a_g.oauth_watch_sec), s, watch) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     S2ALOGNO(0508) "no watchdog for token refresh");
    }
}
