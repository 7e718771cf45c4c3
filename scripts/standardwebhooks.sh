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

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
    log "error: $*" >&2
    exit 2
}
psql_admin() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 "$PG/postgres" "$@"; }

[[ -x $BIN ]] || die "no lshub binary at $BIN (build it first, or set LSHUB_BIN)"
if ! "$VENV/bin/python" -c "import standardwebhooks, requests" 2>/dev/null; then
    log "installing $PACKAGE into $VENV"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" || die "cannot create $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE" requests ||
        die "cannot install $PACKAGE"
fi

PID=""
cleanup() {
    if [[ -n $PID ]]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
export DATABASE_URL=$PG/$DB
"$BIN" migrate >/dev/null || die "lshub migrate failed"
CLIENT=$("$BIN" client create "standardwebhooks check" --role admin) || die "client create failed"
CLIENT_ID=$("$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$CLIENT")
CLIENT_SECRET=$("$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$CLIENT")

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Private targets: the receiver is on this machine. Retries a second apart, so the refused
# delivery at the end is recorded without waiting for the production schedule.
LSHUB_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n') LSHUB_BIND=127.0.0.1:$PORT \
    LSHUB_WEBHOOK_ALLOW_PRIVATE_TARGETS=true LSHUB_WEBHOOK_RETRY_SCHEDULE=1,1,1 \
    LSHUB_RATE_LIMIT_PER_MINUTE=0 RUST_LOG=warn "$BIN" serve >/tmp/lshub-standardwebhooks-server.log 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat /tmp/lshub-standardwebhooks-server.log; die "lshub serve exited"; }
    sleep 0.1
done
log "lshub on port $PORT; standardwebhooks $("$VENV/bin/python" -m pip show standardwebhooks 2>/dev/null | awk '/^Version/{print $2}')"
"$VENV/bin/python" scripts/webhooks/check.py "http://127.0.0.1:$PORT" "$CLIENT_ID" "$CLIENT_SECRET" || exit 1
log "standardwebhooks: every check passed"
