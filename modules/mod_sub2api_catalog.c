/* Per-process cache of keys and accounts. Entries are dropped when the
 * store's generation counter moves (an admin change, a balance reaching zero)
 * or after Sub2apiCacheTTL seconds. A miss (an unknown key, no account for a
 * group) asks the store afresh before it is believed, so that what another
 * node just created is found at once. */
#include <http_request.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "mod_sub2api_private.h"

apr_status_t s2a_catalog_create(apr_pool_t *p, s2a_catalog **out)
{
    s2a_catalog *c = apr_pcalloc(p, sizeof(*c));
    apr_status_t rv = apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if ((rv = apr_pool_create(&c->keys_pool, p)) != APR_SUCCESS ||
        (rv = apr_pool_create(&c->old_keys_pool, p)) != APR_SUCCESS) {
        return rv;
    }
    c->keys = apr_hash_make(c->keys_pool);
    c->old_keys = apr_hash_make(c->old_keys_pool);
    *out = c;
    return APR_SUCCESS;
}

/* gen: the store's generation, read by the caller before taking the mutex
 * (with Redis, reading it may be a network call). */
static int stale(s2a_srv_conf *sc, apr_uint32_t cached_gen, apr_time_t loaded, apr_time_t now,
                 apr_uint32_t gen)
{
    return cached_gen != gen || now - loaded >= apr_time_from_sec(sc->cache_ttl);
}

/* The database is away: a key known before the cache was last emptied still
 * serves, as it was then, and is cached again (an outage may outlast
 * several Sub2apiCacheTTL). */
static int stale_key(s2a_catalog *c, const char *key_hash, s2a_key_rec *out)
{
    s2a_key_rec *hit;
    int found = 0;
    apr_thread_mutex_lock(c->mutex);
    hit = apr_hash_get(c->old_keys, key_hash, APR_HASH_KEY_STRING);
    if (hit && hit->id) {
        *out = *hit;
        hit = apr_pmemdup(c->keys_pool, out, sizeof(*out));
        apr_hash_set(c->keys, apr_pstrdup(c->keys_pool, key_hash), APR_HASH_KEY_STRING, hit);
        found = 1;
    }
    apr_thread_mutex_unlock(c->mutex);
    return found ? 1 : -1;
}

int s2a_catalog_key(request_rec *r, s2a_srv_conf *sc, const char *key_hash, s2a_key_rec *out)
{
    s2a_catalog *c = sc->catalog;
    apr_time_t now = apr_time_now();
    apr_uint32_t gen = s2a_g.store->ops->generation(s2a_g.store, 0);
    s2a_key_rec *hit;
    s2a_dbc dbc;
    void *h;
    int found;

    apr_thread_mutex_lock(c->mutex);
    if (stale(sc, c->keys_gen, c->keys_loaded, now, gen) || apr_hash_count(c->keys) > 100000) {
        apr_pool_t *emptied = c->old_keys_pool;
        apr_pool_clear(emptied);
        c->old_keys_pool = c->keys_pool;
        c->old_keys = c->keys;
        c->keys_pool = emptied;
        c->keys = apr_hash_make(c->keys_pool);
        c->keys_gen = gen;
        c->keys_loaded = now;
    }
    hit = apr_hash_get(c->keys, key_hash, APR_HASH_KEY_STRING);
    if (hit) {
        *out = *hit;
    }
    apr_thread_mutex_unlock(c->mutex);
    if (hit && !out->id && gen != s2a_g.store->ops->generation(s2a_g.store, 1)) {
        hit = NULL; /* unknown when cached: maybe created since */
        gen = s2a_g.store->ops->generation(s2a_g.store, 0);
    }
    if (hit) {
        return out->id ? 1 : 0;
    }

    found = -1;
    if (s2a_dbc_open(r->pool, r->server, &dbc, &h)) {
        found = s2a_db_key_lookup(&dbc, r->pool, key_hash, out);
        s2a_dbc_close(r->server, h);
    }
    if (found < 0) {
        return stale_key(c, key_hash, out);
    }
    if (!found) {
        memset(out, 0, sizeof(*out)); /* cached as unknown: id 0 */
    } else {
        /* hashed once per key and cache period, not per request */
        const char *secret = apr_atomic_casptr((volatile void **)&sc->secret, NULL, NULL);
        out->key_state = s2a_state_key(apr_pstrcat(r->pool, "key:", key_hash, NULL));
        out->user_state = secret ? s2a_user_state_key(r->pool, secret, out->user_id) : 0;
    }
    apr_thread_mutex_lock(c->mutex);
    if (c->keys_gen == gen) {
        hit = apr_pmemdup(c->keys_pool, out, sizeof(*out));
        apr_hash_set(c->keys, apr_pstrdup(c->keys_pool, key_hash), APR_HASH_KEY_STRING, hit);
    }
    apr_thread_mutex_unlock(c->mutex);
    return found;
}

apr_int64_t s2a_account_state_key(apr_pool_t *p, s2a_srv_conf *sc, apr_int64_t id, int refreshable,
                                  const char *plain)
{
    if (refreshable) {
        return s2a_state_key(apr_psprintf(p, "account:%s:%" APR_INT64_T_FMT,
                                          sc->secret ? (const char *)sc->secret : "", id));
    }
    return s2a_state_key(plain);
}

apr_int64_t s2a_user_state_key(apr_pool_t *p, const char *secret, apr_int64_t user_id)
{
    return s2a_state_key(apr_psprintf(p, "user:%s:%" APR_INT64_T_FMT, secret, user_id));
}

/* Credentials come out of the database sealed or plain; an account whose
 * credential cannot be opened does not serve. */
static void open_credentials(server_rec *s, s2a_srv_conf *sc, apr_pool_t *p,
                             apr_array_header_t *list)
{
    int i;
    for (i = 0; i < list->nelts; i++) {
        s2a_account *a = &APR_ARRAY_IDX(list, i, s2a_account);
        const char *plain = s2a_credential_open(p, sc, a->credential);
        if (!plain) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         S2ALOGNO(0102) "account %" APR_INT64_T_FMT " credential cannot be "
                                        "opened: another or no Sub2apiCredentialKeyFile",
                         a->id);
            a->active = 0;
            plain = "";
        }
        a->credential = plain;
        a->state_key = s2a_account_state_key(p, sc, a->id, a->refreshable, plain);
    }
}

static s2a_account_list *list_get(s2a_catalog *c)
{
    s2a_account_list *l;
    apr_thread_mutex_lock(c->mutex);
    l = c->list;
    if (l) {
        apr_atomic_inc32(&l->refs);
    }
    apr_thread_mutex_unlock(c->mutex);
    return l;
}

static void list_put(s2a_account_list *l)
{
    if (l && apr_atomic_dec32(&l->refs) == 0) {
        apr_pool_destroy(l->pool);
    }
}

/* The database is away: the list loaded last serves another Sub2apiCacheTTL
 * before the next try. */
static int keep_list(s2a_srv_conf *sc, apr_uint32_t gen, apr_time_t now)
{
    s2a_catalog *c = sc->catalog;
    int have;
    apr_thread_mutex_lock(c->mutex);
    have = c->list != NULL;
    if (have) {
        c->list->gen = gen;
        c->list->loaded = now;
    }
    apr_thread_mutex_unlock(c->mutex);
    return have;
}

/* Reloads the account list when stale; the database is read without the
 * mutex held, then the new list replaces the old one under it. */
static int refresh_accounts(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, int fresh)
{
    s2a_catalog *c = sc->catalog;
    apr_time_t now = apr_time_now();
    apr_uint32_t gen = s2a_g.store->ops->generation(s2a_g.store, fresh);
    s2a_account_list *l, *old;
    apr_pool_t *np;
    const char *err = NULL;
    s2a_dbc dbc;
    void *h;
    apr_status_t rv;
    int need;

    apr_thread_mutex_lock(c->mutex);
    need = !c->list || stale(sc, c->list->gen, c->list->loaded, now, gen);
    apr_thread_mutex_unlock(c->mutex);
    if (!need) {
        return 1;
    }
    if (!s2a_dbc_open(p, s, &dbc, &h)) {
        return keep_list(sc, gen, now);
    }
    /* unmanaged: request threads create and destroy it concurrently */
    apr_pool_create_unmanaged(&np);
    l = apr_pcalloc(np, sizeof(*l));
    l->pool = np;
    l->refs = 1;
    l->gen = gen;
    l->loaded = now;
    rv = s2a_db_accounts_load(&dbc, np, &l->accounts, &err);
    s2a_dbc_close(s, h);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, S2ALOGNO(0101) "loading accounts: %s", err);
        s2a_metrics_note(S2A_COUNT_DB_ERRORS);
        apr_pool_destroy(np);
        return keep_list(sc, gen, now);
    }
    open_credentials(s, sc, np, l->accounts);
    apr_thread_mutex_lock(c->mutex);
    old = c->list;
    c->list = l;
    c->loads++;
    apr_thread_mutex_unlock(c->mutex);
    list_put(old);
    return 1;
}

static int in_group(const s2a_account *a, apr_int64_t group_id)
{
    int i;
    for (i = 0; i < a->group_ids->nelts; i++) {
        if (APR_ARRAY_IDX(a->group_ids, i, apr_int64_t) == group_id) {
            return 1;
        }
    }
    return 0;
}

static int excluded(const apr_array_header_t *ids, apr_int64_t id)
{
    int i;
    for (i = 0; ids && i < ids->nelts; i++) {
        if (APR_ARRAY_IDX(ids, i, apr_int64_t) == id) {
            return 1;
        }
    }
    return 0;
}

/* The catalog's list may be replaced while the request runs: nothing of it
 * is kept by pointer. */
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

const s2a_price *s2a_price_of(s2a_srv_conf *sc, const char *upstream_model)
{
    const s2a_price *price = s2a_pricing_lookup(sc->prices, upstream_model);
    if (!price && sc->unpriced_model && *sc->unpriced_model) {
        price = s2a_pricing_lookup(sc->prices, sc->unpriced_model);
    }
    return price;
}

/* What the request holds should this account serve it: nothing when its
 * model has no price (the request is refused then). */
static apr_int64_t hold_for(s2a_srv_conf *sc, const s2a_hold *hold, const s2a_account *a,
                            const char *model)
{
    const char *mapped = apr_hash_get(a->mapping, model, APR_HASH_KEY_STRING);
    const s2a_price *price = s2a_price_of(sc, mapped ? mapped : model);
    s2a_cost cost;
    if (!price) {
        return 0;
    }
    s2a_cost_compute(price, &hold->estimate, hold->multiplier_ppm, &cost);
    return cost.actual;
}

static int choose_once(request_rec *r, s2a_srv_conf *sc, apr_int64_t group_id, const char *model,
                       const apr_array_header_t *exclude, apr_uint64_t session, int wait_for_bound,
                       int no_limit, s2a_hold *hold, s2a_account *out, const char **upstream_model,
                       s2a_place *place)
{
    s2a_account_list *l = list_get(sc->catalog);
    s2a_candidate *cand;
    s2a_account **acc;
    apr_pool_t *tmp;
    int i, n = 0, pick = S2A_PICK_NONE, held = 0;
    apr_status_t rv = APR_SUCCESS;

    if (!l) {
        return -1;
    }
    /* scratch: a waiting request calls this every 50 ms */
    apr_pool_create(&tmp, r->pool);
    cand = apr_palloc(tmp, sizeof(*cand) * (apr_size_t)(l->accounts->nelts + 1));
    acc = apr_palloc(tmp, sizeof(*acc) * (apr_size_t)(l->accounts->nelts + 1));
    for (i = 0; i < l->accounts->nelts; i++) {
        s2a_account *a = &APR_ARRAY_IDX(l->accounts, i, s2a_account);
        if (!a->active || !in_group(a, group_id) || excluded(exclude, a->id)) {
            continue;
        }
        if (apr_hash_count(a->mapping) && !apr_hash_get(a->mapping, model, APR_HASH_KEY_STRING)) {
            continue;
        }
        cand[n].key = a->state_key;
        cand[n].priority = a->priority;
        cand[n].concurrency = no_limit ? 0 : a->concurrency;
        cand[n].hold = hold ? hold_for(sc, hold, a, model) : 0;
        acc[n++] = a;
    }
    if (n) {
        rv = s2a_g.store->ops->pick(s2a_g.store, cand, n, apr_time_now(), session,
                                    apr_time_from_sec(sc->sticky_ttl), wait_for_bound,
                                    hold ? &hold->balance : NULL, &pick, place, &held);
    }
    if (rv == APR_SUCCESS && pick >= 0 && hold) {
        hold->held = held;
        hold->amount = held == 1 ? cand[pick].hold : 0;
    }
    if (rv == APR_SUCCESS && pick >= 0) {
        const s2a_account *a = acc[pick];
        const char *mapped = apr_hash_get(a->mapping, model, APR_HASH_KEY_STRING);
        *out = *a;
        out->name = apr_pstrdup(r->pool, a->name);
        out->type = apr_pstrdup(r->pool, a->type);
        out->credential = apr_pstrdup(r->pool, a->credential);
        out->endpoint = apr_pstrdup(r->pool, a->endpoint);
        out->mapping = NULL;
        out->error_codes = a->error_codes ? apr_array_copy(r->pool, a->error_codes) : NULL;
        out->headers = a->headers ? deep_copy(r->pool, a->headers) : NULL;
        out->group_ids = NULL;
        *upstream_model = mapped ? apr_pstrdup(r->pool, mapped) : model;
        if (no_limit) {
            /* a place not given back frees itself when its lease ends */
            if (s2a_g.store->ops->release(s2a_g.store, place) != APR_SUCCESS) {
                s2a_store_failed(r, "giving a place back");
            }
            place->key = 0;
        }
    }
    apr_pool_destroy(tmp);
    list_put(l);
    if (rv != APR_SUCCESS) {
        s2a_store_failed(r, "choosing an account");
        return -3;
    }
    return pick >= 0 ? 1 : pick == S2A_PICK_BUSY ? -2 : pick == S2A_PICK_BROKE ? -4 : 0;
}

int s2a_catalog_choose(request_rec *r, s2a_srv_conf *sc, apr_int64_t group_id, const char *model,
                       const apr_array_header_t *exclude, apr_uint64_t session, int wait_for_bound,
                       int no_limit, s2a_hold *hold, s2a_account *out, const char **upstream_model,
                       s2a_place *place)
{
    apr_uint32_t seen;
    int rc;
    if (!refresh_accounts(r->pool, r->server, sc, 0)) {
        return -1;
    }
    rc = choose_once(r, sc, group_id, model, exclude, session, wait_for_bound, no_limit, hold, out,
                     upstream_model, place);
    if (rc != 0) {
        return rc;
    }
    apr_thread_mutex_lock(sc->catalog->mutex);
    seen = sc->catalog->loads;
    apr_thread_mutex_unlock(sc->catalog->mutex);
    if (!refresh_accounts(r->pool, r->server, sc, 1)) {
        return -1;
    }
    apr_thread_mutex_lock(sc->catalog->mutex);
    rc = seen != sc->catalog->loads; /* reloaded */
    apr_thread_mutex_unlock(sc->catalog->mutex);
    return rc ? choose_once(r, sc, group_id, model, exclude, session, wait_for_bound, no_limit,
                            hold, out, upstream_model, place)
              : 0;
}

s2a_account_list *s2a_catalog_accounts(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc)
{
    refresh_accounts(p, s, sc, 0);
    return list_get(sc->catalog);
}

void s2a_catalog_release(s2a_account_list *l)
{
    list_put(l);
}

apr_array_header_t *s2a_catalog_models(request_rec *r, s2a_srv_conf *sc, apr_int64_t group_id)
{
    apr_array_header_t *out = apr_array_make(r->pool, 16, sizeof(const char *));
    s2a_account_list *l = s2a_catalog_accounts(r->pool, r->server, sc);
    int i, every = 0;
    if (!l) {
        return NULL;
    }
    for (i = 0; i < l->accounts->nelts; i++) {
        const s2a_account *a = &APR_ARRAY_IDX(l->accounts, i, s2a_account);
        apr_hash_index_t *hi;
        if (!a->active || !in_group(a, group_id)) {
            continue;
        }
        if (!apr_hash_count(a->mapping)) {
            every = 1;
        }
        for (hi = apr_hash_first(r->pool, a->mapping); hi; hi = apr_hash_next(hi)) {
            APR_ARRAY_PUSH(out, const char *) = apr_pstrdup(r->pool, apr_hash_this_key(hi));
        }
    }
    list_put(l);
    if (every) {
        apr_array_cat(out, s2a_pricing_anthropic(sc->prices));
    }
    return out;
}
