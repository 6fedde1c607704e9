/* Error types, error bodies (escaping checked by parsing them back), status mapping. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_errors.h"
#include "s2a_json.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static void test_types(void)
{
    S2A_CHECK_STR(s2a_error_type(400), "invalid_request_error");
    S2A_CHECK_STR(s2a_error_type(401), "authentication_error");
    S2A_CHECK_STR(s2a_error_type(402), "billing_error");
    S2A_CHECK_STR(s2a_error_type(403), "permission_error");
    S2A_CHECK_STR(s2a_error_type(404), "not_found_error");
    S2A_CHECK_STR(s2a_error_type(413), "request_too_large");
    S2A_CHECK_STR(s2a_error_type(429), "rate_limit_error");
    S2A_CHECK_STR(s2a_error_type(500), "api_error");
    S2A_CHECK_STR(s2a_error_type(502), "api_error");
    S2A_CHECK_STR(s2a_error_type(503), "overloaded_error");
    S2A_CHECK_STR(s2a_error_type(504), "api_error");
    S2A_CHECK_STR(s2a_error_type(529), "overloaded_error");
    S2A_CHECK_STR(s2a_error_type(501), "api_error");
    S2A_CHECK_STR(s2a_error_type(405), "invalid_request_error");
    S2A_CHECK_STR(s2a_error_type(422), "invalid_request_error");
}

/* Parses body and checks its shape; returns the message (pool copy) or NULL. */
static const char *parse_body(const char *body, const char *want_type)
{
    json_object *root = json_tokener_parse(body), *err, *v;
    const char *msg = NULL;

    if (!root) {
        return NULL;
    }
    if (json_object_object_get_ex(root, "type", &v) &&
        strcmp(json_object_get_string(v), "error") == 0 &&
        json_object_object_get_ex(root, "error", &err) &&
        json_object_object_get_ex(err, "type", &v) &&
        strcmp(json_object_get_string(v), want_type) == 0 &&
        json_object_object_get_ex(err, "message", &v) &&
        json_object_get_type(v) == json_type_string) {
        msg = apr_pstrmemdup(pool, json_object_get_string(v), json_object_get_string_len(v));
    }
    json_object_put(root);
    return msg;
}

static void test_body(void)
{
    static const char *msgs[] = {
        "plain message",
        "quotes \" and \\ backslashes \\\" together",
        "controls: \n \r \t \b \f \x01 \x1f end",
        "non-ASCII: caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
        "</script> and {\"json\": [1,2]}",
        "",
    };
    apr_size_t i;

    S2A_CHECK_STR(s2a_error_body(pool, 401, "invalid x-api-key"),
                  "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                  "\"message\":\"invalid x-api-key\"}}");
    S2A_CHECK_STR(s2a_error_body(pool, 400, "a\"b\\c\nd\x02"),
                  "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                  "\"message\":\"a\\\"b\\\\c\\nd\\u0002\"}}");

    for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        S2A_CHECK_STR(parse_body(s2a_error_body(pool, 429, msgs[i]), "rate_limit_error"), msgs[i]);
    }
    S2A_CHECK_STR(parse_body(s2a_error_body(pool, 500, NULL), "api_error"), "");
}

static void test_invalid_utf8(void)
{
    /* Lone continuation, truncated sequence, overlong '/', surrogate, past U+10FFFF. */
    static const char bad[] = "a\x80"
                              "b\xe6\x97"
                              "c\xc0\xaf"
                              "d\xed\xa0\x80"
                              "e\xf4\x90\x80\x80"
                              "f";
#define R "\xef\xbf\xbd"
    /* Each byte that does not start a valid sequence becomes one U+FFFD. */
    static const char want[] = "a" R "b" R R "c" R R "d" R R R "e" R R R R "f";
#undef R

    S2A_CHECK_STR(s2a_json_escape(pool, bad), want);
    S2A_CHECK_STR(parse_body(s2a_error_body(pool, 400, bad), "invalid_request_error"), want);
    S2A_CHECK_STR(s2a_json_escape(pool, "\xff"), "\xef\xbf\xbd");
    S2A_CHECK_STR(s2a_json_escape(pool, "ok \xc3\xa9"), "ok \xc3\xa9");
}

static void test_upstream_map(void)
{
    S2A_CHECK_INT(s2a_upstream_status_map(400), 400);
    S2A_CHECK_INT(s2a_upstream_status_map(401), 502);
    S2A_CHECK_INT(s2a_upstream_status_map(403), 502);
    S2A_CHECK_INT(s2a_upstream_status_map(404), 404);
    S2A_CHECK_INT(s2a_upstream_status_map(413), 413);
    S2A_CHECK_INT(s2a_upstream_status_map(429), 429);
    S2A_CHECK_INT(s2a_upstream_status_map(500), 502);
    S2A_CHECK_INT(s2a_upstream_status_map(502), 502);
    S2A_CHECK_INT(s2a_upstream_status_map(503), 502);
    S2A_CHECK_INT(s2a_upstream_status_map(504), 502);
    S2A_CHECK_INT(s2a_upstream_status_map(529), 503);
    S2A_CHECK_INT(s2a_upstream_status_map(599), 502);
    S2A_CHECK_INT(s2a_upstream_status_map(200), 200);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_types();
    test_body();
    test_invalid_utf8();
    test_upstream_map();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_errors");
}
