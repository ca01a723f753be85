//! Prometheus metrics, scraped at `/metrics`: requests by route and outcome,
//! latency, the password-hash queue, rate-limit refusals, revoked tokens and
//! database connections. All names are defined here.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};

use crate::client_gone::{CLIENT_CLOSED_REQUEST, is_grpc};

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

/// authd's gRPC methods, each counted under its own route: every method of
/// every service served (a test holds this list to the protos).
const GRPC_METHODS: [&str; 17] = [
    "/auth.v1.AuthService/Register",
    "/auth.v1.AuthService/Login",
    "/auth.v1.AuthService/Logout",
    "/auth.v1.AuthService/Verify",
    "/auth.v1.AuthService/LogoutAll",
    "/auth.v1.AuthService/Refresh",
    "/auth.v1.AuthService/ChangePassword",
    "/auth.v1.AuthService/DeleteAccount",
    "/auth.v1.AuthService/ListSessions",
    "/auth.v1.AuthService/RevokeSession",
    "/auth.v1.AuthService/GetJwks",
    "/auth.v1.RevocationService/WatchRevocations",
    "/envoy.service.auth.v3.Authorization/Check",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// authd's REST routes, the one with a parameter by its template.
const REST_ROUTES: [&str; 13] = [
    "/auth/forward",
    "/user/register",
    "/login",
    "/logout",
    "/logout/all",
    "/verify",
    "/user/me",
    "/user/password",
    "/user/sessions",
    "/token/refresh",
    "/.well-known/jwks.json",
    "/openapi.json",
    "/metrics",
];

/// The one REST route with a parameter, by its template.
const SESSION_ROUTE: &str = "/user/sessions/{id}";

/// The route a request is known by: one of authd's gRPC methods or REST
/// routes, a name safe to aggregate by, where any other path could be
/// anything a client made up (so it counts as `other`, and scanning for
/// paths cannot blow up the number of series).
pub(crate) fn known_route(path: &str) -> Option<&'static str> {
    if path
        .strip_prefix("/user/sessions/")
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
    {
        return Some(SESSION_ROUTE);
    }
    GRPC_METHODS
        .iter()
        .chain(&REST_ROUTES)
        .find(|route| **route == path)
        .copied()
}

/// The `grpc_status` label: the code's number, `unknown` for a status that
/// is not one, empty for a request that is not gRPC.
fn grpc_status_label(status: Option<&http::HeaderValue>, grpc: bool) -> &'static str {
    const CODES: [&str; 17] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    ];
    match status {
        Some(status) => CODES
            .iter()
            .find(|code| code.as_bytes() == status.as_bytes())
            .copied()
            .unwrap_or("unknown"),
        // A unary gRPC call that failed carries its status in the headers;
        // one that succeeded sends it in the trailers, always 0.
        None if grpc => "0",
        None => "",
    }
}

/// Counts every request and times it to its response headers, or, when
/// the call is dropped before it answers (its client went away), to then,
/// counted as [`CLIENT_CLOSED_REQUEST`] and, for gRPC, CANCELLED.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestMetricsLayer;

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics { inner }
    }
}

/// See [`RequestMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RequestMetrics<S> {
    inner: S,
}

impl<S, B, ResponseBody> Service<Request<B>> for RequestMetrics<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut count = RequestCount {
            route: Some(known_route(request.uri().path()).unwrap_or("other")),
            grpc: is_grpc(request.headers()),
            started: Instant::now(),
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            let grpc_status = grpc_status_label(
                response.headers().get("grpc-status"),
                is_grpc(response.headers()),
            );
            count.record(response.status(), grpc_status);
            Ok(response)
        })
    }
}

/// One request, counted exactly once: when it answers, or when it is
/// dropped unanswered.
struct RequestCount {
    /// Taken once counted.
    route: Option<&'static str>,
    grpc: bool,
    started: Instant,
}

/// A series of `authd_requests_total`.
type RequestSeries = (&'static str, StatusCode, &'static str);

thread_local! {
    /// The handles of the series this thread has counted: a request then
    /// costs two atomic updates, not the registry's lookup of its labels
    /// (built as strings) on every request. A few dozen per thread: the
    /// labels take only known values.
    static REQUEST_SERIES: RefCell<HashMap<RequestSeries, (Counter, Histogram)>> =
        RefCell::new(HashMap::new());
}

impl RequestCount {
    fn record(&mut self, status: StatusCode, grpc_status: &'static str) {
        let Some(route) = self.route.take() else {
            return;
        };
        let took = self.started.elapsed().as_secs_f64();
        REQUEST_SERIES.with_borrow_mut(|series| {
            let (count, duration) =
                series
                    .entry((route, status, grpc_status))
                    .or_insert_with(|| {
                        (
                            metrics::counter!(
                                "authd_requests_total",
                                "route" => route,
                                "status" => status.as_str().to_owned(),
                                "grpc_status" => grpc_status
                            ),
                            metrics::histogram!("authd_request_duration_seconds", "route" => route),
                        )
                    });
            count.increment(1);
            duration.record(took);
        });
    }
}

impl Drop for RequestCount {
    fn drop(&mut self) {
        let grpc_status = if self.grpc { "1" } else { "" };
        self.record(CLIENT_CLOSED_REQUEST, grpc_status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use prost::Message as _;

    #[test]
    fn only_our_routes_get_their_own_series() {
        assert_eq!(
            known_route("/auth.v1.AuthService/Login"),
            Some("/auth.v1.AuthService/Login")
        );
        assert_eq!(known_route("/login"), Some("/login"));
        assert_eq!(known_route("/user/sessions/abc"), Some(SESSION_ROUTE));
        for scanned in [
            "/wp-admin",
            "/auth.v1.AuthService/",
            "/auth.v1.AuthService/Made1Up",
            "/grpc.health.v1.Health/Anything",
            "/auth.v1.AuthService/a/b",
            "/login/x",
            "/user/sessions/a/b",
        ] {
            assert_eq!(known_route(scanned), None, "{scanned}");
        }
    }

    #[test]
    fn every_method_of_authd_and_health_is_a_known_route() {
        for descriptors in [
            crate::grpc::pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ] {
            let files = prost_types::FileDescriptorSet::decode(descriptors).unwrap();
            for file in &files.file {
                for service in &file.service {
                    for method in &service.method {
                        let path =
                            format!("/{}.{}/{}", file.package(), service.name(), method.name());
                        assert_eq!(known_route(&path), Some(path.as_str()));
                    }
                }
            }
        }
    }

    #[test]
    fn grpc_status_labels_are_the_code_numbers() {
        let label = |value: &'static str| {
            grpc_status_label(Some(&http::HeaderValue::from_static(value)), true)
        };
        assert_eq!(label("0"), "0");
        assert_eq!(label("16"), "16");
        assert_eq!(label("17"), "unknown");
        assert_eq!(label("01"), "unknown");
        assert_eq!(grpc_status_label(None, true), "0");
        assert_eq!(grpc_status_label(None, false), "");
    }
}
