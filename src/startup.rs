//! Builds the application from its settings and serves it. The binary and
//! the tests start authd the same way: `Application::build`, then
//! `run_until_stopped`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use tokio::net::TcpListener;
use tonic::service::{LayerExt as _, Routes};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tonic_web::GrpcWebLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Settings;
use crate::domain::{
    Authenticator, FileKey, PasswordHasher, RateLimiter, Revocations, RevocationsFrom,
    TokenService, load_or_create_signing_keys,
};
use crate::grpc::pb::revocation_service_server::RevocationServiceServer;
use crate::grpc::{self, DeadlineLayer, FeedCredentials, RevocationFeed, pb};
use crate::http::client_address::ClientAddressResolver;
use crate::http::client_gone::ClientGoneLayer;
use crate::http::cors::cors_layer;
use crate::http::request_metrics::RequestMetricsLayer;
use crate::proxy::{self, EnvoyAuthorization, FORWARD_AUTH_PATH};
use crate::storage::Database;
use crate::{metrics, rest, telemetry, upkeep};

/// Headers of one request: a bearer token and a few more fit many times.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Envoy's check of one request: its headers, and its body only if Envoy is
/// told to send it, which authd has no use for.
const MAX_CHECK_REQUEST_BYTES: usize = 256 * 1024;
/// How much later than `--request-timeout` tonic's own timeout fires.
const REQUEST_TIMEOUT_BACKSTOP: Duration = Duration::from_secs(1);

/// A bound, ready-to-serve authd.
pub struct Application {
    settings: Settings,
    listener: TcpListener,
    auth: Arc<Authenticator<Database>>,
    health: HealthReporter,
    routes: Routes,
}

impl Application {
    /// Connects to and migrates the database, loads keys and revocations,
    /// and binds the listener. Fails with a message fit for an operator.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        metrics::handle();
        let database = connect_and_migrate(&settings).await?;
        let files = settings
            .signing_key_files
            .iter()
            .map(|path| FileKey::load(path))
            .collect::<Result<Vec<_>, _>>()
            .context("cannot load the signing key files")?;
        let keys = load_or_create_signing_keys(&database)
            .await
            .context("cannot load the token signing keys")?;
        let revocations =
            Revocations::new(settings.token_lifetime).context("cannot set up revocations")?;
        let tokens = TokenService::new(files, &keys, settings.tokens(), Arc::new(revocations))
            .context("cannot set up token signing")?;
        let hasher =
            PasswordHasher::new(&settings.hashing()).context("invalid argon2 parameters")?;
        let limits = RateLimiter::new(settings.rate_limits());
        let auth = Arc::new(Authenticator::new(
            database,
            hasher,
            Arc::new(tokens),
            limits,
            settings.sessions(),
        ));
        auth.take_up_revocations(RevocationsFrom::InForce)
            .await
            .context("cannot load revocations")?;
        let addresses = ClientAddressResolver::new(settings.client_address_header.clone());

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<pb::auth_service_server::AuthServiceServer<grpc::AuthGrpc<Database>>>()
            .await;
        // Checks need no database, so this one does not follow it: an Envoy
        // health-checking this name keeps sending checks through an outage.
        health
            .set_serving::<AuthorizationServer<EnvoyAuthorization>>()
            .await;
        let grpc_web = GrpcWebLayer::new();
        let rest = rest::router(Arc::clone(&auth), addresses.clone(), &settings)
            .merge(proxy::forward_auth_router(
                Arc::clone(auth.tokens()),
                settings.cookie_name.clone(),
                settings.identity_headers(),
            ))
            .layer(TimeoutLayer::with_status_code(
                http::StatusCode::SERVICE_UNAVAILABLE,
                settings.request_timeout,
            ));
        let routes = Routes::from(rest)
            .add_service(grpc_web.named_layer(health_service))
            .add_service(grpc_web.named_layer(
                DeadlineLayer.named_layer(grpc::auth_service(Arc::clone(&auth), addresses)),
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
            );

        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        Ok(Self {
            settings,
            listener,
            auth,
            health,
            routes,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.settings.listen)
    }

    /// Serves until `shutdown` completes, then lets in-flight RPCs finish.
    /// `shutdown` resolves to how long to keep serving while health reports
    /// NOT_SERVING, so load balancers stop sending new calls first; then
    /// authd stops accepting and gives in-flight calls up to
    /// `--shutdown-timeout` to finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = Duration> + Send,
    ) -> anyhow::Result<()> {
        tracing::info!(
            listen = %self.local_addr(),
            database = %self.settings.database_url_redacted(),
            web_root = ?self.settings.web_root,
            "authd serving gRPC, grpc-web and REST"
        );
        // Background upkeep, stopped together when serving ends.
        let mut tasks = tokio::task::JoinSet::new();
        let health = tasks.spawn(upkeep::report_health(
            Arc::clone(&self.auth),
            self.health.clone(),
            self.settings.health_check_interval,
        ));
        tasks.spawn(upkeep::prune(Arc::clone(&self.auth)));
        tasks.spawn(upkeep::listen_for_revocations(Arc::clone(&self.auth)));
        tasks.spawn(upkeep::catch_up_revocations(
            Arc::clone(&self.auth),
            self.settings.revocation_refresh_interval,
        ));
        tasks.spawn(upkeep::refresh_keys(
            Arc::clone(&self.auth),
            self.settings.key_refresh_interval,
        ));
        let health_reporter = self.health.clone();
        let stopping = Arc::new(tokio::sync::Notify::new());
        let drained = {
            let stopping = Arc::clone(&stopping);
            let health_task = health;
            let revocations = Arc::clone(self.auth.tokens().revocations());
            async move {
                let drain = shutdown.await;
                // Watchers move to another instance now: a stream would
                // hold the shutdown until its timeout.
                revocations.close();
                // Health must stay NOT_SERVING from here on.
                health_task.abort();
                upkeep::set_health(&health_reporter, ServingStatus::NotServing).await;
                health_reporter
                    .set_not_serving::<AuthorizationServer<EnvoyAuthorization>>()
                    .await;
                tracing::info!(drain = ?drain, "shutting down: reporting NOT_SERVING while load balancers drain");
                tokio::time::sleep(drain).await;
                tracing::info!("shutting down: no new connections, finishing in-flight requests");
                stopping.notify_one();
            }
        };
        let shutdown_timeout = self.settings.shutdown_timeout;
        let deadline = async move {
            stopping.notified().await;
            tokio::time::sleep(shutdown_timeout).await;
        };
        // The builder's TCP options apply only to listeners it binds itself;
        // without TCP_NODELAY, a caller making one call at a time waits for
        // Nagle's algorithm (40 ms per call on Linux).
        let incoming = TcpIncoming::from(self.listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(KEEPALIVE_INTERVAL));
        let serving = Server::builder()
            // HTTP/1.1 for REST and grpc-web from browsers; gRPC uses HTTP/2.
            .accept_http1(true)
            // A backstop: REST answers its own timeout first, gRPC calls end
            // by their grpc-timeout when the client sets one.
            .timeout(self.settings.request_timeout + REQUEST_TIMEOUT_BACKSTOP)
            .max_concurrent_streams(self.settings.max_concurrent_streams)
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
                &self.settings.cors_allowed_origins,
                FORWARD_AUTH_PATH,
            ))
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(incoming, drained);
        let served = tokio::select! {
            served = serving => served,
            () = deadline => {
                tracing::warn!(timeout = ?shutdown_timeout, "shutdown timeout: dropping the calls still in flight");
                Ok(())
            }
        };
        tasks.abort_all();
        tracing::info!("authd stopped");
        served.context("gRPC server failed")
    }
}

/// Applies the migrations and exits: `authd migrate`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    connect_and_migrate(settings).await?;
    tracing::info!(database = %settings.database_url_redacted(), "migrations applied");
    Ok(())
}

pub(crate) async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<Database> {
    let url = settings.database_url_redacted();
    let database = Database::connect(&settings.database())
        .await
        .with_context(|| format!("database {url}"))?;
    database
        .migrate()
        .await
        .with_context(|| format!("database {url}"))?;
    Ok(database)
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

/// Completes on Ctrl-C or SIGTERM with how long to drain: SIGTERM comes
/// from orchestrators, whose load balancers need `drain` to notice
/// NOT_SERVING; Ctrl-C comes from a person, who should not wait.
pub async fn shutdown_signal(drain: Duration) -> Duration {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => Duration::ZERO,
        () = terminate => drain,
    }
}
