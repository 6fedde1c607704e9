/* anthropic-beta for OAuth accounts. */
#include <apr_general.h>

#include "s2a_beta.h"
#include "s2a_test.h"

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);

    /* already there: unchanged, byte for byte */
    S2A_CHECK_STR(s2a_beta_for_oauth(p, "a-1, oauth-2025-04-20 ,b-2", "m"),
                  "a-1, oauth-2025-04-20 ,b-2");
    /* after claude-code, values trimmed */
    S2A_CHECK_STR(s2a_beta_for_oauth(p, " claude-code-20250219 , interleaved-thinking-2025-05-14",
                                     "claude-sonnet-4"),
                  "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14");
    S2A_CHECK_STR(s2a_beta_for_oauth(p, "x,claude-code-20250219", "m"),
                  "x,claude-code-20250219,oauth-2025-04-20");
    /* else in front */
    S2A_CHECK_STR(s2a_beta_for_oauth(p, "prompt-caching-2024-07-31,,x", "m"),
                  "oauth-2025-04-20,prompt-caching-2024-07-31,x");
    /* a longer name containing the token is not the token */
    S2A_CHECK_STR(s2a_beta_for_oauth(p, "oauth-2025-04-20-extra", "m"),
                  "oauth-2025-04-20,oauth-2025-04-20-extra");
    /* defaults by model */
    S2A_CHECK_STR(s2a_beta_for_oauth(p, NULL, "claude-3-5-HAIKU-20241022"),
                  "oauth-2025-04-20,interleaved-thinking-2025-05-14");
    S2A_CHECK_STR(s2a_beta_for_oauth(p, "", "claude-sonnet-4-20250514"),
                  "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"
                  "fine-grained-tool-streaming-2025-05-14");

    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_beta");
}
