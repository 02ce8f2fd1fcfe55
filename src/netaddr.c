/* netaddr.c — the address classifier behind every webhook connection (netaddr.h).
 *
 * Owns the tables of what is not globally reachable, the URL-host and webhook_resolve
 * parsers; no sockets, no DNS, no policy about when the check applies (the callers read
 * webhook_allow_private).
 *
 * An address is judged by the longest prefix of its family's table that holds it; no entry
 * means globally reachable for IPv4, and outside global unicast (refused) for IPv6. Sources,
 * as published by IANA (the registries' entries are copied row by row, RFC in each name):
 *  - IPv4 Special-Purpose Address Registry,
 *    https://www.iana.org/assignments/iana-ipv4-special-registry/
 *  - IPv6 Special-Purpose Address Registry,
 *    https://www.iana.org/assignments/iana-ipv6-special-registry/
 *  - IPv4 Address Space (224/4 multicast, 240/4 reserved) and IPv4 Multicast Address Space,
 *    https://www.iana.org/assignments/ipv4-address-space/, .../multicast-addresses/
 *  - IPv6 Address Space (global unicast is 2000::/3; fec0::/10 site-local, deprecated by
 *    RFC 3879; ff00::/8 multicast), https://www.iana.org/assignments/ipv6-address-space/
 * Entries whose "Globally Reachable" is True and that sit inside a refused block are listed
 * as GLOBAL (192.0.0.9, 192.0.0.10, 2001:1::1-3, ...); True entries elsewhere need no row
 * (192.31.196.0/24, 192.52.193.0/24, 192.175.48.0/24, 2620:4f:8000::/48). "N/A" entries are
 * refused (192.88.99.0/24, 2001:10::/28), except those that carry an IPv4 address: 6to4 and
 * Teredo are judged by it (Teredo by both its server's and its client's). IPv4-mapped
 * addresses are judged by their IPv4 address (a v6 socket reaches it), and so are NAT64
 * 64:ff9b::/96 ones (a DNS64 host reaches 169.254.169.254 as 64:ff9b::a9fe:a9fe). */
#include "impactd/netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum verdict {
    REFUSE,         /* not globally reachable */
    GLOBAL,         /* globally reachable (an exception inside a refused block) */
    EMBED,          /* judged by the IPv4 address at byte `at` */
    TEREDO,         /* judged by the server (bytes 4-7) and client (~bytes 12-15) IPv4 */
};

struct block {
    const char *prefix;     /* address text */
    int len;                /* prefix length in bits */
    enum verdict verdict;
    int at;                 /* EMBED: byte offset of the IPv4 address */
    const char *name;       /* "prefix/len what (RFC)" */
};

static const struct block V4[] = {
    { "0.0.0.0", 8, REFUSE, 0, "0.0.0.0/8 this network (RFC 791)" },
    { "0.0.0.0", 32, REFUSE, 0, "0.0.0.0/32 this host on this network (RFC 1122)" },
    { "10.0.0.0", 8, REFUSE, 0, "10.0.0.0/8 private-use (RFC 1918)" },
    { "100.64.0.0", 10, REFUSE, 0, "100.64.0.0/10 shared address space (RFC 6598)" },
    { "127.0.0.0", 8, REFUSE, 0, "127.0.0.0/8 loopback (RFC 1122)" },
    { "169.254.0.0", 16, REFUSE, 0, "169.254.0.0/16 link local (RFC 3927)" },
    { "172.16.0.0", 12, REFUSE, 0, "172.16.0.0/12 private-use (RFC 1918)" },
    { "192.0.0.0", 24, REFUSE, 0, "192.0.0.0/24 IETF protocol assignments (RFC 6890)" },
    { "192.0.0.0", 29, REFUSE, 0, "192.0.0.0/29 IPv4 service continuity prefix (RFC 7335)" },
    { "192.0.0.8", 32, REFUSE, 0, "192.0.0.8/32 IPv4 dummy address (RFC 7600)" },
    { "192.0.0.9", 32, GLOBAL, 0, "192.0.0.9/32 port control protocol anycast (RFC 7723)" },
    { "192.0.0.10", 32, GLOBAL, 0, "192.0.0.10/32 traversal using relays around NAT anycast "
                                   "(RFC 8155)" },
    { "192.0.0.170", 32, REFUSE, 0, "192.0.0.170/32 NAT64/DNS64 discovery (RFC 8880)" },
    { "192.0.0.171", 32, REFUSE, 0, "192.0.0.171/32 NAT64/DNS64 discovery (RFC 8880)" },
    { "192.0.2.0", 24, REFUSE, 0, "192.0.2.0/24 documentation TEST-NET-1 (RFC 5737)" },
    { "192.88.99.0", 24, REFUSE, 0, "192.88.99.0/24 deprecated 6to4 relay anycast (RFC 7526)" },
    { "192.168.0.0", 16, REFUSE, 0, "192.168.0.0/16 private-use (RFC 1918)" },
    { "198.18.0.0", 15, REFUSE, 0, "198.18.0.0/15 benchmarking (RFC 2544)" },
    { "198.51.100.0", 24, REFUSE, 0, "198.51.100.0/24 documentation TEST-NET-2 (RFC 5737)" },
    { "203.0.113.0", 24, REFUSE, 0, "203.0.113.0/24 documentation TEST-NET-3 (RFC 5737)" },
    { "224.0.0.0", 4, REFUSE, 0, "224.0.0.0/4 multicast (RFC 5771)" },
    { "240.0.0.0", 4, REFUSE, 0, "240.0.0.0/4 reserved (RFC 1112)" },
    { "255.255.255.255", 32, REFUSE, 0, "255.255.255.255/32 limited broadcast (RFC 919)" },
};

static const struct block V6[] = {
    { "::", 0, REFUSE, 0, "outside global unicast 2000::/3 (IPv6 address space)" },
    { "::", 96, REFUSE, 0, "::/96 IPv4-compatible, deprecated (RFC 4291)" },
    { "::", 128, REFUSE, 0, "::/128 unspecified (RFC 4291)" },
    { "::1", 128, REFUSE, 0, "::1/128 loopback (RFC 4291)" },
    { "::ffff:0:0", 96, EMBED, 12, "::ffff:0:0/96 IPv4-mapped (RFC 4291)" },
    { "64:ff9b::", 96, EMBED, 12, "64:ff9b::/96 IPv4-IPv6 translation (RFC 6052)" },
    { "64:ff9b:1::", 48, REFUSE, 0, "64:ff9b:1::/48 local-use IPv4/IPv6 translation "
                                    "(RFC 8215)" },
    { "100::", 64, REFUSE, 0, "100::/64 discard-only (RFC 6666)" },
    { "2000::", 3, GLOBAL, 0, "2000::/3 global unicast" },
    { "2001::", 23, REFUSE, 0, "2001::/23 IETF protocol assignments (RFC 2928)" },
    { "2001::", 32, TEREDO, 0, "2001::/32 Teredo (RFC 4380)" },
    { "2001:1::1", 128, GLOBAL, 0, "2001:1::1/128 port control protocol anycast (RFC 7723)" },
    { "2001:1::2", 128, GLOBAL, 0, "2001:1::2/128 traversal using relays around NAT anycast "
                                   "(RFC 8155)" },
    { "2001:1::3", 128, GLOBAL, 0, "2001:1::3/128 DNS-SD service registration protocol "
                                   "anycast (RFC 9665)" },
    { "2001:2::", 48, REFUSE, 0, "2001:2::/48 benchmarking (RFC 5180)" },
    { "2001:3::", 32, GLOBAL, 0, "2001:3::/32 AMT (RFC 7450)" },
    { "2001:4:112::", 48, GLOBAL, 0, "2001:4:112::/48 AS112-v6 (RFC 7535)" },
    { "2001:10::", 28, REFUSE, 0, "2001:10::/28 deprecated ORCHID (RFC 4843)" },
    { "2001:20::", 28, GLOBAL, 0, "2001:20::/28 ORCHIDv2 (RFC 7343)" },
    { "2001:30::", 28, GLOBAL, 0, "2001:30::/28 drone remote ID protocol entity tags "
                                  "(RFC 9374)" },
    { "2001:db8::", 32, REFUSE, 0, "2001:db8::/32 documentation (RFC 3849)" },
    { "2002::", 16, EMBED, 2, "2002::/16 6to4 (RFC 3056)" },
    { "3fff::", 20, REFUSE, 0, "3fff::/20 documentation (RFC 9637)" },
    { "5f00::", 16, REFUSE, 0, "5f00::/16 segment routing SIDs (RFC 9602)" },
    { "fc00::", 7, REFUSE, 0, "fc00::/7 unique-local (RFC 4193)" },
    { "fe80::", 10, REFUSE, 0, "fe80::/10 link-local unicast (RFC 4291)" },
    { "fec0::", 10, REFUSE, 0, "fec0::/10 site-local, deprecated (RFC 3879)" },
    { "ff00::", 8, REFUSE, 0, "ff00::/8 multicast (RFC 4291)" },
};

#define NV4 (sizeof V4 / sizeof V4[0])
#define NV6 (sizeof V6 / sizeof V6[0])

static bool in_prefix(const unsigned char *a, const unsigned char *p, int len)
{
    int whole = len / 8, rest = len % 8;
    if (memcmp(a, p, (size_t)whole) != 0)
        return false;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return rest == 0 || (a[whole] & mask) == (p[whole] & mask);
}

/* The longest block of the table that holds a; NULL when none does. */
static const struct block *lookup(int family, const unsigned char *a)
{
    const struct block *table = family == AF_INET ? V4 : V6;
    size_t n = family == AF_INET ? NV4 : NV6;
    const struct block *best = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char p[16];
        if (inet_pton(family, table[i].prefix, p) == 1 && in_prefix(a, p, table[i].len) &&
            (!best || table[i].len > best->len))
            best = &table[i];
    }
    return best;
}

const char *netaddr_nonglobal(int family, const void *addr)
{
    if (family != AF_INET && family != AF_INET6)
        return "not an IP address";
    const unsigned char *a = addr;
    const struct block *b = lookup(family, a);
    if (!b)
        return NULL;
    switch (b->verdict) {
    case GLOBAL:
        return NULL;
    case EMBED:
        return netaddr_nonglobal(AF_INET, a + b->at);
    case TEREDO: {
        unsigned char client[4];
        for (int i = 0; i < 4; i++)
            client[i] = (unsigned char)~a[12 + i];
        const char *why = netaddr_nonglobal(AF_INET, a + 4);
        return why ? why : netaddr_nonglobal(AF_INET, client);
    }
    case REFUSE:
    default:
        return b->name;
    }
}

const char *netaddr_nonglobal_sa(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return netaddr_nonglobal(AF_INET,
                                 &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return netaddr_nonglobal(AF_INET6,
                                 &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    return "not an IP address";
}

const struct addrinfo *netaddr_first_nonglobal(const struct addrinfo *list, const char **why)
{
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        const char *w = ai->ai_addr ? netaddr_nonglobal_sa(ai->ai_addr) : "no address";
        if (w) {
            *why = w;
            return ai;
        }
    }
    *why = NULL;
    return NULL;
}

/* "localhost", a name under .localhost, with or without the final dot (RFC 6761, 6.3). */
static bool is_localhost(const char *host)
{
    size_t n = strlen(host);
    if (n && host[n - 1] == '.')
        n--;
    return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
           (n > 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0);
}

const char *netaddr_host_nonglobal(const char *host)
{
    char h[256];
    if (netaddr_url_host(host, h, sizeof h) != 0)
        return host[0] == '[' ? "not an IPv6 address in brackets" : "not a host name";
    if (is_localhost(h))
        return "localhost name (RFC 6761)";
    unsigned char a[16];
    if (inet_pton(AF_INET, h, a) == 1)
        return netaddr_nonglobal(AF_INET, a);
    if (inet_pton(AF_INET6, h, a) == 1)
        return netaddr_nonglobal(AF_INET6, a);
    return NULL;
}

int netaddr_url_host(const char *uri_host, char *out, size_t outlen)
{
    size_t n = strlen(uri_host);
    bool bracketed = n > 0 && uri_host[0] == '[';
    if (bracketed) {
        if (n < 3 || uri_host[n - 1] != ']')
            return -1;
        uri_host++;
        n -= 2;
    }
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, uri_host, n);
    out[n] = '\0';
    unsigned char a[16];
    return !bracketed || inet_pton(AF_INET6, out, a) == 1 ? 0 : -1;
}

bool netaddr_is_literal(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

void netaddr_ntop(const struct sockaddr *sa, char *buf, size_t buflen)
{
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    if (buflen == 0)
        return;
    if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
        !inet_ntop(sa->sa_family, a, buf, (socklen_t)buflen))
        buf[0] = '\0';
}

/* ---- webhook_resolve ---- */

struct override {
    char host[256];
    int port;
    char addr[INET6_ADDRSTRLEN];
};

/* Parses the entry at *p (up to the next comma) into o and moves *p past it. Returns 1 for
 * an entry, 0 at the end of spec, -1 (and *p past it) for a malformed entry. */
static int override_next(const char **p, struct override *o)
{
    const char *s = *p;
    while (*s == ',' || isspace((unsigned char)*s))
        s++;
    if (!*s)
        return 0;
    const char *end = strchr(s, ',');
    if (!end)
        end = s + strlen(s);
    *p = end;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    const char *c1 = memchr(s, ':', (size_t)(end - s));
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
    if (!c2 || c1 == s || (size_t)(c1 - s) >= sizeof o->host)
        return -1;
    memcpy(o->host, s, (size_t)(c1 - s));
    o->host[c1 - s] = '\0';
    char digits[8];
    size_t nd = (size_t)(c2 - c1 - 1);
    if (nd == 0 || nd >= sizeof digits)
        return -1;
    memcpy(digits, c1 + 1, nd);
    digits[nd] = '\0';
    char *stop;
    long port = strtol(digits, &stop, 10);
    if (*stop || !isdigit((unsigned char)digits[0]) || port < 1 || port > 65535)
        return -1;
    o->port = (int)port;
    char text[INET6_ADDRSTRLEN + 2];
    size_t na = (size_t)(end - c2 - 1);
    if (na >= sizeof text)
        return -1;
    memcpy(text, c2 + 1, na);
    text[na] = '\0';
    unsigned char a[16];
    if (text[0] == '[') {
        if (netaddr_url_host(text, o->addr, sizeof o->addr) != 0)
            return -1;
    } else if (na < sizeof o->addr &&
               (inet_pton(AF_INET, text, a) == 1 || inet_pton(AF_INET6, text, a) == 1)) {
        memcpy(o->addr, text, na + 1);
    } else {
        return -1;
    }
    return 1;
}

int netaddr_override_check(const char *spec, char *err, size_t errlen)
{
    const char *p = spec;
    struct override o;
    int r;
    while ((r = override_next(&p, &o)) != 0) {
        if (r < 0) {
            snprintf(err, errlen, "webhook_resolve: \"%s\" is not a list of host:port:address "
                     "(address an IPv4 or IPv6 literal)", spec);
            return -1;
        }
    }
    return 0;
}

int netaddr_override_find(const char *spec, const char *host, int port, char *addr,
                          size_t addrlen)
{
    const char *p = spec;
    struct override o;
    int r;
    while ((r = override_next(&p, &o)) != 0) {
        if (r > 0 && o.port == port && strcasecmp(o.host, host) == 0) {
            snprintf(addr, addrlen, "%s", o.addr);
            return 1;
        }
    }
    return 0;
}
