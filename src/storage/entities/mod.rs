//! sea-orm entities, one per table created in `migrations/`.

pub mod email_address;
pub mod mail_token;
pub mod mfa_ticket;
pub mod outbox_mail;
pub mod passkey;
pub mod passkey_ceremony;
pub mod passkey_user_handle;
pub mod rate_limit;
pub mod recovery_code;
pub mod refresh_token;
pub mod revoked_token;
pub mod session;
pub mod session_cutoff;
pub mod signing_key;
pub mod totp_factor;
pub mod user;
pub mod webhook_event;
