/* reply.h — every way a handler answers: JSON, raw bytes, problem documents, pages.
 *
 * Each request gets exactly one answer; a second is logged and ignored. Bodies passed as
 * json_t are stolen. The helpers that decide and answer in one step (reply_if_invalid,
 * reply_store_failed) return true when they have answered, so a handler reads
 *     if (reply_store_failed(r, st, reply)) return;
 * Errors are RFC 9457 problem documents (problem.h). */
#ifndef IMPACTD_REPLY_H
#define IMPACTD_REPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "request.h"
#include "store.h"

void reply_json(struct req *r, int status, json_t *body);
void reply_raw(struct req *r, int status, const char *content_type, const char *body,
               size_t len);
void reply_empty(struct req *r, int status);
void reply_problem(struct req *r, int status, const char *slug, const char *detail);
void reply_problemf(struct req *r, int status, const char *slug, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 422 with field errors; errors is stolen. */
void reply_invalid(struct req *r, json_t *errors);
/* When errors holds any, answers 422 with them and returns true; else frees errors. */
bool reply_if_invalid(struct req *r, json_t *errors);
/* A failed store call: 503 + Retry-After when Redis is down or slow, 500 on a Redis error
 * reply (logged). */
void reply_store_failure(struct req *r, enum store_status status, const redisReply *reply);
/* True (after answering) when the call failed or Redis answered an error. */
bool reply_store_failed(struct req *r, enum store_status status, const redisReply *reply);
/* {"items": items, "next_cursor": next | null}, 200; items is stolen. */
void reply_page(struct req *r, json_t *items, const char *next_cursor);

#endif
