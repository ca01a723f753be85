//! Client deadlines (`grpc-timeout`): handed to the domain, and answered as
//! gRPC specifies.
//!
//! The layer parses `grpc-timeout` once and leaves the deadline in the
//! request extensions as a [`deadline::Deadline`], so that password hashing
//! refuses at once a call it cannot finish in time; handlers pass it on
//! without reading headers. tonic enforces `grpc-timeout` itself, but
//! answers CANCELLED; the gRPC spec says DEADLINE_EXCEEDED. This layer sits
//! inside tonic's and gives up a moment earlier, so callers see the right
//! code. Dropping the call also gives back its place in the password-hash
//! queue.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tower::{Layer, Service};

use crate::deadline;
use crate::domain::AuthError;

/// How much earlier than tonic this layer gives up.
const MARGIN: Duration = Duration::from_millis(5);

/// Applies [`Deadline`] to a gRPC service.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

/// A gRPC service whose calls end with DEADLINE_EXCEEDED when the client's
/// `grpc-timeout` runs out.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B, ResponseBody> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
    ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResponseBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let timeout = grpc_timeout(request.headers()).map(|timeout| timeout.saturating_sub(MARGIN));
        if let Some(timeout) = timeout {
            request
                .extensions_mut()
                .insert(deadline::Deadline::after(timeout));
        }
        let call = self.inner.call(request);
        Box::pin(async move {
            let answered = match timeout {
                Some(timeout) => tokio::time::timeout(timeout, call).await,
                None => Ok(call.await),
            };
            Ok(match answered {
                Ok(Ok(response)) => response.map(tonic::body::Body::new),
                Err(_elapsed) => tonic::Status::from(AuthError::DeadlineExceeded).into_http(),
            })
        })
    }
}

/// Parses `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(value: &'static str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeouts_parse_as_the_spec_writes_them() {
        assert_eq!(timeout_of("50m"), Some(Duration::from_millis(50)));
        assert_eq!(timeout_of("2S"), Some(Duration::from_secs(2)));
        assert_eq!(timeout_of("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            timeout_of("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "123456789m", "10x", "-5m", "5.5S"] {
            assert_eq!(timeout_of(bad), None, "{bad:?}");
        }
    }

    /// Answers after `delay`, echoing the deadline it was handed, if any, as
    /// the milliseconds left.
    #[derive(Clone)]
    struct Slow(Duration);

    impl Service<Request<()>> for Slow {
        type Response = Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<()>) -> Self::Future {
            let left = request
                .extensions()
                .get::<deadline::Deadline>()
                .map(|deadline| deadline.remaining().as_millis());
            let delay = self.0;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                let mut response = Response::new(tonic::body::Body::empty());
                if let Some(left) = left {
                    response
                        .headers_mut()
                        .insert("deadline-left-ms", left.to_string().parse().unwrap());
                }
                Ok(response)
            })
        }
    }

    fn with_timeout(timeout: &'static str) -> Request<()> {
        Request::builder()
            .header("grpc-timeout", timeout)
            .body(())
            .unwrap()
    }

    #[tokio::test]
    async fn the_deadline_reaches_the_handler_through_the_extensions() {
        let response = DeadlineLayer
            .layer(Slow(Duration::ZERO))
            .call(with_timeout("2S"))
            .await
            .unwrap();
        let left: u128 = response.headers()["deadline-left-ms"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1900..2000).contains(&left), "{left} ms left");

        let response = DeadlineLayer
            .layer(Slow(Duration::ZERO))
            .call(Request::new(()))
            .await
            .unwrap();
        assert!(response.headers().get("deadline-left-ms").is_none());
    }

    #[tokio::test]
    async fn a_call_past_its_deadline_is_deadline_exceeded() {
        let started = std::time::Instant::now();
        let response = DeadlineLayer
            .layer(Slow(Duration::from_secs(10)))
            .call(with_timeout("50m"))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(response.headers()["grpc-status"], "4");
    }
}
