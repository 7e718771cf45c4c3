# Sourced by the checks that run a real client library against a real lshub (authlib.sh,
# standardwebhooks.sh): the venv it runs in, a fresh database, an API client, the server on a
# free port, and the cleanup. The caller sets BIN, VENV, PG, DB and NAME (for logs) first.

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
    log "error: $*" >&2
    exit 2
}
psql_admin() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 "$PG/postgres" "$@"; }

# ensure_venv MODULES PACKAGE...: installs the packages unless python can import MODULES.
ensure_venv() {
    local modules=$1
    shift
    [[ -x $BIN ]] || die "no lshub binary at $BIN (build it first, or set LSHUB_BIN)"
    if ! "$VENV/bin/python" -c "import $modules" 2>/dev/null; then
        log "installing $* into $VENV"
        [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" || die "cannot create $VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" ||
            die "cannot install $*"
    fi
}

PID=""
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}

# fresh_database: drops and migrates $DB, exports DATABASE_URL, and drops it again on exit.
fresh_database() {
    trap cleanup EXIT
    psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
    export DATABASE_URL=$PG/$DB
    "$BIN" migrate >/dev/null || die "lshub migrate failed"
}

# api_client ROLE: creates an API client; sets CLIENT_ID and CLIENT_SECRET.
api_client() {
    local client
    client=$("$BIN" client create "$NAME check" --role "$1") || die "client create failed"
    CLIENT_ID=$("$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$client")
    CLIENT_SECRET=$("$VENV/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$client")
}

# The signing key every server of this check shares (replicas must verify each other's tokens).
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')

# serve [VAR=value...]: starts `lshub serve` on a free port with these variables, waits until
# it answers; sets PORT and PID (and adds PID to PIDS, all stopped on exit). Called again, it
# starts another replica over the same database.
serve() {
    local log_file=/tmp/lshub-$NAME-server-${#PIDS[@]}.log
    PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    env LSHUB_JWT_SECRET="$JWT_SECRET" LSHUB_BIND="127.0.0.1:$PORT" \
        RUST_LOG=warn "$@" "$BIN" serve >"$log_file" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || { cat "$log_file"; die "lshub serve exited"; }
        sleep 0.1
    done
    die "lshub serve did not answer on port $PORT"
}
