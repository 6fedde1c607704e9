/* The identity an upstream provider sees for an end user.
 *
 * The gateway never makes many users look like one client: the request's
 * metadata.user_id becomes a pseudonym derived by HMAC-SHA256 from a server
 * secret, our user id and the upstream account id. It is stable (prompt
 * caching and the provider's abuse handling keep working per user), differs
 * per account (two accounts cannot link a user), and reveals neither our user
 * ids nor what the client sent. The session part of the client's value is
 * kept, so the provider still sees conversations. */
#ifndef S2A_IDENTITY_H
#define S2A_IDENTITY_H

#include <apr_pools.h>

#define S2A_IDENTITY_SECRET_MIN 16

/* The pseudonym: 64 lowercase hex characters. */
char *s2a_identity_pseudonym(apr_pool_t *p, const unsigned char *secret, apr_size_t secret_len,
                             apr_int64_t user_id, apr_int64_t account_id);

/* The session id inside a client's metadata.user_id (decoded text), in
 * either form Claude Code sends: a JSON object text with "session_id", or
 * "user_<hex>_account_<uuid>_session_<uuid>". NULL when there is none or it
 * holds anything but letters, digits and dashes. */
const char *s2a_identity_session(apr_pool_t *p, const char *user_id);

/* The value to send as metadata.user_id (decoded text, not JSON-quoted), in
 * the same form as the client's `original` (may be NULL):
 *   JSON form   -> {"device_id":"<pseudonym>","session_id":"<session>"}
 *   legacy form -> user_<pseudonym>_account__session_<session>
 *   otherwise   -> user_<pseudonym> */
char *s2a_identity_user_id(apr_pool_t *p, const char *pseudonym, const char *original);

#endif
