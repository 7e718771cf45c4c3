"""Runs receiver.py (the README's receiver, unmodified) against a real lshub: a subscription,
a change delivered and verified by Standard Webhooks' Python library, a rotated secret
verified during its grace period, and a wrong secret refused (lshub records the 400).

    python check.py BASE_URL CLIENT_ID CLIENT_SECRET     # an admin API client
"""
import os
import socket
import subprocess
import sys
import time

import requests

base, client_id, client_secret = sys.argv[1:4]
here = os.path.dirname(os.path.abspath(__file__))


def fail(message):
    print(f"standardwebhooks check failed: {message}", file=sys.stderr)
    sys.exit(1)


token = requests.post(
    f"{base}/api/v1/auth/token",
    data={"grant_type": "client_credentials"},
    auth=(client_id, client_secret),
    timeout=10,
).json()["access_token"]
api = requests.Session()
api.headers["Authorization"] = f"Bearer {token}"

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]

created = api.post(
    f"{base}/api/v1/webhooks",
    json={"url": f"http://127.0.0.1:{port}/", "events": ["company.created", "company.updated"]},
    timeout=10,
)
if created.status_code != 201:
    fail(f"create webhook: {created.status_code} {created.text}")
webhook = created.json()


def receiver(secret):
    env = dict(os.environ, LSHUB_WEBHOOK_SECRET=secret, PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, os.path.join(here, "receiver.py")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    fail("receiver.py does not listen")


def next_event(proc):
    line = proc.stdout.readline()
    if not line:
        fail("receiver.py printed nothing")
    kind, subject, _data = line.strip().split(" ", 2)
    return kind, subject


def newest_delivery(predicate):
    deadline = time.time() + 30
    while time.time() < deadline:
        page = api.get(f"{base}/api/v1/webhooks/{webhook['id']}/deliveries", timeout=10).json()
        if page["data"] and predicate(page["data"][0]):
            return page["data"][0]
        time.sleep(0.2)
    fail("no such delivery")


proc = receiver(webhook["secret"])
company = api.post(
    f"{base}/api/v1/companies",
    json={"name": "Webhook Receiver Check", "sector": "biotech",
          "address": {"city": "Milano", "province": "MI"}},
    timeout=10,
)
if company.status_code != 201:
    fail(f"create company: {company.status_code} {company.text}")
company = company.json()
kind, subject = next_event(proc)
if (kind, subject) != ("org.lshub.company.created", company["id"]):
    fail(f"got {kind} {subject}")
print("standardwebhooks verified a delivery")

# A rotation with a grace period: the receiver switches to the new secret when it likes.
rotated = api.post(
    f"{base}/api/v1/webhooks/{webhook['id']}/rotate-secret",
    json={"grace_seconds": 300},
    headers={"If-Match": f"\"{webhook['version']}\""},
    timeout=10,
).json()
proc.terminate()
proc.wait()
proc = receiver(rotated["secret"])
patched = api.patch(
    f"{base}/api/v1/companies/{company['id']}",
    json={"description": "after the rotation"},
    headers={"If-Match": f"\"{company['version']}\"", "Content-Type": "application/merge-patch+json"},
    timeout=10,
)
if patched.status_code != 200:
    fail(f"patch company: {patched.status_code} {patched.text}")
kind, _ = next_event(proc)
if kind != "org.lshub.company.updated":
    fail(f"got {kind}")
print("standardwebhooks verified a delivery signed with the new and the old secret")
proc.terminate()
proc.wait()

# A receiver with another secret refuses; lshub records the refusal and retries later.
proc = receiver("whsec_" + "A" * 43 + "=")
api.patch(
    f"{base}/api/v1/companies/{company['id']}",
    json={"description": "a forged secret"},
    headers={"If-Match": f"\"{patched.json()['version']}\"", "Content-Type": "application/merge-patch+json"},
    timeout=10,
)
refused = newest_delivery(lambda d: d["status_code"] == 400)
if refused["outcome"] != "failed":
    fail(f"refused delivery: {refused}")
proc.terminate()
print("standardwebhooks refused a delivery signed with another secret")
