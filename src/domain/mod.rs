//! Validated values of the registry.
//!
//! Each type here can only be built by its `parse()` constructor, so a handler, a query or an
//! importer never holds an unchecked VAT number, province or name: a value that exists is valid.
//! Nothing here knows about HTTP or the database; the HTTP layer turns an [`Invalid`] into a
//! problem `errors[]` entry and adds the field's JSON Pointer.

/// Implements the read-only accessors shared by every string newtype in this module.
///
/// The field stays private to the defining file, so `parse()` remains the only way in.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The validated value, in its normalised form.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Gives the normalised string back without a copy, e.g. to move it into a row.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Describes a validated type in the OpenAPI document as the string its `parse` accepts, built
/// from the same constants `parse` checks, so the schema cannot drift from the rule. Bodies
/// name it with `#[schema(value_type = Option<domain::Name>, inline)]` on their raw `String`
/// member. Patterns leave out the surrounding whitespace `parse` trims, so a value that matches
/// is always accepted.
macro_rules! wire_schema {
    ($name:ident, $schema:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let schema: utoipa::openapi::schema::ObjectBuilder = $schema;
                schema.into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// A string schema to start a [`wire_schema!`] from.
fn wire_string() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String)
}

/// Regex ranges (for JSON Schema `pattern`s, ECMA-262 syntax) of Unicode White_Space: what
/// `char::is_whitespace`, `str::trim` and `split_whitespace` treat as space. Spelled out because
/// `\s` means other sets in other regex dialects (Python's includes U+001C..U+001F).
pub const WHITESPACE_RANGES: &str =
    r"\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// Regex ranges of the control characters (`char::is_control`, Unicode Cc).
pub const CONTROL_RANGES: &str = r"\x00-\x1F\x7F-\x9F";
/// Regex ranges of the control characters that are not whitespace (a name refuses them; the
/// others collapse into a space).
pub const NON_SPACE_CONTROL_RANGES: &str = r"\x00-\x08\x0E-\x1F\x7F-\x84\x86-\x9F";

/// A pattern (anchored) for `body` with the surrounding whitespace `parse` trims: a value
/// matches when its trimmed form matches `body`.
pub fn trimmed(body: &str) -> String {
    format!("^[{WHITESPACE_RANGES}]*(?:{body})[{WHITESPACE_RANGES}]*$")
}

/// A pattern for text that trimming leaves at least `min` characters long, without U+0000
/// (PostgreSQL text cannot hold it; any other character may appear).
pub fn text_pattern(min: usize) -> String {
    let (ws, solid) = (WHITESPACE_RANGES, format!("[^{WHITESPACE_RANGES}\\x00]"));
    match min {
        0 => "^[^\\x00]*$".to_owned(),
        1 => format!("^[{ws}]*{solid}(?:[^\\x00]*{solid})?[{ws}]*$"),
        2 => format!("^[{ws}]*{solid}[^\\x00]*{solid}[{ws}]*$"),
        _ => format!("^[{ws}]*{solid}[^\\x00]{{{},}}{solid}[{ws}]*$", min - 2),
    }
}

pub mod account;
pub mod contact;
pub mod enums;
pub mod geo;
pub mod ids;
pub mod organisation;
pub mod ror;
pub mod rules;
pub mod strategy;
pub mod text;
pub mod vat;
pub mod webhook;

pub use contact::{Email, Phone, Website};
pub use enums::*;
pub use geo::{CountryCode, Province};
pub use ids::LiveRecord;
pub use organisation::OrganisationId;
pub use ror::RorId;
pub use strategy::{ActivityId, GoalId};
pub use text::{tags, AtecoCode, Name, PostalCode, RankingSource, RequestId, Tag, MAX_TAGS};
pub use vat::VatNumber;

/// The stable machine codes an [`Invalid`] carries; clients branch on these, so they never change.
pub mod codes {
    /// Nothing (or only whitespace) was given for a value that needs one.
    pub const REQUIRED: &str = "required";
    /// Fewer characters, digits or items than the lower bound.
    pub const TOO_SHORT: &str = "too_short";
    /// More characters, digits or items than the upper bound.
    pub const TOO_LONG: &str = "too_long";
    /// The shape is wrong (characters, separators, structure).
    pub const INVALID_FORMAT: &str = "invalid_format";
    /// The shape is right but a checksum (the Partita IVA's last digit) disagrees.
    pub const INVALID_CHECK_DIGIT: &str = "invalid_check_digit";
    /// Well-formed, but not one of a closed list (province, country, enum value).
    pub const UNKNOWN_VALUE: &str = "unknown_value";
    /// A count or number outside its allowed range (e.g. more than 30 tags).
    pub const OUT_OF_RANGE: &str = "out_of_range";
    /// The same value appears twice where values must be distinct.
    pub const DUPLICATE_VALUE: &str = "duplicate_value";
    /// A member the body does not have.
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    /// A webhook address that is, or resolves to, one outside the public internet (loopback,
    /// private, link-local, shared, metadata).
    pub const FORBIDDEN_TARGET: &str = "forbidden_target";
    /// A search (`q`) that matches too much to rank within the search time bound.
    pub const SEARCH_TOO_BROAD: &str = "search_too_broad";
}

/// Why a value was refused: a stable machine `code` and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// One of the constants in [`codes`], sent to clients as `errors[].code`.
    pub code: &'static str,
    /// A sentence for people, sent as `errors[].message`; never contains internals.
    pub message: String,
}

impl Invalid {
    /// Builds a refusal; `code` should come from [`codes`] so clients see a known value.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Trims `input` and refuses what is left empty, so every `parse()` treats blank as missing.
fn non_empty<'a>(input: &'a str, what: &str) -> Result<&'a str, Invalid> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        Err(Invalid::new(codes::REQUIRED, format!("{what} is required")))
    } else {
        Ok(trimmed)
    }
}

/// Checks a [`wire_schema!`] against its `parse`, on many small strings.
#[cfg(test)]
pub(crate) mod wire_check {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    use utoipa::PartialSchema;

    /// `T`'s string schema, ready to check values against.
    pub struct Checker {
        min: Option<usize>,
        max: Option<usize>,
        pattern: Option<regex::Regex>,
        values: Option<Vec<serde_json::Value>>,
    }

    impl Checker {
        /// Reads `T`'s schema.
        pub fn of<T: PartialSchema>() -> Self {
            let RefOr::T(Schema::Object(schema)) = T::schema() else {
                panic!("a wire schema is an inline object");
            };
            Self {
                min: schema.min_length,
                max: schema.max_length,
                pattern: schema
                    .pattern
                    .map(|p| regex::Regex::new(&p).unwrap_or_else(|e| panic!("{p}: {e}"))),
                values: schema.enum_values,
            }
        }

        /// Whether `value` is valid against the schema (lengths, pattern, enum).
        pub fn allows(&self, value: &str) -> bool {
            let length = value.chars().count();
            self.min.is_none_or(|min| length >= min)
                && self.max.is_none_or(|max| length <= max)
                && self.pattern.as_ref().is_none_or(|p| p.is_match(value))
                && self
                    .values
                    .as_ref()
                    .is_none_or(|values| values.iter().any(|v| v.as_str() == Some(value)))
        }
    }

    /// Whether `value` is valid against `T`'s string schema.
    pub fn allows<T: PartialSchema>(value: &str) -> bool {
        Checker::of::<T>().allows(value)
    }

    /// Every string over `alphabet` up to `max_len` characters long when there are few, else
    /// `count` of them drawn with a fixed seed; `extra` as well.
    pub fn samples(alphabet: &[char], max_len: usize, count: usize, extra: &[&str]) -> Vec<String> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The modulus is below `n`, a usize.
            (state % n as u64) as usize
        };
        let mut out: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        for _ in 0..count {
            let len = next(max_len + 1);
            out.push((0..len).map(|_| alphabet[next(alphabet.len())]).collect());
        }
        out
    }

    /// What the schema allows is accepted (`sound`), and what `parse` gives back unchanged (a
    /// stored value) is allowed (`complete`), for every sample.
    #[track_caller]
    pub fn agree<T: PartialSchema>(
        samples: &[String],
        parse: impl Fn(&str) -> Option<String>,
        sound: bool,
        complete: bool,
    ) {
        let schema = Checker::of::<T>();
        let mut allowed = 0;
        for s in samples {
            let parsed = parse(s);
            if sound && schema.allows(s) {
                allowed += 1;
                assert!(
                    parsed.is_some(),
                    "the schema allows {s:?}, parse refuses it"
                );
            }
            if complete && parsed.as_deref() == Some(s.as_str()) {
                assert!(
                    schema.allows(s),
                    "parse keeps {s:?} as it is, the schema refuses it"
                );
            }
        }
        assert!(
            !sound || allowed > 0,
            "no sample was allowed: the test proves nothing"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_displays_its_message() {
        let invalid = Invalid::new(codes::TOO_LONG, "too long by far");
        assert_eq!(invalid.to_string(), "too long by far");
        assert_eq!(invalid.code, "too_long");
    }

    /// Each range list is exactly the set it names, over every character.
    #[test]
    fn character_ranges_match_rusts_predicates() {
        let class = |ranges: &str| regex::Regex::new(&format!("^[{ranges}]$")).expect("regex");
        let (space, control, non_space_control) = (
            class(WHITESPACE_RANGES),
            class(CONTROL_RANGES),
            class(NON_SPACE_CONTROL_RANGES),
        );
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(space.is_match(&s), c.is_whitespace(), "{c:?}");
            assert_eq!(control.is_match(&s), c.is_control(), "{c:?}");
            assert_eq!(
                non_space_control.is_match(&s),
                c.is_control() && !c.is_whitespace(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn text_pattern_is_the_trimmed_length_without_nul() {
        let alphabet = ['a', ' ', '\t', '\u{a0}', '\u{1c}', '\n', '\u{0}', 'é'];
        let texts = wire_check::samples(&alphabet, 6, 20_000, &["", " ", "a", " a ", "ab"]);
        for min in 0..4 {
            let pattern = regex::Regex::new(&text_pattern(min)).expect("regex");
            for s in &texts {
                let expected = s.trim().chars().count() >= min && !s.contains('\0');
                assert_eq!(pattern.is_match(s), expected, "min {min}: {s:?}");
            }
        }
    }

    #[test]
    fn non_empty_trims_and_refuses_blank() {
        assert_eq!(non_empty("  x \n", "a value"), Ok("x"));
        let err = non_empty(" \t ", "a value").expect_err("should be refused");
        assert_eq!(err.code, codes::REQUIRED);
        assert_eq!(err.message, "a value is required");
    }
}
