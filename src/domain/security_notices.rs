//! Security notices: a mail to the account's verified address after each
//! change to how it signs in (NIST SP 800-63B-4 asks for one when an
//! authenticator is bound, OWASP ASVS after any change to authentication
//! details). The notice is queued in the transaction of the change itself,
//! so a change is never stored without its notice nor a notice sent for a
//! change that failed. Never a secret in it: what happened, when, and from
//! which client. With a webhook configured, the same facts go out as an
//! event named by [`SecurityEvent::name`], under the same rule.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use serde_json::json;

use super::error::AuthError;
use super::mail_templates::MailKind;
use super::notifications::{Notification, rfc3339};
use super::ports::{EmailRecord, OutboxEntry, Store, UserRecord};
use super::service::{Authenticator, ClientInfo};

/// A change to how an account signs in that its owner is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEvent {
    PasswordChanged,
    /// Through a link mailed to the account's address.
    PasswordReset,
    TotpEnabled,
    TotpDisabled,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    PasskeyAdded,
    PasskeyRemoved,
    /// Told to the address that was replaced.
    EmailChanged,
    AccountDeleted,
}

impl SecurityEvent {
    /// The webhook event's `type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PasswordChanged => "password.changed",
            Self::PasswordReset => "password.reset",
            Self::TotpEnabled => "totp.enabled",
            Self::TotpDisabled => "totp.disabled",
            Self::RecoveryCodeUsed => "recovery_code.used",
            Self::RecoveryCodesRegenerated => "recovery_codes.regenerated",
            Self::PasskeyAdded => "passkey.added",
            Self::PasskeyRemoved => "passkey.removed",
            Self::EmailChanged => "email.changed",
            Self::AccountDeleted => "account.deleted",
        }
    }

    /// What the subject says.
    fn headline(self) -> &'static str {
        match self {
            Self::PasswordChanged => "your password was changed",
            Self::PasswordReset => "your password was reset",
            Self::TotpEnabled => "two-step verification was turned on",
            Self::TotpDisabled => "two-step verification was turned off",
            Self::RecoveryCodeUsed => "a recovery code was used",
            Self::RecoveryCodesRegenerated => "new recovery codes were made",
            Self::PasskeyAdded => "a passkey was added",
            Self::PasskeyRemoved => "a passkey was removed",
            Self::EmailChanged => "your email address was changed",
            Self::AccountDeleted => "your account was deleted",
        }
    }

    /// The mail's first sentence.
    fn sentence(self) -> &'static str {
        match self {
            Self::PasswordChanged => "The password of your account was changed.",
            Self::PasswordReset => {
                "The password of your account was reset through the link mailed to this address, and every session of the account was ended."
            }
            Self::TotpEnabled => {
                "An authenticator app (TOTP) was set up as the second step of signing in to your account, with a new set of recovery codes."
            }
            Self::TotpDisabled => {
                "The authenticator app (TOTP) and the recovery codes of your account were removed: signing in no longer asks for a code from it."
            }
            Self::RecoveryCodeUsed => {
                "One of your account's recovery codes was used to sign in or to confirm a change. Each code works once."
            }
            Self::RecoveryCodesRegenerated => {
                "A new set of recovery codes was made for your account: the previous codes no longer work."
            }
            Self::PasskeyAdded => "A new passkey was added to your account: it can sign in to it.",
            Self::PasskeyRemoved => "A passkey was removed from your account.",
            Self::EmailChanged => {
                "The email address of your account was replaced by another one: this address will get no more mail about it."
            }
            Self::AccountDeleted => "Your account was deleted, with its sessions.",
        }
    }
}

impl<S: Store> Authenticator<S> {
    /// The notices of `event` for the account `user_id`, when it has a
    /// verified address and mail or a webhook is on; `client` made the
    /// change. (An operator's changes, `authd users ...`, send none: the
    /// operator speaks to the user.)
    pub(super) async fn security_notice_for(
        &self,
        user_id: Uuid,
        event: SecurityEvent,
        client: &ClientInfo,
    ) -> Result<Vec<OutboxEntry>, AuthError> {
        if !self.mail.delivers() {
            return Ok(Vec::new());
        }
        let Some(facts) = self.store.account_facts(user_id).await? else {
            return Ok(Vec::new());
        };
        Ok(self.security_notice(&facts.user, facts.email.as_ref(), event, client))
    }

    /// The notices of `event` to `email`, when it is verified and mail or a
    /// webhook is on: the mail, the event, or both.
    pub(super) fn security_notice(
        &self,
        user: &UserRecord,
        email: Option<&EmailRecord>,
        event: SecurityEvent,
        client: &ClientInfo,
    ) -> Vec<OutboxEntry> {
        let Some(email) = email.filter(|email| email.verified_at.is_some()) else {
            return Vec::new();
        };
        let now = Utc::now();
        self.notify(
            Notification {
                kind: MailKind::SecurityNotice,
                recipient: &email.address,
                values: &[
                    ("username", &user.username),
                    ("event", event.headline()),
                    ("event_sentence", event.sentence()),
                    ("when", &spelled_time(now)),
                    ("client", &spelled_client(client)),
                ],
                event_type: event.name(),
                data: json!({
                    "user_id": user.id,
                    "username": user.username,
                    "email": email.address,
                    "occurred_at": rfc3339(now),
                    "client_address": client.address.to_string(),
                    "user_agent": client.user_agent,
                }),
            },
            now,
        )
    }
}

fn spelled_time(at: DateTime<Utc>) -> String {
    at.format("%A %-d %B %Y, %H:%M:%S UTC").to_string()
}

fn spelled_client(client: &ClientInfo) -> String {
    if client.user_agent.is_empty() {
        format!("address {}, no browser or app named", client.address)
    } else {
        format!("address {}, {}", client.address, client.user_agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_named_by_address_and_user_agent() {
        let browser = ClientInfo::new("192.0.2.7".parse().unwrap(), Some("Firefox/140"));
        assert_eq!(spelled_client(&browser), "address 192.0.2.7, Firefox/140");
        let bare = ClientInfo::new("2001:db8::1".parse().unwrap(), None);
        assert_eq!(
            spelled_client(&bare),
            "address 2001:db8::1, no browser or app named"
        );
    }

    #[test]
    fn times_are_spelled_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T21:09:18Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(spelled_time(at), "Monday 7 December 2026, 21:09:18 UTC");
    }
}
