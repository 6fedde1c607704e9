/* Usage extraction (s2a_usage.h). Events: each applied event allocates
 * nothing, says whether it changed the usage, keeps every count sane, and
 * reads message_start and message_delta as the header's rules say (checked
 * against json-c's reading of the same data). A JSON answer: its reading
 * does not depend on how it was cut into chunks, keeps every byte fed, and
 * agrees with the same usage read from a message_start event.
 *
 * Input: a mode byte; events are records of a name byte, a 16-bit length
 * and the data; a JSON answer is a chunking seed and the body. */
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_json.h"
#include "s2a_usage.h"

static const char *const names[] = {"",     "message_start", "message_delta", "content_block_delta",
                                    "ping", "message_stop",  "message_sta",   "message_delta "};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static int differs(const s2a_usage *a, const s2a_usage *b)
{
    return a->input != b->input || a->output != b->output ||
           a->cache_creation != b->cache_creation || a->cache_1h != b->cache_1h ||
           a->cache_read != b->cache_read || a->seen_start != b->seen_start ||
           a->seen_delta != b->seen_delta;
}

static void check_sane(const s2a_usage *u, const s2a_usage *before, size_t dlen)
{
    FUZZ_CHECK(u->input >= 0 && u->output >= 0 && u->cache_creation >= 0 && u->cache_read >= 0);
    FUZZ_CHECK(u->cache_1h >= 0 && u->cache_1h <= u->cache_creation);
    FUZZ_CHECK(u->seen_start >= before->seen_start && u->seen_delta >= before->seen_delta);
    FUZZ_CHECK(u->delta_bytes >= before->delta_bytes &&
               u->delta_bytes - before->delta_bytes <= (apr_int64_t)dlen);
}

/* json-c's reading of data, NULL when it refuses it or data escapes a NUL
 * (json-c cuts keys there). */
static json_object *parse(const char *data, size_t len)
{
    json_tokener *tok;
    json_object *o;

    if (memmem(data, len, "\\u0000", 6)) {
        return NULL;
    }
    tok = json_tokener_new_ex(2 * S2A_JSON_MAX_DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, data, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* A count as the header defines it: a JSON integer, not negative,
 * saturating; -1 when absent or anything else. */
static apr_int64_t count_of(json_object *usage, const char *key)
{
    json_object *v;
    const char *text;

    if (!json_object_object_get_ex(usage, key, &v) || !json_object_is_type(v, json_type_int)) {
        return -1;
    }
    text = json_object_get_string(v);
    if (json_object_get_int64(v) < 0 || (text[0] == '-' && json_object_get_int64(v) != 0)) {
        return -1;
    }
    return json_object_get_int64(v);
}

/* What one message_start (is_delta 0) or message_delta event with this
 * usage object makes of a fresh usage. */
static void expected(json_object *usage, int is_delta, s2a_usage *u)
{
    apr_int64_t in = count_of(usage, "input_tokens"), out = count_of(usage, "output_tokens");
    apr_int64_t cc = count_of(usage, "cache_creation_input_tokens");
    apr_int64_t cr = count_of(usage, "cache_read_input_tokens"), c5m = -1, c1h = -1;
    apr_int64_t min = is_delta ? 1 : 0;
    json_object *split;

    memset(u, 0, sizeof(*u));
    if (json_object_object_get_ex(usage, "cache_creation", &split) &&
        json_object_is_type(split, json_type_object)) {
        c5m = count_of(split, "ephemeral_5m_input_tokens");
        c1h = count_of(split, "ephemeral_1h_input_tokens");
    }
    if (cc < 0 && (c5m >= 0 || c1h >= 0)) {
        apr_int64_t a = c5m > 0 ? c5m : 0, b = c1h > 0 ? c1h : 0;
        cc = a > APR_INT64_MAX - b ? APR_INT64_MAX : a + b;
    }
    u->output = out >= 0 ? out : 0;
    u->input = in >= min ? in : 0;
    u->cache_read = cr >= min ? cr : 0;
    u->cache_creation = cc >= min ? cc : 0;
    u->cache_1h = c1h >= min ? c1h : 0;
    if (u->cache_1h > u->cache_creation) {
        u->cache_1h = u->cache_creation;
    }
    u->seen_start = !is_delta;
    u->seen_delta = is_delta;
}

static int name_is(const char *name, size_t len, const char *what)
{
    return len == strlen(what) && memcmp(name, what, len) == 0;
}

static const s2a_usage nothing;

/* The usage object json-c finds where the event kind says (NULL: none). */
static json_object *usage_of(json_object *root, int is_delta)
{
    json_object *message, *usage = NULL;

    if (is_delta) {
        json_object_object_get_ex(root, "usage", &usage);
    } else if (json_object_object_get_ex(root, "message", &message) &&
               json_object_is_type(message, json_type_object)) {
        json_object_object_get_ex(message, "usage", &usage);
    }
    return json_object_is_type(usage, json_type_object) ? usage : NULL;
}

/* The kind an event is read as: 0 message_start, 1 message_delta, 2
 * content_block_delta, -1 none. An unnamed event goes by its data's type,
 * looked at only when one of the three names is written plainly. */
static int kind_of(const char *name, size_t elen, const char *data, size_t dlen, json_object *root)
{
    static const char *const kinds[] = {"message_start", "message_delta", "content_block_delta"};
    json_object *type;
    int i, plain = 0;

    if (elen) {
        for (i = 0; i < 3; i++) {
            if (name_is(name, elen, kinds[i])) {
                return i;
            }
        }
        return -1;
    }
    for (i = 0; i < 3; i++) {
        char quoted[32];
        snprintf(quoted, sizeof(quoted), "\"%s\"", kinds[i]);
        plain = plain || memmem(data, dlen, quoted, strlen(quoted)) != NULL;
    }
    if (!plain || !json_object_object_get_ex(root, "type", &type) ||
        !json_object_is_type(type, json_type_string)) {
        return -1;
    }
    for (i = 0; i < 3; i++) {
        if (strcmp(json_object_get_string(type), kinds[i]) == 0 &&
            (size_t)json_object_get_string_len(type) == strlen(kinds[i])) {
            return i;
        }
    }
    return -1;
}

/* One event applied to a fresh usage, against json-c's reading of it. */
static void check_fresh(const char *name, size_t elen, const char *data, size_t dlen)
{
    static const char *const keys[] = {"type", "message", "usage", "delta"};
    s2a_json_span spans[4];
    s2a_usage got, want;
    json_object *root, *usage;
    const char *err;
    int kind, r;

    memset(&got, 0, sizeof(got));
    r = s2a_usage_apply_sse(&got, name, elen, data, dlen);
    FUZZ_CHECK(r == differs(&got, &nothing));
    if (s2a_json_scan_object(NULL, data, dlen, keys, 4, spans, &err) != 0) {
        /* not one object: only a named content_block_delta is counted raw */
        if (!name_is(name, elen, "content_block_delta")) {
            FUZZ_CHECK(memcmp(&got, &nothing, sizeof(got)) == 0);
        }
        return;
    }
    if (!(root = parse(data, dlen))) {
        return;
    }
    kind = kind_of(name, elen, data, dlen, root);
    if (kind == 0 || kind == 1) {
        usage = usage_of(root, kind);
        if (usage) {
            expected(usage, kind, &want);
        } else {
            want = nothing;
        }
        FUZZ_CHECK(memcmp(&got, &want, sizeof(got)) == 0);
    } else {
        want = nothing;
        want.delta_bytes = kind == 2 ? got.delta_bytes : 0;
        FUZZ_CHECK(memcmp(&got, &want, sizeof(got)) == 0);
    }
    json_object_put(root);
}

/* Events one after another on one usage. */
static void events(apr_pool_t *p, fuzz_input *in)
{
    s2a_usage u, before;

    memset(&u, 0, sizeof(u));
    while (in->n) {
        uint8_t pick = fuzz_u8(in);
        const char *name = names[pick % NNAMES];
        size_t want = fuzz_u16(in), dlen;
        const uint8_t *raw = fuzz_take(in, want, &dlen);
        const char *d = fuzz_copy(p, raw, dlen, 0);
        apr_size_t allocated = fuzz_allocated;
        int r;

        before = u;
        r = s2a_usage_apply_sse(&u, name, strlen(name), d, dlen);
        FUZZ_CHECK(fuzz_allocated == allocated);
        FUZZ_CHECK(r == differs(&before, &u));
        check_sane(&u, &before, dlen);
        if (!name_is(name, strlen(name), "message_start") &&
            !name_is(name, strlen(name), "message_delta") &&
            !name_is(name, strlen(name), "content_block_delta") && *name) {
            FUZZ_CHECK(memcmp(&before, &u, sizeof(u)) == 0);
        }
        FUZZ_CHECK(s2a_usage_output_estimate(&u) >= u.output);
        check_fresh(name, strlen(name), d, dlen);
    }
}

/* A JSON answer fed whole and in chunks: the same reading, the same bytes;
 * and the same usage as a message_start event carrying it. */
static void answer(apr_pool_t *p, fuzz_input *in)
{
    uint8_t seed = fuzz_u8(in);
    size_t n, at, step;
    const uint8_t *body = fuzz_take(in, in->n, &n);
    const char *b = fuzz_copy(p, body, n, 0), *model_whole = NULL, *model_cut = NULL, *text;
    s2a_usage_json *whole = s2a_usage_json_create(p), *cut = s2a_usage_json_create(p);
    s2a_usage u_whole, u_cut, u_event;
    apr_size_t len = 0;
    const char *err;
    char *event;
    int r_whole, r_cut;

    s2a_usage_json_feed(whole, b, n);
    for (at = 0, step = 1 + seed % 17; at < n; at += step, step = 1 + (step * 7 + seed) % 61) {
        s2a_usage_json_feed(cut, b + at, n - at < step ? n - at : step);
    }
    text = s2a_usage_json_text(cut, &len);
    FUZZ_CHECK(len == n && (n == 0 ? text == NULL : memcmp(text, b, n) == 0));
    r_whole = s2a_usage_json_finish(whole, &u_whole, &model_whole);
    r_cut = s2a_usage_json_finish(cut, &u_cut, &model_cut);
    FUZZ_CHECK(r_whole == r_cut && memcmp(&u_whole, &u_cut, sizeof(u_cut)) == 0);
    FUZZ_CHECK((model_whole == NULL) == (model_cut == NULL));
    FUZZ_CHECK(!model_whole || strcmp(model_whole, model_cut) == 0);
    FUZZ_CHECK(r_whole == u_whole.seen_start && !u_whole.seen_delta && !u_whole.delta_bytes);
    if (r_whole) {
        check_sane(&u_whole, &nothing, 0);
    }
    /* the message_start event reads its message in full: when it reads
     * usage from an answer that is one object, the answer read alone gives
     * the same */
    event = apr_palloc(p, n + 13);
    memcpy(event, "{\"message\":", 11);
    memcpy(event + 11, b, n);
    event[11 + n] = '}';
    memset(&u_event, 0, sizeof(u_event));
    if (s2a_json_scan_object(NULL, b, n, NULL, 0, NULL, &err) == 0 &&
        s2a_usage_apply_sse(&u_event, "message_start", 13, event, n + 12)) {
        FUZZ_CHECK(r_whole && memcmp(&u_whole, &u_event, sizeof(u_event)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};

    if (fuzz_u8(&in) & 1) {
        answer(p, &in);
    } else {
        events(p, &in);
    }
    apr_pool_destroy(p);
    return 0;
}
