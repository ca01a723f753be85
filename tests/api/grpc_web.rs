//! grpc-web as browsers speak it, in both encodings, over HTTP/1.1 and
//! HTTP/2, with raw HTTP requests (the framing is the point under test).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use prost::Message;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use authd::grpc::pb::{
    LogoutRequest, RegisterRequest, RegisterResponse, VerifyRequest, VerifyResponse,
};

use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, assert_refused};

#[derive(Debug, Clone, Copy)]
pub enum Encoding {
    Binary,
    Text,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Binary => "application/grpc-web+proto",
            Self::Text => "application/grpc-web-text",
        }
    }
}

/// What a grpc-web call returned: its message, if any, and its status.
#[derive(Debug)]
pub struct Reply {
    pub message: Option<Vec<u8>>,
    pub grpc_status: String,
    pub grpc_message: String,
}

fn frame(message: &impl Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&payload);
    framed
}

/// Decodes grpc-web-text: base64 that may be several padded chunks one
/// after another; each 4-character group decodes on its own.
fn decode_text(body: &[u8]) -> Vec<u8> {
    body.chunks(4)
        .flat_map(|group| STANDARD.decode(group).expect("base64 group"))
        .collect()
}

fn parse_trailers(block: &[u8], reply: &mut Reply) {
    for line in String::from_utf8_lossy(block).split("\r\n") {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "grpc-status" => reply.grpc_status = value.trim().to_owned(),
                "grpc-message" => reply.grpc_message = value.trim().to_owned(),
                _ => {}
            }
        }
    }
}

pub async fn call(
    client: &reqwest::Client,
    app: &TestApp,
    encoding: Encoding,
    method: &str,
    message: &impl Message,
    token: Option<&str>,
) -> Reply {
    let framed = frame(message);
    let body = match encoding {
        Encoding::Binary => framed,
        Encoding::Text => STANDARD.encode(framed).into_bytes(),
    };
    let mut request = client
        .post(format!("{}/auth.v1.AuthService/{method}", app.base_url))
        .header(CONTENT_TYPE, encoding.content_type())
        // grpc-web answers in the encoding the client accepts.
        .header(ACCEPT, encoding.content_type())
        .header("x-grpc-web", "1")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("grpc-web response");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with(encoding.content_type()),
        "{content_type}"
    );
    let mut reply = Reply {
        message: None,
        grpc_status: String::new(),
        grpc_message: String::new(),
    };
    // A call that fails before any message carries its status in headers.
    for (name, value) in response.headers() {
        if name == "grpc-status" || name == "grpc-message" {
            parse_trailers(
                format!("{name}:{}", value.to_str().expect("ascii")).as_bytes(),
                &mut reply,
            );
        }
    }
    let raw = response.bytes().await.expect("body");
    let mut bytes: &[u8] = &match encoding {
        Encoding::Binary => raw.to_vec(),
        Encoding::Text => decode_text(&raw),
    };
    while bytes.len() >= 5 {
        let flags = bytes[0];
        let length = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize;
        let payload = &bytes[5..5 + length];
        if flags & 0x80 == 0 {
            reply.message = Some(payload.to_vec());
        } else {
            parse_trailers(payload, &mut reply);
        }
        bytes = &bytes[5 + length..];
    }
    reply
}

fn clients() -> [(&'static str, reqwest::Client); 2] {
    [
        (
            "HTTP/1.1",
            reqwest::Client::builder()
                .http1_only()
                .build()
                .expect("client"),
        ),
        (
            "HTTP/2",
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .expect("client"),
        ),
    ]
}

#[tokio::test]
async fn every_rpc_works_over_grpc_web_in_both_encodings_and_http_versions() {
    let app = TestApp::spawn().await;

    for (version, client) in clients() {
        for encoding in [Encoding::Binary, Encoding::Text] {
            let username =
                format!("web-{}-{encoding:?}", version.replace(['/', '.'], "")).to_lowercase();
            let register = RegisterRequest {
                username: username.clone(),
                password: PASSWORD.into(),
                email: String::new(),
            };

            let reply = call(&client, &app, encoding, "Register", &register, None).await;
            assert_eq!(reply.grpc_status, "0", "{version} {encoding:?}: {reply:?}");
            let registered = RegisterResponse::decode(reply.message.expect("message").as_slice())
                .expect("decode");
            let token = registered.access_token;

            let verify = VerifyRequest {
                access_token: token.clone(),
            };
            let reply = call(&client, &app, encoding, "Verify", &verify, None).await;
            assert_eq!(reply.grpc_status, "0", "{version} {encoding:?}: {reply:?}");
            let verified =
                VerifyResponse::decode(reply.message.expect("message").as_slice()).expect("decode");
            assert_eq!(verified.user.expect("user").username, username);

            let reply = call(
                &client,
                &app,
                encoding,
                "Logout",
                &LogoutRequest {},
                Some(&token),
            )
            .await;
            assert_eq!(reply.grpc_status, "0", "{version} {encoding:?}: {reply:?}");

            let reply = call(&client, &app, encoding, "Verify", &verify, None).await;
            assert_eq!(
                reply.grpc_status, "16",
                "UNAUTHENTICATED, {version} {encoding:?}: {reply:?}"
            );
            assert!(reply.grpc_message.contains("revoked"), "{reply:?}");
            // The same revocation holds on the other surfaces.
            assert_refused(
                app.verify(&token).await,
                Code::Unauthenticated,
                "TOKEN_REVOKED",
            );
            assert_eq!(app.rest_logout(&token).await.status(), 401);
        }
    }
}

#[tokio::test]
async fn grpc_web_errors_carry_the_status() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let taken = RegisterRequest {
        username: "Lara".into(),
        password: PASSWORD.into(),
        email: String::new(),
    };
    call(&client, &app, Encoding::Binary, "Register", &taken, None).await;

    let reply = call(&client, &app, Encoding::Binary, "Register", &taken, None).await;

    assert_eq!(reply.grpc_status, "6", "ALREADY_EXISTS: {reply:?}");
}

#[tokio::test]
async fn a_login_with_a_second_factor_completes_over_grpc_web_and_verify_says_so() {
    use authd::grpc::pb::{
        CompleteLoginRequest, CompleteLoginResponse, LoginRequest, LoginResponse,
        complete_login_request::Proof,
    };
    let app = TestApp::spawn().await;
    let now = crate::second_factor::steady_now().await;
    let account = crate::second_factor::enroll_at(&app, now, -1).await;
    let (_, client) = clients().into_iter().next().expect("HTTP/1.1");
    let login = LoginRequest {
        username: account.username.clone(),
        password: PASSWORD.into(),
    };
    let reply = call(&client, &app, Encoding::Text, "Login", &login, None).await;
    assert_eq!(reply.grpc_status, "0", "{reply:?}");
    let answered =
        LoginResponse::decode(reply.message.expect("message").as_slice()).expect("decode");
    assert!(answered.access_token.is_empty());
    let ticket = answered.mfa_required.expect("mfa_required").ticket;

    let complete = CompleteLoginRequest {
        ticket,
        proof: Some(Proof::TotpCode(crate::second_factor::code(
            &account.secret,
            now,
            0,
        ))),
    };
    let reply = call(
        &client,
        &app,
        Encoding::Text,
        "CompleteLogin",
        &complete,
        None,
    )
    .await;
    assert_eq!(reply.grpc_status, "0", "{reply:?}");
    let session =
        CompleteLoginResponse::decode(reply.message.expect("message").as_slice()).expect("decode");
    let verify = VerifyRequest {
        access_token: session.access_token,
    };
    let reply = call(&client, &app, Encoding::Binary, "Verify", &verify, None).await;
    let verified =
        VerifyResponse::decode(reply.message.expect("message").as_slice()).expect("decode");
    assert_eq!(verified.amr, ["pwd", "otp", "mfa"]);
    assert_eq!(verified.assurance_level, 2);
    assert!(verified.auth_time.is_some());
}
