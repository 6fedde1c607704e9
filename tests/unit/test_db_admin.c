/* The admin API's writes against a real SQLite file through apr_dbd: a
 * create or a PATCH is written whole or not at all (a value the rows refuse
 * after the UPDATE ran rolls it back), balance changes ride in the same
 * transaction, and listings carry their links. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_admin.h"
#include "s2a_db_admin.h"
#include "s2a_db_catalog.h"
#include "s2a_db_billing.h"
#include "s2a_db_schema.h"
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

static const char *one_text(s2a_dbc *c, const char *sql)
{
    json_object *rows;
    const char *err, *v = NULL;
    if (s2a_db_rows(c, pool, sql, "s", 0, NULL, &rows, &err) == 0) {
        if (json_object_array_length(rows) == 1) {
            json_object_object_foreach(json_object_array_get_idx(rows, 0), k, val)
            {
                (void)k;
                v = apr_pstrdup(pool, json_object_get_string(val));
            }
        }
        json_object_put(rows);
    }
    return v;
}

static s2a_admin_change change(const s2a_admin_resource *res, const char *json, int create)
{
    s2a_admin_change ch;
    json_object *body = json_tokener_parse(json);
    const char *why = s2a_admin_check(pool, res, body, create, &ch);
    if (why) {
        fprintf(stderr, "refused %s: %s\n", json, why);
    }
    S2A_CHECK(why == NULL);
    json_object_put(body);
    return ch;
}

/* Secrets as "sealed:<id>:<plain>": where they were sealed for shows. */
static const char *seal_for(void *baton, apr_int64_t id, const char *plain)
{
    (void)baton;
    return apr_psprintf(pool, "sealed:%" APR_INT64_T_FMT ":%s", id, plain);
}

static const char *open_plain(void *baton, apr_pool_t *p, apr_int64_t id, const char *stored)
{
    (void)baton;
    (void)p;
    (void)id;
    return stored;
}

/* Creates a row: its id, or -1 (and the failure in *fail). */
static apr_int64_t create(s2a_dbc *c, const s2a_admin_resource *res, const char *json,
                          s2a_db_admin_fail *fail)
{
    s2a_admin_sealer sealer = {seal_for, NULL};
    s2a_admin_change ch = change(res, json, 1);
    apr_int64_t id = -1;
    if (res == &s2a_admin_keys) {
        s2a_admin_put(&ch, "key_hash", apr_psprintf(pool, "hash-%s", json));
        s2a_admin_put(&ch, "prefix", "sk-s2a-...");
    }
    return s2a_db_admin_create(c, pool, &ch, 1700000000, &sealer, &id, fail) == 0 ? id : -1;
}

static int patch(s2a_dbc *c, const s2a_admin_resource *res, apr_int64_t id, const char *json,
                 s2a_db_admin_fail *fail)
{
    s2a_admin_change ch = change(res, json, 0);
    return s2a_db_admin_patch(c, pool, &ch, id, fail);
}

static void test_balance_in_a_transaction(s2a_dbc *c, apr_int64_t user)
{
    apr_int64_t after = 0, before = one_int(c, "SELECT balance_nanousd FROM s2a_users");
    apr_int64_t logged = one_int(c, "SELECT COUNT(*) FROM s2a_balance_log");
    const char *err = NULL;

    /* rolled back with the caller's statements: neither balance nor log */
    S2A_CHECK_INT(s2a_db_begin(c), 0);
    S2A_CHECK_INT(s2a_db_balance_change_in(c, pool, user, 0, 7, "ops", "", &after, &err), 1);
    S2A_CHECK_INT(after, before + 7);
    S2A_CHECK_INT(s2a_db_end(c, 0), 0);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users"), before);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_balance_log"), logged);
    /* committed with them */
    S2A_CHECK_INT(s2a_db_begin(c), 0);
    S2A_CHECK_INT(s2a_db_balance_change_in(c, pool, user, 1, 100, "ops", "why", &after, &err), 1);
    S2A_CHECK_INT(s2a_db_balance_change_in(c, pool, 999, 1, 100, "ops", "", &after, &err), 0);
    S2A_CHECK_INT(s2a_db_end(c, 1), 0);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users"), 100);
    S2A_CHECK_INT(one_int(c, "SELECT delta_nanousd FROM s2a_balance_log ORDER BY id DESC LIMIT 1"),
                  100 - before);
    /* the wrapper is its own transaction still */
    S2A_CHECK_INT(s2a_db_balance_change(c, pool, user, 0, 5, "ops", "", &after, &err), 1);
    S2A_CHECK_INT(after, 105);
}

static void test_users(s2a_dbc *c)
{
    s2a_db_admin_fail fail;
    apr_int64_t id;
    json_object *row = NULL;
    const char *err = NULL;

    id = create(c, &s2a_admin_users, "{\"name\":\"alice\",\"balance_usd\":\"10\"}", &fail);
    S2A_CHECK(id > 0);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users"), 10000000000LL);
    S2A_CHECK_INT(one_int(c, "SELECT created_at FROM s2a_users"), 1700000000);
    /* the opening balance is in the log like every change */
    S2A_CHECK_STR(one_text(c, "SELECT kind FROM s2a_balance_log"), "set");
    test_balance_in_a_transaction(c, id);

    /* a name and a balance in one transaction */
    S2A_CHECK_INT(patch(c, &s2a_admin_users, id,
                        "{\"name\":\"alicia\",\"concurrency\":4,\"balance_usd\":\"2\","
                        "\"add_balance_nanousd\":-5,\"actor\":\"ops:bob\",\"reason\":\"fix\"}",
                        &fail),
                  0);
    S2A_CHECK_STR(one_text(c, "SELECT name FROM s2a_users"), "alicia");
    S2A_CHECK_INT(one_int(c, "SELECT concurrency FROM s2a_users"), 4);
    S2A_CHECK_INT(one_int(c, "SELECT balance_nanousd FROM s2a_users"), 1999999995LL);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_balance_log WHERE actor = 'ops:bob'"
                             " AND reason = 'fix'"),
                  2);
    S2A_CHECK_INT(one_int(c, "SELECT delta_nanousd FROM s2a_balance_log ORDER BY id DESC LIMIT 1"),
                  -5);
    /* no such user: nothing at all */
    S2A_CHECK_INT(
        patch(c, &s2a_admin_users, 999, "{\"name\":\"x\",\"add_balance_usd\":\"1\"}", &fail), 1);
    S2A_CHECK_INT(fail.status, 404);
    S2A_CHECK_STR(fail.message, "No such resource");
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_users WHERE name = 'x'"), 0);

    S2A_CHECK_INT(s2a_db_admin_get(c, pool, &s2a_admin_users, id, &row, &err), 1);
    S2A_CHECK_STR(json_object_get_string(json_object_object_get(row, "name")), "alicia");
    json_object_put(row);
    S2A_CHECK_INT(s2a_db_admin_get(c, pool, &s2a_admin_users, 999, &row, &err), 0);
}

static void test_groups(s2a_dbc *c)
{
    s2a_db_admin_fail fail;
    apr_int64_t one, two;

    one = create(c, &s2a_admin_groups, "{\"name\":\"one\"}", &fail);
    two = create(c, &s2a_admin_groups, "{\"name\":\"two\",\"rate_multiplier\":\"1.5\"}", &fail);
    S2A_CHECK(one > 0 && two > one);
    S2A_CHECK_INT(create(c, &s2a_admin_groups, "{\"name\":\"one\"}", &fail), -1);
    S2A_CHECK_INT(fail.status, 409);
    S2A_CHECK_STR(fail.message, "name: a group of that name exists");
    /* renamed to a name that is taken, with other fields: nothing changes */
    S2A_CHECK_INT(patch(c, &s2a_admin_groups, two,
                        "{\"rate_multiplier\":\"3\",\"billing_type\":\"subscription\","
                        "\"daily_limit_usd\":\"5\",\"name\":\"one\"}",
                        &fail),
                  1);
    S2A_CHECK_INT(fail.status, 409);
    S2A_CHECK_INT(one_int(c, "SELECT rate_multiplier_ppm FROM s2a_groups WHERE name = 'two'"),
                  1500000);
    S2A_CHECK_INT(one_int(c, "SELECT daily_limit_nanousd FROM s2a_groups WHERE name = 'two'"), 0);
    /* its own name is no conflict */
    S2A_CHECK_INT(
        patch(c, &s2a_admin_groups, two, "{\"name\":\"two\",\"rate_multiplier\":2}", &fail), 0);
    S2A_CHECK_INT(one_int(c, "SELECT rate_multiplier_ppm FROM s2a_groups WHERE name = 'two'"),
                  2000000);
}

static void test_keys(s2a_dbc *c)
{
    s2a_db_admin_fail fail;
    apr_int64_t id;

    S2A_CHECK_INT(create(c, &s2a_admin_keys, "{\"user_id\":999,\"group_id\":1}", &fail), -1);
    S2A_CHECK_INT(fail.status, 400);
    S2A_CHECK_STR(fail.message, "user_id: no such user");
    S2A_CHECK_INT(create(c, &s2a_admin_keys, "{\"user_id\":1,\"group_id\":999}", &fail), -1);
    S2A_CHECK_STR(fail.message, "group_id: no such group");
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_api_keys"), 0);
    id = create(c, &s2a_admin_keys, "{\"user_id\":1,\"group_id\":1,\"rpm_limit\":60}", &fail);
    S2A_CHECK(id > 0);
    S2A_CHECK_INT(one_int(c, "SELECT rpm_limit FROM s2a_api_keys"), 60);
    S2A_CHECK_STR(one_text(c, "SELECT prefix FROM s2a_api_keys"), "sk-s2a-...");
    S2A_CHECK_INT(
        patch(c, &s2a_admin_keys, id, "{\"status\":\"disabled\",\"expires_at\":5}", &fail), 0);
    S2A_CHECK_STR(one_text(c, "SELECT status FROM s2a_api_keys"), "disabled");
    S2A_CHECK_INT(one_int(c, "SELECT expires_at FROM s2a_api_keys"), 5);
}

static void test_accounts(s2a_dbc *c)
{
    s2a_db_admin_fail fail;
    s2a_admin_query q;
    json_object *rows, *ids;
    const char *err = NULL;
    apr_int64_t id;

    id = create(c, &s2a_admin_accounts,
                "{\"name\":\"a\",\"type\":\"apikey\",\"credential\":\"c\",\"endpoint\":\"e\","
                "\"priority\":10,\"group_ids\":[2,1]}",
                &fail);
    S2A_CHECK(id > 0);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_account_groups"), 2);
    /* its secret sealed for the id it got */
    S2A_CHECK_STR(one_text(c, "SELECT credential FROM s2a_accounts"),
                  apr_psprintf(pool, "sealed:%" APR_INT64_T_FMT ":c", id));
    S2A_CHECK_INT(create(c, &s2a_admin_accounts,
                         "{\"name\":\"b\",\"type\":\"apikey\",\"credential\":\"c\","
                         "\"endpoint\":\"e\",\"group_ids\":[1,77]}",
                         &fail),
                  -1);
    S2A_CHECK_INT(fail.status, 400);
    S2A_CHECK_STR(fail.message, "group_ids: no such group");
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_accounts"), 1);

    /* the UPDATE ran, then a group it names is not there: all rolled back */
    S2A_CHECK_INT(patch(c, &s2a_admin_accounts, id,
                        "{\"name\":\"renamed\",\"priority\":1,\"group_ids\":[1,77]}", &fail),
                  1);
    S2A_CHECK_STR(fail.message, "group_ids: no such group");
    S2A_CHECK_STR(one_text(c, "SELECT name FROM s2a_accounts"), "a");
    S2A_CHECK_INT(one_int(c, "SELECT priority FROM s2a_accounts"), 10);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_account_groups"), 2);

    /* an account in error, re-enabled, loses its error message */
    {
        const char *args[1] = {"upstream said 401"};
        S2A_CHECK_INT(s2a_db_exec(c, pool,
                                  "UPDATE s2a_accounts SET status = 'error', error_message = %s", 1,
                                  args, NULL, &err),
                      0);
    }
    S2A_CHECK_INT(patch(c, &s2a_admin_accounts, id,
                        "{\"status\":\"active\",\"schedulable\":false,\"group_ids\":[2]}", &fail),
                  0);
    S2A_CHECK_STR(one_text(c, "SELECT error_message FROM s2a_accounts"), "");
    S2A_CHECK_INT(one_int(c, "SELECT schedulable FROM s2a_accounts"), 0);

    S2A_CHECK(s2a_admin_query_parse(pool, &s2a_admin_accounts, NULL, &q) == NULL);
    S2A_CHECK_INT(s2a_db_admin_list(c, pool, &s2a_admin_accounts, &q, &rows, &err), 0);
    S2A_CHECK_INT(json_object_array_length(rows), 1);
    ids = json_object_object_get(json_object_array_get_idx(rows, 0), "group_ids");
    S2A_CHECK_STR(json_object_to_json_string_ext(ids, JSON_C_TO_STRING_PLAIN), "[2]");
    S2A_CHECK_INT(json_object_get_boolean(json_object_object_get(json_object_array_get_idx(rows, 0),
                                                                 "refresh_token_set")),
                  0);
    json_object_put(rows);

    /* the account list requests read says so too */
    {
        apr_array_header_t *accounts;
        const s2a_account *a;
        s2a_db_opener opener = {open_plain, NULL};
        S2A_CHECK_INT(s2a_db_accounts_load(c, pool, &opener, &accounts, &err), APR_SUCCESS);
        a = &APR_ARRAY_IDX(accounts, 0, s2a_account);
        S2A_CHECK(a->id == id && strcmp(a->status, "active") == 0 && a->schedulable == 0 &&
                  !a->active);
    }
}

static void test_codes_and_listings(s2a_dbc *c)
{
    s2a_db_admin_fail fail;
    s2a_admin_change ch;
    s2a_admin_codes ask;
    s2a_admin_summary s;
    s2a_admin_query q;
    apr_table_t *params = apr_table_make(pool, 2);
    apr_array_header_t *codes = apr_array_make(pool, 4, sizeof(const char *));
    json_object *rows;
    const char *err = NULL;

    ch = change(&s2a_admin_redeem_codes, "{\"count\":3,\"balance_usd\":\"5\"}", 1);
    S2A_CHECK(s2a_admin_codes_ask(&ch, &ask) == NULL);
    S2A_CHECK_INT(s2a_db_admin_codes(c, pool, &ch, &ask, 1700000000, codes, &fail), 0);
    S2A_CHECK_INT(codes->nelts, 3);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_redeem_codes WHERE kind = 'balance'"
                             " AND amount_nanousd = 5000000000"),
                  3);
    ch = change(&s2a_admin_redeem_codes, "{\"group_id\":404,\"days\":3}", 1);
    S2A_CHECK(s2a_admin_codes_ask(&ch, &ask) == NULL);
    S2A_CHECK_INT(s2a_db_admin_codes(c, pool, &ch, &ask, 1700000000, codes, &fail), 1);
    S2A_CHECK_INT(fail.status, 404);
    S2A_CHECK_INT(one_int(c, "SELECT COUNT(*) FROM s2a_redeem_codes"), 3);

    /* the balance log, newest first, by user, a page at a time */
    apr_table_set(params, "user_id", "1");
    apr_table_set(params, "limit", "2");
    S2A_CHECK(s2a_admin_query_parse(pool, &s2a_admin_balance_log, params, &q) == NULL);
    S2A_CHECK_INT(s2a_db_admin_list(c, pool, &s2a_admin_balance_log, &q, &rows, &err), 0);
    S2A_CHECK_INT(json_object_array_length(rows), 2);
    S2A_CHECK(
        json_object_get_int64(json_object_object_get(json_object_array_get_idx(rows, 0), "id")) >
        json_object_get_int64(json_object_object_get(json_object_array_get_idx(rows, 1), "id")));
    json_object_put(rows);

    /* a summary of no usage is empty, not an error */
    apr_table_clear(params);
    apr_table_set(params, "by", "model");
    apr_table_set(params, "user_id", "1");
    S2A_CHECK(s2a_admin_summary_parse(pool, params, &s) == NULL);
    S2A_CHECK_INT(s2a_db_admin_summary(c, pool, &s, &rows, &err), 0);
    S2A_CHECK_INT(json_object_array_length(rows), 0);
    json_object_put(rows);
}

int main(void)
{
    const apr_dbd_driver_t *driver;
    char path[] = "/tmp/s2a-test-db-admin-XXXXXX";
    const char *err = NULL;
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
    S2A_CHECK_INT(s2a_db_migrate(&c, pool, &err), APR_SUCCESS);

    test_users(&c);
    test_groups(&c);
    test_keys(&c);
    test_accounts(&c);
    test_codes_and_listings(&c);

    apr_dbd_close(driver, c.handle);
    unlink(path);
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_db_admin");
}
