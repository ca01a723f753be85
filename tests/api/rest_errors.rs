//! What the REST gateway answers to requests it cannot serve, before or
//! instead of a handler's own refusal: every answer is problem+json with a
//! stable reason, in authd's words, and a `400` names every bad field.

use reqwest::Method;
use reqwest::header::{ALLOW, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, problem};

/// `(field, reason)` of each entry of a problem's `errors`, in order.
fn field_errors(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors: {body}"))
        .iter()
        .map(|error| {
            assert!(error["detail"].is_string(), "{error}");
            (
                error["field"].as_str().expect("field").to_owned(),
                error["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(field, reason)| ((*field).to_owned(), (*reason).to_owned()))
        .collect()
}

/// The framework's wording (axum's, serde's) must not reach clients.
fn assert_in_authds_words(body: &Value) {
    let text = body.to_string();
    for framework in ["Failed to", "deserialize", "target type", "`"] {
        assert!(!text.contains(framework), "{framework:?} in {body}");
    }
}

#[tokio::test]
async fn an_empty_object_is_400_listing_every_missing_field() {
    let app = TestApp::spawn().await;

    let (status, reason, body) = problem(app.post_json("/login", json!({})).await).await;

    assert_eq!((status, reason.as_str()), (400, "INVALID_BODY"));
    assert_eq!(
        field_errors(&body),
        pairs(&[
            ("username", "FIELD_REQUIRED"),
            ("password", "FIELD_REQUIRED")
        ])
    );
    assert_eq!(body["errors"][0]["detail"], "username is required");
    assert_in_authds_words(&body);
}

#[tokio::test]
async fn ill_typed_fields_are_400_each_named_with_the_type_it_must_have() {
    let app = TestApp::spawn().await;

    let response = app
        .post_json("/user/register", json!({"username": 1, "password": true}))
        .await;
    let (status, reason, body) = problem(response).await;

    assert_eq!((status, reason.as_str()), (400, "INVALID_BODY"));
    assert_eq!(
        field_errors(&body),
        pairs(&[
            ("username", "FIELD_INVALID_TYPE"),
            ("password", "FIELD_INVALID_TYPE")
        ])
    );
    assert_eq!(
        body["errors"][0]["detail"],
        "username must be a string, not a number"
    );
    assert_in_authds_words(&body);
}

#[tokio::test]
async fn a_missing_field_and_a_rule_broken_by_another_are_listed_together() {
    let app = TestApp::spawn().await;

    let response = app
        .post_json("/user/register", json!({"password": "short"}))
        .await;
    let (status, reason, body) = problem(response).await;

    assert_eq!((status, reason.as_str()), (400, "INVALID_BODY"));
    assert_eq!(
        field_errors(&body),
        pairs(&[
            ("username", "FIELD_REQUIRED"),
            ("password", "PASSWORD_TOO_SHORT")
        ])
    );
}

#[tokio::test]
async fn well_formed_bodies_keep_the_rules_own_reasons() {
    let app = TestApp::spawn().await;

    let (status, reason, body) = problem(app.rest_register("x", "short").await).await;

    assert_eq!((status, reason.as_str()), (400, "INVALID_USERNAME"));
    assert_eq!(
        field_errors(&body),
        pairs(&[
            ("username", "INVALID_USERNAME"),
            ("password", "PASSWORD_TOO_SHORT")
        ])
    );
}

/// Every documented body, sent empty, is refused naming exactly the fields
/// the document says are required.
#[tokio::test]
async fn every_body_lists_the_documents_required_fields_when_they_are_missing() {
    let app = TestApp::spawn().await;
    let token: Value = app
        .rest_register("Quinn", PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    let token = token["access_token"].as_str().expect("token").to_owned();
    let document: Value = app
        .get("/openapi.json")
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("document");

    let mut checked = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Some(reference) =
                operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            else {
                continue;
            };
            let name = reference.trim_start_matches("#/components/schemas/");
            let schema = &document["components"]["schemas"][name];
            // A body that needs one field of several (`anyOf` of
            // `required`s) names the first of them when it has none.
            let one_of_several = schema["anyOf"][0]["required"].as_array();
            let required: Vec<(String, String)> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(one_of_several.into_iter().flatten())
                .map(|field| {
                    (
                        field.as_str().expect("name").to_owned(),
                        "FIELD_REQUIRED".into(),
                    )
                })
                .collect();
            if required.is_empty() {
                // Nothing can be missing (a step-up body's optional code).
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = app
                .http
                .request(method.clone(), format!("{}{path}", app.base_url))
                .bearer_auth(&token)
                .json(&json!({"unrelated": 1}))
                .send()
                .await
                .expect("response");

            let (status, reason, body) = problem(response).await;
            assert_eq!(
                (status, reason.as_str()),
                (400, "INVALID_BODY"),
                "{method} {path}"
            );
            assert_eq!(field_errors(&body), required, "{method} {path}");
            checked += 1;
        }
    }
    assert_eq!(
        checked, 20,
        "register, login, refresh, verify, password, delete, login/mfa, totp/confirm, reauthenticate, \
         finish a passkey registration, rename a passkey, finish a passkey sign-in, start and finish \
         a passkey sign-up, set a first password, set the email address, verify it, request a \
         password reset, reset it, start its passkey challenge"
    );
}

#[tokio::test]
async fn a_body_that_is_no_object_is_400_naming_the_whole_body() {
    let app = TestApp::spawn().await;

    for body in [json!([]), json!("alice"), json!(1), Value::Null] {
        let (status, reason, problem) = problem(app.post_json("/login", body.clone()).await).await;

        assert_eq!((status, reason.as_str()), (400, "INVALID_BODY"), "{body}");
        assert_eq!(
            field_errors(&problem),
            pairs(&[("", "FIELD_INVALID_TYPE")]),
            "{body}"
        );
        assert_in_authds_words(&problem);
    }
}

#[tokio::test]
async fn malformed_json_is_400_with_where_it_breaks_in_errors() {
    let app = TestApp::spawn().await;

    for text in [
        r#"{"username":"#,
        "not json at all",
        "",
        r#"{"a":1} trailing"#,
    ] {
        let response = app
            .post("/login")
            .header(CONTENT_TYPE, "application/json")
            .body(text)
            .send()
            .await
            .expect("response");

        let (status, reason, body) = problem(response).await;
        assert_eq!((status, reason.as_str()), (400, "MALFORMED_JSON"), "{text}");
        assert_eq!(
            field_errors(&body),
            pairs(&[("", "MALFORMED_JSON")]),
            "{text}"
        );
        assert!(
            body["detail"]
                .as_str()
                .expect("detail")
                .starts_with("the body is not valid JSON"),
            "{body}"
        );
        assert_in_authds_words(&body);
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_problem_with_allow() {
    let app = TestApp::spawn().await;

    for (method, path, allow) in [
        (Method::GET, "/login", "POST"),
        (Method::PUT, "/user/me", "GET,HEAD,DELETE"),
        (Method::POST, "/.well-known/jwks.json", "GET,HEAD"),
        (Method::DELETE, "/openapi.json", "GET,HEAD"),
    ] {
        let response = app
            .http
            .request(method.clone(), format!("{}{path}", app.base_url))
            .send()
            .await
            .expect("response");

        assert_eq!(
            response
                .headers()
                .get(ALLOW)
                .map(|value| value.to_str().expect("ascii")),
            Some(allow),
            "{method} {path}"
        );
        let (status, reason, body) = problem(response).await;
        assert_eq!(
            (status, reason.as_str()),
            (405, "METHOD_NOT_ALLOWED"),
            "{method} {path}"
        );
        assert_eq!(
            body["detail"],
            format!("{path} does not answer {method}"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn json_in_utf_8_is_accepted_with_or_without_its_charset() {
    let app = TestApp::spawn().await;
    app.rest_register("Rosa", PASSWORD).await;
    let login = json!({"username": "Rosa", "password": PASSWORD}).to_string();

    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=\"UTF-8\"",
    ] {
        let response = app
            .post("/login")
            .header(CONTENT_TYPE, content_type)
            .body(login.clone())
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 200, "{content_type}");
    }
}

#[tokio::test]
async fn other_charsets_and_media_types_are_415_problems() {
    let app = TestApp::spawn().await;
    let login = json!({"username": "Rosa", "password": PASSWORD}).to_string();

    for content_type in [
        Some("application/json; charset=latin1"),
        Some("application/json; charset=utf-16"),
        Some("text/plain"),
        Some("text/json"),
        Some("application/x-www-form-urlencoded"),
        Some("not a media type"),
        None,
    ] {
        let mut request = app.post("/login").body(login.clone());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let (status, reason, body) = problem(request.send().await.expect("response")).await;
        assert_eq!(
            (status, reason.as_str()),
            (415, "UNSUPPORTED_MEDIA_TYPE"),
            "{content_type:?}"
        );
        assert!(body.get("errors").is_none(), "{body}");
    }
}

/// One table of what the framework, not a handler, answers: each is
/// problem+json with its reason.
#[tokio::test]
async fn every_answer_before_a_handler_is_a_problem_with_a_stable_reason() {
    let app = TestApp::spawn().await;
    let token: Value = app
        .rest_register("Sven", PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    let token = token["access_token"].as_str().expect("token").to_owned();
    let login = |content_type: &'static str, body: Vec<u8>| {
        app.post("/login")
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let json = "application/json";

    let cases = [
        (app.get("/no/such/page").send().await, 404, "NOT_FOUND"),
        (app.get("/login").send().await, 405, "METHOD_NOT_ALLOWED"),
        (
            login(json, vec![b' '; 64 * 1024]).await,
            413,
            "BODY_TOO_LARGE",
        ),
        (
            login("text/plain", b"{}".to_vec()).await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            login("application/json; charset=iso-8859-1", b"{}".to_vec()).await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (login(json, b"{".to_vec()).await, 400, "MALFORMED_JSON"),
        // Not UTF-8, which JSON must be.
        (
            login(json, b"{\"username\":\"\xe9\"}".to_vec()).await,
            400,
            "MALFORMED_JSON",
        ),
        (login(json, b"{}".to_vec()).await, 400, "INVALID_BODY"),
        // A session id that is not even UTF-8 is no session of the caller.
        (
            app.http
                .delete(format!("{}/user/sessions/%FF", app.base_url))
                .bearer_auth(&token)
                .send()
                .await,
            404,
            "SESSION_NOT_FOUND",
        ),
    ];

    for (index, (response, expected_status, expected_reason)) in cases.into_iter().enumerate() {
        let (status, reason, body) = problem(response.expect("response")).await;
        assert_eq!(
            (status, reason.as_str()),
            (expected_status, expected_reason),
            "case {index}: {body}"
        );
        if status == 400 {
            assert!(!field_errors(&body).is_empty(), "case {index}: {body}");
        }
        assert_in_authds_words(&body);
    }
}

#[tokio::test]
async fn a_request_not_answered_in_time_is_a_503_problem() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let app = TestApp::spawn_with(|settings| {
        settings.request_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let address = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connects");
    // The body never comes whole: the handler waits for it until the
    // timeout answers instead.
    stream
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: authd\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
        .await
        .expect("sends");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.expect("reads");
            answer.extend_from_slice(&buffer[..n]);
            if n == 0 || String::from_utf8_lossy(&answer).contains("\"reason\"") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "answered before the test gave up");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        answer.contains("\"reason\":\"REQUEST_TIMEOUT\""),
        "{answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
}
