"""Reference model of docs/matching.md (offers, needs, matching, allocations, aggregates).

A plain-Python, deliberately naive restatement of the rule book, used by the matching tests to
predict what impactd must answer. It is fed the same operations, in the same order, as the
daemon; "age" is the order in which objects were created in the model.

- `Catalog` reads config/products.json and config/regions.json: markets (a capacity product
  serves the finished good named by its `serves`), categories, neighbours.
- `Model` holds participants, offers, needs and allocations, and implements every operation
  of the rule book: post (with matching), PATCH (quantity up re-matches, down below what is
  taken is 409), DELETE (withdraw / cancel), the allocation actions (confirm, decline, ship,
  receive), lapse and expiry, and the per region x product aggregates of the stock feed.
  Each operation returns an `Outcome(status, id, allocations)`, `allocations` listing the ids
  of the allocations made by that operation, in the order they were made.

Model ids are local ("o1", "n1", "a1"); the tests keep the mapping to the daemon's ids.

The bottom of this file also holds small helpers shared by the matching test modules
(timestamps, and `Client`, a thin layer over impactd_harness.Api).

Choices where docs/matching.md leaves room (stated here so that a disagreement with the daemon
can be judged):
- Matching is "pick the best candidate, allocate, look again" until the driving object's
  remaining is 0 or no candidate is left; candidates are re-evaluated at every step (so with
  a `min_lot`, a need skipped earlier can become a candidate once the offer's remaining has
  dropped to what the need can take as the offer's last units).
- An allocation's `urgency` is the need's urgency when the allocation was made.
- PATCH lowering a quantity to exactly what is taken leaves remaining 0: an offer becomes
  `depleted`, a need `allocated`. (The matching tests avoid relying on this corner.)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

URGENCY_RANK = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
TIER_RANK = {"region": 0, "neighbours": 1, "national": 2}
SCOPES = ("region", "neighbours", "national")
MAX_QUANTITY = 1_000_000_000

# Allocation lifecycle: action -> (from, to, side allowed to act).
# action -> (statuses it starts from, status it leads to, the side that takes it)
ACTIONS = {
    "confirm": (("proposed",), "confirmed", "offer"),
    "decline": (("proposed", "confirmed"), "declined", "offer"),
    "ship": (("confirmed",), "shipped", "offer"),
    "receive": (("shipped",), "received", "need"),
    "cancel": (("proposed", "confirmed"), "cancelled", "need"),
}
TAKEN = ("proposed", "confirmed", "shipped", "received")   # counted in `allocated`
RELEASED = ("declined", "lapsed")                           # counted in the offer's `released`


# ------------------------------------------------------------------------------ time helpers

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    """RFC 3339 UTC, second precision: 2031-01-02T03:04:05Z."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(s: str | None) -> datetime | None:
    if s is None:
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc)


def at(day: int, hour: int = 0) -> str:
    """A fixed, far-future instant (so that no deadline passes during a test run):
    day 1 is 2031-01-01. Later `day` = later instant."""
    return iso(datetime(2031, 1, 1, tzinfo=timezone.utc) + timedelta(days=day - 1, hours=hour))


# ------------------------------------------------------------------------------ catalogue

class Catalog:
    def __init__(self, config_dir: Path = REPO / "config"):
        with open(config_dir / "products.json", encoding="utf-8") as f:
            products = json.load(f)["products"]
        with open(config_dir / "regions.json", encoding="utf-8") as f:
            regions = json.load(f)["regions"]
        self.products = {p["id"]: p for p in products}
        self.regions = {r["code"]: r for r in regions}
        self.neighbours = {r["code"]: set(r["neighbours"]) for r in regions}

    def category(self, product: str) -> str:
        return self.products[product]["category"]

    def market(self, product: str) -> str:
        p = self.products[product]
        return p["serves"] if p["category"] == "capacity" else product

    def tier(self, offer_region: str, scope: str, need_region: str) -> str | None:
        """The tier in which an offer (region, delivery_scope) reaches a need's region, or None."""
        if offer_region == need_region:
            return "region"
        if need_region in self.neighbours[offer_region]:
            return "neighbours" if scope in ("neighbours", "national") else None
        return "national" if scope == "national" else None


# ------------------------------------------------------------------------------ objects

@dataclass
class Participant:
    id: str
    role: str
    region: str | None


@dataclass
class Offer:
    id: str
    seq: int
    participant_id: str
    product: str
    market: str
    quantity: int
    region: str
    ready_at: datetime
    ready_at_given: bool
    expires_at: datetime | None
    delivery_scope: str
    min_lot: int | None
    remaining: int = 0
    allocated: int = 0
    released: int = 0
    status: str = "open"


@dataclass
class Need:
    id: str
    seq: int
    participant_id: str
    product: str
    market: str
    quantity: int
    urgency: str
    needed_by: datetime | None
    expires_at: datetime | None
    region: str
    remaining: int = 0
    allocated: int = 0
    received: int = 0
    status: str = "open"


@dataclass
class Allocation:
    id: str
    seq: int
    need_id: str
    offer_id: str
    product: str
    offer_product: str
    quantity: int
    tier: str
    urgency: str
    need_participant_id: str
    offer_participant_id: str
    need_region: str
    offer_region: str
    status: str = "proposed"
    received_quantity: int | None = None


@dataclass
class Outcome:
    status: int
    id: str | None = None
    allocations: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ the model

class Model:
    def __init__(self, catalog: Catalog | None = None, clock: Callable[[], datetime] = utcnow):
        self.catalog = catalog or Catalog()
        self.clock = clock
        self.participants: dict[str, Participant] = {}
        self.offers: dict[str, Offer] = {}
        self.needs: dict[str, Need] = {}
        self.allocations: dict[str, Allocation] = {}
        self.excluded: set[tuple[str, str]] = set()   # (need id, offer id) after decline/lapse
        self._seq = 0

    def _next(self, prefix: str) -> tuple[str, int]:
        self._seq += 1
        return f"{prefix}{self._seq}", self._seq

    # -- participants
    def add_participant(self, pid: str, role: str, region: str | None) -> None:
        self.participants[pid] = Participant(pid, role, region)

    # -- creation
    def post_offer(self, pid: str, body: dict[str, Any]) -> Outcome:
        who = self.participants[pid]
        if who.role != "manufacturer":
            return Outcome(403)
        product = body["product"]
        if product not in self.catalog.products:
            return Outcome(422)
        now = self.clock()
        oid, seq = self._next("o")
        ready = parse_ts(body.get("ready_at"))
        o = Offer(id=oid, seq=seq, participant_id=pid, product=product,
                  market=self.catalog.market(product), quantity=body["quantity"],
                  region=body.get("region") or who.region, ready_at=ready or now,
                  ready_at_given=ready is not None, expires_at=parse_ts(body.get("expires_at")),
                  delivery_scope=body.get("delivery_scope", "neighbours"),
                  min_lot=body.get("min_lot"))
        o.remaining = o.quantity
        self.offers[oid] = o
        made = self._match_offer(o)
        return Outcome(201, oid, made)

    def need_allowed(self, role: str, product: str) -> int | None:
        """None when `role` may need `product`, else the status impactd must answer."""
        if role not in ("hospital", "manufacturer"):
            return 403
        if product not in self.catalog.products:
            return 422
        cat = self.catalog.category(product)
        if role == "hospital" and cat != "finished_good":
            return 422
        if role == "manufacturer" and cat not in ("raw_material", "packaging"):
            return 422
        return None

    def post_need(self, pid: str, body: dict[str, Any]) -> Outcome:
        who = self.participants[pid]
        refused = self.need_allowed(who.role, body["product"])
        if refused:
            return Outcome(refused)
        nid, seq = self._next("n")
        product = body["product"]
        n = Need(id=nid, seq=seq, participant_id=pid, product=product,
                 market=self.catalog.market(product), quantity=body["quantity"],
                 urgency=body["urgency"], needed_by=parse_ts(body.get("needed_by")),
                 expires_at=parse_ts(body.get("expires_at")), region=body.get("region") or who.region)
        n.remaining = n.quantity
        self.needs[nid] = n
        made = self._match_need(n)
        return Outcome(201, nid, made)

    # -- candidates and order
    def _expired(self, expires_at: datetime | None) -> bool:
        return expires_at is not None and expires_at <= self.clock()

    def candidate_tier(self, o: Offer, n: Need) -> str | None:
        """The tier in which O can serve N now, or None when it cannot (docs/matching.md,
        "Candidates")."""
        if o.market != n.market:
            return None
        if o.status != "open" or o.remaining <= 0 or n.status != "open" or n.remaining <= 0:
            return None
        if n.needed_by is not None and (o.ready_at > n.needed_by or n.needed_by <= self.clock()):
            return None
        if self._expired(o.expires_at) or self._expired(n.expires_at):
            return None
        if (n.id, o.id) in self.excluded:
            return None
        if o.participant_id == n.participant_id:
            return None
        tier = self.catalog.tier(o.region, o.delivery_scope, n.region)
        if tier is None:
            return None
        q = min(o.remaining, n.remaining)
        if o.min_lot is not None and not (q >= o.min_lot or q == o.remaining):
            return None
        return tier

    @staticmethod
    def need_driven_key(tier: str, o: Offer) -> tuple:
        return (TIER_RANK[tier], o.ready_at, o.seq)

    @staticmethod
    def offer_driven_key(tier: str, n: Need) -> tuple:
        nb = (1, datetime.max.replace(tzinfo=timezone.utc)) if n.needed_by is None else (0, n.needed_by)
        return (TIER_RANK[tier], URGENCY_RANK[n.urgency], nb, n.seq)

    def _match_need(self, n: Need) -> list[str]:
        made = []
        while n.remaining > 0:
            best = None
            for o in self.offers.values():
                tier = self.candidate_tier(o, n)
                if tier is not None:
                    key = self.need_driven_key(tier, o)
                    if best is None or key < best[0]:
                        best = (key, o, tier)
            if best is None:
                break
            made.append(self._allocate(n, best[1], best[2]))
        return made

    def _match_offer(self, o: Offer) -> list[str]:
        made = []
        while o.remaining > 0:
            best = None
            for n in self.needs.values():
                tier = self.candidate_tier(o, n)
                if tier is not None:
                    key = self.offer_driven_key(tier, n)
                    if best is None or key < best[0]:
                        best = (key, n, tier)
            if best is None:
                break
            made.append(self._allocate(best[1], o, best[2]))
        return made

    def _allocate(self, n: Need, o: Offer, tier: str) -> str:
        q = min(o.remaining, n.remaining)
        aid, seq = self._next("a")
        self.allocations[aid] = Allocation(
            id=aid, seq=seq, need_id=n.id, offer_id=o.id, product=n.product,
            offer_product=o.product, quantity=q, tier=tier, urgency=n.urgency,
            need_participant_id=n.participant_id, offer_participant_id=o.participant_id,
            need_region=n.region, offer_region=o.region)
        o.remaining -= q
        o.allocated += q
        n.remaining -= q
        n.allocated += q
        if o.remaining == 0:
            o.status = "depleted"
        if n.remaining == 0:
            n.status = "allocated"
        return aid

    # -- PATCH
    def patch_offer(self, pid: str, oid: str, body: dict[str, Any]) -> Outcome:
        o = self.offers.get(oid)
        if o is None or o.participant_id != pid:
            return Outcome(404)
        if o.status not in ("open", "depleted"):
            return Outcome(409)
        made: list[str] = []
        if "expires_at" in body:
            o.expires_at = parse_ts(body["expires_at"])
        if "quantity" in body:
            q = body["quantity"]
            if q < o.allocated + o.released:
                return Outcome(409)
            raised = q > o.quantity
            o.quantity = q
            o.remaining = q - o.allocated - o.released
            o.status = "open" if o.remaining > 0 else "depleted"
            if raised:
                made = self._match_offer(o)
        return Outcome(200, oid, made)

    def patch_need(self, pid: str, nid: str, body: dict[str, Any]) -> Outcome:
        n = self.needs.get(nid)
        if n is None or n.participant_id != pid:
            return Outcome(404)
        if n.status not in ("open", "allocated"):
            return Outcome(409)
        if "quantity" in body and body["quantity"] < n.allocated:
            return Outcome(409)
        made: list[str] = []
        if "urgency" in body:
            n.urgency = body["urgency"]
        if "needed_by" in body:
            n.needed_by = parse_ts(body["needed_by"])
        if "expires_at" in body:
            n.expires_at = parse_ts(body["expires_at"])
        if "quantity" in body:
            q = body["quantity"]
            raised = q > n.quantity
            n.quantity = q
            n.remaining = q - n.allocated
            n.status = "open" if n.remaining > 0 else "allocated"
            if raised:
                made = self._match_need(n)
        return Outcome(200, nid, made)

    # -- DELETE
    def delete_offer(self, pid: str, oid: str) -> Outcome:
        o = self.offers.get(oid)
        if o is None or o.participant_id != pid:
            return Outcome(404)
        if o.status not in ("open", "depleted"):
            return Outcome(409)
        o.status = "withdrawn"
        o.remaining = 0
        return Outcome(200, oid)

    def delete_need(self, pid: str, nid: str) -> Outcome:
        n = self.needs.get(nid)
        if n is None or n.participant_id != pid:
            return Outcome(404)
        if n.status not in ("open", "allocated"):
            return Outcome(409)
        n.status = "cancelled"
        n.remaining = 0
        return Outcome(200, nid)

    # -- allocation actions
    def act(self, pid: str, aid: str, action: str, received: int | None = None) -> Outcome:
        """received: receive's `quantity` (None: all of it)."""
        a = self.allocations.get(aid)
        if a is None:
            return Outcome(404)
        if pid not in (a.need_participant_id, a.offer_participant_id):
            return Outcome(404)
        src, dst, side = ACTIONS[action]
        actor_side = "offer" if pid == a.offer_participant_id else "need"
        if actor_side != side:
            return Outcome(403)
        if a.status not in src:
            return Outcome(409)
        made: list[str] = []
        if action == "decline":
            made = self._release(a, "declined")
        elif action == "cancel":
            made = self._cancel(a)
        else:
            a.status = dst
            if action == "receive":
                made = self._received(a, a.quantity if received is None else received)
        return Outcome(200, aid, made)

    def _received(self, a: Allocation, rq: int) -> list[str]:
        """rq of a's arrived; the shortfall goes back to the need (matched again)."""
        a.received_quantity = rq
        n = self.needs[a.need_id]
        n.received += rq
        made = self._back_to_need(a, a.quantity - rq) if rq < a.quantity else []
        self._need_status(n)
        return made

    @staticmethod
    def _need_status(n: Need) -> None:
        """What the daemon's need_changed does to a need's status."""
        if n.status == "open" and n.remaining == 0:
            n.status = "fulfilled" if n.received >= n.quantity else "allocated"
        elif n.status == "allocated" and n.remaining > 0:
            n.status = "open"
        elif n.status == "allocated" and n.received >= n.quantity:
            n.status = "fulfilled"

    def _back_to_need(self, a: Allocation, q: int) -> list[str]:
        """q of a's goes back to its need (never to be matched with that offer again)."""
        n = self.needs[a.need_id]
        n.allocated -= q
        self.excluded.add((n.id, a.offer_id))
        if n.status in ("open", "allocated"):
            n.remaining += q
            self._need_status(n)
            return self._match_need(n)
        return []

    def _cancel_off_need(self, a: Allocation) -> None:
        q, n = a.quantity, self.needs[a.need_id]
        self.excluded.add((n.id, a.offer_id))
        n.allocated -= q
        if n.quantity - q <= 0:
            if n.status in ("open", "allocated"):
                n.status = "cancelled"
            n.remaining = 0
        else:
            n.quantity -= q
            self._need_status(n)

    def _cancel(self, a: Allocation) -> list[str]:
        """The need's side cancels: off the need (its quantity lowered; cancelled when nothing
        is left to ask for), back to the offer, matched again (never with that need)."""
        a.status = "cancelled"
        q = a.quantity
        o = self.offers[a.offer_id]
        self._cancel_off_need(a)
        o.allocated -= q
        if o.status in ("open", "depleted"):
            o.remaining += q
            o.status = "open"
            return self._match_offer(o)
        o.released += q
        return []

    def lapse(self, aid: str) -> list[str]:
        """The sweep: a proposed allocation whose lapse_at has passed."""
        a = self.allocations[aid]
        assert a.status == "proposed", a
        return self._release(a, "lapsed")

    def _release(self, a: Allocation, status: str) -> list[str]:
        a.status = status
        n, o = self.needs[a.need_id], self.offers[a.offer_id]
        n.allocated -= a.quantity
        o.allocated -= a.quantity
        o.released += a.quantity
        self.excluded.add((n.id, o.id))
        if n.status in ("open", "allocated"):
            n.remaining += a.quantity
            n.status = "open"
            return self._match_need(n)
        return []

    # -- expiry
    def expire_offer(self, oid: str) -> None:
        o = self.offers[oid]
        if o.status in ("open", "depleted"):
            o.status, o.remaining = "expired", 0

    def expire_need(self, nid: str) -> None:
        n = self.needs[nid]
        if n.status in ("open", "allocated"):
            n.status, n.remaining = "expired", 0

    # -- aggregates (the stock feed)
    AGGREGATE_FIELDS = ("offered_open", "needed_open", "needed_open_stat", "needed_open_asap",
                        "allocated_in_flight", "shipped_in_flight", "received_total")

    def aggregates(self) -> dict[tuple[str, str], dict[str, int]]:
        """{(region, product): {field: value}}, only rows with some non-zero field."""
        return compute_aggregates(
            [vars(o) for o in self.offers.values()],
            [vars(n) for n in self.needs.values()],
            [vars(a) for a in self.allocations.values()])

    # -- views, in the daemon's shape (fields the model knows)
    def offer_view(self, oid: str) -> dict[str, Any]:
        o = self.offers[oid]
        return {"product": o.product, "market": o.market, "quantity": o.quantity,
                "remaining": o.remaining, "allocated": o.allocated, "released": o.released,
                "region": o.region, "delivery_scope": o.delivery_scope, "min_lot": o.min_lot,
                "status": o.status}

    def need_view(self, nid: str) -> dict[str, Any]:
        n = self.needs[nid]
        return {"product": n.product, "market": n.market, "quantity": n.quantity,
                "remaining": n.remaining, "allocated": n.allocated, "received": n.received,
                "urgency": n.urgency, "region": n.region, "status": n.status}

    def allocation_view(self, aid: str) -> dict[str, Any]:
        a = self.allocations[aid]
        return {"product": a.product, "offer_product": a.offer_product, "quantity": a.quantity,
                "tier": a.tier, "status": a.status, "urgency": a.urgency,
                "received_quantity": a.received_quantity,
                "need_region": a.need_region, "offer_region": a.offer_region}


def compute_aggregates(offers: list[dict], needs: list[dict],
                       allocations: list[dict]) -> dict[tuple[str, str], dict[str, int]]:
    """The stock-feed aggregates from plain objects (model views or daemon JSON alike):
    offers under (offer region, offer product), needs and allocations under (need region,
    need product); zero rows are left out."""
    rows: dict[tuple[str, str], dict[str, int]] = {}

    def add(region: str, product: str, fld: str, value: int) -> None:
        if value:
            row = rows.setdefault((region, product), dict.fromkeys(Model.AGGREGATE_FIELDS, 0))
            row[fld] += value

    for o in offers:
        if o["status"] == "open":
            add(o["region"], o["product"], "offered_open", o["remaining"])
    for n in needs:
        if n["status"] == "open":
            add(n["region"], n["product"], "needed_open", n["remaining"])
            if n["urgency"] in ("stat", "asap"):
                add(n["region"], n["product"], f"needed_open_{n['urgency']}", n["remaining"])
    for a in allocations:
        fld = {"proposed": "allocated_in_flight", "confirmed": "allocated_in_flight",
               "shipped": "shipped_in_flight", "received": "received_total"}.get(a["status"])
        if fld:
            q = a["quantity"]
            if a["status"] == "received" and a.get("received_quantity") is not None:
                q = a["received_quantity"]    # what arrived; the shortfall went back
            add(a["need_region"], a["product"], fld, q)
    return rows


# ------------------------------------------------------------------------------ API helpers
# Shared by the matching test modules (kept here so that the test files stay about the rules).

class Client:
    """One participant's view of the API: post/get/patch/delete offers and needs, act on
    allocations. Methods that must succeed assert their status and return parsed JSON."""

    def __init__(self, api_factory: Callable[[str | None], Any], participant: dict | None,
                 token: str | None):
        self.api = api_factory(token)
        self.participant = participant
        self.token = token
        self.id = participant["id"] if participant else None

    # raw
    def post(self, path: str, body: Any, **kw: Any):
        return self.api.post(path, json=body, **kw)

    # offers / needs
    def offer(self, product: str = "ethanol-96", quantity: int = 100, **fields: Any) -> tuple[dict, list[dict]]:
        r = self.api.post("/v1/offers", json={"product": product, "quantity": quantity, **fields})
        assert r.status_code == 201, f"POST /v1/offers {fields}: {r.status_code} {r.text[:600]}"
        body = r.json()
        return body["offer"], body["allocations"]

    def need(self, product: str = "hydroalcoholic-gel", quantity: int = 100, urgency: str = "routine",
             **fields: Any) -> tuple[dict, list[dict]]:
        r = self.api.post("/v1/needs", json={"product": product, "quantity": quantity,
                                             "urgency": urgency, **fields})
        assert r.status_code == 201, f"POST /v1/needs {fields}: {r.status_code} {r.text[:600]}"
        body = r.json()
        return body["need"], body["allocations"]

    def get(self, path: str, **kw: Any):
        return self.api.get(path, **kw)

    def get_ok(self, path: str, **kw: Any) -> dict:
        r = self.api.get(path, **kw)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:600]}"
        return r.json()

    def list_all(self, path: str, params: dict | None = None, limit: int = 500) -> list[dict]:
        """Every item of a paginated list (follows next_cursor)."""
        items: list[dict] = []
        cursor = None
        for _ in range(1000):
            p = dict(params or {}, limit=limit)
            if cursor:
                p["cursor"] = cursor
            body = self.get_ok(path, params=p)
            items.extend(body["items"])
            cursor = body.get("next_cursor")
            if not cursor:
                return items
        raise AssertionError(f"{path}: pagination does not end")

    def act(self, alloc_id: str, action: str, body: dict | None = None):
        if body is None and action == "cancel":
            body = {"reason": "other"}      # cancel needs a reason
        if body is None:
            return self.api.post(f"/v1/allocations/{alloc_id}/{action}")
        return self.api.post(f"/v1/allocations/{alloc_id}/{action}", json=body)

    def act_ok(self, alloc_id: str, action: str, body: dict | None = None) -> dict:
        r = self.act(alloc_id, action, body)
        assert r.status_code == 200, f"{action} {alloc_id}: {r.status_code} {r.text[:600]}"
        return r.json()


def pairs(allocs: list[dict]) -> list[tuple[str, str, int]]:
    """(need_id, offer_id, quantity) of allocations, in order."""
    return [(a["need_id"], a["offer_id"], a["quantity"]) for a in allocs]


class World:
    """One daemon and the participants a test creates on it (each a `Client`)."""

    def __init__(self, daemon: Any):
        import impactd_harness as h  # local import: the model part needs no harness
        self._h = h
        self.daemon = daemon
        self.admin = Client(self._api, {"id": "prt_bootstrap", "role": "admin"}, daemon.admin_token)
        self.anonymous = Client(self._api, None, None)

    def _api(self, token: str | None):
        return self._h.api(self.daemon, token)

    def client(self, role: str, region: str | None = "11", **fields: Any) -> Client:
        made = self._h.create_participant(self.daemon, role, region, **fields)
        return Client(self._api, made.participant, made.token)

    def manufacturer(self, region: str = "11", **fields: Any) -> Client:
        return self.client("manufacturer", region, **fields)

    def hospital(self, region: str = "11", **fields: Any) -> Client:
        return self.client("hospital", region, **fields)

    def ministry(self, **fields: Any) -> Client:
        return self.client("ministry", None, **fields)

    # admin views
    def offer(self, oid: str) -> dict:
        return self.admin.get_ok(f"/v1/offers/{oid}")

    def need(self, nid: str) -> dict:
        return self.admin.get_ok(f"/v1/needs/{nid}")

    def allocation(self, aid: str) -> dict:
        return self.admin.get_ok(f"/v1/allocations/{aid}")

    def allocations(self, **params: Any) -> list[dict]:
        return self.admin.list_all("/v1/allocations", params)


def redis_aggregates(redis: Any, prefix: str = "impact:") -> dict[tuple[str, str], dict[str, int]] | None:
    """The aggregates impactd keeps in Redis, in compute_aggregates' shape, or None when no
    aggregate key exists. Key plan (include/impactd/keys.h, docs/ARCHITECTURE.md): one hash
    `<prefix>m:{<market>}:agg` per market, fields "<region>|<product>|<column>" -> sum."""
    keys: list[bytes] = []
    with redis.client() as r:
        cursor = b"0"
        while True:
            cursor, batch = r.cmd("SCAN", cursor, "MATCH", f"{prefix}m:{{*}}:agg", "COUNT", 1000)
            keys.extend(batch)
            if cursor in (b"0", 0, "0"):
                break
        if not keys:
            return None
        rows: dict[tuple[str, str], dict[str, int]] = {}
        for key in keys:
            flat = r.cmd("HGETALL", key)
            for f, v in zip(flat[::2], flat[1::2]):
                region, product, column = f.decode().split("|")
                value = int(float(v))
                assert column in Model.AGGREGATE_FIELDS, f"unknown aggregate column {column} in {key!r}"
                if value:
                    row = rows.setdefault((region, product), dict.fromkeys(Model.AGGREGATE_FIELDS, 0))
                    row[column] += value
        return rows


def pipelined_posts(daemon: Any, token: str, path: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    """Sends every POST on one keep-alive connection without waiting for the answers (HTTP/1.1
    pipelining), so that several objects are created within the same millisecond; the daemon
    handles them in order. Returns [(status, body)] in request order."""
    import socket

    host, port = "127.0.0.1", daemon.port
    out = []
    for b in bodies:
        data = json.dumps(b).encode()
        out.append(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() +
                   b"\r\nAuthorization: Bearer " + token.encode() +
                   b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
    answers: list[tuple[int, dict]] = []
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"".join(out))
        buf = b""
        while len(answers) < len(bodies):
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].decode("latin-1").split("\r\n")
                length = next(int(x.split(":", 1)[1]) for x in head[1:]
                              if x.lower().startswith("content-length:"))
                if len(buf) >= end + 4 + length:
                    status = int(head[0].split()[1])
                    answers.append((status, json.loads(buf[end + 4:end + 4 + length])))
                    buf = buf[end + 4 + length:]
                    continue
            chunk = s.recv(1 << 16)
            if not chunk:
                raise AssertionError(f"connection closed after {len(answers)} of {len(bodies)} answers")
            buf += chunk
    return answers
