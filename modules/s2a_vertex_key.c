#include <string.h>

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <apr_strings.h>

#include "s2a_json.h"
#include "s2a_vertex_key.h"

/* Member `name` of o as a string from p: 1 with *s; 0 when absent or null;
 * -1 when it is another type or holds a NUL (which C strings would cut). */
static int member(apr_pool_t *p, json_object *o, const char *name, const char **s)
{
    json_object *v;
    const char *str;

    if (!json_object_object_get_ex(o, name, &v) || !v) {
        return 0;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return -1;
    }
    str = json_object_get_string(v);
    if (strlen(str) != (size_t)json_object_get_string_len(v)) {
        return -1;
    }
    *s = apr_pstrdup(p, str);
    return 1;
}

/* An optional string member: dflt when absent or null. 0, or -1 when it is
 * something else. */
static int optional(apr_pool_t *p, json_object *o, const char *name, const char *dflt,
                    const char **s)
{
    int rc = member(p, o, name, s);

    if (rc == 0) {
        *s = dflt;
    }
    return rc < 0 ? -1 : 0;
}

/* The passphrase callback gives none: an encrypted key is refused rather
 * than OpenSSL prompting for one on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* The PEM text as an RSA private key (the caller frees it), or NULL with
 * *err. OpenSSL's error queue is emptied on failure so that it does not
 * reach an unrelated TLS connection of the same thread. */
static EVP_PKEY *load_rsa(const char *pem, const char **err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    EVP_PKEY *rsa = NULL;

    if (!pk) {
        *err = "private_key is not an unencrypted PEM private key";
    } else if (!EVP_PKEY_is_a(pk, "RSA")) {
        *err = "private_key is not an RSA key (RS256 needs one)";
    } else {
        rsa = pk;
        pk = NULL;
    }
    EVP_PKEY_free(pk);
    BIO_free(bio);
    if (!rsa) {
        ERR_clear_error();
    }
    return rsa;
}

int s2a_vertex_key_read(apr_pool_t *p, const char *json, apr_size_t len, s2a_vertex_key *out,
                        const char **err)
{
    json_tokener *tok = NULL;
    json_object *o = NULL;
    EVP_PKEY *pk = NULL;
    const char *type = NULL;
    apr_size_t end;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (len > S2A_VERTEX_KEY_MAX_LEN) {
        *err = "the key file is too large";
        goto done;
    }
    if (memchr(json, '\0', len)) {
        *err = "the key file holds a NUL byte";
        goto done;
    }
    tok = json_tokener_new();
    if (!tok) {
        *err = "out of memory";
        goto done;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, json, (int)len);
    end = o ? json_tokener_get_parse_end(tok) : 0;
    while (o && end < len && strchr(" \t\r\n", json[end])) {
        end++;
    }
    if (!o || json_tokener_get_error(tok) != json_tokener_success || end != len ||
        !json_object_is_type(o, json_type_object)) {
        *err = "the key file is not a JSON object";
        goto done;
    }
    if (member(p, o, "type", &type) != 1 || strcmp(type, "service_account") != 0) {
        *err = "type is not \"service_account\"";
        goto done;
    }
    if (member(p, o, "client_email", &out->client_email) != 1 || !*out->client_email) {
        *err = "client_email is missing, empty or not a string";
        goto done;
    }
    if (member(p, o, "private_key", &out->private_key) != 1 || !*out->private_key) {
        *err = "private_key is missing, empty or not a string";
        goto done;
    }
    if (optional(p, o, "private_key_id", "", &out->private_key_id) != 0) {
        *err = "private_key_id is not a string";
        goto done;
    }
    if (optional(p, o, "token_uri", S2A_VERTEX_TOKEN_URI, &out->token_uri) != 0 ||
        !*out->token_uri) {
        *err = "token_uri is empty or not a string";
        goto done;
    }
    if (optional(p, o, "project_id", "", &out->project_id) != 0) {
        *err = "project_id is not a string";
        goto done;
    }
    /* Loaded once here so that a bad key is named when the file is read,
     * not an hour later when the first token is due. */
    pk = load_rsa(out->private_key, err);
    if (!pk) {
        goto done;
    }
    rc = 0;
done:
    EVP_PKEY_free(pk);
    if (o) {
        json_object_put(o);
    }
    if (tok) {
        json_tokener_free(tok);
    }
    return rc;
}

/* Base64url without padding (RFC 7515 section 2). */
static const char *b64url(apr_pool_t *p, const unsigned char *d, apr_size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = apr_palloc(p, (n + 2) / 3 * 4 + 1), *o = out;
    apr_size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        apr_uint32_t v = (apr_uint32_t)d[i] << 16 | (apr_uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        *o++ = abc[(v >> 6) & 63];
        *o++ = abc[v & 63];
    }
    if (i < n) {
        apr_uint32_t v = (apr_uint32_t)d[i] << 16 | (i + 1 < n ? (apr_uint32_t)d[i + 1] << 8 : 0);
        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        if (i + 1 < n) {
            *o++ = abc[(v >> 6) & 63];
        }
    }
    *o = '\0';
    return out;
}

static const char *b64url_str(apr_pool_t *p, const char *s)
{
    return b64url(p, (const unsigned char *)s, strlen(s));
}

const char *s2a_vertex_assertion(apr_pool_t *p, const s2a_vertex_key *k, apr_int64_t now,
                                 const char **err)
{
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    const char *header, *claims, *input, *out = NULL;
    unsigned char *sig;
    size_t siglen;

    if (now < 0 || now > APR_INT64_MAX - S2A_VERTEX_ASSERTION_LIFETIME) {
        *err = "the time is out of range";
        goto done;
    }
    if (!k->client_email || !k->private_key || !k->token_uri) {
        *err = "the key is incomplete";
        goto done;
    }
    header = k->private_key_id && *k->private_key_id
                 ? apr_pstrcat(p, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":",
                               s2a_json_quote(p, k->private_key_id), "}", NULL)
                 : "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    claims = apr_psprintf(p,
                          "{\"iss\":%s,\"scope\":\"" S2A_VERTEX_SCOPE "\",\"aud\":%s,"
                          "\"iat\":%" APR_INT64_T_FMT ",\"exp\":%" APR_INT64_T_FMT "}",
                          s2a_json_quote(p, k->client_email), s2a_json_quote(p, k->token_uri), now,
                          now + S2A_VERTEX_ASSERTION_LIFETIME);
    input = apr_pstrcat(p, b64url_str(p, header), ".", b64url_str(p, claims), NULL);

    pk = load_rsa(k->private_key, err);
    if (!pk) {
        goto done;
    }
    siglen = (size_t)EVP_PKEY_get_size(pk);
    sig = apr_palloc(p, siglen);
    md = EVP_MD_CTX_new();
    /* PKCS#1 v1.5 is OpenSSL's default for RSA; set anyway, as RS256 means
     * exactly that padding. */
    if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, pk) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1) {
        *err = "the key cannot sign";
        ERR_clear_error();
        goto done;
    }
    out = apr_pstrcat(p, input, ".", b64url(p, sig, siglen), NULL);
done:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return out;
}

/* Form encoding: all but RFC 3986's unreserved characters as %XX. A JWT is
 * base64url parts joined by dots, all unreserved, so it passes unchanged;
 * anything else handed in still makes a well-formed body. */
static const char *form_escape(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, 3 * strlen(s) + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

const char *s2a_vertex_token_form(apr_pool_t *p, const char *assertion)
{
    return apr_pstrcat(p,
                       "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                       "&assertion=",
                       form_escape(p, assertion), NULL);
}
