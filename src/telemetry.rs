//! Logging: the subscriber, and one line per request (REST, gRPC or
//! grpc-web) with its method, path, HTTP status, gRPC status and latency,
//! also when the client went away before the answer (status 499, gRPC
//! CANCELLED). Never bodies, so never passwords or tokens. With the `otel`
//! feature the same spans are also exported over OTLP.

mod batched_stderr;
#[cfg(feature = "otel")]
mod otel;

use std::future::Future;
use std::io::IsTerminal as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http::{HeaderMap, Request, Response, StatusCode};
use tower::layer::util::Stack;
use tower::{Layer, Service};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{MakeSpan, OnEos, OnResponse, TraceLayer};
use tracing::Span;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use self::batched_stderr::{BatchedStderr, FlushGuard};
use crate::client_gone::{self, CLIENT_CLOSED_REQUEST};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event.
    Text,
    /// For log shippers: one JSON object per line.
    Json,
}

/// What must outlive the server: the log writer thread and, with the
/// `otel` feature, the span exporter.
#[derive(Debug)]
#[must_use = "call `shutdown` once the server has stopped, or the last spans are lost"]
pub struct Telemetry {
    /// Writes what is still buffered when dropped.
    _log_writer: FlushGuard,
    #[cfg(feature = "otel")]
    traces: Option<otel::Traces>,
}

impl Telemetry {
    /// Exports the spans still waiting in the batch and writes the log
    /// lines still buffered; call it once the server has stopped.
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(traces) = self.traces {
            traces.shutdown();
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). With the `otel`
/// feature and an OTLP endpoint in the environment, the spans that pass the
/// same filter are exported too. Fails only on an export configuration that
/// cannot work.
pub fn init(format: LogFormat) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, log_writer) =
        BatchedStderr::start().context("cannot start the log writer thread")?;
    let logs = tracing_subscriber::fmt::layer().with_writer(writer);
    let logs = match format {
        // Colour only for people: no escape codes in files and log shippers.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(logs);
    #[cfg(feature = "otel")]
    {
        let traces = otel::Traces::from_env()?;
        subscriber
            .with(traces.as_ref().map(otel::Traces::layer))
            .init();
        Ok(Telemetry {
            _log_writer: log_writer,
            traces,
        })
    }
    #[cfg(not(feature = "otel"))]
    {
        subscriber.init();
        Ok(Telemetry {
            _log_writer: log_writer,
        })
    }
}

/// The header that carries a request's id, taken from the caller or made up,
/// and returned in the response: `x-request-id`.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives every request an id unless the caller sent one (a UUID).
pub fn set_request_id_layer() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::x_request_id(MakeRequestUuid)
}

/// Returns the request's id in the response.
pub fn propagate_request_id_layer() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::x_request_id()
}

/// The tower layer that logs every request: tower-http's trace layer, and
/// inside its span a guard for the calls dropped before they answer.
pub type RequestTraceLayer = Stack<
    LogUnansweredLayer,
    TraceLayer<
        SharedClassifier<ServerErrorsAsFailures>,
        RequestSpan,
        (),
        RecordResponse,
        (),
        LogOutcome,
        (),
    >,
>;

/// Builds the [`RequestTraceLayer`].
pub fn request_trace_layer() -> RequestTraceLayer {
    let trace = TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(RecordResponse)
        .on_body_chunk(())
        .on_eos(LogOutcome)
        .on_failure(());
    Stack::new(LogUnansweredLayer, trace)
}

/// A span per request; the outcome fields are filled in as they become known.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
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
            status = tracing::field::Empty,
            grpc_status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            // Set only by the `otel` feature, for the exported span.
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        #[cfg(feature = "otel")]
        otel::join_callers_trace(&span, request);
        span
    }
}

/// Records the HTTP status and latency (the time to the headers, which for a
/// unary call is the time the handler took) and logs the request, unless it
/// is a gRPC call whose status is still to come in the HTTP trailers.
/// (grpc-web carries its trailers inside the body, unread here: its log line
/// shows the gRPC status only for calls that failed before any message.)
#[derive(Debug, Clone, Copy)]
pub struct RecordResponse;

impl<B> OnResponse<B> for RecordResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        record_http_status(span, response.status(), latency);
        let status_in_headers = record_grpc_status(response.headers(), span);
        if status_in_headers || !is_native_grpc(response.headers()) {
            tracing::info!(parent: span, "finished");
        }
    }
}

/// Logs a call that is dropped before it answers, because its client went
/// away (the connection closed, or the call was cancelled mid-hash): hyper
/// drops the call, so tower-http's trace layer never hears of it. The line
/// is the usual one, with status 499 ([`CLIENT_CLOSED_REQUEST`]) and, for
/// gRPC, CANCELLED. Sits inside the trace layer, whose span it takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogUnansweredLayer;

impl<S> Layer<S> for LogUnansweredLayer {
    type Service = LogUnanswered<S>;

    fn layer(&self, inner: S) -> LogUnanswered<S> {
        LogUnanswered { inner }
    }
}

/// See [`LogUnansweredLayer`].
#[derive(Debug, Clone)]
pub struct LogUnanswered<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for LogUnanswered<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let unanswered = Unanswered {
            // The trace layer's: it calls this service inside its span.
            span: Some(Span::current()),
            grpc: client_gone::is_grpc(request.headers()),
            started: Instant::now(),
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let answer = call.await;
            // Answered or failed: the trace layer logs it.
            unanswered.answered();
            answer
        })
    }
}

/// A call not answered yet; logged as cancelled if dropped so.
struct Unanswered {
    span: Option<Span>,
    grpc: bool,
    started: Instant,
}

impl Unanswered {
    fn answered(mut self) {
        self.span.take();
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        let Some(span) = self.span.take() else {
            return;
        };
        record_http_status(&span, CLIENT_CLOSED_REQUEST, self.started.elapsed());
        if self.grpc {
            record_grpc_code(&span, tonic::Code::Cancelled);
        }
        tracing::info!(parent: &span, "finished");
    }
}

/// Logs a gRPC call once its trailers, and with them its status, arrive.
#[derive(Debug, Clone, Copy)]
pub struct LogOutcome;

impl OnEos for LogOutcome {
    fn on_eos(self, trailers: Option<&HeaderMap>, _stream_duration: Duration, span: &Span) {
        if let Some(trailers) = trailers {
            record_grpc_status(trailers, span);
            tracing::info!(parent: span, "finished");
        }
    }
}

fn is_native_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == "application/grpc" || value.starts_with("application/grpc+"))
}

fn record_http_status(span: &Span, status: StatusCode, latency: Duration) {
    span.record("status", status.as_u16());
    #[cfg(feature = "otel")]
    otel::record_http_status(span, status);
    span.record("latency_ms", latency.as_secs_f64() * 1e3);
}

/// Records the `grpc-status` in `headers`, if there is one. Only the code:
/// the message and details are the client's to read.
fn record_grpc_status(headers: &HeaderMap, span: &Span) -> bool {
    let Some(status) = headers.get("grpc-status") else {
        return false;
    };
    let code = std::str::from_utf8(status.as_bytes())
        .ok()
        .and_then(|code| code.parse().ok())
        .map_or(tonic::Code::Unknown, tonic::Code::from_i32);
    record_grpc_code(span, code);
    true
}

fn record_grpc_code(span: &Span, code: tonic::Code) {
    span.record("grpc_status", tracing::field::debug(code));
    #[cfg(feature = "otel")]
    otel::record_grpc_status(span, code);
}
