//! Signing keys: the JWKS, rotation, keys from files.

use std::collections::HashMap;
use std::time::Duration;

use authd::domain::CLOCK_LEEWAY;
use authd::grpc::pb::VerifyRequest;
use authd::grpc::pb::auth_service_client::AuthServiceClient;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use envoy_types::ext_authz::v3::pb::{CheckRequest, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{
    PASSWORD, TestApp, TestDatabase, assert_refused, authd_command, problem, reason,
    spawn_authd_process_logged, terminate, unique_username,
};

pub(crate) fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

async fn jwks(app: &TestApp) -> JwkSet {
    let response = app
        .get("/.well-known/jwks.json")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JWKS")
}

/// Runs `authd keys rotate` on a database with this `--key-refresh-interval`
/// (which sets the activation delay); returns the new key's id.
pub(crate) async fn rotate(database_url: &str, key_refresh_interval: &str) -> String {
    let output = authd_command()
        .args([
            "--database-url",
            database_url,
            "--key-refresh-interval",
            key_refresh_interval,
            "keys",
            "rotate",
        ])
        .output()
        .await
        .expect("authd keys rotate runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .split('\t')
        .next()
        .expect("kid")
        .to_owned()
}

/// Logs in until `app` signs with the key `kid`; returns that token.
pub(crate) async fn login_signed_by(app: &TestApp, username: &str, kid: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let token = app
            .login(username, PASSWORD)
            .await
            .expect("login")
            .access_token;
        if kid_of(&token) == kid {
            return token;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key never started signing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A token like ours in every respect but its key: one that exists nowhere,
/// under the id `kid`.
fn token_of_unknown_key(kid: &str) -> String {
    let key = authd::domain::generate_signing_key(chrono::Utc::now()).expect("key");
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "authd", "aud": "authd", "sub": uuid::Uuid::new_v4().to_string(),
        "username": "mallory", "iat": now, "nbf": now, "exp": now + 600,
        "jti": uuid::Uuid::new_v4().simple().to_string(),
    });
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ed_der(&key.private_key),
    )
    .expect("sign")
}

/// Every way a token reaches authd: each surface that checks one.
#[derive(Debug, Clone, Copy)]
enum Surface {
    GrpcVerify,
    /// A bearer-protected RPC.
    GrpcLogout,
    GrpcWebLogout,
    RestVerify,
    RestMe,
    RestLogout,
    ForwardAuth,
    EnvoyCheck,
}

impl Surface {
    const ALL: [Self; 8] = [
        Self::GrpcVerify,
        Self::GrpcLogout,
        Self::GrpcWebLogout,
        Self::RestVerify,
        Self::RestMe,
        Self::RestLogout,
        Self::ForwardAuth,
        Self::EnvoyCheck,
    ];

    /// Presents `token` to `app` on this surface: `Ok` when accepted, else
    /// the reason of the refusal.
    async fn present(self, app: &TestApp, token: &str) -> Result<(), String> {
        match self {
            Self::GrpcVerify => app.verify(token).await.map(drop).map_err(|s| reason(&s)),
            Self::GrpcLogout => app.logout(token).await.map(drop).map_err(|s| reason(&s)),
            Self::GrpcWebLogout => {
                let response = app
                    .post("/auth.v1.AuthService/Logout")
                    .header("content-type", "application/grpc-web+proto")
                    .header("x-grpc-web", "1")
                    .bearer_auth(token)
                    // An empty LogoutRequest in one uncompressed frame.
                    .body(vec![0u8; 5])
                    .send()
                    .await
                    .expect("grpc-web response");
                let in_headers = response
                    .headers()
                    .get("grpc-status")
                    .map(|value| value.to_str().expect("ascii").to_owned());
                let body = response.bytes().await.expect("body");
                let status = in_headers.unwrap_or_else(|| {
                    let trailers = String::from_utf8_lossy(&body);
                    let after = trailers.split("grpc-status:").nth(1).expect("grpc-status");
                    after
                        .split("\r\n")
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                });
                if status == "0" {
                    Ok(())
                } else {
                    Err(format!("grpc-status {status}"))
                }
            }
            Self::RestVerify => {
                rest_outcome(
                    app.post_json("/verify", json!({"access_token": token}))
                        .await,
                )
                .await
            }
            Self::RestMe => {
                rest_outcome(
                    app.get("/user/me")
                        .bearer_auth(token)
                        .send()
                        .await
                        .expect("me"),
                )
                .await
            }
            Self::RestLogout => rest_outcome(app.rest_logout(token).await).await,
            Self::ForwardAuth => {
                let response = app.get("/auth/forward").bearer_auth(token).send().await;
                rest_outcome(response.expect("forward auth")).await
            }
            Self::EnvoyCheck => {
                let headers =
                    HashMap::from([("authorization".to_owned(), format!("Bearer {token}"))]);
                let request = CheckRequest {
                    attributes: Some(AttributeContext {
                        request: Some(Request {
                            http: Some(HttpRequest {
                                headers,
                                ..HttpRequest::default()
                            }),
                            ..Request::default()
                        }),
                        ..AttributeContext::default()
                    }),
                };
                let response = AuthorizationClient::new(app.channel.clone())
                    .check(request)
                    .await
                    .expect("Check answers")
                    .into_inner();
                match response.http_response {
                    Some(HttpResponse::OkResponse(_)) => Ok(()),
                    Some(HttpResponse::DeniedResponse(denied)) => {
                        let body: Value = serde_json::from_str(&denied.body).expect("problem");
                        Err(body["reason"].as_str().unwrap_or_default().to_owned())
                    }
                    other => Err(format!("no decision: {other:?}")),
                }
            }
        }
    }
}

/// `Ok` for a 200, else the problem's reason.
async fn rest_outcome(response: reqwest::Response) -> Result<(), String> {
    if response.status() == 200 {
        return Ok(());
    }
    let (_, reason, _) = problem(response).await;
    Err(reason)
}

#[tokio::test]
async fn the_jwks_lets_another_service_verify_tokens_itself() {
    let app = TestApp::spawn().await;
    let token = app.registered_token("Bea").await;

    let set = jwks(&app).await;

    let jwk = set
        .find(&kid_of(&token))
        .expect("the token's kid is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["authd"]);
    validation.set_issuer(&["authd"]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("verifies locally")
    .claims;
    assert_eq!(claims["username"], "Bea");
    let raw: Value = app
        .get("/.well-known/jwks.json")
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    for key in raw["keys"].as_array().expect("keys") {
        assert!(key.get("d").is_none(), "no private key material: {key}");
        assert_eq!(
            (
                key["kty"].as_str(),
                key["crv"].as_str(),
                key["alg"].as_str(),
                key["use"].as_str()
            ),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
        );
    }
}

#[tokio::test]
async fn get_jwks_over_grpc_matches_the_http_document() {
    let app = TestApp::spawn().await;

    let keys = app
        .client
        .clone()
        .get_jwks(authd::grpc::pb::GetJwksRequest {})
        .await
        .expect("keys")
        .into_inner()
        .keys;

    let set = jwks(&app).await;
    assert_eq!(keys.len(), set.keys.len());
    for key in keys {
        let published = set.find(&key.kid).expect("same kid over HTTP");
        let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) = &published.algorithm else {
            panic!("an OKP key");
        };
        assert_eq!(okp.x, key.x);
        assert_eq!(
            (
                key.kty.as_str(),
                key.crv.as_str(),
                key.alg.as_str(),
                key.r#use.as_str()
            ),
            ("OKP", "Ed25519", "EdDSA", "sig")
        );
    }
}

#[tokio::test]
async fn a_rotated_key_is_published_first_then_signs_while_old_tokens_stay_valid() {
    let app = TestApp::spawn_with(|settings| {
        settings.key_refresh_interval = Duration::from_millis(200);
        // This test logs in until the new key signs.
        settings.login_rate_per_address = None;
    })
    .await;
    let old_token = app.registered_token("Cole").await;
    let old_kid = kid_of(&old_token);

    let new_kid = rotate(&app.database.url, "200ms").await;
    assert_ne!(new_kid, old_kid);

    let token = login_signed_by(&app, "Cole", &new_kid).await;
    assert!(jwks(&app).await.find(&new_kid).is_some());
    app.verify(&token)
        .await
        .expect("tokens signed by the new key are valid");
    app.verify(&old_token)
        .await
        .expect("tokens of the old key stay valid until they expire");
}

#[tokio::test]
async fn rotation_across_instances_with_different_refresh_intervals_never_refuses_a_good_token() {
    let quick = TestApp::spawn_with(|settings| {
        settings.key_refresh_interval = Duration::from_millis(100);
        // This test logs in until the new key signs, then once per surface.
        settings.login_rate_per_address = None;
    })
    .await;
    let username = unique_username();
    let old_token = quick.registered_token(&username).await;
    // One slow instance per surface, so that on each the surface under
    // test is the first to meet the new key.
    let mut slow = Vec::new();
    for surface in Surface::ALL {
        let app = quick
            .spawn_beside_with(|settings| {
                settings.key_refresh_interval = Duration::from_secs(3600);
                settings.database_max_connections = 2;
            })
            .await;
        slow.push((surface, app));
    }

    // Rotated with the quick instance's activation delay (200 ms): the slow
    // ones will not have refreshed their keys when it signs.
    let new_kid = rotate(&quick.database.url, "100ms").await;
    login_signed_by(&quick, &username, &new_kid).await;

    let mut refused = Vec::new();
    for (surface, app) in &slow {
        let token = login_signed_by(&quick, &username, &new_kid).await;
        if let Err(reason) = surface.present(app, &token).await {
            refused.push(format!("{surface:?}: {reason}"));
        }
    }
    assert!(
        refused.is_empty(),
        "tokens of the rotated key refused: {refused:?}"
    );
    let (_, slow) = &slow[0];
    slow.verify(&old_token)
        .await
        .expect("tokens of the old key stay valid");
    // A key that exists nowhere is refused as before, after the reload.
    let forged = token_of_unknown_key(&new_kid.chars().rev().collect::<String>());
    assert_eq!(
        Surface::GrpcVerify.present(slow, &forged).await,
        Err("TOKEN_INVALID_SIGNATURE".to_owned())
    );
    assert_eq!(
        Surface::RestMe.present(slow, &forged).await,
        Err("TOKEN_INVALID_SIGNATURE".to_owned())
    );
}

#[tokio::test]
async fn a_flood_of_tokens_naming_unknown_keys_reloads_the_keys_about_once_a_second() {
    let database = TestDatabase::create().await;
    // A process of its own, so that its log counts its reloads only.
    let (mut authd, address, _, log) = spawn_authd_process_logged(
        &[],
        &[
            "--database-url",
            &database.url,
            "--key-refresh-interval",
            "1h",
            // The whole flood in flight at once, on one connection.
            "--max-concurrent-streams",
            "2000",
        ],
    )
    .await;
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to authd");
    let client = AuthServiceClient::new(channel);
    let forged: Vec<String> = (0..1000)
        .map(|_| token_of_unknown_key(&uuid::Uuid::new_v4().simple().to_string()[..11]))
        .collect();

    let started = std::time::Instant::now();
    let outcomes = futures::future::join_all(forged.into_iter().map(|token| {
        let mut client = client.clone();
        async move {
            client
                .verify(VerifyRequest {
                    access_token: token,
                })
                .await
        }
    }))
    .await;
    let elapsed = started.elapsed();

    for outcome in outcomes {
        assert_refused(outcome, Code::Unauthenticated, "TOKEN_INVALID_SIGNATURE");
    }
    let reloads = log
        .lock()
        .expect("log")
        .iter()
        .filter(|line| line.contains("reloading the signing keys"))
        .count() as u64;
    assert!(
        (1..=2 + elapsed.as_secs()).contains(&reloads),
        "{reloads} reloads for 1000 unknown keys in {elapsed:?}"
    );
    terminate(&mut authd).await;
}

#[tokio::test]
async fn the_jwks_is_cached_for_less_than_a_rotated_key_takes_to_sign() {
    for interval in [Duration::from_millis(200), Duration::from_secs(90)] {
        let app = TestApp::spawn_with(|settings| settings.key_refresh_interval = interval).await;

        let response = app
            .get("/.well-known/jwks.json")
            .send()
            .await
            .expect("response");

        let cache_control = response.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let max_age: u64 = cache_control
            .strip_prefix("public, max-age=")
            .and_then(|seconds| seconds.parse().ok())
            .unwrap_or_else(|| panic!("{cache_control}"));
        // Published at most one refresh interval after the rotation, signing
        // one activation delay after it, clocks apart by the leeway at most.
        let published_to_signing = app.settings.key_activation_delay() - interval;
        assert!(
            Duration::from_secs(max_age) <= published_to_signing.saturating_sub(CLOCK_LEEWAY),
            "{cache_control} with a {interval:?} refresh interval"
        );
        assert_eq!(
            Duration::from_secs(max_age),
            app.settings.jwks_max_age(),
            "{cache_control}"
        );
    }
}

#[tokio::test]
async fn a_key_from_a_pem_file_signs_and_is_published() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("signing.pem");
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let pem = key.to_pkcs8_pem(Default::default()).expect("pem");
    std::fs::write(&path, pem.as_bytes()).expect("write");
    let app = TestApp::spawn_with(|settings| settings.signing_key_files = vec![path.clone()]).await;

    let token = app.registered_token("Dora").await;

    let kid = kid_of(&token);
    let published = jwks(&app).await;
    let jwk = published.find(&kid).expect("published");
    let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
        panic!("an OKP key");
    };
    assert_eq!(
        okp.x,
        URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())
    );
    app.verify(&token).await.expect("valid");
}

#[tokio::test]
async fn an_unreadable_key_file_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("not-a-key.pem");
    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let database = crate::helpers::TestDatabase::create().await;

    let output = authd_command()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database.url,
            "--signing-key-file",
        ])
        .arg(&path)
        .output()
        .await
        .expect("runs");

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a PKCS#8 PEM Ed25519 private key"),
        "{stderr}"
    );
    assert!(!stderr.contains("AAAA"), "{stderr}");
}

/// Runs `authd ARGS...` (an operator command); its standard output. It
/// must succeed and log nothing.
async fn operator(args: &[&str]) -> String {
    let output = authd_command()
        .args(args)
        .output()
        .await
        .expect("authd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "an operator command logged: {stderr}");
    String::from_utf8(output.stdout).expect("utf-8")
}

fn time_after(text: &str, words: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let rest = text
        .split_once(words)
        .unwrap_or_else(|| panic!("{words:?} not in {text:?}"))
        .1;
    let time = rest.split([' ', '\t', ',', ')']).find(|w| !w.is_empty());
    chrono::DateTime::parse_from_rfc3339(time.expect("a time")).expect("an RFC 3339 time")
}

#[tokio::test]
async fn keys_rotate_says_when_the_key_signs_at_the_latest_and_keys_list_marks_the_signing_key() {
    let app = TestApp::spawn().await;
    let url = &app.database.url;
    let old_kid = kid_of(&app.registered_token(&unique_username()).await);

    let before = chrono::Utc::now();
    let rotated = operator(&[
        "--database-url",
        url,
        "--key-refresh-interval",
        "1m",
        "keys",
        "rotate",
    ])
    .await;
    let after = chrono::Utc::now();

    let new_kid = rotated.split('\t').next().expect("kid").to_owned();
    let earliest = time_after(&rotated, "not before ");
    let latest = time_after(&rotated, "by ");
    assert!(
        earliest >= before + chrono::TimeDelta::seconds(119),
        "{rotated}"
    );
    // Instances take it up at their first key refresh after it activates.
    assert!(
        latest >= earliest + chrono::TimeDelta::seconds(60),
        "{rotated}"
    );
    assert!(
        latest <= after + chrono::TimeDelta::seconds(181),
        "{rotated}"
    );

    let listed = operator(&["keys", "list", "--database-url", url]).await;
    let line_of = |kid: &str| {
        listed
            .lines()
            .find(|line| line.starts_with(kid))
            .unwrap_or_else(|| panic!("{kid} not listed: {listed}"))
            .to_owned()
    };
    assert!(line_of(&old_kid).ends_with("signing"), "{listed}");
    assert!(line_of(&new_kid).contains("not before"), "{listed}");
    assert!(!line_of(&new_kid).ends_with("signing"), "{listed}");
}
