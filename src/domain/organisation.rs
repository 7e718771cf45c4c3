//! An organisation as written: the members every kind shares and each kind's own, declared
//! once as the body the server decodes (and the OpenAPI schemas derive from), and the rules
//! that turn a body into a draft the store writes. Every problem of a body is reported at
//! once, each at its member's JSON Pointer.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use crate::domain::rules::{self, required, text, Errors, Rejected};
use crate::domain::{
    self, DeviceSegment, Invalid, Ownership, PartnerScope, PartnerType, RankingArea, Sector,
    Specialisation,
};

/// A postal address as written; every member optional. Blank members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// Street and number, up to 200 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 200>>, inline)]
    pub street: Option<String>,
    /// City, up to 100 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 100>>, inline)]
    pub city: Option<String>,
    /// Postal code: exactly 5 digits when the country is `IT` (the default); otherwise 2 to 12
    /// letters, digits, spaces and dashes, stored uppercase.
    #[schema(value_type = Option<domain::PostalCode>, inline)]
    pub postal_code: Option<String>,
    /// Italian province code (any case; stored uppercase). Only for Italian addresses: with
    /// another `country` it is refused.
    #[schema(value_type = Option<domain::Province>, inline)]
    pub province: Option<String>,
    /// ISO 3166-1 alpha-2 code (any case; stored uppercase); absent or `null` means `IT`.
    #[schema(value_type = Option<domain::CountryCode>, inline)]
    pub country: Option<String>,
}

/// The members every organisation has, as written: the shared part of each kind's body
/// (flattened into `CompanyBody`, `IrccsBody`, `UniversityBody` and `PartnerBody`). Blank
/// optional members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct OrganisationBody {
    /// Display name: 2 to 200 characters once runs of spaces are collapsed, no control
    /// characters. Unique per kind among live records, ignoring case, accents, spacing and dash
    /// variants (409 `duplicate` otherwise).
    #[schema(required, value_type = Option<domain::Name>, inline)]
    pub name: Option<String>,
    /// Registered legal name, up to 300 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 300>>, inline)]
    pub legal_name: Option<String>,
    /// Free-text description, up to 5,000 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 5000>>, inline)]
    pub description: Option<String>,
    /// An `http` or `https` URL with a host name.
    #[schema(value_type = Option<domain::Website>, inline)]
    pub website: Option<String>,
    /// Contact e-mail (its domain is stored lowercase).
    #[schema(value_type = Option<domain::Email>, inline)]
    pub email: Option<String>,
    /// Contact phone: an optional `+`, then 6 to 15 digits with spaces, dots, dashes or
    /// parentheses between them.
    #[schema(value_type = Option<domain::Phone>, inline)]
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<AddressInput>,
    /// Up to 30 tags, each at most 50 characters without `;`, unique ignoring case.
    #[serde(default)]
    #[schema(value_type = crate::domain::rules::Tags, inline)]
    pub tags: Vec<String>,
    /// Located in the Milano Innovation District (MIND); default false.
    #[serde(default)]
    pub in_mind: bool,
}

impl OrganisationBody {
    /// Validates the common fields; problems go to `errors`.
    pub fn validate(self, errors: &mut Errors) -> OrganisationDraft {
        let name = match self.name.as_deref().map(domain::Name::parse) {
            Some(Ok(name)) => name.into_inner(),
            Some(Err(e)) => {
                errors.push("/name", e);
                String::new()
            }
            None => {
                errors.push(
                    "/name",
                    Invalid::new(domain::codes::REQUIRED, "name is required"),
                );
                String::new()
            }
        };
        let address = self.address.unwrap_or_default();
        let country = errors
            .optional(
                "/address/country",
                address.country,
                domain::CountryCode::parse,
            )
            .unwrap_or_default();
        let postal_code = errors.optional("/address/postal_code", address.postal_code, |v| {
            domain::PostalCode::parse(v, &country)
        });
        let province = errors.optional("/address/province", address.province, |v| {
            if country.is_italy() {
                domain::Province::parse(v)
            } else {
                Err(Invalid::new(
                    domain::codes::INVALID_FORMAT,
                    "province applies to Italian addresses only",
                ))
            }
        });
        let tags = match domain::tags(&self.tags) {
            Ok(tags) => tags.into_iter().map(domain::Tag::into_inner).collect(),
            Err((index, e)) => {
                errors.push(&format!("/tags/{index}"), e);
                Vec::new()
            }
        };
        OrganisationDraft {
            name,
            legal_name: text(errors, "/legal_name", self.legal_name, 300),
            description: text(errors, "/description", self.description, 5000),
            website: errors.optional_within(
                "/website",
                self.website,
                domain::contact::URL_MAX,
                |v| domain::Website::parse(v).map(|w| w.into_inner()),
            ),
            email: errors.optional_within("/email", self.email, domain::contact::EMAIL_MAX, |v| {
                domain::Email::parse(v).map(|e| e.into_inner())
            }),
            phone: errors.optional("/phone", self.phone, |v| {
                domain::Phone::parse(v).map(|p| p.into_inner())
            }),
            address_street: text(errors, "/address/street", address.street, 200),
            address_city: text(errors, "/address/city", address.city, 100),
            address_postal_code: postal_code.map(domain::PostalCode::into_inner),
            address_province: province.map(domain::Province::into_inner),
            address_country: country.into_inner(),
            tags,
            in_mind: self.in_mind,
        }
    }
}

/// A company as written (its body's one declaration): `POST /api/v1/companies` takes these
/// members (`CreateCompany`), `PATCH` a merge patch of them (`CompanyPatch`). Blank optional
/// members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CompanyBody {
    #[serde(flatten)]
    pub organisation: OrganisationBody,
    /// An Italian Partita IVA (11 digits, optionally prefixed `IT`; its check digit and office
    /// code are verified) or a foreign VAT number with its country prefix (e.g. `DE123456789`).
    /// Spaces and lowercase are accepted. Unique across all companies, archived ones included
    /// (409 `duplicate` otherwise).
    #[schema(value_type = Option<domain::VatNumber>, inline)]
    pub vat_number: Option<String>,
    /// Business sector.
    #[schema(required)]
    pub sector: Option<Sector>,
    /// Medical-device segment: only when `sector` is `medical_devices` (refused otherwise).
    pub device_segment: Option<DeviceSegment>,
    /// ATECO activity code: `NN`, `NN.N`, `NN.NN`, `NN.NN.N` or `NN.NN.NN` (e.g. `21.20`).
    #[schema(value_type = Option<domain::AtecoCode>, inline)]
    pub ateco_code: Option<String>,
    /// Head count.
    #[serde(
        default,
        deserialize_with = "crate::domain::rules::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 2147483647, format = Int32)]
    pub employees: Option<i64>,
    /// Yearly revenue in whole euros.
    #[serde(
        default,
        deserialize_with = "crate::domain::rules::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 1000000000000000_i64)]
    pub revenue_eur: Option<i64>,
    /// Yearly R&D investment in whole euros.
    #[serde(
        default,
        deserialize_with = "crate::domain::rules::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 1000000000000000_i64)]
    pub rd_investment_eur: Option<i64>,
    /// Yearly exports in whole euros.
    #[serde(
        default,
        deserialize_with = "crate::domain::rules::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 1000000000000000_i64)]
    pub exports_eur: Option<i64>,
    /// Year founded: 1800 to the current year. The upper bound moves every 1 January, so
    /// the schema states only the lower one.
    #[serde(
        default,
        deserialize_with = "crate::domain::rules::optional_whole_number"
    )]
    #[schema(minimum = 1800, format = Int32)]
    pub founded_year: Option<i64>,
    /// Member of Assolombarda; default false.
    #[serde(default)]
    pub assolombarda_member: bool,
}

/// An IRCCS as written (its body's one declaration): `POST /api/v1/irccs` takes these members
/// (`CreateIrccs`), `PATCH` a merge patch of them (`IrccsPatch`). Blank optional members count
/// as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct IrccsBody {
    #[serde(flatten)]
    pub organisation: OrganisationBody,
    /// Public or private.
    pub ownership: Option<Ownership>,
    /// Areas of specialisation: at least one, no repeats.
    #[serde(default)]
    #[schema(required, value_type = crate::domain::rules::Specialisations, inline)]
    pub specialisations: Vec<Specialisation>,
    /// Number of beds.
    #[serde(
        default,
        deserialize_with = "crate::domain::rules::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 2147483647, format = Int32)]
    pub beds: Option<i64>,
    /// Provides emergency care.
    pub emergency_care: Option<bool>,
    /// Serves foreign patients.
    pub serves_foreign_patients: Option<bool>,
}

/// A ranking as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RankingInput {
    /// Subject area.
    pub area: RankingArea,
    /// Position in the ranking, 1 (best) to 1,000,000.
    #[serde(deserialize_with = "crate::domain::rules::whole_number")]
    #[schema(minimum = 1, maximum = 1000000, format = Int32)]
    pub rank: i64,
    /// Who ranks, e.g. `QS World University Rankings`: 1 to 100 characters, without `:` or
    /// `;` (CSV joins a ranking's members and a university's rankings with them).
    #[schema(value_type = domain::RankingSource, inline)]
    pub source: String,
    /// Edition year: 1900 to next year. The upper bound moves every 1 January, so the schema
    /// states only the lower one.
    #[serde(deserialize_with = "crate::domain::rules::whole_number")]
    #[schema(minimum = 1900, format = Int32)]
    pub year: i64,
}

/// A university as written (its body's one declaration): `POST /api/v1/universities` takes
/// these members (`CreateUniversity`), `PATCH` a merge patch of them (`UniversityPatch`;
/// `rankings` is replaced whole). Blank optional members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct UniversityBody {
    #[serde(flatten)]
    pub organisation: OrganisationBody,
    /// Public or private.
    pub ownership: Option<Ownership>,
    /// Has a medical faculty.
    pub has_medical_faculty: Option<bool>,
    /// Number of students.
    #[serde(
        default,
        deserialize_with = "crate::domain::rules::optional_whole_number"
    )]
    #[schema(minimum = 0, maximum = 2147483647, format = Int32)]
    pub students: Option<i64>,
    /// Research Organization Registry id, bare (`03vek6s52`) or as its URL, any case; its
    /// checksum is verified; stored bare. Unique (409 `duplicate` otherwise).
    #[schema(value_type = Option<domain::RorId>, inline)]
    pub ror_id: Option<String>,
    /// Up to 50 rankings, at most one per area, source and year.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub rankings: Vec<RankingInput>,
}

/// An institutional partner as written (its body's one declaration): `POST /api/v1/partners`
/// takes these members (`CreatePartner`), `PATCH` a merge patch of them (`PartnerPatch`).
/// Blank optional members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PartnerBody {
    #[serde(flatten)]
    pub organisation: OrganisationBody,
    /// What kind of institution. (Firms named as partners are companies, not partners.)
    #[schema(required)]
    pub partner_type: Option<PartnerType>,
    /// Reach.
    pub scope: Option<PartnerScope>,
}

crate::domain::ids::record_id!(
    /// An organisation's id (of any of the four kinds).
    OrganisationId,
    "organisation"
);

/// The members every organisation has, validated and normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganisationDraft {
    pub name: String,
    pub legal_name: Option<String>,
    pub description: Option<String>,
    pub website: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address_street: Option<String>,
    pub address_city: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_province: Option<String>,
    pub address_country: String,
    pub tags: Vec<String>,
    pub in_mind: bool,
}

/// A kind's own members as written: how they validate into the kind's draft.
pub trait KindBody: DeserializeOwned + Default {
    /// The kind's own members, validated.
    type Draft: Clone + PartialEq + Send + 'static;

    /// Validates the kind's own members; problems go to `errors`.
    fn validate(self, errors: &mut Errors) -> Self::Draft;
}

/// Decodes and validates a whole organisation body (a create, or a merged patch) of the kind
/// whose own members `B` declares.
///
/// The shared members are decoded apart from the kind's own: behind `#[serde(flatten)]` a
/// member that does not decode loses its path, and every problem must name its member.
pub fn validate<B: KindBody>(
    body: Map<String, Json>,
) -> Result<(OrganisationDraft, B::Draft), Rejected> {
    static COMMON: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let common_members = COMMON.get_or_init(rules::member_names::<OrganisationBody>);
    let (common, own) = rules::split(body, common_members);
    let mut errors = Errors::default();
    let common: OrganisationBody = errors.decode(common);
    let own: B = errors.decode(own);
    let fields = common.validate(&mut errors);
    let detail = own.validate(&mut errors);
    errors.finish()?;
    Ok((fields, detail))
}

/// The largest money amount accepted (whole euros): beyond any company's figures, and safe
/// in a JSON number.
const MAX_EUR: i64 = 1_000_000_000_000_000;

/// A company's own members, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyDraft {
    pub vat_number: Option<String>,
    pub sector: Sector,
    pub device_segment: Option<DeviceSegment>,
    pub ateco_code: Option<String>,
    pub employees: Option<i32>,
    pub revenue_eur: Option<i64>,
    pub rd_investment_eur: Option<i64>,
    pub exports_eur: Option<i64>,
    pub founded_year: Option<i32>,
    pub assolombarda_member: bool,
}

impl KindBody for CompanyBody {
    type Draft = CompanyDraft;

    fn validate(self, errors: &mut Errors) -> CompanyDraft {
        let m = self;
        let sector = required(errors, "/sector", m.sector, Sector::Other);
        if m.device_segment.is_some() && sector != Sector::MedicalDevices {
            errors.push(
                "/device_segment",
                Invalid::new(
                    domain::codes::INVALID_FORMAT,
                    "device_segment applies to medical_devices companies only",
                ),
            );
        }
        let this_year = i64::from(chrono::Datelike::year(&chrono::Utc::now()));
        CompanyDraft {
            vat_number: errors.optional("/vat_number", m.vat_number, |v| {
                domain::VatNumber::parse(v).map(|v| v.into_inner())
            }),
            sector,
            device_segment: m.device_segment,
            ateco_code: errors.optional("/ateco_code", m.ateco_code, |v| {
                domain::AtecoCode::parse(v).map(|v| v.into_inner())
            }),
            employees: errors.range("/employees", m.employees, 0, i64::from(i32::MAX)),
            revenue_eur: errors.range("/revenue_eur", m.revenue_eur, 0, MAX_EUR),
            rd_investment_eur: errors.range("/rd_investment_eur", m.rd_investment_eur, 0, MAX_EUR),
            exports_eur: errors.range("/exports_eur", m.exports_eur, 0, MAX_EUR),
            founded_year: errors.range("/founded_year", m.founded_year, 1800, this_year),
            assolombarda_member: m.assolombarda_member,
        }
    }
}

/// An IRCCS's own members, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct IrccsDraft {
    pub ownership: Option<Ownership>,
    pub specialisations: Vec<Specialisation>,
    pub beds: Option<i32>,
    pub emergency_care: Option<bool>,
    pub serves_foreign_patients: Option<bool>,
}

impl KindBody for IrccsBody {
    type Draft = IrccsDraft;

    fn validate(self, errors: &mut Errors) -> IrccsDraft {
        let m = self;
        if m.specialisations.is_empty() {
            errors.push(
                "/specialisations",
                Invalid::new(
                    domain::codes::REQUIRED,
                    "at least one specialisation is required",
                ),
            );
        }
        IrccsDraft {
            ownership: m.ownership,
            specialisations: rules::distinct(errors, "/specialisations", &m.specialisations),
            beds: errors.range("/beds", m.beds, 0, i64::from(i32::MAX)),
            emergency_care: m.emergency_care,
            serves_foreign_patients: m.serves_foreign_patients,
        }
    }
}

/// At most this many rankings per university.
const MAX_RANKINGS: usize = 50;

/// A ranking, validated, at its position in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingDraft {
    pub position: i16,
    pub area: RankingArea,
    pub rank: i32,
    pub source: String,
    pub year: i32,
}

/// A university's own members, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct UniversityDraft {
    pub ownership: Option<Ownership>,
    pub has_medical_faculty: Option<bool>,
    pub students: Option<i32>,
    pub ror_id: Option<String>,
    pub rankings: Vec<RankingDraft>,
}

impl KindBody for UniversityBody {
    type Draft = UniversityDraft;

    fn validate(self, errors: &mut Errors) -> UniversityDraft {
        let m = self;
        let this_year = i64::from(chrono::Datelike::year(&chrono::Utc::now()));
        if m.rankings.len() > MAX_RANKINGS {
            errors.push(
                &format!("/rankings/{MAX_RANKINGS}"),
                Invalid::new(
                    domain::codes::OUT_OF_RANGE,
                    format!("at most {MAX_RANKINGS} rankings"),
                ),
            );
        }
        let mut rankings: Vec<RankingDraft> = Vec::new();
        for (i, r) in m.rankings.iter().enumerate().take(MAX_RANKINGS) {
            let at = |member: &str| format!("/rankings/{i}/{member}");
            let source = match domain::RankingSource::parse(&r.source) {
                Ok(source) => source.into_inner(),
                Err(e) => {
                    errors.push(&at("source"), e);
                    r.source.trim().to_owned()
                }
            };
            let rank = errors
                .range(&at("rank"), Some(r.rank), 1, 1_000_000)
                .unwrap_or(1);
            let year = errors
                .range(&at("year"), Some(r.year), 1900, this_year + 1)
                .unwrap_or(1900);
            if rankings
                .iter()
                .any(|o| o.area == r.area && o.source == source && i64::from(o.year) == r.year)
            {
                errors.push(
                    &at("area"),
                    Invalid::new(
                        domain::codes::DUPLICATE_VALUE,
                        "one ranking per area, source and year",
                    ),
                );
            }
            rankings.push(RankingDraft {
                position: i16::try_from(i).unwrap_or(i16::MAX),
                area: r.area,
                rank,
                source,
                year,
            });
        }
        UniversityDraft {
            ownership: m.ownership,
            has_medical_faculty: m.has_medical_faculty,
            students: errors.range("/students", m.students, 0, i64::from(i32::MAX)),
            ror_id: errors.optional("/ror_id", m.ror_id, |v| {
                domain::RorId::parse(v).map(domain::RorId::into_inner)
            }),
            rankings,
        }
    }
}

/// A partner's own members, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerDraft {
    pub partner_type: PartnerType,
    pub scope: Option<PartnerScope>,
}

impl KindBody for PartnerBody {
    type Draft = PartnerDraft;

    fn validate(self, errors: &mut Errors) -> PartnerDraft {
        PartnerDraft {
            partner_type: required(
                errors,
                "/partner_type",
                self.partner_type,
                PartnerType::Other,
            ),
            scope: self.scope,
        }
    }
}
