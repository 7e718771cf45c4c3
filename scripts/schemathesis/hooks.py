"""Schemathesis hooks for lshub: the server rules that an OpenAPI schema cannot state.

Loaded by scripts/schemathesis.sh through `SCHEMATHESIS_HOOKS` (Schemathesis 4.32), beside
`schemathesis.toml` (its `--config-file`). Every repair below mirrors one rule of the server and
names where that rule lives; the checks themselves stay as Schemathesis ships them.

How: one `before_call` hook, which Schemathesis runs before every request of every phase
(examples, coverage, fuzzing, stateful). It looks at `case.meta.components`, which says for each
part of the request (path, query, headers, body) whether it was generated valid (positive) or
invalid (negative), and repairs only the parts generated valid, so that "valid by the schema" is
also valid by the rules the schema cannot express. A part generated invalid is never touched: a
negative case stays exactly as negative as Schemathesis made it, and its other, valid parts are
made really valid so that the server's rejection can only come from the mutation. Schemathesis
revalidates every part a `before_call` hook changes against the schema (`Case.call`), so a repair
cannot smuggle schema-invalid data into a positive case unnoticed. (`map_body` and friends were
not used: they see a value without knowing whether it was generated positive or negative, and
the coverage phase does not run them. `map_case` runs when a case is generated, which is too
early for an ETag: earlier steps of a stateful scenario change the record after that.)
An `after_call` hook records the `next_cursor` of every list page the server answers.

What it repairs:
  * `If-Match` on writes: the current ETag, read with a GET just before the write.
  * `cursor` of lists: only cursors the server handed out, for the same list and filters.
  * Body values with a checksum: the Partita IVA check digit, the ROR id checksum.
  * Cross-field rules: dates in order, `device_segment` with `medical_devices`, `province`
    and the postal code against the address's country (for PATCH, against the merged record).
  * Uniqueness inside one body: tags ignoring case, one ranking per (area, source, year).
  * Rules that move with the calendar: `founded_year` and ranking years not in the future.
  * References in create bodies (`organisation_id`, `goal_id`, `activity_id`) that name no live
    record: replaced by ones that do.
  * A VAT number or ROR id that this run already sent in a create: moved to the next free
    number of the same shape (they are unique for good, and the repairs funnel values together).
  * `Idempotency-Key` on POSTs: a fresh key per request. Hypothesis hands the same few values
    to every operation, and a key sent before with another request is 422
    `idempotency_key_reused` by design (src/http/machinery/idempotency.rs), which a positive case
    must not answer; replays are the integration tests' (tests/api/idempotency.rs).

And one check, `lshub_write_finds_live_record`: a PATCH or DELETE whose target the hook has just
read (200) must not answer 404. It is what keeps Schemathesis' acceptance of 404 for positive
cases honest here: 404 stays a valid answer for ids that name nothing, never for ones that do.

Nothing here is an allow-list of failures: no `filter_failure`, no status added to what a
positive case may answer. What the hooks did is logged, one line per change, to the file named
by LSHUB_ST_HOOKS_LOG when it is set.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import threading
import uuid
from typing import Any

import requests

import schemathesis
from schemathesis.core.parameters import ParameterLocation

API = "/api/v1"
# The hook's own reads: short, so a stuck server shows up as the write's failure, not here.
READ_TIMEOUT = 10

_LOCK = threading.Lock()
_SESSION = requests.Session()
# LSHUB_ST_HOOKS_LOG=FILE: one line per change, to see what the hooks did and why.
_LOG = os.environ.get("LSHUB_ST_HOOKS_LOG")


def _note(case: Any, what: str) -> None:
    if _LOG:
        with _LOCK, open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{case.method.upper()} {case.formatted_path}: {what}\n")


# ---------------------------------------------------------------------------------------------
# what was generated valid


def _valid(case: Any, location: ParameterLocation) -> bool:
    """Whether the part of `case` at `location` exists and was generated positive."""
    meta = case.meta
    if meta is None:
        return False
    component = meta.components.get(location)
    return component is not None and component.mode.is_positive


def _header_valid(case: Any) -> bool:
    """Headers not generated negative. The examples and stateful phases record no component
    for them (they send the schema's example, or fill only what links pass on) and send
    positive data only, so there a write's If-Match is the hook's to set too: a record that an
    earlier write moved on (a secret rotation, say) must be sent the version that write left,
    not the example's "1"."""
    meta = case.meta
    if meta is None:
        return False
    component = meta.components.get(ParameterLocation.HEADER)
    return component is None or component.mode.is_positive


def _path_valid(case: Any) -> bool:
    """Path parameters (if any) generated valid: the request targets a well-formed URL. In the
    stateful phase they come from an earlier response through a link, and `components` has no
    entry for them: a value the server handed out is a valid one."""
    meta = case.meta
    if meta is None or not case.operation.path_parameters:
        return meta is not None
    component = meta.components.get(ParameterLocation.PATH)
    return component is None or component.mode.is_positive


# ---------------------------------------------------------------------------------------------
# the hook's own HTTP reads, as the caller under test


def _auth(case: Any) -> dict[str, str]:
    """The configured Authorization header (`--header`), which the hook's reads reuse."""
    headers = case.operation.schema.config.headers_for(operation=case.operation) or {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            return {"Authorization": value}
    return {}


def _base(case: Any) -> str:
    return (case.operation.base_url or case.operation.schema.get_base_url()).rstrip("/")


def _get(case: Any, path: str, params: dict[str, str] | None = None):
    try:
        return _SESSION.get(
            _base(case) + path, params=params, headers=_auth(case), timeout=READ_TIMEOUT
        )
    except requests.RequestException:
        return None


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Idempotency-Key: one per request (src/http/machinery/idempotency.rs)


def _fix_idempotency_key(case: Any) -> None:
    if not _valid(case, ParameterLocation.HEADER):
        return
    if any(name.lower() == "idempotency-key" for name in (case.headers or {})):
        key = uuid.uuid4().hex
        _set_header(case, "Idempotency-Key", key)
        _note(case, f"Idempotency-Key -> {key}")


# ---------------------------------------------------------------------------------------------
# If-Match: the current ETag (src/http/etag.rs `required_if_match`, `check_version`)


def _takes_if_match(operation: Any) -> bool:
    return any(parameter.name.lower() == "if-match" for parameter in operation.headers)


# Paths that answered 404 with and without `include_archived`: ids are UUIDs the server draws
# (v7) and never reuses, so what is absent now stays absent, and the next case aimed at the
# same generated id need not ask again.
_ABSENT: set[str] = set()


def _current(case: Any) -> tuple[str | None, Any, bool]:
    """Reads the record a write targets: (ETag, body, whether it is live).

    `POST .../restore` and `POST .../rotate-secret` target `...`; an archived record is
    readable only with `include_archived=true` (editors and admins: README "Delete archives"),
    tried second.
    """
    path = case.formatted_path
    for action in ("/restore", "/rotate-secret"):
        if case.method.upper() == "POST" and path.endswith(action):
            path = path[: -len(action)]
    if path in _ABSENT:
        return None, None, False
    statuses = []
    for params, live in ((None, True), ({"include_archived": "true"}, False)):
        response = _get(case, path, params)
        if response is not None and response.status_code == 200 and response.headers.get("ETag"):
            return response.headers["ETag"], _json(response), live
        statuses.append(response.status_code if response is not None else None)
    _note(case, f"GET {path}: {statuses}")
    if statuses == [404, 404]:
        _ABSENT.add(path)
    return None, None, False


def _may_call(case: Any) -> bool:
    """Whether the caller's role is in the operation's `x-roles` (src/http/routes.rs: the
    list the role check reads). Otherwise the answer is 403 before If-Match is looked at
    (check order: 401, 403, 404, ...), so the hook does not read the record for nothing."""
    roles = case.operation.definition.raw.get("x-roles")
    role = _me(case).get("role")
    return not isinstance(roles, list) or role is None or role in roles


def _set_header(case: Any, name: str, value: str) -> None:
    headers = dict(case.headers or {})
    for key in [k for k in headers if k.lower() == name.lower()]:
        del headers[key]
    headers[name] = value
    case.headers = headers


# PATCH/DELETE cases whose target the hook read live just before; see the check at the end.
_READ_LIVE: dict[int, str] = {}


# ---------------------------------------------------------------------------------------------
# cursors (src/db/list.rs: a cursor is bound to its resource, sort, `q` and filters, else 400
# `invalid_cursor`; `limit` is not part of that binding)

_CURSORS: dict[tuple, list[str]] = {}
_NOT_BINDING = {"cursor", "limit"}


def _list_key(case: Any) -> tuple:
    query = case.query or {}
    items = []
    for name, value in query.items():
        if name in _NOT_BINDING:
            continue
        if isinstance(value, (list, tuple)):
            value = tuple(str(v) for v in value)
        else:
            value = str(value)
        items.append((name, value))
    return (case.formatted_path, tuple(sorted(items)))


def _fix_cursor(case: Any) -> None:
    """A generated `cursor` is rightly 400: send one the server issued for this very list, or none."""
    if not case.query or "cursor" not in case.query or not _valid(case, ParameterLocation.QUERY):
        return
    with _LOCK:
        issued = _CURSORS.get(_list_key(case))
    query = dict(case.query)
    _note(case, f"cursor {query['cursor']!r} -> {'an issued one' if issued else 'dropped'}")
    if issued:
        # Deterministic for a given generated value, so a seeded run repeats itself.
        query["cursor"] = issued[_pick(str(query["cursor"]), len(issued))]
    else:
        del query["cursor"]
    case.query = query


def _remember_cursor(case: Any, response: Any) -> None:
    if case.method.upper() != "GET" or response.status_code != 200:
        return
    if "json" not in ",".join(response.headers.get("content-type", [])):
        return
    body = _json(response)
    cursor = body.get("next_cursor") if isinstance(body, dict) else None
    if isinstance(cursor, str) and cursor:
        with _LOCK:
            issued = _CURSORS.setdefault(_list_key(case), [])
            if cursor not in issued and len(issued) < 50:
                issued.append(cursor)


def _pick(seed: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "big") % n


# ---------------------------------------------------------------------------------------------
# checksums

# src/domain/vat.rs: a Partita IVA is 11 digits (optionally after `IT`), its office code
# (digits 8-10) is never 000, and its last digit is the Luhn-like check digit of the first ten.
# Foreign numbers carry no check digit the server verifies, so they are left as generated; so is
# any value not shaped like a Partita IVA (whether it is acceptable is the schema's to say).
# Both shapes between the whitespace `parse` trims (Rust's char::is_whitespace, as the schema's
# patterns spell it: str.strip() would also take U+001C..U+001F), which the repairs keep.
_WS = "([\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)"
_PARTITA_IVA = re.compile(_WS + r"(IT)?([0-9]{11})" + _WS)


def _vat_check_digit(first10: str) -> int:
    total = 0
    for index, char in enumerate(first10):
        digit = int(char)
        if index % 2 == 1:  # even 1-based positions are doubled
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return (10 - total % 10) % 10


def fix_vat(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match = _PARTITA_IVA.fullmatch(value)
    if not match:
        return value
    lead, prefix, digits, trail = match.groups()
    if digits[7:10] == "000":
        digits = digits[:9] + "1" + digits[10]
    digits = digits[:10] + str(_vat_check_digit(digits[:10]))
    return lead + (prefix or "") + digits + trail


# src/domain/ror.rs: `0`, six Crockford base32 characters, and a two-digit ISO 7064 mod 97-10
# checksum of their value; bare or as a ror.org URL, any case.
_ROR = re.compile(_WS + r"((?:https?://)?ror\.org/)?(0[0-9a-hjkmnp-tv-z]{6})([0-9]{2})" + _WS, re.IGNORECASE)
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def fix_ror(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match = _ROR.fullmatch(value)
    if not match:
        return value
    lead, url, body, _, trail = match.groups()
    number = 0
    for char in body[1:].lower():
        number = number * 32 + _CROCKFORD.index(char)
    return lead + (url or "") + body + f"{98 - (number * 100) % 97:02d}" + trail


# Values sent in create bodies, so that a repaired value is not sent twice: the repairs funnel
# many generated values into one (Hypothesis favours `00000000000`, which becomes `00000000018`),
# and a VAT number or ROR id names one entity for good (409 `duplicate` for the second, archived
# records included). A repeat is moved to the next free number of the same shape, so more
# creates get past uniqueness and reach the code behind it. The schema's shape is kept (digits
# stay digits, base32 stays base32), so the case stays valid.
_SENT: dict[str, set[str]] = {"vat_number": set(), "ror_id": set()}


def _key(value: str) -> str:
    """What the server stores of `value`: padding and case aside, one number is one entity."""
    return re.sub(_WS, "", value).upper()


def _fresh(member: str, value: Any, repair: Any, bump: Any) -> Any:
    value = repair(value)
    if not isinstance(value, str) or value == repair(bump(value)):
        return value
    with _LOCK:
        sent = _SENT[member]
        for _ in range(1000):
            if _key(value) not in sent:
                break
            value = repair(bump(value))
        sent.add(_key(value))
    return value


def _bump_vat(value: str) -> str:
    match = _PARTITA_IVA.fullmatch(value)
    if not match:
        return value
    lead, prefix, digits, trail = match.groups()
    first10 = f"{(int(digits[:10]) + 1) % 10**10:010d}"
    return lead + (prefix or "") + first10 + "0" + trail


def _bump_ror(value: str) -> str:
    match = _ROR.fullmatch(value)
    if not match:
        return value
    lead, url, body, _, trail = match.groups()
    number = 0
    for char in body[1:].lower():
        number = number * 32 + _CROCKFORD.index(char)
    number = (number + 1) % 32**6
    chars = ""
    for _ in range(6):
        number, digit = divmod(number, 32)
        chars = _CROCKFORD[digit] + chars
    return lead + (url or "") + "0" + chars + "00" + trail


# ---------------------------------------------------------------------------------------------
# cross-field and calendar rules

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(value: Any) -> datetime.date | None:
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _merged(body: dict, current: dict | None, name: str) -> Any:
    """A member's value after a merge patch (RFC 7396): the patch's if it has one, else stored."""
    if name in body:
        return body[name]
    return (current or {}).get(name)


def fix_period(body: dict, current: dict | None, start: str, end: str) -> None:
    """`end` not before `start` (activities: src/http/activities.rs `validate`, 422 at
    `/ends_on`; dated links: src/http/dated.rs `validate`, 422 at `/until`). For a PATCH the
    rule holds for the merged record (README: "the result must validate as a create body
    would"). Both in the body: swapped. One: the other is brought along with the same day."""
    first, last = _date(_merged(body, current, start)), _date(_merged(body, current, end))
    if first is None or last is None or last >= first:
        return
    if start in body and end in body:
        body[start], body[end] = body[end], body[start]
    elif end in body:
        body[start] = body[end]
    else:
        body[end] = body[start]


def fix_device_segment(body: dict, current: dict | None) -> None:
    """`device_segment` only when `sector` is `medical_devices` (src/http/companies.rs
    `validate_detail`, 422 at `/device_segment`), on the merged record for a PATCH."""
    sector = body.get("sector") if body.get("sector") is not None else (current or {}).get("sector")
    if _merged(body, current, "device_segment") is not None and sector != "medical_devices":
        if current is None:
            del body["device_segment"]
        else:
            body["device_segment"] = None  # a merge patch clears with null


def fix_address(body: dict, current: dict | None) -> None:
    """`province` only for Italian addresses, and an Italian postal code (CAP) is 5 digits
    (src/http/organisation.rs `OrganisationInput::validate`, src/domain/text.rs
    `PostalCode::parse`); the country defaults to IT, and a PATCH merges `address` member by
    member (null clears; `country: null` resets to IT)."""
    patch = body.get("address")
    if not isinstance(patch, dict):
        return
    stored = (current or {}).get("address") or {}
    merged = {**stored, **patch}
    country = merged.get("country")
    italian = not isinstance(country, str) or not country.strip() or country.strip().upper() == "IT"
    province = merged.get("province")
    if not italian and isinstance(province, str) and province.strip():
        if current is None:
            del patch["province"]
        else:
            patch["province"] = None
    postal = merged.get("postal_code")
    if italian and isinstance(postal, str) and postal.strip() and not re.fullmatch(r"[0-9]{5}", postal.strip()):
        if "postal_code" in patch:
            # The same length and variety as generated, in digits.
            patch["postal_code"] = "".join(str(ord(c) % 10) for c in postal.strip())[:5].rjust(5, "0")
        else:
            patch["postal_code"] = None


def fix_tags(body: dict) -> None:
    """Tags are unique ignoring case and surrounding spaces (src/domain/text.rs `tags`, 422
    `duplicate_value`); `uniqueItems` is case-sensitive. Later repeats are dropped."""
    tags = body.get("tags")
    if not isinstance(tags, list):
        return
    seen, kept = set(), []
    for tag in tags:
        key = tag.strip().lower() if isinstance(tag, str) else repr(tag)
        if key not in seen:
            seen.add(key)
            kept.append(tag)
    body["tags"] = kept


def _whole(value: Any) -> int | None:
    """An integer member's value as the server reads it: JSON Schema and the server count a
    whole number written with a fraction (`2027.0`) as an integer (src/http/machinery/body.rs
    `whole_number`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def fix_rankings(body: dict) -> None:
    """One ranking per (area, source, year) (src/http/universities.rs `validate_detail`, 422
    `duplicate_value`), and a year at most next year's: later repeats dropped, years capped."""
    rankings = body.get("rankings")
    if not isinstance(rankings, list):
        return
    next_year = datetime.date.today().year + 1
    seen, kept = set(), []
    for ranking in rankings:
        if isinstance(ranking, dict):
            year = _whole(ranking.get("year"))
            if year is not None and year > next_year:
                ranking["year"] = next_year
            source = ranking.get("source")
            year = _whole(ranking.get("year"))
            key = (
                repr(ranking.get("area")),
                source.strip() if isinstance(source, str) else repr(source),
                repr(ranking.get("year") if year is None else year),
            )
            if key in seen:
                continue
            seen.add(key)
        kept.append(ranking)
    body["rankings"] = kept


def fix_founded_year(body: dict) -> None:
    """`founded_year` is at most this year (src/http/companies.rs `validate_detail`), a bound
    that moves every 1 January, so no committed schema can carry it."""
    year = _whole(body.get("founded_year"))
    if year is not None and year > datetime.date.today().year:
        body["founded_year"] = datetime.date.today().year


# ---------------------------------------------------------------------------------------------
# references: a create body names live records (src/http/links.rs `prepare`, src/http/dated.rs
# `prepare`: 422 `unknown_value` otherwise). Which ids exist is the database's to say, not the
# schema's: a generated UUID is replaced by a live one of the right kind.

_POOLS: dict[str, list[str]] = {}
_ME: dict[str, Any] = {}


def _live(case: Any, collection: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    response = _get(case, f"{API}/{collection}/{value}")
    return response is not None and response.status_code == 200


def _live_id(case: Any, collection: str, value: Any) -> Any:
    """`value` if it names a live record of `collection`, else a live one picked by `value`."""
    if _live(case, collection, value):
        return value
    for _ in range(2):
        with _LOCK:
            pool = _POOLS.get(collection)
        if not pool:
            response = _get(case, f"{API}/{collection}", {"limit": "200"})
            data = _json(response) if response is not None and response.status_code == 200 else None
            pool = [row["id"] for row in (data or {}).get("data", []) if isinstance(row, dict) and "id" in row]
            with _LOCK:
                _POOLS[collection] = pool
        while pool:
            candidate = pool[_pick(str(value), len(pool))]
            if _live(case, collection, candidate):
                return candidate
            pool.remove(candidate)  # archived since the pool was read
        with _LOCK:
            _POOLS.pop(collection, None)
    return value


def _me(case: Any) -> dict[str, Any]:
    """The caller (`GET /api/v1/me`), read once: one token per run."""
    if "me" not in _ME:
        response = _get(case, f"{API}/me")
        me = _json(response) if response is not None and response.status_code == 200 else None
        _ME["me"] = me if isinstance(me, dict) else {}
    return _ME["me"]


def _partner_organisation(case: Any) -> str | None:
    """A partner proposes only its own organisation (src/http/dated.rs `check_create`)."""
    me = _me(case)
    return me.get("organisation_id") if me.get("role") == "partner" else None


def fix_references(case: Any, body: dict) -> None:
    path, method = case.operation.path, case.method.upper()
    if method != "POST":
        return
    if path == f"{API}/goal-activity-links":
        for member, collection in (("goal_id", "goals"), ("activity_id", "activities")):
            if member in body:
                body[member] = _live_id(case, collection, body[member])
    elif path in (f"{API}/goals/{{id}}/partners", f"{API}/activities/{{id}}/participants"):
        if "organisation_id" in body:
            own = _partner_organisation(case) if path.endswith("/participants") else None
            body["organisation_id"] = own or _live_id(case, "organisations", body["organisation_id"])


def fix_client_organisation(case: Any, body: dict, current: Any) -> None:
    """A partner client acts for one live organisation, and no other role for any
    (src/domain/client.rs: 422 at `/organisation_id` otherwise). For a PATCH the merged body
    decides: the current values fill what the patch leaves out."""
    merged = dict(current or {})
    merged.update({k: v for k, v in body.items()})
    role = merged.get("role")
    if not isinstance(role, str):
        return
    if role == "partner":
        org = merged.get("organisation_id")
        if org is None or not _live(case, "organisations", org):
            body["organisation_id"] = _live_id(case, "organisations", org)
    elif merged.get("organisation_id") is not None:
        if current is None:
            body.pop("organisation_id", None)
        else:
            body["organisation_id"] = None


# ---------------------------------------------------------------------------------------------
# the hook


# The smallest valid row of each kind an import takes.
_IMPORT_ROWS = {
    "companies": {"sector": "biotech"},
    "irccs": {"specialisations": ["oncology"]},
    "universities": {},
    "partners": {"partner_type": "cluster"},
}


def _csv_cell(value: Any) -> str:
    # As the export writes it: a list's items joined with `;`.
    return ";".join(value) if isinstance(value, list) else str(value)


def fix_import_rows(case: Any) -> None:
    """An import's rows are create bodies of the kind its query names: what a row may hold
    depends on `kind`, which a schema cannot tie to the body. Valid rows of that kind, with
    fresh names, replace the generated ones (as many, up to three), as JSON or as CSV."""
    query = case.query if isinstance(case.query, dict) else {}
    kind = query.get("kind")
    if not isinstance(kind, str) or kind not in _IMPORT_ROWS:
        return
    count = min(len(case.body), 3) if isinstance(case.body, list) else 1
    rows = [{"name": f"Import {uuid.uuid4().hex[:12]}", **_IMPORT_ROWS[kind]} for _ in range(count)]
    if isinstance(case.body, list):
        body: Any = rows
    else:
        columns = list(rows[0])
        lines = [",".join(columns)] + [",".join(_csv_cell(r[c]) for c in columns) for r in rows]
        body = "".join(line + "\r\n" for line in lines)
    _note(case, f"import rows {case.body!r} -> {body!r}")
    case.body = body


def fix_set_password_token(case: Any, body: dict) -> None:
    """A one-time token is a secret the server issued: none can be generated. A fresh user of
    the fixtures admin (LSHUB_ST_FIXTURES_TOKEN, from schemathesis.sh) gets one, which the
    generated body then carries."""
    admin = os.environ.get("LSHUB_ST_FIXTURES_TOKEN")
    if not admin:
        return
    response = requests.post(
        _base(case) + f"{API}/users",
        json={"email": f"set-password-{uuid.uuid4().hex[:12]}@schemathesis.lshub.example", "role": "viewer"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=READ_TIMEOUT,
    )
    token = (_json(response) or {}).get("set_password_token") if response.status_code == 201 else None
    if token:
        body["token"] = token


def _fix_body(case: Any, current: Any) -> None:
    if case.operation.path == f"{API}/auth/set-password":
        if isinstance(case.body, dict):
            body = _deep_copy(case.body)
            fix_set_password_token(case, body)
            _note(case, "set-password token -> a fresh one")
            case.body = body
        return
    if case.operation.path == f"{API}/imports":
        fix_import_rows(case)
        return
    body = case.body
    if not isinstance(body, dict):
        return
    body = _deep_copy(body)
    current = current if isinstance(current, dict) else None
    path = case.operation.path
    kind = path[len(API) + 1 :].split("/", 1)[0]
    if kind in ("companies", "irccs", "universities", "partners"):
        fix_address(body, current)
        fix_tags(body)
    create = case.method.upper() == "POST"
    if kind == "companies":
        if "vat_number" in body:
            body["vat_number"] = (
                _fresh("vat_number", body["vat_number"], fix_vat, _bump_vat) if create else fix_vat(body["vat_number"])
            )
        fix_device_segment(body, current)
        fix_founded_year(body)
    if kind == "universities":
        if "ror_id" in body:
            body["ror_id"] = _fresh("ror_id", body["ror_id"], fix_ror, _bump_ror) if create else fix_ror(body["ror_id"])
        fix_rankings(body)
    if path in (f"{API}/activities", f"{API}/activities/{{id}}"):
        fix_period(body, current, "starts_on", "ends_on")
    if path.endswith(("/partners", "/partners/{link_id}", "/participants", "/participants/{link_id}")) and path.startswith(
        (f"{API}/goals/", f"{API}/activities/")
    ):
        fix_period(body, current, "since", "until")
    if kind in ("clients", "users"):
        fix_client_organisation(case, body, current)
    fix_references(case, body)
    if body != case.body:
        _note(case, f"body {case.body!r} -> {body!r}")
        case.body = body


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _instant(text: Any) -> Any:
    """An RFC 3339 date-time as an aware datetime, or None when Python cannot read it."""
    try:
        value = datetime.datetime.fromisoformat(str(text).replace("z", "Z"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _fix_query_pairs(case: Any) -> None:
    """Rules between two list parameters, which no schema states: `min_employees` at most
    `max_employees` (companies, 422 otherwise), `from` not after `to` (activities), `until`
    after `since` (the audit log), and `max_rank` only with `ranking_area` (universities).
    Valid queries only."""
    if not case.query or not _valid(case, ParameterLocation.QUERY):
        return
    query = dict(case.query)
    # ISO dates order as text; employee counts as numbers.
    for low, high, key in (("min_employees", "max_employees", int), ("from", "to", str)):
        if low in query and high in query and key(query[low]) > key(query[high]):
            query[low], query[high] = query[high], query[low]
            _note(case, f"{low}/{high} swapped into order")
    # The audit log's window: `until` after `since` (422 otherwise), as instants.
    if "since" in query and "until" in query:
        since, until = _instant(query["since"]), _instant(query["until"])
        if since is not None and until is not None and until <= since:
            query["until"] = (since + datetime.timedelta(seconds=1)).isoformat()
            _note(case, "until moved after since")
    if "max_rank" in query and "ranking_area" not in query:
        query["ranking_area"] = "life_sciences_and_medicine"
        _note(case, "ranking_area added for max_rank")
    case.query = query


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    _check_config(case.operation)
    method = case.method.upper()
    if method != case.operation.method.upper():
        return  # a probe with a method the operation does not have (405 expected), sent as is
    if method == "GET":
        _fix_cursor(case)
        _fix_query_pairs(case)
        return
    if method not in ("POST", "PATCH", "PUT", "DELETE") or not case.operation.path.startswith(API):
        return
    if case.operation.path == f"{API}/auth/set-password":
        if _valid(case, ParameterLocation.BODY):
            _fix_body(case, None)
        return
    if method == "POST" and not case.operation.path.startswith(API + "/auth/"):
        _fix_idempotency_key(case)
    current = None
    _READ_LIVE.pop(id(case), None)
    if _takes_if_match(case.operation) and _path_valid(case) and _may_call(case):
        header_valid = _header_valid(case)
        body_needs_record = method == "PATCH" and _valid(case, ParameterLocation.BODY)
        if header_valid or body_needs_record:
            etag, current, live = _current(case)
            if header_valid and etag is not None:
                _set_header(case, "If-Match", etag)
            _note(case, f"If-Match {'-> ' + etag if etag and header_valid else 'left as generated'} (record {'live' if live else 'archived' if etag else 'unreadable'})")
            if method in ("PATCH", "DELETE") and live and etag is not None and header_valid:
                _READ_LIVE[id(case)] = case.formatted_path
    if _valid(case, ParameterLocation.BODY) and _path_valid(case) and _may_call(case):
        _fix_body(case, current if method == "PATCH" else None)


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    _remember_cursor(case, response)


# ---------------------------------------------------------------------------------------------
# the check that keeps 404 honest


@schemathesis.check
def lshub_write_finds_live_record(ctx: Any, response: Any, case: Any) -> bool | None:
    """A PATCH or DELETE sent with the ETag of a record the hook has just read live must find
    that record: 404 there is a bug, not "an id that names nothing"."""
    if case.method.upper() not in ("PATCH", "DELETE"):
        return None
    if _READ_LIVE.get(id(case)) != case.formatted_path or response.status_code != 404:
        return None
    raise AssertionError(
        f"{case.method.upper()} {case.formatted_path} answered 404 although GET of the same "
        "record answered 200 just before (and its ETag was sent in If-Match)"
    )


# ---------------------------------------------------------------------------------------------
# keep schemathesis.toml in step with the schema

_CONFIG_CHECKED: set[str] = set()


def _check_config(operation: Any) -> None:
    """An operation takes `If-Match` exactly when schemathesis.toml gives it the precondition
    statuses (its `[[operations]]` regex); otherwise every request of it errors, loudly, rather
    than let 412/428 count as failures there or as answers elsewhere (a new write path, a
    renamed route). Checked at an operation's first request: `after_load_schema` runs before
    Schemathesis knows the base URL, and building the operations there would fix it empty."""
    if operation.label in _CONFIG_CHECKED:
        return
    checks = operation.schema.config.checks_config_for(operation=operation)
    configured = "428" in checks.missing_required_header.expected_statuses
    if configured != _takes_if_match(operation):
        raise RuntimeError(
            f"scripts/schemathesis/schemathesis.toml: {operation.label} "
            f"{'takes' if _takes_if_match(operation) else 'does not take'} If-Match, but the "
            "If-Match operations regex says otherwise"
        )
    _CONFIG_CHECKED.add(operation.label)
