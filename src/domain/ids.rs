//! The ids of the registry's records, one type per kind of record, each declared beside its
//! kind's body (`OrganisationId` in `organisation`, `GoalId` and `ActivityId` in `strategy`):
//! a goal's id where an activity's is expected, or an activity's where an organisation's is,
//! does not compile. Each is a UUID on the wire and in the database; the conversions are
//! explicit, at the edges (a path or a body member in, a column out).

use uuid::Uuid;

/// Declares the id type of a kind of record, `$noun` as problems name it.
macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident, $noun:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// The id of the record whose UUID is `uuid`.
            pub const fn new(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID, for a column or a path.
            pub const fn uuid(self) -> uuid::Uuid {
                self.0
            }
        }

        impl From<$name> for uuid::Uuid {
            fn from(id: $name) -> uuid::Uuid {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl $crate::domain::ids::LiveRecord for $name {
            const NOUN: &'static str = $noun;

            fn from_uuid(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}
pub(crate) use record_id;

/// The id of a record that can be checked to be live (not archived) before something links to
/// it; the store knows which table each names.
pub trait LiveRecord: Copy + Into<Uuid> + std::fmt::Display + Send + Sync + 'static {
    /// The record's kind, as problems name it (`organisation`, `goal`, `activity`).
    const NOUN: &'static str;

    /// The id of this kind whose UUID is `uuid` (a path's or a body's).
    fn from_uuid(uuid: Uuid) -> Self;
}
