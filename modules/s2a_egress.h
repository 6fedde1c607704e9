/* An account's egress: the HTTP forward proxy its traffic leaves through
 * ("http://[user:password@]host:port"), so that accounts need not all come
 * from the gateway's own address. mod_proxy carries a request through it
 * (CONNECT for an https upstream, the absolute URL for http), and the
 * account's token refreshes take it too. httpd's proxy speaks no SOCKS, so
 * neither does an egress. */
#ifndef S2A_EGRESS_H
#define S2A_EGRESS_H

#include <apr_pools.h>
#include <apr_network_io.h>

typedef struct {
    const char *url;           /* as given: libcurl takes it as it is */
    const char *host;          /* the proxy's host */
    apr_port_t port;           /* and port */
    const char *authorization; /* "Basic ..." for Proxy-Authorization; NULL: none */
} s2a_egress;

/* Why `url` is no egress (a short English reason, no secret in it), or
 * NULL when it is one. The empty string is none (no egress). */
const char *s2a_egress_check(apr_pool_t *p, const char *url);

/* Reads a checked egress: 1 with *out (strings from p), 0 when it is none
 * ("" or NULL) or not an egress. */
int s2a_egress_parse(apr_pool_t *p, const char *url, s2a_egress *out);

/* The egress as the admin API shows it: the password hidden
 * ("http://user:***@host:port"); "" for none. */
const char *s2a_egress_shown(apr_pool_t *p, const char *url);

#endif
