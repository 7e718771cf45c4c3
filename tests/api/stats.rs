//! Statistics: they agree with the lists under the same filters, group by one or two keys,
//! sum the companies' figures, answer CSV, poll with ETags like the lists, and count goals'
//! activities, partners and participants.

use std::collections::BTreeMap;

use diesel::RunQueryDsl;
use lshub::domain::{OrganisationKind, PartnerType, Province, Role, Sector, StatsGroupKey};
use lshub::models::company::CompanyFilter;
use lshub::models::partner::PartnerFilter;
use lshub::models::stats::{self as model, KindFilters, OrganisationStatsFilter};
use serde_json::{json, Value};

use crate::helpers::*;

async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).role(Role::Editor).json(&body).send().await;
    res.assert_status(201);
    res.json()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// A small registry: companies across sectors, provinces and sizes, two IRCCS, a university
/// and a partner (besides the fixtures' partner organisation), one archived company.
async fn registry(app: &TestApp) {
    let companies = [
        ("Alfa Bio", "biotech", "MI", 10, 1_000_000, true),
        ("Beta Bio", "biotech", "MI", 30, 5_000_000, false),
        ("Gamma Bio", "biotech", "BG", 50, 2_000_000, false),
        (
            "Delta Pharma",
            "pharmaceutical",
            "MI",
            200,
            90_000_000,
            true,
        ),
        (
            "Epsilon Pharma",
            "pharmaceutical",
            "BS",
            400,
            70_000_000,
            false,
        ),
    ];
    for (name, sector, province, employees, revenue, in_mind) in companies {
        create(
            app,
            "/api/v1/companies",
            json!({
                "name": name, "sector": sector, "employees": employees,
                "revenue_eur": revenue, "exports_eur": revenue / 10, "in_mind": in_mind,
                "tags": ["stats"],
                "address": {"province": province},
            }),
        )
        .await;
    }
    // A company that states no figures: it counts, and adds nothing to the sums.
    create(
        app,
        "/api/v1/companies",
        json!({"name": "Zeta Digital", "sector": "digital_health", "address": {"province": "MI"}}),
    )
    .await;
    let archived = create(
        app,
        "/api/v1/companies",
        json!({"name": "Archived Bio", "sector": "biotech", "employees": 1000, "address": {"province": "MI"}}),
    )
    .await;
    app.delete(&format!("/api/v1/companies/{}", id_of(&archived)))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);
    create(
        app,
        "/api/v1/irccs",
        json!({"name": "Istituto Uno", "ownership": "private",
               "specialisations": ["oncology", "cardiology"], "address": {"province": "MI"}}),
    )
    .await;
    create(
        app,
        "/api/v1/irccs",
        json!({"name": "Istituto Due", "ownership": "public",
               "specialisations": ["oncology"], "address": {"province": "PV"}, "in_mind": true}),
    )
    .await;
    create(
        app,
        "/api/v1/universities",
        json!({"name": "Università Tre", "ownership": "public", "address": {"province": "MI"}}),
    )
    .await;
    create(
        app,
        "/api/v1/partners",
        json!({"name": "Cluster Quattro", "partner_type": "cluster", "scope": "regional",
               "address": {"province": "MI"}}),
    )
    .await;
}

async fn stats(app: &TestApp, query: &str) -> Value {
    let res = app
        .get(&format!("/api/v1/stats/organisations?{query}"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    res.json()
}

/// What a list says: its `total`, and every row (one page: the registry is small).
async fn listed(app: &TestApp, path: &str, query: &str) -> (i64, Vec<Value>) {
    let res = app
        .get(&format!("{path}?limit=200&include_total=true&{query}"))
        .role(Role::Viewer)
        .send()
        .await;
    res.assert_status(200);
    let page = res.json();
    assert!(page["next_cursor"].is_null(), "one page: {page}");
    (
        page["total"].as_i64().expect("total"),
        page["data"].as_array().expect("data").clone(),
    )
}

fn groups(body: &Value) -> BTreeMap<String, (i64, Value)> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|g| {
            (
                g["key"].to_string(),
                (g["count"].as_i64().expect("count"), g["sums"].clone()),
            )
        })
        .collect()
}

#[actix_web::test]
async fn stats_count_what_the_lists_list_under_the_same_filters() {
    let app = TestApp::spawn().await;
    registry(&app).await;

    // For each filter, the stats' total and the sum of their groups' counts are the list's
    // total for the same filter.
    let cases = [
        ("/api/v1/organisations", ""),
        ("/api/v1/organisations", "province=MI"),
        ("/api/v1/organisations", "in_mind=true"),
        ("/api/v1/organisations", "kind=company"),
        ("/api/v1/organisations", "tags=stats"),
        ("/api/v1/organisations", "q=Bio"),
        ("/api/v1/companies", "sector=biotech"),
        ("/api/v1/companies", "sector=pharmaceutical&province=MI"),
        ("/api/v1/companies", "min_employees=30&max_employees=200"),
        ("/api/v1/companies", "assolombarda_member=false"),
        ("/api/v1/irccs", "specialisation=oncology"),
        ("/api/v1/partners", "partner_type=cluster"),
    ];
    for (list, filter) in cases {
        let (total, _) = listed(&app, list, filter).await;
        let body = stats(&app, &format!("group_by=kind&{filter}")).await;
        assert_eq!(body["total"], total, "{list}?{filter}: {body}");
        let counted: i64 = groups(&body).values().map(|(c, _)| c).sum();
        assert_eq!(counted, total, "{list}?{filter}: {body}");
        assert_eq!(body["group_by"], json!(["kind"]));
    }

    // `ownership` belongs to IRCCS and universities: the stats count both lists' matches.
    let (irccs, _) = listed(&app, "/api/v1/irccs", "ownership=public").await;
    let (universities, _) = listed(&app, "/api/v1/universities", "ownership=public").await;
    let body = stats(&app, "group_by=kind&ownership=public").await;
    assert_eq!(body["total"], irccs + universities);
    assert_eq!(
        groups(&body).keys().cloned().collect::<Vec<_>>(),
        [r#"{"kind":"irccs"}"#, r#"{"kind":"university"}"#]
    );
    // Filters of two kinds match nothing: no organisation has both fields.
    let body = stats(&app, "group_by=kind&sector=biotech&specialisation=oncology").await;
    assert_eq!(body["total"], 0);
    assert_eq!(body["data"], json!([]));

    // Archived records are out, unless staff ask for them (403 for a viewer, as lists).
    let body = stats(&app, "group_by=kind&kind=company").await;
    let (live, _) = listed(&app, "/api/v1/companies", "").await;
    assert_eq!(body["total"], live);
    let res = app
        .get("/api/v1/stats/organisations?group_by=kind&kind=company&include_archived=true")
        .role(Role::Editor)
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["total"], live + 1);
    app.get("/api/v1/stats/organisations?group_by=kind&include_archived=true")
        .role(Role::Viewer)
        .send()
        .await
        .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn two_keys_group_by_both_and_sums_add_up_the_listed_companies() {
    let app = TestApp::spawn().await;
    registry(&app).await;

    let body = stats(&app, "group_by=kind,province").await;
    assert_eq!(body["group_by"], json!(["kind", "province"]));
    let got = groups(&body);
    // Each (kind, province) group holds what the list of that kind in that province holds.
    for (kind, path) in [
        ("company", "/api/v1/companies"),
        ("irccs", "/api/v1/irccs"),
        ("university", "/api/v1/universities"),
        ("partner", "/api/v1/partners"),
    ] {
        for province in ["MI", "BG", "BS", "PV"] {
            let (total, rows) = listed(&app, path, &format!("province={province}")).await;
            let key = json!({"kind": kind, "province": province}).to_string();
            match got.get(&key) {
                None => assert_eq!(total, 0, "{key} missing from {body}"),
                Some((count, sums)) => {
                    assert_eq!(*count, total, "{key}");
                    let sum = |field: &str| -> Value {
                        let values: Vec<i64> =
                            rows.iter().filter_map(|r| r[field].as_i64()).collect();
                        if values.is_empty() {
                            Value::Null
                        } else {
                            json!(values.iter().sum::<i64>())
                        }
                    };
                    for field in [
                        "employees",
                        "revenue_eur",
                        "rd_investment_eur",
                        "exports_eur",
                    ] {
                        assert_eq!(sums[field], sum(field), "{key} {field}: {body}");
                    }
                }
            }
        }
    }
    let (count, sums) = &got[&json!({"kind": "company", "province": "MI"}).to_string()];
    assert_eq!(*count, 4);
    assert_eq!(sums["employees"], 240);
    assert_eq!(sums["revenue_eur"], 96_000_000);
    assert_eq!(sums["rd_investment_eur"], Value::Null);
    // Groups without companies have no sums.
    let (_, sums) = &got[&json!({"kind": "irccs", "province": "PV"}).to_string()];
    assert_eq!(sums["employees"], Value::Null);

    // A record counts in each of its specialisations; the total counts it once.
    let body = stats(&app, "group_by=specialisation&kind=irccs").await;
    let got = groups(&body);
    assert_eq!(got[r#"{"specialisation":"oncology"}"#].0, 2);
    assert_eq!(got[r#"{"specialisation":"cardiology"}"#].0, 1);
    assert_eq!(body["total"], 2);

    // in_mind keys are booleans; sector is null outside companies; order is by key, nulls last.
    let body = stats(&app, "group_by=sector,in_mind&kind=company").await;
    let keys: Vec<Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].clone())
        .collect();
    assert_eq!(
        keys,
        [
            json!({"sector": "biotech", "in_mind": false}),
            json!({"sector": "biotech", "in_mind": true}),
            json!({"sector": "digital_health", "in_mind": false}),
            json!({"sector": "pharmaceutical", "in_mind": false}),
            json!({"sector": "pharmaceutical", "in_mind": true}),
        ]
    );
    let body = stats(&app, "group_by=partner_type").await;
    let got = groups(&body);
    let (partners, _) = listed(&app, "/api/v1/partners", "").await;
    let typed: i64 = got
        .iter()
        .filter(|(k, _)| !k.contains("null"))
        .map(|(_, (c, _))| c)
        .sum();
    assert_eq!(typed, partners);
    assert!(got.contains_key(r#"{"partner_type":null}"#), "{body}");
}

#[actix_web::test]
async fn stats_answer_csv_with_a_column_per_key_then_count_and_sums() {
    let app = TestApp::spawn().await;
    registry(&app).await;
    let res = app
        .get("/api/v1/stats/organisations?group_by=sector,province&kind=company")
        .role(Role::Viewer)
        .header("Accept", "text/csv")
        .send()
        .await;
    res.assert_status(200);
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert!(res.header("etag").is_some());
    let text = String::from_utf8(res.body.clone()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "sector,province,count,employees,revenue_eur,rd_investment_eur,exports_eur"
    );
    assert!(lines.contains(&"biotech,MI,2,40,6000000,,600000"), "{text}");
    assert!(lines.contains(&"digital_health,MI,1,,,,"), "{text}");
    // The fixtures' partner organisation is a company with no province: last, under an empty
    // cell.
    assert_eq!(lines.last(), Some(&"pharmaceutical,,1,,,,"), "{text}");
    assert_eq!(lines.len(), 1 + 6, "{text}");

    // The JSON and CSV answers of one URL carry different tags.
    let json_tag = app
        .get("/api/v1/stats/organisations?group_by=sector,province&kind=company")
        .role(Role::Viewer)
        .send()
        .await
        .header("etag");
    assert_ne!(json_tag, res.header("etag"));

    let res = app
        .get("/api/v1/stats/goals")
        .role(Role::Viewer)
        .header("Accept", "text/csv")
        .send()
        .await;
    res.assert_status(200);
    let text = String::from_utf8(res.body.clone()).unwrap();
    assert!(text.starts_with(
        "goal_id,code,title,activities_planned,activities_active,activities_completed,\
         activities_cancelled,activities_total,partners,participants_company,\
         participants_irccs,participants_university,participants_partner,participants_total\r\n"
    ));
}

#[actix_web::test]
async fn stats_poll_304_until_a_write_then_200_with_a_new_etag() {
    let app = TestApp::spawn().await;
    registry(&app).await;
    for path in [
        "/api/v1/stats/organisations?group_by=kind",
        "/api/v1/stats/goals",
    ] {
        let res = app.get(path).role(Role::Viewer).send().await;
        res.assert_status(200);
        assert_eq!(
            res.header("cache-control").as_deref(),
            Some("private, max-age=0, must-revalidate")
        );
        let tag = res.header("etag").expect("etag");
        let poll = || {
            app.get(path)
                .role(Role::Viewer)
                .header("If-None-Match", &tag)
                .send()
        };
        let res = poll().await;
        res.assert_status(304);
        assert_eq!(res.header("etag").as_deref(), Some(tag.as_str()));
        poll().await.assert_status(304);

        app.create_company(
            json!({"name": format!("New {}", tag.len() + path.len()), "sector": "biotech"}),
        )
        .await;
        let res = poll().await;
        res.assert_status(200);
        assert_ne!(res.header("etag").as_deref(), Some(tag.as_str()));
    }
    let body = stats(&app, "group_by=kind&kind=company").await;
    let (live, _) = listed(&app, "/api/v1/companies", "").await;
    assert_eq!(body["total"], live);
}

#[actix_web::test]
async fn bad_group_by_is_422_at_group_by() {
    let app = TestApp::spawn().await;
    for query in [
        "group_by=colour",
        "group_by=kind,kind",
        "group_by=kind,province,sector",
        "group_by=",
        "group_by=kind&min_employees=10&max_employees=5",
    ] {
        let res = app
            .get(&format!("/api/v1/stats/organisations?{query}"))
            .role(Role::Viewer)
            .send()
            .await;
        let problem = res.assert_problem(422, "validation");
        let field = if query.contains("min_employees") {
            "/min_employees"
        } else {
            "/group_by"
        };
        assert_field_error(
            &problem,
            field,
            problem["errors"][0]["code"].as_str().unwrap(),
        );
    }
    // Without group_by, or with a parameter no list takes: 400.
    for query in ["", "group_by=kind&colour=red"] {
        app.get(&format!("/api/v1/stats/organisations?{query}"))
            .role(Role::Viewer)
            .send()
            .await
            .assert_problem(400, "malformed");
    }
}

#[actix_web::test]
async fn goal_stats_count_activities_current_partners_and_participants() {
    let app = TestApp::spawn().await;
    let goal = id_of(&create(&app, "/api/v1/goals", json!({"code": 7, "title": "Stats"})).await);
    let empty = id_of(&create(&app, "/api/v1/goals", json!({"code": 8, "title": "Empty"})).await);
    let activity = |title: &'static str, status: &'static str| {
        let app = &app;
        async move {
            id_of(
                &create(
                    app,
                    "/api/v1/activities",
                    json!({"title": title, "status": status}),
                )
                .await,
            )
        }
    };
    let a1 = activity("One", "active").await;
    let a2 = activity("Two", "active").await;
    let a3 = activity("Three", "planned").await;
    let archived = activity("Gone", "completed").await;
    for (act, role) in [
        (&a1, "primary"),
        (&a2, "primary"),
        (&a3, "supporting"),
        (&archived, "primary"),
    ] {
        create(
            &app,
            "/api/v1/goal-activity-links",
            json!({"goal_id": goal, "activity_id": act, "role": role}),
        )
        .await;
    }
    app.delete(&format!("/api/v1/activities/{archived}"))
        .role(Role::Editor)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .assert_status(204);

    let company = id_of(
        &app.create_company(json!({"name": "Partecipa", "sector": "biotech"}))
            .await,
    );
    let company2 = id_of(
        &app.create_company(json!({"name": "Ritirata", "sector": "biotech"}))
            .await,
    );
    let irccs = id_of(
        &create(
            &app,
            "/api/v1/irccs",
            json!({"name": "Istituto", "specialisations": ["oncology"]}),
        )
        .await,
    );
    let cluster = id_of(
        &create(
            &app,
            "/api/v1/partners",
            json!({"name": "Cluster", "partner_type": "cluster"}),
        )
        .await,
    );
    // Partners: one current (open), one current (dated around today) under two roles, one
    // ended: two distinct current partners.
    let partners = format!("/api/v1/goals/{goal}/partners");
    create(
        &app,
        &partners,
        json!({"organisation_id": cluster, "role": "strategic_partner", "since": "2020-01-01"}),
    )
    .await;
    create(&app, &partners, json!({"organisation_id": company, "role": "strategic_partner", "since": "2020-01-01", "until": "2999-12-31"})).await;
    create(
        &app,
        &partners,
        json!({"organisation_id": company, "role": "other"}),
    )
    .await;
    create(
        &app,
        &partners,
        json!({"organisation_id": irccs, "role": "other", "until": "2021-01-01"}),
    )
    .await;

    // Participants: the company in two activities (counted once), the IRCCS confirmed,
    // the second company withdrawn (not counted).
    for (act, org, role) in [
        (&a1, &company, "lead"),
        (&a2, &company, "participant"),
        (&a3, &irccs, "host"),
    ] {
        create(
            &app,
            &format!("/api/v1/activities/{act}/participants"),
            json!({"organisation_id": org, "role": role, "status": "confirmed"}),
        )
        .await;
    }
    let withdrawn = create(
        &app,
        &format!("/api/v1/activities/{a1}/participants"),
        json!({"organisation_id": company2, "role": "sponsor"}),
    )
    .await;
    app.patch(&format!(
        "/api/v1/activities/{a1}/participants/{}",
        id_of(&withdrawn)
    ))
    .role(Role::Editor)
    .header("If-Match", "\"1\"")
    .merge_patch(&json!({"status": "withdrawn"}))
    .send()
    .await
    .assert_status(200);

    let res = app
        .get("/api/v1/stats/goals")
        .role(Role::Partner)
        .send()
        .await;
    res.assert_status(200);
    let body = res.json();
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(body["as_of"], today);
    let rows = body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{body}");
    assert_eq!(rows[0]["goal_id"], goal.as_str());
    assert_eq!(rows[0]["code"], 7);
    assert_eq!(
        rows[0]["activities"],
        json!({"planned": 1, "active": 2, "completed": 0, "cancelled": 0, "total": 3})
    );
    assert_eq!(rows[0]["partners"], 2);
    assert_eq!(
        rows[0]["participants"],
        json!({"company": 1, "irccs": 1, "university": 0, "partner": 0, "total": 2})
    );
    assert_eq!(rows[1]["goal_id"], empty.as_str());
    assert_eq!(
        rows[1]["activities"],
        json!({"planned": 0, "active": 0, "completed": 0, "cancelled": 0, "total": 0})
    );
    assert_eq!(rows[1]["partners"], 0);
    assert_eq!(rows[1]["participants"]["total"], 0);

    // The partners' list as of today agrees.
    let res = app
        .get(&format!("{partners}?as_of={today}&limit=200"))
        .role(Role::Viewer)
        .send()
        .await;
    let distinct: std::collections::BTreeSet<String> = res.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["organisation_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(distinct.len(), 2);
}

/// Sends `req` as an editor, expecting `status`; the answer's body (null for 204).
async fn write(req: Req<'_>, status: u16) -> Value {
    let res = req.role(Role::Editor).send().await;
    res.assert_status(status);
    if status == 204 {
        Value::Null
    } else {
        res.json()
    }
}

/// The record of the list at `path` named `name`.
async fn named(app: &TestApp, path: &str, name: &str) -> Value {
    let (_, rows) = listed(app, path, "").await;
    rows.into_iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {path}"))
}

fn version_tag(record: &Value) -> String {
    format!("\"{}\"", record["version"])
}

/// Every filter the rollup answers, each as the handler builds it.
fn rollup_filters() -> Vec<(&'static str, OrganisationStatsFilter)> {
    let only_companies = |sector: Option<Sector>| KindFilters {
        company: Some(CompanyFilter {
            sector,
            ..CompanyFilter::default()
        }),
        irccs: None,
        university: None,
        partner: None,
    };
    let mut cases = vec![
        ("none", OrganisationStatsFilter::default()),
        ("archived too", OrganisationStatsFilter::default()),
        ("kind=company", OrganisationStatsFilter::default()),
        ("kind=irccs", OrganisationStatsFilter::default()),
        ("province=MI", OrganisationStatsFilter::default()),
        ("in_mind=true", OrganisationStatsFilter::default()),
        (
            "sector=biotech",
            OrganisationStatsFilter {
                kinds: only_companies(Some(Sector::Biotech)),
                ..OrganisationStatsFilter::default()
            },
        ),
        (
            "partner_type=cluster",
            OrganisationStatsFilter {
                kinds: KindFilters {
                    company: None,
                    irccs: None,
                    university: None,
                    partner: Some(PartnerFilter {
                        partner_type: Some(PartnerType::Cluster),
                        ..PartnerFilter::default()
                    }),
                },
                ..OrganisationStatsFilter::default()
            },
        ),
    ];
    cases[1].1.shared.include_archived = true;
    cases[2].1.any.kind = Some(OrganisationKind::Company);
    cases[3].1.any.kind = Some(OrganisationKind::Irccs);
    cases[4].1.shared.province = Some(Province::parse("MI").expect("province"));
    cases[5].1.shared.in_mind = Some(true);
    let mut archived_mi_biotech = cases[6].1.clone();
    archived_mi_biotech.shared.include_archived = true;
    archived_mi_biotech.shared.province = Some(Province::parse("MI").expect("province"));
    cases.push(("archived, MI, biotech", archived_mi_biotech));
    cases
}

/// Every `group_by`: each key alone, and every ordered pair.
fn every_group_by() -> Vec<Vec<StatsGroupKey>> {
    let keys = StatsGroupKey::ALL;
    let mut all: Vec<Vec<StatsGroupKey>> = keys.iter().map(|k| vec![*k]).collect();
    for a in keys {
        for b in keys.iter().filter(|b| *b != a) {
            all.push(vec![*a, *b]);
        }
    }
    all
}

/// The rollup's answer is the live GROUP BY's for every `group_by` and every filter it takes.
fn assert_rollup_matches_live(app: &TestApp, when: &str) {
    let mut conn = app.conn();
    for (name, filter) in rollup_filters() {
        for keys in every_group_by() {
            let live = model::live_organisation_groups(&mut conn, &keys, &filter).expect("live");
            let rollup = model::rollup_organisation_groups(&mut conn, &keys, &filter)
                .expect("rollup")
                .unwrap_or_else(|| panic!("{name}: the rollup takes this filter"));
            assert_eq!(rollup, live, "{when}: group_by={keys:?}, {name}");
        }
    }
}

#[actix_web::test]
async fn the_rollup_answers_as_the_live_group_by_after_every_kind_of_write() {
    let app = TestApp::spawn().await;
    registry(&app).await;
    assert_rollup_matches_live(&app, "after creates and an archive");

    // Updates that move records between groups and change their sums.
    let alfa = named(&app, "/api/v1/companies", "Alfa Bio").await;
    let alfa = write(
        app.patch(&format!("/api/v1/companies/{}", id_of(&alfa)))
            .header("If-Match", &version_tag(&alfa))
            .merge_patch(
                &json!({"sector": "cdmo", "employees": 12, "rd_investment_eur": 5,
                                 "address": {"province": "LO"}, "in_mind": false}),
            ),
        200,
    )
    .await;
    let uno = named(&app, "/api/v1/irccs", "Istituto Uno").await;
    let uno = write(
        app.patch(&format!("/api/v1/irccs/{}", id_of(&uno)))
            .header("If-Match", &version_tag(&uno))
            .merge_patch(&json!({"specialisations": ["pediatrics", "oncology", "neurology"]})),
        200,
    )
    .await;
    let cluster = named(&app, "/api/v1/partners", "Cluster Quattro").await;
    write(
        app.patch(&format!("/api/v1/partners/{}", id_of(&cluster)))
            .header("If-Match", &version_tag(&cluster))
            .merge_patch(&json!({"partner_type": "investor", "address": {"province": null}})),
        200,
    )
    .await;
    assert_rollup_matches_live(&app, "after updates");

    // Archive and restore.
    let path = format!("/api/v1/companies/{}", id_of(&alfa));
    write(
        app.delete(&path).header("If-Match", &version_tag(&alfa)),
        204,
    )
    .await;
    assert_rollup_matches_live(&app, "after archiving a company");
    let archived_version = alfa["version"].as_i64().expect("version") + 1;
    write(
        app.post(&format!("{path}/restore"))
            .header("If-Match", &format!("\"{archived_version}\"")),
        200,
    )
    .await;
    let uno_path = format!("/api/v1/irccs/{}", id_of(&uno));
    write(
        app.delete(&uno_path).header("If-Match", &version_tag(&uno)),
        204,
    )
    .await;
    assert_rollup_matches_live(&app, "after a restore and an archived IRCCS");

    // An import that creates, then one that updates grouped fields and sums.
    let rows: Vec<Value> = (0..60)
        .map(|i| {
            let sector = ["biotech", "cdmo", "medical_devices"][i % 3];
            let province = ["MI", "BG", "MB", "CO"][i % 4];
            let employees = (i % 5 != 0).then_some(i * 3);
            json!({"name": format!("Importata {i:03} S.r.l."), "sector": sector,
                   "employees": employees, "exports_eur": i * 1000, "in_mind": i % 7 == 0,
                   "address": {"province": province}})
        })
        .collect();
    let report = write(
        app.post("/api/v1/imports?kind=companies")
            .json(&Value::Array(rows)),
        200,
    )
    .await;
    assert_eq!(report["created"], 60, "{report}");
    let updates: Vec<Value> = (0..60)
        .step_by(2)
        .map(|i| {
            json!({"name": format!("Importata {i:03} S.r.l."), "sector": "pharmaceutical",
                   "employees": null, "revenue_eur": i * 10, "address": {"province": "PV"}})
        })
        .collect();
    let report = write(
        app.post("/api/v1/imports?kind=companies&on_conflict=update")
            .json(&Value::Array(updates)),
        200,
    )
    .await;
    assert_eq!(report["updated"], 30, "{report}");
    assert_rollup_matches_live(&app, "after two imports");

    // Folding the deltas into the base changes no answer, and leaves no delta behind.
    let mut conn = app.conn();
    model::compact_rollup(&mut conn).expect("compact");
    assert_eq!(app.count("organisation_stats_delta"), 0);
    assert_rollup_matches_live(&app, "after compaction");

    // Concurrent writers moving records between the same groups in opposite directions
    // neither wait on each other's group rows nor deadlock.
    let (_, rows) = listed(&app, "/api/v1/companies", "q=Importata").await;
    let moves = rows.iter().take(24).enumerate().map(|(i, row)| {
        let app = &app;
        let (sector, province) = if i % 2 == 0 {
            ("biotech", "MI")
        } else {
            ("cdmo", "BG")
        };
        async move {
            app.patch(&format!("/api/v1/companies/{}", id_of(row)))
                .role(Role::Editor)
                .header("If-Match", &version_tag(row))
                .merge_patch(
                    &json!({"sector": sector, "employees": i, "address": {"province": province}}),
                )
                .send()
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(moves).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_rollup_matches_live(&app, "after concurrent moves");
}

#[actix_web::test]
async fn stats_are_answered_from_the_rollup_when_the_filters_allow_it() {
    let app = TestApp::spawn().await;
    registry(&app).await;

    // The rollup holds the registry: its organisations are the live ones, by kind.
    let mut conn = app.conn();
    model::compact_rollup(&mut conn).expect("compact");
    let (companies, _) = listed(&app, "/api/v1/companies", "").await;
    let in_rollup: i64 = diesel::sql_query(
        "SELECT sum(organisations)::bigint AS total FROM organisation_stats \
         WHERE kind = 'company' AND NOT archived",
    )
    .get_result::<Total>(&mut conn)
    .expect("sum")
    .total;
    assert_eq!(in_rollup, companies);

    // A delta the registry does not back shows in the answers that read the rollup, and in
    // no answer of the live GROUP BY.
    diesel::sql_query(
        "INSERT INTO organisation_stats_delta VALUES \
         (false, 'company', 'ZZ', false, 'other', NULL, NULL, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)",
    )
    .execute(&mut conn)
    .expect("planted delta");
    for query in [
        "group_by=province",
        "group_by=province,kind&kind=company",
        "group_by=province&sector=other",
        "group_by=province&in_mind=false",
    ] {
        let body = stats(&app, query).await;
        assert!(
            body.to_string().contains(r#""province":"ZZ""#),
            "{query}: {body}"
        );
    }
    for query in [
        "group_by=province&tags=stats",
        "group_by=province&q=Bio",
        "group_by=province&min_employees=0",
        "group_by=province&specialisation=oncology",
        "group_by=province&ownership=public",
    ] {
        let body = stats(&app, query).await;
        assert!(!body.to_string().contains("ZZ"), "{query}: {body}");
    }
}

#[derive(diesel::QueryableByName)]
struct Total {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}
