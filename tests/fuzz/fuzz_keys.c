/* Client keys, headers and identities (s2a_keys.h, s2a_headers.h,
 * s2a_identity.h), each against its definition written out plainly: the
 * key taken from two header values, the key form, the display forms that
 * never show a secret whole, which headers cross the gateway, and the
 * session and user id a client's metadata.user_id gives (the session
 * surviving the pseudonym's user id).
 *
 * Input: a flags byte, then two header values separated by a NUL. */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_headers.h"
#include "s2a_identity.h"
#include "s2a_keys.h"

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

/* s without surrounding spaces and tabs; NULL when nothing is left. */
static char *trim(apr_pool_t *p, const char *s)
{
    size_t n;
    while (blank(*s)) {
        s++;
    }
    n = strlen(s);
    while (n && blank(s[n - 1])) {
        n--;
    }
    return n ? apr_pstrmemdup(p, s, n) : NULL;
}

static void check_key_from_headers(apr_pool_t *p, const char *x, const char *auth)
{
    const char *got = s2a_key_from_headers(p, x, auth), *want = x ? trim(p, x) : NULL;

    if (!want && auth) {
        const char *a = auth;
        while (blank(*a)) {
            a++;
        }
        if (strncasecmp(a, "bearer", 6) == 0 && blank(a[6])) {
            want = trim(p, a + 6);
        }
    }
    FUZZ_CHECK(want ? got && strcmp(got, want) == 0 : got == NULL);
}

static int well_formed(const char *k)
{
    size_t i;
    if (strncmp(k, "sk-s2a-", 7) != 0 || strlen(k) != 7 + 48) {
        return 0;
    }
    for (i = 7; k[i]; i++) {
        if (!strchr("0123456789abcdef", k[i])) {
            return 0;
        }
    }
    return 1;
}

static void check_key(apr_pool_t *p, const char *k)
{
    size_t n = strlen(k), shown = n / 2 < 12 ? n / 2 : 12;
    const char *hash = s2a_key_hash(p, k), *mask = s2a_secret_mask(p, k);
    const char *prefix = s2a_key_prefix(p, k);
    size_t i;

    FUZZ_CHECK(s2a_key_well_formed(k) == well_formed(k));
    FUZZ_CHECK(strlen(hash) == 64 && strcmp(hash, s2a_key_hash(p, k)) == 0);
    for (i = 0; i < 64; i++) {
        FUZZ_CHECK(strchr("0123456789abcdef", hash[i]) != NULL);
    }
    FUZZ_CHECK(strlen(prefix) == shown + 3 && strncmp(prefix, k, shown) == 0 &&
               strcmp(prefix + shown, "...") == 0);
    if (n <= 16) {
        FUZZ_CHECK(strcmp(mask, "****") == 0);
    } else {
        FUZZ_CHECK(strlen(mask) == 14 && strncmp(mask, k, 7) == 0 &&
                   strncmp(mask + 7, "...", 3) == 0 && strcmp(mask + 10, k + n - 4) == 0);
    }
}

static void check_header(apr_pool_t *p, const char *name)
{
    static const char *const allowed[] = {"accept",
                                          "accept-language",
                                          "anthropic-beta",
                                          "anthropic-dangerous-direct-browser-access",
                                          "anthropic-version",
                                          "content-type",
                                          "sec-fetch-mode",
                                          "user-agent",
                                          "x-app",
                                          "host",
                                          "expect",
                                          NULL};
    static const char *const stainless[] = {
        "arch",    "helper-method",   "lang",    "os", "package-version", "retry-count",
        "runtime", "runtime-version", "timeout", NULL};
    int up = s2a_header_to_upstream(name), account = s2a_header_names_account(name), want = 0;
    char *lower = apr_pstrdup(p, name), *c;
    int i;

    for (c = lower; *c; c++) {
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    }
    for (i = 0; allowed[i]; i++) {
        want = want || strcmp(lower, allowed[i]) == 0;
    }
    for (i = 0; stainless[i]; i++) {
        want = want ||
               (strncmp(lower, "x-stainless-", 12) == 0 && strcmp(lower + 12, stainless[i]) == 0);
    }
    FUZZ_CHECK(up == want);
    FUZZ_CHECK(account == (strncmp(lower, "anthropic-ratelimit-", 20) == 0 ||
                           strcmp(lower, "anthropic-organization-id") == 0));
    FUZZ_CHECK(!(up && account));
}

static int plain_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) {
        return 0;
    }
    for (; *s; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '-')) {
            return 0;
        }
    }
    return 1;
}

static int json_form(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    return *s == '{';
}

static void check_identity(apr_pool_t *p, const char *original)
{
    static const char secret[] = "0123456789abcdef0123456789abcdef";
    const char *ps = s2a_identity_pseudonym(p, (const unsigned char *)secret, 32, 4, 9);
    const char *sid = s2a_identity_session(p, original), *again;
    char *uid = s2a_identity_user_id(p, ps, original);

    FUZZ_CHECK(!sid || plain_id(sid));
    if (!json_form(original)) {
        const char *m = strstr(original, "_session_");
        FUZZ_CHECK(sid ? m && strcmp(sid, m + 9) == 0 : !m || !plain_id(m + 9));
    }
    /* the user id sent keeps the client's form and session, and nothing else of it */
    FUZZ_CHECK(json_form(uid) == json_form(original));
    again = s2a_identity_session(p, uid);
    FUZZ_CHECK(sid ? again && strcmp(again, sid) == 0 : again == NULL);
    if (json_form(uid)) {
        json_object *o = json_tokener_parse(uid), *v;
        FUZZ_CHECK(o && json_object_object_get_ex(o, "device_id", &v) &&
                   strcmp(json_object_get_string(v), ps) == 0);
        FUZZ_CHECK(json_object_object_length(o) == (sid ? 2 : 1));
        json_object_put(o);
    } else {
        FUZZ_CHECK(strncmp(uid, "user_", 5) == 0 && strncmp(uid + 5, ps, 64) == 0);
        FUZZ_CHECK(strcmp(uid + 69, sid ? apr_pstrcat(p, "_account__session_", sid, NULL) : "") ==
                   0);
    }
    FUZZ_CHECK(s2a_identity_session(p, NULL) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    const char *whole = fuzz_copy(p, in.p, in.n, 1);
    const uint8_t *nul = memchr(in.p, '\0', in.n);
    const char *first = whole, *second = nul ? whole + (nul - in.p) + 1 : NULL;

    check_key_from_headers(p, flags & 1 ? NULL : first, flags & 2 ? NULL : second);
    check_key_from_headers(p, second, first);
    check_key(p, first);
    check_header(p, first);
    check_identity(p, first);
    if (second) {
        check_key(p, second);
        check_header(p, second);
        check_identity(p, second);
    }
    apr_pool_destroy(p);
    return 0;
}
