//! `WatchRevocations`: who may watch, the snapshot, live changes from this
//! instance and others, checkpoints, resuming, expired cursors, and that
//! nothing revoked is ever missing from snapshot plus changes.

use std::collections::HashSet;
use std::time::Duration;

use authd::grpc::pb::revocation::Kind;
use authd::grpc::pb::revocation_service_client::RevocationServiceClient;
use authd::grpc::pb::{WatchRevocationsRequest, WatchRevocationsResponse};
use tonic::{Code, Streaming};

use crate::helpers::{FEED_TOKEN, PASSWORD, TestApp, assert_refused, unique_username, with_bearer};

/// A watch with the test credential, from `cursor` ("" for a snapshot).
async fn watch(
    app: &TestApp,
    cursor: &str,
) -> Result<Streaming<WatchRevocationsResponse>, tonic::Status> {
    watch_as(app, cursor, FEED_TOKEN).await
}

async fn watch_as(
    app: &TestApp,
    cursor: &str,
    credential: &str,
) -> Result<Streaming<WatchRevocationsResponse>, tonic::Status> {
    let request = WatchRevocationsRequest {
        cursor: cursor.into(),
    };
    RevocationServiceClient::new(app.channel.clone())
        .watch_revocations(with_bearer(request, credential))
        .await
        .map(tonic::Response::into_inner)
}

/// The next message, within five seconds.
async fn next(stream: &mut Streaming<WatchRevocationsResponse>) -> WatchRevocationsResponse {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a message within 5 s")
        .expect("no error")
        .expect("the stream goes on")
}

/// Reads the snapshot; its revocations and the cursor after it.
async fn snapshot(stream: &mut Streaming<WatchRevocationsResponse>) -> (Vec<Kind>, String) {
    let mut revocations = Vec::new();
    loop {
        let message = next(stream).await;
        revocations.extend(message.revocations.into_iter().filter_map(|r| r.kind));
        if message.snapshot_complete {
            return (revocations, message.cursor);
        }
    }
}

/// Reads until a message carries revocations; those and its cursor.
async fn next_change(stream: &mut Streaming<WatchRevocationsResponse>) -> (Vec<Kind>, String) {
    loop {
        let message = next(stream).await;
        if !message.revocations.is_empty() {
            let kinds = message
                .revocations
                .into_iter()
                .filter_map(|r| r.kind)
                .collect();
            return (kinds, message.cursor);
        }
    }
}

fn ended_sessions(kinds: &[Kind]) -> HashSet<String> {
    kinds
        .iter()
        .filter_map(|kind| match kind {
            Kind::Session(session) => Some(session.session_id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn only_the_feed_credential_may_watch() {
    let app = TestApp::spawn().await;
    let user_token = app.registered_token(&unique_username()).await;

    for credential in ["wrong", user_token.as_str()] {
        assert_refused(
            watch_as(&app, "", credential).await,
            Code::Unauthenticated,
            "FEED_CREDENTIAL_INVALID",
        );
    }
    let off = TestApp::spawn_with(|settings| settings.revocation_feed_tokens.clear()).await;
    assert_refused(
        watch(&off, "").await,
        Code::PermissionDenied,
        "REVOCATION_FEED_DISABLED",
    );
}

#[tokio::test]
async fn a_watch_starts_with_a_snapshot_then_gets_each_change_and_checkpoints() {
    let app = TestApp::spawn().await;
    let before = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");
    app.logout(&before.access_token).await.expect("logged out");

    let mut stream = watch(&app, "").await.expect("watching");
    let (kinds, cursor) = snapshot(&mut stream).await;
    assert!(ended_sessions(&kinds).contains(&before.session_id));

    let after = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");
    app.logout(&after.access_token).await.expect("logged out");
    let (kinds, next_cursor) = next_change(&mut stream).await;
    assert_eq!(ended_sessions(&kinds), HashSet::from([after.session_id]));
    assert_ne!(next_cursor, cursor);

    // Quiet now: checkpoints keep coming, with the same cursor.
    let checkpoint = next(&mut stream).await;
    assert!(checkpoint.revocations.is_empty());
    assert_eq!(checkpoint.cursor, next_cursor);
    assert!(checkpoint.server_time.is_some());
}

#[tokio::test]
async fn a_resumed_watch_gets_only_what_came_after_its_cursor() {
    let app = TestApp::spawn().await;
    let mut stream = watch(&app, "").await.expect("watching");
    let (_, cursor) = snapshot(&mut stream).await;
    drop(stream);

    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");
    app.client
        .clone()
        .logout_all(with_bearer(
            authd::grpc::pb::LogoutAllRequest {},
            &registered.access_token,
        ))
        .await
        .expect("logged out everywhere");

    let mut resumed = watch(&app, &cursor).await.expect("resumed");
    let (kinds, _) = next_change(&mut resumed).await;
    let user_id = registered.user.expect("user").id;
    assert!(
        kinds
            .iter()
            .any(|kind| matches!(kind, Kind::UserCutoff(cutoff) if cutoff.user_id == user_id)),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn cursors_it_cannot_resume_from_are_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn().await;
    let mut stream = watch(&other, "").await.expect("watching");
    let (_, foreign) = snapshot(&mut stream).await;

    assert_refused(
        watch(&app, &foreign).await,
        Code::FailedPrecondition,
        "CURSOR_EXPIRED",
    );
    assert_refused(
        watch(&app, "not a cursor").await,
        Code::InvalidArgument,
        "CURSOR_INVALID",
    );
}

#[tokio::test]
async fn a_logout_on_another_instance_reaches_this_feed() {
    let app = TestApp::spawn().await;
    let beside = app.spawn_beside().await;
    let mut stream = watch(&app, "").await.expect("watching");
    snapshot(&mut stream).await;

    let registered = beside
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");
    beside
        .logout(&registered.access_token)
        .await
        .expect("logged out there");

    let (kinds, _) = next_change(&mut stream).await;
    assert!(ended_sessions(&kinds).contains(&registered.session_id));
}

#[tokio::test]
async fn nothing_revoked_is_missing_while_watchers_come_and_go() {
    let app = TestApp::spawn_with(|settings| settings.register_rate_per_address = None).await;
    let mut sessions = Vec::new();
    for _ in 0..60 {
        let registered = app
            .register(&unique_username(), PASSWORD)
            .await
            .expect("registered");
        sessions.push((registered.access_token, registered.session_id));
    }
    let expected: HashSet<String> = sessions.iter().map(|(_, id)| id.clone()).collect();
    let revoking = {
        let (client, tokens): (_, Vec<String>) = (
            app.client.clone(),
            sessions.into_iter().map(|(token, _)| token).collect(),
        );
        tokio::spawn(async move {
            for token in tokens {
                client
                    .clone()
                    .logout(with_bearer(authd::grpc::pb::LogoutRequest {}, &token))
                    .await
                    .expect("logged out");
            }
        })
    };

    // A watcher that keeps disconnecting: after a few messages it drops the
    // stream and resumes from its cursor, or (every third time) forgets
    // everything and starts again from a snapshot.
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    let mut round = 0;
    while seen != expected {
        round += 1;
        assert!(round < 500, "missing: {:?}", expected.difference(&seen));
        if round % 3 == 0 {
            cursor.clear();
            seen.clear();
        }
        let mut stream = watch(&app, &cursor).await.expect("watching");
        for _ in 0..(round % 4 + 1) {
            let message = next(&mut stream).await;
            let kinds: Vec<Kind> = message
                .revocations
                .into_iter()
                .filter_map(|r| r.kind)
                .collect();
            seen.extend(ended_sessions(&kinds));
            cursor = message.cursor;
        }
    }
    revoking.await.expect("every logout done");
}

#[tokio::test]
async fn a_stopping_server_ends_its_watches() {
    let mut app = TestApp::spawn().await;
    let mut stream = watch(&app, "").await.expect("watching");
    snapshot(&mut stream).await;

    app.begin_shutdown(Duration::from_secs(1));

    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                outcome => return outcome,
            }
        }
    })
    .await
    .expect("ends within 5 s");
    let status = ended.expect_err("with a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    app.stop().await;
}
