/* Comparing two readings of a Messages body (s2a_request.h), for the unit
 * tests and the fuzzing harness. */
#ifndef S2A_TEST_BODY_H
#define S2A_TEST_BODY_H

#include "s2a_request.h"

/* Whether two readings of a body found the same fields. */
static int same_fields(const s2a_body_fields *a, const s2a_body_fields *b)
{
    const s2a_json_span *x[] = {&a->model,  &a->messages,   &a->stream, &a->metadata,
                                &a->system, &a->max_tokens, &a->tools};
    const s2a_json_span *y[] = {&b->model,  &b->messages,   &b->stream, &b->metadata,
                                &b->system, &b->max_tokens, &b->tools};
    size_t i;
    for (i = 0; i < sizeof(x) / sizeof(x[0]); i++) {
        if (x[i]->type != y[i]->type || x[i]->len != y[i]->len || x[i]->p != y[i]->p) {
            return 0;
        }
    }
    return 1;
}

#endif
