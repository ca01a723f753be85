//! The UserStore port on sea-orm: accounts.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, BinOper, Expr, ExprTrait as _, Func, JoinType, Query, SelectStatement,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait as _, EntityTrait, FromQueryResult, IdenStatic,
    Iterable as _, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use uuid::Uuid;

use super::database::{Database, classify};
use super::email::{delete_email_of, email_record};
use super::entities::{email_address, passkey, rate_limit, recovery_code, totp_factor, user};
use super::factors::{delete_factors_of, totp_record};
use super::outbox::queue_all;
use crate::domain::{
    AccountFacts, AuthError, LOGIN_FAILURES_KEY_PREFIX, OutboxEntry, RevocationEvent, UserRecord,
    UserStore, second_factor_failure_key,
};

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

    async fn account_facts(&self, user_id: Uuid) -> Result<Option<AccountFacts>, AuthError> {
        let Some(row) = self
            .connection
            .query_one(&account_facts_query(user_id))
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
        let user = user::Model::from_query_result(&row, "u_").map_err(classify)?;
        let email =
            email_address::Model::from_query_result_optional(&row, "e_").map_err(classify)?;
        let totp = totp_factor::Model::from_query_result_optional(&row, "t_").map_err(classify)?;
        let has_passkey: bool = row.try_get("", "has_passkey").map_err(classify)?;
        let recovery_codes_left: i64 = row.try_get("", "recovery_codes_left").map_err(classify)?;
        Ok(Some(AccountFacts {
            user: user_record(user),
            email: email.map(email_record),
            totp: totp.map(totp_record),
            has_passkey,
            recovery_codes_left: u32::try_from(recovery_codes_left).map_err(AuthError::internal)?,
            login_failures_tat: row.try_get("", "login_failures_tat").map_err(classify)?,
            second_factor_failures_tat: row
                .try_get("", "second_factor_failures_tat")
                .map_err(classify)?,
        }))
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

    async fn delete_user(&self, user_id: Uuid, notices: &[OutboxEntry]) -> Result<bool, AuthError> {
        let transaction = self.begin_write().await?;
        delete_factors_of(&transaction, user_id).await?;
        delete_email_of(&transaction, user_id).await?;
        let result = user::Entity::delete_by_id(user_id)
            .exec(&transaction)
            .await
            .map_err(classify)?;
        if result.rows_affected > 0 {
            queue_all(&transaction, notices).await?;
        }
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
        notices: &[OutboxEntry],
    ) -> Result<(), AuthError> {
        let update = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .filter(user::Column::Id.eq(user_id));
        if notices.is_empty() {
            update.exec(&self.connection).await.map_err(classify)?;
            return Ok(());
        }
        let transaction = self.begin_write().await?;
        update.exec(&transaction).await.map_err(classify)?;
        queue_all(&transaction, notices).await?;
        transaction.commit().await.map_err(classify)
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

/// One row: the account's columns (prefixed `u_`), its address's (`e_`)
/// and TOTP's (`t_`), null when it has none, whether it has a passkey, how
/// many recovery codes it has left, and its two failure budgets.
fn account_facts_query(user_id: Uuid) -> SelectStatement {
    let login_budget = Alias::new("login_budget");
    let second_factor_budget = Alias::new("second_factor_budget");
    let mut query = Query::select();
    select_prefixed::<user::Entity>(&mut query, "u_");
    select_prefixed::<email_address::Entity>(&mut query, "e_");
    select_prefixed::<totp_factor::Entity>(&mut query, "t_");
    let user_id_column = || Expr::col((user::Entity, user::Column::Id));
    query
        .expr_as(
            Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(passkey::Entity)
                    .and_where(
                        Expr::col((passkey::Entity, passkey::Column::UserId)).eq(user_id_column()),
                    )
                    .to_owned(),
            ),
            "has_passkey",
        )
        .expr_as(
            Expr::expr(
                Query::select()
                    .expr(Func::count(Expr::col((
                        recovery_code::Entity,
                        recovery_code::Column::Id,
                    ))))
                    .from(recovery_code::Entity)
                    .and_where(
                        Expr::col((recovery_code::Entity, recovery_code::Column::UserId))
                            .eq(user_id_column()),
                    )
                    .and_where(
                        Expr::col((recovery_code::Entity, recovery_code::Column::UsedAt)).is_null(),
                    )
                    .to_owned(),
            ),
            "recovery_codes_left",
        )
        .expr_as(
            Expr::col((login_budget.clone(), rate_limit::Column::Tat)),
            "login_failures_tat",
        )
        .expr_as(
            Expr::col((second_factor_budget.clone(), rate_limit::Column::Tat)),
            "second_factor_failures_tat",
        )
        .from(user::Entity)
        .left_join(
            email_address::Entity,
            Expr::col((email_address::Entity, email_address::Column::UserId)).eq(user_id_column()),
        )
        .left_join(
            totp_factor::Entity,
            Expr::col((totp_factor::Entity, totp_factor::Column::UserId)).eq(user_id_column()),
        )
        .join_as(
            JoinType::LeftJoin,
            rate_limit::Entity,
            login_budget.clone(),
            Expr::col((login_budget, rate_limit::Column::Key)).eq(Expr::val(
                LOGIN_FAILURES_KEY_PREFIX,
            )
            .binary(
                // Concatenation, in SQLite and PostgreSQL alike.
                BinOper::Custom("||"),
                Expr::col((user::Entity, user::Column::UsernameCanonical)),
            )),
        )
        .join_as(
            JoinType::LeftJoin,
            rate_limit::Entity,
            second_factor_budget.clone(),
            Expr::col((second_factor_budget, rate_limit::Column::Key))
                .eq(second_factor_failure_key(user_id)),
        )
        .and_where(user_id_column().eq(user_id));
    query.to_owned()
}

/// Selects every column of `E`, each named `prefix` + its name, as the
/// models' `from_query_result(row, prefix)` read them back.
pub(super) fn select_prefixed<E: EntityTrait + Default>(query: &mut SelectStatement, prefix: &str) {
    for column in E::Column::iter() {
        query.expr_as(
            Expr::col((E::default(), column)),
            Alias::new(format!("{prefix}{}", column.as_str())),
        );
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
