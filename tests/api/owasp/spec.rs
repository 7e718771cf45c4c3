//! The committed OpenAPI document as the authorisation suites walk it: each operation with the
//! roles its `x-roles` admits, a concrete URL for its path template, and the schemas of its
//! body and answer; and a registry of records to aim those URLs at. `object_level`,
//! `property_level` and `function_level` share it, so a route added to the spec is walked by
//! all three without editing them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use actix_web::http::Method;
use lshub::domain::Role;
use serde_json::{json, Map, Value};

pub(crate) use crate::bodies::{least, resolve};
use crate::helpers::*;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

/// The committed document, read when the tests run (so a route added to it is walked), once.
pub(crate) fn committed() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let text = std::fs::read_to_string(COMMITTED).expect("openapi/openapi.json");
        serde_json::from_str(&text).expect("openapi/openapi.json is JSON")
    })
}

/// One operation of the document.
pub(crate) struct Operation {
    pub method: Method,
    pub path: String,
    pub op: Value,
}

/// Every operation of `doc`.
pub(crate) fn operations(doc: &Value) -> Vec<Operation> {
    crate::openapi::operations(doc)
        .into_iter()
        .map(|(method, path, op)| Operation {
            method: Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
            path,
            op,
        })
        .collect()
}

impl Operation {
    /// `PATCH /api/v1/companies/{id}`, for messages and skip lists.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Its `operationId`.
    pub fn id(&self) -> &str {
        self.op["operationId"].as_str().expect("operationId")
    }

    /// The role names its `x-roles` lists (`anonymous` for the unauthenticated).
    pub fn roles(&self) -> Vec<String> {
        self.op["x-roles"]
            .as_array()
            .expect("x-roles")
            .iter()
            .map(|r| r.as_str().expect("role").to_owned())
            .collect()
    }

    pub fn anonymous(&self) -> bool {
        self.roles().iter().any(|r| r == "anonymous")
    }

    pub fn admits(&self, role: Role) -> bool {
        self.roles().iter().any(|r| r == role.as_str())
    }

    /// The weakest role it admits (`Role::ALL` runs from viewer to admin).
    pub fn least_privileged(&self) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| self.admits(*r))
    }

    /// Whether its path names a record (`{id}`, `{link_id}`, ...).
    pub fn takes_id(&self) -> bool {
        self.path.contains('{')
    }

    pub fn writes(&self) -> bool {
        self.method != Method::GET
    }

    pub fn declares(&self, parameter: &str) -> bool {
        self.op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == parameter))
    }

    /// Its required query parameters, each at the least value its schema allows
    /// (`?group_by=kind`), or nothing.
    pub fn required_query(&self, doc: &Value) -> String {
        let pairs: Vec<String> = self.op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query" && p["required"] == true)
            .map(|p| {
                let value = least(doc, &p["schema"], &Map::new());
                let value = value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or(value.to_string());
                format!("{}={value}", p["name"].as_str().expect("a name"))
            })
            .collect();
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }

    /// Its JSON request body's schema, if it takes one.
    pub fn body_schema<'a>(&'a self, doc: &'a Value) -> Option<&'a Value> {
        let schema = &self.op["requestBody"]["content"]["application/json"]["schema"];
        (!schema.is_null()).then(|| resolve(doc, schema))
    }

    /// The schema of its successful JSON answer (200 or 201), if it has one.
    pub fn answer_schema<'a>(&'a self, doc: &'a Value) -> Option<&'a Value> {
        ["200", "201"].iter().find_map(|status| {
            let schema = &self.op["responses"][status]["content"]["application/json"]["schema"];
            (!schema.is_null()).then(|| resolve(doc, schema))
        })
    }
}

/// The members an object schema declares, its `allOf` parts merged.
pub(crate) fn properties(doc: &Value, schema: &Value) -> Map<String, Value> {
    let schema = resolve(doc, schema);
    let mut out = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(properties(doc, part));
    }
    out
}

/// Ids for the parameters of path templates, each keyed by the literal segments before it
/// (`companies` for `/api/v1/companies/{id}`, `activities/participants` for the `{link_id}` of
/// `/api/v1/activities/{id}/participants/{link_id}`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ids(BTreeMap<String, String>);

impl Ids {
    pub fn insert(&mut self, key: &str, id: &str) {
        self.0.insert(key.to_owned(), id.to_owned());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The key of each parameter of `path`, in order.
    pub fn keys(path: &str) -> Vec<String> {
        let mut literal = Vec::new();
        let mut keys = Vec::new();
        for segment in path.trim_start_matches("/api/v1/").split('/') {
            if segment.starts_with('{') {
                keys.push(literal.join("/"));
            } else {
                literal.push(segment);
            }
        }
        keys
    }

    /// `path` with every parameter filled in, or None when one has no id here.
    pub fn url(&self, path: &str) -> Option<String> {
        let mut keys = Self::keys(path).into_iter();
        let mut out = Vec::new();
        for segment in path.split('/') {
            if segment.starts_with('{') {
                out.push(self.get(&keys.next()?)?.to_owned());
            } else {
                out.push(segment.to_owned());
            }
        }
        Some(out.join("/"))
    }
}

/// One organisation of each kind, the goal, activity and links around them, and an API
/// client, a user and a webhook subscription, made by an admin: what an attacker aims at, or
/// what a partner owns.
pub(crate) struct World {
    /// Its records by path key (see [`Ids`]).
    pub ids: Ids,
    /// The organisation that owns each of them, where one does.
    pub owners: Ids,
}

/// Goal codes are unique: each world takes the next.
static GOAL_CODE: AtomicI64 = AtomicI64::new(100);

impl World {
    /// Everything a path of the spec can name, labelled `label` (names are unique per kind).
    pub async fn build(app: &TestApp, label: &str) -> Self {
        let mut ids = Ids::default();
        let mut owners = Ids::default();
        let code = GOAL_CODE.fetch_add(1, Ordering::Relaxed);
        let email = format!("{}@example.org", label.to_lowercase().replace(' ', "-"));
        let records = [
            (
                "companies",
                json!({"name": format!("{label} S.p.A."), "sector": "biotech"}),
            ),
            (
                "irccs",
                json!({"name": format!("IRCCS {label}"), "specialisations": ["oncology"]}),
            ),
            (
                "universities",
                json!({"name": format!("Università {label}")}),
            ),
            (
                "partners",
                json!({"name": format!("{label} Cluster"), "partner_type": "cluster"}),
            ),
            (
                "goals",
                json!({"code": code, "title": format!("{label} goal")}),
            ),
            ("activities", json!({"title": format!("{label} fair")})),
            (
                "clients",
                json!({"name": format!("{label} ERP"), "role": "viewer"}),
            ),
            ("users", json!({"email": email, "role": "viewer"})),
            // Disabled: nothing is sent to its closed port while the tests write.
            (
                "webhooks",
                json!({"url": "http://127.0.0.1:9/lshub", "events": ["*"], "disabled": true}),
            ),
        ];
        for (collection, body) in records {
            let id = create(app, &format!("/api/v1/{collection}"), &body).await;
            ids.insert(collection, &id);
        }
        for kind in ["companies", "irccs", "universities", "partners"] {
            owners.insert(kind, ids.get(kind).expect("an organisation"));
        }
        let company = ids.get("companies").expect("company").to_owned();
        let partner = ids.get("partners").expect("partner").to_owned();
        let (goal, activity) = (ids.0["goals"].clone(), ids.0["activities"].clone());
        ids.insert("organisations", &company);
        owners.insert("organisations", &company);
        let link = json!({"goal_id": goal, "activity_id": activity, "role": "supporting"});
        let id = create(app, "/api/v1/goal-activity-links", &link).await;
        ids.insert("goal-activity-links", &id);
        let body = json!({"organisation_id": partner, "role": "strategic_partner"});
        let id = create(app, &format!("/api/v1/goals/{goal}/partners"), &body).await;
        ids.insert("goals/partners", &id);
        owners.insert("goals/partners", &partner);
        let body = json!({"organisation_id": company, "role": "sponsor"});
        let id = create(
            app,
            &format!("/api/v1/activities/{activity}/participants"),
            &body,
        )
        .await;
        ids.insert("activities/participants", &id);
        owners.insert("activities/participants", &company);
        Self { ids, owners }
    }

    /// The organisation that owns what `path` names (its last parameter); for what no one
    /// owns (an activity, whose participants a create adds), the world's company, which its
    /// links name.
    pub fn owner_of(&self, path: &str) -> &str {
        Ids::keys(path)
            .last()
            .and_then(|key| self.owners.get(key))
            .or_else(|| self.owners.get("companies"))
            .expect("the world's company")
    }
}

/// An app whose webhook subscriptions may name a local target (the world's posts to a
/// closed port on this host).
pub(crate) async fn spawn() -> TestApp {
    TestApp::spawn_with(|s| s.http.webhooks.allow_private_targets = true).await
}

/// Creates a record as an admin (who may make all of them); its id.
async fn create(app: &TestApp, url: &str, body: &Value) -> String {
    let res = app.post(url).role(Role::Admin).json(body).send().await;
    res.assert_status(201);
    res.json()["id"].as_str().expect("an id").to_owned()
}

/// A real machine client of the partner role acting for `organisation`, made by an admin: its
/// answer, with the secret it shows once.
pub(crate) async fn new_partner_client(app: &TestApp, organisation: &str) -> Value {
    let body = json!({"name": format!("ERP of {organisation}"), "role": "partner",
                      "organisation_id": organisation});
    let res = app
        .post("/api/v1/clients")
        .role(Role::Admin)
        .json(&body)
        .send()
        .await;
    res.assert_status(201);
    res.json()
}

/// An access token of a [`new_partner_client`], logged in with the `client_credentials`
/// grant.
pub(crate) async fn partner_client(app: &TestApp, organisation: &str) -> String {
    let client = new_partner_client(app, organisation).await;
    let res = app
        .post("/api/v1/auth/token")
        .json(&json!({"grant_type": "client_credentials",
                      "client_id": client["id"], "client_secret": client["client_secret"]}))
        .send()
        .await;
    res.assert_status(200);
    res.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// What `url` holds as an admin reads it (archived records included; an error's status only,
/// as its body names the request): compared before and after a refused write, it shows that
/// nothing changed.
pub(crate) async fn snapshot(app: &TestApp, url: &str) -> (u16, Value) {
    let separator = if url.contains('?') { '&' } else { '?' };
    let res = app
        .get(&format!("{url}{separator}include_archived=true"))
        .role(Role::Admin)
        .send()
        .await;
    let body = if res.status == 200 {
        res.json()
    } else {
        Value::Null
    };
    (res.status, body)
}

/// The current `ETag` of the record at `url` (archived or not), for a write's `If-Match`: a
/// fresh one, so that only authorisation can refuse the write. None where nothing is.
pub(crate) async fn etag(app: &TestApp, url: &str) -> Option<String> {
    let res = app
        .get(&format!("{url}?include_archived=true"))
        .role(Role::Admin)
        .send()
        .await;
    (res.status == 200).then(|| res.header("etag")).flatten()
}

/// A write DESIGN.md's role table opens to partners, on what is their own: a body a partner
/// may send (`body(organisation)`, for the organisation it acts for), and the members it
/// manages there (with `Some(value)`: that value only). Every other member of the body's
/// schema is the hub's.
pub(crate) struct PartnerWrite {
    pub operation: &'static str,
    pub body: fn(&str) -> Value,
    pub manages: &'static [(&'static str, Option<&'static str>)],
}

/// Every organisation's self-managed fields (DESIGN.md, Roles).
const SELF_MANAGED: &[(&str, Option<&str>)] = &[
    ("description", None),
    ("website", None),
    ("email", None),
    ("phone", None),
    ("address", None),
    ("tags", None),
];

/// A company's, which add its figures and codes.
const COMPANY_SELF_MANAGED: &[(&str, Option<&str>)] = &[
    ("description", None),
    ("website", None),
    ("email", None),
    ("phone", None),
    ("address", None),
    ("tags", None),
    ("employees", None),
    ("revenue_eur", None),
    ("rd_investment_eur", None),
    ("exports_eur", None),
    ("ateco_code", None),
    ("device_segment", None),
];

fn describe(_: &str) -> Value {
    json!({"description": "In our own words."})
}

/// The writes DESIGN.md gives partners: their organisation's profile, proposing their own
/// participation (`status` proposed) and withdrawing it.
pub(crate) const PARTNER_WRITES: &[PartnerWrite] = &[
    PartnerWrite {
        operation: "update_company",
        body: describe,
        manages: COMPANY_SELF_MANAGED,
    },
    PartnerWrite {
        operation: "update_irccs",
        body: describe,
        manages: SELF_MANAGED,
    },
    PartnerWrite {
        operation: "update_university",
        body: describe,
        manages: SELF_MANAGED,
    },
    PartnerWrite {
        operation: "update_partner",
        body: describe,
        manages: SELF_MANAGED,
    },
    PartnerWrite {
        operation: "create_participant",
        body: |organisation| json!({"organisation_id": organisation, "role": "participant"}),
        manages: &[
            ("organisation_id", None),
            ("role", None),
            ("since", None),
            ("until", None),
            ("note", None),
            ("status", Some("proposed")),
        ],
    },
    PartnerWrite {
        operation: "update_participant",
        body: |_| json!({"status": "withdrawn"}),
        manages: &[("status", Some("withdrawn"))],
    },
];

/// What DESIGN.md lets a partner do with `op`; a partner-admitted write it does not list
/// fails the caller until this table (the contract's) is taught it.
pub(crate) fn partner_write(op: &Operation) -> &'static PartnerWrite {
    PARTNER_WRITES
        .iter()
        .find(|w| w.operation == op.id())
        .unwrap_or_else(|| {
            panic!(
                "{} ({}) admits partners: say in spec::PARTNER_WRITES what DESIGN.md lets them \
                 write there",
                op.name(),
                op.id()
            )
        })
}
