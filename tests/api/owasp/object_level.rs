//! API1 broken object-level authorisation: a partner, as a person and as a machine client,
//! aimed at another organisation's records and links on every route of the committed spec
//! that names a record and admits partners. DESIGN.md: everything that exists is readable by
//! every role; a partner's write on what is not its own is 403, and 404 means absent (or
//! archived, to a caller who may not see archived records). A refused write changes nothing.

use lshub::domain::Role;

use super::spec::{self, Ids, Operation, World};
use crate::helpers::*;

/// Partner-admitted routes naming a record that this test cannot aim, each with the reason.
/// Empty: every such route of the spec is driven. A new one whose path names a collection the
/// [`World`] does not hold fails the test until the world holds it or it is listed here.
const SKIPPED: &[(&str, &str)] = &[];

/// The paths' first collections whose records can be archived, and so vanish for partners.
const ARCHIVABLE: &[&str] = &[
    "companies",
    "irccs",
    "universities",
    "partners",
    "organisations",
    "goals",
    "activities",
];

/// The partner-admitted operations that name a record, each with its URL aimed at `world`
/// (None for the skipped ones).
fn routes(world: &Ids) -> Vec<(Operation, Option<String>)> {
    let routes: Vec<_> = spec::operations(spec::committed())
        .into_iter()
        .filter(|op| op.takes_id() && op.admits(Role::Partner))
        .map(|op| {
            let url = world.url(&op.path);
            let skipped = SKIPPED.iter().any(|(name, _)| *name == op.name());
            assert!(
                url.is_some() || skipped,
                "{} admits partners and names a record this test cannot aim at: teach \
                 spec::World its collection, or list it in SKIPPED with the reason",
                op.name()
            );
            (op, url.filter(|_| !skipped))
        })
        .collect();
    assert!(
        routes.iter().filter(|(op, _)| op.writes()).count() >= 6,
        "the partner-writable routes went missing from the spec"
    );
    routes
}

/// The two faces of one partner: its user's token and a machine client's of the same
/// organisation.
async fn partner(app: &TestApp) -> [(&'static str, String); 2] {
    let client = spec::partner_client(app, &app.fixtures.partner_org.to_string()).await;
    [
        ("partner user", app.token(Role::Partner)),
        ("partner client", client),
    ]
}

/// Sends `op` to `url` as `token` with the body a partner may send on what it owns, for
/// `organisation`, and a current `If-Match` where the operation takes one.
async fn attempt(
    app: &TestApp,
    op: &Operation,
    url: &str,
    token: &str,
    organisation: &str,
) -> TestResponse {
    let mut req = app.request(op.method.clone(), url).bearer(token);
    if op.writes() {
        req = req.json(&(spec::partner_write(op).body)(organisation));
    }
    if op.declares("If-Match") {
        let etag = spec::etag(app, url).await;
        req = req.header("If-Match", etag.as_deref().unwrap_or("\"1\""));
    }
    req.send().await
}

/// `attempt`, asserting that it answers `status` (a problem of `code` if an error) and that
/// what `url` holds and the audit trail are as they were.
async fn refused(
    app: &TestApp,
    op: &Operation,
    url: &str,
    (who, token): (&str, &str),
    organisation: &str,
    (status, code): (u16, &str),
    why: &str,
) {
    let before = spec::snapshot(app, url).await;
    let audit = app.count("audit_events");
    let res = attempt(app, op, url, token, organisation).await;
    assert_eq!(
        res.status,
        status,
        "{} as the {who}, {why}: {}",
        op.name(),
        String::from_utf8_lossy(&res.body)
    );
    res.assert_problem(status, code);
    assert_eq!(
        spec::snapshot(app, url).await,
        before,
        "{} changed {url}",
        op.name()
    );
    assert_eq!(app.count("audit_events"), audit, "{} wrote", op.name());
}

/// `url` is absent to the partner: a read is 404, and a write is 404 and changes nothing.
async fn absent(
    app: &TestApp,
    op: &Operation,
    url: &str,
    (who, token): (&str, &str),
    organisation: &str,
    why: &str,
) {
    if op.writes() {
        refused(
            app,
            op,
            url,
            (who, token),
            organisation,
            (404, "not_found"),
            why,
        )
        .await;
    } else {
        let res = attempt(app, op, url, token, "").await;
        assert_eq!(res.status, 404, "{} as the {who}, {why}: {url}", op.name());
        res.assert_problem(404, "not_found");
    }
}

#[actix_web::test]
async fn a_partner_reads_but_never_writes_another_organisations_records_on_any_route() {
    let app = spec::spawn().await;
    let other = World::build(&app, "Not Yours").await;
    let partner = partner(&app).await;
    let mut writes = 0;
    for (op, url) in routes(&other.ids) {
        let Some(url) = url else { continue };
        let owner = other.owner_of(&op.path).to_owned();
        for (who, token) in &partner {
            if !op.writes() {
                // Public: the same answer an editor gets.
                let res = attempt(&app, &op, &url, token, "").await;
                assert_eq!(res.status, 200, "{} as the {who}", op.name());
                let staff = app.get(&url).role(Role::Editor).send().await;
                assert_eq!(res.json(), staff.json(), "{} as the {who}", op.name());
                continue;
            }
            let why = "on another organisation's";
            refused(
                &app,
                &op,
                &url,
                (who, token),
                &owner,
                (403, "forbidden"),
                why,
            )
            .await;
        }
        if op.writes() {
            // The body was a valid write: only ownership refused it.
            let res = attempt(&app, &op, &url, &app.token(Role::Editor), &owner).await;
            assert!(
                res.status < 300,
                "{} as an editor: {}",
                op.name(),
                res.status
            );
            writes += 1;
        }
    }
    assert_eq!(writes, spec::PARTNER_WRITES.len());
}

/// A link named under another parent than its own is absent there: an id that is right
/// reaches nothing through a parent the partner chose.
#[actix_web::test]
async fn a_link_of_another_organisation_is_absent_under_any_other_parent() {
    let app = spec::spawn().await;
    let other = World::build(&app, "Not Yours").await;
    let decoy = World::build(&app, "Decoy").await;
    let partner = partner(&app).await;
    let mut checked = 0;
    for (op, url) in routes(&other.ids) {
        let keys = Ids::keys(&op.path);
        if url.is_none() || keys.len() < 2 {
            continue;
        }
        let mut crossed = other.ids.clone();
        for parent in &keys[..keys.len() - 1] {
            crossed.insert(parent, decoy.ids.get(parent).expect("a parent"));
        }
        let url = crossed.url(&op.path).expect("a crossed URL");
        let owner = other.owner_of(&op.path).to_owned();
        for (who, token) in &partner {
            absent(
                &app,
                &op,
                &url,
                (who, token),
                &owner,
                "under another parent",
            )
            .await;
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} crossed links");
}

/// Archived records are absent to partners on every route under them, reads included, and
/// `include_archived` is not theirs to ask for.
#[actix_web::test]
async fn another_organisations_archived_records_are_absent_to_a_partner() {
    let app = spec::spawn().await;
    let other = World::build(&app, "Not Yours").await;
    for collection in ARCHIVABLE.iter().filter(|c| **c != "organisations") {
        let url = format!(
            "/api/v1/{collection}/{}",
            other.ids.get(collection).unwrap()
        );
        let etag = spec::etag(&app, &url).await.expect("an ETag");
        let res = app
            .delete(&url)
            .role(Role::Editor)
            .header("If-Match", &etag)
            .send()
            .await;
        res.assert_status(204);
    }
    let partner = partner(&app).await;
    let mut checked = 0;
    for (op, url) in routes(&other.ids) {
        let Some(url) = url else { continue };
        if !ARCHIVABLE.contains(&Ids::keys(&op.path)[0].as_str()) {
            continue;
        }
        let owner = other.owner_of(&op.path).to_owned();
        for (who, token) in &partner {
            absent(
                &app,
                &op,
                &url,
                (who, token),
                &owner,
                "on an archived record",
            )
            .await;
            if !op.writes() && op.declares("include_archived") {
                let res = app
                    .get(&format!("{url}?include_archived=true"))
                    .bearer(token)
                    .send()
                    .await;
                assert_eq!(
                    res.status,
                    403,
                    "{} include_archived as the {who}",
                    op.name()
                );
                res.assert_problem(403, "forbidden");
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} reads of archived records");
}

/// The partner's own organisation, and its own participation, take the writes refused above
/// (so the refusals are ownership, not a partner that can write nothing); its organisation
/// named through another kind's path is absent.
#[actix_web::test]
async fn a_partner_writes_what_is_its_own_and_only_through_its_own_kind() {
    let app = spec::spawn().await;
    let own = app.fixtures.partner_org.to_string();
    let world = World::build(&app, "Not Yours").await;
    let activity = world.ids.get("activities").expect("an activity");
    let res = app
        .post(&format!("/api/v1/activities/{activity}/participants"))
        .role(Role::Editor)
        .json(&serde_json::json!({"organisation_id": own, "role": "host"}))
        .send()
        .await;
    res.assert_status(201);
    let mut mine = Ids::default();
    mine.insert("activities", activity);
    mine.insert(
        "activities/participants",
        res.json()["id"].as_str().unwrap(),
    );
    // The partner's organisation is a company: under the other kinds' paths it is nothing.
    let mut elsewhere = Ids::default();
    for (kind, ours) in [
        ("companies", true),
        ("organisations", true),
        ("irccs", false),
        ("universities", false),
        ("partners", false),
    ] {
        let ids = if ours { &mut mine } else { &mut elsewhere };
        ids.insert(kind, &own);
    }
    let [(_, user), (who, client)] = partner(&app).await;
    let mut own_writes = 0;
    for (op, _) in routes(&world.ids) {
        if let Some(url) = elsewhere.url(&op.path) {
            if op.writes() {
                let why = "through another kind's path";
                let face = ("partner user", user.as_str());
                refused(&app, &op, &url, face, &own, (404, "not_found"), why).await;
            } else {
                let res = app.get(&url).bearer(&user).send().await;
                assert_eq!(res.status, 404, "{}", op.name());
            }
        }
        let Some(url) = mine.url(&op.path).filter(|_| op.writes()) else {
            continue;
        };
        // One face is enough: the other's proposal would overlap this one (409).
        let res = attempt(&app, &op, &url, &client, &own).await;
        assert!(
            res.status < 300,
            "{} as the {who} on its own: {} {}",
            op.name(),
            res.status,
            String::from_utf8_lossy(&res.body)
        );
        own_writes += 1;
    }
    // Its company's PATCH, and its participation's POST and PATCH.
    assert_eq!(own_writes, 3);
}
