/* One attempt of a request: see s2a_attempt.h. */
#include "s2a_attempt.h"

s2a_attempt *s2a_attempt_make(apr_pool_t *p, const s2a_attempt *last)
{
    s2a_attempt *a = apr_pcalloc(p, sizeof(*a));
    a->number = last ? last->number + 1 : 1;
    return a;
}
