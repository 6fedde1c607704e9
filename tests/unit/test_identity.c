/* What the upstream sees as metadata.user_id. */
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_identity.h"
#include "s2a_json.h"
#include "s2a_test.h"

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef";
static const unsigned char other_secret[] = "fedcba9876543210fedcba9876543210";

static void test_pseudonym(apr_pool_t *p)
{
    const char *a = s2a_identity_pseudonym(p, secret, 32, 7, 3);
    S2A_CHECK_INT(strlen(a), 64);
    S2A_CHECK_STR(s2a_identity_pseudonym(p, secret, 32, 7, 3), a);
    S2A_CHECK(strcmp(s2a_identity_pseudonym(p, secret, 32, 8, 3), a) != 0);
    S2A_CHECK(strcmp(s2a_identity_pseudonym(p, secret, 32, 7, 4), a) != 0);
    S2A_CHECK(strcmp(s2a_identity_pseudonym(p, other_secret, 32, 7, 3), a) != 0);
    /* "7" and "73" must not collide through concatenation */
    S2A_CHECK(strcmp(s2a_identity_pseudonym(p, secret, 32, 73, 3), a) != 0);
    S2A_CHECK(strcmp(s2a_identity_pseudonym(p, secret, 32, 7, 33), a) != 0);
}

static void test_session(apr_pool_t *p)
{
    S2A_CHECK_STR(s2a_identity_session(p,
                                       "{\"device_id\":\"d1\",\"account_uuid\":\"a-1\","
                                       "\"session_id\":\"5f0c8e6e-1b2a-4c1e-9a8e-0d6f2b3c4d5e\"}"),
                  "5f0c8e6e-1b2a-4c1e-9a8e-0d6f2b3c4d5e");
    S2A_CHECK_STR(s2a_identity_session(p, "  {\"session_id\":\"ab\\u002dcd\"}"), "ab-cd");
    S2A_CHECK_STR(s2a_identity_session(p, "user_0a1b_account_1111-2222_session_3333-4444"),
                  "3333-4444");
    S2A_CHECK(s2a_identity_session(p, NULL) == NULL);
    S2A_CHECK(s2a_identity_session(p, "plain-user-17") == NULL);
    S2A_CHECK(s2a_identity_session(p, "{\"session_id\":7}") == NULL);
    S2A_CHECK(s2a_identity_session(p, "{\"session_id\":\"x\"") == NULL);
    /* anything that could break out of the JSON text it is put in is refused */
    S2A_CHECK(s2a_identity_session(p, "{\"session_id\":\"a\\\"b\"}") == NULL);
    S2A_CHECK(s2a_identity_session(p, "user_x_session_a\"b") == NULL);
    S2A_CHECK(s2a_identity_session(p, "user_x_session_") == NULL);
}

static void test_user_id(apr_pool_t *p)
{
    static const char *const keys[] = {"device_id", "session_id", "account_uuid"};
    const char *ps = s2a_identity_pseudonym(p, secret, 32, 1, 2);
    const char *out = s2a_identity_user_id(
        p, ps, "{\"device_id\":\"mine\",\"account_uuid\":\"acc-9\",\"session_id\":\"s-1\"}");
    s2a_json_span f[3];
    const char *err;

    S2A_CHECK_INT(s2a_json_scan_object(p, out, strlen(out), keys, 3, f, &err), 0);
    S2A_CHECK_STR(s2a_json_string_dup(p, &f[0]), ps);
    S2A_CHECK_STR(s2a_json_string_dup(p, &f[1]), "s-1");
    S2A_CHECK_INT(f[2].type, S2A_JSON_NONE);
    S2A_CHECK(strstr(out, "mine") == NULL && strstr(out, "acc-9") == NULL);

    S2A_CHECK_STR(s2a_identity_user_id(p, ps, "user_abc_account_def_session_s-2"),
                  apr_pstrcat(p, "user_", ps, "_account__session_s-2", NULL));
    S2A_CHECK_STR(s2a_identity_user_id(p, ps, "someone@example.com"),
                  apr_pstrcat(p, "user_", ps, NULL));
    S2A_CHECK_STR(s2a_identity_user_id(p, ps, NULL), apr_pstrcat(p, "user_", ps, NULL));
    S2A_CHECK_STR(s2a_identity_user_id(p, ps, "{\"device_id\":\"x\"}"),
                  apr_pstrcat(p, "{\"device_id\":\"", ps, "\"}", NULL));
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_pseudonym(p);
    test_session(p);
    test_user_id(p);
    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_identity");
}
