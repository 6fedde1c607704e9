/* An account's egress: see s2a_egress.h. */
#include <string.h>

#include <apr_base64.h>
#include <apr_escape.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include "s2a_egress.h"

#define EGRESS_MAX 1024

/* The URL read, or NULL with *why. */
static int read_url(apr_pool_t *p, const char *url, apr_uri_t *u, const char **why)
{
    const char *c;
    if (strlen(url) > EGRESS_MAX) {
        *why = "egress: at most 1024 characters";
        return 0;
    }
    for (c = url; *c; c++) {
        if ((unsigned char)*c < 0x21 || *c == 0x7f) {
            *why = "egress: no spaces or control characters";
            return 0;
        }
    }
    if (strncmp(url, "http://", 7) != 0) {
        *why = strstr(url, "://") ? "egress: only http:// forward proxies (httpd's proxy speaks "
                                    "no SOCKS; https upstreams go through CONNECT)"
                                  : "egress: http://[user:password@]host:port";
        return 0;
    }
    if (apr_uri_parse(p, url, u) != APR_SUCCESS || !u->hostname || !*u->hostname || !u->port_str ||
        !u->port || (u->path && strcmp(u->path, "/") != 0) || u->query || u->fragment) {
        *why = "egress: http://[user:password@]host:port, with a port and no path";
        return 0;
    }
    return 1;
}

const char *s2a_egress_check(apr_pool_t *p, const char *url)
{
    apr_uri_t u;
    const char *why = NULL;
    if (!url || !*url) {
        return NULL;
    }
    return read_url(p, url, &u, &why) ? NULL : why;
}

int s2a_egress_parse(apr_pool_t *p, const char *url, s2a_egress *out)
{
    apr_uri_t u;
    const char *why;
    memset(out, 0, sizeof(*out));
    if (!url || !*url || !read_url(p, url, &u, &why)) {
        return 0;
    }
    out->url = url;
    out->host = u.hostname;
    out->port = u.port;
    if (u.user) {
        /* as libcurl reads them for token refreshes: %XX decoded */
        const char *user = apr_punescape_url(p, u.user, NULL, NULL, 0);
        const char *password = u.password ? apr_punescape_url(p, u.password, NULL, NULL, 0) : "";
        const char *pair;
        if (!user || !password) {
            return 0;
        }
        pair = apr_pstrcat(p, user, ":", password, NULL);
        char *b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)strlen(pair)));
        apr_base64_encode(b64, pair, (int)strlen(pair));
        out->authorization = apr_pstrcat(p, "Basic ", b64, NULL);
    }
    return 1;
}

const char *s2a_egress_shown(apr_pool_t *p, const char *url)
{
    apr_uri_t u;
    const char *why;
    if (!url || !*url || !read_url(p, url, &u, &why)) {
        return "";
    }
    return apr_psprintf(p, "http://%s%s%s%s:%u", u.user ? u.user : "",
                        u.user && u.password ? ":***" : "", u.user ? "@" : "", u.hostname,
                        (unsigned)u.port);
}
