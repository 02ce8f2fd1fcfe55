/* checks.h — custom field checks for validate.c tables that need the catalogue or the
 * clock. Each takes the server as ctx and returns NULL or a message. */
#ifndef IMPACTD_CHECKS_H
#define IMPACTD_CHECKS_H

#include <jansson.h>

const char *check_region(const json_t *v, const void *srv);
const char *check_regions(const json_t *v, const void *srv);
const char *check_product(const json_t *v, const void *srv);
const char *check_future(const json_t *v, const void *srv);
/* Contacts and identifiers (pure: ctx unused). */
const char *check_email(const json_t *v, const void *ctx);
const char *check_phone(const json_t *v, const void *ctx);   /* E.164: +33612345678 */
const char *check_siret(const json_t *v, const void *ctx);   /* 14 digits, Luhn */
const char *check_finess(const json_t *v, const void *ctx);  /* 9: département + 7 digits */

#endif
