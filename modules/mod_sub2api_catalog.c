/* Per-process cache of keys and accounts. Entries are dropped when the
 * store's generation counter moves (an admin change, a balance reaching zero)
 * or after Sub2apiCacheTTL seconds. A miss (an unknown key, no account for a
 * group) asks the store afresh before it is believed, so that what another
 * node just created is found at once. */
#include <http_request.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_choice.h"
#include "s2a_keys.h"
#include "s2a_sha256.h"

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
    c->unknown_keys = s2a_memo_make(p, S2A_UNKNOWN_KEYS);
    c->fallbacks_told = s2a_memo_make(p, S2A_FALLBACKS_TOLD);
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

/* A key the database does not know stays unknown while the generation
 * does not move: asked afresh before it is believed (maybe it was created
 * since). Unknown keys live in a memory of their own, of a fixed size, so
 * that strangers neither grow the process nor push known keys out. */
int s2a_catalog_key(request_rec *r, s2a_srv_conf *sc, const unsigned char *digest,
                    const char *key_hash, s2a_key_rec *out)
{
    s2a_catalog *c = sc->catalog;
    apr_time_t now = apr_time_now();
    apr_uint32_t gen = s2a_g.store->ops->generation(s2a_g.store, 0);
    apr_int64_t unknown_gen;
    s2a_key_rec *hit;
    s2a_dbc dbc;
    void *h;
    int found, stranger;

    apr_thread_mutex_lock(c->mutex);
    if (stale(sc, c->keys_gen, c->keys_loaded, now, gen) ||
        apr_hash_count(c->keys) > S2A_KNOWN_KEYS) {
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
    stranger = !hit && s2a_memo_get(c->unknown_keys, digest, &unknown_gen) &&
               unknown_gen == (apr_int64_t)gen;
    apr_thread_mutex_unlock(c->mutex);
    if (hit) {
        return 1;
    }
    if (stranger && gen == s2a_g.store->ops->generation(s2a_g.store, 1)) {
        return 0;
    }
    gen = s2a_g.store->ops->generation(s2a_g.store, 0);
    s2a_metrics_note(S2A_COUNT_KEY_LOOKUPS);
    found = -1;
    if (s2a_dbc_open(r->pool, r->server, &dbc, &h)) {
        found = s2a_db_key_lookup(&dbc, r->pool, key_hash, out);
        s2a_dbc_close(r->server, h);
    }
    if (found < 0) {
        return stale_key(c, key_hash, out);
    }
    if (found) {
        /* hashed once per key and cache period, not per request */
        const char *secret = apr_atomic_casptr((volatile void **)&sc->secret, NULL, NULL);
        out->key_state = s2a_state_key(apr_pstrcat(r->pool, "key:", key_hash, NULL));
        out->user_state = secret ? s2a_state_key_user(r->pool, secret, out->user_id) : 0;
    }
    apr_thread_mutex_lock(c->mutex);
    if (!found) {
        s2a_memo_put(c->unknown_keys, digest, gen);
    } else if (c->keys_gen == gen) {
        hit = apr_pmemdup(c->keys_pool, out, sizeof(*out));
        apr_hash_set(c->keys, apr_pstrdup(c->keys_pool, key_hash), APR_HASH_KEY_STRING, hit);
    }
    apr_thread_mutex_unlock(c->mutex);
    return found;
}

/* Where an address's failed authentications are counted (the store) and
 * its block is held for the node's processes (the shared state's lock). */
static apr_int64_t address_key(request_rec *r)
{
    return s2a_state_key(apr_pstrcat(r->pool, "auth-failures:", r->useragent_ip, NULL));
}

static int too_many_failures(request_rec *r, apr_time_t until)
{
    s2a_metrics_note(S2A_COUNT_AUTH_BLOCKED);
    apr_table_setn(r->err_headers_out, "retry-after",
                   apr_psprintf(r->pool, "%" APR_TIME_T_FMT,
                                apr_time_sec(until) - apr_time_sec(apr_time_now()) + 1));
    return s2a_fail(r, HTTP_TOO_MANY_REQUESTS,
                    "Too many failed authentications from this address; retry later");
}

/* A refused key counts against its address's failures per minute (in the
 * store, across processes and nodes): past the limit the address gets 429
 * for the rest of the minute, its keys unread, from every process of the
 * node that refused it (a node that has not refused it yet reads good keys
 * until its own first refusal). */
static int refuse_key(request_rec *r, s2a_srv_conf *sc, const char *message)
{
    apr_int64_t address = address_key(r);
    apr_time_t now = apr_time_now(), retry_at;
    int allowed = 1;
    s2a_metrics_note(S2A_COUNT_AUTH_FAILURES);
    if (sc->auth_failure_limit > 0 &&
        s2a_g.store->ops->rate(s2a_g.store, address, sc->auth_failure_limit, now, &allowed,
                               &retry_at) != APR_SUCCESS) {
        s2a_store_failed(r, "counting an address's failed authentications");
    } else if (!allowed) {
        s2a_state_lock(s2a_g.state, address, retry_at - now, now);
        return too_many_failures(r, retry_at);
    }
    return s2a_fail(r, HTTP_UNAUTHORIZED, message);
}

int s2a_authenticate(request_rec *r, s2a_srv_conf *sc, s2a_key_rec *out, const char **key_hash)
{
    const char *key = s2a_key_from_headers(r->pool, apr_table_get(r->headers_in, "x-api-key"),
                                           apr_table_get(r->headers_in, "Authorization"));
    unsigned char digest[S2A_SHA256_LEN];
    apr_time_t now = apr_time_now();
    /* the address is named (hashed) only when some address may be blocked */
    apr_time_t until = s2a_state_any_lock(s2a_g.state, now)
                           ? s2a_state_locked_until(s2a_g.state, address_key(r), now)
                           : 0;
    int found;

    if (until) {
        return too_many_failures(r, until);
    }
    if (!key) {
        return refuse_key(r, sc, "An API key is required in the x-api-key or Authorization header");
    }
    if (!s2a_key_well_formed(key)) {
        return refuse_key(r, sc, "invalid x-api-key");
    }
    s2a_sha256(key, strlen(key), digest);
    *key_hash = s2a_hex(r->pool, digest, sizeof(digest));
    found = s2a_catalog_key(r, sc, digest, *key_hash, out);
    if (found < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, S2ALOGNO(0202) "key lookup: no database");
        return s2a_no_database(r);
    }
    if (!found) {
        return refuse_key(r, sc, "invalid x-api-key");
    }
    if (!out->active) {
        return refuse_key(r, sc, "This API key is disabled");
    }
    if (out->expires_at && out->expires_at <= apr_time_sec(apr_time_now())) {
        return refuse_key(r, sc, "This API key has expired");
    }
    return OK;
}

static const char *open_secret(void *baton, apr_pool_t *p, apr_int64_t id, const char *stored)
{
    return s2a_credential_open(p, baton, id, stored);
}

/* Secrets come out of the database sealed or plain; an account whose
 * secrets cannot be opened does not serve. */
static void state_keys(server_rec *s, s2a_srv_conf *sc, apr_pool_t *p, apr_array_header_t *list)
{
    int i;
    for (i = 0; i < list->nelts; i++) {
        s2a_account *a = &APR_ARRAY_IDX(list, i, s2a_account);
        if (!a->credential) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         S2ALOGNO(0102) "account %" APR_INT64_T_FMT " secrets cannot be "
                                        "opened: another or no Sub2apiCredentialKeyFile, or "
                                        "sealed for another account",
                         a->id);
            a->credential = "";
        } else if (a->problem) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         S2ALOGNO(0104) "account %" APR_INT64_T_FMT " does not serve: %s", a->id,
                         a->problem);
        }
        a->state_key = s2a_account_state_key(p, sc, a->id, a->refreshable, a->credential);
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
    s2a_db_opener opener;
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
    opener.open = open_secret;
    opener.baton = sc;
    rv = s2a_db_accounts_load(&dbc, np, &opener, &l->accounts, &err);
    s2a_dbc_close(s, h);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, S2ALOGNO(0101) "loading accounts: %s", err);
        s2a_metrics_note(S2A_COUNT_DB_ERRORS);
        apr_pool_destroy(np);
        return keep_list(sc, gen, now);
    }
    state_keys(s, sc, np, l->accounts);
    apr_thread_mutex_lock(c->mutex);
    old = c->list;
    c->list = l;
    c->loads++;
    apr_thread_mutex_unlock(c->mutex);
    list_put(old);
    return 1;
}

static s2a_choice_result choose_once(request_rec *r, s2a_srv_conf *sc, const s2a_choice_ask *ask,
                                     s2a_attempt *into)
{
    s2a_account_list *l = list_get(sc->catalog);
    s2a_choice_hold prices, *priced = NULL;
    s2a_hold *hold = ask->hold;
    s2a_candidate *cand;
    const s2a_account **acc;
    apr_pool_t *tmp;
    int n, pick = S2A_PICK_NONE, held = 0;
    apr_status_t rv = APR_SUCCESS;

    if (!l) {
        return S2A_CHOICE_NO_DATABASE;
    }
    if (hold) {
        prices.estimate = &hold->estimate;
        prices.multiplier_ppm = hold->multiplier_ppm;
        prices.prices = sc->prices;
        prices.rules = sc->fallbacks;
        priced = &prices;
    }
    /* scratch: a waiting request calls this every 50 ms */
    apr_pool_create(&tmp, r->pool);
    cand = apr_palloc(tmp, sizeof(*cand) * (apr_size_t)(l->accounts->nelts + 1));
    acc = apr_palloc(tmp, sizeof(*acc) * (apr_size_t)(l->accounts->nelts + 1));
    n = s2a_choice_candidates(l->accounts, ask->group_id, ask->model, ask->exclude,
                              s2a_members_closed(r), ask->no_limit, priced, cand, acc);
    if (n) {
        rv = s2a_g.store->ops->pick(s2a_g.store, cand, n, apr_time_now(), ask->session,
                                    apr_time_from_sec(sc->sticky_ttl), ask->wait_for_bound,
                                    hold ? &hold->balance : NULL, &pick, &into->place, &held);
    }
    if (rv == APR_SUCCESS && pick >= 0 && hold) {
        hold->held = held;
        hold->amount = held == 1 ? cand[pick].hold : 0;
    }
    if (rv == APR_SUCCESS && pick >= 0) {
        char cloud_id[S2A_CLOUD_MODEL_MAX];
        s2a_choice_copy(r->pool, acc[pick], &into->account);
        into->upstream_model =
            apr_pstrdup(r->pool, s2a_choice_model(acc[pick], ask->model, cloud_id));
        if (ask->no_limit) {
            /* a place not given back frees itself when its lease ends */
            s2a_give_back(r, &into->place);
        }
    }
    apr_pool_destroy(tmp);
    list_put(l);
    if (rv != APR_SUCCESS) {
        s2a_store_failed(r, "choosing an account");
        return S2A_CHOICE_STORE_DOWN;
    }
    return pick >= 0                ? S2A_CHOSEN
           : pick == S2A_PICK_BUSY  ? S2A_CHOICE_BUSY
           : pick == S2A_PICK_BROKE ? S2A_CHOICE_BROKE
                                    : S2A_CHOICE_NONE;
}

s2a_choice_result s2a_catalog_choose(request_rec *r, s2a_srv_conf *sc, const s2a_choice_ask *ask,
                                     s2a_attempt *into)
{
    apr_uint32_t seen;
    s2a_choice_result rc;
    int reloaded;
    if (!refresh_accounts(r->pool, r->server, sc, 0)) {
        return S2A_CHOICE_NO_DATABASE;
    }
    rc = choose_once(r, sc, ask, into);
    if (rc != S2A_CHOICE_NONE) {
        return rc;
    }
    /* none: maybe an account was added since; asked afresh before believed */
    apr_thread_mutex_lock(sc->catalog->mutex);
    seen = sc->catalog->loads;
    apr_thread_mutex_unlock(sc->catalog->mutex);
    if (!refresh_accounts(r->pool, r->server, sc, 1)) {
        return S2A_CHOICE_NO_DATABASE;
    }
    apr_thread_mutex_lock(sc->catalog->mutex);
    reloaded = seen != sc->catalog->loads;
    apr_thread_mutex_unlock(sc->catalog->mutex);
    return reloaded ? choose_once(r, sc, ask, into) : S2A_CHOICE_NONE;
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
    s2a_account_list *l = s2a_catalog_accounts(r->pool, r->server, sc);
    apr_array_header_t *out;
    if (!l) {
        return NULL;
    }
    out = s2a_choice_models(r->pool, l->accounts, group_id, s2a_pricing_anthropic(sc->prices));
    list_put(l);
    return out;
}

/* What a cloud's body loses and carries, and where it goes. */
static void cloud_request(request_rec *r, s2a_request *q, s2a_attempt *a, s2a_body_edits *edits)
{
    const s2a_account *acct = &a->account;
    const char *path = s2a_cloud_path(r->pool, acct->cloud, acct->project, acct->region,
                                      a->upstream_model, q->body.stream, q->count_only);
    if (acct->cloud == S2A_CLOUD_BEDROCK) {
        edits->drop_model = edits->drop_stream = edits->drop_metadata = 1;
        edits->add_metadata = 0;
        edits->anthropic_version = S2A_BEDROCK_ANTHROPIC_VERSION;
        edits->betas = apr_table_get(r->headers_in, "anthropic-beta");
        edits->add_max_tokens = q->count_only;
    } else if (!q->count_only) {
        edits->drop_model = 1;
        edits->anthropic_version = S2A_VERTEX_ANTHROPIC_VERSION;
    }
    a->filename = apr_pstrcat(r->pool, "proxy:", s2a_dir_conf_of(r)->balancer, path, NULL);
}

int s2a_attempt_ready(request_rec *r, s2a_request *q, s2a_attempt *a)
{
    s2a_body_edits edits;
    s2a_oauth_freshen(r, q->sconf, &a->account);
    a->price = s2a_cloud_price(q->sconf->prices, q->sconf->fallbacks, a->account.cloud,
                               a->upstream_model, q->body.model, &a->priced_by);
    if (!a->price && !q->count_only) {
        return 0;
    }
    memset(&edits, 0, sizeof(edits));
    edits.upstream_model = a->upstream_model;
    edits.secret = q->secret;
    edits.user_id = q->key.user_id;
    edits.account_id = a->account.id;
    edits.add_metadata = !q->count_only;
    a->filename = q->proxy_filename;
    if (a->account.cloud != S2A_CLOUD_NONE) {
        cloud_request(r, q, a, &edits);
    }
    a->body = s2a_body_for_account(r->pool, &q->body, &edits, &a->renamed);
    if (a->account.cloud == S2A_CLOUD_BEDROCK && q->count_only) {
        a->body = s2a_bedrock_count_body(r->pool, a->body); /* the invoke body, wrapped */
    }
    return 1;
}
