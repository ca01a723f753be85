//! What a route asks of the caller's authentication beyond a valid token:
//! an assurance level (`acr`) and a recent enough `auth_time`. The same
//! check, the same refusal and the same RFC 9470 challenge for every
//! verifier (authd-client's tonic layer and axum extractor, authd's forward
//! auth and Envoy `Check`), so a service sees one answer wherever it checks.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::claims::{ACR_ONE_FACTOR, ACR_TWO_FACTORS, Claims};

/// `google.rpc.ErrorInfo.reason` (and problem+json `reason`) of a token
/// refused by an [`AuthenticationPolicy`]; named after RFC 9470's
/// `insufficient_user_authentication` error code.
pub const INSUFFICIENT_USER_AUTHENTICATION: &str = "INSUFFICIENT_USER_AUTHENTICATION";

/// The assurance level an `acr` value names: 1 for [`ACR_ONE_FACTOR`], 2 for
/// [`ACR_TWO_FACTORS`], none for anything else.
pub fn acr_level(acr: &str) -> Option<u32> {
    match acr {
        ACR_ONE_FACTOR => Some(1),
        ACR_TWO_FACTORS => Some(2),
        _ => None,
    }
}

/// What a route requires of how and when the caller authenticated: a
/// minimum assurance level (the token's `acr`) and a maximum age of that
/// authentication (its `auth_time`). The default asks nothing.
///
/// Tokens issued before authd recorded `acr` and `auth_time` fail any
/// policy that asks for what they lack.
///
/// ```
/// use std::time::Duration;
/// use authd_token::AuthenticationPolicy;
///
/// // Payments: a second factor, within the last five minutes.
/// let payments = AuthenticationPolicy::new()
///     .require_two_factors()
///     .max_auth_age(Duration::from_secs(300));
/// assert_eq!(payments.acr_values().as_deref(), Some("aal2"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthenticationPolicy {
    min_level: u32,
    max_age: Option<Duration>,
}

impl AuthenticationPolicy {
    /// A policy that asks nothing beyond a valid token.
    pub const fn new() -> Self {
        Self {
            min_level: 0,
            max_age: None,
        }
    }

    /// Requires at least this assurance level: 1 (`aal1`, a password) or 2
    /// (`aal2`, a password and a second factor). 0 asks nothing.
    #[must_use]
    pub const fn min_assurance_level(mut self, level: u32) -> Self {
        self.min_level = level;
        self
    }

    /// Requires a second factor: [`min_assurance_level`](Self::min_assurance_level)
    /// 2, `acr` `aal2`.
    #[must_use]
    pub const fn require_two_factors(self) -> Self {
        self.min_assurance_level(2)
    }

    /// Requires the caller to have authenticated (logged in, or
    /// reauthenticated) within `max_age` before the check, counted in whole
    /// seconds as `auth_time` is. The clocks of authd and of the verifier
    /// are compared directly: keep them in sync.
    #[must_use]
    pub const fn max_auth_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The least assurance level required (0: none).
    pub const fn min_level(&self) -> u32 {
        self.min_level
    }

    /// How old the authentication may be, if the policy limits it.
    pub const fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// Whether the policy asks nothing, so that every valid token passes.
    pub const fn asks_nothing(&self) -> bool {
        self.min_level == 0 && self.max_age.is_none()
    }

    /// A policy that asks what both ask: the higher level, the shorter
    /// age. For requirements given more than once, so that none can be
    /// loosened by adding another.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self {
            min_level: self.min_level.max(other.min_level),
            max_age: match (self.max_age, other.max_age) {
                (Some(one), Some(two)) => Some(one.min(two)),
                (one, two) => one.or(two),
            },
        }
    }

    /// RFC 9470's `acr_values` for this policy: every level it accepts,
    /// space-separated, lowest first (`"aal1 aal2"`, `"aal2"`); none when it
    /// asks no level.
    pub fn acr_values(&self) -> Option<String> {
        (self.min_level > 0).then(|| {
            (self.min_level..=self.min_level.max(2))
                .map(|level| format!("aal{level}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// Checks `claims` now (the system clock).
    ///
    /// # Errors
    /// What the token lacks; see [`check_at`](Self::check_at).
    pub fn check(&self, claims: &Claims) -> Result<(), InsufficientAuthentication> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        self.check_at(claims, now)
    }

    /// Checks `claims` at `now` (Unix seconds).
    ///
    /// # Errors
    /// [`InsufficientAuthentication`] naming the first thing the token
    /// lacks: its level (checked first, since authenticating again with the
    /// second factor also renews `auth_time`), then its `auth_time`.
    pub fn check_at(&self, claims: &Claims, now: i64) -> Result<(), InsufficientAuthentication> {
        let refused = |shortfall| {
            Err(InsufficientAuthentication {
                policy: *self,
                shortfall,
            })
        };
        if claims.assurance_level() < self.min_level {
            return refused(Shortfall::LevelTooLow);
        }
        if let Some(max_age) = self.max_age {
            let Some(auth_time) = claims.auth_time else {
                return refused(Shortfall::NoAuthTime);
            };
            let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            if now.saturating_sub(auth_time) > max_age {
                return refused(Shortfall::TooOld);
            }
        }
        Ok(())
    }
}

/// What a token lacked for an [`AuthenticationPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shortfall {
    /// Its `acr` is below the level required, or absent.
    LevelTooLow,
    /// It has no `auth_time` (issued before authd recorded it).
    NoAuthTime,
    /// Its `auth_time` is older than the policy allows.
    TooOld,
}

/// A valid token refused by an [`AuthenticationPolicy`]: the caller must
/// authenticate again (authd's `Reauthenticate`, or a new login) meeting
/// the policy, then retry with the new token.
///
/// Every surface answers it alike, stating the route's whole requirement
/// (not only what this token lacked), so that one new authentication
/// satisfies it:
///
/// - HTTP: 401 with RFC 9470's challenge,
///   [`www_authenticate`](Self::www_authenticate);
/// - gRPC: UNAUTHENTICATED with a `google.rpc.ErrorInfo` whose reason is
///   [`INSUFFICIENT_USER_AUTHENTICATION`] and whose metadata is
///   [`metadata`](Self::metadata): `acr_values` and `max_age`, each when
///   the policy asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientAuthentication {
    policy: AuthenticationPolicy,
    shortfall: Shortfall,
}

impl InsufficientAuthentication {
    /// The policy that refused the token.
    pub const fn policy(&self) -> AuthenticationPolicy {
        self.policy
    }

    /// What the token lacked.
    pub const fn shortfall(&self) -> Shortfall {
        self.shortfall
    }

    /// [`INSUFFICIENT_USER_AUTHENTICATION`].
    pub const fn reason(&self) -> &'static str {
        INSUFFICIENT_USER_AUTHENTICATION
    }

    /// The `google.rpc.ErrorInfo` metadata: `acr_values` (as in
    /// [`AuthenticationPolicy::acr_values`]) when the policy asks a level,
    /// `max_age` (whole seconds) when it limits the age.
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        let mut metadata = Vec::new();
        if let Some(acr_values) = self.policy.acr_values() {
            metadata.push(("acr_values", acr_values));
        }
        if let Some(max_age) = self.policy.max_age {
            metadata.push(("max_age", max_age.as_secs().to_string()));
        }
        metadata
    }

    /// The `WWW-Authenticate` value of an HTTP refusal (RFC 9470 section 3):
    /// `Bearer realm="authd", error="insufficient_user_authentication",
    /// error_description="...", acr_values="aal2", max_age=300`, each of the
    /// last two when the policy asks for it.
    pub fn www_authenticate(&self) -> String {
        let mut challenge = format!(
            r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="{self}""#
        );
        if let Some(acr_values) = self.policy.acr_values() {
            challenge.push_str(&format!(r#", acr_values="{acr_values}""#));
        }
        if let Some(max_age) = self.policy.max_age {
            challenge.push_str(&format!(", max_age={}", max_age.as_secs()));
        }
        challenge
    }
}

/// A short ASCII description, fit for `error_description`.
impl fmt::Display for InsufficientAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.shortfall {
            Shortfall::LevelTooLow if self.policy.min_level >= 2 => "a second factor is required",
            Shortfall::LevelTooLow => "a higher authentication level is required",
            Shortfall::NoAuthTime | Shortfall::TooOld => "a more recent authentication is required",
        })
    }
}

impl std::error::Error for InsufficientAuthentication {}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims(acr: Option<&str>, auth_time: Option<i64>) -> Claims {
        Claims {
            iss: "authd".into(),
            sub: "user".into(),
            aud: "authd".into(),
            exp: NOW + 900,
            nbf: NOW,
            iat: NOW,
            jti: "jti".into(),
            username: "alice".into(),
            sid: None,
            client_id: None,
            auth_time,
            amr: Vec::new(),
            acr: acr.map(str::to_owned),
        }
    }

    fn shortfall(policy: AuthenticationPolicy, claims: &Claims) -> Result<(), Shortfall> {
        policy
            .check_at(claims, NOW)
            .map_err(|refused| refused.shortfall())
    }

    #[test]
    fn a_level_two_policy_refuses_one_factor_and_old_tokens_and_admits_two() {
        let policy = AuthenticationPolicy::new().require_two_factors();
        let two = claims(Some("aal2"), Some(NOW));
        assert_eq!(shortfall(policy, &two), Ok(()));
        for refused in [claims(Some("aal1"), Some(NOW)), claims(None, None)] {
            assert_eq!(shortfall(policy, &refused), Err(Shortfall::LevelTooLow));
        }
        let level_one = AuthenticationPolicy::new().min_assurance_level(1);
        assert_eq!(shortfall(level_one, &claims(Some("aal1"), None)), Ok(()));
        assert_eq!(
            shortfall(level_one, &claims(Some("aal3"), None)),
            Err(Shortfall::LevelTooLow),
            "an acr authd does not issue names no level"
        );
    }

    #[test]
    fn an_age_limit_admits_up_to_its_whole_seconds_and_refuses_tokens_without_auth_time() {
        let policy = AuthenticationPolicy::new().max_auth_age(Duration::from_millis(300_900));
        assert_eq!(shortfall(policy, &claims(None, Some(NOW - 300))), Ok(()));
        assert_eq!(
            shortfall(policy, &claims(None, Some(NOW - 301))),
            Err(Shortfall::TooOld)
        );
        // A clock behind authd's sees a future auth_time: recent enough.
        assert_eq!(shortfall(policy, &claims(None, Some(NOW + 5))), Ok(()));
        assert_eq!(
            shortfall(policy, &claims(Some("aal2"), None)),
            Err(Shortfall::NoAuthTime)
        );
    }

    #[test]
    fn the_level_is_reported_before_the_age() {
        let policy = AuthenticationPolicy::new()
            .require_two_factors()
            .max_auth_age(Duration::from_secs(60));
        assert_eq!(
            shortfall(policy, &claims(Some("aal1"), Some(NOW - 3600))),
            Err(Shortfall::LevelTooLow)
        );
    }

    #[test]
    fn the_policy_asking_nothing_admits_even_old_tokens() {
        let policy = AuthenticationPolicy::default();
        assert!(policy.asks_nothing());
        assert_eq!(shortfall(policy, &claims(None, None)), Ok(()));
    }

    #[test]
    fn requirements_combine_to_the_stricter_of_each() {
        let combined = AuthenticationPolicy::new()
            .min_assurance_level(1)
            .max_auth_age(Duration::from_secs(60))
            .and(
                AuthenticationPolicy::new()
                    .require_two_factors()
                    .max_auth_age(Duration::from_secs(600)),
            );
        assert_eq!(combined.min_level(), 2);
        assert_eq!(combined.max_age(), Some(Duration::from_secs(60)));
        let age_only = AuthenticationPolicy::new()
            .and(AuthenticationPolicy::new().max_auth_age(Duration::from_secs(5)));
        assert_eq!(age_only.max_age(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn the_refusal_states_the_whole_requirement_as_rfc_9470_asks() {
        let policy = AuthenticationPolicy::new()
            .require_two_factors()
            .max_auth_age(Duration::from_secs(300));
        let refused = policy
            .check_at(&claims(Some("aal1"), Some(NOW)), NOW)
            .unwrap_err();
        assert_eq!(refused.reason(), "INSUFFICIENT_USER_AUTHENTICATION");
        assert_eq!(
            refused.www_authenticate(),
            r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a second factor is required", acr_values="aal2", max_age=300"#
        );
        assert_eq!(
            refused.metadata(),
            [
                ("acr_values", "aal2".to_owned()),
                ("max_age", "300".to_owned())
            ]
        );

        let age_only = AuthenticationPolicy::new().max_auth_age(Duration::from_secs(1));
        let refused = age_only
            .check_at(&claims(Some("aal2"), Some(NOW - 2)), NOW)
            .unwrap_err();
        assert_eq!(
            refused.www_authenticate(),
            r#"Bearer realm="authd", error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age=1"#
        );
        assert_eq!(refused.metadata(), [("max_age", "1".to_owned())]);
        assert_eq!(
            AuthenticationPolicy::new()
                .min_assurance_level(1)
                .acr_values()
                .as_deref(),
            Some("aal1 aal2")
        );
    }
}
