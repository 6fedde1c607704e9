/* A TLS connection for a library that reads and writes plain sockets
 * (hiredis 0.14, Debian 12's, has no TLS of its own): the library is given
 * one end of a local socket pair, and a thread of the pipe's own carries
 * the bytes between the other end and the TLS connection.
 *
 * The server's certificate is verified against a CA file, or the system's
 * store, and must name the host connected to (its DNS name, or its IP
 * address). The pipe ends when the library closes its end (the thread
 * closes the TLS connection and exits) or when the server closes (the
 * library reads the end of its socket). */
#ifndef S2A_TLS_PIPE_H
#define S2A_TLS_PIPE_H

#include <stddef.h>

typedef struct s2a_tls_client s2a_tls_client;

/* What every pipe of one server shares: the CA file (NULL: the system's
 * store), loaded once. NULL with err[0..errlen) set when it cannot be
 * read. Freed by s2a_tls_client_free once the library closed its ends of
 * the pipes: it waits (a second at most) for their threads to finish with
 * OpenSSL, so that a process exiting next does not pull OpenSSL's state
 * from under them; when one still carries, the client is left to it. */
s2a_tls_client *s2a_tls_client_make(const char *ca_file, char *err, size_t errlen);
void s2a_tls_client_free(s2a_tls_client *tc);

/* Connects to host:port and completes the TLS handshake within
 * `timeout_ms`, then returns the library's end of the pipe: a socket
 * descriptor, the caller's to close. -1 with err[0..errlen) set (no
 * secret in it) when the server cannot be reached, the handshake fails or
 * its certificate is refused, or the thread cannot start. */
int s2a_tls_pipe_open(s2a_tls_client *tc, const char *host, int port, int timeout_ms, char *err,
                      size_t errlen);

#endif
