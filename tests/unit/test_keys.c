/* Client keys: format, randomness, hashing, display forms, header extraction. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_keys.h"
#include "s2a_sha256.h"
#include "s2a_test.h"

static apr_pool_t *pool;

static int is_lower_hex(const char *s, apr_size_t n)
{
    apr_size_t i;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static void test_generate(void)
{
    char *k1 = NULL, *k2 = NULL;

    S2A_CHECK_INT(s2a_key_generate(pool, &k1), APR_SUCCESS);
    S2A_CHECK_INT(s2a_key_generate(pool, &k2), APR_SUCCESS);
    S2A_CHECK(k1 != NULL && k2 != NULL);
    if (!k1 || !k2) {
        return;
    }
    S2A_CHECK_INT(strlen(k1), 7 + 48);
    S2A_CHECK(strncmp(k1, "sk-s2a-", 7) == 0);
    S2A_CHECK(is_lower_hex(k1 + 7, 48));
    S2A_CHECK(strcmp(k1, k2) != 0);
}

static void test_well_formed(void)
{
    char *k = NULL;
    S2A_CHECK_INT(s2a_key_generate(pool, &k), APR_SUCCESS);
    S2A_CHECK(s2a_key_well_formed(k));
    S2A_CHECK(!s2a_key_well_formed(NULL));
    S2A_CHECK(!s2a_key_well_formed(""));
    S2A_CHECK(!s2a_key_well_formed("sk-s2a-"));
    S2A_CHECK(!s2a_key_well_formed(apr_pstrcat(pool, k, "0", NULL)));
    S2A_CHECK(!s2a_key_well_formed(apr_pstrndup(pool, k, strlen(k) - 1)));
    S2A_CHECK(!s2a_key_well_formed(apr_pstrcat(pool, "sk-ant-", k + 7, NULL)));
    k[20] = 'A';
    S2A_CHECK(!s2a_key_well_formed(k));
    k[20] = 'g';
    S2A_CHECK(!s2a_key_well_formed(k));
    S2A_CHECK(!s2a_key_well_formed("sk-s2a-0000000000000000000000000000000000000000000000\n0"));
}

static void test_hash(void)
{
    const char *key = "sk-s2a-0123456789abcdef0123456789abcdef0123456789abcdef";
    char *h = s2a_key_hash(pool, key);
    unsigned char d[S2A_SHA256_LEN];

    S2A_CHECK_INT(strlen(h), 64);
    s2a_sha256(key, strlen(key), d);
    S2A_CHECK_STR(h, s2a_hex(pool, d, sizeof(d)));
    S2A_CHECK_STR(s2a_key_hash(pool, "abc"),
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    S2A_CHECK(strcmp(s2a_key_hash(pool, "sk-s2a-a"), s2a_key_hash(pool, "sk-s2a-b")) != 0);
    S2A_CHECK(s2a_key_hash(pool, NULL) == NULL);
}

static void test_prefix(void)
{
    S2A_CHECK_STR(s2a_key_prefix(pool, "sk-s2a-0123456789abcdef0123456789abcdef0123456789abcdef"),
                  "sk-s2a-01234...");
    /* Short keys are never shown whole. */
    S2A_CHECK_STR(s2a_key_prefix(pool, "abcdefgh"), "abcd...");
    S2A_CHECK_STR(s2a_key_prefix(pool, "x"), "...");
    S2A_CHECK_STR(s2a_key_prefix(pool, ""), "...");
}

static void test_from_headers(void)
{
    S2A_CHECK(s2a_key_from_headers(pool, NULL, NULL) == NULL);
    S2A_CHECK_STR(s2a_key_from_headers(pool, "sk-a", NULL), "sk-a");
    S2A_CHECK_STR(s2a_key_from_headers(pool, "  sk-a \t", NULL), "sk-a");
    S2A_CHECK_STR(s2a_key_from_headers(pool, NULL, "Bearer sk-b"), "sk-b");
    S2A_CHECK_STR(s2a_key_from_headers(pool, NULL, "bearer sk-b"), "sk-b");
    S2A_CHECK_STR(s2a_key_from_headers(pool, NULL, "BEARER   sk-b  "), "sk-b");
    S2A_CHECK_STR(s2a_key_from_headers(pool, NULL, "  Bearer\tsk-b"), "sk-b");
    /* x-api-key wins over Authorization. */
    S2A_CHECK_STR(s2a_key_from_headers(pool, "sk-a", "Bearer sk-b"), "sk-a");
    /* An empty x-api-key does not hide a Bearer key. */
    S2A_CHECK_STR(s2a_key_from_headers(pool, "", "Bearer sk-b"), "sk-b");
    S2A_CHECK_STR(s2a_key_from_headers(pool, "   ", "Bearer sk-b"), "sk-b");
    S2A_CHECK(s2a_key_from_headers(pool, "", NULL) == NULL);
    S2A_CHECK(s2a_key_from_headers(pool, NULL, "Bearer") == NULL);
    S2A_CHECK(s2a_key_from_headers(pool, NULL, "Bearer   ") == NULL);
    S2A_CHECK(s2a_key_from_headers(pool, NULL, "Basic dXNlcjpwYXNz") == NULL);
    S2A_CHECK(s2a_key_from_headers(pool, NULL, "Bearersk-b") == NULL);
    S2A_CHECK(s2a_key_from_headers(pool, NULL, "") == NULL);
}

static void test_mask(void)
{
    const char *secret = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz-WXYZ";
    char *m = s2a_secret_mask(pool, secret);

    S2A_CHECK_STR(m, "sk-ant-...WXYZ");
    S2A_CHECK(strstr(m, "abcdefghij") == NULL);
    /* 17 chars: just long enough to show the ends. */
    S2A_CHECK_STR(s2a_secret_mask(pool, "0123456789abcdefg"), "0123456...defg");
    S2A_CHECK_STR(s2a_secret_mask(pool, "0123456789abcdef"), "****");
    S2A_CHECK_STR(s2a_secret_mask(pool, "short"), "****");
    S2A_CHECK_STR(s2a_secret_mask(pool, ""), "****");
    S2A_CHECK_STR(s2a_secret_mask(pool, NULL), "****");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_generate();
    test_well_formed();
    test_hash();
    test_prefix();
    test_from_headers();
    test_mask();

    apr_pool_destroy(pool);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_keys");
}
