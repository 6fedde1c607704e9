/* Incremental parser for text/event-stream bodies.
 *
 * The upstream answer is forwarded as it arrives; a copy of every chunk is fed here, split
 * at any byte, and complete events are reported through a callback. Only the data and event
 * name of the current event are buffered, up to a fixed cap.
 */
#ifndef S2A_SSE_H
#define S2A_SSE_H

#include <apr_pools.h>

typedef struct s2a_sse s2a_sse;

/* Called once per complete event (dispatched on a blank line). event is the value of the
 * last "event:" field ("message" if none or empty); data is all "data:" lines joined by "\n".
 * Both are NUL-terminated views valid only during the call. */
typedef void (*s2a_sse_event_fn)(void *baton, const char *event, apr_size_t event_len,
                                 const char *data, apr_size_t data_len);

/* max_event caps the bytes buffered for one event (data plus event name); a larger event is
 * skipped, its callback not called, and counted in s2a_sse_dropped(). All memory comes from
 * p, at most about twice the cap for each of the two buffers, and is reused between events. */
s2a_sse *s2a_sse_create(apr_pool_t *p, apr_size_t max_event, s2a_sse_event_fn fn, void *baton);

/* Report only the events named in events (NULL-terminated; the list is copied; NULL reports
 * all, the default). The filter goes by the "event:" field: an event without one, or with an
 * empty one, is always reported. Data lines arriving while the last "event:" line names an
 * event not in the list are not buffered, and an event that lost a data line that way, or
 * whose final name is not in the list, is not reported (it still counts in
 * s2a_sse_events()). So data lines sent before the "event:" line are buffered and dropped
 * at the end; the Anthropic API always sends "event:" first. */
void s2a_sse_only(s2a_sse *s, const char *const *events);

void s2a_sse_feed(s2a_sse *s, const char *buf, apr_size_t len);

/* Number of events skipped for exceeding max_event. */
apr_size_t s2a_sse_dropped(const s2a_sse *s);

/* Number of complete events seen so far (including dropped ones). */
apr_size_t s2a_sse_events(const s2a_sse *s);

/* raw: the raw bytes of ONE complete event (e.g. "event: message_start\ndata: {...}\n\n").
 * If its single data line holds a JSON object whose "message" object has a string "model",
 * returns a new buffer from p with that value replaced by the JSON-quoted new_model,
 * everything else byte-identical, and sets *out_len. NULL if there is nothing to rewrite
 * (also when the data spans several lines). */
char *s2a_sse_rewrite_message_model(apr_pool_t *p, const char *raw, apr_size_t len,
                                    const char *new_model, apr_size_t *out_len);

#endif
