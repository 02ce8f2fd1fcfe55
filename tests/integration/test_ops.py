"""Operations: health, readiness, metrics, request ids, shutdown, idle connections, rate limit."""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import time

import pytest
import requests

import impactd_harness as h
from impactd_harness import assert_problem, parse_prometheus, poll_until


def raw_exchange(port: int, data: bytes, sock: socket.socket | None = None, seconds: float = 5.0) -> bytes:
    """Sends `data` (on `sock` or a new connection) and reads one HTTP/1.1 response."""
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=seconds * h.SLOW)
    s.settimeout(seconds * h.SLOW)
    try:
        if data:
            s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before a full response: {buf!r}")
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if m:
            while len(body) < int(m.group(1)):
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        return head + b"\r\n\r\n" + body
    finally:
        if sock is None:
            s.close()


def status_of(raw: bytes) -> int:
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw)
    assert m, raw[:200]
    return int(m.group(1))


# ------------------------------------------------------------------ health

def test_healthz(module_daemon):
    r = h.api(module_daemon).get("/healthz")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


def test_readyz(module_daemon):
    r = h.api(module_daemon).get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_head_is_accepted_where_get_is(module_daemon):
    r = h.api(module_daemon).head("/healthz")
    assert r.status_code == 200
    assert r.content == b""
    r = h.api(module_daemon).head("/v1/catalog/regions")
    assert r.status_code == 200 and r.content == b""


def test_openapi_document_is_served_and_written_from_the_descriptors(module_daemon):
    """/openapi.json is src/openapi.json with its resource schemas written in from the field
    tables (src/schema.c): what `impactd openapi` prints, no template marker left, and every
    field a create body may carry is in the create schema."""
    r = h.api(module_daemon).get("/openapi.json")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert str(doc.get("openapi", "")).startswith("3.1"), doc.get("openapi")
    printed = subprocess.run([str(h.IMPACTD_BIN), "openapi"], capture_output=True, timeout=30,
                             check=True).stdout
    assert doc == json.loads(printed)
    assert "x-impactd" not in json.dumps(doc)
    template = json.loads(h.OPENAPI_FILE.read_text())
    assert "x-impactd-resource" in json.dumps(template), "the template marks no schema"
    schemas = doc["components"]["schemas"]
    offer = schemas["Offer"]
    assert set(offer["required"]) == set(offer["properties"]) >= {"id", "remaining", "status"}
    assert offer["additionalProperties"] is False    # a key missing from the table shows
    create = schemas["NeedCreate"]
    assert create["additionalProperties"] is False
    assert set(create["required"]) == {"product", "quantity", "urgency"}
    assert set(create["properties"]) == {"product", "quantity", "urgency", "needed_by",
                                         "expires_at", "region", "note"}
    assert schemas["Urgency"]["enum"] == ["stat", "asap", "urgent", "routine"]
    assert set(schemas["OfferPatch"]["properties"]) == {"quantity", "expires_at", "note"}


# ------------------------------------------------------------------ metrics

def test_metrics_parse_and_count_requests_by_route(module_daemon):
    pub = h.api(module_daemon)
    for _ in range(3):
        assert pub.get("/v1/catalog/products").status_code == 200
    assert pub.get("/v1/catalog/products/ethanol-96").status_code == 200
    marker = "zz" + secrets.token_hex(6)
    assert pub.get(f"/v1/{marker}").status_code in (401, 404)

    r = pub.get("/metrics")
    assert r.status_code == 200
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("text/plain"), ctype
    assert "version=0.0.4" in ctype.replace(" ", ""), ctype
    fams = parse_prometheus(r.text)

    fam = fams.get("impactd_http_requests_total")
    assert fam is not None, f"no impactd_http_requests_total family; families: {sorted(fams)}"
    assert fam["type"] == "counter"
    samples = fam["samples"]
    assert samples and all("route" in labels for _, labels, _ in samples), samples[:5]
    status_key = next((k for k in ("status", "code") if all(k in l for _, l, _ in samples)), None)
    assert status_key, f"no status/code label on every sample: {samples[:5]}"
    products = [(l, v) for _, l, v in samples
                if l["route"].rstrip("/").endswith("/v1/catalog/products") and l[status_key] == "200"]
    assert products and sum(v for _, v in products) >= 3, samples
    # Routes are templates, never raw paths: no id, no unknown path in a label.
    routes = {l["route"] for _, l, _ in samples}
    assert not any("ethanol-96" in x for x in routes), routes
    assert marker not in r.text, "an unknown path leaked into the metrics (unbounded cardinality)"
    assert len(routes) < 60, routes

    # A latency histogram exists.
    hist = [n for n, f in fams.items() if f["type"] == "histogram"]
    assert hist, f"no histogram family: {sorted(fams)}"

    # Counters only grow.
    pub.get("/v1/catalog/products")
    fams2 = parse_prometheus(pub.get("/metrics").text)
    before = {(n, tuple(sorted(l.items()))): v for n, l, v in samples}
    for n, l, v in fams2["impactd_http_requests_total"]["samples"]:
        key = (n, tuple(sorted(l.items())))
        if key in before:
            assert v >= before[key], (key, before[key], v)
    after = sum(v for _, l, v in fams2["impactd_http_requests_total"]["samples"]
                if l["route"].rstrip("/").endswith("/v1/catalog/products") and l[status_key] == "200")
    assert after >= sum(v for _, v in products) + 1


def test_prometheus_parser_rejects_bad_input():
    # The checker itself must be able to fail.
    with pytest.raises(AssertionError):
        parse_prometheus("foo_total 1\n")                                    # no TYPE
    with pytest.raises(AssertionError):
        parse_prometheus("# TYPE foo counter\nfoo 1\n")                     # counter not _total
    with pytest.raises(AssertionError):
        parse_prometheus('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n'
                         "h_sum 1\nh_count 1\n")                             # decreasing buckets
    fams = parse_prometheus('# HELP a_total x\n# TYPE a_total counter\na_total{route="/v1/me",status="200"} 3\n'
                            '# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="+Inf"} 2\n'
                            "h_sum 0.3\nh_count 2\n")
    assert fams["a_total"]["samples"] == [("a_total", {"route": "/v1/me", "status": "200"}, 3.0)]


# ------------------------------------------------------------------ request ids and logs

def test_request_id_is_echoed_and_logged(module_daemon):
    rid = "req-" + secrets.token_hex(8)
    r = h.api(module_daemon).get("/healthz", headers={"X-Request-Id": rid})
    assert r.headers.get("X-Request-Id") == rid
    poll_until(lambda: rid in module_daemon.log(), 5, f"request id {rid} in the daemon log")


def test_request_id_is_generated_when_absent(module_daemon):
    r1 = h.api(module_daemon).get("/healthz")
    r2 = h.api(module_daemon).get("/v1/nope")
    for r in (r1, r2):
        rid = r.headers.get("X-Request-Id", "")
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", rid), r.headers
    assert r1.headers["X-Request-Id"] != r2.headers["X-Request-Id"]


@pytest.mark.parametrize("bad", ["has space", "x" * 65, "semi;colon", "é"])
def test_insane_request_id_is_replaced(module_daemon, bad):
    r = requests.get(module_daemon.url + "/healthz", headers={"X-Request-Id": bad.encode()},
                     timeout=h.HTTP_TIMEOUT)
    rid = r.headers.get("X-Request-Id", "")
    assert rid != bad and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", rid), rid


def test_one_log_line_per_request(module_daemon):
    rids = ["line-" + secrets.token_hex(6) for _ in range(3)]
    for rid in rids:
        h.api(module_daemon).get("/v1/catalog/regions/11", headers={"X-Request-Id": rid})
    poll_until(lambda: all(rid in module_daemon.log() for rid in rids), 5, "three request log lines")
    log = module_daemon.log()
    for rid in rids:
        lines = [ln for ln in log.splitlines() if rid in ln]
        assert len(lines) >= 1
        assert any("200" in ln for ln in lines), lines


# ------------------------------------------------------------------ shutdown

def test_sigterm_exits_0(impactd):
    d = impactd()
    assert h.api(d).get("/healthz").status_code == 200
    rc = d.stop()
    assert rc == 0, f"exit code {rc} on SIGTERM"
    with pytest.raises(requests.ConnectionError):
        requests.get(d.url + "/healthz", timeout=2)


def test_sigterm_with_an_idle_client_still_exits_0(impactd):
    d = impactd()
    s = socket.create_connection(("127.0.0.1", d.port))
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        assert h.api(d).get("/healthz").status_code == 200
        rc = d.stop()
        assert rc == 0, f"exit code {rc} on SIGTERM with an idle connection open"
    finally:
        s.close()


def test_sigterm_after_keepalive_request_exits_0(impactd):
    d = impactd()
    s = socket.create_connection(("127.0.0.1", d.port))
    try:
        raw = raw_exchange(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", sock=s)
        assert status_of(raw) == 200
        assert d.stop() == 0
    finally:
        s.close()


# ------------------------------------------------------------------ slow and idle clients

def test_half_sent_requests_do_not_block_other_clients(module_daemon):
    port = module_daemon.port
    idle = []
    try:
        partials = [b"GET /healthz HTT", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: b",
                    b"POST /v1/participants HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ro"]
        for i in range(60):
            s = socket.create_connection(("127.0.0.1", port), timeout=5 * h.SLOW)
            s.sendall(partials[i % len(partials)])
            idle.append(s)
        t0 = time.monotonic()
        for _ in range(20):
            r = requests.get(module_daemon.url + "/healthz", timeout=2 * h.SLOW)
            assert r.status_code == 200
        assert time.monotonic() - t0 < 10 * h.SLOW
        # The half-sent GETs complete normally once the client finishes them.
        raw = raw_exchange(port, b"P/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", sock=idle[0])
        assert status_of(raw) == 200, raw[:300]
        raw = raw_exchange(port, b"ar\r\n\r\n", sock=idle[1])
        assert status_of(raw) == 200, raw[:300]
    finally:
        for s in idle:
            s.close()
    assert h.api(module_daemon).get("/healthz").status_code == 200


def test_many_concurrent_connections(module_daemon):
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(1000, soft - 200)  # the contract: at least 1,000 concurrent connections
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", module_daemon.port), timeout=5 * h.SLOW))
        for s in socks:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = sum(status_of(raw_exchange(module_daemon.port, b"", sock=s)) == 200 for s in socks)
        assert ok == n
    finally:
        for s in socks:
            s.close()


def _wait_closed(s: socket.socket, seconds: float) -> tuple[bytes, float]:
    """Blocks until the peer closes `s` (or the deadline); returns (what was read, elapsed)."""
    s.settimeout(seconds * h.SLOW)
    t0 = time.monotonic()
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"connection still open after {seconds * h.SLOW:.1f}s; read {got[:200]!r}")
    return got, time.monotonic() - t0


def test_idle_and_half_sent_connections_are_closed_after_idle_timeout(impactd):
    # IMPACTD_IDLE_TIMEOUT is documented in config/impactd.conf; 1s keeps the suite fast.
    d = impactd(env={"IMPACTD_IDLE_TIMEOUT": "1s"})
    silent = socket.create_connection(("127.0.0.1", d.port))
    half = socket.create_connection(("127.0.0.1", d.port))
    half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        # Meanwhile an active client is served.
        assert h.api(d).get("/healthz").status_code == 200
        for s in (silent, half):
            got, elapsed = _wait_closed(s, 10)
            assert got == b"" or got.startswith(b"HTTP/1.1 408"), got[:200]
            assert elapsed >= 0.5 or s is half, elapsed
    finally:
        silent.close()
        half.close()
    assert h.api(d).get("/healthz").status_code == 200


def test_keepalive_connection_is_closed_after_idle_timeout(impactd):
    d = impactd(env={"IMPACTD_IDLE_TIMEOUT": "1s"})
    s = socket.create_connection(("127.0.0.1", d.port))
    try:
        assert status_of(raw_exchange(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", sock=s)) == 200
        got, _ = _wait_closed(s, 10)
        assert got == b"", got[:200]
    finally:
        s.close()


@pytest.mark.skipif(os.environ.get("IMPACTD_SLOW_TESTS") != "1", reason="takes over a minute; IMPACTD_SLOW_TESTS=1")
def test_idle_connection_is_closed_after_a_minute(module_daemon):
    s = socket.create_connection(("127.0.0.1", module_daemon.port))
    s.sendall(b"GET /healthz HTT")
    s.settimeout(120)
    t0 = time.monotonic()
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        data = b""
    elapsed = time.monotonic() - t0
    s.close()
    # Closed (possibly after a 408), after about a minute.
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
    assert 55 <= elapsed <= 100, elapsed


# ------------------------------------------------------------------ rate limit

def test_rate_limit_per_token(impactd):
    d = impactd(env={"IMPACTD_RATE_LIMIT": "5"})
    a_tok = h.create_participant(d, "hospital").token
    b_tok = h.create_participant(d, "manufacturer").token
    a = h.api(d, a_tok)
    statuses = []
    limited = None
    t0 = time.monotonic()
    for _ in range(200):
        r = a.get("/v1/me")
        statuses.append(r.status_code)
        if r.status_code == 429 and limited is None:
            limited = r
        if len(statuses) >= 30 and limited is not None:
            break
    elapsed = time.monotonic() - t0
    assert statuses[0] == 200, statuses
    assert set(statuses) <= {200, 429}, statuses
    assert limited is not None, f"no 429 in {len(statuses)} requests over {elapsed:.2f}s"
    assert_problem(limited, 429)
    retry = limited.headers.get("Retry-After", "")
    assert retry.isdigit() and 1 <= int(retry) <= 60, limited.headers
    n_ok = statuses.count(200)
    assert n_ok <= 5 + 5 * elapsed + 1, f"{n_ok} accepted in {elapsed:.2f}s with limit 5/s burst 5"
    # Another token is unaffected.
    r = h.api(d, b_tok).get("/v1/me")
    assert r.status_code == 200, r.text
    # And the limited token recovers (polling at 4/s stays under the 5/s refill).
    poll_until(lambda: a.get("/v1/me").status_code == 200, 3, "the limited token to recover", interval=0.25)
