/* Fast JSON scanning and splice editing: see s2a_json.h. */
#include "s2a_json.h"

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

/* S2A_JSON_PORTABLE builds the loops every CPU runs (a test of them). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(S2A_JSON_PORTABLE)
#define S2A_JSON_AVX2 1
#define S2A_JSON_SSE2 1 /* every x86-64 has it */
#include <immintrin.h>
#endif

/* The scanner's general loops are specialised per use by inlining: a constant NULL note or
 * reader folds their checks out of the plain scan. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

static const char *skip_ws(const char *s, const char *end)
{
    while (s < end && IS_WS(*s))
        s++;
    return s;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Value of 4 hex digits at s, or -1. */
static long hex4(const char *s)
{
    long v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        int d = hex_val(s[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static apr_size_t utf8_encode(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the escape starting at the backslash b (content ends at end) into out (at most 4
 * bytes, *n set). Returns the position after the escape, or NULL if it is invalid, an
 * unpaired surrogate or U+0000 (which cannot live in a C string). */
static const char *decode_escape(const char *b, const char *end, char *out, apr_size_t *n)
{
    long cp, lo;

    if (end - b < 2)
        return NULL;
    *n = 1;
    switch (b[1]) {
    case '"':
    case '\\':
    case '/':
        out[0] = b[1];
        return b + 2;
    case 'b':
        out[0] = '\b';
        return b + 2;
    case 'f':
        out[0] = '\f';
        return b + 2;
    case 'n':
        out[0] = '\n';
        return b + 2;
    case 'r':
        out[0] = '\r';
        return b + 2;
    case 't':
        out[0] = '\t';
        return b + 2;
    case 'u':
        break;
    default:
        return NULL;
    }
    if (end - b < 6 || (cp = hex4(b + 2)) < 0)
        return NULL;
    b += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - b < 6 || b[0] != '\\' || b[1] != 'u')
            return NULL;
        lo = hex4(b + 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return NULL;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        b += 6;
    } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
        return NULL;
    }
    *n = utf8_encode((unsigned long)cp, out);
    return b;
}

/* Does the raw key content k[0..kend) (between the quotes) decode to key? */
static int key_equals(const char *k, const char *kend, const char *key)
{
    apr_size_t klen = (apr_size_t)(kend - k);
    apr_size_t n;

    /* most keys differ at once: a first byte that is no escape is the decoded first byte */
    if (!klen)
        return *key == '\0';
    if (*k != '\\' && *k != *key)
        return 0;
    n = strlen(key);
    if (!memchr(k, '\\', klen))
        return klen == n && memcmp(k, key, n) == 0;
    while (k < kend) {
        char tmp[4];
        apr_size_t m;

        if (*k != '\\') {
            if (*key == '\0' || *key != *k)
                return 0;
            key++;
            k++;
            continue;
        }
        k = decode_escape(k, kend, tmp, &m);
        if (!k || strlen(key) < m || memcmp(key, tmp, m) != 0)
            return 0;
        key += m;
    }
    return *key == '\0';
}

/* The first quote in s[0..end), or NULL. Most strings a skip walks over are
 * member names and short values: 16-byte steps inline find their quote
 * sooner than a call; a longer string is left to memchr. */
static ALWAYS_INLINE const char *quote_find(const char *s, const char *end)
{
#ifdef S2A_JSON_SSE2
    const __m128i quote = _mm_set1_epi8('"');
    int steps;

    for (steps = 0; steps < 4 && end - s >= 16; steps++) {
        unsigned mask = (unsigned)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)s), quote));

        if (mask)
            return s + __builtin_ctz(mask);
        s += 16;
    }
#endif
    return memchr(s, '"', (apr_size_t)(end - s));
}

/* Closing quote of a string whose content starts at s, trusting its escapes; NULL if the
 * buffer ends first. The backslash runs walked back over never cross the previous quote,
 * so this stays linear. */
static const char *string_close(const char *s, const char *end)
{
    const char *from = s;

    for (;;) {
        const char *q = quote_find(from, end);
        const char *b;

        if (!q)
            return NULL;
        for (b = q; b > s && b[-1] == '\\'; b--)
            ;
        if (((q - b) & 1) == 0)
            return q;
        from = q + 1;
    }
}

/* Skip one value at s without validating it. Returns the position after it and sets *type;
 * NULL with *more = 1 if the buffer ends inside it, NULL with *more = 0 if it is malformed.
 * A scalar running into end counts as incomplete: more digits could follow. */
static const char *skip_value(const char *s, const char *end, s2a_json_type *type, int *more)
{
    const char *t;
    int depth = 0;

    *more = 0;
    if (s >= end) {
        *more = 1;
        return NULL;
    }
    switch (*s) {
    case '"':
        *type = S2A_JSON_STRING;
        t = string_close(s + 1, end);
        if (!t) {
            *more = 1;
            return NULL;
        }
        return t + 1;
    case '{':
    case '[':
        *type = *s == '{' ? S2A_JSON_OBJECT : S2A_JSON_ARRAY;
        while (s < end) {
            switch (*s) {
            case '"':
                t = string_close(s + 1, end);
                if (!t) {
                    *more = 1;
                    return NULL;
                }
                s = t;
                break;
            case '{':
            case '[':
                depth++;
                break;
            case '}':
            case ']':
                if (--depth == 0)
                    return s + 1;
                break;
            default:
                break;
            }
            s++;
        }
        *more = 1;
        return NULL;
    case 't':
        *type = S2A_JSON_TRUE;
        break;
    case 'f':
        *type = S2A_JSON_FALSE;
        break;
    case 'n':
        *type = S2A_JSON_NULL;
        break;
    default:
        if (*s != '-' && !IS_DIGIT(*s))
            return NULL;
        *type = S2A_JSON_NUMBER;
        break;
    }
    for (t = s; t < end && !IS_WS(*t) && *t != ',' && *t != '}' && *t != ']'; t++)
        ;
    if (t == end) {
        *more = 1;
        return NULL;
    }
    return t;
}

/* Validating scanner state. A NULL error position means the input was truncated. */
typedef struct {
    const char *buf;
    const char *end;
    const char *err;
    const char *err_at;
} scanner;

static const char *fail_at(scanner *sc, const char *at)
{
    sc->err = "invalid JSON";
    sc->err_at = at;
    return NULL;
}

static const char *fail_truncated(scanner *sc)
{
    sc->err = "truncated JSON";
    sc->err_at = NULL;
    return NULL;
}

/* A byte a string's scan must stop at: its closing quote, an escape, or a raw control
 * character, which JSON does not allow inside a string. */
#define STRING_STOP(c) ((c) == '"' || (c) == '\\' || (unsigned char)(c) < 0x20)

#ifdef S2A_JSON_AVX2
/* The first stop byte in s[0..end) a 32-byte step at a time, or the last fewer than 32
 * bytes left to the caller. A byte x is a quote or a control character when x ^ 2 is at
 * most 0x20 (the quote becomes 0x20, a control stays below it, nothing else lands there). */
static __attribute__((target("avx2"))) const char *string_stop_avx2(const char *s, const char *end)
{
    const __m256i two = _mm256_set1_epi8(2), space = _mm256_set1_epi8(0x20);
    const __m256i backslash = _mm256_set1_epi8('\\');

    while (end - s >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)s);
        __m256i low = _mm256_xor_si256(v, two);
        __m256i hit = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_max_epu8(low, space), space),
                                      _mm256_cmpeq_epi8(v, backslash));
        unsigned mask = (unsigned)_mm256_movemask_epi8(hit);

        if (mask)
            return s + __builtin_ctz(mask);
        s += 32;
    }
    return s;
}
#endif

/* The first stop byte in s[0..end), or end. */
static const char *string_stop(const char *s, const char *end)
{
#ifdef S2A_JSON_AVX2
    if (end - s >= 32 && __builtin_cpu_supports("avx2")) {
        s = string_stop_avx2(s, end);
    }
#endif
    while (s < end && !STRING_STOP(*s))
        s++;
    return s;
}

#ifdef S2A_JSON_AVX2
static int blocks_usable(void)
{
    return __builtin_cpu_supports("avx2");
}

/* One bit a byte of a 64-byte block, from the byte compares of its two halves. */
static inline __attribute__((target("avx2"), always_inline)) apr_uint64_t block_bits(__m256i lo,
                                                                                     __m256i hi)
{
    return (apr_uint32_t)_mm256_movemask_epi8(lo) |
           (apr_uint64_t)(apr_uint32_t)_mm256_movemask_epi8(hi) << 32;
}

/* The escaped bytes of a 64-byte block with backslashes at `bs`: a backslash not itself
 * escaped escapes the byte after it. *pending carries one escaping the next block's first. */
static ALWAYS_INLINE apr_uint64_t escaped_bytes(apr_uint64_t bs, apr_uint64_t *pending)
{
    apr_uint64_t escaped = *pending;

    bs &= ~escaped;
    *pending = 0;
    while (bs) {
        int i = __builtin_ctzll(bs);

        if (i == 63) {
            *pending = 1;
            break;
        }
        escaped |= 2ULL << i;
        bs &= ~(3ULL << i);
    }
    return escaped;
}
#endif

/* A string found bad at `at`: invalid when its closing quote may be in the buffer, else cut
 * (what follows could not have mended it, but a cut string reads as cut wherever it is). */
static const char *string_bad(scanner *sc, const char *at)
{
    return memchr(at, '"', (apr_size_t)(sc->end - at)) ? fail_at(sc, at) : fail_truncated(sc);
}

/* Whether the escape whose letter is at e (its backslash before it) is one JSON has. */
static int escape_good(const scanner *sc, const char *e)
{
    switch (*e) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 1;
    case 'u':
        return sc->end - e >= 5 && hex4(e + 1) >= 0;
    default:
        return 0;
    }
}

/* Validate a string whose content starts at s; returns its closing quote. Every escape is
 * checked on the way, so a backslash before a quote is known to be escaping it without
 * walking back, and so is every byte: a raw control character is refused. *escaped tells
 * whether the content holds any escape. */
static const char *scan_string_bytes(scanner *sc, const char *s, int *escaped)
{
    for (;;) {
        s = string_stop(s, sc->end);
        if (s == sc->end)
            return fail_truncated(sc);
        if (*s == '"')
            return s;
        if (*s != '\\' || sc->end - s < 2)
            return *s != '\\' ? string_bad(sc, s) : fail_truncated(sc);
        *escaped = 1;
        if (!escape_good(sc, s + 1))
            return string_bad(sc, s);
        s += s[1] == 'u' ? 6 : 2;
    }
}

#ifdef S2A_JSON_AVX2
/* Of the 64 bytes at s: the quotes, the backslashes and the raw control characters. */
static __attribute__((target("avx2"))) void string_masks(const char *s, apr_uint64_t *quotes,
                                                         apr_uint64_t *bs, apr_uint64_t *controls)
{
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\');
    const __m256i last_control = _mm256_set1_epi8(0x1f);
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)s);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(s + 32));

    *quotes = block_bits(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(hi, quote));
    *bs = block_bits(_mm256_cmpeq_epi8(lo, backslash), _mm256_cmpeq_epi8(hi, backslash));
    *controls = block_bits(_mm256_cmpeq_epi8(_mm256_min_epu8(lo, last_control), lo),
                           _mm256_cmpeq_epi8(_mm256_min_epu8(hi, last_control), hi));
}

/* scan_string 64 bytes a step, for the long strings of a conversation: the block's escapes
 * come from its backslash runs, its closing quote is its first quote not escaped, and what
 * lies before it is refused at the first raw control character or the backslash of the first
 * bad escape, as the byte walk refuses it. The last bytes are left to that walk. */
static const char *scan_string_blocks(scanner *sc, const char *s, int *escaped)
{
    apr_uint64_t pending = 0;

    while (sc->end - s >= 64) {
        apr_uint64_t quotes, bs, controls, esc = 0, before, letters;
        const char *bad = NULL;

        string_masks(s, &quotes, &bs, &controls);
        if (bs | pending)
            esc = escaped_bytes(bs, &pending);
        quotes &= ~esc;
        before = quotes ? (quotes & (0 - quotes)) - 1 : ~(apr_uint64_t)0;
        if (controls & before)
            bad = s + __builtin_ctzll(controls & before);
        for (letters = esc & before; letters; letters &= letters - 1) {
            const char *e = s + __builtin_ctzll(letters);

            if (bad && e - 1 > bad)
                break;
            if (!escape_good(sc, e)) {
                bad = e - 1;
                break;
            }
        }
        if (bad)
            return string_bad(sc, bad);
        if (esc & before)
            *escaped = 1;
        if (quotes)
            return s + __builtin_ctzll(quotes);
        s += 64;
    }
    /* an escape the last block's backslash began is read from that backslash */
    return scan_string_bytes(sc, pending ? s - 1 : s, escaped);
}
#endif

/* Validate a string whose content starts at s; returns its closing quote (see
 * scan_string_bytes). Most strings are names and short values that end, unescaped, within
 * 64 bytes: found so at the cost of one stop search. */
static const char *scan_string(scanner *sc, const char *s, int *escaped)
{
#ifdef S2A_JSON_AVX2
    if (sc->end - s >= 64 && blocks_usable()) {
        const char *stop = string_stop(s, s + 64);

        return stop < s + 64 && *stop == '"' ? stop : scan_string_blocks(sc, s, escaped);
    }
#endif
    return scan_string_bytes(sc, s, escaped);
}

const char *s2a_json_string_close(const char *s, const char *end)
{
    scanner sc = {s, end, NULL, NULL};
    int escaped = 0;

    return scan_string(&sc, s, &escaped);
}

static const char *scan_digits(scanner *sc, const char *s)
{
    if (s == sc->end)
        return fail_truncated(sc);
    if (!IS_DIGIT(*s))
        return fail_at(sc, s);
    while (s < sc->end && IS_DIGIT(*s))
        s++;
    return s;
}

static const char *scan_number(scanner *sc, const char *s)
{
    if (*s == '-')
        s++;
    if (s == sc->end)
        return fail_truncated(sc);
    if (*s == '0')
        s++;
    else if (!(s = scan_digits(sc, s)))
        return NULL;
    if (s < sc->end && *s == '.' && !(s = scan_digits(sc, s + 1)))
        return NULL;
    if (s < sc->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < sc->end && (*s == '+' || *s == '-'))
            s++;
        s = scan_digits(sc, s);
    }
    return s;
}

static const char *scan_literal(scanner *sc, const char *s, const char *lit)
{
    apr_size_t n = strlen(lit);
    apr_size_t avail = (apr_size_t)(sc->end - s);

    if (avail < n)
        return memcmp(s, lit, avail) == 0 ? fail_truncated(sc) : fail_at(sc, s);
    return memcmp(s, lit, n) == 0 ? s + n : fail_at(sc, s);
}

/* A bracket closing or opening one level at depth levels open around the skipped container
 * (base): pushed or matched on the stack. NULL (and the scanner's error) when it does not
 * match or nests too deeply. */
static ALWAYS_INLINE const char *skip_bracket(scanner *sc, const char *at, char *stack, int *depth)
{
    if (*at == '{' || *at == '[') {
        if (*depth == S2A_JSON_MAX_DEPTH) {
            sc->err = "JSON nested too deeply";
            sc->err_at = NULL;
            return NULL;
        }
        stack[(*depth)++] = *at;
    } else if (stack[*depth - 1] != (*at == '}' ? '{' : '[')) {
        return fail_at(sc, at);
    } else {
        --*depth;
    }
    return at + 1;
}

#ifdef S2A_JSON_AVX2
/* Bit i set when byte i of the 64 at s is a bracket outside every string; *stray the
 * backslashes outside strings, which JSON has none of (past the first, the block is not
 * read right: every backslash is taken for an escape). *pending and *inside (all ones inside
 * a string) carry from one block to the next. Inside is the xor of the unescaped quotes up
 * to each byte: a string's opening quote and content are in, its closing quote is out, and
 * so is every bracket between strings. */
static __attribute__((target("avx2"))) apr_uint64_t
block_brackets(const char *s, apr_uint64_t *pending, apr_uint64_t *inside, apr_uint64_t *stray)
{
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\');
    const __m256i case_bit = _mm256_set1_epi8(0x20), open = _mm256_set1_epi8('{');
    const __m256i close = _mm256_set1_epi8('}');
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)s);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(s + 32));
    /* '[' and ']' are '{' and '}' without the 0x20 bit; no other byte becomes either */
    __m256i lo_folded = _mm256_or_si256(lo, case_bit), hi_folded = _mm256_or_si256(hi, case_bit);
    apr_uint64_t quotes = block_bits(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(hi, quote));
    apr_uint64_t bs =
        block_bits(_mm256_cmpeq_epi8(lo, backslash), _mm256_cmpeq_epi8(hi, backslash));
    apr_uint64_t brackets = block_bits(
        _mm256_or_si256(_mm256_cmpeq_epi8(lo_folded, open), _mm256_cmpeq_epi8(lo_folded, close)),
        _mm256_or_si256(_mm256_cmpeq_epi8(hi_folded, open), _mm256_cmpeq_epi8(hi_folded, close)));
    apr_uint64_t in;

    if (bs | *pending) {
        quotes &= ~escaped_bytes(bs, pending);
    }
    in = quotes;
    in ^= in << 1;
    in ^= in << 2;
    in ^= in << 4;
    in ^= in << 8;
    in ^= in << 16;
    in ^= in << 32;
    in ^= *inside;
    *inside = (apr_uint64_t)((apr_int64_t)in >> 63);
    *stray = bs & ~in;
    return brackets & ~in;
}

/* Walks brackets from s (outside any string) 64 bytes at a time, strings passed over whole,
 * until one leaves *depth at `base` or `stop`: returns the position after it. NULL with the
 * scanner's error when the buffer ends first, or a bracket or a backslash is refused. */
static const char *skip_blocks(scanner *sc, const char *s, char *stack, int *depth, int base,
                               int stop)
{
    apr_uint64_t pending = 0, inside = 0;
    char tail[64];

    while (s < sc->end) {
        apr_size_t left = (apr_size_t)(sc->end - s);
        const char *block = s;
        apr_uint64_t brackets, stray;

        if (left < 64) {
            memset(tail, ' ', sizeof(tail));
            memcpy(tail, s, left);
            block = tail;
        }
        brackets = block_brackets(block, &pending, &inside, &stray);
        if (stray)
            brackets &= (stray & (0 - stray)) - 1;
        for (; brackets; brackets &= brackets - 1) {
            const char *at = s + __builtin_ctzll(brackets);

            if (!skip_bracket(sc, at, stack, depth))
                return NULL;
            if (*depth == base || *depth == stop)
                return at + 1;
        }
        if (stray)
            return fail_at(sc, s + __builtin_ctzll(stray));
        s += left < 64 ? left : 64;
    }
    return fail_truncated(sc);
}
#endif

/* Skip the container opening at s, depth levels being open around it, checking only what
 * decides where it ends: strings are closed (escapes trusted), brackets balance and match,
 * no backslash stands outside a string, the depth limit holds. Returns the position after its
 * closing bracket. With `n`, the container is the array of a noted key: a string in one of its
 * element objects is a member's name when a ':' follows it, else the value of the name before it.
 * Where no string is noted, brackets are found a block at a time. */
static ALWAYS_INLINE const char *skip_container_as(scanner *sc, const char *s, char *stack,
                                                   int depth, const s2a_json_member_note *n)
{
    const int base = depth, members = depth + 2;
    int wanted = 0;
#ifdef S2A_JSON_AVX2
    const int blocks = blocks_usable();
#endif

    while (s < sc->end) {
        const char *q;
        int noting = n && depth == members && stack[depth - 1] == '{';

#ifdef S2A_JSON_AVX2
        if (blocks && !noting) {
            if (!(s = skip_blocks(sc, s, stack, &depth, base, n ? members : -1)))
                return NULL;
            if (depth == base)
                return s;
            continue;
        }
#endif
        switch (*s) {
        case '"':
            if (!(q = string_close(s + 1, sc->end)))
                return fail_truncated(sc);
            if (noting) {
                const char *after = skip_ws(q + 1, sc->end);

                if (after < sc->end && *after == ':') {
                    wanted = key_equals(s + 1, q, n->member);
                } else if (wanted) {
                    s2a_json_span value = {s, (apr_size_t)(q + 1 - s), S2A_JSON_STRING};

                    n->note(n->ctx, &value);
                }
            }
            s = q + 1;
            break;
        case '{':
        case '[':
        case '}':
        case ']':
            if (!(s = skip_bracket(sc, s, stack, &depth)))
                return NULL;
            if (depth == base)
                return s;
            break;
        case '\\':
            return fail_at(sc, s);
        default:
            s++;
            break;
        }
    }
    return fail_truncated(sc);
}

static const char *skip_container(scanner *sc, const char *s, char *stack, int depth)
{
    return skip_container_as(sc, s, stack, depth, NULL);
}

static const char *skip_noted(scanner *sc, const char *s, char *stack, int depth,
                              const s2a_json_member_note *n)
{
    return skip_container_as(sc, s, stack, depth, n);
}

static int match_key(const char *k, const char *kend, int escaped, const char *const *keys,
                     int nkeys)
{
    apr_size_t klen = (apr_size_t)(kend - k);
    int i;

    for (i = 0; i < nkeys; i++) {
        if (escaped ? key_equals(k, kend, keys[i])
                    : (klen ? keys[i][0] == *k : keys[i][0] == '\0') && strlen(keys[i]) == klen &&
                          memcmp(k, keys[i], klen) == 0)
            return i;
    }
    return -1;
}

enum { ST_VALUE, ST_OBJ_FIRST, ST_OBJ_KEY, ST_ARR_FIRST, ST_AFTER_VALUE };

static int scan_plain(apr_pool_t *p, const char *buf, apr_size_t len, const char *const *keys,
                      int nkeys, int nchecked, int once, s2a_json_span *out, const char **err);
static int scan_noting(apr_pool_t *p, const char *buf, apr_size_t len, const char *const *keys,
                       int nkeys, int nchecked, const s2a_json_member_note *n, s2a_json_span *out,
                       const char **err);
static int scan_values(apr_pool_t *p, const char *buf, apr_size_t len, const char *const *keys,
                       int nkeys, const s2a_json_values *vs, s2a_json_span *out, const char **err);

int s2a_json_scan_object(apr_pool_t *p, const char *buf, apr_size_t len, const char *const *keys,
                         int nkeys, s2a_json_span *out, const char **err)
{
    return scan_plain(p, buf, len, keys, nkeys, nkeys, 0, out, err);
}

int s2a_json_scan_object_some(apr_pool_t *p, const char *buf, apr_size_t len,
                              const char *const *keys, int nkeys, int nchecked, s2a_json_span *out,
                              const char **err)
{
    return scan_plain(p, buf, len, keys, nkeys, nchecked, 1, out, err);
}

int s2a_json_scan_object_noting(apr_pool_t *p, const char *buf, apr_size_t len,
                                const char *const *keys, int nkeys, int nchecked,
                                const s2a_json_member_note *n, s2a_json_span *out, const char **err)
{
    return scan_noting(p, buf, len, keys, nkeys, nchecked, n, out, err);
}

int s2a_json_scan_object_values(apr_pool_t *p, const char *buf, apr_size_t len,
                                const char *const *keys, int nkeys, const s2a_json_values *v,
                                s2a_json_span *out, const char **err)
{
    return scan_values(p, buf, len, keys, nkeys, v, out, err);
}

/* A value inside the read one ended at s. At stack depth `depth` a value is at level
 * depth - 1 of the read value (which sits at depth 1); names[depth] names a member's. */
static void value_ended(const s2a_json_values *vs, int levels, const s2a_json_span *names,
                        const char *start, const char *s, const char *stack, int depth,
                        s2a_json_type type)
{
    static const s2a_json_span element = {NULL, 0, S2A_JSON_NONE};
    s2a_json_span value;

    if (depth < 2 || depth - 1 > levels)
        return;
    value.p = start;
    value.len = (apr_size_t)(s - start);
    value.type = type;
    vs->each(vs->ctx, depth - 1, stack[depth - 1] == '{' ? &names[depth] : &element, &value);
}

/* `once`: a requested key met twice at the top is refused. Inlined into one copy per use
 * below, so that the plain scan carries no noting or reading work in its loop. */
static ALWAYS_INLINE int scan_object(apr_pool_t *p, const char *buf, apr_size_t len,
                                     const char *const *keys, int nkeys, int nchecked, int once,
                                     const s2a_json_member_note *n, const s2a_json_values *vs,
                                     s2a_json_span *out, const char **err)
{
    /* reading vs's value: its members' names and where its containers begin, by depth */
    s2a_json_span names[S2A_JSON_VALUES_DEPTH + 2];
    const char *starts[S2A_JSON_VALUES_DEPTH + 2];
    const int levels = !vs                                 ? 0
                       : vs->depth > S2A_JSON_VALUES_DEPTH ? S2A_JSON_VALUES_DEPTH
                                                           : vs->depth;
    int reading = 0;
    scanner sc = {buf, buf + len, NULL, NULL};
    char stack[S2A_JSON_MAX_DEPTH];
    int depth = 0, state = ST_OBJ_FIRST;
    int cur_key = -1;  /* requested key whose value comes next at depth 1 */
    int open_key = -1; /* requested key whose container value is open at depth 2 */
    const char *open_start = NULL;
    const char *s;
    unsigned long long seen = 0; /* the requested keys met so far */
    int i;

    for (i = 0; i < nkeys; i++) {
        out[i].p = NULL;
        out[i].len = 0;
        out[i].type = S2A_JSON_NONE;
    }
    s = skip_ws(buf, sc.end);
    if (s == sc.end) {
        *err = "empty JSON body";
        return -1;
    }
    if (*s != '{') {
        *err = "body is not a JSON object";
        return -1;
    }
    stack[depth++] = '{';
    s++;

    for (;;) {
        const char *v;
        s2a_json_type type;
        int escaped = 0;

        s = skip_ws(s, sc.end);
        if (s == sc.end) {
            if (depth == 0)
                return 0;
            fail_truncated(&sc);
            break;
        }
        if (state == ST_AFTER_VALUE) {
            if (depth == 0) {
                *err = "trailing data after JSON object";
                return -1;
            }
            if (*s == ',') {
                state = stack[depth - 1] == '{' ? ST_OBJ_KEY : ST_VALUE;
                s++;
                continue;
            }
            if ((*s == '}' && stack[depth - 1] == '{') || (*s == ']' && stack[depth - 1] == '[')) {
                depth--;
                s++;
                if (reading && depth >= 2 && depth <= levels + 1) /* starts[] holds those */
                    value_ended(vs, levels, names, starts[depth], s, stack, depth,
                                s[-1] == '}' ? S2A_JSON_OBJECT : S2A_JSON_ARRAY);
                if (depth == 1)
                    reading = 0;
                if (depth == 1 && open_key >= 0) {
                    out[open_key].p = open_start;
                    out[open_key].len = (apr_size_t)(s - open_start);
                    out[open_key].type = *open_start == '{' ? S2A_JSON_OBJECT : S2A_JSON_ARRAY;
                    open_key = -1;
                }
                continue;
            }
            fail_at(&sc, s);
            break;
        }
        if (state == ST_OBJ_FIRST || state == ST_ARR_FIRST) {
            if (*s == (state == ST_OBJ_FIRST ? '}' : ']')) {
                /* An empty container is a complete value: let the closing path handle it. */
                state = ST_AFTER_VALUE;
                continue;
            }
            state = state == ST_OBJ_FIRST ? ST_OBJ_KEY : ST_VALUE;
        }
        if (state == ST_OBJ_KEY) {
            const char *k = s + 1, *kend;

            if (*s != '"') {
                fail_at(&sc, s);
                break;
            }
            if (!(kend = scan_string(&sc, k, &escaped)))
                break;
            if (reading && depth <= levels + 1) {
                names[depth].p = s;
                names[depth].len = (apr_size_t)(kend + 1 - s);
                names[depth].type = S2A_JSON_STRING;
            }
            if (depth == 1) {
                cur_key = match_key(k, kend, escaped, keys, nkeys);
                /* two values of one key: parsers disagree on which counts */
                if (once && cur_key >= 0 && cur_key < 64 && (seen >> cur_key & 1)) {
                    *err = p ? apr_psprintf(p, "%s: the key appears twice", keys[cur_key])
                             : "a key appears twice";
                    return -2;
                }
                if (cur_key >= 0 && cur_key < 64) {
                    seen |= 1ULL << cur_key;
                }
            }
            s = skip_ws(kend + 1, sc.end);
            if (s == sc.end) {
                fail_truncated(&sc);
                break;
            }
            if (*s != ':') {
                fail_at(&sc, s);
                break;
            }
            s++;
            state = ST_VALUE;
            continue;
        }

        /* ST_VALUE */
        v = s;
        state = ST_AFTER_VALUE;
        switch (*s) {
        case '{':
        case '[':
            if (depth == S2A_JSON_MAX_DEPTH) {
                *err = "JSON nested too deeply";
                return -1;
            }
            if (depth == 1 && (cur_key < 0 || cur_key >= nchecked)) {
                /* Nobody reads this value, or its reader takes it as it is: only
                 * its extent matters here. */
                s = n && cur_key == n->key && *s == '[' ? skip_noted(&sc, s, stack, depth, n)
                                                        : skip_container(&sc, s, stack, depth);
                if (!s)
                    break;
                if (cur_key >= 0) {
                    out[cur_key].p = v;
                    out[cur_key].len = (apr_size_t)(s - v);
                    out[cur_key].type = *v == '{' ? S2A_JSON_OBJECT : S2A_JSON_ARRAY;
                }
                continue;
            }
            if (depth == 1) {
                open_key = cur_key;
                open_start = s;
                reading = levels > 0 && cur_key >= 0 && cur_key == vs->key;
            }
            if (reading && depth >= 2 && depth <= levels + 1)
                starts[depth] = s;
            stack[depth++] = *s;
            state = *s == '{' ? ST_OBJ_FIRST : ST_ARR_FIRST;
            s++;
            continue;
        case '"':
            type = S2A_JSON_STRING;
            s = scan_string(&sc, s + 1, &escaped);
            if (s)
                s++;
            break;
        case 't':
            type = S2A_JSON_TRUE;
            s = scan_literal(&sc, s, "true");
            break;
        case 'f':
            type = S2A_JSON_FALSE;
            s = scan_literal(&sc, s, "false");
            break;
        case 'n':
            type = S2A_JSON_NULL;
            s = scan_literal(&sc, s, "null");
            break;
        default:
            /* Anything else is refused by the number syntax. */
            type = S2A_JSON_NUMBER;
            s = scan_number(&sc, s);
            break;
        }
        if (!s)
            break;
        if (reading)
            value_ended(vs, levels, names, v, s, stack, depth, type);
        if (depth == 1 && cur_key >= 0) {
            out[cur_key].p = v;
            out[cur_key].len = (apr_size_t)(s - v);
            out[cur_key].type = type;
        }
    }

    if (sc.err_at && p)
        *err = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT,
                            (apr_size_t)(sc.err_at - buf));
    else
        *err = sc.err;
    return -1;
}

static int scan_plain(apr_pool_t *p, const char *buf, apr_size_t len, const char *const *keys,
                      int nkeys, int nchecked, int once, s2a_json_span *out, const char **err)
{
    return scan_object(p, buf, len, keys, nkeys, nchecked, once, NULL, NULL, out, err);
}

static int scan_noting(apr_pool_t *p, const char *buf, apr_size_t len, const char *const *keys,
                       int nkeys, int nchecked, const s2a_json_member_note *n, s2a_json_span *out,
                       const char **err)
{
    return scan_object(p, buf, len, keys, nkeys, nchecked, 1, n, NULL, out, err);
}

static int scan_values(apr_pool_t *p, const char *buf, apr_size_t len, const char *const *keys,
                       int nkeys, const s2a_json_values *vs, s2a_json_span *out, const char **err)
{
    return scan_object(p, buf, len, keys, nkeys, nkeys, 1, NULL, vs, out, err);
}

int s2a_json_array_next(const s2a_json_span *arr, apr_size_t *pos, s2a_json_span *out)
{
    const char *s, *end, *v;
    s2a_json_type type;
    int more;

    if (!arr || arr->type != S2A_JSON_ARRAY || !arr->p || arr->len < 2)
        return 0;
    end = arr->p + arr->len - 1; /* the closing bracket */
    s = skip_ws(arr->p + (*pos ? *pos : 1), end);
    if (*pos && s < end && *s == ',')
        s = skip_ws(s + 1, end);
    if (s >= end)
        return 0;
    v = s;
    /* end + 1: a last scalar element ends at the closing bracket */
    if (!(s = skip_value(v, end + 1, &type, &more)))
        return 0;
    out->p = v;
    out->len = (apr_size_t)(s - v);
    out->type = type;
    *pos = (apr_size_t)(s - arr->p);
    return 1;
}

static void clear_spans(s2a_json_span *spans, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        spans[i].p = NULL;
        spans[i].len = 0;
        spans[i].type = S2A_JSON_NONE;
    }
}

/* The members of the object at s ('{'), bounded by end: members[i] the value of keys[i].
 * Returns the position after the object, or NULL where it is malformed or cut. */
static const char *walk_members(const char *s, const char *end, const char *const *keys, int nkeys,
                                s2a_json_span *members)
{
    s = skip_ws(s + 1, end);
    while (s < end && *s == '"') {
        const char *k = s + 1, *kend, *m;
        s2a_json_type type;
        int more, i;

        if (!(kend = string_close(k, end)))
            return NULL;
        s = skip_ws(kend + 1, end);
        if (s >= end || *s != ':')
            return NULL;
        m = skip_ws(s + 1, end);
        if (!(s = skip_value(m, end, &type, &more)))
            return NULL;
        for (i = 0; i < nkeys; i++) {
            if (key_equals(k, kend, keys[i])) {
                members[i].p = m;
                members[i].len = (apr_size_t)(s - m);
                members[i].type = type;
                break;
            }
        }
        s = skip_ws(s, end);
        if (s < end && *s == ',')
            s = skip_ws(s + 1, end);
    }
    if (s >= end || *s != '}')
        return NULL;
    return s + 1;
}

int s2a_json_array_next_members(const s2a_json_span *arr, apr_size_t *pos, const char *const *keys,
                                int nkeys, s2a_json_span *out, s2a_json_span *members)
{
    const char *s, *end, *v;
    s2a_json_type type;
    int more;

    clear_spans(members, nkeys);
    if (!arr || arr->type != S2A_JSON_ARRAY || !arr->p || arr->len < 2 || !keys)
        return 0;
    end = arr->p + arr->len - 1; /* the closing bracket */
    s = skip_ws(arr->p + (*pos ? *pos : 1), end);
    if (*pos && s < end && *s == ',')
        s = skip_ws(s + 1, end);
    if (s >= end)
        return 0;
    v = s;
    if (*v != '{') {
        if (!(s = skip_value(v, end + 1, &type, &more)))
            return 0;
    } else {
        /* the members are walked once: the object ends after the last */
        if (!(s = walk_members(v, end, keys, nkeys, members)))
            return 0;
        type = S2A_JSON_OBJECT;
    }
    out->p = v;
    out->len = (apr_size_t)(s - v);
    out->type = type;
    *pos = (apr_size_t)(s - arr->p);
    return 1;
}

int s2a_json_array_next_member(const s2a_json_span *arr, apr_size_t *pos, const char *key,
                               s2a_json_span *out, s2a_json_span *member)
{
    if (!key) {
        member->p = NULL;
        member->len = 0;
        member->type = S2A_JSON_NONE;
        return 0;
    }
    return s2a_json_array_next_members(arr, pos, &key, 1, out, member);
}

int s2a_json_object_get(const s2a_json_span *obj, const char *key, s2a_json_span *out)
{
    s2a_json_span v;

    if (!key || !s2a_json_object_members(obj, &key, 1, &v))
        return 0;
    *out = v;
    return 1;
}

/* s2a_json_object_members; with `first`, the walk ends at the first of the keys met. */
static int members_of(const s2a_json_span *obj, const char *const *keys, int nkeys,
                      s2a_json_span *out, int first)
{
    const char *s, *end;
    int i, found = 0;

    clear_spans(out, nkeys);
    if (!obj || obj->type != S2A_JSON_OBJECT || !obj->p || obj->len < 2)
        return 0;
    s = obj->p + 1;
    end = obj->p + obj->len;
    for (;;) {
        const char *k, *kend, *v;
        s2a_json_type type;
        int more;

        s = skip_ws(s, end);
        if (s >= end || *s != '"')
            break;
        k = s + 1;
        if (!(kend = string_close(k, end)))
            break;
        s = skip_ws(kend + 1, end);
        if (s >= end || *s != ':')
            break;
        v = skip_ws(s + 1, end);
        if (!(s = skip_value(v, end, &type, &more)))
            break;
        for (i = 0; i < nkeys; i++) {
            if (key_equals(k, kend, keys[i])) {
                found += out[i].type == S2A_JSON_NONE;
                out[i].p = v;
                out[i].len = (apr_size_t)(s - v);
                out[i].type = type;
                break;
            }
        }
        if (first && found)
            break;
        s = skip_ws(s, end);
        if (s >= end || *s != ',')
            break;
        s++;
    }
    return found;
}

int s2a_json_object_members(const s2a_json_span *obj, const char *const *keys, int nkeys,
                            s2a_json_span *out)
{
    return members_of(obj, keys, nkeys, out, 0);
}

int s2a_json_object_has(const s2a_json_span *obj, const char *key)
{
    s2a_json_span v;

    return key && members_of(obj, &key, 1, &v, 1);
}

int s2a_json_string_equals(const s2a_json_span *str, const char *s)
{
    if (!str || str->type != S2A_JSON_STRING || !str->p || str->len < 2 || !s)
        return 0;
    return key_equals(str->p + 1, str->p + str->len - 1, s);
}

char *s2a_json_string_dup(apr_pool_t *p, const s2a_json_span *str)
{
    const char *s, *end;
    char *out, *o;

    if (!str || !str->p || str->len < 2 || str->p[0] != '"' || str->p[str->len - 1] != '"')
        return NULL;
    s = str->p + 1;
    end = str->p + str->len - 1;
    if (memchr(s, '\0', (apr_size_t)(end - s)))
        return NULL;
    /* Escapes only ever shrink, so the raw length bounds the decoded one. */
    o = out = apr_palloc(p, (apr_size_t)(end - s) + 1);
    while (s < end) {
        const char *b = memchr(s, '\\', (apr_size_t)(end - s));
        const char *stop = b ? b : end;
        apr_size_t n;

        if (memchr(s, '"', (apr_size_t)(stop - s)))
            return NULL;
        memcpy(o, s, (apr_size_t)(stop - s));
        o += stop - s;
        if (!b)
            break;
        if (!(s = decode_escape(b, end, o, &n)))
            return NULL;
        o += n;
    }
    *o = '\0';
    return out;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there are not one. */
static apr_size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    apr_size_t n, i;
    unsigned long cp;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Reject overlong forms, surrogates and code points past U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

char *s2a_json_escape(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *in = (const unsigned char *)(s ? s : "");
    apr_size_t len = strlen((const char *)in);
    /* Worst case: every byte becomes a 6-char \u00XX escape. */
    char *out = apr_palloc(p, 6 * len + 1);
    char *o = out;

    while (*in) {
        unsigned char c = *in;
        apr_size_t n;

        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            in++;
            continue;
        }
        if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 0x0f];
                break;
            }
            in++;
            continue;
        }
        n = utf8_seq_len(in);
        if (n == 0) {
            /* U+FFFD in UTF-8: three bytes, less than the 6 reserved for this byte. */
            *o++ = (char)0xef;
            *o++ = (char)0xbf;
            *o++ = (char)0xbd;
            in++;
            continue;
        }
        memcpy(o, in, n);
        o += n;
        in += n;
    }
    *o = '\0';
    return out;
}

char *s2a_json_quote(apr_pool_t *p, const char *s)
{
    return s ? apr_pstrcat(p, "\"", s2a_json_escape(p, s), "\"", NULL) : NULL;
}

/* Order by offset; at one offset insertions first; then the caller's order (the pointers
 * all point into one array). */
static int edit_cmp(const void *a, const void *b)
{
    const s2a_json_edit *x = *(const s2a_json_edit *const *)a;
    const s2a_json_edit *y = *(const s2a_json_edit *const *)b;

    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    if ((x->len == 0) != (y->len == 0))
        return x->len == 0 ? -1 : 1;
    return x < y ? -1 : x > y;
}

char *s2a_json_splice(apr_pool_t *p, const char *buf, apr_size_t len, s2a_json_edit *edits,
                      int nedits, apr_size_t *out_len)
{
    s2a_json_edit **order = NULL;
    apr_size_t total = len, pos = 0;
    char *out, *o;
    int i;

    if (nedits < 0 || (nedits > 0 && !edits))
        return NULL;
    if (nedits > 0) {
        order = apr_palloc(p, sizeof(*order) * (apr_size_t)nedits);
        for (i = 0; i < nedits; i++) {
            s2a_json_edit *e = &edits[i];

            if (e->off > len || e->len > len - e->off || (e->text_len && !e->text))
                return NULL;
            order[i] = e;
        }
        qsort(order, (apr_size_t)nedits, sizeof(*order), edit_cmp);
    }
    for (i = 0; i < nedits; i++) {
        if (i > 0 && order[i]->off < order[i - 1]->off + order[i - 1]->len)
            return NULL;
        total -= order[i]->len;
        if (order[i]->text_len > (apr_size_t)-2 - total)
            return NULL;
        total += order[i]->text_len;
    }
    o = out = apr_palloc(p, total + 1);
    for (i = 0; i < nedits; i++) {
        const s2a_json_edit *e = order[i];

        memcpy(o, buf + pos, e->off - pos);
        o += e->off - pos;
        if (e->text_len)
            memcpy(o, e->text, e->text_len);
        o += e->text_len;
        pos = e->off + e->len;
    }
    memcpy(o, buf + pos, len - pos);
    o += len - pos;
    *o = '\0';
    if (out_len)
        *out_len = total;
    return out;
}

int s2a_json_prefix_find_model(const char *buf, apr_size_t len, apr_size_t *off, apr_size_t *vlen)
{
    const char *end, *s;

    /* no byte yet: buf may be NULL, which no offset may be added to */
    if (len == 0)
        return 0;
    end = buf + len;
    s = skip_ws(buf, end);
    if (s == end)
        return 0;
    if (*s != '{')
        return -1;
    s++;
    for (;;) {
        const char *kend, *v;
        s2a_json_type type;
        int more, is_model;

        s = skip_ws(s, end);
        if (s == end)
            return 0;
        if (*s != '"')
            return -1;
        if (!(kend = string_close(s + 1, end)))
            return 0;
        is_model = key_equals(s + 1, kend, "model");
        s = skip_ws(kend + 1, end);
        if (s == end)
            return 0;
        if (*s != ':')
            return -1;
        v = skip_ws(s + 1, end);
        if (!(s = skip_value(v, end, &type, &more)))
            return more ? 0 : -1;
        if (is_model) {
            if (type != S2A_JSON_STRING)
                return -1;
            *off = (apr_size_t)(v - buf);
            *vlen = (apr_size_t)(s - v);
            return 1;
        }
        s = skip_ws(s, end);
        if (s == end)
            return 0;
        if (*s != ',')
            return -1;
        s++;
    }
}
