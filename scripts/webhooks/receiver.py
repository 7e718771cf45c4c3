"""A webhook receiver for lshub in a few lines: Standard Webhooks' own library checks the
signature and the timestamp; the webhook-id deduplicates (deliveries are at least once).

    pip install standardwebhooks
    LSHUB_WEBHOOK_SECRET=whsec_... python receiver.py    # listens on $PORT (default 8000)
"""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

hook = Webhook(os.environ["LSHUB_WEBHOOK_SECRET"])  # the secret the subscription showed once
seen = set()  # keep it in your database in real life


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            event = hook.verify(body, dict(self.headers))  # a CloudEvent, signed and fresh
        except WebhookVerificationError:
            self.send_response(400)
            self.end_headers()
            return
        if self.headers["webhook-id"] not in seen:
            seen.add(self.headers["webhook-id"])
            # e.g. org.lshub.company.updated <id> {"version": 3, "changed": ["name"], ...}
            print(event["type"], event["subject"], json.dumps(event["data"]), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver).serve_forever()
