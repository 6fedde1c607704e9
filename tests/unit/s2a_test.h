/* Minimal unit-test harness: each test binary prints "N passed, N failed". */
#ifndef S2A_TEST_H
#define S2A_TEST_H

#include <stdio.h>
#include <string.h>

static int s2a_test_passed;
static int s2a_test_failed;

#define S2A_CHECK(cond)                                                                            \
    do {                                                                                           \
        if (cond) {                                                                                \
            s2a_test_passed++;                                                                     \
        } else {                                                                                   \
            s2a_test_failed++;                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define S2A_CHECK_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *s2a_a_ = (a), *s2a_b_ = (b);                                                   \
        if (s2a_a_ && s2a_b_ && strcmp(s2a_a_, s2a_b_) == 0) {                                     \
            s2a_test_passed++;                                                                     \
        } else {                                                                                   \
            s2a_test_failed++;                                                                     \
            fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__,            \
                    s2a_b_ ? s2a_b_ : "(null)", s2a_a_ ? s2a_a_ : "(null)");                       \
        }                                                                                          \
    } while (0)

#define S2A_CHECK_INT(a, b)                                                                        \
    do {                                                                                           \
        long long s2a_a_ = (long long)(a), s2a_b_ = (long long)(b);                                \
        if (s2a_a_ == s2a_b_) {                                                                    \
            s2a_test_passed++;                                                                     \
        } else {                                                                                   \
            s2a_test_failed++;                                                                     \
            fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", __FILE__, __LINE__, #a,        \
                    s2a_b_, s2a_a_);                                                               \
        }                                                                                          \
    } while (0)

#define S2A_TEST_SUMMARY(name)                                                                     \
    (printf("%s: %d passed, %d failed\n", (name), s2a_test_passed, s2a_test_failed),               \
     s2a_test_failed ? 1 : 0)

#endif
