"""Atomic matching under concurrency: two impactd processes on one Redis, eight client threads
(one manufacturer each, alternating between the two daemons) posting ethanol-96 offers and
needs in the neighbouring regions 11 and 24 at once, and declining or confirming some of the
allocations they are offered. Afterwards no unit is allocated twice, every object's counters
agree with its allocations, and no open offer is left that could serve an open need."""
from __future__ import annotations

import random
import secrets
import threading
import time
from collections import defaultdict

import impactd_harness as h
from model import RELEASED, TAKEN, Catalog, World, compute_aggregates, redis_aggregates

ETHANOL = "ethanol-96"
THREADS = 8
OPS_PER_THREAD = 50


def test_two_daemons_eight_threads_never_over_allocate(impactd, redis_server):
    d1 = impactd(redis=redis_server)
    d2 = impactd(redis=redis_server)
    w1, w2 = World(d1), World(d2)
    regions = ["11", "24"]
    clients = []
    for i in range(THREADS):
        made = w1.manufacturer(regions[i % 2])
        # the same participant, talking to daemon 1 or 2 depending on the thread
        daemon = d1 if i % 2 == 0 else d2
        clients.append((made, daemon))

    errors: list[str] = []
    counts = defaultdict(int)
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(idx: int) -> None:
        client, daemon = clients[idx]
        api = h.api(daemon, client.token)
        rng = random.Random(1000 + idx)
        mine: list[str] = []   # allocations where this participant is the offer side
        barrier.wait()
        for op in range(OPS_PER_THREAD):
            roll = rng.random()
            try:
                if roll < 0.45:
                    body = {"product": ETHANOL, "quantity": rng.randint(1, 40)}
                    r = api.post("/v1/offers", json=body)
                    kind = "offer"
                elif roll < 0.9:
                    body = {"product": ETHANOL, "quantity": rng.randint(1, 40),
                            "urgency": rng.choice(["stat", "asap", "urgent", "routine"])}
                    r = api.post("/v1/needs", json=body)
                    kind = "need"
                else:
                    if not mine:
                        continue
                    aid = mine.pop(rng.randrange(len(mine)))
                    action = rng.choice(["decline", "confirm"])
                    r = api.post(f"/v1/allocations/{aid}/{action}")
                    # another thread's decline may not touch it; a 409 can only mean it lapsed
                    if r.status_code != 200:
                        with lock:
                            errors.append(f"thread {idx} {action} {aid}: {r.status_code} {r.text[:300]}")
                    with lock:
                        counts[action] += 1
                    continue
                if r.status_code != 201:
                    with lock:
                        errors.append(f"thread {idx} op {op} POST {kind} {body}: {r.status_code} {r.text[:300]}")
                    continue
                for a in r.json()["allocations"]:
                    if a["offer_participant_id"] == client.participant["id"]:
                        mine.append(a["id"])
                with lock:
                    counts[kind] += 1
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"thread {idx} op {op}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,), name=f"client-{i}") for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    assert not errors, "\n".join(errors[:20])
    assert counts["offer"] + counts["need"] >= 300, dict(counts)

    # Both daemons read the same state; check it through daemon 2, and as daemon 1 sees it too.
    offers = {o["id"]: o for o in w2.admin.list_all("/v1/offers")}
    needs = {n["id"]: n for n in w2.admin.list_all("/v1/needs")}
    allocs = w2.allocations()
    assert len(offers) == counts["offer"] and len(needs) == counts["need"], (len(offers), len(needs), dict(counts))
    assert len(w1.admin.list_all("/v1/offers")) == len(offers)
    assert len({a["id"] for a in allocs}) == len(allocs)

    catalog = Catalog()
    taken_o, released_o, taken_n = defaultdict(int), defaultdict(int), defaultdict(int)
    excluded = set()
    problems: list[str] = []
    for a in allocs:
        if a["offer_id"] not in offers or a["need_id"] not in needs:
            problems.append(f"allocation {a['id']} references a missing object: {a}")
            continue
        o, n = offers[a["offer_id"]], needs[a["need_id"]]
        if o["participant_id"] == n["participant_id"]:
            problems.append(f"allocation {a['id']} matches a participant with itself")
        if a["quantity"] <= 0:
            problems.append(f"allocation {a['id']} has quantity {a['quantity']}")
        want_tier = catalog.tier(o["region"], o["delivery_scope"], n["region"])
        if a["tier"] != want_tier:
            problems.append(f"allocation {a['id']} tier {a['tier']} for {o['region']}->{n['region']}")
        if a["status"] in TAKEN:
            taken_o[o["id"]] += a["quantity"]
            taken_n[n["id"]] += a["quantity"]
        elif a["status"] in RELEASED:
            released_o[o["id"]] += a["quantity"]
            excluded.add((n["id"], o["id"]))
        else:
            problems.append(f"allocation {a['id']} has status {a['status']}")
    for o in offers.values():
        if taken_o[o["id"]] + released_o[o["id"]] > o["quantity"]:
            problems.append(f"offer {o['id']} over-allocated: {taken_o[o['id']]} + {released_o[o['id']]} "
                            f"> {o['quantity']}")
        if (o["allocated"], o["released"]) != (taken_o[o["id"]], released_o[o["id"]]):
            problems.append(f"offer {o['id']} allocated/released {o['allocated']}/{o['released']} but its "
                            f"allocations say {taken_o[o['id']]}/{released_o[o['id']]}")
        if o["remaining"] != o["quantity"] - o["allocated"] - o["released"]:
            problems.append(f"offer {o['id']}: remaining {o['remaining']} != quantity - allocated - released")
        want = "depleted" if o["remaining"] == 0 else "open"
        if o["status"] != want:
            problems.append(f"offer {o['id']}: status {o['status']} with remaining {o['remaining']}")
    for n in needs.values():
        if taken_n[n["id"]] > n["quantity"]:
            problems.append(f"need {n['id']} over-allocated: {taken_n[n['id']]} > {n['quantity']}")
        if n["allocated"] != taken_n[n["id"]]:
            problems.append(f"need {n['id']} allocated {n['allocated']} but its allocations say {taken_n[n['id']]}")
        if n["remaining"] != n["quantity"] - n["allocated"]:
            problems.append(f"need {n['id']}: remaining {n['remaining']} != quantity - allocated")
        want = "allocated" if n["remaining"] == 0 else "open"
        if n["status"] != want:
            problems.append(f"need {n['id']}: status {n['status']} with remaining {n['remaining']}")
    # The sums balance.
    total_taken = sum(a["quantity"] for a in allocs if a["status"] in TAKEN)
    assert sum(o["allocated"] for o in offers.values()) == total_taken
    assert sum(n["allocated"] for n in needs.values()) == total_taken
    assert sum(o["released"] for o in offers.values()) == \
        sum(a["quantity"] for a in allocs if a["status"] in RELEASED)
    # No missed match: every open offer and open need of different participants (all in 11/24,
    # scope neighbours: always within reach) were excluded from each other by a decline.
    for o in offers.values():
        if o["status"] != "open":
            continue
        for n in needs.values():
            if n["status"] == "open" and n["participant_id"] != o["participant_id"] \
                    and (n["id"], o["id"]) not in excluded:
                problems.append(f"open offer {o['id']} ({o['remaining']}) and open need {n['id']} "
                                f"({n['remaining']}) were never matched")
                break
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    assert total_taken > 0 and counts["decline"] > 0, dict(counts)
    # The aggregates both daemons kept in Redis (include/impactd/keys.h: m:{market}:agg) agree
    # with the objects.
    from_redis = redis_aggregates(redis_server)
    if from_redis is not None:
        want = compute_aggregates(list(offers.values()), list(needs.values()), allocs)
        assert from_redis == want, {k: (from_redis.get(k), want.get(k))
                                    for k in set(from_redis) | set(want) if from_redis.get(k) != want.get(k)}


def test_two_daemons_sweep_each_lapse_and_expiry_once(impactd, redis_server):
    """Both daemons sweep every second: each lapse and each expiry is handled exactly once
    (docs/matching.md, "Lapse and expiry"), so quantities are released once and re-matched
    once."""
    from datetime import timedelta

    from model import iso, utcnow

    env = {"IMPACTD_LAPSE_AFTER": "stat=2s,asap=2s,urgent=2s,routine=2s"}
    d1 = impactd(redis=redis_server, env=env)
    d2 = impactd(redis=redis_server, env=env)
    w1, w2 = World(d1), World(d2)
    ma, mb = w1.manufacturer("11"), w1.manufacturer("24")
    oa, _ = ma.offer(ETHANOL, 100)
    needs = []
    for i in range(10):
        c = w1.manufacturer("11" if i % 2 else "24")
        n, allocs = c.need(ETHANOL, 5, "stat")
        assert [(a["offer_id"], a["quantity"]) for a in allocs] == [(oa["id"], 5)], allocs
        needs.append(n)
    ob, allocs = mb.offer(ETHANOL, 1000)
    assert allocs == []
    # Expiring objects, for the expiry sweep.
    exp = iso(utcnow() + timedelta(seconds=2))
    ox, _ = w2.manufacturer("93").offer(ETHANOL, 7, delivery_scope="region", expires_at=exp)
    nx, _ = w2.manufacturer("93").need("glycerol-98", 9, "routine", expires_at=exp)

    def done():
        allocs = w2.allocations(product=ETHANOL)
        if len(allocs) == 20 and all(a["status"] == "lapsed" for a in allocs):
            if w2.offer(ox["id"])["status"] == "expired" and w2.need(nx["id"])["status"] == "expired":
                return allocs
        return None

    allocs = h.poll_until(done, 20, "both rounds of allocations to lapse and the objects to expire",
                          interval=0.25)
    per_need = defaultdict(list)
    for a in allocs:
        per_need[a["need_id"]].append(a["offer_id"])
    assert {k: sorted(v) for k, v in per_need.items()} == \
        {n["id"]: sorted([oa["id"], ob["id"]]) for n in needs}, per_need
    a_, b_ = w1.offer(oa["id"]), w1.offer(ob["id"])
    assert (a_["remaining"], a_["allocated"], a_["released"], a_["status"]) == (50, 0, 50, "open"), a_
    assert (b_["remaining"], b_["allocated"], b_["released"], b_["status"]) == (950, 0, 50, "open"), b_
    for n in needs:
        got = w1.need(n["id"])
        assert (got["remaining"], got["allocated"], got["status"]) == (5, 0, "open"), got
    x = w1.offer(ox["id"])
    assert (x["remaining"], x["status"]) == (0, "expired"), x
    y = w1.need(nx["id"])
    assert (y["remaining"], y["status"]) == (0, "expired"), y
    from_redis = redis_aggregates(redis_server)
    if from_redis is not None:
        offers = w1.admin.list_all("/v1/offers")
        needs_all = w1.admin.list_all("/v1/needs")
        assert from_redis == compute_aggregates(offers, needs_all, w1.allocations())


def test_buyers_racing_for_one_offer_through_two_daemons_with_retries(impactd, redis_server):
    """One offer of N units, 40 buyers (manufacturers needing ethanol, as above) posting
    needs at once through two daemons; each need is sent twice at the same moment with the
    same Idempotency-Key, once through each daemon (a client retrying through the other
    one). Each key makes one need (the twin gets the same answer, replayed); every unit is
    allocated once: exactly min(N, what was asked) in all, never more than N, none to a need
    beyond its quantity."""
    n_units, buyers = 100, 40
    d1 = impactd(redis=redis_server)
    d2 = impactd(redis=redis_server, env={  # one signing key: answers kept for keys are sealed with it
        "IMPACTD_SIGNING_KEY_FILE": str(d1.data_dir / "signing.key")})
    w1, w2 = World(d1), World(d2)
    offer, _ = w1.manufacturer("11").offer(ETHANOL, n_units)
    clients = [w1.manufacturer(("11", "24")[i % 2]) for i in range(buyers)]
    rng = random.Random(5)
    bodies = [{"product": ETHANOL, "quantity": rng.randint(1, 6), "urgency": "stat"} for _ in clients]
    keys = ["race-" + secrets.token_hex(8) for _ in clients]
    answers: dict[tuple[int, int], object] = {}
    barrier = threading.Barrier(2 * buyers)

    def post(i: int, side: int) -> None:
        api = h.api((d1, d2)[side], clients[i].token)
        barrier.wait()
        for _ in range(100):   # a twin still running: 409 + Retry-After, then the replay
            r = api.post("/v1/needs", json=bodies[i], headers={"Idempotency-Key": keys[i]})
            if not (r.status_code == 409 and r.headers.get("Retry-After")):
                break
            time.sleep(0.05)
        answers[(i, side)] = r

    threads = [threading.Thread(target=post, args=(i, s)) for i in range(buyers) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    for i in range(buyers):
        a, b = answers[(i, 0)], answers[(i, 1)]
        assert (a.status_code, b.status_code) == (201, 201), (i, a.status_code, a.text[:300], b.text[:300])
        assert a.json() == b.json(), f"twin answers of key {keys[i]} differ"
        assert sorted([a.headers.get("Idempotent-Replayed"), b.headers.get("Idempotent-Replayed")],
                      key=str) == [None, "true"], (a.headers, b.headers)
    needs = w2.admin.list_all("/v1/needs")
    assert len(needs) == buyers, f"{len(needs)} needs for {buyers} keys"
    allocs = w2.allocations()
    assert len({a["id"] for a in allocs}) == len(allocs)
    assert all(a["offer_id"] == offer["id"] for a in allocs)
    per_need = defaultdict(int)
    for a in allocs:
        per_need[a["need_id"]] += a["quantity"]
    for n in needs:
        assert per_need[n["id"]] == n["allocated"] <= n["quantity"], (n, per_need[n["id"]])
    total = sum(per_need.values())
    assert total == min(n_units, sum(b["quantity"] for b in bodies)), (total, n_units)
    o = w1.offer(offer["id"])
    assert (o["allocated"], o["remaining"]) == (total, n_units - total), o
