/* The fixed-size memory of strangers. */
#include <apr_general.h>

#include "s2a_memo.h"
#include "s2a_sha256.h"
#include "s2a_test.h"

static void digest_of(int n, unsigned char *d)
{
    s2a_sha256(&n, sizeof(n), d);
}

int main(void)
{
    apr_pool_t *p;
    unsigned char d[S2A_MEMO_DIGEST];
    apr_int64_t v = 0;
    s2a_memo *m;
    int i, kept = 0, wrong = 0;

    apr_initialize();
    apr_pool_create(&p, NULL);
    m = s2a_memo_make(p, 1000);
    digest_of(1, d);
    S2A_CHECK_INT(s2a_memo_get(m, d, &v), 0);
    s2a_memo_put(m, d, 42);
    S2A_CHECK_INT(s2a_memo_get(m, d, &v), 1);
    S2A_CHECK_INT(v, 42);
    s2a_memo_put(m, d, 7);
    S2A_CHECK_INT(s2a_memo_get(m, d, &v), 1);
    S2A_CHECK_INT(v, 7);

    /* a flood of 100,000 strangers: never more than the capacity, and the
     * latest ones are there */
    for (i = 2; i < 100002; i++) {
        digest_of(i, d);
        s2a_memo_put(m, d, i);
    }
    for (i = 2; i < 100002; i++) {
        digest_of(i, d);
        if (s2a_memo_get(m, d, &v)) {
            kept++;
            wrong += v != i;
        }
    }
    S2A_CHECK(kept <= 1000);
    S2A_CHECK(kept > 500);
    S2A_CHECK_INT(wrong, 0);
    digest_of(100001, d);
    S2A_CHECK_INT(s2a_memo_get(m, d, &v), 1);

    s2a_memo_clear(m);
    S2A_CHECK_INT(s2a_memo_get(m, d, &v), 0);
    /* the smallest memo holds one set */
    m = s2a_memo_make(p, 0);
    digest_of(5, d);
    s2a_memo_put(m, d, 5);
    S2A_CHECK_INT(s2a_memo_get(m, d, &v), 1);

    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_memo");
}
