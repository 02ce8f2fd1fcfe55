"""Catalogues and pages larger than the shipped ones: what used to break at a fixed size.

- 30 regions: every market function that may match anywhere is passed 4 index keys per region
  (10 + 120 keys); commands used to be capped at 128 arguments, so a decline, a PATCH or a
  sweep failed with a misleading 503 while creation worked.
- Product ids of 60 characters and quantities near the maximum: the stock feed's CSV used to
  be printed into a buffer sized for short ids and small numbers.
- A dead-letter page of more than 126 messages: its HMGET had more arguments than a command
  could carry.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import time

import pytest

import impactd_harness as h
from model import World, pipelined_posts

EXTRA = [str(c) for c in range(60, 72)]     # 12 regions more than the 18 shipped: 30


def _catalog(tmp_path, regions=None, products=None):
    d = tmp_path / "catalog"
    d.mkdir()
    reg = json.loads((h.CATALOG_DIR / "regions.json").read_text())
    prod = json.loads((h.CATALOG_DIR / "products.json").read_text())
    if regions:
        reg["regions"] += regions
    if products:
        prod["products"] += products
    (d / "regions.json").write_text(json.dumps(reg))
    (d / "products.json").write_text(json.dumps(prod))
    shutil.copy(h.CATALOG_DIR / "departements.json", d / "departements.json")
    return d


def _chain_regions():
    """EXTRA as a chain: each borders the one before and the one after."""
    out = []
    for i, code in enumerate(EXTRA):
        nb = [EXTRA[j] for j in (i - 1, i + 1) if 0 <= j < len(EXTRA)]
        out.append({"code": code, "name": f"Région d'essai {code}", "capital": "Essai",
                    "lat": 45.0, "lon": 3.0, "overseas": False, "neighbours": nb,
                    "ars": f"ARS d'essai {code}"})
    return out


def test_thirty_regions_every_market_wide_call_works(tmp_path, impactd):
    d = impactd(env={"IMPACTD_CATALOG_DIR": str(_catalog(tmp_path, regions=_chain_regions()))})
    r = h.api(d).get("/v1/catalog/regions", params={"limit": 500})
    assert len(r.json()["items"]) == 30, r.text[:200]
    w = World(d)
    maker, hosp = w.manufacturer("60"), w.hospital("61")
    offer, _ = maker.offer("hydroalcoholic-gel", 100)
    need, allocs = hosp.need("hydroalcoholic-gel", 40, "stat")
    assert [(a["offer_id"], a["tier"]) for a in allocs] == [(offer["id"], "neighbours")]
    # the calls that pass every index key of the market
    declined = maker.act_ok(allocs[0]["id"], "decline")
    assert declined["status"] == "declined"
    r = hosp.api.patch(f"/v1/needs/{need['id']}", json={"quantity": 50})
    assert r.status_code == 200, r.text
    r = maker.api.delete(f"/v1/offers/{offer['id']}")
    assert r.status_code == 200, r.text
    # a second offer far along the chain: national scope reaches the need
    far, allocs = w.manufacturer("71").offer("hydroalcoholic-gel", 50, delivery_scope="national")
    assert [(a["need_id"], a["quantity"], a["tier"]) for a in allocs] == \
        [(need["id"], 50, "national")]
    rows = w.admin.get_ok("/v1/feeds/stock", params={"region": "71",
                                                       "product": "hydroalcoholic-gel"})["rows"]
    assert rows[0]["offered_open"] == 0 and rows[0]["region"] == "71", rows
    refused = [line for line in d.log().splitlines()
               if ("status=503" in line and 'path="/readyz"' not in line) or "level=error" in line]
    assert refused == [], refused[:5]


def test_long_product_ids_and_large_numbers_in_the_csv_feed(tmp_path, impactd):
    long_ids = ["x" * 56 + "-gel", "y" * 56 + "-bot"]
    products = [{"id": long_ids[0], "name": "Long gel", "name_fr": "Gel long",
                 "category": "finished_good", "unit": "unit"},
                {"id": long_ids[1], "name": "Long bottle", "name_fr": "Flacon long",
                 "category": "packaging", "unit": "unit"}]
    d = impactd(env={"IMPACTD_CATALOG_DIR": str(_catalog(tmp_path, products=products))})
    w = World(d)
    w.manufacturer("11").offer(long_ids[0], 1_000_000_000)
    w.hospital("11").need(long_ids[0], 999_999_999, "stat")
    w.manufacturer("24").need(long_ids[1], 1_000_000_000, "asap")
    js = w.admin.get_ok("/v1/feeds/stock")["rows"]
    r = w.admin.api.get("/v1/feeds/stock", params={"format": "csv"})
    assert r.status_code == 200, r.text[:300]
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert len(rows) == len(js) == 18 * 21
    by_key = {(x["region"], x["product"]): x for x in js}
    for row in rows:
        want = by_key[(row["region"], row["product"])]
        for col in ("offered_open", "needed_open", "needed_open_stat", "needed_open_asap",
                    "allocated_in_flight", "shipped_in_flight", "received_total"):
            assert int(row[col]) == want[col], (row, want)
    gel = by_key[("11", long_ids[0])]
    assert (gel["allocated_in_flight"], gel["needed_open"], gel["offered_open"]) == \
        (999_999_999, 0, 1)
    assert by_key[("24", long_ids[1])]["needed_open_asap"] == 1_000_000_000


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()       # nothing listens there: every attempt is refused at once
    return port


def test_a_dead_letter_page_of_more_than_126(impactd):
    d = impactd(env={"IMPACTD_WEBHOOK_RETRY_SCHEDULE": "0s",
                     "IMPACTD_WEBHOOK_ALLOW_PRIVATE": "1"})
    w = World(d)
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    maker = w.manufacturer("11", webhook_url=url)
    hosp = w.hospital("11", webhook_url=url)
    maker.offer("hydroalcoholic-gel", 1000)
    answers = pipelined_posts(d, hosp.token, "/v1/needs",
                              [{"product": "hydroalcoholic-gel", "quantity": 1,
                                "urgency": "stat"}] * 70)
    assert all(s == 201 and len(b["allocations"]) == 1 for s, b in answers)
    deadline = time.monotonic() + 30 * h.SLOW
    page = []
    while time.monotonic() < deadline:
        page = w.admin.get_ok("/v1/admin/dead-letters", params={"limit": 500})["items"]
        if len(page) >= 140:
            break
        time.sleep(0.2)
    assert len(page) == 140, f"{len(page)} dead letters on one page of 500"
    body = w.admin.get_ok("/v1/admin/dead-letters", params={"limit": 500})
    assert body["next_cursor"] is None
    assert len({x["message_id"] for x in body["items"]}) == 140
