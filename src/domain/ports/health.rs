//! The database's own state, for health checks and metrics.

use std::future::Future;

use crate::domain::AuthError;

/// Whether the database answers, and how its connections are used.
pub trait StoreHealth: Send + Sync + 'static {
    /// Connections of the pool: `(in use, idle)`.
    fn connection_counts(&self) -> (usize, usize);

    /// Whether the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), AuthError>> + Send;
}
