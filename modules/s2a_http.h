/* The gateway's own HTTP calls (the token endpoints of OAuth and of Vertex's
 * service accounts) through libcurl:
 * one POST, HTTPS with the server's certificate verified (a CA file, or
 * the system's store) and its name checked; plain http:// only to a
 * loopback address (a token endpoint on this host), never across a
 * network, since the body carries a refresh token. */
#ifndef S2A_HTTP_H
#define S2A_HTTP_H

#include <apr_pools.h>
#include <apr_time.h>

/* Once per process, before any thread calls: libcurl's global set-up. 0
 * when it failed. */
int s2a_http_init(void);

/* What a call may be given besides its URL and body. */
typedef struct {
    apr_interval_time_t timeout; /* the whole call: connect, send and read */
    const char *ca_file;         /* NULL: the system's store */
    const char *proxy;           /* an HTTP proxy URL the call goes through; NULL: none */
} s2a_http_options;

/* POSTs `body` (of `content_type`: JSON, or a form) to `url` and reads
 * the whole answer (JSON, at most 1 MiB).
 * APR_SUCCESS with *status and the body (NUL-terminated, from p), else
 * *err says why (no secret in it: neither the body nor the proxy's
 * credentials). */
apr_status_t s2a_http_post(apr_pool_t *p, const char *url, const char *content_type,
                           const char *body, const s2a_http_options *options, int *status,
                           const char **answer, apr_size_t *answer_len, const char **err);

/* Whether `url` may carry secrets: https://, or http:// to 127.0.0.1, ::1
 * or localhost. */
int s2a_http_url_allowed(const char *url);

#endif
