/* Session keys: what binds a conversation to one upstream account, so its
 * prompt cache keeps hitting. First match wins:
 *   1. the x-claude-code-session-id header;
 *   2. the session id in metadata.user_id (either form Claude Code sends);
 *   3. the text of the system parts marked with cache_control (markers in
 *      the messages move every turn, so they are not used);
 *   4. the whole system text;
 *   5. the first message.
 * Each is the same on every turn of a conversation.
 * The key is a hash of the group, the user and that value: bindings never
 * cross groups or users. */
#ifndef S2A_SESSION_H
#define S2A_SESSION_H

#include <apr_pools.h>

#include "s2a_json.h"

/* 0 when the request carries nothing to bind by. Conversations belong to one
 * user of one group: users with the same system prompt or first message do
 * not share a binding. `header` and `user_id`
 * (decoded metadata.user_id) may be NULL; `system` and `messages` are the
 * spans of those top-level fields (type NONE when absent). */
apr_uint64_t s2a_session_key(apr_pool_t *p, apr_int64_t group_id, apr_int64_t owner,
                             const char *header, const char *user_id, const s2a_json_span *system,
                             const s2a_json_span *messages);

#endif
