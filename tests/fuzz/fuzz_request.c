/* The body of a Messages request (s2a_request.h) and the path it came by:
 * a body that is read is sent to each account as the client's bytes with
 * only the model and metadata.user_id changed, still JSON to json-c when
 * it was, and every other member as it came. */
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_identity.h"
#include "s2a_request.h"

static const char secret[] = "0123456789abcdef0123456789abcdef";

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* The endpoint by its definition: a known ending, else one segment after
 * "/v1/models/" at the end. */
static void check_endpoint(apr_pool_t *p, const char *path)
{
    static const struct {
        const char *suffix;
        s2a_endpoint e;
    } ends[] = {{"/v1/messages", S2A_ENDPOINT_MESSAGES},
                {"/v1/messages/count_tokens", S2A_ENDPOINT_COUNT_TOKENS},
                {"/v1/models", S2A_ENDPOINT_MODELS},
                {"/v1/usage", S2A_ENDPOINT_USAGE},
                {"/v1/redeem", S2A_ENDPOINT_REDEEM},
                {"/v1/chat/completions", S2A_ENDPOINT_CHAT},
                {"/v1/responses", S2A_ENDPOINT_RESPONSES}};
    s2a_endpoint want = S2A_ENDPOINT_NONE;
    const char *slash = strrchr(path, '/');
    size_t i;

    for (i = 0; i < sizeof(ends) / sizeof(ends[0]) && want == S2A_ENDPOINT_NONE; i++) {
        if (ends_with(path, ends[i].suffix)) {
            want = ends[i].e;
        }
    }
    if (want == S2A_ENDPOINT_NONE && slash && slash[1] &&
        ends_with(apr_pstrmemdup(p, path, (apr_size_t)(slash - path)), "/v1/models")) {
        want = S2A_ENDPOINT_MODEL;
    }
    FUZZ_CHECK(s2a_endpoint_of(path) == want);
}

/* json-c's reading of buf[0..len) (strict or not), NULL when it refuses it
 * or buf escapes a NUL (json-c cuts keys there). */
static json_object *parse(const char *buf, size_t len, int strict)
{
    json_tokener *tok;
    json_object *o;
    size_t end;

    if (memmem(buf, len, "\\u0000", 6)) {
        return NULL;
    }
    tok = json_tokener_new_ex(2 * S2A_JSON_MAX_DEPTH);
    if (strict) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    }
    o = json_tokener_parse_ex(tok, buf, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    for (end = json_tokener_get_parse_end(tok); o && end < len; end++) {
        if (buf[end] == '\0' || !strchr(" \t\r\n", buf[end])) {
            json_object_put(o);
            o = NULL;
        }
    }
    json_tokener_free(tok);
    return o;
}

static int same(json_object *a, json_object *b)
{
    return strcmp(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)) == 0;
}

/* Every member of `in` but those named `skip` is in `out` as it was, and
 * `out` has no member `in` lacks but `extra`. */
static void same_members(json_object *in, json_object *out, const char *skip1, const char *skip2,
                         const char *extra)
{
    json_object_object_foreach(in, key, value)
    {
        json_object *v;
        if (strcmp(key, skip1) == 0 || (skip2 && strcmp(key, skip2) == 0)) {
            continue;
        }
        FUZZ_CHECK(json_object_object_get_ex(out, key, &v));
        FUZZ_CHECK(same(value, v));
    }
    json_object_object_foreach(out, okey, ovalue)
    {
        (void)ovalue;
        FUZZ_CHECK(json_object_object_get_ex(in, okey, NULL) || strcmp(okey, extra) == 0);
    }
}

/* The client's user_id, as s2a_body_for_account reads it. */
static const char *client_user_id(apr_pool_t *p, const s2a_body *b, s2a_json_span *uid)
{
    if (b->f.metadata.type == S2A_JSON_OBJECT &&
        s2a_json_object_get(&b->f.metadata, "user_id", uid)) {
        return uid->type == S2A_JSON_STRING ? s2a_json_string_dup(p, uid) : NULL;
    }
    uid->type = S2A_JSON_NONE;
    return NULL;
}

/* The pieces, `total` bytes in all, as one buffer. */
static char *joined_pieces(apr_pool_t *p, const apr_array_header_t *pieces, size_t total)
{
    char *joined = apr_palloc(p, total + 1), *o = joined;
    int i;
    for (i = 0; i < pieces->nelts; i++) {
        const s2a_piece *c = &APR_ARRAY_IDX(pieces, i, s2a_piece);
        memcpy(o, c->p, c->len);
        o += c->len;
    }
    return joined;
}

static void check_sent(apr_pool_t *p, const s2a_body *b, const s2a_body_edits *e,
                       json_object *in_plain, json_object *in_strict)
{
    apr_array_header_t *pieces;
    s2a_json_span uid;
    const char *original = client_user_id(p, b, &uid), *at = b->raw, *quoted;
    char *joined;
    size_t total = 0;
    int renamed = -1, i, edited_model = 0, edited_uid = 0, meta;
    json_object *out, *v, *m;

    pieces = s2a_body_for_account(p, b, e, &renamed);
    FUZZ_CHECK(renamed == (strcmp(b->model, e->upstream_model) != 0));
    meta = e->add_metadata || b->f.metadata.type == S2A_JSON_OBJECT;
    FUZZ_CHECK(pieces->nelts == 1 + 2 * (renamed + meta));
    quoted = s2a_json_quote(p, e->upstream_model);
    /* the client's stretches, in order, with only the edited spans between */
    for (i = 0; i < pieces->nelts; i += 2) {
        const s2a_piece *c = &APR_ARRAY_IDX(pieces, i, s2a_piece);
        if (c->p != at) {
            size_t gap = (size_t)(c->p - at);
            FUZZ_CHECK(c->p > at);
            if (renamed && at == b->f.model.p && gap == b->f.model.len) {
                edited_model++;
            } else {
                FUZZ_CHECK(uid.type != S2A_JSON_NONE && at == uid.p && gap == uid.len);
                edited_uid++;
            }
        }
        FUZZ_CHECK(c->p >= b->raw && c->len <= b->len &&
                   (size_t)(c->p - b->raw) <= b->len - c->len);
        at = c->p + c->len;
        total += c->len;
        if (i + 1 < pieces->nelts) {
            total += APR_ARRAY_IDX(pieces, i + 1, s2a_piece).len;
        }
    }
    FUZZ_CHECK(at == b->raw + b->len);
    FUZZ_CHECK(edited_model == renamed && edited_uid <= 1);
    FUZZ_CHECK(edited_uid == (meta && uid.type != S2A_JSON_NONE));
    joined = joined_pieces(p, pieces, total);
    for (i = 0; i < 2; i++) {
        json_object *in = i ? in_strict : in_plain;
        if (!in) {
            continue;
        }
        out = parse(joined, total, i);
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(json_object_object_get_ex(out, "model", &v) &&
                   json_object_is_type(v, json_type_string));
        if (renamed) {
            FUZZ_CHECK(strcmp(json_object_get_string(v),
                              s2a_json_string_dup(p, &(s2a_json_span){quoted, strlen(quoted),
                                                                      S2A_JSON_STRING})) == 0);
        }
        same_members(in, out, "model", "metadata", "metadata");
        if (meta) {
            const char *ps = s2a_identity_pseudonym(p, (const unsigned char *)e->secret,
                                                    strlen(e->secret), e->user_id, e->account_id);
            json_object *in_meta = NULL;
            FUZZ_CHECK(json_object_object_get_ex(out, "metadata", &m) &&
                       json_object_object_get_ex(m, "user_id", &v) &&
                       json_object_is_type(v, json_type_string));
            FUZZ_CHECK(strcmp(json_object_get_string(v), s2a_identity_user_id(p, ps, original)) ==
                       0);
            if (json_object_object_get_ex(in, "metadata", &in_meta)) {
                same_members(in_meta, m, "user_id", NULL, "user_id");
            }
        } else {
            FUZZ_CHECK(!json_object_object_get_ex(out, "metadata", NULL));
        }
        json_object_put(out);
    }
}

/* Whether a member is one a cloud's body loses or gains. */
static int cloud_member(const char *key, int bedrock)
{
    return strcmp(key, "model") == 0 || strcmp(key, "anthropic_version") == 0 ||
           (bedrock ? strcmp(key, "stream") == 0 || strcmp(key, "metadata") == 0 ||
                          strcmp(key, "anthropic_beta") == 0
                    : strcmp(key, "metadata") == 0);
}

/* A cloud's body: JSON whatever the client's spelling, without the members
 * the cloud refuses, anthropic_version first, everything else as sent. */
static void check_cloud(apr_pool_t *p, const s2a_body *b, int bedrock, json_object *in_plain,
                        json_object *in_strict)
{
    apr_array_header_t *pieces;
    s2a_body_edits e;
    size_t total = 0;
    char *joined, *first;
    int renamed = 0, i;
    json_object *out, *v;

    memset(&e, 0, sizeof(e));
    e.upstream_model = "us.anthropic.m-v1:0";
    e.secret = secret;
    e.user_id = 7;
    e.account_id = 9;
    e.drop_model = 1;
    e.anthropic_version = bedrock ? "bedrock-2023-05-31" : "vertex-2023-10-16";
    if (bedrock) {
        e.drop_stream = e.drop_metadata = 1;
        e.betas = "a-1, b-2";
    } else {
        e.add_metadata = 1;
    }
    pieces = s2a_body_for_account(p, b, &e, &renamed);
    FUZZ_CHECK(renamed == 1);
    for (i = 0; i < pieces->nelts; i++) {
        total += APR_ARRAY_IDX(pieces, i, s2a_piece).len;
    }
    joined = joined_pieces(p, pieces, total);
    /* first in the object, after any space before it */
    FUZZ_CHECK((first = memchr(joined, '{', total)) != NULL &&
               (size_t)(first - joined) + 22 <= total &&
               memcmp(first, "{\"anthropic_version\":\"", 22) == 0);
    for (i = 0; i < 2; i++) {
        json_object *in = i ? in_strict : in_plain;
        if (!in) {
            continue;
        }
        out = parse(joined, total, i);
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(!json_object_object_get_ex(out, "model", NULL));
        FUZZ_CHECK(json_object_object_get_ex(out, "anthropic_version", &v) &&
                   strcmp(json_object_get_string(v), e.anthropic_version) == 0);
        if (bedrock) {
            FUZZ_CHECK(!json_object_object_get_ex(out, "stream", NULL) &&
                       !json_object_object_get_ex(out, "metadata", NULL));
            FUZZ_CHECK(json_object_object_get_ex(out, "anthropic_beta", &v) &&
                       json_object_array_length(v) == 2);
        } else {
            FUZZ_CHECK(json_object_object_get_ex(out, "metadata", &v) &&
                       json_object_object_get_ex(v, "user_id", NULL));
        }
        json_object_object_foreach(in, key, value)
        {
            json_object *w;
            if (!cloud_member(key, bedrock)) {
                FUZZ_CHECK(json_object_object_get_ex(out, key, &w) && same(value, w));
            }
        }
        json_object_object_foreach(out, okey, ovalue)
        {
            (void)ovalue;
            FUZZ_CHECK(json_object_object_get_ex(in, okey, NULL) || cloud_member(okey, bedrock));
        }
        json_object_put(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    const char *raw = fuzz_copy(p, data, size, 0), *err = NULL;
    s2a_body b;
    s2a_usage est;
    json_object *plain, *strict;
    int i;

    check_endpoint(p, fuzz_copy(p, data, size, 1));
    if (s2a_body_read(p, raw, size, &b, &err) != 0) {
        FUZZ_CHECK(err && *err);
        apr_pool_destroy(p);
        return 0;
    }
    FUZZ_CHECK(b.raw == raw && b.len == size && b.model && *b.model);
    FUZZ_CHECK(b.f.model.type == S2A_JSON_STRING && b.f.messages.type == S2A_JSON_ARRAY);
    FUZZ_CHECK(b.stream == (b.f.stream.type == S2A_JSON_TRUE));
    FUZZ_CHECK(b.f.metadata.type == S2A_JSON_NONE || b.f.metadata.type == S2A_JSON_OBJECT);
    s2a_body_estimate(&b, &est);
    FUZZ_CHECK(est.input == (apr_int64_t)size / S2A_BYTES_PER_TOKEN && est.output > 0);
    FUZZ_CHECK(s2a_body_session(p, &b, 3, 4, NULL) == s2a_body_session(p, &b, 3, 4, NULL));
    plain = parse(raw, size, 0);
    strict = parse(raw, size, 1);
    for (i = 0; i < 4; i++) {
        /* another model (one that needs escapes too), the same one; with and
         * without metadata added */
        s2a_body_edits e;
        memset(&e, 0, sizeof(e));
        e.upstream_model = i == 2 ? "m\"\\\x01\xff" : i == 3 ? b.model : "claude-upstream-x";
        e.secret = secret;
        e.user_id = 7;
        e.account_id = 9;
        e.add_metadata = i % 2 == 0;
        check_sent(p, &b, &e, plain, strict);
    }
    check_cloud(p, &b, 1, plain, strict);
    check_cloud(p, &b, 0, plain, strict);
    json_object_put(plain);
    json_object_put(strict);
    apr_pool_destroy(p);
    return 0;
}
