/* The anthropic-beta header an OAuth or setup-token account needs: the
 * upstream accepts such tokens only with the oauth beta. */
#ifndef S2A_BETA_H
#define S2A_BETA_H

#include <apr_pools.h>

#define S2A_BETA_OAUTH "oauth-2025-04-20"
#define S2A_BETA_CLAUDE_CODE "claude-code-20250219"

/* The header value to send for an OAuth account, given the client's value
 * (NULL if none) and the model sent upstream:
 *   - the client's value as it is when it already holds the oauth beta;
 *   - else the oauth beta inserted right after claude-code-20250219, or in
 *     front when that is absent (values trimmed, joined with commas);
 *   - without a client value: a default set for the model (haiku models do
 *     without the Claude Code betas). */
const char *s2a_beta_for_oauth(apr_pool_t *p, const char *client, const char *model);

#endif
