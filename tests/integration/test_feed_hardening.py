"""Hardening of the event feed, the notification streams and every cursor (issue 10).

- The event feed settles on Redis's clock, not the daemon's: a change is listed as soon as
  the request that made it has been answered; a long feed read right after it was written
  hands out a next_cursor on every page but the last; paging while two markets are written
  lists every event exactly once, in (ms, seq, market) order (docs/feeds.md).
- Notification streams: one per participant (a new one replaces the old, which is told so),
  at most sse_max_streams per process (503 + Retry-After beyond), and a closed stream frees its
  place (docs/notifications.md).
- Every cursor a client sends back (event feed `after`, inbox `after`, the stream's
  Last-Event-ID and `after`, dead letters' `cursor`, the object lists' `cursor`) is checked
  before Redis sees it: hostile values answer 422 naming the parameter, and the daemon logs no
  error for them (docs/api.md, Pagination).
"""
from __future__ import annotations

import threading
import time

import requests

import impactd_harness as h
from impactd_harness import assert_problem
from model import pipelined_posts
from test_feeds import GEL, check_event_shapes, check_order, page_events
from webhook_receiver import SseClient, allocate, notify_env, party


def feed(api: h.Api, **params) -> dict:
    r = api.get("/v1/feeds/events", params=params)
    assert r.status_code == 200, f"GET /v1/feeds/events {params}: {r.status_code} {r.text[:300]}"
    return r.json()


RUB = "hand-rub-solution"


def need_bodies(n: int, start: int = 0) -> list[dict]:
    """Needs alternating between two markets (gel, hand rub), so the feed merges streams."""
    return [{"product": (GEL, RUB)[i % 2], "quantity": 1 + i % 9, "urgency": "routine"}
            for i in range(start, start + n)]


def post_needs(d: h.Daemon, token: str, n: int, start: int = 0) -> list[str]:
    ids = []
    for status, body in pipelined_posts(d, token, "/v1/needs", need_bodies(n, start)):
        assert status == 201, body
        ids.append(body["need"]["id"])
    return ids


def error_lines(d: h.Daemon, since: int) -> list[str]:
    return [ln for ln in d.log_since(since).splitlines() if "level=error" in ln]


# ============================================================================== event feed

def test_a_change_is_in_the_feed_as_soon_as_it_was_answered(impactd):
    """Each need posted is in the feed read right after its 201, with nothing in between."""
    d = impactd()
    admin = d.admin()
    hosp = h.create_participant(d, "hospital", "44")
    api = h.api(d, hosp.token)
    after = None
    for i, body in enumerate(need_bodies(20)):
        r = api.post("/v1/needs", json=body)
        assert r.status_code == 201, r.text
        page = feed(admin, **({"after": after} if after else {}), limit=500)
        ids = [it["data"]["id"] for it in page["items"]]
        assert ids == [r.json()["need"]["id"]], (
            f"need #{i} {r.json()['need']['id']} answered 201, then the feed after {after} listed {ids} "
            f"(next_cursor {page['next_cursor']})")
        check_event_shapes(page["items"])
        after = page["items"][-1]["id"]


def test_a_long_feed_gives_next_cursor_on_every_page_but_the_last(impactd):
    """60 needs in two markets, then at once pages of 7: each full page carries a next_cursor
    (its last item's id), only the last page has none, and together they list the 60."""
    d = impactd()
    admin = d.admin()
    hosp = h.create_participant(d, "hospital", "44")
    ids = post_needs(d, hosp.token, 60)
    pages, after = [], None
    while True:
        page = feed(admin, limit=7, **({"after": after} if after else {}))
        pages.append(page)
        assert len(pages) < 100, "paging does not end"
        if page["next_cursor"] is None:
            break
        assert page["items"] and page["next_cursor"] == page["items"][-1]["id"], page
        after = page["next_cursor"]
    sizes = [len(p["items"]) for p in pages]
    assert all(s == 7 for s in sizes[:-1]), f"page sizes {sizes}: a page short of the limit " \
        "handed out a next_cursor, or the feed ended early"
    items = [it for p in pages for it in p["items"]]
    assert sorted(it["data"]["id"] for it in items) == sorted(ids), (
        f"{len(items)} events listed over {len(pages)} pages (sizes {sizes}), 60 needs posted")
    check_order(items)


def test_paging_while_two_markets_are_written_lists_each_event_once_in_order(impactd):
    """Two writers (one per market, pipelined bursts) and a reader following next_cursor with a
    small limit, then polling from its last id: every event exactly once, in order, and the
    same list as one read of the whole feed afterwards."""
    d = impactd()
    admin = d.admin()
    writers = [h.create_participant(d, "hospital", "44") for _ in range(2)]
    bursts, size = 20, 25
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for b in range(bursts):
                bodies = [{"product": (GEL, RUB)[k], "quantity": 1 + i % 9,
                           "urgency": "routine"} for i in range(size)]
                for status, body in pipelined_posts(d, writers[k].token, "/v1/needs", bodies):
                    assert status == 201, body
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(2)]
    for t in threads:
        t.start()
    seen: list[dict] = []
    after = None
    total = 2 * bursts * size
    end = h.deadline(60)
    while True:
        assert time.monotonic() < end, f"{len(seen)} of {total} events listed within 60s"
        written = not any(t.is_alive() for t in threads)   # before the read: all are in it
        page = feed(admin, limit=5, **({"after": after} if after else {}))
        if page["items"]:
            if page["next_cursor"] is not None:
                assert page["next_cursor"] == page["items"][-1]["id"], page
            seen.extend(page["items"])
            after = page["items"][-1]["id"]
        elif written:
            break
    assert not errors, errors
    ids = [it["id"] for it in seen]
    assert len(ids) == len(set(ids)), "an event listed twice"
    check_order(seen)
    assert len(ids) == total, f"{len(ids)} events listed, {total} needs posted: an event " \
        "written during the paging was skipped"
    whole = page_events(admin, limit=500)
    assert [it["id"] for it in whole] == ids, "paging while writing and paging afterwards disagree"
    assert feed(admin, after=ids[-1])["items"] == []


# ============================================================================== streams

def sse_open(d: h.Daemon, token: str, **kw) -> SseClient:
    s = SseClient(d, token, **kw)
    assert s.wait_connected().status_code == 200, s.response.text
    return s


def test_a_participants_new_stream_replaces_its_old_one(impactd):
    d = impactd(env=notify_env())
    m, hp = party(d, "manufacturer"), party(d, "hospital")
    second_token = h.api(d, d.admin_token).post(f"/v1/participants/{hp.id}/tokens")
    assert second_token.status_code == 201, second_token.text
    old = sse_open(d, hp.token)
    try:
        new = sse_open(d, second_token.json()["token"])
        try:
            h.poll_until(lambda: old.ended, 5, "the old stream to end when a new one opened")
            farewell = [e for e in old.events if e.event == "replaced"]
            assert farewell, f"the replaced stream was not told so: {old.events}"
            _, _, alloc = allocate(m, hp, 10, offer_quantity=100)
            ev = new.wait_events(1)[0]
            assert ev.event == "allocation.proposed" and ev.item()["id"], ev
        finally:
            new.close()
    finally:
        old.close()


def test_streams_beyond_the_cap_are_refused_and_a_closed_one_frees_its_place(impactd):
    d = impactd(env=notify_env(IMPACTD_SSE_MAX_STREAMS="2"))
    parties = [party(d, "hospital") for _ in range(3)]
    a, b = sse_open(d, parties[0].token), sse_open(d, parties[1].token)
    try:
        r = requests.get(d.url + "/v1/notifications/stream", stream=True, timeout=5,
                         headers={"Authorization": f"Bearer {parties[2].token}",
                                  "Accept": "text/event-stream"})
        with r:
            body = assert_problem(r, 503)
            assert r.headers.get("Retry-After", "").isdigit(), r.headers
            assert "sse_max_streams" in body["detail"], body
        # a participant that has a stream may open another: it replaces the first
        a2 = sse_open(d, parties[0].token)
        h.poll_until(lambda: a.ended, 5, "the replaced stream to end")
        # closing one frees its place
        b.close()
        c = h.poll_until(lambda: (lambda s: s if s.wait_connected().status_code == 200
                                  else s.close())(SseClient(d, parties[2].token)),
                         5, "a stream to open once another was closed", interval=0.1)
        c.close()
        a2.close()
    finally:
        a.close()
        b.close()


# ============================================================================== cursors

def hostile_stream_ids() -> list[str]:
    return ["-5-0", "5--1", "99999999999999999999-1", "1-99999999999999999999",
            "18446744073709551616-0", "1000000000000000-0", "1-1000000000000", "1_2", "1:2",
            "1-", "-1", "1--2", "", "-", "1-2-3", "+1-2", "1-+2", "1.5-2", "0x1-2", "1e3-2",
            "\uff11-2", "1-2\x00", "\x001-2", " 1-2", "1-2 ", "1" * 5000 + "-1", "x" * 5000]


def header_safe(v: str) -> bool:
    return v == v.strip() and "\x00" not in v and all(ord(c) < 128 for c in v) and v != ""


def get_sse(d: h.Daemon, token: str, **kw) -> requests.Response:
    r = requests.get(d.url + "/v1/notifications/stream", stream=True, timeout=5,
                     headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream",
                              **kw.pop("headers", {})}, **kw)
    if r.status_code != 200:
        r.content           # the problem document, read before the connection goes
    r.close()
    return r


def test_hostile_cursors_are_422_and_log_no_error(impactd):
    d = impactd(env=notify_env())
    admin = d.admin()
    m, hp = party(d, "manufacturer"), party(d, "hospital")
    offer, _, _ = allocate(m, hp, 10, offer_quantity=100)
    since = d.log_size()
    code = offer["id"][-4:]             # its market's code, as every id and cursor ends
    ms, seq = "1", "0"
    checked, wrong = 0, []

    def expect_422(resp: requests.Response, field: str, what: str) -> None:
        nonlocal checked
        checked += 1
        try:
            assert_problem(resp, 422, field)
        except AssertionError:
            wrong.append(f"{what}: {resp.status_code} {resp.text[:160]}")

    # the event feed's after
    for v in [f"-5-0-{code}", f"-5-0-0f5t", f"5--1-{code}", f"99999999999999999999-0-{code}",
              f"1-99999999999999999999-{code}", f"1_0_{code}", f"1-0_{code}", f"1:0-{code}",
              f"-0-{code}", f"1--{code}", "1-0-", "1-0-zzzz", f"1-0-{code}x", f"1-0-{code[:3]}",
              f"1-0-{code}\x00", f"1-0\x00-{code}", f"+1-0-{code}", f" 1-0-{code}",
              f"0x1-0-{code}", "1" * 5000 + f"-0-{code}", "x" * 5000, "", "-", "--",
              f"{ms}-{seq}-{code}-{code}", f"1.5-0-{code}", f"1e3-0-{code}", f"\uff11-0-{code}",
              f"{ms}-{seq}-{code.upper()}"]:
        expect_422(admin.get("/v1/feeds/events", params={"after": v}), "after", f"feed after={v[:40]!r}")
    assert feed(admin, after=f"{ms}-{seq}-{code}")["items"] is not None   # a good one still is

    # the inbox's after
    for v in hostile_stream_ids() + ["msg_" + "0" * 200, "msg_\x00"]:
        expect_422(hp.api.get("/v1/notifications", params={"after": v}), "after",
                   f"inbox after={v[:40]!r}")
    # the stream's Last-Event-ID and after
    for v in hostile_stream_ids():
        expect_422(get_sse(d, hp.token, params={"after": v}), "after", f"stream after={v[:40]!r}")
        if header_safe(v):
            expect_422(get_sse(d, hp.token, headers={"Last-Event-ID": v}), "Last-Event-ID",
                       f"stream Last-Event-ID={v[:40]!r}")

    # dead letters' cursor (an offset)
    for v in ["-1", "99999999999999999999", "1000000001", "1.5", "", "abc", "1\x00", "+1",
              " 1", "0x10", "1" * 5000, "\uff11"]:
        expect_422(admin.get("/v1/admin/dead-letters", params={"cursor": v}), "cursor",
                   f"dead letters cursor={v[:40]!r}")

    # the object lists' cursor: an id of that kind (prefix, 15 hex digits, a market's code)
    for path, prefix, other in (("/v1/offers", "off_", "ned_"), ("/v1/needs", "ned_", "off_"),
                                ("/v1/allocations", "alc_", "off_")):
        for v in [prefix + "z" * 15 + code, prefix + "0" * 15 + "zzzz", prefix,
                  prefix + "a" * 32, prefix + "0" * 19, prefix + "0" * 15 + code + "0",
                  other + "0" * 15 + code, prefix.upper() + "0" * 15 + code,
                  prefix + "-" + "0" * 14 + code, prefix + "0" * 14 + "G" + code,
                  prefix + "0" * 15 + code + "\x00junk", "x" * 5000, "",
                  prefix + " " + "0" * 14 + code]:
            for who in (admin, m.api):
                expect_422(who.get(path, params={"cursor": v}), "cursor", f"{path} cursor={v[:40]!r}")
        ok = admin.get(path, params={"cursor": prefix + "0" * 15 + code})
        assert ok.status_code == 200, ok.text
    assert not wrong, f"{len(wrong)} of {checked} bad cursors not answered 422:\n  " + \
        "\n  ".join(wrong)
    errors = error_lines(d, since)
    assert not errors, f"{len(errors)} error lines for {checked} bad cursors:\n" + "\n".join(errors[:5])
