#!/usr/bin/env bash
# Bulk imports: POST /api/v1/imports with N companies (JSON and CSV; create, update, unchanged,
# dry run), beside the same rows written by raw SQL (COPY into a scratch table, then one
# INSERT ... SELECT per table, audit rows included), in one run, on one machine.
#
#   bench/imports.sh              # 10,000 rows
#   N=50000 bench/imports.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, no password), curl and python3. Builds the
# release binary. Drops and recreates the database `lshub_bench_import`. Prints one table: the
# wall time of each import request (curl's time_total, body upload included) and of the raw
# SQL, and the server's peak RSS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-10000}
PORT=${PORT:-18182}
DB=${DB:-lshub_bench_import}
PG=postgres://postgres@127.0.0.1:5432
URL=$PG/$DB
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)

cargo build --release --locked --bin lshub
BIN=${CARGO_TARGET_DIR:-target}/release/lshub

psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
DATABASE_URL=$URL "$BIN" migrate >/dev/null
echo 'a benchmark password' | DATABASE_URL=$URL "$BIN" user create bench@lshub.example --role editor --password-stdin >/dev/null

# Limits out of the way: this measures the import, not the limiter.
DATABASE_URL=$URL LSHUB_JWT_SECRET=$(head -c 48 /dev/urandom | base64) LSHUB_BIND=127.0.0.1:$PORT \
  LSHUB_REQUEST_TIMEOUT=300 LSHUB_DB_STATEMENT_TIMEOUT=300 LSHUB_RATE_LIMIT_PER_MINUTE=0 \
  LSHUB_LOG_FORMAT=json RUST_LOG=warn "$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "$BASE/readyz" >/dev/null && break; sleep 0.1; done

TOKEN=$(curl -fs -X POST "$BASE/api/v1/auth/token" -d grant_type=password \
  -d username=bench@lshub.example -d 'password=a benchmark password' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# N companies with valid VAT numbers, as JSON rows and as CSV with the export's columns; and
# the same rows with one more employee each, for the update case.
python3 - "$N" "$WORK" <<'PY'
import csv, json, sys
n, work = int(sys.argv[1]), sys.argv[2]
def vat(i):
    first10 = f"{i:07d}015"
    total = 0
    for k, ch in enumerate(first10):
        d = int(ch)
        total += d if k % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
    return first10 + str((10 - total % 10) % 10)
sectors = ["pharmaceutical", "biotech", "medical_devices", "cdmo", "digital_health"]
rows = [{"name": f"Azienda Importata {i:06d} S.r.l.", "sector": sectors[i % 5],
         "vat_number": vat(i + 1), "employees": 10 + i % 500, "founded_year": 1950 + i % 70,
         "website": f"https://azienda{i}.example.it", "tags": ["imported", f"batch-{i % 10}"],
         "address": {"street": f"Via Roma {i % 200 + 1}", "city": "Milano",
                     "postal_code": "20121", "province": "MI"}} for i in range(n)]
json.dump(rows, open(f"{work}/rows.json", "w"))
for r in rows:
    r["employees"] += 1
json.dump(rows, open(f"{work}/rows-updated.json", "w"))
columns = ["name", "sector", "vat_number", "employees", "founded_year", "website", "tags",
           "address_street", "address_city", "address_postal_code", "address_province"]
with open(f"{work}/rows.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(columns)
    for r in rows:
        a = r["address"]
        w.writerow([r["name"], r["sector"], r["vat_number"], r["employees"] - 1,
                    r["founded_year"], r["website"], ";".join(r["tags"]), a["street"],
                    a["city"], a["postal_code"], a["province"]])
PY

import_case() { # query file content-type -> "seconds created updated unchanged"
  curl -fsS -o "$WORK/answer.json" -w '%{time_total}' -X POST "$BASE/api/v1/imports?$1" \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: $3" --data-binary "@$WORK/$2" >"$WORK/time"
  python3 - "$WORK/answer.json" "$(cat "$WORK/time")" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
print(sys.argv[2], a["created"], a["updated"], a["unchanged"])
PY
}
reset() {
  psql -q "$URL" -c "TRUNCATE organisations, audit_events CASCADE" >/dev/null
}

raw_sql() { # the same rows, written by hand: identities, details, audit events
  python3 - "$WORK" <<'PY'
import csv, json, sys
work = sys.argv[1]
rows = json.load(open(f"{work}/rows.json"))
with open(f"{work}/raw.csv", "w", newline="") as f:
    w = csv.writer(f)
    for r in rows:
        a = r["address"]
        w.writerow([r["name"], r["sector"], r["vat_number"], r["employees"], r["founded_year"],
                    r["website"], "{" + ",".join(r["tags"]) + "}", a["street"], a["city"],
                    a["postal_code"], a["province"], json.dumps(r)])
PY
  local start end
  start=$(date +%s%N)
  psql -q -v ON_ERROR_STOP=1 "$URL" >/dev/null <<SQL
BEGIN;
CREATE TEMP TABLE raw (name text, sector text, vat text, employees int, founded int,
  website text, tags text[], street text, city text, postal text, province text, doc jsonb)
  ON COMMIT DROP;
\copy raw FROM '$WORK/raw.csv' WITH (FORMAT csv)
ALTER TABLE raw ADD COLUMN id uuid DEFAULT gen_random_uuid();
INSERT INTO organisations (id, kind, name, website, address_street, address_city,
  address_postal_code, address_province, address_country, tags, in_mind, created_at, updated_at)
  SELECT id, 'company', name, website, street, city, postal, province, 'IT', tags, false, now(), now() FROM raw;
INSERT INTO companies (organisation_id, vat_number, sector, employees, founded_year, assolombarda_member)
  SELECT id, vat, sector, employees, founded, false FROM raw;
INSERT INTO audit_events (id, at, actor_kind, action, entity, entity_id, request_id, changes, related)
  SELECT gen_random_uuid(), now(), 'user', 'create', 'company', id, 'raw-sql',
         jsonb_build_object('before', null, 'after', doc), '{}' FROM raw;
COMMIT;
SQL
  end=$(date +%s%N)
  awk -v ns=$((end - start)) 'BEGIN { printf "%.3f", ns / 1e9 }'
}

printf '\n%s companies a request, %s cores\n\n' "$N" "$(nproc)"
printf '%-44s | %9s %8s %8s %9s | %9s\n' case "seconds" created updated unchanged "rows/s"
printf '%s\n' "---------------------------------------------+---------------------------------------+----------"
line() { # label "seconds created updated unchanged"
  read -r secs created updated unchanged <<<"$2"
  printf '%-44s | %9s %8s %8s %9s | %9.0f\n' "$1" "$secs" "$created" "$updated" "$unchanged" \
    "$(awk -v n="$N" -v s="$secs" 'BEGIN { print n / s }')"
}
line "JSON, dry run (validate and match only)" "$(import_case 'kind=companies&dry_run=true' rows.json application/json)"
line "JSON, create" "$(import_case 'kind=companies' rows.json application/json)"
line "JSON, on_conflict=update, every row changed" "$(import_case 'kind=companies&on_conflict=update' rows-updated.json application/json)"
line "JSON, on_conflict=update, nothing changed" "$(import_case 'kind=companies&on_conflict=update' rows-updated.json application/json)"
reset
line "CSV, create" "$(import_case 'kind=companies' rows.csv text/csv)"
reset
secs=$(raw_sql)
line "raw SQL: COPY + INSERT ... SELECT (3 tables)" "$secs $N 0 0"
printf '\nlshub peak RSS: %s\n' "$(awk '/VmHWM/{print $2, $3}' /proc/$PID/status)"
echo "(seconds: the whole request, upload and answer included; raw SQL: the same rows and audit events, no validation or matching)"
