/* The egress: mod_proxy's scheme_handler hook, ahead of mod_proxy_http. An
 * attempt whose account names an egress (s2a_egress.h) is handled by
 * running the scheme handlers again with the egress as the forward proxy,
 * as ProxyRemote would pass it: mod_proxy_http then connects to the proxy
 * (CONNECT for an https upstream). ProxyRemote itself cannot serve here:
 * it is chosen by the URL, and accounts of one upstream share its URL.
 *
 * The balancer member's own connections are not used for it: mod_proxy
 * keeps a pooled connection's address once set, so a connection made
 * through one egress would carry another account's request later. The
 * server's generic reverse-proxy worker reuses no address and no
 * connection; each request through an egress opens its own. */
#include <mod_proxy.h>

#include "mod_sub2api_shared.h"
#include "s2a_egress.h"

int s2a_egress_scheme_handler(request_rec *r, proxy_worker *worker, proxy_server_conf *conf,
                              char *url, const char *proxyhost, apr_port_t proxyport)
{
    s2a_request *q = s2a_request_of(r);
    s2a_attempt *a = q ? q->attempt : NULL;
    s2a_egress egress;
    int status;
    (void)proxyhost;
    (void)proxyport;

    if (!a || !a->account.egress || a->egress_taken) {
        return DECLINED;
    }
    a->egress_taken = 1;
    /* an account with an egress never leaves any other way */
    if (!s2a_egress_parse(r->pool, a->account.egress, &egress)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      S2ALOGNO(0214) "account %" APR_INT64_T_FMT " has an egress that is no "
                                     "forward proxy URL; it is not sent",
                      a->account.id);
        a->egress_unreachable = 1;
        return HTTP_BAD_GATEWAY;
    }
    /* mod_proxy sends the request's Proxy-Authorization with CONNECT: the
     * egress's own, never the client's or another account's */
    apr_table_unset(r->headers_in, "Proxy-Authorization");
    if (egress.authorization) {
        if (strncasecmp(url, "https:", 6) == 0) {
            /* s2a_upstream_fixups keeps it out of the request in the tunnel */
            apr_table_setn(r->headers_in, "Proxy-Authorization", egress.authorization);
            apr_table_setn(r->subprocess_env, "Proxy-Chain-Auth", "1");
        } else {
            /* the request goes to the proxy itself (s2a_upstream_fixups) */
            a->proxy_authorization = egress.authorization;
        }
    }
    status = proxy_run_scheme_handler(r, conf->reverse ? conf->reverse : worker, conf, url,
                                      egress.host, egress.port);
    apr_table_unset(r->headers_in, "Proxy-Authorization");
    apr_table_unset(r->subprocess_env, "Proxy-Chain-Auth");
    if (status == HTTP_SERVICE_UNAVAILABLE || status == HTTP_INTERNAL_SERVER_ERROR ||
        status == DECLINED) {
        /* the proxy could not be reached or resolved (or no handler took
         * the URL): nothing was sent. mod_proxy would take the member out
         * for every account on it; failover knows it was never sent
         * (s2a_failover_request_status) */
        a->egress_unreachable = 1;
        return HTTP_BAD_GATEWAY;
    }
    return status;
}
