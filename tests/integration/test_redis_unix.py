"""impactd reaches Redis over a unix socket too (unix:///path), with a database number."""
import subprocess
import tempfile

import impactd_harness as h
from impactd_harness import poll_until


def test_unix_socket_with_database(impactd):
    # a short path: unix socket paths are limited to ~100 bytes
    with tempfile.TemporaryDirectory(prefix="impr") as tmp:
        sock = f"{tmp}/r.sock"
        proc = subprocess.Popen([h.REDIS_SERVER, "--port", "0", "--unixsocket", sock,
                                 "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                                 "--dir", tmp], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            poll_until(lambda: subprocess.run(["redis-cli", "-s", sock, "ping"],
                                              capture_output=True, text=True).stdout.strip()
                       == "PONG", 10, "redis on a unix socket")
            d = impactd(redis=f"unix://{sock}?db=3")
            api = h.api(d, d.admin_token)
            r = api.post("/v1/participants", {"role": "hospital", "name": "CHU", "region": "32"})
            assert r.status_code == 201, r.text
            pid = r.json()["participant"]["id"]
            keys = subprocess.run(["redis-cli", "-s", sock, "-n", "3", "--scan"],
                                  capture_output=True, text=True).stdout.split()
            assert any(pid in k for k in keys), keys
            keys0 = subprocess.run(["redis-cli", "-s", sock, "-n", "0", "--scan"],
                                   capture_output=True, text=True).stdout.split()
            assert not any(pid in k for k in keys0), "written to database 0"
        finally:
            proc.kill()
            proc.wait(10)
