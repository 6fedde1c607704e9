/* The growable buffer. */
#include <apr_general.h>

#include "s2a_buf.h"
#include "s2a_test.h"

int main(void)
{
    apr_pool_t *p;
    s2a_buf b;
    int i, wrong = 0;
    apr_initialize();
    apr_pool_create(&p, NULL);

    s2a_buf_init(&b, p, 0);
    S2A_CHECK(b.data == NULL && b.len == 0);
    s2a_buf_append(&b, "", 0);
    S2A_CHECK(b.data != NULL && b.len == 0 && b.data[0] == '\0');
    for (i = 0; i < 100000; i++) {
        s2a_buf_append(&b, "abc", 3);
    }
    S2A_CHECK_INT(b.len, 300000);
    S2A_CHECK_INT(b.data[b.len], '\0');
    for (i = 0; i < 100000; i++) {
        wrong += memcmp(b.data + 3 * i, "abc", 3) != 0;
    }
    S2A_CHECK_INT(wrong, 0);
    S2A_CHECK(b.cap >= b.len + 1 && b.cap < 2 * (b.len + 1) + 64);
    s2a_buf_reset(&b);
    S2A_CHECK(b.len == 0 && b.data[0] == '\0');

    /* an expected size is taken at once */
    s2a_buf_init(&b, p, 5001);
    s2a_buf_append(&b, "x", 1);
    S2A_CHECK_INT(b.cap, 5001);
    for (i = 1; i < 5000; i++) {
        s2a_buf_append(&b, "x", 1);
    }
    S2A_CHECK_INT(b.cap, 5001);
    s2a_buf_append(&b, "y", 1);
    S2A_CHECK_INT(b.len, 5001);
    S2A_CHECK(b.cap > 5001);

    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_buf");
}
