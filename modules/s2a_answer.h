/* One attempt's answer on its way to the client: what passes at once, what
 * is held and why, the model renamed back to the client's name, and the
 * usage read on the way. The glue's output filter feeds it the upstream's
 * bytes and sends what it lets go; nothing here knows about buckets. */
#ifndef S2A_ANSWER_H
#define S2A_ANSWER_H

#include <apr_pools.h>

#include "s2a_buf.h"
#include "s2a_cloud.h"
#include "s2a_door.h"
#include "s2a_eventstream.h"
#include "s2a_policy.h"
#include "s2a_sse.h"
#include "s2a_usage.h"

/* Largest SSE event read for usage. */
#define S2A_ANSWER_MAX_EVENT (1024 * 1024)
/* A stream's first event waits for its end at most this long (bytes). */
#define S2A_ANSWER_MAX_STREAM_HOLD (256 * 1024)
/* A JSON answer is held to its end up to this size. */
#define S2A_ANSWER_MAX_JSON_HOLD (8 * 1024 * 1024)

typedef enum {
    /* passes as it comes, unread: count_tokens */
    S2A_ANSWER_PASS = 0,
    /* an event stream: usage read from its events; when the model is
     * renamed, the first event (message_start) waits for its end */
    S2A_ANSWER_STREAM,
    /* a JSON answer: held to its end, so that its usage is read before the
     * client could leave; then its model is renamed */
    S2A_ANSWER_JSON,
    /* an error that describes the request (400, 404, 413...): held to its
     * end, so that the policy can read it once more (s2a_policy_reread),
     * then sent as it came */
    S2A_ANSWER_ERROR,
    /* the same on a stream whose 200 the client has already: sent as one
     * SSE error event */
    S2A_ANSWER_EVENT,
    /* an answer about the account (s2a_policy): nothing reaches the client;
     * the first S2A_POLICY_BODY_MAX bytes are kept for the policy */
    S2A_ANSWER_DROP,
    /* Bedrock's CountTokens answer: held to its end, then written as the
     * Anthropic API's count_tokens answer */
    S2A_ANSWER_COUNT
} s2a_answer_mode;

typedef struct {
    apr_pool_t *pool;
    s2a_answer_mode mode;
    int status;
    const char *rename; /* the client's model name for the upstream's, NULL: none */
    int holding;        /* the bytes fed are kept until s2a_answer_release lets them go */
    s2a_buf held;
    s2a_sse *sse;
    const s2a_door *door;         /* an OpenAI door's request, NULL: Messages' */
    s2a_door_stream *translation; /* a stream of an OpenAI door */
    s2a_buf translated;           /* of it (or of a decoded stream), what has not gone yet */
    s2a_eventstream *eventstream; /* Bedrock's stream, read as Anthropic SSE */
    s2a_buf decoded;              /* of it, the SSE of the bytes last fed */
    s2a_cloud cloud;              /* the cloud it comes from (s2a_answer_from_cloud) */
    const char *error_type;       /* Bedrock's x-amzn-errortype; NULL: none */
    int cloud_error_done;         /* a cloud's error body is in the Anthropic shape */
    s2a_usage_json *json;
    s2a_usage usage;
    int ended;              /* the upstream's answer ended (EOS) */
    int broken;             /* the upstream's connection broke */
    int released;           /* held bytes went to the client */
    int too_long;           /* a dropped answer longer than the policy reads */
    int client_left;        /* the client's connection failed mid-answer */
    int draining;           /* read on, unsent, for the upstream's own usage */
    apr_time_t drain_until; /* when the drain gives up */
} s2a_answer;

/* Starts the answer of HTTP `status` and Content-Type `content_type` (may
 * be NULL). `dropped`: it is about the account and must not be shown.
 * `count_only`: a count_tokens answer. `committed`: the client has a 200
 * event stream already (pings while the request waited). `rename`: the
 * client's name of the model when the account was sent another (NULL:
 * none); only 2xx answers name a model. `door`: the request of an OpenAI
 * door, whose answer is translated (NULL or a Messages door: none); a
 * translated answer names the client's model itself. */
void s2a_answer_start(s2a_answer *a, apr_pool_t *p, int status, const char *content_type,
                      int dropped, int count_only, int committed, const char *rename,
                      const s2a_door *door);

/* The Content-Type of Bedrock's event stream, which the answer turns into
 * text/event-stream as it comes. */
#define S2A_ANSWER_EVENTSTREAM_TYPE "application/vnd.amazon.eventstream"

/* After s2a_answer_start: the answer comes from `cloud`, so an error it
 * sends is written in the Anthropic API's shape (s2a_cloud_error_read;
 * `error_type`: the x-amzn-errortype header, may be NULL) before its
 * door's, and `status` given to start was already the Anthropic status
 * (s2a_cloud_status). Bedrock's event stream (S2A_ANSWER_EVENTSTREAM_TYPE)
 * is read as SSE whatever the cloud; Bedrock's 2xx count_tokens answer is
 * CountTokens', rewritten at its end (S2A_ANSWER_COUNT). */
void s2a_answer_from_cloud(s2a_answer *a, s2a_cloud cloud, const char *error_type);

/* The upstream's next bytes: reads their usage, and returns 1 when they go
 * on to the client at once, 0 when they are held, dropped or translated. */
int s2a_answer_feed(s2a_answer *a, const char *data, apr_size_t n);

/* The upstream's answer ended (`broken`: its connection broke first). A
 * translated stream that did not finish gets its door's error records. */
void s2a_answer_end(s2a_answer *a, int broken);

/* The client left at `now` (its connection failed while the answer went
 * out). Returns 1 when the answer is to be drained: read on, sent nowhere,
 * until the upstream's final usage came (s2a_answer_drained), for at most
 * `drain`; that is a stream whose message_delta has not come yet, with a
 * drain above 0. Returns 0 when the answer ends here. */
int s2a_answer_client_left(s2a_answer *a, apr_time_t now, apr_interval_time_t drain);

/* While draining: 1 once the drain is over at `now` (the final usage came,
 * the answer ended or the time is up), and draining stops. */
int s2a_answer_drained(s2a_answer *a, apr_time_t now);

/* What is held and may go now, renamed, wrapped or translated, in *len
 * bytes valid until the next call of feed, end or release: it goes before
 * anything fed since; NULL while it waits (until a stream's first event
 * ended, a JSON answer or an error ended, or the hold grew past its limit),
 * and for a dropped answer. A translated stream lets go of what its
 * translation wrote since the last release. */
const char *s2a_answer_release(s2a_answer *a, apr_size_t *len);

/* The usage the answer carried, as read: 1 with *u, 0 when it carried none
 * (a stream without message_start, a JSON answer cut short or without
 * usage). For a stream, u->seen_delta tells whether its final count came. */
int s2a_answer_usage(s2a_answer *a, s2a_usage *u);

/* An error body kept whole (ERROR, EVENT, DROP; *len bytes), for the
 * policy's second look; NULL when there is none or it was cut. */
const char *s2a_answer_error_body(const s2a_answer *a, apr_size_t *len);

/* The SSE error event that tells a streaming client its stream ended
 * because the upstream's connection broke; NULL for a translated stream
 * (its end wrote its own). */
const char *s2a_answer_broken_event(const s2a_answer *a, apr_size_t *len);

#endif
