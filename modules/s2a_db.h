/* Connections, statements and transactions over apr_dbd: what every
 * database file (s2a_db_*.c) stands on. One SQL text serves SQLite and
 * PostgreSQL: apr_dbd translates the typed placeholders (%s %d %lld) per
 * driver. The files by concern:
 *   s2a_db_schema.c   tables, migrations, the meta table's secrets
 *   s2a_db_catalog.c  keys and accounts as requests read them
 *   s2a_db_billing.c  usage rows, deductions, windows, redeem codes and the
 *                     balance log: every write of money
 *   s2a_db_oauth.c    the tokens of OAuth accounts
 *   s2a_db_admin.c    the admin API's resources */
#ifndef S2A_DB_H
#define S2A_DB_H

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <json-c/json.h>

/* A connection as mod_dbd hands it out; prepared statements are cached in
 * `prepared`, which lives as long as the connection. */
typedef struct {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_hash_t *prepared;
    apr_pool_t *pool;
} s2a_dbc;

/* A pooled PostgreSQL connection looks fine after the server restarted until
 * a statement fails on it: one cheap statement finds out, and reconnects;
 * statements prepared on an earlier server session are prepared again. A
 * SQLite connection's statements are prepared again once the file's schema
 * changed. 0 if the database cannot be reached. */
int s2a_db_alive(s2a_dbc *c, apr_pool_t *p);

/* Once per process before transactions are used (see s2a_db_begin). */
apr_status_t s2a_db_child_init(apr_pool_t *p);

/* A transaction on the connection; s2a_db_end commits when ok, else rolls
 * back (also after a failed commit). 0 on success. Each s2a_db_begin that
 * returns 0 must be followed by s2a_db_end: on SQLite it holds the process's
 * write turn. */
int s2a_db_begin(s2a_dbc *c);
int s2a_db_end(s2a_dbc *c, int ok);

/* Statements run once, not kept: `sql` uses apr_dbd typed placeholders and
 * every argument is passed as text. 0 on success, -1 with *err. */
int s2a_db_exec(s2a_dbc *c, apr_pool_t *p, const char *sql, int nargs, const char **args,
                int *nrows, const char **err);
/* Rows as a json array of objects; `types` has one letter per column:
 * 'i' integer, 's' string, 'b' boolean from an integer, 'j' JSON text. */
int s2a_db_rows(s2a_dbc *c, apr_pool_t *p, const char *sql, const char *types, int nargs,
                const char **args, json_object **out, const char **err);
/* INSERT ... RETURNING id. */
int s2a_db_insert(s2a_dbc *c, apr_pool_t *p, const char *sql, int nargs, const char **args,
                  apr_int64_t *id, const char **err);

/* For the database files. */
int s2a_db_is_pgsql(const s2a_dbc *c);
/* The connection's settings (SQLite's busy wait and sync), once. */
void s2a_db_conn_init(s2a_dbc *c);
/* The statement kept under `label` (prepared from `sql` on its first use;
 * a NULL label prepares it for this call only), run with `args` as text;
 * a select reads its whole result into *res. A SQLite statement that meets
 * a schema another connection changed is prepared again and run once more.
 * 0, or -1 with *err. */
int s2a_db_select(s2a_dbc *c, apr_pool_t *p, const char *label, const char *sql, int nargs,
                  const char **args, apr_dbd_results_t **res, const char **err);
int s2a_db_query(s2a_dbc *c, apr_pool_t *p, const char *label, const char *sql, int nargs,
                 const char **args, int *nrows, const char **err);
/* A statement without arguments or result. */
int s2a_db_run(s2a_dbc *c, apr_pool_t *p, const char *sql, const char **err);
/* Column `col` of a row: an integer (0 when NULL), a string ("" when NULL). */
apr_int64_t s2a_db_i64(s2a_dbc *c, apr_dbd_row_t *row, int col);
const char *s2a_db_str(s2a_dbc *c, apr_pool_t *p, apr_dbd_row_t *row, int col);
/* An integer as statement argument text (a usage row has twenty: written
 * directly, not through a format). */
char *s2a_db_i64_text(apr_pool_t *p, apr_int64_t v);
#define S2A_DB_I64(p, v) s2a_db_i64_text((p), (apr_int64_t)(v))

#endif
