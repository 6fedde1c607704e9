/* The upstream request: mod_proxy's fixups hook runs on the copy of the
 * headers it is about to send, once per attempt, after the member was
 * chosen. Only the allow-list of the client's headers and the account's
 * credential leave the gateway. */
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_beta.h"
#include "s2a_headers.h"

int s2a_upstream_fixups(request_rec *r)
{
    s2a_request *q = s2a_request_of(r);
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    const s2a_account *account;
    apr_table_t *h;
    apr_time_t now;
    int i;

    if (!q || !q->attempt) {
        return OK;
    }
    account = &q->attempt->account;
    now = apr_time_now();
    if (q->attempt->number == 1 && !q->attempt->sent_at) {
        q->own_time = now - q->fixups_at - q->waited;
    }
    q->attempt->sent_at = now;
    arr = apr_table_elts(r->headers_in);
    e = (const apr_table_entry_t *)arr->elts;
    h = apr_table_make(r->pool, arr->nelts + 2);
    for (i = 0; i < arr->nelts; i++) {
        if (e[i].key && s2a_header_to_upstream(e[i].key)) {
            apr_table_addn(h, e[i].key, e[i].val);
        }
    }
    if (strcmp(account->type, "apikey") == 0) {
        apr_table_setn(h, "x-api-key", account->credential);
    } else {
        apr_table_setn(h, "Authorization",
                       apr_pstrcat(r->pool, "Bearer ", account->credential, NULL));
        apr_table_setn(h, "anthropic-beta",
                       s2a_beta_for_oauth(r->pool, apr_table_get(h, "anthropic-beta"),
                                          q->attempt->upstream_model));
    }
    if (account->headers) {
        /* the operator's fixed headers (checked by the admin API) win */
        apr_table_overlap(h, account->headers, APR_OVERLAP_TABLES_SET);
    }
    if (!apr_table_get(h, "content-type")) {
        apr_table_setn(h, "Content-Type", "application/json");
    }
    if (!apr_table_get(h, "anthropic-version")) {
        apr_table_setn(h, "anthropic-version", "2023-06-01");
    }
    if (q->attempt->proxy_authorization) {
        /* an http:// upstream through the account's egress: for the proxy */
        apr_table_setn(h, "Proxy-Authorization", q->attempt->proxy_authorization);
    }
    r->headers_in = h;
    return OK;
}
