"""Webhook receivers, signature checks and small impactd helpers for the notification tests
(docs/notifications.md; shared/spec/API.md, section Signed notifications).

- WebhookReceiver: a threaded HTTP(S) server on 127.0.0.1 that records every request (path,
  lowercased headers, raw body bytes, arrival time, attempt number for its webhook-id) and
  answers following a programmable behaviour, chosen per request: ok(), fail_then_ok(n),
  always(status), hang() (never answers: the request is held until the receiver closes),
  hold(seconds) (answers late), redirect(location). wait_for(predicate, seconds) waits on a
  condition variable with a deadline (no bare sleeps); assert_stays(...) checks that nothing
  happens for a while.
- make_test_ca(dir): a throwaway CA and a server certificate for 127.0.0.1 (IP SAN), made with
  the openssl command line; WebhookReceiver(tls=ca) serves HTTPS with it.
- verify_v1 (HMAC-SHA256, Standard Webhooks), verify_v1a (Ed25519 with PyNaCl), split_signatures.
- StandardWebhooks: runs verify_standardwebhooks.js (the npm package `standardwebhooks`,
  installed once per session under tests/integration/.npm/).
- SseClient: a Server-Sent Events reader over requests (stream=True, read timeout) in a thread.
- Party / party() / allocate() / inbox(): participants with webhooks, an allocation between
  a manufacturer's offer and a hospital's need, the pull inbox followed to its end.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import requests

import impactd_harness as h

HERE = Path(__file__).resolve().parent
NPM_PREFIX = HERE / ".npm"
VERIFY_JS = HERE / "verify_standardwebhooks.js"

GEL = "hydroalcoholic-gel"

# Settings every notification test gives its daemon (short retries, loopback receivers).
NOTIFY_ENV = {
    "IMPACTD_WEBHOOK_ALLOW_PRIVATE": "1",
    "IMPACTD_WEBHOOK_RETRY_SCHEDULE": "0s,1s,1s",
    "IMPACTD_RATE_LIMIT": "0",
}


def notify_env(**overrides: str) -> dict[str, str]:
    env = dict(NOTIFY_ENV)
    env.update(overrides)
    return env


# --------------------------------------------------------------------------------------------
# behaviours: callables (request, attempt) -> Action, attempt counting from 1 per webhook-id

@dataclass
class Action:
    status: int | None = 200          # None: never answer (close when the hold ends)
    hold: float = 0.0                 # seconds to wait before answering (math.inf: until closed)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Behaviour = Callable[["Received", int], Action]


def ok(status: int = 200) -> Behaviour:
    return lambda req, attempt: Action(status)


def always(status: int) -> Behaviour:
    return lambda req, attempt: Action(status, body=b'{"error": "test receiver says no"}')


def fail_then_ok(n: int, status: int = 500) -> Behaviour:
    """The first n attempts of each webhook-id get `status`, later ones 200."""
    return lambda req, attempt: Action(status if attempt <= n else 200)


def hang() -> Behaviour:
    """Never answers: the request is held until the receiver is closed (or the peer leaves)."""
    return lambda req, attempt: Action(None, hold=math.inf)


def hold(seconds: float, status: int = 200) -> Behaviour:
    """Answers `status`, but only after holding the request `seconds`."""
    return lambda req, attempt: Action(status, hold=seconds)


def redirect(location: str, status: int = 307) -> Behaviour:
    return lambda req, attempt: Action(status, headers={"Location": location})


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]           # lowercased names
    body: bytes
    at: float                         # time.monotonic() on arrival
    wall: float                       # time.time() on arrival
    attempt: int                      # 1 + earlier requests with the same webhook-id here
    answered: int | None = None       # status written (None: not answered / write failed)
    answered_at: float | None = None

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def type(self) -> str | None:
        try:
            return self.json().get("type")
        except ValueError:
            return None

    def __repr__(self) -> str:
        return (f"<{self.method} {self.path} id={self.webhook_id} type={self.type} "
                f"attempt={self.attempt} answered={self.answered}>")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "impactd-test-receiver/1"
    timeout = 30  # idle keep-alive connections end after this

    def setup(self) -> None:
        owner: WebhookReceiver = self.server.owner  # type: ignore[attr-defined]
        self._tls_failed = False
        with owner._cond:
            owner.connections += 1
        if owner.tls is not None:
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                self._tls_failed = True
                with owner._cond:
                    owner.tls_failures.append(repr(exc))
                    owner._cond.notify_all()
        super().setup()

    def handle(self) -> None:
        if self._tls_failed:
            self.close_connection = True
            return
        try:
            super().handle()
        except (OSError, ssl.SSLError):
            pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        owner: WebhookReceiver = self.server.owner  # type: ignore[attr-defined]
        body = self._read_body()
        rec = owner._record(self.command, self.path, self.headers, body)
        action = owner._decide(rec)
        if action.hold:
            owner._closed.wait(None if math.isinf(action.hold) else action.hold)
        if action.status is None or (owner._closed.is_set() and math.isinf(action.hold)):
            self.close_connection = True
            return
        try:
            self.send_response(action.status)
            for k, v in action.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(action.body)))
            self.end_headers()
            if action.body:
                self.wfile.write(action.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return
        with owner._cond:
            rec.answered = action.status
            rec.answered_at = time.monotonic()
            owner._cond.notify_all()

    do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _serve

    def log_message(self, *args: Any) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128   # the default (5) drops SYNs when impactd opens 8 connections at once


class WebhookReceiver:
    """A recording HTTP (or HTTPS, with tls=TestCA) server on 127.0.0.1.

    `behaviour` may be changed at any time (receiver.behaviour = ok()); `port` fixes the port
    (to bring a receiver up later on a URL already given to impactd). A subclass may listen
    elsewhere on loopback (host, server_class: "::1" and an AF_INET6 server)."""
    host = "127.0.0.1"
    server_class: type = _Server

    def __init__(self, behaviour: Behaviour | None = None, port: int = 0,
                 tls: "TestCA | None" = None, path: str = "/hook"):
        self.behaviour: Behaviour = behaviour or ok()
        self.requested_port = port
        self.tls = tls
        self.path = path
        self.requests: list[Received] = []
        self.connections = 0
        self.tls_failures: list[str] = []
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle
    def start(self) -> "WebhookReceiver":
        srv = self.server_class((self.host, self.requested_port), _Handler)
        srv.owner = self  # type: ignore[attr-defined]
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls.server_cert), str(self.tls.server_key))
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        self._server = srv
        self._closed.clear()
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> "WebhookReceiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is not None:
            return self._server.server_address[1]
        return self.requested_port

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.path}"

    # -- recording
    def _record(self, method: str, path: str, headers: Any, body: bytes) -> Received:
        hdrs = {k.lower(): v for k, v in headers.items()}
        with self._cond:
            wid = hdrs.get("webhook-id")
            attempt = 1 + sum(1 for r in self.requests if wid is not None and r.webhook_id == wid)
            rec = Received(method, path, hdrs, body, time.monotonic(), time.time(), attempt)
            self.requests.append(rec)
            self._cond.notify_all()
        return rec

    def _decide(self, rec: Received) -> Action:
        try:
            return self.behaviour(rec, rec.attempt)
        except Exception:  # noqa: BLE001 - a broken behaviour must not kill the server
            return Action(500)

    def snapshot(self) -> list[Received]:
        with self._cond:
            return list(self.requests)

    def by_id(self, webhook_id: str) -> list[Received]:
        return [r for r in self.snapshot() if r.webhook_id == webhook_id]

    def delivered(self) -> list[Received]:
        """Requests this receiver answered with a 2xx (first per webhook-id)."""
        seen: dict[str, Received] = {}
        for r in self.snapshot():
            if r.answered is not None and 200 <= r.answered < 300 and r.webhook_id not in seen:
                seen[r.webhook_id] = r
        return list(seen.values())

    def of_type(self, type_: str) -> list[Received]:
        return [r for r in self.snapshot() if r.type == type_]

    # -- waiting
    def wait_for(self, predicate: Callable[[list[Received]], Any], seconds: float,
                 what: str = "a condition on received webhooks") -> Any:
        """Waits until predicate(requests) is truthy; returns its value. Deadline scaled by SLOW."""
        end = h.deadline(seconds)
        with self._cond:
            while True:
                value = predicate(list(self.requests))
                if value:
                    return value
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver {self.url}: timed out after {seconds * h.SLOW:.1f}s waiting for "
                        f"{what}; received: {self.requests!r}; tls failures: {self.tls_failures[-3:]}")
                self._cond.wait(min(left, 0.25))

    def assert_stays(self, predicate: Callable[[list[Received]], Any], seconds: float,
                     what: str = "nothing more to arrive") -> None:
        """Asserts predicate(requests) stays truthy for `seconds` (waking at every request)."""
        end = time.monotonic() + seconds * h.SLOW
        with self._cond:
            while True:
                assert predicate(list(self.requests)), \
                    f"receiver {self.url}: expected {what}; received: {self.requests!r}"
                left = end - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(min(left, 0.25))

    def wait_types(self, types: list[str], seconds: float = 10.0) -> dict[str, Received]:
        """Waits for one 2xx-answered request of each type; returns {type: request}."""
        def got(reqs: list[Received]) -> dict[str, Received] | None:
            found: dict[str, Received] = {}
            for r in reqs:
                if r.answered is not None and 200 <= r.answered < 300 and r.type in types:
                    found.setdefault(r.type, r)
            return found if all(t in found for t in types) else None
        return self.wait_for(got, seconds, f"delivered messages of types {types}")


def wait_until(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
    return h.poll_until(predicate, seconds, what, interval=0.1)


# --------------------------------------------------------------------------------------------
# a throwaway CA (openssl CLI)

@dataclass
class TestCA:
    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def make_test_ca(directory: Path) -> TestCA:
    """A CA and a server certificate for 127.0.0.1 (IP SAN), signed by it; EC P-256."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make the test CA")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        p = subprocess.run([openssl, *args], cwd=d, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed: {p.stderr}")

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "3", "-subj", "/CN=impactd test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "3", "-extfile", "server.ext")
    for key in ("ca.key", "server.key"):
        os.chmod(d / key, 0o600)
    return TestCA(d, d / "ca.pem", d / "ca.key", d / "server.pem", d / "server.key")


# --------------------------------------------------------------------------------------------
# signatures

def split_signatures(header: str) -> dict[str, list[str]]:
    """'v1,AAA v1a,BBB' -> {'v1': ['AAA'], 'v1a': ['BBB']}."""
    out: dict[str, list[str]] = {}
    for part in (header or "").split(" "):
        if not part:
            continue
        version, _, sig = part.partition(",")
        out.setdefault(version, []).append(sig)
    return out


def signed_content(msg_id: str, timestamp: str | int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def v1_signature(secret: str, msg_id: str, timestamp: str | int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return base64.b64encode(hmac.new(key, signed_content(msg_id, timestamp, body),
                                     hashlib.sha256).digest()).decode()


def verify_v1(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks v1, computed independently in Python."""
    want = v1_signature(secret, headers["webhook-id"], headers["webhook-timestamp"], body)
    return any(hmac.compare_digest(want, s)
               for s in split_signatures(headers.get("webhook-signature", "")).get("v1", []))


def verify_ed25519(public_key: bytes, message: bytes, signature_b64: str) -> bool:
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return False
    if len(sig) != 64:
        return False
    try:
        VerifyKey(public_key).verify(message, sig)
        return True
    except BadSignatureError:
        return False


def verify_v1a(public_keys: dict[str, bytes], msg_id: str, timestamp: str | int, body: bytes,
               signature_value: str, kid: str | None = None) -> bool:
    """signature_value: a webhook-signature header or an inbox 'v1a,<b64>' (only v1a counts).
    Tries the key `kid` when given (it must exist), else every key."""
    sigs = split_signatures(signature_value).get("v1a", [])
    if kid is not None:
        if kid not in public_keys:
            return False
        keys = [public_keys[kid]]
    else:
        keys = list(public_keys.values())
    msg = signed_content(msg_id, timestamp, body)
    return any(verify_ed25519(k, msg, s) for k in keys for s in sigs)


def public_keys(daemon: h.Daemon) -> dict[str, bytes]:
    """kid -> raw 32-byte Ed25519 public key, from GET /v1/keys (no token)."""
    r = h.api(daemon).get("/v1/keys")
    assert r.status_code == 200, f"GET /v1/keys: {r.status_code} {r.text[:300]}"
    return {k["kid"]: base64.b64decode(k["public_key"]) for k in r.json()["keys"]}


def check_webhook_signatures(req: Received, secret: str, keys: dict[str, bytes]) -> None:
    """Asserts v1 (HMAC, Python) and v1a (Ed25519, PyNaCl, the key named by webhook-key-id)."""
    hd = req.headers
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert name in hd, f"{name} header missing: {hd}"
    sigs = split_signatures(hd["webhook-signature"])
    assert sigs.get("v1") and sigs.get("v1a"), f"expected v1 and v1a signatures: {hd['webhook-signature']!r}"
    assert verify_v1(secret, hd, req.body), f"v1 HMAC does not verify: {req!r} {hd}"
    assert verify_v1a(keys, hd["webhook-id"], hd["webhook-timestamp"], req.body,
                      hd["webhook-signature"], hd.get("webhook-key-id")), \
        f"v1a Ed25519 does not verify with key {hd.get('webhook-key-id')!r} of {list(keys)}: {hd}"


# --------------------------------------------------------------------------------------------
# the standardwebhooks npm package (node)

_SW_LOCK = threading.Lock()
_SW_STATE: dict[str, Any] = {}


class StandardWebhooks:
    """Runs `node verify_standardwebhooks.js` with {"secret", "headers", "body_b64"} on stdin."""

    def __init__(self, node: str):
        self.node = node

    def verify(self, secret: str, headers: dict[str, str], body: bytes) -> tuple[bool, str]:
        payload = json.dumps({"secret": secret, "headers": headers,
                              "body_b64": base64.b64encode(body).decode()})
        p = subprocess.run([self.node, str(VERIFY_JS)], input=payload, capture_output=True,
                           text=True, timeout=30)
        if p.returncode == 2:
            raise RuntimeError(f"verify_standardwebhooks.js could not run: {p.stderr}")
        return p.returncode == 0, (p.stdout + p.stderr).strip()


def standard_webhooks() -> StandardWebhooks | str:
    """Installs `standardwebhooks` once per session (npm install --prefix tests/integration/.npm).
    Returns the verifier, or a string saying why it is unavailable (npm or node absent)."""
    with _SW_LOCK:
        if "result" in _SW_STATE:
            return _SW_STATE["result"]
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            result: StandardWebhooks | str = (
                "npm/node not found on PATH: the check with the npm package standardwebhooks "
                "is skipped (v1 is still verified in Python)")
        else:
            p = subprocess.run([npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit",
                                "--no-fund", "--loglevel=error", "standardwebhooks"],
                               capture_output=True, text=True, timeout=300)
            installed = (NPM_PREFIX / "node_modules" / "standardwebhooks" / "package.json").exists()
            if p.returncode != 0 and not installed:
                raise RuntimeError(f"npm install standardwebhooks failed ({p.returncode}): "
                                   f"{p.stdout[-2000:]}{p.stderr[-2000:]}")
            result = StandardWebhooks(node)
        _SW_STATE["result"] = result
        return result


# --------------------------------------------------------------------------------------------
# Server-Sent Events

@dataclass
class SseEvent:
    event: str | None
    id: str | None
    data: str

    def item(self) -> dict:
        return json.loads(self.data)


class SseClient:
    """Reads GET <path> as text/event-stream in a thread; events land in .events."""

    def __init__(self, daemon: h.Daemon, token: str | None, path: str = "/v1/notifications/stream",
                 last_event_id: str | None = None, params: dict | None = None,
                 read_timeout: float = 25.0):
        self.url = daemon.url + path
        self.headers = {"Accept": "text/event-stream"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = last_event_id
        self.params = params
        self.read_timeout = read_timeout
        self.events: list[SseEvent] = []
        self.comments = 0
        self.response: requests.Response | None = None
        self.error: BaseException | None = None
        self.ended = False
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="sse-client", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            resp = requests.get(self.url, headers=self.headers, params=self.params, stream=True,
                                timeout=(5 * h.SLOW, self.read_timeout * h.SLOW))
            with self._cond:
                self.response = resp
                self._cond.notify_all()
            if resp.status_code != 200:
                return
            buf = b""
            fields: dict[str, Any] = {"event": None, "id": None, "data": []}
            for chunk in resp.iter_content(chunk_size=1):
                if self._stop:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._line(line.rstrip(b"\r").decode("utf-8"), fields)
        except BaseException as exc:  # noqa: BLE001 - reported by wait_events
            if not self._stop:
                with self._cond:
                    self.error = exc
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def _line(self, line: str, fields: dict[str, Any]) -> None:
        if line == "":
            if fields["data"]:
                ev = SseEvent(fields["event"], fields["id"], "\n".join(fields["data"]))
                with self._cond:
                    self.events.append(ev)
                    self._cond.notify_all()
            fields["event"], fields["data"] = None, []
            fields["id"] = None
            return
        if line.startswith(":"):
            self.comments += 1
            return
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            fields["data"].append(value)
        elif name in ("event", "id"):
            fields[name] = value

    def wait_connected(self, seconds: float = 5.0) -> requests.Response:
        end = h.deadline(seconds)
        with self._cond:
            while self.response is None:
                if self.error is not None or self.ended:
                    raise AssertionError(f"SSE {self.url}: no answer: {self.error!r}")
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"SSE {self.url}: no response headers within {seconds}s")
                self._cond.wait(min(left, 0.25))
            return self.response

    def wait_events(self, n: int, seconds: float = 10.0) -> list[SseEvent]:
        end = h.deadline(seconds)
        with self._cond:
            while len(self.events) < n:
                left = end - time.monotonic()
                if left <= 0 or (self.ended and len(self.events) < n):
                    raise AssertionError(
                        f"SSE {self.url}: expected {n} events within {seconds}s, got "
                        f"{len(self.events)}: {self.events!r} (ended={self.ended}, error={self.error!r})")
                self._cond.wait(min(left, 0.25))
            return list(self.events)

    def close(self) -> None:
        self._stop = True
        resp = self.response
        if resp is not None:
            for getter in (lambda: resp.raw._connection.sock,          # urllib3 1.26
                           lambda: resp.raw._fp.fp.raw._sock):         # http.client
                try:
                    sock = getter()
                    if sock is not None:
                        sock.shutdown(socket.SHUT_RDWR)
                        break
                except Exception:  # noqa: BLE001
                    continue
            try:
                resp.close()
            except Exception:  # noqa: BLE001
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> "SseClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# impactd helpers

class Party:
    """A participant made for a test: .id .token .secret .api .participant."""

    def __init__(self, daemon: h.Daemon, created: h.Created):
        self.daemon = daemon
        self.participant = created.participant
        self.id = created.participant["id"]
        self.token = created.token
        self.secret = created.webhook_secret
        self.api = h.api(daemon, created.token)

    def act(self, alloc_id: str, action: str) -> dict:
        r = self.api.post(f"/v1/allocations/{alloc_id}/{action}")
        assert r.status_code == 200, f"{action} {alloc_id}: {r.status_code} {r.text[:500]}"
        return r.json()

    def inbox(self, limit: int | None = None) -> list[dict]:
        return inbox(self.daemon, self.token, limit=limit)


def party(daemon: h.Daemon, role: str, webhook_url: str | None = None, region: str = "11") -> Party:
    fields: dict[str, Any] = {}
    if webhook_url is not None:
        fields["webhook_url"] = webhook_url
    created = h.create_participant(daemon, role, region, **fields)
    assert isinstance(created.webhook_secret, str) and created.webhook_secret.startswith("whsec_"), \
        f"creation answer lacks a whsec_ webhook_secret: {created.body}"
    return Party(daemon, created)


def offer(m: Party, quantity: int = 100, product: str = GEL, **fields: Any) -> tuple[dict, list[dict]]:
    r = m.api.post("/v1/offers", json={"product": product, "quantity": quantity, **fields})
    assert r.status_code == 201, f"POST /v1/offers: {r.status_code} {r.text[:500]}"
    return r.json()["offer"], r.json()["allocations"]


def need(hp: Party, quantity: int = 100, product: str = GEL, urgency: str = "asap",
         **fields: Any) -> tuple[dict, list[dict]]:
    r = hp.api.post("/v1/needs", json={"product": product, "quantity": quantity,
                                       "urgency": urgency, **fields})
    assert r.status_code == 201, f"POST /v1/needs: {r.status_code} {r.text[:500]}"
    return r.json()["need"], r.json()["allocations"]


def allocate(m: Party, hp: Party, quantity: int = 100, offer_quantity: int | None = None
             ) -> tuple[dict, dict, dict]:
    """The manufacturer offers, the hospital needs `quantity` (same region): one proposed
    allocation. Returns (offer, need, allocation)."""
    o, _ = offer(m, offer_quantity if offer_quantity is not None else quantity)
    n, allocs = need(hp, quantity)
    assert len(allocs) == 1 and allocs[0]["offer_id"] == o["id"], allocs
    return o, n, allocs[0]


def inbox(daemon: h.Daemon, token: str, limit: int | None = None, after: str | None = None,
          max_pages: int = 200) -> list[dict]:
    """Every inbox item after `after`, following next_cursor to the end."""
    api = h.api(daemon, token)
    items: list[dict] = []
    cursor = after
    for _ in range(max_pages):
        params: dict[str, Any] = {}
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["after"] = cursor
        r = api.get("/v1/notifications", params=params)
        assert r.status_code == 200, f"GET /v1/notifications: {r.status_code} {r.text[:500]}"
        body = r.json()
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if cursor is None:
            return items
    raise AssertionError("GET /v1/notifications: pagination does not end")


def inbox_types(items: list[dict]) -> list[str]:
    return [json.loads(i["body"])["type"] for i in items]


def dead_letters(daemon: h.Daemon) -> list[dict]:
    r = daemon.admin().get("/v1/admin/dead-letters", params={"limit": 500})
    assert r.status_code == 200, f"GET /v1/admin/dead-letters: {r.status_code} {r.text[:500]}"
    return r.json()["items"]
