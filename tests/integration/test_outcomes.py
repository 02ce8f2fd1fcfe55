"""GET /v1/feeds/outcomes (docs/feeds.md, "Outcomes"): one row per need region × product ×
outcome × reason, equal to a recomputation from the allocations themselves, in JSON and CSV,
signed, with an ETag; filters; a regional ministry sees its regions only; other roles 403."""
from __future__ import annotations

import csv
import io
import statistics
import time

import pytest

import impactd_harness as h
from model import World, parse_ts
from test_feeds import platform_keys, verify_signature

GEL = "hydroalcoholic-gel"
ETHANOL = "hand-rub-solution"   # a second finished good
FIELDS = ["region", "product", "outcome", "reason", "count", "quantity", "received_quantity",
          "median_hours_to_receipt"]


def recompute(allocs: list[dict], since_ms: int | None = None) -> dict[tuple, dict]:
    """The feed's rows from the allocation objects."""
    groups: dict[tuple, list[dict]] = {}
    for a in allocs:
        if not a["closed_at"]:
            continue
        if since_ms is not None and parse_ts(a["closed_at"]).timestamp() * 1000 < since_ms:
            continue
        s = a["status"]
        if s == "received":
            s = "received_full" if a["received_quantity"] == a["quantity"] else "received_short"
        groups.setdefault((a["need_region"], a["product"], s, a["reason"]), []).append(a)
    out = {}
    for key, items in groups.items():
        received = key[2].startswith("received")
        hours = [(parse_ts(a["received_at"]) - parse_ts(a["created_at"])).total_seconds() / 3600
                 for a in items] if received else []
        out[key] = {"count": len(items), "quantity": sum(a["quantity"] for a in items),
                    "received_quantity": sum(a["received_quantity"] for a in items) if received else None,
                    "median_hours_to_receipt": round(statistics.median(hours), 3) if received else None}
    return out


def json_rows(resp) -> dict[tuple, dict]:
    assert resp.status_code == 200, resp.text[:300]
    body = resp.json()
    assert set(body) == {"generated_at", "rows"}
    out = {}
    for row in body["rows"]:
        assert list(row) == FIELDS, list(row)
        key = (row["region"], row["product"], row["outcome"], row["reason"])
        assert key not in out, f"row listed twice: {key}"
        out[key] = {k: row[k] for k in FIELDS[4:]}
    return out


def csv_rows(resp) -> dict[tuple, dict]:
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["Content-Type"].split(";")[0] == "text/csv"
    records = list(csv.reader(io.StringIO(resp.content.decode(), newline=""), strict=True))
    assert records[0] == FIELDS
    out = {}
    for r in records[1:]:
        key = (r[0], r[1], r[2], r[3] or None)
        out[key] = {"count": int(r[4]), "quantity": int(r[5]),
                    "received_quantity": int(r[6]) if r[6] else None,
                    "median_hours_to_receipt": float(r[7]) if r[7] else None}
    return out


def close_some(w: World) -> None:
    """Allocations closed every way, in two regions and two products."""
    for region in ("11", "32"):
        m, hosp = w.manufacturer(region), w.hospital(region)
        # cancelled first, its offer then withdrawn, so that what it gives back goes nowhere
        small, _ = m.offer(GEL, 3, delivery_scope="region")
        _, allocs = hosp.need(GEL, 3, "routine")
        hosp.act_ok(allocs[0]["id"], "cancel", {"reason": "found_elsewhere"})
        assert m.api.delete(f"/v1/offers/{small['id']}").status_code == 200
        for product, q in ((GEL, 10), (GEL, 12), (ETHANOL, 7)):
            m.offer(product, q, delivery_scope="region")   # the regions stay apart
        for product, q, steps in ((GEL, 10, [("confirm",), ("ship",), ("receive",)]),
                                  (GEL, 12, [("confirm",), ("ship",),
                                             ("receive", {"quantity": 5, "reason": "damaged"})])):
            _, allocs = hosp.need(product, q, "asap")
            for step in steps:
                actor = hosp if step[0] == "receive" else m
                actor.act_ok(allocs[0]["id"], step[0], step[1] if len(step) > 1 else None)
        _, allocs = hosp.need(ETHANOL, 7, "stat")
        m.act_ok(allocs[0]["id"], "decline", {"reason": "out_of_stock"})


def test_rows_equal_a_recomputation_from_the_allocations(impactd):
    d = impactd()
    w = World(d)
    close_some(w)
    admin = h.api(d, d.admin_token)
    want = recompute(w.allocations())
    assert {k[2] for k in want} == {"received_full", "received_short", "declined", "cancelled"}
    resp = admin.get("/v1/feeds/outcomes")
    assert json_rows(resp) == want
    verify_signature(resp, platform_keys(d))
    assert csv_rows(admin.get("/v1/feeds/outcomes", params={"format": "csv"})) == want
    assert csv_rows(admin.get("/v1/feeds/outcomes", headers={"Accept": "text/csv"})) == want
    # ETag: 304 while nothing closed, 200 once something did
    etag = resp.headers["ETag"]
    again = admin.get("/v1/feeds/outcomes", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    m, hosp = w.manufacturer("44"), w.hospital("44")     # a region where nothing waits
    m.offer(GEL, 2, delivery_scope="region")
    _, allocs = hosp.need(GEL, 2, "stat")
    m.act_ok(allocs[0]["id"], "decline")
    after = admin.get("/v1/feeds/outcomes", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert json_rows(after) == recompute(w.allocations())
    assert ("44", GEL, "declined", None) in json_rows(after)


def test_filters_since_and_regional_scope(impactd):
    d = impactd()
    w = World(d)
    close_some(w)
    admin = h.api(d, d.admin_token)
    allocs = w.allocations()
    want = recompute(allocs)
    only = json_rows(admin.get("/v1/feeds/outcomes", params={"region": "32", "product": GEL}))
    assert only == {k: v for k, v in want.items() if k[0] == "32" and k[1] == GEL} and only
    time.sleep(0.01)
    cut = max(parse_ts(a["closed_at"]) for a in allocs if a["closed_at"])
    later = json_rows(admin.get("/v1/feeds/outcomes",
                                params={"since": cut.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}))
    assert later == recompute(allocs, int(cut.timestamp() * 1000)) and later
    regional = w.ministry(regions=["32"])
    seen = json_rows(regional.api.get("/v1/feeds/outcomes"))
    assert seen == {k: v for k, v in want.items() if k[0] == "32"} and seen
    assert regional.api.get("/v1/feeds/outcomes", params={"region": "11"}).status_code == 403
    for params, field in (({"region": "99"}, "region"), ({"since": "yesterday"}, "since"),
                          ({"format": "xml"}, "format")):
        r = admin.get("/v1/feeds/outcomes", params=params)
        h.assert_problem(r, 422)
        assert field in {e["field"] for e in r.json()["errors"]}
    for who in (w.manufacturer("11"), w.hospital("11")):
        assert who.api.get("/v1/feeds/outcomes").status_code == 403


def test_lapsed_allocations_are_counted(impactd):
    d = impactd(env={"IMPACTD_LAPSE_AFTER": "stat=1s,asap=1s,urgent=1s,routine=1s"})
    w = World(d)
    m, hosp = w.manufacturer("11"), w.hospital("11")
    m.offer(GEL, 5)
    hosp.need(GEL, 5, "urgent")
    admin = h.api(d, d.admin_token)
    h.poll_until(lambda: ("11", GEL, "lapsed", None) in json_rows(admin.get("/v1/feeds/outcomes"))
                 or None, 15, "the lapsed allocation in the outcomes feed")
    assert json_rows(admin.get("/v1/feeds/outcomes")) == recompute(w.allocations())
