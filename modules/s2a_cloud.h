/* Claude through a cloud: the accounts of Google Vertex AI and Amazon
 * Bedrock, beside Anthropic's own API. What differs is decided here: the
 * model id the cloud knows a model by (and the price it is billed at), the
 * path a request goes to, what the body must lose or carry, the Bedrock
 * credential's two forms, and what a cloud's error answer means in the
 * Anthropic API's terms. The signing itself is s2a_sigv4 (Bedrock) and
 * s2a_vertex_key (Vertex's token grant). */
#ifndef S2A_CLOUD_H
#define S2A_CLOUD_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "s2a_pricing.h"
#include "s2a_sigv4.h"

typedef enum {
    S2A_CLOUD_NONE = 0, /* Anthropic's API: apikey, oauth, setup-token */
    S2A_CLOUD_VERTEX,
    S2A_CLOUD_BEDROCK
} s2a_cloud;

/* The cloud of an account type ("vertex", "bedrock"; anything else NONE). */
s2a_cloud s2a_cloud_of_type(const char *type);

/* What the body sent to a cloud names its API version by. */
#define S2A_VERTEX_ANTHROPIC_VERSION "vertex-2023-10-16"
#define S2A_BEDROCK_ANTHROPIC_VERSION "bedrock-2023-05-31"

/* Longest model id a cloud is sent. */
#define S2A_CLOUD_MODEL_MAX 256

/* The cloud's id of the Anthropic model `model` into out[S2A_CLOUD_MODEL_MAX]
 * (cut to fit): an alias without a date becomes its dated model first; then
 * Vertex writes the date after '@' ("claude-sonnet-4-5@20250929") and
 * Bedrock names it "anthropic.<model>-v1:0" behind the inference profile
 * of the region's geography ("us." for us-*, "eu." for eu-*, "apac." for
 * ap-*; none elsewhere). A model that already looks like the cloud's id is
 * left as it is. NONE copies it. */
void s2a_cloud_model_id(s2a_cloud cloud, const char *region, const char *model, char *out);

/* The price a request is billed at: the cloud model id's own entry in the
 * table (as named, or with LiteLLM's "bedrock/" or "vertex_ai/" prefix),
 * when the operator's table has one; else the client model's (with
 * `rules`), as Anthropic bills it. *rule as s2a_pricing_resolve. */
const s2a_price *s2a_cloud_price(const s2a_pricing *t, const apr_array_header_t *rules,
                                 s2a_cloud cloud, const char *cloud_model, const char *client_model,
                                 const s2a_price_rule **rule);

/* The path (from '/') a request goes to: Vertex's
 * /v1/projects/{project}/locations/{region}/publishers/anthropic/models/
 * {model}:rawPredict (:streamRawPredict for a stream; the models' own
 * count-tokens:rawPredict for count_only), Bedrock's
 * /model/{model}/invoke (or invoke-with-response-stream; for count_only
 * /model/{foundation model}/count-tokens), each segment percent-encoded.
 * NULL for NONE. */
const char *s2a_cloud_path(apr_pool_t *p, s2a_cloud cloud, const char *project, const char *region,
                           const char *model, int stream, int count_only);

/* The foundation model of a Bedrock model id: an inference profile's id
 * without its geography ("us.anthropic.claude-..." is
 * "anthropic.claude-..."), which is all Bedrock counts tokens for; any
 * other id (a foundation model's, an ARN) as it is. Points into model. */
const char *s2a_bedrock_foundation_model(const char *model);

/* Bedrock's CountTokens body for the invoke body `pieces` (s2a_piece):
 * {"input":{"invokeModel":{"body":"<the body in base64>"}}}, as one piece. */
apr_array_header_t *s2a_bedrock_count_body(apr_pool_t *p, const apr_array_header_t *pieces);

/* CountTokens' answer json[0..len), {"inputTokens": n}, as the Anthropic
 * API's count_tokens answers: {"input_tokens":n} (from p); NULL when it is
 * not that. */
char *s2a_bedrock_count_answer(apr_pool_t *p, const char *json, apr_size_t len);

/* A Bedrock account's credential: an access key pair, written as the JSON
 * object {"access_key_id", "secret_access_key"[, "session_token"]}, or a
 * Bedrock API key, sent as a bearer token. */
typedef struct {
    s2a_aws_key key;     /* the pair; access_key_id NULL for an API key */
    const char *api_key; /* NULL for a pair */
} s2a_bedrock_credential;

/* Reads a Bedrock credential. 0 with *out, or -1 with *err naming what is
 * wrong (never quoting a secret). */
int s2a_bedrock_credential_read(apr_pool_t *p, const char *text, s2a_bedrock_credential *out,
                                const char **err);

/* The Authorization header of a Bedrock request signed with `key`
 * (SigV4, service "bedrock"): POST to `path` (as sent; `query` NULL: none)
 * on `host` (the Host header as sent), of Content-Type `content_type` and
 * the body `pieces` (s2a_piece, s2a_request.h), at `now`. *amz_date gets
 * the X-Amz-Date it is signed for (the request carries it, and the
 * session token as X-Amz-Security-Token when the key has one). NULL when
 * it cannot be signed. */
const char *s2a_bedrock_sign(apr_pool_t *p, const s2a_aws_key *key, const char *region,
                             const char *host, const char *path, const char *query,
                             const char *content_type, const apr_array_header_t *pieces,
                             apr_time_t now, const char **amz_date);

/* What the admin API shows of a cloud account's credential `plain`: a
 * service account's e-mail address, an access key pair's key id with its
 * middle hidden; NULL when it is neither (the caller masks it whole). */
const char *s2a_cloud_credential_shown(apr_pool_t *p, s2a_cloud cloud, const char *plain);

/* Whether a Vertex region name or project id can go in a path and a host
 * name: letters, digits and '-' only (and not empty). */
int s2a_cloud_name_ok(const char *name);

/* What a cloud's error answer means in the Anthropic API's terms: the
 * status the Anthropic API would have answered (Bedrock by its
 * x-amzn-errortype, s2a_bedrock_exception; Vertex by Google's status, a
 * 503 being the model's overload, 529), its error type, and the cloud's
 * own message (NULL: none). `error_type` is the x-amzn-errortype header
 * (may be NULL). */
typedef struct {
    int status;
    const char *type;
    const char *message;
    int anthropic; /* the body is in the Anthropic API's shape already */
} s2a_cloud_error;
void s2a_cloud_error_read(apr_pool_t *p, s2a_cloud cloud, int status, const char *error_type,
                          const char *body, apr_size_t len, s2a_cloud_error *out);

/* The HTTP status the client and the policy see for a cloud's answer of
 * `status` (the x-amzn-errortype `error_type`, may be NULL): 2xx as it is. */
int s2a_cloud_status(s2a_cloud cloud, int status, const char *error_type);

#endif
