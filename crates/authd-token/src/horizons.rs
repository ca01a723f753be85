//! How long what is known about a token matters, in one place for authd and
//! every verifier: a token is accepted until the clock leeway past its
//! `exp`, and lives at most its lifetime, so whatever refuses it (a
//! revocation, a session's end, a cutoff) or verifies it (a signing key) is
//! needed that long and no longer.

use std::time::Duration;

use crate::verifier::CLOCK_LEEWAY;

/// The earliest `exp` (Unix seconds) of a token still accepted at `now`:
/// one that expired before is refused by every verifier anyway, so its
/// revocation can be forgotten.
pub fn earliest_accepted_expiry(now: i64) -> i64 {
    now - CLOCK_LEEWAY.as_secs().cast_signed()
}

/// The latest `nbf` (Unix seconds) of a token accepted at `now`.
pub fn latest_accepted_start(now: i64) -> i64 {
    now + CLOCK_LEEWAY.as_secs().cast_signed()
}

/// How long after a moment a token issued at or before it can still be
/// accepted: its lifetime plus the clock leeway. A session's end, a cutoff
/// or a signing key's successor must be remembered this long.
pub fn acceptance_window(token_lifetime: Duration) -> Duration {
    token_lifetime + CLOCK_LEEWAY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_counts_for_the_leeway_past_its_expiry_and_before_its_start() {
        assert_eq!(earliest_accepted_expiry(1_000), 990);
        assert_eq!(latest_accepted_start(1_000), 1_010);
        assert_eq!(
            acceptance_window(Duration::from_secs(900)),
            Duration::from_secs(910)
        );
    }
}
