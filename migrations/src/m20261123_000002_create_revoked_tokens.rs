use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RevokedTokens::Table)
                    .if_not_exists()
                    .col(text(RevokedTokens::Jti).primary_key())
                    .col(uuid(RevokedTokens::UserId))
                    // The token's `exp` as Unix seconds, exactly as in the JWT,
                    // so pruning compares integers on every backend.
                    .col(big_integer(RevokedTokens::ExpiresAt))
                    .col(timestamp_with_time_zone(RevokedTokens::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revoked_tokens_expires_at")
                    .table(RevokedTokens::Table)
                    .col(RevokedTokens::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        // Other instances catch up on recent revocations by this column.
        manager
            .create_index(
                Index::create()
                    .name("idx_revoked_tokens_revoked_at")
                    .table(RevokedTokens::Table)
                    .col(RevokedTokens::RevokedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RevokedTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RevokedTokens {
    Table,
    Jti,
    UserId,
    ExpiresAt,
    RevokedAt,
}
