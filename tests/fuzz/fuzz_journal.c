/* The usage journal's lines (s2a_journal.h): any line is read or refused
 * without reading past it; a row read is written as one well-formed line
 * that reads back as the same row, and writes the same line again. A row
 * built from the input (within the row's domain) survives line and parse.
 *
 * Input: the line itself. */
#include <string.h>

#include <apr_strings.h>

#include "fuzz.h"
#include "s2a_journal.h"

#define FIELDS 32

/* A line as the writer makes it: the tag, 32 fields, no control byte but
 * the tabs and the final newline. */
static void check_line(const char *line)
{
    size_t n = strlen(line), i, tabs = 0;

    FUZZ_CHECK(n > 5 && strncmp(line, "s2a4\t", 5) == 0 && line[n - 1] == '\n');
    for (i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)line[i];
        FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        tabs += c == '\t';
    }
    FUZZ_CHECK(tabs == FIELDS - 1);
}

/* line -> parse -> line gives the line, and parse gives the row. */
static void round_trip(apr_pool_t *p, const s2a_usage_row *row)
{
    char *line = s2a_journal_line(p, row), *copy;
    s2a_usage_row back;
    size_t n;

    check_line(line);
    n = strlen(line);
    copy = fuzz_copy(p, line, n, 0);
    FUZZ_CHECK(s2a_journal_parse(copy, n, &back));
    FUZZ_CHECK(memcmp(&back, row, sizeof(back)) == 0);
    FUZZ_CHECK(strcmp(s2a_journal_line(p, &back), line) == 0);
    /* the newline is optional to the reader */
    FUZZ_CHECK(s2a_journal_parse(copy, n - 1, &back));
    FUZZ_CHECK(memcmp(&back, row, sizeof(back)) == 0);
}

/* A string field from the input: no NUL, within its column. */
static void fill(char *field, size_t size, fuzz_input *in, int nonempty)
{
    size_t want = fuzz_u8(in) % size, i;

    for (i = 0; i < want && in->n; i++) {
        uint8_t c = fuzz_u8(in);
        field[i] = (char)(c ? c : 'x');
    }
    if (nonempty && i == 0) {
        field[i++] = 'r';
    }
}

/* Every int field of a row is within -INT_MAX..INT_MAX, subscription 0 or 1,
 * request_id not empty: the rows the gateway writes. */
static void row_from(fuzz_input *in, s2a_usage_row *row)
{
    apr_int64_t *nums[] = {&row->user_id,
                           &row->api_key_id,
                           &row->account_id,
                           &row->group_id,
                           &row->input_tokens,
                           &row->output_tokens,
                           &row->cache_creation_tokens,
                           &row->cache_creation_1h_tokens,
                           &row->cache_read_tokens,
                           &row->input_cost,
                           &row->output_cost,
                           &row->cache_creation_cost,
                           &row->cache_read_cost,
                           &row->total_cost,
                           &row->actual_cost,
                           &row->multiplier_ppm,
                           &row->duration_ms,
                           &row->first_token_ms,
                           &row->created_at,
                           &row->web_search_requests,
                           &row->web_fetch_requests,
                           &row->server_tool_cost};
    int *ints[] = {&row->attempt, &row->stream, &row->status};
    size_t i;

    memset(row, 0, sizeof(*row));
    fill(row->request_id, sizeof(row->request_id), in, 1);
    fill(row->model, sizeof(row->model), in, 0);
    fill(row->upstream_model, sizeof(row->upstream_model), in, 0);
    fill(row->outcome, sizeof(row->outcome), in, 0);
    fill(row->api, sizeof(row->api), in, 1); /* written always: none reads as "messages" */
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        *nums[i] = (apr_int64_t)fuzz_u64(in);
    }
    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        uint32_t v = (uint32_t)fuzz_u64(in);
        *ints[i] = v == 0x80000000u ? 0 : (int)v;
    }
    row->subscription = fuzz_u8(in) & 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    const char *line = fuzz_copy(p, data, size, 0);
    fuzz_input in = {data, size};
    s2a_usage_row row;

    if (s2a_journal_parse(line, size, &row)) {
        FUZZ_CHECK(row.request_id[0] != '\0');
        FUZZ_CHECK(row.subscription == 0 || row.subscription == 1);
        round_trip(p, &row);
    }
    row_from(&in, &row);
    round_trip(p, &row);
    apr_pool_destroy(p);
    return 0;
}
