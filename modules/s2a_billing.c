/* The usage row of an answered attempt: see s2a_billing.h. */
#include <string.h>

#include <apr_strings.h>

#include "s2a_billing.h"

const char *s2a_billing_outcome(int client_left, int broken, int ended, int stream, int seen_delta)
{
    if (client_left) {
        return "client_aborted";
    }
    if (broken || !ended || (stream && !seen_delta)) {
        return "upstream_cut";
    }
    return "ok";
}

/* src into dst[size], cut where a character ends: a model name cut inside
 * a UTF-8 sequence would be refused by a database that checks encodings. */
static void copy_text(char *dst, apr_size_t size, const char *src)
{
    apr_size_t n = strlen(src), end;
    if (n < size) {
        memcpy(dst, src, n + 1);
        return;
    }
    end = size - 1;
    /* back to the first byte of the character the cut falls in */
    while (end > 0 && ((unsigned char)src[end] & 0xC0) == 0x80) {
        end--;
    }
    memcpy(dst, src, end);
    dst[end] = '\0';
}

void s2a_billing_row(const s2a_billing_facts *f, s2a_usage_row *row, s2a_usage *usage)
{
    s2a_cost cost;
    *usage = f->usage;
    if (f->stream && !usage->seen_delta) {
        usage->output = s2a_usage_output_estimate(usage);
    }
    s2a_cost_compute(f->price, usage, f->key->multiplier_ppm, &cost);
    memset(row, 0, sizeof(*row));
    apr_cpystrn(row->request_id, f->request_id, sizeof(row->request_id));
    row->attempt = f->attempt;
    row->user_id = f->key->user_id;
    row->api_key_id = f->key->id;
    row->account_id = f->account_id;
    row->group_id = f->key->group_id;
    copy_text(row->model, sizeof(row->model), f->model);
    copy_text(row->upstream_model, sizeof(row->upstream_model), f->upstream_model);
    row->input_tokens = usage->input;
    row->output_tokens = usage->output;
    row->cache_creation_tokens = usage->cache_creation;
    row->cache_creation_1h_tokens = usage->cache_1h;
    row->cache_read_tokens = usage->cache_read;
    row->input_cost = cost.input;
    row->output_cost = cost.output;
    row->cache_creation_cost = cost.cache_write;
    row->cache_read_cost = cost.cache_read;
    row->web_search_requests = usage->web_search;
    row->web_fetch_requests = usage->web_fetch;
    row->server_tool_cost = cost.server_tools;
    row->total_cost = cost.total;
    row->actual_cost = cost.actual;
    row->multiplier_ppm = f->key->multiplier_ppm;
    row->subscription = f->key->subscription;
    row->stream = f->stream;
    apr_cpystrn(row->api, f->api ? f->api : "messages", sizeof(row->api));
    row->status = f->status;
    apr_cpystrn(row->outcome, f->outcome, sizeof(row->outcome));
    row->duration_ms = apr_time_as_msec(f->now - f->start);
    row->first_token_ms = f->first_byte ? apr_time_as_msec(f->first_byte - f->start) : 0;
    row->created_at = apr_time_sec(f->now);
}
