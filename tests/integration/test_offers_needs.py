"""Offers and needs as resources: create, read, list, PATCH, DELETE, validation, roles,
ownership, pagination, filters, Idempotency-Key, ministry regions (docs/matching.md,
"Objects" and "Endpoints"; shared/spec/API.md, Offers and Needs)."""
from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlparse

import pytest

import impactd_harness as h
from impactd_harness import RFC3339_UTC, assert_problem
from model import World, at, iso, parse_ts, utcnow

GEL = "hydroalcoholic-gel"
GEL_CAP = "gel-production-capacity"
ETHANOL = "ethanol-96"
GLYCEROL = "glycerol-98"
BOTTLE = "bottle-500ml"

OFFER_KEYS = {"id", "participant_id", "product", "market", "quantity", "remaining", "allocated",
              "released", "region", "ready_at", "expires_at", "delivery_scope", "min_lot", "note",
              "status", "created_at", "updated_at"}
NEED_KEYS = {"id", "participant_id", "product", "market", "quantity", "remaining", "allocated",
             "received", "urgency", "needed_by", "expires_at", "region", "note", "status",
             "created_at", "updated_at"}
CONFLICT = "tag:impactd,2026:problem:conflict"
VALIDATION = "tag:impactd,2026:problem:validation"


@pytest.fixture
def w(impactd) -> World:
    return World(impactd())


@pytest.fixture
def mw(module_daemon) -> World:
    """The module's shared daemon (validation tests: nothing they do is matched)."""
    return World(module_daemon)


def same_instant(a: str | None, b: str | None) -> bool:
    return parse_ts(a) == parse_ts(b)


# ------------------------------------------------------------------ create and read

def test_create_offer_with_defaults(w):
    m = w.manufacturer("24")
    r = m.post("/v1/offers", {"product": ETHANOL, "quantity": 250})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"offer", "allocations"} and body["allocations"] == []
    o = body["offer"]
    assert OFFER_KEYS <= set(o), f"missing {OFFER_KEYS - set(o)}"
    assert o["id"].startswith("off_"), o
    assert o["participant_id"] == m.id
    assert (o["product"], o["market"], o["quantity"], o["remaining"], o["allocated"], o["released"]) == \
        (ETHANOL, ETHANOL, 250, 250, 0, 0)
    assert o["region"] == "24"                      # the participant's region
    assert o["delivery_scope"] == "neighbours"
    assert o["min_lot"] is None and o["note"] is None and o["expires_at"] is None
    assert o["status"] == "open"
    for k in ("ready_at", "created_at", "updated_at"):
        assert RFC3339_UTC.match(o[k]), (k, o)
    assert abs((parse_ts(o["ready_at"]) - parse_ts(o["created_at"])).total_seconds()) < 2, o
    assert abs((parse_ts(o["created_at"]) - utcnow()).total_seconds()) < 60, o
    loc = r.headers.get("Location", "")
    assert urlparse(loc).path == f"/v1/offers/{o['id']}", r.headers
    got = m.get_ok(urlparse(loc).path)
    assert got == o


def test_create_offer_with_every_field(w):
    m = w.manufacturer("24")
    exp = iso(utcnow() + timedelta(days=30))
    o, allocs = m.offer(GLYCEROL, 500, region="93", ready_at=at(3), expires_at=exp,
                        delivery_scope="national", min_lot=50, note="lot 42 — «fût»")
    assert allocs == []
    assert o["region"] == "93" and o["delivery_scope"] == "national" and o["min_lot"] == 50
    assert same_instant(o["ready_at"], at(3)) and same_instant(o["expires_at"], exp), o
    assert o["note"] == "lot 42 — «fût»"
    assert m.get_ok(f"/v1/offers/{o['id']}") == o


def test_capacity_offer_market(w):
    o, _ = w.manufacturer().offer(GEL_CAP, 1000)
    assert (o["product"], o["market"]) == (GEL_CAP, GEL)


def test_create_need_with_defaults_and_fields(w):
    hosp = w.hospital("32")
    r = hosp.post("/v1/needs", {"product": GEL, "quantity": 40, "urgency": "asap"})
    assert r.status_code == 201, r.text
    n = r.json()["need"]
    assert r.json()["allocations"] == []
    assert NEED_KEYS <= set(n), f"missing {NEED_KEYS - set(n)}"
    assert n["id"].startswith("ned_") and n["participant_id"] == hosp.id
    assert (n["product"], n["market"], n["quantity"], n["remaining"], n["allocated"], n["received"]) == \
        (GEL, GEL, 40, 40, 0, 0)
    assert (n["urgency"], n["region"], n["status"]) == ("asap", "32", "open")
    assert n["needed_by"] is None and n["expires_at"] is None and n["note"] is None
    assert urlparse(r.headers.get("Location", "")).path == f"/v1/needs/{n['id']}"
    assert hosp.get_ok(f"/v1/needs/{n['id']}") == n
    exp = iso(utcnow() + timedelta(days=10))
    n2, _ = hosp.need(GEL, 7, "stat", needed_by=at(2), expires_at=exp, region="44", note="ICU")
    assert same_instant(n2["needed_by"], at(2)) and same_instant(n2["expires_at"], exp)
    assert (n2["region"], n2["note"], n2["urgency"]) == ("44", "ICU", "stat")


@pytest.mark.parametrize("product", [ETHANOL, "carbomer", BOTTLE, "label"])
def test_manufacturer_may_need_inputs(w, product):
    n, _ = w.manufacturer("84").need(product, 12, "routine")
    assert n["product"] == product and n["status"] == "open"


@pytest.mark.parametrize("urgency", ["stat", "asap", "urgent", "routine"])
def test_every_urgency_is_accepted(mw, urgency):
    n, _ = mw.hospital("94").need("hand-rub-solution", 1, urgency)
    assert n["urgency"] == urgency


def test_quantity_bounds_are_accepted(mw):
    m = mw.manufacturer("94")
    o, _ = m.offer(ETHANOL, 1_000_000_000, delivery_scope="region")
    assert o["quantity"] == o["remaining"] == 1_000_000_000
    o, _ = m.offer(ETHANOL, 1, delivery_scope="region", min_lot=1, note="n" * 1000)
    assert o["quantity"] == 1 and len(o["note"]) == 1000


# ------------------------------------------------------------------ validation

OFFER_OK = {"product": ETHANOL, "quantity": 100}
BAD_OFFERS = [
    ({"product": "unobtainium", "quantity": 10}, "product"),
    ({"quantity": 10}, "product"),
    ({**OFFER_OK, "quantity": 0}, "quantity"),
    ({**OFFER_OK, "quantity": -1}, "quantity"),
    ({**OFFER_OK, "quantity": 1.5}, "quantity"),
    ({**OFFER_OK, "quantity": "10"}, "quantity"),
    ({**OFFER_OK, "quantity": 1_000_000_001}, "quantity"),
    ({**OFFER_OK, "quantity": None}, "quantity"),
    ({"product": ETHANOL}, "quantity"),
    ({**OFFER_OK, "delivery_scope": "planet"}, "delivery_scope"),
    ({**OFFER_OK, "region": "99"}, "region"),
    ({**OFFER_OK, "region": 11}, "region"),
    ({**OFFER_OK, "ready_at": "tomorrow"}, "ready_at"),
    ({**OFFER_OK, "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({**OFFER_OK, "expires_at": "not a date"}, "expires_at"),
    ({**OFFER_OK, "min_lot": 0}, "min_lot"),
    ({**OFFER_OK, "min_lot": 101}, "min_lot"),
    ({**OFFER_OK, "min_lot": 2.5}, "min_lot"),
    ({**OFFER_OK, "note": "n" * 1001}, "note"),
    ({**OFFER_OK, "colour": "blue"}, "colour"),
    ({**OFFER_OK, "urgency": "stat"}, "urgency"),
]


@pytest.mark.parametrize("body,field", BAD_OFFERS, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD_OFFERS)])
def test_invalid_offer_is_422(mw, body, field):
    m = mw.manufacturer("94")
    assert_problem(m.post("/v1/offers", body), 422, field=field, ptype=VALIDATION)
    assert m.list_all("/v1/offers") == []


NEED_OK = {"product": GEL, "quantity": 10, "urgency": "stat"}
BAD_NEEDS = [
    ({**NEED_OK, "product": "unobtainium"}, "product"),
    ({**NEED_OK, "urgency": "high"}, "urgency"),
    ({"product": GEL, "quantity": 10}, "urgency"),
    ({**NEED_OK, "urgency": None}, "urgency"),
    ({**NEED_OK, "quantity": 0}, "quantity"),
    ({**NEED_OK, "quantity": 1.5}, "quantity"),
    ({**NEED_OK, "quantity": "10"}, "quantity"),
    ({**NEED_OK, "quantity": 1_000_000_001}, "quantity"),
    ({**NEED_OK, "needed_by": "soon"}, "needed_by"),
    # times are kept in 13 decimal digits of ms: from 2286-11-20T17:46:40Z on, refused
    ({**NEED_OK, "needed_by": "9999-12-31T23:59:59.999Z"}, "needed_by"),
    ({**NEED_OK, "needed_by": "2286-11-20T17:46:40Z"}, "needed_by"),
    ({**NEED_OK, "expires_at": "2286-11-20T19:46:40+02:00"}, "expires_at"),
    ({**NEED_OK, "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({**NEED_OK, "region": "05"}, "region"),
    ({**NEED_OK, "note": "n" * 1001}, "note"),
    ({**NEED_OK, "delivery_scope": "national"}, "delivery_scope"),
    ({**NEED_OK, "min_lot": 5}, "min_lot"),
    ({**NEED_OK, "bogus": True}, "bogus"),
]


@pytest.mark.parametrize("body,field", BAD_NEEDS, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD_NEEDS)])
def test_invalid_need_is_422(mw, body, field):
    hosp = mw.hospital("94")
    assert_problem(hosp.post("/v1/needs", body), 422, field=field, ptype=VALIDATION)
    assert hosp.list_all("/v1/needs") == []


def test_the_latest_time_kept_is_kept_exactly(mw):
    hosp = mw.hospital("94")
    last = "2286-11-20T17:46:39.999Z"
    r = hosp.post("/v1/needs", {**NEED_OK, "needed_by": last, "expires_at": last})
    assert r.status_code == 201, r.text
    n = r.json()["need"]
    assert (n["needed_by"], n["expires_at"]) == (last, last), n
    assert hosp.get_ok(f"/v1/needs/{n['id']}")["needed_by"] == last


@pytest.mark.parametrize("role,product", [
    ("hospital", ETHANOL),          # raw material: manufacturers only
    ("hospital", BOTTLE),           # packaging: manufacturers only
    ("hospital", GEL_CAP),          # nobody needs capacity
    ("manufacturer", GEL),          # finished good: hospitals only
    ("manufacturer", "hand-rub-solution"),
    ("manufacturer", GEL_CAP),
])
def test_need_for_a_product_of_the_wrong_category_is_422(mw, role, product):
    c = mw.client(role, "94")
    assert_problem(c.post("/v1/needs", {"product": product, "quantity": 5, "urgency": "stat"}),
                   422, field="product")
    assert c.list_all("/v1/needs") == []


def test_every_fault_is_reported(mw):
    r = mw.manufacturer("94").post("/v1/offers", {"product": "x", "quantity": 0, "region": "99",
                                                  "delivery_scope": "far", "bogus": 1})
    body = assert_problem(r, 422)
    assert {"product", "quantity", "region", "delivery_scope", "bogus"} <= {e["field"] for e in body["errors"]}


def test_malformed_json_is_400(mw):
    m = mw.manufacturer("94")
    r = m.api.post("/v1/offers", data=b'{"product": "ethanol-96", "quantity": 1',
                   headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    assert_problem(m.api.post("/v1/needs", json=[1, 2]), 422)


# ------------------------------------------------------------------ roles

def test_roles_on_creation(mw):
    hosp, ministry, m = mw.hospital("94"), mw.ministry(), mw.manufacturer("94")
    assert_problem(hosp.post("/v1/offers", {"product": GEL, "quantity": 5}), 403)
    assert_problem(ministry.post("/v1/offers", {"product": ETHANOL, "quantity": 5}), 403)
    assert_problem(ministry.post("/v1/needs", {"product": GEL, "quantity": 5, "urgency": "stat"}), 403)
    assert_problem(mw.anonymous.post("/v1/offers", {"product": ETHANOL, "quantity": 5}), 401)
    assert_problem(mw.anonymous.post("/v1/needs", {"product": GEL, "quantity": 5, "urgency": "stat"}), 401)
    bad = mw.anonymous.api.with_token("imp_" + "x" * 43)
    assert_problem(bad.post("/v1/offers", json={"product": ETHANOL, "quantity": 5}), 401)
    assert m.list_all("/v1/offers") == [] and hosp.list_all("/v1/offers") == []


def test_no_token_is_401_everywhere(mw):
    o, _ = mw.manufacturer("94").offer(ETHANOL, 5, delivery_scope="region")
    anon = mw.anonymous.api
    for method, path in [("GET", "/v1/offers"), ("GET", "/v1/needs"), ("GET", "/v1/allocations"),
                         ("GET", f"/v1/offers/{o['id']}"), ("PATCH", f"/v1/offers/{o['id']}"),
                         ("DELETE", f"/v1/offers/{o['id']}"), ("GET", "/v1/allocations/alc_x"),
                         ("POST", "/v1/allocations/alc_x/confirm")]:
        kw = {"json": {"note": "x"}} if method == "PATCH" else {}
        assert_problem(anon.request(method, path, **kw), 401)


# ------------------------------------------------------------------ ownership and visibility

def test_someone_elses_offer_is_404(w):
    owner, other, hosp = w.manufacturer("11"), w.manufacturer("11"), w.hospital("11")
    o, _ = owner.offer(ETHANOL, 100)
    path = f"/v1/offers/{o['id']}"
    for c in (other, hosp):
        assert_problem(c.get(path), 404)
    # another manufacturer: not theirs (404); a hospital: a role that never changes offers (403)
    assert_problem(other.api.patch(path, json={"quantity": 5}), 404)
    assert_problem(other.api.delete(path), 404)
    assert_problem(hosp.api.patch(path, json={"quantity": 5}), 403)
    assert_problem(hosp.api.delete(path), 403)
    assert other.list_all("/v1/offers") == []
    assert hosp.list_all("/v1/offers") == []
    got = owner.get_ok(path)
    assert got["quantity"] == 100 and got["status"] == "open"
    assert w.admin.get_ok(path) == got
    assert w.ministry().get_ok(path) == got
    assert_problem(owner.get("/v1/offers/off_doesnotexist"), 404)


def test_someone_elses_need_is_404(w):
    owner, other, m = w.hospital("11"), w.hospital("11"), w.manufacturer("11")
    n, _ = owner.need(GEL, 10, "stat")
    path = f"/v1/needs/{n['id']}"
    for c in (other, m):
        assert_problem(c.get(path), 404)
        assert_problem(c.api.patch(path, json={"quantity": 50}), 404)
        assert_problem(c.api.delete(path), 404)
    assert other.list_all("/v1/needs") == []
    assert owner.get_ok(path)["quantity"] == 10
    assert w.admin.get_ok(path)["quantity"] == 10
    assert_problem(owner.get("/v1/needs/ned_doesnotexist"), 404)


def test_lists_show_own_objects_only(w):
    m1, m2, hosp = w.manufacturer("11"), w.manufacturer("24"), w.hospital("11")
    a, _ = m1.offer(ETHANOL, 1, delivery_scope="region")
    b, _ = m2.offer(ETHANOL, 2, delivery_scope="region")
    n1, _ = m1.need(GLYCEROL, 3, "routine")
    n2, _ = hosp.need(GEL, 4, "routine")
    assert [o["id"] for o in m1.list_all("/v1/offers")] == [a["id"]]
    assert [o["id"] for o in m2.list_all("/v1/offers")] == [b["id"]]
    assert [n["id"] for n in m1.list_all("/v1/needs")] == [n1["id"]]
    assert [n["id"] for n in hosp.list_all("/v1/needs")] == [n2["id"]]
    assert m2.list_all("/v1/needs") == []
    assert [o["id"] for o in w.admin.list_all("/v1/offers")] == [a["id"], b["id"]]
    assert [n["id"] for n in w.ministry().list_all("/v1/needs")] == [n1["id"], n2["id"]]


def test_pagination_is_exactly_once_oldest_first(w):
    m = w.manufacturer("11")
    ids = [m.offer(ETHANOL, i + 1, delivery_scope="region")[0]["id"] for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = m.get_ok("/v1/offers", params=params)
        assert set(body) >= {"items", "next_cursor"}
        assert len(body["items"]) <= 3
        seen += [o["id"] for o in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == ids
    assert pages == 3
    # default limit holds all seven; limit=7 ends with next_cursor null
    body = m.get_ok("/v1/offers")
    assert [o["id"] for o in body["items"]] == ids and body["next_cursor"] is None
    body = m.get_ok("/v1/offers", params={"limit": 7})
    assert len(body["items"]) == 7 and body["next_cursor"] is None
    # needs too
    hosp = w.hospital("11")
    nids = [hosp.need("hand-rub-solution", i + 1, "routine")[0]["id"] for i in range(5)]
    assert [n["id"] for n in hosp.list_all("/v1/needs", limit=2)] == nids


@pytest.mark.parametrize("path", ["/v1/offers", "/v1/needs", "/v1/allocations"])
@pytest.mark.parametrize("limit", [0, -1, 501, "x"])
def test_bad_limit_is_422(mw, path, limit):
    assert_problem(mw.manufacturer("94").get(path, params={"limit": limit}), 422, field="limit")


def test_filters(w):
    m = w.manufacturer("11")
    e11, _ = m.offer(ETHANOL, 10, delivery_scope="region")
    g24, _ = m.offer(GLYCEROL, 10, region="24", delivery_scope="region")
    e24, _ = m.offer(ETHANOL, 10, region="24", delivery_scope="region")
    gone, _ = m.offer(GLYCEROL, 10, region="24", delivery_scope="region")
    assert m.api.delete(f"/v1/offers/{gone['id']}").status_code == 200

    def ids(path, **params):
        return [o["id"] for o in m.list_all(path, params)]

    assert ids("/v1/offers", product=ETHANOL) == [e11["id"], e24["id"]]
    assert ids("/v1/offers", region="24") == [g24["id"], e24["id"], gone["id"]]
    assert ids("/v1/offers", status="withdrawn") == [gone["id"]]
    assert ids("/v1/offers", status="open", region="24") == [g24["id"], e24["id"]]
    assert ids("/v1/offers", product=GLYCEROL, status="open") == [g24["id"]]
    assert ids("/v1/offers", status="depleted") == []
    admin_ids = [o["id"] for o in w.admin.list_all("/v1/offers", {"region": "11"})]
    assert admin_ids == [e11["id"]]
    hosp = w.hospital("11")
    s, _ = hosp.need(GEL, 5, "stat")
    r, _ = hosp.need("hand-rub-solution", 5, "routine", region="32")
    assert [n["id"] for n in hosp.list_all("/v1/needs", {"product": GEL})] == [s["id"]]
    assert [n["id"] for n in hosp.list_all("/v1/needs", {"region": "32"})] == [r["id"]]
    assert [n["id"] for n in hosp.list_all("/v1/needs", {"status": "open"})] == [s["id"], r["id"]]


def test_ministry_limited_to_regions_sees_only_them(w):
    m, hosp = w.manufacturer("11"), w.hospital("32")
    o11, _ = m.offer(ETHANOL, 10, delivery_scope="region")
    o32, _ = m.offer(ETHANOL, 10, region="32", delivery_scope="region")
    n32, _ = hosp.need(GEL, 10, "stat")
    n11, _ = hosp.need(GEL, 10, "stat", region="11")
    ars = w.ministry(regions=["32"])
    assert [o["id"] for o in ars.list_all("/v1/offers")] == [o32["id"]]
    assert [n["id"] for n in ars.list_all("/v1/needs")] == [n32["id"]]
    assert ars.get_ok(f"/v1/offers/{o32['id']}")["id"] == o32["id"]
    assert ars.get_ok(f"/v1/needs/{n32['id']}")["id"] == n32["id"]
    assert_problem(ars.get(f"/v1/offers/{o11['id']}"), 404)
    assert_problem(ars.get(f"/v1/needs/{n11['id']}"), 404)
    national = w.ministry()
    assert [o["id"] for o in national.list_all("/v1/offers")] == [o11["id"], o32["id"]]
    assert [n["id"] for n in national.list_all("/v1/needs")] == [n32["id"], n11["id"]]
    # read-only
    assert_problem(ars.api.patch(f"/v1/offers/{o32['id']}", json={"note": "x"}), 403)
    assert_problem(ars.api.delete(f"/v1/needs/{n32['id']}"), 403)


# ------------------------------------------------------------------ PATCH

def test_patch_offer_fields(w):
    m = w.manufacturer("11")
    o, _ = m.offer(ETHANOL, 100, delivery_scope="region")
    exp = iso(utcnow() + timedelta(days=3))
    r = m.api.patch(f"/v1/offers/{o['id']}", json={"quantity": 120, "note": "more", "expires_at": exp})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["id"], got["quantity"], got["remaining"], got["note"], got["status"]) == \
        (o["id"], 120, 120, "more", "open")
    assert same_instant(got["expires_at"], exp)
    assert got["updated_at"] >= o["updated_at"] and got["created_at"] == o["created_at"]
    assert m.get_ok(f"/v1/offers/{o['id']}") == got
    r = m.api.patch(f"/v1/offers/{o['id']}", json={"quantity": 30})
    assert r.status_code == 200, r.text
    assert (r.json()["quantity"], r.json()["remaining"], r.json()["note"]) == (30, 30, "more")


@pytest.mark.parametrize("body,field", [
    ({"quantity": 0}, "quantity"), ({"quantity": 2.5}, "quantity"), ({"quantity": "7"}, "quantity"),
    ({"quantity": 1_000_000_001}, "quantity"), ({"product": GLYCEROL}, "product"),
    ({"region": "24"}, "region"), ({"delivery_scope": "national"}, "delivery_scope"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"), ({"bogus": 1}, "bogus"),
    ({"urgency": "stat"}, "urgency"),
])
def test_patch_offer_invalid_is_422(mw, body, field):
    m = mw.manufacturer("94")
    o, _ = m.offer(ETHANOL, 100, delivery_scope="region")
    assert_problem(m.api.patch(f"/v1/offers/{o['id']}", json=body), 422, field=field)
    assert m.get_ok(f"/v1/offers/{o['id']}") == o


@pytest.mark.parametrize("body,field", [
    ({"quantity": 0}, "quantity"), ({"urgency": "whenever"}, "urgency"),
    ({"needed_by": "soon"}, "needed_by"), ({"product": "hand-rub-solution"}, "product"),
    ({"delivery_scope": "region"}, "delivery_scope"), ({"note": "n" * 1001}, "note"),
])
def test_patch_need_invalid_is_422(mw, body, field):
    hosp = mw.hospital("94")
    n, _ = hosp.need(GEL, 10, "routine")
    assert_problem(hosp.api.patch(f"/v1/needs/{n['id']}", json=body), 422, field=field)
    assert hosp.get_ok(f"/v1/needs/{n['id']}") == n


def test_patch_need_fields(w):
    hosp = w.hospital("11")
    n, _ = hosp.need(GEL, 10, "routine")
    r = hosp.api.patch(f"/v1/needs/{n['id']}", json={"urgency": "stat", "needed_by": at(4),
                                                       "note": "ward 3"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["urgency"], got["note"], got["quantity"], got["remaining"]) == ("stat", "ward 3", 10, 10)
    assert same_instant(got["needed_by"], at(4))
    assert hosp.get_ok(f"/v1/needs/{n['id']}") == got


def test_patch_offer_quantity_up_rematches(w):
    hosp, m = w.hospital("11"), w.manufacturer("11")
    need, _ = hosp.need(GEL, 100, "stat")
    offer, allocs = m.offer(GEL, 60)
    assert [(a["need_id"], a["quantity"]) for a in allocs] == [(need["id"], 60)]
    assert offer["status"] == "depleted" and offer["remaining"] == 0
    r = m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 130})
    assert r.status_code == 200, r.text
    got = r.json()
    # reopened with 70, 40 of which went at once to the need
    assert (got["quantity"], got["allocated"], got["remaining"], got["status"]) == (130, 100, 30, "open"), got
    allocs = w.allocations(offer_id=offer["id"])
    assert [(a["need_id"], a["quantity"], a["status"]) for a in allocs] == \
        [(need["id"], 60, "proposed"), (need["id"], 40, "proposed")]
    n = w.need(need["id"])
    assert (n["remaining"], n["allocated"], n["status"]) == (0, 100, "allocated")


def test_patch_need_quantity_up_rematches(w):
    hosp, m1, m2 = w.hospital("11"), w.manufacturer("11"), w.manufacturer("24")
    o1, _ = m1.offer(GEL, 50)
    o2, _ = m2.offer(GEL, 50)
    need, allocs = hosp.need(GEL, 30, "urgent")
    assert [(a["offer_id"], a["quantity"]) for a in allocs] == [(o1["id"], 30)]
    assert need["status"] == "allocated"
    r = hosp.api.patch(f"/v1/needs/{need['id']}", json={"quantity": 100})
    assert r.status_code == 200, r.text
    got = r.json()
    # 70 more: 20 from o1 (region), 50 from o2 (neighbours)
    assert (got["quantity"], got["allocated"], got["remaining"], got["status"]) == (100, 100, 0, "allocated"), got
    allocs = w.allocations(need_id=need["id"])
    assert [(a["offer_id"], a["quantity"], a["tier"]) for a in allocs] == \
        [(o1["id"], 30, "region"), (o1["id"], 20, "region"), (o2["id"], 50, "neighbours")]


def test_patch_quantity_below_allocated_is_409(w):
    hosp, m = w.hospital("11"), w.manufacturer("11")
    offer, _ = m.offer(GEL, 100)
    need, _ = hosp.need(GEL, 60, "stat")
    before_o, before_n = w.offer(offer["id"]), w.need(need["id"])
    assert before_o["allocated"] == 60 and before_n["allocated"] == 60
    assert_problem(m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 59}), 409, ptype=CONFLICT)
    assert_problem(hosp.api.patch(f"/v1/needs/{need['id']}", json={"quantity": 59}), 409, ptype=CONFLICT)
    assert w.offer(offer["id"]) == before_o and w.need(need["id"]) == before_n
    # down to what is allocated plus a bit is fine
    r = m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 70})
    assert r.status_code == 200, r.text
    assert (r.json()["quantity"], r.json()["remaining"], r.json()["status"]) == (70, 10, "open")


def test_delete_offer_and_need(w):
    hosp, m = w.hospital("11"), w.manufacturer("11")
    offer, _ = m.offer(GEL, 100)
    need, allocs = hosp.need(GEL, 30, "stat")
    r = m.api.delete(f"/v1/offers/{offer['id']}")
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["id"], got["status"], got["remaining"], got["allocated"]) == (offer["id"], "withdrawn", 0, 30)
    assert w.allocation(allocs[0]["id"])["status"] == "proposed"    # allocations made go on
    assert_problem(m.api.delete(f"/v1/offers/{offer['id']}"), 409, ptype=CONFLICT)
    assert_problem(m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 500}), 409)
    assert_problem(m.api.patch(f"/v1/offers/{offer['id']}", json={"note": "x"}), 409)
    assert m.get_ok(f"/v1/offers/{offer['id']}") == got
    # a withdrawn offer is matched no more
    need2, allocs2 = hosp.need(GEL, 10, "stat")
    assert allocs2 == []
    r = hosp.api.delete(f"/v1/needs/{need2['id']}")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["remaining"]) == ("cancelled", 0)
    assert_problem(hosp.api.delete(f"/v1/needs/{need2['id']}"), 409, ptype=CONFLICT)
    assert_problem(hosp.api.patch(f"/v1/needs/{need2['id']}", json={"quantity": 50}), 409)
    # a cancelled need is matched no more
    _, allocs3 = w.manufacturer("11").offer(GEL, 10)
    assert allocs3 == []
    # an allocated need can be cancelled too; its allocation goes on
    r = hosp.api.delete(f"/v1/needs/{need['id']}")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["remaining"], r.json()["allocated"]) == ("cancelled", 0, 30)
    assert w.allocation(allocs[0]["id"])["status"] == "proposed"


def test_delete_depleted_offer_and_partly_allocated_need(w):
    hosp, m = w.hospital("11"), w.manufacturer("11")
    need, _ = hosp.need(GEL, 100, "stat")
    offer, _ = m.offer(GEL, 40)
    assert offer["status"] == "depleted"
    r = m.api.delete(f"/v1/offers/{offer['id']}")
    assert r.status_code == 200 and r.json()["status"] == "withdrawn", r.text
    r = hosp.api.delete(f"/v1/needs/{need['id']}")
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["status"], got["remaining"], got["allocated"], got["quantity"]) == ("cancelled", 0, 40, 100)


# ------------------------------------------------------------------ Idempotency-Key

def test_idempotent_offer_post(w):
    m = w.manufacturer("11")
    key = "k-" + secrets.token_hex(8)
    body = {"product": ETHANOL, "quantity": 77, "delivery_scope": "region"}
    first = m.api.post("/v1/offers", json=body, headers={"Idempotency-Key": key})
    second = m.api.post("/v1/offers", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert second.status_code == 201 and second.json() == first.json()
    assert len(m.list_all("/v1/offers")) == 1
    other = m.api.post("/v1/offers", json={**body, "quantity": 78}, headers={"Idempotency-Key": key})
    assert_problem(other, 422)
    assert len(m.list_all("/v1/offers")) == 1
    # another key creates another offer
    third = m.api.post("/v1/offers", json=body, headers={"Idempotency-Key": key + "x"})
    assert third.status_code == 201 and third.json()["offer"]["id"] != first.json()["offer"]["id"]
    assert len(m.list_all("/v1/offers")) == 2


def test_idempotent_need_post_replays_its_allocations(w):
    m, hosp = w.manufacturer("11"), w.hospital("11")
    offer, _ = m.offer(GEL, 100)
    key = "need-" + secrets.token_hex(8)
    body = {"product": GEL, "quantity": 30, "urgency": "stat"}
    first = hosp.api.post("/v1/needs", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert len(first.json()["allocations"]) == 1
    second = hosp.api.post("/v1/needs", json=body, headers={"Idempotency-Key": key})
    assert second.status_code == 201 and second.json() == first.json()
    assert len(hosp.list_all("/v1/needs")) == 1
    assert len(w.allocations()) == 1
    assert w.offer(offer["id"])["remaining"] == 70
    assert_problem(hosp.api.post("/v1/needs", json={**body, "urgency": "asap"},
                                 headers={"Idempotency-Key": key}), 422)
    assert len(hosp.list_all("/v1/needs")) == 1 and w.offer(offer["id"])["remaining"] == 70


def test_patch_down_to_exactly_what_is_taken(w):
    """remaining 0 after a PATCH: the offer is depleted, the need allocated; raising again
    reopens them."""
    m, hosp = w.manufacturer("11"), w.hospital("11")
    offer, _ = m.offer(GEL, 100)
    need, _ = hosp.need(GEL, 150, "routine")
    assert w.offer(offer["id"])["status"] == "depleted"
    r = hosp.api.patch(f"/v1/needs/{need['id']}", json={"quantity": 100})
    assert r.status_code == 200, r.text
    assert (r.json()["remaining"], r.json()["allocated"], r.json()["status"]) == (0, 100, "allocated"), r.json()
    r = m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 120})
    assert r.status_code == 200, r.text
    assert (r.json()["remaining"], r.json()["status"]) == (20, "open"), r.json()
    r = m.api.patch(f"/v1/offers/{offer['id']}", json={"quantity": 100})
    assert r.status_code == 200, r.text
    assert (r.json()["remaining"], r.json()["status"]) == (0, "depleted"), r.json()
    r = hosp.api.patch(f"/v1/needs/{need['id']}", json={"quantity": 130})
    assert r.status_code == 200, r.text
    assert (r.json()["remaining"], r.json()["status"]) == (30, "open"), r.json()
    assert len(w.allocations()) == 1


def test_idempotency_key_is_per_participant(w):
    m1, m2 = w.manufacturer("11"), w.manufacturer("11")
    key = "shared-" + secrets.token_hex(6)
    body = {"product": ETHANOL, "quantity": 5, "delivery_scope": "region"}
    r1 = m1.api.post("/v1/offers", json=body, headers={"Idempotency-Key": key})
    r2 = m2.api.post("/v1/offers", json=body, headers={"Idempotency-Key": key})
    assert r1.status_code == r2.status_code == 201, (r1.text, r2.text)
    assert r1.json()["offer"]["id"] != r2.json()["offer"]["id"]
    assert r2.json()["offer"]["participant_id"] == m2.id
    assert len(w.admin.list_all("/v1/offers")) == 2


def test_pagination_across_markets(w):
    """One participant's objects in several markets: one list, oldest first, each once."""
    m = w.manufacturer("11")
    products = [ETHANOL, GLYCEROL, GEL_CAP, BOTTLE, GEL, ETHANOL, "carbomer", GLYCEROL, GEL]
    ids = [m.offer(p, 3, delivery_scope="region")[0]["id"] for p in products]
    for limit in (1, 2, 4, 9, 10):
        got = [o["id"] for o in m.list_all("/v1/offers", limit=limit)]
        assert got == ids, f"limit {limit}"
    # the last full page ends the list (no empty page after it) when limit divides exactly
    body = m.get_ok("/v1/offers", params={"limit": 9})
    assert len(body["items"]) == 9 and body["next_cursor"] is None
    nids = [m.need(p, 2, "routine")[0]["id"] for p in (BOTTLE, ETHANOL, "label", GLYCEROL, BOTTLE)]
    assert [n["id"] for n in m.list_all("/v1/needs", limit=2)] == nids
    assert [n["id"] for n in m.list_all("/v1/needs", {"product": BOTTLE}, limit=1)] == [nids[0], nids[4]]
    allocs = [a["id"] for a in w.admin.list_all("/v1/allocations")]
    assert allocs == []   # its own needs never take its own offers
