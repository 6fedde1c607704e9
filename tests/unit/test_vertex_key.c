/* Vertex AI service-account keys: reading the key file, the RS256 JWT
 * assertion (checked part by part and against the public key) and the
 * token request's form body. Keys are generated here, never stored. */
#include <json-c/json.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "s2a_json.h"
#include "s2a_oauth.h"
#include "s2a_test.h"
#include "s2a_vertex_key.h"

#define EMAIL "vertex@proj-1.iam.gserviceaccount.com"
#define FORM_PREFIX "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

static const char b64url_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static EVP_PKEY *rsa_key; /* the key every good file holds */
static const char *rsa_pem;

enum pem_form { PKCS8, PKCS8_ENCRYPTED, TRADITIONAL, PUBLIC };

static const char *pem_of(apr_pool_t *p, EVP_PKEY *pk, enum pem_form form)
{
    BIO *bio = BIO_new(BIO_s_mem());
    const char *out = NULL;
    char *data;
    long n;
    int ok = 0;

    if (bio) {
        switch (form) {
        case PKCS8:
            ok = PEM_write_bio_PKCS8PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL);
            break;
        case PKCS8_ENCRYPTED:
            ok = PEM_write_bio_PKCS8PrivateKey(bio, pk, EVP_aes_256_cbc(), "secret", 6, NULL, NULL);
            break;
        case TRADITIONAL:
            ok = PEM_write_bio_PrivateKey_traditional(bio, pk, NULL, NULL, 0, NULL, NULL);
            break;
        case PUBLIC:
            ok = PEM_write_bio_PUBKEY(bio, pk);
            break;
        }
    }
    if (ok == 1) {
        n = BIO_get_mem_data(bio, &data);
        out = apr_pstrmemdup(p, data, (apr_size_t)n);
    }
    BIO_free(bio);
    return out;
}

/* An RSA key restricted to PSS padding, which RS256 cannot use. */
static EVP_PKEY *rsa_pss_gen(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    EVP_PKEY *pk = NULL;

    /* pk stays NULL when any step fails */
    if (ctx && EVP_PKEY_keygen_init(ctx) > 0 && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 1024) > 0) {
        EVP_PKEY_keygen(ctx, &pk);
    }
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

/* A key file with the given members (NULL: left out), as Google writes one. */
static const char *key_file(apr_pool_t *p, const char *email, const char *pem, const char *kid,
                            const char *uri)
{
    return apr_pstrcat(p, "{\"type\":\"service_account\",\"project_id\":\"proj-1\"",
                       kid ? ",\"private_key_id\":" : "", kid ? s2a_json_quote(p, kid) : "",
                       pem ? ",\"private_key\":" : "", pem ? s2a_json_quote(p, pem) : "",
                       email ? ",\"client_email\":" : "", email ? s2a_json_quote(p, email) : "",
                       ",\"client_id\":\"1234567890\"", uri ? ",\"token_uri\":" : "",
                       uri ? s2a_json_quote(p, uri) : "", "}", NULL);
}

/* Strict base64url without padding: NULL on any other character, a length
 * no encoding has, or stray bits in the last character. */
static char *unb64url(apr_pool_t *p, const char *s, apr_size_t n, apr_size_t *out_len)
{
    char *out = apr_palloc(p, n / 4 * 3 + 3), *o = out;
    apr_uint32_t acc = 0;
    int bits = 0;
    apr_size_t i;

    if (n % 4 == 1) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        const char *at = s[i] ? strchr(b64url_abc, s[i]) : NULL;
        if (!at) {
            return NULL;
        }
        acc = acc << 6 | (apr_uint32_t)(at - b64url_abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char)(acc >> bits & 0xff);
        }
    }
    if (acc & ((1u << bits) - 1)) {
        return NULL;
    }
    *o = '\0';
    *out_len = (apr_size_t)(o - out);
    return out;
}

/* Base64url by way of OpenSSL's base64, to check the module's encoder. */
static const char *openssl_b64url(apr_pool_t *p, const char *s)
{
    apr_size_t n = strlen(s);
    char *out = apr_palloc(p, (n + 2) / 3 * 4 + 1), *c;

    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    for (c = out; *c && *c != '='; c++) {
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    }
    *c = '\0';
    return out;
}

static int verify(const char *input, apr_size_t len, const unsigned char *sig, apr_size_t siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, rsa_key) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0 &&
             EVP_DigestVerify(md, sig, siglen, (const unsigned char *)input, len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

typedef struct {
    const char *header, *claims, *input; /* input: the signed "header.claims" */
    unsigned char *sig;
    apr_size_t siglen;
} jwt_parts;

/* Splits a JWT at its two dots and decodes its parts; 0 when it is not one. */
static int split(apr_pool_t *p, const char *jwt, jwt_parts *j)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    apr_size_t n;

    if (!d2 || strchr(d2 + 1, '.')) {
        return 0;
    }
    j->input = apr_pstrmemdup(p, jwt, (apr_size_t)(d2 - jwt));
    j->header = unb64url(p, jwt, (apr_size_t)(d1 - jwt), &n);
    j->claims = unb64url(p, d1 + 1, (apr_size_t)(d2 - d1 - 1), &n);
    j->sig = (unsigned char *)unb64url(p, d2 + 1, strlen(d2 + 1), &j->siglen);
    return j->header && j->claims && j->sig;
}

static void test_read(apr_pool_t *p)
{
    const char *f = key_file(p, EMAIL, rsa_pem, "kid-0123abcd", NULL);
    s2a_vertex_key k;
    const char *err = NULL;

    S2A_CHECK(strncmp(rsa_pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
    S2A_CHECK_INT(s2a_vertex_key_read(p, f, strlen(f), &k, &err), 0);
    S2A_CHECK_STR(k.client_email, EMAIL);
    S2A_CHECK_STR(k.private_key, rsa_pem);
    S2A_CHECK_STR(k.private_key_id, "kid-0123abcd");
    S2A_CHECK_STR(k.token_uri, "https://oauth2.googleapis.com/token");
    S2A_CHECK_STR(k.project_id, "proj-1");

    f = key_file(p, EMAIL, rsa_pem, NULL, "https://example.test/token");
    S2A_CHECK_INT(s2a_vertex_key_read(p, f, strlen(f), &k, &err), 0);
    S2A_CHECK_STR(k.private_key_id, "");
    S2A_CHECK_STR(k.token_uri, "https://example.test/token");

    /* null optional members count as absent; whitespace may surround the object */
    f = apr_psprintf(p,
                     " \n{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":%s,"
                     "\"private_key_id\":null,\"token_uri\":null,\"project_id\":null}\r\n\t",
                     s2a_json_quote(p, rsa_pem));
    S2A_CHECK_INT(s2a_vertex_key_read(p, f, strlen(f), &k, &err), 0);
    S2A_CHECK_STR(k.private_key_id, "");
    S2A_CHECK_STR(k.token_uri, S2A_VERTEX_TOKEN_URI);
    S2A_CHECK_STR(k.project_id, "");

    /* an RSA key in PKCS#1 form ("BEGIN RSA PRIVATE KEY") is as good */
    f = key_file(p, EMAIL, pem_of(p, rsa_key, TRADITIONAL), NULL, NULL);
    S2A_CHECK(strstr(f, "BEGIN RSA PRIVATE KEY") != NULL);
    S2A_CHECK_INT(s2a_vertex_key_read(p, f, strlen(f), &k, &err), 0);
}

static void test_assertion(apr_pool_t *p)
{
    const char *f = key_file(p, EMAIL, rsa_pem, "kid-0123abcd", NULL);
    s2a_vertex_key k;
    const char *err = NULL, *jwt, *c;
    jwt_parts j;
    json_object *o, *v;
    char *bad;
    apr_size_t i;
    int all_fail = 1;

    S2A_CHECK_INT(s2a_vertex_key_read(p, f, strlen(f), &k, &err), 0);
    jwt = s2a_vertex_assertion(p, &k, 1700000000, &err);
    S2A_CHECK(jwt && split(p, jwt, &j));
    if (!jwt || !split(p, jwt, &j)) {
        return;
    }
    for (c = jwt; *c; c++) {
        if (*c != '.' && !strchr(b64url_abc, *c)) {
            break;
        }
    }
    S2A_CHECK(*c == '\0'); /* base64url and dots only: no padding, no '+' or '/' */
    S2A_CHECK_STR(j.header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"kid-0123abcd\"}");
    S2A_CHECK_STR(j.claims, "{\"iss\":\"" EMAIL "\","
                            "\"scope\":\"https://www.googleapis.com/auth/cloud-platform\","
                            "\"aud\":\"https://oauth2.googleapis.com/token\","
                            "\"iat\":1700000000,\"exp\":1700003600}");
    /* the claims are JSON a parser reads the same way */
    o = json_tokener_parse(j.claims);
    S2A_CHECK(o && json_object_object_length(o) == 5);
    S2A_CHECK(json_object_object_get_ex(o, "iss", &v) && !strcmp(json_object_get_string(v), EMAIL));
    S2A_CHECK(json_object_object_get_ex(o, "scope", &v) &&
              !strcmp(json_object_get_string(v), S2A_VERTEX_SCOPE));
    S2A_CHECK(json_object_object_get_ex(o, "aud", &v) &&
              !strcmp(json_object_get_string(v), S2A_VERTEX_TOKEN_URI));
    S2A_CHECK(json_object_object_get_ex(o, "iat", &v) && json_object_is_type(v, json_type_int) &&
              json_object_get_int64(v) == 1700000000);
    S2A_CHECK(json_object_object_get_ex(o, "exp", &v) && json_object_is_type(v, json_type_int) &&
              json_object_get_int64(v) == 1700000000 + S2A_VERTEX_ASSERTION_LIFETIME);
    json_object_put(o);

    /* OpenSSL's own base64, translated, encodes the parts the same */
    S2A_CHECK_STR(j.input, apr_pstrcat(p, openssl_b64url(p, j.header), ".",
                                       openssl_b64url(p, j.claims), NULL));

    S2A_CHECK_INT(j.siglen, 256);
    S2A_CHECK(verify(j.input, strlen(j.input), j.sig, j.siglen));
    /* one byte of the claims changed (exp a second later) fails */
    bad = apr_pstrdup(p, j.claims);
    S2A_CHECK(strstr(bad, "1700003600") != NULL);
    strstr(bad, "1700003600")[9] = '1';
    bad = apr_pstrcat(p, openssl_b64url(p, j.header), ".", openssl_b64url(p, bad), NULL);
    S2A_CHECK(!verify(bad, strlen(bad), j.sig, j.siglen));
    /* one byte changed anywhere in the signed text, or in the signature, fails */
    bad = apr_pstrdup(p, j.input);
    for (i = 0; bad[i]; i++) {
        bad[i] ^= 1;
        if (verify(bad, strlen(bad), j.sig, j.siglen)) {
            all_fail = 0;
        }
        bad[i] ^= 1;
    }
    S2A_CHECK(all_fail);
    j.sig[100] ^= 0x80;
    S2A_CHECK(!verify(j.input, strlen(j.input), j.sig, j.siglen));

    /* PKCS#1 v1.5 is deterministic: the same inputs sign the same */
    S2A_CHECK_STR(s2a_vertex_assertion(p, &k, 1700000000, &err), jwt);

    /* no kid without a private_key_id; another token_uri is the audience */
    k.private_key_id = "";
    k.token_uri = "https://example.test/t";
    jwt = s2a_vertex_assertion(p, &k, 0, &err);
    S2A_CHECK(jwt && split(p, jwt, &j));
    S2A_CHECK_STR(j.header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
    S2A_CHECK_STR(j.claims, "{\"iss\":\"" EMAIL "\",\"scope\":\"" S2A_VERTEX_SCOPE "\","
                            "\"aud\":\"https://example.test/t\",\"iat\":0,\"exp\":3600}");
    S2A_CHECK(verify(j.input, strlen(j.input), j.sig, j.siglen));
    k.private_key_id = NULL;
    jwt = s2a_vertex_assertion(p, &k, 5, &err);
    S2A_CHECK(jwt && split(p, jwt, &j));
    S2A_CHECK_STR(j.header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");

    /* quotes and control characters in members are escaped, not spliced */
    k.client_email = "a\"b\\c\n@x";
    k.private_key_id = "k\"1";
    jwt = s2a_vertex_assertion(p, &k, 7, &err);
    S2A_CHECK(jwt && split(p, jwt, &j));
    S2A_CHECK_STR(j.header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k\\\"1\"}");
    o = j.claims ? json_tokener_parse(j.claims) : NULL;
    S2A_CHECK(o && json_object_object_get_ex(o, "iss", &v) &&
              !strcmp(json_object_get_string(v), "a\"b\\c\n@x"));
    if (o) {
        json_object_put(o);
    }

    /* times whose exp cannot be written are refused; the last one that can is not */
    err = NULL;
    S2A_CHECK(s2a_vertex_assertion(p, &k, -1, &err) == NULL);
    S2A_CHECK_STR(err, "the time is out of range");
    S2A_CHECK(s2a_vertex_assertion(p, &k, APR_INT64_MAX, &err) == NULL);
    S2A_CHECK(s2a_vertex_assertion(p, &k, APR_INT64_MAX - S2A_VERTEX_ASSERTION_LIFETIME + 1,
                                   &err) == NULL);
    jwt = s2a_vertex_assertion(p, &k, APR_INT64_MAX - S2A_VERTEX_ASSERTION_LIFETIME, &err);
    S2A_CHECK(jwt && split(p, jwt, &j) && strstr(j.claims, "\"exp\":9223372036854775807}"));

    /* a key struct not from s2a_vertex_key_read is refused without quoting it */
    k.private_key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
    err = NULL;
    S2A_CHECK(s2a_vertex_assertion(p, &k, 7, &err) == NULL);
    S2A_CHECK(err && !strstr(err, "c2VjcmV0") && !strstr(err, "BEGIN"));
    k.private_key = NULL;
    S2A_CHECK(s2a_vertex_assertion(p, &k, 7, &err) == NULL);
    S2A_CHECK_STR(err, "the key is incomplete");
    S2A_CHECK_INT(ERR_peek_error(), 0);
}

/* s2a_vertex_key_read refuses f with exactly the reason `want`: a fixed
 * sentence, so nothing of the file (nor its key) is quoted. */
static void refused(apr_pool_t *p, const char *f, apr_size_t len, const char *want, int line)
{
    s2a_vertex_key k;
    const char *err = NULL;
    int rc = s2a_vertex_key_read(p, f, len, &k, &err);
    int ok = rc == -1 && err && strcmp(err, want) == 0;

    if (!ok) {
        fprintf(stderr, "line %d: rc %d, err \"%s\", wanted \"%s\"\n", line, rc,
                err ? err : "(null)", want);
    }
    S2A_CHECK(ok);
    /* OpenSSL's error queue is left empty for whoever uses it next */
    S2A_CHECK_INT(ERR_peek_error(), 0);
}

#define REFUSED(f, want) refused(p, (f), strlen(f), (want), __LINE__)

static void test_hostile(apr_pool_t *p)
{
    const char *qpem = s2a_json_quote(p, rsa_pem);
    const char *good = key_file(p, EMAIL, rsa_pem, "kid", NULL);
    const char *not_object = "the key file is not a JSON object";
    const char *no_email = "client_email is missing, empty or not a string";
    const char *no_key = "private_key is missing, empty or not a string";
    const char *not_pem = "private_key is not an unencrypted PEM private key";
    const char *not_rsa = "private_key is not an RSA key (RS256 needs one)";
    const char *bad_type = "type is not \"service_account\"";
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    EVP_PKEY *pss = rsa_pss_gen();
    const char *pem, *end;
    char *f, *deep;
    apr_size_t i, n;
    int all = 1;

    REFUSED("", not_object);
    REFUSED("not json", not_object);
    REFUSED("[1,2]", not_object);
    REFUSED("\"service_account\"", not_object);
    REFUSED("null", not_object);
    REFUSED("42", not_object);
    REFUSED("{\"type\":\"service_account\",}", not_object);
    REFUSED(apr_pstrcat(p, good, "x", NULL), not_object);
    REFUSED(apr_pstrcat(p, good, "{}", NULL), not_object);
    /* every cut of a good file is refused */
    n = strlen(good);
    for (i = 0; i < n; i++) {
        s2a_vertex_key k;
        const char *err = NULL;
        if (s2a_vertex_key_read(p, good, i, &k, &err) != -1 || !err || strcmp(err, not_object)) {
            all = 0;
        }
    }
    S2A_CHECK(all);
    /* nesting deeper than the parser goes */
    n = 20000;
    deep = apr_palloc(p, 2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    REFUSED(apr_pstrcat(p, "{\"a\":", deep, "}", NULL), not_object);
    /* invalid UTF-8 */
    REFUSED("{\"type\":\"service_account\",\"client_email\":\"\xff\xfe\"}", not_object);

    REFUSED("{}", bad_type);
    REFUSED(apr_psprintf(p, "{\"client_email\":\"a@b\",\"private_key\":%s}", qpem), bad_type);
    REFUSED(apr_psprintf(p,
                         "{\"type\":\"authorized_user\",\"client_email\":\"a@b\","
                         "\"private_key\":%s}",
                         qpem),
            bad_type);
    REFUSED(apr_psprintf(p, "{\"type\":1,\"client_email\":\"a@b\",\"private_key\":%s}", qpem),
            bad_type);
    REFUSED("{\"type\":\"service_account\\u0000x\"}", bad_type);

    REFUSED(key_file(p, NULL, rsa_pem, NULL, NULL), no_email);
    REFUSED(key_file(p, "", rsa_pem, NULL, NULL), no_email);
    REFUSED(apr_psprintf(p, "{\"type\":\"service_account\",\"client_email\":5,\"private_key\":%s}",
                         qpem),
            no_email);
    REFUSED(apr_psprintf(
                p, "{\"type\":\"service_account\",\"client_email\":null,\"private_key\":%s}", qpem),
            no_email);
    REFUSED(apr_psprintf(p,
                         "{\"type\":\"service_account\",\"client_email\":[\"a@b\"],"
                         "\"private_key\":%s}",
                         qpem),
            no_email);
    REFUSED(apr_psprintf(p,
                         "{\"type\":\"service_account\",\"client_email\":\"a@b\\u0000evil\","
                         "\"private_key\":%s}",
                         qpem),
            no_email);

    REFUSED(key_file(p, EMAIL, NULL, NULL, NULL), no_key);
    REFUSED(key_file(p, EMAIL, "", NULL, NULL), no_key);
    REFUSED("{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":{}}", no_key);
    REFUSED("{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":true}", no_key);
    /* a NUL escaped into the key would hide whatever follows it */
    f = apr_pstrdup(p, good);
    end = strstr(f, "-----END");
    S2A_CHECK(end != NULL);
    REFUSED(apr_pstrcat(p, apr_pstrndup(p, f, (apr_size_t)(end - f)), "\\u0000", end, NULL),
            no_key);

    REFUSED(key_file(p, EMAIL, "hello", NULL, NULL), not_pem);
    REFUSED(key_file(p, EMAIL, apr_pstrcat(p, "x", rsa_pem, NULL), NULL, NULL), not_pem);
    REFUSED(
        key_file(p, EMAIL, "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", NULL, NULL),
        not_pem);
    /* truncated PEM: half of it, and all but the END line */
    REFUSED(key_file(p, EMAIL, apr_pstrndup(p, rsa_pem, strlen(rsa_pem) / 2), NULL, NULL), not_pem);
    REFUSED(key_file(p, EMAIL,
                     apr_pstrndup(p, rsa_pem, (apr_size_t)(strstr(rsa_pem, "-----END") - rsa_pem)),
                     NULL, NULL),
            not_pem);
    /* one character of the body that is not base64 */
    f = apr_pstrdup(p, rsa_pem);
    f[100] = '!';
    REFUSED(key_file(p, EMAIL, f, NULL, NULL), not_pem);
    REFUSED(key_file(p, EMAIL, pem_of(p, rsa_key, PUBLIC), NULL, NULL), not_pem);
    /* an encrypted key is refused, never prompted for */
    pem = pem_of(p, rsa_key, PKCS8_ENCRYPTED);
    S2A_CHECK(pem && strstr(pem, "BEGIN ENCRYPTED PRIVATE KEY"));
    REFUSED(key_file(p, EMAIL, pem, NULL, NULL), not_pem);

    S2A_CHECK(ec != NULL && pss != NULL);
    REFUSED(key_file(p, EMAIL, pem_of(p, ec, PKCS8), NULL, NULL), not_rsa);
    REFUSED(key_file(p, EMAIL, pem_of(p, pss, PKCS8), NULL, NULL), not_rsa);

    REFUSED(apr_psprintf(p,
                         "{\"type\":\"service_account\",\"client_email\":\"a@b\","
                         "\"private_key\":%s,\"private_key_id\":7}",
                         qpem),
            "private_key_id is not a string");
    REFUSED(apr_psprintf(p,
                         "{\"type\":\"service_account\",\"client_email\":\"a@b\","
                         "\"private_key\":%s,\"token_uri\":[]}",
                         qpem),
            "token_uri is empty or not a string");
    REFUSED(key_file(p, EMAIL, rsa_pem, NULL, ""), "token_uri is empty or not a string");
    REFUSED(apr_psprintf(p,
                         "{\"type\":\"service_account\",\"client_email\":\"a@b\","
                         "\"private_key\":%s,\"project_id\":{}}",
                         qpem),
            "project_id is not a string");

    /* raw NUL bytes: inside a string, between members, after the object */
    f = apr_pstrdup(p, good);
    n = strlen(f);
    f[strstr(f, EMAIL) - f + 3] = '\0';
    refused(p, f, n, "the key file holds a NUL byte", __LINE__);
    f = apr_pstrcat(p, good, " ", NULL);
    f[n] = '\0';
    refused(p, f, n + 1, "the key file holds a NUL byte", __LINE__);
    refused(p, "\0{}", 3, "the key file holds a NUL byte", __LINE__);

    EVP_PKEY_free(ec);
    EVP_PKEY_free(pss);
}

/* Long members up to the file's limit are kept and signed; a byte more is
 * refused before anything is parsed. */
static void test_long(apr_pool_t *p)
{
    char *big = apr_palloc(p, S2A_VERTEX_KEY_MAX_LEN + 1);
    const char *f, *err = NULL, *jwt;
    s2a_vertex_key k;
    jwt_parts j;
    apr_size_t n;
    int ok;

    memset(big, 'e', 20000);
    memcpy(big + 19990, "@x.example", 11);
    f = key_file(p, big, rsa_pem, big, big);
    S2A_CHECK(strlen(f) > 3 * 20000 && strlen(f) <= S2A_VERTEX_KEY_MAX_LEN);
    S2A_CHECK_INT(s2a_vertex_key_read(p, f, strlen(f), &k, &err), 0);
    S2A_CHECK_STR(k.client_email, big);
    S2A_CHECK_STR(k.private_key_id, big);
    S2A_CHECK_STR(k.token_uri, big);
    jwt = s2a_vertex_assertion(p, &k, 1, &err);
    ok = jwt && split(p, jwt, &j);
    S2A_CHECK(ok && verify(j.input, strlen(j.input), j.sig, j.siglen));
    S2A_CHECK(ok && strstr(j.claims, big) && strstr(j.header, big));

    /* a good file padded with spaces to the limit, then one byte past it */
    f = key_file(p, EMAIL, rsa_pem, NULL, NULL);
    n = strlen(f);
    memcpy(big, f, n);
    memset(big + n, ' ', S2A_VERTEX_KEY_MAX_LEN + 1 - n);
    S2A_CHECK_INT(s2a_vertex_key_read(p, big, S2A_VERTEX_KEY_MAX_LEN, &k, &err), 0);
    refused(p, big, S2A_VERTEX_KEY_MAX_LEN + 1, "the key file is too large", __LINE__);

    memset(big, 'e', S2A_VERTEX_KEY_MAX_LEN);
    big[S2A_VERTEX_KEY_MAX_LEN] = '\0';
    REFUSED(key_file(p, big, rsa_pem, NULL, NULL), "the key file is too large");
    REFUSED(key_file(p, EMAIL, rsa_pem, big, NULL), "the key file is too large");
}

static void test_form(apr_pool_t *p)
{
    const char *f = key_file(p, EMAIL, rsa_pem, "kid", NULL);
    s2a_vertex_key k;
    const char *err, *jwt;

    S2A_CHECK_INT(s2a_vertex_key_read(p, f, strlen(f), &k, &err), 0);
    jwt = s2a_vertex_assertion(p, &k, 1700000000, &err);
    /* base64url and dots are unreserved characters: the JWT goes as it is */
    S2A_CHECK_STR(s2a_vertex_token_form(p, jwt), apr_pstrcat(p, FORM_PREFIX, jwt, NULL));
    S2A_CHECK_STR(s2a_vertex_token_form(p, "aZ09-._~"), FORM_PREFIX "aZ09-._~");
    S2A_CHECK_STR(s2a_vertex_token_form(p, "a+b/c=d e&f%g\n\xc3\xa9"),
                  FORM_PREFIX "a%2Bb%2Fc%3Dd%20e%26f%25g%0A%C3%A9");
    S2A_CHECK_STR(s2a_vertex_token_form(p, ""), FORM_PREFIX);
}

/* Google's token endpoint answers the JWT grant with no refresh_token. */
static void test_google_answer(apr_pool_t *p)
{
    const char *a = "{\n  \"access_token\": \"ya29.c.b0AXv0zTPabc.................\",\n"
                    "  \"expires_in\": 3599,\n  \"token_type\": \"Bearer\"\n}";
    s2a_oauth_tokens t;
    const char *err = NULL;

    S2A_CHECK_INT(s2a_oauth_parse(p, a, strlen(a), &t, &err), 0);
    S2A_CHECK_STR(t.access_token, "ya29.c.b0AXv0zTPabc.................");
    S2A_CHECK(t.refresh_token == NULL);
    S2A_CHECK_INT(t.expires_in, 3599);
}

int main(void)
{
    apr_pool_t *p;
    int rc;

    apr_initialize();
    apr_pool_create(&p, NULL);
    rsa_key = EVP_RSA_gen(2048);
    S2A_CHECK(rsa_key != NULL);
    rsa_pem = rsa_key ? pem_of(p, rsa_key, PKCS8) : NULL;
    S2A_CHECK(rsa_pem != NULL);
    if (rsa_pem) {
        test_read(p);
        test_assertion(p);
        test_hostile(p);
        test_long(p);
        test_form(p);
    }
    test_google_answer(p);
    rc = S2A_TEST_SUMMARY("vertex_key");
    EVP_PKEY_free(rsa_key);
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
