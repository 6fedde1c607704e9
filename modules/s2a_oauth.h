/* OAuth refresh of upstream accounts: the token endpoint's request and
 * answer (the refresh_token grant, JSON both ways). */
#ifndef S2A_OAUTH_H
#define S2A_OAUTH_H

#include <apr_pools.h>

/* An access token is refreshed this long before it ends. */
#define S2A_OAUTH_MARGIN_SEC 300

typedef struct {
    const char *access_token;
    const char *refresh_token; /* the old one stays when the answer has none */
    apr_int64_t expires_in;    /* seconds; 0 when the answer does not say */
} s2a_oauth_tokens;

/* {"grant_type":"refresh_token","refresh_token":...,"client_id":...} */
const char *s2a_oauth_refresh_body(apr_pool_t *p, const char *refresh_token, const char *client_id);

/* Longest validity believed (a larger expires_in is cut to it). */
#define S2A_OAUTH_MAX_EXPIRES_IN (366 * 24 * 3600)

/* Reads a token endpoint's answer. 0 with *out filled, its tokens visible
 * ASCII only; -1 with *err (never holding a token) when it is not a usable
 * grant, or a token in it holds any other byte. */
int s2a_oauth_parse(apr_pool_t *p, const char *body, apr_size_t len, s2a_oauth_tokens *out,
                    const char **err);

/* What a refusing endpoint says, for the log: its "error" and
 * "error_description" fields, never anything else of the answer. */
const char *s2a_oauth_error_words(apr_pool_t *p, const char *body, apr_size_t len);

#endif
