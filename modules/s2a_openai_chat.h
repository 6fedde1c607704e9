/* OpenAI's Chat Completions (POST /v1/chat/completions) in front of the
 * Messages API: the client's request becomes a Messages body the gateway
 * sends as its own, and the upstream's answer becomes a chat.completion or
 * a stream of chat.completion.chunk events, fed in whatever pieces it
 * arrives. What maps to what, and what is refused: docs/openai.md. */
#ifndef S2A_OPENAI_CHAT_H
#define S2A_OPENAI_CHAT_H

#include <apr_pools.h>

#include "s2a_buf.h"
#include "s2a_openai.h"
#include "s2a_tools_memo.h"
#include "s2a_usage.h"

/* A Chat Completions request, read. */
typedef struct {
    const char *body;     /* the Messages request: one JSON object, NUL-terminated, from the pool */
    apr_size_t len;       /* its length */
    s2a_body_marks marks; /* where its fields are (s2a_body_read_built) */
    const char *model;    /* the model the client named, decoded: the answer names it */
    int stream;           /* "stream": true */
    int include_usage;    /* "stream_options": {"include_usage": true} on a stream */
    int tools;            /* the tools offered */
    apr_int64_t max_tokens; /* max_tokens sent (the client's, the default, grown for thinking) */
    apr_int64_t thinking;   /* the thinking budget sent, 0: none */
} s2a_chat_request;

/* Reads the client's body raw[0..len) and writes the Messages body for it
 * into out->body (from p). Returns 0; or -1 with *err the OpenAI-shaped
 * 400 to answer (param names the field at fault), and no body. The body
 * is refused when it is not one JSON object, lacks a model or messages,
 * asks for what the gateway cannot give (n above 1, audio, logprobs,
 * legacy functions, web search), holds a message of an unknown role or a
 * part of an unknown type, or a value of the wrong type. `memo` (NULL:
 * none) is asked for the translation of the tools array, and given it
 * when it did not know it. */
int s2a_chat_request_read(apr_pool_t *p, const char *raw, apr_size_t len, s2a_tools_memo *memo,
                          s2a_chat_request *out, s2a_openai_error *err);

/* ---- A streamed answer ---------------------------------------------------------------------- */

typedef struct s2a_chat_stream s2a_chat_stream;

/* A translation of one Anthropic event stream into chat.completion.chunk
 * events for the request `req` (which it keeps a pointer to), their
 * "created" at `created` (Unix seconds). Memory from p: a few buffers that
 * grow to the largest event (at most S2A_ANSWER_MAX_EVENT). */
s2a_chat_stream *s2a_chat_stream_create(apr_pool_t *p, const s2a_chat_request *req,
                                        apr_int64_t created);

/* The upstream's next bytes, split anywhere: appends to `out` the client's
 * bytes for every upstream event they complete (`data: {...}\n\n` lines,
 * ": ping\n\n" for a ping). Whatever the splits, the same bytes come out.
 * After [DONE] anything fed is ignored. */
void s2a_chat_stream_feed(s2a_chat_stream *s, const char *data, apr_size_t n, s2a_buf *out);

/* The upstream's answer ended: a stream that did not finish gets an error
 * chunk ({"error":{…}}, which the SDKs raise) and, as every stream does,
 * `data: [DONE]`. Nothing when [DONE] went out already. */
void s2a_chat_stream_end(s2a_chat_stream *s, s2a_buf *out);

/* 1 once `data: [DONE]` was written. */
int s2a_chat_stream_done(const s2a_chat_stream *s);

/* The usage the stream carried so far (s2a_usage_apply_sse on each event). */
const s2a_usage *s2a_chat_stream_usage(const s2a_chat_stream *s);

/* ---- A whole answer ------------------------------------------------------------------------- */

/* The chat.completion for the Messages answer json[0..len) (a 2xx body),
 * NUL-terminated, *out_len bytes, from p: choices[0].message with the text
 * blocks joined as its content, the thinking blocks joined as
 * reasoning_content, tool_use blocks as tool_calls; finish_reason and
 * usage as in a stream. NULL when json is not a Messages answer. */
char *s2a_chat_answer(apr_pool_t *p, const s2a_chat_request *req, apr_int64_t created,
                      const char *json, apr_size_t len, apr_size_t *out_len);

#endif
