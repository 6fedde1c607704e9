/* The admin API's writes against a real SQLite file through apr_dbd:
 * balance changes ride in the caller's transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

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

    {
        const char *none[1];
        S2A_CHECK_INT(s2a_db_exec(&c, pool,
                                  "INSERT INTO s2a_users (id, name, balance_nanousd, created_at)"
                                  " VALUES (1, 'alice', 10000000000, 0)",
                                  0, none, NULL, &err),
                      0);
    }
    test_balance_in_a_transaction(&c, 1);

    apr_dbd_close(driver, c.handle);
    unlink(path);
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_db_admin");
}
