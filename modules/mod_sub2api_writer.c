/* Usage rows leave the request thread through a per-process queue; one
 * writer thread stores them in batches, each batch one transaction. While a
 * database is away, rows go to the virtual host's journal file, and come back
 * from it once the database answers again.
 *
 * The thread is the child's own, not a mod_watchdog callback: a child
 * watchdog stops as soon as the MPM begins a graceful stop or restart, while
 * the child's open streams go on for minutes and bill when they end. This
 * thread ends in the child pool's pre-cleanup, after the last request,
 * having written what the queue holds. */
#include <apr_thread_cond.h>
#include <apr_thread_proc.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <unistd.h>
#include <unixd.h>

#include "mod_sub2api_shared.h"
#include "s2a_journal.h"

#define S2A_QUEUE_CAP 8192
/* rows per transaction when the queue has them: fewer, larger commits keep up */
#define S2A_BATCH 1024
#define S2A_WRITE_TRIES 3
#define S2A_LINGER_MS 100
/* after a failed batch, rows go straight to the journal this long */
#define S2A_DB_AWAY_SEC 5
/* how often a writer looks for rows journaled by any process */
#define S2A_JOURNAL_CHECK_SEC 5

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
    server_rec *servers;
    /* the writer thread's own */
    apr_time_t away_until;
    apr_time_t journal_checked;
} wq;

typedef struct {
    apr_pool_t *p;
    server_rec *s;
    const char *err;
} sink_ctx;

/* One transaction: the rows and their users' deductions. */
static apr_status_t write_once(apr_pool_t *p, server_rec *s, const s2a_usage_row *rows, int n,
                               const char **err)
{
    apr_array_header_t *depleted = apr_array_make(p, 4, sizeof(apr_int64_t));
    apr_status_t rv = APR_EGENERAL;
    s2a_dbc c;
    void *h;

    *err = "no database connection";
    if (s2a_dbc_open(p, s, &c, &h)) {
        rv = s2a_db_usage_write(&c, p, rows, n, depleted, err);
        s2a_dbc_close(s, h);
        if (rv == APR_SUCCESS && depleted->nelts) {
            s2a_bump(s, p);
        }
    }
    return rv;
}

static s2a_srv_conf *conf_of(server_rec *s)
{
    return ap_get_module_config(s->module_config, &sub2api_module);
}

/* Whether the database takes a write now: a batch that failed while it
 * does holds a row the database refuses. */
static int takes_writes(apr_pool_t *p, server_rec *s)
{
    s2a_dbc c;
    void *h;
    int ok = 0;
    if (s2a_dbc_open(p, s, &c, &h)) {
        ok = s2a_db_begin(&c) == 0 && s2a_db_end(&c, 0) == 0;
        s2a_dbc_close(s, h);
    }
    return ok;
}

/* Where refused rows wait for an operator: beside the host's journal. */
static const char *refused_path(apr_pool_t *p, server_rec *s)
{
    return apr_pstrcat(p, conf_of(s)->journal, ".refused", NULL);
}

static void refuse_row(apr_pool_t *p, server_rec *s, const s2a_usage_row *row, const char *why)
{
    const char *path = refused_path(p, s);
    apr_status_t rv = s2a_journal_append(p, path, row, 1);
    s2a_metrics_note(S2A_COUNT_ROWS_REFUSED);
    ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                 S2ALOGNO(0310) "usage row %s (user %" APR_INT64_T_FMT ", %" APR_INT64_T_FMT
                                " nano-USD) refused by the database: %s; %s %s",
                 row->request_id, row->user_id, row->actual_cost, why,
                 rv == APR_SUCCESS ? "kept in" : "could not be kept in", path);
}

/* Writes rows; when the batch fails while the database takes writes, the
 * rows are tried one by one, and one the database refuses alone is set
 * apart (refuse_row) so that the others, and the journal's replay, go on.
 * APR_SUCCESS when every row was written or set apart; a row written
 * before a failure is skipped when the batch comes again. */
static apr_status_t store_rows(apr_pool_t *p, server_rec *s, const s2a_usage_row *rows, int n,
                               const char **err)
{
    int i;
    if (write_once(p, s, rows, n, err) == APR_SUCCESS) {
        return APR_SUCCESS;
    }
    if (!takes_writes(p, s)) {
        return APR_EGENERAL;
    }
    for (i = 0; i < n; i++) {
        const char *why = NULL;
        if (write_once(p, s, &rows[i], 1, &why) == APR_SUCCESS) {
            continue;
        }
        if (!takes_writes(p, s)) {
            *err = why;
            return APR_EGENERAL;
        }
        refuse_row(p, s, &rows[i], why);
    }
    return APR_SUCCESS;
}

static apr_status_t sink(void *baton, const s2a_usage_row *rows, int n)
{
    sink_ctx *k = baton;
    return store_rows(k->p, k->s, rows, n, &k->err);
}

/* Rows journaled by any process of the host go to their databases. */
static void replay_journals(apr_pool_t *p)
{
    server_rec *s;
    for (s = wq.servers; s; s = s->next) {
        const char *path = conf_of(s)->journal;
        sink_ctx k = {p, s, NULL};
        apr_finfo_t fi;
        apr_status_t rv;
        int taken, unreadable;
        if (!path || apr_stat(&fi, path, APR_FINFO_SIZE, p) != APR_SUCCESS || fi.size == 0) {
            continue;
        }
        rv = s2a_journal_replay(p, path, S2A_BATCH, sink, &k, &taken, &unreadable);
        if (unreadable) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         S2ALOGNO(0306) "journal %s: %d lines could not be read and were dropped",
                         path, unreadable);
        }
        if (rv == APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         S2ALOGNO(0305) "journal %s: %d usage rows written to the database", path,
                         taken);
        } else {
            wq.away_until = apr_time_now() + apr_time_from_sec(S2A_DB_AWAY_SEC);
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                         S2ALOGNO(0307) "journal %s: %d rows written, the rest kept: %s", path,
                         taken, k.err ? k.err : "cannot read the file");
        }
    }
}

/* A stopping child has seconds left: rows it cannot write at once are journaled. */
static void write_group(apr_pool_t *p, server_rec *s, const s2a_usage_row *rows, int n,
                        int stopping)
{
    const char *err = "the database was away moments ago";
    const char *journal = conf_of(s)->journal;
    apr_status_t rv;
    int tries = stopping ? 1 : S2A_WRITE_TRIES, attempt, i;

    for (attempt = 1; attempt <= tries && apr_time_now() >= wq.away_until; attempt++) {
        if (store_rows(p, s, rows, n, &err) == APR_SUCCESS) {
            return;
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     S2ALOGNO(0301) "usage write attempt %d of %d failed: %s", attempt, tries, err);
        s2a_metrics_note(S2A_COUNT_DB_ERRORS);
        if (attempt < tries) {
            apr_sleep(apr_time_from_msec(200 * attempt));
        } else {
            wq.away_until = apr_time_now() + apr_time_from_sec(S2A_DB_AWAY_SEC);
        }
    }
    if (journal && (rv = s2a_journal_append(p, journal, rows, n)) == APR_SUCCESS) {
        s2a_metrics_move(S2A_COUNT_JOURNALED, n);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     S2ALOGNO(0304) "database away (%s): %d usage rows kept in %s", err, n,
                     journal);
        return;
    } else if (journal) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, S2ALOGNO(0308) "journal %s cannot be written",
                     journal);
    }
    for (i = 0; i < n; i++) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     S2ALOGNO(0302) "usage row %s not written (user %" APR_INT64_T_FMT
                                    ", %" APR_INT64_T_FMT " nano-USD)",
                     rows[i].request_id, rows[i].user_id, rows[i].actual_cost);
    }
}

static void write_batch(apr_pool_t *p, queued_row *batch, int n, int stopping)
{
    s2a_usage_row *rows = apr_palloc(p, sizeof(*rows) * (apr_size_t)n);
    int i = 0;
    while (i < n) {
        server_rec *s = batch[i].s;
        int k = 0;
        while (i < n && batch[i].s == s) {
            rows[k++] = batch[i++].row;
        }
        write_group(p, s, rows, k, stopping);
    }
}

static void *APR_THREAD_FUNC writer_main(apr_thread_t *t, void *data)
{
    apr_pool_t *p;
    queued_row *batch = malloc(sizeof(*batch) * S2A_BATCH);
    (void)data;
    apr_pool_create(&p, apr_thread_pool_get(t));
    for (;;) {
        int n = 0, stopping;
        apr_thread_mutex_lock(wq.mutex);
        /* at least once a second the journals get a look */
        if (wq.count == 0 && !wq.stopping) {
            apr_thread_cond_timedwait(wq.cond, wq.mutex, apr_time_from_sec(1));
        }
        /* Let a few more rows arrive: one transaction per batch, not per row. */
        if (wq.count > 0 && wq.count < S2A_BATCH && !wq.stopping) {
            apr_thread_cond_timedwait(wq.cond, wq.mutex, apr_time_from_msec(S2A_LINGER_MS));
        }
        while (n < S2A_BATCH && wq.count > 0) {
            batch[n++] = wq.ring[wq.head];
            wq.head = (wq.head + 1) % S2A_QUEUE_CAP;
            wq.count--;
        }
        /* An empty queue starts again at the ring's beginning: the ring's
         * memory in use is then what the longest wait for the database
         * needed, not the whole ring, which going round would touch page by
         * page, 4 MB a process over the first 8,192 rows. */
        if (wq.count == 0) {
            wq.head = 0;
        }
        apr_thread_cond_broadcast(wq.cond);
        stopping = wq.stopping;
        apr_thread_mutex_unlock(wq.mutex);
        if (n) {
            s2a_metrics_move(S2A_GAUGE_QUEUE, -n);
        }
        if (n == 0 && stopping) {
            break;
        }
        if (n) {
            write_batch(p, batch, n, stopping);
            apr_pool_clear(p);
        }
        if (!stopping && apr_time_now() >= wq.away_until &&
            apr_time_now() - wq.journal_checked >= apr_time_from_sec(S2A_JOURNAL_CHECK_SEC)) {
            wq.journal_checked = apr_time_now();
            replay_journals(p);
            apr_pool_clear(p);
        }
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
    memset(&wq, 0, sizeof(wq));
    wq.servers = s;
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
    s2a_metrics_move(S2A_GAUGE_QUEUE, 1);
    /* wake the writer when it sleeps on an empty queue or a batch is full;
     * otherwise it is lingering for more rows anyway */
    if (wq.count == 1 || wq.count >= S2A_BATCH) {
        apr_thread_cond_broadcast(wq.cond);
    }
    apr_thread_mutex_unlock(wq.mutex);
}

/* A file the child processes may write, made by the parent (the runtime
 * directory may be the parent's alone). */
static apr_status_t make_for_children(apr_pool_t *p, const char *path)
{
    apr_file_t *f;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                                    APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv == APR_SUCCESS) {
        apr_file_close(f);
        if (geteuid() == 0 && chown(path, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
            rv = errno;
        }
    }
    return rv;
}

/* Default: sub2api-usage-<host>-<port>.journal in DefaultRuntimeDir. */
int s2a_writer_journals(apr_pool_t *pconf, server_rec *s)
{
    server_rec *sp;
    for (sp = s; sp; sp = sp->next) {
        s2a_srv_conf *sc = conf_of(sp);
        apr_status_t rv;
        if (!sc->journal) {
            char *name = apr_psprintf(pconf, "sub2api-usage-%s-%u.journal",
                                      sp->server_hostname ? sp->server_hostname : "main",
                                      (unsigned)(sp->port    ? sp->port
                                                 : sp->addrs ? sp->addrs->host_port
                                                             : 0));
            char *c;
            for (c = name; *c; c++) {
                if (!apr_isalnum(*c) && *c != '.' && *c != '-') {
                    *c = '_';
                }
            }
            sc->journal = ap_runtime_dir_relative(pconf, name);
        }
        if ((rv = make_for_children(pconf, sc->journal)) != APR_SUCCESS ||
            (rv = make_for_children(pconf, refused_path(pconf, sp))) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, sp,
                         S2ALOGNO(0309) "Sub2apiJournal: cannot create %s (or its .refused) for "
                                        "the child processes",
                         sc->journal);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}
