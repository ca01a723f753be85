//! OpenTelemetry trace export, the `otel` feature: the request spans and
//! every other tracing span go to an OTLP/HTTP collector, and a caller's W3C
//! `traceparent` makes a request's span part of the caller's trace.
//!
//! Configured the OpenTelemetry way, by environment only: export is on when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
//! set; the SDK and the exporter read the other standard variables
//! themselves (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`, ...).
//! <https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>

use anyhow::Context as _;
use http::Request;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Key, KeyValue};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::registry::LookupSpan;

/// The variables that turn export on, the signal's own first, as the
/// exporter reads them.
const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
const DEFAULT_SERVICE_NAME: &str = "authd";

/// The span exporter: spans are batched and sent from the SDK's own thread.
#[derive(Debug)]
pub(super) struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// The exporter the environment asks for, or none when no endpoint is
    /// set.
    pub(super) fn from_env() -> anyhow::Result<Option<Self>> {
        let Some((variable, endpoint)) = ENDPOINT_VARIABLES.iter().find_map(|variable| {
            std::env::var(variable)
                .ok()
                .filter(|endpoint| !endpoint.is_empty())
                .map(|endpoint| (*variable, endpoint))
        }) else {
            return Ok(None);
        };
        // The HTTP client is built without TLS (see Cargo.toml): say so now
        // rather than fail every export later.
        if endpoint.to_ascii_lowercase().starts_with("https:") {
            anyhow::bail!(
                "{variable}={endpoint}: this build exports traces over plain HTTP only; \
                 send them to a collector nearby, which can forward them over TLS"
            );
        }
        let exporter = SpanExporter::builder()
            .with_http()
            .build()
            .with_context(|| format!("cannot export traces to {variable}={endpoint}"))?;
        let provider = SdkTracerProvider::builder()
            .with_resource(resource())
            .with_batch_exporter(exporter)
            .build();
        Ok(Some(Self { provider }))
    }

    /// The tracing layer that hands every closed span to the exporter.
    pub(super) fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer(env!("CARGO_PKG_NAME")))
    }

    /// Exports what is still batched and stops the exporter's thread. Blocks
    /// for up to five seconds.
    pub(super) fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "cannot export the last spans");
        }
    }
}

/// `service.name` from `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`,
/// else `authd` rather than the SDK's `unknown_service`.
fn resource() -> Resource {
    let service_name = Key::from_static_str("service.name");
    let named = Resource::builder()
        .build()
        .get(&service_name)
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if named {
        builder.build()
    } else {
        builder.with_service_name(DEFAULT_SERVICE_NAME).build()
    }
}

/// Makes a request's span a child of the caller's span when the request
/// carries a valid W3C `traceparent` (any surface: they share the tower
/// layers), and names it the way OpenTelemetry's conventions do.
pub(super) fn join_callers_trace<B>(span: &Span, request: &Request<B>) {
    let callers = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    // Fails only when no exporter is installed: there is no trace to join.
    let _ = span.set_parent(callers);
    span.record("otel.kind", "server");
    span.record("otel.name", span_name(request));
}

/// `auth.v1.AuthService/Login` for gRPC and grpc-web, `POST /login` for
/// REST; only the method for paths that are not authd's, which could be
/// anything a scanner makes up and would flood a tracing backend with names.
fn span_name<B>(request: &Request<B>) -> String {
    match crate::http::request_metrics::known_route(request.uri().path()) {
        Some(route) if crate::http::client_gone::is_grpc(request.headers()) => {
            route.trim_start_matches('/').to_owned()
        }
        Some(route) => format!("{} {route}", request.method()),
        None => request.method().to_string(),
    }
}

/// Marks the span failed on a server error; client errors are the
/// caller's, not authd's
/// (<https://opentelemetry.io/docs/specs/semconv/http/http-spans/#status>).
pub(super) fn record_http_status(span: &Span, status: http::StatusCode) {
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}

/// Marks the span failed on the gRPC codes that mean a server error
/// (<https://opentelemetry.io/docs/specs/semconv/rpc/grpc/#grpc-status>).
pub(super) fn record_grpc_status(span: &Span, code: tonic::Code) {
    use tonic::Code;
    if matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    ) {
        span.record("otel.status_code", "error");
    }
}
