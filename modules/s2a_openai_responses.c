/* The Responses API in front of the Messages API: see s2a_openai_responses.h. */
#include <string.h>

#include <apr_strings.h>

#include "s2a_answer.h"
#include "s2a_openai_responses.h"
#include "s2a_sse.h"

/* ---- The request ---------------------------------------------------------------------------- */

enum {
    F_MODEL,
    F_INPUT,
    F_INSTRUCTIONS,
    F_TOOL_CHOICE,
    F_PARALLEL_TOOL_CALLS,
    F_MAX_OUTPUT_TOKENS,
    F_TEMPERATURE,
    F_TOP_P,
    F_REASONING,
    F_TEXT,
    F_STREAM,
    F_STORE,
    F_BACKGROUND,
    F_PREVIOUS_RESPONSE_ID,
    F_CONVERSATION,
    F_PROMPT,
    F_USER,
    F_SAFETY_IDENTIFIER,
    F_TOP_LOGPROBS,
    F_INCLUDE,
    F_TOOLS, /* last: the first scan only delimits it */
    F_COUNT
};

/* Every container read is asked for by name: the scanner then checks it
 * in full, so that whatever is copied from it is JSON. "tools" is checked
 * by a second scan, needed only when the memo does not know the array. */
static const char *const fields[F_COUNT] = {"model",
                                            "input",
                                            "instructions",
                                            "tool_choice",
                                            "parallel_tool_calls",
                                            "max_output_tokens",
                                            "temperature",
                                            "top_p",
                                            "reasoning",
                                            "text",
                                            "stream",
                                            "store",
                                            "background",
                                            "previous_response_id",
                                            "conversation",
                                            "prompt",
                                            "user",
                                            "safety_identifier",
                                            "top_logprobs",
                                            "include",
                                            "tools"};

typedef struct {
    apr_pool_t *pool;
    s2a_buf *b;
    s2a_openai_error *err;
    s2a_json_span f[F_COUNT];
    s2a_body_marks *marks; /* where the body's fields went */
    apr_array_header_t *custom;
    s2a_tools_memo *memo; /* NULL: none */
    const char *raw;      /* the client's body, for the tools' own scan */
    apr_size_t len;
} reader;

static int present(const s2a_json_span *v)
{
    return v->type != S2A_JSON_NONE && v->type != S2A_JSON_NULL;
}

static int is_bool(const s2a_json_span *v)
{
    return v->type == S2A_JSON_TRUE || v->type == S2A_JSON_FALSE;
}

static int refuse(reader *r, const char *param, const char *message)
{
    return s2a_openai_refuse(r->err, param, apr_pstrcat(r->pool, param, ": ", message, NULL));
}

/* A refusal about input[i], input[i].what or input[i].what[j] (j < 0: none). */
static int refuse_at(reader *r, int i, const char *what, int j, const char *message)
{
    const char *param = !what   ? apr_psprintf(r->pool, "input[%d]", i)
                        : j < 0 ? apr_psprintf(r->pool, "input[%d].%s", i, what)
                                : apr_psprintf(r->pool, "input[%d].%s[%d]", i, what, j);
    return refuse(r, param, message);
}

/* The member `key` of obj, NONE when absent. */
static s2a_json_span member(const s2a_json_span *obj, const char *key)
{
    s2a_json_span v;

    if (obj->type != S2A_JSON_OBJECT || !s2a_json_object_get(obj, key, &v)) {
        v.type = S2A_JSON_NONE;
        v.p = NULL;
        v.len = 0;
    }
    return v;
}

/* What nothing here keeps or gives, and the types needed. */
static int check_refusals(reader *r)
{
    const s2a_json_span *f = r->f;
    s2a_json_span v;
    apr_size_t pos = 0;
    apr_int64_t n;

    if (present(&f[F_PREVIOUS_RESPONSE_ID])) {
        return refuse(r, "previous_response_id",
                      "no response is stored here; send the whole conversation in input with "
                      "store false");
    }
    if (present(&f[F_CONVERSATION])) {
        return refuse(r, "conversation", "no conversation is stored here; send it in input");
    }
    if (present(&f[F_PROMPT])) {
        return refuse(r, "prompt", "stored prompts are not available here");
    }
    if (f[F_STORE].type == S2A_JSON_TRUE) {
        return refuse(r, "store", "nothing is stored here; send store false");
    }
    if (f[F_BACKGROUND].type == S2A_JSON_TRUE) {
        return refuse(r, "background", "background responses are not available here");
    }
    if (present(&f[F_STORE]) && !is_bool(&f[F_STORE])) {
        return refuse(r, "store", "must be a boolean");
    }
    if (present(&f[F_BACKGROUND]) && !is_bool(&f[F_BACKGROUND])) {
        return refuse(r, "background", "must be a boolean");
    }
    if (present(&f[F_STREAM]) && !is_bool(&f[F_STREAM])) {
        return refuse(r, "stream", "must be a boolean");
    }
    if (present(&f[F_PARALLEL_TOOL_CALLS]) && !is_bool(&f[F_PARALLEL_TOOL_CALLS])) {
        return refuse(r, "parallel_tool_calls", "must be a boolean");
    }
    if (present(&f[F_TOP_LOGPROBS]) && (!s2a_openai_integer(&f[F_TOP_LOGPROBS], &n) || n != 0)) {
        return refuse(r, "top_logprobs", "log probabilities are not available here");
    }
    if (present(&f[F_INCLUDE])) {
        if (f[F_INCLUDE].type != S2A_JSON_ARRAY) {
            return refuse(r, "include", "must be an array of strings");
        }
        while (s2a_json_array_next(&f[F_INCLUDE], &pos, &v)) {
            if (v.type != S2A_JSON_STRING) {
                return refuse(r, "include", "must be an array of strings");
            }
            if (s2a_json_string_equals(&v, "message.output_text.logprobs")) {
                return refuse(r, "include", "log probabilities are not available here");
            }
        }
    }
    if (present(&f[F_USER]) && f[F_USER].type != S2A_JSON_STRING) {
        return refuse(r, "user", "must be a string");
    }
    if (present(&f[F_SAFETY_IDENTIFIER]) && f[F_SAFETY_IDENTIFIER].type != S2A_JSON_STRING) {
        return refuse(r, "safety_identifier", "must be a string");
    }
    if (present(&f[F_INSTRUCTIONS]) && f[F_INSTRUCTIONS].type != S2A_JSON_STRING) {
        return refuse(r, "instructions", "must be a string");
    }
    return 0;
}

/* An input item's type: its "type", or "message" for one with a role only. */
static int item_type(const s2a_json_span *item, s2a_json_span *type)
{
    static const s2a_json_span message = {"\"message\"", 9, S2A_JSON_STRING};

    *type = member(item, "type");
    if (type->type == S2A_JSON_NONE && member(item, "role").type != S2A_JSON_NONE) {
        *type = message;
    }
    return type->type == S2A_JSON_STRING;
}

static int role_is_system(const s2a_json_span *role)
{
    return s2a_json_string_equals(role, "system") || s2a_json_string_equals(role, "developer");
}

/* Opens the system array on its first block. */
static void system_block(reader *r, int *count)
{
    s2a_openai_put(r->b, (*count)++ ? "," : ",\"system\":[");
}

/* The text parts of a system or developer message, as system blocks. */
static int system_blocks(reader *r, int i, const s2a_json_span *content, int *count)
{
    s2a_json_span part, type, text;
    apr_size_t pos = 0;
    int j = 0;

    if (content->type == S2A_JSON_STRING) {
        if (!s2a_openai_blank(content)) {
            system_block(r, count);
            s2a_openai_text_block(r->b, content, NULL);
        }
        return 0;
    }
    if (content->type != S2A_JSON_ARRAY) {
        return refuse_at(r, i, "content", -1, "must be a string or an array of text parts");
    }
    for (; s2a_json_array_next(content, &pos, &part); j++) {
        type = member(&part, "type");
        text = member(&part, "text");
        if (!s2a_json_string_equals(&type, "input_text") || text.type != S2A_JSON_STRING) {
            return refuse_at(r, i, "content", j, "a system message takes input_text parts only");
        }
        if (!s2a_openai_blank(&text)) {
            system_block(r, count);
            s2a_openai_text_block(r->b, &text, NULL);
        }
    }
    return 0;
}

/* The system prompt: instructions, the system and developer messages in
 * order, then the instruction text.format asks for. Checks on the way that
 * every item is an object with a type. */
static int write_system(reader *r)
{
    apr_size_t from = r->b->len;
    const s2a_json_span *input = &r->f[F_INPUT], *text = &r->f[F_TEXT];
    s2a_json_span item, type, role, content, format, ftype, schema;
    apr_size_t pos = 0;
    int i = 0, count = 0;

    if (r->f[F_INSTRUCTIONS].type == S2A_JSON_STRING && !s2a_openai_blank(&r->f[F_INSTRUCTIONS])) {
        system_block(r, &count);
        s2a_openai_text_block(r->b, &r->f[F_INSTRUCTIONS], NULL);
    }
    for (; input->type == S2A_JSON_ARRAY && s2a_json_array_next(input, &pos, &item); i++) {
        if (item.type != S2A_JSON_OBJECT || !item_type(&item, &type)) {
            return refuse_at(r, i, NULL, -1, "must be an object with a type");
        }
        if (!s2a_json_string_equals(&type, "message")) {
            continue;
        }
        role = member(&item, "role");
        if (role.type != S2A_JSON_STRING) {
            return refuse_at(r, i, "role", -1, "must be a string");
        }
        if (role_is_system(&role)) {
            content = member(&item, "content");
            if (system_blocks(r, i, &content, &count) != 0) {
                return -1;
            }
        }
    }
    if (present(text)) {
        if (text->type != S2A_JSON_OBJECT) {
            return refuse(r, "text", "must be an object");
        }
        format = member(text, "format");
        if (present(&format)) {
            ftype = member(&format, "type");
            if (ftype.type != S2A_JSON_STRING) {
                return refuse(r, "text.format", "must be an object with a type");
            }
            if (s2a_json_string_equals(&ftype, "json_object") ||
                s2a_json_string_equals(&ftype, "json_schema")) {
                schema.type = S2A_JSON_NONE;
                if (s2a_json_string_equals(&ftype, "json_schema")) {
                    schema = member(&format, "schema");
                }
                if (present(&schema) && schema.type != S2A_JSON_OBJECT) {
                    return refuse(r, "text.format.schema", "must be an object");
                }
                system_block(r, &count);
                s2a_openai_json_instruction(r->b, &schema);
            } else if (!s2a_json_string_equals(&ftype, "text")) {
                return refuse(r, "text.format", "type must be text, json_object or json_schema");
            }
        }
    }
    if (count) {
        S2A_PUT(r->b, "]");
        s2a_openai_mark(r->b, from, ",\"system\":", &r->marks->system);
    }
    return 0;
}

/* Part j of input[i]'s content as a block of a user message (NULL m:
 * inside a tool_result, where *written counts the blocks for the commas). */
static int user_part(reader *r, s2a_openai_msgs *m, const s2a_json_span *part, int i,
                     const char *what, int j, int *written)
{
    s2a_json_span type = member(part, "type"), v, none;
    const char *why;
    int document;

    none.type = S2A_JSON_NONE;
    if (part->type != S2A_JSON_OBJECT || type.type != S2A_JSON_STRING) {
        return refuse_at(r, i, what, j, "must be an object with a type");
    }
    if (s2a_json_string_equals(&type, "input_text") ||
        s2a_json_string_equals(&type, "output_text")) {
        v = member(part, "text");
        if (v.type != S2A_JSON_STRING) {
            return refuse_at(r, i, what, j, "a text part needs its text as a string");
        }
        if (s2a_openai_blank(&v)) {
            return 0; /* the upstream refuses blank text blocks */
        }
        if (m) {
            s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_TEXT, 0);
        } else if ((*written)++) {
            S2A_PUT(r->b, ",");
        }
        s2a_openai_text_block(r->b, &v, &none);
        return 0;
    }
    if (s2a_json_string_equals(&type, "input_image") ||
        s2a_json_string_equals(&type, "input_file")) {
        document = s2a_json_string_equals(&type, "input_file");
        v = member(part, document ? "file_data" : "image_url");
        if (document && v.type != S2A_JSON_STRING) {
            v = member(part, "file_url");
        }
        if (v.type != S2A_JSON_STRING) {
            return refuse_at(r, i, what, j,
                             document ? "files are taken as file_data or file_url (no file ids)"
                                      : "images are taken as image_url (no file ids)");
        }
        if (m) {
            s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_OTHER, 0);
        } else if ((*written)++) {
            S2A_PUT(r->b, ",");
        }
        if (s2a_openai_image_block(r->pool, r->b, &v, document, &none, &why) != 0) {
            return refuse_at(r, i, what, j, why);
        }
        return 0;
    }
    if (s2a_json_string_equals(&type, "input_audio")) {
        return refuse_at(r, i, what, j, "audio input is not available here");
    }
    return refuse_at(r, i, what, j, "type must be input_text, input_image or input_file");
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
        if (user_part(r, m, &part, i, "content", j, NULL) != 0) {
            return -1;
        }
    }
    return 0;
}

static int assistant_message(reader *r, s2a_openai_msgs *m, int i, const s2a_json_span *content)
{
    s2a_json_span part, type, text;
    apr_size_t pos = 0;
    int j = 0;

    if (content->type == S2A_JSON_STRING) {
        if (!s2a_openai_blank(content)) {
            s2a_openai_msgs_block(m, S2A_ROLE_ASSISTANT, S2A_BLOCK_TEXT, 0);
            s2a_openai_text_block(r->b, content, NULL);
        }
        return 0;
    }
    if (content->type != S2A_JSON_ARRAY) {
        return refuse_at(r, i, "content", -1, "must be a string or an array of parts");
    }
    for (; s2a_json_array_next(content, &pos, &part); j++) {
        type = member(&part, "type");
        if (s2a_json_string_equals(&type, "output_text") ||
            s2a_json_string_equals(&type, "input_text")) {
            text = member(&part, "text");
        } else if (s2a_json_string_equals(&type, "refusal")) {
            text = member(&part, "refusal");
        } else {
            return refuse_at(r, i, "content", j,
                             "an assistant message takes output_text and refusal parts");
        }
        if (text.type != S2A_JSON_STRING) {
            return refuse_at(r, i, "content", j, "the part's text must be a string");
        }
        if (!s2a_openai_blank(&text)) {
            s2a_openai_msgs_block(m, S2A_ROLE_ASSISTANT, S2A_BLOCK_TEXT, 0);
            s2a_openai_text_block(r->b, &text, NULL);
        }
    }
    return 0;
}

/* A reasoning item: the thinking block it was made from, or nothing when
 * it carries no encrypted_content (thinking goes back signed or not at
 * all). */
static int reasoning_item(reader *r, s2a_openai_msgs *m, int i, const s2a_json_span *item)
{
    static const char prefix[] = S2A_RESPONSES_REDACTED;
    s2a_json_span enc = member(item, "encrypted_content"), summary = member(item, "summary"), part,
                  text;
    apr_size_t pos = 0, plen = sizeof(prefix) - 1;
    int j = 0;

    if (!present(&enc)) {
        return 0;
    }
    if (enc.type != S2A_JSON_STRING) {
        return refuse_at(r, i, "encrypted_content", -1, "must be a string");
    }
    if (enc.len - 2 >= plen && !memcmp(enc.p + 1, prefix, plen)) {
        s2a_openai_msgs_block(m, S2A_ROLE_ASSISTANT, S2A_BLOCK_REDACTED_THINKING, 0);
        S2A_PUT(r->b, "{\"type\":\"redacted_thinking\",\"data\":\"");
        s2a_buf_append(r->b, enc.p + 1 + plen, enc.len - 2 - plen);
        S2A_PUT(r->b, "\"}");
        return 0;
    }
    if (present(&summary) && summary.type != S2A_JSON_ARRAY) {
        return refuse_at(r, i, "summary", -1, "must be an array");
    }
    s2a_openai_msgs_block(m, S2A_ROLE_ASSISTANT, S2A_BLOCK_THINKING, 0);
    S2A_PUT(r->b, "{\"type\":\"thinking\",\"thinking\":\"");
    for (; summary.type == S2A_JSON_ARRAY && s2a_json_array_next(&summary, &pos, &part); j++) {
        text = member(&part, "text");
        if (text.type != S2A_JSON_STRING) {
            return refuse_at(r, i, "summary", j, "a summary part needs its text as a string");
        }
        s2a_buf_append(r->b, text.p + 1, text.len - 2);
    }
    S2A_PUT(r->b, "\",\"signature\":");
    s2a_openai_put_span(r->b, &enc);
    S2A_PUT(r->b, "}");
    return 0;
}

/* A function_call or custom_tool_call item: a tool_use block. */
static int call_item(reader *r, s2a_openai_msgs *m, int i, const s2a_json_span *item, int custom)
{
    s2a_json_span id = member(item, "call_id"), name = member(item, "name"),
                  arguments = member(item, "arguments"), input = member(item, "input");
    const char *why;

    s2a_openai_msgs_block(m, S2A_ROLE_ASSISTANT, S2A_BLOCK_TOOL_USE, 0);
    if (!custom) {
        if (s2a_openai_tool_use_block(r->pool, r->b, &id, &name, &arguments, &why) != 0) {
            return refuse_at(r, i, NULL, -1, why);
        }
        return 0;
    }
    if (name.type != S2A_JSON_STRING || input.type != S2A_JSON_STRING) {
        return refuse_at(r, i, NULL, -1, "a custom tool call needs its name and input as strings");
    }
    S2A_PUT(r->b, "{\"type\":\"tool_use\",\"id\":");
    if (!s2a_openai_put_tool_id(r->pool, r->b, &id)) {
        return refuse_at(r, i, "call_id", -1, "must be a string");
    }
    S2A_PUT(r->b, ",\"name\":");
    s2a_openai_put_span(r->b, &name);
    S2A_PUT(r->b, ",\"input\":{\"input\":");
    s2a_openai_put_span(r->b, &input);
    S2A_PUT(r->b, "}}");
    return 0;
}

/* A function_call_output or custom_tool_call_output item: a tool_result. */
static int output_item(reader *r, s2a_openai_msgs *m, int i, const s2a_json_span *item)
{
    s2a_json_span id = member(item, "call_id"), output = member(item, "output"), part;
    apr_size_t pos = 0, mark;
    int j = 0, written = 0;

    s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_OTHER, 1);
    S2A_PUT(r->b, "{\"type\":\"tool_result\",\"tool_use_id\":");
    if (!s2a_openai_put_tool_id(r->pool, r->b, &id)) {
        return refuse_at(r, i, "call_id", -1, "must be a string");
    }
    if (output.type == S2A_JSON_STRING) {
        if (output.len > 2) {
            S2A_PUT(r->b, ",\"content\":");
            s2a_openai_put_span(r->b, &output);
        }
    } else if (output.type == S2A_JSON_ARRAY) {
        mark = r->b->len;
        S2A_PUT(r->b, ",\"content\":[");
        for (; s2a_json_array_next(&output, &pos, &part); j++) {
            if (user_part(r, NULL, &part, i, "output", j, &written) != 0) {
                return -1;
            }
        }
        if (written) {
            S2A_PUT(r->b, "]");
        } else {
            r->b->len = mark; /* no content rather than an empty one */
        }
    } else if (present(&output)) {
        return refuse_at(r, i, "output", -1, "must be a string or an array of parts");
    }
    S2A_PUT(r->b, "}");
    return 0;
}

static int write_messages(reader *r, s2a_openai_msgs *m)
{
    const s2a_json_span *input = &r->f[F_INPUT];
    s2a_json_span item, type, role, content;
    apr_size_t pos = 0;
    int i = 0, rc;
    apr_size_t from = r->b->len;

    S2A_PUT(r->b, ",");
    s2a_openai_msgs_start(m, r->b);
    if (input->type == S2A_JSON_STRING) {
        if (!s2a_openai_blank(input)) {
            s2a_openai_msgs_block(m, S2A_ROLE_USER, S2A_BLOCK_TEXT, 0);
            s2a_openai_text_block(r->b, input, NULL);
        }
    }
    for (; input->type == S2A_JSON_ARRAY && s2a_json_array_next(input, &pos, &item); i++) {
        /* write_system checked each is an object with a type */
        item_type(&item, &type);
        if (s2a_json_string_equals(&type, "message")) {
            role = member(&item, "role");
            content = member(&item, "content");
            if (role_is_system(&role)) {
                rc = 0;
            } else if (s2a_json_string_equals(&role, "user")) {
                rc = user_message(r, m, i, &content);
            } else if (s2a_json_string_equals(&role, "assistant")) {
                rc = assistant_message(r, m, i, &content);
            } else {
                rc = refuse_at(r, i, "role", -1, "must be user, assistant, system or developer");
            }
        } else if (s2a_json_string_equals(&type, "reasoning")) {
            rc = reasoning_item(r, m, i, &item);
        } else if (s2a_json_string_equals(&type, "function_call")) {
            rc = call_item(r, m, i, &item, 0);
        } else if (s2a_json_string_equals(&type, "custom_tool_call")) {
            rc = call_item(r, m, i, &item, 1);
        } else if (s2a_json_string_equals(&type, "function_call_output") ||
                   s2a_json_string_equals(&type, "custom_tool_call_output")) {
            rc = output_item(r, m, i, &item);
        } else if (s2a_json_string_equals(&type, "item_reference")) {
            rc = refuse_at(r, i, "type", -1, "no item is stored here; send the item itself");
        } else {
            rc = refuse_at(r, i, "type", -1,
                           "must be message, reasoning, function_call, function_call_output, "
                           "custom_tool_call or custom_tool_call_output");
        }
        if (rc != 0) {
            return -1;
        }
    }
    s2a_openai_msgs_end(m);
    s2a_openai_mark(r->b, from, ",\"messages\":", &r->marks->messages);
    if (!m->messages) {
        return refuse(r, "input", "at least one user or assistant message is needed");
    }
    return 0;
}

/* A custom (free-form) tool: one string member "input", its grammar told
 * in the description. */
static int custom_tool(reader *r, const s2a_json_span *tool, int j)
{
    s2a_json_span name = member(tool, "name"), description = member(tool, "description"),
                  format = member(tool, "format"), syntax, definition;
    const char *text = "", *grammar, *kind, *decoded;

    if (name.type != S2A_JSON_STRING || !(decoded = s2a_json_string_dup(r->pool, &name)) ||
        (present(&description) && (description.type != S2A_JSON_STRING ||
                                   !(text = s2a_json_string_dup(r->pool, &description))))) {
        return refuse(r, apr_psprintf(r->pool, "tools[%d]", j),
                      "a custom tool needs a string name, and a string description if any");
    }
    *(const char **)apr_array_push(r->custom) = decoded;
    if (format.type == S2A_JSON_OBJECT) {
        syntax = member(&format, "syntax");
        definition = member(&format, "definition");
        if (definition.type == S2A_JSON_STRING &&
            (grammar = s2a_json_string_dup(r->pool, &definition))) {
            if (syntax.type != S2A_JSON_STRING || !(kind = s2a_json_string_dup(r->pool, &syntax))) {
                kind = "";
            }
            text = apr_pstrcat(r->pool, text, *text ? "\n\n" : "", "The input follows this ", kind,
                               *kind ? " grammar:\n" : "grammar:\n", grammar, NULL);
        }
    }
    S2A_PUT(r->b, "{\"name\":");
    s2a_openai_put_span(r->b, &name);
    if (*text) {
        S2A_PUT(r->b, ",\"description\":");
        s2a_openai_put_string(r->b, text);
    }
    S2A_PUT(r->b, ",\"input_schema\":{\"type\":\"object\",\"properties\":{\"input\":{\"type\":"
                  "\"string\"}},\"required\":[\"input\"]}}");
    return 0;
}

/* The tools of "tools", checked by a second scan of the body, written as
 * Messages tools (the custom ones' names in r->custom); *count of them. */
static int translate_tools(reader *r, int *count)
{
    static const char *const keys[] = {"type", "name", "description", "parameters"};
    const s2a_json_span *tools = &r->f[F_TOOLS];
    s2a_json_span tool, type, m[4];
    apr_size_t pos = 0;
    const char *why;
    int j = 0;

    /* the first scan refused a key met twice: only the array's JSON can be at fault here */
    if (s2a_json_scan_object(r->pool, r->raw, r->len, fields, F_COUNT, r->f, &why) != 0) {
        return s2a_openai_refuse(
            r->err, NULL, apr_pstrcat(r->pool, "The request body is not valid JSON: ", why, NULL));
    }
    /* each tool read in the pass that finds its end: a schema can be long */
    for (; s2a_json_array_next_members(tools, &pos, keys, 4, &tool, m); j++) {
        type = m[0];
        s2a_openai_put(r->b, j ? "," : ",\"tools\":[");
        if (s2a_json_string_equals(&type, "function")) {
            if (s2a_openai_tool(r->b, &m[1], &m[2], &m[3]) != 0) {
                return refuse(r, apr_psprintf(r->pool, "tools[%d]", j),
                              "a function needs a string name, and a string description and "
                              "an object of parameters where given");
            }
        } else if (s2a_json_string_equals(&type, "custom")) {
            if (custom_tool(r, &tool, j) != 0) {
                return -1;
            }
        } else {
            return refuse(r, apr_psprintf(r->pool, "tools[%d].type", j),
                          "only function and custom tools are taken here (no hosted tools)");
        }
    }
    if (j) {
        S2A_PUT(r->b, "]");
    }
    *count = j;
    return 0;
}

/* The tools from the memo, or translated and given to it; the custom
 * tools' names ride along as what it keeps aside, each ended by a NUL
 * (a decoded name holds none). */
static int memo_tools(reader *r, int *count)
{
    const s2a_json_span *tools = &r->f[F_TOOLS];
    apr_size_t from = r->b->len, at;
    s2a_buf aside;
    int k, known;

    s2a_buf_init(&aside, r->pool, 0);
    known = s2a_tools_memo_get(r->memo, S2A_TOOLS_MEMO_RESPONSES, tools->p, tools->len, r->b,
                               &aside, count);
    if (known) {
        for (at = 0; at < aside.len; at += strlen(aside.data + at) + 1) {
            *(const char **)apr_array_push(r->custom) = aside.data + at;
        }
        return 0;
    }
    k = r->custom->nelts;
    if (translate_tools(r, count) != 0) {
        return -1;
    }
    for (; k < r->custom->nelts; k++) {
        const char *name = APR_ARRAY_IDX(r->custom, k, const char *);
        s2a_buf_append(&aside, name, strlen(name) + 1);
    }
    s2a_tools_memo_put(r->memo, S2A_TOOLS_MEMO_RESPONSES, tools->p, tools->len, r->b->data + from,
                       r->b->len - from, aside.data, aside.len, *count);
    return 0;
}

/* tools and tool_choice; *forced when the choice makes the model call one. */
static int write_tools(reader *r, int *count, int *forced)
{
    apr_size_t from = r->b->len;
    const s2a_json_span *tools = &r->f[F_TOOLS], *tc = &r->f[F_TOOL_CHOICE];
    s2a_json_span type, name;
    s2a_openai_choice choice;
    int j = 0, serial = r->f[F_PARALLEL_TOOL_CALLS].type == S2A_JSON_FALSE;

    *count = *forced = 0;
    type = member(tc, "type");
    if (s2a_json_string_equals(&type, "custom")) {
        name = member(tc, "name");
        choice = name.type == S2A_JSON_STRING ? S2A_TOOL_CHOICE_NAMED : S2A_TOOL_CHOICE_INVALID;
    } else {
        choice = s2a_openai_tool_choice(tc, &name);
    }
    if (choice == S2A_TOOL_CHOICE_INVALID) {
        return refuse(r, "tool_choice",
                      "must be auto, none, required or {\"type\":\"function\",\"name\":...}");
    }
    if (!present(tools)) {
        return 0;
    }
    if (tools->type != S2A_JSON_ARRAY) {
        return refuse(r, "tools", "must be an array");
    }
    if (memo_tools(r, &j) != 0) {
        return -1;
    }
    if (!j) {
        return 0;
    }
    s2a_openai_mark(r->b, from, ",\"tools\":", &r->marks->tools);
    *count = j;
    s2a_openai_write_tool_choice(r->b, choice, &name, serial, forced);
    return 0;
}

/* One member of the echo: the request's value, else OpenAI's default. */
static void echo(s2a_buf *b, const char *name, const s2a_json_span *v, const char *otherwise)
{
    if (b->len) {
        S2A_PUT(b, ",");
    }
    S2A_PUT(b, "\"");
    s2a_openai_put(b, name);
    S2A_PUT(b, "\":");
    if (present(v)) {
        s2a_openai_put_span(b, v);
    } else {
        s2a_openai_put(b, otherwise);
    }
}

static const char *write_echo(reader *r)
{
    s2a_buf b;

    s2a_buf_init(&b, r->pool, 256);
    echo(&b, "max_output_tokens", &r->f[F_MAX_OUTPUT_TOKENS], "null");
    echo(&b, "parallel_tool_calls", &r->f[F_PARALLEL_TOOL_CALLS], "true");
    echo(&b, "reasoning", &r->f[F_REASONING], "{\"effort\":null,\"summary\":null}");
    echo(&b, "temperature", &r->f[F_TEMPERATURE], "1");
    echo(&b, "text", &r->f[F_TEXT], "{\"format\":{\"type\":\"text\"}}");
    echo(&b, "tool_choice", &r->f[F_TOOL_CHOICE], "\"auto\"");
    echo(&b, "top_p", &r->f[F_TOP_P], "1");
    return b.data;
}

int s2a_responses_request_read(apr_pool_t *p, const char *raw, apr_size_t len, s2a_tools_memo *memo,
                               s2a_responses_request *out, s2a_openai_error *err)
{
    const s2a_json_span *reasoning;
    reader r;
    s2a_buf b;
    s2a_openai_msgs m;
    s2a_openai_tail tail;
    s2a_json_span effort;
    const char *why;
    int forced, rc;

    memset(out, 0, sizeof(*out));
    memset(&r, 0, sizeof(r));
    r.pool = p;
    r.marks = &out->marks;
    r.b = &b;
    r.err = err;
    r.memo = memo;
    r.raw = raw;
    r.len = len;
    if ((rc = s2a_json_scan_object_some(p, raw, len, fields, F_COUNT, F_TOOLS, r.f, &why)) != 0) {
        return s2a_openai_refuse(
            err, NULL,
            rc == -2 ? why : apr_pstrcat(p, "The request body is not valid JSON: ", why, NULL));
    }
    if (r.f[F_MODEL].type != S2A_JSON_STRING ||
        !(out->model = s2a_json_string_dup(p, &r.f[F_MODEL])) || !*out->model) {
        return refuse(&r, "model", "a non-empty string is required");
    }
    if (check_refusals(&r) != 0) {
        return -1;
    }
    if (r.f[F_INPUT].type != S2A_JSON_ARRAY && r.f[F_INPUT].type != S2A_JSON_STRING) {
        return refuse(&r, "input", "a string or an array of items is required");
    }
    memset(&tail, 0, sizeof(tail));
    tail.temperature = r.f[F_TEMPERATURE];
    tail.top_p = r.f[F_TOP_P];
    if (s2a_openai_check_sampling(&tail.temperature, &tail.top_p, err) != 0) {
        return -1;
    }
    tail.max_tokens = S2A_OPENAI_RESPONSES_MAX_TOKENS;
    if (present(&r.f[F_MAX_OUTPUT_TOKENS]) &&
        (!s2a_openai_integer(&r.f[F_MAX_OUTPUT_TOKENS], &tail.max_tokens) || tail.max_tokens < 1)) {
        return refuse(&r, "max_output_tokens", "must be a positive integer");
    }
    reasoning = &r.f[F_REASONING];
    if (present(reasoning) && reasoning->type != S2A_JSON_OBJECT) {
        return refuse(&r, "reasoning", "must be an object");
    }
    effort = member(reasoning, "effort");
    if ((tail.budget = s2a_openai_budget(&effort)) < 0) {
        return refuse(&r, "reasoning.effort", "must be none, minimal, low, medium, high or xhigh");
    }
    tail.user = r.f[F_USER].type == S2A_JSON_STRING ? r.f[F_USER] : r.f[F_SAFETY_IDENTIFIER];
    if (tail.user.type == S2A_JSON_STRING && tail.user.len <= 2) {
        tail.user.type = S2A_JSON_NONE;
    }
    tail.adaptive = s2a_openai_adaptive(out->model);
    out->stream = tail.stream = r.f[F_STREAM].type == S2A_JSON_TRUE;
    r.custom = out->custom = apr_array_make(p, 2, sizeof(const char *));

    /* the body is about the size of the request */
    s2a_buf_init(&b, p, len + 512);
    S2A_PUT(&b, "{\"model\":");
    s2a_openai_put_span(&b, &r.f[F_MODEL]);
    s2a_openai_mark(&b, 0, "{\"model\":", &out->marks.model);
    if (write_system(&r) != 0 || write_messages(&r, &m) != 0 ||
        write_tools(&r, &out->tools, &forced) != 0) {
        return -1;
    }
    tail.forced_tool = forced;
    s2a_openai_write_tail(&b, &tail, &m, &out->marks, &out->max_tokens, &out->thinking);
    S2A_PUT(&b, "}");
    out->body = b.data;
    out->len = b.len;
    out->echo = write_echo(&r);
    return 0;
}

/* ---- Output items ---------------------------------------------------------------------------- */

typedef enum {
    ITEM_NONE = 0,
    ITEM_MESSAGE,
    ITEM_REASONING,
    ITEM_REDACTED,
    ITEM_CALL,
    ITEM_CUSTOM
} item_kind;

/* One output item: what it holds as raw JSON string contents, so that the
 * upstream's strings are copied as they came. */
typedef struct {
    item_kind kind;
    apr_int64_t index; /* its output_index */
    s2a_buf text;      /* message text, thinking, arguments, custom input, redacted data */
    s2a_buf signature; /* a thinking block's */
    s2a_buf call_id;   /* JSON string literals */
    s2a_buf name;
} item;

static void item_init(item *it, apr_pool_t *p)
{
    memset(it, 0, sizeof(*it));
    s2a_buf_init(&it->text, p, 256);
    s2a_buf_init(&it->signature, p, 0);
    s2a_buf_init(&it->call_id, p, 0);
    s2a_buf_init(&it->name, p, 0);
}

static void item_reset(item *it, item_kind kind, apr_int64_t index)
{
    it->kind = kind;
    it->index = index;
    s2a_buf_reset(&it->text);
    s2a_buf_reset(&it->signature);
    s2a_buf_reset(&it->call_id);
    s2a_buf_reset(&it->name);
}

static void put_buf(s2a_buf *b, const s2a_buf *v)
{
    s2a_buf_append(b, v->data ? v->data : "", v->len);
}

/* The contents of a string span (no quotes), appended. */
static void put_contents(s2a_buf *b, const s2a_json_span *v)
{
    s2a_buf_append(b, v->p + 1, v->len - 2);
}

/* A string span, or "" when it is not one. */
static void put_string_span(s2a_buf *b, const s2a_json_span *v)
{
    if (v->type == S2A_JSON_STRING) {
        s2a_openai_put_span(b, v);
    } else {
        S2A_PUT(b, "\"\"");
    }
}

/* The base of every id of an answer: the upstream message's id (a string
 * span; NULL: none) without its "msg_", as escaped JSON string contents. */
static void set_base(apr_pool_t *p, s2a_buf *base, const s2a_json_span *id)
{
    const char *text;

    s2a_buf_reset(base);
    if (id && id->type == S2A_JSON_STRING && (text = s2a_json_string_dup(p, id))) {
        if (!strncmp(text, "msg_", 4)) {
            text += 4;
        }
        s2a_openai_put_escaped(base, text, strlen(text));
    }
}

static void put_item_id(s2a_buf *b, const item *it, const s2a_buf *base)
{
    static const char *const prefix[] = {"", "msg_", "rs_", "rs_", "fc_", "ctc_"};

    S2A_PUT(b, "\"");
    s2a_openai_put(b, prefix[it->kind]);
    put_buf(b, base);
    S2A_PUT(b, "_");
    s2a_openai_put_int(b, it->index);
    S2A_PUT(b, "\"");
}

/* The item as output_item.added shows it (done 0: in progress, empty) or
 * as it ends (done 1). */
static void put_item(s2a_buf *b, const item *it, const s2a_buf *base, int done)
{
    static const char redacted[] = S2A_RESPONSES_REDACTED;
    const char *status = done ? "\"completed\"" : "\"in_progress\"";

    S2A_PUT(b, "{\"id\":");
    put_item_id(b, it, base);
    switch (it->kind) {
    case ITEM_MESSAGE:
        S2A_PUT(b, ",\"type\":\"message\",\"status\":");
        s2a_openai_put(b, status);
        S2A_PUT(b, ",\"role\":\"assistant\",\"content\":[");
        if (done) {
            S2A_PUT(b, "{\"type\":\"output_text\",\"text\":\"");
            put_buf(b, &it->text);
            S2A_PUT(b, "\",\"annotations\":[],\"logprobs\":[]}");
        }
        S2A_PUT(b, "]}");
        break;
    case ITEM_REASONING:
    case ITEM_REDACTED:
        S2A_PUT(b, ",\"type\":\"reasoning\",\"summary\":[");
        if (done && it->kind == ITEM_REASONING && it->text.len) {
            S2A_PUT(b, "{\"type\":\"summary_text\",\"text\":\"");
            put_buf(b, &it->text);
            S2A_PUT(b, "\"}");
        }
        S2A_PUT(b, "]");
        if (it->kind == ITEM_REDACTED) {
            S2A_PUT(b, ",\"encrypted_content\":\"");
            s2a_buf_append(b, redacted, sizeof(redacted) - 1);
            put_buf(b, &it->text);
            S2A_PUT(b, "\"");
        } else if (done && it->signature.len) {
            S2A_PUT(b, ",\"encrypted_content\":\"");
            put_buf(b, &it->signature);
            S2A_PUT(b, "\"");
        }
        S2A_PUT(b, "}");
        break;
    case ITEM_CALL:
        S2A_PUT(b, ",\"type\":\"function_call\",\"status\":");
        s2a_openai_put(b, status);
        S2A_PUT(b, ",\"arguments\":\"");
        if (done) {
            put_buf(b, &it->text);
        }
        S2A_PUT(b, "\",\"call_id\":");
        put_buf(b, &it->call_id);
        S2A_PUT(b, ",\"name\":");
        put_buf(b, &it->name);
        S2A_PUT(b, "}");
        break;
    default:
        S2A_PUT(b, ",\"type\":\"custom_tool_call\",\"status\":");
        s2a_openai_put(b, status);
        S2A_PUT(b, ",\"call_id\":");
        put_buf(b, &it->call_id);
        S2A_PUT(b, ",\"name\":");
        put_buf(b, &it->name);
        S2A_PUT(b, ",\"input\":\"");
        if (done) {
            put_buf(b, &it->text);
        }
        S2A_PUT(b, "\"}");
        break;
    }
}

/* Whether the tool named (a string span) is one of the request's custom tools. */
static int is_custom(const s2a_responses_request *req, const s2a_json_span *name)
{
    int k;

    for (k = 0; req->custom && k < req->custom->nelts; k++) {
        if (s2a_json_string_equals(name, APR_ARRAY_IDX(req->custom, k, const char *))) {
            return 1;
        }
    }
    return 0;
}

/* A custom tool's input from the tool_use's input object (its "input"
 * string; the object's JSON text when it has none), as string contents. */
static void custom_input(s2a_buf *b, const s2a_json_span *input)
{
    s2a_json_span v;

    if (input->type == S2A_JSON_OBJECT && s2a_json_object_get(input, "input", &v) &&
        v.type == S2A_JSON_STRING) {
        put_contents(b, &v);
    } else {
        s2a_openai_put_escaped(b, input->p, input->len);
    }
}

/* A call's arguments streamed as raw string contents of JSON text, made
 * the custom tool's input. */
static void custom_from_arguments(apr_pool_t *p, item *it)
{
    static const char *const keys[] = {"input"};
    s2a_json_span quoted, input;
    const char *json, *why;
    char *q;

    q = apr_palloc(p, it->text.len + 3);
    q[0] = '"';
    memcpy(q + 1, it->text.data ? it->text.data : "", it->text.len);
    q[it->text.len + 1] = '"';
    q[it->text.len + 2] = '\0';
    quoted.p = q;
    quoted.len = it->text.len + 2;
    quoted.type = S2A_JSON_STRING;
    if (!(json = s2a_json_string_dup(p, &quoted)) ||
        s2a_json_scan_object(p, json, strlen(json), keys, 1, &input, &why) != 0 ||
        input.type != S2A_JSON_STRING) {
        return; /* not an object with an input: its text is the input */
    }
    s2a_buf_reset(&it->text);
    put_contents(&it->text, &input);
}

/* ---- The response object --------------------------------------------------------------------- */

static void put_usage(s2a_buf *b, const s2a_usage *u)
{
    s2a_openai_tokens t;

    s2a_openai_tokens_of(u, &t);
    S2A_PUT(b, "{\"input_tokens\":");
    s2a_openai_put_int(b, t.prompt);
    S2A_PUT(b, ",\"input_tokens_details\":{\"cached_tokens\":");
    s2a_openai_put_int(b, t.cached);
    S2A_PUT(b, "},\"output_tokens\":");
    s2a_openai_put_int(b, t.completion);
    S2A_PUT(b, ",\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":");
    s2a_openai_put_int(b, t.total);
    S2A_PUT(b, "}");
}

/* What a stop_reason leaves incomplete (NULL: complete). */
static const char *incomplete_of(const s2a_json_span *stop)
{
    if (s2a_json_string_equals(stop, "max_tokens")) {
        return "max_output_tokens";
    }
    if (s2a_json_string_equals(stop, "refusal")) {
        return "content_filter";
    }
    return NULL;
}

typedef struct {
    const char *status;     /* in_progress, completed, incomplete, failed */
    const s2a_buf *output;  /* the items, comma-separated; NULL: none yet */
    const s2a_usage *usage; /* NULL: null */
    const char *incomplete; /* the reason, when incomplete */
    const s2a_openai_error *error;
} response_state;

static void put_response(s2a_buf *b, const s2a_responses_request *req, const s2a_buf *base,
                         apr_int64_t created, const response_state *st)
{
    S2A_PUT(b, "{\"id\":\"resp_");
    put_buf(b, base);
    S2A_PUT(b, "\",\"object\":\"response\",\"created_at\":");
    s2a_openai_put_int(b, created);
    S2A_PUT(b, ",\"status\":\"");
    s2a_openai_put(b, st->status);
    S2A_PUT(b, "\",\"background\":false,\"error\":");
    if (st->error) {
        S2A_PUT(b, "{\"code\":");
        s2a_openai_put_string(b, st->error->code ? st->error->code : "server_error");
        S2A_PUT(b, ",\"message\":");
        s2a_openai_put_string(b, st->error->message ? st->error->message : "");
        S2A_PUT(b, "}");
    } else {
        S2A_PUT(b, "null");
    }
    S2A_PUT(b, ",\"incomplete_details\":");
    if (st->incomplete) {
        S2A_PUT(b, "{\"reason\":\"");
        s2a_openai_put(b, st->incomplete);
        S2A_PUT(b, "\"}");
    } else {
        S2A_PUT(b, "null");
    }
    S2A_PUT(b, ",\"instructions\":null,\"model\":");
    s2a_openai_put_string(b, req->model ? req->model : "");
    S2A_PUT(b, ",\"output\":[");
    if (st->output) {
        put_buf(b, st->output);
    }
    S2A_PUT(b, "]");
    if (req->echo) {
        S2A_PUT(b, ",");
        s2a_openai_put(b, req->echo);
    }
    S2A_PUT(b, ",\"previous_response_id\":null,\"store\":false,\"tools\":[],"
               "\"truncation\":\"disabled\",\"usage\":");
    if (st->usage) {
        put_usage(b, st->usage);
    } else {
        S2A_PUT(b, "null");
    }
    S2A_PUT(b, ",\"user\":null,\"metadata\":{}}");
}

/* ---- A whole answer ------------------------------------------------------------------------- */

char *s2a_responses_answer(apr_pool_t *p, const s2a_responses_request *req, apr_int64_t created,
                           const char *json, apr_size_t len, apr_size_t *out_len)
{
    static const char *const keys[] = {"id", "type", "content", "stop_reason", "usage"};
    s2a_json_span v[5], block, type, f;
    s2a_buf b, base, output;
    s2a_usage u;
    response_state st;
    item it;
    apr_size_t pos = 0;
    const char *why;

    if (s2a_json_scan_object(NULL, json, len, keys, 5, v, &why) != 0 ||
        !s2a_openai_control_free(json, len) ||
        (v[1].type != S2A_JSON_NONE && !s2a_json_string_equals(&v[1], "message")) ||
        v[2].type != S2A_JSON_ARRAY) {
        return NULL;
    }
    s2a_buf_init(&base, p, 64);
    set_base(p, &base, &v[0]);
    s2a_buf_init(&output, p, len + 256);
    item_init(&it, p);
    while (s2a_json_array_next(&v[2], &pos, &block)) {
        type = member(&block, "type");
        if (s2a_json_string_equals(&type, "text") &&
            (f = member(&block, "text")).type == S2A_JSON_STRING) {
            item_reset(&it, ITEM_MESSAGE, it.index);
            put_contents(&it.text, &f);
        } else if (s2a_json_string_equals(&type, "thinking") &&
                   (f = member(&block, "thinking")).type == S2A_JSON_STRING) {
            item_reset(&it, ITEM_REASONING, it.index);
            put_contents(&it.text, &f);
            if ((f = member(&block, "signature")).type == S2A_JSON_STRING) {
                put_contents(&it.signature, &f);
            }
        } else if (s2a_json_string_equals(&type, "redacted_thinking") &&
                   (f = member(&block, "data")).type == S2A_JSON_STRING) {
            item_reset(&it, ITEM_REDACTED, it.index);
            put_contents(&it.text, &f);
        } else if (s2a_json_string_equals(&type, "tool_use") &&
                   (f = member(&block, "name")).type == S2A_JSON_STRING) {
            item_reset(&it, is_custom(req, &f) ? ITEM_CUSTOM : ITEM_CALL, it.index);
            s2a_openai_put_span(&it.name, &f);
            f = member(&block, "id");
            put_string_span(&it.call_id, &f);
            f = member(&block, "input");
            if (it.kind == ITEM_CUSTOM) {
                custom_input(&it.text, &f);
            } else if (f.type == S2A_JSON_OBJECT) {
                s2a_openai_put_escaped(&it.text, f.p, f.len);
            } else {
                S2A_PUT(&it.text, "{}");
            }
        } else {
            continue;
        }
        if (it.index) {
            S2A_PUT(&output, ",");
        }
        put_item(&output, &it, &base, 1);
        it.index++;
    }
    s2a_usage_read(&u, &v[4]);
    memset(&st, 0, sizeof(st));
    st.incomplete = incomplete_of(&v[3]);
    st.status = st.incomplete ? "incomplete" : "completed";
    st.output = &output;
    st.usage = &u;
    s2a_buf_init(&b, p, output.len + 1024);
    put_response(&b, req, &base, created, &st);
    *out_len = b.len;
    return b.data;
}

/* ---- A streamed answer ---------------------------------------------------------------------- */

struct s2a_responses_stream {
    apr_pool_t *pool;
    const s2a_responses_request *req;
    apr_int64_t created;
    s2a_sse *sse;
    s2a_buf *out;   /* the caller's, during a feed */
    s2a_buf base;   /* the ids' base */
    s2a_buf output; /* the items that ended, comma-separated */
    s2a_usage usage;
    item it;                /* the open item; kind NONE between them */
    apr_int64_t items;      /* items begun */
    apr_int64_t seq;        /* the next sequence_number */
    const char *incomplete; /* what message_delta's stop_reason left incomplete */
    int started;            /* response.created went out */
    int stopped;            /* message_delta told why the answer stopped */
    int done;               /* the last event went out */
    apr_size_t dropped;     /* events lost to the size cap, as last seen */
};

/* `event: <type>` and its data up to the members after sequence_number. */
static void ev_open(s2a_responses_stream *s, const char *type)
{
    S2A_PUT(s->out, "event: ");
    s2a_openai_put(s->out, type);
    S2A_PUT(s->out, "\ndata: {\"type\":\"");
    s2a_openai_put(s->out, type);
    S2A_PUT(s->out, "\",\"sequence_number\":");
    s2a_openai_put_int(s->out, s->seq++);
}

static void ev_close(s2a_responses_stream *s)
{
    S2A_PUT(s->out, "}\n\n");
}

/* An event about the open item: its type, item_id and output_index. */
static void ev_item(s2a_responses_stream *s, const char *type)
{
    ev_open(s, type);
    S2A_PUT(s->out, ",\"item_id\":");
    put_item_id(s->out, &s->it, &s->base);
    S2A_PUT(s->out, ",\"output_index\":");
    s2a_openai_put_int(s->out, s->it.index);
}

/* An event carrying the response object as it stands. */
static void ev_response(s2a_responses_stream *s, const char *type, const response_state *st)
{
    ev_open(s, type);
    S2A_PUT(s->out, ",\"response\":");
    put_response(s->out, s->req, &s->base, s->created, st);
    ev_close(s);
}

static void start(s2a_responses_stream *s, const s2a_json_span *id)
{
    response_state st;

    set_base(s->pool, &s->base, id);
    memset(&st, 0, sizeof(st));
    st.status = "in_progress";
    ev_response(s, "response.created", &st);
    ev_response(s, "response.in_progress", &st);
    s->started = 1;
}

/* The output_item.added or output_item.done of the open item. */
static void ev_item_whole(s2a_responses_stream *s, int done)
{
    ev_open(s, done ? "response.output_item.done" : "response.output_item.added");
    S2A_PUT(s->out, ",\"output_index\":");
    s2a_openai_put_int(s->out, s->it.index);
    S2A_PUT(s->out, ",\"item\":");
    put_item(s->out, &s->it, &s->base, done);
    ev_close(s);
}

/* A part event of a message ("content_index") or a reasoning item
 * ("summary_index"), with its part as it stands (text: 0 for empty). */
static void ev_part(s2a_responses_stream *s, const char *type, int text)
{
    int message = s->it.kind == ITEM_MESSAGE;

    ev_item(s, type);
    s2a_openai_put(
        s->out, message ? ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\""
                        : ",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"");
    if (text) {
        put_buf(s->out, &s->it.text);
    }
    s2a_openai_put(s->out, message ? "\",\"annotations\":[]}" : "\"}");
    ev_close(s);
}

/* What a delta adds to the open item (a string span). */
static void add(s2a_responses_stream *s, s2a_block_kind kind, const s2a_json_span *v)
{
    if (v->len <= 2) {
        return;
    }
    switch (s->it.kind) {
    case ITEM_MESSAGE:
        if (kind == S2A_BLOCK_TEXT) {
            ev_item(s, "response.output_text.delta");
            S2A_PUT(s->out, ",\"content_index\":0,\"delta\":");
            s2a_openai_put_span(s->out, v);
            S2A_PUT(s->out, ",\"logprobs\":[]");
            ev_close(s);
            put_contents(&s->it.text, v);
        }
        break;
    case ITEM_REASONING:
        if (kind == S2A_BLOCK_THINKING) {
            ev_item(s, "response.reasoning_summary_text.delta");
            S2A_PUT(s->out, ",\"summary_index\":0,\"delta\":");
            s2a_openai_put_span(s->out, v);
            ev_close(s);
            put_contents(&s->it.text, v);
        } else if (kind == S2A_BLOCK_SIGNATURE) {
            put_contents(&s->it.signature, v);
        }
        break;
    case ITEM_CALL:
        if (kind == S2A_BLOCK_TOOL_USE) {
            ev_item(s, "response.function_call_arguments.delta");
            S2A_PUT(s->out, ",\"delta\":");
            s2a_openai_put_span(s->out, v);
            ev_close(s);
            put_contents(&s->it.text, v);
        }
        break;
    case ITEM_CUSTOM:
        if (kind == S2A_BLOCK_TOOL_USE) {
            put_contents(&s->it.text, v); /* told whole at the end: it is JSON until then */
        }
        break;
    default:
        break;
    }
}

static void block_start(s2a_responses_stream *s, const s2a_anthropic_event *ev)
{
    item_kind kind = ev->block == S2A_BLOCK_TEXT                ? ITEM_MESSAGE
                     : ev->block == S2A_BLOCK_THINKING          ? ITEM_REASONING
                     : ev->block == S2A_BLOCK_REDACTED_THINKING ? ITEM_REDACTED
                     : ev->block == S2A_BLOCK_TOOL_USE          ? ITEM_CALL
                                                                : ITEM_NONE;

    if (kind == ITEM_CALL && ev->name.type == S2A_JSON_STRING && is_custom(s->req, &ev->name)) {
        kind = ITEM_CUSTOM;
    }
    item_reset(&s->it, kind, s->items);
    if (kind == ITEM_NONE) {
        return; /* the server tools' blocks have no item here */
    }
    s->items++;
    if (kind == ITEM_CALL || kind == ITEM_CUSTOM) {
        put_string_span(&s->it.call_id, &ev->id);
        put_string_span(&s->it.name, &ev->name);
    } else if (kind == ITEM_REDACTED && ev->text.type == S2A_JSON_STRING) {
        put_contents(&s->it.text, &ev->text);
    }
    ev_item_whole(s, 0);
    if (kind == ITEM_MESSAGE || kind == ITEM_REASONING) {
        ev_part(s,
                kind == ITEM_MESSAGE ? "response.content_part.added"
                                     : "response.reasoning_summary_part.added",
                0);
        if (ev->text.type == S2A_JSON_STRING) {
            add(s, ev->block, &ev->text);
        }
    }
}

static void block_stop(s2a_responses_stream *s)
{
    switch (s->it.kind) {
    case ITEM_NONE:
        return;
    case ITEM_MESSAGE:
        ev_item(s, "response.output_text.done");
        S2A_PUT(s->out, ",\"content_index\":0,\"text\":\"");
        put_buf(s->out, &s->it.text);
        S2A_PUT(s->out, "\",\"logprobs\":[]");
        ev_close(s);
        ev_part(s, "response.content_part.done", 1);
        break;
    case ITEM_REASONING:
        ev_item(s, "response.reasoning_summary_text.done");
        S2A_PUT(s->out, ",\"summary_index\":0,\"text\":\"");
        put_buf(s->out, &s->it.text);
        S2A_PUT(s->out, "\"");
        ev_close(s);
        ev_part(s, "response.reasoning_summary_part.done", 1);
        break;
    case ITEM_CALL:
        if (!s->it.text.len) {
            S2A_PUT(&s->it.text, "{}"); /* a call without arguments still has its object */
        }
        ev_item(s, "response.function_call_arguments.done");
        S2A_PUT(s->out, ",\"name\":");
        put_buf(s->out, &s->it.name);
        S2A_PUT(s->out, ",\"arguments\":\"");
        put_buf(s->out, &s->it.text);
        S2A_PUT(s->out, "\"");
        ev_close(s);
        break;
    case ITEM_CUSTOM:
        custom_from_arguments(s->pool, &s->it);
        if (s->it.text.len) {
            ev_item(s, "response.custom_tool_call_input.delta");
            S2A_PUT(s->out, ",\"delta\":\"");
            put_buf(s->out, &s->it.text);
            S2A_PUT(s->out, "\"");
            ev_close(s);
        }
        ev_item(s, "response.custom_tool_call_input.done");
        S2A_PUT(s->out, ",\"input\":\"");
        put_buf(s->out, &s->it.text);
        S2A_PUT(s->out, "\"");
        ev_close(s);
        break;
    default:
        break;
    }
    ev_item_whole(s, 1);
    if (s->output.len) {
        S2A_PUT(&s->output, ",");
    }
    put_item(&s->output, &s->it, &s->base, 1);
    s->it.kind = ITEM_NONE;
}

static void complete(s2a_responses_stream *s)
{
    response_state st;

    memset(&st, 0, sizeof(st));
    st.incomplete = s->incomplete;
    st.status = st.incomplete ? "incomplete" : "completed";
    st.output = &s->output;
    st.usage = &s->usage;
    ev_response(s, st.incomplete ? "response.incomplete" : "response.completed", &st);
    s->done = 1;
}

static void fail(s2a_responses_stream *s, const s2a_openai_error *e)
{
    response_state st;

    ev_open(s, "error");
    S2A_PUT(s->out, ",\"code\":");
    s2a_openai_put_string(s->out, e->code ? e->code : e->type ? e->type : "server_error");
    S2A_PUT(s->out, ",\"message\":");
    s2a_openai_put_string(s->out, e->message ? e->message : "");
    S2A_PUT(s->out, ",\"param\":null");
    ev_close(s);
    memset(&st, 0, sizeof(st));
    st.status = "failed";
    st.output = &s->output;
    st.usage = &s->usage;
    st.error = e;
    ev_response(s, "response.failed", &st);
    s->done = 1;
}

/* An event past the size cap was lost: what follows would not add up.
 * Looked at before each event and after each feed, so that the failure
 * comes at the same place whatever the splits. */
static int lost_event(s2a_responses_stream *s)
{
    s2a_openai_error e;

    if (s2a_sse_dropped(s->sse) == s->dropped) {
        return 0;
    }
    s->dropped = s2a_sse_dropped(s->sse);
    if (!s->started) {
        start(s, NULL);
    }
    s2a_openai_error_of_status(&e, 502, "The upstream sent an event too large to translate");
    fail(s, &e);
    return 1;
}

static void on_event(void *baton, const char *name, apr_size_t nlen, const char *data,
                     apr_size_t dlen)
{
    s2a_responses_stream *s = baton;
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
    if (!s->started) {
        start(s, ev.kind == S2A_AEV_MESSAGE_START ? &ev.id : NULL);
    }
    switch (ev.kind) {
    case S2A_AEV_BLOCK_START:
        block_stop(s); /* a block left open ends where the next begins */
        block_start(s, &ev);
        break;
    case S2A_AEV_BLOCK_DELTA:
        add(s, ev.block, &ev.text);
        break;
    case S2A_AEV_BLOCK_STOP:
        block_stop(s);
        break;
    case S2A_AEV_MESSAGE_DELTA:
        if (ev.stop.type == S2A_JSON_STRING) {
            s->stopped = 1;
            s->incomplete = incomplete_of(&ev.stop);
        }
        break;
    case S2A_AEV_MESSAGE_STOP:
        block_stop(s);
        complete(s);
        break;
    case S2A_AEV_ERROR:
        s2a_openai_error_of_anthropic(s->pool, 500, data, dlen, &e);
        fail(s, &e);
        break;
    default:
        break;
    }
}

s2a_responses_stream *s2a_responses_stream_create(apr_pool_t *p, const s2a_responses_request *req,
                                                  apr_int64_t created)
{
    s2a_responses_stream *s = apr_pcalloc(p, sizeof(*s));

    s->pool = p;
    s->req = req;
    s->created = created;
    s2a_buf_init(&s->base, p, 64);
    s2a_buf_init(&s->output, p, 1024);
    item_init(&s->it, p);
    s->sse = s2a_sse_create(p, S2A_ANSWER_MAX_EVENT, on_event, s);
    return s;
}

void s2a_responses_stream_feed(s2a_responses_stream *s, const char *data, apr_size_t n,
                               s2a_buf *out)
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

void s2a_responses_stream_end(s2a_responses_stream *s, s2a_buf *out)
{
    s2a_openai_error e;

    if (s->done) {
        return;
    }
    s->out = out;
    if (!s->started) {
        start(s, NULL);
    }
    if (s->stopped) {
        block_stop(s);
        complete(s); /* only message_stop was missing */
    } else {
        s2a_openai_error_of_status(&e, 502, "The upstream's answer ended before it was complete");
        fail(s, &e);
    }
    s->out = NULL;
}

int s2a_responses_stream_done(const s2a_responses_stream *s)
{
    return s->done;
}

const s2a_usage *s2a_responses_stream_usage(const s2a_responses_stream *s)
{
    return &s->usage;
}
