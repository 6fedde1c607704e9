/* AWS event-stream messages as Bedrock frames them (prelude, headers,
 * payload, CRCs), built for the unit tests and the fuzzing harness. */
#ifndef S2A_TEST_FRAMES_H
#define S2A_TEST_FRAMES_H

#include <string.h>

#include <apr_base64.h>
#include <apr_strings.h>

#include "s2a_buf.h"
#include "s2a_eventstream.h"

static inline void put32(s2a_buf *b, apr_uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    s2a_buf_append(b, (const char *)x, 4);
}

/* One string header: name, type 7, length, value. */
static inline void header(s2a_buf *h, const char *name, const char *value)
{
    unsigned char n = (unsigned char)strlen(name), t = 7;
    unsigned char len[2] = {(unsigned char)(strlen(value) >> 8), (unsigned char)strlen(value)};
    s2a_buf_append(h, (const char *)&n, 1);
    s2a_buf_append(h, name, n);
    s2a_buf_append(h, (const char *)&t, 1);
    s2a_buf_append(h, (const char *)len, 2);
    s2a_buf_append(h, value, strlen(value));
}

/* A message as AWS frames it. */
static inline void frame(apr_pool_t *p, s2a_buf *out, const s2a_buf *headers, const char *payload)
{
    s2a_buf m;
    apr_uint32_t total = (apr_uint32_t)(16 + headers->len + strlen(payload));
    s2a_buf_init(&m, p, total);
    put32(&m, total);
    put32(&m, (apr_uint32_t)headers->len);
    put32(&m, s2a_crc32(0, m.data, 8));
    s2a_buf_append(&m, headers->data, headers->len);
    s2a_buf_append(&m, payload, strlen(payload));
    put32(&m, s2a_crc32(0, m.data, m.len));
    s2a_buf_append(out, m.data, m.len);
}

/* A chunk event carrying the Anthropic event `json`. */
static inline void chunk(apr_pool_t *p, s2a_buf *out, const char *json)
{
    s2a_buf h;
    char *b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)strlen(json)));
    apr_base64_encode(b64, json, (int)strlen(json));
    s2a_buf_init(&h, p, 64);
    header(&h, ":event-type", "chunk");
    header(&h, ":content-type", "application/json");
    header(&h, ":message-type", "event");
    frame(p, out, &h, apr_psprintf(p, "{\"bytes\":\"%s\",\"p\":\"abcd\"}", b64));
}

#endif
