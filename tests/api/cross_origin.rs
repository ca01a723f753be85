//! Forged requests from other origins on the same site: a form on a
//! sibling subdomain sends the cookies along (`SameSite=Strict` is about
//! sites, not origins). What only a cookie authenticates and changes state
//! must come from authd's own origin, or from an allowed one.

use crate::helpers::{PASSWORD, TestApp, problem, unique_username};

/// The access and refresh cookies of a new session, as a `Cookie` header.
async fn cookies(app: &TestApp) -> String {
    let body: serde_json::Value = app
        .rest_register(&unique_username(), PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    format!(
        "authd_token={}; authd_refresh={}",
        body["access_token"].as_str().expect("token"),
        body["refresh_token"].as_str().expect("token")
    )
}

#[tokio::test]
async fn a_cookie_authenticated_logout_from_a_sibling_origin_is_refused() {
    let app = TestApp::spawn().await;
    let cookie = cookies(&app).await;

    for (path, headers) in [
        ("/logout", vec![("sec-fetch-site", "same-site")]),
        ("/logout/all", vec![("sec-fetch-site", "cross-site")]),
        ("/token/refresh", vec![("sec-fetch-site", "same-site")]),
        // A browser without Sec-Fetch-Site still sends Origin.
        ("/logout", vec![("origin", "http://127.0.0.1:9")]),
    ] {
        let mut request = app.post(path).header("cookie", &cookie);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let (status, reason, _) = problem(request.send().await.expect("response")).await;
        assert_eq!(
            (status, reason.as_str()),
            (403, "CROSS_ORIGIN_REQUEST"),
            "{path} {headers:?}"
        );
    }

    let same_origin = app
        .post("/token/refresh")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("response");
    assert_eq!(same_origin.status(), 200, "the session survived it all");
}

#[tokio::test]
async fn bearer_requests_and_allowed_origins_pass() {
    let app = TestApp::spawn_with(|settings| {
        settings.cors_allowed_origins = vec!["https://app.example.com".parse().expect("origin")];
    })
    .await;
    let cookie = cookies(&app).await;
    let registered = app
        .register(&unique_username(), PASSWORD)
        .await
        .expect("registered");

    let from_allowed = app
        .post("/logout")
        .header("cookie", &cookie)
        .header("origin", "https://app.example.com")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("response");
    assert_eq!(from_allowed.status(), 200);

    let bearer = app
        .post("/logout")
        .bearer_auth(&registered.access_token)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("response");
    assert_eq!(bearer.status(), 200, "a bearer header cannot be forged");
}
