"""Faults, each an integration test (issue 10): what a client sees and what stays true when
Redis is slow, Redis is full, a daemon is killed mid-load, and Redis is killed mid-load and
comes back from its append-only file. (A Redis that is down, then up again, is
test_redis_outage.py; two daemons racing on one stock is test_concurrency.py.)

The invariants checked after every fault, through the API (market_problems):
- every object a 2xx answer made exists, in the state it was answered with or a later one;
- an offer's remaining + allocated + released = quantity, a need's remaining + allocated =
  quantity, both agreeing with the allocations that name them (nothing half-written);
- nothing is allocated twice: each allocation id once, per offer and per need the
  allocations sum to at most its quantity;
- the stock feed equals its recomputation from the objects (test_feeds.brute_force_rows)."""
from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from collections import defaultdict

import pytest
import requests

import impactd_harness as h
from impactd_harness import assert_problem, poll_until
from model import RELEASED, TAKEN, World
from test_feeds import brute_force_rows, assert_rows, json_rows

GEL = "hydroalcoholic-gel"
# Allocation statuses in lifecycle order: a later status is "the state answered or a later one".
LIFECYCLE = {"proposed": 0, "confirmed": 1, "shipped": 2, "received": 3,
             "declined": 1, "lapsed": 1}
LOG_LEVEL = re.compile(r"\blevel=(warn|error)\b")


def assert_503(resp, detail: str | None = None) -> dict:
    body = assert_problem(resp, 503)
    retry = resp.headers.get("Retry-After", "")
    assert retry.isdigit() and int(retry) >= 1, resp.headers
    if detail is not None:
        assert detail in body["detail"], body
    return body


def warn_lines(text: str) -> list[str]:
    """The warnings and errors of a log, but not the access lines (a 5xx is logged at warn
    level, one line per request, as every request is)."""
    return [ln for ln in text.splitlines() if LOG_LEVEL.search(ln) and " msg=" in ln]


def admin_objects(daemon: h.Daemon) -> tuple[dict, dict, dict]:
    w = World(daemon)
    offers = {o["id"]: o for o in w.admin.list_all("/v1/offers")}
    needs = {n["id"]: n for n in w.admin.list_all("/v1/needs")}
    allocs = w.admin.list_all("/v1/allocations")
    ids = [a["id"] for a in allocs]
    assert len(ids) == len(set(ids)), "an allocation is listed twice"
    return offers, needs, {a["id"]: a for a in allocs}


def market_problems(offers: dict, needs: dict, allocs: dict) -> list[str]:
    """Every way the objects disagree with each other (empty when the market is consistent)."""
    taken_o, released_o, taken_n, total_n = (defaultdict(int) for _ in range(4))
    out = []
    for a in allocs.values():
        if a["offer_id"] not in offers or a["need_id"] not in needs:
            out.append(f"allocation {a['id']} names a missing object")
            continue
        total_n[a["need_id"]] += a["quantity"]
        if a["status"] in TAKEN:
            taken_o[a["offer_id"]] += a["quantity"]
            taken_n[a["need_id"]] += a["quantity"]
        elif a["status"] in RELEASED:
            released_o[a["offer_id"]] += a["quantity"]
    for o in offers.values():
        i = o["id"]
        if taken_o[i] + released_o[i] > o["quantity"]:
            out.append(f"offer {i} allocated twice: {taken_o[i]} + {released_o[i]} > {o['quantity']}")
        if (o["allocated"], o["released"]) != (taken_o[i], released_o[i]):
            out.append(f"offer {i}: allocated/released {o['allocated']}/{o['released']}, "
                       f"its allocations say {taken_o[i]}/{released_o[i]}")
        if o["status"] in ("open", "depleted") and \
                o["remaining"] + o["allocated"] + o["released"] != o["quantity"]:
            out.append(f"offer {i}: remaining + allocated + released != quantity: {o}")
    for n in needs.values():
        i = n["id"]
        if taken_n[i] > n["quantity"]:
            out.append(f"need {i} allocated twice: {taken_n[i]} > {n['quantity']}")
        if n["allocated"] != taken_n[i]:
            out.append(f"need {i}: allocated {n['allocated']}, its allocations say {taken_n[i]}")
        if n["status"] in ("open", "allocated") and n["remaining"] + n["allocated"] != n["quantity"]:
            out.append(f"need {i}: remaining + allocated != quantity: {n}")
    return out


def assert_consistent(daemon: h.Daemon) -> tuple[dict, dict, dict]:
    offers, needs, allocs = admin_objects(daemon)
    problems = market_problems(offers, needs, allocs)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])
    # the stock feed, as Redis' aggregates say it, equals its recomputation from the objects
    # (the feed's cache may lag a lost version bump by up to 5 s: docs/feeds.md)
    want = brute_force_rows(list(offers.values()), list(needs.values()), list(allocs.values()))
    admin = h.api(daemon, daemon.admin_token)

    def feed_agrees():
        have = json_rows(admin.get("/v1/feeds/stock"))
        assert_rows(have, want, "stock feed after the fault")
        return True
    poll_until(feed_agrees, 8, "the stock feed to equal its recomputation", interval=0.5)
    return offers, needs, allocs


# ------------------------------------------------------------------ 1. Redis answers slowly

def test_redis_asleep_503_fast_healthz_then_recovers(impactd, redis_server):
    """Redis asleep (DEBUG SLEEP 6 s) behind a 300 ms redis_timeout: every request that needs
    Redis is answered 503 + Retry-After within a few timeouts, not held until Redis wakes;
    /healthz answers at once, /readyz says 503; once Redis wakes the same process serves
    everything again; each request got exactly one answer; the log holds a bounded number of
    warnings, not one per request."""
    timeout_s, sleep_s = 0.3, 6.0
    d = impactd(redis_server, env={"IMPACTD_REDIS_TIMEOUT": "300ms", "IMPACTD_AUTH_CACHE_TTL": "0"})
    pid = d.proc.pid
    w = World(d)
    m, hosp = w.manufacturer("11"), w.hospital("11")
    offer, _ = m.offer(GEL, 500)
    hosp.need(GEL, 10, "asap")
    mark = d.log_size()

    # One keep-alive connection per kind of request, each request with its own X-Request-Id:
    # a request answered twice would show as a wrong id on that connection's next answer.
    kinds = {
        "post need": ("POST", "/v1/needs", hosp.token, {"product": GEL, "quantity": 5, "urgency": "urgent"}),
        "post offer": ("POST", "/v1/offers", m.token, {"product": GEL, "quantity": 5}),
        "post participant": ("POST", "/v1/participants", d.admin_token,
                             {"role": "hospital", "name": "asleep", "region": "11"}),
        "list offers": ("GET", "/v1/offers", m.token, None),
        "get offer": ("GET", f"/v1/offers/{offer['id']}", m.token, None),
        "me": ("GET", "/v1/me", hosp.token, None),
        "stock": ("GET", "/v1/feeds/stock", d.admin_token, None),
        "inbox": ("GET", "/v1/notifications", hosp.token, None),
    }
    sessions = {k: requests.Session() for k in kinds}
    seq = iter(range(10**6))

    def send(kind: str):
        method, path, token, body = kinds[kind]
        rid = f"fault-{next(seq)}"
        hdrs = {"Authorization": f"Bearer {token}", "X-Request-Id": rid}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        t0 = time.monotonic()
        r = sessions[kind].request(method, d.url + path, headers=hdrs, timeout=30,
                                   data=json.dumps(body) if body is not None else None)
        took = time.monotonic() - t0
        assert r.headers.get("X-Request-Id") == rid, \
            f"{kind}: answer of another request on this connection (answered twice?): {r.headers}"
        h.check(r)
        return r, took

    for k in kinds:                                  # all fine before
        r, _ = send(k)
        assert r.status_code in (200, 201), (k, r.status_code, r.text[:300])

    sleeper, when = h.redis_sleep(redis_server, sleep_s)
    poll_until(lambda: h.redis_asleep(redis_server), 5, "Redis to be asleep")
    bound = 4 * timeout_s + 1.0                       # a few timeouts, well short of the sleep
    answered: list[tuple[str, int, float]] = []
    # At once, all kinds together: calls sent to the sleeping Redis time out (or fail with the
    # connection they were sent on); none waits for Redis to wake.
    results: dict[str, object] = {}

    def one(k):
        try:
            results[k] = send(k)
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[k] = exc
    threads = [threading.Thread(target=one, args=(k,)) for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(sleep_s + 30)
    for k in kinds:
        assert not isinstance(results[k], BaseException), (k, results[k])
        r, took = results[k]
        answered.append((k, r.status_code, took))
        assert_503(r)
        assert took < bound * h.SLOW, f"{k}: 503 after {took:.2f}s, bound {bound:.2f}s"
    # /readyz's PING cannot be answered: 503
    poll_until(lambda: h.api(d).get("/readyz", check=False).status_code == 503, bound,
               "/readyz to say 503 while Redis sleeps")
    assert_503(h.api(d).get("/readyz"))
    for _ in range(2):
        for k in kinds:
            t0 = time.monotonic()
            hz = h.api(d).get("/healthz", timeout=bound)
            assert hz.status_code == 200 and time.monotonic() - t0 < 1.0 * h.SLOW, "healthz not fast"
            r, took = send(k)
            answered.append((k, r.status_code, took))
            assert_503(r)
            assert took < bound * h.SLOW, f"{k}: 503 after {took:.2f}s, bound {bound:.2f}s"
    assert "end" not in when, "Redis woke before every request was tried: the test proved nothing"
    sleeper.join(sleep_s + 30)
    assert "end" in when

    poll_until(lambda: h.api(d).get("/readyz", check=False).status_code == 200, 10,
               "/readyz 200 once Redis woke")
    assert d.alive() and d.proc.pid == pid
    for k in kinds:                                   # the same connections serve again
        r, _ = poll_until(lambda: (lambda a: a if a[0].status_code in (200, 201) else None)(send(k)),
                          10, f"{k} to work again")
    assert d.alive()
    # The log during the outage: a few lines about the connection, not one per request.
    lines = warn_lines(d.log_since(mark))
    assert len(lines) <= 20 and len(lines) < len(answered), \
        f"{len(lines)} warnings for {len(answered)} requests:\n" + "\n".join(lines[:40])
    # Nothing the 503s answered was half made: the market is consistent.
    assert_consistent(d)


# ------------------------------------------------------------------ 2. Redis is full

def used_memory(redis: h.RedisServer) -> int:
    info = redis.cmd("INFO", "memory").decode()
    return int(re.search(r"^used_memory:(\d+)", info, re.M).group(1))


def test_redis_full_writes_503_reads_work_nothing_half_written(impactd, redis_server):
    """Redis at maxmemory with noeviction: writes (needs, offers, participants, allocation
    actions) get 503 + Retry-After whose detail says the store is full, logged once for the
    burst, not per request; reads (lists, one object, /v1/me with a cached and an uncached
    token, the inbox, the stock feed) still work; once maxmemory is raised, writes work (the
    same Idempotency-Key included); the market is consistent throughout."""
    d = impactd(redis_server, env={"IMPACTD_AUTH_CACHE_TTL": "30s"})
    w = World(d)
    makers = [w.manufacturer(r) for r in ("11", "24")]
    hospitals = [w.hospital(r) for r in ("11", "24")]
    offers = [mk.offer(GEL, 200)[0] for mk in makers]
    _, allocs = hospitals[0].need(GEL, 30, "stat")
    assert allocs
    hosp = hospitals[0]
    assert hosp.get("/v1/me").status_code == 200      # hosp's token is now cached
    uncached = w.hospital("11")                       # this one will be looked up in Redis
    redis_server.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")

    # Just above what Redis uses; a load of need-posts fills it up to the limit (some land,
    # then the refusals begin): the writes that crossed the limit are whole or not there.
    redis_server.cmd("CONFIG", "SET", "maxmemory", str(used_memory(redis_server) + 256 * 1024))
    statuses = defaultdict(int)
    made: list[dict] = []
    lock = threading.Lock()

    def filler(c, n):
        for _ in range(n):
            r = c.post("/v1/needs", {"product": GEL, "quantity": random.randint(1, 5),
                                     "urgency": "routine", "note": "x" * 900})
            with lock:
                statuses[r.status_code] += 1
                if r.status_code == 201:
                    made.append(r.json()["need"])
                elif r.status_code != 503:
                    raise AssertionError(f"{r.status_code} {r.text[:300]}")
    threads = [threading.Thread(target=filler, args=(c, 150)) for c in hospitals]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses[503] > 0 and statuses[201] > 0, dict(statuses)
    # Pinned over the limit, so that no write slips in while memory wobbles.
    redis_server.cmd("CONFIG", "SET", "maxmemory", str(used_memory(redis_server) - 64 * 1024))
    mark = d.log_size()

    full = "store is full"
    key = "full-" + secrets.token_hex(6)
    need_body = {"product": GEL, "quantity": 7, "urgency": "asap"}
    for _ in range(5):
        assert_503(hosp.post("/v1/needs", need_body), full)
        assert_503(makers[1].post("/v1/offers", {"product": GEL, "quantity": 3}), full)
        assert_503(w.admin.post("/v1/participants", {"role": "hospital", "name": "full", "region": "11"}),
                   full)
        assert_503(makers[0].act(allocs[0]["id"], "confirm"), full)
        assert_503(hosp.post("/v1/needs", need_body, headers={"Idempotency-Key": key}), full)
    # Reads still work.
    assert hosp.get("/v1/me").status_code == 200
    assert uncached.get("/v1/me").status_code == 200
    assert makers[0].get(f"/v1/offers/{offers[0]['id']}").status_code == 200
    assert len(w.admin.list_all("/v1/needs")) == 1 + len(made)
    assert hosp.get("/v1/notifications").status_code == 200
    assert w.admin.get("/v1/feeds/stock").status_code == 200
    assert_consistent(d)
    # Logged once for the burst (25 refusals), not per request; and nothing else in the
    # daemon (sweeper, notifier: every second) writes a line per refused call either, over a
    # window of three sweeper ticks.
    time.sleep(3.0)
    logged = [ln for ln in d.log_since(mark).splitlines() if "maxmemory" in ln]
    assert len(logged) <= 1, "\n".join(logged[:30])
    lines = warn_lines(d.log_since(mark))
    assert len(lines) <= 5, f"{len(lines)} warnings while Redis was full:\n" + "\n".join(lines[:40])

    redis_server.cmd("CONFIG", "SET", "maxmemory", "0")
    n, allocs2 = hosp.need(GEL, 7, "asap")
    # The refused Idempotency-Key was not kept: the retry runs now and is made once.
    r = hosp.post("/v1/needs", need_body, headers={"Idempotency-Key": key})
    assert r.status_code == 201 and r.headers.get("Idempotent-Replayed") is None, (r.status_code, r.headers)
    again = hosp.post("/v1/needs", need_body, headers={"Idempotency-Key": key})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == r.json()
    makers[1].offer(GEL, 3)
    made_p = h.create_participant(d, "hospital", "11")
    assert h.api(d, made_p.token).get("/v1/me").status_code == 200
    assert makers[0].act_ok(allocs[0]["id"], "confirm")["status"] == "confirmed"
    _, needs, allocs_now = assert_consistent(d)
    assert len(needs) == 1 + len(made) + 2
    # The events of changes made as Redis filled up, whose messages could not be stored then,
    # are turned into messages once it has room again (claimed again after their idle time).
    tokens = {c.id: c.token for c in makers + hospitals}
    assert_every_allocation_notified(d, allocs_now, tokens, 40)
    assert d.alive()


# ------------------------------------------------------------------ a load that survives faults

# What an answered allocation status may have become since (its state or a later one).
LATER = {"proposed": set(TAKEN) | set(RELEASED), "confirmed": {"confirmed", "shipped", "received"},
         "declined": {"declined"}, "lapsed": {"lapsed"}}


class Load:
    """Client threads posting offers and needs and confirming or declining allocations, every
    POST with an Idempotency-Key (also written in the object's `note`, so that Redis shows
    whether a key ever made two objects). A request that fails (connection refused or reset,
    503, 409 "still running") is retried with the same key, through the next daemon of the
    worker's list when its daemon is gone, like a client behind a load balancer. `acked`
    holds what 2xx answers said: offers and needs by id (quantity), allocations by id
    (status)."""

    def __init__(self, clients: list[tuple[object, list[h.Daemon]]], ops: int, seed: int = 7):
        self.clients = clients
        self.ops = ops
        self.seed = seed
        self.lock = threading.Lock()
        self.done_ops = 0
        self.acked = {"offer": {}, "need": {}, "alloc": {}}
        self.keys_sent = 0
        self.failed: list[str] = []
        self.retries = defaultdict(int)

    def _ack_alloc(self, a: dict) -> None:
        self.acked["alloc"][a["id"]] = a["status"]

    def call(self, daemons: list[h.Daemon], token: str, path: str, body: dict | None) -> requests.Response | None:
        key = "load-" + secrets.token_hex(8)
        if body is not None:
            body = dict(body, note=key)
        with self.lock:
            self.keys_sent += 1
        end = time.monotonic() + 45 * h.SLOW
        i = 0
        while time.monotonic() < end:
            d = daemons[i % len(daemons)]
            try:
                r = h.api(d, token).post(path, json=h._MISSING if body is None else body, headers={"Idempotency-Key": key},
                                         timeout=10 * h.SLOW, check=False)
            except requests.RequestException as exc:
                with self.lock:
                    self.retries[type(exc).__name__] += 1
                i += 1                      # that daemon is gone: the next one
                time.sleep(0.05)
                continue
            if r.status_code == 503 or (r.status_code == 409 and r.headers.get("Retry-After")):
                with self.lock:
                    self.retries[r.status_code] += 1
                time.sleep(0.1)
                continue
            return r
        with self.lock:
            self.failed.append(f"{path}: no answer but 503/409/connection errors for 45 s")
        return None

    def worker(self, idx: int) -> None:
        client, daemons = self.clients[idx]
        rng = random.Random(self.seed * 100 + idx)
        maker = client.participant["role"] == "manufacturer"
        for _ in range(self.ops):
            with self.lock:
                self.done_ops += 1
            try:
                if maker and rng.random() < 0.4:
                    self.act(client, daemons, rng)
                elif maker:
                    r = self.call(daemons, client.token, "/v1/offers",
                                  {"product": GEL, "quantity": rng.randint(5, 40)})
                    self.record(r, "offer", 201)
                else:
                    r = self.call(daemons, client.token, "/v1/needs",
                                  {"product": GEL, "quantity": rng.randint(1, 20),
                                   "urgency": rng.choice(["stat", "asap", "urgent", "routine"])})
                    self.record(r, "need", 201)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                with self.lock:
                    self.failed.append(f"worker {idx}: {exc!r}")

    def act(self, client, daemons, rng) -> None:
        page = None
        for d in daemons:
            try:
                page = h.api(d, client.token).get("/v1/allocations", params={"status": "proposed", "limit": 20},
                                                  check=False)
                if page.status_code == 200:
                    break
            except requests.RequestException:
                continue
        mine = [a for a in (page.json()["items"] if page is not None and page.status_code == 200 else [])
                if a["offer_participant_id"] == client.id]
        if not mine:
            return
        a = rng.choice(mine)
        r = self.call(daemons, client.token, f"/v1/allocations/{a['id']}/{rng.choice(['confirm', 'decline'])}",
                      None)
        if r is not None and r.status_code == 200:
            with self.lock:
                self._ack_alloc(r.json())
        elif r is not None and r.status_code != 409:      # 409: another's change came first
            with self.lock:
                self.failed.append(f"action on {a['id']}: {r.status_code} {r.text[:300]}")

    def record(self, r, kind: str, want: int) -> None:
        if r is None:
            return
        if r.status_code != want:
            with self.lock:
                self.failed.append(f"{kind}: {r.status_code} {r.text[:300]}")
            return
        body = r.json()
        with self.lock:
            self.acked[kind][body[kind]["id"]] = body[kind]["quantity"]
            for a in body["allocations"]:
                self._ack_alloc(a)

    def run(self, when_at: float, fault) -> None:
        """Runs the workers; calls fault() once `when_at` of all operations were started."""
        total = self.ops * len(self.clients)
        threads = [threading.Thread(target=self.worker, args=(i,), name=f"load-{i}")
                   for i in range(len(self.clients))]
        for t in threads:
            t.start()
        poll_until(lambda: self.done_ops >= when_at * total or not any(t.is_alive() for t in threads),
                   120, "the load to reach the fault")
        assert any(t.is_alive() for t in threads), "the load ended before the fault"
        fault()
        for t in threads:
            t.join(180 * h.SLOW)
        assert not any(t.is_alive() for t in threads), "client threads hung"
        assert not self.failed, "\n".join(self.failed[:20])

    def check(self, daemon: h.Daemon) -> tuple[dict, dict, dict]:
        """Every acknowledged object is there, in its answered state or a later one; no key
        made two objects; the market is consistent."""
        offers, needs, allocs = assert_consistent(daemon)
        problems = []
        for kind, have in (("offer", offers), ("need", needs)):
            for oid, qty in self.acked[kind].items():
                if oid not in have:
                    problems.append(f"acknowledged {kind} {oid} is lost")
                elif have[oid]["quantity"] != qty:
                    problems.append(f"{kind} {oid}: quantity {have[oid]['quantity']}, answered {qty}")
            notes = defaultdict(list)
            for o in have.values():
                notes[o.get("note")].append(o["id"])
            twice = {k: v for k, v in notes.items() if k and len(v) > 1}
            if twice:
                problems.append(f"one Idempotency-Key made several {kind}s: {twice}")
        for aid, status in self.acked["alloc"].items():
            if aid not in allocs:
                problems.append(f"acknowledged allocation {aid} is lost")
            elif allocs[aid]["status"] not in LATER[status]:
                problems.append(f"allocation {aid}: {allocs[aid]['status']}, answered {status}")
        assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])
        assert len(offers) <= self.keys_sent and len(needs) <= self.keys_sent
        return offers, needs, allocs


def two_daemons(impactd, redis: h.RedisServer, env: dict) -> tuple[h.Daemon, h.Daemon]:
    """Two daemons on one Redis with one signing key file, as docs/notifications.md requires
    (an answer kept for an Idempotency-Key is sealed under a key derived from it)."""
    d1 = impactd(redis, env=env)
    d2 = impactd(redis, env=dict(env, IMPACTD_SIGNING_KEY_FILE=str(d1.data_dir / "signing.key")))
    return d1, d2


def load_clients(w: World, daemons_of) -> list:
    """Four manufacturers and four hospitals in the neighbouring regions 11 and 24."""
    made = []
    for i in range(8):
        c = (w.manufacturer if i % 2 == 0 else w.hospital)(("11", "24")[(i // 2) % 2])
        made.append((c, daemons_of(i)))
    return made


def messages_by_allocation(daemon: h.Daemon, token: str) -> dict[str, set[str]]:
    import webhook_receiver as wr
    out: dict[str, set[str]] = defaultdict(set)
    for item in wr.inbox(daemon, token):
        body = json.loads(item["body"])
        if body["type"].startswith("allocation."):
            out[body["data"]["id"]].add(body["type"])
    return out


def assert_every_allocation_notified(daemon: h.Daemon, allocs: dict, tokens: dict[str, str],
                                     seconds: float) -> None:
    """Every allocation's allocation.proposed reaches both parties' inboxes within `seconds`
    (an event a dead daemon had read is claimed by another after its idle time)."""
    def missing():
        seen = {pid: messages_by_allocation(daemon, tok) for pid, tok in tokens.items()}
        gone = [(a["id"], side) for a in allocs.values()
                for side in ("offer_participant_id", "need_participant_id")
                if "allocation.proposed" not in seen[a[side]].get(a["id"], set())]
        return gone
    last = None

    def none_missing():
        nonlocal last
        last = missing()
        return not last
    try:
        poll_until(none_missing, seconds, "every allocation's message in both inboxes", interval=1.0)
    except AssertionError:
        raise AssertionError(f"{len(last)} messages never arrived, e.g. {last[:10]}") from None


# ------------------------------------------------------------------ 3. a daemon killed mid-load

def test_a_daemon_killed_mid_load_loses_nothing_and_its_share_is_taken_over(impactd, redis_server,
                                                                            webhook_receiver):
    """Two daemons on one Redis, eight client threads through both; daemon 1 is killed -9
    mid-way and its clients carry on through daemon 2 with the same Idempotency-Keys. After:
    every 2xx answer is in Redis (read through daemon 2), each key made at most one object,
    nothing is allocated twice, the market is consistent, and every allocation's message
    reaches both inboxes (what daemon 1 had read from the event streams is claimed by daemon
    2), and the webhooks of one hospital are all delivered."""
    import webhook_receiver as wr
    env = wr.notify_env(IMPACTD_REDIS_TIMEOUT="500ms",
                        IMPACTD_WEBHOOK_RETRY_SCHEDULE=",".join(["0s"] + ["1s"] * 30))
    d1, d2 = two_daemons(impactd, redis_server, env)
    w = World(d2)
    rh = webhook_receiver(wr.hold(1.0), path="/hook")   # deliveries are in flight at the kill
    clients = load_clients(w, lambda i: [d1, d2] if i < 4 else [d2, d1])
    hooked = w.hospital("11", webhook_url=rh.url)
    clients.append((hooked, [d1, d2]))
    load = Load(clients, ops=30)
    load.run(0.4, d1.kill)
    assert not d1.alive()
    rh.behaviour = wr.ok()
    assert load.acked["alloc"], "the load made no allocation"
    offers, needs, allocs = load.check(d2)
    tokens = {c.id: c.token for c, _ in clients}
    # within the documented 30 s (15 s idle before an event is claimed again), plus slack
    assert_every_allocation_notified(d2, allocs, tokens, 40)
    want = {item["id"] for item in wr.inbox(d2, hooked.token)}
    assert want, "the hooked hospital got no message"
    rh.wait_for(lambda rs: want <= {r.webhook_id for r in rs if r.answered == 200}, 40,
                "every message of the hooked hospital delivered by webhook")
    assert not wr.dead_letters(d2)


# ------------------------------------------------------------------ 4. Redis killed mid-load

def kill_redis(redis: h.RedisServer) -> None:
    """SIGKILL: no shutdown, no final AOF write (appendfsync always: what was answered is on disk)."""
    redis.proc.kill()
    redis.proc.wait()


def test_redis_killed_mid_load_restarts_from_its_aof_and_loses_nothing(impactd, redis_factory):
    """Redis killed -9 mid-load (appendonly, appendfsync always) and started again from its
    append-only file on the same port: the clients' retries (same Idempotency-Key) go on
    through 503s; afterwards every 2xx answer's object is there in its answered state or a
    later one, no key made two objects, nothing is allocated twice; the same daemon process
    reconnected by itself and serves, and loads the function library again when Redis has
    lost it (FUNCTION FLUSH)."""
    redis = redis_factory(appendonly=True)
    d1, d2 = two_daemons(impactd, redis, {"IMPACTD_REDIS_TIMEOUT": "500ms"})
    pids = (d1.proc.pid, d2.proc.pid)
    w = World(d1)
    clients = load_clients(w, lambda i: [d1, d2] if i % 4 < 2 else [d2, d1])
    load = Load(clients, ops=30, seed=11)
    outage = {}

    def fault():
        kill_redis(redis)
        outage["down"] = time.monotonic()
        # the daemons see it: readiness says so while it is down
        poll_until(lambda: h.api(d1).get("/readyz", check=False).status_code == 503, 5,
                   "/readyz 503 with Redis killed")
        redis.start()
        outage["up"] = time.monotonic()
    load.run(0.4, fault)
    assert sum(load.retries[k] for k in (503, 409)) > 0, \
        f"no request met the outage: the test proved nothing ({dict(load.retries)})"
    for d in (d1, d2):
        d.wait_ready(15)
    assert (d1.proc.pid, d2.proc.pid) == pids and d1.alive() and d2.alive()
    assert load.acked["alloc"], "the load made no allocation"
    load.check(d1)
    load.check(d2)

    # Redis loses the library (a restart without it, FUNCTION FLUSH): the next call loads it
    # again and is sent once more; the client sees only its 201.
    redis.cmd("FUNCTION", "FLUSH")
    m, hosp = clients[0][0], clients[1][0]
    o, _ = m.offer(GEL, 10)
    n, allocs = hosp.need(GEL, 3, "stat")
    assert [a["quantity"] for a in allocs] and o["id"]
    assert any(lib for lib in redis.cmd("FUNCTION", "LIST")), "the library was not loaded again"
    assert_consistent(d2)
