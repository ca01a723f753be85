use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EmailAddresses::Table)
                    .if_not_exists()
                    // One address per account.
                    .col(uuid(EmailAddresses::UserId).primary_key())
                    // As the user gave it: what mail is sent to.
                    .col(text(EmailAddresses::Address))
                    // What addresses are compared by: the domain lower-cased (the
                    // local part is the receiving server's to interpret).
                    .col(text(EmailAddresses::AddressNormalized))
                    // The normalised address once verified, null before: a
                    // unique index over it makes verified addresses unique
                    // on both databases (NULLs never collide), where a
                    // partial index would need backend-specific SQL.
                    .col(text_null(EmailAddresses::VerifiedNormalized))
                    .col(timestamp_with_time_zone(EmailAddresses::CreatedAt))
                    .col(timestamp_with_time_zone_null(EmailAddresses::VerifiedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_email_addresses_verified_normalized")
                    .table(EmailAddresses::Table)
                    .col(EmailAddresses::VerifiedNormalized)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MailTokens::Table)
                    .if_not_exists()
                    // SHA-256 of the token's secret, base64url.
                    .col(text(MailTokens::TokenHash).primary_key())
                    .col(uuid(MailTokens::UserId))
                    // `verify` or `reset`.
                    .col(text(MailTokens::Purpose))
                    // Verification tokens: the address they were mailed to,
                    // so a token never verifies a later address.
                    .col(text(MailTokens::Address))
                    .col(timestamp_with_time_zone(MailTokens::CreatedAt))
                    .col(timestamp_with_time_zone(MailTokens::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        // One live token per account and purpose: a new one replaces it.
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_tokens_user_id_purpose")
                    .table(MailTokens::Table)
                    .col(MailTokens::UserId)
                    .col(MailTokens::Purpose)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MailOutbox::Table)
                    .if_not_exists()
                    .col(pk_uuid(MailOutbox::Id))
                    // The Message-ID header, the same on every attempt.
                    .col(text(MailOutbox::MessageId).unique_key())
                    .col(text(MailOutbox::Recipient))
                    .col(text(MailOutbox::Subject))
                    .col(text(MailOutbox::TextBody))
                    .col(text(MailOutbox::HtmlBody))
                    .col(timestamp_with_time_zone(MailOutbox::CreatedAt))
                    .col(integer(MailOutbox::Attempts))
                    .col(timestamp_with_time_zone(MailOutbox::NextAttemptAt))
                    // A sender holds the row until then; past it, another
                    // instance may take it over (its sender died).
                    .col(timestamp_with_time_zone_null(MailOutbox::ClaimedUntil))
                    .col(timestamp_with_time_zone_null(MailOutbox::SentAt))
                    .col(text_null(MailOutbox::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_sent_at_next_attempt_at")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::SentAt)
                    .col(MailOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailOutbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MailTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(EmailAddresses::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum EmailAddresses {
    Table,
    UserId,
    Address,
    AddressNormalized,
    VerifiedNormalized,
    CreatedAt,
    VerifiedAt,
}

#[derive(DeriveIden)]
enum MailTokens {
    Table,
    TokenHash,
    UserId,
    Purpose,
    Address,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    MessageId,
    Recipient,
    Subject,
    TextBody,
    HtmlBody,
    CreatedAt,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    SentAt,
    LastError,
}
