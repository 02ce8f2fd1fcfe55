"""Error answers: RFC 9457 problem details with the right status, type and errors[].field."""
from __future__ import annotations

import json

import pytest
import requests

import impactd_harness as h
from impactd_harness import assert_problem


def raw_post(daemon, path, body: bytes, content_type: str | None = "application/json", token=None):
    headers = {"Authorization": f"Bearer {token or daemon.admin_token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return h.api(daemon).post(path, data=body, headers=headers)


# ------------------------------------------------------------------ unknown paths and methods

@pytest.mark.parametrize("path", ["/v1/nope", "/nope", "/v1/catalog/nope", "/v1/me/extra", "/v2/me"])
def test_unknown_path_is_404_problem(admin_api, path):
    assert_problem(admin_api.get(path), 404)


def test_unknown_path_without_token_is_404_or_401(module_daemon):
    r = h.api(module_daemon).get("/v1/nope")
    assert r.status_code in (401, 404), r.text
    assert_problem(r, r.status_code)


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/v1/me", {"GET"}),
    ("PUT", "/v1/catalog/products", {"GET"}),
    ("POST", "/healthz", {"GET"}),
    ("DELETE", "/v1/participants", {"POST"}),
    ("PUT", "/v1/participants/prt_whatever", {"GET", "PATCH"}),
    ("GET", "/v1/tokens/tok_whatever", {"DELETE"}),
])
def test_wrong_method_is_405_with_allow(admin_api, method, path, allowed):
    r = admin_api.request(method, path)
    assert_problem(r, 405)
    allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= allow, f"Allow: {r.headers.get('Allow')!r} should list {allowed}"
    assert method not in allow


def test_options_on_known_path_is_204_with_allow(admin_api):
    r = admin_api.options("/v1/participants/prt_whatever")
    assert r.status_code == 204, r.text
    allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",")}
    assert {"GET", "PATCH"} <= allow, r.headers


# ------------------------------------------------------------------ body syntax

@pytest.mark.parametrize("body", [
    b'{"role": "hospital", "name": ',
    b'{"role": "hospital" "name": "x"}',
    b"{'role': 'hospital'}",
    b'{"role": "hospital", "name": "x"} trailing',
    b'{"role": "hospital", "name": "x", "name": "y", "region": "11"}',
    b'{"role": "hospital", "name": "\xff\xfe", "region": "11"}',
    b"",
])
def test_malformed_json_is_400(module_daemon, body):
    r = raw_post(module_daemon, "/v1/participants", body)
    assert_problem(r, 400)


def test_malformed_json_problem_type(module_daemon):
    r = raw_post(module_daemon, "/v1/participants", b'{"role": ')
    assert_problem(r, 400, ptype="tag:impactd,2026:problem:malformed-json")


@pytest.mark.parametrize("body", [b"[]", b'[{"role": "hospital", "name": "x", "region": "11"}]', b'"x"', b"42",
                                  b"null"])
def test_json_that_is_not_an_object_is_422(module_daemon, body):
    r = raw_post(module_daemon, "/v1/participants", body)
    assert_problem(r, 422, ptype="tag:impactd,2026:problem:validation")


def test_body_over_64_kib_is_413(module_daemon):
    body = json.dumps({"role": "hospital", "region": "11", "name": "x" * 70_000}).encode()
    try:
        r = raw_post(module_daemon, "/v1/participants", body)
    except requests.ConnectionError as exc:  # an answer must come before the connection closes
        pytest.fail(f"connection error instead of 413: {exc}")
    assert_problem(r, 413)


def test_body_just_under_64_kib_is_read_and_validated(module_daemon):
    # 64 KiB minus a little: not 413, but the name is far too long -> 422 naming "name".
    name = "x" * (64 * 1024 - 100)
    body = json.dumps({"role": "hospital", "region": "11", "name": name}).encode()
    assert len(body) < 64 * 1024
    assert_problem(raw_post(module_daemon, "/v1/participants", body), 422, field="name")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(module_daemon, ctype):
    body = json.dumps({"role": "hospital", "region": "11", "name": "ct test"}).encode()
    assert_problem(raw_post(module_daemon, "/v1/participants", body, content_type=ctype), 415)


def test_json_content_type_with_charset_is_accepted(module_daemon):
    body = json.dumps({"role": "hospital", "region": "11", "name": "charset ok"}).encode()
    r = raw_post(module_daemon, "/v1/participants", body, content_type="application/json; charset=utf-8")
    assert r.status_code == 201, r.text


def test_missing_content_type_is_accepted(module_daemon):
    body = json.dumps({"role": "hospital", "region": "11", "name": "no ct"}).encode()
    r = raw_post(module_daemon, "/v1/participants", body, content_type=None)
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------ validation (422)

GOOD = {"role": "hospital", "name": "CHU test", "region": "11", "lat": 48.85, "lon": 2.35}


def without(d, key):
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize("body,field", [
    (without(GOOD, "name"), "name"),
    (without(GOOD, "role"), "role"),
    (without(GOOD, "region"), "region"),                        # required for a hospital
    ({**GOOD, "role": "wizard"}, "role"),
    ({**GOOD, "role": 3}, "role"),
    ({**GOOD, "region": "99"}, "region"),
    ({**GOOD, "region": 11}, "region"),
    ({**GOOD, "colour": "blue"}, "colour"),
    ({**GOOD, "lat": 90.5}, "lat"),
    ({**GOOD, "lat": -91}, "lat"),
    ({**GOOD, "lat": "48.85"}, "lat"),
    ({**GOOD, "lon": 180.01}, "lon"),
    ({**GOOD, "lon": -181}, "lon"),
    ({**GOOD, "name": ""}, "name"),
    ({**GOOD, "name": "n" * 201}, "name"),
    ({**GOOD, "name": None}, "name"),
    ({**GOOD, "webhook_url": "ftp://example.com/hook"}, "webhook_url"),
    ({**GOOD, "webhook_url": "not a url"}, "webhook_url"),
    ({**GOOD, "webhook_url": "https://example.com/" + "a" * 2048}, "webhook_url"),
    ({**GOOD, "regions": ["11"]}, "regions"),                   # regions: ministry only
    ({"role": "ministry", "name": "ARS", "regions": []}, "regions"),
    ({"role": "ministry", "name": "ARS", "regions": ["11", "99"]}, "regions"),
    ({"role": "ministry", "name": "ARS", "regions": "11"}, "regions"),
])
def test_invalid_participant_is_422_naming_the_field(admin_api, body, field):
    assert_problem(admin_api.post("/v1/participants", json=body), 422, field=field,
                   ptype="tag:impactd,2026:problem:validation")


def test_each_field_at_fault_is_reported(admin_api):
    body = {"role": "wizard", "name": "", "region": "99", "lat": 100, "bogus": 1}
    p = assert_problem(admin_api.post("/v1/participants", json=body), 422)
    fields = {e["field"] for e in p["errors"]}
    assert {"role", "name", "region", "lat", "bogus"} <= fields, p


def test_name_of_exactly_200_chars_is_accepted(admin_api):
    r = admin_api.post("/v1/participants", json={**GOOD, "name": "n" * 200})
    assert r.status_code == 201, r.text
    assert r.json()["participant"]["name"] == "n" * 200


def test_name_limit_counts_characters_not_bytes(admin_api):
    name = "é" * 200  # 400 bytes in UTF-8, 200 characters
    r = admin_api.post("/v1/participants", json={**GOOD, "name": name})
    assert r.status_code == 201, r.text
    assert r.json()["participant"]["name"] == name


@pytest.mark.parametrize("path,method", [
    ("/v1/participants", "POST"),
    ("/v1/nope", "GET"),
    ("/v1/me", "DELETE"),
])
def test_problem_status_member_equals_http_status(admin_api, path, method):
    r = admin_api.request(method, path, json={"role": "nobody"} if method == "POST" else h._MISSING)
    assert r.status_code >= 400
    body = assert_problem(r, r.status_code)
    assert body["status"] == r.status_code


def test_chunked_body_is_accepted(module_daemon):
    body = json.dumps({"role": "hospital", "region": "11", "name": "chunked"}).encode()
    chunks = iter([body[:10], body[10:]])
    r = h.api(module_daemon, module_daemon.admin_token).post(
        "/v1/participants", data=chunks, headers={"Content-Type": "application/json"})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 201, r.text
    assert r.json()["participant"]["name"] == "chunked"


def test_chunked_body_over_64_kib_is_413(module_daemon):
    body = json.dumps({"role": "hospital", "region": "11", "name": "x" * 70_000}).encode()
    chunks = iter([body[i:i + 8192] for i in range(0, len(body), 8192)])
    try:
        r = h.api(module_daemon, module_daemon.admin_token).post(
            "/v1/participants", data=chunks, headers={"Content-Type": "application/json"})
    except requests.ConnectionError as exc:
        pytest.fail(f"connection error instead of 413: {exc}")
    assert_problem(r, 413)
