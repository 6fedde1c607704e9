/* The balancer: the `sub2api` lbmethod provider, the balancer member
 * serving the chosen account's endpoint; and its guard, which lets no
 * request reach such a balancer but the gateway's own. The provider runs
 * under the balancer lock, so it is a lookup and nothing more: the account
 * was chosen in fixups (or by failover). */
#include <ap_provider.h>
#include <apr_strings.h>
#include <mod_proxy.h>

#include "mod_sub2api_shared.h"
#include "s2a_choice.h"

static APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) * retry_worker;

static void retrieve(void)
{
    retry_worker = APR_RETRIEVE_OPTIONAL_FN(ap_proxy_retry_worker);
}

static proxy_worker *find_worker(proxy_balancer *balancer, request_rec *r)
{
    s2a_request *q = s2a_request_of(r);
    const s2a_account *account;
    int i;
    if (!q || !q->attempt) {
        return NULL;
    }
    account = &q->attempt->account;
    for (i = 0; i < balancer->workers->nelts; i++) {
        proxy_worker *w = APR_ARRAY_IDX(balancer->workers, i, proxy_worker *);
        if (s2a_choice_endpoint_is(*w->s->name_ex ? w->s->name_ex : w->s->name,
                                   account->endpoint)) {
            /* All accounts may share one member (api.anthropic.com): one
             * failed connection must not stop them all until the member's
             * retry time. Accounts rest on their own, so the member serves
             * whatever state mod_proxy gave it. */
            if (!PROXY_WORKER_IS_USABLE(w) && retry_worker) {
                retry_worker("BALANCER", w, r->server);
            }
            return w;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  S2ALOGNO(0203) "account %" APR_INT64_T_FMT " endpoint %s is not a member of %s",
                  account->id, account->endpoint, balancer->s->name);
    return NULL;
}

static apr_status_t no_reset(proxy_balancer *balancer, server_rec *s)
{
    (void)balancer;
    (void)s;
    return APR_SUCCESS;
}

static const proxy_balancer_method lbmethod = {"sub2api", find_worker, NULL,
                                               no_reset,  no_reset,    NULL};

static int is_ours(const proxy_balancer *balancer)
{
    return balancer && balancer->lbmethod == &lbmethod;
}

/* mod_proxy's pre_request, before mod_proxy_balancer picks a member (a
 * sticky route included): a request for a sub2api balancer that the
 * gateway did not admit (a ProxyPass to it elsewhere, say) is refused
 * rather than relayed with the client's own headers and never billed. */
static int guard(proxy_worker **worker, proxy_balancer **balancer, request_rec *r,
                 proxy_server_conf *conf, char **url)
{
    s2a_request *q = s2a_request_of(r);
    (void)worker;
    (void)balancer;
    if ((q && q->attempt) || strncasecmp(*url, "balancer://", 11) != 0 ||
        !is_ours(ap_proxy_get_balancer(r->pool, conf, *url, 0))) {
        return DECLINED;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  S2ALOGNO(0211) "%s reached a sub2api balancer outside a Sub2apiGateway "
                                 "location; refused",
                  r->uri);
    return s2a_fail(r, HTTP_INTERNAL_SERVER_ERROR, "The gateway is not configured for this path");
}

const char *s2a_lbmethod_check(apr_pool_t *p, server_rec *s)
{
    proxy_server_conf *conf = ap_get_module_config(s->module_config, &proxy_module);
    int i;
    for (i = 0; conf && conf->balancers && i < conf->balancers->nelts; i++) {
        const proxy_balancer *b = &APR_ARRAY_IDX(conf->balancers, i, proxy_balancer);
        if (is_ours(b) && (b->s->sticky[0] || b->s->sticky_path[0])) {
            return apr_psprintf(p,
                                "%s: stickysession would send requests past the gateway; the "
                                "gateway keeps conversations on their account itself "
                                "(Sub2apiStickyTTL)",
                                b->s->name);
        }
    }
    return NULL;
}

void s2a_lbmethod_register(apr_pool_t *p)
{
    static const char *const before_balancer[] = {"mod_proxy_balancer.c", NULL};
    ap_hook_optional_fn_retrieve(retrieve, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_provider(p, PROXY_LBMETHOD, "sub2api", "0", &lbmethod);
    proxy_hook_pre_request(guard, NULL, before_balancer, APR_HOOK_FIRST);
}
