//! Password reset by mail (ASVS 6.4): RequestPasswordReset mails a
//! single-use link to the account's verified address, ResetPassword takes
//! its token back with a new password (and the account's second factor, when
//! it has one), replaces the password, ends every session and starts a new
//! one. The token is an opaque token of its own kind, stored as its hash in
//! the mail token table (purpose `reset`), voided by the next request.
//!
//! RequestPasswordReset answers the same `{}` whether the name or address
//! matches an account with a verified address, one without, or nothing, and
//! in the same time: everything that depends on the account runs in a
//! background job after the answer (see
//! [`Authenticator::request_password_reset`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::authentication::Authentication;
use super::credentials::email::EmailAddress;
use super::credentials::{Password, Username};
use super::email_addresses::{MailSettings, spelled};
use super::error::{AuthError, FieldViolation};
use super::mail_templates::MailKind;
use super::notifications::{Notification, PASSWORD_RESET_REQUESTED, rfc3339};
use super::opaque_tokens::{NewOpaqueToken, PASSWORD_RESET};
use super::passkey_second_factor::Binding;
use super::ports::{EmailRecord, MailPurpose, MailTokenRecord, OutboxEntry, Store, UserRecord};
use super::second_factor::{CompletedLogin, SecondFactorProof};
use super::security_notices::SecurityEvent;
use super::service::{Authenticator, ClientInfo};
use super::sessions::delta;
use crate::deadline::Deadline;

/// Reset requests whose lookup and mail may be under way at once; beyond
/// them a request is refused with SERVER_BUSY, whatever it names.
pub(super) const MAX_PENDING_RESET_REQUESTS: usize = 64;

/// How soon a client refused for too many pending requests may retry.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The bounded pool RequestPasswordReset's background jobs run in.
pub(super) struct ResetJobs {
    permits: Arc<Semaphore>,
}

impl Default for ResetJobs {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_PENDING_RESET_REQUESTS)),
        }
    }
}

/// What a reset request names: a username or an email address, as typed.
/// Only its shape is checked here, the same way for every value, so that a
/// refusal says nothing of any account.
#[derive(Clone)]
pub struct ResetLookup(String);

impl ResetLookup {
    /// The longest value: an email address's limit, above any username's.
    pub const MAX_CHARS: usize = 254;

    /// Refuses an empty or over-long value, in the field
    /// `username_or_email`.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let refused = |reason, description: &str| {
            Err(AuthError::InvalidInput(vec![FieldViolation {
                field: "username_or_email",
                reason,
                description: description.into(),
            }]))
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return refused(
                "FIELD_REQUIRED",
                "a username or an email address is required",
            );
        }
        // Counted before trimming, as the OpenAPI document's maxLength is.
        if raw.chars().count() > Self::MAX_CHARS {
            return refused(
                "INVALID_USERNAME_OR_EMAIL",
                "a username or an email address is at most 254 characters long",
            );
        }
        Ok(Self(trimmed.to_owned()))
    }
}

impl std::fmt::Debug for ResetLookup {
    /// An address is personal data: kept out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetLookup([REDACTED])")
    }
}

impl<S: Store> Authenticator<S> {
    /// Mails a password reset link to the verified address of the account
    /// `lookup` names (by its username, canonically, or by its verified
    /// address, normalised), if there is one; answers `Ok` either way.
    ///
    /// Only what is the same for every request runs before the answer: the
    /// mail check, the per-client limit, and taking a place in the bounded
    /// job pool (full: SERVER_BUSY for everyone). The lookup, the rate
    /// limits per account and address, the token and the outbox write run
    /// in a background job after it, so that neither the answer nor its
    /// timing tells whether an account exists or has an address
    /// (no enumeration, ASVS 6.4.1 with 2.1 of the OWASP forgot-password
    /// cheat sheet).
    #[tracing::instrument(skip_all, fields(client = %client.address))]
    pub fn request_password_reset(
        self: &Arc<Self>,
        lookup: ResetLookup,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        if !self.mail.delivers() {
            return Err(AuthError::MailNotConfigured);
        }
        self.limits.admit_login(client.address)?;
        let permit = Arc::clone(&self.reset_jobs.permits)
            .try_acquire_owned()
            .map_err(|_| AuthError::Overloaded {
                retry_after: BUSY_RETRY_AFTER,
            })?;
        let auth = Arc::clone(self);
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Err(error) = auth.mail_reset_link(&lookup).await {
                    tracing::warn!(error = ?error, "password reset request failed");
                }
                drop(permit);
            },
            span,
        ));
        Ok(())
    }

    /// The background half of a reset request: finds the account and its
    /// verified address, and mails the link within the budgets.
    async fn mail_reset_link(&self, lookup: &ResetLookup) -> Result<(), AuthError> {
        let Some((record, email)) = self.reset_recipient(lookup).await? else {
            tracing::info!("password reset requested for no account with a verified address");
            return Ok(());
        };
        let now = Utc::now();
        if !self
            .limits
            .admit_reset_mail(&self.store, record.id, &email.address_normalized, now)
            .await?
        {
            tracing::info!(user_id = %record.id, "password reset mail budget spent; nothing sent");
            return Ok(());
        }
        let (token, entries) = self.reset_mail(&record, &email, now)?;
        self.store.replace_mail_token(&token, &entries).await?;
        tracing::info!(user_id = %record.id, "password reset mailed");
        Ok(())
    }

    /// The enabled account `lookup` names and its verified address.
    async fn reset_recipient(
        &self,
        lookup: &ResetLookup,
    ) -> Result<Option<(UserRecord, EmailRecord)>, AuthError> {
        let mut record = match Username::parse(&lookup.0) {
            Ok(username) => self.store.find_user(username.canonical()).await?,
            Err(_) => None,
        };
        if record.is_none()
            && let Ok(address) = EmailAddress::parse(&lookup.0)
            && let Some(email) = self.store.verified_email(address.normalized()).await?
        {
            record = self.store.find_user_by_id(email.user_id).await?;
        }
        let Some(record) = record.filter(|record| record.disabled_at.is_none()) else {
            return Ok(None);
        };
        let email = self
            .store
            .email_of(record.id)
            .await?
            .filter(|email| email.verified_at.is_some());
        Ok(email.map(|email| (record, email)))
    }

    /// A new reset token for the account and what carries it (a mail, an
    /// event, or both).
    fn reset_mail(
        &self,
        record: &UserRecord,
        email: &EmailRecord,
        now: DateTime<Utc>,
    ) -> Result<(MailTokenRecord, Vec<OutboxEntry>), AuthError> {
        let NewOpaqueToken { token, hash } = PASSWORD_RESET.generate()?;
        let lifetime = self.mail.reset_lifetime;
        let link = format!(
            "{}{}{token}",
            self.mail.link_base,
            MailSettings::RESET_PASSWORD_ROUTE
        );
        let expires_at = now + delta(lifetime);
        let entries = self.notify(
            Notification {
                kind: MailKind::ResetPassword,
                recipient: &email.address,
                values: &[
                    ("username", &record.username),
                    ("link", &link),
                    ("valid_for", &spelled(lifetime)),
                ],
                event_type: PASSWORD_RESET_REQUESTED,
                data: serde_json::json!({
                    "user_id": record.id,
                    "username": record.username,
                    "email": email.address,
                    "link": link,
                    "expires_at": rfc3339(expires_at),
                }),
            },
            now,
        );
        let token = MailTokenRecord {
            token_hash: hash,
            user_id: record.id,
            purpose: MailPurpose::ResetPassword,
            address_normalized: email.address_normalized.clone(),
            created_at: now,
            expires_at,
        };
        Ok((token, entries))
    }

    /// Starts a passkey challenge for a reset of an account whose second
    /// factor is a passkey: the request options whose assertion
    /// ResetPassword's `passkey_credential_json` then carries. The
    /// challenge is bound to the token (no other token reaches it), expires
    /// with it at the latest, and a new start replaces it.
    #[tracing::instrument(skip_all)]
    pub async fn start_passkey_password_reset(&self, token: &str) -> Result<String, AuthError> {
        if !self.mail.delivers() {
            return Err(AuthError::MailNotConfigured);
        }
        let (hash, token, _) = self.live_reset_token(token).await?;
        self.start_bound_passkey_ceremony(
            token.user_id,
            Binding::ResetToken(&hash),
            Some(token.expires_at),
        )
        .await?
        .ok_or(AuthError::PasskeyNotFound)
    }

    /// Spends a reset token: the account's password becomes `new`, every
    /// session of it ends (on every instance), a notice goes to its
    /// verified address, and a new session starts. An account with a
    /// second factor must prove it here too (ASVS 6.4.3): without a proof
    /// the answer is MFA_REQUIRED and the token stays unspent; a wrong one
    /// counts against the account's budget as in CompleteLogin.
    #[tracing::instrument(skip_all, fields(client = %client.address))]
    pub async fn reset_password(
        &self,
        token: &str,
        new: Password,
        second: Option<SecondFactorProof>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<CompletedLogin, AuthError> {
        if !self.mail.delivers() {
            return Err(AuthError::MailNotConfigured);
        }
        self.limits.admit_login(client.address)?;
        // Before the database reads, so that a refused call costs none.
        let ticket = self.hasher.admit(deadline)?;
        let (hash, token, (record, email)) = self.live_reset_token(token).await?;
        let user_id = record.id;
        let mut authentication = Authentication::password(Utc::now());
        let mut recovery_codes_left = None;
        if self.has_second_factor(user_id).await? {
            let proof = second.ok_or(AuthError::MfaRequired)?;
            let (method, left) = self
                .check_second_factor(
                    user_id,
                    proof,
                    Some(Binding::ResetToken(&hash)),
                    client,
                    deadline,
                )
                .await?;
            authentication = authentication.and(method);
            recovery_codes_left = left;
        }
        let password_hash = self.hasher.hash(ticket, new).await?;
        let now = Utc::now();
        let notices =
            self.security_notice(&record, Some(&email), SecurityEvent::PasswordReset, client);
        // One conditional write: of racing resets with one token, one wins.
        if !self
            .store
            .reset_password(
                &token.token_hash,
                user_id,
                &password_hash,
                notices.as_slice(),
                now,
            )
            .await?
        {
            return Err(reset_token_invalid());
        }
        self.end_every_session(user_id, now.timestamp(), "password_reset")
            .await?;
        tracing::info!(%user_id, "password reset");
        let user = self.user_of(record).await?;
        let session = self.start_session(user, client, authentication).await?;
        Ok(CompletedLogin {
            session,
            recovery_codes_left,
        })
    }

    /// A presented reset token's hash, its record, and the enabled account
    /// with the verified address it was mailed to; anything else is
    /// PASSWORD_RESET_TOKEN_INVALID (unknown, expired, spent, replaced, or
    /// the address changed since).
    async fn live_reset_token(
        &self,
        presented: &str,
    ) -> Result<(String, MailTokenRecord, (UserRecord, EmailRecord)), AuthError> {
        let hash = PASSWORD_RESET
            .parse(presented)
            .ok_or_else(reset_token_invalid)?;
        let token = self
            .store
            .find_mail_token(&hash, MailPurpose::ResetPassword, Utc::now())
            .await?
            .ok_or_else(reset_token_invalid)?;
        let record = self
            .store
            .find_user_by_id(token.user_id)
            .await?
            .ok_or_else(reset_token_invalid)?;
        if record.disabled_at.is_some() {
            return Err(AuthError::AccountDisabled);
        }
        let email = self
            .store
            .email_of(record.id)
            .await?
            .filter(|email| email.verified_at.is_some())
            .filter(|email| email.address_normalized == token.address_normalized)
            .ok_or_else(reset_token_invalid)?;
        Ok((hash, token, (record, email)))
    }
}

fn reset_token_invalid() -> AuthError {
    AuthError::InvalidInput(vec![FieldViolation {
        field: "token",
        reason: "PASSWORD_RESET_TOKEN_INVALID",
        description: "the link is invalid, expired, used, or replaced by a newer one".into(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_is_refused_only_for_its_shape() {
        for refused in ["", "   ", &"a".repeat(ResetLookup::MAX_CHARS + 1)] {
            let Err(AuthError::InvalidInput(violations)) = ResetLookup::parse(refused) else {
                panic!("{refused:?} must be refused");
            };
            assert_eq!(violations[0].field, "username_or_email");
        }
        for accepted in ["ada", "Ada@Example.com", "no such name!", " x "] {
            assert!(ResetLookup::parse(accepted).is_ok(), "{accepted:?}");
        }
        let lookup = ResetLookup::parse("ada@example.com").unwrap();
        assert!(!format!("{lookup:?}").contains("ada"));
    }
}
