/* routes.h — the route table: every path, method, admitted roles and handler. */
#ifndef IMPACTD_ROUTES_H
#define IMPACTD_ROUTES_H

#include <jansson.h>
#include <stddef.h>

#include "router.h"

const struct route *routes_table(size_t *n);
/* The table as `impactd routes` prints it: [{"method", "path", "roles": [role names; empty
 * for a public route], "flags": [flag names]}], in table order. New reference, NULL when out
 * of memory. */
json_t *routes_describe(void);

#endif
