//! What the end of a passkey ceremony carries, `credential_json`, on
//! arbitrary strings: checked against a real registration ceremony's state
//! as FinishPasskeyRegistration checks it, and parsed as FinishPasskeyLogin
//! parses an assertion.
//!
//! Properties: no panic; nothing registers from fuzz input (the ceremony's
//! challenge is 32 fresh random bytes); every refusal is one a client may
//! be told (PASSKEY_VERIFICATION_FAILED or USER_VERIFICATION_REQUIRED),
//! never an internal error.
#![no_main]

use std::sync::LazyLock;

use authd::domain::{AuthError, RelyingParty, Started, parse_assertion};
use libfuzzer_sys::fuzz_target;
use url::Url;
use uuid::Uuid;

static CEREMONY: LazyLock<(RelyingParty, Started)> = LazyLock::new(|| {
    let origin = Url::parse("http://localhost:8080").expect("an origin");
    let party = RelyingParty::new("localhost", &[origin]).expect("the origin is on the RP id");
    let started = party
        .start_registration(Uuid::now_v7(), "fuzz", &[])
        .expect("registration options");
    (party, started)
});

fuzz_target!(|raw: &str| {
    let (party, started) = &*CEREMONY;
    match party.finish_registration(&started.state, raw) {
        Ok(_) => panic!("a passkey registered from fuzz input: {raw:?}"),
        Err(AuthError::PasskeyVerificationFailed | AuthError::UserVerificationRequired) => {}
        Err(other) => panic!("{other:?} for {raw:?}"),
    }
    if let Err(error) = parse_assertion(raw) {
        assert!(
            matches!(error, AuthError::PasskeyVerificationFailed),
            "{error:?} for {raw:?}"
        );
    }
});
