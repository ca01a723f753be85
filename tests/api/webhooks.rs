//! Notification webhooks over real sockets: a receiver in the test (axum on
//! 127.0.0.1:0) records what authd posts and answers a chosen status. With
//! only a webhook configured, verification and password reset work and the
//! events carry their links; every event is signed as the `standardwebhooks`
//! package (PyPI) verifies; a refused event comes again under the same
//! `webhook-id`; security notices arrive as their events; with SMTP too,
//! both carry the notice; the secret never reaches the log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authd::config::Settings;
use authd::domain::{
    EmailStore as _, MailTokenRecord, OutboxEntry, WebhookEvent, WebhookOutboxStore as _,
};
use authd::grpc::pb::RequestPasswordResetRequest;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::Value;

use crate::email::{PUBLIC_URL, mail_through, register_with_email, token_to, verify_email};
use crate::helpers::{
    PASSWORD, TestApp, TestDatabase, authd_command, spawn_authd_process_logged, terminate,
    unique_username,
};
use crate::smtp_server::SmtpServer;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
}

impl Received {
    fn payload(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    fn event_type(&self) -> String {
        self.payload()["type"].as_str().expect("a type").to_owned()
    }
}

#[derive(Default)]
struct Recorded {
    requests: Vec<Received>,
    /// Statuses to answer first, in order; 204 after them.
    answers: VecDeque<StatusCode>,
}

/// An HTTP receiver on 127.0.0.1:0 and the secret authd signs with.
struct Receiver {
    url: String,
    secret: String,
    secret_file: tempfile::NamedTempFile,
    recorded: Arc<Mutex<Recorded>>,
}

impl Receiver {
    /// A receiver that answers `answers` first, then 204.
    async fn start(answers: &[StatusCode]) -> Self {
        let recorded = Arc::new(Mutex::new(Recorded {
            requests: Vec::new(),
            answers: answers.iter().copied().collect(),
        }));
        let router = axum::Router::new()
            .route("/hooks/authd", axum::routing::post(record))
            .with_state(Arc::clone(&recorded));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        let random: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|id| id.as_bytes().to_vec())
            .collect();
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(random)
        );
        let secret_file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(secret_file.path(), format!("{secret}\n")).expect("write secret");
        Self {
            url: format!("http://{address}/hooks/authd"),
            secret,
            secret_file,
            recorded,
        }
    }

    /// Settings that post to this receiver, with links under [`PUBLIC_URL`].
    fn configure(&self) -> impl FnOnce(&mut Settings) {
        let url = self.url.clone();
        let path = self.secret_file.path().to_owned();
        move |settings| {
            settings.notification_webhook_url = Some(url.parse().expect("URL"));
            settings.notification_webhook_secret_file = Some(path);
            settings.mail_poll_interval = Duration::from_millis(100);
            settings.public_url = Some(PUBLIC_URL.parse().expect("URL"));
        }
    }

    fn received(&self) -> Vec<Received> {
        self.recorded.lock().expect("lock").requests.clone()
    }

    /// The first request with an event of `event_type`, waiting for it.
    async fn wait_for(&self, event_type: &str) -> Received {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(found) = self
                    .received()
                    .into_iter()
                    .find(|received| received.event_type() == event_type)
                {
                    return found;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {event_type} event; got {:?}", self.received()))
    }
}

async fn record(
    State(recorded): State<Arc<Mutex<Recorded>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut recorded = recorded.lock().expect("lock");
    recorded.requests.push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body,
    });
    recorded
        .answers
        .pop_front()
        .unwrap_or(StatusCode::NO_CONTENT)
}

/// The token of an event's link.
fn token_of(event: &Received) -> String {
    let payload = event.payload();
    let link = payload["data"]["link"].as_str().expect("a link");
    assert!(link.starts_with(PUBLIC_URL), "{link}");
    link.split_once("token=").expect("a token").1.to_owned()
}

/// Whether the `standardwebhooks` package accepts `body` with the headers
/// of `event`, signed with `secret`.
async fn standard_library_accepts(secret: &str, event: &Received, body: &str) -> bool {
    const VERIFY: &str = "import sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        secret, webhook_id, timestamp, signature, body = sys.argv[1:]\n\
        Webhook(secret).verify(body, {'webhook-id': webhook_id, 'webhook-timestamp': timestamp, 'webhook-signature': signature})\n";
    let status = tokio::process::Command::new("python3")
        .args([
            "-c",
            VERIFY,
            secret,
            &event.id,
            &event.timestamp,
            &event.signature,
            body,
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .expect("python3 runs (pip install standardwebhooks)");
    status.success()
}

/// Registers an account with `address` and verifies it through the link of
/// its `email.verification_requested` event; its name and access token.
async fn verified_account(app: &TestApp, receiver: &Receiver, address: &str) -> (String, String) {
    let username = unique_username();
    let registered = register_with_email(app, &username, address)
        .await
        .expect("registered");
    let event = receiver.wait_for("email.verification_requested").await;
    verify_email(app, &token_of(&event))
        .await
        .expect("verified");
    (username, registered.access_token)
}

#[tokio::test]
async fn with_only_a_webhook_registering_posts_a_verification_event_whose_link_verifies_the_address()
 {
    let receiver = Receiver::start(&[]).await;
    let app = TestApp::spawn_with(receiver.configure()).await;
    let username = unique_username();
    let registered = register_with_email(&app, &username, "ada@example.com")
        .await
        .expect("registered without SMTP");

    let event = receiver.wait_for("email.verification_requested").await;
    assert_eq!(event.content_type, "application/json");
    let payload = event.payload();
    let data = &payload["data"];
    assert_eq!(data["username"], username.as_str());
    assert_eq!(data["email"], "ada@example.com");
    assert_eq!(data["user_id"], registered.user.expect("user").id.as_str());
    assert!(data["expires_at"].as_str().is_some(), "{payload}");
    assert!(payload["timestamp"].as_str().is_some(), "{payload}");
    let verified = verify_email(&app, &token_of(&event))
        .await
        .expect("the event's token verifies the address");
    assert!(verified.user.expect("user").email_verified);
}

#[tokio::test]
async fn with_only_a_webhook_a_password_reset_request_posts_its_link() {
    let receiver = Receiver::start(&[]).await;
    let app = TestApp::spawn_with(receiver.configure()).await;
    let (username, _) = verified_account(&app, &receiver, "grace@example.com").await;

    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest {
            username_or_email: username.clone(),
        })
        .await
        .expect("no MAIL_NOT_CONFIGURED with a webhook");
    let event = receiver.wait_for("password_reset.requested").await;
    let data = &event.payload()["data"];
    assert_eq!(data["username"], username.as_str());
    assert_eq!(data["email"], "grace@example.com");
    assert!(
        data["link"]
            .as_str()
            .expect("link")
            .contains("/#/reset-password?token=")
    );
}

#[tokio::test]
async fn every_event_is_signed_as_the_standardwebhooks_package_verifies_and_a_tampered_body_fails()
{
    let receiver = Receiver::start(&[]).await;
    let app = TestApp::spawn_with(receiver.configure()).await;
    register_with_email(&app, &unique_username(), "alan@example.com")
        .await
        .expect("registered");
    let event = receiver.wait_for("email.verification_requested").await;

    assert!(event.signature.starts_with("v1,"), "{}", event.signature);
    assert!(
        standard_library_accepts(&receiver.secret, &event, &event.body).await,
        "the standardwebhooks package refuses {event:?}"
    );
    let tampered = event.body.replace("alan@example.com", "eve@example.com");
    assert!(
        !standard_library_accepts(&receiver.secret, &event, &tampered).await,
        "a tampered body must fail the signature"
    );
}

#[tokio::test]
async fn an_event_the_receiver_refuses_comes_again_under_the_same_webhook_id() {
    let receiver = Receiver::start(&[StatusCode::INTERNAL_SERVER_ERROR]).await;
    let app = TestApp::spawn_with(receiver.configure()).await;
    register_with_email(&app, &unique_username(), "barbara@example.com")
        .await
        .expect("registered");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while receiver.received().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no retry arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = receiver.received();
    assert_eq!(attempts[0].id, attempts[1].id, "a stable webhook-id");
    assert_eq!(attempts[0].body, attempts[1].body);
    assert!(
        standard_library_accepts(&receiver.secret, &attempts[1], &attempts[1].body).await,
        "the retry is signed for its own timestamp"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2, "delivered once accepted");
}

#[tokio::test]
async fn a_password_change_posts_password_changed_naming_the_client() {
    let receiver = Receiver::start(&[]).await;
    let app = TestApp::spawn_with(receiver.configure()).await;
    let (username, token) = verified_account(&app, &receiver, "edsger@example.com").await;

    app.change_password(&token, PASSWORD, "another long passphrase")
        .await
        .expect("changed");
    let event = receiver.wait_for("password.changed").await;
    let payload = event.payload();
    let data = &payload["data"];
    assert_eq!(data["username"], username.as_str());
    assert_eq!(data["email"], "edsger@example.com");
    assert_eq!(data["client_address"], "127.0.0.1");
    assert!(data["user_agent"].as_str().is_some(), "{payload}");
    assert!(data["occurred_at"].as_str().is_some(), "{payload}");
    assert!(
        data.get("link").is_none(),
        "no secret in a notice: {payload}"
    );
}

#[tokio::test]
async fn with_smtp_and_a_webhook_a_verification_goes_out_by_both_with_one_token() {
    let smtp = SmtpServer::start().await;
    let receiver = Receiver::start(&[]).await;
    let through_smtp = mail_through(&smtp);
    let to_webhook = receiver.configure();
    let app = TestApp::spawn_with(|settings| {
        through_smtp(settings);
        to_webhook(settings);
    })
    .await;
    register_with_email(&app, &unique_username(), "hopper@example.com")
        .await
        .expect("registered");

    let event = receiver.wait_for("email.verification_requested").await;
    let mailed = token_to(&smtp.wait_for(1).await, "hopper@example.com");
    assert_eq!(token_of(&event), mailed, "one token, told twice");
}

#[tokio::test]
async fn the_webhook_secret_never_reaches_the_log() {
    let database = TestDatabase::create().await;
    let receiver = Receiver::start(&[]).await;
    let secret_file = receiver.secret_file.path().display().to_string();
    let (mut authd, address, _, log) = spawn_authd_process_logged(
        &[("RUST_LOG", "trace")],
        &[
            "--database-url",
            &database.url,
            "--argon2-memory-kib",
            "256",
            "--argon2-iterations",
            "1",
            "--mail-poll-interval",
            "100ms",
            "--notification-webhook-url",
            &receiver.url,
            "--notification-webhook-secret-file",
            &secret_file,
        ],
    )
    .await;
    let registered = reqwest::Client::new()
        .post(format!("http://{address}/user/register"))
        .json(&serde_json::json!({
            "username": unique_username(),
            "password": PASSWORD,
            "email": "linus@example.com",
        }))
        .send()
        .await
        .expect("register");
    assert!(registered.status().is_success(), "{registered:?}");
    receiver.wait_for("email.verification_requested").await;
    terminate(&mut authd).await;

    let log = log.lock().expect("log").join("\n");
    let encoded = receiver.secret.trim_start_matches("whsec_");
    assert!(!log.contains(encoded), "the secret is in the log:\n{log}");
    assert!(log.contains("notification webhook"), "{log}");
}

#[tokio::test]
async fn a_webhook_url_without_a_valid_secret_stops_start_up_with_its_reason() {
    let bad_secret = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(bad_secret.path(), "not a secret").expect("write");
    let bad_secret = bad_secret.path().display().to_string();
    for (args, reason) in [
        (
            vec!["--notification-webhook-url", "http://127.0.0.1:9/hook"],
            "needs --notification-webhook-secret-file",
        ),
        (
            vec![
                "--notification-webhook-url",
                "http://127.0.0.1:9/hook",
                "--notification-webhook-secret-file",
                &bad_secret,
            ],
            "holds no Standard Webhooks secret",
        ),
    ] {
        let output = authd_command()
            .args([
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                "sqlite::memory:",
            ])
            .args(&args)
            .output()
            .await
            .expect("authd runs");
        assert!(!output.status.success(), "{args:?} must not start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(!stderr.contains("not a secret"), "{stderr}");
    }
}

/// A webhook event of `event_type`, due `now`, for the store tests.
fn stored_event(event_type: &str, now: chrono::DateTime<chrono::Utc>) -> WebhookEvent {
    WebhookEvent {
        id: uuid::Uuid::now_v7(),
        event_type: event_type.into(),
        payload: serde_json::json!({"type": event_type}).to_string(),
        created_at: now,
    }
}

#[tokio::test]
async fn of_two_instances_claiming_webhook_events_at_once_each_event_goes_to_one() {
    let database = TestDatabase::create().await;
    let first = crate::outbox::open(&database).await;
    let second = crate::outbox::open(&database).await;
    let now = chrono::Utc::now();
    for _ in 0..20 {
        let (_, token) = crate::outbox::register(&first, "x@example.com", now).await;
        let renewed = MailTokenRecord {
            token_hash: uuid::Uuid::new_v4().simple().to_string(),
            ..token
        };
        first
            .replace_mail_token(
                &renewed,
                &[OutboxEntry::Webhook(stored_event(
                    "email.verification_requested",
                    now,
                ))],
            )
            .await
            .expect("queued");
    }

    let claim_all = |store: authd::storage::Database| async move {
        let mut ids = Vec::new();
        for _ in 0..100 {
            let batch = store
                .claim_due_events(now, now + chrono::TimeDelta::seconds(60), 3)
                .await
                .expect("claimed");
            if batch.is_empty() {
                return ids;
            }
            ids.extend(batch.into_iter().map(|claimed| claimed.event.id));
        }
        panic!("claims never ran out: events were claimed again");
    };
    let (a, b) = tokio::join!(
        tokio::spawn(claim_all(first.clone())),
        tokio::spawn(claim_all(second.clone()))
    );
    let all: Vec<uuid::Uuid> = a
        .expect("first")
        .into_iter()
        .chain(b.expect("second"))
        .collect();
    let distinct: std::collections::HashSet<uuid::Uuid> = all.iter().copied().collect();
    assert_eq!(all.len(), 20, "every event claimed once");
    assert_eq!(distinct.len(), 20, "no event claimed twice");

    let id = all[0];
    first
        .mark_event_failed(
            id,
            "the webhook answered 500",
            now + chrono::TimeDelta::seconds(5),
        )
        .await
        .expect("failed");
    let later = now + chrono::TimeDelta::seconds(5);
    let retaken = first
        .claim_due_events(later, later + chrono::TimeDelta::seconds(60), 20)
        .await
        .expect("claimed");
    assert_eq!(retaken.len(), 1, "only the failed one is due again");
    assert_eq!((retaken[0].event.id, retaken[0].attempts), (id, 2));
    first
        .mark_event_delivered(id, later)
        .await
        .expect("delivered");
    assert_eq!(first.webhook_backlog().await.expect("backlog").queued, 19);
}
