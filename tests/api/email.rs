//! Email addresses over real sockets, with a real SMTP server (aiosmtpd,
//! `smtp_server.rs`): Register with an address, the verification mail and
//! its link, VerifyEmail's single-use, expiring, voidable tokens, one
//! verified address per mailbox, SetEmail's step-up, the rate limits, and
//! what authd answers without mail.

use std::time::Duration;

use authd::config::Settings;
use authd::grpc::pb::{
    RegisterRequest, RegisterResponse, ResendEmailVerificationRequest, SetEmailRequest,
    VerifyEmailRequest, VerifyEmailResponse, set_email_request,
};
use serde_json::json;
use tonic::{Code, Status};

use crate::helpers::{
    PASSWORD, TestApp, TestDatabase, assert_refused, problem, spawn_authd_process_logged,
    terminate, unique_username, violated_fields, with_bearer,
};
use crate::second_factor::{code, enroll_at, steady_now};
use crate::smtp_server::{ReceivedMail, SmtpServer};

pub const MAIL_FROM: &str = "authd <no-reply@authd.test>";
pub const PUBLIC_URL: &str = "https://auth.example.test";

/// Mail through `smtp`, links under [`PUBLIC_URL`].
pub fn mail_through(smtp: &SmtpServer) -> impl FnOnce(&mut Settings) {
    let url = smtp.url();
    move |settings| {
        settings.smtp_url = Some(url);
        settings.mail_from = Some(MAIL_FROM.into());
        settings.mail_poll_interval = Duration::from_millis(100);
        settings.public_url = Some(PUBLIC_URL.parse().expect("URL"));
    }
}

pub async fn register_with_email(
    app: &TestApp,
    username: &str,
    email: &str,
) -> Result<RegisterResponse, Status> {
    app.client
        .clone()
        .register(RegisterRequest {
            username: username.into(),
            password: PASSWORD.into(),
            email: email.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

pub async fn verify_email(app: &TestApp, token: &str) -> Result<VerifyEmailResponse, Status> {
    app.client
        .clone()
        .verify_email(VerifyEmailRequest {
            token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn resend(app: &TestApp, access_token: &str) -> Result<(), Status> {
    app.client
        .clone()
        .resend_email_verification(with_bearer(ResendEmailVerificationRequest {}, access_token))
        .await
        .map(drop)
}

/// The verification link of a mail's plain-text body, and its token.
pub fn link_of(mail: &ReceivedMail) -> (String, String) {
    let text = mail.body("text/plain").expect("a plain-text body");
    let link = text
        .split_whitespace()
        .find(|word| word.starts_with(PUBLIC_URL))
        .unwrap_or_else(|| panic!("no link in:\n{text}"))
        .to_owned();
    let token = link
        .split_once("token=")
        .map(|(_, token)| token.to_owned())
        .unwrap_or_else(|| panic!("no token in {link}"));
    (link, token)
}

/// The token of the one mail to `to` among `mails`, newest last.
pub fn token_to(mails: &[ReceivedMail], to: &str) -> String {
    let mail = mails
        .iter()
        .rev()
        .find(|mail| mail.header("To").as_deref() == Some(to))
        .unwrap_or_else(|| panic!("no mail to {to}"));
    link_of(mail).1
}

#[tokio::test]
async fn registering_with_an_address_mails_a_link_whose_token_verifies_it() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let username = unique_username();

    let registered = register_with_email(&app, &username, " Ada@Example.com ")
        .await
        .expect("registered");
    let user = registered.user.expect("a user");
    assert_eq!(user.email, "Ada@Example.com", "trimmed, as given");
    assert!(!user.email_verified);

    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1, "one mail");
    let mail = &mails[0];
    assert_eq!(mail.header("To").as_deref(), Some("Ada@Example.com"));
    assert_eq!(mail.header("From").as_deref(), Some(MAIL_FROM));
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Verify your email address")
    );
    let message_id = mail.header("Message-ID").expect("a Message-ID");
    assert!(message_id.ends_with("@authd.test>"), "{message_id}");
    let (link, token) = link_of(mail);
    assert!(
        link.starts_with(&format!("{PUBLIC_URL}/#/verify-email?token=authd_ev_")),
        "{link}"
    );
    let text = mail.body("text/plain").expect("text");
    assert!(
        text.contains(&username) && text.contains("24 hours"),
        "{text}"
    );
    let html = mail.body("text/html").expect("an HTML body");
    assert!(html.contains(&format!(r#"<a href="{link}">"#)), "{html}");

    let verified = verify_email(&app, &token).await.expect("verified");
    let user = verified.user.expect("a user");
    assert_eq!(user.username, username);
    assert_eq!(user.email, "Ada@Example.com");
    assert!(user.email_verified);
    let login = app.login(&username, PASSWORD).await.expect("logged in");
    assert!(
        login.user.expect("a user").email_verified,
        "Login says so too"
    );
}

#[tokio::test]
async fn a_verification_token_works_once() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    register_with_email(&app, &unique_username(), "once@example.com")
        .await
        .expect("registered");
    let token = token_to(&smtp.wait_for(1).await, "once@example.com");

    verify_email(&app, &token).await.expect("verified");
    let status = assert_refused(
        verify_email(&app, &token).await,
        Code::InvalidArgument,
        "EMAIL_TOKEN_INVALID",
    );
    assert_eq!(violated_fields(&status), ["token"]);
    for forged in ["", "authd_ev_", "authd_rt_AAAA", &token[..token.len() - 1]] {
        assert_refused(
            verify_email(&app, forged).await,
            Code::InvalidArgument,
            "EMAIL_TOKEN_INVALID",
        );
    }
}

#[tokio::test]
async fn a_verification_token_expires_after_its_lifetime() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(|settings| {
        mail_through(&smtp)(settings);
        settings.email_verification_lifetime = Duration::from_secs(1);
    })
    .await;
    register_with_email(&app, &unique_username(), "late@example.com")
        .await
        .expect("registered");
    let mails = smtp.wait_for(1).await;
    let text = mails[0].body("text/plain").expect("text");
    assert!(text.contains("within 1 second"), "{text}");
    // `wait_for` waited 1.5 s past the mail's arrival: the token is stale.

    assert_refused(
        verify_email(&app, &token_to(&mails, "late@example.com")).await,
        Code::InvalidArgument,
        "EMAIL_TOKEN_INVALID",
    );
}

#[tokio::test]
async fn a_resent_mail_voids_the_previous_token() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let registered = register_with_email(&app, &unique_username(), "twice@example.com")
        .await
        .expect("registered");
    let first = token_to(&smtp.wait_for(1).await, "twice@example.com");

    resend(&app, &registered.access_token)
        .await
        .expect("resent");
    let mails = smtp.wait_for(2).await;
    let second = token_to(&mails, "twice@example.com");
    assert_ne!(first, second);
    let ids: std::collections::HashSet<_> = mails
        .iter()
        .filter_map(|mail| mail.header("Message-ID"))
        .collect();
    assert_eq!(ids.len(), 2, "each mail its own Message-ID");

    assert_refused(
        verify_email(&app, &first).await,
        Code::InvalidArgument,
        "EMAIL_TOKEN_INVALID",
    );
    verify_email(&app, &second)
        .await
        .expect("the newer token works");
    assert_refused(
        resend(&app, &registered.access_token).await,
        Code::FailedPrecondition,
        "EMAIL_ALREADY_VERIFIED",
    );
}

#[tokio::test]
async fn a_second_account_cannot_verify_an_address_verified_already_in_any_letter_case() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    register_with_email(&app, &unique_username(), "shared@example.com")
        .await
        .expect("first registered");
    let second = register_with_email(&app, &unique_username(), "SHARED@Example.COM")
        .await
        .expect("registering an address in use is not refused");
    let mails = smtp.wait_for(2).await;
    let first_token = token_to(&mails, "shared@example.com");
    let second_token = token_to(&mails, "SHARED@Example.COM");

    verify_email(&app, &first_token)
        .await
        .expect("first verified");
    assert_refused(
        verify_email(&app, &second_token).await,
        Code::AlreadyExists,
        "EMAIL_TAKEN",
    );
    let response = app
        .post_json("/user/email/verify", json!({ "token": second_token }))
        .await;
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (409, "EMAIL_TAKEN"));
    let login = app
        .login(&second.user.expect("user").username, PASSWORD)
        .await
        .expect("logged in");
    assert!(!login.user.expect("user").email_verified);
}

#[tokio::test]
async fn setting_an_address_needs_the_step_up_and_mails_the_new_address() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, -1).await;
    let set = |second| {
        let mut client = app.client.clone();
        let request = with_bearer(
            SetEmailRequest {
                email: "new@example.com".into(),
                second,
            },
            &account.token,
        );
        async move { client.set_email(request).await }
    };

    assert_refused(
        set(None).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    let response = app
        .http
        .put(format!("{}/user/email", app.base_url))
        .bearer_auth(&account.token)
        .json(&json!({ "email": "new@example.com" }))
        .send()
        .await
        .expect("response");
    let (status, reason, _) = problem(response).await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "REAUTHENTICATION_REQUIRED")
    );
    assert!(smtp.received().is_empty(), "nothing mailed");

    let user = set(Some(set_email_request::Second::TotpCode(code(
        &account.secret,
        now,
        0,
    ))))
    .await
    .expect("set with the second factor")
    .into_inner()
    .user
    .expect("user");
    assert_eq!(user.email, "new@example.com");
    assert!(!user.email_verified);
    let token = token_to(&smtp.wait_for(1).await, "new@example.com");
    let verified = verify_email(&app, &token).await.expect("verified");
    assert!(verified.user.expect("user").email_verified);
}

#[tokio::test]
async fn replacing_an_address_voids_the_old_addresses_token() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let registered = register_with_email(&app, &unique_username(), "old@example.com")
        .await
        .expect("registered");
    let old = token_to(&smtp.wait_for(1).await, "old@example.com");

    let response = app
        .http
        .put(format!("{}/user/email", app.base_url))
        .bearer_auth(&registered.access_token)
        .json(&json!({ "email": "New@Example.com" }))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["user"]["email"], "New@Example.com");
    assert_eq!(body["user"]["email_verified"], false);
    let new = token_to(&smtp.wait_for(2).await, "New@Example.com");

    assert_refused(
        verify_email(&app, &old).await,
        Code::InvalidArgument,
        "EMAIL_TOKEN_INVALID",
    );
    let response = app
        .post_json("/user/email/verify", json!({ "token": new }))
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["user"]["email_verified"], true);
}

#[tokio::test]
async fn addresses_that_are_not_one_plain_address_are_refused_with_the_field() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    for bad in [
        "ada",
        "ada@example",
        "ada lovelace@example.com",
        "a@b@example.com",
    ] {
        let status = assert_refused(
            register_with_email(&app, &unique_username(), bad).await,
            Code::InvalidArgument,
            "INVALID_EMAIL",
        );
        assert_eq!(violated_fields(&status), ["email"], "{bad}");
    }
    let response = app
        .post_json(
            "/user/register",
            json!({ "username": "x", "password": PASSWORD, "email": "ada@" }),
        )
        .await;
    let (status, _, body) = problem(response).await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["field"].as_str())
        .collect();
    assert_eq!(fields, ["username", "email"], "every bad field at once");

    let token = app.registered_token(&unique_username()).await;
    let response = app
        .http
        .put(format!("{}/user/email", app.base_url))
        .bearer_auth(&token)
        .json(&json!({ "email": "ada@example.com\r\nBcc: eve@example.com" }))
        .send()
        .await
        .expect("response");
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (400, "INVALID_EMAIL"));
    assert!(smtp.received().is_empty(), "nothing mailed");
}

#[tokio::test]
async fn without_smtp_an_address_is_stored_but_verification_answers_mail_not_configured() {
    let app = TestApp::spawn().await;
    let registered = register_with_email(&app, &unique_username(), "quiet@example.com")
        .await
        .expect("registered with an address");
    let user = registered.user.expect("user");
    assert_eq!(user.email, "quiet@example.com");
    assert!(!user.email_verified);
    let queued: i64 = app
        .database
        .query_value("SELECT COUNT(*) AS queued FROM mail_outbox", "queued")
        .await;
    assert_eq!(queued, 0, "no mail queued that nobody would send");

    assert_refused(
        resend(&app, &registered.access_token).await,
        Code::FailedPrecondition,
        "MAIL_NOT_CONFIGURED",
    );
    assert_refused(
        verify_email(&app, "authd_ev_x").await,
        Code::FailedPrecondition,
        "MAIL_NOT_CONFIGURED",
    );
    assert_refused(
        app.client
            .clone()
            .set_email(with_bearer(
                SetEmailRequest {
                    email: "other@example.com".into(),
                    second: None,
                },
                &registered.access_token,
            ))
            .await,
        Code::FailedPrecondition,
        "MAIL_NOT_CONFIGURED",
    );
    let response = app
        .post("/user/email/verification")
        .bearer_auth(&registered.access_token)
        .send()
        .await
        .expect("response");
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (409, "MAIL_NOT_CONFIGURED"));
}

#[tokio::test]
async fn verification_mails_are_rate_limited_per_account_and_per_address() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(|settings| {
        mail_through(&smtp)(settings);
        settings.verification_mails_per_account = Some("1/1h".parse().expect("rate"));
        settings.verification_mails_per_address = Some("2/1h".parse().expect("rate"));
    })
    .await;
    // Register spends the address's budget only.
    let registered = register_with_email(&app, &unique_username(), "busy@example.com")
        .await
        .expect("registered");
    resend(&app, &registered.access_token)
        .await
        .expect("first resend");

    let status = assert_refused(
        resend(&app, &registered.access_token).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    assert!(tonic_types::StatusExt::get_details_retry_info(&status).is_some());
    let response = app
        .post("/user/email/verification")
        .bearer_auth(&registered.access_token)
        .send()
        .await
        .expect("response");
    assert!(response.headers().contains_key("retry-after"));
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (429, "RATE_LIMITED"));
    // The address's budget is spent too: another account cannot mail it.
    assert_refused(
        register_with_email(&app, &unique_username(), "BUSY@example.com").await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    // The budgets live in the database: another instance shares them.
    let beside = app.spawn_beside().await;
    assert_refused(
        resend(&beside, &registered.access_token).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    assert_eq!(smtp.wait_for(2).await.len(), 2);
}

#[tokio::test]
async fn no_verification_token_reaches_the_log() {
    let smtp = SmtpServer::start().await;
    let database = TestDatabase::create().await;
    let url = smtp.url();
    let (mut authd, address, _, log) = spawn_authd_process_logged(
        &[("RUST_LOG", "trace")],
        &[
            "--database-url",
            &database.url,
            "--argon2-memory-kib",
            "256",
            "--argon2-iterations",
            "1",
            "--smtp-url",
            &url,
            "--mail-from",
            MAIL_FROM,
            "--mail-poll-interval",
            "100ms",
            "--public-url",
            PUBLIC_URL,
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let registered: serde_json::Value = http
        .post(format!("http://{address}/user/register"))
        .json(&json!({
            "username": unique_username(),
            "password": PASSWORD,
            "email": "secret@example.com",
        }))
        .send()
        .await
        .expect("registered")
        .json()
        .await
        .expect("json");
    let access = registered["access_token"].as_str().expect("token");
    let first = token_to(&smtp.wait_for(1).await, "secret@example.com");
    let resent = http
        .post(format!("http://{address}/user/email/verification"))
        .bearer_auth(access)
        .send()
        .await
        .expect("resent");
    assert_eq!(resent.status(), 200);
    let second = token_to(&smtp.wait_for(2).await, "secret@example.com");
    let verified = http
        .post(format!("http://{address}/user/email/verify"))
        .json(&json!({ "token": second }))
        .send()
        .await
        .expect("verified");
    assert_eq!(verified.status(), 200);
    // Stopped, so that every line it wrote has been read.
    terminate(&mut authd).await;

    let log = log.lock().expect("log").join("\n");
    assert!(
        log.contains("email address verified"),
        "the log is captured"
    );
    for token in [&first, &second] {
        let secret = token.trim_start_matches("authd_ev_");
        assert!(!log.contains(secret), "a verification token in the log");
    }
}
