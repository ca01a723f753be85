//! Accounts whose only credential is a passkey have no password: the
//! users' password hash becomes nullable. SQLite cannot alter a column's
//! nullability, and rebuilding `users` would drop it under the tables whose
//! foreign keys cascade from it; so, on both databases alike, a nullable
//! copy of the column is added, filled, and takes the old one's place
//! (ADD, UPDATE, DROP, RENAME: each a statement both databases run in
//! place, keeping every row and every reference to it).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on both databases (SQLite's DDL is transactional
    /// too): the steps on one connection, and all or none of them applied.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(text_null(Users::PasswordHashOptional))
                    .to_owned(),
            )
            .await?;
        take_the_place_of_password_hash(manager).await
    }

    /// Back to a required password: refused while an account has none,
    /// which the older schema cannot hold.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let passwordless = manager
            .get_connection()
            .query_one(
                &Query::select()
                    .expr(Expr::col(Users::Id).count())
                    .from(Users::Table)
                    .and_where(Expr::col(Users::PasswordHash).is_null())
                    .to_owned(),
            )
            .await?
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or_default();
        if passwordless > 0 {
            return Err(DbErr::Migration(format!(
                "{passwordless} accounts have no password; the older schema requires one"
            )));
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    // A default only because SQLite adds no NOT NULL column
                    // without one; the copy fills every row.
                    .add_column(text(Users::PasswordHashOptional).default(""))
                    .to_owned(),
            )
            .await?;
        take_the_place_of_password_hash(manager).await
    }
}

/// Copies `password_hash` into the new column just added, drops it and
/// gives the new column its name.
async fn take_the_place_of_password_hash(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .exec_stmt(
            Query::update()
                .table(Users::Table)
                .value(Users::PasswordHashOptional, Expr::col(Users::PasswordHash))
                .to_owned(),
        )
        .await?;
    manager
        .alter_table(
            Table::alter()
                .table(Users::Table)
                .drop_column(Users::PasswordHash)
                .to_owned(),
        )
        .await?;
    manager
        .alter_table(
            Table::alter()
                .table(Users::Table)
                .rename_column(Users::PasswordHashOptional, Users::PasswordHash)
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    PasswordHash,
    PasswordHashOptional,
}
