//! The RateLimitStore port on sea-orm: shared rate-limit budgets.

use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::database::{Database, classify};
use super::entities::rate_limit;
use crate::domain::{AuthError, RateLimitStore};

impl RateLimitStore for Database {
    async fn rate_limit_tat(&self, key: &str) -> Result<Option<i64>, AuthError> {
        let row = rate_limit::Entity::find_by_id(key.to_owned())
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(row.map(|row| row.tat))
    }

    async fn advance_rate_limit_tat(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<(), AuthError> {
        let current = Expr::col((rate_limit::Entity, rate_limit::Column::Tat));
        // max(tat, now) + interval, spelled with CASE: SQLite has no GREATEST.
        let advanced = Expr::case(current.clone().gt(now_ms), current)
            .finally(now_ms)
            .add(interval_ms);
        let row = rate_limit::ActiveModel {
            key: Set(key.to_owned()),
            tat: Set(now_ms + interval_ms),
        };
        rate_limit::Entity::insert(row)
            .on_conflict(
                OnConflict::column(rate_limit::Column::Key)
                    .value(rate_limit::Column::Tat, advanced)
                    .to_owned(),
            )
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn try_spend_rate_limit(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        tolerance_ms: i64,
    ) -> Result<bool, AuthError> {
        let first = rate_limit::ActiveModel {
            key: Set(key.to_owned()),
            tat: Set(now_ms + interval_ms),
        };
        let inserted = rate_limit::Entity::insert(first)
            .on_conflict(
                OnConflict::column(rate_limit::Column::Key)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        if inserted == 1 {
            return Ok(true);
        }
        let current = Expr::col((rate_limit::Entity, rate_limit::Column::Tat));
        let advanced = Expr::case(current.clone().gt(now_ms), current)
            .finally(now_ms)
            .add(interval_ms);
        let updated = rate_limit::Entity::update_many()
            .col_expr(rate_limit::Column::Tat, advanced)
            .filter(rate_limit::Column::Key.eq(key))
            .filter(rate_limit::Column::Tat.lte(now_ms + tolerance_ms))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(updated.rows_affected == 1)
    }

    async fn delete_rate_limit(&self, key: &str) -> Result<(), AuthError> {
        rate_limit::Entity::delete_by_id(key.to_owned())
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete_rate_limits_before(&self, now_ms: i64) -> Result<u64, AuthError> {
        let result = rate_limit::Entity::delete_many()
            .filter(rate_limit::Column::Tat.lt(now_ms))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }
}
