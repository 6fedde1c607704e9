/* Token usage from Anthropic answers: SSE events and plain JSON bodies. */
#ifndef S2A_USAGE_H
#define S2A_USAGE_H

#include <apr_pools.h>

#include "s2a_json.h"

typedef struct {
    apr_int64_t input;          /* input_tokens */
    apr_int64_t output;         /* output_tokens */
    apr_int64_t cache_creation; /* cache_creation_input_tokens (all TTLs) */
    apr_int64_t cache_1h;       /* part of cache_creation written with 1 h TTL */
    apr_int64_t cache_read;     /* cache_read_input_tokens */
    apr_int64_t web_search;     /* server_tool_use.web_search_requests */
    apr_int64_t web_fetch;      /* server_tool_use.web_fetch_requests */
    int seen_start;             /* a message_start (or full JSON body) with usage was seen */
    int seen_delta;             /* a message_delta with usage was seen */
    apr_int64_t delta_bytes;    /* generated text seen in content_block_delta events (raw) */
} s2a_usage;

/* Output tokens of a stream that ended before its final message_delta: the text the
   content_block_delta events carried (text, thinking, signature, tool input; as raw JSON
   string bytes) at S2A_BYTES_PER_TOKEN bytes per token, rounded up, and never less than the
   output already reported. */
#define S2A_BYTES_PER_TOKEN 4
apr_int64_t s2a_usage_output_estimate(const s2a_usage *u);

/* Apply one SSE event (name, data JSON; neither needs a NUL terminator).
   message_start: message.usage sets input, cache_creation, cache_read and the initial output.
   message_delta: usage.output_tokens is cumulative and overwrites; non-zero input and cache
   figures there overwrite too. usage.server_tool_use's web_search_requests and
   web_fetch_requests (the server tools' uses) are cumulative like the output.
   usage.cache_creation.ephemeral_1h_input_tokens gives cache_1h; when cache_creation_input_tokens
   is absent, cache_creation = 5m + 1h split. content_block_delta: the length of delta.text,
   .thinking, .partial_json or .signature is added to delta_bytes (the return value stays 0). An
   event without a name is recognised by its data's "type". Other events are skipped without
   parsing. Counts are JSON integers (no fraction or exponent) and not negative; larger than
   APR_INT64_MAX saturates; anything else counts as absent. Returns 1 if usage changed, 0 otherwise,
   also when data is not one JSON object in the sense of s2a_json_scan_object (an unknown container
   member is only checked for balance; a raw control character in a string it reads refuses it).
   Allocates nothing. */
int s2a_usage_apply_sse(s2a_usage *u, const char *event, apr_size_t elen, const char *data,
                        apr_size_t dlen);

/* Sets *u from one usage object (a span from the scanner, or inside one), by
   message_start's rules, as a whole answer's "usage" is read. Returns 1, or 0 with *u zeroed
   when usage is not an object of readable counts. Allocates nothing. */
int s2a_usage_read(s2a_usage *u, const s2a_json_span *usage);

/* A non-stream JSON answer, fed chunk by chunk: kept (in p) until it is complete, then
   scanned once. An answer larger than S2A_USAGE_JSON_MAX is not read for usage. */
#define S2A_USAGE_JSON_MAX (64 * 1024 * 1024)

typedef struct s2a_usage_json s2a_usage_json;

s2a_usage_json *s2a_usage_json_create(apr_pool_t *p);
void s2a_usage_json_feed(s2a_usage_json *j, const char *buf, apr_size_t len);

/* After the last chunk: sets *u from the top-level "usage" (message_start rules) and returns
   1; returns 0 if the body was incomplete, invalid or had no usage. If model is not NULL,
   *model is the answer's "model" (from the create pool) or NULL. */
int s2a_usage_json_finish(s2a_usage_json *j, s2a_usage *u, const char **model);

/* The bytes fed so far (*len of them; NULL when none), valid while the pool
 * lives: what was fed once stays where it is. */
const char *s2a_usage_json_text(const s2a_usage_json *j, apr_size_t *len);

#endif
