"""The authorization matrix (issue 10): every route of `impactd routes` × every caller.

The routes, their methods and the roles the daemon's table admits come from `impactd routes`
(src/routes.c), so a new route is in the matrix the day it is added. What the table cannot
say is in RULES below, one row per route pattern, and a route without a row fails
`test_every_route_has_a_rule`:
- `roles`: the roles the contract admits (docs/api.md, "Endpoint index" and "Roles"); the
  table must agree, so a role bit changed in src/routes.c fails too;
- `obj`: the object the request is about (a real id, made beforehand, fills the path);
- `own`: what an admitted caller gets on its own object when that is not a 2xx (a hospital
  confirming the allocation of its need: 403; a regional ministry reading an object outside
  its regions: 404), or, for a list, whether A's or B's object is in it (PRESENT, ABSENT);
- `other`: what a stranger gets on A's or B's object: 404 for offers, needs, allocations and
  tokens, 403 for a participant (this version), ABSENT for a list; None when no one else's
  object is involved.

Callers: manufacturer A (offers, needs for inputs) and hospital B (needs), with allocations
between them; the ministry (no regions); a regional ministry of 93, where nothing of A's or
B's is, and one of 93 and 11, where they are; an admin participant; the bootstrap admin;
strangers C (manufacturer) and D (hospital), who share nothing with A and B; no token; a bad
token. Every 4xx must be an RFC 9457 problem, and the Api wrapper checks each answer against
src/openapi.json (so a status a route does not document fails too). One daemon for the module,
about 400 requests."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

import impactd_harness as h
from impactd_harness import problem_shape_errors

GEL = "hydroalcoholic-gel"
OK = "2xx"
ABSENT = "absent"     # 200, and the object of A's or B's it is about is not among the items
PRESENT = "present"   # 200, and it is
ROLES = ("manufacturer", "hospital", "ministry", "admin")
# The callers that act on their own objects, and the role each carries.
CALLERS = {"manufacturer": "manufacturer", "hospital": "hospital", "ministry": "ministry",
           "regional": "ministry", "regional_in": "ministry", "admin": "admin",
           "bootstrap": "admin"}
STRANGERS = {"stranger_mfr": "manufacturer", "stranger_hosp": "hospital"}

ANY = set(ROLES)
PARTY = {"manufacturer", "hospital"}
READ = {"ministry", "admin"}
ADMIN = {"admin"}
PUBLIC: set[str] = set()


@dataclass
class Rule:
    roles: set[str]
    obj: str | None = None                 # what the path parameter (or a list) is about
    body: Any = None                        # a JSON body, or {role: body}
    own: dict[str, Any] = field(default_factory=dict)   # caller -> expectation (default OK)
    other: Any = None                       # a stranger on A's / B's object; None: no such case
    stream: bool = False                    # an event stream: read the status only


# The objects Matrix makes (what `obj` may name).
OBJS = {"product", "region", "self", "participant", "spare_token", "offer", "offer_del", "need",
        "need_del", "deadletter", "alloc", "alloc_confirm", "alloc_decline", "alloc_ship",
        "alloc_receive", "alloc_cancel", "events"}
SIDE = {"hospital": 403}                    # confirm, decline, ship: the offer's side only
# Lists: the readers of everything see A's and B's objects, the regional ministry of 93 not.
SEES = {"ministry": PRESENT, "regional_in": PRESENT, "admin": PRESENT, "bootstrap": PRESENT,
        "regional": ABSENT}
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/readyz"): Rule(PUBLIC),
    ("GET", "/metrics"): Rule(PUBLIC),
    ("GET", "/openapi.json"): Rule(PUBLIC),
    ("GET", "/v1/keys"): Rule(PUBLIC),
    ("GET", "/v1/catalog/products"): Rule(PUBLIC),
    ("GET", "/v1/catalog/products/{id}"): Rule(PUBLIC, "product"),
    ("GET", "/v1/catalog/regions"): Rule(PUBLIC),
    ("GET", "/v1/catalog/regions/{code}"): Rule(PUBLIC, "region"),
    ("GET", "/v1/me"): Rule(ANY),
    ("POST", "/v1/participants"): Rule(ADMIN, body={"role": "hospital", "name": "matrix",
                                                    "region": "11"}),
    ("GET", "/v1/participants/{id}"): Rule(ANY, "self", other=404),
    ("PATCH", "/v1/participants/{id}"): Rule(ANY, "self", body={"name": "renamed"}, other=403),
    ("POST", "/v1/participants/{id}/tokens"): Rule(ADMIN, "participant"),
    ("DELETE", "/v1/tokens/{token_id}"): Rule(ANY, "spare_token", other=404),
    ("POST", "/v1/offers"): Rule({"manufacturer"}, body={"product": "ethanol-96", "quantity": 10}),
    ("GET", "/v1/offers"): Rule(ANY, "offer", own={**SEES, "manufacturer": PRESENT},
                                other=ABSENT),
    ("GET", "/v1/offers/{id}"): Rule(ANY, "offer", own={"hospital": 404, "regional": 404},
                                     other=404),
    ("PATCH", "/v1/offers/{id}"): Rule({"manufacturer"}, "offer", body={"note": "matrix"},
                                       other=404),
    ("DELETE", "/v1/offers/{id}"): Rule({"manufacturer"}, "offer_del", other=404),
    ("POST", "/v1/needs"): Rule(PARTY, body={
        "manufacturer": {"product": "bottle-1l", "quantity": 3, "urgency": "routine"},
        "hospital": {"product": GEL, "quantity": 3, "urgency": "routine"}}),
    ("GET", "/v1/needs"): Rule(PARTY | READ, "need", own={**SEES, "hospital": PRESENT},
                                    other=ABSENT),
    ("GET", "/v1/needs/{id}"): Rule(PARTY | READ, "need", own={"regional": 404}, other=404),
    ("PATCH", "/v1/needs/{id}"): Rule(PARTY, "need", body={"note": "matrix"}, other=404),
    ("DELETE", "/v1/needs/{id}"): Rule(PARTY, "need_del", other=404),
    ("GET", "/v1/allocations"): Rule(PARTY | READ, "alloc", own={
        **SEES, "manufacturer": PRESENT, "hospital": PRESENT}, other=ABSENT),
    ("GET", "/v1/allocations/{id}"): Rule(PARTY | READ, "alloc", own={"regional": 404}, other=404),
    ("POST", "/v1/allocations/{id}/confirm"): Rule(PARTY, "alloc_confirm", own=SIDE, other=404),
    ("POST", "/v1/allocations/{id}/decline"): Rule(PARTY, "alloc_decline", own=SIDE, other=404),
    ("POST", "/v1/allocations/{id}/ship"): Rule(PARTY, "alloc_ship", own=SIDE, other=404),
    ("POST", "/v1/allocations/{id}/receive"): Rule(PARTY, "alloc_receive",
                                                   own={"manufacturer": 403}, other=404),
    ("POST", "/v1/allocations/{id}/cancel"): Rule(PARTY, "alloc_cancel", body={"reason": "other"},
                                                  own={"manufacturer": 403}, other=404),
    ("GET", "/v1/feeds/stock"): Rule(READ),
    ("GET", "/v1/feeds/outcomes"): Rule(READ),
    ("GET", "/v1/feeds/events"): Rule(READ, "events", own=SEES),
    ("GET", "/v1/notifications"): Rule(ANY),
    ("GET", "/v1/notifications/stream"): Rule(ANY, stream=True),
    ("GET", "/v1/admin/dead-letters"): Rule(ADMIN),
    ("POST", "/v1/admin/dead-letters/{id}/redeliver"): Rule(ADMIN, "deadletter"),
}


def _routes() -> list[dict]:
    r = h.run_impactd(["routes"], env={})
    assert r.returncode == 0, f"impactd routes: exit {r.returncode}: {r.stderr}"
    table = json.loads(r.stdout)
    assert table and all({"method", "path", "roles", "flags"} <= set(t) for t in table), table
    return table


ROUTES = _routes() if h.IMPACTD_BIN.exists() else []


def route_id(route: dict) -> str:
    return f"{route['method']} {route['path']}"


# --------------------------------------------------------------------------------------------
# the objects every request is about

class Matrix:
    """One daemon (module scope) with real objects and a token for each caller."""

    def __init__(self, d: h.Daemon):
        self.d = d
        self.tokens: dict[str, str] = {"bootstrap": d.admin_token}
        self.pids: dict[str, str] = {"bootstrap": "prt_bootstrap"}
        made = {
            "manufacturer": h.create_participant(d, "manufacturer", "11"),
            "hospital": h.create_participant(d, "hospital", "11"),
            "ministry": h.create_participant(d, "ministry", None),
            "regional": h.create_participant(d, "ministry", None, regions=["93"]),
            "regional_in": h.create_participant(d, "ministry", None, regions=["93", "11"]),
            "admin": h.create_participant(d, "admin", None),
            "stranger_mfr": h.create_participant(d, "manufacturer", "11"),
            "stranger_hosp": h.create_participant(d, "hospital", "11"),
        }
        for who, c in made.items():
            self.tokens[who], self.pids[who] = c.token, c.participant["id"]
        self.bad_token = h.mutate_token(made["manufacturer"].token)
        a, b = self.api("manufacturer"), self.api("hospital")

        # allocations between A and B, one per action, each in the status its action starts from
        alloc = {}
        for i, name in enumerate(("alloc", "alloc_confirm", "alloc_decline", "alloc_ship",
                                  "alloc_receive", "alloc_cancel")):
            q = 10 + i
            offer = self.ok(a.post("/v1/offers", json={"product": GEL, "quantity": q}), 201)
            need = self.ok(b.post("/v1/needs", json={"product": GEL, "quantity": q,
                                                     "urgency": "asap"}), 201)
            got = need["allocations"]
            assert [x["offer_id"] for x in got] == [offer["offer"]["id"]], got
            alloc[name] = got[0]["id"]
            if name == "alloc":
                first_offer, first_need = offer["offer"]["id"], need["need"]["id"]
        for action in ("confirm", "ship"):
            self.ok(a.post(f"/v1/allocations/{alloc['alloc_receive']}/{action}"), 200)
        self.ok(a.post(f"/v1/allocations/{alloc['alloc_ship']}/confirm"), 200)

        # two dead letters: a hospital whose webhook nobody listens to, one attempt each
        v = h.Api(d, h.create_participant(d, "manufacturer", "44").token)
        w = h.Api(d, h.create_participant(d, "hospital", "44", webhook_url=(
            f"http://127.0.0.1:{h.free_port()}/hook")).token)
        self.ok(v.post("/v1/offers", json={"product": "hand-rub-solution", "quantity": 2}), 201)
        for _ in range(2):
            self.ok(w.post("/v1/needs", json={"product": "hand-rub-solution", "quantity": 1,
                                              "urgency": "asap"}), 201)

        # what is deleted or revoked has its own object, so that the order of the routes
        # does not matter
        offer_del = self.ok(a.post("/v1/offers", json={"product": "ethanol-96", "quantity": 5}), 201)
        need_a = self.ok(a.post("/v1/needs", json={"product": "bottle-1l", "quantity": 5,
                                                   "urgency": "routine"}), 201)
        need_a_del = self.ok(a.post("/v1/needs", json={"product": "bottle-1l", "quantity": 6,
                                                       "urgency": "routine"}), 201)
        need_b_del = self.ok(b.post("/v1/needs", json={"product": GEL, "quantity": 7,
                                                       "urgency": "routine"}), 201)
        assert need_b_del["allocations"] == [], "no open gel offer is left to match it"
        boot = self.api("bootstrap")
        spare = {who: self.ok(boot.post(f"/v1/participants/{self.pids[who]}/tokens"), 201)["token_id"]
                 for who in ("manufacturer", "hospital", "ministry", "regional", "regional_in",
                             "admin")}
        spare_a2 = self.ok(boot.post(f"/v1/participants/{self.pids['manufacturer']}/tokens"),
                           201)["token_id"]
        dead = h.poll_until(lambda: (lambda items: items if len(items) >= 2 else None)(
            self.ok(boot.get("/v1/admin/dead-letters"), 200)["items"]), 10, "two dead letters")

        A, B = self.pids["manufacturer"], self.pids["hospital"]
        # obj -> {caller: id}; "*" for every other caller. Strangers get A's or B's object.
        self.objs: dict[str, dict[str, str]] = {
            "product": {"*": GEL},
            "region": {"*": "11"},
            "self": {**{who: self.pids[who] for who in ("manufacturer", "hospital", "ministry",
                                                        "regional", "regional_in")},
                     "admin": A, "bootstrap": A, "stranger_mfr": A, "stranger_hosp": B},
            "participant": {"*": A},
            "spare_token": {**spare, "bootstrap": spare_a2, "stranger_mfr": spare["manufacturer"],
                            "stranger_hosp": spare["hospital"]},
            "offer": {"*": first_offer},
            "offer_del": {"*": offer_del["offer"]["id"]},
            "need": {"manufacturer": need_a["need"]["id"], "*": first_need},
            "need_del": {"manufacturer": need_a_del["need"]["id"], "*": need_b_del["need"]["id"]},
            "deadletter": {"admin": dead[0]["message_id"], "*": dead[1]["message_id"]},
            **{name: {"*": aid} for name, aid in alloc.items()},
        }
        # what a list or the event feed must show (PRESENT) or not (ABSENT)
        self.watched = {"offer": {first_offer}, "need": {first_need}, "alloc": {alloc["alloc"]},
                       "events": {first_offer, first_need, alloc["alloc"]}}
        assert set(self.objs) | set(self.watched) == OBJS, "OBJS names what Matrix makes"
        # ABSENT from a regional feed means something only once the events are in the feed
        h.poll_until(lambda: self.watched["events"] <= {
            (i.get("data") or {}).get("id")
            for i in self.ok(boot.get("/v1/feeds/events", params={"limit": 500}), 200)["items"]},
            10, "the setup's events in /v1/feeds/events")

    def api(self, who: str | None, token: str | None = None) -> h.Api:
        return h.api(self.d, token if token is not None else self.tokens.get(who) if who else None)

    @staticmethod
    def ok(resp, status: int) -> Any:
        assert resp.status_code == status, (f"{resp.request.method} {resp.request.url}: "
                                            f"{resp.status_code} {resp.text[:500]}")
        return resp.json() if resp.content else None

    def path(self, route: dict, rule: Rule, who: str) -> str:
        path = route["path"]
        if "{" in path:
            ids = self.objs[rule.obj]
            value = ids.get(who) or ids.get("*") or ids["manufacturer"]   # no token: any real id
            path = path.split("{")[0] + value + path.split("}", 1)[1]
        return path

    def body(self, rule: Rule, role: str | None) -> Any:
        if isinstance(rule.body, dict) and set(rule.body) <= set(ROLES):
            return rule.body.get(role or "", next(iter(rule.body.values())))
        return rule.body

    def call(self, route: dict, rule: Rule, who: str | None, token: str | None = None):
        """One request of the matrix; returns (status, parsed body or None, what)."""
        role = (CALLERS.get(who) or STRANGERS.get(who)) if who else None
        path = self.path(route, rule, who or "*")
        body = self.body(rule, role)
        kw: dict[str, Any] = {"json": body} if body is not None else {}
        if rule.other == ABSENT or {ABSENT, PRESENT} & set(rule.own.values()):
            kw["params"] = {"limit": 500}
        api = self.api(who, token)
        what = f"{who or 'no token'} {route['method']} {path}"
        if rule.stream:
            resp = api.request(route["method"], path, check=False, stream=True, **kw)
            if resp.status_code < 400:
                resp.close()
                return resp.status_code, None, what
        else:
            resp = api.request(route["method"], path, **kw)
        errs = problem_shape_errors(resp) if 400 <= resp.status_code < 500 else []
        assert not errs, "\n".join(errs)
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        return resp.status_code, parsed, what


@pytest.fixture(scope="module")
def mx(_module_procs, module_redis) -> Matrix:
    d = _module_procs.daemon(module_redis, env={"IMPACTD_WEBHOOK_ALLOW_PRIVATE": "1",
                                                "IMPACTD_WEBHOOK_RETRY_SCHEDULE": "0s"})
    d.shared = True
    return Matrix(d)


def expect(mx: Matrix, rule: Rule, want: Any, status: int, body: Any, what: str) -> str | None:
    """None when the answer is what `want` says; else the complaint."""
    text = json.dumps(body)[:300] if body is not None else ""
    if status == 403 and isinstance(body, dict) and " role may not use " in str(body.get("detail")):
        return f"{what}: refused for its role (403) where {want} was expected: {text}"
    if want == OK and 200 <= status < 300:
        return None
    if want in (ABSENT, PRESENT):
        if status != 200:
            return f"{what}: {status} where a 200 list was expected: {text}"
        items = body.get("items", []) if isinstance(body, dict) else []
        seen = {i.get("id") for i in items} | {(i.get("data") or {}).get("id") for i in items}
        if want == ABSENT and mx.watched[rule.obj] & seen:
            return f"{what}: lists someone else's {sorted(mx.watched[rule.obj] & seen)}"
        if want == PRESENT and mx.watched[rule.obj] - seen:
            return f"{what}: does not list {sorted(mx.watched[rule.obj] - seen)}"
        return None
    if status == want:
        return None
    return f"{what}: {status} where {want} was expected: {text}"


def report(complaints: list[str]) -> None:
    assert not complaints, f"{len(complaints)} answers break the matrix:\n  " + "\n  ".join(complaints)


# --------------------------------------------------------------------------------------------

def test_every_route_has_a_rule():
    assert ROUTES, "impactd routes printed no route"
    table = {(r["method"], r["path"]): set(r["roles"]) for r in ROUTES}
    missing = sorted(f"{m} {p}" for m, p in table if (m, p) not in RULES)
    assert not missing, ("routes without a rule in RULES of tests/integration/test_authz_matrix.py "
                         "(add one: the roles the contract admits, who else gets what): "
                         + ", ".join(missing))
    stale = sorted(f"{m} {p}" for m, p in RULES if (m, p) not in table)
    assert not stale, f"rules for routes impactd no longer serves: {', '.join(stale)}"
    wrong = [f"{m} {p}: src/routes.c admits {sorted(roles) or 'everyone (public)'}, the contract "
             f"{sorted(RULES[m, p].roles) or 'everyone (public)'}"
             for (m, p), roles in table.items() if roles != RULES[m, p].roles]
    assert not wrong, "roles that disagree with docs/api.md:\n  " + "\n  ".join(wrong)
    for r in ROUTES:
        assert set(r["roles"]) <= set(ROLES), r
        assert "{" not in r["path"] or RULES[r["method"], r["path"]].obj in OBJS, \
            f"{route_id(r)}: its path parameter needs an `obj` in its rule (one of {sorted(OBJS)})"


def test_no_token_and_a_bad_token_are_401(mx):
    complaints = []
    for route in ROUTES:
        rule = RULES.get((route["method"], route["path"]))
        if rule is None:
            continue
        for token in (None, mx.bad_token):
            status, body, what = mx.call(route, rule, None, token)
            what = what.replace("no token", "bad token") if token else what
            if route["roles"]:
                if status != 401:
                    complaints.append(f"{what}: {status} where 401 was expected")
            elif status in (401, 403) or not 200 <= status < 300:
                complaints.append(f"{what}: {status} on a public route (it ignores Authorization)")
    report(complaints)


def test_a_role_the_route_does_not_admit_is_403(mx):
    complaints, n = [], 0
    for route in ROUTES:
        rule = RULES.get((route["method"], route["path"]))
        if rule is None:
            continue
        for who, role in {**CALLERS, **STRANGERS}.items():
            if not route["roles"] or role in route["roles"]:
                continue
            n += 1
            status, body, what = mx.call(route, rule, who)
            detail = f"the {role} role may not use {route['method']} {route['path']}"
            if status != 403 or not isinstance(body, dict) or body.get("detail") != detail:
                complaints.append(f"{what}: {status} {json.dumps(body)[:200]} where 403 "
                                  f"{detail!r} was expected")
    assert n > 50, f"only {n} refusals exercised"
    report(complaints)


def test_someone_elses_object(mx):
    """Strangers C (manufacturer) and D (hospital) on A's and B's objects. Runs before the
    owners' own requests, which delete, revoke and act on the same objects."""
    complaints, n = [], 0
    for route in ROUTES:
        rule = RULES.get((route["method"], route["path"]))
        if rule is None or rule.other is None:
            continue
        for who, role in STRANGERS.items():
            if role not in route["roles"]:
                continue
            n += 1
            status, body, what = mx.call(route, rule, who)
            complaint = expect(mx, rule, rule.other, status, body, what)
            if complaint:
                complaints.append(complaint)
    assert n > 20, f"only {n} stranger requests exercised"
    report(complaints)


def test_a_role_the_route_admits_reaches_the_handler(mx):
    """Every admitted caller, on its own object (or, for admins and the ministry, on A's and
    B's): a 2xx unless RULES says otherwise, never a refusal for the role."""
    complaints = []
    for route in ROUTES:
        rule = RULES.get((route["method"], route["path"]))
        if rule is None:
            continue
        for who, role in CALLERS.items():
            if route["roles"] and role not in route["roles"]:
                continue
            status, body, what = mx.call(route, rule, who)
            complaint = expect(mx, rule, rule.own.get(who, OK), status, body, what)
            if complaint:
                complaints.append(complaint)
    report(complaints)


def test_a_regional_ministry_asking_the_stock_of_another_region_is_403(mx):
    a = mx.api("regional")
    h.assert_problem(a.get("/v1/feeds/stock", params={"region": "11", "format": "json"}), 403)
    assert a.get("/v1/feeds/stock", params={"region": "93", "format": "json"}).status_code == 200
