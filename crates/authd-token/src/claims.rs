//! What an access token says.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims of an authd access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who issued it (`--issuer`).
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// For whom (`--audience`).
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// The user's name when the token was issued.
    pub username: String,
    /// The session the token belongs to; absent from tokens issued before
    /// authd had sessions, which are revoked one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// RFC 9068's client: authd issues tokens to users through its own
    /// login, not to OAuth clients, so new tokens say `authd`
    /// ([`FIRST_PARTY_CLIENT_ID`]); absent from tokens issued before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// When the user last proved who they are (OpenID Connect's
    /// `auth_time`), Unix seconds: the session's start, or its latest
    /// reauthentication; a refresh keeps it. Absent from tokens issued
    /// before authd recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How they proved it, as RFC 8176 method names: `pwd`; `pwd`, `otp`,
    /// `mfa` with a TOTP code; `pwd`, `rc`, `mfa` with a recovery code.
    /// Empty in tokens issued before authd recorded it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The assurance level reached ([`ACR_ONE_FACTOR`] or
    /// [`ACR_TWO_FACTORS`]); absent from tokens issued before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// The `acr` of a session started with one factor (a password): NIST SP
/// 800-63B's AAL1.
pub const ACR_ONE_FACTOR: &str = "aal1";

/// The `acr` of a session that also passed a second factor: AAL2.
pub const ACR_TWO_FACTORS: &str = "aal2";

/// The `client_id` of every token authd issues: its own login.
pub const FIRST_PARTY_CLIENT_ID: &str = "authd";

impl Claims {
    /// The session the token belongs to, if it names one.
    pub fn session_id(&self) -> Option<Uuid> {
        self.sid.as_deref().and_then(|sid| sid.parse().ok())
    }

    /// The assurance level as a number: 1 or 2 for [`ACR_ONE_FACTOR`] and
    /// [`ACR_TWO_FACTORS`], 0 when the token does not say (issued before
    /// authd recorded it, or by something else).
    pub fn assurance_level(&self) -> u32 {
        self.acr
            .as_deref()
            .and_then(crate::policy::acr_level)
            .unwrap_or(0)
    }
}
