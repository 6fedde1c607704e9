/* The admin API's resources: a body is checked whole (wrong types, numbers
 * out of range or beyond 64 bits, control characters, unknown names), and a
 * change becomes one INSERT or one UPDATE whose columns come from the
 * description only. */
#include <stdlib.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "s2a_admin.h"
#include "s2a_test.h"

static apr_pool_t *pool;

/* The message of checking `json` (NULL when it passes), the change in *ch. */
static const char *check(const s2a_admin_resource *res, const char *json, int create,
                         s2a_admin_change *ch)
{
    json_object *body = json ? json_tokener_parse(json) : NULL;
    const char *why;
    if (json && !body) {
        fprintf(stderr, "not JSON: %s\n", json);
        S2A_CHECK(0);
    }
    why = s2a_admin_check(pool, res, body, create, ch);
    /* values keep no reference into the body */
    json_object_put(body);
    return why;
}

static const char *passes(const s2a_admin_resource *res, const char *json, int create,
                          s2a_admin_change *ch)
{
    const char *why = check(res, json, create, ch);
    if (why) {
        fprintf(stderr, "refused %s: %s\n", json, why);
    }
    S2A_CHECK(why == NULL);
    return why;
}

static void refused(const s2a_admin_resource *res, const char *json, int create,
                    const char *message)
{
    s2a_admin_change ch;
    const char *why = check(res, json, create, &ch);
    S2A_CHECK_STR(why, message);
}

static apr_int64_t number_of(const s2a_admin_change *ch, const char *name)
{
    const s2a_admin_value *v = s2a_admin_value_of(ch, name);
    return v ? v->number : -12345;
}

static const char *text_of(const s2a_admin_change *ch, const char *name)
{
    const s2a_admin_value *v = s2a_admin_value_of(ch, name);
    return v ? v->text : NULL;
}

static void test_users(void)
{
    s2a_admin_change ch;
    s2a_admin_stmt st;

    passes(&s2a_admin_users, "{\"name\":\"alice\",\"balance_usd\":\"12.345678901\"}", 1, &ch);
    S2A_CHECK_INT(number_of(&ch, "balance"), 12345678901LL);
    s2a_admin_insert(pool, &ch, 1700000000, &st);
    /* the balance goes through the balance log, not the INSERT */
    S2A_CHECK_STR(st.sql, "INSERT INTO s2a_users (name, created_at) VALUES (%s, %lld)");
    S2A_CHECK_INT(st.nargs, 2);
    S2A_CHECK_STR(st.args[0], "alice");
    S2A_CHECK_STR(st.args[1], "1700000000");

    refused(&s2a_admin_users, "{}", 1, "name: a non-empty string is required");
    refused(&s2a_admin_users, NULL, 1, "name: a non-empty string is required");
    refused(&s2a_admin_users, "{\"name\":\"\"}", 1, "name: a non-empty string is required");
    refused(&s2a_admin_users, "{\"name\":7}", 1, "name: a non-empty string is required");
    refused(&s2a_admin_users, "{\"name\":null}", 1, "name: a non-empty string is required");
    refused(&s2a_admin_users, "{\"name\":\"a\\r\\nb\"}", 1,
            "name: control characters are not allowed");
    refused(&s2a_admin_users, "{\"name\":\"a\\u0000b\"}", 1,
            "name: control characters are not allowed");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"status\":\"frozen\"}", 1,
            "status: active or disabled");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"status\":\"active\\u0000x\"}", 1,
            "status: active or disabled");
    refused(&s2a_admin_users, "[1]", 1, "The body must be a JSON object");
    {
        /* characters, not bytes: 255 two-byte letters pass, 256 letters do not */
        char *name = apr_palloc(pool, 2 * 256 + 1), *json;
        int i;
        for (i = 0; i < 255; i++) {
            memcpy(name + 2 * i, "\xc3\xa9", 2);
        }
        name[510] = '\0';
        json = apr_psprintf(pool, "{\"name\":\"%s\"}", name);
        passes(&s2a_admin_users, json, 1, &ch);
        json = apr_psprintf(pool, "{\"name\":\"%se\"}", name);
        refused(&s2a_admin_users, json, 1, "name: at most 255 characters");
    }

    /* integers: only JSON integers, in range, never beyond 64 bits */
    refused(&s2a_admin_users, "{\"name\":\"x\",\"concurrency\":\"5\"}", 1,
            "concurrency: a whole number from 0 (no limit)");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"concurrency\":5.0}", 1,
            "concurrency: a whole number from 0 (no limit)");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"concurrency\":-1}", 1,
            "concurrency: a whole number from 0 (no limit)");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"concurrency\":1000001}", 1,
            "concurrency: a whole number from 0 (no limit)");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"concurrency\":99999999999999999999}", 1,
            "concurrency: a whole number from 0 (no limit)");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"concurrency\":true}", 1,
            "concurrency: a whole number from 0 (no limit)");

    /* money: exact decimals, _nanousd first, nothing beyond a billion USD */
    passes(&s2a_admin_users, "{\"name\":\"x\",\"balance_usd\":0.25}", 1, &ch);
    S2A_CHECK_INT(number_of(&ch, "balance"), 250000000);
    passes(&s2a_admin_users, "{\"name\":\"x\",\"balance_usd\":\"ten\",\"balance_nanousd\":-5}", 1,
           &ch);
    S2A_CHECK_INT(number_of(&ch, "balance"), -5);
    refused(&s2a_admin_users, "{\"name\":\"x\",\"balance_usd\":\"ten\"}", 1,
            "balance_usd: a decimal amount is required");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"balance_usd\":\"1\\u00002\"}", 1,
            "balance_usd: a decimal amount is required");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"balance_usd\":1e400}", 1,
            "balance_usd: a decimal amount is required");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"balance_usd\":\"1000000001\"}", 1,
            "balance_usd: a decimal amount is required");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"balance_nanousd\":9223372036854775807}", 1,
            "balance_usd: a decimal amount is required");
    refused(&s2a_admin_users, "{\"name\":\"x\",\"balance_nanousd\":\"5\"}", 1,
            "balance_usd: a decimal amount is required");

    /* unknown names, and names a body may not set, never reach a statement */
    passes(&s2a_admin_users,
           "{\"name\":\"x\",\"id\":5,\"created_at\":1,\"balance_nanousd = 0; --\":1,"
           "\"add_balance_usd\":\"3\",\"error_message\":\"e\"}",
           1, &ch);
    S2A_CHECK(s2a_admin_value_of(&ch, "add_balance") == NULL);
    s2a_admin_insert(pool, &ch, 1, &st);
    S2A_CHECK_STR(st.sql, "INSERT INTO s2a_users (name, created_at) VALUES (%s, %lld)");

    /* a PATCH: one UPDATE of the columns, in the order of the description;
     * the balance fields and the log's actor stay out of it */
    passes(&s2a_admin_users,
           "{\"add_balance_usd\":\"-0.25\",\"reason\":\"refund\",\"concurrency\":2,"
           "\"status\":\"disabled\",\"name\":\"bob\",\"balance_usd\":\"1\"}",
           0, &ch);
    S2A_CHECK_INT(ch.values->nelts, 6);
    S2A_CHECK_INT(s2a_admin_update(pool, &ch, 42, &st), 1);
    S2A_CHECK_STR(st.sql, "UPDATE s2a_users SET name = %s, status = %s, concurrency = %lld"
                          " WHERE id = %lld");
    S2A_CHECK_INT(st.nargs, 4);
    S2A_CHECK_STR(st.args[2], "2");
    S2A_CHECK_STR(st.args[3], "42");
    S2A_CHECK_INT(number_of(&ch, "add_balance"), -250000000);
    S2A_CHECK_STR(text_of(&ch, "reason"), "refund");
    passes(&s2a_admin_users, "{\"add_balance_nanousd\":7,\"actor\":\"\"}", 0, &ch);
    S2A_CHECK_INT(s2a_admin_update(pool, &ch, 42, &st), 0);
    passes(&s2a_admin_users, NULL, 0, &ch);
    S2A_CHECK_INT(ch.values->nelts, 0);
    refused(&s2a_admin_users, "{\"name\":\"\"}", 0, "name: a non-empty string is required");
    refused(&s2a_admin_users, "{\"actor\":5}", 0,
            "actor: a string of at most 100 characters, reason: at most 500");
    refused(&s2a_admin_users, "{\"add_balance_usd\":\"1\",\"reason\":\"why\\nnot\"}", 0,
            "reason: control characters are not allowed");
    /* the last field decides, and the whole body is refused */
    refused(&s2a_admin_users, "{\"name\":\"ok\",\"status\":\"active\",\"add_balance_usd\":\"x\"}",
            0, "add_balance_usd: a decimal amount is required");
}

static void test_groups(void)
{
    s2a_admin_change ch;
    s2a_admin_stmt st;
    json_object *row;

    passes(&s2a_admin_groups,
           "{\"name\":\"g\",\"rate_multiplier\":0.8,\"billing_type\":\"subscription\","
           "\"daily_limit_usd\":\"0.01\",\"monthly_limit_nanousd\":5}",
           1, &ch);
    S2A_CHECK_INT(number_of(&ch, "rate_multiplier"), 800000);
    S2A_CHECK_INT(number_of(&ch, "daily_limit"), 10000000);
    s2a_admin_insert(pool, &ch, 7, &st);
    S2A_CHECK_STR(st.sql, "INSERT INTO s2a_groups (name, rate_multiplier_ppm, billing_type,"
                          " daily_limit_nanousd, monthly_limit_nanousd, created_at)"
                          " VALUES (%s, %lld, %s, %lld, %lld, %lld)");
    refused(&s2a_admin_groups, "{\"name\":\"g\",\"rate_multiplier\":\"-1\"}", 1,
            "rate_multiplier: a positive decimal is required, at most 1000");
    refused(&s2a_admin_groups, "{\"name\":\"g\",\"rate_multiplier\":\"0\"}", 1,
            "rate_multiplier: a positive decimal is required, at most 1000");
    refused(&s2a_admin_groups, "{\"name\":\"g\",\"rate_multiplier\":\"1000.000001\"}", 1,
            "rate_multiplier: a positive decimal is required, at most 1000");
    refused(&s2a_admin_groups, "{\"name\":\"g\",\"billing_type\":\"credit\"}", 1,
            "billing_type: balance or subscription");
    refused(&s2a_admin_groups, "{\"name\":\"g\",\"weekly_limit_usd\":\"-1\"}", 1,
            "weekly_limit_usd: an amount of 0 or more (0: no limit)");

    /* answers show money in USD too, and the multiplier as a decimal */
    row = json_tokener_parse("{\"id\":1,\"rate_multiplier_ppm\":1500000,"
                             "\"daily_limit_nanousd\":10000000,\"weekly_limit_nanousd\":0}");
    s2a_admin_shape(pool, &s2a_admin_groups, row, 0);
    S2A_CHECK_STR(json_object_get_string(json_object_object_get(row, "rate_multiplier")), "1.5");
    S2A_CHECK_STR(json_object_get_string(json_object_object_get(row, "daily_limit_usd")), "0.01");
    S2A_CHECK_STR(json_object_get_string(json_object_object_get(row, "weekly_limit_usd")), "0");
    S2A_CHECK(json_object_object_get(row, "monthly_limit_usd") == NULL);
    json_object_put(row);
    row = json_tokener_parse("{\"balance_nanousd\":-5}");
    s2a_admin_shape(pool, &s2a_admin_users, row, 0);
    S2A_CHECK_STR(json_object_get_string(json_object_object_get(row, "balance_usd")),
                  "-0.000000005");
    json_object_put(row);
}

static void test_keys(void)
{
    s2a_admin_change ch;
    s2a_admin_stmt st;

    passes(&s2a_admin_keys,
           "{\"user_id\":1,\"group_id\":2,\"key_hash\":\"mine\",\"prefix\":\"p\",\"name\":\"\"}", 1,
           &ch);
    S2A_CHECK(s2a_admin_value_of(&ch, "key_hash") == NULL);
    s2a_admin_put(&ch, "key_hash", "h");
    s2a_admin_put(&ch, "prefix", "sk-s2a-...");
    s2a_admin_put(&ch, "user_id", "99");
    s2a_admin_insert(pool, &ch, 9, &st);
    S2A_CHECK_STR(st.sql, "INSERT INTO s2a_api_keys (user_id, group_id, name, key_hash, prefix,"
                          " created_at) VALUES (%lld, %lld, %s, %s, %s, %lld)");
    S2A_CHECK_STR(st.args[0], "1");
    S2A_CHECK_STR(st.args[3], "h");
    refused(&s2a_admin_keys, "{\"user_id\":\"1\",\"group_id\":1}", 1,
            "user_id and group_id (integers) are required");
    refused(&s2a_admin_keys, "{\"user_id\":0,\"group_id\":1}", 1,
            "user_id and group_id (integers) are required");
    refused(&s2a_admin_keys, "{\"user_id\":1}", 1, "user_id and group_id (integers) are required");
    refused(&s2a_admin_keys, "{\"user_id\":1,\"group_id\":1,\"expires_at\":-1}", 1,
            "expires_at: Unix seconds (0: never)");
    refused(&s2a_admin_keys, "{\"user_id\":1,\"group_id\":1,\"expires_at\":253402300800}", 1,
            "expires_at: Unix seconds (0: never)");
    /* a PATCH cannot move a key to another user */
    passes(&s2a_admin_keys, "{\"user_id\":5,\"rpm_limit\":60,\"status\":\"disabled\"}", 0, &ch);
    S2A_CHECK_INT(s2a_admin_update(pool, &ch, 3, &st), 1);
    S2A_CHECK_STR(st.sql, "UPDATE s2a_api_keys SET status = %s, rpm_limit = %lld WHERE id = %lld");
    refused(&s2a_admin_keys, "{\"name\":\"n\",\"concurrency\":2,\"rpm_limit\":\"60\"}", 0,
            "rpm_limit: a whole number from 0 (no limit)");
}

static const char *sealed(void *baton, apr_int64_t id, const char *plain)
{
    return apr_psprintf(pool, "%s%" APR_INT64_T_FMT ":%s", (const char *)baton, id, plain);
}

static void test_accounts(void)
{
    s2a_admin_change ch;
    s2a_admin_stmt st;
    const s2a_admin_value *ids;

    passes(&s2a_admin_accounts,
           "{\"name\":\"a\",\"type\":\"apikey\",\"credential\":\"sk-1\",\"endpoint\":\"http://x\","
           "\"group_ids\":[3,1,3],\"model_mapping\":{\"a\":\"b\"},\"custom_error_codes\":[],"
           "\"schedulable\":false,\"refresh_token\":\"rt\",\"clear_cooldown\":true}",
           1, &ch);
    ids = s2a_admin_value_of(&ch, "group_ids");
    S2A_CHECK(ids != NULL && ids->ids->nelts == 2);
    S2A_CHECK_INT(APR_ARRAY_IDX(ids->ids, 0, apr_int64_t), 3);
    S2A_CHECK_INT(APR_ARRAY_IDX(ids->ids, 1, apr_int64_t), 1);
    S2A_CHECK(s2a_admin_value_of(&ch, "clear_cooldown") == NULL);
    {
        s2a_admin_change open, secret;
        s2a_admin_sealer sealer = {sealed, "sealed:"};
        /* a create is inserted without its secrets, and they are sealed for
         * the id it gets */
        S2A_CHECK_INT(s2a_admin_split_secrets(pool, &ch, &open, &secret), 1);
        S2A_CHECK_STR(text_of(&open, "credential"), "");
        S2A_CHECK_STR(text_of(&open, "refresh_token"), "");
        S2A_CHECK_STR(text_of(&open, "name"), "a");
        S2A_CHECK_INT(secret.values->nelts, 2);
        s2a_admin_seal(&secret, 42, &sealer);
        S2A_CHECK_STR(text_of(&secret, "credential"), "sealed:42:sk-1");
        s2a_admin_update(pool, &secret, 42, &st);
        S2A_CHECK_STR(st.sql, "UPDATE s2a_accounts SET credential = %s, refresh_token = %s"
                              " WHERE id = %lld");
        s2a_admin_seal(&ch, 7, &sealer);
        S2A_CHECK_STR(text_of(&ch, "credential"), "sealed:7:sk-1");
        S2A_CHECK_STR(text_of(&ch, "refresh_token"), "sealed:7:rt");
        S2A_CHECK_STR(text_of(&ch, "name"), "a");
    }
    s2a_admin_insert(pool, &ch, 1, &st);
    S2A_CHECK_STR(st.sql, "INSERT INTO s2a_accounts (name, type, credential, endpoint,"
                          " model_mapping, schedulable, custom_error_codes, refresh_token,"
                          " created_at) VALUES (%s, %s, %s, %s, %s, %d, %s, %s, %lld)");
    S2A_CHECK_STR(st.args[4], "{\"a\":\"b\"}");
    S2A_CHECK_STR(st.args[5], "0");
    S2A_CHECK_STR(st.args[6], "");

    /* re-enabling clears the error message in the same UPDATE */
    passes(&s2a_admin_accounts, "{\"status\":\"active\",\"custom_error_codes\":[429,529]}", 0, &ch);
    s2a_admin_update(pool, &ch, 8, &st);
    S2A_CHECK_STR(st.sql, "UPDATE s2a_accounts SET status = %s, error_message = '',"
                          " custom_error_codes = %s WHERE id = %lld");
    S2A_CHECK_STR(st.args[1], "[429,529]");
    passes(&s2a_admin_accounts, "{\"status\":\"disabled\",\"custom_error_codes\":null}", 0, &ch);
    s2a_admin_update(pool, &ch, 8, &st);
    S2A_CHECK_STR(st.sql,
                  "UPDATE s2a_accounts SET status = %s, custom_error_codes = %s WHERE id = %lld");
    S2A_CHECK_STR(st.args[1], "");
    passes(&s2a_admin_accounts, "{\"clear_cooldown\":true,\"group_ids\":[]}", 0, &ch);
    S2A_CHECK_INT(number_of(&ch, "clear_cooldown"), 1);
    S2A_CHECK_INT(s2a_admin_update(pool, &ch, 8, &st), 0);

#define ACCOUNT "\"name\":\"a\",\"type\":\"apikey\",\"credential\":\"c\",\"endpoint\":\"e\""
    refused(&s2a_admin_accounts, "{\"name\":\"a\",\"type\":\"cookie\"}", 1,
            "type: apikey, oauth, setup-token, vertex or bedrock");
    refused(&s2a_admin_accounts, "{\"name\":\"a\",\"type\":\"apikey\",\"endpoint\":\"e\"}", 1,
            "credential: a non-empty string (or for vertex and bedrock a JSON object) is required");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"credential\":\"sk\\r\\nx-evil: 1\"}", 1,
            "credential: control characters are not allowed");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"concurrency\":0}", 1,
            "priority and concurrency: integers (concurrency from 1 to 1000000)");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"priority\":-1000001}", 1,
            "priority and concurrency: integers (concurrency from 1 to 1000000)");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"model_mapping\":[\"x\"]}", 1,
            "model_mapping: an object of client model to upstream model");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"model_mapping\":{\"a\":1}}", 1,
            "model_mapping: values must be strings");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"model_mapping\":{\"a\":\"b\\n\"}}", 1,
            "model_mapping: model names of 1 to 255 characters without control characters");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"group_ids\":[\"1\"]}", 1,
            "group_ids: an array of group ids");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"group_ids\":[0]}", 1,
            "group_ids: an array of group ids");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"group_ids\":{\"1\":1}}", 1,
            "group_ids: an array of group ids");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"custom_error_codes\":[200]}", 1,
            "custom_error_codes: an array of HTTP statuses, or null");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"schedulable\":\"no\"}", 1,
            "schedulable and clear_cooldown: true or false");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"headers\":{\"Host\":\"x\"}}", 1,
            "headers: Host is set by the gateway");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"headers\":{\"Accept-Encoding\":\"gzip\"}}", 1,
            "headers: Accept-Encoding is set by the gateway");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"headers\":{\"x-a b\":\"x\"}}", 1,
            "headers: x-a b is not a header name");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"headers\":{\"x-a\":\"b\\r\\nHost: y\"}}", 1,
            "headers: the value of x-a has control characters");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"headers\":{\"x-a\":\"b\\u0000\"}}", 1,
            "headers: the value of x-a has control characters");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"expires_at\":-5}", 1,
            "expires_at: Unix seconds when the access token ends (0: unknown)");
    refused(&s2a_admin_accounts, "{\"clear_cooldown\":1}", 0,
            "schedulable and clear_cooldown: true or false");
    refused(&s2a_admin_accounts, "{\"refresh_token\":\"\"}", 0,
            "refresh_token: a non-empty string is required");
    refused(&s2a_admin_accounts, "{\"name\":\"n\",\"priority\":1,\"headers\":{\"Cookie\":\"c\"}}",
            0, "headers: Cookie is set by the gateway");
    /* an egress is an http:// forward proxy with a port, nothing else */
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"egress\":\"socks5://p:1080\"}", 1,
            "egress: only http:// forward proxies (httpd's proxy speaks no SOCKS; https "
            "upstreams go through CONNECT)");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"egress\":\"http://p:3128\\r\\nX: y\"}", 1,
            "egress: no spaces or control characters");
    refused(&s2a_admin_accounts, "{" ACCOUNT ",\"egress\":\"http://p\"}", 1,
            "egress: http://[user:password@]host:port, with a port and no path");
    refused(&s2a_admin_accounts, "{\"egress\":3128}", 0,
            "egress: a string, http://[user:password@]host:port (\"\" or null: none)");
    {
        s2a_admin_change ch;
        if (!passes(&s2a_admin_accounts, "{\"egress\":\"http://u:pw@p1:3128\"}", 0, &ch)) {
            S2A_CHECK_STR(s2a_admin_value_of(&ch, "egress")->text, "http://u:pw@p1:3128");
        }
        if (!passes(&s2a_admin_accounts, "{\"egress\":null}", 0, &ch)) {
            S2A_CHECK_STR(s2a_admin_value_of(&ch, "egress")->text, "");
        }
    }
}

/* A service-account key file's JSON around a new RSA key. */
static const char *service_account(const char *project)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    json_object *o = json_object_new_object();
    const char *out;
    char *pem;
    long n;
    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &pem);
    json_object_object_add(o, "type", json_object_new_string("service_account"));
    if (project) {
        json_object_object_add(o, "project_id", json_object_new_string(project));
    }
    json_object_object_add(o, "client_email", json_object_new_string("gw@p.iam.example"));
    json_object_object_add(o, "private_key", json_object_new_string_len(pem, (int)n));
    out = apr_pstrdup(pool, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    BIO_free(bio);
    EVP_PKEY_free(key);
    return out;
}

static void test_cloud_accounts(void)
{
    s2a_admin_change ch;
    const char *key = service_account("proj-1"), *bare = service_account(NULL);
    json_object *quoted;
    const char *vertex = apr_psprintf(pool,
                                      "{\"name\":\"v\",\"type\":\"vertex\",\"credential\":%s,"
                                      "\"endpoint\":\"https://us-east5-aiplatform.googleapis.com\","
                                      "\"region\":\"us-east5\"}",
                                      key);

    /* a service-account key as the JSON object of its file, stored as its text */
    passes(&s2a_admin_accounts, vertex, 1, &ch);
    S2A_CHECK(strstr(text_of(&ch, "credential"), "\"client_email\":\"gw@p.iam.example\"") != NULL);
    S2A_CHECK_STR(text_of(&ch, "region"), "us-east5");
    /* or as a string of that text */
    quoted = json_object_new_string(bare);
    passes(&s2a_admin_accounts,
           apr_psprintf(pool,
                        "{\"name\":\"v\",\"type\":\"vertex\",\"credential\":%s,"
                        "\"endpoint\":\"e\",\"region\":\"global\",\"project\":\"p-2\"}",
                        json_object_to_json_string(quoted)),
           1, &ch);
    json_object_put(quoted);
    S2A_CHECK_STR(text_of(&ch, "project"), "p-2");
    refused(&s2a_admin_accounts,
            apr_psprintf(pool,
                         "{\"name\":\"v\",\"type\":\"vertex\",\"credential\":%s,"
                         "\"endpoint\":\"e\",\"region\":\"global\"}",
                         bare),
            1, "project: required when the service-account key names none");
    refused(&s2a_admin_accounts,
            "{\"name\":\"v\",\"type\":\"vertex\",\"credential\":{\"type\":\"service_account\","
            "\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nxx\"},"
            "\"endpoint\":\"e\",\"region\":\"global\"}",
            1,
            "credential: a service-account key file's JSON: private_key is not an unencrypted PEM "
            "private key");
    refused(&s2a_admin_accounts,
            apr_psprintf(pool,
                         "{\"name\":\"v\",\"type\":\"vertex\",\"credential\":%s,"
                         "\"endpoint\":\"e\"}",
                         key),
            1, "region: required for vertex and bedrock accounts");
    refused(&s2a_admin_accounts,
            apr_psprintf(pool,
                         "{\"name\":\"v\",\"type\":\"vertex\",\"credential\":%s,"
                         "\"endpoint\":\"e\",\"region\":\"us/east\"}",
                         key),
            1, "region and project: letters, digits and '-', at most 64");

    /* Bedrock: an access key pair, or an API key */
    passes(&s2a_admin_accounts,
           "{\"name\":\"b\",\"type\":\"bedrock\",\"credential\":{\"access_key_id\":\"AKIA1\","
           "\"secret_access_key\":\"s/k\"},\"endpoint\":\"e\",\"region\":\"us-east-1\"}",
           1, &ch);
    S2A_CHECK_STR(text_of(&ch, "credential"),
                  "{\"access_key_id\":\"AKIA1\",\"secret_access_key\":\"s\\/k\"}");
    passes(&s2a_admin_accounts,
           "{\"name\":\"b\",\"type\":\"bedrock\",\"credential\":\"ABSKa2V5\",\"endpoint\":\"e\","
           "\"region\":\"us-east-1\"}",
           1, &ch);
    refused(&s2a_admin_accounts,
            "{\"name\":\"b\",\"type\":\"bedrock\",\"credential\":{\"access_key_id\":\"AKIA1\"},"
            "\"endpoint\":\"e\",\"region\":\"us-east-1\"}",
            1, "credential: secret_access_key: a string without spaces is required");
    /* an Anthropic account's credential is a string */
    refused(&s2a_admin_accounts,
            "{\"name\":\"a\",\"type\":\"apikey\",\"credential\":{\"k\":\"v\"},\"endpoint\":\"e\"}",
            1, "credential: a string for this type");
    /* a PATCH of the credential alone is judged when the accounts are read */
    passes(&s2a_admin_accounts, "{\"credential\":{\"access_key_id\":\"AKIA2\"}}", 0, &ch);
}

static void test_subscriptions_and_codes(void)
{
    s2a_admin_change ch;
    s2a_admin_codes ask;
    s2a_admin_stmt st;

    passes(&s2a_admin_subscriptions, "{\"user_id\":1,\"group_id\":2,\"days\":30}", 1, &ch);
    S2A_CHECK_INT(number_of(&ch, "days"), 30);
    refused(&s2a_admin_subscriptions, "{\"user_id\":1,\"group_id\":2,\"days\":\"7\"}", 1,
            "user_id, group_id and days (1 to 36500) are required");
    refused(&s2a_admin_subscriptions, "{\"user_id\":1,\"group_id\":2,\"days\":36501}", 1,
            "user_id, group_id and days (1 to 36500) are required");
    passes(&s2a_admin_subscriptions, "{\"expires_at\":0,\"days\":4}", 0, &ch);
    s2a_admin_update(pool, &ch, 5, &st);
    S2A_CHECK_STR(st.sql, "UPDATE s2a_subscriptions SET expires_at = %lld WHERE id = %lld");

    passes(&s2a_admin_redeem_codes, "{\"count\":3,\"balance_usd\":\"5\"}", 1, &ch);
    S2A_CHECK(s2a_admin_codes_ask(&ch, &ask) == NULL);
    S2A_CHECK_INT(ask.count, 3);
    S2A_CHECK_INT(ask.subscription, 0);
    S2A_CHECK_INT(ask.amount, 5000000000LL);
    passes(&s2a_admin_redeem_codes, "{\"group_id\":2,\"days\":3}", 1, &ch);
    S2A_CHECK(s2a_admin_codes_ask(&ch, &ask) == NULL);
    S2A_CHECK_INT(ask.count, 1);
    S2A_CHECK_INT(ask.subscription, 1);
    S2A_CHECK_INT(ask.days, 3);
    passes(&s2a_admin_redeem_codes, "{\"group_id\":2}", 1, &ch);
    S2A_CHECK_STR(s2a_admin_codes_ask(&ch, &ask),
                  "either balance_usd (above 0) or group_id and days (1 to 36500)");
    refused(&s2a_admin_redeem_codes, "{\"balance_usd\":\"0\"}", 1,
            "either balance_usd (above 0) or group_id and days (1 to 36500)");
    refused(&s2a_admin_redeem_codes, "{\"count\":1001,\"balance_usd\":\"1\"}", 1,
            "count: 1 to 1000");
}

static const char *field(json_object *o, const char *path)
{
    char *copy = apr_pstrdup(pool, path), *last, *name = apr_strtok(copy, ".", &last);
    for (; name && o; name = apr_strtok(NULL, ".", &last)) {
        o = json_object_object_get(o, name);
    }
    return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "(absent)";
}

static void test_answers(void)
{
    s2a_account_state st;
    json_object *row, *state;

    /* an account's state says its status and until when it lasts */
    memset(&st, 0, sizeof(st));
    st.rate_limited_until = apr_time_from_sec(1800000600);
    st.window_status = 2;
    row = json_tokener_parse("{\"id\":3,\"status\":\"active\",\"schedulable\":true}");
    state = s2a_admin_account_state(row, &st, apr_time_from_sec(1800000000));
    S2A_CHECK_STR(field(state, "status"), "\"rate_limited\"");
    S2A_CHECK_STR(field(state, "status_until"), "1800000600");
    S2A_CHECK_STR(field(state, "rate_limited_until"), "1800000600");
    S2A_CHECK_STR(field(state, "window_5h.status"), "\"allowed_warning\"");
    json_object_put(state);
    json_object_object_add(row, "schedulable", json_object_new_boolean(0));
    state = s2a_admin_account_state(row, &st, apr_time_from_sec(1800000000));
    S2A_CHECK_STR(field(state, "status"), "\"unschedulable\"");
    S2A_CHECK_STR(field(state, "status_until"), "0");
    json_object_put(state);
    json_object_put(row);

    /* a subscription's windows, with its group's allowances */
    row = json_tokener_parse("{\"id\":1,\"status\":\"active\",\"expires_at\":1800086400,"
                             "\"daily_usage_nanousd\":250000000,\"daily_start\":1799990000,"
                             "\"weekly_usage_nanousd\":7,\"weekly_start\":1000,"
                             "\"monthly_usage_nanousd\":250000000,\"monthly_start\":1799990000,"
                             "\"daily_limit_nanousd\":1000000000,\"weekly_limit_nanousd\":0,"
                             "\"monthly_limit_nanousd\":100000000}");
    s2a_admin_shape(pool, &s2a_admin_subscriptions, row, 1800000000);
    S2A_CHECK_STR(field(row, "windows.daily"),
                  "{\"limit_nanousd\":1000000000,\"limit_usd\":\"1\",\"used_nanousd\":250000000,"
                  "\"used_usd\":\"0.25\",\"left_nanousd\":750000000,\"left_usd\":\"0.75\","
                  "\"resets_at\":1800076400}");
    /* past its end: empty and not running; no limit: nothing left to count */
    S2A_CHECK_STR(field(row, "windows.weekly"),
                  "{\"limit_nanousd\":0,\"limit_usd\":\"0\",\"used_nanousd\":0,"
                  "\"used_usd\":\"0\",\"left_nanousd\":null,\"left_usd\":null,"
                  "\"resets_at\":0}");
    S2A_CHECK_STR(field(row, "windows.monthly.left_usd"), "\"0\"");
    S2A_CHECK_STR(field(row, "state"), "\"used_up\"");
    S2A_CHECK_STR(field(row, "daily_limit_nanousd"), "(absent)");
    S2A_CHECK_STR(field(row, "daily_usage_nanousd"), "250000000");
    json_object_put(row);
}

static void test_listings(void)
{
    apr_table_t *q = apr_table_make(pool, 4);
    s2a_admin_query query;
    s2a_admin_summary s;
    json_object *rows;

    S2A_CHECK(s2a_admin_query_parse(pool, &s2a_admin_usage, NULL, &query) == NULL);
    S2A_CHECK_STR(query.where, "");
    S2A_CHECK_INT(query.limit, 100);
    apr_table_set(q, "model", "claude");
    apr_table_set(q, "user_id", "5");
    apr_table_set(q, "limit", "2");
    apr_table_set(q, "unknown", "x");
    S2A_CHECK(s2a_admin_query_parse(pool, &s2a_admin_usage, q, &query) == NULL);
    S2A_CHECK_STR(query.where, " WHERE user_id = %lld AND model = %s");
    S2A_CHECK_INT(query.nargs, 2);
    S2A_CHECK_STR(query.args[1], "claude");
    S2A_CHECK_INT(query.limit, 2);
    /* not paged: limit is no filter */
    S2A_CHECK(s2a_admin_query_parse(pool, &s2a_admin_subscriptions, q, &query) == NULL);
    S2A_CHECK_STR(query.where, " WHERE user_id = %lld");
    S2A_CHECK_INT(query.limit, 0);
    apr_table_set(q, "limit", "10001");
    S2A_CHECK_STR(s2a_admin_query_parse(pool, &s2a_admin_usage, q, &query), "limit: 1 to 10000");
    apr_table_set(q, "limit", "0");
    S2A_CHECK_STR(s2a_admin_query_parse(pool, &s2a_admin_balance_log, q, &query),
                  "limit: 1 to 10000");
    apr_table_set(q, "limit", "5");
    apr_table_set(q, "user_id", "-1");
    S2A_CHECK_STR(s2a_admin_query_parse(pool, &s2a_admin_usage, q, &query), "user_id: a number");
    apr_table_set(q, "user_id", "99999999999999999999");
    S2A_CHECK_STR(s2a_admin_query_parse(pool, &s2a_admin_balance_log, q, &query),
                  "user_id: a number");
    apr_table_set(q, "user_id", "1");
    apr_table_set(q, "model", "");
    S2A_CHECK_STR(s2a_admin_query_parse(pool, &s2a_admin_usage, q, &query), "model: a model name");

    apr_table_clear(q);
    S2A_CHECK_STR(s2a_admin_summary_parse(pool, q, &s),
                  "by: day, model, upstream_model, account, key, user or api");
    apr_table_set(q, "by", "week");
    S2A_CHECK_STR(s2a_admin_summary_parse(pool, q, &s),
                  "by: day, model, upstream_model, account, key, user or api");
    apr_table_set(q, "by", "day");
    apr_table_set(q, "split", "day");
    S2A_CHECK_STR(s2a_admin_summary_parse(pool, q, &s),
                  "split: day, model, upstream_model, account, key, user or api, other than by");
    apr_table_set(q, "split", "model");
    apr_table_set(q, "key_id", "7");
    S2A_CHECK(s2a_admin_summary_parse(pool, q, &s) == NULL);
    S2A_CHECK_STR(s.types, "isiiiiiiiii");
    S2A_CHECK(strstr(s.stmt.sql, " WHERE api_key_id = %lld GROUP BY k, k2 ORDER BY k, k2") != NULL);
    rows = json_tokener_parse("[{\"k\":1764288000,\"k2\":\"m\",\"requests\":2}]");
    s2a_admin_summary_shape(pool, &s, rows);
    S2A_CHECK_STR(json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN),
                  "[{\"requests\":2,\"day\":1764288000,\"date\":\"2025-11-28\",\"model\":\"m\"}]");
    json_object_put(rows);
    /* the models as they were sent upstream, as the price table prices them */
    apr_table_clear(q);
    apr_table_set(q, "by", "upstream_model");
    apr_table_set(q, "from", "1764288000");
    S2A_CHECK(s2a_admin_summary_parse(pool, q, &s) == NULL);
    S2A_CHECK_STR(s.types, "siiiiiiiii");
    S2A_CHECK(strstr(s.stmt.sql, "SELECT upstream_model AS k,") != NULL);
    S2A_CHECK(strstr(s.stmt.sql, " WHERE created_at >= %lld GROUP BY k ORDER BY k") != NULL);
    rows = json_tokener_parse("[{\"k\":\"claude-x\",\"requests\":2}]");
    s2a_admin_summary_shape(pool, &s, rows);
    S2A_CHECK_STR(json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN),
                  "[{\"requests\":2,\"upstream_model\":\"claude-x\"}]");
    json_object_put(rows);
    /* by the door the requests came in by, and only one door's */
    apr_table_clear(q);
    apr_table_set(q, "by", "api");
    apr_table_set(q, "api", "chat");
    S2A_CHECK(s2a_admin_summary_parse(pool, q, &s) == NULL);
    S2A_CHECK(strstr(s.stmt.sql, "SELECT api AS k,") != NULL);
    S2A_CHECK(strstr(s.stmt.sql, " WHERE api = %s GROUP BY k ORDER BY k") != NULL);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_users();
    test_groups();
    test_keys();
    test_accounts();
    test_cloud_accounts();
    test_subscriptions_and_codes();
    test_answers();
    test_listings();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_admin");
}
