/* Tables and their migrations, and the meta table: see s2a_db_schema.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s2a_db_schema.h"

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
    "CREATE INDEX IF NOT EXISTS s2a_usage_time ON s2a_usage (created_at, id)",
    NULL};

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

/* Version 9: a key's own limits: a total budget and daily, weekly and
 * monthly budgets of what it spends (actual cost, nano-USD; 0: none), what
 * it spent in total and in each window (started as subscriptions' are), and
 * the models it may use (JSON array of patterns; empty: all). */
static const char *schema_v9[] = {
    "ALTER TABLE s2a_api_keys ADD COLUMN budget_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN spent_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN daily_limit_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN weekly_limit_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN monthly_limit_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN daily_usage_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN daily_start BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN weekly_usage_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN weekly_start BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN monthly_usage_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN monthly_start BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN models TEXT NOT NULL DEFAULT ''",
    NULL};

/* Version 10: server tools. Usage rows keep the uses the upstream counted
 * and their per-use charges (part of the total); a group may refuse
 * requests that use server tools. */
static const char *schema_v10[] = {
    "ALTER TABLE s2a_usage ADD COLUMN web_search_requests BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_usage ADD COLUMN web_fetch_requests BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_usage ADD COLUMN server_tool_cost_nanousd BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_groups ADD COLUMN server_tools SMALLINT NOT NULL DEFAULT 1", NULL};

/* Version 11: the door each request came in by (Messages, or OpenAI's
 * Chat Completions or Responses API). */
static const char *schema_v11[] = {
    "ALTER TABLE s2a_usage ADD COLUMN api VARCHAR(16) NOT NULL DEFAULT 'messages'", NULL};

/* Version 12: an account's egress, the forward proxy its traffic leaves
 * through (sealed like its credential; '' none). */
static const char *schema_v12[] = {
    "ALTER TABLE s2a_accounts ADD COLUMN egress TEXT NOT NULL DEFAULT ''", NULL};

/* Version 13: the clouds' accounts (s2a_cloud.h): their region, Vertex's
 * project, and the access token a Vertex service account was last given
 * (sealed; '' none yet). */
static const char *schema_v13[] = {
    "ALTER TABLE s2a_accounts ADD COLUMN region VARCHAR(64) NOT NULL DEFAULT ''",
    "ALTER TABLE s2a_accounts ADD COLUMN project VARCHAR(255) NOT NULL DEFAULT ''",
    "ALTER TABLE s2a_accounts ADD COLUMN access_token TEXT NOT NULL DEFAULT ''", NULL};

/* Version 14: how many times each window of a subscription or a key has
 * started, so that the figure held against a window is named by its run,
 * the same before and after its first row starts it (s2a_state_key_spend). */
static const char *schema_v14[] = {
    "ALTER TABLE s2a_subscriptions ADD COLUMN daily_runs BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_subscriptions ADD COLUMN weekly_runs BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_subscriptions ADD COLUMN monthly_runs BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN daily_runs BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN weekly_runs BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE s2a_api_keys ADD COLUMN monthly_runs BIGINT NOT NULL DEFAULT 0",
    NULL};

/* migrations[v] brings a database at version v to v + 1 */
static const char *const *const migrations[] = {
    schema_v1, schema_v2, schema_v3,  schema_v4,  schema_v5,  schema_v6,  schema_v7,
    schema_v8, schema_v9, schema_v10, schema_v11, schema_v12, schema_v13, schema_v14};
#define S2A_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *with_id_type(apr_pool_t *p, const s2a_dbc *c, const char *sql)
{
    const char *mark = strstr(sql, "%ID%");
    if (!mark) {
        return sql;
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, sql, (apr_size_t)(mark - sql)),
                       s2a_db_is_pgsql(c) ? "BIGSERIAL PRIMARY KEY"
                                          : "INTEGER PRIMARY KEY AUTOINCREMENT",
                       mark + 4, NULL);
}

/* The schema version, 0 before the first migration. One that cannot be read
 * is not 0: migrating from 0 would replay every step over a schema that has
 * them. */
static int read_version(s2a_dbc *c, apr_pool_t *p, int *version, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    *version = 0;
    if (s2a_db_select(c, p, NULL, "SELECT v FROM s2a_meta WHERE k = 'schema_version'", 0, NULL,
                      &res, err) != 0) {
        *err = apr_pstrcat(p, "cannot read the schema version: ", *err, NULL);
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        *version = atoi(apr_dbd_get_entry(c->driver, row, 0));
    }
    return 0;
}

apr_status_t s2a_db_migrate(s2a_dbc *c, apr_pool_t *p, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int version = 0;
    int i, v, ok = 1;

    s2a_db_conn_init(c);
    if (!s2a_db_is_pgsql(c)) {
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
    if (s2a_db_run(c, p,
                   "CREATE TABLE IF NOT EXISTS s2a_meta (k VARCHAR(64) PRIMARY KEY,"
                   " v VARCHAR(255) NOT NULL)",
                   err) != 0) {
        return APR_EGENERAL;
    }
    if (read_version(c, p, &version, err) != 0) {
        return APR_EGENERAL;
    }
    if (version >= S2A_SCHEMA_VERSION) {
        return APR_SUCCESS;
    }
    if (s2a_db_begin(c) != 0) {
        *err = apr_pstrcat(
            p, "cannot start a transaction: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return APR_EGENERAL;
    }
    /* Nodes sharing PostgreSQL start at once: one migrates while the others
     * wait for its commit, then read the version it wrote. */
    if (s2a_db_is_pgsql(c) && apr_dbd_select(c->driver, p, c->handle, &res,
                                             "SELECT pg_advisory_xact_lock(5448257)", 1) == 0) {
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        }
    }
    if (read_version(c, p, &version, err) != 0) {
        s2a_db_end(c, 0);
        return APR_EGENERAL;
    }
    for (v = version; ok && v < S2A_SCHEMA_VERSION; v++) {
        for (i = 0; ok && migrations[v][i]; i++) {
            ok = s2a_db_run(c, p, with_id_type(p, c, migrations[v][i]), err) == 0;
        }
    }
    if (ok) {
        ok = s2a_db_run(
                 c, p,
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

apr_status_t s2a_db_secret(s2a_dbc *c, apr_pool_t *p, const char *name, const char *fresh,
                           const char **value, const char **err)
{
    const char *args[2] = {name, fresh};
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;

    *value = NULL;
    if (s2a_db_exec(c, p, "INSERT INTO s2a_meta (k, v) VALUES (%s, %s) ON CONFLICT (k) DO NOTHING",
                    2, args, NULL, err) != 0 ||
        s2a_db_select(c, p, "s2a_meta_get", "SELECT v FROM s2a_meta WHERE k = %s", 1, args, &res,
                      err) != 0) {
        return APR_EGENERAL;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        *value = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 0));
    }
    return *value ? APR_SUCCESS : APR_EGENERAL;
}
