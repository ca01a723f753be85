use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .if_not_exists()
                    .col(text(SigningKeys::Kid).primary_key())
                    .col(text(SigningKeys::Algorithm))
                    // PKCS#8 DER. Whoever can read this table can sign tokens.
                    .col(blob(SigningKeys::PrivateKey))
                    .col(blob(SigningKeys::PublicKey))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    // Instances sign with a key only from this time on, so
                    // that all of them know it before the first token does.
                    .col(timestamp_with_time_zone(SigningKeys::ActivatesAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Algorithm,
    PrivateKey,
    PublicKey,
    CreatedAt,
    ActivatesAt,
}
