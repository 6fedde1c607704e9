/* Client API keys: generation, storage hash, display forms, extraction from headers. */
#ifndef S2A_KEYS_H
#define S2A_KEYS_H

#include <apr_pools.h>
#include <apr_errno.h>

/* Prefix of every key the gateway issues. */
#define S2A_KEY_PREFIX "sk-s2a-"

/* New random key: "sk-s2a-" + 48 lowercase hex chars (24 random bytes). */
apr_status_t s2a_key_generate(apr_pool_t *p, char **key);

/* New redeem code: "rc-" + 32 lowercase hex chars (16 random bytes); stored
   hashed like keys (s2a_key_hash), shown with s2a_key_prefix. */
apr_status_t s2a_redeem_code_generate(apr_pool_t *p, char **code);

/* 1 when `key` has the form every key the gateway issues has ("sk-s2a-" and
   48 lowercase hex characters): anything else is refused without a look. */
int s2a_key_well_formed(const char *key);

/* SHA-256 hex of the key: what the database stores instead of the key. */
char *s2a_key_hash(apr_pool_t *p, const char *key);

/* Display prefix for listings: first 12 chars + "..." (never more than half of a short key). */
char *s2a_key_prefix(apr_pool_t *p, const char *key);

/* Client key from the header values (either may be NULL): a non-empty x-api-key wins, else
   "Bearer <k>" from Authorization (scheme case-insensitive, spaces trimmed). NULL if none. */
const char *s2a_key_from_headers(apr_pool_t *p, const char *x_api_key, const char *authorization);

/* Upstream credential for display: first 7 chars + "..." + last 4 when longer than 16 chars,
   else "****". Never the full secret. */
char *s2a_secret_mask(apr_pool_t *p, const char *secret);

#endif
