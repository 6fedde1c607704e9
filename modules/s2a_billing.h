/* The usage row of an answered attempt and its cost: the one formula the
 * gateway bills by (prices in s2a_pricing.h, the write in s2a_db_billing.h). */
#ifndef S2A_BILLING_H
#define S2A_BILLING_H

#include "s2a_db_billing.h"
#include "s2a_db_catalog.h"
#include "s2a_pricing.h"
#include "s2a_usage.h"

/* How an answered attempt ended, as its row says: "client_aborted" (the
 * client left), "upstream_cut" (the connection broke, the answer had no
 * end, or a stream no final message_delta), else "ok". */
const char *s2a_billing_outcome(int client_left, int broken, int ended, int stream, int seen_delta);

/* What a row is made of. */
typedef struct {
    const char *request_id;
    int attempt;
    const s2a_key_rec *key;
    apr_int64_t account_id;
    const char *model;          /* as the client asked */
    const char *upstream_model; /* as the account was sent */
    const s2a_price *price;
    s2a_usage usage; /* as the answer carried it */
    int stream;
    const char *api; /* the door the client used (s2a_door_name); NULL: Messages */
    int status;
    const char *outcome;
    apr_time_t start, first_byte, now;
} s2a_billing_facts;

/* The row of an answered attempt (model names longer than its columns cut
 * where a character ends). A stream whose final count never came is
 * billed for the content it carried (s2a_usage_output_estimate). The cost
 * is s2a_cost_compute at the key's group multiplier; a subscription row is
 * billed to its windows (total), others to the balance (actual). *usage
 * gets the usage billed. */
void s2a_billing_row(const s2a_billing_facts *f, s2a_usage_row *row, s2a_usage *usage);

#endif
