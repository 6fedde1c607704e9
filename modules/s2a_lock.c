#include <errno.h>

#include "s2a_lock.h"

/* Tries before sleeping: a holder running on another core gives the lock
 * back within this, one preempted does not. */
#define S2A_LOCK_SPINS 100

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

apr_status_t s2a_lock_init(s2a_lock *l)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc) {
        return rc;
    }
    if (!(rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) &&
        !(rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST))) {
        rc = pthread_mutex_init(&l->mutex, &a);
    }
    pthread_mutexattr_destroy(&a);
    return rc;
}

int s2a_lock_take(s2a_lock *l)
{
    int i, rc = EBUSY;
    for (i = 0; i < S2A_LOCK_SPINS && rc == EBUSY; i++) {
        if ((rc = pthread_mutex_trylock(&l->mutex)) == EBUSY) {
            relax();
        }
    }
    if (rc == EBUSY) {
        rc = pthread_mutex_lock(&l->mutex);
    }
    if (rc == EOWNERDEAD && (rc = pthread_mutex_consistent(&l->mutex)) != 0) {
        /* given back unrecovered: every later take fails rather than waits */
        pthread_mutex_unlock(&l->mutex);
    }
    return rc == 0;
}

void s2a_lock_give(s2a_lock *l)
{
    pthread_mutex_unlock(&l->mutex);
}
