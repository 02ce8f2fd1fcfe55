/* offers.c — offers: what manufacturers can deliver (stock, or capacity by a date).
 *
 * Owns the offer's descriptor (every field once: resource.h), its statuses and delivery
 * scopes, and the rules its field table cannot say. Everything else — validation, storage,
 * matching, reading, listing — is the generic engine's (engine.c) and the market functions'
 * (src/scripts/items.lua, match.lua). */
#include <stdio.h>

#include "impactd/catalog.h"
#include "impactd/checks.h"
#include "impactd/engine.h"
#include "impactd/handlers.h"
#include "impactd/problem.h"
#include "impactd/resource.h"

#define QMAX 1000000000

static const char *const STATUSES[] = { "open", "depleted", "withdrawn", "expired", NULL };
const struct enumtype ENUM_OFFER_STATUS = {
    "OfferStatus", "OFFER_STATUS", STATUSES,
    "`open` → `depleted` (remaining 0 after allocations; reopens when PATCH raises "
    "`quantity`) | `withdrawn` (DELETE) | `expired` (`expires_at` passed).",
};

static const char *const SCOPES[] = { "region", "neighbours", "national", NULL };
const struct enumtype ENUM_DELIVERY_SCOPE = {
    "DeliveryScope", "DELIVERY_SCOPE", SCOPES,
    "How far an offer may go: its own region only, also bordering regions, or anywhere. An "
    "offer always serves needs of its own region.",
};

static const struct field FIELDS_OFFER[] = {
    { "id", 0, FT_ID, F_OUT, .ref = "off_", .schema = "OfferId" },
    { "participant_id", 1, FT_REF, F_OUT | F_OWNER, .ref = "prt_", .schema = "ParticipantId" },
    { "product", 2, FT_PRODUCT, F_OUT | F_CREATE | F_REQUIRED | F_FILTER,
      .check = check_product, .schema = "ProductId" },
    { "market", 0, FT_MARKET, F_OUT, .schema = "ProductId",
      .doc = "The market the offer belongs to: the product itself, or for a `capacity` "
             "product the finished good it serves." },
    { "quantity", 3, FT_INT, F_OUT | F_CREATE | F_REQUIRED | F_PATCH, 1, QMAX,
      .doc = "Total offered." },
    { "remaining", 4, FT_INT, F_OUT, 0, QMAX,
      .doc = "What is still available to matching (0 once withdrawn or expired)." },
    { "allocated", 5, FT_INT, F_OUT, 0, QMAX,
      .doc = "Sum of the offer's allocations proposed, confirmed, shipped or received." },
    { "released", 6, FT_INT, F_OUT, 0, QMAX,
      .doc = "Sum of the offer's declined or lapsed allocations; that quantity does not come "
             "back to the offer." },
    { "region", 7, FT_REGION, F_OUT | F_CREATE | F_FILTER | F_SCOPE, .check = check_region,
      .schema = "RegionCode" },
    { "ready_at", 8, FT_TIME, F_OUT | F_CREATE | F_NULL_DEFAULT,
      .doc = "When the goods can leave; defaults to the time of posting." },
    { "expires_at", 9, FT_TIME, F_OUT | F_CREATE | F_PATCH | F_NULLABLE, .check = check_future,
      .doc = "When the offer expires; null: never." },
    { "delivery_scope", 10, FT_ENUM, F_OUT | F_CREATE, .enumtype = &ENUM_DELIVERY_SCOPE,
      .dflt = "neighbours" },
    { "min_lot", 11, FT_INT, F_OUT | F_CREATE | F_NULLABLE, 1, QMAX,
      .doc = "Smallest allocation the offer accepts, except that its last `remaining` units "
             "may always go as one allocation; null: none." },
    { "note", 12, FT_STRING, F_OUT | F_CREATE | F_PATCH | F_NULLABLE, 0, 1000 },
    { "status", 13, FT_ENUM, F_OUT | F_FILTER, .enumtype = &ENUM_OFFER_STATUS },
    { "created_at", 0, FT_CREATED, F_OUT },
    { "updated_at", 14, FT_TIME, F_OUT },
    /* who offers it, as it stood then (engine.c): each allocation copies it (offer_party) */
    { "party", 15, FT_JSON, 0 },
};

const struct resource RESOURCE_OFFER = {
    "offer", "offers", "off_", "O", "Offer", FIELDS(FIELDS_OFFER), &ENUM_OFFER_STATUS, NULL, 0,
};

/* Beyond the field table: min_lot at most quantity. */
static void offer_rules(const struct req *r, const struct product *p, json_t *values,
                        json_t *errors)
{
    (void)r;
    (void)p;
    json_t *lot = json_object_get(values, "min_lot");
    json_t *q = json_object_get(values, "quantity");
    if (json_is_integer(lot) && json_is_integer(q) &&
        json_integer_value(lot) > json_integer_value(q))
        problem_errors_add(errors, "min_lot", "must not exceed quantity");
}

static const struct item_kind OFFERS = {
    &RESOURCE_OFFER, FN_OFFER_CREATE, REACH_OFFER, offer_rules,
};

void offers_create(struct req *r) { engine_create(r, &OFFERS); }
void offers_list(struct req *r) { engine_list(r, &RESOURCE_OFFER); }
void offers_get(struct req *r) { engine_get(r, &RESOURCE_OFFER); }
void offers_patch(struct req *r) { engine_update(r, &RESOURCE_OFFER, false); }
void offers_delete(struct req *r) { engine_update(r, &RESOURCE_OFFER, true); }
