/* The admin API's input (s2a_admin.h): a body checked for a create or a
 * PATCH gives values only for fields that mode may set, never a generated
 * one, every required one for a create, each as the body wrote it and
 * within its bounds (numbers in [min, max], money within a billion USD,
 * texts within their characters, words among the field's, ids each once,
 * JSON that its check takes back); the statements built from it keep the
 * description's text with one typed placeholder per argument, the values
 * in the arguments. Listing parameters give a WHERE clause with an
 * argument per placeholder, each the parameter's value, refused exactly
 * when a filter or the limit is not good. A refusal always says why.
 *
 * Input: one byte (bits 0-2 the resource, bit 3 a create), then the rest,
 * read as the body and, line by line, as query parameters "name=value". */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "s2a_admin.h"
#include "s2a_pricing.h"

static const s2a_admin_resource *const resources[8] = {
    &s2a_admin_users,         &s2a_admin_groups,       &s2a_admin_keys,  &s2a_admin_accounts,
    &s2a_admin_subscriptions, &s2a_admin_redeem_codes, &s2a_admin_usage, &s2a_admin_balance_log};

/* What the summary may be grouped by, with each grouping's row type. */
static const char *const groupings[][2] = {
    {"day", "i"},  {"model", "s"}, {"upstream_model", "s"}, {"account", "i"}, {"key", "i"},
    {"user", "i"}, {"api", "s"}};

static int is_integer(const char *s)
{
    if (*s == '-') {
        s++;
    }
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isdigit(*s)) {
            return 0;
        }
    }
    return 1;
}

/* 1 to 18 digits: what a numeric filter takes. */
static int is_filter_number(const char *s)
{
    return *s != '-' && is_integer(s) && strlen(s) <= 18;
}

/* The placeholders of `sql`, each %s, %d or %lld, checked against their
 * arguments: a number's is an integer's text. The rest of the text is the
 * description's: names, punctuation and no quote but the empty string. */
static void check_statement(const char *sql, const char *const *args, int nargs)
{
    const char *c;
    int n = 0;

    FUZZ_CHECK(sql && nargs >= 0);
    for (c = sql; *c; c++) {
        if (*c == '%') {
            FUZZ_CHECK(n < nargs && args[n]);
            if (c[1] == 's') {
                c += 1;
            } else if (c[1] == 'd') {
                FUZZ_CHECK(is_integer(args[n]));
                c += 1;
            } else {
                FUZZ_CHECK(strncmp(c, "%lld", 4) == 0 && is_integer(args[n]));
                c += 3;
            }
            n++;
        } else if (*c == '\'') {
            FUZZ_CHECK(strncmp(c, "''", 2) == 0);
            c++;
        } else {
            FUZZ_CHECK(apr_isalnum(*c) || strchr(" _,.()=<>*/", *c));
        }
    }
    FUZZ_CHECK(n == nargs);
}

/* Characters of UTF-8 text: bytes that do not continue one. */
static apr_int64_t characters(const char *s, size_t len)
{
    apr_int64_t n = 0;
    size_t i;
    for (i = 0; i < len; i++) {
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    }
    return n;
}

static const char *number_text(apr_pool_t *p, apr_int64_t n)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, n);
}

/* A member of the body, as json-c reads it: 1 when present (*v NULL for
 * null). */
static int member(apr_pool_t *p, json_object *body, const char *name, const char *suffix,
                  json_object **v)
{
    *v = NULL;
    return body && json_object_object_get_ex(body, apr_pstrcat(p, name, suffix, NULL), v);
}

static void check_text(const s2a_admin_field *f, const s2a_admin_value *val, json_object *v)
{
    size_t len = strlen(val->text), i;

    FUZZ_CHECK(json_object_is_type(v, json_type_string));
    FUZZ_CHECK(len == (size_t)json_object_get_string_len(v) &&
               memcmp(val->text, json_object_get_string(v), len) == 0);
    FUZZ_CHECK(len || (f->flags & S2A_ADMIN_EMPTY));
    FUZZ_CHECK(characters(val->text, len) <= f->max);
    for (i = 0; i < len; i++) {
        FUZZ_CHECK((unsigned char)val->text[i] >= 0x20 && val->text[i] != 0x7f);
    }
}

static void check_word(const s2a_admin_field *f, const s2a_admin_value *val, json_object *v)
{
    int i, found = 0;
    for (i = 0; f->words[i]; i++) {
        found |= strcmp(val->text, f->words[i]) == 0;
    }
    FUZZ_CHECK(found);
    FUZZ_CHECK(json_object_is_type(v, json_type_string) &&
               (size_t)json_object_get_string_len(v) == strlen(val->text) &&
               strcmp(json_object_get_string(v), val->text) == 0);
}

static void check_money(apr_pool_t *p, const s2a_admin_field *f, const s2a_admin_value *val,
                        json_object *body)
{
    json_object *v;
    apr_int64_t n;

    FUZZ_CHECK(val->number >= f->min && val->number <= f->max);
    FUZZ_CHECK(val->number >= -S2A_ADMIN_MONEY_MAX && val->number <= S2A_ADMIN_MONEY_MAX);
    FUZZ_CHECK(strcmp(val->text, number_text(p, val->number)) == 0);
    /* nano-USD win over USD */
    if (member(p, body, f->name, "_nanousd", &v)) {
        FUZZ_CHECK(json_object_is_type(v, json_type_int) &&
                   json_object_get_int64(v) == val->number);
        return;
    }
    FUZZ_CHECK(member(p, body, f->name, "_usd", &v) && v);
    if (json_object_is_type(v, json_type_string)) {
        FUZZ_CHECK(s2a_usd_parse_nano(json_object_get_string(v), &n) == 0 && n == val->number);
    }
}

static void check_ids(const s2a_admin_value *val, json_object *v)
{
    size_t i, k;
    int j, at = 0;

    FUZZ_CHECK(val->ids && json_object_is_type(v, json_type_array));
    FUZZ_CHECK(val->ids->nelts <= 1000);
    for (j = 0; j < val->ids->nelts; j++) {
        apr_int64_t id = APR_ARRAY_IDX(val->ids, j, apr_int64_t);
        int l;
        FUZZ_CHECK(id >= 1 && id <= S2A_ADMIN_ID_MAX);
        for (l = 0; l < j; l++) {
            FUZZ_CHECK(APR_ARRAY_IDX(val->ids, l, apr_int64_t) != id);
        }
    }
    /* the body's ids in order, each at its first mention */
    for (i = 0; i < json_object_array_length(v); i++) {
        apr_int64_t id = json_object_get_int64(json_object_array_get_idx(v, i));
        int seen = 0;
        for (k = 0; k < i; k++) {
            seen |= json_object_get_int64(json_object_array_get_idx(v, k)) == id;
        }
        if (!seen) {
            FUZZ_CHECK(at < val->ids->nelts && APR_ARRAY_IDX(val->ids, at, apr_int64_t) == id);
            at++;
        }
    }
    FUZZ_CHECK(at == val->ids->nelts);
}

/* What a JSON field stores reads back as JSON its check takes; a string
 * (a credential, an egress, a region) is stored as its own text. */
static void check_json(apr_pool_t *p, const s2a_admin_field *f, const s2a_admin_value *val,
                       json_object *v)
{
    json_object *back;

    FUZZ_CHECK(val->text && f->check(p, v) == NULL);
    if (v && json_object_is_type(v, json_type_string)) {
        FUZZ_CHECK(strcmp(val->text, json_object_get_string(v)) == 0);
        return;
    }
    if (!*val->text) {
        return;
    }
    back = json_tokener_parse(val->text);
    FUZZ_CHECK(back && f->check(p, back) == NULL);
    FUZZ_CHECK(strcmp(f->stored(p, back), val->text) == 0);
    json_object_put(back);
}

static void check_value(apr_pool_t *p, const s2a_admin_value *val, json_object *body)
{
    const s2a_admin_field *f = val->field;
    json_object *v = NULL;

    FUZZ_CHECK(val->text || f->type == S2A_ADMIN_IDS);
    if (f->type == S2A_ADMIN_MONEY) {
        check_money(p, f, val, body);
        return;
    }
    FUZZ_CHECK(member(p, body, f->name, "", &v));
    switch (f->type) {
    case S2A_ADMIN_TEXT:
        check_text(f, val, v);
        return;
    case S2A_ADMIN_WORD:
        check_word(f, val, v);
        return;
    case S2A_ADMIN_JSON:
        check_json(p, f, val, v);
        return;
    case S2A_ADMIN_IDS:
        check_ids(val, v);
        return;
    case S2A_ADMIN_BOOL:
        FUZZ_CHECK(json_object_is_type(v, json_type_boolean));
        FUZZ_CHECK(val->number == json_object_get_boolean(v));
        break;
    case S2A_ADMIN_MULTIPLIER:
        FUZZ_CHECK(val->number > 0 && val->number <= f->max);
        break;
    case S2A_ADMIN_REF:
        FUZZ_CHECK(json_object_is_type(v, json_type_int));
        FUZZ_CHECK(val->number == json_object_get_int64(v));
        FUZZ_CHECK(val->number >= 1 && val->number <= S2A_ADMIN_ID_MAX);
        break;
    default: /* INT */
        FUZZ_CHECK(json_object_is_type(v, json_type_int));
        FUZZ_CHECK(val->number == json_object_get_int64(v));
        FUZZ_CHECK(val->number >= f->min && val->number <= f->max);
    }
    FUZZ_CHECK(strcmp(val->text, number_text(p, val->number)) == 0);
}

/* An accepted change: the fields the mode may set and the body names, in
 * the description's order, each once and as the body has it. */
static void check_change(apr_pool_t *p, const s2a_admin_resource *res, json_object *body,
                         int create, const s2a_admin_change *ch)
{
    unsigned may = create ? S2A_ADMIN_CREATE : S2A_ADMIN_PATCH;
    const s2a_admin_field *f;
    int at = 0;

    FUZZ_CHECK(ch->res == res && ch->create == create && ch->values);
    for (f = res->fields; f->name; f++) {
        json_object *v;
        int named = f->type == S2A_ADMIN_MONEY ? member(p, body, f->name, "_nanousd", &v) ||
                                                     member(p, body, f->name, "_usd", &v)
                                               : member(p, body, f->name, "", &v);
        int settable = (f->flags & may) && !(f->flags & S2A_ADMIN_GENERATED);
        const s2a_admin_value *val =
            at < ch->values->nelts ? &APR_ARRAY_IDX(ch->values, at, s2a_admin_value) : NULL;

        if (!val || val->field != f) {
            FUZZ_CHECK(!(settable && named));
            FUZZ_CHECK(
                !(create && (f->flags & S2A_ADMIN_REQUIRED) && !(f->flags & S2A_ADMIN_GENERATED)));
            continue;
        }
        FUZZ_CHECK(settable && named);
        check_value(p, val, body);
        at++;
    }
    /* every value is one of the resource's fields */
    FUZZ_CHECK(at == ch->values->nelts);
}

static const char *sealed(void *baton, apr_int64_t id, const char *plain)
{
    return apr_psprintf(baton, "sealed %" APR_INT64_T_FMT " %s", id, plain);
}

/* The columns of `ch` the statement sets, their arguments in order, then
 * `last` (created_at or the row's id). */
static void check_args(const s2a_admin_change *ch, const s2a_admin_stmt *st, const char *last)
{
    int i, n = 0;
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        if (v->field->role == S2A_ADMIN_COLUMN) {
            FUZZ_CHECK(n < st->nargs && strcmp(st->args[n], v->text) == 0);
            FUZZ_CHECK(strstr(st->sql, v->field->column));
            n++;
        }
    }
    if (last) {
        FUZZ_CHECK(n + 1 == st->nargs && strcmp(st->args[n], last) == 0);
    } else {
        FUZZ_CHECK(n == st->nargs);
    }
    check_statement(st->sql, st->args, st->nargs);
}

static int columns(const s2a_admin_change *ch)
{
    int i, n = 0;
    for (i = 0; i < ch->values->nelts; i++) {
        n += APR_ARRAY_IDX(ch->values, i, s2a_admin_value).field->role == S2A_ADMIN_COLUMN;
    }
    return n;
}

/* The statements as the writer builds them: a create inserted with its
 * secrets emptied, then updated with them sealed; a PATCH sealed and
 * updated at once. */
static void check_statements(apr_pool_t *p, s2a_admin_change *ch)
{
    const apr_int64_t now = 1764288000, id = 42;
    s2a_admin_sealer sealer = {sealed, p};
    s2a_admin_change open, secret;
    s2a_admin_stmt st;
    int i;

    if (ch->create) {
        int secrets = s2a_admin_split_secrets(p, ch, &open, &secret), n = 0;

        FUZZ_CHECK(open.values->nelts == ch->values->nelts && !secret.create);
        for (i = 0; i < ch->values->nelts; i++) {
            const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
            const s2a_admin_value *o = &APR_ARRAY_IDX(open.values, i, s2a_admin_value);
            FUZZ_CHECK(o->field == v->field);
            if (v->field->flags & S2A_ADMIN_SECRET) {
                FUZZ_CHECK(*o->text == '\0');
                FUZZ_CHECK(APR_ARRAY_IDX(secret.values, n, s2a_admin_value).text == v->text);
                n++;
            } else {
                FUZZ_CHECK(o->text == v->text);
            }
        }
        FUZZ_CHECK(n == secret.values->nelts && secrets == (n > 0));
        s2a_admin_insert(p, &open, now, &st);
        FUZZ_CHECK(strncmp(st.sql, "INSERT INTO ", 12) == 0);
        check_args(&open, &st, ch->res->stamped ? number_text(p, now) : NULL);
        if (!secrets) {
            return;
        }
        ch = &secret;
    }
    s2a_admin_seal(ch, id, &sealer);
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        FUZZ_CHECK(!(v->field->flags & S2A_ADMIN_SECRET) ||
                   strncmp(v->text, "sealed 42 ", 10) == 0);
    }
    if (!s2a_admin_update(p, ch, id, &st)) {
        FUZZ_CHECK(columns(ch) == 0);
        return;
    }
    FUZZ_CHECK(strncmp(st.sql, "UPDATE ", 7) == 0 && columns(ch) > 0);
    check_args(ch, &st, number_text(p, id));
}

static void check_codes(const s2a_admin_change *ch)
{
    s2a_admin_codes ask;
    const char *why = s2a_admin_codes_ask(ch, &ask);

    if (why) {
        FUZZ_CHECK(*why);
        return;
    }
    FUZZ_CHECK(ask.count >= 1 && ask.count <= 1000);
    if (ask.subscription) {
        FUZZ_CHECK(ask.group_id >= 1 && ask.group_id <= S2A_ADMIN_ID_MAX);
        FUZZ_CHECK(ask.days >= 1 && ask.days <= 36500);
    } else {
        FUZZ_CHECK(ask.amount >= 1 && ask.amount <= S2A_ADMIN_MONEY_MAX);
    }
}

static void check_body(apr_pool_t *p, const s2a_admin_resource *res, json_object *body, int create)
{
    s2a_admin_change ch;
    const char *why = s2a_admin_check(p, res, body, create, &ch);

    if (why) {
        FUZZ_CHECK(*why);
        return;
    }
    FUZZ_CHECK(!body || json_object_is_type(body, json_type_object));
    check_change(p, res, body, create, &ch);
    if (res == &s2a_admin_keys && create) {
        /* the writer puts the key's hash and prefix */
        s2a_admin_put(&ch, "key_hash", "hash");
        s2a_admin_put(&ch, "prefix", "sk-prefix");
        FUZZ_CHECK(strcmp(s2a_admin_value_of(&ch, "key_hash")->text, "hash") == 0);
        FUZZ_CHECK(strcmp(s2a_admin_value_of(&ch, "prefix")->text, "sk-prefix") == 0);
    }
    if (res == &s2a_admin_redeem_codes && create) {
        check_codes(&ch);
    }
    check_statements(p, &ch);
}

/* A query parameter; the glue has no table for a request without a query. */
static const char *param(apr_table_t *params, const char *name)
{
    return params ? apr_table_get(params, name) : NULL;
}

/* The arguments of a WHERE clause: one for each of `filters` the
 * parameters name, in the filters' order, each the parameter's value. */
static void check_where(const s2a_admin_filter *filters, apr_table_t *params, const char *where,
                        const char *const *args, int nargs)
{
    int n = 0;
    for (; filters && filters->param; filters++) {
        const char *v = param(params, filters->param);
        if (v) {
            FUZZ_CHECK(n < nargs && strcmp(args[n], v) == 0);
            n++;
        }
    }
    FUZZ_CHECK(n == nargs);
    FUZZ_CHECK(!nargs || strncmp(where, " WHERE ", 7) == 0);
    check_statement(where, args, nargs);
}

/* Whether the parameters `filters` name are good. */
static int filters_good(const s2a_admin_filter *filters, apr_table_t *params)
{
    for (; filters && filters->param; filters++) {
        const char *v = param(params, filters->param);
        if (v && (filters->text ? !*v || strlen(v) > 127 : !is_filter_number(v))) {
            return 0;
        }
    }
    return 1;
}

static void check_query(apr_pool_t *p, const s2a_admin_resource *res, apr_table_t *params)
{
    s2a_admin_query q;
    const char *why = s2a_admin_query_parse(p, res, params, &q);
    const char *limit = param(params, "limit");
    int good = filters_good(res->filters, params);

    if (res->paged) {
        good = good && (!limit || (is_filter_number(limit) && apr_atoi64(limit) >= 1 &&
                                   apr_atoi64(limit) <= 10000));
    }
    FUZZ_CHECK((why == NULL) == good);
    if (why) {
        FUZZ_CHECK(*why);
        return;
    }
    check_where(res->filters, params, q.where, q.args, q.nargs);
    FUZZ_CHECK(q.nargs || *q.where == '\0');
    FUZZ_CHECK(q.limit == (!res->paged ? 0 : limit ? apr_atoi64(limit) : 100));
}

static int grouping(const char *name)
{
    int i;
    for (i = 0; name && i < (int)(sizeof(groupings) / sizeof(groupings[0])); i++) {
        if (strcmp(name, groupings[i][0]) == 0) {
            return i;
        }
    }
    return -1;
}

static void check_summary(apr_pool_t *p, apr_table_t *params)
{
    s2a_admin_summary s;
    const char *why = s2a_admin_summary_parse(p, params, &s);
    const char *split_param = param(params, "split");
    int by = grouping(param(params, "by")), split = grouping(split_param);
    int good = by >= 0 && (!split_param || (split >= 0 && split != by)) &&
               filters_good(s2a_admin_usage.filters, params);

    FUZZ_CHECK((why == NULL) == good);
    if (why) {
        FUZZ_CHECK(*why);
        return;
    }
    FUZZ_CHECK(strcmp(s.by, groupings[by][0]) == 0);
    FUZZ_CHECK(split_param ? s.split && strcmp(s.split, groupings[split][0]) == 0 : !s.split);
    FUZZ_CHECK(
        strcmp(s.types, apr_pstrcat(p, groupings[by][1], split_param ? groupings[split][1] : "",
                                    "iiiiiiiii", NULL)) == 0);
    check_where(s2a_admin_usage.filters, params, strstr(s.stmt.sql, " FROM s2a_usage") + 15,
                s.stmt.args, s.stmt.nargs);
    FUZZ_CHECK(s.stmt.nargs || strstr(s.stmt.sql, " FROM s2a_usage GROUP BY "));
}

/* Lines "name=value" (no '=': an empty value) as the query's parameters. */
static apr_table_t *params_of(apr_pool_t *p, const char *rest, size_t n)
{
    apr_table_t *t = apr_table_make(p, 8);
    const char *end = rest + n;

    while (rest < end) {
        const char *nl = memchr(rest, '\n', (size_t)(end - rest));
        const char *line_end = nl ? nl : end;
        const char *eq = memchr(rest, '=', (size_t)(line_end - rest));
        const char *name_end = eq ? eq : line_end;
        apr_table_addn(t, fuzz_copy(p, rest, (size_t)(name_end - rest), 1),
                       eq ? fuzz_copy(p, eq + 1, (size_t)(line_end - eq - 1), 1) : "");
        rest = nl ? nl + 1 : end;
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    const s2a_admin_resource *res = resources[mode & 7];
    int create = (mode >> 3) & 1;
    const char *rest = fuzz_copy(p, in.p, in.n, 0);
    json_tokener *tok = json_tokener_new();
    json_object *body = NULL;
    apr_table_t *params = in.n ? params_of(p, rest, in.n) : NULL;

    /* as the glue reads a body: no bytes, no body; a number needs its end */
    if (in.n) {
        body = json_tokener_parse_ex(tok, rest, (int)in.n);
        if (!body && json_tokener_get_error(tok) == json_tokener_continue) {
            body = json_tokener_parse_ex(tok, "", 0);
        }
    }
    if (!in.n || body) {
        check_body(p, res, body, create);
    }
    check_query(p, res, params);
    check_summary(p, params);
    json_object_put(body);
    json_tokener_free(tok);
    apr_pool_destroy(p);
    return 0;
}
