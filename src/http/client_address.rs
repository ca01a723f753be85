//! The address rate limits count a request against: the TCP peer, or, behind
//! a proxy the operator named, the address that proxy reports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::{HeaderMap, HeaderName};

/// Finds the client address of a request on any surface.
#[derive(Debug, Clone, Default)]
pub struct ClientAddressResolver {
    /// A header set by a trusted proxy, e.g. `x-forwarded-for`. Off by
    /// default: without a proxy that overwrites it, clients could forge it.
    trusted_header: Option<HeaderName>,
}

impl ClientAddressResolver {
    pub fn new(trusted_header: Option<HeaderName>) -> Self {
        Self { trusted_header }
    }

    /// The last address in the trusted header (the one the proxy itself
    /// appended to any the client sent), else the TCP peer.
    pub fn resolve(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        self.trusted_header
            .as_ref()
            .and_then(|name| headers.get_all(name).iter().next_back())
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|address| address.trim().parse().ok())
            .or(peer.map(|peer| peer.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (HeaderName::from_static(name), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn forwarded_addresses_count_only_when_the_header_is_trusted() {
        let peer = Some("10.0.0.9:5000".parse().unwrap());
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.7, 198.51.100.2")]);

        let untrusting = ClientAddressResolver::default();
        assert_eq!(
            untrusting.resolve(&forwarded, peer),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );

        let trusting = ClientAddressResolver::new(Some(HeaderName::from_static("x-forwarded-for")));
        assert_eq!(
            trusting.resolve(&forwarded, peer),
            "198.51.100.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            trusting.resolve(&headers(&[("x-forwarded-for", "garbage")]), peer),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
    }
}
