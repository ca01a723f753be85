//! The sea-orm adapter behind [`Store`], for SQLite and PostgreSQL.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait as _, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, RuntimeErr, SqlErr,
    Statement, TransactionTrait as _, sqlx,
};
use uuid::Uuid;

use super::entities::{
    rate_limit, refresh_token, revoked_token, session, session_cutoff, signing_key, user,
};
use crate::domain::{
    AuthError, RefreshTokenRecord, Revocation, RevocationEvent, SessionRecord, SigningKeyRecord,
    Store, UserRecord,
};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Bound on opening a connection and on waiting for a pooled one, so a
    /// dead database gives UNAVAILABLE quickly instead of a hang.
    pub connect_timeout: Duration,
}

/// A pool of connections to SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Database {
    connection: DatabaseConnection,
}

impl Database {
    /// Opens the pool and checks that the database answers.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.max_connections)
            .connect_timeout(settings.connect_timeout)
            .acquire_timeout(settings.connect_timeout)
            .sqlx_logging(false)
            // WAL lets readers (logins) proceed while a writer holds the lock.
            .map_sqlx_sqlite_opts(|options| {
                options.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            });
        let connection = sea_orm::Database::connect(options)
            .await
            .context("cannot connect to the database")?;
        Ok(Self { connection })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.connection, None)
            .await
            .context("cannot apply database migrations")
    }
}

/// The PostgreSQL channel revocations are announced on.
const REVOCATION_CHANNEL: &str = "authd_revocations";

impl Database {
    /// Announces a revocation to the other instances (PostgreSQL only). Best
    /// effort: the revocation is stored already, and a missed notice is
    /// found by the others' periodic catch-up.
    async fn notify(&self, event: &RevocationEvent) {
        if self.connection.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let notice = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [REVOCATION_CHANNEL.into(), event.encode().into()],
        );
        if let Err(error) = self.connection.execute_raw(notice).await {
            tracing::warn!(error = %error, "cannot announce a revocation; the catch-up will");
        }
    }
}

impl Store for Database {
    async fn insert_user(&self, record: UserRecord) -> Result<(), AuthError> {
        let row = user::ActiveModel {
            id: Set(record.id),
            username: Set(record.username),
            username_canonical: Set(record.username_canonical),
            password_hash: Set(record.password_hash),
            created_at: Set(record.created_at),
            disabled_at: Set(record.disabled_at),
        };
        match user::Entity::insert(row)
            .exec_without_returning(&self.connection)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(AuthError::UsernameTaken)
            }
            Err(error) => Err(classify(error)),
        }
    }

    async fn find_user(&self, username_canonical: &str) -> Result<Option<UserRecord>, AuthError> {
        let found = user::Entity::find()
            .filter(user::Column::UsernameCanonical.eq(username_canonical))
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(found.map(user_record))
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, AuthError> {
        let found = user::Entity::find_by_id(user_id)
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(found.map(user_record))
    }

    async fn list_users(
        &self,
        containing: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<UserRecord>, AuthError> {
        let mut query = user::Entity::find();
        if let Some(containing) = containing {
            query = query.filter(user::Column::UsernameCanonical.contains(containing));
        }
        if let Some(after) = after {
            query = query.filter(user::Column::UsernameCanonical.gt(after));
        }
        let rows = query
            .order_by_asc(user::Column::UsernameCanonical)
            .limit(limit)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(user_record).collect())
    }

    async fn delete_user(&self, user_id: Uuid) -> Result<bool, AuthError> {
        let result = user::Entity::delete_by_id(user_id)
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected > 0)
    }

    async fn set_user_disabled(
        &self,
        user_id: Uuid,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), AuthError> {
        user::Entity::update_many()
            .col_expr(user::Column::DisabledAt, Expr::value(disabled_at))
            .filter(user::Column::Id.eq(user_id))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        self.notify(&RevocationEvent::AccountDisabled {
            user_id,
            disabled: disabled_at.is_some(),
        })
        .await;
        Ok(())
    }

    async fn disabled_users(&self) -> Result<Vec<Uuid>, AuthError> {
        user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::DisabledAt.is_not_null())
            .into_tuple()
            .all(&self.connection)
            .await
            .map_err(classify)
    }

    async fn insert_session(
        &self,
        record: &SessionRecord,
        first_token: &RefreshTokenRecord,
    ) -> Result<(), AuthError> {
        let transaction = self.connection.begin().await.map_err(classify)?;
        session::Entity::insert(session::ActiveModel {
            id: Set(record.id),
            user_id: Set(record.user_id),
            created_at: Set(record.created_at),
            last_used_at: Set(record.last_used_at),
            expires_at: Set(record.expires_at),
            ended_at: Set(record.ended_at),
            end_reason: Set(None),
            refresh_generation: Set(record.refresh_generation),
            client_address: Set(record.client_address.clone()),
            user_agent: Set(record.user_agent.clone()),
        })
        .exec_without_returning(&transaction)
        .await
        .map_err(classify)?;
        refresh_token::Entity::insert(refresh_token_row(first_token))
            .exec_without_returning(&transaction)
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)
    }

    async fn find_session(&self, session_id: Uuid) -> Result<Option<SessionRecord>, AuthError> {
        let found = session::Entity::find_by_id(session_id)
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(found.map(session_record))
    }

    async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(RefreshTokenRecord, SessionRecord)>, AuthError> {
        let Some(token) = refresh_token::Entity::find_by_id(token_hash.to_owned())
            .one(&self.connection)
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
        let session = self.find_session(token.session_id).await?;
        Ok(session.map(|session| {
            let token = RefreshTokenRecord {
                token_hash: token.token_hash,
                session_id: token.session_id,
                generation: token.generation,
                issued_at: token.issued_at,
                retired_at: token.retired_at,
            };
            (token, session)
        }))
    }

    async fn retire_refresh_token(
        &self,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let result = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RetiredAt, Expr::value(at))
            .filter(refresh_token::Column::TokenHash.eq(token_hash))
            .filter(refresh_token::Column::RetiredAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected == 1)
    }

    async fn extend_session(&self, token: &RefreshTokenRecord) -> Result<bool, AuthError> {
        let transaction = self.connection.begin().await.map_err(classify)?;
        let extended = session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(token.issued_at))
            .col_expr(
                session::Column::RefreshGeneration,
                Expr::value(token.generation),
            )
            .filter(session::Column::Id.eq(token.session_id))
            .filter(session::Column::EndedAt.is_null())
            .filter(session::Column::RefreshGeneration.lte(token.generation))
            .exec(&transaction)
            .await
            .map_err(classify)?;
        if extended.rows_affected != 1 {
            return Ok(false);
        }
        refresh_token::Entity::insert(refresh_token_row(token))
            .exec_without_returning(&transaction)
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn end_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let result = session::Entity::update_many()
            .col_expr(session::Column::EndedAt, Expr::value(at))
            .col_expr(session::Column::EndReason, Expr::value(reason))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::EndedAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        let ended = result.rows_affected == 1;
        if ended {
            self.notify(&RevocationEvent::Session {
                session_id,
                user_id,
                ended_at: at.timestamp(),
            })
            .await;
        }
        Ok(ended)
    }

    async fn end_sessions_of(
        &self,
        user_id: Uuid,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let result = session::Entity::update_many()
            .col_expr(session::Column::EndedAt, Expr::value(at))
            .col_expr(session::Column::EndReason, Expr::value(reason))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::EndedAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    async fn live_sessions_of(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, AuthError> {
        let rows = session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::EndedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(session_record).collect())
    }

    async fn sessions_ended_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, i64)>, AuthError> {
        let rows: Vec<(Uuid, DateTime<Utc>)> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .column(session::Column::EndedAt)
            .filter(session::Column::EndedAt.gte(since))
            .into_tuple()
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(id, ended_at)| (id, ended_at.timestamp()))
            .collect())
    }

    async fn delete_sessions_finished_before(
        &self,
        ended_before: DateTime<Utc>,
        used_before: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let transaction = self.connection.begin().await.map_err(classify)?;
        let deleted = session::Entity::delete_many()
            .filter(
                session::Column::EndedAt
                    .lt(ended_before)
                    .or(session::Column::ExpiresAt.lt(ended_before))
                    .or(session::Column::LastUsedAt.lt(used_before)),
            )
            .exec(&transaction)
            .await
            .map_err(classify)?;
        refresh_token::Entity::delete_many()
            .filter(
                refresh_token::Column::SessionId.not_in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(session::Column::Id)
                        .from(session::Entity)
                        .to_owned(),
                ),
            )
            .exec(&transaction)
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)?;
        Ok(deleted.rows_affected)
    }

    async fn insert_revocation(&self, revocation: &Revocation) -> Result<(), AuthError> {
        let row = revoked_token::ActiveModel {
            jti: Set(revocation.jti.clone()),
            user_id: Set(revocation.user_id),
            expires_at: Set(revocation.expires_at),
            revoked_at: Set(Utc::now()),
        };
        revoked_token::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        self.notify(&RevocationEvent::Token(revocation.clone()))
            .await;
        Ok(())
    }

    async fn revocations_since(&self, since: DateTime<Utc>) -> Result<Vec<Revocation>, AuthError> {
        let rows = revoked_token::Entity::find()
            .filter(revoked_token::Column::RevokedAt.gte(since))
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(revocation).collect())
    }

    async fn revocations_in_force(
        &self,
        now: i64,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Revocation>, AuthError> {
        let mut query =
            revoked_token::Entity::find().filter(revoked_token::Column::ExpiresAt.gte(now));
        if let Some(after) = after {
            query = query.filter(revoked_token::Column::Jti.gt(after));
        }
        let rows = query
            .order_by_asc(revoked_token::Column::Jti)
            .limit(limit)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(revocation).collect())
    }

    async fn delete_revocations_expired_before(&self, before: i64) -> Result<u64, AuthError> {
        let result = revoked_token::Entity::delete_many()
            .filter(revoked_token::Column::ExpiresAt.lt(before))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, AuthError> {
        let rows = signing_key::Entity::find()
            .order_by_desc(signing_key::Column::ActivatesAt)
            .order_by_desc(signing_key::Column::Kid)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|row| SigningKeyRecord {
                kid: row.kid,
                algorithm: row.algorithm,
                private_key: row.private_key,
                public_key: row.public_key,
                created_at: row.created_at,
                activates_at: row.activates_at,
            })
            .collect())
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, AuthError> {
        let result = signing_key::Entity::delete_many()
            .filter(signing_key::Column::Kid.is_in(kids.iter().cloned()))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    async fn update_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
    ) -> Result<(), AuthError> {
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .filter(user::Column::Id.eq(user_id))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn insert_session_cutoff(
        &self,
        user_id: Uuid,
        revoked_through: i64,
    ) -> Result<(), AuthError> {
        let current = Expr::col((
            session_cutoff::Entity,
            session_cutoff::Column::RevokedThrough,
        ));
        let later =
            Expr::case(current.clone().gt(revoked_through), current).finally(revoked_through);
        let row = session_cutoff::ActiveModel {
            user_id: Set(user_id),
            revoked_through: Set(revoked_through),
        };
        session_cutoff::Entity::insert(row)
            .on_conflict(
                OnConflict::column(session_cutoff::Column::UserId)
                    .value(session_cutoff::Column::RevokedThrough, later)
                    .to_owned(),
            )
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        self.notify(&RevocationEvent::AllOf {
            user_id,
            revoked_through,
        })
        .await;
        Ok(())
    }

    async fn session_cutoffs(&self) -> Result<Vec<(Uuid, i64)>, AuthError> {
        let rows = session_cutoff::Entity::find()
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.user_id, row.revoked_through))
            .collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), AuthError> {
        let row = signing_key::ActiveModel {
            kid: Set(key.kid.clone()),
            algorithm: Set(key.algorithm.clone()),
            private_key: Set(key.private_key.clone()),
            public_key: Set(key.public_key.clone()),
            created_at: Set(key.created_at),
            activates_at: Set(key.activates_at),
        };
        signing_key::Entity::insert(row)
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn rate_limit_tat(&self, key: &str) -> Result<Option<i64>, AuthError> {
        let row = rate_limit::Entity::find_by_id(key.to_owned())
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(row.map(|row| row.tat))
    }

    async fn advance_rate_limit_tat(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<(), AuthError> {
        let current = Expr::col((rate_limit::Entity, rate_limit::Column::Tat));
        // max(tat, now) + interval, spelled with CASE: SQLite has no GREATEST.
        let advanced = Expr::case(current.clone().gt(now_ms), current)
            .finally(now_ms)
            .add(interval_ms);
        let row = rate_limit::ActiveModel {
            key: Set(key.to_owned()),
            tat: Set(now_ms + interval_ms),
        };
        rate_limit::Entity::insert(row)
            .on_conflict(
                OnConflict::column(rate_limit::Column::Key)
                    .value(rate_limit::Column::Tat, advanced)
                    .to_owned(),
            )
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_rate_limits_before(&self, now_ms: i64) -> Result<u64, AuthError> {
        let result = rate_limit::Entity::delete_many()
            .filter(rate_limit::Column::Tat.lt(now_ms))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    async fn listen_for_revocations(
        &self,
        mut on_event: impl FnMut(RevocationEvent) + Send,
    ) -> Result<(), AuthError> {
        if self.connection.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let pool = self.connection.get_postgres_connection_pool();
        let mut listener = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(|error| AuthError::Unavailable(error.into()))?;
        listener
            .listen(REVOCATION_CHANNEL)
            .await
            .map_err(|error| AuthError::Unavailable(error.into()))?;
        loop {
            // Reconnects by itself; what is missed meanwhile, the periodic
            // catch-up finds.
            let notification = listener
                .recv()
                .await
                .map_err(|error| AuthError::Unavailable(error.into()))?;
            match RevocationEvent::decode(notification.payload()) {
                Some(event) => on_event(event),
                None => tracing::warn!(
                    payload = notification.payload(),
                    "unreadable revocation notice"
                ),
            }
        }
    }

    fn connection_counts(&self) -> (usize, usize) {
        let (size, idle) = match self.connection.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.connection.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Sqlite => {
                let pool = self.connection.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        };
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        (size.saturating_sub(idle), idle)
    }

    async fn ping(&self) -> Result<(), AuthError> {
        self.connection.ping().await.map_err(classify)
    }
}

fn user_record(row: user::Model) -> UserRecord {
    UserRecord {
        id: row.id,
        username: row.username,
        username_canonical: row.username_canonical,
        password_hash: row.password_hash,
        created_at: row.created_at,
        disabled_at: row.disabled_at,
    }
}

fn session_record(row: session::Model) -> SessionRecord {
    SessionRecord {
        id: row.id,
        user_id: row.user_id,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.expires_at,
        ended_at: row.ended_at,
        refresh_generation: row.refresh_generation,
        client_address: row.client_address,
        user_agent: row.user_agent,
    }
}

fn refresh_token_row(token: &RefreshTokenRecord) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        token_hash: Set(token.token_hash.clone()),
        session_id: Set(token.session_id),
        generation: Set(token.generation),
        issued_at: Set(token.issued_at),
        retired_at: Set(token.retired_at),
    }
}

fn revocation(row: revoked_token::Model) -> Revocation {
    Revocation {
        jti: row.jti,
        user_id: row.user_id,
        expires_at: row.expires_at,
    }
}

/// Maps a database error to what the client should see: connection trouble
/// is UNAVAILABLE (retry later), anything else INTERNAL.
fn classify(error: DbErr) -> AuthError {
    let unreachable = match &error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(cause)) | DbErr::Query(RuntimeErr::SqlxError(cause)) => {
            matches!(
                cause.as_ref(),
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        }
        _ => false,
    };
    if unreachable {
        AuthError::Unavailable(error.into())
    } else {
        AuthError::internal(error)
    }
}
