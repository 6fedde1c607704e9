/* Error pages of gateway requests are Anthropic-shaped JSON, not httpd's
 * HTML: insert_error_filter runs just before httpd looks up the error page
 * it is about to send, and takes the message the gateway noted (s2a_fail)
 * or the one its status stands for. */
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>

#include "mod_sub2api_shared.h"
#include "s2a_errors.h"

void s2a_error_page_insert(request_rec *r)
{
    const char *msg = apr_table_get(r->notes, S2A_ERROR_NOTE);
    if (!msg) {
        return;
    }
    ap_custom_response(
        r, r->status,
        s2a_error_body(r->pool, r->status, *msg ? msg : s2a_error_message(r->status)));
    ap_add_output_filter_handle(s2a_g.error_filter, NULL, r, r->connection);
}

apr_status_t s2a_error_page_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    ap_set_content_type(f->r, "application/json");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}
