//! Admission of password hashes by expected wait. A call is admitted when
//! the hashes ahead of it and its own, at the recently measured pace, would
//! be done within both the configured bound and the client's deadline;
//! otherwise it is refused at once, with when to come back. Counting places
//! in a queue instead refuses bursts the server would finish in a fraction
//! of a second, and still lets a call wait past its deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::error::HashError;
use crate::deadline::Deadline;

/// The share of a client's remaining deadline a hash may be expected to
/// fill. The rest is kept for what follows the hash (a database write, a
/// token) and for the estimate's error: under a flood the runtime takes
/// its share of the cores, and a hash then takes a fifth longer than when
/// it was last measured at rest (BENCHMARKS.md).
const DEADLINE_SHARE: (u32, u32) = (3, 4);

/// Decides which hashing calls may wait for a slot.
#[derive(Debug)]
pub struct Admission {
    /// Hashes admitted and not yet done: before their turn (a Login's
    /// database reads, the wait for a slot) or running.
    pending: AtomicUsize,
    /// What one hash takes lately, smoothed alike both ways (by an eighth of
    /// each difference, as TCP smooths round-trip times): the pace the
    /// bound is checked against, a soft target where a slow moment should
    /// not refuse a burst the server can finish.
    typical: Estimate,
    /// The same, but taking slowdowns in at once (by half of each
    /// difference) and recoveries gradually, and starting from twice the
    /// time measured at start (hashes in service run at idle priority
    /// beside the runtime, and take longer): the pace client deadlines are
    /// checked against, since a hash that ends after its deadline is wasted
    /// and an estimate too high only refuses a few more for a moment.
    cautious: Estimate,
    /// Hashes computed at once.
    slots: usize,
    /// The longest a call may expect to take, its own hash included.
    max_wait: Duration,
}

impl Admission {
    /// Admission for `slots` concurrent hashes, with the time one hash was
    /// measured to take at start as the first estimate.
    pub fn new(slots: usize, max_wait: Duration, first_hash: Duration) -> Arc<Self> {
        Arc::new(Self {
            pending: AtomicUsize::new(0),
            typical: Estimate::new(first_hash, 8, 8),
            cautious: Estimate::new(first_hash.saturating_mul(2), 2, 8),
            slots: slots.max(1),
            max_wait,
        })
    }

    /// Admits one hash if it is expected to be done in time, counting it
    /// until its [`HashTicket`] is dropped; otherwise [`HashError::Overloaded`]
    /// with when it would be admitted.
    pub fn admit(self: &Arc<Self>, deadline: Option<Deadline>) -> Result<HashTicket, HashError> {
        let (numerator, denominator) = DEADLINE_SHARE;
        let deadline_budget =
            deadline.map(|deadline| deadline.remaining() * numerator / denominator);
        let (typical, cautious) = (self.typical.get(), self.cautious.get());
        let mut refused = None;
        let admitted = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ahead| {
                let by_bound = verdict(ahead, typical, self.slots, self.max_wait);
                let by_deadline = deadline_budget.map_or(Ok(()), |budget| {
                    verdict(ahead, cautious, self.slots, budget)
                });
                match (by_bound, by_deadline) {
                    (Ok(()), Ok(())) => Some(ahead + 1),
                    (Err(retry_after), Ok(())) | (Ok(()), Err(retry_after)) => {
                        refused = Some(retry_after);
                        None
                    }
                    (Err(one), Err(other)) => {
                        refused = Some(one.max(other));
                        None
                    }
                }
            });
        match admitted {
            Ok(ahead) => {
                crate::metrics::hash_queue_depth(self.waiting(ahead + 1));
                Ok(HashTicket(Arc::clone(self)))
            }
            Err(_) => {
                crate::metrics::hash_refused();
                Err(HashError::Overloaded {
                    retry_after: refused.unwrap_or(typical),
                })
            }
        }
    }

    /// Hashes admitted and not yet done.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Of `pending` hashes, how many wait for a slot (the rest run).
    fn waiting(&self, pending: usize) -> usize {
        pending.saturating_sub(self.slots)
    }
}

/// A moving average of hash times, in nanoseconds, that a new measurement
/// moves by `1/slower` of the difference when it is slower and `1/faster`
/// when it is faster.
#[derive(Debug)]
struct Estimate {
    nanos: AtomicU64,
    slower: u64,
    faster: u64,
}

impl Estimate {
    fn new(first: Duration, slower: u64, faster: u64) -> Self {
        Self {
            nanos: AtomicU64::new(nanos(first)),
            slower,
            faster,
        }
    }

    fn get(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn record(&self, took: Duration) {
        let sample = nanos(took);
        let moved = |estimate: u64| {
            Some(if sample >= estimate {
                estimate + (sample - estimate) / self.slower
            } else {
                estimate - (estimate - sample) / self.faster
            })
        };
        // Cannot fail: `moved` always returns a value.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, moved);
    }
}

/// An admitted hash, counted as pending until dropped: when its hash is
/// done, or when its call ends before (refused by a later check, or
/// cancelled while it waits for a slot).
#[derive(Debug)]
pub struct HashTicket(Arc<Admission>);

impl HashTicket {
    /// Takes the time the hash took into the estimates.
    pub(super) fn record(&self, took: Duration) {
        self.0.typical.record(took);
        self.0.cautious.record(took);
    }
}

impl Drop for HashTicket {
    fn drop(&mut self) {
        let pending = self.0.pending.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::hash_queue_depth(self.0.waiting(pending.saturating_sub(1)));
    }
}

/// Whether a hash with `ahead` hashes admitted before it, each taking
/// `hash_time` on one of `slots` slots, is done within `budget`; if not,
/// how long until it would be.
fn verdict(
    ahead: usize,
    hash_time: Duration,
    slots: usize,
    budget: Duration,
) -> Result<(), Duration> {
    let expected = expected_completion(ahead, hash_time, slots);
    if expected <= budget {
        return Ok(());
    }
    // The hashes ahead finish at `slots` per hash time, so the expected time
    // falls by as much as passes: after `expected - budget` the call fits.
    // A budget shorter than one hash never fits; the hint is then when the
    // hashes ahead are done. Never less than one hash.
    Err(expected
        .saturating_sub(budget.max(hash_time))
        .max(hash_time))
}

/// When a hash with `ahead` hashes before it is expected to be done: the
/// ones ahead shared among the slots, then its own.
fn expected_completion(ahead: usize, hash_time: Duration, slots: usize) -> Duration {
    let ahead = u32::try_from(ahead).unwrap_or(u32::MAX);
    let slots = u32::try_from(slots.max(1)).unwrap_or(u32::MAX);
    (hash_time.saturating_mul(ahead) / slots).saturating_add(hash_time)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_expected_time_shares_the_hashes_ahead_among_the_slots() {
        assert_eq!(expected_completion(0, 20 * MS, 2), 20 * MS);
        assert_eq!(expected_completion(1, 20 * MS, 2), 30 * MS);
        // A hundred registrations on two cores: the last is done in ~1 s.
        assert_eq!(expected_completion(99, 20 * MS, 2), 1010 * MS);
        assert_eq!(expected_completion(3, 20 * MS, 1), 80 * MS);
    }

    #[test]
    fn a_call_is_admitted_while_it_fits_its_budget() {
        assert_eq!(verdict(8, 20 * MS, 2, 100 * MS), Ok(()));
        // 9 ahead: 110 ms, 10 ms too long; the queue gains that much in
        // 10 ms, but the hint is never below one hash.
        assert_eq!(verdict(9, 20 * MS, 2, 100 * MS), Err(20 * MS));
        // 99 ahead: 1010 ms against 100 ms.
        assert_eq!(verdict(99, 20 * MS, 2, 100 * MS), Err(910 * MS));
    }

    #[test]
    fn a_budget_shorter_than_one_hash_never_fits() {
        assert_eq!(verdict(0, 20 * MS, 2, 19 * MS), Err(20 * MS));
        // Come back once the 10 ahead are done: 100 ms.
        assert_eq!(verdict(10, 20 * MS, 2, 5 * MS), Err(100 * MS));
    }

    #[test]
    fn the_client_deadline_and_the_bound_both_limit_admission() {
        let admission = Admission::new(1, 100 * MS, 20 * MS);
        let first = admission.admit(None).expect("fits the bound");
        // Deadlines go by twice the hash time until hashes are measured: one
        // ahead, 80 ms expected against 3/4 of 30 ms. Back once the one
        // ahead is done, at least one hash later.
        let hurried = admission.admit(Some(Deadline::after(30 * MS)));
        assert!(
            matches!(hurried, Err(HashError::Overloaded { retry_after }) if retry_after == 40 * MS),
            "{hurried:?}"
        );
        let patient = admission
            .admit(Some(Deadline::after(120 * MS)))
            .expect("80 ms fits 3/4 of 120 ms");
        let tickets: Vec<HashTicket> = (0..5).map_while(|_| admission.admit(None).ok()).collect();
        assert_eq!(tickets.len(), 3, "100 ms holds five hashes of 20 ms");
        assert_eq!(admission.pending(), 5);
        drop((first, patient, tickets));
        assert_eq!(admission.pending(), 0);
        assert!(
            admission
                .admit(Some(Deadline::after(Duration::ZERO)))
                .is_err()
        );
    }

    #[test]
    fn the_estimates_follow_measurements_one_cautiously() {
        let admission = Admission::new(2, Duration::from_secs(1), 80 * MS);
        assert_eq!(admission.cautious.get(), 160 * MS);
        let ticket = admission.admit(None).expect("admitted");
        ticket.record(40 * MS);
        assert_eq!(admission.typical.get(), 75 * MS);
        assert_eq!(admission.cautious.get(), 145 * MS);
        ticket.record(200 * MS);
        assert_eq!(admission.typical.get(), 90625 * MS / 1000);
        assert_eq!(admission.cautious.get(), 1725 * MS / 10);
        for _ in 0..200 {
            ticket.record(20 * MS);
        }
        for estimate in [admission.typical.get(), admission.cautious.get()] {
            assert!(estimate >= 20 * MS && estimate < 21 * MS, "{estimate:?}");
        }
    }

    #[test]
    fn a_slowdown_refuses_hurried_calls_at_once_and_bursts_later() {
        let admission = Admission::new(1, Duration::from_secs(1), 10 * MS);
        let ticket = admission.admit(None).expect("admitted");
        ticket.record(50 * MS);
        // Cautious: 35 ms; with one ahead, 70 ms against 3/4 of 40 ms.
        assert!(admission.admit(Some(Deadline::after(40 * MS))).is_err());
        // Typical: 15 ms; 66 hashes in all fit the bound of 1 s.
        let burst: Vec<HashTicket> = (0..70).map_while(|_| admission.admit(None).ok()).collect();
        assert_eq!(burst.len(), 65);
    }
}
