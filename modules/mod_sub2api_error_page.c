/* Error pages of gateway requests are JSON in the shape of the path's door
 * (Anthropic's; OpenAI's for its doors), not httpd's HTML:
 * insert_error_filter runs just before httpd looks up the error page
 * it is about to send, and takes the message the gateway noted (s2a_fail)
 * or the one its status stands for. Errors httpd meets before the gateway
 * knows the request (a request line or headers it cannot read) come
 * through an ErrorDocument that names a location of SetHandler
 * sub2api-error; httpd takes that redirect for the gateway's own errors of
 * the same status too, so the handler keeps their message. */
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include <stdlib.h>

#include "mod_sub2api_shared.h"
#include "s2a_errors.h"

/* The error page for `status` of a request for `uri`. */
static const char *error_page(request_rec *r, const char *uri, int status, const char *msg,
                              const char *param)
{
    return s2a_door_error_body(r->pool, s2a_door_of(s2a_endpoint_of(uri ? uri : "")), status,
                               msg && *msg ? msg : s2a_error_message(status), param, NULL);
}

void s2a_error_page_insert(request_rec *r)
{
    const char *msg = apr_table_get(r->notes, S2A_ERROR_NOTE);
    if (!msg) {
        return;
    }
    ap_custom_response(
        r, r->status,
        error_page(r, r->uri, r->status, msg, apr_table_get(r->notes, S2A_ERROR_PARAM_NOTE)));
    ap_add_output_filter_handle(s2a_g.error_filter, NULL, r, r->connection);
}

apr_status_t s2a_error_page_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    ap_set_content_type(f->r, "application/json");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

int s2a_error_page_handler(request_rec *r)
{
    const char *status_env, *msg = NULL, *param = NULL, *uri = NULL;
    int status;
    if (!r->handler || strcmp(r->handler, S2A_ERROR_HANDLER) != 0) {
        return DECLINED;
    }
    status_env = apr_table_get(r->subprocess_env, "REDIRECT_STATUS");
    status = r->prev ? r->prev->status : status_env ? atoi(status_env) : HTTP_NOT_FOUND;
    if (status < 400 || status > 599) {
        status = HTTP_NOT_FOUND;
    }
    /* an error the gateway itself refused with (s2a_fail) keeps its message:
     * the ErrorDocument redirect comes before insert_error_filter */
    if (r->prev) {
        msg = apr_table_get(r->prev->notes, S2A_ERROR_NOTE);
        param = apr_table_get(r->prev->notes, S2A_ERROR_PARAM_NOTE);
        uri = r->prev->uri;
    }
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rputs(error_page(r, uri, status, msg, param), r);
    return OK;
}
