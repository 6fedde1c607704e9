/* Metrics: counts per label set, the "other" series when the table is full,
 * histogram buckets, label escaping, and exact totals under threads. */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "s2a_metrics.h"
#include "s2a_test.h"

typedef struct {
    char *buf;
    apr_size_t len, cap;
} text_t;

static void collect(void *baton, const char *s, apr_size_t n)
{
    text_t *t = baton;
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->buf = realloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static char *render(s2a_metrics *m, apr_pool_t *p)
{
    text_t t = {NULL, 0, 0};
    char *out;
    s2a_metrics_render(m, p, collect, &t);
    out = apr_pstrdup(p, t.buf);
    free(t.buf);
    return out;
}

/* The value on the line that starts with `series` (whole series text). */
static long long line_value(const char *text, const char *series)
{
    const char *p = text;
    apr_size_t n = strlen(series);
    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            return atoll(p + n + 1);
        }
        p += n;
    }
    return -1;
}

static s2a_metrics *fresh(apr_pool_t *p, int nseries)
{
    void *base = apr_pcalloc(p, s2a_metrics_size(nseries));
    return s2a_metrics_init(base, nseries);
}

static void test_counts(apr_pool_t *p)
{
    s2a_metrics *m = fresh(p, 64);
    s2a_metrics_request a = {
        "gw.example:443", "claude-sonnet-4-5", 3, 200, 10, 20, 30, 40, 4500000, 0};
    s2a_metrics_request b = a;
    char *text;

    s2a_metrics_count(m, &a);
    s2a_metrics_count(m, &a);
    b.status = 529;
    b.input = 1;
    b.output = b.cache_write = b.cache_read = b.cost_nano = 0;
    b.switches = 1;
    s2a_metrics_count(m, &b);
    text = render(m, p);
    S2A_CHECK_INT(line_value(text, "sub2api_requests_total{server=\"gw.example:443\","
                                   "model=\"claude-sonnet-4-5\",account=\"3\",status=\"200\"}"),
                  2);
    S2A_CHECK_INT(line_value(text, "sub2api_requests_total{server=\"gw.example:443\","
                                   "model=\"claude-sonnet-4-5\",account=\"3\",status=\"529\"}"),
                  1);
    /* tokens and cost add up over statuses */
    S2A_CHECK_INT(line_value(text, "sub2api_tokens_total{server=\"gw.example:443\","
                                   "model=\"claude-sonnet-4-5\",account=\"3\",class=\"input\"}"),
                  21);
    S2A_CHECK_INT(line_value(text,
                             "sub2api_tokens_total{server=\"gw.example:443\","
                             "model=\"claude-sonnet-4-5\",account=\"3\",class=\"cache_read\"}"),
                  80);
    S2A_CHECK(strstr(text, "sub2api_cost_usd_total{server=\"gw.example:443\",model=\"claude-"
                           "sonnet-4-5\",account=\"3\"} 0.009000000\n") != NULL);
    S2A_CHECK_INT(line_value(text, "sub2api_account_switches_total{server=\"gw.example:443\","
                                   "model=\"claude-sonnet-4-5\",account=\"3\"}"),
                  1);
    S2A_CHECK(strstr(text, "# TYPE sub2api_requests_total counter\n") != NULL);

    /* no account, no model: empty labels, still counted */
    a.account = 0;
    a.model = "";
    a.status = 401;
    s2a_metrics_count(m, &a);
    text = render(m, p);
    S2A_CHECK_INT(line_value(text, "sub2api_requests_total{server=\"gw.example:443\",model=\"\","
                                   "account=\"\",status=\"401\"}"),
                  1);
}

static void test_hostile_labels(apr_pool_t *p)
{
    s2a_metrics *m = fresh(p, 16);
    s2a_metrics_request a = {"h:80", "a\"b\\c\nd\xc3\xa9", 1, 200, 0, 0, 0, 0, 0, 0};
    char longname[200];
    char *text;
    text_t t = {NULL, 0, 0};

    s2a_metrics_count(m, &a);
    text = render(m, p);
    /* quotes and backslashes escaped; control and non-ASCII bytes replaced */
    S2A_CHECK(strstr(text, "model=\"a\\\"b\\\\c?d??\"") != NULL);

    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    a.model = longname;
    s2a_metrics_count(m, &a);
    s2a_metrics_count(m, &a);
    text = render(m, p);
    longname[S2A_METRICS_LABEL - 1] = '\0';
    S2A_CHECK_INT(line_value(text, apr_psprintf(p,
                                                "sub2api_requests_total{server=\"h:80\",model="
                                                "\"%s\",account=\"1\",status=\"200\"}",
                                                longname)),
                  2);

    s2a_metrics_label(collect, &t, "new\nline \"q\" back\\slash");
    S2A_CHECK_STR(t.buf, "new\\nline \\\"q\\\" back\\\\slash");
    free(t.buf);
}

static void test_full_table(apr_pool_t *p)
{
    s2a_metrics *m = fresh(p, 4);
    s2a_metrics_request a = {"h:80", "m", 0, 200, 1, 0, 0, 0, 0, 0};
    char *text;
    const char *q;
    long long total = 0;
    int i;

    for (i = 0; i < 10; i++) {
        a.account = i + 1;
        s2a_metrics_count(m, &a);
    }
    text = render(m, p);
    /* every request is counted: 4 series of their own, the rest as "other" */
    S2A_CHECK_INT(line_value(text, "sub2api_requests_total{server=\"other\",model=\"other\","
                                   "account=\"\",status=\"other\"}"),
                  6);
    for (q = text; (q = strstr(q, "\nsub2api_requests_total{")) != NULL; q++) {
        total += atoll(strchr(q, '}') + 2);
    }
    S2A_CHECK_INT(total, 10);
}

static void test_histograms(apr_pool_t *p)
{
    s2a_metrics *m = fresh(p, 4);
    char *text;

    s2a_metrics_observe(m, S2A_HIST_ADDED, 0);
    s2a_metrics_observe(m, S2A_HIST_ADDED, 100);     /* on a bound: in it */
    s2a_metrics_observe(m, S2A_HIST_ADDED, 101);     /* just above */
    s2a_metrics_observe(m, S2A_HIST_ADDED, 5000000); /* above every bound */
    s2a_metrics_observe(m, S2A_HIST_ADDED, -5);      /* a clock step: counted as 0 */
    s2a_metrics_observe(m, S2A_HIST_UPSTREAM, 1500000);
    text = render(m, p);
    S2A_CHECK_INT(line_value(text, "sub2api_added_seconds_bucket{le=\"0.0001\"}"), 3);
    S2A_CHECK_INT(line_value(text, "sub2api_added_seconds_bucket{le=\"0.00025\"}"), 4);
    S2A_CHECK_INT(line_value(text, "sub2api_added_seconds_bucket{le=\"1\"}"), 4);
    S2A_CHECK_INT(line_value(text, "sub2api_added_seconds_bucket{le=\"+Inf\"}"), 5);
    S2A_CHECK_INT(line_value(text, "sub2api_added_seconds_count"), 5);
    S2A_CHECK(strstr(text, "\nsub2api_added_seconds_sum 5.000201\n") != NULL);
    S2A_CHECK_INT(line_value(text, "sub2api_upstream_latency_seconds_bucket{le=\"1\"}"), 0);
    S2A_CHECK_INT(line_value(text, "sub2api_upstream_latency_seconds_bucket{le=\"2.5\"}"), 1);
    S2A_CHECK_INT(line_value(text, "sub2api_time_to_first_token_seconds_count"), 0);
    S2A_CHECK(strstr(text, "# TYPE sub2api_upstream_latency_seconds histogram\n") != NULL);

    s2a_metrics_add(m, S2A_GAUGE_QUEUE, 5);
    s2a_metrics_add(m, S2A_GAUGE_QUEUE, -2);
    s2a_metrics_add(m, S2A_COUNT_DB_ERRORS, 1);
    text = render(m, p);
    S2A_CHECK_INT(s2a_metrics_get(m, S2A_GAUGE_QUEUE), 3);
    S2A_CHECK_INT(line_value(text, "sub2api_writer_queue_rows"), 3);
    S2A_CHECK(strstr(text, "# TYPE sub2api_writer_queue_rows gauge\n") != NULL);
    S2A_CHECK_INT(line_value(text, "sub2api_database_errors_total"), 1);
    S2A_CHECK_INT(line_value(text, "sub2api_store_errors_total"), 0);
}

static void test_attach(apr_pool_t *p)
{
    void *base = apr_pcalloc(p, s2a_metrics_size(8));
    s2a_metrics *m;
    S2A_CHECK(s2a_metrics_attach(base, s2a_metrics_size(8), 8) == NULL); /* nothing laid out yet */
    m = s2a_metrics_init(base, 8);
    s2a_metrics_add(m, S2A_COUNT_STORE_ERRORS, 2);
    /* a later generation goes on counting where the last left off */
    S2A_CHECK(s2a_metrics_attach(base, s2a_metrics_size(8), 8) == m);
    S2A_CHECK_INT(
        s2a_metrics_get(s2a_metrics_attach(base, s2a_metrics_size(8), 8), S2A_COUNT_STORE_ERRORS),
        2);
    /* memory of another size (another build's layout) is not taken for them */
    S2A_CHECK(s2a_metrics_attach(base, s2a_metrics_size(8) - 8, 8) == NULL);
    /* laid out for another size: not taken */
    S2A_CHECK(s2a_metrics_attach(base, s2a_metrics_size(8), 16) == NULL);
}

#define THREADS 4
#define PER_THREAD 20000

static void *APR_THREAD_FUNC hammer(apr_thread_t *t, void *data)
{
    s2a_metrics *m = data;
    s2a_metrics_request a = {"h:80", "m", 0, 200, 2, 1, 0, 0, 3, 0};
    int i;
    for (i = 0; i < PER_THREAD; i++) {
        a.account = 1 + i % 40; /* new series are made by several threads at once */
        s2a_metrics_count(m, &a);
        s2a_metrics_observe(m, S2A_HIST_FIRST_TOKEN, i);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads(apr_pool_t *p)
{
    s2a_metrics *m = fresh(p, 128);
    apr_thread_t *t[THREADS];
    apr_status_t rv;
    char *text;
    const char *q;
    long long requests = 0, input = 0;
    int i;

    for (i = 0; i < THREADS; i++) {
        apr_thread_create(&t[i], NULL, hammer, m, p);
    }
    for (i = 0; i < THREADS; i++) {
        apr_thread_join(&rv, t[i]);
    }
    text = render(m, p);
    for (q = text; (q = strstr(q, "\nsub2api_requests_total{")) != NULL; q++) {
        requests += atoll(strchr(q, '}') + 2);
    }
    for (q = text; (q = strstr(q, "class=\"input\"}")) != NULL; q++) {
        input += atoll(strchr(q, '}') + 2);
    }
    S2A_CHECK_INT(requests, THREADS * PER_THREAD);
    S2A_CHECK_INT(input, 2LL * THREADS * PER_THREAD);
    S2A_CHECK_INT(line_value(text, "sub2api_time_to_first_token_seconds_count"),
                  THREADS * PER_THREAD);
    /* one line per label set, however many threads made it at once */
    for (q = text, i = 0; (q = strstr(q, "account=\"7\",status=\"200\"}")) != NULL; q++) {
        i++;
    }
    S2A_CHECK_INT(i, 1);
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_counts(p);
    test_hostile_labels(p);
    test_full_table(p);
    test_histograms(p);
    test_attach(p);
    test_threads(p);
    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("metrics");
}
