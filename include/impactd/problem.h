/* problem.h — RFC 9457 problem details documents.
 *
 * Builds the JSON body of every error impactd answers. Knows the status phrases and the
 * problem types; does not send anything (http.c does). */
#ifndef IMPACTD_PROBLEM_H
#define IMPACTD_PROBLEM_H

#include <jansson.h>

#define PROBLEM_TYPE_PREFIX "tag:impactd,2026:problem:"

/* Returns a new object {type, title, status, detail[, errors]}. `slug` NULL means
 * "about:blank" with the HTTP status phrase as title; otherwise type is
 * PROBLEM_TYPE_PREFIX slug. `errors` (array of {field, message}) is stolen, may be NULL.
 * Returns NULL only when out of memory. */
json_t *problem_new(int status, const char *slug, const char *title, const char *detail,
                    json_t *errors);
const char *problem_status_phrase(int status);

/* Field errors, collected by validators. */
json_t *problem_errors_new(void);
int problem_errors_add(json_t *errors, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
