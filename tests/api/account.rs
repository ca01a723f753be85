//! Managing one's own account and sessions: ListSessions, RevokeSession,
//! ChangePassword, DeleteAccount, over gRPC and REST.

use serde_json::json;
use tonic::Code;

use crate::helpers::{
    PASSWORD, TestApp, assert_refused, problem, unique_username, violated_fields,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn sessions_are_listed_newest_first_with_the_current_one_marked() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let first = app.register(&name, PASSWORD).await.expect("registered");
    let second = app.login(&name, PASSWORD).await.expect("logged in");
    let other_user = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");

    let sessions = app
        .list_sessions(&first.access_token)
        .await
        .expect("listed");

    let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [second.session_id.as_str(), first.session_id.as_str()]);
    assert!(!ids.contains(&other_user.session_id.as_str()));
    assert_eq!(
        sessions.iter().map(|s| s.current).collect::<Vec<_>>(),
        [false, true]
    );
    for session in &sessions {
        assert_eq!(session.client_address, "127.0.0.1");
        assert!(session.user_agent.contains("tonic"), "{session:?}");
        let (created, expires) = (
            session.created_at.as_ref().expect("created").seconds,
            session.expires_at.as_ref().expect("expires").seconds,
        );
        assert!(created < expires);
    }
}

#[tokio::test]
async fn the_user_agent_is_recorded_as_seen_and_cut_to_a_sane_length() {
    let app = TestApp::spawn().await;
    let agent = format!("Mozilla/5.0 {}", "x".repeat(1000));
    let response = app
        .post("/user/register")
        .header("user-agent", &agent)
        .json(&json!({"username": unique_username(), "password": PASSWORD}))
        .send()
        .await
        .expect("registered");
    let body: serde_json::Value = response.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token");

    let listed: serde_json::Value = app
        .get("/user/sessions")
        .bearer_auth(token)
        .send()
        .await
        .expect("listed")
        .json()
        .await
        .expect("json");

    let recorded = listed["sessions"][0]["user_agent"].as_str().expect("agent");
    assert_eq!(recorded.chars().count(), 256);
    assert!(agent.starts_with(recorded));
    assert_eq!(listed["sessions"][0]["current"], true);
}

#[tokio::test]
async fn another_users_session_and_an_unknown_one_are_the_same_not_found() {
    let app = TestApp::spawn().await;
    let mine = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");
    let theirs = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");

    for id in [
        theirs.session_id.as_str(),
        "0190f5a4-0000-7000-8000-000000000000",
        "not-a-uuid",
        "",
    ] {
        let refused = assert_refused(
            app.revoke_session(&mine.access_token, id).await,
            Code::NotFound,
            "SESSION_NOT_FOUND",
        );
        assert_eq!(refused.message(), "no such session");
    }
    app.verify(&theirs.access_token)
        .await
        .expect("their session is untouched");

    let response = app
        .http
        .delete(format!(
            "{}/user/sessions/{}",
            app.base_url, theirs.session_id
        ))
        .bearer_auth(&mine.access_token)
        .send()
        .await
        .expect("response");
    let (status, reason, _) = problem(response).await;
    assert_eq!((status, reason.as_str()), (404, "SESSION_NOT_FOUND"));
}

#[tokio::test]
async fn rest_ends_another_session_of_the_caller() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let first = app.register(&name, PASSWORD).await.expect("registered");
    let second = app.login(&name, PASSWORD).await.expect("logged in");

    let response = app
        .http
        .delete(format!(
            "{}/user/sessions/{}",
            app.base_url, second.session_id
        ))
        .bearer_auth(&first.access_token)
        .send()
        .await
        .expect("response");

    assert_eq!(response.status(), 200);
    assert_refused(
        app.verify(&second.access_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    app.verify(&first.access_token)
        .await
        .expect("the caller's own session lives on");
}

#[tokio::test]
async fn change_password_replaces_the_password_and_starts_a_fresh_session() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");

    let changed = app
        .change_password(&registered.access_token, PASSWORD, NEW_PASSWORD)
        .await
        .expect("changed");

    assert_ne!(changed.session_id, registered.session_id);
    assert_eq!(changed.user, registered.user);
    app.verify(&changed.access_token)
        .await
        .expect("the new session works");
    app.refresh(&changed.refresh_token)
        .await
        .expect("and refreshes");
    assert_refused(
        app.login(&name, PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    app.login(&name, NEW_PASSWORD)
        .await
        .expect("the new password logs in");
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_and_counted_as_a_failed_login() {
    let app = TestApp::spawn_with(|settings| {
        settings.login_failures_per_username = "2/1h".parse().ok();
    })
    .await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");

    for _ in 0..2 {
        assert_refused(
            app.change_password(&registered.access_token, "not my password", NEW_PASSWORD)
                .await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }

    assert_refused(
        app.login(&name, PASSWORD).await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    app.verify(&registered.access_token)
        .await
        .expect("a refused change ends nothing");
}

#[tokio::test]
async fn a_new_password_follows_the_registration_rules() {
    let app = TestApp::spawn().await;
    let registered = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");

    for (current, new, reason, fields) in [
        (
            PASSWORD,
            "short",
            "PASSWORD_TOO_SHORT",
            vec!["new_password"],
        ),
        (
            PASSWORD,
            "password123",
            "PASSWORD_TOO_COMMON",
            vec!["new_password"],
        ),
        (
            "",
            "",
            "PASSWORD_REQUIRED",
            vec!["current_password", "new_password"],
        ),
    ] {
        let refused = assert_refused(
            app.change_password(&registered.access_token, current, new)
                .await,
            Code::InvalidArgument,
            reason,
        );
        assert_eq!(violated_fields(&refused), fields);
    }
}

#[tokio::test]
async fn rest_change_password_sets_the_new_sessions_cookies() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");

    let response = app
        .post("/user/password")
        .bearer_auth(&registered.access_token)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .expect("response");

    assert_eq!(response.status(), 200);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().expect("ascii").to_owned())
        .collect();
    let body: serde_json::Value = response.json().await.expect("json");
    let access = body["access_token"].as_str().expect("token");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("authd_token={access}")))
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("authd_refresh=authd_rt_"))
    );
    app.login(&name, NEW_PASSWORD)
        .await
        .expect("the new password logs in");
}

#[tokio::test]
async fn a_deleted_account_is_gone_and_its_name_free_for_someone_else() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");

    assert_refused(
        app.delete_account(&registered.access_token, "not my password")
            .await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    app.delete_account(&registered.access_token, PASSWORD)
        .await
        .expect("deleted");

    assert_refused(
        app.login(&name, PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    let newcomer = app
        .register(&name, "someone else's password")
        .await
        .expect("the name is free");
    let (old, new) = (registered.user.expect("user"), newcomer.user.expect("user"));
    assert_ne!(old.id, new.id);
    assert_refused(
        app.verify(&registered.access_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    let sessions = app
        .list_sessions(&newcomer.access_token)
        .await
        .expect("listed");
    assert_eq!(sessions.len(), 1, "nothing of the old account carries over");
}

#[tokio::test]
async fn rest_delete_me_checks_the_password_and_clears_both_cookies() {
    let app = TestApp::spawn().await;
    let name = unique_username();
    let registered = app.register(&name, PASSWORD).await.expect("registered");
    let delete = |password: &str| {
        app.http
            .delete(format!("{}/user/me", app.base_url))
            .bearer_auth(&registered.access_token)
            .json(&json!({ "password": password }))
            .send()
    };

    let (status, reason, _) = problem(delete("wrong password").await.expect("sent")).await;
    assert_eq!((status, reason.as_str()), (401, "INVALID_CREDENTIALS"));

    let response = delete(PASSWORD).await.expect("sent");
    assert_eq!(response.status(), 200);
    let cleared: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().expect("ascii").to_owned())
        .filter(|cookie| cookie.contains("Max-Age=0"))
        .collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert_refused(
        app.login(&name, PASSWORD).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
}
