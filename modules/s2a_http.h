/* A minimal HTTP/1.1 client for the gateway's own calls (the OAuth token
 * endpoint): one POST per connection, plain http:// only. */
#ifndef S2A_HTTP_H
#define S2A_HTTP_H

#include <apr_pools.h>
#include <apr_time.h>

/* POSTs `body` (JSON) to `url` and reads the whole answer (at most 1 MiB).
 * APR_SUCCESS with *status and the body, else *err says why. */
apr_status_t s2a_http_post_json(apr_pool_t *p, const char *url, const char *body,
                                apr_interval_time_t timeout, int *status, const char **answer,
                                apr_size_t *answer_len, const char **err);

/* The body of a raw HTTP/1.1 response (`raw`, `len` bytes: status line,
 * headers, body framed by Content-Length, chunked or the connection's end).
 * 0 on success; -1 when it is not a complete response. */
int s2a_http_parse_response(apr_pool_t *p, const char *raw, apr_size_t len, int *status,
                            const char **body, apr_size_t *body_len);

#endif
