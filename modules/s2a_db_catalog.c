/* Keys and accounts as requests read them: see s2a_db_catalog.h. */
#include <string.h>

#include "s2a_db_catalog.h"
#include "s2a_vertex_key.h"
#include "s2a_key_limits.h"

static const char *const key_lookup_sql =
    "SELECT k.id, k.user_id, k.group_id, k.expires_at, u.balance_nanousd,"
    " g.rate_multiplier_ppm, k.status, u.status, k.concurrency, k.rpm_limit,"
    " u.concurrency, g.billing_type, COALESCE(s.id, 0), COALESCE(s.expires_at, 0),"
    " COALESCE(s.status, ''), g.daily_limit_nanousd, g.weekly_limit_nanousd,"
    " g.monthly_limit_nanousd, COALESCE(s.daily_usage_nanousd, 0),"
    " COALESCE(s.weekly_usage_nanousd, 0), COALESCE(s.monthly_usage_nanousd, 0),"
    " COALESCE(s.daily_start, 0), COALESCE(s.weekly_start, 0),"
    " COALESCE(s.monthly_start, 0), g.name, k.budget_nanousd, k.spent_nanousd,"
    " k.daily_limit_nanousd, k.weekly_limit_nanousd, k.monthly_limit_nanousd,"
    " k.daily_usage_nanousd, k.weekly_usage_nanousd, k.monthly_usage_nanousd,"
    " k.daily_start, k.weekly_start, k.monthly_start, k.models, g.server_tools,"
    " COALESCE(s.daily_runs, 0), COALESCE(s.weekly_runs, 0), COALESCE(s.monthly_runs, 0),"
    " k.daily_runs, k.weekly_runs, k.monthly_runs"
    " FROM s2a_api_keys k"
    " JOIN s2a_users u ON u.id = k.user_id JOIN s2a_groups g ON g.id = k.group_id"
    " LEFT JOIN s2a_subscriptions s ON s.user_id = k.user_id AND s.group_id = k.group_id"
    " WHERE k.key_hash = %s";

int s2a_db_key_lookup(s2a_dbc *c, apr_pool_t *p, const char *key_hash, s2a_key_rec *out)
{
    const char *err = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0, i;
    if (s2a_db_select(c, p, "s2a_key_lookup", key_lookup_sql, 1, &key_hash, &res, &err) != 0) {
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        out->id = s2a_db_i64(c, row, 0);
        out->user_id = s2a_db_i64(c, row, 1);
        out->group_id = s2a_db_i64(c, row, 2);
        out->expires_at = s2a_db_i64(c, row, 3);
        out->balance_nano = s2a_db_i64(c, row, 4);
        out->multiplier_ppm = s2a_db_i64(c, row, 5);
        out->active = strcmp(s2a_db_str(c, p, row, 6), "active") == 0 &&
                      strcmp(s2a_db_str(c, p, row, 7), "active") == 0;
        out->concurrency = (int)s2a_db_i64(c, row, 8);
        out->rpm_limit = (int)s2a_db_i64(c, row, 9);
        out->user_concurrency = (int)s2a_db_i64(c, row, 10);
        out->subscription = strcmp(s2a_db_str(c, p, row, 11), "subscription") == 0;
        out->sub_id = s2a_db_i64(c, row, 12);
        out->sub_expires_at = s2a_db_i64(c, row, 13);
        out->sub_active = strcmp(s2a_db_str(c, p, row, 14), "active") == 0;
        apr_cpystrn(out->group_name, s2a_db_str(c, p, row, 24), sizeof(out->group_name));
        for (i = 0; i < S2A_WINDOWS; i++) {
            out->windows.limit[i] = s2a_db_i64(c, row, 15 + i);
            out->windows.usage[i] = s2a_db_i64(c, row, 18 + i);
            out->windows.start[i] = s2a_db_i64(c, row, 21 + i);
            out->budget_windows.limit[i] = s2a_db_i64(c, row, 27 + i);
            out->budget_windows.usage[i] = s2a_db_i64(c, row, 30 + i);
            out->budget_windows.start[i] = s2a_db_i64(c, row, 33 + i);
            out->windows.runs[i] = s2a_db_i64(c, row, 38 + i);
            out->budget_windows.runs[i] = s2a_db_i64(c, row, 41 + i);
        }
        out->server_tools = s2a_db_i64(c, row, 37) != 0;
        out->budget = s2a_db_i64(c, row, 25);
        out->spent = s2a_db_i64(c, row, 26);
        if (!s2a_key_models_parse(s2a_db_str(c, p, row, 36), out->models, &err)) {
            /* written by the admin API, which checks it: a list spoiled
             * outside it allows nothing rather than everything */
            apr_cpystrn(out->models, "\n", sizeof(out->models));
        }
        found = 1;
    }
    return found;
}

static apr_hash_t *parse_mapping(apr_pool_t *p, const char *text)
{
    apr_hash_t *h = apr_hash_make(p);
    json_object *o = json_tokener_parse(text);
    if (o && json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            if (json_object_is_type(v, json_type_string)) {
                apr_hash_set(h, apr_pstrdup(p, k), APR_HASH_KEY_STRING,
                             apr_pstrdup(p, json_object_get_string(v)));
            }
        }
    }
    json_object_put(o);
    return h;
}

/* {"name": "value", ...} -> a table; NULL when empty. */
static apr_table_t *parse_headers(apr_pool_t *p, const char *text)
{
    apr_hash_t *h = parse_mapping(p, text);
    apr_hash_index_t *hi;
    apr_table_t *t;
    if (!apr_hash_count(h)) {
        return NULL;
    }
    t = apr_table_make(p, (int)apr_hash_count(h));
    for (hi = apr_hash_first(p, h); hi; hi = apr_hash_next(hi)) {
        apr_table_setn(t, apr_hash_this_key(hi), apr_hash_this_val(hi));
    }
    return t;
}

/* "[429, 529]" -> the statuses; NULL for "" or anything not such an array. */
static apr_array_header_t *parse_codes(apr_pool_t *p, const char *text)
{
    apr_array_header_t *codes = NULL;
    json_object *o = *text ? json_tokener_parse(text) : NULL;
    size_t i;
    if (o && json_object_is_type(o, json_type_array) && json_object_array_length(o)) {
        codes = apr_array_make(p, (int)json_object_array_length(o), sizeof(int));
        for (i = 0; i < json_object_array_length(o); i++) {
            APR_ARRAY_PUSH(codes, int) = json_object_get_int(json_object_array_get_idx(o, i));
        }
    }
    json_object_put(o);
    return codes;
}

/* A cloud account's credential read (`token`: Vertex's access token as
 * stored, opened; NULL when it does not open). */
static void cloud_account(apr_pool_t *p, s2a_account *a, const char *token)
{
    s2a_vertex_key key;
    const char *err = NULL;
    if (a->cloud == S2A_CLOUD_VERTEX) {
        if (s2a_vertex_key_read(p, a->credential, strlen(a->credential), &key, &err) != 0) {
            a->problem = apr_pstrcat(p, "its service-account key: ", err, NULL);
            return;
        }
        if (!*a->project) {
            a->project = key.project_id;
        }
        /* the token is minted again when it does not open */
        a->credential = token ? token : "";
        a->refreshable = 1;
        if (!s2a_cloud_name_ok(a->project)) {
            a->problem = "its project is not a project id";
        }
    } else {
        a->bedrock = apr_palloc(p, sizeof(*a->bedrock));
        if (s2a_bedrock_credential_read(p, a->credential, a->bedrock, &err) != 0) {
            a->problem = apr_pstrcat(p, "its credential: ", err, NULL);
        }
    }
    if (!a->problem && !s2a_cloud_name_ok(a->region)) {
        a->problem = "its region is not a region name";
    }
}

apr_status_t s2a_db_accounts_load(s2a_dbc *c, apr_pool_t *p, const s2a_db_opener *opener,
                                  apr_array_header_t **out, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *arr = apr_array_make(p, 16, sizeof(s2a_account));
    apr_hash_t *by_id = apr_hash_make(p);
    int i;

    if (apr_dbd_select(c->driver, p, c->handle, &res,
                       "SELECT id, name, type, credential, endpoint, priority, concurrency,"
                       " model_mapping, status, schedulable, custom_error_codes,"
                       " CASE WHEN refresh_token <> '' THEN 1 ELSE 0 END, expires_at, headers,"
                       " egress, region, project, access_token FROM s2a_accounts ORDER BY id",
                       1) != 0) {
        *err = apr_dbd_error(c->driver, c->handle, 0);
        return APR_EGENERAL;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        s2a_account *a = apr_array_push(arr);
        const char *headers, *egress;
        a->id = s2a_db_i64(c, row, 0);
        a->name = s2a_db_str(c, p, row, 1);
        a->type = s2a_db_str(c, p, row, 2);
        a->credential = opener->open(opener->baton, p, a->id, s2a_db_str(c, p, row, 3));
        a->endpoint = s2a_db_str(c, p, row, 4);
        a->priority = (int)s2a_db_i64(c, row, 5);
        a->concurrency = (int)s2a_db_i64(c, row, 6);
        a->mapping = parse_mapping(p, s2a_db_str(c, p, row, 7));
        a->status = s2a_db_str(c, p, row, 8);
        a->schedulable = s2a_db_i64(c, row, 9) != 0;
        a->error_codes = parse_codes(p, s2a_db_str(c, p, row, 10));
        a->refreshable = s2a_db_i64(c, row, 11) != 0;
        a->expires_at = s2a_db_i64(c, row, 12);
        headers = opener->open(opener->baton, p, a->id, s2a_db_str(c, p, row, 13));
        a->headers = headers ? parse_headers(p, headers) : NULL;
        egress = opener->open(opener->baton, p, a->id, s2a_db_str(c, p, row, 14));
        a->egress = egress && *egress ? egress : NULL;
        if (!headers || !egress) {
            a->credential = NULL;
        }
        a->cloud = s2a_cloud_of_type(a->type);
        a->region = s2a_db_str(c, p, row, 15);
        a->project = s2a_db_str(c, p, row, 16);
        if (a->cloud != S2A_CLOUD_NONE && a->credential) {
            cloud_account(p, a, opener->open(opener->baton, p, a->id, s2a_db_str(c, p, row, 17)));
        }
        a->active =
            strcmp(a->status, "active") == 0 && a->schedulable && a->credential && !a->problem;
        a->group_ids = apr_array_make(p, 2, sizeof(apr_int64_t));
    }
    for (i = 0; i < arr->nelts; i++) {
        s2a_account *a = &APR_ARRAY_IDX(arr, i, s2a_account);
        apr_hash_set(by_id, &a->id, sizeof(a->id), a);
    }
    res = NULL;
    row = NULL;
    if (apr_dbd_select(c->driver, p, c->handle, &res,
                       "SELECT account_id, group_id FROM s2a_account_groups", 1) != 0) {
        *err = apr_dbd_error(c->driver, c->handle, 0);
        return APR_EGENERAL;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        apr_int64_t aid = s2a_db_i64(c, row, 0);
        s2a_account *a = apr_hash_get(by_id, &aid, sizeof(aid));
        if (a) {
            APR_ARRAY_PUSH(a->group_ids, apr_int64_t) = s2a_db_i64(c, row, 1);
        }
    }
    *out = arr;
    return APR_SUCCESS;
}

apr_status_t s2a_db_account_error(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char *message,
                                  const char **err)
{
    const char *args[2] = {message, S2A_DB_I64(p, id)};
    return s2a_db_query(c, p, "s2a_account_error",
                        "UPDATE s2a_accounts SET status = 'error', error_message = %s"
                        " WHERE id = %lld",
                        2, args, NULL, err) == 0
               ? APR_SUCCESS
               : APR_EGENERAL;
}
