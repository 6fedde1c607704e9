/* Every write of money: see s2a_db_billing.h. */
#include <string.h>
#include <sys/uio.h>

#include "s2a_db_billing.h"
#include "s2a_key_limits.h"

#define USAGE_COLUMNS 31
#define USAGE_COLUMN_NAMES                                                                         \
    "request_id, attempt, user_id, api_key_id, account_id, group_id, model, upstream_model,"       \
    " input_tokens, output_tokens, cache_creation_tokens, cache_creation_1h_tokens,"               \
    " cache_read_tokens, input_cost_nanousd, output_cost_nanousd, cache_creation_cost_nanousd,"    \
    " cache_read_cost_nanousd, total_cost_nanousd, actual_cost_nanousd, rate_multiplier_ppm,"      \
    " billing_type, stream, status, outcome, duration_ms, first_token_ms, created_at,"             \
    " web_search_requests, web_fetch_requests, server_tool_cost_nanousd, api"

/* One INSERT of `n` rows that returns the (request id, attempt) of the rows
 * it added: a row billed before (a batch written again after an uncertain
 * commit) conflicts and is left out. Prepared once per size. */
static const char *insert_sql(apr_pool_t *p, int n)
{
    static const char *const values =
        "(%s, %d, %lld, %lld, %lld, %lld, %s, %s, %lld, %lld, %lld, %lld, %lld, %lld, %lld,"
        " %lld, %lld, %lld, %lld, %lld, %s, %d, %d, %s, %lld, %lld, %lld, %lld, %lld, %lld, %s)";
    struct iovec *parts = apr_palloc(p, sizeof(*parts) * (apr_size_t)(2 * n + 1));
    int i;

    parts[0].iov_base = "INSERT INTO s2a_usage (" USAGE_COLUMN_NAMES ") VALUES ";
    parts[0].iov_len = strlen(parts[0].iov_base);
    for (i = 0; i < n; i++) {
        parts[1 + 2 * i].iov_base = (void *)(i ? ", " : "");
        parts[1 + 2 * i].iov_len = i ? 2 : 0;
        parts[2 + 2 * i].iov_base = (void *)values;
        parts[2 + 2 * i].iov_len = strlen(values);
    }
    return apr_pstrcat(
        p, apr_pstrcatv(p, parts, (apr_size_t)(2 * n + 1), NULL),
        " ON CONFLICT (request_id, attempt) DO NOTHING RETURNING request_id, attempt", NULL);
}

static void row_args(apr_pool_t *p, const s2a_usage_row *r, const char **args)
{
    args[0] = r->request_id;
    args[1] = apr_itoa(p, r->attempt);
    args[2] = S2A_DB_I64(p, r->user_id);
    args[3] = S2A_DB_I64(p, r->api_key_id);
    args[4] = S2A_DB_I64(p, r->account_id);
    args[5] = S2A_DB_I64(p, r->group_id);
    args[6] = r->model;
    args[7] = r->upstream_model;
    args[8] = S2A_DB_I64(p, r->input_tokens);
    args[9] = S2A_DB_I64(p, r->output_tokens);
    args[10] = S2A_DB_I64(p, r->cache_creation_tokens);
    args[11] = S2A_DB_I64(p, r->cache_creation_1h_tokens);
    args[12] = S2A_DB_I64(p, r->cache_read_tokens);
    args[13] = S2A_DB_I64(p, r->input_cost);
    args[14] = S2A_DB_I64(p, r->output_cost);
    args[15] = S2A_DB_I64(p, r->cache_creation_cost);
    args[16] = S2A_DB_I64(p, r->cache_read_cost);
    args[17] = S2A_DB_I64(p, r->total_cost);
    args[18] = S2A_DB_I64(p, r->actual_cost);
    args[19] = S2A_DB_I64(p, r->multiplier_ppm);
    args[20] = r->subscription ? "subscription" : "balance";
    args[21] = apr_itoa(p, r->stream);
    args[22] = apr_itoa(p, r->status);
    args[23] = r->outcome;
    args[24] = S2A_DB_I64(p, r->duration_ms);
    args[25] = S2A_DB_I64(p, r->first_token_ms);
    args[26] = S2A_DB_I64(p, r->created_at);
    args[27] = S2A_DB_I64(p, r->web_search_requests);
    args[28] = S2A_DB_I64(p, r->web_fetch_requests);
    args[29] = S2A_DB_I64(p, r->server_tool_cost);
    args[30] = r->api[0] ? r->api : "messages";
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
        char *mark =
            id ? apr_hash_get(at,
                              apr_psprintf(p, "%s/%" APR_INT64_T_FMT, id, s2a_db_i64(c, row, 1)),
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
    const char **args = apr_palloc(p, sizeof(*args) * (apr_size_t)(n * USAGE_COLUMNS));
    apr_dbd_results_t *res = NULL;
    int i;

    for (i = 0; i < n; i++) {
        row_args(p, &rows[i], args + i * USAGE_COLUMNS);
    }
    if (s2a_db_select(c, p, label, insert_sql(p, n), n * USAGE_COLUMNS, args, &res, err) != 0) {
        *err = apr_pstrcat(p, "usage insert: ", *err, NULL);
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
        "text",   "int",    "bigint", "bigint", "bigint", "bigint", "text",   "text",
        "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
        "bigint", "bigint", "bigint", "bigint", "text",   "int",    "int",    "text",
        "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "text"};
    const char *sql = "INSERT INTO s2a_usage (" USAGE_COLUMN_NAMES ") SELECT * FROM unnest(";
    const char *one[USAGE_COLUMNS], *arrays[USAGE_COLUMNS];
    apr_array_header_t *buf[USAGE_COLUMNS];
    apr_dbd_results_t *res = NULL;
    int i, k;

    for (k = 0; k < USAGE_COLUMNS; k++) {
        sql = apr_pstrcat(p, sql, k ? ", " : "", "%s::", types[k], "[]", NULL);
    }
    sql = apr_pstrcat(p, sql,
                      ") ON CONFLICT (request_id, attempt) DO NOTHING"
                      " RETURNING request_id, attempt",
                      NULL);
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
    if (s2a_db_select(c, p, "s2a_usage_unnest", sql, USAGE_COLUMNS, arrays, &res, err) != 0) {
        *err = apr_pstrcat(p, "usage insert: ", *err, NULL);
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

/* The assignments that add to windows `<name>_usage_nanousd` and
 * `<name>_start`, starting again those past their end and counting their
 * runs in `<name>_runs`, written from the windows' names and lengths
 * (s2a_subscription.h); WINDOW_ARGS arguments a window: now, amount,
 * amount, now, now, now. (SQLite binds the arguments as text: each is
 * compared with a column, never with an expression, so that the column's
 * type applies.) */
#define WINDOW_ARGS 6
static const char *windows_set_sql(apr_pool_t *p)
{
    const char *sql = "";
    int w;
    for (w = 0; w < S2A_WINDOWS; w++) {
        const char *n = s2a_window_names[w];
        const char *ended = apr_psprintf(p, "%s_start = 0 OR %s_start <= %%lld - %" APR_INT64_T_FMT,
                                         n, n, s2a_window_seconds[w]);
        sql = apr_psprintf(p,
                           "%s%s %s_usage_nanousd = CASE WHEN %s THEN %%lld"
                           " ELSE %s_usage_nanousd + %%lld END,"
                           " %s_start = CASE WHEN %s THEN %%lld ELSE %s_start END,"
                           " %s_runs = CASE WHEN %s THEN %s_runs + 1 ELSE %s_runs END",
                           sql, w ? "," : "", n, ended, n, n, ended, n, n, ended, n, n);
    }
    return sql;
}

static void windows_args(const char **args, const char *at, const char *amount)
{
    int i;
    for (i = 0; i < S2A_WINDOWS; i++) {
        args[WINDOW_ARGS * i] = at;
        args[WINDOW_ARGS * i + 1] = amount;
        args[WINDOW_ARGS * i + 2] = amount;
        args[WINDOW_ARGS * i + 3] = at;
        args[WINDOW_ARGS * i + 4] = at;
        args[WINDOW_ARGS * i + 5] = at;
    }
}

/* Adds to the windows of a subscription; a window now used up is reported
 * like a depleted balance. */
static const char *windows_add_sql(apr_pool_t *p)
{
    return apr_pstrcat(p, "UPDATE s2a_subscriptions SET", windows_set_sql(p),
                       " WHERE user_id = %lld AND group_id = %lld", NULL);
}

/* Adds to what a key spent, in total and in its windows, and reads back
 * what its budgets allow (s2a_key_limits). */
static const char *key_spend_sql(apr_pool_t *p)
{
    return apr_pstrcat(p, "UPDATE s2a_api_keys SET spent_nanousd = spent_nanousd + %lld,",
                       windows_set_sql(p),
                       " WHERE id = %lld RETURNING budget_nanousd, spent_nanousd,"
                       " daily_limit_nanousd, weekly_limit_nanousd, monthly_limit_nanousd,"
                       " daily_usage_nanousd, weekly_usage_nanousd, monthly_usage_nanousd,"
                       " daily_start, weekly_start, monthly_start",
                       NULL);
}

static const char *windows_full_sql(apr_pool_t *p)
{
    const char *sql = "SELECT COUNT(*) FROM s2a_subscriptions s JOIN s2a_groups g"
                      " ON g.id = s.group_id WHERE s.user_id = %lld AND s.group_id = %lld AND (";
    int w;
    for (w = 0; w < S2A_WINDOWS; w++) {
        const char *n = s2a_window_names[w];
        sql = apr_psprintf(
            p, "%s%s(g.%s_limit_nanousd > 0 AND s.%s_usage_nanousd >= g.%s_limit_nanousd)", sql,
            w ? " OR " : "", n, n, n);
    }
    return apr_pstrcat(p, sql, ")", NULL);
}

static int add_to_windows(s2a_dbc *c, apr_pool_t *p, const deduction *d,
                          apr_array_header_t *depleted, const char **err)
{
    const char *args[WINDOW_ARGS * S2A_WINDOWS + 2], *at = S2A_DB_I64(p, d->at);
    const char *amount = S2A_DB_I64(p, d->amount);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int nrows = 0;
    windows_args(args, at, amount);
    args[WINDOW_ARGS * S2A_WINDOWS] = S2A_DB_I64(p, d->user_id);
    args[WINDOW_ARGS * S2A_WINDOWS + 1] = S2A_DB_I64(p, d->group_id);
    if (s2a_db_query(c, p, "s2a_windows_add", windows_add_sql(p), WINDOW_ARGS * S2A_WINDOWS + 2,
                     args, &nrows, err) != 0) {
        *err = apr_pstrcat(p, "subscription update: ", *err, NULL);
        return -1;
    }
    if (depleted && s2a_db_select(c, p, "s2a_windows_full", windows_full_sql(p), 2,
                                  args + WINDOW_ARGS * S2A_WINDOWS, &res, err) == 0) {
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
            if (s2a_db_i64(c, row, 0) > 0) {
                APR_ARRAY_PUSH(depleted, apr_int64_t) = d->user_id;
            }
        }
    }
    return 0;
}

/* One update per key and batch: what it spent, in total and in its
 * windows; a budget now used up is reported like a depleted balance. */
static int key_spend(s2a_dbc *c, apr_pool_t *p, apr_int64_t key_id, apr_int64_t amount,
                     apr_int64_t at, apr_array_header_t *depleted, const char **err)
{
    const char *args[WINDOW_ARGS * S2A_WINDOWS + 2];
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int i;
    args[0] = S2A_DB_I64(p, amount);
    windows_args(args + 1, S2A_DB_I64(p, at), args[0]);
    args[WINDOW_ARGS * S2A_WINDOWS + 1] = S2A_DB_I64(p, key_id);
    if (s2a_db_select(c, p, "s2a_key_spend", key_spend_sql(p), WINDOW_ARGS * S2A_WINDOWS + 2, args,
                      &res, err) != 0) {
        *err = apr_pstrcat(p, "key spend: ", *err, NULL);
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        s2a_key_rec k;
        apr_int64_t reset;
        memset(&k, 0, sizeof(k));
        k.budget = s2a_db_i64(c, row, 0);
        k.spent = s2a_db_i64(c, row, 1);
        for (i = 0; i < S2A_WINDOWS; i++) {
            k.budget_windows.limit[i] = s2a_db_i64(c, row, 2 + i);
            k.budget_windows.usage[i] = s2a_db_i64(c, row, 5 + i);
            k.budget_windows.start[i] = s2a_db_i64(c, row, 8 + i);
        }
        if (depleted && s2a_key_budget_used_up(&k, at, &reset) >= 0) {
            APR_ARRAY_PUSH(depleted, apr_int64_t) = key_id;
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
    args[0] = S2A_DB_I64(p, d->amount);
    args[1] = S2A_DB_I64(p, d->user_id);
    if (s2a_db_select(c, p, "s2a_usage_deduct",
                      "UPDATE s2a_users SET balance_nanousd = balance_nanousd - %lld"
                      " WHERE id = %lld RETURNING balance_nanousd",
                      2, args, &res, err) != 0) {
        *err = apr_pstrcat(p, "balance update: ", *err, NULL);
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        if (depleted && s2a_db_i64(c, row, 0) <= 0) {
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
    apr_hash_t *per_user = apr_hash_make(p), *per_key = apr_hash_make(p);
    apr_hash_index_t *hi;
    char *inserted = apr_pcalloc(p, (apr_size_t)n + 1);
    int i, k, ok = 1;

    if (s2a_db_begin(c) != 0) {
        *err = apr_pstrcat(p, "begin: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return APR_EGENERAL;
    }
    if (s2a_db_is_pgsql(c)) {
        ok = insert_rows_pg(c, p, rows, n, inserted, err) == 0;
        i = n;
    }
    /* SQLite: a few statements of fixed sizes (each prepared once) per batch */
    for (i = s2a_db_is_pgsql(c) ? n : 0, k = 0; ok && i < n;) {
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
            /* what the key spent: its actual cost, whatever pays */
            d = apr_hash_get(per_key, &rows[i].api_key_id, sizeof(apr_int64_t));
            if (!d) {
                d = apr_pcalloc(p, sizeof(*d));
                d->user_id = rows[i].api_key_id;
                apr_hash_set(per_key, &d->user_id, sizeof(apr_int64_t), d);
            }
            d->amount += rows[i].actual_cost;
            d->at = rows[i].created_at > d->at ? rows[i].created_at : d->at;
        }
    }
    for (hi = apr_hash_first(p, per_user); ok && hi; hi = apr_hash_next(hi)) {
        const deduction *d = apr_hash_this_val(hi);
        ok = (d->group_id ? add_to_windows(c, p, d, depleted, err)
                          : deduct(c, p, d, depleted, err)) == 0;
    }
    for (hi = apr_hash_first(p, per_key); ok && hi; hi = apr_hash_next(hi)) {
        const deduction *d = apr_hash_this_val(hi);
        ok = key_spend(c, p, d->user_id, d->amount, d->at, depleted, err) == 0;
    }
    if (s2a_db_end(c, ok) != 0 && ok) {
        *err = apr_pstrcat(p, "commit: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        ok = 0;
    }
    return ok ? APR_SUCCESS : APR_EGENERAL;
}

/* The balance log: every change of a balance not made by usage, with who
 * made it and why. */
static int ledger_add(s2a_dbc *c, apr_pool_t *p, const char *user, apr_int64_t delta,
                      apr_int64_t after, const char *kind, const char *actor, const char *reason,
                      const char *now, const char **err)
{
    const char *args[7] = {user, S2A_DB_I64(p, delta), S2A_DB_I64(p, after), kind, actor, reason,
                           now};
    if (s2a_db_query(
            c, p, "s2a_ledger_add",
            "INSERT INTO s2a_balance_log (user_id, delta_nanousd, balance_after_nanousd,"
            " kind, actor, reason, created_at) VALUES (%lld, %lld, %lld, %s, %s, %s, %lld)",
            7, args, NULL, err) != 0) {
        *err = apr_pstrcat(p, "balance log: ", *err, NULL);
        return -1;
    }
    return 0;
}

/* Adds `delta` to a balance: 1 with the new balance in *after, 0 no such
 * user, -1 failed. */
static int balance_add(s2a_dbc *c, apr_pool_t *p, const char *user, apr_int64_t delta,
                       apr_int64_t *after, const char **err)
{
    const char *args[2] = {S2A_DB_I64(p, delta), user};
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int found = 0;
    if (s2a_db_select(c, p, "s2a_balance_add",
                      "UPDATE s2a_users SET balance_nanousd = balance_nanousd"
                      " + %lld WHERE id = %lld RETURNING balance_nanousd",
                      2, args, &res, err) != 0) {
        *err = apr_pstrcat(p, "balance update: ", *err, NULL);
        return -1;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        *after = s2a_db_i64(c, row, 0);
        found = 1;
    }
    return found;
}

int s2a_db_balance_change_in(s2a_dbc *c, apr_pool_t *p, apr_int64_t user_id, int set,
                             apr_int64_t amount, const char *actor, const char *reason,
                             apr_int64_t *after, const char **err)
{
    const char *user = S2A_DB_I64(p, user_id), *now = S2A_DB_I64(p, apr_time_sec(apr_time_now()));
    apr_int64_t before = 0;
    /* a zero change locks the row (PostgreSQL; SQLite's BEGIN IMMEDIATE
     * holds the database already) and reads the balance the change starts
     * from, while charges may be written meanwhile */
    int rc = balance_add(c, p, user, 0, &before, err);
    if (rc == 1) {
        apr_int64_t delta = set ? amount - before : amount;
        rc = balance_add(c, p, user, delta, after, err);
        if (rc == 1 && ledger_add(c, p, user, delta, *after, set ? "set" : "add", actor, reason,
                                  now, err) != 0) {
            rc = -1;
        }
    }
    return rc;
}

int s2a_db_balance_change(s2a_dbc *c, apr_pool_t *p, apr_int64_t user_id, int set,
                          apr_int64_t amount, const char *actor, const char *reason,
                          apr_int64_t *after, const char **err)
{
    int rc;
    if (s2a_db_begin(c) != 0) {
        *err = apr_pstrcat(p, "begin: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -1;
    }
    rc = s2a_db_balance_change_in(c, p, user_id, set, amount, actor, reason, after, err);
    if (s2a_db_end(c, rc == 1) != 0 && rc == 1) {
        *err = apr_pstrcat(p, "commit: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        rc = -1;
    }
    return rc;
}

/* A running subscription extended from its end, an ended one from `now`,
 * a new one started: *id names it. */
static int extend_subscription(s2a_dbc *c, apr_pool_t *p, const char *user, const char *group,
                               apr_int64_t days, const char *now, apr_int64_t *id, const char **err)
{
    const char *args[5] = {now, now, S2A_DB_I64(p, days * 86400), user, group};
    json_object *rows = NULL;
    int nrows = 0, found;

    if (s2a_db_exec(c, p,
                    "UPDATE s2a_subscriptions SET status = 'active', expires_at ="
                    " CASE WHEN expires_at > %lld THEN expires_at ELSE %lld END + %lld"
                    " WHERE user_id = %lld AND group_id = %lld",
                    5, args, &nrows, err) != 0) {
        return -1;
    }
    if (nrows == 0) {
        const char *ins[4] = {user, group, S2A_DB_I64(p, apr_atoi64(now) + days * 86400), now};
        return s2a_db_insert(c, p,
                             "INSERT INTO s2a_subscriptions (user_id, group_id, expires_at,"
                             " created_at) VALUES (%lld, %lld, %lld, %lld)",
                             4, ins, id, err);
    }
    if (s2a_db_rows(c, p,
                    "SELECT id FROM s2a_subscriptions WHERE user_id = %lld AND group_id = %lld",
                    "i", 2, args + 3, &rows, err) != 0) {
        return -1;
    }
    found = json_object_array_length(rows) == 1;
    if (found) {
        json_object *v;
        json_object_object_get_ex(json_object_array_get_idx(rows, 0), "id", &v);
        *id = json_object_get_int64(v);
    }
    json_object_put(rows);
    return found ? 0 : -1;
}

int s2a_db_subscription_extend(s2a_dbc *c, apr_pool_t *p, apr_int64_t user_id, apr_int64_t group_id,
                               apr_int64_t days, apr_int64_t *id, const char **err)
{
    int ok;
    if (s2a_db_begin(c) != 0) {
        *err = apr_pstrcat(p, "begin: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -1;
    }
    ok = extend_subscription(c, p, S2A_DB_I64(p, user_id), S2A_DB_I64(p, group_id), days,
                             S2A_DB_I64(p, apr_time_sec(apr_time_now())), id, err) == 0;
    if (s2a_db_end(c, ok) != 0 && ok) {
        *err = apr_pstrcat(p, "commit: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        ok = 0;
    }
    return ok ? 0 : -1;
}

int s2a_db_redeem(s2a_dbc *c, apr_pool_t *p, const char *code_hash, apr_int64_t user_id,
                  s2a_redeemed *out, const char **err)
{
    const char *now = S2A_DB_I64(p, apr_time_sec(apr_time_now())), *user = S2A_DB_I64(p, user_id);
    const char *args[3] = {user, now, code_hash};
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_int64_t after = 0, sub_id = 0;
    int nrows = 0, rc = -2, ok;

    memset(out, 0, sizeof(*out));
    if (s2a_db_begin(c) != 0) {
        *err = apr_pstrcat(p, "begin: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -2;
    }
    /* the code is taken by whoever changes used_by from 0: once */
    ok = s2a_db_exec(c, p,
                     "UPDATE s2a_redeem_codes SET used_by = %lld, used_at = %lld"
                     " WHERE code_hash = %s AND used_by = 0",
                     3, args, &nrows, err) == 0 &&
         s2a_db_select(c, p, "s2a_redeem_get",
                       "SELECT kind, amount_nanousd, group_id, days FROM s2a_redeem_codes"
                       " WHERE code_hash = %s",
                       1, args + 2, &res, err) == 0;
    while (ok && apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        out->subscription = strcmp(s2a_db_str(c, p, row, 0), "subscription") == 0;
        out->amount = s2a_db_i64(c, row, 1);
        out->group_id = s2a_db_i64(c, row, 2);
        out->days = s2a_db_i64(c, row, 3);
        rc = nrows == 1 ? 1 : -1;
    }
    if (ok && rc == -2) {
        rc = 0; /* no such code */
    }
    if (ok && rc == 1 && !out->subscription) {
        ok = balance_add(c, p, user, out->amount, &after, err) == 1 &&
             ledger_add(c, p, user, out->amount, after, "redeem", "redeem code", "", now, err) == 0;
    } else if (ok && rc == 1) {
        ok = extend_subscription(c, p, user, S2A_DB_I64(p, out->group_id), out->days, now, &sub_id,
                                 err) == 0;
    }
    if (s2a_db_end(c, ok && rc == 1) != 0 && ok && rc == 1) {
        *err = apr_pstrcat(p, "commit: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        ok = 0;
    }
    return ok ? rc : -2;
}
