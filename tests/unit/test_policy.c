/* What an upstream's answer means for the account, the request and the
 * client. */
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "s2a_policy.h"
#include "s2a_state.h"
#include "s2a_test.h"

static s2a_verdict judged(int status, const apr_array_header_t *codes, int refreshable,
                          int refreshed, int refused, int count_only)
{
    s2a_policy_case c = {status, codes, refreshable, refreshed, refused, count_only};
    s2a_verdict v;
    s2a_policy_judge(&c, &v);
    return v;
}

static void expect(int status, const apr_array_header_t *codes, int refreshable, int refreshed,
                   int failed, s2a_account_action action, int fail_over, int client)
{
    s2a_verdict v = judged(status, codes, refreshable, refreshed, 0, 0);
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
    S2A_CHECK_INT(judged(500, only_429, 0, 0, 0, 0).unexpected, 1);
    S2A_CHECK_INT(judged(429, only_429, 0, 0, 0, 0).unexpected, 0);
}

/* No request takes a second account out of service. */
static void test_one_refusal_per_request(void)
{
    s2a_verdict v = judged(403, NULL, 0, 0, 1, 0);
    S2A_CHECK_INT(v.failed, 1);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_KEEP);
    S2A_CHECK_INT(v.fail_over, 0);
    S2A_CHECK_INT(v.client_status, 502);
    v = judged(401, NULL, 1, 0, 1, 0);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_KEEP);
    S2A_CHECK_INT(v.fail_over, 0);
    /* other failures still switch */
    v = judged(529, NULL, 0, 0, 1, 0);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_OVERLOADED);
    S2A_CHECK_INT(v.fail_over, 1);
}

/* count_tokens costs nothing: it rests no account. */
static void test_count_tokens(void)
{
    s2a_verdict v = judged(429, NULL, 0, 0, 0, 1);
    S2A_CHECK_INT(v.failed, 1);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_KEEP);
    S2A_CHECK_INT(v.fail_over, 0);
    S2A_CHECK_INT(v.client_status, 429);
    v = judged(529, NULL, 0, 0, 0, 1);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_KEEP);
    S2A_CHECK_INT(v.fail_over, 1);
    S2A_CHECK_INT(v.client_status, 503);
    v = judged(403, NULL, 0, 0, 0, 1);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_ERROR);
    S2A_CHECK_INT(judged(200, NULL, 0, 0, 0, 1).failed, 0);
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
    /* a time past what apr_time_t holds is as if not sent (it wrapped, to
     * no rest at all or to any other time) */
    S2A_CHECK_INT(s2a_policy_rest_until("99999999999999999999", NULL, now, cooldown),
                  now + cooldown);
    S2A_CHECK_INT(s2a_policy_rest_until("9223372036855", "7", now, cooldown),
                  now + apr_time_from_sec(7));
    S2A_CHECK_INT(s2a_policy_rest_until(NULL, "9223372036854775807", now, cooldown),
                  now + cooldown);
    S2A_CHECK_INT(s2a_policy_rest_until("9223372036854", NULL, now, cooldown),
                  apr_time_from_sec(9223372036854));

    S2A_CHECK_INT(s2a_policy_window(NULL), -1);
    S2A_CHECK_INT(s2a_policy_window("allowed"), S2A_WINDOW_ALLOWED);
    S2A_CHECK_INT(s2a_policy_window("allowed_warning"), S2A_WINDOW_WARNING);
    S2A_CHECK_INT(s2a_policy_window("rejected"), S2A_WINDOW_REJECTED);
    S2A_CHECK_INT(s2a_policy_window("Rejected"), S2A_WINDOW_UNKNOWN);

    /* unreachable: never saw the request; broken or timed out: may have */
    S2A_CHECK(s2a_policy_unreachable(503, 0) && s2a_policy_unreachable(503, 1));
    S2A_CHECK(!s2a_policy_unreachable(502, 0) && !s2a_policy_unreachable(504, 0));
    S2A_CHECK(s2a_policy_unreachable(502, 1) && s2a_policy_unreachable(504, 1));
    S2A_CHECK(!s2a_policy_unreachable(500, 1) && !s2a_policy_unreachable(200, 1));
}

static const char *body_saying(apr_pool_t *p, const char *message)
{
    return apr_psprintf(p,
                        "{\"type\":\"error\",\"error\":{\"type\":\"x\",\"message\":\"%s\"},"
                        "\"request_id\":\"req_1\"}",
                        message);
}

/* The upstream's words, read once the error body is whole. */
static void test_second_look(apr_pool_t *p)
{
    s2a_policy_case c = {400, NULL, 0, 0, 0, 0};
    s2a_verdict v;
    const char *b;

    /* a 400 about the account is a refusal of it */
    s2a_policy_judge(&c, &v);
    b = body_saying(p, "This organization has been disabled.");
    S2A_CHECK_INT(s2a_policy_reread(p, &c, b, strlen(b), &v), 1);
    S2A_CHECK_INT(v.failed, 1);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_ERROR);
    S2A_CHECK_INT(v.fail_over, 1);
    S2A_CHECK_INT(v.client_status, 502);
    s2a_policy_judge(&c, &v);
    b = body_saying(p, "Your credit balance is too low to access the Anthropic API.");
    S2A_CHECK_INT(s2a_policy_reread(p, &c, b, strlen(b), &v), 1);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_ERROR);
    /* ...also as the second refusal of a request: then it ends it */
    c.refused = 1;
    s2a_policy_judge(&c, &v);
    S2A_CHECK_INT(s2a_policy_reread(p, &c, b, strlen(b), &v), 1);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_KEEP);
    S2A_CHECK_INT(v.fail_over, 0);
    c.refused = 0;
    /* a 400 about the request stays the client's */
    s2a_policy_judge(&c, &v);
    b = body_saying(p, "max_tokens: Field required");
    S2A_CHECK_INT(s2a_policy_reread(p, &c, b, strlen(b), &v), 0);
    S2A_CHECK_INT(v.failed, 0);
    S2A_CHECK_INT(s2a_policy_reread(p, &c, "not json", 8, &v), 0);
    S2A_CHECK_INT(s2a_policy_reread(p, &c, NULL, 0, &v), 0);
    S2A_CHECK_INT(v.failed, 0);

    /* a 403 about one model fails over without the error state */
    c.status = 403;
    s2a_policy_judge(&c, &v);
    b = body_saying(p, "Your organization does not have access to model claude-opus-4-8");
    S2A_CHECK_INT(s2a_policy_reread(p, &c, b, strlen(b), &v), 1);
    S2A_CHECK_INT(v.failed, 1);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_KEEP);
    S2A_CHECK_INT(v.fail_over, 1);
    /* a 403 about the account stands */
    s2a_policy_judge(&c, &v);
    b = body_saying(p, "OAuth authentication is currently not allowed for this organization.");
    S2A_CHECK_INT(s2a_policy_reread(p, &c, b, strlen(b), &v), 0);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_ERROR);
    s2a_policy_judge(&c, &v);
    b = body_saying(p, "Permission denied");
    S2A_CHECK_INT(s2a_policy_reread(p, &c, b, strlen(b), &v), 0);
    S2A_CHECK_INT(v.action, S2A_ACCOUNT_ERROR);
    /* other statuses are not reread */
    c.status = 429;
    s2a_policy_judge(&c, &v);
    b = body_saying(p, "model");
    S2A_CHECK_INT(s2a_policy_reread(p, &c, b, strlen(b), &v), 0);
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_judge(p);
    test_one_refusal_per_request();
    test_count_tokens();
    test_second_look(p);
    test_rests();
    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_policy");
}
