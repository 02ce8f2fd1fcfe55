"""Participants and tokens: create, read, patch, issue and revoke tokens, storage hygiene."""
from __future__ import annotations

import secrets
from urllib.parse import urlparse

import pytest

import impactd_harness as h
from impactd_harness import RFC3339_UTC, assert_problem

PARTICIPANT_KEYS = {"id", "role", "name", "region", "lat", "lon", "webhook_url", "regions",
                    "created_at", "updated_at"}
PUBLIC_WEBHOOK = "https://hooks.example.com/impactd/in"


def assert_participant_shape(p: dict) -> None:
    assert PARTICIPANT_KEYS <= set(p), f"missing {PARTICIPANT_KEYS - set(p)} in {p}"
    assert p["id"].startswith("prt_") and len(p["id"]) > 4, p
    assert RFC3339_UTC.match(p["created_at"]), p
    assert RFC3339_UTC.match(p["updated_at"]), p
    assert p["updated_at"] >= p["created_at"], p


# ------------------------------------------------------------------ create

@pytest.mark.parametrize("role,extra", [
    ("manufacturer", {"region": "84", "lat": 45.764, "lon": 4.8357, "webhook_url": PUBLIC_WEBHOOK}),
    ("hospital", {"region": "11", "lat": 48.8566, "lon": 2.3522}),
    ("ministry", {}),
    ("admin", {}),
])
def test_create_each_role(module_daemon, admin_api, role, extra):
    name = f"{role} {secrets.token_hex(3)} — Hôpital «test»"
    r = admin_api.post("/v1/participants", json={"role": role, "name": name, **extra})
    assert r.status_code == 201, r.text
    body = r.json()
    p = body["participant"]
    assert_participant_shape(p)
    assert p["role"] == role
    assert p["name"] == name
    assert p["region"] == extra.get("region")
    assert p["webhook_url"] == extra.get("webhook_url")
    if "lat" in extra:
        assert p["lat"] == pytest.approx(extra["lat"]) and p["lon"] == pytest.approx(extra["lon"])
    else:
        assert p["lat"] is None and p["lon"] is None
    assert p["regions"] is None
    assert body["token"].startswith("imp_") and len(body["token"]) >= 4 + 32, body["token"]
    assert body["webhook_secret"].startswith("whsec_") and len(body["webhook_secret"]) > 6 + 16
    assert body["token_id"].startswith("tok_")
    loc = r.headers.get("Location", "")
    assert loc.endswith(f"/v1/participants/{p['id']}"), r.headers
    # The token works at once and names the same participant.
    me = h.api(module_daemon, body["token"]).get("/v1/me")
    assert me.status_code == 200, me.text
    assert me.json() == p
    # Location can be followed (as the admin).
    got = admin_api.get(urlparse(loc).path)
    assert got.status_code == 200 and got.json() == p


def test_each_creation_gives_distinct_ids_tokens_and_secrets(make_participant):
    made = [make_participant("hospital") for _ in range(5)]
    assert len({c.participant["id"] for c in made}) == 5
    assert len({c.token for c in made}) == 5
    assert len({c.webhook_secret for c in made}) == 5
    assert len({c.token_id for c in made}) == 5


def test_ministry_with_regions(module_daemon, make_participant):
    p, token = make_participant("ministry", regions=["11", "24"])
    assert p["regions"] == ["11", "24"]
    me = h.api(module_daemon, token).get("/v1/me").json()
    assert me["regions"] == ["11", "24"]


def test_regions_on_a_hospital_is_422(admin_api):
    r = admin_api.post("/v1/participants", json={"role": "hospital", "name": "h", "region": "11",
                                                  "regions": ["11", "24"]})
    assert_problem(r, 422, field="regions")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "http://172.16.5.4/hook",
    "http://[::1]:9000/hook",
    "http://169.254.169.254/latest/meta-data",
])
def test_private_webhook_url_is_422_by_default(admin_api, url):
    r = admin_api.post("/v1/participants", json={"role": "hospital", "name": "h", "region": "11",
                                                  "webhook_url": url})
    assert_problem(r, 422, field="webhook_url")


def test_private_webhook_url_allowed_with_setting(impactd):
    daemon = impactd(env={"IMPACTD_WEBHOOK_ALLOW_PRIVATE": "1"})
    created = h.create_participant(daemon, "hospital", webhook_url="http://127.0.0.1:9/hook")
    assert created.participant["webhook_url"] == "http://127.0.0.1:9/hook"


def test_idempotency_key_replays_the_first_answer(admin_api):
    key = "idem-" + secrets.token_hex(8)
    body = {"role": "hospital", "name": "idempotent", "region": "53"}
    first = admin_api.post("/v1/participants", json=body, headers={"Idempotency-Key": key})
    second = admin_api.post("/v1/participants", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert second.status_code == first.status_code
    assert second.json() == first.json()


# ------------------------------------------------------------------ read

def test_get_self(module_daemon, make_participant):
    p, token = make_participant("manufacturer", region="28")
    r = h.api(module_daemon, token).get(f"/v1/participants/{p['id']}")
    assert r.status_code == 200, r.text
    assert r.json() == p


def test_get_someone_else_is_404(module_daemon, make_participant):
    """A participant that shares no allocation with another does not learn it exists
    (test_counterparts.py: one that does gets the public view)."""
    other, _ = make_participant("hospital")
    for role in ("hospital", "manufacturer"):
        _, token = make_participant(role)
        assert_problem(h.api(module_daemon, token).get(f"/v1/participants/{other['id']}"), 404)


def test_admin_gets_anyone(admin_api, make_participant):
    p, _ = make_participant("hospital", region="76")
    r = admin_api.get(f"/v1/participants/{p['id']}")
    assert r.status_code == 200 and r.json() == p


@pytest.mark.parametrize("pid", ["prt_doesnotexist", "prt_" + "0" * 26, "nothing"])
def test_unknown_participant_is_404_for_admin(admin_api, pid):
    assert_problem(admin_api.get(f"/v1/participants/{pid}"), 404)


# ------------------------------------------------------------------ patch

def test_patch_name_as_self(module_daemon, make_participant):
    p, token = make_participant("hospital")
    a = h.api(module_daemon, token)
    r = a.patch(f"/v1/participants/{p['id']}", json={"name": "Renamed CHU"})
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["name"] == "Renamed CHU"
    assert {k: v for k, v in q.items() if k not in ("name", "updated_at")} == \
           {k: v for k, v in p.items() if k not in ("name", "updated_at")}
    assert q["updated_at"] >= p["updated_at"]
    assert a.get("/v1/me").json() == q


def test_patch_webhook_url_as_admin_and_clear_it(admin_api, make_participant):
    p, _ = make_participant("manufacturer")
    r = admin_api.patch(f"/v1/participants/{p['id']}", json={"webhook_url": PUBLIC_WEBHOOK})
    assert r.status_code == 200, r.text
    assert r.json()["webhook_url"] == PUBLIC_WEBHOOK
    assert admin_api.get(f"/v1/participants/{p['id']}").json()["webhook_url"] == PUBLIC_WEBHOOK
    r = admin_api.patch(f"/v1/participants/{p['id']}", json={"webhook_url": None})
    assert r.status_code == 200, r.text
    assert r.json()["webhook_url"] is None
    assert r.json()["name"] == p["name"]


def test_patch_webhook_url_as_self(module_daemon, make_participant):
    p, token = make_participant("hospital")
    r = h.api(module_daemon, token).patch(f"/v1/participants/{p['id']}", json={"webhook_url": PUBLIC_WEBHOOK})
    assert r.status_code == 200, r.text
    assert r.json()["webhook_url"] == PUBLIC_WEBHOOK


@pytest.mark.parametrize("body,field", [
    ({"role": "admin"}, "role"),
    ({"region": "24"}, "region"),
    ({"id": "prt_other"}, "id"),
    ({"name": ""}, "name"),
    ({"name": "n" * 201}, "name"),
    ({"webhook_url": "http://127.0.0.1/hook"}, "webhook_url"),
    ({"webhook_url": 5}, "webhook_url"),
])
def test_patch_invalid_is_422(module_daemon, make_participant, body, field):
    p, token = make_participant("hospital")
    r = h.api(module_daemon, token).patch(f"/v1/participants/{p['id']}", json=body)
    assert_problem(r, 422, field=field)
    # Nothing changed.
    assert h.api(module_daemon, token).get("/v1/me").json() == p


def test_patch_role_as_admin_is_422(admin_api, make_participant):
    p, _ = make_participant("hospital")
    assert_problem(admin_api.patch(f"/v1/participants/{p['id']}", json={"role": "admin"}), 422, field="role")
    assert admin_api.get(f"/v1/participants/{p['id']}").json()["role"] == "hospital"


def test_patch_someone_else_is_403(module_daemon, make_participant):
    other, _ = make_participant("hospital")
    _, token = make_participant("hospital")
    r = h.api(module_daemon, token).patch(f"/v1/participants/{other['id']}", json={"name": "hijacked"})
    assert_problem(r, 403)
    assert h.api(module_daemon, module_daemon.admin_token).get(
        f"/v1/participants/{other['id']}").json()["name"] == other["name"]


def test_patch_unknown_participant_is_404(admin_api):
    assert_problem(admin_api.patch("/v1/participants/prt_doesnotexist", json={"name": "x"}), 404)


# ------------------------------------------------------------------ tokens

def test_issue_another_token_both_work(module_daemon, admin_api, make_participant):
    created = make_participant("manufacturer")
    p = created.participant
    r = admin_api.post(f"/v1/participants/{p['id']}/tokens", json={})
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["token"].startswith("imp_") and t["token"] != created.token
    assert t["token_id"].startswith("tok_") and t["token_id"] != created.token_id
    assert t["participant_id"] == p["id"]
    assert RFC3339_UTC.match(t["created_at"]), t
    for tok in (created.token, t["token"]):
        me = h.api(module_daemon, tok).get("/v1/me")
        assert me.status_code == 200 and me.json()["id"] == p["id"]


def test_issue_token_without_body(module_daemon, admin_api, make_participant):
    p, _ = make_participant("hospital")
    r = admin_api.post(f"/v1/participants/{p['id']}/tokens")
    assert r.status_code == 201, r.text
    assert h.api(module_daemon, r.json()["token"]).get("/v1/me").json()["id"] == p["id"]


def test_issue_token_for_unknown_participant_is_404(admin_api):
    assert_problem(admin_api.post("/v1/participants/prt_doesnotexist/tokens", json={}), 404)


def test_self_revokes_own_second_token(module_daemon, admin_api, make_participant):
    created = make_participant("hospital")
    second = admin_api.post(f"/v1/participants/{created.participant['id']}/tokens", json={}).json()
    a1 = h.api(module_daemon, created.token)
    a2 = h.api(module_daemon, second["token"])
    r = a1.delete(f"/v1/tokens/{second['token_id']}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_problem(a2.get("/v1/me"), 401)
    assert a1.get("/v1/me").status_code == 200
    # Revoking it again: it no longer exists.
    assert_problem(a1.delete(f"/v1/tokens/{second['token_id']}"), 404)


def test_self_revokes_the_token_in_use(module_daemon, make_participant):
    created = make_participant("manufacturer")
    a = h.api(module_daemon, created.token)
    assert a.delete(f"/v1/tokens/{created.token_id}").status_code == 204
    assert_problem(a.get("/v1/me"), 401)


def test_revoking_someone_elses_token_is_404(module_daemon, make_participant):
    victim = make_participant("hospital")
    _, token = make_participant("hospital")
    assert_problem(h.api(module_daemon, token).delete(f"/v1/tokens/{victim.token_id}"), 404)
    assert h.api(module_daemon, victim.token).get("/v1/me").status_code == 200


def test_revoking_unknown_token_is_404(admin_api):
    assert_problem(admin_api.delete("/v1/tokens/tok_doesnotexist"), 404)


# ------------------------------------------------------------------ storage hygiene

def test_tokens_are_not_stored_in_clear(module_daemon, module_redis, admin_api, make_participant):
    created = make_participant("manufacturer", webhook_url=PUBLIC_WEBHOOK)
    second = admin_api.post(f"/v1/participants/{created.participant['id']}/tokens", json={}).json()
    # Use them, so that any cache or "last used" bookkeeping is written too.
    for tok in (created.token, second["token"]):
        assert h.api(module_daemon, tok).get("/v1/me").status_code == 200
    dump = module_redis.dump_all()
    assert dump, "impactd stored nothing in Redis"
    # The scan does read what impactd stored: the participant's id is in there somewhere.
    pid = created.participant["id"].encode()
    assert any(pid in k or any(pid in p for p in parts) for k, parts in dump.items()), \
        "the Redis scan did not find the participant at all"
    secrets_in_clear = [created.token, second["token"]]
    # Also the random part alone (after the imp_ prefix).
    secrets_in_clear += [t[len("imp_"):] for t in secrets_in_clear]
    for key, parts in dump.items():
        for s in secrets_in_clear:
            needle = s.encode()
            assert needle not in key, f"token in clear in key name {key!r}"
            for part in parts:
                assert needle not in part, f"token {s[:10]}... stored in clear under {key!r}"


def test_every_key_has_the_prefix(module_daemon, module_redis, make_participant):
    make_participant("hospital")
    keys = list(module_redis.dump_all())
    assert keys
    assert all(k.startswith(b"impact:") for k in keys), [k for k in keys if not k.startswith(b"impact:")][:10]


def test_custom_key_prefix_is_honoured(impactd, redis_server):
    daemon = impactd(redis_server, env={"IMPACTD_KEY_PREFIX": "t3st:"})
    created = h.create_participant(daemon, "hospital")
    assert h.api(daemon, created.token).get("/v1/me").status_code == 200
    keys = list(redis_server.dump_all())
    assert keys, "nothing stored"
    bad = [k for k in keys if not k.startswith(b"t3st:")]
    assert not bad, f"keys without the configured prefix: {bad[:10]}"


# ------------------------------------------------------------------ several daemons, one Redis

def test_two_daemons_share_participants_and_revocations(impactd, redis_server):
    a = impactd(redis_server)
    b = impactd(redis_server, env={"IMPACTD_ADMIN_TOKEN": a.admin_token})
    created = h.create_participant(a, "hospital", region="32")
    # Created through one daemon, usable at once through the other.
    r = h.api(b, created.token).get("/v1/me")
    assert r.status_code == 200 and r.json() == created.participant
    # Revoked through a: a refuses it at once, b within its auth cache TTL (2 s by default).
    assert h.api(a, a.admin_token).delete(f"/v1/tokens/{created.token_id}").status_code == 204
    assert_problem(h.api(a, created.token).get("/v1/me"), 401)
    h.poll_until(lambda: h.api(b, created.token).get("/v1/me", check=False).status_code == 401, 5,
                 "the other daemon to refuse the revoked token")
    # A rename through b is seen through a.
    other = h.create_participant(b, "manufacturer")
    assert h.api(b, other.token).patch(f"/v1/participants/{other.participant['id']}",
                                       json={"name": "renamed via b"}).status_code == 200
    assert h.api(a, other.token).get("/v1/me").json()["name"] == "renamed via b"
