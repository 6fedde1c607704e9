/* The body of a Messages request: the top-level fields the gateway reads,
 * their checks, and the body each account is sent. The body is never
 * parsed into a tree nor copied: fields are spans of the client's bytes,
 * and an account's body is those bytes cut into pieces around two edits
 * (the model the account maps it to, and the user's pseudonym in
 * metadata.user_id). */
#ifndef S2A_REQUEST_H
#define S2A_REQUEST_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "s2a_json.h"
#include "s2a_pricing.h"
#include "s2a_usage.h"

/* What a path under a gateway location asks for, by its end. */
typedef enum {
    S2A_ENDPOINT_NONE = 0,     /* nothing served here */
    S2A_ENDPOINT_MESSAGES,     /* .../v1/messages */
    S2A_ENDPOINT_COUNT_TOKENS, /* .../v1/messages/count_tokens */
    S2A_ENDPOINT_MODELS,       /* .../v1/models */
    S2A_ENDPOINT_MODEL,        /* .../v1/models/{id}, one segment */
    S2A_ENDPOINT_USAGE,        /* .../v1/usage */
    S2A_ENDPOINT_REDEEM,       /* .../v1/redeem */
    S2A_ENDPOINT_CHAT,         /* .../v1/chat/completions (OpenAI's) */
    S2A_ENDPOINT_RESPONSES     /* .../v1/responses (OpenAI's) */
} s2a_endpoint;

/* The endpoint a path names; every hook of a request asks this, so they
 * never disagree about it. */
s2a_endpoint s2a_endpoint_of(const char *path);

/* The {id} of a .../v1/models/{id} path (S2A_ENDPOINT_MODEL), else NULL. */
const char *s2a_endpoint_model_id(const char *path);

/* The endpoints that go upstream through mod_proxy. */
#define s2a_endpoint_proxied(e)                                                                    \
    ((e) == S2A_ENDPOINT_MESSAGES || (e) == S2A_ENDPOINT_COUNT_TOKENS ||                           \
     (e) == S2A_ENDPOINT_CHAT || (e) == S2A_ENDPOINT_RESPONSES)

/* The fields read, as spans of the body (type NONE when absent). */
typedef struct {
    s2a_json_span model;
    s2a_json_span messages;
    s2a_json_span stream;
    s2a_json_span metadata;
    s2a_json_span system;
    s2a_json_span max_tokens;
    s2a_json_span tools;
} s2a_body_fields;

/* Server tools a request may ask for: the upstream runs them and charges per
 * use (web search), or only the tokens they add (web fetch), or by a measure
 * the gateway cannot count (code execution's container time). */
#define S2A_TOOL_WEB_SEARCH 1
#define S2A_TOOL_WEB_FETCH 2
#define S2A_TOOL_CODE_EXECUTION 4

typedef struct {
    const char *raw; /* as the client sent it */
    apr_size_t len;
    s2a_body_fields f;
    const char *model; /* the model asked for, decoded */
    int stream;
    int server_tools; /* S2A_TOOL_* of the tools it lists, by their types */
} s2a_body;

/* Reads the body `raw[0..len)`: one JSON object whose `model` is a non-empty
 * string and `messages` an array, with `stream` a boolean and `metadata` an
 * object where present. 0, or -1 with *err the message the client gets
 * (from p). */
int s2a_body_read(apr_pool_t *p, const char *raw, apr_size_t len, s2a_body *out, const char **err);

/* Where the writer of a body put the values of s2a_body_fields: offsets
 * into the body (its buffer may move while it grows); len 0 where it wrote
 * none. */
typedef struct {
    apr_size_t off;
    apr_size_t len;
} s2a_body_mark;

typedef struct {
    s2a_body_mark model;
    s2a_body_mark messages;
    s2a_body_mark stream;
    s2a_body_mark metadata;
    s2a_body_mark system;
    s2a_body_mark max_tokens;
    s2a_body_mark tools;
} s2a_body_marks;

/* s2a_body_read of a body the gateway wrote itself (an OpenAI door's
 * Messages body, from a request the door checked whole), whose fields are
 * where `marks` say: nothing is scanned again, and the kinds are checked as
 * s2a_body_read checks them. A door's tools are functions, never server
 * tools. */
int s2a_body_read_built(apr_pool_t *p, const char *raw, apr_size_t len, const s2a_body_marks *marks,
                        s2a_body *out, const char **err);

/* Why the request may not use the server tools it lists: 0 when it may;
 * else the status (403: its group refuses server tools; 400: one has no price
 * at `price`, the prices of the model the account is sent) with *message. */
int s2a_body_tools_refused(apr_pool_t *p, const s2a_body *b, const s2a_price *price,
                           int group_allows, const char **message);

/* A stretch of the body sent upstream. */
typedef struct {
    const char *p;
    apr_size_t len;
} s2a_piece;

/* What an account is sent instead of the client's body. */
typedef struct {
    const char *upstream_model; /* the model the account maps the asked one to */
    const char *secret;         /* the pseudonym key (S2A_IDENTITY_SECRET_MIN or more) */
    apr_int64_t user_id;
    apr_int64_t account_id;
    int add_metadata; /* 0: a body without metadata gets none (count_tokens takes none) */
    /* a cloud's (s2a_cloud.h): */
    int drop_model;                /* the model goes in the path instead */
    int drop_stream;               /* the path says whether it streams (Bedrock) */
    int drop_metadata;             /* the cloud takes no metadata (Bedrock) */
    const char *anthropic_version; /* set as the body's first member; NULL: none */
    int add_max_tokens;            /* a body without max_tokens gets 1 (Bedrock's CountTokens
                                      reads an invoke body, which needs one) */
    const char *betas;             /* anthropic-beta's names, comma-separated, as the body's
                                      anthropic_beta array (Bedrock); NULL: none */
} s2a_body_edits;

/* The body for one account, as pieces (s2a_piece) of the client's bytes and
 * the edits, in order: `model` becomes e->upstream_model when that differs,
 * and metadata.user_id the pseudonym of (user, account) in the form the
 * client used (s2a_identity_user_id), inserted where absent; for a cloud,
 * the members it must not get are taken out (with their commas) and the
 * ones it needs put first. *renamed is 1 when the model was renamed or
 * taken out (the answer names the upstream model then). */
apr_array_header_t *s2a_body_for_account(apr_pool_t *p, const s2a_body *b, const s2a_body_edits *e,
                                         int *renamed);

/* The conversation the body belongs to (s2a_session.h): 0 when none. */
apr_uint64_t s2a_body_session(apr_pool_t *p, const s2a_body *b, apr_int64_t group_id,
                              apr_int64_t user_id, const char *session_header);

/* Output tokens a request without max_tokens is expected to cost. */
#define S2A_ESTIMATE_MAX_TOKENS 4096

/* What the request is expected to cost, for its balance hold: input at
 * S2A_BYTES_PER_TOKEN bytes of body per token, output up to its max_tokens
 * (S2A_ESTIMATE_MAX_TOKENS when absent or not a positive integer). */
void s2a_body_estimate(const s2a_body *b, s2a_usage *out);

#endif
