#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "s2a_db.h"
#include "s2a_state.h"

static int is_pgsql(const s2a_dbc *c)
{
    return strcmp(apr_dbd_name(c->driver), "pgsql") == 0;
}

/* SQLite connections wait for a lock instead of failing at once (several
 * processes write to one file) and, in WAL mode, sync at checkpoints rather
 * than at every commit. Done once per connection. */
static void conn_init(s2a_dbc *c)
{
    int nrows;
    if (apr_hash_get(c->prepared, "s2a:init", APR_HASH_KEY_STRING)) {
        return;
    }
    if (!is_pgsql(c)) {
        apr_dbd_query(c->driver, c->handle, &nrows, "PRAGMA busy_timeout = 5000");
        apr_dbd_query(c->driver, c->handle, &nrows, "PRAGMA synchronous = NORMAL");
        /* the usage writer commits often: a longer log before each checkpoint
         * writes its hot pages to the database file once, not per commit */
        apr_dbd_query(c->driver, c->handle, &nrows, "PRAGMA wal_autocheckpoint = 10000");
    }
    apr_hash_set(c->prepared, "s2a:init", APR_HASH_KEY_STRING, c);
}

/* Prepared once per connection and kept in the connection's own hash. */
static apr_dbd_prepared_t *stmt(s2a_dbc *c, const char *label, const char *sql, const char **err)
{
    apr_dbd_prepared_t *st = apr_hash_get(c->prepared, label, APR_HASH_KEY_STRING);
    if (st) {
        return st;
    }
    conn_init(c);
    if (apr_dbd_prepare(c->driver, c->pool, c->handle, sql, label, &st) != 0) {
        *err =
            apr_psprintf(c->pool, "prepare %s: %s", label, apr_dbd_error(c->driver, c->handle, 0));
        return NULL;
    }
    apr_hash_set(c->prepared, label, APR_HASH_KEY_STRING, st);
    return st;
}

/* Selects ask for the whole result at once (random access): small results,
 * and the pgsql driver's row-by-row mode does not mix with other queries. */
static int run(s2a_dbc *c, apr_pool_t *p, const char *sql, const char **err)
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

int s2a_db_alive(s2a_dbc *c, apr_pool_t *p)
{
    long pid, *known;
    if (!is_pgsql(c)) {
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
    known = apr_hash_get(c->prepared, "s2a:backend", APR_HASH_KEY_STRING);
    if (!known || *known != pid) {
        apr_hash_clear(c->prepared);
        known = apr_palloc(c->pool, sizeof(*known));
        *known = pid;
        apr_hash_set(c->prepared, "s2a:backend", APR_HASH_KEY_STRING, known);
    }
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
    conn_init(c);
    if (is_pgsql(c)) {
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
    if (!is_pgsql(c) && sqlite_writes) {
        apr_thread_mutex_unlock(sqlite_writes);
    }
    return rc;
}

static const char *schema_v1[] = {
    "CREATE TABLE IF NOT EXISTS s2a_users (id %ID%, name VARCHAR(255) NOT NULL,"
    " status VARCHAR(16) NOT NULL DEFAULT 'active', balance_nanousd BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS s2a_groups (id %ID%, name VARCHAR(255) NOT NULL UNIQUE,"
    " rate_multiplier_ppm BIGINT NOT NULL DEFAULT 1000000, created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS s2a_api_keys (id %ID%, user_id BIGINT NOT NULL,"
    " group_id BIGINT NOT NULL, name VARCHAR(255) NOT NULL DEFAULT '',"
    " key_hash CHAR(64) NOT NULL UNIQUE, prefix VARCHAR(32) NOT NULL,"
    " status VARCHAR(16) NOT NULL DEFAULT 'active', expires_at BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS s2a_accounts (id %ID%, name VARCHAR(255) NOT NULL,"
    " type VARCHAR(16) NOT NULL, credential TEXT NOT NULL, endpoint VARCHAR(1024) NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 50, concurrency INTEGER NOT NULL DEFAULT 3,"
    " model_mapping TEXT NOT NULL DEFAULT '{}', status VARCHAR(16) NOT NULL DEFAULT 'active',"
    " error_message TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS s2a_account_groups (account_id BIGINT NOT NULL,"
    " group_id BIGINT NOT NULL, PRIMARY KEY (account_id, group_id))",
    "CREATE TABLE IF NOT EXISTS s2a_usage (id %ID%, request_id VARCHAR(64) NOT NULL,"
    " attempt INTEGER NOT NULL, user_id BIGINT NOT NULL, api_key_id BIGINT NOT NULL,"
    " account_id BIGINT NOT NULL, group_id BIGINT NOT NULL, model VARCHAR(255) NOT NULL,"
    " upstream_model VARCHAR(255) NOT NULL, input_tokens BIGINT NOT NULL,"
    " output_tokens BIGINT NOT NULL, cache_creation_tokens BIGINT NOT NULL,"
    " cache_creation_1h_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL,"
    " input_cost_nanousd BIGINT NOT NULL, output_cost_nanousd BIGINT NOT NULL,"
    " cache_creation_cost_nanousd BIGINT NOT NULL, cache_read_cost_nanousd BIGINT NOT NULL,"
    " total_cost_nanousd BIGINT NOT NULL, actual_cost_nanousd BIGINT NOT NULL,"
    " rate_multiplier_ppm BIGINT NOT NULL, billing_type VARCHAR(16) NOT NULL,"
    " stream SMALLINT NOT NULL, status INTEGER NOT NULL, outcome VARCHAR(24) NOT NULL,"
    " duration_ms BIGINT NOT NULL, first_token_ms BIGINT NOT NULL, created_at BIGINT NOT NULL,"
    " UNIQUE (request_id, attempt))",
    "CREATE INDEX IF NOT EXISTS s2a_usage_user ON s2a_usage (user_id, created_at)",
    "CREATE INDEX IF NOT EXISTS s2a_usage_key ON s2a_usage (api_key_id, created_at)",
    "CREATE INDEX IF NOT EXISTS s2a_usage_account ON s2a_usage (account_id, created_at)",
    NULL};

/* Version 2: an operator can take an account out of scheduling without
 * disabling it. */
static const char *schema_v2[] = {
    "ALTER TABLE s2a_accounts ADD COLUMN schedulable SMALLINT NOT NULL DEFAULT 1", NULL};

/* Version 3: limits per user and per key (0: none). */
static const char *schema_v3[] = {
    "ALTER TABLE s2a_users ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN rpm_limit INTEGER NOT NULL DEFAULT 0", NULL};

/* Version 4: the upstream error statuses an account's state follows
 * (JSON array; empty: all). */
static const char *schema_v4[] = {
    "ALTER TABLE s2a_accounts ADD COLUMN custom_error_codes TEXT NOT NULL DEFAULT ''", NULL};

/* OAuth and setup-token accounts: the refresh token (sealed like the
 * credential) and when the access token expires (Unix seconds, 0 unknown). */
static const char *schema_v5[] = {
    "ALTER TABLE s2a_accounts ADD COLUMN refresh_token TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE s2a_accounts ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0",
    /* headers the operator fixes for every request of the account (JSON object) */
    "ALTER TABLE s2a_accounts ADD COLUMN headers TEXT NOT NULL DEFAULT '{}'", NULL};

/* Version 6: who changed a balance, by how much and why. Usage is read
 * newest first, per user, key or account or overall, and paged by the last
 * row seen: every index ends in (created_at, id). (SQLite's indexes end in the
 * rowid anyway; PostgreSQL's need it spelled out.) Each index costs the
 * writer, so there are no more than these. */
static const char *schema_v6[] = {
    "CREATE TABLE IF NOT EXISTS s2a_balance_log (id %ID%, user_id BIGINT NOT NULL,"
    " delta_nanousd BIGINT NOT NULL, balance_after_nanousd BIGINT NOT NULL,"
    " kind VARCHAR(16) NOT NULL, actor VARCHAR(100) NOT NULL, reason VARCHAR(500) NOT NULL,"
    " created_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS s2a_balance_log_user ON s2a_balance_log (user_id, id)",
    "DROP INDEX IF EXISTS s2a_usage_user",
    "DROP INDEX IF EXISTS s2a_usage_key",
    "DROP INDEX IF EXISTS s2a_usage_account",
    "CREATE INDEX IF NOT EXISTS s2a_usage_user_time ON s2a_usage (user_id, created_at, id)",
    "CREATE INDEX IF NOT EXISTS s2a_usage_key_time ON s2a_usage (api_key_id, created_at, id)",
    "CREATE INDEX IF NOT EXISTS s2a_usage_account_time ON s2a_usage (account_id, created_at, id)",
    "CREATE INDEX IF NOT EXISTS s2a_usage_time ON s2a_usage (created_at, id)", NULL};

/* Version 7: groups billed by subscription, with daily, weekly and monthly
 * allowances (0: none), and the subscriptions of users to them. */
static const char *schema_v7[] = {
    "ALTER TABLE s2a_groups ADD COLUMN billing_type VARCHAR(16) NOT NULL DEFAULT 'balance'",
    "ALTER TABLE s2a_groups ADD COLUMN daily_limit_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_groups ADD COLUMN weekly_limit_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_groups ADD COLUMN monthly_limit_nanousd BIGINT NOT NULL DEFAULT 0",
    "CREATE TABLE IF NOT EXISTS s2a_subscriptions (id %ID%, user_id BIGINT NOT NULL,"
    " group_id BIGINT NOT NULL, expires_at BIGINT NOT NULL,"
    " status VARCHAR(16) NOT NULL DEFAULT 'active',"
    " daily_usage_nanousd BIGINT NOT NULL DEFAULT 0, daily_start BIGINT NOT NULL DEFAULT 0,"
    " weekly_usage_nanousd BIGINT NOT NULL DEFAULT 0, weekly_start BIGINT NOT NULL DEFAULT 0,"
    " monthly_usage_nanousd BIGINT NOT NULL DEFAULT 0, monthly_start BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL, UNIQUE (user_id, group_id))",
    NULL};

/* Version 8: redeem codes, each good once: a balance amount, or days of a
 * group's subscription. used_by 0: not used yet. */
static const char *schema_v8[] = {
    "CREATE TABLE IF NOT EXISTS s2a_redeem_codes (id %ID%, code_hash VARCHAR(64) NOT NULL UNIQUE,"
    " prefix VARCHAR(32) NOT NULL, kind VARCHAR(16) NOT NULL,"
    " amount_nanousd BIGINT NOT NULL DEFAULT 0, group_id BIGINT NOT NULL DEFAULT 0,"
    " days INTEGER NOT NULL DEFAULT 0, used_by BIGINT NOT NULL DEFAULT 0,"
    " used_at BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)",
    NULL};

/* migrations[v] brings a database at version v to v + 1 */
static const char *const *const migrations[] = {schema_v1, schema_v2, schema_v3, schema_v4,
                                                schema_v5, schema_v6, schema_v7, schema_v8};
#define S2A_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *with_id_type(apr_pool_t *p, const s2a_dbc *c, const char *sql)
{
    const char *mark = strstr(sql, "%ID%");
    if (!mark) {
        return sql;
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, sql, (apr_size_t)(mark - sql)),
                       is_pgsql(c) ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT",
                       mark + 4, NULL);
}

apr_status_t s2a_db_migrate(s2a_dbc *c, apr_pool_t *p, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int version = 0;
    int i, v, ok = 1;

    conn_init(c);
    if (!is_pgsql(c)) {
        const char *have;
        int major = 0, minor = 0;
        /* usage rows are written with INSERT ... RETURNING (3.35) */
        if (apr_dbd_select(c->driver, p, c->handle, &res, "SELECT sqlite_version()", 1) == 0 &&
            apr_dbd_get_row(c->driver, p, res, &row, -1) == 0 &&
            (have = apr_dbd_get_entry(c->driver, row, 0)) &&
            sscanf(have, "%d.%d", &major, &minor) == 2 &&
            (major < 3 || (major == 3 && minor < 35))) {
            *err = apr_psprintf(p, "SQLite 3.35 or later is needed; this is %s", have);
            return APR_EGENERAL;
        }
        res = NULL;
        row = NULL;
        /* Readers never block the writer thread; the setting sticks to the file.
         * The pragma answers with a row, so it goes through select. */
        if (apr_dbd_select(c->driver, p, c->handle, &res, "PRAGMA journal_mode=WAL", 1) != 0) {
            *err = apr_pstrcat(
                p, "PRAGMA journal_mode=WAL: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
            return APR_EGENERAL;
        }
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        }
        res = NULL;
        row = NULL;
    }
    if (run(c, p,
            "CREATE TABLE IF NOT EXISTS s2a_meta (k VARCHAR(64) PRIMARY KEY,"
            " v VARCHAR(255) NOT NULL)",
            err) != 0) {
        return APR_EGENERAL;
    }
    if (apr_dbd_select(c->driver, p, c->handle, &res,
                       "SELECT v FROM s2a_meta WHERE k = 'schema_version'", 1) == 0) {
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
            version = atoi(apr_dbd_get_entry(c->driver, row, 0));
        }
    }
    if (version >= S2A_SCHEMA_VERSION) {
        return APR_SUCCESS;
    }
    if (s2a_db_begin(c) != 0) {
        *err = "cannot start a transaction";
        return APR_EGENERAL;
    }
    for (v = version; ok && v < S2A_SCHEMA_VERSION; v++) {
        for (i = 0; ok && migrations[v][i]; i++) {
            ok = run(c, p, with_id_type(p, c, migrations[v][i]), err) == 0;
        }
    }
    if (ok) {
        ok = run(c, p,
                 apr_psprintf(p,
                              version == 0
                                  ? "INSERT INTO s2a_meta (k, v) VALUES ('schema_version', '%d')"
                                  : "UPDATE s2a_meta SET v = '%d' WHERE k = 'schema_version'",
                              S2A_SCHEMA_VERSION),
                 err) == 0;
    }
    s2a_db_end(c, ok);
    return ok ? APR_SUCCESS : APR_EGENERAL;
}

static apr_int64_t entry_i64(s2a_dbc *c, apr_dbd_row_t *row, int col);

apr_status_t s2a_db_secret(s2a_dbc *c, apr_pool_t *p, const char *name, const char *fresh,
                           const char **value, const char **err)
{
    const char *args[2] = {name, fresh};
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_dbd_prepared_t *st;

    *value = NULL;
    if (s2a_db_exec(c, p, "INSERT INTO s2a_meta (k, v) VALUES (%s, %s) ON CONFLICT (k) DO NOTHING",
                    2, args, NULL, err) != 0) {
        return APR_EGENERAL;
    }
    st = stmt(c, "s2a_meta_get", "SELECT v FROM s2a_meta WHERE k = %s", err);
    if (!st || apr_dbd_pvselect(c->driver, p, c->handle, &res, st, 1, name, NULL) != 0) {
        return APR_EGENERAL;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        *value = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 0));
    }
    return *value ? APR_SUCCESS : APR_EGENERAL;
}

static apr_int64_t entry_i64(s2a_dbc *c, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(c->driver, row, col);
    return v ? apr_atoi64(v) : 0;
}

static const char *entry_str(s2a_dbc *c, apr_pool_t *p, apr_dbd_row_t *row, int col)
{
    const char *v = apr_dbd_get_entry(c->driver, row, col);
    return apr_pstrdup(p, v ? v : "");
}

int s2a_db_key_lookup(s2a_dbc *c, apr_pool_t *p, const char *key_hash, s2a_key_rec *out)
{
    const char *err = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0, i;
    apr_dbd_prepared_t *st =
        stmt(c, "s2a_key_lookup",
             "SELECT k.id, k.user_id, k.group_id, k.expires_at, u.balance_nanousd,"
             " g.rate_multiplier_ppm, k.status, u.status, k.concurrency, k.rpm_limit,"
             " u.concurrency, g.billing_type, COALESCE(s.id, 0), COALESCE(s.expires_at, 0),"
             " COALESCE(s.status, ''), g.daily_limit_nanousd, g.weekly_limit_nanousd,"
             " g.monthly_limit_nanousd, COALESCE(s.daily_usage_nanousd, 0),"
             " COALESCE(s.weekly_usage_nanousd, 0), COALESCE(s.monthly_usage_nanousd, 0),"
             " COALESCE(s.daily_start, 0), COALESCE(s.weekly_start, 0),"
             " COALESCE(s.monthly_start, 0), g.name FROM s2a_api_keys k"
             " JOIN s2a_users u ON u.id = k.user_id JOIN s2a_groups g ON g.id = k.group_id"
             " LEFT JOIN s2a_subscriptions s ON s.user_id = k.user_id AND s.group_id = k.group_id"
             " WHERE k.key_hash = %s",
             &err);
    if (!st || apr_dbd_pvselect(c->driver, p, c->handle, &res, st, 1, key_hash, NULL) != 0) {
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        out->id = entry_i64(c, row, 0);
        out->user_id = entry_i64(c, row, 1);
        out->group_id = entry_i64(c, row, 2);
        out->expires_at = entry_i64(c, row, 3);
        out->balance_nano = entry_i64(c, row, 4);
        out->multiplier_ppm = entry_i64(c, row, 5);
        out->active = strcmp(entry_str(c, p, row, 6), "active") == 0 &&
                      strcmp(entry_str(c, p, row, 7), "active") == 0;
        out->concurrency = (int)entry_i64(c, row, 8);
        out->rpm_limit = (int)entry_i64(c, row, 9);
        out->user_concurrency = (int)entry_i64(c, row, 10);
        out->subscription = strcmp(entry_str(c, p, row, 11), "subscription") == 0;
        out->sub_id = entry_i64(c, row, 12);
        out->sub_expires_at = entry_i64(c, row, 13);
        out->sub_active = strcmp(entry_str(c, p, row, 14), "active") == 0;
        apr_cpystrn(out->group_name, entry_str(c, p, row, 24), sizeof(out->group_name));
        for (i = 0; i < S2A_WINDOWS; i++) {
            out->windows.limit[i] = entry_i64(c, row, 15 + i);
            out->windows.usage[i] = entry_i64(c, row, 18 + i);
            out->windows.start[i] = entry_i64(c, row, 21 + i);
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

apr_status_t s2a_db_accounts_load(s2a_dbc *c, apr_pool_t *p, apr_array_header_t **out,
                                  const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_array_header_t *arr = apr_array_make(p, 16, sizeof(s2a_account));
    apr_hash_t *by_id = apr_hash_make(p);
    int i;

    if (apr_dbd_select(c->driver, p, c->handle, &res,
                       "SELECT id, name, type, credential, endpoint, priority, concurrency,"
                       " model_mapping, status, schedulable, custom_error_codes,"
                       " CASE WHEN refresh_token <> '' THEN 1 ELSE 0 END, expires_at, headers"
                       " FROM s2a_accounts ORDER BY id",
                       1) != 0) {
        *err = apr_dbd_error(c->driver, c->handle, 0);
        return APR_EGENERAL;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        s2a_account *a = apr_array_push(arr);
        a->id = entry_i64(c, row, 0);
        a->name = entry_str(c, p, row, 1);
        a->type = entry_str(c, p, row, 2);
        a->credential = entry_str(c, p, row, 3);
        a->endpoint = entry_str(c, p, row, 4);
        a->priority = (int)entry_i64(c, row, 5);
        a->concurrency = (int)entry_i64(c, row, 6);
        a->mapping = parse_mapping(p, entry_str(c, p, row, 7));
        a->active = strcmp(entry_str(c, p, row, 8), "active") == 0 && entry_i64(c, row, 9) != 0;
        a->error_codes = parse_codes(p, entry_str(c, p, row, 10));
        a->refreshable = entry_i64(c, row, 11) != 0;
        a->expires_at = entry_i64(c, row, 12);
        a->headers = parse_headers(p, entry_str(c, p, row, 13));
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
        apr_int64_t aid = entry_i64(c, row, 0);
        s2a_account *a = apr_hash_get(by_id, &aid, sizeof(aid));
        if (a) {
            APR_ARRAY_PUSH(a->group_ids, apr_int64_t) = entry_i64(c, row, 1);
        }
    }
    *out = arr;
    return APR_SUCCESS;
}

#define I64(p, v) apr_psprintf((p), "%" APR_INT64_T_FMT, (apr_int64_t)(v))

#define USAGE_COLUMNS 27
#define USAGE_COLUMN_NAMES                                                                         \
    "request_id, attempt, user_id, api_key_id, account_id, group_id, model, upstream_model,"       \
    " input_tokens, output_tokens, cache_creation_tokens, cache_creation_1h_tokens,"               \
    " cache_read_tokens, input_cost_nanousd, output_cost_nanousd, cache_creation_cost_nanousd,"    \
    " cache_read_cost_nanousd, total_cost_nanousd, actual_cost_nanousd, rate_multiplier_ppm,"      \
    " billing_type, stream, status, outcome, duration_ms, first_token_ms, created_at"

/* One INSERT of `n` rows that returns the (request id, attempt) of the rows
 * it added: a row billed before (a batch written again after an uncertain
 * commit) conflicts and is left out. Prepared once per size. */
static apr_dbd_prepared_t *insert_stmt(s2a_dbc *c, int n, const char *label, const char **err)
{
    static const char *const values =
        "(%s, %d, %lld, %lld, %lld, %lld, %s, %s, %lld, %lld, %lld, %lld, %lld, %lld, %lld,"
        " %lld, %lld, %lld, %lld, %lld, %s, %d, %d, %s, %lld, %lld, %lld)";
    apr_dbd_prepared_t *st = apr_hash_get(c->prepared, label, APR_HASH_KEY_STRING);
    struct iovec *parts;
    const char *sql;
    int i;

    if (st) {
        return st;
    }
    parts = apr_palloc(c->pool, sizeof(*parts) * (apr_size_t)(2 * n + 1));
    parts[0].iov_base =
        "INSERT INTO s2a_usage (" USAGE_COLUMN_NAMES ") VALUES ";
    parts[0].iov_len = strlen(parts[0].iov_base);
    for (i = 0; i < n; i++) {
        parts[1 + 2 * i].iov_base = (void *)(i ? ", " : "");
        parts[1 + 2 * i].iov_len = i ? 2 : 0;
        parts[2 + 2 * i].iov_base = (void *)values;
        parts[2 + 2 * i].iov_len = strlen(values);
    }
    sql = apr_pstrcat(c->pool, apr_pstrcatv(c->pool, parts, (apr_size_t)(2 * n + 1), NULL),
                      " ON CONFLICT (request_id, attempt) DO NOTHING RETURNING request_id, attempt",
                      NULL);
    return stmt(c, label, sql, err);
}

static void row_args(apr_pool_t *p, const s2a_usage_row *r, const char **args)
{
    args[0] = r->request_id;
    args[1] = apr_itoa(p, r->attempt);
    args[2] = I64(p, r->user_id);
    args[3] = I64(p, r->api_key_id);
    args[4] = I64(p, r->account_id);
    args[5] = I64(p, r->group_id);
    args[6] = r->model;
    args[7] = r->upstream_model;
    args[8] = I64(p, r->input_tokens);
    args[9] = I64(p, r->output_tokens);
    args[10] = I64(p, r->cache_creation_tokens);
    args[11] = I64(p, r->cache_creation_1h_tokens);
    args[12] = I64(p, r->cache_read_tokens);
    args[13] = I64(p, r->input_cost);
    args[14] = I64(p, r->output_cost);
    args[15] = I64(p, r->cache_creation_cost);
    args[16] = I64(p, r->cache_read_cost);
    args[17] = I64(p, r->total_cost);
    args[18] = I64(p, r->actual_cost);
    args[19] = I64(p, r->multiplier_ppm);
    args[20] = r->subscription ? "subscription" : "balance";
    args[21] = apr_itoa(p, r->stream);
    args[22] = apr_itoa(p, r->status);
    args[23] = r->outcome;
    args[24] = I64(p, r->duration_ms);
    args[25] = I64(p, r->first_token_ms);
    args[26] = I64(p, r->created_at);
}

/* inserted[i] = 1 for each of rows[0..n-1] the RETURNING rows name. */
static void mark_inserted(s2a_dbc *c, apr_pool_t *p, apr_dbd_results_t *res,
                          const s2a_usage_row *rows, int n, char *inserted)
{
    apr_hash_t *at = apr_hash_make(p);
    apr_dbd_row_t *row = NULL;
    int i;
    for (i = 0; i < n; i++) {
        apr_hash_set(at, apr_psprintf(p, "%s/%d", rows[i].request_id, rows[i].attempt),
                     APR_HASH_KEY_STRING, &inserted[i]);
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        const char *id = apr_dbd_get_entry(c->driver, row, 0);
        char *mark = id ? apr_hash_get(at,
                                       apr_psprintf(p, "%s/%" APR_INT64_T_FMT, id,
                                                    entry_i64(c, row, 1)),
                                       APR_HASH_KEY_STRING)
                        : NULL;
        if (mark) {
            *mark = 1;
        }
    }
}

/* Inserts rows[0..n-1]; inserted[i] is set to 1 for each row added. */
static int insert_rows(s2a_dbc *c, apr_pool_t *p, const s2a_usage_row *rows, int n,
                       const char *label, char *inserted, const char **err)
{
    apr_dbd_prepared_t *ins = insert_stmt(c, n, label, err);
    const char **args = apr_palloc(p, sizeof(*args) * (apr_size_t)(n * USAGE_COLUMNS));
    apr_dbd_results_t *res = NULL;
    int i;

    if (!ins) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        row_args(p, &rows[i], args + i * USAGE_COLUMNS);
    }
    if (apr_dbd_pselect(c->driver, p, c->handle, &res, ins, 1, n * USAGE_COLUMNS, args) != 0) {
        *err = apr_pstrcat(p, "usage insert: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -1;
    }
    mark_inserted(c, p, res, rows, n, inserted);
    return 0;
}

/* PostgreSQL: one statement of one array per column, whatever the number of
 * rows: planning a VALUES list of thousands of parameters costs more than
 * storing the rows. */
static int insert_rows_pg(s2a_dbc *c, apr_pool_t *p, const s2a_usage_row *rows, int n,
                          char *inserted, const char **err)
{
    static const char *const types[USAGE_COLUMNS] = {
        "text",   "int",    "bigint", "bigint", "bigint", "bigint", "text",
        "text",   "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
        "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "text",
        "int",    "int",    "text",   "bigint", "bigint", "bigint"};
    apr_dbd_prepared_t *ins = apr_hash_get(c->prepared, "s2a_usage_unnest", APR_HASH_KEY_STRING);
    const char *one[USAGE_COLUMNS], *arrays[USAGE_COLUMNS];
    apr_array_header_t *buf[USAGE_COLUMNS];
    apr_dbd_results_t *res = NULL;
    int i, k;

    if (!ins) {
        const char *sql = "INSERT INTO s2a_usage (" USAGE_COLUMN_NAMES ") SELECT * FROM unnest(";
        for (k = 0; k < USAGE_COLUMNS; k++) {
            sql = apr_pstrcat(p, sql, k ? ", " : "", "%s::", types[k], "[]", NULL);
        }
        sql = apr_pstrcat(p, sql,
                          ") ON CONFLICT (request_id, attempt) DO NOTHING"
                          " RETURNING request_id, attempt",
                          NULL);
        if (!(ins = stmt(c, "s2a_usage_unnest", sql, err))) {
            return -1;
        }
    }
    for (k = 0; k < USAGE_COLUMNS; k++) {
        buf[k] = apr_array_make(p, n * 24 + 2, 1);
        *(char *)apr_array_push(buf[k]) = '{';
    }
    for (i = 0; i < n; i++) {
        row_args(p, &rows[i], one);
        for (k = 0; k < USAGE_COLUMNS; k++) {
            const char *v = one[k];
            if (i) {
                *(char *)apr_array_push(buf[k]) = ',';
            }
            if (types[k][0] == 't') {
                /* an array element in quotes: backslash before " and \ */
                *(char *)apr_array_push(buf[k]) = '"';
                for (; *v; v++) {
                    if (*v == '"' || *v == '\\') {
                        *(char *)apr_array_push(buf[k]) = '\\';
                    }
                    *(char *)apr_array_push(buf[k]) = *v;
                }
                *(char *)apr_array_push(buf[k]) = '"';
            } else {
                for (; *v; v++) {
                    *(char *)apr_array_push(buf[k]) = *v;
                }
            }
        }
    }
    for (k = 0; k < USAGE_COLUMNS; k++) {
        *(char *)apr_array_push(buf[k]) = '}';
        *(char *)apr_array_push(buf[k]) = '\0';
        arrays[k] = buf[k]->elts;
    }
    if (apr_dbd_pselect(c->driver, p, c->handle, &res, ins, 1, USAGE_COLUMNS, arrays) != 0) {
        *err = apr_pstrcat(p, "usage insert: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -1;
    }
    mark_inserted(c, p, res, rows, n, inserted);
    return 0;
}

typedef struct {
    apr_int64_t user_id;
    apr_int64_t group_id; /* subscription rows */
    apr_int64_t amount;
    apr_int64_t at; /* the latest row's time: where a new window starts */
} deduction;

/* Adds to the windows of a subscription, starting again those past their
 * end; a window now used up is reported like a depleted balance. (SQLite
 * binds the arguments as text: each is compared with a column, never with an
 * expression, so that the column's type applies.) */
static int add_to_windows(s2a_dbc *c, apr_pool_t *p, const deduction *d,
                          apr_array_header_t *depleted, const char **err)
{
    static const char *const upd_sql =
        "UPDATE s2a_subscriptions SET"
        " daily_usage_nanousd = CASE WHEN daily_start = 0 OR daily_start <= %lld - 86400"
        " THEN %lld ELSE daily_usage_nanousd + %lld END,"
        " daily_start = CASE WHEN daily_start = 0 OR daily_start <= %lld - 86400"
        " THEN %lld ELSE daily_start END,"
        " weekly_usage_nanousd = CASE WHEN weekly_start = 0 OR weekly_start <= %lld - 604800"
        " THEN %lld ELSE weekly_usage_nanousd + %lld END,"
        " weekly_start = CASE WHEN weekly_start = 0 OR weekly_start <= %lld - 604800"
        " THEN %lld ELSE weekly_start END,"
        " monthly_usage_nanousd = CASE WHEN monthly_start = 0 OR monthly_start <= %lld - 2592000"
        " THEN %lld ELSE monthly_usage_nanousd + %lld END,"
        " monthly_start = CASE WHEN monthly_start = 0 OR monthly_start <= %lld - 2592000"
        " THEN %lld ELSE monthly_start END"
        " WHERE user_id = %lld AND group_id = %lld";
    apr_dbd_prepared_t *upd = stmt(c, "s2a_windows_add", upd_sql, err);
    apr_dbd_prepared_t *full = stmt(
        c, "s2a_windows_full",
        "SELECT COUNT(*) FROM s2a_subscriptions s JOIN s2a_groups g ON g.id = s.group_id"
        " WHERE s.user_id = %lld AND s.group_id = %lld AND"
        " ((g.daily_limit_nanousd > 0 AND s.daily_usage_nanousd >= g.daily_limit_nanousd) OR"
        " (g.weekly_limit_nanousd > 0 AND s.weekly_usage_nanousd >= g.weekly_limit_nanousd) OR"
        " (g.monthly_limit_nanousd > 0 AND s.monthly_usage_nanousd >= g.monthly_limit_nanousd))",
        err);
    const char *args[17], *at = I64(p, d->at), *amount = I64(p, d->amount);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int i, nrows = 0;
    if (!upd || !full) {
        return -1;
    }
    for (i = 0; i < 3; i++) {
        args[5 * i] = at;
        args[5 * i + 1] = amount;
        args[5 * i + 2] = amount;
        args[5 * i + 3] = at;
        args[5 * i + 4] = at;
    }
    args[15] = I64(p, d->user_id);
    args[16] = I64(p, d->group_id);
    if (apr_dbd_pquery(c->driver, p, c->handle, &nrows, upd, 17, args) != 0) {
        *err = apr_pstrcat(p, "subscription update: ", apr_dbd_error(c->driver, c->handle, 0),
                           NULL);
        return -1;
    }
    if (depleted && apr_dbd_pselect(c->driver, p, c->handle, &res, full, 1, 2, args + 15) == 0) {
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
            if (entry_i64(c, row, 0) > 0) {
                APR_ARRAY_PUSH(depleted, apr_int64_t) = d->user_id;
            }
        }
    }
    return 0;
}

/* One balance update per user and batch, not per row; it reads the new
 * balance back in the same statement. */
static int deduct(s2a_dbc *c, apr_pool_t *p, const deduction *d, apr_array_header_t *depleted,
                  const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[2];
    apr_dbd_prepared_t *upd = stmt(c, "s2a_usage_deduct",
                                   "UPDATE s2a_users SET balance_nanousd = balance_nanousd - %lld"
                                   " WHERE id = %lld RETURNING balance_nanousd",
                                   err);
    if (!upd) {
        return -1;
    }
    args[0] = I64(p, d->amount);
    args[1] = I64(p, d->user_id);
    if (apr_dbd_pselect(c->driver, p, c->handle, &res, upd, 1, 2, args) != 0) {
        *err = apr_pstrcat(p, "balance update: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        if (depleted && entry_i64(c, row, 0) <= 0) {
            APR_ARRAY_PUSH(depleted, apr_int64_t) = d->user_id;
        }
    }
    return 0;
}

apr_status_t s2a_db_usage_write(s2a_dbc *c, apr_pool_t *p, const s2a_usage_row *rows, int n,
                                apr_array_header_t *depleted, const char **err)
{
    static const int chunks[] = {256, 64, 16, 4, 1};
    static const char *const labels[] = {"s2a_usage_insert_256", "s2a_usage_insert_64",
                                         "s2a_usage_insert_16", "s2a_usage_insert_4",
                                         "s2a_usage_insert_1"};
    apr_hash_t *per_user = apr_hash_make(p);
    apr_hash_index_t *hi;
    char *inserted = apr_pcalloc(p, (apr_size_t)n + 1);
    int i, k, ok = 1;

    if (s2a_db_begin(c) != 0) {
        *err = apr_pstrcat(p, "begin: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return APR_EGENERAL;
    }
    if (is_pgsql(c)) {
        ok = insert_rows_pg(c, p, rows, n, inserted, err) == 0;
        i = n;
    }
    /* SQLite: a few statements of fixed sizes (each prepared once) per batch */
    for (i = is_pgsql(c) ? n : 0, k = 0; ok && i < n;) {
        while (chunks[k] > n - i) {
            k++;
        }
        ok = insert_rows(c, p, rows + i, chunks[k], labels[k], inserted + i, err) == 0;
        i += chunks[k];
    }
    for (i = 0; ok && i < n; i++) {
        if (inserted[i]) {
            /* balances by user; windows by user and group */
            apr_int64_t k[2] = {rows[i].user_id, rows[i].subscription ? rows[i].group_id : 0};
            deduction *d = apr_hash_get(per_user, k, sizeof(k));
            if (!d) {
                d = apr_pcalloc(p, sizeof(*d));
                d->user_id = k[0];
                d->group_id = k[1];
                apr_hash_set(per_user, apr_pmemdup(p, k, sizeof(k)), sizeof(k), d);
            }
            d->amount += rows[i].subscription ? rows[i].total_cost : rows[i].actual_cost;
            d->at = rows[i].created_at > d->at ? rows[i].created_at : d->at;
        }
    }
    for (hi = apr_hash_first(p, per_user); ok && hi; hi = apr_hash_next(hi)) {
        const deduction *d = apr_hash_this_val(hi);
        ok = (d->group_id ? add_to_windows(c, p, d, depleted, err)
                          : deduct(c, p, d, depleted, err)) == 0;
    }
    if (s2a_db_end(c, ok) != 0 && ok) {
        *err = apr_pstrcat(p, "commit: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        ok = 0;
    }
    return ok ? APR_SUCCESS : APR_EGENERAL;
}

static apr_dbd_prepared_t *adhoc(s2a_dbc *c, apr_pool_t *p, const char *sql, const char **err)
{
    apr_dbd_prepared_t *st = NULL;
    conn_init(c);
    if (apr_dbd_prepare(c->driver, p, c->handle, sql, NULL, &st) != 0) {
        *err = apr_psprintf(p, "prepare: %s", apr_dbd_error(c->driver, c->handle, 0));
        return NULL;
    }
    return st;
}

int s2a_db_exec(s2a_dbc *c, apr_pool_t *p, const char *sql, int nargs, const char **args,
                int *nrows, const char **err)
{
    apr_dbd_prepared_t *st = adhoc(c, p, sql, err);
    int n = 0;
    if (!st) {
        return -1;
    }
    if (apr_dbd_pquery(c->driver, p, c->handle, &n, st, nargs, args) != 0) {
        *err = apr_pstrdup(p, apr_dbd_error(c->driver, c->handle, 0));
        return -1;
    }
    if (nrows) {
        *nrows = n;
    }
    return 0;
}

int s2a_db_rows(s2a_dbc *c, apr_pool_t *p, const char *sql, const char *types, int nargs,
                const char **args, json_object **out, const char **err)
{
    apr_dbd_prepared_t *st = adhoc(c, p, sql, err);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    json_object *arr;
    int ncols, i;

    if (!st) {
        return -1;
    }
    if (apr_dbd_pselect(c->driver, p, c->handle, &res, st, 1, nargs, args) != 0) {
        *err = apr_pstrdup(p, apr_dbd_error(c->driver, c->handle, 0));
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
    apr_dbd_prepared_t *st = adhoc(c, p, apr_pstrcat(p, sql, " RETURNING id", NULL), err);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0;

    if (!st) {
        return -1;
    }
    if (apr_dbd_pselect(c->driver, p, c->handle, &res, st, 1, nargs, args) != 0) {
        *err = apr_pstrdup(p, apr_dbd_error(c->driver, c->handle, 0));
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        *id = entry_i64(c, row, 0);
        found = 1;
    }
    if (!found) {
        *err = "insert returned no id";
        return -1;
    }
    return 0;
}

apr_status_t s2a_db_oauth_get(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char **credential,
                              const char **refresh_token, apr_int64_t *expires_at, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1];
    apr_dbd_prepared_t *st =
        stmt(c, "s2a_oauth_get",
             "SELECT credential, refresh_token, expires_at FROM s2a_accounts WHERE id = %lld", err);
    apr_status_t rv = APR_NOTFOUND;
    if (!st) {
        return APR_EGENERAL;
    }
    args[0] = I64(p, id);
    if (apr_dbd_pselect(c->driver, p, c->handle, &res, st, 1, 1, args) != 0) {
        *err = apr_pstrdup(p, apr_dbd_error(c->driver, c->handle, 0));
        return APR_EGENERAL;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        *credential = entry_str(c, p, row, 0);
        *refresh_token = entry_str(c, p, row, 1);
        *expires_at = entry_i64(c, row, 2);
        rv = APR_SUCCESS;
    }
    return rv;
}

apr_status_t s2a_db_oauth_save(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char *credential,
                               const char *refresh_token, apr_int64_t expires_at, const char **err)
{
    const char *args[4];
    int nrows = 0;
    apr_dbd_prepared_t *st = stmt(c, "s2a_oauth_save",
                                  "UPDATE s2a_accounts SET credential = %s, refresh_token = %s,"
                                  " expires_at = %lld WHERE id = %lld",
                                  err);
    if (!st) {
        return APR_EGENERAL;
    }
    args[0] = credential;
    args[1] = refresh_token;
    args[2] = I64(p, expires_at);
    args[3] = I64(p, id);
    if (apr_dbd_pquery(c->driver, p, c->handle, &nrows, st, 4, args) != 0) {
        *err = apr_pstrdup(p, apr_dbd_error(c->driver, c->handle, 0));
        return APR_EGENERAL;
    }
    return nrows == 1 ? APR_SUCCESS : APR_NOTFOUND;
}

apr_status_t s2a_db_oauth_due(s2a_dbc *c, apr_pool_t *p, apr_int64_t before,
                              apr_array_header_t **ids, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1];
    apr_dbd_prepared_t *st = stmt(c, "s2a_oauth_due",
                                  "SELECT id FROM s2a_accounts WHERE refresh_token <> ''"
                                  " AND expires_at > 0 AND expires_at < %lld AND status = 'active'",
                                  err);
    if (!st) {
        return APR_EGENERAL;
    }
    args[0] = I64(p, before);
    if (apr_dbd_pselect(c->driver, p, c->handle, &res, st, 1, 1, args) != 0) {
        *err = apr_pstrdup(p, apr_dbd_error(c->driver, c->handle, 0));
        return APR_EGENERAL;
    }
    *ids = apr_array_make(p, 4, sizeof(apr_int64_t));
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        APR_ARRAY_PUSH(*ids, apr_int64_t) = entry_i64(c, row, 0);
    }
    return APR_SUCCESS;
}

int s2a_db_redeem(s2a_dbc *c, apr_pool_t *p, const char *code_hash, apr_int64_t user_id,
                  s2a_redeemed *out, const char **err)
{
    const char *now = I64(p, apr_time_sec(apr_time_now())), *user = I64(p, user_id);
    const char *args[7];
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_dbd_prepared_t *get;
    int nrows = 0, rc = -2, ok;

    memset(out, 0, sizeof(*out));
    if (s2a_db_begin(c) != 0) {
        *err = apr_pstrcat(p, "begin: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -2;
    }
    args[0] = user;
    args[1] = now;
    args[2] = code_hash;
    /* the code is taken by whoever changes used_by from 0: once */
    get = stmt(c, "s2a_redeem_get",
               "SELECT kind, amount_nanousd, group_id, days FROM s2a_redeem_codes"
               " WHERE code_hash = %s",
               err);
    ok = get &&
         s2a_db_exec(c, p,
                     "UPDATE s2a_redeem_codes SET used_by = %lld, used_at = %lld"
                     " WHERE code_hash = %s AND used_by = 0",
                     3, args, &nrows, err) == 0 &&
         apr_dbd_pvselect(c->driver, p, c->handle, &res, get, 1, code_hash, NULL) == 0;
    while (ok && apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        out->subscription = strcmp(entry_str(c, p, row, 0), "subscription") == 0;
        out->amount = entry_i64(c, row, 1);
        out->group_id = entry_i64(c, row, 2);
        out->days = entry_i64(c, row, 3);
        rc = nrows == 1 ? 1 : -1;
    }
    if (ok && rc == -2) {
        rc = 0; /* no such code */
    }
    if (ok && rc == 1 && !out->subscription) {
        args[0] = I64(p, out->amount);
        args[1] = user;
        args[2] = "redeem";
        args[3] = "redeem code";
        args[4] = now;
        ok = s2a_db_exec(c, p,
                         "UPDATE s2a_users SET balance_nanousd = balance_nanousd + %lld"
                         " WHERE id = %lld",
                         2, args, NULL, err) == 0 &&
             s2a_db_exec(c, p,
                         "INSERT INTO s2a_balance_log (user_id, delta_nanousd,"
                         " balance_after_nanousd, kind, actor, reason, created_at)"
                         " SELECT id, %lld, balance_nanousd, %s, %s, '', %lld FROM s2a_users"
                         " WHERE id = %lld",
                         5, (const char *[]){args[0], args[2], args[3], now, user}, NULL,
                         err) == 0;
    } else if (ok && rc == 1) {
        args[0] = user;
        args[1] = I64(p, out->group_id);
        args[2] = now;
        args[3] = now;
        args[4] = I64(p, out->days * 86400);
        /* a running subscription is extended from its end, an ended one from now */
        ok = s2a_db_exec(c, p,
                         "UPDATE s2a_subscriptions SET status = 'active', expires_at ="
                         " CASE WHEN expires_at > %lld THEN expires_at ELSE %lld END + %lld"
                         " WHERE user_id = %lld AND group_id = %lld",
                         5, (const char *[]){now, now, args[4], user, args[1]}, &nrows,
                         err) == 0;
        if (ok && nrows == 0) {
            ok = s2a_db_exec(c, p,
                             "INSERT INTO s2a_subscriptions (user_id, group_id, expires_at,"
                             " created_at) VALUES (%lld, %lld, %lld, %lld)",
                             4,
                             (const char *[]){user, args[1],
                                              I64(p, apr_time_sec(apr_time_now()) +
                                                         out->days * 86400),
                                              now},
                             NULL, err) == 0;
        }
    }
    if (s2a_db_end(c, ok && rc == 1) != 0 && ok && rc == 1) {
        *err = apr_pstrcat(p, "commit: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        ok = 0;
    }
    return ok ? rc : -2;
}
