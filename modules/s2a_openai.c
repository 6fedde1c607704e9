/* What the OpenAI-compatible doors share: see s2a_openai.h. */
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <apr_strings.h>

#include "s2a_errors.h"
#include "s2a_openai.h"

/* ---- Errors ---------------------------------------------------------------------------- */

static void put_string_or_null(s2a_buf *b, const char *s)
{
    if (s) {
        s2a_openai_put_string(b, s);
    } else {
        S2A_PUT(b, "null");
    }
}

char *s2a_openai_error_body(apr_pool_t *p, const s2a_openai_error *e, apr_size_t *len)
{
    s2a_buf b;

    s2a_buf_init(&b, p, 256);
    S2A_PUT(&b, "{\"error\":{\"message\":");
    s2a_openai_put_string(&b, e->message ? e->message : "");
    S2A_PUT(&b, ",\"type\":");
    s2a_openai_put_string(&b, e->type ? e->type : "invalid_request_error");
    S2A_PUT(&b, ",\"param\":");
    put_string_or_null(&b, e->param);
    S2A_PUT(&b, ",\"code\":");
    put_string_or_null(&b, e->code);
    S2A_PUT(&b, "}}");
    if (len) {
        *len = b.len;
    }
    return b.data;
}

/* Type and code of a status. */
static void kind_of_status(int status, const char **type, const char **code)
{
    *code = NULL;
    switch (status) {
    case 401:
        *type = "authentication_error";
        *code = "invalid_api_key";
        return;
    case 402:
        *type = "insufficient_quota";
        *code = "insufficient_quota";
        return;
    case 403:
        *type = "permission_error";
        return;
    case 404:
        *type = "not_found_error";
        return;
    case 413:
        *type = "invalid_request_error";
        *code = "request_too_large";
        return;
    case 429:
        *type = "rate_limit_error";
        *code = "rate_limit_exceeded";
        return;
    case 503:
    case 529:
        *type = "server_error";
        *code = "overloaded";
        return;
    default:
        break;
    }
    *type = status >= 400 && status < 500 ? "invalid_request_error" : "server_error";
}

void s2a_openai_error_of_status(s2a_openai_error *e, int status, const char *message)
{
    e->status = status;
    kind_of_status(status, &e->type, &e->code);
    e->param = NULL;
    e->message = message ? message : s2a_error_message(status);
}

void s2a_openai_error_of_anthropic(apr_pool_t *p, int status, const char *body, apr_size_t len,
                                   s2a_openai_error *e)
{
    static const struct {
        const char *anthropic, *type, *code;
    } kinds[] = {{"invalid_request_error", "invalid_request_error", NULL},
                 {"authentication_error", "authentication_error", "invalid_api_key"},
                 {"permission_error", "permission_error", NULL},
                 {"not_found_error", "not_found_error", NULL},
                 {"request_too_large", "invalid_request_error", "request_too_large"},
                 {"rate_limit_error", "rate_limit_error", "rate_limit_exceeded"},
                 {"billing_error", "insufficient_quota", "insufficient_quota"},
                 {"api_error", "server_error", NULL},
                 {"timeout_error", "server_error", "timeout"},
                 {"overloaded_error", "server_error", "overloaded"}};
    static const char *const keys[] = {"error"};
    s2a_json_span err, type, message;
    const char *why;
    apr_size_t k;

    s2a_openai_error_of_status(e, status, NULL);
    if (!body || !len || s2a_json_scan_object(NULL, body, len, keys, 1, &err, &why) != 0 ||
        err.type != S2A_JSON_OBJECT) {
        return;
    }
    if (s2a_json_object_get(&err, "message", &message) && message.type == S2A_JSON_STRING) {
        const char *text = s2a_json_string_dup(p, &message);
        if (text && *text) {
            e->message = text;
        }
    }
    if (s2a_json_object_get(&err, "type", &type) && type.type == S2A_JSON_STRING) {
        for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (s2a_json_string_equals(&type, kinds[k].anthropic)) {
                e->type = kinds[k].type;
                e->code = kinds[k].code;
                break;
            }
        }
    }
    /* the words Anthropic uses when the prompt does not fit the context */
    if (strstr(e->message, "prompt is too long") || strstr(e->message, "exceed context limit")) {
        e->code = "context_length_exceeded";
    }
}

int s2a_openai_refuse(s2a_openai_error *e, const char *param, const char *message)
{
    e->status = 400;
    e->type = "invalid_request_error";
    e->code = NULL;
    e->param = param;
    e->message = message;
    return -1;
}

/* ---- Writing JSON ------------------------------------------------------------------------ */

void s2a_openai_put(s2a_buf *b, const char *s)
{
    s2a_buf_append(b, s, strlen(s));
}

void s2a_openai_put_span(s2a_buf *b, const s2a_json_span *v)
{
    s2a_buf_append(b, v->p, v->len);
}

void s2a_openai_put_escaped(s2a_buf *b, const char *s, apr_size_t n)
{
    static const char hex[] = "0123456789abcdef";
    apr_size_t i, run = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        apr_size_t elen = 2;

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        s2a_buf_append(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            break;
        }
        s2a_buf_append(b, esc, elen);
    }
    s2a_buf_append(b, s + run, n - run);
}

void s2a_openai_put_string(s2a_buf *b, const char *s)
{
    S2A_PUT(b, "\"");
    s2a_openai_put_escaped(b, s, strlen(s));
    S2A_PUT(b, "\"");
}

void s2a_openai_put_int(s2a_buf *b, apr_int64_t v)
{
    char text[32];
    apr_snprintf(text, sizeof(text), "%" APR_INT64_T_FMT, v);
    s2a_buf_append(b, text, strlen(text));
}

/* Whether the eight bytes of w hold a control character, a quote or a
 * backslash: the bytes the check below looks at (the usual bit tricks, exact
 * about whether there is one). */
static int word_matters(apr_uint64_t w)
{
    const apr_uint64_t ones = APR_UINT64_C(0x0101010101010101);
    const apr_uint64_t highs = APR_UINT64_C(0x8080808080808080);
    apr_uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');

    return ((((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) |
             ((backslash - ones) & ~backslash)) &
            highs) != 0;
}

/* Whether s[0..n) holds a byte below 0x20: sixteen or more bytes at a time
 * where SSE2 is (a byte is one when the larger of it and 0x1f is 0x1f),
 * then eight. */
static int any_control(const char *s, apr_size_t n)
{
    const apr_uint64_t ones = APR_UINT64_C(0x0101010101010101);
    const apr_uint64_t highs = APR_UINT64_C(0x8080808080808080);
    apr_uint64_t w, seen = 0;
    apr_size_t i = 0;

#if defined(__SSE2__)
    const __m128i limit = _mm_set1_epi8(0x1f);
    __m128i found = _mm_setzero_si128();

    /* the smallest of 64 bytes at a time: one is below 0x20 when it is */
    for (; i + 64 <= n; i += 64) {
        const __m128i *v = (const __m128i *)(const void *)(s + i);
        __m128i low = _mm_min_epu8(_mm_min_epu8(_mm_loadu_si128(v), _mm_loadu_si128(v + 1)),
                                   _mm_min_epu8(_mm_loadu_si128(v + 2), _mm_loadu_si128(v + 3)));
        found = _mm_or_si128(found, _mm_cmpeq_epi8(_mm_max_epu8(low, limit), limit));
    }
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        found = _mm_or_si128(found, _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit));
    }
    if (_mm_movemask_epi8(found)) {
        return 1;
    }
#endif
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        seen |= (w - ones * 0x20) & ~w;
    }
    for (; i < n; i++) {
        if ((unsigned char)s[i] < 0x20) {
            return 1;
        }
    }
    return (seen & highs) != 0;
}

int s2a_openai_control_free(const char *s, apr_size_t n)
{
    apr_size_t i = 0;
    int in_string = 0;

    /* what the SDKs send holds none at all: only then are strings told apart */
    if (!any_control(s, n)) {
        return 1;
    }
    while (i < n) {
        apr_size_t stop;
        apr_uint64_t w;

        /* text without any of those bytes goes eight at a time */
        if (n - i >= 8) {
            memcpy(&w, s + i, 8);
            if (!word_matters(w)) {
                i += 8;
                continue;
            }
        }
        for (stop = n - i > 8 ? i + 8 : n; i < stop; i++) {
            unsigned char c = (unsigned char)s[i];

            if (c < 0x20 && (in_string || (c != '\t' && c != '\n' && c != '\r'))) {
                return 0;
            }
            if (in_string && c == '\\') {
                /* the escaped byte is skipped, and must not be one either */
                if (++i < n && (unsigned char)s[i] < 0x20) {
                    return 0;
                }
            } else if (c == '"') {
                in_string = !in_string;
            }
        }
    }
    return 1;
}

/* ---- Reading numbers ------------------------------------------------------------------- */

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

int s2a_openai_integer(const s2a_json_span *v, apr_int64_t *out)
{
    const char *s, *end;
    apr_int64_t n = 0;
    int neg = 0;

    if (v->type != S2A_JSON_NUMBER || !v->len) {
        return 0;
    }
    s = v->p;
    end = v->p + v->len;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (s == end) {
        return 0;
    }
    for (; s < end; s++) {
        int d = *s - '0';
        if (d < 0 || d > 9) {
            return 0;
        }
        /* counted negative: APR_INT64_MIN has no positive twin */
        n = n < (APR_INT64_MIN + d) / 10 ? APR_INT64_MIN : n * 10 - d;
    }
    if (!neg) {
        n = n == APR_INT64_MIN ? APR_INT64_MAX : -n;
    }
    *out = n;
    return 1;
}

int s2a_openai_milli(const s2a_json_span *v, apr_int64_t *out)
{
    const char *s, *end;
    apr_int64_t mant = 0, shift = 3, exp = 0;
    int neg = 0, digits = 0, eneg = 0, seen = 0;

    if (v->type != S2A_JSON_NUMBER || !v->len) {
        return 0;
    }
    s = v->p;
    end = v->p + v->len;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    /* the mantissa keeps 18 significant digits; later ones only move the point */
    for (; s < end && IS_DIGIT(*s); s++, seen = 1) {
        if (digits < 18) {
            mant = mant * 10 + (*s - '0');
            digits += mant > 0;
        } else {
            shift++;
        }
    }
    if (s < end && *s == '.') {
        for (s++; s < end && IS_DIGIT(*s); s++, seen = 1) {
            if (digits < 18) {
                mant = mant * 10 + (*s - '0');
                digits += mant > 0;
                shift--;
            }
        }
    }
    if (!seen) {
        return 0;
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < end && (*s == '+' || *s == '-')) {
            eneg = *s == '-';
            s++;
        }
        if (s == end) {
            return 0;
        }
        for (; s < end && IS_DIGIT(*s); s++) {
            exp = exp < 1000000 ? exp * 10 + (*s - '0') : exp;
        }
        shift += eneg ? -exp : exp;
    }
    if (s != end) {
        return 0;
    }
    /* stops once saturated: an exponent of millions costs nothing */
    for (; shift > 0 && mant && mant < APR_INT64_MAX; shift--) {
        mant = mant > APR_INT64_MAX / 10 ? APR_INT64_MAX : mant * 10;
    }
    for (; shift < 0 && mant; shift++) {
        mant /= 10;
    }
    *out = neg ? -mant : mant;
    return 1;
}

/* ---- The figures of an answer ------------------------------------------------------------ */

const char *s2a_openai_finish_reason(const s2a_json_span *stop_reason)
{
    if (s2a_json_string_equals(stop_reason, "max_tokens") ||
        s2a_json_string_equals(stop_reason, "model_context_window_exceeded")) {
        return "length";
    }
    if (s2a_json_string_equals(stop_reason, "tool_use")) {
        return "tool_calls";
    }
    if (s2a_json_string_equals(stop_reason, "refusal")) {
        return "content_filter";
    }
    return "stop";
}

static apr_int64_t add_sat(apr_int64_t a, apr_int64_t b)
{
    return a > APR_INT64_MAX - b ? APR_INT64_MAX : a + b;
}

void s2a_openai_tokens_of(const s2a_usage *u, s2a_openai_tokens *t)
{
    t->prompt = add_sat(add_sat(u->input, u->cache_creation), u->cache_read);
    t->completion = u->output;
    t->total = add_sat(t->prompt, t->completion);
    t->cached = u->cache_read;
}

/* ---- An Anthropic answer's stream events -------------------------------------------------- */

static int span_is(const char *s, apr_size_t n, const char *word)
{
    return n == strlen(word) && memcmp(s, word, n) == 0;
}

static s2a_aev_kind kind_of_name(const char *s, apr_size_t n)
{
    static const struct {
        const char *name;
        s2a_aev_kind kind;
    } kinds[] = {{"message_start", S2A_AEV_MESSAGE_START},
                 {"content_block_start", S2A_AEV_BLOCK_START},
                 {"content_block_delta", S2A_AEV_BLOCK_DELTA},
                 {"content_block_stop", S2A_AEV_BLOCK_STOP},
                 {"message_delta", S2A_AEV_MESSAGE_DELTA},
                 {"message_stop", S2A_AEV_MESSAGE_STOP},
                 {"ping", S2A_AEV_PING},
                 {"error", S2A_AEV_ERROR}};
    apr_size_t k;

    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (span_is(s, n, kinds[k].name)) {
            return kinds[k].kind;
        }
    }
    return S2A_AEV_OTHER;
}

/* The member `key` of obj when it is a string, else NONE. */
static void get_string(const s2a_json_span *obj, const char *key, s2a_json_span *out)
{
    if (!s2a_json_object_get(obj, key, out) || out->type != S2A_JSON_STRING) {
        out->type = S2A_JSON_NONE;
    }
}

static void read_block_start(const s2a_json_span *block, s2a_anthropic_event *ev)
{
    static const struct {
        const char *type, *text;
        s2a_block_kind kind;
    } kinds[] = {{"text", "text", S2A_BLOCK_TEXT},
                 {"thinking", "thinking", S2A_BLOCK_THINKING},
                 {"redacted_thinking", "data", S2A_BLOCK_REDACTED_THINKING},
                 {"tool_use", NULL, S2A_BLOCK_TOOL_USE}};
    s2a_json_span type;
    apr_size_t k;

    get_string(block, "type", &type);
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (s2a_json_string_equals(&type, kinds[k].type)) {
            ev->block = kinds[k].kind;
            if (kinds[k].text) {
                get_string(block, kinds[k].text, &ev->text);
            }
            break;
        }
    }
    if (ev->block == S2A_BLOCK_TOOL_USE) {
        get_string(block, "id", &ev->id);
        get_string(block, "name", &ev->name);
    }
}

static void read_delta(const s2a_json_span *delta, s2a_anthropic_event *ev)
{
    static const struct {
        const char *type, *text;
        s2a_block_kind kind;
    } kinds[] = {{"text_delta", "text", S2A_BLOCK_TEXT},
                 {"thinking_delta", "thinking", S2A_BLOCK_THINKING},
                 {"signature_delta", "signature", S2A_BLOCK_SIGNATURE},
                 {"input_json_delta", "partial_json", S2A_BLOCK_TOOL_USE}};
    s2a_json_span type;
    apr_size_t k;

    get_string(delta, "type", &type);
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (s2a_json_string_equals(&type, kinds[k].type)) {
            get_string(delta, kinds[k].text, &ev->text);
            /* a delta without its string adds nothing */
            ev->block = ev->text.type == S2A_JSON_STRING ? kinds[k].kind : S2A_BLOCK_OTHER;
            return;
        }
    }
}

/* A delta event as the API writes it, {"type":"content_block_delta","index":N,"delta":
 * {"type":"…_delta","…":"…"}} to the byte, read without the scanner: dozens come per
 * answer. 0 for anything else (a space, another member, another order), which the
 * scanner then reads. */
static int read_delta_as_written(const char *data, apr_size_t dlen, s2a_anthropic_event *ev)
{
    static const char head[] = "{\"type\":\"content_block_delta\",\"index\":";
#define DELTA(members) members, sizeof(members) - 1
    static const struct {
        const char *members; /* from the delta's type to its string's opening quote */
        apr_size_t len;
        s2a_block_kind kind;
    } kinds[] = {
        {DELTA(",\"delta\":{\"type\":\"text_delta\",\"text\":\""), S2A_BLOCK_TEXT},
        {DELTA(",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\""), S2A_BLOCK_THINKING},
        {DELTA(",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\""),
         S2A_BLOCK_TOOL_USE},
        {DELTA(",\"delta\":{\"type\":\"signature_delta\",\"signature\":\""), S2A_BLOCK_SIGNATURE}};
#undef DELTA
    const char *s = data + sizeof(head) - 1, *end = data + dlen, *q;
    apr_int64_t index = 0;
    apr_size_t k, n;

    if (dlen < sizeof(head) || memcmp(data, head, sizeof(head) - 1) != 0 || !IS_DIGIT(*s) ||
        (*s == '0' && s + 1 < end && IS_DIGIT(s[1]))) {
        return 0;
    }
    for (n = 0; s < end && IS_DIGIT(*s); s++, n++) {
        if (n == 9) {
            return 0; /* an index that long: the scanner's reading */
        }
        index = index * 10 + (*s - '0');
    }
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if ((apr_size_t)(end - s) > kinds[k].len &&
            memcmp(s, kinds[k].members, kinds[k].len) == 0) {
            break;
        }
    }
    if (k == sizeof(kinds) / sizeof(kinds[0])) {
        return 0;
    }
    s += kinds[k].len;
    if (!(q = s2a_json_string_close(s, end)) || end - q != 3 || q[1] != '}' || q[2] != '}') {
        return 0;
    }
    ev->kind = S2A_AEV_BLOCK_DELTA;
    ev->index = index;
    ev->block = kinds[k].kind;
    ev->text.p = s - 1;
    ev->text.len = (apr_size_t)(q + 1 - (s - 1));
    ev->text.type = S2A_JSON_STRING;
    return 1;
}

s2a_aev_kind s2a_anthropic_event_read(const char *name, apr_size_t nlen, const char *data,
                                      apr_size_t dlen, s2a_anthropic_event *ev)
{
    /* every container these events carry is asked for, so the scanner checks it in full */
    static const char *const keys[] = {"type",  "index", "message", "content_block",
                                       "delta", "usage", "error"};
    enum { TYPE, INDEX, MESSAGE, BLOCK, DELTA, USAGE, ERROR };
    s2a_json_span v[7];
    const char *why;

    memset(ev, 0, sizeof(*ev));
    ev->index = -1;
    if (read_delta_as_written(data, dlen, ev)) {
        return ev->kind;
    }
    if (s2a_json_scan_object(NULL, data, dlen, keys, 7, v, &why) != 0 ||
        !s2a_openai_control_free(data, dlen)) {
        return ev->kind = S2A_AEV_OTHER;
    }
    if (v[TYPE].type == S2A_JSON_STRING) {
        ev->kind = kind_of_name(v[TYPE].p + 1, v[TYPE].len - 2);
        if (ev->kind == S2A_AEV_OTHER && memchr(v[TYPE].p, '\\', v[TYPE].len)) {
            /* a type spelled with escapes: compare it decoded */
            static const char *const names[] = {"message_start",
                                                "content_block_start",
                                                "content_block_delta",
                                                "content_block_stop",
                                                "message_delta",
                                                "message_stop",
                                                "ping",
                                                "error"};
            apr_size_t k;
            for (k = 0; k < 8 && ev->kind == S2A_AEV_OTHER; k++) {
                if (s2a_json_string_equals(&v[TYPE], names[k])) {
                    ev->kind = kind_of_name(names[k], strlen(names[k]));
                }
            }
        }
    } else if (v[TYPE].type == S2A_JSON_NONE) {
        ev->kind = kind_of_name(name, nlen);
    }
    if (!s2a_openai_integer(&v[INDEX], &ev->index) || ev->index < 0) {
        ev->index = -1;
    }
    switch (ev->kind) {
    case S2A_AEV_MESSAGE_START:
        if (v[MESSAGE].type == S2A_JSON_OBJECT) {
            get_string(&v[MESSAGE], "id", &ev->id);
        }
        break;
    case S2A_AEV_BLOCK_START:
        if (v[BLOCK].type == S2A_JSON_OBJECT) {
            read_block_start(&v[BLOCK], ev);
        }
        break;
    case S2A_AEV_BLOCK_DELTA:
        if (v[DELTA].type == S2A_JSON_OBJECT) {
            read_delta(&v[DELTA], ev);
        }
        break;
    case S2A_AEV_MESSAGE_DELTA:
        if (v[DELTA].type == S2A_JSON_OBJECT) {
            get_string(&v[DELTA], "stop_reason", &ev->stop);
        }
        break;
    case S2A_AEV_ERROR:
        if (v[ERROR].type == S2A_JSON_OBJECT) {
            get_string(&v[ERROR], "type", &ev->err_type);
            get_string(&v[ERROR], "message", &ev->err_message);
        }
        break;
    default:
        break;
    }
    return ev->kind;
}

void s2a_anthropic_event_usage(s2a_usage *u, const s2a_anthropic_event *ev, const char *name,
                               apr_size_t nlen, const char *data, apr_size_t dlen)
{
    if (ev->kind == S2A_AEV_BLOCK_DELTA && ev->text.type == S2A_JSON_STRING) {
        /* a delta read already: its string is what the estimate counts */
        u->delta_bytes += (apr_int64_t)ev->text.len - 2;
    } else {
        s2a_usage_apply_sse(u, name, nlen, data, dlen);
    }
}

/* ---- The Messages body both requests become ---------------------------------------------- */

apr_int64_t s2a_openai_budget(const s2a_json_span *effort)
{
    static const struct {
        const char *name;
        apr_int64_t budget;
    } efforts[] = {{"none", 0},
                   {"minimal", 0},
                   {"low", S2A_OPENAI_BUDGET_LOW},
                   {"medium", S2A_OPENAI_BUDGET_MEDIUM},
                   {"high", S2A_OPENAI_BUDGET_HIGH},
                   {"xhigh", S2A_OPENAI_BUDGET_XHIGH}};
    apr_size_t k;

    if (effort->type == S2A_JSON_NONE || effort->type == S2A_JSON_NULL) {
        return 0;
    }
    for (k = 0; k < sizeof(efforts) / sizeof(efforts[0]); k++) {
        if (s2a_json_string_equals(effort, efforts[k].name)) {
            return efforts[k].budget;
        }
    }
    return -1;
}

/* The next token of a model's name from *s (tokens are cut at "-", "." and
 * "_"): its start and length; 0 at the end. */
static int next_token(const char **s, const char **tok, apr_size_t *len)
{
    const char *p = *s;

    while (*p && strchr("-._", *p)) {
        p++;
    }
    if (!*p) {
        return 0;
    }
    *tok = p;
    while (*p && !strchr("-._", *p)) {
        p++;
    }
    *len = (apr_size_t)(p - *tok);
    *s = p;
    return 1;
}

/* A version number: one or two digits (a date is longer). */
static int version_number(const char *tok, apr_size_t len)
{
    return (len == 1 && IS_DIGIT(tok[0]))                       ? tok[0] - '0'
           : (len == 2 && IS_DIGIT(tok[0]) && IS_DIGIT(tok[1])) ? (tok[0] - '0') * 10 + tok[1] - '0'
                                                                : -1;
}

int s2a_openai_adaptive(const char *model)
{
    const char *s = model, *tok;
    apr_size_t len;
    int major = -1, minor = 0;

    while (major < 0 && next_token(&s, &tok, &len)) {
        major = version_number(tok, len);
    }
    if (major < 0) {
        return 0;
    }
    if (next_token(&s, &tok, &len) && version_number(tok, len) >= 0) {
        minor = version_number(tok, len);
    }
    return major > 4 || (major == 4 && minor >= 6);
}

void s2a_openai_msgs_start(s2a_openai_msgs *m, s2a_buf *b)
{
    memset(m, 0, sizeof(*m));
    m->b = b;
    /* no assistant message yet: nothing of one to ask for */
    m->last_starts_thinking = 1;
    S2A_PUT(b, "\"messages\":[");
}

void s2a_openai_msgs_block(s2a_openai_msgs *m, s2a_openai_role role, s2a_block_kind kind,
                           int result)
{
    if (m->role == role) {
        S2A_PUT(m->b, ",");
    } else {
        if (m->role != S2A_ROLE_NONE) {
            S2A_PUT(m->b, "]},");
        }
        if (role == S2A_ROLE_USER) {
            S2A_PUT(m->b, "{\"role\":\"user\",\"content\":[");
            m->user_has_result = 0;
        } else {
            S2A_PUT(m->b, "{\"role\":\"assistant\",\"content\":[");
            m->last_starts_thinking =
                kind == S2A_BLOCK_THINKING || kind == S2A_BLOCK_REDACTED_THINKING;
        }
        m->role = m->last = role;
        m->messages++;
        m->blocks = 0;
    }
    m->blocks++;
    if (kind == S2A_BLOCK_THINKING || kind == S2A_BLOCK_REDACTED_THINKING) {
        m->thinking_blocks++;
    }
    if (role == S2A_ROLE_USER && result) {
        m->user_has_result = 1;
    }
}

void s2a_openai_msgs_end(s2a_openai_msgs *m)
{
    s2a_openai_put(m->b, m->role != S2A_ROLE_NONE ? "]}]" : "]");
    m->role = S2A_ROLE_NONE;
}

int s2a_openai_msgs_may_think(const s2a_openai_msgs *m)
{
    if (m->last == S2A_ROLE_ASSISTANT) {
        return m->last_starts_thinking;
    }
    if (m->last == S2A_ROLE_USER && m->user_has_result) {
        return m->last_starts_thinking;
    }
    return 1;
}

static void put_cache_control(s2a_buf *b, const s2a_json_span *cache_control)
{
    if (cache_control && cache_control->type == S2A_JSON_OBJECT) {
        S2A_PUT(b, ",\"cache_control\":");
        s2a_openai_put_span(b, cache_control);
    }
}

int s2a_openai_blank(const s2a_json_span *text)
{
    const char *s = text->p + 1, *end = text->p + text->len - 1;

    for (; s < end; s++) {
        if (*s == '\\' && s + 1 < end && (s[1] == 'n' || s[1] == 'r' || s[1] == 't')) {
            s++;
        } else if (*s != ' ' && *s != '\n' && *s != '\r' && *s != '\t') {
            return 0;
        }
    }
    return 1;
}

void s2a_openai_text_block(s2a_buf *b, const s2a_json_span *text,
                           const s2a_json_span *cache_control)
{
    S2A_PUT(b, "{\"type\":\"text\",\"text\":");
    s2a_openai_put_span(b, text);
    put_cache_control(b, cache_control);
    S2A_PUT(b, "}");
}

static int begins_nocase(const char *s, apr_size_t n, const char *prefix)
{
    apr_size_t k, m = strlen(prefix);

    if (n < m) {
        return 0;
    }
    for (k = 0; k < m; k++) {
        char c = s[k];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != prefix[k]) {
            return 0;
        }
    }
    return 1;
}

/* Writes bytes as the contents of a JSON string: as they are when they come
 * from a string span's raw contents (escaped already), else escaped. */
static void put_text(s2a_buf *b, const char *s, apr_size_t n, int raw)
{
    if (raw) {
        s2a_buf_append(b, s, n);
    } else {
        s2a_openai_put_escaped(b, s, n);
    }
}

int s2a_openai_image_block(apr_pool_t *p, s2a_buf *b, const s2a_json_span *url, int document,
                           const s2a_json_span *cache_control, const char **why)
{
    const char *s, *comma, *semi, *media;
    apr_size_t n, head, mlen;
    int raw = 1;

    if (url->type != S2A_JSON_STRING) {
        *why = "must be a string";
        return -1;
    }
    s = url->p + 1;
    n = url->len - 2;
    /* the scheme and a data: URL's header are read as sent unless written
     * with escapes; then the whole URL is decoded (and escaped again) */
    head = n < 256 ? n : 256;
    comma = memchr(s, ',', head);
    if (memchr(s, '\\', comma ? (apr_size_t)(comma - s) : head)) {
        if (!(s = s2a_json_string_dup(p, url))) {
            *why = "is not a valid string";
            return -1;
        }
        n = strlen(s);
        raw = 0;
    }
    s2a_openai_put(b, document ? "{\"type\":\"document\",\"source\":{\"type\":"
                               : "{\"type\":\"image\",\"source\":{\"type\":");
    if (begins_nocase(s, n, "https://") || begins_nocase(s, n, "http://")) {
        S2A_PUT(b, "\"url\",\"url\":\"");
        put_text(b, s, n, raw);
    } else if (begins_nocase(s, n, "data:")) {
        comma = memchr(s, ',', n);
        if (!comma || (apr_size_t)(comma - s) < 12 || !begins_nocase(comma - 7, 7, ";base64")) {
            *why = "a data: URL must be base64 (data:<media type>;base64,<data>)";
            return -1;
        }
        media = s + 5;
        semi = memchr(media, ';', (apr_size_t)(comma - media));
        mlen = (apr_size_t)(semi - media);
        if (!mlen && !document) {
            *why = "an image's data: URL must name its media type";
            return -1;
        }
        S2A_PUT(b, "\"base64\",\"media_type\":\"");
        if (mlen) {
            put_text(b, media, mlen, raw);
        } else {
            S2A_PUT(b, "application/pdf");
        }
        S2A_PUT(b, "\",\"data\":\"");
        put_text(b, comma + 1, n - (apr_size_t)(comma + 1 - s), raw);
    } else if (document && n && !memchr(s, ':', n < 64 ? n : 64)) {
        S2A_PUT(b, "\"base64\",\"media_type\":\"application/pdf\",\"data\":\"");
        put_text(b, s, n, raw);
    } else {
        *why = "must be an http(s) URL or a base64 data: URL";
        return -1;
    }
    S2A_PUT(b, "\"}");
    put_cache_control(b, cache_control);
    S2A_PUT(b, "}");
    return 0;
}

int s2a_openai_put_tool_id(apr_pool_t *p, s2a_buf *b, const s2a_json_span *id)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s;
    char *text;

    if (id->type != S2A_JSON_STRING || !(text = s2a_json_string_dup(p, id))) {
        return 0;
    }
    S2A_PUT(b, "\"");
    if (!*text) {
        S2A_PUT(b, "_");
    }
    for (s = (const unsigned char *)text; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || IS_DIGIT(*s) || *s == '_' ||
            *s == '-') {
            s2a_buf_append(b, (const char *)s, 1);
        } else {
            char esc[3] = {'_', hex[*s >> 4], hex[*s & 15]};
            s2a_buf_append(b, esc, 3);
        }
    }
    S2A_PUT(b, "\"");
    return 1;
}

static int is_blank(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    return *s == '\0';
}

int s2a_openai_tool_use_block(apr_pool_t *p, s2a_buf *b, const s2a_json_span *id,
                              const s2a_json_span *name, const s2a_json_span *arguments,
                              const char **why)
{
    static const char *const keys[] = {"i"};
    s2a_json_span input;
    apr_size_t mark = b->len;

    if (name->type != S2A_JSON_STRING) {
        *why = "the function's name must be a string";
        return -1;
    }
    if (arguments->type == S2A_JSON_STRING) {
        const char *text = s2a_json_string_dup(p, arguments), *err;
        char *wrapped;
        apr_size_t n;

        if (!text) {
            *why = "the function's arguments are not a valid string";
            return -1;
        }
        if (is_blank(text)) {
            input.type = S2A_JSON_NONE;
        } else {
            /* a member of an object the scanner reads in full, at every depth */
            n = strlen(text);
            wrapped = apr_palloc(p, n + 6);
            memcpy(wrapped, "{\"i\":", 5);
            memcpy(wrapped + 5, text, n);
            wrapped[n + 5] = '}';
            if (s2a_json_scan_object(p, wrapped, n + 6, keys, 1, &input, &err) != 0 ||
                input.type != S2A_JSON_OBJECT || !s2a_openai_control_free(text, n)) {
                *why = "the function's arguments must be a JSON object, written as a string";
                return -1;
            }
        }
    } else if (arguments->type == S2A_JSON_OBJECT) {
        input = *arguments; /* sent as an object already: taken as it is */
    } else if (arguments->type == S2A_JSON_NONE || arguments->type == S2A_JSON_NULL) {
        input.type = S2A_JSON_NONE;
    } else {
        *why = "the function's arguments must be a string";
        return -1;
    }
    S2A_PUT(b, "{\"type\":\"tool_use\",\"id\":");
    if (!s2a_openai_put_tool_id(p, b, id)) {
        b->len = mark;
        *why = "the tool call's id must be a string";
        return -1;
    }
    S2A_PUT(b, ",\"name\":");
    s2a_openai_put_span(b, name);
    S2A_PUT(b, ",\"input\":");
    if (input.type == S2A_JSON_OBJECT) {
        s2a_openai_put_span(b, &input);
    } else {
        S2A_PUT(b, "{}");
    }
    S2A_PUT(b, "}");
    return 0;
}

int s2a_openai_tool(s2a_buf *b, const s2a_json_span *name, const s2a_json_span *description,
                    const s2a_json_span *parameters)
{
    if (name->type != S2A_JSON_STRING ||
        (description->type != S2A_JSON_NONE && description->type != S2A_JSON_NULL &&
         description->type != S2A_JSON_STRING) ||
        (parameters->type != S2A_JSON_NONE && parameters->type != S2A_JSON_NULL &&
         parameters->type != S2A_JSON_OBJECT)) {
        return -1;
    }
    S2A_PUT(b, "{\"name\":");
    s2a_openai_put_span(b, name);
    if (description->type == S2A_JSON_STRING) {
        S2A_PUT(b, ",\"description\":");
        s2a_openai_put_span(b, description);
    }
    S2A_PUT(b, ",\"input_schema\":");
    if (parameters->type != S2A_JSON_OBJECT) {
        S2A_PUT(b, "{\"type\":\"object\",\"properties\":{}}");
    } else if (s2a_json_object_has(parameters, "type")) {
        s2a_openai_put_span(b, parameters);
    } else {
        /* Anthropic wants the schema's type; OpenAI's implies it */
        const char *in = parameters->p + 1, *end = parameters->p + parameters->len - 1;
        while (in < end && (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r')) {
            in++;
        }
        S2A_PUT(b, "{\"type\":\"object\"");
        if (in < end) {
            S2A_PUT(b, ",");
        }
        s2a_buf_append(b, in, (apr_size_t)(end + 1 - in));
    }
    S2A_PUT(b, "}");
    return 0;
}

s2a_openai_choice s2a_openai_tool_choice(const s2a_json_span *choice, s2a_json_span *name)
{
    s2a_json_span type, function;

    switch (choice->type) {
    case S2A_JSON_NONE:
    case S2A_JSON_NULL:
        return S2A_TOOL_CHOICE_AUTO;
    case S2A_JSON_STRING:
        if (s2a_json_string_equals(choice, "auto")) {
            return S2A_TOOL_CHOICE_AUTO;
        }
        if (s2a_json_string_equals(choice, "none")) {
            return S2A_TOOL_CHOICE_NONE;
        }
        if (s2a_json_string_equals(choice, "required")) {
            return S2A_TOOL_CHOICE_REQUIRED;
        }
        return S2A_TOOL_CHOICE_INVALID;
    case S2A_JSON_OBJECT:
        if (!s2a_json_object_get(choice, "type", &type) ||
            !s2a_json_string_equals(&type, "function")) {
            return S2A_TOOL_CHOICE_INVALID;
        }
        /* chat nests the name in "function"; the Responses API does not */
        if (s2a_json_object_get(choice, "function", &function) &&
            function.type == S2A_JSON_OBJECT) {
            get_string(&function, "name", name);
        } else {
            get_string(choice, "name", name);
        }
        return name->type == S2A_JSON_STRING ? S2A_TOOL_CHOICE_NAMED : S2A_TOOL_CHOICE_INVALID;
    default:
        return S2A_TOOL_CHOICE_INVALID;
    }
}

void s2a_openai_json_instruction(s2a_buf *b, const s2a_json_span *schema)
{
    S2A_PUT(b, "{\"type\":\"text\",\"text\":\"");
    if (schema->type == S2A_JSON_OBJECT) {
        S2A_PUT(b, "Answer with one JSON value and nothing else (no prose, no code fences). "
                   "It must conform to this JSON Schema: ");
        s2a_openai_put_escaped(b, schema->p, schema->len);
    } else {
        S2A_PUT(b, "Answer with one JSON object and nothing else (no prose, no code fences).");
    }
    S2A_PUT(b, "\"}");
}

int s2a_openai_thinks(const s2a_openai_tail *t, const s2a_openai_msgs *m)
{
    return t->budget > 0 && !t->forced_tool && s2a_openai_msgs_may_think(m);
}

static const char *effort_of(apr_int64_t budget)
{
    return budget <= S2A_OPENAI_BUDGET_LOW      ? "low"
           : budget <= S2A_OPENAI_BUDGET_MEDIUM ? "medium"
           : budget <= S2A_OPENAI_BUDGET_HIGH   ? "high"
                                                : "max";
}

void s2a_openai_mark(const s2a_buf *b, apr_size_t from, const char *key, s2a_body_mark *m)
{
    apr_size_t at = from + strlen(key);
    if (b->len > at) {
        m->off = at;
        m->len = b->len - at;
    }
}

void s2a_openai_write_tail(s2a_buf *b, const s2a_openai_tail *t, const s2a_openai_msgs *m,
                           s2a_body_marks *marks, apr_int64_t *max_out, apr_int64_t *budget_out)
{
    apr_size_t at;
    apr_int64_t max = t->max_tokens, budget = 0, cap;
    apr_int64_t milli;

    if (s2a_openai_thinks(t, m)) {
        budget = t->budget;
        cap = max > S2A_OPENAI_MAX_TOKENS_CAP ? max : S2A_OPENAI_MAX_TOKENS_CAP;
        max = add_sat(max, budget);
        if (max > cap) {
            max = cap;
        }
    }
    at = b->len;
    S2A_PUT(b, ",\"max_tokens\":");
    s2a_openai_put_int(b, max);
    s2a_openai_mark(b, at, ",\"max_tokens\":", &marks->max_tokens);
    if (budget && t->adaptive) {
        S2A_PUT(b, ",\"thinking\":{\"type\":\"adaptive\"},\"output_config\":{\"effort\":\"");
        s2a_openai_put(b, effort_of(budget));
        S2A_PUT(b, "\"}");
    } else if (budget) {
        S2A_PUT(b, ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":");
        s2a_openai_put_int(b, budget);
        S2A_PUT(b, "}");
    } else {
        if (t->temperature.type == S2A_JSON_NUMBER) {
            S2A_PUT(b, ",\"temperature\":");
            if (s2a_openai_milli(&t->temperature, &milli) && milli >= 1000) {
                S2A_PUT(b, "1");
            } else {
                s2a_openai_put_span(b, &t->temperature);
            }
        }
        /* newer models refuse both; clients send top_p 1 with a temperature */
        if (t->top_p.type == S2A_JSON_NUMBER && t->temperature.type != S2A_JSON_NUMBER) {
            S2A_PUT(b, ",\"top_p\":");
            if (s2a_openai_milli(&t->top_p, &milli) && milli >= 1000) {
                S2A_PUT(b, "1");
            } else {
                s2a_openai_put_span(b, &t->top_p);
            }
        }
    }
    if (t->user.type == S2A_JSON_STRING) {
        at = b->len;
        S2A_PUT(b, ",\"metadata\":{\"user_id\":");
        s2a_openai_put_span(b, &t->user);
        S2A_PUT(b, "}");
        s2a_openai_mark(b, at, ",\"metadata\":", &marks->metadata);
    }
    if (t->stream) {
        at = b->len;
        S2A_PUT(b, ",\"stream\":true");
        s2a_openai_mark(b, at, ",\"stream\":", &marks->stream);
    }
    *max_out = max;
    *budget_out = budget;
}

int s2a_openai_check_sampling(s2a_json_span *temperature, s2a_json_span *top_p, s2a_openai_error *e)
{
    apr_int64_t milli;

    if (temperature->type == S2A_JSON_NULL) {
        temperature->type = S2A_JSON_NONE;
    }
    if (top_p->type == S2A_JSON_NULL) {
        top_p->type = S2A_JSON_NONE;
    }
    if (temperature->type != S2A_JSON_NONE &&
        (!s2a_openai_milli(temperature, &milli) || milli < 0 || milli > 2000)) {
        return s2a_openai_refuse(e, "temperature", "temperature: must be a number from 0 to 2");
    }
    if (top_p->type != S2A_JSON_NONE &&
        (!s2a_openai_milli(top_p, &milli) || milli < 0 || milli > 1000)) {
        return s2a_openai_refuse(e, "top_p", "top_p: must be a number from 0 to 1");
    }
    return 0;
}

void s2a_openai_write_tool_choice(s2a_buf *b, s2a_openai_choice choice, const s2a_json_span *name,
                                  int serial, int *forced)
{
    switch (choice) {
    case S2A_TOOL_CHOICE_NONE:
        S2A_PUT(b, ",\"tool_choice\":{\"type\":\"none\"}");
        return;
    case S2A_TOOL_CHOICE_REQUIRED:
        S2A_PUT(b, ",\"tool_choice\":{\"type\":\"any\"");
        *forced = 1;
        break;
    case S2A_TOOL_CHOICE_NAMED:
        S2A_PUT(b, ",\"tool_choice\":{\"type\":\"tool\",\"name\":");
        s2a_openai_put_span(b, name);
        *forced = 1;
        break;
    default:
        if (!serial) {
            return;
        }
        S2A_PUT(b, ",\"tool_choice\":{\"type\":\"auto\"");
        break;
    }
    if (serial) {
        S2A_PUT(b, ",\"disable_parallel_tool_use\":true");
    }
    S2A_PUT(b, "}");
}
