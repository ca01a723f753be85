//! A gRPC service (`greeter.v1.Greeter`, `examples/greeter.proto`) whose
//! every call needs an authd access token, checked in-process by
//! authd-client's layer. Server reflection is open beside it, so grpcurl
//! needs no proto file and shows a refusal's `google.rpc.ErrorInfo`.
//! Against a local authd:
//!
//! ```sh
//! cargo run --release -- --revocation-feed-token dev-feed-token
//! AUTHD_FEED_TOKEN=dev-feed-token cargo run -p authd-client --example tonic_service
//! grpcurl -plaintext -H "authorization: Bearer $TOKEN" 127.0.0.1:50061 greeter.v1.Greeter/Hello
//! ```
//!
//! `AUTHD_ENDPOINT` (default `http://127.0.0.1:50051`) and `LISTEN`
//! (default `127.0.0.1:50061`) change where it looks and listens.

use std::env;
use std::io::IsTerminal as _;
use std::sync::Arc;

use authd_client::{Claims, RequireTokenLayer, Verifier, VerifierConfig};
use tonic::service::LayerExt as _;
use tonic::{Request, Response, Status};

mod pb {
    tonic::include_proto!("greeter.v1");

    /// The greeter's protos, written by `build.rs`, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("greeter_descriptor");
}

use pb::greeter_server::{Greeter, GreeterServer};
use pb::{HelloRequest, HelloResponse};

struct Greetings;

#[tonic::async_trait]
impl Greeter for Greetings {
    async fn hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloResponse>, Status> {
        // The layer let the call through, so the claims are there.
        let claims = request
            .extensions()
            .get::<Arc<Claims>>()
            .ok_or_else(|| Status::unauthenticated("no verified caller"))?;
        Ok(Response::new(HelloResponse {
            message: format!("hello {}", claims.username),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        // The log goes to stdout: colours for a terminal, plain text for a
        // file or a pipe.
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let endpoint = env::var("AUTHD_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let feed_token = env::var("AUTHD_FEED_TOKEN")
        .map_err(|_| "set AUTHD_FEED_TOKEN to one of authd's --revocation-feed-token values")?;
    let listen = env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:50061".into());

    let verifier = Verifier::connect(VerifierConfig::new(endpoint, feed_token)).await?;
    tracing::info!(listen, "tonic_service serving");
    tonic::transport::Server::builder()
        // The layer wraps the Greeter alone (`named_layer` keeps its name
        // for routing), not the whole server: reflection must answer
        // without a token, or grpcurl could neither find the method nor
        // decode the ErrorInfo of a refused call.
        .add_service(RequireTokenLayer::new(verifier).named_layer(GreeterServer::new(Greetings)))
        .add_service(reflection().build_v1()?)
        // Older grpcurl releases speak only v1alpha.
        .add_service(reflection().build_v1alpha()?)
        .serve(listen.parse()?)
        .await?;
    Ok(())
}

/// Reflection serves the greeter and the rich error details
/// (`google.rpc.ErrorInfo`), so grpcurl can show a refusal's reason.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}
