//! API2 broken authentication: every way an access token can be forged, stretched or
//! mislabelled is one and the same 401, a disabled account's tokens die with it, and the
//! password grant tells neither by its answer nor by its time whether an account exists.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use diesel::connection::SimpleConnection;
use jsonwebtoken::{Algorithm, EncodingKey};
use lshub::auth::PrincipalKind;
use lshub::domain::Role;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::auth::{assert_oauth_error, login, password_login, refresh};
use crate::helpers::*;

const ME: &str = "/api/v1/me";
/// RFC 6750 §3.1: a token was sent and is unusable; nothing finer.
const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"lshub\", error=\"invalid_token\"";

/// The claims the service itself would issue to the viewer, as JSON so a test can give any
/// member any type.
fn claims(app: &TestApp) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": app.fixtures.users[&Role::Viewer].to_string(),
        "kind": "user",
        "role": "viewer",
        "scope": "registry:read",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": "lshub",
        "aud": "lshub-api",
        "jti": uuid::Uuid::now_v7().to_string(),
    })
}

/// The claims above with `adjust` applied.
fn claims_with(app: &TestApp, adjust: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims(app);
    adjust(&mut c);
    c
}

fn our_kid() -> String {
    lshub::auth::tokens::key_id(JWT_SECRET.as_bytes())
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// A compact JWT of any header, its signature an HMAC-SHA256 under `secret`, whatever `alg`
/// the header names: how an attacker who holds (or guesses) a key builds a token.
fn hmac_signed(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .expect("sign");
    format!("{signing_input}.{signature}")
}

fn header(alg: &str) -> Value {
    json!({"alg": alg, "typ": "at+jwt", "kid": our_kid()})
}

/// What the service's key signs with the service's header: a token that passes.
fn genuine(claims: &Value) -> String {
    hmac_signed(&header("HS256"), claims, JWT_SECRET.as_bytes())
}

/// A header and claims with no signature at all (RFC 7519 §6's unsecured JWT).
fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.{}.", b64(header), b64(claims))
}

/// Asserts the one refusal every bad token gets, and returns its detail.
#[track_caller]
fn assert_refused(what: &str, res: &TestResponse) -> String {
    assert_eq!(
        res.status,
        401,
        "{what}: {}",
        String::from_utf8_lossy(&res.body)
    );
    let problem = res.assert_problem(401, "unauthorized");
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some(INVALID_TOKEN_CHALLENGE),
        "{what}"
    );
    problem["detail"].as_str().unwrap_or_default().to_owned()
}

#[actix_web::test]
async fn no_credentials_is_a_bare_challenge() {
    let app = TestApp::spawn().await;
    let res = app.get(ME).send().await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"lshub\"")
    );
    // RFC 6750 §3.1: an unsupported scheme counts as no credentials, so no error code.
    let res = app
        .get(ME)
        .header("Authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"lshub\"")
    );
}

/// Each token differs from a genuine one in one respect. All are refused with the same
/// challenge and the same detail, so a forger learns nothing of which check failed.
#[actix_web::test]
async fn forged_stretched_and_mislabelled_tokens_are_one_and_the_same_401() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();

    // The baseline: what the forgeries below alter passes as it is.
    app.get(ME)
        .bearer(&genuine(&claims(&app)))
        .send()
        .await
        .assert_status(200);

    let admin = claims_with(&app, |c| c["role"] = json!("admin"));
    let other_secret = b"another-secret-0123456789abcdef0123456789abcdef";
    let tampered = {
        // A genuine token whose payload is swapped for an admin's, its signature kept.
        let token = genuine(&claims(&app));
        let mut parts: Vec<&str> = token.split('.').collect();
        let payload = b64(&admin);
        parts[1] = &payload;
        parts.join(".")
    };
    let forged: Vec<(&str, String)> = vec![
        // Signatures.
        (
            "signed with another secret",
            hmac_signed(&header("HS256"), &admin, other_secret),
        ),
        ("payload swapped, signature kept", tampered),
        (
            "signature stripped",
            genuine(&claims(&app))
                .rsplit_once('.')
                .map(|(input, _)| format!("{input}."))
                .unwrap_or_default(),
        ),
        (
            "alg none",
            unsigned(&json!({"alg": "none", "typ": "at+jwt"}), &admin),
        ),
        ("alg none with our kid", unsigned(&header("none"), &admin)),
        ("alg None", unsigned(&header("None"), &admin)),
        ("alg NONE", unsigned(&header("NONE"), &admin)),
        // HS/RS confusion. The service's key is an HMAC secret, so its only public material
        // is the `kid`: signed with it, as text or as the bytes it encodes, a token must fail.
        (
            "HS256 keyed with the kid",
            hmac_signed(&header("HS256"), &admin, our_kid().as_bytes()),
        ),
        (
            "HS256 keyed with the kid's bytes",
            hmac_signed(
                &header("HS256"),
                &admin,
                &URL_SAFE_NO_PAD.decode(our_kid()).expect("kid is base64url"),
            ),
        ),
        (
            "HS256 keyed with nothing",
            hmac_signed(&header("HS256"), &admin, b""),
        ),
        // The other way round: the true secret's HMAC under a header that names an
        // asymmetric algorithm (or another HMAC), for a verifier that lets the token choose.
        (
            "RS256 header",
            hmac_signed(&header("RS256"), &claims(&app), JWT_SECRET.as_bytes()),
        ),
        (
            "PS256 header",
            hmac_signed(&header("PS256"), &claims(&app), JWT_SECRET.as_bytes()),
        ),
        (
            "ES256 header",
            hmac_signed(&header("ES256"), &claims(&app), JWT_SECRET.as_bytes()),
        ),
        (
            "EdDSA header",
            hmac_signed(&header("EdDSA"), &claims(&app), JWT_SECRET.as_bytes()),
        ),
        (
            "HS512 header",
            hmac_signed(&header("HS512"), &claims(&app), JWT_SECRET.as_bytes()),
        ),
        (
            "HS512 signed with our secret",
            jsonwebtoken::encode(
                &jsonwebtoken::Header {
                    typ: Some("at+jwt".into()),
                    kid: Some(our_kid()),
                    ..jsonwebtoken::Header::new(Algorithm::HS512)
                },
                &claims(&app),
                &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
            )
            .expect("sign"),
        ),
        (
            "the attacker's key embedded in the header",
            hmac_signed(
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": our_kid(),
                        "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(other_secret)}}),
                &admin,
                other_secret,
            ),
        ),
        // Time.
        (
            "expired past the leeway",
            genuine(&claims_with(&app, |c| {
                c["iat"] = json!(now - 7200);
                c["nbf"] = json!(now - 7200);
                c["exp"] = json!(now - 60);
            })),
        ),
        (
            "not valid before an hour from now",
            genuine(&claims_with(&app, |c| {
                c["nbf"] = json!(now + 3600);
                c["exp"] = json!(now + 4200);
            })),
        ),
        (
            "issued an hour from now",
            genuine(&claims_with(&app, |c| c["iat"] = json!(now + 3600))),
        ),
        // jsonwebtoken < 10.3 skipped the time check when `exp` or `nbf` was a string.
        (
            "string exp in the past",
            genuine(&claims_with(&app, |c| {
                c["exp"] = json!((now - 3600).to_string())
            })),
        ),
        (
            "string exp in the future",
            genuine(&claims_with(&app, |c| {
                c["exp"] = json!((now + 600).to_string())
            })),
        ),
        (
            "string nbf in the future",
            genuine(&claims_with(&app, |c| {
                c["nbf"] = json!((now + 3600).to_string())
            })),
        ),
        (
            "no exp",
            genuine(&claims_with(&app, |c| {
                drop(c.as_object_mut().map(|o| o.remove("exp")))
            })),
        ),
        (
            "no nbf",
            genuine(&claims_with(&app, |c| {
                drop(c.as_object_mut().map(|o| o.remove("nbf")))
            })),
        ),
        (
            "no iat",
            genuine(&claims_with(&app, |c| {
                drop(c.as_object_mut().map(|o| o.remove("iat")))
            })),
        ),
        // Whose token, for whom.
        (
            "wrong issuer",
            genuine(&claims_with(&app, |c| c["iss"] = json!("evil"))),
        ),
        (
            "no issuer",
            genuine(&claims_with(&app, |c| {
                drop(c.as_object_mut().map(|o| o.remove("iss")))
            })),
        ),
        (
            "wrong audience",
            genuine(&claims_with(&app, |c| c["aud"] = json!("someone-else"))),
        ),
        (
            "no audience",
            genuine(&claims_with(&app, |c| {
                drop(c.as_object_mut().map(|o| o.remove("aud")))
            })),
        ),
        (
            "subject not an id",
            genuine(&claims_with(&app, |c| c["sub"] = json!("admin"))),
        ),
        (
            "a role that does not exist",
            genuine(&claims_with(&app, |c| c["role"] = json!("root"))),
        ),
        // Type (RFC 9068 §2.1) and key id.
        (
            "typ JWT",
            hmac_signed(
                &json!({"alg": "HS256", "typ": "JWT", "kid": our_kid()}),
                &claims(&app),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "no typ",
            hmac_signed(
                &json!({"alg": "HS256", "kid": our_kid()}),
                &claims(&app),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "unknown kid, signed by its own key",
            hmac_signed(
                &json!({"alg": "HS256", "typ": "at+jwt",
                        "kid": lshub::auth::tokens::key_id(other_secret)}),
                &admin,
                other_secret,
            ),
        ),
        (
            "unknown kid, signed by our key",
            hmac_signed(
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": "../../../dev/null"}),
                &claims(&app),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "no kid",
            hmac_signed(
                &json!({"alg": "HS256", "typ": "at+jwt"}),
                &claims(&app),
                JWT_SECRET.as_bytes(),
            ),
        ),
        // Not a token.
        ("not a JWT", "not-a-token".to_owned()),
        ("three empty parts", "..".to_owned()),
    ];
    // Inside the leeway (RFC 8725 §3.10 allows a few seconds of skew) a token still passes.
    let skewed = genuine(&claims_with(&app, |c| c["nbf"] = json!(now + 2)));
    app.get(ME).bearer(&skewed).send().await.assert_status(200);

    let mut details = std::collections::BTreeSet::new();
    for (what, token) in forged {
        let res = app.get(ME).bearer(&token).send().await;
        details.insert(assert_refused(what, &res));
    }
    assert_eq!(details.len(), 1, "refusals tell checks apart: {details:?}");
}

#[actix_web::test]
async fn a_disabled_user_can_neither_log_in_nor_refresh() {
    let app = TestApp::spawn().await;
    let tokens = login(&app, Role::Editor).await;
    app.conn()
        .batch_execute(&format!(
            "UPDATE users SET disabled_at = now() WHERE email = '{}'",
            email_for(Role::Editor)
        ))
        .unwrap();
    let res = password_login(&app, &email_for(Role::Editor), PASSWORD).await;
    assert_oauth_error(&res, 400, "invalid_grant");
    let res = refresh(&app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(&res, 400, "invalid_grant");
}

/// Disabling a user takes effect on its access tokens within a second, with no query per
/// request (the revocation set, kept current by NOTIFY); re-enabling it admits them again. A
/// revoked API client's tokens likewise. The refusal is the one every bad token gets.
#[actix_web::test]
async fn a_disabled_users_and_a_revoked_clients_access_tokens_are_refused_within_a_second() {
    let app = TestApp::spawn().await;
    let viewer = app.fixtures.users[&Role::Viewer];
    let me = || app.get(ME).role(Role::Viewer).send();
    me().await.assert_status(200);
    let forged = app
        .get(ME)
        .bearer(&hmac_signed(&header("HS256"), &claims(&app), b"guess"))
        .send()
        .await;
    let refusal = assert_refused("forged", &forged);
    let within_a_second = |want: u16| {
        let me = &me;
        async move {
            let started = Instant::now();
            loop {
                let res = me().await;
                if res.status == want {
                    return (started.elapsed(), res);
                }
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "still {} after a second",
                    res.status
                );
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    app.conn()
        .batch_execute(&format!(
            "UPDATE users SET disabled_at = now() WHERE id = '{viewer}'"
        ))
        .unwrap();
    let (took, res) = within_a_second(401).await;
    assert_eq!(assert_refused("disabled user", &res), refusal);
    eprintln!("a disabled user's token was refused after {took:?}");
    app.conn()
        .batch_execute(&format!(
            "UPDATE users SET disabled_at = NULL WHERE id = '{viewer}'"
        ))
        .unwrap();
    within_a_second(200).await;

    // A client: its token, then revoked.
    let client = uuid::Uuid::now_v7();
    app.conn()
        .batch_execute(&format!(
            "INSERT INTO api_clients (id, name, role, secret_hash, created_at, updated_at) \
             VALUES ('{client}', 'probe', 'viewer', 'x', now(), now())"
        ))
        .unwrap();
    let token = app
        .state
        .tokens
        .issue(client, PrincipalKind::Client, Role::Viewer, None)
        .unwrap()
        .token;
    app.get("/api/v1/companies")
        .bearer(&token)
        .send()
        .await
        .assert_status(200);
    app.conn()
        .batch_execute(&format!(
            "UPDATE api_clients SET revoked_at = now() WHERE id = '{client}'"
        ))
        .unwrap();
    let started = Instant::now();
    loop {
        let res = app.get("/api/v1/companies").bearer(&token).send().await;
        if res.status == 401 {
            assert_eq!(assert_refused("revoked client", &res), refusal);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still {}",
            res.status
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn unknown_user_and_wrong_password_answer_alike() {
    let app = TestApp::spawn().await;
    let wrong = password_login(&app, &email_for(Role::Admin), "nope").await;
    let unknown = password_login(&app, "nobody@example.org", "nope").await;
    let a = assert_oauth_error(&wrong, 400, "invalid_grant");
    let b = assert_oauth_error(&unknown, 400, "invalid_grant");
    assert_eq!(a["error_description"], b["error_description"]);
}

/// DESIGN "Security details": an unknown user costs a password hash too (against a dummy), so
/// the answer's time does not tell which e-mail addresses have accounts. Without the dummy,
/// an unknown user answers after one indexed lookup, a small fraction of an Argon2 hash. The
/// tries are interleaved and their medians compared, with a factor wide enough for a shared
/// machine's noise.
#[actix_web::test]
async fn unknown_user_and_wrong_password_take_alike_long() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limits.token_per_ip = 0;
        s.http.rate_limits.token_per_username = 0;
    })
    .await;
    let known = email_for(Role::Editor);
    // Warm the pool and the dummy hash.
    password_login(&app, &known, "warm-up").await;
    password_login(&app, "warm-up@example.org", "warm-up").await;
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let started = Instant::now();
        let res = password_login(&app, &known, "not the password").await;
        known_times.push(started.elapsed());
        assert_oauth_error(&res, 400, "invalid_grant");
        let started = Instant::now();
        let res = password_login(&app, &format!("nobody{i}@example.org"), "not the password").await;
        unknown_times.push(started.elapsed());
        assert_oauth_error(&res, 400, "invalid_grant");
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2].as_secs_f64()
    };
    let (known, unknown) = (median(&mut known_times), median(&mut unknown_times));
    let ratio = unknown / known;
    eprintln!("median login: known user {known:.4} s, unknown user {unknown:.4} s");
    assert!(
        (0.5..=2.0).contains(&ratio),
        "an unknown user answers {ratio:.2}x as long as a known one"
    );
}
