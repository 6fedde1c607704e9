/* Errors in the shape Anthropic's API uses, and upstream status mapping. */
#ifndef S2A_ERRORS_H
#define S2A_ERRORS_H

#include <apr_pools.h>

/* Anthropic error type for an HTTP status the gateway returns: 400 invalid_request_error,
   401 authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error,
   413 request_too_large, 429 rate_limit_error, 503 and 529 overloaded_error, other 5xx
   api_error, other 4xx invalid_request_error; anything else api_error. */
const char *s2a_error_type(int status);

/* {"type":"error","error":{"type":"<type>","message":"<message>"}} allocated from p. */
char *s2a_error_body(apr_pool_t *p, int status, const char *message);

/* Status the client sees when the upstream answers with an error status: 400 passed through,
   401/403 -> 502, 429 -> 429, 529 -> 503, any other 5xx -> 502, other 4xx unchanged.
   Statuses below 400 are returned unchanged; anything past 599 -> 502. */
int s2a_upstream_status_map(int upstream_status);

/* The message of an error the gateway reports without words of its own:
   httpd's (400 a request it cannot read, 408, 413, 414, 431...),
   mod_proxy's 502 (unreachable or broken), 503 (no upstream) and 504 (no
   answer in time), else a general one. */
const char *s2a_error_message(int status);

#endif
