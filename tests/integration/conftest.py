"""Fixtures of the impactd black-box suite. Helpers live in impactd_harness.py.

Fixtures
- redis_factory(appendonly=False) -> RedisServer  (function scope; all stopped at teardown)
- redis_server -> RedisServer, started; .stop() / .start() / .restart() keep the same port
- impactd(redis=None, env=None, args=None, wait="ready", seconds=10) -> Daemon
      (function scope factory; redis=None starts a fresh redis; wait: "ready" | "healthz" | None)
- module_redis, module_daemon: one redis + impactd shared by a test module (read-mostly tests
  that create their own participants)
- admin_api -> Api(module_daemon, bootstrap admin token)
- api -> the api(daemon, token) function
- make_participant(role, region=..., daemon=None, **fields) -> (participant, token)
      (a tuple with .token_id, .webhook_secret, .body too; daemon defaults to module_daemon)

A failing test gets, in its report, the stderr of every impactd alive during it. Soft
OpenAPI/problem-shape violations seen by Api calls fail the test at teardown.
"""
from __future__ import annotations

import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean (test modules, helpers)

import pytest  # noqa: E402

import impactd_harness as h  # noqa: E402

LIVE_DAEMONS: list[h.Daemon] = []
_LOG_SECTION_MAX = 30000


def _log_tail(text: str, limit: int = _LOG_SECTION_MAX) -> str:
    return text if len(text) <= limit else "...(truncated)...\n" + text[-limit:]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for d in LIVE_DAEMONS:
        d.log_marks[item.nodeid] = d.log_size()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for d in LIVE_DAEMONS:
            text = d.log_since(d.log_marks.get(item.nodeid, 0))
            rep.sections.append((f"impactd 127.0.0.1:{d.port} stderr (since the test started)",
                                 _log_tail(text) or "(empty)"))


def pytest_report_header(config):
    exists = "exists" if h.IMPACTD_BIN.exists() else "MISSING"
    return [f"impactd binary: {h.IMPACTD_BIN} ({exists}); valgrind: {h.VALGRIND}; "
            f"openapi: {h.OPENAPI_FILE if h.OPENAPI_FILE.exists() else 'missing (validation skipped)'}"]


def _require_binary():
    if not h.IMPACTD_BIN.exists():
        pytest.fail(f"impactd binary not found at {h.IMPACTD_BIN} (build it, or set IMPACTD_BIN)",
                    pytrace=False)


@pytest.fixture(autouse=True)
def _soft_checks():
    h.SOFT_VIOLATIONS.clear()
    yield
    found = list(dict.fromkeys(h.SOFT_VIOLATIONS))
    h.SOFT_VIOLATIONS.clear()
    if found:
        pytest.fail("answers that break src/openapi.json or the problem+json rules:\n  "
                    + "\n  ".join(found[:30]), pytrace=False)


@pytest.fixture(autouse=True)
def _crash_guard():
    """Attributes a crash of a shared (module-scoped) impactd to the test during which it died,
    and respawns it before the next test so one crash does not fail the whole module."""
    for d in LIVE_DAEMONS:
        if d.shared and d.proc is not None and not d.alive() and not d.stopped_by_test:
            d.respawn()
    yield
    dead = [d for d in LIVE_DAEMONS
            if d.shared and d.proc is not None and not d.alive() and not d.stopped_by_test]
    if dead:
        msgs = []
        for d in dead:
            d.death_reported = True
            msgs.append(f"shared impactd on port {d.port} died during this test with exit code "
                        f"{d.proc.returncode}; log tail:\n{_log_tail(d.log(), 8000)}")
        pytest.fail("\n\n".join(msgs), pytrace=False)


class _Procs:
    """Owns the processes started for one scope and stops them at teardown."""

    def __init__(self, tmp_factory, label: str):
        self.tmp_factory = tmp_factory
        self.label = label
        self.redises: list[h.RedisServer] = []
        self.daemons: list[h.Daemon] = []

    def redis(self, appendonly: bool = False) -> h.RedisServer:
        r = h.RedisServer(self.tmp_factory.mktemp(f"redis-{self.label}"), appendonly=appendonly)
        self.redises.append(r)
        return r.start()

    def daemon(self, redis: h.RedisServer | str | None = None, env=None, args=None,
               wait: str | None = "ready", seconds: float = 10.0) -> h.Daemon:
        _require_binary()
        if redis is None:
            redis = self.redis()
        url = redis.url if isinstance(redis, h.RedisServer) else str(redis)
        d = h.Daemon(self.tmp_factory.mktemp(f"impactd-{self.label}"), url, env=env, args=args)
        self.daemons.append(d)
        LIVE_DAEMONS.append(d)
        d.spawn()
        if wait:
            d.wait_healthy(seconds)
        if wait == "ready":
            d.wait_ready(seconds)
        return d

    def close(self) -> list[str]:
        complaints = []
        for d in self.daemons:
            try:
                msg = d.teardown()
            except Exception as exc:  # noqa: BLE001
                msg = f"impactd on port {d.port}: teardown failed: {exc!r}"
            if msg:
                complaints.append(msg + "\nlog tail:\n" + _log_tail(d.log(), 8000))
            password = urllib.parse.urlsplit(d.redis_url).password if "@" in d.redis_url else None
            leaked = h.leaked_secrets(d.log(), (d.admin_token, password or ""))
            if leaked:
                complaints.append(f"impactd on port {d.port} wrote {len(leaked)} secret(s) into its "
                                  f"log (tokens, webhook secrets or passwords), e.g. {leaked[0][:12]}...")
            if d in LIVE_DAEMONS:
                LIVE_DAEMONS.remove(d)
        for r in self.redises:
            try:
                r.stop()
            except Exception:  # noqa: BLE001
                pass
        return complaints


@pytest.fixture
def _procs(tmp_path_factory):
    procs = _Procs(tmp_path_factory, "fn")
    yield procs
    complaints = procs.close()
    if complaints:
        pytest.fail("\n\n".join(complaints), pytrace=False)


@pytest.fixture(scope="module")
def _module_procs(tmp_path_factory, request):
    procs = _Procs(tmp_path_factory, "mod")
    yield procs
    complaints = procs.close()
    if complaints:
        msg = "\n\n".join(complaints)
        if request.session.shouldstop or request.session.shouldfail:
            # Torn down at session end (-x, maxfail): failing here would be an internal error.
            sys.stderr.write("\n" + msg + "\n")
        else:
            pytest.fail(msg, pytrace=False)


@pytest.fixture
def redis_factory(_procs):
    return _procs.redis


@pytest.fixture
def redis_server(_procs) -> h.RedisServer:
    return _procs.redis()


@pytest.fixture
def impactd(_procs):
    return _procs.daemon


@pytest.fixture(scope="module")
def module_redis(_module_procs) -> h.RedisServer:
    return _module_procs.redis()


@pytest.fixture(scope="module")
def module_daemon(_module_procs, module_redis) -> h.Daemon:
    d = _module_procs.daemon(module_redis)
    d.shared = True
    return d


@pytest.fixture
def admin_api(module_daemon) -> h.Api:
    return h.Api(module_daemon, module_daemon.admin_token)


@pytest.fixture
def api():
    return h.api


@pytest.fixture
def make_participant(request):
    def make(role: str, region=h._MISSING, daemon: h.Daemon | None = None, **fields):
        d = daemon if daemon is not None else request.getfixturevalue("module_daemon")
        return h.create_participant(d, role, region, **fields)
    return make


# --------------------------------------------------------------------------------------------
# Signed notifications (test_webhooks.py, test_notifications.py, test_delivery_failures.py);
# helpers in webhook_receiver.py.

@pytest.fixture
def webhook_receiver():
    """webhook_receiver(behaviour=None, port=0, tls=None, path="/hook") -> a started
    webhook_receiver.WebhookReceiver; every receiver made is closed at teardown."""
    import webhook_receiver as wr
    made = []

    def make(behaviour=None, port: int = 0, tls=None, path: str = "/hook", start: bool = True):
        r = wr.WebhookReceiver(behaviour, port=port, tls=tls, path=path)
        made.append(r)
        return r.start() if start else r

    yield make
    for r in made:
        r.close()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    """A throwaway CA and a server certificate for 127.0.0.1 (webhook_receiver.TestCA)."""
    import webhook_receiver as wr
    return wr.make_test_ca(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture(scope="session")
def standard_webhooks():
    """The npm package standardwebhooks, installed once per session under
    tests/integration/.npm (webhook_receiver.StandardWebhooks); skips when npm is absent."""
    import webhook_receiver as wr
    sw = wr.standard_webhooks()
    if isinstance(sw, str):
        pytest.skip(sw)
    return sw
