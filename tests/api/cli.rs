//! The `lshub` binary: start-up refusals and the admin commands.

use std::io::Write;
use std::process::{Command, Stdio};

use lshub::domain::Role;

use crate::helpers::*;

fn lshub() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lshub"));
    for var in [
        "DATABASE_URL",
        "LSHUB_JWT_SECRET",
        "LSHUB_JWT_PREVIOUS_SECRET",
        "LSHUB_BIND",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("LSHUB_LOG_FORMAT", "json");
    cmd
}

#[test]
fn serve_refuses_to_start_without_a_signing_key() {
    let out = lshub().args(["serve"]).output().expect("run lshub");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LSHUB_JWT_SECRET"), "{stderr}");
    let out = lshub()
        .env("LSHUB_JWT_SECRET", "short")
        .output()
        .expect("run lshub");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));
}

#[test]
fn an_unreachable_database_is_one_clear_line_without_the_password() {
    let out = lshub()
        .args(["migrate"])
        .env(
            "DATABASE_URL",
            "postgres://postgres:s3cret@127.0.0.1:1/lshub",
        )
        .output()
        .expect("run lshub");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("postgres://postgres@127.0.0.1:1/lshub"),
        "{stderr}"
    );
    assert!(stderr.contains("docker compose up -d db"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[actix_web::test]
async fn user_create_reads_the_password_from_stdin_and_the_user_can_log_in() {
    let app = TestApp::spawn().await;
    let mut child = lshub()
        .args([
            "user",
            "create",
            "New.Editor@Example.org",
            "--role",
            "editor",
            "--password-stdin",
        ])
        .env("DATABASE_URL", app.database_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lshub");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a long enough password\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(printed["role"], "editor");
    assert_eq!(
        app.count("audit_events WHERE entity = 'user' AND action = 'create'"),
        1
    );

    let res = app
        .post("/api/v1/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "new.editor@example.org"),
            ("password", "a long enough password"),
        ])
        .send()
        .await;
    res.assert_status(200);

    // A partner needs an organisation; a duplicate e-mail is refused.
    let out = lshub()
        .args([
            "user",
            "create",
            "p@example.org",
            "--role",
            "partner",
            "--password-stdin",
        ])
        .env("DATABASE_URL", app.database_url())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let mut child = lshub()
        .args([
            "user",
            "create",
            &email_for(Role::Viewer),
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .env("DATABASE_URL", app.database_url())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"another long password\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn openapi_command_prints_the_document() {
    let out = lshub().args(["openapi"]).output().expect("run lshub");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        lshub::openapi::document().trim()
    );
}
