"""The ministry feeds, black box: GET /v1/feeds/stock and GET /v1/feeds/events (docs/feeds.md).

Workloads come from the matching property test (test_matching_property.Run: seeded random
offers, needs, PATCH, DELETE and allocation actions over two markets, the gel market with its
capacity product and ethanol-96, checked step by step against model.Model), followed by a
fixed tail that confirms, ships, receives and declines a few allocations.

- Stock: every row of the feed equals a brute-force recomputation from the offers, needs and
  allocations read back through the API as admin, all 18 regions x 19 products present (zero
  rows included); CSV (`?format=csv`, `Accept: text/csv`) carries the same numbers, RFC 4180
  with CRLF; ETag / If-None-Match -> 304; `content-signature` verifies with PyNaCl against
  GET /v1/keys; filters; roles; a regional ministry token; the cost claim (same rows and the
  same number of Redis reads with 10 or 500 open needs).
- Events: the model, subclassed here (EventModel), predicts every event the market scripts
  write, in order per market; paging with a small `limit` sees each exactly once, in
  (ms, seq, market) order; the cursor survives a daemon restart; a regional ministry token
  sees the events of its regions only; bad cursors are 422.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import math
from collections import Counter

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

import impactd_harness as h
from model import ACTIONS, Model, World, parse_ts, pipelined_posts
from test_matching_property import Run

GEL = "hydroalcoholic-gel"
GEL_CAP = "gel-production-capacity"
ETHANOL = "ethanol-96"
OPERATIONS = 60
CSV_HEADER = ["region", "product", "unit", "offered_open", "needed_open", "needed_open_stat",
              "needed_open_asap", "allocated_in_flight", "shipped_in_flight", "received_total",
              "coverage"]
COUNTS = CSV_HEADER[3:10]
REGIONS = [r["code"] for r in h.CATALOG_REGIONS]
PRODUCTS = [p["id"] for p in h.CATALOG_PRODUCTS]
UNITS = {p["id"]: p["unit"] for p in h.CATALOG_PRODUCTS}


# ------------------------------------------------------------------------------ markets

def _market_code(market_id: str) -> str:
    """docs/feeds.md: 4 base32 characters of BLAKE2b-64(market id); every id ends with it."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    d = hashlib.blake2b(market_id.encode(), digest_size=8).digest()
    v = d[0] << 16 | d[1] << 8 | d[2]
    return "".join(alphabet[(v >> (5 * i)) & 31] for i in range(4))


def _markets() -> list[str]:
    """Market ids in catalogue order (the order of the events merge at equal stream ids)."""
    out: list[str] = []
    for p in h.CATALOG_PRODUCTS:
        m = p["serves"] if p["category"] == "capacity" else p["id"]
        if m not in out:
            out.append(m)
    return out


MARKETS = _markets()
MARKET_OF_CODE = {_market_code(m): m for m in MARKETS}
MARKET_RANK = {_market_code(m): i for i, m in enumerate(MARKETS)}


def event_position(event_id: str) -> tuple[int, int, int]:
    ms, seq, code = event_id.split("-")
    assert code in MARKET_RANK, f"event id {event_id}: unknown market code"
    return int(ms), int(seq), MARKET_RANK[code]


# ------------------------------------------------------------------------------ expected events

class EventModel(Model):
    """model.Model that also lists, in order, the events the market scripts emit:
    (type, model id, market). One operation's events come in this order: the created /
    updated / withdrawn / cancelled / allocation.<status> event of the object acted on, then
    for each allocation made, allocation.proposed followed by offer.depleted when it emptied
    the offer; a receive that completes a need adds need.fulfilled."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, str]] = []
        self._lead: tuple[str, str] | None = None

    def _emit(self, etype: str, mid: str) -> None:
        obj = self.offers.get(mid) or self.needs.get(mid) or self.allocations.get(mid)
        market = obj.market if hasattr(obj, "market") else self.needs[obj.need_id].market
        self.events.append((etype, mid, market))

    def _flush(self) -> None:
        if self._lead:
            lead, self._lead = self._lead, None
            self._emit(*lead)

    def _next(self, prefix: str):
        mid, seq = super()._next(prefix)
        if prefix in ("o", "n"):
            # the object exists right after its id is drawn; matching comes next
            self._lead = ("offer.created" if prefix == "o" else "need.created", mid)
        return mid, seq

    def post_offer(self, pid, body):
        out = super().post_offer(pid, body)
        self._flush()
        return out

    def post_need(self, pid, body):
        out = super().post_need(pid, body)
        self._flush()
        return out

    def _match_offer(self, o):
        self._flush()
        return super()._match_offer(o)

    def _match_need(self, n):
        self._flush()
        return super()._match_need(n)

    def _allocate(self, n, o, tier):
        aid = super()._allocate(n, o, tier)
        self._emit("allocation.proposed", aid)
        if o.remaining == 0:
            self._emit("offer.depleted", o.id)
        return aid

    def _patch(self, kind, fn, pid, mid, body):
        self._lead = (f"{kind}.updated", mid)
        out = fn(pid, mid, body)
        if out.status == 200:
            self._flush()
        self._lead = None
        return out

    def patch_offer(self, pid, oid, body):
        return self._patch("offer", super().patch_offer, pid, oid, body)

    def patch_need(self, pid, nid, body):
        return self._patch("need", super().patch_need, pid, nid, body)

    def delete_offer(self, pid, oid):
        out = super().delete_offer(pid, oid)
        if out.status == 200:
            self._emit("offer.withdrawn", oid)
        return out

    def delete_need(self, pid, nid):
        out = super().delete_need(pid, nid)
        if out.status == 200:
            self._emit("need.cancelled", nid)
        return out

    def _release(self, a, status):
        self._emit(f"allocation.{status}", a.id)
        return super()._release(a, status)

    def _cancel(self, a):
        self._emit("allocation.cancelled", a.id)
        return super()._cancel(a)

    def _cancel_off_need(self, a):
        n = self.needs[a.need_id]
        before = n.status
        super()._cancel_off_need(a)
        if n.status != before and n.status in ("cancelled", "fulfilled"):
            self._emit(f"need.{n.status}", n.id)

    def _received(self, a, rq):
        self._emit("allocation.received", a.id)
        n = self.needs[a.need_id]
        before = n.status
        made = super()._received(a, rq)
        if n.status == "fulfilled" and before != "fulfilled":
            self._emit("need.fulfilled", n.id)
        return made

    def act(self, pid, aid, action, received=None):
        out = super().act(pid, aid, action, received)
        # decline, cancel, receive: their hooks above emit in the daemon's order
        if out.status == 200 and action in ("confirm", "ship"):
            self._emit(f"allocation.{ACTIONS[action][1]}", aid)
        return out


# ------------------------------------------------------------------------------ workloads

def drive(run: Run, mid: str, action: str) -> None:
    """One allocation action chosen by the test (Run.act picks at random); "receive-part":
    receive half of it (short_delivery)."""
    a = run.model.allocations[mid]
    body, received = None, None
    if action == "receive-part":
        action, received = "receive", a.quantity // 2
        body = {"quantity": received, "reason": "short_delivery"}
    side = ACTIONS[action][2]
    pid = a.offer_participant_id if side == "offer" else a.need_participant_id
    before = a.status
    out = run.model.act(pid, mid, action, received)
    run.log.append(f"tail: {action} {body or ''} {run.name(mid)} ({before}) -> {out.status} "
                   f"allocs {out.allocations}")
    r = run.clients[pid].act(run.m2d[mid], action, body)
    run.check_status(f"{action} {run.name(mid)}", r, out)
    if out.status == 200:
        run.compare("allocation", mid, r.json())
        if action in ("decline", "receive"):
            run.discover_allocations(f"{action} {run.name(mid)}", out.allocations,
                                     need_id=run.m2d[a.need_id])
        elif action == "cancel":
            run.discover_allocations(f"cancel {run.name(mid)}", out.allocations,
                                     offer_id=run.m2d[a.offer_id])


def workload(daemon: h.Daemon, seed: int, operations: int = OPERATIONS) -> Run:
    """Run's random workload on `daemon` (every answer checked against the model), then a
    tail so that each allocation status and close-out occurs: confirm+ship+receive,
    confirm+ship, confirm, decline, confirm+ship+receive in part, cancel, decline and cancel
    once confirmed, on the first eight proposed allocations; then an open capacity offer."""
    run = Run(World(daemon), seed)
    em = EventModel()
    em.participants = run.model.participants
    run.model = em
    for i in range(operations):
        run.log.append(f"#{i}")
        run.step()
    proposed = [m for m, a in run.model.allocations.items() if a.status == "proposed"]
    chains = [("confirm", "ship", "receive"), ("confirm", "ship"), ("confirm",), ("decline",),
              ("confirm", "ship", "receive-part"), ("cancel",), ("confirm", "decline"),
              ("confirm", "cancel")]
    for mid, chain in zip(proposed, chains):
        for action in chain:
            if run.model.allocations[mid].status in ACTIONS[action.split("-")[0]][0]:
                drive(run, mid, action)
    # an open capacity offer, so that the capacity product's rows are exercised whatever
    # the workload left (large enough to stay open after serving gel needs)
    run.post_offer_with(run.manufacturers[0], {"product": GEL_CAP, "quantity": 100000,
                                               "delivery_scope": "region"})
    return run


# ------------------------------------------------------------------------------ stock helpers

def fetch_objects(admin: h.Api) -> tuple[list[dict], list[dict], list[dict]]:
    def every(path: str) -> list[dict]:
        items, cursor = [], None
        for _ in range(10000):
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            r = admin.get(path, params=params)
            assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
            items.extend(r.json()["items"])
            cursor = r.json()["next_cursor"]
            if not cursor:
                return items
        raise AssertionError(f"{path}: pagination does not end")
    return every("/v1/offers"), every("/v1/needs"), every("/v1/allocations")


def brute_force_rows(offers: list[dict], needs: list[dict], allocations: list[dict],
                     regions=REGIONS, products=PRODUCTS) -> dict[tuple[str, str], dict]:
    """The stock feed's rows as the API contract defines them, from the objects themselves:
    offers under (offer region, offer product); needs, and allocations through their need,
    under (need region, need product)."""
    rows = {(r, p): dict.fromkeys(COUNTS, 0) for r in regions for p in products}
    need_by_id = {n["id"]: n for n in needs}

    def add(region: str, product: str, column: str, value: int) -> None:
        if (region, product) in rows:
            rows[(region, product)][column] += value

    for o in offers:
        if o["status"] == "open":
            add(o["region"], o["product"], "offered_open", o["remaining"])
    for n in needs:
        if n["status"] == "open":
            add(n["region"], n["product"], "needed_open", n["remaining"])
            if n["urgency"] in ("stat", "asap"):
                add(n["region"], n["product"], f"needed_open_{n['urgency']}", n["remaining"])
    column_of = {"proposed": "allocated_in_flight", "confirmed": "allocated_in_flight",
                 "shipped": "shipped_in_flight", "received": "received_total"}
    for a in allocations:
        column = column_of.get(a["status"])
        if column:
            n = need_by_id[a["need_id"]]
            # received: what arrived (a shortfall went back to the need)
            q = a["received_quantity"] if a["status"] == "received" else a["quantity"]
            add(n["region"], n["product"], column, q)
    for row in rows.values():
        row["coverage"] = row["offered_open"] / row["needed_open"] if row["needed_open"] else None
    return rows


def json_rows(resp) -> dict[tuple[str, str], dict]:
    assert resp.status_code == 200, f"{resp.status_code} {resp.text[:300]}"
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"generated_at", "rows"}, set(body)
    assert h.RFC3339_UTC.match(body["generated_at"]), body["generated_at"]
    out: dict[tuple[str, str], dict] = {}
    for row in body["rows"]:
        assert set(row) == set(CSV_HEADER), sorted(row)
        key = (row["region"], row["product"])
        assert key not in out, f"row {key} twice"
        assert row["unit"] == UNITS[row["product"]], row
        for c in COUNTS:
            assert isinstance(row[c], int) and not isinstance(row[c], bool) and row[c] >= 0, row
        assert row["coverage"] is None or isinstance(row["coverage"], (int, float)), row
        out[key] = {k: row[k] for k in COUNTS + ["coverage"]}
    return out


def csv_rows(resp) -> dict[tuple[str, str], dict]:
    """Parses a CSV answer strictly: header, CRLF after every record, no bare CR or LF."""
    assert resp.status_code == 200, f"{resp.status_code} {resp.text[:300]}"
    assert resp.headers["Content-Type"].split(";")[0].strip() == "text/csv", resp.headers
    raw = resp.content
    assert raw.endswith(b"\r\n"), raw[-20:]
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b""), \
        "CSV has a line ending other than CRLF"
    records = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), strict=True))
    assert records[0] == CSV_HEADER, records[0]
    assert raw.count(b"\r\n") == len(records), "a record spans lines or a line is empty"
    out: dict[tuple[str, str], dict] = {}
    for rec in records[1:]:
        assert len(rec) == len(CSV_HEADER), rec
        row = dict(zip(CSV_HEADER, rec))
        key = (row["region"], row["product"])
        assert key not in out, f"row {key} twice"
        assert row["unit"] == UNITS[row["product"]], row
        vals = {c: int(row[c]) for c in COUNTS}
        vals["coverage"] = float(row["coverage"]) if row["coverage"] != "" else None
        out[key] = vals
    return out


def same_number(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def rows_diff(have: dict, want: dict) -> dict:
    """{(region, product): {column: (feed, expected)}} for every difference."""
    out = {}
    for key in sorted(set(have) | set(want)):
        if key not in have or key not in want:
            out[key] = ("missing from the feed" if key not in have else "unexpected row")
            continue
        d = {c: (have[key][c], want[key][c]) for c in COUNTS if have[key][c] != want[key][c]}
        if not same_number(have[key]["coverage"], want[key]["coverage"]):
            d["coverage"] = (have[key]["coverage"], want[key]["coverage"])
        if d:
            out[key] = d
    return out


def assert_rows(have: dict, want: dict, what: str) -> None:
    diff = rows_diff(have, want)
    assert not diff, f"{what}: rows differ (feed, expected):\n" + "\n".join(
        f"  {k}: {v}" for k, v in list(diff.items())[:40])


def stock(api: h.Api, **params) -> "h.requests.Response":
    return api.get("/v1/feeds/stock", params=params or None)


# ------------------------------------------------------------------------------ event helpers

def page_events(api: h.Api, after: str | None = None, limit: int = 7,
                max_pages: int = 5000) -> list[dict]:
    """Follows next_cursor from `after` until it is null; checks each page's shape."""
    items: list[dict] = []
    for _ in range(max_pages):
        params: dict = {"limit": limit}
        if after is not None:
            params["after"] = after
        r = api.get("/v1/feeds/events", params=params)
        assert r.status_code == 200, f"GET /v1/feeds/events {params}: {r.status_code} {r.text[:300]}"
        body = r.json()
        assert set(body) == {"items", "next_cursor"}, set(body)
        page = body["items"]
        assert len(page) <= limit, f"{len(page)} items for limit={limit}"
        items.extend(page)
        if body["next_cursor"] is None:
            return items
        assert page, f"an empty page with next_cursor {body['next_cursor']!r}"
        assert body["next_cursor"] == page[-1]["id"], "next_cursor is not the last item's id"
        after = body["next_cursor"]
    raise AssertionError("events paging does not end")


def wait_events(api: h.Api, count: int, after: str | None = None, seconds: float = 10.0) -> list[dict]:
    """Polls (limit 500) until at least `count` events are listed after `after` (a change is
    listed once its request has been answered, so this mostly returns at once)."""
    return h.poll_until(lambda: (lambda got: got if len(got) >= count else None)(
        page_events(api, after, limit=500)), seconds, f"{count} events to be listed", interval=0.1)


def check_event_shapes(items: list[dict]) -> None:
    for it in items:
        assert set(it) == {"id", "type", "kind", "timestamp", "data"}, sorted(it)
        assert it["kind"] in ("offer", "need", "allocation"), it["kind"]
        assert it["type"].split(".")[0] == it["kind"], (it["type"], it["kind"])
        assert h.RFC3339_UTC.match(it["timestamp"]), it["timestamp"]
        ms, _, _ = event_position(it["id"])
        stamp = parse_ts(it["timestamp"])
        assert round(stamp.timestamp() * 1000) == ms, f"event {it['id']}: timestamp {it['timestamp']}"
        code = it["id"].rsplit("-", 1)[1]
        assert it["data"]["id"].endswith(code), f"event {it['id']} of market {code}: data {it['data']['id']}"
        assert it["data"]["id"].startswith({"offer": "off_", "need": "ned_", "allocation": "alc_"}[it["kind"]])
        assert MARKET_OF_CODE[code] == it["data"]["market"], (it["id"], it["data"]["market"])


def check_order(items: list[dict]) -> None:
    positions = [event_position(it["id"]) for it in items]
    for i in range(1, len(positions)):
        assert positions[i - 1] < positions[i], (
            f"events not strictly increasing in (ms, seq, market) order at #{i}: "
            f"{items[i - 1]['id']} then {items[i]['id']}")


def expected_by_market(run: Run, events: list[tuple[str, str, str]]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for etype, mid, market in events:
        out.setdefault(market, []).append((etype, run.m2d[mid]))
    return out


def actual_by_market(items: list[dict]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for it in items:
        out.setdefault(MARKET_OF_CODE[it["id"].rsplit("-", 1)[1]], []).append((it["type"], it["data"]["id"]))
    return out


def assert_events_match(run: Run, items: list[dict], events: list[tuple[str, str, str]], what: str) -> None:
    want, have = expected_by_market(run, events), actual_by_market(items)
    for market in sorted(set(want) | set(have)):
        w, g = want.get(market, []), have.get(market, [])
        if w != g:
            i = next((k for k in range(min(len(w), len(g))) if w[k] != g[k]), min(len(w), len(g)))
            run.fail(f"{what}: market {market}: {len(g)} events listed, {len(w)} expected; first "
                     f"difference at #{i}: listed {g[i:i + 3]}, expected {w[i:i + 3]}")


def region_of_event(it: dict) -> set[str]:
    d = it["data"]
    if it["kind"] == "allocation":
        return {d["need_region"], d["offer_region"]}
    return {d["region"]}


# ------------------------------------------------------------------------------ signature

def verify_signature(resp, keys: dict[str, bytes]) -> None:
    sig_header = resp.headers.get("content-signature")
    kid = resp.headers.get("content-signature-kid")
    assert sig_header and sig_header.startswith("v1a,"), resp.headers
    assert kid in keys, f"content-signature-kid {kid!r} not among GET /v1/keys {sorted(keys)}"
    sig = base64.b64decode(sig_header[4:], validate=True)
    vk = VerifyKey(keys[kid])
    vk.verify(resp.content, sig)      # raises BadSignatureError when it does not verify
    tampered = bytearray(resp.content)
    i = len(tampered) // 2
    tampered[i] = tampered[i] ^ 0x01
    with pytest.raises(BadSignatureError):
        vk.verify(bytes(tampered), sig)


def platform_keys(daemon: h.Daemon) -> dict[str, bytes]:
    r = h.api(daemon).get("/v1/keys")
    assert r.status_code == 200, r.text
    return {k["kid"]: base64.b64decode(k["public_key"]) for k in r.json()["keys"] if k["alg"] == "Ed25519"}


# ============================================================================== stock feed

@pytest.mark.parametrize("seed", [11, 22, 33])
def test_stock_feed_equals_brute_force_recomputation(impactd, redis_server, seed):
    d = impactd(redis=redis_server)
    run = workload(d, seed)
    admin = d.admin()
    offers, needs, allocs = fetch_objects(admin)
    statuses = {a["status"] for a in allocs}
    assert len(allocs) >= 3 and {"confirmed", "shipped", "received"} <= statuses, (
        f"seed {seed}: the workload does not exercise the allocation columns: {statuses}")
    want = brute_force_rows(offers, needs, allocs)
    assert len(want) == 18 * 19

    resp = stock(admin)
    have = json_rows(resp)
    order = [(r["region"], r["product"]) for r in resp.json()["rows"]]
    assert order == [(r, p) for r in REGIONS for p in PRODUCTS], "rows not in catalogue order"
    assert_rows(have, want, f"seed {seed}: GET /v1/feeds/stock")
    assert any(v["offered_open"] for v in have.values()) and any(v["needed_open"] for v in have.values())
    assert any(v["offered_open"] for (r, p), v in have.items() if p == GEL_CAP), \
        "no open capacity offer: the capacity product is not exercised"

    # the same numbers in CSV, asked for both ways (the CSV carries no timestamp: same bytes)
    by_query = stock(admin, format="csv")
    assert_rows(csv_rows(by_query), want, f"seed {seed}: ?format=csv")
    by_accept = admin.get("/v1/feeds/stock", headers={"Accept": "text/csv"})
    assert_rows(csv_rows(by_accept), want, f"seed {seed}: Accept: text/csv")
    assert by_accept.content == by_query.content

    # filters select rows; the numbers do not change
    for params in ({"region": "32"}, {"product": GEL}, {"region": "11", "product": ETHANOL},
                   {"region": "04", "product": GEL_CAP}):
        sub = json_rows(stock(admin, **params))
        expect = {k: v for k, v in want.items()
                  if k[0] == params.get("region", k[0]) and k[1] == params.get("product", k[1])}
        assert_rows(sub, expect, f"seed {seed}: ?{params}")
        assert_rows(csv_rows(stock(admin, format="csv", **params)), expect, f"seed {seed}: csv ?{params}")
    run.log.append("stock feed checked")


def test_csv_format(module_daemon, make_participant):
    m = make_participant("manufacturer", "24")
    hosp = make_participant("hospital", "24")
    assert h.api(module_daemon, m.token).post("/v1/offers", json={"product": "hand-rub-solution",
                                                                 "quantity": 9}).status_code == 201
    assert h.api(module_daemon, hosp.token).post("/v1/needs", json={
        "product": "hand-rub-solution", "quantity": 30, "urgency": "asap", "region": "27"}).status_code == 201
    admin = module_daemon.admin()
    resp = stock(admin, format="csv")
    assert resp.content.startswith(",".join(CSV_HEADER).encode() + b"\r\n")
    rows = csv_rows(resp)
    assert len(rows) == 18 * 19
    assert_rows(rows, json_rows(stock(admin)), "CSV vs JSON")
    # coverage: empty when nothing is needed, a plain decimal otherwise
    text = resp.content.decode()
    assert any(line.endswith(",") for line in text.split("\r\n") if line), "no empty coverage"
    # a client preferring JSON gets JSON; ?format wins over Accept; unknown format is 422
    assert stock(admin).headers["Content-Type"].startswith("application/json")
    r = admin.get("/v1/feeds/stock", headers={"Accept": "application/json, text/csv;q=0.5"})
    assert r.headers["Content-Type"].startswith("application/json")
    r = admin.get("/v1/feeds/stock", params={"format": "json"}, headers={"Accept": "text/csv"})
    assert r.headers["Content-Type"].startswith("application/json")
    h.assert_problem(stock(admin, format="xml"), 422, "format")


def test_etag_and_if_none_match(module_daemon, make_participant):
    admin = module_daemon.admin()
    m = make_participant("manufacturer", "52")
    for params in ({}, {"format": "csv"}, {"region": "52"}):
        first = stock(admin, **params)
        etag = first.headers.get("ETag")
        assert first.status_code == 200 and etag, first.headers
        assert "private" in first.headers.get("Cache-Control", ""), \
            f"a per-token feed must not be stored by shared caches: {first.headers.get('Cache-Control')}"
        again = stock(admin, **params)
        assert again.headers["ETag"] == etag, "ETag changed without any change of the data"

        r = admin.get("/v1/feeds/stock", params=params or None, headers={"If-None-Match": etag})
        assert r.status_code == 304, f"{params}: If-None-Match {etag}: {r.status_code}"
        assert r.content == b"", "a 304 has no body"
        assert r.headers.get("ETag") == etag
        r = admin.get("/v1/feeds/stock", params=params or None, headers={"If-None-Match": 'W/"0000"'})
        assert r.status_code == 200 and r.content, "a stale ETag must get the body"

        # a change: the ETag differs, and the new one gets 304 in turn
        assert h.api(module_daemon, m.token).post("/v1/offers", json={
            "product": "glycerol-98", "quantity": 7}).status_code == 201
        changed = stock(admin, **params)
        assert changed.status_code == 200
        assert changed.headers["ETag"] != etag, f"{params}: ETag unchanged after an offer was posted"
        r = admin.get("/v1/feeds/stock", params=params or None, headers={"If-None-Match": etag})
        assert r.status_code == 200, "the old ETag still answered 304 after a change"
        r = admin.get("/v1/feeds/stock", params=params or None,
                      headers={"If-None-Match": changed.headers["ETag"]})
        assert r.status_code == 304 and r.content == b""


def test_content_signature_verifies(module_daemon, make_participant):
    m = make_participant("manufacturer", "75")
    assert h.api(module_daemon, m.token).post("/v1/offers", json={
        "product": "bottle-500ml", "quantity": 1234}).status_code == 201
    keys = platform_keys(module_daemon)
    admin = module_daemon.admin()
    for resp in (stock(admin), stock(admin, format="csv"),
                 admin.get("/v1/feeds/stock", headers={"Accept": "text/csv"}),
                 stock(admin, region="75", product="bottle-500ml")):
        assert resp.status_code == 200
        verify_signature(resp, keys)


def test_filters_and_roles(module_daemon, make_participant):
    admin = module_daemon.admin()
    all_rows = json_rows(stock(admin))
    region = json_rows(stock(admin, region="93"))
    assert set(region) == {("93", p) for p in PRODUCTS}
    assert_rows(region, {k: v for k, v in all_rows.items() if k[0] == "93"}, "?region=93")
    product = json_rows(stock(admin, product=ETHANOL))
    assert set(product) == {(r, ETHANOL) for r in REGIONS}
    assert set(json_rows(stock(admin, region="94", product="cap"))) == {("94", "cap")}

    h.assert_problem(stock(admin, region="99"), 422, "region")
    h.assert_problem(stock(admin, product="unobtainium"), 422, "product")
    h.assert_problem(stock(admin, region="99", product="unobtainium"), 422, "product")

    ministry = make_participant("ministry", None)
    assert json_rows(stock(h.api(module_daemon, ministry.token))).keys() == all_rows.keys()
    assert h.api(module_daemon, ministry.token).get("/v1/feeds/events", params={"limit": 1}).status_code == 200
    for role in ("hospital", "manufacturer"):
        who = make_participant(role, "11")
        for path in ("/v1/feeds/stock", "/v1/feeds/events"):
            h.assert_problem(h.api(module_daemon, who.token).get(path), 403)
    for path in ("/v1/feeds/stock", "/v1/feeds/events"):
        h.assert_problem(h.api(module_daemon).get(path), 401)
        h.assert_problem(h.api(module_daemon, h.mutate_token(ministry.token)).get(path), 401)


def regional_setup(impactd, redis_server):
    d = impactd(redis=redis_server)
    run = workload(d, 55)
    agency = h.create_participant(d, "ministry", None, regions=["32"])
    assert agency.participant.get("regions") == ["32"], agency.participant
    return d, run, d.admin(), h.api(d, agency.token)


def test_regional_ministry_stock_feed(impactd, redis_server):
    """A token of a regional health agency (regions ["32"]): region 32 rows only, the same
    numbers as the national feed; another region is 403."""
    d, run, admin, regional = regional_setup(impactd, redis_server)
    everything = json_rows(stock(admin))
    mine = json_rows(stock(regional))
    assert set(mine) == {("32", p) for p in PRODUCTS}, sorted({k[0] for k in mine})
    assert_rows(mine, {k: v for k, v in everything.items() if k[0] == "32"}, "regional stock feed")
    assert any(any(v[c] for c in COUNTS) for v in mine.values()), "region 32 saw no activity"
    assert_rows(csv_rows(stock(regional, format="csv")), mine, "regional CSV")
    assert set(json_rows(stock(regional, region="32", product=GEL))) == {("32", GEL)}
    h.assert_problem(stock(regional, region="11"), 403)
    h.assert_problem(stock(regional, region="11", format="csv"), 403)
    h.assert_problem(stock(regional, region="99"), 422, "region")
    verify_signature(stock(regional), platform_keys(d))


def test_regional_ministry_events(impactd, redis_server):
    """The same agency sees only the events of its region (an offer or need located in 32,
    an allocation whose need or offer is in 32), in order, whatever the page size."""
    d, run, admin, regional = regional_setup(impactd, redis_server)
    events = wait_events(admin, len(run.model.events))
    assert_events_match(run, events, run.model.events, "admin events (seed 55)")
    want = [it for it in events if "32" in region_of_event(it)]
    assert 0 < len(want) < len(events), (len(want), len(events))
    got_all = page_events(regional, limit=500)
    assert [it["id"] for it in got_all] == [it["id"] for it in want], (
        f"regional events (limit 500): {len(got_all)} listed, {len(want)} expected; first "
        f"unexpected: {[it['id'] for it in got_all if it not in want][:3]}, first missing: "
        f"{[it['id'] for it in want if it not in got_all][:3]}")
    got = page_events(regional, limit=7)
    assert [it["id"] for it in got] == [it["id"] for it in want], (
        f"regional events paged by 7: {len(got)} listed, {len(want)} expected (a page whose "
        f"window holds only events of other regions must not end the feed); last listed "
        f"{got[-1]['id'] if got else None}, next expected "
        f"{want[len(got)]['id'] if len(got) < len(want) else None}")


def test_stock_cost_does_not_depend_on_open_needs(impactd, redis_server):
    """Same rows as the brute force, and the same number of Redis reads per stock request
    (one HGETALL per market, none per object), with 10 and with 500 open needs."""
    d = impactd(redis=redis_server)
    admin = d.admin()
    hosp = h.create_participant(d, "hospital", "28")

    def post_needs(n: int, start: int) -> None:
        bodies = [{"product": GEL if i % 2 else "hand-rub-solution", "quantity": 1 + i % 17,
                   "urgency": ("stat", "asap", "urgent", "routine")[i % 4],
                   "region": ("28", "44", "53")[i % 3]} for i in range(start, start + n)]
        for status, body in pipelined_posts(d, hosp.token, "/v1/needs", bodies):
            assert status == 201, body

    def hgetall_calls() -> int:
        info = redis_server.cmd("INFO", "commandstats").decode()
        for line in info.splitlines():
            if line.startswith("cmdstat_hgetall:"):
                return int(line.split("calls=")[1].split(",")[0])
        return 0

    def reads_per_request() -> int:
        counts = []
        for _ in range(3):
            before = hgetall_calls()
            assert stock(admin).status_code == 200
            counts.append(hgetall_calls() - before)
        return min(counts)

    results = []
    for count, start in ((10, 0), (490, 10)):
        post_needs(count, start)
        offers, needs, allocs = fetch_objects(admin)
        assert len([n for n in needs if n["status"] == "open"]) == start + count
        assert_rows(json_rows(stock(admin)), brute_force_rows(offers, needs, allocs),
                    f"{start + count} open needs")
        results.append(reads_per_request())
    assert results[0] == results[1] <= len(MARKETS), (
        f"HGETALL calls per stock request: {results[0]} with 10 open needs, {results[1]} with 500 "
        f"({len(MARKETS)} markets)")


# ============================================================================== events feed

def test_events_feed_pages_every_event_once_across_a_restart(impactd, redis_server):
    d = impactd(redis=redis_server)
    run = workload(d, 44)
    admin = d.admin()
    expected = list(run.model.events)
    assert sum(1 for e in expected if e[0].endswith(".created")) == \
        len(run.model.offers) + len(run.model.needs)

    polled = wait_events(admin, len(expected))
    check_event_shapes(polled)
    items = page_events(admin, limit=7)
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids)), "an event listed twice"
    assert ids == [it["id"] for it in polled], "paging by 7 and by 500 disagree"
    check_order(items)
    assert len(items) == len(expected), f"{len(items)} events listed, {len(expected)} expected"
    assert_events_match(run, items, expected, "events feed (seed 44)")
    types = sorted(Counter(it["type"] for it in items).items())
    print(f"seed 44: {len(items)} events over {len(set(actual_by_market(items)))} markets: {types}")
    # paging from the middle gives the tail; the default limit answers too
    mid = len(items) // 2
    assert [it["id"] for it in page_events(admin, after=ids[mid], limit=11)] == ids[mid + 1:]
    r = admin.get("/v1/feeds/events")
    assert r.status_code == 200 and [it["id"] for it in r.json()["items"]] == ids[:len(r.json()["items"])]
    assert len(r.json()["items"]) == min(len(ids), 100)

    # bad cursors and limits
    for bad in ("garbage", "123", "1-2", "1-2-ZZZZ", f"{ids[0].rsplit('-', 1)[0]}-zzzzz",
                "x-1-" + ids[0][-4:]):
        h.assert_problem(admin.get("/v1/feeds/events", params={"after": bad}), 422, "after")
    for bad in ("0", "501", "ten", "-1"):
        h.assert_problem(admin.get("/v1/feeds/events", params={"limit": bad}), 422, "limit")

    # restart: a new daemon on the same Redis continues from the last id given out
    last = ids[-1]
    assert d.stop() == 0
    d2 = impactd(redis=redis_server)
    admin2 = d2.admin()
    assert page_events(admin2, after=last) == [], "events listed again after a restart"
    for c in run.clients.values():
        c.api = h.api(d2, c.token)
    run.w = World(d2)
    done = len(run.model.events)
    run.post_offer()
    run.post_need()
    # a change is listed as soon as its request has been answered (settled on Redis's clock)
    fresh = page_events(admin2, after=last, limit=500)
    assert_events_match(run, fresh, run.model.events[done:], "events read right after their changes")
    for i in range(15):
        run.log.append(f"after restart #{i}")
        run.step()
    new = run.model.events[done:]
    assert len(new) >= 2
    wait_events(admin2, len(new), after=last)
    more = page_events(admin2, after=last, limit=7)
    check_event_shapes(more)
    check_order([{"id": last}] + more)
    assert not set(it["id"] for it in more) & set(ids), "an event listed before the restart came again"
    assert_events_match(run, more, new, "events after the restart")
    # the whole stream, from the start, is still one ordered list without repeats
    whole = page_events(admin2, limit=500)
    assert [it["id"] for it in whole] == ids + [it["id"] for it in more]
    h.assert_problem(admin2.get("/v1/feeds/events", params={"after": "garbage"}), 422, "after")


def test_events_cursor_older_than_retention_is_410(impactd, redis_server):
    """IMPACTD_EVENTS_RETENTION=1000 (the least allowed): after ~1300 more events the stream
    is trimmed (XADD MAXLEN ~ drops whole stream nodes); a cursor pointing before what is
    kept answers 410, a cursor within what is kept and no cursor answer 200."""
    d = impactd(redis=redis_server, env={"IMPACTD_EVENTS_RETENTION": "1000"})
    admin = d.admin()
    hosp = h.create_participant(d, "hospital", "44")

    def post_needs(n: int) -> None:
        bodies = [{"product": GEL, "quantity": 1 + i % 50, "urgency": "routine"} for i in range(n)]
        for status, body in pipelined_posts(d, hosp.token, "/v1/needs", bodies):
            assert status == 201, body

    post_needs(3)
    old = wait_events(admin, 3)
    old_cursor = old[0]["id"]
    assert page_events(admin, after=old_cursor, limit=500)[:2] == old[1:3]
    post_needs(1300)
    kept = wait_events(admin, 1000)
    assert len(kept) < 1303, "nothing was trimmed: the test does not test anything"
    assert event_position(kept[0]["id"]) > event_position(old_cursor)
    h.assert_problem(admin.get("/v1/feeds/events", params={"after": old_cursor}), 410)
    r = admin.get("/v1/feeds/events", params={"after": kept[0]["id"], "limit": 5})
    assert r.status_code == 200 and [it["id"] for it in r.json()["items"]] == \
        [it["id"] for it in kept[1:6]]
