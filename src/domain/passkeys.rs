//! Passkeys (WebAuthn, issue 20): the relying party that checks them.
//! webauthn-rs does the ceremony itself; authd keeps its state in the
//! database, so that any instance can finish what another started.

use std::fmt;

use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The WebAuthn relying party: an RP id and the page origins allowed to
/// run ceremonies for it.
#[derive(Clone, Debug)]
pub struct RelyingParty {
    webauthn: Webauthn,
}

/// Why a relying party cannot be set up: an origin whose host is neither
/// the RP id nor one of its subdomains, which browsers would refuse anyway.
#[derive(Debug)]
pub struct OriginNotOnRpId {
    origin: String,
    rp_id: String,
}

impl fmt::Display for OriginNotOnRpId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "WebAuthn origin {} is not on the RP id {}: its host must be {} or a subdomain of it",
            self.origin, self.rp_id, self.rp_id
        )
    }
}

impl std::error::Error for OriginNotOnRpId {}

impl RelyingParty {
    /// # Errors
    ///
    /// [`OriginNotOnRpId`] when an origin's host is not `rp_id` or a
    /// subdomain of it (or there is no origin at all).
    pub fn new(rp_id: &str, origins: &[Url]) -> Result<Self, OriginNotOnRpId> {
        let refused = |origin: &Url| OriginNotOnRpId {
            origin: origin.origin().ascii_serialization(),
            rp_id: rp_id.to_owned(),
        };
        let on_rp_id = |origin: &Url| {
            origin.domain().is_some_and(|host| {
                host == rp_id
                    || host
                        .strip_suffix(rp_id)
                        .is_some_and(|prefix| prefix.ends_with('.'))
            })
        };
        let Some((first, others)) = origins.split_first() else {
            return Err(OriginNotOnRpId {
                origin: "(none)".into(),
                rp_id: rp_id.to_owned(),
            });
        };
        if let Some(origin) = origins.iter().find(|origin| !on_rp_id(origin)) {
            return Err(refused(origin));
        }
        let builder = others.iter().fold(
            WebauthnBuilder::new(rp_id, first).map_err(|_| refused(first))?,
            |builder, origin| builder.append_allowed_origin(origin),
        );
        let webauthn = builder
            .rp_name("authd")
            .build()
            .map_err(|_| refused(first))?;
        Ok(Self { webauthn })
    }

    /// The origins ceremonies may come from.
    pub fn origins(&self) -> &[Url] {
        self.webauthn.get_allowed_origins()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(texts: &[&str]) -> Vec<Url> {
        texts.iter().map(|text| Url::parse(text).unwrap()).collect()
    }

    #[test]
    fn origins_on_the_rp_id_or_its_subdomains_are_accepted() {
        let party = RelyingParty::new(
            "example.com",
            &origins(&["https://example.com", "https://app.example.com:8443"]),
        )
        .unwrap();
        assert_eq!(party.origins().len(), 2);
    }

    #[test]
    fn an_origin_off_the_rp_id_is_refused_with_its_name() {
        for refused in [
            "https://example.org",
            "https://notexample.com",
            "https://com",
        ] {
            let error =
                RelyingParty::new("example.com", &origins(&["https://example.com", refused]))
                    .unwrap_err();
            assert!(error.to_string().contains(refused), "{error}");
        }
        assert!(RelyingParty::new("example.com", &[]).is_err());
    }
}
