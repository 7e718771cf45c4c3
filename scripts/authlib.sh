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

NAME=authlib
# shellcheck source=scripts/client-check.sh
source scripts/client-check.sh

ensure_venv "authlib, requests" "$PACKAGE" requests
fresh_database
printf '%s\n' "$PASSWORD" |
    "$BIN" user create "$USERNAME" --role editor --password-stdin >/dev/null || die "user create failed"
api_client viewer
serve
log "lshub on port $PORT; authlib $("$VENV/bin/python" -c 'import authlib; print(authlib.__version__)')"
"$VENV/bin/python" scripts/authlib/check.py "http://127.0.0.1:$PORT" "$USERNAME" "$PASSWORD" \
    "$CLIENT_ID" "$CLIENT_SECRET" || exit 1
log "authlib: every check passed"
