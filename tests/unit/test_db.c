/* The database code against a real SQLite file through apr_dbd: the schema,
 * keys and accounts as requests read them, and every write of money. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_db_billing.h"
#include "s2a_db_catalog.h"
#include "s2a_db_oauth.h"
#include "s2a_db_schema.h"
#include "s2a_key_limits.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static apr_int64_t one_int(s2a_dbc *c, const char *sql)
{
    json_object *rows;
    const char *err;
    apr_int64_t v = -1;
    if (s2a_db_rows(c, pool, sql, "i", 0, NULL, &rows, &err) == 0) {
        if (json_object_array_length(rows) == 1) {
            json_object_object_foreach(json_object_array_get_idx(rows, 0), k, val)
            {
                (void)k;
                v = json_object_get_int64(val);
            }
        }
        json_object_put(rows);
    }
    return v;
}

static void exec(s2a_dbc *c, const char *sql)
{
    const char *err = NULL;
    if (s2a_db_exec(c, pool, sql, 0, NULL, NULL, &err) != 0) {
        fprintf(stderr, "%s: %s\n", sql, err);
        S2A_CHECK(0);
    }
}

static void test_schema(s2a_dbc *c)
{
    const char *err = NULL, *value = NULL;
    S2A_CHECK_INT(s2a_db_migrate(c, pool, &err), APR_SUCCESS);
    S2A_CHECK_INT(s2a_db_migrate(c, pool, &err), APR_SUCCESS);
    S2A_CHECK(one_int(c, "SELECT CAST(v AS INTEGER) FROM s2a_meta WHERE k = 'schema_version'") >=
              8);
    S2A_CHECK_INT(s2a_db_secret(c, pool, "k", "first", &value, &err), APR_SUCCESS);
    S2A_CHECK_STR(value, "first");
    S2A_CHECK_INT(s2a_db_secret(c, pool, "k", "second", &value, &err), APR_SUCCESS);
    S2A_CHECK_STR(value, "first");
}

/* A version that cannot be read stops the migration: it is not version 0,
 * whose steps would be replayed over the tables. */
static void test_schema_version_unreadable(const apr_dbd_driver_t *driver)
{
    char path[] = "/tmp/s2a-test-db-version-XXXXXX";
    const char *err = NULL;
    s2a_dbc other;
    int fd = mkstemp(path);

    close(fd);
    S2A_CHECK_INT(apr_dbd_open(driver, pool, path, &other.handle), APR_SUCCESS);
    other.driver = driver;
    other.pool = pool;
    other.prepared = apr_hash_make(pool);
    exec(&other, "CREATE TABLE s2a_meta (k VARCHAR(64) PRIMARY KEY)");
    S2A_CHECK_INT(s2a_db_migrate(&other, pool, &err), APR_EGENERAL);
    S2A_CHECK(err && strncmp(err, "cannot read the schema version: ", 32) == 0);
    S2A_CHECK_INT(one_int(&other, "SELECT COUNT(*) FROM sqlite_master WHERE name = 's2a_users'"),
                  0);
    apr_dbd_close(driver, other.handle);
    unlink(path);
}

static const char *open_plain(void *baton, apr_pool_t *p, apr_int64_t id, const char *stored)
{
    (void)baton;
    (void)p;
    (void)id;
    return stored;
}

/* A secret sealed for another account does not open. */
static const char *open_none(void *baton, apr_pool_t *p, apr_int64_t id, const char *stored)
{
    (void)baton;
    (void)p;
    (void)id;
    (void)stored;
    return NULL;
}

static void test_catalog(s2a_dbc *c)
{
    s2a_db_opener plain = {open_plain, NULL}, none = {open_none, NULL};
    apr_array_header_t *accounts;
    s2a_key_rec key;
    const s2a_account *a;
    const char *err = NULL;

    exec(c, "INSERT INTO s2a_groups (id, name, rate_multiplier_ppm, created_at)"
            " VALUES (1, 'team', 1500000, 0)");
    exec(c, "INSERT INTO s2a_users (id, name, balance_nanousd, created_at, concurrency)"
            " VALUES (1, 'alice', 10000000000, 0, 2)");
    exec(c, "INSERT INTO s2a_api_keys (id, user_id, group_id, key_hash, prefix, created_at,"
            " rpm_limit) VALUES (1, 1, 1, 'hash-1', 'sk-', 0, 60)");
    S2A_CHECK_INT(s2a_db_key_lookup(c, pool, "hash-1", &key), 1);
    S2A_CHECK_INT(key.user_id, 1);
    S2A_CHECK_INT(key.group_id, 1);
    S2A_CHECK_INT(key.balance_nano, 10000000000LL);
    S2A_CHECK_INT(key.multiplier_ppm, 1500000);
    S2A_CHECK_INT(key.active, 1);
    S2A_CHECK_INT(key.rpm_limit, 60);
    S2A_CHECK_INT(key.user_concurrency, 2);
    S2A_CHECK_INT(key.subscription, 0);
    S2A_CHECK_STR(key.group_name, "team");
    S2A_CHECK_INT(s2a_db_key_lookup(c, pool, "hash-2", &key), 0);

    exec(c, "INSERT INTO s2a_accounts (id, name, type, credential, endpoint, model_mapping,"
            " created_at, custom_error_codes, headers) VALUES (1, 'main', 'apikey', 'sk-x',"
            " 'https://up', '{\"claude\":\"claude-2\"}', 0, '[429,529]', '{\"x-team\":\"a\"}')");
    exec(c, "INSERT INTO s2a_account_groups (account_id, group_id) VALUES (1, 1)");
    S2A_CHECK_INT(s2a_db_accounts_load(c, pool, &none, &accounts, &err), APR_SUCCESS);
    S2A_CHECK(APR_ARRAY_IDX(accounts, 0, s2a_account).credential == NULL);
    S2A_CHECK_INT(APR_ARRAY_IDX(accounts, 0, s2a_account).active, 0);
    S2A_CHECK_INT(s2a_db_accounts_load(c, pool, &plain, &accounts, &err), APR_SUCCESS);
    S2A_CHECK_INT(accounts->nelts, 1);
    a = &APR_ARRAY_IDX(accounts, 0, s2a_account);
    S2A_CHECK_INT(a->active, 1);
    S2A_CHECK_INT(a->priority, 50);
    S2A_CHECK_INT(a->concurrency, 3);
    S2A_CHECK_STR(apr_hash_get(a->mapping, "claude", APR_HASH_KEY_STRING), "claude-2");
    S2A_CHECK_INT(a->error_codes->nelts, 2);
    S2A_CHECK_INT(APR_ARRAY_IDX(a->error_codes, 1, int), 529);
    S2A_CHECK_STR(apr_table_get(a->headers, "x-team"), "a");
    S2A_CHECK_INT(APR_ARRAY_IDX(a->group_ids, 0, apr_int64_t), 1);
    S2A_CHECK(a->egress == NULL); /* none: it leaves from the gateway's own address */
    /* an egress, as stored, is read with the account and for its refreshes */
    exec(c, "UPDATE s2a_accounts SET egress = 'http://p1:3128' WHERE id = 1");
    S2A_CHECK_INT(s2a_db_accounts_load(c, pool, &plain, &accounts, &err), APR_SUCCESS);
    S2A_CHECK_STR(APR_ARRAY_IDX(accounts, 0, s2a_account).egress, "http://p1:3128");
    {
        s2a_db_tokens t;
        S2A_CHECK_INT(s2a_db_oauth_get(c, pool, 1, &t, &err), APR_SUCCESS);
        S2A_CHECK_STR(t.egress, "http://p1:3128");
    }
    exec(c, "UPDATE s2a_accounts SET egress = '' WHERE id = 1");

    S2A_CHECK_INT(s2a_db_account_error(c, pool, 1, "upstream answered 403", &err), APR_SUCCESS);
    S2A_CHECK_INT(s2a_db_accounts_load(c, pool, &plain, &accounts, &err), APR_SUCCESS);
    S2A_CHECK_INT(APR_ARRAY_IDX(accounts, 0, s2a_account).active, 0);
    exec(c, "UPDATE s2a_accounts SET status = 'active' WHERE id = 1");
}

static s2a_usage_row row_of(const char *request_id, int attempt, apr_int64_t cost, int sub)
{
    s2a_usage_row r;
    memset(&r, 0, sizeof(r));
    apr_cpystrn(r.request_id, request_id, sizeof(r.request_id));
    r.attempt = attempt;
    r.user_id = 1;
    r.api_key_id = 1;
    r.account_id = 1;
    r.group_id = sub ? 2 : 1;
    apr_cpystrn(r.model, "claude", sizeof(r.model));
    apr_cpystrn(r.upstream_model, "claude-2", sizeof(r.upstream_model));
    r.input_tokens = 10;
    r.total_cost = cost;
    r.actual_cost = cost * 3 / 2;
    r.status = 200;
    apr_cpystrn(r.outcome, "ok", sizeof(r.outcome));
    r.created_at = 1700000000;
    r.subscription = sub;
    return r;
}

static void test_usage(s2a_dbc *c)
{
    s2a_usage_row rows[3];
    apr_array_header_t *depleted = apr_array_make(pool, 2, sizeof(apr_int64_t));
    const char *err = NULL;

    rows[0] = row_of("req_a", 1, 2000000000, 0);
    rows[1] = row_of("req_b", 1, 2000000000, 0);
    rows[2] = row_of("req_b", 2, 2000000000, 0);
    apr_cpystrn(rows[1].api, "chat", sizeof(rows[1].api));
    apr_cpystrn(rows[2].api, "responses", sizeof(rows[2].api));
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, rows, 3, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_usage"), 3);
    /* each row names the door its request came in by; none named is Messages' */
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_usage WHERE request_id = 'req_a'"
                             " AND api = 'messages'"),
                  1);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_usage WHERE request_id = 'req_b'"
                             " AND attempt = 1 AND api = 'chat'"),
                  1);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_usage WHERE request_id = 'req_b'"
                             " AND attempt = 2 AND api = 'responses'"),
                  1);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users WHERE id = 1"), 1000000000);
    S2A_CHECK_INT(depleted->nelts, 0);
    /* a batch written again (an uncertain commit) adds nothing */
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, rows, 3, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_usage"), 3);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users WHERE id = 1"), 1000000000);
    /* the row that spends the balance names its user */
    rows[0] = row_of("req_c", 1, 1000000000, 0);
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, rows, 1, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(depleted->nelts, 1);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users WHERE id = 1"), -500000000);
}

/* What a key spends goes to its own total and windows, whatever pays; a
 * budget used up names the key; the lookup reads its limits and models. */
static void test_key_budget(s2a_dbc *c)
{
    s2a_usage_row row;
    s2a_key_rec key;
    apr_array_header_t *depleted = apr_array_make(pool, 2, sizeof(apr_int64_t));
    const char *err = NULL;
    apr_int64_t spent = one_int(c, "SELECT spent_nanousd FROM s2a_api_keys WHERE id = 1");
    apr_int64_t balance = one_int(c, "SELECT balance_nanousd FROM s2a_users WHERE id = 1");

    /* the user has money: only the key's budget can run out here */
    exec(c, "UPDATE s2a_users SET balance_nanousd = 1000000 WHERE id = 1");

    /* test_usage's rows were counted: 3 + 1 rows at 1.5 times their cost */
    S2A_CHECK_INT(spent, 3 * 3000000000LL + 1500000000LL);
    exec(c, "UPDATE s2a_api_keys SET budget_nanousd = 12000000000, daily_limit_nanousd = 900,"
            " models = '[\"claude-sonnet-*\",\"claude-2\"]' WHERE id = 1");
    row = row_of("req_k1", 1, 400, 0);
    row.created_at = apr_time_sec(apr_time_now());
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, &row, 1, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(one_int(c, "SELECT spent_nanousd FROM s2a_api_keys WHERE id = 1"), spent + 600);
    S2A_CHECK_INT(one_int(c, "SELECT daily_usage_nanousd FROM s2a_api_keys WHERE id = 1"), 600);
    S2A_CHECK_INT(depleted->nelts, 0);
    row = row_of("req_k2", 1, 400, 0);
    row.created_at = apr_time_sec(apr_time_now());
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, &row, 1, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(one_int(c, "SELECT daily_usage_nanousd FROM s2a_api_keys WHERE id = 1"), 1200);
    S2A_CHECK_INT(depleted->nelts, 1);
    S2A_CHECK_INT(APR_ARRAY_IDX(depleted, 0, apr_int64_t), 1);
    S2A_CHECK_INT(s2a_db_key_lookup(c, pool, "hash-1", &key), 1);
    S2A_CHECK_INT(key.budget, 12000000000LL);
    S2A_CHECK_INT(key.spent, spent + 1200);
    S2A_CHECK_INT(key.budget_windows.limit[0], 900);
    S2A_CHECK_INT(key.budget_windows.usage[0], 1200);
    S2A_CHECK(key.budget_windows.start[0] > 0);
    /* test_usage's rows, of 2023, started it first */
    S2A_CHECK_INT(key.budget_windows.runs[0], 2);
    S2A_CHECK_STR(key.models, "claude-sonnet-*\nclaude-2");
    /* a list spoiled outside the admin API allows nothing */
    exec(c, "UPDATE s2a_api_keys SET models = '[\"a b\"]' WHERE id = 1");
    S2A_CHECK_INT(s2a_db_key_lookup(c, pool, "hash-1", &key), 1);
    S2A_CHECK_INT(s2a_key_model_allowed(&key, "claude-2"), 0);
    exec(c, "UPDATE s2a_api_keys SET models = '', budget_nanousd = 0, daily_limit_nanousd = 0"
            " WHERE id = 1");
    exec(c, apr_psprintf(pool,
                         "UPDATE s2a_users SET balance_nanousd = %" APR_INT64_T_FMT " WHERE id = 1",
                         balance));
}

static void test_balance_and_redeem(s2a_dbc *c)
{
    s2a_redeemed got;
    const char *err = NULL;
    apr_int64_t after = 0;

    S2A_CHECK_INT(s2a_db_balance_change(c, pool, 1, 1, 5000000000LL, "ops", "top up", &after, &err),
                  1);
    S2A_CHECK_INT(after, 5000000000LL);
    S2A_CHECK_INT(s2a_db_balance_change(c, pool, 1, 0, 250, "ops", "", &after, &err), 1);
    S2A_CHECK_INT(after, 5000000250LL);
    S2A_CHECK_INT(s2a_db_balance_change(c, pool, 99, 0, 250, "ops", "", &after, &err), 0);
    S2A_CHECK_INT(one_int(c, "SELECT delta_nanousd FROM s2a_balance_log WHERE kind = 'set'"),
                  5500000000LL);
    S2A_CHECK_INT(one_int(c, "SELECT balance_after_nanousd FROM s2a_balance_log"
                             " WHERE kind = 'add'"),
                  5000000250LL);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_balance_log"), 2);

    exec(c, "INSERT INTO s2a_redeem_codes (code_hash, prefix, kind, amount_nanousd, created_at)"
            " VALUES ('code-1', 'rc-', 'balance', 750, 0)");
    S2A_CHECK_INT(s2a_db_redeem(c, pool, "code-1", 1, &got, &err), 1);
    S2A_CHECK_INT(got.subscription, 0);
    S2A_CHECK_INT(got.amount, 750);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users WHERE id = 1"), 5000001000LL);
    S2A_CHECK_INT(one_int(c, "SELECT balance_after_nanousd FROM s2a_balance_log"
                             " WHERE kind = 'redeem'"),
                  5000001000LL);
    S2A_CHECK_INT(s2a_db_redeem(c, pool, "code-1", 1, &got, &err), -1);
    S2A_CHECK_INT(s2a_db_redeem(c, pool, "code-x", 1, &got, &err), 0);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users WHERE id = 1"), 5000001000LL);
}

static void test_subscriptions(s2a_dbc *c)
{
    s2a_usage_row row;
    s2a_redeemed got;
    s2a_key_rec key;
    apr_array_header_t *depleted = apr_array_make(pool, 2, sizeof(apr_int64_t));
    const char *err = NULL;
    apr_int64_t id = 0, again = 0, first_end;

    exec(c, "INSERT INTO s2a_groups (id, name, created_at, billing_type, daily_limit_nanousd)"
            " VALUES (2, 'pro', 0, 'subscription', 1000)");
    S2A_CHECK_INT(s2a_db_subscription_extend(c, pool, 1, 2, 10, &id, &err), 0);
    S2A_CHECK(id > 0);
    first_end = one_int(c, "SELECT expires_at FROM s2a_subscriptions");
    S2A_CHECK_INT(s2a_db_subscription_extend(c, pool, 1, 2, 5, &again, &err), 0);
    S2A_CHECK_INT(again, id);
    S2A_CHECK_INT(one_int(c, "SELECT expires_at FROM s2a_subscriptions"), first_end + 5 * 86400);

    exec(c, "INSERT INTO s2a_redeem_codes (code_hash, prefix, kind, group_id, days, created_at)"
            " VALUES ('code-2', 'rc-', 'subscription', 2, 3, 0)");
    S2A_CHECK_INT(s2a_db_redeem(c, pool, "code-2", 1, &got, &err), 1);
    S2A_CHECK_INT(got.subscription, 1);
    S2A_CHECK_INT(one_int(c, "SELECT expires_at FROM s2a_subscriptions"), first_end + 8 * 86400);

    /* usage goes to the windows, and a window used up names its user */
    row = row_of("req_s1", 1, 600, 1);
    row.created_at = apr_time_sec(apr_time_now());
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, &row, 1, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(one_int(c, "SELECT daily_usage_nanousd FROM s2a_subscriptions"), 600);
    S2A_CHECK_INT(depleted->nelts, 0);
    row = row_of("req_s2", 1, 600, 1);
    row.created_at = apr_time_sec(apr_time_now());
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, &row, 1, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(one_int(c, "SELECT daily_usage_nanousd FROM s2a_subscriptions"), 1200);
    S2A_CHECK_INT(one_int(c, "SELECT weekly_usage_nanousd FROM s2a_subscriptions"), 1200);
    S2A_CHECK_INT(depleted->nelts, 1);
    /* the balance is not touched by subscription usage */
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users WHERE id = 1"), 5000001000LL);
    exec(c, "INSERT INTO s2a_api_keys (id, user_id, group_id, key_hash, prefix, created_at)"
            " VALUES (2, 1, 2, 'hash-s', 'sk-', 0)");
    S2A_CHECK_INT(s2a_db_key_lookup(c, pool, "hash-s", &key), 1);
    S2A_CHECK_INT(key.subscription, 1);
    S2A_CHECK_INT(key.windows.limit[0], 1000);
    S2A_CHECK_INT(key.windows.usage[0], 1200);
    S2A_CHECK(key.windows.start[0] > 0);
    /* each window has started once; a row after the day's end starts the
     * daily one again, empty, and counts its run */
    S2A_CHECK_INT(key.windows.runs[0], 1);
    S2A_CHECK_INT(key.windows.runs[1], 1);
    row = row_of("req_s3", 1, 100, 1);
    row.created_at = key.windows.start[0] + 86400;
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, &row, 1, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(s2a_db_key_lookup(c, pool, "hash-s", &key), 1);
    S2A_CHECK_INT(key.windows.usage[0], 100);
    S2A_CHECK_INT(key.windows.runs[0], 2);
    S2A_CHECK_INT(key.windows.usage[1], 1300);
    S2A_CHECK_INT(key.windows.runs[1], 1);
}

/* Another connection changes the schema (an operator's index, a trigger). */
static void change_schema_elsewhere(s2a_dbc *c, const char *path, const char *sql)
{
    apr_dbd_t *other = NULL;
    int nrows = 0;
    S2A_CHECK_INT(apr_dbd_open(c->driver, pool, path, &other), APR_SUCCESS);
    S2A_CHECK_INT(apr_dbd_query(c->driver, other, &nrows, sql), 0);
    apr_dbd_close(c->driver, other);
}

/* Rows are still written once the connection is checked as it is taken,
 * and when the change comes between the check and the statement: kept
 * statements, statements run once and selects alike. */
static void test_schema_changed_elsewhere(s2a_dbc *c, const char *path)
{
    apr_array_header_t *depleted = apr_array_make(pool, 2, sizeof(apr_int64_t));
    const char *err = NULL, *value = NULL;
    s2a_usage_row row = row_of("req_x1", 1, 10, 0);
    s2a_key_rec key;
    json_object *rows = NULL;

    S2A_CHECK_INT(s2a_db_alive(c, pool), 1);
    S2A_CHECK_INT(s2a_db_usage_write(c, pool, &row, 1, depleted, &err), APR_SUCCESS);
    S2A_CHECK_INT(s2a_db_key_lookup(c, pool, "hash-s", &key), 1);
    S2A_CHECK_INT(s2a_db_secret(c, pool, "test_secret", "first", &value, &err), APR_SUCCESS);
    change_schema_elsewhere(c, path, "CREATE INDEX s2a_test_model ON s2a_usage (model)");
    row = row_of("req_x2", 1, 10, 0);
    S2A_CHECK_INT(s2a_db_alive(c, pool), 1);
    if (s2a_db_usage_write(c, pool, &row, 1, depleted, &err) != APR_SUCCESS) {
        fprintf(stderr, "write after the schema changed: %s\n", err);
        S2A_CHECK(0);
    }

    change_schema_elsewhere(c, path, "CREATE INDEX s2a_test_status ON s2a_usage (status)");
    row = row_of("req_x3", 1, 10, 0);
    err = NULL;
    if (s2a_db_usage_write(c, pool, &row, 1, depleted, &err) != APR_SUCCESS) {
        fprintf(stderr, "write after an unchecked schema change: %s\n", err);
        S2A_CHECK(0);
    }
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_usage WHERE request_id LIKE 'req_x%'"), 3);

    S2A_CHECK_INT(s2a_db_alive(c, pool), 1);
    change_schema_elsewhere(c, path, "DROP INDEX s2a_test_status");
    S2A_CHECK_INT(s2a_db_key_lookup(c, pool, "hash-s", &key), 1);
    S2A_CHECK_INT(s2a_db_alive(c, pool), 1);
    change_schema_elsewhere(c, path, "DROP INDEX s2a_test_model");
    value = NULL;
    S2A_CHECK_INT(s2a_db_secret(c, pool, "test_secret", "second", &value, &err), APR_SUCCESS);
    S2A_CHECK_STR(value, "first");
    S2A_CHECK_INT(s2a_db_alive(c, pool), 1);
    change_schema_elsewhere(c, path, "CREATE INDEX s2a_test_api ON s2a_usage (api)");
    S2A_CHECK_INT(s2a_db_rows(c, pool, "SELECT request_id FROM s2a_usage WHERE request_id = %s",
                              "s", 1, (const char *[]){"req_x3"}, &rows, &err),
                  0);
    S2A_CHECK_INT(rows ? (int)json_object_array_length(rows) : -1, 1);
    json_object_put(rows);
}

static void test_oauth(s2a_dbc *c)
{
    const char *err = NULL;
    apr_array_header_t *due = NULL;
    s2a_db_tokens t;
    S2A_CHECK_INT(s2a_db_oauth_save(c, pool, 1, "at-1", "rt-1", 500, &err), APR_SUCCESS);
    S2A_CHECK_INT(s2a_db_oauth_get(c, pool, 1, &t, &err), APR_SUCCESS);
    S2A_CHECK_STR(t.credential, "at-1");
    S2A_CHECK_STR(t.egress, "");
    S2A_CHECK_STR(t.refresh_token, "rt-1");
    S2A_CHECK_INT(t.expires_at, 500);
    S2A_CHECK_STR(t.type, "apikey");
    S2A_CHECK_INT(s2a_db_oauth_get(c, pool, 9, &t, &err), APR_NOTFOUND);
    S2A_CHECK_INT(s2a_db_oauth_save(c, pool, 9, "a", "b", 1, &err), APR_NOTFOUND);
    S2A_CHECK_INT(s2a_db_oauth_due(c, pool, 600, &due, &err), APR_SUCCESS);
    S2A_CHECK_INT(due->nelts, 1);
    S2A_CHECK_INT(s2a_db_oauth_due(c, pool, 400, &due, &err), APR_SUCCESS);
    S2A_CHECK_INT(due->nelts, 0);

    /* a Vertex account: its access token is the token, its key the grant;
       only its access token and end are saved */
    exec(c, "INSERT INTO s2a_accounts (id, name, type, credential, endpoint, region, created_at)"
            " VALUES (77, 'v', 'vertex', '{\"type\":\"service_account\"}', 'https://v',"
            " 'global', 1)");
    S2A_CHECK_INT(s2a_db_oauth_get(c, pool, 77, &t, &err), APR_SUCCESS);
    S2A_CHECK_STR(t.type, "vertex");
    S2A_CHECK_STR(t.credential, "");
    S2A_CHECK_STR(t.refresh_token, "{\"type\":\"service_account\"}");
    S2A_CHECK_INT(s2a_db_vertex_token_save(c, pool, 77, "ya29.x", 900, &err), APR_SUCCESS);
    S2A_CHECK_INT(s2a_db_oauth_get(c, pool, 77, &t, &err), APR_SUCCESS);
    S2A_CHECK_STR(t.credential, "ya29.x");
    S2A_CHECK_STR(t.refresh_token, "{\"type\":\"service_account\"}");
    S2A_CHECK_INT(t.expires_at, 900);
    S2A_CHECK_INT(s2a_db_vertex_token_save(c, pool, 1, "ya29.y", 900, &err), APR_NOTFOUND);
    S2A_CHECK_INT(s2a_db_oauth_due(c, pool, 1000, &due, &err), APR_SUCCESS);
    S2A_CHECK_INT(due->nelts, 2);
    exec(c, "DELETE FROM s2a_accounts WHERE id = 77");
}

/* Statement arguments: every integer as printf would write it. */
static void test_i64_text(void)
{
    static const apr_int64_t values[] = {
        0, 7, -7, 10, -10, 1234567890123LL, APR_INT64_MAX, APR_INT64_MIN, APR_INT64_MIN + 1};
    size_t i;

    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        S2A_CHECK_STR(s2a_db_i64_text(pool, values[i]),
                      apr_psprintf(pool, "%" APR_INT64_T_FMT, values[i]));
    }
}

int main(void)
{
    const apr_dbd_driver_t *driver;
    char path[] = "/tmp/s2a-test-db-XXXXXX";
    s2a_dbc c;
    int fd;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    fd = mkstemp(path);
    close(fd);
    if (apr_dbd_init(pool) != APR_SUCCESS ||
        apr_dbd_get_driver(pool, "sqlite3", &driver) != APR_SUCCESS ||
        apr_dbd_open(driver, pool, path, &c.handle) != APR_SUCCESS) {
        fprintf(stderr, "no SQLite driver for apr_dbd (libaprutil1-dbd-sqlite3)\n");
        return 1;
    }
    c.driver = driver;
    c.pool = pool;
    c.prepared = apr_hash_make(pool);
    s2a_db_child_init(pool);

    test_i64_text();
    test_schema(&c);
    test_schema_version_unreadable(driver);
    test_catalog(&c);
    test_usage(&c);
    test_key_budget(&c);
    test_balance_and_redeem(&c);
    test_subscriptions(&c);
    test_schema_changed_elsewhere(&c, path);
    test_oauth(&c);

    apr_dbd_close(driver, c.handle);
    unlink(path);
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_db");
}
