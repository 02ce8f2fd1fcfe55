"""Redis outages: readiness follows the store, requests get 503 + Retry-After, recovery is automatic."""
from __future__ import annotations

import impactd_harness as h
from impactd_harness import assert_problem, poll_until


def assert_503(resp):
    assert_problem(resp, 503)
    retry = resp.headers.get("Retry-After", "")
    assert retry.isdigit() and int(retry) >= 1, resp.headers


def test_outage_and_recovery_without_restarting_impactd(impactd, redis_factory):
    redis = redis_factory(appendonly=True)
    d = impactd(redis)
    pid = d.proc.pid
    created = h.create_participant(d, "hospital", region="52")
    me = h.api(d, created.token)
    assert me.get("/v1/me").status_code == 200

    redis.stop()
    assert not redis.running()

    # Readiness follows the store.
    poll_until(lambda: h.api(d).get("/readyz", check=False).status_code == 503, 10, "/readyz to answer 503")
    assert_503(h.api(d).get("/readyz"))
    # Liveness does not.
    r = h.api(d).get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    # A request that needs the store: 503 with Retry-After (an auth cache may delay it a little).
    poll_until(lambda: me.get("/v1/me", check=False).status_code == 503, 10, "/v1/me to answer 503")
    assert_503(me.get("/v1/me"))
    # A well-formed token never seen cannot be checked: 503, not 401.
    assert_503(h.api(d, h.mutate_token(created.token)).get("/v1/me"))
    # Writes fail the same way, even with the bootstrap admin token.
    assert_503(h.api(d, d.admin_token).post("/v1/participants",
                                             json={"role": "hospital", "name": "during outage", "region": "11"}))
    # The public catalogue does not need Redis.
    assert h.api(d).get("/v1/catalog/regions/11").status_code == 200

    redis.start()
    poll_until(lambda: h.api(d).get("/readyz", check=False).status_code == 200, 20, "/readyz back to 200")
    assert d.alive() and d.proc.pid == pid, "impactd was restarted or died"

    # The participant survived (appendonly) and its token works again.
    poll_until(lambda: me.get("/v1/me", check=False).status_code == 200, 10, "/v1/me back to 200")
    assert me.get("/v1/me").json() == created.participant
    # New writes work.
    again = h.create_participant(d, "manufacturer", region="52")
    assert h.api(d, again.token).get("/v1/me").json()["id"] == again.participant["id"]


def test_two_outages_in_a_row(impactd, redis_server):
    d = impactd(redis_server)
    for round_ in range(2):
        redis_server.stop()
        poll_until(lambda: h.api(d).get("/readyz", check=False).status_code == 503, 10,
                   f"/readyz 503 (outage {round_ + 1})")
        redis_server.start()
        poll_until(lambda: h.api(d).get("/readyz", check=False).status_code == 200, 20,
                   f"/readyz 200 (recovery {round_ + 1})")
        # Data is gone (no persistence): a fresh participant must work.
        created = h.create_participant(d, "hospital")
        assert h.api(d, created.token).get("/v1/me").status_code == 200


def test_start_while_redis_is_down(impactd, tmp_path):
    redis = h.RedisServer(tmp_path / "late-redis")   # port chosen, not started yet
    d = impactd(redis.url, wait="healthz")
    try:
        assert h.api(d).get("/healthz").status_code == 200
        assert_503(h.api(d).get("/readyz"))
        redis.start()
        poll_until(lambda: h.api(d).get("/readyz", check=False).status_code == 200, 20,
                   "/readyz 200 once redis is up")
        created = h.create_participant(d, "hospital")
        assert h.api(d, created.token).get("/v1/me").status_code == 200
    finally:
        redis.stop()
