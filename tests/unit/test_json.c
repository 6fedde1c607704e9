/* Unit tests for the JSON scanner, string helpers, splicing and response prefix search. */
#include "s2a_buf.h"
#include "s2a_json.h"
#include "s2a_test.h"

#include <stdlib.h>

#include <apr_general.h>
#include <apr_strings.h>

/* Shaped like a Claude Code request: decoys for "model" inside strings, nested objects and
 * tool schemas, backslashes right before closing quotes, \u escapes, a JSON-in-a-string
 * user_id. */
static const char CLAUDE_BODY[] =
    "{\"model\":\"claude-sonnet-4-5-20250929\",\"max_tokens\":32000,\"messages\":[{\"role\":\"us"
    "er\",\"content\":[{\"type\":\"text\",\"text\":\"<system-reminder>\\nAs you answer,"
    " \\\"model\\\": \\\"claude-opus\\\" is just text.\\n</system-reminder>\"},"
    "{\"type\":\"text\",\"text\":\"fix C:\\\\temp\\\\\",\"cache_control\":{\"type\":\"ephemeral\""
    "}}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_01\","
    "\"name\":\"Bash\",\"input\":{\"command\":\"grep -r \\\"model\\\" .\","
    "\"model\":\"inner\"}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
    "\"tool_use_id\":\"toolu_01\",\"content\":\"a.c:1: \\\"model\\\":\\\"x\\\"\\\\\"}]}],"
    "\"temperature\":1,\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code,"
    " Anthropic's official CLI for Claude.\",\"cache_control\":{\"type\":\"ephemeral\"}},"
    "{\"type\":\"text\",\"text\":\"Env: \\u00e9t\\u00e9 \\ud83d\\ude00 \\/tmp\","
    "\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}],\"tools\":[{\"name\":\"Bash\","
    "\"description\":\"Run a command\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"command\":{\"type\":\"string\"},\"model\":{\"type\":\"string\","
    "\"enum\":[\"a\",\"b\"]},\"timeout\":{\"type\":\"number\",\"minimum\":0,"
    "\"maximum\":6e5}},\"required\":[\"command\"],\"additionalProperties\":false,"
    "\"$schema\":\"http://json-schema.org/draft-07/schema#\"}}],\"metadata\":{\"user_id\":\"{\\\""
    "device_id\\\":\\\"4f2a\\\",\\\"account_uuid\\\":\\\"\\\",\\\"session_id\\\":\\\"9c1e\\\\\\\""
    "x\\\"}\"},\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":31999},"
    "\"stream\":true}";

/* A plain (non-streamed) answer as the upstream sends it. */
static const char ANSWER[] =
    "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"text\","
    "\"text\":\"Hello! How can I help?\"}],\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":0,\"output_tokens\":9}}";

/* An answer full of decoys before an escaped "model" key whose value ends in backslashes. */
static const char HOSTILE_ANSWER[] =
    "{ \"id\" : \"m\\\"model\\\":\\\"x\\\\\" , \"content\":[{\"type\":\"tool_use\","
    "\"input\":{\"model\":\"fake\",\"s\":\"\\\\\"}},\"model\"],\"note\":{\"model\":\"n\"},"
    "\"mod\\u0065l\" : \"real\\\\\\\"one\\\\\\\\\", \"stop_reason\":null}";

static int span_is(const s2a_json_span *sp, s2a_json_type type, const char *raw)
{
    return sp->type == type && sp->p && sp->len == strlen(raw) && memcmp(sp->p, raw, sp->len) == 0;
}

/* Scan a copy of text[0..len) held in a buffer of exactly that size, so that any read past
 * the end is caught by the memory checkers. key is the one requested key. */
static int scan_key(apr_pool_t *p, const char *text, apr_size_t len, const char *key,
                    const char **err)
{
    char *copy = malloc(len ? len : 1);
    s2a_json_span out[1];
    const char *keys[1];
    int rv;

    keys[0] = key;
    memcpy(copy, text, len);
    rv = s2a_json_scan_object(p, copy, len, keys, 1, out, err);
    free(copy);
    return rv;
}

static int scan_exact(apr_pool_t *p, const char *text, apr_size_t len, const char **err)
{
    return scan_key(p, text, len, "model", err);
}

static int scan_str_key(apr_pool_t *p, const char *text, const char *key)
{
    const char *err = NULL;
    int rv = scan_key(p, text, strlen(text), key, &err);

    if (rv != 0 && !err)
        return -2;
    return rv;
}

/* "a", the key most samples use, is not requested: its containers are only delimited. */
static int scan_str(apr_pool_t *p, const char *text)
{
    return scan_str_key(p, text, "model");
}

/* "a" requested: its value is validated at every depth. */
static int scan_strict(apr_pool_t *p, const char *text)
{
    return scan_str_key(p, text, "a");
}

static void test_claude_body(apr_pool_t *p)
{
    static const char *const keys[] = {"model",    "messages", "system",     "tools",
                                       "metadata", "stream",   "max_tokens", "temperature",
                                       "thinking", "top_k",    "input"};
    s2a_json_span out[11], sub, sub2;
    const char *err = NULL;
    char *s;

    S2A_CHECK_INT(s2a_json_scan_object(p, CLAUDE_BODY, strlen(CLAUDE_BODY), keys, 11, out, &err),
                  0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"claude-sonnet-4-5-20250929\""));
    S2A_CHECK(out[1].type == S2A_JSON_ARRAY && out[1].p[0] == '[' &&
              out[1].p[out[1].len - 1] == ']');
    S2A_CHECK(out[2].type == S2A_JSON_ARRAY && out[2].p[out[2].len - 1] == ']');
    S2A_CHECK(out[3].type == S2A_JSON_ARRAY);
    S2A_CHECK(out[4].type == S2A_JSON_OBJECT);
    S2A_CHECK(span_is(&out[5], S2A_JSON_TRUE, "true"));
    S2A_CHECK(span_is(&out[6], S2A_JSON_NUMBER, "32000"));
    S2A_CHECK(span_is(&out[7], S2A_JSON_NUMBER, "1"));
    S2A_CHECK(out[8].type == S2A_JSON_OBJECT);
    S2A_CHECK(out[9].type == S2A_JSON_NONE && out[9].p == NULL);
    /* "input" only exists nested inside messages. */
    S2A_CHECK(out[10].type == S2A_JSON_NONE);

    /* The array spans cover exactly the text up to the next top-level key. */
    S2A_CHECK(strncmp(out[1].p + out[1].len, ",\"temperature\"", 14) == 0);
    S2A_CHECK(strncmp(out[2].p + out[2].len, ",\"tools\"", 8) == 0);
    S2A_CHECK(strncmp(out[4].p + out[4].len, ",\"thinking\"", 11) == 0);

    /* metadata.user_id is JSON carried in a string, with an escaped quote inside. */
    S2A_CHECK_INT(s2a_json_object_get(&out[4], "user_id", &sub), 1);
    S2A_CHECK_STR(s2a_json_string_dup(p, &sub),
                  "{\"device_id\":\"4f2a\",\"account_uuid\":\"\",\"session_id\":\"9c1e\\\"x\"}");
    S2A_CHECK_INT(s2a_json_object_get(&out[8], "budget_tokens", &sub), 1);
    S2A_CHECK(span_is(&sub, S2A_JSON_NUMBER, "31999"));
    S2A_CHECK_INT(s2a_json_object_get(&out[8], "type", &sub), 1);
    S2A_CHECK_STR(s2a_json_string_dup(p, &sub), "enabled");
    S2A_CHECK_INT(s2a_json_object_get(&out[8], "missing", &sub), 0);
    S2A_CHECK_INT(s2a_json_object_get(&out[8], "budget", &sub), 0);
    /* Not an object: nothing to look into. */
    S2A_CHECK_INT(s2a_json_object_get(&out[1], "role", &sub), 0);

    /* The tool schema's nested "model" property is reachable only by walking down. */
    S2A_CHECK(out[3].p[0] == '[');
    sub.p = out[3].p + 1;
    sub.len = (apr_size_t)(strstr(sub.p, "}}],\"metadata\"") + 2 - sub.p);
    sub.type = S2A_JSON_OBJECT;
    S2A_CHECK_INT(s2a_json_object_get(&sub, "model", &sub2), 0);
    S2A_CHECK_INT(s2a_json_object_get(&sub, "input_schema", &sub2), 1);
    S2A_CHECK_INT(s2a_json_object_get(&sub2, "properties", &sub), 1);
    S2A_CHECK_INT(s2a_json_object_get(&sub, "model", &sub2), 1);
    S2A_CHECK(sub2.type == S2A_JSON_OBJECT && sub2.p[0] == '{');
    S2A_CHECK_INT(s2a_json_object_get(&sub, "timeout", &sub2), 1);
    S2A_CHECK_INT(s2a_json_object_get(&sub2, "maximum", &sub), 1);
    S2A_CHECK(span_is(&sub, S2A_JSON_NUMBER, "6e5"));

    /* The system text decodes its \u escapes, including a surrogate pair, and \/. */
    s = strstr(CLAUDE_BODY, "\"Env: ");
    sub.p = s;
    sub.len = (apr_size_t)(strchr(s + 1, '"') - s + 1);
    sub.type = S2A_JSON_STRING;
    S2A_CHECK_STR(s2a_json_string_dup(p, &sub), "Env: \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 /tmp");

    /* Whitespace around the object is fine; around values too. */
    {
        const char *ws = " \r\n\t{ \"model\" :\n\"m\" , \"stream\"\t:\tfalse }\r\n ";
        S2A_CHECK_INT(s2a_json_scan_object(p, ws, strlen(ws), keys, 11, out, &err), 0);
        S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"m\""));
        S2A_CHECK(span_is(&out[5], S2A_JSON_FALSE, "false"));
        S2A_CHECK(out[1].type == S2A_JSON_NONE);
    }
}

static void test_top_level_only(apr_pool_t *p)
{
    static const char *const keys[] = {"model", "stream"};
    s2a_json_span out[2];
    const char *err = NULL;
    const char *t;

    t = "{\"messages\":[{\"model\":\"x\"}],\"note\":\"\\\"model\\\":\\\"y\\\"\","
        "\"x\":{\"model\":\"z\",\"stream\":true},\"y\":[\"model\",\"stream\"]}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), 0);
    S2A_CHECK(out[0].type == S2A_JSON_NONE);
    S2A_CHECK(out[1].type == S2A_JSON_NONE);

    /* A value that looks like a key. */
    t = "{\"a\":\"model\",\"b\":{\"c\":[{\"model\":1}]},\"stream\":null}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), 0);
    S2A_CHECK(out[0].type == S2A_JSON_NONE);
    S2A_CHECK(span_is(&out[1], S2A_JSON_NULL, "null"));

    /* Repeated keys: the last one wins, whatever its type. */
    t = "{\"model\":\"a\",\"stream\":{\"x\":1},\"model\":\"b\",\"stream\":[1,2]}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"b\""));
    S2A_CHECK(span_is(&out[1], S2A_JSON_ARRAY, "[1,2]"));
    t = "{\"model\":{\"a\":1},\"model\":7}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_NUMBER, "7"));

    /* An escaped spelling of the key is the same key to any parser downstream. */
    t = "{\"model\":\"cheap\",\"\\u006dodel\":\"dear\"}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"dear\""));
    t = "{\"model\":\"cheap\",\"m\\u006Fdel\":\"dear\",\"mode\\u006c\\u0000\":\"x\"}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"dear\""));
    /* A raw NUL after an escaped spelling of the key does not end the key: it is no JSON. */
    {
        static const char nul_key[] = "{\"mod\\u0065l\0\0\0\0\0\0\0\0\":1}";
        S2A_CHECK_INT(s2a_json_scan_object(p, nul_key, sizeof(nul_key) - 1, keys, 2, out, &err),
                      -1);
        S2A_CHECK_STR(err, "invalid JSON at offset 12");
    }
    /* Prefixes and extensions of the key do not match. */
    t = "{\"mode\":1,\"models\":2,\"Model\":3,\"\\u006dode\":4}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), 0);
    S2A_CHECK(out[0].type == S2A_JSON_NONE);

    /* object_get follows the same rules. */
    {
        s2a_json_span obj = {t, strlen(t), S2A_JSON_OBJECT}, v;
        S2A_CHECK_INT(s2a_json_object_get(&obj, "model", &v), 0);
        S2A_CHECK_INT(s2a_json_object_get(&obj, "mode", &v), 1);
        S2A_CHECK(span_is(&v, S2A_JSON_NUMBER, "4"));
        t = "{ \"a\" : { \"model\" : 1 } , \"\\u006dodel\" : \"x\\\\\" , \"model\" : [ \"y\" ] }";
        obj.p = t;
        obj.len = strlen(t);
        S2A_CHECK_INT(s2a_json_object_get(&obj, "model", &v), 1);
        S2A_CHECK(span_is(&v, S2A_JSON_ARRAY, "[ \"y\" ]"));
        S2A_CHECK_INT(s2a_json_object_get(&obj, "a", &v), 1);
        S2A_CHECK(span_is(&v, S2A_JSON_OBJECT, "{ \"model\" : 1 }"));
        t = "{}";
        obj.p = t;
        obj.len = 2;
        S2A_CHECK_INT(s2a_json_object_get(&obj, "model", &v), 0);
    }
}

static void test_backslashes(apr_pool_t *p)
{
    static const char *const keys[] = {"a", "b", "model"};
    s2a_json_span out[3];
    const char *err = NULL;
    const char *t;

    /* "x\\\\" is x followed by two backslashes: the quote after them closes the string. */
    t = "{\"a\":\"x\\\\\\\\\",\"b\":\"\\\\\",\"model\":\"m\"}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 3, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"x\\\\\\\\\""));
    S2A_CHECK_STR(s2a_json_string_dup(p, &out[0]), "x\\\\");
    S2A_CHECK(span_is(&out[1], S2A_JSON_STRING, "\"\\\\\""));
    S2A_CHECK_STR(s2a_json_string_dup(p, &out[1]), "\\");
    S2A_CHECK(span_is(&out[2], S2A_JSON_STRING, "\"m\""));

    /* \\\" is a backslash then an escaped quote: the string goes on. */
    t = "{\"a\":\"\\\\\\\",\\\"model\\\":\\\"\",\"model\":\"ok\"}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 3, out, &err), 0);
    S2A_CHECK_STR(s2a_json_string_dup(p, &out[0]), "\\\",\"model\":\"");
    S2A_CHECK(span_is(&out[2], S2A_JSON_STRING, "\"ok\""));

    /* An escaped final quote leaves the string open. */
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"abc\\\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"abc\\\\\\\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"abc\\\\\"}"), 0);
    /* Only the JSON escapes exist. */
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"\\x41\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"\\'\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"\\u12G4\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"\\u123\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"\\u\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"\\\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"\\q\":1}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00aF\"}"), 0);
}

static const char *dup_raw(apr_pool_t *p, const char *raw)
{
    s2a_json_span sp = {raw, strlen(raw), S2A_JSON_STRING};
    return s2a_json_string_dup(p, &sp);
}

static void test_string_dup(apr_pool_t *p)
{
    S2A_CHECK_STR(dup_raw(p, "\"\""), "");
    S2A_CHECK_STR(dup_raw(p, "\"plain\""), "plain");
    S2A_CHECK_STR(dup_raw(p, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), "\"\\/\b\f\n\r\t");
    S2A_CHECK_STR(dup_raw(p, "\"\\u0041\\u00e9\\u20AC\""), "A\xc3\xa9\xe2\x82\xac");
    S2A_CHECK_STR(dup_raw(p, "\"\\u007f\\u0080\\u07ff\\u0800\\uffff\""),
                  "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
    S2A_CHECK_STR(dup_raw(p, "\"a\\ud83d\\ude00!\""), "a\xf0\x9f\x98\x80!");
    S2A_CHECK_STR(dup_raw(p, "\"\\udbff\\udfff\""), "\xf4\x8f\xbf\xbf");
    S2A_CHECK_STR(dup_raw(p, "\"\\ud800\\udc00\""), "\xf0\x90\x80\x80");
    /* Raw UTF-8 passes through. */
    S2A_CHECK_STR(dup_raw(p, "\"\xe4\xbd\xa0\xe5\xa5\xbd\""), "\xe4\xbd\xa0\xe5\xa5\xbd");

    /* Unpaired surrogates, NUL, bad escapes, unescaped quotes, not a string at all. */
    S2A_CHECK(dup_raw(p, "\"\\ud83d\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"\\ud83dx\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"\\ud83d\\u0041\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"\\ud83d\\ud83d\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"\\ude00\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"\\ude00\\ud83d\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"a\\u0000b\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"\\x\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"\\u12\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"a\\\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"a\"b\"") == NULL);
    S2A_CHECK(dup_raw(p, "\"") == NULL);
    S2A_CHECK(dup_raw(p, "abc") == NULL);
    S2A_CHECK(dup_raw(p, "12") == NULL);
    S2A_CHECK(s2a_json_string_dup(p, NULL) == NULL);

    /* Comparison decodes like s2a_json_string_dup. */
    {
        s2a_json_span sp = {"\"message_delta\"", 15, S2A_JSON_STRING};

        S2A_CHECK_INT(s2a_json_string_equals(&sp, "message_delta"), 1);
        S2A_CHECK_INT(s2a_json_string_equals(&sp, "message_delt"), 0);
        S2A_CHECK_INT(s2a_json_string_equals(&sp, "message_deltas"), 0);
        S2A_CHECK_INT(s2a_json_string_equals(&sp, ""), 0);
        sp.p = "\"message\\u005fdelta\"";
        sp.len = strlen(sp.p);
        S2A_CHECK_INT(s2a_json_string_equals(&sp, "message_delta"), 1);
        sp.p = "\"\\u00e9\\/\"";
        sp.len = strlen(sp.p);
        S2A_CHECK_INT(s2a_json_string_equals(&sp, "\xc3\xa9/"), 1);
        sp.p = "\"a\\u0000\"";
        sp.len = strlen(sp.p);
        S2A_CHECK_INT(s2a_json_string_equals(&sp, "a"), 0);
        sp.p = "\"\"";
        sp.len = 2;
        S2A_CHECK_INT(s2a_json_string_equals(&sp, ""), 1);
        sp.type = S2A_JSON_NUMBER;
        S2A_CHECK_INT(s2a_json_string_equals(&sp, ""), 0);
        S2A_CHECK_INT(s2a_json_string_equals(NULL, ""), 0);
    }
    {
        s2a_json_span sp = {"\"a\0b\"", 5, S2A_JSON_STRING};
        S2A_CHECK(s2a_json_string_dup(p, &sp) == NULL);
    }
}

static void test_quote(apr_pool_t *p)
{
    static const char *const keys[] = {"k"};
    char all[128]; /* every ASCII byte; lone bytes above 0x7f are not UTF-8 */
    const char *samples[] = {"",
                             "claude-opus-4-1",
                             "a\"b\\c",
                             "line\nfeed\r\ttab\b\f",
                             "\x01\x1f\x7f",
                             "\xe4\xbd\xa0 \xf0\x9f\x98\x80",
                             "\\\\\"\"\\",
                             all};
    apr_size_t i;

    for (i = 1; i < 128; i++)
        all[i - 1] = (char)i;
    all[127] = '\0';

    S2A_CHECK_STR(s2a_json_quote(p, ""), "\"\"");
    S2A_CHECK_STR(s2a_json_quote(p, "a\"b\\c\n\x01\x1f"), "\"a\\\"b\\\\c\\n\\u0001\\u001f\"");
    S2A_CHECK_STR(s2a_json_quote(p, "\b\f\r\t/"), "\"\\b\\f\\r\\t/\"");
    S2A_CHECK(s2a_json_quote(p, NULL) == NULL);
    /* bytes that are not UTF-8 never reach a JSON text as they are */
    S2A_CHECK_STR(s2a_json_quote(p, "a\xff\xc3"), "\"a\xef\xbf\xbd\xef\xbf\xbd\"");

    /* Every sample survives quote -> scan -> decode unchanged. */
    for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const char *doc = apr_pstrcat(p, "{\"k\":", s2a_json_quote(p, samples[i]), "}", NULL);
        s2a_json_span out[1];
        const char *err = NULL;

        S2A_CHECK_INT(s2a_json_scan_object(p, doc, strlen(doc), keys, 1, out, &err), 0);
        S2A_CHECK(out[0].type == S2A_JSON_STRING);
        S2A_CHECK_STR(s2a_json_string_dup(p, &out[0]), samples[i]);
    }
}

static void test_truncations(apr_pool_t *p)
{
    const char *docs[] = {CLAUDE_BODY, ANSWER, HOSTILE_ANSWER,
                          "{\"a\":-12.5e+3,\"b\":[true,false,null,{},[]],\"c\":\"\\u00e9\"}"};
    /* "model" leaves every container to the delimiting pass; the others have theirs
     * validated. */
    static const char *const keys[] = {"model", "messages", "tools", "metadata", "content", "b"};
    apr_size_t d, k, len;

    for (d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            apr_size_t full = strlen(docs[d]);
            int rejected = 0, truncated_msg = 0;
            const char *err = NULL;

            S2A_CHECK_INT(scan_key(p, docs[d], full, keys[k], &err), 0);
            for (len = 0; len < full; len++) {
                err = NULL;
                if (scan_key(p, docs[d], len, keys[k], &err) == -1 && err)
                    rejected++;
                if (err && len > 0 && strcmp(err, "truncated JSON") == 0)
                    truncated_msg++;
            }
            /* Every proper prefix is rejected, and all but the empty one as truncated. */
            S2A_CHECK_INT(rejected, full);
            S2A_CHECK_INT(truncated_msg, full - 1);
        }
    }
}

/* Containers nobody asked for are delimited, not validated: what decides their extent is
 * still checked, the rest is left to the upstream. */
static void test_relaxed(apr_pool_t *p)
{
    static const char *const keys[] = {"model", "x"};
    s2a_json_span out[2];
    const char *err = NULL;
    const char *t;

    t = "{\"x\":{\"n\":01,\"t\":tru,\"s\":\"\\q\",\"u\":\"\\u12\",:,\"e\":1e},\"model\":\"m\"}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 1, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"m\""));
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), -1);
    S2A_CHECK_STR(err, "invalid JSON at offset 11");
    /* Nor does a requested key's value lose its checks when it comes after others. */
    t = "{\"y\":[tru],\"x\":[tru]}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), -1);
    S2A_CHECK_STR(err, "invalid JSON at offset 16");

    /* Brackets and escaped quotes inside strings do not end the container. */
    t = "{\"y\":[\"]\",\"}\",\"\\\"]\",\"\\\\\",{\"a\\\"}\":\"[\"}],\"model\":\"m\"}";
    S2A_CHECK_INT(s2a_json_scan_object(p, t, strlen(t), keys, 2, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"m\""));
    S2A_CHECK(out[1].type == S2A_JSON_NONE);

    /* What the extent depends on is still checked. */
    S2A_CHECK_INT(scan_str(p, "{\"y\":[\"abc]}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":[\"abc\\\"]}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":[\"abc\\\\\"]}"), 0);
    S2A_CHECK_INT(scan_str(p, "{\"y\":[[]}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":[]]}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":{\"a\":[}]}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":{\"a\":{]}}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":[\"}\"}"), -1);
    /* Scalars of the outer object are always validated. */
    S2A_CHECK_INT(scan_str(p, "{\"y\":tru}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":01}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":\"\\q\"}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":[1],}"), -1);
    S2A_CHECK_INT(scan_str(p, "{\"y\":[1] \"z\":2}"), -1);
}

static void test_invalid(apr_pool_t *p)
{
    static const char *const bad[] = {"   ",
                                      "[1,2]",
                                      "\"str\"",
                                      "42",
                                      "true",
                                      "null",
                                      "{} x",
                                      "{}}",
                                      "{}{}",
                                      "{},",
                                      "{\"a\":1,}",
                                      "{,}",
                                      "{,\"a\":1}",
                                      "{\"a\" 1}",
                                      "{\"a\"::1}",
                                      "{\"a\":1 \"b\":2}",
                                      "{\"a\":01}",
                                      "{\"a\":-}",
                                      "{\"a\":-a}",
                                      "{\"a\":1.}",
                                      "{\"a\":.5}",
                                      "{\"a\":1e}",
                                      "{\"a\":1e+}",
                                      "{\"a\":+1}",
                                      "{\"a\":1.5.5}",
                                      "{\"a\":0x10}",
                                      "{\"a\":tru}",
                                      "{\"a\":truth}",
                                      "{\"a\":nul}",
                                      "{\"a\":True}",
                                      "{\"a\":NaN}",
                                      "{\"a\":[1 2]}",
                                      "{\"a\":[1,]}",
                                      "{\"a\":[,1]}",
                                      "{\"a\":}",
                                      "{a:1}",
                                      "{'a':1}",
                                      "{\"a\":[}",
                                      "{\"a\":{]}",
                                      "{\"a\":[1}]",
                                      "{\"a\":{\"b\":1]}",
                                      "{\"a\":1]",
                                      "{1:2}",
                                      "{\"a\"}",
                                      "{\"a\":'x'}",
                                      "\xef\xbb\xbf{}",
                                      "{\"a\":undefined}"};

    /* Syntax errors that leave the extent of a container alone; accepted only when nobody
     * reads that container. */
    static const char *const relaxed[] = {"{\"a\":[1 2]}", "{\"a\":[1,]}", "{\"a\":[,1]}"};
    const char *err = NULL;
    apr_size_t i, j;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rv = scan_strict(p, bad[i]), want = -1;
        if (rv != -1)
            fprintf(stderr, "accepted invalid input: %s\n", bad[i]);
        S2A_CHECK_INT(rv, -1);
        for (j = 0; j < sizeof(relaxed) / sizeof(relaxed[0]); j++) {
            if (strcmp(bad[i], relaxed[j]) == 0)
                want = 0;
        }
        S2A_CHECK_INT(scan_str(p, bad[i]), want);
    }

    S2A_CHECK_INT(scan_exact(p, "", 0, &err), -1);
    S2A_CHECK(err != NULL);
    S2A_CHECK_INT(scan_exact(p, "[{\"model\":\"x\"}]", 15, &err), -1);
    S2A_CHECK_STR(err, "body is not a JSON object");
    S2A_CHECK_INT(scan_exact(p, "{\"a\":1} {", 9, &err), -1);
    S2A_CHECK_STR(err, "trailing data after JSON object");
    S2A_CHECK_INT(scan_key(p, "{\"a\":[1 2]}", 11, "a", &err), -1);
    S2A_CHECK_STR(err, "invalid JSON at offset 8");
    S2A_CHECK_INT(scan_exact(p, "{\"a\":[1}}", 10, &err), -1);
    S2A_CHECK_STR(err, "invalid JSON at offset 7");
    S2A_CHECK_INT(scan_exact(p, "{\"a\":\"\\q\"}", 10, &err), -1);
    S2A_CHECK_STR(err, "invalid JSON at offset 6");
    /* Binary garbage, NUL bytes included. */
    S2A_CHECK_INT(scan_exact(p, "{\"a\":\0}", 7, &err), -1);
    S2A_CHECK_INT(scan_exact(p, "\0{}", 3, &err), -1);
    S2A_CHECK_INT(scan_exact(p, "{}\0", 3, &err), -1);
    S2A_CHECK_INT(scan_exact(p, "\x80\xff\xfe{", 4, &err), -1);

    /* Valid corner cases. */
    S2A_CHECK_INT(scan_str(p, "{}"), 0);
    S2A_CHECK_INT(scan_str(p, " {\n} \t"), 0);
    S2A_CHECK_INT(scan_str(p, "{\"\":\"\"}"), 0);
    S2A_CHECK_INT(scan_str(p, "{\"a\":[[],{},\"\",0,-0,0.0,1E9,1e-9,-0.5e+10,true,false,null]}"),
                  0);
    S2A_CHECK_INT(scan_str(p, "{\"a\":{\"b\":{\"c\":[{\"d\":[]}]}}}"), 0);
    /* No key list at all is fine too. */
    S2A_CHECK_INT(s2a_json_scan_object(p, "{\"a\":1}", 7, NULL, 0, NULL, &err), 0);
    /* Without a pool the reason is still given, without the offset. */
    S2A_CHECK_INT(s2a_json_scan_object(NULL, "{\"a\":x}", 7, NULL, 0, NULL, &err), -1);
    S2A_CHECK_STR(err, "invalid JSON");
}

static void test_depth(apr_pool_t *p)
{
    apr_size_t n = 2000000, i, levels;
    char *deep = malloc(n);
    const char *err = NULL;
    int strict;

    /* The outer object plus 511 arrays is exactly the limit, validated or delimited. */
    for (strict = 0; strict < 2; strict++) {
        for (levels = S2A_JSON_MAX_DEPTH - 1; levels <= S2A_JSON_MAX_DEPTH; levels++) {
            char *t = apr_palloc(p, 2 * levels + 8), *o = t;

            memcpy(o, "{\"a\":", 5);
            o += 5;
            for (i = 0; i < levels; i++)
                *o++ = '[';
            for (i = 0; i < levels; i++)
                *o++ = ']';
            *o++ = '}';
            err = NULL;
            S2A_CHECK_INT(scan_key(p, t, (apr_size_t)(o - t), strict ? "a" : "model", &err),
                          levels < S2A_JSON_MAX_DEPTH ? 0 : -1);
            if (levels == S2A_JSON_MAX_DEPTH)
                S2A_CHECK_STR(err, "JSON nested too deeply");
        }

        /* Very deep input is refused without recursion. */
        memcpy(deep, "{\"a\":", 5);
        memset(deep + 5, '[', n - 5);
        S2A_CHECK_INT(scan_key(p, deep, n, strict ? "a" : "model", &err), -1);
        S2A_CHECK_STR(err, "JSON nested too deeply");
    }
    free(deep);
}

/* A 1 MB string of long backslash runs, each followed by escaped quotes: a scanner that
 * restarts or walks back from the string start at every quote would be quadratic here. */
static void test_large_body(apr_pool_t *p)
{
    static const char *const keys[] = {"model", "x"};
    apr_size_t n = 1 << 20, i;
    char *t = malloc(n / 2 + 64), *o = t;
    s2a_json_span out[2];
    const char *err = NULL;

    o += sprintf(o, "{\"x\":\"");
    for (i = 0; i < n / 4; i++) {
        memcpy(o, (i % 512) < 500 ? "\\\\" : "\\\"", 2);
        o += 2;
    }
    o += sprintf(o, "\",\"model\":\"m\"}");
    S2A_CHECK_INT(s2a_json_scan_object(p, t, (apr_size_t)(o - t), keys, 2, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"m\""));
    S2A_CHECK(out[1].type == S2A_JSON_STRING && out[1].len == n / 2 + 2);

    /* The same string inside a container that is only delimited. */
    o = t;
    o += sprintf(o, "{\"y\":[\"");
    for (i = 0; i < n / 4; i++) {
        memcpy(o, (i % 512) < 500 ? "\\\\" : "\\\"", 2);
        o += 2;
    }
    o += sprintf(o, "\"],\"model\":\"m\"}");
    S2A_CHECK_INT(s2a_json_scan_object(p, t, (apr_size_t)(o - t), keys, 2, out, &err), 0);
    S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"m\""));
    free(t);
}

static void test_splice(apr_pool_t *p)
{
    const char *buf = "0123456789";
    apr_size_t out_len = 0;
    char *r;

    {
        /* Unsorted: a replacement, an insertion at the end, one at the start, a deletion. */
        s2a_json_edit e[] = {
            {4, 2, "xyz", 3}, {10, 0, "Z", 1}, {8, 1, NULL, 0}, {0, 1, "A", 1}, {0, 0, "<", 1}};
        r = s2a_json_splice(p, buf, 10, e, 5, &out_len);
        S2A_CHECK_STR(r, "<A123xyz67"
                         "9Z");
        S2A_CHECK_INT(out_len, 12);
        /* The caller's array is left as it was. */
        S2A_CHECK_INT(e[0].off, 4);
        S2A_CHECK_INT(e[4].off, 0);
    }
    {
        /* Insertions at one offset keep their order and come before a replacement there. */
        s2a_json_edit e[] = {{3, 2, "R", 1}, {3, 0, "a", 1}, {3, 0, "b", 1}, {5, 0, "c", 1}};
        r = s2a_json_splice(p, buf, 10, e, 4, &out_len);
        S2A_CHECK_STR(r, "012abRc56789");
        S2A_CHECK_INT(out_len, 12);
    }
    {
        s2a_json_edit e[] = {{0, 10, "all", 3}};
        S2A_CHECK_STR(s2a_json_splice(p, buf, 10, e, 1, &out_len), "all");
        S2A_CHECK_INT(out_len, 3);
        e[0].text_len = 0;
        S2A_CHECK_STR(s2a_json_splice(p, buf, 10, e, 1, &out_len), "");
        S2A_CHECK_INT(out_len, 0);
    }
    S2A_CHECK_STR(s2a_json_splice(p, buf, 10, NULL, 0, &out_len), buf);
    S2A_CHECK_INT(out_len, 10);
    {
        /* Overlaps, in either order, and an insertion strictly inside a replacement. */
        s2a_json_edit e1[] = {{4, 2, "x", 1}, {2, 3, "y", 1}};
        s2a_json_edit e2[] = {{2, 3, "y", 1}, {3, 0, "i", 1}};
        s2a_json_edit e3[] = {{2, 3, "y", 1}, {2, 1, "z", 1}};
        s2a_json_edit e4[] = {{2, 3, "y", 1}, {5, 1, "z", 1}};
        S2A_CHECK(s2a_json_splice(p, buf, 10, e1, 2, &out_len) == NULL);
        S2A_CHECK(s2a_json_splice(p, buf, 10, e2, 2, &out_len) == NULL);
        S2A_CHECK(s2a_json_splice(p, buf, 10, e3, 2, &out_len) == NULL);
        S2A_CHECK_STR(s2a_json_splice(p, buf, 10, e4, 2, &out_len), "01yz6789");
    }
    {
        /* Out of range. */
        s2a_json_edit e1[] = {{11, 0, "x", 1}};
        s2a_json_edit e2[] = {{8, 3, "x", 1}};
        s2a_json_edit e3[] = {{1, (apr_size_t)-1, "x", 1}};
        S2A_CHECK(s2a_json_splice(p, buf, 10, e1, 1, &out_len) == NULL);
        S2A_CHECK(s2a_json_splice(p, buf, 10, e2, 1, &out_len) == NULL);
        S2A_CHECK(s2a_json_splice(p, buf, 10, e3, 1, &out_len) == NULL);
        S2A_CHECK(s2a_json_splice(p, buf, 10, e1, -1, &out_len) == NULL);
    }
    {
        /* The real use: rename the model and drop a key of a scanned body. */
        static const char *const keys[] = {"model", "temperature"};
        s2a_json_span out[2];
        const char *err = NULL;
        const char *q = s2a_json_quote(p, "claude-opus-4-1-20250805");
        s2a_json_edit e[2];
        apr_size_t len = strlen(CLAUDE_BODY);

        S2A_CHECK_INT(s2a_json_scan_object(p, CLAUDE_BODY, len, keys, 2, out, &err), 0);
        e[0].off = (apr_size_t)(out[1].p - CLAUDE_BODY) - strlen(",\"temperature\":");
        e[0].len = strlen(",\"temperature\":") + out[1].len;
        e[0].text = NULL;
        e[0].text_len = 0;
        e[1].off = (apr_size_t)(out[0].p - CLAUDE_BODY);
        e[1].len = out[0].len;
        e[1].text = q;
        e[1].text_len = strlen(q);
        r = s2a_json_splice(p, CLAUDE_BODY, len, e, 2, &out_len);
        S2A_CHECK(r != NULL);
        S2A_CHECK_INT(out_len, strlen(r));
        S2A_CHECK_INT(s2a_json_scan_object(p, r, out_len, keys, 2, out, &err), 0);
        S2A_CHECK(span_is(&out[0], S2A_JSON_STRING, "\"claude-opus-4-1-20250805\""));
        S2A_CHECK(out[1].type == S2A_JSON_NONE);
        S2A_CHECK_INT(out_len, len - strlen(",\"temperature\":1") -
                                   strlen("\"claude-sonnet-4-5-20250929\"") + strlen(q));
    }
}

/* Feed every prefix of doc, each in a buffer of exactly its size, and check the answer is
 * "need more" until the value's closing quote arrives, then the value's span. */
static void check_prefixes(const char *doc, const char *raw_value)
{
    apr_size_t full = strlen(doc), want_off, want_end, len;
    int wrong = 0;

    want_off = (apr_size_t)(strstr(doc, raw_value) - doc);
    want_end = want_off + strlen(raw_value);
    for (len = 0; len <= full; len++) {
        char *copy = malloc(len ? len : 1);
        apr_size_t off = 0, vlen = 0;
        int rv;

        memcpy(copy, doc, len);
        rv = s2a_json_prefix_find_model(copy, len, &off, &vlen);
        free(copy);
        if (len < want_end ? rv != 0
                           : (rv != 1 || off != want_off || vlen != want_end - want_off)) {
            fprintf(stderr, "prefix %lu: rv %d off %lu vlen %lu\n", (unsigned long)len, rv,
                    (unsigned long)off, (unsigned long)vlen);
            wrong++;
        }
    }
    S2A_CHECK_INT(wrong, 0);
}

static int find_model(const char *t, apr_size_t *off, apr_size_t *vlen)
{
    return s2a_json_prefix_find_model(t, strlen(t), off, vlen);
}

static void test_prefix_find_model(void)
{
    apr_size_t off = 0, vlen = 0;

    check_prefixes(ANSWER, "\"claude-sonnet-4-5-20250929\"");
    check_prefixes(HOSTILE_ANSWER, "\"real\\\\\\\"one\\\\\\\\\"");

    S2A_CHECK_INT(find_model("", &off, &vlen), 0);
    /* no byte yet may come as no buffer at all */
    S2A_CHECK_INT(s2a_json_prefix_find_model(NULL, 0, &off, &vlen), 0);
    S2A_CHECK_INT(find_model(" \n", &off, &vlen), 0);
    S2A_CHECK_INT(find_model("{\"model\":\"x\"}", &off, &vlen), 1);
    S2A_CHECK_INT(off, 9);
    S2A_CHECK_INT(vlen, 3);
    /* Numbers and literals may still be growing when the buffer ends. */
    S2A_CHECK_INT(find_model("{\"a\":12", &off, &vlen), 0);
    S2A_CHECK_INT(find_model("{\"a\":tr", &off, &vlen), 0);
    S2A_CHECK_INT(find_model("{\"a\":[1,{\"model\":\"x\"},\"model\"", &off, &vlen), 0);

    /* Cases where the answer can never carry a top-level model. */
    S2A_CHECK_INT(find_model("[", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("event: x", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{}", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{\"a\":1}", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{\"message\":{\"model\":\"x\"}}", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{\"model\":5}", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{\"model\":null,\"model\":\"x\"}", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{\"model\" 5", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{\"a\":1 \"model\":\"x\"}", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{model:\"x\"}", &off, &vlen), -1);
    S2A_CHECK_INT(find_model("{\"a\":?}", &off, &vlen), -1);
}

/* Array elements come back in order, whatever they are. */
static void test_array_next(apr_pool_t *p)
{
    static const char *const keys[] = {"a", "e"};
    const char *doc = "{\"a\": [ 1, \"x,]\" ,{\"k\":[2,3]}, [], true ,-4.5e1], \"e\": []}";
    const char *want[] = {"1", "\"x,]\"", "{\"k\":[2,3]}", "[]", "true", "-4.5e1"};
    s2a_json_span f[2], el;
    apr_size_t pos = 0;
    const char *err;
    int n = 0;

    S2A_CHECK_INT(s2a_json_scan_object(p, doc, strlen(doc), keys, 2, f, &err), 0);
    while (s2a_json_array_next(&f[0], &pos, &el)) {
        S2A_CHECK(n < 6);
        if (n < 6) {
            S2A_CHECK_STR(apr_pstrmemdup(p, el.p, el.len), want[n]);
        }
        n++;
    }
    S2A_CHECK_INT(n, 6);
    pos = 0;
    S2A_CHECK_INT(s2a_json_array_next(&f[1], &pos, &el), 0);
    pos = 0;
    S2A_CHECK_INT(s2a_json_array_next(NULL, &pos, &el), 0);
}

/* A value only delimited: taken whatever its inner syntax, as a key nobody
 * asked for would be; the same value checked is refused. */
static void test_scan_some(apr_pool_t *p)
{
    static const char *const keys[] = {"model", "tools"};
    const char *doc = "{\"tools\": [{\"a\" 1,, }], \"model\": \"m\"}";
    s2a_json_span f[2];
    const char *err;

    S2A_CHECK_INT(s2a_json_scan_object_some(p, doc, strlen(doc), keys, 2, 1, f, &err), 0);
    S2A_CHECK_INT(f[1].type, S2A_JSON_ARRAY);
    S2A_CHECK_STR(apr_pstrmemdup(p, f[1].p, f[1].len), "[{\"a\" 1,, }]");
    S2A_CHECK_STR(apr_pstrmemdup(p, f[0].p, f[0].len), "\"m\"");
    S2A_CHECK_INT(s2a_json_scan_object_some(p, doc, strlen(doc), keys, 2, 2, f, &err), -1);
    /* the extent is still checked */
    doc = "{\"tools\": [{\"a\": \"]}], \"model\": \"m\"}";
    S2A_CHECK_INT(s2a_json_scan_object_some(p, doc, strlen(doc), keys, 2, 1, f, &err), -1);
}

static void note_value(void *ctx, const s2a_json_span *v)
{
    s2a_buf *seen = ctx;
    s2a_buf_append(seen, v->p, v->len);
    s2a_buf_append(seen, ";", 1);
}

/* The scan notes one member of the elements of a delimited array, and
 * accepts and refuses exactly what it does without noting: at every cut
 * of the body too. */
static void test_scan_noting(apr_pool_t *p)
{
    static const char *const keys[] = {"model", "tools"};
    const char *doc =
        "{\"tools\": [{\"type\":\"a\", \"s\":{\"type\":\"no\"}}, [{\"type\":\"no\"}],"
        " {\"d\":\"x: \\\"type\\\", \\\\\", \"type\" : \"b\"}, {\"type\":1}, \"type\","
        " {\"t\\u0079pe\":\"c\",\"n\":[\"type\",\"no\"]}], \"model\": \"m\"}";
    s2a_json_span f[2], g[2];
    s2a_buf seen;
    s2a_json_member_note n = {1, "type", note_value, &seen};
    const char *err;
    apr_size_t cut;

    s2a_buf_init(&seen, p, 64);
    S2A_CHECK_INT(s2a_json_scan_object_noting(p, doc, strlen(doc), keys, 2, 1, &n, f, &err), 0);
    S2A_CHECK_STR(apr_pstrmemdup(p, seen.data, seen.len), "\"a\";\"b\";\"c\";");
    S2A_CHECK_INT(f[1].type, S2A_JSON_ARRAY);
    S2A_CHECK_STR(apr_pstrmemdup(p, f[0].p, f[0].len), "\"m\"");
    for (cut = 0; cut <= strlen(doc); cut++) {
        int plain = s2a_json_scan_object_some(p, doc, cut, keys, 2, 1, g, &err);
        seen.len = 0;
        S2A_CHECK_INT(s2a_json_scan_object_noting(p, doc, cut, keys, 2, 1, &n, f, &err), plain);
    }
    /* a mismatched bracket inside is refused as before */
    doc = "{\"tools\": [{\"type\":\"a\"]], \"model\": \"m\"}";
    seen.len = 0;
    S2A_CHECK_INT(s2a_json_scan_object_noting(p, doc, strlen(doc), keys, 2, 1, &n, f, &err), -1);
}

/* Whether a member is there, the walk ending at the first. */
static void test_object_has(void)
{
    const char *doc = "{\"a\":{\"type\":1}, \"t\\u0079pe\" : [\"x\"], \"b\":2}";
    s2a_json_span obj = {doc, strlen(doc), S2A_JSON_OBJECT};
    s2a_json_span cut = {doc, 20, S2A_JSON_OBJECT};

    S2A_CHECK_INT(s2a_json_object_has(&obj, "type"), 1);
    S2A_CHECK_INT(s2a_json_object_has(&obj, "b"), 1);
    S2A_CHECK_INT(s2a_json_object_has(&obj, "c"), 0);
    S2A_CHECK_INT(s2a_json_object_has(&cut, "b"), 0);
    S2A_CHECK_INT(s2a_json_object_has(NULL, "b"), 0);
}

static void note_level(void *ctx, int level, const s2a_json_span *name, const s2a_json_span *v)
{
    s2a_buf *seen = ctx;
    char digit = (char)('0' + level);

    s2a_buf_append(seen, &digit, 1);
    if (name->type == S2A_JSON_STRING) {
        s2a_buf_append(seen, name->p, name->len);
    }
    s2a_buf_append(seen, "=", 1);
    s2a_buf_append(seen, v->p, v->len);
    s2a_buf_append(seen, ";", 1);
}

/* The values inside one key's value, each as it ends, down to the depth
 * asked; the scan accepts and refuses as it does without reading them. */
static void test_scan_values(apr_pool_t *p)
{
    static const char *const keys[] = {"model", "tools"};
    const char *doc = "{\"tools\": [{\"type\":\"function\", \"function\": {\"name\":\"a\","
                      "\"parameters\":{\"type\":\"object\",\"deep\":[1]}}}, 7, [true]],"
                      " \"model\":\"m\"}";
    s2a_json_span f[2], g[2];
    s2a_buf seen;
    s2a_json_values v = {1, 3, note_level, &seen};
    const char *err;
    apr_size_t cut;

    s2a_buf_init(&seen, p, 64);
    S2A_CHECK_INT(s2a_json_scan_object_values(p, doc, strlen(doc), keys, 2, &v, f, &err), 0);
    S2A_CHECK_STR(
        apr_pstrmemdup(p, seen.data, seen.len),
        "2\"type\"=\"function\";3\"name\"=\"a\";"
        "3\"parameters\"={\"type\":\"object\",\"deep\":[1]};"
        "2\"function\"={\"name\":\"a\",\"parameters\":{\"type\":\"object\",\"deep\":[1]}};"
        "1={\"type\":\"function\", \"function\": {\"name\":\"a\",\"parameters\":"
        "{\"type\":\"object\",\"deep\":[1]}}};1=7;2=true;1=[true];");
    S2A_CHECK_STR(apr_pstrmemdup(p, f[0].p, f[0].len), "\"m\"");
    /* one level: the elements only */
    v.depth = 1;
    seen.len = 0;
    S2A_CHECK_INT(s2a_json_scan_object_values(p, doc, strlen(doc), keys, 2, &v, f, &err), 0);
    S2A_CHECK(strncmp(seen.data, "1={", 3) == 0 && strstr(seen.data, ";1=7;1=[true];") != NULL);
    v.depth = 3;
    for (cut = 0; cut <= strlen(doc); cut++) {
        int plain = s2a_json_scan_object_some(p, doc, cut, keys, 2, 2, g, &err);
        seen.len = 0;
        S2A_CHECK_INT(s2a_json_scan_object_values(p, doc, cut, keys, 2, &v, f, &err), plain);
    }
    /* a key met twice is refused, as by s2a_json_scan_object_some */
    doc = "{\"tools\":[1],\"tools\":[2]}";
    S2A_CHECK_INT(s2a_json_scan_object_values(p, doc, strlen(doc), keys, 2, &v, f, &err), -2);
    /* another key's value is not read */
    seen.len = 0;
    doc = "{\"model\":[1,2],\"tools\":3}";
    S2A_CHECK_INT(s2a_json_scan_object_values(p, doc, strlen(doc), keys, 2, &v, f, &err), 0);
    S2A_CHECK_INT((int)seen.len, 0);
}

/* Elements and one member of each object in a single pass; a malformed
 * element ends the walk, never the bounds. */
static void test_array_next_member(apr_pool_t *p)
{
    static const char *const keys[] = {"a"};
    const char *doc = "{\"a\": [ {\"type\":\"x\", \"b\":{\"type\":[1,\"}\"]}} , {\"b\":1}, 3,"
                      " {\"type\":\"y\",\"type\" : \"z\"}, {}, {\"t\\u0079pe\":true} ]}";
    const char *elems[] = {"{\"type\":\"x\", \"b\":{\"type\":[1,\"}\"]}}",
                           "{\"b\":1}",
                           "3",
                           "{\"type\":\"y\",\"type\" : \"z\"}",
                           "{}",
                           "{\"t\\u0079pe\":true}"};
    const char *members[] = {"\"x\"", NULL, NULL, "\"z\"", NULL, "true"};
    s2a_json_span f[1], el, m;
    apr_size_t pos = 0;
    const char *err;
    int n = 0;

    S2A_CHECK_INT(s2a_json_scan_object_some(p, doc, strlen(doc), keys, 1, 0, f, &err), 0);
    while (s2a_json_array_next_member(&f[0], &pos, "type", &el, &m)) {
        S2A_CHECK(n < 6);
        if (n < 6) {
            S2A_CHECK_STR(apr_pstrmemdup(p, el.p, el.len), elems[n]);
            if (members[n]) {
                S2A_CHECK_STR(apr_pstrmemdup(p, m.p, m.len), members[n]);
            } else {
                S2A_CHECK_INT(m.type, S2A_JSON_NONE);
            }
        }
        n++;
    }
    S2A_CHECK_INT(n, 6);
    {
        const char *bad[] = {"[{\"type\" \"x\"}]", "[{\"type\":}]", "[{\"type\":\"x\"", "[{1:2}]",
                             "[{\"type\":\"x\"]"};
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            s2a_json_span arr = {bad[i], strlen(bad[i]), S2A_JSON_ARRAY};
            pos = 0;
            S2A_CHECK_INT(s2a_json_array_next_member(&arr, &pos, "type", &el, &m), 0);
        }
    }
}

/* Several members in one pass: of an array's elements, and of one object;
 * the last occurrence wins, keys match decoded, absent ones are NONE. */
static void test_members(apr_pool_t *p)
{
    static const char *const keys[] = {"type", "function"};
    static const char *const fkeys[] = {"name", "description", "parameters"};
    s2a_json_span arr = {"[{\"function\":{\"name\":\"f\",\"parameters\":{\"a\":[1]},"
                         "\"na\\u006de\":\"g\"},\"type\":\"function\"}, 7, {\"type\":1,"
                         "\"type\":2}]",
                         0, S2A_JSON_ARRAY};
    s2a_json_span el, m[2], fn[3];
    apr_size_t pos = 0;

    arr.len = strlen(arr.p);
    S2A_CHECK_INT(s2a_json_array_next_members(&arr, &pos, keys, 2, &el, m), 1);
    S2A_CHECK_STR(apr_pstrmemdup(p, m[0].p, m[0].len), "\"function\"");
    S2A_CHECK_INT(m[1].type, S2A_JSON_OBJECT);
    S2A_CHECK_INT(s2a_json_object_members(&m[1], fkeys, 3, fn), 2);
    S2A_CHECK_STR(apr_pstrmemdup(p, fn[0].p, fn[0].len), "\"g\"");
    S2A_CHECK_INT(fn[1].type, S2A_JSON_NONE);
    S2A_CHECK_STR(apr_pstrmemdup(p, fn[2].p, fn[2].len), "{\"a\":[1]}");
    S2A_CHECK_INT(s2a_json_array_next_members(&arr, &pos, keys, 2, &el, m), 1);
    S2A_CHECK_STR(apr_pstrmemdup(p, el.p, el.len), "7");
    S2A_CHECK(m[0].type == S2A_JSON_NONE && m[1].type == S2A_JSON_NONE);
    S2A_CHECK_INT(s2a_json_array_next_members(&arr, &pos, keys, 2, &el, m), 1);
    S2A_CHECK_STR(apr_pstrmemdup(p, m[0].p, m[0].len), "2");
    S2A_CHECK_INT(s2a_json_array_next_members(&arr, &pos, keys, 2, &el, m), 0);
    /* not an object: nothing found, every member NONE */
    el.p = "7";
    el.len = 1;
    el.type = S2A_JSON_NUMBER;
    S2A_CHECK_INT(s2a_json_object_members(&el, fkeys, 3, fn), 0);
    S2A_CHECK(fn[0].type == S2A_JSON_NONE && fn[2].type == S2A_JSON_NONE);
}

/* An escape at every place of short strings and of long ones (taken 32 and 64 bytes a
 * step, an escape across a block's end among them): a good one reads back, a bad one is
 * refused at its backslash when a quote follows, and a string cut anywhere inside is cut,
 * not invalid. */
static void test_escapes_everywhere(apr_pool_t *p)
{
    static const char *const keys[] = {"a"};
    static const struct {
        const char *escape, *decoded;
    } good[] = {
        {"\\n", "\n"}, {"\\u00e9", "\xc3\xa9"}, {"\\\"", "\""}, {"\\\\", "\\"}, {"\\/", "/"}};
    static const char *const bad[] = {"\\x", "\\u12g4", "\\u\"", "\\U0041"};
    s2a_json_span f[1];
    const char *err;
    apr_size_t len, at, k, cut;
    int wrong = 0;

    static const apr_size_t lens[] = {3, 40, 70, 140};
    const char *digits = "0123456789012345678901234567890123456789012345678901234567890123456789"
                         "0123456789012345678901234567890123456789012345678901234567890123456789";
    const char *letters = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop"
                          "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop";
    apr_size_t l;

    for (l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        len = lens[l];
        for (at = 0; at <= len; at++) {
            for (k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
                char *text = apr_psprintf(p, "%.*s%s%.*s", (int)at, digits, good[k].escape,
                                          (int)(len - at), letters);
                char *doc = apr_psprintf(p, "{\"a\":\"%s\"}", text);
                char *want = apr_psprintf(p, "%.*s%s%.*s", (int)at, digits, good[k].decoded,
                                          (int)(len - at), letters);
                if (s2a_json_scan_object(p, doc, strlen(doc), keys, 1, f, &err) != 0 ||
                    strcmp(s2a_json_string_dup(p, &f[0]), want) != 0) {
                    wrong++;
                }
                for (cut = 6; cut < strlen(doc) - 2; cut++) {
                    if (s2a_json_scan_object(p, doc, cut, keys, 1, f, &err) != -1 ||
                        strcmp(err, "truncated JSON") != 0) {
                        wrong++;
                    }
                }
            }
            for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                char *doc = apr_psprintf(p, "{\"a\":\"%.*s%s%.*s\"}", (int)at, digits, bad[k],
                                         (int)(len - at), letters);
                char *want = apr_psprintf(p, "invalid JSON at offset %d", (int)(6 + at));
                if (s2a_json_scan_object(p, doc, strlen(doc), keys, 1, f, &err) != -1 ||
                    strcmp(err, want) != 0) {
                    wrong++;
                }
                /* cut before any quote after the backslash: cut, not invalid */
                for (cut = 6 + at + 1; cut <= 6 + at + strcspn(bad[k] + 1, "\""); cut++) {
                    if (s2a_json_scan_object(p, doc, cut, keys, 1, f, &err) != -1 ||
                        strcmp(err, "truncated JSON") != 0) {
                        wrong++;
                    }
                }
            }
        }
    }
    S2A_CHECK_INT(wrong, 0);
}

/* Where a delimited array ends, walked the obvious way: a byte at a time, a string's
 * escapes and brackets inside strings honoured. 0 when it does not end. */
static apr_size_t reference_end(const char *s, apr_size_t len)
{
    int depth = 0, in_string = 0, escaped = 0;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (s[i] == '\\')
                escaped = 1;
            else if (s[i] == '"')
                in_string = 0;
        } else if (s[i] == '"') {
            in_string = 1;
        } else if (s[i] == '[' || s[i] == '{') {
            depth++;
        } else if ((s[i] == ']' || s[i] == '}') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

/* A delimited array is walked 64 bytes at a time where the CPU allows: strings holding
 * brackets, quotes behind runs of backslashes, and element objects with a noted member,
 * each shifted through every place of a block and across its end, delimit the array where
 * a byte-at-a-time walk does, note what it notes, and every cut is truncated. */
static void test_blocks_everywhere(apr_pool_t *p)
{
    static const char *const keys[] = {"model", "tools"};
    static const char *const pieces[] = {
        "{\"type\":\"a\",\"s\":\"]}[{\"}",
        "{\"d\":\"x\\\\\",\"type\":\"b\"}",
        "[\"\\\"]\",\"\\\\\\\"}\\\\\"]",
        "{\"type\":\"c\",\"n\":[[{\"v\":\"\\\\\\\\\\\\\\\\[\"}]],"
        "\"w\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
        "{\"e\":{\"type\":\"no\"},\"type\"  :  \"d\"}",
    };
    s2a_json_span f[2], g[2];
    s2a_buf seen;
    s2a_json_member_note n = {1, "type", note_value, &seen};
    const char *err;
    apr_size_t shift, k, cut;
    int wrong = 0;

    s2a_buf_init(&seen, p, 64);
    for (shift = 0; shift < 130; shift++) {
        char *tools = apr_pstrcat(p, "[", apr_psprintf(p, "%*s", (int)shift, ""), NULL);
        char *doc;
        apr_size_t at, full;

        for (k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++)
            tools = apr_pstrcat(p, tools, k ? "," : "", pieces[k], NULL);
        tools = apr_pstrcat(p, tools, "]", NULL);
        doc = apr_pstrcat(p, "{\"tools\":", tools, ",\"model\":\"m\"}", NULL);
        at = 9;
        full = strlen(doc);
        seen.len = 0;
        if (s2a_json_scan_object_noting(p, doc, full, keys, 2, 1, &n, f, &err) != 0 ||
            f[1].p != doc + at || f[1].len != reference_end(doc + at, full - at) ||
            f[1].len != strlen(tools) || f[0].len != 3 ||
            strcmp(apr_pstrmemdup(p, seen.data, seen.len), "\"a\";\"b\";\"c\";\"d\";") != 0)
            wrong++;
        if (s2a_json_scan_object_some(p, doc, full, keys, 2, 1, g, &err) != 0 ||
            g[1].len != f[1].len)
            wrong++;
        for (cut = at; cut < at + strlen(tools); cut++) {
            if (s2a_json_scan_object_some(p, doc, cut, keys, 2, 1, g, &err) != -1 ||
                strcmp(err, "truncated JSON") != 0 ||
                s2a_json_scan_object_noting(p, doc, cut, keys, 2, 1, &n, f, &err) != -1 ||
                strcmp(err, "truncated JSON") != 0)
                wrong++;
        }
        /* so is a backslash outside any string, which would read as an escape */
        doc = apr_pstrcat(p, "{\"tools\":", apr_pstrmemdup(p, tools, strlen(tools) - 1),
                          "\\\"]]\"]}", NULL);
        if (s2a_json_scan_object_some(p, doc, strlen(doc), keys, 2, 1, g, &err) != -1 ||
            strcmp(err, apr_psprintf(p, "invalid JSON at offset %d",
                                     (int)(at + strlen(tools) - 1))) != 0)
            wrong++;
        /* a closing bracket that does not match is refused where it stands */
        doc =
            apr_pstrcat(p, "{\"tools\":", apr_pstrmemdup(p, tools, strlen(tools) - 1), "}}", NULL);
        if (s2a_json_scan_object_some(p, doc, strlen(doc), keys, 2, 1, g, &err) != -1 ||
            strcmp(err, apr_psprintf(p, "invalid JSON at offset %d",
                                     (int)(at + strlen(tools) - 1))) != 0)
            wrong++;
    }
    S2A_CHECK_INT(wrong, 0);
}

/* Strings read 64 bytes a step say what the byte walk says: a requested key spelled with
 * an escape is still found, and of two faults the first is named. */
static void test_long_strings(apr_pool_t *p)
{
    static const char *const keys[] = {"model"};
    const char *pad = "0123456789012345678901234567890123456789012345678901234567890123456789";
    const char *doc = apr_psprintf(p, "{\"mod\\u0065l\":\"m\",\"pad\":\"%s\"}", pad);
    s2a_json_span f[1];
    const char *err;

    S2A_CHECK_INT(s2a_json_scan_object(p, doc, strlen(doc), keys, 1, f, &err), 0);
    S2A_CHECK(f[0].type == S2A_JSON_STRING && f[0].len == 3);
    /* a bad escape before a raw control character in one block: refused at the escape */
    doc = apr_psprintf(p, "{\"model\":\"ab\\xcd\tef%s\"}", pad);
    S2A_CHECK_INT(s2a_json_scan_object(p, doc, strlen(doc), keys, 1, f, &err), -1);
    S2A_CHECK_STR(err, "invalid JSON at offset 12");
    /* and the control character first */
    doc = apr_psprintf(p, "{\"model\":\"ab\tcd\\xef%s\"}", pad);
    S2A_CHECK_INT(s2a_json_scan_object(p, doc, strlen(doc), keys, 1, f, &err), -1);
    S2A_CHECK_STR(err, "invalid JSON at offset 12");
    doc = apr_psprintf(p, "{\"model\":\"abcd\\x\tef%s\"}", pad);
    S2A_CHECK_INT(s2a_json_scan_object(p, doc, strlen(doc), keys, 1, f, &err), -1);
    S2A_CHECK_STR(err, "invalid JSON at offset 14");
}

/* Every byte value at every place of a short string and of strings long enough to be taken
 * 32 bytes a step, in a key and in a value: a raw control character is refused at its
 * offset when the string's quote follows, and cut when it does not; any other byte but the
 * quote and the backslash is content. */
static void test_bytes_everywhere(apr_pool_t *p)
{
    static const char *const keys[] = {"a"};
    static const char filler[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static const apr_size_t lens[] = {1, 31, 32, 33, 63, 64, 65, 70, 100, 130};
    s2a_json_span f[1];
    const char *err;
    apr_size_t l, at, cut;
    int c, in_key, wrong = 0;

    for (l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        for (at = 0; at < lens[l]; at++) {
            for (c = 0; c < 256; c++) {
                for (in_key = 0; in_key < 2; in_key++) {
                    const char *open = in_key ? "{\"" : "{\"a\":\"",
                               *close = in_key ? "\":1}" : "\"}";
                    apr_size_t start = strlen(open), n = start + lens[l] + strlen(close);
                    char *doc = apr_palloc(p, n);
                    int rc;

                    if (c == '"' || c == '\\') {
                        continue;
                    }
                    /* built by length: the byte may be a NUL */
                    memcpy(doc, open, start);
                    memcpy(doc + start, filler, lens[l]);
                    memcpy(doc + start + lens[l], close, strlen(close));
                    doc[start + at] = (char)c;
                    rc = s2a_json_scan_object(p, doc, n, keys, 1, f, &err);
                    if (c >= 0x20) {
                        wrong += rc != 0 || (!in_key && f[0].len != lens[l] + 2);
                        continue;
                    }
                    wrong += rc != -1 || strcmp(err, apr_psprintf(p, "invalid JSON at offset %d",
                                                                  (int)(start + at))) != 0;
                    for (cut = start + at + 1; cut < start + lens[l]; cut++) {
                        rc = s2a_json_scan_object(p, doc, cut, keys, 1, f, &err);
                        wrong += rc != -1 || strcmp(err, "truncated JSON") != 0;
                    }
                }
            }
        }
    }
    S2A_CHECK_INT(wrong, 0);
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);

    test_array_next(p);
    test_scan_some(p);
    test_scan_noting(p);
    test_scan_values(p);
    test_array_next_member(p);
    test_object_has();
    test_members(p);
    test_escapes_everywhere(p);
    test_bytes_everywhere(p);
    test_blocks_everywhere(p);
    test_long_strings(p);
    test_claude_body(p);
    test_top_level_only(p);
    test_backslashes(p);
    test_string_dup(p);
    test_quote(p);
    test_truncations(p);
    test_invalid(p);
    test_relaxed(p);
    test_depth(p);
    test_large_body(p);
    test_splice(p);
    test_prefix_find_model();

    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_json");
}
