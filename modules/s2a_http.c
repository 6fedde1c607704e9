#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include "s2a_http.h"

#define S2A_HTTP_MAX_ANSWER (1024 * 1024)

static const char *find_crlfcrlf(const char *s, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i + 3 < len; i++) {
        if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n') {
            return s + i;
        }
    }
    return NULL;
}

/* The value of header `name` within the header block, NULL if absent. */
static const char *header(apr_pool_t *p, const char *head, apr_size_t len, const char *name)
{
    apr_size_t nlen = strlen(name);
    const char *line = memchr(head, '\n', len), *end = head + len;
    while (line && line + 1 < end) {
        const char *next = memchr(line + 1, '\n', (apr_size_t)(end - line - 1));
        const char *stop = next ? next : end;
        line++;
        if ((apr_size_t)(stop - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < stop && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (stop > v && (stop[-1] == '\r' || stop[-1] == ' ')) {
                stop--;
            }
            return apr_pstrmemdup(p, v, (apr_size_t)(stop - v));
        }
        line = next;
    }
    return NULL;
}

static int dechunk(apr_pool_t *p, const char *s, apr_size_t len, const char **body,
                   apr_size_t *body_len)
{
    char *out = apr_palloc(p, len + 1);
    apr_size_t n = 0, i = 0;
    for (;;) {
        char *end;
        unsigned long size;
        const char *eol = NULL;
        apr_size_t j;
        for (j = i; j + 1 < len; j++) {
            if (s[j] == '\r' && s[j + 1] == '\n') {
                eol = s + j;
                break;
            }
        }
        if (!eol) {
            return -1;
        }
        size = strtoul(apr_pstrmemdup(p, s + i, (apr_size_t)(eol - (s + i))), &end, 16);
        i = (apr_size_t)(eol - s) + 2;
        if (size == 0) {
            break;
        }
        if (size > len - i || len - i - size < 2) {
            return -1;
        }
        memcpy(out + n, s + i, size);
        n += size;
        i += size + 2;
    }
    out[n] = '\0';
    *body = out;
    *body_len = n;
    return 0;
}

int s2a_http_parse_response(apr_pool_t *p, const char *raw, apr_size_t len, int *status,
                            const char **body, apr_size_t *body_len)
{
    const char *head_end = find_crlfcrlf(raw, len), *v;
    apr_size_t head_len, rest;
    if (!head_end || len < 12 || strncmp(raw, "HTTP/1.", 7) != 0 || raw[8] != ' ' ||
        !apr_isdigit(raw[9]) || !apr_isdigit(raw[10]) || !apr_isdigit(raw[11])) {
        return -1;
    }
    *status = (raw[9] - '0') * 100 + (raw[10] - '0') * 10 + (raw[11] - '0');
    if (*status < 100 || *status > 599) {
        return -1;
    }
    head_len = (apr_size_t)(head_end - raw);
    rest = len - head_len - 4;
    v = header(p, raw, head_len, "Transfer-Encoding");
    if (v && strcasecmp(v, "chunked") == 0) {
        return dechunk(p, head_end + 4, rest, body, body_len);
    }
    v = header(p, raw, head_len, "Content-Length");
    if (v) {
        apr_off_t n = apr_atoi64(v);
        if (n < 0 || (apr_size_t)n > rest) {
            return -1;
        }
        rest = (apr_size_t)n;
    }
    *body = apr_pstrmemdup(p, head_end + 4, rest);
    *body_len = rest;
    return 0;
}

apr_status_t s2a_http_post_json(apr_pool_t *p, const char *url, const char *body,
                                apr_interval_time_t timeout, int *status, const char **answer,
                                apr_size_t *answer_len, const char **err)
{
    apr_uri_t u;
    apr_sockaddr_t *sa;
    apr_socket_t *sock = NULL;
    apr_status_t rv;
    const char *req;
    char *buf;
    apr_size_t n, len = 0, cap = 16384;

    if (apr_uri_parse(p, url, &u) != APR_SUCCESS || !u.scheme || strcmp(u.scheme, "http") != 0 ||
        !u.hostname) {
        *err = "the URL must be http://host[:port]/path";
        return APR_EINVAL;
    }
    if ((rv = apr_sockaddr_info_get(&sa, u.hostname, APR_UNSPEC, u.port ? u.port : 80, 0, p)) !=
            APR_SUCCESS ||
        (rv = apr_socket_create(&sock, sa->family, SOCK_STREAM, APR_PROTO_TCP, p)) != APR_SUCCESS ||
        (rv = apr_socket_timeout_set(sock, timeout)) != APR_SUCCESS ||
        (rv = apr_socket_connect(sock, sa)) != APR_SUCCESS) {
        *err =
            apr_psprintf(p, "cannot connect to %s:%u: %pm", u.hostname, u.port ? u.port : 80, &rv);
        goto done;
    }
    req = apr_psprintf(p,
                       "POST %s%s%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                       "Accept: application/json\r\nContent-Length: %" APR_SIZE_T_FMT
                       "\r\nConnection: close\r\n\r\n%s",
                       u.path ? u.path : "/", u.query ? "?" : "", u.query ? u.query : "",
                       u.port_str ? apr_pstrcat(p, u.hostname, ":", u.port_str, NULL) : u.hostname,
                       strlen(body), body);
    n = strlen(req);
    if ((rv = apr_socket_send(sock, req, &n)) != APR_SUCCESS || n != strlen(req)) {
        *err = apr_psprintf(p, "sending to %s: %pm", u.hostname, &rv);
        goto done;
    }
    buf = apr_palloc(p, cap);
    for (;;) {
        if (len == cap) {
            char *nb;
            if (cap >= S2A_HTTP_MAX_ANSWER) {
                *err = "the answer is too large";
                rv = APR_ENOSPC;
                goto done;
            }
            nb = apr_palloc(p, cap * 2);
            memcpy(nb, buf, len);
            buf = nb;
            cap *= 2;
        }
        n = cap - len;
        rv = apr_socket_recv(sock, buf + len, &n);
        len += n;
        if (APR_STATUS_IS_EOF(rv)) {
            break;
        }
        if (rv != APR_SUCCESS) {
            *err = apr_psprintf(p, "reading from %s: %pm", u.hostname, &rv);
            goto done;
        }
    }
    rv = APR_SUCCESS;
    if (s2a_http_parse_response(p, buf, len, status, answer, answer_len) != 0) {
        *err = "the answer is not an HTTP response";
        rv = APR_EGENERAL;
    }
done:
    if (sock) {
        apr_socket_close(sock);
    }
    return rv;
}
