//! The UserStore port on sea-orm: accounts.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    TransactionTrait as _,
};
use uuid::Uuid;

use super::database::{Database, classify};
use super::email::delete_email_of;
use super::entities::user;
use super::factors::delete_factors_of;
use crate::domain::{AuthError, RevocationEvent, UserRecord, UserStore};

impl UserStore for Database {
    async fn insert_user(&self, record: UserRecord) -> Result<(), AuthError> {
        insert_user_row(&self.connection, record).await
    }

    async fn find_user(&self, username_canonical: &str) -> Result<Option<UserRecord>, AuthError> {
        let found = user::Entity::find()
            .filter(user::Column::UsernameCanonical.eq(username_canonical))
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(found.map(user_record))
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, AuthError> {
        let found = user::Entity::find_by_id(user_id)
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(found.map(user_record))
    }

    async fn list_users(
        &self,
        containing: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<UserRecord>, AuthError> {
        let mut query = user::Entity::find();
        if let Some(containing) = containing {
            query = query.filter(user::Column::UsernameCanonical.contains(containing));
        }
        if let Some(after) = after {
            query = query.filter(user::Column::UsernameCanonical.gt(after));
        }
        let rows = query
            .order_by_asc(user::Column::UsernameCanonical)
            .limit(limit)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(user_record).collect())
    }

    async fn delete_user(&self, user_id: Uuid) -> Result<bool, AuthError> {
        let transaction = self.connection.begin().await.map_err(classify)?;
        delete_factors_of(&transaction, user_id).await?;
        delete_email_of(&transaction, user_id).await?;
        let result = user::Entity::delete_by_id(user_id)
            .exec(&transaction)
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)?;
        Ok(result.rows_affected > 0)
    }

    async fn set_user_disabled(
        &self,
        user_id: Uuid,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), AuthError> {
        user::Entity::update_many()
            .col_expr(user::Column::DisabledAt, Expr::value(disabled_at))
            .filter(user::Column::Id.eq(user_id))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        self.notify(&RevocationEvent::AccountDisabled {
            user_id,
            disabled: disabled_at.is_some(),
        })
        .await;
        Ok(())
    }

    async fn disabled_users(&self) -> Result<Vec<Uuid>, AuthError> {
        user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::DisabledAt.is_not_null())
            .into_tuple()
            .all(&self.connection)
            .await
            .map_err(classify)
    }

    async fn update_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
    ) -> Result<(), AuthError> {
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .filter(user::Column::Id.eq(user_id))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn set_first_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
    ) -> Result<bool, AuthError> {
        let result = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .filter(user::Column::Id.eq(user_id))
            .filter(user::Column::PasswordHash.is_null())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected == 1)
    }
}

/// Inserts an account on `connection` (the pool, or a transaction that
/// stores more with it), mapping the unique index's refusal.
pub(super) async fn insert_user_row(
    connection: &impl sea_orm::ConnectionTrait,
    record: UserRecord,
) -> Result<(), AuthError> {
    let row = user::ActiveModel {
        id: Set(record.id),
        username: Set(record.username),
        username_canonical: Set(record.username_canonical),
        password_hash: Set(record.password_hash),
        created_at: Set(record.created_at),
        disabled_at: Set(record.disabled_at),
    };
    match user::Entity::insert(row)
        .exec_without_returning(connection)
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(AuthError::UsernameTaken)
        }
        Err(error) => Err(classify(error)),
    }
}

fn user_record(row: user::Model) -> UserRecord {
    UserRecord {
        id: row.id,
        username: row.username,
        username_canonical: row.username_canonical,
        password_hash: row.password_hash,
        created_at: row.created_at,
        disabled_at: row.disabled_at,
    }
}
