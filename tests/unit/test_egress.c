/* An account's egress: what is one, what it becomes, how it is shown. */
#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_egress.h"
#include "s2a_test.h"

static void test_check(apr_pool_t *p)
{
    static const struct {
        const char *url;
        int good;
    } rows[] = {{"", 1},
                {"http://10.0.0.7:3128", 1},
                {"http://proxy.internal:8080/", 1},
                {"http://user:pa%40ss@proxy:3128", 1},
                {"http://proxy", 0},
                {"http://proxy:0", 0},
                {"http://proxy:3128/path", 0},
                {"http://proxy:3128?x=1", 0},
                {"https://proxy:3128", 0},
                {"socks5://proxy:1080", 0},
                {"proxy:3128", 0},
                {"http://:3128", 0},
                {"http://proxy:3128\r\nX-Evil: 1", 0},
                {"http://pro xy:3128", 0}};
    size_t i;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *why = s2a_egress_check(p, rows[i].url);
        if ((why == NULL) != rows[i].good) {
            fprintf(stderr, "egress %s: %s\n", rows[i].url, why ? why : "accepted");
        }
        S2A_CHECK((why == NULL) == rows[i].good);
    }
    S2A_CHECK(strstr(s2a_egress_check(p, "socks5://proxy:1080"), "SOCKS") != NULL);
    S2A_CHECK(s2a_egress_check(
                  p, apr_pstrcat(p, "http://", apr_psprintf(p, "%01100d", 0), ":1", NULL)) != NULL);
}

static void test_parse(apr_pool_t *p)
{
    s2a_egress e;
    S2A_CHECK_INT(s2a_egress_parse(p, "http://10.0.0.7:3128", &e), 1);
    S2A_CHECK_STR(e.host, "10.0.0.7");
    S2A_CHECK_INT(e.port, 3128);
    S2A_CHECK(e.authorization == NULL);
    S2A_CHECK_INT(s2a_egress_parse(p, "http://gw:s3cret@proxy:8080", &e), 1);
    S2A_CHECK_STR(e.host, "proxy");
    /* base64("gw:s3cret") */
    S2A_CHECK_STR(e.authorization, "Basic Z3c6czNjcmV0");
    S2A_CHECK_STR(e.url, "http://gw:s3cret@proxy:8080");
    /* %XX in the credentials decoded, as libcurl decodes them: base64("gw:p@ss") */
    S2A_CHECK_INT(s2a_egress_parse(p, "http://gw:p%40ss@proxy:8080", &e), 1);
    S2A_CHECK_STR(e.authorization, "Basic Z3c6cEBzcw==");
    S2A_CHECK_INT(s2a_egress_parse(p, "", &e), 0);
    S2A_CHECK_INT(s2a_egress_parse(p, NULL, &e), 0);
    S2A_CHECK_INT(s2a_egress_parse(p, "socks5://x:1", &e), 0);
}

static void test_shown(apr_pool_t *p)
{
    S2A_CHECK_STR(s2a_egress_shown(p, "http://gw:s3cret@proxy:8080"), "http://gw:***@proxy:8080");
    S2A_CHECK_STR(s2a_egress_shown(p, "http://proxy:8080/"), "http://proxy:8080");
    S2A_CHECK_STR(s2a_egress_shown(p, ""), "");
    S2A_CHECK(strstr(s2a_egress_shown(p, "http://a:topsecret@h:1"), "topsecret") == NULL);
}

int main(void)
{
    apr_pool_t *p;
    int rc;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_check(p);
    test_parse(p);
    test_shown(p);
    rc = S2A_TEST_SUMMARY("egress");
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
