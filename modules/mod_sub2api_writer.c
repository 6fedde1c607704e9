/* Usage rows leave the request thread through a per-process queue; one
 * writer thread stores them in batches, each batch one transaction. */
#include <apr_thread_cond.h>
#include <apr_thread_proc.h>
#include <apr_strings.h>

#include "mod_sub2api_private.h"

#define S2A_QUEUE_CAP 8192
#define S2A_BATCH 256
#define S2A_WRITE_TRIES 3
#define S2A_LINGER_MS 20

typedef struct {
    server_rec *s;
    s2a_usage_row row;
} queued_row;

static struct {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    apr_thread_t *thread;
    queued_row *ring;
    int head, count, stopping;
} wq;

static void write_group(apr_pool_t *p, server_rec *s, const s2a_usage_row *rows, int n)
{
    apr_array_header_t *depleted = apr_array_make(p, 4, sizeof(apr_int64_t));
    const char *err = "no database connection";
    int attempt;

    for (attempt = 1; attempt <= S2A_WRITE_TRIES; attempt++) {
        s2a_dbc c;
        void *h;
        if (s2a_dbc_open(p, s, &c, &h)) {
            apr_status_t rv = s2a_db_usage_write(&c, p, rows, n, depleted, &err);
            s2a_dbc_close(s, h);
            if (rv == APR_SUCCESS) {
                if (depleted->nelts) {
                    s2a_bump(s, p);
                }
                return;
            }
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     S2ALOGNO(0301) "usage write attempt %d of %d failed: %s", attempt,
                     S2A_WRITE_TRIES, err);
        apr_sleep(apr_time_from_msec(200 * attempt));
    }
    for (attempt = 0; attempt < n; attempt++) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0302) "usage row %s not written (user %" APR_INT64_T_FMT
                                    ", %" APR_INT64_T_FMT " nano-USD)",
                     rows[attempt].request_id, rows[attempt].user_id, rows[attempt].actual_cost);
    }
}

static void write_batch(apr_pool_t *p, queued_row *batch, int n)
{
    s2a_usage_row *rows = apr_palloc(p, sizeof(*rows) * (apr_size_t)n);
    int i = 0;
    while (i < n) {
        server_rec *s = batch[i].s;
        int k = 0;
        while (i < n && batch[i].s == s) {
            rows[k++] = batch[i++].row;
        }
        write_group(p, s, rows, k);
    }
}

static void *APR_THREAD_FUNC writer_main(apr_thread_t *t, void *data)
{
    apr_pool_t *p;
    queued_row *batch = malloc(sizeof(*batch) * S2A_BATCH);
    (void)data;
    apr_pool_create(&p, apr_thread_pool_get(t));
    for (;;) {
        int n = 0;
        apr_thread_mutex_lock(wq.mutex);
        while (wq.count == 0 && !wq.stopping) {
            apr_thread_cond_timedwait(wq.cond, wq.mutex, apr_time_from_sec(1));
        }
        /* Let a few more rows arrive: one transaction per batch, not per row. */
        if (wq.count < S2A_BATCH && !wq.stopping) {
            apr_thread_cond_timedwait(wq.cond, wq.mutex, apr_time_from_msec(S2A_LINGER_MS));
        }
        while (n < S2A_BATCH && wq.count > 0) {
            batch[n++] = wq.ring[wq.head];
            wq.head = (wq.head + 1) % S2A_QUEUE_CAP;
            wq.count--;
        }
        apr_thread_cond_broadcast(wq.cond);
        if (n == 0 && wq.stopping) {
            apr_thread_mutex_unlock(wq.mutex);
            break;
        }
        apr_thread_mutex_unlock(wq.mutex);
        write_batch(p, batch, n);
        apr_pool_clear(p);
    }
    free(batch);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Child exit: the thread drains what is queued, then ends. */
static apr_status_t writer_stop(void *data)
{
    apr_status_t rv;
    (void)data;
    if (!wq.thread) {
        return APR_SUCCESS;
    }
    apr_thread_mutex_lock(wq.mutex);
    wq.stopping = 1;
    apr_thread_cond_broadcast(wq.cond);
    apr_thread_mutex_unlock(wq.mutex);
    apr_thread_join(&rv, wq.thread);
    wq.thread = NULL;
    return APR_SUCCESS;
}

apr_status_t s2a_writer_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    apr_threadattr_t *attr;
    (void)s;
    memset(&wq, 0, sizeof(wq));
    wq.ring = apr_palloc(pchild, sizeof(*wq.ring) * S2A_QUEUE_CAP);
    if ((rv = apr_thread_mutex_create(&wq.mutex, APR_THREAD_MUTEX_DEFAULT, pchild)) ||
        (rv = apr_thread_cond_create(&wq.cond, pchild)) ||
        (rv = apr_threadattr_create(&attr, pchild)) ||
        (rv = apr_thread_create(&wq.thread, attr, writer_main, NULL, pchild))) {
        return rv;
    }
    /* before pchild's subpools go: mod_dbd's connection pool is one of them */
    apr_pool_pre_cleanup_register(pchild, NULL, writer_stop);
    return APR_SUCCESS;
}

void s2a_writer_enqueue(request_rec *r, const s2a_usage_row *row)
{
    apr_thread_mutex_lock(wq.mutex);
    if (!wq.thread) {
        apr_thread_mutex_unlock(wq.mutex);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      S2ALOGNO(0303) "usage writer not running; row %s not written",
                      row->request_id);
        return;
    }
    /* A full queue means the database is far behind: the request waits for
     * room rather than dropping a row. */
    while (wq.count == S2A_QUEUE_CAP) {
        apr_thread_cond_timedwait(wq.cond, wq.mutex, apr_time_from_msec(100));
    }
    wq.ring[(wq.head + wq.count) % S2A_QUEUE_CAP].s = r->server;
    wq.ring[(wq.head + wq.count) % S2A_QUEUE_CAP].row = *row;
    wq.count++;
    /* wake the writer when it sleeps on an empty queue or a batch is full;
     * otherwise it is lingering for more rows anyway */
    if (wq.count == 1 || wq.count >= S2A_BATCH) {
        apr_thread_cond_broadcast(wq.cond);
    }
    apr_thread_mutex_unlock(wq.mutex);
}
