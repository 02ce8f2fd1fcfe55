"""Matching rules of docs/matching.md, one focused scenario per rule, with explicit expected
allocations (need, offer, quantity, tier) in the order they must be made.

Every test runs on its own Redis + impactd (they start in well under a second), so that no
offer or need of another test can take part in its matching.

Regions used: "11" Île-de-France, its neighbour "24" Centre-Val de Loire (also "32"
Hauts-de-France, which does not border "24"), "93" Provence-Alpes-Côte d'Azur (borders
neither "11" nor "24": national tier), "04" La Réunion (overseas), "94" Corse (no neighbours).
"""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

import impactd_harness as h
from model import World, at, iso, parse_ts, pipelined_posts, utcnow

GEL = "hydroalcoholic-gel"
GEL_CAP = "gel-production-capacity"
HANDRUB = "hand-rub-solution"
ETHANOL = "ethanol-96"
GLYCEROL = "glycerol-98"

ALLOCATION_KEYS = {"id", "need_id", "offer_id", "product", "offer_product", "quantity", "tier",
                   "status", "need_participant_id", "offer_participant_id", "need_region",
                   "offer_region", "urgency", "lapse_at", "created_at", "updated_at"}


@pytest.fixture
def w(impactd) -> World:
    return World(impactd())


def expect_allocs(allocs: list[dict], expected: list[tuple]) -> None:
    """`expected`: (need, offer, quantity, tier) with need/offer objects (dicts with "id")."""
    got = [(a["need_id"], a["offer_id"], a["quantity"], a["tier"]) for a in allocs]
    want = [(n["id"], o["id"], q, t) for n, o, q, t in expected]
    assert got == want, f"allocations made:\n  got  {got}\n  want {want}"
    for a in allocs:
        assert ALLOCATION_KEYS <= set(a), f"allocation lacks {ALLOCATION_KEYS - set(a)}: {a}"
        assert a["id"].startswith("alc_"), a
        assert a["status"] == "proposed", a


def check_listed(w: World, allocs: list[dict]) -> None:
    """GET /v1/allocations/{id} and GET /v1/allocations?need_id= give the same allocations."""
    for a in allocs:
        got = w.allocation(a["id"])
        for k in ("need_id", "offer_id", "product", "offer_product", "quantity", "tier", "status",
                  "need_participant_id", "offer_participant_id", "need_region", "offer_region",
                  "urgency"):
            assert got[k] == a[k], (k, got, a)
    listed = {x["id"]: x for x in w.allocations()}
    for a in allocs:
        assert a["id"] in listed, f"{a['id']} missing from GET /v1/allocations"
        assert listed[a["id"]]["quantity"] == a["quantity"]
        assert listed[a["id"]]["tier"] == a["tier"]


# ------------------------------------------------------------------ offer-driven order

def test_offer_driven_urgency_order(w):
    """An offer serves stat, then asap, then urgent, then routine, whatever their age."""
    h = w.hospital("11")
    routine, _ = h.need(GEL, 10, "routine")
    urgent, _ = h.need(GEL, 10, "urgent")
    asap, _ = h.need(GEL, 10, "asap")
    stat, _ = h.need(GEL, 10, "stat")
    m = w.manufacturer("11")
    offer, allocs = m.offer(GEL, 25)
    expect_allocs(allocs, [(stat, offer, 10, "region"), (asap, offer, 10, "region"),
                           (urgent, offer, 5, "region")])
    assert [a["urgency"] for a in allocs] == ["stat", "asap", "urgent"]
    assert w.need(urgent["id"])["remaining"] == 5
    assert w.need(urgent["id"])["status"] == "open"
    assert w.need(routine["id"])["remaining"] == 10
    assert w.need(stat["id"])["status"] == "allocated"
    got = w.offer(offer["id"])
    assert (got["remaining"], got["allocated"], got["status"]) == (0, 25, "depleted")
    check_listed(w, allocs)


def test_offer_driven_needed_by_order(w):
    """Same urgency: earliest needed_by first; needs without needed_by after those with one."""
    h = w.hospital("11")
    none_, _ = h.need(GEL, 10, "asap")
    d20, _ = h.need(GEL, 10, "asap", needed_by=at(20))
    d10, _ = h.need(GEL, 10, "asap", needed_by=at(10))
    d15, _ = h.need(GEL, 10, "asap", needed_by=at(15))
    offer, allocs = w.manufacturer("11").offer(GEL, 35)
    expect_allocs(allocs, [(d10, offer, 10, "region"), (d15, offer, 10, "region"),
                           (d20, offer, 10, "region"), (none_, offer, 5, "region")])


def test_offer_driven_urgency_beats_needed_by(w):
    h = w.hospital("11")
    early_routine, _ = h.need(GEL, 10, "routine", needed_by=at(2))
    late_stat, _ = h.need(GEL, 10, "stat", needed_by=at(30))
    offer, allocs = w.manufacturer("11").offer(GEL, 10)
    expect_allocs(allocs, [(late_stat, offer, 10, "region")])


def test_offer_driven_age_order(w):
    """Same tier, urgency and needed_by: the oldest need first."""
    h1, h2 = w.hospital("11"), w.hospital("11")
    first, _ = h1.need(GEL, 10, "urgent", needed_by=at(9))
    second, _ = h2.need(GEL, 10, "urgent", needed_by=at(9))
    third, _ = h1.need(GEL, 10, "urgent", needed_by=at(9))
    offer, allocs = w.manufacturer("11").offer(GEL, 25)
    expect_allocs(allocs, [(first, offer, 10, "region"), (second, offer, 10, "region"),
                           (third, offer, 5, "region")])


def test_offer_driven_tier_beats_urgency_and_age(w):
    """An offer in 11 (scope national) serves its own region, then neighbours, then the rest,
    even when the farther needs are older and more urgent."""
    far, _ = w.hospital("93").need(GEL, 10, "stat")
    near, _ = w.hospital("24").need(GEL, 10, "stat")
    home, _ = w.hospital("11").need(GEL, 10, "routine")
    offer, allocs = w.manufacturer("11").offer(GEL, 25, delivery_scope="national")
    expect_allocs(allocs, [(home, offer, 10, "region"), (near, offer, 10, "neighbours"),
                           (far, offer, 5, "national")])
    assert [(a["need_region"], a["offer_region"]) for a in allocs] == [("11", "11"), ("24", "11"),
                                                                      ("93", "11")]
    check_listed(w, allocs)


# ------------------------------------------------------------------ need-driven order

def test_need_driven_tier_beats_ready_at_and_age(w):
    """A need in 11: offers in 11 first (any scope), then in neighbour 24 (scope neighbours or
    national), then national; even when the farther offers are older and ready earlier."""
    national, _ = w.manufacturer("93").offer(GEL, 10, delivery_scope="national", ready_at=at(1))
    neighbour, _ = w.manufacturer("24").offer(GEL, 10, delivery_scope="neighbours", ready_at=at(2))
    home, _ = w.manufacturer("11").offer(GEL, 10, delivery_scope="region", ready_at=at(3))
    need, allocs = w.hospital("11").need(GEL, 25, "routine")
    expect_allocs(allocs, [(need, home, 10, "region"), (need, neighbour, 10, "neighbours"),
                           (need, national, 5, "national")])
    got = w.need(need["id"])
    assert (got["remaining"], got["allocated"], got["status"]) == (0, 25, "allocated")
    assert w.offer(national["id"])["remaining"] == 5
    check_listed(w, allocs)


def test_need_driven_ready_at_order(w):
    m = w.manufacturer("11")
    d5, _ = m.offer(GEL, 10, ready_at=at(5))
    d3, _ = m.offer(GEL, 10, ready_at=at(3))
    d4, _ = m.offer(GEL, 10, ready_at=at(4))
    need, allocs = w.hospital("11").need(GEL, 25, "stat")
    expect_allocs(allocs, [(need, d3, 10, "region"), (need, d4, 10, "region"),
                           (need, d5, 5, "region")])


def test_need_driven_age_order(w):
    """Same tier and ready_at: the oldest offer first."""
    m1, m2 = w.manufacturer("11"), w.manufacturer("11")
    first, _ = m1.offer(GEL, 10, ready_at=at(3))
    second, _ = m2.offer(GEL, 10, ready_at=at(3))
    third, _ = m1.offer(GEL, 10, ready_at=at(3))
    need, allocs = w.hospital("11").need(GEL, 15, "asap")
    expect_allocs(allocs, [(need, first, 10, "region"), (need, second, 5, "region")])
    assert w.offer(third["id"])["remaining"] == 10


def test_default_ready_at_is_now_so_it_comes_before_future_ones(w):
    m = w.manufacturer("11")
    later, _ = m.offer(GEL, 10, ready_at=at(1))
    now_, _ = m.offer(GEL, 10)
    ready = parse_ts(now_["ready_at"])
    assert abs((ready - utcnow()).total_seconds()) < 60, now_
    need, allocs = w.hospital("11").need(GEL, 10, "stat")
    expect_allocs(allocs, [(need, now_, 10, "region")])


def test_ready_at_after_needed_by_is_excluded(w):
    m = w.manufacturer("11")
    late, _ = m.offer(GEL, 10, ready_at=at(10))
    h = w.hospital("11")
    need, allocs = h.need(GEL, 10, "stat", needed_by=at(5))
    assert allocs == [], "an offer ready after needed_by cannot serve the need"
    assert w.need(need["id"])["status"] == "open"
    # An offer ready in time, posted later, serves it (offer-driven).
    ontime, allocs = m.offer(GEL, 10, ready_at=at(4))
    expect_allocs(allocs, [(need, ontime, 10, "region")])
    # The late offer still serves a need whose needed_by allows it; ready_at == needed_by is
    # in time (O.ready_at <= N.needed_by).
    exact, allocs = h.need(GEL, 4, "routine", needed_by=at(10))
    expect_allocs(allocs, [(exact, late, 4, "region")])
    # Offer-driven direction too: an offer ready after every needed_by reaches no one.
    h.need(GEL, 10, "stat", needed_by=at(6))
    _, allocs = m.offer(GEL, 10, ready_at=at(7))
    assert allocs == []


def test_need_whose_needed_by_has_passed_is_never_matched(w):
    m = w.manufacturer("11")
    offer, _ = m.offer(GEL, 10, ready_at=iso(utcnow() - timedelta(days=2)))
    past = iso(utcnow() - timedelta(hours=1))
    need, allocs = w.hospital("11").need(GEL, 10, "stat", needed_by=past)
    assert allocs == []
    _, allocs = w.manufacturer("11").offer(GEL, 10, ready_at=iso(utcnow() - timedelta(days=3)))
    assert allocs == []
    assert w.need(need["id"])["remaining"] == 10
    assert w.offer(offer["id"])["remaining"] == 10


# ------------------------------------------------------------------ tiers and scopes

# (offer region, delivery_scope, need region, expected tier or None)
SCOPE_CASES = [
    ("24", "region", "24", "region"),
    ("24", "region", "11", None),
    ("24", "region", "93", None),
    ("24", "neighbours", "24", "region"),
    ("24", "neighbours", "11", "neighbours"),
    ("24", "neighbours", "93", None),
    ("24", "neighbours", "32", None),        # 32 borders 11, not 24
    ("24", "national", "24", "region"),
    ("24", "national", "11", "neighbours"),
    ("24", "national", "93", "national"),
    ("24", "national", "32", "national"),
    # overseas and Corse border none: reached and reaching only in the national tier
    ("04", "neighbours", "11", None),
    ("04", "national", "11", "national"),
    ("11", "neighbours", "04", None),
    ("11", "national", "04", "national"),
    ("04", "region", "04", "region"),
    ("94", "neighbours", "93", None),
    ("94", "national", "93", "national"),
    ("93", "neighbours", "94", None),
]


@pytest.mark.parametrize("offer_region,scope,need_region,tier", SCOPE_CASES,
                         ids=[f"{a}-{b}-to-{c}" for a, b, c, _ in SCOPE_CASES])
def test_delivery_scope_and_tier(w, offer_region, scope, need_region, tier):
    m = w.manufacturer(offer_region)
    other = w.manufacturer(need_region)
    # need-driven: the offer is there first (ethanol, a manufacturer's need)
    offer, _ = m.offer(ETHANOL, 10, delivery_scope=scope)
    need, allocs = other.need(ETHANOL, 10, "stat")
    expect_allocs(allocs, [(need, offer, 10, tier)] if tier else [])
    # offer-driven: the need is there first (glycerol)
    need2, _ = other.need(GLYCEROL, 10, "stat")
    offer2, allocs = m.offer(GLYCEROL, 10, delivery_scope=scope)
    expect_allocs(allocs, [(need2, offer2, 10, tier)] if tier else [])
    # the region of the object, not of the participant, counts: same again with explicit
    # regions given by participants located elsewhere
    m3, other3 = w.manufacturer("53"), w.manufacturer("01")
    offer3, _ = m3.offer(ETHANOL, 7, delivery_scope=scope, region=offer_region)
    need3, allocs = other3.need(ETHANOL, 7, "asap", region=need_region)
    assert offer3["region"] == offer_region and need3["region"] == need_region
    expect_allocs(allocs, [(need3, offer3, 7, tier)] if tier else [])


def test_overseas_need_only_reached_nationally(w):
    """A need in La Réunion (04): offers in 11 with scope region or neighbours never reach it;
    the national one does, in the national tier."""
    m = w.manufacturer("11")
    region_only, _ = m.offer(GEL, 10, delivery_scope="region", ready_at=at(1))
    neighbours, _ = m.offer(GEL, 10, delivery_scope="neighbours", ready_at=at(1))
    national, _ = m.offer(GEL, 10, delivery_scope="national", ready_at=at(2))
    need, allocs = w.hospital("04").need(GEL, 30, "stat")
    expect_allocs(allocs, [(need, national, 10, "national")])
    got = w.need(need["id"])
    assert (got["remaining"], got["allocated"], got["status"]) == (20, 10, "open")
    # A local offer in 04 comes first for the rest, in tier region.
    local, allocs = w.manufacturer("04").offer(GEL, 50, delivery_scope="region")
    expect_allocs(allocs, [(need, local, 20, "region")])


# ------------------------------------------------------------------ markets and capacity

def test_capacity_offer_serves_finished_good_need(w):
    need, _ = w.hospital("24").need(GEL, 100, "stat")
    cap, allocs = w.manufacturer("11").offer(GEL_CAP, 60, delivery_scope="neighbours")
    assert cap["market"] == GEL and cap["product"] == GEL_CAP
    expect_allocs(allocs, [(need, cap, 60, "neighbours")])
    a = allocs[0]
    assert a["product"] == GEL and a["offer_product"] == GEL_CAP, a
    # Stock of the good serves the same need (one market), here in tier region.
    stock, allocs = w.manufacturer("24").offer(GEL, 30, delivery_scope="region")
    expect_allocs(allocs, [(need, stock, 30, "region")])
    assert allocs[0]["offer_product"] == GEL
    # Hand-rub capacity serves another market: not this need.
    _, allocs = w.manufacturer("24").offer("hand-rub-production-capacity", 50)
    assert allocs == []
    _, allocs = w.manufacturer("24").offer(ETHANOL, 50)
    assert allocs == []
    # A second capacity offer takes the rest of the need (offer-driven), and a new gel need
    # finds it (need-driven).
    cap2, allocs1 = w.manufacturer("11").offer(GEL_CAP, 40, delivery_scope="neighbours", ready_at=at(3))
    expect_allocs(allocs1, [(need, cap2, 10, "neighbours")])
    need2, allocs = w.hospital("24").need(GEL, 10, "asap", needed_by=at(5))
    expect_allocs(allocs, [(need2, cap2, 10, "neighbours")])
    assert w.offer(cap2["id"])["remaining"] == 20
    # Ids carry a 4-character market code: same market, same code.
    same = {x["id"][-4:] for x in (need, cap, stock, need2, cap2, *allocs, *allocs1)}
    assert len(same) == 1, same
    eth, _ = w.manufacturer("24").offer(ETHANOL, 5)
    assert eth["id"][-4:] not in same


def test_hand_rub_market_is_separate(w):
    need, _ = w.hospital("11").need(HANDRUB, 10, "stat")
    _, allocs = w.manufacturer("11").offer(GEL, 10)
    assert allocs == []
    cap, allocs = w.manufacturer("11").offer("hand-rub-production-capacity", 10)
    expect_allocs(allocs, [(need, cap, 10, "region")])


# ------------------------------------------------------------------ quantities

def test_min_lot_offer_driven(w):
    """min_lot 30 on an offer of 100: needs whose quantity would give a smaller allocation are
    skipped unless it takes the offer's last units."""
    h = w.hospital("11")
    n20, _ = h.need(GEL, 20, "stat")       # q = 20 < 30 and 20 != 100: skipped
    n50, _ = h.need(GEL, 50, "asap")       # q = 50: taken, offer remaining 50
    n10, _ = h.need(GEL, 10, "urgent")     # q = 10 < 30, != 50: skipped
    n60, _ = h.need(GEL, 60, "routine")    # q = min(50, 60) = 50 = remaining: taken
    offer, allocs = w.manufacturer("11").offer(GEL, 100, min_lot=30)
    assert offer["min_lot"] == 30
    expect_allocs(allocs, [(n50, offer, 50, "region"), (n60, offer, 50, "region")])
    assert w.need(n20["id"])["remaining"] == 20
    assert w.need(n10["id"])["remaining"] == 10


def test_min_lot_need_driven(w):
    m1, m2 = w.manufacturer("11"), w.manufacturer("11")
    big, _ = m1.offer(GEL, 100, min_lot=40)
    small, _ = m2.offer(GEL, 30)
    h = w.hospital("11")
    a_, allocs = h.need(GEL, 25, "stat")            # big: 25 < 40 skipped -> small
    expect_allocs(allocs, [(a_, small, 25, "region")])
    b_, allocs = h.need(GEL, 35, "stat")            # big skipped; small's last 5; big skipped (30)
    expect_allocs(allocs, [(b_, small, 5, "region")])
    assert w.need(b_["id"])["remaining"] == 30
    c_, allocs = h.need(GEL, 40, "stat")            # 40 >= 40
    expect_allocs(allocs, [(c_, big, 40, "region")])
    d_, allocs = h.need(GEL, 70, "stat")            # q = 60 = big's last units
    expect_allocs(allocs, [(d_, big, 60, "region")])
    got = w.offer(big["id"])
    assert (got["remaining"], got["allocated"], got["status"]) == (0, 100, "depleted")


def test_partial_fills(w):
    m1, m2, m3 = w.manufacturer("11"), w.manufacturer("11"), w.manufacturer("11")
    o1, _ = m1.offer(GEL, 30)
    o2, _ = m2.offer(GEL, 30)
    need, allocs = w.hospital("11").need(GEL, 100, "urgent")
    expect_allocs(allocs, [(need, o1, 30, "region"), (need, o2, 30, "region")])
    assert need["remaining"] == 40 and need["allocated"] == 60 and need["status"] == "open", need
    o3, allocs = m3.offer(GEL, 100)
    expect_allocs(allocs, [(need, o3, 40, "region")])
    assert (o3["remaining"], o3["allocated"], o3["status"]) == (60, 40, "open"), o3
    got = w.need(need["id"])
    assert (got["remaining"], got["allocated"], got["received"], got["status"]) == (0, 100, 0, "allocated")
    for o, rem in ((o1, 0), (o2, 0)):
        g = w.offer(o["id"])
        assert (g["remaining"], g["allocated"], g["released"], g["status"]) == (rem, 30, 0, "depleted")


def test_same_participant_never_matched(w):
    m1, m2 = w.manufacturer("11"), w.manufacturer("11")
    own_offer, _ = m1.offer(ETHANOL, 100)
    own_need, allocs = m1.need(ETHANOL, 50, "routine")
    assert allocs == [], "a participant's need never takes its own offer"
    need2, allocs = m2.need(ETHANOL, 150, "stat")
    expect_allocs(allocs, [(need2, own_offer, 100, "region")])
    # m2's own need is still open and more urgent, but m2's own offer skips it.
    offer2, allocs = m2.offer(ETHANOL, 80)
    expect_allocs(allocs, [(own_need, offer2, 50, "region")])
    assert w.need(need2["id"])["remaining"] == 50
    assert w.offer(offer2["id"])["remaining"] == 30


def test_each_allocation_records_tier_and_parties(w):
    h, m11, m24, m93 = w.hospital("11"), w.manufacturer("11"), w.manufacturer("24"), w.manufacturer("93")
    o93, _ = m93.offer(GEL_CAP, 5, delivery_scope="national")
    o24, _ = m24.offer(GEL, 5, delivery_scope="national")
    o11, _ = m11.offer(GEL, 5, delivery_scope="region")
    need, allocs = h.need(GEL, 15, "stat")
    expect_allocs(allocs, [(need, o11, 5, "region"), (need, o24, 5, "neighbours"),
                           (need, o93, 5, "national")])
    for a, o, m in zip(allocs, (o11, o24, o93), (m11, m24, m93)):
        assert a["need_participant_id"] == h.id and a["offer_participant_id"] == m.id, a
        assert a["need_region"] == "11" and a["offer_region"] == o["region"], a
        assert a["urgency"] == "stat" and a["product"] == GEL, a
        assert a["offer_product"] == o["product"], a
    check_listed(w, allocs)
    # Each side lists it; a stranger does not.
    assert {x["id"] for x in h.list_all("/v1/allocations")} == {a["id"] for a in allocs}
    assert [x["id"] for x in m24.list_all("/v1/allocations")] == [allocs[1]["id"]]
    assert w.hospital("11").list_all("/v1/allocations") == []



def test_patch_urgency_reorders_the_next_offer_driven_match(w):
    hosp = w.hospital("11")
    first, _ = hosp.need(GEL, 10, "routine", needed_by=at(5))
    second, _ = hosp.need(GEL, 10, "routine", needed_by=at(6))
    third, _ = hosp.need(GEL, 10, "routine")
    r = hosp.api.patch(f"/v1/needs/{third['id']}", json={"urgency": "stat"})
    assert r.status_code == 200 and r.json()["urgency"] == "stat", r.text
    r = hosp.api.patch(f"/v1/needs/{first['id']}", json={"needed_by": at(7)})
    assert r.status_code == 200, r.text
    assert w.allocations() == []
    offer, allocs = w.manufacturer("11").offer(GEL, 25)
    expect_allocs(allocs, [(third, offer, 10, "region"), (second, offer, 10, "region"),
                           (first, offer, 5, "region")])
    assert [a["urgency"] for a in allocs] == ["stat", "routine", "routine"]


def test_patch_needed_by_does_not_match_by_itself(w):
    """docs/matching.md, "When matching runs": creation, a raised quantity, freed quantity.
    A PATCH that only moves needed_by later makes no allocation; the need waits for the next
    trigger (here a new offer, which then serves it offer-driven)."""
    m, hosp = w.manufacturer("11"), w.hospital("11")
    late, _ = m.offer(GEL, 10, ready_at=at(10))
    need, allocs = hosp.need(GEL, 10, "stat", needed_by=at(5))
    assert allocs == []
    r = hosp.api.patch(f"/v1/needs/{need['id']}", json={"needed_by": at(20)})
    assert r.status_code == 200, r.text
    assert w.allocations() == [], "a PATCH of needed_by alone made allocations"
    assert w.need(need["id"])["remaining"] == 10
    other, allocs = w.manufacturer("11").offer(GEL, 10, ready_at=at(15))
    expect_allocs(allocs, [(need, other, 10, "region")])
    assert w.offer(late["id"])["remaining"] == 10


# ------------------------------------------------------------------ age within one millisecond

def test_age_is_creation_order_even_within_one_millisecond(w):
    """"Oldest" is creation order (docs/matching.md, "Order"), also for objects created in the
    same millisecond: 30 offers and 30 needs sent pipelined on one connection (the daemon
    handles them one after the other, many within one millisecond)."""
    m, m2 = w.manufacturer("11"), w.manufacturer("11")
    offer_bodies = [{"product": ETHANOL, "quantity": 1, "ready_at": at(1), "delivery_scope": "region"}] * 30
    answers = pipelined_posts(w.daemon, m.token, "/v1/offers", offer_bodies)
    assert all(s == 201 for s, _ in answers), answers[:3]
    created = [b["offer"]["id"] for _, b in answers]
    assert len({b["offer"]["created_at"] for _, b in answers}) < 30, "no two in one millisecond: inconclusive"
    # Lists are oldest first.
    assert [o["id"] for o in m.list_all("/v1/offers")] == created, "GET /v1/offers is not in creation order"
    # Need-driven: same tier and ready_at, so the oldest offers first.
    need, allocs = m2.need(ETHANOL, 10, "stat")
    assert [a["offer_id"] for a in allocs] == created[:10], \
        f"took offers #{[created.index(a['offer_id']) for a in allocs]}"
    # Offer-driven: same tier, urgency and needed_by, so the oldest needs first.
    need_bodies = [{"product": GLYCEROL, "quantity": 1, "urgency": "asap"}] * 30
    answers = pipelined_posts(w.daemon, m2.token, "/v1/needs", need_bodies)
    assert all(s == 201 for s, _ in answers), answers[:3]
    needs = [b["need"]["id"] for _, b in answers]
    assert [n["id"] for n in m2.list_all("/v1/needs", {"product": GLYCEROL})] == needs
    _, allocs = m.offer(GLYCEROL, 10)
    assert [a["need_id"] for a in allocs] == needs[:10], \
        f"served needs #{[needs.index(a['need_id']) for a in allocs]}"


def test_one_offer_serves_more_than_1024_needs_bounded_per_call(w):
    """Matching goes on until the driving object's remaining is 0 or no candidate is left
    (docs/matching.md, "Order"), however many allocations that takes — but one call makes at
    most match_max_allocations (128 by default) and the rest goes on in later calls through
    the sweeper, so no request holds Redis for long: the answer carries the first 128, and
    the other 972 follow within moments, best candidates first, each need exactly once."""
    hosp = w.hospital("11")
    answers = pipelined_posts(w.daemon, hosp.token, "/v1/needs",
                              [{"product": GEL, "quantity": 1, "urgency": "routine"}] * 1100)
    assert all(s == 201 for s, _ in answers), [a for a in answers if a[0] != 201][:2]
    needs = [b["need"]["id"] for _, b in answers]
    offer, allocs = w.manufacturer("11").offer(GEL, 1100)
    assert len(allocs) == 128, f"{len(allocs)} allocations in the answer (one call's share)"
    assert [a["need_id"] for a in allocs] == needs[:128], "not the oldest needs first"
    deadline = time.monotonic() + 10 * h.SLOW
    while time.monotonic() < deadline:
        got = w.offer(offer["id"])
        if got["remaining"] == 0:
            break
        time.sleep(0.05)
    assert (got["remaining"], got["allocated"], got["status"]) == (0, 1100, "depleted"), got
    assert hosp.list_all("/v1/needs", {"status": "open"}) == []
    listed = w.allocations(offer_id=offer["id"])
    assert sorted(a["need_id"] for a in listed) == sorted(needs), "a need served twice or not at all"


def test_min_lot_walk_is_bounded_and_goes_on_later(w):
    """A need facing many offers that cannot serve it (min_lot above what it needs) examines
    at most match_max_candidates of them per call; the walk goes on from where it stopped in
    later calls, so the one offer that can serve it, behind all of them, still does."""
    d = w.daemon
    m = w.manufacturer("11")
    bodies = [{"product": GEL, "quantity": 100, "min_lot": 50, "delivery_scope": "region",
               "ready_at": "2030-01-01T00:00:00Z"}] * 600
    answers = pipelined_posts(d, m.token, "/v1/offers", bodies)
    assert all(s == 201 for s, _ in answers)
    late, _ = w.manufacturer("11").offer(GEL, 5, ready_at="2031-01-01T00:00:00Z")
    need, allocs = w.hospital("11").need(GEL, 5, "stat")
    assert allocs == [], "600 candidates examined in one call"
    deadline = time.monotonic() + 10 * h.SLOW
    while time.monotonic() < deadline and not w.allocations(need_id=need["id"]):
        time.sleep(0.05)
    listed = w.allocations(need_id=need["id"])
    assert [(a["offer_id"], a["quantity"]) for a in listed] == [(late["id"], 5)], listed


def test_far_future_needed_by_and_ready_at_still_match(w):
    """RFC 3339 dates late in the range (here 2286, the last year kept) follow the same
    rules: a stat need with needed_by 2286 is served offer-driven, and an offer ready in 2286 serves a need without
    needed_by offer-driven as well as need-driven."""
    hosp, m = w.hospital("11"), w.manufacturer("11")
    far_need, _ = hosp.need(GEL, 5, "stat", needed_by="2286-06-01T00:00:00Z")
    offer, allocs = m.offer(GEL, 5)
    expect_allocs(allocs, [(far_need, offer, 5, "region")])
    open_need, _ = hosp.need(HANDRUB, 5, "stat")
    late, allocs = m.offer(HANDRUB, 5, ready_at="2286-06-01T00:00:00Z")
    expect_allocs(allocs, [(open_need, late, 5, "region")])
    late2, _ = m.offer(ETHANOL, 5, ready_at="2286-06-01T00:00:00Z")
    need2, allocs = w.manufacturer("11").need(ETHANOL, 5, "asap")
    expect_allocs(allocs, [(need2, late2, 5, "region")])


def test_patch_lowering_quantity_does_not_match(w):
    """Only a raised quantity re-matches (docs/matching.md, "When matching runs"). Set-up: a
    need passed over for min_lot becomes servable once the offer is down to its last units;
    nothing triggers it until the need's quantity is raised (lowering it is no trigger)."""
    m = w.manufacturer("11")
    offer, _ = m.offer(GEL, 100, min_lot=50)
    hosp = w.hospital("11")
    need, allocs = hosp.need(GEL, 40, "stat")
    assert allocs == []                                   # 40 < min_lot, not the last units

    def need_patch(n, body):
        return hosp.api.patch(f"/v1/needs/{n['id']}", json=body)

    other, allocs = w.hospital("11").need(GEL, 70, "stat")
    expect_allocs(allocs, [(other, offer, 70, "region")])  # offer down to 30: its last units
    r = need_patch(need, {"quantity": 39})
    assert r.status_code == 200, r.text
    assert w.allocations(need_id=need["id"]) == [], "a PATCH lowering quantity made allocations"
    assert r.json()["remaining"] == 39, r.json()
    r = need_patch(need, {"quantity": 45})
    assert r.status_code == 200, r.text
    allocs = w.allocations(need_id=need["id"])
    assert [(a["offer_id"], a["quantity"]) for a in allocs] == [(offer["id"], 30)], allocs
    assert (r.json()["remaining"], r.json()["allocated"]) == (15, 30), r.json()
