/* Chat Completions in front of the Messages API: see s2a_openai_chat.h. */
#include <string.h>

#include <apr_strings.h>

#include "s2a_answer.h"
#include "s2a_openai_chat.h"
#include "s2a_sse.h"

/* ---- The request ---------------------------------------------------------------------------- */

enum {
    F_MODEL,
    F_MESSAGES,
    F_STREAM,
    F_STREAM_OPTIONS,
    F_MAX_TOKENS,
    F_MAX_COMPLETION_TOKENS,
    F_TEMPERATURE,
    F_TOP_P,
    F_STOP,
    F_TOOL_CHOICE,
    F_PARALLEL_TOOL_CALLS,
    F_RESPONSE_FORMAT,
    F_REASONING_EFFORT,
    F_USER,
    F_SAFETY_IDENTIFIER,
    F_N,
    F_AUDIO,
    F_MODALITIES,
    F_LOGPROBS,
    F_TOP_LOGPROBS,
    F_FUNCTIONS,
    F_FUNCTION_CALL,
    F_WEB_SEARCH_OPTIONS,
    F_TOOLS, /* last: the first scan only delimits it */
    F_COUNT
};

/* Every container read is asked for by name: the scanner then checks it
 * in full, so that whatever is copied from it is JSON. "tools" is checked
 * by a second scan, needed only when the memo does not know the array. */
static const char *const fields[F_COUNT] = {"model",
                                            "messages",
                                            "stream",
                                            "stream_options",
                                            "max_tokens",
                                            "max_completion_tokens",
                                            "temperature",
                                            "top_p",
                                            "stop",
                                            "tool_choice",
                                            "parallel_tool_calls",
                                            "response_format",
                                            "reasoning_effort",
                                            "user",
                                            "safety_identifier",
                                            "n",
                                            "audio",
                                            "modalities",
                                            "logprobs",
                                            "top_logprobs",
                                            "functions",
                                            "function_call",
                                            "web_search_options",
                                            "tools"};

typedef struct {
    apr_pool_t *pool;
    s2a_buf *b;
    s2a_openai_error *err;
    s2a_json_span f[F_COUNT];
    s2a_body_marks *marks;        /* where the body's fields went */
    s2a_tools_memo *memo;         /* NULL: none */
    apr_array_header_t *messages; /* chat_message: "messages", read by write_system */
} reader;

/* A message's members, read in one walk of it (NONE where absent). */
typedef struct {
    s2a_json_span role, content, tool_calls, tool_call_id;
} chat_message;

static int present(const s2a_json_span *v)
{
    return v->type != S2A_JSON_NONE && v->type != S2A_JSON_NULL;
}

static int refuse(reader *r, const char *param, const char *message)
{
    return s2a_openai_refuse(r->err, param, apr_pstrcat(r->pool, param, ": ", message, NULL));
}

/* A refusal about messages[i], messages[i].what or messages[i].what[j]
 * (j < 0: none); the name is written only when it is needed. */
static int refuse_at(reader *r, int i, const char *what, int j, const char *message)
{
    const char *param = !what   ? apr_psprintf(r->pool, "messages[%d]", i)
                        : j < 0 ? apr_psprintf(r->pool, "messages[%d].%s", i, what)
                                : apr_psprintf(r->pool, "messages[%d].%s[%d]", i, what, j);
    return refuse(r, param, message);
}

/* The requests the gateway cannot answer, and the types it needs. */
static int check_refusals(reader *r)
{
    const s2a_json_span *f = r->f;
    s2a_json_span v;
    apr_int64_t n;
    apr_size_t pos = 0;

    if (present(&f[F_N])) {
        if (!s2a_openai_integer(&f[F_N], &n) || n < 1) {
            return refuse(r, "n", "must be a positive integer");
        }
        if (n > 1) {
            return refuse(r, "n", "only one choice is generated here; send n separate requests");
        }
    }
    if (present(&f[F_AUDIO])) {
        return refuse(r, "audio", "audio output is not available here");
    }
    if (present(&f[F_MODALITIES])) {
        if (f[F_MODALITIES].type != S2A_JSON_ARRAY) {
            return refuse(r, "modalities", "must be an array");
        }
        while (s2a_json_array_next(&f[F_MODALITIES], &pos, &v)) {
            if (!s2a_json_string_equals(&v, "text")) {
                return refuse(r, "modalities", "only text output is available here");
            }
        }
    }
    if (f[F_LOGPROBS].type == S2A_JSON_TRUE) {
        return refuse(r, "logprobs", "log probabilities are not available here");
    }
    if (present(&f[F_LOGPROBS]) && f[F_LOGPROBS].type != S2A_JSON_FALSE) {
        return refuse(r, "logprobs", "must be a boolean");
    }
    if (present(&f[F_TOP_LOGPROBS]) && (!s2a_openai_integer(&f[F_TOP_LOGPROBS], &n) || n != 0)) {
        return refuse(r, "top_logprobs", "log probabilities are not available here");
    }
    if (present(&f[F_FUNCTIONS])) {
        return refuse(r, "functions", "the legacy functions are not taken here; send tools");
    }
    if (present(&f[F_FUNCTION_CALL])) {
        return refuse(r, "function_call",
                      "the legacy function_call is not taken here; send tool_choice");
    }
    if (present(&f[F_WEB_SEARCH_OPTIONS])) {
        return refuse(r, "web_search_options", "web search is not available on this endpoint");
    }
    if (present(&f[F_STREAM]) && f[F_STREAM].type != S2A_JSON_TRUE &&
        f[F_STREAM].type != S2A_JSON_FALSE) {
        return refuse(r, "stream", "must be a boolean");
    }
    if (present(&f[F_STREAM_OPTIONS]) && f[F_STREAM_OPTIONS].type != S2A_JSON_OBJECT) {
        return refuse(r, "stream_options", "must be an object");
    }
    if (present(&f[F_PARALLEL_TOOL_CALLS]) && f[F_PARALLEL_TOOL_CALLS].type != S2A_JSON_TRUE &&
        f[F_PARALLEL_TOOL_CALLS].type != S2A_JSON_FALSE) {
        return refuse(r, "parallel_tool_calls", "must be a boolean");
    }
    if (present(&f[F_USER]) && f[F_USER].type != S2A_JSON_STRING) {
        return refuse(r, "user", "must be a string");
    }
    if (present(&f[F_SAFETY_IDENTIFIER]) && f[F_SAFETY_IDENTIFIER].type != S2A_JSON_STRING) {
        return refuse(r, "safety_identifier", "must be a string");
    }
    return 0;
}

/* What a content part's readers take of it, in one walk. */
static const char *const part_keys[] = {"type", "text", "cache_control", "image_url", "file"};

/* The text parts of a system or developer message, as system blocks. */
static int system_blocks(reader *r, int i, const s2a_json_span *content, int *count)
{
    s2a_json_span part;
    apr_size_t pos = 0;
    int j = 0;

    if (content->type == S2A_JSON_STRING) {
        if (!s2a_openai_blank(content)) {
            s2a_openai_put(r->b, *count ? "," : ",\"system\":[");
            s2a_openai_text_block(r->b, content, NULL);
            ++*count;
        }
        return 0;
    }
    if (content->type != S2A_JSON_ARRAY) {
        return refuse_at(r, i, "content", -1, "must be a string or an array of text parts");
    }
    for (; s2a_json_array_next(content, &pos, &part); j++) {
        s2a_json_span v[3]; /* type, text, cache_control */

        if (part.type != S2A_JSON_OBJECT || !s2a_json_object_members(&part, part_keys, 3, v) ||
            !s2a_json_string_equals(&v[0], "text") || v[1].type != S2A_JSON_STRING) {
            return refuse_at(r, i, "content", j, "a system message takes text parts only");
        }
        if (!s2a_openai_blank(&v[1])) {
            s2a_openai_put(r->b, *count ? "," : ",\"system\":[");
            s2a_openai_text_block(r->b, &v[1], &v[2]);
            ++*count;
        }
    }
    return 0;
}

static int role_is_system(const s2a_json_span *role)
{
    return s2a_json_string_equals(role, "system") || s2a_json_string_equals(role, "developer");
}

/* The system prompt: every system and developer message, in order, then
 * the instruction response_format asks for. */
static int write_system(reader *r)
{
    static const char *const message_keys[] = {"role", "content", "tool_calls", "tool_call_id"};
    apr_size_t from = r->b->len;
    const s2a_json_span *rf = &r->f[F_RESPONSE_FORMAT];
    s2a_json_span msg, type, schema, js;
    apr_size_t pos = 0;
    int i = 0, count = 0;

    r->messages = apr_array_make(r->pool, 8, sizeof(chat_message));
    for (; s2a_json_array_next(&r->f[F_MESSAGES], &pos, &msg); i++) {
        chat_message *m = apr_array_push(r->messages);
        s2a_json_span v[4];

        if (msg.type != S2A_JSON_OBJECT) {
            return refuse_at(r, i, NULL, -1, "must be an object");
        }
        /* the members every writer of a message needs, in one walk of it */
        s2a_json_object_members(&msg, message_keys, 4, v);
        m->role = v[0];
        m->content = v[1];
        m->tool_calls = v[2];
        m->tool_call_id = v[3];
        if (m->role.type != S2A_JSON_STRING) {
            return refuse_at(r, i, "role", -1, "must be a string");
        }
        if (role_is_system(&m->role) && system_blocks(r, i, &m->content, &count) != 0) {
            return -1;
        }
    }
    if (present(rf)) {
        if (rf->type != S2A_JSON_OBJECT || !s2a_json_object_get(rf, "type", &type) ||
            type.type != S2A_JSON_STRING) {
            return refuse(r, "response_format", "must be an object with a type");
        }
        if (s2a_json_string_equals(&type, "json_object") ||
            s2a_json_string_equals(&type, "json_schema")) {
            schema.type = S2A_JSON_NONE;
            if (s2a_json_string_equals(&type, "json_schema")) {
                if (!s2a_json_object_get(rf, "json_schema", &js) || js.type != S2A_JSON_OBJECT) {
                    return refuse(r, "response_format", "json_schema must be an object");
                }
                /* the schema is optional: without one, any JSON object */
                if (s2a_json_object_get(&js, "schema", &schema) && present(&schema) &&
                    schema.type != S2A_JSON_OBJECT) {
                    return refuse(r, "response_format", "json_schema.schema must be an object");
                }
            }
            s2a_openai_put(r->b, count ? "," : ",\"system\":[");
            s2a_openai_json_instruction(r->b, &schema);
            count++;
        } else if (!s2a_json_string_equals(&type, "text")) {
            return refuse(r, "response_format", "type must be text, json_object or json_schema");
        }
    }
    if (count) {
        S2A_PUT(r->b, "]");
        s2a_openai_mark(r->b, from, ",\"system\":", &r->marks->system);
    }
    return 0;
}

/* Part j of messages[i]'s content, as a block of a user message (NULL m:
 * inside a tool_result, where *written counts the blocks for the commas). */
static int user_part(reader *r, s2a_openai_msgs *m, const s2a_json_span *part, int i, int j,
                     int *written)
{
    s2a_json_span v[5], url, data;
    const s2a_json_span *type = &v[0], *text = &v[1], *cc = &v[2], *image = &v[3], *file = &v[4];
    const char *why;

    if (part->type != S2A_JSON_OBJECT || !s2a_json_object_members(part, part_keys, 5, v) ||
        type->type != S2A_JSON_STRING) {
        return refuse_at(r, i, "content", j, "must be an object with a type");
    }
    if (s2a_json_string_equals(type, "text")) {
        if (text->type != S2A_JSON_STRING) {
            return refuse_at(r, i, "content", j, "a text part needs its text as a string");
        }
        if (s2a_openai_blank(text)) {
            return 0; /* the upstream refuses blank text blocks */
        }
        if (m) {
            s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_TEXT, 0);
        } else if ((*written)++) {
            S2A_PUT(r->b, ",");
        }
        s2a_openai_text_block(r->b, text, cc);
        return 0;
    }
    if (s2a_json_string_equals(type, "image_url")) {
        url = *image;
        if (image->type == S2A_JSON_OBJECT && !s2a_json_object_get(image, "url", &url)) {
            url.type = S2A_JSON_NONE;
        }
        if (url.type != S2A_JSON_STRING) {
            return refuse_at(r, i, "content", j,
                             "an image_url part needs image_url.url as a string");
        }
        if (m) {
            s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_OTHER, 0);
        } else if ((*written)++) {
            S2A_PUT(r->b, ",");
        }
        if (s2a_openai_image_block(r->pool, r->b, &url, 0, cc, &why) != 0) {
            return refuse_at(r, i, "content", j, apr_pstrcat(r->pool, "image_url.url ", why, NULL));
        }
        return 0;
    }
    if (s2a_json_string_equals(type, "file")) {
        if (file->type != S2A_JSON_OBJECT) {
            return refuse_at(r, i, "content", j, "a file part needs its file object");
        }
        if (!s2a_json_object_get(file, "file_data", &data) || data.type != S2A_JSON_STRING) {
            return refuse_at(r, i, "content", j,
                             "files are taken as file_data only (no file ids here)");
        }
        if (m) {
            s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_OTHER, 0);
        } else if ((*written)++) {
            S2A_PUT(r->b, ",");
        }
        if (s2a_openai_image_block(r->pool, r->b, &data, 1, cc, &why) != 0) {
            return refuse_at(r, i, "content", j,
                             apr_pstrcat(r->pool, "file.file_data ", why, NULL));
        }
        return 0;
    }
    if (s2a_json_string_equals(type, "input_audio")) {
        return refuse_at(r, i, "content", j, "audio input is not available here");
    }
    return refuse_at(r, i, "content", j, "type must be text, image_url or file");
}

static int user_message(reader *r, s2a_openai_msgs *m, int i, const s2a_json_span *content)
{
    s2a_json_span part;
    apr_size_t pos = 0;
    int j = 0;

    if (content->type == S2A_JSON_STRING) {
        if (!s2a_openai_blank(content)) {
            s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_TEXT, 0);
            s2a_openai_text_block(r->b, content, NULL);
        }
        return 0;
    }
    if (content->type != S2A_JSON_ARRAY) {
        return refuse_at(r, i, "content", -1, "must be a string or an array of parts");
    }
    for (; s2a_json_array_next(content, &pos, &part); j++) {
        if (user_part(r, m, &part, i, j, NULL) != 0) {
            return -1;
        }
    }
    return 0;
}

static int assistant_message(reader *r, s2a_openai_msgs *m, int i, const chat_message *msg)
{
    const s2a_json_span content = msg->content, calls = msg->tool_calls;
    s2a_json_span part, type, text, call, fn, id, name, args;
    apr_size_t pos = 0;
    const char *why;
    int j = 0;

    if (content.type == S2A_JSON_STRING) {
        if (!s2a_openai_blank(&content)) {
            s2a_openai_msgs_block(m, S2A_ROLE_ASSISTANT, S2A_BLOCK_TEXT, 0);
            s2a_openai_text_block(r->b, &content, NULL);
        }
    } else if (content.type == S2A_JSON_ARRAY) {
        for (; s2a_json_array_next(&content, &pos, &part); j++) {
            if (part.type != S2A_JSON_OBJECT || !s2a_json_object_get(&part, "type", &type)) {
                return refuse_at(r, i, "content", j, "must be an object with a type");
            }
            text.type = S2A_JSON_NONE;
            if (s2a_json_string_equals(&type, "text")) {
                s2a_json_object_get(&part, "text", &text);
            } else if (s2a_json_string_equals(&type, "refusal")) {
                s2a_json_object_get(&part, "refusal", &text);
            } else {
                return refuse_at(r, i, "content", j,
                                 "an assistant message takes text and refusal parts");
            }
            if (text.type != S2A_JSON_STRING) {
                return refuse_at(r, i, "content", j, "the part's text must be a string");
            }
            if (!s2a_openai_blank(&text)) {
                s2a_openai_msgs_block(m, S2A_ROLE_ASSISTANT, S2A_BLOCK_TEXT, 0);
                s2a_openai_text_block(r->b, &text, NULL);
            }
        }
    } else if (present(&content)) {
        return refuse_at(r, i, "content", -1, "must be a string, an array of parts or null");
    }
    if (!present(&calls)) {
        return 0;
    }
    if (calls.type != S2A_JSON_ARRAY) {
        return refuse_at(r, i, "tool_calls", -1, "must be an array");
    }
    for (pos = 0, j = 0; s2a_json_array_next(&calls, &pos, &call); j++) {
        if (call.type != S2A_JSON_OBJECT || !s2a_json_object_get(&call, "function", &fn) ||
            fn.type != S2A_JSON_OBJECT) {
            return refuse_at(r, i, "tool_calls", j, "a tool call needs its function object");
        }
        if (!s2a_json_object_get(&call, "id", &id)) {
            id.type = S2A_JSON_NONE;
        }
        if (!s2a_json_object_get(&fn, "name", &name)) {
            name.type = S2A_JSON_NONE;
        }
        if (!s2a_json_object_get(&fn, "arguments", &args)) {
            args.type = S2A_JSON_NONE;
        }
        s2a_openai_msgs_block(m, S2A_ROLE_ASSISTANT, S2A_BLOCK_TOOL_USE, 0);
        if (s2a_openai_tool_use_block(r->pool, r->b, &id, &name, &args, &why) != 0) {
            return refuse_at(r, i, "tool_calls", j, why);
        }
    }
    return 0;
}

/* A tool message: a tool_result in a user turn (adjacent ones share it). */
static int tool_message(reader *r, s2a_openai_msgs *m, int i, const chat_message *msg)
{
    const s2a_json_span id = msg->tool_call_id, content = msg->content;
    s2a_json_span part;
    apr_size_t pos = 0;
    int j = 0, written = 0;

    if (id.type != S2A_JSON_STRING) {
        return refuse_at(r, i, "tool_call_id", -1,
                         "a tool message needs the id of its tool call as a string");
    }
    s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_OTHER, 1);
    S2A_PUT(r->b, "{\"type\":\"tool_result\",\"tool_use_id\":");
    if (!s2a_openai_put_tool_id(r->pool, r->b, &id)) {
        return refuse_at(r, i, "tool_call_id", -1, "is not a valid string");
    }
    if (content.type == S2A_JSON_STRING) {
        if (content.len > 2) {
            S2A_PUT(r->b, ",\"content\":");
            s2a_openai_put_span(r->b, &content);
        }
    } else if (content.type == S2A_JSON_ARRAY) {
        apr_size_t mark = r->b->len;
        S2A_PUT(r->b, ",\"content\":[");
        for (; s2a_json_array_next(&content, &pos, &part); j++) {
            if (user_part(r, NULL, &part, i, j, &written) != 0) {
                return -1;
            }
        }
        if (written) {
            S2A_PUT(r->b, "]");
        } else {
            r->b->len = mark; /* no content rather than an empty one */
        }
    } else if (present(&content)) {
        return refuse_at(r, i, "content", -1, "must be a string or an array of parts");
    }
    S2A_PUT(r->b, "}");
    return 0;
}

static int write_messages(reader *r, s2a_openai_msgs *m)
{
    int i, rc;
    apr_size_t from = r->b->len;

    S2A_PUT(r->b, ",");
    s2a_openai_msgs_start(m, r->b);
    /* write_system read each, an object with a string role */
    for (i = 0; i < r->messages->nelts; i++) {
        const chat_message *msg = &APR_ARRAY_IDX(r->messages, i, chat_message);
        const s2a_json_span *role = &msg->role;

        if (role_is_system(role)) {
            continue;
        }
        if (s2a_json_string_equals(role, "user")) {
            rc = present(&msg->content) ? user_message(r, m, i, &msg->content) : 0;
        } else if (s2a_json_string_equals(role, "assistant")) {
            rc = assistant_message(r, m, i, msg);
        } else if (s2a_json_string_equals(role, "tool")) {
            rc = tool_message(r, m, i, msg);
        } else if (s2a_json_string_equals(role, "function")) {
            rc = refuse_at(r, i, "role", -1,
                           "the legacy function role is not taken here; send tool messages");
        } else {
            rc = refuse_at(r, i, "role", -1, "must be system, developer, user, assistant or tool");
        }
        if (rc != 0) {
            return -1;
        }
    }
    s2a_openai_msgs_end(m);
    s2a_openai_mark(r->b, from, ",\"messages\":", &r->marks->messages);
    if (!m->messages) {
        return refuse(r, "messages", "at least one user or assistant message is needed");
    }
    return 0;
}

/* A tool as the scan of the request read it: the element, its type and
 * function, and the function's members (NONE where absent; the last of a
 * name met twice). */
typedef struct {
    s2a_json_span tool, type, function, fn[3];
} chat_tool;

/* What the scan passes on its way through "tools" (s2a_json_scan_object_values). */
typedef struct {
    apr_array_header_t *tools;
    chat_tool now;       /* the tool being read */
    s2a_json_span fn[3]; /* the members of the tool's last object value yet */
} tools_read;

static void read_tool(void *ctx, int level, const s2a_json_span *name, const s2a_json_span *v)
{
    static const char *const function_keys[] = {"name", "description", "parameters"};
    static const s2a_json_span none = {NULL, 0, S2A_JSON_NONE};
    tools_read *t = ctx;
    int k;

    if (level == 3) {
        for (k = 0; k < 3; k++) {
            if (s2a_json_string_equals(name, function_keys[k])) {
                t->fn[k] = *v;
                break;
            }
        }
        return;
    }
    if (level == 2) {
        if (s2a_json_string_equals(name, "type")) {
            t->now.type = *v;
        } else if (s2a_json_string_equals(name, "function")) {
            t->now.function = *v;
            for (k = 0; k < 3; k++) {
                t->now.fn[k] = v->type == S2A_JSON_OBJECT ? t->fn[k] : none;
            }
        }
    } else {
        t->now.tool = *v;
        APR_ARRAY_PUSH(t->tools, chat_tool) = t->now;
        memset(&t->now, 0, sizeof(t->now));
    }
    for (k = 0; k < 3; k++) {
        t->fn[k] = none;
    }
}

/* The function tools of "tools", checked and read by a second scan of
 * the body, written as Messages tools; the count of them. */
static int translate_tools(reader *r, const char *raw, apr_size_t len, int *count)
{
    tools_read tools;
    const s2a_json_values tools_values = {F_TOOLS, 3, read_tool, &tools};
    const char *why;
    int j;

    memset(&tools, 0, sizeof(tools));
    tools.tools = apr_array_make(r->pool, 32, sizeof(chat_tool));
    /* the first scan refused a key met twice: only the array's JSON can be at fault here */
    if (s2a_json_scan_object_values(r->pool, raw, len, fields, F_COUNT, &tools_values, r->f,
                                    &why) != 0) {
        return s2a_openai_refuse(
            r->err, NULL, apr_pstrcat(r->pool, "The request body is not valid JSON: ", why, NULL));
    }
    /* each tool read by the scan that checked it: a schema can be long */
    for (j = 0; j < tools.tools->nelts; j++) {
        const chat_tool *t = &APR_ARRAY_IDX(tools.tools, j, chat_tool);
        if (t->tool.type != S2A_JSON_OBJECT || !s2a_json_string_equals(&t->type, "function")) {
            return refuse(r, apr_psprintf(r->pool, "tools[%d].type", j),
                          "only function tools are taken here");
        }
        if (t->function.type != S2A_JSON_OBJECT) {
            return refuse(r, apr_psprintf(r->pool, "tools[%d]", j),
                          "a function tool needs its function object");
        }
        s2a_openai_put(r->b, j ? "," : ",\"tools\":[");
        if (s2a_openai_tool(r->b, &t->fn[0], &t->fn[1], &t->fn[2]) != 0) {
            return refuse(r, apr_psprintf(r->pool, "tools[%d].function", j),
                          "a function needs a string name, and a string description and an "
                          "object of parameters where given");
        }
    }
    if (j) {
        S2A_PUT(r->b, "]");
    }
    *count = j;
    return 0;
}

/* tools and tool_choice; *forced when the choice makes the model call one. */
static int write_tools(reader *r, const char *raw, apr_size_t len, int *count, int *forced)
{
    apr_size_t from = r->b->len;
    const s2a_json_span *tools = &r->f[F_TOOLS];
    s2a_json_span name;
    s2a_openai_choice choice;
    int j = 0, serial = r->f[F_PARALLEL_TOOL_CALLS].type == S2A_JSON_FALSE;

    *count = *forced = 0;
    choice = s2a_openai_tool_choice(&r->f[F_TOOL_CHOICE], &name);
    if (choice == S2A_TOOL_CHOICE_INVALID) {
        return refuse(r, "tool_choice",
                      "must be auto, none, required or {\"type\":\"function\",\"function\":"
                      "{\"name\":...}}");
    }
    if (!present(tools)) {
        return 0;
    }
    if (tools->type != S2A_JSON_ARRAY) {
        return refuse(r, "tools", "must be an array");
    }
    if (!s2a_tools_memo_get(r->memo, S2A_TOOLS_MEMO_CHAT, tools->p, tools->len, r->b, NULL, &j)) {
        if (translate_tools(r, raw, len, &j) != 0) {
            return -1;
        }
        s2a_tools_memo_put(r->memo, S2A_TOOLS_MEMO_CHAT, tools->p, tools->len, r->b->data + from,
                           r->b->len - from, NULL, 0, j);
    }
    if (!j) {
        return 0; /* an empty list: no tools, and no choice among them */
    }
    s2a_openai_mark(r->b, from, ",\"tools\":", &r->marks->tools);
    *count = j;
    /* read again: the loop reused `name` */
    choice = s2a_openai_tool_choice(&r->f[F_TOOL_CHOICE], &name);
    s2a_openai_write_tool_choice(r->b, choice, &name, serial, forced);
    return 0;
}

static int write_stop(reader *r)
{
    const s2a_json_span *stop = &r->f[F_STOP];
    s2a_json_span v;
    apr_size_t pos = 0;
    int count = 0;

    if (stop->type == S2A_JSON_STRING) {
        if (stop->len > 2) {
            S2A_PUT(r->b, ",\"stop_sequences\":[");
            s2a_openai_put_span(r->b, stop);
            S2A_PUT(r->b, "]");
        }
        return 0;
    }
    if (!present(stop)) {
        return 0;
    }
    if (stop->type != S2A_JSON_ARRAY) {
        return refuse(r, "stop", "must be a string or an array of strings");
    }
    while (s2a_json_array_next(stop, &pos, &v)) {
        if (v.type != S2A_JSON_STRING) {
            return refuse(r, "stop", "must be a string or an array of strings");
        }
        if (v.len > 2) {
            s2a_openai_put(r->b, count++ ? "," : ",\"stop_sequences\":[");
            s2a_openai_put_span(r->b, &v);
        }
    }
    if (count) {
        S2A_PUT(r->b, "]");
    }
    return 0;
}

/* max_completion_tokens, else max_tokens, else the default. */
static int read_max_tokens(reader *r, apr_int64_t *max)
{
    int k = present(&r->f[F_MAX_COMPLETION_TOKENS]) ? F_MAX_COMPLETION_TOKENS : F_MAX_TOKENS;

    *max = S2A_OPENAI_CHAT_MAX_TOKENS;
    if (present(&r->f[k]) && (!s2a_openai_integer(&r->f[k], max) || *max < 1)) {
        return refuse(r, fields[k], "must be a positive integer");
    }
    return 0;
}

int s2a_chat_request_read(apr_pool_t *p, const char *raw, apr_size_t len, s2a_tools_memo *memo,
                          s2a_chat_request *out, s2a_openai_error *err)
{
    reader r;
    s2a_buf b;
    s2a_openai_msgs m;
    s2a_openai_tail tail;
    s2a_json_span include;
    const char *why;
    int forced, rc;

    memset(out, 0, sizeof(*out));
    memset(&r, 0, sizeof(r));
    r.pool = p;
    r.marks = &out->marks;
    r.b = &b;
    r.err = err;
    r.memo = memo;
    if ((rc = s2a_json_scan_object_some(p, raw, len, fields, F_COUNT, F_TOOLS, r.f, &why)) != 0) {
        return s2a_openai_refuse(
            err, NULL,
            rc == -2 ? why : apr_pstrcat(p, "The request body is not valid JSON: ", why, NULL));
    }
    if (r.f[F_MODEL].type != S2A_JSON_STRING ||
        !(out->model = s2a_json_string_dup(p, &r.f[F_MODEL])) || !*out->model) {
        return refuse(&r, "model", "a non-empty string is required");
    }
    if (r.f[F_MESSAGES].type != S2A_JSON_ARRAY) {
        return refuse(&r, "messages", "an array is required");
    }
    if (check_refusals(&r) != 0) {
        return -1;
    }
    memset(&tail, 0, sizeof(tail));
    tail.temperature = r.f[F_TEMPERATURE];
    tail.top_p = r.f[F_TOP_P];
    if (s2a_openai_check_sampling(&tail.temperature, &tail.top_p, err) != 0 ||
        read_max_tokens(&r, &tail.max_tokens) != 0) {
        return -1;
    }
    if ((tail.budget = s2a_openai_budget(&r.f[F_REASONING_EFFORT])) < 0) {
        return refuse(&r, "reasoning_effort", "must be none, minimal, low, medium, high or xhigh");
    }
    tail.user = r.f[F_USER].type == S2A_JSON_STRING ? r.f[F_USER] : r.f[F_SAFETY_IDENTIFIER];
    if (tail.user.type == S2A_JSON_STRING && tail.user.len <= 2) {
        tail.user.type = S2A_JSON_NONE;
    }
    tail.adaptive = s2a_openai_adaptive(out->model);
    out->stream = tail.stream = r.f[F_STREAM].type == S2A_JSON_TRUE;
    out->include_usage = out->stream && r.f[F_STREAM_OPTIONS].type == S2A_JSON_OBJECT &&
                         s2a_json_object_get(&r.f[F_STREAM_OPTIONS], "include_usage", &include) &&
                         include.type == S2A_JSON_TRUE;

    /* the body is about the size of the request */
    s2a_buf_init(&b, p, len + 512);
    S2A_PUT(&b, "{\"model\":");
    s2a_openai_put_span(&b, &r.f[F_MODEL]);
    s2a_openai_mark(&b, 0, "{\"model\":", &out->marks.model);
    if (write_system(&r) != 0 || write_messages(&r, &m) != 0 ||
        write_tools(&r, raw, len, &out->tools, &forced) != 0 || write_stop(&r) != 0) {
        return -1;
    }
    tail.forced_tool = forced;
    s2a_openai_write_tail(&b, &tail, &m, &out->marks, &out->max_tokens, &out->thinking);
    S2A_PUT(&b, "}");
    out->body = b.data;
    out->len = b.len;
    return 0;
}

/* ---- A streamed answer ---------------------------------------------------------------------- */

struct s2a_chat_stream {
    apr_pool_t *pool;
    const s2a_chat_request *req;
    apr_int64_t created;
    s2a_sse *sse;
    s2a_buf *out;       /* the caller's, during a feed */
    s2a_buf open;       /* "data: ", a chunk's members, its delta's name */
    apr_size_t members; /* where "choices" begins in open */
    s2a_buf close;      /* the end of a chunk without a finish_reason */
    s2a_usage usage;
    int started;          /* the first chunk went out */
    int finished;         /* the chunk with the finish_reason went out */
    int done;             /* [DONE] went out */
    s2a_block_kind block; /* the open content block */
    int tools;            /* tool calls begun */
    int args;             /* the open tool call had arguments */
    apr_size_t dropped;   /* events lost to the size cap, as last seen */
};

/* The chunks' common members, once the message's id is known (or not). */
static void start(s2a_chat_stream *s, const s2a_json_span *id)
{
    char *text;

    S2A_PUT(&s->open, "data: {\"id\":\"chatcmpl-");
    if (id && id->type == S2A_JSON_STRING && (text = s2a_json_string_dup(s->pool, id))) {
        s2a_openai_put_escaped(&s->open, text, strlen(text));
    }
    S2A_PUT(&s->open, "\",\"object\":\"chat.completion.chunk\",\"created\":");
    s2a_openai_put_int(&s->open, s->created);
    S2A_PUT(&s->open, ",\"model\":");
    s2a_openai_put_string(&s->open, s->req->model);
    S2A_PUT(&s->open, ",\"system_fingerprint\":null,");
    s->members = s->open.len;
    S2A_PUT(&s->open, "\"choices\":[{\"index\":0,\"delta\":");
    /* every chunk begins and most end the same way: written once */
    S2A_PUT(&s->close, ",\"logprobs\":null,\"finish_reason\":null}]");
    if (s->req->include_usage) {
        S2A_PUT(&s->close, ",\"usage\":null");
    }
    S2A_PUT(&s->close, "}\n\n");
    s->started = 1;
}

/* `data: ` and a chunk up to its delta's value. */
static void chunk_open(s2a_chat_stream *s)
{
    s2a_buf_append(s->out, s->open.data, s->open.len);
}

static void chunk_close(s2a_chat_stream *s, const char *finish)
{
    if (!finish) {
        s2a_buf_append(s->out, s->close.data, s->close.len);
        return;
    }
    S2A_PUT(s->out, ",\"logprobs\":null,\"finish_reason\":");
    s2a_openai_put_string(s->out, finish);
    S2A_PUT(s->out, "}]");
    if (s->req->include_usage) {
        S2A_PUT(s->out, ",\"usage\":null");
    }
    S2A_PUT(s->out, "}\n\n");
}

/* A chunk whose delta is {"<member>":<string span>}, `opening` being {"<member>":. */
static void chunk_string(s2a_chat_stream *s, const char *opening, const s2a_json_span *v)
{
    chunk_open(s);
    s2a_buf_append(s->out, opening, strlen(opening));
    s2a_openai_put_span(s->out, v);
    S2A_PUT(s->out, "}");
    chunk_close(s, NULL);
}

static void chunk_arguments(s2a_chat_stream *s, const char *text, apr_size_t n)
{
    chunk_open(s);
    S2A_PUT(s->out, "{\"tool_calls\":[{\"index\":");
    s2a_openai_put_int(s->out, s->tools - 1);
    S2A_PUT(s->out, ",\"function\":{\"arguments\":");
    s2a_buf_append(s->out, text, n);
    S2A_PUT(s->out, "}}]}");
    chunk_close(s, NULL);
}

static void put_usage(s2a_buf *b, const s2a_usage *u)
{
    s2a_openai_tokens t;

    s2a_openai_tokens_of(u, &t);
    S2A_PUT(b, "\"usage\":{\"prompt_tokens\":");
    s2a_openai_put_int(b, t.prompt);
    S2A_PUT(b, ",\"completion_tokens\":");
    s2a_openai_put_int(b, t.completion);
    S2A_PUT(b, ",\"total_tokens\":");
    s2a_openai_put_int(b, t.total);
    S2A_PUT(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    s2a_openai_put_int(b, t.cached);
    S2A_PUT(b, "},\"completion_tokens_details\":{\"reasoning_tokens\":0}}");
}

static void finish(s2a_chat_stream *s, const char *reason)
{
    if (s->finished) {
        return;
    }
    chunk_open(s);
    S2A_PUT(s->out, "{}");
    chunk_close(s, reason);
    s->finished = 1;
}

static void done(s2a_chat_stream *s)
{
    S2A_PUT(s->out, "data: [DONE]\n\n");
    s->done = 1;
}

static void complete(s2a_chat_stream *s)
{
    finish(s, "stop");
    if (s->req->include_usage) {
        s2a_buf_append(s->out, s->open.data, s->members);
        S2A_PUT(s->out, "\"choices\":[],");
        put_usage(s->out, &s->usage);
        S2A_PUT(s->out, "}\n\n");
    }
    done(s);
}

static void fail(s2a_chat_stream *s, const s2a_openai_error *e)
{
    apr_size_t n;
    const char *body = s2a_openai_error_body(s->pool, e, &n);

    S2A_PUT(s->out, "data: ");
    s2a_buf_append(s->out, body, n);
    S2A_PUT(s->out, "\n\n");
    done(s);
}

/* An event past the size cap was lost: what follows would not add up.
 * Looked at before each event and after each feed, so that the failure
 * comes at the same place whatever the splits. */
static int lost_event(s2a_chat_stream *s)
{
    s2a_openai_error e;

    if (s2a_sse_dropped(s->sse) == s->dropped) {
        return 0;
    }
    s->dropped = s2a_sse_dropped(s->sse);
    s2a_openai_error_of_status(&e, 502, "The upstream sent an event too large to translate");
    fail(s, &e);
    return 1;
}

static void on_event(void *baton, const char *name, apr_size_t nlen, const char *data,
                     apr_size_t dlen)
{
    s2a_chat_stream *s = baton;
    s2a_anthropic_event ev;
    s2a_openai_error e;

    if (s->done || lost_event(s)) {
        return;
    }
    s2a_anthropic_event_read(name, nlen, data, dlen, &ev);
    s2a_anthropic_event_usage(&s->usage, &ev, name, nlen, data, dlen);
    if (ev.kind == S2A_AEV_OTHER) {
        return;
    }
    if (ev.kind == S2A_AEV_PING) {
        S2A_PUT(s->out, ": ping\n\n");
        return;
    }
    if (ev.kind == S2A_AEV_ERROR) {
        s2a_openai_error_of_anthropic(s->pool, 500, data, dlen, &e);
        fail(s, &e);
        return;
    }
    if (!s->started) {
        start(s, ev.kind == S2A_AEV_MESSAGE_START ? &ev.id : NULL);
        chunk_open(s);
        S2A_PUT(s->out, "{\"role\":\"assistant\",\"content\":\"\"}");
        chunk_close(s, NULL);
    }
    switch (ev.kind) {
    case S2A_AEV_BLOCK_START:
        s->block = ev.block;
        if (ev.block == S2A_BLOCK_TOOL_USE) {
            s->tools++;
            s->args = 0;
            chunk_open(s);
            S2A_PUT(s->out, "{\"tool_calls\":[{\"index\":");
            s2a_openai_put_int(s->out, s->tools - 1);
            S2A_PUT(s->out, ",\"id\":");
            if (ev.id.type == S2A_JSON_STRING) {
                s2a_openai_put_span(s->out, &ev.id);
            } else {
                S2A_PUT(s->out, "\"\"");
            }
            S2A_PUT(s->out, ",\"type\":\"function\",\"function\":{\"name\":");
            if (ev.name.type == S2A_JSON_STRING) {
                s2a_openai_put_span(s->out, &ev.name);
            } else {
                S2A_PUT(s->out, "\"\"");
            }
            S2A_PUT(s->out, ",\"arguments\":\"\"}}]}");
            chunk_close(s, NULL);
        } else if (ev.block == S2A_BLOCK_TEXT && ev.text.len > 2) {
            chunk_string(s, "{\"content\":", &ev.text);
        } else if (ev.block == S2A_BLOCK_THINKING && ev.text.len > 2) {
            chunk_string(s, "{\"reasoning_content\":", &ev.text);
        }
        break;
    case S2A_AEV_BLOCK_DELTA:
        if (ev.text.len <= 2) {
            break; /* nothing added */
        }
        if (ev.block == S2A_BLOCK_TEXT) {
            chunk_string(s, "{\"content\":", &ev.text);
        } else if (ev.block == S2A_BLOCK_THINKING) {
            chunk_string(s, "{\"reasoning_content\":", &ev.text);
        } else if (ev.block == S2A_BLOCK_TOOL_USE && s->block == S2A_BLOCK_TOOL_USE) {
            chunk_arguments(s, ev.text.p, ev.text.len);
            s->args = 1;
        }
        break;
    case S2A_AEV_BLOCK_STOP:
        if (s->block == S2A_BLOCK_TOOL_USE && !s->args) {
            chunk_arguments(s, "\"{}\"", 4); /* a call without arguments still has its object */
        }
        s->block = S2A_BLOCK_OTHER;
        break;
    case S2A_AEV_MESSAGE_DELTA:
        if (ev.stop.type == S2A_JSON_STRING) {
            finish(s, s2a_openai_finish_reason(&ev.stop));
        }
        break;
    case S2A_AEV_MESSAGE_STOP:
        complete(s);
        break;
    default:
        break;
    }
}

s2a_chat_stream *s2a_chat_stream_create(apr_pool_t *p, const s2a_chat_request *req,
                                        apr_int64_t created)
{
    s2a_chat_stream *s = apr_pcalloc(p, sizeof(*s));

    s->pool = p;
    s->req = req;
    s->created = created;
    s2a_buf_init(&s->open, p, 256);
    s2a_buf_init(&s->close, p, 64);
    s->sse = s2a_sse_create(p, S2A_ANSWER_MAX_EVENT, on_event, s);
    return s;
}

void s2a_chat_stream_feed(s2a_chat_stream *s, const char *data, apr_size_t n, s2a_buf *out)
{
    if (s->done || !n) {
        return;
    }
    s->out = out;
    s2a_sse_feed(s->sse, data, n);
    if (!s->done) {
        lost_event(s);
    }
    s->out = NULL;
}

void s2a_chat_stream_end(s2a_chat_stream *s, s2a_buf *out)
{
    s2a_openai_error e;

    if (s->done) {
        return;
    }
    s->out = out;
    if (s->finished) {
        complete(s); /* only message_stop was missing */
    } else {
        s2a_openai_error_of_status(&e, 502, "The upstream's answer ended before it was complete");
        fail(s, &e);
    }
    s->out = NULL;
}

int s2a_chat_stream_done(const s2a_chat_stream *s)
{
    return s->done;
}

const s2a_usage *s2a_chat_stream_usage(const s2a_chat_stream *s)
{
    return &s->usage;
}

/* ---- A whole answer ------------------------------------------------------------------------- */

/* The contents of a string span (no quotes), appended. */
static void put_contents(s2a_buf *b, const s2a_json_span *v)
{
    s2a_buf_append(b, v->p + 1, v->len - 2);
}

char *s2a_chat_answer(apr_pool_t *p, const s2a_chat_request *req, apr_int64_t created,
                      const char *json, apr_size_t len, apr_size_t *out_len)
{
    static const char *const keys[] = {"id", "type", "content", "stop_reason", "usage"};
    s2a_json_span v[5], block, type, text, id, name, input;
    s2a_buf b, content, reasoning, calls;
    s2a_usage u;
    apr_size_t pos = 0;
    const char *why;
    char *msg_id;
    int texts = 0, thoughts = 0, tools = 0;

    if (s2a_json_scan_object(NULL, json, len, keys, 5, v, &why) != 0 ||
        !s2a_openai_control_free(json, len) ||
        (v[1].type != S2A_JSON_NONE && !s2a_json_string_equals(&v[1], "message")) ||
        v[2].type != S2A_JSON_ARRAY) {
        return NULL;
    }
    s2a_buf_init(&content, p, len);
    s2a_buf_init(&reasoning, p, 0);
    s2a_buf_init(&calls, p, 0);
    while (s2a_json_array_next(&v[2], &pos, &block)) {
        if (block.type != S2A_JSON_OBJECT || !s2a_json_object_get(&block, "type", &type)) {
            continue;
        }
        if (s2a_json_string_equals(&type, "text") && s2a_json_object_get(&block, "text", &text) &&
            text.type == S2A_JSON_STRING) {
            put_contents(&content, &text);
            texts++;
        } else if (s2a_json_string_equals(&type, "thinking") &&
                   s2a_json_object_get(&block, "thinking", &text) && text.type == S2A_JSON_STRING) {
            put_contents(&reasoning, &text);
            thoughts++;
        } else if (s2a_json_string_equals(&type, "tool_use") &&
                   s2a_json_object_get(&block, "id", &id) && id.type == S2A_JSON_STRING &&
                   s2a_json_object_get(&block, "name", &name) && name.type == S2A_JSON_STRING) {
            if (!s2a_json_object_get(&block, "input", &input) || input.type != S2A_JSON_OBJECT) {
                input.p = "{}";
                input.len = 2;
            }
            s2a_openai_put(&calls, tools++ ? ",{\"id\":" : "{\"id\":");
            s2a_openai_put_span(&calls, &id);
            S2A_PUT(&calls, ",\"type\":\"function\",\"function\":{\"name\":");
            s2a_openai_put_span(&calls, &name);
            S2A_PUT(&calls, ",\"arguments\":\"");
            s2a_openai_put_escaped(&calls, input.p, input.len);
            S2A_PUT(&calls, "\"}}");
        }
    }
    s2a_buf_init(&b, p, content.len + reasoning.len + calls.len + 512);
    S2A_PUT(&b, "{\"id\":\"chatcmpl-");
    if (v[0].type == S2A_JSON_STRING && (msg_id = s2a_json_string_dup(p, &v[0]))) {
        s2a_openai_put_escaped(&b, msg_id, strlen(msg_id));
    }
    S2A_PUT(&b, "\",\"object\":\"chat.completion\",\"created\":");
    s2a_openai_put_int(&b, created);
    S2A_PUT(&b, ",\"model\":");
    s2a_openai_put_string(&b, req->model);
    S2A_PUT(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (texts) {
        S2A_PUT(&b, "\"");
        s2a_buf_append(&b, content.data, content.len);
        S2A_PUT(&b, "\"");
    } else {
        S2A_PUT(&b, "null");
    }
    if (thoughts) {
        S2A_PUT(&b, ",\"reasoning_content\":\"");
        s2a_buf_append(&b, reasoning.data, reasoning.len);
        S2A_PUT(&b, "\"");
    }
    if (tools) {
        S2A_PUT(&b, ",\"tool_calls\":[");
        s2a_buf_append(&b, calls.data, calls.len);
        S2A_PUT(&b, "]");
    }
    S2A_PUT(&b, ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":");
    s2a_openai_put_string(&b, s2a_openai_finish_reason(&v[3]));
    S2A_PUT(&b, "}],");
    s2a_usage_read(&u, &v[4]);
    put_usage(&b, &u);
    S2A_PUT(&b, ",\"system_fingerprint\":null}");
    *out_len = b.len;
    return b.data;
}
