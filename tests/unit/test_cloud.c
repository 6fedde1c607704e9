/* Claude through Vertex and Bedrock: the clouds' model ids, paths, prices,
 * Bedrock's credentials and what their error answers mean. */
#include <apr_base64.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_cloud.h"
#include "s2a_request.h"
#include "s2a_sha256.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static const char *model_id(s2a_cloud cloud, const char *region, const char *model)
{
    char out[S2A_CLOUD_MODEL_MAX];
    s2a_cloud_model_id(cloud, region, model, out);
    return apr_pstrdup(pool, out);
}

static void test_model_ids(void)
{
    char longest[1000];
    S2A_CHECK_INT(s2a_cloud_of_type("vertex"), S2A_CLOUD_VERTEX);
    S2A_CHECK_INT(s2a_cloud_of_type("bedrock"), S2A_CLOUD_BEDROCK);
    S2A_CHECK_INT(s2a_cloud_of_type("apikey"), S2A_CLOUD_NONE);
    S2A_CHECK_INT(s2a_cloud_of_type(NULL), S2A_CLOUD_NONE);

    /* Vertex: the date after '@'; an alias becomes its dated model */
    S2A_CHECK_STR(model_id(S2A_CLOUD_VERTEX, "us-east5", "claude-sonnet-4-5-20250929"),
                  "claude-sonnet-4-5@20250929");
    S2A_CHECK_STR(model_id(S2A_CLOUD_VERTEX, "global", "claude-sonnet-4-5"),
                  "claude-sonnet-4-5@20250929");
    S2A_CHECK_STR(model_id(S2A_CLOUD_VERTEX, "global", "claude-opus-4-1@20250805"),
                  "claude-opus-4-1@20250805");
    S2A_CHECK_STR(model_id(S2A_CLOUD_VERTEX, "global", "claude-opus-4-8"), "claude-opus-4-8");
    /* not a date: eight characters that are not all digits */
    S2A_CHECK_STR(model_id(S2A_CLOUD_VERTEX, "global", "claude-x-2025092a"), "claude-x-2025092a");

    /* Bedrock: the id behind the region's inference profile */
    S2A_CHECK_STR(model_id(S2A_CLOUD_BEDROCK, "us-east-1", "claude-sonnet-4-5-20250929"),
                  "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    S2A_CHECK_STR(model_id(S2A_CLOUD_BEDROCK, "eu-central-1", "claude-haiku-4-5"),
                  "eu.anthropic.claude-haiku-4-5-20251001-v1:0");
    S2A_CHECK_STR(model_id(S2A_CLOUD_BEDROCK, "ap-northeast-1", "claude-opus-4-1"),
                  "apac.anthropic.claude-opus-4-1-20250805-v1:0");
    S2A_CHECK_STR(model_id(S2A_CLOUD_BEDROCK, "sa-east-1", "claude-3-5-sonnet-20241022"),
                  "anthropic.claude-3-5-sonnet-20241022-v2:0");
    S2A_CHECK_STR(model_id(S2A_CLOUD_BEDROCK, "us-west-2", "global.anthropic.claude-x-v1:0"),
                  "global.anthropic.claude-x-v1:0");
    S2A_CHECK_STR(model_id(S2A_CLOUD_BEDROCK, "us-west-2",
                           "arn:aws:bedrock:us-west-2:1:application-inference-profile/x"),
                  "arn:aws:bedrock:us-west-2:1:application-inference-profile/x");
    S2A_CHECK_STR(model_id(S2A_CLOUD_BEDROCK, NULL, "claude-z"), "anthropic.claude-z-v1:0");
    S2A_CHECK_STR(model_id(S2A_CLOUD_NONE, "us-east-1", "claude-z"), "claude-z");

    /* a name longer than any id is cut, never overflows */
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    S2A_CHECK_INT(strlen(model_id(S2A_CLOUD_BEDROCK, "us-east-1", longest)),
                  S2A_CLOUD_MODEL_MAX - 1);
    S2A_CHECK_INT(strlen(model_id(S2A_CLOUD_VERTEX, "x", longest)), S2A_CLOUD_MODEL_MAX - 1);
    memcpy(longest + sizeof(longest) - 10, "-20250101", 10);
    S2A_CHECK_INT(strlen(model_id(S2A_CLOUD_VERTEX, "x", longest)), S2A_CLOUD_MODEL_MAX - 1);
}

static void test_paths(void)
{
    S2A_CHECK_STR(s2a_cloud_path(pool, S2A_CLOUD_VERTEX, "my-project", "us-east5",
                                 "claude-sonnet-4-5@20250929", 0, 0),
                  "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/"
                  "claude-sonnet-4-5@20250929:rawPredict");
    S2A_CHECK_STR(s2a_cloud_path(pool, S2A_CLOUD_VERTEX, "p", "global", "m@1", 1, 0),
                  "/v1/projects/p/locations/global/publishers/anthropic/models/"
                  "m@1:streamRawPredict");
    S2A_CHECK_STR(s2a_cloud_path(pool, S2A_CLOUD_VERTEX, "p", "global", "m@1", 0, 1),
                  "/v1/projects/p/locations/global/publishers/anthropic/models/"
                  "count-tokens:rawPredict");
    S2A_CHECK_STR(s2a_cloud_path(pool, S2A_CLOUD_BEDROCK, NULL, "us-east-1",
                                 "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 0, 0),
                  "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke");
    S2A_CHECK_STR(s2a_cloud_path(pool, S2A_CLOUD_BEDROCK, NULL, "us-east-1", "a/b c", 1, 0),
                  "/model/a%2Fb%20c/invoke-with-response-stream");
    /* Bedrock counts tokens for a foundation model only */
    S2A_CHECK_STR(s2a_cloud_path(pool, S2A_CLOUD_BEDROCK, NULL, "us-east-1",
                                 "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 0, 1),
                  "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens");
    S2A_CHECK_STR(s2a_bedrock_foundation_model("apac.anthropic.claude-x-v1:0"),
                  "anthropic.claude-x-v1:0");
    S2A_CHECK_STR(s2a_bedrock_foundation_model("global.anthropic.claude-x-v1:0"),
                  "anthropic.claude-x-v1:0");
    S2A_CHECK_STR(s2a_bedrock_foundation_model("anthropic.claude-x-v1:0"),
                  "anthropic.claude-x-v1:0");
    S2A_CHECK_STR(s2a_bedrock_foundation_model("arn:aws:bedrock:us-east-1::foundation-model/"
                                               "anthropic.claude-x-v1:0"),
                  "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-x-v1:0");
    S2A_CHECK_STR(s2a_bedrock_foundation_model("US.anthropic.m"), "US.anthropic.m");
    S2A_CHECK_STR(s2a_bedrock_foundation_model("us.meta.llama"), "us.meta.llama");
    S2A_CHECK_STR(s2a_bedrock_foundation_model(".anthropic.m"), ".anthropic.m");
    S2A_CHECK(s2a_cloud_path(pool, S2A_CLOUD_NONE, NULL, NULL, "m", 0, 0) == NULL);
    /* a path segment cannot be left or cut short */
    S2A_CHECK_STR(s2a_cloud_path(pool, S2A_CLOUD_VERTEX, "../x", "r?", "m#", 0, 0),
                  "/v1/projects/..%2Fx/locations/r%3F/publishers/anthropic/models/m%23:rawPredict");

    S2A_CHECK(s2a_cloud_name_ok("us-east5"));
    S2A_CHECK(s2a_cloud_name_ok("my-project-123"));
    S2A_CHECK(!s2a_cloud_name_ok(""));
    S2A_CHECK(!s2a_cloud_name_ok(NULL));
    S2A_CHECK(!s2a_cloud_name_ok("a.b"));
    S2A_CHECK(!s2a_cloud_name_ok("a/b"));
}

static void test_prices(void)
{
    static const char table[] =
        "{\"claude-sonnet-4-5-20250929\": {\"litellm_provider\": \"anthropic\","
        " \"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05},"
        " \"us.anthropic.claude-sonnet-4-5-20250929-v1:0\": {\"litellm_provider\": \"bedrock\","
        " \"input_cost_per_token\": 3.3e-06, \"output_cost_per_token\": 1.65e-05},"
        " \"vertex_ai/claude-haiku-4-5@20251001\": {\"litellm_provider\": \"vertex_ai\","
        " \"input_cost_per_token\": 1.1e-06, \"output_cost_per_token\": 5.5e-06},"
        " \"claude-haiku-4-5-20251001\": {\"litellm_provider\": \"anthropic\","
        " \"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 5e-06}}";
    s2a_pricing *t = NULL;
    const char *err = NULL;
    const s2a_price *pr;
    S2A_CHECK_INT(s2a_pricing_parse(pool, table, sizeof(table) - 1, &t, &err), APR_SUCCESS);
    /* the cloud's own entry where the table has one */
    pr = s2a_cloud_price(t, NULL, S2A_CLOUD_BEDROCK, "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                         "claude-sonnet-4-5-20250929", NULL);
    S2A_CHECK(pr && pr == s2a_pricing_lookup(t, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"));
    pr = s2a_cloud_price(t, NULL, S2A_CLOUD_VERTEX, "claude-haiku-4-5@20251001",
                         "claude-haiku-4-5-20251001", NULL);
    S2A_CHECK(pr && pr == s2a_pricing_lookup(t, "vertex_ai/claude-haiku-4-5@20251001"));
    /* else Anthropic's */
    pr = s2a_cloud_price(t, NULL, S2A_CLOUD_BEDROCK, "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
                         "claude-sonnet-4-5-20250929", NULL);
    S2A_CHECK(pr && pr == s2a_pricing_lookup(t, "claude-sonnet-4-5-20250929"));
    S2A_CHECK(s2a_cloud_price(t, NULL, S2A_CLOUD_VERTEX, "claude-x@1", "claude-x", NULL) == NULL);
    /* an Anthropic account is priced by the model it is sent */
    pr = s2a_cloud_price(t, NULL, S2A_CLOUD_NONE, "claude-haiku-4-5-20251001", "claude-haiku-4-5",
                         NULL);
    S2A_CHECK(pr && pr == s2a_pricing_lookup(t, "claude-haiku-4-5-20251001"));
}

static void test_bedrock_credentials(void)
{
    s2a_bedrock_credential c;
    const char *err = NULL;
    static const char *const refused[] = {
        "",
        "   ",
        "ABSK with space",
        "{",
        "{}",
        "[]",
        "{\"access_key_id\":\"AKIA1\"}",
        "{\"access_key_id\":\"AKIA1\",\"secret_access_key\":\"\"}",
        "{\"access_key_id\":\"AKIA1\",\"secret_access_key\":7}",
        "{\"access_key_id\":\"AKIA 1\",\"secret_access_key\":\"s\"}",
        "{\"access_key_id\":\"AKIA1\",\"secret_access_key\":\"s\\n\"}",
        "{\"access_key_id\":\"AKIA1\",\"secret_access_key\":\"s\",\"session_token\":null}",
        "{\"access_key_id\":\"AKIA\\u00001\",\"secret_access_key\":\"s\"}",
    };
    size_t i;

    S2A_CHECK_INT(s2a_bedrock_credential_read(pool, "ABSKQmVkcm9ja0FQSUtleS1h", &c, &err), 0);
    S2A_CHECK_STR(c.api_key, "ABSKQmVkcm9ja0FQSUtleS1h");
    S2A_CHECK(c.key.access_key_id == NULL);
    S2A_CHECK_INT(
        s2a_bedrock_credential_read(
            pool, " {\"access_key_id\":\"AKIA1\",\"secret_access_key\":\"s/+=\"}", &c, &err),
        0);
    S2A_CHECK_STR(c.key.access_key_id, "AKIA1");
    S2A_CHECK_STR(c.key.secret_access_key, "s/+=");
    S2A_CHECK(c.key.session_token == NULL && c.api_key == NULL);
    S2A_CHECK_INT(s2a_bedrock_credential_read(pool,
                                              "{\"access_key_id\":\"ASIA1\",\"secret_access_key\":"
                                              "\"s\",\"session_token\":\"tok\"}",
                                              &c, &err),
                  0);
    S2A_CHECK_STR(c.key.session_token, "tok");
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err = NULL;
        S2A_CHECK_INT(s2a_bedrock_credential_read(pool, refused[i], &c, &err), -1);
        /* the message never quotes the secret */
        S2A_CHECK(err && !strstr(err, "s\\n") && !strstr(err, "AKIA"));
        S2A_CHECK(c.key.access_key_id == NULL && c.api_key == NULL);
    }
}

static void test_errors(void)
{
    s2a_cloud_error e;
    static const char google[] = "{\"error\":{\"code\":429,\"message\":\"Quota exceeded for "
                                 "aiplatform\",\"status\":\"RESOURCE_EXHAUSTED\"}}";
    static const char amazon[] = "{\"message\":\"Too many requests, please wait.\"}";
    static const char anthropic[] =
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";

    /* statuses as the Anthropic API would have answered */
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 429, "ThrottlingException:http://x/"), 429);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 400, "ServiceQuotaExceededException"), 429);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 503, "ServiceUnavailableException"), 529);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 429, "ModelNotReadyException"), 529);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 403, "AccessDeniedException"), 403);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 403, "UnrecognizedClientException"), 401);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 403, "InvalidSignatureException"), 401);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 400, "ValidationException"), 400);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 408, "ModelTimeoutException"), 504);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 404, "ResourceNotFoundException"), 404);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 503, NULL), 529);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_BEDROCK, 200, "ThrottlingException"), 200);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_VERTEX, 503, NULL), 529);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_VERTEX, 429, NULL), 429);
    S2A_CHECK_INT(s2a_cloud_status(S2A_CLOUD_NONE, 503, NULL), 503);

    s2a_cloud_error_read(pool, S2A_CLOUD_VERTEX, 429, NULL, google, sizeof(google) - 1, &e);
    S2A_CHECK_INT(e.status, 429);
    S2A_CHECK_STR(e.type, "rate_limit_error");
    S2A_CHECK_STR(e.message, "Quota exceeded for aiplatform");
    S2A_CHECK(!e.anthropic);
    s2a_cloud_error_read(pool, S2A_CLOUD_BEDROCK, 429, "ThrottlingException", amazon,
                         sizeof(amazon) - 1, &e);
    S2A_CHECK_INT(e.status, 429);
    S2A_CHECK_STR(e.message, "Too many requests, please wait.");
    s2a_cloud_error_read(pool, S2A_CLOUD_VERTEX, 529, NULL, anthropic, sizeof(anthropic) - 1, &e);
    S2A_CHECK_INT(e.status, 529);
    S2A_CHECK_STR(e.type, "overloaded_error");
    S2A_CHECK_STR(e.message, "Overloaded");
    S2A_CHECK(e.anthropic);
    s2a_cloud_error_read(pool, S2A_CLOUD_VERTEX, 500, NULL,
                         "[{\"error\":{\"code\":500,\"message\":\"m\"}}]", 39, &e);
    S2A_CHECK_STR(e.message, "m");
    /* not JSON, cut, or empty: no message, the status stands */
    s2a_cloud_error_read(pool, S2A_CLOUD_BEDROCK, 500, NULL, "<html>", 6, &e);
    S2A_CHECK(e.message == NULL);
    S2A_CHECK_INT(e.status, 500);
    s2a_cloud_error_read(pool, S2A_CLOUD_BEDROCK, 400, NULL, amazon, 12, &e);
    S2A_CHECK(e.message == NULL);
    s2a_cloud_error_read(pool, S2A_CLOUD_VERTEX, 400, NULL, "", 0, &e);
    S2A_CHECK(e.message == NULL);
    s2a_cloud_error_read(pool, S2A_CLOUD_VERTEX, 400, NULL, "{\"message\":5}", 13, &e);
    S2A_CHECK(e.message == NULL);
}

static const char *count_of(const char *answer)
{
    return s2a_bedrock_count_answer(pool, answer, strlen(answer));
}

/* CountTokens is sent the invoke body, whatever its pieces, in base64 (every length mod 3),
 * and answers as count_tokens does once rewritten. */
static void test_bedrock_counts(void)
{
    static const char body[] = "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":1,"
                               "\"messages\":[{\"role\":\"user\",\"content\":\"caf\u00e9\"}]}";
    static const char open[] = "{\"input\":{\"invokeModel\":{\"body\":\"";
    apr_size_t n, cut;
    int wrong = 0;

    for (n = sizeof(body) - 4; n < sizeof(body); n++) {
        for (cut = 0; cut <= n; cut += 7) {
            apr_array_header_t *pieces = apr_array_make(pool, 2, sizeof(s2a_piece)), *out;
            s2a_piece *first = apr_array_push(pieces), *second = apr_array_push(pieces), *whole;
            char *decoded;
            const char *b64;
            apr_size_t b64_len;
            int len;

            first->p = body;
            first->len = cut;
            second->p = body + cut;
            second->len = n - cut;
            out = s2a_bedrock_count_body(pool, pieces);
            whole = &APR_ARRAY_IDX(out, 0, s2a_piece);
            wrong += out->nelts != 1 || whole->len < sizeof(open) + 3 ||
                     memcmp(whole->p, open, sizeof(open) - 1) != 0 ||
                     memcmp(whole->p + whole->len - 4, "\"}}}", 4) != 0;
            b64 = apr_pstrmemdup(pool, whole->p + sizeof(open) - 1, whole->len - sizeof(open) - 3);
            b64_len = strlen(b64);
            decoded = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(b64));
            len = apr_base64_decode(decoded, b64);
            wrong += b64_len % 4 != 0 || len != (int)n || memcmp(decoded, body, n) != 0;
        }
    }
    S2A_CHECK_INT(wrong, 0);

    S2A_CHECK_STR(count_of("{\"inputTokens\": 0}"), "{\"input_tokens\":0}");
    S2A_CHECK_STR(count_of(" {\"x\":[1],\"inputTokens\":987654321} "),
                  "{\"input_tokens\":987654321}");
    S2A_CHECK(count_of("{\"inputTokens\":1e3}") == NULL);
    S2A_CHECK(count_of("{\"inputTokens\":-3}") == NULL);
    S2A_CHECK(count_of("{\"inputTokens\":1234567890123456789}") == NULL);
    S2A_CHECK(count_of("{\"inputTokens\":12") == NULL);
    S2A_CHECK(count_of("{\"input_tokens\":12}") == NULL);
}

/* A Bedrock request is signed over its body however it is cut in pieces,
 * as SigV4 signs that body whole. */
static void test_bedrock_signing(void)
{
    static const char body[] = "{\"anthropic_version\":\"bedrock-2023-05-31\",\"messages\":[]}";
    s2a_aws_key key = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};
    apr_array_header_t *whole = apr_array_make(pool, 1, sizeof(s2a_piece));
    apr_array_header_t *cut = apr_array_make(pool, 3, sizeof(s2a_piece));
    unsigned char digest[S2A_SHA256_LEN];
    s2a_sigv4_header headers[3] = {{"content-type", "application/json"},
                                   {"host", "bedrock-runtime.us-east-1.amazonaws.com"},
                                   {"x-amz-date", "20150830T123600Z"}};
    const char *date = NULL, *a, *b, *want;
    apr_time_t at;
    s2a_piece *pc = apr_array_push(whole);
    pc->p = body;
    pc->len = sizeof(body) - 1;
    pc = apr_array_push(cut);
    pc->p = body;
    pc->len = 10;
    pc = apr_array_push(cut);
    pc->p = body + 10;
    pc->len = 0;
    pc = apr_array_push(cut);
    pc->p = body + 10;
    pc->len = sizeof(body) - 11;
    apr_time_ansi_put(&at, 1440938160); /* 2015-08-30T12:36:00Z */
    a = s2a_bedrock_sign(pool, &key, "us-east-1", "bedrock-runtime.us-east-1.amazonaws.com",
                         "/model/m%3A0/invoke", NULL, "application/json", whole, at, &date);
    S2A_CHECK_STR(date, "20150830T123600Z");
    b = s2a_bedrock_sign(pool, &key, "us-east-1", "bedrock-runtime.us-east-1.amazonaws.com",
                         "/model/m%3A0/invoke", NULL, "application/json", cut, at, &date);
    s2a_sha256(body, sizeof(body) - 1, digest);
    want = s2a_sigv4_authorization(pool, &key, "us-east-1", "bedrock", "POST",
                                   "/model/m%3A0/invoke", NULL, headers, 3,
                                   s2a_hex(pool, digest, sizeof(digest)), "20150830T123600Z");
    S2A_CHECK_STR(a, want);
    S2A_CHECK_STR(b, want);
    S2A_CHECK(a && strstr(a, "Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, "
                             "SignedHeaders=content-type;host;x-amz-date, Signature=") == a + 17);
    /* no host: nothing to sign */
    S2A_CHECK(s2a_bedrock_sign(pool, &key, "us-east-1", NULL, "/model/m/invoke", NULL,
                               "application/json", whole, at, &date) == NULL);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_model_ids();
    test_paths();
    test_prices();
    test_bedrock_credentials();
    test_errors();
    test_bedrock_counts();
    test_bedrock_signing();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_cloud");
}
