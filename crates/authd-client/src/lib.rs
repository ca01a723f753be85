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

pub use authd_token::{Claims, TokenRejection};
pub use config::{StalePolicy, VerifierConfig};
pub use error::{ConnectError, ERROR_DOMAIN, VerifyError};
pub use verifier::{Verifier, VerifierState};

#[cfg(feature = "axum")]
pub use axum_extractor::{AuthRejection, AuthenticatedUser};
#[cfg(feature = "tonic")]
pub use tonic_layer::{RequireToken, RequireTokenLayer};
