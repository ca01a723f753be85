//! The webhook outbox: notification events (`--notification-webhook-url`)
//! written in the transaction of the change they report, beside the mail
//! outbox and drained by the same claim and backoff rule. A table of its
//! own rather than a kind column on `mail_outbox`: a webhook row has no
//! recipient, subject or bodies, and a mail row no event type or payload.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookOutbox::Table)
                    .if_not_exists()
                    // The `webhook-id` header, the same on every attempt.
                    .col(pk_uuid(WebhookOutbox::Id))
                    // `email.verification_requested`, `password.changed`...
                    .col(text(WebhookOutbox::EventType))
                    // The JSON body, exactly as signed and sent.
                    .col(text(WebhookOutbox::Payload))
                    .col(timestamp_with_time_zone(WebhookOutbox::CreatedAt))
                    .col(integer(WebhookOutbox::Attempts))
                    .col(timestamp_with_time_zone(WebhookOutbox::NextAttemptAt))
                    // A sender holds the row until then; past it, another
                    // instance may take it over (its sender died).
                    .col(timestamp_with_time_zone_null(WebhookOutbox::ClaimedUntil))
                    .col(timestamp_with_time_zone_null(WebhookOutbox::DeliveredAt))
                    .col(text_null(WebhookOutbox::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_outbox_delivered_at_next_attempt_at")
                    .table(WebhookOutbox::Table)
                    .col(WebhookOutbox::DeliveredAt)
                    .col(WebhookOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookOutbox::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WebhookOutbox {
    Table,
    Id,
    EventType,
    Payload,
    CreatedAt,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    DeliveredAt,
    LastError,
}
