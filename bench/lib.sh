# Shared by bench/run: the tools, the database, the server, tokens, and one measurement of each
# side (lshub over HTTP with wrk, the same SQL with pgbench). Source it; it defines functions
# and the settings below, and starts nothing.

N=${N:-100000}
[[ ${BENCH_SCALE:-} == 1m ]] && N=1000000
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-8}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18190}
WRK_THREADS=2
DB=${DB:-lshub_bench_run}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
# One URL for lshub and pgbench, so both reach the database over the same transport. Its
# `sslmode` is explicit: lshub leaves TLS off on loopback unless the URL asks, libpq's default
# (`prefer`) would put pgbench on TLS (BENCH_SSLMODE=prefer measures both with it).
URL="$PG/$DB?sslmode=${BENCH_SSLMODE:-disable}"
BASE=http://127.0.0.1:$PORT
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# wrk and pgbench from Debian's packages when missing (the script runs as root on a fresh box).
bench_install() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v pgbench >/dev/null || ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || missing+=(postgresql-contrib)
  command -v psql >/dev/null || missing+=(postgresql-client)
  command -v python3 >/dev/null || missing+=(python3)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -n 1)
}

# BENCH_BIN=path measures that binary instead, unbuilt (e.g. a copy of another commit's build,
# for a before/after pair on one machine state).
bench_build() {
  if [[ -n ${BENCH_BIN:-} ]]; then
    BIN=$BENCH_BIN
    return
  fi
  cargo build --release --locked --bin lshub
  BIN=${CARGO_TARGET_DIR:-target}/release/lshub
}

# A fresh registry of N synthetic companies (and the other kinds in proportion), vacuumed as
# autovacuum would leave it after a bulk load, and an editor to log in as.
bench_seed() {
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  local start=$(date +%s%N)
  DATABASE_URL=$URL "$BIN" seed --synthetic "$N" >/dev/null 2>&1
  SEED_MS=$(( ($(date +%s%N) - start) / 1000000 ))
  psql -q "$URL" -c "VACUUM ANALYZE"
  echo 'a benchmark password' | DATABASE_URL=$URL "$BIN" user create bench@lshub.example --role editor --password-stdin >/dev/null
}

# Starts `lshub serve` with every feature on (auth, ETags, logging, metrics, rate limits set
# high enough not to refuse a benchmark), in the background; extra VAR=value arguments go to
# its environment. Sets SERVER_PID.
bench_serve() { # log [VAR=value ...]
  local log=$1; shift
  env DATABASE_URL="$URL" LSHUB_JWT_SECRET="$JWT_SECRET" LSHUB_BIND=127.0.0.1:$PORT \
    LSHUB_DB_POOL_SIZE="$CONNS" LSHUB_RATE_LIMIT_PER_MINUTE=100000000 LSHUB_RATE_LIMIT_BURST=100000000 \
    LSHUB_REQUEST_TIMEOUT=300 LSHUB_DB_STATEMENT_TIMEOUT=300 LSHUB_LOG_FORMAT=json RUST_LOG=info \
    "$@" "$BIN" serve >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do curl -fs "$BASE/readyz" >/dev/null && return; sleep 0.1; done
  echo "lshub did not become ready; its log: $log" >&2
  return 1
}

bench_stop() {
  [[ -n ${SERVER_PID:-} ]] || return 0
  kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
}

# A real access token, through the password grant.
bench_token() {
  curl -fs -X POST "$BASE/api/v1/auth/token" -d grant_type=password \
    -d username=bench@lshub.example -d 'password=a benchmark password' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# One request with the token; remaining arguments go to curl.
bench_curl() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }

bench_etag() { # path
  bench_curl -o /dev/null -D - "$BASE$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}'
}

# The server's peak resident set since the last reset, in KiB; the reset (clear_refs 5) makes
# it the peak of one case.
rss_reset() { echo 5 >"/proc/$SERVER_PID/clear_refs"; }
rss_peak() { awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status"; }

# The file PostgreSQL writes its log to: pg_current_logfile() under the logging collector,
# else the cluster's log as Debian's pg_lsclusters names it. PG_LOG overrides both.
pg_log_file() {
  [[ -n ${PG_LOG:-} ]] && { echo "$PG_LOG"; return; }
  local f
  f=$(psql -Atq "$PG/postgres" -c "SELECT coalesce(current_setting('data_directory') || '/' || pg_current_logfile(), '')")
  if [[ -z $f ]] && command -v pg_lsclusters >/dev/null; then
    local port=${PG##*:}
    f=$(pg_lsclusters -h | awk -v p="${port%%/*}" '$3==p {print $NF}')
  fi
  echo "$f"
}

# Measurements print one line of JSON: rps, p50/p95/p99 in ms, errors (answers that are not
# 2xx/3xx, or failed transactions), and for lshub the case's peak RSS.

lshub_case() { # name duration method path [header]
  local name=$1 dur=$2 method=$3 path=$4 header=${5:-}
  local args=(-t"$WRK_THREADS" -c"$CONNS" -d"$dur" -s "$BENCH_DIR/wrk.lua" -H "Authorization: Bearer $TOKEN")
  [[ -n $header ]] && args+=(-H "$header")
  rss_reset
  BENCH_THREADS=$WRK_THREADS BENCH_METHOD=$method BENCH_OUT="$WORK/$name.wrk.json" wrk "${args[@]}" "$BASE$path" >"$WORK/$name.wrk" 2>&1
  python3 - "$WORK/$name.wrk.json" "$(rss_peak)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["rss_kib"] = int(sys.argv[2])
print(json.dumps(r))
PY
}

pg_case() { # name duration script
  local name=$1 dur=$2 script=$3
  rm -f "$WORK/$name".pglog*
  # -l: every transaction's latency, so pgbench's p50/p99 are read the way wrk's are.
  local defines=()
  while IFS= read -r d; do defines+=(-D "$d"); done <"$script.vars"
  "$PGBENCH" -n -M prepared -c "$CONNS" -j 2 -T "${dur%s}" -l --log-prefix="$WORK/$name.pglog" \
    "${defines[@]}" -f "$script" "$URL" >"$WORK/$name.pg" 2>&1 || true
  python3 "$BENCH_DIR/report.py" pgbench "$WORK/$name.pg" "$WORK/$name".pglog*
}
