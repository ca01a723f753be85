//! The OutboxStore and WebhookOutboxStore ports on sea-orm. Mails and
//! webhook events are queued inside the caller's transaction (`queue_all`,
//! used by the other adapters); senders claim due rows with one UPDATE
//! whose WHERE holds the claim guard, so that of senders claiming at once
//! each row goes to one. Both tables follow that one rule (`claim_sql`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::database::{Database, classify};
use super::entities::{outbox_mail, webhook_event};
use crate::domain::{
    AuthError, ClaimedEvent, ClaimedMail, OutboxBacklog, OutboxEntry, OutboxMail, OutboxStore,
    WebhookEvent, WebhookOutboxStore,
};

/// Writes `mail` to the outbox, due now, on `connection` (the transaction
/// of the change it reports).
async fn queue_mail(
    connection: &impl sea_orm::ConnectionTrait,
    mail: &OutboxMail,
) -> Result<(), AuthError> {
    let row = outbox_mail::ActiveModel {
        id: Set(mail.id),
        message_id: Set(mail.message_id.clone()),
        recipient: Set(mail.recipient.clone()),
        subject: Set(mail.subject.clone()),
        text_body: Set(mail.text_body.clone()),
        html_body: Set(mail.html_body.clone()),
        created_at: Set(mail.created_at),
        attempts: Set(0),
        next_attempt_at: Set(mail.created_at),
        claimed_until: Set(None),
        sent_at: Set(None),
        last_error: Set(None),
    };
    outbox_mail::Entity::insert(row)
        .exec_without_returning(connection)
        .await
        .map_err(classify)?;
    Ok(())
}

/// Writes `event` to the webhook outbox, due now, on `connection`.
async fn queue_event(
    connection: &impl sea_orm::ConnectionTrait,
    event: &WebhookEvent,
) -> Result<(), AuthError> {
    let row = webhook_event::ActiveModel {
        id: Set(event.id),
        event_type: Set(event.event_type.clone()),
        payload: Set(event.payload.clone()),
        created_at: Set(event.created_at),
        attempts: Set(0),
        next_attempt_at: Set(event.created_at),
        claimed_until: Set(None),
        delivered_at: Set(None),
        last_error: Set(None),
    };
    webhook_event::Entity::insert(row)
        .exec_without_returning(connection)
        .await
        .map_err(classify)?;
    Ok(())
}

/// Writes each of `entries` to its outbox, on `connection` (the
/// transaction of the change they report).
pub(super) async fn queue_all(
    connection: &impl sea_orm::ConnectionTrait,
    entries: &[OutboxEntry],
) -> Result<(), AuthError> {
    for entry in entries {
        match entry {
            OutboxEntry::Mail(mail) => queue_mail(connection, mail).await?,
            OutboxEntry::Webhook(event) => queue_event(connection, event).await?,
        }
    }
    Ok(())
}

/// The claiming UPDATE on `table`, whose delivered rows have `done` set:
/// the due rows no live claim holds, oldest due first, claimed until `$1`
/// at `$2`, at most `$3` of them.
fn claim_sql(backend: DbBackend, table: &str, done: &str) -> String {
    // PostgreSQL: rows another sender's claim is locking are skipped, not
    // waited for, and a row claimed meanwhile fails the re-checked guard.
    // SQLite has one writer at a time, so the guard in the one UPDATE
    // suffices there.
    let (until, due, count, lock) = match backend {
        DbBackend::Postgres => ("$1", "$2", "$3", " FOR UPDATE SKIP LOCKED"),
        _ => ("?1", "?2", "?3", ""),
    };
    format!(
        "UPDATE {table} SET claimed_until = {until}, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM {table} WHERE {done} IS NULL \
         AND next_attempt_at <= {due} AND (claimed_until IS NULL OR claimed_until <= {due}) \
         ORDER BY next_attempt_at LIMIT {count}{lock}) RETURNING *"
    )
}

fn claim_values(
    now: DateTime<Utc>,
    claimed_until: DateTime<Utc>,
    limit: u64,
) -> [sea_orm::Value; 3] {
    [
        claimed_until.into(),
        now.into(),
        i64::try_from(limit).unwrap_or(i64::MAX).into(),
    ]
}

impl OutboxStore for Database {
    async fn claim_due_mails(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<ClaimedMail>, AuthError> {
        let backend = self.connection.get_database_backend();
        let statement = Statement::from_sql_and_values(
            backend,
            claim_sql(backend, "mail_outbox", "sent_at"),
            claim_values(now, claimed_until, limit),
        );
        let rows = outbox_mail::Entity::find()
            .from_raw_sql(statement)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|row| ClaimedMail {
                attempts: row.attempts,
                mail: OutboxMail {
                    id: row.id,
                    message_id: row.message_id,
                    recipient: row.recipient,
                    subject: row.subject,
                    text_body: row.text_body,
                    html_body: row.html_body,
                    created_at: row.created_at,
                },
            })
            .collect())
    }

    async fn mark_mail_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), AuthError> {
        outbox_mail::Entity::update_many()
            .col_expr(outbox_mail::Column::SentAt, Expr::value(at))
            .col_expr(
                outbox_mail::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                outbox_mail::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(outbox_mail::Column::Id.eq(id))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn mark_mail_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        outbox_mail::Entity::update_many()
            .col_expr(outbox_mail::Column::LastError, Expr::value(error))
            .col_expr(
                outbox_mail::Column::NextAttemptAt,
                Expr::value(next_attempt_at),
            )
            .col_expr(
                outbox_mail::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(outbox_mail::Column::Id.eq(id))
            .filter(outbox_mail::Column::SentAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_mails_sent_before(&self, cutoff: DateTime<Utc>) -> Result<u64, AuthError> {
        let result = outbox_mail::Entity::delete_many()
            .filter(outbox_mail::Column::SentAt.lt(cutoff))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    async fn outbox_backlog(&self) -> Result<OutboxBacklog, AuthError> {
        let unsent = || outbox_mail::Entity::find().filter(outbox_mail::Column::SentAt.is_null());
        let queued = unsent().count(&self.connection).await.map_err(classify)?;
        let oldest_queued_at = unsent()
            .select_only()
            .column(outbox_mail::Column::CreatedAt)
            .order_by_asc(outbox_mail::Column::CreatedAt)
            .into_tuple::<DateTime<Utc>>()
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(OutboxBacklog {
            queued,
            oldest_queued_at,
        })
    }
}

impl WebhookOutboxStore for Database {
    async fn claim_due_events(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<ClaimedEvent>, AuthError> {
        let backend = self.connection.get_database_backend();
        let statement = Statement::from_sql_and_values(
            backend,
            claim_sql(backend, "webhook_outbox", "delivered_at"),
            claim_values(now, claimed_until, limit),
        );
        let rows = webhook_event::Entity::find()
            .from_raw_sql(statement)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|row| ClaimedEvent {
                attempts: row.attempts,
                event: WebhookEvent {
                    id: row.id,
                    event_type: row.event_type,
                    payload: row.payload,
                    created_at: row.created_at,
                },
            })
            .collect())
    }

    async fn mark_event_delivered(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), AuthError> {
        webhook_event::Entity::update_many()
            .col_expr(webhook_event::Column::DeliveredAt, Expr::value(at))
            .col_expr(
                webhook_event::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                webhook_event::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(webhook_event::Column::Id.eq(id))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn mark_event_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        webhook_event::Entity::update_many()
            .col_expr(webhook_event::Column::LastError, Expr::value(error))
            .col_expr(
                webhook_event::Column::NextAttemptAt,
                Expr::value(next_attempt_at),
            )
            .col_expr(
                webhook_event::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(webhook_event::Column::Id.eq(id))
            .filter(webhook_event::Column::DeliveredAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_events_delivered_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let result = webhook_event::Entity::delete_many()
            .filter(webhook_event::Column::DeliveredAt.lt(cutoff))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    async fn webhook_backlog(&self) -> Result<OutboxBacklog, AuthError> {
        let waiting =
            || webhook_event::Entity::find().filter(webhook_event::Column::DeliveredAt.is_null());
        let queued = waiting().count(&self.connection).await.map_err(classify)?;
        let oldest_queued_at = waiting()
            .select_only()
            .column(webhook_event::Column::CreatedAt)
            .order_by_asc(webhook_event::Column::CreatedAt)
            .into_tuple::<DateTime<Utc>>()
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(OutboxBacklog {
            queued,
            oldest_queued_at,
        })
    }
}
