/* The admin JSON API (SetHandler sub2api-admin): HTTP only. The resources,
 * their checks and statements are in s2a_admin.c and s2a_db_admin.c; this
 * file checks the token, reads the body, routes by a table, answers, and
 * does what needs the store: caches reloaded, balances forgotten, accounts'
 * state read and cleared. */
#include <http_protocol.h>
#include <http_request.h>
#include <util_script.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_egress.h"
#include "s2a_admin.h"
#include "s2a_db_admin.h"
#include "s2a_errors.h"
#include "s2a_keys.h"
#include "s2a_sha256.h"

typedef struct admin_route admin_route;

typedef struct {
    request_rec *r;
    s2a_srv_conf *sc;
    s2a_dbc db;
    json_object *in;     /* the body; NULL if none */
    apr_table_t *params; /* the query's; NULL if none */
    const admin_route *route;
} admin_ctx;

/* A resource's handlers by method; NULL: not allowed. */
struct admin_route {
    const char *name; /* the path's last segments: ".../users", ".../usage/summary" */
    const s2a_admin_resource *res;
    int (*list)(admin_ctx *a);
    int (*get)(admin_ctx *a, apr_int64_t id);
    int (*create)(admin_ctx *a);
    int (*patch)(admin_ctx *a, apr_int64_t id);
    /* what an answer's row shows from the store; may be NULL */
    void (*decorate)(admin_ctx *a, json_object *row);
    /* what a write changes in the store: 0 when the store failed */
    int (*after)(admin_ctx *a, apr_int64_t id, const s2a_admin_change *ch);
};

static int authorized(request_rec *r, s2a_srv_conf *sc)
{
    const char *h = apr_table_get(r->headers_in, "Authorization");
    unsigned char d[S2A_SHA256_LEN];
    const char *hex;
    if (!sc->admin_token_hash || !h || strncasecmp(h, "Bearer ", 7) != 0) {
        return 0;
    }
    h += 7;
    while (*h == ' ') {
        h++;
    }
    s2a_sha256(h, strlen(h), d);
    hex = s2a_hex(r->pool, d, sizeof(d));
    return s2a_ct_equal(hex, sc->admin_token_hash, 64);
}

static int db_fail(admin_ctx *a, const char *err)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, a->r, S2ALOGNO(0401) "admin database error: %s",
                  err ? err : "unknown");
    return s2a_send_error(a->r, 500, "Database error");
}

static int store_fail(admin_ctx *a)
{
    return s2a_send_error(a->r, 503, "The shared state store cannot be reached; retry shortly");
}

/* A write that did not happen: refused (its status and message) or failed. */
static int not_written(admin_ctx *a, int rc, const s2a_db_admin_fail *fail)
{
    return rc < 0 ? db_fail(a, fail->err) : s2a_send_error(a->r, fail->status, fail->message);
}

static apr_int64_t now_sec(void)
{
    return apr_time_sec(apr_time_now());
}

static void show(admin_ctx *a, json_object *row)
{
    s2a_admin_shape(a->r->pool, a->route->res, row, now_sec());
    if (a->route->decorate) {
        a->route->decorate(a, row);
    }
}

/* ---- reading ---- */

static int list_rows(admin_ctx *a)
{
    s2a_admin_query q;
    json_object *rows, *out;
    const char *bad, *err = NULL;
    size_t i;
    if ((bad = s2a_admin_query_parse(a->r->pool, a->route->res, a->params, &q))) {
        return s2a_send_error(a->r, 400, bad);
    }
    if (s2a_db_admin_list(&a->db, a->r->pool, a->route->res, &q, &rows, &err) != 0) {
        return db_fail(a, err);
    }
    s2a_json_pooled(a->r->pool, rows);
    for (i = 0; i < json_object_array_length(rows); i++) {
        show(a, json_object_array_get_idx(rows, i));
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", json_object_get(rows));
    return s2a_send_json(a->r, 200, out);
}

/* Row `id` as the answer, with `status`; a new key's plain `key` once. */
static int answer_row(admin_ctx *a, apr_int64_t id, int status, const char *key)
{
    json_object *row;
    const char *err = NULL;
    int rc = s2a_db_admin_get(&a->db, a->r->pool, a->route->res, id, &row, &err);
    if (rc <= 0) {
        return rc < 0
                   ? db_fail(a, err)
                   : s2a_send_error(a->r, 404,
                                    apr_pstrcat(a->r->pool, "No such ", a->route->res->noun, NULL));
    }
    s2a_json_pooled(a->r->pool, row);
    show(a, row);
    if (key) {
        json_object_object_add(row, "key", json_object_new_string(key));
    }
    return s2a_send_json(a->r, status, row);
}

static int get_row(admin_ctx *a, apr_int64_t id)
{
    return answer_row(a, id, 200, NULL);
}

/* ---- writing ---- */

static const char *seal(void *baton, apr_int64_t id, const char *plain)
{
    admin_ctx *a = baton;
    return s2a_credential_seal(a->r->pool, a->sc, id, plain);
}

static int bump(admin_ctx *a, apr_int64_t id, const s2a_admin_change *ch)
{
    s2a_bump(a->r->server, a->r->pool);
    return 1;
}

/* Writes a checked create and answers its row (201). */
static int write_create(admin_ctx *a, s2a_admin_change *ch, const char *key)
{
    s2a_db_admin_fail fail;
    apr_int64_t id = 0;
    s2a_admin_sealer sealer = {seal, a};
    int rc;
    if ((rc = s2a_db_admin_create(&a->db, a->r->pool, ch, now_sec(), &sealer, &id, &fail)) != 0) {
        return not_written(a, rc, &fail);
    }
    if (!a->route->after(a, id, ch)) {
        return store_fail(a);
    }
    return answer_row(a, id, 201, key);
}

static int create_row(admin_ctx *a)
{
    s2a_admin_change ch;
    const char *bad = s2a_admin_check(a->r->pool, a->route->res, a->in, 1, &ch);
    return bad ? s2a_send_error(a->r, 400, bad) : write_create(a, &ch, NULL);
}

static int patch_row(admin_ctx *a, apr_int64_t id)
{
    s2a_admin_sealer sealer = {seal, a};
    s2a_admin_change ch;
    s2a_db_admin_fail fail;
    const char *bad = s2a_admin_check(a->r->pool, a->route->res, a->in, 0, &ch);
    int rc;
    if (bad) {
        return s2a_send_error(a->r, 400, bad);
    }
    s2a_admin_seal(&ch, id, &sealer);
    if ((rc = s2a_db_admin_patch(&a->db, a->r->pool, &ch, id, &fail)) != 0) {
        return not_written(a, rc, &fail);
    }
    if (!a->route->after(a, id, &ch)) {
        return store_fail(a);
    }
    return answer_row(a, id, 200, NULL);
}

/* ---- users ---- */

/* Requests charge the balance the store keeps: a changed balance is
 * brought from the database by the next one. */
static int user_after(admin_ctx *a, apr_int64_t id, const s2a_admin_change *ch)
{
    if (!ch->create &&
        (s2a_admin_value_of(ch, "balance") || s2a_admin_value_of(ch, "add_balance")) &&
        !s2a_forget_balance(a->r->pool, a->r->server, a->sc, &a->db, id)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, a->r,
                      S2ALOGNO(0402) "user %" APR_INT64_T_FMT ": the new balance applies to "
                                     "requests only once the store can be told (or after 10 "
                                     "idle minutes)",
                      id);
    }
    return bump(a, id, ch);
}

/* ---- keys ---- */

/* The plain key is in the answer once; the database keeps its hash. */
static int create_key(admin_ctx *a)
{
    s2a_admin_change ch;
    const char *bad = s2a_admin_check(a->r->pool, a->route->res, a->in, 1, &ch);
    char *key;
    if (bad) {
        return s2a_send_error(a->r, 400, bad);
    }
    if (s2a_key_generate(a->r->pool, &key) != APR_SUCCESS) {
        return s2a_send_error(a->r, 500, "No randomness available for a new key");
    }
    s2a_admin_put(&ch, "key_hash", s2a_key_hash(a->r->pool, key));
    s2a_admin_put(&ch, "prefix", s2a_key_prefix(a->r->pool, key));
    return write_create(a, &ch, key);
}

/* ---- accounts ---- */

static const char *row_type(json_object *row)
{
    json_object *v;
    return json_object_object_get_ex(row, "type", &v) ? json_object_get_string(v) : NULL;
}

/* Where an account's state lives in the store, from its row; 0 when its
 * credential cannot be opened. */
static apr_int64_t account_key(admin_ctx *a, json_object *row, const char **plain)
{
    json_object *v;
    apr_int64_t id = json_object_object_get_ex(row, "id", &v) ? json_object_get_int64(v) : 0;
    /* a Vertex account's token is made again from its key, like a refresh */
    int refreshable =
        (json_object_object_get_ex(row, "refresh_token_set", &v) && json_object_get_boolean(v)) ||
        s2a_cloud_of_type(row_type(row)) == S2A_CLOUD_VERTEX;
    *plain = json_object_object_get_ex(row, "credential", &v)
                 ? s2a_credential_open(a->r->pool, a->sc, id, json_object_get_string(v))
                 : NULL;
    return *plain ? s2a_account_state_key(a->r->pool, a->sc, id, refreshable, *plain) : 0;
}

/* The fixed headers as stored (sealed or plain), opened, their values
 * masked: names are the operator's to read, values may be secrets. */
static json_object *masked_headers(admin_ctx *a, apr_int64_t id, const char *stored)
{
    const char *plain = stored ? s2a_credential_open(a->r->pool, a->sc, id, stored) : NULL;
    json_object *in = plain ? json_tokener_parse(plain) : NULL, *out;
    if (!in || !json_object_is_type(in, json_type_object)) {
        json_object_put(in);
        return NULL;
    }
    out = json_object_new_object();
    json_object_object_foreach(in, name, value)
    {
        json_object_object_add(
            out, name,
            json_object_new_string(s2a_secret_mask(a->r->pool, json_object_get_string(value))));
    }
    json_object_put(in);
    return out;
}

/* The egress as stored, opened, its password hidden; null when it does
 * not open. */
static json_object *shown_egress(admin_ctx *a, json_object *row)
{
    json_object *v;
    apr_int64_t id = json_object_object_get_ex(row, "id", &v) ? json_object_get_int64(v) : 0;
    const char *stored =
        json_object_object_get_ex(row, "egress", &v) ? json_object_get_string(v) : NULL;
    const char *plain = stored ? s2a_credential_open(a->r->pool, a->sc, id, stored) : NULL;
    return plain ? json_object_new_string(s2a_egress_shown(a->r->pool, plain)) : NULL;
}

/* The credential and the headers' values masked, and the state the store
 * keeps (null when the store cannot be read). */
static void decorate_account(admin_ctx *a, json_object *row)
{
    s2a_account_state st;
    const char *plain;
    apr_int64_t key = account_key(a, row, &plain);
    json_object *v;
    int known = 1;

    memset(&st, 0, sizeof(st));
    if (key && s2a_g.store->ops->get(s2a_g.store, key, apr_time_now(), &st) != APR_SUCCESS) {
        s2a_store_failed(a->r, "reading an account's state");
        known = 0;
    }
    const char *shown =
        s2a_cloud_credential_shown(a->r->pool, s2a_cloud_of_type(row_type(row)), plain);
    json_object_object_add(row, "credential",
                           json_object_new_string(shown   ? shown
                                                  : plain ? s2a_secret_mask(a->r->pool, plain)
                                                          : "(sealed with another key)"));
    json_object_object_add(
        row, "headers",
        masked_headers(a, json_object_object_get_ex(row, "id", &v) ? json_object_get_int64(v) : 0,
                       json_object_object_get_ex(row, "headers", &v) ? json_object_get_string(v)
                                                                     : NULL));
    json_object_object_add(row, "egress", shown_egress(a, row));
    json_object_object_add(row, "state",
                           known ? s2a_admin_account_state(row, &st, apr_time_now()) : NULL);
}

/* Re-enabling an account ends its error state and rests; clear_cooldown
 * ends its rests. */
static int account_after(admin_ctx *a, apr_int64_t id, const s2a_admin_change *ch)
{
    const s2a_admin_value *status = s2a_admin_value_of(ch, "status");
    const s2a_admin_value *cooldown = s2a_admin_value_of(ch, "clear_cooldown");
    int error = status && strcmp(status->text, "active") == 0 && !ch->create;
    json_object *row;
    const char *plain, *err = NULL;
    apr_int64_t key;

    bump(a, id, ch);
    if (!error && !(cooldown && cooldown->number)) {
        return 1;
    }
    if (s2a_db_admin_get(&a->db, a->r->pool, &s2a_admin_accounts, id, &row, &err) != 1) {
        return 1;
    }
    s2a_json_pooled(a->r->pool, row);
    key = account_key(a, row, &plain);
    if (key && s2a_g.store->ops->clear(s2a_g.store, key, error) != APR_SUCCESS) {
        s2a_store_failed(a->r, "clearing an account's state");
        return 0;
    }
    return 1;
}

/* ---- subscriptions ---- */

/* A new subscription, or the running one extended (s2a_db_billing.c). */
static int create_subscription(admin_ctx *a)
{
    s2a_admin_change ch;
    s2a_db_admin_fail fail;
    const char *bad = s2a_admin_check(a->r->pool, a->route->res, a->in, 1, &ch), *err = NULL;
    apr_int64_t id = 0;
    int rc;
    if (bad) {
        return s2a_send_error(a->r, 400, bad);
    }
    if ((rc = s2a_db_admin_refs(&a->db, a->r->pool, &ch, &fail)) != 0) {
        return not_written(a, rc, &fail);
    }
    if (s2a_db_subscription_extend(&a->db, a->r->pool, s2a_admin_value_of(&ch, "user_id")->number,
                                   s2a_admin_value_of(&ch, "group_id")->number,
                                   s2a_admin_value_of(&ch, "days")->number, &id, &err) != 0) {
        return db_fail(a, err);
    }
    s2a_bump(a->r->server, a->r->pool);
    return answer_row(a, id, 201, NULL);
}

/* ---- redeem codes ---- */

/* The codes are in the answer once; the database keeps their hashes. */
static int create_codes(admin_ctx *a)
{
    s2a_admin_change ch;
    s2a_admin_codes ask;
    s2a_db_admin_fail fail;
    apr_array_header_t *codes = apr_array_make(a->r->pool, 8, sizeof(const char *));
    const char *bad = s2a_admin_check(a->r->pool, a->route->res, a->in, 1, &ch);
    json_object *out, *list;
    int rc, i;
    if (bad || (bad = s2a_admin_codes_ask(&ch, &ask))) {
        return s2a_send_error(a->r, 400, bad);
    }
    if ((rc = s2a_db_admin_codes(&a->db, a->r->pool, &ch, &ask, now_sec(), codes, &fail)) != 0) {
        return not_written(a, rc, &fail);
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    list = json_object_new_array();
    for (i = 0; i < codes->nelts; i++) {
        json_object_array_add(list, json_object_new_string(APR_ARRAY_IDX(codes, i, const char *)));
    }
    json_object_object_add(out, "codes", list);
    json_object_object_add(out, "kind",
                           json_object_new_string(ask.subscription ? "subscription" : "balance"));
    return s2a_send_json(a->r, 201, out);
}

/* ---- usage summary ---- */

static int usage_summary(admin_ctx *a)
{
    s2a_admin_summary s;
    json_object *rows, *out;
    const char *bad = s2a_admin_summary_parse(a->r->pool, a->params, &s), *err = NULL;
    if (bad) {
        return s2a_send_error(a->r, 400, bad);
    }
    if (s2a_db_admin_summary(&a->db, a->r->pool, &s, &rows, &err) != 0) {
        return db_fail(a, err);
    }
    s2a_json_pooled(a->r->pool, rows);
    s2a_admin_summary_shape(a->r->pool, &s, rows);
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "by", json_object_new_string(s.by));
    if (s.split) {
        json_object_object_add(out, "split", json_object_new_string(s.split));
    }
    json_object_object_add(out, "data", json_object_get(rows));
    return s2a_send_json(a->r, 200, out);
}

/* ---- prices ---- */

/* The price table in service, as the configuration read it at the last
 * (graceful) restart, and the fallback rules. */
static int list_prices(admin_ctx *a)
{
    json_object *out;
    if (!a->sc->prices) {
        return s2a_send_error(a->r, 404, "This virtual host has no price table");
    }
    out =
        s2a_json_pooled(a->r->pool, s2a_pricing_json(a->r->pool, a->sc->prices, a->sc->fallbacks));
    json_object_object_add(out, "file", json_object_new_string(a->sc->price_file));
    return s2a_send_json(a->r, 200, out);
}

/* ---- routing ---- */

static const admin_route routes[] = {
    {"users", &s2a_admin_users, list_rows, get_row, create_row, patch_row, NULL, user_after},
    {"groups", &s2a_admin_groups, list_rows, get_row, create_row, patch_row, NULL, bump},
    {"keys", &s2a_admin_keys, list_rows, get_row, create_key, patch_row, NULL, bump},
    {"accounts", &s2a_admin_accounts, list_rows, get_row, create_row, patch_row, decorate_account,
     account_after},
    {"subscriptions", &s2a_admin_subscriptions, list_rows, get_row, create_subscription, patch_row,
     NULL, bump},
    {"redeem_codes", &s2a_admin_redeem_codes, list_rows, NULL, create_codes, NULL, NULL, NULL},
    {"usage", &s2a_admin_usage, list_rows, NULL, NULL, NULL, NULL, NULL},
    {"usage/summary", &s2a_admin_usage, usage_summary, NULL, NULL, NULL, NULL, NULL},
    {"balance_log", &s2a_admin_balance_log, list_rows, NULL, NULL, NULL, NULL, NULL},
    {"prices", NULL, list_prices, NULL, NULL, NULL, NULL, NULL},
    {NULL}};

/* An id in a path: at most 18 digits. */
static int is_id(const char *s)
{
    size_t n = strlen(s), i;
    for (i = 0; i < n; i++) {
        if (!apr_isdigit(s[i])) {
            return 0;
        }
    }
    return n > 0 && n <= 18;
}

/* The last one or two path segments name the resource, wherever the admin
 * location is mounted: ".../users", ".../users/12", ".../usage/summary".
 * NULL when none does. */
static const admin_route *route_of(request_rec *r, apr_int64_t *id)
{
    char *path = apr_pstrdup(r->pool, r->uri), *last, *prev;
    apr_size_t n = strlen(path);
    const admin_route *route;
    const char *name;

    while (n > 1 && path[n - 1] == '/') {
        path[--n] = '\0';
    }
    last = strrchr(path, '/');
    name = last ? last + 1 : path;
    *id = 0;
    if (last) {
        *last = '\0';
        prev = strrchr(path, '/');
        prev = prev ? prev + 1 : path;
        if (is_id(name)) {
            *id = apr_atoi64(name);
            name = prev;
        } else if (strcmp(prev, "usage") == 0 && strcmp(name, "summary") == 0) {
            name = "usage/summary";
        }
    }
    for (route = routes; route->name; route++) {
        if (strcmp(route->name, name) == 0) {
            return *id && !route->get && !route->patch ? NULL : route;
        }
    }
    return NULL;
}

static int dispatch(admin_ctx *a, apr_int64_t id)
{
    const admin_route *rt = a->route;
    switch (a->r->method_number) {
    case M_GET:
        if (id ? rt->get != NULL : rt->list != NULL) {
            return id ? rt->get(a, id) : rt->list(a);
        }
        break;
    case M_POST:
        if (!id && rt->create) {
            return rt->create(a);
        }
        break;
    case M_PATCH:
        if (id && rt->patch) {
            return rt->patch(a, id);
        }
        break;
    }
    return s2a_send_error(a->r, 405, "Method not allowed");
}

int s2a_admin_handler(request_rec *r)
{
    s2a_srv_conf *sc = s2a_server_conf(r->server);
    admin_ctx a;
    apr_int64_t id;

    if (!r->handler || strcmp(r->handler, S2A_ADMIN_HANDLER) != 0) {
        return DECLINED;
    }

    memset(&a, 0, sizeof(a));
    a.r = r;
    a.sc = sc;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (!sc->admin_token_hash) {
        return s2a_send_error(r, 403, "The admin API is off: no Sub2apiAdminToken is set");
    }
    if (!authorized(r, sc)) {
        return s2a_send_error(r, 401, "A valid admin token is required (Authorization: Bearer)");
    }
    if ((r->method_number == M_POST || r->method_number == M_PATCH) && !s2a_read_json(r, &a.in)) {
        return s2a_send_error(r, 400, "The body must be a JSON object");
    }
    if (!s2a_dbc_acquire(r, &a.db)) {
        return s2a_send_error(r, 500, "The gateway cannot reach its database");
    }
    if (!s2a_g.store || !sc->catalog) {
        return s2a_send_error(r, 500,
                              "The gateway did not start in this process (see the error log)");
    }
    if (!(a.route = route_of(r, &id))) {
        return s2a_send_error(r, 404, "No such admin resource");
    }
    if (r->args) {
        ap_args_to_table(r, &a.params);
    }
    return dispatch(&a, id);
}
