/* A lock in shared memory for the account pool's state: taken several
 * times per request, for well under a microsecond each time, by every
 * thread of every child.
 *
 * Not APR's process mutex: where it is a pthread mutex, APR makes it
 * priority-inheriting, and the kernel hands such a mutex over to a waiter
 * that has yet to be scheduled. A short section taken that often then turns
 * into a convoy: every thread sleeps behind one that is not running
 * (measured: 1.7 contended system calls per request, a tenth of the CPU
 * idle). This one is robust (a child that dies holding it does not stop the
 * others) but not priority-inheriting, and spins a little before it sleeps. */
#ifndef S2A_LOCK_H
#define S2A_LOCK_H

#include <pthread.h>

#include <apr_errno.h>

typedef struct {
    pthread_mutex_t mutex;
} s2a_lock;

/* Once, on shared memory every process that takes it maps. */
apr_status_t s2a_lock_init(s2a_lock *l);

/* 1 when taken (also from a holder that died: the data it guards may show
 * a change half made), 0 when it cannot be. */
int s2a_lock_take(s2a_lock *l);
void s2a_lock_give(s2a_lock *l);

#endif
