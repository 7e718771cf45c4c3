//! Argon2id password hashing, off the async workers and behind a small concurrency cap.

use std::sync::{Arc, OnceLock};

use actix_web::web;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Hashes a password with Argon2id and the crate's defaults (OWASP's parameters: m=19 MiB,
/// t=2, p=1), as a PHC string.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// True when `password` matches the PHC string `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash nobody's password matches, verified when the user is unknown so that an unknown
/// user and a wrong password take alike long.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&uuid::Uuid::now_v7().to_string()).unwrap_or_else(|_| {
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$k5cLnV7pD1lTK4mGxFyQv5Ckqn5bS4aJgFyQn2t6a8c".into()
        })
    })
}

/// Runs Argon2 on the blocking pool, at most `permits` at a time, so a login storm queues
/// here instead of taking every blocking thread from database work.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// A hasher allowing `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Self {
        // Made now, so the first unknown-user login costs one hash like any other.
        dummy_hash();
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Verifies `password` against `hash`, or against a dummy hash when there is none.
    pub async fn verify(&self, hash: Option<String>, password: String) -> Result<bool, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        web::block(move || match hash {
            Some(hash) => verify_password(&hash, &password),
            None => {
                verify_password(dummy_hash(), &password);
                false
            }
        })
        .await
        .map_err(ApiError::internal)
    }

    /// Hashes `password` under the same cap.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        web::block(move || hash_password(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }
}
