/* The admin API's resources and their checks: see s2a_admin.h. */
#include <string.h>

#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "s2a_admin.h"
#include "s2a_cloud.h"
#include "s2a_egress.h"
#include "s2a_pricing.h"
#include "s2a_status.h"
#include "s2a_key_limits.h"
#include "s2a_subscription.h"
#include "s2a_vertex_key.h"

/* ---- the resources ---- */

#define CREATE S2A_ADMIN_CREATE
#define PATCH S2A_ADMIN_PATCH
#define BOTH (S2A_ADMIN_CREATE | S2A_ADMIN_PATCH)
#define REQUIRED (S2A_ADMIN_CREATE | S2A_ADMIN_PATCH | S2A_ADMIN_REQUIRED)
#define LIMIT_MAX 1000000

static const char *const statuses[] = {"active", "disabled", NULL};

static const char *json_text(apr_pool_t *p, json_object *v)
{
    return apr_pstrdup(p, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

/* An egress: a forward proxy's URL, or "" / null for none. */
static const char *egress_check(apr_pool_t *p, json_object *v)
{
    if (!v) {
        return NULL;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return "egress: a string, http://[user:password@]host:port (\"\" or null: none)";
    }
    if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
        return "egress: no NUL";
    }
    return s2a_egress_check(p, json_object_get_string(v));
}

static const char *egress_text(apr_pool_t *p, json_object *v)
{
    return apr_pstrdup(p, v ? json_object_get_string(v) : "");
}

/* Names of 1 to 255 characters without control characters. */
static int plain_name(const char *s, size_t len)
{
    size_t i;
    if (!len || len > 255 || strlen(s) != len) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static const char *mapping_check(apr_pool_t *p, json_object *v)
{
    if (!v || !json_object_is_type(v, json_type_object)) {
        return "model_mapping: an object of client model to upstream model";
    }
    json_object_object_foreach(v, k, m)
    {
        if (!json_object_is_type(m, json_type_string)) {
            return "model_mapping: values must be strings";
        }
        if (!plain_name(k, strlen(k)) ||
            !plain_name(json_object_get_string(m), (size_t)json_object_get_string_len(m))) {
            return "model_mapping: model names of 1 to 255 characters without control "
                   "characters";
        }
    }
    return NULL;
}

static const char *models_check(apr_pool_t *p, json_object *v)
{
    char lines[S2A_KEY_MODELS_MAX];
    const char *err = NULL;
    if (!v) {
        return NULL;
    }
    return s2a_key_models_parse(json_text(p, v), lines, &err) ? NULL : err;
}

/* As stored: the array's text, "" for none (null or []). */
static const char *models_stored(apr_pool_t *p, json_object *v)
{
    return v && json_object_array_length(v) ? json_text(p, v) : "";
}

static const char *codes_check(apr_pool_t *p, json_object *v)
{
    size_t i;
    if (!v) {
        return NULL;
    }
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 200) {
        return "custom_error_codes: an array of HTTP statuses, or null";
    }
    for (i = 0; i < json_object_array_length(v); i++) {
        json_object *c = json_object_array_get_idx(v, i);
        if (!json_object_is_type(c, json_type_int) || json_object_get_int64(c) < 400 ||
            json_object_get_int64(c) > 599) {
            return "custom_error_codes: an array of HTTP statuses, or null";
        }
    }
    return NULL;
}

/* As stored: the array's text, "" for none (null or []). */
static const char *codes_stored(apr_pool_t *p, json_object *v)
{
    return v && json_object_array_length(v) ? json_text(p, v) : "";
}

/* Headers an operator may not fix for an account: the credential, the
 * framing, the connection, and the encoding (answers must come plain to be
 * billed) are the gateway's. */
static const char *const reserved_headers[] = {"authorization",
                                               "x-api-key",
                                               "host",
                                               "content-length",
                                               "content-type",
                                               "transfer-encoding",
                                               "connection",
                                               "keep-alive",
                                               "te",
                                               "trailer",
                                               "upgrade",
                                               "expect",
                                               "proxy-authorization",
                                               "proxy-connection",
                                               "cookie",
                                               "accept-encoding",
                                               "content-encoding",
                                               NULL};

static const char *headers_check(apr_pool_t *p, json_object *v)
{
    if (!v || !json_object_is_type(v, json_type_object)) {
        return "headers: an object of header name to value";
    }
    json_object_object_foreach(v, k, val)
    {
        const char *c;
        int i, len;
        if (!*k || strlen(k) > 64) {
            return "headers: names of 1 to 64 characters";
        }
        for (c = k; *c; c++) {
            if (!apr_isalnum(*c) && *c != '-' && *c != '_') {
                return apr_psprintf(p, "headers: %s is not a header name", k);
            }
        }
        for (i = 0; reserved_headers[i]; i++) {
            if (strcasecmp(k, reserved_headers[i]) == 0) {
                return apr_psprintf(p, "headers: %s is set by the gateway", k);
            }
        }
        if (!json_object_is_type(val, json_type_string) || json_object_get_string_len(val) > 4096) {
            return "headers: values must be strings of up to 4096 characters";
        }
        c = json_object_get_string(val);
        len = json_object_get_string_len(val);
        for (i = 0; i < len; i++) {
            if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f) {
                return apr_psprintf(p, "headers: the value of %s has control characters", k);
            }
        }
    }
    return NULL;
}

static const s2a_admin_field user_fields[] = {
    {.name = "name",
     .type = S2A_ADMIN_TEXT,
     .column = "name",
     .flags = REQUIRED,
     .max = 255,
     .message = "name: a non-empty string is required"},
    {.name = "status",
     .type = S2A_ADMIN_WORD,
     .column = "status",
     .flags = BOTH,
     .words = statuses,
     .message = "status: active or disabled"},
    {.name = "concurrency",
     .type = S2A_ADMIN_INT,
     .column = "concurrency",
     .flags = BOTH,
     .max = LIMIT_MAX,
     .message = "concurrency: a whole number from 0 (no limit)"},
    /* a new user's balance is recorded in the balance log like any change */
    {.name = "balance",
     .type = S2A_ADMIN_MONEY,
     .role = S2A_ADMIN_BALANCE_SET,
     .column = "balance_nanousd",
     .flags = BOTH,
     .min = -S2A_ADMIN_MONEY_MAX,
     .max = S2A_ADMIN_MONEY_MAX,
     .message = "balance_usd: a decimal amount is required"},
    {.name = "add_balance",
     .type = S2A_ADMIN_MONEY,
     .role = S2A_ADMIN_BALANCE_ADD,
     .flags = PATCH,
     .min = -S2A_ADMIN_MONEY_MAX,
     .max = S2A_ADMIN_MONEY_MAX,
     .message = "add_balance_usd: a decimal amount is required"},
    {.name = "actor",
     .type = S2A_ADMIN_TEXT,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = BOTH | S2A_ADMIN_EMPTY,
     .max = 100,
     .message = "actor: a string of at most 100 characters, reason: at most 500"},
    {.name = "reason",
     .type = S2A_ADMIN_TEXT,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = BOTH | S2A_ADMIN_EMPTY,
     .max = 500,
     .message = "actor: a string of at most 100 characters, reason: at most 500"},
    {0},
};

const s2a_admin_resource s2a_admin_users = {
    .name = "users",
    .noun = "user",
    .table = "s2a_users",
    .columns = "id, name, status, balance_nanousd, created_at, concurrency",
    .types = "issiii",
    .order = " ORDER BY id",
    .stamped = 1,
    .fields = user_fields};

static const char *const billing_types[] = {"balance", "subscription", NULL};

#define WINDOW_LIMIT(w)                                                                            \
    {                                                                                              \
        .name = w "_limit", .type = S2A_ADMIN_MONEY, .column = w "_limit_nanousd", .flags = BOTH,  \
        .max = S2A_ADMIN_MONEY_MAX,                                                                \
        .message = w "_limit_usd: an amount of 0 or more (0: no limit)"                            \
    }

static const s2a_admin_field group_fields[] = {
    {.name = "name",
     .type = S2A_ADMIN_TEXT,
     .column = "name",
     .flags = REQUIRED | S2A_ADMIN_UNIQUE,
     .max = 255,
     .message = "name: a non-empty string is required",
     .refused = "name: a group of that name exists",
     .refused_status = 409},
    {.name = "rate_multiplier",
     .type = S2A_ADMIN_MULTIPLIER,
     .column = "rate_multiplier_ppm",
     .flags = BOTH,
     .max = 1000000000,
     .message = "rate_multiplier: a positive decimal is required, at most 1000"},
    {.name = "billing_type",
     .type = S2A_ADMIN_WORD,
     .column = "billing_type",
     .flags = BOTH,
     .words = billing_types,
     .message = "billing_type: balance or subscription"},
    WINDOW_LIMIT("daily"),
    WINDOW_LIMIT("weekly"),
    WINDOW_LIMIT("monthly"),
    {.name = "server_tools",
     .type = S2A_ADMIN_BOOL,
     .column = "server_tools",
     .flags = BOTH,
     .message = "server_tools: true or false"},
    {0},
};

const s2a_admin_resource s2a_admin_groups = {
    .name = "groups",
    .noun = "group",
    .table = "s2a_groups",
    .columns = "id, name, rate_multiplier_ppm, created_at, billing_type, daily_limit_nanousd,"
               " weekly_limit_nanousd, monthly_limit_nanousd, server_tools",
    .types = "isiisiiib",
    .order = " ORDER BY id",
    .stamped = 1,
    .fields = group_fields};

static void key_shape(apr_pool_t *p, json_object *row, apr_int64_t now);

static const s2a_admin_field key_fields[] = {
    {.name = "user_id",
     .type = S2A_ADMIN_REF,
     .column = "user_id",
     .flags = CREATE | S2A_ADMIN_REQUIRED,
     .ref = "s2a_users",
     .message = "user_id and group_id (integers) are required",
     .refused = "user_id: no such user",
     .refused_status = 400},
    {.name = "group_id",
     .type = S2A_ADMIN_REF,
     .column = "group_id",
     .flags = CREATE | S2A_ADMIN_REQUIRED,
     .ref = "s2a_groups",
     .message = "user_id and group_id (integers) are required",
     .refused = "group_id: no such group",
     .refused_status = 400},
    {.name = "name",
     .type = S2A_ADMIN_TEXT,
     .column = "name",
     .flags = BOTH | S2A_ADMIN_EMPTY,
     .max = 255,
     .message = "name: a string is required"},
    {.name = "status",
     .type = S2A_ADMIN_WORD,
     .column = "status",
     .flags = BOTH,
     .words = statuses,
     .message = "status: active or disabled"},
    {.name = "expires_at",
     .type = S2A_ADMIN_INT,
     .column = "expires_at",
     .flags = BOTH,
     .max = S2A_ADMIN_TIME_MAX,
     .message = "expires_at: Unix seconds (0: never)"},
    {.name = "concurrency",
     .type = S2A_ADMIN_INT,
     .column = "concurrency",
     .flags = BOTH,
     .max = LIMIT_MAX,
     .message = "concurrency: a whole number from 0 (no limit)"},
    {.name = "rpm_limit",
     .type = S2A_ADMIN_INT,
     .column = "rpm_limit",
     .flags = BOTH,
     .max = LIMIT_MAX,
     .message = "rpm_limit: a whole number from 0 (no limit)"},
    {.name = "budget",
     .type = S2A_ADMIN_MONEY,
     .column = "budget_nanousd",
     .flags = BOTH,
     .max = S2A_ADMIN_MONEY_MAX,
     .message = "budget_usd: an amount of 0 or more (0: no limit)"},
    WINDOW_LIMIT("daily"),
    WINDOW_LIMIT("weekly"),
    WINDOW_LIMIT("monthly"),
    {.name = "models",
     .type = S2A_ADMIN_JSON,
     .column = "models",
     .flags = BOTH,
     .check = models_check,
     .stored = models_stored},
    {.name = "key_hash",
     .type = S2A_ADMIN_TEXT,
     .column = "key_hash",
     .flags = S2A_ADMIN_GENERATED},
    {.name = "prefix", .type = S2A_ADMIN_TEXT, .column = "prefix", .flags = S2A_ADMIN_GENERATED},
    {0},
};

const s2a_admin_resource s2a_admin_keys = {
    .name = "keys",
    .noun = "key",
    .table = "s2a_api_keys",
    .columns = "id, user_id, group_id, name, prefix, status, expires_at, created_at, concurrency,"
               " rpm_limit, budget_nanousd, spent_nanousd, daily_limit_nanousd,"
               " weekly_limit_nanousd, monthly_limit_nanousd, daily_usage_nanousd,"
               " weekly_usage_nanousd, monthly_usage_nanousd, daily_start, weekly_start,"
               " monthly_start, models",
    .types = "iiisssiiiiiiiiiiiiiiij",
    .order = " ORDER BY id",
    .stamped = 1,
    .fields = key_fields,
    .shape = key_shape};

static const char *const account_types[] = {"apikey", "oauth",   "setup-token",
                                            "vertex", "bedrock", NULL};

/* A credential: a string (a key or token), or for a cloud's account a JSON
 * object (a service-account key, an access key pair), stored as its text. */
static const char *credential_check(apr_pool_t *p, json_object *v)
{
    const char *s;
    size_t len, i;
    (void)p;
    if (v && json_object_is_type(v, json_type_object)) {
        return strlen(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)) <= 16384
                   ? NULL
                   : "credential: at most 16384 characters";
    }
    if (!v || !json_object_is_type(v, json_type_string)) {
        return "credential: a non-empty string (or for vertex and bedrock a JSON object) is "
               "required";
    }
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    if (!len || len > 16384 || strlen(s) != len) {
        return "credential: a non-empty string of at most 16384 characters is required";
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return "credential: control characters are not allowed";
        }
    }
    return NULL;
}

static const char *credential_text(apr_pool_t *p, json_object *v)
{
    return json_object_is_type(v, json_type_string) ? apr_pstrdup(p, json_object_get_string(v))
                                                    : json_text(p, v);
}

/* A cloud's region or project: letters, digits and '-' ("" or null: none). */
static const char *cloud_name_check(apr_pool_t *p, json_object *v)
{
    (void)p;
    if (!v ||
        (json_object_is_type(v, json_type_string) &&
         (!json_object_get_string_len(v) ||
          (json_object_get_string_len(v) <= 64 && s2a_cloud_name_ok(json_object_get_string(v)))))) {
        return NULL;
    }
    return "region and project: letters, digits and '-', at most 64";
}

static const char *cloud_name_text(apr_pool_t *p, json_object *v)
{
    return apr_pstrdup(p, v ? json_object_get_string(v) : "");
}

/* The credential's text as sent (string or object); NULL when absent. */
static const char *credential_in(apr_pool_t *p, json_object *body)
{
    json_object *v;
    return json_object_object_get_ex(body, "credential", &v) && v ? credential_text(p, v) : NULL;
}

/* What a cloud's account needs besides each field being good: its
 * credential in the cloud's form and a region. A PATCH that names no type
 * is judged when the account list is read (the account then says why it
 * does not serve). */
static const char *account_judge(apr_pool_t *p, json_object *body, int create)
{
    json_object *type, *region;
    const char *credential = credential_in(p, body), *err = NULL;
    s2a_cloud cloud;
    if (!json_object_object_get_ex(body, "type", &type)) {
        return NULL;
    }
    cloud = s2a_cloud_of_type(json_object_get_string(type));
    if (cloud == S2A_CLOUD_NONE) {
        json_object *v;
        return json_object_object_get_ex(body, "credential", &v) &&
                       json_object_is_type(v, json_type_object)
                   ? "credential: a string for this type"
                   : NULL;
    }
    if (create && (!json_object_object_get_ex(body, "region", &region) ||
                   !json_object_get_string_len(region))) {
        return "region: required for vertex and bedrock accounts";
    }
    if (credential && cloud == S2A_CLOUD_VERTEX) {
        s2a_vertex_key key;
        if (s2a_vertex_key_read(p, credential, strlen(credential), &key, &err) != 0) {
            return apr_pstrcat(p, "credential: a service-account key file's JSON: ", err, NULL);
        }
        if (!*key.project_id && create && !json_object_object_get_ex(body, "project", NULL)) {
            return "project: required when the service-account key names none";
        }
    }
    if (credential && cloud == S2A_CLOUD_BEDROCK) {
        s2a_bedrock_credential c;
        if (s2a_bedrock_credential_read(p, credential, &c, &err) != 0) {
            return apr_pstrcat(p, "credential: ", err, NULL);
        }
    }
    return NULL;
}
static const s2a_admin_link account_groups = {"s2a_account_groups", "account_id", "group_id"};

static const s2a_admin_field account_fields[] = {
    {.name = "name",
     .type = S2A_ADMIN_TEXT,
     .column = "name",
     .flags = REQUIRED,
     .max = 255,
     .message = "name: a non-empty string is required"},
    {.name = "type",
     .type = S2A_ADMIN_WORD,
     .column = "type",
     .flags = REQUIRED,
     .words = account_types,
     .message = "type: apikey, oauth, setup-token, vertex or bedrock"},
    {.name = "credential",
     .type = S2A_ADMIN_JSON,
     .column = "credential",
     .flags = REQUIRED | S2A_ADMIN_SECRET,
     .check = credential_check,
     .stored = credential_text,
     .message = "credential: a non-empty string (or for vertex and bedrock a JSON object) is "
                "required"},
    {.name = "endpoint",
     .type = S2A_ADMIN_TEXT,
     .column = "endpoint",
     .flags = REQUIRED,
     .max = 1024,
     .message = "endpoint: a non-empty string is required"},
    {.name = "priority",
     .type = S2A_ADMIN_INT,
     .column = "priority",
     .flags = BOTH,
     .min = -LIMIT_MAX,
     .max = LIMIT_MAX,
     .message = "priority and concurrency: integers (concurrency from 1 to 1000000)"},
    {.name = "concurrency",
     .type = S2A_ADMIN_INT,
     .column = "concurrency",
     .flags = BOTH,
     .min = 1,
     .max = LIMIT_MAX,
     .message = "priority and concurrency: integers (concurrency from 1 to 1000000)"},
    {.name = "model_mapping",
     .type = S2A_ADMIN_JSON,
     .column = "model_mapping",
     .flags = BOTH,
     .check = mapping_check,
     .stored = json_text},
    /* re-enabling an account ends its error state */
    {.name = "status",
     .type = S2A_ADMIN_WORD,
     .column = "status",
     .flags = BOTH,
     .words = statuses,
     .message = "status: active or disabled",
     .also = "error_message = ''",
     .also_when = "active"},
    {.name = "schedulable",
     .type = S2A_ADMIN_BOOL,
     .column = "schedulable",
     .flags = BOTH,
     .message = "schedulable and clear_cooldown: true or false"},
    {.name = "custom_error_codes",
     .type = S2A_ADMIN_JSON,
     .column = "custom_error_codes",
     .flags = BOTH,
     .check = codes_check,
     .stored = codes_stored},
    {.name = "headers",
     .type = S2A_ADMIN_JSON,
     .column = "headers",
     .flags = BOTH | S2A_ADMIN_SECRET,
     .check = headers_check,
     .stored = json_text},
    {.name = "egress",
     .type = S2A_ADMIN_JSON,
     .column = "egress",
     .flags = BOTH | S2A_ADMIN_SECRET,
     .check = egress_check,
     .stored = egress_text},
    {.name = "region",
     .type = S2A_ADMIN_JSON,
     .column = "region",
     .flags = BOTH,
     .check = cloud_name_check,
     .stored = cloud_name_text},
    {.name = "project",
     .type = S2A_ADMIN_JSON,
     .column = "project",
     .flags = BOTH,
     .check = cloud_name_check,
     .stored = cloud_name_text},
    {.name = "refresh_token",
     .type = S2A_ADMIN_TEXT,
     .column = "refresh_token",
     .flags = BOTH | S2A_ADMIN_SECRET,
     .max = 16384,
     .message = "refresh_token: a non-empty string is required"},
    {.name = "expires_at",
     .type = S2A_ADMIN_INT,
     .column = "expires_at",
     .flags = BOTH,
     .max = S2A_ADMIN_TIME_MAX,
     .message = "expires_at: Unix seconds when the access token ends (0: unknown)"},
    {.name = "group_ids",
     .type = S2A_ADMIN_IDS,
     .role = S2A_ADMIN_LINKS,
     .flags = BOTH,
     .ref = "s2a_groups",
     .link = &account_groups,
     .message = "group_ids: an array of group ids",
     .refused = "group_ids: no such group",
     .refused_status = 400},
    {.name = "clear_cooldown",
     .type = S2A_ADMIN_BOOL,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = PATCH,
     .message = "schedulable and clear_cooldown: true or false"},
    {0},
};

const s2a_admin_resource s2a_admin_accounts = {
    .name = "accounts",
    .noun = "account",
    .table = "s2a_accounts",
    .columns = "id, name, type, credential, endpoint, priority, concurrency, model_mapping, status,"
               " schedulable, error_message, created_at, custom_error_codes, expires_at,"
               " CASE WHEN refresh_token <> '' THEN 1 ELSE 0 END AS refresh_token_set, headers,"
               " egress, region, project",
    .types = "issssiijsbsijibssss",
    .order = " ORDER BY id",
    .stamped = 1,
    .fields = account_fields,
    .judge = account_judge};

#define SUBSCRIBE_MESSAGE "user_id, group_id and days (1 to 36500) are required"

static const s2a_admin_field subscription_fields[] = {
    {.name = "user_id",
     .type = S2A_ADMIN_REF,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = CREATE | S2A_ADMIN_REQUIRED,
     .ref = "s2a_users",
     .message = SUBSCRIBE_MESSAGE,
     .refused = "No such user or group",
     .refused_status = 404},
    {.name = "group_id",
     .type = S2A_ADMIN_REF,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = CREATE | S2A_ADMIN_REQUIRED,
     .ref = "s2a_groups",
     .message = SUBSCRIBE_MESSAGE,
     .refused = "No such user or group",
     .refused_status = 404},
    {.name = "days",
     .type = S2A_ADMIN_INT,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = CREATE | S2A_ADMIN_REQUIRED,
     .min = 1,
     .max = 36500,
     .message = SUBSCRIBE_MESSAGE},
    {.name = "status",
     .type = S2A_ADMIN_WORD,
     .column = "status",
     .flags = PATCH,
     .words = statuses,
     .message = "status active or disabled, expires_at Unix seconds"},
    {.name = "expires_at",
     .type = S2A_ADMIN_INT,
     .column = "expires_at",
     .flags = PATCH,
     .max = S2A_ADMIN_TIME_MAX,
     .message = "status active or disabled, expires_at Unix seconds"},
    {0},
};

/* A column of the subscription's group, read with the subscription. */
#define GROUP_LIMIT(w)                                                                             \
    " (SELECT g." w "_limit_nanousd FROM s2a_groups g WHERE g.id = s2a_subscriptions.group_id)"    \
    " AS " w "_limit_nanousd"

static const s2a_admin_filter by_user[] = {
    {"user_id", "user_id = %lld", 0},
    {0},
};

static apr_int64_t int_in(json_object *row, const char *name)
{
    json_object *v;
    return json_object_object_get_ex(row, name, &v) ? json_object_get_int64(v) : 0;
}

/* An amount as nano-USD, and in *text as USD; both null when it is below 0
 * (no limit to count against). */
static json_object *usd_or_null(apr_pool_t *p, apr_int64_t nano, json_object **text)
{
    *text = nano < 0 ? NULL : json_object_new_string(s2a_usd_format(p, nano));
    return nano < 0 ? NULL : json_object_new_int64(nano);
}

/* The windows of a row (`<window>_limit_nanousd`, `_usage_nanousd`,
 * `_start`) as they stand at `now`, added as "windows"; into *w too. */
static void windows_shape(apr_pool_t *p, json_object *row, apr_int64_t now, s2a_windows *w)
{
    s2a_window_view view[S2A_WINDOWS];
    json_object *windows = json_object_new_object();
    int i;

    memset(w, 0, sizeof(*w));
    for (i = 0; i < S2A_WINDOWS; i++) {
        const char *name = s2a_window_names[i];
        w->limit[i] = int_in(row, apr_pstrcat(p, name, "_limit_nanousd", NULL));
        w->usage[i] = int_in(row, apr_pstrcat(p, name, "_usage_nanousd", NULL));
        w->start[i] = int_in(row, apr_pstrcat(p, name, "_start", NULL));
    }
    s2a_windows_view(w, now, view);
    for (i = 0; i < S2A_WINDOWS; i++) {
        json_object *one = json_object_new_object(), *text;
        json_object_object_add(one, "limit_nanousd", usd_or_null(p, view[i].limit, &text));
        json_object_object_add(one, "limit_usd", text);
        json_object_object_add(one, "used_nanousd", usd_or_null(p, view[i].used, &text));
        json_object_object_add(one, "used_usd", text);
        json_object_object_add(one, "left_nanousd", usd_or_null(p, view[i].left, &text));
        json_object_object_add(one, "left_usd", text);
        json_object_object_add(one, "resets_at", json_object_new_int64(view[i].resets_at));
        json_object_object_add(windows, s2a_window_names[i], one);
    }
    json_object_object_add(row, "windows", windows);
}

/* A subscription's windows as they stand, with their group's allowances
 * (read with the row, then left out of it), and its standing. */
static void subscription_shape(apr_pool_t *p, json_object *row, apr_int64_t now)
{
    s2a_windows w;
    s2a_subscription_state state;
    json_object *v;
    int i, active;

    windows_shape(p, row, now, &w);
    for (i = 0; i < S2A_WINDOWS; i++) {
        json_object_object_del(row, apr_pstrcat(p, s2a_window_names[i], "_limit_nanousd", NULL));
    }
    active = json_object_object_get_ex(row, "status", &v) &&
             strcmp(json_object_get_string(v), "active") == 0;
    state = s2a_subscription_state_at(active, int_in(row, "expires_at"), &w, now);
    json_object_object_add(row, "state",
                           json_object_new_string(s2a_subscription_state_names[state]));
}

/* A key's spend against its own limits: its windows as they stand, what
 * it spent, and what it may still spend (null: no limit). */
static void key_shape(apr_pool_t *p, json_object *row, apr_int64_t now)
{
    s2a_key_rec k;
    json_object *text;
    memset(&k, 0, sizeof(k));
    windows_shape(p, row, now, &k.budget_windows);
    k.budget = int_in(row, "budget_nanousd");
    k.spent = int_in(row, "spent_nanousd");
    json_object_object_add(row, "spent_usd", json_object_new_string(s2a_usd_format(p, k.spent)));
    json_object_object_add(row, "left_nanousd",
                           usd_or_null(p, s2a_key_budget_left(&k, now), &text));
    json_object_object_add(row, "left_usd", text);
}

const s2a_admin_resource s2a_admin_subscriptions = {
    .name = "subscriptions",
    .noun = "subscription",
    .table = "s2a_subscriptions",
    .columns =
        "id, user_id, group_id, expires_at, status, daily_usage_nanousd, daily_start,"
        " weekly_usage_nanousd, weekly_start, monthly_usage_nanousd, monthly_start,"
        " created_at," GROUP_LIMIT("daily") "," GROUP_LIMIT("weekly") "," GROUP_LIMIT("monthly"),
    .types = "iiiisiiiiiiiiii",
    .order = " ORDER BY id",
    .fields = subscription_fields,
    .filters = by_user,
    .shape = subscription_shape};

#define CODES_MESSAGE "either balance_usd (above 0) or group_id and days (1 to 36500)"

static const s2a_admin_field code_fields[] = {
    {.name = "count",
     .type = S2A_ADMIN_INT,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = CREATE,
     .min = 1,
     .max = 1000,
     .message = "count: 1 to 1000"},
    {.name = "balance",
     .type = S2A_ADMIN_MONEY,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = CREATE,
     .min = 1,
     .max = S2A_ADMIN_MONEY_MAX,
     .message = CODES_MESSAGE},
    {.name = "group_id",
     .type = S2A_ADMIN_REF,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = CREATE,
     .ref = "s2a_groups",
     .message = CODES_MESSAGE,
     .refused = "No such group",
     .refused_status = 404},
    {.name = "days",
     .type = S2A_ADMIN_INT,
     .role = S2A_ADMIN_ARGUMENT,
     .flags = CREATE,
     .min = 1,
     .max = 36500,
     .message = CODES_MESSAGE},
    {0},
};

const s2a_admin_resource s2a_admin_redeem_codes = {
    .name = "redeem_codes",
    .noun = "redeem code",
    .table = "s2a_redeem_codes",
    .columns = "id, prefix, kind, amount_nanousd, group_id, days, used_by, used_at, created_at",
    .types = "issiiiiii",
    .order = " ORDER BY id",
    .stamped = 1,
    .fields = code_fields};

static const s2a_admin_field no_fields[] = {
    {0},
};

static const s2a_admin_filter usage_filters[] = {
    {"user_id", "user_id = %lld", 0},
    {"key_id", "api_key_id = %lld", 0},
    {"account_id", "account_id = %lld", 0},
    {"group_id", "group_id = %lld", 0},
    {"from", "created_at >= %lld", 0},
    {"to", "created_at < %lld", 0},
    {"before_id", "(created_at, id) < (SELECT created_at, id FROM s2a_usage WHERE id = %lld)", 0},
    {"model", "model = %s", 1},
    {"api", "api = %s", 1},
    {0},
};

const s2a_admin_resource s2a_admin_usage = {
    .name = "usage",
    .noun = "usage row",
    .table = "s2a_usage",
    .columns = "id, request_id, attempt, user_id, api_key_id, account_id, group_id, model,"
               " upstream_model, input_tokens, output_tokens, cache_creation_tokens,"
               " cache_creation_1h_tokens, cache_read_tokens, input_cost_nanousd,"
               " output_cost_nanousd, cache_creation_cost_nanousd, cache_read_cost_nanousd,"
               " total_cost_nanousd, actual_cost_nanousd, rate_multiplier_ppm, billing_type,"
               " stream, status, outcome, duration_ms, first_token_ms, created_at,"
               " web_search_requests, web_fetch_requests, server_tool_cost_nanousd, api",
    .types = "isiiiiissiiiiiiiiiiiisbisiiiiiis",
    .order = " ORDER BY created_at DESC, id DESC",
    .paged = 1,
    .fields = no_fields,
    .filters = usage_filters};

static const s2a_admin_filter ledger_filters[] = {
    {"user_id", "user_id = %lld", 0},
    {"before_id", "id < %lld", 0},
    {0},
};

const s2a_admin_resource s2a_admin_balance_log = {
    .name = "balance_log",
    .noun = "balance change",
    .table = "s2a_balance_log",
    .columns = "id, user_id, delta_nanousd, balance_after_nanousd, kind, actor, reason, created_at",
    .types = "iiiisssi",
    .order = " ORDER BY id DESC",
    .paged = 1,
    .fields = no_fields,
    .filters = ledger_filters};

/* ---- checking a body ---- */

/* A string field's text; NULL with *why when the field does not take it. */
static const char *text_of(apr_pool_t *p, const s2a_admin_field *f, json_object *v,
                           const char **why)
{
    const char *s;
    int len, i;
    apr_int64_t chars = 0;
    if (!v || !json_object_is_type(v, json_type_string)) {
        *why = f->message;
        return NULL;
    }
    s = json_object_get_string(v);
    len = json_object_get_string_len(v);
    if (!len && !(f->flags & S2A_ADMIN_EMPTY)) {
        *why = f->message;
        return NULL;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            *why = apr_psprintf(p, "%s: control characters are not allowed", f->name);
            return NULL;
        }
        chars += (c & 0xc0) != 0x80;
    }
    if (chars > f->max) {
        *why = apr_psprintf(p, "%s: at most %" APR_INT64_T_FMT " characters", f->name, f->max);
        return NULL;
    }
    return apr_pstrmemdup(p, s, (apr_size_t)len);
}

/* An integer within [min, max]. json-c saturates numbers beyond 64 bits:
 * every max here is below that. */
static int int_of(json_object *v, apr_int64_t min, apr_int64_t max, apr_int64_t *out)
{
    apr_int64_t n;
    if (!v || !json_object_is_type(v, json_type_int)) {
        return 0;
    }
    n = json_object_get_int64(v);
    if (n < min || n > max) {
        return 0;
    }
    *out = n;
    return 1;
}

/* A decimal as a string or a number, by its text. */
static const char *decimal_text(json_object *v)
{
    if (v && json_object_is_type(v, json_type_string) &&
        strlen(json_object_get_string(v)) == (size_t)json_object_get_string_len(v)) {
        return json_object_get_string(v);
    }
    if (v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
        return json_object_get_string(v);
    }
    return NULL;
}

/* MONEY: 1 given, 0 absent, -1 not good. */
static int money_of(apr_pool_t *p, const s2a_admin_field *f, json_object *body, apr_int64_t *out)
{
    json_object *v;
    const char *text;
    apr_int64_t n;
    if (json_object_object_get_ex(body, apr_pstrcat(p, f->name, "_nanousd", NULL), &v)) {
        return int_of(v, f->min, f->max, out) ? 1 : -1;
    }
    if (!json_object_object_get_ex(body, apr_pstrcat(p, f->name, "_usd", NULL), &v)) {
        return 0;
    }
    text = decimal_text(v);
    if (!text || s2a_usd_parse_nano(text, &n) != 0 || n < f->min || n > f->max) {
        return -1;
    }
    *out = n;
    return 1;
}

static int word_of(const s2a_admin_field *f, json_object *v, const char **out)
{
    int i;
    if (!v || !json_object_is_type(v, json_type_string)) {
        return 0;
    }
    for (i = 0; f->words[i]; i++) {
        if (strcmp(json_object_get_string(v), f->words[i]) == 0 &&
            strlen(f->words[i]) == (size_t)json_object_get_string_len(v)) {
            *out = f->words[i];
            return 1;
        }
    }
    return 0;
}

/* IDS: each an id, at most 1000, repeats dropped. */
static apr_array_header_t *ids_of(apr_pool_t *p, json_object *v)
{
    apr_array_header_t *ids;
    apr_hash_t *seen = apr_hash_make(p);
    size_t i;
    if (!v || !json_object_is_type(v, json_type_array) || json_object_array_length(v) > 1000) {
        return NULL;
    }
    ids = apr_array_make(p, (int)json_object_array_length(v) + 1, sizeof(apr_int64_t));
    for (i = 0; i < json_object_array_length(v); i++) {
        apr_int64_t id;
        if (!int_of(json_object_array_get_idx(v, i), 1, S2A_ADMIN_ID_MAX, &id)) {
            return NULL;
        }
        if (!apr_hash_get(seen, &id, sizeof(id))) {
            apr_int64_t *key = apr_pmemdup(p, &id, sizeof(id));
            apr_hash_set(seen, key, sizeof(*key), key);
            APR_ARRAY_PUSH(ids, apr_int64_t) = id;
        }
    }
    return ids;
}

/* One field of the body: 1 with *val, 0 absent, -1 with *why. */
static int value_of(apr_pool_t *p, const s2a_admin_field *f, json_object *body,
                    s2a_admin_value *val, const char **why)
{
    json_object *v = NULL;
    int rc;

    memset(val, 0, sizeof(*val));
    val->field = f;
    *why = f->message;
    if (f->type == S2A_ADMIN_MONEY) {
        rc = money_of(p, f, body, &val->number);
        val->text = apr_psprintf(p, "%" APR_INT64_T_FMT, val->number);
        return rc;
    }
    if (!json_object_object_get_ex(body, f->name, &v)) {
        return 0;
    }
    switch (f->type) {
    case S2A_ADMIN_TEXT:
        return (val->text = text_of(p, f, v, why)) ? 1 : -1;
    case S2A_ADMIN_WORD:
        return word_of(f, v, &val->text) ? 1 : -1;
    case S2A_ADMIN_BOOL:
        if (!v || !json_object_is_type(v, json_type_boolean)) {
            return -1;
        }
        val->number = json_object_get_boolean(v) ? 1 : 0;
        break;
    case S2A_ADMIN_MULTIPLIER:
        if (!decimal_text(v) || s2a_multiplier_parse_ppm(decimal_text(v), &val->number) != 0 ||
            val->number > f->max) {
            return -1;
        }
        break;
    case S2A_ADMIN_JSON:
        if ((*why = f->check(p, v)) != NULL) {
            return -1;
        }
        val->text = f->stored(p, v);
        return 1;
    case S2A_ADMIN_IDS:
        return (val->ids = ids_of(p, v)) ? 1 : -1;
    case S2A_ADMIN_REF:
        if (!int_of(v, 1, S2A_ADMIN_ID_MAX, &val->number)) {
            return -1;
        }
        break;
    default: /* INT */
        if (!int_of(v, f->min, f->max, &val->number)) {
            return -1;
        }
    }
    val->text = apr_psprintf(p, "%" APR_INT64_T_FMT, val->number);
    return 1;
}

const char *s2a_admin_check(apr_pool_t *p, const s2a_admin_resource *res, json_object *body,
                            int create, s2a_admin_change *out)
{
    unsigned may = create ? S2A_ADMIN_CREATE : S2A_ADMIN_PATCH;
    const s2a_admin_field *f;

    out->res = res;
    out->create = create;
    out->values = apr_array_make(p, 8, sizeof(s2a_admin_value));
    if (body && !json_object_is_type(body, json_type_object)) {
        return "The body must be a JSON object";
    }
    for (f = res->fields; f->name; f++) {
        s2a_admin_value val;
        const char *why;
        int rc;
        if (!(f->flags & may) || (f->flags & S2A_ADMIN_GENERATED)) {
            continue;
        }
        rc = value_of(p, f, body, &val, &why);
        if (rc < 0 || (rc == 0 && create && (f->flags & S2A_ADMIN_REQUIRED))) {
            return why;
        }
        if (rc > 0) {
            APR_ARRAY_PUSH(out->values, s2a_admin_value) = val;
        }
    }
    return res->judge ? res->judge(p, body, create) : NULL;
}

const s2a_admin_value *s2a_admin_value_of(const s2a_admin_change *ch, const char *name)
{
    int i;
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        if (strcmp(v->field->name, name) == 0) {
            return v;
        }
    }
    return NULL;
}

void s2a_admin_put(s2a_admin_change *ch, const char *name, const char *text)
{
    const s2a_admin_field *f;
    for (f = ch->res->fields; f->name; f++) {
        if ((f->flags & S2A_ADMIN_GENERATED) && strcmp(f->name, name) == 0) {
            s2a_admin_value *v = apr_array_push(ch->values);
            memset(v, 0, sizeof(*v));
            v->field = f;
            v->text = text;
            return;
        }
    }
}

void s2a_admin_seal(s2a_admin_change *ch, apr_int64_t id, const s2a_admin_sealer *sealer)
{
    int i;
    for (i = 0; i < ch->values->nelts; i++) {
        s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        if (v->field->flags & S2A_ADMIN_SECRET) {
            v->text = sealer->seal(sealer->baton, id, v->text);
        }
    }
}

int s2a_admin_split_secrets(apr_pool_t *p, const s2a_admin_change *ch, s2a_admin_change *open,
                            s2a_admin_change *secret)
{
    int i;
    *open = *ch;
    *secret = *ch;
    open->values = apr_array_copy(p, ch->values);
    secret->values = apr_array_make(p, 2, sizeof(s2a_admin_value));
    secret->create = 0;
    for (i = 0; i < open->values->nelts; i++) {
        s2a_admin_value *v = &APR_ARRAY_IDX(open->values, i, s2a_admin_value);
        if (v->field->flags & S2A_ADMIN_SECRET) {
            APR_ARRAY_PUSH(secret->values, s2a_admin_value) = *v;
            v->text = "";
        }
    }
    return secret->values->nelts > 0;
}

/* ---- statements ---- */

static const char *placeholder(const s2a_admin_field *f)
{
    switch (f->type) {
    case S2A_ADMIN_TEXT:
    case S2A_ADMIN_WORD:
    case S2A_ADMIN_JSON:
        return "%s";
    case S2A_ADMIN_BOOL:
        return "%d";
    default:
        return "%lld";
    }
}

/* The values that go to columns: their count, and room for `extra` more
 * arguments. */
static int columns_of(apr_pool_t *p, const s2a_admin_change *ch, int extra, const char ***args)
{
    int i, n = 0;
    for (i = 0; i < ch->values->nelts; i++) {
        n += APR_ARRAY_IDX(ch->values, i, s2a_admin_value).field->role == S2A_ADMIN_COLUMN;
    }
    *args = apr_pcalloc(p, sizeof(**args) * (apr_size_t)(n + extra + 1));
    return n;
}

void s2a_admin_insert(apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t now,
                      s2a_admin_stmt *out)
{
    const char *cols = "", *vals = "";
    int i;
    columns_of(p, ch, 1, &out->args);
    out->nargs = 0;
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        if (v->field->role != S2A_ADMIN_COLUMN) {
            continue;
        }
        cols = apr_pstrcat(p, cols, out->nargs ? ", " : "", v->field->column, NULL);
        vals = apr_pstrcat(p, vals, out->nargs ? ", " : "", placeholder(v->field), NULL);
        out->args[out->nargs++] = v->text;
    }
    if (ch->res->stamped) {
        cols = apr_pstrcat(p, cols, out->nargs ? ", " : "", "created_at", NULL);
        vals = apr_pstrcat(p, vals, out->nargs ? ", " : "", "%lld", NULL);
        out->args[out->nargs++] = apr_psprintf(p, "%" APR_INT64_T_FMT, now);
    }
    out->sql =
        apr_pstrcat(p, "INSERT INTO ", ch->res->table, " (", cols, ") VALUES (", vals, ")", NULL);
}

int s2a_admin_update(apr_pool_t *p, const s2a_admin_change *ch, apr_int64_t id, s2a_admin_stmt *out)
{
    const char *set = "";
    int i;
    if (!columns_of(p, ch, 1, &out->args)) {
        return 0;
    }
    out->nargs = 0;
    for (i = 0; i < ch->values->nelts; i++) {
        const s2a_admin_value *v = &APR_ARRAY_IDX(ch->values, i, s2a_admin_value);
        const s2a_admin_field *f = v->field;
        if (f->role != S2A_ADMIN_COLUMN) {
            continue;
        }
        set = apr_pstrcat(p, set, out->nargs ? ", " : "", f->column, " = ", placeholder(f), NULL);
        out->args[out->nargs++] = v->text;
        if (f->also && strcmp(v->text, f->also_when) == 0) {
            set = apr_pstrcat(p, set, ", ", f->also, NULL);
        }
    }
    out->args[out->nargs++] = apr_psprintf(p, "%" APR_INT64_T_FMT, id);
    out->sql = apr_pstrcat(p, "UPDATE ", ch->res->table, " SET ", set, " WHERE id = %lld", NULL);
    return 1;
}

/* ---- listings ---- */

/* A number of at most 18 digits: no sign, no overflow. */
static int is_number(const char *s)
{
    size_t n = strlen(s), i;
    if (!n || n > 18) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!apr_isdigit(s[i])) {
            return 0;
        }
    }
    return 1;
}

static const char *filters_parse(apr_pool_t *p, const s2a_admin_filter *filters,
                                 apr_table_t *params, s2a_admin_query *out, int room)
{
    const s2a_admin_filter *f;
    out->where = "";
    out->nargs = 0;
    out->args = apr_pcalloc(p, sizeof(*out->args) * (apr_size_t)room);
    for (f = filters; f && f->param; f++) {
        const char *v = params ? apr_table_get(params, f->param) : NULL;
        if (!v) {
            continue;
        }
        if (f->text ? (!*v || strlen(v) > 127) : !is_number(v)) {
            return apr_pstrcat(p, f->param, f->text ? ": a model name" : ": a number", NULL);
        }
        out->where =
            apr_pstrcat(p, out->where, out->nargs ? " AND " : " WHERE ", f->condition, NULL);
        out->args[out->nargs++] = v;
    }
    return NULL;
}

static int filter_count(const s2a_admin_filter *filters)
{
    int n = 0;
    while (filters && filters[n].param) {
        n++;
    }
    return n;
}

const char *s2a_admin_query_parse(apr_pool_t *p, const s2a_admin_resource *res, apr_table_t *params,
                                  s2a_admin_query *out)
{
    const char *bad = filters_parse(p, res->filters, params, out, filter_count(res->filters) + 1);
    const char *v;
    out->limit = 0;
    if (bad || !res->paged) {
        return bad;
    }
    v = params ? apr_table_get(params, "limit") : NULL;
    out->limit = !v ? 100 : is_number(v) ? apr_atoi64(v) : 0;
    if (out->limit < 1 || out->limit > 10000) {
        return "limit: 1 to 10000";
    }
    return NULL;
}

/* What a summary may be grouped by: its name, expression and row type. */
static const char *const groupings[][3] = {{"day", "(created_at / 86400) * 86400", "i"},
                                           {"model", "model", "s"},
                                           {"upstream_model", "upstream_model", "s"},
                                           {"account", "account_id", "i"},
                                           {"key", "api_key_id", "i"},
                                           {"user", "user_id", "i"},
                                           {"api", "api", "s"}};
#define GROUPINGS ((int)(sizeof(groupings) / sizeof(groupings[0])))

static int grouping(const char *name)
{
    int i;
    for (i = 0; name && i < GROUPINGS; i++) {
        if (strcmp(name, groupings[i][0]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *s2a_admin_summary_parse(apr_pool_t *p, apr_table_t *params, s2a_admin_summary *out)
{
    s2a_admin_query q;
    const char *bad, *keys, *order;
    int by = grouping(params ? apr_table_get(params, "by") : NULL), split = -1;

    if (by < 0) {
        return "by: day, model, upstream_model, account, key, user or api";
    }
    out->split = apr_table_get(params, "split");
    if (out->split && ((split = grouping(out->split)) < 0 || split == by)) {
        return "split: day, model, upstream_model, account, key, user or api, other than by";
    }
    if ((bad = filters_parse(p, usage_filters, params, &q, filter_count(usage_filters)))) {
        return bad;
    }
    out->by = groupings[by][0];
    out->split = split < 0 ? NULL : groupings[split][0];
    keys = apr_pstrcat(p, groupings[by][1], " AS k", NULL);
    order = " GROUP BY k ORDER BY k";
    out->types =
        apr_pstrcat(p, groupings[by][2], split < 0 ? "" : groupings[split][2], "iiiiiiiii", NULL);
    if (split >= 0) {
        keys = apr_pstrcat(p, keys, ", ", groupings[split][1], " AS k2", NULL);
        order = " GROUP BY k, k2 ORDER BY k, k2";
    }
    out->stmt.sql = apr_pstrcat(p, "SELECT ", keys,
                                ", COUNT(*) AS requests,"
                                " SUM(input_tokens) AS input_tokens,"
                                " SUM(output_tokens) AS output_tokens,"
                                " SUM(cache_creation_tokens) AS cache_creation_tokens,"
                                " SUM(cache_read_tokens) AS cache_read_tokens,"
                                " SUM(web_search_requests) AS web_search_requests,"
                                " SUM(server_tool_cost_nanousd) AS server_tool_cost_nanousd,"
                                " SUM(total_cost_nanousd) AS total_cost_nanousd,"
                                " SUM(actual_cost_nanousd) AS actual_cost_nanousd"
                                " FROM s2a_usage",
                                q.where, order, NULL);
    out->stmt.args = q.args;
    out->stmt.nargs = q.nargs;
    return NULL;
}

/* Renames a summary row's column `col` after its grouping `name`. */
static void summary_key(json_object *row, const char *col, const char *name)
{
    json_object *key = NULL;
    json_object_object_get_ex(row, col, &key);
    json_object_object_add(row, name, json_object_get(key));
    if (strcmp(name, "day") == 0) {
        char date[16];
        apr_time_exp_t tm;
        apr_size_t len;
        apr_time_exp_gmt(&tm, apr_time_from_sec(json_object_get_int64(key)));
        apr_strftime(date, &len, sizeof(date), "%Y-%m-%d", &tm);
        json_object_object_add(row, "date", json_object_new_string(date));
    }
    json_object_object_del(row, col);
}

void s2a_admin_summary_shape(apr_pool_t *p, const s2a_admin_summary *s, json_object *rows)
{
    size_t i;
    for (i = 0; i < json_object_array_length(rows); i++) {
        json_object *row = json_object_array_get_idx(rows, i);
        summary_key(row, "k", s->by);
        if (s->split) {
            summary_key(row, "k2", s->split);
        }
    }
}

/* ---- answers ---- */

void s2a_admin_shape(apr_pool_t *p, const s2a_admin_resource *res, json_object *row,
                     apr_int64_t now)
{
    const s2a_admin_field *f;
    json_object *v;
    for (f = res->fields; f->name; f++) {
        if (!f->column || !json_object_object_get_ex(row, f->column, &v)) {
            continue;
        }
        if (f->type == S2A_ADMIN_MONEY) {
            json_object_object_add(
                row, apr_pstrcat(p, f->name, "_usd", NULL),
                json_object_new_string(s2a_usd_format(p, json_object_get_int64(v))));
        } else if (f->type == S2A_ADMIN_MULTIPLIER) {
            /* parts per million are micro-units: formatted through nano-USD */
            json_object_object_add(
                row, f->name,
                json_object_new_string(s2a_usd_format(p, json_object_get_int64(v) * 1000)));
        }
    }
    if (res->shape) {
        res->shape(p, row, now);
    }
}

json_object *s2a_admin_account_state(json_object *row, const s2a_account_state *st, apr_time_t now)
{
    json_object *state = json_object_new_object(), *w = json_object_new_object(), *v;
    const char *row_status =
        json_object_object_get_ex(row, "status", &v) ? json_object_get_string(v) : NULL;
    int schedulable =
        json_object_object_get_ex(row, "schedulable", &v) && json_object_get_boolean(v);
    apr_time_t until;
    s2a_status status = s2a_account_status(row_status, schedulable, st, now, &until);

    json_object_object_add(state, "status", json_object_new_string(s2a_status_names[status]));
    json_object_object_add(state, "status_until", json_object_new_int64(apr_time_sec(until)));
    json_object_object_add(state, "in_flight", json_object_new_int(st->in_flight));
    json_object_object_add(state, "error", json_object_new_boolean(st->error));
    json_object_object_add(state, "rate_limited_until",
                           json_object_new_int64(apr_time_sec(st->rate_limited_until)));
    json_object_object_add(state, "overloaded_until",
                           json_object_new_int64(apr_time_sec(st->overloaded_until)));
    json_object_object_add(state, "last_used_at",
                           json_object_new_int64(apr_time_sec(st->last_used)));
    json_object_object_add(w, "status",
                           json_object_new_string(s2a_window_status_name(st->window_status)));
    json_object_object_add(w, "reset_at", json_object_new_int64(apr_time_sec(st->window_reset)));
    json_object_object_add(state, "window_5h", w);
    return state;
}

const char *s2a_admin_codes_ask(const s2a_admin_change *ch, s2a_admin_codes *out)
{
    const s2a_admin_value *count = s2a_admin_value_of(ch, "count");
    const s2a_admin_value *balance = s2a_admin_value_of(ch, "balance");
    const s2a_admin_value *group = s2a_admin_value_of(ch, "group_id");
    const s2a_admin_value *days = s2a_admin_value_of(ch, "days");

    memset(out, 0, sizeof(*out));
    out->count = count ? (int)count->number : 1;
    if (balance) {
        out->amount = balance->number;
        return NULL;
    }
    if (!group || !days) {
        return CODES_MESSAGE;
    }
    out->subscription = 1;
    out->group_id = group->number;
    out->days = days->number;
    return NULL;
}
