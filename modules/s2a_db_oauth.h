/* The tokens of OAuth and setup-token accounts, as stored (sealed or plain):
 * read, saved after a refresh, and found when they end soon. */
#ifndef S2A_DB_OAUTH_H
#define S2A_DB_OAUTH_H

#include "s2a_db.h"

/* The account's tokens, and its egress (the forward proxy its refreshes
 * go through; "" none), as stored. APR_NOTFOUND when there is no such
 * account. */
apr_status_t s2a_db_oauth_get(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char **credential,
                              const char **refresh_token, apr_int64_t *expires_at,
                              const char **egress, const char **err);
apr_status_t s2a_db_oauth_save(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char *credential,
                               const char *refresh_token, apr_int64_t expires_at, const char **err);
/* Active accounts with a refresh token whose access token ends before
 * `before` (Unix seconds). */
apr_status_t s2a_db_oauth_due(s2a_dbc *c, apr_pool_t *p, apr_int64_t before,
                              apr_array_header_t **ids, const char **err);

#endif
