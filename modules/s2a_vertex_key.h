/* Google Vertex AI service-account credentials: the key file's JSON and the
 * signed JWT that Google's token endpoint exchanges for an access token
 * (OAuth 2.0 JWT bearer grant, RFC 7523). The assertion is RS256
 * (RSASSA-PKCS1-v1_5 with SHA-256) over base64url parts without padding.
 * The token endpoint's answer ({"access_token","expires_in","token_type"},
 * no refresh_token) is the one s2a_oauth_parse reads.
 *
 * Nothing here keeps OpenSSL objects between calls: the key is loaded from
 * its PEM text for each assertion and freed before returning. No error
 * message ever quotes the private key. */
#ifndef S2A_VERTEX_KEY_H
#define S2A_VERTEX_KEY_H

#include <apr_pools.h>

/* The scope the assertion asks for. */
#define S2A_VERTEX_SCOPE "https://www.googleapis.com/auth/cloud-platform"
/* Seconds from iat to exp; Google refuses more than an hour. */
#define S2A_VERTEX_ASSERTION_LIFETIME 3600
/* Google's token endpoint, the audience when the file names none. */
#define S2A_VERTEX_TOKEN_URI "https://oauth2.googleapis.com/token"
/* Largest key file read (Google's are under 3 KiB). */
#define S2A_VERTEX_KEY_MAX_LEN (64 * 1024)

typedef struct {
    const char *client_email;
    const char *private_key;    /* PEM, as in the key file */
    const char *private_key_id; /* "" when absent: the JWT header then has no kid */
    const char *token_uri;      /* S2A_VERTEX_TOKEN_URI when absent */
    const char *project_id;     /* "" when absent */
} s2a_vertex_key;

/* Reads a service-account key file's JSON: one object, at most
 * S2A_VERTEX_KEY_MAX_LEN bytes, no NUL byte. "type" must be
 * "service_account"; client_email and private_key non-empty strings, the
 * latter a PEM private key OpenSSL loads as RSA without a passphrase. The
 * optional fields, when present and not null, are strings (token_uri not
 * empty). Strings holding NUL are refused. 0 with *out filled from p; -1
 * with *err (static) naming the field that is wrong. */
int s2a_vertex_key_read(apr_pool_t *p, const char *json, apr_size_t len, s2a_vertex_key *out,
                        const char **err);

/* The signed JWT: header {"alg":"RS256","typ":"JWT"[,"kid":private_key_id]},
 * claims {"iss":client_email,"scope":S2A_VERTEX_SCOPE,"aud":token_uri,
 * "iat":now,"exp":now+S2A_VERTEX_ASSERTION_LIFETIME}, now in seconds since
 * the epoch. NULL with *err (static) when now is negative or too large, or
 * the key cannot be loaded or sign. */
const char *s2a_vertex_assertion(apr_pool_t *p, const s2a_vertex_key *k, apr_int64_t now,
                                 const char **err);

/* The token request's body (application/x-www-form-urlencoded):
 * grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<assertion>,
 * the assertion percent-encoded. */
const char *s2a_vertex_token_form(apr_pool_t *p, const char *assertion);

#endif
