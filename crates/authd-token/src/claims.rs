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
}

/// The `client_id` of every token authd issues: its own login.
pub const FIRST_PARTY_CLIENT_ID: &str = "authd";

impl Claims {
    /// The session the token belongs to, if it names one.
    pub fn session_id(&self) -> Option<Uuid> {
        self.sid.as_deref().and_then(|sid| sid.parse().ok())
    }
}
