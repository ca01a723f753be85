//! The ports the domain needs from storage, one per aggregate, each
//! implemented by an adapter file of `crate::storage`. The domain owns them,
//! so the dependency runs one way: storage depends on the domain. A new
//! aggregate (second factors, passkeys, an outbox) adds a port here and an
//! adapter file there, without touching the others.

mod email;
mod factors;
mod health;
mod keys;
mod limits;
mod outbox;
mod passkeys;
mod revocations;
mod sessions;
mod users;

pub use email::{EmailRecord, EmailStore, MailPurpose, MailTokenRecord};
pub use factors::{FactorStore, MfaTicketRecord, RecoveryCodeRecord, TotpRecord};
pub use health::StoreHealth;
pub use keys::{SigningKeyRecord, SigningKeyStore};
pub use limits::RateLimitStore;
pub use outbox::{
    ClaimedEvent, ClaimedMail, MailSender, OutboxBacklog, OutboxEntry, OutboxMail, OutboxStore,
    WebhookEvent, WebhookOutboxStore, WebhookSender,
};
pub use passkeys::{
    CeremonyKind, CeremonyRecord, PasskeyRecord, PasskeyRemoval, PasskeyStore, PasskeyUse,
};
pub use revocations::{RevocationEvent, RevocationStore, RevokedToken};
pub use sessions::{RefreshTokenRecord, SessionRecord, SessionStore, Spend};
pub use users::{AccountFacts, UserRecord, UserStore};

/// Every port at once: what the domain service and the surfaces that only
/// pass storage along name, where the one adapter implements them all.
pub trait Store:
    UserStore
    + SessionStore
    + RevocationStore
    + SigningKeyStore
    + RateLimitStore
    + FactorStore
    + PasskeyStore
    + EmailStore
    + OutboxStore
    + WebhookOutboxStore
    + StoreHealth
{
}

impl<T> Store for T where
    T: UserStore
        + SessionStore
        + RevocationStore
        + SigningKeyStore
        + RateLimitStore
        + FactorStore
        + PasskeyStore
        + EmailStore
        + OutboxStore
        + WebhookOutboxStore
        + StoreHealth
{
}
