/* The gateway's own HTTP calls: see s2a_http.h. */
#include <string.h>

#include <curl/curl.h>

#include <apr_strings.h>
#include <apr_uri.h>

#include "s2a_buf.h"
#include "s2a_http.h"

#define S2A_HTTP_MAX_ANSWER (1024 * 1024)

int s2a_http_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* Whether `url` is http:// to this host: 127.0.0.1, [::1] or localhost,
 * read as libcurl reads it (no user part, which could hide another host). */
static int loopback_http(apr_pool_t *p, const char *url)
{
    apr_uri_t u;
    return strncasecmp(url, "http://", 7) == 0 && apr_uri_parse(p, url, &u) == APR_SUCCESS &&
           !u.user && !u.password && u.hostname &&
           (strcmp(u.hostname, "127.0.0.1") == 0 || strcmp(u.hostname, "::1") == 0 ||
            strcasecmp(u.hostname, "localhost") == 0) &&
           !strpbrk(url + 7, "@\\");
}

int s2a_http_url_allowed(const char *url)
{
    apr_pool_t *p;
    int ok;
    if (strncasecmp(url, "https://", 8) == 0) {
        return url[8] != '\0';
    }
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return 0;
    }
    ok = loopback_http(p, url);
    apr_pool_destroy(p);
    return ok;
}

typedef struct {
    s2a_buf answer;
    int too_long;
} reading;

static size_t on_data(char *data, size_t size, size_t n, void *baton)
{
    reading *rd = baton;
    if (rd->answer.len + size * n > S2A_HTTP_MAX_ANSWER) {
        rd->too_long = 1;
        return 0; /* libcurl ends the call */
    }
    s2a_buf_append(&rd->answer, data, size * n);
    return size * n;
}

apr_status_t s2a_http_post(apr_pool_t *p, const char *url, const char *content_type,
                           const char *body, const s2a_http_options *options, int *status,
                           const char **answer, apr_size_t *answer_len, const char **err)
{
    char why[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    reading rd;
    CURL *curl;
    CURLcode rc;
    long code = 0;

    if (!s2a_http_url_allowed(url)) {
        *err = "the URL must be https://, or http:// to a loopback address";
        return APR_EINVAL;
    }
    if (!(curl = curl_easy_init())) {
        *err = "libcurl could not start a call";
        return APR_ENOMEM;
    }
    memset(&rd, 0, sizeof(rd));
    s2a_buf_init(&rd.answer, p, 4096);
    headers = curl_slist_append(headers, apr_pstrcat(p, "Content-Type: ", content_type, NULL));
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* threads: no alarm for DNS */
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)apr_time_as_msec(options->timeout));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "mod_sub2api");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &rd);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, why);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (options->ca_file) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, options->ca_file);
    }
    /* an empty string: no proxy, whatever the environment says; a token
     * endpoint on this host is reached directly */
    curl_easy_setopt(curl, CURLOPT_PROXY,
                     options->proxy && strncasecmp(url, "https://", 8) == 0 ? options->proxy : "");
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
        *err = rd.too_long ? "the answer is longer than 1 MiB"
                           : apr_pstrdup(p, *why ? why : curl_easy_strerror(rc));
        return APR_EGENERAL;
    }
    s2a_buf_append(&rd.answer, "", 0);
    *status = (int)code;
    *answer = rd.answer.data;
    *answer_len = rd.answer.len;
    return APR_SUCCESS;
}
