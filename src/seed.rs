//! Demo data: deterministic synthetic companies (tagged `synthetic`; the brochure names no
//! company) and one demo account per role.

use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::auth::password::hash_password;
use crate::db::schema::{audit_events, companies, organisations};
use crate::domain::vat::italian_check_digit;
use crate::domain::{OrganisationKind, Role, Sector};
use crate::models::company::CompanyDetail;
use crate::models::organisation::OrganisationFields;
use crate::models::user::{self, NewUser};

/// A small deterministic generator (SplitMix64), so the same N always yields the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const PREFIXES: &[&str] = &[
    "Bio", "Farma", "Medi", "Gene", "Neuro", "Cardio", "Onco", "Immuno", "Derma", "Vita", "Salus",
    "Lumen", "Nova", "Àrea", "Città", "Ottica", "Pneumo", "Emato", "Endo", "Orto",
];
const ROOTS: &[&str] = &[
    "tech",
    "gen",
    "lab",
    "pharma",
    "sistemi",
    "diagnostica",
    "care",
    "medica",
    "scienze",
    "cell",
    "logic",
    "sintesi",
    "terapie",
    "dinamica",
];
const SUFFIXES: &[&str] = &[
    "S.p.A.",
    "S.r.l.",
    "Italia",
    "Milano",
    "Lombardia",
    "Società Benefit",
    "Ricerca",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Milano", "MI", "20121"),
    ("Milano", "MI", "20157"),
    ("Monza", "MB", "20900"),
    ("Bergamo", "BG", "24121"),
    ("Brescia", "BS", "25121"),
    ("Pavia", "PV", "27100"),
    ("Lodi", "LO", "26900"),
    ("Como", "CO", "22100"),
    ("Varese", "VA", "21100"),
    ("Cremona", "CR", "26100"),
    ("Sesto San Giovanni", "MI", "20099"),
    ("Segrate", "MI", "20054"),
];
const SECTORS: &[(Sector, &str)] = &[
    (Sector::Pharmaceutical, "21.20"),
    (Sector::Biopharmaceutical, "21.10"),
    (Sector::Biotech, "72.11"),
    (Sector::MedicalDevices, "32.50"),
    (Sector::Cdmo, "21.20"),
    (Sector::HealthcareServices, "86.10"),
    (Sector::DigitalHealth, "62.01"),
    (Sector::Nutraceutical, "10.89"),
];

/// A valid Partita IVA derived from `n` (distinct for distinct n below 10^7).
fn vat_for(n: u64) -> String {
    let mut digits = [0u8; 10];
    let body = format!("{:07}{:03}", n % 10_000_000, 1 + n % 100);
    for (d, c) in digits.iter_mut().zip(body.bytes()) {
        *d = c - b'0';
    }
    format!("{body}{}", italian_check_digit(&digits))
}

/// `n` synthetic companies, the same for the same `n`.
pub fn synthetic_companies(n: u32) -> Vec<(OrganisationFields, CompanyDetail)> {
    let mut rng = Rng(0x6c73_6875_6200 ^ u64::from(n));
    let mut seen = std::collections::HashSet::new();
    (0..u64::from(n))
        .map(|i| {
            let base = format!(
                "{}{} {}",
                rng.pick(PREFIXES),
                rng.pick(ROOTS),
                rng.pick(SUFFIXES)
            );
            let name = if seen.insert(base.clone()) {
                base
            } else {
                format!("{base} {}", i + 1)
            };
            let (city, province, cap) = *rng.pick(CITIES);
            let (sector, ateco) = *rng.pick(SECTORS);
            let employees = 5 + rng.below(20) * rng.below(60) + rng.below(10);
            let revenue = employees as i64 * (80_000 + rng.below(220_000) as i64);
            let fields = OrganisationFields {
                name,
                legal_name: None,
                description: None,
                website: None,
                email: None,
                phone: None,
                address_street: None,
                address_city: Some(city.to_owned()),
                address_postal_code: Some(cap.to_owned()),
                address_province: Some(province.to_owned()),
                address_country: "IT".into(),
                tags: vec!["synthetic".into()],
                in_mind: rng.below(12) == 0,
            };
            let detail = CompanyDetail {
                organisation_id: Uuid::nil(),
                vat_number: Some(vat_for(i + 1)),
                sector: sector.as_str().to_owned(),
                device_segment: (sector == Sector::MedicalDevices)
                    .then(|| "biomedicine".to_owned()),
                ateco_code: Some(ateco.to_owned()),
                employees: i32::try_from(employees).ok(),
                revenue_eur: Some(revenue),
                rd_investment_eur: Some(revenue / (5 + rng.below(20) as i64)),
                exports_eur: Some(revenue / (2 + rng.below(5) as i64)),
                founded_year: Some(1950 + rng.below(75) as i32),
                assolombarda_member: rng.below(3) == 0,
            };
            (fields, detail)
        })
        .collect()
}

/// Inserts the synthetic companies (with their audit rows) in batches; returns how many.
pub fn load_synthetic(conn: &mut PgConnection, n: u32) -> QueryResult<usize> {
    let now = crate::db::now();
    let rows = synthetic_companies(n);
    conn.transaction(|conn| {
        for chunk in rows.chunks(1000) {
            let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
            let orgs: Vec<_> = chunk
                .iter()
                .zip(&ids)
                .map(|((fields, _), id)| {
                    (
                        organisations::id.eq(*id),
                        organisations::kind.eq(OrganisationKind::Company.as_str()),
                        fields.clone(),
                        organisations::created_at.eq(now),
                        organisations::updated_at.eq(now),
                    )
                })
                .collect();
            diesel::insert_into(organisations::table).values(&orgs).execute(conn)?;
            let details: Vec<CompanyDetail> = chunk
                .iter()
                .zip(&ids)
                .map(|((_, d), id)| CompanyDetail { organisation_id: *id, ..d.clone() })
                .collect();
            diesel::insert_into(companies::table).values(&details).execute(conn)?;
            let audits: Vec<_> = chunk
                .iter()
                .zip(&ids)
                .map(|((fields, _), id)| {
                    (
                        audit_events::id.eq(Uuid::now_v7()),
                        audit_events::at.eq(now),
                        audit_events::actor_kind.eq("system"),
                        audit_events::action.eq("create"),
                        audit_events::entity.eq("company"),
                        audit_events::entity_id.eq(*id),
                        audit_events::changes.eq(json!({"before": null, "after": {"name": fields.name, "source": "synthetic"}})),
                    )
                })
                .collect();
            diesel::insert_into(audit_events::table).values(&audits).execute(conn)?;
        }
        Ok(rows.len())
    })
}

/// True when the registry holds no organisation yet.
pub fn registry_is_empty(conn: &mut PgConnection) -> QueryResult<bool> {
    let count: i64 = organisations::table.count().get_result(conn)?;
    Ok(count == 0)
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
    let partner_org: Option<Uuid> = organisations::table
        .filter(organisations::kind.eq("company"))
        .filter(organisations::archived_at.is_null())
        .order(organisations::name_key)
        .select(organisations::id)
        .first(conn)
        .optional()?;
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
                created_at: now,
                updated_at: now,
            },
        )?;
        crate::models::audit::record(
            conn,
            &crate::models::audit::Actor::system(),
            "create",
            "user",
            id,
            json!({"before": null, "after": {"email": email, "role": role.as_str(), "organisation_id": organisation_id}}),
        )?;
        created.push(DemoAccount {
            email,
            role: *role,
            password,
        });
    }
    Ok(created)
}
