/* The memo (s2a_memo.h) driven by puts, gets and clears, against a model
 * that remembers everything: the memo answers only with the last value
 * put for a digest since the last clear; it still knows every digest
 * fewer than four other digests were put after (only those can have
 * pushed it out of its set of four); and it never knows more digests than
 * its capacity.
 *
 * Input: the capacity, then operations of two bytes: what (put, get,
 * clear) and which digest. */
#include <string.h>

#include "fuzz.h"
#include "s2a_memo.h"

#define KEYS 256

typedef struct {
    int known;          /* put since the last clear */
    apr_int64_t value;  /* the last value put */
    unsigned long when; /* the number of the put */
} model_t;

/* Digest k: neighbours share their first bytes (and so often their set)
 * and differ in the last one. */
static void digest_of(int k, unsigned char *d)
{
    int i;
    for (i = 0; i < S2A_MEMO_DIGEST; i++) {
        d[i] = (unsigned char)(i < 8 ? (k >> 2) * 37 + i : k ^ i);
    }
}

/* Distinct digests put after put number `when`. */
static int put_after(const model_t *m, unsigned long when)
{
    int k, n = 0;
    for (k = 0; k < KEYS; k++) {
        n += m[k].known && m[k].when > when;
    }
    return n;
}

static void check_get(const s2a_memo *memo, const model_t *m, int k)
{
    unsigned char d[S2A_MEMO_DIGEST];
    apr_int64_t v = -1;
    int found;

    digest_of(k, d);
    found = s2a_memo_get(memo, d, &v);
    FUZZ_CHECK(found == 0 || found == 1);
    if (found) {
        FUZZ_CHECK(m[k].known && v == m[k].value);
    } else if (m[k].known) {
        FUZZ_CHECK(put_after(m, m[k].when) >= 4);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};
    int capacity = (int)(signed char)fuzz_u8(&in), rounded, k, remembered;
    static model_t model[KEYS];
    unsigned char d[S2A_MEMO_DIGEST];
    unsigned long puts = 0;
    s2a_memo *memo = s2a_memo_make(p, capacity);
    apr_int64_t v;

    rounded = capacity > 4 ? (capacity + 3) / 4 * 4 : 4;
    memset(model, 0, sizeof(model));
    while (in.n) {
        uint8_t op = fuzz_u8(&in);
        k = fuzz_u8(&in);
        switch (op % 8) {
        case 0:
            s2a_memo_clear(memo);
            memset(model, 0, sizeof(model));
            break;
        case 1:
        case 2:
        case 3:
            digest_of(k, d);
            v = (apr_int64_t)op << 40 | (apr_int64_t)puts;
            s2a_memo_put(memo, d, v);
            model[k].known = 1;
            model[k].value = v;
            model[k].when = ++puts;
            FUZZ_CHECK(s2a_memo_get(memo, d, &v) && v == model[k].value);
            break;
        default:
            check_get(memo, model, k);
            break;
        }
    }
    remembered = 0;
    for (k = 0; k < KEYS; k++) {
        check_get(memo, model, k);
        digest_of(k, d);
        remembered += s2a_memo_get(memo, d, &v);
    }
    FUZZ_CHECK(remembered <= rounded);
    apr_pool_destroy(p);
    return 0;
}
