//! Admission control of password hashing by expected wait: a call that
//! would not be done within `--hash-queue-timeout` or its client's deadline
//! is refused at once, with when to come back; admitted calls finish in
//! time; token checks keep answering through a flood.

use std::time::{Duration, Instant};

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::helpers::{PASSWORD, TestApp, assert_refused, cpu_heavy, default_argon2, reason};

/// The `google.rpc.RetryInfo` delay of a refusal.
fn retry_delay(status: &Status) -> Duration {
    status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .unwrap_or_else(|| panic!("no RetryInfo: {status:?}"))
}

#[tokio::test]
async fn a_login_flood_is_refused_fast_while_verify_keeps_answering() {
    let _exclusive = cpu_heavy().await;
    let app = TestApp::spawn_with(|settings| {
        // One slow hash at a time (~0.1 s) and a bound of a few: the flood
        // must overflow it.
        settings.hash_concurrency = Some(1.try_into().expect("non-zero"));
        settings.argon2_memory_kib = 64 * 1024;
        settings.argon2_iterations = 4;
        settings.hash_queue_timeout = Duration::from_millis(500);
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
                assert!(retry_delay(&status) > Duration::ZERO);
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "50 slow logins against one slot: some must be refused"
    );
    app.login("Flora", PASSWORD)
        .await
        .expect("capacity comes back after the flood");
}

#[tokio::test]
async fn the_rest_gateway_answers_a_busy_server_with_503_and_retry_after() {
    let _exclusive = cpu_heavy().await;
    let app = TestApp::spawn_with(|settings| {
        // One slow hash at a time (~0.1 s) and a bound of a few.
        settings.hash_concurrency = Some(1.try_into().expect("non-zero"));
        settings.argon2_memory_kib = 64 * 1024;
        settings.argon2_iterations = 4;
        settings.hash_queue_timeout = Duration::from_millis(500);
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
        "20 slow logins against one slot: some must be refused"
    );
    for response in busy {
        // Whole seconds, at least one: when the queue will have room again.
        let seconds: u32 = response.headers()["retry-after"]
            .to_str()
            .expect("ASCII")
            .parse()
            .expect("whole seconds");
        assert!((1..=60).contains(&seconds), "Retry-After: {seconds}");
    }
    for response in responses {
        let status = response.status().as_u16();
        assert!(status == 200 || status == 503, "{status}");
    }
}

#[tokio::test]
async fn a_client_deadline_shorter_than_the_expected_wait_is_refused_at_once() {
    let _exclusive = cpu_heavy().await;
    let app = TestApp::spawn_with(|settings| {
        // One slow hash at a time (~0.2 s, far more than the database work
        // of a Login), and a bound far above: only the deadline decides.
        settings.hash_concurrency = Some(1.try_into().expect("non-zero"));
        settings.argon2_memory_kib = 64 * 1024;
        settings.argon2_iterations = 8;
        settings.hash_queue_timeout = Duration::from_secs(30);
    })
    .await;
    app.register("Nina", PASSWORD).await.expect("registered");
    let started = Instant::now();
    app.login("Nina", PASSWORD).await.expect("logged in");
    // One Login: a hash and a little database work.
    let hash_time = started.elapsed();

    // Five calls ahead, then one whose deadline holds one Login with room to
    // spare, not six hashes.
    let ahead = futures::future::join_all((0..5).map(|_| app.login("Nina", PASSWORD)));
    let hurried = async {
        tokio::time::sleep(hash_time / 4).await;
        let started = Instant::now();
        let outcome = app.login_within("Nina", PASSWORD, hash_time * 2).await;
        (outcome, started.elapsed())
    };
    let (ahead, (hurried, waited)) = tokio::join!(ahead, hurried);

    for outcome in ahead {
        outcome.expect("the calls ahead are served");
    }
    let status = assert_refused(hurried, Code::ResourceExhausted, "SERVER_BUSY");
    assert!(
        waited < hash_time / 2,
        "refused at once, not after {waited:?} (one hash: {hash_time:?})"
    );
    assert!(retry_delay(&status) >= hash_time / 2, "{status:?}");
}

#[tokio::test]
async fn under_a_login_flood_no_admitted_call_runs_into_its_deadline() {
    let _exclusive = cpu_heavy().await;
    let app = TestApp::spawn_with(|settings| {
        default_argon2(settings);
        // One hashing slot, so that the runtime keeps a core of its own and
        // the hash time stays what was measured.
        settings.hash_concurrency = Some(1.try_into().expect("non-zero"));
        // One address floods here; its budget would refuse the flood first.
        settings.login_rate_per_address = None;
    })
    .await;
    app.register("Olga", PASSWORD).await.expect("registered");
    // Shorter than the default bound, so the client's deadline decides;
    // generous, so that the test and its client's own work fit beside the
    // hashes (the bench measures the tail).
    let deadline = Duration::from_secs(1);

    // 120 calls of ~20 ms against one slot: more than a second's worth. Not
    // more: one connection carries at most 128 calls at once, and the rest
    // would wait in the client, on the client's clock, unseen by authd.
    let started = Instant::now();
    let outcomes =
        futures::future::join_all((0..120).map(|_| app.login_within("Olga", PASSWORD, deadline)))
            .await;
    eprintln!("120 logins with a 1 s deadline: {:?}", started.elapsed());

    let mut served = 0;
    let mut refused = 0;
    for outcome in outcomes {
        match outcome {
            Ok(_) => served += 1,
            Err(status) => {
                // Never DEADLINE_EXCEEDED, nor CANCELLED by the client's own
                // timer: what is admitted is done in time.
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(reason(&status), "SERVER_BUSY");
                refused += 1;
            }
        }
    }
    eprintln!("served {served}, refused {refused}");
    assert!(
        served > 0 && refused > 0,
        "{served} served, {refused} refused"
    );
}
