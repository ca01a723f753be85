//! The check itself: size, header, signature, claims, revocation, as RFC
//! 8725 asks: one algorithm, `typ`, the key by `kid` from the caller's own
//! key set, then issuer, audience, `exp` and `nbf`.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::error::Category;

use crate::verified::VerifiedTokens;
use crate::{Claims, RevocationList, TokenRejection, VerifyingKeys};
use crate::{horizons, jws};

/// RFC 9068: marks the JWT as an access token, so no other JWT signed with
/// the same key (an ID token, say) passes for one.
pub const TOKEN_TYPE: &str = "at+jwt";
/// [`TOKEN_TYPE`] as a full media type, which `typ` may also say.
pub const TOKEN_MEDIA_TYPE: &str = "application/at+jwt";
/// Larger tokens are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Tolerated clock difference between machines, for `exp` and `nbf`.
pub const CLOCK_LEEWAY: Duration = Duration::from_secs(10);

/// Whom tokens must be issued by and for, and how many verified tokens to
/// remember.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// The `iss` every token must carry (authd's `--issuer`).
    pub issuer: String,
    /// The `aud` every token must carry (authd's `--audience`).
    pub audience: String,
    /// How many verified tokens to remember (0: none); about 500 bytes each.
    pub cache_capacity: usize,
    /// Issuers accepted besides `issuer`: the one authd issued as before a
    /// change of `--issuer` or `--public-url`, for as long as its tokens
    /// live (authd's `--previous-issuer`).
    pub previous_issuers: Vec<String>,
}

impl VerifierSettings {
    /// Tokens of this issuer for this audience, remembering up to 50,000.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            cache_capacity: 50_000,
            previous_issuers: Vec::new(),
        }
    }

    /// Also accepts tokens of these issuers (after authd's issuer changed).
    pub fn with_previous_issuers(mut self, issuers: impl IntoIterator<Item = String>) -> Self {
        self.previous_issuers.extend(issuers);
        self
    }

    /// Whether a token's `iss` is one this verifier accepts.
    fn accepts_issuer(&self, iss: &str) -> bool {
        iss == self.issuer || self.previous_issuers.iter().any(|previous| previous == iss)
    }
}

/// Checks access tokens against a key set and a revocation list, without
/// any I/O: what the caller does when a token names an unknown key (fetch
/// the keys again, then [`replace_keys`](Self::replace_keys)) is its own.
pub struct TokenVerifier {
    /// Swapped whole when the keys change; a check keeps the set it began
    /// with.
    keys: RwLock<Arc<VerifyingKeys>>,
    settings: VerifierSettings,
    verified: VerifiedTokens,
    revocations: Arc<RevocationList>,
    on_cache_lookup: fn(bool),
}

impl TokenVerifier {
    /// A verifier of tokens signed by `keys`, refusing what `revocations`
    /// holds.
    pub fn new(
        settings: VerifierSettings,
        keys: VerifyingKeys,
        revocations: Arc<RevocationList>,
    ) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            verified: VerifiedTokens::new(settings.cache_capacity),
            settings,
            revocations,
            on_cache_lookup: |_| {},
        }
    }

    /// Calls `observe(hit)` on every lookup in the verified-token cache
    /// (for metrics).
    #[must_use]
    pub fn observing_cache(mut self, observe: fn(bool)) -> Self {
        self.on_cache_lookup = observe;
        self
    }

    /// The keys tokens are checked with now.
    pub fn keys(&self) -> Arc<VerifyingKeys> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Checks tokens with `keys` from now on. Tokens verified under a key
    /// that is gone are forgotten, so they are checked again.
    pub fn replace_keys(&self, keys: VerifyingKeys) {
        let keys = Arc::new(keys);
        let previous = std::mem::replace(
            &mut *self.keys.write().unwrap_or_else(PoisonError::into_inner),
            Arc::clone(&keys),
        );
        if !previous.all_in(&keys) {
            self.verified.clear();
        }
    }

    /// The revocation list every check consults.
    pub fn revocations(&self) -> &Arc<RevocationList> {
        &self.revocations
    }

    /// Checks a compact JWT now (the system clock).
    ///
    /// # Errors
    /// Why the token is refused. [`TokenRejection::UnknownKey`] means the
    /// token names a key this verifier does not hold: fetch the keys and
    /// check again before taking it as final.
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, TokenRejection> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs().cast_signed());
        self.verify_at(token, now)
    }

    /// Checks a compact JWT at `now` (Unix seconds).
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Arc<Claims>, TokenRejection> {
        if token.is_empty() {
            return Err(TokenRejection::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::Malformed);
        }
        let digest = VerifiedTokens::digest(token);
        let cached = self.verified.get(&digest, now);
        (self.on_cache_lookup)(cached.is_some());
        let claims = match cached {
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

    fn verify_signed(&self, token: &str, now: i64) -> Result<Claims, TokenRejection> {
        let keys = self.keys();
        let payload = jws::verify(token, is_access_token_type, |kid| keys.get(kid))?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|error| {
            match error.classify() {
                // Well-formed JSON, but not our claims: one missing, say.
                Category::Data => TokenRejection::WrongClaims,
                _ => TokenRejection::Malformed,
            }
        })?;
        if claims.exp < horizons::earliest_accepted_expiry(now) {
            return Err(TokenRejection::Expired);
        }
        if claims.nbf > horizons::latest_accepted_start(now) {
            return Err(TokenRejection::NotYetValid);
        }
        if !self.settings.accepts_issuer(&claims.iss) || claims.aud != self.settings.audience {
            return Err(TokenRejection::WrongClaims);
        }
        Ok(claims)
    }
}

/// `at+jwt`, also in its full media type form, case-insensitively (RFC 9068
/// section 4, RFC 7515 section 4.1.9).
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(TOKEN_TYPE) || typ.eq_ignore_ascii_case(TOKEN_MEDIA_TYPE)
}
