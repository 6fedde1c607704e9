/* Usage rows the database could not take, kept in an append-only file until
 * it can. One line per row (text, so an operator can read it); every
 * process of a host may append to and replay the same file: each access
 * holds an exclusive lock on it. Replaying is safe to repeat: the database
 * skips a row whose (request id, attempt) it has. */
#ifndef S2A_JOURNAL_H
#define S2A_JOURNAL_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "s2a_db_billing.h"

/* Appends rows[0..n-1] with one write, creating the file (mode 0600). */
apr_status_t s2a_journal_append(apr_pool_t *p, const char *path, const s2a_usage_row *rows, int n);

/* Hands the rows of the file to sink in groups of at most `batch`, in order,
 * and empties the file once every group was taken (sink returned
 * APR_SUCCESS). A group refused leaves the file as it was: the groups taken
 * before it come again at the next replay, and the database skips them.
 * A missing or empty file is APR_SUCCESS with *taken 0. Lines that cannot be
 * read (a write cut short by a crash) are counted in *unreadable and
 * dropped with the rest. */
typedef apr_status_t s2a_journal_sink(void *baton, const s2a_usage_row *rows, int n);
apr_status_t s2a_journal_replay(apr_pool_t *p, const char *path, int batch, s2a_journal_sink *sink,
                                void *baton, int *taken, int *unreadable);

/* One row as a journal line (with its newline), and back. */
char *s2a_journal_line(apr_pool_t *p, const s2a_usage_row *row);
int s2a_journal_parse(const char *line, apr_size_t len, s2a_usage_row *row);

#endif
