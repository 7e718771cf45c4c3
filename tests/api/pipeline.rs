//! The one write pipeline, seen from outside: what every writable resource shares, whatever
//! its kind (records, goal–activity links, dated links), and the list ETags every write moves.

use lshub::domain::Role;
use serde_json::json;

use crate::helpers::*;

fn id_of(v: &Value) -> &str {
    v["id"].as_str().expect("id")
}

#[actix_web::test]
async fn every_write_moves_the_list_etags() {
    let app = TestApp::spawn().await;
    let company = app
        .create_company(
            json!({"name": "Etag Pharma", "vat_number": "IT12345678903", "sector": "cdmo"}),
        )
        .await;
    let url = format!("/api/v1/companies/{}", id_of(&company));
    let list_etag = |res: &TestResponse| res.header("etag").expect("list etag");
    let mut seen = list_etag(&app.get("/api/v1/companies").role(Role::Viewer).send().await);
    let mut version = company["version"].as_i64().expect("version");
    // A third of writes left every shard untouched when the shard was drawn per row: 60 writes
    // would all have to be lucky for a regression to pass.
    for i in 0..60 {
        let res = app
            .patch(&url)
            .role(Role::Editor)
            .header("If-Match", &format!("\"{version}\""))
            .merge_patch(&json!({"employees": i}))
            .send()
            .await;
        res.assert_status(200);
        version = res.json()["version"].as_i64().expect("version");
        let poll = app
            .get("/api/v1/companies")
            .role(Role::Viewer)
            .header("If-None-Match", &seen)
            .send()
            .await;
        poll.assert_status(200);
        let now = list_etag(&poll);
        assert_ne!(now, seen, "write {i} left the list ETag unchanged");
        seen = now;
    }
    // Each write bumped exactly one shard.
    let total: i64 = {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Total {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            total: i64,
        }
        diesel::sql_query("SELECT sum(value)::bigint AS total FROM change_counter")
            .get_result::<Total>(&mut app.conn())
            .expect("sum")
            .total
    };
    assert_eq!(total, app.count("audit_events"));
}
