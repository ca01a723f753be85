//! The FactorStore port on sea-orm: TOTP authenticators, recovery codes and
//! second-factor tickets. Each spend is one conditional UPDATE or DELETE
//! whose row count says whether this call won.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{DeleteStatement, Expr, ExprTrait as _, OnConflict, UpdateStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult as _,
    QueryFilter, QueryOrder, QueryTrait as _,
};
use uuid::Uuid;

use super::database::{Database, classify};
use super::entities::{mfa_ticket, recovery_code, totp_factor};
use super::outbox::queue_all;
use crate::domain::{
    AuthError, FactorStore, MfaTicketRecord, OutboxEntry, RecoveryCodeRecord, TotpRecord,
};

impl FactorStore for Database {
    async fn totp_of(&self, user_id: Uuid) -> Result<Option<TotpRecord>, AuthError> {
        let row = totp_factor::Entity::find_by_id(user_id)
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(row.map(totp_record))
    }

    async fn put_pending_totp(&self, record: &TotpRecord) -> Result<bool, AuthError> {
        let row = totp_factor::ActiveModel {
            user_id: Set(record.user_id),
            sealed_secret: Set(record.sealed_secret.clone()),
            created_at: Set(record.created_at),
            confirmed_at: Set(None),
            last_used_step: Set(None),
        };
        // Replaces a pending row only: the upsert's WHERE leaves a confirmed
        // one alone, and the row count tells.
        let result = totp_factor::Entity::insert(row)
            .on_conflict(
                OnConflict::column(totp_factor::Column::UserId)
                    .update_columns([
                        totp_factor::Column::SealedSecret,
                        totp_factor::Column::CreatedAt,
                    ])
                    .action_and_where(
                        Expr::col((totp_factor::Entity, totp_factor::Column::ConfirmedAt))
                            .is_null(),
                    )
                    .to_owned(),
            )
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result > 0)
    }

    async fn confirm_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        step: i64,
        codes: &[RecoveryCodeRecord],
        at: DateTime<Utc>,
        notices: &[OutboxEntry],
    ) -> Result<bool, AuthError> {
        let transaction = self.begin_write().await?;
        let confirmed = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::ConfirmedAt, Expr::value(at))
            .col_expr(totp_factor::Column::LastUsedStep, Expr::value(step))
            .filter(totp_factor::Column::UserId.eq(user_id))
            .filter(totp_factor::Column::ConfirmedAt.is_null())
            .filter(totp_factor::Column::SealedSecret.eq(sealed_secret.to_vec()))
            .exec(&transaction)
            .await
            .map_err(classify)?;
        if confirmed.rows_affected == 0 {
            return Ok(false);
        }
        replace_recovery_codes(&transaction, user_id, codes).await?;
        queue_all(&transaction, notices).await?;
        transaction.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn sealed_totp_secrets(&self) -> Result<Vec<(Uuid, Vec<u8>)>, AuthError> {
        let rows = totp_factor::Entity::find()
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.user_id, row.sealed_secret))
            .collect())
    }

    async fn replace_sealed_totp_secret(
        &self,
        user_id: Uuid,
        expected: &[u8],
        replacement: &[u8],
    ) -> Result<bool, AuthError> {
        let result = totp_factor::Entity::update_many()
            .col_expr(
                totp_factor::Column::SealedSecret,
                Expr::value(replacement.to_vec()),
            )
            .filter(totp_factor::Column::UserId.eq(user_id))
            .filter(totp_factor::Column::SealedSecret.eq(expected.to_vec()))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected == 1)
    }

    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, AuthError> {
        spend_totp_step(&self.connection, user_id, step).await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[RecoveryCodeRecord],
        notices: &[OutboxEntry],
    ) -> Result<(), AuthError> {
        let transaction = self.begin_write().await?;
        replace_recovery_codes(&transaction, user_id, codes).await?;
        queue_all(&transaction, notices).await?;
        transaction.commit().await.map_err(classify)
    }

    async fn delete_second_factors(
        &self,
        user_id: Uuid,
        notices: &[OutboxEntry],
    ) -> Result<bool, AuthError> {
        let transaction = self.begin_write().await?;
        let confirmed = totp_factor::Entity::find_by_id(user_id)
            .one(&transaction)
            .await
            .map_err(classify)?
            .is_some_and(|row| row.confirmed_at.is_some());
        delete_factors_of(&transaction, user_id).await?;
        if confirmed {
            queue_all(&transaction, notices).await?;
        }
        transaction.commit().await.map_err(classify)?;
        Ok(confirmed)
    }

    async fn unused_recovery_codes(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<RecoveryCodeRecord>, AuthError> {
        let rows = recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::UsedAt.is_null())
            .order_by_asc(recovery_code::Column::Id)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|row| RecoveryCodeRecord {
                id: row.id,
                user_id: row.user_id,
                code_hash: row.code_hash,
                created_at: row.created_at,
                used_at: row.used_at,
            })
            .collect())
    }

    async fn spend_recovery_code(
        &self,
        code_id: Uuid,
        at: DateTime<Utc>,
        notices: &[OutboxEntry],
    ) -> Result<bool, AuthError> {
        if notices.is_empty() {
            return spend_recovery_code(&self.connection, code_id, at).await;
        }
        let transaction = self.begin_write().await?;
        if !spend_recovery_code(&transaction, code_id, at).await? {
            return Ok(false);
        }
        queue_all(&transaction, notices).await?;
        transaction.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn insert_mfa_ticket(&self, ticket: &MfaTicketRecord) -> Result<(), AuthError> {
        mfa_ticket::Entity::insert(mfa_ticket::ActiveModel {
            ticket_hash: Set(ticket.ticket_hash.clone()),
            user_id: Set(ticket.user_id),
            created_at: Set(ticket.created_at),
            expires_at: Set(ticket.expires_at),
            attempts: Set(ticket.attempts),
        })
        .exec_without_returning(&self.connection)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn attempt_mfa_ticket(
        &self,
        ticket_hash: &str,
        now: DateTime<Utc>,
        max_attempts: i32,
    ) -> Result<Option<MfaTicketRecord>, AuthError> {
        // One statement counts the attempt and reads the ticket back, so
        // the count a caller sees is the one it made.
        let mut attempt = mfa_ticket::Entity::update_many()
            .col_expr(
                mfa_ticket::Column::Attempts,
                Expr::col(mfa_ticket::Column::Attempts).add(1),
            )
            .filter(mfa_ticket::Column::TicketHash.eq(ticket_hash))
            .filter(mfa_ticket::Column::ExpiresAt.gt(now))
            .filter(mfa_ticket::Column::Attempts.lt(max_attempts))
            .into_query();
        attempt.returning_all();
        let Some(row) = self
            .connection
            .query_one(&attempt)
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
        let row = mfa_ticket::Model::from_query_result(&row, "").map_err(classify)?;
        Ok(Some(MfaTicketRecord {
            ticket_hash: row.ticket_hash,
            user_id: row.user_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            attempts: row.attempts,
        }))
    }

    async fn delete_mfa_tickets_expired_before(
        &self,
        now: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let result = mfa_ticket::Entity::delete_many()
            .filter(mfa_ticket::Column::ExpiresAt.lt(now))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }
}

/// Records `step` as the account's last used TOTP step if it is later than
/// the last, on `connection`; whether it was.
pub(super) async fn spend_totp_step(
    connection: &impl ConnectionTrait,
    user_id: Uuid,
    step: i64,
) -> Result<bool, AuthError> {
    let result = connection
        .execute(&totp_step_spending(user_id, step))
        .await
        .map_err(classify)?;
    Ok(result.rows_affected() == 1)
}

/// The conditional UPDATE of [`spend_totp_step`]: it changes a row only if
/// `step` is later than the account's last.
pub(super) fn totp_step_spending(user_id: Uuid, step: i64) -> UpdateStatement {
    totp_factor::Entity::update_many()
        .col_expr(totp_factor::Column::LastUsedStep, Expr::value(step))
        .filter(totp_factor::Column::UserId.eq(user_id))
        .filter(totp_factor::Column::ConfirmedAt.is_not_null())
        .filter(
            Condition::any()
                .add(totp_factor::Column::LastUsedStep.is_null())
                .add(totp_factor::Column::LastUsedStep.lt(step)),
        )
        .into_query()
}

/// Marks a recovery code used if it was unused, on `connection`; whether
/// it was.
pub(super) async fn spend_recovery_code(
    connection: &impl ConnectionTrait,
    code_id: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, AuthError> {
    let result = connection
        .execute(&recovery_code_spending(code_id, at))
        .await
        .map_err(classify)?;
    Ok(result.rows_affected() == 1)
}

/// The conditional UPDATE of [`spend_recovery_code`]: it changes a row only
/// if the code is unused.
pub(super) fn recovery_code_spending(code_id: Uuid, at: DateTime<Utc>) -> UpdateStatement {
    recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(at))
        .filter(recovery_code::Column::Id.eq(code_id))
        .filter(recovery_code::Column::UsedAt.is_null())
        .into_query()
}

/// The DELETE that spends a second-factor ticket (by its hash): of racing
/// ones, one deletes the row.
pub(super) fn mfa_ticket_deletion(ticket_hash: &str) -> DeleteStatement {
    mfa_ticket::Entity::delete_by_id(ticket_hash.to_owned()).into_query()
}

/// Deletes a user's recovery codes and stores `codes` instead.
async fn replace_recovery_codes(
    connection: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
    codes: &[RecoveryCodeRecord],
) -> Result<(), AuthError> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(connection)
        .await
        .map_err(classify)?;
    if codes.is_empty() {
        return Ok(());
    }
    recovery_code::Entity::insert_many(codes.iter().map(|code| recovery_code::ActiveModel {
        id: Set(code.id),
        user_id: Set(code.user_id),
        code_hash: Set(code.code_hash.clone()),
        created_at: Set(code.created_at),
        used_at: Set(code.used_at),
    }))
    .exec_without_returning(connection)
    .await
    .map_err(classify)?;
    Ok(())
}

/// Forgets every second factor of a user (the account is deleted, or an
/// operator reset them).
pub(super) async fn delete_factors_of(
    connection: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
) -> Result<(), AuthError> {
    totp_factor::Entity::delete_by_id(user_id)
        .exec(connection)
        .await
        .map_err(classify)?;
    replace_recovery_codes(connection, user_id, &[]).await?;
    mfa_ticket::Entity::delete_many()
        .filter(mfa_ticket::Column::UserId.eq(user_id))
        .exec(connection)
        .await
        .map_err(classify)?;
    Ok(())
}

pub(super) fn totp_record(row: totp_factor::Model) -> TotpRecord {
    TotpRecord {
        user_id: row.user_id,
        sealed_secret: row.sealed_secret,
        created_at: row.created_at,
        confirmed_at: row.confirmed_at,
        last_used_step: row.last_used_step,
    }
}
