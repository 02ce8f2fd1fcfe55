"""Process and HTTP harness for the impactd black-box integration suite.

Everything here is plain Python (no fixtures): conftest.py wraps it into fixtures, and test
modules import the helpers they need (`from impactd_harness import ...`).

- RedisServer: a real Debian redis-server on a free loopback port, stoppable and restartable on
  the same port (optionally with appendonly yes, so data survives a restart).
- Daemon: one impactd process (optionally under valgrind), stderr captured to a file.
- api(daemon, token) -> Api: a thin requests wrapper whose every answer is checked against
  src/openapi.json and the problem+json rules ("soft" checks, reported at test teardown).
- check(resp, method, template): the same check, but hard (raises AssertionError at once).
- assert_problem(resp, status, field=None): RFC 9457 shape of an error answer.
- parse_prometheus(text): a strict-enough Prometheus 0.0.4 text parser.
- RespClient / redis_dump_all: a raw RESP client to look at what impactd stored.
"""
from __future__ import annotations

import ctypes
import json
import json as _json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
IMPACTD_BIN = Path(os.environ.get("IMPACTD_BIN") or REPO / "build" / "impactd")
CONFIG_FILE = Path(os.environ.get("IMPACTD_TEST_CONFIG") or REPO / "config" / "impactd.conf")
CATALOG_DIR = REPO / "config"
# The document the daemon serves: src/openapi.json with the resource schemas written in from
# the descriptors (src/schema.c); `impactd openapi` prints it.
OPENAPI_FILE = REPO / "src" / "openapi.json"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

VALGRIND = os.environ.get("IMPACTD_VALGRIND", "") not in ("", "0")
# Every deadline in the suite is multiplied by this factor (valgrind is ~20-50x slower).
SLOW = float(os.environ.get("IMPACTD_TEST_SLOWDOWN", "10" if VALGRIND else "1"))
# Hard limit on the life of any spawned process (seconds).
PROC_HARD_LIMIT = float(os.environ.get("IMPACTD_TEST_PROC_LIMIT", "1800" if VALGRIND else "300"))
OPENAPI_CHECK = os.environ.get("IMPACTD_OPENAPI_CHECK", "1") not in ("0", "")

HTTP_TIMEOUT = 5.0 * SLOW
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")

with open(CATALOG_DIR / "products.json", encoding="utf-8") as _f:
    CATALOG_PRODUCTS: list[dict] = json.load(_f)["products"]
with open(CATALOG_DIR / "regions.json", encoding="utf-8") as _f:
    CATALOG_REGIONS: list[dict] = json.load(_f)["regions"]


# --------------------------------------------------------------------------------------------
# small utilities

def deadline(seconds: float) -> float:
    """An absolute monotonic deadline `seconds` (scaled by SLOW) from now."""
    return time.monotonic() + seconds * SLOW


def poll_until(fn: Callable[[], Any], seconds: float, what: str, interval: float = 0.05) -> Any:
    """Calls fn until it returns a truthy value or the (scaled) deadline passes.

    Exceptions raised by fn count as "not yet". Returns the truthy value; raises
    AssertionError naming `what` and the last value/exception on timeout."""
    end = deadline(seconds)
    last: Any = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - polling: any failure means "not yet"
            last = exc
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {seconds * SLOW:.1f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pdeathsig() -> None:
    """In the child: get SIGKILL when the test runner dies, so nothing outlives the suite."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


class _Watchdog:
    """Kills a process after a hard time limit."""

    def __init__(self, proc: subprocess.Popen, limit: float, name: str):
        self.fired = False
        self._proc = proc
        self._timer = threading.Timer(limit, self._fire)
        self._timer.daemon = True
        self._timer.name = f"watchdog-{name}"
        self._timer.start()

    def _fire(self) -> None:
        if self._proc.poll() is None:
            self.fired = True
            self._proc.kill()

    def cancel(self) -> None:
        self._timer.cancel()


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The runner's environment without any IMPACTD_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPACTD_")}
    env.update(extra or {})
    return env


def impactd_command(args: Iterable[str]) -> list[str]:
    cmd = [str(IMPACTD_BIN), *args]
    if VALGRIND:
        cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full", *cmd]
    return cmd


def run_impactd(args: Iterable[str], env: dict[str, str], timeout: float = 10.0,
                cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Runs impactd to completion (CLI tests), with a hard timeout."""
    return subprocess.run(impactd_command(args), cwd=cwd, env=clean_env(env), capture_output=True,
                          text=True, timeout=timeout * SLOW, preexec_fn=_pdeathsig)


# --------------------------------------------------------------------------------------------
# Redis

# Every token, webhook secret and password the suite has seen (issue 10: none may ever be in a
# log line). Api.request remembers those in answers; daemons and tests add their own. Each
# daemon's log is searched for them when it stops (conftest.py), so every test checks it.
SECRETS: set[str] = set()
_SECRET_SHAPES = re.compile(r"imp_[A-Za-z0-9_-]{43}|whsec_[A-Za-z0-9+/]{43}=|adm_[A-Za-z0-9_-]{32}")


def remember_secret(s: str | None) -> None:
    if s:
        SECRETS.add(s)


def leaked_secrets(text: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The remembered secrets (and `extra`) that occur in text."""
    found = {m for m in _SECRET_SHAPES.findall(text) if m in SECRETS}
    found |= {s for s in extra if s and s in text}
    return sorted(found)


class RedisError(Exception):
    pass


class RespClient:
    """Minimal RESP2 client over a raw socket (enough for PING/SCAN/TYPE/GET...)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 2.0):
        self.sock = socket.create_connection((host, port), timeout=timeout * SLOW)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RespClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def cmd(self, *args: Any) -> Any:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError(f"unexpected RESP reply {line!r}")


def _flatten(value: Any) -> list[bytes]:
    if value is None:
        return []
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, (str, int)):
        return [str(value).encode()]
    out: list[bytes] = []
    for v in value:
        out.extend(_flatten(v))
    return out


def redis_dump_all(port: int) -> dict[bytes, list[bytes]]:
    """Every key in every way we can read it: {key: [raw value parts..., DUMP bytes]}."""
    result: dict[bytes, list[bytes]] = {}
    with RespClient(port) as r:
        dbs = [0]
        for db in dbs:
            r.cmd("SELECT", db)
            cursor = b"0"
            keys: list[bytes] = []
            while True:
                cursor, batch = r.cmd("SCAN", cursor, "COUNT", 1000)
                keys.extend(batch)
                if cursor == b"0":
                    break
            for key in keys:
                kind = r.cmd("TYPE", key)
                try:
                    if kind == "string":
                        val = r.cmd("GET", key)
                    elif kind == "hash":
                        val = r.cmd("HGETALL", key)
                    elif kind == "list":
                        val = r.cmd("LRANGE", key, 0, -1)
                    elif kind == "set":
                        val = r.cmd("SMEMBERS", key)
                    elif kind == "zset":
                        val = r.cmd("ZRANGE", key, 0, -1, "WITHSCORES")
                    elif kind == "stream":
                        val = r.cmd("XRANGE", key, "-", "+")
                    else:
                        val = None
                except RedisError:
                    val = None  # key vanished or changed type between SCAN and read
                parts = _flatten(val)
                try:
                    dump = r.cmd("DUMP", key)
                    if dump:
                        parts.append(dump)
                except RedisError:
                    pass
                result[key] = parts
    return result


def redis_asleep(redis: "RedisServer") -> bool:
    """True when Redis does not answer a PING within 100 ms."""
    with RespClient(redis.port, timeout=0.1) as c:
        try:
            c.cmd("PING")
            return False
        except OSError:
            return True


def redis_sleep(redis: "RedisServer", seconds: float) -> tuple[threading.Thread, dict]:
    """DEBUG SLEEP from a connection of its own, in a thread (Redis runs nothing else
    meanwhile; what arrives is run when it wakes); `when` gets the start and end times."""
    when: dict[str, float] = {}

    def run():
        with RespClient(redis.port, timeout=seconds + 30) as c:
            when["start"] = time.monotonic()
            c.cmd("DEBUG", "SLEEP", str(seconds))
            when["end"] = time.monotonic()
    t = threading.Thread(target=run, name="redis-sleep", daemon=True)
    t.start()
    return t, when


class RedisServer:
    """A redis-server on a fixed loopback port; stop() and start() keep the port and the dir."""

    def __init__(self, workdir: Path, appendonly: bool = False, port: int | None = None):
        self.port = port or free_port()
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None
        self._watchdog: _Watchdog | None = None
        self.logfile = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, seconds: float = 10.0) -> "RedisServer":
        assert self.proc is None or self.proc.poll() is not None, "redis already running"
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
               "--save", "", "--appendonly", "yes" if self.appendonly else "no",
               "--appendfsync", "always", "--protected-mode", "no", "--daemonize", "no",
               "--enable-debug-command", "local",
               "--logfile", ""]
        log = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                                         preexec_fn=_pdeathsig)
        finally:
            log.close()
        self._watchdog = _Watchdog(self.proc, PROC_HARD_LIMIT, f"redis-{self.port}")
        poll_until(self._pong, seconds, f"redis on port {self.port} to answer PING")
        return self

    def _pong(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {self.log()[-2000:]}")
        with RespClient(self.port, timeout=0.5) as r:
            return r.cmd("PING") == "PONG"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, seconds: float = 10.0) -> int:
        """SIGTERM (redis syncs its AOF then exits); waits; SIGKILL after the deadline."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=seconds * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._watchdog:
            self._watchdog.cancel()
        return self.proc.returncode

    def restart(self) -> "RedisServer":
        self.stop()
        return self.start()

    def client(self) -> RespClient:
        return RespClient(self.port)

    def cmd(self, *args: Any) -> Any:
        with RespClient(self.port) as r:
            return r.cmd(*args)

    def dump_all(self) -> dict[bytes, list[bytes]]:
        return redis_dump_all(self.port)

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# --------------------------------------------------------------------------------------------
# impactd

class DaemonStartError(AssertionError):
    pass


class Daemon:
    """One impactd process. Use Daemon(...).start(); stop() sends SIGTERM and returns the code."""

    def __init__(self, workdir: Path, redis_url: str, env: dict[str, str] | None = None,
                 args: Iterable[str] | None = None, port: int | None = None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = "adm_" + secrets.token_urlsafe(24)
        self.redis_url = redis_url
        self.env: dict[str, str] = {
            "IMPACTD_LISTEN": f"127.0.0.1:{self.port}",
            "IMPACTD_REDIS_URL": redis_url,
            "IMPACTD_ADMIN_TOKEN": self.admin_token,
            "IMPACTD_DATA_DIR": str(self.data_dir),
            "IMPACTD_RATE_LIMIT": "0",
            "IMPACTD_AUTH_FAIL_RATE": "0",    # suites make many 401s from one address
            "IMPACTD_LOG_LEVEL": "debug",
            "IMPACTD_KEY_PREFIX": "impact:",
        }
        self.env.update(env or {})
        if "IMPACTD_ADMIN_TOKEN" in self.env:
            self.admin_token = self.env["IMPACTD_ADMIN_TOKEN"]
        self.args = list(args) if args is not None else ["--config", str(CONFIG_FILE)]
        self.logfile = self.dir / f"impactd-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self._watchdog: _Watchdog | None = None
        self.expect_clean_exit = True   # teardown: SIGTERM must give exit code 0
        self.stopped_by_test = False
        self.death_reported = False     # a crash already failed a test: do not report it twice
        self.shared = False             # module-scoped: respawned after a crash
        self.log_marks: dict[str, int] = {}

    # -- life cycle
    def spawn(self) -> "Daemon":
        log = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen(impactd_command(self.args), cwd=REPO, env=clean_env(self.env),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=_pdeathsig)
        finally:
            log.close()
        self._watchdog = _Watchdog(self.proc, PROC_HARD_LIMIT, f"impactd-{self.port}")
        return self

    def start(self, wait: str | None = "ready", seconds: float = 10.0) -> "Daemon":
        """Spawns and waits for /healthz 200 (wait="healthz"), also /readyz 200 (wait="ready")."""
        self.spawn()
        if wait:
            self.wait_healthy(seconds)
        if wait == "ready":
            self.wait_ready(seconds)
        return self

    def respawn(self, seconds: float = 10.0) -> "Daemon":
        """Starts the process again on the same port with the same settings (after a crash)."""
        assert not self.alive()
        self._cancel_watchdog()
        with open(self.logfile, "ab") as f:
            f.write(b"\n===== harness: respawning impactd after it died =====\n")
        self.stopped_by_test = False
        self.death_reported = False
        return self.start("ready", seconds)

    def _get_status(self, path: str) -> int:
        if self.proc is not None and self.proc.poll() is not None:
            raise DaemonStartError(f"impactd exited with code {self.proc.returncode} while waiting "
                                   f"for {path}; log tail:\n{self.log()[-4000:]}")
        return requests.get(self.url + path, timeout=1.0 * SLOW).status_code

    def wait_healthy(self, seconds: float = 10.0) -> None:
        self._wait_status("/healthz", 200, seconds)

    def wait_ready(self, seconds: float = 10.0) -> None:
        self._wait_status("/readyz", 200, seconds)

    def _wait_status(self, path: str, status: int, seconds: float) -> None:
        end = deadline(seconds)
        last: Any = None
        while True:
            try:
                last = self._get_status(path)
                if last == status:
                    return
            except DaemonStartError:
                raise
            except requests.RequestException as exc:
                last = exc
            if time.monotonic() >= end:
                raise DaemonStartError(f"impactd: GET {path} did not answer {status} within "
                                       f"{seconds * SLOW:.0f}s (last: {last!r}); log tail:\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, seconds: float = 10.0) -> int | None:
        """Waits for the process to exit by itself; returns its code, or None on timeout."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=seconds * SLOW)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, seconds: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        """Sends `sig` (SIGTERM) and waits; returns the exit code, None if it would not exit
        within the deadline (it is then SIGKILLed)."""
        self.stopped_by_test = True
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=seconds * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._cancel_watchdog()
                return None
        self._cancel_watchdog()
        return self.proc.returncode

    def kill(self) -> int:
        self.stopped_by_test = True
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._cancel_watchdog()
        return self.proc.returncode

    def _cancel_watchdog(self) -> None:
        if self._watchdog:
            self._watchdog.cancel()

    def teardown(self) -> str | None:
        """Stops the daemon; returns a complaint if it had died or did not exit 0 on SIGTERM."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self._cancel_watchdog()
            if self.stopped_by_test or self.death_reported or not self.expect_clean_exit:
                return None
            return (f"impactd on port {self.port} died during the test with exit code "
                    f"{self.proc.returncode}" + (" (watchdog)" if self._watchdog and self._watchdog.fired else ""))
        rc = self.stop()
        if not self.expect_clean_exit:
            return None
        if rc is None:
            return f"impactd on port {self.port} did not exit within {15 * SLOW:.0f}s of SIGTERM"
        if rc != 0:
            what = "valgrind reported errors (exit 99)" if (VALGRIND and rc == 99) else f"exit code {rc}"
            return f"impactd on port {self.port} answered SIGTERM with {what}"
        return None

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.logfile.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.logfile, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def admin(self) -> "Api":
        return Api(self, self.admin_token)


# --------------------------------------------------------------------------------------------
# OpenAPI conformance

class _OpenApi:
    def __init__(self) -> None:
        self.loaded = False
        self.doc: dict | None = None
        self.missing_reason: str | None = None
        self._warned = False
        self._validators: dict[str, Any] = {}
        self._templates: list[tuple[re.Pattern, str]] = []
        self._prefixes: list[str] = []

    def load(self) -> dict | None:
        if self.loaded:
            return self.doc
        self.loaded = True
        if not IMPACTD_BIN.exists():
            self.missing_reason = f"{IMPACTD_BIN} does not exist: OpenAPI validation skipped"
            return None
        try:
            import jsonschema  # noqa: F401
        except ImportError:
            self.missing_reason = "python3-jsonschema is not installed: OpenAPI validation skipped"
            return None
        out = subprocess.run([str(IMPACTD_BIN), "openapi"], capture_output=True, timeout=30,
                             check=True)
        self.doc = json.loads(out.stdout)
        for tpl in self.doc.get("paths", {}):
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tpl)) + "$"
            self._templates.append((re.compile(rx), tpl))
        # Templates with fewer parameters first: /v1/me beats /v1/{x}.
        self._templates.sort(key=lambda t: (t[1].count("{"), -len(t[1])))
        for server in self.doc.get("servers", []) or []:
            p = urlparse(server.get("url", "")).path.rstrip("/")
            if p:
                self._prefixes.append(p)
        return self.doc

    def warn_missing(self) -> None:
        if not self._warned and self.missing_reason:
            self._warned = True
            warnings.warn(self.missing_reason)

    def template_for(self, path: str) -> str | None:
        path = path.split("?", 1)[0]
        candidates = [path] + [path[len(p):] for p in self._prefixes if path.startswith(p + "/")]
        for cand in candidates:
            for rx, tpl in self._templates:
                if rx.match(cand):
                    return tpl
        return None

    def _deref(self, obj: Any) -> Any:
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj and seen < 20:
            ref = obj["$ref"]
            assert ref.startswith("#/"), f"only local refs supported, got {ref}"
            node: Any = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
            seen += 1
        return obj

    def _validator(self, schema: dict) -> Any:
        from jsonschema import Draft202012Validator
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                    "allOf": [schema], "components": self.doc.get("components", {})}
            v = Draft202012Validator(root)
            self._validators[key] = v
        return v

    def problems(self, resp: requests.Response, method: str, template: str | None) -> list[str]:
        """Violations of the OpenAPI document by this answer (empty list when fine)."""
        doc = self.load()
        if doc is None:
            self.warn_missing()
            return []
        method = method.lower()
        path = urlparse(resp.request.url).path if resp.request is not None else ""
        if template is None:
            template = self.template_for(path)
            if template is None:
                return []  # not a documented path (e.g. a 404 probe)
        item = doc["paths"].get(template)
        if item is None:
            return [f"openapi: no path {template!r} in {OPENAPI_FILE.name}"]
        item = self._deref(item)
        op = item.get(method)
        if op is None:
            if method == "head" and "get" in item:
                op = item["get"]
            elif resp.status_code == 405 or method in ("options", "head"):
                return []  # the method is not part of the API; 405/OPTIONS checked elsewhere
            else:
                return [f"openapi: {method.upper()} {template} is not documented, "
                        f"yet it answered {resp.status_code}"]
        where = f"{method.upper()} {template} -> {resp.status_code}"
        responses = op.get("responses", {})
        code = str(resp.status_code)
        spec = responses.get(code) or responses.get(code[0] + "XX") or responses.get(code[0] + "xx") \
            or responses.get("default")
        if spec is None:
            return [f"openapi: {where}: status not documented (documented: {sorted(responses)})"]
        spec = self._deref(spec)
        out: list[str] = []
        for hname, hspec in (spec.get("headers") or {}).items():
            hspec = self._deref(hspec)
            if hname not in resp.headers:
                if hspec.get("required"):
                    out.append(f"openapi: {where}: required header {hname} missing")
                continue
            value = resp.headers[hname]
            hschema = self._deref(hspec.get("schema") or {})
            if hschema.get("type") == "integer":
                if not re.fullmatch(r"-?\d+", value.strip()):
                    out.append(f"openapi: {where}: header {hname}: {value!r} is not an integer")
                    continue
                if "minimum" in hschema and int(value) < hschema["minimum"]:
                    out.append(f"openapi: {where}: header {hname}: {value} < {hschema['minimum']}")
            if hschema.get("pattern") and not re.search(hschema["pattern"], value):
                out.append(f"openapi: {where}: header {hname}: {value!r} does not match {hschema['pattern']}")
        if method == "head" or resp.status_code in (204, 304):
            return out
        content = spec.get("content") or {}
        ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if not content:
            if resp.content:
                out.append(f"openapi: {where}: no content documented but a {ctype} body was sent")
            return out
        media = content.get(ctype)
        if media is None:
            wild = [k for k in content if k.endswith("/*") and ctype.startswith(k[:-1])] or \
                   [k for k in content if k == "*/*"]
            media = content[wild[0]] if wild else None
        if media is None:
            out.append(f"openapi: {where}: Content-Type {ctype!r} not among documented {sorted(content)}")
            return out
        schema = media.get("schema")
        if schema is None or not (ctype.endswith("json")):
            return out
        try:
            body = resp.json()
        except ValueError as exc:
            out.append(f"openapi: {where}: body is not JSON ({exc})")
            return out
        errors = sorted(self._validator(schema).iter_errors(body), key=lambda e: list(e.path))
        for err in errors[:5]:
            loc = "/".join(str(p) for p in err.path) or "(root)"
            out.append(f"openapi: {where}: body at {loc}: {err.message[:300]}")
        return out


OPENAPI = _OpenApi()

# Soft violations found by Api's automatic checks during the current test; conftest fails the
# test at teardown when any were recorded (so the behavioural assertion is reported first).
SOFT_VIOLATIONS: list[str] = []

PROBLEM_JSON = "application/problem+json"
ABOUT_BLANK_STATUSES = {401, 403, 404, 405, 413, 415, 429, 500, 503}
OWN_PROBLEM_TYPES = {
    400: {"tag:impactd,2026:problem:malformed-json", "tag:impactd,2026:problem:bad-request"},
    409: {"tag:impactd,2026:problem:conflict"},
    422: {"tag:impactd,2026:problem:validation", "tag:impactd,2026:problem:idempotency-key-reuse"},
}


def problem_shape_errors(resp: requests.Response) -> list[str]:
    """RFC 9457 + docs/api.md rules for an error answer; empty list when fine."""
    where = f"{resp.request.method} {urlparse(resp.request.url).path} -> {resp.status_code}"
    if resp.request.method == "HEAD":
        return []
    ctype = resp.headers.get("Content-Type", "")
    out = []
    if ctype.split(";", 1)[0].strip().lower() != PROBLEM_JSON:
        out.append(f"{where}: Content-Type is {ctype!r}, not {PROBLEM_JSON}")
    try:
        body = resp.json()
    except ValueError:
        return out + [f"{where}: body is not JSON: {resp.text[:200]!r}"]
    if not isinstance(body, dict):
        return out + [f"{where}: problem body is not an object: {body!r}"]
    for key in ("type", "title", "detail"):
        if not isinstance(body.get(key), str) or not body.get(key):
            out.append(f"{where}: problem member {key!r} missing or not a non-empty string: {body!r}")
    if body.get("status") != resp.status_code or isinstance(body.get("status"), bool):
        out.append(f"{where}: problem status {body.get('status')!r} != HTTP status {resp.status_code}")
    if "errors" in body:
        errs = body["errors"]
        if not isinstance(errs, list) or not all(
                isinstance(e, dict) and isinstance(e.get("field"), str) and isinstance(e.get("message"), str)
                for e in errs):
            out.append(f"{where}: problem 'errors' is not a list of {{field, message}}: {errs!r}")
    return out


def assert_problem(resp: requests.Response, status: int, field: str | None = None,
                   ptype: str | None = None) -> dict:
    """Asserts an RFC 9457 answer with this status (and an errors[] entry for `field`)."""
    assert resp.status_code == status, (
        f"expected {status}, got {resp.status_code} for {resp.request.method} {resp.request.url}: "
        f"{resp.text[:500]}")
    errs = problem_shape_errors(resp)
    assert not errs, "\n".join(errs)
    body = resp.json()
    if ptype is not None:
        assert body["type"] == ptype, body
    elif status in ABOUT_BLANK_STATUSES:
        assert body["type"] == "about:blank", f"docs/api.md: type of a {status} is about:blank: {body}"
    elif status in OWN_PROBLEM_TYPES:
        assert body["type"] in OWN_PROBLEM_TYPES[status], f"unexpected problem type for {status}: {body}"
    if field is not None:
        fields = [e.get("field") for e in body.get("errors") or []]
        assert field in fields, f"expected errors[].field {field!r}, got {fields}: {body}"
    return body


def check(resp: requests.Response, method: str | None = None, template: str | None = None) -> requests.Response:
    """Hard check of one answer against src/openapi.json (+ problem shape for >= 400).

    Skips the OpenAPI part (not the problem part) when src/openapi.json does not exist."""
    method = method or resp.request.method
    errs = []
    if resp.status_code >= 400:
        errs += problem_shape_errors(resp)
    errs += OPENAPI.problems(resp, method, template)
    assert not errs, "\n".join(errs)
    return resp


# --------------------------------------------------------------------------------------------
# HTTP

_MISSING = object()


class Api:
    """A thin requests wrapper bound to one daemon and (optionally) one bearer token.

    Every answer is checked softly (OpenAPI + problem shape); pass check=False to skip."""

    def __init__(self, daemon: Daemon | str, token: str | None = None):
        self.base = daemon.url if isinstance(daemon, Daemon) else str(daemon)
        self.token = token

    def with_token(self, token: str | None) -> "Api":
        return Api(self.base, token)

    def request(self, method: str, path: str, *, json: Any = _MISSING, data: Any = None,
                headers: dict | None = None, params: dict | None = None, check: bool = True,
                template: str | None = None, timeout: float | None = None,
                **kwargs: Any) -> requests.Response:
        hdrs = dict(headers or {})
        if self.token is not None and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if json is not _MISSING:
            data = _json.dumps(json).encode()
            hdrs.setdefault("Content-Type", "application/json")
        resp = requests.request(method, self.base + path, data=data, headers=hdrs, params=params,
                                timeout=timeout or HTTP_TIMEOUT, allow_redirects=False, **kwargs)
        if check and OPENAPI_CHECK:
            errs: list[str] = []
            if resp.status_code >= 400:
                errs += problem_shape_errors(resp)
            try:
                errs += OPENAPI.problems(resp, method, template)
            except Exception as exc:  # noqa: BLE001 - a broken document is a finding, not a crash
                errs.append(f"openapi: could not check {method} {path}: {exc!r}")
            SOFT_VIOLATIONS.extend(errs)
        if resp.status_code in (200, 201) and "json" in resp.headers.get("Content-Type", ""):
            try:
                body = resp.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                for k in ("token", "webhook_secret"):
                    if isinstance(body.get(k), str):
                        remember_secret(body[k])
        return resp

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw: Any) -> requests.Response:
        return self.request("HEAD", path, **kw)

    def options(self, path: str, **kw: Any) -> requests.Response:
        return self.request("OPTIONS", path, **kw)

    def post(self, path: str, json: Any = _MISSING, **kw: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = _MISSING, **kw: Any) -> requests.Response:
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path: str, json: Any = _MISSING, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)


def api(daemon: Daemon | str, token: str | None = None) -> Api:
    return Api(daemon, token)


class Created(tuple):
    """(participant, token), with .participant .token .token_id .webhook_secret .body .response."""

    def __new__(cls, body: dict, response: requests.Response) -> "Created":
        self = super().__new__(cls, (body["participant"], body["token"]))
        self.body = body
        self.response = response
        self.participant = body["participant"]
        self.token = body["token"]
        self.token_id = body.get("token_id")
        self.webhook_secret = body.get("webhook_secret")
        return self


def mutate_token(token: str, n: int = 8) -> str:
    """A token of the same shape (prefix, length, alphabet) as `token` but another secret:
    each of the last n characters is replaced by the next character of the token's own
    alphabet, so a daemon that checks the format before asking Redis still has to ask."""
    alphabet = sorted(set(token[4:]))
    assert len(alphabet) > 1, token
    nxt = {c: alphabet[(i + 1) % len(alphabet)] for i, c in enumerate(alphabet)}
    return token[:-n] + "".join(nxt[c] for c in token[-n:])


DEFAULT_REGION = "11"


def create_participant(daemon: Daemon, role: str, region: Any = _MISSING, *, name: str | None = None,
                       token: str | None = None, **fields: Any) -> Created:
    """POSTs /v1/participants (as the bootstrap admin unless `token`), asserts 201."""
    body: dict[str, Any] = {"role": role, "name": name or f"{role} {secrets.token_hex(4)}"}
    if region is _MISSING:
        region = DEFAULT_REGION if role in ("manufacturer", "hospital") else None
    if region is not None:
        body["region"] = region
    body.update(fields)
    resp = Api(daemon, token or daemon.admin_token).post("/v1/participants", json=body)
    assert resp.status_code == 201, f"creating {body}: {resp.status_code} {resp.text[:500]}"
    return Created(resp.json(), resp)


# --------------------------------------------------------------------------------------------
# Prometheus text format 0.0.4

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
METRIC_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class PromParseError(AssertionError):
    pass


def _parse_labels(s: str, pos: int, lineno: int) -> tuple[dict[str, str], int]:
    labels: dict[str, str] = {}
    assert s[pos] == "{"
    pos += 1
    while True:
        while pos < len(s) and s[pos] in " \t":
            pos += 1
        if pos < len(s) and s[pos] == "}":
            return labels, pos + 1
        m = _LABEL_NAME.match(s, pos)
        if not m:
            raise PromParseError(f"line {lineno}: bad label name at {s[pos:]!r}")
        name = m.group(0)
        pos = m.end()
        if s[pos:pos + 2] != '="':
            raise PromParseError(f"line {lineno}: expected =\" after label {name}")
        pos += 2
        val = []
        while True:
            if pos >= len(s):
                raise PromParseError(f"line {lineno}: unterminated label value")
            c = s[pos]
            if c == "\\":
                nxt = s[pos + 1:pos + 2]
                if nxt not in ('"', "\\", "n"):
                    raise PromParseError(f"line {lineno}: bad escape \\{nxt} in label value")
                val.append("\n" if nxt == "n" else nxt)
                pos += 2
            elif c == '"':
                pos += 1
                break
            else:
                val.append(c)
                pos += 1
        if name in labels:
            raise PromParseError(f"line {lineno}: duplicate label {name}")
        labels[name] = "".join(val)
        if pos < len(s) and s[pos] == ",":
            pos += 1
        elif pos < len(s) and s[pos] == "}":
            return labels, pos + 1
        else:
            raise PromParseError(f"line {lineno}: expected , or }} after label {name}")


def parse_prometheus(text: str) -> dict[str, dict]:
    """Parses the 0.0.4 text format and checks it strictly enough:

    every sample belongs to a family declared with # TYPE before its samples, a family's lines
    are contiguous, counters are named *_total with values >= 0, histograms have _bucket (with
    `le`, non-decreasing, ending with +Inf == _count), _sum and _count; no duplicate series.
    Returns {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    families: dict[str, dict] = {}
    finished: set[str] = set()
    current: str | None = None
    seen_series: set[tuple] = set()
    if text and not text.endswith("\n"):
        raise PromParseError("exposition does not end with a newline")

    def family_of(name: str) -> str | None:
        if name in families and families[name]["type"] not in ("histogram", "summary"):
            return name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                fam = families.get(base)
                if fam and (fam["type"] == "histogram" or (fam["type"] == "summary" and suffix != "_bucket")):
                    return base
        if name in families:  # summary quantile samples
            return name
        return None

    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not _METRIC_NAME.fullmatch(name):
                    raise PromParseError(f"line {lineno}: bad metric name {name!r}")
                fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
                if name in finished:
                    raise PromParseError(f"line {lineno}: {parts[1]} for {name} after its group ended")
                if current is not None and current != name:
                    finished.add(current)
                current = name
                if parts[1] == "TYPE":
                    if fam["type"] is not None:
                        raise PromParseError(f"line {lineno}: second TYPE for {name}")
                    if fam["samples"]:
                        raise PromParseError(f"line {lineno}: TYPE for {name} after its samples")
                    mtype = parts[3].strip() if len(parts) > 3 else ""
                    if mtype not in METRIC_TYPES:
                        raise PromParseError(f"line {lineno}: unknown metric type {mtype!r}")
                    fam["type"] = mtype
                else:
                    fam["help"] = parts[3] if len(parts) > 3 else ""
            continue
        m = _METRIC_NAME.match(line)
        if not m:
            raise PromParseError(f"line {lineno}: cannot parse sample {line!r}")
        name, pos = m.group(0), m.end()
        labels: dict[str, str] = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _parse_labels(line, pos, lineno)
        rest = line[pos:].split()
        if pos >= len(line) or line[pos] not in " \t" or not 1 <= len(rest) <= 2:
            raise PromParseError(f"line {lineno}: expected 'value [timestamp]' in {line!r}")
        try:
            value = float(rest[0])
        except ValueError:
            raise PromParseError(f"line {lineno}: bad value {rest[0]!r}") from None
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise PromParseError(f"line {lineno}: bad timestamp {rest[1]!r}")
        fam_name = family_of(name)
        if fam_name is None or families[fam_name]["type"] is None:
            raise PromParseError(f"line {lineno}: sample {name} has no # TYPE family before it")
        if fam_name in finished:
            raise PromParseError(f"line {lineno}: sample of {fam_name} outside its contiguous group")
        if current is not None and current != fam_name:
            finished.add(current)
        current = fam_name
        series = (name, tuple(sorted(labels.items())))
        if series in seen_series:
            raise PromParseError(f"line {lineno}: duplicate series {name}{labels}")
        seen_series.add(series)
        families[fam_name]["samples"].append((name, labels, value))

    for fname, fam in families.items():
        if fam["type"] is None:
            raise PromParseError(f"family {fname} has HELP but no TYPE")
        if fam["type"] == "counter":
            if not fname.endswith("_total"):
                raise PromParseError(f"counter {fname} does not end in _total")
            for name, labels, value in fam["samples"]:
                if not value >= 0:
                    raise PromParseError(f"counter {name}{labels} is {value}")
        if fam["type"] == "histogram":
            _check_histogram(fname, fam["samples"])
    return families


def _check_histogram(fname: str, samples: list) -> None:
    groups: dict[tuple, dict] = {}
    for name, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name == fname + "_bucket":
            if "le" not in labels:
                raise PromParseError(f"{name}{labels} has no le label")
            le = float(labels["le"])
            g["buckets"].append((le, value))
        elif name == fname + "_sum":
            g["sum"] = value
        elif name == fname + "_count":
            g["count"] = value
        else:
            raise PromParseError(f"histogram {fname} has a stray sample {name}")
    for key, g in groups.items():
        if not g["buckets"] or g["count"] is None or g["sum"] is None:
            raise PromParseError(f"histogram {fname}{dict(key)} lacks _bucket, _sum or _count")
        les = [le for le, _ in g["buckets"]]
        if les != sorted(les) or les[-1] != float("inf"):
            raise PromParseError(f"histogram {fname}{dict(key)}: buckets not ascending to +Inf: {les}")
        counts = [c for _, c in g["buckets"]]
        if any(b > a for a, b in zip(counts[1:], counts[:-1])):
            raise PromParseError(f"histogram {fname}{dict(key)}: bucket counts decrease: {counts}")
        if counts[-1] != g["count"]:
            raise PromParseError(f"histogram {fname}{dict(key)}: +Inf bucket {counts[-1]} != _count {g['count']}")
