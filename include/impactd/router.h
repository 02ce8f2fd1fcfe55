/* router.h — matching a method and path against the route table.
 *
 * A route is a method, a path template whose `{name}` segments capture one path segment, the
 * roles it admits and its handler. The table itself lives in routes.c; this module only
 * matches, so it is unit-tested without a server. */
#ifndef IMPACTD_ROUTER_H
#define IMPACTD_ROUTER_H

#include <stddef.h>

struct req;

/* Roles, as a bit mask in a route's `roles`. 0 means the route needs no token. */
enum role {
    ROLE_MANUFACTURER = 1u << 0,
    ROLE_HOSPITAL = 1u << 1,
    ROLE_MINISTRY = 1u << 2,
    ROLE_ADMIN = 1u << 3,
};
#define ROLE_PUBLIC 0u
#define ROLE_ANY (ROLE_MANUFACTURER | ROLE_HOSPITAL | ROLE_MINISTRY | ROLE_ADMIN)

/* Methods, as bits, so a path's Allow header is a mask. */
enum method {
    M_GET = 1u << 0,
    M_HEAD = 1u << 1,
    M_POST = 1u << 2,
    M_PUT = 1u << 3,
    M_PATCH = 1u << 4,
    M_DELETE = 1u << 5,
    M_OPTIONS = 1u << 6,
};

enum route_flags {
    ROUTE_BODY = 1u << 0,           /* a JSON object body is required */
    ROUTE_BODY_OPTIONAL = 1u << 1,  /* a JSON object body may be sent */
    ROUTE_IDEM_ATOMIC = 1u << 2,    /* its change records its Idempotency-Key outcome in the
                                     * same atomic step (market functions): a repeat after an
                                     * unknown outcome may safely run again */
};

typedef void (*route_handler)(struct req *r);

struct route {
    unsigned method;                /* one enum method bit */
    const char *pattern;
    unsigned roles;
    unsigned flags;
    route_handler handler;
};

#define ROUTER_MAX_PARAMS 2
#define ROUTER_PARAM_LEN 128

struct route_match {
    int index;                      /* into the table; -1 when none */
    unsigned allow;                 /* methods the path admits (for 405 and OPTIONS) */
    size_t nparams;
    char params[ROUTER_MAX_PARAMS][ROUTER_PARAM_LEN];
};

/* Fills m. m->index is the matching route, or -1: then m->allow == 0 means 404, else 405.
 * HEAD matches GET routes. */
void router_match(const struct route *routes, size_t n, unsigned method, const char *path,
                  struct route_match *m);
/* "GET, HEAD, POST" for a mask; out must hold 64 bytes. */
void router_allow_header(unsigned allow, char *out, size_t outlen);
unsigned router_method_from_name(const char *name);
const char *router_method_name(unsigned method);
const char *role_name(unsigned role);
unsigned role_parse(const char *s);   /* 0 when unknown */

#endif
