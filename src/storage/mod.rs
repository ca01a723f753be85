//! Storage: the sea-orm adapter of every port the domain owns
//! (`crate::domain::ports`), one file per port, on one connection pool
//! (`Database`) that serves SQLite and PostgreSQL alike. Nothing outside
//! this module imports sea-orm.

mod database;
mod email;
mod entities;
mod factors;
mod health;
mod keys;
mod limits;
mod notices;
mod outbox;
mod passkeys;
mod revocations;
mod sessions;
mod sqlite_busy;
mod sqlite_transaction;
mod users;

pub use database::{Database, DatabaseSettings, sqlite_file};
