//! A service checking authd's access tokens with jwt-authorizer: discovery
//! (`from_oidc`) names the JWKS, `check_auth` checks the signature, issuer,
//! audience and times, and the handler the header's `typ`. GET / with
//! `Authorization: Bearer <token>`: 200 and the subject, or 401 and why.
//! (jwt-authorizer's layer refuses with an empty body; asking the
//! authorizer from the handler lets the refusal say why.)

use std::{env, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use jsonwebtoken::Algorithm;
use jwt_authorizer::{Authorizer, JwtAuthorizer, Refresh, RefreshStrategy, Validation};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = env::var("AUTHD_URL")?; // authd's --public-url: exactly its tokens' iss
    let audience = env::var("AUTHD_AUDIENCE").unwrap_or_else(|_| "authd".into());
    let port: u16 = env::var("PORT").map_or(Ok(8000), |port| port.parse())?;

    let authorizer: Authorizer = JwtAuthorizer::from_oidc(&issuer)
        .validation(
            Validation::new()
                .iss(&[&issuer])
                .aud(&[&audience])
                .algs(vec![Algorithm::EdDSA])
                .nbf(true)
                // The default is 60 s, an expired token accepted a minute on.
                .leeway(5),
        )
        // A token naming a key the store lacks (after `authd keys rotate`)
        // fetches the JWKS again, but only once `refresh_interval` has passed
        // since the last fetch: the default, 10 min, would refuse the new
        // key's tokens that long. 30 s is shorter than authd publishes a
        // rotated key before signing with it (--key-refresh-interval, 1 min
        // by default), so a fetch too recent to repeat already had the key.
        .refresh(Refresh {
            strategy: RefreshStrategy::KeyNotFound,
            refresh_interval: Duration::from_secs(30),
            ..Refresh::default()
        })
        .build()
        .await?;

    let app = Router::new()
        .route("/", get(verify))
        .with_state(Arc::new(authorizer));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn verify(State(authorizer): State<Arc<Authorizer>>, headers: HeaderMap) -> Response {
    let checked = match authorizer.extract_token(&headers) {
        Some(token) => authorizer
            .check_auth(&token)
            .await
            .map_err(|error| error.to_string()),
        None => Err("no bearer token".into()),
    };
    let subject = checked.and_then(|token| {
        if token.header.typ.as_deref() != Some("at+jwt") {
            return Err("not an access token (typ)".into());
        }
        token.claims.sub.ok_or_else(|| "no subject".into())
    });
    match subject {
        Ok(subject) => subject.into_response(),
        Err(why) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
            why,
        )
            .into_response(),
    }
}
