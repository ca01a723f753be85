//! The `otel` feature: the binary exports its request spans over OTLP/HTTP,
//! in the trace of the caller's `traceparent`, to a collector stand-in
//! listening here on a real socket.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::helpers::{TestDatabase, spawn_authd_process_with_env, terminate};

/// The callers' span, as in the W3C Trace Context examples.
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// The trace a caller is in; `id` is 32 hex digits.
struct CallerTrace {
    id: &'static str,
}

impl CallerTrace {
    fn traceparent(&self) -> String {
        format!("00-{}-{CALLER_SPAN_ID}-01", self.id)
    }

    fn id_bytes(&self) -> Vec<u8> {
        hex(self.id)
    }
}

fn hex(digits: &str) -> Vec<u8> {
    (0..digits.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&digits[at..at + 2], 16).expect("hex"))
        .collect()
}

/// One exported span with its resource's attributes.
struct Exported {
    span: Span,
    resource: Vec<KeyValue>,
}

/// An OTLP/HTTP trace receiver on an ephemeral port: `POST /v1/traces`
/// with a protobuf body, as a collector takes it.
struct Collector {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    endpoint: String,
    exports: mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
    spans: Vec<Exported>,
}

impl Collector {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let (received, exports) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .with_state(received);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            endpoint,
            exports,
            spans: Vec::new(),
        }
    }

    /// Waits for an exported span in `trace`.
    async fn span_in(&mut self, trace: &CallerTrace) -> Exported {
        let id = trace.id_bytes();
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(at) = self.spans.iter().position(|e| e.span.trace_id == id) {
                    return self.spans.swap_remove(at);
                }
                let export = self.exports.recv().await.expect("collector runs");
                self.take(export);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no span of trace {} was exported", trace.id))
    }

    /// Whether any export has arrived so far.
    fn received_any(&mut self) -> bool {
        while let Ok(export) = self.exports.try_recv() {
            self.take(export);
        }
        !self.spans.is_empty()
    }

    fn take(&mut self, export: ExportTraceServiceRequest) {
        for resource_spans in export.resource_spans {
            let resource = resource_spans.resource.unwrap_or_default().attributes;
            for scope_spans in resource_spans.scope_spans {
                self.spans
                    .extend(scope_spans.spans.into_iter().map(|span| Exported {
                        span,
                        resource: resource.clone(),
                    }));
            }
        }
    }
}

async fn receive(
    State(received): State<mpsc::UnboundedSender<ExportTraceServiceRequest>>,
    body: Bytes,
) -> axum::response::Response {
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let _ = received.send(export);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| match &attribute.value {
            Some(AnyValue {
                value: Some(Value::StringValue(value)),
            }) => Some(value.as_str()),
            _ => None,
        })
}

/// Asserts the span is authd's server span of this request, a child of the
/// caller's span.
#[track_caller]
fn assert_request_span(exported: &Exported, name: &str, path: &str) {
    let span = &exported.span;
    assert_eq!(span.name, name);
    assert_eq!(span.kind, SpanKind::Server as i32, "{span:?}");
    assert_eq!(span.parent_span_id, hex(CALLER_SPAN_ID), "{span:?}");
    assert_eq!(string_attribute(&span.attributes, "path"), Some(path));
    assert_eq!(
        string_attribute(&exported.resource, "service.name"),
        Some("authd")
    );
}

/// The authd binary exporting to `collector`, sending a batch every
/// `batch_delay_ms` (`OTEL_BSP_SCHEDULE_DELAY`).
async fn spawn_exporting_authd(
    collector: &Collector,
    database: &TestDatabase,
    batch_delay_ms: &str,
) -> (tokio::process::Child, String) {
    let (child, address, _) = spawn_authd_process_with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", batch_delay_ms),
        ],
        &["--database-url", &database.url, "--shutdown-drain", "0s"],
    )
    .await;
    (child, address)
}

#[tokio::test]
async fn request_spans_are_exported_in_the_callers_trace() {
    let rest_trace = CallerTrace {
        id: "4bf92f3577b34da6a3ce929d0e0e4736",
    };
    let grpc_trace = CallerTrace {
        id: "0af7651916cd43dd8448eb211c80319c",
    };
    let scan_trace = CallerTrace {
        id: "1af7651916cd43dd8448eb211c80319d",
    };
    let mut collector = Collector::start().await;
    let database = TestDatabase::create().await;
    let (_child, address) = spawn_exporting_authd(&collector, &database, "100").await;

    let http = reqwest::Client::new();
    let response = http
        .get(format!("http://{address}/user/me"))
        .header("traceparent", rest_trace.traceparent())
        .send()
        .await
        .expect("REST response");
    assert_eq!(response.status(), 401);
    let response = http
        .get(format!("http://{address}/wp-admin/setup.php"))
        .header("traceparent", scan_trace.traceparent())
        .send()
        .await
        .expect("REST response");
    assert_eq!(response.status(), 404);
    let mut client = authd::grpc::pb::auth_service_client::AuthServiceClient::connect(format!(
        "http://{address}"
    ))
    .await
    .expect("connects");
    let mut request = tonic::Request::new(authd::grpc::pb::VerifyRequest {
        access_token: "not-a-token".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        grpc_trace.traceparent().parse().expect("ASCII metadata"),
    );
    let _refused = client.verify(request).await;

    let rest_span = collector.span_in(&rest_trace).await;
    assert_request_span(&rest_span, "GET /user/me", "/user/me");
    let grpc_span = collector.span_in(&grpc_trace).await;
    assert_request_span(
        &grpc_span,
        "auth.v1.AuthService/Verify",
        "/auth.v1.AuthService/Verify",
    );
    // A made-up path names no span: scanners would flood the backend.
    let scan_span = collector.span_in(&scan_trace).await;
    assert_request_span(&scan_span, "GET", "/wp-admin/setup.php");
}

#[tokio::test]
async fn sigterm_exports_the_spans_still_batched() {
    let trace = CallerTrace {
        id: "5bf92f3577b34da6a3ce929d0e0e4737",
    };
    let mut collector = Collector::start().await;
    let database = TestDatabase::create().await;
    // An hour between batches: only the flush at shutdown can export.
    let (mut child, address) = spawn_exporting_authd(&collector, &database, "3600000").await;
    reqwest::Client::new()
        .get(format!("http://{address}/user/me"))
        .header("traceparent", trace.traceparent())
        .send()
        .await
        .expect("REST response");
    assert!(!collector.received_any(), "exported before the batch delay");

    let status = terminate(&mut child).await;

    assert!(status.success(), "{status:?}");
    let span = collector.span_in(&trace).await;
    assert_request_span(&span, "GET /user/me", "/user/me");
}
