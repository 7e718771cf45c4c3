"""Two lshub replicas over one PostgreSQL, behind nginx: do they behave as one service?

    python check.py LB REPLICA_A REPLICA_B ADMIN_ID ADMIN_SECRET OTHER_ID OTHER_SECRET VIEWER PASSWORD BURST

(two API clients, an admin one for the checks and another for the rate limit alone; a viewer's
e-mail and password; the replicas' `LSHUB_RATE_LIMIT_BURST`)

Checks, each across the replicas (requests aimed at one replica directly, or through the
load balancer, which alternates between them):
- ETags: the same record and list carry the same ETag from either replica; a tag one replica
  gave is a 304 at the other; after a write through one, the other's tag has moved.
- Idempotency keys: a create under a key sent to one replica and replayed at the other gets
  the stored answer (`Idempotent-Replayed: true`), and one record exists.
- The change feed: both replicas serve the same events in the same order.
- Webhook delivery: every event is delivered once, although both replicas run delivery loops
  (a counting receiver here verifies each delivery with Standard Webhooks' library).
- Revocations: a user disabled through one replica is refused by the other within a second.
- Rate limits: through the balancer, a principal gets at most replicas × its budget before
  429, the README's documented bound (a full answer costs 4 points).
"""
import collections
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

(lb, replica_a, replica_b, client_id, client_secret, other_id, other_secret, viewer, password,
 burst) = sys.argv[1:11]
burst = int(burst)
FULL_COST = 4  # README "Rate limits": a full answer's price in points
replicas = [replica_a, replica_b]
failures = []


def check(ok, message):
    print(("ok    " if ok else "FAIL  ") + message, flush=True)
    if not ok:
        failures.append(message)


def token_for(base, **form):
    res = requests.post(f"{base}/api/v1/auth/token", data=form, timeout=10)
    res.raise_for_status()
    return res.json()["access_token"]


admin = requests.Session()
admin.headers["Authorization"] = "Bearer " + token_for(
    lb, grant_type="client_credentials", client_id=client_id, client_secret=client_secret
)


def company(name):
    return {"name": name, "sector": "biotech"}


# --- ETags --------------------------------------------------------------------------------
created = admin.post(f"{lb}/api/v1/companies", json=company(f"Replica Check {uuid.uuid4().hex[:8]}"), timeout=10)
check(created.status_code == 201, f"create through the balancer: {created.status_code}")
record = created.json()
path = f"/api/v1/companies/{record['id']}"
tags = [admin.get(f"{r}{path}", timeout=10).headers.get("ETag") for r in replicas]
check(tags[0] is not None and tags[0] == tags[1], f"one record, one ETag from both replicas: {tags}")
again = admin.get(f"{replica_b}{path}", headers={"If-None-Match": tags[0]}, timeout=10)
check(again.status_code == 304, f"replica A's tag is a 304 at replica B: {again.status_code}")
# A list's tag is the change counter, which another replica's write moves within one listener
# poll (200 ms, the README's staleness bound): give it a few.
deadline = time.time() + 2
while True:
    lists = [admin.get(f"{r}/api/v1/companies?limit=5", timeout=10).headers.get("ETag") for r in replicas]
    if lists[0] == lists[1] or time.time() > deadline:
        break
    time.sleep(0.05)
check(lists[0] == lists[1], f"one list, one ETag from both replicas (within the listener's bound): {lists}")
patched = admin.patch(
    f"{replica_a}{path}",
    json={"description": "changed through replica A"},
    headers={"If-Match": tags[0], "Content-Type": "application/merge-patch+json"},
    timeout=10,
)
check(patched.status_code == 200, f"PATCH through replica A: {patched.status_code} {patched.text[:200]}")
# Another replica's write reaches this one's memory within one listener poll (README).
deadline = time.time() + 2
while time.time() < deadline:
    moved = admin.get(f"{replica_b}{path}", headers={"If-None-Match": tags[0]}, timeout=10)
    if moved.status_code == 200:
        break
    time.sleep(0.05)
check(moved.status_code == 200 and moved.headers.get("ETag") == patched.headers.get("ETag"),
      f"after A's write, B answers the new version: {moved.status_code} {moved.headers.get('ETag')}")

# --- Idempotency keys -----------------------------------------------------------------------
key = str(uuid.uuid4())
body = company(f"Idempotent Replica {key[:8]}")
first = admin.post(f"{replica_a}/api/v1/companies", json=body, headers={"Idempotency-Key": key}, timeout=10)
second = admin.post(f"{replica_b}/api/v1/companies", json=body, headers={"Idempotency-Key": key}, timeout=10)
check(first.status_code == 201 and second.status_code == 201, f"create, then replay at the other replica: {first.status_code}, {second.status_code}")
check(second.headers.get("Idempotent-Replayed") == "true" and second.json()["id"] == first.json()["id"],
      "the replay is the stored answer, one record")

# --- The change feed --------------------------------------------------------------------------
def feed(base):
    res = admin.get(f"{base}/api/v1/changes?limit=200", timeout=10)
    res.raise_for_status()
    return [(e["seq"], e["entity"], e["id"], e["action"], e["version"]) for e in res.json()["data"]]


time.sleep(0.5)
feeds = [feed(r) for r in replicas]
check(len(feeds[0]) > 0 and feeds[0] == feeds[1], f"one feed: {len(feeds[0])} and {len(feeds[1])} events, equal: {feeds[0] == feeds[1]}")

# --- Webhook delivery, once each ------------------------------------------------------------------
deliveries = collections.Counter()
lock = threading.Lock()
hook_holder = {}


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            hook_holder["hook"].verify(data, dict(self.headers))
        except (WebhookVerificationError, KeyError):
            self.send_response(400)
            self.end_headers()
            return
        with lock:
            deliveries[self.headers["webhook-id"]] += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
sub = admin.post(
    f"{lb}/api/v1/webhooks",
    json={"url": f"http://127.0.0.1:{server.server_address[1]}/", "events": ["company.created"]},
    timeout=10,
)
check(sub.status_code == 201, f"webhook subscription: {sub.status_code} {sub.text[:200]}")
hook_holder["hook"] = Webhook(sub.json()["secret"])
writes = 12
for i in range(writes):
    r = admin.post(f"{lb}/api/v1/companies", json=company(f"Hooked {uuid.uuid4().hex[:8]} {i}"), timeout=10)
    if r.status_code != 201:
        check(False, f"write {i} through the balancer: {r.status_code} {r.text[:200]}")
deadline = time.time() + 30
while time.time() < deadline and len(deliveries) < writes:
    time.sleep(0.2)
time.sleep(2)  # a duplicate from the other replica would arrive within its next poll
with lock:
    counts = dict(deliveries)
check(len(counts) == writes and all(n == 1 for n in counts.values()),
      f"{writes} events, each delivered once by one of the two replicas: {sorted(counts.values())}")

# --- Revocations -------------------------------------------------------------------------------
viewer_token = token_for(lb, grant_type="password", username=viewer, password=password)
as_viewer = {"Authorization": f"Bearer {viewer_token}"}
check(requests.get(f"{replica_b}/api/v1/me", headers=as_viewer, timeout=10).status_code == 200,
      "the viewer's token works at replica B")
users = admin.get(f"{replica_a}/api/v1/users?limit=100", timeout=10).json()["data"]
user = next(u for u in users if u["email"] == viewer)
etag = admin.get(f"{replica_a}/api/v1/users/{user['id']}", timeout=10).headers["ETag"]
disabled = admin.patch(
    f"{replica_a}/api/v1/users/{user['id']}",
    json={"disabled": True},
    headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
    timeout=10,
)
check(disabled.status_code == 200, f"disable the viewer through replica A: {disabled.status_code}")
started = time.time()
refused = None
while time.time() - started < 1.0:
    if requests.get(f"{replica_b}/api/v1/me", headers=as_viewer, timeout=10).status_code == 401:
        refused = time.time() - started
        break
    time.sleep(0.02)
check(refused is not None, f"replica B refuses the disabled viewer's token within a second ({refused})")

# --- Rate limits, within the documented bound ----------------------------------------------------
limited = requests.Session()
limited.headers["Authorization"] = "Bearer " + token_for(
    lb, grant_type="client_credentials", client_id=other_id, client_secret=other_secret
)
admitted = 0
per_replica = burst // FULL_COST
for _ in range(4 * len(replicas) * per_replica):
    if limited.get(f"{lb}/api/v1/goals", timeout=10).status_code != 429:
        admitted += 1
# Each replica admits its budget's worth, plus one answer on credit (the rest of a price is
# owed after the answer); refill over the few seconds of the loop is a point a second.
bound = len(replicas) * (per_replica + 1) + 5
check(per_replica <= admitted <= bound,
      f"through the balancer one principal got {admitted} full answers: within [{per_replica}, {bound}]"
      f" ({len(replicas)} replicas x {per_replica} + credit)")

server.shutdown()
if failures:
    print(f"\n{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("\nthe two replicas behave as one service")
