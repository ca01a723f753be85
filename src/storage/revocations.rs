//! The RevocationStore port on sea-orm: revoked tokens, session cutoffs, and PostgreSQL's LISTEN for other instances' announcements.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sqlx,
};
use uuid::Uuid;

use super::database::{Database, REVOCATION_CHANNEL, classify};
use super::entities::{revoked_token, session_cutoff};
use super::notices;
use crate::domain::{AuthError, RevocationEvent, RevocationStore, RevokedToken};

impl RevocationStore for Database {
    async fn insert_revocation(&self, revocation: &RevokedToken) -> Result<(), AuthError> {
        let row = revoked_token::ActiveModel {
            jti: Set(revocation.jti.clone()),
            user_id: Set(revocation.user_id),
            expires_at: Set(revocation.expires_at),
            revoked_at: Set(Utc::now()),
        };
        revoked_token::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        self.notify(&RevocationEvent::Token(revocation.clone()))
            .await;
        Ok(())
    }

    async fn revocations_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RevokedToken>, AuthError> {
        let rows = revoked_token::Entity::find()
            .filter(revoked_token::Column::RevokedAt.gte(since))
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(revocation).collect())
    }

    async fn revocations_in_force(
        &self,
        now: i64,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<RevokedToken>, AuthError> {
        let mut query =
            revoked_token::Entity::find().filter(revoked_token::Column::ExpiresAt.gte(now));
        if let Some(after) = after {
            query = query.filter(revoked_token::Column::Jti.gt(after));
        }
        let rows = query
            .order_by_asc(revoked_token::Column::Jti)
            .limit(limit)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(revocation).collect())
    }

    async fn delete_revocations_expired_before(&self, before: i64) -> Result<u64, AuthError> {
        let result = revoked_token::Entity::delete_many()
            .filter(revoked_token::Column::ExpiresAt.lt(before))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }

    async fn insert_session_cutoff(
        &self,
        user_id: Uuid,
        revoked_through: i64,
    ) -> Result<(), AuthError> {
        let current = Expr::col((
            session_cutoff::Entity,
            session_cutoff::Column::RevokedThrough,
        ));
        let later =
            Expr::case(current.clone().gt(revoked_through), current).finally(revoked_through);
        let row = session_cutoff::ActiveModel {
            user_id: Set(user_id),
            revoked_through: Set(revoked_through),
        };
        session_cutoff::Entity::insert(row)
            .on_conflict(
                OnConflict::column(session_cutoff::Column::UserId)
                    .value(session_cutoff::Column::RevokedThrough, later)
                    .to_owned(),
            )
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        self.notify(&RevocationEvent::AllOf {
            user_id,
            revoked_through,
        })
        .await;
        Ok(())
    }

    async fn session_cutoffs(&self) -> Result<Vec<(Uuid, i64)>, AuthError> {
        let rows = session_cutoff::Entity::find()
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.user_id, row.revoked_through))
            .collect())
    }

    async fn listen_for_revocations(
        &self,
        mut on_event: impl FnMut(RevocationEvent) + Send,
    ) -> Result<(), AuthError> {
        if self.connection.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let pool = self.connection.get_postgres_connection_pool();
        let mut listener = sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(|error| AuthError::Unavailable(error.into()))?;
        listener
            .listen(REVOCATION_CHANNEL)
            .await
            .map_err(|error| AuthError::Unavailable(error.into()))?;
        loop {
            // Reconnects by itself; what is missed meanwhile, the periodic
            // catch-up finds.
            let notification = listener
                .recv()
                .await
                .map_err(|error| AuthError::Unavailable(error.into()))?;
            match notices::decode(notification.payload()) {
                Some(event) => on_event(event),
                None => tracing::warn!(
                    payload = notification.payload(),
                    "unreadable revocation notice"
                ),
            }
        }
    }
}

fn revocation(row: revoked_token::Model) -> RevokedToken {
    RevokedToken {
        jti: row.jti,
        user_id: row.user_id,
        expires_at: row.expires_at,
    }
}
