//! Database migrations for authd, written with sea-orm-migration's
//! backend-neutral helpers so that one set serves SQLite and PostgreSQL.
//! A migration that has landed is never edited: add a new one instead.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_users;
mod m20261123_000002_create_revoked_tokens;
mod m20261123_000003_create_signing_keys;
mod m20261123_000004_create_rate_limits;
mod m20261123_000005_create_session_cutoffs;
mod m20261130_000006_create_sessions;
mod m20261207_000008_create_second_factors;
mod m20261207_000009_create_passkeys;
mod m20261207_000010_create_mail;
mod m20261207_000011_make_password_optional;
mod m20261207_000012_create_webhook_outbox;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_users::Migration),
            Box::new(m20261123_000002_create_revoked_tokens::Migration),
            Box::new(m20261123_000003_create_signing_keys::Migration),
            Box::new(m20261123_000004_create_rate_limits::Migration),
            Box::new(m20261123_000005_create_session_cutoffs::Migration),
            Box::new(m20261130_000006_create_sessions::Migration),
            Box::new(m20261207_000008_create_second_factors::Migration),
            Box::new(m20261207_000009_create_passkeys::Migration),
            Box::new(m20261207_000010_create_mail::Migration),
            Box::new(m20261207_000011_make_password_optional::Migration),
            Box::new(m20261207_000012_create_webhook_outbox::Migration),
        ]
    }
}
