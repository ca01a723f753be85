//! Request limits and protocol abuse: advertised HTTP/2 limits, rapid reset
//! and oversized header blocks. Client deadlines: `admission.rs`.

use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// An HTTP/2 connection to authd, driven in the background.
async fn h2_connection(
    app: &TestApp,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<usize>,
) {
    let address = app.base_url.trim_start_matches("http://");
    let tcp = TcpStream::connect(address).await.expect("connect");
    let (send, mut connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    // Runs until every handle is dropped, then reports the server's
    // advertised stream limit.
    let driver = tokio::spawn(async move {
        let _ = (&mut connection).await;
        connection.max_concurrent_send_streams()
    });
    (send, driver)
}

fn grpc_request(path: &str) -> http::Request<()> {
    http::Request::post(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request")
}

#[tokio::test]
async fn http2_advertises_a_stream_limit() {
    let app = TestApp::spawn().await;
    let (mut send, driver) = h2_connection(&app).await;
    let (response, _) = send
        .send_request(grpc_request("/grpc.health.v1.Health/Check"), true)
        .expect("send");
    response.await.expect("response");
    drop(send);

    let limit = tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("connection closes")
        .expect("driver");

    assert_eq!(limit, 128);
}

#[tokio::test]
async fn rapid_reset_floods_do_not_take_the_service_down() {
    let app = TestApp::spawn().await;
    let (mut send, driver) = h2_connection(&app).await;

    // Open streams and cancel each at once, as in CVE-2023-44487.
    for _ in 0..2_000 {
        let Ok(ready) = tokio::time::timeout(Duration::from_secs(5), send.clone().ready()).await
        else {
            break;
        };
        let Ok(mut ready) = ready else {
            break; // the server closed the abusive connection: fine
        };
        match ready.send_request(grpc_request("/auth.v1.AuthService/Verify"), false) {
            Ok((_, mut body)) => body.send_reset(h2::Reason::CANCEL),
            Err(_) => break,
        }
        send = ready;
    }
    drop(send);
    driver.abort();

    let token = app.registered_token("Omar").await;
    app.verify(&token).await.expect("authd still answers");
}

#[tokio::test]
async fn oversized_header_blocks_are_refused_and_harm_nothing() {
    let app = TestApp::spawn().await;
    let (mut send, driver) = h2_connection(&app).await;
    // Far beyond the 16 KiB header limit: sent as HEADERS plus CONTINUATIONs.
    let mut request = grpc_request("/auth.v1.AuthService/Verify");
    request.headers_mut().insert(
        "x-padding",
        "a".repeat(1024 * 1024).parse().expect("header value"),
    );

    let outcome = match send.send_request(request, true) {
        Ok((response, _)) => tokio::time::timeout(Duration::from_secs(10), response)
            .await
            .expect("an answer, not a hang")
            .map(|response| response.status()),
        Err(error) => Err(error),
    };
    drop(send);
    driver.abort();

    match outcome {
        Ok(status) => assert_eq!(status, http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(error) => assert!(
            error.is_reset() || error.is_go_away() || error.is_io(),
            "{error:?}"
        ),
    }
    let token = app.registered_token("Pam").await;
    app.verify(&token).await.expect("authd still answers");
}
