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

pub mod contact;
pub mod enums;
pub mod geo;
pub mod ror;
pub mod text;
pub mod vat;

pub use contact::{Email, Phone, Website};
pub use enums::*;
pub use geo::{CountryCode, Province};
pub use ror::RorId;
pub use text::{tags, AtecoCode, Name, PostalCode, Tag, MAX_TAGS};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_displays_its_message() {
        let invalid = Invalid::new(codes::TOO_LONG, "too long by far");
        assert_eq!(invalid.to_string(), "too long by far");
        assert_eq!(invalid.code, "too_long");
    }

    #[test]
    fn non_empty_trims_and_refuses_blank() {
        assert_eq!(non_empty("  x \n", "a value"), Ok("x"));
        let err = non_empty(" \t ", "a value").expect_err("should be refused");
        assert_eq!(err.code, codes::REQUIRED);
        assert_eq!(err.message, "a value is required");
    }
}
