//! Passkeys (WebAuthn, issue 20): the relying party that checks them.
//! webauthn-rs does the ceremony itself; authd keeps its state in the
//! database, so that any instance can finish what another started.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use std::time::Duration;

use authd_token::Claims;
use chrono::{DateTime, SubsecRound as _, Utc};

use super::authentication::Authentication;
use super::credentials::Username;
use super::error::{AuthError, FieldViolation};
use super::ports::{
    CeremonyKind, CeremonyRecord, PasskeyRecord, PasskeyRemoval, PasskeyUse, Spend, Store,
};
use super::second_factor::SecondFactorProof;
use super::security_notices::SecurityEvent;
use super::service::{Authenticator, ClientInfo, Session, User};
use super::sessions::caller;
use super::step_up::StepUp;
use crate::deadline::Deadline;

/// The WebAuthn relying party: an RP id and the page origins allowed to
/// run ceremonies for it.
#[derive(Clone, Debug)]
pub struct RelyingParty {
    webauthn: Webauthn,
}

/// Why a relying party cannot be set up: an origin whose host is neither
/// the RP id nor one of its subdomains, which browsers would refuse anyway.
#[derive(Debug)]
pub struct OriginNotOnRpId {
    origin: String,
    rp_id: String,
}

impl fmt::Display for OriginNotOnRpId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "WebAuthn origin {} is not on the RP id {}: its host must be {} or a subdomain of it",
            self.origin, self.rp_id, self.rp_id
        )
    }
}

impl std::error::Error for OriginNotOnRpId {}

impl RelyingParty {
    /// # Errors
    ///
    /// [`OriginNotOnRpId`] when an origin's host is not `rp_id` or a
    /// subdomain of it (or there is no origin at all).
    pub fn new(rp_id: &str, origins: &[Url]) -> Result<Self, OriginNotOnRpId> {
        let refused = |origin: &Url| OriginNotOnRpId {
            origin: origin.origin().ascii_serialization(),
            rp_id: rp_id.to_owned(),
        };
        let on_rp_id = |origin: &Url| {
            origin.domain().is_some_and(|host| {
                host == rp_id
                    || host
                        .strip_suffix(rp_id)
                        .is_some_and(|prefix| prefix.ends_with('.'))
            })
        };
        let Some((first, others)) = origins.split_first() else {
            return Err(OriginNotOnRpId {
                origin: "(none)".into(),
                rp_id: rp_id.to_owned(),
            });
        };
        if let Some(origin) = origins.iter().find(|origin| !on_rp_id(origin)) {
            return Err(refused(origin));
        }
        let builder = others.iter().fold(
            WebauthnBuilder::new(rp_id, first).map_err(|_| refused(first))?,
            |builder, origin| builder.append_allowed_origin(origin),
        );
        let webauthn = builder
            .rp_name("authd")
            .build()
            .map_err(|_| refused(first))?;
        Ok(Self { webauthn })
    }

    /// The origins ceremonies may come from.
    pub fn origins(&self) -> &[Url] {
        self.webauthn.get_allowed_origins()
    }

    /// Starts registering a passkey for the account with this user handle,
    /// excluding the credentials it has already.
    ///
    /// # Errors
    ///
    /// `AuthError::Internal` if webauthn-rs cannot make the options.
    pub fn start_registration(
        &self,
        user_handle: Uuid,
        username: &str,
        registered: &[Passkey],
    ) -> Result<Started, AuthError> {
        let exclude: Vec<CredentialID> = registered
            .iter()
            .map(|passkey| passkey.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(
                user_handle,
                username,
                username,
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(AuthError::internal)?;
        let mut options = serde_json::to_value(&options.public_key).map_err(AuthError::internal)?;
        // A passkey is a discoverable credential: autofill and a sign-in
        // without a username find it by its user handle. webauthn-rs asks
        // for "discouraged", which authenticators that honour it (security
        // keys, Chromium's virtual one) take as leave it undiscoverable;
        // "preferred" still lets one that cannot keep it register.
        options["authenticatorSelection"]["residentKey"] = "preferred".into();
        Started::new(&options, &state)
    }

    /// Starts registering the first passkey of an account still to be
    /// created: a discoverable one (resident key required), since the
    /// account will have no other credential to name it by. webauthn-rs
    /// leaves residency to the authenticator; whether it complied is only
    /// the client's unsigned word (`credProps`), so it is asked, not checked.
    ///
    /// # Errors
    ///
    /// `AuthError::Internal` if webauthn-rs cannot make the options.
    pub fn start_signup(&self, user_handle: Uuid, username: &str) -> Result<Started, AuthError> {
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user_handle, username, username, None)
            .map_err(AuthError::internal)?;
        let mut options = serde_json::to_value(&options.public_key).map_err(AuthError::internal)?;
        options["authenticatorSelection"]["residentKey"] = "required".into();
        options["authenticatorSelection"]["requireResidentKey"] = true.into();
        Started::new(&options, &state)
    }

    /// Checks a new credential against its registration's state.
    ///
    /// # Errors
    ///
    /// `PasskeyVerificationFailed` for a credential that does not parse or
    /// check out, `UserVerificationRequired` without user verification.
    pub fn finish_registration(
        &self,
        state: &str,
        credential_json: &str,
    ) -> Result<Passkey, AuthError> {
        let state: PasskeyRegistration =
            serde_json::from_str(state).map_err(AuthError::internal)?;
        let credential: RegisterPublicKeyCredential = serde_json::from_str(credential_json)
            .map_err(|_| AuthError::PasskeyVerificationFailed)?;
        self.webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(refusal)
    }

    /// Starts a sign-in with one of these passkeys (an account's).
    ///
    /// # Errors
    ///
    /// `AuthError::Internal` if webauthn-rs cannot make the options.
    pub fn start_login(&self, passkeys: &[Passkey]) -> Result<Started, AuthError> {
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(passkeys)
            .map_err(AuthError::internal)?;
        Started::new(&options.public_key, &LoginState::Known(state))
    }

    /// Starts a sign-in with whichever passkey the browser offers (a
    /// discoverable credential, for autofill).
    ///
    /// # Errors
    ///
    /// `AuthError::Internal` if webauthn-rs cannot make the options.
    pub fn start_discoverable_login(&self) -> Result<Started, AuthError> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(AuthError::internal)?;
        Started::new(&options.public_key, &LoginState::Discoverable(state))
    }

    /// Starts a sign-in no passkey can finish, for a username without
    /// passkeys: options shaped like a real account's, naming
    /// `decoy_credential_ids`.
    ///
    /// # Errors
    ///
    /// `AuthError::Internal` if webauthn-rs cannot make the options.
    pub fn start_decoy_login(
        &self,
        decoy_credential_ids: &[Vec<u8>],
    ) -> Result<Started, AuthError> {
        let (options, _) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(AuthError::internal)?;
        let mut options = serde_json::to_value(&options.public_key).map_err(AuthError::internal)?;
        // As webauthn-rs writes an account's (start_login), minus its
        // discoverable-only extensions.
        options["allowCredentials"] = decoy_credential_ids
            .iter()
            .map(|id| serde_json::json!({ "type": "public-key", "id": credential_id_text(id) }))
            .collect();
        if let Some(options) = options.as_object_mut() {
            options.remove("extensions");
        }
        Started::new(&options, &LoginState::Decoy)
    }

    /// Checks an assertion by `passkey`, whose stored counter is
    /// `stored_sign_count`, against its sign-in's state; returns the
    /// passkey as updated by the use.
    ///
    /// # Errors
    ///
    /// `PasskeyVerificationFailed` for one that does not check out,
    /// including a signature counter that did not go up on a passkey that
    /// counts (logged at warn: a cloned authenticator);
    /// `UserVerificationRequired` without user verification.
    pub fn finish_login(
        &self,
        state: &str,
        assertion: &PublicKeyCredential,
        passkey: &Passkey,
        stored_sign_count: u32,
    ) -> Result<UsedPasskey, AuthError> {
        let state: LoginState = serde_json::from_str(state).map_err(AuthError::internal)?;
        let result = match state {
            LoginState::Known(state) => self
                .webauthn
                .finish_passkey_authentication(assertion, &state),
            LoginState::Discoverable(state) => self
                .webauthn
                .finish_discoverable_authentication_v2(assertion, state, passkey),
            LoginState::Decoy => return Err(AuthError::PasskeyVerificationFailed),
        }
        .map_err(refusal)?;
        // The passkey the caller looked up, not another the state allows.
        if result.cred_id() != passkey.cred_id() {
            return Err(AuthError::PasskeyVerificationFailed);
        }
        // The state holds the credentials as they were when the ceremony
        // started, so webauthn-rs' own counter check may be stale: this one
        // is against the stored counter.
        if !counter_advances(stored_sign_count, result.counter()) {
            tracing::warn!(
                credential_id = %credential_id_text(passkey.cred_id()),
                stored = stored_sign_count,
                presented = result.counter(),
                "passkey refused: its signature counter did not go up (a cloned authenticator?)"
            );
            return Err(AuthError::PasskeyVerificationFailed);
        }
        let mut updated = passkey.clone();
        updated.update_credential(&result);
        Ok(UsedPasskey {
            passkey: updated,
            sign_count: result.counter(),
            backed_up: result.backup_state(),
            backup_eligible: result.backup_eligible(),
        })
    }
}

/// A passkey that signed in, as its use left it.
#[derive(Debug)]
pub struct UsedPasskey {
    pub passkey: Passkey,
    pub sign_count: u32,
    /// Whether it is backed up (synced) now.
    pub backed_up: bool,
    /// Whether it may be synced: a software key (`swk`) rather than one
    /// bound to a device (`hwk`).
    pub backup_eligible: bool,
}

/// WebAuthn's counter rule: an authenticator that counts (either value
/// non-zero) must present a counter above the stored one.
fn counter_advances(stored: u32, presented: u32) -> bool {
    (stored == 0 && presented == 0) || presented > stored
}

/// An assertion as the browser's `credential.toJSON()` gives it, with the
/// credential id and user handle it names.
///
/// # Errors
///
/// `PasskeyVerificationFailed` when it does not parse.
pub fn parse_assertion(credential_json: &str) -> Result<PublicKeyCredential, AuthError> {
    serde_json::from_str(credential_json).map_err(|_| AuthError::PasskeyVerificationFailed)
}

/// A credential id as the database and the logs keep it: base64url, no
/// padding, as browsers write `id`.
pub fn credential_id_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// A ceremony begun: the options for the browser and the state to keep.
#[derive(Debug)]
pub struct Started {
    /// What `PublicKeyCredential.parseCreationOptionsFromJSON` /
    /// `parseRequestOptionsFromJSON` take: the inner `publicKey` object.
    pub options_json: String,
    /// webauthn-rs' state, to keep on the server until the ceremony ends.
    pub state: String,
}

impl Started {
    fn new(options: &impl Serialize, state: &impl Serialize) -> Result<Self, AuthError> {
        Ok(Self {
            options_json: serde_json::to_string(options).map_err(AuthError::internal)?,
            state: serde_json::to_string(state).map_err(AuthError::internal)?,
        })
    }
}

/// A sign-in's state: with an account's passkeys named, or discoverable.
#[derive(Serialize, Deserialize)]
enum LoginState {
    Known(PasskeyAuthentication),
    Discoverable(DiscoverableAuthentication),
    /// A username without passkeys: nothing finishes it.
    Decoy,
}

/// webauthn-rs' refusal as authd's: a missing user verification said so,
/// every other one alike (its detail logged at debug, never sent).
fn refusal(error: WebauthnError) -> AuthError {
    tracing::debug!(error = ?error, "passkey refused");
    match error {
        WebauthnError::UserNotVerified => AuthError::UserVerificationRequired,
        _ => AuthError::PasskeyVerificationFailed,
    }
}

/// Passkey settings of the domain service.
#[derive(Clone, Debug)]
pub struct PasskeySettings {
    pub relying_party: RelyingParty,
    /// How long a ceremony may take between its start and its finish.
    pub ceremony_lifetime: Duration,
}

/// A ceremony begun, as the caller sees it.
#[derive(Debug)]
pub struct PasskeyCeremony {
    pub ceremony_id: Uuid,
    /// The inner `publicKey` object of the WebAuthn options, as JSON.
    pub options_json: String,
}

/// A registered passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySummary {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub backed_up: bool,
}

impl From<PasskeyRecord> for PasskeySummary {
    fn from(record: PasskeyRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            backed_up: record.backed_up,
        }
    }
}

/// The longest passkey name, in characters.
const MAX_NAME_CHARS: usize = 64;

/// The name a passkey registered without one gets.
const DEFAULT_NAME: &str = "Passkey";

/// The length of a decoy credential id: 32 bytes, a common length (real
/// ones vary by authenticator, from 16 bytes to over 64). One per unknown
/// username, as an account with one passkey, the common case, shows.
const DECOY_ID_BYTES: usize = 32;

/// A passkey sign-in whose assertion checked out, before anything of it is
/// written.
struct PasskeySignIn {
    user: User,
    /// The passkey's use, to record with the session.
    used: PasskeyUse,
    backup_eligible: bool,
}

impl<S: Store> Authenticator<S> {
    /// Starts registering a passkey for the caller, whose authentication
    /// must be recent (a new way in is as sensitive as a new factor).
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn start_passkey_registration(
        &self,
        claims: &Claims,
    ) -> Result<PasskeyCeremony, AuthError> {
        let user_id = caller(claims)?;
        self.require_recent_authentication(claims)?;
        let record = self.caller_record(claims).await?;
        let handle = self
            .store
            .passkey_user_handle(user_id, Uuid::new_v4())
            .await?;
        let registered = self.passkeys_of(user_id).await?;
        let credentials: Vec<Passkey> = registered.into_iter().map(|(_, key)| key).collect();
        let started = self.factors.passkeys.relying_party.start_registration(
            handle,
            &record.username,
            &credentials,
        )?;
        self.keep_ceremony(CeremonyKind::Registration, Some(user_id), started)
            .await
    }

    /// Finishes the caller's registration: the new passkey.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn finish_passkey_registration(
        &self,
        claims: &Claims,
        ceremony_id: &str,
        credential_json: &str,
        name: &str,
        client: &ClientInfo,
    ) -> Result<PasskeySummary, AuthError> {
        let user_id = caller(claims)?;
        let name = passkey_name(name)?;
        let ceremony = self
            .take_ceremony(ceremony_id, CeremonyKind::Registration)
            .await?;
        // Another account's ceremony is no ceremony of this caller's.
        if ceremony.user_id != Some(user_id) {
            return Err(AuthError::PasskeyCeremonyInvalid);
        }
        let passkey = self
            .factors
            .passkeys
            .relying_party
            .finish_registration(&ceremony.state, credential_json)?;
        let record = PasskeyRecord {
            id: Uuid::now_v7(),
            user_id,
            credential_id: credential_id_text(passkey.cred_id()),
            credential: serde_json::to_string(&passkey).map_err(AuthError::internal)?,
            name,
            // As PostgreSQL keeps it (microseconds), so that what this call
            // answers is what ListPasskeys will.
            created_at: Utc::now().trunc_subsecs(6),
            last_used_at: None,
            backed_up: false,
            sign_count: 0,
        };
        let notices = self
            .security_notice_for(user_id, SecurityEvent::PasskeyAdded, client)
            .await?;
        if !self
            .store
            .insert_passkey(&record, notices.as_slice())
            .await?
        {
            return Err(AuthError::PasskeyAlreadyRegistered);
        }
        tracing::info!(passkey_id = %record.id, "passkey registered");
        Ok(record.into())
    }

    /// The caller's passkeys, oldest first.
    pub async fn list_passkeys(&self, claims: &Claims) -> Result<Vec<PasskeySummary>, AuthError> {
        let user_id = caller(claims)?;
        let records = self.store.passkeys_of(user_id).await?;
        Ok(records.into_iter().map(PasskeySummary::from).collect())
    }

    /// Renames one of the caller's passkeys.
    pub async fn rename_passkey(
        &self,
        claims: &Claims,
        passkey_id: &str,
        name: &str,
    ) -> Result<(), AuthError> {
        let user_id = caller(claims)?;
        let name = passkey_name(name)?;
        let id = passkey_id.parse().map_err(|_| AuthError::PasskeyNotFound)?;
        if !self.store.rename_passkey(user_id, id, &name).await? {
            return Err(AuthError::PasskeyNotFound);
        }
        Ok(())
    }

    /// Removes one of the caller's passkeys, after a step-up.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn remove_passkey(
        &self,
        claims: &Claims,
        passkey_id: &str,
        second: Option<SecondFactorProof>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<(), AuthError> {
        let user_id = caller(claims)?;
        self.require_step_up(
            claims,
            user_id,
            StepUp::without_password(second),
            client,
            deadline,
        )
        .await?;
        let id = passkey_id.parse().map_err(|_| AuthError::PasskeyNotFound)?;
        let notices = self
            .security_notice_for(user_id, SecurityEvent::PasskeyRemoved, client)
            .await?;
        match self
            .store
            .delete_passkey(user_id, id, notices.as_slice())
            .await?
        {
            PasskeyRemoval::Removed => {}
            PasskeyRemoval::NotFound => return Err(AuthError::PasskeyNotFound),
            PasskeyRemoval::LastSignInMethod => return Err(AuthError::LastSignInMethod),
        }
        tracing::info!(passkey_id = %id, "passkey removed");
        Ok(())
    }

    /// Starts a passkey sign-in: for `username`'s passkeys, or with an
    /// empty one for whichever the browser offers. A name without passkeys
    /// (or without an account) gets options of the same shape, naming
    /// decoy credentials derived from it, so they do not tell.
    #[tracing::instrument(skip_all, fields(client = %client.address))]
    pub async fn start_passkey_login(
        &self,
        username: &str,
        client: &ClientInfo,
    ) -> Result<PasskeyCeremony, AuthError> {
        self.limits.admit_login(client.address)?;
        let party = &self.factors.passkeys.relying_party;
        if username.is_empty() {
            let started = party.start_discoverable_login()?;
            return self.keep_ceremony(CeremonyKind::Login, None, started).await;
        }
        let username = Username::parse(username)
            .map_err(|violation| AuthError::InvalidInput(vec![violation]))?;
        let account = self.store.find_user(username.canonical()).await?;
        let passkeys = match &account {
            Some(record) => self.passkeys_of(record.id).await?,
            None => Vec::new(),
        };
        let (user_id, started) = match account {
            Some(record) if !passkeys.is_empty() => {
                let credentials: Vec<Passkey> = passkeys.into_iter().map(|(_, key)| key).collect();
                (Some(record.id), party.start_login(&credentials)?)
            }
            _ => {
                let digest = self.secrets.keyed_hash(
                    b"passkey decoy credential id",
                    username.canonical().as_bytes(),
                );
                (
                    None,
                    party.start_decoy_login(&[digest[..DECOY_ID_BYTES].to_vec()])?,
                )
            }
        };
        self.keep_ceremony(CeremonyKind::Login, user_id, started)
            .await
    }

    /// Finishes a passkey sign-in: a new session that counts as
    /// multi-factor (the passkey verified the user). Costs no password
    /// hash; a refused passkey counts against the account's failure budget.
    #[tracing::instrument(skip_all, fields(client = %client.address))]
    pub async fn finish_passkey_login(
        &self,
        ceremony_id: &str,
        credential_json: &str,
        client: &ClientInfo,
    ) -> Result<Session, AuthError> {
        self.limits.admit_login(client.address)?;
        let id = ceremony_id
            .parse()
            .map_err(|_| AuthError::PasskeyCeremonyInvalid)?;
        let kind = CeremonyKind::Login;
        let assertion = match parse_assertion(credential_json) {
            Ok(assertion) => assertion,
            Err(refusal) => return Err(self.spend_refused_ceremony(id, kind, refusal).await?),
        };
        let credential_id = credential_id_text(assertion.get_credential_id());
        let (ceremony, stored) = self
            .store
            .find_sign_in_ceremony(id, kind, Utc::now(), &credential_id)
            .await?
            .ok_or(AuthError::PasskeyCeremonyInvalid)?;
        let signed_in = match self
            .check_passkey_sign_in(&ceremony, &assertion, stored)
            .await
        {
            Ok(signed_in) => signed_in,
            Err(refusal) => return Err(self.spend_refused_ceremony(id, kind, refusal).await?),
        };
        // The ceremony, the counter and the session in one transaction: of
        // racing finishes of one ceremony, or uses of one counter value,
        // one signs in, and a sign-in commits once.
        let spent = [
            Spend::PasskeyCeremony { id, kind },
            Spend::PasskeyUse(&signed_in.used),
        ];
        let user_id = signed_in.user.id;
        let authentication = Authentication::passkey(signed_in.used.at, signed_in.backup_eligible);
        match self
            .start_session_spending(signed_in.user, client, authentication, &spent, &[])
            .await?
        {
            Ok(session) => {
                tracing::info!(%user_id, passkey_id = %signed_in.used.id, "passkey accepted");
                Ok(session)
            }
            Err(0) => Err(AuthError::PasskeyCeremonyInvalid),
            Err(_) => Err(AuthError::PasskeyVerificationFailed),
        }
    }

    /// Spends the sign-in ceremony `id` whose assertion was refused: a
    /// ceremony answers one assertion. The refusal to answer with, or
    /// `PasskeyCeremonyInvalid` when there was no ceremony to spend.
    async fn spend_refused_ceremony(
        &self,
        id: Uuid,
        kind: CeremonyKind,
        refusal: AuthError,
    ) -> Result<AuthError, AuthError> {
        Ok(
            match self
                .store
                .take_passkey_ceremony(id, kind, Utc::now())
                .await?
            {
                Some(_) => refusal,
                None => AuthError::PasskeyCeremonyInvalid,
            },
        )
    }

    /// Checks a sign-in's assertion against its ceremony and the passkey it
    /// names (`stored`, if one is registered), within the account's failure
    /// budget (a refusal counts in it); writes nothing else.
    async fn check_passkey_sign_in(
        &self,
        ceremony: &CeremonyRecord,
        assertion: &PublicKeyCredential,
        stored: Option<PasskeyRecord>,
    ) -> Result<PasskeySignIn, AuthError> {
        let stored = stored.ok_or(AuthError::PasskeyVerificationFailed)?;
        // A sign-in for an account takes that account's passkeys only; a
        // discoverable one, the passkey of the account its user handle names.
        let owner = match ceremony.user_id {
            Some(user_id) => user_id,
            None => {
                let handle = assertion
                    .get_user_unique_id()
                    .and_then(|handle| Uuid::from_slice(handle).ok())
                    .ok_or(AuthError::PasskeyVerificationFailed)?;
                self.store
                    .user_of_passkey_handle(handle)
                    .await?
                    .ok_or(AuthError::PasskeyVerificationFailed)?
            }
        };
        if stored.user_id != owner {
            return Err(AuthError::PasskeyVerificationFailed);
        }
        let facts = self
            .store
            .account_facts(owner)
            .await?
            .ok_or(AuthError::PasskeyVerificationFailed)?;
        let now_ms = Utc::now().timestamp_millis();
        self.limits.check_read_login_failures(&facts, now_ms)?;
        let record = &facts.user;
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
            Err(error) => {
                self.limits
                    .record_login_failure(&self.store, &record.username_canonical, now_ms)
                    .await?;
                return Err(error);
            }
        };
        if record.disabled_at.is_some() {
            return Err(AuthError::AccountDisabled);
        }
        Ok(PasskeySignIn {
            used: PasskeyUse {
                id: stored.id,
                previous_sign_count: stored.sign_count,
                sign_count: i64::from(used.sign_count),
                credential: serde_json::to_string(&used.passkey).map_err(AuthError::internal)?,
                backed_up: used.backed_up,
                at: Utc::now(),
            },
            backup_eligible: used.backup_eligible,
            user: User::new(facts.user, facts.email.as_ref()),
        })
    }

    /// An account's passkeys with their webauthn-rs credentials.
    async fn passkeys_of(&self, user_id: Uuid) -> Result<Vec<(PasskeyRecord, Passkey)>, AuthError> {
        self.store
            .passkeys_of(user_id)
            .await?
            .into_iter()
            .map(|record| {
                let passkey =
                    serde_json::from_str(&record.credential).map_err(AuthError::internal)?;
                Ok((record, passkey))
            })
            .collect()
    }

    pub(super) async fn keep_ceremony(
        &self,
        kind: CeremonyKind,
        user_id: Option<Uuid>,
        started: Started,
    ) -> Result<PasskeyCeremony, AuthError> {
        let ceremony = CeremonyRecord {
            id: Uuid::now_v7(),
            kind,
            user_id,
            state: started.state,
            expires_at: Utc::now()
                + chrono::TimeDelta::from_std(self.factors.passkeys.ceremony_lifetime)
                    .map_err(AuthError::internal)?,
        };
        self.store.insert_passkey_ceremony(&ceremony).await?;
        Ok(PasskeyCeremony {
            ceremony_id: ceremony.id,
            options_json: started.options_json,
        })
    }

    pub(super) async fn take_ceremony(
        &self,
        ceremony_id: &str,
        kind: CeremonyKind,
    ) -> Result<CeremonyRecord, AuthError> {
        let id = ceremony_id
            .parse()
            .map_err(|_| AuthError::PasskeyCeremonyInvalid)?;
        self.store
            .take_passkey_ceremony(id, kind, Utc::now())
            .await?
            .ok_or(AuthError::PasskeyCeremonyInvalid)
    }
}

/// A passkey's name: trimmed, the default when empty, at most
/// [`MAX_NAME_CHARS`] characters.
pub(super) fn passkey_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(DEFAULT_NAME.to_owned());
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AuthError::InvalidInput(vec![FieldViolation {
            field: "name",
            reason: "INVALID_PASSKEY_NAME",
            description: format!(
                "a passkey name is at most {MAX_NAME_CHARS} characters, without control characters"
            ),
        }]));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(texts: &[&str]) -> Vec<Url> {
        texts.iter().map(|text| Url::parse(text).unwrap()).collect()
    }

    use webauthn_authenticator_rs::WebauthnAuthenticator as _;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

    const ORIGIN: &str = "http://localhost:8080";

    fn party() -> RelyingParty {
        RelyingParty::new("localhost", &origins(&[ORIGIN])).unwrap()
    }

    /// A software authenticator that says it verified the user (webauthn-rs'
    /// SoftPasskey can only pretend to).
    fn authenticator() -> SoftPasskey {
        SoftPasskey::new(true)
    }

    /// What a browser would send for these options from `origin`, as
    /// `credential.toJSON()` writes it; `uv: false` asks the authenticator
    /// not to verify the user, whatever the options say.
    fn register_json(
        authenticator: &mut SoftPasskey,
        options_json: &str,
        origin: &str,
        uv: bool,
    ) -> String {
        let mut options: serde_json::Value = serde_json::from_str(options_json).unwrap();
        if !uv {
            options["authenticatorSelection"]["userVerification"] = "discouraged".into();
        }
        let options: CreationChallengeResponse =
            serde_json::from_value(serde_json::json!({ "publicKey": options })).unwrap();
        let credential = authenticator
            .do_registration(Url::parse(origin).unwrap(), options)
            .unwrap();
        serde_json::to_string(&credential).unwrap()
    }

    fn assertion_json(
        authenticator: &mut SoftPasskey,
        options_json: &str,
        origin: &str,
        uv: bool,
    ) -> String {
        let mut options: serde_json::Value = serde_json::from_str(options_json).unwrap();
        if !uv {
            options["userVerification"] = "discouraged".into();
        }
        let options: RequestChallengeResponse =
            serde_json::from_value(serde_json::json!({ "publicKey": options })).unwrap();
        let assertion = authenticator
            .do_authentication(Url::parse(origin).unwrap(), options)
            .unwrap();
        serde_json::to_string(&assertion).unwrap()
    }

    fn registered(authenticator: &mut SoftPasskey) -> Passkey {
        let party = party();
        let started = party
            .start_registration(Uuid::new_v4(), "alice", &[])
            .unwrap();
        let credential = register_json(authenticator, &started.options_json, ORIGIN, true);
        party
            .finish_registration(&started.state, &credential)
            .unwrap()
    }

    fn sign_in(
        passkey: &Passkey,
        stored_sign_count: u32,
        started: &Started,
        assertion: &str,
    ) -> Result<UsedPasskey, AuthError> {
        party().finish_login(
            &started.state,
            &parse_assertion(assertion)?,
            passkey,
            stored_sign_count,
        )
    }

    #[test]
    fn options_are_the_inner_public_key_object_browsers_parse() {
        let started = party()
            .start_registration(Uuid::new_v4(), "alice", &[])
            .unwrap();
        let options: serde_json::Value = serde_json::from_str(&started.options_json).unwrap();
        assert!(options.get("publicKey").is_none());
        assert_eq!(options["rp"]["id"], "localhost");
        assert_eq!(
            options["authenticatorSelection"]["userVerification"],
            "required"
        );
        assert_eq!(
            options["authenticatorSelection"]["residentKey"],
            "preferred"
        );
        let login = party().start_discoverable_login().unwrap();
        let options: serde_json::Value = serde_json::from_str(&login.options_json).unwrap();
        assert!(options["challenge"].is_string());
        assert_eq!(options["userVerification"], "required");
    }

    #[test]
    fn a_registered_passkey_signs_in_with_user_verification() {
        let mut authenticator = authenticator();
        let mut passkey = registered(&mut authenticator);
        let mut sign_count = 0;
        for expected in 1..=2 {
            let started = party().start_login(std::slice::from_ref(&passkey)).unwrap();
            let assertion = assertion_json(&mut authenticator, &started.options_json, ORIGIN, true);
            let used = sign_in(&passkey, sign_count, &started, &assertion).unwrap();
            assert_eq!(used.sign_count, expected);
            (passkey, sign_count) = (used.passkey, used.sign_count);
        }
    }

    #[test]
    fn a_discoverable_sign_in_checks_the_passkey_the_browser_chose() {
        let mut authenticator = authenticator();
        let passkey = registered(&mut authenticator);
        let started = party().start_discoverable_login().unwrap();
        // SoftPasskey keeps no user handle; a discoverable one would send it.
        let mut options: serde_json::Value = serde_json::from_str(&started.options_json).unwrap();
        options["allowCredentials"] = serde_json::json!([{
            "type": "public-key",
            "id": credential_id_text(passkey.cred_id()),
        }]);
        let assertion = assertion_json(&mut authenticator, &options.to_string(), ORIGIN, true);
        assert!(sign_in(&passkey, 0, &started, &assertion).is_ok());
    }

    #[test]
    fn a_passkey_without_user_verification_is_refused_as_such() {
        let mut authenticator = authenticator();
        let started = party()
            .start_registration(Uuid::new_v4(), "alice", &[])
            .unwrap();
        let credential = register_json(&mut authenticator, &started.options_json, ORIGIN, false);
        assert!(matches!(
            party().finish_registration(&started.state, &credential),
            Err(AuthError::UserVerificationRequired)
        ));
        let passkey = registered(&mut authenticator);
        let started = party().start_login(std::slice::from_ref(&passkey)).unwrap();
        let assertion = assertion_json(&mut authenticator, &started.options_json, ORIGIN, false);
        assert!(matches!(
            sign_in(&passkey, 0, &started, &assertion),
            Err(AuthError::UserVerificationRequired)
        ));
    }

    #[test]
    fn a_passkey_from_another_origin_is_refused() {
        let mut authenticator = authenticator();
        let started = party()
            .start_registration(Uuid::new_v4(), "alice", &[])
            .unwrap();
        let credential = register_json(
            &mut authenticator,
            &started.options_json,
            "http://localhost:9999",
            true,
        );
        assert!(matches!(
            party().finish_registration(&started.state, &credential),
            Err(AuthError::PasskeyVerificationFailed)
        ));
        let passkey = registered(&mut authenticator);
        let started = party().start_login(std::slice::from_ref(&passkey)).unwrap();
        let assertion = assertion_json(
            &mut authenticator,
            &started.options_json,
            "http://localhost:9999",
            true,
        );
        assert!(matches!(
            sign_in(&passkey, 0, &started, &assertion),
            Err(AuthError::PasskeyVerificationFailed)
        ));
    }

    #[test]
    fn an_assertion_for_another_ceremonys_challenge_is_refused() {
        let mut authenticator = authenticator();
        let passkey = registered(&mut authenticator);
        let one = party().start_login(std::slice::from_ref(&passkey)).unwrap();
        let other = party().start_login(std::slice::from_ref(&passkey)).unwrap();
        let assertion = assertion_json(&mut authenticator, &other.options_json, ORIGIN, true);
        assert!(matches!(
            sign_in(&passkey, 0, &one, &assertion),
            Err(AuthError::PasskeyVerificationFailed)
        ));
    }

    #[test]
    fn a_signature_counter_that_goes_backwards_is_refused() {
        let mut authenticator = authenticator();
        let passkey = registered(&mut authenticator);
        let earlier = party().start_login(std::slice::from_ref(&passkey)).unwrap();
        let later = party().start_login(std::slice::from_ref(&passkey)).unwrap();
        // Signed in this order, so `earlier` carries the lower counter.
        let earlier_assertion =
            assertion_json(&mut authenticator, &earlier.options_json, ORIGIN, true);
        let later_assertion = assertion_json(&mut authenticator, &later.options_json, ORIGIN, true);
        let used = sign_in(&passkey, 0, &later, &later_assertion).unwrap();
        assert!(matches!(
            sign_in(&used.passkey, used.sign_count, &earlier, &earlier_assertion),
            Err(AuthError::PasskeyVerificationFailed)
        ));
    }

    #[test]
    fn a_credential_that_is_no_json_is_refused_as_unverified() {
        let started = party()
            .start_registration(Uuid::new_v4(), "alice", &[])
            .unwrap();
        assert!(matches!(
            party().finish_registration(&started.state, "{\"id\": 1}"),
            Err(AuthError::PasskeyVerificationFailed)
        ));
        assert!(matches!(
            parse_assertion("not json"),
            Err(AuthError::PasskeyVerificationFailed)
        ));
    }

    mod service {
        use std::net::{IpAddr, Ipv4Addr};

        use super::*;
        use crate::config::{Cli, Settings};
        use crate::domain::PasskeyStore as _;
        use crate::domain::{Credentials, Password};
        use crate::storage::Database;
        use clap::Parser as _;

        struct Harness {
            auth: Authenticator<Database>,
            settings: Settings,
            _dir: tempfile::TempDir,
        }

        /// A fresh database: SQLite in a temporary directory, or, with
        /// `TEST_DATABASE_URL` set as for the API tests, a new PostgreSQL
        /// database on that server (with a secrets key file, which
        /// PostgreSQL needs).
        async fn fresh_database(dir: &tempfile::TempDir) -> (String, Option<std::path::PathBuf>) {
            use sea_orm::ConnectionTrait as _;
            let Some(admin_url) = std::env::var("TEST_DATABASE_URL")
                .ok()
                .filter(|url| !url.is_empty())
            else {
                let path = dir.path().join("authd.db");
                return (format!("sqlite://{}?mode=rwc", path.display()), None);
            };
            let name = format!("passkeys_{}", Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            admin.close().await.unwrap();
            let mut url = Url::parse(&admin_url).unwrap();
            url.set_path(&name);
            let key_file = dir.path().join("secrets.key");
            crate::secrets::create_key_file(&key_file).unwrap();
            (url.to_string(), Some(key_file))
        }

        async fn harness(configure: impl FnOnce(&mut Settings)) -> Harness {
            let dir = tempfile::tempdir().unwrap();
            let (url, key_file) = fresh_database(&dir).await;
            let mut settings = Cli::parse_from([
                "authd",
                "--database-url",
                &url,
                "--argon2-memory-kib",
                "64",
                "--argon2-iterations",
                "1",
            ])
            .settings;
            settings.secrets_key_file = key_file;
            configure(&mut settings);
            let auth = authenticator_on(&settings).await;
            Harness {
                auth,
                settings,
                _dir: dir,
            }
        }

        async fn authenticator_on(settings: &Settings) -> Authenticator<Database> {
            let database = crate::app::connect_and_migrate(settings).await.unwrap();
            let secrets = crate::app::secrets_keyring(settings).unwrap();
            // The default origin for port 8080: ORIGIN.
            let factors = settings.second_factors(8080).unwrap();
            crate::app::authenticator(database, secrets, factors, settings)
                .await
                .unwrap()
        }

        fn client() -> ClientInfo {
            ClientInfo {
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                user_agent: "test".into(),
            }
        }

        impl Harness {
            async fn claims_of_new(&self, username: &str) -> Claims {
                let credentials = Credentials {
                    username: Username::parse(username).unwrap(),
                    password: Password::parse_new("correct horse battery staple".into()).unwrap(),
                };
                let session = self
                    .auth
                    .register(credentials, None, &client(), None)
                    .await
                    .unwrap();
                self.claims(&session).await
            }

            async fn claims(&self, session: &Session) -> Claims {
                (*self.auth.verify(&session.token.token).await.unwrap()).clone()
            }

            /// Registers a passkey of `authenticator`: the summary and the
            /// account's user handle the options named.
            async fn register_passkey(
                &self,
                claims: &Claims,
                authenticator: &mut SoftPasskey,
            ) -> (PasskeySummary, String) {
                let ceremony = self.auth.start_passkey_registration(claims).await.unwrap();
                let options: serde_json::Value =
                    serde_json::from_str(&ceremony.options_json).unwrap();
                let credential = register_json(authenticator, &ceremony.options_json, ORIGIN, true);
                let summary = self
                    .auth
                    .finish_passkey_registration(
                        claims,
                        &ceremony.ceremony_id.to_string(),
                        &credential,
                        " laptop ",
                        &client(),
                    )
                    .await
                    .unwrap();
                (summary, options["user"]["id"].as_str().unwrap().to_owned())
            }
        }

        #[tokio::test]
        async fn a_passkey_registered_by_its_account_signs_in_as_multi_factor() {
            let harness = harness(|_| {}).await;
            let claims = harness.claims_of_new("alice").await;
            let mut authenticator = authenticator();
            let (summary, handle) = harness.register_passkey(&claims, &mut authenticator).await;
            assert_eq!(summary.name, "laptop");
            assert_ne!(handle, claims.sub);
            assert_eq!(
                harness.auth.list_passkeys(&claims).await.unwrap(),
                [summary]
            );
            let ceremony = harness
                .auth
                .start_passkey_login("Alice", &client())
                .await
                .unwrap();
            let assertion =
                assertion_json(&mut authenticator, &ceremony.options_json, ORIGIN, true);
            let session = harness
                .auth
                .finish_passkey_login(&ceremony.ceremony_id.to_string(), &assertion, &client())
                .await
                .unwrap();
            let signed_in = harness.claims(&session).await;
            assert_eq!(signed_in.sub, claims.sub);
            assert_eq!(signed_in.amr, ["hwk", "user", "mfa"]);
            assert_eq!(signed_in.acr.as_deref(), Some("aal2"));
            let listed = harness.auth.list_passkeys(&claims).await.unwrap();
            assert!(listed[0].last_used_at.is_some());
        }

        #[tokio::test]
        async fn a_discoverable_sign_in_finds_the_account_by_its_user_handle() {
            let harness = harness(|_| {}).await;
            let claims = harness.claims_of_new("alice").await;
            let mut authenticator = authenticator();
            let (summary, handle) = harness.register_passkey(&claims, &mut authenticator).await;
            let stored = harness
                .auth
                .store
                .passkeys_of(caller(&claims).unwrap())
                .await
                .unwrap();
            let ceremony = harness
                .auth
                .start_passkey_login("", &client())
                .await
                .unwrap();
            let mut options: serde_json::Value =
                serde_json::from_str(&ceremony.options_json).unwrap();
            options["allowCredentials"] =
                serde_json::json!([{ "type": "public-key", "id": stored[0].credential_id }]);
            let assertion = assertion_json(&mut authenticator, &options.to_string(), ORIGIN, true);
            // What a discoverable authenticator adds: the user handle.
            let mut assertion: serde_json::Value = serde_json::from_str(&assertion).unwrap();
            assertion["response"]["userHandle"] = handle.into();
            let session = harness
                .auth
                .finish_passkey_login(
                    &ceremony.ceremony_id.to_string(),
                    &assertion.to_string(),
                    &client(),
                )
                .await
                .unwrap();
            assert_eq!(session.user.id.to_string(), claims.sub);
            assert_eq!(summary.id, stored[0].id);
        }

        #[tokio::test]
        async fn a_ceremony_is_finished_once_by_its_own_kind_and_not_after_it_expires() {
            let harness = harness(|settings| {
                settings.passkey_ceremony_lifetime = Duration::from_secs(1);
            })
            .await;
            let claims = harness.claims_of_new("alice").await;
            let mut authenticator = authenticator();
            harness.register_passkey(&claims, &mut authenticator).await;
            let ceremony = harness
                .auth
                .start_passkey_login("alice", &client())
                .await
                .unwrap();
            let id = ceremony.ceremony_id.to_string();
            let assertion =
                assertion_json(&mut authenticator, &ceremony.options_json, ORIGIN, true);
            let registration = harness
                .auth
                .start_passkey_registration(&claims)
                .await
                .unwrap();
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_login(
                        &registration.ceremony_id.to_string(),
                        &assertion,
                        &client()
                    )
                    .await,
                Err(AuthError::PasskeyCeremonyInvalid)
            ));
            harness
                .auth
                .finish_passkey_login(&id, &assertion, &client())
                .await
                .unwrap();
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_login(&id, &assertion, &client())
                    .await,
                Err(AuthError::PasskeyCeremonyInvalid)
            ));
            let late = harness
                .auth
                .start_passkey_login("alice", &client())
                .await
                .unwrap();
            let assertion = assertion_json(&mut authenticator, &late.options_json, ORIGIN, true);
            tokio::time::sleep(Duration::from_millis(1100)).await;
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_login(&late.ceremony_id.to_string(), &assertion, &client())
                    .await,
                Err(AuthError::PasskeyCeremonyInvalid)
            ));
        }

        #[tokio::test]
        async fn an_unknown_username_gets_options_shaped_like_a_known_ones_that_never_finish() {
            let harness = harness(|_| {}).await;
            let claims = harness.claims_of_new("alice").await;
            harness
                .register_passkey(&claims, &mut authenticator())
                .await;
            let options = |ceremony: &PasskeyCeremony| -> serde_json::Value {
                serde_json::from_str(&ceremony.options_json).unwrap()
            };
            let keys = |value: &serde_json::Value| -> Vec<String> {
                let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
                keys.sort();
                keys
            };
            let known = options(
                &harness
                    .auth
                    .start_passkey_login("alice", &client())
                    .await
                    .unwrap(),
            );
            let unknown_ceremony = harness
                .auth
                .start_passkey_login("mallory", &client())
                .await
                .unwrap();
            let unknown = options(&unknown_ceremony);
            assert_eq!(keys(&known), keys(&unknown));
            assert_eq!(
                keys(&known["allowCredentials"][0]),
                keys(&unknown["allowCredentials"][0])
            );
            assert_eq!(
                known["allowCredentials"][0]["id"].as_str().unwrap().len(),
                unknown["allowCredentials"][0]["id"].as_str().unwrap().len()
            );
            let again = options(
                &harness
                    .auth
                    .start_passkey_login("Mallory", &client())
                    .await
                    .unwrap(),
            );
            assert_eq!(unknown["allowCredentials"], again["allowCredentials"]);
            // An account without passkeys looks the same.
            harness.claims_of_new("bob").await;
            let bob = options(
                &harness
                    .auth
                    .start_passkey_login("bob", &client())
                    .await
                    .unwrap(),
            );
            assert_eq!(keys(&known), keys(&bob));
            let assertion = serde_json::json!({ "id": "AA", "rawId": "AA", "type": "public-key",
                "response": { "clientDataJSON": "AA", "authenticatorData": "AA", "signature": "AA" },
                "extensions": {} });
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_login(
                        &unknown_ceremony.ceremony_id.to_string(),
                        &assertion.to_string(),
                        &client()
                    )
                    .await,
                Err(AuthError::PasskeyVerificationFailed)
            ));
        }

        #[tokio::test]
        async fn registering_needs_a_recent_authentication_and_removing_a_step_up() {
            let harness = harness(|settings| {
                settings.reauthentication_max_age = Duration::ZERO;
            })
            .await;
            let claims = harness.claims_of_new("alice").await;
            let (summary, _) = harness
                .register_passkey(&claims, &mut authenticator())
                .await;
            tokio::time::sleep(Duration::from_millis(1100)).await;
            assert!(matches!(
                harness.auth.start_passkey_registration(&claims).await,
                Err(AuthError::ReauthenticationRequired { .. })
            ));
            assert!(matches!(
                harness
                    .auth
                    .remove_passkey(&claims, &summary.id.to_string(), None, &client(), None)
                    .await,
                Err(AuthError::ReauthenticationRequired { .. })
            ));
            harness
                .auth
                .rename_passkey(&claims, &summary.id.to_string(), "phone")
                .await
                .unwrap();
            assert!(matches!(
                harness
                    .auth
                    .rename_passkey(&claims, &Uuid::now_v7().to_string(), "x")
                    .await,
                Err(AuthError::PasskeyNotFound)
            ));
            assert!(matches!(
                harness
                    .auth
                    .rename_passkey(&claims, &summary.id.to_string(), &"x".repeat(65))
                    .await,
                Err(AuthError::InvalidInput(_))
            ));
            assert_eq!(
                harness.auth.list_passkeys(&claims).await.unwrap()[0].name,
                "phone"
            );
        }

        #[tokio::test]
        async fn a_passkey_of_another_account_does_not_finish_this_accounts_sign_in() {
            let harness = harness(|_| {}).await;
            let alice = harness.claims_of_new("alice").await;
            let bob = harness.claims_of_new("bob").await;
            let mut alices = authenticator();
            let mut bobs = authenticator();
            harness.register_passkey(&alice, &mut alices).await;
            harness.register_passkey(&bob, &mut bobs).await;
            let bob_stored = harness
                .auth
                .store
                .passkeys_of(caller(&bob).unwrap())
                .await
                .unwrap();
            let ceremony = harness
                .auth
                .start_passkey_login("alice", &client())
                .await
                .unwrap();
            let mut options: serde_json::Value =
                serde_json::from_str(&ceremony.options_json).unwrap();
            options["allowCredentials"] =
                serde_json::json!([{ "type": "public-key", "id": bob_stored[0].credential_id }]);
            let assertion = assertion_json(&mut bobs, &options.to_string(), ORIGIN, true);
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_login(&ceremony.ceremony_id.to_string(), &assertion, &client())
                    .await,
                Err(AuthError::PasskeyVerificationFailed)
            ));
            let registration = harness
                .auth
                .start_passkey_registration(&alice)
                .await
                .unwrap();
            let credential = register_json(&mut alices, &registration.options_json, ORIGIN, true);
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_registration(
                        &bob,
                        &registration.ceremony_id.to_string(),
                        &credential,
                        "",
                        &client()
                    )
                    .await,
                Err(AuthError::PasskeyCeremonyInvalid)
            ));
        }

        #[tokio::test]
        async fn a_discoverable_passkey_signs_in_to_its_own_account_whatever_handle_it_names() {
            let harness = harness(|_| {}).await;
            let alice = harness.claims_of_new("alice").await;
            let bob = harness.claims_of_new("bob").await;
            let mut alices = authenticator();
            harness.register_passkey(&alice, &mut alices).await;
            let (_, bobs_handle) = harness.register_passkey(&bob, &mut authenticator()).await;
            let stored = harness
                .auth
                .store
                .passkeys_of(caller(&alice).unwrap())
                .await
                .unwrap();
            let ceremony = harness
                .auth
                .start_passkey_login("", &client())
                .await
                .unwrap();
            let mut options: serde_json::Value =
                serde_json::from_str(&ceremony.options_json).unwrap();
            options["allowCredentials"] =
                serde_json::json!([{ "type": "public-key", "id": stored[0].credential_id }]);
            let assertion = assertion_json(&mut alices, &options.to_string(), ORIGIN, true);
            // The user handle is not signed: a client may name anyone's.
            let mut assertion: serde_json::Value = serde_json::from_str(&assertion).unwrap();
            assertion["response"]["userHandle"] = bobs_handle.into();
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_login(
                        &ceremony.ceremony_id.to_string(),
                        &assertion.to_string(),
                        &client()
                    )
                    .await,
                Err(AuthError::PasskeyVerificationFailed)
            ));
        }

        #[tokio::test]
        async fn refused_passkeys_count_in_the_accounts_failure_budget() {
            let harness = harness(|settings| {
                settings.login_failures_per_username = Some("2/1h".parse().unwrap());
            })
            .await;
            let claims = harness.claims_of_new("alice").await;
            let mut authenticator = authenticator();
            harness.register_passkey(&claims, &mut authenticator).await;
            let mut attempt = async |uv: bool| {
                let ceremony = harness
                    .auth
                    .start_passkey_login("alice", &client())
                    .await
                    .unwrap();
                let assertion =
                    assertion_json(&mut authenticator, &ceremony.options_json, ORIGIN, uv);
                harness
                    .auth
                    .finish_passkey_login(&ceremony.ceremony_id.to_string(), &assertion, &client())
                    .await
            };
            for _ in 0..2 {
                assert!(matches!(
                    attempt(false).await,
                    Err(AuthError::UserVerificationRequired)
                ));
            }
            assert!(matches!(
                attempt(true).await,
                Err(AuthError::RateLimited { .. })
            ));
        }

        #[tokio::test]
        async fn passkey_sign_ins_count_in_the_per_address_limit() {
            let harness = harness(|settings| {
                settings.login_rate_per_address = Some("1/1h".parse().unwrap());
            })
            .await;
            harness
                .auth
                .start_passkey_login("alice", &client())
                .await
                .unwrap();
            assert!(matches!(
                harness.auth.start_passkey_login("alice", &client()).await,
                Err(AuthError::RateLimited { .. })
            ));
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_login("x", "{}", &client())
                    .await,
                Err(AuthError::RateLimited { .. })
            ));
        }

        #[tokio::test]
        async fn a_ceremony_started_on_one_instance_finishes_on_another() {
            let harness = harness(|_| {}).await;
            let beside = authenticator_on(&harness.settings).await;
            let claims = harness.claims_of_new("alice").await;
            let mut authenticator = authenticator();
            let registration = harness
                .auth
                .start_passkey_registration(&claims)
                .await
                .unwrap();
            let credential =
                register_json(&mut authenticator, &registration.options_json, ORIGIN, true);
            beside
                .finish_passkey_registration(
                    &claims,
                    &registration.ceremony_id.to_string(),
                    &credential,
                    "",
                    &client(),
                )
                .await
                .unwrap();
            let login = beside
                .start_passkey_login("alice", &client())
                .await
                .unwrap();
            let assertion = assertion_json(&mut authenticator, &login.options_json, ORIGIN, true);
            harness
                .auth
                .finish_passkey_login(&login.ceremony_id.to_string(), &assertion, &client())
                .await
                .unwrap();
            // Spent there, so not here either.
            assert!(matches!(
                beside
                    .finish_passkey_login(&login.ceremony_id.to_string(), &assertion, &client())
                    .await,
                Err(AuthError::PasskeyCeremonyInvalid)
            ));
        }

        #[tokio::test]
        async fn an_operators_second_factor_reset_removes_the_passkeys() {
            let harness = harness(|_| {}).await;
            let claims = harness.claims_of_new("alice").await;
            harness
                .register_passkey(&claims, &mut authenticator())
                .await;
            harness
                .auth
                .start_passkey_registration(&claims)
                .await
                .unwrap();
            let admin = crate::domain::AccountAdmin::new(harness.auth.store.clone());
            let (_, had_totp, passkeys) =
                admin.reset_second_factors("alice").await.unwrap().unwrap();
            assert_eq!((had_totp, passkeys), (false, 1));
            let user_id = caller(&claims).unwrap();
            assert!(
                harness
                    .auth
                    .store
                    .passkeys_of(user_id)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }

        #[tokio::test]
        async fn a_sign_in_without_user_verification_is_refused() {
            let harness = harness(|_| {}).await;
            let claims = harness.claims_of_new("alice").await;
            let mut authenticator = authenticator();
            harness.register_passkey(&claims, &mut authenticator).await;
            let ceremony = harness
                .auth
                .start_passkey_login("alice", &client())
                .await
                .unwrap();
            let assertion =
                assertion_json(&mut authenticator, &ceremony.options_json, ORIGIN, false);
            assert!(matches!(
                harness
                    .auth
                    .finish_passkey_login(&ceremony.ceremony_id.to_string(), &assertion, &client())
                    .await,
                Err(AuthError::UserVerificationRequired)
            ));
        }
    }

    #[test]
    fn a_counter_must_go_up_unless_the_authenticator_never_counts() {
        assert!(counter_advances(0, 0));
        assert!(counter_advances(0, 1));
        assert!(counter_advances(4, 5));
        assert!(!counter_advances(5, 5));
        assert!(!counter_advances(5, 4));
        assert!(!counter_advances(5, 0));
    }

    #[test]
    fn origins_on_the_rp_id_or_its_subdomains_are_accepted() {
        let party = RelyingParty::new(
            "example.com",
            &origins(&["https://example.com", "https://app.example.com:8443"]),
        )
        .unwrap();
        assert_eq!(party.origins().len(), 2);
    }

    #[test]
    fn an_origin_off_the_rp_id_is_refused_with_its_name() {
        for refused in [
            "https://example.org",
            "https://notexample.com",
            "https://com",
        ] {
            let error =
                RelyingParty::new("example.com", &origins(&["https://example.com", refused]))
                    .unwrap_err();
            assert!(error.to_string().contains(refused), "{error}");
        }
        assert!(RelyingParty::new("example.com", &[]).is_err());
    }
}
