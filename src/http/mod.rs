//! Plumbing every HTTP-facing surface shares (REST, forward auth, Envoy's
//! Check, grpc-web): errors as problem+json, where a request carries its
//! token, the client's address, calls whose client went away, request
//! metrics, CORS and static files. It depends on the domain only; the
//! surfaces depend on it, never on each other.

/// Request bodies are a username and a password, or a token: 16 KiB is
/// plenty, and anything larger is refused before it is read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub mod client_address;
pub mod client_gone;
pub mod cors;
pub mod problem;
pub mod request_metrics;
pub mod request_token;
pub mod static_files;
