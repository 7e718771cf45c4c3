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

    mod properties {
        //! The parser against arbitrary text, and against ROR ids built here from ROR's
        //! definition: `0`, six Crockford base-32 digits, and the ISO 7064 Mod 97-10 check of
        //! their value, computed digit by digit over its decimal spelling (independently of
        //! `parse`'s arithmetic).

        use proptest::prelude::*;

        use super::super::*;

        /// Crockford's base-32 digits as the standard writes them (uppercase).
        const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

        /// ISO 7064 Mod 97-10 (pure system, two check digits): the number with `00` appended,
        /// reduced digit by digit; the check makes the whole `≡ 1 (mod 97)`, written `02` to
        /// `98` as IBANs and ROR write it (so `97`, never `00`, when the remainder is 1).
        fn mod_97_10(decimal: &str) -> u32 {
            let remainder = decimal
                .bytes()
                .map(|b| u32::from(b - b'0'))
                .chain([0, 0])
                .fold(0, |r, d| (r * 10 + d) % 97);
            98 - remainder
        }

        /// The ROR id of `value` (below 32^6), as ROR prints it (lowercase).
        fn ror_id(value: u32) -> String {
            let digits: String = (0..6)
                .rev()
                .map(|i| char::from(CROCKFORD[((value >> (5 * i)) & 31) as usize]))
                .collect();
            let check = mod_97_10(&value.to_string());
            format!("0{digits}{check:02}").to_lowercase()
        }

        fn valid_id() -> impl Strategy<Value = String> {
            (0u32..(1 << 30)).prop_map(ror_id)
        }

        proptest! {
            #![proptest_config(crate::proptest_config(3000))]

            #[test]
            fn arbitrary_text_is_refused_or_a_normalised_id(
                text in prop_oneof![
                    any::<String>(),
                    "(https?://)?(ror\\.org/)?0[0-9a-zA-Z]{6}[0-9]{2}",
                ],
            ) {
                if let Ok(id) = RorId::parse(&text) {
                    prop_assert_eq!(id.as_str().len(), 9);
                    let again = RorId::parse(id.as_str());
                    prop_assert_eq!(again.as_ref().map(RorId::as_str), Ok(id.as_str()));
                }
            }

            #[test]
            fn every_id_is_accepted_bare_or_as_a_url_in_any_case(
                id in valid_id(),
                prefix in prop::sample::select(&["", "https://ror.org/", "http://ror.org/", "ror.org/"][..]),
                upper in any::<bool>(),
                around in prop::sample::select(&["", " ", "\t\n"][..]),
            ) {
                let typed = format!("{around}{prefix}{id}{around}");
                let typed = if upper { typed.to_uppercase() } else { typed };
                let parsed = RorId::parse(&typed);
                prop_assert_eq!(parsed.as_ref().map(RorId::as_str), Ok(id.as_str()), "{:?}", typed);
            }

            /// Mod 97-10 catches every single substitution (97 is prime and above 32); the
            /// shape catches the rest.
            #[test]
            fn one_changed_character_is_refused(
                id in valid_id(),
                at in 0usize..9,
                c in prop_oneof![
                    any::<char>(),
                    prop::sample::select(&b"0123456789abcdefghjkmnpqrstvwxyzilou "[..]).prop_map(char::from),
                ],
            ) {
                let mut chars: Vec<char> = id.chars().collect();
                prop_assume!(!c.eq_ignore_ascii_case(&chars[at]));
                chars[at] = c;
                let changed: String = chars.into_iter().collect();
                prop_assert!(RorId::parse(&changed).is_err(), "{:?} accepted", changed);
            }
        }

        /// Remainder 1 is written `97`, not `00`: the case that proved this test's first
        /// generator wrong, not the parser.
        #[test]
        fn remainder_one_is_written_97() {
            assert_eq!(ror_id(229420973), "06tsbxd97");
            assert!(RorId::parse("06tsbxd97").is_ok());
            assert!(RorId::parse("06tsbxd00").is_err());
        }

        #[test]
        fn the_generator_agrees_with_real_ids() {
            // ROR's own ids: Politecnico di Milano, Università degli Studi di Milano.
            for real in ["02crff812", "00wjc7c48", "03vek6s52"] {
                let value = real[1..7].bytes().fold(0u32, |v, b| {
                    let digit = CROCKFORD
                        .iter()
                        .position(|c| c.eq_ignore_ascii_case(&b))
                        .unwrap_or(0);
                    v * 32 + digit as u32
                });
                assert_eq!(ror_id(value), real);
            }
        }
    }
}
