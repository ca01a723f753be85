//! The connection pool every port's adapter shares: connecting, migrating,
//! announcing revocations, and what a database error means to a client.

use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    QueryResult, RuntimeErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait as _, sqlx,
};
use sqlx::sqlite::SqliteConnectOptions;

use super::{notices, sqlite_busy, sqlite_transaction};
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
    /// Opens the pool and checks that the database answers. A SQLite file
    /// is created when the URL says `mode=rwc`: for serving and `authd
    /// migrate`, which migrate it next.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        Self::open(settings, |options| options).await
    }

    /// Opens a database that exists and that authd has migrated, for the
    /// operator's commands: never creates a SQLite file, a table or a row
    /// of the migrations' own, whatever the URL's `mode`. Otherwise fails
    /// saying what is there (the file's absolute path when it is missing)
    /// and what to run.
    pub async fn open_existing(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        if let Some(path) = sqlite_file(&settings.url)? {
            let path = std::path::absolute(&path).unwrap_or(path);
            if !path.exists() {
                anyhow::bail!(
                    "no database at {}: point --database-url (or DATABASE_URL) at the \
                     server's, or create one with `authd migrate`",
                    path.display()
                );
            }
        }
        let database = Self::open(settings, |options| options.create_if_missing(false)).await?;
        database.check_schema().await?;
        Ok(database)
    }

    async fn open(
        settings: &DatabaseSettings,
        sqlite: fn(SqliteConnectOptions) -> SqliteConnectOptions,
    ) -> anyhow::Result<Self> {
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.max_connections)
            .connect_timeout(settings.connect_timeout)
            .acquire_timeout(settings.connect_timeout)
            // A ping on every checkout catches a PostgreSQL connection the
            // server dropped (a restart, a failover) before a query fails on
            // it. A SQLite connection is a file this process holds open, and
            // the ping would only double each query's hops to its worker
            // thread.
            .test_before_acquire(!settings.url.starts_with("sqlite:"))
            .sqlx_logging(false)
            // WAL lets readers (logins) proceed while a writer holds the lock.
            .map_sqlx_sqlite_opts(move |options| {
                sqlite(options.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal))
            })
            .map_sqlx_sqlite_pool_opts(|pool| {
                pool.after_connect(|connection, _| {
                    Box::pin(async move {
                        sqlite_busy::install(connection).await?;
                        sqlite_transaction::install(connection).await
                    })
                })
            });
        match sea_orm::Database::connect(options).await {
            Ok(connection) => Ok(Self { connection }),
            Err(error) => Err(match missing_postgres_database(&error) {
                Some(name) => anyhow::anyhow!(
                    "database {name:?} does not exist: create it (`CREATE DATABASE {name}` \
                     in psql, or `createdb {name}`), then start authd or run `authd migrate`"
                ),
                // sqlx's connection errors repeat their cause in their own
                // text: the cause alone, once.
                None => anyhow::anyhow!("cannot connect to the database: {}", root_cause(&error)),
            }),
        }
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.connection, None)
            .await
            .context("cannot apply database migrations")
    }

    /// Whether every migration this authd knows has been applied, read
    /// without writing (the migrations' table is not created if missing).
    async fn check_schema(&self) -> anyhow::Result<()> {
        let pending = Migrator::get_pending_migrations_read_only(&self.connection)
            .await
            .context("cannot read which migrations the database has")?;
        let known = Migrator::migrations().len();
        match pending.len() {
            0 => Ok(()),
            all if all == known => anyhow::bail!(
                "authd has never set this database up: `authd migrate` (or starting \
                 the server) does"
            ),
            behind => anyhow::bail!(
                "the database lacks {behind} of this authd's {known} migrations: run \
                 `authd migrate` (or start the server) first"
            ),
        }
    }
}

/// The file of a SQLite URL, or none for another database or an
/// in-memory one.
pub fn sqlite_file(url: &str) -> anyhow::Result<Option<PathBuf>> {
    if !url.starts_with("sqlite:") {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url).context("not a SQLite URL")?;
    let path = options.get_filename();
    // sqlx names in-memory databases `file:sqlx-in-memory-N`: a prefix of
    // the name, not a path component (`Path::starts_with` would miss it).
    let in_memory = path.to_string_lossy().starts_with("file:sqlx-in-memory");
    Ok((!in_memory).then(|| path.to_path_buf()))
}

/// The database's name when PostgreSQL refused a connection because the
/// database does not exist (SQLSTATE 3D000, `invalid_catalog_name`).
fn missing_postgres_database(error: &DbErr) -> Option<String> {
    let DbErr::Conn(RuntimeErr::SqlxError(cause)) = error else {
        return None;
    };
    let sqlx::Error::Database(database_error) = cause.as_ref() else {
        return None;
    };
    if database_error.code().as_deref() != Some("3D000") {
        return None;
    }
    let message = database_error.message();
    let name = message
        .split('"')
        .nth(1)
        .map_or_else(|| message.to_owned(), str::to_owned);
    Some(name)
}

/// The innermost error's text: sea-orm and sqlx each wrap their cause and
/// print it again in their own message.
fn root_cause(error: &DbErr) -> String {
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(cause)) => cause.to_string(),
        other => other.to_string(),
    }
}

/// The PostgreSQL channel revocations are announced on.
pub(super) const REVOCATION_CHANNEL: &str = "authd_revocations";

impl Database {
    /// Begins a transaction that writes. On SQLite it takes the write lock
    /// at `BEGIN` (`BEGIN IMMEDIATE`), waiting its turn there: a deferred
    /// transaction that reads first and then writes fails at once with
    /// "database is locked" when another connection committed in between,
    /// since its snapshot is stale. PostgreSQL takes no notice of the mode.
    pub(super) async fn begin_write(&self) -> Result<DatabaseTransaction, AuthError> {
        self.connection
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .map_err(classify)
    }

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

/// Runs `statements` in order on `connection` (a transaction, for them to
/// stand or fall together), one query each, and returns the rows they
/// return, in order. (On SQLite, `sqlite_transaction` sends a whole
/// transaction as one query instead.)
pub(super) async fn query_each(
    connection: &impl ConnectionTrait,
    statements: Vec<Statement>,
) -> Result<Vec<QueryResult>, AuthError> {
    let mut rows = Vec::new();
    for statement in statements {
        rows.extend(
            connection
                .query_all_raw(statement)
                .await
                .map_err(classify)?,
        );
    }
    Ok(rows)
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
