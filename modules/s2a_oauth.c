#include <string.h>

#include <json-c/json.h>

#include <apr_strings.h>

#include "s2a_json.h"
#include "s2a_oauth.h"

const char *s2a_oauth_refresh_body(apr_pool_t *p, const char *refresh_token, const char *client_id)
{
    return apr_pstrcat(
        p, "{\"grant_type\":\"refresh_token\",\"refresh_token\":", s2a_json_quote(p, refresh_token),
        ",\"client_id\":", s2a_json_quote(p, client_id), "}", NULL);
}

/* A non-empty string member's bytes and length; NULL otherwise. */
static const char *string_member(json_object *o, const char *name, int *n)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string) ||
        !(*n = json_object_get_string_len(v))) {
        return NULL;
    }
    return json_object_get_string(v);
}

static const char *string_field(apr_pool_t *p, json_object *o, const char *name)
{
    int n;
    const char *s = string_member(o, name, &n);
    return s ? apr_pstrdup(p, s) : NULL;
}

/* A token member: NULL when missing, "" when it holds a byte no token has.
 * A token goes into an Authorization header as it is: visible ASCII only
 * (a NUL would cut it short, a CR or LF end the header). */
static const char *token_field(apr_pool_t *p, json_object *o, const char *name)
{
    int n, i;
    const char *s = string_member(o, name, &n);
    for (i = 0; s && i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
            return "";
        }
    }
    return s ? apr_pstrmemdup(p, s, (apr_size_t)n) : NULL;
}

int s2a_oauth_parse(apr_pool_t *p, const char *body, apr_size_t len, s2a_oauth_tokens *out,
                    const char **err)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL, *v;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!tok) {
        *err = "out of memory";
        return -1;
    }
    o = json_tokener_parse_ex(tok, body, (int)len);
    if (!o || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(o, json_type_object)) {
        *err = "the answer is not a JSON object";
        goto done;
    }
    out->access_token = token_field(p, o, "access_token");
    out->refresh_token = token_field(p, o, "refresh_token");
    if (!out->access_token) {
        *err = "the answer has no access_token";
        goto done;
    }
    if (!*out->access_token || (out->refresh_token && !*out->refresh_token)) {
        *err = !*out->access_token ? "the answer's access_token has bytes no token has"
                                   : "the answer's refresh_token has bytes no token has";
        goto done;
    }
    if (json_object_object_get_ex(o, "expires_in", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
            *err = "expires_in is not a number of seconds";
            goto done;
        }
        out->expires_in = json_object_get_int64(v);
        if (out->expires_in > S2A_OAUTH_MAX_EXPIRES_IN) {
            out->expires_in = S2A_OAUTH_MAX_EXPIRES_IN;
        }
    }
    rc = 0;
done:
    if (o) {
        json_object_put(o);
    }
    json_tokener_free(tok);
    return rc;
}

/* Printable ASCII only, at most 120 characters: a log line of our own. */
static const char *clean(apr_pool_t *p, const char *s)
{
    apr_size_t n = strlen(s), i;
    char *out = apr_pstrndup(p, s, n > 120 ? 120 : n);
    for (i = 0; out[i]; i++) {
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e) {
            out[i] = '?';
        }
    }
    return out;
}

const char *s2a_oauth_error_words(apr_pool_t *p, const char *body, apr_size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
    const char *error = NULL, *desc = NULL, *out;
    if (o && json_object_is_type(o, json_type_object)) {
        error = string_field(p, o, "error");
        desc = string_field(p, o, "error_description");
    }
    if (o) {
        json_object_put(o);
    }
    if (tok) {
        json_tokener_free(tok);
    }
    if (!error) {
        return "no error named in the answer";
    }
    out = clean(p, error);
    return desc ? apr_pstrcat(p, out, ": ", clean(p, desc), NULL) : out;
}
