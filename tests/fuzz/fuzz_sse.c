/* The SSE parser (s2a_sse.h): the events of a stream do not depend on where
 * its chunks end (whole, split at a byte the input picks, byte by byte),
 * they are those a plain line-by-line reading of the event-stream format
 * finds, filtered and capped as the header says, and the memory a parser
 * takes stays within its cap whatever the stream's length. And
 * s2a_sse_rewrite_message_model changes one JSON string and nothing else.
 *
 * Input: flags, the cap, the split point, then the stream. */
#include <string.h>

#include <apr_strings.h>

#include "fuzz.h"
#include "s2a_json.h"
#include "s2a_sse.h"

#define MAX_EVENTS 4096

typedef struct {
    const char *event, *data;
    apr_size_t elen, dlen;
    apr_size_t index; /* of the event among all complete ones */
} event_t;

typedef struct {
    apr_pool_t *pool;
    event_t ev[MAX_EVENTS];
    int n;
    s2a_sse *sse;
} events_t;

static const char *const wanted[] = {"message_start", "message_delta", "content_block_delta", NULL};

static void record(void *baton, const char *event, apr_size_t elen, const char *data,
                   apr_size_t dlen)
{
    events_t *r = baton;
    event_t *e;

    FUZZ_CHECK(event[elen] == '\0' && data[dlen] == '\0');
    if (r->n == MAX_EVENTS) {
        return;
    }
    /* copies that do not count as the parser's memory */
    e = &r->ev[r->n++];
    e->event = fuzz_copy(r->pool, event, elen, 1);
    e->elen = elen;
    e->data = fuzz_copy(r->pool, data, dlen, 1);
    e->dlen = dlen;
    e->index = s2a_sse_events(r->sse);
}

static int is_wanted(const char *name, apr_size_t len)
{
    int i;
    for (i = 0; wanted[i]; i++) {
        if (strlen(wanted[i]) == len && memcmp(wanted[i], name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The event-stream format read line by line, with the header's filter and
 * cap: what a parser must report. */
typedef struct {
    events_t out;
    apr_size_t complete, dropped;
    apr_size_t cap, dlen, elen; /* bytes buffered for the event, as the parser counts */
    int overflow;
} reference_t;

/* n more bytes buffered for the event, unless that passes the cap. */
static void buffered(reference_t *ref, apr_size_t *len, apr_size_t n)
{
    if (ref->overflow || n == 0) {
        return;
    }
    if (n > ref->cap - (ref->dlen + ref->elen)) {
        ref->overflow = 1;
    } else {
        *len += n;
    }
}

static void reference(apr_pool_t *p, const char *s, size_t n, int filtered, apr_size_t cap,
                      reference_t *ref)
{
    const char *end = s + n, *name = "";
    char *data = apr_palloc(p, n + 1);
    apr_size_t dlen = 0, nlen = 0;
    int have_data = 0, lost = 0, excluded = 0;

    memset(ref, 0, sizeof(*ref));
    ref->cap = cap;
    while (s < end) {
        const char *eol = s, *colon, *value;
        apr_size_t flen, vlen;

        while (eol < end && *eol != '\n' && *eol != '\r') {
            eol++;
        }
        if (eol == end) {
            break; /* a line without its end is never acted on */
        }
        if (eol == s) {
            if (ref->overflow) {
                ref->complete++;
                ref->dropped++;
            } else if (have_data) {
                ref->complete++;
                if (!lost && !excluded && ref->out.n < MAX_EVENTS) {
                    event_t *e = &ref->out.ev[ref->out.n++];
                    e->event = nlen ? apr_pstrmemdup(p, name, nlen) : "message";
                    e->elen = nlen ? nlen : 7;
                    e->data = apr_pstrmemdup(p, data, dlen);
                    e->dlen = dlen;
                    e->index = ref->complete;
                }
            }
            dlen = nlen = ref->dlen = ref->elen = 0;
            have_data = lost = excluded = ref->overflow = 0;
        } else if (*s != ':') {
            colon = memchr(s, ':', (size_t)(eol - s));
            flen = colon ? (size_t)(colon - s) : (size_t)(eol - s);
            value = colon ? colon + 1 : eol;
            if (value < eol && *value == ' ') {
                value++;
            }
            vlen = (size_t)(eol - value);
            if (flen == 4 && memcmp(s, "data", 4) == 0) {
                /* a data line under an unwanted name is lost, and so is the event */
                lost = lost || excluded;
                if (!lost) {
                    if (have_data) {
                        buffered(ref, &ref->dlen, 1);
                        data[dlen++] = '\n';
                    }
                    buffered(ref, &ref->dlen, vlen);
                    memcpy(data + dlen, value, vlen);
                    dlen += vlen;
                }
                have_data = 1;
            } else if (flen == 5 && memcmp(s, "event", 5) == 0) {
                name = value;
                nlen = vlen;
                ref->elen = 0;
                buffered(ref, &ref->elen, vlen);
                excluded = filtered && nlen && !ref->overflow && !is_wanted(name, nlen);
            }
        }
        s = eol + 1;
        if (*eol == '\r' && s < end && *s == '\n') {
            s++;
        }
    }
}

static void feed(s2a_sse *s, const char *buf, size_t n, size_t step)
{
    size_t at;
    for (at = 0; at < n; at += step) {
        s2a_sse_feed(s, buf + at, n - at < step ? n - at : step);
    }
}

static int same_event(const event_t *a, const event_t *b)
{
    return a->elen == b->elen && a->dlen == b->dlen && memcmp(a->event, b->event, a->elen) == 0 &&
           memcmp(a->data, b->data, a->dlen) == 0 && a->index == b->index;
}

/* One parser fed the stream in two pieces cut at `split`, or in pieces of
 * `step` bytes. */
static void run(apr_pool_t *p, events_t *r, const char *buf, size_t n, size_t split, size_t step,
                int filtered, apr_size_t cap)
{
    apr_size_t before;

    r->pool = p;
    r->n = 0;
    r->sse = s2a_sse_create(p, cap, record, r);
    if (filtered) {
        s2a_sse_only(r->sse, wanted);
    }
    before = fuzz_allocated;
    if (step) {
        feed(r->sse, buf, n, step);
    } else {
        s2a_sse_feed(r->sse, buf, split);
        s2a_sse_feed(r->sse, buf + split, n - split);
    }
    /* two buffers, each grown by doubling up to the cap and a NUL */
    FUZZ_CHECK(fuzz_allocated - before <= 2 * (3 * (cap + 1) + 512));
}

/* out is raw with one JSON string replaced by `quoted`. */
static int one_string_replaced(const char *raw, size_t n, const char *out, size_t out_len,
                               const char *quoted)
{
    size_t qlen = strlen(quoted), vlen, head, off;

    if (out_len + 2 > n + qlen) {
        return 0;
    }
    vlen = n + qlen - out_len;
    for (head = 0; head < n && head < out_len && raw[head] == out[head]; head++)
        ;
    for (off = 0; off <= head && off + vlen <= n; off++) {
        if (memcmp(out + off, quoted, qlen) == 0 &&
            memcmp(raw + off + vlen, out + off + qlen, n - off - vlen) == 0) {
            return raw[off] == '"' && raw[off + vlen - 1] == '"';
        }
    }
    return 0;
}

/* A rewritten event is the same event with the new name, and rewriting it
 * again with that name changes nothing. */
static void check_rewrite(apr_pool_t *p, const char *raw, size_t n)
{
    static const char *const names[] = {"claude-client", "a\"b\\c\x01\xff"};
    size_t out_len = 0, again_len = 0;
    char *out, *again;
    int i;

    for (i = 0; i < 2; i++) {
        out = s2a_sse_rewrite_message_model(p, raw, n, names[i], &out_len);
        if (!out) {
            continue;
        }
        FUZZ_CHECK(out[out_len] == '\0');
        FUZZ_CHECK(one_string_replaced(raw, n, out, out_len, s2a_json_quote(p, names[i])));
        again = s2a_sse_rewrite_message_model(p, out, out_len, names[i], &again_len);
        FUZZ_CHECK(again && again_len == out_len && memcmp(again, out, out_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};
    int filtered = fuzz_u8(&in) & 1, i, j;
    apr_size_t cap = 1 + fuzz_u16(&in) % 2048;
    size_t split = fuzz_u16(&in), n;
    const uint8_t *stream = fuzz_take(&in, size, &n);
    const char *buf = fuzz_copy(p, stream, n, 0);
    static events_t runs[3];
    static reference_t ref;

    split = n ? split % (n + 1) : 0;
    reference(p, buf, n, filtered, cap, &ref);
    run(p, &runs[0], buf, n, split, 0, filtered, cap);
    run(p, &runs[1], buf, n, 0, n ? n : 1, filtered, cap);
    run(p, &runs[2], buf, n, 0, 1, filtered, cap);
    for (i = 0; i < 3; i++) {
        FUZZ_CHECK(s2a_sse_events(runs[i].sse) == ref.complete);
        FUZZ_CHECK(runs[i].n == ref.out.n);
        for (j = 0; j < runs[i].n; j++) {
            FUZZ_CHECK(same_event(&runs[i].ev[j], &ref.out.ev[j]));
        }
        FUZZ_CHECK(s2a_sse_dropped(runs[i].sse) == ref.dropped);
    }
    check_rewrite(p, buf, n);
    apr_pool_destroy(p);
    return 0;
}
