#!/usr/bin/env bash
# Runs Python's authlib, unmodified, against a real lshub: the password grant with a refresh,
# and client_credentials by HTTP Basic and in the body (scripts/authlib/check.py). Creates its
# own database, user and API client with the lshub binary; drops the database afterwards.
#
#   scripts/authlib.sh                       # LSHUB_BIN, or the debug build
#
# Knobs: LSHUB_BIN (default ${CARGO_TARGET_DIR:-/var/tmp/lshub-target}/debug/lshub),
# LSHUB_AUTHLIB_VENV (default /var/tmp/lshub-authlib-venv), LSHUB_AUTHLIB_PACKAGE (default
# authlib==1.6.5), LSHUB_AUTHLIB_DB (default lshub_authlib), PG (admin URL, default
# postgres://postgres@127.0.0.1:5432). Exit: 0 all good, 1 a check failed, 2 set-up failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

BIN=${LSHUB_BIN:-${CARGO_TARGET_DIR:-/var/tmp/lshub-target}/debug/lshub}
VENV=${LSHUB_AUTHLIB_VENV:-/var/tmp/lshub-authlib-venv}
PACKAGE=${LSHUB_AUTHLIB_PACKAGE:-authlib==1.6.5}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=${LSHUB_AUTHLIB_DB:-lshub_authlib}
USERNAME=editor@authlib.lshub.example
PASSWORD='authlib password, not a secret'

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
    log "error: $*" >&2
    exit 2
}
psql_admin() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 "$PG/postgres" "$@"; }

[[ -x $BIN ]] || die "no lshub binary at $BIN (build it first, or set LSHUB_BIN)"
if ! "$VENV/bin/python" -c "import authlib, requests" 2>/dev/null; then
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
printf '%s\n' "$PASSWORD" |
    "$BIN" user create "$USERNAME" --role editor --password-stdin >/dev/null || die "user create failed"
CLIENT=$("$BIN" client create "authlib check" --role viewer) || die "client create failed"
CLIENT_ID=$("$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$CLIENT")
CLIENT_SECRET=$("$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$CLIENT")

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LSHUB_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n') LSHUB_BIND=127.0.0.1:$PORT \
    RUST_LOG=warn "$BIN" serve >/tmp/lshub-authlib-server.log 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat /tmp/lshub-authlib-server.log; die "lshub serve exited"; }
    sleep 0.1
done
log "lshub on port $PORT; authlib $("$VENV/bin/python" -c 'import authlib; print(authlib.__version__)')"
"$VENV/bin/python" scripts/authlib/check.py "http://127.0.0.1:$PORT" "$USERNAME" "$PASSWORD" \
    "$CLIENT_ID" "$CLIENT_SECRET" || exit 1
log "authlib: every check passed"
