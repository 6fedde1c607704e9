/* The upstream request: mod_proxy's fixups hook runs on the copy of the
 * headers it is about to send, once per attempt, after the member was
 * chosen. Only the allow-list of the client's headers and the account's
 * credential leave the gateway. */
#include <apr_strings.h>
#include <apr_uri.h>

#include "mod_sub2api_shared.h"
#include "s2a_beta.h"
#include "s2a_headers.h"

/* SigV4 over what mod_proxy is about to send: its URL (balancer's member
 * and the attempt's path, in r->filename), the Host it computed, and the
 * attempt's body. */
static void sign_bedrock(request_rec *r, const s2a_attempt *a, const char *host, apr_table_t *h)
{
    const s2a_aws_key *key = &a->account.bedrock->key;
    const char *amz_date = NULL, *authorization = NULL;
    apr_uri_t uri;
    if (host && r->filename && strncmp(r->filename, "proxy:", 6) == 0 &&
        apr_uri_parse(r->pool, r->filename + 6, &uri) == APR_SUCCESS && uri.path) {
        authorization =
            s2a_bedrock_sign(r->pool, key, a->account.region, host, uri.path, uri.query,
                             apr_table_get(h, "content-type"), a->body, apr_time_now(), &amz_date);
    }
    if (!authorization) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      S2ALOGNO(0215) "account %" APR_INT64_T_FMT " request could not be signed",
                      a->account.id);
        return;
    }
    apr_table_setn(h, "Authorization", authorization);
    apr_table_setn(h, "X-Amz-Date", amz_date);
    if (key->session_token && *key->session_token) {
        apr_table_setn(h, "X-Amz-Security-Token", key->session_token);
    }
}

int s2a_upstream_fixups(request_rec *r)
{
    s2a_request *q = s2a_request_of(r);
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    const s2a_account *account;
    const char *host;
    apr_table_t *h;
    apr_time_t now;
    int i;

    if (!q || !q->attempt) {
        return OK;
    }
    account = &q->attempt->account;
    host = apr_table_get(r->headers_in, "Host"); /* as mod_proxy will send it */
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
    if (account->cloud == S2A_CLOUD_BEDROCK) {
        /* the betas went into the body; no Anthropic header means anything */
        apr_table_unset(h, "anthropic-beta");
        apr_table_unset(h, "anthropic-version");
        apr_table_setn(h, "Accept",
                       q->body.stream && !q->count_only ? "application/vnd.amazon.eventstream"
                                                        : "application/json");
        if (account->bedrock->api_key) {
            apr_table_setn(h, "Authorization",
                           apr_pstrcat(r->pool, "Bearer ", account->bedrock->api_key, NULL));
        }
    } else if (strcmp(account->type, "apikey") == 0) {
        apr_table_setn(h, "x-api-key", account->credential);
    } else {
        /* an OAuth, setup-token or Vertex access token */
        apr_table_setn(h, "Authorization",
                       apr_pstrcat(r->pool, "Bearer ", account->credential, NULL));
        if (account->cloud == S2A_CLOUD_NONE) {
            apr_table_setn(h, "anthropic-beta",
                           s2a_beta_for_oauth(r->pool, apr_table_get(h, "anthropic-beta"),
                                              q->attempt->upstream_model));
        }
    }
    if (account->headers) {
        /* the operator's fixed headers (checked by the admin API) win */
        apr_table_overlap(h, account->headers, APR_OVERLAP_TABLES_SET);
    }
    if (!apr_table_get(h, "content-type")) {
        apr_table_setn(h, "Content-Type", "application/json");
    }
    if (account->cloud == S2A_CLOUD_NONE && !apr_table_get(h, "anthropic-version")) {
        apr_table_setn(h, "anthropic-version", "2023-06-01");
    }
    if (account->cloud == S2A_CLOUD_BEDROCK && !account->bedrock->api_key) {
        sign_bedrock(r, q->attempt, host, h); /* unsigned, Bedrock refuses it (logged) */
    }
    if (q->attempt->proxy_authorization) {
        /* an http:// upstream through the account's egress: for the proxy */
        apr_table_setn(h, "Proxy-Authorization", q->attempt->proxy_authorization);
    }
    r->headers_in = h;
    return OK;
}
