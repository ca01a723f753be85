//! Credentials as the domain accepts them: usernames and passwords here,
//! second factors in `totp` and `recovery_codes`. Parsing happens at the
//! edge: past `Credentials::for_registration` / `for_login` (or a code's
//! `parse`) an invalid value cannot exist.

pub mod email;
pub mod recovery_codes;
pub mod totp;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

use super::common_passwords;
use super::error::{AuthError, FieldViolation};

/// A username: trimmed and NFKC-normalized for display, plus a case-folded
/// canonical form that decides identity ("Alice" and "ALICE" are one user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    canonical: String,
}

impl Username {
    /// Fewest characters (after normalization).
    pub const MIN_CHARS: usize = 3;
    /// Most characters (after normalization).
    pub const MAX_CHARS: usize = 32;
    // Inputs far beyond any valid name are refused before normalizing them.
    const MAX_RAW_BYTES: usize = 4 * Self::MAX_CHARS * 4;

    /// Accepts letters and digits of any script plus `.`, `_` and `-`,
    /// starting with a letter or digit. Nothing invisible, no spaces, no
    /// symbols: names are shown to people and typed by them.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let invalid = |description: String| FieldViolation {
            field: "username",
            reason: "INVALID_USERNAME",
            description,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid("username is required".into()));
        }
        let length_error = || {
            invalid(format!(
                "username must be {} to {} characters long",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            ))
        };
        if trimmed.len() > Self::MAX_RAW_BYTES {
            return Err(length_error());
        }
        let display: String = trimmed.nfkc().collect();
        // Lower-casing can denormalize (e.g. U+0130), so normalize again.
        let canonical: String = display.to_lowercase().nfkc().collect();
        // Both forms must follow the rules: a name whose lower case leaves
        // them (U+0130 becomes "i" plus a combining dot) would get an
        // identity no name could be typed as.
        for form in [&display, &canonical] {
            let length = form.chars().count();
            if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&length) {
                return Err(length_error());
            }
            if !form
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(invalid(
                    "username may contain only letters, digits, '.', '_' and '-'".into(),
                ));
            }
        }
        if !display.starts_with(char::is_alphanumeric) {
            return Err(invalid("username must start with a letter or digit".into()));
        }
        Ok(Self { display, canonical })
    }

    /// The name as the user wrote it (trimmed, NFKC).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form that decides identity and uniqueness.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// A password, NFKC-normalized (as NIST SP 800-63B advises, so the same
/// password typed on another keyboard still matches) and kept secret.
pub struct Password(SecretString);

impl Password {
    /// Fewest characters of a new password.
    pub const MIN_CHARS: usize = 8;
    /// Most characters of any password; longer ones are refused before any
    /// hashing, so nobody can make the server hash megabytes.
    pub const MAX_CHARS: usize = 128;

    /// Checks a new password against the length policy and the list of the
    /// most common passwords. No composition rules.
    pub fn parse_new(raw: String) -> Result<Self, FieldViolation> {
        let raw = SecretString::from(raw);
        let length = Self::bounded_length(raw.expose_secret())?;
        if length < Self::MIN_CHARS {
            return Err(FieldViolation {
                field: "password",
                reason: "PASSWORD_TOO_SHORT",
                description: format!(
                    "password must be at least {} characters long",
                    Self::MIN_CHARS
                ),
            });
        }
        let password = Self::normalized(&raw);
        if common_passwords::is_common(password.0.expose_secret()) {
            return Err(FieldViolation {
                field: "password",
                reason: "PASSWORD_TOO_COMMON",
                description: "password is one of the most commonly used passwords; choose another"
                    .into(),
            });
        }
        Ok(password)
    }

    /// Checks a password offered at login: only the upper bound, so that
    /// raising the minimum later never locks existing users out.
    pub fn parse_existing(raw: String) -> Result<Self, FieldViolation> {
        let raw = SecretString::from(raw);
        Self::bounded_length(raw.expose_secret())?;
        Ok(Self::normalized(&raw))
    }

    /// Validates the password a caller re-enters to confirm who they are
    /// (DeleteAccount), as at login.
    pub fn for_confirmation(raw: String) -> Result<Self, AuthError> {
        Self::parse_existing(raw).map_err(|violation| AuthError::InvalidInput(vec![violation]))
    }

    /// Validates a password change, reporting both fields at once: the
    /// current password as at login, the new one as at registration.
    pub fn for_change(current: String, new: String) -> Result<(Self, Self), AuthError> {
        let rename = |violation: FieldViolation, field| FieldViolation { field, ..violation };
        match (Self::parse_existing(current), Self::parse_new(new)) {
            (Ok(current), Ok(new)) => Ok((current, new)),
            (current, new) => Err(AuthError::InvalidInput(
                [
                    current.err().map(|v| rename(v, "current_password")),
                    new.err().map(|v| rename(v, "new_password")),
                ]
                .into_iter()
                .flatten()
                .collect(),
            )),
        }
    }

    /// Validates the first password of an account that has none
    /// (SetPassword), as at registration, in the field `new_password`.
    pub fn for_setting(new: String) -> Result<Self, AuthError> {
        Self::parse_new(new).map_err(|violation| {
            AuthError::InvalidInput(vec![FieldViolation {
                field: "new_password",
                ..violation
            }])
        })
    }

    fn bounded_length(raw: &str) -> Result<usize, FieldViolation> {
        if raw.is_empty() {
            return Err(FieldViolation {
                field: "password",
                reason: "PASSWORD_REQUIRED",
                description: "password is required".into(),
            });
        }
        let too_long = raw.len() > 4 * Self::MAX_CHARS || raw.chars().count() > Self::MAX_CHARS;
        if too_long {
            return Err(FieldViolation {
                field: "password",
                reason: "PASSWORD_TOO_LONG",
                description: format!(
                    "password must be at most {} characters long",
                    Self::MAX_CHARS
                ),
            });
        }
        Ok(raw.chars().count())
    }

    fn normalized(raw: &SecretString) -> Self {
        Self(raw.expose_secret().nfkc().collect::<String>().into())
    }

    /// The bytes to hash.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A username and password that passed validation.
#[derive(Debug)]
pub struct Credentials {
    pub username: Username,
    pub password: Password,
}

impl Credentials {
    /// Validates a registration, reporting every bad field at once.
    pub fn for_registration(username: &str, password: String) -> Result<Self, AuthError> {
        Self::collect(Username::parse(username), Password::parse_new(password))
    }

    /// Validates a registration that may bring an email address, reporting
    /// every bad field at once.
    pub fn for_registration_with_email(
        username: &str,
        password: String,
        email: Option<&str>,
    ) -> Result<(Self, Option<email::EmailAddress>), AuthError> {
        let email = email.map(email::EmailAddress::parse).transpose();
        match (Self::for_registration(username, password), email) {
            (Ok(credentials), Ok(email)) => Ok((credentials, email)),
            (Err(AuthError::InvalidInput(mut violations)), Err(violation)) => {
                violations.push(violation);
                Err(AuthError::InvalidInput(violations))
            }
            (Err(error), _) => Err(error),
            (Ok(_), Err(violation)) => Err(AuthError::InvalidInput(vec![violation])),
        }
    }

    /// Validates a login, reporting every bad field at once.
    pub fn for_login(username: &str, password: String) -> Result<Self, AuthError> {
        Self::collect(
            Username::parse(username),
            Password::parse_existing(password),
        )
    }

    fn collect(
        username: Result<Username, FieldViolation>,
        password: Result<Password, FieldViolation>,
    ) -> Result<Self, AuthError> {
        match (username, password) {
            (Ok(username), Ok(password)) => Ok(Self { username, password }),
            (username, password) => Err(AuthError::InvalidInput(
                [username.err(), password.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_fold_case_and_compatibility_forms() {
        let fullwidth = Username::parse("  Ａｌｉｃｅ ").unwrap();
        assert_eq!(fullwidth.as_str(), "Alice");
        assert_eq!(fullwidth.canonical(), "alice");
        assert_eq!(Username::parse("ALICE").unwrap().canonical(), "alice");
    }

    #[test]
    fn canonical_forms_are_valid_names_of_themselves() {
        // Found by the fuzzer: U+0130 lower-cases to "i" + U+0307.
        let violation = Username::parse("İİİ").unwrap_err();
        assert_eq!(violation.reason, "INVALID_USERNAME");
        for name in ["Ÿvonne", "ΣΊΣΥΦΟΣ", "Straße", "Ａｌｉｃｅ"] {
            let parsed = Username::parse(name).unwrap();
            let again = Username::parse(parsed.canonical()).unwrap();
            assert_eq!(again.canonical(), parsed.canonical(), "{name}");
        }
    }

    #[test]
    fn usernames_refuse_controls_spaces_and_symbols() {
        for bad in ["al ice", "al\0ice", "a';--", "ab", "_alice", "💥boom", ""] {
            let violation = Username::parse(bad).unwrap_err();
            assert_eq!(violation.reason, "INVALID_USERNAME", "{bad:?}");
        }
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn password_lengths_count_characters_not_bytes() {
        assert!(Password::parse_new("ééééééé".into()).is_err());
        assert!(Password::parse_new("éééééééé".into()).is_ok());
        let too_long = Password::parse_new("é".repeat(129)).unwrap_err();
        assert_eq!(too_long.reason, "PASSWORD_TOO_LONG");
        assert!(Password::parse_new("é".repeat(128)).is_ok());
    }

    #[test]
    fn common_passwords_are_refused_when_new_only() {
        for common in ["Password1", "ｐａｓｓｗｏｒｄ", "QWERTYUIOP"] {
            let violation = Password::parse_new(common.into()).unwrap_err();
            assert_eq!(violation.reason, "PASSWORD_TOO_COMMON", "{common}");
        }
        assert!(Password::parse_existing("Password1".into()).is_ok());
    }

    #[test]
    fn login_passwords_are_bounded_above_only() {
        assert!(Password::parse_existing("short".into()).is_ok());
        assert_eq!(
            Password::parse_existing(String::new()).unwrap_err().reason,
            "PASSWORD_REQUIRED"
        );
    }
}
