/* Which headers cross the gateway: see s2a_headers.h. */
#include <string.h>
#include <strings.h>

#include <apr.h>

#include "s2a_headers.h"

/* Lengths first: a request carries a dozen or more headers, each checked. */
#define ALLOWED(name)                                                                              \
    {                                                                                              \
        name, sizeof(name) - 1                                                                     \
    }
static const struct {
    const char *name;
    apr_size_t len;
} to_upstream[] = {ALLOWED("accept"),
                   ALLOWED("accept-language"),
                   ALLOWED("anthropic-beta"),
                   ALLOWED("anthropic-dangerous-direct-browser-access"),
                   ALLOWED("anthropic-version"),
                   ALLOWED("content-type"),
                   ALLOWED("sec-fetch-mode"),
                   ALLOWED("user-agent"),
                   ALLOWED("x-app"),
                   ALLOWED("x-stainless-arch"),
                   ALLOWED("x-stainless-helper-method"),
                   ALLOWED("x-stainless-lang"),
                   ALLOWED("x-stainless-os"),
                   ALLOWED("x-stainless-package-version"),
                   ALLOWED("x-stainless-retry-count"),
                   ALLOWED("x-stainless-runtime"),
                   ALLOWED("x-stainless-runtime-version"),
                   ALLOWED("x-stainless-timeout"),
                   ALLOWED("host"),
                   ALLOWED("expect"),
                   {NULL, 0}};

int s2a_header_to_upstream(const char *name)
{
    apr_size_t len = strlen(name);
    int i;
    for (i = 0; to_upstream[i].name; i++) {
        if (to_upstream[i].len == len && strcasecmp(name, to_upstream[i].name) == 0) {
            return 1;
        }
    }
    return 0;
}

int s2a_header_names_account(const char *name)
{
    return strncasecmp(name, "anthropic-ratelimit-", 20) == 0 ||
           strcasecmp(name, "anthropic-organization-id") == 0;
}
