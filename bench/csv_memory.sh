#!/usr/bin/env bash
# CSV export of a large registry: lshub streaming `Accept: text/csv` beside PostgreSQL's own
# COPY of the same rows, with lshub's resident memory sampled while it streams.
#
#   bench/csv_memory.sh            # 100,000 synthetic companies (plus the other kinds)
#   N=20000 bench/csv_memory.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password). Builds the release binary.
# Drops and recreates the database `lshub_bench_csv`. Prints rows, bytes, wall time, and
# lshub's RSS before, at peak during, and after the export: a flat RSS is the point.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-100000}
PORT=${PORT:-18182}
DB=lshub_bench_csv
PG=postgres://postgres@127.0.0.1:5432
URL=$PG/$DB
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)

cargo build --release --locked --bin lshub
BIN=${CARGO_TARGET_DIR:-target}/release/lshub

psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
DATABASE_URL=$URL "$BIN" seed --synthetic "$N" 2>/dev/null
echo 'a benchmark password' | DATABASE_URL=$URL "$BIN" user create bench@lshub.example --role viewer --password-stdin >/dev/null

DATABASE_URL=$URL LSHUB_JWT_SECRET=$(head -c 48 /dev/urandom | base64) LSHUB_BIND=127.0.0.1:$PORT \
  LSHUB_RATE_LIMIT_PER_MINUTE=0 LSHUB_LOG_FORMAT=json RUST_LOG=warn "$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "$BASE/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -fs -X POST "$BASE/api/v1/auth/token" -d grant_type=password \
  -d username=bench@lshub.example -d 'password=a benchmark password' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

rss() { awk '/VmRSS/{print $2}' "/proc/$PID/status"; }
# Warm the server (first JSON page) so the baseline includes a live pool and code pages.
curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/companies" >/dev/null
before=$(rss)

peak=$before
( while kill -0 "$PID" 2>/dev/null; do rss >>"$WORK/rss"; sleep 0.05; done ) &
SAMPLER=$!
start=$(date +%s%N)
curl -fs -H "Authorization: Bearer $TOKEN" -H 'Accept: text/csv' "$BASE/api/v1/companies" -o "$WORK/companies.csv"
lshub_ms=$(( ($(date +%s%N) - start) / 1000000 ))
kill $SAMPLER 2>/dev/null || true
after=$(rss)
peak=$(sort -n "$WORK/rss" | tail -n 1)
rows=$(( $(python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))))' "$WORK/companies.csv") - 1 ))
bytes=$(stat -c %s "$WORK/companies.csv")

start=$(date +%s%N)
psql -q "$URL" -c "\\copy (SELECT o.*, c.* FROM organisations o JOIN companies c ON c.organisation_id = o.id WHERE o.kind = 'company' AND o.archived_at IS NULL ORDER BY o.name_key, o.id) TO '$WORK/copy.csv' WITH CSV HEADER"
copy_ms=$(( ($(date +%s%N) - start) / 1000000 ))
copy_bytes=$(stat -c %s "$WORK/copy.csv")

printf '\n%-28s %10s %12s %10s\n' "" rows bytes "wall ms"
printf '%-28s %10s %12s %10s\n' "lshub GET text/csv" "$rows" "$bytes" "$lshub_ms"
printf '%-28s %10s %12s %10s\n' "psql \\copy (same rows)" "$N" "$copy_bytes" "$copy_ms"
printf '\nlshub RSS: %s kB before, %s kB peak while streaming, %s kB after\n' "$before" "$peak" "$after"
