//! The OpenAPI document is made from the handlers; these tests hold it to
//! what the server really does.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").send().await.expect("response");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON document")
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_endpoint() {
    let app = TestApp::spawn().await;

    let document = document(&app).await;

    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );
    let mut operations: Vec<String> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /user/me",
            "DELETE /user/sessions/{id}",
            "GET /.well-known/jwks.json",
            "GET /user/me",
            "GET /user/sessions",
            "POST /login",
            "POST /logout",
            "POST /logout/all",
            "POST /token/refresh",
            "POST /user/password",
            "POST /user/register",
            "POST /verify",
        ]
    );
}

#[tokio::test]
async fn every_documented_operation_answers_with_a_documented_status() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;

    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let mut request = app
                .http
                .request(method.clone(), format!("{}{path}", app.base_url));
            if operation.get("requestBody").is_some() {
                request = request.json(&json!({}));
            }
            let status = request
                .send()
                .await
                .expect("response")
                .status()
                .as_u16()
                .to_string();
            let documented = operation["responses"].as_object().expect("responses");
            assert!(
                documented.contains_key(&status),
                "{method} {path} answered {status}, not documented"
            );
        }
    }
}

#[tokio::test]
async fn response_bodies_have_exactly_the_documented_properties() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let schema_properties = |name: &str| -> Vec<String> {
        let mut keys: Vec<String> = document["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name}"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };

    let token: Value = app
        .rest_register("Opal", PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    let claims: Value = app
        .post_json("/verify", json!({"access_token": token["access_token"]}))
        .await
        .json()
        .await
        .expect("json");
    let problem: Value = app
        .rest_register("Opal", PASSWORD)
        .await
        .json()
        .await
        .expect("json");

    assert_eq!(keys(&token), schema_properties("TokenBody"));
    assert_eq!(keys(&token["user"]), schema_properties("UserBody"));
    assert_eq!(keys(&claims), schema_properties("ClaimsBody"));
    let mut problem_keys = keys(&problem);
    problem_keys.push("errors".into());
    problem_keys.sort();
    assert_eq!(
        problem_keys,
        schema_properties("Problem"),
        "errors appears only for 400s"
    );
}
