/* A TLS connection for a library that reads and writes plain sockets: see
 * s2a_tls_pipe.h. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "s2a_tls_pipe.h"

/* how long one write to the server may wait for room */
#define WRITE_WAIT_MS 5000
/* how long freeing the client waits for its pipes' threads to end */
#define DRAIN_WAIT_SEC 1

struct s2a_tls_client {
    SSL_CTX *ctx;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int pipes; /* threads carrying a pipe, which use OpenSSL until they end */
};

typedef struct {
    s2a_tls_client *tc;
    SSL *ssl;
    int server; /* the TCP socket, non-blocking */
    int local;  /* the pipe's end, blocking */
} pipe_t;

static void openssl_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char why[160] = "";
    if (e) {
        ERR_error_string_n(e, why, sizeof(why));
    }
    snprintf(err, errlen, "%s%s%s", what, *why ? ": " : "", why);
    ERR_clear_error();
}

s2a_tls_client *s2a_tls_client_make(const char *ca_file, char *err, size_t errlen)
{
    s2a_tls_client *tc = calloc(1, sizeof(*tc));
    if (!tc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&tc->lock, NULL);
    pthread_cond_init(&tc->idle, NULL);
    if (!(tc->ctx = SSL_CTX_new(TLS_client_method()))) {
        openssl_error(err, errlen, "cannot make a TLS context");
        s2a_tls_client_free(tc);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(tc->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(tc->ctx, SSL_VERIFY_PEER, NULL);
    /* a write that waited is tried again from wherever its buffer is */
    SSL_CTX_set_mode(tc->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (ca_file ? SSL_CTX_load_verify_locations(tc->ctx, ca_file, NULL) != 1
                : SSL_CTX_set_default_verify_paths(tc->ctx) != 1) {
        openssl_error(err, errlen, ca_file ? "cannot read the CA file" : "no system CA store");
        s2a_tls_client_free(tc);
        return NULL;
    }
    return tc;
}

void s2a_tls_client_free(s2a_tls_client *tc)
{
    struct timespec until;
    int live;

    if (!tc) {
        return;
    }
    /* A process that exits while a pipe's thread still frees its TLS
     * connection has OpenSSL's exit handlers pull its state from under
     * that thread: wait for them. */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DRAIN_WAIT_SEC;
    pthread_mutex_lock(&tc->lock);
    while (tc->pipes > 0) {
        if (pthread_cond_timedwait(&tc->idle, &tc->lock, &until) != 0) {
            break; /* the second is up */
        }
    }
    live = tc->pipes;
    pthread_mutex_unlock(&tc->lock);
    if (live) {
        return; /* a pipe still carries (its library end is open): what it uses stays */
    }
    pthread_cond_destroy(&tc->idle);
    pthread_mutex_destroy(&tc->lock);
    SSL_CTX_free(tc->ctx);
    free(tc);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 1 ready, 0 not. */
static int wait_for(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd pf = {fd, events, 0};
        long long left = deadline - now_ms();
        int n;
        if (left <= 0) {
            return 0;
        }
        n = poll(&pf, 1, (int)left);
        if (n > 0) {
            return 1;
        }
        if (n == 0 || errno != EINTR) {
            return 0;
        }
    }
}

/* A non-blocking TCP connection to host:port made by the deadline; -1 with
 * err set. */
static int connect_server(const char *host, int port, long long deadline, char *err, size_t errlen)
{
    struct addrinfo hints, *found = NULL, *ai;
    char service[8];
    int fd = -1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof(service), "%d", port);
    if ((rc = getaddrinfo(host, service, &hints, &found)) != 0) {
        snprintf(err, errlen, "cannot resolve the host: %s", gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "cannot connect");
    for (ai = found; ai; ai = ai->ai_next) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_for(fd, POLLOUT, deadline) &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)) {
            break;
        }
        snprintf(err, errlen, "cannot connect: %s",
                 soerr                  ? strerror(soerr)
                 : errno == EINPROGRESS ? "timed out"
                                        : strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    return fd;
}

/* The handshake, the certificate checked against `host`, by the deadline. */
static SSL *handshake(s2a_tls_client *tc, int fd, const char *host, long long deadline, char *err,
                      size_t errlen)
{
    unsigned char addr[16];
    SSL *ssl = SSL_new(tc->ctx);
    if (!ssl) {
        openssl_error(err, errlen, "cannot start TLS");
        return NULL;
    }
    SSL_set_fd(ssl, fd);
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    for (;;) {
        int rc = SSL_connect(ssl), e;
        if (rc == 1) {
            return ssl;
        }
        e = SSL_get_error(ssl, rc);
        if ((e == SSL_ERROR_WANT_READ && wait_for(fd, POLLIN, deadline)) ||
            (e == SSL_ERROR_WANT_WRITE && wait_for(fd, POLLOUT, deadline))) {
            continue;
        }
        if (SSL_get_verify_result(ssl) != X509_V_OK) {
            snprintf(err, errlen, "the server's certificate is refused: %s",
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
            ERR_clear_error();
        } else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            snprintf(err, errlen, "the TLS handshake timed out");
        } else {
            openssl_error(err, errlen, "the TLS handshake failed");
        }
        SSL_free(ssl);
        return NULL;
    }
}

/* Sends data[0..n) to the server; 0 when it cannot. */
static int to_server(pipe_t *p, const char *data, int n)
{
    while (n > 0) {
        int w = SSL_write(p->ssl, data, n), e;
        if (w > 0) {
            data += w;
            n -= w;
            continue;
        }
        e = SSL_get_error(p->ssl, w);
        if (!((e == SSL_ERROR_WANT_WRITE &&
               wait_for(p->server, POLLOUT, now_ms() + WRITE_WAIT_MS)) ||
              (e == SSL_ERROR_WANT_READ &&
               wait_for(p->server, POLLIN, now_ms() + WRITE_WAIT_MS)))) {
            return 0;
        }
    }
    return 1;
}

/* Hands data[0..n) to the library; 0 when it went away. */
static int to_local(pipe_t *p, const char *data, int n)
{
    while (n > 0) {
        ssize_t w = send(p->local, data, (size_t)n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return 0;
        }
        data += w;
        n -= (int)w;
    }
    return 1;
}

/* What the server sent, all of it that TLS has: 0 once the connection
 * ended. */
static int from_server(pipe_t *p, char *buf, int size)
{
    for (;;) {
        int n = SSL_read(p->ssl, buf, size), e;
        if (n > 0) {
            if (!to_local(p, buf, n)) {
                return 0;
            }
            continue;
        }
        e = SSL_get_error(p->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            return 1;
        }
        if (e == SSL_ERROR_WANT_WRITE && wait_for(p->server, POLLOUT, now_ms() + WRITE_WAIT_MS)) {
            continue;
        }
        return 0;
    }
}

static void *carry(void *arg)
{
    pipe_t *p = arg;
    s2a_tls_client *tc;
    char buf[16384];

    for (;;) {
        struct pollfd pf[2] = {{p->local, POLLIN, 0}, {p->server, POLLIN, 0}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pf[0].revents) {
            ssize_t n = recv(p->local, buf, sizeof(buf), 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            /* the library closed its end: the pipe is done */
            if (n <= 0 || !to_server(p, buf, (int)n)) {
                break;
            }
        }
        if (pf[1].revents && !from_server(p, buf, sizeof(buf))) {
            break;
        }
    }
    SSL_shutdown(p->ssl); /* a courtesy: not waited for */
    SSL_free(p->ssl);
    close(p->server);
    close(p->local); /* the library reads the end */
    tc = p->tc;
    free(p);
    pthread_mutex_lock(&tc->lock);
    if (--tc->pipes == 0) {
        pthread_cond_broadcast(&tc->idle);
    }
    pthread_mutex_unlock(&tc->lock);
    return NULL;
}

int s2a_tls_pipe_open(s2a_tls_client *tc, const char *host, int port, int timeout_ms, char *err,
                      size_t errlen)
{
    long long deadline = now_ms() + timeout_ms;
    pthread_attr_t attr;
    pthread_t thread;
    pipe_t *p;
    int fd, sv[2];
    SSL *ssl;

    if ((fd = connect_server(host, port, deadline, err, errlen)) < 0) {
        return -1;
    }
    if (!(ssl = handshake(tc, fd, host, deadline, err, errlen))) {
        close(fd);
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errlen, "cannot make the local pipe: %s", strerror(errno));
        SSL_free(ssl);
        close(fd);
        return -1;
    }
    if (!(p = malloc(sizeof(*p)))) {
        snprintf(err, errlen, "out of memory");
        SSL_free(ssl);
        close(fd);
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    p->tc = tc;
    p->ssl = ssl;
    p->server = fd;
    p->local = sv[1];
    pthread_mutex_lock(&tc->lock);
    tc->pipes++;
    pthread_mutex_unlock(&tc->lock);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, carry, p) != 0) {
        pthread_attr_destroy(&attr);
        pthread_mutex_lock(&tc->lock);
        tc->pipes--;
        pthread_mutex_unlock(&tc->lock);
        snprintf(err, errlen, "cannot start the pipe's thread");
        SSL_free(ssl);
        close(fd);
        close(sv[0]);
        close(sv[1]);
        free(p);
        return -1;
    }
    pthread_attr_destroy(&attr);
    return sv[0];
}
