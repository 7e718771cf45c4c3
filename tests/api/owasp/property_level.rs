//! API3 broken object-property-level authorisation: mass assignment on every write route of
//! the committed spec that takes a JSON body. DESIGN.md: read-only members (`id`, `version`,
//! `created_at`, ... : what an answer shows that its body cannot say) are refused with 422
//! (`read_only`, or `unknown_field` where the body has no such member at all), never
//! applied; a partner changes only its organisation's self-managed fields and proposes or
//! withdraws its own participation, every other member being the hub's (403). Each member is
//! sent on its own beside a valid body, by the weakest caller the route admits, and what the
//! route writes to is read back unchanged.

use std::collections::BTreeMap;

use lshub::domain::Role;
use serde_json::{json, Map, Value};

use super::spec::{self, Operation, World};
use crate::helpers::*;

/// Write routes with a JSON body that this test does not drive, each with the reason.
const SKIPPED: &[(&str, &str)] = &[
    // Its rows are other resources' create bodies, checked by their shapes: `imports.rs`
    // asserts a row's `id` is 422 `read_only` at `/rows/N/id`.
    ("POST /api/v1/imports", "rows of another resource"),
    // RFC 6749 §3.2 and RFC 7009 §2.1: the OAuth endpoints ignore parameters they do not
    // know; `the_token_endpoint_grants_no_role_scope_or_organisation_a_request_names` below
    // shows that naming a role, scope or organisation there buys nothing.
    ("POST /api/v1/auth/token", "OAuth parameters"),
    ("POST /api/v1/auth/revoke", "OAuth parameters"),
    // Anonymous, and its body (a one-time token and a password) names no record's member.
    ("POST /api/v1/auth/set-password", "no record member"),
];

/// Bodies the least the schema allows cannot be (an e-mail or URL is more than its type).
fn base_body(op: &Operation) -> Option<Value> {
    match op.id() {
        "create_user" => Some(json!({"email": "mass.assignment@example.org", "role": "viewer"})),
        "create_webhook" => {
            Some(json!({"url": "http://127.0.0.1:9/mass", "events": ["*"], "disabled": true}))
        }
        _ => None,
    }
}

/// The write routes with a JSON body, each with its URL in `world`.
fn write_routes(world: &World) -> Vec<(Operation, String)> {
    let doc = spec::committed();
    let mut routes = Vec::new();
    for op in spec::operations(doc) {
        if !op.writes() || op.body_schema(doc).is_none() {
            continue;
        }
        if SKIPPED.iter().any(|(name, _)| *name == op.name()) {
            continue;
        }
        let url = world.ids.url(&op.path).unwrap_or_else(|| {
            panic!(
                "{} takes a body this test cannot aim: teach spec::World its collection, or \
                 list it in SKIPPED with the reason",
                op.name()
            )
        });
        routes.push((op, url));
    }
    assert!(routes.len() > 20, "only {} write routes", routes.len());
    routes
}

/// Who sends the writes of `op`: the weakest role it admits, and for a partner a real
/// machine client of the organisation that owns what it writes (so that ownership lets it
/// through to the members' checks).
struct Callers<'a> {
    app: &'a TestApp,
    partners: BTreeMap<String, String>,
}

impl Callers<'_> {
    async fn token(&mut self, op: &Operation, owner: &str) -> (Role, String) {
        let role = op.least_privileged().expect("a protected write");
        if role != Role::Partner {
            return (role, self.app.token(role));
        }
        if !self.partners.contains_key(owner) {
            let token = spec::partner_client(self.app, owner).await;
            self.partners.insert(owner.to_owned(), token);
        }
        (role, self.partners[owner].clone())
    }
}

/// What a write to `url` changes: its record, or for a create the collection's list (and a
/// secret's rotation, which has no GET of its own, the record it rotates).
fn read_back(doc: &Value, op: &Operation, url: &str) -> String {
    if doc["paths"][&op.path]["get"].is_object() {
        return url.to_owned();
    }
    url.rsplit_once('/').expect("a parent").0.to_owned()
}

/// A valid body of `op` for its caller: the partner's own write, a stated one, or the least
/// the schema allows, naming the world's records (and `references`' beside them).
fn valid_body(
    doc: &Value,
    op: &Operation,
    (world, references): (&World, &Map<String, Value>),
    owner: &str,
) -> Value {
    if op.admits(Role::Partner) {
        return (spec::partner_write(op).body)(owner);
    }
    if op.method == actix_web::http::Method::PATCH {
        return json!({});
    }
    if let Some(body) = base_body(op) {
        return body;
    }
    let mut ids = references.clone();
    ids.insert("organisation_id".into(), json!(owner));
    ids.insert(
        "goal_id".into(),
        json!(world.ids.get("goals").expect("a goal")),
    );
    spec::least(doc, op.body_schema(doc).expect("a body"), &ids)
}

/// A value of `schema` unlike `current` (and unlike `allowed`, the one value a partner may
/// set), so that a write that applied it would show.
fn other_value(doc: &Value, schema: &Value, current: &Value, allowed: Option<&str>) -> Value {
    let schema = spec::resolve(doc, schema);
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .find(|v| *v != current && v.as_str() != allowed)
            .expect("another enum value")
            .clone();
    }
    let kinds: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let kind = kinds.into_iter().find(|t| *t != "null").unwrap_or_default();
    match kind {
        "boolean" => json!(!current.as_bool().unwrap_or(false)),
        "integer" | "number" => match current.as_i64() {
            Some(n) => json!(n + 1),
            None => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        },
        "array" => {
            let item = other_value(doc, &schema["items"], &Value::Null, None);
            let items = current.as_array().cloned().unwrap_or_default();
            if items.contains(&item) {
                json!([])
            } else {
                json!([item])
            }
        }
        "object" => spec::least(doc, schema, &Map::new()),
        _ => match current.as_str() {
            Some(text) => json!(format!("{text} (set by a partner)")),
            None if schema["format"] == "date" => json!("2020-01-01"),
            None => json!("Set by a partner"),
        },
    }
}

/// A forged value of an answer's member: a fresh id, an old timestamp, a large version.
fn forged(doc: &Value, schema: &Value) -> Value {
    let schema = spec::resolve(doc, schema);
    match schema["format"].as_str() {
        Some("uuid") => json!(uuid::Uuid::now_v7()),
        Some("date-time") => json!("2001-02-03T04:05:06Z"),
        _ => other_value(doc, schema, &Value::Null, None),
    }
}

/// One write of `body` to `url` as `token`, with a fresh `If-Match` where it takes one.
async fn send(app: &TestApp, op: &Operation, url: &str, token: &str, body: &Value) -> TestResponse {
    let mut req = app.request(op.method.clone(), url).bearer(token).json(body);
    if op.declares("If-Match") {
        let etag = spec::etag(app, &read_back(spec::committed(), op, url)).await;
        req = req.header("If-Match", &etag.expect("an ETag"));
    }
    req.send().await
}

/// Sends `body`, which carries `member`, and asserts it is refused naming `member` with one of
/// `codes`, and that nothing was written.
async fn refused(
    app: &TestApp,
    (op, url): (&Operation, &str),
    token: &str,
    body: &Value,
    member: &str,
    codes: &[(u16, &str)],
) {
    let doc = spec::committed();
    let target = read_back(doc, op, url);
    let before = spec::snapshot(app, &target).await;
    let audit = app.count("audit_events");
    let res = send(app, op, url, token, body).await;
    let text = String::from_utf8_lossy(&res.body).into_owned();
    let problem = res.json();
    let field = format!("/{member}");
    let named = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["field"] == field.as_str());
    assert!(
        named.is_some_and(|e| codes.contains(&(res.status, e["code"].as_str().unwrap_or("")))),
        "{} {body}: {} {text}, wanted one of {codes:?} at {field}",
        op.name(),
        res.status
    );
    res.assert_problem(
        res.status,
        if res.status == 403 {
            "forbidden"
        } else {
            "validation"
        },
    );
    assert_eq!(
        spec::snapshot(app, &target).await,
        before,
        "{} {body} changed {target}",
        op.name()
    );
    assert_eq!(
        app.count("audit_events"),
        audit,
        "{} {body} wrote",
        op.name()
    );
}

/// Sends the valid body alone: a write the caller may make (so the refusals above were the
/// members', not the body's or the caller's).
async fn accepted(app: &TestApp, (op, url): (&Operation, &str), token: &str, body: &Value) {
    let res = send(app, op, url, token, body).await;
    assert!(
        res.status < 300,
        "{} {body}: {} {}",
        op.name(),
        res.status,
        String::from_utf8_lossy(&res.body)
    );
}

#[actix_web::test]
async fn no_write_route_takes_a_read_only_member() {
    let app = spec::spawn().await;
    let doc = spec::committed();
    let world = World::build(&app, "Mass Assignment").await;
    let mut callers = Callers {
        app: &app,
        partners: BTreeMap::new(),
    };
    // The world's goal and activity are linked: a new link needs another activity.
    let res = app
        .post("/api/v1/activities")
        .role(Role::Editor)
        .json(&json!({"title": "Unlinked fair"}))
        .send()
        .await;
    res.assert_status(201);
    let references = Map::from_iter([("activity_id".to_owned(), res.json()["id"].clone())]);
    let mut sent = 0;
    for (op, url) in write_routes(&world) {
        let owner = world.owner_of(&op.path).to_owned();
        let (role, token) = callers.token(&op, &owner).await;
        let body = valid_body(doc, &op, (&world, &references), &owner);
        let writable = spec::properties(doc, op.body_schema(doc).expect("a body"));
        let answer = spec::properties(doc, op.answer_schema(doc).expect("an answer"));
        let read_only: Vec<_> = answer
            .iter()
            .filter(|(k, _)| !writable.contains_key(*k))
            .collect();
        assert!(
            ["id", "version"].iter().all(|m| answer.contains_key(*m)) && !read_only.is_empty(),
            "{}: its answer shows no id and version",
            op.name()
        );
        // A partner's write may carry only what it manages: 403 there precedes the 422.
        let mut codes = vec![(422, "read_only"), (422, "unknown_field")];
        if role == Role::Partner {
            codes.push((403, "hub_managed"));
        }
        for (member, schema) in read_only {
            let mut forged_body = body.clone();
            forged_body[member] = forged(doc, schema);
            refused(&app, (&op, &url), &token, &forged_body, member, &codes).await;
            sent += 1;
        }
        accepted(&app, (&op, &url), &token, &body).await;
    }
    assert!(sent > 100, "only {sent} read-only members sent");
}

#[actix_web::test]
async fn a_partner_sets_no_hub_managed_member_on_any_route_open_to_it() {
    let app = spec::spawn().await;
    let doc = spec::committed();
    let world = World::build(&app, "Own Profile").await;
    let mut callers = Callers {
        app: &app,
        partners: BTreeMap::new(),
    };
    let mut sent = BTreeMap::new();
    for (op, url) in write_routes(&world) {
        if !op.admits(Role::Partner) {
            continue;
        }
        let owner = world.owner_of(&op.path).to_owned();
        let (_, token) = callers.token(&op, &owner).await;
        let write = spec::partner_write(&op);
        let body = (write.body)(&owner);
        let (_, current) = spec::snapshot(&app, &read_back(doc, &op, &url)).await;
        let members = spec::properties(doc, op.body_schema(doc).expect("a body"));
        for (member, schema) in &members {
            let managed = write.manages.iter().find(|(m, _)| m == member);
            if managed.is_some_and(|(_, only)| only.is_none()) {
                continue;
            }
            let allowed = managed.and_then(|(_, only)| *only);
            // Beside the partner's own valid change, which must not be stored either.
            let mut hub_body = body.clone();
            hub_body[member] = other_value(doc, schema, &current[member], allowed);
            let codes = [(403, "hub_managed")];
            refused(&app, (&op, &url), &token, &hub_body, member, &codes).await;
            sent.entry(op.id().to_owned())
                .or_insert_with(Vec::new)
                .push(member.clone());
        }
        accepted(&app, (&op, &url), &token, &body).await;
    }
    // DESIGN.md's hub-managed members, found in the spec.
    for (operation, members) in [
        (
            "update_company",
            &[
                "name",
                "in_mind",
                "assolombarda_member",
                "sector",
                "vat_number",
            ][..],
        ),
        (
            "update_irccs",
            &["name", "in_mind", "ownership", "specialisations"][..],
        ),
        ("update_university", &["name", "in_mind", "rankings"][..]),
        ("update_partner", &["name", "in_mind", "partner_type"][..]),
        ("create_participant", &["status"][..]),
        (
            "update_participant",
            &["role", "since", "until", "note", "status"][..],
        ),
    ] {
        let tried = &sent[operation];
        for member in members {
            assert!(
                tried.iter().any(|m| m == member),
                "{operation}: {member} untried: {tried:?}"
            );
        }
    }
}

/// The OAuth endpoints take no record's members, but a token request naming a role, a scope
/// or another organisation must not buy them: the token carries the client's own.
#[actix_web::test]
async fn the_token_endpoint_grants_no_role_scope_or_organisation_a_request_names() {
    let app = spec::spawn().await;
    let own = app.fixtures.partner_org.to_string();
    let other = World::build(&app, "Not Yours").await;
    let client = spec::new_partner_client(&app, &own).await;
    let res = app
        .post("/api/v1/auth/token")
        .json(
            &json!({"grant_type": "client_credentials", "client_id": client["id"],
                      "client_secret": client["client_secret"], "scope": "admin registry:write",
                      "role": "admin", "organisation_id": other.ids.get("companies")}),
        )
        .send()
        .await;
    res.assert_status(200);
    let granted = res.json();
    assert_eq!(
        granted["scope"],
        lshub::auth::tokens::scope_for(Role::Partner)
    );
    let token = granted["access_token"].as_str().expect("a token");
    let me = app.get("/api/v1/me").bearer(token).send().await;
    me.assert_status(200);
    assert_eq!(me.json()["role"], "partner");
    assert_eq!(me.json()["organisation_id"], own.as_str());
    let users = app.get("/api/v1/users").bearer(token).send().await;
    users.assert_problem(403, "forbidden");
}
