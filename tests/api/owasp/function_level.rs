//! API5 broken function-level authorisation: the role matrix, generated from the committed
//! spec's `x-roles`. Every protected operation refuses a caller without a token (401), refuses
//! the roles its `x-roles` leaves out (403) before any other check, and lets in each role it
//! admits (neither 401 nor 403): the route table that writes `x-roles` is what the role check
//! reads, and these tests hold the two to each other.

use lshub::domain::Role;

use super::spec::{self, Operation};
use crate::helpers::*;

/// Its URL with every path parameter malformed: the role is checked before the path is
/// parsed or looked up, so any value will do, and none reaches a record (an admitted
/// partner's write meets no ownership check, which would be a legitimate 403).
fn url(op: &Operation) -> String {
    op.path
        .split('/')
        .map(|s| if s.starts_with('{') { "not-an-id" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The protected operations of the committed spec, each with the URL the matrix sends to.
fn protected() -> Vec<(Operation, String)> {
    spec::operations(spec::committed())
        .into_iter()
        .filter(|op| !op.anonymous())
        .map(|op| {
            let url = url(&op);
            (op, url)
        })
        .collect()
}

#[actix_web::test]
async fn every_operation_refuses_the_roles_its_x_roles_leave_out() {
    let app = TestApp::spawn().await;
    let mut checked = 0;
    for (op, url) in protected() {
        for role in Role::ALL.iter().filter(|r| !op.admits(**r)) {
            let res = app
                .request(op.method.clone(), &url)
                .role(*role)
                .raw("application/json", "{}")
                .send()
                .await;
            assert_eq!(res.status, 403, "{} as {role}", op.name());
            res.assert_problem(403, "forbidden");
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} refusals checked");
}

/// RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
#[actix_web::test]
async fn every_protected_operation_refuses_a_caller_without_a_token() {
    let app = TestApp::spawn().await;
    let mut checked = 0;
    for (op, url) in protected() {
        let res = app
            .request(op.method.clone(), &url)
            .raw("application/json", "{}")
            .send()
            .await;
        assert_eq!(res.status, 401, "{} without a token", op.name());
        res.assert_problem(401, "unauthorized");
        assert_eq!(
            res.header("www-authenticate").as_deref(),
            Some(r#"Bearer realm="lshub""#),
            "{}",
            op.name()
        );
        checked += 1;
    }
    // Everything under /api/v1 but the three /auth endpoints.
    let anonymous = spec::operations(spec::committed())
        .into_iter()
        .filter(|op| op.anonymous())
        .map(|op| op.path)
        .collect::<Vec<_>>();
    assert!(
        anonymous
            .iter()
            .all(|p| !p.starts_with("/api/v1/") || p.starts_with("/api/v1/auth/")),
        "anonymous operations under /api/v1: {anonymous:?}"
    );
    assert!(checked > 80, "only {checked} operations checked");
}

/// The other half of the matrix: a role `x-roles` admits is let through the role check (its
/// answer is whatever the malformed path or empty body earns, never 401 or 403), so the spec
/// promises no operation that the server keeps from the roles it names.
#[actix_web::test]
async fn every_operation_admits_the_roles_its_x_roles_names() {
    let app = TestApp::spawn().await;
    let mut checked = 0;
    for (op, url) in protected() {
        for role in Role::ALL.iter().filter(|r| op.admits(**r)) {
            let res = app
                .request(op.method.clone(), &url)
                .role(*role)
                .raw("application/json", "{}")
                .send()
                .await;
            assert!(
                ![401, 403].contains(&res.status),
                "{} as {role}: {} {}",
                op.name(),
                res.status,
                String::from_utf8_lossy(&res.body)
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} admissions checked");
}

/// Reads, aimed at real records: each role `x-roles` admits gets the record or list (200),
/// so the matrix holds past the path's parsing too, where the record is looked up.
#[actix_web::test]
async fn every_read_of_a_real_record_answers_each_role_its_x_roles_admits() {
    let app = spec::spawn().await;
    let world = spec::World::build(&app, "Matrix").await;
    let doc = spec::committed();
    let mut checked = 0;
    for (op, _) in protected() {
        if op.writes() {
            continue;
        }
        let url = world
            .ids
            .url(&op.path)
            .unwrap_or_else(|| panic!("{}: teach spec::World its collection", op.name()));
        let url = format!("{url}{}", op.required_query(doc));
        for role in Role::ALL {
            let res = app.get(&url).role(*role).send().await;
            let expected = if op.admits(*role) { 200 } else { 403 };
            assert_eq!(
                res.status,
                expected,
                "{} as {role}: {}",
                op.name(),
                String::from_utf8_lossy(&res.body)
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} reads checked");
}
