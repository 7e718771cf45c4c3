#!/usr/bin/env bash
# Runs Standard Webhooks' Python library, unmodified, as the receiver of a real lshub's
# deliveries (scripts/webhooks/check.py drives scripts/webhooks/receiver.py, the README's
# receiver). Creates its own database and an admin API client with the lshub binary; drops
# the database afterwards.
#
#   scripts/standardwebhooks.sh               # LSHUB_BIN, or the debug build
#
# Knobs: LSHUB_BIN (default ${CARGO_TARGET_DIR:-/var/tmp/lshub-target}/debug/lshub),
# LSHUB_SW_VENV (default /var/tmp/lshub-standardwebhooks-venv), LSHUB_SW_PACKAGE (default
# standardwebhooks==1.1.0), LSHUB_SW_DB (default lshub_standardwebhooks), PG (admin URL,
# default postgres://postgres@127.0.0.1:5432). Exit: 0 all good, 1 a check failed, 2 set-up
# failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

BIN=${LSHUB_BIN:-${CARGO_TARGET_DIR:-/var/tmp/lshub-target}/debug/lshub}
VENV=${LSHUB_SW_VENV:-/var/tmp/lshub-standardwebhooks-venv}
PACKAGE=${LSHUB_SW_PACKAGE:-standardwebhooks==1.1.0}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=${LSHUB_SW_DB:-lshub_standardwebhooks}

NAME=standardwebhooks
# shellcheck source=scripts/client-check.sh
source scripts/client-check.sh

ensure_venv "standardwebhooks, requests" "$PACKAGE" requests
fresh_database
api_client admin
# Private targets: the receiver is on this machine. Retries a second apart, so the refused
# delivery at the end is recorded without waiting for the production schedule.
serve LSHUB_WEBHOOK_ALLOW_PRIVATE_TARGETS=true LSHUB_WEBHOOK_RETRY_SCHEDULE=1,1,1 \
    LSHUB_RATE_LIMIT_PER_MINUTE=0
log "lshub on port $PORT; standardwebhooks $("$VENV/bin/python" -m pip show standardwebhooks 2>/dev/null | awk '/^Version/{print $2}')"
"$VENV/bin/python" scripts/webhooks/check.py "http://127.0.0.1:$PORT" "$CLIENT_ID" "$CLIENT_SECRET" || exit 1
log "standardwebhooks: every check passed"
