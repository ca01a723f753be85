//! An account's email address and its verification by mail: Register may
//! bring one, SetEmail sets or replaces it, VerifyEmail takes the token
//! mailed to it back, ResendEmailVerification mails a new one. Each mail is
//! stored with the change it reports (the outbox, `outbox.rs`); each token
//! is an opaque token of its own kind, stored as its hash, single use, and
//! voided by the next one. With a webhook configured the link goes out as
//! an event too (or only as one, without `--smtp-url`). With neither,
//! addresses are still stored, but nothing that would mail one runs
//! (MAIL_NOT_CONFIGURED).

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::credentials::email::EmailAddress;
use super::error::{AuthError, FieldViolation};
use super::mail_templates::{MailKind, MailTemplates};
use super::notifications::{Notification, VERIFICATION_REQUESTED, rfc3339};
use super::opaque_tokens::{EMAIL_VERIFICATION, NewOpaqueToken};
use super::ports::{
    EmailRecord, MailPurpose, MailTokenRecord, OutboxEntry, OutboxMail, Store, UserRecord,
};
use super::second_factor::SecondFactorProof;
use super::security_notices::SecurityEvent;
use super::service::{Authenticator, ClientInfo, User};
use super::sessions::{caller, delta};
use super::step_up::StepUp;
use crate::deadline::Deadline;
use authd_token::Claims;

/// How mails are composed, and whether any is sent.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Whether mail is sent (`--smtp-url`).
    pub smtp: bool,
    /// Whether notification events are posted
    /// (`--notification-webhook-url`).
    pub webhook: bool,
    pub templates: MailTemplates,
    /// Where links point: `--public-url`, else the listen address, without
    /// a trailing slash.
    pub link_base: String,
    /// The right-hand side of Message-IDs: `--mail-from`'s domain.
    pub message_id_domain: String,
    /// How long a verification link works (`--email-verification-lifetime`).
    pub verification_lifetime: Duration,
    /// How long a password reset link works (`--password-reset-lifetime`).
    pub reset_lifetime: Duration,
}

impl Default for MailSettings {
    /// Mail off.
    fn default() -> Self {
        Self {
            smtp: false,
            webhook: false,
            templates: MailTemplates::default(),
            link_base: "http://localhost".into(),
            message_id_domain: "localhost".into(),
            verification_lifetime: Duration::from_secs(24 * 60 * 60),
            reset_lifetime: Duration::from_secs(30 * 60),
        }
    }
}

impl MailSettings {
    /// Whether anything carries a notification (a mail, a webhook event, or
    /// both): without, nothing that needs one runs (MAIL_NOT_CONFIGURED).
    pub fn delivers(&self) -> bool {
        self.smtp || self.webhook
    }

    /// The page's route a verification link opens. In the fragment, so that
    /// the token never reaches a server's access log or a Referer.
    pub const VERIFY_EMAIL_ROUTE: &'static str = "/#/verify-email?token=";

    /// The page's route a password reset link opens, in the fragment for
    /// the same reason.
    pub const RESET_PASSWORD_ROUTE: &'static str = "/#/reset-password?token=";
}

/// A verification token and what carries it (a mail, an event, or both),
/// ready to store.
struct Verification {
    token: MailTokenRecord,
    entries: Vec<OutboxEntry>,
}

impl<S: Store> Authenticator<S> {
    /// The account as clients see it, with its address.
    pub(super) async fn user_of(&self, record: UserRecord) -> Result<User, AuthError> {
        let email = self.store.email_of(record.id).await?;
        Ok(User::new(record, email.as_ref()))
    }

    /// The stored address of a new account, and, when mail or a webhook is
    /// on, its verification token and what carries it (the address's budget
    /// spent); `None` without an address.
    pub(super) async fn new_account_email(
        &self,
        user_id: Uuid,
        username: &str,
        email: Option<&EmailAddress>,
    ) -> Result<Option<(EmailRecord, Option<(MailTokenRecord, Vec<OutboxEntry>)>)>, AuthError> {
        let Some(address) = email else {
            return Ok(None);
        };
        let now = Utc::now();
        let record = email_record(user_id, address, now);
        if !self.mail.delivers() {
            return Ok(Some((record, None)));
        }
        self.limits
            .admit_verification_mail(&self.store, None, address.normalized(), now)
            .await?;
        let verification = self.verification(user_id, username, address, now)?;
        Ok(Some((
            record,
            Some((verification.token, verification.entries)),
        )))
    }

    /// Sets or replaces the caller's address, after a step-up: unverified
    /// until the token mailed to it comes back, the previous token void.
    /// Setting the address it has verified already changes nothing.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn set_email(
        &self,
        claims: &Claims,
        address: EmailAddress,
        second: Option<SecondFactorProof>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<User, AuthError> {
        let user_id = caller(claims)?;
        // Before the step-up, which may spend a code.
        if !self.mail.delivers() {
            return Err(AuthError::MailNotConfigured);
        }
        self.require_step_up(
            claims,
            user_id,
            StepUp::without_password(second),
            client,
            deadline,
        )
        .await?;
        let record = self.account(user_id).await?;
        let current = self.store.email_of(user_id).await?;
        if let Some(current) = current
            .as_ref()
            .filter(|current| current.address_normalized == address.normalized())
            .filter(|current| current.verified_at.is_some())
        {
            return Ok(User::new(record, Some(current)));
        }
        let now = Utc::now();
        self.limits
            .admit_verification_mail(&self.store, Some(user_id), address.normalized(), now)
            .await?;
        let email = email_record(user_id, &address, now);
        let verification = self.verification(user_id, &record.username, &address, now)?;
        // A verified address being replaced is told so, in the transaction
        // that replaces it.
        let mut entries = verification.entries;
        entries.extend(self.security_notice(
            &record,
            current.as_ref(),
            SecurityEvent::EmailChanged,
            client,
        ));
        self.store
            .replace_email(&email, &verification.token, &entries)
            .await?;
        tracing::info!(replaced = current.is_some(), "email address set");
        Ok(User::new(record, Some(&email)))
    }

    /// Mails a new verification token to the caller's unverified address;
    /// the previous one stops working.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn resend_email_verification(&self, claims: &Claims) -> Result<(), AuthError> {
        let user_id = caller(claims)?;
        if !self.mail.delivers() {
            return Err(AuthError::MailNotConfigured);
        }
        let email = self
            .store
            .email_of(user_id)
            .await?
            .ok_or(AuthError::EmailNotSet)?;
        if email.verified_at.is_some() {
            return Err(AuthError::EmailAlreadyVerified);
        }
        let now = Utc::now();
        self.limits
            .admit_verification_mail(&self.store, Some(user_id), &email.address_normalized, now)
            .await?;
        let record = self.account(user_id).await?;
        // Stored addresses passed `EmailAddress::parse` once.
        let address = EmailAddress::parse(&email.address).map_err(|violation| {
            AuthError::internal(format!("stored address refused: {violation}"))
        })?;
        let verification = self.verification(user_id, &record.username, &address, now)?;
        self.store
            .replace_mail_token(&verification.token, &verification.entries)
            .await?;
        tracing::info!("email verification mailed again");
        Ok(())
    }

    /// Spends a verification token: the address it was mailed to is
    /// verified, unless another account verified it first (EMAIL_TAKEN).
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str) -> Result<User, AuthError> {
        if !self.mail.delivers() {
            return Err(AuthError::MailNotConfigured);
        }
        let invalid = || {
            AuthError::InvalidInput(vec![FieldViolation {
                field: "token",
                reason: "EMAIL_TOKEN_INVALID",
                description: "the link is invalid, expired, used, or replaced by a newer one"
                    .into(),
            }])
        };
        let hash = EMAIL_VERIFICATION.parse(token).ok_or_else(invalid)?;
        let email = self
            .store
            .verify_email(&hash, Utc::now())
            .await?
            .ok_or_else(invalid)?;
        let record = self.account(email.user_id).await?;
        tracing::info!(user_id = %email.user_id, "email address verified");
        Ok(User::new(record, Some(&email)))
    }

    async fn account(&self, user_id: Uuid) -> Result<UserRecord, AuthError> {
        self.store
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::SessionEnded)
    }

    /// A new verification token for `address` and what carries it.
    fn verification(
        &self,
        user_id: Uuid,
        username: &str,
        address: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<Verification, AuthError> {
        let NewOpaqueToken { token, hash } = EMAIL_VERIFICATION.generate()?;
        let lifetime = self.mail.verification_lifetime;
        let link = format!(
            "{}{}{token}",
            self.mail.link_base,
            MailSettings::VERIFY_EMAIL_ROUTE
        );
        let expires_at = now + delta(lifetime);
        Ok(Verification {
            token: MailTokenRecord {
                token_hash: hash,
                user_id,
                purpose: MailPurpose::VerifyEmail,
                address_normalized: address.normalized().to_owned(),
                created_at: now,
                expires_at,
            },
            entries: self.notify(
                Notification {
                    kind: MailKind::VerifyEmail,
                    recipient: address.as_str(),
                    values: &[
                        ("username", username),
                        ("email", address.as_str()),
                        ("link", &link),
                        ("valid_for", &spelled(lifetime)),
                    ],
                    event_type: VERIFICATION_REQUESTED,
                    data: serde_json::json!({
                        "user_id": user_id,
                        "username": username,
                        "email": address.as_str(),
                        "link": link,
                        "expires_at": rfc3339(expires_at),
                    }),
                },
                now,
            ),
        })
    }

    /// A mail of `kind` to `recipient`, rendered with `values`, ready for
    /// the outbox.
    pub(super) fn outbox_mail(
        &self,
        kind: MailKind,
        recipient: &str,
        values: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> OutboxMail {
        let rendered = self.mail.templates.render(kind, values);
        let id = Uuid::now_v7();
        OutboxMail {
            id,
            message_id: format!("{id}@{}", self.mail.message_id_domain),
            recipient: recipient.to_owned(),
            subject: rendered.subject,
            text_body: rendered.text,
            html_body: rendered.html,
            created_at: now,
        }
    }
}

fn email_record(user_id: Uuid, address: &EmailAddress, now: DateTime<Utc>) -> EmailRecord {
    EmailRecord {
        user_id,
        address: address.as_str().to_owned(),
        address_normalized: address.normalized().to_owned(),
        created_at: now,
        verified_at: None,
    }
}

/// A lifetime as a mail says it: "24 hours", "30 minutes", "90 seconds".
pub(super) fn spelled(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (count, unit) = if seconds >= 3600 && seconds.is_multiple_of(3600) {
        (seconds / 3600, "hour")
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_spelled_in_their_largest_whole_unit() {
        assert_eq!(spelled(Duration::from_secs(24 * 3600)), "24 hours");
        assert_eq!(spelled(Duration::from_secs(3600)), "1 hour");
        assert_eq!(spelled(Duration::from_secs(30 * 60)), "30 minutes");
        assert_eq!(spelled(Duration::from_secs(90)), "90 seconds");
        assert_eq!(spelled(Duration::from_secs(1)), "1 second");
    }
}
