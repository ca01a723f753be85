//! Genuine tokens, edited by the fuzzer: bytes flipped, set, inserted or
//! removed, and pieces spliced in from another user's token or from a token
//! signed with a foreign key that carries the genuine `kid`.
//!
//! Property: no panic, and a token that still verifies is one of the genuine
//! tokens: its signed part (header.payload) is byte-for-byte that of a token
//! the service issued, and the claims are exactly that token's. So a
//! forgery, a cut-and-paste between tokens or a key confusion never passes.
#![no_main]

mod common;

use std::sync::LazyLock;

use authd::domain::{Authentication, Claims};
use authd::http::request_token::bearer_token;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Source {
    Alice,
    Bob,
    Foreign,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Xor {
        at: u16,
        mask: u8,
    },
    Set {
        at: u16,
        byte: u8,
    },
    Insert {
        at: u16,
        bytes: Vec<u8>,
    },
    Remove {
        at: u16,
        len: u8,
    },
    /// Replaces `self[at..at+len]` with `from[start..start+len2]`.
    Splice {
        from: Source,
        start: u16,
        len2: u16,
        at: u16,
        len: u16,
    },
    /// Replaces dot-separated segment `index` with the same one of `from`.
    Segment {
        from: Source,
        index: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    base: Source,
    edits: Vec<Edit>,
}

struct Token {
    text: Vec<u8>,
    claims: Claims,
}

static TOKENS: LazyLock<[Token; 3]> = LazyLock::new(|| {
    let issue = |fixture: &common::Fixture, name: &str| {
        let token = fixture
            .service
            .issue(
                Uuid::now_v7(),
                name,
                Uuid::now_v7(),
                &Authentication::password(chrono::Utc::now()),
                i64::MAX,
            )
            .unwrap()
            .token;
        let claims = Claims::clone(&fixture.service.verify_in_memory(&token).unwrap());
        Token {
            text: token.into_bytes(),
            claims,
        }
    };
    [
        issue(&common::GENUINE, "alice"),
        issue(&common::GENUINE, "bob"),
        issue(&common::FOREIGN, "mallory"),
    ]
});

fn token(source: Source) -> &'static Token {
    &TOKENS[source as usize]
}

fn clamp(at: u16, len: usize) -> usize {
    usize::from(at).min(len)
}

fn signed_part(token: &[u8]) -> &[u8] {
    let end = token
        .iter()
        .rposition(|&b| b == b'.')
        .unwrap_or(token.len());
    &token[..end]
}

fuzz_target!(|input: Input| {
    let mut text = token(input.base).text.clone();
    for edit in input.edits.iter().take(16) {
        match *edit {
            Edit::Xor { at, mask } if !text.is_empty() => {
                let i = usize::from(at) % text.len();
                text[i] ^= mask;
            }
            Edit::Set { at, byte } if !text.is_empty() => {
                let i = usize::from(at) % text.len();
                text[i] = byte;
            }
            Edit::Insert { at, ref bytes } => {
                let i = clamp(at, text.len());
                text.splice(i..i, bytes.iter().copied());
            }
            Edit::Remove { at, len } => {
                let i = clamp(at, text.len());
                let j = (i + usize::from(len)).min(text.len());
                text.drain(i..j);
            }
            Edit::Splice {
                from,
                start,
                len2,
                at,
                len,
            } => {
                let other = &token(from).text;
                let s = clamp(start, other.len());
                let e = (s + usize::from(len2)).min(other.len());
                let i = clamp(at, text.len());
                let j = (i + usize::from(len)).min(text.len());
                text.splice(i..j, other[s..e].iter().copied());
            }
            Edit::Segment { from, index } => {
                let mut ours: Vec<Vec<u8>> =
                    text.split(|&b| b == b'.').map(<[u8]>::to_vec).collect();
                let theirs: Vec<&[u8]> = token(from).text.split(|&b| b == b'.').collect();
                let k = usize::from(index) % 3;
                if k < ours.len() {
                    ours[k] = theirs[k].to_vec();
                }
                text = ours.join(&b'.');
            }
            _ => {}
        }
    }

    let tokens = &common::GENUINE.service;
    let as_str = String::from_utf8_lossy(&text);
    // The header path trims the value and the spaces after the scheme, so
    // the token it checks is this part of the text.
    let in_header = as_str.trim_end().trim_start_matches(' ');
    let outcomes = [
        (&*as_str, tokens.verify_in_memory(&as_str)),
        (
            in_header,
            bearer_token(std::iter::once(format!("Bearer {as_str}").as_bytes()))
                .expect("one value")
                .and_then(|token| tokens.verify_in_memory(token)),
        ),
    ];
    for (checked, outcome) in outcomes {
        if let Ok(claims) = outcome {
            let origin = TOKENS[..2]
                .iter()
                .find(|genuine| signed_part(&genuine.text) == signed_part(checked.as_bytes()))
                .unwrap_or_else(|| panic!("forged token verified: {checked:?} -> {claims:?}"));
            assert_eq!(*claims, origin.claims, "claims differ for {checked:?}");
        }
    }
});
