/* OAuth token answers (s2a_oauth.h): a grant read has a non-empty access
 * token, as the answer wrote it, tokens of visible ASCII only, and a
 * validity within bounds; a refusal's reason never holds a token; the
 * words logged for a refusing endpoint are printable ASCII of bounded
 * length, made of its "error" and "error_description" and nothing else.
 *
 * Input: the token endpoint's answer. */
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_oauth.h"

/* Printable ASCII, each other byte a '?', at most 120 characters. */
static char *cleaned(apr_pool_t *p, const char *s)
{
    char *out = apr_pstrndup(p, s, 120), *c;
    for (c = out; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) {
            *c = '?';
        }
    }
    return out;
}

/* Visible ASCII only, as a token sent in a header must be. */
static int visible(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* A non-empty string member, as json-c reads it. */
static const char *member(json_object *o, const char *name)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string) ||
        !json_object_get_string_len(v)) {
        return NULL;
    }
    return json_object_get_string(v);
}

static void check_parse(apr_pool_t *p, const char *body, size_t n, json_object *o)
{
    s2a_oauth_tokens t;
    const char *err = NULL;
    int r = s2a_oauth_parse(p, body, n, &t, &err);

    if (r != 0) {
        FUZZ_CHECK(r == -1 && err && *err);
        /* the reasons are the function's own words, never the answer's */
        FUZZ_CHECK(!strstr(err, "\"") && strlen(err) < 64);
        return;
    }
    FUZZ_CHECK(t.access_token && *t.access_token);
    FUZZ_CHECK(!t.refresh_token || *t.refresh_token);
    FUZZ_CHECK(visible(t.access_token) && (!t.refresh_token || visible(t.refresh_token)));
    FUZZ_CHECK(t.expires_in >= 0 && t.expires_in <= S2A_OAUTH_MAX_EXPIRES_IN);
    if (o) {
        const char *refresh = member(o, "refresh_token");
        FUZZ_CHECK(strcmp(t.access_token, member(o, "access_token")) == 0);
        FUZZ_CHECK(refresh ? t.refresh_token && strcmp(t.refresh_token, refresh) == 0
                           : t.refresh_token == NULL);
    }
}

static void check_error_words(apr_pool_t *p, const char *body, size_t n, json_object *o)
{
    const char *words = s2a_oauth_error_words(p, body, n), *c, *error, *desc;

    FUZZ_CHECK(words && strlen(words) <= 120 + 2 + 120);
    for (c = words; *c; c++) {
        FUZZ_CHECK(*c >= 0x20 && *c <= 0x7e);
    }
    if (!o) {
        return;
    }
    error = member(o, "error");
    desc = member(o, "error_description");
    if (!error) {
        FUZZ_CHECK(strcmp(words, "no error named in the answer") == 0);
    } else if (desc) {
        FUZZ_CHECK(strcmp(words, apr_pstrcat(p, cleaned(p, error), ": ", cleaned(p, desc), NULL)) ==
                   0);
    } else {
        FUZZ_CHECK(strcmp(words, cleaned(p, error)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    const char *body = fuzz_copy(p, data, size, 0);
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, body, (int)size);

    if (json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    check_parse(p, body, size, o);
    check_error_words(p, body, size, o);
    json_object_put(o);
    json_tokener_free(tok);
    apr_pool_destroy(p);
    return 0;
}
