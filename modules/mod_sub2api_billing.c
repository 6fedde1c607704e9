/* Billing: log_transaction, after the answer went out, turns the answering
 * attempt into its usage row (s2a_billing) for the writer thread, sets the
 * notes LogFormat shows and counts the request in the metrics. It runs
 * before mod_log_config, so that the notes are there. */
#include <http_protocol.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_billing.h"
#include "s2a_sha256.h"

/* A model billed by a fallback rule is told to the log once per process
 * (as far as the catalog's fixed-size memory of them goes) and counted
 * every time. */
static void priced_by_fallback(request_rec *r, s2a_srv_conf *sc, const s2a_attempt *a)
{
    unsigned char digest[S2A_SHA256_LEN];
    apr_int64_t seen;
    int told;

    s2a_metrics_note(S2A_COUNT_PRICED_BY_FALLBACK);
    if (!sc->catalog) {
        return;
    }
    s2a_sha256(a->upstream_model, strlen(a->upstream_model), digest);
    apr_thread_mutex_lock(sc->catalog->mutex);
    told = s2a_memo_get(sc->catalog->fallbacks_told, digest, &seen);
    if (!told) {
        s2a_memo_put(sc->catalog->fallbacks_told, digest, 1);
    }
    apr_thread_mutex_unlock(sc->catalog->mutex);
    if (!told) {
        const s2a_price_rule *last =
            &APR_ARRAY_IDX(sc->fallbacks, sc->fallbacks->nelts - 1, s2a_price_rule);
        ap_log_rerror(
            APLOG_MARK, APLOG_WARNING, 0, r,
            S2ALOGNO(0213) "model %s has no price in %s: billed at the prices of %s "
                           "(%s); said once per model and process",
            a->upstream_model, sc->price_file ? sc->price_file : "the price table",
            a->priced_by->model,
            sc->unpriced_model && *sc->unpriced_model && a->priced_by == last
                ? "Sub2apiUnpricedModel"
                : apr_psprintf(r->pool, "Sub2apiPriceFallback \"%s\"", a->priced_by->pattern));
    }
}

/* One usage row per answered attempt, handed to the writer thread. */
static void bill(request_rec *r, s2a_request *q)
{
    const s2a_attempt *a = q->attempt;
    s2a_billing_facts facts;
    s2a_usage_row row;
    s2a_usage usage;
    int stream;

    if (q->count_only || !a || !a->headers_at || a->verdict.failed || a->answer.status < 200 ||
        a->answer.status >= 300) {
        return;
    }
    if (!s2a_answer_usage(&q->attempt->answer, &usage)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      S2ALOGNO(0206) "answer without usage from account %" APR_INT64_T_FMT
                                     "; nothing billed",
                      a->account.id);
        return;
    }
    stream = a->answer.mode == S2A_ANSWER_STREAM;
    facts.request_id = q->request_id;
    facts.attempt = a->number;
    facts.key = &q->key;
    facts.account_id = a->account.id;
    facts.model = q->body.model;
    facts.upstream_model = a->upstream_model;
    facts.price = a->price;
    facts.usage = usage;
    facts.stream = stream;
    facts.api = s2a_door_name(q->door.kind);
    facts.status = r->status;
    facts.outcome = s2a_billing_outcome(r->connection->aborted, a->answer.broken, a->answer.ended,
                                        stream, usage.seen_delta);
    facts.start = q->start;
    facts.first_byte = a->first_byte;
    facts.now = apr_time_now();
    s2a_billing_row(&facts, &row, &q->usage);
    q->charged = row.actual_cost;
    q->counted = row.subscription ? row.total_cost : row.actual_cost;
    s2a_writer_enqueue(r, &row);
    q->billed = 1;
    if (a->priced_by) {
        priced_by_fallback(r, q->sconf, a);
    }
}

/* The notes are new: added, not set (which would look for them first). */
static void note(request_rec *r, const char *name, const char *value)
{
    apr_table_addn(r->notes, name, value);
}

static void note_int(request_rec *r, const char *name, apr_int64_t value)
{
    note(r, name, apr_off_t_toa(r->pool, (apr_off_t)value));
}

/* What LogFormat's %{sub2api-...}n fields show; unset ones log as "-". */
static void set_notes(request_rec *r, const s2a_request *q)
{
    const s2a_attempt *a = q->attempt;
    if (q->key.id) {
        note_int(r, "sub2api-user", q->key.user_id);
        note_int(r, "sub2api-key", q->key.id);
    }
    if (q->body.model) {
        note(r, "sub2api-model", q->body.model);
    }
    if (q->request_id) {
        note(r, "sub2api-request-id", q->request_id);
    }
    if (a) {
        note_int(r, "sub2api-attempts", a->number);
    }
    if (a && a->sent_at) {
        note_int(r, "sub2api-account", a->account.id);
        note(r, "sub2api-upstream-model", a->upstream_model);
        note_int(r, "sub2api-added-us", q->own_time + q->filter_time);
    }
    if (q->billed) {
        note_int(r, "sub2api-input-tokens", q->usage.input);
        note_int(r, "sub2api-output-tokens", q->usage.output);
        note_int(r, "sub2api-cache-write-tokens", q->usage.cache_creation);
        note_int(r, "sub2api-cache-read-tokens", q->usage.cache_read);
        note(r, "sub2api-cost", s2a_usd_format(r->pool, q->charged));
        note(r, "sub2api-outcome",
             s2a_billing_outcome(r->connection->aborted, a->answer.broken, a->answer.ended,
                                 a->answer.mode == S2A_ANSWER_STREAM, q->usage.seen_delta));
    }
}

/* The request in the metrics: its labels, tokens, cost and times. */
static void count(request_rec *r, const s2a_request *q)
{
    const s2a_attempt *a = q ? q->attempt : NULL;
    s2a_metrics_request m;
    if (!s2a_g.metrics) {
        return;
    }
    memset(&m, 0, sizeof(m));
    m.server = s2a_server_label(r->pool, r->server);
    m.model = "";
    m.status = r->status;
    if (q) {
        /* only keys of this gateway name models: strangers cannot fill the table */
        m.model = q->key.id && q->body.model ? q->body.model : "";
        m.account = a && a->headers_at ? a->account.id : 0;
        m.switches = a && a->number > 1 ? a->number - 1 : 0;
        if (q->billed) {
            m.input = q->usage.input;
            m.output = q->usage.output;
            m.cache_write = q->usage.cache_creation;
            m.cache_read = q->usage.cache_read;
            m.cost_nano = q->charged;
        }
        if (a && a->headers_at) {
            s2a_metrics_observe(s2a_g.metrics, S2A_HIST_UPSTREAM, a->headers_at - a->sent_at);
        }
        if (a && a->first_byte) {
            s2a_metrics_observe(s2a_g.metrics, S2A_HIST_FIRST_TOKEN, a->first_byte - q->start);
        }
        if (a && a->sent_at) {
            s2a_metrics_observe(s2a_g.metrics, S2A_HIST_ADDED, q->own_time + q->filter_time);
        }
    }
    s2a_metrics_count(s2a_g.metrics, &m);
}

int s2a_billing_log_transaction(request_rec *r)
{
    s2a_request *q = s2a_request_of(r);
    if (!q && !apr_table_get(r->notes, S2A_ERROR_NOTE)) {
        return DECLINED; /* not a request of a gateway location */
    }
    if (q) {
        bill(r, q);
        set_notes(r, q);
    }
    count(r, q);
    return OK;
}
