"""Idempotency-Key when the store fails mid-way, and what is stored (docs/api.md,
"Idempotency"): a POST whose store call timed out must never be made twice by its retry,
and the stored first answer must not hold a token or secret in the clear.

Redis is made slow with DEBUG SLEEP from a separate connection (the harness starts
redis-server with `enable-debug-command local`): the daemon's call waits behind it, times
out (503), and runs when the sleep ends."""
from __future__ import annotations

import secrets
import threading
import time

import impactd_harness as h
from impactd_harness import assert_problem
from model import World, pipelined_posts

GEL = "hydroalcoholic-gel"
ETHANOL = "ethanol-96"
SHORT_TIMEOUT = {"IMPACTD_REDIS_TIMEOUT": "150ms"}


def sleep_redis(redis: h.RedisServer, seconds: float) -> threading.Thread:
    """Blocks Redis for `seconds` from another connection; returns once the sleep began."""
    t = threading.Thread(target=redis.cmd, args=("DEBUG", "SLEEP", str(seconds)), daemon=True)
    t.start()
    time.sleep(0.05)
    return t


def retry_until_done(post, seconds: float = 20.0):
    """Sends the same request again (same key) until it is neither 503 nor a 409 that asks to
    wait; returns that answer and the list of statuses seen."""
    seen = []
    deadline = time.monotonic() + seconds
    while True:
        r = post()
        seen.append(r.status_code)
        waiting = r.status_code == 503 or (r.status_code == 409 and "Retry-After" in r.headers)
        if not waiting or time.monotonic() > deadline:
            return r, seen
        time.sleep(0.2)


def needs_of(w: World, pid: str) -> list[dict]:
    return [n for n in w.admin.list_all("/v1/needs") if n["participant_id"] == pid]


def slow_market(impactd, redis_server, n: int):
    """Two daemons on one Redis: `fast` as shipped, `slow` with a 10 ms Redis timeout and the
    bounds of a call raised so that one need-post makes n allocations in one function call
    (n = 5,000: some 50 ms of Redis or more, several times the timeout; the test says so when
    Redis was faster): its call times out, then completes. Returns (world on fast, slow
    daemon, manufacturer, hospital)."""
    fast = impactd(redis_server)
    slow = impactd(redis_server, env={"IMPACTD_REDIS_TIMEOUT": "10ms",
                                      "IMPACTD_MATCH_MAX_ALLOCATIONS": str(n),
                                      "IMPACTD_MATCH_MAX_CANDIDATES": str(n)})
    w = World(fast)
    m, hosp = w.manufacturer("11"), w.hospital("11")
    answers = pipelined_posts(fast, m.token, "/v1/offers",
                              [{"product": GEL, "quantity": 1, "delivery_scope": "region"}] * n)
    assert all(st == 201 for st, _ in answers), [a for a in answers if a[0] != 201][:3]
    return w, slow, m, hosp


SLOW_N = 5000    # allocations in the one slow call


def test_a_need_post_that_timed_out_is_made_once(impactd, redis_server):
    n = SLOW_N
    w, slow, m, hosp = slow_market(impactd, redis_server, n)
    key = "slow-" + secrets.token_hex(8)
    body = {"product": GEL, "quantity": n, "urgency": "stat"}
    first = h.Api(slow, hosp.token).post("/v1/needs", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 503, f"the call was not slow enough to time out: {first.status_code}"
    assert first.headers.get("Retry-After"), first.headers
    # the timed-out call went on in Redis: the need exists, fully allocated
    made = h.poll_until(lambda: needs_of(w, hosp.id) or None, 10, "the timed-out need to land")
    assert len(made) == 1 and made[0]["allocated"] == n, made

    def post():   # the client's retry, through the other daemon
        return hosp.api.post("/v1/needs", json=body, headers={"Idempotency-Key": key})

    again, seen = retry_until_done(post)
    assert again.status_code == 201, (seen, again.text[:300])
    assert again.headers.get("Idempotent-Replayed") == "true", again.headers
    assert again.json()["need"]["id"] == made[0]["id"]
    assert len(again.json()["allocations"]) == n
    # nothing was made twice
    assert [x["id"] for x in needs_of(w, hosp.id)] == [made[0]["id"]]
    assert len(w.allocations()) == n
    last = post()
    assert last.status_code == 201 and last.json() == again.json()


def test_an_allocation_action_that_timed_out_is_taken_once(impactd, redis_server):
    """A decline gives the quantity back and matches the need again: against 1,000 small
    offers that is a slow call, which times out on the slow daemon and then completes."""
    n = SLOW_N
    fast = impactd(redis_server)
    slow = impactd(redis_server, env={"IMPACTD_REDIS_TIMEOUT": "10ms",
                                      "IMPACTD_MATCH_MAX_ALLOCATIONS": str(n),
                                      "IMPACTD_MATCH_MAX_CANDIDATES": str(n)})
    w = World(fast)
    big, small, hosp = w.manufacturer("11"), w.manufacturer("11"), w.hospital("11")
    big.offer(GEL, n)
    need, allocs = hosp.need(GEL, n, "asap")
    assert len(allocs) == 1, allocs
    answers = pipelined_posts(fast, small.token, "/v1/offers",
                              [{"product": GEL, "quantity": 1, "delivery_scope": "region"}] * n)
    assert all(st == 201 for st, _ in answers)
    aid, key = allocs[0]["id"], "act-" + secrets.token_hex(8)
    first = h.Api(slow, big.token).post(f"/v1/allocations/{aid}/decline",
                                        headers={"Idempotency-Key": key})
    assert first.status_code == 503, f"the call was not slow enough to time out: {first.status_code}"
    h.poll_until(lambda: w.need(need["id"])["allocated"] == n or None, 10,
                 "the timed-out decline to land and the need to be matched again")

    def decline():
        return big.api.post(f"/v1/allocations/{aid}/decline", headers={"Idempotency-Key": key})

    again, seen = retry_until_done(decline)
    # without the recorded outcome the retry would find it declined already: 409
    assert again.status_code == 200, (seen, again.text[:300])
    assert again.json()["status"] == "declined"
    assert again.headers.get("Idempotent-Replayed") == "true", again.headers
    assert len(w.allocations()) == n + 1


def test_a_participant_post_that_timed_out_is_never_made_twice(impactd, redis_server):
    """Redis asleep: the claim (or the write after it) times out. Whatever the retries then
    get (a short 409 while the claim is held, 201 when nothing had been made, 409 when the
    outcome is unknown), there is never a second participant."""
    daemon = impactd(redis_server, env=SHORT_TIMEOUT)
    admin = h.Api(daemon, daemon.admin_token)
    key = "prt-" + secrets.token_hex(8)
    name = "slow " + secrets.token_hex(4)
    body = {"role": "hospital", "name": name, "region": "53"}

    def post():
        return admin.post("/v1/participants", json=body, headers={"Idempotency-Key": key})

    def named():
        out = []
        for k in redis_server.cmd("KEYS", "impact:prt:{prt_*}"):
            k = k.decode() if isinstance(k, bytes) else k
            if k.endswith("}") and redis_server.cmd("HGET", k, "name") in (name, name.encode()):
                out.append(k)
        return out

    sleeper = sleep_redis(redis_server, 0.8)
    first = post()
    sleeper.join(5)
    assert first.status_code == 503, first.text
    again, seen = retry_until_done(post)
    assert again.status_code in (201, 409), (seen, again.text[:300])
    for _ in range(3):
        assert post().status_code == again.status_code
    assert len(named()) == 1 if again.status_code == 201 else len(named()) <= 1, named()


def test_a_stored_answer_holds_no_token_or_secret_in_the_clear(impactd, redis_server):
    daemon = impactd(redis_server)
    admin = h.Api(daemon, daemon.admin_token)
    key = "seal-" + secrets.token_hex(8)
    body = {"role": "manufacturer", "name": "sealed", "region": "11"}
    first = admin.post("/v1/participants", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    token, whsec = first.json()["token"], first.json()["webhook_secret"]
    stored = [redis_server.cmd("GET", k) for k in redis_server.cmd("KEYS", "impact:idem:*")]
    assert stored, "no idempotency record was stored"
    for v in stored:
        text = v.decode() if isinstance(v, bytes) else v
        assert token not in text and whsec not in text, text[:300]
        assert token[4:20] not in text, "a part of the token is in the record"
    # the client holding the key still gets the first answer back, token included
    second = admin.post("/v1/participants", json=body, headers={"Idempotency-Key": key})
    assert second.status_code == 201 and second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert h.Api(daemon, token).get("/v1/me").status_code == 200


def test_a_key_is_the_participants_own_on_every_path(impactd):
    w = World(impactd())
    m = w.manufacturer("11")
    key = "path-" + secrets.token_hex(8)
    r = m.api.post("/v1/offers", json={"product": ETHANOL, "quantity": 5, "delivery_scope": "region"},
                   headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    other = m.api.post("/v1/needs", json={"product": ETHANOL, "quantity": 5, "urgency": "routine"},
                       headers={"Idempotency-Key": key})
    assert_problem(other, 422)
    assert other.json()["type"].endswith(":idempotency-key-reuse"), other.json()
    assert m.list_all("/v1/needs") == []


def test_the_change_itself_remembers_its_outcome(impactd, redis_server):
    """The market function records the outcome beside the change: even with the daemon's
    claim gone (expired, or Redis lost it), a repeat replays instead of posting again."""
    w = World(impactd(redis_server))
    m, hosp = w.manufacturer("11"), w.hospital("11")
    m.offer(GEL, 100)
    key = "atomic-" + secrets.token_hex(8)
    body = {"product": GEL, "quantity": 20, "urgency": "urgent"}
    first = hosp.api.post("/v1/needs", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    claims = redis_server.cmd("KEYS", "impact:idem:*")
    assert len(claims) == 1, claims
    redis_server.cmd("DEL", claims[0])
    second = hosp.api.post("/v1/needs", json=body, headers={"Idempotency-Key": key})
    assert second.status_code == 201, second.text
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert len(hosp.list_all("/v1/needs")) == 1
    changed = hosp.api.post("/v1/needs", json={**body, "quantity": 21}, headers={"Idempotency-Key": key})
    assert_problem(changed, 422)
