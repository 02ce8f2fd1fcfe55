"""Who the other party is (docs/api.md, "Who the other party is"): every allocation names both
sides (need_party, offer_party, as they stood when the need and the offer were posted), so
do the allocation.* notifications; the two parties and the ministry get each other's public
participant view, anyone else 404; nothing of a party reaches a participant outside the
allocation."""
from __future__ import annotations

import json
import secrets

import impactd_harness as h
import webhook_receiver as wr
from model import World

GEL = "hydroalcoholic-gel"


def pair(w: World):
    tag = secrets.token_hex(4)
    m = w.manufacturer("11", name=f"Cosmétiques Durand {tag}")
    hosp = w.hospital("11", name=f"CHU Exemple {tag}")
    offer, _ = m.offer(GEL, 10)
    need, allocs = hosp.need(GEL, 10, "stat")
    assert len(allocs) == 1
    return m, hosp, allocs[0], tag


def test_allocations_and_their_notifications_name_both_parties(impactd):
    w = World(impactd())
    m, hosp, a, tag = pair(w)
    for got in (a, hosp.api.get(f"/v1/allocations/{a['id']}").json(),
                m.api.get(f"/v1/allocations/{a['id']}").json()):
        assert got["need_party"] == {"participant_id": hosp.id, "name": f"CHU Exemple {tag}",
                                     "role": "hospital", "contact": None, "site": None}, got
        assert got["offer_party"]["participant_id"] == m.id
        assert got["offer_party"]["name"] == f"Cosmétiques Durand {tag}"
        assert got["offer_party"]["role"] == "manufacturer"
    # a snapshot: renaming the hospital later does not rewrite the allocation
    assert hosp.api.patch(f"/v1/participants/{hosp.id}", json={"name": "renamed"}).status_code == 200
    assert w.allocation(a["id"])["need_party"]["name"] == f"CHU Exemple {tag}"
    # ... while the next posting, through the same daemon, carries the new name at once
    # (the daemon forgets the party it had kept for this poster)
    m.offer(GEL, 1)
    _, later = hosp.need(GEL, 1, "stat")
    assert later[0]["need_party"]["name"] == "renamed", later
    m.act_ok(a["id"], "confirm")
    for who in (m, hosp):
        def both_messages():       # the notifier writes them just after the answer
            bodies = [json.loads(i["body"]) for i in wr.inbox(w.daemon, who.token)]
            about = [b for b in bodies if b["type"].startswith("allocation.") and
                     b["data"]["id"] == a["id"]]
            types = {b["type"] for b in about}
            return about if types == {"allocation.proposed", "allocation.confirmed"} else None
        about = h.poll_until(both_messages, 10, "allocation.proposed and .confirmed in the inbox")
        for b in about:
            assert b["data"]["need_party"]["participant_id"] == hosp.id
            assert b["data"]["offer_party"]["participant_id"] == m.id


def test_the_parties_and_the_ministry_see_the_public_view_others_404(impactd):
    w = World(impactd())
    m, hosp, a, tag = pair(w)
    assert hosp.api.patch(f"/v1/participants/{hosp.id}",
                          json={"webhook_url": "https://chu.example/hook"}).status_code == 200
    full = w.admin.get_ok(f"/v1/participants/{hosp.id}")
    assert full["webhook_url"] == "https://chu.example/hook"
    for viewer in (m, w.ministry()):
        seen = viewer.api.get(f"/v1/participants/{hosp.id}")
        assert seen.status_code == 200, seen.text
        view = seen.json()
        assert view["webhook_url"] is None and view["name"] == full["name"]
        assert view == {**full, "webhook_url": None}
    assert hosp.api.get(f"/v1/participants/{m.id}").status_code == 200
    # a participant in the same region and market, but with no allocation between them
    stranger = w.hospital("11")
    h.assert_problem(stranger.api.get(f"/v1/participants/{hosp.id}"), 404)
    h.assert_problem(stranger.api.get(f"/v1/participants/{m.id}"), 404)
    h.assert_problem(m.api.get(f"/v1/participants/{stranger.id}"), 404)
    # and it stays so after their allocation is closed: any status counts
    m.act_ok(a["id"], "decline")
    assert m.api.get(f"/v1/participants/{hosp.id}").status_code == 200


def test_nothing_of_a_party_leaks_to_anyone_else(impactd):
    """Every read a stranger (each role but ministry and admin) can make, on every object
    type: no answer carries the two parties' names."""
    w = World(impactd())
    m, hosp, a, tag = pair(w)
    m.act_ok(a["id"], "confirm")
    for stranger in (w.hospital("11"), w.manufacturer("11"), w.hospital("32")):
        api = stranger.api
        answers = [api.get(p) for p in (
            f"/v1/allocations/{a['id']}", "/v1/allocations", "/v1/offers", "/v1/needs",
            f"/v1/offers/{a['offer_id']}", f"/v1/needs/{a['need_id']}",
            f"/v1/participants/{hosp.id}", f"/v1/participants/{m.id}", "/v1/notifications",
            "/v1/me", "/v1/feeds/events", "/v1/feeds/stock", "/v1/feeds/outcomes")]
        for r in answers:
            assert tag not in r.text, f"{r.request.url}: {r.status_code} {r.text[:300]}"
        assert answers[0].status_code == 404 and answers[6].status_code == 404
    # while the ministry and admins see both parties on the allocation
    for reader in (w.ministry(), w.admin):
        got = reader.get(f"/v1/allocations/{a['id']}")
        assert tag in got.text and got.json()["need_party"]["participant_id"] == hosp.id


def test_a_posting_whose_party_cannot_be_read_is_503_and_makes_nothing(impactd, redis_server):
    """The poster's record is read before its need is made: with Redis asleep behind the
    timeout, a hospital whose token this daemon verified a moment ago (so only the party
    read meets Redis) gets 503 with Retry-After, and no need is made."""
    d = impactd(redis_server, env={"IMPACTD_REDIS_TIMEOUT": "200ms"})
    w = World(d)
    hosp = w.hospital("11")
    assert hosp.api.get("/v1/me").status_code == 200          # the token is now cached
    sleeper, _ = h.redis_sleep(redis_server, 1.5)
    h.poll_until(lambda: h.redis_asleep(redis_server), 5, "Redis to be asleep")
    r = hosp.api.post("/v1/needs", json={"product": GEL, "quantity": 3, "urgency": "stat"})
    sleeper.join(10)
    h.assert_problem(r, 503)
    assert r.headers.get("Retry-After"), r.headers
    h.poll_until(lambda: h.api(d).get("/readyz", check=False).status_code == 200, 10, "ready")
    assert [n for n in w.admin.list_all("/v1/needs") if n["participant_id"] == hosp.id] == []
