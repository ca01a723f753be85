//! How a [`Verifier`](crate::Verifier) reaches authd and what it accepts.

use std::fmt;
use std::time::Duration;

/// What [`Verifier::verify`](crate::Verifier::verify) does with a token that
/// passes every local check while the verifier is stale: its revocation
/// feed has been silent for longer than the staleness limit, so a logout may
/// have happened that it has not heard of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StalePolicy {
    /// Asks authd (`Verify`) about each such token, and refuses it with
    /// `AUTHD_UNAVAILABLE` when authd cannot answer. Tokens refused locally
    /// are refused without asking: revocations only ever add refusals.
    #[default]
    FallBackToAuthd,
    /// Refuses each such token with `VERIFIER_STALE`.
    FailClosed,
    /// Accepts each such token on the local checks alone.
    ///
    /// **Dangerous**: while authd or its feed is unreachable, tokens that
    /// were logged out or whose account was disabled keep working until
    /// they expire. Only for services where availability matters more than
    /// a logout taking effect.
    FailOpen,
}

/// Everything [`Verifier::connect`](crate::Verifier::connect) needs; start
/// from [`VerifierConfig::new`] and change what differs from the defaults.
///
/// ```
/// use std::time::Duration;
/// use authd_client::{StalePolicy, VerifierConfig};
///
/// let config = VerifierConfig::new("http://authd:50051", "feed-token")
///     .issuer("https://auth.example.com")
///     .audience("orders")
///     .staleness_limit(Duration::from_secs(10))
///     .stale_policy(StalePolicy::FailClosed);
/// ```
#[derive(Clone)]
pub struct VerifierConfig {
    pub(crate) endpoint: String,
    pub(crate) feed_credential: String,
    pub(crate) issuer: String,
    pub(crate) previous_issuers: Vec<String>,
    pub(crate) audience: String,
    pub(crate) staleness_limit: Duration,
    pub(crate) stale_policy: StalePolicy,
    pub(crate) key_refresh_spacing: Duration,
    pub(crate) key_max_age: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    #[cfg(feature = "axum")]
    pub(crate) token_cookie: Option<String>,
}

impl VerifierConfig {
    /// authd's gRPC endpoint (`http://host:port`, or `https://` for TLS
    /// through tonic's own TLS features) and the revocation feed credential
    /// (one of authd's `--revocation-feed-token` values); everything else at
    /// its default.
    pub fn new(endpoint: impl Into<String>, feed_credential: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            feed_credential: feed_credential.into(),
            issuer: "authd".into(),
            previous_issuers: Vec::new(),
            audience: "authd".into(),
            // Three of authd's default 5 s checkpoints: one lost or late
            // checkpoint is no reason to stop trusting the list.
            staleness_limit: Duration::from_secs(15),
            stale_policy: StalePolicy::default(),
            key_refresh_spacing: Duration::from_secs(5),
            key_max_age: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(2),
            #[cfg(feature = "axum")]
            token_cookie: None,
        }
    }

    /// The `iss` tokens must carry: authd's `--issuer` (default: its
    /// `--public-url`, else `authd`).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Also accepts tokens of this issuer: authd's `--previous-issuer`,
    /// after its issuer changed (say, to its `--public-url`), for as long as
    /// tokens issued before live. May be given more than once.
    #[must_use]
    pub fn previous_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.previous_issuers.push(issuer.into());
        self
    }

    /// The `aud` tokens must carry: authd's `--audience` (default `authd`).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// How long the revocation feed may stay silent before the verifier is
    /// stale and [`stale_policy`](Self::stale_policy) applies (default
    /// 15 s, three of authd's default checkpoint intervals). Keep it above
    /// authd's `--revocation-checkpoint-interval`.
    #[must_use]
    pub fn staleness_limit(mut self, limit: Duration) -> Self {
        self.staleness_limit = limit;
        self
    }

    /// What to do while stale (default [`StalePolicy::FallBackToAuthd`]).
    #[must_use]
    pub fn stale_policy(mut self, policy: StalePolicy) -> Self {
        self.stale_policy = policy;
        self
    }

    /// The least time between two fetches of the keys prompted by tokens
    /// naming an unknown key (default 5 s), so a flood of forged key ids
    /// costs authd at most one `GetJwks` per spacing.
    #[must_use]
    pub fn key_refresh_spacing(mut self, spacing: Duration) -> Self {
        self.key_refresh_spacing = spacing;
        self
    }

    /// How often the keys are fetched again even when no token asks for it
    /// (default 5 minutes), so a key authd withdrew stops being trusted.
    #[must_use]
    pub fn key_max_age(mut self, max_age: Duration) -> Self {
        self.key_max_age = max_age;
        self
    }

    /// How long [`Verifier::connect`](crate::Verifier::connect) may take to
    /// fetch the keys and the first revocation snapshot (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one `GetJwks` or fallback `Verify` call to authd may take
    /// (default 2 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// A cookie HTTP front ends read the token from when a request has no
    /// `Authorization` header (default: none, header only). Cookies come
    /// with cross-site requests: protect state-changing routes against CSRF
    /// before turning this on.
    #[cfg(feature = "axum")]
    #[must_use]
    pub fn token_cookie(mut self, name: impl Into<String>) -> Self {
        self.token_cookie = Some(name.into());
        self
    }
}

/// Leaves the feed credential out, so a logged configuration leaks nothing.
impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("endpoint", &self.endpoint)
            .field("feed_credential", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("previous_issuers", &self.previous_issuers)
            .field("audience", &self.audience)
            .field("staleness_limit", &self.staleness_limit)
            .field("stale_policy", &self.stale_policy)
            .field("key_refresh_spacing", &self.key_refresh_spacing)
            .field("key_max_age", &self.key_max_age)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}
