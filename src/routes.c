/* routes.c — the route table: the one place that says which roles may call what.
 *
 * Roles are enforced by http.c from this table before any handler runs; handlers check only
 * ownership. ROLE_PUBLIC routes need no token. routes_describe() writes the table out as JSON
 * (`impactd routes`), which the authorization matrix test reads (test_authz_matrix.py). */
#include "impactd/routes.h"

#include "impactd/handlers.h"

#define A ROLE_ADMIN
#define ANY ROLE_ANY
#define MF ROLE_MANUFACTURER
#define PARTY (ROLE_MANUFACTURER | ROLE_HOSPITAL)
#define READ (ROLE_MINISTRY | ROLE_ADMIN)
#define ACT (ROUTE_BODY_OPTIONAL | ROUTE_IDEM_ATOMIC)

static const struct route ROUTES[] = {
    /* operations */
    { M_GET, "/healthz", ROLE_PUBLIC, 0, ops_healthz },
    { M_GET, "/readyz", ROLE_PUBLIC, 0, ops_readyz },
    { M_GET, "/metrics", ROLE_PUBLIC, 0, ops_metrics },
    { M_GET, "/openapi.json", ROLE_PUBLIC, 0, ops_openapi },
    { M_GET, "/v1/keys", ROLE_PUBLIC, 0, keys_list },
    /* catalogue */
    { M_GET, "/v1/catalog/products", ROLE_PUBLIC, 0, catalog_list_products },
    { M_GET, "/v1/catalog/products/{id}", ROLE_PUBLIC, 0, catalog_get_product },
    { M_GET, "/v1/catalog/regions", ROLE_PUBLIC, 0, catalog_list_regions },
    { M_GET, "/v1/catalog/regions/{code}", ROLE_PUBLIC, 0, catalog_get_region },
    /* participants and tokens */
    { M_GET, "/v1/me", ANY, 0, participants_me },
    { M_POST, "/v1/participants", A, ROUTE_BODY, participants_create },
    { M_GET, "/v1/participants/{id}", ANY, 0, participants_get },
    { M_PATCH, "/v1/participants/{id}", ANY, ROUTE_BODY, participants_patch },
    { M_POST, "/v1/participants/{id}/tokens", A, ROUTE_BODY_OPTIONAL, participants_issue_token },
    { M_DELETE, "/v1/tokens/{token_id}", ANY, 0, participants_revoke_token },
    /* offers: manufacturers post and change their own; everyone reads what they may see */
    { M_POST, "/v1/offers", MF, ROUTE_BODY | ROUTE_IDEM_ATOMIC, offers_create },
    { M_GET, "/v1/offers", ANY, 0, offers_list },
    { M_GET, "/v1/offers/{id}", ANY, 0, offers_get },
    { M_PATCH, "/v1/offers/{id}", MF, ROUTE_BODY, offers_patch },
    { M_DELETE, "/v1/offers/{id}", MF, 0, offers_delete },
    /* needs: hospitals (finished goods) and manufacturers (their inputs) */
    { M_POST, "/v1/needs", PARTY, ROUTE_BODY | ROUTE_IDEM_ATOMIC, needs_create },
    { M_GET, "/v1/needs", PARTY | READ, 0, needs_list },
    { M_GET, "/v1/needs/{id}", PARTY | READ, 0, needs_get },
    { M_PATCH, "/v1/needs/{id}", PARTY, ROUTE_BODY, needs_patch },
    { M_DELETE, "/v1/needs/{id}", PARTY, 0, needs_delete },
    /* allocations: both sides act on their own; ministry and admin read */
    { M_GET, "/v1/allocations", PARTY | READ, 0, allocations_list },
    { M_GET, "/v1/allocations/{id}", PARTY | READ, 0, allocations_get },
    { M_POST, "/v1/allocations/{id}/confirm", PARTY, ACT, allocations_confirm },
    { M_POST, "/v1/allocations/{id}/decline", PARTY, ACT, allocations_decline },
    { M_POST, "/v1/allocations/{id}/ship", PARTY, ACT, allocations_ship },
    { M_POST, "/v1/allocations/{id}/receive", PARTY, ACT, allocations_receive },
    { M_POST, "/v1/allocations/{id}/cancel", PARTY, ACT, allocations_cancel },
    /* the ministry's feeds (a regional token sees its regions only) */
    { M_GET, "/v1/feeds/stock", READ, 0, feeds_stock },
    { M_GET, "/v1/feeds/events", READ, 0, feeds_events },
    { M_GET, "/v1/feeds/outcomes", READ, 0, feeds_outcomes },
    /* notifications: every participant's inbox; dead letters for operators */
    { M_GET, "/v1/notifications", ANY, 0, notifications_list },
    { M_GET, "/v1/notifications/stream", ANY, 0, notifications_stream },
    { M_GET, "/v1/admin/dead-letters", A, 0, deadletters_list },
    { M_POST, "/v1/admin/dead-letters/{id}/redeliver", A, ROUTE_BODY_OPTIONAL,
      deadletters_redeliver },
};

const struct route *routes_table(size_t *n)
{
    *n = sizeof ROUTES / sizeof ROUTES[0];
    return ROUTES;
}

static const struct { unsigned bit; const char *name; } ROUTE_FLAG_NAMES[] = {
    { ROUTE_BODY, "body" },
    { ROUTE_BODY_OPTIONAL, "body_optional" },
    { ROUTE_IDEM_ATOMIC, "idem_atomic" },
};

static const unsigned ROLE_BITS[] = { ROLE_MANUFACTURER, ROLE_HOSPITAL, ROLE_MINISTRY,
                                      ROLE_ADMIN };

json_t *routes_describe(void)
{
    /* Each new value is handed to its container at once (the _new setters take it even when
     * they fail), so freeing `out` frees everything. */
    json_t *out = json_array();
    if (!out)
        return NULL;
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        const struct route *rt = &ROUTES[i];
        json_t *row = json_object();
        if (json_array_append_new(out, row) != 0 ||
            json_object_set_new(row, "method", json_string(router_method_name(rt->method))) != 0 ||
            json_object_set_new(row, "path", json_string(rt->pattern)) != 0)
            goto fail;
        json_t *roles = json_array();
        if (json_object_set_new(row, "roles", roles) != 0)
            goto fail;
        json_t *flags = json_array();
        if (json_object_set_new(row, "flags", flags) != 0)
            goto fail;
        for (size_t b = 0; b < sizeof ROLE_BITS / sizeof ROLE_BITS[0]; b++)
            if ((rt->roles & ROLE_BITS[b]) &&
                json_array_append_new(roles, json_string(role_name(ROLE_BITS[b]))) != 0)
                goto fail;
        for (size_t f = 0; f < sizeof ROUTE_FLAG_NAMES / sizeof ROUTE_FLAG_NAMES[0]; f++)
            if ((rt->flags & ROUTE_FLAG_NAMES[f].bit) &&
                json_array_append_new(flags, json_string(ROUTE_FLAG_NAMES[f].name)) != 0)
                goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}
