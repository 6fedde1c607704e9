/* The usage row of an answered attempt and its cost. */
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_billing.h"
#include "s2a_door.h"
#include "s2a_test.h"

static const char table[] = "{\"claude-up\":{\"input_cost_per_token\":0.000003,"
                            "\"output_cost_per_token\":0.000015}}";

static void test_outcome(void)
{
    S2A_CHECK_STR(s2a_billing_outcome(0, 0, 1, 1, 1), "ok");
    S2A_CHECK_STR(s2a_billing_outcome(0, 0, 1, 0, 0), "ok");
    S2A_CHECK_STR(s2a_billing_outcome(1, 0, 1, 1, 1), "client_aborted");
    S2A_CHECK_STR(s2a_billing_outcome(1, 1, 0, 1, 0), "client_aborted");
    S2A_CHECK_STR(s2a_billing_outcome(0, 1, 1, 1, 1), "upstream_cut");
    S2A_CHECK_STR(s2a_billing_outcome(0, 0, 0, 0, 0), "upstream_cut");
    S2A_CHECK_STR(s2a_billing_outcome(0, 0, 1, 1, 0), "upstream_cut");
}

static void test_row(apr_pool_t *p)
{
    s2a_pricing *prices;
    const char *err = NULL;
    s2a_billing_facts f;
    s2a_key_rec key;
    s2a_usage_row row;
    s2a_usage billed;

    S2A_CHECK_INT(s2a_pricing_parse(p, table, strlen(table), &prices, &err), APR_SUCCESS);
    memset(&key, 0, sizeof(key));
    key.id = 3;
    key.user_id = 2;
    key.group_id = 5;
    key.multiplier_ppm = 1500000;
    memset(&f, 0, sizeof(f));
    f.request_id = "req_1";
    f.attempt = 2;
    f.key = &key;
    f.account_id = 11;
    f.model = "claude";
    f.upstream_model = "claude-up";
    f.price = s2a_pricing_lookup(prices, "claude-up");
    f.usage.input = 1000;
    f.usage.output = 100;
    f.usage.seen_start = f.usage.seen_delta = 1;
    f.stream = 1;
    f.status = 200;
    f.outcome = "ok";
    f.start = apr_time_from_sec(1700000000);
    f.first_byte = f.start + apr_time_from_msec(250);
    f.now = f.start + apr_time_from_msec(1500);
    s2a_billing_row(&f, &row, &billed);
    S2A_CHECK_STR(row.request_id, "req_1");
    S2A_CHECK_INT(row.attempt, 2);
    S2A_CHECK_INT(row.user_id, 2);
    S2A_CHECK_INT(row.api_key_id, 3);
    S2A_CHECK_INT(row.group_id, 5);
    S2A_CHECK_INT(row.account_id, 11);
    S2A_CHECK_STR(row.model, "claude");
    S2A_CHECK_STR(row.upstream_model, "claude-up");
    /* 1000 x 3 + 100 x 15 micro-USD = 4.5 milli-USD; x 1.5 */
    S2A_CHECK_INT(row.input_cost, 3000000);
    S2A_CHECK_INT(row.output_cost, 1500000);
    S2A_CHECK_INT(row.total_cost, 4500000);
    S2A_CHECK_INT(row.actual_cost, 6750000);
    S2A_CHECK_INT(row.multiplier_ppm, 1500000);
    S2A_CHECK_INT(row.duration_ms, 1500);
    S2A_CHECK_INT(row.first_token_ms, 250);
    S2A_CHECK_INT(row.created_at, 1700000001);
    S2A_CHECK_INT(row.stream, 1);
    S2A_CHECK_STR(row.outcome, "ok");
    S2A_CHECK_INT(billed.output, 100);
    /* no door named: Messages'; a door's request bills the same, under its name */
    S2A_CHECK_STR(row.api, "messages");
    f.api = s2a_door_name(S2A_DOOR_CHAT);
    {
        s2a_usage_row chat;
        s2a_usage chat_billed;
        s2a_billing_row(&f, &chat, &chat_billed);
        S2A_CHECK_STR(chat.api, "chat");
        S2A_CHECK_INT(chat.actual_cost, row.actual_cost);
    }
    f.api = NULL;

    /* a stream without its final count is billed for the content it carried */
    f.usage.seen_delta = 0;
    f.usage.output = 1;
    f.usage.delta_bytes = 4000;
    f.outcome = "client_aborted";
    f.first_byte = 0;
    s2a_billing_row(&f, &row, &billed);
    S2A_CHECK_INT(billed.output, 1000);
    S2A_CHECK_INT(row.output_tokens, 1000);
    S2A_CHECK_INT(row.output_cost, 15000000);
    S2A_CHECK_INT(row.first_token_ms, 0);
    S2A_CHECK_STR(row.outcome, "client_aborted");
    /* a JSON answer is billed as it says */
    f.stream = 0;
    s2a_billing_row(&f, &row, &billed);
    S2A_CHECK_INT(row.output_tokens, 1);

    /* long model names are cut where a character ends */
    {
        char *name = apr_palloc(p, 200);
        int i;
        for (i = 0; i < 63; i++) {
            memcpy(name + 2 * i, "\xc3\xa9", 2); /* U+00E9: two bytes */
        }
        memcpy(name + 126, "\xe2\x82\xac-tail", 9); /* U+20AC: three bytes, at 126 */
        f.model = name;
        s2a_billing_row(&f, &row, &billed);
        S2A_CHECK_INT(strlen(row.model), 126);
        S2A_CHECK(memcmp(row.model + 124, "\xc3\xa9", 2) == 0);
        f.model = "short-\xc3\xa9";
        s2a_billing_row(&f, &row, &billed);
        S2A_CHECK_STR(row.model, "short-\xc3\xa9");
        f.model = "claude";
    }

    /* a subscription's row is marked for its windows */
    key.subscription = 1;
    s2a_billing_row(&f, &row, &billed);
    S2A_CHECK_INT(row.subscription, 1);
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_outcome();
    test_row(p);
    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_billing");
}
