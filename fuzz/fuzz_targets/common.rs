//! What every target shares: a token service on a freshly generated key,
//! built once per process, and a second service ("foreign") whose key has
//! the same `kid` but different key material, as an attacker's would.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use authd::domain::SigningKeyRecord;
use authd::domain::{Revocations, TokenService, TokenSettings, generate_signing_key};
use chrono::Utc;

pub struct Fixture {
    pub service: TokenService,
    pub key: SigningKeyRecord,
}

fn fixture(key: SigningKeyRecord) -> Fixture {
    let settings = TokenSettings {
        issuer: "authd".into(),
        previous_issuers: Vec::new(),
        audience: "authd".into(),
        lifetime: Duration::from_secs(3600),
        verified_token_cache: 1_000,
    };
    let revocations = Arc::new(Revocations::new(settings.lifetime).expect("revocations"));
    let service = TokenService::new(
        Vec::new(),
        std::slice::from_ref(&key),
        settings,
        revocations,
    )
    .expect("token service");
    Fixture { service, key }
}

/// The service under test.
pub static GENUINE: LazyLock<Fixture> =
    LazyLock::new(|| fixture(generate_signing_key(Utc::now()).expect("signing key")));

/// Same `kid` as [`GENUINE`], another key pair: nothing it signs may verify.
#[allow(dead_code)]
pub static FOREIGN: LazyLock<Fixture> = LazyLock::new(|| {
    let mut key = generate_signing_key(Utc::now()).expect("signing key");
    key.kid = GENUINE.key.kid.clone();
    fixture(key)
});
