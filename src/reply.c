/* reply.c — building answers: JSON bodies, problem documents, pages, store failures.
 *
 * Everything here ends in req_answer (request.c), which may hand the answer to the
 * Idempotency-Key hook before it is sent. What the documents say is problem.c's. */
#include "impactd/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/log.h"
#include "impactd/problem.h"

static const char OOM_PROBLEM[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\","
                                  "\"status\":500,\"detail\":\"out of memory\"}";
static const char JSON_TYPE[] = "application/json; charset=utf-8";
static const char PROBLEM_TYPE[] = "application/problem+json";

void reply_raw(struct req *r, int status, const char *content_type, const char *body,
               size_t len)
{
    struct req_answer a = { status, content_type, body, len };
    req_answer(r, &a);
}

void reply_empty(struct req *r, int status) { reply_raw(r, status, NULL, NULL, 0); }

static void reply_dumped(struct req *r, int status, const char *ctype, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(doc);
    if (!text) {
        reply_raw(r, 500, PROBLEM_TYPE, OOM_PROBLEM, sizeof OOM_PROBLEM - 1);
        return;
    }
    reply_raw(r, status, ctype, text, strlen(text));
    free(text);
}

void reply_json(struct req *r, int status, json_t *body)
{
    reply_dumped(r, status, JSON_TYPE, body);
}

void reply_problem(struct req *r, int status, const char *slug, const char *detail)
{
    const char *title = NULL;
    if (slug && strcmp(slug, "validation") == 0)
        title = "Validation failed";
    else if (slug && strcmp(slug, "malformed-json") == 0)
        title = "Malformed JSON";
    reply_dumped(r, status, PROBLEM_TYPE, problem_new(status, slug, title, detail, NULL));
}

void reply_problemf(struct req *r, int status, const char *slug, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    reply_problem(r, status, slug, detail);
}

void reply_invalid(struct req *r, json_t *errors)
{
    size_t n = json_array_size(errors);
    char detail[300];
    const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "field"));
    const char *msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    if (n == 1 && first && msg)
        snprintf(detail, sizeof detail, "%s%s%s", first, *first ? " " : "", msg);
    else
        snprintf(detail, sizeof detail, "%zu fields are invalid; see errors", n);
    reply_dumped(r, 422, PROBLEM_TYPE,
                 problem_new(422, "validation", "Validation failed", detail, errors));
}

bool reply_if_invalid(struct req *r, json_t *errors)
{
    if (json_array_size(errors) == 0) {
        json_decref(errors);
        return false;
    }
    reply_invalid(r, errors);
    return true;
}

void reply_store_failure(struct req *r, enum store_status status, const redisReply *reply)
{
    if (status == STORE_OK && store_reply_full(reply)) {
        /* nothing ran: like an outage, the Idempotency-Key is released; logged by the store */
        req_set_header(r, "Retry-After", "5");
        reply_problem(r, 503, NULL, "the store is full (Redis reached its maxmemory): nothing "
                                    "was written; reads still work; try again later");
        return;
    }
    if (status == STORE_OK) {
        log_error("msg=\"unexpected redis reply\" req=%s reply=\"%.300s\"", r->id,
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected type");
        reply_problem(r, 500, NULL, "the store answered unexpectedly; the error is logged");
        return;
    }
    req_set_header(r, "Retry-After", "1");
    if (status != STORE_DOWN)
        r->outcome_unknown = true;      /* the call may have run: idempotency.c keeps its key */
    reply_problem(r, 503, NULL, status == STORE_TIMEOUT
                                    ? "the store did not answer in time; the request may still "
                                      "take effect: retry with the same Idempotency-Key"
                                : status == STORE_LOST
                                    ? "the connection to the store was lost; the request may "
                                      "have taken effect: retry with the same Idempotency-Key"
                                    : "the store is unavailable; try again shortly");
}

bool reply_store_failed(struct req *r, enum store_status status, const redisReply *reply)
{
    if (status == STORE_OK && reply && !store_reply_error(reply, NULL))
        return false;
    reply_store_failure(r, status, reply);
    return true;
}

void reply_page(struct req *r, json_t *items, const char *next_cursor)
{
    json_t *body = json_object();
    if (body) {
        json_object_set_new(body, "items", items ? items : json_array());
        json_object_set_new(body, "next_cursor", next_cursor ? json_string(next_cursor)
                                                             : json_null());
    } else {
        json_decref(items);
    }
    reply_json(r, 200, body);
}
