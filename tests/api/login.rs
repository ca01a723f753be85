use tonic::Code;

use crate::helpers::{
    PASSWORD, TOKEN_LIFETIME, TestApp, assert_refused, unique_username, violated_fields,
};

#[tokio::test]
async fn login_returns_a_fresh_token_for_the_account() {
    let app = TestApp::spawn().await;
    let registered = app.register("Grace", PASSWORD).await.expect("registered");

    let logged_in = app.login("GRACE", PASSWORD).await.expect("logged in");

    assert_eq!(logged_in.token_type, "Bearer");
    assert_eq!(u64::from(logged_in.expires_in), TOKEN_LIFETIME.as_secs());
    assert_eq!(logged_in.user, registered.user);
    assert_ne!(logged_in.access_token, registered.access_token);
    let verified = app.verify(&logged_in.access_token).await.expect("valid");
    assert_eq!(verified.user, registered.user);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable() {
    let app = TestApp::spawn().await;
    app.register("Heidi", PASSWORD).await.expect("registered");

    let wrong_password = assert_refused(
        app.login("Heidi", "not the password").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    let unknown_user = assert_refused(
        app.login("nobody-here", PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );

    assert_eq!(wrong_password.message(), unknown_user.message());
    assert_eq!(wrong_password.message(), "invalid username or password");
}

#[tokio::test]
async fn a_short_password_at_login_is_just_wrong_not_invalid() {
    // Login only bounds passwords from above, so raising the minimum length
    // later never locks existing users out.
    let app = TestApp::spawn().await;
    app.register("Ivan", PASSWORD).await.expect("registered");

    assert_refused(
        app.login("Ivan", "short").await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
}

#[tokio::test]
async fn login_input_is_validated_before_any_lookup() {
    let app = TestApp::spawn().await;

    let status = assert_refused(
        app.login(&unique_username(), &"p".repeat(129)).await,
        Code::InvalidArgument,
        "PASSWORD_TOO_LONG",
    );
    assert_eq!(violated_fields(&status), ["password"]);
    let status = assert_refused(
        app.login("", "").await,
        Code::InvalidArgument,
        "INVALID_USERNAME",
    );
    assert_eq!(violated_fields(&status), ["username", "password"]);
}

#[tokio::test]
async fn passwords_match_in_any_unicode_normalization_form() {
    let app = TestApp::spawn().await;
    // "é" precomposed (U+00E9) at registration, decomposed (e + U+0301) at login.
    app.register("Judy", "caf\u{e9} au lait")
        .await
        .expect("registered");

    app.login("Judy", "cafe\u{301} au lait")
        .await
        .expect("same password");
}

#[tokio::test]
async fn a_login_upgrades_a_hash_made_with_older_parameters() {
    let app = TestApp::spawn().await;
    app.register("Lena", PASSWORD).await.expect("registered");
    let app = app
        .restart_with(|settings| {
            settings.argon2_memory_kib = 512;
            settings.argon2_iterations = 2;
        })
        .await;

    app.login("Lena", PASSWORD)
        .await
        .expect("the old hash still matches");

    let stored: String = app
        .database
        .query_value("SELECT password_hash FROM users", "password_hash")
        .await;
    assert!(
        stored.starts_with("$argon2id$v=19$m=512,t=2,p=1$"),
        "{stored}"
    );
    app.login("Lena", PASSWORD)
        .await
        .expect("and the new one too");
}

#[tokio::test]
async fn a_stored_hash_with_absurd_parameters_is_refused_not_computed() {
    let app = TestApp::spawn().await;
    app.register("Milo", PASSWORD).await.expect("registered");
    let connection = app.database.connect().await;
    use sea_orm::ConnectionTrait as _;
    // 4 GiB: computing this would take the server down.
    connection
        .execute_unprepared(
            "UPDATE users SET password_hash = REPLACE(password_hash, 'm=256,', 'm=4194304,')",
        )
        .await
        .expect("tamper");

    let status = app.login("Milo", PASSWORD).await.expect_err("refused");

    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(status.message(), "internal error", "no detail leaks");
}

#[tokio::test]
async fn an_unknown_username_costs_as_much_time_as_a_wrong_password() {
    let _exclusive = crate::helpers::cpu_heavy().await;
    // A relative comparison, not a speed test: without the dummy hash an
    // unknown username answers ~20 times faster, far outside this bound,
    // which leaves room for a busy machine.
    let app = TestApp::spawn_with(|settings| {
        settings.argon2_memory_kib = 19 * 1024;
        settings.argon2_iterations = 2;
        settings.login_rate_per_address = None;
        settings.login_failures_per_username = None;
    })
    .await;
    app.register("Ursula", PASSWORD).await.expect("registered");
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();

    // Interleaved, so that drift in machine load touches both alike.
    for round in 0..15 {
        for (username, samples) in [("Ursula", &mut wrong), ("nobody-here", &mut unknown)] {
            let started = std::time::Instant::now();
            let status = app
                .login(username, "not the password")
                .await
                .expect_err("refused");
            assert_eq!(status.code(), Code::Unauthenticated, "round {round}");
            samples.push(started.elapsed());
        }
    }

    // The fastest of each: the least disturbed by whatever else the machine
    // (or the rest of the suite) is doing at the time.
    let fastest =
        |samples: &[std::time::Duration]| samples.iter().min().expect("samples").as_secs_f64();
    let (unknown, wrong) = (fastest(&unknown), fastest(&wrong));
    let ratio = unknown / wrong;
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown {unknown:.4}s vs wrong {wrong:.4}s"
    );
}
