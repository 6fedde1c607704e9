/* OpenAI's Responses API (POST /v1/responses), in its stateless form (what
 * Codex CLI sends: store false, the whole conversation in `input`), in
 * front of the Messages API: the request becomes a Messages body, the
 * upstream's answer a `response` object or a stream of Responses events,
 * fed in whatever pieces it arrives. The gateway keeps no conversation: a
 * request that names a stored one is refused. What maps to what:
 * docs/openai.md. */
#ifndef S2A_OPENAI_RESPONSES_H
#define S2A_OPENAI_RESPONSES_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "s2a_buf.h"
#include "s2a_openai.h"
#include "s2a_tools_memo.h"
#include "s2a_usage.h"

/* The encrypted_content of a reasoning item made from a redacted thinking
 * block begins with this; any other is a thinking block's signature. */
#define S2A_RESPONSES_REDACTED "redacted_thinking:"

/* A Responses request, read. */
typedef struct {
    const char *body; /* the Messages request: one JSON object, NUL-terminated, from the pool */
    apr_size_t len;
    s2a_body_marks marks;   /* where its fields are (s2a_body_read_built) */
    const char *model;      /* the model the client named, decoded: the answer names it */
    int stream;             /* "stream": true */
    int tools;              /* the tools offered */
    apr_int64_t max_tokens; /* max_tokens sent (the client's, the default, grown for thinking) */
    apr_int64_t thinking;   /* the thinking budget sent (an allowance when adaptive), 0: none */
    /* the custom (free-form) tools' names, decoded: their calls are answered
     * as custom_tool_call items (const char *) */
    apr_array_header_t *custom;
    /* the members of the response object that repeat the request
     * (max_output_tokens, parallel_tool_calls, reasoning, temperature,
     * text, tool_choice, top_p), as JSON members without the braces */
    const char *echo;
} s2a_responses_request;

/* Reads the client's body raw[0..len) and writes the Messages body for it
 * into out->body (from p). Returns 0; or -1 with *err the OpenAI-shaped 400
 * to answer (param names the field at fault), and no body. Refused: not
 * one JSON object; no model or input; previous_response_id, conversation,
 * a stored prompt, store true or background true (nothing is kept here);
 * an item, part or tool of a type the gateway cannot give (item
 * references, hosted tools, audio, file ids); log probabilities; a value of
 * the wrong type; a field read twice. `memo` (NULL: none) is asked for the
 * translation of the tools array, and given it when it did not know it. */
int s2a_responses_request_read(apr_pool_t *p, const char *raw, apr_size_t len, s2a_tools_memo *memo,
                               s2a_responses_request *out, s2a_openai_error *err);

/* ---- A streamed answer ---------------------------------------------------------------------- */

typedef struct s2a_responses_stream s2a_responses_stream;

/* A translation of one Anthropic event stream into Responses events for
 * `req` (kept as a pointer), created_at `created` (Unix seconds). Memory
 * from p: the whole output is kept (response.completed repeats it), and
 * buffers the size of the largest event (at most S2A_ANSWER_MAX_EVENT). */
s2a_responses_stream *s2a_responses_stream_create(apr_pool_t *p, const s2a_responses_request *req,
                                                  apr_int64_t created);

/* The upstream's next bytes, split anywhere: appends to `out` the client's
 * `event: <type>\ndata: {...}\n\n` records for every upstream event they
 * complete (": ping\n\n" for a ping), numbered by sequence_number from 0.
 * Whatever the splits, the same bytes come out. After the last event
 * (response.completed, response.incomplete or response.failed) anything
 * fed is ignored. */
void s2a_responses_stream_feed(s2a_responses_stream *s, const char *data, apr_size_t n,
                               s2a_buf *out);

/* The upstream's answer ended: a stream that ended before its
 * message_delta gets an `error` event and response.failed; one that missed
 * only its message_stop is completed. Nothing when it had finished. */
void s2a_responses_stream_end(s2a_responses_stream *s, s2a_buf *out);

/* 1 once the last event was written. */
int s2a_responses_stream_done(const s2a_responses_stream *s);

/* The usage the stream carried so far (s2a_usage_apply_sse on each event). */
const s2a_usage *s2a_responses_stream_usage(const s2a_responses_stream *s);

/* ---- A whole answer ------------------------------------------------------------------------- */

/* The `response` object for the Messages answer json[0..len) (a 2xx body),
 * NUL-terminated, *out_len bytes, from p: one output item per thinking,
 * redacted thinking, text or tool_use block (reasoning, message,
 * function_call or custom_tool_call; the server tools' blocks have none),
 * status completed, or incomplete for max_tokens and refusal. NULL when
 * json is not a Messages answer. */
char *s2a_responses_answer(apr_pool_t *p, const s2a_responses_request *req, apr_int64_t created,
                           const char *json, apr_size_t len, apr_size_t *out_len);

#endif
