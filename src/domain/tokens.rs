//! Access tokens: EdDSA-signed JWTs, checked against the signing keys and the
//! revocation list. Verification pins everything it can (RFC 8725): the
//! algorithm per key, `typ`, issuer, audience, `exp` and `nbf`.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::error::{AuthError, TokenRejection};
use super::revocations::RevocationList;
use crate::storage::{SigningKeyRecord, Store};

/// The only algorithm authd signs with or accepts.
const ALGORITHM: Algorithm = Algorithm::EdDSA;
const ALGORITHM_NAME: &str = "EdDSA";
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
    /// Unique token id; what Logout revokes.
    pub jti: String,
    pub username: String,
}

/// Who issues tokens, for whom, and for how long.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub lifetime: Duration,
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
    signing_kid: String,
    signing_key: EncodingKey,
    verifying_keys: HashMap<String, DecodingKey>,
    validation: Validation,
    settings: TokenSettings,
    revocations: RevocationList,
}

impl TokenService {
    /// `keys` newest first: the newest signs, all of them verify.
    pub fn new(
        keys: &[SigningKeyRecord],
        settings: TokenSettings,
        revocations: RevocationList,
    ) -> Result<Self, AuthError> {
        let usable: Vec<&SigningKeyRecord> = keys
            .iter()
            .filter(|key| key.algorithm == ALGORITHM_NAME)
            .collect();
        let newest = usable
            .first()
            .ok_or_else(|| AuthError::internal("no EdDSA signing key"))?;
        let verifying_keys = usable
            .iter()
            .map(|key| (key.kid.clone(), DecodingKey::from_ed_der(&key.public_key)))
            .collect();

        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = CLOCK_LEEWAY.as_secs();

        Ok(Self {
            signing_kid: newest.kid.clone(),
            signing_key: EncodingKey::from_ed_der(&newest.private_key),
            verifying_keys,
            validation,
            settings,
            revocations,
        })
    }

    /// Makes a new Ed25519 key pair with a random key id.
    pub fn generate_signing_key() -> Result<SigningKeyRecord, AuthError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(AuthError::internal)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let private_key = key.to_pkcs8_der().map_err(AuthError::internal)?;
        Ok(SigningKeyRecord {
            kid: random_id::<8>()?,
            algorithm: ALGORITHM_NAME.into(),
            private_key: private_key.as_bytes().to_vec(),
            public_key: key.verifying_key().to_bytes().to_vec(),
            created_at: Utc::now(),
        })
    }

    /// Signs a new access token for a user.
    pub fn issue(&self, user_id: Uuid, username: &str) -> Result<AccessToken, AuthError> {
        let now = Utc::now().timestamp();
        let lifetime =
            i64::try_from(self.settings.lifetime.as_secs()).map_err(AuthError::internal)?;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: user_id.to_string(),
            aud: self.settings.audience.clone(),
            exp: now + lifetime,
            nbf: now,
            iat: now,
            jti: random_id::<16>()?,
            username: username.to_owned(),
        };
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(self.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing_key)
            .map_err(AuthError::internal)?;
        Ok(AccessToken {
            token,
            expires_in: u32::try_from(lifetime).map_err(AuthError::internal)?,
        })
    }

    /// Checks a compact JWT: size, header, signature, claims, revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenRejection> {
        if token.is_empty() {
            return Err(TokenRejection::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        // We understand no JWS extensions, so any `crit` must be refused.
        if header.crit.is_some() {
            return Err(TokenRejection::Malformed);
        }
        if !header.typ.as_deref().is_some_and(is_access_token_type) {
            return Err(TokenRejection::WrongClaims);
        }
        // `jku`, `x5u`, `jwk` and the like are ignored: keys come only from
        // our own store, looked up by `kid`.
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying_keys.get(kid))
            .ok_or(TokenRejection::BadSignature)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|error| rejection(error.kind()))?
            .claims;
        if self.revocations.contains(&claims.jti) {
            return Err(TokenRejection::Revoked);
        }
        Ok(claims)
    }

    /// Checks the value of an `Authorization` header: `Bearer <token>`, the
    /// scheme case-insensitive (RFC 7235), separated by spaces.
    pub fn verify_authorization(&self, header: &str) -> Result<Claims, TokenRejection> {
        let (scheme, token) = header
            .trim()
            .split_once(' ')
            .ok_or(TokenRejection::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenRejection::Malformed);
        }
        let token = token.trim_start_matches(' ');
        if token.contains(char::is_whitespace) {
            return Err(TokenRejection::Malformed);
        }
        self.verify(token)
    }

    /// Checks the `Authorization` values of a request, given as raw bytes so
    /// that every surface (gRPC metadata, HTTP headers) shares this path.
    /// `None` when there is none; more than one is ambiguous and refused, so
    /// a proxy and authd can never disagree about who the caller is.
    pub fn verify_authorization_values<'a>(
        &self,
        mut values: impl Iterator<Item = &'a [u8]>,
    ) -> Option<Result<Claims, TokenRejection>> {
        let first = values.next()?;
        if values.next().is_some() {
            return Some(Err(TokenRejection::Malformed));
        }
        Some(
            std::str::from_utf8(first)
                .map_err(|_| TokenRejection::Malformed)
                .and_then(|header| self.verify_authorization(header)),
        )
    }

    /// The revocation list every check consults.
    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }
}

/// Reads the signing keys, creating the first one on a fresh database.
pub async fn load_or_create_signing_keys<S: Store>(
    store: &S,
) -> Result<Vec<SigningKeyRecord>, AuthError> {
    let keys = store.signing_keys().await?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    store
        .insert_signing_key(&TokenService::generate_signing_key()?)
        .await?;
    // Instances starting together on one database may each have added a
    // key; reading again makes them all sign with the same newest one.
    store.signing_keys().await
}

/// `at+jwt`, also in its full media type form, case-insensitively (RFC 9068
/// section 4, RFC 7515 section 4.1.9).
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(TOKEN_TYPE) || typ.eq_ignore_ascii_case(TOKEN_MEDIA_TYPE)
}

fn rejection(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => TokenRejection::BadSignature,
        ErrorKind::InvalidIssuer
        | ErrorKind::InvalidAudience
        | ErrorKind::InvalidSubject
        | ErrorKind::MissingRequiredClaim(_) => TokenRejection::WrongClaims,
        _ => TokenRejection::Malformed,
    }
}

/// `N` random bytes, base64url: ids nobody can guess or enumerate.
fn random_id<const N: usize>() -> Result<String, AuthError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(AuthError::internal)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
