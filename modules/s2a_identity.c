#include <string.h>

#include <apr_strings.h>

#include "s2a_identity.h"
#include "s2a_json.h"
#include "s2a_sha256.h"

char *s2a_identity_pseudonym(apr_pool_t *p, const unsigned char *secret, apr_size_t secret_len,
                             apr_int64_t user_id, apr_int64_t account_id)
{
    unsigned char mac[S2A_SHA256_LEN];
    const char *msg = apr_psprintf(p, "s2a-user:%" APR_INT64_T_FMT ":account:%" APR_INT64_T_FMT,
                                   user_id, account_id);
    s2a_hmac_sha256(secret, secret_len, msg, strlen(msg), mac);
    return s2a_hex(p, mac, sizeof(mac));
}

static int plain_id(const char *s)
{
    if (!*s || strlen(s) > 128) {
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

const char *s2a_identity_session(apr_pool_t *p, const char *user_id)
{
    static const char *const keys[] = {"session_id"};
    const char *sid = NULL, *err;
    s2a_json_span f[1];

    if (!user_id) {
        return NULL;
    }
    if (json_form(user_id)) {
        if (s2a_json_scan_object(p, user_id, strlen(user_id), keys, 1, f, &err) == 0 &&
            f[0].type == S2A_JSON_STRING) {
            sid = s2a_json_string_dup(p, &f[0]);
        }
    } else {
        const char *m = strstr(user_id, "_session_");
        sid = m ? m + 9 : NULL;
    }
    return sid && plain_id(sid) ? sid : NULL;
}

char *s2a_identity_user_id(apr_pool_t *p, const char *pseudonym, const char *original)
{
    const char *sid = s2a_identity_session(p, original);
    if (original && json_form(original)) {
        return sid ? apr_pstrcat(p, "{\"device_id\":\"", pseudonym, "\",\"session_id\":\"", sid,
                                 "\"}", NULL)
                   : apr_pstrcat(p, "{\"device_id\":\"", pseudonym, "\"}", NULL);
    }
    if (sid) {
        return apr_pstrcat(p, "user_", pseudonym, "_account__session_", sid, NULL);
    }
    return apr_pstrcat(p, "user_", pseudonym, NULL);
}
