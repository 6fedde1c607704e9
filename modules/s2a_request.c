/* The body of a Messages request: see s2a_request.h. */
#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "s2a_buf.h"
#include "s2a_identity.h"
#include "s2a_request.h"
#include "s2a_session.h"

static int ends_with(const char *s, apr_size_t n, const char *suffix)
{
    apr_size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

const char *s2a_endpoint_model_id(const char *path)
{
    const char *models = strstr(path, "/v1/models/"), *next;
    while (models && (next = strstr(models + 1, "/v1/models/"))) {
        models = next;
    }
    return models && models[11] && !strchr(models + 11, '/') ? models + 11 : NULL;
}

s2a_endpoint s2a_endpoint_of(const char *path)
{
    apr_size_t n = strlen(path);
    if (ends_with(path, n, "/v1/messages")) {
        return S2A_ENDPOINT_MESSAGES;
    }
    if (ends_with(path, n, "/v1/messages/count_tokens")) {
        return S2A_ENDPOINT_COUNT_TOKENS;
    }
    if (ends_with(path, n, "/v1/models")) {
        return S2A_ENDPOINT_MODELS;
    }
    if (ends_with(path, n, "/v1/usage")) {
        return S2A_ENDPOINT_USAGE;
    }
    if (ends_with(path, n, "/v1/redeem")) {
        return S2A_ENDPOINT_REDEEM;
    }
    if (ends_with(path, n, "/v1/chat/completions")) {
        return S2A_ENDPOINT_CHAT;
    }
    if (ends_with(path, n, "/v1/responses")) {
        return S2A_ENDPOINT_RESPONSES;
    }
    return s2a_endpoint_model_id(path) ? S2A_ENDPOINT_MODEL : S2A_ENDPOINT_NONE;
}

/* Whether a tool's "type" begins with `prefix`: compared as sent, or decoded
 * when it holds an escape (a server tool spelled with \u escapes is the same
 * tool to the upstream). */
static int type_begins(apr_pool_t *p, const s2a_json_span *type, const char *prefix)
{
    apr_size_t n = strlen(prefix);
    const char *text;
    if (!memchr(type->p, '\\', type->len)) {
        return type->len > n + 1 && memcmp(type->p + 1, prefix, n) == 0;
    }
    text = s2a_json_string_dup(p, type);
    return text && strncmp(text, prefix, n) == 0;
}

/* What the scan notes of a "tools" array: the server tools (S2A_TOOL_*) among
 * the "type"s of its tools; anything else is the upstream's to judge. */
typedef struct {
    apr_pool_t *p;
    int found;
} tool_types;

static void note_tool_type(void *ctx, const s2a_json_span *type)
{
    static const struct {
        const char *prefix;
        int tool;
    } kinds[] = {{"web_search_", S2A_TOOL_WEB_SEARCH},
                 {"web_fetch_", S2A_TOOL_WEB_FETCH},
                 {"code_execution_", S2A_TOOL_CODE_EXECUTION}};
    tool_types *t = ctx;
    apr_size_t k;

    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (type_begins(t->p, type, kinds[k].prefix)) {
            t->found |= kinds[k].tool;
        }
    }
}

/* The kinds of the fields found: what s2a_body_read promises. */
static int check_fields(apr_pool_t *p, s2a_body *out, const char **err)
{
    const s2a_body_fields *f = &out->f;

    if (f->model.type != S2A_JSON_STRING || !(out->model = s2a_json_string_dup(p, &f->model)) ||
        !*out->model) {
        *err = "model: a non-empty string is required";
        return -1;
    }
    if (f->messages.type != S2A_JSON_ARRAY) {
        *err = "messages: an array is required";
        return -1;
    }
    if (f->stream.type != S2A_JSON_NONE && f->stream.type != S2A_JSON_TRUE &&
        f->stream.type != S2A_JSON_FALSE) {
        *err = "stream: must be a boolean";
        return -1;
    }
    if (f->metadata.type != S2A_JSON_NONE && f->metadata.type != S2A_JSON_OBJECT) {
        *err = "metadata: must be an object";
        return -1;
    }
    out->stream = f->stream.type == S2A_JSON_TRUE;
    return 0;
}

int s2a_body_read(apr_pool_t *p, const char *raw, apr_size_t len, s2a_body *out, const char **err)
{
    static const char *const names[] = {"model",  "messages",   "stream", "metadata",
                                        "system", "max_tokens", "tools"};
    s2a_json_span spans[7];
    s2a_body_fields *f = &out->f;
    tool_types tools = {p, 0};
    /* "tools" (the last) only delimited, the upstream validating it, and
     * read for its server tools on the way */
    const s2a_json_member_note tool_note = {6, "type", note_tool_type, &tools};
    int rc;

    memset(out, 0, sizeof(*out));
    out->raw = raw;
    out->len = len;
    rc = s2a_json_scan_object_noting(p, raw, len, names, 7, 6, &tool_note, spans, err);
    if (rc != 0) {
        if (rc == -1) {
            *err = apr_pstrcat(p, "The request body is not valid JSON: ", *err, NULL);
        }
        return -1;
    }
    f->model = spans[0];
    f->messages = spans[1];
    f->stream = spans[2];
    f->metadata = spans[3];
    f->system = spans[4];
    f->max_tokens = spans[5];
    f->tools = spans[6];
    if (check_fields(p, out, err) != 0) {
        return -1;
    }
    out->server_tools = tools.found;
    return 0;
}

static s2a_json_span span_of(const char *raw, apr_size_t len, const s2a_body_mark *m)
{
    s2a_json_span v = {NULL, 0, S2A_JSON_NONE};
    if (!m->len || m->off > len || m->len > len - m->off) {
        return v;
    }
    v.p = raw + m->off;
    v.len = m->len;
    switch (*v.p) {
    case '"':
        v.type = S2A_JSON_STRING;
        break;
    case '{':
        v.type = S2A_JSON_OBJECT;
        break;
    case '[':
        v.type = S2A_JSON_ARRAY;
        break;
    case 't':
        v.type = S2A_JSON_TRUE;
        break;
    case 'f':
        v.type = S2A_JSON_FALSE;
        break;
    case 'n':
        v.type = S2A_JSON_NULL;
        break;
    default:
        v.type = S2A_JSON_NUMBER;
        break;
    }
    return v;
}

int s2a_body_read_built(apr_pool_t *p, const char *raw, apr_size_t len, const s2a_body_marks *marks,
                        s2a_body *out, const char **err)
{
    s2a_body_fields *f = &out->f;

    memset(out, 0, sizeof(*out));
    out->raw = raw;
    out->len = len;
    f->model = span_of(raw, len, &marks->model);
    f->messages = span_of(raw, len, &marks->messages);
    f->stream = span_of(raw, len, &marks->stream);
    f->metadata = span_of(raw, len, &marks->metadata);
    f->system = span_of(raw, len, &marks->system);
    f->max_tokens = span_of(raw, len, &marks->max_tokens);
    f->tools = span_of(raw, len, &marks->tools);
    return check_fields(p, out, err);
}

int s2a_body_tools_refused(apr_pool_t *p, const s2a_body *b, const s2a_price *price,
                           int group_allows, const char **message)
{
    if (!b->server_tools) {
        return 0;
    }
    if (!group_allows) {
        *message = "Server tools (web search, web fetch, code execution) are not available to "
                   "this API key's group";
        return 403;
    }
    if (b->server_tools & S2A_TOOL_CODE_EXECUTION) {
        *message = "tools: code_execution has no price on this gateway";
        return 400;
    }
    if ((b->server_tools & S2A_TOOL_WEB_SEARCH) && (!price || !price->web_search_set)) {
        *message = "tools: web_search has no price on this gateway for this model";
        return 400;
    }
    (void)p;
    return 0;
}

/* Insertions (no length) go before a removal at the same place. */
static int edit_before(const void *a, const void *b)
{
    const s2a_json_edit *x = a, *y = b;
    if (x->off != y->off) {
        return x->off < y->off ? -1 : 1;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The pseudonym in the form the client used, given its metadata.user_id
 * (NULL: none), quoted. */
static const char *user_id_value(apr_pool_t *p, const s2a_body_edits *e, const char *original)
{
    const char *ps = s2a_identity_pseudonym(p, (const unsigned char *)e->secret, strlen(e->secret),
                                            e->user_id, e->account_id);
    return s2a_json_quote(p, s2a_identity_user_id(p, ps, original));
}

/* The new metadata.user_id over the client's value, or as the first member
 * of its metadata. 0 when the body has no metadata object: the caller puts
 * one first in the body. */
static int user_id_edit(apr_pool_t *p, const s2a_body *b, const s2a_body_edits *e,
                        s2a_json_edit *out)
{
    const s2a_json_span *meta = &b->f.metadata;
    const char *original = NULL;
    s2a_json_span uid;

    if (meta->type != S2A_JSON_OBJECT) {
        return 0;
    }
    if (s2a_json_object_get(meta, "user_id", &uid)) {
        if (uid.type == S2A_JSON_STRING) {
            original = s2a_json_string_dup(p, &uid);
        }
        out->off = (apr_size_t)(uid.p - b->raw);
        out->len = uid.len;
        out->text = user_id_value(p, e, original);
    } else {
        const char *in = meta->p + 1;
        while (is_space(*in)) {
            in++;
        }
        out->off = (apr_size_t)(meta->p + 1 - b->raw);
        out->len = 0;
        out->text =
            apr_pstrcat(p, "\"user_id\":", user_id_value(p, e, NULL), *in == '}' ? "" : ",", NULL);
    }
    out->text_len = strlen(out->text);
    return 1;
}

/* Where the top-level member whose value is `v` begins: its key's opening
 * quote. The body is valid JSON (s2a_body_read) and the key a plain name,
 * so that quote is the first '"' back from the key's closing one. */
static const char *member_start(const s2a_json_span *v)
{
    const char *at = v->p;
    while (is_space(at[-1])) {
        at--;
    }
    at -= 2; /* the ':' and the key's closing quote */
    while (is_space(at[0])) {
        at--;
    }
    while (at[-1] != '"') {
        at--;
    }
    return at - 1;
}

static int span_before(const void *a, const void *b)
{
    const s2a_json_edit *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Edits taking out the top-level members whose values are vals[0..n): the
 * members next to each other go as one run, with the comma after the run,
 * or before it when the run ends the object. Returns the edits written. */
static int removals(const s2a_body *b, const s2a_json_span *const *vals, int n, s2a_json_edit *out)
{
    const char *raw = b->raw, *end = b->raw + b->len;
    int i, runs = 0;
    for (i = 0; i < n; i++) {
        out[i].off = (apr_size_t)(member_start(vals[i]) - raw);
        out[i].len = (apr_size_t)(vals[i]->p + vals[i]->len - raw) - out[i].off;
        out[i].text = "";
        out[i].text_len = 0;
    }
    qsort(out, (size_t)n, sizeof(out[0]), span_before);
    for (i = 0; i < n; i++) {
        const char *gap = raw + out[i].off + out[i].len, *from;
        if (runs && out[runs - 1].off + out[runs - 1].len == out[i].off) {
            out[runs - 1].len += out[i].len;
            continue;
        }
        if (runs) {
            /* only a comma between the last run and this member: one run */
            from = raw + out[runs - 1].off + out[runs - 1].len;
            while (is_space(*from)) {
                from++;
            }
            if (*from == ',') {
                from++;
                while (is_space(*from)) {
                    from++;
                }
                if (from == raw + out[i].off) {
                    out[runs - 1].len = (apr_size_t)(gap - raw) - out[runs - 1].off;
                    continue;
                }
            }
        }
        out[runs++] = out[i];
    }
    for (i = 0; i < runs; i++) {
        const char *after = raw + out[i].off + out[i].len, *before = raw + out[i].off;
        while (after < end && is_space(*after)) {
            after++;
        }
        if (after < end && *after == ',') {
            out[i].len = (apr_size_t)(after + 1 - raw) - out[i].off;
            continue;
        }
        while (before > raw && is_space(before[-1])) {
            before--;
        }
        if (before > raw && before[-1] == ',') {
            out[i].len += out[i].off - (apr_size_t)(before - 1 - raw);
            out[i].off = (apr_size_t)(before - 1 - raw);
        }
    }
    return runs;
}

/* anthropic-beta's comma-separated names as a JSON array. The names are plain words,
 * written between quotes as they are; one with other bytes goes through the quoting. */
static const char *beta_array(apr_pool_t *p, const char *betas)
{
    static const char separators[] = ", \t";
    const char *s = betas + strspn(betas, separators);
    s2a_buf out;

    s2a_buf_init(&out, p, strlen(betas) * 3 + 3);
    s2a_buf_append(&out, "[", 1);
    while (*s) {
        apr_size_t len = strcspn(s, separators), i;

        for (i = 0; i < len && (apr_isalnum(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.');
             i++)
            ;
        if (out.len > 1) {
            s2a_buf_append(&out, ",", 1);
        }
        if (i == len) {
            s2a_buf_append(&out, "\"", 1);
            s2a_buf_append(&out, s, len);
            s2a_buf_append(&out, "\"", 1);
        } else {
            const char *quoted = s2a_json_quote(p, apr_pstrmemdup(p, s, len));
            s2a_buf_append(&out, quoted, strlen(quoted));
        }
        s += len;
        s += strspn(s, separators);
    }
    s2a_buf_append(&out, "]", 1);
    return out.data;
}

apr_array_header_t *s2a_body_for_account(apr_pool_t *p, const s2a_body *b, const s2a_body_edits *e,
                                         int *renamed)
{
    apr_array_header_t *pieces;
    const s2a_json_span *gone[3];
    s2a_json_edit edits[6];
    const char *first = "";
    apr_size_t at = 0;
    int n = 0, out = 0, i;

    *renamed = e->drop_model || strcmp(b->model, e->upstream_model) != 0;
    if (e->drop_model) {
        gone[out++] = &b->f.model;
    } else if (*renamed) {
        edits[n].off = (apr_size_t)(b->f.model.p - b->raw);
        edits[n].len = b->f.model.len;
        edits[n].text = s2a_json_quote(p, e->upstream_model);
        edits[n].text_len = strlen(edits[n].text);
        n++;
    }
    if (e->drop_stream && b->f.stream.type != S2A_JSON_NONE) {
        gone[out++] = &b->f.stream;
    }
    if (e->drop_metadata) {
        if (b->f.metadata.type != S2A_JSON_NONE) {
            gone[out++] = &b->f.metadata;
        }
    } else if (e->add_metadata || b->f.metadata.type == S2A_JSON_OBJECT) {
        if (user_id_edit(p, b, e, &edits[n])) {
            n++;
        } else {
            first =
                apr_pstrcat(p, "\"metadata\":{\"user_id\":", user_id_value(p, e, NULL), "},", NULL);
        }
    }
    if (e->betas && *e->betas) {
        first = apr_pstrcat(p, "\"anthropic_beta\":", beta_array(p, e->betas), ",", first, NULL);
    }
    if (e->add_max_tokens && b->f.max_tokens.type == S2A_JSON_NONE) {
        first = apr_pstrcat(p, "\"max_tokens\":1,", first, NULL);
    }
    if (e->anthropic_version) {
        first = apr_pstrcat(p, "\"anthropic_version\":", s2a_json_quote(p, e->anthropic_version),
                            ",", first, NULL);
    }
    if (*first) {
        /* messages is never taken out: a member always follows */
        edits[n].off = (apr_size_t)((const char *)memchr(b->raw, '{', b->len) + 1 - b->raw);
        edits[n].len = 0;
        edits[n].text = first;
        edits[n].text_len = strlen(first);
        n++;
    }
    n += removals(b, gone, out, edits + n);
    qsort(edits, (size_t)n, sizeof(edits[0]), edit_before);
    pieces = apr_array_make(p, 2 * n + 1, sizeof(s2a_piece));
    for (i = 0; i < n; i++) {
        s2a_piece *before = apr_array_push(pieces), *text = apr_array_push(pieces);
        before->p = b->raw + at;
        before->len = edits[i].off - at;
        text->p = edits[i].text;
        text->len = edits[i].text_len;
        at = edits[i].off + edits[i].len;
    }
    APR_ARRAY_PUSH(pieces, s2a_piece).p = b->raw + at;
    APR_ARRAY_IDX(pieces, pieces->nelts - 1, s2a_piece).len = b->len - at;
    return pieces;
}

apr_uint64_t s2a_body_session(apr_pool_t *p, const s2a_body *b, apr_int64_t group_id,
                              apr_int64_t user_id, const char *session_header)
{
    s2a_json_span uid;
    const char *client_user_id = NULL;
    if (b->f.metadata.type == S2A_JSON_OBJECT &&
        s2a_json_object_get(&b->f.metadata, "user_id", &uid) && uid.type == S2A_JSON_STRING) {
        client_user_id = s2a_json_string_dup(p, &uid);
    }
    return s2a_session_key(p, group_id, user_id, session_header, client_user_id, &b->f.system,
                           &b->f.messages);
}

void s2a_body_estimate(const s2a_body *b, s2a_usage *out)
{
    const s2a_json_span *mt = &b->f.max_tokens;
    memset(out, 0, sizeof(*out));
    out->input = (apr_int64_t)b->len / S2A_BYTES_PER_TOKEN;
    out->output = S2A_ESTIMATE_MAX_TOKENS;
    if (mt->type == S2A_JSON_NUMBER && mt->len < 9) {
        char digits[9];
        apr_int64_t v;
        memcpy(digits, mt->p, mt->len);
        digits[mt->len] = '\0';
        v = apr_atoi64(digits);
        if (v > 0) {
            out->output = v;
        }
    }
}
