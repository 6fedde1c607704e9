/* The `sub2api` lbmethod provider: the balancer member serving the chosen
 * account's endpoint. It runs under the balancer lock, so it is a lookup
 * and nothing more: the account was chosen in fixups (or by failover). */
#include <mod_proxy.h>

#include "mod_sub2api_shared.h"

static APR_OPTIONAL_FN_TYPE(ap_proxy_retry_worker) * retry_worker;

void s2a_lbmethod_retrieve(void)
{
    retry_worker = APR_RETRIEVE_OPTIONAL_FN(ap_proxy_retry_worker);
}

/* The member whose name is the endpoint (a trailing slash on either side
 * does not count). */
static int names_endpoint(const char *name, const char *endpoint)
{
    apr_size_t n = strlen(endpoint);
    while (n && endpoint[n - 1] == '/') {
        n--;
    }
    return strncasecmp(name, endpoint, n) == 0 &&
           (name[n] == '\0' || (name[n] == '/' && name[n + 1] == '\0'));
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
        if (names_endpoint(*w->s->name_ex ? w->s->name_ex : w->s->name, account->endpoint)) {
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

const proxy_balancer_method s2a_lbmethod = {"sub2api", find_worker, NULL,
                                            no_reset,  no_reset,    NULL};
