/* What an upstream's answer means for the account, the request and the
 * client. */
#include <apr_general.h>
#include <apr_tables.h>

#include "s2a_policy.h"
#include "s2a_state.h"
#include "s2a_test.h"

static void expect(int status, const apr_array_header_t *codes, int refreshable, int refreshed,
                   int failed, s2a_account_action action, int fail_over, int client)
{
    s2a_verdict v;
    s2a_policy_judge(status, codes, refreshable, refreshed, &v);
    S2A_CHECK_INT(v.failed, failed);
    S2A_CHECK_INT(v.action, action);
    S2A_CHECK_INT(v.fail_over, fail_over);
    S2A_CHECK_INT(v.client_status, client);
    S2A_CHECK(!failed || v.message != NULL);
}

static void test_judge(apr_pool_t *p)
{
    apr_array_header_t *only_429 = apr_array_make(p, 1, sizeof(int));
    APR_ARRAY_PUSH(only_429, int) = 429;

    /* answers that describe the request pass to the client */
    expect(200, NULL, 0, 0, 0, S2A_ACCOUNT_KEEP, 0, 200);
    expect(400, NULL, 0, 0, 0, S2A_ACCOUNT_KEEP, 0, 400);
    expect(404, NULL, 0, 0, 0, S2A_ACCOUNT_KEEP, 0, 404);
    expect(413, NULL, 0, 0, 0, S2A_ACCOUNT_KEEP, 0, 413);
    expect(422, only_429, 0, 0, 0, S2A_ACCOUNT_KEEP, 0, 422);
    /* answers about the account never do */
    expect(429, NULL, 0, 0, 1, S2A_ACCOUNT_RATE_LIMITED, 1, 429);
    expect(529, NULL, 0, 0, 1, S2A_ACCOUNT_OVERLOADED, 1, 503);
    expect(500, NULL, 0, 0, 1, S2A_ACCOUNT_KEEP, 1, 502);
    expect(503, NULL, 0, 0, 1, S2A_ACCOUNT_KEEP, 1, 502);
    expect(403, NULL, 1, 0, 1, S2A_ACCOUNT_ERROR, 1, 502);
    expect(401, NULL, 0, 0, 1, S2A_ACCOUNT_ERROR, 1, 502);
    /* a refreshable token is refreshed once per request */
    expect(401, NULL, 1, 0, 1, S2A_ACCOUNT_REFRESH, 1, 502);
    expect(401, NULL, 1, 1, 1, S2A_ACCOUNT_ERROR, 1, 502);
    /* custom error codes: a status outside them changes nothing and ends
     * the request with 500 */
    expect(429, only_429, 0, 0, 1, S2A_ACCOUNT_RATE_LIMITED, 1, 429);
    expect(500, only_429, 0, 0, 1, S2A_ACCOUNT_KEEP, 0, 500);
    expect(401, only_429, 1, 0, 1, S2A_ACCOUNT_KEEP, 0, 500);
}

static void test_rests(void)
{
    apr_time_t now = apr_time_from_sec(1000000);
    apr_interval_time_t cooldown = apr_time_from_sec(300);
    S2A_CHECK_INT(s2a_policy_rest_until("1000100", "7", now, cooldown), apr_time_from_sec(1000100));
    /* a reset in the past is no reset */
    S2A_CHECK_INT(s2a_policy_rest_until("999999", "7", now, cooldown), now + apr_time_from_sec(7));
    S2A_CHECK_INT(s2a_policy_rest_until(NULL, "0", now, cooldown), now + cooldown);
    S2A_CHECK_INT(s2a_policy_rest_until("soon", "later", now, cooldown), now + cooldown);
    S2A_CHECK_INT(s2a_policy_rest_until(NULL, NULL, now, cooldown), now + cooldown);

    S2A_CHECK_INT(s2a_policy_window(NULL), -1);
    S2A_CHECK_INT(s2a_policy_window("allowed"), S2A_WINDOW_ALLOWED);
    S2A_CHECK_INT(s2a_policy_window("allowed_warning"), S2A_WINDOW_WARNING);
    S2A_CHECK_INT(s2a_policy_window("rejected"), S2A_WINDOW_REJECTED);
    S2A_CHECK_INT(s2a_policy_window("Rejected"), S2A_WINDOW_UNKNOWN);

    S2A_CHECK(s2a_policy_unreachable(502) && s2a_policy_unreachable(503) &&
              s2a_policy_unreachable(504));
    S2A_CHECK(!s2a_policy_unreachable(500) && !s2a_policy_unreachable(200));
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_judge(p);
    test_rests();
    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_policy");
}
