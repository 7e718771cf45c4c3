//! The areas of action: a fixed reference list.

use diesel::prelude::*;

use crate::db::schema::areas;

/// Every area's code and name, in the brochure's order.
pub fn all(conn: &mut PgConnection) -> QueryResult<Vec<(String, String)>> {
    areas::table
        .order(areas::position)
        .select((areas::code, areas::name))
        .load(conn)
}
