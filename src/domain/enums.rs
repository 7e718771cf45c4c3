//! The closed vocabularies of the registry, written on the wire as `snake_case` strings.
//!
//! Every value comes from the hub's brochure (see DESIGN.md, "Registry"); adding one is a change
//! of the API contract.

use super::{codes, Invalid};

/// Declares a wire enum with its `ALL` list, `as_str`, `Display` and `FromStr`.
///
/// Each variant names its wire string next to it, so `as_str` needs no case conversion; a test
/// checks that serde's `rename_all = "snake_case"` writes the same strings.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            serde::Serialize,
            serde::Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order the contract lists them (also the order of the OpenAPI enum).
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire string, as serde writes it and as filters and CSV columns carry it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Invalid;

            /// Exact and case-sensitive, like serde, so a query filter and a JSON body agree.
            fn from_str(input: &str) -> Result<Self, Invalid> {
                match input {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(unknown_value(Self::ALL.iter().map(|value| value.as_str()))),
                }
            }
        }
    };
}

/// The refusal of a string that names no value, listing the ones that exist.
fn unknown_value(allowed: impl Iterator<Item = &'static str>) -> Invalid {
    let allowed: Vec<&str> = allowed.collect();
    Invalid::new(
        codes::UNKNOWN_VALUE,
        format!("expected one of: {}", allowed.join(", ")),
    )
}

wire_enum! {
    /// Which of the four registries an organisation belongs to; fixed at creation.
    pub enum OrganisationKind {
        /// A firm of the life sciences sector.
        Company => "company",
        /// An Istituto di Ricovero e Cura a Carattere Scientifico (clinical care and research).
        Irccs => "irccs",
        /// A university, with its subject rankings.
        University => "university",
        /// An institutional partner: a public body, association, cluster, agency, foundation.
        Partner => "partner",
    }
}

wire_enum! {
    /// A company's main line of business, as the hub groups the sector.
    pub enum Sector {
        /// Small-molecule and generic medicines.
        Pharmaceutical => "pharmaceutical",
        /// Medicines made from living organisms.
        Biopharmaceutical => "biopharmaceutical",
        /// Biotechnology research and platforms.
        Biotech => "biotech",
        /// Medical devices; the only sector with a `device_segment`.
        MedicalDevices => "medical_devices",
        /// Contract development and manufacturing organisations.
        Cdmo => "cdmo",
        /// Providers of care.
        HealthcareServices => "healthcare_services",
        /// Software and data for health.
        DigitalHealth => "digital_health",
        /// Food supplements and functional foods.
        Nutraceutical => "nutraceutical",
        /// None of the above.
        Other => "other",
    }
}

wire_enum! {
    /// The segment of a medical devices company, following the brochure's breakdown.
    pub enum DeviceSegment {
        /// Disposable and implantable biomedical devices.
        Biomedicine => "biomedicine",
        /// Biomedical instruments and equipment.
        InstrumentalBiomedicine => "instrumental_biomedicine",
        /// Technical and hospital equipment.
        TechnicalEquipment => "technical_equipment",
        /// Services and software for healthcare.
        ServicesAndSoftware => "services_and_software",
        /// In vitro diagnostics.
        InVitroDiagnostics => "in_vitro_diagnostics",
        /// Electromedical devices.
        Electromedicine => "electromedicine",
        /// None of the above.
        Other => "other",
    }
}

wire_enum! {
    /// Whether an IRCCS or a university is publicly or privately owned.
    pub enum Ownership {
        /// Owned by the state or a region.
        Public => "public",
        /// Privately owned (possibly accredited with the public health service).
        Private => "private",
    }
}

wire_enum! {
    /// An IRCCS's recognised field of research; an IRCCS has at least one.
    pub enum Specialisation {
        /// Heart and circulation.
        Cardiology => "cardiology",
        /// Cancer.
        Oncology => "oncology",
        /// Rehabilitation medicine.
        Rehabilitation => "rehabilitation",
        /// Nervous system.
        Neurology => "neurology",
        /// Molecular medicine.
        MolecularMedicine => "molecular_medicine",
        /// Mental health.
        Psychiatry => "psychiatry",
        /// Rare diseases.
        RareDiseases => "rare_diseases",
        /// Bones, joints and muscles (e.g. the Galeazzi Orthopedic Institute).
        Musculoskeletal => "musculoskeletal",
        /// Children's health.
        Pediatrics => "pediatrics",
        /// None of the above.
        Other => "other",
    }
}

wire_enum! {
    /// A broad subject area of a university ranking (QS's five areas).
    pub enum RankingArea {
        /// Life sciences and medicine.
        LifeSciencesAndMedicine => "life_sciences_and_medicine",
        /// Natural sciences.
        NaturalSciences => "natural_sciences",
        /// Management and social sciences.
        ManagementAndSocialSciences => "management_and_social_sciences",
        /// Engineering and technology.
        EngineeringAndTechnology => "engineering_and_technology",
        /// Arts and humanities (the brochure's "Arts and humanistic studies").
        ArtsAndHumanities => "arts_and_humanities",
    }
}

wire_enum! {
    /// What kind of body an institutional partner is; firms are companies, never partners.
    pub enum PartnerType {
        /// A ministry, region, municipality or other public body.
        PublicInstitution => "public_institution",
        /// An industry association (e.g. Assolombarda, Farmindustria).
        TradeAssociation => "trade_association",
        /// A technology cluster.
        Cluster => "cluster",
        /// A trade or development agency.
        Agency => "agency",
        /// A consulate or another country's trade office.
        ForeignRepresentation => "foreign_representation",
        /// A foundation that funds or runs research.
        ResearchFoundation => "research_foundation",
        /// An investor or investment fund.
        Investor => "investor",
        /// None of the above.
        Other => "other",
    }
}

wire_enum! {
    /// How far a partner's remit reaches.
    pub enum PartnerScope {
        /// A city or metropolitan area.
        Local => "local",
        /// A region (e.g. Lombardy).
        Regional => "regional",
        /// Italy as a whole.
        National => "national",
        /// Beyond Italy.
        International => "international",
    }
}

wire_enum! {
    /// The hub's areas of action, which goals and activities are filed under.
    pub enum Area {
        /// Communication.
        Communication => "communication",
        /// Experience sharing and community.
        ExperienceSharingAndCommunity => "experience_sharing_and_community",
        /// Funds.
        Funds => "funds",
        /// Research and open innovation.
        ResearchAndOpenInnovation => "research_and_open_innovation",
        /// Education.
        Education => "education",
        /// Excellence in Lombardia.
        ExcellenceInLombardia => "excellence_in_lombardia",
    }
}

wire_enum! {
    /// What a change did to a record, as the audit trail names it.
    pub enum AuditAction {
        /// It was created.
        Create => "create",
        /// Its fields changed.
        Update => "update",
        /// It was archived.
        Archive => "archive",
        /// It was restored from the archive.
        Restore => "restore",
        /// It was deleted (links; records are archived).
        Delete => "delete",
    }
}

wire_enum! {
    /// What the change feed's `entity` filter names: a registry entity as audit events name
    /// it, or `organisation` for the four kinds of organisation at once. Accounts (users, API
    /// clients) are not among them: they are admin data, kept out of a feed every role reads.
    pub enum ChangeEntity {
        /// Any organisation (companies, IRCCS, universities, partners).
        Organisation => "organisation",
        /// Companies.
        Company => "company",
        /// IRCCS.
        Irccs => "irccs",
        /// Universities.
        University => "university",
        /// Institutional partners.
        Partner => "partner",
        /// Strategic goals.
        Goal => "goal",
        /// Activities.
        Activity => "activity",
        /// Links between a goal and an activity.
        GoalActivityLink => "goal_activity_link",
        /// A goal's strategic partners.
        GoalPartner => "goal_partner",
        /// An activity's participants.
        ActivityParticipant => "activity_participant",
    }
}

impl ChangeEntity {
    /// The audit `entity` names this filter matches.
    pub fn entities(self) -> Vec<&'static str> {
        match self {
            Self::Organisation => OrganisationKind::ALL.iter().map(|k| k.as_str()).collect(),
            other => vec![other.as_str()],
        }
    }
}

wire_enum! {
    /// What organisation statistics can be grouped by.
    pub enum StatsGroupKey {
        /// The organisation's kind.
        Kind => "kind",
        /// A company's sector (null for the other kinds).
        Sector => "sector",
        /// The address's province (null when unknown).
        Province => "province",
        /// An IRCCS's specialisation: an IRCCS counts once in each of its specialisations (null
        /// for the other kinds).
        Specialisation => "specialisation",
        /// An institutional partner's type (null for the other kinds).
        PartnerType => "partner_type",
        /// Inside MIND or not.
        InMind => "in_mind",
    }
}

wire_enum! {
    /// Where an activity stands.
    pub enum ActivityStatus {
        /// Not started yet.
        Planned => "planned",
        /// Under way (the default).
        Active => "active",
        /// Done.
        Completed => "completed",
        /// Called off.
        Cancelled => "cancelled",
    }
}

wire_enum! {
    /// How an activity serves a goal.
    pub enum GoalLinkRole {
        /// The goal the activity is listed under (at most one per activity).
        Primary => "primary",
        /// Another goal it also serves.
        Supporting => "supporting",
    }
}

wire_enum! {
    /// How an organisation partners a goal.
    pub enum GoalPartnerRole {
        /// Named as a strategic partner of the goal.
        StrategicPartner => "strategic_partner",
        /// Another kind of partnership.
        Other => "other",
    }
}

wire_enum! {
    /// An organisation's part in an activity.
    pub enum ParticipantRole {
        /// Leads it.
        Lead => "lead",
        /// Organises it with the lead.
        CoOrganiser => "co_organiser",
        /// Funds it.
        Sponsor => "sponsor",
        /// Hosts it.
        Host => "host",
        /// Takes part.
        Participant => "participant",
    }
}

wire_enum! {
    /// Where a participation stands: partners propose and withdraw, editors confirm or decline.
    pub enum ParticipationStatus {
        /// Proposed (by a partner, or by an editor before confirmation).
        Proposed => "proposed",
        /// Confirmed by the hub.
        Confirmed => "confirmed",
        /// Declined by the hub.
        Declined => "declined",
        /// Withdrawn by the organisation.
        Withdrawn => "withdrawn",
    }
}

wire_enum! {
    /// What a caller may do; checked once at the top of each handler.
    pub enum Role {
        /// Reads everything that exists, writes nothing.
        Viewer => "viewer",
        /// Updates its own organisation's self-managed fields and its participations.
        Partner => "partner",
        /// Full create, update, archive and restore on the registry; reads the audit log.
        Editor => "editor",
        /// What an editor may, plus users and API clients.
        Admin => "admin",
    }
}

impl Role {
    /// Editors and admins may write any record; a partner's writes need an ownership check.
    pub fn can_edit(self) -> bool {
        matches!(self, Self::Editor | Self::Admin)
    }

    /// Only admins manage users and API clients.
    pub fn is_admin(self) -> bool {
        matches!(self, Self::Admin)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fmt::{Debug, Display};
    use std::str::FromStr;

    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use utoipa::PartialSchema;

    use super::*;

    /// Checks that `as_str`, `Display`, `FromStr`, serde and the OpenAPI schema agree on every value.
    fn agrees<T>(all: &[T], expected: &[&str])
    where
        T: Copy
            + Debug
            + Display
            + Eq
            + std::hash::Hash
            + FromStr<Err = Invalid>
            + Serialize
            + DeserializeOwned
            + PartialSchema,
    {
        let wire: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(wire, expected);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
        for (&value, text) in all.iter().zip(expected) {
            assert_eq!(serde_json::to_value(value).expect("serialises"), *text);
            assert_eq!(
                serde_json::from_value::<T>(serde_json::json!(text)).expect("should be accepted"),
                value
            );
            assert_eq!(T::from_str(text).expect("should be accepted"), value);
        }
        let schema = serde_json::to_value(T::schema()).expect("schema serialises");
        assert_eq!(schema["enum"], serde_json::json!(expected));

        for wrong in ["", "nope", " company", "Company", "OTHER"] {
            if expected.contains(&wrong) {
                continue;
            }
            let invalid = T::from_str(wrong).expect_err("should be refused");
            assert_eq!(invalid.code, codes::UNKNOWN_VALUE);
            assert_eq!(
                invalid.message,
                format!("expected one of: {}", expected.join(", "))
            );
            assert!(serde_json::from_value::<T>(serde_json::json!(wrong)).is_err());
        }
    }

    #[test]
    fn organisation_kind() {
        agrees(
            OrganisationKind::ALL,
            &["company", "irccs", "university", "partner"],
        );
    }

    #[test]
    fn sector() {
        agrees(
            Sector::ALL,
            &[
                "pharmaceutical",
                "biopharmaceutical",
                "biotech",
                "medical_devices",
                "cdmo",
                "healthcare_services",
                "digital_health",
                "nutraceutical",
                "other",
            ],
        );
    }

    #[test]
    fn device_segment() {
        agrees(
            DeviceSegment::ALL,
            &[
                "biomedicine",
                "instrumental_biomedicine",
                "technical_equipment",
                "services_and_software",
                "in_vitro_diagnostics",
                "electromedicine",
                "other",
            ],
        );
    }

    #[test]
    fn ownership() {
        agrees(Ownership::ALL, &["public", "private"]);
    }

    #[test]
    fn specialisation() {
        agrees(
            Specialisation::ALL,
            &[
                "cardiology",
                "oncology",
                "rehabilitation",
                "neurology",
                "molecular_medicine",
                "psychiatry",
                "rare_diseases",
                "musculoskeletal",
                "pediatrics",
                "other",
            ],
        );
    }

    #[test]
    fn ranking_area() {
        agrees(
            RankingArea::ALL,
            &[
                "life_sciences_and_medicine",
                "natural_sciences",
                "management_and_social_sciences",
                "engineering_and_technology",
                "arts_and_humanities",
            ],
        );
    }

    #[test]
    fn partner_type() {
        agrees(
            PartnerType::ALL,
            &[
                "public_institution",
                "trade_association",
                "cluster",
                "agency",
                "foreign_representation",
                "research_foundation",
                "investor",
                "other",
            ],
        );
        // The contract removed `company` as a partner type: firms are company records.
        assert!("company".parse::<PartnerType>().is_err());
    }

    #[test]
    fn partner_scope() {
        agrees(
            PartnerScope::ALL,
            &["local", "regional", "national", "international"],
        );
    }

    #[test]
    fn role() {
        agrees(
            AuditAction::ALL,
            &["create", "update", "archive", "restore", "delete"],
        );
        agrees(Role::ALL, &["viewer", "partner", "editor", "admin"]);
    }

    #[test]
    fn role_permissions() {
        let editors: Vec<Role> = Role::ALL.iter().copied().filter(|r| r.can_edit()).collect();
        assert_eq!(editors, [Role::Editor, Role::Admin]);
        let admins: Vec<Role> = Role::ALL.iter().copied().filter(|r| r.is_admin()).collect();
        assert_eq!(admins, [Role::Admin]);
    }
}

wire_enum! {
    /// What a webhook delivery attempt came to.
    pub enum DeliveryOutcome {
        /// The receiver answered 2xx.
        Delivered => "delivered",
        /// Another status (a redirect too: they are not followed), a timeout, or an address
        /// that could not be reached or was refused.
        Failed => "failed",
        /// The receiver answered 410: the subscription was disabled.
        Gone => "gone",
    }
}

wire_enum! {
    /// Why the hub disabled a webhook subscription by itself.
    pub enum DisabledReason {
        /// Its receiver answered 410 Gone.
        Gone => "gone",
        /// The last retry of an event failed.
        Failing => "failing",
    }
}
