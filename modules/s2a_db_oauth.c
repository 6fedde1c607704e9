/* The tokens of OAuth accounts: see s2a_db_oauth.h. */
#include "s2a_db_oauth.h"

apr_status_t s2a_db_oauth_get(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, s2a_db_tokens *out,
                              const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *args[1];
    apr_status_t rv = APR_NOTFOUND;
    args[0] = S2A_DB_I64(p, id);
    if (s2a_db_select(
            c, p, "s2a_oauth_get",
            "SELECT type, CASE WHEN type = 'vertex' THEN access_token ELSE credential END,"
            " CASE WHEN type = 'vertex' THEN credential ELSE refresh_token END, expires_at, egress"
            " FROM s2a_accounts WHERE id = %lld",
            1, args, &res, err) != 0) {
        return APR_EGENERAL;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        out->type = s2a_db_str(c, p, row, 0);
        out->credential = s2a_db_str(c, p, row, 1);
        out->refresh_token = s2a_db_str(c, p, row, 2);
        out->expires_at = s2a_db_i64(c, row, 3);
        out->egress = s2a_db_str(c, p, row, 4);
        rv = APR_SUCCESS;
    }
    return rv;
}

apr_status_t s2a_db_oauth_save(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char *credential,
                               const char *refresh_token, apr_int64_t expires_at, const char **err)
{
    const char *args[4];
    int nrows = 0;
    args[0] = credential;
    args[1] = refresh_token;
    args[2] = S2A_DB_I64(p, expires_at);
    args[3] = S2A_DB_I64(p, id);
    if (s2a_db_query(c, p, "s2a_oauth_save",
                     "UPDATE s2a_accounts SET credential = %s, refresh_token = %s,"
                     " expires_at = %lld WHERE id = %lld",
                     4, args, &nrows, err) != 0) {
        return APR_EGENERAL;
    }
    return nrows == 1 ? APR_SUCCESS : APR_NOTFOUND;
}

apr_status_t s2a_db_vertex_token_save(s2a_dbc *c, apr_pool_t *p, apr_int64_t id,
                                      const char *access_token, apr_int64_t expires_at,
                                      const char **err)
{
    const char *args[3];
    int nrows = 0;
    args[0] = access_token;
    args[1] = S2A_DB_I64(p, expires_at);
    args[2] = S2A_DB_I64(p, id);
    if (s2a_db_query(c, p, "s2a_vertex_token_save",
                     "UPDATE s2a_accounts SET access_token = %s,"
                     " expires_at = %lld WHERE id = %lld AND type = 'vertex'",
                     3, args, &nrows, err) != 0) {
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
    args[0] = S2A_DB_I64(p, before);
    if (s2a_db_select(c, p, "s2a_oauth_due",
                      "SELECT id FROM s2a_accounts WHERE (refresh_token <> '' OR type = 'vertex')"
                      " AND expires_at > 0 AND expires_at < %lld AND status = 'active'",
                      1, args, &res, err) != 0) {
        return APR_EGENERAL;
    }
    *ids = apr_array_make(p, 4, sizeof(apr_int64_t));
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        APR_ARRAY_PUSH(*ids, apr_int64_t) = s2a_db_i64(c, row, 0);
    }
    return APR_SUCCESS;
}
