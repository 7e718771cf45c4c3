//! What a client writes, and how it is checked: the collector of field problems every body's
//! validation fills (one answer lists every problem of a body), the decoding that finds them,
//! the text rules bodies share, and the schema shapes bodies name for their members. Nothing
//! here knows HTTP: the HTTP layer turns a [`Rejected`] into a 422 problem.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::{codes, Invalid};

/// RFC 6901 §3: `~` and `/` in a member name are escaped.
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// One member a body got wrong: where (a JSON Pointer), a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// JSON Pointer (RFC 6901) to the member, e.g. `/address/province`.
    pub field: String,
    /// One of [`super::codes`] (or `invalid_type` for a member that does not decode).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

/// A body refused: every problem it has, at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub Vec<FieldProblem>);

impl Rejected {
    /// A body refused for one problem at `field`.
    pub fn at(field: &str, invalid: Invalid) -> Self {
        let mut errors = Errors::default();
        errors.push(field, invalid);
        Self(errors.0)
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let problems: Vec<String> = self
            .0
            .iter()
            .map(|p| format!("{}: {} ({})", p.field, p.message, p.code))
            .collect();
        f.write_str(&problems.join("; "))
    }
}

impl std::error::Error for Rejected {}

/// Collects field problems while validating a body.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<FieldProblem>);

impl Errors {
    /// Records `invalid` at `field`, unless that field already has an error (a value that did
    /// not decode is not also "required").
    pub fn push(&mut self, field: &str, invalid: Invalid) {
        if !self.0.iter().any(|e| e.field == field) {
            self.0.push(FieldProblem {
                field: field.to_owned(),
                code: invalid.code,
                message: invalid.message,
            });
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
                    codes::INVALID_FORMAT,
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
                    let mut whole = true;
                    for segment in e.path().iter() {
                        match segment {
                            serde_path_to_error::Segment::Map { key } => path.push(key.clone()),
                            // An element of a list that does not decode: drop the whole list.
                            _ => {
                                whole = false;
                                break;
                            }
                        }
                    }
                    let message = e.inner().to_string();
                    let message = message
                        .split(" at line ")
                        .next()
                        .unwrap_or(&message)
                        .to_owned();
                    // serde's `deny_unknown_fields` names the member: the contract's
                    // `unknown_field`, as the shape check answers for the record bodies (but
                    // not at a list's pointer, which names the list rather than the member).
                    let code = if message.starts_with("unknown variant") {
                        codes::UNKNOWN_VALUE
                    } else if whole && message.starts_with("unknown field") {
                        codes::UNKNOWN_FIELD
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

    /// [`Self::optional`] for text whose schema bounds it at `max` characters as sent: longer
    /// is refused, blank or not, since the schema refuses it too.
    pub fn optional_within<T>(
        &mut self,
        field: &str,
        value: Option<String>,
        max: usize,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            self.push(
                field,
                Invalid::new(codes::TOO_LONG, format!("at most {max} characters")),
            );
            return None;
        }
        self.optional(field, value, parse)
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
                    codes::OUT_OF_RANGE,
                    format!("must be between {min} and {max}"),
                ),
            );
            return None;
        }
        T::try_from(v).ok()
    }

    /// Refused if anything was recorded.
    pub fn finish(self) -> Result<(), Rejected> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Rejected(self.0))
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

/// An optional free text of at most `max` characters as sent (the bound the schema states,
/// surrounding whitespace included), stored trimmed; blank counts as absent.
pub fn text(errors: &mut Errors, field: &str, value: Option<String>, max: usize) -> Option<String> {
    errors.optional_within(field, value, max, |v| Ok(v.trim().to_owned()))
}

/// A required title (or any required short text) at `field`: 2 to `max` characters once
/// trimmed, and at most `max` as sent.
pub fn title(errors: &mut Errors, field: &str, value: Option<String>, max: usize) -> String {
    let sent = value.as_deref().map_or(0, |v| v.chars().count());
    match value.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => {
            errors.push(
                field,
                Invalid::new(codes::REQUIRED, format!("{} is required", &field[1..])),
            );
            String::new()
        }
        Some(t) if t.chars().count() < 2 || sent > max => {
            errors.push(
                field,
                Invalid::new(codes::OUT_OF_RANGE, format!("2 to {max} characters")),
            );
            String::new()
        }
        Some(t) => t.to_owned(),
    }
}

/// `items` without repeats (each repeat refused at its index under `field`).
pub fn distinct<T: PartialEq + Copy>(errors: &mut Errors, field: &str, items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if out.contains(item) {
            errors.push(
                &format!("{field}/{i}"),
                Invalid::new(codes::DUPLICATE_VALUE, "listed twice"),
            );
        } else {
            out.push(*item);
        }
    }
    out
}

/// A required member: its value, or `fallback` with `required` recorded at `field`.
pub fn required<T>(errors: &mut Errors, field: &str, value: Option<T>, fallback: T) -> T {
    value.unwrap_or_else(|| {
        errors.push(
            field,
            Invalid::new(codes::REQUIRED, format!("{} is required", &field[1..])),
        );
        fallback
    })
}

/// Decodes `body` as `T`, lets `check` validate it, and answers every problem at once.
pub fn validate<T: DeserializeOwned + Default, W>(
    body: Map<String, Json>,
    check: impl FnOnce(T, &mut Errors) -> W,
) -> Result<W, Rejected> {
    let mut errors = Errors::default();
    let input: T = errors.decode(body);
    let write = check(input, &mut errors);
    errors.finish()?;
    Ok(write)
}

/// The members of a plain (unflattened) body declaration, as its schema names them.
pub fn member_names<T: PartialSchema>() -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
        _ => Vec::new(),
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

/// A list whose items are distinct (`uniqueItems`), of `T`'s component; for
/// `#[schema(value_type = ..., inline)]`, which cannot say `uniqueItems` itself.
fn unique_list_of<T: ToSchema>() -> RefOr<Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(RefOr::Ref(Ref::from_schema_name(T::name())))
        .unique_items(true)
        .into()
}

/// Declares a list schema for `#[schema(value_type = $name, inline)]`.
macro_rules! list_schema {
    ($(#[$doc:meta])* $name:ident, $schema:expr, $item:ty) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push((<$item>::name().into_owned(), <$item>::schema()));
                <$item>::schemas(schemas);
            }
        }
    };
}

list_schema!(
    /// Areas of action without repeats.
    Areas,
    unique_list_of::<super::Area>(),
    super::Area
);

list_schema!(
    /// IRCCS specialisations: at least one, without repeats.
    Specialisations,
    non_empty(unique_list_of::<super::Specialisation>()),
    super::Specialisation
);

list_schema!(
    /// A webhook's event types: 1 to [`super::webhook::MAX_EVENTS`], without repeats.
    EventTypes,
    at_most(
        non_empty(unique_list_of::<super::webhook::EventType>()),
        super::webhook::MAX_EVENTS
    ),
    super::webhook::EventType
);

list_schema!(
    /// Organisation kinds without repeats.
    Kinds,
    unique_list_of::<super::OrganisationKind>(),
    super::OrganisationKind
);

fn at_most(list: RefOr<Schema>, max: usize) -> RefOr<Schema> {
    match list {
        RefOr::T(Schema::Array(mut array)) => {
            array.max_items = Some(max);
            RefOr::T(Schema::Array(array))
        }
        other => other,
    }
}

fn non_empty(list: RefOr<Schema>) -> RefOr<Schema> {
    match list {
        RefOr::T(Schema::Array(mut array)) => {
            array.min_items = Some(1);
            RefOr::T(Schema::Array(array))
        }
        other => other,
    }
}

/// An organisation's tags: at most [`super::MAX_TAGS`], each a [`super::Tag`],
/// distinct (the server also ignores case in comparing them).
pub struct Tags;

impl PartialSchema for Tags {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(super::Tag::schema())
            .max_items(Some(super::MAX_TAGS))
            .unique_items(true)
            .into()
    }
}

impl ToSchema for Tags {}

/// Text that trimming leaves `MIN..=MAX` characters long (a title, a ranking's source; with
/// `MIN` 0, free text, which may be blank), without U+0000, which PostgreSQL text cannot hold.
/// The length bound is on the text as sent, which trimming only shortens.
pub struct Text<const MIN: usize, const MAX: usize>;

impl<const MIN: usize, const MAX: usize> PartialSchema for Text<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length((MIN > 0).then_some(MIN))
            .max_length(Some(MAX))
            .pattern(Some(super::text_pattern(MIN)))
            .into()
    }
}

impl<const MIN: usize, const MAX: usize> ToSchema for Text<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Text{MIN}to{MAX}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Default, serde::Deserialize)]
    struct Numbers {
        #[serde(default, deserialize_with = "optional_whole_number")]
        count: Option<i64>,
        #[serde(default, deserialize_with = "whole_number")]
        year: i64,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Closed {
        #[serde(default)]
        grace_seconds: i64,
    }

    #[test]
    fn a_member_a_closed_body_does_not_have_is_an_unknown_field() {
        let mut errors = Errors::default();
        let body = json!({"grace_seconds": 1, "client_secret": "x"});
        let closed: Closed = errors.decode(body.as_object().cloned().unwrap_or_default());
        assert_eq!(closed.grace_seconds, 1, "the members it has still decode");
        let codes: Vec<_> = errors
            .0
            .iter()
            .map(|p| (p.field.as_str(), p.code))
            .collect();
        assert_eq!(codes, [("/client_secret", codes::UNKNOWN_FIELD)]);
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
            .map(|e| (e.field.as_str(), e.code))
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
