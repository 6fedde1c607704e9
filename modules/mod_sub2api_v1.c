/* What clients call besides /v1/messages: GET /v1/usage, the key's own
 * standing, POST /v1/redeem, a redeem code for the key's user, and GET
 * /v1/models[/{id}], the models the key's group may use. */
#include <http_protocol.h>
#include <http_request.h>
#include <util_script.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_keys.h"
#include "s2a_key_limits.h"
#include "s2a_models.h"

/* USD as a JSON number written from its exact decimal text. */
static json_object *usd(apr_pool_t *p, apr_int64_t nano)
{
    return json_object_new_double_s((double)nano / 1e9, s2a_usd_format(p, nano));
}

/* The method the endpoint takes, and the key the gateway's fixups found
 * (these handlers serve only what fixups hand them). */
static int admit(request_rec *r, int method, const char *name, s2a_key_rec *key,
                 const char **key_hash)
{
    s2a_request *q = s2a_request_of(r);
    if (r->method_number != method) {
        ap_allow_methods(r, REPLACE_ALLOW, name, NULL);
        return s2a_fail(r, HTTP_METHOD_NOT_ALLOWED,
                        apr_psprintf(r->pool, "Use %s for %s", name, r->uri));
    }
    if (!q || !q->key.id) {
        return s2a_fail(r, HTTP_NOT_FOUND,
                        apr_psprintf(r->pool, "%s %s is not served here", r->method, r->uri));
    }
    *key = q->key;
    *key_hash = q->key_hash;
    return OK;
}

static int answer(request_rec *r, json_object *o)
{
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return s2a_send_json(r, HTTP_OK, s2a_json_pooled(r->pool, o));
}

static int usage_handler(request_rec *r)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), reset, left, budget;
    const char *key_hash;
    s2a_key_rec key;
    json_object *o;
    int rc, valid;

    if ((rc = admit(r, M_GET, "GET", &key, &key_hash)) != OK) {
        return rc;
    }
    /* the standing as the database has it now, not as the key cache last
     * read it; the cached one when the database is away */
    {
        s2a_dbc c;
        void *h;
        s2a_key_rec fresh;
        if (s2a_dbc_open(r->pool, r->server, &c, &h)) {
            if (s2a_db_key_lookup(&c, r->pool, key_hash, &fresh) == 1) {
                key = fresh;
            }
            s2a_dbc_close(r->server, h);
        }
    }
    o = json_object_new_object();
    if (key.subscription) {
        valid = key.sub_id && key.sub_active && key.sub_expires_at > now &&
                s2a_windows_exhausted(&key.windows, now, &reset) < 0;
        /* the least allowance left in a window with a limit */
        left = s2a_windows_left(&key.windows, now);
    } else {
        valid = key.balance_nano > 0;
        left = key.balance_nano;
    }
    /* the key's own budget narrows both */
    valid = valid && s2a_key_budget_used_up(&key, now, &reset) < 0;
    budget = s2a_key_budget_left(&key, now);
    if (budget >= 0 && (left < 0 || budget < left)) {
        left = budget;
    }
    json_object_object_add(o, "isValid", json_object_new_boolean(valid));
    json_object_object_add(o, "planName", json_object_new_string(key.group_name));
    json_object_object_add(o, "remaining",
                           left < 0 && key.subscription ? NULL : usd(r->pool, left));
    if (key.subscription) {
        json_object_object_add(o, "expiresAt", json_object_new_int64(key.sub_expires_at));
    }
    json_object_object_add(o, "unit", json_object_new_string("USD"));
    return answer(r, o);
}

static int redeem_handler(request_rec *r)
{
    s2a_srv_conf *sc = s2a_server_conf(r->server);
    const char *key_hash, *code = NULL, *err = NULL, *secret;
    json_object *in = NULL, *v, *o;
    s2a_key_rec key;
    s2a_redeemed got;
    s2a_dbc c;
    void *h;
    int rc;

    if ((rc = admit(r, M_POST, "POST", &key, &key_hash)) != OK) {
        return rc;
    }
    if (s2a_read_json(r, &in) && in && json_object_object_get_ex(in, "code", &v) &&
        json_object_is_type(v, json_type_string)) {
        code = json_object_get_string(v);
    }
    if (!code || !*code) {
        return s2a_fail(r, HTTP_BAD_REQUEST, "code: the redeem code, a string");
    }
    if (!s2a_dbc_open(r->pool, r->server, &c, &h)) {
        return s2a_no_database(r);
    }
    rc = s2a_db_redeem(&c, r->pool, s2a_key_hash(r->pool, code), key.user_id, &got, &err);
    secret = rc == 1 && !got.subscription ? s2a_secret(r->pool, r->server, sc, &c) : NULL;
    s2a_dbc_close(r->server, h);
    if (rc == -2) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, S2ALOGNO(0210) "redeem: %s", err);
        return s2a_no_database(r);
    }
    if (rc == 0) {
        return s2a_fail(r, HTTP_NOT_FOUND, "No such redeem code");
    }
    if (rc == -1) {
        return s2a_fail(r, HTTP_BAD_REQUEST, "This redeem code was used already");
    }
    if (secret) {
        /* requests charge the store's figure: it brings the new balance */
        s2a_g.store->ops->forget_balance(s2a_g.store,
                                         s2a_state_key_user(r->pool, secret, key.user_id));
    }
    s2a_bump(r->server, r->pool);
    o = json_object_new_object();
    json_object_object_add(o, "redeemed", json_object_new_boolean(1));
    json_object_object_add(o, "kind",
                           json_object_new_string(got.subscription ? "subscription" : "balance"));
    if (got.subscription) {
        json_object_object_add(o, "group_id", json_object_new_int64(got.group_id));
        json_object_object_add(o, "days", json_object_new_int64(got.days));
    } else {
        json_object_object_add(o, "amount", usd(r->pool, got.amount));
        json_object_object_add(o, "unit", json_object_new_string("USD"));
    }
    return answer(r, o);
}

static int models_handler(request_rec *r)
{
    s2a_srv_conf *sc = s2a_server_conf(r->server);
    const char *key_hash, *one = s2a_endpoint_model_id(r->uri), *v;
    apr_array_header_t *ids;
    apr_table_t *args;
    s2a_key_rec key;
    int rc, i, limit = S2A_MODELS_DEFAULT_LIMIT;

    if ((rc = admit(r, M_GET, "GET", &key, &key_hash)) != OK) {
        return rc;
    }
    if (!(ids = s2a_catalog_models(r, sc, key.group_id))) {
        return s2a_no_database(r);
    }
    ids = s2a_key_models_only(r->pool, ids, &key);
    s2a_models_sort(ids);
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (one) {
        for (i = 0; i < ids->nelts; i++) {
            if (strcmp(APR_ARRAY_IDX(ids, i, const char *), one) == 0) {
                ap_rputs(s2a_model_json(r->pool, one), r);
                return OK;
            }
        }
        return s2a_fail(r, HTTP_NOT_FOUND,
                        apr_psprintf(r->pool, "model: %s is not served to this key", one));
    }
    ap_args_to_table(r, &args);
    if ((v = apr_table_get(args, "limit")) != NULL) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > S2A_MODELS_MAX_LIMIT) {
            return s2a_fail(
                r, HTTP_BAD_REQUEST,
                apr_psprintf(r->pool, "limit: a number from 1 to %d", S2A_MODELS_MAX_LIMIT));
        }
        limit = (int)n;
    }
    ap_rputs(s2a_models_page(r->pool, ids, apr_table_get(args, "after_id"),
                             apr_table_get(args, "before_id"), limit),
             r);
    return OK;
}

int s2a_v1_handler(request_rec *r)
{
    if (!r->handler) {
        return DECLINED;
    }
    if (strcmp(r->handler, S2A_USAGE_HANDLER) == 0) {
        return usage_handler(r);
    }
    if (strcmp(r->handler, S2A_REDEEM_HANDLER) == 0) {
        return redeem_handler(r);
    }
    if (strcmp(r->handler, S2A_MODELS_HANDLER) == 0) {
        return models_handler(r);
    }
    return DECLINED;
}
