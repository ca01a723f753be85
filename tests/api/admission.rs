//! Admission control of password hashing: a flood of logins is refused
//! fast instead of queueing without end, and token checks keep answering.

use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, reason};

#[tokio::test]
async fn a_login_flood_is_refused_fast_while_verify_keeps_answering() {
    let _exclusive = crate::helpers::cpu_heavy().await;
    let app = TestApp::spawn_with(|settings| {
        // One slow hash at a time and two waiting: the flood must overflow.
        settings.hash_concurrency = Some(1.try_into().expect("non-zero"));
        settings.hash_queue_limit = Some(2);
        settings.argon2_memory_kib = 16 * 1024;
        settings.argon2_iterations = 4;
    })
    .await;
    let token = app.registered_token("Flora").await;

    let logins = futures::future::join_all((0..50).map(|i| {
        let password = if i % 2 == 0 {
            PASSWORD
        } else {
            "wrong password"
        };
        app.login("Flora", password)
    }));
    let verifies = futures::future::join_all((0..50).map(|_| app.verify(&token)));
    let (logins, verifies) = tokio::join!(logins, verifies);

    for verified in verifies {
        verified.expect("Verify answers during the flood");
    }
    let mut refused = 0;
    for outcome in logins {
        match outcome {
            Ok(_) => {}
            Err(status) if status.code() == Code::Unauthenticated => {
                assert_eq!(reason(&status), "INVALID_CREDENTIALS");
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(reason(&status), "SERVER_BUSY");
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "50 logins against 3 places: some must be refused"
    );
    app.login("Flora", PASSWORD)
        .await
        .expect("capacity comes back after the flood");
}

#[tokio::test]
async fn the_rest_gateway_answers_a_busy_server_with_503_and_retry_after() {
    let _exclusive = crate::helpers::cpu_heavy().await;
    let app = TestApp::spawn_with(|settings| {
        settings.hash_concurrency = Some(1.try_into().expect("non-zero"));
        settings.hash_queue_limit = Some(0);
        settings.argon2_memory_kib = 16 * 1024;
        settings.argon2_iterations = 4;
    })
    .await;
    app.register("Gale", PASSWORD).await.expect("registered");

    let responses =
        futures::future::join_all((0..20).map(|_| app.rest_login("Gale", PASSWORD))).await;

    let busy: Vec<&reqwest::Response> = responses
        .iter()
        .filter(|response| response.status() == 503)
        .collect();
    assert!(
        !busy.is_empty(),
        "20 logins against 1 place: some must be refused"
    );
    for response in busy {
        assert_eq!(response.headers()["retry-after"], "1");
    }
    for response in responses {
        let status = response.status().as_u16();
        assert!(status == 200 || status == 503, "{status}");
    }
}
