//! The domain service: register, log in, log out, verify. Every surface
//! (gRPC, later REST and grpc-web) calls these and nothing else.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::credentials::Credentials;
use super::deadline::Deadline;
use super::error::AuthError;
use super::passwords::PasswordHasher;
use super::rate_limits::RateLimiter;
use super::tokens::{AccessToken, Claims, TokenService};
use crate::storage::{Revocation, Store, UserRecord};

/// An account as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
}

/// A logged-in user and their new token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub token: AccessToken,
}

/// The authentication service.
pub struct Authenticator<S> {
    store: S,
    hasher: PasswordHasher,
    tokens: Arc<TokenService>,
    limits: RateLimiter,
}

impl<S: Store> Authenticator<S> {
    pub fn new(
        store: S,
        hasher: PasswordHasher,
        tokens: Arc<TokenService>,
        limits: RateLimiter,
    ) -> Self {
        Self {
            store,
            hasher,
            tokens,
            limits,
        }
    }

    /// Creates an account and logs it in. `deadline` is when the client
    /// stops waiting, if it said so: a call whose hash would not be done by
    /// then is refused at once.
    #[tracing::instrument(skip_all, fields(username = %credentials.username.as_str(), %client))]
    pub async fn register(
        &self,
        credentials: Credentials,
        client: IpAddr,
        deadline: Option<Deadline>,
    ) -> Result<Session, AuthError> {
        self.limits.admit_registration(client)?;
        let Credentials { username, password } = credentials;
        // A taken name costs a lookup, not a hash. The unique index still
        // decides between registrations that race past this check.
        if self.store.find_user(username.canonical()).await?.is_some() {
            return Err(AuthError::UsernameTaken);
        }
        let ticket = self.hasher.admit(deadline)?;
        let password_hash = self.hasher.hash(ticket, password).await?;
        let user = User {
            id: Uuid::now_v7(),
            username: username.as_str().to_owned(),
        };
        self.store
            .insert_user(UserRecord {
                id: user.id,
                username: user.username.clone(),
                username_canonical: username.canonical().to_owned(),
                password_hash,
                created_at: Utc::now(),
            })
            .await?;
        tracing::info!(user_id = %user.id, "registered");
        self.session_for(user)
    }

    /// Exchanges a username and password for a token. `deadline` as for
    /// [`register`](Self::register).
    #[tracing::instrument(skip_all, fields(username = %credentials.username.as_str(), %client))]
    pub async fn login(
        &self,
        credentials: Credentials,
        client: IpAddr,
        deadline: Option<Deadline>,
    ) -> Result<Session, AuthError> {
        let Credentials { username, password } = credentials;
        self.limits.admit_login(client)?;
        // Before the database reads, so that a refused call costs none.
        let ticket = self.hasher.admit(deadline)?;
        let now_ms = Utc::now().timestamp_millis();
        self.limits
            .check_login_failures(&self.store, username.canonical(), now_ms)
            .await?;
        let record = self.store.find_user(username.canonical()).await?;
        let stored_hash = record.as_ref().map(|record| record.password_hash.clone());
        // Runs the same argon2 work whether or not the user exists.
        let outcome = self.hasher.verify(ticket, password, stored_hash).await?;
        match record {
            Some(record) if outcome.matches => {
                if let Some(upgraded) = outcome.rehashed {
                    // Best effort: the login stands even if the upgrade fails.
                    if let Err(error) = self.store.update_password_hash(record.id, &upgraded).await
                    {
                        tracing::warn!(error = ?error, "cannot store the upgraded password hash");
                    }
                }
                self.session_for(User {
                    id: record.id,
                    username: record.username,
                })
            }
            _ => {
                self.limits
                    .record_login_failure(&self.store, username.canonical(), now_ms)
                    .await?;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Revokes the token these claims came from, durably first: once this
    /// returns, the token is refused here and after any restart.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn logout(&self, claims: &Claims) -> Result<(), AuthError> {
        let user_id = claims.sub.parse().map_err(AuthError::internal)?;
        self.store
            .insert_revocation(&Revocation {
                jti: claims.jti.clone(),
                user_id,
                expires_at: claims.exp,
            })
            .await?;
        self.tokens.revocations().insert(&claims.jti, claims.exp);
        tracing::info!("logged out");
        Ok(())
    }

    /// Revokes every token of the caller issued up to now ("log out
    /// everywhere"), durably first.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn logout_all(&self, claims: &Claims) -> Result<(), AuthError> {
        let user_id = claims.sub.parse().map_err(AuthError::internal)?;
        // Through this second, and at least through the caller's own token.
        let revoked_through = Utc::now().timestamp().max(claims.iat);
        self.store
            .insert_session_cutoff(user_id, revoked_through)
            .await?;
        self.tokens
            .revocations()
            .cut_off(claims.sub.clone(), revoked_through);
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

    /// The rate limiter, for background upkeep.
    pub fn limits(&self) -> &RateLimiter {
        &self.limits
    }

    fn session_for(&self, user: User) -> Result<Session, AuthError> {
        let token = self.tokens.issue(user.id, &user.username)?;
        Ok(Session { user, token })
    }
}
