/* SetHandler sub2api-metrics: Prometheus text of the counters every process
 * keeps in shared memory, the accounts' state and the journals' sizes; and
 * SetHandler sub2api-health, for load balancers in front of several nodes. */
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"

/* ---- the scrape ---- */

static void to_brigade(void *baton, const char *text, apr_size_t len)
{
    ap_rwrite(text, (int)len, baton);
}

static void line(request_rec *r, const char *name, const char *server, apr_int64_t account,
                 const char *extra_label, const char *extra_value, const char *value)
{
    ap_rputs(name, r);
    ap_rputs("{server=\"", r);
    s2a_metrics_label(to_brigade, r, server);
    ap_rprintf(r, "\",account=\"%" APR_INT64_T_FMT "\"", account);
    if (extra_label) {
        ap_rprintf(r, ",%s=\"", extra_label);
        s2a_metrics_label(to_brigade, r, extra_value);
        ap_rputs("\"", r);
    }
    ap_rprintf(r, "} %s\n", value);
}

static void header(request_rec *r, const char *name, const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

typedef struct {
    const char *server;
    const s2a_account *a;
    s2a_account_state st;
} account_row;

static const char *account_state(const account_row *x, apr_time_t now)
{
    if (x->st.error) {
        return "error";
    }
    if (!x->a->active) {
        return "disabled";
    }
    if (x->st.rate_limited_until > now) {
        return "rate_limited";
    }
    if (x->st.overloaded_until > now) {
        return "overloaded";
    }
    return "active";
}

/* The configuration of a gateway virtual host, once: NULL for other hosts
 * and for one that shares the main server's. */
static s2a_srv_conf *gateway_host(server_rec *sp)
{
    s2a_srv_conf *sc = ap_get_module_config(sp->module_config, &sub2api_module);
    if (!sc->catalog || !sc->prices ||
        (sp != ap_server_conf &&
         sc == ap_get_module_config(ap_server_conf->module_config, &sub2api_module))) {
        return NULL;
    }
    return sc;
}

/* The accounts of every gateway virtual host, with their state in the store. */
static apr_array_header_t *account_rows(request_rec *r, apr_array_header_t *held)
{
    apr_array_header_t *rows = apr_array_make(r->pool, 16, sizeof(account_row));
    apr_time_t now = apr_time_now();
    server_rec *sp;
    for (sp = ap_server_conf; sp; sp = sp->next) {
        s2a_srv_conf *sc = gateway_host(sp);
        s2a_account_list *l;
        const char *server;
        int i;
        if (!sc || !(l = s2a_catalog_accounts(r->pool, sp, sc))) {
            continue;
        }
        server = s2a_server_label(r->pool, sp);
        APR_ARRAY_PUSH(held, s2a_account_list *) = l;
        for (i = 0; i < l->accounts->nelts; i++) {
            account_row *x = apr_array_push(rows);
            x->server = server;
            x->a = &APR_ARRAY_IDX(l->accounts, i, s2a_account);
            memset(&x->st, 0, sizeof(x->st));
            if (s2a_g.store->ops->get(s2a_g.store, x->a->state_key, now, &x->st) != APR_SUCCESS) {
                s2a_store_failed(r, "reading an account's state for metrics");
            }
        }
    }
    return rows;
}

static void render_accounts(request_rec *r, const apr_array_header_t *rows)
{
    static const char *const windows[] = {"unknown", "allowed", "allowed_warning", "rejected"};
    apr_time_t now = apr_time_now();
    int i;

    header(r, "sub2api_account_state",
           "1 for the state an upstream account is in: active, rate_limited, overloaded, error "
           "or disabled.");
    for (i = 0; i < rows->nelts; i++) {
        const account_row *x = &APR_ARRAY_IDX(rows, i, account_row);
        line(r, "sub2api_account_state", x->server, x->a->id, "state", account_state(x, now), "1");
    }
    header(r, "sub2api_account_info", "1 per upstream account, naming it.");
    for (i = 0; i < rows->nelts; i++) {
        const account_row *x = &APR_ARRAY_IDX(rows, i, account_row);
        line(r, "sub2api_account_info", x->server, x->a->id, "name", x->a->name, "1");
    }
    header(r, "sub2api_account_in_flight", "Requests an upstream account is serving now.");
    for (i = 0; i < rows->nelts; i++) {
        const account_row *x = &APR_ARRAY_IDX(rows, i, account_row);
        line(r, "sub2api_account_in_flight", x->server, x->a->id, NULL, NULL,
             apr_itoa(r->pool, x->st.in_flight));
    }
    header(r, "sub2api_account_concurrency",
           "Requests an upstream account may serve at once (0: no limit).");
    for (i = 0; i < rows->nelts; i++) {
        const account_row *x = &APR_ARRAY_IDX(rows, i, account_row);
        line(r, "sub2api_account_concurrency", x->server, x->a->id, NULL, NULL,
             apr_itoa(r->pool, x->a->concurrency));
    }
    header(r, "sub2api_account_cooldown_seconds",
           "Seconds until a rate-limited or overloaded account serves again (0: not cooling).");
    for (i = 0; i < rows->nelts; i++) {
        const account_row *x = &APR_ARRAY_IDX(rows, i, account_row);
        apr_time_t until = x->st.rate_limited_until > x->st.overloaded_until
                               ? x->st.rate_limited_until
                               : x->st.overloaded_until;
        line(r, "sub2api_account_cooldown_seconds", x->server, x->a->id, NULL, NULL,
             apr_ltoa(r->pool,
                      until > now ? (long)apr_time_sec(until - now + APR_USEC_PER_SEC - 1) : 0));
    }
    header(r, "sub2api_account_5h_window",
           "1 for the status of an account's 5-hour window, as the upstream last reported it.");
    for (i = 0; i < rows->nelts; i++) {
        const account_row *x = &APR_ARRAY_IDX(rows, i, account_row);
        line(r, "sub2api_account_5h_window", x->server, x->a->id, "status",
             windows[x->st.window_status & 3], "1");
    }
    header(r, "sub2api_account_5h_window_reset_timestamp_seconds",
           "When an account's 5-hour window resets, Unix time (0: unknown).");
    for (i = 0; i < rows->nelts; i++) {
        const account_row *x = &APR_ARRAY_IDX(rows, i, account_row);
        line(r, "sub2api_account_5h_window_reset_timestamp_seconds", x->server, x->a->id, NULL,
             NULL, apr_off_t_toa(r->pool, apr_time_sec(x->st.window_reset)));
    }
}

static void render_journals(request_rec *r)
{
    server_rec *sp;
    header(r, "sub2api_journal_bytes",
           "Size of a virtual host's journal: usage rows waiting for its database.");
    for (sp = ap_server_conf; sp; sp = sp->next) {
        s2a_srv_conf *sc = gateway_host(sp);
        apr_finfo_t fi;
        if (!sc || !sc->journal) {
            continue;
        }
        if (apr_stat(&fi, sc->journal, APR_FINFO_SIZE, r->pool) != APR_SUCCESS) {
            fi.size = 0;
        }
        ap_rputs("sub2api_journal_bytes{server=\"", r);
        s2a_metrics_label(to_brigade, r, s2a_server_label(r->pool, sp));
        ap_rprintf(r, "\"} %" APR_OFF_T_FMT "\n", fi.size);
    }
}

static int get_only(request_rec *r)
{
    if (r->method_number != M_GET) {
        ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    return OK;
}

int s2a_metrics_handler(request_rec *r)
{
    apr_array_header_t *held, *rows;
    int rc, i;

    if (!r->handler || strcmp(r->handler, S2A_METRICS_HANDLER) != 0) {
        return DECLINED;
    }

    if ((rc = get_only(r)) != OK) {
        return rc;
    }
    if (!s2a_g.metrics) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    held = apr_array_make(r->pool, 2, sizeof(s2a_account_list *));
    rows = account_rows(r, held);
    s2a_metrics_render(s2a_g.metrics, r->pool, to_brigade, r);
    render_accounts(r, rows);
    render_journals(r);
    for (i = 0; i < held->nelts; i++) {
        s2a_catalog_release(APR_ARRAY_IDX(held, i, s2a_account_list *));
    }
    return OK;
}

/* 200 when this node can serve: its database answers and its store works;
 * 503 naming what does not. */
int s2a_health_handler(request_rec *r)
{
    s2a_account_state st;
    s2a_dbc c;
    void *h;
    int rc, db_ok, store_ok;

    if (!r->handler || strcmp(r->handler, S2A_HEALTH_HANDLER) != 0) {
        return DECLINED;
    }

    if ((rc = get_only(r)) != OK) {
        return rc;
    }
    db_ok = s2a_dbc_open(r->pool, r->server, &c, &h);
    if (db_ok) {
        s2a_dbc_close(r->server, h);
    }
    /* any key: a read shows the store answers */
    store_ok =
        s2a_g.store && s2a_g.store->ops->get(s2a_g.store, 1, apr_time_now(), &st) == APR_SUCCESS;
    r->status = db_ok && store_ok ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rprintf(r, "{\"status\":\"%s\",\"database\":\"%s\",\"store\":\"%s\"}\n",
               r->status == HTTP_OK ? "ok" : "unavailable", db_ok ? "ok" : "unreachable",
               store_ok ? "ok" : "unreachable");
    return OK;
}
