#!/usr/bin/env bash
# Two `lshub serve` replicas over one PostgreSQL behind nginx (round robin, Debian's package):
# scripts/replicas/check.py shows that they agree on ETags, idempotency keys, the change feed,
# webhook delivery (once each), revocations and rate limits (within the documented bound).
# Creates its own database, two API clients and a viewer with the lshub binary; drops the
# database and stops everything on exit.
#
#   scripts/replicas.sh                      # LSHUB_BIN, or the debug build
#
# Knobs: LSHUB_BIN (default ${CARGO_TARGET_DIR:-/var/tmp/lshub-target}/debug/lshub),
# LSHUB_REPLICAS_VENV (default /var/tmp/lshub-standardwebhooks-venv: Standard Webhooks' library
# verifies the deliveries), LSHUB_REPLICAS_DB (default lshub_replicas), PG (admin URL, default
# postgres://postgres@127.0.0.1:5432). Needs nginx (installed with apt-get when missing).
# Exit: 0 all good, 1 a check failed, 2 set-up failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

BIN=${LSHUB_BIN:-${CARGO_TARGET_DIR:-/var/tmp/lshub-target}/debug/lshub}
VENV=${LSHUB_REPLICAS_VENV:-/var/tmp/lshub-standardwebhooks-venv}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=${LSHUB_REPLICAS_DB:-lshub_replicas}
# Small enough that the rate-limit check ends quickly, large enough for the other checks.
BURST=200

NAME=replicas
# shellcheck source=scripts/client-check.sh
source scripts/client-check.sh

if ! command -v nginx >/dev/null 2>&1; then
    log "installing nginx"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null ||
        die "cannot install nginx"
fi
ensure_venv "standardwebhooks, requests" standardwebhooks==1.1.0 requests
fresh_database
api_client admin
ADMIN_ID=$CLIENT_ID ADMIN_SECRET=$CLIENT_SECRET
api_client viewer
PASSWORD="replica check $(head -c 12 /dev/urandom | base64)"
VIEWER=viewer@replicas.lshub.example
printf '%s' "$PASSWORD" | "$BIN" user create "$VIEWER" --role viewer --password-stdin >/dev/null ||
    die "user create failed"

SETTINGS=(LSHUB_WEBHOOK_ALLOW_PRIVATE_TARGETS=true LSHUB_RATE_LIMIT_BURST=$BURST
    LSHUB_RATE_LIMIT_PER_MINUTE=60)
serve "${SETTINGS[@]}"
A=$PORT
serve "${SETTINGS[@]}"
B=$PORT
LB=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# nginx in the foreground of its own prefix, as a plain user would run it: no system config.
NGINX_DIR=$(mktemp -d)
cat >"$NGINX_DIR/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $NGINX_DIR/body;
    proxy_temp_path $NGINX_DIR/proxy;
    fastcgi_temp_path $NGINX_DIR/fastcgi;
    uwsgi_temp_path $NGINX_DIR/uwsgi;
    scgi_temp_path $NGINX_DIR/scgi;
    upstream lshub { server 127.0.0.1:$A; server 127.0.0.1:$B; keepalive 16; }
    server {
        listen 127.0.0.1:$LB;
        location / {
            proxy_pass http://lshub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
EOF
nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" &
PIDS+=($!)
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$LB/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$LB/healthz" >/dev/null || { cat "$NGINX_DIR/error.log"; die "nginx did not answer"; }
log "replicas on ports $A and $B, nginx on $LB"

"$VENV/bin/python" scripts/replicas/check.py "http://127.0.0.1:$LB" "http://127.0.0.1:$A" \
    "http://127.0.0.1:$B" "$ADMIN_ID" "$ADMIN_SECRET" "$CLIENT_ID" "$CLIENT_SECRET" "$VIEWER" \
    "$PASSWORD" "$BURST" || exit 1
log "replicas: every check passed"
