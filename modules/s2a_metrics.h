/* Counters and histograms for Prometheus, kept in shared memory that every
 * child process of every generation writes with atomic adds (no lock on the
 * request path), and rendered in the Prometheus text format.
 *
 * Requests are counted per series (server, model, account, status). The
 * table has a fixed number of series; when it is full, further label sets
 * are folded into one series whose labels say "other", so totals stay
 * right whatever clients send. */
#ifndef S2A_METRICS_H
#define S2A_METRICS_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct s2a_metrics s2a_metrics;

#define S2A_METRICS_LABEL 64 /* longer server and model names are cut */

/* One finished request of a gateway location. */
typedef struct {
    const char *server;                                 /* the virtual host: "name:port" */
    const char *model;                                  /* as the client asked; "" when unknown */
    apr_int64_t account;                                /* the account that answered; 0: none */
    int status;                                         /* as sent to the client */
    apr_int64_t input, output, cache_write, cache_read; /* tokens billed */
    apr_int64_t cost_nano;                              /* actual cost */
    int switches;                                       /* other accounts tried first */
} s2a_metrics_request;

/* Histograms of durations. */
enum {
    S2A_HIST_UPSTREAM,    /* request sent upstream -> its answer's headers */
    S2A_HIST_FIRST_TOKEN, /* request arrived -> first byte of the answer to the client */
    S2A_HIST_ADDED,       /* the gateway's own time (see README) */
    S2A_HISTS
};

/* Counters and gauges without labels. */
enum {
    S2A_COUNT_STORE_ERRORS,
    S2A_COUNT_DB_ERRORS,
    S2A_COUNT_JOURNALED,     /* usage rows that went to a journal */
    S2A_COUNT_ROWS_REFUSED,  /* usage rows the database refused, set apart */
    S2A_GAUGE_QUEUE,         /* usage rows waiting for the writer, all processes */
    S2A_COUNT_KEY_LOOKUPS,   /* keys looked up in the database: cache misses */
    S2A_COUNT_AUTH_FAILURES, /* requests refused for their key (401) */
    S2A_COUNT_AUTH_BLOCKED,  /* requests of an address over Sub2apiAuthFailureLimit (429) */
    S2A_COUNTS
};

apr_size_t s2a_metrics_size(int nseries);
/* Lays the metrics over `base`: zeroed memory of s2a_metrics_size(). */
s2a_metrics *s2a_metrics_init(void *base, int nseries);
/* The metrics laid over `base` (`size` bytes) before, e.g. by an earlier
 * generation of httpd: counters go on. NULL if it does not hold them as
 * this build lays them out for `nseries`. */
s2a_metrics *s2a_metrics_attach(void *base, apr_size_t size, int nseries);

void s2a_metrics_count(s2a_metrics *m, const s2a_metrics_request *req);
void s2a_metrics_observe(s2a_metrics *m, int hist, apr_interval_time_t t);
void s2a_metrics_add(s2a_metrics *m, int counter, apr_int64_t delta);
apr_int64_t s2a_metrics_get(const s2a_metrics *m, int counter);

/* Where rendered text goes. */
typedef void (*s2a_metrics_out)(void *baton, const char *text, apr_size_t len);

/* Renders everything above; `p` holds temporary memory. */
void s2a_metrics_render(s2a_metrics *m, apr_pool_t *p, s2a_metrics_out out, void *baton);

/* Writes `value` as a label value: backslash, double quote and newline
 * escaped as the text format wants. */
void s2a_metrics_label(s2a_metrics_out out, void *baton, const char *value);

#endif
