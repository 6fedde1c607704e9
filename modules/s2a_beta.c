#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "s2a_beta.h"

static int has_token(const char *list, const char *token)
{
    apr_size_t n = strlen(token);
    const char *s = list;
    while ((s = strstr(s, token)) != NULL) {
        int start = s == list || s[-1] == ',' || apr_isspace(s[-1]);
        int end = s[n] == '\0' || s[n] == ',' || apr_isspace(s[n]);
        if (start && end) {
            return 1;
        }
        s += n;
    }
    return 0;
}

static int contains_haiku(const char *model)
{
    const char *s;
    for (s = model; s && *s; s++) {
        if (strncasecmp(s, "haiku", 5) == 0) {
            return 1;
        }
    }
    return 0;
}

const char *s2a_beta_for_oauth(apr_pool_t *p, const char *client, const char *model)
{
    apr_array_header_t *parts;
    char *copy, *tok, *state;
    const char **out;
    int placed = 0, i;

    if (!client || !*client) {
        return contains_haiku(model) ? S2A_BETA_OAUTH ",interleaved-thinking-2025-05-14"
                                     : S2A_BETA_CLAUDE_CODE
                   "," S2A_BETA_OAUTH ",interleaved-thinking-2025-05-14,"
                   "fine-grained-tool-streaming-2025-05-14";
    }
    if (has_token(client, S2A_BETA_OAUTH)) {
        return client;
    }
    parts = apr_array_make(p, 12, sizeof(const char *));
    copy = apr_pstrdup(p, client);
    for (tok = apr_strtok(copy, ",", &state); tok; tok = apr_strtok(NULL, ",", &state)) {
        char *end;
        while (apr_isspace(*tok)) {
            tok++;
        }
        end = tok + strlen(tok);
        while (end > tok && apr_isspace(end[-1])) {
            *--end = '\0';
        }
        if (*tok) {
            APR_ARRAY_PUSH(parts, const char *) = tok;
        }
    }
    out = apr_palloc(p, sizeof(*out) * (apr_size_t)(parts->nelts + 1));
    for (i = 0; i < parts->nelts; i++) {
        out[i + placed] = APR_ARRAY_IDX(parts, i, const char *);
        if (!placed && strcmp(out[i], S2A_BETA_CLAUDE_CODE) == 0) {
            out[i + 1] = S2A_BETA_OAUTH;
            placed = 1;
        }
    }
    if (!placed) {
        memmove(out + 1, out, sizeof(*out) * (apr_size_t)parts->nelts);
        out[0] = S2A_BETA_OAUTH;
    }
    copy = apr_pstrdup(p, out[0]);
    for (i = 1; i < parts->nelts + 1; i++) {
        copy = apr_pstrcat(p, copy, ",", out[i], NULL);
    }
    return copy;
}
