/* The schema: tables created and migrated in order, and the meta table's
 * values (the schema version, secrets made once per database). */
#ifndef S2A_DB_SCHEMA_H
#define S2A_DB_SCHEMA_H

#include "s2a_db.h"

/* Creates or upgrades the schema. */
apr_status_t s2a_db_migrate(s2a_dbc *c, apr_pool_t *p, const char **err);

/* The secret kept in the database under `name`; `fresh` is stored first if
 * there is none yet, so every process and node sharing the database ends up
 * with the same value. */
apr_status_t s2a_db_secret(s2a_dbc *c, apr_pool_t *p, const char *name, const char *fresh,
                           const char **value, const char **err);

#endif
