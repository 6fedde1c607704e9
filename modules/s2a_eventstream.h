/* Amazon Bedrock's streamed answer (InvokeModelWithResponseStream) as the
 * Anthropic event stream it carries. Bedrock frames its stream in AWS's
 * binary event-stream encoding (application/vnd.amazon.eventstream): each
 * message is a prelude (total length, headers length, the prelude's
 * CRC32), headers (":message-type", ":event-type", ":exception-type"...),
 * a payload and the message's CRC32. A "chunk" event's payload is
 * {"bytes":"<base64>"}, and the bytes are one Anthropic stream event as
 * JSON; an exception's payload is {"message":"..."}. An event's type is
 * read from its JSON, which otherwise goes on as it came (as the Anthropic
 * API's own events do); one without a type, or with control characters,
 * ends the stream.
 *
 * The reader is fed the answer in whatever pieces it arrives and writes
 * the client's SSE records as each message completes, never holding more
 * than one message. A message whose CRC does not match, whose lengths
 * cannot be, or that is larger than the reader's cap ends the stream: an
 * error event is written and anything fed later is ignored. */
#ifndef S2A_EVENTSTREAM_H
#define S2A_EVENTSTREAM_H

#include <apr_pools.h>

#include "s2a_buf.h"

/* Largest message accepted (Bedrock's are far smaller). */
#define S2A_EVENTSTREAM_MAX_MESSAGE (1024 * 1024)

/* CRC-32 (IEEE 802.3, as zlib computes it) of data[0..n), continuing from
 * `crc` (0 to start). */
apr_uint32_t s2a_crc32(apr_uint32_t crc, const void *data, apr_size_t n);

typedef struct s2a_eventstream s2a_eventstream;

/* A reader of one answer, its buffer from p (grown to the largest message,
 * at most `max` bytes; 0: S2A_EVENTSTREAM_MAX_MESSAGE). */
s2a_eventstream *s2a_eventstream_create(apr_pool_t *p, apr_size_t max);

/* The answer's next bytes: appends to `out` an SSE record ("event: <type>
 * \ndata: <json>\n\n") for every chunk event they complete, and for an
 * exception an Anthropic error event (s2a_bedrock_exception). Returns 0,
 * or -1 once the stream is broken (this call or before). */
int s2a_eventstream_feed(s2a_eventstream *es, const char *data, apr_size_t n, s2a_buf *out);

/* The answer ended: a message left incomplete is an error event. Returns
 * 0, or -1 when the stream was broken or cut. */
int s2a_eventstream_end(s2a_eventstream *es, s2a_buf *out);

/* Why the stream broke (static), NULL while it is whole. */
const char *s2a_eventstream_broken(const s2a_eventstream *es);

/* Messages read so far. */
apr_size_t s2a_eventstream_messages(const s2a_eventstream *es);

/* What a Bedrock exception means for the account and the client, by its
 * name as the ":exception-type" header or the x-amzn-errortype header
 * gives it (either case of the first letter, anything from a ':' on
 * ignored): the HTTP status the Anthropic API would have answered
 * (throttling and quota 429, service unavailable and model not ready 529,
 * an unknown, badly signed or expired credential 401, access denied 403,
 * validation 400, no such model 404, model timeout 504, others 500) and
 * the Anthropic error type of that status. */
typedef struct {
    int status;
    const char *type;
} s2a_bedrock_error;
void s2a_bedrock_exception(const char *name, apr_size_t len, s2a_bedrock_error *out);

#endif
