/* Client API keys. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_cstr.h>

#include "s2a_keys.h"
#include "s2a_sha256.h"

#define KEY_RANDOM_BYTES 24
#define KEY_PREFIX_SHOWN 12

apr_status_t s2a_key_generate(apr_pool_t *p, char **key)
{
    unsigned char rnd[KEY_RANDOM_BYTES];
    apr_status_t rv;

    *key = NULL;
    rv = apr_generate_random_bytes(rnd, sizeof(rnd));
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *key = apr_pstrcat(p, S2A_KEY_PREFIX, s2a_hex(p, rnd, sizeof(rnd)), NULL);
    return APR_SUCCESS;
}

apr_status_t s2a_redeem_code_generate(apr_pool_t *p, char **code)
{
    unsigned char rnd[16];
    apr_status_t rv = apr_generate_random_bytes(rnd, sizeof(rnd));
    *code = rv == APR_SUCCESS ? apr_pstrcat(p, "rc-", s2a_hex(p, rnd, sizeof(rnd)), NULL) : NULL;
    return rv;
}

int s2a_key_well_formed(const char *key)
{
    apr_size_t prefix = strlen(S2A_KEY_PREFIX), i;
    if (!key || strncmp(key, S2A_KEY_PREFIX, prefix) != 0 ||
        strlen(key) != prefix + 2 * KEY_RANDOM_BYTES) {
        return 0;
    }
    for (i = prefix; key[i]; i++) {
        if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

char *s2a_key_hash(apr_pool_t *p, const char *key)
{
    unsigned char d[S2A_SHA256_LEN];

    if (!key) {
        return NULL;
    }
    s2a_sha256(key, strlen(key), d);
    return s2a_hex(p, d, sizeof(d));
}

char *s2a_key_prefix(apr_pool_t *p, const char *key)
{
    apr_size_t len, shown;

    if (!key) {
        return apr_pstrdup(p, "...");
    }
    len = strlen(key);
    shown = KEY_PREFIX_SHOWN;
    /* A listing must not reveal a short key whole. */
    if (shown > len / 2) {
        shown = len / 2;
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, key, shown), "...", NULL);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Copy of [s, s+len) without surrounding spaces; NULL if nothing is left. */
static const char *trimmed(apr_pool_t *p, const char *s, apr_size_t len)
{
    while (len && is_space(*s)) {
        s++;
        len--;
    }
    while (len && is_space(s[len - 1])) {
        len--;
    }
    return len ? apr_pstrmemdup(p, s, len) : NULL;
}

const char *s2a_key_from_headers(apr_pool_t *p, const char *x_api_key, const char *authorization)
{
    static const char scheme[] = "Bearer";
    const apr_size_t slen = sizeof(scheme) - 1;
    const char *k;

    if (x_api_key && (k = trimmed(p, x_api_key, strlen(x_api_key))) != NULL) {
        return k;
    }
    if (!authorization) {
        return NULL;
    }
    while (is_space(*authorization)) {
        authorization++;
    }
    if (apr_cstr_casecmpn(authorization, scheme, slen) != 0 || !is_space(authorization[slen])) {
        return NULL;
    }
    authorization += slen;
    return trimmed(p, authorization, strlen(authorization));
}

char *s2a_secret_mask(apr_pool_t *p, const char *secret)
{
    apr_size_t len = secret ? strlen(secret) : 0;

    if (len <= 16) {
        return apr_pstrdup(p, "****");
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, secret, 7), "...", secret + len - 4, NULL);
}
