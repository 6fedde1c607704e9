/* Which requests share a session key (and so stay on one account). */
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_session.h"
#include "s2a_test.h"

static apr_pool_t *pool;

/* The key of a request body with the given header and group. */
static apr_uint64_t key_of(apr_int64_t group, const char *header, const char *body)
{
    static const char *const keys[] = {"system", "messages", "metadata"};
    s2a_json_span f[3], uid;
    const char *err, *user_id = NULL;
    if (s2a_json_scan_object(pool, body, strlen(body), keys, 3, f, &err) != 0) {
        fprintf(stderr, "bad test body: %s\n", err);
        return 0;
    }
    if (f[2].type == S2A_JSON_OBJECT && s2a_json_object_get(&f[2], "user_id", &uid)) {
        user_id = s2a_json_string_dup(pool, &uid);
    }
    return s2a_session_key(pool, group, 7, header, user_id, &f[0], &f[1]);
}

static const char *turn(const char *system, const char *metadata, const char *messages)
{
    return apr_psprintf(pool, "{\"model\":\"m\"%s%s%s%s,\"messages\":%s}",
                        system ? ",\"system\":" : "", system ? system : "",
                        metadata ? ",\"metadata\":" : "", metadata ? metadata : "", messages);
}

static void test_order_of_sources(void)
{
    const char *sys = "[{\"type\":\"text\",\"text\":\"You are Claude Code\","
                      "\"cache_control\":{\"type\":\"ephemeral\"}},"
                      "{\"type\":\"text\",\"text\":\"today is monday\"}]";
    const char *sys_other_day = "[{\"type\":\"text\",\"text\":\"You are Claude Code\","
                                "\"cache_control\":{\"type\":\"ephemeral\"}},"
                                "{\"type\":\"text\",\"text\":\"today is tuesday\"}]";
    const char *msgs1 = "[{\"role\":\"user\",\"content\":\"hi\"}]";
    const char *msgs2 = "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
                        "\"content\":\"yes\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                        "\"text\":\"more\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]";
    const char *meta_a = "{\"user_id\":\"{\\\"device_id\\\":\\\"d1\\\",\\\"session_id\\\":"
                         "\\\"5f0c8e6e-1b2a-4c1e\\\"}\"}";
    const char *meta_b = "{\"user_id\":\"user_ab_account_cd_session_5f0c8e6e-1b2a-4c1e\"}";
    apr_uint64_t k;

    /* the header wins over everything, and only it counts */
    k = key_of(1, "sess-1", turn(sys, meta_a, msgs1));
    S2A_CHECK(k != 0);
    S2A_CHECK_INT(key_of(1, "sess-1", turn(NULL, NULL, msgs2)), k);
    S2A_CHECK(key_of(1, "sess-2", turn(sys, meta_a, msgs1)) != k);

    /* the user_id session in either form */
    k = key_of(1, NULL, turn(sys, meta_a, msgs1));
    S2A_CHECK_INT(key_of(1, NULL, turn(sys_other_day, meta_b, msgs2)), k);
    S2A_CHECK(key_of(1, NULL, turn(sys, NULL, msgs1)) != k);

    /* cached system parts: a new turn and a changed uncached part keep the key */
    k = key_of(1, NULL, turn(sys, NULL, msgs1));
    S2A_CHECK_INT(key_of(1, NULL, turn(sys, NULL, msgs2)), k);
    S2A_CHECK_INT(key_of(1, NULL, turn(sys_other_day, NULL, msgs2)), k);

    /* whole system text, then the first message */
    k = key_of(1, NULL, turn("\"be brief\"", NULL, msgs1));
    S2A_CHECK_INT(key_of(1, NULL, turn("\"be brief\"", NULL, msgs2)), k);
    S2A_CHECK(key_of(1, NULL, turn("\"be long\"", NULL, msgs1)) != k);
    k = key_of(1, NULL, turn(NULL, NULL, msgs1));
    S2A_CHECK(k != 0);
    S2A_CHECK_INT(key_of(1, NULL, turn(NULL, NULL, msgs2)), k);
    S2A_CHECK(key_of(1, NULL, turn(NULL, NULL, "[{\"role\":\"user\",\"content\":\"bye\"}]")) != k);

    /* a cache marker moving through the messages changes nothing */
    k = key_of(1, NULL, turn(NULL, NULL, msgs1));
    S2A_CHECK_INT(key_of(1, NULL, turn(NULL, NULL, msgs2)), k);

    /* nothing to bind by */
    S2A_CHECK_INT(key_of(1, NULL, turn(NULL, NULL, "[]")), 0);
}

static void test_groups_and_sources_do_not_mix(void)
{
    static const char *const keys[] = {"system", "messages"};
    const char *body = "{\"system\":\"be brief\",\"messages\":[]}";
    s2a_json_span f[2];
    const char *err;
    /* the same system prompt from two users: two conversations */
    S2A_CHECK_INT(s2a_json_scan_object(pool, body, strlen(body), keys, 2, f, &err), 0);
    S2A_CHECK(s2a_session_key(pool, 1, 7, NULL, NULL, &f[0], &f[1]) !=
              s2a_session_key(pool, 1, 8, NULL, NULL, &f[0], &f[1]));
    S2A_CHECK(s2a_session_key(pool, 1, 7, NULL, NULL, &f[0], &f[1]) != 0);
    const char *msgs = "[{\"role\":\"user\",\"content\":\"hi\"}]";
    S2A_CHECK(key_of(1, "s", turn(NULL, NULL, msgs)) != key_of(2, "s", turn(NULL, NULL, msgs)));
    /* a header value equal to a user_id session is a different key */
    S2A_CHECK(key_of(1, "abc-1", turn(NULL, NULL, msgs)) !=
              key_of(1, NULL, turn(NULL, "{\"user_id\":\"u_session_abc-1\"}", msgs)));
    /* group 1 and 11 with a header "1x" cannot meet */
    S2A_CHECK(key_of(1, "1x", turn(NULL, NULL, msgs)) != key_of(11, "x", turn(NULL, NULL, msgs)));
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_order_of_sources();
    test_groups_and_sources_do_not_mix();
    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_session");
}
