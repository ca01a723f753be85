//! Verifies authd access tokens inside your own
//! service, with authd's own rules ([`authd_token`]), and learns of every
//! logout within a fraction of a second.
//!
//! [`Verifier::connect`] fetches authd's public keys (`GetJwks`) and starts a
//! background task that follows authd's revocation feed
//! (`WatchRevocations`): a snapshot of everything revoked, then every change
//! as it happens. [`Verifier::verify`] is then an in-memory check (signature,
//! claims, revocation list) with no network call, except in two rare cases:
//! a token signed by a key the verifier has not seen yet (the keys are
//! fetched again, once for all callers), and, under
//! [`StalePolicy::FallBackToAuthd`], while the feed has been silent for
//! longer than the staleness limit.
//!
//! ```no_run
//! use authd_client::{Verifier, VerifierConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::connect(VerifierConfig::new(
//!     "http://127.0.0.1:50051",
//!     "dev-feed-token",
//! ))
//! .await?;
//! match verifier.verify("eyJhbGciOiJFZERTQSIs...").await {
//!     Ok(claims) => println!("hello {}", claims.username),
//!     Err(refused) => println!("refused: {}", refused.reason()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! With the `tonic` feature (on by default), `RequireTokenLayer` protects a
//! tonic server; with the `axum` feature, `AuthenticatedUser` extracts the
//! caller's claims in axum handlers.
//!
//! A route that needs more than a valid token says so with an
//! [`AuthenticationPolicy`]: a minimum assurance level (the token's `acr`:
//! [`require_two_factors`](AuthenticationPolicy::require_two_factors) asks
//! `aal2`) and a maximum age of the authentication (its `auth_time`). Give
//! it to `RequireTokenLayer::with_policy`, wrap an axum route in an
//! `AuthenticationPolicyLayer`, or call [`Verifier::verify_with`]. A valid
//! token that falls short is refused with
//! [`VerifyError::InsufficientAuthentication`]
//! (`INSUFFICIENT_USER_AUTHENTICATION`): HTTP 401 with RFC 9470's
//! `insufficient_user_authentication` challenge (`acr_values`, `max_age`),
//! gRPC UNAUTHENTICATED with the same two in the `ErrorInfo` metadata.
//! Tokens issued before authd recorded `acr` and `auth_time` fail any
//! policy that asks for them.

#![warn(missing_docs)]

#[cfg(any(feature = "axum", feature = "tonic"))]
mod bearer;
mod config;
mod error;
mod feed;
mod keys;
mod pb;
mod tokens;
mod verifier;

#[cfg(feature = "axum")]
mod axum_extractor;
#[cfg(feature = "tonic")]
mod tonic_layer;

pub use authd_token::{
    AuthenticationPolicy, Claims, INSUFFICIENT_USER_AUTHENTICATION, InsufficientAuthentication,
    Shortfall, TokenRejection,
};
pub use config::{StalePolicy, VerifierConfig};
pub use error::{ConnectError, ERROR_DOMAIN, VerifyError};
pub use verifier::{Verifier, VerifierState};

#[cfg(feature = "axum")]
pub use axum_extractor::{
    AuthRejection, AuthenticatedUser, AuthenticationPolicyLayer, AuthenticationPolicyService,
};
#[cfg(feature = "tonic")]
pub use tonic_layer::{RequireToken, RequireTokenLayer};
