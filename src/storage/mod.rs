//! Storage: the one adapter of the domain's `Store` port
//! (`crate::domain::Store`), on sea-orm (`Database`), which serves SQLite
//! and PostgreSQL alike. Nothing outside this module imports sea-orm.

mod database;
mod entities;

pub use database::{Database, DatabaseSettings};
