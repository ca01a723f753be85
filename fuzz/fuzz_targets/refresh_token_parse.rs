//! `REFRESH_TOKEN.parse` on arbitrary strings (second-factor tickets are
//! the same parser with another prefix).
//!
//! Properties: no panic; an accepted token is exactly the prefix and 43
//! base64url characters, so that one secret has exactly one spelling (a
//! second spelling of a retired token would pass for an unknown one and
//! dodge reuse detection); its hash has the stored form; and two different
//! accepted strings never share a hash.
#![no_main]

use authd::domain::opaque_tokens::REFRESH_TOKEN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    // Two candidates per input, one per line.
    let (first, second) = raw.split_once('\n').unwrap_or((raw, ""));
    let Some(hash) = REFRESH_TOKEN.parse(first) else {
        return;
    };
    let body = first
        .strip_prefix("authd_rt_")
        .unwrap_or_else(|| panic!("accepted without the prefix: {first:?}"));
    assert_eq!(body.len(), 43, "{first:?}");
    assert!(
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{first:?}"
    );
    assert_eq!(hash.len(), 43, "{hash:?}");
    if let Some(other) = REFRESH_TOKEN.parse(second) {
        assert_eq!(first == second, hash == other, "{first:?} {second:?}");
    }
});
