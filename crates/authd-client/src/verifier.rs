//! The verifier services hold: connecting, checking a token, and how it is
//! doing.

use std::sync::Arc;
use std::time::Duration;

use authd_token::{AuthenticationPolicy, Claims, TokenRejection, VerifierSettings};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt as _;

use crate::config::{StalePolicy, VerifierConfig};
use crate::error::{ConnectError, VerifyError};
use crate::feed::{self, FeedSource, FeedStatus, Progress};
use crate::keys::{self, FetchError, KeyRefresh};
use crate::pb::VerifyRequest;
use crate::pb::auth_service_client::AuthServiceClient;
use crate::pb::revocation_service_client::RevocationServiceClient;
use crate::tokens::CurrentTokens;

/// Verifies authd access tokens in-process. Cheap to clone: clones share
/// the keys, the revocation list and the background task following authd's
/// revocation feed, which stops when the last clone is dropped.
///
/// ```no_run
/// use authd_client::{Verifier, VerifierConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let verifier = Verifier::connect(VerifierConfig::new("http://127.0.0.1:50051", "feed")).await?;
/// let claims = verifier.verify("eyJ...").await?;
/// println!("{} ({})", claims.username, claims.sub);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// Shows how the verifier is doing, never its keys or credential.
impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

struct Inner {
    shared: Arc<Shared>,
    /// The feed and upkeep tasks; dropping the set aborts them.
    _tasks: JoinSet<()>,
}

/// What the verifier and its background tasks share.
pub(crate) struct Shared {
    pub tokens: CurrentTokens,
    pub keys: KeyRefresh,
    pub feed: FeedStatus,
    auth: AuthServiceClient<Channel>,
    stale_policy: StalePolicy,
    request_timeout: Duration,
    #[cfg(feature = "axum")]
    token_cookie: Option<String>,
}

/// How a [`Verifier`] is doing, from [`Verifier::state`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierState {
    /// Whether a `WatchRevocations` stream to authd is open now and has
    /// delivered a message (one that authd ends before sending anything, as
    /// it does while it drains, does not count).
    pub connected: bool,
    /// Whether the revocation list may be missing revocations: no message
    /// from the feed for longer than the staleness limit. The stale policy
    /// applies while it is.
    pub stale: bool,
    /// The feed cursor of the last message taken up.
    pub cursor: String,
    /// The lag: how long since the last message (a change or a checkpoint)
    /// was taken up; none before the first snapshot.
    pub lag: Option<Duration>,
}

impl Verifier {
    /// Fetches authd's keys (`GetJwks`), starts following its revocation
    /// feed, and returns once the first revocation snapshot is complete.
    /// authd being unreachable is retried until the connect timeout.
    ///
    /// Must be called within a Tokio runtime, which the background tasks
    /// run on.
    ///
    /// # Errors
    /// [`ConnectError::InvalidEndpoint`] or
    /// [`ConnectError::InvalidFeedCredential`] for a configuration that
    /// cannot work, [`ConnectError::InvalidKeys`] for a JWKS that holds an
    /// unusable key, [`ConnectError::FeedRefused`] when authd refuses the
    /// feed credential, [`ConnectError::Timeout`] when authd does not
    /// deliver keys and snapshot within the connect timeout.
    pub async fn connect(config: VerifierConfig) -> Result<Self, ConnectError> {
        let deadline = Instant::now() + config.connect_timeout;
        let channel = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|_| ConnectError::InvalidEndpoint(config.endpoint.clone()))?
            .connect_timeout(config.request_timeout)
            .connect_lazy();
        let authorization: MetadataValue<Ascii> = format!("Bearer {}", config.feed_credential)
            .parse()
            .map_err(|_| ConnectError::InvalidFeedCredential)?;
        let auth = AuthServiceClient::new(channel.clone());

        let keys = fetch_keys_until(&auth, config.request_timeout, deadline).await?;
        let shared = Arc::new(Shared {
            tokens: CurrentTokens::new(
                VerifierSettings::new(config.issuer, config.audience)
                    .with_previous_issuers(config.previous_issuers),
                keys,
            ),
            keys: KeyRefresh::new(
                auth.clone(),
                config.request_timeout,
                config.key_refresh_spacing,
            ),
            feed: FeedStatus::new(config.staleness_limit),
            auth,
            stale_policy: config.stale_policy,
            request_timeout: config.request_timeout,
            #[cfg(feature = "axum")]
            token_cookie: config.token_cookie,
        });

        let (progress, mut first_snapshot) = watch::channel(Progress::Waiting(None));
        let source = FeedSource {
            client: RevocationServiceClient::new(channel),
            authorization,
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(feed::follow(Arc::clone(&shared), source, progress));
        tasks.spawn(feed::upkeep(Arc::clone(&shared), config.key_max_age));
        let verifier = Self {
            inner: Arc::new(Inner {
                shared,
                _tasks: tasks,
            }),
        };

        let waited = tokio::time::timeout_at(
            deadline,
            first_snapshot.wait_for(|progress| !matches!(progress, Progress::Waiting(_))),
        )
        .await
        .map(|progress| progress.map(|progress| progress.clone()));
        let outcome = match waited {
            Ok(Ok(progress)) => progress,
            // The feed task is gone (it never returns, so it panicked).
            Ok(Err(_)) => Progress::Waiting(None),
            Err(_) => first_snapshot.borrow().clone(),
        };
        match outcome {
            Progress::Synced => Ok(verifier),
            Progress::Refused(status) => Err(ConnectError::FeedRefused(status)),
            Progress::Waiting(last_error) => Err(ConnectError::Timeout(last_error)),
        }
    }

    /// Checks an access token (without its `Bearer ` prefix) and returns
    /// its claims.
    ///
    /// Ordinarily an in-memory check: signature against the keys held,
    /// claims, then the revocation list. Two cases reach authd: a token
    /// naming a key not held (the keys are fetched again, once for all
    /// concurrent callers and at most once per refresh spacing, then the
    /// token is checked again), and a token that passes while the verifier
    /// is stale, which goes to the stale policy.
    ///
    /// # Errors
    /// Why the token is refused; see [`VerifyError`].
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, VerifyError> {
        let shared = &self.inner.shared;
        let claims = self.verify_locally(token).await?;
        if !shared.feed.is_stale() {
            return Ok(claims);
        }
        match shared.stale_policy {
            StalePolicy::FailOpen => Ok(claims),
            StalePolicy::FailClosed => Err(VerifyError::Stale),
            StalePolicy::FallBackToAuthd => self.confirm_with_authd(token).await.map(|()| claims),
        }
    }

    /// Checks an access token as [`verify`](Self::verify) does, then that
    /// the caller's authentication meets `policy` (level, age).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use authd_client::{AuthenticationPolicy, Verifier};
    ///
    /// # async fn run(verifier: Verifier) -> Result<(), authd_client::VerifyError> {
    /// let payments = AuthenticationPolicy::new()
    ///     .require_two_factors()
    ///     .max_auth_age(Duration::from_secs(300));
    /// let claims = verifier.verify_with("eyJ...", &payments).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Why the token is refused, [`VerifyError::InsufficientAuthentication`]
    /// for a valid token that does not meet `policy`.
    pub async fn verify_with(
        &self,
        token: &str,
        policy: &AuthenticationPolicy,
    ) -> Result<Arc<Claims>, VerifyError> {
        let claims = self.verify(token).await?;
        policy.check(&claims)?;
        Ok(claims)
    }

    /// How the verifier is doing: for health checks and dashboards.
    pub fn state(&self) -> VerifierState {
        let feed = &self.inner.shared.feed;
        VerifierState {
            connected: feed.is_connected(),
            stale: feed.is_stale(),
            cursor: feed.cursor(),
            lag: feed.since_last_sync(),
        }
    }

    /// The cookie HTTP front ends read a token from, if configured.
    #[cfg(feature = "axum")]
    pub(crate) fn token_cookie(&self) -> Option<&str> {
        self.inner.shared.token_cookie.as_deref()
    }

    async fn verify_locally(&self, token: &str) -> Result<Arc<Claims>, VerifyError> {
        let shared = &self.inner.shared;
        let generation = shared.keys.generation();
        match shared.tokens.current().verify(token) {
            Err(TokenRejection::UnknownKey) => {
                shared
                    .keys
                    .refresh_after_unknown_key(generation, &shared.tokens)
                    .await;
                Ok(shared.tokens.current().verify(token)?)
            }
            checked => Ok(checked?),
        }
    }

    /// Asks authd whether a token that passed the local checks is still
    /// good; Ok when it is.
    async fn confirm_with_authd(&self, token: &str) -> Result<(), VerifyError> {
        let shared = &self.inner.shared;
        let request = VerifyRequest {
            access_token: token.to_owned(),
        };
        let answer =
            tokio::time::timeout(shared.request_timeout, shared.auth.clone().verify(request)).await;
        match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => {
                let reason = status.get_details_error_info().map(|info| info.reason);
                reason
                    .as_deref()
                    .and_then(VerifyError::from_authd_reason)
                    .map_or_else(
                        || {
                            tracing::debug!(code = ?status.code(), message = status.message(), "authd could not confirm a token");
                            Err(VerifyError::AuthdUnavailable)
                        },
                        Err,
                    )
            }
            Err(_) => Err(VerifyError::AuthdUnavailable),
        }
    }
}

/// Fetches the keys, retrying while authd is unreachable, until `deadline`.
async fn fetch_keys_until(
    auth: &AuthServiceClient<Channel>,
    request_timeout: Duration,
    deadline: Instant,
) -> Result<authd_token::VerifyingKeys, ConnectError> {
    let mut attempt = 0;
    loop {
        match keys::fetch(auth, request_timeout).await {
            Ok(keys) => return Ok(keys),
            Err(FetchError::Unreachable(status)) => {
                let wait = feed::backoff(attempt);
                attempt += 1;
                if Instant::now() + wait >= deadline {
                    return Err(ConnectError::Timeout(Some(status)));
                }
                tracing::debug!(code = ?status.code(), retry_in = ?wait, "authd's keys unavailable");
                tokio::time::sleep(wait).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}
