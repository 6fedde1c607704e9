/* The memo of tools translations: it gives back exactly what was put for
 * exactly the same bytes and door, forgets the least recently used, keeps
 * nothing too long, and stays right under threads that read and replace. */
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "s2a_test.h"
#include "s2a_tools_memo.h"

static apr_pool_t *pool;

/* What the memo gives for tools of `door`: the text, or NULL when none;
 * *count the count it gave. */
static const char *got(s2a_tools_memo *m, int door, const char *tools, int *count)
{
    s2a_buf b;

    s2a_buf_init(&b, pool, 0);
    s2a_buf_append(&b, "<", 1);
    *count = -1;
    if (!s2a_tools_memo_get(m, door, tools, strlen(tools), &b, NULL, count)) {
        S2A_CHECK_INT(b.len, 1); /* untouched */
        S2A_CHECK_INT(*count, -1);
        return NULL;
    }
    return b.data + 1;
}

static void put(s2a_tools_memo *m, int door, const char *tools, const char *out, int count)
{
    s2a_tools_memo_put(m, door, tools, strlen(tools), out, strlen(out), NULL, 0, count);
}

static void test_exact(void)
{
    s2a_tools_memo *m = s2a_tools_memo_make(pool, 4, 100);
    int count;

    S2A_CHECK(got(m, S2A_TOOLS_MEMO_CHAT, "[1]", &count) == NULL);
    put(m, S2A_TOOLS_MEMO_CHAT, "[1]", ",\"tools\":[one]", 1);
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, "[1]", &count), ",\"tools\":[one]");
    S2A_CHECK_INT(count, 1);
    /* the same length with other bytes, a prefix, the other door: unknown */
    S2A_CHECK(got(m, S2A_TOOLS_MEMO_CHAT, "[2]", &count) == NULL);
    S2A_CHECK(got(m, S2A_TOOLS_MEMO_CHAT, "[1", &count) == NULL);
    S2A_CHECK(got(m, S2A_TOOLS_MEMO_CHAT, "[1] ", &count) == NULL);
    S2A_CHECK(got(m, S2A_TOOLS_MEMO_RESPONSES, "[1]", &count) == NULL);
    put(m, S2A_TOOLS_MEMO_RESPONSES, "[1]", "other", 3);
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_RESPONSES, "[1]", &count), "other");
    S2A_CHECK_INT(count, 3);
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, "[1]", &count), ",\"tools\":[one]");
    /* an empty translation is one too */
    put(m, S2A_TOOLS_MEMO_CHAT, "[]", "", 0);
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, "[]", &count), "");
    S2A_CHECK_INT(count, 0);
    /* nothing for an empty array's bytes, and no memo at all */
    S2A_CHECK_INT(s2a_tools_memo_get(m, S2A_TOOLS_MEMO_CHAT, "", 0, NULL, NULL, &count), 0);
    S2A_CHECK_INT(s2a_tools_memo_get(NULL, S2A_TOOLS_MEMO_CHAT, "[1]", 3, NULL, NULL, &count), 0);
    s2a_tools_memo_put(NULL, S2A_TOOLS_MEMO_CHAT, "[1]", 3, "x", 1, NULL, 0, 1);
}

/* What the door kept aside comes back with the translation, NULs and all. */
static void test_aside(void)
{
    s2a_tools_memo *m = s2a_tools_memo_make(pool, 2, 100);
    s2a_buf b, aside;
    int count = 0;

    s2a_tools_memo_put(m, S2A_TOOLS_MEMO_RESPONSES, "[x]", 3, "out", 3, "a\0bc", 4, 2);
    s2a_buf_init(&b, pool, 0);
    s2a_buf_init(&aside, pool, 0);
    S2A_CHECK_INT(s2a_tools_memo_get(m, S2A_TOOLS_MEMO_RESPONSES, "[x]", 3, &b, &aside, &count), 1);
    S2A_CHECK(b.len == 3 && memcmp(b.data, "out", 3) == 0);
    S2A_CHECK(aside.len == 4 && memcmp(aside.data, "a\0bc", 4) == 0);
    S2A_CHECK_INT(count, 2);
    /* an entry without one gives nothing aside */
    s2a_tools_memo_put(m, S2A_TOOLS_MEMO_RESPONSES, "[y]", 3, "o2", 2, NULL, 0, 1);
    aside.len = 0;
    S2A_CHECK_INT(s2a_tools_memo_get(m, S2A_TOOLS_MEMO_RESPONSES, "[y]", 3, &b, &aside, &count), 1);
    S2A_CHECK_INT(aside.len, 0);
}

static void test_limits(void)
{
    s2a_tools_memo *m = s2a_tools_memo_make(pool, 3, 10);
    char *longest = apr_pstrdup(pool, "[12345678]"),
         *longer = apr_pstrcat(pool, longest, " ", NULL);
    int count, i;

    /* at most max_len bytes are kept */
    put(m, S2A_TOOLS_MEMO_CHAT, longest, "kept", 1);
    put(m, S2A_TOOLS_MEMO_CHAT, longer, "too long", 1);
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, longest, &count), "kept");
    S2A_CHECK(got(m, S2A_TOOLS_MEMO_CHAT, longer, &count) == NULL);

    /* three slots: a fourth array pushes out the least recently used */
    put(m, S2A_TOOLS_MEMO_CHAT, "[a]", "A", 1);
    put(m, S2A_TOOLS_MEMO_CHAT, "[b]", "B", 1);
    S2A_CHECK(got(m, S2A_TOOLS_MEMO_CHAT, longest, &count) != NULL); /* used: [a] is oldest */
    put(m, S2A_TOOLS_MEMO_CHAT, "[c]", "C", 1);
    S2A_CHECK(got(m, S2A_TOOLS_MEMO_CHAT, "[a]", &count) == NULL);
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, "[b]", &count), "B");
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, "[c]", &count), "C");
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, longest, &count), "kept");
    /* putting a known array again changes nothing */
    put(m, S2A_TOOLS_MEMO_CHAT, "[c]", "C2", 2);
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, "[c]", &count), "C");
    /* a slot whose new entry is longer than its room grows */
    for (i = 0; i < 3; i++) {
        put(m, S2A_TOOLS_MEMO_CHAT, apr_psprintf(pool, "[%d]", i), "a much longer translation", i);
    }
    S2A_CHECK_STR(got(m, S2A_TOOLS_MEMO_CHAT, "[2]", &count), "a much longer translation");
    S2A_CHECK_INT(count, 2);
}

/* Threads that look up and put arrays of their own and of the others, in
 * a memo smaller than all of them: whatever they find is the translation
 * of the array they asked about. */
#define THREADS 4
#define ROUNDS 20000

typedef struct {
    s2a_tools_memo *m;
    int id;
    int wrong;
    int found;
} hammer_t;

static void *APR_THREAD_FUNC hammer(apr_thread_t *t, void *data)
{
    hammer_t *h = data;
    apr_pool_t *p;
    int i;

    apr_pool_create(&p, NULL);
    for (i = 0; i < ROUNDS; i++) {
        int n = (i * 7 + h->id) % 12, count = -1;
        char tools[32], out[64], aside[16];
        s2a_buf b, kept;

        apr_snprintf(tools, sizeof(tools), "[%d]", n);
        apr_snprintf(out, sizeof(out), "translation of %d, %0*d", n, n * 3 + 1, 0);
        apr_snprintf(aside, sizeof(aside), "aside %d", n);
        s2a_buf_init(&b, p, 0);
        s2a_buf_init(&kept, p, 0);
        if (s2a_tools_memo_get(h->m, S2A_TOOLS_MEMO_CHAT, tools, strlen(tools), &b, &kept,
                               &count)) {
            h->found++;
            h->wrong += count != n || b.len != strlen(out) || memcmp(b.data, out, b.len) != 0 ||
                        kept.len != strlen(aside) || memcmp(kept.data, aside, kept.len) != 0;
        } else {
            s2a_tools_memo_put(h->m, S2A_TOOLS_MEMO_CHAT, tools, strlen(tools), out, strlen(out),
                               aside, strlen(aside), n);
        }
        if (i % 256 == 0) {
            apr_pool_clear(p);
        }
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads(void)
{
    s2a_tools_memo *m = s2a_tools_memo_make(pool, 5, 64);
    apr_thread_t *t[THREADS];
    hammer_t h[THREADS];
    apr_status_t rv;
    int i, wrong = 0, found = 0;

    for (i = 0; i < THREADS; i++) {
        h[i].m = m;
        h[i].id = i;
        h[i].wrong = h[i].found = 0;
        apr_thread_create(&t[i], NULL, hammer, &h[i], pool);
    }
    for (i = 0; i < THREADS; i++) {
        apr_thread_join(&rv, t[i]);
        wrong += h[i].wrong;
        found += h[i].found;
    }
    S2A_CHECK_INT(wrong, 0);
    S2A_CHECK(found > 0);
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_exact();
    test_limits();
    test_aside();
    test_threads();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_tools_memo");
}
