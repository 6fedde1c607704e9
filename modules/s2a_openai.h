/* What the OpenAI-compatible doors (s2a_openai_chat.h, s2a_openai_responses.h)
 * share: errors in OpenAI's shape, the reading of an Anthropic answer's
 * stream events, and the pieces of the Messages body both requests become.
 *
 * Nothing here builds a tree: requests and answers are read with the
 * scanner (s2a_json.h), strings whose shapes coincide are copied as the
 * client or the upstream wrote them, and the new text is written into one
 * growable buffer (s2a_buf.h). docs/openai.md says what maps to what. */
#ifndef S2A_OPENAI_H
#define S2A_OPENAI_H

#include <apr_pools.h>

#include "s2a_buf.h"
#include "s2a_json.h"
#include "s2a_request.h"
#include "s2a_usage.h"

/* ---- Errors ---------------------------------------------------------------------------- */

/* An error as OpenAI's API reports one: the HTTP status, and the body
 * {"error":{"message":…,"type":…,"param":…,"code":…}}. Strings are static or
 * from the pool of the call that set them; param and code may be NULL (JSON
 * null). */
typedef struct {
    int status;
    const char *type;
    const char *param;
    const char *code;
    const char *message;
} s2a_openai_error;

/* The body of e: one JSON object, NUL-terminated, *len bytes (len may be
 * NULL), from p. */
char *s2a_openai_error_body(apr_pool_t *p, const s2a_openai_error *e, apr_size_t *len);

/* The gateway's own error of HTTP `status` with `message` (a refused key, a
 * balance too low, a rate limit, no upstream...), typed by its status:
 * 400 and other 4xx invalid_request_error; 401 authentication_error (code
 * invalid_api_key); 402 insufficient_quota (code insufficient_quota); 403
 * permission_error; 404 not_found_error; 413 invalid_request_error (code
 * request_too_large); 429 rate_limit_error (code rate_limit_exceeded); 5xx
 * server_error (503 and 529: code overloaded). The official SDKs choose
 * their exception by the status alone; type and code are for people and
 * for clients that key on them (Codex reads insufficient_quota,
 * rate_limit_exceeded and context_length_exceeded). */
void s2a_openai_error_of_status(s2a_openai_error *e, int status, const char *message);

/* An upstream's Anthropic error as the client sees it, with `status` (the
 * status the client gets, s2a_upstream_status_map): body[0..len) is read
 * for {"error":{"type":…,"message":…}} (len 0 or an unreadable body: the
 * status's own words, s2a_error_message). The type maps as the status does
 * above, by Anthropic's type when there is one (overloaded_error and
 * api_error are server_error, billing_error insufficient_quota); a
 * "prompt is too long" message has code context_length_exceeded. Strings
 * from p. */
void s2a_openai_error_of_anthropic(apr_pool_t *p, int status, const char *body, apr_size_t len,
                                   s2a_openai_error *e);

/* Sets e to a 400 invalid_request_error about `param` (NULL: none) and
 * returns -1, for the readers' refusals. */
int s2a_openai_refuse(s2a_openai_error *e, const char *param, const char *message);

/* ---- Writing JSON ------------------------------------------------------------------------ */

/* A string literal (only a literal compiles: "" pastes onto it). */
#define S2A_PUT(b, literal) s2a_buf_append((b), "" literal, sizeof(literal) - 1)

/* The C string s as it is. */
void s2a_openai_put(s2a_buf *b, const char *s);

/* A span's bytes as they are (a value the scanner validated). */
void s2a_openai_put_span(s2a_buf *b, const s2a_json_span *v);

/* The contents of a JSON string (no quotes) for s[0..n): quote, backslash
 * and control characters escaped, every other byte as it is. */
void s2a_openai_put_escaped(s2a_buf *b, const char *s, apr_size_t n);

/* A JSON string literal for the C string s. */
void s2a_openai_put_string(s2a_buf *b, const char *s);

void s2a_openai_put_int(s2a_buf *b, apr_int64_t v);

/* Whether the JSON text s[0..n) (as the scanner accepted it) holds no raw
 * control character: none inside a string, none but whitespace outside.
 * The scanner leaves those to whoever parses the text: a client's body
 * and an upstream's answer are checked with this before their strings are
 * copied (a raw line end in a copied string would also end an SSE record). */
int s2a_openai_control_free(const char *s, apr_size_t n);

/* ---- Reading numbers ------------------------------------------------------------------- */

/* A JSON integer (no fraction, no exponent) into *out, saturating at
 * APR_INT64_MAX and APR_INT64_MIN. 0 if v is not one. */
int s2a_openai_integer(const s2a_json_span *v, apr_int64_t *out);

/* A JSON number in thousandths, truncated towards zero and saturating (so
 * "1e999" is APR_INT64_MAX and "0.0005" is 0). 0 if v is not a number. */
int s2a_openai_milli(const s2a_json_span *v, apr_int64_t *out);

/* ---- The figures of an answer ------------------------------------------------------------ */

/* OpenAI's finish_reason for an Anthropic stop_reason span: end_turn,
 * stop_sequence and pause_turn "stop"; max_tokens and
 * model_context_window_exceeded "length"; tool_use "tool_calls"; refusal
 * "content_filter"; anything else (or none) "stop". */
const char *s2a_openai_finish_reason(const s2a_json_span *stop_reason);

/* OpenAI's token counts of an Anthropic usage: the prompt is every input
 * token (input, cache writes and cache reads, saturating), cached the cache
 * reads, total prompt plus completion. */
typedef struct {
    apr_int64_t prompt, completion, total, cached;
} s2a_openai_tokens;

void s2a_openai_tokens_of(const s2a_usage *u, s2a_openai_tokens *t);

/* ---- An Anthropic answer's stream events -------------------------------------------------- */

typedef enum {
    S2A_AEV_OTHER = 0, /* unknown, or not a JSON object (raw control characters too): skipped */
    S2A_AEV_MESSAGE_START,
    S2A_AEV_BLOCK_START,
    S2A_AEV_BLOCK_DELTA,
    S2A_AEV_BLOCK_STOP,
    S2A_AEV_MESSAGE_DELTA,
    S2A_AEV_MESSAGE_STOP,
    S2A_AEV_PING,
    S2A_AEV_ERROR
} s2a_aev_kind;

/* What a content block is (BLOCK_START) or what a delta adds (BLOCK_DELTA:
 * TEXT text_delta, THINKING thinking_delta, SIGNATURE signature_delta,
 * TOOL_USE input_json_delta). */
typedef enum {
    S2A_BLOCK_OTHER = 0,
    S2A_BLOCK_TEXT,
    S2A_BLOCK_THINKING,
    S2A_BLOCK_REDACTED_THINKING,
    S2A_BLOCK_TOOL_USE,
    S2A_BLOCK_SIGNATURE
} s2a_block_kind;

/* One event, as spans of its data (valid as long as the data is). Absent
 * spans have type S2A_JSON_NONE; `text` is always a string span when set. */
typedef struct {
    s2a_aev_kind kind;
    apr_int64_t index;    /* the content block's index; -1 when absent or not an integer */
    s2a_block_kind block; /* BLOCK_START, BLOCK_DELTA */
    s2a_json_span text;   /* BLOCK_DELTA: the string it adds; BLOCK_START: the block's text or
                             thinking (usually empty), a redacted block's data */
    s2a_json_span id;     /* MESSAGE_START: the message's id; BLOCK_START: a tool_use's id */
    s2a_json_span name;   /* BLOCK_START: a tool_use's name */
    s2a_json_span stop;   /* MESSAGE_DELTA: delta.stop_reason */
    s2a_json_span err_type, err_message; /* ERROR */
} s2a_anthropic_event;

/* Reads one SSE event of an Anthropic stream (its name and data, neither
 * NUL-terminated): the data's "type" decides, the name when the data has
 * none. Allocates nothing. Returns ev->kind. */
s2a_aev_kind s2a_anthropic_event_read(const char *name, apr_size_t nlen, const char *data,
                                      apr_size_t dlen, s2a_anthropic_event *ev);

/* Adds what the event (name, data) read as *ev tells of the usage to *u, as
 * s2a_usage_apply_sse would: a delta's string, read already, is counted
 * without being looked for again. */
void s2a_anthropic_event_usage(s2a_usage *u, const s2a_anthropic_event *ev, const char *name,
                               apr_size_t nlen, const char *data, apr_size_t dlen);

/* ---- The Messages body both requests become ---------------------------------------------- */

/* Output tokens when the client names no maximum: Chat Completions and the
 * Responses API (Codex sends none, and an agent's tool call can be long). */
#define S2A_OPENAI_CHAT_MAX_TOKENS 4096
#define S2A_OPENAI_RESPONSES_MAX_TOKENS 16384

/* Thinking budgets of the reasoning efforts (none and minimal: no
 * thinking), and the most max_tokens grows to make room for one. */
#define S2A_OPENAI_BUDGET_LOW 2048
#define S2A_OPENAI_BUDGET_MEDIUM 8192
#define S2A_OPENAI_BUDGET_HIGH 16384
#define S2A_OPENAI_BUDGET_XHIGH 32768
#define S2A_OPENAI_MAX_TOKENS_CAP 64000

/* The budget of an effort string span ("none", "minimal", "low", "medium",
 * "high", "xhigh"); 0 for none and minimal, and for an absent or null
 * span; -1 for anything else. */
apr_int64_t s2a_openai_budget(const s2a_json_span *effort);

/* Whether the model named takes only adaptive thinking ({"type":
 * "adaptive"} and output_config.effort) rather than a budget: Claude 4.6
 * and later, by the version in its name (claude-sonnet-4-6,
 * claude-opus-5, claude-4.6-opus; a date is not a version). A name
 * without a version is taken for an older model. */
int s2a_openai_adaptive(const char *model);

typedef enum { S2A_ROLE_NONE = 0, S2A_ROLE_USER, S2A_ROLE_ASSISTANT } s2a_openai_role;

/* The "messages" array being written: adjacent messages of one role become
 * one (Anthropic wants the roles to alternate), a message is opened only
 * when its first block comes (so empty ones vanish), and what the end of
 * the conversation means for thinking is noted on the way. */
typedef struct {
    s2a_buf *b;
    s2a_openai_role role;     /* of the open message */
    int messages;             /* written, the open one included */
    int blocks;               /* in the open message */
    int thinking_blocks;      /* written */
    int last_starts_thinking; /* the last assistant message begins with thinking */
    int user_has_result;      /* the last user message holds a tool_result */
    s2a_openai_role last;     /* the role of the last message */
} s2a_openai_msgs;

/* Starts the array: writes `"messages":[`. */
void s2a_openai_msgs_start(s2a_openai_msgs *m, s2a_buf *b);

/* Before each block: opens a message of `role` unless one is open, writes
 * the comma; the caller then writes the block. `kind` notes what it is
 * (S2A_BLOCK_THINKING and S2A_BLOCK_REDACTED_THINKING count as thinking,
 * S2A_BLOCK_OTHER anything else); `result` is 1 for a tool_result. */
void s2a_openai_msgs_block(s2a_openai_msgs *m, s2a_openai_role role, s2a_block_kind kind,
                           int result);

/* Ends the array: writes `]`, closing an open message. */
void s2a_openai_msgs_end(s2a_openai_msgs *m);

/* Whether thinking may be turned on for this conversation: not when it
 * ends inside a tool loop whose assistant turn carries no thinking block
 * first (a last user message with a tool_result after such an assistant
 * message, or a last assistant message that does not begin with one):
 * the upstream refuses those with thinking on. */
int s2a_openai_msgs_may_think(const s2a_openai_msgs *m);

/* Whether the string span `text` holds nothing but whitespace (spaces,
 * tabs and line ends, raw or escaped), or nothing: the upstream refuses
 * such text blocks, so they are left out. */
int s2a_openai_blank(const s2a_json_span *text);

/* A text block for the string span `text`, with `cache_control` (an object
 * span, or NONE) as it came. */
void s2a_openai_text_block(s2a_buf *b, const s2a_json_span *text,
                           const s2a_json_span *cache_control);

/* An image block (document: a document block) for the URL string span
 * `url`: a base64 data: URL becomes a base64 source with its media type
 * (the data copied as it came), an http(s) URL a url source. Returns 0, or
 * -1 with *why (static) for any other URL. A document with a data: URL of
 * no media type, or plain base64 with no "data:" at all, is taken as a
 * PDF. */
int s2a_openai_image_block(apr_pool_t *p, s2a_buf *b, const s2a_json_span *url, int document,
                           const s2a_json_span *cache_control, const char **why);

/* A tool_use block: `id` and `name` string spans, `arguments` the string
 * span holding the input as JSON text (OpenAI's form): decoded, checked to
 * be one JSON object (empty or blank: {}), and written as that object.
 * Returns 0, or -1 with *why (static). */
int s2a_openai_tool_use_block(apr_pool_t *p, s2a_buf *b, const s2a_json_span *id,
                              const s2a_json_span *name, const s2a_json_span *arguments,
                              const char **why);

/* A tool id (a string span) as Anthropic takes it, quoted: every byte
 * outside [A-Za-z0-9_-] is written as "_" and two hex digits, so that a
 * tool_use and its tool_result still match; an empty id is "_". 0 if id is
 * not a string that decodes. */
int s2a_openai_put_tool_id(apr_pool_t *p, s2a_buf *b, const s2a_json_span *id);

/* An Anthropic tool for OpenAI's function fields: {"name":…,
 * "description":…, "input_schema":…}, the schema {"type":"object",
 * "properties":{}} when `parameters` is absent or null. Returns 0, or -1
 * when name is not a string, description not a string or parameters not
 * an object. */
int s2a_openai_tool(s2a_buf *b, const s2a_json_span *name, const s2a_json_span *description,
                    const s2a_json_span *parameters);

/* What OpenAI's tool_choice asks, read from its span: "auto", "none",
 * "required", or an object naming a function (its name in *name; chat
 * nests it in "function", the Responses API does not). */
typedef enum {
    S2A_TOOL_CHOICE_AUTO = 0, /* also when absent or null */
    S2A_TOOL_CHOICE_NONE,
    S2A_TOOL_CHOICE_REQUIRED,
    S2A_TOOL_CHOICE_NAMED,
    S2A_TOOL_CHOICE_INVALID
} s2a_openai_choice;

s2a_openai_choice s2a_openai_tool_choice(const s2a_json_span *choice, s2a_json_span *name);

/* Writes Messages' tool_choice member (with its leading comma) for what the
 * client asked (`name` the function's for NAMED): none as such, required
 * as any, a name as that tool; auto only when `serial` (no parallel tool
 * use), which every written choice then says. *forced is set to 1 for
 * required and named. */
void s2a_openai_write_tool_choice(s2a_buf *b, s2a_openai_choice choice, const s2a_json_span *name,
                                  int serial, int *forced);

/* The instruction that asks for JSON (response_format / text.format):
 * `schema` an object span (NONE: any JSON object). Written as a text block
 * of the system prompt. */
void s2a_openai_json_instruction(s2a_buf *b, const s2a_json_span *schema);

/* What the end of both bodies says: max_tokens, thinking, sampling, the
 * user for metadata.user_id, stream. */
typedef struct {
    apr_int64_t max_tokens;    /* the client's, or the door's default */
    apr_int64_t budget;        /* the thinking asked for (s2a_openai_budget), 0: none */
    int adaptive;              /* the model thinks adaptively (s2a_openai_adaptive) */
    int forced_tool;           /* tool_choice required or named: no thinking with it */
    s2a_json_span temperature; /* numbers as sent, NONE when absent */
    s2a_json_span top_p;
    s2a_json_span user; /* a string, NONE when absent */
    int stream;
} s2a_openai_tail;

/* Whether thinking goes on: asked, allowed by the conversation
 * (s2a_openai_msgs_may_think), and no tool forced (the upstream refuses
 * thinking with a forced tool_choice, adaptive or not). */
int s2a_openai_thinks(const s2a_openai_tail *t, const s2a_openai_msgs *m);

/* Writes the members of t, each with its leading comma. When thinking goes
 * on (s2a_openai_thinks): {"type":"enabled","budget_tokens":budget}, or
 * for an adaptive model {"type":"adaptive"} with output_config.effort (low,
 * medium, high; xhigh is max); max_tokens grown by the budget (at most to
 * S2A_OPENAI_MAX_TOKENS_CAP, or the client's own max when larger); and
 * temperature and top_p left out (thinking takes neither). top_p goes
 * only without a temperature (newer models take one of the two). A
 * temperature or top_p of 1 or more is sent as 1 (Anthropic's range is 0
 * to 1).
 * marks gets where max_tokens, metadata and stream went.
 * *max_out and *budget_out get what was sent (the allowance for an
 * adaptive model). */
void s2a_openai_write_tail(s2a_buf *b, const s2a_openai_tail *t, const s2a_openai_msgs *m,
                           s2a_body_marks *marks, apr_int64_t *max_out, apr_int64_t *budget_out);

/* Marks in *m the value written to b since b->len was `from`, after the
 * member's name `key` as written (",\"system\":"); nothing when nothing was
 * written. */
void s2a_openai_mark(const s2a_buf *b, apr_size_t from, const char *key, s2a_body_mark *m);

/* Checks a temperature span (absent, null or a number from 0 to 2) and top_p
 * (absent, null or a number from 0 to 1): 0, or -1 with e set about the
 * field. Null spans are made NONE. */
int s2a_openai_check_sampling(s2a_json_span *temperature, s2a_json_span *top_p,
                              s2a_openai_error *e);

#endif
