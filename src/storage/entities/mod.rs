//! sea-orm entities, one per table created in `migrations/`.

pub mod rate_limit;
pub mod refresh_token;
pub mod revoked_token;
pub mod session;
pub mod session_cutoff;
pub mod signing_key;
pub mod user;
