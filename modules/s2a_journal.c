/* The usage journal: see s2a_journal.h. */
#include <errno.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "s2a_journal.h"

/* s2a4 added the door the client used, s2a3 the server tools' uses and
 * charges, s2a2 the billing type; lines of the earlier forms are still
 * read (their door was Messages) */
#define TAG "s2a4"
#define TAG_V3 "s2a3"
#define TAG_V2 "s2a2"
#define TAG_V1 "s2a1"
#define FIELDS_V1 27 /* the tag and the fields of s2a1 */
#define FIELDS_V3 (FIELDS_V1 + 4)
#define FIELDS (FIELDS_V3 + 1)
#define READ_CHUNK (1024 * 1024)

/* Strings go between tabs: %, tab, CR, LF and the other control bytes are
 * written as %XX. */
static void put_str(apr_array_header_t *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == '%' || c == 0x7f) {
            char hex[4];
            apr_snprintf(hex, sizeof(hex), "%%%02X", c);
            memcpy(apr_array_push(out), hex, 1);
            memcpy(apr_array_push(out), hex + 1, 1);
            memcpy(apr_array_push(out), hex + 2, 1);
        } else {
            *(char *)apr_array_push(out) = (char)c;
        }
    }
}

static void put_raw(apr_array_header_t *out, const char *s)
{
    for (; *s; s++) {
        *(char *)apr_array_push(out) = *s;
    }
}

static void put_i64(apr_array_header_t *out, apr_int64_t v)
{
    char num[24];
    apr_snprintf(num, sizeof(num), "%" APR_INT64_T_FMT, v);
    put_raw(out, num);
}

char *s2a_journal_line(apr_pool_t *p, const s2a_usage_row *row)
{
    const apr_int64_t nums1[] = {row->attempt, row->user_id, row->api_key_id, row->account_id,
                                 row->group_id};
    const apr_int64_t nums2[] = {row->input_tokens,
                                 row->output_tokens,
                                 row->cache_creation_tokens,
                                 row->cache_creation_1h_tokens,
                                 row->cache_read_tokens,
                                 row->input_cost,
                                 row->output_cost,
                                 row->cache_creation_cost,
                                 row->cache_read_cost,
                                 row->total_cost,
                                 row->actual_cost,
                                 row->multiplier_ppm,
                                 row->stream,
                                 row->status};
    const apr_int64_t nums3[] = {
        row->duration_ms,         row->first_token_ms,     row->created_at,      row->subscription,
        row->web_search_requests, row->web_fetch_requests, row->server_tool_cost};
    apr_array_header_t *out = apr_array_make(p, 512, 1);
    size_t i;

    put_raw(out, TAG "\t");
    put_str(out, row->request_id);
    for (i = 0; i < sizeof(nums1) / sizeof(nums1[0]); i++) {
        put_raw(out, "\t");
        put_i64(out, nums1[i]);
    }
    put_raw(out, "\t");
    put_str(out, row->model);
    put_raw(out, "\t");
    put_str(out, row->upstream_model);
    for (i = 0; i < sizeof(nums2) / sizeof(nums2[0]); i++) {
        put_raw(out, "\t");
        put_i64(out, nums2[i]);
    }
    put_raw(out, "\t");
    put_str(out, row->outcome);
    for (i = 0; i < sizeof(nums3) / sizeof(nums3[0]); i++) {
        put_raw(out, "\t");
        put_i64(out, nums3[i]);
    }
    put_raw(out, "\t");
    put_str(out, row->api[0] ? row->api : "messages");
    put_raw(out, "\n");
    *(char *)apr_array_push(out) = '\0';
    return out->elts;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static int get_str(const char *s, apr_size_t len, char *out, apr_size_t size)
{
    apr_size_t i, o = 0;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) {
                return 0;
            }
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return 0;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= size) {
            return 0;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return 1;
}

static int get_i64(const char *s, apr_size_t len, apr_int64_t *out)
{
    char num[24], *end;
    if (!len || len >= sizeof(num)) {
        return 0;
    }
    memcpy(num, s, len);
    num[len] = '\0';
    errno = 0;
    *out = apr_strtoi64(num, &end, 10);
    return *end == '\0' && errno == 0;
}

static int get_int(const char *s, apr_size_t len, int *out)
{
    apr_int64_t v;
    if (!get_i64(s, len, &v) || v < -2147483647 || v > 2147483647) {
        return 0;
    }
    *out = (int)v;
    return 1;
}

int s2a_journal_parse(const char *line, apr_size_t len, s2a_usage_row *row)
{
    const char *f[FIELDS];
    apr_size_t fl[FIELDS];
    apr_int64_t *nums2[] = {&row->input_tokens,          &row->output_tokens,
                            &row->cache_creation_tokens, &row->cache_creation_1h_tokens,
                            &row->cache_read_tokens,     &row->input_cost,
                            &row->output_cost,           &row->cache_creation_cost,
                            &row->cache_read_cost,       &row->total_cost,
                            &row->actual_cost,           &row->multiplier_ppm};
    apr_size_t i, n = 0, start = 0;
    int ok;

    if (len && line[len - 1] == '\n') {
        len--;
    }
    /* the writer never writes a NUL; in a field it would cut the text or
     * the number short (a crash can leave NULs in a file) */
    if (memchr(line, '\0', len)) {
        return 0;
    }
    for (i = 0; i <= len; i++) {
        if (i == len || line[i] == '\t') {
            if (n == FIELDS) {
                return 0;
            }
            f[n] = line + start;
            fl[n++] = i - start;
            start = i + 1;
        }
    }
    if (!((n == FIELDS && fl[0] == strlen(TAG) && memcmp(f[0], TAG, fl[0]) == 0) ||
          (n == FIELDS_V3 && fl[0] == strlen(TAG_V3) && memcmp(f[0], TAG_V3, fl[0]) == 0) ||
          (n == FIELDS_V1 + 1 && fl[0] == strlen(TAG_V2) && memcmp(f[0], TAG_V2, fl[0]) == 0) ||
          (n == FIELDS_V1 && fl[0] == strlen(TAG_V1) && memcmp(f[0], TAG_V1, fl[0]) == 0))) {
        return 0;
    }
    memset(row, 0, sizeof(*row));
    ok = get_str(f[1], fl[1], row->request_id, sizeof(row->request_id)) && row->request_id[0] &&
         get_int(f[2], fl[2], &row->attempt) && get_i64(f[3], fl[3], &row->user_id) &&
         get_i64(f[4], fl[4], &row->api_key_id) && get_i64(f[5], fl[5], &row->account_id) &&
         get_i64(f[6], fl[6], &row->group_id) &&
         get_str(f[7], fl[7], row->model, sizeof(row->model)) &&
         get_str(f[8], fl[8], row->upstream_model, sizeof(row->upstream_model));
    for (i = 0; ok && i < sizeof(nums2) / sizeof(nums2[0]); i++) {
        ok = get_i64(f[9 + i], fl[9 + i], nums2[i]);
    }
    return ok && get_int(f[21], fl[21], &row->stream) && get_int(f[22], fl[22], &row->status) &&
           get_str(f[23], fl[23], row->outcome, sizeof(row->outcome)) &&
           get_i64(f[24], fl[24], &row->duration_ms) &&
           get_i64(f[25], fl[25], &row->first_token_ms) &&
           get_i64(f[26], fl[26], &row->created_at) &&
           (n == FIELDS_V1 || (get_int(f[27], fl[27], &row->subscription) &&
                               (row->subscription == 0 || row->subscription == 1))) &&
           (n < FIELDS_V3 || (get_i64(f[28], fl[28], &row->web_search_requests) &&
                              get_i64(f[29], fl[29], &row->web_fetch_requests) &&
                              get_i64(f[30], fl[30], &row->server_tool_cost))) &&
           (n < FIELDS ? (apr_cpystrn(row->api, "messages", sizeof(row->api)), 1)
                       : get_str(f[31], fl[31], row->api, sizeof(row->api)) && row->api[0]);
}

apr_status_t s2a_journal_append(apr_pool_t *p, const char *path, const s2a_usage_row *rows, int n)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;
    apr_array_header_t *lines = apr_array_make(p, n + 1, sizeof(const char *));
    int i;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if ((rv = apr_file_lock(f, APR_FLOCK_EXCLUSIVE)) != APR_SUCCESS) {
        apr_file_close(f);
        return rv;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv == APR_SUCCESS && fi.size > 0) {
        /* a write cut short by a crash left a line without its end: end it,
         * so that the rows after it stay readable */
        apr_off_t at = fi.size - 1;
        char last = '\n';
        apr_size_t one = 1;
        if ((rv = apr_file_seek(f, APR_SET, &at)) == APR_SUCCESS &&
            (rv = apr_file_read(f, &last, &one)) == APR_SUCCESS && last != '\n') {
            APR_ARRAY_PUSH(lines, const char *) = "\n";
        }
    }
    for (i = 0; i < n; i++) {
        APR_ARRAY_PUSH(lines, const char *) = s2a_journal_line(p, &rows[i]);
    }
    if (rv == APR_SUCCESS) {
        apr_off_t end = 0;
        const char *text = apr_array_pstrcat(p, lines, '\0');
        if ((rv = apr_file_seek(f, APR_END, &end)) == APR_SUCCESS &&
            (rv = apr_file_write_full(f, text, strlen(text), NULL)) == APR_SUCCESS) {
            rv = apr_file_datasync(f);
        }
    }
    apr_file_unlock(f);
    apr_file_close(f);
    return rv;
}

typedef struct {
    s2a_journal_sink *sink;
    void *baton;
    s2a_usage_row *rows;
    int n, batch, taken, failed;
} replay_t;

static void flush(replay_t *rp)
{
    if (rp->n && !rp->failed) {
        if (rp->sink(rp->baton, rp->rows, rp->n) == APR_SUCCESS) {
            rp->taken += rp->n;
        } else {
            rp->failed = 1;
        }
    }
    rp->n = 0;
}

apr_status_t s2a_journal_replay(apr_pool_t *p, const char *path, int batch, s2a_journal_sink *sink,
                                void *baton, int *taken, int *unreadable)
{
    apr_file_t *f;
    apr_status_t rv;
    replay_t rp;
    char *buf = NULL;
    apr_size_t have = 0;
    int eof = 0;

    *taken = 0;
    *unreadable = 0;
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_WRITE, APR_FPROT_OS_DEFAULT, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if ((rv = apr_file_lock(f, APR_FLOCK_EXCLUSIVE)) != APR_SUCCESS) {
        apr_file_close(f);
        return rv;
    }
    memset(&rp, 0, sizeof(rp));
    rp.sink = sink;
    rp.baton = baton;
    rp.batch = batch > 0 ? batch : 1;
    rp.rows = apr_palloc(p, sizeof(*rp.rows) * (apr_size_t)rp.batch);
    buf = apr_palloc(p, READ_CHUNK + 1);
    while (!eof && !rp.failed) {
        apr_size_t got = READ_CHUNK - have, at = 0, i;
        rv = apr_file_read(f, buf + have, &got);
        if (rv == APR_EOF || (rv == APR_SUCCESS && got == 0)) {
            eof = 1;
            got = 0;
            rv = APR_SUCCESS;
        } else if (rv != APR_SUCCESS) {
            break;
        }
        have += got;
        for (i = 0; i < have; i++) {
            if (buf[i] == '\n' || (eof && i + 1 == have) || (at == 0 && i + 1 == READ_CHUNK)) {
                /* a line longer than the buffer is no row of ours */
                apr_size_t len = i + 1 - at;
                if (len > 1 || buf[at] != '\n') {
                    if (buf[i] == '\n' && s2a_journal_parse(buf + at, len, &rp.rows[rp.n])) {
                        if (++rp.n == rp.batch) {
                            flush(&rp);
                        }
                    } else {
                        (*unreadable)++;
                    }
                }
                at = i + 1;
            }
        }
        memmove(buf, buf + at, have - at);
        have -= at;
    }
    flush(&rp);
    *taken = rp.taken;
    if (rv == APR_SUCCESS && rp.failed) {
        rv = APR_EGENERAL;
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_trunc(f, 0);
    }
    apr_file_unlock(f);
    apr_file_close(f);
    return rv;
}
