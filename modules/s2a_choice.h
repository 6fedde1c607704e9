/* Which accounts may serve a request, and what each would hold of its
 * user's balance: the candidates the store picks one of (the pick itself,
 * by priority, load, last use and stickiness, is the store's: s2a_store.h
 * and docs/store.md). */
#ifndef S2A_CHOICE_H
#define S2A_CHOICE_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "s2a_db_catalog.h"
#include "s2a_pricing.h"
#include "s2a_state.h"
#include "s2a_usage.h"

/* The model account `a` is sent when a client asks for `model`: its
 * mapping's name for it; else, for a cloud's account, the cloud's id of
 * it, written into cloud_id[S2A_CLOUD_MODEL_MAX]; else the same. */
const char *s2a_choice_model(const s2a_account *a, const char *model, char *cloud_id);

/* 1 when account `a` may serve `model` for a key of `group_id`: it is
 * active, in the group, and its mapping (when not empty) names the model. */
int s2a_choice_serves(const s2a_account *a, apr_int64_t group_id, const char *model);

/* The model names the group's active accounts serve (unsorted, may repeat,
 * from p): their mappings' names, and `every` (the price table's Anthropic
 * models) when one serves every model. */
apr_array_header_t *s2a_choice_models(apr_pool_t *p, const apr_array_header_t *accounts,
                                      apr_int64_t group_id, const apr_array_header_t *every);

/* What a request holds of its user's balance should an account serve it:
 * its estimated usage at the prices of the model that account is sent
 * (s2a_cloud_price for a cloud's). */
typedef struct {
    const s2a_usage *estimate;
    apr_int64_t multiplier_ppm;
    const s2a_pricing *prices;
    const apr_array_header_t *rules; /* s2a_price_rule: price fallbacks; may be NULL */
} s2a_choice_hold;

/* Whether the balancer member named `name` is the account endpoint
 * `endpoint`: letter case and a trailing slash on either side do not
 * count. */
int s2a_choice_endpoint_is(const char *name, const char *endpoint);

/* Fills cand[] and acc[] (each with room for every account) with the
 * accounts that serve, other than the ids in `exclude` (apr_int64_t; may be
 * NULL) and those whose endpoint is a member named in `closed` (const char
 * *: taken out by an operator; may be NULL); returns how many.
 * `count_only`: a count_tokens request, which takes no place
 * (cand[i].concurrency 0). `hold` (may be NULL):
 * cand[i].hold is what the request would hold (0 for a model without a
 * price: such a request is refused). */
int s2a_choice_candidates(const apr_array_header_t *accounts, apr_int64_t group_id,
                          const char *model, const apr_array_header_t *exclude,
                          const apr_array_header_t *closed, int count_only,
                          const s2a_choice_hold *hold, s2a_candidate *cand,
                          const s2a_account **acc);

/* A copy of `a` in p that shares nothing with the list it came from (a
 * list is replaced while requests run); its mapping and groups are left
 * out. */
void s2a_choice_copy(apr_pool_t *p, const s2a_account *a, s2a_account *out);

#endif
