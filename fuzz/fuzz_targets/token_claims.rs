//! Properly signed tokens whose header and payload the fuzzer edits: from a
//! valid header and valid claims, members are set to other values, removed,
//! or duplicated (before or after the original); or the JSON is replaced
//! outright. Signed with the service's own key, or with a foreign key that
//! carries the same `kid`. This reaches the checks behind the signature,
//! which mutating a genuine token cannot.
//!
//! Property: no panic; nothing signed by the foreign key verifies; and
//! whatever verifies satisfies the policy: header `alg` EdDSA, `typ`
//! at+jwt, our `kid`, no `crit` (null counts as none); claims with our
//! issuer and audience, not expired, not before their `nbf` (both give or
//! take the clock leeway).
#![no_main]

mod common;

use std::sync::LazyLock;

use authd::domain::CLOCK_LEEWAY;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const USER_ID: &str = "01a20ab2-7f11-74ba-b77a-ec6a007c16d9";
/// Member names and string values the checks care about; the fuzzer picks
/// one of these or any string. (An index past the end means our `kid`.)
const WORDS: &[&str] = &[
    "alg",
    "typ",
    "kid",
    "crit",
    "jku",
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "username",
    "authd",
    "EdDSA",
    "at+jwt",
    "application/at+jwt",
    "JWT",
    "none",
    USER_ID,
];

#[derive(Arbitrary, Debug)]
enum Part {
    Edited(Vec<Edit>),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Set(Word, Item),
    Remove(Word),
    Before(Word, Item),
    After(Word, Item),
}

#[derive(Arbitrary, Debug)]
enum Word {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Item {
    Null,
    Bool(bool),
    /// Seconds from now.
    Time(i32),
    Int(i64),
    Float(f64),
    Str(Word),
    Array(Vec<Item>),
    Object(Vec<(Word, Item)>),
}

impl Word {
    fn as_str(&self) -> &str {
        match self {
            Self::Known(i) => WORDS
                .get(usize::from(*i) % (WORDS.len() + 1))
                .copied()
                .unwrap_or(&common::GENUINE.key.kid),
            Self::Other(s) => s,
        }
    }
}

impl Item {
    fn to_json(&self, depth: u32) -> Value {
        let nested = |item: &Item| item.to_json(depth + 1);
        match self {
            _ if depth > 8 => Value::Null,
            Self::Null => Value::Null,
            Self::Bool(b) => json!(b),
            Self::Time(offset) => json!(Utc::now().timestamp() + i64::from(*offset)),
            Self::Int(n) => json!(n),
            Self::Float(f) => json!(f),
            Self::Str(word) => json!(word.as_str()),
            Self::Array(items) => items.iter().map(nested).collect(),
            Self::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(w, i)| (w.as_str().to_owned(), nested(i)))
                    .collect(),
            ),
        }
    }
}

/// The template edited as a list of members (so duplicates survive), as JSON.
fn render(template: Value, part: &Part) -> String {
    let edits = match part {
        Part::Raw(raw) => return raw.clone(),
        Part::Edited(edits) => edits,
    };
    let Value::Object(map) = template else {
        unreachable!()
    };
    let mut members: Vec<(String, Value)> = map.into_iter().collect();
    for edit in edits.iter().take(16) {
        match edit {
            Edit::Set(name, item) => {
                members.retain(|(n, _)| n != name.as_str());
                members.push((name.as_str().to_owned(), item.to_json(0)));
            }
            Edit::Remove(name) => members.retain(|(n, _)| n != name.as_str()),
            Edit::Before(name, item) => members.insert(0, (name.as_str().into(), item.to_json(0))),
            Edit::After(name, item) => members.push((name.as_str().into(), item.to_json(0))),
        }
    }
    let body: Vec<String> = members
        .iter()
        .map(|(n, v)| format!("{}:{v}", json!(n)))
        .collect();
    format!("{{{}}}", body.join(","))
}

static SIGNERS: LazyLock<[ed25519_dalek::SigningKey; 2]> = LazyLock::new(|| {
    [&common::GENUINE, &common::FOREIGN]
        .map(|f| ed25519_dalek::SigningKey::from_pkcs8_der(&f.key.private_key).unwrap())
});

fuzz_target!(|input: (bool, Part, Part)| {
    let (foreign, header, payload) = input;
    let now = Utc::now().timestamp();
    let kid = &common::GENUINE.key.kid;
    let header = render(
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}),
        &header,
    );
    let payload = render(
        json!({"iss": "authd", "sub": USER_ID, "aud": "authd", "exp": now + 3600,
               "nbf": now, "iat": now, "jti": "id", "username": "alice"}),
        &payload,
    );
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&header),
        URL_SAFE_NO_PAD.encode(&payload)
    );
    let signature = SIGNERS[usize::from(foreign)].sign(signing_input.as_bytes());
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );

    let Ok(claims) = common::GENUINE.service.verify_in_memory(&token) else {
        return;
    };
    let context = || format!("header {header} payload {payload} -> {claims:?}");
    assert!(!foreign, "foreign key accepted: {}", context());

    let header: Value = serde_json::from_str(&header).expect("accepted header is JSON");
    assert_eq!(header["alg"], "EdDSA", "{}", context());
    let typ = header["typ"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        typ == "at+jwt" || typ == "application/at+jwt",
        "{}",
        context()
    );
    assert_eq!(header["kid"], kid.as_str(), "{}", context());
    assert!(header.get("crit").is_none(), "{}", context());

    assert_eq!(claims.iss, "authd", "{}", context());
    assert_eq!(claims.aud, "authd", "{}", context());
    let now = Utc::now().timestamp();
    let leeway = i64::try_from(CLOCK_LEEWAY.as_secs()).unwrap();
    // One second of slack either way: the check ran a moment ago.
    assert!(claims.exp >= now - leeway - 1, "expired: {}", context());
    assert!(
        claims.nbf <= now + leeway + 1,
        "not yet valid: {}",
        context()
    );
});
