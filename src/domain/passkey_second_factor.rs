//! A passkey as the second factor after a password, and as a step-up's
//! proof. Its challenge is bound to what it completes: a Login's ticket or
//! the caller's session, or a password reset's token. The ceremony's id is derived from that binding (a
//! hash of the ticket's or reset token's hash, or of the session id), so a request needs no
//! field naming it and no other ticket or session can reach it; the
//! ceremony is spent by its first assertion, right or wrong.

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;
use webauthn_rs::prelude::{Passkey, PublicKeyCredential};

use super::authentication::Method;
use super::error::AuthError;
use super::passkeys::credential_id_text;
use super::ports::{CeremonyKind, CeremonyRecord, PasskeyUse, Store};
use super::service::Authenticator;
use super::sessions::caller;
use authd_token::Claims;

/// What a passkey's challenge is bound to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Binding<'a> {
    /// A Login's ticket, by its hash.
    Ticket(&'a str),
    /// A session, for a step-up or a reauthentication.
    Session(Uuid),
    /// A password reset token, by its hash.
    ResetToken(&'a str),
}

impl Binding<'_> {
    /// The id of the ceremony bound to it.
    fn ceremony_id(self) -> Uuid {
        let mut hash = Sha256::new();
        match self {
            Self::Ticket(ticket_hash) => {
                hash.update(b"authd passkey ceremony of a ticket\0");
                hash.update(ticket_hash.as_bytes());
            }
            Self::Session(session_id) => {
                hash.update(b"authd passkey ceremony of a session\0");
                hash.update(session_id.as_bytes());
            }
            Self::ResetToken(token_hash) => {
                hash.update(b"authd passkey ceremony of a password reset\0");
                hash.update(token_hash.as_bytes());
            }
        }
        let digest = hash.finalize();
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

impl<S: Store> Authenticator<S> {
    /// Starts a passkey ceremony for the account's passkeys bound to
    /// `binding`, expiring with `bound_until` at the latest: the request
    /// options, or `None` when the account has no passkey. A ceremony
    /// already bound there is replaced.
    pub(super) async fn start_bound_passkey_ceremony(
        &self,
        user_id: Uuid,
        binding: Binding<'_>,
        bound_until: Option<DateTime<Utc>>,
    ) -> Result<Option<String>, AuthError> {
        let passkeys: Vec<Passkey> = self
            .store
            .passkeys_of(user_id)
            .await?
            .iter()
            .map(|record| serde_json::from_str(&record.credential).map_err(AuthError::internal))
            .collect::<Result<_, _>>()?;
        if passkeys.is_empty() {
            return Ok(None);
        }
        let started = self.factors.passkeys.relying_party.start_login(&passkeys)?;
        let lifetime = TimeDelta::from_std(self.factors.passkeys.ceremony_lifetime)
            .map_err(AuthError::internal)?;
        let own_expiry = Utc::now() + lifetime;
        self.store
            .insert_passkey_ceremony(&CeremonyRecord {
                id: binding.ceremony_id(),
                kind: CeremonyKind::SecondFactor,
                user_id: Some(user_id),
                state: started.state,
                expires_at: bound_until.map_or(own_expiry, |until| until.min(own_expiry)),
            })
            .await?;
        Ok(Some(started.options_json))
    }

    /// Starts a passkey challenge for a step-up or a reauthentication of
    /// the caller's session: the request options whose assertion a
    /// request's `passkey_credential_json` then carries. A new start
    /// replaces the session's earlier challenge.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn start_passkey_reauthentication(
        &self,
        claims: &Claims,
    ) -> Result<String, AuthError> {
        let user_id = caller(claims)?;
        let session_id = claims.session_id().ok_or(AuthError::SessionEnded)?;
        self.start_bound_passkey_ceremony(user_id, Binding::Session(session_id), None)
            .await?
            .ok_or(AuthError::PasskeyNotFound)
    }

    /// Checks an assertion by one of the account's passkeys against the
    /// challenge bound to `binding`, spending the challenge, and records
    /// the passkey's use. The outer error is the store's; the inner one a
    /// refusal, to count as a wrong second factor.
    pub(super) async fn check_passkey_assertion(
        &self,
        user_id: Uuid,
        binding: Option<Binding<'_>>,
        assertion: &PublicKeyCredential,
    ) -> Result<Result<Method, AuthError>, AuthError> {
        let Some(binding) = binding else {
            return Ok(Err(AuthError::PasskeyCeremonyInvalid));
        };
        let Some(ceremony) = self
            .store
            .take_passkey_ceremony(
                binding.ceremony_id(),
                CeremonyKind::SecondFactor,
                Utc::now(),
            )
            .await?
            .filter(|ceremony| ceremony.user_id == Some(user_id))
        else {
            return Ok(Err(AuthError::PasskeyCeremonyInvalid));
        };
        let credential_id = credential_id_text(assertion.get_credential_id());
        let Some(stored) = self
            .store
            .passkey_by_credential_id(&credential_id)
            .await?
            .filter(|stored| stored.user_id == user_id)
        else {
            return Ok(Err(AuthError::PasskeyVerificationFailed));
        };
        let passkey: Passkey =
            serde_json::from_str(&stored.credential).map_err(AuthError::internal)?;
        let stored_sign_count = u32::try_from(stored.sign_count).map_err(AuthError::internal)?;
        let used = match self.factors.passkeys.relying_party.finish_login(
            &ceremony.state,
            assertion,
            &passkey,
            stored_sign_count,
        ) {
            Ok(used) => used,
            Err(
                refusal @ (AuthError::PasskeyVerificationFailed
                | AuthError::UserVerificationRequired),
            ) => return Ok(Err(refusal)),
            Err(error) => return Err(error),
        };
        // Of racing uses checked against one counter, one is recorded.
        let recorded = self
            .store
            .record_passkey_use(&PasskeyUse {
                id: stored.id,
                previous_sign_count: stored.sign_count,
                sign_count: i64::from(used.sign_count),
                credential: serde_json::to_string(&used.passkey).map_err(AuthError::internal)?,
                backed_up: used.backed_up,
                at: Utc::now(),
            })
            .await?;
        if !recorded {
            return Ok(Err(AuthError::PasskeyVerificationFailed));
        }
        tracing::info!(passkey_id = %stored.id, "passkey accepted as a second factor");
        Ok(Ok(Method::Passkey {
            synced: used.backup_eligible,
        }))
    }

    /// Whether the account has a passkey.
    pub(super) async fn has_passkey(&self, user_id: Uuid) -> Result<bool, AuthError> {
        Ok(!self.store.passkeys_of(user_id).await?.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ceremony_bound_to_one_ticket_or_session_is_not_bound_to_another() {
        let session = Uuid::now_v7();
        assert_eq!(
            Binding::Session(session).ceremony_id(),
            Binding::Session(session).ceremony_id()
        );
        assert_ne!(
            Binding::Session(session).ceremony_id(),
            Binding::Session(Uuid::now_v7()).ceremony_id()
        );
        assert_ne!(
            Binding::Ticket("a").ceremony_id(),
            Binding::Ticket("b").ceremony_id()
        );
        assert_ne!(
            Binding::Ticket(&session.to_string()).ceremony_id(),
            Binding::Session(session).ceremony_id()
        );
        assert_ne!(
            Binding::Ticket("a").ceremony_id(),
            Binding::ResetToken("a").ceremony_id()
        );
    }
}
