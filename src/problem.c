/* problem.c — RFC 9457 problem documents and HTTP status phrases. */
#include "impactd/problem.h"

#include <stdarg.h>
#include <stdio.h>

const char *problem_status_phrase(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

json_t *problem_new(int status, const char *slug, const char *title, const char *detail,
                    json_t *errors)
{
    json_t *p = json_object();
    if (!p) {
        json_decref(errors);
        return NULL;
    }
    char type[128];
    if (slug)
        snprintf(type, sizeof type, "%s%s", PROBLEM_TYPE_PREFIX, slug);
    else
        snprintf(type, sizeof type, "about:blank");
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "title", json_string(title ? title : problem_status_phrase(status)));
    json_object_set_new(p, "status", json_integer(status));
    json_object_set_new(p, "detail",
                        json_string(detail ? detail : problem_status_phrase(status)));
    if (errors)
        json_object_set_new(p, "errors", errors);
    return p;
}

json_t *problem_errors_new(void) { return json_array(); }

int problem_errors_add(json_t *errors, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s, s:s}", "field", field, "message", msg);
    if (!e)
        return -1;
    return json_array_append_new(errors, e);
}
