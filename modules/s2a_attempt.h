/* One attempt of a request: the request sent to one account and that
 * account's answer. A request that fails over makes a new attempt; nothing
 * of the last one is reset or carried over by hand. */
#ifndef S2A_ATTEMPT_H
#define S2A_ATTEMPT_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "s2a_answer.h"
#include "s2a_db_catalog.h"
#include "s2a_policy.h"
#include "s2a_pricing.h"
#include "s2a_store.h"

typedef struct {
    int number;                      /* 1 for the first account, +1 per switch */
    s2a_account account;             /* a copy in the request's pool */
    const char *upstream_model;      /* the model the account is sent */
    const s2a_price *price;          /* its prices; NULL for count_tokens */
    const s2a_price_rule *priced_by; /* the fallback rule `price` comes from; NULL: its own */
    s2a_place place;                 /* among the account's requests (key 0: none) */
    apr_array_header_t *body;        /* s2a_piece: what the account is sent */
    const char *filename;            /* mod_proxy's "proxy:balancer://..." for the account */
    int renamed;                     /* the account was sent another model name */
    int body_served;                 /* the replay filter handed the body over */
    int egress_taken;                /* mod_proxy was sent through the account's egress */
    int egress_unreachable;          /* the egress could not be reached: nothing was sent */
    const char *proxy_authorization; /* the egress's credentials, for an http:// upstream */
    apr_time_t sent_at;              /* it went upstream */
    apr_time_t headers_at;           /* the answer's headers came (0: none came) */
    apr_time_t first_byte;           /* the answer's first byte came */
    s2a_verdict verdict;             /* on the answer (s2a_policy_judge) */
    apr_time_t rest_until;           /* for a rate-limited account, from the answer's headers */
    s2a_answer answer;               /* started when the headers came */
} s2a_attempt;

/* A new attempt, numbered after `last` (NULL: the first). */
s2a_attempt *s2a_attempt_make(apr_pool_t *p, const s2a_attempt *last);

#endif
