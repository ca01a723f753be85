//! The SessionStore port on sea-orm: sessions and their refresh tokens.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait as _, Statement,
};
use uuid::Uuid;

use super::database::{Database, classify, query_each};
use super::entities::{refresh_token, session};
use super::outbox::queueing;
use super::sqlite_transaction::{self, Ended, GUARD};
use super::{factors, passkeys};
use crate::domain::{
    AuthError, Authentication, OutboxEntry, RefreshTokenRecord, RevocationEvent, SessionRecord,
    SessionStore, Spend,
};

impl SessionStore for Database {
    async fn insert_session(
        &self,
        record: &SessionRecord,
        first_token: &RefreshTokenRecord,
    ) -> Result<(), AuthError> {
        self.insert_session_spending(record, first_token, &[], &[])
            .await
            .map(drop)
    }

    async fn insert_session_spending(
        &self,
        record: &SessionRecord,
        first_token: &RefreshTokenRecord,
        spent: &[Spend<'_>],
        notices: &[OutboxEntry],
    ) -> Result<Option<usize>, AuthError> {
        let backend = self.connection.get_database_backend();
        let spends = spent
            .iter()
            .enumerate()
            .map(|(index, spend)| spending(backend, spend, index));
        let writes = session_rows(backend, record, first_token)
            .into_iter()
            .chain(queueing(backend, notices));
        if backend == DbBackend::Sqlite {
            // One trip; each spend's guard ends the transaction at the first
            // that did not take.
            let statements = spends
                .flat_map(|spend| [spend, Statement::from_string(backend, GUARD)])
                .chain(writes)
                .collect();
            let pool = self.connection.get_sqlite_connection_pool();
            return Ok(match sqlite_transaction::run(pool, statements).await? {
                Ended::Committed => None,
                // Each spend before the refused one returned its row.
                Ended::Refused(rows) => Some(rows.len()),
            });
        }
        let transaction = self.begin_write().await?;
        let took = query_each(&transaction, spends.chain(writes).collect())
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<i32>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(classify)?;
        let missed = (0..spent.len()).find(|&index| !took.iter().any(|&row| row as usize == index));
        if let Some(index) = missed {
            transaction.rollback().await.map_err(classify)?;
            return Ok(Some(index));
        }
        transaction.commit().await.map_err(classify)?;
        Ok(None)
    }

    async fn find_session(&self, session_id: Uuid) -> Result<Option<SessionRecord>, AuthError> {
        let found = session::Entity::find_by_id(session_id)
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(found.map(session_record))
    }

    async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(RefreshTokenRecord, SessionRecord)>, AuthError> {
        let Some(token) = refresh_token::Entity::find_by_id(token_hash.to_owned())
            .one(&self.connection)
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
        let session = self.find_session(token.session_id).await?;
        Ok(session.map(|session| {
            let token = RefreshTokenRecord {
                token_hash: token.token_hash,
                session_id: token.session_id,
                generation: token.generation,
                issued_at: token.issued_at,
                retired_at: token.retired_at,
            };
            (token, session)
        }))
    }

    async fn retire_refresh_token(
        &self,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let result = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RetiredAt, Expr::value(at))
            .filter(refresh_token::Column::TokenHash.eq(token_hash))
            .filter(refresh_token::Column::RetiredAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected == 1)
    }

    async fn extend_session(&self, token: &RefreshTokenRecord) -> Result<bool, AuthError> {
        let transaction = self.begin_write().await?;
        let extended = session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(token.issued_at))
            .col_expr(
                session::Column::RefreshGeneration,
                Expr::value(token.generation),
            )
            .filter(session::Column::Id.eq(token.session_id))
            .filter(session::Column::EndedAt.is_null())
            .filter(session::Column::RefreshGeneration.lte(token.generation))
            .exec(&transaction)
            .await
            .map_err(classify)?;
        if extended.rows_affected != 1 {
            return Ok(false);
        }
        refresh_token::Entity::insert(refresh_token_row(token))
            .exec_without_returning(&transaction)
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn update_session_authentication(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        authentication: &Authentication,
    ) -> Result<bool, AuthError> {
        let result = session::Entity::update_many()
            .col_expr(session::Column::AuthTime, Expr::value(authentication.at))
            .col_expr(
                session::Column::Amr,
                Expr::value(authentication.stored_methods()),
            )
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::EndedAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected == 1)
    }

    async fn end_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let result = session::Entity::update_many()
            .col_expr(session::Column::EndedAt, Expr::value(at))
            .col_expr(session::Column::EndReason, Expr::value(reason))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::EndedAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        let ended = result.rows_affected == 1;
        if ended {
            self.notify(&RevocationEvent::Session {
                session_id,
                user_id,
                ended_at: at.timestamp(),
            })
            .await;
        }
        Ok(ended)
    }

    async fn end_sessions_of(
        &self,
        user_id: Uuid,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let result = session::Entity::update_many()
            .col_expr(session::Column::EndedAt, Expr::value(at))
            .col_expr(session::Column::EndReason, Expr::value(reason))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::EndedAt.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    async fn live_sessions_of(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, AuthError> {
        let rows = session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::EndedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(session_record).collect())
    }

    async fn sessions_ended_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, i64)>, AuthError> {
        let rows: Vec<(Uuid, DateTime<Utc>)> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .column(session::Column::EndedAt)
            .filter(session::Column::EndedAt.gte(since))
            .into_tuple()
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(id, ended_at)| (id, ended_at.timestamp()))
            .collect())
    }

    async fn delete_sessions_finished_before(
        &self,
        ended_before: DateTime<Utc>,
        used_before: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let transaction = self.begin_write().await?;
        let deleted = session::Entity::delete_many()
            .filter(
                session::Column::EndedAt
                    .lt(ended_before)
                    .or(session::Column::ExpiresAt.lt(ended_before))
                    .or(session::Column::LastUsedAt.lt(used_before)),
            )
            .exec(&transaction)
            .await
            .map_err(classify)?;
        refresh_token::Entity::delete_many()
            .filter(
                refresh_token::Column::SessionId.not_in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(session::Column::Id)
                        .from(session::Entity)
                        .to_owned(),
                ),
            )
            .exec(&transaction)
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)?;
        Ok(deleted.rows_affected)
    }
}

fn session_record(row: session::Model) -> SessionRecord {
    SessionRecord {
        id: row.id,
        user_id: row.user_id,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.expires_at,
        ended_at: row.ended_at,
        refresh_generation: row.refresh_generation,
        authentication: Authentication::from_stored(
            row.auth_time,
            row.amr.as_deref(),
            row.created_at,
        ),
        client_address: row.client_address,
        user_agent: row.user_agent,
    }
}

fn refresh_token_row(token: &RefreshTokenRecord) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        token_hash: Set(token.token_hash.clone()),
        session_id: Set(token.session_id),
        generation: Set(token.generation),
        issued_at: Set(token.issued_at),
        retired_at: Set(token.retired_at),
    }
}

/// The INSERTs of a new session's row and its first refresh token's.
fn session_rows(
    backend: DbBackend,
    record: &SessionRecord,
    first_token: &RefreshTokenRecord,
) -> [Statement; 2] {
    let session = session::Entity::insert(session::ActiveModel {
        id: Set(record.id),
        user_id: Set(record.user_id),
        created_at: Set(record.created_at),
        last_used_at: Set(record.last_used_at),
        expires_at: Set(record.expires_at),
        ended_at: Set(record.ended_at),
        end_reason: Set(None),
        refresh_generation: Set(record.refresh_generation),
        client_address: Set(record.client_address.clone()),
        user_agent: Set(record.user_agent.clone()),
        auth_time: Set(Some(record.authentication.at)),
        amr: Set(Some(record.authentication.stored_methods())),
    });
    let token = refresh_token::Entity::insert(refresh_token_row(first_token));
    [session.build(backend), token.build(backend)]
}

/// The statement that spends `spend`, returning `index` if it took (one
/// row at most: each spend names its row by key), so that the rows of a
/// batch say which spends took.
fn spending(backend: DbBackend, spend: &Spend<'_>, index: usize) -> Statement {
    // A literal of our own count, not a parameter: PostgreSQL cannot infer
    // the type of a parameter that only a RETURNING list uses.
    let took = Query::returning().expr(Expr::cust(format!("CAST({index} AS INTEGER)")));
    match *spend {
        Spend::PasskeyCeremony { id, kind } => {
            backend.build(passkeys::ceremony_deletion(id, kind).returning(took))
        }
        Spend::PasskeyUse(used) => backend.build(passkeys::use_recording(used).returning(took)),
        Spend::MfaTicket(ticket_hash) => {
            backend.build(factors::mfa_ticket_deletion(ticket_hash).returning(took))
        }
        Spend::TotpStep { user_id, step } => {
            backend.build(factors::totp_step_spending(user_id, step).returning(took))
        }
        Spend::RecoveryCode { id, at } => {
            backend.build(factors::recovery_code_spending(id, at).returning(took))
        }
    }
}
