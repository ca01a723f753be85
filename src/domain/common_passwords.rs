//! The most common passwords, which authd refuses as new passwords (OWASP
//! ASVS 5 and NIST SP 800-63B: check new passwords against a list of
//! commonly used ones, instead of imposing composition rules).
//!
//! `common_passwords.txt` holds 21,640 passwords of at least 8 characters,
//! one a line, lowercased, most common first. It merges two rank-ordered
//! lists published in registry packages:
//!
//! - `@zxcvbn-ts/language-common` 4.1.3 (npm, MIT), `src/passwords.json`:
//!   the passwords that occur more than 10 times in the xato.net ten million
//!   password leak, by frequency (49,233 entries, 17,950 of 8+ characters).
//!   zxcvbn left out passwords that its own pattern matchers already rate
//!   as weak (repeats such as `aaaaaaaa`, sequences such as `87654321`),
//!   which is why it is not used alone.
//! - Django 5.2.19 (PyPI, BSD-3-Clause),
//!   `django/contrib/auth/common-passwords.txt.gz`: Royce Williams' 20,000
//!   most common passwords, by frequency (19,640 entries, 8,346 of 8+
//!   characters once eight runs of mojibake, "пїѕ" repeated, are left out).
//!
//! Each entry was NFKC-normalized and lowercased, entries shorter than
//! [`Password::MIN_CHARS`](super::Password::MIN_CHARS) were dropped (authd
//! refuses those anyway), and the two lists were interleaved by rank (the
//! first of one, the first of the other, the second of one, ...) with
//! repeats dropped. Their licenses are in `THIRD-PARTY-NOTICES.md`, which
//! ships with the binary.

use std::collections::HashSet;
use std::sync::LazyLock;

use zeroize::Zeroizing;

/// One password a line, lowercase, most common first.
const LIST: &str = include_str!("common_passwords.txt");

/// Built on first use, so that processes that never register anybody never
/// pay for it.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| LIST.lines().collect());

/// Whether `password` is one of the most common passwords, in any letter
/// case: guessing tools try each entry's case variants, so `PassWord1`
/// falls as fast as `password1`.
///
/// Callers pass the password NFKC-normalized, as it will be hashed. Only new
/// passwords are checked: a password chosen before the list existed or grew
/// must still let its owner log in.
pub fn is_common(password: &str) -> bool {
    // A copy of a secret: wiped once compared.
    let folded = Zeroizing::new(password.to_lowercase());
    COMMON.contains(folded.as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use unicode_normalization::UnicodeNormalization;

    use super::*;
    use crate::domain::Password;

    #[test]
    fn the_most_common_passwords_are_common_in_any_case() {
        for password in [
            "password",
            "PassWord",
            "PASSWORD",
            "12345678",
            "qwertyuiop",
            "QwertyUiop",
            "iloveyou",
            "Password1",
            "trustno1",
            "aaaaaaaa",
            "87654321",
        ] {
            assert!(is_common(password), "{password:?}");
        }
    }

    #[test]
    fn strong_passwords_are_not_common() {
        for password in ["correct horse battery staple", "Tr0ub4dor&3-xyz"] {
            assert!(!is_common(password), "{password:?}");
        }
    }

    #[test]
    fn passwords_the_test_suite_registers_with_are_not_common() {
        for password in [
            "correct horse battery staple",
            "correct horse battery",
            "not the password",
            "wrong password",
            "another password",
            "8chars!!",
            "caf\u{e9} au lait",
        ] {
            assert!(!is_common(password), "{password:?}");
        }
    }

    #[test]
    fn the_list_holds_at_least_ten_thousand_passwords() {
        assert!(LIST.lines().count() >= 10_000);
        assert_eq!(COMMON.len(), LIST.lines().count());
    }

    #[test]
    fn every_entry_is_unique_lowercase_normalized_and_long_enough() {
        assert!(LIST.ends_with('\n') && !LIST.contains('\r'));
        let mut seen = HashSet::new();
        for line in LIST.lines() {
            assert!(!line.is_empty());
            assert_eq!(line, line.trim(), "{line:?}");
            assert_eq!(line, line.to_lowercase(), "{line:?}");
            assert_eq!(line, line.nfkc().collect::<String>(), "{line:?}");
            assert!(line.chars().count() >= Password::MIN_CHARS, "{line:?}");
            assert!(seen.insert(line), "{line:?} is listed twice");
        }
    }
}
