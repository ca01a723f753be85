//! Accounts whose only credential is a passkey, on real sockets: signing
//! up with a passkey (StartPasskeySignup, RegisterWithPasskey and their
//! REST twins), signing in with it, password Login refused like a wrong
//! password, adding a password later, and the last passkey kept.

use std::time::Duration;

use authd::grpc::pb::{
    ReauthenticateRequest, RegisterWithPasskeyRequest, RegisterWithPasskeyResponse,
    SetPasswordRequest, StartPasskeyRegistrationRequest, StartPasskeySignupRequest,
    StartPasskeySignupResponse,
};
use migrations::{Migrator, MigratorTrait as _};
use tonic::{Code, Status};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::CreationChallengeResponse;

use crate::helpers::{
    PASSWORD, TestApp, assert_refused, problem, unique_username, violated_fields, with_bearer,
};
use crate::passkeys::{
    ORIGIN, assertion_json, authenticator, discoverable_assertion, finish_login, json_of, list,
    remove, spawn, spawn_with, start_login,
};
use crate::users_cli::users;

async fn start_signup(app: &TestApp, username: &str) -> Result<StartPasskeySignupResponse, Status> {
    app.client
        .clone()
        .start_passkey_signup(StartPasskeySignupRequest {
            username: username.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// What a browser answers to sign-up options. SoftPasskey keeps no
/// resident keys, so it is told not to be asked for one (a platform
/// authenticator keeps it); everything it signs is as a browser's.
fn signup_credential(authenticator: &mut SoftPasskey, options_json: &str) -> String {
    let mut options: serde_json::Value = serde_json::from_str(options_json).expect("options JSON");
    options["authenticatorSelection"]["requireResidentKey"] = false.into();
    options["authenticatorSelection"]["residentKey"] = "discouraged".into();
    let options: CreationChallengeResponse =
        serde_json::from_value(serde_json::json!({ "publicKey": options })).expect("options");
    let credential = authenticator
        .do_registration(Url::parse(ORIGIN).expect("origin"), options)
        .expect("the authenticator registers");
    serde_json::to_string(&credential).expect("credential JSON")
}

async fn register_with_passkey(
    app: &TestApp,
    ceremony_id: &str,
    credential_json: &str,
) -> Result<RegisterWithPasskeyResponse, Status> {
    app.client
        .clone()
        .register_with_passkey(RegisterWithPasskeyRequest {
            ceremony_id: ceremony_id.into(),
            credential_json: credential_json.into(),
            name: "phone".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// An account signed up with a passkey alone.
struct PasskeyOnly {
    username: String,
    authenticator: SoftPasskey,
    session: RegisterWithPasskeyResponse,
    /// base64url, as the browser names them.
    credential_id: String,
    user_handle: String,
}

async fn signed_up(app: &TestApp) -> PasskeyOnly {
    let username = unique_username();
    let mut authenticator = authenticator();
    let started = start_signup(app, &username).await.expect("sign-up starts");
    let options: serde_json::Value = serde_json::from_str(&started.options_json).expect("JSON");
    let credential = signup_credential(&mut authenticator, &started.options_json);
    let session = register_with_passkey(app, &started.ceremony_id, &credential)
        .await
        .expect("signed up");
    let credential: serde_json::Value = serde_json::from_str(&credential).expect("JSON");
    PasskeyOnly {
        username,
        authenticator,
        session,
        credential_id: credential["id"].as_str().expect("id").to_owned(),
        user_handle: options["user"]["id"].as_str().expect("handle").to_owned(),
    }
}

async fn set_password(app: &TestApp, token: &str, password: &str) -> Result<(), Status> {
    app.client
        .clone()
        .set_password(with_bearer(
            SetPasswordRequest {
                new_password: password.into(),
            },
            token,
        ))
        .await
        .map(drop)
}

/// How many password hashes the process has computed (verified or made),
/// as its Prometheus scrape counts them.
async fn hashes_computed(app: &TestApp) -> u64 {
    let scrape = app
        .get("/metrics")
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    scrape
        .lines()
        .find_map(|line| line.strip_prefix("authd_password_hash_duration_seconds_count "))
        .map_or(0, |count| count.trim().parse().expect("a count"))
}

#[tokio::test]
async fn a_passkey_sign_up_asks_for_a_discoverable_verified_credential_and_starts_a_passkey_session()
 {
    let app = spawn().await;
    let username = unique_username();
    let started = start_signup(&app, &username).await.expect("sign-up starts");
    let options: serde_json::Value = serde_json::from_str(&started.options_json).expect("JSON");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["requireResidentKey"],
        true
    );
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["user"]["name"], username.as_str());

    let credential = signup_credential(&mut authenticator(), &started.options_json);
    let session = register_with_passkey(&app, &started.ceremony_id, &credential)
        .await
        .expect("signed up");

    assert_eq!(session.token_type, "Bearer");
    assert!(!session.refresh_token.is_empty());
    assert_eq!(session.user.expect("user").username, username);
    let verified = app.verify(&session.access_token).await.expect("verifies");
    assert_eq!(verified.amr, ["hwk", "user", "mfa"]);
    assert_eq!(verified.assurance_level, 2);
    assert_eq!(verified.session_id, session.session_id);
    let passkeys = list(&app, &session.access_token).await.expect("listed");
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].name, "phone");
}

#[tokio::test]
async fn a_passkey_only_account_signs_in_again_by_username_and_discoverably() {
    let app = spawn().await;
    let mut account = signed_up(&app).await;
    app.logout(&account.session.access_token)
        .await
        .expect("signed out");

    let started = start_login(&app, &account.username).await;
    let assertion = assertion_json(
        &mut account.authenticator,
        &started.options_json,
        ORIGIN,
        true,
    );
    let by_name = finish_login(&app, &started.ceremony_id, &assertion)
        .await
        .expect("signs in by username");
    let verified = app.verify(&by_name.access_token).await.expect("verifies");
    assert_eq!(verified.amr, ["hwk", "user", "mfa"]);

    let started = start_login(&app, "").await;
    let assertion = discoverable_assertion(
        &mut account.authenticator,
        &started.options_json,
        &account.credential_id,
        &account.user_handle,
    );
    let discovered = finish_login(&app, &started.ceremony_id, &assertion)
        .await
        .expect("signs in discoverably");
    assert_eq!(
        discovered.user.expect("user").username,
        account.username,
        "the user handle the sign-up gave names the account"
    );
}

#[tokio::test]
async fn password_login_for_a_passkey_only_account_is_refused_as_a_wrong_password() {
    let app = spawn().await;
    let account = signed_up(&app).await;
    let token = &account.session.access_token;
    let hashes_before = hashes_computed(&app).await;

    for password in [PASSWORD, ""] {
        let refused = app.login(&account.username, password).await;
        if password.is_empty() {
            assert_refused(refused, Code::InvalidArgument, "PASSWORD_REQUIRED");
        } else {
            assert_refused(refused, Code::Unauthenticated, "INVALID_CREDENTIALS");
        }
    }
    // The dummy hash an unknown name costs: nothing in the time tells a
    // passkey-only account from a wrong password.
    assert!(hashes_computed(&app).await > hashes_before);
    // The owner is told plainly what the account lacks.
    assert_refused(
        app.change_password(token, PASSWORD, "a brand new passphrase")
            .await,
        Code::FailedPrecondition,
        "PASSWORD_NOT_SET",
    );
    assert_refused(
        app.client
            .clone()
            .reauthenticate(with_bearer(
                ReauthenticateRequest {
                    password: PASSWORD.into(),
                    second: None,
                },
                token,
            ))
            .await,
        Code::FailedPrecondition,
        "PASSWORD_NOT_SET",
    );
    assert_refused(
        app.delete_account(token, PASSWORD).await,
        Code::FailedPrecondition,
        "PASSWORD_NOT_SET",
    );
}

#[tokio::test]
async fn of_two_sign_ups_racing_for_one_name_the_first_to_finish_has_it() {
    let app = spawn().await;
    let username = unique_username();
    let first = start_signup(&app, &username).await.expect("starts");
    let second = start_signup(&app, &username.to_uppercase())
        .await
        .expect("the name is free until a sign-up finishes");
    let first_credential = signup_credential(&mut authenticator(), &first.options_json);
    let second_credential = signup_credential(&mut authenticator(), &second.options_json);

    let (one, other) = tokio::join!(
        register_with_passkey(&app, &first.ceremony_id, &first_credential),
        register_with_passkey(&app, &second.ceremony_id, &second_credential),
    );

    let refused = match (one, other) {
        (Ok(_), Err(refused)) | (Err(refused), Ok(_)) => refused,
        outcomes => panic!("exactly one sign-up must win: {outcomes:?}"),
    };
    assert_refused(Err::<(), _>(refused), Code::AlreadyExists, "USERNAME_TAKEN");
    assert_refused(
        start_signup(&app, &username).await,
        Code::AlreadyExists,
        "USERNAME_TAKEN",
    );
    assert_refused(
        app.register(&username, PASSWORD).await,
        Code::AlreadyExists,
        "USERNAME_TAKEN",
    );
}

#[tokio::test]
async fn a_sign_up_follows_the_username_rules_of_register() {
    let app = spawn().await;
    let refused = assert_refused(
        start_signup(&app, "a b").await,
        Code::InvalidArgument,
        "INVALID_USERNAME",
    );
    assert_eq!(violated_fields(&refused), ["username"]);
}

#[tokio::test]
async fn a_sign_up_ceremony_is_finished_once_by_its_own_kind_and_on_any_instance() {
    let app = spawn().await;
    let beside = app.spawn_beside().await;
    let username = unique_username();
    let started = start_signup(&app, &username).await.expect("starts");
    let credential = signup_credential(&mut authenticator(), &started.options_json);

    let login = start_login(&app, &username).await;
    assert_refused(
        register_with_passkey(&app, &login.ceremony_id, &credential).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
    let session = register_with_passkey(&beside, &started.ceremony_id, &credential)
        .await
        .expect("finished on the other instance");
    app.verify(&session.access_token)
        .await
        .expect("either instance verifies it");
    assert_refused(
        register_with_passkey(&app, &started.ceremony_id, &credential).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
}

#[tokio::test]
async fn a_sign_up_ceremony_expires() {
    let app = spawn_with(|settings| {
        settings.passkey_ceremony_lifetime = Duration::from_secs(1);
    })
    .await;
    let username = unique_username();
    let started = start_signup(&app, &username).await.expect("starts");
    let credential = signup_credential(&mut authenticator(), &started.options_json);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    assert_refused(
        register_with_passkey(&app, &started.ceremony_id, &credential).await,
        Code::FailedPrecondition,
        "PASSKEY_CEREMONY_INVALID",
    );
    // Nothing was claimed: the name is still free.
    start_signup(&app, &username)
        .await
        .expect("the name is free");
}

#[tokio::test]
async fn a_sign_up_without_user_verification_creates_no_account() {
    let app = spawn().await;
    let username = unique_username();
    let started = start_signup(&app, &username).await.expect("starts");
    let mut options: serde_json::Value = serde_json::from_str(&started.options_json).expect("JSON");
    options["authenticatorSelection"]["userVerification"] = "discouraged".into();
    let credential = signup_credential(&mut authenticator(), &options.to_string());

    assert_refused(
        register_with_passkey(&app, &started.ceremony_id, &credential).await,
        Code::Unauthenticated,
        "USER_VERIFICATION_REQUIRED",
    );
    start_signup(&app, &username)
        .await
        .expect("the name is still free");
}

#[tokio::test]
async fn sign_ups_count_against_the_per_address_registration_limit() {
    let app = spawn_with(|settings| {
        settings.register_rate_per_address = "1/1h".parse().ok();
    })
    .await;
    start_signup(&app, &unique_username())
        .await
        .expect("the first starts");
    assert_refused(
        start_signup(&app, &unique_username()).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    assert_refused(
        app.register(&unique_username(), PASSWORD).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
}

#[tokio::test]
async fn a_passkey_only_account_sets_a_password_once_and_then_logs_in_with_it() {
    let app = spawn().await;
    let account = signed_up(&app).await;
    let token = &account.session.access_token;

    let refused = assert_refused(
        set_password(&app, token, "password1").await,
        Code::InvalidArgument,
        "PASSWORD_TOO_COMMON",
    );
    assert_eq!(violated_fields(&refused), ["new_password"]);
    set_password(&app, token, "a brand new passphrase")
        .await
        .expect("a recent passkey sign-in is a recent authentication");

    // Whether Login then asks for the passkey as a second factor is the
    // second factor's rule; either way the password is right.
    app.login(&account.username, "a brand new passphrase")
        .await
        .expect("the password logs in");
    assert_refused(
        app.login(&account.username, PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    assert_refused(
        set_password(&app, token, "another new passphrase").await,
        Code::FailedPrecondition,
        "PASSWORD_ALREADY_SET",
    );
    app.verify(token)
        .await
        .expect("setting a password ends no session");
}

#[tokio::test]
async fn an_account_with_a_password_cannot_set_one() {
    let app = spawn().await;
    let token = app.registered_token(&unique_username()).await;
    assert_refused(
        set_password(&app, &token, "a brand new passphrase").await,
        Code::FailedPrecondition,
        "PASSWORD_ALREADY_SET",
    );
}

#[tokio::test]
async fn setting_a_password_needs_a_recent_authentication() {
    let app = spawn_with(|settings| {
        settings.reauthentication_max_age = Duration::from_secs(1);
    })
    .await;
    let account = signed_up(&app).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    assert_refused(
        set_password(
            &app,
            &account.session.access_token,
            "a brand new passphrase",
        )
        .await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    assert_refused(
        app.login(&account.username, "a brand new passphrase").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
}

#[tokio::test]
async fn the_last_passkey_of_an_account_without_a_password_is_kept() {
    let app = spawn().await;
    let account = signed_up(&app).await;
    let token = &account.session.access_token;
    let first = list(&app, token).await.expect("listed").remove(0);

    assert_refused(
        remove(&app, token, &first.id).await,
        Code::FailedPrecondition,
        "LAST_SIGN_IN_METHOD",
    );
    assert_eq!(
        list(&app, token).await.expect("listed"),
        std::slice::from_ref(&first)
    );

    // With a second passkey, either goes, and the other is then the last.
    let started = app
        .client
        .clone()
        .start_passkey_registration(with_bearer(StartPasskeyRegistrationRequest {}, token))
        .await
        .expect("registration starts")
        .into_inner();
    let credential = signup_credential(&mut authenticator(), &started.options_json);
    app.client
        .clone()
        .finish_passkey_registration(with_bearer(
            authd::grpc::pb::FinishPasskeyRegistrationRequest {
                ceremony_id: started.ceremony_id,
                credential_json: credential,
                name: "laptop".into(),
            },
            token,
        ))
        .await
        .expect("a second passkey");
    remove(&app, token, &first.id)
        .await
        .expect("not the last one");
    let second = list(&app, token).await.expect("listed").remove(0);
    assert_refused(
        remove(&app, token, &second.id).await,
        Code::FailedPrecondition,
        "LAST_SIGN_IN_METHOD",
    );

    // With a password, the last passkey may go.
    set_password(&app, token, "a brand new passphrase")
        .await
        .expect("password set");
    remove(&app, token, &second.id)
        .await
        .expect("the password is a way in");
    assert!(list(&app, token).await.expect("listed").is_empty());
}

#[tokio::test]
async fn racing_removals_of_the_last_two_passkeys_leave_one() {
    let app = spawn().await;
    let account = signed_up(&app).await;
    let token = &account.session.access_token;
    let started = app
        .client
        .clone()
        .start_passkey_registration(with_bearer(StartPasskeyRegistrationRequest {}, token))
        .await
        .expect("registration starts")
        .into_inner();
    let credential = signup_credential(&mut authenticator(), &started.options_json);
    app.client
        .clone()
        .finish_passkey_registration(with_bearer(
            authd::grpc::pb::FinishPasskeyRegistrationRequest {
                ceremony_id: started.ceremony_id,
                credential_json: credential,
                name: String::new(),
            },
            token,
        ))
        .await
        .expect("a second passkey");
    let passkeys = list(&app, token).await.expect("listed");

    let (one, other) = tokio::join!(
        remove(&app, token, &passkeys[0].id),
        remove(&app, token, &passkeys[1].id),
    );

    let refused = match (one, other) {
        (Ok(()), Err(refused)) | (Err(refused), Ok(())) => refused,
        outcomes => panic!("exactly one removal must win: {outcomes:?}"),
    };
    assert_refused(
        Err::<(), _>(refused),
        Code::FailedPrecondition,
        "LAST_SIGN_IN_METHOD",
    );
    assert_eq!(list(&app, token).await.expect("listed").len(), 1);
}

#[tokio::test]
async fn operators_see_that_an_account_has_no_password_and_cannot_strip_its_passkeys() {
    let app = spawn().await;
    let account = signed_up(&app).await;

    let shown = users(&app, &["show", &account.username])
        .await
        .expect("shown");
    assert!(shown.contains("password\tnone"), "{shown}");
    let refused = users(&app, &["mfa-reset", &account.username])
        .await
        .expect_err("refused");
    assert!(refused.contains("has no password"), "{refused}");
    assert_eq!(
        list(&app, &account.session.access_token)
            .await
            .expect("listed")
            .len(),
        1
    );

    let with_password = unique_username();
    app.register(&with_password, PASSWORD)
        .await
        .expect("registered");
    let shown = users(&app, &["show", &with_password]).await.expect("shown");
    assert!(shown.contains("password\tset"), "{shown}");
}

#[tokio::test]
async fn over_rest_a_passkey_sign_up_sets_the_cookies_and_a_password_is_set_later() {
    let app = spawn().await;
    let username = unique_username();
    let started = json_of(
        app.post_json(
            "/user/register/passkey/start",
            serde_json::json!({ "username": username }),
        )
        .await,
        200,
    )
    .await;
    let credential = signup_credential(
        &mut authenticator(),
        started["options_json"].as_str().expect("options"),
    );

    let response = app
        .post_json(
            "/user/register/passkey",
            serde_json::json!({
                "ceremony_id": started["ceremony_id"],
                "credential_json": credential,
            }),
        )
        .await;
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .collect();
    let signed_up = json_of(response, 201).await;
    assert_eq!(signed_up["user"]["username"], username.as_str());
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies.iter().all(|cookie| cookie.contains("HttpOnly")));
    let token = signed_up["access_token"].as_str().expect("token");

    let (status, reason, _) = problem(
        app.post_json(
            "/user/register/passkey/start",
            serde_json::json!({ "username": username }),
        )
        .await,
    )
    .await;
    assert_eq!((status, reason.as_str()), (409, "USERNAME_TAKEN"));
    let (status, reason, _) = problem(app.rest_login(&username, PASSWORD).await).await;
    assert_eq!((status, reason.as_str()), (401, "INVALID_CREDENTIALS"));

    let set = app
        .http
        .put(format!("{}/user/password", app.base_url))
        .bearer_auth(token)
        .json(&serde_json::json!({ "new_password": "a brand new passphrase" }))
        .send()
        .await
        .expect("REST request");
    assert_eq!(set.status(), 200);
    assert_eq!(
        app.rest_login(&username, "a brand new passphrase")
            .await
            .status(),
        200
    );
    let again = app
        .http
        .put(format!("{}/user/password", app.base_url))
        .bearer_auth(token)
        .json(&serde_json::json!({ "new_password": "another new passphrase" }))
        .send()
        .await
        .expect("REST request");
    let (status, reason, _) = problem(again).await;
    assert_eq!((status, reason.as_str()), (409, "PASSWORD_ALREADY_SET"));
}

/// How many migrations, newest first, undo the one that made passwords
/// optional.
fn back_to_required_passwords() -> u32 {
    let position = Migrator::migrations()
        .iter()
        .rev()
        .position(|migration| migration.name() == "m20261207_000011_make_password_optional")
        .expect("the migration exists");
    u32::try_from(position + 1).expect("few migrations")
}

#[tokio::test]
async fn accounts_keep_their_passwords_across_the_migration_to_optional_ones_and_back() {
    let mut app = spawn().await;
    let username = unique_username();
    app.register(&username, PASSWORD).await.expect("registered");
    app.stop().await;
    let connection = app.database.connect().await;
    // Back to before the migration that made passwords optional, and the
    // ones after it.
    let steps = back_to_required_passwords();
    Migrator::down(&connection, Some(steps))
        .await
        .expect("back to required passwords while every account has one");

    let app = app.restart().await;

    app.login(&username, PASSWORD)
        .await
        .expect("the password survived both ways");
    let mut account = signed_up(&app).await;
    let refused = Migrator::down(&connection, Some(steps))
        .await
        .expect_err("an account without a password has no place in the older schema");
    assert!(
        refused.to_string().contains("have no password"),
        "{refused}"
    );
    app.login(&username, PASSWORD)
        .await
        .expect("nothing changed");
    let started = start_login(&app, &account.username).await;
    let assertion = assertion_json(
        &mut account.authenticator,
        &started.options_json,
        ORIGIN,
        true,
    );
    finish_login(&app, &started.ceremony_id, &assertion)
        .await
        .expect("the passkey-only account is intact");
}
