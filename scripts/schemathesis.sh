#!/usr/bin/env bash
# Schemathesis against a real lshub: one full run per role (viewer, partner, editor, admin).
#
#   scripts/schemathesis.sh                    # 50 examples per operation, all roles (~2 min a role)
#   LSHUB_ST_EXAMPLES=10 scripts/schemathesis.sh                       # bounded (CI): ~45 s a role
#   LSHUB_ST_ROLES=editor LSHUB_ST_ARGS='--include-path-regex ^/api/v1/goals' scripts/schemathesis.sh
#
# Installs Schemathesis into a venv outside the clone (reused when it already holds the pinned
# version). Does not build lshub: it runs $LSHUB_BIN (CI builds it first). Drops and recreates
# the database `lshub_schemathesis`, loads the brochure dataset and synthetic organisations,
# creates one user per role (the partner bound to a company), starts `lshub serve` on a free
# loopback port and gets an access token per role with the password grant. Then, per role:
# `schemathesis run` on /openapi.json with every check and every phase (examples, coverage,
# fuzzing, stateful), every failure of a test case rather than its first, a fixed seed, and
# JUnit + JSON reports, with the configuration and hooks of scripts/schemathesis/ (the server
# rules a schema cannot state: check digits, cross-field rules, cursors, If-Match; see the
# comments there). Prints one line per role with its unique failures (and their kinds), and
# their total (also written to $LSHUB_ST_OUT/summary.txt); stops the server and drops the
# database on exit. Exits 1 when any role found a failure or an error, 2 when the run could not
# be set up or a role's run left no report (Schemathesis could not load the schema, the config
# or the hooks, or died): that is no finding, so CI's `report` policy must not pass it.
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password), psql, curl and python3 (3.9+).
#
# Environment knobs:
#   LSHUB_BIN              the lshub binary (default ${CARGO_TARGET_DIR:-/var/tmp/lshub-target}/debug/lshub)
#   LSHUB_ST_VENV          the venv (default /var/tmp/lshub-venv)
#   LSHUB_ST_PACKAGE       pip requirement for Schemathesis (default schemathesis==4.32.5)
#   LSHUB_ST_OUT           reports, logs and server log (default /tmp/lshub-schemathesis; emptied)
#   LSHUB_ST_ROLES         roles to run, in order (default "viewer partner editor admin")
#   LSHUB_ST_EXAMPLES      --max-examples per operation (default 50)
#   LSHUB_ST_SEED          --seed (default 20240917)
#   LSHUB_ST_MAX_TIME      --max-time per role in seconds (default: none). A budget, not just a
#                          cap: fuzzing and stateful testing repeat until it is spent.
#   LSHUB_ST_WORKERS       --workers (default 1: deterministic order for a given seed)
#   LSHUB_ST_PARALLEL      roles run at once against the one server (default 1). Each role's
#                          run stays deterministic for its seed; runs at once share the database,
#                          as runs one after another do.
#   LSHUB_ST_SYNTHETIC     synthetic companies to seed besides the brochure (default 200; 0: none)
#   LSHUB_ST_DB            the database it drops and recreates (default lshub_schemathesis)
#   LSHUB_ST_PORT          port of the server (default: a free one)
#   LSHUB_ST_ARGS          extra arguments for `schemathesis run` (word-split)
#   LSHUB_ST_CONFIG        Schemathesis config file (default scripts/schemathesis/schemathesis.toml)
#   LSHUB_ST_HOOKS         hooks module, as SCHEMATHESIS_HOOKS (default scripts/schemathesis/hooks.py;
#                          empty: none, to see what the bare schema gives)
#   PG                     PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432)
#   RUST_LOG               server log filter (default warn; the log is $LSHUB_ST_OUT/server.log)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

BIN=${LSHUB_BIN:-${CARGO_TARGET_DIR:-/var/tmp/lshub-target}/debug/lshub}
VENV=${LSHUB_ST_VENV:-/var/tmp/lshub-venv}
PACKAGE=${LSHUB_ST_PACKAGE:-schemathesis==4.32.5}
OUT=${LSHUB_ST_OUT:-/tmp/lshub-schemathesis}
read -r -a ROLES <<<"${LSHUB_ST_ROLES:-viewer partner editor admin}"
EXAMPLES=${LSHUB_ST_EXAMPLES:-50}
SEED=${LSHUB_ST_SEED:-20240917}
MAX_TIME=${LSHUB_ST_MAX_TIME:-}
WORKERS=${LSHUB_ST_WORKERS:-1}
PARALLEL=${LSHUB_ST_PARALLEL:-1}
SYNTHETIC=${LSHUB_ST_SYNTHETIC:-200}
read -r -a EXTRA_ARGS <<<"${LSHUB_ST_ARGS:-}"
# Absolute: Schemathesis runs in the report directory.
CONFIG=$(realpath "${LSHUB_ST_CONFIG:-scripts/schemathesis/schemathesis.toml}")
HOOKS=${LSHUB_ST_HOOKS-scripts/schemathesis/hooks.py}
[[ -z $HOOKS ]] || HOOKS=$(realpath "$HOOKS")
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=${LSHUB_ST_DB:-lshub_schemathesis}
URL=$PG/$DB
# Long enough to outlive every role's run: tokens are fetched once, before the first.
TOKEN_TTL=86400
PASSWORD='schemathesis password, not a secret'
USER_DOMAIN=schemathesis.lshub.example

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
    log "error: $*" >&2
    exit 2
}
psql_admin() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 "$PG/postgres" "$@"; }

[[ -x $BIN ]] || die "no lshub binary at $BIN (build it first, or set LSHUB_BIN)"
[[ -f $CONFIG ]] || die "no Schemathesis config at $CONFIG"
[[ -z $HOOKS || -f $HOOKS ]] || die "no hooks module at $HOOKS"

# ---------------------------------------------------------------------------------------------
# Schemathesis

ST=$VENV/bin/schemathesis
wanted=${PACKAGE#*==}
if [[ $PACKAGE == *==* && -x $ST ]] && [[ $("$ST" --version 2>/dev/null) == *" $wanted" ]]; then
    log "reusing $VENV"
else
    log "installing $PACKAGE into $VENV"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE"
fi
ST_VERSION=$("$ST" --version)
[[ $ST_VERSION == *" 4."* ]] || die "Schemathesis 4 required, got: $ST_VERSION"
log "$ST_VERSION"
PY=$VENV/bin/python

[[ -n $OUT && $OUT != / ]] || die "LSHUB_ST_OUT must name a directory of its own"
rm -rf "$OUT"
mkdir -p "$OUT"

# ---------------------------------------------------------------------------------------------
# database, data and users

PID=""
cleanup() {
    if [[ -n $PID ]]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "database $URL (recreated)"
psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
export DATABASE_URL=$URL
"$BIN" seed >"$OUT/seed.log" 2>&1 || { cat "$OUT/seed.log"; die "lshub seed failed"; }
if ((SYNTHETIC > 0)); then
    "$BIN" seed --synthetic "$SYNTHETIC" >>"$OUT/seed.log" 2>&1 ||
        { cat "$OUT/seed.log"; die "lshub seed --synthetic failed"; }
fi
grep -E '^(brochure dataset|seeded)' "$OUT/seed.log" || true

# The partner acts for a company: the kind with the most self-managed fields.
PARTNER_ORG=$(psql -X -A -t -v ON_ERROR_STOP=1 "$URL" \
    -c "SELECT id FROM organisations WHERE kind = 'company' AND archived_at IS NULL ORDER BY name_key, id LIMIT 1")
[[ -n $PARTNER_ORG ]] || die "no company to bind the partner to"
for role in "${ROLES[@]}"; do
    org=()
    [[ $role == partner ]] && org=(--organisation "$PARTNER_ORG")
    printf '%s\n' "$PASSWORD" |
        "$BIN" user create "$role@$USER_DOMAIN" --role "$role" "${org[@]}" --password-stdin >/dev/null
done
# An admin the hooks use for fixtures whatever the role under test: a one-time set-password token
# is what a positive POST /auth/set-password needs, and only an admin can issue one.
printf '%s\n' "$PASSWORD" |
    "$BIN" user create "fixtures@$USER_DOMAIN" --role admin --password-stdin >/dev/null
log "users: ${ROLES[*]} @$USER_DOMAIN (partner of organisation $PARTNER_ORG), and fixtures@ (admin)"

# ---------------------------------------------------------------------------------------------
# server

PORT=${LSHUB_ST_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
BASE=http://127.0.0.1:$PORT
# Rate limits raised out of reach: one token per role fires thousands of requests a minute,
# and the token endpoint is fuzzed from one IP, so at the defaults nearly every answer would be
# 429 and nothing behind it tested. The limiter still runs and sends its headers; the 429s are
# in the spec, and tests/api/rate_limits.rs shows them.
LSHUB_JWT_SECRET=$(head -c 48 /dev/urandom | base64 -w0) LSHUB_BIND=127.0.0.1:$PORT \
    LSHUB_ACCESS_TOKEN_TTL=$TOKEN_TTL LSHUB_LOG_FORMAT=json RUST_LOG=${RUST_LOG:-warn} \
    LSHUB_RATE_LIMIT_PER_MINUTE=100000000 LSHUB_RATE_LIMIT_BURST=100000000 \
    LSHUB_TOKEN_RATE_LIMIT_PER_IP=1000000 LSHUB_TOKEN_RATE_LIMIT_PER_USERNAME=1000000 \
    "$BIN" serve >"$OUT/server.log" 2>&1 &
PID=$!
for _ in $(seq 150); do
    curl -fs "$BASE/readyz" >/dev/null && break
    kill -0 "$PID" 2>/dev/null || { tail -n 20 "$OUT/server.log"; die "lshub serve exited"; }
    sleep 0.2
done
curl -fs "$BASE/readyz" >/dev/null || { tail -n 20 "$OUT/server.log"; die "$BASE/readyz never answered"; }
log "lshub serve on $BASE (pid $PID, log $OUT/server.log)"

declare -A TOKENS
for role in "${ROLES[@]}" fixtures; do
    TOKENS[$role]=$(curl -fs -X POST "$BASE/api/v1/auth/token" \
        --data-urlencode grant_type=password --data-urlencode "username=$role@$USER_DOMAIN" \
        --data-urlencode "password=$PASSWORD" |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
        die "no token for $role"
done

# ---------------------------------------------------------------------------------------------
# one run per role

# From a JSON report: a first line "unique failures<TAB>errors", then one line per kind of
# failure with its count and operations.
report_counts() {
    "$PY" - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["test_cases"]["unique_failures"], sum(e["count"] for e in d["errors"]), sep="\t")
for f in d["failures"]:
    print(f"    {f['code']} {f['title']} ({f['type']}): {f['count']} on {len(f['operations'])} operations")
for e in d["errors"]:
    print(f"    error: {e['title']}: {e['count']}")
PY
}

# One role's run; its exit code goes to $dir/rc and its wall time to $dir/seconds.
run_role() {
    local role=$1 dir=$OUT/$1
    mkdir -p "$dir"
    local args=(
        --config-file "$CONFIG"
        run "$BASE/openapi.json"
        --header "Authorization: Bearer ${TOKENS[$role]}"
        --checks all
        # Every check but use_after_free, whose premise (every URL of a deleted resource answers
        # 404 afterwards) this API does not share: DELETE archives a record or revokes an API
        # client, which stays readable with include_archived=true and whose audit trail outlives
        # it (README "Delete archives"; "a history always covers archived records"). Schemathesis
        # cannot be told which DELETEs archive: a per-operation setting does not reach the
        # stateful phase. That a removed link is 404 afterwards, the integration tests show.
        --exclude-checks use_after_free
        --phases "examples,coverage,fuzzing,stateful"
        --max-examples "$EXAMPLES"
        --seed "$SEED"
        --workers "$WORKERS"
        --request-timeout 40
        --continue-on-failure
        --generation-database none
        --report "junit,json"
        --report-dir "$dir"
        --report-junit-path "$dir/junit.xml"
        --report-json-path "$dir/report.json"
        --no-color
    )
    [[ -n $MAX_TIME ]] && args+=(--max-time "$MAX_TIME")
    args+=("${EXTRA_ARGS[@]}")
    log "==> $role: SCHEMATHESIS_HOOKS=$HOOKS schemathesis ${args[*]/${TOKENS[$role]}/\$TOKEN}"
    local start=$SECONDS rc=0
    # In the report directory, so that no stray file (or schemathesis.toml) meets the clone; and
    # no __pycache__ beside the hooks either.
    (cd "$dir" && SCHEMATHESIS_HOOKS=$HOOKS LSHUB_ST_FIXTURES_TOKEN=${TOKENS[fixtures]} PYTHONDONTWRITEBYTECODE=1 "$ST" "${args[@]}") \
        >"$dir/schemathesis.log" 2>&1 || rc=$?
    echo "$rc" >"$dir/rc"
    echo $((SECONDS - start)) >"$dir/seconds"
    log "<== $role: exit $rc after $((SECONDS - start)) s"
}

running=()
for role in "${ROLES[@]}"; do
    run_role "$role" &
    running+=($!)
    if ((${#running[@]} >= PARALLEL)); then
        wait "${running[0]}"
        running=("${running[@]:1}")
    fi
done
# Only the runs: a bare `wait` would also wait for the server.
for pid in "${running[@]}"; do
    wait "$pid"
done

SUMMARY=()
FAILED=0
NO_REPORT=0
TOTAL=0
for role in "${ROLES[@]}"; do
    dir=$OUT/$role
    rc=$(cat "$dir/rc" 2>/dev/null || echo 2)
    elapsed=$(cat "$dir/seconds" 2>/dev/null || echo 0)
    if [[ -s $dir/report.json ]]; then
        counts=$(report_counts "$dir/report.json")
        IFS=$'\t' read -r unique errors <<<"${counts%%$'\n'*}"
        line=$(printf '%-8s %4d unique failures, %d errors, %5d s, exit %d' \
            "$role" "$unique" "$errors" "$elapsed" "$rc")
        TOTAL=$((TOTAL + unique))
        [[ $counts == *$'\n'* ]] && printf '%s\n' "${counts#*$'\n'}"
    else
        line=$(printf '%-8s no report (exit %d after %d s): see %s' "$role" "$rc" "$elapsed" "$dir/schemathesis.log")
        NO_REPORT=1
    fi
    log "<== $line"
    SUMMARY+=("$line")
    [[ $rc -eq 0 ]] || FAILED=1
done
kill -0 "$PID" 2>/dev/null || { tail -n 20 "$OUT/server.log"; die "lshub serve died during the runs"; }

{
    printf 'schemathesis summary (%s, %s examples per operation, seed %s%s, %s role(s) at once); reports in %s\n' \
        "$ST_VERSION" "$EXAMPLES" "$SEED" "${MAX_TIME:+, $MAX_TIME s per role}" "$PARALLEL" "$OUT"
    printf '  %s\n' "${SUMMARY[@]}"
    printf '  %-8s %4d unique failures\n' total "$TOTAL"
} >"$OUT/summary.txt"
printf '\n'
cat "$OUT/summary.txt"
if ((NO_REPORT)); then
    log "error: a role's run left no report: see its schemathesis.log" >&2
    exit 2
fi
exit "$FAILED"
