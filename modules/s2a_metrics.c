#include <string.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "s2a_metrics.h"

#define MAGIC 0x53324d31u /* "S2M1" */
/* a label set looks this far for its series before it counts as "other" */
#define MAX_PROBE 64
#define NBUCKETS 12

typedef struct {
    apr_uint64_t hash;  /* 0: free; taken with a compare-and-swap */
    apr_uint32_t ready; /* the labels below are written */
    apr_int32_t status;
    apr_int64_t account;
    char server[S2A_METRICS_LABEL];
    char model[S2A_METRICS_LABEL];
    apr_int64_t requests, input, output, cache_write, cache_read, cost_nano, switches;
} series_t;

typedef struct {
    apr_int64_t buckets[NBUCKETS + 1]; /* the last one: above every bound */
    apr_int64_t sum_usec;
} hist_t;

struct s2a_metrics {
    apr_uint32_t magic;
    apr_uint32_t nseries;
    apr_int64_t counts[S2A_COUNTS];
    hist_t hists[S2A_HISTS];
    series_t series[]; /* nseries, then the "other" series */
};

/* Bucket bounds: microseconds, and as Prometheus reads them. */
static const apr_int64_t slow_usec[NBUCKETS] = {50000,    100000,   250000,    500000,
                                                1000000,  2500000,  5000000,   10000000,
                                                30000000, 60000000, 120000000, 300000000};
static const char *const slow_le[NBUCKETS] = {"0.05", "0.1", "0.25", "0.5", "1",   "2.5",
                                              "5",    "10",  "30",   "60",  "120", "300"};
static const apr_int64_t fast_usec[NBUCKETS] = {100,   250,   500,   1000,   2500,   5000,
                                                10000, 25000, 50000, 100000, 250000, 1000000};
static const char *const fast_le[NBUCKETS] = {"0.0001", "0.00025", "0.0005", "0.001",
                                              "0.0025", "0.005",   "0.01",   "0.025",
                                              "0.05",   "0.1",     "0.25",   "1"};

static const struct {
    const char *name;
    const char *help;
    const apr_int64_t *usec;
    const char *const *le;
} hist_info[S2A_HISTS] = {
    {"sub2api_upstream_latency_seconds",
     "From sending a request upstream to the headers of its answer (the answering attempt).",
     slow_usec, slow_le},
    {"sub2api_time_to_first_token_seconds",
     "From a request's arrival to the first byte of its answer sent to the client.", slow_usec,
     slow_le},
    {"sub2api_added_seconds",
     "Time the gateway itself spent on a request: reading and editing the body, "
     "authentication, choosing an account, reading the answer (waits for a free place "
     "excluded).",
     fast_usec, fast_le},
};

static const struct {
    const char *name;
    const char *type;
    const char *help;
} count_info[S2A_COUNTS] = {
    {"sub2api_store_errors_total", "counter",
     "Operations on the account pool's store (shared memory or Redis) that failed."},
    {"sub2api_database_errors_total", "counter",
     "Database operations that failed (connections, queries, usage writes)."},
    {"sub2api_usage_rows_journaled_total", "counter",
     "Usage rows written to a journal file because the database was away."},
    {"sub2api_usage_rows_refused_total", "counter",
     "Usage rows the database refused, kept apart in the journal's .refused file."},
    {"sub2api_writer_queue_rows", "gauge",
     "Usage rows waiting in the writers' queues, all processes together."},
    {"sub2api_key_lookups_total", "counter",
     "Client keys looked up in the database: those the processes' caches did not hold."},
    {"sub2api_auth_failures_total", "counter",
     "Requests refused for a missing, malformed, unknown, disabled or expired key."},
    {"sub2api_auth_blocked_total", "counter",
     "Requests refused with 429 from an address over Sub2apiAuthFailureLimit."},
};

static apr_int64_t add(apr_int64_t *v, apr_int64_t d)
{
    return __atomic_add_fetch(v, d, __ATOMIC_RELAXED);
}

static apr_int64_t load(const apr_int64_t *v)
{
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}

apr_size_t s2a_metrics_size(int nseries)
{
    return sizeof(struct s2a_metrics) + ((apr_size_t)nseries + 1) * sizeof(series_t);
}

s2a_metrics *s2a_metrics_init(void *base, int nseries)
{
    s2a_metrics *m = base;
    m->magic = MAGIC;
    m->nseries = (apr_uint32_t)nseries;
    strcpy(m->series[nseries].server, "other");
    strcpy(m->series[nseries].model, "other");
    m->series[nseries].ready = 1;
    return m;
}

s2a_metrics *s2a_metrics_attach(void *base, apr_size_t size, int nseries)
{
    s2a_metrics *m = base;
    return size == s2a_metrics_size(nseries) && m->magic == MAGIC &&
                   m->nseries == (apr_uint32_t)nseries
               ? m
               : NULL;
}

/* Label text: printable ASCII only (whatever a client sends, the output
 * stays valid UTF-8), cut to the room there is. */
static void label_copy(char *dst, const char *src)
{
    apr_size_t i;
    for (i = 0; src && src[i] && i < S2A_METRICS_LABEL - 1; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[i] = '\0';
}

static apr_uint64_t fnv(apr_uint64_t h, const void *data, apr_size_t n)
{
    const unsigned char *p = data;
    apr_size_t i;
    for (i = 0; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ULL;
    }
    return h;
}

static series_t *find(s2a_metrics *m, const char *server, const char *model, apr_int64_t account,
                      int status)
{
    apr_uint64_t h = 14695981039346656037ULL;
    apr_uint32_t i;
    h = fnv(h, server, strlen(server) + 1);
    h = fnv(h, model, strlen(model) + 1);
    h = fnv(h, &account, sizeof(account));
    h = fnv(h, &status, sizeof(status));
    h |= 1;
    for (i = 0; i < MAX_PROBE && i < m->nseries; i++) {
        series_t *s = &m->series[(h + i) % m->nseries];
        apr_uint64_t k = __atomic_load_n(&s->hash, __ATOMIC_ACQUIRE);
        if (k == 0) {
            apr_uint64_t expected = 0;
            if (__atomic_compare_exchange_n(&s->hash, &expected, h, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                strcpy(s->server, server);
                strcpy(s->model, model);
                s->account = account;
                s->status = status;
                __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
                return s;
            }
            k = expected;
        }
        /* a series still being labelled by another process is passed by:
         * the same labels may then get two series, which rendering merges */
        if (k == h && __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) && s->account == account &&
            s->status == status && strcmp(s->server, server) == 0 && strcmp(s->model, model) == 0) {
            return s;
        }
    }
    return &m->series[m->nseries];
}

void s2a_metrics_count(s2a_metrics *m, const s2a_metrics_request *req)
{
    char server[S2A_METRICS_LABEL], model[S2A_METRICS_LABEL];
    series_t *s;
    label_copy(server, req->server);
    label_copy(model, req->model);
    s = find(m, server, model, req->account, req->status);
    add(&s->requests, 1);
    add(&s->input, req->input);
    add(&s->output, req->output);
    add(&s->cache_write, req->cache_write);
    add(&s->cache_read, req->cache_read);
    add(&s->cost_nano, req->cost_nano);
    add(&s->switches, req->switches);
}

void s2a_metrics_observe(s2a_metrics *m, int hist, apr_interval_time_t t)
{
    hist_t *hs = &m->hists[hist];
    const apr_int64_t *bounds = hist_info[hist].usec;
    int i = 0;
    if (t < 0) {
        t = 0;
    }
    while (i < NBUCKETS && t > bounds[i]) {
        i++;
    }
    add(&hs->buckets[i], 1);
    add(&hs->sum_usec, t);
}

void s2a_metrics_add(s2a_metrics *m, int counter, apr_int64_t delta)
{
    add(&m->counts[counter], delta);
}

apr_int64_t s2a_metrics_get(const s2a_metrics *m, int counter)
{
    return load(&m->counts[counter]);
}

static void put(s2a_metrics_out out, void *baton, const char *s)
{
    out(baton, s, strlen(s));
}

void s2a_metrics_label(s2a_metrics_out out, void *baton, const char *value)
{
    const char *p = value, *run = value;
    for (; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        if (esc) {
            out(baton, run, (apr_size_t)(p - run));
            put(out, baton, esc);
            run = p + 1;
        }
    }
    out(baton, run, (apr_size_t)(p - run));
}

static void header(s2a_metrics_out out, void *baton, const char *name, const char *type,
                   const char *help)
{
    put(out, baton, "# HELP ");
    put(out, baton, name);
    put(out, baton, " ");
    put(out, baton, help);
    put(out, baton, "\n# TYPE ");
    put(out, baton, name);
    put(out, baton, " ");
    put(out, baton, type);
    put(out, baton, "\n");
}

/* Sums of the series that share (server, model, account) or all four
 * labels: a label set may have two series (see find), never two lines. */
typedef struct {
    const series_t *labels;
    int with_status;
    apr_int64_t requests, input, output, cache_write, cache_read, cost_nano, switches;
} sum_t;

static void labels(s2a_metrics_out out, void *baton, const sum_t *t)
{
    char buf[32];
    put(out, baton, "{server=\"");
    s2a_metrics_label(out, baton, t->labels->server);
    put(out, baton, "\",model=\"");
    s2a_metrics_label(out, baton, t->labels->model);
    put(out, baton, "\",account=\"");
    if (t->labels->account) {
        apr_snprintf(buf, sizeof(buf), "%" APR_INT64_T_FMT, t->labels->account);
        put(out, baton, buf);
    }
    put(out, baton, "\"");
    if (t->with_status) {
        put(out, baton, ",status=\"");
        if (t->labels->status) {
            apr_snprintf(buf, sizeof(buf), "%d", t->labels->status);
            put(out, baton, buf);
        } else {
            put(out, baton, "other");
        }
        put(out, baton, "\"");
    }
}

static apr_hash_t *sums(apr_pool_t *p, s2a_metrics *m, int with_status)
{
    apr_hash_t *h = apr_hash_make(p);
    apr_uint32_t i;
    for (i = 0; i <= m->nseries; i++) {
        const series_t *s = &m->series[i];
        const char *key;
        sum_t *t;
        if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) || !load(&s->requests)) {
            continue;
        }
        key = apr_psprintf(p, "%s\n%s\n%" APR_INT64_T_FMT "\n%d", s->server, s->model, s->account,
                           with_status ? s->status : 0);
        t = apr_hash_get(h, key, APR_HASH_KEY_STRING);
        if (!t) {
            t = apr_pcalloc(p, sizeof(*t));
            t->labels = s;
            t->with_status = with_status;
            apr_hash_set(h, key, APR_HASH_KEY_STRING, t);
        }
        t->requests += load(&s->requests);
        t->input += load(&s->input);
        t->output += load(&s->output);
        t->cache_write += load(&s->cache_write);
        t->cache_read += load(&s->cache_read);
        t->cost_nano += load(&s->cost_nano);
        t->switches += load(&s->switches);
    }
    return h;
}

static void value(s2a_metrics_out out, void *baton, apr_int64_t v)
{
    char buf[32];
    apr_snprintf(buf, sizeof(buf), " %" APR_INT64_T_FMT "\n", v);
    put(out, baton, buf);
}

/* A fixed-point amount (`digits` decimals, `unit` = 10^digits) as a decimal number. */
static void decimal(s2a_metrics_out out, void *baton, apr_int64_t v, apr_int64_t unit, int digits)
{
    char buf[48];
    apr_snprintf(buf, sizeof(buf), " %s%" APR_INT64_T_FMT ".%0*" APR_INT64_T_FMT "\n",
                 v < 0 ? "-" : "", (v < 0 ? -v : v) / unit, digits, (v < 0 ? -v : v) % unit);
    put(out, baton, buf);
}

/* One line per label set of `h`: the sum at `field` of its sum_t, after a
 * `class` label when given; in US dollars for `usd` (nano-USD sums). */
static void lines(s2a_metrics_out out, void *baton, apr_pool_t *p, apr_hash_t *h, const char *name,
                  const char *cls, apr_size_t field, int usd)
{
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(p, h); hi; hi = apr_hash_next(hi)) {
        const sum_t *t = apr_hash_this_val(hi);
        apr_int64_t v = *(const apr_int64_t *)((const char *)t + field);
        put(out, baton, name);
        labels(out, baton, t);
        if (cls) {
            put(out, baton, ",class=\"");
            put(out, baton, cls);
            put(out, baton, "\"");
        }
        put(out, baton, "}");
        if (usd) {
            decimal(out, baton, v, 1000000000, 9);
        } else {
            value(out, baton, v);
        }
    }
}

void s2a_metrics_render(s2a_metrics *m, apr_pool_t *p, s2a_metrics_out out, void *baton)
{
    static const char *const classes[] = {"input", "output", "cache_write", "cache_read"};
    static const apr_size_t class_fields[] = {
        APR_OFFSETOF(sum_t, input), APR_OFFSETOF(sum_t, output), APR_OFFSETOF(sum_t, cache_write),
        APR_OFFSETOF(sum_t, cache_read)};
    apr_hash_t *by_status = sums(p, m, 1), *by_model = sums(p, m, 0);
    int i, c;

    header(out, baton, "sub2api_requests_total", "counter",
           "Requests of gateway locations by virtual host, model asked, account and status.");
    lines(out, baton, p, by_status, "sub2api_requests_total", NULL, APR_OFFSETOF(sum_t, requests),
          0);
    header(out, baton, "sub2api_tokens_total", "counter", "Tokens billed, by class.");
    for (c = 0; c < 4; c++) {
        lines(out, baton, p, by_model, "sub2api_tokens_total", classes[c], class_fields[c], 0);
    }
    header(out, baton, "sub2api_cost_usd_total", "counter",
           "Cost charged (after group multipliers), in US dollars.");
    lines(out, baton, p, by_model, "sub2api_cost_usd_total", NULL, APR_OFFSETOF(sum_t, cost_nano),
          1);
    header(out, baton, "sub2api_account_switches_total", "counter",
           "Requests sent to another account after one failed before answering.");
    lines(out, baton, p, by_model, "sub2api_account_switches_total", NULL,
          APR_OFFSETOF(sum_t, switches), 0);
    for (i = 0; i < S2A_HISTS; i++) {
        const hist_t *hs = &m->hists[i];
        apr_int64_t cum = 0;
        header(out, baton, hist_info[i].name, "histogram", hist_info[i].help);
        for (c = 0; c <= NBUCKETS; c++) {
            cum += load(&hs->buckets[c]);
            put(out, baton, hist_info[i].name);
            put(out, baton, "_bucket{le=\"");
            put(out, baton, c < NBUCKETS ? hist_info[i].le[c] : "+Inf");
            put(out, baton, "\"}");
            value(out, baton, cum);
        }
        put(out, baton, hist_info[i].name);
        put(out, baton, "_sum");
        decimal(out, baton, load(&hs->sum_usec), 1000000, 6);
        /* the +Inf bucket, read once: the two always agree */
        put(out, baton, hist_info[i].name);
        put(out, baton, "_count");
        value(out, baton, cum);
    }
    for (i = 0; i < S2A_COUNTS; i++) {
        header(out, baton, count_info[i].name, count_info[i].type, count_info[i].help);
        put(out, baton, count_info[i].name);
        value(out, baton, load(&m->counts[i]));
    }
}
