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
}
