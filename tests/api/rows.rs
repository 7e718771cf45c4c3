//! Rows read by column name: the vendored diesel begins each lookup after the column the
//! previous one found (vendor/diesel/PATCHED.md), which must answer what a scan from the first
//! column answers, in any order and when a name repeats.

use diesel::sql_types::Integer;
use diesel::{QueryableByName, RunQueryDsl};

use crate::helpers::TestApp;

#[derive(Debug, PartialEq, QueryableByName)]
struct InOrder {
    #[diesel(sql_type = Integer)]
    a: i32,
    #[diesel(sql_type = Integer)]
    b: i32,
    #[diesel(sql_type = Integer)]
    c: i32,
}

#[derive(Debug, PartialEq, QueryableByName)]
struct Reversed {
    #[diesel(sql_type = Integer)]
    c: i32,
    #[diesel(sql_type = Integer)]
    b: i32,
    #[diesel(sql_type = Integer)]
    a: i32,
}

#[actix_web::test]
async fn a_column_read_by_name_is_the_first_of_that_name_in_any_order() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn();
    // `a` twice: the first one is the answer, as `SELECT *` over a join gives it.
    let sql = "SELECT v AS a, v * 10 AS b, v * 100 AS a, v * 1000 AS c \
               FROM generate_series(1, 3) AS v";
    let in_order: Vec<InOrder> = diesel::sql_query(sql).load(&mut conn).expect("in order");
    let reversed: Vec<Reversed> = diesel::sql_query(sql).load(&mut conn).expect("reversed");
    for (v, (in_order, reversed)) in (1..=3).zip(in_order.iter().zip(&reversed)) {
        assert_eq!(
            in_order,
            &InOrder {
                a: v,
                b: v * 10,
                c: v * 1000
            }
        );
        assert_eq!(
            reversed,
            &Reversed {
                c: v * 1000,
                b: v * 10,
                a: v
            }
        );
    }
    let missing = diesel::sql_query("SELECT 1 AS a, 2 AS b").load::<InOrder>(&mut conn);
    assert!(missing.is_err(), "a column not selected is an error");
}
