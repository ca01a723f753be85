use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TotpFactors::Table)
                    .if_not_exists()
                    // One authenticator per account, pending or confirmed.
                    .col(uuid(TotpFactors::UserId).primary_key())
                    // Sealed with the secrets key; never in clear.
                    .col(blob(TotpFactors::SealedSecret))
                    .col(timestamp_with_time_zone(TotpFactors::CreatedAt))
                    .col(timestamp_with_time_zone_null(TotpFactors::ConfirmedAt))
                    // The latest time step spent: a code is accepted once.
                    .col(big_integer_null(TotpFactors::LastUsedStep))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .if_not_exists()
                    .col(pk_uuid(RecoveryCodes::Id))
                    .col(uuid(RecoveryCodes::UserId))
                    // argon2id PHC string: the code itself is never stored.
                    .col(text(RecoveryCodes::CodeHash))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_user_id")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaTickets::Table)
                    .if_not_exists()
                    // SHA-256 of the ticket's secret, base64url.
                    .col(text(MfaTickets::TicketHash).primary_key())
                    .col(uuid(MfaTickets::UserId))
                    .col(timestamp_with_time_zone(MfaTickets::CreatedAt))
                    .col(timestamp_with_time_zone(MfaTickets::ExpiresAt))
                    .col(integer(MfaTickets::Attempts))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_tickets_expires_at")
                    .table(MfaTickets::Table)
                    .col(MfaTickets::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        // How and when the session's user last authenticated; null for
        // sessions from before, read as a password at the session's start.
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(timestamp_with_time_zone_null(Sessions::AuthTime))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(text_null(Sessions::Amr))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Sessions::Amr, Sessions::AuthTime] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(MfaTickets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TotpFactors::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TotpFactors {
    Table,
    UserId,
    SealedSecret,
    CreatedAt,
    ConfirmedAt,
    LastUsedStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum MfaTickets {
    Table,
    TicketHash,
    UserId,
    CreatedAt,
    ExpiresAt,
    Attempts,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    AuthTime,
    Amr,
}
