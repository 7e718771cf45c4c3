//! Request bodies: media type, JSON parsing, unknown and read-only fields, typed decoding, and
//! JSON Merge Patch (RFC 7396).

use actix_web::http::header::{self, HeaderMap};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use crate::domain::{self, Invalid};
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
    /// The members its object (or each object of its list) may carry.
    pub nested: Option<Shape>,
}

/// Which members a body may carry; derived from the body's declaration (see
/// [`super::schema::shape`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Writable members.
    pub members: Vec<Member>,
    /// Members clients see but may not write (`id`, `version`, ...).
    pub read_only: Vec<String>,
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
                None => errors.push(FieldError::new(
                    pointer,
                    "unknown_field",
                    format!("unknown field `{key}`"),
                )),
            }
        }
    }
}

/// Splits a body into the members named in `names` and the rest.
pub fn split(
    mut body: Map<String, Json>,
    names: &[String],
) -> (Map<String, Json>, Map<String, Json>) {
    let taken = names
        .iter()
        .filter_map(|name| body.remove(name).map(|v| (name.clone(), v)))
        .collect();
    (taken, body)
}

/// RFC 6901 §3: `~` and `/` in a member name are escaped.
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Collects field errors while validating a body.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    /// Records `invalid` at `field`, unless that field already has an error (a value that did
    /// not decode is not also "required").
    pub fn push(&mut self, field: &str, invalid: Invalid) {
        if !self.0.iter().any(|e| e.field == field) {
            self.0
                .push(FieldError::new(field, invalid.code, invalid.message));
        }
    }

    /// Decodes `body` into `T`, recording every member that does not decode and dropping it
    /// (so it counts as absent) instead of stopping at the first: one answer lists every
    /// problem of the body.
    pub fn decode<T: DeserializeOwned + Default>(&mut self, mut body: Map<String, Json>) -> T {
        // PostgreSQL text (and jsonb) cannot hold U+0000: such a string does not decode as text.
        let mut with_nul = Vec::new();
        find_nul(&Json::Object(body.clone()), &mut Vec::new(), &mut with_nul);
        for path in with_nul {
            let pointer: String = path
                .iter()
                .map(|k| format!("/{}", escape_pointer(k)))
                .collect();
            self.push(
                &pointer,
                Invalid::new(
                    domain::codes::INVALID_FORMAT,
                    "text cannot hold the NUL character (U+0000)",
                ),
            );
            // Like a list element that does not decode, it takes its list with it.
            let members = path
                .iter()
                .take_while(|k| k.parse::<usize>().is_err())
                .cloned()
                .collect::<Vec<_>>();
            remove_member(&mut body, &members);
        }
        // Each round removes one offending member, so this ends within the body's size.
        loop {
            match serde_path_to_error::deserialize::<_, T>(Json::Object(body.clone())) {
                Ok(value) => return value,
                Err(e) => {
                    let mut path: Vec<String> = Vec::new();
                    for segment in e.path().iter() {
                        match segment {
                            serde_path_to_error::Segment::Map { key } => path.push(key.clone()),
                            // An element of a list that does not decode: drop the whole list.
                            _ => break,
                        }
                    }
                    let message = e.inner().to_string();
                    let message = message
                        .split(" at line ")
                        .next()
                        .unwrap_or(&message)
                        .to_owned();
                    let code = if message.starts_with("unknown variant") {
                        domain::codes::UNKNOWN_VALUE
                    } else {
                        "invalid_type"
                    };
                    let pointer: String = path
                        .iter()
                        .map(|k| format!("/{}", escape_pointer(k)))
                        .collect();
                    let field = if pointer.is_empty() {
                        "/".to_owned()
                    } else {
                        pointer
                    };
                    self.push(&field, Invalid::new(code, message));
                    if path.is_empty() || !remove_member(&mut body, &path) {
                        return T::default();
                    }
                }
            }
        }
    }

    /// Parses an optional text field; blank counts as absent.
    pub fn optional<T>(
        &mut self,
        field: &str,
        value: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let value = value.filter(|v| !v.trim().is_empty())?;
        match parse(&value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(field, e);
                None
            }
        }
    }

    /// Checks an optional integer's range.
    pub fn range<T: TryFrom<i64>>(
        &mut self,
        field: &str,
        value: Option<i64>,
        min: i64,
        max: i64,
    ) -> Option<T> {
        let v = value?;
        if v < min || v > max {
            self.push(
                field,
                Invalid::new(
                    domain::codes::OUT_OF_RANGE,
                    format!("must be between {min} and {max}"),
                ),
            );
            return None;
        }
        T::try_from(v).ok()
    }

    /// 422 if anything was recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// The paths (member names and list indexes) of the strings in `value` that hold U+0000.
fn find_nul(value: &Json, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Json::String(s) if s.contains('\0') => out.push(path.clone()),
        Json::Object(members) => {
            for (key, member) in members {
                path.push(key.clone());
                find_nul(member, path, out);
                path.pop();
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                find_nul(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `#[serde(deserialize_with = "...")]` for an integer member: JSON has one number type and JSON
/// Schema counts `2.0` as an integer, so a whole number written with a fraction is one too.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(WholeNumber)
}

/// [`whole_number`] for an optional member (with `#[serde(default)]`).
pub fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    struct Optional;
    impl<'de> serde::de::Visitor<'de> for Optional {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            whole_number(d).map(Some)
        }
    }
    d.deserialize_option(Optional)
}

struct WholeNumber;

impl serde::de::Visitor<'_> for WholeNumber {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        // Below 2^63 in magnitude, where every whole f64 is an i64.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if v.fract() == 0.0 && v > -LIMIT && v < LIMIT {
            // Whole and in range, so the cast is exact.
            Ok(v as i64)
        } else {
            Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
        }
    }
}

/// Removes the member at `path` (object keys); false when there is none.
fn remove_member(body: &mut Map<String, Json>, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => body.remove(last).is_some(),
        [first, rest @ ..] => match body.get_mut(first) {
            Some(Json::Object(inner)) => remove_member(inner, rest),
            _ => body.remove(first).is_some(),
        },
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

    #[derive(Debug, Default, serde::Deserialize)]
    struct Numbers {
        #[serde(default, deserialize_with = "optional_whole_number")]
        count: Option<i64>,
        #[serde(default, deserialize_with = "whole_number")]
        year: i64,
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_fraction() {
        let mut errors = Errors::default();
        let n: Numbers = errors.decode(
            json!({"count": 220.0, "year": 2024})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!((n.count, n.year), (Some(220), 2024));
        let n: Numbers = errors.decode(
            json!({"count": null})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(n.count, None);
        assert!(errors.0.is_empty(), "{:?}", errors.0);
        let _: Numbers = errors.decode(
            json!({"count": 1.5, "year": 1e300})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/count", "/year"]);
    }

    #[test]
    fn nul_in_text_is_refused_where_it_is() {
        #[derive(Debug, Default, serde::Deserialize)]
        struct Body {
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            tags: Vec<String>,
            #[serde(default)]
            other: Option<String>,
        }
        let mut errors = Errors::default();
        let body: Body = errors.decode(
            json!({"name": "a\u{0}b", "tags": ["x", "y\u{0}"], "other": "fine"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let fields: Vec<(&str, &str)> = errors
            .0
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_ref()))
            .collect();
        assert_eq!(
            fields,
            [("/name", "invalid_format"), ("/tags/1", "invalid_format")]
        );
        assert_eq!(
            (body.name, body.tags.len(), body.other.as_deref()),
            (None, 0, Some("fine"))
        );
    }

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }
}
