/* The body of a Messages request: its checks, and what each account is
 * sent (the model it maps to, the user's pseudonym), byte for byte. */
#include <apr_general.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_identity.h"
#include "s2a_request.h"
#include "s2a_session.h"
#include "s2a_test.h"

static apr_pool_t *pool;
static const char secret[] = "0123456789abcdef0123456789abcdef";

/* The message a body is refused with, NULL when it is read. */
static const char *refusal(const char *body)
{
    s2a_body b;
    const char *err = NULL;
    return s2a_body_read(pool, body, strlen(body), &b, &err) == 0 ? NULL : err;
}

static void test_checks(void)
{
    s2a_body b;
    const char *err;
    const char *ok = " {\"model\":\"claude-x\",\"messages\":[],\"stream\":true,"
                     "\"metadata\":{},\"max_tokens\":10} ";
    S2A_CHECK_INT(s2a_body_read(pool, ok, strlen(ok), &b, &err), 0);
    S2A_CHECK_STR(b.model, "claude-x");
    S2A_CHECK_INT(b.stream, 1);
    S2A_CHECK_INT(b.f.messages.type, S2A_JSON_ARRAY);
    S2A_CHECK_INT(b.f.system.type, S2A_JSON_NONE);
    S2A_CHECK(refusal("{\"model\":\"m\",\"messages\":[]}") == NULL);
    S2A_CHECK(refusal("{\"model\":\"m\",\"messages\":[],\"stream\":false}") == NULL);

    S2A_CHECK(strncmp(refusal("{\"model\":\"m\",\"messages\":["),
                      "The request body is not valid "
                      "JSON: ",
                      34) == 0);
    S2A_CHECK(strncmp(refusal(""), "The request body is not valid JSON", 34) == 0);
    S2A_CHECK(strncmp(refusal("[1]"), "The request body is not valid JSON", 34) == 0);
    S2A_CHECK_STR(refusal("{\"messages\":[]}"), "model: a non-empty string is required");
    S2A_CHECK_STR(refusal("{\"model\":7,\"messages\":[]}"),
                  "model: a non-empty string is required");
    S2A_CHECK_STR(refusal("{\"model\":\"\",\"messages\":[]}"),
                  "model: a non-empty string is required");
    S2A_CHECK_STR(refusal("{\"model\":\"a\\u0000b\",\"messages\":[]}"),
                  "model: a non-empty string is required");
    S2A_CHECK_STR(refusal("{\"model\":\"m\"}"), "messages: an array is required");
    S2A_CHECK_STR(refusal("{\"model\":\"m\",\"messages\":{}}"), "messages: an array is required");
    S2A_CHECK_STR(refusal("{\"model\":\"m\",\"messages\":[],\"stream\":\"yes\"}"),
                  "stream: must be a boolean");
    S2A_CHECK_STR(refusal("{\"model\":\"m\",\"messages\":[],\"stream\":null}"),
                  "stream: must be a boolean");
    S2A_CHECK_STR(refusal("{\"model\":\"m\",\"messages\":[],\"metadata\":[]}"),
                  "metadata: must be an object");
    /* parsers differ on which of a repeated key's values counts: refused */
    S2A_CHECK_STR(refusal("{\"model\":\"m\",\"messages\":[],\"model\":\"n\"}"),
                  "model: the key appears twice");
    S2A_CHECK_STR(refusal("{\"model\":\"m\",\"stream\":true,\"messages\":[],\"stream\":false}"),
                  "stream: the key appears twice");
    S2A_CHECK_STR(refusal("{\"model\":\"m\",\"messages\":[],\"m\\u006fdel\":\"n\"}"),
                  "model: the key appears twice");
    /* a key the gateway does not read may repeat: the upstream judges it */
    S2A_CHECK(refusal("{\"model\":\"m\",\"messages\":[],\"x\":1,\"x\":2}") == NULL);
}

/* The body `raw` for account 9 of user 4, sent `upstream`. */
static const char *sent(const char *raw, const char *upstream, int add_metadata, int *renamed,
                        int *pieces)
{
    s2a_body b;
    s2a_body_edits e;
    apr_array_header_t *out;
    const char *err, *joined = "";
    int i;
    if (s2a_body_read(pool, raw, strlen(raw), &b, &err) != 0) {
        return NULL;
    }
    memset(&e, 0, sizeof(e));
    e.upstream_model = upstream;
    e.secret = secret;
    e.user_id = 4;
    e.account_id = 9;
    e.add_metadata = add_metadata;
    out = s2a_body_for_account(pool, &b, &e, renamed);
    for (i = 0; i < out->nelts; i++) {
        const s2a_piece *pc = &APR_ARRAY_IDX(out, i, s2a_piece);
        joined = apr_pstrcat(pool, joined, apr_pstrmemdup(pool, pc->p, pc->len), NULL);
    }
    /* the first piece is the client's own bytes, not a copy */
    if (out->nelts && APR_ARRAY_IDX(out, 0, s2a_piece).p != raw) {
        return "first piece copied";
    }
    *pieces = out->nelts;
    return joined;
}

/* The body parses, and its metadata.user_id is what the upstream should see. */
static const char *user_id_in(const char *body)
{
    json_object *o = json_tokener_parse(body), *meta, *uid;
    const char *v = NULL;
    if (o && json_object_object_get_ex(o, "metadata", &meta) &&
        json_object_object_get_ex(meta, "user_id", &uid)) {
        v = apr_pstrdup(pool, json_object_get_string(uid));
    }
    json_object_put(o);
    return v;
}

static void test_edits(void)
{
    const char *ps = s2a_identity_pseudonym(pool, (const unsigned char *)secret, 32, 4, 9);
    const char *plain_id = apr_pstrcat(pool, "user_", ps, NULL);
    const char *out;
    int renamed = -1, pieces = 0;

    /* no metadata: one is added as the body's first member */
    out = sent("{\"model\":\"m\",\"messages\":[]}", "m", 1, &renamed, &pieces);
    S2A_CHECK_STR(out, apr_pstrcat(pool, "{\"metadata\":{\"user_id\":\"", plain_id,
                                   "\"},\"model\":\"m\",\"messages\":[]}", NULL));
    S2A_CHECK_INT(renamed, 0);
    S2A_CHECK_INT(pieces, 3);

    /* the model renamed too, in the body's order whatever the edits' */
    out = sent("{\"model\":\"claude-x\",\"metadata\":{\"user_id\":\"someone\"},\"messages\":[]}",
               "claude-x-2025", 1, &renamed, &pieces);
    S2A_CHECK_STR(out,
                  apr_pstrcat(pool, "{\"model\":\"claude-x-2025\",\"metadata\":{\"user_id\":\"",
                              plain_id, "\"},\"messages\":[]}", NULL));
    S2A_CHECK_INT(renamed, 1);
    S2A_CHECK_INT(pieces, 5);
    out = sent("{\"metadata\":{\"user_id\":\"x\"} , \"model\" : \"a\",\"messages\":[]}", "b", 1,
               &renamed, &pieces);
    S2A_CHECK_STR(user_id_in(out), plain_id);
    S2A_CHECK(strstr(out, "\"model\" : \"b\"") != NULL);

    /* Claude Code's JSON form keeps its session and loses the rest */
    out = sent(
        "{\"model\":\"m\",\"messages\":[],\"metadata\":{\"user_id\":\"{\\\"device_id\\\":"
        "\\\"dev-77\\\",\\\"account_uuid\\\":\\\"acc-88\\\",\\\"session_id\\\":\\\"s-1\\\"}\"}}",
        "m", 1, &renamed, &pieces);
    S2A_CHECK_STR(user_id_in(out),
                  apr_pstrcat(pool, "{\"device_id\":\"", ps, "\",\"session_id\":\"s-1\"}", NULL));
    S2A_CHECK(strstr(out, "dev-77") == NULL && strstr(out, "acc-88") == NULL);

    /* metadata without user_id: it becomes the first member, with a comma
     * only where another member follows */
    S2A_CHECK_STR(user_id_in(sent("{\"model\":\"m\",\"messages\":[],\"metadata\":{}}", "m", 1,
                                  &renamed, &pieces)),
                  plain_id);
    S2A_CHECK_STR(user_id_in(sent("{\"model\":\"m\",\"messages\":[],\"metadata\":{ \n }}", "m", 1,
                                  &renamed, &pieces)),
                  plain_id);
    out =
        sent("{\"model\":\"m\",\"messages\":[],\"metadata\":{\"k\":1}}", "m", 1, &renamed, &pieces);
    S2A_CHECK_STR(user_id_in(out), plain_id);
    S2A_CHECK(strstr(out, "\"k\":1") != NULL);
    /* a user_id that is not a string is replaced all the same */
    S2A_CHECK_STR(user_id_in(sent("{\"model\":\"m\",\"messages\":[],\"metadata\":{\"user_id\":"
                                  "{\"a\":[1]}}}",
                                  "m", 1, &renamed, &pieces)),
                  plain_id);

    /* count_tokens takes no metadata: none is added, one present is edited */
    out = sent("{\"model\":\"m\",\"messages\":[]}", "m", 0, &renamed, &pieces);
    S2A_CHECK_STR(out, "{\"model\":\"m\",\"messages\":[]}");
    S2A_CHECK_INT(pieces, 1);
    S2A_CHECK_STR(user_id_in(sent("{\"model\":\"m\",\"messages\":[],\"metadata\":{\"user_id\":"
                                  "\"u\"}}",
                                  "m", 0, &renamed, &pieces)),
                  plain_id);

    /* a model name that needs escaping is sent as JSON */
    out = sent("{\"model\":\"m\",\"messages\":[]}", "a\"b", 0, &renamed, &pieces);
    S2A_CHECK_STR(out, "{\"model\":\"a\\\"b\",\"messages\":[]}");
}

/* The body `raw` as a cloud is sent it, joined; NULL when it does not read. */
static const char *cloud_sent(const char *raw, const s2a_body_edits *edits, int *renamed)
{
    s2a_body b;
    s2a_body_edits e = *edits;
    apr_array_header_t *out;
    const char *err, *joined = "";
    int i;
    if (s2a_body_read(pool, raw, strlen(raw), &b, &err) != 0) {
        return NULL;
    }
    e.secret = secret;
    e.user_id = 4;
    e.account_id = 9;
    out = s2a_body_for_account(pool, &b, &e, renamed);
    for (i = 0; i < out->nelts; i++) {
        const s2a_piece *pc = &APR_ARRAY_IDX(out, i, s2a_piece);
        joined = apr_pstrcat(pool, joined, apr_pstrmemdup(pool, pc->p, pc->len), NULL);
    }
    return joined;
}

/* The members of the JSON object `text` by name, comma-separated, in order;
 * NULL when it does not parse as an object. */
static const char *members(const char *text)
{
    json_object *o = json_tokener_parse(text);
    const char *names = NULL;
    if (o && json_object_is_type(o, json_type_object)) {
        names = "";
        json_object_object_foreach(o, k, v)
        {
            (void)v;
            names = apr_pstrcat(pool, names, *names ? "," : "", k, NULL);
        }
    }
    json_object_put(o);
    return names;
}

static void test_cloud_edits(void)
{
    s2a_body_edits bedrock, vertex;
    const char *out;
    int renamed = 0;
    static const char *const bodies[] = {
        "{\"model\":\"m\",\"messages\":[],\"stream\":true}",
        "{\"stream\":true,\"model\":\"m\",\"messages\":[]}",
        "{\"model\":\"m\",\"stream\":false,\"messages\":[]}",
        "{ \"model\" : \"m\" , \"stream\" : true , \"messages\" : [ ] }",
        "{\"messages\":[],\"stream\":true,\"model\":\"m\"}",
        "{\n  \"model\": \"m\",\n  \"stream\": true,\n  \"metadata\": {\"user_id\": \"u\"},\n"
        "  \"messages\": []\n}",
        "{\"metadata\":{},\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"model\"}]"
        "}",
        "{\"m\\u006fdel\":\"m\",\"messages\":[],\"stream\":true}",
    };
    size_t i;

    memset(&bedrock, 0, sizeof(bedrock));
    bedrock.upstream_model = "us.anthropic.m-v1:0";
    bedrock.drop_model = bedrock.drop_stream = bedrock.drop_metadata = 1;
    bedrock.anthropic_version = "bedrock-2023-05-31";
    bedrock.add_metadata = 1;
    memset(&vertex, 0, sizeof(vertex));
    vertex.upstream_model = "m@1";
    vertex.drop_model = 1;
    vertex.anthropic_version = "vertex-2023-10-16";
    vertex.add_metadata = 1;

    /* Bedrock: model, stream and metadata out (with their commas, wherever
     * they stand), anthropic_version first */
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        out = cloud_sent(bodies[i], &bedrock, &renamed);
        S2A_CHECK_STR(members(out), "anthropic_version,messages");
        S2A_CHECK_INT(renamed, 1);
        S2A_CHECK(strncmp(out, "{\"anthropic_version\":\"bedrock-2023-05-31\",", 42) == 0);
    }
    /* Vertex keeps the stream and gets the pseudonym */
    out = cloud_sent(bodies[0], &vertex, &renamed);
    S2A_CHECK_STR(members(out), "anthropic_version,metadata,messages,stream");
    S2A_CHECK(user_id_in(out) != NULL);
    out = cloud_sent(bodies[5], &vertex, &renamed);
    S2A_CHECK_STR(members(out), "anthropic_version,stream,metadata,messages");
    S2A_CHECK(user_id_in(out) && strcmp(user_id_in(out), "u") != 0);
    /* the text "model" in a message is not a member */
    out = cloud_sent(bodies[6], &bedrock, &renamed);
    S2A_CHECK(strstr(out, "\"content\":\"model\"") != NULL);

    /* the betas become Bedrock's anthropic_beta array */
    bedrock.betas = "context-1m-2025-08-07, interleaved-thinking-2025-05-14";
    out = cloud_sent(bodies[0], &bedrock, &renamed);
    S2A_CHECK_STR(members(out), "anthropic_version,anthropic_beta,messages");
    S2A_CHECK(strstr(out, "\"anthropic_beta\":[\"context-1m-2025-08-07\","
                          "\"interleaved-thinking-2025-05-14\"]") != NULL);
    /* names of one byte, separators around them; a name that needs escapes; none */
    bedrock.betas = " a,b,,c\td, ";
    out = cloud_sent(bodies[0], &bedrock, &renamed);
    S2A_CHECK(strstr(out, "\"anthropic_beta\":[\"a\",\"b\",\"c\",\"d\"],") != NULL);
    bedrock.betas = "x-1,q\"u\\o,y";
    out = cloud_sent(bodies[0], &bedrock, &renamed);
    S2A_CHECK(strstr(out, "\"anthropic_beta\":[\"x-1\",\"q\\\"u\\\\o\",\"y\"],") != NULL);
    bedrock.betas = " , ";
    out = cloud_sent(bodies[0], &bedrock, &renamed);
    S2A_CHECK(strstr(out, "\"anthropic_beta\":[],") != NULL);

    /* Bedrock's count_tokens (CountTokens): an invoke body, which needs a max_tokens; one
     * the client gave stays */
    bedrock.betas = NULL;
    bedrock.add_metadata = 0;
    bedrock.add_max_tokens = 1;
    out = cloud_sent("{\"model\":\"m\",\"system\":\"s\",\"messages\":[]}", &bedrock, &renamed);
    S2A_CHECK_STR(out, "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":1,"
                       "\"system\":\"s\",\"messages\":[]}");
    out = cloud_sent("{\"model\":\"m\",\"max_tokens\":77,\"messages\":[]}", &bedrock, &renamed);
    S2A_CHECK_STR(out, "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":77,"
                       "\"messages\":[]}");

    /* Vertex's count_tokens: the model renamed, nothing else */
    memset(&vertex, 0, sizeof(vertex));
    vertex.upstream_model = "m@1";
    out = cloud_sent("{\"model\":\"m\",\"messages\":[]}", &vertex, &renamed);
    S2A_CHECK_STR(out, "{\"model\":\"m@1\",\"messages\":[]}");
    S2A_CHECK_INT(renamed, 1);
}

static void test_session_and_estimate(void)
{
    const char *raw = "{\"model\":\"m\",\"max_tokens\":1000,\"system\":\"be brief\","
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                      "\"metadata\":{\"user_id\":\"user_a_account_b_session_s-9\"}}";
    s2a_body b;
    s2a_usage u;
    const char *err;
    S2A_CHECK_INT(s2a_body_read(pool, raw, strlen(raw), &b, &err), 0);
    S2A_CHECK(s2a_body_session(pool, &b, 1, 2, NULL) ==
              s2a_session_key(pool, 1, 2, NULL, "user_a_account_b_session_s-9", &b.f.system,
                              &b.f.messages));
    S2A_CHECK(s2a_body_session(pool, &b, 1, 2, "hdr") != s2a_body_session(pool, &b, 1, 2, NULL));
    S2A_CHECK(s2a_body_session(pool, &b, 1, 2, NULL) != s2a_body_session(pool, &b, 1, 3, NULL));

    s2a_body_estimate(&b, &u);
    S2A_CHECK_INT(u.input, (long long)strlen(raw) / S2A_BYTES_PER_TOKEN);
    S2A_CHECK_INT(u.output, 1000);
    S2A_CHECK_INT(u.cache_creation + u.cache_read, 0);

    raw = "{\"model\":\"m\",\"messages\":[],\"max_tokens\":-5}";
    S2A_CHECK_INT(s2a_body_read(pool, raw, strlen(raw), &b, &err), 0);
    s2a_body_estimate(&b, &u);
    S2A_CHECK_INT(u.output, S2A_ESTIMATE_MAX_TOKENS);
    raw = "{\"model\":\"m\",\"messages\":[],\"max_tokens\":123456789012}";
    S2A_CHECK_INT(s2a_body_read(pool, raw, strlen(raw), &b, &err), 0);
    s2a_body_estimate(&b, &u);
    S2A_CHECK_INT(u.output, S2A_ESTIMATE_MAX_TOKENS);
    raw = "{\"model\":\"m\",\"messages\":[],\"max_tokens\":\"64\"}";
    S2A_CHECK_INT(s2a_body_read(pool, raw, strlen(raw), &b, &err), 0);
    s2a_body_estimate(&b, &u);
    S2A_CHECK_INT(u.output, S2A_ESTIMATE_MAX_TOKENS);
}

/* Every prefix of a body is refused or read whole, never half. */
static void test_truncations(void)
{
    const char *raw =
        "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\""
        ":\"text\",\"text\":\"a\\\"}{\"}]}],\"metadata\":{\"user_id\":\"u\"}}";
    apr_size_t n, len = strlen(raw);
    int wrong = 0;
    for (n = 0; n < len; n++) {
        s2a_body b;
        const char *err;
        char *cut = apr_pstrmemdup(pool, raw, n);
        if (s2a_body_read(pool, cut, n, &b, &err) == 0) {
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);
}

static void test_endpoints(void)
{
    S2A_CHECK_INT(s2a_endpoint_of("/v1/messages"), S2A_ENDPOINT_MESSAGES);
    S2A_CHECK_INT(s2a_endpoint_of("/api/v1/messages"), S2A_ENDPOINT_MESSAGES);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/models/x/v1/messages"), S2A_ENDPOINT_MESSAGES);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/messages/count_tokens"), S2A_ENDPOINT_COUNT_TOKENS);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/models"), S2A_ENDPOINT_MODELS);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/models/claude-x"), S2A_ENDPOINT_MODEL);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/models/a/v1/models/b"), S2A_ENDPOINT_MODEL);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/usage"), S2A_ENDPOINT_USAGE);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/redeem"), S2A_ENDPOINT_REDEEM);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/chat/completions"), S2A_ENDPOINT_CHAT);
    S2A_CHECK_INT(s2a_endpoint_of("/openai/v1/chat/completions"), S2A_ENDPOINT_CHAT);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/responses"), S2A_ENDPOINT_RESPONSES);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/chat/completions/"), S2A_ENDPOINT_NONE);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/responses/resp_1"), S2A_ENDPOINT_NONE);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/models/"), S2A_ENDPOINT_NONE);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/models/a/b"), S2A_ENDPOINT_NONE);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/messages/"), S2A_ENDPOINT_NONE);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/messagesx"), S2A_ENDPOINT_NONE);
    S2A_CHECK_INT(s2a_endpoint_of("/v1/"), S2A_ENDPOINT_NONE);
    S2A_CHECK_INT(s2a_endpoint_of(""), S2A_ENDPOINT_NONE);
    S2A_CHECK_STR(s2a_endpoint_model_id("/v1/models/claude-x"), "claude-x");
    S2A_CHECK_STR(s2a_endpoint_model_id("/v1/models/a/v1/models/b"), "b");
    S2A_CHECK(s2a_endpoint_model_id("/v1/models/") == NULL);
    S2A_CHECK(s2a_endpoint_model_id("/v1/models/a/b") == NULL);
    S2A_CHECK(s2a_endpoint_proxied(S2A_ENDPOINT_MESSAGES) &&
              s2a_endpoint_proxied(S2A_ENDPOINT_COUNT_TOKENS) &&
              s2a_endpoint_proxied(S2A_ENDPOINT_CHAT) &&
              s2a_endpoint_proxied(S2A_ENDPOINT_RESPONSES) &&
              !s2a_endpoint_proxied(S2A_ENDPOINT_MODEL));
}

/* Server tools by their types, escapes decoded; refused by group or price. */
static void test_server_tools(void)
{
    static const struct {
        const char *tools;
        int want;
    } cases[] = {
        {"", 0},
        {",\"tools\":[]", 0},
        {",\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{\"type\":\"object\"}}]", 0},
        {",\"tools\":[{\"type\":\"custom\",\"name\":\"web_search_x\"}]", 0},
        {",\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]",
         S2A_TOOL_WEB_SEARCH},
        {",\"tools\":[{\"type\":\"web\\u005fsearch_20260209\",\"name\":\"s\"}]",
         S2A_TOOL_WEB_SEARCH},
        {",\"tools\":[{\"name\":\"f\",\"type\":\"web_fetch_20250910\"},"
         "{\"type\":\"code_execution_20250825\",\"name\":\"c\"}]",
         S2A_TOOL_WEB_FETCH | S2A_TOOL_CODE_EXECUTION},
        {",\"tools\":{\"type\":\"web_search_20250305\"}", 0},
        {",\"tools\":[\"web_search_20250305\", 7, null]", 0},
        {",\"tools\":[{\"name\":\"n\",\"input_schema\":{\"type\":\"web_search_1\"}}]", 0},
        {",\"tools\":[{\"t\\u0079pe\" : \"web_fetch_1\"}]", S2A_TOOL_WEB_FETCH},
        {",\"tools\":[{\"description\":\"a: \\\"type\\\", b\",\"type\":\"custom\"}]", 0},
        {",\"tools\":[[{\"type\":\"web_search_1\"}]]", 0},
        {",\"tools\":[{\"type\":{\"type\":\"web_search_1\"}},{\"type\":7}]", 0},
    };
    s2a_price priced, unpriced;
    const char *msg = NULL;
    size_t i;
    int wrong = 0;

    memset(&priced, 0, sizeof(priced));
    memset(&unpriced, 0, sizeof(unpriced));
    priced.web_search = 10000000000LL;
    priced.web_search_set = 1;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *raw =
            apr_pstrcat(pool, "{\"model\":\"m\",\"messages\":[]", cases[i].tools, "}", NULL);
        s2a_body b;
        const char *err = NULL;
        if (s2a_body_read(pool, raw, strlen(raw), &b, &err) != 0 ||
            b.server_tools != cases[i].want) {
            fprintf(stderr, "case %d: %s\n", (int)i, err ? err : "wrong tools");
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);
    {
        const char *raw = "{\"model\":\"m\",\"messages\":[],\"tools\":"
                          "[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}";
        s2a_body b;
        const char *err = NULL;
        S2A_CHECK_INT(s2a_body_read(pool, raw, strlen(raw), &b, &err), 0);
        S2A_CHECK_INT(s2a_body_tools_refused(pool, &b, &priced, 1, &msg), 0);
        S2A_CHECK_INT(s2a_body_tools_refused(pool, &b, &unpriced, 1, &msg), 400);
        S2A_CHECK(strstr(msg, "web_search") != NULL);
        S2A_CHECK_INT(s2a_body_tools_refused(pool, &b, &priced, 0, &msg), 403);
        b.server_tools = S2A_TOOL_WEB_FETCH; /* tokens only: nothing to price */
        S2A_CHECK_INT(s2a_body_tools_refused(pool, &b, &unpriced, 1, &msg), 0);
        b.server_tools = S2A_TOOL_CODE_EXECUTION;
        S2A_CHECK_INT(s2a_body_tools_refused(pool, &b, &priced, 1, &msg), 400);
        S2A_CHECK(strstr(msg, "code_execution") != NULL);
        b.server_tools = 0; /* no server tool: a group that refuses them serves it */
        S2A_CHECK_INT(s2a_body_tools_refused(pool, &b, &unpriced, 0, &msg), 0);
    }
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_endpoints();
    test_server_tools();
    test_checks();
    test_edits();
    test_cloud_edits();
    test_session_and_estimate();
    test_truncations();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_request");
}
