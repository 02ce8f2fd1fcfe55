"""Allocation lifecycle (docs/matching.md, "Allocation lifecycle", "Lapse and expiry"):
confirm -> ship -> receive, decline and re-matching, illegal transitions, sides, lapse and
expiry driven by the sweep."""
from __future__ import annotations

from datetime import timedelta

import pytest

import impactd_harness as h
from impactd_harness import assert_problem
from model import World, iso, parse_ts, pipelined_posts, utcnow

GEL = "hydroalcoholic-gel"
ETHANOL = "ethanol-96"
CONFLICT = "tag:impactd,2026:problem:conflict"
SHORT_LAPSE = {"IMPACTD_LAPSE_AFTER": "stat=2s,asap=2s,urgent=2s,routine=2s"}


@pytest.fixture
def w(impactd) -> World:
    return World(impactd())


def one_alloc(w: World):
    """A manufacturer's offer of 100 and a hospital's need of 100 in 11: one proposed
    allocation. Returns (manufacturer, hospital, offer, need, allocation)."""
    m, hosp = w.manufacturer("11"), w.hospital("11")
    offer, _ = m.offer(GEL, 100)
    need, allocs = hosp.need(GEL, 100, "asap")
    assert len(allocs) == 1 and allocs[0]["status"] == "proposed", allocs
    return m, hosp, offer, need, allocs[0]


def status_of(w: World, aid: str) -> str:
    return w.allocation(aid)["status"]


# ------------------------------------------------------------------ happy path

def test_confirm_ship_receive(w):
    m, hosp, offer, need, a = one_alloc(w)
    got = m.act_ok(a["id"], "confirm")
    assert (got["id"], got["status"], got["quantity"]) == (a["id"], "confirmed", 100), got
    assert got["updated_at"] >= a["updated_at"]
    got = m.act_ok(a["id"], "ship")
    assert got["status"] == "shipped"
    n = w.need(need["id"])
    assert (n["status"], n["received"], n["allocated"]) == ("allocated", 0, 100)
    got = hosp.act_ok(a["id"], "receive")
    assert got["status"] == "received"
    assert w.allocation(a["id"]) == got
    n = w.need(need["id"])
    assert (n["status"], n["received"], n["allocated"], n["remaining"]) == ("fulfilled", 100, 100, 0), n
    o = w.offer(offer["id"])
    assert (o["status"], o["allocated"], o["released"], o["remaining"]) == ("depleted", 100, 0, 0), o
    # a fulfilled need is closed
    assert_problem(hosp.api.patch(f"/v1/needs/{need['id']}", json={"quantity": 200}), 409)
    assert_problem(hosp.api.delete(f"/v1/needs/{need['id']}"), 409)


def test_need_fulfilled_only_when_everything_is_received(w):
    m1, m2, hosp = w.manufacturer("11"), w.manufacturer("11"), w.hospital("11")
    o1, _ = m1.offer(GEL, 60)
    o2, _ = m2.offer(GEL, 40)
    need, allocs = hosp.need(GEL, 100, "stat")
    assert [(a["offer_id"], a["quantity"]) for a in allocs] == [(o1["id"], 60), (o2["id"], 40)]
    a1, a2 = allocs
    for mm, a in ((m1, a1), (m2, a2)):
        mm.act_ok(a["id"], "confirm")
        mm.act_ok(a["id"], "ship")
    hosp.act_ok(a1["id"], "receive")
    n = w.need(need["id"])
    assert (n["status"], n["received"]) == ("allocated", 60), n
    hosp.act_ok(a2["id"], "receive")
    n = w.need(need["id"])
    assert (n["status"], n["received"]) == ("fulfilled", 100), n


def test_lapse_at_follows_the_urgency(w):
    m = w.manufacturer("11")
    m.offer(GEL, 100)
    for urgency, hours in (("stat", 2), ("asap", 6), ("urgent", 24), ("routine", 72)):
        _, allocs = w.hospital("11").need(GEL, 1, urgency)
        a = allocs[0]
        assert a["urgency"] == urgency
        delta = parse_ts(a["lapse_at"]) - parse_ts(a["created_at"])
        assert abs(delta.total_seconds() - hours * 3600) <= 1, (urgency, a)


# ------------------------------------------------------------------ decline

def test_decline_returns_quantity_and_rematches_with_another_offer(w):
    ma, mb, hosp = w.manufacturer("11"), w.manufacturer("11"), w.hospital("11")
    oa, _ = ma.offer(GEL, 100)
    ob, _ = mb.offer(GEL, 100)
    need, allocs = hosp.need(GEL, 60, "urgent")
    assert [(a["offer_id"], a["quantity"]) for a in allocs] == [(oa["id"], 60)]
    declined = ma.act_ok(allocs[0]["id"], "decline")
    assert declined["status"] == "declined"
    # matched again at once: with B, never with A (A is older and still has 40 left)
    listed = w.allocations(need_id=need["id"])
    assert [(a["offer_id"], a["quantity"], a["status"]) for a in listed] == \
        [(oa["id"], 60, "declined"), (ob["id"], 60, "proposed")], listed
    n = w.need(need["id"])
    assert (n["remaining"], n["allocated"], n["status"]) == (0, 60, "allocated"), n
    a_ = w.offer(oa["id"])
    assert (a_["remaining"], a_["allocated"], a_["released"], a_["status"]) == (40, 0, 60, "open"), a_
    b_ = w.offer(ob["id"])
    assert (b_["remaining"], b_["allocated"], b_["released"]) == (40, 60, 0), b_
    # B declines too: no candidate is left (A and B excluded for this need)
    mb.act_ok(listed[1]["id"], "decline")
    assert [a["status"] for a in w.allocations(need_id=need["id"])] == ["declined", "declined"]
    n = w.need(need["id"])
    assert (n["remaining"], n["allocated"], n["status"]) == (60, 0, "open"), n
    # A raised (offer-driven matching) still skips this need
    r = ma.api.patch(f"/v1/offers/{oa['id']}", json={"quantity": 200})
    assert r.status_code == 200, r.text
    assert (r.json()["remaining"], r.json()["released"]) == (140, 60), r.json()
    assert len(w.allocations(need_id=need["id"])) == 2
    # ...but A still serves other needs
    other, allocs = w.hospital("11").need(GEL, 10, "routine")
    assert [(a["offer_id"], a["quantity"]) for a in allocs] == [(oa["id"], 10)]
    # and a new offer C serves the need
    oc, allocs = w.manufacturer("24").offer(GEL, 100)
    assert [(a["need_id"], a["quantity"], a["tier"]) for a in allocs] == [(need["id"], 60, "neighbours")]


def test_offer_quantity_floor_counts_released(w):
    """Lowering an offer below allocated + released is 409 (released does not come back)."""
    m, hosp, offer, need, a = one_alloc(w)
    r = m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 150})
    assert r.status_code == 200 and r.json()["remaining"] == 50, r.text
    m.act_ok(a["id"], "decline")
    o = w.offer(offer["id"])
    assert (o["quantity"], o["allocated"], o["released"], o["remaining"]) == (150, 0, 100, 50), o
    assert_problem(m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 99}), 409, ptype=CONFLICT)
    r = m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 100})
    assert r.status_code == 200, r.text
    assert (r.json()["remaining"], r.json()["status"]) == (0, "depleted"), r.json()


def test_decline_of_a_cancelled_needs_allocation_gives_nothing_back(w):
    m, hosp, offer, need, a = one_alloc(w)
    assert hosp.api.delete(f"/v1/needs/{need['id']}").status_code == 200
    m.offer(GEL, 100)  # another offer the need could take if it were still open
    m.act_ok(a["id"], "decline")
    n = w.need(need["id"])
    assert (n["status"], n["remaining"], n["allocated"]) == ("cancelled", 0, 0), n
    assert len(w.allocations(need_id=need["id"])) == 1


# ------------------------------------------------------------------ illegal transitions

ILLEGAL = [
    ([], "ship"), ([], "receive"),
    (["confirm"], "confirm"), (["confirm"], "receive"),
    (["decline"], "confirm"), (["decline"], "decline"), (["decline"], "ship"), (["decline"], "receive"),
    (["confirm", "ship"], "confirm"), (["confirm", "ship"], "ship"), (["confirm", "ship"], "decline"),
    (["confirm", "ship"], "cancel"), (["decline"], "cancel"), (["confirm", "ship", "receive"], "cancel"),
    (["confirm", "ship", "receive"], "receive"), (["confirm", "ship", "receive"], "confirm"),
    (["confirm", "ship", "receive"], "decline"), (["confirm", "ship", "receive"], "ship"),
]


@pytest.mark.parametrize("done,action", ILLEGAL, ids=["-".join(d + ["then", a]) for d, a in ILLEGAL])
def test_illegal_transition_is_409(w, done, action):
    m, hosp, offer, need, a = one_alloc(w)
    for step in done:
        (hosp if step in ("receive", "cancel") else m).act_ok(a["id"], step)
    before = w.allocation(a["id"])
    actor = hosp if action in ("receive", "cancel") else m
    assert_problem(actor.act(a["id"], action), 409, ptype=CONFLICT)
    assert w.allocation(a["id"]) == before
    assert w.need(need["id"])["remaining"] == (100 if done == ["decline"] else 0)


def test_wrong_side_is_403_and_strangers_get_404(w):
    m, hosp, offer, need, a = one_alloc(w)
    for action in ("confirm", "decline", "ship"):
        assert_problem(hosp.act(a["id"], action), 403)
    m.act_ok(a["id"], "confirm")
    m.act_ok(a["id"], "ship")
    assert_problem(m.act(a["id"], "receive"), 403)
    assert status_of(w, a["id"]) == "shipped"
    ministry = w.ministry()
    assert ministry.get_ok(f"/v1/allocations/{a['id']}")["id"] == a["id"]
    for action in ("confirm", "decline", "ship", "receive"):
        assert_problem(ministry.act(a["id"], action), 403)
    for stranger in (w.manufacturer("11"), w.hospital("11")):
        assert_problem(stranger.get(f"/v1/allocations/{a['id']}"), 404)
        for action in ("confirm", "decline", "ship", "receive"):
            assert_problem(stranger.act(a["id"], action), 404)
        assert stranger.list_all("/v1/allocations") == []
    assert_problem(m.act("alc_doesnotexist", "confirm"), 404)
    assert_problem(m.get("/v1/allocations/alc_doesnotexist"), 404)
    assert status_of(w, a["id"]) == "shipped"
    assert m.get_ok(f"/v1/allocations/{a['id']}")["status"] == "shipped"
    assert hosp.get_ok(f"/v1/allocations/{a['id']}")["status"] == "shipped"


def test_allocation_list_filters(w):
    m, hosp = w.manufacturer("11"), w.hospital("11")
    o1, _ = m.offer(GEL, 10)
    o2, _ = m.offer(ETHANOL, 10)
    n1, a1 = hosp.need(GEL, 4, "stat")
    n2, a2 = hosp.need(GEL, 6, "stat")
    n3, a3 = w.manufacturer("11").need(ETHANOL, 10, "routine")
    ids = lambda c, **p: [a["id"] for a in c.list_all("/v1/allocations", p)]  # noqa: E731
    all_ = [a1[0]["id"], a2[0]["id"], a3[0]["id"]]
    assert ids(m) == all_
    assert ids(hosp) == all_[:2]
    assert ids(m, product=ETHANOL) == [all_[2]]
    assert ids(m, need_id=n2["id"]) == [all_[1]]
    assert ids(m, offer_id=o1["id"]) == all_[:2]
    m.act_ok(all_[0], "confirm")
    assert ids(m, status="confirmed") == [all_[0]]
    assert ids(hosp, status="proposed") == [all_[1]]
    assert ids(w.ministry()) == all_


# ------------------------------------------------------------------ lapse and expiry (sweep)

def test_lapse_returns_quantity_and_rematches(impactd):
    w = World(impactd(env=SHORT_LAPSE))
    ma, mb, hosp = w.manufacturer("11"), w.manufacturer("11"), w.hospital("11")
    oa, _ = ma.offer(GEL, 200)
    need, allocs = hosp.need(GEL, 100, "stat")
    assert [(a["offer_id"], a["quantity"]) for a in allocs] == [(oa["id"], 100)]
    first = allocs[0]
    delta = parse_ts(first["lapse_at"]) - parse_ts(first["created_at"])
    assert 1 <= delta.total_seconds() <= 3, first
    ob, allocs = mb.offer(GEL, 100)
    assert allocs == []            # the need is fully allocated for now

    def relapsed():
        listed = w.allocations(need_id=need["id"])
        return listed if len(listed) >= 2 else None

    listed = h.poll_until(relapsed, 15, "the allocation to lapse and the need to be matched again",
                          interval=0.2)
    assert listed[0]["id"] == first["id"] and listed[0]["status"] == "lapsed", listed
    assert listed[1]["offer_id"] == ob["id"] and listed[1]["quantity"] == 100, listed
    a_ = w.offer(oa["id"])
    assert (a_["remaining"], a_["allocated"], a_["released"], a_["status"]) == (100, 0, 100, "open"), a_
    # The second allocation lapses too; then no candidate is left (A and B both excluded),
    # although A still has 100 open.
    def settled():
        listed = w.allocations(need_id=need["id"])
        n = w.need(need["id"])
        return (listed, n) if all(a["status"] == "lapsed" for a in listed) else None

    listed, n = h.poll_until(settled, 15, "the second allocation to lapse", interval=0.2)
    assert len(listed) == 2, listed
    assert (n["remaining"], n["allocated"], n["status"]) == (100, 0, "open"), n
    b_ = w.offer(ob["id"])
    assert (b_["remaining"], b_["allocated"], b_["released"], b_["status"]) == (0, 0, 100, "depleted"), b_


def test_a_lapse_shows_in_the_stock_feed_at_once(impactd):
    """The stock feed is served from a body cached until the aggregates change (or 5 s
    pass). A lapse is a change made by the sweeper, not by a request: it must make the
    cached body stale at once, while a sweep that finds nothing due must not."""
    w = World(impactd(env=SHORT_LAPSE))
    m, hosp = w.manufacturer("11"), w.hospital("11")
    m.offer(GEL, 100)
    _, allocs = hosp.need(GEL, 40, "stat")
    assert len(allocs) == 1, allocs

    def row():
        body = w.admin.get_ok("/v1/feeds/stock", params={"region": "11", "product": GEL})
        rows = [r for r in body["rows"] if (r["region"], r["product"]) == ("11", GEL)]
        assert len(rows) == 1, body
        return rows[0]

    before = row()                 # builds and caches the body
    assert (before["allocated_in_flight"], before["needed_open"]) == (40, 0), before
    h.poll_until(lambda: status_of(w, allocs[0]["id"]) == "lapsed", 10,
                 "the allocation to lapse", interval=0.1)
    after = row()                  # within the cache's 5 s: only a version bump shows it
    # the lapsed 40 are released (not offered again) and the need is open for 40 again
    assert (after["allocated_in_flight"], after["needed_open"]) == (0, 40), after


def test_confirmed_allocation_does_not_lapse(impactd):
    w = World(impactd(env=SHORT_LAPSE))
    m, hosp = w.manufacturer("11"), w.hospital("11")
    m.offer(GEL, 10)
    _, allocs = hosp.need(GEL, 5, "stat")
    _, allocs2 = hosp.need(GEL, 5, "stat")
    m.act_ok(allocs[0]["id"], "confirm")
    h.poll_until(lambda: status_of(w, allocs2[0]["id"]) == "lapsed", 15, "the unconfirmed one to lapse",
                 interval=0.2)
    assert status_of(w, allocs[0]["id"]) == "confirmed"
    # confirming a lapsed allocation is too late
    assert_problem(m.act(allocs2[0]["id"], "confirm"), 409)


def test_offer_expiry(w):
    m = w.manufacturer("11")
    exp = iso(utcnow() + timedelta(seconds=2))
    offer, _ = m.offer(GEL, 50, expires_at=exp)
    hosp = w.hospital("11")
    need, allocs = hosp.need(GEL, 20, "stat")
    assert [a["offer_id"] for a in allocs] == [offer["id"]]

    def expired():
        o = w.offer(offer["id"])
        return o if o["status"] == "expired" else None

    o = h.poll_until(expired, 15, "the offer to expire", interval=0.2)
    assert (o["remaining"], o["allocated"]) == (0, 20), o
    # the allocation made before goes on; the expired offer serves no one
    assert status_of(w, allocs[0]["id"]) == "proposed"
    m.act_ok(allocs[0]["id"], "confirm")
    _, allocs = hosp.need(GEL, 5, "stat")
    assert allocs == []
    assert_problem(m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 80}), 409)
    assert_problem(m.api.delete(f"/v1/offers/{offer['id']}"), 409)


def test_need_expiry(w):
    hosp = w.hospital("11")
    m = w.manufacturer("11")
    m.offer(GEL, 10)
    need, allocs = hosp.need(GEL, 30, "urgent", expires_at=iso(utcnow() + timedelta(seconds=2)))
    assert [a["quantity"] for a in allocs] == [10]
    # A need whose needed_by passes meanwhile stays open but is never matched again.
    overdue, _ = hosp.need(GEL, 10, "stat", needed_by=iso(utcnow() + timedelta(seconds=2)))

    def expired():
        n = w.need(need["id"])
        return n if n["status"] == "expired" else None

    n = h.poll_until(expired, 15, "the need to expire", interval=0.2)
    assert (n["remaining"], n["allocated"]) == (0, 10), n
    h.poll_until(lambda: utcnow() - parse_ts(overdue["needed_by"]) > timedelta(milliseconds=100), 5,
                 "needed_by to pass")
    # ready_at well before needed_by: only the passed needed_by keeps them apart
    _, allocs2 = w.manufacturer("11").offer(GEL, 10, ready_at=iso(utcnow() - timedelta(days=1)))
    assert allocs2 == []
    assert status_of(w, allocs[0]["id"]) == "proposed"
    o = w.need(overdue["id"])
    assert (o["status"], o["remaining"]) == ("open", 10), o


def test_allocation_ids_are_unique_within_one_millisecond(w):
    """30 needs sent pipelined on one connection (many created in the same millisecond), each
    served by the same offer: 30 distinct allocations, each listed once and readable."""
    m, hosp = w.manufacturer("11"), w.hospital("11")
    offer, _ = m.offer(GEL, 100)
    answers = pipelined_posts(w.daemon, hosp.token, "/v1/needs",
                              [{"product": GEL, "quantity": 1, "urgency": "stat"}] * 30)
    assert all(s == 201 for s, _ in answers), answers[:3]
    made = [a for _, b in answers for a in b["allocations"]]
    assert len(made) == 30
    ids = [a["id"] for a in made]
    assert len(set(ids)) == 30, f"{30 - len(set(ids))} allocation ids were handed out twice"
    for a, (_, b) in zip(made, answers):
        got = w.allocation(a["id"])
        assert (got["need_id"], got["offer_id"]) == (b["need"]["id"], offer["id"]), got
    assert sorted(x["id"] for x in w.allocations()) == sorted(ids)
    assert len(hosp.list_all("/v1/allocations")) == 30
    got = w.offer(offer["id"])
    assert (got["allocated"], got["remaining"]) == (30, 70), got
