//! The names gRPC health (`grpc.health.v1`) reports, and what each follows,
//! listed once.

use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

use crate::grpc::pb::auth_service_server::SERVICE_NAME as AUTH_SERVICE;
use crate::proxy::EnvoyAuthorization;

const ENVOY_AUTHORIZATION: &str = <AuthorizationServer<EnvoyAuthorization> as NamedService>::NAME;
use envoy_types::ext_authz::v3::pb::AuthorizationServer;

/// Names that follow the database: the whole server ("") and the service
/// that needs it for every call.
const FOLLOWING_THE_DATABASE: [&str; 2] = ["", AUTH_SERVICE];

/// Names that stay SERVING through a database outage until shutdown: token
/// checks need no database, so an Envoy health-checking this name keeps
/// sending checks through an outage.
const INDEPENDENT_OF_THE_DATABASE: [&str; 1] = [ENVOY_AUTHORIZATION];

/// What authd reports to health checks.
#[derive(Clone)]
pub struct HealthStatus {
    reporter: HealthReporter,
}

impl HealthStatus {
    /// Every name SERVING, and the service that answers health checks.
    pub async fn serving() -> (Self, HealthServer<impl Health>) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let health = Self { reporter };
        health.set_all(ServingStatus::Serving).await;
        (health, service)
    }

    /// Reports whether the database answers, for the names that follow it.
    pub async fn database(&self, status: ServingStatus) {
        self.set(&FOLLOWING_THE_DATABASE, status).await;
    }

    /// Every name NOT_SERVING, for good: the instance is stopping.
    pub async fn stopping(&self) {
        self.set_all(ServingStatus::NotServing).await;
    }

    async fn set_all(&self, status: ServingStatus) {
        self.set(&FOLLOWING_THE_DATABASE, status).await;
        self.set(&INDEPENDENT_OF_THE_DATABASE, status).await;
    }

    async fn set(&self, names: &[&'static str], status: ServingStatus) {
        for name in names {
            self.reporter.set_service_status(*name, status).await;
        }
    }
}
