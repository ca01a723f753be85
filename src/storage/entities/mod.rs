//! sea-orm entities, one per table created in `migrations/`.

pub mod rate_limit;
pub mod revoked_token;
pub mod session_cutoff;
pub mod signing_key;
pub mod user;
