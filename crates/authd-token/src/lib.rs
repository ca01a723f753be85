//! The rules an authd access token must pass, shared by authd and by the
//! services that verify its tokens themselves, so that both accept exactly
//! the same tokens. See the README for what is checked.
//!
//! ```
//! use std::sync::Arc;
//! use authd_token::{RevocationList, TokenRejection, TokenVerifier, VerifierSettings, VerifyingKeys};
//!
//! let verifier = TokenVerifier::new(
//!     VerifierSettings::new("authd", "authd"),
//!     VerifyingKeys::default(),
//!     Arc::new(RevocationList::default()),
//! );
//! assert_eq!(verifier.verify("").unwrap_err(), TokenRejection::Missing);
//! ```

#![warn(missing_docs)]

mod bearer;
mod claims;
pub mod horizons;
mod jws;
mod keys;
mod policy;
mod rejection;
mod revocations;
mod verified;
mod verifier;

pub use bearer::bearer_token;
pub use claims::{ACR_ONE_FACTOR, ACR_TWO_FACTORS, Claims, FIRST_PARTY_CLIENT_ID};
pub use jws::ALGORITHM_NAME;
pub use keys::{KeyError, PublicJwk, VerifyingKeys};
pub use policy::{
    AuthenticationPolicy, INSUFFICIENT_USER_AUTHENTICATION, InsufficientAuthentication, Shortfall,
    acr_level,
};
pub use rejection::TokenRejection;
pub use revocations::{Revocation, RevocationList};
pub use verifier::{
    CLOCK_LEEWAY, MAX_TOKEN_BYTES, TOKEN_MEDIA_TYPE, TOKEN_TYPE, TokenVerifier, VerifierSettings,
};
