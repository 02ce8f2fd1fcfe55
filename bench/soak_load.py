#!/usr/bin/env python3
"""bench/soak_load.py — the mixed load of bench/soak, through the public API only.

  soak_load.py URL ADMIN_TOKEN SECONDS THREADS OUT

Sets up 18 manufacturer/hospital pairs (one per region) with webhooks to a local sink, then
runs THREADS workers for SECONDS, each going round the whole life of a supply: a manufacturer
offers, a hospital needs (matched at once), the manufacturer confirms and ships, the hospital
receives (or, one round in five, the manufacturer declines and the hospital cancels); in
between, reads: its lists, its inbox, GET /v1/me, the ministry's stock feed and event feed.
Every answer is checked (status, problem shape on errors); any unexpected one is counted and
the first few printed. Writes one line per second to OUT: elapsed s, requests, errors.
Standard library only (urllib), keep-alive connections (http.client)."""
from __future__ import annotations

import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

URL, ADMIN, SECONDS, THREADS, OUT = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
HOST = urllib.parse.urlsplit(URL)
REGIONS = ["01", "02", "03", "04", "06", "11", "24", "27", "28", "32", "44", "52", "53", "75",
           "76", "84", "93", "94"]
PRODUCTS = ["hydroalcoholic-gel", "hand-rub-solution", "ethanol-96", "glycerol-98", "bottle-500ml"]

lock = threading.Lock()
count = {"requests": 0, "errors": 0}
shown = []


class Client:
    def __init__(self, token: str | None):
        self.token = token
        self.conn = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=30)

    def call(self, method: str, path: str, body=None, want=(200, 201, 204)):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=30)
                if attempt == 2:
                    raise
        ok = resp.status in want
        if ok and resp.status >= 400:
            ok = resp.getheader("Content-Type", "").startswith("application/problem+json")
        with lock:
            count["requests"] += 1
            if not ok:
                count["errors"] += 1
                if len(shown) < 5:
                    shown.append(f"{method} {path} -> {resp.status} {raw[:200]!r}")
                    print("soak: unexpected:", shown[-1], file=sys.stderr)
        ctype = resp.getheader("Content-Type", "")
        return resp.status, (json.loads(raw) if raw and "json" in ctype else None)


def participant(admin: Client, role: str, region: str | None, hook: str | None) -> str:
    body = {"role": role, "name": f"soak {role} {region}"}
    if region:
        body["region"] = region
    if hook:
        body["webhook_url"] = hook
    st, a = admin.call("POST", "/v1/participants", body)
    assert st == 201, (st, a)
    return a["token"]


def worker(i: int, pairs, ministry: str, stop: float) -> None:
    rnd = random.Random(i)
    m_tok, h_tok = pairs[i % len(pairs)]
    m, hp, mi = Client(m_tok), Client(h_tok), Client(ministry)
    n = 0
    while time.monotonic() < stop:
        n += 1
        product = rnd.choice(PRODUCTS)
        qty = rnd.randint(1, 50)
        st, o = m.call("POST", "/v1/offers", {"product": product if product != "hydroalcoholic-gel" or n % 2
                                              else "gel-production-capacity", "quantity": qty,
                                              "delivery_scope": "region"}, want=(201,))
        buyer = hp if product in ("hydroalcoholic-gel", "hand-rub-solution") else m
        st, nd = buyer.call("POST", "/v1/needs", {"product": product, "quantity": qty,
                                                  "urgency": rnd.choice(["stat", "asap", "urgent", "routine"])},
                            want=(201,))
        allocs = (nd or {}).get("allocations") or []
        for a in allocs:
            aid = a["id"]
            if n % 5 == 0:
                m.call("POST", f"/v1/allocations/{aid}/decline", want=(200,))
            else:
                m.call("POST", f"/v1/allocations/{aid}/confirm", want=(200,))
                m.call("POST", f"/v1/allocations/{aid}/ship", want=(200,))
                buyer.call("POST", f"/v1/allocations/{aid}/receive", want=(200,))
        if nd and nd.get("need", {}).get("status") == "open":
            buyer.call("DELETE", f"/v1/needs/{nd['need']['id']}", want=(200, 409))
        if o and o.get("offer", {}).get("remaining", 0) > 0:
            m.call("DELETE", f"/v1/offers/{o['offer']['id']}", want=(200, 409))
        # reads
        hp.call("GET", "/v1/notifications?limit=20")
        m.call("GET", "/v1/allocations?limit=20")
        hp.call("GET", "/v1/me")
        if n % 10 == 0:
            mi.call("GET", "/v1/feeds/stock")
            mi.call("GET", "/v1/feeds/events?limit=100")


def main() -> None:
    admin = Client(ADMIN)
    hook = None
    if len(sys.argv) > 6:
        hook = sys.argv[6]
    pairs = [(participant(admin, "manufacturer", r, hook), participant(admin, "hospital", r, hook))
             for r in REGIONS]
    ministry = participant(admin, "ministry", None, None)
    start = time.monotonic()
    stop = start + SECONDS
    threads = [threading.Thread(target=worker, args=(i, pairs, ministry, stop), daemon=True)
               for i in range(THREADS)]
    for t in threads:
        t.start()
    with open(OUT, "w") as out:
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            with lock:
                out.write(f"{time.monotonic() - start:.0f} {count['requests']} {count['errors']}\n")
            out.flush()
    print(f"soak: requests={count['requests']} errors={count['errors']}")
    sys.exit(1 if count["errors"] else 0)


if __name__ == "__main__":
    main()
