/* Anthropic-shaped error bodies. */
#include <string.h>

#include <apr_strings.h>

#include "s2a_errors.h"
#include "s2a_json.h"

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

char *s2a_error_body(apr_pool_t *p, int status, const char *message)
{
    return apr_pstrcat(p, "{\"type\":\"error\",\"error\":{\"type\":\"", s2a_error_type(status),
                       "\",\"message\":\"", s2a_json_escape(p, message), "\"}}", NULL);
}

const char *s2a_error_message(int status)
{
    switch (status) {
    case 400:
        return "The request could not be read (its request line or headers are malformed, or "
               "too many or too long)";
    case 403:
        return "Access to this path is not allowed";
    case 404:
        return "Nothing is served at this path";
    case 405:
        return "This method is not allowed at this path";
    case 408:
        return "The request did not arrive in time";
    case 411:
        return "A Content-Length is required";
    case 413:
        return "The request is too large";
    case 414:
        return "The request's URI is too long";
    case 431:
        return "The request's headers are too large";
    case 502:
        return "The upstream could not be reached or broke the connection";
    case 503:
        return "No upstream is reachable right now";
    case 504:
        return "The upstream did not answer in time";
    default:
        return "The gateway could not complete the request";
    }
}
