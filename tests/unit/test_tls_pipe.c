/* The TLS pipe under a plain-socket library, against a TLS server in this
 * process with a certificate made here: bytes go both ways, a certificate
 * from another CA or for another address is refused, and freeing the
 * client waits for the pipe's thread to be done with OpenSSL. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "s2a_test.h"
#include "s2a_tls_pipe.h"

/* The TLS connections the pipes freed (every SSL but the server's). */
static SSL_CTX *server_ctx;
static int client_frees;

/* A self-signed certificate for the address `ip`, and its key. */
static X509 *make_cert(const char *ip, EVP_PKEY **key)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX ctx;
    X509_EXTENSION *san;
    char alt[64];

    *key = EVP_EC_gen("P-256");
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, *key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"s2a test", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    snprintf(alt, sizeof(alt), "IP:%s", ip);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    san = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, alt);
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(x, *key, EVP_sha256());
    return x;
}

static void write_pem(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    PEM_write_X509(f, x);
    fclose(f);
}

typedef struct {
    SSL_CTX *ctx;
    int listener;
    int port;
    pthread_t thread;
} server_t;

/* One connection at a time: the handshake, then every byte echoed until
 * the client goes. */
static void *serve(void *arg)
{
    server_t *sv = arg;
    char buf[4096];
    int fd;

    while ((fd = accept(sv->listener, NULL, NULL)) >= 0) {
        SSL *ssl = SSL_new(sv->ctx);
        int n;
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) {
                SSL_write(ssl, buf, n);
            }
        }
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

static void server_start(server_t *sv, X509 *cert, EVP_PKEY *key)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    sv->ctx = server_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(sv->ctx, cert);
    SSL_CTX_use_PrivateKey(sv->ctx, key);
    sv->listener = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(sv->listener, (struct sockaddr *)&a, sizeof(a));
    listen(sv->listener, 8);
    getsockname(sv->listener, (struct sockaddr *)&a, &len);
    sv->port = ntohs(a.sin_port);
    pthread_create(&sv->thread, NULL, serve, sv);
}

static void server_stop(server_t *sv)
{
    shutdown(sv->listener, SHUT_RDWR);
    close(sv->listener);
    pthread_join(sv->thread, NULL);
    SSL_CTX_free(sv->ctx);
}

static void on_ssl_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)ptr, (void)ad, (void)idx, (void)argl, (void)argp;
    if (SSL_get_SSL_CTX(parent) != server_ctx) {
        __atomic_add_fetch(&client_frees, 1, __ATOMIC_SEQ_CST);
    }
}

int main(void)
{
    char dir[] = "/tmp/s2a-tls-XXXXXX", ca[64], other_ca[64], err[256], buf[64];
    EVP_PKEY *key, *other_key;
    X509 *cert, *other;
    s2a_tls_client *tc;
    server_t sv;
    int fd, k, n;

    S2A_CHECK(mkdtemp(dir) != NULL);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(other_ca, sizeof(other_ca), "%s/other.pem", dir);
    cert = make_cert("127.0.0.1", &key);
    other = make_cert("127.0.0.1", &other_key);
    write_pem(ca, cert);
    write_pem(other_ca, other);
    server_start(&sv, cert, key);

    /* bytes both ways, over three pipes one after the other; once the
     * client is freed, its pipe's thread is done with OpenSSL */
    SSL_get_ex_new_index(0, NULL, NULL, NULL, on_ssl_free);
    for (k = 0; k < 3; k++) {
        tc = s2a_tls_client_make(ca, err, sizeof(err));
        S2A_CHECK(tc != NULL);
        fd = s2a_tls_pipe_open(tc, "127.0.0.1", sv.port, 2000, err, sizeof(err));
        S2A_CHECK(fd >= 0);
        S2A_CHECK_INT(write(fd, "PING\r\n", 6), 6);
        for (n = 0; n < 6;) {
            ssize_t got = read(fd, buf + n, sizeof(buf) - (size_t)n);
            if (got <= 0) {
                break;
            }
            n += (int)got;
        }
        S2A_CHECK(n == 6 && memcmp(buf, "PING\r\n", 6) == 0);
        /* the library closes its end; freeing waits for the pipe's thread */
        close(fd);
        s2a_tls_client_free(tc);
        S2A_CHECK_INT(__atomic_load_n(&client_frees, __ATOMIC_SEQ_CST), k + 1);
    }

    /* a certificate the CA file did not sign, or for another address */
    tc = s2a_tls_client_make(other_ca, err, sizeof(err));
    S2A_CHECK_INT(s2a_tls_pipe_open(tc, "127.0.0.1", sv.port, 2000, err, sizeof(err)), -1);
    S2A_CHECK(strstr(err, "the server's certificate is refused") != NULL);
    s2a_tls_client_free(tc);
    tc = s2a_tls_client_make(ca, err, sizeof(err));
    S2A_CHECK_INT(s2a_tls_pipe_open(tc, "localhost", sv.port, 2000, err, sizeof(err)), -1);
    S2A_CHECK(strstr(err, "the server's certificate is refused") != NULL);
    s2a_tls_client_free(tc);
    /* a CA file that is not there */
    S2A_CHECK(s2a_tls_client_make("/nonexistent/ca.pem", err, sizeof(err)) == NULL);
    S2A_CHECK(strstr(err, "cannot read the CA file") != NULL);

    server_stop(&sv);
    X509_free(cert);
    X509_free(other);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other_key);
    unlink(ca);
    unlink(other_ca);
    rmdir(dir);
    return S2A_TEST_SUMMARY("test_tls_pipe");
}
