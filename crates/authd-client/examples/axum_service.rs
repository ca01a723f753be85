//! An HTTP service whose `/me` route needs an authd access token, checked
//! in-process by authd-client, and whose `/pay` route needs one from a
//! login with a second factor, within the last five minutes. Against a
//! local authd:
//!
//! ```sh
//! cargo run --release -- --revocation-feed-token dev-feed-token
//! AUTHD_FEED_TOKEN=dev-feed-token cargo run -p authd-client --features axum --example axum_service
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3001/me
//! curl -X POST -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3001/pay   # 401 without TOTP
//! ```
//!
//! `AUTHD_ENDPOINT` (default `http://127.0.0.1:50051`) and `LISTEN`
//! (default `127.0.0.1:3001`) change where it looks and listens.

use std::env;
use std::io::IsTerminal as _;
use std::time::Duration;

use authd_client::{
    AuthenticatedUser, AuthenticationPolicy, AuthenticationPolicyLayer, Verifier, VerifierConfig,
};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};

async fn me(AuthenticatedUser(claims): AuthenticatedUser) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user_id": claims.sub,
        "username": claims.username,
        "session_id": claims.sid,
        "expires_at": claims.exp,
    }))
}

/// Only behind the two-factor policy: the handler itself is no different.
async fn pay(AuthenticatedUser(claims): AuthenticatedUser) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "paid_by": claims.username,
        "amr": claims.amr,
        "authenticated_at": claims.auth_time,
    }))
}

/// Open to all: how the verifier is doing.
async fn health(State(verifier): State<Verifier>) -> String {
    format!("{:?}\n", verifier.state())
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
    let listen = env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".into());

    let verifier = Verifier::connect(VerifierConfig::new(endpoint, feed_token)).await?;
    let two_factors_lately = AuthenticationPolicy::new()
        .require_two_factors()
        .max_auth_age(Duration::from_secs(300));
    let app = Router::new()
        .route("/me", get(me))
        .route(
            "/pay",
            post(pay).layer(AuthenticationPolicyLayer::new(two_factors_lately)),
        )
        .route("/health", get(health))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(listen, "axum_service serving");
    axum::serve(listener, app).await?;
    Ok(())
}
