//! What users and API clients share in storage: their lists.

use uuid::Uuid;

use crate::db::list::{Filter, ListQuery, Order, Value, BY_ID};
use crate::domain::Role;
use crate::models::record::Archivable;

/// A table of accounts: its name and archive column, and the condition of its active rows.
#[derive(Debug, Clone, Copy)]
pub struct AccountTable {
    /// `users` or `api_clients`, and the column that disables or revokes a row.
    pub archivable: Archivable,
    /// `FROM <table>`.
    pub from: &'static str,
    /// The condition an active (not disabled, not revoked) row meets.
    pub active: &'static str,
}

/// The users' table.
pub const USERS: AccountTable = AccountTable {
    archivable: Archivable {
        table: "users",
        archived: "disabled_at",
    },
    from: "FROM users",
    active: "disabled_at IS NULL",
};

/// The API clients' table.
pub const CLIENTS: AccountTable = AccountTable {
    archivable: Archivable {
        table: "api_clients",
        archived: "revoked_at",
    },
    from: "FROM api_clients",
    active: "revoked_at IS NULL",
};

/// What an accounts list filters on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountFilter {
    /// Disabled users or revoked clients too.
    pub include_inactive: bool,
    /// Only accounts of this role.
    pub role: Option<Role>,
    /// Only the accounts acting for this organisation.
    pub organisation_id: Option<Uuid>,
}

/// The accounts of `t`, in creation order.
pub fn list_query(t: AccountTable, filter: &AccountFilter, limit: Option<u32>) -> ListQuery {
    let mut filters = Vec::new();
    if !filter.include_inactive {
        filters.push(Filter::Raw(t.active));
    }
    if let Some(role) = filter.role {
        filters.push(Filter::Eq("role", Value::Text(role.as_str().to_owned())));
    }
    if let Some(org) = filter.organisation_id {
        filters.push(Filter::Eq("organisation_id", Value::Uuid(org)));
    }
    ListQuery {
        resource: t.archivable.table,
        select: "SELECT *",
        from: t.from,
        id_expr: "id",
        filters,
        order: Order::Key {
            key: BY_ID,
            desc: false,
        },
        limit,
    }
}
