/* The Responses API in front of the Messages API: what Codex CLI and the
 * SDKs send, what is refused (nothing is stored here), and the answers,
 * whole or streamed in any pieces. */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_openai_responses.h"
#include "s2a_test.h"

static apr_pool_t *pool;

#include "s2a_test_json.h"

/* ---- Requests ------------------------------------------------------------------------------- */

static s2a_tools_memo *memo; /* the whole run's: every tools array read goes through it */

static int same_error(const s2a_openai_error *a, const s2a_openai_error *b)
{
    return a->status == b->status && !strcmp(a->type, b->type) && !strcmp(a->message, b->message) &&
           (a->param ? b->param && !strcmp(a->param, b->param) : !b->param);
}

static int same_request(const s2a_responses_request *a, const s2a_responses_request *b)
{
    int k;

    if (a->len != b->len || memcmp(a->body, b->body, a->len) ||
        memcmp(&a->marks, &b->marks, sizeof(a->marks)) || strcmp(a->model, b->model) ||
        a->stream != b->stream || a->tools != b->tools || a->max_tokens != b->max_tokens ||
        a->thinking != b->thinking || strcmp(a->echo, b->echo) ||
        a->custom->nelts != b->custom->nelts) {
        return 0;
    }
    for (k = 0; k < a->custom->nelts; k++) {
        if (strcmp(APR_ARRAY_IDX(a->custom, k, const char *),
                   APR_ARRAY_IDX(b->custom, k, const char *)) != 0) {
            return 0;
        }
    }
    return 1;
}

/* s2a_responses_request_read without a memo, and then twice through the
 * run's memo (which may then know the tools array, or know it already):
 * the three readings must agree, body, marks and custom tools alike. */
static int read_request(apr_pool_t *p, const char *raw, apr_size_t n, s2a_responses_request *req,
                        s2a_openai_error *err)
{
    int rc = s2a_responses_request_read(p, raw, n, NULL, req, err), k;

    for (k = 0; k < 2; k++) {
        s2a_responses_request again;
        s2a_openai_error again_err;
        memset(&again_err, 0, sizeof(again_err));
        S2A_CHECK_INT(s2a_responses_request_read(p, raw, n, memo, &again, &again_err), rc);
        S2A_CHECK(rc == 0 ? same_request(req, &again) : same_error(err, &again_err));
    }
    return rc;
}

/* Reads body (from an exact-size copy), and returns the Messages body
 * parsed; NULL when refused, with *err. */
static json_object *request(const char *body, s2a_responses_request *req, s2a_openai_error *err)
{
    apr_size_t n = strlen(body);
    char *copy = malloc(n ? n : 1);
    json_object *o = NULL;
    int rc;

    memcpy(copy, body, n);
    memset(err, 0, sizeof(*err));
    rc = read_request(pool, copy, n, req, err);
    free(copy);
    if (rc == 0) {
        S2A_CHECK(req->body && strlen(req->body) == req->len);
        o = parse(req->body, req->len);
        if (!o) {
            fprintf(stderr, "not JSON: %s\n", req->body);
        }
        S2A_CHECK(o != NULL);
    } else {
        S2A_CHECK_INT(rc, -1);
        S2A_CHECK(req->body == NULL);
    }
    return o;
}

static void refused(const char *body, const char *param)
{
    s2a_responses_request req;
    s2a_openai_error err;
    json_object *o = request(body, &req, &err);

    S2A_CHECK(o == NULL);
    json_object_put(o);
    S2A_CHECK_INT(err.status, 400);
    S2A_CHECK_STR(err.type, "invalid_request_error");
    S2A_CHECK(err.message && *err.message);
    if (param) {
        S2A_CHECK_STR(err.param, param);
    } else {
        S2A_CHECK(err.param == NULL);
    }
}

/* The message of the refusal of body; NULL when it is not refused. */
static const char *refusal(const char *body)
{
    s2a_responses_request req;
    s2a_openai_error err;
    json_object *o = request(body, &req, &err);
    const char *message = o ? NULL : err.message;

    json_object_put(o);
    return message;
}

/* A request as Codex CLI sends it, mid-task: stateless, its reasoning
 * items carried back, a function tool and a free-form one. */
static const char CODEX[] =
    "{\"model\":\"claude-sonnet-4-5\",\"instructions\":\"You are a coding agent.\","
    "\"input\":[{\"type\":\"message\",\"role\":\"developer\",\"content\":[{\"type\":"
    "\"input_text\",\"text\":\"<permissions>workspace-write</permissions>\"}]},"
    "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
    "\"<environment_context>cwd /src</environment_context>\"}]},"
    "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
    "\"Fix the failing test\"}]},"
    "{\"type\":\"reasoning\",\"id\":\"rs_01X_0\",\"summary\":[{\"type\":\"summary_text\","
    "\"text\":\"Run the \\\"tests\\\" first.\"}],\"content\":null,\"encrypted_content\":"
    "\"EqQBCgIYAhIM\"},"
    "{\"type\":\"function_call\",\"id\":\"fc_01X_1\",\"call_id\":\"toolu_01A\",\"name\":"
    "\"shell\",\"arguments\":\"{\\\"command\\\":[\\\"make\\\",\\\"test\\\"]}\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"toolu_01A\",\"output\":"
    "\"FAIL test_x\\n\"},"
    "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":"
    "\"redacted_thinking:EmwKAhgBEgy3va3pzix\"},"
    "{\"type\":\"custom_tool_call\",\"call_id\":\"toolu_02B\",\"name\":\"apply_patch\","
    "\"input\":\"*** Begin Patch\\n*** End Patch\\n\"},"
    "{\"type\":\"custom_tool_call_output\",\"call_id\":\"toolu_02B\",\"output\":\"Done!\"},"
    "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"unsigned\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"name\":\"shell\",\"description\":\"Runs a command\","
    "\"strict\":false,\"parameters\":{\"type\":\"object\",\"properties\":{\"command\":{\"type\":"
    "\"array\",\"items\":{\"type\":\"string\"}}},\"required\":[\"command\"]}},"
    "{\"type\":\"custom\",\"name\":\"apply_patch\",\"description\":\"Edits files\",\"format\":"
    "{\"type\":\"grammar\",\"syntax\":\"lark\",\"definition\":\"start: begin_patch hunk+ "
    "end_patch\\n\"}}],"
    "\"tool_choice\":\"auto\",\"parallel_tool_calls\":false,\"reasoning\":{\"effort\":"
    "\"medium\",\"summary\":\"auto\"},\"store\":false,\"stream\":true,\"include\":["
    "\"reasoning.encrypted_content\"],\"prompt_cache_key\":\"0199a1b2\"}";

static void test_codex(void)
{
    s2a_responses_request req;
    s2a_openai_error err;
    json_object *o, *echo;
    const char *text;

    o = request(CODEX, &req, &err);
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(req.model, "claude-sonnet-4-5");
    S2A_CHECK_INT(req.stream, 1);
    S2A_CHECK_INT(req.tools, 2);
    S2A_CHECK(req.custom && req.custom->nelts == 1);
    S2A_CHECK_STR(req.custom ? APR_ARRAY_IDX(req.custom, 0, const char *) : NULL, "apply_patch");
    /* instructions, then the developer message */
    S2A_CHECK_INT(len_at(o, "system"), 2);
    S2A_CHECK_STR(str_at(o, "system/0/text"), "You are a coding agent.");
    S2A_CHECK_STR(str_at(o, "system/1/text"), "<permissions>workspace-write</permissions>");
    /* user, assistant (thinking, call), user (result), assistant, user */
    S2A_CHECK_INT(len_at(o, "messages"), 5);
    S2A_CHECK_INT(len_at(o, "messages/0/content"), 2);
    S2A_CHECK_STR(str_at(o, "messages/0/content/1/text"), "Fix the failing test");
    S2A_CHECK_STR(str_at(o, "messages/1/role"), "assistant");
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/type"), "thinking");
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/thinking"), "Run the \"tests\" first.");
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/signature"), "EqQBCgIYAhIM");
    S2A_CHECK_STR(str_at(o, "messages/1/content/1/type"), "tool_use");
    S2A_CHECK_STR(str_at(o, "messages/1/content/1/id"), "toolu_01A");
    S2A_CHECK_STR(str_at(o, "messages/1/content/1/input/command/1"), "test");
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/type"), "tool_result");
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/content"), "FAIL test_x\n");
    S2A_CHECK_STR(str_at(o, "messages/3/content/0/type"), "redacted_thinking");
    S2A_CHECK_STR(str_at(o, "messages/3/content/0/data"), "EmwKAhgBEgy3va3pzix");
    S2A_CHECK_STR(str_at(o, "messages/3/content/1/name"), "apply_patch");
    S2A_CHECK_STR(str_at(o, "messages/3/content/1/input/input"),
                  "*** Begin Patch\n*** End Patch\n");
    /* the unsigned reasoning item is left out: nothing after the result */
    S2A_CHECK_INT(len_at(o, "messages/3/content"), 2);
    S2A_CHECK_STR(str_at(o, "messages/4/content/0/tool_use_id"), "toolu_02B");
    S2A_CHECK_INT(len_at(o, "messages/4/content"), 1);
    /* the tools: the free-form one takes one string, its grammar told */
    S2A_CHECK_STR(str_at(o, "tools/0/input_schema/properties/command/type"), "array");
    S2A_CHECK_STR(str_at(o, "tools/1/name"), "apply_patch");
    S2A_CHECK_STR(str_at(o, "tools/1/input_schema/properties/input/type"), "string");
    S2A_CHECK_STR(str_at(o, "tools/1/input_schema/required/0"), "input");
    text = str_at(o, "tools/1/description");
    S2A_CHECK(text && !strncmp(text, "Edits files", 11) && strstr(text, "lark") &&
              strstr(text, "start: begin_patch hunk+ end_patch\n"));
    S2A_CHECK_STR(str_at(o, "tool_choice/type"), "auto");
    S2A_CHECK(json_object_get_boolean(at(o, "tool_choice/disable_parallel_tool_use")));
    /* the thinking carried back lets thinking go on in the loop */
    S2A_CHECK_STR(str_at(o, "thinking/type"), "enabled");
    S2A_CHECK_INT(int_at(o, "thinking/budget_tokens"), S2A_OPENAI_BUDGET_MEDIUM);
    S2A_CHECK_INT(int_at(o, "max_tokens"),
                  S2A_OPENAI_RESPONSES_MAX_TOKENS + S2A_OPENAI_BUDGET_MEDIUM);
    S2A_CHECK_INT(req.max_tokens, S2A_OPENAI_RESPONSES_MAX_TOKENS + S2A_OPENAI_BUDGET_MEDIUM);
    S2A_CHECK_INT(req.thinking, S2A_OPENAI_BUDGET_MEDIUM);
    S2A_CHECK(json_object_get_boolean(at(o, "stream")));
    S2A_CHECK(!has(o, "store") && !has(o, "include") && !has(o, "prompt_cache_key"));
    json_object_put(o);

    /* the echo: the request's values, OpenAI's defaults for the rest */
    echo =
        req.echo ? parse(apr_pstrcat(pool, "{", req.echo, "}", NULL), strlen(req.echo) + 2) : NULL;
    S2A_CHECK(echo != NULL);
    S2A_CHECK(has(echo, "max_output_tokens") && !at(echo, "max_output_tokens"));
    S2A_CHECK(!json_object_get_boolean(at(echo, "parallel_tool_calls")));
    S2A_CHECK_STR(str_at(echo, "reasoning/effort"), "medium");
    S2A_CHECK_INT(int_at(echo, "temperature"), 1);
    S2A_CHECK_STR(str_at(echo, "text/format/type"), "text");
    S2A_CHECK_STR(str_at(echo, "tool_choice"), "auto");
    S2A_CHECK_INT(int_at(echo, "top_p"), 1);
    json_object_put(echo);
}

static json_object *simple(const char *members, s2a_responses_request *req)
{
    s2a_openai_error err;

    return request(apr_pstrcat(pool, "{\"model\":\"claude-sonnet-4-5\"", members, "}", NULL), req,
                   &err);
}

static void test_requests(void)
{
    s2a_responses_request req;
    json_object *o, *echo;
    const char *text;

    /* input as a string, and the options */
    o = simple(",\"input\":\"Tell me a joke\",\"instructions\":\"Be brief.\",\"max_output_tokens\":"
               "300,\"temperature\":0.4,\"top_p\":0.9,\"user\":\"u-1\",\"store\":false,"
               "\"previous_response_id\":null,\"background\":false,\"truncation\":\"auto\","
               "\"metadata\":{\"k\":\"v\"},\"top_logprobs\":0",
               &req);
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(str_at(o, "system/0/text"), "Be brief.");
    S2A_CHECK_STR(str_at(o, "messages/0/role"), "user");
    S2A_CHECK_STR(str_at(o, "messages/0/content/0/text"), "Tell me a joke");
    S2A_CHECK_INT(int_at(o, "max_tokens"), 300);
    S2A_CHECK(json_object_get_double(at(o, "temperature")) == 0.4);
    S2A_CHECK(!has(o, "top_p"));
    S2A_CHECK_STR(str_at(o, "metadata/user_id"), "u-1");
    S2A_CHECK(!has(o, "stream") && !has(o, "thinking") && !has(o, "tools"));
    S2A_CHECK_INT(req.stream, 0);
    S2A_CHECK_INT(req.tools, 0);
    S2A_CHECK(req.custom && req.custom->nelts == 0);
    echo = parse(apr_pstrcat(pool, "{", req.echo, "}", NULL), strlen(req.echo) + 2);
    S2A_CHECK_INT(int_at(echo, "max_output_tokens"), 300);
    S2A_CHECK(json_object_get_double(at(echo, "temperature")) == 0.4);
    S2A_CHECK(json_object_get_double(at(echo, "top_p")) == 0.9);
    json_object_put(echo);
    json_object_put(o);

    /* messages given by role alone, parts of every kind */
    o = simple(",\"input\":[{\"role\":\"system\",\"content\":\"Sys\"},{\"role\":\"user\","
               "\"content\":\"Look:\"},{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
               "\"image_url\":\"data:image/jpeg;base64,/9j/4AAQ\",\"detail\":\"auto\"},{\"type\":"
               "\"input_image\",\"image_url\":\"https://example.com/cat.png\"},{\"type\":"
               "\"input_file\",\"filename\":\"a.pdf\",\"file_data\":\"data:application/pdf;base64,"
               "JVBERi0=\"},{\"type\":\"input_text\",\"text\":\" \"}]},{\"role\":\"assistant\","
               "\"content\":\"A cat.\"},{\"type\":\"message\",\"role\":\"assistant\",\"content\":"
               "[{\"type\":\"output_text\",\"text\":\"Cute.\",\"annotations\":[]},{\"type\":"
               "\"refusal\",\"refusal\":\"No more.\"}]},{\"role\":\"user\",\"content\":\"Why?\"}]",
               &req);
    S2A_CHECK_STR(str_at(o, "system/0/text"), "Sys");
    S2A_CHECK_INT(len_at(o, "messages"), 3);
    S2A_CHECK_INT(len_at(o, "messages/0/content"), 4);
    S2A_CHECK_STR(str_at(o, "messages/0/content/1/source/media_type"), "image/jpeg");
    S2A_CHECK_STR(str_at(o, "messages/0/content/2/source/url"), "https://example.com/cat.png");
    S2A_CHECK_STR(str_at(o, "messages/0/content/3/type"), "document");
    S2A_CHECK_INT(len_at(o, "messages/1/content"), 3);
    S2A_CHECK_STR(str_at(o, "messages/1/content/2/text"), "No more.");
    json_object_put(o);

    /* a tool result of parts */
    o = simple(",\"input\":[{\"role\":\"user\",\"content\":\"shot\"},{\"type\":\"function_call\","
               "\"call_id\":\"call.1\",\"name\":\"screenshot\",\"arguments\":\"\"},{\"type\":"
               "\"function_call_output\",\"call_id\":\"call.1\",\"output\":[{\"type\":"
               "\"input_text\",\"text\":\"here\"},{\"type\":\"input_image\",\"image_url\":"
               "\"data:image/png;base64,iVBO\"}]}]",
               &req);
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/id"), "call_2e1");
    S2A_CHECK(json_object_object_length(at(o, "messages/1/content/0/input")) == 0);
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/tool_use_id"), "call_2e1");
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/content/1/type"), "image");
    json_object_put(o);

    /* a grammar without its syntax named, and a text format */
    o = simple(",\"input\":\"q\",\"tools\":[{\"type\":\"custom\",\"name\":\"a\",\"format\":{"
               "\"type\":\"grammar\",\"definition\":\"s: /x+/\"}},{\"type\":\"custom\",\"name\":"
               "\"b\",\"description\":\"B\",\"format\":{\"type\":\"text\"}}]",
               &req);
    S2A_CHECK_STR(str_at(o, "tools/0/description"), "The input follows this grammar:\ns: /x+/");
    S2A_CHECK_STR(str_at(o, "tools/1/description"), "B");
    S2A_CHECK(req.custom && req.custom->nelts == 2);
    json_object_put(o);

    /* JSON output, by schema or not */
    o = simple(",\"input\":\"q\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"r\","
               "\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":"
               "\"integer\"}}}},\"verbosity\":\"low\"}",
               &req);
    text = str_at(o, "system/0/text");
    S2A_CHECK(text && strstr(text, "\"n\":{\"type\":\"integer\"}"));
    json_object_put(o);
    o = simple(",\"input\":\"q\",\"text\":{\"format\":{\"type\":\"json_object\"}}", &req);
    S2A_CHECK(str_at(o, "system/0/text") && strstr(str_at(o, "system/0/text"), "JSON object"));
    json_object_put(o);

    /* tool choices */
    {
        static const char *const rows[][3] = {
            {"\"required\"", "any", NULL},
            {"\"none\"", "none", NULL},
            {"{\"type\":\"function\",\"name\":\"shell\"}", "tool", "shell"},
            {"{\"type\":\"custom\",\"name\":\"apply_patch\"}", "tool", "apply_patch"}};
        apr_size_t k;
        for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
            o = simple(apr_pstrcat(pool,
                                   ",\"input\":\"q\",\"tools\":[{\"type\":\"function\",\"name\":"
                                   "\"shell\"},{\"type\":\"custom\",\"name\":\"apply_patch\"}],"
                                   "\"reasoning\":{\"effort\":\"high\"},\"tool_choice\":",
                                   rows[k][0], NULL),
                       &req);
            S2A_CHECK_STR(str_at(o, "tool_choice/type"), rows[k][1]);
            if (rows[k][2]) {
                S2A_CHECK_STR(str_at(o, "tool_choice/name"), rows[k][2]);
            }
            /* a forced tool: no thinking */
            S2A_CHECK(has(o, "thinking") == !strcmp(rows[k][1], "none"));
            json_object_put(o);
        }
    }

    /* an adaptive model's effort */
    o = request("{\"model\":\"claude-opus-4-6\",\"input\":\"q\",\"reasoning\":{\"effort\":"
                "\"xhigh\"}}",
                &req, &(s2a_openai_error){0});
    S2A_CHECK_STR(str_at(o, "thinking/type"), "adaptive");
    S2A_CHECK_STR(str_at(o, "output_config/effort"), "max");
    json_object_put(o);

    /* a huge count saturates */
    o = simple(",\"input\":\"q\",\"max_output_tokens\":1e3", &req);
    S2A_CHECK(o == NULL);
    o = simple(",\"input\":\"q\",\"max_output_tokens\":99999999999999999999999", &req);
    S2A_CHECK_INT(int_at(o, "max_tokens"), APR_INT64_MAX);
    json_object_put(o);
}

static void test_refusals(void)
{
    static const char *const rows[][2] = {
        {",\"previous_response_id\":\"resp_abc\"", "previous_response_id"},
        {",\"store\":true", "store"},
        {",\"store\":\"no\"", "store"},
        {",\"background\":true", "background"},
        {",\"conversation\":\"conv_1\"", "conversation"},
        {",\"prompt\":{\"id\":\"pmpt_1\"}", "prompt"},
        {",\"top_logprobs\":3", "top_logprobs"},
        {",\"include\":[\"message.output_text.logprobs\"]", "include"},
        {",\"include\":\"reasoning.encrypted_content\"", "include"},
        {",\"stream\":1", "stream"},
        {",\"parallel_tool_calls\":\"yes\"", "parallel_tool_calls"},
        {",\"instructions\":[]", "instructions"},
        {",\"user\":7", "user"},
        {",\"max_output_tokens\":0", "max_output_tokens"},
        {",\"temperature\":-1", "temperature"},
        {",\"top_p\":2", "top_p"},
        {",\"reasoning\":\"high\"", "reasoning"},
        {",\"reasoning\":{\"effort\":\"ultra\"}", "reasoning.effort"},
        {",\"text\":\"json\"", "text"},
        {",\"text\":{\"format\":{\"type\":\"yaml\"}}", "text.format"},
        {",\"text\":{\"format\":{\"type\":\"json_schema\",\"schema\":[]}}", "text.format.schema"},
        {",\"tools\":[{\"type\":\"web_search\"}]", "tools[0].type"},
        {",\"tools\":[{\"type\":\"function\",\"name\":\"a\"},{\"type\":\"local_shell\"}]",
         "tools[1].type"},
        {",\"tools\":[{\"type\":\"function\"}]", "tools[0]"},
        {",\"tools\":[{\"type\":\"custom\",\"name\":5}]", "tools[0]"},
        {",\"tools\":{}", "tools"},
        {",\"tool_choice\":{\"type\":\"web_search_preview\"}", "tool_choice"},
        {",\"tool_choice\":\"any\"", "tool_choice"}};
    apr_size_t k;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        refused(apr_pstrcat(pool, "{\"model\":\"m\",\"input\":\"q\"", rows[k][0], "}", NULL),
                rows[k][1]);
    }
    refused("", NULL);
    refused("{\"model\":\"m\",\"input\":\"q\"", NULL);
    refused("{\"model\":\"m\",\"input\":\"a\tb\"}", NULL);
    /* the tools, checked by a scan of their own: bad JSON deep in a schema, a raw control
     * character in a description */
    refused("{\"model\":\"m\",\"input\":\"q\",\"tools\":[{\"type\":\"function\",\"name\":\"f\","
            "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":nul}}}}]}",
            NULL);
    refused("{\"model\":\"m\",\"tools\":[{\"type\":\"custom\",\"name\":\"f\",\"description\":"
            "\"a\nb\"}],\"input\":\"q\"}",
            NULL);
    /* a field read twice: parsers differ on which counts */
    S2A_CHECK_STR(refusal("{\"model\":\"m\",\"input\":\"q\",\"tools\":[],\"tools\":[{"
                          "\"type\":\"web_search\"}]}"),
                  "tools: the key appears twice");
    refused("{\"input\":\"q\"}", "model");
    refused("{\"model\":\"\",\"input\":\"q\"}", "model");
    refused("{\"model\":\"m\"}", "input");
    refused("{\"model\":\"m\",\"input\":5}", "input");
    refused("{\"model\":\"m\",\"input\":\"\"}", "input");
    refused("{\"model\":\"m\",\"input\":[]}", "input");
    refused("{\"model\":\"m\",\"input\":[\"hi\"]}", "input[0]");
    refused("{\"model\":\"m\",\"input\":[{\"content\":\"hi\"}]}", "input[0]");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},{\"type\":"
            "\"item_reference\",\"id\":\"msg_1\"}]}",
            "input[1].type");
    refused("{\"model\":\"m\",\"input\":[{\"type\":\"web_search_call\",\"id\":\"ws_1\"}]}",
            "input[0].type");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"robot\",\"content\":\"q\"}]}",
            "input[0].role");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":5}]}", "input[0].content");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"input_text\",\"text\":\"a\"},{\"type\":\"input_audio\",\"input_audio\":{}}]}]}",
            "input[0].content[1]");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"input_image\",\"file_id\":\"file-1\"}]}]}",
            "input[0].content[0]");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"input_file\",\"file_id\":\"file-1\"}]}]}",
            "input[0].content[0]");
    refused(
        "{\"model\":\"m\",\"input\":[{\"role\":\"system\",\"content\":[{\"type\":"
        "\"input_image\",\"image_url\":\"https://x\"}]},{\"role\":\"user\",\"content\":\"q\"}]}",
        "input[0].content[0]");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},{\"type\":"
            "\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"[]\"}]}",
            "input[1]");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},{\"type\":"
            "\"custom_tool_call\",\"call_id\":\"c\",\"name\":\"f\",\"input\":{}}]}",
            "input[1]");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},{\"type\":"
            "\"function_call_output\",\"output\":\"x\"}]}",
            "input[1].call_id");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},{\"type\":"
            "\"function_call_output\",\"call_id\":\"c\",\"output\":{}}]}",
            "input[1].output");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},{\"type\":"
            "\"reasoning\",\"encrypted_content\":5}]}",
            "input[1].encrypted_content");
}

static void test_truncations(void)
{
    apr_size_t n = sizeof(CODEX) - 1, cut;
    int ok = 0, bad = 0, wrong = 0;
    apr_pool_t *sub;

    apr_pool_create(&sub, pool);
    for (cut = 0; cut <= n; cut++) {
        s2a_responses_request req;
        s2a_openai_error err;
        char *copy = malloc(cut ? cut : 1);
        int rc;

        memcpy(copy, CODEX, cut);
        memset(&err, 0, sizeof(err));
        rc = read_request(sub, copy, cut, &req, &err);
        free(copy);
        if (rc == 0) {
            json_object *o = parse(req.body, req.len);
            ok++;
            wrong += !o;
            json_object_put(o);
        } else if (rc == -1 && err.status == 400 && err.message && err.type) {
            bad++;
        } else {
            wrong++;
        }
        apr_pool_clear(sub);
    }
    apr_pool_destroy(sub);
    S2A_CHECK_INT(wrong, 0);
    S2A_CHECK_INT(ok, 1);
    S2A_CHECK_INT(bad, (int)n);
}

/* ---- Answers -------------------------------------------------------------------------------- */

static s2a_responses_request codex_req(void)
{
    s2a_responses_request req;
    s2a_openai_error err;

    S2A_CHECK_INT(read_request(pool, CODEX, sizeof(CODEX) - 1, &req, &err), 0);
    req.model = "gpt-5-codex";
    return req;
}

static const char ANSWER[] =
    "{\"id\":\"msg_01Aq9w938a90dw8q\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
    "\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Patch "
    "it.\",\"signature\":\"EqQBCgIYAhIM\"},{\"type\":\"redacted_thinking\",\"data\":\"EmwK\"},"
    "{\"type\":\"text\",\"text\":\"Patching \\\"x\\\"\\n\"},{\"type\":\"tool_use\",\"id\":"
    "\"toolu_01\",\"name\":\"shell\",\"input\":{\"command\":[\"ls\",\"-la\"]}},{\"type\":"
    "\"tool_use\",\"id\":\"toolu_02\",\"name\":\"apply_patch\",\"input\":{\"input\":\"*** Begin "
    "Patch\\n\"}},{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\","
    "\"input\":{}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{"
    "\"input_tokens\":472,\"cache_creation_input_tokens\":2048,\"cache_read_input_tokens\":10240,"
    "\"output_tokens\":93}}";

static void test_answer(void)
{
    s2a_responses_request req = codex_req();
    json_object *o, *args;
    apr_size_t len;
    char *out;

    out = s2a_responses_answer(pool, &req, 1733500000, ANSWER, sizeof(ANSWER) - 1, &len);
    S2A_CHECK(out && strlen(out) == len);
    o = out ? parse(out, len) : NULL;
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(str_at(o, "id"), "resp_01Aq9w938a90dw8q");
    S2A_CHECK_STR(str_at(o, "object"), "response");
    S2A_CHECK_INT(int_at(o, "created_at"), 1733500000);
    S2A_CHECK_STR(str_at(o, "status"), "completed");
    S2A_CHECK_STR(str_at(o, "model"), "gpt-5-codex");
    S2A_CHECK(has(o, "error") && !at(o, "error"));
    S2A_CHECK(has(o, "incomplete_details") && !at(o, "incomplete_details"));
    S2A_CHECK_STR(str_at(o, "reasoning/effort"), "medium");
    S2A_CHECK(!json_object_get_boolean(at(o, "parallel_tool_calls")));
    S2A_CHECK(!json_object_get_boolean(at(o, "store")));
    S2A_CHECK_INT(len_at(o, "output"), 5);
    S2A_CHECK_STR(str_at(o, "output/0/type"), "reasoning");
    S2A_CHECK_STR(str_at(o, "output/0/summary/0/text"), "Patch it.");
    S2A_CHECK_STR(str_at(o, "output/0/encrypted_content"), "EqQBCgIYAhIM");
    S2A_CHECK_STR(str_at(o, "output/1/type"), "reasoning");
    S2A_CHECK_INT(len_at(o, "output/1/summary"), 0);
    S2A_CHECK_STR(str_at(o, "output/1/encrypted_content"), S2A_RESPONSES_REDACTED "EmwK");
    S2A_CHECK_STR(str_at(o, "output/2/type"), "message");
    S2A_CHECK_STR(str_at(o, "output/2/role"), "assistant");
    S2A_CHECK_STR(str_at(o, "output/2/status"), "completed");
    S2A_CHECK_STR(str_at(o, "output/2/content/0/type"), "output_text");
    S2A_CHECK_STR(str_at(o, "output/2/content/0/text"), "Patching \"x\"\n");
    S2A_CHECK_STR(str_at(o, "output/3/type"), "function_call");
    S2A_CHECK_STR(str_at(o, "output/3/call_id"), "toolu_01");
    S2A_CHECK_STR(str_at(o, "output/3/name"), "shell");
    args = str_at(o, "output/3/arguments")
               ? parse(str_at(o, "output/3/arguments"), strlen(str_at(o, "output/3/arguments")))
               : NULL;
    S2A_CHECK_STR(str_at(args, "command/1"), "-la");
    json_object_put(args);
    S2A_CHECK_STR(str_at(o, "output/4/type"), "custom_tool_call");
    S2A_CHECK_STR(str_at(o, "output/4/call_id"), "toolu_02");
    S2A_CHECK_STR(str_at(o, "output/4/input"), "*** Begin Patch\n");
    /* the ids differ, and name their kind */
    S2A_CHECK_STR(str_at(o, "output/0/id"), "rs_01Aq9w938a90dw8q_0");
    S2A_CHECK_STR(str_at(o, "output/3/id"), "fc_01Aq9w938a90dw8q_3");
    S2A_CHECK_INT(int_at(o, "usage/input_tokens"), 472 + 2048 + 10240);
    S2A_CHECK_INT(int_at(o, "usage/input_tokens_details/cached_tokens"), 10240);
    S2A_CHECK_INT(int_at(o, "usage/output_tokens"), 93);
    S2A_CHECK_INT(int_at(o, "usage/total_tokens"), 472 + 2048 + 10240 + 93);
    json_object_put(o);

    /* cut by max_tokens, or refused: incomplete, and why */
    {
        static const char cut[] =
            "{\"id\":\"msg_2\",\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":"
            "\"Once\"}],\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":3,"
            "\"output_tokens\":2}}";
        static const char no[] = "{\"id\":\"msg_3\",\"type\":\"message\",\"content\":[],"
                                 "\"stop_reason\":\"refusal\",\"usage\":{}}";
        out = s2a_responses_answer(pool, &req, 1, cut, sizeof(cut) - 1, &len);
        o = out ? parse(out, len) : NULL;
        S2A_CHECK_STR(str_at(o, "status"), "incomplete");
        S2A_CHECK_STR(str_at(o, "incomplete_details/reason"), "max_output_tokens");
        S2A_CHECK_STR(str_at(o, "id"), "resp_2");
        json_object_put(o);
        out = s2a_responses_answer(pool, &req, 1, no, sizeof(no) - 1, &len);
        o = out ? parse(out, len) : NULL;
        S2A_CHECK_STR(str_at(o, "incomplete_details/reason"), "content_filter");
        S2A_CHECK_INT(len_at(o, "output"), 0);
        S2A_CHECK_INT(int_at(o, "usage/input_tokens"), 0);
        json_object_put(o);
    }
    S2A_CHECK(s2a_responses_answer(pool, &req, 1, ANSWER, sizeof(ANSWER) - 2, &len) == NULL);
    {
        static const char raw[] = "{\"id\":\"msg_5\",\"type\":\"message\",\"content\":[{\"type\":"
                                  "\"text\",\"text\":\"a\nb\"}],\"usage\":{}}";
        S2A_CHECK(s2a_responses_answer(pool, &req, 1, raw, sizeof(raw) - 1, &len) == NULL);
    }
    S2A_CHECK(s2a_responses_answer(pool, &req, 1, "{\"type\":\"error\"}", 16, &len) == NULL);
}

/* A recorded stream: thinking, text, a shell call and a patch whose input
 * comes in fragments, with pings. */
static const char STREAM[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Vx3nQk8UY6Lz2TbWfH9pJc\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
    "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,"
    "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":13427,\"output_tokens\":1}}}"
    "\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
    "\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"Look at \\\"make\\\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\" output.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
    "\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3h\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Running \\u00e9\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\" the tests \xf0\x9f\x98\x80\\n\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"shell\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"command\\\": [\\\"ma\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"ke\\\", \\\"test\\\"]}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_02\",\"name\":\"apply_patch\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"input\\\": \\\"*** Begin Patch\\\\n*** Up\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"date File: a.c\\\\n\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":"
    "null},\"usage\":{\"output_tokens\":89}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/* Feeds data[0..n) in pieces cut at cuts[0..ncuts), each from an
 * exact-size copy, then ends the stream unless `open`; the output. */
static char *run(apr_pool_t *p, const s2a_responses_request *req, const char *data, apr_size_t n,
                 const apr_size_t *cuts, int ncuts, int open)
{
    s2a_responses_stream *s = s2a_responses_stream_create(p, req, 1733500000);
    s2a_buf out;
    apr_size_t from = 0;
    int k;

    s2a_buf_init(&out, p, 0);
    for (k = 0; k <= ncuts; k++) {
        apr_size_t to = k < ncuts ? cuts[k] : n;
        char *copy = malloc(to > from ? to - from : 1);

        memcpy(copy, data + from, to - from);
        s2a_responses_stream_feed(s, copy, to - from, &out);
        free(copy);
        from = to;
    }
    if (!open) {
        s2a_responses_stream_end(s, &out);
    }
    return out.data ? out.data : apr_pstrdup(p, "");
}

/* The events of an output, each parsed into arr; 0 when one is not an
 * `event: <type>` record whose data is JSON of that type, numbered in
 * order from 0. */
static int events(const char *out, json_object *arr, int *pings)
{
    const char *s = out;
    long long seq = 0;

    *pings = 0;
    while (*s) {
        const char *end = strstr(s, "\n\n"), *nl, *type;
        json_object *o;

        if (!end) {
            return 0;
        }
        if (!strncmp(s, ": ping", 6) && end == s + 6) {
            ++*pings;
            s = end + 2;
            continue;
        }
        if (strncmp(s, "event: ", 7) || !(nl = memchr(s, '\n', (apr_size_t)(end - s))) ||
            strncmp(nl + 1, "data: ", 6) || !(o = parse(nl + 7, (apr_size_t)(end - nl - 7)))) {
            return 0;
        }
        json_object_array_add(arr, o);
        type = str_at(o, "type");
        if (!type || strlen(type) != (apr_size_t)(nl - s - 7) ||
            strncmp(type, s + 7, strlen(type)) || int_at(o, "sequence_number") != seq++) {
            return 0;
        }
        s = end + 2;
    }
    return 1;
}

static const char *type_of(json_object *arr, int k)
{
    return str_at(json_object_array_get_idx(arr, (size_t)k), "type");
}

static void test_stream(void)
{
    s2a_responses_request req = codex_req();
    apr_size_t n = sizeof(STREAM) - 1, cut;
    json_object *arr = json_object_new_array(), *e, *last, *args;
    s2a_buf text, arguments, reasoning;
    char *whole, *got;
    int k, count, pings, differ = 0;
    apr_pool_t *sub;

    whole = run(pool, &req, STREAM, n, NULL, 0, 0);
    S2A_CHECK(events(whole, arr, &pings));
    S2A_CHECK_INT(pings, 2);
    count = (int)json_object_array_length(arr);
    S2A_CHECK_STR(type_of(arr, 0), "response.created");
    S2A_CHECK_STR(type_of(arr, 1), "response.in_progress");
    S2A_CHECK_STR(str_at(json_object_array_get_idx(arr, 0), "response/status"), "in_progress");
    S2A_CHECK_STR(type_of(arr, count - 1), "response.completed");

    s2a_buf_init(&text, pool, 0);
    s2a_buf_init(&arguments, pool, 0);
    s2a_buf_init(&reasoning, pool, 0);
    for (k = 0; k < count; k++) {
        const char *type = type_of(arr, k);
        e = json_object_array_get_idx(arr, (size_t)k);
        if (!strcmp(type, "response.output_text.delta")) {
            s2a_openai_put(&text, str_at(e, "delta"));
            S2A_CHECK_STR(str_at(e, "item_id"), "msg_01Vx3nQk8UY6Lz2TbWfH9pJc_1");
        } else if (!strcmp(type, "response.reasoning_summary_text.delta")) {
            s2a_openai_put(&reasoning, str_at(e, "delta"));
        } else if (!strcmp(type, "response.function_call_arguments.delta")) {
            s2a_openai_put(&arguments, str_at(e, "delta"));
            S2A_CHECK_INT(int_at(e, "output_index"), 2);
        } else if (!strcmp(type, "response.function_call_arguments.done")) {
            S2A_CHECK_STR(str_at(e, "arguments"), arguments.data);
            S2A_CHECK_STR(str_at(e, "name"), "shell");
        } else if (!strcmp(type, "response.custom_tool_call_input.done")) {
            S2A_CHECK_STR(str_at(e, "input"), "*** Begin Patch\n*** Update File: a.c\n");
        } else if (!strcmp(type, "response.output_text.done")) {
            S2A_CHECK_STR(str_at(e, "text"), text.data);
        } else if (!strcmp(type, "response.reasoning_summary_text.done")) {
            S2A_CHECK_STR(str_at(e, "text"), reasoning.data);
        } else if (!strcmp(type, "response.output_item.added")) {
            S2A_CHECK(str_at(e, "item/id") != NULL);
            S2A_CHECK(!has(e, "item/status") || !strcmp(str_at(e, "item/status"), "in_progress"));
        }
    }
    S2A_CHECK_STR(text.data, "Running \xc3\xa9 the tests \xf0\x9f\x98\x80\n");
    S2A_CHECK_STR(reasoning.data, "Look at \"make\" output.");
    args = arguments.data ? parse(arguments.data, arguments.len) : NULL;
    S2A_CHECK_STR(str_at(args, "command/0"), "make");
    json_object_put(args);

    /* the last event repeats the whole output, with the usage */
    last = json_object_array_get_idx(arr, (size_t)count - 1);
    S2A_CHECK_STR(str_at(last, "response/id"), "resp_01Vx3nQk8UY6Lz2TbWfH9pJc");
    S2A_CHECK_STR(str_at(last, "response/status"), "completed");
    S2A_CHECK_STR(str_at(last, "response/model"), "gpt-5-codex");
    S2A_CHECK_INT(len_at(last, "response/output"), 4);
    S2A_CHECK_STR(str_at(last, "response/output/0/summary/0/text"), "Look at \"make\" output.");
    S2A_CHECK_STR(str_at(last, "response/output/0/encrypted_content"),
                  "EqQBCgIYAhIM1gbcDa9GJwZA2b3h");
    S2A_CHECK_STR(str_at(last, "response/output/1/content/0/text"), text.data);
    S2A_CHECK_STR(str_at(last, "response/output/2/arguments"), arguments.data);
    S2A_CHECK_STR(str_at(last, "response/output/2/call_id"), "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    S2A_CHECK_STR(str_at(last, "response/output/3/type"), "custom_tool_call");
    S2A_CHECK_STR(str_at(last, "response/output/3/input"),
                  "*** Begin Patch\n*** Update File: a.c\n");
    S2A_CHECK_INT(int_at(last, "response/usage/input_tokens"), 472 + 100 + 13427);
    S2A_CHECK_INT(int_at(last, "response/usage/input_tokens_details/cached_tokens"), 13427);
    S2A_CHECK_INT(int_at(last, "response/usage/output_tokens"), 89);
    /* each output_item.done is the item the last event repeats */
    for (k = 0, cut = 0; k < count; k++) {
        if (!strcmp(type_of(arr, k), "response.output_item.done")) {
            e = json_object_array_get_idx(arr, (size_t)k);
            S2A_CHECK(json_object_equal(at(e, "item"),
                                        at(last, apr_psprintf(pool, "response/output/%d",
                                                              (int)int_at(e, "output_index")))));
            cut++;
        }
    }
    S2A_CHECK_INT(cut, 4);
    json_object_put(arr);

    /* the same bytes out whatever the cuts: at every byte, and byte by byte */
    apr_pool_create(&sub, pool);
    for (cut = 0; cut <= n; cut++) {
        got = run(sub, &req, STREAM, n, &cut, 1, 0);
        differ += strcmp(got, whole) != 0;
        apr_pool_clear(sub);
    }
    S2A_CHECK_INT(differ, 0);
    {
        apr_size_t *every = apr_palloc(sub, n * sizeof(*every));
        for (cut = 0; cut < n; cut++) {
            every[cut] = cut + 1;
        }
        got = run(sub, &req, STREAM, n, every, (int)n - 1, 0);
        S2A_CHECK_STR(got, whole);
    }
    /* done, its usage, and nothing after */
    {
        s2a_responses_stream *s = s2a_responses_stream_create(sub, &req, 1733500000);
        s2a_buf out;
        apr_size_t len;

        s2a_buf_init(&out, sub, 0);
        s2a_responses_stream_feed(s, STREAM, n, &out);
        S2A_CHECK(s2a_responses_stream_done(s));
        S2A_CHECK_INT(s2a_responses_stream_usage(s)->output, 89);
        len = out.len;
        s2a_responses_stream_feed(s, STREAM, n, &out);
        s2a_responses_stream_end(s, &out);
        S2A_CHECK_INT(out.len, len);
        S2A_CHECK_STR(out.data, whole);
    }
    apr_pool_destroy(sub);
}

/* The last two events of an output: error and response.failed. */
static void check_failed(const char *out, const char *code)
{
    json_object *arr = json_object_new_array(), *e, *f;
    int pings, count;

    S2A_CHECK(events(out, arr, &pings));
    count = (int)json_object_array_length(arr);
    S2A_CHECK(count >= 2);
    if (count < 2) {
        json_object_put(arr);
        return;
    }
    e = json_object_array_get_idx(arr, (size_t)count - 2);
    f = json_object_array_get_idx(arr, (size_t)count - 1);
    S2A_CHECK_STR(str_at(e, "type"), "error");
    S2A_CHECK_STR(str_at(e, "code"), code);
    S2A_CHECK(str_at(e, "message") != NULL);
    S2A_CHECK_STR(str_at(f, "type"), "response.failed");
    S2A_CHECK_STR(str_at(f, "response/status"), "failed");
    S2A_CHECK_STR(str_at(f, "response/error/code"), code);
    json_object_put(arr);
}

static void test_stream_ends(void)
{
    s2a_responses_request req = codex_req();
    const char *delta = strstr(STREAM, "event: message_delta"),
               *stop = strstr(STREAM, "event: message_stop");
    json_object *arr, *last;
    apr_size_t cut;
    char *got;
    int pings, bad = 0;
    apr_pool_t *sub;

    /* ended before message_delta, wherever: error, then response.failed */
    apr_pool_create(&sub, pool);
    for (cut = 0; cut < (apr_size_t)(delta - STREAM); cut += 3) {
        json_object *a = json_object_new_array();
        int count;
        got = run(sub, &req, STREAM, cut, NULL, 0, 0);
        count = events(got, a, &pings) ? (int)json_object_array_length(a) : 0;
        bad += count < 2 || strcmp(type_of(a, count - 1), "response.failed") ||
               strcmp(type_of(a, count - 2), "error");
        json_object_put(a);
        apr_pool_clear(sub);
    }
    apr_pool_destroy(sub);
    S2A_CHECK_INT(bad, 0);
    check_failed(run(pool, &req, STREAM, (apr_size_t)(delta - STREAM), NULL, 0, 0), "server_error");
    /* the output so far comes with it */
    arr = json_object_new_array();
    events(run(pool, &req, STREAM, (apr_size_t)(delta - STREAM), NULL, 0, 0), arr, &pings);
    last = json_object_array_get_idx(arr, json_object_array_length(arr) - 1);
    S2A_CHECK_INT(len_at(last, "response/output"), 4);
    json_object_put(arr);

    /* ended after message_delta: complete */
    got = run(pool, &req, STREAM, (apr_size_t)(stop - STREAM), NULL, 0, 0);
    S2A_CHECK_STR(got, run(pool, &req, STREAM, sizeof(STREAM) - 1, NULL, 0, 0));
    /* left open: not finished yet */
    got = run(pool, &req, STREAM, (apr_size_t)(delta - STREAM), NULL, 0, 1);
    S2A_CHECK(strstr(got, "response.failed") == NULL && strstr(got, "response.completed") == NULL);

    /* an upstream error mid-stream */
    {
        const char *block = strstr(STREAM, "event: content_block_start");
        const char *err = apr_pstrcat(
            pool, apr_pstrmemdup(pool, STREAM, (apr_size_t)(block - STREAM)),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
            "\"message\":\"Overloaded\"}}\n\n",
            block, NULL);
        check_failed(run(pool, &req, err, strlen(err), NULL, 0, 0), "overloaded");
        got = run(pool, &req, err, strlen(err), NULL, 0, 0);
        S2A_CHECK(strstr(got, "response.output_item") == NULL);
    }

    /* cut by max_tokens: response.incomplete */
    {
        const char *cutoff = apr_pstrcat(
            pool, apr_pstrmemdup(pool, STREAM, (apr_size_t)(delta - STREAM)),
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
            "\"max_tokens\"},\"usage\":{\"output_tokens\":4096}}\n\n",
            stop, NULL);
        arr = json_object_new_array();
        S2A_CHECK(events(run(pool, &req, cutoff, strlen(cutoff), NULL, 0, 0), arr, &pings));
        last = json_object_array_get_idx(arr, json_object_array_length(arr) - 1);
        S2A_CHECK_STR(str_at(last, "type"), "response.incomplete");
        S2A_CHECK_STR(str_at(last, "response/status"), "incomplete");
        S2A_CHECK_STR(str_at(last, "response/incomplete_details/reason"), "max_output_tokens");
        json_object_put(arr);
    }
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    memo = s2a_tools_memo_make(pool, 4, 64 * 1024);

    test_codex();
    test_requests();
    test_refusals();
    test_truncations();
    test_answer();
    test_stream();
    test_stream_ends();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_openai_responses");
}
