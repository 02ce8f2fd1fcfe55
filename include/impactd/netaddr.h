/* netaddr.h — which IP addresses a webhook may reach, and the host part of a webhook URL.
 *
 * One classifier, used twice: on a URL's literal host when a participant sets webhook_url,
 * and on every address a host resolves to, before webhook.c connects. An address may be
 * reached only when it is globally reachable per the IANA IPv4 and IPv6 Special-Purpose
 * Address Registries (an entry whose "Globally Reachable" is not True is refused), the IPv4
 * multicast and reserved space, and, for IPv6, only inside global unicast 2000::/3. An IPv6
 * address that carries an IPv4 one (IPv4-mapped, NAT64 64:ff9b::/96, 6to4, Teredo) is judged
 * by that IPv4 address as well. The tables are in netaddr.c, with their sources.
 *
 * Also here, because they are about the same addresses: a URL host without the brackets of
 * an IPv6 literal, and webhook_resolve, the "host:port:address" overrides that let a name be
 * given an address without DNS (like curl --resolve). Pure functions: no sockets, no DNS. */
#ifndef IMPACTD_NETADDR_H
#define IMPACTD_NETADDR_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Why addr (AF_INET: 4 bytes, AF_INET6: 16, network order) may not be reached — a static
 * text naming its registry block, e.g. "198.18.0.0/15 benchmarking (RFC 2544)" — or NULL
 * when it is globally reachable. Another family gives "not an IP address". */
const char *netaddr_nonglobal(int family, const void *addr);

/* The same for a socket address (AF_INET or AF_INET6). */
const char *netaddr_nonglobal_sa(const struct sockaddr *sa);

/* The first address of a resolver's answer that may not be reached (*why: the reason), or
 * NULL when every one of them may be. A delivery is refused when any may not: a name that
 * resolves partly to a private address is a misconfiguration or an attack. */
const struct addrinfo *netaddr_first_nonglobal(const struct addrinfo *list, const char **why);

/* For a URL's host as evhttp gives it (an IPv6 literal in brackets, an IPv4 literal, a name):
 * why it may not be a webhook's host — a literal that is not globally reachable, brackets
 * around something that is not an IPv6 address, "localhost" or a name under .localhost
 * (RFC 6761) — or NULL: a global literal, or a name (names are judged once resolved). */
const char *netaddr_host_nonglobal(const char *host);

/* Copies a URL's host into out (outlen bytes) without the brackets of an IPv6 literal.
 * -1 when it is empty, does not fit, or is bracketed but not an IPv6 address (IPvFuture). */
int netaddr_url_host(const char *uri_host, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* True when host (no brackets) is an IPv4 or IPv6 address literal rather than a name. */
bool netaddr_is_literal(const char *host);

/* The text of sa's address (no port, no brackets) in buf; "" for another family. */
void netaddr_ntop(const struct sockaddr *sa, char *buf, size_t buflen);

/* webhook_resolve: comma-separated "host:port:address" entries (address: IPv4, IPv6 with
 * or without brackets). 0 when spec (possibly "") is well formed, else -1 and a message. */
int netaddr_override_check(const char *spec, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The address the first entry of spec for host (case-insensitive) and port gives, copied
 * without brackets into addr (addrlen bytes): 1; 0 when no entry names host:port. spec is
 * assumed checked (a malformed entry is skipped). */
int netaddr_override_find(const char *spec, const char *host, int port, char *addr,
                          size_t addrlen);

#endif
