//! The moment a caller stops waiting for an answer. The surfaces learn it
//! (gRPC from `grpc-timeout`); the domain only compares it with how long its
//! work is expected to take, so that a call it cannot finish in time is
//! refused at once instead of running into the deadline.

use std::time::{Duration, Instant};

/// Longer than any call lasts; longer timeouts are cut to it, so that the
/// sum below cannot overflow (`grpc-timeout` allows 11,000 years).
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// When the caller gives up on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self(Instant::now() + timeout.min(FAR))
    }

    /// The time left, zero once it has passed.
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remaining_time_shrinks_to_zero() {
        let deadline = Deadline::after(Duration::from_secs(60));
        assert!(deadline.remaining() <= Duration::from_secs(60));
        assert!(deadline.remaining() > Duration::from_secs(59));
        assert_eq!(Deadline::after(Duration::ZERO).remaining(), Duration::ZERO);
        assert!(Deadline::after(Duration::MAX).remaining() > Duration::from_secs(3600));
    }
}
