//! Access tokens: EdDSA-signed JWTs, checked against the signing keys and the
//! revocation list. Verification pins everything it can (RFC 8725): the
//! algorithm per key, `typ`, issuer, audience, `exp` and `nbf`. A token that
//! names a key this instance does not hold is refused only once the keys
//! have been read again from the database ([`KeyReloads`]).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::Header;
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use uuid::Uuid;

use super::error::{AuthError, TokenRejection};
use super::jws;
use super::key_reloads::KeyReloads;
use super::keys::{ALGORITHM, FileKey, KeySet, PublicJwk};
use super::revocations::RevocationList;
use super::verified_tokens::VerifiedTokens;
use crate::storage::SigningKeyRecord;

/// RFC 9068: marks the JWT as an access token, so no other JWT signed with the
/// same key (an ID token, say) passes for one.
const TOKEN_TYPE: &str = "at+jwt";
const TOKEN_MEDIA_TYPE: &str = "application/at+jwt";
/// Larger tokens are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Tolerated clock difference between instances, for `exp` and `nbf`.
pub const CLOCK_LEEWAY: Duration = Duration::from_secs(10);

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user id.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    pub username: String,
    /// The session the token belongs to; absent from tokens issued before
    /// sessions existed, which are revoked one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Claims {
    /// The session the token belongs to, if it names one.
    pub fn session_id(&self) -> Option<Uuid> {
        self.sid.as_deref().and_then(|sid| sid.parse().ok())
    }
}

/// Who issues tokens, for whom, and for how long.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
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
    /// Swapped whole when the keys are reloaded; readers keep the set they
    /// started with.
    keys: RwLock<Arc<KeySet>>,
    files: Vec<FileKey>,
    settings: TokenSettings,
    revocations: RevocationList,
    verified: VerifiedTokens,
    reloads: KeyReloads,
}

impl TokenService {
    /// `stored` latest activation first; see [`KeySet::new`].
    pub fn new(
        files: Vec<FileKey>,
        stored: &[SigningKeyRecord],
        settings: TokenSettings,
        revocations: RevocationList,
    ) -> Result<Self, AuthError> {
        let keys = KeySet::new(&files, stored, Utc::now())?;
        Ok(Self {
            keys: RwLock::new(Arc::new(keys)),
            files,
            verified: VerifiedTokens::new(settings.verified_token_cache),
            settings,
            revocations,
            reloads: KeyReloads::default(),
        })
    }

    /// Takes up the database keys as they are now (after a rotation).
    pub fn reload_keys(&self, stored: &[SigningKeyRecord]) -> Result<(), AuthError> {
        let keys = Arc::new(KeySet::new(&self.files, stored, Utc::now())?);
        let previous = std::mem::replace(
            &mut *self.keys.write().unwrap_or_else(PoisonError::into_inner),
            Arc::clone(&keys),
        );
        // A token verified under a key that is gone must be checked again.
        if previous
            .published()
            .iter()
            .any(|key| keys.verifying(&key.kid).is_none())
        {
            self.verified.clear();
        }
        Ok(())
    }

    fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every public key, for the JWKS.
    pub fn published_keys(&self) -> Vec<PublicJwk> {
        self.keys().published().to_vec()
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
        not_after: i64,
    ) -> Result<AccessToken, AuthError> {
        let now = Utc::now().timestamp();
        let subject = user_id.to_string();
        let issued_at = self
            .revocations
            .cutoff(&subject)
            .map_or(now, |revoked_through| now.max(revoked_through + 1));
        let lifetime =
            i64::try_from(self.settings.lifetime.as_secs()).map_err(AuthError::internal)?;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: subject,
            aud: self.settings.audience.clone(),
            exp: (issued_at + lifetime).min(not_after).max(issued_at + 1),
            nbf: issued_at,
            iat: issued_at,
            jti: random_id::<16>()?,
            username: username.to_owned(),
            sid: Some(session_id.to_string()),
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
        if token.is_empty() {
            return Err(TokenRejection::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::Malformed);
        }
        let now = Utc::now().timestamp();
        let digest = VerifiedTokens::digest(token);
        let claims = match self.verified.get(&digest, now) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signed(token, now)?);
                // Tokens in their leeway after `exp` are not worth keeping.
                if now < claims.exp {
                    self.verified.insert(digest, Arc::clone(&claims));
                }
                claims
            }
        };
        if let Some(rejection) = self.revocations.rejection(&claims) {
            return Err(rejection);
        }
        Ok(claims)
    }

    /// The signature and the claims of a token, checked as RFC 8725 asks:
    /// one algorithm, `typ`, key by `kid` from our own store, then issuer,
    /// audience, `exp` and `nbf`.
    fn verify_signed(&self, token: &str, now: i64) -> Result<Claims, TokenRejection> {
        let keys = self.keys();
        let payload = jws::verify(token, is_access_token_type, |kid| keys.verifying(kid))?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|error| {
            match error.classify() {
                // Well-formed JSON, but not our claims: one missing, say.
                Category::Data => TokenRejection::WrongClaims,
                _ => TokenRejection::Malformed,
            }
        })?;
        let leeway = CLOCK_LEEWAY.as_secs().cast_signed();
        if claims.exp < now - leeway {
            return Err(TokenRejection::Expired);
        }
        if claims.nbf > now + leeway {
            return Err(TokenRejection::NotYetValid);
        }
        if claims.iss != self.settings.issuer || claims.aud != self.settings.audience {
            return Err(TokenRejection::WrongClaims);
        }
        Ok(claims)
    }

    /// The revocation list every check consults.
    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }

    /// Where checks of tokens naming unknown keys wait for the key refresh
    /// task to reload the keys.
    pub fn key_reloads(&self) -> &KeyReloads {
        &self.reloads
    }
}

/// `at+jwt`, also in its full media type form, case-insensitively (RFC 9068
/// section 4, RFC 7515 section 4.1.9).
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(TOKEN_TYPE) || typ.eq_ignore_ascii_case(TOKEN_MEDIA_TYPE)
}

/// `N` random bytes, base64url: ids nobody can guess or enumerate.
pub(super) fn random_id<const N: usize>() -> Result<String, AuthError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(AuthError::internal)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::generate_signing_key;

    fn service(key: &SigningKeyRecord) -> TokenService {
        let settings = TokenSettings {
            issuer: "authd".into(),
            audience: "authd".into(),
            lifetime: Duration::from_secs(3600),
            verified_token_cache: 100,
        };
        let revocations = RevocationList::default();
        TokenService::new(Vec::new(), std::slice::from_ref(key), settings, revocations).unwrap()
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_revocation() {
        let key = generate_signing_key(Utc::now()).unwrap();
        let tokens = service(&key);
        let token = tokens
            .issue(Uuid::now_v7(), "alice", Uuid::now_v7(), i64::MAX)
            .unwrap()
            .token;
        let claims = tokens.verify_in_memory(&token).unwrap();

        tokens.revocations().insert(&claims.jti, claims.exp);

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
        };
        let keys = tokens.keys();
        let (kid, signing_key) = keys.signing();
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &legacy, signing_key).unwrap();

        let claims = tokens.verify_in_memory(&token).unwrap();
        assert_eq!((claims.sid.as_deref(), claims.session_id()), (None, None));

        tokens.revocations().insert(&claims.jti, claims.exp);
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
            .issue(Uuid::now_v7(), "alice", Uuid::now_v7(), session_ends)
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
            .issue(Uuid::now_v7(), "alice", Uuid::now_v7(), i64::MAX)
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
            .issue(Uuid::now_v7(), "alice", Uuid::now_v7(), i64::MAX)
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
            .issue(Uuid::now_v7(), "mallory", Uuid::now_v7(), i64::MAX)
            .unwrap()
            .token;

        serve_reloads(&here, vec![ours]);

        let refused = here.verify(&forged).await.unwrap_err();
        assert_eq!(refused.reason(), "TOKEN_INVALID_SIGNATURE");
    }
}
