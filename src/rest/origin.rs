//! Cookies go along with requests that other origins make: a form on a
//! sibling subdomain or another port of the same host is "same-site", so
//! `SameSite=Strict` lets it through. A request that changes state and
//! is authenticated by a cookie alone must therefore come from authd's own
//! origin, or from an origin allowed by `--cors-allowed-origins` (which may
//! send credentials). A bearer header cannot be forged that way and needs
//! no such check.

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, HeaderValue};

/// True unless the browser says the request comes from an origin that is
/// neither this one nor an allowed one; refuse the others with
/// `Problem::cross_origin`. Modern browsers say so with `Sec-Fetch-Site`;
/// older ones with `Origin` alone, compared with `Host`. Requests with
/// neither come from programs, which no page can steer.
pub fn from_this_or_allowed_origin(headers: &HeaderMap, allowed: &[HeaderValue]) -> bool {
    let origin = headers.get(ORIGIN);
    if origin.is_some_and(|origin| allowed.contains(origin)) {
        return true;
    }
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        Some(site) => site == b"same-origin" || site == b"none",
        None => origin.is_none_or(|origin| is_own_origin(origin, headers.get(HOST))),
    }
}

fn is_own_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let origin = origin.as_bytes();
    let authority = origin
        .strip_prefix(b"https://")
        .or_else(|| origin.strip_prefix(b"http://"));
    authority.is_some_and(|authority| host.is_some_and(|host| host.as_bytes() == authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn only_this_origin_and_allowed_ones_pass() {
        let allowed = [HeaderValue::from_static("https://app.example.com")];
        for passing in [
            headers(&[]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
            headers(&[
                ("origin", "https://auth.example.com"),
                ("host", "auth.example.com"),
            ]),
            headers(&[
                ("origin", "https://app.example.com"),
                ("sec-fetch-site", "same-site"),
            ]),
        ] {
            assert!(
                from_this_or_allowed_origin(&passing, &allowed),
                "{passing:?}"
            );
        }
        for refused in [
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[
                ("origin", "https://auth.example.com"),
                ("sec-fetch-site", "same-site"),
            ]),
            headers(&[
                ("origin", "http://evil.example.com"),
                ("host", "auth.example.com"),
            ]),
            headers(&[("origin", "null"), ("host", "auth.example.com")]),
        ] {
            assert!(
                !from_this_or_allowed_origin(&refused, &allowed),
                "{refused:?}"
            );
        }
    }
}
