/* One process's connections to the Redis server of the redis store
 * (s2a_store_redis.c), and the commands sent over them. The keys, the
 * scripts and what they mean are the store's (docs/store.md); this part
 * knows how to reach the server and run a command there:
 *
 * - connections are pooled per process and made as needed by the threads
 *   that run commands (at most 64, idle ones closed after 60 s);
 *   connecting times out after 250 ms; waiting for a free connection, and
 *   a command, after 1 s;
 * - after a failed connect every command fails at once for 0.5 s (the
 *   retry window), so that an outage costs a request no time;
 * - a connection that breaks drops those made before it (the server
 *   probably went away), and the command is sent once more on a new one;
 * - scripts, named by their index, run by EVALSHA; every new connection
 *   loads them, and a server that lost them (NOSCRIPT) gets them again;
 * - a heartbeat thread tells the server that this process lives;
 * - rediss:// connections are TLS, carried by s2a_tls_pipe.h (hiredis 0.14
 *   has none of its own), made within 2 s (the handshake included); the
 *   process must ignore SIGPIPE, as httpd's children do.
 *
 * Nothing here logs: a failure is returned, and why it failed is kept for
 * s2a_redis_conn_last_error. The URL type and its parser,
 * s2a_redis_url_parse, are declared in s2a_store.h. */
#ifndef S2A_REDIS_CONN_H
#define S2A_REDIS_CONN_H

#include <hiredis/hiredis.h>

#include <apr_pools.h>

#include "s2a_store.h"

typedef struct s2a_redis_conn s2a_redis_conn;

/* Opens the connections of this process to `url` (which, with its strings,
 * must live as long as `p`); `p` owns them: its destruction stops the
 * heartbeat, then closes every connection. Make it in the process that
 * uses it (a connection is never shared across a fork).
 *
 * `scripts` are the Lua sources s2a_redis_cmd_script runs by index, in an
 * array that outlives `p`. The heartbeat sets the key `alive_prefix`
 * followed by s2a_redis_conn_instance() once a second, to last 3 s: the key
 * is gone 3 s after the last beat of a process that died. The first beat
 * is sent before this returns, so the process is alive before it holds
 * anything; that beat failing (the server away) is no failure: the thread
 * beats again a second later.
 *
 * Returns APR_SUCCESS with *out set, or what APR returned when a mutex, a
 * thread or random bytes could not be had. */
apr_status_t s2a_redis_conn_open(apr_pool_t *p, const s2a_redis_url *url,
                                 const char *const *scripts, int nscripts, const char *alive_prefix,
                                 s2a_redis_conn **out);

/* 16 random hex digits naming this process in the server: the heartbeat's
 * key ends with them, and the caller marks what it holds (places, locks)
 * with them, so that what a dead process held can be told. Lives as long as
 * the connections. */
const char *s2a_redis_conn_instance(const s2a_redis_conn *rc);

/* 1 inside the retry window after a failed connect: a command would fail at
 * once. For a caller that would rather keep a value it has than fail. */
int s2a_redis_conn_down(s2a_redis_conn *rc);

/* Records why an operation failed ("host:port: what[: detail]"), as the
 * functions here do for theirs; `detail` may be NULL. Neither may hold a
 * secret: the text goes to the log. */
void s2a_redis_conn_set_error(s2a_redis_conn *rc, const char *what, const char *detail);

/* Why the last failed operation of this process failed, copied into `p`;
 * never holds the password. Any thread may ask. */
const char *s2a_redis_conn_last_error(s2a_redis_conn *rc, apr_pool_t *p);

/* The words of one command. Numbers are formatted into room the command
 * owns (malloc'd, given back by s2a_redis_cmd_free), so that building one
 * takes nothing from a pool: a waiting request asks every 50 ms. Callers
 * read `resent`; the other fields are the builder's. */
typedef struct {
    int argc;
    int max;      /* room for this many words */
    int overflow; /* 1 once a word found no room: the command is refused */
    int script;   /* an EVALSHA of this script, -1 for other commands */
    int resent;   /* 1 after s2a_redis_run sent it twice: the first may have run */
    const char **argv;
    size_t *len;
    char *buf;
} s2a_redis_cmd;

/* A word s2a_redis_cmd_fmt writes is cut at this many bytes. */
#define S2A_REDIS_WORD_MAX 63

/* Starts a command of at most `max` words, its name included. A word past
 * `max` is dropped and the command then refused when run, so that a
 * miscount is an error, never a write past the room. Returns 0 when out of memory (the
 * error recorded; nothing to free), else 1. */
int s2a_redis_cmd_init(s2a_redis_conn *rc, s2a_redis_cmd *cmd, int max);
/* Starts EVALSHA of scripts[script] with `nkeys` keys, with room for `max`
 * keys and arguments; as s2a_redis_cmd_init. The script's SHA1 is filled in
 * when the command runs. */
int s2a_redis_cmd_script(s2a_redis_conn *rc, s2a_redis_cmd *cmd, int script, int nkeys, int max);
/* Adds `s` itself, not a copy: it must live until the command is freed. */
void s2a_redis_cmd_str(s2a_redis_cmd *cmd, const char *s);
/* Adds a word formatted as by printf, cut at S2A_REDIS_WORD_MAX bytes. */
void s2a_redis_cmd_fmt(s2a_redis_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void s2a_redis_cmd_free(s2a_redis_cmd *cmd);

/* Runs `cmd` on a pooled connection: once, or a second time as the top of
 * this file says (a broken connection, a lost script). Returns the reply,
 * the caller's to free with freeReplyObject; NULL (the reason recorded)
 * inside the retry window, when no connection could be made or kept, or
 * when the server answered with an error. `cmd` stays the caller's. */
redisReply *s2a_redis_run(s2a_redis_conn *rc, s2a_redis_cmd *cmd);

/* Runs `cmd` and frees it, whatever happens. APR_SUCCESS when the reply is
 * a number: an integer, a status or a string read as one, or nil read as 0,
 * in *out (may be NULL). APR_EGENERAL when s2a_redis_run failed or the reply
 * is of another kind (recorded). */
apr_status_t s2a_redis_run_int(s2a_redis_conn *rc, s2a_redis_cmd *cmd, long long *out);

#endif
