use std::time::{Duration, Instant};

use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{
    PASSWORD, TOKEN_LIFETIME, TestApp, assert_refused, cpu_heavy, default_argon2, unique_username,
    violated_fields,
};

/// authd as deployed, real argon2 costs included, except the per-address
/// registration budget: it exists to refuse one address's burst, and every
/// call here comes from one address.
async fn app_for_bursts() -> TestApp {
    TestApp::spawn_with(|settings| {
        default_argon2(settings);
        settings.register_rate_per_address = None;
    })
    .await
}

#[tokio::test]
async fn register_logs_the_new_user_in() {
    let app = TestApp::spawn().await;
    let username = unique_username();

    let registered = app.register(&username, PASSWORD).await.expect("registered");

    assert_eq!(registered.token_type, "Bearer");
    assert_eq!(u64::from(registered.expires_in), TOKEN_LIFETIME.as_secs());
    let user = registered.user.expect("user");
    assert_eq!(user.username, username);
    uuid::Uuid::parse_str(&user.id).expect("user id is a UUID");
    let verified = app
        .verify(&registered.access_token)
        .await
        .expect("token works");
    assert_eq!(verified.user, Some(user));
}

#[tokio::test]
async fn usernames_are_trimmed_and_normalized() {
    let app = TestApp::spawn().await;

    let registered = app
        .register("  Ｃａｒｏｌ ", PASSWORD)
        .await
        .expect("registered");

    assert_eq!(registered.user.expect("user").username, "Carol");
    app.login("carol", PASSWORD).await.expect("same account");
}

#[tokio::test]
async fn a_taken_username_is_refused_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.register("Dave", PASSWORD).await.expect("first");

    for variant in ["Dave", "dave", "DAVE", " dave "] {
        let status = assert_refused(
            app.register(variant, "another password").await,
            Code::AlreadyExists,
            "USERNAME_TAKEN",
        );
        assert_eq!(status.message(), "username is already taken");
    }
}

#[tokio::test]
async fn a_taken_name_is_refused_without_hashing() {
    let app = TestApp::spawn().await;
    app.register("Hugo", PASSWORD).await.expect("registered");
    // From now on every password hash is refused at admission.
    let app = app
        .restart_with(|settings| settings.hash_queue_timeout = Duration::ZERO)
        .await;
    assert_refused(
        app.register(&unique_username(), PASSWORD).await,
        Code::ResourceExhausted,
        "SERVER_BUSY",
    );

    for variant in ["Hugo", "hugo"] {
        assert_refused(
            app.register(variant, PASSWORD).await,
            Code::AlreadyExists,
            "USERNAME_TAKEN",
        );
    }
}

#[tokio::test]
async fn a_burst_of_a_hundred_registrations_is_served() {
    let _exclusive = cpu_heavy().await;
    let app = app_for_bursts().await;
    let usernames: Vec<String> = (0..100).map(|_| unique_username()).collect();

    let started = Instant::now();
    let outcomes = futures::future::join_all(
        usernames
            .iter()
            .map(|username| app.register(username, PASSWORD)),
    )
    .await;
    let took = started.elapsed();

    eprintln!("100 concurrent registrations: {took:?}");
    for outcome in outcomes {
        outcome.expect("every registration is served");
    }
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_create_exactly_one_account() {
    let _exclusive = cpu_heavy().await;
    let app = app_for_bursts().await;
    let started = Instant::now();
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move {
            app.register(if i % 2 == 0 { "Erin" } else { "ERIN" }, PASSWORD)
                .await
        }
    });

    let outcomes = futures::future::join_all(attempts).await;
    eprintln!(
        "20 concurrent registrations of one name: {:?}",
        started.elapsed()
    );

    let successes = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(successes, 1, "{outcomes:?}");
    for outcome in outcomes.into_iter().filter(Result::is_err) {
        assert_refused(outcome, Code::AlreadyExists, "USERNAME_TAKEN");
    }
    let accounts: i64 = app
        .database
        .query_value(
            "SELECT COUNT(*) AS n FROM users WHERE username_canonical = 'erin'",
            "n",
        )
        .await;
    assert_eq!(accounts, 1);
}

#[tokio::test]
async fn bad_usernames_are_invalid_arguments_naming_the_field() {
    let app = TestApp::spawn().await;
    let too_long = "a".repeat(33);
    let cases = [
        "",
        "   ",
        "ab",
        too_long.as_str(),
        "has space",
        "nul\0byte",
        "robert'); DROP TABLE users;--",
        "_leading",
        "emoji😀",
    ];

    for username in cases {
        let status = assert_refused(
            app.register(username, PASSWORD).await,
            Code::InvalidArgument,
            "INVALID_USERNAME",
        );
        assert_eq!(violated_fields(&status), ["username"], "{username:?}");
        assert!(status.message().contains("username"), "{status:?}");
    }
}

#[tokio::test]
async fn bad_passwords_are_invalid_arguments_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (String::new(), "PASSWORD_REQUIRED"),
        ("seven77".to_owned(), "PASSWORD_TOO_SHORT"),
        ("p".repeat(129), "PASSWORD_TOO_LONG"),
        ("é".repeat(129), "PASSWORD_TOO_LONG"),
    ];

    for (password, expected_reason) in cases {
        let status = assert_refused(
            app.register(&unique_username(), &password).await,
            Code::InvalidArgument,
            expected_reason,
        );
        assert_eq!(violated_fields(&status), ["password"]);
        assert!(status.message().contains("password"), "{status:?}");
    }
}

#[tokio::test]
async fn passwords_at_the_limits_are_accepted() {
    let app = TestApp::spawn().await;

    for password in [
        "8chars!!".to_owned(),
        "ü".repeat(128),
        "密码密码密码密码".to_owned(),
    ] {
        let username = unique_username();
        app.register(&username, &password).await.expect("accepted");
        app.login(&username, &password).await.expect("and usable");
    }
}

#[tokio::test]
async fn every_bad_field_is_reported_at_once() {
    let app = TestApp::spawn().await;

    let status = assert_refused(
        app.register("x", "short").await,
        Code::InvalidArgument,
        "INVALID_USERNAME",
    );

    assert_eq!(violated_fields(&status), ["username", "password"]);
    let reasons: Vec<String> = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations
        .into_iter()
        .map(|violation| violation.reason)
        .collect();
    assert_eq!(
        reasons,
        ["INVALID_USERNAME", "PASSWORD_TOO_SHORT"],
        "each violation with its reason, as REST's errors[]"
    );
}

#[tokio::test]
async fn huge_requests_are_refused_before_any_work() {
    let app = TestApp::spawn().await;
    let huge = "p".repeat(10 * 1024 * 1024);

    let status = app
        .register(&unique_username(), &huge)
        .await
        .expect_err("refused");

    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    app.register(&unique_username(), PASSWORD)
        .await
        .expect("the server is unharmed");
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_with_the_configured_parameters() {
    let app = TestApp::spawn_with(|settings| {
        settings.argon2_memory_kib = 512;
        settings.argon2_iterations = 3;
    })
    .await;
    app.register("Frank", PASSWORD).await.expect("registered");

    let stored: String = app
        .database
        .query_value("SELECT password_hash FROM users", "password_hash")
        .await;

    assert!(
        stored.starts_with("$argon2id$v=19$m=512,t=3,p=1$"),
        "{stored}"
    );
    assert!(!stored.contains(PASSWORD));
}

#[tokio::test]
async fn the_most_common_passwords_are_refused_in_any_case() {
    let app = TestApp::spawn().await;

    for password in ["password1", "Password1", "QWERTYUIOP", "iloveyou"] {
        let status = assert_refused(
            app.register(&unique_username(), password).await,
            Code::InvalidArgument,
            "PASSWORD_TOO_COMMON",
        );
        assert_eq!(violated_fields(&status), ["password"]);
    }
}
