/* Amazon Bedrock's streamed answer as an Anthropic event stream: see
 * s2a_eventstream.h. */
#include <pthread.h>
#include <string.h>
#include <zlib.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "s2a_errors.h"
#include "s2a_eventstream.h"
#include "s2a_json.h"
#include "s2a_openai.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define S2A_BASE64_SSSE3 1
#define S2A_CRC_PCLMUL 1
#include <immintrin.h>
#endif

/* prelude (12) and the message's CRC (4) */
#define FRAME_OVERHEAD 16

/* Messages are a few hundred bytes, each checked twice. Where the CPU multiplies without
 * carries (PCLMULQDQ) runs of 64 bytes and more are folded sixteen bytes a step; elsewhere
 * a call into zlib costs more than short runs' bytes, so those go eight bytes a step
 * through tables here (slicing by eight), long ones to zlib. */
#define CRC_SHORT 1024
#define CRC_FOLDED 64

static apr_uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;
#ifdef S2A_CRC_PCLMUL
static int crc_fold; /* the CPU has PCLMULQDQ and SSE4.1 */
#endif

static void crc_table_make(void)
{
    apr_uint32_t i, k, c;

    for (i = 0; i < 256; i++) {
        for (c = i, k = 0; k < 8; k++) {
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (i = 0; i < 256; i++) {
        for (k = 1; k < 8; k++) {
            c = crc_table[k - 1][i];
            crc_table[k][i] = (c >> 8) ^ crc_table[0][c & 0xff];
        }
    }
#ifdef S2A_CRC_PCLMUL
    crc_fold = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}

static apr_uint32_t le32(const unsigned char *p)
{
    return (apr_uint32_t)p[0] | (apr_uint32_t)p[1] << 8 | (apr_uint32_t)p[2] << 16 |
           (apr_uint32_t)p[3] << 24;
}

#ifdef S2A_CRC_PCLMUL
static __attribute__((target("pclmul,sse4.1"))) __m128i fold16(__m128i x, __m128i k, __m128i next)
{
    return _mm_xor_si128(
        _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

/* The running CRC `state` (inverted, as in the tables' loop) carried over p[0..n), n at
 * least 64 and a multiple of 16: four 128-bit lanes folded forward 64 bytes a step, then
 * into one, then 16 bytes a step, then reduced to 32 bits (Barrett). The constants are
 * powers of x modulo the polynomial, bit-reflected, as Intel's paper on CRCs with
 * PCLMULQDQ derives them. */
static __attribute__((target("pclmul,sse4.1"))) apr_uint32_t
crc_folded(apr_uint32_t state, const unsigned char *p, apr_size_t n)
{
    const __m128i by64 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
    const __m128i by16 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
    const __m128i to32 = _mm_set_epi64x(0, 0x163cd6124);
    const __m128i barrett = _mm_set_epi64x(0x1f7011641, 0x1db710641);
    const __m128i low32 = _mm_set_epi32(0, 0, 0, -1);
    __m128i x1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)state));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    __m128i t;

    for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
        x1 = fold16(x1, by64, _mm_loadu_si128((const __m128i *)p));
        x2 = fold16(x2, by64, _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = fold16(x3, by64, _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = fold16(x4, by64, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    x1 = fold16(fold16(fold16(x1, by16, x2), by16, x3), by16, x4);
    for (; n >= 16; p += 16, n -= 16) {
        x1 = fold16(x1, by16, _mm_loadu_si128((const __m128i *)p));
    }
    /* 128 bits to 64, then to 32 and 32 more */
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(x1, by16, 0x10));
    t = _mm_srli_si128(x1, 4);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, low32), to32, 0x00), t);
    t = x1;
    x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), barrett, 0x10);
    x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), barrett, 0x00);
    return (apr_uint32_t)_mm_extract_epi32(_mm_xor_si128(x1, t), 1);
}
#endif

apr_uint32_t s2a_crc32(apr_uint32_t crc, const void *data, apr_size_t n)
{
    const unsigned char *p = data;

    pthread_once(&crc_table_once, crc_table_make);
    crc = ~crc;
#ifdef S2A_CRC_PCLMUL
    if (n >= CRC_FOLDED && crc_fold) {
        apr_size_t whole = n & ~(apr_size_t)15;

        crc = crc_folded(crc, p, whole);
        p += whole;
        n -= whole; /* under sixteen: the tables take it */
    }
#endif
    if (n >= CRC_SHORT) {
        return (apr_uint32_t)crc32_z(~crc, p, n);
    }
    for (; n >= 8; p += 8, n -= 8) {
        apr_uint32_t lo = crc ^ le32(p), hi = le32(p + 4);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
              crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
              crc_table[0][hi >> 24];
    }
    for (; n; p++, n--) {
        crc = crc_table[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}

struct s2a_eventstream {
    apr_pool_t *pool;
    apr_pool_t *scratch; /* what one message needs, cleared after it */
    apr_size_t max;
    s2a_buf buf;        /* bytes of the message being read */
    const char *broken; /* why the stream ended early */
    apr_size_t messages;
};

s2a_eventstream *s2a_eventstream_create(apr_pool_t *p, apr_size_t max)
{
    s2a_eventstream *es = apr_pcalloc(p, sizeof(*es));
    es->pool = p;
    apr_pool_create(&es->scratch, p);
    es->max = max ? max : S2A_EVENTSTREAM_MAX_MESSAGE;
    s2a_buf_init(&es->buf, p, 1024);
    return es;
}

static apr_uint32_t be32(const unsigned char *s)
{
    return (apr_uint32_t)s[0] << 24 | (apr_uint32_t)s[1] << 16 | (apr_uint32_t)s[2] << 8 | s[3];
}

/* The Anthropic error event for `status`, `type` and `message`. */
static void error_event(s2a_buf *out, apr_pool_t *p, int status, const char *message)
{
    const char *body = s2a_error_body(p, status, message);
    S2A_PUT(out, "event: error\ndata: ");
    s2a_openai_put(out, body);
    S2A_PUT(out, "\n\n");
}

static int fail(s2a_eventstream *es, s2a_buf *out, const char *why)
{
    if (!es->broken) {
        es->broken = why;
        error_event(out, es->pool, 502,
                    apr_pstrcat(es->pool, "The upstream's stream broke: ", why, NULL));
    }
    return -1;
}

typedef struct {
    const char *message_type, *event_type, *exception_type;
    apr_size_t message_type_len, event_type_len, exception_type_len;
} headers_read;

static int name_is(const unsigned char *s, apr_size_t n, const char *name)
{
    return n == strlen(name) && memcmp(s, name, n) == 0;
}

/* The headers h[0..n): 0, or -1 when they do not add up. */
static int read_headers(const unsigned char *h, apr_size_t n, headers_read *out)
{
    static const int fixed[] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    apr_size_t at = 0;
    memset(out, 0, sizeof(*out));
    while (at < n) {
        apr_size_t name_len = h[at], value_len;
        const unsigned char *name = h + at + 1;
        int type;
        if (at + 1 + name_len + 1 > n) {
            return -1;
        }
        type = h[at + 1 + name_len];
        at += 2 + name_len;
        if (type > 9) {
            return -1;
        }
        if (fixed[type] >= 0) {
            value_len = (apr_size_t)fixed[type];
        } else {
            if (at + 2 > n) {
                return -1;
            }
            value_len = (apr_size_t)h[at] << 8 | h[at + 1];
            at += 2;
        }
        if (at + value_len > n) {
            return -1;
        }
        if (type == 7) {
            const char *v = (const char *)h + at;
            if (name_is(name, name_len, ":message-type")) {
                out->message_type = v;
                out->message_type_len = value_len;
            } else if (name_is(name, name_len, ":event-type")) {
                out->event_type = v;
                out->event_type_len = value_len;
            } else if (name_is(name, name_len, ":exception-type")) {
                out->exception_type = v;
                out->exception_type_len = value_len;
            }
        }
        at += value_len;
    }
    return 0;
}

#ifdef S2A_BASE64_SSSE3
/* Sixteen base64 digits at s as twelve bytes at out (sixteen written): 1, or 0 when one of
 * them is not a digit of the standard alphabet. A digit's high and low nibbles each pick a
 * class mask that only the two nibbles of a digit leave disjoint; its high nibble (one less
 * for '/') then picks what to add to the character to get the digit's value. */
__attribute__((target("ssse3"))) static int base64_16(const unsigned char *s, unsigned char *out)
{
    const __m128i low_class = _mm_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                            0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A);
    const __m128i high_class = _mm_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10,
                                             0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
    const __m128i shift = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i in = _mm_loadu_si128((const __m128i *)s);
    const __m128i high = _mm_and_si128(_mm_srli_epi32(in, 4), _mm_set1_epi8(0x0f));
    const __m128i low = _mm_and_si128(in, _mm_set1_epi8(0x0f));
    const __m128i classes =
        _mm_and_si128(_mm_shuffle_epi8(low_class, low), _mm_shuffle_epi8(high_class, high));
    __m128i v;

    if (_mm_movemask_epi8(_mm_cmpgt_epi8(classes, _mm_setzero_si128()))) {
        return 0;
    }
    v = _mm_add_epi8(
        in, _mm_shuffle_epi8(shift, _mm_add_epi8(high, _mm_cmpeq_epi8(in, _mm_set1_epi8('/')))));
    /* 6-bit digits a b c d: a<<6|b and c<<6|d, then (a<<6|b)<<12|(c<<6|d), 24 bits a lane */
    v = _mm_maddubs_epi16(v, _mm_set1_epi32(0x01400140));
    v = _mm_madd_epi16(v, _mm_set1_epi32(0x00011000));
    v = _mm_shuffle_epi8(v, _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
    _mm_storeu_si128((__m128i *)out, v);
    return 1;
}
#endif

/* Base64 s[0..n) (standard alphabet, '=' padding optional) decoded into
 * out (room for n / 4 * 3 + 8 bytes: a step of sixteen digits writes four past its
 * twelve); the decoded length, or -1 when it is
 * not base64. */
static apr_ssize_t base64_decode(const char *s, apr_size_t n, unsigned char *out)
{
    static const signed char value[256] = {
        ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
        ['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
        ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
        ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
        ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
        ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
        ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
        ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
        ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63,
        ['/'] = 64}; /* the digit's value + 1; 0: not a digit */
    const unsigned char *u = (const unsigned char *)s;
    apr_uint32_t v = 0;
    apr_size_t i, o = 0, digits;
    if (n % 4 == 0 && n && u[n - 1] == '=') {
        n -= n > 1 && u[n - 2] == '=' ? 2 : 1;
    }
    if (n % 4 == 1) {
        return -1;
    }
    i = 0;
#ifdef S2A_BASE64_SSSE3
    /* sixteen digits a step while sixteen remain */
    if (__builtin_cpu_supports("ssse3")) {
        for (; i + 16 <= n && base64_16(u + i, out + o); i += 16) {
            o += 12;
        }
    }
#endif
    /* four digits, three bytes a step */
    for (; i + 4 <= n; i += 4) {
        int a = value[u[i]], b = value[u[i + 1]], c = value[u[i + 2]], d = value[u[i + 3]];
        if (!a || !b || !c || !d) {
            return -1;
        }
        v = (apr_uint32_t)(a - 1) << 18 | (apr_uint32_t)(b - 1) << 12 | (apr_uint32_t)(c - 1) << 6 |
            (apr_uint32_t)(d - 1);
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
        o += 3;
    }
    digits = n - i; /* the last group: 2 digits give a byte, 3 two */
    for (v = 0; i < n; i++) {
        int d = value[u[i]];
        if (!d) {
            return -1;
        }
        v = v << 6 | (apr_uint32_t)(d - 1);
    }
    if (digits) {
        v <<= 6 * (4 - digits);
        out[o++] = (unsigned char)(v >> 16);
        if (digits == 3) {
            out[o++] = (unsigned char)(v >> 8);
        }
    }
    return (apr_ssize_t)o;
}

/* The base64 of a chunk's payload: {"bytes":"...", ...} as Bedrock writes
 * it, found at once; any other spelling of the object through the JSON
 * reader. NULL when there is none. */
static const char *chunk_bytes(s2a_eventstream *es, const char *payload, apr_size_t n,
                               apr_size_t *len)
{
    static const char prefix[] = "{\"bytes\":\"";
    static const char *const bytes_key[] = {"bytes"};
    s2a_json_span bytes;
    const char *end, *err;
    if (n > sizeof(prefix) - 1 && memcmp(payload, prefix, sizeof(prefix) - 1) == 0 &&
        (end = memchr(payload + sizeof(prefix) - 1, '"', n - (sizeof(prefix) - 1))) != NULL &&
        end + 1 < payload + n && (end[1] == ',' || end[1] == '}') &&
        !memchr(payload + sizeof(prefix) - 1, '\\',
                (apr_size_t)(end - payload) - (sizeof(prefix) - 1))) {
        *len = (apr_size_t)(end - payload) - (sizeof(prefix) - 1);
        return payload + sizeof(prefix) - 1;
    }
    if (s2a_json_scan_object(es->scratch, payload, n, bytes_key, 1, &bytes, &err) != 0 ||
        bytes.type != S2A_JSON_STRING || !(end = s2a_json_string_dup(es->scratch, &bytes))) {
        return NULL;
    }
    *len = strlen(end);
    return end;
}

/* The event type an Anthropic event's JSON names: {"type":"name", ...} at
 * once, else through the JSON reader. 0 with its span (quotes included),
 * or -1. */
static int event_type(s2a_eventstream *es, const char *json, apr_size_t len, s2a_json_span *type)
{
    static const char prefix[] = "{\"type\":\"";
    static const char *const type_key[] = {"type"};
    const char *end, *err;
    if (len > sizeof(prefix) - 1 && memcmp(json, prefix, sizeof(prefix) - 1) == 0 &&
        (end = memchr(json + sizeof(prefix) - 1, '"', len - (sizeof(prefix) - 1))) != NULL) {
        type->type = S2A_JSON_STRING;
        type->p = json + sizeof(prefix) - 2;
        type->len = (apr_size_t)(end + 1 - type->p);
        return 0;
    }
    return s2a_json_scan_object(es->scratch, json, len, type_key, 1, type, &err) == 0 &&
                   type->type == S2A_JSON_STRING
               ? 0
               : -1;
}

/* The bytes of an event's name: a to z and '_'. */
static const unsigned char name_byte[256] = {
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['_'] = 1};

/* A chunk's payload {"bytes":"<base64>"} as the SSE record of the
 * Anthropic event it carries; 0, or -1 with *why. */
static int chunk_record(s2a_eventstream *es, const char *payload, apr_size_t n, s2a_buf *out,
                        const char **why)
{
    s2a_json_span type;
    const char *b64;
    char *json;
    apr_size_t b64_len, len, i;
    apr_ssize_t decoded;

    if (!(b64 = chunk_bytes(es, payload, n, &b64_len))) {
        *why = "a chunk without its bytes";
        return -1;
    }
    json = apr_palloc(es->scratch, b64_len / 4 * 3 + 8);
    if ((decoded = base64_decode(b64, b64_len, (unsigned char *)json)) < 0) {
        *why = "a chunk's bytes are not base64";
        return -1;
    }
    len = (apr_size_t)decoded;
    json[len] = '\0';
    if (event_type(es, json, len, &type) != 0 || type.len < 3 ||
        !s2a_openai_control_free(json, len)) {
        *why = "a chunk is not an Anthropic event";
        return -1;
    }
    for (i = 1; i + 1 < type.len; i++) {
        if (!name_byte[(unsigned char)type.p[i]]) {
            *why = "a chunk's event type is not a name";
            return -1;
        }
    }
    S2A_PUT(out, "event: ");
    s2a_buf_append(out, type.p + 1, type.len - 2);
    S2A_PUT(out, "\ndata: ");
    /* one line: a JSON line break inside would end the record (Bedrock's JSON has none) */
    if (!memchr(json, '\n', len) && !memchr(json, '\r', len)) {
        s2a_buf_append(out, json, len);
    } else {
        for (i = 0; i < len;) {
            apr_size_t run = strcspn(json + i, "\r\n");
            s2a_buf_append(out, json + i, run);
            i += run + 1;
        }
    }
    S2A_PUT(out, "\n\n");
    return 0;
}

/* An exception's payload {"message":"..."} as an Anthropic error event. */
static void exception_record(s2a_eventstream *es, const headers_read *h, const char *payload,
                             apr_size_t n, s2a_buf *out)
{
    static const char *const message_key[] = {"message"};
    s2a_json_span message;
    s2a_bedrock_error e;
    const char *err, *words = NULL;

    s2a_bedrock_exception(h->exception_type ? h->exception_type : "",
                          h->exception_type ? h->exception_type_len : 0, &e);
    if (s2a_json_scan_object(es->scratch, payload, n, message_key, 1, &message, &err) == 0 &&
        message.type == S2A_JSON_STRING) {
        words = s2a_json_string_dup(es->scratch, &message);
    }
    error_event(out, es->pool, e.status, words && *words ? words : s2a_error_message(e.status));
}

/* One whole message m[0..n): its record, or the stream's end. */
static int message(s2a_eventstream *es, const unsigned char *m, apr_size_t n, s2a_buf *out)
{
    apr_uint32_t headers_len = be32(m + 4);
    const char *payload = (const char *)m + 12 + headers_len, *why = NULL;
    apr_size_t payload_len = n - FRAME_OVERHEAD - headers_len;
    headers_read h;

    /* the prelude's CRC (checked) is the CRC of its first 8 bytes */
    if (s2a_crc32(be32(m + 8), m + 8, n - 12) != be32(m + n - 4)) {
        return fail(es, out, "a message's CRC does not match");
    }
    if (read_headers(m + 12, headers_len, &h) != 0) {
        return fail(es, out, "a message's headers do not add up");
    }
    es->messages++;
    if (h.message_type && h.message_type_len == 9 && memcmp(h.message_type, "exception", 9) == 0) {
        exception_record(es, &h, payload, payload_len, out);
        es->broken = "an exception";
        return -1;
    }
    if (h.message_type && h.message_type_len == 5 && memcmp(h.message_type, "error", 5) == 0) {
        error_event(out, es->pool, 500, "The upstream's stream ended with an error");
        es->broken = "an error message";
        return -1;
    }
    if (!h.event_type || h.event_type_len != 5 || memcmp(h.event_type, "chunk", 5) != 0) {
        return 0; /* events of other kinds carry no Anthropic event */
    }
    if (chunk_record(es, payload, payload_len, out, &why) != 0) {
        return fail(es, out, why);
    }
    return 0;
}

/* The prelude at b: 0, or -1 with the stream failed. */
static int prelude(s2a_eventstream *es, const unsigned char *b, s2a_buf *out)
{
    apr_uint32_t total = be32(b);
    if (s2a_crc32(0, b, 8) != be32(b + 8)) {
        return fail(es, out, "a message's prelude CRC does not match");
    }
    if (total < FRAME_OVERHEAD || be32(b + 4) > total - FRAME_OVERHEAD) {
        return fail(es, out, "a message's lengths cannot be");
    }
    if (total > es->max) {
        return fail(es, out, "a message is larger than the gateway reads");
    }
    return 0;
}

/* A message that begins at m[0] and ends within m[0..n): 1 when it was read there, 0 when
 * it is not all there, -1 when the stream ended. */
static int whole_message(s2a_eventstream *es, const unsigned char *m, apr_size_t n, s2a_buf *out)
{
    if (n < 12 || be32(m) > n) {
        return 0;
    }
    if (prelude(es, m, out) != 0 || message(es, m, be32(m), out) != 0) {
        return -1;
    }
    return 1;
}

int s2a_eventstream_feed(s2a_eventstream *es, const char *data, apr_size_t n, s2a_buf *out)
{
    apr_size_t at = 0;
    if (es->broken) {
        return -1;
    }
    while (at < n || es->buf.len >= 12) {
        const unsigned char *b;
        apr_uint32_t total;
        apr_size_t want, take;
        int whole;
        /* a message that came whole is read where it is */
        if (!es->buf.len &&
            (whole = whole_message(es, (const unsigned char *)data + at, n - at, out)) != 0) {
            if (whole < 0) {
                return -1;
            }
            at += be32((const unsigned char *)data + at);
            apr_pool_clear(es->scratch);
            continue;
        }
        /* the prelude first, then the rest of the message it announces */
        if (es->buf.len < 12) {
            take = 12 - es->buf.len < n - at ? 12 - es->buf.len : n - at;
            s2a_buf_append(&es->buf, data + at, take);
            at += take;
            if (es->buf.len < 12) {
                return 0;
            }
        }
        b = (const unsigned char *)es->buf.data;
        if (prelude(es, b, out) != 0) {
            return -1;
        }
        total = be32(b);
        want = total - es->buf.len;
        take = want < n - at ? want : n - at;
        s2a_buf_append(&es->buf, data + at, take);
        at += take;
        if (es->buf.len < total) {
            return 0;
        }
        if (message(es, (const unsigned char *)es->buf.data, total, out) != 0) {
            return -1;
        }
        es->buf.len = 0;
        apr_pool_clear(es->scratch); /* a long stream takes no more memory than a message */
    }
    return 0;
}

int s2a_eventstream_end(s2a_eventstream *es, s2a_buf *out)
{
    if (es->broken) {
        return -1;
    }
    if (es->buf.len) {
        return fail(es, out, "it ended inside a message");
    }
    return 0;
}

const char *s2a_eventstream_broken(const s2a_eventstream *es)
{
    return es->broken;
}

apr_size_t s2a_eventstream_messages(const s2a_eventstream *es)
{
    return es->messages;
}

void s2a_bedrock_exception(const char *name, apr_size_t len, s2a_bedrock_error *out)
{
    static const struct {
        const char *name;
        int status;
    } known[] = {{"throttlingException", 429},         {"serviceQuotaExceededException", 429},
                 {"serviceUnavailableException", 529}, {"modelNotReadyException", 529},
                 {"accessDeniedException", 403},       {"unrecognizedClientException", 401},
                 {"invalidSignatureException", 401},   {"expiredTokenException", 401},
                 {"validationException", 400},         {"resourceNotFoundException", 404},
                 {"modelTimeoutException", 504},       {"modelStreamErrorException", 500},
                 {"modelErrorException", 500},         {"internalServerException", 500}};
    const char *colon = memchr(name, ':', len);
    apr_size_t i, n = colon ? (apr_size_t)(colon - name) : len;

    out->status = 500;
    /* AWS writes the first letter either way */
    for (i = 0; n && i < sizeof(known) / sizeof(known[0]); i++) {
        if (n == strlen(known[i].name) && apr_tolower(name[0]) == known[i].name[0] &&
            memcmp(name + 1, known[i].name + 1, n - 1) == 0) {
            out->status = known[i].status;
            break;
        }
    }
    out->type = s2a_error_type(out->status);
}
