/* Which accounts may serve a request, and what each would hold. */
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_choice.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static const char table[] = "{\"claude-a\":{\"input_cost_per_token\":0.000001,"
                            "\"output_cost_per_token\":0.000002},"
                            "\"claude-b\":{\"input_cost_per_token\":0.00001,"
                            "\"output_cost_per_token\":0.00002,"
                            "\"input_cost_per_token_above_200k_tokens\":0.00002,"
                            "\"output_cost_per_token_above_200k_tokens\":0.00003}}";

static s2a_account *add(apr_array_header_t *list, apr_int64_t id, int active, apr_int64_t group,
                        const char *from, const char *to)
{
    s2a_account *a = apr_array_push(list);
    memset(a, 0, sizeof(*a));
    a->id = id;
    a->name = apr_psprintf(pool, "acc%d", (int)id);
    a->type = "apikey";
    a->credential = "sk-secret";
    a->endpoint = "https://api.example";
    a->priority = (int)id;
    a->concurrency = 3;
    a->active = active;
    a->state_key = 1000 + id;
    a->mapping = apr_hash_make(pool);
    if (from) {
        apr_hash_set(a->mapping, from, APR_HASH_KEY_STRING, to);
    }
    a->group_ids = apr_array_make(pool, 1, sizeof(apr_int64_t));
    APR_ARRAY_PUSH(a->group_ids, apr_int64_t) = group;
    return a;
}

int main(void)
{
    apr_array_header_t *list, *exclude, *models;
    s2a_candidate cand[8];
    const s2a_account *acc[8];
    s2a_choice_hold hold;
    s2a_usage estimate;
    s2a_pricing *prices;
    s2a_account copy;
    apr_array_header_t *rules;
    s2a_price_rule *rule;
    const char *err;
    int n, i, found_a = 0;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    S2A_CHECK_INT(s2a_pricing_parse(pool, table, strlen(table), &prices, &err), APR_SUCCESS);
    list = apr_array_make(pool, 8, sizeof(s2a_account));
    add(list, 1, 1, 7, NULL, NULL);           /* serves every model */
    add(list, 2, 1, 7, "claude", "claude-b"); /* maps it */
    add(list, 3, 1, 7, "other", "claude-b");  /* serves another model only */
    add(list, 4, 0, 7, NULL, NULL);           /* not active */
    add(list, 5, 1, 8, NULL, NULL);           /* another group */

    S2A_CHECK_STR(s2a_choice_model(&APR_ARRAY_IDX(list, 1, s2a_account), "claude", NULL),
                  "claude-b");
    S2A_CHECK_STR(s2a_choice_model(&APR_ARRAY_IDX(list, 0, s2a_account), "claude", NULL), "claude");

    n = s2a_choice_candidates(list, 7, "claude", NULL, NULL, 0, NULL, cand, acc);
    S2A_CHECK_INT(n, 2);
    S2A_CHECK_INT(acc[0]->id, 1);
    S2A_CHECK_INT(acc[1]->id, 2);
    S2A_CHECK_INT(cand[0].key, 1001);
    S2A_CHECK_INT(cand[0].priority, 1);
    S2A_CHECK_INT(cand[0].concurrency, 3);
    S2A_CHECK_INT(cand[0].hold, 0);

    exclude = apr_array_make(pool, 1, sizeof(apr_int64_t));
    APR_ARRAY_PUSH(exclude, apr_int64_t) = 1;
    n = s2a_choice_candidates(list, 7, "claude", exclude, NULL, 1, NULL, cand, acc);
    S2A_CHECK_INT(n, 1);
    S2A_CHECK_INT(acc[0]->id, 2);
    S2A_CHECK_INT(cand[0].concurrency, 0);
    S2A_CHECK_INT(s2a_choice_candidates(list, 9, "claude", NULL, NULL, 0, NULL, cand, acc), 0);

    /* a member taken out in balancer-manager takes its accounts out */
    APR_ARRAY_IDX(list, 1, s2a_account).endpoint = "https://b.example/";
    {
        apr_array_header_t *closed = apr_array_make(pool, 1, sizeof(const char *));
        APR_ARRAY_PUSH(closed, const char *) = "HTTPS://B.example";
        n = s2a_choice_candidates(list, 7, "claude", NULL, closed, 0, NULL, cand, acc);
        S2A_CHECK_INT(n, 1);
        S2A_CHECK_INT(acc[0]->id, 1);
        APR_ARRAY_IDX(closed, 0, const char *) = "https://b.example/other";
        S2A_CHECK_INT(s2a_choice_candidates(list, 7, "claude", NULL, closed, 0, NULL, cand, acc),
                      2);
    }
    S2A_CHECK(s2a_choice_endpoint_is("https://a.example//", "HTTPS://a.example"));
    S2A_CHECK(s2a_choice_endpoint_is("https://a.example", "https://a.example/"));
    S2A_CHECK(!s2a_choice_endpoint_is("https://a.example:8443", "https://a.example"));
    S2A_CHECK(!s2a_choice_endpoint_is("https://a.example", "https://a.example.org"));
    S2A_CHECK(!s2a_choice_endpoint_is("/", "https://a.example"));

    /* each holds its estimate at the prices of the model it is sent */
    memset(&estimate, 0, sizeof(estimate));
    estimate.input = 1000;
    estimate.output = 100;
    hold.estimate = &estimate;
    hold.multiplier_ppm = 2000000;
    hold.prices = prices;
    hold.rules = NULL;
    n = s2a_choice_candidates(list, 7, "claude", NULL, NULL, 0, &hold, cand, acc);
    S2A_CHECK_INT(n, 2);
    S2A_CHECK_INT(cand[0].hold, 0); /* "claude" has no price */
    S2A_CHECK_INT(cand[1].hold, 2 * (1000 * 10000 + 100 * 20000));
    /* a fallback rule prices the model the table lacks */
    rules = apr_array_make(pool, 2, sizeof(s2a_price_rule));
    rule = apr_array_push(rules);
    rule->pattern = "other-*";
    rule->model = "claude-b";
    rule = apr_array_push(rules);
    rule->pattern = "cl?ude";
    rule->model = "claude-a";
    hold.rules = rules;
    n = s2a_choice_candidates(list, 7, "claude", NULL, NULL, 0, &hold, cand, acc);
    S2A_CHECK_INT(cand[0].hold, 2 * (1000 * 1000 + 100 * 2000));

    /* an estimate over a model's long-context threshold holds at its long-context rates,
       output included; one at the threshold at the base rates */
    estimate.input = 200000;
    n = s2a_choice_candidates(list, 7, "claude", NULL, NULL, 0, &hold, cand, acc);
    S2A_CHECK_INT(cand[1].hold, 2 * (200000LL * 10000 + 100 * 20000));
    estimate.input = 200001;
    n = s2a_choice_candidates(list, 7, "claude", NULL, NULL, 0, &hold, cand, acc);
    S2A_CHECK_INT(cand[1].hold, 2 * (200001LL * 20000 + 100 * 30000));
    S2A_CHECK_INT(cand[0].hold, 2 * (200001LL * 1000 + 100 * 2000)); /* claude-a: none */
    estimate.input = 1000;

    /* the copy shares nothing with the list */
    apr_table_t *h = apr_table_make(pool, 1);
    apr_table_set(h, "x-fixed", "1");
    APR_ARRAY_IDX(list, 1, s2a_account).headers = h;
    s2a_choice_copy(pool, &APR_ARRAY_IDX(list, 1, s2a_account), &copy);
    apr_table_set(h, "x-fixed", "2");
    S2A_CHECK_STR(apr_table_get(copy.headers, "x-fixed"), "1");
    S2A_CHECK(copy.credential != APR_ARRAY_IDX(list, 1, s2a_account).credential);
    S2A_CHECK_STR(copy.credential, "sk-secret");
    S2A_CHECK(copy.mapping == NULL && copy.group_ids == NULL);

    /* a Bedrock account is sent the cloud's id, and holds at Anthropic's
       price when the table has none of the cloud's own */
    {
        s2a_account *bedrock = add(list, 6, 1, 9, NULL, NULL);
        s2a_bedrock_credential cred = {{"AKIA1", "secret", NULL}, NULL};
        char cloud_id[S2A_CLOUD_MODEL_MAX];
        bedrock->type = "bedrock";
        bedrock->cloud = S2A_CLOUD_BEDROCK;
        bedrock->region = "us-east-1";
        bedrock->bedrock = &cred;
        S2A_CHECK_STR(s2a_choice_model(bedrock, "claude-b", cloud_id),
                      "us.anthropic.claude-b-v1:0");
        hold.rules = NULL;
        n = s2a_choice_candidates(list, 9, "claude-b", NULL, NULL, 0, &hold, cand, acc);
        S2A_CHECK_INT(n, 1);
        S2A_CHECK_INT(cand[0].hold, 2 * (1000 * 10000 + 100 * 20000));
        /* its mapping wins over the cloud's id */
        apr_hash_set(bedrock->mapping, "claude-b", APR_HASH_KEY_STRING, "claude-a");
        S2A_CHECK_STR(s2a_choice_model(bedrock, "claude-b", cloud_id), "claude-a");
        n = s2a_choice_candidates(list, 9, "claude-b", NULL, NULL, 0, &hold, cand, acc);
        S2A_CHECK_INT(cand[0].hold, 2 * (1000 * 1000 + 100 * 2000));
        /* it counts tokens too (CountTokens), taking no place */
        S2A_CHECK_INT(s2a_choice_candidates(list, 9, "claude-b", NULL, NULL, 1, NULL, cand, acc),
                      1);
        S2A_CHECK_INT(cand[0].concurrency, 0);
        s2a_choice_copy(pool, bedrock, &copy);
        S2A_CHECK(copy.bedrock && copy.bedrock != &cred &&
                  copy.bedrock->key.secret_access_key != cred.key.secret_access_key);
        S2A_CHECK_STR(copy.bedrock->key.secret_access_key, "secret");
        S2A_CHECK(copy.bedrock->key.session_token == NULL && copy.bedrock->api_key == NULL);
        S2A_CHECK_STR(copy.region, "us-east-1");
    }

    /* the models a group serves: mappings, and the table's when one serves all */
    models = s2a_choice_models(pool, list, 7, s2a_pricing_anthropic(prices));
    for (i = 0; i < models->nelts; i++) {
        found_a += strcmp(APR_ARRAY_IDX(models, i, const char *), "claude") == 0;
    }
    S2A_CHECK_INT(found_a, 1);
    S2A_CHECK_INT(s2a_choice_models(pool, list, 8, apr_array_make(pool, 0, sizeof(char *)))->nelts,
                  0);

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_choice");
}
