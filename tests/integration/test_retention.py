"""Nothing in Redis grows without bound (issue 10, defect 13; docs/configuration.md,
"Retention and memory"): a participant's messages and their delivery states are bounded by
inbox_max (and inbox_retention), a message still owed to a webhook is dead-lettered when it
goes rather than dropped silently, dead letters expire, events are trimmed by age too."""
from __future__ import annotations

import json
import time

import impactd_harness as h
from model import World, pipelined_posts
import webhook_receiver as wr
from webhook_receiver import notify_env, party

GEL = "hydroalcoholic-gel"


def hlen_states(redis: h.RedisServer, pid: str) -> int:
    return int(redis.cmd("HLEN", f"impact:prt:{{{pid}}}:msgs"))


def test_a_participants_messages_are_bounded_by_inbox_max(impactd, redis_server):
    w = World(impactd(redis_server, env={"IMPACTD_INBOX_MAX": "100"}))
    m, hosp = w.manufacturer("11"), w.hospital("11")
    m.offer(GEL, 10_000)
    answers = pipelined_posts(w.daemon, hosp.token, "/v1/needs",
                              [{"product": GEL, "quantity": 1, "urgency": "stat"}] * 250)
    assert all(st == 201 for st, _ in answers)

    def settled():
        n = int(redis_server.cmd("XLEN", f"impact:prt:{{{hosp.id}}}:inbox"))
        return n if n <= 100 and hlen_states(redis_server, hosp.id) <= 100 else None

    h.poll_until(settled, 20, "the hospital's inbox to be pruned to inbox_max")
    items = hosp.list_all("/v1/notifications")
    assert 90 <= len(items) <= 100, len(items)
    # the newest are the ones kept
    newest = {a[1]["need"]["id"] for a in answers[-50:]}
    kept = {json.loads(i["body"])["data"].get("need_id") for i in items}
    assert newest <= kept, sorted(newest - kept)[:5]


def test_a_message_owed_to_a_webhook_that_leaves_the_inbox_is_dead_lettered(impactd,
                                                                              webhook_receiver):
    d = impactd(env=notify_env(IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s,3s", IMPACTD_INBOX_MAX="100"))
    rh = webhook_receiver(wr.always(503))
    m, hp = party(d, "manufacturer"), party(d, "hospital", rh.url)
    wr.offer(m, 10_000)
    first, _ = wr.need(hp, 1)
    item = wr.wait_until(lambda: hp.inbox(), 10, "the hospital's first message")[0]
    rh.wait_for(lambda rs: len(rs) >= 1, 10, "its first attempt (it fails; a retry in 3 s)")
    # 120 more messages: the first one leaves the inbox before its retry
    answers = pipelined_posts(d, hp.token, "/v1/needs",
                              [{"product": GEL, "quantity": 1, "urgency": "stat"}] * 120)
    assert all(st == 201 for st, _ in answers)
    dead = wr.wait_until(lambda: [x for x in wr.dead_letters(d) if x["message_id"] == item["id"]],
                         20, "the first message in the dead letters")[0]
    assert "left the inbox" in dead["last_error"], dead
    assert dead["participant_id"] == hp.id
    # and it was not attempted again (no body to send)
    assert len(rh.by_id(item["id"])) == 1


def test_dead_letters_expire(impactd, redis_server, webhook_receiver):
    env = notify_env(IMPACTD_WEBHOOK_RETRY_SCHEDULE="0s", IMPACTD_DEAD_LETTER_RETENTION="1h")
    d = impactd(redis_server, env=env)
    rh = webhook_receiver(wr.always(500))
    m, hp = party(d, "manufacturer"), party(d, "hospital", rh.url)
    wr.offer(m, 100)
    wr.need(hp, 1)
    wr.need(hp, 2)
    dead = wr.wait_until(lambda: [x for x in wr.dead_letters(d)] if len(wr.dead_letters(d)) == 2
                         else None, 15, "two dead letters")
    old = dead[0]["message_id"]
    # one of them died two hours ago (the schedule's dead set is scored by dead time, in ms)
    two_hours_ago = int(time.time() * 1000) - 2 * 3600 * 1000
    assert redis_server.cmd("ZADD", "impact:notify:{due}:dead", "XX", "CH", two_hours_ago, old) == 1
    # a daemon prunes at its first sweep, then every minute
    d2 = impactd(redis_server, env=env)
    left = wr.wait_until(lambda: [x["message_id"] for x in wr.dead_letters(d2)]
                         if len(wr.dead_letters(d2)) == 1 else None, 10, "the old dead letter to go")
    assert left == [dead[1]["message_id"]], left
    assert redis_server.cmd("HEXISTS", "impact:notify:{due}:deadinfo", old) == 0


def test_events_are_trimmed_by_age(impactd, redis_server):
    w = World(impactd(redis_server, env={"IMPACTD_EVENTS_MAX_AGE": "2s"}))
    m = w.manufacturer("11")
    answers = pipelined_posts(w.daemon, m.token, "/v1/offers",
                              [{"product": GEL, "quantity": 1, "delivery_scope": "region"}] * 300)
    assert all(st == 201 for st, _ in answers)
    stream = "impact:m:{hydroalcoholic-gel}:events"
    assert int(redis_server.cmd("XLEN", stream)) >= 300
    time.sleep(2.5)
    w.manufacturer("11").offer(GEL, 1)    # a recent event that stays
    # trimmed by whole stream nodes (100 entries): all but the last node's old ones go
    h.poll_until(lambda: int(redis_server.cmd("XLEN", stream)) < 150 or None, 10,
                 "the events older than 2 s to be trimmed")
    assert int(redis_server.cmd("XLEN", stream)) >= 1
