//! A write transaction sent to SQLite in one trip.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every
//! query is a trip to that thread and back. A transaction sent as `BEGIN`,
//! its statements and `COMMIT` holds SQLite's write lock, which every other
//! writer waits for, across the trips: while its task waits to be scheduled
//! again, which on a busy machine takes longer than the statements do. Sent
//! as one query of several statements, `BEGIN IMMEDIATE` … `COMMIT`, it
//! holds the lock only while SQLite runs them.
//!
//! A statement the rest depends on (a spend: an `UPDATE` or `DELETE` that
//! must change its row) is followed by [`GUARD`], an `INSERT` into a table
//! of the connection's own whose trigger aborts when the statement before
//! changed no row. The query then stops before `COMMIT`, and is rolled
//! back.

use futures_util::TryStreamExt as _;
use sea_orm::sea_query::Values;
use sea_orm::sqlx::{self, Either, Executor as _, sqlite::SqliteRow};
use sea_orm::{DbErr, RuntimeErr, Statement};
use sea_query_sqlx::SqlxValues;
use std::sync::Arc;

use super::database::classify;
use crate::domain::AuthError;

/// The temporary table and trigger behind [`GUARD`], created on each
/// connection as it opens (temporary objects belong to their connection).
/// `RAISE(IGNORE)` drops the row, so the table stays empty.
const GUARD_SETUP: &str = "\
    CREATE TEMP TABLE IF NOT EXISTS changed_a_row (changed INTEGER NOT NULL);
    CREATE TEMP TRIGGER IF NOT EXISTS changed_a_row_or_abort
    BEFORE INSERT ON changed_a_row
    BEGIN
        SELECT RAISE(ABORT, 'authd: the statement before changed no row')
        WHERE NEW.changed = 0;
        SELECT RAISE(IGNORE);
    END;";

/// The error [`GUARD`] aborts with: the text in [`GUARD_SETUP`].
const GUARD_MESSAGE: &str = "authd: the statement before changed no row";

/// Follows a statement that must change a row: aborts the query if it
/// changed none (`changes()` counts the last statement's rows).
pub(super) const GUARD: &str = "INSERT INTO temp.changed_a_row (changed) VALUES (changes())";

/// Creates what [`GUARD`] needs on a new connection. For the pool's
/// `after_connect`.
pub(super) async fn install(connection: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(GUARD_SETUP).execute(connection).await?;
    Ok(())
}

/// How a transaction sent by [`run`] ended.
pub(super) enum Ended {
    /// Committed.
    Committed,
    /// A guard aborted it and it was rolled back; the rows returned before.
    Refused(Vec<SqliteRow>),
}

/// Runs `statements` (without `BEGIN` or `COMMIT`: this adds them) as one
/// transaction in one query on a connection of `pool`.
pub(super) async fn run(
    pool: &sqlx::SqlitePool,
    statements: Vec<Statement>,
) -> Result<Ended, AuthError> {
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    let mut values = Vec::new();
    for statement in statements {
        sql.push_str(&statement.sql);
        sql.push_str(";\n");
        values.extend(statement.values.map(|bound| bound.0).unwrap_or_default());
    }
    sql.push_str("COMMIT;");
    let pool = pool.clone();
    // A task of its own, run to its end: a query dropped half-way (its
    // caller went away) would leave its connection in the pool inside the
    // open transaction, holding the write lock.
    tokio::spawn(async move {
        let mut connection = pool.acquire().await.map_err(database_error)?;
        let mut rows = Vec::new();
        let query = sqlx::query_with(sqlx::AssertSqlSafe(sql), SqlxValues(Values(values)));
        let mut results = (&mut *connection).fetch_many(query);
        let failure = loop {
            match results.try_next().await {
                Ok(Some(Either::Right(row))) => rows.push(row),
                Ok(Some(Either::Left(_))) => {}
                Ok(None) => break None,
                Err(error) => break Some(error),
            }
        };
        drop(results);
        let Some(error) = failure else {
            return Ok(Ended::Committed);
        };
        // The query stopped between BEGIN and COMMIT. A connection whose
        // ROLLBACK failed may still be inside the transaction, so it is
        // closed rather than returned (so is one whose BEGIN failed, with
        // nothing to roll back: rare, and harmless).
        if sqlx::raw_sql("ROLLBACK")
            .execute(&mut *connection)
            .await
            .is_err()
        {
            connection.close_on_drop();
        }
        match &error {
            sqlx::Error::Database(cause) if cause.message() == GUARD_MESSAGE => {
                Ok(Ended::Refused(rows))
            }
            _ => Err(database_error(error)),
        }
    })
    .await
    .map_err(AuthError::internal)?
}

fn database_error(error: sqlx::Error) -> AuthError {
    classify(DbErr::Query(RuntimeErr::SqlxError(Arc::new(error))))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{ConnectionTrait as _, DbBackend};

    use super::*;
    use crate::storage::{Database, DatabaseSettings};

    /// A database of one connection (so that a transaction left open on
    /// it would stall the next) holding a table of three counters at 0.
    async fn counters(dir: &tempfile::TempDir) -> Database {
        let settings = DatabaseSettings {
            url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            max_connections: 1,
            connect_timeout: Duration::from_secs(5),
        };
        let database = Database::connect(&settings).await.unwrap();
        database
            .connection
            .execute_unprepared(
                "CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
                 INSERT INTO counters VALUES (1, 0), (2, 0), (3, 0);",
            )
            .await
            .unwrap();
        database
    }

    /// Adds one to counter `id` if it is at `at`, returning `index`.
    fn step(id: i64, at: i64, index: i64) -> Statement {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "UPDATE counters SET n = n + 1 WHERE id = ? AND n = ? RETURNING CAST(? AS INTEGER)",
            [id.into(), at.into(), index.into()],
        )
    }

    fn guard() -> Statement {
        Statement::from_string(DbBackend::Sqlite, GUARD)
    }

    async fn values(database: &Database) -> Vec<i64> {
        let rows = database
            .connection
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT n FROM counters ORDER BY id",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.try_get_by_index::<i64>(0).unwrap())
            .collect()
    }

    async fn run_on(database: &Database, statements: Vec<Statement>) -> Ended {
        run(database.connection.get_sqlite_connection_pool(), statements)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_guarded_statement_that_changes_no_row_undoes_the_whole_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let database = counters(&dir).await;
        // The second step finds counter 2 at 0, not 5: the first step and
        // the third are undone with it.
        let ended = run_on(
            &database,
            vec![
                step(1, 0, 0),
                guard(),
                step(2, 5, 1),
                guard(),
                step(3, 0, 2),
            ],
        )
        .await;
        let Ended::Refused(rows) = ended else {
            panic!("the transaction committed");
        };
        assert_eq!(rows.len(), 1, "the first step's row comes back");
        assert_eq!(values(&database).await, [0, 0, 0]);

        // The connection is out of that transaction: the next one commits.
        let ended = run_on(&database, vec![step(1, 0, 0), guard(), step(2, 0, 1)]).await;
        assert!(matches!(ended, Ended::Committed));
        assert_eq!(values(&database).await, [1, 1, 0]);
    }

    #[tokio::test]
    async fn an_unguarded_statement_that_changes_no_row_commits_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let database = counters(&dir).await;
        let ended = run_on(&database, vec![step(1, 0, 0), step(2, 5, 1)]).await;
        assert!(matches!(ended, Ended::Committed));
        assert_eq!(values(&database).await, [1, 0, 0]);
    }

    #[tokio::test]
    async fn a_failing_statement_is_an_error_and_undoes_the_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let database = counters(&dir).await;
        let failing =
            Statement::from_string(DbBackend::Sqlite, "INSERT INTO counters VALUES (1, 0)");
        let pool = database.connection.get_sqlite_connection_pool();
        let ended = run(pool, vec![step(1, 0, 0), failing]).await;
        assert!(matches!(ended, Err(AuthError::Internal(_))));
        assert_eq!(values(&database).await, [0, 0, 0]);
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().unwrap();
        let database = counters(&dir).await;
        let pool = database.connection.get_sqlite_connection_pool();
        // Calls dropped after 0, 1, 2 … polls: some before their query is
        // sent, some right after, before SQLite has run all of it.
        for polls in 0..20 {
            let mut call = Box::pin(run(pool, vec![step(1, 0, 0), guard(), step(2, 0, 1)]));
            for _ in 0..polls {
                if futures::poll!(&mut call).is_ready() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            drop(call);
            // The one connection is free again once that call's
            // transaction ends, and not inside it: this one commits.
            let ended = run_on(&database, vec![step(3, polls, 0)]).await;
            assert!(
                matches!(ended, Ended::Committed),
                "after a call dropped at poll {polls}"
            );
        }
        assert_eq!(values(&database).await, [1, 1, 20]);
    }
}
