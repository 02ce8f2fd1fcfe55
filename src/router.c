/* router.c — matching (method, path) against the route table, and role/method names.
 *
 * Paths are compared segment by segment; a `{name}` segment captures one non-empty segment.
 * Matching is a linear scan: the table has a few dozen routes. */
#include "impactd/router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Compares one template against path; fills params on success. */
static bool router_try(const char *pattern, const char *path, struct route_match *m)
{
    size_t np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchr(p, '/');
        const char *se = strchr(s, '/');
        size_t plen = pe ? (size_t)(pe - p) : strlen(p);
        size_t slen = se ? (size_t)(se - s) : strlen(s);
        if (plen > 0 && p[0] == '{') {
            if (slen == 0 || slen >= ROUTER_PARAM_LEN || np >= ROUTER_MAX_PARAMS)
                return false;
            memcpy(m->params[np], s, slen);
            m->params[np][slen] = '\0';
            np++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
    }
    if (*p || *s)
        return false;
    m->nparams = np;
    return true;
}

void router_match(const struct route *routes, size_t n, unsigned method, const char *path,
                  struct route_match *m)
{
    memset(m, 0, sizeof *m);
    m->index = -1;
    unsigned want = method == M_HEAD ? M_GET : method;
    struct route_match tmp;
    for (size_t i = 0; i < n; i++) {
        memset(&tmp, 0, sizeof tmp);
        if (!router_try(routes[i].pattern, path, &tmp))
            continue;
        m->allow |= routes[i].method;
        if (routes[i].method & M_GET)
            m->allow |= M_HEAD;
        if (m->index < 0 && routes[i].method == want) {
            m->index = (int)i;
            m->nparams = tmp.nparams;
            memcpy(m->params, tmp.params, sizeof tmp.params);
        }
    }
    if (m->allow)
        m->allow |= M_OPTIONS;
}

static const struct { unsigned bit; const char *name; } METHODS[] = {
    { M_GET, "GET" }, { M_HEAD, "HEAD" }, { M_POST, "POST" }, { M_PUT, "PUT" },
    { M_PATCH, "PATCH" }, { M_DELETE, "DELETE" }, { M_OPTIONS, "OPTIONS" },
};

void router_allow_header(unsigned allow, char *out, size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++) {
        if (!(allow & METHODS[i].bit))
            continue;
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", METHODS[i].name);
    }
}

unsigned router_method_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (strcmp(METHODS[i].name, name) == 0)
            return METHODS[i].bit;
    return 0;
}

const char *router_method_name(unsigned method)
{
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (METHODS[i].bit == method)
            return METHODS[i].name;
    return "OTHER";
}

static const struct { unsigned bit; const char *name; } ROLES[] = {
    { ROLE_MANUFACTURER, "manufacturer" },
    { ROLE_HOSPITAL, "hospital" },
    { ROLE_MINISTRY, "ministry" },
    { ROLE_ADMIN, "admin" },
};

const char *role_name(unsigned role)
{
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++)
        if (ROLES[i].bit == role)
            return ROLES[i].name;
    return "none";
}

unsigned role_parse(const char *s)
{
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++)
        if (strcmp(ROLES[i].name, s) == 0)
            return ROLES[i].bit;
    return 0;
}
