//! The connection pool every port's adapter shares: connecting, migrating,
//! announcing revocations, and what a database error means to a client.

use std::time::Duration;

use anyhow::Context as _;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait as _, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    Statement, sqlx,
};

use super::notices;
use crate::domain::{AuthError, RevocationEvent};

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
    pub(super) connection: DatabaseConnection,
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
pub(super) const REVOCATION_CHANNEL: &str = "authd_revocations";

impl Database {
    /// Announces a revocation to the other instances (PostgreSQL only). Best
    /// effort: the revocation is stored already, and a missed notice is
    /// found by the others' periodic catch-up.
    pub(super) async fn notify(&self, event: &RevocationEvent) {
        if self.connection.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let notice = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [REVOCATION_CHANNEL.into(), notices::encode(event).into()],
        );
        if let Err(error) = self.connection.execute_raw(notice).await {
            tracing::warn!(error = %error, "cannot announce a revocation; the catch-up will");
        }
    }
}

/// Maps a database error to what the client should see: connection trouble
/// is UNAVAILABLE (retry later), anything else INTERNAL.
pub(super) fn classify(error: DbErr) -> AuthError {
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
