//! The OpenAPI document is made from the handlers; these tests hold it to
//! what the server really does.

use authd::domain::Password;
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
            "DELETE /user/mfa/totp",
            "DELETE /user/passkeys/{id}",
            "DELETE /user/sessions/{id}",
            "GET /.well-known/jwks.json",
            "GET /.well-known/oauth-authorization-server",
            "GET /.well-known/openid-configuration",
            "GET /user/me",
            "GET /user/mfa",
            "GET /user/passkeys",
            "GET /user/sessions",
            "PATCH /user/passkeys/{id}",
            "POST /login",
            "POST /login/mfa",
            "POST /login/passkey",
            "POST /login/passkey/start",
            "POST /logout",
            "POST /logout/all",
            "POST /oauth2/introspect",
            "POST /token/refresh",
            "POST /user/email/verification",
            "POST /user/email/verify",
            "POST /user/mfa/recovery-codes",
            "POST /user/mfa/totp",
            "POST /user/mfa/totp/confirm",
            "POST /user/passkeys",
            "POST /user/passkeys/registration",
            "POST /user/password",
            "POST /user/password/reset",
            "POST /user/password/reset/confirm",
            "POST /user/password/reset/passkey",
            "POST /user/reauthenticate",
            "POST /user/reauthenticate/passkey",
            "POST /user/register",
            "POST /user/register/passkey",
            "POST /user/register/passkey/start",
            "POST /verify",
            "PUT /user/email",
            "PUT /user/password",
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

    // With an address, so that the user has every property.
    let token: Value = app
        .post_json(
            "/user/register",
            json!({"username": "Opal", "password": PASSWORD, "email": "opal@example.com"}),
        )
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
    problem_keys.extend(["errors".into(), "max_age".into(), "acr_values".into()]);
    problem_keys.sort();
    assert_eq!(
        problem_keys,
        schema_properties("Problem"),
        "errors appears only for 400s, max_age and acr_values only for refusals that ask for a (recent, stronger) authentication"
    );
}

#[tokio::test]
async fn password_lengths_in_the_document_are_the_domains() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let field = |schema: &str, name: &str| {
        let field = &document["components"]["schemas"][schema]["properties"][name];
        (field["minLength"].clone(), field["maxLength"].clone())
    };
    let new = (json!(Password::MIN_CHARS), json!(Password::MAX_CHARS));
    // A password in use is bounded above only.
    let existing = (json!(1), json!(Password::MAX_CHARS));

    assert_eq!(field("CredentialsBody", "password"), new);
    assert_eq!(field("ChangePasswordBody", "new_password"), new);
    assert_eq!(field("LoginBody", "password"), existing);
    assert_eq!(field("ChangePasswordBody", "current_password"), existing);
    assert_eq!(field("PasswordBody", "password"), existing);
}

/// What the extractors answer before any handler runs: a JSON body can be
/// refused as unreadable (400), too large (413) or not JSON (415), a
/// protected operation without a valid token (401).
#[tokio::test]
async fn every_operation_documents_what_its_extractors_can_refuse() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;

    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let responses = operation["responses"].as_object().expect("responses");
            let mut expected = Vec::new();
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "413", "415"]);
            }
            if operation.get("security").is_some() {
                expected.push("401");
            }
            for status in expected {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not document {status}"
                );
            }
            for (status, response) in responses {
                if status.starts_with('2') {
                    continue;
                }
                let content = response["content"].as_object().expect("content");
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
            }
        }
    }
}

/// A body type ignores fields it does not read; the document must not
/// forbid them, nor leave it unsaid.
#[tokio::test]
async fn request_bodies_admit_unknown_fields_as_the_server_does() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;

    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Some(body) = operation.get("requestBody") else {
                continue;
            };
            // A JSON body, or introspection's form: the one media type.
            let content = body["content"].as_object().expect("content");
            assert_eq!(content.len(), 1, "{method} {path}");
            let reference = content.values().next().expect("one")["schema"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: a body schema by reference"));
            let name = reference.trim_start_matches("#/components/schemas/");
            assert_eq!(
                document["components"]["schemas"][name]["additionalProperties"],
                json!(true),
                "{name}"
            );
        }
    }
    let response = app
        .post_json("/verify", json!({"access_token": "x", "unknown": 1}))
        .await;
    assert_eq!(
        response.status(),
        401,
        "refused for the token, not the field"
    );
}

/// The refresh token may come from the cookie instead: the body is optional,
/// and a JSON `null` (which the handler refuses) is not offered as one.
#[tokio::test]
async fn the_refresh_body_is_optional_but_not_null() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;

    let body = &document["paths"]["/token/refresh"]["post"]["requestBody"];
    assert_ne!(body["required"], json!(true));
    assert_eq!(
        body["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/RefreshBody"})
    );
    let response = app.post_json("/token/refresh", Value::Null).await;
    assert_eq!(response.status(), 400);
}

/// What no single operation owns (an unknown path, a method a path does
/// not serve) is documented once, as reusable problem responses.
#[tokio::test]
async fn answers_to_unknown_paths_and_methods_are_documented_problems() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;

    for (name, reason) in [
        ("NotFound", "NOT_FOUND"),
        ("MethodNotAllowed", "METHOD_NOT_ALLOWED"),
    ] {
        let response = &document["components"]["responses"][name];
        assert_eq!(
            response["content"]["application/problem+json"]["schema"],
            json!({"$ref": "#/components/schemas/Problem"}),
            "{name}"
        );
        let description = response["description"].as_str().expect("description");
        assert!(description.contains(reason), "{name}: {description}");
    }
    assert!(
        document["components"]["responses"]["MethodNotAllowed"]["headers"]
            .get("allow")
            .is_some()
    );
}

/// A body's refusals name their reasons, so that clients know what to
/// branch on: the shape's (`MALFORMED_JSON`, `INVALID_BODY` with
/// `FIELD_REQUIRED` and `FIELD_INVALID_TYPE` in `errors`) and the media
/// type's (`UNSUPPORTED_MEDIA_TYPE`, charsets other than UTF-8 too).
#[tokio::test]
async fn every_body_documents_its_refusals_reasons() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;

    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if operation.get("requestBody").is_none() {
                continue;
            }
            let description = |status: &str| {
                operation["responses"][status]["description"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} {status}"))
                    .to_owned()
            };
            let json_body: &[(&str, &str)] = &[
                ("400", "MALFORMED_JSON"),
                ("400", "INVALID_BODY"),
                ("400", "FIELD_REQUIRED"),
                ("400", "FIELD_INVALID_TYPE"),
                ("413", "BODY_TOO_LARGE"),
                ("415", "UNSUPPORTED_MEDIA_TYPE"),
                ("415", "UTF-8"),
            ];
            // Introspection's form (RFC 7662) has one field, a string.
            let form_body: &[(&str, &str)] = &[
                ("400", "INVALID_BODY"),
                ("400", "FIELD_REQUIRED"),
                ("413", "BODY_TOO_LARGE"),
                ("415", "UNSUPPORTED_MEDIA_TYPE"),
            ];
            let is_form = operation["requestBody"]["content"]
                .get("application/x-www-form-urlencoded")
                .is_some();
            for &(status, reason) in if is_form { form_body } else { json_body } {
                assert!(
                    description(status).contains(reason),
                    "{method} {path} {status} does not name {reason}"
                );
            }
        }
    }
}
