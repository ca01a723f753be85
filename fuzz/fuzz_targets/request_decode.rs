//! Arbitrary bytes as the protobuf body of Register, Login and Verify, then
//! what the handlers do with a decoded request: validate the credentials
//! (`Credentials::for_registration` / `for_login`), check the token, and
//! turn a refusal into the gRPC status and the REST problem+json response.
//!
//! Property: no panic anywhere on that path; an accepted username keeps the
//! length bounds; no token in a Verify request verifies (the key never leaves
//! the process, so one that did would be forged).
#![no_main]

mod common;

use authd::domain::{AuthError, Credentials, Username};
use authd::grpc::pb::{LoginRequest, RegisterRequest, VerifyRequest};
use axum::response::IntoResponse as _;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fn refuse(error: AuthError) {
    assert!(matches!(error, AuthError::InvalidInput(ref violations) if !violations.is_empty()));
    // The two surfaces render the same error; do both.
    let status = tonic::Status::from(error);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

fn check(outcome: Result<Credentials, AuthError>, again: impl FnOnce() -> AuthError) {
    match outcome {
        Ok(credentials) => {
            let chars = credentials.username.as_str().chars().count();
            assert!((Username::MIN_CHARS..=Username::MAX_CHARS).contains(&chars));
        }
        Err(error) => {
            refuse(error);
            let response = authd::http::problem::Problem::from(again()).into_response();
            assert_eq!(response.status(), 400);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = RegisterRequest::decode(data) {
        let attempt = || Credentials::for_registration(&request.username, request.password.clone());
        check(attempt(), || attempt().unwrap_err());
    }
    if let Ok(request) = LoginRequest::decode(data) {
        let attempt = || Credentials::for_login(&request.username, request.password.clone());
        check(attempt(), || attempt().unwrap_err());
    }
    if let Ok(request) = VerifyRequest::decode(data) {
        let tokens = &common::GENUINE.service;
        match tokens.verify_in_memory(&request.access_token) {
            Ok(claims) => panic!("forged token verified: {claims:?}"),
            Err(rejection) => {
                let response =
                    authd::http::problem::Problem::from(AuthError::from(rejection)).into_response();
                assert_eq!(response.status(), 401);
                assert!(response.headers().contains_key("www-authenticate"));
            }
        }
    }
});
