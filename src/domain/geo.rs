//! Where an organisation is: its Italian province and its country.

use super::{codes, non_empty, wire_string, Invalid};

/// An Italian province by its two-letter code (`MI`, `MB`, `LO`), uppercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Province(String);

string_newtype!(Province);

/// The 107 province codes in use: the provinces, metropolitan cities, the Aosta Valley, the former
/// Friuli-Venezia Giulia provinces (still used as statistical units), and Sardinia's 2016 set
/// (`SU` for Sud Sardegna; `CI`, `VS`, `OG`, `OT` are gone). Sorted, for `binary_search`.
const PROVINCES: [&str; 107] = [
    "AG", "AL", "AN", "AO", "AP", "AQ", "AR", "AT", "AV", "BA", "BG", "BI", "BL", "BN", "BO", "BR",
    "BS", "BT", "BZ", "CA", "CB", "CE", "CH", "CL", "CN", "CO", "CR", "CS", "CT", "CZ", "EN", "FC",
    "FE", "FG", "FI", "FM", "FR", "GE", "GO", "GR", "IM", "IS", "KR", "LC", "LE", "LI", "LO", "LT",
    "LU", "MB", "MC", "ME", "MI", "MN", "MO", "MS", "MT", "NA", "NO", "NU", "OR", "PA", "PC", "PD",
    "PE", "PG", "PI", "PN", "PO", "PR", "PT", "PU", "PV", "PZ", "RA", "RC", "RE", "RG", "RI", "RM",
    "RN", "RO", "SA", "SI", "SO", "SP", "SR", "SS", "SU", "SV", "TA", "TE", "TN", "TO", "TP", "TR",
    "TS", "TV", "UD", "VA", "VB", "VC", "VE", "VI", "VR", "VT", "VV",
];

/// ISO 3166-1 alpha-2, all 249 officially assigned codes. Sorted, for `binary_search`.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Trims and uppercases a two-letter code, then looks it up, so both lists refuse alike.
fn parse_code(input: &str, what: &str, list: &[&str]) -> Result<String, Invalid> {
    let trimmed = non_empty(input, what)?;
    if trimmed.len() != 2 || !trimmed.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Invalid::new(
            codes::INVALID_FORMAT,
            format!("{what} is two letters"),
        ));
    }
    let upper = trimmed.to_ascii_uppercase();
    if list.binary_search(&upper.as_str()).is_ok() {
        Ok(upper)
    } else {
        Err(Invalid::new(
            codes::UNKNOWN_VALUE,
            format!("`{upper}` is not {what}"),
        ))
    }
}

impl Province {
    /// Accepts any case (`mi`, `Mi`), stores uppercase; unknown codes are refused.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        parse_code(input, "an Italian province code", &PROVINCES).map(Self)
    }
}

/// A regular expression that matches exactly the codes of `list` as `parse_code` takes them:
/// in any case, with the surrounding whitespace it trims; per first letter, a class of its
/// second letters (`[Aa][GgLlNn...]`). ECMA-262 and Python read it alike, so OpenAPI tools can
/// check it.
fn code_pattern(list: &[&str]) -> String {
    let mut groups: Vec<(u8, Vec<u8>)> = Vec::new();
    for code in list {
        let [first, second] = <[u8; 2]>::try_from(code.as_bytes()).unwrap_or([b'?'; 2]);
        match groups.last_mut() {
            Some((f, seconds)) if *f == first => seconds.push(second),
            _ => groups.push((first, vec![second])),
        }
    }
    let both = |b: u8| format!("{}{}", b as char, b.to_ascii_lowercase() as char);
    let alternatives: Vec<String> = groups
        .iter()
        .map(|(first, seconds)| {
            let seconds: String = seconds.iter().map(|&b| both(b)).collect();
            format!("[{}][{seconds}]", both(*first))
        })
        .collect();
    super::trimmed(&alternatives.join("|"))
}

/// The pattern of the codes [`Province::parse`] accepts (bodies and list filters alike).
pub fn province_pattern() -> String {
    code_pattern(&PROVINCES)
}

// The codes, in any case, as `parse` takes them (the same pattern as list filters).
wire_schema!(Province, wire_string().pattern(Some(province_pattern())));

/// A country as an ISO 3166-1 alpha-2 code, uppercase; addresses default to Italy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryCode(String);

string_newtype!(CountryCode);

impl CountryCode {
    /// Accepts any case (`it`, `De`), stores uppercase; unassigned codes are refused.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        parse_code(input, "an ISO 3166-1 alpha-2 country code", &COUNTRIES).map(Self)
    }

    /// Italy: the default country of an address (`address.country: null` resets to it).
    pub fn italy() -> Self {
        Self("IT".to_owned())
    }

    /// Italian addresses follow stricter rules (5-digit CAP, a province code).
    pub fn is_italy(&self) -> bool {
        self.0 == "IT"
    }
}

impl Default for CountryCode {
    /// Italy, since almost every organisation in a Lombardy registry is Italian.
    fn default() -> Self {
        Self::italy()
    }
}

// The assigned codes, in any case, as `parse` takes them.
wire_schema!(
    CountryCode,
    wire_string().pattern(Some(code_pattern(&COUNTRIES)))
);

#[cfg(test)]
mod tests {
    use super::*;

    fn strictly_sorted(list: &[&str]) -> bool {
        list.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn lists_are_sorted_unique_and_complete() {
        assert!(strictly_sorted(&PROVINCES));
        assert!(strictly_sorted(&COUNTRIES));
        assert_eq!(PROVINCES.len(), 107);
        assert_eq!(COUNTRIES.len(), 249);
        for code in PROVINCES.iter().chain(COUNTRIES.iter()) {
            assert_eq!(code.len(), 2);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn province_is_uppercased_and_trimmed() {
        for (input, expected) in [("mi", "MI"), ("Mb", "MB"), (" lo ", "LO"), ("SU", "SU")] {
            assert_eq!(
                Province::parse(input).expect("should be accepted").as_str(),
                expected
            );
        }
    }

    #[test]
    fn every_lombardy_province_is_known() {
        for code in [
            "BG", "BS", "CO", "CR", "LC", "LO", "MN", "MI", "MB", "PV", "SO", "VA",
        ] {
            assert!(Province::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn historic_and_unknown_provinces_are_refused() {
        for code in ["CI", "VS", "OG", "OT", "XX", "ZZ"] {
            assert_eq!(
                Province::parse(code).expect_err("should be refused").code,
                codes::UNKNOWN_VALUE,
                "{code}"
            );
        }
    }

    #[test]
    fn province_of_wrong_shape_is_a_format_error() {
        for input in ["M", "MIL", "M1", "Milano", "ÄÖ"] {
            assert_eq!(
                Province::parse(input).expect_err("should be refused").code,
                codes::INVALID_FORMAT,
                "{input}"
            );
        }
        assert_eq!(
            Province::parse(" ").expect_err("should be refused").code,
            codes::REQUIRED
        );
    }

    #[test]
    fn country_is_uppercased_and_checked() {
        assert_eq!(
            CountryCode::parse(" de ")
                .expect("should be accepted")
                .as_str(),
            "DE"
        );
        assert_eq!(
            CountryCode::parse("ch")
                .expect("should be accepted")
                .as_str(),
            "CH"
        );
        assert_eq!(
            CountryCode::parse("ax")
                .expect("should be accepted")
                .as_str(),
            "AX"
        );
        // Not assigned in ISO 3166-1 (EL and UK are other standards' codes for Greece and the UK).
        for code in ["EL", "UK", "XK", "EU", "ZZ"] {
            assert_eq!(
                CountryCode::parse(code)
                    .expect_err("should be refused")
                    .code,
                codes::UNKNOWN_VALUE,
                "{code}"
            );
        }
        assert_eq!(
            CountryCode::parse("ITA")
                .expect_err("should be refused")
                .code,
            codes::INVALID_FORMAT
        );
        assert_eq!(
            CountryCode::parse("").expect_err("should be refused").code,
            codes::REQUIRED
        );
    }

    #[test]
    fn italy_is_the_default() {
        assert_eq!(CountryCode::default(), CountryCode::italy());
        assert_eq!(CountryCode::default().as_str(), "IT");
        assert!(CountryCode::italy().is_italy());
        assert!(CountryCode::parse("it")
            .expect("should be accepted")
            .is_italy());
        assert!(!CountryCode::parse("FR")
            .expect("should be accepted")
            .is_italy());
    }

    #[test]
    fn the_province_pattern_admits_what_parse_accepts() {
        let pattern = regex::Regex::new(&province_pattern()).expect("a valid regex");
        let letters = ('A'..='Z').chain('a'..='z');
        for a in letters.clone() {
            for b in letters.clone() {
                let code = format!("{a}{b}");
                assert_eq!(
                    pattern.is_match(&code),
                    Province::parse(&code).is_ok(),
                    "{code}"
                );
            }
        }
        for other in ["", "M", "MIL", "M I", "M1", "XX"] {
            assert!(!pattern.is_match(other), "{other:?}");
        }
        // The surrounding whitespace `parse` trims is in the pattern too.
        for padded in [" MI", "MI\n", "\tmb "] {
            assert!(pattern.is_match(padded), "{padded:?}");
            assert!(Province::parse(padded).is_ok(), "{padded:?}");
        }
    }

    #[test]
    fn accessors_agree() {
        let province = Province::parse("mi").expect("should be accepted");
        assert_eq!(province.to_string(), "MI");
        assert_eq!(province.as_ref(), "MI");
        assert_eq!(province.into_inner(), "MI");
    }

    use crate::domain::wire_check::agree;

    #[test]
    fn code_schemas_are_the_stored_codes() {
        let pairs: Vec<String> = ('A'..='Z')
            .flat_map(|a| ('A'..='Z').map(move |b| format!("{a}{b}")))
            .chain(["mi".to_owned(), "M".to_owned()])
            .collect();
        agree::<Province>(
            &pairs,
            |s| Province::parse(s).ok().map(Province::into_inner),
            true,
            true,
        );
        agree::<CountryCode>(
            &pairs,
            |s| CountryCode::parse(s).ok().map(CountryCode::into_inner),
            true,
            true,
        );
    }
}
