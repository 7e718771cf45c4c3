//! Research Organization Registry identifiers.

use super::{codes, trimmed, wire_string, Invalid};

/// A ROR id, normalised to its 9-character form (`0` + 6 Crockford base32 characters + a
/// 2-digit ISO 7064 mod 97-10 checksum), e.g. `03vek6s52`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RorId(String);

string_newtype!(RorId);

/// Crockford base32 as ROR uses it: no I, L, O or U.
const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

impl RorId {
    /// Accepts `03vek6s52` or `https://ror.org/03vek6s52` (any case) with a valid checksum.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim().to_ascii_lowercase();
        let bare = trimmed
            .strip_prefix("https://ror.org/")
            .or_else(|| trimmed.strip_prefix("http://ror.org/"))
            .or_else(|| trimmed.strip_prefix("ror.org/"))
            .unwrap_or(&trimmed);
        let shape = "a ROR id is 9 characters, e.g. 03vek6s52 or https://ror.org/03vek6s52";
        let bytes = bare.as_bytes();
        if bytes.len() != 9 || bytes[0] != b'0' || !bytes[7..].iter().all(u8::is_ascii_digit) {
            return Err(Invalid::new(codes::INVALID_FORMAT, shape));
        }
        let mut number: u64 = 0;
        for b in &bytes[1..7] {
            let digit = ALPHABET
                .iter()
                .position(|a| a == b)
                .ok_or_else(|| Invalid::new(codes::INVALID_FORMAT, shape))?;
            number = number * 32 + digit as u64;
        }
        let expected = 98 - (number * 100) % 97;
        let given: u64 = bare[7..]
            .parse()
            .map_err(|_| Invalid::new(codes::INVALID_FORMAT, shape))?;
        if given != expected {
            return Err(Invalid::new(
                codes::INVALID_CHECK_DIGIT,
                "the ROR id's checksum does not match",
            ));
        }
        Ok(Self(bare.to_owned()))
    }
}

// Bare or as a URL, in lowercase as stored (`parse` takes any case); the checksum is beyond a
// pattern.
wire_schema!(
    RorId,
    wire_string().pattern(Some(trimmed(
        r"(?:(?:https?://)?ror\.org/)?0[0-9a-hjkmnp-tv-z]{6}[0-9]{2}"
    )))
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_ids_bare_or_as_urls() {
        for id in [
            "03vek6s52",
            "00wjc7c48",
            "05f950310",
            "01ggx4157",
            "02crff812",
        ] {
            assert_eq!(RorId::parse(id).expect(id).as_str(), id);
        }
        assert_eq!(
            RorId::parse(" https://ror.org/00WJC7C48 ")
                .expect("url")
                .as_str(),
            "00wjc7c48"
        );
    }

    #[test]
    fn refuses_wrong_checksums_and_shapes() {
        assert_eq!(
            RorId::parse("03vek6s53").expect_err("checksum").code,
            codes::INVALID_CHECK_DIGIT
        );
        for bad in [
            "",
            "3vek6s52",
            "13vek6s52",
            "03vek6s5x",
            "03vik6s52",
            "03vek6s520",
        ] {
            assert_eq!(
                RorId::parse(bad).expect_err(bad).code,
                codes::INVALID_FORMAT,
                "{bad}"
            );
        }
    }

    use crate::domain::wire_check::{agree, allows};

    /// The checksum is beyond the pattern: it holds every stored id, not only those.
    #[test]
    fn ror_schema_holds_every_stored_id() {
        let ids: Vec<String> = [
            "03vek6s52",
            "00wjc7c48",
            "05f950310",
            "https://ror.org/03vek6s52",
            "0abcdef12",
        ]
        .map(String::from)
        .to_vec();
        agree::<RorId>(
            &ids,
            |s| RorId::parse(s).ok().map(RorId::into_inner),
            false,
            true,
        );
        assert!(allows::<RorId>("https://ror.org/03vek6s52"));
        assert!(!allows::<RorId>("3vek6s52"));
    }
}
