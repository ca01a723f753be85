//! Arbitrary bytes through every entry point of the token check: `verify`,
//! `verify_authorization` (the `Bearer <token>` header) and
//! `verify_authorization_values` (raw gRPC metadata / HTTP header bytes).
//!
//! Property: none of them panics, and nothing verifies. The key is generated
//! afresh in each process and never leaves it, so an accepted input would be
//! a token forged without the key.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tokens = &common::GENUINE.service;
    let text = String::from_utf8_lossy(data);

    assert!(tokens.verify(&text).is_err());
    assert!(tokens.verify_authorization(&text).is_err());
    // The same bytes behind a valid scheme, so they reach the JWT parser.
    assert!(
        tokens
            .verify_authorization(&format!("Bearer {text}"))
            .is_err()
    );

    // Raw bytes (not necessarily UTF-8) as one header value, and split at
    // newlines as several values.
    let one = tokens.verify_authorization_values(std::iter::once(data));
    assert!(matches!(one, Some(Err(_))));
    let many = tokens.verify_authorization_values(data.split(|&b| b == b'\n'));
    assert!(matches!(many, Some(Err(_))));
});
