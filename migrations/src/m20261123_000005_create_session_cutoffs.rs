use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SessionCutoffs::Table)
                    .if_not_exists()
                    .col(pk_uuid(SessionCutoffs::UserId))
                    // "Log out everywhere": the user's tokens issued at or
                    // before this Unix second are refused.
                    .col(big_integer(SessionCutoffs::RevokedThrough))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SessionCutoffs::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SessionCutoffs {
    Table,
    UserId,
    RevokedThrough,
}
