"""Webhooks (docs/notifications.md; shared/spec/API.md, section Signed notifications):
who receives what, the payload, the Standard Webhooks headers and signatures (v1 with the npm
package `standardwebhooks` and in Python, v1a with PyNaCl), GET /v1/keys, HTTPS with a test CA,
keep-alive connections shared by the messages to one endpoint."""
from __future__ import annotations

import base64
import json
import time

import pytest

import impactd_harness as h
import webhook_receiver as wr
from webhook_receiver import allocate, notify_env, party

PAYLOAD_KEYS = {"id", "type", "timestamp", "data"}
TRANSITION_TYPES = ["allocation.proposed", "allocation.confirmed", "allocation.shipped",
                    "allocation.received"]


def two_sides(impactd, webhook_receiver, env=None, tls=None):
    """A daemon, a manufacturer and a hospital (region 11), each with its own receiver."""
    d = impactd(env=notify_env(**(env or {})))
    rm, rh = webhook_receiver(tls=tls, path="/hooks/maker"), webhook_receiver(tls=tls, path="/hooks/hospital")
    m = party(d, "manufacturer", rm.url)
    hp = party(d, "hospital", rh.url)
    return d, m, hp, rm, rh


def check_payload(req: wr.Received, type_: str) -> dict:
    """The shape of a webhook request and its payload; returns the payload."""
    assert req.method == "POST", req
    ctype = req.headers.get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", f"content-type {ctype!r}"
    payload = json.loads(req.body)
    assert set(payload) == PAYLOAD_KEYS, f"payload keys {sorted(payload)}, want {sorted(PAYLOAD_KEYS)}"
    assert payload["type"] == type_, payload
    assert isinstance(payload["id"], str) and payload["id"].startswith("msg_"), payload
    assert payload["id"] == req.headers.get("webhook-id"), \
        f"payload id {payload['id']} != webhook-id {req.headers.get('webhook-id')}"
    assert h.RFC3339_UTC.match(payload["timestamp"]), payload["timestamp"]
    assert isinstance(payload["data"], dict), payload
    ts = req.headers.get("webhook-timestamp", "")
    assert ts.isdigit(), f"webhook-timestamp {ts!r} is not Unix seconds"
    assert abs(int(ts) - req.wall) < 60, f"webhook-timestamp {ts} far from now {req.wall:.0f}"
    return payload


# ------------------------------------------------------------------ keys

def test_keys_lists_an_ed25519_key_without_a_token(impactd):
    d = impactd(env=notify_env())
    r = h.api(d).get("/v1/keys")
    assert r.status_code == 200, r.text
    keys = r.json()["keys"]
    assert isinstance(keys, list) and keys, r.json()
    for k in keys:
        assert isinstance(k["kid"], str) and k["kid"], k
        assert k["alg"] == "Ed25519", k
        raw = base64.b64decode(k["public_key"], validate=True)
        assert len(raw) == 32, f"public_key is {len(raw)} bytes: {k}"
        assert k["public_key_whpk"] == "whpk_" + k["public_key"], k
        assert h.RFC3339_UTC.match(k["created_at"]), k
    assert [k for k in keys if k.get("current") is True], f"no current key: {keys}"
    assert len({k["kid"] for k in keys}) == len(keys), keys
    # the key file was created under the data dir, private
    key_file = d.data_dir / "signing.key"
    assert key_file.exists(), list(d.data_dir.iterdir())
    assert key_file.stat().st_mode & 0o077 == 0, oct(key_file.stat().st_mode)


def test_signing_key_file_is_created_private_kept_and_checked(impactd, redis_server, tmp_path):
    key_file = tmp_path / "keys" / "platform.key"
    key_file.parent.mkdir()
    env = notify_env(IMPACTD_SIGNING_KEY_FILE=str(key_file))
    d1 = impactd(redis=redis_server, env=env)
    assert key_file.exists(), "IMPACTD_SIGNING_KEY_FILE was not created"
    assert key_file.stat().st_mode & 0o777 == 0o600, oct(key_file.stat().st_mode)
    keys1 = h.api(d1).get("/v1/keys").json()["keys"]
    assert not (d1.data_dir / "signing.key").exists(), "the key went to the data dir, not the file given"
    # a second daemon given the same file publishes the same key
    d2 = impactd(redis=redis_server, env=env)
    keys2 = h.api(d2).get("/v1/keys").json()["keys"]
    assert [(k["kid"], k["public_key"]) for k in keys1] == [(k["kid"], k["public_key"]) for k in keys2]
    # readable by the group: refused
    key_file.chmod(0o640)
    d3 = impactd(redis=redis_server, env=env, wait=None)
    d3.expect_clean_exit = False
    code = d3.wait_exit(10)
    assert code not in (None, 0), f"impactd started with a group-readable signing key (exit {code})"


# ------------------------------------------------------------------ who receives what

def test_proposed_reaches_both_sides_with_distinct_ids(impactd, webhook_receiver):
    d, m, hp, rm, rh = two_sides(impactd, webhook_receiver)
    offer, need, alloc = allocate(m, hp, 100)
    got_h = rh.wait_types(["allocation.proposed"])["allocation.proposed"]
    got_m = rm.wait_types(["allocation.proposed", "offer.depleted"])
    keys = wr.public_keys(d)

    ph = check_payload(got_h, "allocation.proposed")
    pm = check_payload(got_m["allocation.proposed"], "allocation.proposed")
    assert got_h.path == "/hooks/hospital" and got_m["allocation.proposed"].path == "/hooks/maker"
    assert ph["id"] != pm["id"], "each party gets its own message id"
    for p in (ph, pm):
        data = p["data"]
        assert (data["id"], data["need_id"], data["offer_id"], data["quantity"], data["tier"],
                data["status"]) == (alloc["id"], need["id"], offer["id"], 100, "region", "proposed"), data
        assert data["need_participant_id"] == hp.id and data["offer_participant_id"] == m.id, data
    wr.check_webhook_signatures(got_h, hp.secret, keys)
    wr.check_webhook_signatures(got_m["allocation.proposed"], m.secret, keys)
    # the hospital's secret does not verify the manufacturer's message
    assert not wr.verify_v1(hp.secret, got_m["allocation.proposed"].headers,
                            got_m["allocation.proposed"].body)

    # offer.depleted goes to the offer's side only
    dep = check_payload(got_m["offer.depleted"], "offer.depleted")
    assert (dep["data"]["id"], dep["data"]["status"], dep["data"]["remaining"]) == \
        (offer["id"], "depleted", 0), dep
    wr.check_webhook_signatures(got_m["offer.depleted"], m.secret, keys)
    # nothing else, and no duplicates, arrives at either side (healthy receivers answer 200)
    rh.assert_stays(lambda reqs: [r.type for r in reqs] == ["allocation.proposed"], 1.0,
                    "only allocation.proposed at the hospital")
    rm.assert_stays(lambda reqs: sorted(r.type for r in reqs) == ["allocation.proposed", "offer.depleted"],
                    0.1, "allocation.proposed and offer.depleted at the manufacturer, once each")


def test_transitions_reach_both_sides(impactd, webhook_receiver):
    d, m, hp, rm, rh = two_sides(impactd, webhook_receiver)
    _, _, alloc = allocate(m, hp, 60, offer_quantity=100)
    rh.wait_types(["allocation.proposed"])
    rm.wait_types(["allocation.proposed"])
    for action, type_ in (("confirm", "allocation.confirmed"), ("ship", "allocation.shipped")):
        m.act(alloc["id"], action)
        for r in (rh, rm):
            r.wait_types([type_])
    hp.act(alloc["id"], "receive")
    keys = wr.public_keys(d)
    for r, who in ((rh, hp), (rm, m)):
        got = r.wait_types(TRANSITION_TYPES)
        ids = set()
        for type_, req in got.items():
            p = check_payload(req, type_)
            assert p["data"]["id"] == alloc["id"], p
            assert p["data"]["status"] == type_.split(".")[1], p
            wr.check_webhook_signatures(req, who.secret, keys)
            ids.add(p["id"])
        assert len(ids) == 4, f"each event is its own message: {got}"
    # the offer had 100 for a need of 60: not depleted, so no offer.depleted anywhere
    assert not rm.of_type("offer.depleted") and not rh.of_type("offer.depleted")

    # decline: a second need, matched with what is left of the offer, declined by the maker
    hp2_recv = webhook_receiver(path="/hooks/hospital2")
    hp2 = party(d, "hospital", hp2_recv.url)
    _, allocs = wr.need(hp2, 40)
    assert len(allocs) == 1, allocs
    a2 = allocs[0]
    hp2_recv.wait_types(["allocation.proposed"])
    m.act(a2["id"], "decline")
    got2 = hp2_recv.wait_types(["allocation.declined"])["allocation.declined"]
    got_m = rm.wait_for(lambda reqs: [r for r in reqs if r.type == "allocation.declined"
                                      and r.json()["data"]["id"] == a2["id"]], 10,
                        "allocation.declined at the manufacturer")[0]
    for req, who in ((got2, hp2), (got_m, m)):
        p = check_payload(req, "allocation.declined")
        assert (p["data"]["id"], p["data"]["status"]) == (a2["id"], "declined"), p
        wr.check_webhook_signatures(req, who.secret, keys)
    # the first hospital is not a party of the second allocation
    assert not [r for r in rh.snapshot() if r.json()["data"].get("id") == a2["id"]], rh.snapshot()


def test_webhook_url_set_by_patch_and_cleared(impactd, webhook_receiver):
    d = impactd(env=notify_env())
    rh = webhook_receiver()
    m, hp = party(d, "manufacturer"), party(d, "hospital")
    r = hp.api.patch(f"/v1/participants/{hp.id}", json={"webhook_url": rh.url})
    assert r.status_code == 200 and r.json()["webhook_url"] == rh.url, r.text
    _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
    req = rh.wait_types(["allocation.proposed"])["allocation.proposed"]
    assert json.loads(req.body)["data"]["id"] == alloc["id"]
    wr.check_webhook_signatures(req, hp.secret, wr.public_keys(d))
    # cleared: later messages go to the inbox only
    r = hp.api.patch(f"/v1/participants/{hp.id}", json={"webhook_url": None})
    assert r.status_code == 200 and r.json()["webhook_url"] is None, r.text
    m.act(alloc["id"], "confirm")
    wr.wait_until(lambda: "allocation.confirmed" in wr.inbox_types(hp.inbox()), 10,
                  "allocation.confirmed in the hospital's inbox")
    rh.assert_stays(lambda reqs: len(reqs) == 1, 1.0, "no webhook after webhook_url was cleared")


# ------------------------------------------------------------------ signatures

def test_v1_verifies_with_the_standardwebhooks_package(impactd, webhook_receiver, standard_webhooks):
    d, m, hp, rm, rh = two_sides(impactd, webhook_receiver)
    allocate(m, hp, 100)
    req = rh.wait_types(["allocation.proposed"])["allocation.proposed"]
    dep = rm.wait_types(["offer.depleted"])["offer.depleted"]
    for r, secret in ((req, hp.secret), (dep, m.secret)):
        ok, out = standard_webhooks.verify(secret, r.headers, r.body)
        assert ok, f"standardwebhooks rejected a genuine webhook: {out}; headers {r.headers}"
    # tampered body, another id, or the other party's secret: rejected
    tampered = req.body.replace(b'"type"', b'"Type"', 1)
    assert tampered != req.body
    ok, _ = standard_webhooks.verify(hp.secret, req.headers, tampered)
    assert not ok, "standardwebhooks accepted a tampered body"
    ok, _ = standard_webhooks.verify(hp.secret, dict(req.headers, **{"webhook-id": "msg_other"}), req.body)
    assert not ok, "standardwebhooks accepted another webhook-id"
    ok, _ = standard_webhooks.verify(m.secret, req.headers, req.body)
    assert not ok, "standardwebhooks accepted the wrong secret"


def test_signatures_verify_in_python_and_fail_when_tampered(impactd, webhook_receiver):
    d, m, hp, rm, rh = two_sides(impactd, webhook_receiver)
    allocate(m, hp, 100)
    req = rh.wait_types(["allocation.proposed"])["allocation.proposed"]
    keys = wr.public_keys(d)
    hd = req.headers
    kid = hd.get("webhook-key-id")
    assert kid in keys, f"webhook-key-id {kid!r} not among /v1/keys {list(keys)}"
    sigs = wr.split_signatures(hd["webhook-signature"])
    assert len(sigs.get("v1", [])) == 1 and len(sigs.get("v1a", [])) == 1, hd["webhook-signature"]
    assert len(base64.b64decode(sigs["v1"][0])) == 32 and len(base64.b64decode(sigs["v1a"][0])) == 64
    assert wr.verify_v1(hp.secret, hd, req.body)
    assert wr.verify_v1a(keys, hd["webhook-id"], hd["webhook-timestamp"], req.body,
                         hd["webhook-signature"], kid)
    # v1a on its own: a header carrying only the v1a part verifies with the platform key,
    # and v1a is not an HMAC (the v1 value is not accepted as v1a)
    only_v1a = "v1a," + sigs["v1a"][0]
    assert wr.verify_v1a(keys, hd["webhook-id"], hd["webhook-timestamp"], req.body, only_v1a, kid)
    assert not wr.verify_v1a(keys, hd["webhook-id"], hd["webhook-timestamp"], req.body,
                             "v1a," + sigs["v1"][0], kid)
    tampered = req.body.replace(b'"type"', b'"Type"', 1)
    assert not wr.verify_v1(hp.secret, hd, tampered)
    assert not wr.verify_v1a(keys, hd["webhook-id"], hd["webhook-timestamp"], tampered,
                             hd["webhook-signature"], kid)
    other_ts = str(int(hd["webhook-timestamp"]) + 1)
    assert not wr.verify_v1(hp.secret, dict(hd, **{"webhook-timestamp": other_ts}), req.body)
    assert not wr.verify_v1a(keys, hd["webhook-id"], other_ts, req.body, hd["webhook-signature"], kid)


# ------------------------------------------------------------------ HTTPS

def test_https_delivery_trusting_the_test_ca(impactd, webhook_receiver, test_ca):
    d, m, hp, rm, rh = two_sides(impactd, webhook_receiver, tls=test_ca,
                                 env={"IMPACTD_WEBHOOK_CA_FILE": str(test_ca.ca_cert)})
    assert rh.url.startswith("https://127.0.0.1:")
    _, _, alloc = allocate(m, hp, 100)
    keys = wr.public_keys(d)
    req = rh.wait_types(["allocation.proposed"])["allocation.proposed"]
    p = check_payload(req, "allocation.proposed")
    assert p["data"]["id"] == alloc["id"]
    wr.check_webhook_signatures(req, hp.secret, keys)
    got = rm.wait_types(["allocation.proposed", "offer.depleted"])
    for r in got.values():
        wr.check_webhook_signatures(r, m.secret, keys)
    assert not rh.tls_failures and not rm.tls_failures, (rh.tls_failures, rm.tls_failures)


def test_https_without_the_ca_never_delivers(impactd, webhook_receiver, test_ca):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,1s"))
    rh = webhook_receiver(tls=test_ca)
    m, hp = party(d, "manufacturer"), party(d, "hospital", rh.url)
    allocate(m, hp, 10, offer_quantity=100)
    # the message is stored (inbox), and impactd tries to connect ...
    item = wr.wait_until(lambda: hp.inbox(), 10, "the hospital's inbox item")[0]
    rh.wait_for(lambda reqs: len(rh.tls_failures) >= 1, 10, "a TLS handshake attempt")
    # ... but, the certificate being unknown, no request ever gets through: dead-lettered
    # after its 2 attempts (or, at worst, still being retried)
    def dead():
        return [x for x in wr.dead_letters(d) if x["message_id"] == item["id"]]
    end = h.deadline(8)
    while time.monotonic() < end and not dead():
        rh.assert_stays(lambda reqs: not reqs, 0.25, "no request through an untrusted TLS channel")
    assert rh.snapshot() == [], rh.snapshot()
    listed = dead()
    if listed:
        assert listed[0]["attempts"] == 2, listed
        assert listed[0]["participant_id"] == hp.id, listed
        assert len(rh.tls_failures) >= 2, rh.tls_failures
    assert len(rh.tls_failures) >= 1


# ------------------------------------------------------------------ keep-alive connections

def proposals(d, hp: wr.Party, n: int) -> list[str]:
    """n allocation.proposed messages to hp (the manufacturer has no webhook): their ids."""
    m = party(d, "manufacturer")
    wr.offer(m, 10 * n)
    return [wr.need(hp, 10)[1][0]["id"] for _ in range(n)]


def delivered_ids(n: int):
    return lambda reqs: reqs if len({r.webhook_id for r in reqs if r.answered == 200}) >= n else None


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_messages_share_keep_alive_connections(impactd, webhook_receiver, test_ca, tls):
    """Many messages to one endpoint go over at most webhook_max_per_endpoint connections,
    each reused from message to message, every request signed as a single one would be."""
    env = {"IMPACTD_WEBHOOK_MAX_PER_ENDPOINT": "2"}
    if tls:
        env["IMPACTD_WEBHOOK_CA_FILE"] = str(test_ca.ca_cert)
    d = impactd(env=notify_env(**env))
    rh = webhook_receiver(tls=test_ca if tls else None)
    hp = party(d, "hospital", rh.url)
    allocs = proposals(d, hp, 30)
    got = rh.wait_for(delivered_ids(30), 20, "30 messages answered 200")
    keys = wr.public_keys(d)
    items = {i["id"]: i for i in hp.inbox()}
    assert len(items) == 30, items
    assert {json.loads(r.body)["data"]["id"] for r in got} == set(allocs)
    for r in got:
        check_payload(r, "allocation.proposed")
        wr.check_webhook_signatures(r, hp.secret, keys)
        # a first attempt carries the message's own timestamp: the inbox item's signature
        assert int(r.headers["webhook-timestamp"]) == items[r.webhook_id]["timestamp"], r.headers
        assert r.headers.get("connection", "").lower() != "close", r.headers
    rh.assert_stays(lambda reqs: len(reqs) == 30, 0.5, "each message once, no retry")
    assert 1 <= rh.connections <= 2, f"{rh.connections} connections for {len(got)} requests"
    assert not rh.tls_failures, rh.tls_failures


def test_a_receiver_that_closes_each_connection_gets_every_message_once(impactd, webhook_receiver):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_MAX_PER_ENDPOINT="2"))
    rh = webhook_receiver(lambda req, attempt: wr.Action(200, headers={"Connection": "close"}))
    hp = party(d, "hospital", rh.url)
    proposals(d, hp, 10)
    got = rh.wait_for(delivered_ids(10), 15, "10 messages answered 200")
    keys = wr.public_keys(d)
    for r in got:
        wr.check_webhook_signatures(r, hp.secret, keys)
    rh.assert_stays(lambda reqs: len(reqs) == 10, 0.5, "each message once, no retry")
    assert rh.connections == 10, f"{rh.connections} connections: one per answer that closed it"
    metrics = h.parse_prometheus(h.api(d).get("/metrics").text)
    assert sum(v for _, _, v in metrics["impactd_webhooks_retried_total"]["samples"]) == 0
