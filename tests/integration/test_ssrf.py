"""Webhook addresses that are not globally reachable (issue 10, defects 7 and 12; docs/webhooks.md,
Which addresses a webhook may reach).

- An IP-literal webhook_url from any special-purpose block (IANA IPv4 and IPv6 registries,
  multicast, reserved, IPv4 carried in mapped/NAT64/6to4/Teredo addresses) is 422 on
  webhook_url at creation and PATCH; global literals are accepted.
- A name that resolves to such an address is refused at delivery time, before connecting: the
  name is given its address with IMPACTD_WEBHOOK_RESOLVE (no DNS), the attempt ends at once
  with a last_error saying why, and the log names the address and its block.
- The same mapping to 127.0.0.1 delivers when IMPACTD_WEBHOOK_ALLOW_PRIVATE=1; a receiver on
  [::1] gets its webhooks (skipped where this machine has no IPv6 loopback).

Traffic stays on 127.0.0.1 and ::1: the refused addresses are never connected to (the point of
the tests), names never go to DNS (IMPACTD_WEBHOOK_RESOLVE), and a binary that does not know
that setting fails `resolving` before any daemon is given a name.
"""
from __future__ import annotations

import socket
import time

import pytest

import impactd_harness as h
from impactd_harness import assert_problem
import webhook_receiver as wr
from webhook_receiver import allocate, notify_env, party

NAME = "hook.test"      # only ever looked up in IMPACTD_WEBHOOK_RESOLVE

REFUSED_LITERALS = [
    # IPv4 special-purpose registry, multicast, reserved, broadcast
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.254", "127.0.0.2",
    "169.254.169.254", "172.31.255.255", "192.0.0.1", "192.0.0.8", "192.0.0.170",
    "192.0.2.10", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255",
    "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255",
    # IPv6 special-purpose registry and what lies outside global unicast 2000::/3
    "[::]", "[::1]", "[::127.0.0.1]", "[::ffff:127.0.0.1]", "[::ffff:a9fe:a9fe]",
    "[64:ff9b::a9fe:a9fe]", "[64:ff9b::198.18.0.1]", "[64:ff9b:1::808:808]", "[100::1]",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",   # Teredo, client 192.0.2.45
    "[2001:0:c0a8:101::fefd:fcfb]",             # Teredo, server 192.168.1.1
    "[2001:2::1]", "[2001:10::1]", "[2001:db8::1]", "[2002:c0a8:101::1]", "[2002:7f00:1::]",
    "[3fff::1]", "[5f00::1]", "[fc00::1]", "[fd12:3456::1]", "[fe80::1]", "[fec0::1]",
    "[ff02::1]", "[4000::1]",
    # names that are loopback by definition (RFC 6761)
    "localhost", "localhost.", "hooks.localhost",
]

# Globally reachable: accepted (and never delivered to: these participants get no message).
GLOBAL_LITERALS = ["8.8.8.8", "198.20.0.1", "192.0.0.9", "[2001:4860:4860::8888]",
                   "[::ffff:8.8.8.8]", "[64:ff9b::808:808]", "[2002:808:808::1]"]


def hook_url(host: str, port: int = 8443) -> str:
    return f"http://{host}:{port}/hook"


@pytest.fixture(scope="module")
def resolving(tmp_path_factory):
    """Fails unless the binary knows IMPACTD_WEBHOOK_RESOLVE (a malformed value must stop it):
    without the setting, a test's name would be sent to the system's resolver."""
    data = tmp_path_factory.mktemp("resolve-check")
    p = h.run_impactd(["--config", str(h.CONFIG_FILE), "--check-config"], {
        "IMPACTD_LISTEN": f"127.0.0.1:{h.free_port()}",
        "IMPACTD_REDIS_URL": f"redis://127.0.0.1:{h.free_port()}/0",
        "IMPACTD_DATA_DIR": str(data),
        "IMPACTD_WEBHOOK_RESOLVE": f"{NAME}:80",
    })
    assert p.returncode != 0 and "webhook_resolve" in p.stderr, \
        f"IMPACTD_WEBHOOK_RESOLVE is not understood (exit {p.returncode}): {p.stderr[-500:]}"


# ------------------------------------------------------------------ literal hosts

@pytest.mark.parametrize("host", REFUSED_LITERALS)
def test_a_non_global_literal_is_422_at_creation(admin_api, host):
    r = admin_api.post("/v1/participants", json={"role": "hospital", "name": "h", "region": "11",
                                                  "webhook_url": hook_url(host)})
    assert_problem(r, 422, field="webhook_url")


@pytest.mark.parametrize("host", REFUSED_LITERALS)
def test_a_non_global_literal_is_422_on_patch(admin_api, make_participant, host):
    p, _ = make_participant("hospital")
    r = admin_api.patch(f"/v1/participants/{p['id']}", json={"webhook_url": hook_url(host)})
    assert_problem(r, 422, field="webhook_url")
    assert admin_api.get(f"/v1/participants/{p['id']}").json()["webhook_url"] is None


@pytest.mark.parametrize("host", GLOBAL_LITERALS)
def test_a_global_literal_is_accepted(admin_api, make_participant, host):
    p, _ = make_participant("hospital")
    r = admin_api.patch(f"/v1/participants/{p['id']}", json={"webhook_url": hook_url(host)})
    assert r.status_code == 200, r.text
    assert r.json()["webhook_url"] == hook_url(host)


# ------------------------------------------------------------------ resolved names

def normalised(address: str) -> str:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_ntop(family, socket.inet_pton(family, address))


@pytest.mark.parametrize("address", ["198.18.0.1", "64:ff9b::a9fe:a9fe", "::ffff:169.254.169.254",
                                     "2002:c0a8:101::1", "192.0.0.170", "127.0.0.1", "::1"])
def test_a_name_resolving_to_a_non_global_address_is_refused_before_connecting(
        resolving, impactd, webhook_receiver, address):
    rh = webhook_receiver()     # the name's port: nothing may arrive here either
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_ALLOW_PRIVATE="0",
                               IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s",
                               IMPACTD_WEBHOOK_TIMEOUT="10s",
                               IMPACTD_WEBHOOK_RESOLVE=f"{NAME}:{rh.port}:{address}"))
    m, hp = party(d, "manufacturer"), party(d, "hospital", hook_url(NAME, rh.port))
    start = time.monotonic()
    allocate(m, hp, 10, offer_quantity=100)
    item = wr.wait_until(lambda: hp.inbox(), 10, "the hospital's inbox item")[0]
    dead = wr.wait_until(lambda: [x for x in wr.dead_letters(d) if x["message_id"] == item["id"]],
                         10, "the message in the dead letters")[0]
    elapsed = time.monotonic() - start
    assert dead["attempts"] == 1, dead
    assert "not globally reachable" in dead["last_error"], dead
    assert "not connected" in dead["last_error"], dead
    # refused by the classifier, not by a connection that failed: well within the 10 s timeout
    assert elapsed < 3.0 * h.SLOW, f"the refusal took {elapsed:.1f} s"
    refusals = [line for line in d.log().splitlines()
                if "not globally reachable" in line and f"ip={normalised(address)} " in line]
    assert refusals and f"host={NAME}" in refusals[0] and 'block="' in refusals[0], d.log()[-3000:]
    assert rh.snapshot() == [] and rh.connections == 0, rh.snapshot()


def test_a_name_given_loopback_delivers_when_private_is_allowed(resolving, impactd,
                                                               webhook_receiver):
    rh = webhook_receiver()
    # two entries (the other is never used): the list is read entry by entry
    d = impactd(env=notify_env(
        IMPACTD_WEBHOOK_RESOLVE=f"other.test:1:192.0.2.1, {NAME}:{rh.port}:127.0.0.1"))
    m, hp = party(d, "manufacturer"), party(d, "hospital", hook_url(NAME, rh.port))
    _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
    reqs = rh.wait_for(lambda rs: rs if any(r.answered == 200 for r in rs) else None, 10,
                       "the webhook at the loopback receiver")
    assert reqs[0].headers["host"] == f"{NAME}:{rh.port}", reqs[0].headers
    assert reqs[0].json()["data"]["id"] == alloc["id"]
    wr.check_webhook_signatures(reqs[0], hp.secret, wr.public_keys(d))


# ------------------------------------------------------------------ IPv6 loopback (defect 12)

class _Server6(wr._Server):
    address_family = socket.AF_INET6


class Receiver6(wr.WebhookReceiver):
    host = "::1"
    server_class = _Server6


def ipv6_loopback_missing() -> str | None:
    if not socket.has_ipv6:
        return "Python has no IPv6 support"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback on this machine ({exc})"
    return None


@pytest.fixture
def receiver6():
    missing = ipv6_loopback_missing()
    if missing:
        pytest.skip(missing)
    r = Receiver6().start()
    yield r
    r.close()


def test_delivery_to_an_ipv6_literal(impactd, receiver6):
    d = impactd(env=notify_env())
    url = receiver6.url
    assert url.startswith("http://[::1]:"), url
    m, hp = party(d, "manufacturer"), party(d, "hospital", url)
    _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
    reqs = receiver6.wait_for(lambda rs: rs if any(r.answered == 200 for r in rs) else None, 10,
                              "the webhook at the [::1] receiver")
    assert reqs[0].headers["host"] == f"[::1]:{receiver6.port}", reqs[0].headers
    assert reqs[0].json()["data"]["id"] == alloc["id"]
    wr.check_webhook_signatures(reqs[0], hp.secret, wr.public_keys(d))


def test_a_name_given_ipv6_loopback_in_brackets(resolving, impactd, receiver6):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_RESOLVE=f"{NAME}:{receiver6.port}:[::1]"))
    m, hp = party(d, "manufacturer"), party(d, "hospital", hook_url(NAME, receiver6.port))
    allocate(m, hp, 10, offer_quantity=100)
    reqs = receiver6.wait_for(lambda rs: rs if any(r.answered == 200 for r in rs) else None, 10,
                              "the webhook at the [::1] receiver")
    assert reqs[0].headers["host"] == f"{NAME}:{receiver6.port}", reqs[0].headers
