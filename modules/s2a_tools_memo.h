/* What an OpenAI door wrote for a client's tools array, remembered by the
 * array's exact bytes. Coding clients send the same tools, with their long
 * descriptions and schemas, on every turn of a session: a door that finds
 * the array here copies what it wrote before instead of checking and
 * translating every schema again. A translation depends on nothing but the
 * array's bytes and the door, so what is remembered is what a new reading
 * would write. Thread-safe: the threads of a process share one memo. */
#ifndef S2A_TOOLS_MEMO_H
#define S2A_TOOLS_MEMO_H

#include <apr_pools.h>

#include "s2a_buf.h"

typedef struct s2a_tools_memo s2a_tools_memo;

/* The doors whose translations a memo keeps apart. */
enum { S2A_TOOLS_MEMO_CHAT = 1, S2A_TOOLS_MEMO_RESPONSES };

/* A memo of `slots` translations, each of an array of at most `max_len`
 * bytes, from p; its buffers are freed with p. NULL when the memo's lock
 * cannot be made. */
s2a_tools_memo *s2a_tools_memo_make(apr_pool_t *p, int slots, apr_size_t max_len);

/* When door `door` wrote a translation of the array tools[0..len) before:
 * appends it to b, and what the door kept aside of it to `aside` (may be
 * NULL), and returns 1 with *count the tools it holds; else 0 and the
 * buffers are untouched. */
int s2a_tools_memo_get(s2a_tools_memo *m, int door, const char *tools, apr_size_t len, s2a_buf *b,
                       s2a_buf *aside, int *count);

/* Remembers out[0..out_len), holding `count` tools, as what door `door`
 * wrote for tools[0..len), with aside[0..aside_len) (what else the door
 * learnt of them; may be empty), in place of the least recently used.
 * Nothing when the array is longer than the memo's max_len or the memory
 * is not there. */
void s2a_tools_memo_put(s2a_tools_memo *m, int door, const char *tools, apr_size_t len,
                        const char *out, apr_size_t out_len, const char *aside,
                        apr_size_t aside_len, int count);

#endif
