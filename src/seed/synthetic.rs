//! Deterministic synthetic organisations for demos and load tests: N companies and, in
//! proportion, IRCCS, universities and partners, all tagged `synthetic`. Written in batches of
//! 1,000 rows a statement (identity, detail and audit rows alike), in one transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::db::schema::{
    audit_events, companies, irccs, organisations, partners, universities, university_rankings,
};
use crate::domain::vat::italian_check_digit;
use crate::domain::{
    OrganisationKind, PartnerScope, PartnerType, RankingArea, Sector, Specialisation,
};
use crate::models::company::CompanyDetail;
use crate::models::irccs::IrccsDetail;
use crate::models::organisation::OrganisationFields;
use crate::models::partner::PartnerDetail;
use crate::models::university::{RankingRow, UniversityDetail};

/// Rows per INSERT statement.
const BATCH: usize = 1000;

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
        // `below` keeps the index within the slice.
        &items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
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
const SURNAMES: &[&str] = &[
    "Besta",
    "Mondino",
    "Maugeri",
    "Negri",
    "Sacco",
    "Niguarda",
    "Forlanini",
    "Golgi",
    "Volta",
    "Cànepa",
    "Galilei",
    "Fermi",
    "Montalcini",
    "Sforza",
    "Visconti",
    "Beccarìa",
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
    let body = format!("{:07}{:03}", n % 10_000_000, 1 + n % 100);
    let mut digits = [0u8; 10];
    for (d, c) in digits.iter_mut().zip(body.bytes()) {
        *d = c - b'0';
    }
    format!("{body}{}", italian_check_digit(&digits))
}

/// Names made unique by numbering repeats, as a real registry would disambiguate them.
struct Names(HashSet<String>);

impl Names {
    fn unique(&mut self, base: String, n: u64) -> String {
        if self.0.insert(base.clone()) {
            base
        } else {
            let numbered = format!("{base} {n}");
            self.0.insert(numbered.clone());
            numbered
        }
    }
}

fn fields(rng: &mut Rng, name: String) -> OrganisationFields {
    let (city, province, cap) = *rng.pick(CITIES);
    OrganisationFields {
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
    }
}

/// What `generate` makes.
#[derive(Debug, Default)]
pub struct Generated {
    /// Companies.
    pub companies: Vec<(OrganisationFields, CompanyDetail)>,
    /// IRCCS (one per 35 companies, at least one).
    pub irccs: Vec<(OrganisationFields, IrccsDetail)>,
    /// Universities with rankings (one per 50 companies, at least one).
    pub universities: Vec<(OrganisationFields, UniversityDetail, Vec<RankingRow>)>,
    /// Partners (one per 20 companies, at least one).
    pub partners: Vec<(OrganisationFields, PartnerDetail)>,
}

impl Generated {
    /// Rows in all.
    pub fn len(&self) -> usize {
        self.companies.len() + self.irccs.len() + self.universities.len() + self.partners.len()
    }

    /// True when nothing was generated.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `n` companies and the other kinds in proportion; the same for the same `n`.
pub fn generate(n: u32) -> Generated {
    let n = u64::from(n);
    let mut rng = Rng(0x6c73_6875_6200 ^ n);
    let mut names = Names(HashSet::new());
    let mut out = Generated::default();
    for i in 0..n {
        let base = format!(
            "{}{} {}",
            rng.pick(PREFIXES),
            rng.pick(ROOTS),
            rng.pick(SUFFIXES)
        );
        let name = names.unique(base, i + 1);
        let (sector, ateco) = *rng.pick(SECTORS);
        let employees = 5 + rng.below(20) * rng.below(60) + rng.below(10);
        let revenue = i64::try_from(employees * (80_000 + rng.below(220_000))).unwrap_or(i64::MAX);
        let detail = CompanyDetail {
            organisation_id: Uuid::nil(),
            vat_number: Some(vat_for(i + 1)),
            sector: sector.as_str().to_owned(),
            device_segment: (sector == Sector::MedicalDevices).then(|| "biomedicine".to_owned()),
            ateco_code: Some(ateco.to_owned()),
            // Some companies have not told their head count: lists must cope with NULLs.
            employees: if rng.below(10) == 0 {
                None
            } else {
                i32::try_from(employees).ok()
            },
            revenue_eur: Some(revenue),
            rd_investment_eur: Some(revenue / (5 + i64::try_from(rng.below(20)).unwrap_or(0))),
            exports_eur: Some(revenue / (2 + i64::try_from(rng.below(5)).unwrap_or(0))),
            founded_year: Some(1950 + i32::try_from(rng.below(75)).unwrap_or(0)),
            assolombarda_member: rng.below(3) == 0,
        };
        out.companies.push((fields(&mut rng, name), detail));
    }
    let mut names = Names(HashSet::new());
    for i in 0..(n / 35).max(1) {
        let base = format!(
            "IRCCS Istituto {} {}",
            rng.pick(SURNAMES),
            rng.pick(CITIES).0
        );
        let name = names.unique(base, i + 1);
        let first = *rng.pick(Specialisation::ALL);
        let second = *rng.pick(Specialisation::ALL);
        let mut specialisations = vec![first.as_str().to_owned()];
        if second != first {
            specialisations.push(second.as_str().to_owned());
        }
        let detail = IrccsDetail {
            organisation_id: Uuid::nil(),
            ownership: Some(
                if rng.below(2) == 0 {
                    "public"
                } else {
                    "private"
                }
                .to_owned(),
            ),
            specialisations,
            beds: i32::try_from(50 + rng.below(900)).ok(),
            emergency_care: Some(rng.below(3) == 0),
            serves_foreign_patients: Some(rng.below(2) == 0),
        };
        out.irccs.push((fields(&mut rng, name), detail));
    }
    let mut names = Names(HashSet::new());
    for i in 0..(n / 50).max(1) {
        let base = format!(
            "Università degli Studi {} di {}",
            rng.pick(SURNAMES),
            rng.pick(CITIES).0
        );
        let name = names.unique(base, i + 1);
        let detail = UniversityDetail {
            organisation_id: Uuid::nil(),
            ownership: Some(
                if rng.below(3) == 0 {
                    "private"
                } else {
                    "public"
                }
                .to_owned(),
            ),
            has_medical_faculty: Some(rng.below(2) == 0),
            students: i32::try_from(1000 + rng.below(60_000)).ok(),
            ror_id: None,
        };
        let rankings = (0..rng.below(3))
            .map(|p| RankingRow {
                university_id: Uuid::nil(),
                position: i16::try_from(p).unwrap_or(0),
                area: RankingArea::ALL[usize::try_from(p).unwrap_or(0) % RankingArea::ALL.len()]
                    .as_str()
                    .to_owned(),
                rank: i32::try_from(1 + rng.below(500)).unwrap_or(1),
                source: "QS World University Rankings".into(),
                year: 2019,
            })
            .collect();
        out.universities
            .push((fields(&mut rng, name), detail, rankings));
    }
    let mut names = Names(HashSet::new());
    for i in 0..(n / 20).max(1) {
        let kind = *rng.pick(&[
            "Associazione",
            "Fondazione",
            "Consorzio",
            "Agenzia",
            "Distretto",
        ]);
        let base = format!("{kind} {} {}", rng.pick(SURNAMES), rng.pick(CITIES).0);
        let name = names.unique(base, i + 1);
        let detail = PartnerDetail {
            organisation_id: Uuid::nil(),
            partner_type: rng.pick(PartnerType::ALL).as_str().to_owned(),
            scope: Some(rng.pick(PartnerScope::ALL).as_str().to_owned()),
        };
        out.partners.push((fields(&mut rng, name), detail));
    }
    out
}

/// Inserts identity rows and their audit rows for one batch; returns the new ids in order.
fn insert_identities(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    now: DateTime<Utc>,
    batch: &[&OrganisationFields],
) -> QueryResult<Vec<Uuid>> {
    let ids: Vec<Uuid> = batch.iter().map(|_| Uuid::now_v7()).collect();
    let rows: Vec<_> = batch
        .iter()
        .zip(&ids)
        .map(|(fields, id)| {
            (
                organisations::id.eq(*id),
                organisations::kind.eq(kind.as_str()),
                (*fields).clone(),
                organisations::created_at.eq(now),
                organisations::updated_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(organisations::table)
        .values(&rows)
        .execute(conn)?;
    let audits: Vec<_> = batch
        .iter()
        .zip(&ids)
        .map(|(fields, id)| {
            (
                audit_events::id.eq(Uuid::now_v7()),
                audit_events::at.eq(now),
                audit_events::actor_kind.eq("system"),
                audit_events::action.eq("create"),
                audit_events::entity.eq(kind.as_str()),
                audit_events::entity_id.eq(*id),
                audit_events::changes.eq(
                    json!({"before": null, "after": {"name": fields.name, "source": "synthetic"}}),
                ),
            )
        })
        .collect();
    diesel::insert_into(audit_events::table)
        .values(&audits)
        .execute(conn)?;
    Ok(ids)
}

/// Counts of what was loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Companies.
    pub companies: usize,
    /// IRCCS.
    pub irccs: usize,
    /// Universities.
    pub universities: usize,
    /// Partners.
    pub partners: usize,
}

/// Generates and inserts `n` companies and the other kinds, reporting `(done, total)` rows
/// after each batch.
pub fn load(
    conn: &mut PgConnection,
    n: u32,
    progress: &mut dyn FnMut(usize, usize),
) -> QueryResult<Loaded> {
    let data = generate(n);
    let total = data.len();
    let now = crate::db::now();
    let loaded = conn.transaction(|conn| {
        let mut done = 0;
        for chunk in data.companies.chunks(BATCH) {
            let ids = insert_identities(
                conn,
                OrganisationKind::Company,
                now,
                &chunk.iter().map(|c| &c.0).collect::<Vec<_>>(),
            )?;
            let rows: Vec<CompanyDetail> = chunk
                .iter()
                .zip(&ids)
                .map(|((_, d), id)| CompanyDetail {
                    organisation_id: *id,
                    ..d.clone()
                })
                .collect();
            diesel::insert_into(companies::table)
                .values(&rows)
                .execute(conn)?;
            done += chunk.len();
            progress(done, total);
        }
        for chunk in data.irccs.chunks(BATCH) {
            let ids = insert_identities(
                conn,
                OrganisationKind::Irccs,
                now,
                &chunk.iter().map(|c| &c.0).collect::<Vec<_>>(),
            )?;
            let rows: Vec<IrccsDetail> = chunk
                .iter()
                .zip(&ids)
                .map(|((_, d), id)| IrccsDetail {
                    organisation_id: *id,
                    ..d.clone()
                })
                .collect();
            diesel::insert_into(irccs::table)
                .values(&rows)
                .execute(conn)?;
            done += chunk.len();
            progress(done, total);
        }
        for chunk in data.universities.chunks(BATCH) {
            let ids = insert_identities(
                conn,
                OrganisationKind::University,
                now,
                &chunk.iter().map(|c| &c.0).collect::<Vec<_>>(),
            )?;
            let rows: Vec<UniversityDetail> = chunk
                .iter()
                .zip(&ids)
                .map(|((_, d, _), id)| UniversityDetail {
                    organisation_id: *id,
                    ..d.clone()
                })
                .collect();
            diesel::insert_into(universities::table)
                .values(&rows)
                .execute(conn)?;
            let rankings: Vec<RankingRow> = chunk
                .iter()
                .zip(&ids)
                .flat_map(|((_, _, r), id)| {
                    r.iter().map(move |r| RankingRow {
                        university_id: *id,
                        ..r.clone()
                    })
                })
                .collect();
            diesel::insert_into(university_rankings::table)
                .values(&rankings)
                .execute(conn)?;
            done += chunk.len();
            progress(done, total);
        }
        for chunk in data.partners.chunks(BATCH) {
            let ids = insert_identities(
                conn,
                OrganisationKind::Partner,
                now,
                &chunk.iter().map(|c| &c.0).collect::<Vec<_>>(),
            )?;
            let rows: Vec<PartnerDetail> = chunk
                .iter()
                .zip(&ids)
                .map(|((_, d), id)| PartnerDetail {
                    organisation_id: *id,
                    ..d.clone()
                })
                .collect();
            diesel::insert_into(partners::table)
                .values(&rows)
                .execute(conn)?;
            done += chunk.len();
            progress(done, total);
        }
        Ok::<_, diesel::result::Error>(Loaded {
            companies: data.companies.len(),
            irccs: data.irccs.len(),
            universities: data.universities.len(),
            partners: data.partners.len(),
        })
    })?;
    // Fresh statistics, or the planner sorts whole tables for keyset pages until autovacuum
    // gets round to it (measured: 180 ms a 1,000-row batch instead of 8 ms).
    conn.batch_execute("ANALYZE organisations, companies, irccs, universities, university_rankings, partners, audit_events")?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_n_gives_the_same_data_and_valid_vat_numbers() {
        let a = generate(500);
        let b = generate(500);
        assert_eq!(a.companies.len(), 500);
        assert_eq!(a.irccs.len(), 14);
        assert_eq!(a.universities.len(), 10);
        assert_eq!(a.partners.len(), 25);
        for ((fa, da), (fb, db)) in a.companies.iter().zip(&b.companies) {
            assert_eq!(fa, fb);
            assert_eq!(da, db);
            let vat = da.vat_number.as_deref().expect("vat");
            assert!(crate::domain::VatNumber::parse(vat).is_ok(), "{vat}");
        }
        let names: HashSet<_> = a
            .companies
            .iter()
            .map(|(f, _)| f.name.to_lowercase())
            .collect();
        assert_eq!(names.len(), 500, "names are unique");
    }
}
