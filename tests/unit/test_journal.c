/* The usage journal: lines that read back as they were written, replay in
 * order and only once, a crash's torn line, several processes appending. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_journal.h"
#include "s2a_test.h"

static apr_pool_t *pool;
static char dir[] = "/tmp/s2a-journal-XXXXXX";

static s2a_usage_row make_row(int i)
{
    s2a_usage_row r;
    memset(&r, 0, sizeof(r));
    apr_snprintf(r.request_id, sizeof(r.request_id), "req-%06d", i);
    r.attempt = 1 + i % 3;
    r.user_id = 7;
    r.api_key_id = 8;
    r.account_id = 9 + i;
    r.group_id = 3;
    apr_cpystrn(r.model, "claude-sonnet-4", sizeof(r.model));
    apr_cpystrn(r.upstream_model, "claude-sonnet-4-20250514", sizeof(r.upstream_model));
    r.input_tokens = 1000 + i;
    r.output_tokens = 50;
    r.cache_creation_tokens = 20;
    r.cache_creation_1h_tokens = 5;
    r.cache_read_tokens = 300;
    r.input_cost = 3000000 + i;
    r.output_cost = 750000;
    r.cache_creation_cost = 80000;
    r.cache_read_cost = 90000;
    r.total_cost = r.input_cost + r.output_cost + r.cache_creation_cost + r.cache_read_cost;
    r.web_search_requests = i % 4;
    r.web_fetch_requests = i % 3;
    r.server_tool_cost = r.web_search_requests * 10000000;
    r.actual_cost = r.total_cost * 2;
    r.multiplier_ppm = 2000000;
    r.stream = i % 2;
    r.status = 200;
    apr_cpystrn(r.outcome, i % 5 ? "ok" : "client_aborted", sizeof(r.outcome));
    r.duration_ms = 1234;
    r.first_token_ms = 56;
    r.created_at = 1790000000 + i;
    r.subscription = i % 7 == 3;
    apr_cpystrn(r.api, i % 3 == 0 ? "messages" : i % 3 == 1 ? "chat" : "responses", sizeof(r.api));
    return r;
}

static int same(const s2a_usage_row *a, const s2a_usage_row *b)
{
    return strcmp(a->request_id, b->request_id) == 0 && a->attempt == b->attempt &&
           a->user_id == b->user_id && a->api_key_id == b->api_key_id &&
           a->account_id == b->account_id && a->group_id == b->group_id &&
           strcmp(a->model, b->model) == 0 && strcmp(a->upstream_model, b->upstream_model) == 0 &&
           a->input_tokens == b->input_tokens && a->output_tokens == b->output_tokens &&
           a->cache_creation_tokens == b->cache_creation_tokens &&
           a->cache_creation_1h_tokens == b->cache_creation_1h_tokens &&
           a->cache_read_tokens == b->cache_read_tokens && a->input_cost == b->input_cost &&
           a->output_cost == b->output_cost && a->cache_creation_cost == b->cache_creation_cost &&
           a->cache_read_cost == b->cache_read_cost && a->total_cost == b->total_cost &&
           a->actual_cost == b->actual_cost && a->multiplier_ppm == b->multiplier_ppm &&
           a->stream == b->stream && a->status == b->status &&
           strcmp(a->outcome, b->outcome) == 0 && a->duration_ms == b->duration_ms &&
           a->first_token_ms == b->first_token_ms && a->created_at == b->created_at &&
           a->subscription == b->subscription && a->web_search_requests == b->web_search_requests &&
           a->web_fetch_requests == b->web_fetch_requests &&
           a->server_tool_cost == b->server_tool_cost && strcmp(a->api, b->api) == 0;
}

typedef struct {
    apr_array_header_t *got; /* s2a_usage_row */
    int calls, fail_at;      /* refuse the fail_at-th call (1-based), 0: never */
} collector;

static apr_status_t collect(void *baton, const s2a_usage_row *rows, int n)
{
    collector *c = baton;
    int i;
    if (++c->calls == c->fail_at) {
        return APR_EGENERAL;
    }
    for (i = 0; i < n; i++) {
        APR_ARRAY_PUSH(c->got, s2a_usage_row) = rows[i];
    }
    return APR_SUCCESS;
}

static apr_off_t file_size(const char *path)
{
    apr_finfo_t fi;
    if (apr_stat(&fi, path, APR_FINFO_SIZE, pool) != APR_SUCCESS) {
        return -1;
    }
    return fi.size;
}

static void test_line(void)
{
    s2a_usage_row a = make_row(4), b;
    const char *line;
    apr_cpystrn(a.model, "we\tird\n%model\r\x01\x7f end \xc3\xa9", sizeof(a.model));
    apr_cpystrn(a.request_id, "id with spaces %41", sizeof(a.request_id));
    a.input_cost = -5; /* a negative figure (a refund) survives too */
    a.created_at = APR_INT64_MAX;
    line = s2a_journal_line(pool, &a);
    S2A_CHECK(strchr(line, '\n') == line + strlen(line) - 1); /* one line */
    S2A_CHECK(strstr(line, "we%09ird%0A%25model%0D%01%7F end \xc3\xa9") != NULL);
    S2A_CHECK_INT(s2a_journal_parse(line, strlen(line), &b), 1);
    S2A_CHECK(same(&a, &b));
    S2A_CHECK_STR(b.model, a.model);
    /* without its newline too */
    S2A_CHECK_INT(s2a_journal_parse(line, strlen(line) - 1, &b), 1);

    /* damaged lines */
    {
        const char *bad[] = {
            "",
            "\n",
            "s2a1\n",
            "s2a2\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t"
            "2\t3\n",
            "s2a1\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t"
            "2\n",
            "s2a1\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t"
            "2\t3\t4\n",
            "s2a1\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\tx\t0\t200\tok\t1\t2"
            "\t3\n",
            "s2a1\t\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t2\t"
            "3\n",
            "s2a1\treq\t1\t7\t8\t9\t3\tm%"
            "4\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t2\t3\n",
            "s2a1\treq\t1\t7\t8\t9\t3\tm%"
            "00\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t2\t3\n",
            "s2a1\treq\t1\t7\t8\t9\t3\tm%"
            "zz\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t2\t3\n",
            "s2a1\treq\t99999999999\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t20"
            "0\tok\t1\t2\t3\n",
            "s2a1\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t9999999999999999999"
            "9\t0\t200\tok\t1\t2\t3\n",
            "s2a1\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t"
            "2\t\n",
        };
        size_t i;
        int wrong = 0;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            if (s2a_journal_parse(bad[i], strlen(bad[i]), &b)) {
                fprintf(stderr, "accepted damaged line %d\n", (int)i);
                wrong++;
            }
        }
        S2A_CHECK_INT(wrong, 0);
        /* the same line with the number right is read */
        const char *good = "s2a1\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
                           "12\t0\t200\tok\t1\t2\t3\n";
        /* a line of the first format (no billing type) is a balance row */
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 1);
        S2A_CHECK_INT(b.multiplier_ppm, 12);
        S2A_CHECK_INT(b.subscription, 0);
        good = "s2a2\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t1\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 1);
        S2A_CHECK_INT(b.subscription, 1);
        good = "s2a2\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t2\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 0);
        /* the server tools' fields: s2a3 has them, and only s2a3 */
        good = "s2a3\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t0\t4\t5\t40000000\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 1);
        S2A_CHECK(b.web_search_requests == 4 && b.web_fetch_requests == 5 &&
                  b.server_tool_cost == 40000000);
        good = "s2a2\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t0\t4\t5\t40000000\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 0);
        good = "s2a3\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t0\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 0);
        /* the door: s2a4 names it; the earlier forms were Messages' */
        good = "s2a3\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t0\t4\t5\t40000000\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 1);
        S2A_CHECK_STR(b.api, "messages");
        good = "s2a4\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t0\t4\t5\t40000000\tchat\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 1);
        S2A_CHECK_STR(b.api, "chat");
        good = "s2a4\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t0\t4\t5\t40000000\t\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 0);
        good = "s2a3\treq\t1\t7\t8\t9\t3\tm\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t"
               "12\t0\t200\tok\t1\t2\t3\t0\t4\t5\t40000000\tchat\n";
        S2A_CHECK_INT(s2a_journal_parse(good, strlen(good), &b), 0);
        S2A_CHECK(strncmp(s2a_journal_line(pool, &a), "s2a4\t", 5) == 0);
    }
    /* a model name longer than the row holds is refused, not cut */
    {
        char *longer =
            apr_pstrcat(pool, "s2a1\treq\t1\t7\t8\t9\t3\t", apr_psprintf(pool, "%0200d", 0),
                        "\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t0\t200\tok\t1\t2\t3\n", NULL);
        S2A_CHECK_INT(s2a_journal_parse(longer, strlen(longer), &b), 0);
    }
    /* a NUL (a crash can leave them in a file) makes a line unreadable: it
     * cut a number ("1532" read as 15) or a text short */
    {
        const char *good = "s2a2\treq\t1\t7\t8\t9\t3\tmodel\tm\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t"
                           "11\t12\t0\t200\tok\t1532\t2\t3\t1\n";
        apr_size_t len = strlen(good);
        char *cut = apr_pstrdup(pool, good);
        S2A_CHECK_INT(s2a_journal_parse(good, len, &b), 1);
        S2A_CHECK_INT(b.duration_ms, 1532);
        cut[strstr(good, "1532") - good + 2] = '\0';
        S2A_CHECK_INT(s2a_journal_parse(cut, len, &b), 0);
        cut = apr_pstrdup(pool, good);
        cut[strstr(good, "model") - good + 3] = '\0';
        S2A_CHECK_INT(s2a_journal_parse(cut, len, &b), 0);
    }
}

static void test_replay(void)
{
    const char *path = apr_pstrcat(pool, dir, "/replay.journal", NULL);
    s2a_usage_row rows[5];
    collector c = {apr_array_make(pool, 8, sizeof(s2a_usage_row)), 0, 0};
    int i, taken, unreadable, wrong = 0;

    /* nothing kept yet */
    S2A_CHECK_INT(s2a_journal_replay(pool, path, 2, collect, &c, &taken, &unreadable), APR_SUCCESS);
    S2A_CHECK_INT(taken, 0);
    S2A_CHECK_INT(c.calls, 0);

    for (i = 0; i < 5; i++) {
        rows[i] = make_row(i);
    }
    S2A_CHECK_INT(s2a_journal_append(pool, path, rows, 3), APR_SUCCESS);
    S2A_CHECK_INT(s2a_journal_append(pool, path, rows + 3, 2), APR_SUCCESS);

    /* the database refuses the second group: the file stays */
    c.fail_at = 2;
    S2A_CHECK(s2a_journal_replay(pool, path, 2, collect, &c, &taken, &unreadable) != APR_SUCCESS);
    S2A_CHECK_INT(taken, 2);
    S2A_CHECK(file_size(path) > 0);

    /* then takes all: the first two come again (the database skips them) */
    c.fail_at = 0;
    c.calls = 0;
    c.got->nelts = 0;
    S2A_CHECK_INT(s2a_journal_replay(pool, path, 2, collect, &c, &taken, &unreadable), APR_SUCCESS);
    S2A_CHECK_INT(taken, 5);
    S2A_CHECK_INT(unreadable, 0);
    S2A_CHECK_INT(c.calls, 3);
    S2A_CHECK_INT(c.got->nelts, 5);
    for (i = 0; i < c.got->nelts && i < 5; i++) {
        wrong += !same(&APR_ARRAY_IDX(c.got, i, s2a_usage_row), &rows[i]);
    }
    S2A_CHECK_INT(wrong, 0);
    S2A_CHECK_INT(file_size(path), 0);

    /* and once emptied, nothing comes twice */
    c.got->nelts = 0;
    S2A_CHECK_INT(s2a_journal_replay(pool, path, 2, collect, &c, &taken, &unreadable), APR_SUCCESS);
    S2A_CHECK_INT(taken, 0);
    S2A_CHECK_INT(c.got->nelts, 0);
}

/* A crash in the middle of a write: the torn line is dropped, the rows
 * around it are kept, also those appended after it. */
static void test_torn_line(void)
{
    const char *path = apr_pstrcat(pool, dir, "/torn.journal", NULL);
    s2a_usage_row rows[3] = {make_row(1), make_row(2), make_row(3)};
    collector c = {apr_array_make(pool, 8, sizeof(s2a_usage_row)), 0, 0};
    const char *line = s2a_journal_line(pool, &rows[1]);
    apr_file_t *f;
    apr_size_t len = strlen(line) / 2;
    int taken, unreadable;

    S2A_CHECK_INT(s2a_journal_append(pool, path, rows, 1), APR_SUCCESS);
    S2A_CHECK_INT(
        apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_APPEND, APR_FPROT_OS_DEFAULT, pool),
        APR_SUCCESS);
    apr_file_write_full(f, line, len, NULL);
    apr_file_close(f);
    S2A_CHECK_INT(s2a_journal_append(pool, path, rows + 2, 1), APR_SUCCESS);
    S2A_CHECK_INT(s2a_journal_replay(pool, path, 64, collect, &c, &taken, &unreadable),
                  APR_SUCCESS);
    S2A_CHECK_INT(taken, 2);
    S2A_CHECK_INT(unreadable, 1);
    S2A_CHECK(c.got->nelts == 2 && same(&APR_ARRAY_IDX(c.got, 0, s2a_usage_row), &rows[0]) &&
              same(&APR_ARRAY_IDX(c.got, 1, s2a_usage_row), &rows[2]));

    /* torn at the very end: the last line lacks its newline */
    c.got->nelts = 0;
    S2A_CHECK_INT(s2a_journal_append(pool, path, rows, 1), APR_SUCCESS);
    apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_APPEND, APR_FPROT_OS_DEFAULT, pool);
    apr_file_write_full(f, line, strlen(line) - 1, NULL);
    apr_file_close(f);
    S2A_CHECK_INT(s2a_journal_replay(pool, path, 64, collect, &c, &taken, &unreadable),
                  APR_SUCCESS);
    S2A_CHECK_INT(taken, 1);
    S2A_CHECK_INT(unreadable, 1);
}

/* Four processes append at once, row by row: every row is read back once. */
static void test_processes(void)
{
    const char *path = apr_pstrcat(pool, dir, "/procs.journal", NULL);
    collector c = {apr_array_make(pool, 256, sizeof(s2a_usage_row)), 0, 0};
    pid_t kids[4];
    char seen[400];
    int i, k, taken, unreadable, status, wrong = 0;

    for (k = 0; k < 4; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            apr_pool_t *cp;
            apr_pool_create(&cp, NULL);
            for (i = 0; i < 100; i++) {
                s2a_usage_row r = make_row(k * 100 + i);
                if (s2a_journal_append(cp, path, &r, 1) != APR_SUCCESS) {
                    _exit(1);
                }
            }
            _exit(0);
        }
    }
    for (k = 0; k < 4; k++) {
        waitpid(kids[k], &status, 0);
        S2A_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    S2A_CHECK_INT(s2a_journal_replay(pool, path, 64, collect, &c, &taken, &unreadable),
                  APR_SUCCESS);
    S2A_CHECK_INT(taken, 400);
    S2A_CHECK_INT(unreadable, 0);
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < c.got->nelts; i++) {
        const s2a_usage_row *r = &APR_ARRAY_IDX(c.got, i, s2a_usage_row);
        int n = atoi(r->request_id + 4);
        s2a_usage_row want = make_row(n);
        if (n < 0 || n >= 400 || seen[n]++ || !same(r, &want)) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);
}

/* More rows than one read of the file holds, in batches of 256. */
static void test_large(void)
{
    const char *path = apr_pstrcat(pool, dir, "/large.journal", NULL);
    collector c = {apr_array_make(pool, 20000, sizeof(s2a_usage_row)), 0, 0};
    s2a_usage_row *rows = apr_palloc(pool, sizeof(*rows) * 20000);
    int i, taken, unreadable, wrong = 0;

    for (i = 0; i < 20000; i++) {
        rows[i] = make_row(i);
    }
    S2A_CHECK_INT(s2a_journal_append(pool, path, rows, 20000), APR_SUCCESS);
    S2A_CHECK(file_size(path) > 2 * 1024 * 1024);
    S2A_CHECK_INT(s2a_journal_replay(pool, path, 256, collect, &c, &taken, &unreadable),
                  APR_SUCCESS);
    S2A_CHECK_INT(taken, 20000);
    S2A_CHECK_INT(unreadable, 0);
    S2A_CHECK_INT(c.calls, (20000 + 255) / 256);
    for (i = 0; i < c.got->nelts && i < 20000; i++) {
        wrong += !same(&APR_ARRAY_IDX(c.got, i, s2a_usage_row), &rows[i]);
    }
    S2A_CHECK_INT(wrong, 0);
}

int main(void)
{
    int failed;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    test_line();
    test_replay();
    test_torn_line();
    test_processes();
    test_large();

    failed = S2A_TEST_SUMMARY("test_journal");
    if (system(apr_pstrcat(pool, "rm -rf ", dir, NULL)) != 0) {
        failed = 1;
    }
    apr_pool_destroy(pool);
    apr_terminate();
    return failed;
}
