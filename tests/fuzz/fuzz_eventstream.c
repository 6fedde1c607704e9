/* Bedrock's event stream (s2a_eventstream.h): frames built from the input
 * with their CRCs (one byte of them perhaps damaged, where the input says),
 * and the raw input itself, read whole, split at a byte the input picks
 * and byte by byte: the same records in every case; every record an
 * "event: <name>" line and one "data:" line; a stream the reader ends
 * ends with its error event, JSON json-c reads strictly (an upstream's own
 * events pass as they came); an undamaged stream of chunks gives one
 * record per chunk, a damaged one ends with the reader's error event.
 *
 * Input: flags, the damage's place (2 bytes), the split point (2 bytes),
 * then payloads separated by NUL bytes, each the JSON of one chunk. */
#include <string.h>

#include <apr_base64.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_eventstream.h"
#include "../unit/s2a_test_frames.h"

/* A chunk frame carrying json[0..n), NUL bytes and all. */
static void chunk_of(apr_pool_t *p, s2a_buf *out, const char *json, apr_size_t n)
{
    s2a_buf h;
    char *b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)n));
    const char *payload;

    apr_base64_encode(b64, json, (int)n);
    payload = apr_pstrcat(p, "{\"bytes\":\"", b64, "\"}", NULL);
    s2a_buf_init(&h, p, 64);
    header(&h, ":event-type", "chunk");
    header(&h, ":message-type", "event");
    frame(p, out, &h, payload);
}

/* What the reader writes for s[0..n) fed in pieces of `step` (0: whole). */
static char *read_all(apr_pool_t *p, const char *s, apr_size_t n, apr_size_t step, int *rc)
{
    s2a_eventstream *es = s2a_eventstream_create(p, 0);
    s2a_buf out;
    apr_size_t at;
    int r = 0;
    s2a_buf_init(&out, p, 1024);
    for (at = 0; at < n; at += step ? step : n) {
        apr_size_t k = step && n - at > step ? step : n - at;
        r |= s2a_eventstream_feed(es, s + at, k, &out);
    }
    r |= s2a_eventstream_end(es, &out);
    *rc = r;
    s2a_buf_append(&out, "", 0);
    return out.data;
}

/* Whether data[0..n) is one JSON object json-c reads strictly. */
static int strict_object(const char *data, size_t n)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;
    int ok;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, data, (int)n);
    ok = o && json_object_is_type(o, json_type_object) && json_tokener_get_parse_end(tok) == n;
    json_object_put(o);
    json_tokener_free(tok);
    return ok;
}

/* Every record well formed: an event line and one data line; returns how
 * many, whether the last is an error event, and whether that one's data is
 * JSON json-c reads strictly (as the reader's own error events are; an
 * upstream's event passes as it came). */
static int check_records(const char *out, int *last_error, int *last_json)
{
    int n = 0;
    *last_error = *last_json = 0;
    while (*out) {
        const char *nl = strchr(out, '\n'), *data, *end;
        FUZZ_CHECK(strncmp(out, "event: ", 7) == 0 && nl);
        data = nl + 1;
        FUZZ_CHECK(strncmp(data, "data: ", 6) == 0);
        end = strstr(data, "\n\n");
        FUZZ_CHECK(end && !memchr(data, '\n', (size_t)(end - data)));
        *last_error = strncmp(out, "event: error\n", 13) == 0;
        *last_json = *last_error && strict_object(data + 6, (size_t)(end - data - 6));
        n++;
        out = end + 2;
    }
    return n;
}

static void check_stream(apr_pool_t *p, const char *s, apr_size_t n, apr_size_t split, int damaged,
                         int chunks)
{
    int rc, rc2, last_error, last_json, records;
    const char *whole = read_all(p, s, n, 0, &rc);

    FUZZ_CHECK(strcmp(read_all(p, s, n, split ? split : 1, &rc2), whole) == 0 && rc2 == rc);
    FUZZ_CHECK(strcmp(read_all(p, s, n, 1, &rc2), whole) == 0 && rc2 == rc);
    records = check_records(whole, &last_error, &last_json);
    /* a broken stream ends with the reader's error event */
    FUZZ_CHECK(rc == 0 || (last_error && last_json));
    if (chunks >= 0 && !damaged) {
        /* a chunk that is no Anthropic event ends it too */
        FUZZ_CHECK(rc != 0 || records == chunks);
    }
    if (damaged) {
        FUZZ_CHECK(rc != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};
    int flags = fuzz_u8(&in), chunks = 0;
    size_t damage = fuzz_u16(&in), split = fuzz_u16(&in), n;
    const uint8_t *rest = fuzz_take(&in, size, &n);
    s2a_buf s;
    size_t at = 0;

    /* the raw input as a stream */
    check_stream(p, fuzz_copy(p, rest, n, 0), n, n ? split % n : 0, 0, -1);
    /* frames made from it */
    s2a_buf_init(&s, p, 256);
    while (at < n) {
        const uint8_t *nul = memchr(rest + at, 0, n - at);
        size_t len = nul ? (size_t)(nul - (rest + at)) : n - at;
        chunk_of(p, &s, (const char *)rest + at, len);
        chunks++;
        at += len + 1;
    }
    if (s.len && (flags & 1)) {
        s.data[damage % s.len] ^= (char)(1 + (flags >> 1));
    }
    check_stream(p, s.data, s.len, s.len ? split % s.len : 0, s.len && (flags & 1), chunks);
    apr_pool_destroy(p);
    return 0;
}
