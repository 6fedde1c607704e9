/* The door a request came in by: Anthropic's Messages API, or one of the
 * OpenAI-compatible doors (Chat Completions, the Responses API). Whatever
 * the door, the upstream is sent a Messages request; the door decides what
 * that request is made from, and what the client gets back: the answer
 * translated, errors and pings in the door's own shape. The glue asks the
 * door and never the translators (s2a_openai_chat.h,
 * s2a_openai_responses.h) directly. */
#ifndef S2A_DOOR_H
#define S2A_DOOR_H

#include <apr_pools.h>

#include "s2a_buf.h"
#include "s2a_openai_chat.h"
#include "s2a_openai_responses.h"
#include "s2a_request.h"
#include "s2a_usage.h"

typedef enum {
    S2A_DOOR_MESSAGES = 0, /* /v1/messages and count_tokens: nothing translated */
    S2A_DOOR_CHAT,         /* /v1/chat/completions */
    S2A_DOOR_RESPONSES     /* /v1/responses */
} s2a_door_kind;

/* The door of an endpoint (any endpoint but the two OpenAI ones is
 * Messages'). */
s2a_door_kind s2a_door_of(s2a_endpoint endpoint);

/* The door's name as usage rows keep it: "messages", "chat", "responses". */
const char *s2a_door_name(s2a_door_kind kind);

/* One request through a door: what its body was read to. */
typedef struct {
    s2a_door_kind kind;
    apr_int64_t created;  /* Unix seconds: the answer's "created" */
    s2a_tools_memo *memo; /* the process's translations of tools arrays; NULL: none */
    s2a_chat_request chat;
    s2a_responses_request responses;
} s2a_door;

/* Reads an OpenAI door's body raw[0..len) into the Messages body the
 * upstream is sent, read as s2a_body_read reads a client's (*body, from p),
 * at `created`. 0; or -1 with *err the door's 400 (its param naming the
 * field at fault). A Messages door is never read here. */
int s2a_door_read(apr_pool_t *p, s2a_door *d, const char *raw, apr_size_t len, apr_int64_t created,
                  s2a_body *body, s2a_openai_error *err);

/* The gateway's own error of `status` with `message` (`param`: the field
 * at fault, NULL: none) as the door's clients read errors: one JSON object,
 * NUL-terminated, *len bytes (len may be NULL), from p. */
char *s2a_door_error_body(apr_pool_t *p, s2a_door_kind kind, int status, const char *message,
                          const char *param, apr_size_t *len);

/* The same error as the records that end an event stream whose 200 the
 * client has: Messages an `error` event; Chat a `data:` record of the error
 * and `data: [DONE]`; Responses an `error` event. */
char *s2a_door_error_event(apr_pool_t *p, s2a_door_kind kind, int status, const char *message,
                           apr_size_t *len);

/* A keep-alive record for a stream that waits: Messages' ping event, an SSE
 * comment for the OpenAI doors (their SDKs would take an event for a
 * chunk). Static. */
const char *s2a_door_ping(s2a_door_kind kind, apr_size_t *len);

/* ---- The upstream's answer, translated ------------------------------------------------------ */

/* An upstream's Anthropic error body[0..len) as the client gets it with
 * `status`: for an OpenAI door the error in OpenAI's shape, its message
 * kept (*out_len bytes, from p); for Messages' the body as it came. */
const char *s2a_door_upstream_error(apr_pool_t *p, const s2a_door *d, int status, const char *body,
                                    apr_size_t len, apr_size_t *out_len);

/* The same as the records that end a stream whose 200 the client has. */
const char *s2a_door_upstream_error_event(apr_pool_t *p, const s2a_door *d, int status,
                                          const char *body, apr_size_t len, apr_size_t *out_len);

/* A whole 2xx Messages answer json[0..len) in the door's form (*out_len
 * bytes, from p); NULL when it is not a Messages answer (it then goes as
 * it came). Only for an OpenAI door. */
const char *s2a_door_answer(apr_pool_t *p, const s2a_door *d, const char *json, apr_size_t len,
                            apr_size_t *out_len);

/* A stream's translation for an OpenAI door: fed the upstream's bytes in
 * any pieces, it appends the client's records to `out`; the usage is read
 * on the way, as s2a_usage_apply_sse reads it. */
typedef struct s2a_door_stream s2a_door_stream;
s2a_door_stream *s2a_door_stream_create(apr_pool_t *p, const s2a_door *d);
void s2a_door_stream_feed(s2a_door_stream *s, const char *data, apr_size_t n, s2a_buf *out);
/* The upstream's stream ended: a stream that did not finish is ended with
 * the door's error records. */
void s2a_door_stream_end(s2a_door_stream *s, s2a_buf *out);
const s2a_usage *s2a_door_stream_usage(const s2a_door_stream *s);

#endif
