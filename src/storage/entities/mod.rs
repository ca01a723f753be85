//! sea-orm entities, one per table created in `migrations/`.

pub mod revoked_token;
pub mod signing_key;
pub mod user;
