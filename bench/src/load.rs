//! Driving load: closed loops (a fixed number of calls always in flight) and
//! an open loop (calls started on a schedule, whatever the answers do).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::task::JoinSet;

/// Calls in flight: `connections` × `in_flight` on each.
#[derive(Debug, Clone, Copy)]
pub struct Concurrency {
    pub connections: usize,
    pub in_flight: usize,
}

impl Concurrency {
    pub fn total(self) -> usize {
        self.connections * self.in_flight
    }
}

impl std::fmt::Display for Concurrency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}", self.connections, self.in_flight)
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub calls: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latency of the successful calls, in microseconds.
    pub latency: Histogram<u64>,
}

impl Outcome {
    fn new() -> Self {
        Self {
            calls: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        }
    }

    fn record(&mut self, latency: Duration, result: Result<(), String>) {
        self.calls += 1;
        match result {
            Ok(()) => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(micros.max(1));
            }
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.calls += other.calls;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency
            .add(other.latency)
            .expect("same histogram bounds");
    }

    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        (self.calls - self.errors) as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub fn millis(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `call(worker, n)` from `concurrency.total()` workers, each with one
/// call in flight, for `warmup` (not counted) then `duration`. Worker `w`
/// is meant to use connection `w % connections`.
pub async fn closed_loop<F, Fut>(
    concurrency: Concurrency,
    warmup: Duration,
    duration: Duration,
    call: F,
) -> Outcome
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let measure_from = started + warmup;
    let end = measure_from + duration;
    let mut workers = JoinSet::new();
    for worker in 0..concurrency.total() {
        let call = Arc::clone(&call);
        workers.spawn(async move {
            let mut outcome = Outcome::new();
            let mut n = worker as u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let result = call(worker, n).await;
                if sent >= measure_from {
                    outcome.record(sent.elapsed(), result);
                }
                n += concurrency.total() as u64;
            }
            outcome
        });
    }
    let mut total = Outcome::new();
    while let Some(outcome) = workers.join_next().await {
        total.merge(outcome.expect("worker panicked"));
    }
    total.elapsed = duration;
    total
}

/// Runs `call(worker, n)` once for each `n` in `0..count`, in order, from
/// `concurrency.total()` workers with one call in flight each; the first
/// `warmup` calls are not counted. For calls that spend what they are
/// given (a ticket, a code's time step), of which a closed loop would need
/// an unknown number. The elapsed time runs from the first counted call's
/// start to the last counted answer.
pub async fn each_once<F, Fut>(
    concurrency: Concurrency,
    warmup: usize,
    count: usize,
    call: F,
) -> Outcome
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for worker in 0..concurrency.total() {
        let (call, next) = (Arc::clone(&call), Arc::clone(&next));
        workers.spawn(async move {
            let mut outcome = Outcome::new();
            let mut counted: Option<(Instant, Instant)> = None;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let sent = Instant::now();
                let result = call(worker, n).await;
                if n >= warmup {
                    outcome.record(sent.elapsed(), result);
                    let first = counted.map_or(sent, |(first, _)| first);
                    counted = Some((first, Instant::now()));
                }
            }
            (outcome, counted)
        });
    }
    let mut total = Outcome::new();
    let mut window: Option<(Instant, Instant)> = None;
    while let Some(done) = workers.join_next().await {
        let (outcome, counted) = done.expect("worker panicked");
        total.merge(outcome);
        if let Some((first, last)) = counted {
            window = Some(window.map_or((first, last), |(start, end)| {
                (start.min(first), end.max(last))
            }));
        }
    }
    total.elapsed = window.map_or(Duration::ZERO, |(start, end)| end - start);
    total
}

/// Starts `call(n)` at `rate` per second for `duration`, with at most
/// `max_in_flight` outstanding (beyond that a start counts as an error).
/// Latency is measured from the scheduled start, so a stalled server shows
/// as latency rather than as fewer calls.
pub async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    call: F,
) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let split = open_loop_split(rate, Duration::ZERO, duration, max_in_flight, move |n| {
        let call = call(n);
        async move { call.await.map(|()| true) }
    })
    .await;
    split.first
}

/// What an open loop measured, its answers sorted in two by what the call
/// returned (e.g. served or refused under overload).
pub struct Split {
    /// Calls scheduled after the warm-up that returned `true`, and those
    /// that failed.
    pub first: Outcome,
    /// Calls scheduled after the warm-up that returned `false`.
    pub second: Outcome,
    /// Answers of the first kind that arrived within the measured window,
    /// whenever their call was scheduled: the rate the server delivered
    /// them at, whatever its queue held when the window opened and closed.
    pub first_delivered: u64,
}

/// Like [`open_loop`], for `warmup` (not counted) then `duration`, and
/// sorting the answers into two outcomes by what the call returns, both
/// counted as successes; failures count with the first. Calls still in
/// flight at the end are waited for, so that the next case starts on an
/// idle server.
pub async fn open_loop_split<F, Fut>(
    rate: f64,
    warmup: Duration,
    duration: Duration,
    max_in_flight: usize,
    call: F,
) -> Split
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool, String>> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total_calls = ((warmup + duration).as_secs_f64() * rate) as u64;
    let started = Instant::now();
    let measure_from = started + warmup;
    let end = measure_from + duration;
    let mut calls = JoinSet::new();
    let mut split = Split {
        first: Outcome::new(),
        second: Outcome::new(),
        first_delivered: 0,
    };
    let mut record = |(scheduled, answered, result): (Instant, Instant, Result<bool, String>)| {
        if result == Ok(true) && (measure_from..=end).contains(&answered) {
            split.first_delivered += 1;
        }
        if scheduled < measure_from {
            return;
        }
        let latency = answered - scheduled;
        match result {
            Ok(true) => split.first.record(latency, Ok(())),
            Ok(false) => split.second.record(latency, Ok(())),
            Err(error) => split.first.record(latency, Err(error)),
        }
    };
    for n in 0..total_calls {
        let scheduled = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        while let Some(done) = calls.try_join_next() {
            record(done.expect("call panicked"));
        }
        if calls.len() >= max_in_flight {
            record((scheduled, scheduled, Err("too many calls in flight".into())));
            continue;
        }
        let call = call(n);
        calls.spawn(async move {
            let result = call.await;
            (scheduled, Instant::now(), result)
        });
    }
    while let Some(done) = calls.join_next().await {
        record(done.expect("call panicked"));
    }
    split.first.elapsed = duration;
    split.second.elapsed = duration;
    split
}
