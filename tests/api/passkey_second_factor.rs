//! A passkey as the second factor after a password (Login answers
//! `mfa_required` with request options bound to the ticket, CompleteLogin
//! takes the assertion), as the proof of Reauthenticate and of a step-up
//! (StartPasskeyReauthentication's challenge, bound to the session), and
//! how ListSessions shows each session signed in. Over gRPC and the REST
//! twins, on real sockets.

use std::time::Duration;

use authd::grpc::pb::{
    CompleteLoginRequest, CompleteLoginResponse, LoginResponse, ReauthenticateRequest,
    RemovePasskeyRequest, StartPasskeyReauthenticationRequest, complete_login_request::Proof,
    reauthenticate_request, remove_passkey_request,
};
use tonic::{Code, Status};

use crate::helpers::{PASSWORD, TestApp, assert_refused, problem, with_bearer};
use crate::passkeys::{
    ORIGIN, WithPasskey, assertion_json, sign_in, spawn, spawn_with, with_passkey,
};

/// Logs in with the password: the account's `mfa_required`.
async fn password_login(app: &TestApp, account: &WithPasskey) -> (String, String) {
    let response: LoginResponse = app
        .login(&account.username, PASSWORD)
        .await
        .expect("the password is right");
    let required = response.mfa_required.expect("a second factor is asked");
    assert_eq!(required.methods, ["passkey"]);
    assert!(response.access_token.is_empty());
    (required.ticket, required.passkey_options_json)
}

async fn complete(
    app: &TestApp,
    ticket: &str,
    assertion: &str,
) -> Result<CompleteLoginResponse, Status> {
    app.client
        .clone()
        .complete_login(CompleteLoginRequest {
            ticket: ticket.to_owned(),
            proof: Some(Proof::PasskeyCredentialJson(assertion.to_owned())),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The account's passkey's answer to `options_json`.
fn sign(account: &mut WithPasskey, options_json: &str) -> String {
    assertion_json(&mut account.authenticator, options_json, ORIGIN, true)
}

async fn start_reauthentication(app: &TestApp, token: &str) -> Result<String, Status> {
    app.client
        .clone()
        .start_passkey_reauthentication(with_bearer(StartPasskeyReauthenticationRequest {}, token))
        .await
        .map(|response| response.into_inner().options_json)
}

#[tokio::test]
async fn a_password_login_of_an_account_with_a_passkey_is_completed_by_its_assertion_at_the_second_level()
 {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;

    let (ticket, options_json) = password_login(&app, &account).await;
    let options: serde_json::Value = serde_json::from_str(&options_json).expect("options JSON");
    assert!(options["challenge"].is_string(), "{options}");
    assert_eq!(options["userVerification"], "required");
    assert_eq!(
        options["allowCredentials"][0]["id"],
        account.credential_id.as_str()
    );
    let assertion = sign(&mut account, &options_json);
    let session = complete(&app, &ticket, &assertion)
        .await
        .expect("the passkey completes the login");

    let verified = app.verify(&session.access_token).await.expect("verifies");
    assert_eq!(verified.amr, ["pwd", "hwk", "user", "mfa"]);
    assert_eq!(verified.assurance_level, 2);
    assert_eq!(session.recovery_codes_left, None);
    // The ticket is spent with its challenge.
    assert_refused(
        complete(&app, &ticket, &assertion).await,
        Code::Unauthenticated,
        "MFA_TICKET_INVALID",
    );
}

#[tokio::test]
async fn an_assertion_for_another_tickets_challenge_or_replayed_is_refused() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let (first, first_options) = password_login(&app, &account).await;
    let (second, second_options) = password_login(&app, &account).await;
    let for_first = sign(&mut account, &first_options);

    assert_refused(
        complete(&app, &second, &for_first).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
    // That attempt spent the second ticket's challenge.
    let for_second = sign(&mut account, &second_options);
    assert_refused(
        complete(&app, &second, &for_second).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
    complete(&app, &first, &for_first)
        .await
        .expect("the first ticket's own assertion");

    // Replayed on a new ticket, a used assertion answers the old challenge.
    let (third, _) = password_login(&app, &account).await;
    assert_refused(
        complete(&app, &third, &for_first).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
}

#[tokio::test]
async fn a_passkey_of_another_account_does_not_complete_this_accounts_login() {
    let app = spawn().await;
    let alice = with_passkey(&app).await;
    let mut bob = with_passkey(&app).await;
    let (ticket, options_json) = password_login(&app, &alice).await;
    // Bob's authenticator signs Alice's challenge with Bob's credential.
    let mut options: serde_json::Value = serde_json::from_str(&options_json).expect("JSON");
    options["allowCredentials"] =
        serde_json::json!([{ "type": "public-key", "id": bob.credential_id }]);
    let assertion = sign(&mut bob, &options.to_string());

    assert_refused(
        complete(&app, &ticket, &assertion).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
}

#[tokio::test]
async fn wrong_assertions_count_toward_the_tickets_five_attempts() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let (other, other_options) = password_login(&app, &account).await;
    let (ticket, _) = password_login(&app, &account).await;
    let wrong = sign(&mut account, &other_options);

    assert_refused(
        complete(&app, &ticket, &wrong).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
    for _ in 1..5 {
        assert_refused(
            complete(&app, &ticket, &wrong).await,
            Code::FailedPrecondition,
            "PASSKEY_CEREMONY_INVALID",
        );
    }
    assert_refused(
        complete(&app, &ticket, &wrong).await,
        Code::Unauthenticated,
        "MFA_TICKET_INVALID",
    );
    // The other ticket's challenge was untouched.
    complete(&app, &other, &wrong)
        .await
        .expect("the other ticket's own assertion");
}

#[tokio::test]
async fn reauthenticating_with_a_passkey_renews_auth_time_and_the_password_alone_is_not_enough() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let before = app.verify(&account.token).await.expect("verifies");
    // auth_time counts seconds: let one pass.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reauthenticate = |token: String, second| {
        let mut client = app.client.clone();
        async move {
            client
                .reauthenticate(with_bearer(
                    ReauthenticateRequest {
                        password: PASSWORD.into(),
                        second,
                    },
                    &token,
                ))
                .await
                .map(tonic::Response::into_inner)
        }
    };

    assert_refused(
        reauthenticate(account.token.clone(), None).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    // Without a challenge started for the session, an assertion has none to
    // answer.
    let login_options = crate::passkeys::start_login(&app, &account.username)
        .await
        .options_json;
    let unbound = sign(&mut account, &login_options);
    assert_refused(
        reauthenticate(
            account.token.clone(),
            Some(reauthenticate_request::Second::PasskeyCredentialJson(
                unbound,
            )),
        )
        .await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
    let options_json = start_reauthentication(&app, &account.token)
        .await
        .expect("a challenge for the session");
    let assertion = sign(&mut account, &options_json);
    let renewed = reauthenticate(
        account.token.clone(),
        Some(reauthenticate_request::Second::PasskeyCredentialJson(
            assertion.clone(),
        )),
    )
    .await
    .expect("reauthenticated with the passkey");

    let after = app.verify(&renewed.access_token).await.expect("verifies");
    assert!(
        after.auth_time.expect("auth_time").seconds > before.auth_time.expect("auth_time").seconds
    );
    assert_eq!(after.amr, ["pwd", "hwk", "user", "mfa"]);
    assert_eq!(after.session_id, before.session_id);
    // The challenge was single use.
    assert_refused(
        reauthenticate(
            account.token.clone(),
            Some(reauthenticate_request::Second::PasskeyCredentialJson(
                assertion,
            )),
        )
        .await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
}

#[tokio::test]
async fn a_step_up_takes_a_passkey_bound_to_the_callers_session_only() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let passkey_id = account.passkey.id.clone();
    let remove = |token: String, second| {
        let mut client = app.client.clone();
        let passkey_id = passkey_id.clone();
        async move {
            client
                .remove_passkey(with_bearer(
                    RemovePasskeyRequest { passkey_id, second },
                    &token,
                ))
                .await
                .map(drop)
        }
    };
    // A recent password sign-in is one factor of an account with two.
    assert_refused(
        remove(account.token.clone(), None).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    // A challenge of another session of the account does not count here.
    let other = sign_in(&app, &mut account).await;
    let others_options = start_reauthentication(&app, &other.access_token)
        .await
        .expect("a challenge for the other session");
    let for_other = sign(&mut account, &others_options);
    assert_refused(
        remove(
            account.token.clone(),
            Some(remove_passkey_request::Second::PasskeyCredentialJson(
                for_other,
            )),
        )
        .await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );

    let options_json = start_reauthentication(&app, &account.token)
        .await
        .expect("a challenge for this session");
    let assertion = sign(&mut account, &options_json);
    remove(
        account.token.clone(),
        Some(remove_passkey_request::Second::PasskeyCredentialJson(
            assertion,
        )),
    )
    .await
    .expect("removed after the passkey step-up");

    // No passkey left: no challenge to start, and Login asks nothing more.
    assert_refused(
        start_reauthentication(&app, &account.token).await,
        Code::NotFound,
        "PASSKEY_NOT_FOUND",
    );
    let login = app
        .login(&account.username, PASSWORD)
        .await
        .expect("logged in");
    assert!(login.mfa_required.is_none());
}

#[tokio::test]
async fn list_sessions_shows_how_each_session_signed_in() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let with_passkey_only = sign_in(&app, &mut account).await;
    let (ticket, options_json) = password_login(&app, &account).await;
    let assertion = sign(&mut account, &options_json);
    let with_both = complete(&app, &ticket, &assertion)
        .await
        .expect("completed");

    let sessions = app.list_sessions(&account.token).await.expect("listed");
    let signed_in = |id: &str| {
        let session = sessions
            .iter()
            .find(|session| session.id == id)
            .expect("listed");
        (session.amr.clone(), session.assurance_level)
    };
    let password_session = app.verify(&account.token).await.expect("verifies");
    assert_eq!(
        signed_in(&password_session.session_id),
        (vec!["pwd".to_owned()], 1)
    );
    assert_eq!(
        signed_in(&with_passkey_only.session_id),
        (vec!["hwk".into(), "user".into(), "mfa".into()], 2)
    );
    assert_eq!(
        signed_in(&with_both.session_id),
        (
            vec!["pwd".into(), "hwk".into(), "user".into(), "mfa".into()],
            2
        )
    );
}

#[tokio::test]
async fn the_rest_twins_take_a_passkey_after_the_password_and_for_a_reauthentication() {
    let app = spawn_with(|_| {}).await;
    let mut account = with_passkey(&app).await;

    let login: serde_json::Value = app
        .rest_login(&account.username, PASSWORD)
        .await
        .json()
        .await
        .expect("JSON");
    let required = &login["mfa_required"];
    assert_eq!(required["methods"], serde_json::json!(["passkey"]));
    let ticket = required["ticket"].as_str().expect("ticket").to_owned();
    let options_json = required["passkey_options_json"]
        .as_str()
        .expect("options")
        .to_owned();
    let (status, reason, _) = problem(
        app.post_json(
            "/login/mfa",
            serde_json::json!({"ticket": ticket, "totp_code": "123456", "passkey_credential_json": "{}"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, reason.as_str()), (400, "FIELD_CONFLICT"));
    let (status, reason, _) = problem(
        app.post_json(
            "/login/mfa",
            serde_json::json!({"ticket": ticket, "passkey_credential_json": "not an assertion"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "PASSKEY_VERIFICATION_FAILED")
    );
    let assertion = sign(&mut account, &options_json);
    let completed = app
        .post_json(
            "/login/mfa",
            serde_json::json!({"ticket": ticket, "passkey_credential_json": assertion}),
        )
        .await;
    assert_eq!(completed.status(), 200);
    let completed: serde_json::Value = completed.json().await.expect("JSON");
    let token = completed["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

    let sessions: serde_json::Value = app
        .get("/user/sessions")
        .bearer_auth(&token)
        .send()
        .await
        .expect("listed")
        .json()
        .await
        .expect("JSON");
    let current = sessions["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|session| session["current"] == true)
        .expect("the caller's session")
        .clone();
    assert_eq!(
        current["amr"],
        serde_json::json!(["pwd", "hwk", "user", "mfa"])
    );
    assert_eq!(current["assurance_level"], 2);

    let started: serde_json::Value = app
        .post("/user/reauthenticate/passkey")
        .bearer_auth(&token)
        .send()
        .await
        .expect("started")
        .json()
        .await
        .expect("JSON");
    let assertion = sign(
        &mut account,
        started["options_json"].as_str().expect("options"),
    );
    let renewed = app
        .post("/user/reauthenticate")
        .bearer_auth(&token)
        .json(&serde_json::json!({"password": PASSWORD, "passkey_credential_json": assertion}))
        .send()
        .await
        .expect("sent");
    assert_eq!(renewed.status(), 200);
}
