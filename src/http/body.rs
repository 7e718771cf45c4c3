//! Request bodies: media type, JSON parsing, unknown and read-only fields, typed decoding, and
//! JSON Merge Patch (RFC 7396).

use actix_web::http::header::{self, HeaderMap};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

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

/// A writable member and, for objects, their own shape.
pub type Field = (&'static str, Option<&'static Shape>);

/// Which members a body may carry.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Writable members, in groups (shared, then kind-specific); those with a nested shape are
    /// objects checked member by member.
    pub fields: &'static [&'static [Field]],
    /// Members clients see but may not write (`id`, `version`, ...).
    pub read_only: &'static [&'static str],
}

impl Shape {
    /// 422 `unknown_field` / `read_only` for every member the shape does not allow.
    pub fn check(&self, body: &Map<String, Json>) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        self.collect(body, "", &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    fn collect(&self, body: &Map<String, Json>, prefix: &str, errors: &mut Vec<FieldError>) {
        for (key, value) in body {
            let pointer = format!("{prefix}/{}", escape_pointer(key));
            match self
                .fields
                .iter()
                .flat_map(|g| g.iter())
                .find(|(name, _)| name == key)
            {
                Some((_, Some(nested))) => {
                    if let Json::Object(inner) = value {
                        nested.collect(inner, &pointer, errors);
                    }
                }
                Some((_, None)) => {}
                None if self.read_only.contains(&key.as_str()) => errors.push(FieldError::new(
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

    /// Splits a body into the members of field group `group` and the rest.
    pub fn split(
        &self,
        mut body: Map<String, Json>,
        group: usize,
    ) -> (Map<String, Json>, Map<String, Json>) {
        let names = self.fields.get(group).copied().unwrap_or_default();
        let taken = names
            .iter()
            .filter_map(|(name, _)| body.remove(*name).map(|v| ((*name).to_owned(), v)));
        let taken: Map<String, Json> = taken.collect();
        (taken, body)
    }
}

/// RFC 6901 §3: `~` and `/` in a member name are escaped.
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Decodes a checked JSON object into `T`; a type mismatch is 422 at its JSON Pointer.
pub fn decode<T: DeserializeOwned>(body: Map<String, Json>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Json::Object(body)).map_err(|e| {
        let pointer: String = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => {
                    Some(format!("/{}", escape_pointer(key)))
                }
                serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
                _ => None,
            })
            .collect();
        let message = e.inner().to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ApiError::invalid(
            if pointer.is_empty() {
                "/".into()
            } else {
                pointer
            },
            "invalid_type",
            message,
        )
    })
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

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }
}
