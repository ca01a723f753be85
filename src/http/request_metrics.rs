//! Requests by route and outcome, for `/metrics`: every request counted
//! once, under one of authd's own routes or `other`, so that scanning for
//! paths cannot blow up the number of series.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response, StatusCode};
use metrics::{Counter, Histogram};
use tower::{Layer, Service};

use super::client_gone::{CLIENT_CLOSED_REQUEST, is_grpc};

/// authd's gRPC methods, each counted under its own route: every method of
/// every service served (a test holds this list to the protos).
const GRPC_METHODS: [&str; 41] = [
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
    "/auth.v1.AuthService/CompleteLogin",
    "/auth.v1.AuthService/StartTotpEnrollment",
    "/auth.v1.AuthService/ConfirmTotpEnrollment",
    "/auth.v1.AuthService/GetMfaStatus",
    "/auth.v1.AuthService/DisableTotp",
    "/auth.v1.AuthService/RegenerateRecoveryCodes",
    "/auth.v1.AuthService/Reauthenticate",
    "/auth.v1.AuthService/StartPasskeyRegistration",
    "/auth.v1.AuthService/FinishPasskeyRegistration",
    "/auth.v1.AuthService/ListPasskeys",
    "/auth.v1.AuthService/RenamePasskey",
    "/auth.v1.AuthService/RemovePasskey",
    "/auth.v1.AuthService/StartPasskeyLogin",
    "/auth.v1.AuthService/FinishPasskeyLogin",
    "/auth.v1.AuthService/StartPasskeyReauthentication",
    "/auth.v1.AuthService/StartPasskeySignup",
    "/auth.v1.AuthService/RegisterWithPasskey",
    "/auth.v1.AuthService/SetPassword",
    "/auth.v1.AuthService/SetEmail",
    "/auth.v1.AuthService/VerifyEmail",
    "/auth.v1.AuthService/ResendEmailVerification",
    "/auth.v1.AuthService/RequestPasswordReset",
    "/auth.v1.AuthService/ResetPassword",
    "/auth.v1.AuthService/StartPasskeyPasswordReset",
    "/auth.v1.RevocationService/WatchRevocations",
    "/envoy.service.auth.v3.Authorization/Check",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// authd's REST routes without a parameter.
pub(crate) const REST_ROUTES: [&str; 35] = [
    "/auth/forward",
    "/user/register",
    "/user/register/passkey/start",
    "/user/register/passkey",
    "/login",
    "/login/mfa",
    "/login/passkey/start",
    "/login/passkey",
    "/logout",
    "/logout/all",
    "/verify",
    "/user/me",
    "/user/password",
    "/user/password/reset",
    "/user/password/reset/confirm",
    "/user/password/reset/passkey",
    "/user/sessions",
    "/user/mfa",
    "/user/mfa/totp",
    "/user/mfa/totp/confirm",
    "/user/mfa/recovery-codes",
    "/user/passkeys",
    "/user/passkeys/registration",
    "/user/reauthenticate",
    "/user/reauthenticate/passkey",
    "/user/email",
    "/user/email/verify",
    "/user/email/verification",
    "/token/refresh",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/oauth2/introspect",
    "/openapi.json",
    "/metrics",
];

/// The REST routes with a parameter, by their templates: each one's last
/// segment is the parameter.
pub(crate) const PARAMETER_ROUTES: [&str; 2] = ["/user/sessions/{id}", "/user/passkeys/{id}"];

/// The route a request is known by: one of authd's gRPC methods or REST
/// routes, a name safe to aggregate by, where any other path could be
/// anything a client made up (so it counts as `other`, and scanning for
/// paths cannot blow up the number of series).
pub(crate) fn known_route(path: &str) -> Option<&'static str> {
    // The exact routes first: `/user/passkeys/registration` is not a
    // passkey id.
    GRPC_METHODS
        .iter()
        .chain(&REST_ROUTES)
        .find(|route| **route == path)
        .or_else(|| {
            PARAMETER_ROUTES.iter().find(|template| {
                template
                    .strip_suffix("{id}")
                    .and_then(|prefix| path.strip_prefix(prefix))
                    .is_some_and(|id| !id.is_empty() && !id.contains('/'))
            })
        })
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
        assert_eq!(
            known_route("/user/sessions/abc"),
            Some("/user/sessions/{id}")
        );
        assert_eq!(
            known_route("/user/passkeys/abc"),
            Some("/user/passkeys/{id}")
        );
        assert_eq!(
            known_route("/user/passkeys/registration"),
            Some("/user/passkeys/registration")
        );
        for scanned in [
            "/wp-admin",
            "/auth.v1.AuthService/",
            "/auth.v1.AuthService/Made1Up",
            "/grpc.health.v1.Health/Anything",
            "/auth.v1.AuthService/a/b",
            "/login/x",
            "/user/sessions/a/b",
            "/user/passkeys/a/b",
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
