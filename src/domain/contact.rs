//! How to reach an organisation: email, website and phone, checked pragmatically.
//!
//! The checks refuse what is certainly wrong (typos, pasted text, other URL schemes) without
//! trying to implement RFC 5322 or E.164 in full: a registry would rather hold a slightly odd
//! but real address than refuse it.

use super::{codes, non_empty, trimmed, wire_string, Invalid};

/// An email address, with its domain lowercased and its local part kept as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

string_newtype!(Email);

/// RFC 5321 §4.5.3.1: a path holds at most 256 octets, two of them the angle brackets.
pub const EMAIL_MAX: usize = 254;
/// RFC 5321 §4.5.3.1.1: the local part holds at most 64 octets.
const LOCAL_MAX: usize = 64;
/// RFC 1035 §2.3.4: a DNS label holds at most 63 octets.
const LABEL_MAX: usize = 63;

impl Email {
    /// Accepts `local@domain.tld`; the domain is case-insensitive, so it is lowercased.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = non_empty(input, "an email address")?;
        // The bound is on the address as sent, as the schema states it.
        if input.chars().count() > EMAIL_MAX {
            return Err(Invalid::new(
                codes::TOO_LONG,
                format!("an email address has at most {EMAIL_MAX} characters"),
            ));
        }
        let Some((local, domain)) = trimmed.split_once('@') else {
            return Err(format_error("an email address contains an @"));
        };
        if domain.contains('@') {
            return Err(format_error("an email address contains exactly one @"));
        }
        if local.is_empty() {
            return Err(format_error("an email address has something before its @"));
        }
        if local.chars().count() > LOCAL_MAX {
            return Err(Invalid::new(
                codes::TOO_LONG,
                format!("the part before the @ has at most {LOCAL_MAX} characters"),
            ));
        }
        if local.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format_error(
                "the part before the @ contains no spaces or control characters",
            ));
        }
        if !is_domain_name(domain) {
            return Err(format_error(
                "the part after the @ is a domain name such as example.com",
            ));
        }
        // Only the domain is case-insensitive (RFC 5321 §2.4); the local part belongs to the
        // receiving server, which may treat case as significant.
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
}

// One `@` between a local part of 1 to 64 characters, none of them space or control, and a
// domain name (`is_domain_name`). A pattern rather than `format: email`: a format reads the value
// as sent, so it would refuse the whitespace `parse` trims, and RFC 5322's shape is not this rule.
wire_schema!(
    Email,
    wire_string()
        .max_length(Some(EMAIL_MAX))
        .pattern(Some(trimmed(&format!(
            "[^@{ws}{control}]{{1,{LOCAL_MAX}}}@(?:{label}\\.)+{label}",
            ws = super::WHITESPACE_RANGES,
            control = super::CONTROL_RANGES,
            label = format!(
                "[A-Za-z0-9](?:[A-Za-z0-9-]{{0,{}}}[A-Za-z0-9])?",
                LABEL_MAX - 2
            ),
        ))))
);

/// At least two dot-separated labels of letters, digits and inner hyphens (RFC 1123 §2.1).
fn is_domain_name(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= LABEL_MAX
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn format_error(message: &str) -> Invalid {
    Invalid::new(codes::INVALID_FORMAT, message)
}

/// A website: an absolute `http` or `https` URL with a host, stored exactly as given (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Website(String);

string_newtype!(Website);

/// A common practical limit of browsers and servers for URLs.
pub const URL_MAX: usize = 2048;

impl Website {
    /// Checks with `url::Url` but keeps the caller's spelling, which re-serialising would change
    /// (`https://example.com` would come back with a trailing slash).
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = non_empty(input, "a website")?;
        // The bound is on the address as sent, as the schema states it.
        if input.chars().count() > URL_MAX {
            return Err(Invalid::new(
                codes::TOO_LONG,
                format!("a website address has at most {URL_MAX} characters"),
            ));
        }
        // The parser would silently drop tabs and newlines and percent-encode spaces; since the
        // string is stored as given, it must not hold what the parser would have rewritten.
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format_error(
                "a website address contains no spaces or control characters",
            ));
        }
        let url = url::Url::parse(trimmed)
            .map_err(|err| format_error(&format!("not a valid web address: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format_error(
                "a website address starts with http:// or https://",
            ));
        }
        // `Url` reads `http:example.com` and `https:\\example.com` as `http://example.com/`;
        // other clients would not, so the stored string must spell out `://` itself.
        let spells_authority = trimmed
            .get(url.scheme().len()..)
            .is_some_and(|rest| rest.starts_with("://"));
        if !spells_authority || url.host().is_none() {
            return Err(format_error(
                "a website address starts with http:// or https:// followed by a host name",
            ));
        }
        // A registry's website is public; credentials in it would be published with it.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format_error(
                "a website address contains no user name or password",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

// An http(s) URL with a host name (not an IP literal, which `parse` also takes) and an optional
// port, path, query and fragment of RFC 3986 characters. The last label starts with a letter:
// WHATWG URL parsing reads a host ending in a number as an IPv4 address. Labels hold single
// hyphens only, so no `xn--` label asks for a Punycode decoding that could fail. No `format:
// uri`: a format reads the value as sent, and would refuse the whitespace `parse` trims.
wire_schema!(
    Website,
    wire_string()
        .max_length(Some(URL_MAX))
        .pattern(Some(trimmed(concat!(
            r"https?://(?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\.)*[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*",
            r"(?::[0-9]{1,4})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?",
            r"(?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?(?:#[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?"
        ))))
);

/// A phone number as people write it (`+39 02 1234 5678`, `(02) 123-456`), kept as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

string_newtype!(Phone);

/// Fewer digits than this cannot be a reachable number, even a short Italian landline.
const PHONE_MIN_DIGITS: usize = 6;
/// ITU-T E.164: an international number has at most 15 digits.
const PHONE_MAX_DIGITS: usize = 15;

impl Phone {
    /// Accepts an optional leading `+`, then digits and the usual separators.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let trimmed = non_empty(input, "a phone number")?;
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')'))
        {
            return Err(format_error(
                "a phone number holds an optional leading +, digits, spaces, dots, dashes \
                 and parentheses",
            ));
        }
        let digits = body.bytes().filter(u8::is_ascii_digit).count();
        if digits < PHONE_MIN_DIGITS {
            return Err(Invalid::new(
                codes::TOO_SHORT,
                format!("a phone number has at least {PHONE_MIN_DIGITS} digits"),
            ));
        }
        if digits > PHONE_MAX_DIGITS {
            return Err(Invalid::new(
                codes::TOO_LONG,
                format!("a phone number has at most {PHONE_MAX_DIGITS} digits"),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

wire_schema!(
    Phone,
    wire_string().pattern(Some(trimmed(&format!(
        r"\+?[ .()-]*(?:[0-9][ .()-]*){{{PHONE_MIN_DIGITS},{PHONE_MAX_DIGITS}}}"
    ))))
);

#[cfg(test)]
mod tests {
    use super::*;

    fn email_code(input: &str) -> &'static str {
        Email::parse(input).expect_err("should be refused").code
    }

    fn website_code(input: &str) -> &'static str {
        Website::parse(input).expect_err("should be refused").code
    }

    fn phone_code(input: &str) -> &'static str {
        Phone::parse(input).expect_err("should be refused").code
    }

    #[test]
    fn email_domain_is_lowercased_local_part_kept() {
        let email = Email::parse("  Info.Desk+Hub@Example.COM \n").expect("should be accepted");
        assert_eq!(email.as_str(), "Info.Desk+Hub@example.com");
        assert_eq!(email.to_string(), "Info.Desk+Hub@example.com");
        assert_eq!(email.as_ref(), "Info.Desk+Hub@example.com");
        assert_eq!(email.into_inner(), "Info.Desk+Hub@example.com");
        assert!(Email::parse("a@b.co").is_ok());
        assert!(Email::parse("x@mail.my-hub.lombardia.it").is_ok());
        assert!(Email::parse("ufficio@1and1.it").is_ok());
    }

    #[test]
    fn email_length_bounds() {
        let domain = "@example.com"; // 12 characters
        let at_limit = format!("{}{}", "a".repeat(64), domain);
        assert!(Email::parse(&at_limit).is_ok());
        assert_eq!(
            email_code(&format!("{}{}", "a".repeat(65), domain)),
            codes::TOO_LONG
        );

        // 254 in all: a 64-character local part, then a domain of 189 characters.
        let long_domain = format!(
            "{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        let at_total_limit = format!("{}@{long_domain}", "a".repeat(64));
        assert_eq!(at_total_limit.len(), 254);
        assert!(Email::parse(&at_total_limit).is_ok());
        let over_total = format!("{}@{long_domain}x", "a".repeat(64));
        assert_eq!(email_code(&over_total), codes::TOO_LONG);
    }

    #[test]
    fn email_shape_is_checked() {
        for input in [
            "no-at-sign.example.com",
            "two@@example.com",
            "a@b@example.com",
            "@example.com",
            "some one@example.com",
            "tab\there@example.com",
            "user@localhost",
            "user@example..com",
            "user@.example.com",
            "user@example.com.",
            "user@-example.com",
            "user@example-.com",
            "user@exa_mple.com",
            "user@exämple.com",
            "user@example .com",
            "user@",
        ] {
            assert_eq!(email_code(input), codes::INVALID_FORMAT, "{input}");
        }
        let long_label = format!("user@{}.com", "x".repeat(64));
        assert_eq!(email_code(&long_label), codes::INVALID_FORMAT);
        assert_eq!(email_code("   "), codes::REQUIRED);
    }

    #[test]
    fn website_keeps_the_given_spelling() {
        for input in [
            "https://example.com",
            "http://www.assolombarda.it",
            "HTTPS://Example.com/Path?q=1#top",
            "https://example.com:8443/a/b/",
            "https://192.0.2.10/",
        ] {
            assert_eq!(
                Website::parse(input).expect("should be accepted").as_str(),
                input
            );
        }
        let trimmed = Website::parse("  https://example.com/x  ").expect("should be accepted");
        assert_eq!(trimmed.as_str(), "https://example.com/x");
        assert_eq!(trimmed.into_inner(), "https://example.com/x");
    }

    #[test]
    fn website_refuses_other_schemes_and_missing_hosts() {
        for input in [
            "ftp://example.com",
            "mailto:info@example.com",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "example.com",
            "www.example.com",
            "http://",
            "https://",
            "http:example.com",
            "https:/example.com",
            "https:\\\\example.com",
            "https://exa mple.com",
            "https://example.com/a b",
            "https://example.com/\ttab",
            "https://user:secret@example.com",
            "https://user@example.com",
        ] {
            assert_eq!(website_code(input), codes::INVALID_FORMAT, "{input}");
        }
        assert_eq!(website_code(""), codes::REQUIRED);
    }

    #[test]
    fn website_length_bound() {
        let prefix = "https://example.com/";
        let at_limit = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
        assert!(Website::parse(&at_limit).is_ok());
        let over = format!("{at_limit}a");
        assert_eq!(website_code(&over), codes::TOO_LONG);
    }

    #[test]
    fn phone_is_kept_as_written() {
        for input in [
            "+39 02 1234 5678",
            "02.1234.5678",
            "(02) 123-456",
            "123456",
            "+123456789012345",
        ] {
            assert_eq!(
                Phone::parse(input).expect("should be accepted").as_str(),
                input
            );
        }
        let phone = Phone::parse("  +39 02 123456  ").expect("should be accepted");
        assert_eq!(phone.to_string(), "+39 02 123456");
        assert_eq!(phone.as_ref(), "+39 02 123456");
        assert_eq!(phone.into_inner(), "+39 02 123456");
    }

    #[test]
    fn phone_digit_bounds() {
        assert_eq!(phone_code("12345"), codes::TOO_SHORT);
        assert_eq!(phone_code("+1 (2) 3-4.5"), codes::TOO_SHORT);
        assert_eq!(phone_code("+"), codes::TOO_SHORT);
        assert!(Phone::parse("123 456").is_ok());
        assert!(Phone::parse("1234 5678 9012 345").is_ok());
        assert_eq!(phone_code("1234 5678 9012 3456"), codes::TOO_LONG);
    }

    #[test]
    fn phone_refuses_other_characters() {
        for input in [
            "02 1234 5678 ext. 3",
            "++39 02 123456",
            "39+ 02 123456",
            "02/123456",
            "phone: 02123456",
            "٠٢١٢٣٤٥٦٧",
        ] {
            assert_eq!(phone_code(input), codes::INVALID_FORMAT, "{input}");
        }
        assert_eq!(phone_code("\t"), codes::REQUIRED);
    }

    use crate::domain::wire_check::{agree, samples};

    #[test]
    fn phone_schema_agrees_with_parse() {
        let phones = samples(
            &['+', '3', '9', '0', ' ', '.', '-', '(', ')', 'x'],
            18,
            50_000,
            &["+39 02 1234 5678"],
        );
        agree::<Phone>(
            &phones,
            |s| Phone::parse(s).ok().map(Phone::into_inner),
            true,
            true,
        );
    }

    #[test]
    fn email_schema_agrees_with_parse() {
        let emails = samples(
            &[
                'a', 'Z', '0', '-', '.', '@', ' ', '\u{a0}', '\u{1c}', 'é', '_', '+',
            ],
            14,
            50_000,
            &[
                "info@example.com",
                " a.b+c@sub.example.it\t",
                "a@b",
                "@b.it",
                "a@@b.it",
                "a@-b.it",
                "a b@c.it",
            ],
        );
        let long_local = format!("{}@example.com", "a".repeat(LOCAL_MAX + 1));
        let long_label = format!("a@{}.it", "b".repeat(LABEL_MAX + 1));
        let mut emails = emails;
        emails.extend([long_local, long_label]);
        agree::<Email>(
            &emails,
            |s| Email::parse(s).ok().map(Email::into_inner),
            true,
            true,
        );
    }

    #[test]
    fn website_schema_allows_only_what_parse_accepts() {
        let tails = samples(
            &[
                'a', 'Z', '0', '-', '.', '/', ':', '?', '#', '%', '@', '\'', '[', ' ', 'é', '1',
            ],
            14,
            50_000,
            &[
                "example.com",
                "a.b-c.it/x?y=1#z",
                "localhost:8080",
                "1.2.3.4",
                "a.1",
            ],
        );
        let urls: Vec<String> = tails
            .iter()
            .flat_map(|t| [format!("http://{t}"), format!("https://{t}")])
            .collect();
        agree::<Website>(
            &urls,
            |s| Website::parse(s).ok().map(Website::into_inner),
            true,
            false,
        );
    }
}
