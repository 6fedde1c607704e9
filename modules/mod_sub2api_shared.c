/* What the glue files share: database handles, the pseudonym key, sealed
 * credentials, errors in the client's shape, JSON I/O and counters (see
 * mod_sub2api_shared.h). */
#include <http_protocol.h>
#include <apr_atomic.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include <mod_dbd.h>
#include <mod_proxy.h>
#include "s2a_aead.h"
#include "s2a_errors.h"
#include "s2a_sha256.h"

#define S2A_JSON_MAX_BODY (1024 * 1024)

s2a_globals s2a_g;

/* The error body is built only when httpd sends an error page (see
 * mod_sub2api_error_page.c), so the request path pays nothing for it. */
int s2a_fail(request_rec *r, int status, const char *message)
{
    apr_table_setn(r->notes, S2A_ERROR_NOTE, message);
    return status;
}

int s2a_fail_at(request_rec *r, int status, const char *message, const char *param)
{
    if (param) {
        apr_table_setn(r->notes, S2A_ERROR_PARAM_NOTE, param);
    }
    return s2a_fail(r, status, message);
}

int s2a_no_database(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "retry-after", "1");
    return s2a_fail(r, HTTP_SERVICE_UNAVAILABLE, S2A_NO_DATABASE);
}

void s2a_send_error_event(request_rec *r, int status, const char *message)
{
    const s2a_request *q = s2a_request_of(r);
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_size_t len;
    const char *ev =
        s2a_door_error_event(r->pool, q ? q->door.kind : S2A_DOOR_MESSAGES, status, message, &len);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(ev, len, r->pool, bb->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(r->connection->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
}

static apr_status_t put_json(void *o)
{
    json_object_put(o);
    return APR_SUCCESS;
}

json_object *s2a_json_pooled(apr_pool_t *p, json_object *o)
{
    if (o) {
        apr_pool_cleanup_register(p, o, put_json, apr_pool_cleanup_null);
    }
    return o;
}

int s2a_read_json(request_rec *r, json_object **out)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL;
    apr_size_t total = 0;
    int done = 0, bad = 0;
    enum json_tokener_error jerr = json_tokener_continue;

    while (!done && !bad) {
        apr_bucket *b;
        if (ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ, 65536) !=
            APR_SUCCESS) {
            bad = 1;
            break;
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t n;
            if (APR_BUCKET_IS_EOS(b)) {
                done = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b) || apr_bucket_read(b, &data, &n, APR_BLOCK_READ)) {
                continue;
            }
            total += n;
            if (total > S2A_JSON_MAX_BODY || o) {
                bad = 1;
                break;
            }
            o = json_tokener_parse_ex(tok, data, (int)n);
            jerr = json_tokener_get_error(tok);
            if (jerr != json_tokener_continue && jerr != json_tokener_success) {
                bad = 1;
                break;
            }
        }
        apr_brigade_cleanup(bb);
    }
    if (!bad && total && !o) {
        /* a bare number or literal may need the end to be seen */
        o = json_tokener_parse_ex(tok, "", 0);
    }
    json_tokener_free(tok);
    if (bad || (total && (!o || !json_object_is_type(o, json_type_object)))) {
        json_object_put(o);
        return 0;
    }
    *out = s2a_json_pooled(r->pool, o);
    return 1;
}

int s2a_send_json(request_rec *r, int status, json_object *o)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    ap_rputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), r);
    ap_rputs("\n", r);
    return OK;
}

int s2a_send_error(request_rec *r, int status, const char *message)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    ap_rputs(s2a_error_body(r->pool, status, message), r);
    return OK;
}

/* The check's results go to the caller's pool `p`: the connection's own
 * lives as long as the connection, and would grow with every use. */
static int from_dbd(apr_pool_t *p, ap_dbd_t *d, s2a_dbc *c)
{
    if (!d) {
        return 0;
    }
    c->driver = d->driver;
    c->handle = d->handle;
    c->prepared = d->prepared;
    c->pool = d->pool;
    return s2a_db_alive(c, p);
}

int s2a_dbc_open(apr_pool_t *p, server_rec *s, s2a_dbc *c, void **handle)
{
    ap_dbd_t *d = ap_dbd_open(p, s);
    *handle = d;
    if (d && !from_dbd(p, d, c)) {
        ap_dbd_close(s, d); /* back to the pool: its next user gets it reconnected */
        d = NULL;
    }
    if (!d) {
        s2a_metrics_note(S2A_COUNT_DB_ERRORS);
    }
    return d != NULL;
}

void s2a_dbc_close(server_rec *s, void *handle)
{
    ap_dbd_close(s, handle);
}

int s2a_dbc_acquire(request_rec *r, s2a_dbc *c)
{
    if (!from_dbd(r->pool, ap_dbd_acquire(r), c)) {
        s2a_metrics_note(S2A_COUNT_DB_ERRORS);
        return 0;
    }
    return 1;
}

/* Without Sub2apiUserIdSecretFile the pseudonym key lives in the database,
 * made once by whichever process gets there first. */
const char *s2a_secret(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *c)
{
    unsigned char rnd[32];
    const char *value = NULL, *err = NULL;
    if (sc->secret) {
        return sc->secret;
    }
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS ||
        s2a_db_secret(c, p, "user_id_secret", s2a_hex(p, rnd, sizeof(rnd)), &value, &err) !=
            APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0011) "no key for user pseudonyms yet: %s",
                     err ? err : "no randomness");
        return NULL;
    }
    apr_cpystrn(sc->secret_buf, value, sizeof(sc->secret_buf));
    apr_atomic_casptr((volatile void **)&sc->secret, sc->secret_buf, NULL);
    return sc->secret;
}

/* What a sealed secret is bound to; sealed before the binding to the
 * account, a value still opens with the old words until it is written
 * again. */
#define ACCOUNT_AAD "s2a-account:%" APR_INT64_T_FMT
#define UNBOUND_AAD "s2a-account-credential"

const char *s2a_credential_seal(apr_pool_t *p, s2a_srv_conf *sc, apr_int64_t id, const char *plain)
{
    return sc->cred_key
               ? s2a_aead_seal_text(p, sc->cred_key, apr_psprintf(p, ACCOUNT_AAD, id), plain)
               : plain;
}

const char *s2a_credential_open(apr_pool_t *p, s2a_srv_conf *sc, apr_int64_t id, const char *stored)
{
    const char *plain;
    if (!s2a_aead_is_sealed(stored)) {
        return stored; /* written before a key was set */
    }
    if (!sc->cred_key) {
        return NULL;
    }
    plain = s2a_aead_open_text(p, sc->cred_key, apr_psprintf(p, ACCOUNT_AAD, id), stored);
    return plain ? plain : s2a_aead_open_text(p, sc->cred_key, UNBOUND_AAD, stored);
}

apr_int64_t s2a_account_state_key(apr_pool_t *p, s2a_srv_conf *sc, apr_int64_t id, int refreshable,
                                  const char *plain)
{
    return s2a_state_key_account(p, sc->secret, id, refreshable, plain);
}

void s2a_store_failed(request_rec *r, const char *doing)
{
    s2a_metrics_note(S2A_COUNT_STORE_ERRORS);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, S2ALOGNO(0012) "%s store failed %s: %s",
                  s2a_g.store->ops->name, doing,
                  s2a_g.store->ops->last_error(s2a_g.store, r->pool));
}

void s2a_give_back(request_rec *r, s2a_place *place)
{
    if (place->key) {
        if (s2a_g.store->ops->release(s2a_g.store, place) != APR_SUCCESS) {
            s2a_store_failed(r, "giving a place back");
        }
        place->key = 0;
    }
}

void s2a_bump(server_rec *s, apr_pool_t *p)
{
    if (s2a_g.store->ops->bump(s2a_g.store) != APR_SUCCESS) {
        /* other hosts reload within Sub2apiCacheTTL anyway */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     S2ALOGNO(0013) "%s store failed telling other hosts to reload: %s",
                     s2a_g.store->ops->name, s2a_g.store->ops->last_error(s2a_g.store, p));
    }
}

int s2a_forget_balance(apr_pool_t *p, server_rec *s, s2a_srv_conf *sc, s2a_dbc *c,
                       apr_int64_t user_id)
{
    const char *secret = s2a_secret(p, s, sc, c);
    return secret && s2a_g.store->ops->forget_balance(
                         s2a_g.store, s2a_state_key_user(p, secret, user_id)) == APR_SUCCESS;
}

void s2a_metrics_note(int counter)
{
    if (s2a_g.metrics) {
        s2a_metrics_add(s2a_g.metrics, counter, 1);
    }
}

void s2a_metrics_move(int gauge, apr_int64_t delta)
{
    if (s2a_g.metrics) {
        s2a_metrics_add(s2a_g.metrics, gauge, delta);
    }
}

const char *s2a_server_label(apr_pool_t *p, server_rec *s)
{
    return apr_psprintf(p, "%s:%u", s->server_hostname ? s->server_hostname : "",
                        s->addrs ? s->addrs->host_port : s->port);
}

apr_array_header_t *s2a_members_closed(request_rec *r)
{
    s2a_dir_conf *dc = s2a_dir_conf_of(r);
    proxy_server_conf *conf = ap_get_module_config(r->server->module_config, &proxy_module);
    apr_array_header_t *closed = NULL;
    proxy_balancer *b;
    int i;
    if (!dc || !dc->balancer || !conf ||
        !(b = ap_proxy_get_balancer(r->pool, conf, dc->balancer, 0))) {
        return NULL;
    }
    for (i = 0; i < b->workers->nelts; i++) {
        proxy_worker *w = APR_ARRAY_IDX(b->workers, i, proxy_worker *);
        if (w->s->status & (PROXY_WORKER_DISABLED | PROXY_WORKER_STOPPED | PROXY_WORKER_DRAIN)) {
            if (!closed) {
                closed = apr_array_make(r->pool, 2, sizeof(const char *));
            }
            APR_ARRAY_PUSH(closed, const char *) = *w->s->name_ex ? w->s->name_ex : w->s->name;
        }
    }
    return closed;
}
