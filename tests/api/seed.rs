//! The demo datasets: the brochure's organisations and the synthetic generator.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::helpers::*;

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    detail: String,
}

fn rows(conn: &mut PgConnection, sql: &str) -> Vec<(String, String)> {
    diesel::sql_query(sql)
        .load::<Row>(conn)
        .expect("query")
        .into_iter()
        .map(|r| (r.name, r.detail))
        .collect()
}

#[actix_web::test]
async fn the_brochure_yields_its_ranked_universities_partners_and_aliases_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn();
    let first =
        lshub::seed::brochure::load(&mut conn, &lshub::http::resources::Pipeline).expect("load");
    assert!(first.created >= 30, "{first:?}");

    // The ranking table: four universities, ten QS 2019 rows.
    let ranked = rows(
        &mut conn,
        "SELECT o.name, string_agg(r.area || ':' || r.rank || ':' || r.year, ';' ORDER BY r.area) AS detail \
         FROM university_rankings r JOIN organisations o ON o.id = r.university_id GROUP BY o.name ORDER BY o.name",
    );
    assert_eq!(
        ranked,
        vec![
            (
                "Politecnico di Milano".to_owned(),
                "arts_and_humanities:147:2019;engineering_and_technology:16:2019;management_and_social_sciences:97:2019;natural_sciences:124:2019".to_owned()
            ),
            (
                "Università Cattolica del Sacro Cuore".to_owned(),
                "arts_and_humanities:176:2019;life_sciences_and_medicine:187:2019".to_owned()
            ),
            ("Università Commerciale Luigi Bocconi".to_owned(), "management_and_social_sciences:16:2019".to_owned()),
            (
                "Università degli Studi di Milano".to_owned(),
                "arts_and_humanities:16:2019;life_sciences_and_medicine:74:2019;natural_sciences:144:2019".to_owned()
            ),
        ]
    );
    // Humanitas University is there, without rankings.
    assert_eq!(app.count("organisations o JOIN universities u ON u.organisation_id = o.id WHERE o.name ILIKE 'Humanitas%'"), 1);

    // Galeazzi: an IRCCS for musculoskeletal disorders, in MIND; the Human Technopole is there.
    let galeazzi = rows(
        &mut conn,
        "SELECT o.name, array_to_string(i.specialisations, ',') || '/' || o.in_mind AS detail \
         FROM organisations o JOIN irccs i ON i.organisation_id = o.id WHERE o.name ILIKE '%Galeazzi%'",
    );
    assert_eq!(galeazzi.len(), 1);
    assert_eq!(galeazzi[0].1, "musculoskeletal/true");
    assert_eq!(
        app.count("organisations WHERE name ILIKE '%Human Technopole%'"),
        1
    );

    // Partners with the right kind and type, once each despite the brochure's spellings.
    let partners = rows(
        &mut conn,
        "SELECT o.name, p.partner_type AS detail FROM organisations o JOIN partners p ON p.organisation_id = o.id ORDER BY o.name",
    );
    let type_of = |needle: &str| {
        partners
            .iter()
            .filter(|(n, _)| n.contains(needle))
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(type_of("Farmindustria"), vec!["trade_association"]);
    assert_eq!(type_of("Region of Lombardia"), vec!["public_institution"]);
    assert_eq!(
        type_of("Municipality of Milano"),
        vec!["public_institution"]
    );
    assert_eq!(type_of("ALISEI"), vec!["cluster"]);
    assert_eq!(
        type_of("Assobiotec").len(),
        1,
        "Assobiotech and Assobiotec are one organisation"
    );
    assert_eq!(
        app.count("organisations WHERE name ILIKE '%Farindustria%'"),
        0,
        "the typo is an alias, not a record"
    );
    // "Arexpo, Lendlease" are two organisations, both firms: companies, not partners.
    assert_eq!(app.count("organisations WHERE kind = 'company' AND (name ILIKE 'Arexpo%' OR name ILIKE 'Lendlease%')"), 2);
    // Every organisation was audited as the system's doing.
    assert_eq!(
        app.count("audit_events WHERE actor_kind = 'system' AND action = 'create'"),
        i64::try_from(first.created).unwrap()
    );

    // Seeding twice changes nothing.
    let organisations = app.count("organisations");
    let events = app.count("audit_events");
    let second = lshub::seed::brochure::load(&mut conn, &lshub::http::resources::Pipeline)
        .expect("second load");
    assert_eq!(second.created, 0);
    assert_eq!(second.existing, first.created);
    assert_eq!(app.count("organisations"), organisations);
    assert_eq!(app.count("audit_events"), events);
}

#[actix_web::test]
async fn the_brochure_organisations_are_served_by_the_api() {
    let app = TestApp::spawn().await;
    lshub::seed::brochure::load(&mut app.conn(), &lshub::http::resources::Pipeline).expect("load");
    let res = app
        .get("/api/v1/universities?ranking_area=management_and_social_sciences&max_rank=20")
        .role(lshub::domain::Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    let names: Vec<String> = res.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["Università Commerciale Luigi Bocconi"]);
}

#[actix_web::test]
async fn synthetic_data_is_deterministic_and_spans_every_kind() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn().await;
    let loaded = lshub::seed::synthetic::load(&mut a.conn(), 700, &mut |_, _| {}).expect("load a");
    lshub::seed::synthetic::load(&mut b.conn(), 700, &mut |_, _| {}).expect("load b");
    assert_eq!(
        (
            loaded.companies,
            loaded.irccs,
            loaded.universities,
            loaded.partners
        ),
        (700, 20, 14, 35)
    );
    #[derive(QueryableByName, PartialEq, Debug)]
    struct Fingerprint {
        #[diesel(sql_type = Text)]
        digest: String,
        #[diesel(sql_type = BigInt)]
        accented: i64,
    }
    let sql = "SELECT md5(string_agg(o.kind || o.name || coalesce(o.address_province, ''), ',' ORDER BY o.kind, o.name)) AS digest, \
               count(*) FILTER (WHERE o.name <> lshub_unaccent(o.name)) AS accented \
               FROM organisations o WHERE 'synthetic' = ANY(o.tags)";
    let fa: Fingerprint = diesel::sql_query(sql).get_result(&mut a.conn()).unwrap();
    let fb: Fingerprint = diesel::sql_query(sql).get_result(&mut b.conn()).unwrap();
    assert_eq!(fa, fb, "the same N gives the same data");
    assert!(fa.accented > 0, "names with accents are part of the mix");
    assert_eq!(a.count("organisations WHERE 'synthetic' = ANY(tags)"), 769);
    assert_eq!(a.count("audit_events WHERE action = 'create'"), 769);
    assert!(a.count("companies WHERE employees IS NULL") > 0);
    assert!(a.count("(SELECT DISTINCT address_province FROM organisations) p") >= 5);
    assert!(a.count("(SELECT DISTINCT sector FROM companies) s") >= 6);
}
