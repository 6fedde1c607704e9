/* Incremental text/event-stream parser: see s2a_sse.h. */
#include "s2a_sse.h"
#include "s2a_json.h"

#include <string.h>

#include <apr_strings.h>

/* Where the parser stands inside the current line. */
enum { LN_START, LN_FIELD, LN_VALUE_START, LN_VALUE, LN_COMMENT };

/* What the value of the current field line feeds. */
enum { FD_OTHER, FD_DATA, FD_EVENT };

typedef struct {
    char *p;
    apr_size_t len;
    apr_size_t cap;
} growbuf;

struct s2a_sse {
    apr_pool_t *pool;
    apr_size_t max_event;
    s2a_sse_event_fn fn;
    void *baton;
    int state;
    int after_cr;  /* the last byte ended a line with CR: an LF right after belongs to it */
    char field[8]; /* long enough for the names we act on; longer ones are ignored */
    apr_size_t field_len;
    int field_kind;
    growbuf data;
    growbuf event;
    int have_data;
    int overflow;
    const char **only; /* names of the events to report, NULL for all */
    apr_size_t *only_len;
    int nonly;
    int name_excluded; /* the current event: line names an event not in only */
    int skip;          /* a data line of this event was not kept: do not report it */
    int no_cr;         /* the chunk being fed has no CR: lines end at LF only */
    apr_size_t dropped;
    apr_size_t events;
};

s2a_sse *s2a_sse_create(apr_pool_t *p, apr_size_t max_event, s2a_sse_event_fn fn, void *baton)
{
    s2a_sse *s = apr_pcalloc(p, sizeof(*s));

    s->pool = p;
    s->max_event = max_event;
    s->fn = fn;
    s->baton = baton;
    s->state = LN_START;
    return s;
}

void s2a_sse_only(s2a_sse *s, const char *const *events)
{
    int i, n = 0;

    s->only = NULL;
    s->nonly = 0;
    if (!events)
        return;
    while (events[n])
        n++;
    s->only = apr_palloc(s->pool, sizeof(*s->only) * (apr_size_t)(n ? n : 1));
    s->only_len = apr_palloc(s->pool, sizeof(*s->only_len) * (apr_size_t)(n ? n : 1));
    for (i = 0; i < n; i++) {
        s->only_len[i] = strlen(events[i]);
        s->only[i] = apr_pstrmemdup(s->pool, events[i], s->only_len[i]);
    }
    s->nonly = n;
}

apr_size_t s2a_sse_dropped(const s2a_sse *s)
{
    return s->dropped;
}

apr_size_t s2a_sse_events(const s2a_sse *s)
{
    return s->events;
}

/* Append to one of the event buffers while the event stays within max_event. Capacity
 * doubles, always leaving room for a NUL, and never exceeds the cap plus one. */
static void append(s2a_sse *s, growbuf *g, const char *src, apr_size_t n)
{
    if (s->overflow || n == 0)
        return;
    if (n > s->max_event - (s->data.len + s->event.len)) {
        s->overflow = 1;
        return;
    }
    if (g->len + n + 1 > g->cap) {
        apr_size_t cap = g->cap ? g->cap * 2 : 256;
        char *np;

        if (cap < g->len + n + 1)
            cap = g->len + n + 1;
        if (cap > s->max_event + 1)
            cap = s->max_event + 1;
        np = apr_palloc(s->pool, cap);
        if (g->len)
            memcpy(np, g->p, g->len);
        g->p = np;
        g->cap = cap;
    }
    memcpy(g->p + g->len, src, n);
    g->len += n;
}

static void dispatch(s2a_sse *s)
{
    if (s->overflow) {
        s->events++;
        s->dropped++;
    } else if (s->have_data) {
        s->events++;
        if (s->fn && !s->skip && !s->name_excluded) {
            const char *data = "", *event = "message";
            apr_size_t event_len = 7;

            if (s->data.len) {
                s->data.p[s->data.len] = '\0';
                data = s->data.p;
            }
            if (s->event.len) {
                s->event.p[s->event.len] = '\0';
                event = s->event.p;
                event_len = s->event.len;
            }
            s->fn(s->baton, event, event_len, data, s->data.len);
        }
    }
    s->data.len = 0;
    s->event.len = 0;
    s->have_data = 0;
    s->overflow = 0;
    s->name_excluded = 0;
    s->skip = 0;
}

/* Is the event name buffered so far one the creator does not want? */
static int excluded(const s2a_sse *s)
{
    int i;

    if (!s->only || s->event.len == 0 || s->overflow)
        return 0;
    for (i = 0; i < s->nonly; i++) {
        if (s->only_len[i] == s->event.len && memcmp(s->only[i], s->event.p, s->event.len) == 0)
            return 0;
    }
    return 1;
}

/* The field name is complete: decide what its value feeds. */
static void begin_value(s2a_sse *s)
{
    s->field_kind = FD_OTHER;
    if (s->field_len == 4 && memcmp(s->field, "data", 4) == 0) {
        if (s->name_excluded)
            s->skip = 1;
        if (!s->skip) {
            s->field_kind = FD_DATA;
            if (s->have_data)
                append(s, &s->data, "\n", 1);
        }
        s->have_data = 1;
    } else if (s->field_len == 5 && memcmp(s->field, "event", 5) == 0) {
        s->field_kind = FD_EVENT;
        s->event.len = 0;
    }
}

static const char *find_eol(const char *p, const char *end)
{
    while (p < end && *p != '\n' && *p != '\r')
        p++;
    return p;
}

/* A line of the current chunk ends at p or later. */
static const char *chunk_eol(const s2a_sse *s, const char *p, const char *end)
{
    if (s->no_cr) {
        const char *lf = memchr(p, '\n', (apr_size_t)(end - p));
        return lf ? lf : end;
    }
    return find_eol(p, end);
}

void s2a_sse_feed(s2a_sse *s, const char *buf, apr_size_t len)
{
    const char *p = buf, *end = buf + len;

    /* Streams end lines with LF: one look at the chunk lets line ends be found by memchr. */
    s->no_cr = len && !memchr(buf, '\r', len);

    while (p < end) {
        const char *eol;

        if (s->after_cr) {
            s->after_cr = 0;
            if (*p == '\n') {
                p++;
                continue;
            }
        }
        switch (s->state) {
        case LN_START:
            if (*p == '\n' || *p == '\r') {
                dispatch(s);
                s->after_cr = *p == '\r';
                p++;
            } else if (*p == ':') {
                s->state = LN_COMMENT;
                p++;
            } else if (end - p >= 6 && memcmp(p, "data: ", 6) == 0) {
                /* The usual lines, whole in the chunk: no walk over their field names. */
                memcpy(s->field, "data", 4);
                s->field_len = 4;
                begin_value(s);
                s->state = LN_VALUE;
                p += 6;
            } else if (end - p >= 7 && memcmp(p, "event: ", 7) == 0) {
                memcpy(s->field, "event", 5);
                s->field_len = 5;
                begin_value(s);
                s->state = LN_VALUE;
                p += 7;
            } else {
                s->field_len = 0;
                s->state = LN_FIELD;
            }
            continue;
        case LN_FIELD:
            if (*p == ':') {
                begin_value(s);
                s->state = LN_VALUE_START;
                p++;
            } else if (*p == '\n' || *p == '\r') {
                /* A name without a colon is a field with an empty value. */
                begin_value(s);
                if (s->field_kind == FD_EVENT)
                    s->name_excluded = 0;
                s->state = LN_START;
                s->after_cr = *p == '\r';
                p++;
            } else {
                if (s->field_len < sizeof(s->field))
                    s->field[s->field_len] = *p;
                s->field_len++;
                p++;
            }
            continue;
        case LN_VALUE_START:
            if (*p == ' ')
                p++;
            s->state = LN_VALUE;
            continue;
        default:
            break;
        }
        /* Value or comment: copy or skip up to the end of the line in one go. */
        eol = chunk_eol(s, p, end);
        if (s->state == LN_VALUE && s->field_kind != FD_OTHER)
            append(s, s->field_kind == FD_DATA ? &s->data : &s->event, p, (apr_size_t)(eol - p));
        p = eol;
        if (p < end) {
            if (s->state == LN_VALUE && s->field_kind == FD_EVENT)
                s->name_excluded = excluded(s);
            s->state = LN_START;
            s->after_cr = *p == '\r';
            p++;
        }
    }
}

char *s2a_sse_rewrite_message_model(apr_pool_t *p, const char *raw, apr_size_t len,
                                    const char *new_model, apr_size_t *out_len)
{
    static const char *const keys[] = {"message"};
    const char *s = raw, *end = raw + len, *value = NULL, *value_end = NULL;
    s2a_json_span message, model;
    s2a_json_edit edit;
    const char *err;
    char *quoted;
    apr_size_t vlen;
    int ndata = 0;

    if (!raw || !new_model)
        return NULL;
    while (s < end) {
        const char *eol = find_eol(s, end);

        if (eol - s >= 4 && memcmp(s, "data", 4) == 0 && (eol - s == 4 || s[4] == ':')) {
            ndata++;
            value = s + 4;
            if (value < eol)
                value++;
            if (value < eol && *value == ' ')
                value++;
            value_end = eol;
        }
        s = eol;
        if (s < end && *s++ == '\r' && s < end && *s == '\n')
            s++;
    }
    if (ndata != 1)
        return NULL;
    vlen = (apr_size_t)(value_end - value);
    if (s2a_json_scan_object(p, value, vlen, keys, 1, &message, &err) != 0 ||
        message.type != S2A_JSON_OBJECT || !s2a_json_object_get(&message, "model", &model) ||
        model.type != S2A_JSON_STRING)
        return NULL;
    quoted = s2a_json_quote(p, new_model);
    edit.off = (apr_size_t)(model.p - raw);
    edit.len = model.len;
    edit.text = quoted;
    edit.text_len = strlen(quoted);
    return s2a_json_splice(p, raw, len, &edit, 1, out_len);
}
