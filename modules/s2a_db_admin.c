/* The admin API's rows: see s2a_db_admin.h. */
#include <string.h>

#include <apr_strings.h>

#include "s2a_db_admin.h"
#include "s2a_db_billing.h"
#include "s2a_keys.h"

/* 1 when `sql` finds a row, 0 when not, -1 failed. */
static int found(s2a_dbc *c, apr_pool_t *p, const char *sql, int nargs, const char **args,
                 const char **err)
{
    json_object *rows;
    int n;
    if (s2a_db_rows(c, p, sql, "i", nargs, args, &rows, err) != 0) {
        return -1;
    }
    n = json_object_array_length(rows) > 0;
    json_object_put(rows);
    return n;
}

static int refuse(s2a_db_admin_fail *fail, int status, const char *message)
{
    fail->status = status;
    fail->message = message;
    return 1;
}

static int begin(s2a_dbc *c, apr_pool_t *p, s2a_db_admin_fail *fail)
{
    memset(fail, 0, sizeof(*fail));
    if (s2a_db_begin(c) != 0) {
        fail->err = apr_pstrcat(p, "begin: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -1;
    }
    return 0;
}

/* Commits what went well (rc 0), else rolls back; returns rc, or -1 when
 * the commit failed. */
static int end(s2a_dbc *c, apr_pool_t *p, int rc, s2a_db_admin_fail *fail)
{
    if (s2a_db_end(c, rc == 0) != 0 && rc == 0) {
        fail->err = apr_pstrcat(p, "commit: ", apr_dbd_error(c->driver, c->handle, 0), NULL);
        return -1;
    }
    return rc;
}

/* Each row gets, under an IDS field's name, the ids its links name (rows
 * of one owner `id`, or of any when NULL). */
static int attach_links(s2a_dbc *c, apr_pool_t *p, const s2a_admin_resource *res, json_object *rows,
                        const char *id, const char **err)
{
    const s2a_admin_field *f;
    for (f = res->fields; f->name; f++) {
        const s2a_admin_link *l = f->link;
        apr_hash_t *by_owner = apr_hash_make(p);
        json_object *links, *v;
        size_t i;
        if (f->type != S2A_ADMIN_IDS) {
            continue;
        }
        if (s2a_db_rows(c, p,
                        apr_pstrcat(p, "SELECT ", l->owner, " AS o, ", l->target, " AS t FROM ",
                                    l->table,
                                    id ? apr_pstrcat(p, " WHERE ", l->owner, " = %lld", NULL) : "",
                                    " ORDER BY ", l->owner, ", ", l->target, NULL),
                        "ii", id ? 1 : 0, &id, &links, err) != 0) {
            return -1;
        }
        for (i = 0; i < json_object_array_length(rows); i++) {
            json_object *row = json_object_array_get_idx(rows, i), *ids = json_object_new_array();
            apr_int64_t *owner = apr_palloc(p, sizeof(*owner));
            *owner = json_object_object_get_ex(row, "id", &v) ? json_object_get_int64(v) : 0;
            json_object_object_add(row, f->name, ids);
            apr_hash_set(by_owner, owner, sizeof(*owner), ids);
        }
        for (i = 0; i < json_object_array_length(links); i++) {
            json_object *link = json_object_array_get_idx(links, i), *ids, *t = NULL;
            apr_int64_t owner = 0;
            if (json_object_object_get_ex(link, "o", &v)) {
                owner = json_object_get_int64(v);
            }
            json_object_object_get_ex(link, "t", &t);
            if ((ids = apr_hash_get(by_owner, &owner, sizeof(owner))) != NULL) {
                json_object_array_add(ids, json_object_get(t));
            }
        }
        json_object_put(links);
    }
    return 0;
}

int s2a_db_admin_list(s2a_dbc *c, apr_pool_t *p, const s2a_admin_resource *res,
                      const s2a_admin_query *q, json_object **rows, const char **err)
{
    const char **args = apr_pcalloc(p, sizeof(*args) * (apr_size_t)(q->nargs + 1));
    int n = q->nargs;
    memcpy(args, q->args, sizeof(*args) * (apr_size_t)q->nargs);
    if (q->limit) {
        args[n++] = S2A_DB_I64(p, q->limit);
    }
    if (s2a_db_rows(c, p,
                    apr_pstrcat(p, "SELECT ", res->columns, " FROM ", res->table, q->where,
                                res->order, q->limit ? " LIMIT %lld" : "", NULL),
                    res->types, n, args, rows, err) != 0) {
        return -1;
    }
    if (attach_links(c, p, res, *rows, NULL, err) != 0) {
        json_object_put(*rows);
        return -1;
    }
    return 0;
}

int s2a_db_admin_get(s2a_dbc *c, apr_pool_t *p, const s2a_admin_resource *res, apr_int64_t id,
                     json_object **row, const char **err)
{
    const char *args[1] = {S2A_DB_I64(p, id)};
    json_object *rows;
    int rc = 0;
    if (s2a_db_rows(
            c, p,
            apr_pstrcat(p, "SELECT ", res->columns, " FROM ", res->table, " WHERE id = %lld", NULL),
            res->types, 1, args, &rows, err) != 0) {
        return -1;
    }
    if (json_object_array_length(rows)) {
        rc = attach_links(c, p, res, rows, args[0], err) == 0 ? 1 : -1;
    }
    if (rc == 1) {
        *row = json_object_get(json_object_array_get_idx(rows, 0));
    }
    json_object_put(rows);
    return rc;
}

static int refs_exist(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch,
                      s2a_db_admin_fail *fail)
{
    int i, rc;
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        const s2a_admin_field *f = v->field;
        const char *args[1] = {v->text};
        if (f->type != S2A_ADMIN_REF) {
            continue;
        }
        rc = found(c, p, apr_pstrcat(p, "SELECT id FROM ", f->ref, " WHERE id = %lld", NULL), 1,
                   args, &fail->err);
        if (rc <= 0) {
            return rc < 0 ? -1 : refuse(fail, f->refused_status, f->refused);
        }
    }
    return 0;
}

int s2a_db_admin_refs(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch,
                      s2a_db_admin_fail *fail)
{
    memset(fail, 0, sizeof(*fail));
    return refs_exist(c, p, ch, fail);
}

/* No other row than `id` (NULL: any) has a UNIQUE value of the change. */
static int unique_free(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch, const char *id,
                       s2a_db_admin_fail *fail)
{
    int i, rc;
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        const s2a_admin_field *f = v->field;
        const char *args[2] = {v->text, id};
        if (!(f->flags & S2A_ADMIN_UNIQUE)) {
            continue;
        }
        rc = found(c, p,
                   apr_pstrcat(p, "SELECT id FROM ", ch->res->table, " WHERE ", f->column, " = %s",
                               id ? " AND id <> %lld" : "", NULL),
                   id ? 2 : 1, args, &fail->err);
        if (rc != 0) {
            return rc < 0 ? -1 : refuse(fail, f->refused_status, f->refused);
        }
    }
    return 0;
}

/* The links of row `id` become those the change names; a target that is
 * not there refuses the change. */
static int links_write(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch, const char *id,
                       s2a_db_admin_fail *fail)
{
    int i, j, nrows;
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        const s2a_admin_field *f = v->field;
        const s2a_admin_link *l = f->link;
        const char *insert;
        if (f->type != S2A_ADMIN_IDS) {
            continue;
        }
        if (s2a_db_exec(
                c, p,
                apr_pstrcat(p, "DELETE FROM ", l->table, " WHERE ", l->owner, " = %lld", NULL), 1,
                &id, NULL, &fail->err) != 0) {
            return -1;
        }
        insert = apr_pstrcat(p, "INSERT INTO ", l->table, " (", l->owner, ", ", l->target,
                             ") SELECT o.id, t.id FROM ", ch->res->table, " o, ", f->ref,
                             " t WHERE o.id = %lld AND t.id = %lld", NULL);
        for (j = 0; j < v->ids->nelts; j++) {
            const char *args[2] = {id, S2A_DB_I64(p, APR_ARRAY_IDX(v->ids, j, apr_int64_t))};
            nrows = 0;
            if (s2a_db_exec(c, p, insert, 2, args, &nrows, &fail->err) != 0) {
                return -1;
            }
            if (nrows != 1) {
                return refuse(fail, f->refused_status, f->refused);
            }
        }
    }
    return 0;
}

/* The change's balance values, set or added in the order of the fields,
 * each with its row in the balance log. A new user's balance of 0 writes
 * nothing. */
static int ledger_write(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t id,
                        s2a_db_admin_fail *fail)
{
    const s2a_admin_value *actor = s2a_admin_value_of(ch, "actor");
    const s2a_admin_value *reason = s2a_admin_value_of(ch, "reason");
    apr_int64_t after;
    int i, rc;
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        s2a_admin_role role = v->field->role;
        if ((role != S2A_ADMIN_BALANCE_SET && role != S2A_ADMIN_BALANCE_ADD) ||
            (ch->create && v->number == 0)) {
            continue;
        }
        rc = s2a_db_balance_change_in(c, p, id, role == S2A_ADMIN_BALANCE_SET, v->number,
                                      actor ? actor->text : "admin", reason ? reason->text : "",
                                      &after, &fail->err);
        if (rc != 1) {
            return rc < 0 ? -1 : refuse(fail, 404, "No such resource");
        }
    }
    return 0;
}

int s2a_db_admin_create(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t now,
                        const s2a_admin_sealer *sealer, apr_int64_t *id, s2a_db_admin_fail *fail)
{
    s2a_admin_change open, secret;
    s2a_admin_stmt insert, update;
    int rc, secrets = s2a_admin_split_secrets(p, ch, &open, &secret);
    if (begin(c, p, fail) != 0) {
        return -1;
    }
    rc = refs_exist(c, p, ch, fail);
    if (rc == 0) {
        rc = unique_free(c, p, ch, NULL, fail);
    }
    if (rc == 0) {
        s2a_admin_insert(p, &open, now, &insert);
        rc = s2a_db_insert(c, p, insert.sql, insert.nargs, insert.args, id, &fail->err) == 0 ? 0
                                                                                             : -1;
    }
    if (rc == 0 && secrets) {
        s2a_admin_seal(&secret, *id, sealer);
        s2a_admin_update(p, &secret, *id, &update);
        rc = s2a_db_exec(c, p, update.sql, update.nargs, update.args, NULL, &fail->err) == 0 ? 0
                                                                                             : -1;
    }
    if (rc == 0) {
        rc = links_write(c, p, ch, S2A_DB_I64(p, *id), fail);
    }
    if (rc == 0) {
        rc = ledger_write(c, p, ch, *id, fail);
    }
    return end(c, p, rc, fail);
}

int s2a_db_admin_patch(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t id,
                       s2a_db_admin_fail *fail)
{
    const char *sid = S2A_DB_I64(p, id);
    s2a_admin_stmt update;
    int rc;
    if (begin(c, p, fail) != 0) {
        return -1;
    }
    rc = found(c, p, apr_pstrcat(p, "SELECT id FROM ", ch->res->table, " WHERE id = %lld", NULL), 1,
               &sid, &fail->err);
    rc = rc < 0 ? -1 : rc == 0 ? refuse(fail, 404, "No such resource") : 0;
    if (rc == 0) {
        rc = refs_exist(c, p, ch, fail);
    }
    if (rc == 0) {
        rc = unique_free(c, p, ch, sid, fail);
    }
    if (rc == 0 && s2a_admin_update(p, ch, id, &update)) {
        rc = s2a_db_exec(c, p, update.sql, update.nargs, update.args, NULL, &fail->err) == 0 ? 0
                                                                                             : -1;
    }
    if (rc == 0) {
        rc = links_write(c, p, ch, sid, fail);
    }
    if (rc == 0) {
        rc = ledger_write(c, p, ch, id, fail);
    }
    return end(c, p, rc, fail);
}

int s2a_db_admin_summary(s2a_dbc *c, apr_pool_t *p, const s2a_admin_summary *s, json_object **rows,
                         const char **err)
{
    return s2a_db_rows(c, p, s->stmt.sql, s->types, s->stmt.nargs, s->stmt.args, rows, err) == 0
               ? 0
               : -1;
}

int s2a_db_admin_codes(s2a_dbc *c, apr_pool_t *p, const s2a_admin_change *ch,
                       const s2a_admin_codes *ask, apr_int64_t now, apr_array_header_t *codes,
                       s2a_db_admin_fail *fail)
{
    const char *args[7];
    apr_int64_t id;
    int rc, i;
    if (begin(c, p, fail) != 0) {
        return -1;
    }
    rc = ask->subscription ? refs_exist(c, p, ch, fail) : 0;
    args[2] = ask->subscription ? "subscription" : "balance";
    args[3] = S2A_DB_I64(p, ask->amount);
    args[4] = S2A_DB_I64(p, ask->group_id);
    args[5] = S2A_DB_I64(p, ask->days);
    args[6] = S2A_DB_I64(p, now);
    for (i = 0; rc == 0 && i < ask->count; i++) {
        char *code;
        if (s2a_redeem_code_generate(p, &code) != APR_SUCCESS) {
            fail->err = "no randomness for a redeem code";
            rc = -1;
            break;
        }
        args[0] = s2a_key_hash(p, code);
        args[1] = s2a_key_prefix(p, code);
        if (s2a_db_insert(c, p,
                          "INSERT INTO s2a_redeem_codes (code_hash, prefix, kind, amount_nanousd,"
                          " group_id, days, created_at) VALUES (%s, %s, %s, %lld, %lld, %lld,"
                          " %lld)",
                          7, args, &id, &fail->err) != 0) {
            rc = -1;
        } else {
            APR_ARRAY_PUSH(codes, const char *) = code;
        }
    }
    return end(c, p, rc, fail);
}
