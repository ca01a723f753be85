//! Calls whose client went away: the connection closed, or the call was
//! cancelled (`RST_STREAM`). Each is logged and counted once, as CANCELLED
//! with HTTP status 499: neither a server error nor invisible. authd runs as
//! its own process here, so that its log and its metrics hold only the
//! test's calls.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use authd::grpc::pb::LoginRequest;
use authd::grpc::pb::auth_service_client::AuthServiceClient;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::helpers::{PASSWORD, TestDatabase, authd_command};

/// How long a call is given to reach its password hash before it is
/// abandoned: tens of milliseconds are enough, and a hash here takes
/// hundreds.
const INTO_THE_HASH: Duration = Duration::from_millis(150);

/// A running authd binary whose JSON log lines the test reads.
struct Authd {
    address: String,
    log: mpsc::UnboundedReceiver<serde_json::Value>,
    _database: TestDatabase,
    _process: tokio::process::Child,
}

impl Authd {
    /// One password hash at a time, each a few hundred milliseconds, and
    /// the user `Ursula` registered.
    async fn start() -> Self {
        let database = TestDatabase::create().await;
        let mut process = authd_command()
            .args(["--listen", "127.0.0.1:0", "--database-url", &database.url])
            .args(["--log-format", "json", "--hash-concurrency", "1"])
            .args(["--argon2-memory-kib", "65536", "--argon2-iterations", "12"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("authd starts");
        let mut lines = BufReader::new(process.stderr.take().expect("stderr")).lines();
        let (sender, mut log) = mpsc::unbounded_channel::<serde_json::Value>();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                // `binary.rs` checks that every line is JSON.
                let Ok(event) = serde_json::from_str(&line) else {
                    continue;
                };
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
        let address = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let event = log.recv().await.expect("authd exited before serving");
                if let Some(listen) = event["listen"].as_str() {
                    return listen.to_owned();
                }
            }
        })
        .await
        .expect("authd starts serving");
        let authd = Self {
            address,
            log,
            _database: database,
            _process: process,
        };
        authd
            .client()
            .await
            .register(authd::grpc::pb::RegisterRequest {
                username: "Ursula".into(),
                password: PASSWORD.into(),
                email: String::new(),
            })
            .await
            .expect("registered");
        authd
    }

    /// A gRPC client on a connection of its own.
    async fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::connect(format!("http://{}", self.address))
            .await
            .expect("connects")
    }

    /// A Login that succeeds. With one hash at a time, it is answered only
    /// once the hashes of the calls abandoned before it are done, so that any
    /// late log line or count of theirs would be in by then.
    async fn login(&self) {
        self.client()
            .await
            .login(LoginRequest {
                username: "Ursula".into(),
                password: PASSWORD.into(),
            })
            .await
            .expect("logged in");
    }

    /// The `authd_requests_total` series of `route` (their labels after the
    /// route, and counts), and the requests logged until then, by request id.
    async fn outcomes(
        &mut self,
        route: &str,
    ) -> (
        BTreeMap<String, f64>,
        BTreeMap<String, Vec<serde_json::Value>>,
    ) {
        let scrape = reqwest::Client::new()
            .get(format!("http://{}/metrics", self.address))
            .header("x-request-id", "scrape")
            .send()
            .await
            .expect("scraped")
            .text()
            .await
            .expect("text");
        let prefix = format!("authd_requests_total{{route=\"{route}\",");
        let series = scrape
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .map(|line| {
                let (labels, count) = line.rsplit_once(' ').expect("a sample");
                (labels.to_owned(), count.parse().expect("a count"))
            })
            .collect();
        let mut logged: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let event = self.log.recv().await.expect("authd is running");
                if event["message"] != "finished" {
                    continue;
                }
                let request_id = event["span"]["request_id"].as_str().unwrap_or_default();
                if request_id == "scrape" {
                    return;
                }
                logged
                    .entry(request_id.to_owned())
                    .or_default()
                    .push(event["span"].clone());
            }
        })
        .await
        .expect("the scrape is logged");
        (series, logged)
    }
}

/// Asserts that the request was logged once, as a gRPC call whose client
/// went away.
#[track_caller]
fn assert_logged_once_as_cancelled(logged: &BTreeMap<String, Vec<serde_json::Value>>, id: &str) {
    let lines = logged.get(id).map(Vec::as_slice).unwrap_or_default();
    assert_eq!(lines.len(), 1, "{id} logged once: {logged:#?}");
    assert_eq!(lines[0]["grpc_status"], "Cancelled", "{id}: {lines:#?}");
    assert_eq!(lines[0]["status"], 499, "{id}: {lines:#?}");
}

/// An HTTP/2 connection to authd, driven in the background.
async fn h2_connection(
    authd: &Authd,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(&authd.address).await.expect("connect");
    let (send, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (send, driver)
}

/// Starts a Login on a raw HTTP/2 connection with `x-request-id: id`,
/// sending only the first `sent` bytes of its message (all of it, and the
/// end of the stream, when `None`).
fn start_login(
    send: &mut h2::client::SendRequest<Bytes>,
    id: &str,
    sent: Option<usize>,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let request = http::Request::post("/auth.v1.AuthService/Login")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-request-id", id)
        .body(())
        .expect("request");
    let (response, mut body) = send.send_request(request, false).expect("send");
    let payload = prost::Message::encode_to_vec(&LoginRequest {
        username: "Ursula".into(),
        password: PASSWORD.into(),
    });
    let mut message = vec![0u8];
    message.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    message.extend_from_slice(&payload);
    let message = Bytes::from(message);
    match sent {
        Some(sent) => body.send_data(message.slice(..sent), false),
        None => body.send_data(message, true),
    }
    .expect("body");
    (response, body)
}

#[tokio::test]
async fn calls_on_a_connection_the_client_closes_are_cancelled_not_unknown() {
    let _exclusive = crate::helpers::cpu_heavy().await;
    let mut authd = Authd::start().await;
    let (mut send, driver) = h2_connection(&authd).await;
    // One call hashing, one still sending its message: before the fix, the
    // first left no trace and the second was counted as UNKNOWN.
    let hashing = start_login(&mut send, "hashing", None);
    let uploading = start_login(&mut send, "uploading", Some(10));
    tokio::time::sleep(INTO_THE_HASH).await;

    // The connection goes, without a frame more: no RST_STREAM, no GOAWAY.
    driver.abort();
    let _ = driver.await;
    drop((hashing, uploading, send));
    authd.login().await;

    // None UNKNOWN.
    assert_two_logins_cancelled(&mut authd, 1.0).await;
}

#[tokio::test]
async fn calls_the_client_cancels_are_cancelled_while_the_connection_stays() {
    let _exclusive = crate::helpers::cpu_heavy().await;
    let mut authd = Authd::start().await;
    // A tonic client that gives up on its call mid-hash: its `RST_STREAM`
    // dropped the call, which left no trace.
    let mut client = authd.client().await;
    let mut request = tonic::Request::new(LoginRequest {
        username: "Ursula".into(),
        password: PASSWORD.into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "hashing".parse().expect("ASCII"));
    let call = tokio::spawn(async move { client.login(request).await });
    // A call reset while it still sends its message: tonic took the reset
    // for the end of the message, and answered INTERNAL.
    let (mut send, driver) = h2_connection(&authd).await;
    let (_response, mut uploading) = start_login(&mut send, "uploading", Some(10));
    tokio::time::sleep(INTO_THE_HASH).await;

    call.abort();
    assert!(call.await.is_err_and(|error| error.is_cancelled()));
    uploading.send_reset(h2::Reason::CANCEL);
    // The connection is still open: its next call is answered.
    let (answered, _) = start_login(&mut send, "answered", None);
    let answered = answered.await.expect("answered on the same connection");
    assert_eq!(answered.status(), 200);
    drop(send);
    driver.abort();
    authd.login().await;

    // None INTERNAL.
    assert_two_logins_cancelled(&mut authd, 2.0).await;
}

/// Asserts that the Logins `hashing` and `uploading` were counted once
/// each as cancelled and logged once each as such, beside `answered`
/// Logins that succeeded.
async fn assert_two_logins_cancelled(authd: &mut Authd, answered: f64) {
    let (series, logged) = authd.outcomes("/auth.v1.AuthService/Login").await;
    assert_eq!(
        series,
        BTreeMap::from([
            (r#"status="200",grpc_status="0"}"#.to_owned(), answered),
            (r#"status="499",grpc_status="1"}"#.to_owned(), 2.0),
        ]),
        "two calls cancelled, counted once each, and nothing else"
    );
    assert_logged_once_as_cancelled(&logged, "hashing");
    assert_logged_once_as_cancelled(&logged, "uploading");
}

#[tokio::test]
async fn rest_requests_whose_client_hangs_up_are_499() {
    let _exclusive = crate::helpers::cpu_heavy().await;
    let mut authd = Authd::start().await;
    let body = serde_json::json!({"username": "Ursula", "password": PASSWORD}).to_string();
    // One request whole, its hash under way when the client hangs up; one
    // whose body stops short, which axum answered 400.
    let mut hashing = TcpStream::connect(&authd.address).await.expect("connect");
    let mut uploading = TcpStream::connect(&authd.address).await.expect("connect");
    for (connection, id, length) in [
        (&mut hashing, "hashing", body.len()),
        (&mut uploading, "uploading", body.len() + 10),
    ] {
        let request = format!(
            "POST /login HTTP/1.1\r\nhost: authd\r\nx-request-id: {id}\r\n\
             content-type: application/json\r\ncontent-length: {length}\r\n\r\n{body}"
        );
        connection
            .write_all(request.as_bytes())
            .await
            .expect("sent");
    }
    tokio::time::sleep(INTO_THE_HASH).await;

    drop((hashing, uploading));
    authd.login().await;

    let (series, logged) = authd.outcomes("/login").await;
    assert_eq!(
        series,
        BTreeMap::from([(r#"status="499",grpc_status=""}"#.to_owned(), 2.0)]),
        "two requests whose client went away, counted once each"
    );
    for id in ["hashing", "uploading"] {
        let lines = logged.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(lines.len(), 1, "{id} logged once: {logged:#?}");
        assert_eq!(lines[0]["status"], 499, "{id}: {lines:#?}");
        assert!(lines[0].get("grpc_status").is_none(), "{id}: {lines:#?}");
    }
}

#[tokio::test]
async fn a_stream_the_client_cancels_after_its_first_message_is_logged_as_cancelled() {
    let mut authd = Authd::start().await;
    // A health watch: its answer's headers and first message are out, and
    // its status would come in the trailers, which never do.
    let (mut send, driver) = h2_connection(&authd).await;
    let request = http::Request::post("/grpc.health.v1.Health/Watch")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-request-id", "watching")
        .body(())
        .expect("request");
    let (response, mut body) = send.send_request(request, false).expect("send");
    // An empty `HealthCheckRequest` (the server as a whole), uncompressed.
    body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .expect("message");
    let mut answer = response.await.expect("headers").into_body();
    assert!(
        answer.data().await.is_some_and(|data| data.is_ok()),
        "the first status arrives"
    );
    body.send_reset(h2::Reason::CANCEL);
    authd.login().await;

    let (_, logged) = authd.outcomes("/grpc.health.v1.Health/Watch").await;
    assert_logged_once_as_cancelled(&logged, "watching");
    drop(send);
    driver.abort();
}
