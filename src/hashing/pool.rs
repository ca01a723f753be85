//! Where hashes run: on the blocking pool, a bounded number at once, at the
//! idle scheduling class, each admitted first by expected wait
//! (`super::admission`), so that a flood is refused at once and every
//! admitted call is answered before its deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, TryAcquireError};
use tracing::Instrument;

use super::admission::{Admission, HashTicket};
use super::error::HashError;
use crate::deadline::Deadline;

/// Runs hashes off the async runtime, `slots` at a time.
#[derive(Debug)]
pub struct HashPool {
    slots: Arc<Semaphore>,
    admission: Arc<Admission>,
}

impl HashPool {
    /// `slots` hashes at once; a call admitted only when it is expected to
    /// be done within `max_wait`, starting from `first_hash` as the time one
    /// hash takes.
    pub fn new(slots: usize, max_wait: Duration, first_hash: Duration) -> Self {
        let slots = slots.max(1);
        // The series exists from the start, not only after the first wait.
        crate::metrics::hash_queue_depth(0);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            admission: Admission::new(slots, max_wait, first_hash),
        }
    }

    /// Admits one hash if it is expected to be done before `deadline` and
    /// within the configured bound, or refuses at once with
    /// [`HashError::Overloaded`]. A ticket dropped unused gives its place
    /// back.
    pub fn admit(&self, deadline: Option<Deadline>) -> Result<HashTicket, HashError> {
        self.admission.admit(deadline)
    }

    /// Runs `work` on the blocking pool once a slot is free, in the caller's
    /// tracing span. The slot and the admission ticket stay taken until the
    /// work is done, even if the caller gives up (a cancelled RPC cannot stop
    /// a hash half-way); a call cancelled while it waits gives its ticket
    /// back at once.
    pub async fn run<T: Send + 'static>(
        &self,
        ticket: HashTicket,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(TryAcquireError::NoPermits) => Arc::clone(&self.slots)
                .acquire_owned()
                .instrument(tracing::debug_span!("wait_for_hash_slot"))
                .await
                .map_err(HashError::failed)?,
            Err(TryAcquireError::Closed) => return Err(HashError::failed("hash slots closed")),
        };
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            yield_to_the_runtime();
            let started = Instant::now();
            let outcome = span.in_scope(work);
            let took = started.elapsed();
            ticket.record(took);
            crate::metrics::hash_duration(took);
            outcome
        })
        .await
        .map_err(HashError::failed)?
    }

    /// Hashes admitted and not yet done.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.admission.pending()
    }

    /// Takes one slot, as a running hash would.
    #[cfg(test)]
    pub async fn occupy_slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("slots open")
    }
}

/// Moves the calling thread to the idle scheduling class (SCHED_IDLE), so
/// that the hashes, which may fill every core, run only in the time the
/// async runtime leaves: token checks keep their latency while logins flood
/// in, and an overloaded Login is refused at once. The blocking pool's
/// thread stays there for whatever it runs next, which is only more hashing
/// or file reads for the web page. Linux only: elsewhere the scheduler
/// decides.
///
/// Measured against SCHED_OTHER at nice 0, 10 and 19, SCHED_BATCH, and a
/// runtime of one worker, under Login at ten times its capacity
/// (BENCHMARKS.md, "Goodput under a flood"): only the idle class keeps
/// Verify's p99 under 5 ms (the others: 6 to 35 ms), and none serves more
/// Logins beyond the noise. What the flood takes from the hashes is the
/// CPU its calls cost, which every class pays alike, not a share the
/// scheduler could give back.
fn yield_to_the_runtime() {
    #[cfg(target_os = "linux")]
    // SAFETY: `param` outlives the call, which only reads it; on Linux the
    // policy belongs to the thread, named here by its own id. Lowering it
    // needs no privilege, and a failure leaves the policy as it was.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(libc::gettid(), libc::SCHED_IDLE, &raw const param);
    }
}
