//! Requests whose client went away before the answer: the connection closed,
//! or the client cancelled the call (HTTP/2 `RST_STREAM`).
//!
//! Such a request ends in one of two ways, and both must reach the log and
//! `/metrics` as what they are, once:
//!
//! - It was still sending its body. Reading the body fails, and the handler
//!   answers as it would any bad body: tonic with UNKNOWN (a broken
//!   connection is an HTTP/2 error without a reason, which tonic maps to
//!   UNKNOWN), axum with 400. [`ClientGoneLayer`] notices the failure and
//!   replaces that answer with [`CLIENT_CLOSED_REQUEST`] and, for gRPC,
//!   CANCELLED, which the layers outside it log and count as usual.
//! - Its body had arrived, and the handler was working (hashing, say). hyper
//!   drops the call's future, so no answer ever comes; the logging and
//!   metrics layers each hold a guard that records the call as cancelled when
//!   it is dropped unanswered (`telemetry`, `metrics`).
//!
//! Nothing is sent in either case: no one is left to read it.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

/// The HTTP status recorded for a request whose client went away: nginx's
/// 499 "client closed request", for REST and gRPC alike (a gRPC call also
/// records CANCELLED).
pub const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => panic!("499 is a valid status code"),
};

/// Whether a request or response is gRPC, native or grpc-web, by its
/// content type.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// Answers a request whose body failed because its client went away with
/// [`CLIENT_CLOSED_REQUEST`] (and `grpc-status: 1` for gRPC), whatever the
/// handler made of the failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientGoneLayer;

impl<S> Layer<S> for ClientGoneLayer {
    type Service = ClientGone<S>;

    fn layer(&self, inner: S) -> ClientGone<S> {
        ClientGone { inner }
    }
}

/// See [`ClientGoneLayer`].
#[derive(Debug, Clone)]
pub struct ClientGone<S> {
    inner: S,
}

impl<S, B, ResponseBody> Service<Request<B>> for ClientGone<S>
where
    S: Service<Request<WatchedBody<B>>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: Default,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let gone = Arc::new(AtomicBool::new(false));
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .filter(|_| is_grpc(request.headers()))
            .cloned();
        let request = request.map(|body| WatchedBody {
            inner: body,
            gone: Arc::clone(&gone),
        });
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(if gone.load(Ordering::Acquire) {
                client_gone_response(content_type)
            } else {
                response
            })
        })
    }
}

/// What a request whose client went away is recorded as. For gRPC, a
/// trailers-only answer with CANCELLED in its headers, of the request's
/// content type.
fn client_gone_response<B: Default>(grpc_content_type: Option<HeaderValue>) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = CLIENT_CLOSED_REQUEST;
    if let Some(content_type) = grpc_content_type {
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, content_type);
        headers.insert("grpc-status", HeaderValue::from_static("1"));
    }
    response
}

/// A request body that notes when it fails because its client went away.
#[derive(Debug)]
pub struct WatchedBody<B> {
    inner: B,
    gone: Arc<AtomicBool>,
}

impl<B> Body for WatchedBody<B>
where
    B: Body + Unpin,
    B::Error: Error + 'static,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(error))) = &polled
            && client_went_away(error)
        {
            self.gone.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether reading a request failed because its client left: its
/// connection broke or closed (HTTP/2 I/O error; HTTP/1.1 end of file before
/// the body's end or a reset), or it cancelled the call (`RST_STREAM` with
/// CANCEL). Not a malformed body or a protocol violation: those are the
/// client's errors, answered as such.
fn client_went_away(error: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.is_io() || (h2.is_remote() && h2.reason() == Some(h2::Reason::CANCEL));
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{
                BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof,
            };
            return matches!(
                io.kind(),
                BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
            );
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How tonic hands a request body's failure on: as a `Status` whose
    /// source is the transport's error.
    fn as_tonic_sees_it(error: impl Error + Send + Sync + 'static) -> tonic::Status {
        tonic::Status::from_error(Box::new(error))
    }

    #[test]
    fn a_broken_or_reset_connection_means_the_client_went_away() {
        for kind in [
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::ConnectionReset,
        ] {
            let failure = as_tonic_sees_it(std::io::Error::from(kind));
            assert_eq!(
                failure.code(),
                tonic::Code::Unknown,
                "what tonic makes of it"
            );
            assert!(client_went_away(&failure), "{kind:?}");
        }
    }

    #[test]
    fn malformed_requests_are_not_taken_for_departures() {
        for error in [
            as_tonic_sees_it(h2::Error::from(h2::Reason::PROTOCOL_ERROR)),
            as_tonic_sees_it(std::io::Error::from(std::io::ErrorKind::InvalidData)),
            tonic::Status::invalid_argument("bad body"),
        ] {
            assert!(!client_went_away(&error), "{error:?}");
        }
    }

    #[test]
    fn a_grpc_call_whose_client_went_away_is_cancelled_with_499() {
        let response: Response<String> =
            client_gone_response(Some(HeaderValue::from_static("application/grpc")));
        assert_eq!(response.status().as_u16(), 499);
        assert_eq!(response.headers()["grpc-status"], "1");
        assert!(is_grpc(response.headers()));
        let rest: Response<String> = client_gone_response(None);
        assert_eq!(rest.status().as_u16(), 499);
        assert!(rest.headers().is_empty());
    }
}
