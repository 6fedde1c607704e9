/* AWS Signature Version 4: see s2a_sigv4.h. */
#include <stdlib.h>
#include <string.h>

#include <apr_cstr.h>
#include <apr_strings.h>

#include "s2a_buf.h"
#include "s2a_sha256.h"
#include "s2a_sigv4.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define SECURITY_TOKEN "x-amz-security-token"

/* ASCII only: the C library's classes follow the locale. */
static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_token_char(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hex_value(unsigned char c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static const char *buf_string(const s2a_buf *b)
{
    return b->data ? b->data : "";
}

static void put(s2a_buf *out, const char *s)
{
    s2a_buf_append(out, s, strlen(s));
}

static void put_encoded_byte(s2a_buf *out, unsigned char c)
{
    static const char digits[] = "0123456789ABCDEF";
    char escaped[3] = {'%', digits[c >> 4], digits[c & 0x0f]};
    s2a_buf_append(out, escaped, 3);
}

const char *s2a_sigv4_canonical_path(apr_pool_t *p, const char *path)
{
    s2a_buf out;
    const char *s;
    if (!path || !*path) {
        return "/";
    }
    s2a_buf_init(&out, p, strlen(path) + 16);
    for (s = path; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_unreserved(c) || c == '/') {
            s2a_buf_append(&out, s, 1);
        } else {
            put_encoded_byte(&out, c);
        }
    }
    return buf_string(&out);
}

/* s[0..n) with its %XX escapes decoded, then encoded as SigV4 wants: the
 * same bytes whichever way the client escaped them. */
static const char *reencode(apr_pool_t *p, const char *s, apr_size_t n)
{
    s2a_buf out;
    apr_size_t i;
    s2a_buf_init(&out, p, n + 8);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && n - i > 2 && hex_value((unsigned char)s[i + 1]) >= 0 &&
            hex_value((unsigned char)s[i + 2]) >= 0) {
            c = (unsigned char)(hex_value((unsigned char)s[i + 1]) << 4 |
                                hex_value((unsigned char)s[i + 2]));
            i += 2;
        }
        if (is_unreserved(c)) {
            s2a_buf_append(&out, (const char *)&c, 1);
        } else {
            put_encoded_byte(&out, c);
        }
    }
    return buf_string(&out);
}

typedef struct {
    const char *name, *value;
} query_pair;

static int query_pair_order(const void *a, const void *b)
{
    const query_pair *x = a, *y = b;
    int by_name = strcmp(x->name, y->name);
    return by_name ? by_name : strcmp(x->value, y->value);
}

/* Pairs sorted by encoded name, then value; empty pieces ("a&&b") dropped. */
static const char *canonical_query(apr_pool_t *p, const char *query)
{
    apr_array_header_t *pairs = apr_array_make(p, 8, sizeof(query_pair));
    const char *s = query ? query : "";
    s2a_buf out;
    int i;

    while (*s) {
        apr_size_t len = strcspn(s, "&");
        if (len) {
            const char *eq = memchr(s, '=', len);
            apr_size_t name_len = eq ? (apr_size_t)(eq - s) : len;
            query_pair *pair = apr_array_push(pairs);
            pair->name = reencode(p, s, name_len);
            pair->value = eq ? reencode(p, eq + 1, len - name_len - 1) : "";
        }
        s += len;
        if (*s) {
            s++;
        }
    }
    qsort(pairs->elts, (size_t)pairs->nelts, sizeof(query_pair), query_pair_order);
    s2a_buf_init(&out, p, 64);
    for (i = 0; i < pairs->nelts; i++) {
        const query_pair *pair = &APR_ARRAY_IDX(pairs, i, query_pair);
        if (i) {
            put(&out, "&");
        }
        put(&out, pair->name);
        put(&out, "=");
        put(&out, pair->value);
    }
    return buf_string(&out);
}

typedef struct {
    const char *name, *value;
    int given_at; /* keeps the values of one name in the order given */
} canonical_header;

static int header_order(const void *a, const void *b)
{
    const canonical_header *x = a, *y = b;
    int by_name = strcmp(x->name, y->name);
    return by_name ? by_name : (x->given_at > y->given_at) - (x->given_at < y->given_at);
}

/* The name lowercased; NULL when it is not an HTTP token. */
static const char *lowercase_token(apr_pool_t *p, const char *name)
{
    char *lower;
    apr_size_t i;
    if (!name || !*name) {
        return NULL;
    }
    lower = apr_pstrdup(p, name);
    for (i = 0; lower[i]; i++) {
        unsigned char c = (unsigned char)lower[i];
        if (!is_token_char(c)) {
            return NULL;
        }
        if (c >= 'A' && c <= 'Z') {
            lower[i] = (char)(c - 'A' + 'a');
        }
    }
    return lower;
}

/* The value without outer white space, each inner run of it one space. */
static const char *trimmed(apr_pool_t *p, const char *value)
{
    char *out, *end;
    const char *s;
    if (!value) {
        return "";
    }
    out = end = apr_palloc(p, strlen(value) + 1);
    for (s = value; *s; s++) {
        if (!is_space((unsigned char)*s)) {
            *end++ = *s;
        } else if (end > out && end[-1] != ' ') {
            *end++ = ' ';
        }
    }
    if (end > out && end[-1] == ' ') {
        end--;
    }
    *end = '\0';
    return out;
}

const char *s2a_sigv4_canonical_request(apr_pool_t *p, const char *method, const char *path,
                                        const char *query, const s2a_sigv4_header *headers,
                                        int nheaders, const char *payload_sha256_hex,
                                        const char **signed_headers)
{
    canonical_header *sorted;
    s2a_buf out, names;
    int i;

    if (!method || !payload_sha256_hex || nheaders < 0 || (nheaders && !headers)) {
        return NULL;
    }
    sorted = apr_pcalloc(p, sizeof(*sorted) * (apr_size_t)(nheaders ? nheaders : 1));
    for (i = 0; i < nheaders; i++) {
        if (!(sorted[i].name = lowercase_token(p, headers[i].name))) {
            return NULL;
        }
        sorted[i].value = trimmed(p, headers[i].value);
        sorted[i].given_at = i;
    }
    qsort(sorted, (size_t)nheaders, sizeof(*sorted), header_order);

    s2a_buf_init(&out, p, 512);
    s2a_buf_init(&names, p, 64);
    put(&out, method);
    put(&out, "\n");
    put(&out, s2a_sigv4_canonical_path(p, path));
    put(&out, "\n");
    put(&out, canonical_query(p, query));
    put(&out, "\n");
    for (i = 0; i < nheaders; i++) {
        int first_of_name = i == 0 || strcmp(sorted[i].name, sorted[i - 1].name) != 0;
        if (first_of_name) {
            if (i) {
                put(&out, "\n");
                put(&names, ";");
            }
            put(&out, sorted[i].name);
            put(&out, ":");
            put(&names, sorted[i].name);
        } else {
            put(&out, ",");
        }
        put(&out, sorted[i].value);
    }
    if (nheaders) {
        put(&out, "\n");
    }
    put(&out, "\n");
    put(&out, buf_string(&names));
    put(&out, "\n");
    put(&out, payload_sha256_hex);
    if (signed_headers) {
        *signed_headers = buf_string(&names);
    }
    return buf_string(&out);
}

static int is_amz_date(const char *s)
{
    int i;
    if (!s || strlen(s) != S2A_SIGV4_DATE_LEN || s[8] != 'T' || s[15] != 'Z') {
        return 0;
    }
    for (i = 0; i < 15; i++) {
        if (i != 8 && !is_digit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* "YYYYMMDD/region/service/aws4_request" */
static const char *credential_scope(apr_pool_t *p, const char *amz_date, const char *region,
                                    const char *service)
{
    return apr_pstrcat(p, apr_pstrndup(p, amz_date, 8), "/", region, "/", service, "/aws4_request",
                       NULL);
}

void s2a_sigv4_date(apr_time_t t, char out[S2A_SIGV4_DATE_LEN + 1])
{
    apr_time_exp_t tm;
    if (apr_time_exp_gmt(&tm, t) != APR_SUCCESS) {
        memset(&tm, 0, sizeof(tm));
    }
    apr_snprintf(out, S2A_SIGV4_DATE_LEN + 1, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const char *s2a_sigv4_string_to_sign(apr_pool_t *p, const char *amz_date, const char *region,
                                     const char *service, const char *canonical_request)
{
    unsigned char digest[S2A_SHA256_LEN];
    if (!is_amz_date(amz_date) || !region || !service || !canonical_request) {
        return NULL;
    }
    s2a_sha256(canonical_request, strlen(canonical_request), digest);
    return apr_pstrcat(p, ALGORITHM "\n", amz_date, "\n",
                       credential_scope(p, amz_date, region, service), "\n",
                       s2a_hex(p, digest, sizeof(digest)), NULL);
}

/* Hex of HMAC(signing key, string_to_sign), the signing key derived from
 * the secret through the date, region and service. */
static const char *signature(apr_pool_t *p, const char *secret, const char *amz_date,
                             const char *region, const char *service, const char *string_to_sign)
{
    unsigned char date_key[S2A_SHA256_LEN], region_key[S2A_SHA256_LEN];
    unsigned char service_key[S2A_SHA256_LEN], signing_key[S2A_SHA256_LEN];
    unsigned char mac[S2A_SHA256_LEN];
    char *keyed_secret = apr_pstrcat(p, "AWS4", secret, NULL);

    s2a_hmac_sha256(keyed_secret, strlen(keyed_secret), amz_date, 8, date_key);
    s2a_hmac_sha256(date_key, sizeof(date_key), region, strlen(region), region_key);
    s2a_hmac_sha256(region_key, sizeof(region_key), service, strlen(service), service_key);
    s2a_hmac_sha256(service_key, sizeof(service_key), "aws4_request", 12, signing_key);
    s2a_hmac_sha256(signing_key, sizeof(signing_key), string_to_sign, strlen(string_to_sign), mac);
    s2a_wipe(keyed_secret, strlen(keyed_secret));
    s2a_wipe(date_key, sizeof(date_key));
    s2a_wipe(region_key, sizeof(region_key));
    s2a_wipe(service_key, sizeof(service_key));
    s2a_wipe(signing_key, sizeof(signing_key));
    return s2a_hex(p, mac, sizeof(mac));
}

const char *s2a_sigv4_authorization(apr_pool_t *p, const s2a_aws_key *key, const char *region,
                                    const char *service, const char *method, const char *path,
                                    const char *query, const s2a_sigv4_header *headers,
                                    int nheaders, const char *payload_sha256_hex,
                                    const char *amz_date)
{
    s2a_sigv4_header *signed_list;
    const char *creq, *sts, *names;
    int has_token, has_host = 0, has_date = 0, n = 0, i;

    if (!key || !key->access_key_id || !key->secret_access_key || !is_amz_date(amz_date) ||
        nheaders < 0 || (nheaders && !headers)) {
        return NULL;
    }
    has_token = key->session_token && *key->session_token;
    signed_list = apr_palloc(p, sizeof(*signed_list) * ((apr_size_t)nheaders + 1));
    for (i = 0; i < nheaders; i++) {
        const char *name = headers[i].name;
        if (!name) {
            return NULL;
        }
        if (apr_cstr_casecmp(name, "host") == 0) {
            has_host = 1;
        } else if (apr_cstr_casecmp(name, "x-amz-date") == 0) {
            if (strcmp(trimmed(p, headers[i].value), amz_date) != 0) {
                return NULL;
            }
            has_date = 1;
        } else if (has_token && apr_cstr_casecmp(name, SECURITY_TOKEN) == 0) {
            continue;
        }
        signed_list[n++] = headers[i];
    }
    if (!has_host || !has_date) {
        return NULL;
    }
    if (has_token) {
        signed_list[n].name = SECURITY_TOKEN;
        signed_list[n++].value = key->session_token;
    }

    creq = s2a_sigv4_canonical_request(p, method, path, query, signed_list, n, payload_sha256_hex,
                                       &names);
    sts = creq ? s2a_sigv4_string_to_sign(p, amz_date, region, service, creq) : NULL;
    if (!sts) {
        return NULL;
    }
    return apr_pstrcat(
        p, ALGORITHM " Credential=", key->access_key_id, "/",
        credential_scope(p, amz_date, region, service), ", SignedHeaders=", names,
        ", Signature=", signature(p, key->secret_access_key, amz_date, region, service, sts), NULL);
}
