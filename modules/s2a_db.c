/* Connections, statements and transactions over apr_dbd: see s2a_db.h. */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "s2a_db.h"

int s2a_db_is_pgsql(const s2a_dbc *c)
{
    return strcmp(apr_dbd_name(c->driver), "pgsql") == 0;
}

/* SQLite connections wait for a lock instead of failing at once (several
 * processes write to one file) and, in WAL mode, sync at checkpoints rather
 * than at every commit. Done once per connection. */
void s2a_db_conn_init(s2a_dbc *c)
{
    int nrows;
    if (apr_hash_get(c->prepared, "s2a:init", APR_HASH_KEY_STRING)) {
        return;
    }
    if (!s2a_db_is_pgsql(c)) {
        apr_dbd_query(c->driver, c->handle, &nrows, "PRAGMA busy_timeout = 5000");
        apr_dbd_query(c->driver, c->handle, &nrows, "PRAGMA synchronous = NORMAL");
        /* the usage writer commits often: a longer log before each checkpoint
         * writes its hot pages to the database file once, not per commit */
        apr_dbd_query(c->driver, c->handle, &nrows, "PRAGMA wal_autocheckpoint = 10000");
    }
    apr_hash_set(c->prepared, "s2a:init", APR_HASH_KEY_STRING, c);
}

/* Selects ask for the whole result at once (random access): small results,
 * and the pgsql driver's row-by-row mode does not mix with other queries. */
int s2a_db_run(s2a_dbc *c, apr_pool_t *p, const char *sql, const char **err)
{
    int nrows = 0;
    int rv = apr_dbd_query(c->driver, c->handle, &nrows, sql);
    if (rv != 0) {
        *err = apr_psprintf(p, "%s: %s", sql, apr_dbd_error(c->driver, c->handle, rv));
    }
    return rv;
}

/* The server process of the connection, -1 if the statement failed. */
static long backend_pid(s2a_dbc *c, apr_pool_t *p)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *v;
    if (apr_dbd_select(c->driver, p, c->handle, &res, "SELECT pg_backend_pid()", 1) != 0 ||
        apr_dbd_get_row(c->driver, p, res, &row, -1) != 0 ||
        !(v = apr_dbd_get_entry(c->driver, row, 0))) {
        return -1;
    }
    return atol(v);
}

/* The SQLite file's schema version, -1 if it cannot be read. */
static long schema_version(s2a_dbc *c, apr_pool_t *p)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *v;
    if (apr_dbd_select(c->driver, p, c->handle, &res, "PRAGMA schema_version", 1) != 0 ||
        apr_dbd_get_row(c->driver, p, res, &row, -1) != 0 ||
        !(v = apr_dbd_get_entry(c->driver, row, 0))) {
        return -1;
    }
    return atol(v);
}

/* Statements are kept while what they were prepared for stands: the
 * server session (pgsql), or the schema (SQLite: apr-util's statements
 * fail once another connection changed it, e.g. an operator's new index
 * or trigger). 1 when they were forgotten. */
static int forget_statements_unless(s2a_dbc *c, const char *label, long now)
{
    long *known = apr_hash_get(c->prepared, label, APR_HASH_KEY_STRING);
    if (known && *known == now) {
        return 0;
    }
    apr_hash_clear(c->prepared);
    known = apr_palloc(c->pool, sizeof(*known));
    *known = now;
    apr_hash_set(c->prepared, label, APR_HASH_KEY_STRING, known);
    return 1;
}

int s2a_db_alive(s2a_dbc *c, apr_pool_t *p)
{
    long pid;
    if (!s2a_db_is_pgsql(c)) {
        if (forget_statements_unless(c, "s2a:schema", schema_version(c, p))) {
            /* apr-util prepares with SQLite's legacy call, which does not
             * load a changed schema: a statement that meets the change
             * (and fails) makes the connection load it for the next */
            int nrows;
            apr_dbd_query(c->driver, c->handle, &nrows, "SELECT 1 FROM sqlite_master LIMIT 1");
        }
        return 1;
    }
    pid = backend_pid(c, p);
    if (pid < 0) {
        /* the failed statement marked the connection broken: this reconnects */
        if (apr_dbd_check_conn(c->driver, p, c->handle) != APR_SUCCESS ||
            (pid = backend_pid(c, p)) < 0) {
            return 0;
        }
    }
    /* A new server session (ours or mod_dbd's reconnect) knows none of the
     * statements prepared on the old one. */
    forget_statements_unless(c, "s2a:backend", pid);
    return 1;
}

/* apr-util's SQLite driver runs every call of a process under one mutex,
 * and SQLite waits for a busy database inside the call: a thread waiting to
 * begin would hold up the thread of the same process whose transaction it
 * waits for, up to the busy timeout each time. One write transaction per
 * process at a time avoids that; other processes still wait their turn. */
static apr_thread_mutex_t *sqlite_writes;

apr_status_t s2a_db_child_init(apr_pool_t *p)
{
    return apr_thread_mutex_create(&sqlite_writes, APR_THREAD_MUTEX_DEFAULT, p);
}

/* Plain statements, not apr_dbd_transaction_start: apr-util's pgsql driver
 * dereferences NULL when BEGIN fails on a connection the server dropped.
 * SQLite takes its write lock at BEGIN: two processes that both began
 * reading would otherwise deadlock on the upgrade. */
int s2a_db_begin(s2a_dbc *c)
{
    int nrows = 0, rc;
    s2a_db_conn_init(c);
    if (s2a_db_is_pgsql(c)) {
        return apr_dbd_query(c->driver, c->handle, &nrows, "BEGIN");
    }
    if (sqlite_writes) {
        apr_thread_mutex_lock(sqlite_writes);
    }
    rc = apr_dbd_query(c->driver, c->handle, &nrows, "BEGIN IMMEDIATE");
    if (rc != 0 && sqlite_writes) {
        apr_thread_mutex_unlock(sqlite_writes);
    }
    return rc;
}

int s2a_db_end(s2a_dbc *c, int ok)
{
    int nrows = 0;
    int rc = apr_dbd_query(c->driver, c->handle, &nrows, ok ? "COMMIT" : "ROLLBACK");
    if (rc != 0 && ok) {
        /* a failed COMMIT leaves the transaction open: end it */
        apr_dbd_query(c->driver, c->handle, &nrows, "ROLLBACK");
    }
    if (!s2a_db_is_pgsql(c) && sqlite_writes) {
        apr_thread_mutex_unlock(sqlite_writes);
    }
    return rc;
}

apr_int64_t s2a_db_i64(s2a_dbc *c, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(c->driver, row, col);
    return v ? apr_atoi64(v) : 0;
}

char *s2a_db_i64_text(apr_pool_t *p, apr_int64_t v)
{
    char digits[24], *end = digits + sizeof(digits), *d = end;
    /* counted negative, where every value fits */
    apr_int64_t n = v < 0 ? v : -v;

    do {
        *--d = (char)('0' - n % 10);
        n /= 10;
    } while (n);
    if (v < 0) {
        *--d = '-';
    }
    return apr_pstrmemdup(p, d, (apr_size_t)(end - d));
}

const char *s2a_db_str(s2a_dbc *c, apr_pool_t *p, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(c->driver, row, col);
    return apr_pstrdup(p, v ? v : "");
}

/* The statement kept under `label`, prepared from `sql` on its first use or
 * when `again`; a NULL label prepares it for this call only. */
static apr_dbd_prepared_t *prepared(s2a_dbc *c, apr_pool_t *p, const char *label, const char *sql,
                                    int again, const char **err)
{
    apr_dbd_prepared_t *st =
        label && !again ? apr_hash_get(c->prepared, label, APR_HASH_KEY_STRING) : NULL;
    if (st) {
        return st;
    }
    s2a_db_conn_init(c);
    if (apr_dbd_prepare(c->driver, label ? c->pool : p, c->handle, sql, label, &st) != 0) {
        *err = apr_psprintf(p, "prepare %s: %s", label ? label : "statement",
                            apr_dbd_error(c->driver, c->handle, 0));
        return NULL;
    }
    if (label) {
        apr_hash_set(c->prepared, label, APR_HASH_KEY_STRING, st);
    }
    return st;
}

/* apr-util prepares with SQLite's legacy call: a statement that meets a
 * schema another connection changed since (an operator's index, a trigger)
 * fails once with SQLITE_SCHEMA instead of being prepared again, and
 * apr_dbd hands out the message, not the code. */
static int schema_moved(s2a_dbc *c, int rv)
{
    const char *message;
    if (rv == 0 || s2a_db_is_pgsql(c)) {
        return 0;
    }
    message = apr_dbd_error(c->driver, c->handle, rv);
    return message && strstr(message, "database schema has changed") != NULL;
}

/* Runs the statement as a select into *res, or when res is NULL as a
 * query counting *nrows; once more after a schema change (schema_moved). */
static int run(s2a_dbc *c, apr_pool_t *p, const char *label, const char *sql, int nargs,
               const char **args, apr_dbd_results_t **res, int *nrows, const char **err)
{
    int again, rv = -1, n = 0;
    for (again = 0; again < 2; again++) {
        apr_dbd_prepared_t *st = prepared(c, p, label, sql, again, err);
        if (!st) {
            return -1;
        }
        if (res) {
            *res = NULL;
        }
        rv = res ? apr_dbd_pselect(c->driver, p, c->handle, res, st, 1, nargs, args)
                 : apr_dbd_pquery(c->driver, p, c->handle, &n, st, nargs, args);
        if (!schema_moved(c, rv)) {
            break;
        }
    }
    if (rv != 0) {
        *err = apr_pstrdup(p, apr_dbd_error(c->driver, c->handle, rv));
        return -1;
    }
    if (nrows) {
        *nrows = n;
    }
    return 0;
}

int s2a_db_select(s2a_dbc *c, apr_pool_t *p, const char *label, const char *sql, int nargs,
                  const char **args, apr_dbd_results_t **res, const char **err)
{
    return run(c, p, label, sql, nargs, args, res, NULL, err);
}

int s2a_db_query(s2a_dbc *c, apr_pool_t *p, const char *label, const char *sql, int nargs,
                 const char **args, int *nrows, const char **err)
{
    return run(c, p, label, sql, nargs, args, NULL, nrows, err);
}

int s2a_db_exec(s2a_dbc *c, apr_pool_t *p, const char *sql, int nargs, const char **args,
                int *nrows, const char **err)
{
    return s2a_db_query(c, p, NULL, sql, nargs, args, nrows, err);
}

int s2a_db_rows(s2a_dbc *c, apr_pool_t *p, const char *sql, const char *types, int nargs,
                const char **args, json_object **out, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    json_object *arr;
    int ncols, i;

    if (s2a_db_select(c, p, NULL, sql, nargs, args, &res, err) != 0) {
        return -1;
    }
    ncols = apr_dbd_num_cols(c->driver, res);
    arr = json_object_new_array();
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        json_object *o = json_object_new_object();
        for (i = 0; i < ncols && types[i]; i++) {
            const char *name = apr_dbd_get_name(c->driver, res, i);
            const char *v = apr_dbd_get_entry(c->driver, row, i);
            json_object *val;
            switch (types[i]) {
            case 'i':
                val = json_object_new_int64(v ? apr_atoi64(v) : 0);
                break;
            case 'b':
                val = json_object_new_boolean(v && apr_atoi64(v) != 0);
                break;
            case 'j':
                val = json_tokener_parse(v ? v : "null");
                break;
            default:
                val = json_object_new_string(v ? v : "");
            }
            json_object_object_add(o, name, val);
        }
        json_object_array_add(arr, o);
    }
    *out = arr;
    return 0;
}

int s2a_db_insert(s2a_dbc *c, apr_pool_t *p, const char *sql, int nargs, const char **args,
                  apr_int64_t *id, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0;

    if (s2a_db_select(c, p, NULL, apr_pstrcat(p, sql, " RETURNING id", NULL), nargs, args, &res,
                      err) != 0) {
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        *id = s2a_db_i64(c, row, 0);
        found = 1;
    }
    if (!found) {
        *err = "insert returned no id";
        return -1;
    }
    return 0;
}
