/* The admin JSON API (SetHandler sub2api-admin): users, groups, keys,
 * upstream accounts and usage rows. */
#include <http_protocol.h>
#include <http_request.h>
#include <util_script.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_errors.h"
#include "s2a_keys.h"
#include "s2a_sha256.h"

typedef struct {
    request_rec *r;
    s2a_srv_conf *sc;
    s2a_dbc db;
    json_object *in; /* request body, NULL if none */
    const char *err;
} admin_ctx;

static const char *i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

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

static const char *get_str(admin_ctx *a, const char *k)
{
    json_object *v;
    if (a->in && json_object_object_get_ex(a->in, k, &v) &&
        json_object_is_type(v, json_type_string)) {
        return json_object_get_string(v);
    }
    return NULL;
}

static int has(admin_ctx *a, const char *k)
{
    return a->in && json_object_object_get_ex(a->in, k, NULL);
}

/* Integer field: 1 present and valid, 0 absent, -1 wrong type. */
static int get_int(admin_ctx *a, const char *k, apr_int64_t *out)
{
    json_object *v;
    if (!a->in || !json_object_object_get_ex(a->in, k, &v)) {
        return 0;
    }
    if (!json_object_is_type(v, json_type_int)) {
        return -1;
    }
    *out = json_object_get_int64(v);
    return 1;
}

/* Money: `<base>_nanousd` integer or `<base>_usd` decimal (string or number
 * text, converted exactly). */
static int get_money(admin_ctx *a, const char *base, apr_int64_t *out)
{
    json_object *v;
    int rc = get_int(a, apr_pstrcat(a->r->pool, base, "_nanousd", NULL), out);
    if (rc) {
        return rc;
    }
    if (!a->in ||
        !json_object_object_get_ex(a->in, apr_pstrcat(a->r->pool, base, "_usd", NULL), &v)) {
        return 0;
    }
    if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int) &&
        !json_object_is_type(v, json_type_double)) {
        return -1;
    }
    return s2a_usd_parse_nano(json_object_get_string(v), out) == 0 ? 1 : -1;
}

static int is_number(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }
    }
    return 1;
}

/* 1 true, 0 false or absent, -1 not a boolean. */
static int get_bool(admin_ctx *a, const char *k)
{
    json_object *v;
    if (!a->in || !json_object_object_get_ex(a->in, k, &v)) {
        return 0;
    }
    return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

static int valid_status(const char *s)
{
    return s && (strcmp(s, "active") == 0 || strcmp(s, "disabled") == 0);
}

static json_object *one(json_object *arr)
{
    return json_object_array_length(arr) ? json_object_array_get_idx(arr, 0) : NULL;
}

static int db_fail(admin_ctx *a)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, a->r, S2ALOGNO(0401) "admin database error: %s",
                  a->err ? a->err : "unknown");
    return s2a_send_error(a->r, 500, "Database error");
}

static int exec_update(admin_ctx *a, const char *sql, const char *v, const char *id)
{
    const char *args[2] = {v, id};
    return s2a_db_exec(&a->db, a->r->pool, sql, v ? 2 : 1, v ? args : args + 1, NULL, &a->err);
}

/* Limits of users and keys: integers >= 0 (0: no limit). NULL if the given
 * ones are valid, else the message. */
static const char *limits_check(admin_ctx *a, const char *const *fields)
{
    for (; *fields; fields++) {
        apr_int64_t v;
        int rc = get_int(a, *fields, &v);
        if (rc < 0 || (rc && (v < 0 || v > 1000000))) {
            return apr_pstrcat(a->r->pool, *fields, ": a whole number from 0 (no limit)", NULL);
        }
    }
    return NULL;
}

static int limits_set(admin_ctx *a, const char *table, const char *const *fields, const char *id)
{
    for (; *fields; fields++) {
        apr_int64_t v;
        if (get_int(a, *fields, &v) == 1 &&
            exec_update(a,
                        apr_pstrcat(a->r->pool, "UPDATE ", table, " SET ", *fields,
                                    " = %d WHERE id = %lld", NULL),
                        i64(a->r->pool, v), id)) {
            return -1;
        }
    }
    return 0;
}

/* A new row and its limits, in one transaction: a failure leaves no row. */
static int insert_with_limits(admin_ctx *a, const char *sql, int nargs, const char **args,
                              const char *table, const char *const *fields, apr_int64_t *id)
{
    int ok;
    if (s2a_db_begin(&a->db) != 0) {
        return 0;
    }
    ok = s2a_db_insert(&a->db, a->r->pool, sql, nargs, args, id, &a->err) == 0 &&
         limits_set(a, table, fields, i64(a->r->pool, *id)) == 0;
    s2a_db_end(&a->db, ok);
    return ok;
}

static const char *const user_limits[] = {"concurrency", NULL};
static const char *const key_limits[] = {"concurrency", "rpm_limit", NULL};

/* ---- users ---- */

static void decorate_user(apr_pool_t *p, json_object *u)
{
    json_object *b;
    if (json_object_object_get_ex(u, "balance_nanousd", &b)) {
        json_object_object_add(u, "balance_usd",
                               json_object_new_string(s2a_usd_format(p, json_object_get_int64(b))));
    }
}

static int users_list(admin_ctx *a, const char *id)
{
    json_object *rows;
    const char *args[1] = {id};
    size_t i;
    if (s2a_db_rows(&a->db, a->r->pool,
                    id ? "SELECT id, name, status, balance_nanousd, created_at, concurrency"
                         " FROM s2a_users WHERE id = %lld"
                       : "SELECT id, name, status, balance_nanousd, created_at, concurrency"
                         " FROM s2a_users ORDER BY id",
                    "issiii", id ? 1 : 0, args, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    s2a_json_pooled(a->r->pool, rows);
    for (i = 0; i < json_object_array_length(rows); i++) {
        decorate_user(a->r->pool, json_object_array_get_idx(rows, i));
    }
    if (id) {
        return one(rows) ? s2a_send_json(a->r, a->r->method_number == M_POST ? 201 : 200, one(rows))
                         : s2a_send_error(a->r, 404, "No such user");
    }
    json_object *out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", json_object_get(rows));
    return s2a_send_json(a->r, 200, out);
}

static int users_create(admin_ctx *a)
{
    const char *name = get_str(a, "name"), *status = get_str(a, "status");
    apr_int64_t balance = 0, id;
    const char *args[4];
    if (!name || !*name) {
        return s2a_send_error(a->r, 400, "name: a non-empty string is required");
    }
    if (has(a, "status") && !valid_status(status)) {
        return s2a_send_error(a->r, 400, "status: active or disabled");
    }
    if (get_money(a, "balance", &balance) < 0) {
        return s2a_send_error(a->r, 400, "balance_usd: a decimal amount is required");
    }
    if (limits_check(a, user_limits)) {
        return s2a_send_error(a->r, 400, limits_check(a, user_limits));
    }
    args[0] = name;
    args[1] = status ? status : "active";
    args[2] = i64(a->r->pool, balance);
    args[3] = i64(a->r->pool, apr_time_sec(apr_time_now()));
    if (!insert_with_limits(a,
                            "INSERT INTO s2a_users (name, status, balance_nanousd, created_at)"
                            " VALUES (%s, %s, %lld, %lld)",
                            4, args, "s2a_users", user_limits, &id)) {
        return db_fail(a);
    }
    return users_list(a, i64(a->r->pool, id));
}

static const char *ledger_check(admin_ctx *a);

static void forget_balance(admin_ctx *a, const char *id)
{
    if (!s2a_forget_balance(a->r->pool, a->r->server, a->sc, &a->db, apr_atoi64(id))) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, a->r,
                      S2ALOGNO(0402) "user %s: the new balance applies to requests only once "
                                     "the store can be told (or after 10 idle minutes)",
                      id);
    }
}
static int balance_change(admin_ctx *a, const char *id, const char *kind, apr_int64_t amount);

static int users_patch(admin_ctx *a, const char *id)
{
    const char *name = get_str(a, "name"), *status = get_str(a, "status");
    apr_int64_t set, add;
    int rc_set, rc_add;
    if ((has(a, "name") && (!name || !*name)) || (has(a, "status") && !valid_status(status))) {
        return s2a_send_error(a->r, 400,
                              "name must be a non-empty string, status active or disabled");
    }
    if ((rc_set = get_money(a, "balance", &set)) < 0) {
        return s2a_send_error(a->r, 400, "balance_usd: a decimal amount is required");
    }
    if ((rc_add = get_money(a, "add_balance", &add)) < 0) {
        return s2a_send_error(a->r, 400, "add_balance_usd: a decimal amount is required");
    }
    if (limits_check(a, user_limits)) {
        return s2a_send_error(a->r, 400, limits_check(a, user_limits));
    }
    if (limits_set(a, "s2a_users", user_limits, id)) {
        return db_fail(a);
    }
    if (name && exec_update(a, "UPDATE s2a_users SET name = %s WHERE id = %lld", name, id)) {
        return db_fail(a);
    }
    if (status && exec_update(a, "UPDATE s2a_users SET status = %s WHERE id = %lld", status, id)) {
        return db_fail(a);
    }
    if ((rc_set || rc_add) && ledger_check(a)) {
        return s2a_send_error(a->r, 400, ledger_check(a));
    }
    if (rc_set && balance_change(a, id, "set", set)) {
        return db_fail(a);
    }
    if (rc_add && balance_change(a, id, "add", add)) {
        return db_fail(a);
    }
    if (rc_set || rc_add) {
        forget_balance(a, id);
    }
    s2a_bump(a->r->server, a->r->pool);
    return users_list(a, id);
}

/* ---- the balance ledger ---- */

static const char *ledger_check(admin_ctx *a)
{
    const char *actor = get_str(a, "actor"), *reason = get_str(a, "reason");
    if ((has(a, "actor") && (!actor || strlen(actor) > 100)) ||
        (has(a, "reason") && (!reason || strlen(reason) > 500))) {
        return "actor: a string of at most 100 characters, reason: at most 500";
    }
    return NULL;
}

static int balance_change(admin_ctx *a, const char *id, const char *kind, apr_int64_t amount)
{
    const char *actor = get_str(a, "actor"), *reason = get_str(a, "reason");
    apr_int64_t after;
    return s2a_db_balance_change(&a->db, a->r->pool, apr_atoi64(id), strcmp(kind, "set") == 0,
                                 amount, actor ? actor : "admin", reason ? reason : "", &after,
                                 &a->err) == 1
               ? 0
               : -1;
}

/* The rows a page may have: `limit`, 1 to 10000, default 100; -1 if bad. */
static apr_int64_t page_limit(apr_table_t *q)
{
    const char *v = q ? apr_table_get(q, "limit") : NULL;
    apr_int64_t limit = v ? (is_number(v) ? apr_atoi64(v) : 0) : 100;
    return limit < 1 || limit > 10000 ? -1 : limit;
}

/* GET /admin/balance_log?user_id=&before_id=&limit= : newest first. */
static int balance_log_list(admin_ctx *a)
{
    apr_table_t *q = NULL;
    const char *where = "", *args[3], *v;
    json_object *rows, *out;
    apr_int64_t limit;
    int n = 0;

    if (a->r->args) {
        ap_args_to_table(a->r, &q);
    }
    if (q && (v = apr_table_get(q, "user_id"))) {
        if (!is_number(v)) {
            return s2a_send_error(a->r, 400, "user_id: a number");
        }
        where = " WHERE user_id = %lld";
        args[n++] = v;
    }
    if (q && (v = apr_table_get(q, "before_id"))) {
        if (!is_number(v)) {
            return s2a_send_error(a->r, 400, "before_id: a number");
        }
        where = apr_pstrcat(a->r->pool, where, n ? " AND" : " WHERE", " id < %lld", NULL);
        args[n++] = v;
    }
    if ((limit = page_limit(q)) < 0) {
        return s2a_send_error(a->r, 400, "limit: 1 to 10000");
    }
    args[n++] = i64(a->r->pool, limit);
    if (s2a_db_rows(&a->db, a->r->pool,
                    apr_pstrcat(a->r->pool,
                                "SELECT id, user_id, delta_nanousd, balance_after_nanousd, kind,"
                                " actor, reason, created_at FROM s2a_balance_log",
                                where, " ORDER BY id DESC LIMIT %d", NULL),
                    "iiiisssi", n, args, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", rows);
    return s2a_send_json(a->r, 200, out);
}

/* ---- groups ---- */

#define GROUP_COLUMNS                                                                              \
    "SELECT id, name, rate_multiplier_ppm, created_at, billing_type, daily_limit_nanousd,"         \
    " weekly_limit_nanousd, monthly_limit_nanousd"

/* billing_type and the allowances of a subscription group: NULL if the
 * request's fields are good, else why not. */
static const char *group_billing_check(admin_ctx *a)
{
    const char *type = get_str(a, "billing_type");
    apr_int64_t v;
    int w;
    if (has(a, "billing_type") &&
        (!type || (strcmp(type, "balance") != 0 && strcmp(type, "subscription") != 0))) {
        return "billing_type: balance or subscription";
    }
    for (w = 0; w < S2A_WINDOWS; w++) {
        const char *base = apr_pstrcat(a->r->pool, s2a_window_names[w], "_limit", NULL);
        if (get_money(a, base, &v) < 0 || v < 0) {
            return apr_pstrcat(a->r->pool, base, "_usd: an amount of 0 or more (0: no limit)",
                               NULL);
        }
    }
    return NULL;
}

static int group_billing_apply(admin_ctx *a, const char *id)
{
    const char *type = get_str(a, "billing_type");
    apr_int64_t v;
    int w;
    if (type &&
        exec_update(a, "UPDATE s2a_groups SET billing_type = %s WHERE id = %lld", type, id)) {
        return -1;
    }
    for (w = 0; w < S2A_WINDOWS; w++) {
        const char *base = apr_pstrcat(a->r->pool, s2a_window_names[w], "_limit", NULL);
        if (get_money(a, base, &v) == 1 &&
            exec_update(a,
                        apr_pstrcat(a->r->pool, "UPDATE s2a_groups SET ", base,
                                    "_nanousd = %lld WHERE id = %lld", NULL),
                        i64(a->r->pool, v), id)) {
            return -1;
        }
    }
    return 0;
}

static int groups_list(admin_ctx *a, const char *id)
{
    json_object *rows, *out;
    const char *args[1] = {id};
    size_t i;
    if (s2a_db_rows(&a->db, a->r->pool,
                    apr_pstrcat(a->r->pool, GROUP_COLUMNS " FROM s2a_groups",
                                id ? " WHERE id = %lld" : " ORDER BY id", NULL),
                    "isiisiii", id ? 1 : 0, args, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    s2a_json_pooled(a->r->pool, rows);
    for (i = 0; i < json_object_array_length(rows); i++) {
        json_object *g = json_object_array_get_idx(rows, i), *ppm, *v;
        int w;
        for (w = 0; w < S2A_WINDOWS; w++) {
            const char *k = apr_pstrcat(a->r->pool, s2a_window_names[w], "_limit_nanousd", NULL);
            if (json_object_object_get_ex(g, k, &v)) {
                json_object_object_add(
                    g, apr_pstrcat(a->r->pool, s2a_window_names[w], "_limit_usd", NULL),
                    json_object_new_string(s2a_usd_format(a->r->pool, json_object_get_int64(v))));
            }
        }
        if (json_object_object_get_ex(g, "rate_multiplier_ppm", &ppm)) {
            /* ppm is the same scale as micro-units: format through nano-USD */
            json_object_object_add(g, "rate_multiplier",
                                   json_object_new_string(s2a_usd_format(
                                       a->r->pool, json_object_get_int64(ppm) * 1000)));
        }
    }
    if (id) {
        return one(rows) ? s2a_send_json(a->r, a->r->method_number == M_POST ? 201 : 200, one(rows))
                         : s2a_send_error(a->r, 404, "No such group");
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", json_object_get(rows));
    return s2a_send_json(a->r, 200, out);
}

static int get_multiplier(admin_ctx *a, apr_int64_t *ppm)
{
    json_object *v;
    if (!a->in || !json_object_object_get_ex(a->in, "rate_multiplier", &v)) {
        return 0;
    }
    if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int) &&
        !json_object_is_type(v, json_type_double)) {
        return -1;
    }
    return s2a_multiplier_parse_ppm(json_object_get_string(v), ppm) == 0 ? 1 : -1;
}

/* 1 if a group has this name, 0 if not, -1 on a database error. */
static int group_named(admin_ctx *a, const char *name)
{
    json_object *rows;
    const char *args[1] = {name};
    int found;
    if (s2a_db_rows(&a->db, a->r->pool, "SELECT id FROM s2a_groups WHERE name = %s", "i", 1, args,
                    &rows, &a->err) != 0) {
        return -1;
    }
    found = json_object_array_length(rows) > 0;
    json_object_put(rows);
    return found;
}

static int groups_create(admin_ctx *a)
{
    const char *name = get_str(a, "name");
    apr_int64_t ppm = 1000000, id;
    const char *args[3];
    if (!name || !*name) {
        return s2a_send_error(a->r, 400, "name: a non-empty string is required");
    }
    if (get_multiplier(a, &ppm) < 0) {
        return s2a_send_error(a->r, 400, "rate_multiplier: a positive decimal is required");
    }
    if (group_billing_check(a)) {
        return s2a_send_error(a->r, 400, group_billing_check(a));
    }
    switch (group_named(a, name)) {
    case -1:
        return db_fail(a);
    case 1:
        return s2a_send_error(a->r, 409, "name: a group of that name exists");
    }
    args[0] = name;
    args[1] = i64(a->r->pool, ppm);
    args[2] = i64(a->r->pool, apr_time_sec(apr_time_now()));
    if (s2a_db_insert(&a->db, a->r->pool,
                      "INSERT INTO s2a_groups (name, rate_multiplier_ppm, created_at)"
                      " VALUES (%s, %lld, %lld)",
                      3, args, &id, &a->err) != 0 ||
        group_billing_apply(a, i64(a->r->pool, id)) != 0) {
        return db_fail(a);
    }
    return groups_list(a, i64(a->r->pool, id));
}

static int groups_patch(admin_ctx *a, const char *id)
{
    const char *name = get_str(a, "name");
    apr_int64_t ppm;
    int rc = get_multiplier(a, &ppm);
    if (rc < 0 || (has(a, "name") && (!name || !*name))) {
        return s2a_send_error(a->r, 400,
                              "name must be a non-empty string, rate_multiplier positive");
    }
    if (group_billing_check(a)) {
        return s2a_send_error(a->r, 400, group_billing_check(a));
    }
    if (name && group_named(a, name) != 0) {
        return group_named(a, name) < 0
                   ? db_fail(a)
                   : s2a_send_error(a->r, 409, "name: a group of that name exists");
    }
    if (name && exec_update(a, "UPDATE s2a_groups SET name = %s WHERE id = %lld", name, id)) {
        return db_fail(a);
    }
    if (rc && exec_update(a, "UPDATE s2a_groups SET rate_multiplier_ppm = %lld WHERE id = %lld",
                          i64(a->r->pool, ppm), id)) {
        return db_fail(a);
    }
    if (group_billing_apply(a, id) != 0) {
        return db_fail(a);
    }
    s2a_bump(a->r->server, a->r->pool);
    return groups_list(a, id);
}

/* ---- keys ---- */

#define KEY_COLUMNS                                                                                \
    "SELECT id, user_id, group_id, name, prefix, status, expires_at, created_at, concurrency,"     \
    " rpm_limit"

static int keys_list(admin_ctx *a, const char *id, const char *plain)
{
    json_object *rows, *out;
    const char *args[1] = {id};
    if (s2a_db_rows(&a->db, a->r->pool,
                    id ? KEY_COLUMNS " FROM s2a_api_keys WHERE id = %lld"
                       : KEY_COLUMNS " FROM s2a_api_keys ORDER BY id",
                    "iiisssiiii", id ? 1 : 0, args, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    s2a_json_pooled(a->r->pool, rows);
    if (id) {
        json_object *k = one(rows);
        if (!k) {
            return s2a_send_error(a->r, 404, "No such key");
        }
        if (plain) {
            json_object_object_add(k, "key", json_object_new_string(plain));
        }
        return s2a_send_json(a->r, plain ? 201 : 200, k);
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", json_object_get(rows));
    return s2a_send_json(a->r, 200, out);
}

static int exists(admin_ctx *a, const char *table, apr_int64_t id)
{
    json_object *rows;
    const char *args[1] = {i64(a->r->pool, id)};
    int found;
    if (s2a_db_rows(&a->db, a->r->pool,
                    apr_pstrcat(a->r->pool, "SELECT id FROM ", table, " WHERE id = %lld", NULL),
                    "i", 1, args, &rows, &a->err) != 0) {
        return -1;
    }
    found = json_object_array_length(rows) > 0;
    json_object_put(rows);
    return found;
}

static int keys_create(admin_ctx *a)
{
    apr_int64_t user_id, group_id, expires = 0, id;
    const char *name = get_str(a, "name");
    const char *args[7];
    char *key;
    int u, g;
    if (get_int(a, "user_id", &user_id) != 1 || get_int(a, "group_id", &group_id) != 1 ||
        get_int(a, "expires_at", &expires) < 0) {
        return s2a_send_error(a->r, 400, "user_id and group_id (integers) are required");
    }
    if (limits_check(a, key_limits)) {
        return s2a_send_error(a->r, 400, limits_check(a, key_limits));
    }
    u = exists(a, "s2a_users", user_id);
    g = exists(a, "s2a_groups", group_id);
    if (u < 0 || g < 0) {
        return db_fail(a);
    }
    if (!u || !g) {
        return s2a_send_error(a->r, 400, !u ? "user_id: no such user" : "group_id: no such group");
    }
    if (s2a_key_generate(a->r->pool, &key) != APR_SUCCESS) {
        return s2a_send_error(a->r, 500, "No randomness available for a new key");
    }
    args[0] = i64(a->r->pool, user_id);
    args[1] = i64(a->r->pool, group_id);
    args[2] = name ? name : "";
    args[3] = s2a_key_hash(a->r->pool, key);
    args[4] = s2a_key_prefix(a->r->pool, key);
    args[5] = i64(a->r->pool, expires);
    args[6] = i64(a->r->pool, apr_time_sec(apr_time_now()));
    if (!insert_with_limits(a,
                            "INSERT INTO s2a_api_keys (user_id, group_id, name, key_hash, prefix,"
                            " expires_at, created_at) VALUES (%lld, %lld, %s, %s, %s, %lld, %lld)",
                            7, args, "s2a_api_keys", key_limits, &id)) {
        return db_fail(a);
    }
    return keys_list(a, i64(a->r->pool, id), key);
}

static int keys_patch(admin_ctx *a, const char *id)
{
    const char *name = get_str(a, "name"), *status = get_str(a, "status");
    apr_int64_t expires;
    int rc = get_int(a, "expires_at", &expires);
    if (rc < 0 || (has(a, "status") && !valid_status(status))) {
        return s2a_send_error(a->r, 400, "status: active or disabled; expires_at: unix seconds");
    }
    if (limits_check(a, key_limits)) {
        return s2a_send_error(a->r, 400, limits_check(a, key_limits));
    }
    if (limits_set(a, "s2a_api_keys", key_limits, id)) {
        return db_fail(a);
    }
    if (name && exec_update(a, "UPDATE s2a_api_keys SET name = %s WHERE id = %lld", name, id)) {
        return db_fail(a);
    }
    if (status &&
        exec_update(a, "UPDATE s2a_api_keys SET status = %s WHERE id = %lld", status, id)) {
        return db_fail(a);
    }
    if (rc && exec_update(a, "UPDATE s2a_api_keys SET expires_at = %lld WHERE id = %lld",
                          i64(a->r->pool, expires), id)) {
        return db_fail(a);
    }
    s2a_bump(a->r->server, a->r->pool);
    return keys_list(a, id, NULL);
}

/* ---- accounts ---- */

#define ACCOUNT_COLUMNS                                                                            \
    "SELECT id, name, type, credential, endpoint, priority, concurrency, model_mapping, status,"   \
    " schedulable, error_message, created_at, custom_error_codes, expires_at,"                     \
    " CASE WHEN refresh_token <> '' THEN 1 ELSE 0 END AS refresh_token_set, headers"               \
    " FROM s2a_accounts"

static void decorate_account(admin_ctx *a, json_object *acc)
{
    json_object *v, *state, *groups = NULL;
    s2a_account_state st;
    apr_int64_t id = 0;
    const char *args[1];
    size_t i;
    int state_known = 1;

    memset(&st, 0, sizeof(st));
    if (json_object_object_get_ex(acc, "id", &v)) {
        id = json_object_get_int64(v);
    }
    if (json_object_object_get_ex(acc, "credential", &v)) {
        const char *plain = s2a_credential_open(a->r->pool, a->sc, json_object_get_string(v));
        json_object *rt = NULL;
        int refreshable =
            json_object_object_get_ex(acc, "refresh_token_set", &rt) && json_object_get_boolean(rt);
        if (plain &&
            s2a_g.store->ops->get(s2a_g.store,
                                  s2a_account_state_key(a->r->pool, a->sc, id, refreshable, plain),
                                  apr_time_now(), &st) != APR_SUCCESS) {
            s2a_store_failed(a->r, "reading an account's state");
            state_known = 0;
        }
        json_object_object_add(acc, "credential",
                               json_object_new_string(plain ? s2a_secret_mask(a->r->pool, plain)
                                                            : "(sealed with another key)"));
    }
    state = json_object_new_object();
    json_object_object_add(state, "in_flight", json_object_new_int(st.in_flight));
    json_object_object_add(state, "error", json_object_new_boolean(st.error));
    json_object_object_add(state, "rate_limited_until",
                           json_object_new_int64(apr_time_sec(st.rate_limited_until)));
    json_object_object_add(state, "overloaded_until",
                           json_object_new_int64(apr_time_sec(st.overloaded_until)));
    json_object_object_add(state, "last_used_at",
                           json_object_new_int64(apr_time_sec(st.last_used)));
    {
        static const char *const names[] = {"unknown", "allowed", "allowed_warning", "rejected"};
        json_object *w = json_object_new_object();
        json_object_object_add(w, "status", json_object_new_string(names[st.window_status & 3]));
        json_object_object_add(w, "reset_at", json_object_new_int64(apr_time_sec(st.window_reset)));
        json_object_object_add(state, "window_5h", w);
    }
    json_object_object_add(acc, "state", state_known ? state : NULL);
    if (!state_known) {
        json_object_put(state);
    }
    args[0] = i64(a->r->pool, id);
    if (s2a_db_rows(&a->db, a->r->pool,
                    "SELECT group_id FROM s2a_account_groups WHERE account_id = %lld"
                    " ORDER BY group_id",
                    "i", 1, args, &groups, &a->err) == 0) {
        json_object *ids = json_object_new_array();
        for (i = 0; i < json_object_array_length(groups); i++) {
            json_object *g = json_object_array_get_idx(groups, i);
            json_object_object_get_ex(g, "group_id", &v);
            json_object_array_add(ids, json_object_get(v));
        }
        json_object_object_add(acc, "group_ids", ids);
        json_object_put(groups);
    }
}

static int accounts_list(admin_ctx *a, const char *id, int created)
{
    json_object *rows, *out;
    const char *args[1] = {id};
    size_t i;
    if (s2a_db_rows(&a->db, a->r->pool,
                    id ? ACCOUNT_COLUMNS " WHERE id = %lld" : ACCOUNT_COLUMNS " ORDER BY id",
                    "issssiijsbsijibj", id ? 1 : 0, args, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    s2a_json_pooled(a->r->pool, rows);
    for (i = 0; i < json_object_array_length(rows); i++) {
        decorate_account(a, json_object_array_get_idx(rows, i));
    }
    if (id) {
        return one(rows) ? s2a_send_json(a->r, created ? 201 : 200, one(rows))
                         : s2a_send_error(a->r, 404, "No such account");
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", json_object_get(rows));
    return s2a_send_json(a->r, 200, out);
}

static const char *account_type_check(const char *t)
{
    if (!t || (strcmp(t, "apikey") && strcmp(t, "oauth") && strcmp(t, "setup-token"))) {
        return "type: apikey, oauth or setup-token";
    }
    return NULL;
}

/* Headers an operator may not fix for an account: the credential, the
 * framing and the connection are the gateway's. */
static const char *const reserved_headers[] = {"authorization",
                                               "x-api-key",
                                               "host",
                                               "content-length",
                                               "content-type",
                                               "transfer-encoding",
                                               "connection",
                                               "keep-alive",
                                               "te",
                                               "trailer",
                                               "upgrade",
                                               "expect",
                                               "proxy-authorization",
                                               "proxy-connection",
                                               "cookie",
                                               NULL};

static const char *headers_check(apr_pool_t *p, json_object *v)
{
    if (!json_object_is_type(v, json_type_object)) {
        return "headers: an object of header name to value";
    }
    json_object_object_foreach(v, k, val)
    {
        const char *c;
        int i;
        if (!*k || strlen(k) > 64) {
            return "headers: names of 1 to 64 characters";
        }
        for (c = k; *c; c++) {
            if (!apr_isalnum(*c) && *c != '-' && *c != '_') {
                return apr_psprintf(p, "headers: %s is not a header name", k);
            }
        }
        for (i = 0; reserved_headers[i]; i++) {
            if (strcasecmp(k, reserved_headers[i]) == 0) {
                return apr_psprintf(p, "headers: %s is set by the gateway", k);
            }
        }
        if (!json_object_is_type(val, json_type_string) || json_object_get_string_len(val) > 4096) {
            return "headers: values must be strings of up to 4096 characters";
        }
        for (c = json_object_get_string(val); *c; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                return apr_psprintf(p, "headers: the value of %s has control characters", k);
            }
        }
    }
    return NULL;
}

/* Validates the fields an account create or update may carry. */
static const char *account_fields_check(admin_ctx *a, int create)
{
    json_object *v;
    apr_int64_t n;
    static const char *const strs[] = {"name", "credential", "endpoint"};
    int i;
    for (i = 0; i < 3; i++) {
        const char *s = get_str(a, strs[i]);
        if ((create || has(a, strs[i])) && (!s || !*s)) {
            return apr_psprintf(a->r->pool, "%s: a non-empty string is required", strs[i]);
        }
    }
    if ((create || has(a, "type")) && account_type_check(get_str(a, "type"))) {
        return account_type_check(get_str(a, "type"));
    }
    if (get_int(a, "priority", &n) < 0 || get_int(a, "concurrency", &n) < 0 ||
        (get_int(a, "concurrency", &n) == 1 && (n < 1 || n > 1000000)) ||
        (get_int(a, "priority", &n) == 1 && (n < -1000000 || n > 1000000))) {
        return "priority and concurrency: integers (concurrency from 1 to 1000000)";
    }
    if (has(a, "status") && !valid_status(get_str(a, "status"))) {
        return "status: active or disabled";
    }
    if (has(a, "refresh_token") &&
        (!get_str(a, "refresh_token") || !*get_str(a, "refresh_token"))) {
        return "refresh_token: a non-empty string is required";
    }
    if (get_int(a, "expires_at", &n) < 0 || (get_int(a, "expires_at", &n) == 1 && n < 0)) {
        return "expires_at: Unix seconds when the access token ends (0: unknown)";
    }
    if (a->in && json_object_object_get_ex(a->in, "custom_error_codes", &v) && v) {
        size_t j;
        if (!json_object_is_type(v, json_type_array)) {
            return "custom_error_codes: an array of HTTP statuses, or null";
        }
        for (j = 0; j < json_object_array_length(v); j++) {
            json_object *c = json_object_array_get_idx(v, j);
            if (!json_object_is_type(c, json_type_int) || json_object_get_int(c) < 400 ||
                json_object_get_int(c) > 599) {
                return "custom_error_codes: an array of HTTP statuses, or null";
            }
        }
    }
    if ((has(a, "schedulable") && get_bool(a, "schedulable") < 0) ||
        (has(a, "clear_cooldown") && get_bool(a, "clear_cooldown") < 0)) {
        return "schedulable and clear_cooldown: true or false";
    }
    if (a->in && json_object_object_get_ex(a->in, "headers", &v)) {
        const char *bad = headers_check(a->r->pool, v);
        if (bad) {
            return bad;
        }
    }
    if (a->in && json_object_object_get_ex(a->in, "model_mapping", &v)) {
        if (!json_object_is_type(v, json_type_object)) {
            return "model_mapping: an object of client model to upstream model";
        }
        json_object_object_foreach(v, k, m)
        {
            (void)k;
            if (!json_object_is_type(m, json_type_string)) {
                return "model_mapping: values must be strings";
            }
        }
    }
    if (a->in && json_object_object_get_ex(a->in, "group_ids", &v)) {
        size_t j;
        if (!json_object_is_type(v, json_type_array)) {
            return "group_ids: an array of group ids";
        }
        for (j = 0; j < json_object_array_length(v); j++) {
            json_object *g = json_object_array_get_idx(v, j);
            int e;
            if (!json_object_is_type(g, json_type_int)) {
                return "group_ids: an array of group ids";
            }
            e = exists(a, "s2a_groups", json_object_get_int64(g));
            if (e <= 0) {
                return e < 0 ? "database error" : "group_ids: no such group";
            }
        }
    }
    return NULL;
}

static int set_groups(admin_ctx *a, const char *id)
{
    json_object *v;
    size_t j;
    const char *args[2];
    if (!a->in || !json_object_object_get_ex(a->in, "group_ids", &v)) {
        return 0;
    }
    if (exec_update(a, "DELETE FROM s2a_account_groups WHERE account_id = %lld", NULL, id)) {
        return -1;
    }
    for (j = 0; j < json_object_array_length(v); j++) {
        args[0] = id;
        args[1] = i64(a->r->pool, json_object_get_int64(json_object_array_get_idx(v, j)));
        if (s2a_db_exec(&a->db, a->r->pool,
                        "INSERT INTO s2a_account_groups (account_id, group_id) VALUES (%lld, %lld)"
                        " ON CONFLICT DO NOTHING",
                        2, args, NULL, &a->err)) {
            return -1;
        }
    }
    return 0;
}

/* The refresh token (sealed like the credential), the access token's end
 * and the fixed headers. */
static int set_account_extras(admin_ctx *a, const char *id)
{
    apr_int64_t n;
    json_object *v;
    if (a->in && json_object_object_get_ex(a->in, "headers", &v) &&
        exec_update(
            a, "UPDATE s2a_accounts SET headers = %s WHERE id = %lld",
            apr_pstrdup(a->r->pool, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)),
            id)) {
        return -1;
    }
    if (get_str(a, "refresh_token") &&
        exec_update(a, "UPDATE s2a_accounts SET refresh_token = %s WHERE id = %lld",
                    s2a_credential_seal(a->r->pool, a->sc, get_str(a, "refresh_token")), id)) {
        return -1;
    }
    if (get_int(a, "expires_at", &n) == 1 &&
        exec_update(a, "UPDATE s2a_accounts SET expires_at = %lld WHERE id = %lld",
                    i64(a->r->pool, n), id)) {
        return -1;
    }
    return 0;
}

/* custom_error_codes as stored: the array's text, "" for none (null or []). */
static const char *codes_text(admin_ctx *a)
{
    json_object *v;
    if (!a->in || !json_object_object_get_ex(a->in, "custom_error_codes", &v)) {
        return NULL;
    }
    if (!v || !json_object_array_length(v)) {
        return "";
    }
    return apr_pstrdup(a->r->pool, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

static const char *mapping_text(admin_ctx *a)
{
    json_object *v;
    if (a->in && json_object_object_get_ex(a->in, "model_mapping", &v)) {
        return apr_pstrdup(a->r->pool, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
    return NULL;
}

static int accounts_create(admin_ctx *a)
{
    const char *bad = account_fields_check(a, 1);
    const char *args[10], *mapping = mapping_text(a), *status = get_str(a, "status");
    apr_int64_t priority = 50, concurrency = 3, id;
    const char *sid;
    int ok;
    if (bad) {
        return s2a_send_error(a->r, 400, bad);
    }
    get_int(a, "priority", &priority);
    get_int(a, "concurrency", &concurrency);
    args[0] = get_str(a, "name");
    args[1] = get_str(a, "type");
    args[2] = s2a_credential_seal(a->r->pool, a->sc, get_str(a, "credential"));
    args[3] = get_str(a, "endpoint");
    args[4] = i64(a->r->pool, priority);
    args[5] = i64(a->r->pool, concurrency);
    args[6] = mapping ? mapping : "{}";
    args[7] = status ? status : "active";
    args[8] = i64(a->r->pool, apr_time_sec(apr_time_now()));
    args[9] = has(a, "schedulable") && !get_bool(a, "schedulable") ? "0" : "1";
    if (s2a_db_begin(&a->db) != 0) {
        return db_fail(a);
    }
    ok = s2a_db_insert(&a->db, a->r->pool,
                       "INSERT INTO s2a_accounts (name, type, credential, endpoint, priority,"
                       " concurrency, model_mapping, status, created_at, schedulable)"
                       " VALUES (%s, %s, %s, %s, %d, %d, %s, %s, %lld, %d)",
                       10, args, &id, &a->err) == 0;
    sid = i64(a->r->pool, id);
    ok = ok && set_groups(a, sid) == 0;
    ok = ok && (!codes_text(a) ||
                exec_update(a, "UPDATE s2a_accounts SET custom_error_codes = %s WHERE id = %lld",
                            codes_text(a), sid) == 0);
    ok = ok && set_account_extras(a, sid) == 0;
    s2a_db_end(&a->db, ok);
    if (!ok) {
        return db_fail(a);
    }
    s2a_bump(a->r->server, a->r->pool);
    return accounts_list(a, sid, 1);
}

/* Lifts an account's rests after 429/529 and, with `error`, its error
 * state (re-enabling it does both). 0 when the store failed. */
static int clear_state(admin_ctx *a, const char *id, int error)
{
    json_object *rows, *cred, *refreshable;
    const char *args[1] = {id}, *plain;
    int ok = 1;
    if (s2a_db_rows(&a->db, a->r->pool,
                    "SELECT credential, CASE WHEN refresh_token <> '' THEN 1 ELSE 0 END AS r"
                    " FROM s2a_accounts WHERE id = %lld",
                    "sb", 1, args, &rows, &a->err) != 0) {
        return ok;
    }
    if (one(rows) && json_object_object_get_ex(one(rows), "credential", &cred) &&
        json_object_object_get_ex(one(rows), "r", &refreshable) &&
        (plain = s2a_credential_open(a->r->pool, a->sc, json_object_get_string(cred))) &&
        s2a_g.store->ops->clear(s2a_g.store,
                                s2a_account_state_key(a->r->pool, a->sc, apr_atoi64(id),
                                                      json_object_get_boolean(refreshable), plain),
                                error) != APR_SUCCESS) {
        s2a_store_failed(a->r, "clearing an account's state");
        ok = 0;
    }
    json_object_put(rows);
    return ok;
}

static int store_fail(admin_ctx *a)
{
    return s2a_send_error(a->r, 503, "The shared state store cannot be reached; retry shortly");
}

static int accounts_patch(admin_ctx *a, const char *id)
{
    static const char *const strs[] = {"name", "type", "endpoint", "status"};
    const char *bad = account_fields_check(a, 0), *mapping = mapping_text(a);
    apr_int64_t n;
    int i;
    if (bad) {
        return s2a_send_error(a->r, 400, bad);
    }
    if (get_str(a, "credential") &&
        exec_update(a, "UPDATE s2a_accounts SET credential = %s WHERE id = %lld",
                    s2a_credential_seal(a->r->pool, a->sc, get_str(a, "credential")), id)) {
        return db_fail(a);
    }
    if (set_account_extras(a, id)) {
        return db_fail(a);
    }
    for (i = 0; i < 4; i++) {
        const char *v = get_str(a, strs[i]);
        if (v && exec_update(a,
                             apr_pstrcat(a->r->pool, "UPDATE s2a_accounts SET ", strs[i],
                                         " = %s WHERE id = %lld", NULL),
                             v, id)) {
            return db_fail(a);
        }
    }
    if (get_int(a, "priority", &n) == 1 &&
        exec_update(a, "UPDATE s2a_accounts SET priority = %d WHERE id = %lld", i64(a->r->pool, n),
                    id)) {
        return db_fail(a);
    }
    if (get_int(a, "concurrency", &n) == 1 &&
        exec_update(a, "UPDATE s2a_accounts SET concurrency = %d WHERE id = %lld",
                    i64(a->r->pool, n), id)) {
        return db_fail(a);
    }
    if (mapping &&
        exec_update(a, "UPDATE s2a_accounts SET model_mapping = %s WHERE id = %lld", mapping, id)) {
        return db_fail(a);
    }
    if (set_groups(a, id)) {
        return db_fail(a);
    }
    if (has(a, "schedulable") &&
        exec_update(a, "UPDATE s2a_accounts SET schedulable = %d WHERE id = %lld",
                    get_bool(a, "schedulable") ? "1" : "0", id)) {
        return db_fail(a);
    }
    if (codes_text(a) && exec_update(a,
                                     "UPDATE s2a_accounts SET custom_error_codes = %s"
                                     " WHERE id = %lld",
                                     codes_text(a), id)) {
        return db_fail(a);
    }
    if (get_bool(a, "clear_cooldown") == 1 && !clear_state(a, id, 0)) {
        return store_fail(a);
    }
    if (get_str(a, "status") && strcmp(get_str(a, "status"), "active") == 0) {
        /* re-enabling clears the error state and any cooldown */
        if (exec_update(a, "UPDATE s2a_accounts SET error_message = '' WHERE id = %lld", NULL,
                        id)) {
            return db_fail(a);
        }
        if (!clear_state(a, id, 1)) {
            return store_fail(a);
        }
    }
    s2a_bump(a->r->server, a->r->pool);
    return accounts_list(a, id, 0);
}

/* ---- subscriptions ---- */

#define SUB_COLUMNS                                                                                \
    "SELECT id, user_id, group_id, expires_at, status, daily_usage_nanousd, daily_start,"          \
    " weekly_usage_nanousd, weekly_start, monthly_usage_nanousd, monthly_start, created_at"

static int subs_list(admin_ctx *a, const char *id)
{
    apr_table_t *q = NULL;
    const char *args[1], *v, *sql;
    json_object *rows, *out;
    int n = 0;
    if (a->r->args) {
        ap_args_to_table(a->r, &q);
    }
    if (id) {
        args[n++] = id;
        sql = SUB_COLUMNS " FROM s2a_subscriptions WHERE id = %lld";
    } else if (q && (v = apr_table_get(q, "user_id"))) {
        if (!is_number(v)) {
            return s2a_send_error(a->r, 400, "user_id: a number");
        }
        args[n++] = v;
        sql = SUB_COLUMNS " FROM s2a_subscriptions WHERE user_id = %lld ORDER BY id";
    } else {
        sql = SUB_COLUMNS " FROM s2a_subscriptions ORDER BY id";
    }
    if (s2a_db_rows(&a->db, a->r->pool, sql, "iiiisiiiiiii", n, args, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    s2a_json_pooled(a->r->pool, rows);
    if (id) {
        return one(rows) ? s2a_send_json(a->r, a->r->method_number == M_GET ? 200 : 201, one(rows))
                         : s2a_send_error(a->r, 404, "No such subscription");
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", json_object_get(rows));
    return s2a_send_json(a->r, 200, out);
}

/* POST: {user_id, group_id, days}: a new subscription, or the running one
 * extended by that many days (from now if it had ended). */
static int subs_create(admin_ctx *a)
{
    apr_int64_t user, group, days, id = 0;
    int e;
    if (get_int(a, "user_id", &user) != 1 || get_int(a, "group_id", &group) != 1 ||
        get_int(a, "days", &days) != 1 || days < 1 || days > 36500) {
        return s2a_send_error(a->r, 400, "user_id, group_id and days (1 to 36500) are required");
    }
    if ((e = exists(a, "s2a_users", user)) <= 0 || (e = exists(a, "s2a_groups", group)) <= 0) {
        return e < 0 ? db_fail(a) : s2a_send_error(a->r, 404, "No such user or group");
    }
    if (s2a_db_subscription_extend(&a->db, a->r->pool, user, group, days, &id, &a->err) != 0) {
        return db_fail(a);
    }
    s2a_bump(a->r->server, a->r->pool);
    return subs_list(a, i64(a->r->pool, id));
}

/* PATCH: status (active or disabled) and expires_at (Unix seconds). */
static int subs_patch(admin_ctx *a, const char *id)
{
    const char *status = get_str(a, "status");
    apr_int64_t expires;
    int rc = get_int(a, "expires_at", &expires);
    if ((has(a, "status") && !valid_status(status)) || rc < 0 || (rc && expires < 0)) {
        return s2a_send_error(a->r, 400, "status active or disabled, expires_at Unix seconds");
    }
    if (status &&
        exec_update(a, "UPDATE s2a_subscriptions SET status = %s WHERE id = %lld", status, id)) {
        return db_fail(a);
    }
    if (rc && exec_update(a, "UPDATE s2a_subscriptions SET expires_at = %lld WHERE id = %lld",
                          i64(a->r->pool, expires), id)) {
        return db_fail(a);
    }
    s2a_bump(a->r->server, a->r->pool);
    return subs_list(a, id);
}

/* ---- redeem codes ---- */

#define CODE_COLUMNS                                                                               \
    "SELECT id, prefix, kind, amount_nanousd, group_id, days, used_by, used_at, created_at"

static int codes_list(admin_ctx *a)
{
    json_object *rows, *out;
    if (s2a_db_rows(&a->db, a->r->pool, CODE_COLUMNS " FROM s2a_redeem_codes ORDER BY id",
                    "issiiiiii", 0, NULL, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", rows);
    return s2a_send_json(a->r, 200, out);
}

/* POST {count, balance_usd} or {count, group_id, days}: the codes, shown this
 * once (the database keeps their hashes). */
static int codes_create(admin_ctx *a)
{
    apr_int64_t count = 1, amount = 0, group = 0, days = 0, id;
    int money = get_money(a, "balance", &amount), i, ok;
    const char *args[7];
    json_object *out, *codes;
    if (get_int(a, "count", &count) < 0 || count < 1 || count > 1000) {
        return s2a_send_error(a->r, 400, "count: 1 to 1000");
    }
    if (money < 0 || (money && amount <= 0) ||
        (!money && (get_int(a, "group_id", &group) != 1 || get_int(a, "days", &days) != 1 ||
                    days < 1 || days > 36500))) {
        return s2a_send_error(a->r, 400,
                              "either balance_usd (above 0) or group_id and days (1 to 36500)");
    }
    if (!money && (ok = exists(a, "s2a_groups", group)) <= 0) {
        return ok < 0 ? db_fail(a) : s2a_send_error(a->r, 404, "No such group");
    }
    if (s2a_db_begin(&a->db) != 0) {
        a->err = "begin failed";
        return db_fail(a);
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    codes = json_object_new_array();
    json_object_object_add(out, "codes", codes);
    ok = 1;
    for (i = 0; ok && i < count; i++) {
        char *code;
        ok = s2a_redeem_code_generate(a->r->pool, &code) == APR_SUCCESS;
        args[0] = ok ? s2a_key_hash(a->r->pool, code) : "";
        args[1] = ok ? s2a_key_prefix(a->r->pool, code) : "";
        args[2] = money ? "balance" : "subscription";
        args[3] = i64(a->r->pool, amount);
        args[4] = i64(a->r->pool, group);
        args[5] = i64(a->r->pool, days);
        args[6] = i64(a->r->pool, apr_time_sec(apr_time_now()));
        ok = ok && s2a_db_insert(&a->db, a->r->pool,
                                 "INSERT INTO s2a_redeem_codes (code_hash, prefix, kind,"
                                 " amount_nanousd, group_id, days, created_at)"
                                 " VALUES (%s, %s, %s, %lld, %lld, %d, %lld)",
                                 7, args, &id, &a->err) == 0;
        if (ok) {
            json_object_array_add(codes, json_object_new_string(code));
        }
    }
    if (s2a_db_end(&a->db, ok) != 0 || !ok) {
        return db_fail(a);
    }
    json_object_object_add(out, "kind", json_object_new_string(money ? "balance" : "subscription"));
    return s2a_send_json(a->r, 201, out);
}

/* ---- usage ---- */

/* The filters GET /admin/usage and its summary share: a WHERE clause with
 * its arguments (at most 7). NULL, or an error message for a 400. */
static const char *usage_where(admin_ctx *a, apr_table_t *q, const char **where, const char **args,
                               int *n)
{
    static const char *const params[] = {"user_id", "key_id", "account_id", "group_id",
                                         "from",    "to",     "before_id"};
    static const char *const conds[] = {"user_id = %lld",
                                        "api_key_id = %lld",
                                        "account_id = %lld",
                                        "group_id = %lld",
                                        "created_at >= %lld",
                                        "created_at < %lld",
                                        "(created_at, id) < (SELECT created_at, id FROM"
                                        " s2a_usage WHERE id = %lld)"};
    const char *v;
    size_t i;

    *where = "";
    *n = 0;
    for (i = 0; q && i < sizeof(params) / sizeof(params[0]); i++) {
        if (!(v = apr_table_get(q, params[i]))) {
            continue;
        }
        if (!is_number(v)) {
            return apr_pstrcat(a->r->pool, params[i], ": a number", NULL);
        }
        *where = apr_pstrcat(a->r->pool, *where, *n ? " AND " : " WHERE ", conds[i], NULL);
        args[(*n)++] = v;
    }
    if (q && (v = apr_table_get(q, "model"))) {
        if (!*v || strlen(v) > 127) {
            return "model: a model name";
        }
        *where = apr_pstrcat(a->r->pool, *where, *n ? " AND " : " WHERE ", "model = %s", NULL);
        args[(*n)++] = v;
    }
    return NULL;
}

static int usage_list(admin_ctx *a)
{
    apr_table_t *q = NULL;
    const char *args[9], *where, *bad;
    apr_int64_t limit;
    json_object *rows, *out;
    int n;

    if (a->r->args) {
        ap_args_to_table(a->r, &q);
    }
    if ((bad = usage_where(a, q, &where, args, &n))) {
        return s2a_send_error(a->r, 400, bad);
    }
    if ((limit = page_limit(q)) < 0) {
        return s2a_send_error(a->r, 400, "limit: 1 to 10000");
    }
    args[n++] = i64(a->r->pool, limit);
    if (s2a_db_rows(&a->db, a->r->pool,
                    apr_pstrcat(a->r->pool,
                                "SELECT id, request_id, attempt, user_id, api_key_id, account_id,"
                                " group_id, model, upstream_model, input_tokens, output_tokens,"
                                " cache_creation_tokens, cache_creation_1h_tokens,"
                                " cache_read_tokens, input_cost_nanousd, output_cost_nanousd,"
                                " cache_creation_cost_nanousd, cache_read_cost_nanousd,"
                                " total_cost_nanousd, actual_cost_nanousd, rate_multiplier_ppm,"
                                " billing_type, stream, status, outcome, duration_ms,"
                                " first_token_ms, created_at FROM s2a_usage",
                                where, " ORDER BY created_at DESC, id DESC LIMIT %d", NULL),
                    "isiiiiissiiiiiiiiiiiisbisiii", n, args, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "data", rows);
    return s2a_send_json(a->r, 200, out);
}

/* Renames a summary row's column `col` to the name of its grouping (`day`
 * also gets its `date`). */
static void summary_key(json_object *row, const char *col, const char *name)
{
    json_object *key;
    json_object_object_get_ex(row, col, &key);
    json_object_object_add(row, name, json_object_get(key));
    if (strcmp(name, "day") == 0) {
        char date[16];
        apr_time_exp_t tm;
        apr_size_t len;
        apr_time_exp_gmt(&tm, apr_time_from_sec(json_object_get_int64(key)));
        apr_strftime(date, &len, sizeof(date), "%Y-%m-%d", &tm);
        json_object_object_add(row, "date", json_object_new_string(date));
    }
    json_object_object_del(row, col);
}

/* GET /admin/usage/summary?by=day|model|account|key|user and the filters of
 * GET /admin/usage: sums per day (UTC) or per model, account, key or user;
 * with split= another of these, per pair (a chart's series per day). */
static int usage_summary(admin_ctx *a)
{
    static const char *const bys[][3] = {{"day", "(created_at / 86400) * 86400", "i"},
                                         {"model", "model", "s"},
                                         {"account", "account_id", "i"},
                                         {"key", "api_key_id", "i"},
                                         {"user", "user_id", "i"}};
    const size_t nbys = sizeof(bys) / sizeof(bys[0]);
    apr_table_t *q = NULL;
    const char *args[8], *where, *bad, *by, *split, *keys, *group;
    json_object *rows, *out;
    size_t i, k, s;
    int n;

    if (a->r->args) {
        ap_args_to_table(a->r, &q);
    }
    by = q ? apr_table_get(q, "by") : NULL;
    for (k = 0; by && k < nbys && strcmp(by, bys[k][0]) != 0; k++) {
    }
    if (!by || k == nbys) {
        return s2a_send_error(a->r, 400, "by: day, model, account, key or user");
    }
    split = apr_table_get(q, "split");
    for (s = 0; split && s < nbys && strcmp(split, bys[s][0]) != 0; s++) {
    }
    if (split && (s == nbys || s == k)) {
        return s2a_send_error(a->r, 400, "split: day, model, account, key or user, other than by");
    }
    if ((bad = usage_where(a, q, &where, args, &n))) {
        return s2a_send_error(a->r, 400, bad);
    }
    keys = split ? apr_pstrcat(a->r->pool, bys[k][1], " AS k, ", bys[s][1], " AS k2", NULL)
                 : apr_pstrcat(a->r->pool, bys[k][1], " AS k", NULL);
    group = split ? " GROUP BY k, k2 ORDER BY k, k2" : " GROUP BY k ORDER BY k";
    if (s2a_db_rows(&a->db, a->r->pool,
                    apr_pstrcat(a->r->pool, "SELECT ", keys,
                                ", COUNT(*) AS requests,"
                                " SUM(input_tokens) AS input_tokens,"
                                " SUM(output_tokens) AS output_tokens,"
                                " SUM(cache_creation_tokens) AS cache_creation_tokens,"
                                " SUM(cache_read_tokens) AS cache_read_tokens,"
                                " SUM(total_cost_nanousd) AS total_cost_nanousd,"
                                " SUM(actual_cost_nanousd) AS actual_cost_nanousd"
                                " FROM s2a_usage",
                                where, group, NULL),
                    apr_pstrcat(a->r->pool, bys[k][2], split ? bys[s][2] : "", "iiiiiii", NULL), n,
                    args, &rows, &a->err) != 0) {
        return db_fail(a);
    }
    s2a_json_pooled(a->r->pool, rows);
    for (i = 0; i < json_object_array_length(rows); i++) {
        json_object *row = json_object_array_get_idx(rows, i);
        summary_key(row, "k", bys[k][0]);
        if (split) {
            summary_key(row, "k2", bys[s][0]);
        }
    }
    out = s2a_json_pooled(a->r->pool, json_object_new_object());
    json_object_object_add(out, "by", json_object_new_string(bys[k][0]));
    if (split) {
        json_object_object_add(out, "split", json_object_new_string(bys[s][0]));
    }
    json_object_object_add(out, "data", json_object_get(rows));
    return s2a_send_json(a->r, 200, out);
}

/* ---- routing ---- */

static int ends_with(const char *s, const char *suffix)
{
    apr_size_t n = strlen(s), k = strlen(suffix);
    while (n > 1 && s[n - 1] == '/') {
        n--;
    }
    return n >= k && strncmp(s + n - k, suffix, k) == 0;
}

/* The last one or two path segments name the resource: ".../users" or
 * ".../users/12", wherever the admin location is mounted. */
static void route(request_rec *r, const char **res, const char **id)
{
    char *path = apr_pstrdup(r->pool, r->uri);
    apr_size_t n = strlen(path);
    char *last, *prev;
    while (n > 1 && path[n - 1] == '/') {
        path[--n] = '\0';
    }
    last = strrchr(path, '/');
    *res = last ? last + 1 : path;
    *id = NULL;
    if (last && is_number(last + 1)) {
        *last = '\0';
        prev = strrchr(path, '/');
        *id = last + 1;
        *res = prev ? prev + 1 : path;
    }
}

int s2a_admin_handler(request_rec *r)
{
    s2a_srv_conf *sc = s2a_server_conf(r->server);
    admin_ctx a;
    const char *res, *id;
    int get = r->method_number == M_GET, post = r->method_number == M_POST,
        patch = r->method_number == M_PATCH;

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
    if ((post || patch) && !s2a_read_json(r, &a.in)) {
        return s2a_send_error(r, 400, "The body must be a JSON object");
    }
    if (!s2a_dbc_acquire(r, &a.db)) {
        return s2a_send_error(r, 500, "The gateway cannot reach its database");
    }
    if (!s2a_g.store || !sc->catalog) {
        return s2a_send_error(r, 500,
                              "The gateway did not start in this process (see the error log)");
    }
    route(r, &res, &id);
    if (patch && id) {
        static const char *const tables[][2] = {{"users", "s2a_users"},
                                                {"groups", "s2a_groups"},
                                                {"keys", "s2a_api_keys"},
                                                {"accounts", "s2a_accounts"},
                                                {"subscriptions", "s2a_subscriptions"}};
        int i;
        for (i = 0; i < 5; i++) {
            if (strcmp(res, tables[i][0]) == 0) {
                int e = exists(&a, tables[i][1], apr_atoi64(id));
                if (e <= 0) {
                    return e < 0 ? db_fail(&a) : s2a_send_error(r, 404, "No such resource");
                }
            }
        }
    }
    if (strcmp(res, "users") == 0) {
        return get           ? users_list(&a, id)
               : post && !id ? users_create(&a)
               : patch && id ? users_patch(&a, id)
                             : s2a_send_error(r, 405, "Method not allowed");
    }
    if (strcmp(res, "groups") == 0) {
        return get           ? groups_list(&a, id)
               : post && !id ? groups_create(&a)
               : patch && id ? groups_patch(&a, id)
                             : s2a_send_error(r, 405, "Method not allowed");
    }
    if (strcmp(res, "keys") == 0) {
        return get           ? keys_list(&a, id, NULL)
               : post && !id ? keys_create(&a)
               : patch && id ? keys_patch(&a, id)
                             : s2a_send_error(r, 405, "Method not allowed");
    }
    if (strcmp(res, "accounts") == 0) {
        return get           ? accounts_list(&a, id, 0)
               : post && !id ? accounts_create(&a)
               : patch && id ? accounts_patch(&a, id)
                             : s2a_send_error(r, 405, "Method not allowed");
    }
    if (strcmp(res, "subscriptions") == 0) {
        return get           ? subs_list(&a, id)
               : post && !id ? subs_create(&a)
               : patch && id ? subs_patch(&a, id)
                             : s2a_send_error(r, 405, "Method not allowed");
    }
    if (strcmp(res, "redeem_codes") == 0 && !id) {
        return get    ? codes_list(&a)
               : post ? codes_create(&a)
                      : s2a_send_error(r, 405, "Method not allowed");
    }
    if (strcmp(res, "usage") == 0 && !id) {
        return get ? usage_list(&a) : s2a_send_error(r, 405, "Method not allowed");
    }
    if (strcmp(res, "summary") == 0 && !id && ends_with(r->uri, "/usage/summary")) {
        return get ? usage_summary(&a) : s2a_send_error(r, 405, "Method not allowed");
    }
    if (strcmp(res, "balance_log") == 0 && !id) {
        return get ? balance_log_list(&a) : s2a_send_error(r, 405, "Method not allowed");
    }
    return s2a_send_error(r, 404, "No such admin resource");
}
