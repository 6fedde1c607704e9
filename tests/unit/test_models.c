/* Models API entries: names, dates, order, and paging as the SDKs walk it. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "s2a_models.h"
#include "s2a_pricing.h"
#include "s2a_test.h"

static apr_array_header_t *list(apr_pool_t *p, const char *const *names)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    for (; *names; names++) {
        APR_ARRAY_PUSH(a, const char *) = *names;
    }
    return a;
}

/* The ids of a page, joined by spaces; has_more and the first/last ids checked. */
static const char *page_ids(apr_pool_t *p, const char *json, int *more)
{
    json_object *o = json_tokener_parse(json), *data, *v, *first, *last;
    apr_array_header_t *ids = apr_array_make(p, 4, sizeof(const char *));
    size_t i, n;
    const char *out;
    if (!o || !json_object_object_get_ex(o, "data", &data)) {
        json_object_put(o);
        return "(not a page)";
    }
    n = json_object_array_length(data);
    for (i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(data, i);
        json_object_object_get_ex(m, "id", &v);
        APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(p, json_object_get_string(v));
    }
    json_object_object_get_ex(o, "has_more", &v);
    *more = json_object_get_boolean(v);
    json_object_object_get_ex(o, "first_id", &first);
    json_object_object_get_ex(o, "last_id", &last);
    if (n) {
        S2A_CHECK_STR(json_object_get_string(first), APR_ARRAY_IDX(ids, 0, const char *));
        S2A_CHECK_STR(json_object_get_string(last), APR_ARRAY_IDX(ids, n - 1, const char *));
    } else {
        S2A_CHECK(json_object_is_type(first, json_type_null));
    }
    out = apr_array_pstrcat(p, ids, ' ');
    json_object_put(o);
    return out;
}

static const char table[] =
    "{\"claude-b\":{\"input_cost_per_token\":1e-6,\"output_cost_per_token\":2e-6,"
    "\"litellm_provider\":\"anthropic\"},"
    "\"anthropic/claude-b\":{\"input_cost_per_token\":1e-6,\"output_cost_per_token\":2e-6,"
    "\"litellm_provider\":\"anthropic\"},"
    "\"bedrock.claude\":{\"input_cost_per_token\":1e-6,\"output_cost_per_token\":2e-6,"
    "\"litellm_provider\":\"bedrock\"},"
    "\"claude-a\":{\"input_cost_per_token\":1e-6,\"output_cost_per_token\":2e-6,"
    "\"litellm_provider\":\"anthropic\"},"
    "\"claude-free\":{\"litellm_provider\":\"anthropic\"}}";

int main(void)
{
    static const char *const names[] = {"claude-3-5-haiku-20241022", "claude-opus-4-20250514",
                                        "claude-sonnet-4-20250514",  "my-alias",
                                        "claude-3-5-haiku-20241022", NULL};
    apr_pool_t *p;
    apr_array_header_t *ids;
    json_object *o, *v;
    s2a_pricing *t;
    const char *err;
    int more = -1;

    apr_initialize();
    apr_pool_create(&p, NULL);

    S2A_CHECK_STR(s2a_model_display_name(p, "claude-sonnet-4-20250514"), "Claude Sonnet 4");
    S2A_CHECK_STR(s2a_model_display_name(p, "claude-3-5-haiku-20241022"), "Claude 3.5 Haiku");
    S2A_CHECK_STR(s2a_model_display_name(p, "claude-opus-4-1-20250805"), "Claude Opus 4.1");
    S2A_CHECK_STR(s2a_model_display_name(p, "my--alias-"), "My Alias");
    S2A_CHECK_STR(s2a_model_display_name(p, ""), "");
    S2A_CHECK_STR(s2a_model_created_at(p, "claude-sonnet-4-20250514"), "2025-05-14T00:00:00Z");
    S2A_CHECK_STR(s2a_model_created_at(p, "my-alias"), "1970-01-01T00:00:00Z");
    S2A_CHECK_STR(s2a_model_created_at(p, "x-2025051"), "1970-01-01T00:00:00Z");

    /* newest first, then by name; the repeated name once */
    ids = list(p, names);
    s2a_models_sort(ids);
    S2A_CHECK_STR(apr_array_pstrcat(p, ids, ' '),
                  "claude-opus-4-20250514 claude-sonnet-4-20250514 claude-3-5-haiku-20241022 "
                  "my-alias");

    /* a model object as the API gives it, quotes escaped */
    o = json_tokener_parse(s2a_model_json(p, "we\"ird-20240101"));
    S2A_CHECK(o != NULL);
    S2A_CHECK(json_object_object_get_ex(o, "type", &v) &&
              strcmp(json_object_get_string(v), "model") == 0);
    S2A_CHECK(json_object_object_get_ex(o, "id", &v) &&
              strcmp(json_object_get_string(v), "we\"ird-20240101") == 0);
    S2A_CHECK(json_object_object_get_ex(o, "created_at", &v) &&
              strcmp(json_object_get_string(v), "2024-01-01T00:00:00Z") == 0);
    /* and as OpenAI's SDKs read it */
    S2A_CHECK(json_object_object_get_ex(o, "object", &v) &&
              strcmp(json_object_get_string(v), "model") == 0);
    S2A_CHECK(json_object_object_get_ex(o, "created", &v) &&
              json_object_get_int64(v) == 1704067200);
    S2A_CHECK(json_object_object_get_ex(o, "owned_by", &v) &&
              strcmp(json_object_get_string(v), "anthropic") == 0);
    json_object_put(o);
    S2A_CHECK_INT(s2a_model_created("claude-sonnet-4-20250514"), 1747180800);
    S2A_CHECK_INT(s2a_model_created("claude-x-20240229"), 1709164800);
    S2A_CHECK_INT(s2a_model_created("claude-x-19700101"), 0);
    S2A_CHECK_INT(s2a_model_created("claude-x-20241301"), 0);
    S2A_CHECK_INT(s2a_model_created("claude-x-20240100"), 0);
    S2A_CHECK_INT(s2a_model_created("my-alias"), 0);

    /* pages: whole, forward by after_id, back by before_id, unknown ids */
    S2A_CHECK_STR(page_ids(p, s2a_models_page(p, ids, NULL, NULL, 20), &more),
                  "claude-opus-4-20250514 claude-sonnet-4-20250514 claude-3-5-haiku-20241022 "
                  "my-alias");
    S2A_CHECK_INT(more, 0);
    S2A_CHECK_STR(page_ids(p, s2a_models_page(p, ids, NULL, NULL, 2), &more),
                  "claude-opus-4-20250514 claude-sonnet-4-20250514");
    S2A_CHECK_INT(more, 1);
    S2A_CHECK_STR(page_ids(p, s2a_models_page(p, ids, "claude-sonnet-4-20250514", NULL, 2), &more),
                  "claude-3-5-haiku-20241022 my-alias");
    S2A_CHECK_INT(more, 0);
    S2A_CHECK_STR(page_ids(p, s2a_models_page(p, ids, NULL, "my-alias", 2), &more),
                  "claude-sonnet-4-20250514 claude-3-5-haiku-20241022");
    S2A_CHECK_INT(more, 1);
    S2A_CHECK_STR(page_ids(p, s2a_models_page(p, ids, NULL, "claude-sonnet-4-20250514", 5), &more),
                  "claude-opus-4-20250514");
    S2A_CHECK_INT(more, 0);
    S2A_CHECK_STR(page_ids(p, s2a_models_page(p, ids, "nope", NULL, 5), &more), "");
    S2A_CHECK_INT(more, 0);
    S2A_CHECK_STR(page_ids(p, s2a_models_page(p, ids, NULL, "nope", 5), &more), "");
    ids->nelts = 0;
    S2A_CHECK_STR(page_ids(p, s2a_models_page(p, ids, NULL, NULL, 5), &more), "");

    /* the price table's own Anthropic models: no aliases, no other providers */
    S2A_CHECK(s2a_pricing_parse(p, table, strlen(table), &t, &err) == APR_SUCCESS);
    S2A_CHECK_STR(apr_array_pstrcat(p, s2a_pricing_anthropic(t), ' '), "claude-a claude-b");

    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("models");
}
