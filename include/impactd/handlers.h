/* handlers.h — the request handlers the route table points at, grouped by the module that
 * implements them. A handler answers exactly once (reply.h, stream.h). */
#ifndef IMPACTD_HANDLERS_H
#define IMPACTD_HANDLERS_H

struct req;

/* ops.c */
void ops_healthz(struct req *r);
void ops_readyz(struct req *r);
void ops_metrics(struct req *r);
void ops_openapi(struct req *r);

/* catalog_api.c */
void catalog_list_products(struct req *r);
void catalog_get_product(struct req *r);
void catalog_list_regions(struct req *r);
void catalog_get_region(struct req *r);

/* participants.c */
void participants_create(struct req *r);
void participants_get(struct req *r);
void participants_patch(struct req *r);
void participants_me(struct req *r);
void participants_issue_token(struct req *r);
void participants_revoke_token(struct req *r);

/* offers.c, needs.c (through engine.c) */
void offers_create(struct req *r);
void offers_list(struct req *r);
void offers_get(struct req *r);
void offers_patch(struct req *r);
void offers_delete(struct req *r);
void needs_create(struct req *r);
void needs_list(struct req *r);
void needs_get(struct req *r);
void needs_patch(struct req *r);
void needs_delete(struct req *r);

/* allocations.c */
void allocations_list(struct req *r);
void allocations_get(struct req *r);
void allocations_confirm(struct req *r);
void allocations_decline(struct req *r);
void allocations_ship(struct req *r);
void allocations_receive(struct req *r);
void allocations_cancel(struct req *r);

/* notifications_api.c */
void keys_list(struct req *r);
void notifications_list(struct req *r);
void notifications_stream(struct req *r);
void deadletters_list(struct req *r);
void deadletters_redeliver(struct req *r);

/* feeds.c */
void feeds_stock(struct req *r);
void feeds_events(struct req *r);

/* outcomes.c */
void feeds_outcomes(struct req *r);

#endif
