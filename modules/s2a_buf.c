/* A growable byte buffer: see s2a_buf.h. */
#include <string.h>

#include "s2a_buf.h"

void s2a_buf_init(s2a_buf *b, apr_pool_t *p, apr_size_t expect)
{
    b->pool = p;
    b->data = NULL;
    b->len = 0;
    b->cap = expect;
    b->limit = 0;
}

void s2a_buf_limit(s2a_buf *b, apr_size_t limit)
{
    b->limit = limit;
}

void s2a_buf_append(s2a_buf *b, const char *data, apr_size_t n)
{
    if (!b->data || b->len + n + 1 > b->cap) {
        apr_size_t cap = b->cap > 64 ? b->cap : 64;
        char *grown;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        if (b->limit && cap > b->limit && b->limit >= b->len + n + 1) {
            cap = b->limit;
        }
        grown = apr_palloc(b->pool, cap);
        if (b->len) {
            memcpy(grown, b->data, b->len);
        }
        b->data = grown;
        b->cap = cap;
    }
    if (n) {
        memcpy(b->data + b->len, data, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void s2a_buf_reset(s2a_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}
