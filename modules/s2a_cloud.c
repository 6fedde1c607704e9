/* Claude through a cloud: see s2a_cloud.h. */
#include <pthread.h>
#include <string.h>

#include <apr_base64.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "s2a_cloud.h"
#include "s2a_errors.h"
#include "s2a_eventstream.h"
#include "s2a_json.h"
#include "s2a_request.h"
#include "s2a_sha256.h"

s2a_cloud s2a_cloud_of_type(const char *type)
{
    if (type && strcmp(type, "vertex") == 0) {
        return S2A_CLOUD_VERTEX;
    }
    if (type && strcmp(type, "bedrock") == 0) {
        return S2A_CLOUD_BEDROCK;
    }
    return S2A_CLOUD_NONE;
}

/* Aliases the clouds know only by their dated model. */
static const struct {
    const char *alias, *model;
} dated[] = {
    {"claude-opus-4-5", "claude-opus-4-5-20251101"},
    {"claude-sonnet-4-5", "claude-sonnet-4-5-20250929"},
    {"claude-haiku-4-5", "claude-haiku-4-5-20251001"},
    {"claude-opus-4-1", "claude-opus-4-1-20250805"},
    {"claude-opus-4-0", "claude-opus-4-20250514"},
    {"claude-opus-4", "claude-opus-4-20250514"},
    {"claude-sonnet-4-0", "claude-sonnet-4-20250514"},
    {"claude-sonnet-4", "claude-sonnet-4-20250514"},
    {"claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219"},
    {"claude-3-5-haiku-latest", "claude-3-5-haiku-20241022"},
};

/* Bedrock models whose id is not at version 1. */
static const struct {
    const char *model, *version;
} bedrock_versions[] = {
    {"claude-3-5-sonnet-20241022", "v2:0"},
};

/* Length of `model` without its "-YYYYMMDD" date; the whole length when it
 * has none. */
static apr_size_t undated_len(const char *model)
{
    apr_size_t n = strlen(model), i;
    if (n < 10 || model[n - 9] != '-') {
        return n;
    }
    for (i = n - 8; i < n; i++) {
        if (!apr_isdigit(model[i])) {
            return n;
        }
    }
    return n - 9;
}

/* The inference profile of a region's geography. */
static const char *geography(const char *region)
{
    if (!region) {
        return "";
    }
    if (strncmp(region, "us-", 3) == 0) {
        return "us.";
    }
    if (strncmp(region, "eu-", 3) == 0) {
        return "eu.";
    }
    if (strncmp(region, "ap-", 3) == 0) {
        return "apac.";
    }
    return "";
}

void s2a_cloud_model_id(s2a_cloud cloud, const char *region, const char *model, char *out)
{
    const char *version = "v1:0";
    apr_size_t i, bare;
    if (cloud == S2A_CLOUD_NONE || (cloud == S2A_CLOUD_VERTEX && strchr(model, '@')) ||
        (cloud == S2A_CLOUD_BEDROCK &&
         (strstr(model, "anthropic.") || strncmp(model, "arn:", 4) == 0))) {
        apr_cpystrn(out, model, S2A_CLOUD_MODEL_MAX);
        return;
    }
    for (i = 0; i < sizeof(dated) / sizeof(dated[0]); i++) {
        if (strcmp(model, dated[i].alias) == 0) {
            model = dated[i].model;
            break;
        }
    }
    if (cloud == S2A_CLOUD_VERTEX) {
        bare = undated_len(model);
        if (bare == strlen(model)) {
            apr_cpystrn(out, model, S2A_CLOUD_MODEL_MAX);
        } else {
            apr_snprintf(out, S2A_CLOUD_MODEL_MAX, "%.*s@%s", (int)bare, model, model + bare + 1);
        }
        return;
    }
    for (i = 0; i < sizeof(bedrock_versions) / sizeof(bedrock_versions[0]); i++) {
        if (strcmp(model, bedrock_versions[i].model) == 0) {
            version = bedrock_versions[i].version;
        }
    }
    apr_snprintf(out, S2A_CLOUD_MODEL_MAX, "%santhropic.%s-%s", geography(region), model, version);
}

const s2a_price *s2a_cloud_price(const s2a_pricing *t, const apr_array_header_t *rules,
                                 s2a_cloud cloud, const char *cloud_model, const char *client_model,
                                 const s2a_price_rule **rule)
{
    char named[S2A_CLOUD_MODEL_MAX + 16];
    const s2a_price *own;
    if (cloud != S2A_CLOUD_NONE) {
        if ((own = s2a_pricing_lookup(t, cloud_model)) != NULL) {
            if (rule) {
                *rule = NULL;
            }
            return own;
        }
        apr_snprintf(named, sizeof(named), "%s/%s",
                     cloud == S2A_CLOUD_VERTEX ? "vertex_ai" : "bedrock", cloud_model);
        if ((own = s2a_pricing_lookup(t, named)) != NULL) {
            if (rule) {
                *rule = NULL;
            }
            return own;
        }
        return s2a_pricing_resolve(t, rules, client_model, rule);
    }
    return s2a_pricing_resolve(t, rules, cloud_model, rule);
}

/* `s` percent-encoded but for RFC 3986's unreserved characters and `keep`. */
static const char *segment(apr_pool_t *p, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (apr_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || strchr(keep, c)) {
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

const char *s2a_cloud_path(apr_pool_t *p, s2a_cloud cloud, const char *project, const char *region,
                           const char *model, int stream, int count_only)
{
    if (cloud == S2A_CLOUD_VERTEX) {
        return apr_pstrcat(p, "/v1/projects/", segment(p, project, ""), "/locations/",
                           segment(p, region, ""), "/publishers/anthropic/models/",
                           count_only
                               ? "count-tokens:rawPredict"
                               : apr_pstrcat(p, segment(p, model, "@"),
                                             stream ? ":streamRawPredict" : ":rawPredict", NULL),
                           NULL);
    }
    if (cloud == S2A_CLOUD_BEDROCK && count_only) {
        return apr_pstrcat(p, "/model/", segment(p, s2a_bedrock_foundation_model(model), ""),
                           "/count-tokens", NULL);
    }
    if (cloud == S2A_CLOUD_BEDROCK) {
        return apr_pstrcat(p, "/model/", segment(p, model, ""),
                           stream ? "/invoke-with-response-stream" : "/invoke", NULL);
    }
    return NULL;
}

const char *s2a_bedrock_foundation_model(const char *model)
{
    const char *dot = strchr(model, '.');
    const char *s;

    if (!dot || dot == model || strncmp(dot + 1, "anthropic.", 10) != 0) {
        return model;
    }
    for (s = model; s < dot; s++) {
        if (!apr_islower(*s)) {
            return model; /* not a geography's prefix */
        }
    }
    return dot + 1;
}

apr_array_header_t *s2a_bedrock_count_body(apr_pool_t *p, const apr_array_header_t *pieces)
{
    static const char open[] = "{\"input\":{\"invokeModel\":{\"body\":\"";
    static const char close[] = "\"}}}";
    apr_array_header_t *out = apr_array_make(p, 1, sizeof(s2a_piece));
    s2a_piece *whole = apr_array_push(out);
    apr_size_t n = 0, at = 0;
    char *plain, *text;
    int i;

    for (i = 0; i < pieces->nelts; i++) {
        n += APR_ARRAY_IDX(pieces, i, s2a_piece).len;
    }
    plain = apr_palloc(p, n + 1);
    for (i = 0; i < pieces->nelts; i++) {
        const s2a_piece *k = &APR_ARRAY_IDX(pieces, i, s2a_piece);
        memcpy(plain + at, k->p, k->len);
        at += k->len;
    }
    text = apr_palloc(p, sizeof(open) - 1 + (n + 2) / 3 * 4 + sizeof(close));
    memcpy(text, open, sizeof(open) - 1);
    at = sizeof(open) - 1;
    /* apr_base64_encode_binary counts the NUL it writes */
    at += (apr_size_t)apr_base64_encode_binary(text + at, (const unsigned char *)plain, (int)n) - 1;
    memcpy(text + at, close, sizeof(close));
    whole->p = text;
    whole->len = at + sizeof(close) - 1;
    return out;
}

char *s2a_bedrock_count_answer(apr_pool_t *p, const char *json, apr_size_t len)
{
    static const char *const keys[] = {"inputTokens"};
    s2a_json_span v;
    const char *err;
    apr_size_t i;

    if (s2a_json_scan_object(NULL, json, len, keys, 1, &v, &err) != 0 ||
        v.type != S2A_JSON_NUMBER || v.len > 18) {
        return NULL;
    }
    /* a count: digits only (the scanner allows no leading zero) */
    for (i = 0; i < v.len; i++) {
        if (!apr_isdigit(v.p[i])) {
            return NULL;
        }
    }
    return apr_psprintf(p, "{\"input_tokens\":%.*s}", (int)v.len, v.p);
}

int s2a_cloud_name_ok(const char *name)
{
    const char *s;
    if (!name || !*name) {
        return 0;
    }
    for (s = name; *s; s++) {
        if (!apr_isalnum(*s) && *s != '-') {
            return 0;
        }
    }
    return 1;
}

/* A string member of o that is a non-empty token without spaces or
 * control characters; NULL when not. */
static const char *token_of(apr_pool_t *p, json_object *o, const char *name)
{
    json_object *v;
    const char *s;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string)) {
        return NULL;
    }
    s = json_object_get_string(v);
    if (!*s || (apr_size_t)json_object_get_string_len(v) != strlen(s)) {
        return NULL;
    }
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            return NULL;
        }
    }
    return apr_pstrdup(p, s);
}

int s2a_bedrock_credential_read(apr_pool_t *p, const char *text, s2a_bedrock_credential *out,
                                const char **err)
{
    json_object *o;
    const char *c;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    while (*text == ' ' || *text == '\t' || *text == '\r' || *text == '\n') {
        text++;
    }
    if (*text != '{') {
        for (c = text; *c; c++) {
            if (!apr_isalnum(*c) && !strchr("+/=-_.", *c)) {
                *err = "a Bedrock API key is letters, digits and + / = - _ . only";
                return -1;
            }
        }
        if (!*text) {
            *err = "a Bedrock credential is an API key or an access key pair";
            return -1;
        }
        out->api_key = apr_pstrdup(p, text);
        return 0;
    }
    o = json_tokener_parse(text);
    if (!o || !json_object_is_type(o, json_type_object)) {
        *err = "a Bedrock access key pair is a JSON object";
    } else if (!(out->key.access_key_id = token_of(p, o, "access_key_id"))) {
        *err = "access_key_id: a string without spaces is required";
    } else if (!(out->key.secret_access_key = token_of(p, o, "secret_access_key"))) {
        *err = "secret_access_key: a string without spaces is required";
    } else if (json_object_object_get_ex(o, "session_token", NULL) &&
               !(out->key.session_token = token_of(p, o, "session_token"))) {
        *err = "session_token: a string without spaces";
    } else {
        rc = 0;
    }
    json_object_put(o);
    if (rc) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

int s2a_cloud_status(s2a_cloud cloud, int status, const char *error_type)
{
    s2a_bedrock_error e;
    if (status < 300 || cloud == S2A_CLOUD_NONE) {
        return status;
    }
    if (cloud == S2A_CLOUD_BEDROCK && error_type && *error_type) {
        s2a_bedrock_exception(error_type, strlen(error_type), &e);
        return e.status;
    }
    /* an unavailable model is the Anthropic API's overload */
    return status == 503 ? 529 : status;
}

/* The message of a cloud's error body: Anthropic's error.message, Google's
 * error.message, or Bedrock's message (either case). */
static const char *message_of(apr_pool_t *p, json_object *o)
{
    json_object *v, *inner;
    if (o && json_object_is_type(o, json_type_array) && json_object_array_length(o) > 0) {
        o = json_object_array_get_idx(o, 0);
    }
    if (!o || !json_object_is_type(o, json_type_object)) {
        return NULL;
    }
    if (json_object_object_get_ex(o, "error", &inner) &&
        json_object_is_type(inner, json_type_object) &&
        json_object_object_get_ex(inner, "message", &v) &&
        json_object_is_type(v, json_type_string)) {
        return apr_pstrdup(p, json_object_get_string(v));
    }
    if ((json_object_object_get_ex(o, "message", &v) ||
         json_object_object_get_ex(o, "Message", &v)) &&
        json_object_is_type(v, json_type_string)) {
        return apr_pstrdup(p, json_object_get_string(v));
    }
    return NULL;
}

void s2a_cloud_error_read(apr_pool_t *p, s2a_cloud cloud, int status, const char *error_type,
                          const char *body, apr_size_t len, s2a_cloud_error *out)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = tok && body ? json_tokener_parse_ex(tok, body, (int)len) : NULL, *type;
    out->status = s2a_cloud_status(cloud, status, error_type);
    out->type = s2a_error_type(out->status);
    out->message = message_of(p, o);
    out->anthropic = o && json_object_is_type(o, json_type_object) &&
                     json_object_object_get_ex(o, "type", &type) &&
                     json_object_is_type(type, json_type_string) &&
                     strcmp(json_object_get_string(type), "error") == 0;
    json_object_put(o);
    if (tok) {
        json_tokener_free(tok);
    }
}

/* SHA-256 fetched once: OpenSSL 3 looks an implicit EVP_sha256() up again,
 * under a lock, on every use. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const char *s2a_bedrock_sign(apr_pool_t *p, const s2a_aws_key *key, const char *region,
                             const char *host, const char *path, const char *query,
                             const char *content_type, const apr_array_header_t *pieces,
                             apr_time_t now, const char **amz_date)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char *date = apr_palloc(p, S2A_SIGV4_DATE_LEN + 1);
    s2a_sigv4_header headers[3];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int i, ok;
    pthread_once(&sha256_once, fetch_sha256);
    ok = md && sha256 && host && *host && EVP_DigestInit_ex(md, sha256, NULL);
    /* OpenSSL's SHA-256: the body may be large, and it runs on every request */
    for (i = 0; ok && i < pieces->nelts; i++) {
        const s2a_piece *pc = &APR_ARRAY_IDX(pieces, i, s2a_piece);
        ok = EVP_DigestUpdate(md, pc->p, pc->len);
    }
    ok = ok && EVP_DigestFinal_ex(md, digest, &digest_len);
    EVP_MD_CTX_free(md);
    if (!ok) {
        return NULL;
    }
    s2a_sigv4_date(now, date);
    *amz_date = date;
    headers[0].name = "content-type";
    headers[0].value = content_type;
    headers[1].name = "host";
    headers[1].value = host;
    headers[2].name = "x-amz-date";
    headers[2].value = date;
    return s2a_sigv4_authorization(p, key, region, "bedrock", "POST", path, query, headers, 3,
                                   s2a_hex(p, digest, digest_len), date);
}

const char *s2a_cloud_credential_shown(apr_pool_t *p, s2a_cloud cloud, const char *plain)
{
    json_object *o, *v;
    const char *shown = NULL;
    apr_size_t n;
    if (cloud == S2A_CLOUD_NONE || !plain || !(o = json_tokener_parse(plain))) {
        return NULL;
    }
    if (cloud == S2A_CLOUD_VERTEX && json_object_object_get_ex(o, "client_email", &v) &&
        json_object_is_type(v, json_type_string)) {
        shown = apr_pstrcat(p, "service account ", json_object_get_string(v), NULL);
    } else if (cloud == S2A_CLOUD_BEDROCK && json_object_object_get_ex(o, "access_key_id", &v) &&
               json_object_is_type(v, json_type_string) &&
               (n = strlen(json_object_get_string(v))) >= 8) {
        const char *id = json_object_get_string(v);
        shown = apr_psprintf(p, "access key %.4s...%s", id, id + n - 4);
    }
    json_object_put(o);
    return shown;
}
