"""No secret in any log line (issue 10, defect 5).

Every daemon of the suite is checked when it stops (conftest.py: its log is searched for
every token, webhook secret and password the suite has seen, impactd_harness.SECRETS). This
file drives the paths that would print one: a Redis password through connects, reconnects,
a refused password and a bad URL; tokens and secrets through creation, use and revocation."""
from __future__ import annotations

import os
import secrets
import time

import impactd_harness as h

PASSWORD = "s3cr3t-" + secrets.token_hex(8)


def auth_cmd(redis: h.RedisServer, password: str, *args):
    with h.RespClient(redis.port) as c:
        c.cmd("AUTH", password)
        return c.cmd(*args)


def test_a_redis_password_is_never_logged(impactd, redis_server):
    redis_server.cmd("CONFIG", "SET", "requirepass", PASSWORD)
    url = f"redis://default:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
    daemon = impactd(url)
    created = h.create_participant(daemon, "hospital")
    assert h.Api(daemon, created.token).get("/v1/me").status_code == 200
    # the connection lost and made again: the reconnect path logs where Redis is
    auth_cmd(redis_server, PASSWORD, "CLIENT", "KILL", "TYPE", "normal")
    h.poll_until(lambda: h.Api(daemon).get("/readyz").status_code == 200 or None, 15,
                 "the daemon to reconnect")
    # a second daemon with a wrong password: refused at AUTH, logged without it
    wrong = "wr0ng-" + secrets.token_hex(8)
    bad = impactd(f"redis://default:{wrong}@127.0.0.1:{redis_server.port}/0", wait="healthy")
    time.sleep(0.5)
    assert h.Api(bad).get("/readyz").status_code == 503
    for d, pw in ((daemon, PASSWORD), (bad, wrong)):
        log = d.log()
        assert "redis" in log.lower(), "the daemon logged nothing about Redis"
        assert pw not in log, f"the Redis password is in the log of {d.port}"
    h.remember_secret(PASSWORD)
    h.remember_secret(wrong)
    auth_cmd(redis_server, PASSWORD, "CONFIG", "SET", "requirepass", "")


def test_a_bad_redis_url_is_reported_without_its_password(tmp_path):
    env = {**os.environ, "IMPACTD_DATA_DIR": str(tmp_path),
           "IMPACTD_REDIS_URL": f"redis://admin:{PASSWORD}@127.0.0.1:notaport/0"}
    p = h.run_impactd(["--config", str(h.CONFIG_FILE), "--check-config"], env)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "REDIS_URL" in out, out
    assert PASSWORD not in out, out
    assert "***@127.0.0.1" in out, out


def test_tokens_and_secrets_stay_out_of_the_log(impactd):
    daemon = impactd(env={"IMPACTD_LOG_LEVEL": "debug"})
    admin = h.Api(daemon, daemon.admin_token)
    created = h.create_participant(daemon, "manufacturer", webhook_url="https://example.invalid/h")
    token, whsec = created.token, created.body["webhook_secret"]
    me = h.Api(daemon, token)
    assert me.get("/v1/me").status_code == 200
    issued = admin.post(f"/v1/participants/{created.participant['id']}/tokens")
    assert issued.status_code == 201, issued.text
    assert admin.delete(f"/v1/tokens/{issued.json()['token_id']}").status_code == 204
    # a token sent where no token goes, and a bad one: neither is echoed
    assert h.Api(daemon, token + "x").get("/v1/me").status_code == 401
    assert me.get("/v1/me", params={"token": token}).status_code == 200
    log = daemon.log()
    assert "level=debug" in log or "level=info" in log
    for s in (token, whsec, issued.json()["token"], daemon.admin_token):
        assert s not in log, f"{s[:10]}... is in the log"
