//! The OutboxStore and WebhookOutboxStore ports on sea-orm. Mails and
//! webhook events are queued inside the caller's transaction (`queue_all`,
//! used by the other adapters); senders claim due rows with one UPDATE
//! whose WHERE holds the claim guard, so that of senders claiming at once
//! each row goes to one. Both tables follow the same rules, written once
//! over their columns (`OutboxColumns`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, InsertStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IdenStatic as _,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait as _, Statement,
};
use uuid::Uuid;

use super::database::{Database, classify};
use super::entities::{outbox_mail, webhook_event};
use crate::domain::{
    AuthError, ClaimedEvent, ClaimedMail, OutboxBacklog, OutboxEntry, OutboxMail, OutboxStore,
    WebhookEvent, WebhookOutboxStore,
};

/// The INSERT that writes `mail` to the outbox, due now.
fn mail_queueing(mail: &OutboxMail) -> InsertStatement {
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
    outbox_mail::Entity::insert(row).into_query()
}

/// The INSERT that writes `event` to the webhook outbox, due now.
fn event_queueing(event: &WebhookEvent) -> InsertStatement {
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
    webhook_event::Entity::insert(row).into_query()
}

/// The INSERTs that write each of `entries` to its outbox, for a batch.
pub(super) fn queueing(backend: DbBackend, entries: &[OutboxEntry]) -> Vec<Statement> {
    entries
        .iter()
        .map(|entry| match entry {
            OutboxEntry::Mail(mail) => backend.build(&mail_queueing(mail)),
            OutboxEntry::Webhook(event) => backend.build(&event_queueing(event)),
        })
        .collect()
}

/// Writes each of `entries` to its outbox, on `connection` (the
/// transaction of the change they report).
pub(super) async fn queue_all(
    connection: &impl ConnectionTrait,
    entries: &[OutboxEntry],
) -> Result<(), AuthError> {
    for statement in queueing(connection.get_database_backend(), entries) {
        connection.execute_raw(statement).await.map_err(classify)?;
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

/// The columns an outbox table's deliveries are kept in. The two tables
/// name a delivered row's column differently (`sent_at`, `delivered_at`)
/// and the rest alike; each rule below is written once for both.
struct OutboxColumns<E: EntityTrait> {
    id: E::Column,
    delivered_at: E::Column,
    claimed_until: E::Column,
    last_error: E::Column,
    next_attempt_at: E::Column,
    created_at: E::Column,
}

const MAILS: OutboxColumns<outbox_mail::Entity> = OutboxColumns {
    id: outbox_mail::Column::Id,
    delivered_at: outbox_mail::Column::SentAt,
    claimed_until: outbox_mail::Column::ClaimedUntil,
    last_error: outbox_mail::Column::LastError,
    next_attempt_at: outbox_mail::Column::NextAttemptAt,
    created_at: outbox_mail::Column::CreatedAt,
};

const WEBHOOK_EVENTS: OutboxColumns<webhook_event::Entity> = OutboxColumns {
    id: webhook_event::Column::Id,
    delivered_at: webhook_event::Column::DeliveredAt,
    claimed_until: webhook_event::Column::ClaimedUntil,
    last_error: webhook_event::Column::LastError,
    next_attempt_at: webhook_event::Column::NextAttemptAt,
    created_at: webhook_event::Column::CreatedAt,
};

impl<E> OutboxColumns<E>
where
    E: EntityTrait + Default,
    E::Model: Sync,
{
    /// Claims up to `limit` rows due at `now` until `claimed_until`.
    async fn claim(
        &self,
        database: &Database,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<E::Model>, AuthError> {
        let backend = database.connection.get_database_backend();
        let statement = Statement::from_sql_and_values(
            backend,
            claim_sql(
                backend,
                E::default().table_name(),
                self.delivered_at.as_str(),
            ),
            claim_values(now, claimed_until, limit),
        );
        E::find()
            .from_raw_sql(statement)
            .all(&database.connection)
            .await
            .map_err(classify)
    }

    /// Marks a row delivered at `at`, its claim and last error cleared.
    async fn mark_delivered(
        &self,
        database: &Database,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        E::update_many()
            .col_expr(self.delivered_at, Expr::value(at))
            .col_expr(
                self.claimed_until,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(self.last_error, Expr::value(Option::<String>::None))
            .filter(self.id.eq(id))
            .exec(&database.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Records a failed attempt on an undelivered row: its error, when to
    /// try again, and its claim released.
    async fn mark_failed(
        &self,
        database: &Database,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        E::update_many()
            .col_expr(self.last_error, Expr::value(error))
            .col_expr(self.next_attempt_at, Expr::value(next_attempt_at))
            .col_expr(
                self.claimed_until,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(self.id.eq(id))
            .filter(self.delivered_at.is_null())
            .exec(&database.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Deletes the rows delivered before `cutoff`; how many.
    async fn delete_delivered_before(
        &self,
        database: &Database,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let result = E::delete_many()
            .filter(self.delivered_at.lt(cutoff))
            .exec(&database.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    /// How many rows wait, and since when the oldest.
    async fn backlog(&self, database: &Database) -> Result<OutboxBacklog, AuthError> {
        let waiting = || E::find().filter(self.delivered_at.is_null());
        let queued = waiting()
            .count(&database.connection)
            .await
            .map_err(classify)?;
        let oldest_queued_at = waiting()
            .select_only()
            .column(self.created_at)
            .order_by_asc(self.created_at)
            .into_tuple::<DateTime<Utc>>()
            .one(&database.connection)
            .await
            .map_err(classify)?;
        Ok(OutboxBacklog {
            queued,
            oldest_queued_at,
        })
    }
}

impl OutboxStore for Database {
    async fn claim_due_mails(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<ClaimedMail>, AuthError> {
        let rows = MAILS.claim(self, now, claimed_until, limit).await?;
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
        MAILS.mark_delivered(self, id, at).await
    }

    async fn mark_mail_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        MAILS.mark_failed(self, id, error, next_attempt_at).await
    }

    async fn delete_mails_sent_before(&self, cutoff: DateTime<Utc>) -> Result<u64, AuthError> {
        MAILS.delete_delivered_before(self, cutoff).await
    }

    async fn outbox_backlog(&self) -> Result<OutboxBacklog, AuthError> {
        MAILS.backlog(self).await
    }
}

impl WebhookOutboxStore for Database {
    async fn claim_due_events(
        &self,
        now: DateTime<Utc>,
        claimed_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<ClaimedEvent>, AuthError> {
        let rows = WEBHOOK_EVENTS
            .claim(self, now, claimed_until, limit)
            .await?;
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
        WEBHOOK_EVENTS.mark_delivered(self, id, at).await
    }

    async fn mark_event_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        WEBHOOK_EVENTS
            .mark_failed(self, id, error, next_attempt_at)
            .await
    }

    async fn delete_events_delivered_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        WEBHOOK_EVENTS.delete_delivered_before(self, cutoff).await
    }

    async fn webhook_backlog(&self) -> Result<OutboxBacklog, AuthError> {
        WEBHOOK_EVENTS.backlog(self).await
    }
}
