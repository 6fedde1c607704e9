/* OAuth refresh: the token endpoint's request and answer, and the small
 * HTTP client that carries them (against a server this program forks). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
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

static void test_parse_response(apr_pool_t *p)
{
    const char *body;
    apr_size_t len;
    int status;
    const char *cl = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: 7\r\n\r\n{\"a\":1}trailing";
    const char *ch = "HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
                     "3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
    const char *eof = "HTTP/1.0 400 Bad Request\r\n\r\n{\"error\":\"invalid_grant\"}";

    S2A_CHECK_INT(s2a_http_parse_response(p, cl, strlen(cl), &status, &body, &len), 0);
    S2A_CHECK_INT(status, 200);
    S2A_CHECK_STR(body, "{\"a\":1}");
    S2A_CHECK_INT(s2a_http_parse_response(p, ch, strlen(ch), &status, &body, &len), 0);
    S2A_CHECK_INT(status, 201);
    S2A_CHECK_STR(body, "{\"a\":1}");
    S2A_CHECK_INT(len, 7);
    S2A_CHECK_INT(s2a_http_parse_response(p, eof, strlen(eof), &status, &body, &len), 0);
    S2A_CHECK_INT(status, 400);
    S2A_CHECK_STR(body, "{\"error\":\"invalid_grant\"}");
    /* cut short: headers unfinished, fewer bytes than announced, a chunk cut */
    S2A_CHECK_INT(s2a_http_parse_response(p, cl, 30, &status, &body, &len), -1);
    S2A_CHECK_INT(s2a_http_parse_response(p, cl, strlen(cl) - 14, &status, &body, &len), -1);
    S2A_CHECK_INT(s2a_http_parse_response(p, ch, strlen(ch) - 12, &status, &body, &len), -1);
    S2A_CHECK_INT(s2a_http_parse_response(p, "SMTP 220 hi\r\n\r\n", 15, &status, &body, &len), -1);
    S2A_CHECK_INT(s2a_http_parse_response(p, "HTTP/1.1 999 x\r\n\r\n", 18, &status, &body, &len),
                  -1);
    /* no digits where the status goes: never read past the bytes given */
    S2A_CHECK_INT(s2a_http_parse_response(p, "HTTP/1.1 \r\n\r\n", 13, &status, &body, &len), -1);
    S2A_CHECK_INT(s2a_http_parse_response(p, "HTTP/1.1 2x0 OK\r\n\r\n", 19, &status, &body, &len),
                  -1);
}

/* One connection: reads the request, checks it, answers in chunks. */
static void serve_one(apr_pool_t *p, apr_socket_t *listener)
{
    apr_socket_t *c;
    char req[4096];
    apr_size_t n, got = 0;
    const char *answer;
    int good;
    if (apr_socket_accept(&c, listener, p) != APR_SUCCESS) {
        _exit(2);
    }
    while (got < sizeof(req) - 1) {
        n = sizeof(req) - 1 - got;
        if (apr_socket_recv(c, req + got, &n) != APR_SUCCESS) {
            break;
        }
        got += n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") && strstr(req, "}")) {
            break;
        }
    }
    good = strncmp(req, "POST /v1/oauth/token?x=1 HTTP/1.1\r\n", 35) == 0 &&
           strstr(req, "\r\nContent-Type: application/json\r\n") &&
           strstr(req, "\r\nContent-Length: 5\r\n") && strstr(req, "\r\n\r\n{\"a\":1}") == NULL &&
           strstr(req, "\r\n\r\n{\"k\"}");
    answer = good ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\n{\"ok\"\r\n3\r\n:1}\r\n0\r\n\r\n"
                  : "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    n = strlen(answer);
    apr_socket_send(c, answer, &n);
    apr_socket_close(c);
    _exit(0);
}

static void test_post(apr_pool_t *p)
{
    apr_sockaddr_t *sa;
    apr_socket_t *l;
    apr_port_t port = 0;
    const char *body = NULL, *err = NULL;
    apr_size_t len = 0;
    int status = 0;
    pid_t pid;

    apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, p);
    apr_socket_create(&l, APR_INET, SOCK_STREAM, APR_PROTO_TCP, p);
    apr_socket_bind(l, sa);
    apr_socket_listen(l, 4);
    apr_socket_addr_get(&sa, APR_LOCAL, l);
    port = sa->port;
    pid = fork();
    if (pid == 0) {
        serve_one(p, l);
    }
    S2A_CHECK_INT(
        s2a_http_post_json(p, apr_psprintf(p, "http://127.0.0.1:%u/v1/oauth/token?x=1", port),
                           "{\"k\"}", apr_time_from_sec(5), &status, &body, &len, &err),
        APR_SUCCESS);
    S2A_CHECK_INT(status, 200);
    S2A_CHECK_STR(body, "{\"ok\":1}");
    waitpid(pid, NULL, 0);
    apr_socket_close(l);

    /* nobody listens there any more */
    S2A_CHECK(s2a_http_post_json(p, apr_psprintf(p, "http://127.0.0.1:%u/t", port), "{}",
                                 apr_time_from_sec(2), &status, &body, &len, &err) != APR_SUCCESS);
    S2A_CHECK(err && strstr(err, "cannot connect") != NULL);
    S2A_CHECK(s2a_http_post_json(p, "https://console.example/t", "{}", apr_time_from_sec(2),
                                 &status, &body, &len, &err) == APR_EINVAL);
}

int main(void)
{
    apr_pool_t *p;
    int rc;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_body(p);
    test_parse(p);
    test_error_words(p);
    test_parse_response(p);
    test_post(p);
    rc = S2A_TEST_SUMMARY("oauth");
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
