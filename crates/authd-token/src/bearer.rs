//! The token of an `Authorization` header, read one way for every surface
//! and every program that verifies authd's tokens, so that a service and
//! authd never disagree about who is calling.

use crate::TokenRejection;

/// The token of a request's `Authorization` values, given as raw bytes so
/// that every surface (gRPC metadata, HTTP headers) shares this reading.
/// `None` when there is none; more than one is ambiguous and refused.
pub fn bearer_token<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
) -> Option<Result<&'a str, TokenRejection>> {
    let first = values.next()?;
    if values.next().is_some() {
        return Some(Err(TokenRejection::Malformed));
    }
    Some(
        std::str::from_utf8(first)
            .map_err(|_| TokenRejection::Malformed)
            .and_then(bearer_credentials),
    )
}

/// The token of an `Authorization` value: `Bearer <token>`, the scheme
/// case-insensitive (RFC 7235), separated by spaces.
fn bearer_credentials(header: &str) -> Result<&str, TokenRejection> {
    let (scheme, token) = header
        .trim()
        .split_once(' ')
        .ok_or(TokenRejection::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenRejection::Malformed);
    }
    let token = token.trim_start_matches(' ');
    if token.contains(char::is_whitespace) {
        return Err(TokenRejection::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> Option<Result<&str, TokenRejection>> {
        bearer_token(std::iter::once(value.as_bytes()))
    }

    #[test]
    fn the_bearer_scheme_is_read_as_rfc_7235_says() {
        assert_eq!(one("Bearer abc"), Some(Ok("abc")));
        assert_eq!(one("bEaReR   abc "), Some(Ok("abc")));
        for refused in ["Basic abc", "Bearer", "Bearer a b", "Bearerabc"] {
            assert_eq!(
                one(refused),
                Some(Err(TokenRejection::Malformed)),
                "{refused}"
            );
        }
        assert_eq!(bearer_token(std::iter::empty()), None);
        assert_eq!(
            bearer_token([b"Bearer a".as_slice(), b"Bearer b"].into_iter()),
            Some(Err(TokenRejection::Malformed))
        );
        assert_eq!(
            bearer_token(std::iter::once(b"Bearer \xff".as_slice())),
            Some(Err(TokenRejection::Malformed))
        );
    }
}
