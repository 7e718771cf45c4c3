//! Generated bad input against the real service: a few hundred corrupt, tampered and forged
//! cursors, and as many refused bodies, each answered with a 4xx RFC 9457 problem, and none
//! of them writing anything (issue 11, "every bad input is a clean 4xx"). The parsers' own
//! properties are unit tests beside them (`db::list`, `domain::vat`, `domain::ror`,
//! `http::machinery::body`, `http::machinery::import`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lshub::domain::Role;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};

use crate::helpers::*;

const COMPANIES: &str = "/api/v1/companies";

/// How many inputs of each kind a run sends.
const CASES: usize = 300;

/// The service, with the API's rate limit off: hundreds of requests from one principal are
/// what this test is, not what it tests.
async fn spawn() -> TestApp {
    TestApp::spawn_with(|s| {
        s.http.rate_limits.per_minute = 0;
        s.http.rate_limits.burst = 0;
    })
    .await
}

/// Draws `CASES` values of `strategy` (the runner's own random source; the async test cannot
/// hand proptest's synchronous loop a future, so inputs are drawn and sent one by one, and a
/// failure names its input instead of shrinking it).
fn draw<S: Strategy>(runner: &mut TestRunner, strategy: &S) -> Vec<S::Value> {
    (0..CASES)
        .map(|_| {
            strategy
                .new_tree(runner)
                .map(|tree| tree.current())
                .unwrap_or_else(|e| panic!("strategy failed: {e}"))
        })
        .collect()
}

/// Asserts a 4xx answer with an RFC 9457 body whose `status` is the answer's.
#[track_caller]
fn assert_clean_4xx(res: &TestResponse, input: &dyn std::fmt::Debug) {
    let body = String::from_utf8_lossy(&res.body);
    assert!(
        (400..500).contains(&res.status),
        "{input:?} answered {}: {body}",
        res.status
    );
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/problem+json"),
        "{input:?}: {body}"
    );
    let problem = res.json();
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:lshub:problem:")),
        "{input:?}: {problem}"
    );
    assert_eq!(problem["status"], res.status, "{input:?}: {problem}");
}

/// What a refused write must leave as it was.
fn written(app: &TestApp) -> [i64; 3] {
    [
        app.count("organisations"),
        app.count("companies"),
        app.count("audit_events"),
    ]
}

/// A real cursor's JSON (`{"f": fingerprint, "v": value, "id": id}`).
fn open(cursor: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).expect("a cursor is base64");
    serde_json::from_slice(&bytes).expect("a cursor is JSON")
}

fn seal(data: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(data).expect("json"))
}

/// A cursor the list must refuse, and what it was made from.
#[derive(Debug, Clone)]
enum BadCursor {
    /// Any text.
    Garbage(String),
    /// Well-formed base64 of bytes that are not a cursor.
    Bytes(Vec<u8>),
    /// A real cursor with one character of its fingerprint changed.
    Fingerprint(usize, char),
    /// A real cursor's fingerprint with a value the list cannot take.
    Forged(Value),
}

/// Sort values no `name` list takes: other types, or text PostgreSQL cannot hold.
fn forged_name_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!({ "Int": n })),
        any::<bool>().prop_map(|b| json!({ "Bool": b })),
        "[a-z]{0,8}".prop_map(|s| json!({ "Text": format!("{s}\u{0}{s}") })),
        "[a-z]{0,8}".prop_map(|s| json!({ "TextArray": [s] })),
        Just(Value::Null),
        "[a-z]{1,8}".prop_map(|variant| json!({ variant: "x" })),
    ]
}

fn bad_cursor() -> impl Strategy<Value = BadCursor> {
    prop_oneof![
        any::<String>().prop_map(BadCursor::Garbage),
        "[A-Za-z0-9_-]{0,120}".prop_map(BadCursor::Garbage),
        vec(any::<u8>(), 0..200).prop_map(BadCursor::Bytes),
        (any::<usize>(), "[A-Za-z0-9_-]")
            .prop_map(|(at, c)| BadCursor::Fingerprint(at, c.chars().next().unwrap_or('A'))),
        forged_name_value().prop_map(BadCursor::Forged),
    ]
}

impl BadCursor {
    /// The cursor, from `real` (a real cursor of the list it is sent to).
    fn make(&self, real: &Value) -> Option<String> {
        match self {
            Self::Garbage(text) => Some(text.clone()),
            Self::Bytes(bytes) => {
                // Bytes that happen to be a cursor's JSON are not bad.
                let json: Option<Value> = serde_json::from_slice(bytes).ok();
                json.is_none_or(|j| j.get("f").is_none())
                    .then(|| URL_SAFE_NO_PAD.encode(bytes))
            }
            Self::Fingerprint(at, c) => {
                let f = real["f"].as_str().expect("fingerprint");
                let at = at % f.len();
                if f.as_bytes()[at] == *c as u8 {
                    return None;
                }
                let mut changed = f.to_owned();
                changed.replace_range(at..=at, &c.to_string());
                let mut data = real.clone();
                data["f"] = json!(changed);
                Some(seal(&data))
            }
            Self::Forged(v) => {
                let mut data = real.clone();
                data["v"] = v.clone();
                Some(seal(&data))
            }
        }
    }
}

/// The cursor of the page after the first of `sort`'s list.
async fn real_cursor(app: &TestApp, sort: &str) -> String {
    let res = app
        .get(&format!("{COMPANIES}?sort={sort}&limit=1"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    res.json()["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned()
}

fn list_url(sort: &str, cursor: &str) -> String {
    let cursor: String = url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
    format!("{COMPANIES}?sort={sort}&limit=1&cursor={cursor}")
}

/// Any JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[a-z_]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map("[a-z_]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A company's members, and some that are not.
const MEMBERS: &[&str] = &[
    "name",
    "legal_name",
    "description",
    "website",
    "email",
    "phone",
    "address",
    "tags",
    "in_mind",
    "vat_number",
    "sector",
    "device_segment",
    "ateco_code",
    "employees",
    "revenue_eur",
    "founded_year",
    "assolombarda_member",
];

/// One member value that makes any company body, create or patch, refused.
fn defect() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        "x_[a-z]{1,8}".prop_map(|name| (name, json!(1))),
        prop::sample::select(&["id", "version", "created_at", "kind", "archived_at"][..])
            .prop_map(|name| (name.to_owned(), json!("2024-01-01"))),
        (1i64..i64::MAX).prop_map(|n| ("employees".to_owned(), json!(-n))),
        "[a-z_]{1,12}"
            .prop_filter("not a sector", |s| {
                !lshub::domain::Sector::ALL.iter().any(|v| v.as_str() == s)
            })
            .prop_map(|s| ("sector".to_owned(), json!(s))),
        // Ten digits and the check digit plus one: never the Partita IVA's own check digit.
        "[0-9]{7}00[1-9]".prop_map(|first10| {
            let check = lshub::domain::vat::italian_check_digit(&digits(&first10));
            (
                "vat_number".to_owned(),
                json!(format!("{first10}{}", (check + 1) % 10)),
            )
        }),
        "[a-z]".prop_map(|name| ("name".to_owned(), json!(name))),
        "[a-z]{1,5}".prop_map(|t| ("tags".to_owned(), json!([format!("{t};{t}")]))),
    ]
}

fn digits(text: &str) -> [u8; 10] {
    let mut out = [0u8; 10];
    for (o, b) in out.iter_mut().zip(text.bytes()) {
        *o = b - b'0';
    }
    out
}

/// A body every company write refuses: not JSON, not an object, nested past the parser's
/// depth, or an object of arbitrary members with one defect.
fn bad_body() -> impl Strategy<Value = Vec<u8>> {
    let object = (
        btree_map(prop::sample::select(MEMBERS), any_json(), 0..8),
        defect(),
    )
        .prop_map(|(members, (name, value))| {
            let mut body: Map<String, Value> = members
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            body.insert(name, value);
            serde_json::to_vec(&body).expect("json")
        });
    prop_oneof![
        1 => vec(any::<u8>(), 0..300).prop_filter("not a JSON object", |bytes| {
            !matches!(serde_json::from_slice::<Value>(bytes), Ok(Value::Object(_)))
        }),
        1 => any_json()
            .prop_filter("not an object", |v| !v.is_object())
            .prop_map(|v| serde_json::to_vec(&v).expect("json")),
        1 => (200usize..3000).prop_map(|depth| {
            let mut body = "{\"name\":".repeat(depth).into_bytes();
            body.extend(b"\"x\"");
            body.extend("}".repeat(depth).into_bytes());
            body
        }),
        3 => object,
    ]
}

#[actix_web::test]
async fn bad_cursors_and_bad_bodies_are_clean_4xx_and_write_nothing() {
    let app = spawn().await;
    for name in ["Alfa Pharma S.p.A.", "Beta Bio Srl", "Gamma Devices Srl"] {
        app.create_company(json!({"name": name, "sector": "biotech"}))
            .await;
    }
    let company = app
        .create_company(json!({"name": "Delta Diagnostics Srl", "sector": "biotech"}))
        .await;
    let company_path = format!("{COMPANIES}/{}", company["id"].as_str().expect("id"));
    let etag = format!("\"{}\"", company["version"]);
    let before = written(&app);
    let mut runner = TestRunner::default();

    // Cursors: the name sort (text) and the creation time sort (an instant).
    let by_name = open(&real_cursor(&app, "name").await);
    let by_time = open(&real_cursor(&app, "created_at").await);
    let mut sent = 0;
    for bad in draw(&mut runner, &bad_cursor()) {
        let Some(cursor) = bad.make(&by_name) else {
            continue;
        };
        let res = app
            .get(&list_url("name", &cursor))
            .role(Role::Viewer)
            .send()
            .await;
        assert_clean_4xx(&res, &(&bad, &cursor));
        sent += 1;
    }
    // PostgreSQL's timestamptz begins in 4714 BC; chrono's instants reach 262,143 BC.
    let before_timestamptz = (-262_000i32..-4714, 1u32..13, 1u32..29);
    for (year, month, day) in draw(&mut runner, &before_timestamptz) {
        let instant = chrono::NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a day of the calendar")
            .and_utc();
        let mut data = by_time.clone();
        data["v"] = json!({ "Time": instant });
        let cursor = seal(&data);
        let res = app
            .get(&list_url("created_at", &cursor))
            .role(Role::Viewer)
            .send()
            .await;
        assert_clean_4xx(&res, &data);
        sent += 1;
    }
    assert!(sent >= CASES, "only {sent} cursors sent");

    // Bodies: each refused by a create and by a patch (under the right If-Match).
    for body in draw(&mut runner, &bad_body()) {
        let input = String::from_utf8_lossy(&body).into_owned();
        let created = app
            .post(COMPANIES)
            .role(Role::Editor)
            .raw("application/json", body.clone())
            .send()
            .await;
        assert_clean_4xx(&created, &input);
        let patched = app
            .patch(&company_path)
            .role(Role::Editor)
            .header("If-Match", &etag)
            .raw("application/merge-patch+json", body)
            .send()
            .await;
        assert_clean_4xx(&patched, &input);
    }

    assert_eq!(written(&app), before, "a refused request wrote something");
    let now = app.get(&company_path).role(Role::Viewer).send().await;
    now.assert_status(200);
    for member in ["version", "updated_at", "name", "sector"] {
        assert_eq!(
            now.json()[member],
            company[member],
            "a refused patch changed `{member}`"
        );
    }
}
