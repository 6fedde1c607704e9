/* Which headers cross the gateway: of the client's, only those an
 * Anthropic client sends about its request; of the upstream's, none that
 * name the account. */
#ifndef S2A_HEADERS_H
#define S2A_HEADERS_H

/* A client header that may go upstream (case-insensitive): accept,
 * accept-language, anthropic-beta, anthropic-dangerous-direct-browser-access,
 * anthropic-version, content-type, sec-fetch-mode, user-agent, x-app, the
 * x-stainless-* set the SDKs send, and host and expect (mod_proxy's own).
 * The client's key, cookies, X-Forwarded-*, Via and Accept-Encoding never
 * are. */
int s2a_header_to_upstream(const char *name);

/* An upstream header that says something about the account and never
 * reaches the client: anthropic-ratelimit-* and anthropic-organization-id. */
int s2a_header_names_account(const char *name);

#endif
