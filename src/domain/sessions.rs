//! The life of a session after it starts: refresh with rotation and reuse
//! detection, listing and ending sessions, changing the password and
//! deleting the account. Every way a session ends goes through
//! [`Authenticator::end_session`] or [`Authenticator::end_every_session`].

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::authentication::Authentication;
use super::credentials::Password;
use super::error::{AuthError, TokenRejection};
use super::opaque_tokens::REFRESH_TOKEN;
use super::ports::{OutboxEntry, RefreshTokenRecord, SessionRecord, Spend, Store, UserRecord};
use super::second_factor::SecondFactorProof;
use super::security_notices::SecurityEvent;
use super::service::{Authenticator, ClientInfo, RefreshGrant, Session, User};
use super::step_up::StepUp;
use crate::deadline::Deadline;
use crate::hashing::HashTicket;
use authd_token::Claims;

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// A session not refreshed for this long ends.
    pub idle_timeout: Duration,
    /// No session lasts longer, refreshed or not.
    pub lifetime: Duration,
    /// How long after its rotation a refresh token is still accepted once
    /// (two tabs, or a retried request, racing each other).
    pub refresh_grace: Duration,
}

/// One of a user's live sessions, as `ListSessions` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// When it ends unless refreshed (or at all, if that is sooner).
    pub expires_at: DateTime<Utc>,
    /// Whether the caller's own token belongs to it.
    pub current: bool,
    pub client_address: String,
    pub user_agent: String,
    /// How its user last authenticated: the `amr` of its tokens.
    pub amr: Vec<String>,
    /// 1 for one factor, 2 for two: the level of its tokens' `acr`.
    pub assurance_level: u32,
}

/// A configured span as chrono's, saturating (no flag reaches the bound).
pub(super) fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

impl SessionSettings {
    /// When a session can no longer be refreshed: its idle end or its
    /// absolute end, whichever comes first.
    pub(super) fn refreshable_until(&self, session: &SessionRecord) -> DateTime<Utc> {
        session
            .expires_at
            .min(session.last_used_at + delta(self.idle_timeout))
    }
}

impl<S: Store> Authenticator<S> {
    /// Starts a session for a user who just proved who they are.
    pub(super) async fn start_session(
        &self,
        user: User,
        client: &ClientInfo,
        authentication: Authentication,
    ) -> Result<Session, AuthError> {
        self.start_session_spending(user, client, authentication, &[], &[])
            .await?
            .map_err(|_| AuthError::internal("a session that spends nothing was refused"))
    }

    /// Starts a session in one transaction with what its sign-in spends:
    /// the session, or, with nothing written, the index of the first spend
    /// that did not take (see [`insert_session_spending`](super::ports::SessionStore::insert_session_spending)).
    pub(super) async fn start_session_spending(
        &self,
        user: User,
        client: &ClientInfo,
        authentication: Authentication,
        spent: &[Spend<'_>],
        notices: &[OutboxEntry],
    ) -> Result<Result<Session, usize>, AuthError> {
        let now = Utc::now();
        let refresh = REFRESH_TOKEN.generate()?;
        let session = SessionRecord {
            id: Uuid::now_v7(),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: now + delta(self.sessions.lifetime),
            ended_at: None,
            refresh_generation: 0,
            client_address: client.address.to_string(),
            user_agent: client.user_agent.clone(),
            authentication,
        };
        let first_token = RefreshTokenRecord {
            token_hash: refresh.hash,
            session_id: session.id,
            generation: 0,
            issued_at: now,
            retired_at: None,
        };
        if spent.is_empty() && notices.is_empty() {
            self.store.insert_session(&session, &first_token).await?;
        } else if let Some(refused) = self
            .store
            .insert_session_spending(&session, &first_token, spent, notices)
            .await?
        {
            return Ok(Err(refused));
        }
        crate::metrics::session_started();
        tracing::info!(user_id = %user.id, session_id = %session.id, "session started");
        self.grant(user, &session, refresh.token, now).map(Ok)
    }

    /// A new access token for the session, never outliving it, with the
    /// refresh token that goes with it.
    fn grant(
        &self,
        user: User,
        session: &SessionRecord,
        refresh_token: String,
        now: DateTime<Utc>,
    ) -> Result<Session, AuthError> {
        let refreshable_until = self.sessions.refreshable_until(session);
        let token = self.tokens.issue(
            user.id,
            &user.username,
            session.id,
            &session.authentication,
            refreshable_until.timestamp(),
        )?;
        let expires_in = (refreshable_until - now).num_seconds().max(0);
        Ok(Session {
            id: session.id,
            user,
            token,
            refresh: RefreshGrant {
                token: refresh_token,
                expires_in: u32::try_from(expires_in).unwrap_or(u32::MAX),
            },
        })
    }

    /// Exchanges a refresh token for a new access token and a new refresh
    /// token (rotation). The presented token is retired; presenting it
    /// again ends the whole session, unless it is the session's previous
    /// token and comes within the grace window of its rotation, when it is
    /// exchanged once more (so racing tabs each end up with a working
    /// token).
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, presented: &str) -> Result<Session, AuthError> {
        let token_hash = REFRESH_TOKEN
            .parse(presented)
            .ok_or(AuthError::RefreshTokenInvalid)?;
        let (token, session) = self
            .store
            .find_refresh_token(&token_hash)
            .await?
            .ok_or(AuthError::RefreshTokenInvalid)?;
        let now = Utc::now();
        let read_from = self.tokens.revocations().position();
        let user = self
            .store
            .find_user_by_id(session.user_id)
            .await?
            .ok_or(AuthError::SessionEnded)?;
        // Before the session's state: disabling ended it too, and the
        // client should learn why.
        if user.disabled_at.is_some() {
            return Err(AuthError::AccountDisabled);
        }
        // As Login does: a session started on an instance that knew of the
        // enable may be refreshed on one that does not yet.
        self.tokens
            .revocations()
            .take_up_enabled(user.id, read_from);
        if session.ended_at.is_some() {
            return Err(AuthError::SessionEnded);
        }
        if self.sessions.refreshable_until(&session) <= now {
            self.end_session(session.id, session.user_id, "expired")
                .await?;
            return Err(AuthError::SessionEnded);
        }
        let retired_here =
            token.retired_at.is_none() && self.store.retire_refresh_token(&token_hash, now).await?;
        if !retired_here {
            // Retired before, or a moment ago by a racing call.
            let retired_at = token.retired_at.unwrap_or(now);
            let previous = token.generation + 1 >= session.refresh_generation;
            if !(previous && now - retired_at <= delta(self.sessions.refresh_grace)) {
                return Err(self.reused(&session).await);
            }
        }
        // Before the session moves on: a failed read leaves it as it was.
        let user = self.user_of(user).await?;
        let next = REFRESH_TOKEN.generate()?;
        let successor = RefreshTokenRecord {
            token_hash: next.hash,
            session_id: session.id,
            generation: token.generation + 1,
            issued_at: now,
            retired_at: None,
        };
        if !self.store.extend_session(&successor).await? {
            // Ended meanwhile, or a later token was already exchanged.
            return match self.store.find_session(session.id).await? {
                Some(current) if current.ended_at.is_none() => Err(self.reused(&session).await),
                _ => Err(AuthError::SessionEnded),
            };
        }
        let extended = SessionRecord {
            last_used_at: now,
            refresh_generation: successor.generation,
            ..session
        };
        self.grant(user, &extended, next.token, now)
    }

    /// A retired refresh token came back: the sign of a stolen one. Ends
    /// its session; the error to answer with.
    async fn reused(&self, session: &SessionRecord) -> AuthError {
        tracing::warn!(
            session_id = %session.id,
            user_id = %session.user_id,
            "a retired refresh token was presented again; ending its session"
        );
        crate::metrics::refresh_token_reused();
        match self
            .end_session(session.id, session.user_id, "refresh_token_reused")
            .await
        {
            Ok(()) => AuthError::RefreshTokenReused,
            Err(error) => error,
        }
    }

    /// The caller's live sessions, newest first.
    pub async fn list_sessions(&self, claims: &Claims) -> Result<Vec<SessionSummary>, AuthError> {
        let user_id = caller(claims)?;
        let now = Utc::now();
        let current = claims.session_id();
        let sessions = self.store.live_sessions_of(user_id, now).await?;
        Ok(sessions
            .into_iter()
            .filter_map(|session| {
                let expires_at = self.sessions.refreshable_until(&session);
                (expires_at > now).then(|| SessionSummary {
                    expires_at,
                    current: current == Some(session.id),
                    amr: session.authentication.amr(),
                    assurance_level: session.authentication.assurance_level(),
                    id: session.id,
                    created_at: session.created_at,
                    last_used_at: session.last_used_at,
                    client_address: session.client_address,
                    user_agent: session.user_agent,
                })
            })
            .collect())
    }

    /// Ends one of the caller's sessions. Another user's session and an
    /// unknown one are the same `SessionNotFound`.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn revoke_session(&self, claims: &Claims, session_id: &str) -> Result<(), AuthError> {
        let user_id = caller(claims)?;
        let session_id: Uuid = session_id.parse().map_err(|_| AuthError::SessionNotFound)?;
        let now = Utc::now();
        // Unlike `end_session`, nothing is recorded unless the database
        // ended a session of this caller: another user's id must not end
        // anything, even in this instance's memory.
        if !self
            .store
            .end_session(session_id, user_id, "revoked", now)
            .await?
        {
            return Err(AuthError::SessionNotFound);
        }
        self.tokens
            .revocations()
            .end_session(session_id, now.timestamp());
        crate::metrics::sessions_ended("revoked", 1);
        tracing::info!(%session_id, "session revoked");
        Ok(())
    }

    /// Replaces the caller's password after checking the current one (with
    /// Login's argon2 work, rate limits and failure budget) and, for an
    /// account with a second factor, the code in the request or a recent
    /// authentication with it; ends every session of the account, the
    /// caller's included, and starts a new one.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub, client = %client.address))]
    pub async fn change_password(
        &self,
        claims: &Claims,
        current: Password,
        new: Password,
        second: Option<SecondFactorProof>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<Session, AuthError> {
        self.limits.admit_login(client.address)?;
        // Both hashes admitted at once: none is refused half-way.
        let check = self.hasher.admit(deadline)?;
        let rehash = self.hasher.admit(deadline)?;
        let record = self.confirm_own_password(claims, current, check).await?;
        self.require_step_up(
            claims,
            record.id,
            StepUp::with_password(second),
            client,
            deadline,
        )
        .await?;
        let password_hash = self.hasher.hash(rehash, new).await?;
        let notices = self
            .security_notice_for(record.id, SecurityEvent::PasswordChanged, client)
            .await?;
        self.store
            .update_password_hash(record.id, &password_hash, notices.as_slice())
            .await?;
        self.end_every_session(record.id, claims.iat, "password_changed")
            .await?;
        tracing::info!("password changed");
        let user = self.user_of(record).await?;
        self.start_session(user, client, Authentication::password(Utc::now()))
            .await
    }

    /// Deletes the caller's account after checking its password (and second
    /// factor) as [`change_password`](Self::change_password) does. Every token of it
    /// is refused from then on; its name is free again.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub, client = %client.address))]
    pub async fn delete_account(
        &self,
        claims: &Claims,
        password: Password,
        second: Option<SecondFactorProof>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<(), AuthError> {
        self.limits.admit_login(client.address)?;
        let check = self.hasher.admit(deadline)?;
        let record = self.confirm_own_password(claims, password, check).await?;
        self.require_step_up(
            claims,
            record.id,
            StepUp::with_password(second),
            client,
            deadline,
        )
        .await?;
        let notices = self
            .security_notice_for(record.id, SecurityEvent::AccountDeleted, client)
            .await?;
        self.end_every_session(record.id, claims.iat, "account_deleted")
            .await?;
        self.store
            .delete_user(record.id, notices.as_slice())
            .await?;
        tracing::info!("account deleted");
        Ok(())
    }

    /// The caller's account, once `password` is confirmed to be its own.
    pub(super) async fn confirm_own_password(
        &self,
        claims: &Claims,
        password: Password,
        ticket: HashTicket,
    ) -> Result<UserRecord, AuthError> {
        let user_id = caller(claims)?;
        let record = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidToken(TokenRejection::Revoked))?;
        // The account's owner may learn it has no password; nobody else
        // reaches this.
        if record.password_hash.is_none() {
            return Err(AuthError::PasswordNotSet);
        }
        let username_canonical = record.username_canonical.clone();
        self.confirm_password(&username_canonical, Some(record), password, ticket)
            .await
    }

    /// Ends one session, durably first, then here; other instances hear of
    /// it from the store's announcement or catch-up.
    pub(super) async fn end_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        reason: &'static str,
    ) -> Result<(), AuthError> {
        let now = Utc::now();
        if self
            .store
            .end_session(session_id, user_id, reason, now)
            .await?
        {
            crate::metrics::sessions_ended(reason, 1);
        }
        self.tokens
            .revocations()
            .end_session(session_id, now.timestamp());
        Ok(())
    }

    /// Ends every session of a user and revokes every token issued through
    /// this second (and at least through `issued_at`), durably first.
    pub(super) async fn end_every_session(
        &self,
        user_id: Uuid,
        issued_at: i64,
        reason: &'static str,
    ) -> Result<(), AuthError> {
        let revoked_through =
            end_every_session_durably(&self.store, user_id, issued_at, reason).await?;
        self.tokens.revocations().cut_off(user_id, revoked_through);
        Ok(())
    }
}

/// Ends every session of a user in the database and revokes every token
/// issued through this second (and at least through `issued_at`); the
/// cutoff is announced to the running instances. Returns the cutoff.
pub(super) async fn end_every_session_durably<S: Store>(
    store: &S,
    user_id: Uuid,
    issued_at: i64,
    reason: &'static str,
) -> Result<i64, AuthError> {
    let now = Utc::now();
    let revoked_through = now.timestamp().max(issued_at);
    store
        .insert_session_cutoff(user_id, revoked_through)
        .await?;
    let ended = store.end_sessions_of(user_id, reason, now).await?;
    crate::metrics::sessions_ended(reason, ended);
    Ok(revoked_through)
}

/// The caller's user id.
pub(super) fn caller(claims: &Claims) -> Result<Uuid, AuthError> {
    claims.sub.parse().map_err(AuthError::internal)
}
