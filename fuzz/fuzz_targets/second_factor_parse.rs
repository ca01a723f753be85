//! The parsers of what a second-factor request carries, on arbitrary
//! strings: `MFA_TICKET.parse`, `RecoveryCode::parse`, `TotpCode::parse`.
//!
//! Properties: no panic; an accepted ticket is exactly its prefix and 43
//! base64url characters, and never also a refresh token; an accepted
//! recovery code shows as three groups of five from its alphabet and reads
//! back as itself; a TOTP code is accepted exactly when it is six ASCII
//! digits once spaces are removed.
#![no_main]

use authd::domain::opaque_tokens::{MFA_TICKET, REFRESH_TOKEN};
use authd::domain::{RecoveryCode, TotpCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    if let Some(hash) = MFA_TICKET.parse(raw) {
        let body = raw
            .strip_prefix(MFA_TICKET.prefix())
            .unwrap_or_else(|| panic!("accepted without the prefix: {raw:?}"));
        assert_eq!(body.len(), 43, "{raw:?}");
        assert_eq!(hash.len(), 43, "{hash:?}");
        assert!(REFRESH_TOKEN.parse(raw).is_none(), "{raw:?}");
    }

    if let Ok(code) = RecoveryCode::parse(raw) {
        let shown = code.display();
        assert_eq!(shown.len(), 17, "{shown:?} from {raw:?}");
        assert!(
            shown.bytes().enumerate().all(|(i, b)| if i % 6 == 5 {
                b == b'-'
            } else {
                b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ".contains(&b)
            }),
            "{shown:?} from {raw:?}"
        );
        assert!(
            RecoveryCode::parse(&shown).is_ok_and(|again| again == code),
            "{shown:?}"
        );
    }

    let digits: Vec<char> = raw.chars().filter(|c| *c != ' ').collect();
    let six_digits =
        raw.len() <= 24 && digits.len() == 6 && digits.iter().all(char::is_ascii_digit);
    assert_eq!(TotpCode::parse(raw).is_ok(), six_digits, "{raw:?}");
});
