/* The Models API (GET /v1/models, GET /v1/models/{id}) over a gateway's own
 * list of model names: entries in the shape Anthropic's API gives them with
 * OpenAI's fields beside (both families of SDKs read the one answer),
 * newest first, paged as Anthropic's SDKs expect (limit, after_id,
 * before_id). */
#ifndef S2A_MODELS_H
#define S2A_MODELS_H

#include <apr_pools.h>
#include <apr_tables.h>

#define S2A_MODELS_DEFAULT_LIMIT 20
#define S2A_MODELS_MAX_LIMIT 1000

/* "Claude Sonnet 4" for "claude-sonnet-4-20250514", "Claude 3.5 Haiku" for
 * "claude-3-5-haiku-20241022": words capitalised, adjacent version numbers
 * joined by a dot, the date left out. */
char *s2a_model_display_name(apr_pool_t *p, const char *id);

/* RFC 3339 time from the id's trailing YYYYMMDD date; the Unix epoch when it
 * has none. */
char *s2a_model_created_at(apr_pool_t *p, const char *id);

/* The same time in Unix seconds (OpenAI's "created"). */
apr_int64_t s2a_model_created(const char *id);

/* Sorts ids (const char *) in place: newest date first, then by name; drops
 * repeated names. */
void s2a_models_sort(apr_array_header_t *ids);

/* One model object, as JSON text: Anthropic's type, id, display_name and
 * created_at, and OpenAI's object, created and owned_by. */
char *s2a_model_json(apr_pool_t *p, const char *id);

/* One page of the sorted ids as the list JSON (OpenAI's "object":"list"
 * beside Anthropic's paging members): the ids after `after_id` (or before
 * `before_id`; NULL: neither), at most `limit`. An id that is not in the
 * list gives an empty page. */
char *s2a_models_page(apr_pool_t *p, const apr_array_header_t *ids, const char *after_id,
                      const char *before_id, int limit);

#endif
