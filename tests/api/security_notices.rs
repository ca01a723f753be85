//! Security notices over real sockets, with a real SMTP server: each change
//! to how an account signs in mails its verified address once, saying what
//! happened, when and from which client, with no secret in it; an account
//! without a verified address gets none.

use authd::grpc::pb::{
    CompleteLoginRequest, ConfirmTotpEnrollmentRequest, DisableTotpRequest,
    RegenerateRecoveryCodesRequest, SetEmailRequest, StartTotpEnrollmentRequest,
    complete_login_request, disable_totp_request, regenerate_recovery_codes_request,
};
use tonic::Request;

use crate::email::{mail_through, register_with_email, token_to, verify_email};
use crate::helpers::{PASSWORD, TestApp, unique_username, with_bearer};
use crate::passkeys::{accept_test_origin, add_passkey, remove, sign_in};
use crate::second_factor::{code, steady_now};
use crate::smtp_server::{ReceivedMail, SmtpServer};

const ADDRESS: &str = "notice@example.com";
const USER_AGENT: &str = "notice-test/1.0";

/// A request with the bearer token and the test's User-Agent.
fn from_test_client<T>(message: T, token: &str) -> Request<T> {
    let mut request = with_bearer(message, token);
    request
        .metadata_mut()
        .insert("user-agent", USER_AGENT.parse().expect("ASCII"));
    request
}

/// An account whose address `address` is verified; its access token. The
/// verification mail is the `mails_before + 1`th.
async fn verified_account(
    app: &TestApp,
    smtp: &SmtpServer,
    address: &str,
    mails_before: usize,
) -> (String, String) {
    let username = unique_username();
    let registered = register_with_email(app, &username, address)
        .await
        .expect("registered");
    let token = token_to(&smtp.wait_for(mails_before + 1).await, address);
    verify_email(app, &token).await.expect("verified");
    (username, registered.access_token)
}

/// The notices among `mails`, by subject, sorted: the outbox sends a
/// batch's mails at once, so they may arrive in any order.
fn notice_subjects(mails: &[ReceivedMail]) -> Vec<String> {
    let mut subjects: Vec<String> = mails
        .iter()
        .filter_map(|mail| mail.header("Subject"))
        .filter(|subject| subject.starts_with("Security notice: "))
        .collect();
    subjects.sort();
    subjects
}

/// `subjects`, sorted as [`notice_subjects`] gives them.
fn sorted(subjects: &[&str]) -> Vec<String> {
    let mut subjects: Vec<String> = subjects.iter().map(|&subject| subject.to_owned()).collect();
    subjects.sort();
    subjects
}

/// Checks a notice's recipient, that it names the client, and that none of
/// `secrets` is in it.
fn assert_notice(mail: &ReceivedMail, to: &str, secrets: &[&str]) {
    assert_eq!(mail.header("To").as_deref(), Some(to));
    let text = mail.body("text/plain").expect("a plain-text body");
    let html = mail.body("text/html").expect("an HTML body");
    assert!(
        text.contains("127.0.0.1") && text.contains("UTC"),
        "when and from where:\n{text}"
    );
    for secret in secrets {
        assert!(
            !text.contains(secret) && !html.contains(secret),
            "a secret in the notice:\n{text}"
        );
    }
}

#[tokio::test]
async fn changing_the_password_and_deleting_the_account_each_send_one_notice() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (_, token) = verified_account(&app, &smtp, ADDRESS, 0).await;
    let new_password = "a different passphrase, 2026";

    let changed = app
        .client
        .clone()
        .change_password(from_test_client(
            authd::grpc::pb::ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: new_password.into(),
                second: None,
            },
            &token,
        ))
        .await
        .expect("changed")
        .into_inner();
    let mails = smtp.wait_for(2).await;
    assert_eq!(
        notice_subjects(&mails),
        ["Security notice: your password was changed"]
    );
    let notice = &mails[1];
    assert_notice(notice, ADDRESS, &[PASSWORD, new_password]);
    assert!(
        notice
            .body("text/plain")
            .is_some_and(|text| text.contains(USER_AGENT)),
        "the user agent is named"
    );

    app.delete_account(&changed.access_token, new_password)
        .await
        .expect("deleted");
    let mails = smtp.wait_for(3).await;
    assert_eq!(
        notice_subjects(&mails),
        sorted(&[
            "Security notice: your password was changed",
            "Security notice: your account was deleted"
        ])
    );
    assert_notice(&mails[2], ADDRESS, &[new_password]);
    assert_eq!(smtp.received().len(), 3, "nothing else");
}

#[tokio::test]
async fn an_address_not_yet_verified_gets_no_notice() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let registered = register_with_email(&app, &unique_username(), ADDRESS)
        .await
        .expect("registered");
    smtp.wait_for(1).await;

    app.change_password(
        &registered.access_token,
        PASSWORD,
        "another passphrase, 2026",
    )
    .await
    .expect("changed");
    // A mail the change would have queued goes out within the poll
    // interval (100 ms); the verification mail is the only one.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(smtp.received().len(), 1, "only the verification mail");
}

#[tokio::test]
async fn turning_totp_on_using_a_recovery_code_remaking_them_and_turning_totp_off_each_send_one_notice()
 {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (username, token) = verified_account(&app, &smtp, ADDRESS, 0).await;
    let now = steady_now().await;
    let mut client = app.client.clone();

    let started = client
        .start_totp_enrollment(with_bearer(StartTotpEnrollmentRequest {}, &token))
        .await
        .expect("started")
        .into_inner();
    let confirmed = client
        .confirm_totp_enrollment(from_test_client(
            ConfirmTotpEnrollmentRequest {
                code: code(&started.secret, now, -1),
            },
            &token,
        ))
        .await
        .expect("confirmed")
        .into_inner();
    smtp.wait_for(2).await;

    let ticket = app
        .login(&username, PASSWORD)
        .await
        .expect("password accepted")
        .mfa_required
        .expect("a ticket")
        .ticket;
    let used_code = confirmed.recovery_codes[0].clone();
    let completed = client
        .complete_login(CompleteLoginRequest {
            ticket,
            proof: Some(complete_login_request::Proof::RecoveryCode(
                used_code.clone(),
            )),
        })
        .await
        .expect("recovery code accepted")
        .into_inner();
    smtp.wait_for(3).await;

    let remade = client
        .regenerate_recovery_codes(from_test_client(
            RegenerateRecoveryCodesRequest {
                second: Some(regenerate_recovery_codes_request::Second::TotpCode(code(
                    &started.secret,
                    now,
                    0,
                ))),
            },
            &completed.access_token,
        ))
        .await
        .expect("remade")
        .into_inner();
    smtp.wait_for(4).await;

    client
        .disable_totp(from_test_client(
            DisableTotpRequest {
                second: Some(disable_totp_request::Second::RecoveryCode(
                    remade.recovery_codes[0].clone(),
                )),
            },
            &completed.access_token,
        ))
        .await
        .expect("turned off");
    let mails = smtp.wait_for(6).await;

    assert_eq!(
        notice_subjects(&mails),
        sorted(&[
            "Security notice: two-step verification was turned on",
            "Security notice: a recovery code was used",
            "Security notice: new recovery codes were made",
            "Security notice: a recovery code was used",
            "Security notice: two-step verification was turned off",
        ])
    );
    let mut secrets: Vec<&str> = vec![&started.secret, &used_code];
    secrets.extend(remade.recovery_codes.iter().map(String::as_str));
    secrets.extend(confirmed.recovery_codes.iter().map(String::as_str));
    for notice in &mails[1..] {
        assert_notice(notice, ADDRESS, &secrets);
    }
}

#[tokio::test]
async fn replacing_a_verified_address_tells_the_old_one() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(mail_through(&smtp)).await;
    let (_, token) = verified_account(&app, &smtp, ADDRESS, 0).await;

    app.client
        .clone()
        .set_email(from_test_client(
            SetEmailRequest {
                email: "replacement@example.com".into(),
                second: None,
            },
            &token,
        ))
        .await
        .expect("replaced");
    let mails = smtp.wait_for(3).await;

    let to_old: Vec<&ReceivedMail> = mails[1..]
        .iter()
        .filter(|mail| mail.header("To").as_deref() == Some(ADDRESS))
        .collect();
    assert_eq!(to_old.len(), 1, "one mail to the old address");
    assert_eq!(
        to_old[0].header("Subject").as_deref(),
        Some("Security notice: your email address was changed")
    );
    assert_notice(to_old[0], ADDRESS, &["authd_ev_"]);
    let to_new = mails[1..]
        .iter()
        .filter(|mail| mail.header("To").as_deref() == Some("replacement@example.com"))
        .count();
    assert_eq!(to_new, 1, "the new address's verification mail");
}

#[tokio::test]
async fn adding_and_removing_a_passkey_each_send_one_notice() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(|settings| {
        mail_through(&smtp)(settings);
        accept_test_origin(settings);
    })
    .await;
    let (username, token) = verified_account(&app, &smtp, ADDRESS, 0).await;

    let mut account = add_passkey(&app, username, token).await;
    smtp.wait_for(2).await;
    // Removing a passkey is a step-up: a recent passkey sign-in is one.
    let signed_in = sign_in(&app, &mut account).await;
    remove(&app, &signed_in.access_token, &account.passkey.id)
        .await
        .expect("removed");
    let mails = smtp.wait_for(3).await;

    assert_eq!(
        notice_subjects(&mails),
        sorted(&[
            "Security notice: a passkey was added",
            "Security notice: a passkey was removed"
        ])
    );
    for notice in &mails[1..] {
        assert_notice(notice, ADDRESS, &[&account.credential_id]);
    }
}
