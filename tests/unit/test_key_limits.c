/* A key's own limits: the models it may use (patterns as the admin API
 * takes them, hostile lists refused whole) and what it may spend. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_key_limits.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static int allowed(const char *json, const char *model)
{
    s2a_key_rec k;
    const char *err = NULL;
    memset(&k, 0, sizeof(k));
    if (!s2a_key_models_parse(json, k.models, &err)) {
        return -1;
    }
    return s2a_key_model_allowed(&k, model);
}

static void test_models(void)
{
    char out[S2A_KEY_MODELS_MAX], big[4096];
    const char *err = NULL;
    int i;

    /* no list, an empty one: every model */
    S2A_CHECK_INT(allowed("", "claude-opus-4-8"), 1);
    S2A_CHECK_INT(allowed("[]", "claude-opus-4-8"), 1);
    /* names and globs, case-sensitive */
    S2A_CHECK_INT(allowed("[\"claude-sonnet-4-5\"]", "claude-sonnet-4-5"), 1);
    S2A_CHECK_INT(allowed("[\"claude-sonnet-4-5\"]", "claude-sonnet-4-5-20250929"), 0);
    S2A_CHECK_INT(allowed("[\"claude-haiku-*\", \"claude-sonnet-*\"]", "claude-sonnet-4-5"), 1);
    S2A_CHECK_INT(allowed("[\"claude-haiku-*\", \"claude-sonnet-*\"]", "claude-opus-4-8"), 0);
    S2A_CHECK_INT(allowed("[\"claude-haiku-*\"]", "Claude-Haiku-4-5"), 0);
    S2A_CHECK_INT(allowed("[\"claude-?aiku-4-5\"]", "claude-haiku-4-5"), 1);
    S2A_CHECK_INT(allowed("[\"claude-haiku-*\"]", ""), 0);
    S2A_CHECK(s2a_key_models_parse("[\"a\",\"b\"]", out, &err));
    S2A_CHECK_STR(out, "a\nb");

    /* refused whole: not an array, not strings, spaces, control
     * characters, an embedded NUL, empty or long names, too many */
    {
        static const char *const bad[] = {
            "{}",          "\"claude\"",      "[1]",         "[null]",      "[\"\"]", "[\"a b\"]",
            "[\"a\\tb\"]", "[\"a\\u0000b\"]", "[\"a\\nb\"]", "[\"ok\", 2]", "[",      "[\"x\"",
            "null x",
        };
        for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
            err = NULL;
            strcpy(out, "unchanged");
            if (s2a_key_models_parse(bad[i], out, &err) || !err || out[0]) {
                fprintf(stderr, "accepted: %s\n", bad[i]);
                S2A_CHECK(0);
            }
        }
    }
    /* a name of 129 characters */
    memset(big, 'a', sizeof(big));
    big[0] = '[';
    big[1] = '"';
    memcpy(big + 2 + 129, "\"]", 3);
    S2A_CHECK(!s2a_key_models_parse(big, out, &err));
    {
        /* 32 patterns pass, 33 do not; 32 of 128 characters overflow the text */
        char *list = apr_pstrdup(pool, "[");
        for (i = 0; i < 33; i++) {
            list = apr_psprintf(pool, "%s%s\"m%d\"", list, i ? "," : "", i);
            if (i == 31) {
                S2A_CHECK(s2a_key_models_parse(apr_pstrcat(pool, list, "]", NULL), out, &err));
            }
        }
        S2A_CHECK(!s2a_key_models_parse(apr_pstrcat(pool, list, "]", NULL), out, &err));
        list = apr_pstrdup(pool, "[");
        for (i = 0; i < 32; i++) {
            list = apr_psprintf(pool, "%s%s\"%0128d\"", list, i ? "," : "", i);
        }
        S2A_CHECK(!s2a_key_models_parse(apr_pstrcat(pool, list, "]", NULL), out, &err));
    }
    /* every cut of a good list is refused or parses to a prefix, never more */
    {
        const char *good = "[\"claude-sonnet-*\",\"claude-haiku-4-5\"]";
        size_t n = strlen(good), cut;
        int wrong = 0;
        for (cut = 1; cut < n; cut++) {
            char *part = apr_pstrmemdup(pool, good, cut);
            if (s2a_key_models_parse(part, out, &err)) {
                wrong++;
            }
        }
        S2A_CHECK_INT(wrong, 0);
    }
}

static void test_budget(void)
{
    s2a_key_rec k;
    apr_int64_t now = 1800000000, reset = -1;
    memset(&k, 0, sizeof(k));
    /* nothing limits it */
    S2A_CHECK_INT(s2a_key_budget_left(&k, now), -1);
    S2A_CHECK_INT(s2a_key_budget_used_up(&k, now, &reset), -1);
    /* a total budget */
    k.budget = 1000;
    k.spent = 400;
    S2A_CHECK_INT(s2a_key_budget_left(&k, now), 600);
    k.spent = 1500;
    S2A_CHECK_INT(s2a_key_budget_left(&k, now), 0);
    S2A_CHECK_INT(s2a_key_budget_used_up(&k, now, &reset), S2A_KEY_BUDGET_TOTAL);
    S2A_CHECK_INT(reset, 0);
    /* a daily window tighter than the total */
    k.spent = 100;
    k.budget_windows.limit[0] = 300;
    k.budget_windows.usage[0] = 250;
    k.budget_windows.start[0] = now - 60;
    S2A_CHECK_INT(s2a_key_budget_left(&k, now), 50);
    S2A_CHECK_INT(s2a_key_budget_used_up(&k, now, &reset), -1);
    k.budget_windows.usage[0] = 300;
    S2A_CHECK_INT(s2a_key_budget_used_up(&k, now, &reset), 0);
    S2A_CHECK_INT(reset, now - 60 + 86400);
    /* the day ends: the total is what limits again */
    S2A_CHECK_INT(s2a_key_budget_left(&k, now + 86400), 300);
    S2A_CHECK_INT(s2a_key_budget_used_up(&k, now + 86400, &reset), -1);
    /* windows without a total */
    k.budget = 0;
    S2A_CHECK_INT(s2a_key_budget_left(&k, now + 86400), 300);
    /* the largest amounts do not overflow */
    k.budget = APR_INT64_MAX;
    k.spent = 0;
    k.budget_windows.limit[0] = 0;
    S2A_CHECK(s2a_key_budget_left(&k, now) == APR_INT64_MAX);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_models();
    test_budget();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_key_limits");
}
