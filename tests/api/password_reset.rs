//! Password reset by mail over real sockets, with a real SMTP server
//! (aiosmtpd): the link mailed to a verified address only, the same answer
//! for every name, single-use, expiring, voidable tokens of their own kind,
//! the registration rules for the new password, the account's second
//! factor, every session ended on every instance, the notice, the mail
//! budgets, what authd answers without mail, and nothing secret logged.

use std::time::Duration;

use authd::grpc::pb::{
    ConfirmTotpEnrollmentRequest, RequestPasswordResetRequest, ResetPasswordRequest,
    ResetPasswordResponse, StartPasskeyPasswordResetRequest, StartTotpEnrollmentRequest,
    reset_password_request,
};
use serde_json::json;
use tonic::{Code, Status};

use crate::email::{
    MAIL_FROM, PUBLIC_URL, link_of, mail_through, register_with_email, token_to, verify_email,
};
use crate::helpers::{
    PASSWORD, TestApp, TestDatabase, assert_refused, problem, spawn_authd_process_logged,
    terminate, unique_username, violated_fields, with_bearer,
};
use crate::instances::wait_until_revoked;
use crate::second_factor::{code, steady_now};
use crate::smtp_server::{ReceivedMail, SmtpServer};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn request_reset(app: &TestApp, username_or_email: &str) -> Result<(), Status> {
    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest {
            username_or_email: username_or_email.into(),
        })
        .await
        .map(drop)
}

async fn reset(
    app: &TestApp,
    token: &str,
    new_password: &str,
    second: Option<reset_password_request::Second>,
) -> Result<ResetPasswordResponse, Status> {
    app.client
        .clone()
        .reset_password(ResetPasswordRequest {
            token: token.into(),
            new_password: new_password.into(),
            second,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// An account with `address` verified; `mails` is how many the server has
/// received before, the verification mail then being the next one.
async fn verified_account(
    app: &TestApp,
    smtp: &SmtpServer,
    address: &str,
    mails: usize,
) -> (String, String) {
    let username = unique_username();
    let registered = register_with_email(app, &username, address)
        .await
        .expect("registered");
    let token = token_to(&smtp.wait_for(mails + 1).await, address);
    verify_email(app, &token).await.expect("verified");
    (username, registered.access_token)
}

/// The reset mails among `mails`.
fn reset_mails(mails: &[ReceivedMail]) -> Vec<&ReceivedMail> {
    mails
        .iter()
        .filter(|mail| mail.header("Subject").as_deref() == Some("Reset your password"))
        .collect()
}

/// The token of the newest reset mail among `mails`.
fn newest_reset_token(mails: &[ReceivedMail]) -> String {
    let mail = reset_mails(mails)
        .pop()
        .unwrap_or_else(|| panic!("no reset mail among {} mails", mails.len()));
    link_of(mail).1
}

#[tokio::test]
async fn a_reset_link_mailed_for_an_address_or_a_username_sets_a_new_password_and_starts_a_session()
{
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (username, _) = verified_account(&app, &smtp, "Reset@Example.com", 0).await;

    request_reset(&app, "reset@EXAMPLE.com")
        .await
        .expect("the same answer for everyone");
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails.len(), 2, "one reset mail");
    let mail = reset_mails(&mails)[0];
    assert_eq!(mail.header("To").as_deref(), Some("Reset@Example.com"));
    assert_eq!(mail.header("From").as_deref(), Some(MAIL_FROM));
    let (link, token) = link_of(mail);
    assert!(
        link.starts_with(&format!("{PUBLIC_URL}/#/reset-password?token=authd_pr_")),
        "{link}"
    );
    let text = mail.body("text/plain").expect("text");
    assert!(
        text.contains(&username) && text.contains("within 30 minutes"),
        "{text}"
    );
    assert!(text.contains("If this was not you"), "{text}");
    let html = mail.body("text/html").expect("an HTML body");
    assert!(html.contains(&format!(r#"<a href="{link}">"#)), "{html}");

    let session = reset(&app, &token, NEW_PASSWORD, None)
        .await
        .expect("reset");
    assert!(!session.access_token.is_empty() && !session.refresh_token.is_empty());
    assert_eq!(session.token_type, "Bearer");
    let user = session.user.expect("a user");
    assert_eq!(user.username, username);
    assert!(user.email_verified);
    let claims = app
        .verify(&session.access_token)
        .await
        .expect("the new session's token works");
    assert_eq!(claims.amr, ["pwd"]);
    assert_refused(
        app.login(&username, PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    app.login(&username, NEW_PASSWORD)
        .await
        .expect("the new password works");

    request_reset(&app, &username.to_uppercase())
        .await
        .expect("by the username, canonically");
    let mails = smtp.wait_for(4).await;
    assert_eq!(reset_mails(&mails).len(), 2, "one more reset mail");
    reset(
        &app,
        &newest_reset_token(&mails),
        "yet another passphrase",
        None,
    )
    .await
    .expect("reset again");
    app.login(&username, "yet another passphrase")
        .await
        .expect("logged in");
}

#[tokio::test]
async fn every_name_gets_the_same_answer_and_only_a_verified_address_gets_a_mail() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let without_address = unique_username();
    app.register(&without_address, PASSWORD)
        .await
        .expect("registered");
    let unverified = unique_username();
    register_with_email(&app, &unverified, "unverified@example.com")
        .await
        .expect("registered");
    let (verified, _) = verified_account(&app, &smtp, "verified@example.com", 1).await;
    let names = [
        unique_username(),
        "nobody@example.com".to_owned(),
        without_address,
        unverified,
        "unverified@example.com".to_owned(),
        verified,
    ];

    let mut answers = Vec::new();
    for name in &names {
        request_reset(&app, name).await.expect("accepted");
        let response = app
            .post_json("/user/password/reset", json!({ "username_or_email": name }))
            .await;
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].clone();
        let body = response.bytes().await.expect("body");
        answers.push((status, content_type, body));
    }

    assert_eq!(answers[0].0, 202);
    assert_eq!(&answers[0].2[..], b"{}");
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{answers:?}"
    );
    let mails = smtp.wait_for(4).await;
    assert_eq!(mails.len(), 4, "two verification mails, two reset mails");
    let resets = reset_mails(&mails);
    assert_eq!(resets.len(), 2);
    for mail in resets {
        assert_eq!(mail.header("To").as_deref(), Some("verified@example.com"));
    }
}

#[tokio::test]
async fn a_reset_request_that_is_empty_or_too_long_is_refused_with_its_field() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    for refused in [String::new(), "  ".into(), "a".repeat(255)] {
        let status = assert_refused(
            request_reset(&app, &refused).await,
            Code::InvalidArgument,
            if refused.trim().is_empty() {
                "FIELD_REQUIRED"
            } else {
                "INVALID_USERNAME_OR_EMAIL"
            },
        );
        assert_eq!(violated_fields(&status), ["username_or_email"]);
        let response = app
            .post_json(
                "/user/password/reset",
                json!({ "username_or_email": refused }),
            )
            .await;
        let (status, _, body) = problem(response).await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["field"], "username_or_email");
    }
}

#[tokio::test]
async fn a_reset_token_works_once_and_a_newer_request_voids_it() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (username, _) = verified_account(&app, &smtp, "once@example.com", 0).await;
    request_reset(&app, &username).await.expect("requested");
    let first = newest_reset_token(&smtp.wait_for(2).await);
    request_reset(&app, &username).await.expect("requested");
    let second = newest_reset_token(&smtp.wait_for(3).await);
    assert_ne!(first, second);

    let status = assert_refused(
        reset(&app, &first, NEW_PASSWORD, None).await,
        Code::InvalidArgument,
        "PASSWORD_RESET_TOKEN_INVALID",
    );
    assert_eq!(violated_fields(&status), ["token"]);
    reset(&app, &second, NEW_PASSWORD, None)
        .await
        .expect("the newer token works");
    assert_refused(
        reset(&app, &second, "another passphrase", None).await,
        Code::InvalidArgument,
        "PASSWORD_RESET_TOKEN_INVALID",
    );
    for forged in [
        "",
        "authd_pr_",
        "authd_ev_AAAA",
        &second[..second.len() - 1],
    ] {
        assert_refused(
            reset(&app, forged, NEW_PASSWORD, None).await,
            Code::InvalidArgument,
            "PASSWORD_RESET_TOKEN_INVALID",
        );
    }
    app.login(&username, NEW_PASSWORD)
        .await
        .expect("the password of the one reset that took");
}

#[tokio::test]
async fn a_reset_token_expires_after_its_lifetime() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(|settings| {
        mail_through(&smtp)(settings);
        settings.password_reset_lifetime = Duration::from_secs(1);
    })
    .await;
    let (username, _) = verified_account(&app, &smtp, "late@example.com", 0).await;
    request_reset(&app, &username).await.expect("requested");
    let mails = smtp.wait_for(2).await;
    let text = reset_mails(&mails)[0].body("text/plain").expect("text");
    assert!(text.contains("within 1 second"), "{text}");
    // `wait_for` waited 1.5 s past the mail's arrival: the token is stale.

    assert_refused(
        reset(&app, &newest_reset_token(&mails), NEW_PASSWORD, None).await,
        Code::InvalidArgument,
        "PASSWORD_RESET_TOKEN_INVALID",
    );
    app.login(&username, PASSWORD)
        .await
        .expect("the password is unchanged");
}

#[tokio::test]
async fn a_verification_token_is_no_reset_token_and_a_reset_token_verifies_nothing() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (username, _) = verified_account(&app, &smtp, "kinds@example.com", 0).await;
    register_with_email(&app, &unique_username(), "pending@example.com")
        .await
        .expect("registered");
    let verification = token_to(&smtp.wait_for(2).await, "pending@example.com");
    request_reset(&app, &username).await.expect("requested");
    let reset_token = newest_reset_token(&smtp.wait_for(3).await);

    assert_refused(
        reset(&app, &verification, NEW_PASSWORD, None).await,
        Code::InvalidArgument,
        "PASSWORD_RESET_TOKEN_INVALID",
    );
    let renamed = verification.replacen("authd_ev_", "authd_pr_", 1);
    assert_refused(
        reset(&app, &renamed, NEW_PASSWORD, None).await,
        Code::InvalidArgument,
        "PASSWORD_RESET_TOKEN_INVALID",
    );
    assert_refused(
        verify_email(&app, &reset_token).await,
        Code::InvalidArgument,
        "EMAIL_TOKEN_INVALID",
    );
    assert_refused(
        verify_email(&app, &reset_token.replacen("authd_pr_", "authd_ev_", 1)).await,
        Code::InvalidArgument,
        "EMAIL_TOKEN_INVALID",
    );
    verify_email(&app, &verification)
        .await
        .expect("still a verification token");
    reset(&app, &reset_token, NEW_PASSWORD, None)
        .await
        .expect("still a reset token");
}

#[tokio::test]
async fn a_new_password_must_pass_the_registration_rules_and_a_refusal_spends_no_token() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (username, _) = verified_account(&app, &smtp, "rules@example.com", 0).await;
    request_reset(&app, &username).await.expect("requested");
    let token = newest_reset_token(&smtp.wait_for(2).await);

    for (password, reason) in [
        ("short", "PASSWORD_TOO_SHORT"),
        ("password123", "PASSWORD_TOO_COMMON"),
    ] {
        let status = assert_refused(
            reset(&app, &token, password, None).await,
            Code::InvalidArgument,
            reason,
        );
        assert_eq!(violated_fields(&status), ["new_password"]);
        let response = app
            .post_json(
                "/user/password/reset/confirm",
                json!({ "token": token, "new_password": password }),
            )
            .await;
        let (status, problem_reason, body) = problem(response).await;
        assert_eq!((status, problem_reason.as_str()), (400, reason));
        assert_eq!(body["errors"][0]["field"], "new_password");
    }
    reset(&app, &token, NEW_PASSWORD, None)
        .await
        .expect("the token still works");
}

/// An account with a verified address and TOTP enabled: its name, TOTP
/// secret and recovery codes. The enrollment spends the step before `now`.
async fn verified_account_with_totp(
    app: &TestApp,
    smtp: &SmtpServer,
    address: &str,
    mails: usize,
    now: u64,
) -> (String, String, Vec<String>) {
    let (username, token) = verified_account(app, smtp, address, mails).await;
    let started = app
        .client
        .clone()
        .start_totp_enrollment(with_bearer(StartTotpEnrollmentRequest {}, &token))
        .await
        .expect("enrollment starts")
        .into_inner();
    let confirmed = app
        .client
        .clone()
        .confirm_totp_enrollment(with_bearer(
            ConfirmTotpEnrollmentRequest {
                code: code(&started.secret, now, -1),
            },
            &token,
        ))
        .await
        .expect("enrollment confirmed")
        .into_inner();
    (username, started.secret, confirmed.recovery_codes)
}

#[tokio::test]
async fn an_account_with_totp_needs_its_code_to_reset_and_wrong_codes_count() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(|settings| {
        mail_through(&smtp)(settings);
        settings.second_factor_failures_per_account = Some("2/1h".parse().expect("rate"));
    })
    .await;
    let now = steady_now().await;
    let (username, secret, _) =
        verified_account_with_totp(&app, &smtp, "totp@example.com", 0, now).await;
    request_reset(&app, &username).await.expect("requested");
    let token = newest_reset_token(&smtp.wait_for(2).await);

    assert_refused(
        reset(&app, &token, NEW_PASSWORD, None).await,
        Code::FailedPrecondition,
        "MFA_REQUIRED",
    );
    let response = app
        .post_json(
            "/user/password/reset/confirm",
            json!({ "token": token, "new_password": NEW_PASSWORD }),
        )
        .await;
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (403, "MFA_REQUIRED"));
    let wrong = || {
        Some(reset_password_request::Second::TotpCode(code(
            &secret, now, 10,
        )))
    };
    for _ in 0..2 {
        assert_refused(
            reset(&app, &token, NEW_PASSWORD, wrong()).await,
            Code::InvalidArgument,
            "MFA_CODE_INVALID",
        );
    }
    let right = Some(reset_password_request::Second::TotpCode(code(
        &secret, now, 0,
    )));
    assert_refused(
        reset(&app, &token, NEW_PASSWORD, right).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    app.login(&username, PASSWORD)
        .await
        .expect("the password is unchanged");

    let now = steady_now().await;
    let (username, secret, _) =
        verified_account_with_totp(&app, &smtp, "totp2@example.com", 2, now).await;
    request_reset(&app, &username).await.expect("requested");
    let token = newest_reset_token(&smtp.wait_for(4).await);
    assert_refused(
        reset(&app, &token, NEW_PASSWORD, None).await,
        Code::FailedPrecondition,
        "MFA_REQUIRED",
    );
    let right = Some(reset_password_request::Second::TotpCode(code(
        &secret, now, 0,
    )));
    let session = reset(&app, &token, NEW_PASSWORD, right)
        .await
        .expect("reset with the code, the token unspent by the refusal");
    assert_eq!(session.recovery_codes_left, None);
    let claims = app.verify(&session.access_token).await.expect("valid");
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
}

#[tokio::test]
async fn an_account_with_totp_may_reset_with_a_recovery_code() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let now = steady_now().await;
    let (username, _, recovery_codes) =
        verified_account_with_totp(&app, &smtp, "recovery@example.com", 0, now).await;
    request_reset(&app, &username).await.expect("requested");
    let token = newest_reset_token(&smtp.wait_for(2).await);

    let response = app
        .post_json(
            "/user/password/reset/confirm",
            json!({
                "token": token,
                "new_password": NEW_PASSWORD,
                "recovery_code": recovery_codes[0],
            }),
        )
        .await;

    assert_eq!(response.status(), 200);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies.iter().all(|cookie| cookie.contains("HttpOnly")),
        "{cookies:?}"
    );
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["recovery_codes_left"], 9);
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        cookies
            .iter()
            .any(|cookie| cookie.contains(body["access_token"].as_str().expect("token"))),
        "{cookies:?}"
    );
    app.login(&username, NEW_PASSWORD)
        .await
        .expect("the new password works");
}

#[tokio::test]
async fn a_reset_ends_every_session_of_the_account_on_every_instance_and_mails_a_notice() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let beside = app.spawn_beside().await;
    let (username, registered) = verified_account(&app, &smtp, "ended@example.com", 0).await;
    let there = beside.login(&username, PASSWORD).await.expect("logged in");
    beside
        .verify(&registered)
        .await
        .expect("both instances accept it");
    request_reset(&beside, &username).await.expect("requested");
    let token = newest_reset_token(&smtp.wait_for(2).await);

    let response = app
        .http
        .post(format!("{}/user/password/reset/confirm", app.base_url))
        .header("user-agent", "reset-test/1.0")
        .json(&json!({ "token": token, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let fresh = body["access_token"].as_str().expect("token");

    for (instance, access) in [
        (&app, &registered),
        (&app, &there.access_token),
        (&beside, &registered),
        (&beside, &there.access_token),
    ] {
        wait_until_revoked(instance, access).await;
    }
    assert_refused(
        beside.refresh(&there.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    app.verify(fresh).await.expect("the new session lives");
    beside.verify(fresh).await.expect("everywhere");

    let mails = smtp.wait_for(3).await;
    let notices: Vec<&ReceivedMail> = mails
        .iter()
        .filter(|mail| {
            mail.header("Subject").as_deref() == Some("Security notice: your password was reset")
        })
        .collect();
    assert_eq!(notices.len(), 1, "one notice");
    let notice = notices[0];
    assert_eq!(notice.header("To").as_deref(), Some("ended@example.com"));
    let text = notice.body("text/plain").expect("text");
    assert!(
        text.contains("127.0.0.1") && text.contains("reset-test/1.0"),
        "{text}"
    );
    assert!(!text.contains("authd_pr_") && !text.contains(NEW_PASSWORD));
}

#[tokio::test]
async fn past_the_accounts_budget_a_request_answers_the_same_and_mails_nothing() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (username, _) = verified_account(&app, &smtp, "budget@example.com", 0).await;
    // The budget is shared by the instances on the database.
    let beside = app.spawn_beside().await;

    for attempt in 0..6 {
        let instance = if attempt % 2 == 0 { &app } else { &beside };
        request_reset(instance, &username)
            .await
            .expect("the same answer, budget or not");
    }
    let response = app
        .post_json(
            "/user/password/reset",
            json!({ "username_or_email": username }),
        )
        .await;
    assert_eq!(response.status(), 202);

    let mails = smtp.wait_for(6).await;
    assert_eq!(reset_mails(&mails).len(), 5, "five per hour by default");
}

#[tokio::test]
async fn without_smtp_the_reset_calls_answer_mail_not_configured() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    register_with_email(&app, &username, "quiet@example.com")
        .await
        .expect("registered");

    assert_refused(
        request_reset(&app, &username).await,
        Code::FailedPrecondition,
        "MAIL_NOT_CONFIGURED",
    );
    assert_refused(
        reset(&app, "authd_pr_x", NEW_PASSWORD, None).await,
        Code::FailedPrecondition,
        "MAIL_NOT_CONFIGURED",
    );
    assert_refused(
        app.client
            .clone()
            .start_passkey_password_reset(StartPasskeyPasswordResetRequest {
                token: "authd_pr_x".into(),
            })
            .await,
        Code::FailedPrecondition,
        "MAIL_NOT_CONFIGURED",
    );
    for (path, body) in [
        (
            "/user/password/reset",
            json!({ "username_or_email": username }),
        ),
        (
            "/user/password/reset/confirm",
            json!({ "token": "authd_pr_x", "new_password": NEW_PASSWORD }),
        ),
        (
            "/user/password/reset/passkey",
            json!({ "token": "authd_pr_x" }),
        ),
    ] {
        let (status, reason, _) = problem(app.post_json(path, body).await).await;
        assert_eq!(
            (status, reason.as_str()),
            (409, "MAIL_NOT_CONFIGURED"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_passkey_challenge_for_a_reset_needs_a_live_token_and_a_passkey() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (username, _) = verified_account(&app, &smtp, "nokey@example.com", 0).await;
    request_reset(&app, &username).await.expect("requested");
    let token = newest_reset_token(&smtp.wait_for(2).await);

    let (status, reason, _) = problem(
        app.post_json("/user/password/reset/passkey", json!({ "token": token }))
            .await,
    )
    .await;
    assert_eq!((status, reason.as_str()), (404, "PASSKEY_NOT_FOUND"));
    let (status, reason, _) = problem(
        app.post_json(
            "/user/password/reset/passkey",
            json!({ "token": "authd_pr_x" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, reason.as_str()),
        (400, "PASSWORD_RESET_TOKEN_INVALID")
    );
    let (status, reason, _) = problem(
        app.post_json(
            "/user/password/reset/confirm",
            json!({ "token": "authd_pr_x", "new_password": NEW_PASSWORD }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, reason.as_str()),
        (400, "PASSWORD_RESET_TOKEN_INVALID")
    );
}

#[tokio::test]
async fn no_reset_token_new_password_or_address_reaches_the_log() {
    let smtp = SmtpServer::start().await;
    let database = TestDatabase::create().await;
    let url = smtp.url();
    let (mut authd, address, _, log) = spawn_authd_process_logged(
        &[("RUST_LOG", "debug")],
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
    let username = unique_username();
    let mailbox = "private.person@example.com";
    let registered = http
        .post(format!("http://{address}/user/register"))
        .json(&json!({ "username": username, "password": PASSWORD, "email": mailbox }))
        .send()
        .await
        .expect("registered");
    assert_eq!(registered.status(), 201);
    let verification = token_to(&smtp.wait_for(1).await, mailbox);
    let verified = http
        .post(format!("http://{address}/user/email/verify"))
        .json(&json!({ "token": verification }))
        .send()
        .await
        .expect("verified");
    assert_eq!(verified.status(), 200);
    for name in [mailbox, "someone.else@example.com"] {
        let requested = http
            .post(format!("http://{address}/user/password/reset"))
            .json(&json!({ "username_or_email": name }))
            .send()
            .await
            .expect("requested");
        assert_eq!(requested.status(), 202);
    }
    let token = newest_reset_token(&smtp.wait_for(2).await);
    let reset = http
        .post(format!("http://{address}/user/password/reset/confirm"))
        .json(&json!({ "token": token, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), 200);
    smtp.wait_for(3).await;
    // Stopped, so that every line it wrote has been read.
    terminate(&mut authd).await;

    let log = log.lock().expect("log").join("\n");
    assert!(log.contains("password reset mailed"), "the log is captured");
    let secret = token.trim_start_matches("authd_pr_");
    assert!(!log.contains(secret), "a reset token in the log");
    assert!(!log.contains(NEW_PASSWORD), "the new password in the log");
    for address in [mailbox, "someone.else@example.com"] {
        assert!(!log.contains(address), "an address in the log");
    }
}
