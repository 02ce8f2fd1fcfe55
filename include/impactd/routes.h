/* routes.h — the route table: every path, method, admitted roles and handler. */
#ifndef IMPACTD_ROUTES_H
#define IMPACTD_ROUTES_H

#include <stddef.h>

#include "router.h"

const struct route *routes_table(size_t *n);

#endif
