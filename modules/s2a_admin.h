/* The admin API's resources, each described once: the fields a create or a
 * PATCH may set (JSON name, type, column, checks), the columns an answer
 * shows and the filters a listing takes. s2a_admin_check reads a body whole
 * against the description and gives the change it asks for, or why not,
 * before anything is written; the statements of a change are built here and
 * run by s2a_db_admin.c; the glue (mod_sub2api_admin.c) routes and answers. */
#ifndef S2A_ADMIN_H
#define S2A_ADMIN_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "s2a_state.h"

typedef enum {
    S2A_ADMIN_TEXT,       /* a string of 1 to max characters, no control characters */
    S2A_ADMIN_WORD,       /* one of `words` */
    S2A_ADMIN_INT,        /* an integer from min to max */
    S2A_ADMIN_BOOL,       /* true or false, stored 1 or 0 */
    S2A_ADMIN_MONEY,      /* <name>_nanousd (integer, wins) or <name>_usd (decimal), min to max */
    S2A_ADMIN_MULTIPLIER, /* a decimal above 0, stored in parts per million up to max */
    S2A_ADMIN_JSON,       /* judged by `check`, stored as `stored` writes it */
    S2A_ADMIN_REF,        /* the id of a row of `ref` */
    S2A_ADMIN_IDS         /* ids of rows of `ref`, kept in `link` */
} s2a_admin_type;

/* Where a field's value goes. */
typedef enum {
    S2A_ADMIN_COLUMN,      /* its column of the resource's table */
    S2A_ADMIN_LINKS,       /* (IDS) the rows of `link`, replacing those there were */
    S2A_ADMIN_BALANCE_SET, /* the user's balance, set through the balance log */
    S2A_ADMIN_BALANCE_ADD, /* the user's balance, added to through the balance log */
    S2A_ADMIN_ARGUMENT     /* read by whoever writes the change (actor, days, clear_cooldown) */
} s2a_admin_role;

#define S2A_ADMIN_CREATE 0x01    /* a create may set it */
#define S2A_ADMIN_PATCH 0x02     /* a PATCH may set it */
#define S2A_ADMIN_REQUIRED 0x04  /* a create must set it */
#define S2A_ADMIN_SECRET 0x08    /* sealed before it is stored (s2a_admin_seal) */
#define S2A_ADMIN_EMPTY 0x10     /* (TEXT) "" is a value too */
#define S2A_ADMIN_UNIQUE 0x20    /* no two rows have the same: `refused` otherwise */
#define S2A_ADMIN_GENERATED 0x40 /* never from a body: the writer puts it (s2a_admin_put) */

#define S2A_ADMIN_MONEY_MAX 1000000000000000000LL /* nano-USD: a billion USD */
#define S2A_ADMIN_TIME_MAX 253402300799LL         /* 9999-12-31T23:59:59Z */
#define S2A_ADMIN_ID_MAX 4611686018427387904LL    /* 2^62 */

/* Rows linking a row of the resource (`owner`) to rows of the field's
 * `ref` (`target`). */
typedef struct {
    const char *table;
    const char *owner;
    const char *target;
} s2a_admin_link;

typedef struct {
    const char *name; /* in JSON; MONEY: without _usd or _nanousd */
    s2a_admin_type type;
    s2a_admin_role role;
    const char *column; /* COLUMN; MONEY and MULTIPLIER: the column answers show in USD */
    unsigned flags;
    apr_int64_t min, max;     /* INT, MONEY, MULTIPLIER; TEXT: max characters */
    const char *const *words; /* WORD: NULL-terminated */
    const char *message;      /* a value missing or of the wrong kind: why it is refused */
    /* JSON: NULL when `v` (NULL: JSON null) is good, else why not; its column's text */
    const char *(*check)(apr_pool_t *p, json_object *v);
    const char *(*stored)(apr_pool_t *p, json_object *v);
    const char *ref;            /* REF, IDS: the table of the rows named */
    const s2a_admin_link *link; /* IDS */
    const char *refused;        /* UNIQUE taken, REF or IDS naming no row */
    int refused_status;
    /* an assignment the UPDATE makes too when the value is `also_when` */
    const char *also;
    const char *also_when;
} s2a_admin_field;

/* A query parameter of a listing: a number, or (text) a name of 1 to 127
 * characters, compared by `condition` (one placeholder). */
typedef struct {
    const char *param;
    const char *condition;
    int text;
} s2a_admin_filter;

typedef struct {
    const char *name; /* of the path: ".../users" */
    const char *noun; /* "No such user" */
    const char *table;
    const char *columns;             /* the SELECT list of an answer */
    const char *types;               /* their s2a_db_rows types */
    const char *order;               /* " ORDER BY ..." */
    int paged;                       /* takes limit (1 to 10000, default 100) */
    int stamped;                     /* created_at is set to the time of the create */
    const s2a_admin_field *fields;   /* ends with name NULL */
    const s2a_admin_filter *filters; /* ends with param NULL; NULL: none */
    /* what an answer's row shows besides its columns (s2a_admin_shape) */
    void (*shape)(apr_pool_t *p, json_object *row, apr_int64_t now);
    /* the fields judged together, once each is good alone: NULL, or why
     * the body is refused; may be NULL */
    const char *(*judge)(apr_pool_t *p, json_object *body, int create);
} s2a_admin_resource;

extern const s2a_admin_resource s2a_admin_users, s2a_admin_groups, s2a_admin_keys,
    s2a_admin_accounts, s2a_admin_subscriptions, s2a_admin_redeem_codes, s2a_admin_usage,
    s2a_admin_balance_log;

/* One field's value in a change. */
typedef struct {
    const s2a_admin_field *field;
    const char *text;        /* as a statement argument */
    apr_int64_t number;      /* INT, BOOL, MONEY, MULTIPLIER, REF */
    apr_array_header_t *ids; /* IDS: apr_int64_t, each once, in the body's order */
} s2a_admin_value;

/* What a create or a PATCH asks for, every value checked. */
typedef struct {
    const s2a_admin_resource *res;
    int create;
    apr_array_header_t *values; /* s2a_admin_value, in the order of the fields */
} s2a_admin_change;

/* Checks `body` (NULL: {}) whole against the fields of `res` a create (or a
 * PATCH) may set: NULL with *out, else the message of a 400. Names the
 * resource does not know are ignored. */
const char *s2a_admin_check(apr_pool_t *p, const s2a_admin_resource *res, json_object *body,
                            int create, s2a_admin_change *out);
/* The value of field `name` in the change; NULL when it sets none. */
const s2a_admin_value *s2a_admin_value_of(const s2a_admin_change *ch, const char *name);
/* Sets GENERATED field `name` to `text` (a key's hash). */
void s2a_admin_put(s2a_admin_change *ch, const char *name, const char *text);
/* What a SECRET value is stored as: `plain` sealed for row `id`. */
typedef struct {
    const char *(*seal)(void *baton, apr_int64_t id, const char *plain);
    void *baton;
} s2a_admin_sealer;

/* Replaces the text of each SECRET value by what the sealer makes of it
 * for row `id`. */
void s2a_admin_seal(s2a_admin_change *ch, apr_int64_t id, const s2a_admin_sealer *sealer);

/* A create's values split: `open` all of them with each SECRET one
 * emptied (the row is inserted so, before it has an id to seal for), and
 * `secret` the SECRET ones alone (written sealed once it has). 1 when
 * there are SECRET values. */
int s2a_admin_split_secrets(apr_pool_t *p, const s2a_admin_change *ch, s2a_admin_change *open,
                            s2a_admin_change *secret);

/* A statement with its arguments (apr_dbd typed placeholders). */
typedef struct {
    const char *sql;
    const char **args;
    int nargs;
} s2a_admin_stmt;

/* The INSERT of a create's columns (created_at `now` when stamped). */
void s2a_admin_insert(apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t now,
                      s2a_admin_stmt *out);
/* The one UPDATE of row `id` setting every column the change sets; 0 (and
 * no statement) when it sets none. */
int s2a_admin_update(apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t id,
                     s2a_admin_stmt *out);

/* A listing's filters, as the query parameters ask: a WHERE clause (or "")
 * with its arguments, and the page's rows (paged listings; else 0). */
typedef struct {
    const char *where;
    const char **args;
    int nargs;
    apr_int64_t limit;
} s2a_admin_query;

/* NULL with *out, or the message of a 400. `params` may be NULL. */
const char *s2a_admin_query_parse(apr_pool_t *p, const s2a_admin_resource *res, apr_table_t *params,
                                  s2a_admin_query *out);

/* GET .../usage/summary: sums of the usage rows per `by` (and `split`). */
typedef struct {
    const char *by;
    const char *split; /* NULL: none */
    s2a_admin_stmt stmt;
    const char *types;
} s2a_admin_summary;

const char *s2a_admin_summary_parse(apr_pool_t *p, apr_table_t *params, s2a_admin_summary *out);
/* Names each row's keys after its grouping (`day` also gets its `date`). */
void s2a_admin_summary_shape(apr_pool_t *p, const s2a_admin_summary *s, json_object *rows);

/* An answer's row as the API shows it: its money columns also in USD
 * (`<name>_usd`), its multiplier as a decimal, and the resource's own
 * shape. */
void s2a_admin_shape(apr_pool_t *p, const s2a_admin_resource *res, json_object *row,
                     apr_int64_t now);

/* The `state` of an account's answer (`row`): what the store keeps of it,
 * `st`, at `now`. */
json_object *s2a_admin_account_state(json_object *row, const s2a_account_state *st, apr_time_t now);

/* What POST .../redeem_codes asks for: `count` codes worth `amount` of
 * balance, or `days` of group `group_id`'s subscription. */
typedef struct {
    int count;
    int subscription;
    apr_int64_t amount;
    apr_int64_t group_id;
    apr_int64_t days;
} s2a_admin_codes;

/* NULL with *out, or the message of a 400. */
const char *s2a_admin_codes_ask(const s2a_admin_change *ch, s2a_admin_codes *out);

#endif
