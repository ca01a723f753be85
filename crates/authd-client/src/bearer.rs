//! Where a request carries its access token, read exactly as authd reads
//! it (`authd_token::bearer_token`), so a service and authd never disagree
//! about who is calling: the `Authorization: Bearer` header, else a cookie
//! when one is configured. A bad header is refused, never passed over for the
//! cookie, so a request cannot be read two ways.

use authd_token::{TokenRejection, bearer_token};
use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The token of a request; `Missing` when it carries none.
pub fn request_token<'a>(
    headers: &'a HeaderMap,
    cookie_name: Option<&str>,
) -> Result<&'a str, TokenRejection> {
    let values = headers.get_all(AUTHORIZATION);
    if let Some(token) = bearer_token(values.iter().map(|value| value.as_bytes())) {
        return token;
    }
    cookie_name
        .and_then(|name| cookie(headers, name))
        .ok_or(TokenRejection::Missing)
}

/// The value of the cookie `name` (RFC 6265 `Cookie` headers).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_bearer_header_is_read_as_authd_reads_it() {
        let read = |value: &str| {
            request_token(&headers(&[("authorization", value)]), None).map(str::to_owned)
        };
        assert_eq!(read("Bearer abc"), Ok("abc".to_owned()));
        assert_eq!(read("bEaReR   abc "), Ok("abc".to_owned()));
        for refused in ["Basic abc", "Bearer", "Bearer a b", "Bearerabc"] {
            assert_eq!(read(refused), Err(TokenRejection::Malformed), "{refused}");
        }
        let twice = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer a")]);
        assert_eq!(request_token(&twice, None), Err(TokenRejection::Malformed));
        assert_eq!(
            request_token(&HeaderMap::new(), None),
            Err(TokenRejection::Missing)
        );
    }

    #[test]
    fn the_cookie_is_read_only_without_a_header_and_when_configured() {
        let with_cookie = headers(&[("cookie", "theme=dark; authd_session=tok; x=y")]);
        assert_eq!(
            request_token(&with_cookie, Some("authd_session")),
            Ok("tok")
        );
        assert_eq!(
            request_token(&with_cookie, None),
            Err(TokenRejection::Missing)
        );

        let both = headers(&[
            ("cookie", "authd_session=tok"),
            ("authorization", "Basic x"),
        ]);
        assert_eq!(
            request_token(&both, Some("authd_session")),
            Err(TokenRejection::Malformed)
        );
    }
}
