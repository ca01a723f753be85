//! The token check in force, and how its keys and revocation list are
//! replaced while requests are being checked.
//!
//! A [`TokenVerifier`] is built over one `Arc<RevocationList>` for its whole
//! life, and a `RevocationList` can only grow (there is no way to take a
//! revoked token out of it). A new snapshot, though, must *replace* what the
//! verifier held: after authd restarts, or when a cursor has expired, the
//! old list may hold entries the new snapshot no longer has (an account
//! enabled again) and lack ones it has. So a snapshot is read into a fresh
//! list, a fresh `TokenVerifier` is built over it with the keys in force,
//! and that verifier replaces the old one in a single pointer swap. A check
//! runs entirely on the verifier it started with: it sees the old list or
//! the new one, never a half-built one. The cost, once per snapshot, is the
//! verified-token cache, which starts empty again.
//!
//! The swap sits behind a `std` `RwLock` held only to clone an `Arc`, never
//! across an `.await`, so the hot path takes no async lock and never waits
//! on the network. Writers (a snapshot, a key refresh) also take `writing`,
//! so that a key refresh cannot land on a verifier that a concurrent
//! snapshot is about to throw away.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use authd_token::{RevocationList, TokenVerifier, VerifierSettings, VerifyingKeys};

pub struct CurrentTokens {
    settings: VerifierSettings,
    verifier: RwLock<Arc<TokenVerifier>>,
    writing: Mutex<()>,
}

impl CurrentTokens {
    /// Checks with `keys` and an empty list until the first snapshot.
    pub fn new(settings: VerifierSettings, keys: VerifyingKeys) -> Self {
        let verifier = TokenVerifier::new(settings.clone(), keys, Arc::default());
        Self {
            settings,
            verifier: RwLock::new(Arc::new(verifier)),
            writing: Mutex::new(()),
        }
    }

    /// The verifier to check a token with now.
    pub fn current(&self) -> Arc<TokenVerifier> {
        Arc::clone(&self.verifier.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Checks tokens with `keys` from now on.
    pub fn replace_keys(&self, keys: VerifyingKeys) {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        self.current().replace_keys(keys);
    }

    /// Refuses exactly what `revocations` holds from now on.
    pub fn replace_revocations(&self, revocations: RevocationList) {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = VerifyingKeys::clone(&self.current().keys());
        let verifier = TokenVerifier::new(self.settings.clone(), keys, Arc::new(revocations));
        *self
            .verifier
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(verifier);
    }
}
