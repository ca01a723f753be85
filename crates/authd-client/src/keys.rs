//! authd's public keys: fetched at start, again when a token names a key
//! not held (a rotation), and every `key_max_age`.
//!
//! A refresh prompted by an unknown `kid` is single-flight and rate-limited,
//! as in Go's `keyfunc`: callers take the refresh lock only on that rare
//! path (never on an ordinary check), the first one fetches while it holds
//! the lock, and those queued behind it find the key set's generation moved
//! on and check again without fetching. A fetch within `spacing` of the
//! last one is skipped, so forged key ids cost authd at most one `GetJwks`
//! per spacing; and a failed fetch keeps the keys held.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use authd_token::{PublicJwk, VerifyingKeys};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::error::ConnectError;
use crate::pb::GetJwksRequest;
use crate::pb::auth_service_client::AuthServiceClient;
use crate::tokens::CurrentTokens;

/// Why the keys could not be fetched.
#[derive(Debug)]
pub enum FetchError {
    Unreachable(tonic::Status),
    Invalid(authd_token::KeyError),
}

impl From<FetchError> for ConnectError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Unreachable(status) => Self::Timeout(Some(status)),
            FetchError::Invalid(error) => Self::InvalidKeys(error),
        }
    }
}

/// Fetches authd's key set (`GetJwks`) within `timeout`.
pub async fn fetch(
    client: &AuthServiceClient<Channel>,
    timeout: Duration,
) -> Result<VerifyingKeys, FetchError> {
    let response = tokio::time::timeout(timeout, client.clone().get_jwks(GetJwksRequest {}))
        .await
        .map_err(|_| FetchError::Unreachable(tonic::Status::deadline_exceeded("GetJwks")))?
        .map_err(FetchError::Unreachable)?;
    let jwks: Vec<PublicJwk> = response
        .into_inner()
        .keys
        .into_iter()
        .map(PublicJwk::from)
        .collect();
    VerifyingKeys::from_jwks(&jwks).map_err(FetchError::Invalid)
}

pub struct KeyRefresh {
    client: AuthServiceClient<Channel>,
    timeout: Duration,
    spacing: Duration,
    /// Counts the key sets taken up, so a caller can tell whether the keys
    /// changed since its check.
    generation: AtomicU64,
    /// When the keys were last fetched, successfully or not. Held across a
    /// fetch: that is what makes it single-flight.
    last_fetch: Mutex<Instant>,
}

impl KeyRefresh {
    /// Keys were fetched just now.
    pub fn new(client: AuthServiceClient<Channel>, timeout: Duration, spacing: Duration) -> Self {
        Self {
            client,
            timeout,
            spacing,
            generation: AtomicU64::new(0),
            last_fetch: Mutex::new(Instant::now()),
        }
    }

    /// The generation of the keys held now; read it before a check.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A check made under generation `seen` found a token naming a key not
    /// held: fetches the keys, unless another caller did since (then the
    /// caller only checks again) or the last fetch is too recent.
    pub async fn refresh_after_unknown_key(&self, seen: u64, tokens: &CurrentTokens) {
        let mut last_fetch = self.last_fetch.lock().await;
        if self.generation() != seen || last_fetch.elapsed() < self.spacing {
            return;
        }
        self.fetch_into(tokens, &mut last_fetch).await;
    }

    /// Fetches the keys if the last fetch is `max_age` old.
    pub async fn refresh_if_older_than(&self, max_age: Duration, tokens: &CurrentTokens) {
        let mut last_fetch = self.last_fetch.lock().await;
        if last_fetch.elapsed() >= max_age {
            self.fetch_into(tokens, &mut last_fetch).await;
        }
    }

    async fn fetch_into(&self, tokens: &CurrentTokens, last_fetch: &mut Instant) {
        *last_fetch = Instant::now();
        match fetch(&self.client, self.timeout).await {
            Ok(keys) => {
                tokens.replace_keys(keys);
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::debug!("authd's keys fetched again");
            }
            Err(error) => {
                tracing::warn!(?error, "cannot fetch authd's keys; keeping those held");
            }
        }
    }
}
