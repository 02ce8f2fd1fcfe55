/* needs.c — needs: what hospitals (finished goods) and manufacturers (their inputs) lack.
 *
 * Owns the need's descriptor (every field once: resource.h), its statuses and urgencies, and
 * the rules its field table cannot say. Everything else is the generic engine's (engine.c)
 * and the market functions' (src/scripts/items.lua, match.lua). */
#include "impactd/catalog.h"
#include "impactd/checks.h"
#include "impactd/engine.h"
#include "impactd/handlers.h"
#include "impactd/problem.h"
#include "impactd/resource.h"
#include "impactd/router.h"

#define QMAX 1000000000

/* FHIR SupplyRequest.priority, most urgent first: a code's index is its rank. */
static const char *const URGENCIES[] = { "stat", "asap", "urgent", "routine", NULL };
const struct enumtype ENUM_URGENCY = {
    "Urgency", "URGENCY", URGENCIES,
    "FHIR SupplyRequest.priority codes, most urgent first.",
};

static const char *const STATUSES[] = { "open", "allocated", "fulfilled", "cancelled",
                                        "expired", NULL };
const struct enumtype ENUM_NEED_STATUS = {
    "NeedStatus", "NEED_STATUS", STATUSES,
    "`open` (remaining > 0) ⇄ `allocated` (remaining 0; back to `open` when an allocation is "
    "declined or lapses) → `fulfilled` (all received) | `cancelled` (DELETE) | `expired` "
    "(`expires_at` passed).",
};

static const struct field FIELDS_NEED[] = {
    { "id", 0, FT_ID, F_OUT, .ref = "ned_", .schema = "NeedId" },
    { "participant_id", 1, FT_REF, F_OUT | F_OWNER, .ref = "prt_", .schema = "ParticipantId" },
    { "product", 2, FT_PRODUCT, F_OUT | F_CREATE | F_REQUIRED | F_FILTER,
      .check = check_product, .schema = "ProductId" },
    { "market", 0, FT_MARKET, F_OUT, .schema = "ProductId",
      .doc = "The market the need belongs to (the product itself)." },
    { "quantity", 3, FT_INT, F_OUT | F_CREATE | F_REQUIRED | F_PATCH, 1, QMAX,
      .doc = "Total needed." },
    { "remaining", 4, FT_INT, F_OUT, 0, QMAX,
      .doc = "What is still to be allocated (0 once cancelled or expired)." },
    { "allocated", 5, FT_INT, F_OUT, 0, QMAX,
      .doc = "Sum of the need's allocations proposed, confirmed, shipped or received." },
    { "received", 6, FT_INT, F_OUT, 0, QMAX, .doc = "Sum of the need's allocations received." },
    { "urgency", 7, FT_ENUM, F_OUT | F_CREATE | F_REQUIRED | F_PATCH, .enumtype = &ENUM_URGENCY },
    { "needed_by", 8, FT_TIME, F_OUT | F_CREATE | F_PATCH | F_NULLABLE,
      .doc = "Latest useful `ready_at` of an offer; once passed, the need is no longer "
             "matched. null: any time." },
    { "expires_at", 9, FT_TIME, F_OUT | F_CREATE | F_PATCH | F_NULLABLE, .check = check_future,
      .doc = "When the need expires; null: never." },
    { "region", 10, FT_REGION, F_OUT | F_CREATE | F_FILTER | F_SCOPE, .check = check_region,
      .schema = "RegionCode" },
    { "note", 11, FT_STRING, F_OUT | F_CREATE | F_PATCH | F_NULLABLE, 0, 1000 },
    { "status", 12, FT_ENUM, F_OUT | F_FILTER, .enumtype = &ENUM_NEED_STATUS },
    { "created_at", 0, FT_CREATED, F_OUT },
    { "updated_at", 13, FT_TIME, F_OUT },
    /* kept for matching only: how many offers a decline or lapse excluded, so that a need
     * without any skips the exclusion set */
    { "excluded", 14, FT_INT, 0 },
    /* who posted it, as it stood then (engine.c): each allocation copies it (need_party) */
    { "party", 15, FT_JSON, 0 },
};

const struct resource RESOURCE_NEED = {
    "need", "needs", "ned_", "N", "Need", FIELDS(FIELDS_NEED), &ENUM_NEED_STATUS, NULL, 0,
};

/* A hospital needs finished goods; a manufacturer its inputs (raw materials, packaging). */
static void need_rules(const struct req *r, const struct product *p, json_t *values,
                       json_t *errors)
{
    (void)values;
    if (!p)
        return;
    bool ok = r->who.role == ROLE_HOSPITAL
                  ? p->category == CAT_FINISHED_GOOD
                  : p->category == CAT_RAW_MATERIAL || p->category == CAT_PACKAGING;
    if (!ok)
        problem_errors_add(errors, "product", "a %s may need only %s; %s is a %s",
                           role_name(r->who.role),
                           r->who.role == ROLE_HOSPITAL ? "finished goods"
                                                        : "raw materials and packaging",
                           p->id, catalog_category_name(p->category));
}

static const struct item_kind NEEDS = {
    &RESOURCE_NEED, FN_NEED_CREATE, REACH_NEED, need_rules,
};

void needs_create(struct req *r) { engine_create(r, &NEEDS); }
void needs_list(struct req *r) { engine_list(r, &RESOURCE_NEED); }
void needs_get(struct req *r) { engine_get(r, &RESOURCE_NEED); }
void needs_patch(struct req *r) { engine_update(r, &RESOURCE_NEED, false); }
void needs_delete(struct req *r) { engine_update(r, &RESOURCE_NEED, true); }
