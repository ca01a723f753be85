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

use crate::domain::AuthError;

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
        Started::new(&options.public_key, &state)
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
