/* checks.h — custom field checks for validate.c tables that need the catalogue or the
 * clock. Each takes the server as ctx and returns NULL or a message. */
#ifndef IMPACTD_CHECKS_H
#define IMPACTD_CHECKS_H

#include <jansson.h>

const char *check_region(const json_t *v, const void *srv);
const char *check_regions(const json_t *v, const void *srv);
const char *check_product(const json_t *v, const void *srv);
const char *check_future(const json_t *v, const void *srv);

#endif
