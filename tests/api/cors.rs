//! CORS: only configured origins may call authd from a browser.

use reqwest::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ORIGIN,
};

use crate::helpers::TestApp;

const ALLOWED: &str = "http://app.example.test:8080";

async fn preflight(app: &TestApp, origin: &str, path: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base_url))
        .header(ORIGIN, origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        )
        .send()
        .await
        .expect("preflight")
}

#[tokio::test]
async fn an_allowed_origin_passes_preflight_for_grpc_web_and_rest() {
    let app = TestApp::spawn_with(|settings| {
        settings.cors_allowed_origins = vec![ALLOWED.parse().expect("origin")];
    })
    .await;

    for path in ["/auth.v1.AuthService/Login", "/login", "/logout"] {
        let response = preflight(&app, ALLOWED, path).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(
            response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            ALLOWED,
            "{path}"
        );
        let allowed_headers = response.headers()[ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .expect("ascii");
        for header in ["content-type", "x-grpc-web", "authorization"] {
            assert!(
                allowed_headers.contains(header),
                "{path}: {allowed_headers}"
            );
        }
    }
}

#[tokio::test]
async fn grpc_web_responses_expose_the_status_headers_to_allowed_origins() {
    let app = TestApp::spawn_with(|settings| {
        settings.cors_allowed_origins = vec![ALLOWED.parse().expect("origin")];
    })
    .await;

    let response = app
        .post("/auth.v1.AuthService/Verify")
        .header(ORIGIN, ALLOWED)
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("response");

    assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], ALLOWED);
    let exposed = response.headers()[ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .expect("ascii");
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(header), "{exposed}");
    }
}

#[tokio::test]
async fn other_origins_get_no_cors_grant() {
    let configured = TestApp::spawn_with(|settings| {
        settings.cors_allowed_origins = vec![ALLOWED.parse().expect("origin")];
    })
    .await;
    let default = TestApp::spawn().await;

    for app in [&configured, &default] {
        let response = preflight(app, "http://evil.example.test", "/login").await;
        assert!(
            response
                .headers()
                .get(ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }
    let response = preflight(&default, ALLOWED, "/login").await;
    assert!(
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "no origin is allowed by default"
    );
}
