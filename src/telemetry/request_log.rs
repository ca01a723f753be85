//! One log line per request (REST, gRPC or grpc-web): the request's span
//! carries its method, path and id from the start, and its outcome (HTTP
//! status, gRPC status, latency) once known, recorded in one go right before
//! the line is written.
//!
//! Its own layer rather than tower-http's trace layer: that one records each
//! outcome field on its own (each a reformatting of the span's fields by the
//! log layer), never hears of a call that hyper drops because its client went
//! away, and needed a second layer and a second boxed future for that.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};
use tracing::field::{self, Value};
use tracing::{Instrument as _, Span};

use super::REQUEST_ID_HEADER;
#[cfg(feature = "otel")]
use super::otel;
use crate::http::client_gone::{self, CLIENT_CLOSED_REQUEST};

/// Logs every request once, as `finished`: when it answers (for native
/// gRPC, when its trailers bring the status), or, when its client went away
/// and hyper dropped the call or its response, with status 499
/// ([`CLIENT_CLOSED_REQUEST`]) and, for gRPC, CANCELLED. Never bodies, so
/// never passwords or tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLogLayer;

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog { inner }
    }
}

/// See [`RequestLogLayer`].
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    inner: S,
}

impl<S, B, ResponseBody> Service<Request<B>> for RequestLog<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<LoggedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = request_span(&request);
        let mut pending = PendingLine {
            span: Some(span.clone()),
            grpc: client_gone::is_grpc(request.headers()),
            started: Instant::now(),
            answered: None,
        };
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let response = match call.await {
                    Ok(response) => response,
                    Err(error) => {
                        pending.answered(StatusCode::INTERNAL_SERVER_ERROR);
                        pending.write(None);
                        return Err(error);
                    }
                };
                pending.answered(response.status());
                let grpc_status = grpc_code(response.headers());
                // A native gRPC call's status, unless it failed at once,
                // comes in the trailers, which the body passes on.
                let pending = if grpc_status.is_some() || !is_native_grpc(response.headers()) {
                    pending.write(grpc_status);
                    None
                } else {
                    Some(pending)
                };
                Ok(response.map(|inner| LoggedBody { inner, pending }))
            }
            .instrument(span),
        )
    }
}

/// A span per request; the outcome fields are filled in once known.
fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        status = field::Empty,
        grpc_status = field::Empty,
        latency_ms = field::Empty,
        // Set only by the `otel` feature, for the exported span.
        otel.name = field::Empty,
        otel.kind = field::Empty,
        otel.status_code = field::Empty,
    );
    #[cfg(feature = "otel")]
    otel::join_callers_trace(&span, request);
    span
}

/// A request's line, written once: when its outcome is known, or, when it
/// is dropped unwritten (its client went away), as [`CLIENT_CLOSED_REQUEST`]
/// and, for gRPC, CANCELLED.
struct PendingLine {
    /// Taken once written.
    span: Option<Span>,
    grpc: bool,
    started: Instant,
    /// The HTTP status and the time to it, once the headers are out.
    answered: Option<(StatusCode, Duration)>,
}

impl PendingLine {
    fn answered(&mut self, status: StatusCode) {
        self.answered = Some((status, self.started.elapsed()));
    }

    /// Records the outcome on the span, all fields at once, and writes the
    /// line.
    fn write(&mut self, grpc_status: Option<tonic::Code>) {
        let Some(span) = self.span.take() else {
            return;
        };
        let (status, latency) = self
            .answered
            .unwrap_or((CLIENT_CLOSED_REQUEST, self.started.elapsed()));
        record_outcome(&span, status, latency, grpc_status);
        tracing::info!(parent: &span, "finished");
    }
}

impl Drop for PendingLine {
    fn drop(&mut self) {
        if self.span.is_some() {
            self.answered = None;
            let cancelled = self.grpc.then_some(tonic::Code::Cancelled);
            self.write(cancelled);
        }
    }
}

impl std::fmt::Debug for PendingLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLine")
            .field("grpc", &self.grpc)
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}

/// `latency` is the time to the headers: for a unary call, the time the
/// handler took.
fn record_outcome(
    span: &Span,
    status: StatusCode,
    latency: Duration,
    grpc_status: Option<tonic::Code>,
) {
    #[cfg(feature = "otel")]
    {
        otel::record_http_status(span, status);
        if let Some(code) = grpc_status {
            otel::record_grpc_status(span, code);
        }
    }
    // No metadata: the span is disabled (logging is off), nothing to record.
    let Some(fields) = span.metadata().map(tracing::Metadata::fields) else {
        return;
    };
    let (Some(status_field), Some(grpc_field), Some(latency_field)) = (
        fields.field("status"),
        fields.field("grpc_status"),
        fields.field("latency_ms"),
    ) else {
        return;
    };
    let latency_ms = latency_ms(latency);
    let grpc_status = grpc_status.map(field::debug);
    span.record_all(&fields.value_set(&[
        (&status_field, Some(&status.as_u16() as &dyn Value)),
        (
            &grpc_field,
            grpc_status.as_ref().map(|code| code as &dyn Value),
        ),
        (&latency_field, Some(&latency_ms as &dyn Value)),
    ]));
}

/// `latency` in milliseconds, to the microsecond: a number (as such in
/// JSON lines) that reads `0.04`, not `0.039585999999999996`.
fn latency_ms(latency: Duration) -> f64 {
    // Rounded in integers: whole microseconds over 1000 is the closest
    // `f64` to a 3-decimal number, which prints as just those decimals.
    let micros = latency.as_nanos().saturating_add(500) / 1_000;
    micros as f64 / 1e3
}

/// A response body that writes its request's line when its gRPC trailers
/// pass, or when it ends or is dropped without them.
#[derive(Debug)]
pub struct LoggedBody<B> {
    inner: B,
    pending: Option<PendingLine>,
}

impl<B> Body for LoggedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(mut pending) = self.pending.take() {
            match &polled {
                Some(Ok(frame)) => match frame.trailers_ref() {
                    Some(trailers) => pending.write(grpc_code(trailers)),
                    None => self.pending = Some(pending),
                },
                // The stream failed: tonic has nothing to send it with.
                Some(Err(_)) => pending.write(Some(tonic::Code::Internal)),
                None => pending.write(None),
            }
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn is_native_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == "application/grpc" || value.starts_with("application/grpc+"))
}

/// The `grpc-status` in `headers`, if there is one. Only the code: the
/// message and details are the client's to read.
fn grpc_code(headers: &HeaderMap) -> Option<tonic::Code> {
    let status = headers.get("grpc-status")?;
    Some(
        std::str::from_utf8(status.as_bytes())
            .ok()
            .and_then(|code| code.parse().ok())
            .map_or(tonic::Code::Unknown, tonic::Code::from_i32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_logged_in_milliseconds_to_the_microsecond() {
        // 39.586 µs once logged as latency_ms=0.039585999999999996.
        assert_eq!(latency_ms(Duration::from_nanos(39_586)).to_string(), "0.04");
        assert_eq!(
            latency_ms(Duration::from_nanos(39_499)).to_string(),
            "0.039"
        );
        assert_eq!(
            latency_ms(Duration::from_nanos(1_234_567_891)).to_string(),
            "1234.568"
        );
        assert_eq!(latency_ms(Duration::ZERO).to_string(), "0");
        assert_eq!(latency_ms(Duration::from_nanos(499)).to_string(), "0");
    }
}
