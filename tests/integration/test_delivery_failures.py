"""Webhook delivery when things go wrong (docs/notifications.md, Webhooks; shared/spec/API.md,
Signed notifications): retries with the same webhook-id, a receiver that never answers does not
stall the others, redirects are not followed, dead letters and their redelivery, and no message
lost when a daemon is killed mid-delivery or Redis restarts from its append-only file."""
from __future__ import annotations

import json
import time

import impactd_harness as h
from impactd_harness import assert_problem
import webhook_receiver as wr
from webhook_receiver import allocate, notify_env, party


def ids_of(items: list[dict]) -> list[str]:
    return [i["id"] for i in items]


# ------------------------------------------------------------------ retries

def test_failing_twice_then_delivered_with_the_same_id(impactd, webhook_receiver):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,1s,1s"))
    rh = webhook_receiver(wr.fail_then_ok(2, 500))
    m, hp = party(d, "manufacturer"), party(d, "hospital", rh.url)
    _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
    reqs = rh.wait_for(lambda rs: rs if any(r.answered == 200 for r in rs) else None, 10,
                       "the third attempt answered 200")
    keys = wr.public_keys(d)
    assert [r.attempt for r in reqs] == [1, 2, 3], reqs
    assert [r.answered for r in reqs] == [500, 500, 200], reqs
    assert len({r.webhook_id for r in reqs}) == 1, "the same webhook-id on every attempt"
    assert len({r.body for r in reqs}) == 1, "the same body on every attempt"
    assert json.loads(reqs[0].body)["data"]["id"] == alloc["id"]
    item = hp.inbox()[0]
    assert item["id"] == reqs[0].webhook_id
    # the schedule is followed (1 s, +-10 %), each attempt signed afresh with its own timestamp
    gaps = [b.at - a.at for a, b in zip(reqs, reqs[1:])]
    assert all(g >= 0.8 for g in gaps), f"retried too early: gaps {gaps}"
    assert all(g <= 4.0 * h.SLOW for g in gaps), f"retried too late: gaps {gaps}"
    assert int(reqs[2].headers["webhook-timestamp"]) > int(reqs[0].headers["webhook-timestamp"]), \
        [r.headers["webhook-timestamp"] for r in reqs]
    for r in reqs:
        wr.check_webhook_signatures(r, hp.secret, keys)
    # a 2xx ends it
    rh.assert_stays(lambda rs: len(rs) == 3, 1.5, "no attempt after the 200")
    assert item["id"] not in [x["message_id"] for x in wr.dead_letters(d)]


def test_a_receiver_that_never_answers_does_not_stall_the_others(impactd, webhook_receiver):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_TIMEOUT="1s",
                               IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,1s,1s"))
    hung = webhook_receiver(wr.hang(), path="/hung")
    healthy = webhook_receiver(path="/healthy")
    m_hung = party(d, "manufacturer", hung.url)
    hospitals = [party(d, "hospital", healthy.url) for _ in range(24)]
    # 24 allocations: 24 messages to the hung endpoint, three times webhook_max_per_endpoint (8)
    wr.offer(m_hung, 10_000)
    for hp in hospitals:
        wr.need(hp, 10)
    held = hung.wait_for(lambda rs: rs if len(rs) >= 8 else None, 10,
                         "the hung receiver holding 8 requests")
    # at most 8 at once per endpoint: none of them is given up before the 1 s timeout
    early = [r for r in hung.snapshot() if r.at - held[0].at < 0.8]
    assert len(early) <= 8, f"{len(early)} requests at once to one endpoint: {early}"
    # meanwhile another pair, both healthy, gets its messages at once
    other = webhook_receiver(path="/other")
    m2, h2 = party(d, "manufacturer", other.url, region="75"), party(d, "hospital", other.url, region="75")
    start = time.monotonic()
    _, _, alloc = allocate(m2, h2, 5, offer_quantity=50)
    got = other.wait_for(lambda rs: rs if len({r.webhook_id for r in rs if r.answered == 200}) >= 2 else None,
                         2, "both sides' allocation.proposed at the healthy receiver")
    assert time.monotonic() - start < 2.0 * h.SLOW
    assert {json.loads(r.body)["data"]["id"] for r in got} == {alloc["id"]}, got
    # the 24 hospitals' messages (same events as the hung ones) were delivered as well
    healthy.wait_for(lambda rs: len({r.webhook_id for r in rs if r.answered == 200}) >= 24, 10,
                     "the 24 hospitals' messages")
    # the hung receiver's requests were given up after the 1 s timeout and retried, same id
    retried = hung.wait_for(lambda rs: [r for r in rs if r.attempt >= 2], 8,
                            "a retry of a message the hung receiver never answered")
    first = hung.by_id(retried[0].webhook_id)[0]
    assert retried[0].at - first.at >= 1.5, (first, retried[0])


def test_a_redirect_is_not_followed(impactd, webhook_receiver):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,1s,1s"))
    target = webhook_receiver(path="/target")
    redirecting = webhook_receiver(wr.redirect(target.url, 307), path="/moved")
    m, hp = party(d, "manufacturer"), party(d, "hospital", redirecting.url)
    allocate(m, hp, 10, offer_quantity=100)
    item = wr.wait_until(lambda: hp.inbox(), 10, "the hospital's inbox item")[0]
    # a 3xx counts as a failure: retried with the same id, then dead-lettered
    reqs = redirecting.wait_for(lambda rs: rs if len([r for r in rs if r.answered]) >= 3 else None, 10,
                                "3 attempts answered")
    assert {r.webhook_id for r in reqs} == {item["id"]}, reqs
    assert all(r.answered == 307 for r in reqs), reqs
    dead = wr.wait_until(lambda: [x for x in wr.dead_letters(d) if x["message_id"] == item["id"]], 10,
                         "the redirected message in the dead letters")
    assert dead[0]["attempts"] == 3, dead
    assert target.snapshot() == [], f"the redirect was followed: {target.snapshot()}"
    redirecting.assert_stays(lambda rs: len(rs) == 3, 0.5, "no attempt after the last of the schedule")


# ------------------------------------------------------------------ dead letters

def test_dead_letter_then_redeliver(impactd, webhook_receiver):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,1s"))
    rh = webhook_receiver(wr.always(500))
    m, hp = party(d, "manufacturer"), party(d, "hospital", rh.url)
    _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
    item = wr.wait_until(lambda: hp.inbox(), 10, "the hospital's inbox item")[0]
    dead = wr.wait_until(lambda: [x for x in wr.dead_letters(d) if x["message_id"] == item["id"]], 10,
                         "the message in the dead letters")[0]
    assert (dead["participant_id"], dead["type"], dead["attempts"]) == \
        (hp.id, "allocation.proposed", 2), dead
    assert isinstance(dead["last_error"], str) and "500" in dead["last_error"], dead
    assert h.RFC3339_UTC.match(dead["dead_at"]), dead
    assert [r.answered for r in rh.by_id(item["id"])] == [500, 500]
    rh.assert_stays(lambda rs: len(rs) == 2, 1.0, "no attempt after dead-lettering")
    metrics = h.parse_prometheus(h.api(d).get("/metrics").text)

    def counter(name: str) -> float:
        return sum(v for _, _, v in metrics[name]["samples"])
    assert counter("impactd_webhooks_dead_lettered_total") >= 1, metrics.get("impactd_webhooks_dead_lettered_total")
    assert counter("impactd_webhooks_retried_total") >= 1, metrics.get("impactd_webhooks_retried_total")
    # only the message that failed is there (the manufacturer has no webhook)
    assert [x["message_id"] for x in wr.dead_letters(d)] == [item["id"]]

    # not for participants
    for who in (hp, m):
        assert_problem(who.api.get("/v1/admin/dead-letters"), 403)
        assert_problem(who.api.post(f"/v1/admin/dead-letters/{item['id']}/redeliver"), 403)
    assert_problem(h.api(d).get("/v1/admin/dead-letters"), 401)
    assert_problem(h.api(d).post(f"/v1/admin/dead-letters/{item['id']}/redeliver"), 401)
    assert_problem(d.admin().post("/v1/admin/dead-letters/msg_doesnotexist/redeliver"), 404)
    assert len(rh.snapshot()) == 2

    # fixed receiver, redelivered by an admin: it arrives with the same id and body
    rh.behaviour = wr.ok()
    r = d.admin().post(f"/v1/admin/dead-letters/{item['id']}/redeliver")
    assert r.status_code == 202, r.text
    assert r.json()["message_id"] == item["id"], r.json()
    got = rh.wait_for(lambda rs: [x for x in rs if x.answered == 200], 10, "the redelivered message")[0]
    assert got.webhook_id == item["id"]
    assert got.body == item["body"].encode("utf-8")
    wr.check_webhook_signatures(got, hp.secret, wr.public_keys(d))
    wr.wait_until(lambda: item["id"] not in [x["message_id"] for x in wr.dead_letters(d)], 5,
                  "the redelivered message to leave the dead letters")
    rh.assert_stays(lambda rs: len(rs) == 3, 0.5, "a single delivery after redelivery")


# ------------------------------------------------------------------ crashes

def test_daemon_killed_mid_delivery_every_message_arrives(impactd, webhook_receiver):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,1s,1s,1s"))
    rh = webhook_receiver(wr.hold(3.0), path="/hospital")
    rm = webhook_receiver(wr.hold(3.0), path="/maker")
    m, hp = party(d, "manufacturer", rm.url), party(d, "hospital", rh.url)
    _, _, alloc = allocate(m, hp, 100)          # allocation.proposed x2 + offer.depleted
    rh.wait_for(lambda rs: rs, 10, "the hospital's request, held open")
    rm.wait_for(lambda rs: rs, 10, "a manufacturer's request, held open")
    d.kill()                                     # SIGKILL while the requests are held
    rh.behaviour = rm.behaviour = wr.ok()
    killed_at = time.monotonic()
    assert all(r.answered is None for r in rh.snapshot() + rm.snapshot())
    d.respawn()
    # proposed to both sides, offer.depleted to the maker (an event the dead daemon had not
    # turned into messages yet is claimed by the new one after its 15 s idle time)
    want_h = ids_of(wait_n(hp, 1, 30))
    want_m = ids_of(wait_n(m, 2, 30))
    assert len(want_h) == 1 and len(want_m) == 2, (want_h, want_m)

    def arrived(rs, want):
        ok = {r.webhook_id for r in rs if r.at > killed_at and r.answered == 200}
        return set(want) <= ok
    rh.wait_for(lambda rs: arrived(rs, want_h), 45, "the hospital's message again, after the kill")
    rm.wait_for(lambda rs: arrived(rs, want_m), 45, "the manufacturer's messages again, after the kill")
    keys = wr.public_keys(d)
    for r, who in ((rh, hp), (rm, m)):
        for req in r.delivered():
            wr.check_webhook_signatures(req, who.secret, keys)
    assert not wr.dead_letters(d)


def test_redis_restart_from_its_append_only_file_loses_nothing(impactd, redis_factory, webhook_receiver):
    redis = redis_factory(appendonly=True)
    # receivers stay down through the restart and the 15 s reclaim: a schedule of ~60 s
    # (30 attempts) keeps every message alive until they come up, even on a loaded machine
    d = impactd(redis=redis, env=notify_env(
        IMPACTD_WEBHOOK_RETRY_SCHEDULE=",".join(["0s", "1s"] + ["2s"] * 28)))
    port_h, port_m = h.free_port(), h.free_port()
    rh = webhook_receiver(port=port_h, path="/hospital", start=False)   # down for now
    rm = webhook_receiver(port=port_m, path="/maker", start=False)
    m, hp = party(d, "manufacturer", rm.url), party(d, "hospital", rh.url)
    _, _, alloc = allocate(m, hp, 100)
    before_h = wait_n(hp, 1)
    before_m = wait_n(m, 2)
    m.act(alloc["id"], "confirm")               # its messages may still be in the making
    # SHUTDOWN: redis writes its AOF and exits; then it starts again from it, same port
    try:
        redis.cmd("SHUTDOWN")
    except (ConnectionError, OSError, h.RedisError):
        pass
    assert redis.proc.wait(timeout=10 * h.SLOW) == 0
    redis.stop()
    redis.start()
    d.wait_ready(15)
    # the confirmation's event may have been read but not yet turned into messages when
    # Redis went down: it is claimed again after 15 s idle (the contract allows 30 s)
    after_h = wait_n(hp, 2, seconds=35)
    after_m = wait_n(m, 3, seconds=35)
    assert ids_of(after_h)[:1] == ids_of(before_h) and ids_of(after_m)[:2] == ids_of(before_m), \
        (before_h, after_h, before_m, after_m)
    assert sorted(wr.inbox_types(after_h)) == ["allocation.confirmed", "allocation.proposed"]
    assert sorted(wr.inbox_types(after_m)) == ["allocation.confirmed", "allocation.proposed",
                                               "offer.depleted"]
    # the receivers come up: everything pending is delivered
    # (an event whose messages were stored but not yet scheduled when Redis went away is
    # claimed again after 15 s idle: allow the 30 s of the contract, plus the schedule)
    rh.start()
    rm.start()
    rh.wait_for(lambda rs: {r.webhook_id for r in rs if r.answered == 200} >= set(ids_of(after_h)), 35,
                "the hospital's messages")
    rm.wait_for(lambda rs: {r.webhook_id for r in rs if r.answered == 200} >= set(ids_of(after_m)), 35,
                "the manufacturer's messages")
    assert not wr.dead_letters(d)


def wait_n(p: wr.Party, n: int, seconds: float = 15.0) -> list[dict]:
    return wr.wait_until(lambda: (lambda items: items if len(items) >= n else None)(p.inbox()),
                         seconds, f"{n} items in the inbox of {p.id}")


# ------------------------------------------------------------------ connections and busy endpoints

def test_a_request_lost_on_a_reused_connection_is_sent_again_at_once(impactd, webhook_receiver):
    """A receiver may close an idle keep-alive connection just as impactd sends on it: the
    request is sent again at once on a new connection, and that is not a failed attempt."""
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_MAX_PER_ENDPOINT="1",
                               IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,5s"))
    answered_one = []

    def behaviour(req: wr.Received, attempt: int) -> wr.Action:
        # the first request is answered; after that, the first sight of each message drops
        # its connection unanswered (with one connection, always a connection used before)
        if not answered_one:
            answered_one.append(req.webhook_id)
            return wr.Action(200)
        return wr.Action(None) if attempt == 1 else wr.Action(200)

    rh = webhook_receiver(behaviour)
    hp = party(d, "hospital", rh.url)
    m = party(d, "manufacturer")
    wr.offer(m, 100)
    for _ in range(3):
        wr.need(hp, 10)
    reqs = rh.wait_for(lambda rs: rs if len({r.webhook_id for r in rs if r.answered == 200}) >= 3
                       else None, 10, "3 messages answered 200")
    items = {i["id"]: i for i in hp.inbox()}
    keys = wr.public_keys(d)
    for wid in items:
        sent = rh.by_id(wid)
        assert [r.answered for r in sent] == ([200] if wid in answered_one else [None, 200]), sent
        if len(sent) == 2:
            assert sent[1].at - sent[0].at < 2.0 * h.SLOW, f"not sent again at once: {sent}"
        for r in sent:      # still the first attempt: the message's own timestamp
            assert int(r.headers["webhook-timestamp"]) == items[wid]["timestamp"]
        wr.check_webhook_signatures(sent[-1], hp.secret, keys)
    rh.assert_stays(lambda rs: len(rs) == len(reqs), 0.5, "nothing more")
    metrics = h.parse_prometheus(h.api(d).get("/metrics").text)
    assert sum(v for _, _, v in metrics["impactd_webhooks_retried_total"]["samples"]) == 0
    assert not wr.dead_letters(d)


def test_an_endpoint_at_its_cap_is_not_claimed_over_and_over(impactd, redis_server,
                                                             webhook_receiver):
    """20 messages for a receiver that never answers, 2 at a time: the 18 waiting are put back
    on the schedule for when the endpoint may have room, not claimed and loaded again every
    few milliseconds while it is busy."""
    d = impactd(redis=redis_server, env=notify_env(IMPACTD_WEBHOOK_MAX_PER_ENDPOINT="2",
                                                   IMPACTD_WEBHOOK_TIMEOUT="10s"))
    hung = webhook_receiver(wr.hang())
    hp = party(d, "hospital", hung.url)
    m = party(d, "manufacturer")
    wr.offer(m, 1000)
    for _ in range(20):
        wr.need(hp, 10)
    hung.wait_for(lambda rs: len(rs) >= 2, 10, "the hung receiver holding 2 requests")
    wr.wait_until(lambda: len(hp.inbox()) == 20, 10, "20 messages stored")

    def loads() -> int:     # delivery_load reads each message's body with one XRANGE
        info = redis_server.cmd("INFO", "commandstats").decode()
        for line in info.splitlines():
            if line.startswith("cmdstat_xrange:"):
                return int(line.split("calls=")[1].split(",")[0])
        return 0
    hung.assert_stays(lambda rs: len(rs) == 2, 1.0, "no third request at once")
    before = loads()
    hung.assert_stays(lambda rs: len(rs) == 2, 3.0, "no third request at once")
    loaded = loads() - before
    # re-claiming the 18 every 100 ms would load them ~540 times in 3 s
    assert loaded < 100, f"{loaded} message loads in 3 s while the endpoint was busy"


def test_a_private_address_is_refused_when_connecting(impactd, redis_server, webhook_receiver):
    """A webhook URL set while private addresses were allowed is refused once they are not:
    the address is checked when impactd connects (after resolving), not only when it is set."""
    rh = webhook_receiver()
    d1 = impactd(redis=redis_server, env=notify_env())
    m, hp = party(d1, "manufacturer"), party(d1, "hospital", rh.url)
    assert d1.stop() == 0
    d2 = impactd(redis=redis_server, env=notify_env(IMPACTD_WEBHOOK_ALLOW_PRIVATE="0",
                                                    IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,1s"))
    for p in (m, hp):
        p.daemon, p.api = d2, h.api(d2, p.token)
    allocate(m, hp, 10, offer_quantity=100)
    item = wr.wait_until(lambda: hp.inbox(), 10, "the hospital's inbox item")[0]
    dead = wr.wait_until(lambda: [x for x in wr.dead_letters(d2) if x["message_id"] == item["id"]],
                         10, "the message in the dead letters")[0]
    assert dead["attempts"] == 2 and "private" in dead["last_error"], dead
    assert rh.snapshot() == [] and rh.connections == 0, rh.snapshot()
