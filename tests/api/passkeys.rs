//! Passkeys over gRPC and their REST twins, on real sockets: registering
//! one after a fresh login, signing in with it by username and
//! discoverably, renaming and removing it, and each refusal's reason. The browser's part is played by
//! webauthn-authenticator-rs' SoftPasskey, whose JSON is what
//! `credential.toJSON()` writes.

use std::time::Duration;

use authd::grpc::pb::{
    FinishPasskeyLoginRequest, FinishPasskeyLoginResponse, FinishPasskeyRegistrationRequest,
    ListPasskeysRequest, Passkey, ReauthenticateRequest, RemovePasskeyRequest,
    RenamePasskeyRequest, StartPasskeyLoginRequest, StartPasskeyLoginResponse,
    StartPasskeyReauthenticationRequest, StartPasskeyRegistrationRequest, reauthenticate_request,
};
use tonic::{Code, Request, Status};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::helpers::{
    PASSWORD, TestApp, assert_refused, problem, unique_username, violated_fields, with_bearer,
};

/// The page origin the test apps accept: one for every instance, as a
/// deployment behind one site name has.
pub(crate) const ORIGIN: &str = "http://localhost:8080";

pub(crate) async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

pub(crate) async fn spawn_with(configure: impl FnOnce(&mut authd::config::Settings)) -> TestApp {
    TestApp::spawn_with(|settings| {
        accept_test_origin(settings);
        configure(settings);
    })
    .await
}

/// Makes an app accept ceremonies from the page origin these tests' browser
/// stands in for.
pub fn accept_test_origin(settings: &mut authd::config::Settings) {
    settings.webauthn_origin = vec![Url::parse(ORIGIN).expect("origin")];
}

/// The access token of a passkey sign-in on `app` (which must
/// [`accept_test_origin`]): a new account, its passkey, then a sign-in with
/// it.
pub async fn passkey_session_token(app: &TestApp) -> String {
    let mut account = with_passkey(app).await;
    sign_in(app, &mut account).await.access_token
}

/// A software authenticator that says it verified the user.
pub(crate) fn authenticator() -> SoftPasskey {
    SoftPasskey::new(true)
}

/// What a browser on `origin` answers to creation options.
fn register_json(authenticator: &mut SoftPasskey, options_json: &str, origin: &str) -> String {
    let options: serde_json::Value = serde_json::from_str(options_json).expect("options JSON");
    let options: CreationChallengeResponse =
        serde_json::from_value(serde_json::json!({ "publicKey": options })).expect("options");
    let credential = authenticator
        .do_registration(Url::parse(origin).expect("origin"), options)
        .expect("the authenticator registers");
    serde_json::to_string(&credential).expect("credential JSON")
}

/// What a browser on `origin` answers to request options; `uv: false`
/// asks the authenticator not to verify the user.
pub(crate) fn assertion_json(
    authenticator: &mut SoftPasskey,
    options_json: &str,
    origin: &str,
    uv: bool,
) -> String {
    let mut options: serde_json::Value = serde_json::from_str(options_json).expect("options JSON");
    if !uv {
        options["userVerification"] = "discouraged".into();
    }
    let options: RequestChallengeResponse =
        serde_json::from_value(serde_json::json!({ "publicKey": options })).expect("options");
    let assertion = authenticator
        .do_authentication(Url::parse(origin).expect("origin"), options)
        .expect("the authenticator signs");
    serde_json::to_string(&assertion).expect("assertion JSON")
}

/// An account with a passkey, registered right after the account's
/// (fresh) sign-in.
pub(crate) struct WithPasskey {
    pub username: String,
    pub token: String,
    pub authenticator: SoftPasskey,
    pub passkey: Passkey,
    /// The credential id, base64url, as the browser names it.
    pub credential_id: String,
    /// The account's user handle, base64url, as the creation options name it.
    pub user_handle: String,
}

pub(crate) async fn with_passkey(app: &TestApp) -> WithPasskey {
    let username = unique_username();
    let token = app.registered_token(&username).await;
    add_passkey(app, username, token).await
}

/// Adds a passkey to the account `username`, signed in as `token`.
pub(crate) async fn add_passkey(app: &TestApp, username: String, token: String) -> WithPasskey {
    let mut authenticator = authenticator();
    let (passkey, credential, user_handle) =
        register(app, &token, &mut authenticator, " laptop ").await;
    let credential: serde_json::Value = serde_json::from_str(&credential).expect("JSON");
    let credential_id = credential["id"].as_str().expect("id").to_owned();
    WithPasskey {
        username,
        token,
        authenticator,
        passkey,
        credential_id,
        user_handle,
    }
}

/// Registers a passkey of `authenticator` for the bearer of `token`: the
/// passkey, the credential JSON sent and the user handle of the options.
async fn register(
    app: &TestApp,
    token: &str,
    authenticator: &mut SoftPasskey,
    name: &str,
) -> (Passkey, String, String) {
    let started = app
        .client
        .clone()
        .start_passkey_registration(with_bearer(StartPasskeyRegistrationRequest {}, token))
        .await
        .expect("registration starts")
        .into_inner();
    let options: serde_json::Value = serde_json::from_str(&started.options_json).expect("JSON");
    let user_handle = options["user"]["id"]
        .as_str()
        .expect("user handle")
        .to_owned();
    let credential = register_json(authenticator, &started.options_json, ORIGIN);
    let passkey = app
        .client
        .clone()
        .finish_passkey_registration(with_bearer(
            FinishPasskeyRegistrationRequest {
                ceremony_id: started.ceremony_id,
                credential_json: credential.clone(),
                name: name.into(),
            },
            token,
        ))
        .await
        .expect("registration finishes")
        .into_inner()
        .passkey
        .expect("the new passkey");
    (passkey, credential, user_handle)
}

pub(crate) async fn start_login(app: &TestApp, username: &str) -> StartPasskeyLoginResponse {
    app.client
        .clone()
        .start_passkey_login(StartPasskeyLoginRequest {
            username: username.into(),
        })
        .await
        .expect("sign-in starts")
        .into_inner()
}

pub(crate) async fn finish_login(
    app: &TestApp,
    ceremony_id: &str,
    credential_json: &str,
) -> Result<FinishPasskeyLoginResponse, Status> {
    app.client
        .clone()
        .finish_passkey_login(FinishPasskeyLoginRequest {
            ceremony_id: ceremony_id.into(),
            credential_json: credential_json.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Signs in with the account's passkey by its username.
pub(crate) async fn sign_in(
    app: &TestApp,
    account: &mut WithPasskey,
) -> FinishPasskeyLoginResponse {
    let started = start_login(app, &account.username).await;
    let assertion = assertion_json(
        &mut account.authenticator,
        &started.options_json,
        ORIGIN,
        true,
    );
    finish_login(app, &started.ceremony_id, &assertion)
        .await
        .expect("the passkey signs in")
}

/// A discoverable sign-in's assertion by `authenticator` with its
/// credential `credential_id`, naming `user_handle` as a browser would
/// (SoftPasskey needs to be told the credential and adds no user handle).
pub(crate) fn discoverable_assertion(
    authenticator: &mut SoftPasskey,
    options_json: &str,
    credential_id: &str,
    user_handle: &str,
) -> String {
    let mut request: serde_json::Value = serde_json::from_str(options_json).expect("JSON");
    assert_eq!(request["allowCredentials"], serde_json::json!([]));
    request["allowCredentials"] =
        serde_json::json!([{ "type": "public-key", "id": credential_id }]);
    let assertion = assertion_json(authenticator, &request.to_string(), ORIGIN, true);
    let mut assertion: serde_json::Value = serde_json::from_str(&assertion).expect("JSON");
    assertion["response"]["userHandle"] = user_handle.into();
    assertion.to_string()
}

pub(crate) async fn list(app: &TestApp, token: &str) -> Result<Vec<Passkey>, Status> {
    app.client
        .clone()
        .list_passkeys(with_bearer(ListPasskeysRequest {}, token))
        .await
        .map(|response| response.into_inner().passkeys)
}

async fn rename(app: &TestApp, token: &str, id: &str, name: &str) -> Result<(), Status> {
    app.client
        .clone()
        .rename_passkey(with_bearer(
            RenamePasskeyRequest {
                passkey_id: id.into(),
                name: name.into(),
            },
            token,
        ))
        .await
        .map(drop)
}

pub(crate) async fn remove(app: &TestApp, token: &str, id: &str) -> Result<(), Status> {
    app.client
        .clone()
        .remove_passkey(with_bearer(
            RemovePasskeyRequest {
                passkey_id: id.into(),
                second: None,
            },
            token,
        ))
        .await
        .map(drop)
}

#[tokio::test]
async fn a_passkey_registered_after_a_fresh_login_signs_in_by_username_as_multi_factor() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    assert_eq!(account.passkey.name, "laptop");
    assert!(account.passkey.created_at.is_some());
    assert_eq!(account.passkey.last_used_at, None);
    assert_eq!(
        list(&app, &account.token).await.expect("listed"),
        [account.passkey.clone()]
    );
    app.logout(&account.token).await.expect("signed out");

    let session = sign_in(&app, &mut account).await;

    assert_eq!(session.token_type, "Bearer");
    assert!(!session.refresh_token.is_empty());
    let user = session.user.clone().expect("user");
    assert_eq!(user.username, account.username);
    let verified = app.verify(&session.access_token).await.expect("verifies");
    assert_eq!(verified.amr, ["hwk", "user", "mfa"]);
    assert_eq!(verified.assurance_level, 2);
    assert_eq!(verified.session_id, session.session_id);
    let listed = list(&app, &session.access_token).await.expect("listed");
    assert!(listed[0].last_used_at.is_some());
}

#[tokio::test]
async fn a_passkey_session_is_listed_and_ends_with_logout() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let session = sign_in(&app, &mut account).await;

    let sessions = app
        .list_sessions(&session.access_token)
        .await
        .expect("listed");
    assert!(
        sessions
            .iter()
            .any(|listed| listed.id == session.session_id && listed.current)
    );

    app.logout(&session.access_token).await.expect("signed out");
    assert_refused(
        app.verify(&session.access_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_refused(
        app.refresh(&session.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
}

#[tokio::test]
async fn a_discoverable_sign_in_with_an_empty_username_finds_the_account_by_its_user_handle() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;

    let login = start_login(&app, "").await;
    let assertion = discoverable_assertion(
        &mut account.authenticator,
        &login.options_json,
        &account.credential_id,
        &account.user_handle,
    );
    let session = finish_login(&app, &login.ceremony_id, &assertion)
        .await
        .expect("signs in");

    assert_eq!(session.user.expect("user").username, account.username);
    let verified = app.verify(&session.access_token).await.expect("verifies");
    assert_eq!(verified.assurance_level, 2);
}

#[tokio::test]
async fn a_passkey_does_not_sign_in_to_another_account_whose_user_handle_it_names() {
    let app = spawn().await;
    let victim = with_passkey(&app).await;
    let mut attacker = with_passkey(&app).await;

    let login = start_login(&app, "").await;
    let assertion = discoverable_assertion(
        &mut attacker.authenticator,
        &login.options_json,
        &attacker.credential_id,
        &victim.user_handle,
    );
    assert_refused(
        finish_login(&app, &login.ceremony_id, &assertion).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );

    let login = start_login(&app, &victim.username).await;
    let mut request: serde_json::Value = serde_json::from_str(&login.options_json).expect("JSON");
    request["allowCredentials"] =
        serde_json::json!([{ "type": "public-key", "id": attacker.credential_id }]);
    let assertion = assertion_json(
        &mut attacker.authenticator,
        &request.to_string(),
        ORIGIN,
        true,
    );
    assert_refused(
        finish_login(&app, &login.ceremony_id, &assertion).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
}

#[tokio::test]
async fn a_passkey_is_renamed_and_removed_by_its_owner_only_and_then_signs_in_no_more() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let other = app.registered_token(&unique_username()).await;
    let id = account.passkey.id.clone();

    rename(&app, &account.token, &id, "phone")
        .await
        .expect("renamed");
    assert_eq!(
        list(&app, &account.token).await.expect("listed")[0].name,
        "phone"
    );
    let status = assert_refused(
        rename(&app, &account.token, &id, &"x".repeat(65)).await,
        Code::InvalidArgument,
        "INVALID_PASSKEY_NAME",
    );
    assert_eq!(violated_fields(&status), ["name"]);
    assert_refused(
        rename(&app, &other, &id, "mine").await,
        Code::NotFound,
        "PASSKEY_NOT_FOUND",
    );
    assert_refused(
        rename(&app, &account.token, "not-a-uuid", "x").await,
        Code::NotFound,
        "PASSKEY_NOT_FOUND",
    );
    assert_refused(
        remove(&app, &other, &id).await,
        Code::NotFound,
        "PASSKEY_NOT_FOUND",
    );
    assert_eq!(list(&app, &other).await.expect("listed"), []);

    // A passkey is a second factor: the password session alone may not
    // remove it, a recent passkey sign-in may.
    assert_refused(
        remove(&app, &account.token, &id).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    let with_passkey = sign_in(&app, &mut account).await;
    remove(&app, &with_passkey.access_token, &id)
        .await
        .expect("removed");

    assert_eq!(list(&app, &account.token).await.expect("listed"), []);
    assert_refused(
        remove(&app, &account.token, &id).await,
        Code::NotFound,
        "PASSKEY_NOT_FOUND",
    );
    let started = start_login(&app, &account.username).await;
    let mut request: serde_json::Value = serde_json::from_str(&started.options_json).expect("JSON");
    request["allowCredentials"] =
        serde_json::json!([{ "type": "public-key", "id": account.credential_id }]);
    let assertion = assertion_json(
        &mut account.authenticator,
        &request.to_string(),
        ORIGIN,
        true,
    );
    assert_refused(
        finish_login(&app, &started.ceremony_id, &assertion).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
}

#[tokio::test]
async fn adding_a_passkey_needs_a_recent_authentication_and_removing_one_a_step_up() {
    let app = spawn_with(|settings| {
        settings.reauthentication_max_age = Duration::from_secs(1);
    })
    .await;
    let mut account = with_passkey(&app).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    assert_refused(
        app.client
            .clone()
            .start_passkey_registration(with_bearer(
                StartPasskeyRegistrationRequest {},
                &account.token,
            ))
            .await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    assert_refused(
        remove(&app, &account.token, &account.passkey.id).await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    // The passkey is the account's second factor: it joins the password.
    let challenge = app
        .client
        .clone()
        .start_passkey_reauthentication(with_bearer(
            StartPasskeyReauthenticationRequest {},
            &account.token,
        ))
        .await
        .expect("a challenge for the session")
        .into_inner();
    let assertion = assertion_json(
        &mut account.authenticator,
        &challenge.options_json,
        ORIGIN,
        true,
    );
    let renewed = app
        .client
        .clone()
        .reauthenticate(with_bearer(
            ReauthenticateRequest {
                password: PASSWORD.into(),
                second: Some(reauthenticate_request::Second::PasskeyCredentialJson(
                    assertion,
                )),
            },
            &account.token,
        ))
        .await
        .expect("reauthenticated")
        .into_inner();
    remove(&app, &renewed.access_token, &account.passkey.id)
        .await
        .expect("removed after the step-up");
}

#[tokio::test]
async fn a_ceremony_is_finished_once_and_only_by_its_own_kind() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let started = start_login(&app, &account.username).await;
    let assertion = assertion_json(
        &mut account.authenticator,
        &started.options_json,
        ORIGIN,
        true,
    );
    finish_login(&app, &started.ceremony_id, &assertion)
        .await
        .expect("the first finish signs in");

    assert_refused(
        finish_login(&app, &started.ceremony_id, &assertion).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
    let registration = app
        .client
        .clone()
        .start_passkey_registration(with_bearer(
            StartPasskeyRegistrationRequest {},
            &account.token,
        ))
        .await
        .expect("registration starts")
        .into_inner();
    assert_refused(
        finish_login(&app, &registration.ceremony_id, &assertion).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
    assert_refused(
        finish_login(&app, "not-a-ceremony", &assertion).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
}

#[tokio::test]
async fn of_racing_finishes_of_one_ceremony_exactly_one_signs_in() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let started = start_login(&app, &account.username).await;
    let assertion = assertion_json(
        &mut account.authenticator,
        &started.options_json,
        ORIGIN,
        true,
    );
    let finishes = (0..10).map(|_| finish_login(&app, &started.ceremony_id, &assertion));
    let outcomes = futures::future::join_all(finishes).await;
    let signed_in = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(signed_in, 1, "{outcomes:?}");
    for refused in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        assert!(
            matches!(
                refused.code(),
                Code::FailedPrecondition | Code::Unauthenticated
            ),
            "{refused:?}"
        );
    }
    let sessions = app
        .client
        .clone()
        .list_sessions(with_bearer(
            authd::grpc::pb::ListSessionsRequest {},
            &account.token,
        ))
        .await
        .expect("sessions")
        .into_inner()
        .sessions;
    assert_eq!(
        sessions.len(),
        2,
        "the registration's session and one sign-in: {sessions:?}"
    );
}

#[tokio::test]
async fn an_assertion_for_another_ceremonys_challenge_or_from_another_origin_is_refused() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let first = start_login(&app, &account.username).await;
    let second = start_login(&app, &account.username).await;
    let for_first = assertion_json(
        &mut account.authenticator,
        &first.options_json,
        ORIGIN,
        true,
    );
    assert_refused(
        finish_login(&app, &second.ceremony_id, &for_first).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );

    let third = start_login(&app, &account.username).await;
    let elsewhere = assertion_json(
        &mut account.authenticator,
        &third.options_json,
        "http://localhost:9090",
        true,
    );
    assert_refused(
        finish_login(&app, &third.ceremony_id, &elsewhere).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
    assert_refused(
        finish_login(&app, &first.ceremony_id, "{not json").await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
}

/// A right, verified assertion on `started` is refused: its ceremony was
/// spent.
async fn assert_ceremony_spent(
    app: &TestApp,
    account: &mut WithPasskey,
    started: &StartPasskeyLoginResponse,
) {
    let verified = assertion_json(
        &mut account.authenticator,
        &started.options_json,
        ORIGIN,
        true,
    );
    assert_refused(
        finish_login(app, &started.ceremony_id, &verified).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
}

#[tokio::test]
async fn a_sign_in_without_user_verification_is_refused_and_spends_its_ceremony() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let started = start_login(&app, &account.username).await;
    let assertion = assertion_json(
        &mut account.authenticator,
        &started.options_json,
        ORIGIN,
        false,
    );
    assert_refused(
        finish_login(&app, &started.ceremony_id, &assertion).await,
        Code::Unauthenticated,
        "USER_VERIFICATION_REQUIRED",
    );
    // A ceremony answers one assertion, refused or not.
    assert_ceremony_spent(&app, &mut account, &started).await;
}

#[tokio::test]
async fn an_answer_that_is_not_an_assertion_spends_its_ceremony_and_names_an_unknown_one() {
    let app = spawn().await;
    let mut account = with_passkey(&app).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_refused(
        finish_login(&app, &unknown, "{not an assertion").await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
    let started = start_login(&app, &account.username).await;
    assert_refused(
        finish_login(&app, &started.ceremony_id, "{not an assertion").await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
    assert_ceremony_spent(&app, &mut account, &started).await;
}

#[tokio::test]
async fn the_passkey_rpcs_of_an_account_need_its_token() {
    let app = spawn().await;
    let mut client = app.client.clone();
    fn missing<T: std::fmt::Debug>(outcome: Result<T, Status>) {
        assert_refused(outcome, Code::Unauthenticated, "MISSING_TOKEN");
    }
    missing(
        client
            .start_passkey_registration(Request::new(StartPasskeyRegistrationRequest {}))
            .await,
    );
    missing(
        client
            .finish_passkey_registration(Request::new(FinishPasskeyRegistrationRequest::default()))
            .await,
    );
    missing(
        client
            .list_passkeys(Request::new(ListPasskeysRequest {}))
            .await,
    );
    missing(
        client
            .rename_passkey(Request::new(RenamePasskeyRequest::default()))
            .await,
    );
    missing(
        client
            .remove_passkey(Request::new(RemovePasskeyRequest::default()))
            .await,
    );
}

#[tokio::test]
async fn a_ceremony_started_on_one_instance_finishes_on_another() {
    let app = spawn().await;
    let beside = app.spawn_beside().await;
    let username = unique_username();
    let token = app.registered_token(&username).await;
    let mut authenticator = authenticator();
    let started = app
        .client
        .clone()
        .start_passkey_registration(with_bearer(StartPasskeyRegistrationRequest {}, &token))
        .await
        .expect("registration starts")
        .into_inner();
    let credential = register_json(&mut authenticator, &started.options_json, ORIGIN);
    beside
        .client
        .clone()
        .finish_passkey_registration(with_bearer(
            FinishPasskeyRegistrationRequest {
                ceremony_id: started.ceremony_id,
                credential_json: credential,
                name: String::new(),
            },
            &token,
        ))
        .await
        .expect("registered on the other instance");

    let login = start_login(&beside, &username).await;
    let assertion = assertion_json(&mut authenticator, &login.options_json, ORIGIN, true);
    let session = finish_login(&app, &login.ceremony_id, &assertion)
        .await
        .expect("signed in on the first instance");
    beside
        .verify(&session.access_token)
        .await
        .expect("either instance verifies it");
}

#[tokio::test]
async fn a_ceremony_expires_and_an_assertion_replayed_on_a_new_one_is_refused() {
    let app = spawn_with(|settings| {
        settings.passkey_ceremony_lifetime = Duration::from_secs(1);
    })
    .await;
    let mut account = with_passkey(&app).await;
    let started = start_login(&app, &account.username).await;
    let late = assertion_json(
        &mut account.authenticator,
        &started.options_json,
        ORIGIN,
        true,
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_refused(
        finish_login(&app, &started.ceremony_id, &late).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );

    let used = start_login(&app, &account.username).await;
    let assertion = assertion_json(&mut account.authenticator, &used.options_json, ORIGIN, true);
    finish_login(&app, &used.ceremony_id, &assertion)
        .await
        .expect("signs in");
    let fresh = start_login(&app, &account.username).await;
    assert_refused(
        finish_login(&app, &fresh.ceremony_id, &assertion).await,
        Code::Unauthenticated,
        "PASSKEY_VERIFICATION_FAILED",
    );
}

// The REST twins: the same flows, as a page would call them.

/// The JSON body of a REST answer that must have `status`.
pub(crate) async fn json_of(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status);
    response.json().await.expect("JSON body")
}

/// The access token of a fresh REST login.
async fn rest_logged_in(app: &TestApp, username: &str) -> String {
    let registered = app.rest_register(username, PASSWORD).await;
    assert_eq!(registered.status(), 201);
    let login = json_of(app.rest_login(username, PASSWORD).await, 200).await;
    login["access_token"].as_str().expect("token").to_owned()
}

/// Registers a passkey of `authenticator` over REST: the passkey body, the
/// credential id (base64url) and the account's user handle.
async fn rest_register_passkey(
    app: &TestApp,
    token: &str,
    authenticator: &mut SoftPasskey,
    name: &str,
) -> (serde_json::Value, String, String) {
    let started = app
        .post("/user/passkeys/registration")
        .bearer_auth(token)
        .send()
        .await
        .expect("REST request");
    let started = json_of(started, 200).await;
    let options_json = started["options_json"].as_str().expect("options");
    let options: serde_json::Value = serde_json::from_str(options_json).expect("JSON");
    let user_handle = options["user"]["id"].as_str().expect("handle").to_owned();
    let credential = register_json(authenticator, options_json, ORIGIN);
    let credential_id = serde_json::from_str::<serde_json::Value>(&credential).expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let finished = app
        .post("/user/passkeys")
        .bearer_auth(token)
        .json(&serde_json::json!({
            "ceremony_id": started["ceremony_id"],
            "credential_json": credential,
            "name": name,
        }))
        .send()
        .await
        .expect("REST request");
    (json_of(finished, 201).await, credential_id, user_handle)
}

async fn rest_passkeys(app: &TestApp, token: &str) -> Vec<serde_json::Value> {
    let listed = app
        .get("/user/passkeys")
        .bearer_auth(token)
        .send()
        .await
        .expect("REST request");
    json_of(listed, 200).await["passkeys"]
        .as_array()
        .expect("passkeys")
        .clone()
}

/// `POST /login/passkey/start` with `body`: the ceremony id and options.
async fn rest_start_login(app: &TestApp, body: serde_json::Value) -> (String, String) {
    let started = json_of(app.post_json("/login/passkey/start", body).await, 200).await;
    (
        started["ceremony_id"].as_str().expect("id").to_owned(),
        started["options_json"]
            .as_str()
            .expect("options")
            .to_owned(),
    )
}

async fn rest_finish_login(
    app: &TestApp,
    ceremony_id: &str,
    credential_json: &str,
) -> reqwest::Response {
    app.post_json(
        "/login/passkey",
        serde_json::json!({"ceremony_id": ceremony_id, "credential_json": credential_json}),
    )
    .await
}

/// A REST sign-in's answer: 200, both cookies, a multi-factor session.
async fn assert_rest_signed_in(app: &TestApp, response: reqwest::Response, username: &str) {
    assert_eq!(response.status(), 200);
    let cookies = response.headers().get_all("set-cookie").iter().count();
    assert_eq!(cookies, 2, "the access and refresh cookies");
    let session: serde_json::Value = response.json().await.expect("JSON body");
    assert!(session["refresh_token"].is_string(), "{session}");
    let me = app
        .get("/user/me")
        .bearer_auth(session["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("REST request");
    let me = json_of(me, 200).await;
    assert_eq!(me["user"]["username"], username);
    assert_eq!(me["amr"], serde_json::json!(["hwk", "user", "mfa"]));
    assert_eq!(me["assurance_level"], 2);
}

#[tokio::test]
async fn over_rest_a_passkey_is_registered_listed_renamed_signs_in_both_ways_and_is_removed() {
    let app = spawn().await;
    let username = unique_username();
    let token = rest_logged_in(&app, &username).await;
    let mut authenticator = authenticator();

    let (passkey, credential_id, user_handle) =
        rest_register_passkey(&app, &token, &mut authenticator, " laptop ").await;
    assert_eq!(passkey["name"], "laptop");
    assert!(passkey.get("last_used_at").is_none(), "{passkey}");
    let id = passkey["id"].as_str().expect("id").to_owned();
    assert_eq!(rest_passkeys(&app, &token).await, vec![passkey.clone()]);

    let renamed = app
        .http
        .patch(format!("{}/user/passkeys/{id}", app.base_url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "phone"}))
        .send()
        .await
        .expect("REST request");
    assert_eq!(json_of(renamed, 200).await, serde_json::json!({}));
    assert_eq!(rest_passkeys(&app, &token).await[0]["name"], "phone");

    let (ceremony_id, options_json) =
        rest_start_login(&app, serde_json::json!({"username": username})).await;
    let assertion = assertion_json(&mut authenticator, &options_json, ORIGIN, true);
    let signed_in = rest_finish_login(&app, &ceremony_id, &assertion).await;
    assert_rest_signed_in(&app, signed_in, &username).await;
    assert!(rest_passkeys(&app, &token).await[0]["last_used_at"].is_string());

    let (ceremony_id, options_json) = rest_start_login(&app, serde_json::json!({})).await;
    let assertion = discoverable_assertion(
        &mut authenticator,
        &options_json,
        &credential_id,
        &user_handle,
    );
    let signed_in = rest_finish_login(&app, &ceremony_id, &assertion).await;
    assert_rest_signed_in(&app, signed_in, &username).await;

    // The step-up's second factor is the passkey itself.
    let challenge = app
        .post("/user/reauthenticate/passkey")
        .bearer_auth(&token)
        .send()
        .await
        .expect("REST request");
    let challenge = json_of(challenge, 200).await;
    let assertion = assertion_json(
        &mut authenticator,
        challenge["options_json"].as_str().expect("options"),
        ORIGIN,
        true,
    );
    let removed = app
        .http
        .delete(format!("{}/user/passkeys/{id}", app.base_url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"passkey_credential_json": assertion}))
        .send()
        .await
        .expect("REST request");
    assert_eq!(json_of(removed, 200).await, serde_json::json!({}));
    assert!(rest_passkeys(&app, &token).await.is_empty());
    let (ceremony_id, options_json) = rest_start_login(&app, serde_json::json!({})).await;
    let assertion = discoverable_assertion(
        &mut authenticator,
        &options_json,
        &credential_id,
        &user_handle,
    );
    let (status, reason, _) =
        problem(rest_finish_login(&app, &ceremony_id, &assertion).await).await;
    assert_eq!(
        (status, reason.as_str()),
        (401, "PASSKEY_VERIFICATION_FAILED")
    );
}

/// `method` on `/user/passkeys/{id}` with a bearer token and `body`.
async fn rest_on_passkey(
    app: &TestApp,
    method: reqwest::Method,
    id: &str,
    token: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    app.http
        .request(method, format!("{}/user/passkeys/{id}", app.base_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("REST request")
}

#[tokio::test]
async fn over_rest_each_passkey_refusal_has_its_status_and_reason() {
    let app = spawn_with(|settings| {
        settings.reauthentication_max_age = Duration::from_secs(1);
    })
    .await;
    let username = unique_username();
    let token = rest_logged_in(&app, &username).await;
    let mut authenticator = authenticator();
    let (passkey, _, _) = rest_register_passkey(&app, &token, &mut authenticator, "").await;
    assert_eq!(passkey["name"], "Passkey");
    let id = passkey["id"].as_str().expect("id").to_owned();
    let mut refusals = Vec::new();

    let unauthenticated = app
        .get("/user/passkeys")
        .send()
        .await
        .expect("REST request");
    refusals.push(("no token", problem(unauthenticated).await));
    let finished = app
        .post("/user/passkeys")
        .bearer_auth(&token)
        .json(&serde_json::json!({"ceremony_id": "unknown", "credential_json": "{}"}))
        .send()
        .await
        .expect("REST request");
    refusals.push(("an unknown ceremony", problem(finished).await));
    let long_name = serde_json::json!({"name": "x".repeat(65)});
    let renamed = rest_on_passkey(&app, reqwest::Method::PATCH, &id, &token, long_name).await;
    refusals.push(("a long name", problem(renamed).await));
    let other = uuid::Uuid::now_v7().to_string();
    let renamed = rest_on_passkey(
        &app,
        reqwest::Method::PATCH,
        &other,
        &token,
        serde_json::json!({"name": "phone"}),
    )
    .await;
    refusals.push(("an unknown passkey", problem(renamed).await));
    let removed = rest_on_passkey(
        &app,
        reqwest::Method::DELETE,
        "%FF",
        &token,
        serde_json::json!({}),
    )
    .await;
    refusals.push(("an id that does not decode", problem(removed).await));
    let started = app
        .post_json("/login/passkey/start", serde_json::json!({"username": "a"}))
        .await;
    refusals.push(("no username", problem(started).await));
    let (ceremony_id, options_json) =
        rest_start_login(&app, serde_json::json!({"username": username})).await;
    let finished = rest_finish_login(&app, &ceremony_id, "{}").await;
    refusals.push(("an unreadable assertion", problem(finished).await));
    let (ceremony_id, _) = rest_start_login(&app, serde_json::json!({"username": username})).await;
    let assertion = assertion_json(&mut authenticator, &options_json, ORIGIN, true);
    let finished = rest_finish_login(&app, &ceremony_id, &assertion).await;
    refusals.push(("another ceremony's assertion", problem(finished).await));
    let (ceremony_id, options_json) =
        rest_start_login(&app, serde_json::json!({"username": username})).await;
    let assertion = assertion_json(&mut authenticator, &options_json, ORIGIN, false);
    let finished = rest_finish_login(&app, &ceremony_id, &assertion).await;
    refusals.push(("no user verification", problem(finished).await));
    let finished = rest_finish_login(&app, &ceremony_id, &assertion).await;
    refusals.push(("a finished ceremony", problem(finished).await));

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let started = app
        .post("/user/passkeys/registration")
        .bearer_auth(&token)
        .send()
        .await
        .expect("REST request");
    refusals.push(("a stale authentication adding", problem(started).await));
    let removed = app
        .http
        .delete(format!("{}/user/passkeys/{id}", app.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("REST request");
    refusals.push(("a stale authentication removing", problem(removed).await));

    let found: Vec<(&str, u16, &str)> = refusals
        .iter()
        .map(|(case, (status, reason, _))| (*case, *status, reason.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("no token", 401, "MISSING_TOKEN"),
            ("an unknown ceremony", 409, "PASSKEY_CEREMONY_INVALID"),
            ("a long name", 400, "INVALID_PASSKEY_NAME"),
            ("an unknown passkey", 404, "PASSKEY_NOT_FOUND"),
            ("an id that does not decode", 404, "PASSKEY_NOT_FOUND"),
            ("no username", 400, "INVALID_USERNAME"),
            (
                "an unreadable assertion",
                401,
                "PASSKEY_VERIFICATION_FAILED"
            ),
            (
                "another ceremony's assertion",
                401,
                "PASSKEY_VERIFICATION_FAILED"
            ),
            ("no user verification", 401, "USER_VERIFICATION_REQUIRED"),
            ("a finished ceremony", 409, "PASSKEY_CEREMONY_INVALID"),
            (
                "a stale authentication adding",
                401,
                "REAUTHENTICATION_REQUIRED"
            ),
            (
                "a stale authentication removing",
                401,
                "REAUTHENTICATION_REQUIRED"
            ),
        ]
    );
    assert_eq!(
        rest_passkeys(&app, &token).await.len(),
        1,
        "nothing removed"
    );
}

#[tokio::test]
async fn a_passkey_sign_ins_cookie_authenticates_and_adds_no_passkey_from_a_sibling_origin() {
    let app = spawn().await;
    let username = unique_username();
    let token = rest_logged_in(&app, &username).await;
    let mut authenticator = authenticator();
    rest_register_passkey(&app, &token, &mut authenticator, "laptop").await;
    let (ceremony_id, options_json) =
        rest_start_login(&app, serde_json::json!({"username": username})).await;
    let assertion = assertion_json(&mut authenticator, &options_json, ORIGIN, true);
    let signed_in = rest_finish_login(&app, &ceremony_id, &assertion).await;
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| {
            let value = value.to_str().expect("ASCII");
            value.split(';').next().expect("name=value").to_owned()
        })
        .collect::<Vec<_>>()
        .join("; ");

    let listed = app
        .get("/user/passkeys")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("REST request");
    assert_eq!(json_of(listed, 200).await["passkeys"][0]["name"], "laptop");
    let forged = app
        .post("/user/passkeys/registration")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-site")
        .send()
        .await
        .expect("REST request");
    let (status, reason, _) = problem(forged).await;
    assert_eq!((status, reason.as_str()), (403, "CROSS_ORIGIN_REQUEST"));
    let same_origin = app
        .post("/user/passkeys/registration")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("REST request");
    assert_eq!(same_origin.status(), 200);
}
