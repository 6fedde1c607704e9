/* The JSON scanner and splicer (s2a_json.h) on hostile bytes: the spans of a
 * scanned object are the values json-c reads there, object_get and
 * array_next walk them as json-c does, decoded strings survive quoting,
 * splices build exactly the buffer their edits describe (or refuse), and
 * prefix_find_model never changes its mind as bytes arrive. */
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_json.h"

static const char *const keys[] = {"model", "messages", "metadata", "stream", "usage", "content"};
#define NKEYS ((int)(sizeof(keys) / sizeof(keys[0])))

/* Keys object_get is asked for inside every object met. */
static const char *const inner_keys[] = {"user_id", "type", "text", "model", "a"};

/* How many spans the walk may visit per input: deep inputs stay quick. */
#define WALK_BUDGET 2000

/* json-c's reading of buf, NULL when it refuses it or when buf escapes a
 * NUL: json-c cuts such keys there, a reading no API upstream shares. */
static json_object *parse_all(const char *buf, size_t len)
{
    json_tokener *tok;
    json_object *o;
    size_t end;

    if (memmem(buf, len, "\\u0000", 6)) {
        return NULL;
    }
    tok = json_tokener_new_ex(2 * S2A_JSON_MAX_DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, buf, (int)len);
    if (o && json_tokener_get_error(tok) == json_tokener_success) {
        for (end = json_tokener_get_parse_end(tok); end < len; end++) {
            if (!strchr(" \t\r\n", buf[end]) || buf[end] == '\0') {
                json_object_put(o);
                o = NULL;
                break;
            }
        }
    } else {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static int in_span(const s2a_json_span *outer, const s2a_json_span *inner)
{
    return inner->p >= outer->p && inner->len <= outer->len &&
           (size_t)(inner->p - outer->p) <= outer->len - inner->len;
}

static int type_fits(const s2a_json_span *v)
{
    if (!v->len) {
        return 0;
    }
    switch (v->type) {
    case S2A_JSON_STRING:
        return v->p[0] == '"' && v->len >= 2 && v->p[v->len - 1] == '"';
    case S2A_JSON_OBJECT:
        return v->p[0] == '{' && v->p[v->len - 1] == '}';
    case S2A_JSON_ARRAY:
        return v->p[0] == '[' && v->p[v->len - 1] == ']';
    case S2A_JSON_TRUE:
        return v->p[0] == 't';
    case S2A_JSON_FALSE:
        return v->p[0] == 'f';
    case S2A_JSON_NULL:
        return v->p[0] == 'n';
    case S2A_JSON_NUMBER:
        return v->p[0] == '-' || (v->p[0] >= '0' && v->p[0] <= '9');
    default:
        return 0;
    }
}

/* A decoded string quoted and decoded again is itself with invalid UTF-8
 * replaced: quoting that once more changes nothing. */
static void check_string(apr_pool_t *p, const s2a_json_span *v)
{
    char *d = s2a_json_string_dup(p, v), *q, *d2, *longer;
    s2a_json_span again;

    if (!d) {
        return;
    }
    FUZZ_CHECK(strlen(d) <= v->len - 2);
    FUZZ_CHECK(s2a_json_string_equals(v, d));
    longer = apr_pstrcat(p, d, "x", NULL);
    FUZZ_CHECK(!s2a_json_string_equals(v, longer));
    q = s2a_json_quote(p, d);
    again.p = q;
    again.len = strlen(q);
    again.type = S2A_JSON_STRING;
    d2 = s2a_json_string_dup(p, &again);
    FUZZ_CHECK(d2 != NULL);
    FUZZ_CHECK(strcmp(s2a_json_quote(p, d2), q) == 0);
}

/* Whether ours is theirs (json-c's reading), but for json-c's slip: some
 * valid surrogate pairs ("\ud836\ude00") come out of json-c 0.16 as
 * U+FFFD where the pair's 4-byte character belongs. */
static int same_but_for_slips(const char *ours, const char *theirs)
{
    while (*ours && *theirs) {
        if (*ours == *theirs) {
            ours++;
            theirs++;
        } else if ((unsigned char)*ours >= 0xF0 && strncmp(theirs, "\xEF\xBF\xBD", 3) == 0 &&
                   ours[1] && ours[2] && ours[3]) {
            ours += 4;
            theirs += 3;
        } else {
            return 0;
        }
    }
    return !*ours && !*theirs;
}

/* The span v holds the value json-c read as j (NULL: json-c has none). */
static void check_value(apr_pool_t *p, const s2a_json_span *v, json_object *j, int *budget)
{
    static const json_type of[] = {
        [S2A_JSON_STRING] = json_type_string, [S2A_JSON_NUMBER] = json_type_int,
        [S2A_JSON_OBJECT] = json_type_object, [S2A_JSON_ARRAY] = json_type_array,
        [S2A_JSON_TRUE] = json_type_boolean,  [S2A_JSON_FALSE] = json_type_boolean,
        [S2A_JSON_NULL] = json_type_null};
    s2a_json_span el;
    apr_size_t pos = 0;
    size_t i, n;

    if (--*budget < 0) {
        return;
    }
    FUZZ_CHECK(type_fits(v));
    if (j) {
        json_type t = json_object_get_type(j);
        FUZZ_CHECK(v->type == S2A_JSON_NUMBER ? t == json_type_int || t == json_type_double
                                              : t == of[v->type]);
    }
    if (v->type == S2A_JSON_STRING) {
        check_string(p, v);
        if (j && strlen(json_object_get_string(j)) == (size_t)json_object_get_string_len(j)) {
            const char *d = s2a_json_string_dup(p, v);
            /* json-c keeps unpaired surrogates, which s2a_json_string_dup refuses */
            FUZZ_CHECK(!d || same_but_for_slips(d, json_object_get_string(j)));
        }
    } else if (v->type == S2A_JSON_OBJECT) {
        for (i = 0; i < sizeof(inner_keys) / sizeof(inner_keys[0]); i++) {
            json_object *jv = NULL;
            int found = s2a_json_object_get(v, inner_keys[i], &el);
            if (found) {
                FUZZ_CHECK(in_span(v, &el));
            }
            if (j) {
                FUZZ_CHECK(found == json_object_object_get_ex(j, inner_keys[i], &jv));
            }
            if (found) {
                check_value(p, &el, jv, budget);
            }
        }
    } else if (v->type == S2A_JSON_ARRAY) {
        n = 0;
        while (s2a_json_array_next(v, &pos, &el)) {
            FUZZ_CHECK(in_span(v, &el));
            FUZZ_CHECK(pos <= v->len);
            if (j) {
                FUZZ_CHECK(n < json_object_array_length(j));
            }
            check_value(p, &el, j ? json_object_array_get_idx(j, n) : NULL, budget);
            n++;
            if (*budget < 0) {
                return;
            }
        }
        if (j) {
            FUZZ_CHECK(n == json_object_array_length(j));
        }
    }
}

/* The splice of buf by edits, built the plain way: NULL when two edits
 * overlap (a replacement overlaps what another one covers or inserts into
 * it) or one lies outside. */
static char *splice_model(apr_pool_t *p, const char *buf, size_t len, const s2a_json_edit *e, int n,
                          size_t *out_len)
{
    int order[16], i, j, k;
    size_t pos = 0, o = 0, total = len;
    char *out;

    for (i = 0; i < n; i++) {
        if (e[i].off > len || e[i].len > len - e[i].off) {
            return NULL;
        }
    }
    for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++) {
            int starts_inside = e[j].off > e[i].off && e[j].off < e[i].off + e[i].len;
            int same_start = i < j && e[j].off == e[i].off && e[i].len && e[j].len;
            if (starts_inside || same_start) {
                return NULL;
            }
        }
    }
    /* by offset; at one offset insertions first, each in the caller's order */
    for (i = 0; i < n; i++) {
        order[i] = i;
    }
    for (i = 1; i < n; i++) {
        for (k = i; k > 0; k--) {
            const s2a_json_edit *a = &e[order[k - 1]], *b = &e[order[k]];
            int before = b->off < a->off || (b->off == a->off && b->len == 0 && a->len != 0);
            if (!before) {
                break;
            }
            j = order[k];
            order[k] = order[k - 1];
            order[k - 1] = j;
        }
    }
    for (i = 0; i < n; i++) {
        total = total - e[i].len + e[i].text_len;
    }
    out = apr_palloc(p, total + 1);
    for (i = 0; i < n; i++) {
        const s2a_json_edit *x = &e[order[i]];
        memcpy(out + o, buf + pos, x->off - pos);
        o += x->off - pos;
        memcpy(out + o, x->text, x->text_len);
        o += x->text_len;
        pos = x->off + x->len;
    }
    memcpy(out + o, buf + pos, len - pos);
    *out_len = total;
    return out;
}

static uint64_t mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void check_splice(apr_pool_t *p, const char *buf, size_t len, s2a_json_edit *edits, int n)
{
    s2a_json_edit before[16];
    size_t got_len = 0, want_len = 0;
    char *got, *want;

    memcpy(before, edits, sizeof(edits[0]) * (size_t)n);
    got = s2a_json_splice(p, buf, len, edits, n, &got_len);
    want = splice_model(p, buf, len, edits, n, &want_len);
    FUZZ_CHECK(memcmp(before, edits, sizeof(edits[0]) * (size_t)n) == 0);
    FUZZ_CHECK((got == NULL) == (want == NULL));
    if (got) {
        FUZZ_CHECK(got_len == want_len);
        FUZZ_CHECK(memcmp(got, want, got_len) == 0);
        FUZZ_CHECK(got[got_len] == '\0');
    }
}

/* Edits at places and of lengths the input's hash picks, near each other so
 * that overlaps and shared offsets are common. */
static void random_splices(apr_pool_t *p, const char *buf, size_t len)
{
    static const char *const texts[] = {"", "\"x\"", "null", "{\"k\":[1,2]}", ","};
    s2a_json_edit edits[16];
    uint64_t state = len;
    size_t i;
    int round, n, k;

    for (i = 0; i < len; i++) {
        state = state * 131 + (unsigned char)buf[i];
    }
    for (round = 0; round < 4; round++) {
        n = (int)(mix(&state) % 6);
        for (k = 0; k < n; k++) {
            uint64_t r = mix(&state);
            const char *t = texts[r % 5];
            edits[k].off = (size_t)((r >> 8) % (len + 2));
            edits[k].len = (size_t)((r >> 24) % 5 == 0 ? 0 : (r >> 32) % 6);
            edits[k].text = t;
            edits[k].text_len = strlen(t);
        }
        check_splice(p, buf, len, edits, n);
    }
}

/* Every span found replaced, and a member inserted after the brace: the
 * object stays valid, with the new values where the old ones were (the
 * last occurrence of a repeated key is the one replaced). */
static void span_splices(apr_pool_t *p, const char *buf, size_t len, const s2a_json_span *spans)
{
    static const char *const values[] = {
        "\"claude-fuzz\"", "[]", "{\"user_id\":\"u\"}", "true", "{\"input_tokens\":1}", "null"};
    s2a_json_edit edits[NKEYS + 1];
    s2a_json_span again[NKEYS];
    const char *open = memchr(buf, '{', len), *first, *err;
    size_t out_len = 0;
    char *out;
    int i, n = 0;

    for (i = 0; i < NKEYS; i++) {
        if (spans[i].type != S2A_JSON_NONE) {
            edits[n].off = (size_t)(spans[i].p - buf);
            edits[n].len = spans[i].len;
            edits[n].text = values[i];
            edits[n].text_len = strlen(values[i]);
            n++;
        }
    }
    for (first = open + 1; strchr(" \t\r\n", *first); first++)
        ;
    edits[n].off = (size_t)(open + 1 - buf);
    edits[n].len = 0;
    edits[n].text = *first == '}' ? "\"added\":1" : "\"added\":1,";
    edits[n].text_len = strlen(edits[n].text);
    n++;
    check_splice(p, buf, len, edits, n);
    out = s2a_json_splice(p, buf, len, edits, n, &out_len);
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(s2a_json_scan_object(p, out, out_len, keys, NKEYS, again, &err) == 0);
    for (i = 0; i < NKEYS; i++) {
        if (spans[i].type == S2A_JSON_NONE) {
            FUZZ_CHECK(again[i].type == S2A_JSON_NONE);
        } else {
            FUZZ_CHECK(again[i].len == strlen(values[i]) &&
                       memcmp(again[i].p, values[i], again[i].len) == 0);
        }
    }
}

/* Answers on prefixes never change once given, and a whole object decides. */
static void check_prefix(const char *buf, size_t len, int scanned, const s2a_json_span *model)
{
    size_t cuts[10], off = 0, vlen = 0, first_off = 0, first_vlen = 0;
    int first = 0, i, n = 0, r;

    for (i = 0; i < 8; i++) {
        cuts[n++] = len * (size_t)i / 8;
    }
    cuts[n++] = len;
    for (i = 0; i < n; i++) {
        r = s2a_json_prefix_find_model(buf, cuts[i], &off, &vlen);
        FUZZ_CHECK(r >= -1 && r <= 1);
        if (first == 1) {
            FUZZ_CHECK(r == 1 && off == first_off && vlen == first_vlen);
        } else if (first == -1) {
            FUZZ_CHECK(r == -1);
        }
        if (r == 1) {
            FUZZ_CHECK(vlen >= 2 && off + vlen <= cuts[i]);
            FUZZ_CHECK(buf[off] == '"' && buf[off + vlen - 1] == '"');
            first_off = off;
            first_vlen = vlen;
        }
        if (r != 0) {
            first = r;
        }
    }
    if (scanned) {
        FUZZ_CHECK(first != 0);
        if (model->type == S2A_JSON_NONE) {
            FUZZ_CHECK(first == -1);
        }
    }
}

typedef struct {
    apr_pool_t *p;
    const char *values[64];
    int n;
    int more;
} noted;

static void note_type(void *ctx, const s2a_json_span *v)
{
    noted *t = ctx;
    FUZZ_CHECK(v->type == S2A_JSON_STRING && v->len >= 2 && v->p[0] == '"' &&
               v->p[v->len - 1] == '"');
    if (t->n < 64) {
        t->values[t->n++] = s2a_json_string_dup(t->p, v);
    } else {
        t->more = 1;
    }
}

/* Noting the "type" of "content"'s elements on the way accepts and refuses
 * as the scan without it does, and notes every such string json-c reads
 * there, in order (a member met twice is noted twice: json-c keeps the last). */
static void check_noting(apr_pool_t *p, const char *buf, size_t size, json_object *root)
{
    noted t = {p, {NULL}, 0, 0};
    const s2a_json_member_note n = {NKEYS - 1, "type", note_type, &t};
    s2a_json_span plain[NKEYS], spans[NKEYS];
    json_object *content;
    const char *err = NULL;
    int rc, i, k = 0;

    rc = s2a_json_scan_object_some(p, buf, size, keys, NKEYS, NKEYS - 1, plain, &err);
    FUZZ_CHECK(s2a_json_scan_object_noting(p, buf, size, keys, NKEYS, NKEYS - 1, &n, spans, &err) ==
               rc);
    if (rc != 0 || !root || t.more || !json_object_object_get_ex(root, "content", &content) ||
        !json_object_is_type(content, json_type_array)) {
        return;
    }
    for (i = 0; i < (int)json_object_array_length(content); i++) {
        json_object *el = json_object_array_get_idx(content, i), *type;
        if (json_object_is_type(el, json_type_object) &&
            json_object_object_get_ex(el, "type", &type) &&
            json_object_is_type(type, json_type_string)) {
            while (k < t.n && (!t.values[k] || strcmp(t.values[k], json_object_get_string(type))))
                k++;
            FUZZ_CHECK(k < t.n);
            k++;
        }
    }
}

typedef struct {
    apr_pool_t *p;
    const char *buf;
    size_t size;
    int depth;
    const char *last_end; /* where the last value noted ended */
} values_seen;

static void value_seen(void *ctx, int level, const s2a_json_span *name, const s2a_json_span *v)
{
    static const char *const key[] = {"v"};
    values_seen *t = ctx;
    s2a_json_span again;
    const char *err, *wrapped;

    FUZZ_CHECK(level >= 1 && level <= t->depth);
    FUZZ_CHECK(v->p >= t->buf && v->len && (size_t)(v->p - t->buf) + v->len <= t->size);
    /* values end in order: none ends before one noted earlier */
    FUZZ_CHECK(!t->last_end || v->p + v->len >= t->last_end);
    t->last_end = v->p + v->len;
    /* each is a whole JSON value of its type, and a member's name a string */
    wrapped = apr_pstrcat(t->p, "{\"v\":", apr_pstrmemdup(t->p, v->p, v->len), "}", NULL);
    FUZZ_CHECK(s2a_json_scan_object(t->p, wrapped, strlen(wrapped), key, 1, &again, &err) == 0 &&
               again.type == v->type);
    FUZZ_CHECK(name->type == S2A_JSON_NONE ||
               (name->type == S2A_JSON_STRING && name->len >= 2 && name->p[0] == '"'));
}

/* Reading the values inside "content" on the way accepts and refuses as the
 * checking scan does, and gives whole values of the buffer, in order. */
static void check_values(apr_pool_t *p, const char *buf, size_t size)
{
    values_seen t = {p, buf, size, 3, NULL};
    const s2a_json_values v = {NKEYS - 1, 3, value_seen, &t};
    s2a_json_span plain[NKEYS], spans[NKEYS];
    const char *err = NULL;
    int rc;

    if (memchr(buf, '\0', size)) {
        return; /* a wrapped value would be cut there */
    }
    rc = s2a_json_scan_object_some(p, buf, size, keys, NKEYS, NKEYS, plain, &err);
    FUZZ_CHECK(s2a_json_scan_object_values(p, buf, size, keys, NKEYS, &v, spans, &err) == rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    const char *buf = fuzz_copy(p, data, size, 0), *err = NULL;
    s2a_json_span spans[NKEYS];
    json_object *root = NULL;
    int rc, i, budget = WALK_BUDGET;

    rc = s2a_json_scan_object(p, buf, size, keys, NKEYS, spans, &err);
    FUZZ_CHECK(rc == 0 || (rc == -1 && err && *err));
    if (rc == 0) {
        root = parse_all(buf, size);
        if (root) {
            FUZZ_CHECK(json_object_is_type(root, json_type_object));
        }
        for (i = 0; i < NKEYS; i++) {
            json_object *j = NULL;
            if (root) {
                FUZZ_CHECK(json_object_object_get_ex(root, keys[i], &j) ==
                           (spans[i].type != S2A_JSON_NONE));
            }
            if (spans[i].type != S2A_JSON_NONE) {
                FUZZ_CHECK(spans[i].p >= buf && spans[i].len <= size &&
                           (size_t)(spans[i].p - buf) <= size - spans[i].len);
                check_value(p, &spans[i], j, &budget);
            }
        }
        span_splices(p, buf, size, spans);
    } else {
        for (i = 0; i < NKEYS; i++) {
            FUZZ_CHECK(spans[i].type == S2A_JSON_NONE || spans[i].p != NULL);
        }
    }
    check_noting(p, buf, size, root);
    check_values(p, buf, size);
    json_object_put(root);
    check_prefix(buf, size, rc == 0, &spans[0]);
    random_splices(p, buf, size);
    apr_pool_destroy(p);
    return 0;
}
