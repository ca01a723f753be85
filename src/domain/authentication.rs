//! How and when a session's user last proved who they are: what becomes
//! the access token's `auth_time`, `amr` (RFC 8176) and `acr`, kept with
//! the session so that a refresh carries them on unchanged.

use authd_token::{ACR_ONE_FACTOR, ACR_TWO_FACTORS, acr_level};
use chrono::{DateTime, Utc};

/// A way of proving who one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    Totp,
    RecoveryCode,
    /// A passkey with user verification: on its own, something one has
    /// and something one knows or is. `synced` when the authenticator says
    /// it may be backed up (a software key, `swk`), else a device-bound
    /// one (`hwk`).
    Passkey {
        synced: bool,
    },
}

impl Method {
    /// Its `amr` value: RFC 8176's `pwd`, `otp`, `hwk` and `swk`; recovery
    /// codes have no registered value, so authd says `rc`.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Totp => "otp",
            Self::RecoveryCode => "rc",
            Self::Passkey { synced: false } => "hwk",
            Self::Passkey { synced: true } => "swk",
        }
    }

    fn from_amr(value: &str) -> Option<Self> {
        [
            Self::Password,
            Self::Totp,
            Self::RecoveryCode,
            Self::Passkey { synced: false },
            Self::Passkey { synced: true },
        ]
        .into_iter()
        .find(|method| method.amr() == value)
    }

    fn is_second_factor(self) -> bool {
        !matches!(self, Self::Password)
    }
}

/// The `amr` value added when two factors were used.
const MULTI_FACTOR: &str = "mfa";

/// The `amr` value (RFC 8176's user presence test) a passkey adds: it
/// signs only after the user was verified.
const USER_PRESENCE: &str = "user";

/// How and when a session's user last proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub at: DateTime<Utc>,
    methods: Vec<Method>,
}

impl Authentication {
    /// A password, at `at`.
    pub fn password(at: DateTime<Utc>) -> Self {
        Self {
            at,
            methods: vec![Method::Password],
        }
    }

    /// A passkey with user verification, at `at`: multi-factor on its own.
    pub fn passkey(at: DateTime<Utc>, synced: bool) -> Self {
        Self {
            at,
            methods: vec![Method::Passkey { synced }],
        }
    }

    /// The same, with a second factor too.
    pub fn and(mut self, method: Method) -> Self {
        if !self.methods.contains(&method) {
            self.methods.push(method);
        }
        self
    }

    /// Whether a second factor was part of it.
    pub fn is_multi_factor(&self) -> bool {
        self.methods.iter().any(|method| method.is_second_factor())
    }

    /// The `amr` claim.
    pub fn amr(&self) -> Vec<String> {
        let mut amr: Vec<String> = Vec::with_capacity(self.methods.len() + 2);
        for method in &self.methods {
            amr.push(method.amr().to_owned());
            if matches!(method, Method::Passkey { .. }) {
                amr.push(USER_PRESENCE.to_owned());
            }
        }
        if self.is_multi_factor() {
            amr.push(MULTI_FACTOR.to_owned());
        }
        amr
    }

    /// The `acr` claim.
    pub fn acr(&self) -> &'static str {
        if self.is_multi_factor() {
            ACR_TWO_FACTORS
        } else {
            ACR_ONE_FACTOR
        }
    }

    /// The `acr` claim's level: 1 for one factor, 2 for two.
    pub fn assurance_level(&self) -> u32 {
        acr_level(self.acr()).unwrap_or_default()
    }

    /// The methods as the store keeps them: their `amr` values,
    /// space-separated.
    pub fn stored_methods(&self) -> String {
        self.methods
            .iter()
            .map(|method| method.amr())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// As stored; a session from before authd kept these was started with
    /// a password at its creation.
    pub fn from_stored(
        at: Option<DateTime<Utc>>,
        methods: Option<&str>,
        session_created_at: DateTime<Utc>,
    ) -> Self {
        let methods: Vec<Method> = methods
            .unwrap_or_default()
            .split(' ')
            .filter_map(Method::from_amr)
            .collect();
        Self {
            at: at.unwrap_or(session_created_at),
            methods: if methods.is_empty() {
                vec![Method::Password]
            } else {
                methods
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passkey_alone_is_multi_factor_at_the_highest_level() {
        let now = Utc::now();
        let device_bound = Authentication::passkey(now, false);
        assert_eq!(device_bound.amr(), ["hwk", "user", "mfa"]);
        assert_eq!(device_bound.acr(), ACR_TWO_FACTORS);
        let synced = Authentication::passkey(now, true);
        assert_eq!(synced.amr(), ["swk", "user", "mfa"]);
        let stored = Authentication::from_stored(Some(now), Some(&synced.stored_methods()), now);
        assert_eq!(stored, synced);
    }

    #[test]
    fn a_password_alone_is_one_factor_and_a_code_makes_two() {
        let now = Utc::now();
        let password = Authentication::password(now);
        assert_eq!(password.amr(), ["pwd"]);
        assert_eq!(password.acr(), "aal1");
        let totp = password.clone().and(Method::Totp);
        assert_eq!(totp.amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(totp.acr(), "aal2");
        let recovery = password.and(Method::RecoveryCode);
        assert_eq!(recovery.amr(), ["pwd", "rc", "mfa"]);
    }

    #[test]
    fn what_is_stored_reads_back_and_old_sessions_read_as_a_password() {
        let now = Utc::now();
        let totp = Authentication::password(now).and(Method::Totp);
        assert_eq!(
            Authentication::from_stored(Some(now), Some(&totp.stored_methods()), now),
            totp
        );
        let created = now - chrono::TimeDelta::hours(1);
        assert_eq!(
            Authentication::from_stored(None, None, created),
            Authentication::password(created)
        );
    }
}
