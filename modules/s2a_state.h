/* Account state shared by all child processes of one httpd: when each account
 * was last used, how many requests it carries, and why it may not serve.
 * State is keyed by the account's credential (s2a_state_key): a rate limit
 * belongs to the credential, whichever virtual host or database names it. */
#ifndef S2A_STATE_H
#define S2A_STATE_H

#include <apr_pools.h>
#include <apr_shm.h>
#include <apr_time.h>

#include "s2a_subscription.h"

typedef struct s2a_state s2a_state;

/* Which processes hold a slot's requests in flight, so that the places a
 * crashed process held can be given back. */
#define S2A_STATE_OWNERS 16

typedef struct {
    apr_int64_t key;
    apr_time_t last_used;
    apr_time_t rate_limited_until;
    apr_time_t overloaded_until;
    apr_int32_t in_flight;
    apr_int32_t error;         /* 1 while the account is in error state */
    apr_int32_t window_status; /* 5-hour window: S2A_WINDOW_* */
    apr_time_t window_reset;   /* when the 5-hour window resets, 0 unknown */
    apr_int64_t rate_minute;   /* the minute rate_count counts */
    apr_int32_t rate_count;
    apr_int32_t owner_pid[S2A_STATE_OWNERS]; /* in_flight, split by process */
    apr_int32_t owner_count[S2A_STATE_OWNERS];
    apr_time_t reclaimed_at; /* last look for dead owners */
    apr_time_t locked_until; /* s2a_state_lock */
    /* a user's balance (nano-USD) as charged so far, and what requests in
     * flight hold of it; see s2a_state_reserve */
    apr_int64_t balance;
    apr_int64_t held;
    apr_time_t balance_used; /* 0: balance unknown */
} s2a_account_state;

#define S2A_WINDOW_UNKNOWN 0
#define S2A_WINDOW_ALLOWED 1
#define S2A_WINDOW_WARNING 2
#define S2A_WINDOW_REJECTED 3

typedef struct {
    apr_int64_t key;
    int priority;
    int concurrency;  /* requests it may carry at once; 0: no limit */
    apr_int64_t hold; /* of the user's balance, should it serve (see s2a_store pick) */
} s2a_candidate;

/* The state key of a credential: 63 bits of its SHA-256, never 0. */
apr_int64_t s2a_state_key(const char *credential);
/* Where a user's limits and balance live: its id within its database, told
 * apart from other databases sharing the store by that database's pseudonym
 * key (`secret`). */
apr_int64_t s2a_state_key_user(apr_pool_t *p, const char *secret, apr_int64_t user_id);
/* Where a spending limit is held from (as a balance, see
 * s2a_state_reserve, with what is left as what the database knows): a
 * subscription's allowance (`kind` "allowance", `id` the subscription) or
 * a key's budget ("budget", the key). It names the total limit, the
 * windows' limits and each window's run at `now` (Unix seconds): a window
 * past its end, or a changed limit, brings the figure afresh, while the
 * row that starts a window leaves its name, and what requests hold of it,
 * as they were. */
apr_int64_t s2a_state_key_spend(apr_pool_t *p, const char *secret, const char *kind, apr_int64_t id,
                                apr_int64_t total_limit, const s2a_windows *w, apr_int64_t now);
/* Where an account's state lives: its credential's key; for an account with
 * a refresh token (its credential changes), its id within its database.
 * `credential` may be NULL for such accounts, `secret` NULL for others. */
apr_int64_t s2a_state_key_account(apr_pool_t *p, const char *secret, apr_int64_t id,
                                  int refreshable, const char *credential);

/* Bytes of shared memory needed for `nslots` accounts and `nbindings`
 * conversations bound to accounts. */
apr_size_t s2a_state_size(int nslots, int nbindings);
/* Lays the state out over `base`: shared memory of s2a_state_size(), zeroed
 * when new; one laid out before keeps its contents and its lock (a graceful
 * restart). NULL when its lock cannot be made. */
/* 1 when the `size` bytes at `base` hold a state this build laid out for
 * these sizes (else a restart must start new memory). */
int s2a_state_fits(const void *base, apr_size_t size, int nslots, int nbindings);
s2a_state *s2a_state_init(apr_pool_t *p, void *base, int nslots, int nbindings);

/* Counter bumped whenever cached users, keys or accounts must be reloaded. */
apr_uint32_t s2a_state_generation(s2a_state *st);
void s2a_state_bump(s2a_state *st);

/* The pick: among the schedulable candidates with room (in flight below
 * their concurrency) the one with the lowest priority number, then the
 * lowest load (in flight / concurrency), then the least recently used; it
 * is marked used and counted in flight, all under one lock so concurrent
 * requests spread (the policy: docs/store.md). It returns its index;
 * S2A_PICK_BUSY when schedulable candidates exist but all are full;
 * S2A_PICK_NONE when none can serve.
 * For a conversation (`session`, 0 for none; `ttl` 0: no binding) the
 * account it is bound to serves it while that account is schedulable and
 * among the candidates; the binding is renewed for `ttl`. When the bound
 * account is full, S2A_PICK_BUSY if `wait_for_bound`, else another account
 * is picked. Whatever is picked becomes the binding. A full table drops the
 * binding that expires first.
 * With `balance_key` (0: none) the pick holds from a balance in the same
 * step: a balance already spent by what requests in flight hold picks
 * nothing (S2A_PICK_BROKE); else the picked candidate's `hold` of it is
 * reserved (s2a_state_reserve semantics in *held, 0 without a balance),
 * and a pick the hold refuses is given back (S2A_PICK_BROKE). */
#define S2A_PICK_NONE (-1)
#define S2A_PICK_BUSY (-2)
/* (stores only) the user's balance is spent: nothing picked */
#define S2A_PICK_BROKE (-3)
int s2a_state_pick_holding(s2a_state *st, const s2a_candidate *c, int n, apr_time_t now,
                           apr_uint64_t session, apr_time_t ttl, int wait_for_bound,
                           apr_int64_t balance_key, apr_int64_t known, int *held);
/* The state key a conversation is bound to, 0 if none. */
apr_int64_t s2a_state_bound(s2a_state *st, apr_uint64_t session, apr_time_t now);

void s2a_state_release(s2a_state *st, apr_int64_t key);

/* The requests of a user or a key (any state key), counted in a table of
 * their own (four times Sub2apiMaxAccounts): takes one of `limit` places
 * (0: no limit). 1 taken (give it back with s2a_state_release_limit), 0 all
 * taken, -1 let through uncounted (table full, or no limit). */
int s2a_state_acquire(s2a_state *st, apr_int64_t key, int limit);
void s2a_state_release_limit(s2a_state *st, apr_int64_t key);
/* Counts a request against `per_minute` (0: no limit) in the current clock
 * minute; 0 when the minute is used up, with *retry_at its end. A full
 * table lets requests through. */
int s2a_state_rate(s2a_state *st, apr_int64_t key, int per_minute, apr_time_t now,
                   apr_time_t *retry_at);

void s2a_state_set_rate_limited(s2a_state *st, apr_int64_t key, apr_time_t until);
void s2a_state_set_overloaded(s2a_state *st, apr_int64_t key, apr_time_t until);
void s2a_state_set_error(s2a_state *st, apr_int64_t key, int error);
/* Ends the rests after 429 and 529 and, with `error`, the error state (an
 * operator re-enabled the account). */
void s2a_state_clear(s2a_state *st, apr_int64_t key, int error);
/* Records the upstream's 5-hour window; a rejected window rests the
 * account until it resets. */
void s2a_state_set_window(s2a_state *st, apr_int64_t key, int status, apr_time_t reset,
                          apr_time_t now);
/* A lock named by a state key, in the limits table, held until `now + ttl`
 * or s2a_state_unlock: 1 taken, 0 held by someone else (or no room). */
int s2a_state_lock(s2a_state *st, apr_int64_t key, apr_time_t ttl, apr_time_t now);
void s2a_state_unlock(s2a_state *st, apr_int64_t key);
/* Until when the lock under `key` is held; 0 when it is free at `now`. */
apr_time_t s2a_state_locked_until(s2a_state *st, apr_int64_t key, apr_time_t now);
/* 0 when no lock at all can be held at `now` (every s2a_state_locked_until
 * answers 0), known without the state's lock: the check a request makes
 * before it names what it looks up. */
int s2a_state_any_lock(s2a_state *st, apr_time_t now);
/* A user's balance while requests spend it (in the limits table, keyed by
 * the user's state key). The first request after S2A_BALANCE_IDLE without
 * any (or ever) brings `known`, the balance the database had; from then on
 * the shared figure is charged directly, ahead of the database. A request
 * is let in while the balance minus what requests in flight hold is above
 * zero, and then holds `amount` (its estimated cost) until it settles: so
 * many requests at once overdraw a balance by at most about one request's
 * cost. Holds are forgotten with the balance after S2A_BALANCE_IDLE (those
 * of a crashed process). Returns 1 let in and held, 0 refused, -1 let in
 * uncounted (no room: `known` decides). */
#define S2A_BALANCE_IDLE apr_time_from_sec(600)
int s2a_state_reserve(s2a_state *st, apr_int64_t key, apr_int64_t known, apr_int64_t amount,
                      apr_time_t now);
/* A hold settled at a request's end: `held` of the balance under `key`
 * comes off what requests in flight hold, and `spent` off the balance.
 * With `open` (and nothing held) the balance is one the request did not
 * hold from, the next run of a window that ended while it ran: one not
 * known yet, or idle, starts at `known` first, as s2a_state_reserve would
 * start it. */
typedef struct {
    apr_int64_t key;
    apr_int64_t held;
    apr_int64_t spent;
    int open;
    apr_int64_t known;
} s2a_settlement;

/* The settlement of a request that held `held` from the spending figure
 * s2a_state_key_spend named `held_key` when it started, and spent
 * `spent`: named again at its end (`now`, Unix seconds) with the same
 * arguments, the figure is the same and out[0] settles it whole; or a
 * window ended while it ran, its row starts the window's next run in the
 * database, and out[0] only takes the hold off while out[1] opens the next
 * run's figure at `left_now` (what the windows allow at `now`) and takes
 * the spending off it. Returns how many of out[] it wrote. */
int s2a_state_spend_settlement(apr_pool_t *p, const char *secret, const char *kind, apr_int64_t id,
                               apr_int64_t total_limit, const s2a_windows *w, apr_int64_t left_now,
                               apr_int64_t now, apr_int64_t held_key, apr_int64_t held,
                               apr_int64_t spent, s2a_settlement out[2]);

/* A place a request holds: an account's (`account` 1, the pick) or
 * a key's or user's (s2a_state_acquire); key 0 holds nothing. */
typedef struct {
    apr_int64_t key;
    int account;
} s2a_state_place;
/* A request's end under one lock: places[0..n-1] given back, then
 * holds[0..nholds-1] settled (an open one at `now`; key 0 held nothing). */
void s2a_state_finish(s2a_state *st, const s2a_state_place *places, int n,
                      const s2a_settlement *holds, int nholds, apr_time_t now);
/* The database's balance changed outside the requests (an operator): the
 * next request brings it again. */
void s2a_state_forget_balance(s2a_state *st, apr_int64_t key);

/* Copy of an account's state; zeroed if never seen. */
void s2a_state_get(s2a_state *st, apr_int64_t key, s2a_account_state *out);

#endif
