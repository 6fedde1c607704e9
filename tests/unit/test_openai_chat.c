/* Chat Completions in front of the Messages API: the requests real clients
 * send, what is refused and how, and the answers, whole or streamed in any
 * pieces. */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_answer.h"
#include "s2a_openai_chat.h"
#include "s2a_test.h"

static apr_pool_t *pool;
static s2a_tools_memo *memo; /* the whole run's: every tools array read goes through it */

#include "s2a_test_json.h"

/* ---- Requests ------------------------------------------------------------------------------- */

static int same_error(const s2a_openai_error *a, const s2a_openai_error *b)
{
    return a->status == b->status && !strcmp(a->type, b->type) && !strcmp(a->message, b->message) &&
           (a->param ? b->param && !strcmp(a->param, b->param) : !b->param);
}

static int same_request(const s2a_chat_request *a, const s2a_chat_request *b)
{
    return a->len == b->len && !memcmp(a->body, b->body, a->len) &&
           !memcmp(&a->marks, &b->marks, sizeof(a->marks)) && !strcmp(a->model, b->model) &&
           a->stream == b->stream && a->include_usage == b->include_usage && a->tools == b->tools &&
           a->max_tokens == b->max_tokens && a->thinking == b->thinking;
}

/* s2a_chat_request_read without a memo, and then twice through the run's
 * memo (which may then know the tools array, or know it already): the
 * three readings must agree, body and marks byte for byte. */
static int read_request(apr_pool_t *p, const char *raw, apr_size_t n, s2a_chat_request *req,
                        s2a_openai_error *err)
{
    int rc = s2a_chat_request_read(p, raw, n, NULL, req, err), k;

    for (k = 0; k < 2; k++) {
        s2a_chat_request again;
        s2a_openai_error again_err;
        memset(&again_err, 0, sizeof(again_err));
        S2A_CHECK_INT(s2a_chat_request_read(p, raw, n, memo, &again, &again_err), rc);
        S2A_CHECK(rc == 0 ? same_request(req, &again) : same_error(err, &again_err));
    }
    return rc;
}

/* Reads body (from an exact-size copy), and returns the Messages body
 * parsed; NULL when refused, with *err. */
static json_object *request(const char *body, s2a_chat_request *req, s2a_openai_error *err)
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

/* A request that must be refused with a 400 about `param`. */
static void refused(const char *body, const char *param)
{
    s2a_chat_request req;
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

static void test_conversation(void)
{
    s2a_chat_request req;
    s2a_openai_error err;
    json_object *o;

    o = request("{\"model\":\"claude-sonnet-4-5\",\"messages\":["
                "{\"role\":\"system\",\"content\":\"You are terse.\"},"
                "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use SI "
                "units.\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
                "{\"role\":\"user\",\"name\":\"alice\",\"content\":\"Hi \\u00e9\\n\"},"
                "{\"role\":\"assistant\",\"content\":\"Hello.\",\"refusal\":null},"
                "{\"role\":\"user\",\"content\":\"How far is the moon?\"},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"In km.\"}]}]}",
                &req, &err);
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(req.model, "claude-sonnet-4-5");
    S2A_CHECK_STR(str_at(o, "model"), "claude-sonnet-4-5");
    S2A_CHECK_INT(req.stream, 0);
    S2A_CHECK_INT(req.tools, 0);
    S2A_CHECK_INT(req.max_tokens, S2A_OPENAI_CHAT_MAX_TOKENS);
    S2A_CHECK_INT(req.thinking, 0);
    S2A_CHECK_INT(int_at(o, "max_tokens"), S2A_OPENAI_CHAT_MAX_TOKENS);
    /* system and developer messages: the system prompt, in order */
    S2A_CHECK_INT(len_at(o, "system"), 2);
    S2A_CHECK_STR(str_at(o, "system/0/text"), "You are terse.");
    S2A_CHECK_STR(str_at(o, "system/1/text"), "Use SI units.");
    S2A_CHECK_STR(str_at(o, "system/1/cache_control/type"), "ephemeral");
    /* the turns alternate; adjacent user messages are one */
    S2A_CHECK_INT(len_at(o, "messages"), 3);
    S2A_CHECK_STR(str_at(o, "messages/0/role"), "user");
    S2A_CHECK_STR(str_at(o, "messages/0/content/0/type"), "text");
    S2A_CHECK_STR(str_at(o, "messages/0/content/0/text"), "Hi \xc3\xa9\n");
    S2A_CHECK(!has(o, "messages/0/name"));
    S2A_CHECK_STR(str_at(o, "messages/1/role"), "assistant");
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/text"), "Hello.");
    S2A_CHECK_INT(len_at(o, "messages/2/content"), 2);
    S2A_CHECK_STR(str_at(o, "messages/2/content/1/text"), "In km.");
    S2A_CHECK(!has(o, "stream"));
    S2A_CHECK(!has(o, "temperature"));
    S2A_CHECK(!has(o, "tools"));
    S2A_CHECK(!has(o, "thinking"));
    json_object_put(o);

    /* empty or blank texts vanish, and a message with nothing left with them */
    o = request("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\" \\n\"},"
                "{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"\"},"
                "{\"role\":\"assistant\",\"content\":null},{\"role\":\"user\",\"content\":[]},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\\t\"}]},"
                "{\"role\":\"user\",\"content\":\"r\"}]}",
                &req, &err);
    S2A_CHECK(!has(o, "system"));
    S2A_CHECK_INT(len_at(o, "messages"), 1);
    S2A_CHECK_INT(len_at(o, "messages/0/content"), 2);
    json_object_put(o);

    /* an assistant message of parts, a refusal among them */
    o = request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                "{\"type\":\"refusal\",\"refusal\":\"no\"}]},{\"role\":\"user\",\"content\":"
                "\"again\"}]}",
                &req, &err);
    S2A_CHECK_INT(len_at(o, "messages/1/content"), 2);
    S2A_CHECK_STR(str_at(o, "messages/1/content/1/text"), "no");
    json_object_put(o);
}

static void test_parts(void)
{
    s2a_chat_request req;
    s2a_openai_error err;
    json_object *o;

    o = request("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":["
                "{\"type\":\"text\",\"text\":\"What is in these?\"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":"
                "\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==\",\"detail\":\"high\"}},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":"
                "\"https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_"
                "ant.jpg\"}},"
                "{\"type\":\"file\",\"file\":{\"filename\":\"a.pdf\",\"file_data\":"
                "\"data:application/pdf;base64,JVBERi0xLjQK\"}}]}]}",
                &req, &err);
    S2A_CHECK(o != NULL);
    S2A_CHECK_INT(len_at(o, "messages/0/content"), 4);
    S2A_CHECK_STR(str_at(o, "messages/0/content/1/type"), "image");
    S2A_CHECK_STR(str_at(o, "messages/0/content/1/source/type"), "base64");
    S2A_CHECK_STR(str_at(o, "messages/0/content/1/source/media_type"), "image/png");
    S2A_CHECK_STR(str_at(o, "messages/0/content/1/source/data"), "iVBORw0KGgoAAAANSUhEUg==");
    S2A_CHECK_STR(str_at(o, "messages/0/content/2/source/type"), "url");
    S2A_CHECK_STR(str_at(o, "messages/0/content/2/source/url"),
                  "https://upload.wikimedia.org/wikipedia/commons/a/a7/"
                  "Camponotus_flavomarginatus_ant.jpg");
    S2A_CHECK_STR(str_at(o, "messages/0/content/3/type"), "document");
    S2A_CHECK_STR(str_at(o, "messages/0/content/3/source/media_type"), "application/pdf");
    json_object_put(o);

    /* image_url as a bare string, as some clients send it */
    o = request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                "\"image_url\",\"image_url\":\"https://example.com/x.png\"}]}]}",
                &req, &err);
    S2A_CHECK_STR(str_at(o, "messages/0/content/0/source/url"), "https://example.com/x.png");
    json_object_put(o);

    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
            "\"text\":\"x\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
            "\"ftp://example.com/x.png\"}}]}]}",
            "messages[0].content[1]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"image_url\",\"image_url\":{}}]}]}",
            "messages[0].content[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
            "\"text\":\"x\"},{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AA\","
            "\"format\":\"wav\"}}]}]}",
            "messages[0].content[1]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\","
            "\"file\":{\"file_id\":\"file-abc\"}}]}]}",
            "messages[0].content[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video\"}]}"
            "]}",
            "messages[0].content[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[\"text\"]}]}",
            "messages[0].content[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
            "\"text\":5}]}]}",
            "messages[0].content[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":"
            "\"image_url\",\"image_url\":{\"url\":\"https://x\"}}]},{\"role\":\"user\","
            "\"content\":\"q\"}]}",
            "messages[0].content[0]");
}

static const char TOOLS[] =
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Current weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":"
    "{\"type\":\"string\"},\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]}},\"required\":"
    "[\"city\"]},\"strict\":true}},{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}]";

static void test_tool_loop(void)
{
    s2a_chat_request req;
    s2a_openai_error err;
    json_object *o, *args;
    const char *body;

    body = apr_pstrcat(
        pool, "{\"model\":\"claude-sonnet-4-5\",", TOOLS,
        ",\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris and Oslo?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_abc123\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
        "{\"id\":\"call.def:456\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\",\\\"unit\\\":\\\"c\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_abc123\",\"content\":\"18C, sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call.def:456\",\"content\":[{\"type\":\"text\","
        "\"text\":\"4C\"},{\"type\":\"text\",\"text\":\"rain\"}]},"
        "{\"role\":\"user\",\"content\":\"Thanks. Which is warmer?\"}],"
        "\"reasoning_effort\":\"high\"}",
        NULL);
    o = request(body, &req, &err);
    S2A_CHECK(o != NULL);
    S2A_CHECK_INT(req.tools, 2);
    S2A_CHECK_INT(len_at(o, "tools"), 2);
    S2A_CHECK_STR(str_at(o, "tools/0/name"), "get_weather");
    S2A_CHECK_STR(str_at(o, "tools/0/description"), "Current weather in a city");
    S2A_CHECK_STR(str_at(o, "tools/0/input_schema/required/0"), "city");
    S2A_CHECK_STR(str_at(o, "tools/1/input_schema/type"), "object");
    S2A_CHECK(!has(o, "tool_choice"));
    S2A_CHECK_INT(len_at(o, "messages"), 3);
    /* the calls: tool_use blocks with their arguments as objects */
    S2A_CHECK_STR(str_at(o, "messages/1/role"), "assistant");
    S2A_CHECK_INT(len_at(o, "messages/1/content"), 2);
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/type"), "tool_use");
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/id"), "call_abc123");
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/name"), "get_weather");
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/input/city"), "Paris");
    S2A_CHECK_STR(str_at(o, "messages/1/content/1/id"), "call_2edef_3a456");
    S2A_CHECK_STR(str_at(o, "messages/1/content/1/input/unit"), "c");
    /* the results share one user turn with the next question, first */
    S2A_CHECK_STR(str_at(o, "messages/2/role"), "user");
    S2A_CHECK_INT(len_at(o, "messages/2/content"), 3);
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/type"), "tool_result");
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/tool_use_id"), "call_abc123");
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/content"), "18C, sunny");
    S2A_CHECK_STR(str_at(o, "messages/2/content/1/tool_use_id"), "call_2edef_3a456");
    S2A_CHECK_INT(len_at(o, "messages/2/content/1/content"), 2);
    S2A_CHECK_STR(str_at(o, "messages/2/content/1/content/1/text"), "rain");
    S2A_CHECK_STR(str_at(o, "messages/2/content/2/type"), "text");
    /* the results still answer an assistant turn without thinking: none */
    S2A_CHECK(!has(o, "thinking"));
    S2A_CHECK_INT(req.thinking, 0);
    json_object_put(o);

    /* once the assistant answered the results, thinking may go on */
    body = apr_pstrcat(
        pool, "{\"model\":\"claude-sonnet-4-5\",", TOOLS,
        ",\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"18C\"},"
        "{\"role\":\"assistant\",\"content\":\"18C in Paris.\"},"
        "{\"role\":\"user\",\"content\":\"And tomorrow?\"}],\"reasoning_effort\":\"high\"}",
        NULL);
    o = request(body, &req, &err);
    S2A_CHECK_INT(len_at(o, "messages"), 5);
    S2A_CHECK_STR(str_at(o, "thinking/type"), "enabled");
    S2A_CHECK_INT(req.thinking, S2A_OPENAI_BUDGET_HIGH);
    S2A_CHECK_INT(req.max_tokens, S2A_OPENAI_CHAT_MAX_TOKENS + S2A_OPENAI_BUDGET_HIGH);
    json_object_put(o);

    /* inside the loop, with no thinking in the assistant turn: none */
    body = apr_pstrcat(
        pool, "{\"model\":\"claude-sonnet-4-5\",", TOOLS,
        ",\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":\"Let me look.\",\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"\"}],"
        "\"reasoning_effort\":\"high\",\"max_completion_tokens\":1000}",
        NULL);
    o = request(body, &req, &err);
    S2A_CHECK_STR(str_at(o, "messages/1/content/0/text"), "Let me look.");
    S2A_CHECK_STR(str_at(o, "messages/1/content/1/type"), "tool_use");
    args = at(o, "messages/1/content/1/input");
    S2A_CHECK(args && json_object_object_length(args) == 0);
    S2A_CHECK_STR(str_at(o, "messages/2/content/0/tool_use_id"), "c1");
    S2A_CHECK(!has(o, "messages/2/content/0/content"));
    S2A_CHECK(!has(o, "thinking"));
    S2A_CHECK_INT(req.thinking, 0);
    S2A_CHECK_INT(req.max_tokens, 1000);
    json_object_put(o);

    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
            "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}]}",
            "messages[1].tool_calls[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
            "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
            "messages[1].tool_calls[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"function\","
            "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
            "messages[1].tool_calls[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\"}]}]}",
            "messages[1].tool_calls[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"assistant\",\"tool_calls\":{}}]}",
            "messages[1].tool_calls");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"tool\",\"content\":\"r\"}]}",
            "messages[1].tool_call_id");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"tool\",\"tool_call_id\":7,\"content\":\"r\"}]}",
            "messages[1].tool_call_id");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":{}}]}",
            "messages[1].content");
}

/* The Messages body for a request with TOOLS, `choice` (a JSON literal,
 * NULL: none) and the members `extra`, parsed. */
static json_object *choice(const char *choice, const char *extra)
{
    s2a_chat_request req;
    s2a_openai_error err;
    const char *body =
        apr_pstrcat(pool, "{\"model\":\"claude-sonnet-4-5\",", TOOLS,
                    ",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]",
                    choice ? ",\"tool_choice\":" : "", choice ? choice : "", extra, "}", NULL);

    return request(body, &req, &err);
}

static void test_tool_choice(void)
{
    json_object *o;

    o = choice("\"auto\"", "");
    S2A_CHECK(!has(o, "tool_choice"));
    json_object_put(o);
    o = choice("\"none\"", "");
    S2A_CHECK_STR(str_at(o, "tool_choice/type"), "none");
    json_object_put(o);
    o = choice("\"required\"", "");
    S2A_CHECK_STR(str_at(o, "tool_choice/type"), "any");
    S2A_CHECK(!has(o, "tool_choice/disable_parallel_tool_use"));
    json_object_put(o);
    o = choice("{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}", "");
    S2A_CHECK_STR(str_at(o, "tool_choice/type"), "tool");
    S2A_CHECK_STR(str_at(o, "tool_choice/name"), "get_time");
    json_object_put(o);
    /* parallel_tool_calls false: one call at a time */
    o = choice(NULL, ",\"parallel_tool_calls\":false");
    S2A_CHECK_STR(str_at(o, "tool_choice/type"), "auto");
    S2A_CHECK(json_object_get_boolean(at(o, "tool_choice/disable_parallel_tool_use")));
    json_object_put(o);
    o = choice("\"required\"", ",\"parallel_tool_calls\":false");
    S2A_CHECK_STR(str_at(o, "tool_choice/type"), "any");
    S2A_CHECK(json_object_get_boolean(at(o, "tool_choice/disable_parallel_tool_use")));
    json_object_put(o);
    o = choice("\"none\"", ",\"parallel_tool_calls\":false");
    S2A_CHECK_STR(str_at(o, "tool_choice/type"), "none");
    json_object_put(o);
    o = choice(NULL, ",\"parallel_tool_calls\":true");
    S2A_CHECK(!has(o, "tool_choice"));
    json_object_put(o);
    /* a forced tool and thinking do not go together */
    o = choice("\"required\"", ",\"reasoning_effort\":\"medium\"");
    S2A_CHECK(!has(o, "thinking"));
    json_object_put(o);
    o = choice("\"auto\"", ",\"reasoning_effort\":\"medium\"");
    S2A_CHECK_INT(int_at(o, "thinking/budget_tokens"), S2A_OPENAI_BUDGET_MEDIUM);
    json_object_put(o);

    /* no tools, or an empty list: no choice sent */
    {
        s2a_chat_request req;
        s2a_openai_error err;
        o = request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
                    "\"tools\":[],\"tool_choice\":\"required\"}",
                    &req, &err);
        S2A_CHECK(!has(o, "tools"));
        S2A_CHECK(!has(o, "tool_choice"));
        S2A_CHECK_INT(req.tools, 0);
        json_object_put(o);
    }

    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
            "\"tool_choice\":\"any\"}",
            "tool_choice");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
            "\"tools\":{}}",
            "tools");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
            "\"tools\":[{\"type\":\"web_search\"}]}",
            "tools[0].type");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
            "\"tools\":[{\"type\":\"function\"}]}",
            "tools[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
            "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},{\"type\":"
            "\"function\",\"function\":{\"name\":\"b\",\"parameters\":[]}}]}",
            "tools[1].function");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
            "\"parallel_tool_calls\":1}",
            "parallel_tool_calls");
}

static json_object *simple(const char *extra, s2a_chat_request *req)
{
    s2a_openai_error err;
    const char *body = apr_pstrcat(
        pool,
        "{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]",
        extra, "}", NULL);

    return request(body, req, &err);
}

static void test_options(void)
{
    s2a_chat_request req;
    json_object *o, *schema;
    const char *text;

    /* max_completion_tokens before max_tokens, both before the default */
    o = simple(",\"max_tokens\":100,\"max_completion_tokens\":200", &req);
    S2A_CHECK_INT(int_at(o, "max_tokens"), 200);
    S2A_CHECK_INT(req.max_tokens, 200);
    json_object_put(o);
    o = simple(",\"max_tokens\":100,\"max_completion_tokens\":null", &req);
    S2A_CHECK_INT(int_at(o, "max_tokens"), 100);
    json_object_put(o);
    o = simple(",\"max_tokens\":null", &req);
    S2A_CHECK_INT(int_at(o, "max_tokens"), S2A_OPENAI_CHAT_MAX_TOKENS);
    json_object_put(o);
    /* a huge count saturates */
    o = simple(",\"max_tokens\":123456789012345678901234567890", &req);
    S2A_CHECK_INT(int_at(o, "max_tokens"), APR_INT64_MAX);
    S2A_CHECK_INT(req.max_tokens, APR_INT64_MAX);
    json_object_put(o);
    o = simple(",\"max_tokens\":123456789012345678901234567890,\"reasoning_effort\":\"xhigh\"",
               &req);
    S2A_CHECK_INT(int_at(o, "max_tokens"), APR_INT64_MAX);
    S2A_CHECK_INT(int_at(o, "thinking/budget_tokens"), S2A_OPENAI_BUDGET_XHIGH);
    json_object_put(o);

    /* sampling and stop sequences */
    o = simple(",\"temperature\":0.2,\"top_p\":1,\"stop\":[\"\\n\\nHuman:\",\"\",\"END\"],"
               "\"seed\":7,\"presence_penalty\":0,\"frequency_penalty\":0.5,\"logit_bias\":{},"
               "\"store\":false,\"metadata\":{\"a\":\"b\"},\"service_tier\":\"auto\","
               "\"n\":1,\"logprobs\":false,\"modalities\":[\"text\"],\"audio\":null",
               &req);
    S2A_CHECK(json_object_get_double(at(o, "temperature")) == 0.2);
    S2A_CHECK(!has(o, "top_p"));
    S2A_CHECK_INT(len_at(o, "stop_sequences"), 2);
    S2A_CHECK_STR(str_at(o, "stop_sequences/0"), "\n\nHuman:");
    S2A_CHECK_STR(str_at(o, "stop_sequences/1"), "END");
    S2A_CHECK(!has(o, "seed") && !has(o, "metadata") && !has(o, "n") && !has(o, "store"));
    json_object_put(o);
    o = simple(",\"top_p\":0.9,\"stop\":\"###\"", &req);
    S2A_CHECK(json_object_get_double(at(o, "top_p")) == 0.9);
    S2A_CHECK_STR(str_at(o, "stop_sequences/0"), "###");
    json_object_put(o);
    o = simple(",\"temperature\":2,\"stop\":\"\"", &req);
    S2A_CHECK_INT(int_at(o, "temperature"), 1);
    S2A_CHECK(!has(o, "stop_sequences"));
    json_object_put(o);

    /* a stream, with its usage asked for */
    o = simple(",\"stream\":true,\"stream_options\":{\"include_usage\":true}", &req);
    S2A_CHECK(json_object_get_boolean(at(o, "stream")));
    S2A_CHECK_INT(req.stream, 1);
    S2A_CHECK_INT(req.include_usage, 1);
    json_object_put(o);
    o = simple(",\"stream\":true", &req);
    S2A_CHECK_INT(req.include_usage, 0);
    json_object_put(o);
    o = simple(",\"stream\":false,\"stream_options\":{\"include_usage\":true}", &req);
    S2A_CHECK(!has(o, "stream"));
    S2A_CHECK_INT(req.stream, 0);
    S2A_CHECK_INT(req.include_usage, 0);
    json_object_put(o);

    /* JSON output: an instruction in the system prompt, after the client's */
    o = request("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                "{\"role\":\"user\",\"content\":\"q\"}],\"response_format\":{\"type\":"
                "\"json_object\"}}",
                &req, &(s2a_openai_error){0});
    S2A_CHECK_INT(len_at(o, "system"), 2);
    S2A_CHECK_STR(str_at(o, "system/0/text"), "Be brief.");
    S2A_CHECK(str_at(o, "system/1/text") && strstr(str_at(o, "system/1/text"), "JSON object"));
    json_object_put(o);
    o = simple(",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":"
               "\"person\",\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":"
               "{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}}}",
               &req);
    text = str_at(o, "system/0/text");
    S2A_CHECK(text && strstr(text, "JSON Schema"));
    schema = text && strchr(text, '{') ? parse(strchr(text, '{'), strlen(strchr(text, '{'))) : NULL;
    S2A_CHECK_STR(str_at(schema, "properties/name/type"), "string");
    json_object_put(schema);
    json_object_put(o);
    o = simple(",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}",
               &req);
    S2A_CHECK(str_at(o, "system/0/text") && strstr(str_at(o, "system/0/text"), "JSON object"));
    json_object_put(o);
    o = simple(",\"response_format\":{\"type\":\"text\"}", &req);
    S2A_CHECK(!has(o, "system"));
    json_object_put(o);

    /* reasoning effort: a budget, or adaptive thinking for a newer model */
    o = simple(",\"reasoning_effort\":\"low\",\"temperature\":0.3", &req);
    S2A_CHECK_STR(str_at(o, "thinking/type"), "enabled");
    S2A_CHECK_INT(int_at(o, "thinking/budget_tokens"), S2A_OPENAI_BUDGET_LOW);
    S2A_CHECK_INT(int_at(o, "max_tokens"), S2A_OPENAI_CHAT_MAX_TOKENS + S2A_OPENAI_BUDGET_LOW);
    S2A_CHECK(!has(o, "temperature"));
    S2A_CHECK_INT(req.thinking, S2A_OPENAI_BUDGET_LOW);
    json_object_put(o);
    o = simple(",\"reasoning_effort\":\"minimal\"", &req);
    S2A_CHECK(!has(o, "thinking"));
    json_object_put(o);
    o = request("{\"model\":\"claude-opus-4-6\",\"messages\":[{\"role\":\"user\",\"content\":"
                "\"q\"}],\"reasoning_effort\":\"medium\"}",
                &req, &(s2a_openai_error){0});
    S2A_CHECK_STR(str_at(o, "thinking/type"), "adaptive");
    S2A_CHECK_STR(str_at(o, "output_config/effort"), "medium");
    json_object_put(o);

    /* the user, for metadata.user_id */
    o = simple(",\"user\":\"user-1234\",\"safety_identifier\":\"hash-9\"", &req);
    S2A_CHECK_STR(str_at(o, "metadata/user_id"), "user-1234");
    json_object_put(o);
    o = simple(",\"safety_identifier\":\"hash-9\"", &req);
    S2A_CHECK_STR(str_at(o, "metadata/user_id"), "hash-9");
    json_object_put(o);
    o = simple(",\"user\":\"\"", &req);
    S2A_CHECK(!has(o, "metadata"));
    json_object_put(o);
}

static void test_refusals(void)
{
    static const char *const rows[][2] = {
        {",\"n\":2", "n"},
        {",\"n\":0", "n"},
        {",\"n\":\"1\"", "n"},
        {",\"audio\":{\"voice\":\"alloy\",\"format\":\"wav\"}", "audio"},
        {",\"modalities\":[\"text\",\"audio\"]", "modalities"},
        {",\"modalities\":\"text\"", "modalities"},
        {",\"logprobs\":true", "logprobs"},
        {",\"logprobs\":1", "logprobs"},
        {",\"top_logprobs\":2", "top_logprobs"},
        {",\"functions\":[{\"name\":\"f\"}]", "functions"},
        {",\"function_call\":\"auto\"", "function_call"},
        {",\"web_search_options\":{}", "web_search_options"},
        {",\"stream\":\"yes\"", "stream"},
        {",\"stream_options\":true", "stream_options"},
        {",\"user\":5", "user"},
        {",\"safety_identifier\":[]", "safety_identifier"},
        {",\"max_tokens\":0", "max_tokens"},
        {",\"max_tokens\":-5", "max_tokens"},
        {",\"max_tokens\":1.5", "max_tokens"},
        {",\"max_completion_tokens\":\"100\"", "max_completion_tokens"},
        {",\"temperature\":3", "temperature"},
        {",\"temperature\":\"hot\"", "temperature"},
        {",\"top_p\":1.1", "top_p"},
        {",\"stop\":5", "stop"},
        {",\"stop\":[\"a\",5]", "stop"},
        {",\"reasoning_effort\":\"extreme\"", "reasoning_effort"},
        {",\"response_format\":{\"type\":\"yaml\"}", "response_format"},
        {",\"response_format\":\"json\"", "response_format"},
        {",\"response_format\":{\"type\":\"json_schema\"}", "response_format"},
        {",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":true}}",
         "response_format"}};
    apr_size_t k;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        refused(apr_pstrcat(pool,
                            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                            "\"q\"}]",
                            rows[k][0], "}", NULL),
                rows[k][1]);
    }

    /* a key the door reads, twice: parsers differ on which value counts */
    {
        s2a_chat_request req;
        s2a_openai_error err;
        json_object *o = request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                                 "\"q\"}],\"tools\":[],\"tools\":[{\"type\":\"function\"}]}",
                                 &req, &err);
        S2A_CHECK(o == NULL);
        S2A_CHECK_INT(err.status, 400);
        S2A_CHECK_STR(err.message, "tools: the key appears twice");
    }

    /* the body itself */
    refused("", NULL);
    refused("[]", NULL);
    refused("{\"model\":\"m\",\"messages\":[]", NULL);
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}x", NULL);
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\nb\"}]}", NULL);
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\x01\"}]}", NULL);
    /* the tools, checked by a scan of their own: bad JSON deep in a schema, a raw control
     * character in a description */
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"tools\":[{"
            "\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":"
            "\"object\",\"properties\":{\"a\":{\"type\":tru}}}}}]}",
            NULL);
    refused("{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
            "\"description\":\"a\tb\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
            NULL);
    {
        /* a NUL in a string */
        static const char nul[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                                  "\"a\0b\"}]}";
        s2a_chat_request req;
        s2a_openai_error err;
        S2A_CHECK_INT(read_request(pool, nul, sizeof(nul) - 1, &req, &err), -1);
        S2A_CHECK_INT(err.status, 400);
        json_object *o = request("{\n\t\"model\": \"m\",\r\n \"messages\": [{\"role\": \"user\", "
                                 "\"content\": \"q\"}]\n}\n",
                                 &req, &err);
        S2A_CHECK(o != NULL);
        json_object_put(o);
    }
    refused("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "model");
    refused("{\"model\":5,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "model");
    refused("{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "model");
    refused("{\"model\":\"m\"}", "messages");
    refused("{\"model\":\"m\",\"messages\":{}}", "messages");
    refused("{\"model\":\"m\",\"messages\":[]}", "messages");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}", "messages");

    /* the messages */
    refused("{\"model\":\"m\",\"messages\":[\"hi\"]}", "messages[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"content\":\"hi\"}]}", "messages[0].role");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"robot\",\"content\":\"hi\"}]}",
            "messages[1].role");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"function\",\"name\":\"f\",\"content\":\"r\"}]}",
            "messages[1].role");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":7,\"content\":\"hi\"}]}", "messages[0].role");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
            "messages[0].content");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"assistant\",\"content\":{}}]}",
            "messages[1].content");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"assistant\",\"content\":[{\"type\":\"image_url\"}]}]}",
            "messages[1].content[0]");
    refused("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":5},"
            "{\"role\":\"user\",\"content\":\"q\"}]}",
            "messages[0].content");
}

/* A request as an agent sends it, cut at every byte: never a crash, and
 * either a body that is JSON or a 400 that says why. */
static void test_truncations(void)
{
    const char *full = apr_pstrcat(
        pool,
        "{\"model\":\"claude-sonnet-4-5\",\"stream\":true,\"stream_options\":{\"include_"
        "usage\":true},",
        TOOLS,
        ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
        "\"messages\":[{\"role\":\"system\",\"content\":\"Be \\\"terse\\\".\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"caf\\u00e9?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0K\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
        "\\\"Paris\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"ok\"}],"
        "\"max_completion_tokens\":99999999999999999999999,\"temperature\":0.5,"
        "\"stop\":[\"x\"],\"user\":\"u\",\"reasoning_effort\":\"low\"}",
        NULL);
    apr_size_t n = strlen(full), cut;
    int ok = 0, bad = 0, wrong = 0;
    apr_pool_t *sub;

    apr_pool_create(&sub, pool);
    for (cut = 0; cut <= n; cut++) {
        s2a_chat_request req;
        s2a_openai_error err;
        char *copy = malloc(cut ? cut : 1);
        int rc;

        memcpy(copy, full, cut);
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
    S2A_CHECK_INT(ok, 1); /* only the whole body */
    S2A_CHECK_INT(bad, (int)n);
}

/* ---- A whole answer ------------------------------------------------------------------------- */

static const char ANSWER[] =
    "{\"id\":\"msg_01Aq9w938a90dw8q\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
    "\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"The user "
    "wants \\\"weather\\\".\",\"signature\":\"EqQBCgIYAhIM\"},{\"type\":\"text\",\"text\":"
    "\"Checking\\n\"},{\"type\":\"text\",\"text\":\"both \\u00e9 cities.\"},{\"type\":\"tool_use\","
    "\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"name\":\"get_weather\",\"input\":{\"city\": "
    "\"Paris\",\n\"days\":[1,2]}},{\"type\":\"tool_use\",\"id\":\"toolu_02\",\"name\":\"get_time\","
    "\"input\":{}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{"
    "\"input_tokens\":472,\"cache_creation_input_tokens\":2048,\"cache_read_input_tokens\":10240,"
    "\"output_tokens\":93,\"service_tier\":\"standard\"}}";

static void test_answer(void)
{
    s2a_chat_request req;
    json_object *o, *args;
    apr_size_t len = 0;
    char *out;

    memset(&req, 0, sizeof(req));
    req.model = "gpt-4o";
    out = s2a_chat_answer(pool, &req, 1733500000, ANSWER, strlen(ANSWER), &len);
    S2A_CHECK(out && strlen(out) == len);
    o = out ? parse(out, len) : NULL;
    S2A_CHECK(o != NULL);
    S2A_CHECK_STR(str_at(o, "id"), "chatcmpl-msg_01Aq9w938a90dw8q");
    S2A_CHECK_STR(str_at(o, "object"), "chat.completion");
    S2A_CHECK_INT(int_at(o, "created"), 1733500000);
    S2A_CHECK_STR(str_at(o, "model"), "gpt-4o");
    S2A_CHECK_INT(len_at(o, "choices"), 1);
    S2A_CHECK_INT(int_at(o, "choices/0/index"), 0);
    S2A_CHECK_STR(str_at(o, "choices/0/message/role"), "assistant");
    S2A_CHECK_STR(str_at(o, "choices/0/message/content"), "Checking\nboth \xc3\xa9 cities.");
    S2A_CHECK_STR(str_at(o, "choices/0/message/reasoning_content"), "The user wants \"weather\".");
    S2A_CHECK_INT(len_at(o, "choices/0/message/tool_calls"), 2);
    S2A_CHECK_STR(str_at(o, "choices/0/message/tool_calls/0/id"), "toolu_01A09q90qw90lq917835lq9");
    S2A_CHECK_STR(str_at(o, "choices/0/message/tool_calls/0/type"), "function");
    S2A_CHECK_STR(str_at(o, "choices/0/message/tool_calls/0/function/name"), "get_weather");
    /* the arguments: a string holding the input's JSON */
    args = NULL;
    if (str_at(o, "choices/0/message/tool_calls/0/function/arguments")) {
        const char *a = str_at(o, "choices/0/message/tool_calls/0/function/arguments");
        args = parse(a, strlen(a));
    }
    S2A_CHECK_STR(str_at(args, "city"), "Paris");
    S2A_CHECK_INT(int_at(args, "days/1"), 2);
    json_object_put(args);
    S2A_CHECK_STR(str_at(o, "choices/0/message/tool_calls/1/function/arguments"), "{}");
    S2A_CHECK(has(o, "choices/0/message/refusal"));
    S2A_CHECK_STR(str_at(o, "choices/0/finish_reason"), "tool_calls");
    S2A_CHECK_INT(int_at(o, "usage/prompt_tokens"), 472 + 2048 + 10240);
    S2A_CHECK_INT(int_at(o, "usage/completion_tokens"), 93);
    S2A_CHECK_INT(int_at(o, "usage/total_tokens"), 472 + 2048 + 10240 + 93);
    S2A_CHECK_INT(int_at(o, "usage/prompt_tokens_details/cached_tokens"), 10240);
    json_object_put(o);

    /* tool calls only: content null; no thinking: no reasoning_content */
    {
        static const char only[] =
            "{\"id\":\"msg_2\",\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":"
            "\"toolu_9\",\"name\":\"f\",\"input\":{\"a\":\"\\\"q\\\"\"}}],\"stop_reason\":"
            "\"tool_use\",\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}";
        out = s2a_chat_answer(pool, &req, 1, only, strlen(only), &len);
        o = out ? parse(out, len) : NULL;
        S2A_CHECK(o && has(o, "choices/0/message/content") && !at(o, "choices/0/message/content"));
        S2A_CHECK(!has(o, "choices/0/message/reasoning_content"));
        S2A_CHECK_STR(str_at(o, "choices/0/message/tool_calls/0/function/arguments"),
                      "{\"a\":\"\\\"q\\\"\"}");
        S2A_CHECK_INT(int_at(o, "usage/prompt_tokens_details/cached_tokens"), 0);
        json_object_put(o);
    }
    /* a text answer cut by max_tokens; a refusal */
    {
        static const char cut[] =
            "{\"id\":\"msg_3\",\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":"
            "\"Once upon\"}],\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":3,"
            "\"output_tokens\":2}}";
        static const char no[] =
            "{\"id\":\"msg_4\",\"type\":\"message\",\"content\":[],\"stop_reason\":\"refusal\","
            "\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}";
        out = s2a_chat_answer(pool, &req, 1, cut, strlen(cut), &len);
        o = out ? parse(out, len) : NULL;
        S2A_CHECK_STR(str_at(o, "choices/0/finish_reason"), "length");
        S2A_CHECK_STR(str_at(o, "choices/0/message/content"), "Once upon");
        S2A_CHECK(!has(o, "choices/0/message/tool_calls"));
        json_object_put(o);
        out = s2a_chat_answer(pool, &req, 1, no, strlen(no), &len);
        o = out ? parse(out, len) : NULL;
        S2A_CHECK_STR(str_at(o, "choices/0/finish_reason"), "content_filter");
        S2A_CHECK(o && !at(o, "choices/0/message/content"));
        json_object_put(o);
    }
    /* not a Messages answer: raw control characters are not JSON either */
    {
        static const char raw[] = "{\"id\":\"msg_5\",\"type\":\"message\",\"content\":[{\"type\":"
                                  "\"text\",\"text\":\"a\0b\"}],\"usage\":{}}";
        S2A_CHECK(s2a_chat_answer(pool, &req, 1, raw, sizeof(raw) - 1, &len) == NULL);
    }
    S2A_CHECK(s2a_chat_answer(pool, &req, 1, "{\"type\":\"error\",\"error\":{}}", 28, &len) ==
              NULL);
    S2A_CHECK(s2a_chat_answer(pool, &req, 1, ANSWER, strlen(ANSWER) - 1, &len) == NULL);
    S2A_CHECK(s2a_chat_answer(pool, &req, 1, "", 0, &len) == NULL);
}

/* ---- A streamed answer ---------------------------------------------------------------------- */

/* A recorded stream: thinking, text, then a tool call whose input comes in
 * fragments, with the pings and usage the upstream sends. */
static const char STREAM[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Vx3nQk8UY6Lz2TbWfH9pJc\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
    "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,"
    "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":13427,\"output_tokens\":1,"
    "\"service_tier\":\"standard\"}}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
    "\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"Paris, so \\\"celsius\\\".\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
    "\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3h\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Let me check\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\" the weather \\u00e9\\n\\\"now\\\" \xf0\x9f\x98\x80.\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"location\\\": \\\"Pa\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"ris, France\\\", \\\"unit\\\": \\\"cel\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"sius\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_02\",\"name\":\"get_time\",\"input\":{}}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":"
    "null},\"usage\":{\"output_tokens\":89}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static s2a_chat_request stream_req(int include_usage)
{
    s2a_chat_request req;

    memset(&req, 0, sizeof(req));
    req.model = "gpt-4o-mini";
    req.stream = 1;
    req.include_usage = include_usage;
    return req;
}

/* Feeds data[0..n) in pieces cut at cuts[0..ncuts) (increasing), each from
 * an exact-size copy, then ends the stream unless `open`; the output. */
static char *run(apr_pool_t *p, const s2a_chat_request *req, const char *data, apr_size_t n,
                 const apr_size_t *cuts, int ncuts, int open, apr_size_t *len)
{
    s2a_chat_stream *s = s2a_chat_stream_create(p, req, 1733500000);
    s2a_buf out;
    apr_size_t from = 0;
    int k;

    s2a_buf_init(&out, p, 0);
    for (k = 0; k <= ncuts; k++) {
        apr_size_t to = k < ncuts ? cuts[k] : n;
        char *copy = malloc(to > from ? to - from : 1);

        memcpy(copy, data + from, to - from);
        s2a_chat_stream_feed(s, copy, to - from, &out);
        free(copy);
        from = to;
    }
    if (!open) {
        s2a_chat_stream_end(s, &out);
    }
    *len = out.len;
    return out.data ? out.data : apr_pstrdup(p, "");
}

/* The data lines of an output: each a chunk, parsed, into arr; [DONE]
 * counted in *done. Returns 0 when a line is not `data: ` JSON or
 * `: ping`. */
static int chunks(const char *out, json_object *arr, int *done, int *pings)
{
    const char *s = out;

    *done = *pings = 0;
    while (*s) {
        const char *end = strstr(s, "\n\n");
        json_object *o;

        if (!end) {
            return 0;
        }
        if (!strncmp(s, ": ping", 6) && end == s + 6) {
            ++*pings;
        } else if (!strncmp(s, "data: [DONE]", 12) && end == s + 12) {
            ++*done;
        } else if (!strncmp(s, "data: ", 6) && (o = parse(s + 6, (apr_size_t)(end - s - 6)))) {
            json_object_array_add(arr, o);
        } else {
            return 0;
        }
        s = end + 2;
    }
    return 1;
}

static void test_stream(void)
{
    s2a_chat_request req = stream_req(1);
    apr_size_t n = sizeof(STREAM) - 1, len, cut;
    json_object *arr = json_object_new_array(), *c, *args;
    char *whole, *got;
    int done, pings, k, differ = 0;
    s2a_buf text, arguments, reasoning;
    const char *finish = NULL;
    s2a_chat_stream *s;
    apr_pool_t *sub;

    whole = run(pool, &req, STREAM, n, NULL, 0, 0, &len);
    S2A_CHECK(chunks(whole, arr, &done, &pings));
    S2A_CHECK_INT(done, 1);
    S2A_CHECK_INT(pings, 2);
    S2A_CHECK(len > 12 && !strcmp(whole + len - 14, "data: [DONE]\n\n"));

    /* every chunk: the same head, one choice or (the last) none */
    s2a_buf_init(&text, pool, 0);
    s2a_buf_init(&arguments, pool, 0);
    s2a_buf_init(&reasoning, pool, 0);
    for (k = 0; k < (int)json_object_array_length(arr); k++) {
        c = json_object_array_get_idx(arr, (size_t)k);
        S2A_CHECK_STR(str_at(c, "id"), "chatcmpl-msg_01Vx3nQk8UY6Lz2TbWfH9pJc");
        S2A_CHECK_STR(str_at(c, "object"), "chat.completion.chunk");
        S2A_CHECK_INT(int_at(c, "created"), 1733500000);
        S2A_CHECK_STR(str_at(c, "model"), "gpt-4o-mini");
        if (k == (int)json_object_array_length(arr) - 1) {
            break;
        }
        S2A_CHECK(has(c, "usage") && !at(c, "usage"));
        S2A_CHECK_INT(len_at(c, "choices"), 1);
        if (str_at(c, "choices/0/delta/content")) {
            s2a_openai_put(&text, str_at(c, "choices/0/delta/content"));
        }
        if (str_at(c, "choices/0/delta/reasoning_content")) {
            s2a_openai_put(&reasoning, str_at(c, "choices/0/delta/reasoning_content"));
        }
        if (str_at(c, "choices/0/delta/tool_calls/0/function/arguments") &&
            int_at(c, "choices/0/delta/tool_calls/0/index") == 0) {
            s2a_openai_put(&arguments,
                           str_at(c, "choices/0/delta/tool_calls/0/function/arguments"));
        }
        if (str_at(c, "choices/0/finish_reason")) {
            S2A_CHECK(finish == NULL);
            finish = str_at(c, "choices/0/finish_reason");
        }
    }
    c = json_object_array_get_idx(arr, 0);
    S2A_CHECK_STR(str_at(c, "choices/0/delta/role"), "assistant");
    S2A_CHECK_STR(text.data, "Let me check the weather \xc3\xa9\n\"now\" \xf0\x9f\x98\x80.");
    S2A_CHECK_STR(reasoning.data, "Paris, so \"celsius\".");
    args = arguments.data ? parse(arguments.data, arguments.len) : NULL;
    S2A_CHECK_STR(str_at(args, "location"), "Paris, France");
    S2A_CHECK_STR(str_at(args, "unit"), "celsius");
    json_object_put(args);
    S2A_CHECK_STR(finish, "tool_calls");
    /* the calls open with their id, type and name */
    for (k = 0; k < (int)json_object_array_length(arr); k++) {
        c = json_object_array_get_idx(arr, (size_t)k);
        if (str_at(c, "choices/0/delta/tool_calls/0/id")) {
            break;
        }
    }
    S2A_CHECK_STR(str_at(c, "choices/0/delta/tool_calls/0/id"), "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    S2A_CHECK_STR(str_at(c, "choices/0/delta/tool_calls/0/type"), "function");
    S2A_CHECK_STR(str_at(c, "choices/0/delta/tool_calls/0/function/name"), "get_weather");
    S2A_CHECK_STR(str_at(c, "choices/0/delta/tool_calls/0/function/arguments"), "");
    /* a call with no input still gets its object */
    for (k = 0; k < (int)json_object_array_length(arr); k++) {
        c = json_object_array_get_idx(arr, (size_t)k);
        if (int_at(c, "choices/0/delta/tool_calls/0/index") == 1 &&
            !has(c, "choices/0/delta/tool_calls/0/id")) {
            break;
        }
    }
    S2A_CHECK_STR(str_at(c, "choices/0/delta/tool_calls/0/function/arguments"), "{}");
    /* the usage chunk: no choices */
    c = json_object_array_get_idx(arr, json_object_array_length(arr) - 1);
    S2A_CHECK_INT(len_at(c, "choices"), 0);
    S2A_CHECK_INT(int_at(c, "usage/prompt_tokens"), 472 + 100 + 13427);
    S2A_CHECK_INT(int_at(c, "usage/completion_tokens"), 89);
    S2A_CHECK_INT(int_at(c, "usage/total_tokens"), 472 + 100 + 13427 + 89);
    S2A_CHECK_INT(int_at(c, "usage/prompt_tokens_details/cached_tokens"), 13427);
    json_object_put(arr);

    /* the same bytes out whatever the cuts: at every byte, and byte by byte */
    apr_pool_create(&sub, pool);
    for (cut = 0; cut <= n; cut++) {
        got = run(sub, &req, STREAM, n, &cut, 1, 0, &len);
        differ += strcmp(got, whole) != 0;
        apr_pool_clear(sub);
    }
    S2A_CHECK_INT(differ, 0);
    {
        apr_size_t *every = apr_palloc(sub, n * sizeof(*every));
        for (cut = 0; cut < n; cut++) {
            every[cut] = cut + 1;
        }
        got = run(sub, &req, STREAM, n, every, (int)n - 1, 0, &len);
        S2A_CHECK_STR(got, whole);
        apr_pool_clear(sub);
    }
    /* three pieces, cut at a stride */
    differ = 0;
    for (cut = 0; cut + 97 <= n; cut += 13) {
        apr_size_t cuts[2] = {cut, cut + 97};
        got = run(sub, &req, STREAM, n, cuts, 2, 0, &len);
        differ += strcmp(got, whole) != 0;
        apr_pool_clear(sub);
    }
    S2A_CHECK_INT(differ, 0);

    /* done, and the usage carried */
    s = s2a_chat_stream_create(sub, &req, 1);
    {
        s2a_buf out;
        s2a_buf_init(&out, sub, 0);
        s2a_chat_stream_feed(s, STREAM, n, &out);
        S2A_CHECK(s2a_chat_stream_done(s));
        S2A_CHECK_INT(s2a_chat_stream_usage(s)->input, 472);
        S2A_CHECK_INT(s2a_chat_stream_usage(s)->output, 89);
        /* after [DONE], nothing */
        len = out.len;
        s2a_chat_stream_feed(s, STREAM, n, &out);
        s2a_chat_stream_end(s, &out);
        S2A_CHECK_INT(out.len, len);
    }
    apr_pool_destroy(sub);

    /* CRLF line ends: the same chunks */
    {
        s2a_buf crlf;
        apr_size_t i;
        s2a_buf_init(&crlf, pool, 0);
        for (i = 0; i < n; i++) {
            if (STREAM[i] == '\n') {
                S2A_PUT(&crlf, "\r\n");
            } else {
                s2a_buf_append(&crlf, STREAM + i, 1);
            }
        }
        got = run(pool, &req, crlf.data, crlf.len, NULL, 0, 0, &len);
        S2A_CHECK_STR(got, whole);
        differ = 0;
        for (i = 0; i <= crlf.len; i += 7) {
            char *piece = run(pool, &req, crlf.data, crlf.len, &i, 1, 0, &len);
            differ += strcmp(piece, whole) != 0;
        }
        S2A_CHECK_INT(differ, 0);
    }

    /* an event whose data lines make a raw line end inside a string: skipped,
     * so that no record of the client's is cut in two */
    {
        const char *start = strstr(STREAM, "event: content_block_stop");
        const char *odd = apr_pstrcat(
            pool, apr_pstrmemdup(pool, STREAM, (apr_size_t)(start - STREAM)),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
            "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"a\ndata: \ndata: b\"}}\n\n",
            start, NULL);
        arr = json_object_new_array();
        got = run(pool, &req, odd, strlen(odd), NULL, 0, 0, &len);
        S2A_CHECK(chunks(got, arr, &done, &pings));
        S2A_CHECK_INT(done, 1);
        S2A_CHECK_STR(got, whole);
        json_object_put(arr);
    }

    /* without include_usage: no usage member, no usage chunk */
    req = stream_req(0);
    got = run(pool, &req, STREAM, n, NULL, 0, 0, &len);
    S2A_CHECK(strstr(got, "\"usage\"") == NULL);
    arr = json_object_new_array();
    S2A_CHECK(chunks(got, arr, &done, &pings));
    c = json_object_array_get_idx(arr, json_object_array_length(arr) - 1);
    S2A_CHECK_STR(str_at(c, "choices/0/finish_reason"), "tool_calls");
    json_object_put(arr);
}

/* The error chunk of an output, parsed (the one before [DONE]). */
static json_object *error_chunk(const char *out)
{
    json_object *arr = json_object_new_array(), *e = NULL;
    int done, pings;

    if (chunks(out, arr, &done, &pings) && done == 1 && json_object_array_length(arr)) {
        e = json_object_get(json_object_array_get_idx(arr, json_object_array_length(arr) - 1));
    }
    json_object_put(arr);
    return e;
}

static void test_stream_cut(void)
{
    s2a_chat_request req = stream_req(1);
    const char *delta = strstr(STREAM, "event: message_delta");
    const char *stop = strstr(STREAM, "event: message_stop");
    apr_size_t len, cut;
    json_object *e;
    char *got, *first;
    int differ = 0;
    apr_pool_t *sub;

    /* ended before its message_delta: an error chunk, then [DONE] */
    got = run(pool, &req, STREAM, (apr_size_t)(delta - STREAM), NULL, 0, 0, &len);
    S2A_CHECK(len > 14 && !strcmp(got + len - 14, "data: [DONE]\n\n"));
    e = error_chunk(got);
    S2A_CHECK_STR(str_at(e, "error/type"), "server_error");
    S2A_CHECK(str_at(e, "error/message") != NULL);
    S2A_CHECK(!has(e, "choices"));
    json_object_put(e);
    S2A_CHECK(strstr(got, "\"finish_reason\":\"") == NULL);

    /* the same wherever it was cut inside an event, or between two */
    apr_pool_create(&sub, pool);
    first = apr_pstrdup(pool, run(sub, &req, STREAM, 0, NULL, 0, 0, &len));
    e = error_chunk(first);
    S2A_CHECK_STR(str_at(e, "error/type"), "server_error");
    json_object_put(e);
    for (cut = 1; cut < (apr_size_t)(delta - STREAM); cut++) {
        got = run(sub, &req, STREAM, cut, NULL, 0, 0, &len);
        e = error_chunk(got);
        differ += !e || !str_at(e, "error/message") || strstr(got, "finish_reason\":\"");
        json_object_put(e);
        apr_pool_clear(sub);
    }
    apr_pool_destroy(sub);
    S2A_CHECK_INT(differ, 0);

    /* ended after message_delta, before message_stop: complete */
    got = run(pool, &req, STREAM, (apr_size_t)(stop - STREAM), NULL, 0, 0, &len);
    S2A_CHECK_STR(got, run(pool, &req, STREAM, sizeof(STREAM) - 1, NULL, 0, 0, &len));

    /* left open: no [DONE] yet */
    got = run(pool, &req, STREAM, (apr_size_t)(delta - STREAM), NULL, 0, 1, &len);
    S2A_CHECK(strstr(got, "[DONE]") == NULL);
}

static void test_stream_error(void)
{
    static const char overloaded[] =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":"
        "{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
        "\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"Hel\"}}\n\n"
        "event: error\n"
        "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
        "\"Overloaded\"}}\n\n"
        "event: message_stop\n"
        "data: {\"type\":\"message_stop\"}\n\n";
    s2a_chat_request req = stream_req(0);
    apr_size_t len, cut, n = sizeof(overloaded) - 1;
    json_object *e;
    char *got, *whole;
    int differ = 0;

    whole = run(pool, &req, overloaded, n, NULL, 0, 0, &len);
    e = error_chunk(whole);
    S2A_CHECK_STR(str_at(e, "error/type"), "server_error");
    S2A_CHECK_STR(str_at(e, "error/code"), "overloaded");
    S2A_CHECK_STR(str_at(e, "error/message"), "Overloaded");
    json_object_put(e);
    S2A_CHECK(strstr(whole, "\"content\":\"Hel\"") != NULL);
    S2A_CHECK(strstr(whole, "finish_reason\":\"") == NULL);
    for (cut = 0; cut <= n; cut++) {
        got = run(pool, &req, overloaded, n, &cut, 1, 0, &len);
        differ += strcmp(got, whole) != 0;
    }
    S2A_CHECK_INT(differ, 0);

    /* an event past the size cap: an error, and nothing after it */
    {
        apr_size_t big = S2A_ANSWER_MAX_EVENT + 16, i;
        s2a_buf huge;
        apr_size_t cuts[3];

        s2a_buf_init(&huge, pool, big + 1024);
        S2A_PUT(&huge, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
                       "{\"id\":\"msg_1\"}}\n\n"
                       "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                       "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"");
        for (i = 0; i < big; i++) {
            S2A_PUT(&huge, "a");
        }
        S2A_PUT(&huge, "\"}}\n\nevent: content_block_delta\ndata: {\"type\":"
                       "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
                       "\"text\":\"after\"}}\n\nevent: message_stop\ndata: {\"type\":"
                       "\"message_stop\"}\n\n");
        whole = run(pool, &req, huge.data, huge.len, NULL, 0, 0, &len);
        e = error_chunk(whole);
        S2A_CHECK_STR(str_at(e, "error/type"), "server_error");
        json_object_put(e);
        S2A_CHECK(strstr(whole, "after") == NULL);
        cuts[0] = 100;
        cuts[1] = huge.len - 120;
        cuts[2] = huge.len - 20;
        got = run(pool, &req, huge.data, huge.len, cuts, 3, 0, &len);
        S2A_CHECK_STR(got, whole);
        cuts[0] = huge.len - 200;
        got = run(pool, &req, huge.data, huge.len, cuts, 1, 0, &len);
        S2A_CHECK_STR(got, whole);
    }
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    memo = s2a_tools_memo_make(pool, 4, 64 * 1024);

    test_conversation();
    test_parts();
    test_tool_loop();
    test_tool_choice();
    test_options();
    test_refusals();
    test_truncations();
    test_answer();
    test_stream();
    test_stream_cut();
    test_stream_error();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_openai_chat");
}
