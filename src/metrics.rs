//! Prometheus metrics, scraped at `/metrics`: the recorder, every metric's
//! description, and the functions that record the password-hash queue,
//! rate-limit refusals, sessions, revoked tokens and database connections.
//! Requests by route and outcome are counted at the edge
//! (`http::request_metrics`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: token checks are sub-millisecond, password
/// hashes tens of milliseconds, timeouts seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's metrics. The `metrics` facade has one recorder per process,
/// so the first call installs it and every later call shares it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        "authd_requests_total",
        "Requests by route, HTTP status and gRPC status."
    );
    metrics::describe_histogram!(
        "authd_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to the response headers, by route."
    );
    metrics::describe_gauge!(
        "authd_password_hash_queue_depth",
        "Password hashes waiting for a slot."
    );
    metrics::describe_histogram!(
        "authd_password_hash_duration_seconds",
        metrics::Unit::Seconds,
        "Time to hash or verify one password."
    );
    metrics::describe_counter!(
        "authd_password_hash_refusals_total",
        "Calls refused because their hash was not expected to finish in time."
    );
    metrics::describe_counter!(
        "authd_rate_limit_refusals_total",
        "Calls refused by a rate limit."
    );
    metrics::describe_gauge!(
        "authd_revoked_tokens",
        "Revoked tokens remembered until they expire."
    );
    metrics::describe_counter!(
        "authd_verified_token_cache_lookups_total",
        "Token checks that found the token already verified (hit) or not (miss)."
    );
    metrics::describe_gauge!(
        "authd_database_connections",
        "Database pool connections by state."
    );
    metrics::describe_gauge!(
        "authd_revocation_watchers",
        "Verifiers watching the revocation feed (WatchRevocations)."
    );
    metrics::describe_counter!(
        "authd_revocation_events_sent_total",
        "Revocations sent to watchers, snapshots included."
    );
    metrics::describe_counter!(
        "authd_revocation_watchers_dropped_total",
        "Watchers the server dropped, by reason (too_slow)."
    );
    metrics::describe_counter!(
        "authd_sessions_started_total",
        "Sessions started by Register, Login or ChangePassword."
    );
    metrics::describe_counter!(
        "authd_sessions_ended_total",
        "Sessions ended, by reason (logout, revoked, refresh_token_reused, ...)."
    );
    metrics::describe_counter!(
        "authd_mails_sent_total",
        "Mails the outbox handed to the SMTP server."
    );
    metrics::describe_counter!(
        "authd_mail_failed_attempts_total",
        "Attempts to send a mail that failed; the mail stays queued."
    );
    metrics::describe_gauge!(
        "authd_mails_queued",
        "Mails in the outbox not sent yet (all instances')."
    );
    metrics::describe_gauge!(
        "authd_mail_oldest_queued_age_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest mail not sent yet; 0 when none waits."
    );
    metrics::describe_counter!(
        "authd_webhook_events_delivered_total",
        "Webhook events the receiver accepted (a 2xx answer)."
    );
    metrics::describe_counter!(
        "authd_webhook_failed_attempts_total",
        "Attempts to deliver a webhook event that failed; the event stays queued."
    );
    metrics::describe_gauge!(
        "authd_webhook_events_queued",
        "Webhook events in the outbox not delivered yet (all instances')."
    );
    metrics::describe_gauge!(
        "authd_webhook_oldest_queued_age_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest webhook event not delivered yet; 0 when none waits."
    );
    metrics::describe_counter!(
        "authd_refresh_token_reuse_total",
        "Retired refresh tokens presented outside the grace window: each ended its session."
    );
}

/// Counts a revocation watcher connecting (`1.0`) or leaving (`-1.0`).
pub fn watchers(change: f64) {
    metrics::gauge!("authd_revocation_watchers").increment(change);
}

/// Counts revocations sent to watchers.
pub fn revocation_events_sent(count: usize) {
    metrics::counter!("authd_revocation_events_sent_total").increment(count as u64);
}

/// Counts a watcher dropped by the server, and why.
pub fn watcher_dropped(reason: &'static str) {
    metrics::counter!("authd_revocation_watchers_dropped_total", "reason" => reason).increment(1);
}

/// Counts a session started.
pub fn session_started() {
    metrics::counter!("authd_sessions_started_total").increment(1);
}

/// Counts sessions ended for a reason.
pub fn sessions_ended(reason: &'static str, count: u64) {
    metrics::counter!("authd_sessions_ended_total", "reason" => reason).increment(count);
}

/// Counts a reused refresh token.
pub fn refresh_token_reused() {
    metrics::counter!("authd_refresh_token_reuse_total").increment(1);
}

/// Counts a password hash waiting for, or leaving, the queue.
pub fn hash_queue_depth(waiting: usize) {
    metrics::gauge!("authd_password_hash_queue_depth").set(waiting as f64);
}

/// Records the time one hash took.
pub fn hash_duration(duration: Duration) {
    metrics::histogram!("authd_password_hash_duration_seconds").record(duration.as_secs_f64());
}

/// Counts a call refused for a full hash queue.
pub fn hash_refused() {
    metrics::counter!("authd_password_hash_refusals_total").increment(1);
}

/// Counts a call refused by the named rate limit.
pub fn rate_limited(limit: &'static str) {
    metrics::counter!("authd_rate_limit_refusals_total", "limit" => limit).increment(1);
}

/// Counts a token check that found the token already verified, or not.
pub fn verified_token_lookup(hit: bool) {
    // Literal labels make static keys: no labels built per Verify.
    if hit {
        metrics::counter!("authd_verified_token_cache_lookups_total", "result" => "hit")
            .increment(1);
    } else {
        metrics::counter!("authd_verified_token_cache_lookups_total", "result" => "miss")
            .increment(1);
    }
}

/// Sets the number of revoked tokens remembered.
pub fn revoked_tokens(count: usize) {
    metrics::gauge!("authd_revoked_tokens").set(count as f64);
}

/// Sets the database pool's connections in use and idle.
pub fn database_connections(in_use: usize, idle: usize) {
    metrics::gauge!("authd_database_connections", "state" => "in_use").set(in_use as f64);
    metrics::gauge!("authd_database_connections", "state" => "idle").set(idle as f64);
}

/// Counts a mail handed to the SMTP server.
pub fn mail_sent() {
    metrics::counter!("authd_mails_sent_total").increment(1);
}

/// Counts a failed attempt to send a mail.
pub fn mail_failed() {
    metrics::counter!("authd_mail_failed_attempts_total").increment(1);
}

/// Sets the outbox's backlog: mails not sent and the oldest one's age.
pub fn mail_backlog(queued: u64, oldest_age: Duration) {
    metrics::gauge!("authd_mails_queued").set(queued as f64);
    metrics::gauge!("authd_mail_oldest_queued_age_seconds").set(oldest_age.as_secs_f64());
}

/// Counts a webhook event the receiver accepted.
pub fn webhook_delivered() {
    metrics::counter!("authd_webhook_events_delivered_total").increment(1);
}

/// Counts a failed attempt to deliver a webhook event.
pub fn webhook_failed() {
    metrics::counter!("authd_webhook_failed_attempts_total").increment(1);
}

/// Sets the webhook outbox's backlog: events not delivered and the oldest
/// one's age.
pub fn webhook_backlog(queued: u64, oldest_age: Duration) {
    metrics::gauge!("authd_webhook_events_queued").set(queued as f64);
    metrics::gauge!("authd_webhook_oldest_queued_age_seconds").set(oldest_age.as_secs_f64());
}
