//! The domain service, `Authenticator`: register, log in, log out, verify.
//! The rest of a session's life (refresh, list, end, change the password,
//! delete the account) is in `sessions`, second factors in
//! `second_factor`, what background tasks ask of it in `upkeep`,
//! operators' commands in `accounts`. The surfaces call these, and
//! `TokenService` directly where they only check a token (the proxies'
//! checks, the bearer interceptor).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::authentication::Authentication;
use super::credentials::email::EmailAddress;
use super::credentials::{Credentials, Password};
use super::email_addresses::MailSettings;
use super::error::AuthError;
use super::password_reset::ResetJobs;
use super::passwords::PasswordHasher;
use super::ports::{EmailRecord, RevokedToken, Store, UserRecord};
use super::rate_limits::RateLimiter;
use super::second_factor::{LoginOutcome, SecondFactorSettings};
use super::sessions::SessionSettings;
use super::tokens::{AccessToken, TokenService};
use crate::deadline::Deadline;
use crate::hashing::HashTicket;
use crate::secrets::SecretsKeyring;
use authd_token::Claims;

/// An account as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    /// The account's address, if it has one, as the user gave it.
    pub email: Option<String>,
    /// Whether a token mailed to `email` came back.
    pub email_verified: bool,
}

impl User {
    /// The account `record` with its address (`EmailStore::email_of`).
    pub(super) fn new(record: UserRecord, email: Option<&EmailRecord>) -> Self {
        Self {
            id: record.id,
            username: record.username,
            email: email.map(|email| email.address.clone()),
            email_verified: email.is_some_and(|email| email.verified_at.is_some()),
        }
    }
}

/// A session just started or refreshed: its access token and the refresh
/// token that renews it.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub user: User,
    pub token: AccessToken,
    pub refresh: RefreshGrant,
}

/// A refresh token as handed to its client.
#[derive(Clone)]
pub struct RefreshGrant {
    /// The opaque token; secret, never logged.
    pub token: String,
    /// Seconds until the session can no longer be refreshed (its idle or its
    /// absolute end, whichever comes first).
    pub expires_in: u32,
}

impl std::fmt::Debug for RefreshGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshGrant")
            .field("token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Who is calling, as a session records it when it starts.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// What rate limits count against.
    pub address: IpAddr,
    /// The `User-Agent`, cut to [`ClientInfo::MAX_USER_AGENT_CHARS`].
    pub user_agent: String,
}

impl ClientInfo {
    /// Enough to tell browsers and devices apart in a list of sessions.
    pub const MAX_USER_AGENT_CHARS: usize = 256;

    /// A client at `address` that sent `user_agent`, if anything.
    pub fn new(address: IpAddr, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(Self::MAX_USER_AGENT_CHARS)
            .collect();
        Self {
            address,
            user_agent,
        }
    }
}

/// The authentication service.
pub struct Authenticator<S> {
    pub(super) store: S,
    pub(super) hasher: PasswordHasher,
    pub(super) tokens: Arc<TokenService>,
    pub(super) limits: RateLimiter,
    pub(super) sessions: SessionSettings,
    pub(super) factors: SecondFactorSettings,
    /// Seals and opens the secrets the database keeps (signing keys now).
    pub(super) secrets: SecretsKeyring,
    /// Mail: off unless [`with_mail`](Self::with_mail) turns it on.
    pub(super) mail: MailSettings,
    /// Where RequestPasswordReset's lookups and mails run, bounded.
    pub(super) reset_jobs: ResetJobs,
}

impl<S: Store> Authenticator<S> {
    pub fn new(
        store: S,
        hasher: PasswordHasher,
        tokens: Arc<TokenService>,
        limits: RateLimiter,
        sessions: SessionSettings,
        factors: SecondFactorSettings,
        secrets: SecretsKeyring,
    ) -> Self {
        Self {
            store,
            hasher,
            tokens,
            limits,
            sessions,
            factors,
            secrets,
            mail: MailSettings::default(),
            reset_jobs: ResetJobs::default(),
        }
    }

    /// Composes mails with `mail`, and sends them when it says so.
    #[must_use]
    pub fn with_mail(self, mail: MailSettings) -> Self {
        Self { mail, ..self }
    }

    /// Creates an account, with its address if given (unverified; its
    /// verification mailed when mail is on), and logs it in. `deadline` is
    /// when the client stops waiting, if it said so: a call whose hash
    /// would not be done by then is refused at once.
    #[tracing::instrument(skip_all, fields(username = %credentials.username.as_str(), client = %client.address))]
    pub async fn register(
        &self,
        credentials: Credentials,
        email: Option<EmailAddress>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<Session, AuthError> {
        self.limits.admit_registration(client.address)?;
        let Credentials { username, password } = credentials;
        // A taken name costs a lookup, not a hash. The unique index still
        // decides between registrations that race past this check.
        if self.store.find_user(username.canonical()).await?.is_some() {
            return Err(AuthError::UsernameTaken);
        }
        let ticket = self.hasher.admit(deadline)?;
        let user_id = Uuid::now_v7();
        // Before the hash, so that a spent mail budget costs none.
        let email = self
            .new_account_email(user_id, username.as_str(), email.as_ref())
            .await?;
        let password_hash = self.hasher.hash(ticket, password).await?;
        let record = UserRecord {
            id: user_id,
            username: username.as_str().to_owned(),
            username_canonical: username.canonical().to_owned(),
            password_hash: Some(password_hash),
            created_at: Utc::now(),
            disabled_at: None,
        };
        let user = match &email {
            None => {
                self.store.insert_user(record.clone()).await?;
                User::new(record, None)
            }
            Some((address, verification)) => {
                let verification = verification
                    .as_ref()
                    .map(|(token, entries)| (token, entries.as_slice()));
                self.store
                    .insert_user_with_email(record.clone(), address, verification)
                    .await?;
                User::new(record, Some(address))
            }
        };
        tracing::info!(user_id = %user.id, "registered");
        self.start_session(user, client, Authentication::password(Utc::now()))
            .await
    }

    /// Exchanges a username and password for a new session, or, when the
    /// account has a second factor, for a challenge that
    /// [`complete_login`](Self::complete_login) takes with a code: no token
    /// exists for an account with a second factor until one was given.
    /// `deadline` as for [`register`](Self::register).
    #[tracing::instrument(skip_all, fields(username = %credentials.username.as_str(), client = %client.address))]
    pub async fn login(
        &self,
        credentials: Credentials,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<LoginOutcome, AuthError> {
        let Credentials { username, password } = credentials;
        self.limits.admit_login(client.address)?;
        // Before the database reads, so that a refused call costs none.
        let ticket = self.hasher.admit(deadline)?;
        let read_from = self.tokens.revocations().position();
        let record = self.store.find_user(username.canonical()).await?;
        let record = self
            .confirm_password(username.canonical(), record, password, ticket)
            .await?;
        if record.disabled_at.is_some() {
            return Err(AuthError::AccountDisabled);
        }
        // Enabled in the database but maybe not yet here: the new token
        // must not be refused for a disable this read has seen undone.
        self.tokens
            .revocations()
            .take_up_enabled(record.id, read_from);
        let facts = self
            .store
            .account_facts(record.id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        if let Some(challenge) = self.second_factor_challenge(&facts).await? {
            return Ok(LoginOutcome::SecondFactorRequired(challenge));
        }
        let user = User::new(facts.user, facts.email.as_ref());
        let session = self
            .start_session(user, client, Authentication::password(Utc::now()))
            .await?;
        Ok(LoginOutcome::Session(session))
    }

    /// Checks a password against an account (or none: the same argon2 work
    /// runs whether or not the user exists), under the failure budget of
    /// its name; a wrong one counts against that budget.
    pub(super) async fn confirm_password(
        &self,
        username_canonical: &str,
        record: Option<UserRecord>,
        password: Password,
        ticket: HashTicket,
    ) -> Result<UserRecord, AuthError> {
        let now_ms = Utc::now().timestamp_millis();
        self.limits
            .check_login_failures(&self.store, username_canonical, now_ms)
            .await?;
        // An account without a password is checked against the dummy hash,
        // as an unknown one: it costs the same and answers the same.
        let stored_hash = record
            .as_ref()
            .and_then(|record| record.password_hash.clone());
        let outcome = self.hasher.verify(ticket, password, stored_hash).await?;
        match record {
            Some(record) if outcome.matches => {
                if let Some(upgraded) = outcome.rehashed {
                    // Best effort: the login stands even if the upgrade fails.
                    if let Err(error) = self
                        .store
                        .update_password_hash(record.id, &upgraded, &[])
                        .await
                    {
                        tracing::warn!(error = ?error, "cannot store the upgraded password hash");
                    }
                }
                Ok(record)
            }
            _ => {
                self.limits
                    .record_login_failure(&self.store, username_canonical, now_ms)
                    .await?;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Ends the session these claims came from, durably first: once this
    /// returns, its access and refresh tokens are refused here and after any
    /// restart. A token from before sessions existed is revoked alone.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn logout(&self, claims: &Claims) -> Result<(), AuthError> {
        let user_id = claims.sub.parse().map_err(AuthError::internal)?;
        match claims.session_id() {
            Some(session_id) => self.end_session(session_id, user_id, "logout").await?,
            None => {
                self.store
                    .insert_revocation(&RevokedToken {
                        jti: claims.jti.clone(),
                        user_id,
                        expires_at: claims.exp,
                    })
                    .await?;
                self.tokens
                    .revocations()
                    .revoke_token(&claims.jti, claims.exp);
            }
        }
        tracing::info!("logged out");
        Ok(())
    }

    /// Ends every session of the caller and revokes every token issued up
    /// to now ("log out everywhere"), durably first.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn logout_all(&self, claims: &Claims) -> Result<(), AuthError> {
        let user_id = claims.sub.parse().map_err(AuthError::internal)?;
        // Through this second, and at least through the caller's own token.
        self.end_every_session(user_id, claims.iat, "logout_all")
            .await?;
        tracing::info!("logged out everywhere");
        Ok(())
    }

    /// Tells whom a token belongs to, or why it is refused. No database
    /// round trip, unless the token names a key this instance does not hold.
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        self.tokens.verify(token).await
    }

    /// The token service, for the surfaces' bearer checks.
    pub fn tokens(&self) -> &Arc<TokenService> {
        &self.tokens
    }

    /// The store, for background upkeep.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// How long sessions last, for background upkeep.
    pub fn sessions(&self) -> &SessionSettings {
        &self.sessions
    }

    /// The rate limiter, for background upkeep.
    pub fn limits(&self) -> &RateLimiter {
        &self.limits
    }
}
