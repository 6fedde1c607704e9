#include <string.h>

#include <apr_strings.h>

#include "s2a_identity.h"
#include "s2a_session.h"
#include "s2a_sha256.h"

typedef struct {
    s2a_sha256_ctx h;
    int used;
} hasher;

static void add(hasher *k, const char *data, apr_size_t len)
{
    s2a_sha256_update(&k->h, data, len);
    k->used = 1;
}

/* The raw bytes of a block's "text" stand for the block: the same client
 * sends the same bytes for the same text. */
static void add_text(hasher *k, const s2a_json_span *block)
{
    s2a_json_span text;
    if (block->type == S2A_JSON_OBJECT && s2a_json_object_get(block, "text", &text)) {
        add(k, text.p, text.len);
    }
}

static int cached(const s2a_json_span *block)
{
    s2a_json_span cc;
    return block->type == S2A_JSON_OBJECT && s2a_json_object_get(block, "cache_control", &cc) &&
           cc.type == S2A_JSON_OBJECT;
}

/* System parts marked for caching. Markers in the messages are left out:
 * clients move them forward every turn, which would change the key. */
static void add_cached_parts(hasher *k, const s2a_json_span *system)
{
    s2a_json_span el;
    apr_size_t pos = 0;
    while (s2a_json_array_next(system, &pos, &el)) {
        if (cached(&el)) {
            add_text(k, &el);
        }
    }
}

static void add_system(hasher *k, const s2a_json_span *system)
{
    s2a_json_span el;
    apr_size_t pos = 0;
    if (system->type == S2A_JSON_STRING && system->len > 2) {
        add(k, system->p, system->len);
    }
    while (s2a_json_array_next(system, &pos, &el)) {
        add_text(k, &el);
    }
}

static void add_first_message(hasher *k, const s2a_json_span *messages)
{
    s2a_json_span msg, content;
    apr_size_t pos = 0;
    if (s2a_json_array_next(messages, &pos, &msg) && msg.type == S2A_JSON_OBJECT &&
        s2a_json_object_get(&msg, "content", &content) && content.len > 2) {
        add(k, content.p, content.len);
    }
}

apr_uint64_t s2a_session_key(apr_pool_t *p, apr_int64_t group_id, apr_int64_t owner,
                             const char *header, const char *user_id, const s2a_json_span *system,
                             const s2a_json_span *messages)
{
    static const char *const kinds[] = {"header", "user_id", "cached", "system", "first"};
    unsigned char d[S2A_SHA256_LEN];
    const char *sid = s2a_identity_session(p, user_id);
    const char *group = apr_psprintf(p, "%" APR_INT64_T_FMT ":%" APR_INT64_T_FMT, group_id, owner);
    apr_uint64_t key = 0;
    hasher k;
    int kind, i;

    for (kind = 0; kind < 5; kind++) {
        s2a_sha256_init(&k.h);
        k.used = 0;
        s2a_sha256_update(&k.h, group, strlen(group) + 1);
        s2a_sha256_update(&k.h, kinds[kind], strlen(kinds[kind]) + 1);
        switch (kind) {
        case 0:
            if (header && *header) {
                add(&k, header, strlen(header));
            }
            break;
        case 1:
            if (sid) {
                add(&k, sid, strlen(sid));
            }
            break;
        case 2:
            add_cached_parts(&k, system);
            break;
        case 3:
            add_system(&k, system);
            break;
        default:
            add_first_message(&k, messages);
        }
        if (k.used) {
            break;
        }
    }
    if (!k.used) {
        return 0;
    }
    s2a_sha256_final(&k.h, d);
    for (i = 0; i < 8; i++) {
        key = (key << 8) | d[i];
    }
    return key ? key : 1;
}
