//! Request bodies: media type, JSON parsing, unknown and read-only fields, typed decoding, and
//! JSON Merge Patch (RFC 7396).

use actix_web::http::header::{self, HeaderMap};
use serde_json::{Map, Value as Json};

use crate::domain::rules::escape_pointer;
use crate::error::{ApiError, FieldError};

/// Media types accepted for a create body.
pub const JSON: &[&str] = &["application/json"];
/// Media types accepted for a PATCH body.
pub const MERGE_PATCH: &[&str] = &["application/merge-patch+json", "application/json"];

/// 415 unless the body is one of `accepted`.
pub fn check_media_type(headers: &HeaderMap, accepted: &[&str]) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if accepted.contains(&essence.as_str()) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be {}",
            accepted.join(" or ")
        )))
    }
}

/// JSON or a form.
pub const JSON_OR_FORM: &[&str] = &["application/json", "application/x-www-form-urlencoded"];

/// A JSON object, or a form (`application/x-www-form-urlencoded`: each member a string, at
/// most once), as `headers` say (415 for anything else, 400 when it does not parse).
pub fn parse_json_or_form(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Map<String, Json>, ApiError> {
    check_media_type(headers, JSON_OR_FORM)?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return parse_object(bytes);
    }
    let mut map = Map::new();
    for (k, v) in url::form_urlencoded::parse(bytes) {
        if map
            .insert(k.clone().into_owned(), Json::String(v.into_owned()))
            .is_some()
        {
            return Err(ApiError::malformed(format!(
                "parameter `{k}` was sent more than once"
            )));
        }
    }
    Ok(map)
}

/// The body as a JSON object, or 400.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Json>, ApiError> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::malformed("the body must be a JSON object")),
        Err(e) => Err(ApiError::malformed(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// A writable member and, for an object or a list of objects, the shape of their members.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The member's name.
    pub name: String,
    /// What its values are, as a CSV cell must be read.
    pub value: ValueKind,
    /// The members its object (or each object of its list) may carry.
    pub nested: Option<Shape>,
}

/// What a member's values are, from its schema: how a CSV cell (always text) becomes JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// A string (enumerations too), or anything else the schema does not type.
    Text,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// An object of the members [`Member::nested`] names.
    Object,
    /// A list of these.
    List(Box<ValueKind>),
}

/// Which members a body may carry; derived from the body's declaration (see
/// [`super::schema::shape`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Writable members.
    pub members: Vec<Member>,
    /// Members clients see but may not write (`id`, `version`, ...).
    pub read_only: Vec<String>,
    /// Members written at creation that a patch may not carry (a link's ends): refused like
    /// the read-only ones, whatever their value, as the patch schema leaves them out.
    pub fixed: Vec<String>,
}

impl Shape {
    /// 422 `unknown_field` / `read_only` for every member the shape does not allow, at any
    /// depth, all at once.
    pub fn check(&self, body: &Map<String, Json>) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        self.collect(body, "", &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    /// Whether clients read `name` but may not write it.
    pub fn is_read_only(&self, name: &str) -> bool {
        self.read_only.iter().any(|r| r == name)
    }

    fn collect(&self, body: &Map<String, Json>, prefix: &str, errors: &mut Vec<FieldError>) {
        for (key, value) in body {
            let pointer = format!("{prefix}/{}", escape_pointer(key));
            match self.members.iter().find(|member| member.name == *key) {
                Some(Member {
                    nested: Some(nested),
                    ..
                }) => match value {
                    Json::Object(inner) => nested.collect(inner, &pointer, errors),
                    Json::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Json::Object(inner) = item {
                                nested.collect(inner, &format!("{pointer}/{i}"), errors);
                            }
                        }
                    }
                    _ => {}
                },
                Some(_) => {}
                None if self.is_read_only(key) => errors.push(FieldError::new(
                    pointer,
                    "read_only",
                    format!("`{key}` is set by the service and cannot be written"),
                )),
                None if self.fixed.iter().any(|f| f == key) => errors.push(FieldError::new(
                    pointer,
                    "read_only",
                    format!("`{key}` is fixed at creation and cannot be patched"),
                )),
                None => errors.push(FieldError::new(
                    pointer,
                    "unknown_field",
                    format!("unknown field `{key}`"),
                )),
            }
        }
    }
}

/// RFC 7396: objects merge member by member, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Json, patch: &Json) {
    match patch {
        Json::Object(members) => {
            if !target.is_object() {
                *target = Json::Object(Map::new());
            }
            if let Json::Object(t) = target {
                for (key, value) in members {
                    if value.is_null() {
                        t.remove(key);
                    } else {
                        merge_patch(t.entry(key.clone()).or_insert(Json::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected);
        }
    }

    mod properties {
        //! RFC 7396 as properties, against a reference written from the RFC's pseudocode; and
        //! every writable resource's bodies, generated from its shape, accepted or refused
        //! with a 4xx, never a panic or a 5xx.

        use actix_web::ResponseError;
        use proptest::prelude::*;
        use proptest::test_runner::TestRunner;

        use super::super::*;
        use crate::auth::{Principal, PrincipalKind};
        use crate::domain::{OrganisationId, Role};
        use crate::http::machinery::list::ListKind;
        use crate::http::machinery::record::{self, Resource};
        use crate::http::machinery::schema::Bodies;

        /// RFC 7396 §2, as its pseudocode reads, returning a new value.
        fn reference(target: &Json, patch: &Json) -> Json {
            let Json::Object(patch) = patch else {
                return patch.clone();
            };
            let mut result = match target {
                Json::Object(target) => target.clone(),
                _ => Map::new(),
            };
            for (name, value) in patch {
                if value.is_null() {
                    result.remove(name);
                } else {
                    let merged = reference(result.get(name).unwrap_or(&Json::Null), value);
                    result.insert(name.clone(), merged);
                }
            }
            Json::Object(result)
        }

        fn patched(target: &Json, patch: &Json) -> Json {
            let mut result = target.clone();
            merge_patch(&mut result, patch);
            result
        }

        /// Any JSON, a few levels deep, over few member names so that patches meet targets.
        fn json() -> impl Strategy<Value = Json> {
            let leaf = prop_oneof![
                2 => Just(Json::Null),
                1 => any::<bool>().prop_map(Json::Bool),
                1 => any::<i64>().prop_map(Json::from),
                1 => any::<f64>().prop_map(Json::from),
                1 => "[a-z]{0,3}".prop_map(Json::String),
            ];
            leaf.prop_recursive(4, 48, 5, |inner| {
                prop_oneof![
                    1 => proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                    3 => proptest::collection::btree_map("[a-d]", inner, 0..5)
                        .prop_map(|m| Json::Object(m.into_iter().collect())),
                ]
            })
        }

        fn object() -> impl Strategy<Value = Json> {
            proptest::collection::btree_map("[a-d]", json(), 0..5)
                .prop_map(|m| Json::Object(m.into_iter().collect()))
        }

        /// Whether an object, or an object in it, has a null member (a list is a value: the
        /// nulls in it are data, and a patch sets them as they are).
        fn has_null_member(value: &Json) -> bool {
            match value {
                Json::Object(members) => {
                    members.values().any(|v| v.is_null() || has_null_member(v))
                }
                _ => false,
            }
        }

        proptest! {
            #![proptest_config(crate::proptest_config(3000))]

            #[test]
            fn merge_patch_is_the_rfc_s_algorithm(target in json(), patch in json()) {
                prop_assert_eq!(patched(&target, &patch), reference(&target, &patch));
            }

            #[test]
            fn a_patch_applied_twice_is_applied_once(target in json(), patch in json()) {
                let once = patched(&target, &patch);
                prop_assert_eq!(patched(&once, &patch), once);
            }

            #[test]
            fn an_empty_patch_is_the_identity(target in object()) {
                prop_assert_eq!(patched(&target, &Json::Object(Map::new())), target);
            }

            /// `null` removes its member; members the patch does not name stay as they were;
            /// a non-object patch replaces the target; the patch's null members never land.
            #[test]
            fn null_removes_and_the_rest_stays(target in object(), patch in json()) {
                let result = patched(&target, &patch);
                let (Json::Object(t), Json::Object(p)) = (&target, &patch) else {
                    prop_assert_eq!(result, patch);
                    return Ok(());
                };
                let Json::Object(r) = &result else {
                    return Err(TestCaseError::fail("an object patch gave a non-object"));
                };
                for (name, value) in p {
                    prop_assert_eq!(value.is_null(), !r.contains_key(name), "{}", name);
                }
                for (name, value) in t.iter().filter(|(name, _)| !p.contains_key(*name)) {
                    prop_assert_eq!(r.get(name), Some(value));
                }
                if !has_null_member(&target) {
                    prop_assert!(!has_null_member(&result), "{}", result);
                }
            }
        }

        /// Text a member might hold: anything, and values the validators know.
        fn text() -> BoxedStrategy<Json> {
            prop_oneof![
                any::<String>(),
                "[ -~]{0,24}",
                prop::sample::select(
                    &[
                        "",
                        " ",
                        "IT00743110157",
                        "00743110158",
                        "DE123456789",
                        "03vek6s52",
                        "https://ror.org/03vek6s52",
                        "biotech",
                        "medical_devices",
                        "public",
                        "private",
                        "oncology",
                        "primary",
                        "supporting",
                        "active",
                        "proposed",
                        "withdrawn",
                        "lead",
                        "cluster",
                        "regional",
                        "strategic_partner",
                        "natural_sciences",
                        "MI",
                        "IT",
                        "FR",
                        "20121",
                        "21.20",
                        "https://example.org/",
                        "http://[::1]/",
                        "a@example.org",
                        "+39 02 1234567",
                        "2024-02-29",
                        "2023-02-29",
                        "0190aaaa-0000-7000-8000-000000000001",
                    ][..]
                )
                .prop_map(str::to_owned),
            ]
            .prop_map(Json::String)
            .boxed()
        }

        /// A value for a member of `kind` (nested objects and lists of them from `nested`),
        /// now and then of another type altogether.
        fn value(kind: &ValueKind, nested: Option<&Shape>, depth: u32) -> BoxedStrategy<Json> {
            let typed = match kind {
                ValueKind::Text => text(),
                ValueKind::Integer => prop_oneof![
                    any::<i64>().prop_map(Json::from),
                    (-2i64..2100).prop_map(Json::from),
                    Just(serde_json::json!(12.0)),
                    Just(serde_json::json!(1e300)),
                ]
                .boxed(),
                ValueKind::Number => any::<f64>().prop_map(Json::from).boxed(),
                ValueKind::Boolean => any::<bool>().prop_map(Json::Bool).boxed(),
                ValueKind::Object => match nested {
                    Some(shape) if depth > 0 => {
                        body(shape, depth - 1).prop_map(Json::Object).boxed()
                    }
                    _ => Just(Json::Object(Map::new())).boxed(),
                },
                ValueKind::List(item) => {
                    proptest::collection::vec(value(item, nested, depth), 0..4)
                        .prop_map(Json::Array)
                        .boxed()
                }
            };
            prop_oneof![
                8 => typed,
                1 => Just(Json::Null),
                1 => json(),
            ]
            .boxed()
        }

        /// A body of `shape`'s members (and, now and then, one it refuses).
        fn body(shape: &Shape, depth: u32) -> BoxedStrategy<Map<String, Json>> {
            let mut members: Vec<BoxedStrategy<(String, Json)>> = shape
                .members
                .iter()
                .map(|m| {
                    let name = m.name.clone();
                    value(&m.value, m.nested.as_ref(), depth)
                        .prop_map(move |v| (name.clone(), v))
                        .boxed()
                })
                .collect();
            let refused: Vec<String> = shape
                .read_only
                .iter()
                .chain(&shape.fixed)
                .cloned()
                .collect();
            members.push(("[a-z_]{1,8}", json()).prop_map(|(k, v)| (k, v)).boxed());
            if !refused.is_empty() {
                members.push(
                    (prop::sample::select(refused), json())
                        .prop_map(|(k, v)| (k, v))
                        .boxed(),
                );
            }
            let count = members.len();
            proptest::collection::vec(proptest::strategy::Union::new(members), 0..count.min(10))
                .prop_map(|pairs| pairs.into_iter().collect())
                .boxed()
        }

        fn assert_clean(
            result: Result<impl Sized, ApiError>,
            what: &str,
        ) -> Result<(), TestCaseError> {
            if let Err(e) = result {
                let status = e.status_code();
                prop_assert!(status.is_client_error(), "{what}: {status} {e:?}");
            }
            Ok(())
        }

        /// Arbitrary bodies, for one writable resource.
        struct Arbitrary;

        impl crate::http::routes::EachResource for Arbitrary {
            fn visit<R>(&mut self)
            where
                R: Resource + ListKind,
                R::Body: Bodies,
            {
                let what = R::ENTITY;
                let principals = [Role::Editor, Role::Partner].map(|role| Principal {
                    id: uuid::Uuid::nil(),
                    kind: PrincipalKind::User,
                    role,
                    organisation_id: (role == Role::Partner)
                        .then(|| OrganisationId::new(uuid::Uuid::from_u128(7))),
                });
                let cases = (
                    body(R::shape(), 2),
                    body(R::patch_shape(), 2),
                    0..principals.len(),
                );
                let mut runner = TestRunner::new(crate::proptest_config(200));
                let outcome = runner.run(&cases, |(create, patch, who)| {
                    let principal = &principals[who];
                    assert_clean(
                        record::validate_create::<R>(principal, create.clone()),
                        what,
                    )?;
                    // A patch as `record::merged` applies it, onto the body as a record.
                    assert_clean(R::check_patch(principal, &patch), what)?;
                    let checked = R::patch_shape().check(&patch);
                    if checked.is_ok() {
                        let mut merged = Json::Object(create);
                        merge_patch(&mut merged, &Json::Object(patch));
                        if let Json::Object(merged) = merged {
                            assert_clean(R::validate(merged), what)?;
                        }
                    }
                    assert_clean(checked, what)
                });
                if let Err(e) = outcome {
                    panic!("{what}: {e}");
                }
            }
        }

        #[test]
        fn every_resource_s_bodies_are_accepted_or_a_clean_4xx() {
            let visited = crate::http::routes::each_resource(Arbitrary);
            assert!(visited.contains(&"company") && visited.contains(&"university"));
        }
    }
}
