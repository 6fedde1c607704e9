/* The tokens of OAuth and setup-token accounts, as stored (sealed or plain):
 * read, saved after a refresh, and found when they end soon. A Vertex
 * account's are read the same way: its access token is the token, its
 * service-account key what a new one is made from (the refresh token's
 * place). */
#ifndef S2A_DB_OAUTH_H
#define S2A_DB_OAUTH_H

#include "s2a_db.h"

/* What refreshing an account reads, as stored. */
typedef struct {
    const char *type;
    const char *credential;    /* the access token */
    const char *refresh_token; /* Vertex: the service-account key */
    apr_int64_t expires_at;
    const char *egress; /* the forward proxy its refreshes go through; "" none */
} s2a_db_tokens;

/* The account's tokens. APR_NOTFOUND when there is no such account. */
apr_status_t s2a_db_oauth_get(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, s2a_db_tokens *out,
                              const char **err);
apr_status_t s2a_db_oauth_save(s2a_dbc *c, apr_pool_t *p, apr_int64_t id, const char *credential,
                               const char *refresh_token, apr_int64_t expires_at, const char **err);
/* A Vertex account's new access token. */
apr_status_t s2a_db_vertex_token_save(s2a_dbc *c, apr_pool_t *p, apr_int64_t id,
                                      const char *access_token, apr_int64_t expires_at,
                                      const char **err);
/* Active accounts with a refresh token (or a Vertex key) whose access
 * token ends before `before` (Unix seconds). */
apr_status_t s2a_db_oauth_due(s2a_dbc *c, apr_pool_t *p, apr_int64_t before,
                              apr_array_header_t **ids, const char **err);

#endif
