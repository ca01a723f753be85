//! Access tokens: signed here with the key in force, verified by the rules
//! of `authd-token` (the same crate services use to verify them
//! themselves) against the signing keys and the revocation list. A token
//! that names a key this instance does not hold is refused only once the
//! keys have been read again from the database ([`KeyReloads`]).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use authd_token::{
    Claims, FIRST_PARTY_CLIENT_ID, PublicJwk, TOKEN_TYPE, TokenRejection, TokenVerifier,
    VerifierSettings,
};
use chrono::Utc;
use jsonwebtoken::Header;
use uuid::Uuid;

use super::authentication::Authentication;
use super::error::AuthError;
use super::key_reloads::KeyReloads;
use super::keys::{ALGORITHM, FileKey, KeySet};
use super::ports::SigningKeyRecord;
use super::random_id::random_id;
use super::revocation_feed::Revocations;

/// How far before its issue time a token says it is valid (`nbf`): JWT
/// libraries that allow no clock skew by default (PyJWT, jose) then accept
/// a fresh token from a server whose clock is up to this far ahead of
/// theirs. `iat` stays the true issue time.
pub const NOT_BEFORE_BACKDATE: i64 = 60;

/// Who issues tokens, for whom, and for how long.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    /// Issuers whose tokens are still accepted after `issuer` changed.
    pub previous_issuers: Vec<String>,
    pub audience: String,
    pub lifetime: Duration,
    /// How many verified tokens to remember (0: none).
    pub verified_token_cache: usize,
}

/// A freshly signed token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The compact JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u32,
}

/// Signs and verifies access tokens.
pub struct TokenService {
    /// Swapped whole when the keys are reloaded; signers keep the set they
    /// started with.
    keys: RwLock<Arc<KeySet>>,
    files: Vec<FileKey>,
    settings: TokenSettings,
    verifier: TokenVerifier,
    revocations: Arc<Revocations>,
    reloads: KeyReloads,
}

impl TokenService {
    /// `stored` latest activation first; see [`KeySet::new`].
    pub fn new(
        files: Vec<FileKey>,
        stored: &[SigningKeyRecord],
        settings: TokenSettings,
        revocations: Arc<Revocations>,
    ) -> Result<Self, AuthError> {
        let keys = KeySet::new(&files, stored, Utc::now())?;
        let verifier = TokenVerifier::new(
            VerifierSettings {
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                cache_capacity: settings.verified_token_cache,
                previous_issuers: settings.previous_issuers.clone(),
            },
            keys.verifying().clone(),
            Arc::clone(revocations.list()),
        )
        .observing_cache(crate::metrics::verified_token_lookup);
        Ok(Self {
            keys: RwLock::new(Arc::new(keys)),
            files,
            verifier,
            settings,
            revocations,
            reloads: KeyReloads::default(),
        })
    }

    /// Takes up the database keys as they are now (after a rotation).
    pub fn reload_keys(&self, stored: &[SigningKeyRecord]) -> Result<(), AuthError> {
        let keys = KeySet::new(&self.files, stored, Utc::now())?;
        self.verifier.replace_keys(keys.verifying().clone());
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        Ok(())
    }

    fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every public key, for the JWKS.
    pub fn published_keys(&self) -> Vec<PublicJwk> {
        self.verifier.keys().published().to_vec()
    }

    /// How long tokens live.
    pub fn lifetime(&self) -> Duration {
        self.settings.lifetime
    }

    /// Signs a new access token for a user's session, expiring no later
    /// than `not_after` (Unix seconds), the session's own end. After a "log
    /// out everywhere" in this very second, the token is dated just after
    /// it, so that the new session is not caught by the cutoff.
    pub fn issue(
        &self,
        user_id: Uuid,
        username: &str,
        session_id: Uuid,
        authentication: &Authentication,
        not_after: i64,
    ) -> Result<AccessToken, AuthError> {
        let now = Utc::now().timestamp();
        let subject = user_id.to_string();
        let issued_at = self
            .revocations
            .list()
            .cutoff(&subject)
            .map_or(now, |revoked_through| now.max(revoked_through + 1));
        let lifetime =
            i64::try_from(self.settings.lifetime.as_secs()).map_err(AuthError::internal)?;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: subject,
            aud: self.settings.audience.clone(),
            exp: (issued_at + lifetime).min(not_after).max(issued_at + 1),
            nbf: issued_at - NOT_BEFORE_BACKDATE,
            iat: issued_at,
            jti: random_id::<16>()?,
            username: username.to_owned(),
            sid: Some(session_id.to_string()),
            client_id: Some(FIRST_PARTY_CLIENT_ID.to_owned()),
            auth_time: Some(authentication.at.timestamp()),
            amr: authentication.amr(),
            acr: Some(authentication.acr().to_owned()),
        };
        let keys = self.keys();
        let (kid, key) = keys.signing();
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, key).map_err(AuthError::internal)?;
        Ok(AccessToken {
            token,
            expires_in: u32::try_from(claims.exp - now).map_err(AuthError::internal)?,
        })
    }

    /// Checks a compact JWT: size, header, signature, claims, revocation.
    /// A token naming a key this instance does not hold (one rotated in
    /// since the last refresh, perhaps) waits for the keys to be reloaded
    /// from the database and is checked again; only then is it refused.
    ///
    /// # Errors
    /// `AuthError::InvalidToken` with the reason of the refusal;
    /// `AuthError::Unavailable` when the keys could not be reloaded.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        match self.verify_in_memory(token) {
            Err(TokenRejection::UnknownKey) => {
                self.reloads.reload_after_now().await?;
                Ok(self.verify_in_memory(token)?)
            }
            checked => Ok(checked?),
        }
    }

    /// [`verify`](Self::verify) with the keys in memory only, for callers
    /// that cannot wait (the gRPC bearer interceptor): never touches the
    /// database. `TokenRejection::UnknownKey` is no final answer: such a
    /// token must go through `verify` before it is refused.
    pub fn verify_in_memory(&self, token: &str) -> Result<Arc<Claims>, TokenRejection> {
        self.verifier.verify(token)
    }

    /// The revocation list every check consults, and its feed.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// Where checks of tokens naming unknown keys wait for the key refresh
    /// task to reload the keys.
    pub fn key_reloads(&self) -> &KeyReloads {
        &self.reloads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::generate_signing_key;

    fn service(key: &SigningKeyRecord) -> TokenService {
        let settings = TokenSettings {
            issuer: "authd".into(),
            previous_issuers: Vec::new(),
            audience: "authd".into(),
            lifetime: Duration::from_secs(3600),
            verified_token_cache: 100,
        };
        let revocations = Arc::new(Revocations::new(settings.lifetime).unwrap());
        TokenService::new(Vec::new(), std::slice::from_ref(key), settings, revocations).unwrap()
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_revocation() {
        let key = generate_signing_key(Utc::now()).unwrap();
        let tokens = service(&key);
        let token = tokens
            .issue(
                Uuid::now_v7(),
                "alice",
                Uuid::now_v7(),
                &Authentication::password(Utc::now()),
                i64::MAX,
            )
            .unwrap()
            .token;
        let claims = tokens.verify_in_memory(&token).unwrap();

        tokens.revocations().revoke_token(&claims.jti, claims.exp);

        assert_eq!(
            tokens.verify_in_memory(&token),
            Err(TokenRejection::Revoked)
        );
    }

    #[test]
    fn a_token_from_before_sessions_verifies_and_is_revoked_by_its_id() {
        let key = generate_signing_key(Utc::now()).unwrap();
        let tokens = service(&key);
        let now = Utc::now().timestamp();
        let legacy = Claims {
            iss: "authd".into(),
            sub: Uuid::now_v7().to_string(),
            aud: "authd".into(),
            exp: now + 60,
            nbf: now,
            iat: now,
            jti: random_id::<16>().unwrap(),
            username: "alice".into(),
            sid: None,
            client_id: None,
            auth_time: None,
            amr: Vec::new(),
            acr: None,
        };
        let keys = tokens.keys();
        let (kid, signing_key) = keys.signing();
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &legacy, signing_key).unwrap();

        let claims = tokens.verify_in_memory(&token).unwrap();
        assert_eq!((claims.sid.as_deref(), claims.session_id()), (None, None));

        tokens.revocations().revoke_token(&claims.jti, claims.exp);
        assert_eq!(
            tokens.verify_in_memory(&token),
            Err(TokenRejection::Revoked)
        );
    }

    #[test]
    fn no_token_outlives_its_session() {
        let key = generate_signing_key(Utc::now()).unwrap();
        let tokens = service(&key);
        let session_ends = Utc::now().timestamp() + 30;
        let issued = tokens
            .issue(
                Uuid::now_v7(),
                "alice",
                Uuid::now_v7(),
                &Authentication::password(Utc::now()),
                session_ends,
            )
            .unwrap();
        let claims = tokens.verify_in_memory(&issued.token).unwrap();
        assert_eq!(claims.exp, session_ends);
        assert!(issued.expires_in <= 30);
    }

    #[test]
    fn remembered_tokens_are_forgotten_when_their_key_is() {
        let old = generate_signing_key(Utc::now()).unwrap();
        let tokens = service(&old);
        let token = tokens
            .issue(
                Uuid::now_v7(),
                "alice",
                Uuid::now_v7(),
                &Authentication::password(Utc::now()),
                i64::MAX,
            )
            .unwrap()
            .token;
        tokens.verify_in_memory(&token).unwrap();

        let new = generate_signing_key(Utc::now()).unwrap();
        tokens.reload_keys(&[new]).unwrap();

        assert_eq!(
            tokens.verify_in_memory(&token),
            Err(TokenRejection::UnknownKey)
        );
    }

    /// What the key refresh task does when asked: reads `stored` again.
    fn serve_reloads(tokens: &Arc<TokenService>, stored: Vec<SigningKeyRecord>) {
        let tokens = Arc::clone(tokens);
        tokio::spawn(async move {
            let reloads = tokens.key_reloads();
            loop {
                reloads.asked().await;
                reloads.start();
                reloads.finish(tokens.reload_keys(&stored).is_ok());
            }
        });
    }

    #[tokio::test]
    async fn a_token_of_a_key_rotated_in_elsewhere_is_accepted_after_a_reload() {
        let old = generate_signing_key(Utc::now()).unwrap();
        let new = generate_signing_key(Utc::now()).unwrap();
        let here = Arc::new(service(&old));
        let elsewhere = service(&new);
        let token = elsewhere
            .issue(
                Uuid::now_v7(),
                "alice",
                Uuid::now_v7(),
                &Authentication::password(Utc::now()),
                i64::MAX,
            )
            .unwrap()
            .token;
        assert_eq!(
            here.verify_in_memory(&token),
            Err(TokenRejection::UnknownKey)
        );

        serve_reloads(&here, vec![new, old]);

        assert_eq!(here.verify(&token).await.unwrap().username, "alice");
    }

    #[tokio::test]
    async fn a_key_no_reload_finds_is_refused_as_a_bad_signature() {
        let ours = generate_signing_key(Utc::now()).unwrap();
        let here = Arc::new(service(&ours));
        let forged = service(&generate_signing_key(Utc::now()).unwrap())
            .issue(
                Uuid::now_v7(),
                "mallory",
                Uuid::now_v7(),
                &Authentication::password(Utc::now()),
                i64::MAX,
            )
            .unwrap()
            .token;

        serve_reloads(&here, vec![ours]);

        let refused = here.verify(&forged).await.unwrap_err();
        assert_eq!(refused.reason(), "TOKEN_INVALID_SIGNATURE");
    }
}
