/* Usage rows per second the writer's database code stores, alone: batches of
 * 1024 rows (as the writer thread takes them from a backed-up queue), each
 * batch one transaction with its users' balance deductions, on one
 * connection.
 *
 *   writer sqlite3 /path/to/new.sqlite [rows]
 *   writer pgsql "host=... dbname=..." [rows]
 *
 * Prints one JSON line: driver, rows, seconds, rows_per_s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_dbd.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "s2a_db_billing.h"
#include "s2a_db_schema.h"

#define BATCH 1024 /* S2A_BATCH: the writer takes this many when the queue has them */
#define USERS 50

static void fail(const char *what, const char *why)
{
    fprintf(stderr, "writer bench: %s: %s\n", what, why ? why : "failed");
    exit(1);
}

static void fill(s2a_usage_row *r, int i, const char *run)
{
    memset(r, 0, sizeof(*r));
    apr_snprintf(r->request_id, sizeof(r->request_id), "req_%s_%08d", run, i);
    r->attempt = 1;
    r->user_id = 1 + i % USERS;
    r->api_key_id = r->user_id;
    r->account_id = 1 + i % 7;
    r->group_id = 1;
    apr_cpystrn(r->model, "claude-sonnet-4-20250514", sizeof(r->model));
    apr_cpystrn(r->upstream_model, "claude-sonnet-4-20250514", sizeof(r->upstream_model));
    r->input_tokens = 1200 + i % 1000;
    r->output_tokens = 300 + i % 200;
    r->cache_read_tokens = 20000;
    r->input_cost = r->input_tokens * 3000;
    r->output_cost = r->output_tokens * 15000;
    r->cache_read_cost = r->cache_read_tokens * 300;
    r->total_cost = r->input_cost + r->output_cost + r->cache_read_cost;
    r->actual_cost = r->total_cost;
    r->multiplier_ppm = 1000000;
    r->stream = i % 2;
    r->status = 200;
    apr_cpystrn(r->outcome, "ok", sizeof(r->outcome));
    r->duration_ms = 900;
    r->first_token_ms = 300;
    r->created_at = apr_time_sec(apr_time_now());
}

int main(int argc, char **argv)
{
    apr_pool_t *pool, *iter;
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    s2a_dbc c;
    const char *err = NULL, *run;
    s2a_usage_row *rows;
    apr_time_t start;
    double seconds;
    int total = argc > 3 ? atoi(argv[3]) : 100000, i, nrows;

    if (argc < 3 || total < BATCH) {
        fprintf(stderr, "usage: %s sqlite3|pgsql params [rows >= %d]\n", argv[0], BATCH);
        return 2;
    }
    apr_initialize();
    apr_pool_create(&pool, NULL);
    apr_pool_create(&iter, pool);
    apr_dbd_init(pool);
    if (apr_dbd_get_driver(pool, argv[1], &driver) != APR_SUCCESS) {
        fail("driver", argv[1]);
    }
    if (apr_dbd_open_ex(driver, pool, argv[2], &handle, &err) != APR_SUCCESS) {
        fail("open", err);
    }
    memset(&c, 0, sizeof(c));
    c.driver = driver;
    c.handle = handle;
    c.pool = pool;
    c.prepared = apr_hash_make(pool);
    if (s2a_db_migrate(&c, pool, &err) != APR_SUCCESS) {
        fail("migrate", err);
    }
    for (i = 1; i <= USERS; i++) {
        const char *sql = apr_psprintf(pool,
                                       "INSERT INTO s2a_users (name, status, balance_nanousd,"
                                       " created_at) VALUES ('bench-%d', 'active', %d, 0)",
                                       i, 1000000000);
        if (apr_dbd_query(driver, handle, &nrows, sql) != 0) {
            fail("users", apr_dbd_error(driver, handle, 0));
        }
    }
    run = apr_psprintf(pool, "%" APR_TIME_T_FMT, apr_time_now());
    rows = apr_palloc(pool, sizeof(*rows) * BATCH);
    start = apr_time_now();
    for (i = 0; i < total; i += BATCH) {
        int k, n = total - i < BATCH ? total - i : BATCH;
        for (k = 0; k < n; k++) {
            fill(&rows[k], i + k, run);
        }
        if (s2a_db_usage_write(&c, iter, rows, n, NULL, &err) != APR_SUCCESS) {
            fail("write", err);
        }
        apr_pool_clear(iter);
    }
    seconds = (double)(apr_time_now() - start) / APR_USEC_PER_SEC;
    printf("{\"driver\": \"%s\", \"rows\": %d, \"seconds\": %.3f, \"rows_per_s\": %.0f}\n", argv[1],
           total, seconds, total / seconds);
    apr_dbd_close(driver, handle);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
