"""Close-out of allocations (docs/matching.md, "The life of an allocation"): reasons and notes
on decline, cancel and receive; decline from confirmed; cancel by the need's side (the
quantity back to the offer, off the need); receipt in part (the shortfall back to the need,
matched again, never with that offer); the time of every step; overdue allocations raised
once to both parties. The stock feed's exactness through all of it is test_feeds.py's and
the reference model's (test_matching_property.py)."""
from __future__ import annotations

import json
import time

import pytest

import impactd_harness as h
import webhook_receiver as wr
from impactd_harness import assert_problem
from model import World, parse_ts

GEL = "hydroalcoholic-gel"
VALIDATION = "tag:impactd,2026:problem:validation"


@pytest.fixture
def w(impactd) -> World:
    return World(impactd())


def one_alloc(w: World, quantity: int = 10):
    m, hosp = w.manufacturer("11"), w.hospital("11")
    offer, _ = m.offer(GEL, quantity)
    need, allocs = hosp.need(GEL, quantity, "asap")
    assert len(allocs) == 1, allocs
    return m, hosp, offer, need, allocs[0]


def fields_of(r) -> set[str]:
    return {e["field"] for e in r.json().get("errors", [])}


def messages(daemon, client, aid: str) -> list[dict]:
    """The payloads in client's inbox about allocation aid."""
    out = []
    for item in wr.inbox(daemon, client.token):
        body = json.loads(item["body"])
        if body["data"].get("id") == aid:
            out.append(body)
    return out


# ------------------------------------------------------------------ decline

def test_decline_from_confirmed_with_a_reason_goes_back_to_the_need(w):
    m, hosp, offer, need, a = one_alloc(w)
    other = w.manufacturer("11")
    m.act_ok(a["id"], "confirm")
    got = m.act_ok(a["id"], "decline", {"reason": "quality_hold", "note": "lot 42 on hold"})
    assert (got["status"], got["reason"], got["note"]) == ("declined", "quality_hold",
                                                           "lot 42 on hold")
    assert got["closed_at"] and got["confirmed_at"]
    assert parse_ts(got["closed_at"]) >= parse_ts(got["confirmed_at"])
    n = w.need(need["id"])
    assert (n["status"], n["remaining"], n["allocated"]) == ("open", 10, 0), n
    # matched again at once, never with that offer
    o2, made = other.offer(GEL, 10)
    assert [x["need_id"] for x in made] == [need["id"]]
    assert all(x["offer_id"] != offer["id"] for x in w.allocations(need_id=need["id"])
               if x["id"] != a["id"])
    declined = h.poll_until(   # the notifier writes it just after the answer
        lambda: [p for p in messages(w.daemon, hosp, a["id"])
                 if p["type"] == "allocation.declined"] or None, 10, "allocation.declined")
    assert [p["data"]["reason"] for p in declined] == ["quality_hold"]


@pytest.mark.parametrize("body,field", [
    ({"reason": "found_elsewhere"}, "reason"),      # cancel's, not decline's
    ({"reason": "nope"}, "reason"),
    ({"note": "x" * 501}, "note"),
    ({"note": 5}, "note"),
    ({"carrier": "DHL"}, "carrier"),                # ship's
    ({"quantity": 3}, "quantity"),                  # receive's
])
def test_decline_body_is_checked(w, body, field):
    m, hosp, offer, need, a = one_alloc(w)
    r = m.act(a["id"], "decline", body)
    assert_problem(r, 422, ptype=VALIDATION)
    assert field in fields_of(r), r.text
    assert w.allocation(a["id"])["status"] == "proposed"


# ------------------------------------------------------------------ cancel

def test_cancel_needs_a_reason_and_the_need_side(w):
    m, hosp, offer, need, a = one_alloc(w)
    r = hosp.act(a["id"], "cancel", {"note": "why not"})
    assert_problem(r, 422, ptype=VALIDATION)
    assert "reason" in fields_of(r)
    assert_problem(m.act(a["id"], "cancel", {"reason": "other"}), 403)
    assert_problem(hosp.act(a["id"], "cancel", {"reason": "out_of_stock"}), 422)
    assert w.allocation(a["id"])["status"] == "proposed"


def test_cancel_gives_the_quantity_back_to_the_offer_and_off_the_need(w):
    m, hosp = w.manufacturer("11"), w.hospital("11")
    offer, _ = m.offer(GEL, 10)
    need, allocs = hosp.need(GEL, 25, "asap")          # 10 allocated, 15 still asked for
    a = allocs[0]
    got = hosp.act_ok(a["id"], "cancel", {"reason": "found_elsewhere"})
    assert (got["status"], got["reason"]) == ("cancelled", "found_elsewhere") and got["closed_at"]
    n = w.need(need["id"])
    assert (n["status"], n["quantity"], n["remaining"], n["allocated"]) == ("open", 15, 15, 0), n
    o = w.offer(offer["id"])
    # back in the offer, and not matched again with this need (still open for 15)
    assert (o["status"], o["remaining"], o["allocated"]) == ("open", 10, 0), o
    assert len(w.allocations(need_id=need["id"])) == 1
    # another need takes it at once when the offer is matched again (a PATCH raises it)
    other = w.hospital("11")
    n2, made = other.need(GEL, 4, "stat")
    assert [(x["offer_id"], x["quantity"]) for x in made] == [(offer["id"], 4)]


def test_cancel_of_all_a_need_asked_for_cancels_the_need_and_rematches_the_offer(w):
    m, hosp, other = w.manufacturer("11"), w.hospital("11"), w.hospital("11")
    offer, _ = m.offer(GEL, 10)
    need, allocs = hosp.need(GEL, 10, "asap")
    m.act_ok(allocs[0]["id"], "confirm")
    waiting, none = other.need(GEL, 6, "urgent")
    assert none == []
    hosp.act_ok(allocs[0]["id"], "cancel", {"reason": "no_longer_needed", "note": "stock came in"})
    n = w.need(need["id"])
    assert (n["status"], n["remaining"], n["allocated"]) == ("cancelled", 0, 0), n
    # the offer's quantity went to the need that was waiting
    got = w.allocations(need_id=waiting["id"])
    assert [(x["offer_id"], x["quantity"]) for x in got] == [(offer["id"], 6)]
    assert w.offer(offer["id"])["remaining"] == 4
    h.poll_until(lambda: "allocation.cancelled" in
                 [p["type"] for p in messages(w.daemon, m, allocs[0]["id"])] or None, 10,
                 "allocation.cancelled in the manufacturer's inbox")


# ------------------------------------------------------------------ receive, ship

def test_ship_details_and_every_step_time_are_recorded(w):
    m, hosp, offer, need, a = one_alloc(w)
    m.act_ok(a["id"], "confirm", {"note": "ok"})
    shipped = m.act_ok(a["id"], "ship", {"carrier": "Geodis", "tracking": "GX-1",
                                         "expected_at": "2030-01-02T10:00:00Z"})
    assert (shipped["carrier"], shipped["tracking"]) == ("Geodis", "GX-1")
    assert parse_ts(shipped["expected_at"]) == parse_ts("2030-01-02T10:00:00Z")
    done = hosp.act_ok(a["id"], "receive")
    times = [parse_ts(done[k]) for k in ("created_at", "confirmed_at", "shipped_at",
                                         "received_at")]
    assert times == sorted(times), done
    assert done["closed_at"] == done["received_at"]
    assert (done["received_quantity"], done["reason"]) == (10, None)
    assert w.need(need["id"])["status"] == "fulfilled"


def shipped_alloc(w: World, quantity: int = 10):
    m, hosp, offer, need, a = one_alloc(w, quantity)
    m.act_ok(a["id"], "confirm")
    m.act_ok(a["id"], "ship")
    return m, hosp, offer, need, a


def test_receipt_in_part_sends_the_shortfall_back_to_the_need(w):
    m, hosp, offer, need, a = shipped_alloc(w)
    r = hosp.act(a["id"], "receive", {"quantity": 4})
    assert_problem(r, 422, ptype=VALIDATION)
    assert "reason" in fields_of(r)
    r = hosp.act(a["id"], "receive", {"quantity": 11, "reason": "other"})
    assert_problem(r, 422, ptype=VALIDATION)
    assert "quantity" in fields_of(r)
    assert w.allocation(a["id"])["status"] == "shipped"
    got = hosp.act_ok(a["id"], "receive", {"quantity": 4, "reason": "damaged", "note": "6 crushed"})
    assert (got["status"], got["received_quantity"], got["reason"]) == ("received", 4, "damaged")
    n = w.need(need["id"])
    assert (n["status"], n["remaining"], n["allocated"], n["received"]) == ("open", 6, 4, 4), n
    o = w.offer(offer["id"])
    assert (o["remaining"], o["allocated"]) == (0, 10), o      # the offer gave all of it
    # the shortfall is matched again, never with that offer
    other = w.manufacturer("11")
    o2, made = other.offer(GEL, 50)
    assert [(x["need_id"], x["quantity"]) for x in made] == [(need["id"], 6)]
    feed = h.api(w.daemon, w.daemon.admin_token).get("/v1/feeds/stock",
                                                      params={"region": "11", "product": GEL})
    row = feed.json()["rows"][0]
    assert row["received_total"] == 4 and row["allocated_in_flight"] == 6, row


def test_nothing_received(w):
    m, hosp, offer, need, a = shipped_alloc(w)
    got = hosp.act_ok(a["id"], "receive", {"quantity": 0, "reason": "not_delivered"})
    assert got["received_quantity"] == 0
    n = w.need(need["id"])
    assert (n["status"], n["remaining"], n["received"]) == ("open", 10, 0), n


# ------------------------------------------------------------------ overdue

OVERDUE_ENV = {"IMPACTD_SHIP_WITHIN": "stat=1s,asap=1s,urgent=1s,routine=1s",
               "IMPACTD_RECEIVE_WITHIN": "1s"}


def overdue_messages(daemon, client, aid):
    return [p["data"]["overdue"] for p in messages(daemon, client, aid)
            if p["type"] == "allocation.overdue"]


def test_overdue_once_to_both_parties_for_each_step_with_two_daemons(impactd, redis_server):
    d1 = impactd(redis_server, env=OVERDUE_ENV)
    impactd(redis_server, env=OVERDUE_ENV)          # a second daemon sweeps the same markets
    w = World(d1)
    m, hosp, offer, need, a = one_alloc(w)
    m.act_ok(a["id"], "confirm")
    for who in (m, hosp):
        h.poll_until(lambda: overdue_messages(d1, who, a["id"]) == ["ship"] or None, 12,
                     "allocation.overdue (ship) in both inboxes")
    assert w.allocation(a["id"])["overdue"] == "ship"
    assert w.allocation(a["id"])["status"] == "confirmed"
    time.sleep(2.5)                                  # several sweeps of both daemons later
    assert overdue_messages(d1, m, a["id"]) == ["ship"]
    shipped = m.act_ok(a["id"], "ship")
    assert shipped["overdue"] is None
    for who in (m, hosp):
        h.poll_until(lambda: overdue_messages(d1, who, a["id"]) == ["ship", "receive"] or None,
                     12, "allocation.overdue (receive) in both inboxes")
    done = hosp.act_ok(a["id"], "receive")
    assert done["overdue"] is None
    time.sleep(2.5)
    assert overdue_messages(d1, hosp, a["id"]) == ["ship", "receive"]


def test_an_allocation_shipped_in_time_is_never_overdue(impactd, redis_server):
    d = impactd(redis_server, env={"IMPACTD_SHIP_WITHIN": "stat=3s,asap=3s,urgent=3s,routine=3s"})
    w = World(d)
    m, hosp, offer, need, a = one_alloc(w)
    m.act_ok(a["id"], "confirm")
    m.act_ok(a["id"], "ship")
    time.sleep(5)
    assert overdue_messages(d, m, a["id"]) == []
    assert w.allocation(a["id"])["overdue"] is None


def test_overdue_settings_are_checked(tmp_path):
    base = {"IMPACTD_LISTEN": f"127.0.0.1:{h.free_port()}",
            "IMPACTD_REDIS_URL": f"redis://127.0.0.1:{h.free_port()}/0",
            "IMPACTD_DATA_DIR": str(tmp_path / "data")}
    ok = h.run_impactd(["--config", str(h.CONFIG_FILE), "--check-config"],
                       {**base, **OVERDUE_ENV})
    assert ok.returncode == 0, (ok.stdout, ok.stderr)
    for bad in ({"IMPACTD_SHIP_WITHIN": "stat=soon"}, {"IMPACTD_SHIP_WITHIN": "never=1h"},
                {"IMPACTD_RECEIVE_WITHIN": "0s"}):
        r = h.run_impactd(["--config", str(h.CONFIG_FILE), "--check-config"], {**base, **bad})
        assert r.returncode != 0, (bad, r.stdout, r.stderr)
        assert list(bad)[0] in r.stderr or list(bad)[0].lower()[8:] in r.stderr, r.stderr
