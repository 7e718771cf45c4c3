#!/usr/bin/env python3
"""bench/run's helper: what bash does badly.

  report.py sqllog LOG OFFSET DB EXCLUDE OUT   a request's statements, from PostgreSQL's log,
                                               as a pgbench script (and OUT.vars)
  report.py copy-sql LOG OFFSET DB EXCLUDE OUT  the CSV export's query as a COPY
  report.py background LOG OFFSET DB OUT       statements run with no request in flight
  report.py pgbench OUTPUT LOGS...             pgbench's run as one JSON line, like wrk.lua's
  report.py import-rows N FIRST OUT            N companies to import, VAT numbers from FIRST
  report.py results TSV META OUT               bench/RESULTS.md from the rounds
"""
import json
import os
import re
import statistics
import sys

# The start of a log entry under Debian's default log_line_prefix ('%m [%p] %q%u@%d '):
# continuation lines of a multi-line statement start with a tab instead.
ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (\S*)@(\S*) (\w+):  (.*)$")
STATEMENT = re.compile(r"^(?:statement|execute [^:]+): (.*)$", re.S)
# The registry's size, from the run's metadata: some targets hold at one size only.
SCALE = 0
PARAM = re.compile(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")


def log_statements(path, offset, db):
    """(sql, {n: value}) for each statement logged for `db` after byte `offset`."""
    with open(path, "rb") as f:
        f.seek(int(offset))
        lines = f.read().decode("utf-8", "replace").split("\n")
    entries = []
    for line in lines:
        m = ENTRY.match(line)
        if m:
            entries.append([m.group(3), m.group(4), m.group(5)])
        elif line.startswith("\t") and entries:
            entries[-1][2] += "\n" + line[1:]
    out = []
    for database, level, text in entries:
        if database != db:
            continue
        m = STATEMENT.match(text)
        if level == "LOG" and m:
            out.append((m.group(1).strip(), {}))
        elif level == "DETAIL" and text.startswith("parameters: ") and out:
            out[-1] = (out[-1][0], {int(n): v for n, v in PARAM.findall(text)})
    return out


def sqllog(log, offset, db, exclude, out):
    """Writes the statements as a pgbench script whose parameters stay parameters.

    Each `$n` becomes a pgbench variable passed with -D (OUT.vars), so `-M prepared` sends the
    statement lshub sent, with its values bound, not a literal-substituted variant the planner
    would see differently. A NULL is written inline: -D cannot say NULL. Statements in EXCLUDE
    (one per line: what lshub's background loops ran while nothing was asked) are left out.
    """
    background = set()
    try:
        background = set(json.load(open(exclude)))
    except (FileNotFoundError, ValueError):
        pass
    statements = [s for s in log_statements(log, offset, db) if s[0] not in background]
    script, defines = [], []
    for i, (sql, params) in enumerate(statements):
        fresh = fresh_ids(sql, params)
        def bind(m, i=i, params=params):
            n = int(m.group(1))
            value = params.get(n)
            if n in fresh:
                return "gen_random_uuid()"
            if value is None or value == "NULL":
                return "NULL"
            defines.append(f"s{i}p{n}={value[1:-1].replace(chr(39) * 2, chr(39))}")
            return f":s{i}p{n}"
        script.append(re.sub(r"\$(\d+)", bind, sql).rstrip(";") + ";")
    with open(out, "w") as f:
        f.write("\n".join(script) + "\n")
    with open(out + ".vars", "w") as f:
        f.write("\n".join(defines) + ("\n" if defines else ""))
    print(len(statements))


UUID = re.compile(r"'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'")


def fresh_ids(sql, params):
    """The parameters that give a plain INSERT (no ON CONFLICT) the new row's "id": lshub makes
    those uuids itself, so a replay of the same value would violate the primary key from its
    second run on. The replay asks gen_random_uuid() for one instead."""
    m = re.match(r'INSERT INTO \S+ \(([^)]*)\) VALUES \(([^)]*)\)(.*)$', sql, re.S)
    if not m or "ON CONFLICT" in m.group(3).upper():
        return set()
    columns = [c.strip().strip('"') for c in m.group(1).split(",")]
    values = [v.strip() for v in m.group(2).split(",")]
    if "id" not in columns or len(columns) != len(values):
        return set()
    value = values[columns.index("id")]
    n = int(value[1:]) if re.fullmatch(r"\$\d+", value) else None
    return {n} if n is not None and UUID.fullmatch(params.get(n, "")) else set()


def copy_sql(log, offset, db, exclude, out):
    """The export's first keyset batch as `COPY (...) TO STDOUT`, its LIMIT removed and its
    values written inline (COPY takes no parameters). Fails when no batch was logged."""
    background = set(json.load(open(exclude)))
    for sql, params in log_statements(log, offset, db):
        if sql in background or not re.search(r"\bLIMIT\s+\S+\s*;?\s*$", sql):
            continue
        sql = re.sub(r"\$(\d+)", lambda m: params.get(int(m.group(1)), "NULL"), sql)
        sql = re.sub(r"\s+LIMIT\s+\S+\s*;?\s*$", "", sql)
        with open(out, "w") as f:
            f.write(f"COPY ({sql}) TO STDOUT;\n")
        return
    sys.exit(1)


def background(log, offset, db, out):
    """The statements lshub ran with no request in flight, to leave out of every capture."""
    json.dump(sorted({s for s, _ in log_statements(log, offset, db)}), open(out, "w"))


def pgbench(output, *logs):
    text = open(output).read()
    tps = re.search(r"^tps = ([\d.]+)", text, re.M)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    aborted = "aborted" in text or "ERROR" in text
    cause = re.search(r"ERROR:\s+(.*)", text)
    lat = []
    for path in logs:
        for line in open(path):
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                lat.append(int(parts[2]) / 1000)
    lat.sort()
    pct = lambda p: round(lat[min(len(lat) - 1, int(len(lat) * p / 100))], 3) if lat else None
    print(json.dumps({
        "rps": float(tps.group(1)) if tps and not aborted else None,
        "p50": pct(50), "p95": pct(95), "p99": pct(99), "requests": len(lat),
        "errors": int(failed.group(1)) if failed else 0, "aborted": aborted,
        **({"cause": cause.group(1).strip()} if cause else {}),
    }))


def vat(n):
    """A valid Partita IVA, its last three digits 999: none of `lshub seed --synthetic`'s."""
    first10 = f"{n:07d}999"
    total = 0
    for k, ch in enumerate(first10):
        d = int(ch)
        total += d if k % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
    return first10 + str((10 - total % 10) % 10)


def import_rows(n, first, out):
    n, first = int(n), int(first)
    sectors = ["pharmaceutical", "biotech", "medical_devices", "cdmo", "digital_health"]
    rows = [{"name": f"Azienda Importata {first + i:07d} S.r.l.", "sector": sectors[i % 5],
             "vat_number": vat(first + i), "employees": 10 + i % 500, "founded_year": 1950 + i % 70,
             "website": f"https://azienda{first + i}.example.it", "tags": ["imported", f"batch-{i % 10}"],
             "address": {"street": f"Via Roma {i % 200 + 1}", "city": "Milano",
                         "postal_code": "20121", "province": "MI"}} for i in range(n)]
    json.dump(rows, open(out, "w"))


def fmt(v, spec="{:.0f}"):
    return "—" if v is None else spec.format(v)


def judge(target, row, rows):
    """(target text, 'met' | 'missed' | '—') for one case's medians."""
    if not target or target == "-":
        return "—", "—"
    kind, _, value = target.partition(":")
    value = float(value) if value else 0.0
    checks = {
        "ratio": (f"≥ {value:.2f} of pgbench", lambda: row["ratio"] >= value),
        "p95": (f"p95 ≤ {value:.0f} ms", lambda: row["lshub"]["p95"] <= value),
        "first": ("as fast as the first page (≥ 0.9×)",
                  lambda: row["lshub"]["rps"] >= 0.9 * rows["first"]["lshub"]["rps"]),
        "secs": (f"≤ {value:.0f} s", lambda: row["lshub"]["secs"] <= value),
        "csv": ("≤ 1.5× COPY + 0.3 s, RSS ≤ 64 MiB",
                lambda: row["lshub"]["secs"] <= 1.5 * row["pg"]["secs"] + 0.3
                and row["lshub"]["rss_kib"] <= 64 * 1024),
        "p95at1m": (f"p95 ≤ {value:.0f} ms at 1,000,000 (BENCH_SCALE=1m)",
                    (lambda: row["lshub"]["p95"] <= value) if SCALE >= 1_000_000 else None),
    }
    text, check = checks[kind]
    if check is None:
        return text, "not judged at this scale"
    try:
        verdict = "met" if check() else "**missed**"
        return text, verdict + (f" (p95 {row['lshub']['p95']:.1f} ms)" if kind.startswith("p95") else "")
    except (TypeError, KeyError, ZeroDivisionError):
        return text, "no number"


def results(tsv, meta, out):
    """RESULTS.md from the rounds: each number the median over rounds, the ratio the median of
    the rounds' ratios (one round's two sides ran back to back, so their ratio is the stable
    number on a noisy machine)."""
    meta = json.load(open(meta))
    global SCALE
    SCALE = int(meta["n"])
    cases, order = {}, []
    for line in open(tsv):
        rnd, name, side, label, target, note, data = line.rstrip("\n").split("\t")
        if name not in cases:
            order.append(name)
            cases[name] = {"label": label, "target": target, "note": note, "rounds": {}}
        cases[name]["rounds"].setdefault(rnd, {})[side] = json.loads(data)

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    rows = {}
    for name in order:
        c = cases[name]
        rounds = list(c["rounds"].values())
        agg = {}
        for side in ("lshub", "pg"):
            got = [r[side] for r in rounds if side in r]
            keys = {k for g in got for k in g if isinstance(g[k], (int, float)) and not isinstance(g[k], bool)}
            agg[side] = {k: median([g.get(k) for g in got]) for k in keys} if got else None
        ratios = []
        for r in rounds:
            a, b = r.get("lshub", {}), r.get("pg") or {}
            if a.get("rps") and b.get("rps"):
                ratios.append(a["rps"] / b["rps"])
            elif a.get("secs") and b.get("secs"):
                ratios.append(a["secs"] / b["secs"])
        rows[name] = {**c, "lshub": agg["lshub"] or {}, "pg": agg["pg"], "ratio": median(ratios)}

    lines = [
        "# bench/run results",
        "",
        f"**{meta['label']}**",
        "",
        f"- machine: {meta['cores']} cores ({meta['cpu']}), {meta['ram']} RAM; {meta['postgres']}",
        f"- date: {meta['date']}; commit `{meta['commit']}`",
        f"- registry: `lshub seed --synthetic {meta['n']}` ({meta['organisations']} organisations, "
        f"seeded in {meta['seed_s']} s); {meta['conns']} connections on both sides; "
        f"{meta['rounds']} interleaved round(s) of {meta['duration']} per case after a "
        f"{meta['warmup']} warm-up",
        f"- run: `{meta['command']}`",
        "",
        "Each number is the median over the rounds; the ratio is the median of the rounds' "
        "lshub ÷ pgbench (throughput), or lshub ÷ COPY (time) for the CSV. pgbench runs "
        "`-M prepared` with the statements lshub sent for the case, as PostgreSQL's statement "
        "log recorded them for one warm request, "
        "values bound as parameters (`KEEP_WORK=1 bench/run` keeps them, under `sql/`). RSS is the server's peak during the case (VmHWM, reset "
        "before each case). Both sides reach their server over TCP on loopback, and lshub and "
        "pgbench connect to PostgreSQL with one URL.",
        "",
        "| case | lshub rps | p50 ms | p99 ms | pgbench tps | p50 ms | p99 ms | ratio | lshub peak RSS | target | |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in order:
        r = rows[name]
        a, b = r["lshub"], r["pg"] or {}
        if "secs" in a:
            cells = [f"{a['secs']:.2f} s", "", "", f"{b['secs']:.2f} s" if b.get("secs") else "—", "", ""]
        else:
            cells = [fmt(a.get("rps")), fmt(a.get("p50"), "{:.2f}"), fmt(a.get("p99"), "{:.2f}"),
                     fmt(b.get("rps")), fmt(b.get("p50"), "{:.2f}"), fmt(b.get("p99"), "{:.2f}")]
        ratio = fmt(r["ratio"], "{:.2f}") + ("×" if "secs" in a and r["ratio"] else "")
        text, verdict = judge(r["target"], r, rows)
        rss = fmt(a.get("rss_kib") and a["rss_kib"] / 1024, "{:.1f} MiB")
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {ratio} | {rss} | {text} | {verdict} |")
    lines += ["", "Notes:", "",
              "- network / matches: not measured; those queries do not exist yet (a commented "
              "row waits in bench/run's case table)."]
    for name in order:
        r = rows[name]
        errors = [f"{side} {int(r[side]['errors'])} errors" for side in ("lshub", "pg")
                  if r[side] and r[side].get("errors")]
        causes = sorted({g["cause"] for g in cases[name]["rounds"].values() for g in [g.get("pg") or {}] if "cause" in g})
        notes = [n for n in [r["note"]] + errors + [f"pgbench failed: {c}" for c in causes] if n and n != "-"]
        if notes:
            lines.append(f"- {r['label']}: " + "; ".join(notes))
    # The log of what each change bought, and what follows it, outlive a run: kept from the file
    # this one replaces.
    kept = None
    if os.path.exists(out):
        text = open(out).read()
        at = text.find("\n## What each change bought")
        kept = text[at + 1:] if at >= 0 else None
    if kept is None:
        kept = "\n".join([
            "## What each change bought",
            "",
            "Each optimisation's commit adds a line: the change, the cases it moved, before → after "
            "(medians of `bench/run` on the same machine).",
            "",
            "| commit | change | case | before | after |",
            "|---|---|---|---|---|",
            "",
        ])
    lines += [""]
    open(out, "w").write("\n".join(lines) + "\n" + kept)


if __name__ == "__main__":
    commands = {"sqllog": sqllog, "background": background, "pgbench": pgbench,
                "import-rows": import_rows, "copy-sql": copy_sql, "results": results}
    commands[sys.argv[1]](*sys.argv[2:])
