//! The StoreHealth port on sea-orm: the pool's state and a ping.

use sea_orm::DbBackend;

use super::database::{Database, classify};
use crate::domain::{AuthError, StoreHealth};

impl StoreHealth for Database {
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
