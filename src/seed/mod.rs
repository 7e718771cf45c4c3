//! Demo data: the brochure dataset, deterministic synthetic organisations (tagged `synthetic`;
//! the brochure names no company) and one demo account per role.

pub mod brochure;
pub mod synthetic;

use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::auth::password::hash_password;
use crate::domain::{OrganisationKind, Role};
use crate::models::organisation;
use crate::models::user::{self, NewUser};

/// True when the registry holds no organisation yet.
pub fn registry_is_empty(conn: &mut PgConnection) -> QueryResult<bool> {
    organisation::none(conn)
}

/// A demo account to print once.
#[derive(Debug)]
pub struct DemoAccount {
    /// Login e-mail.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Generated password.
    pub password: String,
}

/// Creates one account per role (the partner acts for the first company by name) unless they
/// exist; returns the new ones with their passwords.
pub fn create_demo_accounts(
    conn: &mut PgConnection,
) -> Result<Vec<DemoAccount>, Box<dyn std::error::Error + Send + Sync>> {
    let partner_org = organisation::first_live(conn, OrganisationKind::Company)?.map(Uuid::from);
    let mut created = Vec::new();
    for role in Role::ALL {
        let email = format!("{}@demo.lshub.example", role.as_str());
        if user::find_by_email(conn, &email)?.is_some() {
            continue;
        }
        let organisation_id = if *role == Role::Partner {
            partner_org
        } else {
            None
        };
        if *role == Role::Partner && organisation_id.is_none() {
            continue;
        }
        let password = crate::auth::tokens::random_secret()[..20].to_owned();
        let hash = hash_password(&password).map_err(|e| e.to_string())?;
        let now = crate::db::now();
        let id = Uuid::now_v7();
        user::insert(
            conn,
            &NewUser {
                id,
                email: &email,
                password_hash: Some(&hash),
                role: role.as_str(),
                organisation_id,
                disabled_at: None,
                created_at: now,
                updated_at: now,
            },
        )?;
        crate::models::audit::record(
            conn,
            &crate::models::audit::Actor::system(),
            crate::domain::AuditAction::Create,
            "user",
            crate::models::audit::Event {
                entity_id: id,
                related: Vec::new(),
                version: None,
                changes: json!({"before": null, "after": {"email": email, "role": role.as_str(), "organisation_id": organisation_id}}),
            },
        )?;
        created.push(DemoAccount {
            email,
            role: *role,
            password,
        });
    }
    Ok(created)
}
