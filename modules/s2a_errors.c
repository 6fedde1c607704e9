/* Anthropic-shaped error bodies. */
#include <string.h>

#include <apr_strings.h>

#include "s2a_errors.h"

const char *s2a_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        break;
    }
    if (status >= 400 && status < 500) {
        return "invalid_request_error";
    }
    return "api_error";
}

int s2a_upstream_status_map(int upstream_status)
{
    if (upstream_status < 400) {
        return upstream_status;
    }
    switch (upstream_status) {
    case 401:
    case 403:
        return 502;
    case 529:
        return 503;
    default:
        break;
    }
    if (upstream_status < 500) {
        return upstream_status;
    }
    return 502;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there are not one. */
static apr_size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    apr_size_t n, i;
    unsigned long cp;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Reject overlong forms, surrogates and code points past U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

char *s2a_json_escape(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *in = (const unsigned char *)(s ? s : "");
    apr_size_t len = strlen((const char *)in);
    /* Worst case: every byte becomes a 6-char \u00XX escape. */
    char *out = apr_palloc(p, 6 * len + 1);
    char *o = out;

    while (*in) {
        unsigned char c = *in;
        apr_size_t n;

        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            in++;
            continue;
        }
        if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 0x0f];
                break;
            }
            in++;
            continue;
        }
        n = utf8_seq_len(in);
        if (n == 0) {
            /* U+FFFD in UTF-8: three bytes, less than the 6 reserved for this byte. */
            *o++ = (char)0xef;
            *o++ = (char)0xbf;
            *o++ = (char)0xbd;
            in++;
            continue;
        }
        memcpy(o, in, n);
        o += n;
        in += n;
    }
    *o = '\0';
    return out;
}

char *s2a_error_body(apr_pool_t *p, int status, const char *message)
{
    return apr_pstrcat(p, "{\"type\":\"error\",\"error\":{\"type\":\"", s2a_error_type(status),
                       "\",\"message\":\"", s2a_json_escape(p, message), "\"}}", NULL);
}
