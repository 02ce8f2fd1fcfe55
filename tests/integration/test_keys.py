"""The platform's signing keys: created on first start (0600), refused when others may read
them, rotated by `impactd rotate-key`, reloaded on SIGHUP, all listed by /v1/keys."""
import base64
import os
import signal
import stat

import impactd_harness as h
from impactd_harness import poll_until, run_impactd


def keys_of(d):
    r = h.api(d).get("/v1/keys")
    assert r.status_code == 200, r.text
    return r.json()["keys"]


def test_key_file_is_created_private_and_listed(impactd):
    d = impactd()
    path = d.data_dir / "signing.key"
    assert path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    keys = keys_of(d)
    assert len(keys) == 1 and keys[0]["current"] is True and keys[0]["alg"] == "Ed25519"
    assert len(base64.b64decode(keys[0]["public_key"])) == 32
    assert keys[0]["public_key_whpk"] == "whpk_" + keys[0]["public_key"]


def test_rotate_key_then_sighup_lists_both(impactd):
    d = impactd()
    old = keys_of(d)[0]["kid"]
    env = {"IMPACTD_DATA_DIR": str(d.data_dir)}
    done = run_impactd(["--config", str(h.CONFIG_FILE), "rotate-key"], env)
    assert done.returncode == 0, done.stderr
    os.kill(d.proc.pid, signal.SIGHUP)
    keys = poll_until(lambda: (lambda k: k if len(k) == 2 else None)(keys_of(d)), 10,
                      "two keys after SIGHUP")
    assert keys[0]["current"] and keys[0]["kid"] != old and keys[0]["kid"] in done.stdout
    assert keys[1]["kid"] == old and keys[1]["current"] is False


def test_key_file_readable_by_others_stops_start_up(impactd, tmp_path):
    d = impactd()
    path = d.data_dir / "signing.key"
    d.stop()
    os.chmod(path, 0o644)
    env = {"IMPACTD_DATA_DIR": str(d.data_dir), "IMPACTD_REDIS_URL": d.redis_url,
           "IMPACTD_LISTEN": f"127.0.0.1:{h.free_port()}"}
    done = run_impactd(["--config", str(h.CONFIG_FILE)], env)
    assert done.returncode != 0
    assert str(path) in done.stderr, done.stderr
