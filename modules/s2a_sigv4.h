/* AWS Signature Version 4 (header signing), as Amazon Bedrock Runtime and
 * every AWS service but S3 want it. Given a request as it will be sent,
 * the key and the time, it gives the Authorization header's value; the
 * steps in between (canonical request, string to sign) are exposed so
 * each can be checked on its own.
 *
 * The path is signed as sent: it is percent-encoded once more but never
 * normalized, so the caller sends no "." or ".." segments and no "//".
 * A query is decoded and re-encoded (RFC 3986: all but A-Z a-z 0-9 - . _ ~
 * as %XX), so a '+' is a plus sign, not a space. Strings come from `p`;
 * input that cannot be signed gives NULL, never a crash. */
#ifndef S2A_SIGV4_H
#define S2A_SIGV4_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "": none (long-term keys) */
} s2a_aws_key;

typedef struct {
    const char *name;  /* any case; an HTTP token */
    const char *value; /* NULL: empty */
} s2a_sigv4_header;

/* Length of an amz date, "YYYYMMDDTHHMMSSZ". */
#define S2A_SIGV4_DATE_LEN 16

/* The amz date of t (UTC) into out, NUL-terminated. */
void s2a_sigv4_date(apr_time_t t, char out[S2A_SIGV4_DATE_LEN + 1]);

/* The canonical URI of a path as sent (already percent-encoded): every
 * byte but the unreserved ones and '/' encoded as %XX, so "%3A" becomes
 * "%253A". An empty path is "/". */
const char *s2a_sigv4_canonical_path(apr_pool_t *p, const char *path);

/* The canonical request: method, canonical path, canonical query (pairs
 * sorted by name then value; NULL or "" for none; a name alone is
 * "name="), the headers (names lowercased; values trimmed, every run of
 * spaces, tabs and line breaks made one space; sorted by name, values of
 * one name joined with ',' in the order given), the signed header names
 * joined with ';', and the payload's SHA-256 hex. *signed_headers (when
 * not NULL) gets that list of names. NULL when a header name is not a
 * token, or method or payload_sha256_hex is NULL. */
const char *s2a_sigv4_canonical_request(apr_pool_t *p, const char *method, const char *path,
                                        const char *query, const s2a_sigv4_header *headers,
                                        int nheaders, const char *payload_sha256_hex,
                                        const char **signed_headers);

/* The string to sign of a canonical request sent at amz_date to
 * region's service. NULL when amz_date is not an amz date. */
const char *s2a_sigv4_string_to_sign(apr_pool_t *p, const char *amz_date, const char *region,
                                     const char *service, const char *canonical_request);

/* The Authorization header value of a request: its method, path and
 * query as sent, the headers to sign (host and x-amz-date among them),
 * its payload's SHA-256 hex and its amz date (s2a_sigv4_date, the same as
 * its x-amz-date). With a session token the signer signs
 * "x-amz-security-token: <token>" itself, in place of any such header
 * given; the caller sends that header. NULL when host or x-amz-date is
 * missing or anything is not as described. */
const char *s2a_sigv4_authorization(apr_pool_t *p, const s2a_aws_key *key, const char *region,
                                    const char *service, const char *method, const char *path,
                                    const char *query, const s2a_sigv4_header *headers,
                                    int nheaders, const char *payload_sha256_hex,
                                    const char *amz_date);

#endif
