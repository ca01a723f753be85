//! Arbitrary bytes through every entry point of the token check:
//! `verify_in_memory` (the token itself) and `bearer_token` (the
//! `Authorization` values, raw gRPC metadata / HTTP header bytes) before it.
//!
//! Property: none of them panics, and nothing verifies. The key is generated
//! afresh in each process and never leaves it, so an accepted input would be
//! a token forged without the key.
#![no_main]

mod common;

use authd::domain::{Claims, TokenRejection};
use authd::http::request_token::bearer_token;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

/// The check of the `Authorization` values `values`.
fn check_header<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Option<Result<Arc<Claims>, TokenRejection>> {
    let tokens = &common::GENUINE.service;
    bearer_token(values).map(|token| token.and_then(|token| tokens.verify_in_memory(token)))
}

fuzz_target!(|data: &[u8]| {
    let tokens = &common::GENUINE.service;
    let text = String::from_utf8_lossy(data);

    assert!(tokens.verify_in_memory(&text).is_err());
    assert!(matches!(
        check_header(std::iter::once(text.as_bytes())),
        Some(Err(_))
    ));
    // The same bytes behind a valid scheme, so they reach the JWT parser.
    assert!(matches!(
        check_header(std::iter::once(format!("Bearer {text}").as_bytes())),
        Some(Err(_))
    ));

    // Raw bytes (not necessarily UTF-8) as one header value, and split at
    // newlines as several values.
    assert!(matches!(check_header(std::iter::once(data)), Some(Err(_))));
    assert!(matches!(
        check_header(data.split(|&b| b == b'\n')),
        Some(Err(_))
    ));
});
