/* Reading the JSON a test got back: one strict value, and the values at
 * paths of member names and array indexes ("a/0/b"). The includer defines
 * `static apr_pool_t *pool` first. */
#ifndef S2A_TEST_JSON_H
#define S2A_TEST_JSON_H

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <json-c/json.h>

/* text[0..n) as one strict JSON value, all of it; NULL otherwise. */
static inline json_object *parse(const char *text, apr_size_t n)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;

    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, text, (int)n);
    if (o && (json_tokener_get_error(tok) != json_tokener_success ||
              json_tokener_get_parse_end(tok) != n)) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* The value at a path of member names and array indexes ("a/0/b"). */
static inline json_object *at(json_object *o, const char *path)
{
    char *copy = apr_pstrdup(pool, path), *part, *last;

    for (part = apr_strtok(copy, "/", &last); part && o; part = apr_strtok(NULL, "/", &last)) {
        if (json_object_is_type(o, json_type_array)) {
            o = json_object_array_get_idx(o, (size_t)atoi(part));
        } else if (!json_object_object_get_ex(o, part, &o)) {
            o = NULL;
        }
    }
    return o;
}

static inline int has(json_object *o, const char *path)
{
    char *copy = apr_pstrdup(pool, path), *slash = strrchr(copy, '/');
    json_object *parent = o;

    if (slash) {
        *slash = '\0';
        parent = at(o, copy);
    }
    return parent && json_object_object_get_ex(parent, slash ? slash + 1 : copy, NULL);
}

static inline const char *str_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);

    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static inline long long int_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);

    return v && json_object_is_type(v, json_type_int) ? (long long)json_object_get_int64(v) : -999;
}

static inline int len_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);

    return v && json_object_is_type(v, json_type_array) ? (int)json_object_array_length(v) : -1;
}

#endif
