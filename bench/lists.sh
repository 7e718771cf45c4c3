#!/usr/bin/env bash
# Lists under load: lshub's list endpoints beside the same SQL run by pgbench, in one run, on
# one machine, against one synthetic registry.
#
#   bench/lists.sh                      # 100,000 companies, 10 s per case, 16 connections
#   N=20000 DURATION=5s CONNS=8 bench/lists.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password), wrk and pgbench (installed
# with apt-get when missing). Builds the release binary. Drops and recreates the database
# `lshub_bench`. Prints one table: requests/s and latency for each case, lshub and raw SQL,
# and the server's peak RSS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-100000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
PORT=${PORT:-18181}
DB=${DB:-lshub_bench}
PG=postgres://postgres@127.0.0.1:5432
URL=$PG/$DB
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n 1)
[[ -x $PGBENCH ]] || { apt-get update -qq && apt-get install -y -qq postgresql-contrib >/dev/null; PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench | tail -n 1); }

cargo build --release --locked --bin lshub
BIN=${CARGO_TARGET_DIR:-target}/release/lshub

psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
seed_start=$(date +%s%N)
DATABASE_URL=$URL "$BIN" seed --synthetic "$N" >/dev/null
seed_ms=$(( ($(date +%s%N) - seed_start) / 1000000 ))
psql -q "$URL" -c "ANALYZE"
echo 'a benchmark password' | DATABASE_URL=$URL "$BIN" user create bench@lshub.example --role viewer --password-stdin >/dev/null

DATABASE_URL=$URL LSHUB_JWT_SECRET=$(head -c 48 /dev/urandom | base64) LSHUB_BIND=127.0.0.1:$PORT \
  LSHUB_DB_POOL_SIZE=$CONNS LSHUB_RATE_LIMIT_PER_MINUTE=0 LSHUB_LOG_FORMAT=json RUST_LOG=warn "$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "$BASE/readyz" >/dev/null && break; sleep 0.1; done

TOKEN=$(curl -fs -X POST "$BASE/api/v1/auth/token" -d grant_type=password \
  -d username=bench@lshub.example -d 'password=a benchmark password' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
AUTH="Authorization: Bearer $TOKEN"

# A cursor half-way through the name order: 10,000 rows in (at most 50 pages of 200).
path="/api/v1/companies?limit=200"
for _ in $(seq 50); do
  cursor=$(curl -fs -H "$AUTH" "$BASE$path" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"] or "")')
  [[ -n $cursor ]] || break
  path="/api/v1/companies?limit=200&cursor=$cursor"
done
IFS=$'\t' read -r deep_name deep_id < <(python3 - "$cursor" <<'PY'
import base64, json, sys
c = sys.argv[1]
d = json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
print(d["v"]["Text"].replace("'", "''"), d["id"], sep="\t")
PY
)
ETAG=$(curl -fs -o /dev/null -D - -H "$AUTH" "$BASE/api/v1/companies" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
# The poll rows measure 304s: make sure the tag matches (wrk counts 3xx as successes).
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" -H "If-None-Match: $ETAG" "$BASE/api/v1/companies") == 304 ]] ||
  { echo "the list's ETag does not match its poll" >&2; exit 1; }
# One company by id (the point query's row): its own ETag, `"<version>"`, and its poll.
RECORD=/api/v1/companies/$deep_id
RECORD_ETAG=$(curl -fs -o /dev/null -D - -H "$AUTH" "$BASE$RECORD" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" -H "If-None-Match: $RECORD_ETAG" "$BASE$RECORD") == 304 ]] ||
  { echo "the record's ETag does not match its poll" >&2; exit 1; }

SELECT="SELECT o.*, c.*, NULL::real AS score FROM organisations o JOIN companies c ON c.organisation_id = o.id WHERE o.kind = 'company' AND o.archived_at IS NULL"
cat >"$WORK/first.sql" <<SQL
$SELECT ORDER BY o.name_key ASC, o.id ASC LIMIT 51;
SQL
cat >"$WORK/deep.sql" <<SQL
$SELECT AND ROW(o.name_key, o.id) > ROW('$deep_name', '$deep_id'::uuid) ORDER BY o.name_key ASC, o.id ASC LIMIT 51;
SQL
cat >"$WORK/filtered.sql" <<SQL
$SELECT AND c.sector = 'biotech' AND o.address_province = 'MI' ORDER BY COALESCE(c.employees::bigint, -9223372036854775807) DESC, c.organisation_id DESC LIMIT 51;
SQL
cat >"$WORK/search.sql" <<SQL
SET pg_trgm.word_similarity_threshold = 0.5;
SELECT o.*, c.*, ((CASE WHEN o.search_key LIKE '%' || lshub_fold('farmaceutika') || '%' THEN 1 ELSE 0 END) + word_similarity(lshub_fold('farmaceutika'), o.search_key) + similarity(lshub_fold('farmaceutika'), o.search_key))::real AS score FROM organisations o JOIN companies c ON c.organisation_id = o.id WHERE o.kind = 'company' AND o.archived_at IS NULL AND o.id IN (SELECT id FROM organisations WHERE search_key LIKE '%' || lshub_fold('farmaceutika') || '%' UNION ALL SELECT id FROM organisations WHERE lshub_fold('farmaceutika') <% search_key) ORDER BY 3 DESC LIMIT 51;
SQL
cat >"$WORK/poll.sql" <<SQL
SELECT coalesce(sum(value), 0)::bigint FROM change_counter;
SQL
# The cheapest useful statement: one company by primary key, prepared once per connection.
cat >"$WORK/point.sql" <<SQL
SELECT o.*, c.* FROM organisations o JOIN companies c ON c.organisation_id = o.id WHERE o.id = '$deep_id'::uuid;
SQL

wrk_case() { # name path [extra header]
  local args=(-t2 -c"$CONNS" -d"$DURATION" --latency -H "$AUTH")
  [[ $# -ge 3 ]] && args+=(-H "$3")
  wrk "${args[@]}" "$BASE$2" >"$WORK/$1.wrk"
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/{print $2}' "$WORK/$1.wrk")
  p50=$(awk '$1=="50%"{print $2}' "$WORK/$1.wrk")
  p99=$(awk '$1=="99%"{print $2}' "$WORK/$1.wrk")
  non2xx=$(awk '/Non-2xx/{print $NF}' "$WORK/$1.wrk")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}
pg_case() { # name [protocol]
  "$PGBENCH" -n -M "${2:-extended}" -c "$CONNS" -j 2 -T "${DURATION%s}" -f "$WORK/$1.sql" "$URL" >"$WORK/$1.pg" 2>&1
  local tps lat
  tps=$(awk -F'= ' '/^tps/{split($2,a," "); print a[1]}' "$WORK/$1.pg")
  lat=$(awk -F'= ' '/latency average/{print $2}' "$WORK/$1.pg")
  echo "$tps $lat"
}

printf '\n%s companies seeded in %d ms; %s connections, %s per case, %s cores\n\n' "$N" "$seed_ms" "$CONNS" "$DURATION" "$(nproc)"
printf '%-34s | %10s %9s %9s %7s | %10s %12s\n' case "lshub rps" p50 p99 non-2xx "SQL tps" "SQL latency"
printf '%s\n' "-----------------------------------+----------------------------------------+--------------------------"
row() { # label name path [header]
  local label=$1 name=$2 path=$3; shift 3
  read -r rps p50 p99 bad < <(wrk_case "$name" "$path" "$@")
  read -r tps lat < <(pg_case "$name")
  printf '%-34s | %10s %9s %9s %7s | %10s %12s\n' "$label" "$rps" "$p50" "$p99" "$bad" "$tps" "$lat"
}
row "first page (50, by name)" first "/api/v1/companies"
row "page 10,001-10,050 (keyset)" deep "/api/v1/companies?cursor=$cursor&limit=50"
row "biotech in MI by -employees" filtered "/api/v1/companies?sector=biotech&province=MI&sort=-employees"
row "search q=farmaceutika (typo)" search "/api/v1/companies?q=farmaceutika"
row "poll unchanged list (304)" poll "/api/v1/companies" "If-None-Match: $ETAG"
# The issue's yardstick: a matching poll (answered from memory) beside pgbench's prepared point
# query, the fastest thing the database itself answers.
read -r rps p50 p99 bad < <(wrk_case pollmem "/api/v1/companies" "If-None-Match: $ETAG")
read -r tps lat < <(pg_case point prepared)
printf '%-34s | %10s %9s %9s %7s | %10s %12s\n' "poll (304) vs prepared point query" "$rps" "$p50" "$p99" "$bad" "$tps" "$lat"
list_ratio=$(awk -v a="$rps" -v b="$tps" 'BEGIN { printf "%.2f", a / b }')
# The same yardstick for one record: its full GET (the point query's row and its JSON), and a
# matching poll of it, answered from memory while nothing has changed.
row "point GET /companies/{id} (200)" point "$RECORD"
read -r rps p50 p99 bad < <(wrk_case recordpoll "$RECORD" "If-None-Match: $RECORD_ETAG")
read -r tps lat < <(pg_case point prepared)
printf '%-34s | %10s %9s %9s %7s | %10s %12s\n' "record poll (304) vs prepared point" "$rps" "$p50" "$p99" "$bad" "$tps" "$lat"
record_ratio=$(awk -v a="$rps" -v b="$tps" 'BEGIN { printf "%.2f", a / b }')
printf 'matching list poll / prepared point query: %sx\n' "$list_ratio"
printf 'matching record poll / prepared point query: %sx\n' "$record_ratio"
printf '\nlshub peak RSS: %s\n' "$(awk '/VmHWM/{print $2, $3}' /proc/$PID/status)"
echo "(the poll rows are 304s, checked before they run; the SQL column runs the one query each case needs)"
