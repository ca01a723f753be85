//! The rate limits port: budgets that instances sharing a database share.

use std::future::Future;

use crate::domain::AuthError;

/// Where shared rate-limit budgets are kept (GCRA theoretical arrival
/// times).
/// Every method fails with `AuthError::Unavailable` when the database
/// cannot be reached and with `AuthError::Internal` on anything unexpected.
pub trait RateLimitStore: Send + Sync + 'static {
    /// The GCRA theoretical arrival time (Unix ms) of a rate-limit key.
    fn rate_limit_tat(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<i64>, AuthError>> + Send;

    /// Moves a key's theoretical arrival time to `max(tat, now) + interval`,
    /// atomically, so that instances sharing the database share the budget.
    fn advance_rate_limit_tat(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Moves a key's theoretical arrival time as
    /// [`advance_rate_limit_tat`](Self::advance_rate_limit_tat) does, but
    /// only while it is at most `tolerance_ms` ahead of `now_ms` (the budget
    /// is not spent); returns whether it moved. One conditional write, so
    /// that of racing spends on any number of instances no more than the
    /// budget allows get through.
    fn try_spend_rate_limit(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        tolerance_ms: i64,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Forgets a key: its budget is full again.
    fn delete_rate_limit(&self, key: &str) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Forgets keys whose budget is full again (`tat` before `now_ms`).
    fn delete_rate_limits_before(
        &self,
        now_ms: i64,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;
}
