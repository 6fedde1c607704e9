/* Fast JSON scanning and splice editing over request and response bodies.
 *
 * Bodies are never parsed into a tree nor copied: the scanner checks the structure in one
 * pass, skipping string contents with memchr, and reports where the interesting top-level
 * values are. Edits are expressed as byte-range replacements of the original buffer.
 */
#ifndef S2A_JSON_H
#define S2A_JSON_H

#include <apr_pools.h>

/* Deepest accepted nesting of objects and arrays (the outer object counts as 1). */
#define S2A_JSON_MAX_DEPTH 512

typedef enum {
    S2A_JSON_NONE = 0,
    S2A_JSON_STRING,
    S2A_JSON_NUMBER,
    S2A_JSON_OBJECT,
    S2A_JSON_ARRAY,
    S2A_JSON_TRUE,
    S2A_JSON_FALSE,
    S2A_JSON_NULL
} s2a_json_type;

/* A value inside a buffer: p points at its first byte ('"' for strings, '{' for objects),
 * len covers the whole raw value (including quotes/brackets). type NONE when absent. */
typedef struct {
    const char *p;
    apr_size_t len;
    s2a_json_type type;
} s2a_json_span;

/* Check that buf[0..len) is exactly one JSON object (surrounding whitespace allowed) and
 * record the spans of the requested top-level keys: out[i] for keys[i], type NONE if absent,
 * the last occurrence winning when a key repeats. Keys written with escapes ("\u006dodel")
 * match their decoded form.
 * The outer object, its keys, its scalar values and the values of the requested keys (at
 * every depth) are fully validated. Any other object or array value of the outer object is
 * only delimited: its strings must be closed, its brackets balanced and matched and its
 * depth within the limit, but its escapes, numbers, literals, commas and colons are left to
 * whoever parses it later. Truncated input is therefore always refused, and a parser that
 * accepts the body sees the same outer object as the spans describe.
 * A raw control character inside a validated string is refused; UTF-8 validity is not
 * checked. Returns 0, or -1
 * with *err set to a short English reason (allocated from p when it carries an offset). */
int s2a_json_scan_object(apr_pool_t *p, const char *buf, apr_size_t len, const char *const *keys,
                         int nkeys, s2a_json_span *out, const char **err);

/* s2a_json_scan_object for a client's body: a requested key that appears twice at the top
 * is refused with -2 and *err naming it (parsers differ on which of its values counts, and
 * the gateway must read the one the upstream reads); and the values of keys[nchecked..nkeys)
 * are only delimited as
 * those of keys not asked for are: the caller reads them knowing only that their strings
 * are closed and their brackets balanced (s2a_json_object_get, s2a_json_array_next and
 * s2a_json_array_next_member stay within such a span and give up where it is malformed). */
int s2a_json_scan_object_some(apr_pool_t *p, const char *buf, apr_size_t len,
                              const char *const *keys, int nkeys, int nchecked, s2a_json_span *out,
                              const char **err);

/* What s2a_json_scan_object_noting reads on its way through one delimited value: when the
 * value of keys[key] is an array, each string value of `member` directly inside one of its
 * element objects is passed to note(ctx, value) (a member spelled with escapes counts; one
 * met twice in an element is passed twice). The scan delimits the array as it would
 * anyway, so a coding client's tools, most of its body, are walked once. */
typedef struct {
    int key;
    const char *member;
    void (*note)(void *ctx, const s2a_json_span *value);
    void *ctx;
} s2a_json_member_note;

/* s2a_json_scan_object_some, noting as `n` says (key >= nchecked). */
int s2a_json_scan_object_noting(apr_pool_t *p, const char *buf, apr_size_t len,
                                const char *const *keys, int nkeys, int nchecked,
                                const s2a_json_member_note *n, s2a_json_span *out,
                                const char **err);

/* Deepest level s2a_json_scan_object_values reads inside the value it reads. */
#define S2A_JSON_VALUES_DEPTH 3

/* What s2a_json_scan_object_values reads on its way through the value of one key it
 * checks: each value inside it, down to `depth` levels (1: the elements or members of
 * that value, 2: theirs too...), is passed to each(ctx, level, name, value) as it ends,
 * name being the member's name as a string span (quotes included), or NONE for an array's
 * element. A value ends before the value it is in. */
typedef struct {
    int key;
    int depth;
    void (*each)(void *ctx, int level, const s2a_json_span *name, const s2a_json_span *value);
    void *ctx;
} s2a_json_values;

/* s2a_json_scan_object_some with every value checked, reading as `v` says (its key < nkeys,
 * its depth at most S2A_JSON_VALUES_DEPTH): what the reader needs of that value comes in
 * the pass that checks it. */
int s2a_json_scan_object_values(apr_pool_t *p, const char *buf, apr_size_t len,
                                const char *const *keys, int nkeys, const s2a_json_values *v,
                                s2a_json_span *out, const char **err);

/* Find key directly inside the object span obj, which must be the value of a requested key
 * from the scanner or lie inside one (its syntax is trusted). The last occurrence wins.
 * Returns 1 and sets *out if found, else 0. */
int s2a_json_object_get(const s2a_json_span *obj, const char *key, s2a_json_span *out);

/* Whether the object span obj has a member named key (the walk stops at the first). */
int s2a_json_object_has(const s2a_json_span *obj, const char *key);

/* s2a_json_object_get for several keys in one pass over obj: out[i] the value of keys[i]
 * (the last occurrence; type NONE when absent). Returns how many of the keys were found. */
int s2a_json_object_members(const s2a_json_span *obj, const char *const *keys, int nkeys,
                            s2a_json_span *out);

/* Walks the elements of the array span arr (as produced by the scanner):
 * start with *pos = 0; each call sets *out to the next element and returns
 * 1, or returns 0 at the end. */
int s2a_json_array_next(const s2a_json_span *arr, apr_size_t *pos, s2a_json_span *out);

/* s2a_json_array_next, and for an element that is an object, *member the value of its member
 * `key` (the last occurrence; type NONE when absent), read in the same single pass over the
 * element. */
int s2a_json_array_next_member(const s2a_json_span *arr, apr_size_t *pos, const char *key,
                               s2a_json_span *out, s2a_json_span *member);

/* s2a_json_array_next_member for several keys: members[i] the value of keys[i] (the last
 * occurrence; NONE when absent or the element is not an object), read in the same pass. */
int s2a_json_array_next_members(const s2a_json_span *arr, apr_size_t *pos, const char *const *keys,
                                int nkeys, s2a_json_span *out, s2a_json_span *members);

/* The closing quote of the string whose content begins at s (after its opening quote),
 * its escapes and bytes checked as the scanner checks them; NULL where one is bad, a raw
 * control character is met, or the buffer ends first. */
const char *s2a_json_string_close(const char *s, const char *end);

/* Does the string span str (from the scanner or s2a_json_object_get) decode to s? Same
 * decoding as s2a_json_string_dup, without allocating. 0 if str is not a string. */
int s2a_json_string_equals(const s2a_json_span *str, const char *s);

/* Decode a string span to a NUL-terminated UTF-8 string: all escapes, \uXXXX with surrogate
 * pairs. NULL if the span is not a valid string, holds an unpaired surrogate or a NUL. */
char *s2a_json_string_dup(apr_pool_t *p, const s2a_json_span *str);

/* Contents of a JSON string literal (no quotes) for s, from p: quotes, backslashes and
   control characters escaped, valid UTF-8 kept, invalid bytes replaced by U+FFFD. */
char *s2a_json_escape(apr_pool_t *p, const char *s);

/* JSON string literal (with the quotes) for s, escaped as by s2a_json_escape. NULL if s
 * is NULL. */
char *s2a_json_quote(apr_pool_t *p, const char *s);

/* One replacement of buf[off..off+len) by text[0..text_len). len 0 inserts; text_len 0
 * deletes. */
typedef struct {
    apr_size_t off;
    apr_size_t len;
    const char *text;
    apr_size_t text_len;
} s2a_json_edit;

/* Apply edits (in any order; edits itself is left untouched) to buf and return the new
 * NUL-terminated buffer from p, its length without the NUL in *out_len. Insertions at the
 * same offset keep the caller's order and come before a replacement starting there. NULL if
 * two edits overlap or one lies outside buf. */
char *s2a_json_splice(apr_pool_t *p, const char *buf, apr_size_t len, s2a_json_edit *edits,
                      int nedits, apr_size_t *out_len);

/* buf is a possibly incomplete JSON object prefix (the first bytes of a response body).
 * Returns 1 with *off and *vlen set to the raw span (with quotes) of the first top-level
 * "model" string once it is complete, 0 if more bytes are needed to decide, -1 if it cannot
 * appear any more (not an object, the object closed without it, "model" is not a string,
 * malformed). */
int s2a_json_prefix_find_model(const char *buf, apr_size_t len, apr_size_t *off, apr_size_t *vlen);

#endif
