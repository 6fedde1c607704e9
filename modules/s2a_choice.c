/* Which accounts may serve a request: see s2a_choice.h. */
#include <strings.h>

#include <apr_strings.h>

#include "s2a_choice.h"

const char *s2a_choice_model(const s2a_account *a, const char *model, char *cloud_id)
{
    const char *mapped = a->mapping ? apr_hash_get(a->mapping, model, APR_HASH_KEY_STRING) : NULL;
    if (mapped || a->cloud == S2A_CLOUD_NONE) {
        return mapped ? mapped : model;
    }
    s2a_cloud_model_id(a->cloud, a->region, model, cloud_id);
    return cloud_id;
}

static int among(const apr_array_header_t *ids, apr_int64_t id)
{
    int i;
    for (i = 0; ids && i < ids->nelts; i++) {
        if (APR_ARRAY_IDX(ids, i, apr_int64_t) == id) {
            return 1;
        }
    }
    return 0;
}

int s2a_choice_serves(const s2a_account *a, apr_int64_t group_id, const char *model)
{
    return a->active && among(a->group_ids, group_id) &&
           (!apr_hash_count(a->mapping) || apr_hash_get(a->mapping, model, APR_HASH_KEY_STRING));
}

apr_array_header_t *s2a_choice_models(apr_pool_t *p, const apr_array_header_t *accounts,
                                      apr_int64_t group_id, const apr_array_header_t *every)
{
    apr_array_header_t *out = apr_array_make(p, 16, sizeof(const char *));
    int i, serves_all = 0;
    for (i = 0; i < accounts->nelts; i++) {
        const s2a_account *a = &APR_ARRAY_IDX(accounts, i, s2a_account);
        apr_hash_index_t *hi;
        if (!a->active || !among(a->group_ids, group_id)) {
            continue;
        }
        serves_all = serves_all || !apr_hash_count(a->mapping);
        for (hi = apr_hash_first(p, a->mapping); hi; hi = apr_hash_next(hi)) {
            APR_ARRAY_PUSH(out, const char *) = apr_pstrdup(p, apr_hash_this_key(hi));
        }
    }
    if (serves_all) {
        apr_array_cat(out, every);
    }
    return out;
}

static apr_int64_t hold_for(const s2a_choice_hold *hold, const s2a_account *a, const char *model)
{
    char cloud_id[S2A_CLOUD_MODEL_MAX];
    const s2a_price *price = s2a_cloud_price(hold->prices, hold->rules, a->cloud,
                                             s2a_choice_model(a, model, cloud_id), model, NULL);
    s2a_cost cost;
    if (!price) {
        return 0;
    }
    s2a_cost_compute(price, hold->estimate, hold->multiplier_ppm, &cost);
    return cost.actual;
}

int s2a_choice_endpoint_is(const char *name, const char *endpoint)
{
    apr_size_t n = strlen(endpoint), m = strlen(name);
    while (n && endpoint[n - 1] == '/') {
        n--;
    }
    while (m && name[m - 1] == '/') {
        m--;
    }
    return n == m && strncasecmp(name, endpoint, n) == 0;
}

static int closed_to(const apr_array_header_t *closed, const char *endpoint)
{
    int i;
    for (i = 0; closed && endpoint && i < closed->nelts; i++) {
        if (s2a_choice_endpoint_is(APR_ARRAY_IDX(closed, i, const char *), endpoint)) {
            return 1;
        }
    }
    return 0;
}

int s2a_choice_candidates(const apr_array_header_t *accounts, apr_int64_t group_id,
                          const char *model, const apr_array_header_t *exclude,
                          const apr_array_header_t *closed, int count_only,
                          const s2a_choice_hold *hold, s2a_candidate *cand, const s2a_account **acc)
{
    int i, n = 0;
    for (i = 0; i < accounts->nelts; i++) {
        const s2a_account *a = &APR_ARRAY_IDX(accounts, i, s2a_account);
        if (!s2a_choice_serves(a, group_id, model) || among(exclude, a->id) ||
            closed_to(closed, a->endpoint)) {
            continue;
        }
        cand[n].key = a->state_key;
        cand[n].priority = a->priority;
        cand[n].concurrency = count_only ? 0 : a->concurrency;
        cand[n].hold = hold ? hold_for(hold, a, model) : 0;
        acc[n++] = a;
    }
    return n;
}

/* The list may be replaced while the request runs: nothing of it is kept
 * by pointer. */
static apr_table_t *deep_copy(apr_pool_t *p, const apr_table_t *t)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_table_t *out = apr_table_make(p, arr->nelts);
    int i;
    for (i = 0; i < arr->nelts; i++) {
        apr_table_set(out, e[i].key, e[i].val);
    }
    return out;
}

void s2a_choice_copy(apr_pool_t *p, const s2a_account *a, s2a_account *out)
{
    *out = *a;
    out->name = apr_pstrdup(p, a->name);
    out->type = apr_pstrdup(p, a->type);
    out->credential = apr_pstrdup(p, a->credential);
    out->endpoint = apr_pstrdup(p, a->endpoint);
    out->mapping = NULL;
    out->error_codes = a->error_codes ? apr_array_copy(p, a->error_codes) : NULL;
    out->headers = a->headers ? deep_copy(p, a->headers) : NULL;
    out->egress = a->egress ? apr_pstrdup(p, a->egress) : NULL;
    out->region = apr_pstrdup(p, a->region ? a->region : "");
    out->project = apr_pstrdup(p, a->project ? a->project : "");
    out->problem = NULL; /* an account with one is never chosen */
    if (a->bedrock) {
        s2a_bedrock_credential *c = apr_palloc(p, sizeof(*c));
        c->api_key = a->bedrock->api_key ? apr_pstrdup(p, a->bedrock->api_key) : NULL;
        c->key.access_key_id =
            a->bedrock->key.access_key_id ? apr_pstrdup(p, a->bedrock->key.access_key_id) : NULL;
        c->key.secret_access_key = a->bedrock->key.secret_access_key
                                       ? apr_pstrdup(p, a->bedrock->key.secret_access_key)
                                       : NULL;
        c->key.session_token =
            a->bedrock->key.session_token ? apr_pstrdup(p, a->bedrock->key.session_token) : NULL;
        out->bedrock = c;
    }
    out->group_ids = NULL;
}
