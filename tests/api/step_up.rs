//! Step-up over real sockets: what changing the password, deleting the
//! account, disabling TOTP and regenerating recovery codes ask beyond a
//! valid token, and Reauthenticate, which renews a session's
//! authentication for them.

use std::time::Duration;

use authd::grpc::pb::{
    ChangePasswordRequest, CompleteLoginRequest, DeleteAccountRequest, DisableTotpRequest,
    GetMfaStatusRequest, ReauthenticateRequest, RegenerateRecoveryCodesRequest,
    StartTotpEnrollmentRequest, change_password_request, complete_login_request,
    delete_account_request, disable_totp_request, reauthenticate_request,
    regenerate_recovery_codes_request,
};
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, assert_refused, problem, with_bearer};
use crate::second_factor::{Enrolled, code, enroll_at, steady_now, ticket};

/// A two-factor session of the account: its access token.
async fn two_factor_token(
    app: &TestApp,
    account: &Enrolled,
    proof: complete_login_request::Proof,
) -> String {
    let ticket = ticket(app, &account.username).await;
    app.client
        .clone()
        .complete_login(CompleteLoginRequest {
            ticket,
            proof: Some(proof),
        })
        .await
        .expect("second factor accepted")
        .into_inner()
        .access_token
}

fn recovery(account: &Enrolled, index: usize) -> complete_login_request::Proof {
    complete_login_request::Proof::RecoveryCode(account.recovery_codes[index].clone())
}

#[tokio::test]
async fn changing_the_password_of_an_account_with_totp_needs_the_second_factor_too() {
    let app = TestApp::spawn().await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, -1).await;
    let change = |token: &str, second| {
        let mut client = app.client.clone();
        let request = with_bearer(
            ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: PASSWORD.into(),
                second,
            },
            token,
        );
        async move { client.change_password(request).await }
    };
    // The enrolling session is recent but passed no second factor: the
    // password alone does not do.
    let status = assert_refused(
        change(&account.token, None).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
    assert_eq!(
        info.metadata.get("max_age").map(String::as_str),
        Some("300")
    );
    assert_refused(
        change(
            &account.token,
            Some(change_password_request::Second::TotpCode("000000".into())),
        )
        .await,
        Code::InvalidArgument,
        "MFA_CODE_INVALID",
    );
    let changed = change(
        &account.token,
        Some(change_password_request::Second::TotpCode(code(
            &account.secret,
            now,
            0,
        ))),
    )
    .await
    .expect("the password and a code do");
    // A session that passed the second factor moments ago needs no code.
    let token = two_factor_token(&app, &account, recovery(&account, 0)).await;
    change(&token, None)
        .await
        .expect("a recent two-factor session does");
    drop(changed);
}

#[tokio::test]
async fn deleting_an_account_with_totp_needs_the_second_factor_too() {
    let app = TestApp::spawn().await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, -1).await;
    let delete = |second| {
        let mut client = app.client.clone();
        let request = with_bearer(
            DeleteAccountRequest {
                password: PASSWORD.into(),
                second,
            },
            &account.token,
        );
        async move { client.delete_account(request).await }
    };
    assert_refused(
        delete(None).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    delete(Some(delete_account_request::Second::RecoveryCode(
        account.recovery_codes[0].clone(),
    )))
    .await
    .expect("deleted with a recovery code");
    assert_refused(
        app.login(&account.username, PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
}

#[tokio::test]
async fn disabling_totp_needs_a_recent_second_factor_and_ends_the_other_sessions() {
    let app = TestApp::spawn().await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, -1).await;
    let disable = |token: &str, second| {
        let mut client = app.client.clone();
        let request = with_bearer(DisableTotpRequest { second }, token);
        async move { client.disable_totp(request).await }
    };
    assert_refused(
        disable(&account.token, None).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    let other = two_factor_token(&app, &account, recovery(&account, 0)).await;
    let token = two_factor_token(&app, &account, recovery(&account, 1)).await;
    disable(&token, None)
        .await
        .expect("a recent two-factor session may");
    assert_refused(
        app.verify(&other).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    app.verify(&token)
        .await
        .expect("the caller's session goes on");
    let login = app.login(&account.username, PASSWORD).await.unwrap();
    assert!(login.mfa_required.is_none() && !login.access_token.is_empty());
    assert_refused(
        disable(&token, None).await,
        Code::FailedPrecondition,
        "TOTP_NOT_ENABLED",
    );
    let status = app
        .client
        .clone()
        .get_mfa_status(with_bearer(GetMfaStatusRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !status.totp_enabled && status.recovery_codes_left == 0,
        "{status:?}"
    );
    // With a code in the request, an aal1 session may too (REST twin).
    let again = enroll_at(&app, steady_now().await, 0).await;
    let response = app
        .http
        .delete(format!("{}/user/mfa/totp", app.base_url))
        .bearer_auth(&again.token)
        .send()
        .await
        .unwrap();
    let challenge = response.headers().get("www-authenticate").cloned();
    let (status, reason, _) = problem(response).await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "REAUTHENTICATION_REQUIRED")
    );
    assert!(
        challenge
            .unwrap()
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    let response = app
        .http
        .delete(format!("{}/user/mfa/totp", app.base_url))
        .bearer_auth(&again.token)
        .json(&serde_json::json!({"recovery_code": again.recovery_codes[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn regenerating_recovery_codes_voids_the_old_set() {
    let app = TestApp::spawn().await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, -1).await;
    let regenerate = |second| {
        let mut client = app.client.clone();
        let request = with_bearer(RegenerateRecoveryCodesRequest { second }, &account.token);
        async move { client.regenerate_recovery_codes(request).await }
    };
    assert_refused(
        regenerate(None).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    let fresh = regenerate(Some(regenerate_recovery_codes_request::Second::TotpCode(
        code(&account.secret, now, 0),
    )))
    .await
    .expect("regenerated")
    .into_inner()
    .recovery_codes;
    assert_eq!(fresh.len(), 10);
    assert!(
        fresh
            .iter()
            .all(|code| !account.recovery_codes.contains(code))
    );
    let ticket = ticket(&app, &account.username).await;
    assert_refused(
        app.client
            .clone()
            .complete_login(CompleteLoginRequest {
                ticket: ticket.clone(),
                proof: Some(recovery(&account, 5)),
            })
            .await,
        Code::InvalidArgument,
        "MFA_CODE_INVALID",
    );
    app.client
        .clone()
        .complete_login(CompleteLoginRequest {
            ticket,
            proof: Some(complete_login_request::Proof::RecoveryCode(
                fresh[5].clone(),
            )),
        })
        .await
        .expect("a new code works");
}

#[tokio::test]
async fn reauthenticating_renews_the_same_sessions_authentication() {
    let app = TestApp::spawn_with(|settings| {
        settings.reauthentication_max_age = Duration::from_secs(2);
    })
    .await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, -1).await;
    let before = app.verify(&account.token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    // Too old for DisableTotp even with a code: the first factor is stale.
    assert_refused(
        app.client
            .clone()
            .disable_totp(with_bearer(
                DisableTotpRequest {
                    second: Some(disable_totp_request::Second::RecoveryCode(
                        account.recovery_codes[0].clone(),
                    )),
                },
                &account.token,
            ))
            .await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    let reauthenticate = |second| {
        let mut client = app.client.clone();
        let request = with_bearer(
            ReauthenticateRequest {
                password: PASSWORD.into(),
                second,
            },
            &account.token,
        );
        async move { client.reauthenticate(request).await }
    };
    assert_refused(
        reauthenticate(None).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    let renewed = reauthenticate(Some(reauthenticate_request::Second::TotpCode(code(
        &account.secret,
        now,
        0,
    ))))
    .await
    .expect("reauthenticated")
    .into_inner();
    assert_eq!(renewed.session_id, before.session_id);
    let after = app.verify(&renewed.access_token).await.unwrap();
    assert_eq!(after.amr, ["pwd", "otp", "mfa"]);
    assert_eq!(after.assurance_level, 2);
    assert!(after.auth_time.unwrap().seconds > before.auth_time.unwrap().seconds);
    app.client
        .clone()
        .disable_totp(with_bearer(
            DisableTotpRequest { second: None },
            &renewed.access_token,
        ))
        .await
        .expect("a fresh two-factor authentication may");
    // A new enrollment needs a recent authentication, as this one is.
    app.client
        .clone()
        .start_totp_enrollment(with_bearer(
            StartTotpEnrollmentRequest {},
            &renewed.access_token,
        ))
        .await
        .expect("recent enough to enroll");
    // Without a second factor on the account, the password alone renews.
    let renewed = reauthenticate(None)
        .await
        .expect("password only")
        .into_inner();
    assert_eq!(
        app.verify(&renewed.access_token).await.unwrap().amr,
        ["pwd"]
    );
}
