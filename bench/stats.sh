#!/usr/bin/env bash
# Statistics under load: lshub's /stats endpoints beside the same SQL run by pgbench, in one
# run, on one machine, against one synthetic registry (100,000 companies by default, and IRCCS,
# universities and partners in proportion).
#
#   bench/stats.sh                      # 100,000 companies, 10 s per case, 16 connections
#   N=20000 DURATION=5s CONNS=8 bench/stats.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password), wrk and pgbench (installed
# with apt-get when missing). Builds the release binary. Drops and recreates the database
# `lshub_bench`. Prints one table: requests/s, p50 and p99 latency for each case, lshub, and
# the same statements' tps and mean latency under pgbench; the target is p95 <= 50 ms.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-100000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
PORT=${PORT:-18182}
DB=lshub_bench_stats
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
# What autovacuum does after a bulk load: statistics, and the visibility map that index-only
# scans need.
psql -q "$URL" -c "VACUUM ANALYZE"
echo 'a benchmark password' | DATABASE_URL=$URL "$BIN" user create bench@lshub.example --role viewer --password-stdin >/dev/null

DATABASE_URL=$URL LSHUB_JWT_SECRET=$(head -c 48 /dev/urandom | base64) LSHUB_BIND=127.0.0.1:$PORT \
  LSHUB_RATE_LIMIT_PER_MINUTE=100000000 LSHUB_RATE_LIMIT_BURST=100000000 \
  LSHUB_DB_POOL_SIZE=$CONNS LSHUB_LOG_FORMAT=json RUST_LOG=warn "$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "$BASE/readyz" >/dev/null && break; sleep 0.1; done

TOKEN=$(curl -fs -X POST "$BASE/api/v1/auth/token" -d grant_type=password \
  -d username=bench@lshub.example -d 'password=a benchmark password' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
AUTH="Authorization: Bearer $TOKEN"

ETAG=$(curl -fs -o /dev/null -D - -H "$AUTH" "$BASE/api/v1/stats/organisations?group_by=kind,province" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')

# The statements lshub runs for each case (src/models/stats.rs), written out.
SUMS="count(*) AS count, sum(c.employees)::bigint AS employees, sum(c.revenue_eur)::bigint AS revenue_eur, sum(c.rd_investment_eur)::bigint AS rd_investment_eur, sum(c.exports_eur)::bigint AS exports_eur"
FROM="FROM organisations o LEFT JOIN companies c ON c.organisation_id = o.id"
cat >"$WORK/kind.sql" <<SQL
SELECT o.kind AS k1, NULL::text AS k2, $SUMS $FROM WHERE TRUE AND o.archived_at IS NULL GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SQL
cat >"$WORK/kind_province.sql" <<SQL
SELECT o.kind AS k1, o.address_province AS k2, $SUMS $FROM WHERE TRUE AND o.archived_at IS NULL GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SQL
cat >"$WORK/sector_mi.sql" <<SQL
SELECT c.sector AS k1, o.in_mind::text AS k2, $SUMS $FROM WHERE TRUE AND o.archived_at IS NULL AND o.address_province = 'MI' AND ((TRUE AND o.kind = 'company' AND o.id IN (SELECT d.organisation_id FROM companies d WHERE TRUE AND d.employees >= 10))) GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SQL
cat >"$WORK/specialisation.sql" <<SQL
SELECT s.specialisation AS k1, NULL::text AS k2, $SUMS $FROM LEFT JOIN irccs i ON i.organisation_id = o.id LEFT JOIN LATERAL unnest(i.specialisations) AS s(specialisation) ON TRUE WHERE TRUE AND o.archived_at IS NULL AND o.kind = 'irccs' GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SELECT count(*) AS total FROM organisations o WHERE TRUE AND o.archived_at IS NULL AND o.kind = 'irccs';
SQL
cat >"$WORK/search.sql" <<SQL
SET pg_trgm.word_similarity_threshold = 0.5;
SELECT o.kind AS k1, NULL::text AS k2, $SUMS $FROM WHERE TRUE AND o.archived_at IS NULL AND o.id IN (SELECT id FROM organisations WHERE search_key LIKE '%' || lshub_fold('farmaceutika') || '%' UNION ALL SELECT id FROM organisations WHERE lshub_fold('farmaceutika') <% search_key) GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SQL
cat >"$WORK/goals.sql" <<SQL
SELECT id, code, title FROM goals WHERE archived_at IS NULL ORDER BY code, id;
SELECT l.goal_id, a.status AS label, count(*) AS count FROM goal_activity_links l JOIN goals g ON g.id = l.goal_id AND g.archived_at IS NULL JOIN activities a ON a.id = l.activity_id AND a.archived_at IS NULL GROUP BY 1, 2;
SELECT gp.goal_id, NULL::text AS label, count(DISTINCT gp.organisation_id) AS count FROM goal_partners gp JOIN goals g ON g.id = gp.goal_id AND g.archived_at IS NULL JOIN organisations o ON o.id = gp.organisation_id AND o.archived_at IS NULL WHERE gp.valid @> current_date GROUP BY 1;
SELECT l.goal_id, o.kind AS label, count(DISTINCT ap.organisation_id) AS count FROM goal_activity_links l JOIN goals g ON g.id = l.goal_id AND g.archived_at IS NULL JOIN activities a ON a.id = l.activity_id AND a.archived_at IS NULL JOIN activity_participants ap ON ap.activity_id = a.id AND ap.status IN ('proposed', 'confirmed') JOIN organisations o ON o.id = ap.organisation_id AND o.archived_at IS NULL GROUP BY 1, 2;
SQL
cat >"$WORK/poll.sql" <<SQL
SELECT coalesce(sum(value), 0)::bigint FROM change_counter;
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
pg_case() { # name
  "$PGBENCH" -n -M extended -c "$CONNS" -j 2 -T "${DURATION%s}" -f "$WORK/$1.sql" "$URL" >"$WORK/$1.pg" 2>&1
  local tps lat
  tps=$(awk -F'= ' '/^tps/{split($2,a," "); print a[1]}' "$WORK/$1.pg")
  lat=$(awk -F'= ' '/latency average/{print $2}' "$WORK/$1.pg")
  echo "$tps $lat"
}

printf '\n%s companies seeded in %d ms (%s organisations); %s connections, %s per case, %s cores\n\n' \
  "$N" "$seed_ms" "$(psql -Atq "$URL" -c 'SELECT count(*) FROM organisations')" "$CONNS" "$DURATION" "$(nproc)"
printf '%-38s | %10s %9s %9s %7s | %10s %12s\n' case "lshub rps" p50 p99 non-2xx "SQL tps" "SQL latency"
printf '%s\n' "---------------------------------------+----------------------------------------+--------------------------"
row() { # label name path [header]
  local label=$1 name=$2 path=$3; shift 3
  read -r rps p50 p99 bad < <(wrk_case "$name" "$path" "$@")
  read -r tps lat < <(pg_case "$name")
  printf '%-38s | %10s %9s %9s %7s | %10s %12s\n' "$label" "$rps" "$p50" "$p99" "$bad" "$tps" "$lat"
}
row "group_by=kind (everything)" kind "/api/v1/stats/organisations?group_by=kind"
row "group_by=kind,province" kind_province "/api/v1/stats/organisations?group_by=kind,province"
row "sector,in_mind; MI, >= 10 employees" sector_mi "/api/v1/stats/organisations?group_by=sector,in_mind&province=MI&min_employees=10"
row "group_by=specialisation&kind=irccs" specialisation "/api/v1/stats/organisations?group_by=specialisation&kind=irccs"
row "group_by=kind&q=farmaceutika (typo)" search "/api/v1/stats/organisations?group_by=kind&q=farmaceutika"
row "stats/goals" goals "/api/v1/stats/goals"
row "poll unchanged stats (304)" poll "/api/v1/stats/organisations?group_by=kind,province" "If-None-Match: $ETAG"
# One client alone: the latency of one answer when nothing queues behind it.
alone() { # label path
  wrk -t1 -c1 -d"$DURATION" --latency -H "$AUTH" "$BASE$2" >"$WORK/alone.wrk"
  printf '%-38s | p50 %9s  p99 %9s\n' "$1" "$(awk '$1=="50%"{print $2}' "$WORK/alone.wrk")" "$(awk '$1=="99%"{print $2}' "$WORK/alone.wrk")"
}
printf '\none client alone\n'
alone "group_by=kind (everything)" "/api/v1/stats/organisations?group_by=kind"
alone "group_by=kind,province" "/api/v1/stats/organisations?group_by=kind,province"
alone "stats/goals" "/api/v1/stats/goals"
printf '\nlshub peak RSS: %s\n' "$(awk '/VmHWM/{print $2, $3}' /proc/$PID/status)"
echo "(non-2xx counts answers neither 2xx nor 3xx, so the 304s are not in it; the SQL column runs the statements each case needs)"
