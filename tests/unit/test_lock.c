/* The shared state's lock: exclusive across threads and processes, and not
 * lost with a process that dies holding it. */
#include <unistd.h>

#include <apr_general.h>
#include <apr_shm.h>
#include <apr_thread_proc.h>

#include "s2a_lock.h"
#include "s2a_test.h"

#define THREADS 8
#define ROUNDS 20000

typedef struct {
    s2a_lock lock;
    volatile long count; /* read and written in two steps: only the lock keeps it exact */
    int refused;
} shared_t;

static void *APR_THREAD_FUNC add(apr_thread_t *t, void *data)
{
    shared_t *sh = data;
    int i;
    for (i = 0; i < ROUNDS; i++) {
        long v;
        if (!s2a_lock_take(&sh->lock)) {
            sh->refused++;
            continue;
        }
        v = sh->count;
        if (i % 64 == 0) {
            apr_thread_yield(); /* let another thread find it held */
        }
        sh->count = v + 1;
        s2a_lock_give(&sh->lock);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static shared_t *make_shared(apr_pool_t *p)
{
    apr_shm_t *shm;
    shared_t *sh;
    if (apr_shm_create(&shm, sizeof(shared_t), NULL, p) != APR_SUCCESS) {
        return NULL;
    }
    sh = apr_shm_baseaddr_get(shm);
    memset(sh, 0, sizeof(*sh));
    return s2a_lock_init(&sh->lock) == APR_SUCCESS ? sh : NULL;
}

static void test_threads_and_processes_exclude_each_other(apr_pool_t *p)
{
    shared_t *sh = make_shared(p);
    apr_thread_t *t[THREADS];
    apr_proc_t proc;
    apr_status_t rv;
    apr_exit_why_e why;
    int i, code = -1, forked;
    S2A_CHECK(sh != NULL);
    if (!sh) {
        return;
    }
    forked = apr_proc_fork(&proc, p);
    for (i = 0; i < THREADS / 2; i++) {
        apr_thread_create(&t[i], NULL, add, sh, p);
    }
    for (i = 0; i < THREADS / 2; i++) {
        apr_thread_join(&rv, t[i]);
    }
    if (forked == APR_INCHILD) {
        _exit(0);
    }
    apr_proc_wait(&proc, &code, &why, APR_WAIT);
    S2A_CHECK_INT(code, 0);
    S2A_CHECK_INT(sh->refused, 0);
    S2A_CHECK_INT(sh->count, 2L * (THREADS / 2) * ROUNDS);
}

static void test_holder_that_dies_does_not_keep_it(apr_pool_t *p)
{
    shared_t *sh = make_shared(p);
    apr_proc_t proc;
    apr_exit_why_e why;
    int code = -1;
    S2A_CHECK(sh != NULL);
    if (!sh) {
        return;
    }
    if (apr_proc_fork(&proc, p) == APR_INCHILD) {
        _exit(s2a_lock_take(&sh->lock) ? 0 : 1); /* never given back */
    }
    apr_proc_wait(&proc, &code, &why, APR_WAIT);
    S2A_CHECK_INT(code, 0);
    S2A_CHECK_INT(s2a_lock_take(&sh->lock), 1);
    s2a_lock_give(&sh->lock);
    /* and it works as before after that */
    S2A_CHECK_INT(s2a_lock_take(&sh->lock), 1);
    s2a_lock_give(&sh->lock);
}

int main(void)
{
    apr_pool_t *p;
    apr_initialize();
    apr_pool_create(&p, NULL);
    test_threads_and_processes_exclude_each_other(p);
    test_holder_that_dies_does_not_keep_it(p);
    apr_pool_destroy(p);
    apr_terminate();
    return S2A_TEST_SUMMARY("test_lock");
}
