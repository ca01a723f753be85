//! Accounts whose only credential is a passkey (issue 20): signing up with
//! a passkey, in the two calls a WebAuthn registration takes, and adding a
//! password later. Removing such an account's last passkey is refused in
//! `passkeys` (the store decides it under a lock).

use chrono::{SubsecRound as _, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use authd_token::Claims;

use super::authentication::Authentication;
use super::credentials::{Password, Username};
use super::error::AuthError;
use super::passkeys::{PasskeyCeremony, Started, credential_id_text, passkey_name};
use super::ports::{CeremonyKind, PasskeyRecord, Store, UserRecord};
use super::service::{Authenticator, ClientInfo, Session, User};
use super::sessions::caller;
use super::step_up::StepUp;
use crate::deadline::Deadline;

/// What a sign-up ceremony keeps on the server until it finishes: the
/// account is created then, not before, so that the name is claimed by the
/// unique index at that moment.
#[derive(Serialize, Deserialize)]
struct SignupState {
    /// As the client gave it, parsed at the start.
    username: String,
    /// The WebAuthn user handle the new passkey keeps: random, not the
    /// account's id.
    user_handle: Uuid,
    /// webauthn-rs' registration state, serialised.
    registration: String,
}

/// The backup flags of a credential webauthn-rs just registered, as its
/// serialised form holds them (its accessors are behind a "danger" feature).
#[derive(Deserialize)]
struct RegisteredFlags {
    cred: BackupFlags,
}

#[derive(Deserialize)]
struct BackupFlags {
    /// May be synced: a software key (`swk`) rather than a device-bound one.
    backup_eligible: bool,
    /// Is backed up (synced) now.
    backup_state: bool,
}

impl<S: Store> Authenticator<S> {
    /// Starts signing up `username` with a passkey: creation options for a
    /// discoverable credential with user verification. Counts against the
    /// per-address registration limit, once per sign-up (a finish spends the
    /// ceremony a start counted). A taken name is told here, as Register
    /// tells it; a free one is claimed only when the sign-up finishes.
    #[tracing::instrument(skip_all, fields(client = %client.address))]
    pub async fn start_passkey_signup(
        &self,
        username: &str,
        client: &ClientInfo,
    ) -> Result<PasskeyCeremony, AuthError> {
        self.limits.admit_registration(client.address)?;
        let username = Username::parse(username)
            .map_err(|violation| AuthError::InvalidInput(vec![violation]))?;
        if self.store.find_user(username.canonical()).await?.is_some() {
            return Err(AuthError::UsernameTaken);
        }
        let user_handle = Uuid::new_v4();
        let started = self
            .factors
            .passkeys
            .relying_party
            .start_signup(user_handle, username.as_str())?;
        let state = SignupState {
            username: username.as_str().to_owned(),
            user_handle,
            registration: started.state,
        };
        let started = Started {
            options_json: started.options_json,
            state: serde_json::to_string(&state).map_err(AuthError::internal)?,
        };
        self.keep_ceremony(CeremonyKind::Signup, None, started)
            .await
    }

    /// Finishes a passkey sign-up (RegisterWithPasskey): creates the
    /// account, without a password, with this passkey named `name`, and
    /// starts its first session, a passkey session as FinishPasskeyLogin
    /// starts. Of racing sign-ups for one name, the first to finish has it;
    /// the others get `UsernameTaken`.
    #[tracing::instrument(skip_all, fields(client = %client.address))]
    pub async fn register_with_passkey(
        &self,
        ceremony_id: &str,
        credential_json: &str,
        name: &str,
        client: &ClientInfo,
    ) -> Result<Session, AuthError> {
        let name = passkey_name(name)?;
        let ceremony = self
            .take_ceremony(ceremony_id, CeremonyKind::Signup)
            .await?;
        let state: SignupState =
            serde_json::from_str(&ceremony.state).map_err(AuthError::internal)?;
        // Parsed at the start: a name that no longer parses is a bug.
        let username = Username::parse(&state.username)
            .map_err(|violation| AuthError::internal(violation.to_string()))?;
        let passkey = self
            .factors
            .passkeys
            .relying_party
            .finish_registration(&state.registration, credential_json)?;
        let credential = serde_json::to_string(&passkey).map_err(AuthError::internal)?;
        let flags: RegisteredFlags =
            serde_json::from_str(&credential).map_err(AuthError::internal)?;
        // As PostgreSQL keeps it (microseconds), as ListPasskeys will answer.
        let now = Utc::now().trunc_subsecs(6);
        let user = User {
            id: Uuid::now_v7(),
            username: username.as_str().to_owned(),
            email: None,
            email_verified: false,
        };
        let record = PasskeyRecord {
            id: Uuid::now_v7(),
            user_id: user.id,
            credential_id: credential_id_text(passkey.cred_id()),
            credential,
            name,
            created_at: now,
            last_used_at: None,
            backed_up: flags.cred.backup_state,
            sign_count: 0,
        };
        self.store
            .insert_passkey_account(
                UserRecord {
                    id: user.id,
                    username: user.username.clone(),
                    username_canonical: username.canonical().to_owned(),
                    password_hash: None,
                    created_at: now,
                    disabled_at: None,
                },
                state.user_handle,
                &record,
            )
            .await?;
        tracing::info!(user_id = %user.id, passkey_id = %record.id, "registered with a passkey");
        self.start_session(
            user,
            client,
            Authentication::passkey(now, flags.cred.backup_eligible),
        )
        .await
    }

    /// Gives the caller's account, which has no password, this one. Needs a
    /// recent authentication, with the second factor when the account has
    /// one (a recent passkey sign-in is both). Sessions stay: nothing they
    /// were started with has changed.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn set_password(
        &self,
        claims: &Claims,
        new: Password,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<(), AuthError> {
        let user_id = caller(claims)?;
        let record = self.caller_record(claims).await?;
        if record.password_hash.is_some() {
            return Err(AuthError::PasswordAlreadySet);
        }
        self.require_step_up(
            claims,
            user_id,
            StepUp::without_password(None),
            client,
            deadline,
        )
        .await?;
        let ticket = self.hasher.admit(deadline)?;
        let password_hash = self.hasher.hash(ticket, new).await?;
        // A racing SetPassword may have set one since the read above.
        if !self
            .store
            .set_first_password_hash(user_id, &password_hash)
            .await?
        {
            return Err(AuthError::PasswordAlreadySet);
        }
        tracing::info!("password set");
        Ok(())
    }
}
