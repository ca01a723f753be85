//! Logging: the subscriber, and one line per RPC with its method, gRPC status
//! code and latency. Never passwords or whole tokens.

use std::io::IsTerminal as _;
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tower_http::classify::{GrpcErrorsAsFailures, GrpcFailureClass, SharedClassifier};
use tower_http::trace::{MakeSpan, OnEos, OnFailure, OnResponse, TraceLayer};
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for people: no escape codes in files and log shippers.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The tower layer that logs every RPC.
pub type RpcTraceLayer =
    TraceLayer<SharedClassifier<GrpcErrorsAsFailures>, RpcSpan, (), RpcLatency, (), RpcEnd, RpcEnd>;

/// Builds the [`RpcTraceLayer`].
pub fn rpc_trace_layer() -> RpcTraceLayer {
    TraceLayer::new_for_grpc()
        .make_span_with(RpcSpan)
        .on_request(())
        .on_response(RpcLatency)
        .on_body_chunk(())
        .on_eos(RpcEnd)
        .on_failure(RpcEnd)
}

/// A span per RPC, named by its method path.
#[derive(Debug, Clone, Copy)]
pub struct RpcSpan;

impl<B> MakeSpan<B> for RpcSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        tracing::info_span!(
            "rpc",
            method = %request.uri().path(),
            latency_ms = tracing::field::Empty,
        )
    }
}

/// Records the time to the response headers, which for a unary RPC is the
/// time the handler took. The status may only come later, in the trailers.
#[derive(Debug, Clone, Copy)]
pub struct RpcLatency;

impl<B> OnResponse<B> for RpcLatency {
    fn on_response(self, _response: &Response<B>, latency: Duration, span: &Span) {
        span.record("latency_ms", latency.as_secs_f64() * 1e3);
    }
}

/// Logs the outcome once the status code is known.
#[derive(Debug, Clone, Copy)]
pub struct RpcEnd;

impl OnEos for RpcEnd {
    fn on_eos(self, trailers: Option<&HeaderMap>, _stream_duration: Duration, span: &Span) {
        let code = trailers
            .and_then(tonic::Status::from_header_map)
            .map_or(tonic::Code::Ok, |status| status.code());
        tracing::info!(parent: span, code = ?code, "rpc finished");
    }
}

impl OnFailure<GrpcFailureClass> for RpcEnd {
    fn on_failure(&mut self, failure: GrpcFailureClass, _latency: Duration, span: &Span) {
        match failure {
            GrpcFailureClass::Status(status) => {
                let code = tonic::Code::from_i32(status.code_raw());
                tracing::info!(parent: span, code = ?code, "rpc finished");
            }
            GrpcFailureClass::Error(error) => {
                tracing::warn!(parent: span, %error, "rpc failed");
            }
            _ => tracing::warn!(parent: span, "rpc failed"),
        }
    }
}
