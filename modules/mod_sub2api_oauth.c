/* Keeping the access tokens of OAuth and setup-token accounts fresh: on the
 * request path before one ends, once after the upstream answered 401, and
 * from a mod_watchdog callback for accounts nothing asked for. A refresh
 * runs once across all processes and nodes: whoever takes the store's lock
 * for the account calls the token endpoint; the others wait and read the
 * new token from the database. */
#include <apr_strings.h>
#include <mod_watchdog.h>

#include "mod_sub2api_private.h"
#include "s2a_http.h"
#include "s2a_oauth.h"

#define S2A_OAUTH_LOCK_SEC 30
#define S2A_OAUTH_CALL_SEC 10
#define S2A_OAUTH_WAIT_SEC 15
/* after a failed refresh, no other try for the account this long */
#define S2A_OAUTH_BACKOFF_SEC 30

static int still_good(apr_int64_t expires_at, apr_int64_t now)
{
    return expires_at == 0 || expires_at > now + S2A_OAUTH_MARGIN_SEC;
}

/* Calls the token endpoint and stores what it gives. The caller holds the
 * account's lock. */
static int refresh_now(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *db, apr_int64_t id,
                       const char *refresh_token, const char **plain)
{
    const char *answer = NULL, *err = NULL, *grant;
    apr_size_t len = 0;
    s2a_oauth_tokens t;
    apr_int64_t now = apr_time_sec(apr_time_now());
    int status = 0;

    grant = s2a_oauth_refresh_body(p, refresh_token, sc->oauth_client_id);
    if (s2a_http_post_json(p, sc->oauth_token_url, grant, apr_time_from_sec(S2A_OAUTH_CALL_SEC),
                           &status, &answer, &len, &err) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0501) "account %" APR_INT64_T_FMT " token refresh failed: %s", id,
                     err);
        return 0;
    }
    if (status != 200 || s2a_oauth_parse(p, answer, len, &t, &err) != 0) {
        /* the endpoint's own words say why (invalid_grant...); tokens are
         * never in them */
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0502) "account %" APR_INT64_T_FMT " token refresh refused (%d): %s",
                     id, status,
                     status != 200 ? apr_pstrmemdup(p, answer, len > 200 ? 200 : len) : err);
        return 0;
    }
    if (s2a_db_oauth_save(
            db, p, id, s2a_credential_seal(p, sc, t.access_token),
            s2a_credential_seal(p, sc, t.refresh_token ? t.refresh_token : refresh_token),
            t.expires_in ? now + t.expires_in : 0, &err) != APR_SUCCESS) {
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
    return 1;
}

/* A failed refresh leaves a marker in the store for S2A_OAUTH_BACKOFF_SEC,
 * so that a token endpoint that is down is not called by every request. A
 * lock of 1 ms taken is the test that no marker is there; only the holder
 * of the refresh lock tests, so tests never meet each other. */
static int failed_recently(s2a_store *st, const char *marker)
{
    int got = 0;
    return st->ops->lock(st, marker, apr_time_from_msec(1), &got) != APR_SUCCESS || !got;
}

static void mark_failed(s2a_store *st, const char *marker)
{
    int got;
    st->ops->lock(st, marker, apr_time_from_sec(S2A_OAUTH_BACKOFF_SEC), &got);
}

int s2a_oauth_ensure(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, apr_int64_t id,
                     const char *rejected, const char **plain)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(S2A_OAUTH_WAIT_SEC);
    /* the pseudonym key tells databases sharing one store apart */
    const char *lock = apr_psprintf(p, "oauth:%s:%" APR_INT64_T_FMT,
                                    sc->secret ? (const char *)sc->secret : "", id);
    const char *marker = apr_pstrcat(p, lock, ":failed", NULL);
    if (!sc->oauth_token_url || !sc->oauth_client_id) {
        return 0;
    }
    for (;;) {
        const char *cred = NULL, *refresh = NULL, *err = NULL, *current;
        apr_int64_t expires_at = 0;
        s2a_dbc db;
        void *h;
        int got = 0, ok;

        if (!s2a_dbc_open(p, s, &db, &h)) {
            return 0;
        }
        if (s2a_db_oauth_get(&db, p, id, &cred, &refresh, &expires_at, &err) != APR_SUCCESS) {
            s2a_dbc_close(s, h);
            return 0;
        }
        current = s2a_credential_open(p, sc, cred);
        refresh = *refresh ? s2a_credential_open(p, sc, refresh) : NULL;
        /* fresh enough, or already replaced since the upstream refused it */
        if (current && (rejected ? strcmp(current, rejected) != 0
                                 : still_good(expires_at, apr_time_sec(apr_time_now())))) {
            s2a_dbc_close(s, h);
            *plain = current;
            return 1;
        }
        if (!refresh) {
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
            ok = s2a_db_oauth_get(&db, p, id, &cred, &refresh, &expires_at, &err) == APR_SUCCESS &&
                 (current = s2a_credential_open(p, sc, cred)) &&
                 (rejected ? strcmp(current, rejected) != 0
                           : still_good(expires_at, apr_time_sec(apr_time_now())));
            if (ok) {
                *plain = current;
            } else if (!failed_recently(s2a_g.store, marker)) {
                ok = *refresh && (refresh = s2a_credential_open(p, sc, refresh)) &&
                     refresh_now(p, s, sc, &db, id, refresh, plain);
                if (!ok) {
                    mark_failed(s2a_g.store, marker);
                }
            }
            s2a_g.store->ops->unlock(s2a_g.store, lock);
            s2a_dbc_close(s, h);
            return ok;
        }
        s2a_dbc_close(s, h);
        if (!rejected && expires_at > apr_time_sec(apr_time_now())) {
            return 0; /* another refreshes it; meanwhile the old token still works */
        }
        if (apr_time_now() >= deadline) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         S2ALOGNO(0506) "account %" APR_INT64_T_FMT " refresh by another process "
                                        "did not finish in time",
                         id);
            return 0;
        }
        apr_sleep(apr_time_from_msec(100));
    }
}

/* Refreshes, in one child of the host, the accounts whose tokens end soon
 * though no request asked for them. */
static apr_status_t watch(int state, void *data, apr_pool_t *wp)
{
    server_rec *s = data, *sp;
    apr_pool_t *p;
    if (state != AP_WATCHDOG_STATE_RUNNING || !s2a_g.store) {
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
        if (!sc->oauth_token_url || !sc->oauth_client_id || !sc->catalog ||
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
        for (i = 0; due && i < due->nelts; i++) {
            s2a_oauth_ensure(p, sp, sc, APR_ARRAY_IDX(due, i, apr_int64_t), NULL, &plain);
        }
    }
    apr_pool_destroy(p);
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
