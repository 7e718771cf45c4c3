//! Free-text values with a shape: organisation names, tags, ATECO codes and postal codes.

use std::collections::HashSet;

use super::{
    codes, non_empty, trimmed, wire_string, CountryCode, Invalid, CONTROL_RANGES,
    NON_SPACE_CONTROL_RANGES, WHITESPACE_RANGES,
};

/// An organisation's name: 2 to 200 characters, single-spaced, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

string_newtype!(Name);

impl Name {
    /// The fewest characters a name may have; one letter names nothing.
    pub const MIN_CHARS: usize = 2;
    /// The most characters a name may have, counted as characters, not bytes.
    pub const MAX_CHARS: usize = 200;

    /// Collapses every run of whitespace (tabs and newlines from pasted text included) to one
    /// space, so that names differing only in spacing are the same name.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        // The bound is on the name as sent, as the schema states it: collapsing only shortens.
        if input.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                codes::TOO_LONG,
                format!("a name has at most {} characters", Self::MAX_CHARS),
            ));
        }
        let collapsed = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Err(Invalid::new(codes::REQUIRED, "a name is required"));
        }
        if collapsed.chars().any(char::is_control) {
            return Err(Invalid::new(
                codes::INVALID_FORMAT,
                "a name contains no control characters",
            ));
        }
        let length = collapsed.chars().count();
        if length < Self::MIN_CHARS {
            return Err(Invalid::new(
                codes::TOO_SHORT,
                format!("a name has at least {} characters", Self::MIN_CHARS),
            ));
        }
        Ok(Self(collapsed))
    }
}

// At least two characters that are neither space nor control, and no control character that
// is not space (spaces collapse, so they never make a name too long; the length bound is on
// the text as sent, which collapsing only shortens).
wire_schema!(
    Name,
    wire_string()
        .min_length(Some(Name::MIN_CHARS))
        .max_length(Some(Name::MAX_CHARS))
        .pattern(Some(format!(
            "^[^{NON_SPACE_CONTROL_RANGES}]*[^{CONTROL_RANGES}{WHITESPACE_RANGES}][^{NON_SPACE_CONTROL_RANGES}]*[^{CONTROL_RANGES}{WHITESPACE_RANGES}][^{NON_SPACE_CONTROL_RANGES}]*$"
        )))
);

/// A free label on an organisation (`synthetic`, `oncology hub`), case kept as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag(String);

string_newtype!(Tag);

impl Tag {
    /// The most characters a tag may have.
    pub const MAX_CHARS: usize = 50;

    /// Refuses `;`, since CSV exports and imports join a record's tags with it.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = non_empty(input, "a tag")?;
        // The bound is on the tag as sent, as the schema states it.
        if input.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                codes::TOO_LONG,
                format!("a tag has at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(|c| c == ';' || c.is_control()) {
            return Err(Invalid::new(
                codes::INVALID_FORMAT,
                "a tag contains no `;` and no control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

// No `;` and no control character; not blank.
wire_schema!(
    Tag,
    wire_string()
        .min_length(Some(1))
        .max_length(Some(Tag::MAX_CHARS))
        .pattern(Some(trimmed(&format!(
            "[^;{CONTROL_RANGES}{WHITESPACE_RANGES}](?:[^;{CONTROL_RANGES}]*[^;{CONTROL_RANGES}{WHITESPACE_RANGES}])?"
        ))))
);

/// Who ranks a university (`QS World University Rankings`): 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankingSource(String);

string_newtype!(RankingSource);

impl RankingSource {
    /// The most characters a source may have.
    pub const MAX_CHARS: usize = 100;

    /// Refuses `:` and `;`: CSV exports and imports join a ranking's members with `:` and a
    /// university's rankings with `;`, so a source holding either could not be read back.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = input.trim();
        // The bound is on the source as sent, as the schema states it.
        if trimmed.is_empty() || input.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                codes::INVALID_FORMAT,
                format!("1 to {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.contains([':', ';', '\0']) {
            return Err(Invalid::new(
                codes::INVALID_FORMAT,
                "a ranking's source contains no `:`, `;` or NUL",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

// Not blank, no `:`, `;` or NUL (PostgreSQL text cannot hold it).
wire_schema!(
    RankingSource,
    wire_string()
        .min_length(Some(1))
        .max_length(Some(RankingSource::MAX_CHARS))
        .pattern(Some(trimmed(&format!(
            "[^:;\\x00{WHITESPACE_RANGES}](?:[^:;\\x00]*[^:;\\x00{WHITESPACE_RANGES}])?"
        ))))
);

/// The most tags one record may carry; keeps CSV cells and filter indexes small.
pub const MAX_TAGS: usize = 30;

/// Validates a record's tag list; the error carries the index of the offending element.
///
/// Tags that differ only in case are duplicates (a filter on `Oncology` must not miss
/// `oncology`), and the first spelling given is the one kept.
pub fn tags(input: &[String]) -> Result<Vec<Tag>, (usize, Invalid)> {
    if input.len() > MAX_TAGS {
        return Err((
            MAX_TAGS,
            Invalid::new(
                codes::OUT_OF_RANGE,
                format!("a record has at most {MAX_TAGS} tags"),
            ),
        ));
    }
    let mut seen = HashSet::with_capacity(input.len());
    let mut out = Vec::with_capacity(input.len());
    for (index, raw) in input.iter().enumerate() {
        let tag = Tag::parse(raw).map_err(|invalid| (index, invalid))?;
        if !seen.insert(tag.as_str().to_lowercase()) {
            return Err((
                index,
                Invalid::new(
                    codes::DUPLICATE_VALUE,
                    format!("the tag `{tag}` is already in the list (case is ignored)"),
                ),
            ));
        }
        out.push(tag);
    }
    Ok(out)
}

/// An ATECO 2007/2025 activity code (`21`, `21.2`, `21.20`, `26.60.0`, `26.60.02`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtecoCode(String);

string_newtype!(AtecoCode);

impl AtecoCode {
    /// Accepts a division, group, class, category or subcategory, dot-separated as ISTAT writes it.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = non_empty(input, "an ATECO code")?;
        let parts: Vec<&str> = trimmed.split('.').collect();
        let well_formed = match parts.as_slice() {
            [division] => digits(division, 2..=2),
            [division, rest] => digits(division, 2..=2) && digits(rest, 1..=2),
            [division, class, rest] => {
                digits(division, 2..=2) && digits(class, 2..=2) && digits(rest, 1..=2)
            }
            _ => false,
        };
        if well_formed {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(Invalid::new(
                codes::INVALID_FORMAT,
                "an ATECO code is NN, NN.N, NN.NN, NN.NN.N or NN.NN.NN (e.g. 21.20)",
            ))
        }
    }
}

wire_schema!(
    AtecoCode,
    wire_string().pattern(Some(trimmed(
        r"[0-9]{2}(?:\.[0-9]{1,2}|\.[0-9]{2}\.[0-9]{1,2})?"
    )))
);

/// Whether `part` is all ASCII digits with a length in `len`.
fn digits(part: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit())
}

/// A postal code, checked against its address's country: an Italian CAP is 5 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostalCode(String);

string_newtype!(PostalCode);

/// Shortest and longest foreign postal codes: covers every national format in use.
const FOREIGN_POSTAL_LEN: std::ops::RangeInclusive<usize> = 2..=12;

impl PostalCode {
    /// Needs the country because the rule depends on it; foreign codes are uppercased
    /// (`sw1a 1aa` -> `SW1A 1AA`) since letters in postal codes are conventionally capitals.
    pub fn parse(input: &str, country: &CountryCode) -> Result<Self, Invalid> {
        let trimmed = non_empty(input, "a postal code")?;
        if country.is_italy() {
            return if digits(trimmed, 5..=5) {
                Ok(Self(trimmed.to_owned()))
            } else {
                Err(Invalid::new(
                    codes::INVALID_FORMAT,
                    "an Italian postal code (CAP) has exactly 5 digits",
                ))
            };
        }
        if !trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
        {
            return Err(Invalid::new(
                codes::INVALID_FORMAT,
                "a postal code holds letters, digits, spaces and dashes",
            ));
        }
        // Only ASCII is left, so bytes are characters.
        if trimmed.len() < *FOREIGN_POSTAL_LEN.start() {
            return Err(Invalid::new(
                codes::TOO_SHORT,
                format!(
                    "a postal code has at least {} characters",
                    FOREIGN_POSTAL_LEN.start()
                ),
            ));
        }
        if trimmed.len() > *FOREIGN_POSTAL_LEN.end() {
            return Err(Invalid::new(
                codes::TOO_LONG,
                format!(
                    "a postal code has at most {} characters",
                    FOREIGN_POSTAL_LEN.end()
                ),
            ));
        }
        Ok(Self(trimmed.to_ascii_uppercase()))
    }
}

// Either rule: 5 digits (Italy) or the foreign shape, which includes it. Which one applies
// depends on the address's country, which a schema of this member alone cannot see.
wire_schema!(
    PostalCode,
    wire_string().pattern(Some(trimmed(&format!(
        "[A-Za-z0-9-][A-Za-z0-9 -]{{{},{}}}[A-Za-z0-9-]",
        FOREIGN_POSTAL_LEN.start() - 2,
        FOREIGN_POSTAL_LEN.end() - 2
    ))))
);

/// A request's id, as `X-Request-Id` carries it and the audit trail records it: 1 to 128
/// letters, digits, `.`, `_` and `-`, as sent (a header is not trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

string_newtype!(RequestId);

impl RequestId {
    /// The most characters an id may have.
    pub const MAX_CHARS: usize = 128;

    /// Exactly the ids the service echoes (any other `X-Request-Id` is replaced by one of its
    /// own).
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let well_formed = (1..=Self::MAX_CHARS).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if well_formed {
            Ok(Self(input.to_owned()))
        } else {
            Err(Invalid::new(
                codes::INVALID_FORMAT,
                format!(
                    "a request id is 1 to {} letters, digits, `.`, `_` and `-`",
                    Self::MAX_CHARS
                ),
            ))
        }
    }
}

wire_schema!(
    RequestId,
    wire_string().pattern(Some(format!(
        "^[A-Za-z0-9._-]{{1,{}}}$",
        RequestId::MAX_CHARS
    )))
);

#[cfg(test)]
mod tests {
    use super::*;

    fn name_code(input: &str) -> &'static str {
        Name::parse(input).expect_err("should be refused").code
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn name_is_trimmed_and_single_spaced() {
        let name = Name::parse("  Istituto   Ortopedico\tGaleazzi \n").expect("should be accepted");
        assert_eq!(name.as_str(), "Istituto Ortopedico Galeazzi");
        assert_eq!(name.to_string(), "Istituto Ortopedico Galeazzi");
        assert_eq!(name.as_ref(), "Istituto Ortopedico Galeazzi");
        assert_eq!(name.into_inner(), "Istituto Ortopedico Galeazzi");
        assert_eq!(
            Name::parse("Human\u{a0}\u{a0}Technopole")
                .expect("should be accepted")
                .as_str(),
            "Human Technopole"
        );
    }

    #[test]
    fn name_length_bounds_count_characters() {
        assert_eq!(name_code("   "), codes::REQUIRED);
        assert_eq!(name_code(""), codes::REQUIRED);
        assert_eq!(name_code("A"), codes::TOO_SHORT);
        assert_eq!(name_code("  é  "), codes::TOO_SHORT);
        assert_eq!(
            Name::parse("AB").expect("should be accepted").as_str(),
            "AB"
        );
        // Two characters, four bytes: accepted, since the bound is on characters.
        assert_eq!(
            Name::parse("èà").expect("should be accepted").as_str(),
            "èà"
        );
        // Collapsing happens before counting: "A  B" is three characters.
        assert_eq!(
            Name::parse("A     B").expect("should be accepted").as_str(),
            "A B"
        );

        let at_max = "è".repeat(200);
        assert_eq!(
            Name::parse(&at_max).expect("should be accepted").as_str(),
            at_max
        );
        assert_eq!(name_code(&"è".repeat(201)), codes::TOO_LONG);
        assert_eq!(
            name_code(&format!("  {}  ", "a".repeat(201))),
            codes::TOO_LONG
        );
        // The bound is on the name as sent, as the schema's maxLength states it.
        assert_eq!(
            name_code(&format!("  {}  ", "a".repeat(198))),
            codes::TOO_LONG
        );
        assert!(Name::parse(&format!("  {}  ", "a".repeat(196))).is_ok());
    }

    #[test]
    fn name_refuses_control_characters() {
        assert_eq!(name_code("Bad\u{0}Name"), codes::INVALID_FORMAT);
        assert_eq!(name_code("Bad\u{7}Name"), codes::INVALID_FORMAT);
        assert_eq!(name_code("Bad\u{9b}Name"), codes::INVALID_FORMAT);
    }

    #[test]
    fn tag_keeps_case_and_checks_bounds() {
        let tag = Tag::parse("  Oncology Hub ").expect("should be accepted");
        assert_eq!(tag.as_str(), "Oncology Hub");
        assert_eq!(tag.to_string(), "Oncology Hub");
        assert_eq!(tag.as_ref(), "Oncology Hub");
        assert_eq!(tag.into_inner(), "Oncology Hub");
        assert_eq!(Tag::parse("x").expect("should be accepted").as_str(), "x");
        assert_eq!(
            Tag::parse(&"ü".repeat(50))
                .expect("should be accepted")
                .as_str(),
            "ü".repeat(50)
        );
        assert_eq!(
            Tag::parse(&"ü".repeat(51))
                .expect_err("should be refused")
                .code,
            codes::TOO_LONG
        );
        assert_eq!(
            Tag::parse(" ").expect_err("should be refused").code,
            codes::REQUIRED
        );
    }

    #[test]
    fn tag_refuses_semicolon_and_control_characters() {
        for input in ["a;b", ";", "tab\there", "new\nline"] {
            assert_eq!(
                Tag::parse(input).expect_err("should be refused").code,
                codes::INVALID_FORMAT,
                "{input}"
            );
        }
    }

    #[test]
    fn tags_accepts_up_to_thirty() {
        assert!(tags(&[]).expect("should be accepted").is_empty());
        let thirty: Vec<String> = (0..30).map(|i| format!("tag {i}")).collect();
        let parsed = tags(&thirty).expect("should be accepted");
        assert_eq!(parsed.len(), 30);
        assert_eq!(parsed[29].as_str(), "tag 29");

        let thirty_one: Vec<String> = (0..31).map(|i| format!("tag {i}")).collect();
        let (index, invalid) = tags(&thirty_one).expect_err("should be refused");
        assert_eq!(index, 30);
        assert_eq!(invalid.code, codes::OUT_OF_RANGE);
    }

    #[test]
    fn tags_reports_the_index_of_a_bad_element() {
        let (index, invalid) =
            tags(&strings(&["ok", "also ok", "bad;tag"])).expect_err("should be refused");
        assert_eq!((index, invalid.code), (2, codes::INVALID_FORMAT));
        let (index, invalid) = tags(&strings(&["  "])).expect_err("should be refused");
        assert_eq!((index, invalid.code), (0, codes::REQUIRED));
    }

    #[test]
    fn tags_refuses_duplicates_ignoring_case_and_spacing_around() {
        let (index, invalid) =
            tags(&strings(&["Oncology", "biotech", " oncology "])).expect_err("should be refused");
        assert_eq!((index, invalid.code), (2, codes::DUPLICATE_VALUE));
        let (index, invalid) = tags(&strings(&["ÄRZTE", "ärzte"])).expect_err("should be refused");
        assert_eq!((index, invalid.code), (1, codes::DUPLICATE_VALUE));
        let kept = tags(&strings(&[" MIND ", "synthetic"])).expect("should be accepted");
        assert_eq!(kept[0].as_str(), "MIND");
    }

    #[test]
    fn ateco_accepts_every_level() {
        for input in ["21", "21.2", "21.20", "26.60.0", "26.60.02", " 72.19.09 "] {
            assert_eq!(
                AtecoCode::parse(input)
                    .expect("should be accepted")
                    .as_str(),
                input.trim(),
                "{input}"
            );
        }
        let code = AtecoCode::parse("21.20").expect("should be accepted");
        assert_eq!(code.to_string(), "21.20");
        assert_eq!(code.as_ref(), "21.20");
        assert_eq!(code.into_inner(), "21.20");
    }

    #[test]
    fn ateco_refuses_other_shapes() {
        for input in [
            "2",
            "212",
            "21.",
            ".21",
            "21.200",
            "21..20",
            "21.20.",
            "21.20.021",
            "21.2.02",
            "21.20.02.1",
            "2a.20",
            "21,20",
            "21 20",
            "C.21.20",
        ] {
            assert_eq!(
                AtecoCode::parse(input).expect_err("should be refused").code,
                codes::INVALID_FORMAT,
                "{input}"
            );
        }
        assert_eq!(
            AtecoCode::parse("").expect_err("should be refused").code,
            codes::REQUIRED
        );
    }

    #[test]
    fn italian_cap_is_exactly_five_digits() {
        let italy = CountryCode::italy();
        assert_eq!(
            PostalCode::parse(" 20157 ", &italy)
                .expect("should be accepted")
                .as_str(),
            "20157"
        );
        assert_eq!(
            PostalCode::parse("00100", &italy)
                .expect("should be accepted")
                .as_str(),
            "00100"
        );
        for input in ["2015", "201570", "2O157", "20 157", "I-20157"] {
            assert_eq!(
                PostalCode::parse(input, &italy)
                    .expect_err("should be refused")
                    .code,
                codes::INVALID_FORMAT,
                "{input}"
            );
        }
        assert_eq!(
            PostalCode::parse("", &italy)
                .expect_err("should be refused")
                .code,
            codes::REQUIRED
        );
    }

    #[test]
    fn foreign_postal_code_is_uppercased_and_bounded() {
        let uk = CountryCode::parse("GB").expect("should be accepted");
        let code = PostalCode::parse(" sw1a 1aa ", &uk).expect("should be accepted");
        assert_eq!(code.as_str(), "SW1A 1AA");
        assert_eq!(code.to_string(), "SW1A 1AA");
        assert_eq!(code.as_ref(), "SW1A 1AA");
        assert_eq!(code.into_inner(), "SW1A 1AA");

        let pt = CountryCode::parse("PT").expect("should be accepted");
        assert_eq!(
            PostalCode::parse("1000-001", &pt)
                .expect("should be accepted")
                .as_str(),
            "1000-001"
        );
        assert_eq!(
            PostalCode::parse("12", &pt)
                .expect("should be accepted")
                .as_str(),
            "12"
        );
        assert_eq!(
            PostalCode::parse("123456789012", &pt)
                .expect("should be accepted")
                .as_str(),
            "123456789012"
        );
        assert_eq!(
            PostalCode::parse("1", &pt)
                .expect_err("should be refused")
                .code,
            codes::TOO_SHORT
        );
        assert_eq!(
            PostalCode::parse("1234567890123", &pt)
                .expect_err("should be refused")
                .code,
            codes::TOO_LONG
        );
        for input in ["1000_001", "SW1A/1AA", "12345é", "AB\t12"] {
            assert_eq!(
                PostalCode::parse(input, &pt)
                    .expect_err("should be refused")
                    .code,
                codes::INVALID_FORMAT,
                "{input}"
            );
        }
    }

    use crate::domain::wire_check::{agree, allows, samples};

    const TRICKY: &[char] = &[
        'a', 'Z', 'é', '0', ' ', '\t', '\n', '\u{0}', '\u{1c}', '\u{7f}', '\u{85}', '\u{a0}',
        '\u{2003}', ';', '-', '.',
    ];

    #[test]
    fn name_schema_agrees_with_parse() {
        let extra = ["ab", "a b", "a\tb", "a", " ab", "a\u{1c}b", "a\u{85}b"];
        let names = samples(TRICKY, 6, 20_000, &extra);
        agree::<Name>(
            &names,
            |s| Name::parse(s).ok().map(Name::into_inner),
            true,
            true,
        );
        assert!(allows::<Name>(&"é".repeat(200)));
        assert!(!allows::<Name>(&"é".repeat(201)));
    }

    #[test]
    fn ranking_source_schema_agrees_with_parse() {
        let sources = samples(TRICKY, 5, 20_000, &["QS", "QS: World", "a;b", " ", ":"]);
        agree::<RankingSource>(
            &sources,
            |s| RankingSource::parse(s).ok().map(RankingSource::into_inner),
            true,
            true,
        );
        assert!(RankingSource::parse(" QS World University Rankings ").is_ok());
        assert!(RankingSource::parse("QS: World").is_err());
        assert!(RankingSource::parse("QS;THE").is_err());
    }

    #[test]
    fn tag_schema_agrees_with_parse() {
        let tags = samples(TRICKY, 5, 20_000, &["x", "a b", "a;b", " "]);
        agree::<Tag>(
            &tags,
            |s| Tag::parse(s).ok().map(Tag::into_inner),
            true,
            true,
        );
    }

    #[test]
    fn ateco_schema_agrees_with_parse() {
        let codes = samples(
            &['2', '1', '.', '0', 'a', ' '],
            9,
            20_000,
            &["21.20", "26.60.02"],
        );
        agree::<AtecoCode>(
            &codes,
            |s| AtecoCode::parse(s).ok().map(AtecoCode::into_inner),
            true,
            true,
        );
    }

    #[test]
    fn postal_code_schema_is_the_foreign_rule_and_holds_the_italian_one() {
        let foreign = CountryCode::parse("DE").expect("DE");
        let codes = samples(
            &['1', 'a', 'B', ' ', '-', '_', 'é'],
            13,
            20_000,
            &["20121", "SW1A 1AA"],
        );
        let parse = |s: &str| {
            PostalCode::parse(s, &foreign)
                .ok()
                .map(PostalCode::into_inner)
        };
        agree::<PostalCode>(&codes, parse, true, true);
        let italian = |s: &str| {
            PostalCode::parse(s, &CountryCode::italy())
                .ok()
                .map(PostalCode::into_inner)
        };
        agree::<PostalCode>(&codes, italian, false, true);
    }
}
