//! The ids of the registry's records, one type per kind of record: a goal's id where an
//! activity's is expected, or an activity's where an organisation's is, does not compile. Each
//! is a UUID on the wire and in the database; the conversions are explicit, at the edges (a
//! path or a body member in, a column out).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// The id of the record whose UUID is `uuid`.
            pub const fn new(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID, for a column or a path.
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

record_id!(
    /// An organisation's id (of any of the four kinds).
    OrganisationId
);
record_id!(
    /// A strategic goal's id.
    GoalId
);
record_id!(
    /// An activity's id.
    ActivityId
);

/// The id of a record that can be checked to be live (not archived) before something links to
/// it; the store knows which table each names.
pub trait LiveRecord: Copy + Into<Uuid> + std::fmt::Display + Send + Sync + 'static {
    /// The record's kind, as problems name it (`organisation`, `goal`, `activity`).
    const NOUN: &'static str;

    /// The id of this kind whose UUID is `uuid` (a path's or a body's).
    fn from_uuid(uuid: Uuid) -> Self;
}

impl LiveRecord for OrganisationId {
    const NOUN: &'static str = "organisation";

    fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl LiveRecord for GoalId {
    const NOUN: &'static str = "goal";

    fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl LiveRecord for ActivityId {
    const NOUN: &'static str = "activity";

    fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
}
