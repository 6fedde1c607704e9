/* The admin page: one static HTML page (modules/dashboard/, embedded at
 * build time) that works over the admin API from the browser. It holds no
 * data and needs no token itself; the admin API checks every call. */
#include <http_protocol.h>
#include <http_request.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "mod_sub2api_shared.h"
#include "s2a_dashboard_assets.h"

/* Where the page finds the admin API: the request's SUB2API_ADMIN_BASE
 * (SetEnv, SetEnvIf, RewriteRule [E=]) when it is a path of this origin
 * (the page's Content-Security-Policy allows no other), else the default. */
static const char *admin_base(request_rec *r)
{
    const char *v = apr_table_get(r->subprocess_env, "SUB2API_ADMIN_BASE");
    const char *c;

    if (!v) {
        return S2A_DASHBOARD_ADMIN_BASE;
    }
    for (c = v; *c && !apr_iscntrl(*c); c++) {
    }
    if (v[0] != '/' || v[1] == '/' || *c || c - v > 1024) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      S2ALOGNO(0701) "SUB2API_ADMIN_BASE must be a path on this server"
                                     " (\"/...\"); the admin page uses %s",
                      S2A_DASHBOARD_ADMIN_BASE);
        return S2A_DASHBOARD_ADMIN_BASE;
    }
    return v;
}

int s2a_dashboard_handler(request_rec *r)
{
    const char *base;

    if (!r->handler || strcmp(r->handler, S2A_DASHBOARD_HANDLER) != 0) {
        return DECLINED;
    }

    if (r->method_number != M_GET) {
        ap_allow_methods(r, REPLACE_ALLOW, "GET", "HEAD", NULL);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    ap_discard_request_body(r);
    base = ap_escape_html2(r->pool, admin_base(r), 1);
    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->headers_out, "Content-Security-Policy", S2A_DASHBOARD_CSP);
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    ap_set_content_length(r,
                          sizeof(s2a_dashboard_head) + strlen(base) + sizeof(s2a_dashboard_tail));
    if (r->header_only) {
        return OK;
    }
    ap_rwrite(s2a_dashboard_head, sizeof(s2a_dashboard_head), r);
    ap_rputs(base, r);
    ap_rwrite(s2a_dashboard_tail, sizeof(s2a_dashboard_tail), r);
    return OK;
}
