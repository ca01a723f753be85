//! CORS for browser apps on other origins, for REST and grpc-web alike
//! (grpc-web itself is applied per gRPC service at start-up, so plain
//! HTTP/1.1 REST requests pass untouched).

use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::future::Either;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, Response};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

/// Headers a grpc-web client sends besides `content-type` and `authorization`.
const GRPC_WEB_REQUEST_HEADERS: [&str; 4] = [
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    crate::telemetry::REQUEST_ID_HEADER,
];
/// Headers a grpc-web client must be able to read: where the status travels
/// when a call fails before any message.
const GRPC_WEB_RESPONSE_HEADERS: [&str; 4] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    crate::telemetry::REQUEST_ID_HEADER,
];

/// CORS for browser apps served from other origins, on every path but
/// `except`. With no allowed origin (the default) no CORS headers are sent,
/// so browsers keep every other origin out, and requests skip the layer (it
/// would only add `Vary`).
pub fn cors_layer(allowed_origins: &[HeaderValue], except: &'static str) -> CorsExceptLayer {
    let request_headers = GRPC_WEB_REQUEST_HEADERS
        .into_iter()
        .map(HeaderName::from_static)
        .chain([CONTENT_TYPE, AUTHORIZATION]);
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed_origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(request_headers.collect::<Vec<_>>())
        .expose_headers(GRPC_WEB_RESPONSE_HEADERS.map(HeaderName::from_static))
        // The allow-list is explicit, so the session cookie may travel too.
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    CorsExceptLayer {
        cors: (!allowed_origins.is_empty()).then_some(cors),
        path: except,
    }
}

/// CORS on every path but one (forward auth's: proxies ask there about
/// requests of every method, and CORS answers any OPTIONS request itself
/// with a 200, which a proxy would take for "allowed").
#[derive(Debug, Clone)]
pub struct CorsExceptLayer {
    /// None when no origin is allowed.
    cors: Option<CorsLayer>,
    path: &'static str,
}

impl<S: Clone> Layer<S> for CorsExceptLayer {
    type Service = CorsExcept<S>;

    fn layer(&self, inner: S) -> CorsExcept<S> {
        CorsExcept {
            cors: self.cors.as_ref().map(|cors| cors.layer(inner.clone())),
            plain: inner,
            path: self.path,
        }
    }
}

/// See [`CorsExceptLayer`].
#[derive(Debug, Clone)]
pub struct CorsExcept<S> {
    cors: Option<Cors<S>>,
    plain: S,
    path: &'static str,
}

impl<S, B, ResponseBody> Service<Request<B>> for CorsExcept<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>> + Clone,
    ResponseBody: Default,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = Either<<Cors<S> as Service<Request<B>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Each holds its own clone of the inner service; both must be ready.
        if let Some(cors) = &mut self.cors {
            ready!(cors.poll_ready(cx))?;
        }
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match &mut self.cors {
            Some(cors) if request.uri().path() != self.path => Either::Left(cors.call(request)),
            _ => Either::Right(self.plain.call(request)),
        }
    }
}
