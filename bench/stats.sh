#!/usr/bin/env bash
# Statistics under load: lshub's /stats endpoints beside the same SQL run by pgbench, in one
# run, on one machine, against one synthetic registry (100,000 companies by default, and IRCCS,
# universities and partners in proportion). Cases whose filters are the rollup's dimensions
# are answered from the rollup (migration 000016); pgbench runs both the rollup's statement
# and the live GROUP BY it replaces, so the table shows what the rollup saves.
#
#   bench/stats.sh                      # 100,000 companies, 10 s per case, 16 connections
#   N=20000 DURATION=5s CONNS=8 bench/stats.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password), wrk and pgbench (installed
# with apt-get when missing). Builds the release binary. Drops and recreates the database
# `lshub_bench_stats` (or $DB). Prints one table: requests/s, p50, p95 and p99 latency for each
# case, lshub; the statements lshub runs for it, tps and mean latency under pgbench; and the
# live GROUP BY's under pgbench (the same, for cases the rollup cannot answer). The target is
# p95 <= 50 ms.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-100000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
PORT=${PORT:-18182}
DB=${DB:-lshub_bench_stats}
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
# An editor, for the include_archived case.
echo 'a benchmark password' | DATABASE_URL=$URL "$BIN" user create bench@lshub.example --role editor --password-stdin >/dev/null

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

# The statements lshub runs for each case (src/models/stats.rs), written out: `NAME.sql` what
# lshub runs, `NAME.live.sql` the live GROUP BY where the rollup answers instead.
SUMS="count(*) AS count, sum(c.employees)::bigint AS employees, sum(c.revenue_eur)::bigint AS revenue_eur, sum(c.rd_investment_eur)::bigint AS rd_investment_eur, sum(c.exports_eur)::bigint AS exports_eur"
FROM="FROM organisations o LEFT JOIN companies c ON c.organisation_id = o.id"
rollup() { # k1 k2 counted where
  s() { echo "CASE WHEN sum(r.$1_n) > 0 THEN sum(r.$1) END::bigint AS $1"; }
  echo "SELECT $1 AS k1, $2 AS k2, sum($3)::bigint AS count, $(s employees), $(s revenue_eur), $(s rd_investment_eur), $(s exports_eur), sum(r.organisations)::bigint AS organisations FROM (SELECT * FROM organisation_stats UNION ALL SELECT * FROM organisation_stats_delta) r WHERE TRUE $4 GROUP BY 1, 2 HAVING sum($3) > 0 ORDER BY 1 NULLS LAST, 2 NULLS LAST;"
}
rollup r.kind NULL::text r.organisations "AND NOT r.archived" >"$WORK/kind.sql"
cat >"$WORK/kind.live.sql" <<SQL
SELECT o.kind AS k1, NULL::text AS k2, $SUMS $FROM WHERE TRUE AND o.archived_at IS NULL GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SQL
rollup r.kind r.province r.organisations "AND NOT r.archived" >"$WORK/kind_province.sql"
cat >"$WORK/kind_province.live.sql" <<SQL
SELECT o.kind AS k1, o.address_province AS k2, $SUMS $FROM WHERE TRUE AND o.archived_at IS NULL GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SQL
rollup r.sector r.province r.organisations "AND r.kind = 'company'" >"$WORK/sector_archived.sql"
cat >"$WORK/sector_archived.live.sql" <<SQL
SELECT c.sector AS k1, o.address_province AS k2, $SUMS $FROM WHERE TRUE AND o.kind = 'company' GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SQL
rollup r.specialisation r.in_mind::text r.members "AND NOT r.archived" >"$WORK/specialisation.sql"
cat >"$WORK/specialisation.live.sql" <<SQL
SELECT s.specialisation AS k1, o.in_mind::text AS k2, $SUMS $FROM LEFT JOIN irccs i ON i.organisation_id = o.id LEFT JOIN LATERAL unnest(i.specialisations) AS s(specialisation) ON TRUE WHERE TRUE AND o.archived_at IS NULL GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SELECT count(*) AS total FROM organisations o WHERE TRUE AND o.archived_at IS NULL;
SQL
rollup r.partner_type NULL::text r.organisations "AND NOT r.archived AND r.province = 'MI' AND r.kind = 'partner'" >"$WORK/partner_mi.sql"
cat >"$WORK/partner_mi.live.sql" <<SQL
SELECT p.partner_type AS k1, NULL::text AS k2, $SUMS $FROM LEFT JOIN partners p ON p.organisation_id = o.id WHERE TRUE AND o.archived_at IS NULL AND o.address_province = 'MI' AND o.kind = 'partner' GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
SQL
cat >"$WORK/sector_mi.sql" <<SQL
SELECT c.sector AS k1, o.in_mind::text AS k2, $SUMS $FROM WHERE TRUE AND o.archived_at IS NULL AND o.address_province = 'MI' AND ((TRUE AND o.kind = 'company' AND o.id IN (SELECT d.organisation_id FROM companies d WHERE TRUE AND d.employees >= 10))) GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST;
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

# wrk prints p50/p75/p90/p99; the target is a p95, which its Lua hook reads off the histogram.
cat >"$WORK/p95.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("p95 %.2fms\n", latency:percentile(95.0) / 1000))
end
LUA
wrk_case() { # name path [extra header]
  local args=(-t2 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/p95.lua" -H "$AUTH")
  [[ $# -ge 3 ]] && args+=(-H "$3")
  wrk "${args[@]}" "$BASE$2" >"$WORK/$1.wrk"
  local rps p50 p95 p99 non2xx
  rps=$(awk '/Requests\/sec/{print $2}' "$WORK/$1.wrk")
  p50=$(awk '$1=="50%"{print $2}' "$WORK/$1.wrk")
  p95=$(awk '$1=="p95"{print $2}' "$WORK/$1.wrk")
  p99=$(awk '$1=="99%"{print $2}' "$WORK/$1.wrk")
  non2xx=$(awk '/Non-2xx/{print $NF}' "$WORK/$1.wrk")
  echo "$rps $p50 $p95 $p99 ${non2xx:-0}"
}
pg_case() { # file (without .sql)
  [[ -f $WORK/$1.sql ]] || { echo "- (same)"; return; }
  "$PGBENCH" -n -M extended -c "$CONNS" -j 2 -T "${DURATION%s}" -f "$WORK/$1.sql" "$URL" >"$WORK/$1.pg" 2>&1
  local tps lat
  tps=$(awk -F'= ' '/^tps/{split($2,a," "); print a[1]}' "$WORK/$1.pg")
  lat=$(awk -F'= ' '/latency average/{print $2}' "$WORK/$1.pg")
  echo "$tps $lat"
}

printf '\n%s companies seeded in %d ms (%s organisations); %s connections, %s per case, %s cores\n\n' \
  "$N" "$seed_ms" "$(psql -Atq "$URL" -c 'SELECT count(*) FROM organisations')" "$CONNS" "$DURATION" "$(nproc)"
printf '%-42s | %10s %9s %9s %9s %7s | %10s %12s | %10s %12s\n' case "lshub rps" p50 p95 p99 non-2xx "SQL tps" "SQL latency" "live tps" "live latency"
printf '%s\n' "-------------------------------------------+----------------------------------------+--------------------------+--------------------------"
row() { # label name path [header]
  local label=$1 name=$2 path=$3; shift 3
  read -r rps p50 p95 p99 bad < <(wrk_case "$name" "$path" "$@")
  read -r tps lat < <(pg_case "$name")
  read -r live_tps live_lat < <(pg_case "$name.live")
  printf '%-42s | %10s %9s %9s %9s %7s | %10s %12s | %10s %12s\n' "$label" "$rps" "$p50" "$p95" "$p99" "$bad" "$tps" "$lat" "$live_tps" "$live_lat"
}
row "rollup: group_by=kind (everything)" kind "/api/v1/stats/organisations?group_by=kind"
row "rollup: group_by=kind,province" kind_province "/api/v1/stats/organisations?group_by=kind,province"
row "rollup: sector,province; company, archived" sector_archived "/api/v1/stats/organisations?group_by=sector,province&kind=company&include_archived=true"
row "rollup: group_by=specialisation,in_mind" specialisation "/api/v1/stats/organisations?group_by=specialisation,in_mind"
row "rollup: partner_type; MI, partners" partner_mi "/api/v1/stats/organisations?group_by=partner_type&province=MI&kind=partner"
row "live: sector,in_mind; MI, >= 10 employees" sector_mi "/api/v1/stats/organisations?group_by=sector,in_mind&province=MI&min_employees=10"
row "live: group_by=kind&q=farmaceutika (typo)" search "/api/v1/stats/organisations?group_by=kind&q=farmaceutika"
row "stats/goals" goals "/api/v1/stats/goals"
row "poll unchanged stats (304)" poll "/api/v1/stats/organisations?group_by=kind,province" "If-None-Match: $ETAG"
# One client alone: the latency of one answer when nothing queues behind it.
alone() { # label path
  wrk -t1 -c1 -d"$DURATION" --latency -s "$WORK/p95.lua" -H "$AUTH" "$BASE$2" >"$WORK/alone.wrk"
  printf '%-42s | p50 %9s  p95 %9s  p99 %9s\n' "$1" "$(awk '$1=="50%"{print $2}' "$WORK/alone.wrk")" "$(awk '$1=="p95"{print $2}' "$WORK/alone.wrk")" "$(awk '$1=="99%"{print $2}' "$WORK/alone.wrk")"
}
printf '\none client alone\n'
alone "group_by=kind (everything)" "/api/v1/stats/organisations?group_by=kind"
alone "group_by=kind,province" "/api/v1/stats/organisations?group_by=kind,province"
alone "live: sector,in_mind; MI, >= 10 employees" "/api/v1/stats/organisations?group_by=sector,in_mind&province=MI&min_employees=10"
alone "stats/goals" "/api/v1/stats/goals"
printf '\nlshub peak RSS: %s\n' "$(awk '/VmHWM/{print $2, $3}' /proc/$PID/status)"
printf 'rollup: %s base rows, %s delta rows\n' "$(psql -Atq "$URL" -c 'SELECT count(*) FROM organisation_stats')" "$(psql -Atq "$URL" -c 'SELECT count(*) FROM organisation_stats_delta')"
echo "(non-2xx counts answers neither 2xx nor 3xx, so the 304s are not in it; the SQL column runs the statements lshub runs for each case, the live column the GROUP BY the rollup replaces)"
