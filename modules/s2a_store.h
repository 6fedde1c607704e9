/* Where the account pool keeps what all request processes must agree on:
 * which account serves which conversation, how many requests each account,
 * key and user carries, per-minute counts, and why an account rests.
 *
 * Two providers implement it: `shm` (s2a_store_shm.c, one host's shared
 * memory) and `redis` (s2a_store_redis.c, several hosts). Every operation of
 * a provider that talks to a server can fail (APR_SUCCESS otherwise); the
 * caller then refuses the request rather than guessing. */
#ifndef S2A_STORE_H
#define S2A_STORE_H

#include <apr_pools.h>
#include <apr_time.h>

#include "s2a_state.h"

typedef struct s2a_store s2a_store;

/* One place taken among the requests an account, a key or a user carries;
 * `key` 0 is no place. `token` names it in the store. */
typedef struct {
    apr_int64_t key;
    apr_uint64_t token;
    int account; /* 1: an account's in-flight count; 0: a key's or a user's */
    apr_time_t renewed;
} s2a_place;

/* A balance as a request holds from it (a user's balance, a subscription's
 * allowance, a key's budget); shared by every process (shm) or node
 * (redis). `known`: the figure the database last told. */
typedef struct {
    apr_int64_t key;
    apr_int64_t known;
} s2a_balance;

typedef struct {
    const char *name;
    /* Counter that moves whenever cached users, keys or accounts must be
     * reloaded; never fails (the last value read stands in). A provider may
     * answer from a short-lived copy unless `fresh`. */
    apr_uint32_t (*generation)(s2a_store *st, int fresh);
    apr_status_t (*bump)(s2a_store *st);
    /* s2a_state_pick_holding semantics; *picked gets the index or S2A_PICK_*,
     * *place the account's place when one was picked. With a balance (`bal`
     * not NULL, its key not 0) the pick also holds the picked candidate's
     * `hold` of it, in the same step (s2a_state_reserve semantics): *held 1
     * when held, -1 when let in without a hold; a balance already spent by
     * what requests in flight hold picks nothing (S2A_PICK_BROKE). *held 0
     * otherwise. */
    apr_status_t (*pick)(s2a_store *st, const s2a_candidate *c, int n, apr_time_t now,
                         apr_uint64_t session, apr_time_t ttl, int wait_for_bound,
                         const s2a_balance *bal, int *picked, s2a_place *place, int *held);
    /* s2a_state_acquire semantics in *taken; *place when taken (1). */
    apr_status_t (*acquire)(s2a_store *st, apr_int64_t key, int limit, apr_time_t now, int *taken,
                            s2a_place *place);
    apr_status_t (*release)(s2a_store *st, const s2a_place *place);
    /* A place is held for a lease (S2A_STORE_LEASE) so that one whose process
     * died frees itself; long requests renew it. */
    apr_status_t (*renew)(s2a_store *st, s2a_place *place, apr_time_t now);
    /* s2a_state_rate semantics in *ok. */
    apr_status_t (*rate)(s2a_store *st, apr_int64_t key, int per_minute, apr_time_t now, int *ok,
                         apr_time_t *retry_at);
    apr_status_t (*set_rate_limited)(s2a_store *st, apr_int64_t key, apr_time_t until);
    apr_status_t (*set_overloaded)(s2a_store *st, apr_int64_t key, apr_time_t until);
    apr_status_t (*set_error)(s2a_store *st, apr_int64_t key, int error);
    apr_status_t (*clear)(s2a_store *st, apr_int64_t key, int error);
    apr_status_t (*set_window)(s2a_store *st, apr_int64_t key, int status, apr_time_t reset,
                               apr_time_t now);
    /* in_flight counts the places held now; the owner fields stay zero
     * outside the shm provider. */
    apr_status_t (*get)(s2a_store *st, apr_int64_t key, apr_time_t now, s2a_account_state *out);
    /* A lock across processes and hosts, held at most `ttl`: *got 1 when
     * taken (the caller owns it until unlock or the ttl ends). */
    apr_status_t (*lock)(s2a_store *st, const char *name, apr_time_t ttl, int *got);
    apr_status_t (*unlock)(s2a_store *st, const char *name);
    apr_status_t (*forget_balance)(s2a_store *st, apr_int64_t key);
    /* Holds `amount` of a balance outside a pick (s2a_state_reserve
     * semantics in *held: 1 held, 0 refused, -1 let in without a hold). */
    apr_status_t (*reserve)(s2a_store *st, const s2a_balance *bal, apr_int64_t amount,
                            apr_time_t now, int *held);
    /* The end of a request, in one go: gives back places[0..n-1] (those
     * with key 0 hold nothing) and settles holds[0..nholds-1] (those with
     * key 0 held nothing; s2a_state_finish semantics). */
    apr_status_t (*finish)(s2a_store *st, s2a_place *const *places, int n,
                           const s2a_settlement *holds, int nholds);
    /* Why the last failed operation of this process failed, for the log;
     * never holds a secret. */
    const char *(*last_error)(s2a_store *st, apr_pool_t *p);
} s2a_store_ops;

struct s2a_store {
    const s2a_store_ops *ops;
    void *impl;
};

/* How long a place holds without renewal. */
#define S2A_STORE_LEASE apr_time_from_sec(600)

/* The shm provider over a shared state laid out by s2a_state_init. */
s2a_store *s2a_store_shm(apr_pool_t *p, s2a_state *state);

/* Parses "redis://[[user]:password@]host[:port][/db]", or the same with
 * "rediss://" for TLS and an optional "?ca=/path/of/ca.pem" (the CA the
 * server's certificate is verified against; the system's store without
 * one). Returns NULL and sets *err (no secret in it) when the URL is not
 * one. */
typedef struct {
    const char *host;
    int port;
    int db;
    const char *user;     /* NULL: none */
    const char *password; /* NULL: none */
    int tls;              /* rediss:// */
    const char *ca_file;  /* NULL: the system's store */
} s2a_redis_url;
s2a_redis_url *s2a_redis_url_parse(apr_pool_t *p, const char *url, const char **err);

/* The redis provider: a per-process pool of connections (made in the
 * process that uses them). `local` (may be NULL) is this host's shared
 * state: its generation moves at once for this host's processes, while
 * other hosts see a change within S2A_REDIS_GENERATION_MSEC (at once when
 * asked for a fresh one). */
#define S2A_REDIS_GENERATION_MSEC 100
apr_status_t s2a_store_redis(apr_pool_t *p, const s2a_redis_url *url, s2a_state *local,
                             s2a_store **out);

#endif
