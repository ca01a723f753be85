//! The domain: what authd does, independent of how it is reached (gRPC,
//! REST) and of where it keeps its data (`crate::storage`).

mod common_passwords;
mod credentials;
mod error;
mod jws;
mod keys;
mod passwords;
mod rate_limits;
mod revocations;
mod service;
mod tokens;
mod verified_tokens;

pub use credentials::{Credentials, Password, Username};
pub use error::{AuthError, BoxError, FieldViolation, TokenRejection};
pub use keys::{
    FileKey, KeySet, PublicJwk, generate_signing_key, load_or_create_signing_keys, retired_keys,
};
pub use passwords::{HashingSettings, PasswordHasher, Verification};
pub use rate_limits::{Rate, RateLimitSettings, RateLimiter};
pub use revocations::RevocationList;
pub use service::{Authenticator, Session, User};
pub use tokens::{AccessToken, CLOCK_LEEWAY, Claims, TokenService, TokenSettings};
