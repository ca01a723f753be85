//! The HTTP/2 and HTTP/1.1 server around the routes: connection limits and
//! timeouts, and the layer stack every request passes, outermost first.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::config::Settings;
use crate::http::client_gone::ClientGoneLayer;
use crate::http::cors::cors_layer;
use crate::http::request_metrics::RequestMetricsLayer;
use crate::proxy::FORWARD_AUTH_PATH;
use crate::telemetry;

/// Headers of one request: a bearer token and a few more fit many times.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much later than `--request-timeout` tonic's own timeout fires.
const REQUEST_TIMEOUT_BACKSTOP: Duration = Duration::from_secs(1);

/// Serves `routes` on `listener` until `stop` completes, then lets the
/// calls in flight finish.
pub async fn serve(
    settings: &Settings,
    listener: TcpListener,
    routes: Routes,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // The builder's TCP options apply only to listeners it binds itself;
    // without TCP_NODELAY, a caller making one call at a time waits for
    // Nagle's algorithm (40 ms per call on Linux).
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(KEEPALIVE_INTERVAL));
    Server::builder()
        // HTTP/1.1 for REST and grpc-web from browsers; gRPC uses HTTP/2.
        .accept_http1(true)
        // A backstop: REST answers its own timeout first, gRPC calls end
        // by their grpc-timeout when the client sets one.
        .timeout(settings.request_timeout + REQUEST_TIMEOUT_BACKSTOP)
        .max_concurrent_streams(settings.max_concurrent_streams)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        // Dead peers are found and their connections closed.
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(telemetry::set_request_id_layer())
        .layer(telemetry::RequestLogLayer)
        .layer(telemetry::propagate_request_id_layer())
        .layer(RequestMetricsLayer)
        // Inside the two above, so that they log and count its answer.
        .layer(ClientGoneLayer)
        .layer(cors_layer(
            &settings.cors_allowed_origins,
            FORWARD_AUTH_PATH,
        ))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop)
        .await
}
