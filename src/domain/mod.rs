//! The domain: what authd does, independent of how it is reached (gRPC,
//! REST) and of where it keeps its data: it owns the storage ports
//! (`ports`), which `crate::storage` implements.

mod accounts;
mod authentication;
mod common_passwords;
pub mod credentials;
mod email_addresses;
mod error;
mod key_reloads;
mod keys;
mod mail_templates;
mod notifications;
pub mod opaque_tokens;
mod outbox;
mod passkey_second_factor;
mod passkeys;
mod password_reset;
mod passwordless;
mod passwords;
pub mod ports;
mod random_id;
mod rate_limits;
mod revocation_feed;
mod second_factor;
mod secrets_at_rest;
mod security_notices;
mod service;
mod service_credentials;
mod sessions;
mod step_up;
mod tokens;
mod upkeep;

pub use accounts::{AccountAdmin, AccountDetails, StateChange};
pub use authd_token::{CLOCK_LEEWAY, Claims, PublicJwk};
pub use authentication::{Authentication, Method};
pub use credentials::email::EmailAddress;
pub use credentials::recovery_codes::RecoveryCode;
pub use credentials::totp::TotpCode;
pub use credentials::{Credentials, Password, Username};
pub use email_addresses::MailSettings;
pub use error::{AuthError, BoxError, FieldViolation, TokenRejection};
pub use key_reloads::KeyReloads;
pub use keys::{
    FileKey, KeySet, add_signing_key, generate_signing_key, load_or_create_signing_keys,
    retired_keys,
};
pub use mail_templates::{MailKind, MailTemplate, MailTemplates, RenderedMail, TemplateError};
pub use outbox::{
    Delivered, OutboxSettings, deliver_due, deliver_due_events, report_backlog,
    report_webhook_backlog,
};
pub use passkeys::{
    OriginNotOnRpId, PasskeyCeremony, PasskeySettings, PasskeySummary, RelyingParty, Started,
    UsedPasskey, credential_id_text, parse_assertion,
};
pub use password_reset::ResetLookup;
pub use passwords::{HashingSettings, PasswordHasher, Verification};
pub use ports::{
    AccountFacts, CeremonyKind, CeremonyRecord, ClaimedEvent, ClaimedMail, EmailRecord, EmailStore,
    FactorStore, MailPurpose, MailSender, MailTokenRecord, MfaTicketRecord, OutboxBacklog,
    OutboxEntry, OutboxMail, OutboxStore, PasskeyRecord, PasskeyRemoval, PasskeyStore, PasskeyUse,
    RateLimitStore, RecoveryCodeRecord, RefreshTokenRecord, RevocationEvent, RevocationStore,
    RevokedToken, SessionRecord, SessionStore, SigningKeyRecord, SigningKeyStore, Spend, Store,
    StoreHealth, TotpRecord, UserRecord, UserStore, WebhookEvent, WebhookOutboxStore,
    WebhookSender,
};
pub use rate_limits::{
    LOGIN_FAILURES_KEY_PREFIX, Rate, RateLimitSettings, RateLimiter, second_factor_failure_key,
};
pub use revocation_feed::{Change, Cursor, Revocations, Subscription, WATCHER_BACKLOG};
pub use second_factor::{
    CompletedLogin, LoginOutcome, SecondFactorChallenge, SecondFactorFields, SecondFactorProof,
    SecondFactorSettings, SecondFactorStatus, TotpEnrollment,
};
pub use secrets_at_rest::{Reseal, Resealed, reseal_signing_keys, reseal_totp_secrets};
pub use service::{Authenticator, ClientInfo, RefreshGrant, Session, User};
pub use service_credentials::ServiceCredentials;
pub use sessions::{SessionSettings, SessionSummary};
pub use step_up::Reauthenticated;
pub use tokens::{AccessToken, TokenService, TokenSettings};
pub use upkeep::RevocationsFrom;
