"""The pull side of notifications (docs/notifications.md, Endpoints): GET /v1/notifications
(every participant's inbox, oldest first, signed items, pagination) and the Server-Sent Events
stream GET /v1/notifications/stream (new items as they happen, Last-Event-ID resumes)."""
from __future__ import annotations

import json

import impactd_harness as h
from impactd_harness import assert_problem
import webhook_receiver as wr
from webhook_receiver import SseClient, allocate, notify_env, party

ITEM_KEYS = {"id", "timestamp", "kid", "signature", "body"}


def check_item(item: dict, keys: dict[str, bytes]) -> dict:
    """An inbox item's shape and v1a signature; returns its parsed body."""
    assert ITEM_KEYS <= set(item), f"inbox item lacks {ITEM_KEYS - set(item)}: {item}"
    assert isinstance(item["id"], str) and item["id"].startswith("msg_"), item
    assert isinstance(item["timestamp"], int) and not isinstance(item["timestamp"], bool), item
    assert isinstance(item["body"], str), item
    assert item["signature"].startswith("v1a,") and " " not in item["signature"], item
    assert item["kid"] in keys, f"kid {item['kid']!r} not among /v1/keys {list(keys)}"
    body = item["body"].encode("utf-8")
    assert wr.verify_v1a(keys, item["id"], item["timestamp"], body, item["signature"], item["kid"]), \
        f"inbox item signature does not verify: {item}"
    tampered = item["body"].replace('"type"', '"Type"', 1).encode()
    assert not wr.verify_v1a(keys, item["id"], item["timestamp"], tampered, item["signature"], item["kid"])
    assert not wr.verify_v1a(keys, item["id"], item["timestamp"] + 1, body, item["signature"], item["kid"])
    payload = json.loads(item["body"])
    assert payload["id"] == item["id"], (payload, item)
    assert set(payload) == {"id", "type", "timestamp", "data"}, payload
    assert h.RFC3339_UTC.match(payload["timestamp"]), payload
    return payload


def wait_inbox(p: wr.Party, n: int, seconds: float = 10.0, **kw) -> list[dict]:
    return wr.wait_until(lambda: (lambda items: items if len(items) >= n else None)(p.inbox(**kw)),
                         seconds, f"{n} items in the inbox of {p.id}")


# ------------------------------------------------------------------ the inbox

def test_inbox_without_webhook_lists_signed_items_oldest_first(impactd):
    d = impactd(env=notify_env())
    m, hp = party(d, "manufacturer"), party(d, "hospital")   # no webhook_url at all
    bystander = party(d, "hospital")
    offer, need, alloc = allocate(m, hp, 100)
    m.act(alloc["id"], "confirm")
    m.act(alloc["id"], "ship")
    hp.act(alloc["id"], "receive")
    keys = wr.public_keys(d)

    items = wait_inbox(hp, 4)
    payloads = [check_item(i, keys) for i in items]
    assert [p["type"] for p in payloads] == ["allocation.proposed", "allocation.confirmed",
                                              "allocation.shipped", "allocation.received"], payloads
    assert all(p["data"]["id"] == alloc["id"] for p in payloads)
    assert [p["data"]["status"] for p in payloads] == ["proposed", "confirmed", "shipped", "received"]
    ts = [i["timestamp"] for i in items]
    assert ts == sorted(ts), f"not oldest first: {ts}"
    assert len({i["id"] for i in items}) == 4

    mitems = wait_inbox(m, 5)
    mtypes = sorted(check_item(i, keys)["type"] for i in mitems)
    assert mtypes == sorted(["allocation.proposed", "offer.depleted", "allocation.confirmed",
                             "allocation.shipped", "allocation.received"]), mtypes
    dep = [json.loads(i["body"]) for i in mitems if json.loads(i["body"])["type"] == "offer.depleted"][0]
    assert dep["data"]["id"] == offer["id"], dep
    # one message per party: the two sides' messages for one event have distinct ids
    assert not {i["id"] for i in items} & {i["id"] for i in mitems}
    # each participant sees its own inbox only
    assert bystander.inbox() == []
    assert "offer.depleted" not in wr.inbox_types(hp.inbox())


def test_inbox_pagination_covers_everything_once(impactd):
    d = impactd(env=notify_env())
    m, hp = party(d, "manufacturer"), party(d, "hospital")
    wr.offer(m, 1000)
    made = []
    for _ in range(7):
        _, allocs = wr.need(hp, 10)
        made.append(allocs[0]["id"])
    full = wait_inbox(hp, 7)
    assert len(full) == 7, full
    assert [json.loads(i["body"])["data"]["id"] for i in full] == made, "oldest first"

    for limit in (1, 2, 3, 7, 500):
        pages = []
        cursor = None
        for _ in range(20):
            params = {"limit": limit}
            if cursor is not None:
                params["after"] = cursor
            r = hp.api.get("/v1/notifications", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            assert set(body) >= {"items", "next_cursor"}, body
            assert len(body["items"]) <= limit, body
            pages.append(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        seen = [i["id"] for page in pages for i in page]
        assert seen == [i["id"] for i in full], f"limit={limit}: pages {[len(p) for p in pages]}"
        assert all(pages[:-1]), f"limit={limit}: an empty page before the end: {[len(p) for p in pages]}"



def test_inbox_resumes_after_the_last_item_id(impactd):
    """docs/notifications.md: next_cursor is null at the end of the inbox "as of now" -- `after`
    the last id still works later. Items carry no other cursor, so the last item's id is what a
    client polling the inbox has in hand when next_cursor is null."""
    d = impactd(env=notify_env())
    m, hp = party(d, "manufacturer"), party(d, "hospital")
    wr.offer(m, 1000)
    wr.need(hp, 10)
    wr.need(hp, 10)
    full = wait_inbox(hp, 2)
    r = hp.api.get("/v1/notifications", params={"limit": 500})
    assert r.status_code == 200 and r.json()["next_cursor"] is None, r.text
    last = full[-1]["id"]
    r = hp.api.get("/v1/notifications", params={"after": last})
    assert r.status_code == 200, f"after=<the last item's id>: {r.status_code} {r.text[:300]}"
    assert r.json()["items"] == [], r.text
    _, allocs = wr.need(hp, 10)
    newer = wr.wait_until(lambda: hp.api.get("/v1/notifications", params={"after": last}).json()["items"],
                          10, "the new item after the last id")
    assert len(newer) == 1 and json.loads(newer[0]["body"])["data"]["id"] == allocs[0]["id"], newer
    assert newer[0]["id"] not in {i["id"] for i in full}
    # and after the first id: the second and the new one
    r = hp.api.get("/v1/notifications", params={"after": full[0]["id"]})
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [full[1]["id"], newer[0]["id"]], r.json()


def test_inbox_item_is_the_webhook_message(impactd, webhook_receiver):
    d = impactd(env=notify_env())
    rh = webhook_receiver()
    m, hp = party(d, "manufacturer"), party(d, "hospital", rh.url)
    _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
    req = rh.wait_types(["allocation.proposed"])["allocation.proposed"]
    items = wait_inbox(hp, 1)
    assert len(items) == 1, items
    item = items[0]
    assert item["id"] == req.headers["webhook-id"], (item, req.headers)
    assert item["body"].encode("utf-8") == req.body, "the inbox body is the webhook body, byte for byte"
    # first attempt: the message's own timestamp, so the signatures are the same
    assert str(item["timestamp"]) == req.headers["webhook-timestamp"], (item, req.headers)
    assert item["signature"] in req.headers["webhook-signature"].split(" "), (item, req.headers)
    assert item["kid"] == req.headers.get("webhook-key-id"), (item, req.headers)


def test_notifications_need_a_token(impactd):
    d = impactd(env=notify_env())
    anon = h.api(d)
    assert_problem(anon.get("/v1/notifications"), 401)
    assert_problem(anon.get("/v1/notifications/stream", headers={"Accept": "text/event-stream"}), 401)
    assert_problem(h.api(d, "imp_" + "x" * 40).get("/v1/notifications"), 401)


# ------------------------------------------------------------------ Server-Sent Events

def test_stream_delivers_new_items_and_resumes_after_last_event_id(impactd):
    d = impactd(env=notify_env())
    m, hp = party(d, "manufacturer"), party(d, "hospital")
    keys = wr.public_keys(d)
    with SseClient(d, hp.token) as s1:
        resp = s1.wait_connected()
        assert resp.status_code == 200, resp.text
        assert resp.headers.get("Content-Type", "").split(";")[0].strip() == "text/event-stream", resp.headers
        _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
        e1 = s1.wait_events(1)[0]
        m.act(alloc["id"], "confirm")
        events = s1.wait_events(2)
    e1, e2 = events[:2]
    for ev, type_ in ((e1, "allocation.proposed"), (e2, "allocation.confirmed")):
        assert ev.event == type_, ev
        assert ev.id, f"event without id: {ev}"
        assert "\n" not in ev.data, "data is the item JSON on one line"
        item = ev.item()
        payload = check_item(item, keys)
        assert payload["type"] == type_ and payload["data"]["id"] == alloc["id"], payload
    assert e1.id != e2.id
    # the same items as the pull inbox, in the same order
    assert [e1.item()["id"], e2.item()["id"]] == [i["id"] for i in hp.inbox()]

    # reconnect after the first event: the second comes first, then new ones
    with SseClient(d, hp.token, last_event_id=e1.id) as s2:
        assert s2.wait_connected().status_code == 200
        first = s2.wait_events(1)[0]
        assert first.item()["id"] == e2.item()["id"], (first, e2)
        assert first.event == "allocation.confirmed"
        m.act(alloc["id"], "ship")
        got = s2.wait_events(2)
        assert got[1].event == "allocation.shipped" and got[1].item()["id"] not in (
            e1.item()["id"], e2.item()["id"]), got
        assert len(got) == 2, got
    # ?after= works as Last-Event-ID does
    with SseClient(d, hp.token, params={"after": e1.id}) as s3:
        got = s3.wait_events(2)
        assert [e.event for e in got[:2]] == ["allocation.confirmed", "allocation.shipped"], got


def test_stream_without_last_event_id_sends_only_new_items(impactd):
    """docs/notifications.md: the stream sends "every new item"; Last-Event-ID (or ?after=)
    resumes after a cursor. Without either, what was in the inbox before is not replayed."""
    d = impactd(env=notify_env())
    m, hp = party(d, "manufacturer"), party(d, "hospital")
    _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
    m.act(alloc["id"], "confirm")
    before = wait_inbox(m, 2)
    with SseClient(d, m.token) as sm:
        assert sm.wait_connected().status_code == 200
        m.act(alloc["id"], "ship")
        ev = sm.wait_events(1)[0]
        assert ev.event == "allocation.shipped", \
            f"first event {ev.event} ({ev.item()['id']}), items already there: {[i['id'] for i in before]}"
        assert ev.item()["id"] not in {i["id"] for i in before}
        assert ev.item()["id"] not in {i["id"] for i in hp.inbox()}, "the manufacturer's own message"
