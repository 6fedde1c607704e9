/* The admin API's rows, as s2a_admin.h describes them: listings and single
 * rows with their links, a create or a PATCH written whole in one
 * transaction (balance changes through s2a_db_billing.c), the usage
 * summary and new redeem codes. */
#ifndef S2A_DB_ADMIN_H
#define S2A_DB_ADMIN_H

#include "s2a_admin.h"
#include "s2a_db.h"

/* Why a write did not happen. */
typedef struct {
    int status;          /* refused: 404 no such row, or the field's refused_status */
    const char *message; /* refused: the answer's message */
    const char *err;     /* a database error, for the log */
} s2a_db_admin_fail;

/* The rows of a listing, filtered and ordered as `q` and the resource say,
 * each with the ids of its links (IDS fields). 0, or -1 with *err. */
int s2a_db_admin_list(s2a_dbc *c, apr_pool_t *p, const s2a_admin_resource *res,
                      const s2a_admin_query *q, json_object **rows, const char **err);
/* Row `id`: 1 with *row (the caller's to release), 0 none, -1 with *err. */
int s2a_db_admin_get(s2a_dbc *c, apr_pool_t *p, const s2a_admin_resource *res, apr_int64_t id,
                     json_object **row, const char **err);

/* A create, in one transaction: the rows its REF values name looked up,
 * its UNIQUE values found free, the row inserted (created_at `now`), its
 * SECRET values written sealed for its id by `sealer` (never stored
 * plain, not even inside the transaction), its links and its opening
 * balance written. 0 with *id; 1 refused, -1 failed (*fail says why);
 * either way nothing is written. */
int s2a_db_admin_create(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t now,
                        const s2a_admin_sealer *sealer, apr_int64_t *id, s2a_db_admin_fail *fail);
/* A PATCH of row `id`, in one transaction: one UPDATE of every column it
 * sets, its links replaced, its balance changes with their balance log
 * rows. Returns as s2a_db_admin_create; 404 when no row has the id. */
int s2a_db_admin_patch(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t id,
                       s2a_db_admin_fail *fail);
/* The rows the change's REF values name exist: 0, 1 refused, -1 failed. */
int s2a_db_admin_refs(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch,
                      s2a_db_admin_fail *fail);

/* The rows of a usage summary. 0, or -1 with *err. */
int s2a_db_admin_summary(s2a_dbc *c, apr_pool_t *p, const s2a_admin_summary *s, json_object **rows,
                         const char **err);
/* `ask->count` new redeem codes (their hashes stored, created_at `now`) in
 * one transaction, the group of a subscription's codes looked up first;
 * the plain codes are pushed onto `codes` (const char *). Returns as
 * s2a_db_admin_create. */
int s2a_db_admin_codes(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch,
                       const s2a_admin_codes *ask, apr_int64_t now, apr_array_header_t *codes,
                       s2a_db_admin_fail *fail);

#endif
