/* Which headers cross the gateway. */
#include "s2a_headers.h"
#include "s2a_test.h"

int main(void)
{
    static const char *const allowed[] = {"accept",         "Accept-Language",
                                          "anthropic-beta", "ANTHROPIC-VERSION",
                                          "content-type",   "user-agent",
                                          "x-app",          "x-stainless-retry-count",
                                          "host",           NULL};
    static const char *const kept[] = {"x-api-key",
                                       "authorization",
                                       "cookie",
                                       "x-forwarded-for",
                                       "via",
                                       "accept-encoding",
                                       "proxy-authorization",
                                       "x-claude-code-session-id",
                                       "anthropic-beta-x",
                                       "accep",
                                       "",
                                       NULL};
    int i;
    for (i = 0; allowed[i]; i++) {
        S2A_CHECK(s2a_header_to_upstream(allowed[i]));
    }
    for (i = 0; kept[i]; i++) {
        S2A_CHECK(!s2a_header_to_upstream(kept[i]));
    }
    S2A_CHECK(s2a_header_names_account("anthropic-ratelimit-unified-5h-status"));
    S2A_CHECK(s2a_header_names_account("Anthropic-RateLimit-Requests-Limit"));
    S2A_CHECK(s2a_header_names_account("anthropic-organization-id"));
    S2A_CHECK(!s2a_header_names_account("request-id"));
    S2A_CHECK(!s2a_header_names_account("content-type"));
    return S2A_TEST_SUMMARY("test_headers");
}
