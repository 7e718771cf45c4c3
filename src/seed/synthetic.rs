//! Deterministic synthetic organisations for demos and load tests: N companies and, in
//! proportion, IRCCS, universities and partners, all tagged `synthetic`. Written in batches of
//! 1,000 rows a statement (identity, detail and audit rows alike), in one transaction.

use std::collections::HashSet;

use diesel::prelude::*;
use serde_json::json;

use crate::domain::organisation::{
    CompanyDraft, IrccsDraft, OrganisationDraft, PartnerDraft, RankingDraft, UniversityDraft,
};
use crate::domain::vat::italian_check_digit;
use crate::domain::{
    DeviceSegment, OrganisationKind, Ownership, PartnerScope, PartnerType, RankingArea, Sector,
    Specialisation,
};
use crate::models::audit::Actor;
use crate::models::company::CompanyDetail;
use crate::models::irccs::IrccsDetail;
use crate::models::organisation::{self, DetailWrite};
use crate::models::partner::PartnerDetail;
use crate::models::university::UniversityDetail;

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

fn fields(rng: &mut Rng, name: String) -> OrganisationDraft {
    let (city, province, cap) = *rng.pick(CITIES);
    OrganisationDraft {
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
    pub companies: Vec<(OrganisationDraft, CompanyDraft)>,
    /// IRCCS (one per 35 companies, at least one).
    pub irccs: Vec<(OrganisationDraft, IrccsDraft)>,
    /// Universities with their rankings (one per 50 companies, at least one).
    pub universities: Vec<(OrganisationDraft, UniversityDraft)>,
    /// Partners (one per 20 companies, at least one).
    pub partners: Vec<(OrganisationDraft, PartnerDraft)>,
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
        let detail = CompanyDraft {
            vat_number: Some(vat_for(i + 1)),
            sector,
            device_segment: (sector == Sector::MedicalDevices)
                .then_some(DeviceSegment::Biomedicine),
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
        let mut specialisations = vec![first];
        if second != first {
            specialisations.push(second);
        }
        let detail = IrccsDraft {
            ownership: Some(if rng.below(2) == 0 {
                Ownership::Public
            } else {
                Ownership::Private
            }),
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
        let ownership = Some(if rng.below(3) == 0 {
            Ownership::Private
        } else {
            Ownership::Public
        });
        let has_medical_faculty = Some(rng.below(2) == 0);
        let students = i32::try_from(1000 + rng.below(60_000)).ok();
        let rankings = (0..rng.below(3))
            .map(|p| RankingDraft {
                position: i16::try_from(p).unwrap_or(0),
                area: RankingArea::ALL[usize::try_from(p).unwrap_or(0) % RankingArea::ALL.len()],
                rank: i32::try_from(1 + rng.below(500)).unwrap_or(1),
                source: "QS World University Rankings".into(),
                year: 2019,
            })
            .collect();
        let detail = UniversityDraft {
            ownership,
            has_medical_faculty,
            students,
            ror_id: None,
            rankings,
        };
        out.universities.push((fields(&mut rng, name), detail));
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
        let detail = PartnerDraft {
            partner_type: *rng.pick(PartnerType::ALL),
            scope: Some(*rng.pick(PartnerScope::ALL)),
        };
        out.partners.push((fields(&mut rng, name), detail));
    }
    out
}

/// Inserts one batch of kind `D`'s organisations, each with its `create` audit event.
fn insert_batch<D: DetailWrite>(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    now: chrono::DateTime<chrono::Utc>,
    batch: &[(OrganisationDraft, D::Draft)],
) -> QueryResult<()> {
    organisation::insert_all::<D>(
        conn,
        &Actor::system(),
        kind,
        now,
        batch,
        |fields| json!({"before": null, "after": {"name": fields.name, "source": "synthetic"}}),
    )
    .map(|_| ())
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
        let mut report = |rows: usize| {
            done += rows;
            progress(done, total);
        };
        for chunk in data.companies.chunks(BATCH) {
            insert_batch::<CompanyDetail>(conn, OrganisationKind::Company, now, chunk)?;
            report(chunk.len());
        }
        for chunk in data.irccs.chunks(BATCH) {
            insert_batch::<IrccsDetail>(conn, OrganisationKind::Irccs, now, chunk)?;
            report(chunk.len());
        }
        for chunk in data.universities.chunks(BATCH) {
            insert_batch::<UniversityDetail>(conn, OrganisationKind::University, now, chunk)?;
            report(chunk.len());
        }
        for chunk in data.partners.chunks(BATCH) {
            insert_batch::<PartnerDetail>(conn, OrganisationKind::Partner, now, chunk)?;
            report(chunk.len());
        }
        Ok::<_, diesel::result::Error>(Loaded {
            companies: data.companies.len(),
            irccs: data.irccs.len(),
            universities: data.universities.len(),
            partners: data.partners.len(),
        })
    })?;
    // A bulk load leaves a delta row per group and batch: fold them now rather than have the
    // first statistics add them up.
    crate::models::stats::compact_rollup(conn)?;
    crate::db::vacuum_analyze_registry(conn)?;
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
