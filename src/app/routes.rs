//! Every route authd serves on its one port, listed once: the REST gateway
//! with discovery, introspection and forward auth, and the gRPC services,
//! each with grpc-web where browsers call it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use anyhow::Context as _;
use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use tonic::service::{LayerExt as _, Routes};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_web::GrpcWebLayer;

use crate::config::Settings;
use crate::domain::Authenticator;
use crate::grpc::pb::revocation_service_server::RevocationServiceServer;
use crate::grpc::{self, DeadlineLayer, FeedCredentials, RevocationFeed, pb};
use crate::http::client_address::ClientAddressResolver;
use crate::http::problem::Problem;
use crate::proxy::{self, EnvoyAuthorization};
use crate::storage::Database;
use crate::{oidc, rest};

/// Envoy's check of one request: its headers, and its body only if Envoy is
/// told to send it, which authd has no use for.
const MAX_CHECK_REQUEST_BYTES: usize = 256 * 1024;

/// REST (with forward auth, unknown paths and the web root) and every gRPC
/// service. grpc-web is applied per gRPC service, so plain HTTP/1.1 REST
/// requests pass untouched.
pub fn routes(
    auth: &Arc<Authenticator<Database>>,
    health: HealthServer<impl Health>,
    settings: &Settings,
) -> anyhow::Result<Routes> {
    let addresses = ClientAddressResolver::new(settings.client_address_header.clone());
    let grpc_web = GrpcWebLayer::new();
    let also = oidc::router(Arc::clone(auth.tokens()), settings);
    let rest = rest::router(Arc::clone(auth), addresses.clone(), settings, also)
        .merge(proxy::forward_auth_router(
            Arc::clone(auth.tokens()),
            settings.cookie_name.clone(),
            settings.identity_headers(),
        ))
        .layer(axum::middleware::from_fn_with_state(
            settings.request_timeout,
            within_request_timeout,
        ));
    Ok(Routes::from(rest)
        .add_service(grpc_web.named_layer(health))
        .add_service(grpc_web.named_layer(
            DeadlineLayer.named_layer(grpc::auth_service(Arc::clone(auth), addresses)),
        ))
        .add_service(
            AuthorizationServer::new(EnvoyAuthorization::new(
                Arc::clone(auth.tokens()),
                settings.cookie_name.clone(),
                settings.identity_headers(),
            ))
            .max_decoding_message_size(MAX_CHECK_REQUEST_BYTES),
        )
        .add_service(RevocationServiceServer::new(RevocationFeed::new(
            Arc::clone(auth.tokens().revocations()),
            FeedCredentials::new(&settings.revocation_feed_tokens),
            settings.revocation_checkpoint_interval,
        )))
        .add_service(
            reflection()
                .build_v1()
                .context("cannot build gRPC reflection")?,
        )
        // Older grpcurl releases speak only v1alpha.
        .add_service(
            reflection()
                .build_v1alpha()
                .context("cannot build gRPC reflection")?,
        ))
}

/// A REST call not answered within `--request-timeout` is dropped and
/// answered 503 `REQUEST_TIMEOUT`, as problem+json like every other refusal.
async fn within_request_timeout(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::request_timeout(timeout).into_response(),
    }
}

/// Reflection serves authd's protos, health, the rich error details (so
/// grpcurl can show them) and both reflection versions.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false)
}
