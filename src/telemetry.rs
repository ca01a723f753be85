//! Logging: the subscriber, and one line per request (REST, gRPC or
//! grpc-web) with its method, path, HTTP status, gRPC status and latency,
//! also when the client went away before the answer (status 499, gRPC
//! CANCELLED). Never bodies, so never passwords or tokens. With the `otel`
//! feature the same spans are also exported over OTLP.

mod batched_stderr;
#[cfg(feature = "otel")]
mod otel;
mod request_log;

use std::io::IsTerminal as _;

use anyhow::Context as _;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use self::batched_stderr::{BatchedStderr, FlushGuard};
pub use self::request_log::{LoggedBody, RequestLog, RequestLogLayer};

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
