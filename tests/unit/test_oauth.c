/* OAuth refresh: the token endpoint's request and answer, and the HTTP
 * client that carries them (against servers this program runs). */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_network_io.h>
#include <apr_strings.h>

#include "s2a_http.h"
#include "s2a_oauth.h"
#include "s2a_test.h"

static void test_body(apr_pool_t *p)
{
    S2A_CHECK_STR(s2a_oauth_refresh_body(p, "rt-1", "client-9"),
                  "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"rt-1\","
                  "\"client_id\":\"client-9\"}");
    S2A_CHECK_STR(s2a_oauth_refresh_body(p, "a\"b\\c\n", "x"),
                  "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"a\\\"b\\\\c\\n\","
                  "\"client_id\":\"x\"}");
}

static void test_parse(apr_pool_t *p)
{
    static const char *const bad_tokens[] = {
        "{\"access_token\":\"\\u0000b\"}",
        "{\"access_token\":\"a\\r\\nX-Evil: 1\"}",
        "{\"access_token\":\"a b\"}",
        "{\"access_token\":\"\\u00e9\"}",
        "{\"access_token\":\"a\",\"refresh_token\":\"r\\u0000\"}",
        "{\"access_token\":\"a\",\"refresh_token\":\"r\\t\"}",
    };
    static const char *const good_token = "{\"access_token\":\"a-b.c_d~e+f/g=\"}";
    const char *ok = "{\"token_type\":\"Bearer\",\"access_token\":\"sk-ant-oat01-new\","
                     "\"refresh_token\":\"sk-ant-ort01-new\",\"expires_in\":28800}";
    s2a_oauth_tokens t;
    const char *err = NULL;
    size_t i;

    S2A_CHECK_INT(s2a_oauth_parse(p, ok, strlen(ok), &t, &err), 0);
    S2A_CHECK_STR(t.access_token, "sk-ant-oat01-new");
    S2A_CHECK_STR(t.refresh_token, "sk-ant-ort01-new");
    S2A_CHECK_INT(t.expires_in, 28800);

    S2A_CHECK_INT(s2a_oauth_parse(p, "{\"access_token\":\"a\"}", 20, &t, &err), 0);
    S2A_CHECK(t.refresh_token == NULL && t.expires_in == 0);

    S2A_CHECK_INT(s2a_oauth_parse(p, "{\"refresh_token\":\"r\"}", 21, &t, &err), -1);
    S2A_CHECK(strstr(err, "access_token") != NULL);
    S2A_CHECK_INT(s2a_oauth_parse(p, "{\"access_token\":\"\"}", 19, &t, &err), -1);
    S2A_CHECK_INT(
        s2a_oauth_parse(p, "{\"access_token\":\"a\",\"expires_in\":\"soon\"}", 40, &t, &err), -1);
    S2A_CHECK_INT(s2a_oauth_parse(p, "{\"access_token\":\"a\",\"expires_in\":-5}", 36, &t, &err),
                  -1);
    /* a token is sent as a header: a byte that would cut it or end the
     * header refuses the answer, whichever token holds it */
    for (i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
        err = NULL;
        S2A_CHECK_INT(s2a_oauth_parse(p, bad_tokens[i], strlen(bad_tokens[i]), &t, &err), -1);
        S2A_CHECK(err && strstr(err, i < 4 ? "access_token" : "refresh_token") != NULL);
    }
    S2A_CHECK_INT(s2a_oauth_parse(p, good_token, strlen(good_token), &t, &err), 0);
    S2A_CHECK_STR(t.access_token, "a-b.c_d~e+f/g=");
    S2A_CHECK_INT(s2a_oauth_parse(p, "[1]", 3, &t, &err), -1);
    S2A_CHECK_INT(s2a_oauth_parse(p, "<html>", 6, &t, &err), -1);
    /* every truncation of a good answer is refused, and names no token */
    for (i = 0; i < strlen(ok); i++) {
        err = NULL;
        S2A_CHECK_INT(s2a_oauth_parse(p, ok, i, &t, &err), -1);
        S2A_CHECK(err && !strstr(err, "sk-ant"));
    }
}

static void test_error_words(apr_pool_t *p)
{
    const char *a = "{\"error\":\"invalid_grant\",\"error_description\":\"Refresh token "
                    "not found\",\"refresh_token\":\"sk-ant-ort01-leak\"}";
    const char *b = "{\"error\":\"x\\nFAKE LOG LINE\"}";
    s2a_oauth_tokens t;
    const char *err;
    S2A_CHECK_STR(s2a_oauth_error_words(p, a, strlen(a)), "invalid_grant: Refresh token not found");
    S2A_CHECK_STR(s2a_oauth_error_words(p, b, strlen(b)), "x?FAKE LOG LINE");
    S2A_CHECK_STR(s2a_oauth_error_words(p, "<html>sk-ant-ort01-leak</html>", 30),
                  "no error named in the answer");
    S2A_CHECK_STR(s2a_oauth_error_words(p, "{\"error\":5}", 11), "no error named in the answer");
    /* an absurd validity is cut to a year and a day */
    S2A_CHECK_INT(s2a_oauth_parse(p, "{\"access_token\":\"a\",\"expires_in\":9223372036854775807}",
                                  55, &t, &err),
                  0);
    S2A_CHECK_INT(t.expires_in, S2A_OAUTH_MAX_EXPIRES_IN);
}

/* A one-shot HTTP server on a loopback port: reads one request, answers
 * with `answer`, closes. */
typedef struct {
    int fd;
    const char *answer;
    size_t len;
    char request[4096];
} one_shot;

static void *serve_once(void *arg)
{
    one_shot *o = arg;
    int c = accept(o->fd, NULL, NULL);
    size_t got = 0, sent = 0;
    if (c < 0) {
        return NULL;
    }
    /* the request: headers and the JSON body, which ends with } */
    while (got < sizeof(o->request) - 1) {
        ssize_t n = recv(c, o->request + got, sizeof(o->request) - 1 - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        o->request[got] = '\0';
        if (strstr(o->request, "\r\n\r\n") && o->request[got - 1] == '}') {
            break;
        }
    }
    while (sent < o->len) {
        ssize_t n = send(c, o->answer + sent, o->len - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break;
        }
        sent += (size_t)n;
    }
    close(c);
    return NULL;
}

static int listen_loopback(int *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* One call as the token endpoint gets it: the answer's status and body
 * come back whatever their framing; an answer past 1 MiB, a closed port
 * and a URL that would send the token in the clear fail. */
static void test_http(apr_pool_t *p)
{
    s2a_http_options o = {apr_time_from_sec(5), NULL, NULL};
    const char *answer = NULL, *err = NULL;
    apr_size_t len = 0;
    int status = 0, port = 0, i;
    static const char *const framings[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
        "{\"a\":1}",
        "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}"
        "\r\n0\r\n\r\n",
        "HTTP/1.0 503 Unavailable\r\n\r\n{\"a\":1}"};

    S2A_CHECK(s2a_http_url_allowed("https://console.anthropic.com/v1/oauth/token"));
    S2A_CHECK(s2a_http_url_allowed("http://127.0.0.1:8080/v1/oauth/token"));
    S2A_CHECK(s2a_http_url_allowed("http://localhost/t"));
    S2A_CHECK(s2a_http_url_allowed("http://[::1]:9/t"));
    S2A_CHECK(!s2a_http_url_allowed("http://10.0.0.1/t"));
    S2A_CHECK(!s2a_http_url_allowed("http://localhost.example.com/t"));
    S2A_CHECK(!s2a_http_url_allowed("http://127.0.0.1.example.com/t"));
    S2A_CHECK(!s2a_http_url_allowed("http://localhost:1@evil.example/t"));
    S2A_CHECK(!s2a_http_url_allowed("http://localhost\\@evil.example/t"));
    S2A_CHECK(!s2a_http_url_allowed("http://user@127.0.0.1/t"));
    S2A_CHECK(!s2a_http_url_allowed("ftp://127.0.0.1/t"));
    S2A_CHECK(!s2a_http_url_allowed("https://"));
    S2A_CHECK_INT(s2a_http_post(p, "http://10.0.0.1/t", "application/json", "{}", &o, &status,
                                &answer, &len, &err),
                  APR_EINVAL);
    S2A_CHECK(err && strstr(err, "https://"));

    for (i = 0; i < 3; i++) {
        one_shot server;
        pthread_t t;
        int fd = listen_loopback(&port);
        S2A_CHECK(fd >= 0);
        server.fd = fd;
        server.answer = framings[i];
        server.len = strlen(framings[i]);
        pthread_create(&t, NULL, serve_once, &server);
        S2A_CHECK_INT(s2a_http_post(p, apr_psprintf(p, "http://127.0.0.1:%d/v1/oauth/token", port),
                                    "application/json", "{\"grant_type\":\"refresh_token\"}", &o,
                                    &status, &answer, &len, &err),
                      APR_SUCCESS);
        pthread_join(t, NULL);
        close(fd);
        S2A_CHECK_INT(status, i == 0 ? 200 : i == 1 ? 400 : 503);
        S2A_CHECK_STR(answer, "{\"a\":1}");
        S2A_CHECK_INT(len, 7);
        /* the request: a JSON POST with its body */
        S2A_CHECK(strncmp(server.request, "POST /v1/oauth/token HTTP/1.1\r\n", 31) == 0);
        S2A_CHECK(strstr(server.request, "Content-Type: application/json\r\n") != NULL);
        S2A_CHECK(strstr(server.request, "\r\n\r\n{\"grant_type\":\"refresh_token\"}") != NULL);
    }
    /* an answer past 1 MiB is not read whole */
    {
        one_shot server;
        pthread_t t;
        size_t big = 2 * 1024 * 1024;
        char *huge = apr_palloc(p, big + 100);
        int fd = listen_loopback(&port), n;
        n = apr_snprintf(huge, 100,
                         "HTTP/1.1 200 OK\r\nContent-Length: %" APR_SIZE_T_FMT "\r\n\r\n", big);
        memset(huge + n, 'x', big);
        server.fd = fd;
        server.answer = huge;
        server.len = (size_t)n + big;
        pthread_create(&t, NULL, serve_once, &server);
        S2A_CHECK_INT(s2a_http_post(p, apr_psprintf(p, "http://127.0.0.1:%d/t", port),
                                    "application/json", "{}", &o, &status, &answer, &len, &err),
                      APR_EGENERAL);
        S2A_CHECK_STR(err, "the answer is longer than 1 MiB");
        pthread_join(t, NULL);
        close(fd);
    }
    /* nobody listens */
    {
        int fd = listen_loopback(&port);
        close(fd);
        S2A_CHECK_INT(s2a_http_post(p, apr_psprintf(p, "http://127.0.0.1:%d/t", port),
                                    "application/json", "{}", &o, &status, &answer, &len, &err),
                      APR_EGENERAL);
        S2A_CHECK(err && *err);
    }
}

int main(void)
{
    apr_pool_t *p;
    int rc;
    apr_initialize();
    apr_pool_create(&p, NULL);
    S2A_CHECK(s2a_http_init());
    test_body(p);
    test_parse(p);
    test_error_words(p);
    test_http(p);
    rc = S2A_TEST_SUMMARY("oauth");
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
