//! TOTP and recovery codes over real sockets: enrollment, a Login that
//! needs a second factor, each code accepted once (also when racing, on
//! one instance and on two), the ticket's limits, the account's budget of
//! wrong codes, and the claims a two-factor session carries. Codes are
//! computed here with totp-rs from the secret authd handed out, as an
//! authenticator app would.

use std::time::Duration;

use authd::grpc::pb::{
    CompleteLoginRequest, CompleteLoginResponse, ConfirmTotpEnrollmentRequest, GetMfaStatusRequest,
    LoginResponse, StartTotpEnrollmentRequest, complete_login_request::Proof,
};
use futures::future::join_all;
use tonic::{Code, Status};
use totp_rs::{Algorithm, Builder, Secret};

use crate::helpers::{
    PASSWORD, TestApp, assert_refused, problem, reason, unique_username, with_bearer,
};

/// An account with TOTP enabled, and what its owner's app knows.
pub struct Enrolled {
    pub username: String,
    /// The token of the session that enrolled it.
    pub token: String,
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

/// The code for the step `offset` steps from the one of Unix time `now`.
pub fn code(secret: &str, now: u64, offset: i64) -> String {
    let secret = Secret::try_from_base32(secret).expect("base32 secret");
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(secret)
        .build()
        .expect("RFC 6238 parameters");
    let at = now.saturating_add_signed(offset * 30);
    totp.generate(at).to_string()
}

/// Now, at least five seconds before the current step ends, so that the
/// steps a test computes codes for stay where it expects them.
pub async fn steady_now() -> u64 {
    loop {
        let now = chrono::Utc::now().timestamp().unsigned_abs();
        if 30 - now % 30 >= 5 {
            return now;
        }
        tokio::time::sleep(Duration::from_secs(30 - now % 30)).await;
    }
}

/// Registers an account and enables TOTP on it, confirming with the code
/// of the step `confirm_offset` away from `now`'s.
pub async fn enroll_at(app: &TestApp, now: u64, confirm_offset: i64) -> Enrolled {
    let username = unique_username();
    let token = app.registered_token(&username).await;
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
                code: code(&started.secret, now, confirm_offset),
            },
            &token,
        ))
        .await
        .expect("enrollment confirmed")
        .into_inner();
    Enrolled {
        username,
        token,
        secret: started.secret,
        recovery_codes: confirmed.recovery_codes,
    }
}

/// A Login's ticket, checking that it gave no token.
pub async fn ticket(app: &TestApp, username: &str) -> String {
    let response = app
        .login(username, PASSWORD)
        .await
        .expect("password accepted");
    assert_no_tokens(&response);
    response
        .mfa_required
        .expect("a second factor is required")
        .ticket
}

/// Two access tokens of one account with TOTP: its enrolling session's,
/// which passed the password alone (`aal1`), and a session's that passed a
/// TOTP code too (`aal2`).
pub async fn one_and_two_factor_tokens(app: &TestApp) -> (String, String) {
    let now = steady_now().await;
    // Confirmed with the previous step's code, so the current one logs in.
    let account = enroll_at(app, now, -1).await;
    let ticket = ticket(app, &account.username).await;
    let session = complete(app, &ticket, Proof::TotpCode(code(&account.secret, now, 0)))
        .await
        .expect("the second factor is accepted");
    (account.token, session.access_token)
}

fn assert_no_tokens(response: &LoginResponse) {
    assert!(response.access_token.is_empty(), "{response:?}");
    assert!(response.refresh_token.is_empty(), "{response:?}");
    assert!(response.session_id.is_empty(), "{response:?}");
    assert!(response.user.is_none(), "{response:?}");
}

async fn complete(
    app: &TestApp,
    ticket: &str,
    proof: Proof,
) -> Result<CompleteLoginResponse, Status> {
    app.client
        .clone()
        .complete_login(CompleteLoginRequest {
            ticket: ticket.to_owned(),
            proof: Some(proof),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn enrolling_totp_makes_login_ask_for_a_code_and_the_session_count_both_factors() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    let token = app.registered_token(&username).await;
    let started = app
        .client
        .clone()
        .start_totp_enrollment(with_bearer(StartTotpEnrollmentRequest {}, &token))
        .await
        .expect("enrollment starts")
        .into_inner();
    assert_eq!(started.secret.len(), 32, "160 bits in base32");
    assert_eq!(
        started.otpauth_uri,
        format!(
            "otpauth://totp/authd:{username}?secret={}&issuer=authd",
            started.secret
        )
    );
    assert!(started.qr_svg.contains("<svg"), "{}", started.qr_svg);

    // A wrong code leaves the pending secret in place.
    let now = steady_now().await;
    let wrong = format!(
        "{:06}",
        (code(&started.secret, now, 0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    assert_refused(
        app.client
            .clone()
            .confirm_totp_enrollment(with_bearer(
                ConfirmTotpEnrollmentRequest { code: wrong },
                &token,
            ))
            .await,
        Code::InvalidArgument,
        "MFA_CODE_INVALID",
    );
    let status = app
        .client
        .clone()
        .get_mfa_status(with_bearer(GetMfaStatusRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(status.totp_pending && !status.totp_enabled, "{status:?}");
    // Nothing is asked at login while the enrollment is pending.
    let pending_login = app.login(&username, PASSWORD).await.unwrap();
    assert!(pending_login.mfa_required.is_none());
    assert!(!pending_login.access_token.is_empty());

    let confirmed = app
        .client
        .clone()
        .confirm_totp_enrollment(with_bearer(
            ConfirmTotpEnrollmentRequest {
                code: code(&started.secret, now, 0),
            },
            &token,
        ))
        .await
        .expect("a right code confirms")
        .into_inner();
    assert_eq!(confirmed.recovery_codes.len(), 10);
    for recovery_code in &confirmed.recovery_codes {
        assert_eq!(recovery_code.len(), 17, "{recovery_code}");
        assert!(
            recovery_code
                .chars()
                .all(|c| c == '-' || "23456789ABCDEFGHJKLMNPQRSTUVWXYZ".contains(c)),
            "{recovery_code}"
        );
    }
    let status = app
        .client
        .clone()
        .get_mfa_status(with_bearer(GetMfaStatusRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(status.totp_enabled && !status.totp_pending, "{status:?}");
    assert_eq!(status.recovery_codes_left, 10);
    // A second start is refused once TOTP is on.
    assert_refused(
        app.client
            .clone()
            .start_totp_enrollment(with_bearer(StartTotpEnrollmentRequest {}, &token))
            .await,
        Code::FailedPrecondition,
        "TOTP_ALREADY_ENABLED",
    );

    let response = app.login(&username, PASSWORD).await.unwrap();
    assert_no_tokens(&response);
    let required = response.mfa_required.expect("mfa_required");
    assert_eq!(required.methods, ["totp", "recovery_code"]);
    assert!(required.expires_in > 0 && required.expires_in <= 300);
    // The ticket is no bearer token.
    assert_refused(
        app.verify(&required.ticket).await,
        Code::Unauthenticated,
        "TOKEN_MALFORMED",
    );

    // The confirmation spent this step: the next one's code logs in.
    let session = complete(
        &app,
        &required.ticket,
        Proof::TotpCode(code(&started.secret, now, 1)),
    )
    .await
    .expect("the second factor is accepted");
    assert!(session.recovery_codes_left.is_none());
    let verified = app.verify(&session.access_token).await.unwrap();
    assert_eq!(verified.amr, ["pwd", "otp", "mfa"]);
    assert_eq!(verified.assurance_level, 2);
    let auth_time = verified.auth_time.expect("auth_time").seconds;
    assert!((auth_time - chrono::Utc::now().timestamp()).abs() <= 5);
    // A refresh keeps how and when the user authenticated.
    let refreshed = app.refresh(&session.refresh_token).await.unwrap();
    let verified = app.verify(&refreshed.access_token).await.unwrap();
    assert_eq!(verified.amr, ["pwd", "otp", "mfa"]);
    assert_eq!(verified.auth_time.unwrap().seconds, auth_time);
    // A password-only session says so.
    let other = app.registered_token(&unique_username()).await;
    let verified = app.verify(&other).await.unwrap();
    assert_eq!(verified.amr, ["pwd"]);
    assert_eq!(verified.assurance_level, 1);
}

#[tokio::test]
async fn codes_of_the_previous_and_next_step_are_accepted_and_two_steps_away_refused() {
    let app = TestApp::spawn().await;
    let now = steady_now().await;
    // Confirmed with the previous step's code.
    let account = enroll_at(&app, now, -1).await;
    for offset in [2, -2] {
        let ticket = ticket(&app, &account.username).await;
        assert_refused(
            complete(
                &app,
                &ticket,
                Proof::TotpCode(code(&account.secret, now, offset)),
            )
            .await,
            Code::InvalidArgument,
            "MFA_CODE_INVALID",
        );
    }
    let ticket = ticket(&app, &account.username).await;
    complete(
        &app,
        &ticket,
        Proof::TotpCode(code(&account.secret, now, 1)),
    )
    .await
    .expect("the next step's code is accepted");
    // Spent: neither it nor an earlier step's code works again.
    for offset in [1, 0] {
        let ticket = self::ticket(&app, &account.username).await;
        assert_refused(
            complete(
                &app,
                &ticket,
                Proof::TotpCode(code(&account.secret, now, offset)),
            )
            .await,
            Code::InvalidArgument,
            "MFA_CODE_INVALID",
        );
    }
}

/// Twenty Logins complete with one valid code at once; `apps` take turns.
async fn race_one_code(apps: &[&TestApp]) {
    let now = steady_now().await;
    let account = enroll_at(apps[0], now, -1).await;
    let tickets = join_all((0..20).map(|i| ticket(apps[i % apps.len()], &account.username))).await;
    let valid = code(&account.secret, now, 0);
    let outcomes =
        join_all(tickets.iter().enumerate().map(|(i, ticket)| {
            complete(apps[i % apps.len()], ticket, Proof::TotpCode(valid.clone()))
        }))
        .await;
    let sessions = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(sessions, 1, "{outcomes:?}");
    for refused in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        assert!(
            ["MFA_CODE_INVALID", "RATE_LIMITED"].contains(&reason(refused).as_str()),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn twenty_racing_logins_with_one_code_give_exactly_one_session() {
    let app = TestApp::spawn().await;
    race_one_code(&[&app]).await;
}

#[tokio::test]
async fn one_code_raced_over_two_instances_gives_exactly_one_session() {
    let first = TestApp::spawn().await;
    let second = first.spawn_beside().await;
    race_one_code(&[&first, &second]).await;
}

#[tokio::test]
async fn each_recovery_code_works_once_even_when_two_logins_race_with_it() {
    let app = TestApp::spawn().await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, 0).await;
    let first = &account.recovery_codes[0];
    let ticket = ticket(&app, &account.username).await;
    // As people type it: lower case, spaces for dashes.
    let typed = first.to_lowercase().replace('-', " ");
    let session = complete(&app, &ticket, Proof::RecoveryCode(typed))
        .await
        .expect("a recovery code is accepted");
    assert_eq!(session.recovery_codes_left, Some(9));
    let verified = app.verify(&session.access_token).await.unwrap();
    assert_eq!(verified.amr, ["pwd", "rc", "mfa"]);
    assert_eq!(verified.assurance_level, 2);

    let again = self::ticket(&app, &account.username).await;
    assert_refused(
        complete(&app, &again, Proof::RecoveryCode(first.clone())).await,
        Code::InvalidArgument,
        "MFA_CODE_INVALID",
    );

    let second = &account.recovery_codes[1];
    let tickets = join_all((0..2).map(|_| self::ticket(&app, &account.username))).await;
    let outcomes = join_all(
        tickets
            .iter()
            .map(|ticket| complete(&app, ticket, Proof::RecoveryCode(second.clone()))),
    )
    .await;
    assert_eq!(
        outcomes.iter().filter(|outcome| outcome.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let status = app
        .client
        .clone()
        .get_mfa_status(with_bearer(GetMfaStatusRequest {}, &account.token))
        .await;
    // Enrolling ended no session of its own caller.
    assert_eq!(status.unwrap().into_inner().recovery_codes_left, 8);
}

#[tokio::test]
async fn a_ticket_is_single_use_bounded_in_attempts_and_nothing_else_passes_for_one() {
    let app = TestApp::spawn().await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, -1).await;
    let right = || Proof::TotpCode(code(&account.secret, now, 0));

    let ticket = ticket(&app, &account.username).await;
    for _ in 0..5 {
        assert_refused(
            complete(&app, &ticket, Proof::TotpCode("000000".into())).await,
            Code::InvalidArgument,
            "MFA_CODE_INVALID",
        );
    }
    // Out of attempts: even the right code is refused with this ticket.
    assert_refused(
        complete(&app, &ticket, right()).await,
        Code::Unauthenticated,
        "MFA_TICKET_INVALID",
    );

    let refresh_token = app
        .login(&unique_username_registered(&app).await, PASSWORD)
        .await
        .unwrap()
        .refresh_token;
    for forged in [
        String::new(),
        "authd_mt_".to_owned(),
        format!("authd_mt_{}", "A".repeat(43)),
        refresh_token,
        account.token.clone(),
    ] {
        assert_refused(
            complete(&app, &forged, right()).await,
            Code::Unauthenticated,
            "MFA_TICKET_INVALID",
        );
    }

    let ticket = self::ticket(&app, &account.username).await;
    complete(&app, &ticket, right()).await.expect("right code");
    // Used: a second session cannot come of it, whatever the code.
    assert_refused(
        complete(
            &app,
            &ticket,
            Proof::RecoveryCode(account.recovery_codes[0].clone()),
        )
        .await,
        Code::Unauthenticated,
        "MFA_TICKET_INVALID",
    );
    // Neither or both proofs, and malformed codes, are refused before any
    // attempt is spent.
    let ticket = self::ticket(&app, &account.username).await;
    let status = app
        .client
        .clone()
        .complete_login(CompleteLoginRequest {
            ticket: ticket.clone(),
            proof: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "FIELD_REQUIRED");
    for malformed in ["12345", "1234567", "abcdef", ""] {
        assert_refused(
            complete(&app, &ticket, Proof::TotpCode(malformed.into())).await,
            Code::InvalidArgument,
            "MFA_CODE_INVALID",
        );
    }
    complete(
        &app,
        &ticket,
        Proof::RecoveryCode(account.recovery_codes[1].clone()),
    )
    .await
    .expect("the ticket still had its attempts");
}

async fn unique_username_registered(app: &TestApp) -> String {
    let username = unique_username();
    app.registered_token(&username).await;
    username
}

#[tokio::test]
async fn an_expired_ticket_is_refused() {
    let app =
        TestApp::spawn_with(|settings| settings.mfa_ticket_lifetime = Duration::from_secs(1)).await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, -1).await;
    let ticket = ticket(&app, &account.username).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_refused(
        complete(
            &app,
            &ticket,
            Proof::TotpCode(code(&account.secret, now, 0)),
        )
        .await,
        Code::Unauthenticated,
        "MFA_TICKET_INVALID",
    );
}

#[tokio::test]
async fn wrong_codes_share_one_budget_per_account_across_instances_and_a_right_code_refills_it() {
    let first = TestApp::spawn_with(|settings| {
        settings.second_factor_failures_per_account = Some("3/15m".parse().unwrap());
    })
    .await;
    let second = first.spawn_beside().await;
    let now = steady_now().await;
    let account = enroll_at(&first, now, -1).await;
    let wrong = || Proof::TotpCode("000000".into());

    // Two wrong (one per instance), then a right code: the budget refills.
    for app in [&first, &second] {
        let ticket = ticket(app, &account.username).await;
        assert_refused(
            complete(app, &ticket, wrong()).await,
            Code::InvalidArgument,
            "MFA_CODE_INVALID",
        );
    }
    let ticket = ticket(&second, &account.username).await;
    complete(
        &second,
        &ticket,
        Proof::RecoveryCode(account.recovery_codes[0].clone()),
    )
    .await
    .expect("within the budget");

    // Three wrong, spread over both instances and tickets: the budget is
    // spent, and even a right code is refused until it refills.
    for app in [&first, &second, &first] {
        let ticket = self::ticket(app, &account.username).await;
        assert_refused(
            complete(app, &ticket, wrong()).await,
            Code::InvalidArgument,
            "MFA_CODE_INVALID",
        );
    }
    let ticket = self::ticket(&second, &account.username).await;
    let status = assert_refused(
        complete(
            &second,
            &ticket,
            Proof::TotpCode(code(&account.secret, now, 0)),
        )
        .await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    let retry = tonic_types::StatusExt::get_details_retry_info(&status).expect("retry info");
    assert!(
        retry
            .retry_delay
            .is_some_and(|delay| delay > Duration::from_secs(60))
    );
    // Another account is not affected.
    let other = enroll_at(&first, now, 0).await;
    let ticket = self::ticket(&first, &other.username).await;
    complete(
        &first,
        &ticket,
        Proof::RecoveryCode(other.recovery_codes[0].clone()),
    )
    .await
    .expect("another account's budget is its own");
}

#[tokio::test]
async fn enrolling_needs_a_recent_authentication() {
    let app = TestApp::spawn_with(|settings| {
        settings.reauthentication_max_age = Duration::from_secs(1);
    })
    .await;
    let token = app.registered_token(&unique_username()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = assert_refused(
        app.client
            .clone()
            .start_totp_enrollment(with_bearer(StartTotpEnrollmentRequest {}, &token))
            .await,
        Code::Unauthenticated,
        "REAUTHENTICATION_REQUIRED",
    );
    let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
    assert_eq!(info.metadata.get("max_age").map(String::as_str), Some("1"));

    let response = app
        .post("/user/mfa/totp")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (status, problem_reason, body) = problem(response).await;
    assert_eq!(
        (status, problem_reason.as_str()),
        (401, "REAUTHENTICATION_REQUIRED")
    );
    assert_eq!(body["max_age"], 1);
    assert!(
        challenge.contains(r#"error="insufficient_user_authentication""#),
        "{challenge}"
    );
    assert!(challenge.contains("max_age=1"), "{challenge}");
}

#[tokio::test]
async fn enabling_totp_ends_every_other_session_of_the_account() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    let enrolling = app.registered_token(&username).await;
    let elsewhere = app.login(&username, PASSWORD).await.unwrap();
    let started = app
        .client
        .clone()
        .start_totp_enrollment(with_bearer(StartTotpEnrollmentRequest {}, &enrolling))
        .await
        .unwrap()
        .into_inner();
    let now = steady_now().await;
    app.client
        .clone()
        .confirm_totp_enrollment(with_bearer(
            ConfirmTotpEnrollmentRequest {
                code: code(&started.secret, now, 0),
            },
            &enrolling,
        ))
        .await
        .unwrap();
    assert_refused(
        app.verify(&elsewhere.access_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_refused(
        app.refresh(&elsewhere.refresh_token).await,
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    app.verify(&enrolling)
        .await
        .expect("the enrolling session goes on");
}

#[tokio::test]
async fn the_rest_twins_enroll_and_complete_a_login_with_cookies_only_at_the_end() {
    let app = TestApp::spawn().await;
    let username = unique_username();
    let token = app.registered_token(&username).await;
    let started: serde_json::Value = app
        .post("/user/mfa/totp")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = started["secret"].as_str().unwrap().to_owned();
    assert!(started["qr_svg"].as_str().unwrap().contains("<svg"));
    let now = steady_now().await;
    let confirmed = app
        .post("/user/mfa/totp/confirm")
        .bearer_auth(&token)
        .json(&serde_json::json!({"code": code(&secret, now, -1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let confirmed: serde_json::Value = confirmed.json().await.unwrap();
    assert_eq!(confirmed["recovery_codes"].as_array().unwrap().len(), 10);
    let status: serde_json::Value = app
        .get("/user/mfa")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        serde_json::json!({"totp_enabled": true, "recovery_codes_left": 10, "totp_pending": false})
    );

    let login = app.rest_login(&username, PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert!(
        login.headers().get("set-cookie").is_none(),
        "no cookie before the second factor"
    );
    let login: serde_json::Value = login.json().await.unwrap();
    assert!(login.get("access_token").is_none(), "{login}");
    let ticket = login["mfa_required"]["ticket"].as_str().unwrap().to_owned();

    let (status, problem_reason, _) = problem(
        app.post_json(
            "/login/mfa",
            serde_json::json!({"ticket": ticket, "totp_code": "000000"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, problem_reason.as_str()), (400, "MFA_CODE_INVALID"));
    let (status, problem_reason, _) = problem(
        app.post_json(
            "/login/mfa",
            serde_json::json!({"ticket": ticket, "totp_code": "123456", "recovery_code": "ABCDE-FGHJK-MNPQR"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, problem_reason.as_str()), (400, "FIELD_CONFLICT"));

    let completed = app
        .post_json(
            "/login/mfa",
            serde_json::json!({"ticket": ticket, "totp_code": code(&secret, now, 0)}),
        )
        .await;
    assert_eq!(completed.status(), 200);
    let cookies = completed.headers().get_all("set-cookie").iter().count();
    assert_eq!(cookies, 2, "the access and refresh cookies");
    let completed: serde_json::Value = completed.json().await.unwrap();
    let me: serde_json::Value = app
        .get("/user/me")
        .bearer_auth(completed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(me["assurance_level"], 2);
}

#[tokio::test]
async fn the_database_holds_no_totp_secret_in_clear() {
    let app = TestApp::spawn().await;
    let now = steady_now().await;
    let account = enroll_at(&app, now, 0).await;
    let raw = Secret::try_from_base32(&account.secret)
        .unwrap()
        .as_bytes()
        .to_vec();
    let connection = app.database.connect().await;
    use sea_orm::{ConnectionTrait, Statement};
    let rows = connection
        .query_all_raw(Statement::from_string(
            connection.get_database_backend(),
            "SELECT sealed_secret FROM totp_factors",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: Vec<u8> = rows[0].try_get("", "sealed_secret").unwrap();
    assert!(
        !stored
            .windows(raw.len())
            .any(|window| window == raw.as_slice()),
        "the secret is stored in clear"
    );
    let hashes = connection
        .query_all_raw(Statement::from_string(
            connection.get_database_backend(),
            "SELECT code_hash FROM recovery_codes",
        ))
        .await
        .unwrap();
    assert_eq!(hashes.len(), 10);
    for row in hashes {
        let hash: String = row.try_get("", "code_hash").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        for code in &account.recovery_codes {
            assert!(!hash.contains(&code.replace('-', "")), "{hash}");
        }
    }
}
