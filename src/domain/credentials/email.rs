//! Email addresses as accounts give them: one `@`, a local part and a
//! domain as SMTP carries them unquoted (RFC 5321's dot-atom, ASCII; an
//! international domain in its `xn--` form), at most 254 characters.
//!
//! Addresses are compared by their lower-cased form, the whole address and
//! not only its domain (RFC 5321 lets a server tell `Ada` from `ada` in the
//! local part; no mail provider people use does, and treating them as two
//! addresses would let one mailbox verify two accounts).

use super::super::error::FieldViolation;

/// A syntactically valid address, with the form it is compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    address: String,
    normalized: String,
}

impl EmailAddress {
    /// RFC 5321's limit on a forward path, less its angle brackets.
    pub const MAX_CHARS: usize = 254;
    /// RFC 5321's limit on a local part.
    const MAX_LOCAL_CHARS: usize = 64;

    /// Trims `raw` and checks it; refused addresses get a violation of the
    /// field `email`, reason `INVALID_EMAIL`.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let invalid = |description: &str| FieldViolation {
            field: "email",
            reason: "INVALID_EMAIL",
            description: description.to_owned(),
        };
        let address = raw.trim();
        if address.is_empty() {
            return Err(invalid("email is required"));
        }
        if address.len() > Self::MAX_CHARS {
            return Err(invalid("email must be at most 254 characters long"));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(invalid("email must have the form name@domain"));
        };
        if local.is_empty() || local.len() > Self::MAX_LOCAL_CHARS || !is_dot_atom(local) {
            return Err(invalid(
                "email's part before the @ must be 1 to 64 letters, digits, dots or \
                 !#$%&'*+-/=?^_`{|}~, without leading, trailing or double dots",
            ));
        }
        if !is_domain(domain) {
            return Err(invalid(
                "email's domain must be a host name with a dot (or localhost): letters, \
                 digits and hyphens",
            ));
        }
        Ok(Self {
            address: address.to_owned(),
            normalized: address.to_ascii_lowercase(),
        })
    }

    /// The address as given (trimmed): what mail is sent to.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The lower-cased address: what decides whether two are one.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// RFC 5322's dot-atom: atoms of `atext` joined by single dots.
fn is_dot_atom(text: &str) -> bool {
    text.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte))
    })
}

/// A host name with at least two labels, or `localhost`: labels of 1 to 63
/// letters, digits and hyphens, not starting or ending with a hyphen.
fn is_domain(domain: &str) -> bool {
    if domain.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_compared_in_lower_case() {
        let address = EmailAddress::parse("  Ada.Lovelace+authd@Example.COM ").unwrap();
        assert_eq!(address.as_str(), "Ada.Lovelace+authd@Example.COM");
        assert_eq!(address.normalized(), "ada.lovelace+authd@example.com");
        assert_eq!(
            EmailAddress::parse("root@localhost").unwrap().normalized(),
            "root@localhost"
        );
    }

    #[test]
    fn anything_that_is_not_one_plain_address_is_refused() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@b@example.com",
            "ada lovelace@example.com",
            "ada@exa mple.com",
            "ada\n@example.com",
            "ada@example.com\r\nBcc: eve@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "a..da@example.com",
            "ada@-example.com",
            "ada@example..com",
            "ada@example.com.",
            "\"ada\"@example.com",
            "adä@example.com",
            "ada@exämple.com",
            "<ada@example.com>",
            "Ada <ada@example.com>",
            long_local.as_str(),
            long.as_str(),
        ] {
            let violation = EmailAddress::parse(bad).unwrap_err();
            assert_eq!(violation.field, "email", "{bad:?}");
            assert_eq!(violation.reason, "INVALID_EMAIL", "{bad:?}");
        }
    }

    #[test]
    fn the_longest_addresses_pass() {
        let local = "a".repeat(64);
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        let address = format!("{local}@{domain}");
        assert_eq!(address.len(), 254);
        assert!(EmailAddress::parse(&address).is_ok());
    }
}
