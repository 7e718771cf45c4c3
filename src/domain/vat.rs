//! VAT numbers: the Italian Partita IVA with its check digit verified, and foreign numbers from
//! the countries whose businesses the hub deals with, recognised by their VAT prefix.

use super::{codes, non_empty, trimmed, wire_string, Invalid};

/// A VAT number: 11 digits for an Italian Partita IVA, or a foreign prefix and its number.
///
/// Normalised so that one company has one spelling (the unique index on VAT relies on it):
/// Italian numbers lose their `IT` prefix, foreign ones are uppercase without spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatNumber(String);

string_newtype!(VatNumber);

/// VAT prefixes other than `IT`: the EU's (Greece is `EL`, Northern Ireland `XI`), the other EEA
/// states', the UK's and Switzerland's. Sorted, for `binary_search`.
const FOREIGN_PREFIXES: [&str; 32] = [
    "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "GB", "HR", "HU",
    "IE", "IS", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
];

/// The shortest and longest national part of a foreign number; covers every EU/EEA/UK/CH format.
const FOREIGN_LEN: std::ops::RangeInclusive<usize> = 2..=12;

const FORMAT_HINT: &str = "expected an Italian Partita IVA (11 digits, optionally prefixed by IT) \
     or a foreign VAT number with its country prefix (e.g. DE123456789)";

impl VatNumber {
    /// Checks and normalises a VAT number as typed by a person (`it 00743110157`, `de 123 456 789`).
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = non_empty(input, "a VAT number")?;
        // People write VAT numbers in groups ("IT 007 431 101 57"); the spaces carry nothing.
        let compact: String = trimmed
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();

        if let Some(digits) = compact.strip_prefix("IT") {
            return parse_italian(digits);
        }
        if compact.bytes().all(|b| b.is_ascii_digit()) {
            return parse_italian(&compact);
        }

        let (Some(prefix), Some(number)) = (compact.get(..2), compact.get(2..)) else {
            return Err(Invalid::new(codes::INVALID_FORMAT, FORMAT_HINT));
        };
        let known_prefix = FOREIGN_PREFIXES.binary_search(&prefix).is_ok();
        let number_ok = FOREIGN_LEN.contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_alphanumeric());
        if known_prefix && number_ok {
            Ok(Self(compact))
        } else {
            Err(Invalid::new(codes::INVALID_FORMAT, FORMAT_HINT))
        }
    }

    /// Italian numbers are the only ones whose check digit is verified and whose prefix is dropped.
    pub fn is_italian(&self) -> bool {
        self.0.as_bytes().first().is_some_and(u8::is_ascii_digit)
    }
}

// Either shape, as stored (uppercase, no spaces; `parse` also takes lowercase and groups of
// digits). A Partita IVA's office code (digits 8 to 10) is never 000; its check digit is
// beyond a pattern.
wire_schema!(
    VatNumber,
    wire_string().pattern(Some(trimmed(&format!(
        "(?:IT)?[0-9]{{7}}(?:[1-9][0-9]{{2}}|0[1-9][0-9]|00[1-9])[0-9]|(?:{})[A-Z0-9]{{{},{}}}",
        FOREIGN_PREFIXES.join("|"),
        FOREIGN_LEN.start(),
        FOREIGN_LEN.end()
    ))))
);

/// The Partita IVA's 11th digit for its first ten, given as digit values `0..=9` (not ASCII).
///
/// This is the Luhn check as the Agenzia delle Entrate states it: digits in odd positions
/// (1st, 3rd, ...) are summed; those in even positions are doubled, minus 9 when above 9;
/// the check digit is `(10 - sum % 10) % 10`.
pub fn italian_check_digit(first10: &[u8; 10]) -> u8 {
    let sum: u32 = first10
        .iter()
        .enumerate()
        .map(|(index, &digit)| {
            let digit = u32::from(digit);
            // `index` counts from 0, so an even index is an odd (1-based) position.
            if index % 2 == 0 {
                digit
            } else if digit * 2 > 9 {
                digit * 2 - 9
            } else {
                digit * 2
            }
        })
        .sum();
    // The value is below 10, so it always fits.
    ((10 - sum % 10) % 10) as u8
}

/// Checks the 11 digits of a Partita IVA, its office code and its check digit.
fn parse_italian(digits: &str) -> Result<VatNumber, Invalid> {
    let bytes = digits.as_bytes();
    if bytes.len() != 11 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::new(
            codes::INVALID_FORMAT,
            "an Italian Partita IVA has exactly 11 digits",
        ));
    }
    // Digits 8-10 name the provincial VAT office; offices are numbered from 001, so `000` is
    // never issued (this also refuses `00000000000`, whose check digit happens to be right).
    if &bytes[7..10] == b"000" {
        return Err(Invalid::new(
            codes::INVALID_FORMAT,
            "an Italian Partita IVA never has 000 as its office code (digits 8 to 10)",
        ));
    }
    let mut first10 = [0u8; 10];
    for (value, ascii) in first10.iter_mut().zip(bytes) {
        *value = ascii - b'0';
    }
    let expected = italian_check_digit(&first10);
    if bytes[10] - b'0' != expected {
        return Err(Invalid::new(
            codes::INVALID_CHECK_DIGIT,
            "the last digit of this Partita IVA does not match the others; check for a typo",
        ));
    }
    Ok(VatNumber(digits.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published Partita IVA numbers of Italian companies (checked by hand with the algorithm).
    const REAL: [&str; 4] = ["00743110157", "00488410010", "00905811006", "00470550013"];

    fn code(input: &str) -> &'static str {
        VatNumber::parse(input).expect_err("should be refused").code
    }

    fn digits(s: &str) -> [u8; 10] {
        let mut out = [0u8; 10];
        for (o, b) in out.iter_mut().zip(s.bytes()) {
            *o = b - b'0';
        }
        out
    }

    #[test]
    fn check_digit_matches_the_worked_example() {
        // 0 0 7 4 3 1 1 0 1 5: odd positions 0+7+3+1+1 = 12; even positions doubled
        // 0+8+2+0+(10-9) = 11; sum 23; (10 - 3) % 10 = 7.
        assert_eq!(italian_check_digit(&digits("0074311015")), 7);
        assert_eq!(italian_check_digit(&digits("1234567048")), 8);
        assert_eq!(italian_check_digit(&[0; 10]), 0);
        // 9s: 5 × 9 + 5 × (18 - 9) = 90, so 0; 1s: 5 × 1 + 5 × 2 = 15, so 5.
        assert_eq!(italian_check_digit(&[9; 10]), 0);
        assert_eq!(italian_check_digit(&[1; 10]), 5);
    }

    #[test]
    fn real_numbers_are_accepted_as_is() {
        for number in REAL {
            let vat = VatNumber::parse(number).expect("should be accepted");
            assert_eq!(vat.as_str(), number);
            assert!(vat.is_italian());
        }
    }

    #[test]
    fn every_single_digit_change_is_caught() {
        // Luhn catches every single-digit substitution, wherever it is.
        for number in REAL {
            for position in 0..11 {
                for replacement in b'0'..=b'9' {
                    let mut altered = number.as_bytes().to_vec();
                    if altered[position] == replacement {
                        continue;
                    }
                    altered[position] = replacement;
                    let altered = String::from_utf8(altered).expect("ASCII digits");
                    // A change in the office code may produce `000`, refused for its format.
                    let refused = code(&altered);
                    assert!(
                        refused == codes::INVALID_CHECK_DIGIT || &altered[7..10] == "000",
                        "{altered} gave {refused}"
                    );
                }
            }
        }
        assert_eq!(code("00743110158"), codes::INVALID_CHECK_DIGIT);
        assert_eq!(code("00743110167"), codes::INVALID_CHECK_DIGIT);
    }

    #[test]
    fn adjacent_swap_is_caught() {
        assert_eq!(code("07043110157"), codes::INVALID_CHECK_DIGIT);
    }

    #[test]
    fn prefix_and_spaces_are_dropped() {
        for input in [
            "IT00743110157",
            "it00743110157",
            "iT 00743110157",
            "  IT 007 431 101 57  ",
            "IT\u{a0}00743110157",
            "0074 3110 157",
        ] {
            assert_eq!(
                VatNumber::parse(input)
                    .expect("should be accepted")
                    .as_str(),
                "00743110157"
            );
        }
    }

    #[test]
    fn office_code_000_is_refused() {
        assert_eq!(code("00000000000"), codes::INVALID_FORMAT);
        // Check digit right, office code 000: still refused.
        let check = italian_check_digit(&digits("1234567000"));
        assert_eq!(code(&format!("1234567000{check}")), codes::INVALID_FORMAT);
    }

    #[test]
    fn italian_with_wrong_length_or_letters_is_a_format_error() {
        assert_eq!(code("0074311015"), codes::INVALID_FORMAT);
        assert_eq!(code("007431101570"), codes::INVALID_FORMAT);
        assert_eq!(code("IT0074311015A"), codes::INVALID_FORMAT);
        assert_eq!(code("IT"), codes::INVALID_FORMAT);
        assert_eq!(code("0074-3110-157"), codes::INVALID_FORMAT);
    }

    #[test]
    fn foreign_numbers_are_uppercased_and_compacted() {
        let cases = [
            ("DE123456789", "DE123456789"),
            ("de 123 456 789", "DE123456789"),
            ("fr12345678901", "FR12345678901"),
            ("EL094259216", "EL094259216"),
            ("XI123456789", "XI123456789"),
            ("GB123456789", "GB123456789"),
            ("CHE123456789", "CHE123456789"),
            ("NO123456789MVA", "NO123456789MVA"),
            ("nl 8528 22 456 B01", "NL852822456B01"),
            ("AT12", "AT12"),
            ("ES123456789012", "ES123456789012"),
        ];
        for (input, normalised) in cases {
            let vat = VatNumber::parse(input).expect("should be accepted");
            assert_eq!(vat.as_str(), normalised, "{input}");
            assert!(!vat.is_italian());
        }
    }

    #[test]
    fn foreign_bounds_and_unknown_prefixes() {
        assert_eq!(code("DE1"), codes::INVALID_FORMAT);
        assert_eq!(code("ES1234567890123"), codes::INVALID_FORMAT);
        assert_eq!(code("DE12-345"), codes::INVALID_FORMAT);
        // GR is Greece's ISO code but not its VAT prefix.
        assert_eq!(code("GR094259216"), codes::INVALID_FORMAT);
        assert_eq!(code("US123456789"), codes::INVALID_FORMAT);
        assert_eq!(code("ZZ123456789"), codes::INVALID_FORMAT);
        assert_eq!(code("D"), codes::INVALID_FORMAT);
        assert_eq!(code("ÄÖ123456"), codes::INVALID_FORMAT);
        assert_eq!(code("DE12345678é"), codes::INVALID_FORMAT);
    }

    #[test]
    fn blank_is_required() {
        assert_eq!(code(""), codes::REQUIRED);
        assert_eq!(code("   "), codes::REQUIRED);
    }

    #[test]
    fn prefixes_are_sorted_and_exclude_italy() {
        assert!(FOREIGN_PREFIXES.windows(2).all(|w| w[0] < w[1]));
        assert!(FOREIGN_PREFIXES.binary_search(&"IT").is_err());
    }

    #[test]
    fn accessors_agree() {
        let vat = VatNumber::parse("IT00743110157").expect("should be accepted");
        assert_eq!(vat.to_string(), "00743110157");
        assert_eq!(vat.as_ref(), "00743110157");
        assert_eq!(vat.into_inner(), "00743110157");
    }

    use crate::domain::wire_check::{agree, samples};

    /// The check digit is beyond the pattern: it holds every stored number, not only those.
    #[test]
    fn vat_schema_holds_every_stored_number() {
        let mut numbers = samples(
            &['0', '7', '4', '3', '1', 'I', 'T', 'D', 'E', 'x'],
            13,
            50_000,
            &[],
        );
        numbers.extend(REAL.iter().map(|s| (*s).to_owned()));
        numbers.extend(["DE123456789", "FRXX999999999", "IT00743110157"].map(String::from));
        agree::<VatNumber>(
            &numbers,
            |s| VatNumber::parse(s).ok().map(VatNumber::into_inner),
            false,
            true,
        );
        assert!(crate::domain::wire_check::allows::<VatNumber>(
            "00743110157"
        ));
        assert!(crate::domain::wire_check::allows::<VatNumber>(
            "DE123456789"
        ));
    }

    mod properties {
        //! The parser against arbitrary text, and against Partite IVA built here from the
        //! Agenzia delle Entrate's definition (the standard Luhn check over all 11 digits),
        //! independently of [`italian_check_digit`].

        use proptest::prelude::*;

        use super::super::*;
        use super::REAL;

        /// Luhn: from the rightmost digit, every second one doubled (its digits summed); the
        /// total is a multiple of 10.
        fn luhn_holds(digits: &[u8]) -> bool {
            let total: u32 = digits
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &d)| {
                    let d = u32::from(d);
                    if i % 2 == 1 {
                        (d * 2) / 10 + (d * 2) % 10
                    } else {
                        d
                    }
                })
                .sum();
            total % 10 == 0
        }

        /// A Partita IVA: 7 digits of the taxpayer's number, an office code from 001, and the
        /// one digit that makes Luhn hold.
        fn partita_iva() -> impl Strategy<Value = String> {
            (proptest::collection::vec(0u8..10, 7), 1u16..=999).prop_map(|(number, office)| {
                let mut digits = number;
                digits.extend(format!("{office:03}").bytes().map(|b| b - b'0'));
                let check = (0..10)
                    .find(|c| {
                        let mut all = digits.clone();
                        all.push(*c);
                        luhn_holds(&all)
                    })
                    .unwrap_or(10);
                digits.push(check);
                digits.iter().map(|d| char::from(b'0' + d)).collect()
            })
        }

        /// How people type a number: a prefix in any case, spaces between groups, around it.
        fn as_typed(number: String) -> impl Strategy<Value = (String, String)> {
            (
                prop::sample::select(&["", "IT", "it", "It", "IT "][..]),
                proptest::collection::vec(
                    prop::sample::select(&["", "", "", " ", "\u{a0}", "\t"][..]),
                    11,
                ),
                prop::sample::select(&["", " ", "  \n"][..]),
            )
                .prop_map(move |(prefix, gaps, around)| {
                    let spaced: String = number
                        .chars()
                        .zip(gaps)
                        .map(|(digit, gap)| format!("{digit}{gap}"))
                        .collect();
                    (format!("{around}{prefix}{spaced}{around}"), number.clone())
                })
        }

        proptest! {
            #![proptest_config(crate::proptest_config(3000))]

            #[test]
            fn arbitrary_text_is_refused_or_a_normalised_number(
                text in prop_oneof![any::<String>(), "[0-9ITitDEde \u{a0}]{0,16}"],
            ) {
                if let Ok(vat) = VatNumber::parse(&text) {
                    // Normalised: its own spelling, as stored, parses to itself.
                    let again = VatNumber::parse(vat.as_str());
                    prop_assert_eq!(again.as_ref().map(VatNumber::as_str), Ok(vat.as_str()));
                    prop_assert!(!vat.as_str().contains(char::is_whitespace));
                }
            }

            #[test]
            fn every_partita_iva_is_accepted_as_typed((typed, number) in partita_iva().prop_flat_map(as_typed)) {
                let vat = VatNumber::parse(&typed);
                prop_assert_eq!(vat.as_ref().map(VatNumber::as_str), Ok(number.as_str()), "{:?}", typed);
                prop_assert!(vat.is_ok_and(|v| v.is_italian()));
            }

            /// Any character for any digit, with or without the `IT` prefix. The prefix itself
            /// is left alone: foreign numbers are checked for shape only (DESIGN.md), so
            /// `IE00000000018`, one letter away from `IT00000000018`, is a valid Irish spelling.
            #[test]
            fn one_changed_character_is_refused(
                number in partita_iva(),
                prefixed in any::<bool>(),
                at in any::<prop::sample::Index>(),
                c in prop_oneof![any::<char>(), proptest::char::range('0', '9'), "[A-Z ]".prop_map(|s| s.chars().next().unwrap_or(' '))],
            ) {
                let typed = if prefixed { format!("IT{number}") } else { number };
                let mut chars: Vec<char> = typed.chars().collect();
                let at = chars.len() - 11 + at.index(11);
                let replaced = chars[at];
                prop_assume!(!c.eq_ignore_ascii_case(&replaced));
                chars[at] = c;
                let changed: String = chars.into_iter().collect();
                prop_assert!(VatNumber::parse(&changed).is_err(), "{:?} accepted", changed);
            }

            #[test]
            fn foreign_numbers_are_uppercased_without_spaces(
                prefix in prop::sample::select(&FOREIGN_PREFIXES[..]),
                number in "[A-Za-z0-9]{2,12}",
                lower in any::<bool>(),
            ) {
                let typed = if lower { format!("{} {number}", prefix.to_lowercase()) } else { format!("{prefix}{number}") };
                let vat = VatNumber::parse(&typed);
                let expected = format!("{prefix}{}", number.to_ascii_uppercase());
                prop_assert_eq!(vat.as_ref().map(VatNumber::as_str), Ok(expected.as_str()));
            }
        }

        #[test]
        fn the_generator_agrees_with_published_numbers() {
            for number in REAL {
                let digits: Vec<u8> = number.bytes().map(|b| b - b'0').collect();
                assert!(luhn_holds(&digits), "{number}");
            }
        }
    }
}
