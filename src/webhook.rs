//! Notification webhooks: the HTTP adapter of the domain's `WebhookSender`
//! port. Each event is POSTed to `--notification-webhook-url`, signed as
//! the Standard Webhooks specification says
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>):
//! `webhook-id` (the outbox row's id, the same on every attempt, so that
//! receivers can drop copies), `webhook-timestamp` (this attempt's Unix
//! seconds, so that receivers can refuse replays) and `webhook-signature`
//! (`v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
//! secret's bytes). A 2xx answer is a delivery; anything else, a redirect
//! included, or no answer in time is a failed attempt the outbox retries.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chrono::Utc;
use hmac::{Hmac, Mac as _};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret as _, SecretSlice};
use sha2::Sha256;

use crate::domain::{BoxError, WebhookEvent, WebhookSender};

/// How long one event's delivery may take (connection, TLS, answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The prefix of a Standard Webhooks secret's text.
const SECRET_PREFIX: &str = "whsec_";

/// A signing secret: 24 to 64 random bytes, written `whsec_` and their
/// base64. Never logged.
pub struct WebhookSecret(SecretSlice<u8>);

impl WebhookSecret {
    /// The fewest bytes a secret may have (192 bits).
    pub const MIN_BYTES: usize = 24;
    /// The most bytes a secret may have, as the specification allows.
    pub const MAX_BYTES: usize = 64;

    /// Reads `whsec_<base64>` (surrounding whitespace ignored).
    ///
    /// # Errors
    /// No `whsec_` prefix, base64 that does not decode, or a length out of
    /// bounds; the message never quotes the text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .context("the secret does not start with `whsec_`")?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| anyhow::anyhow!("the secret after `whsec_` is not base64"))?;
        anyhow::ensure!(
            (Self::MIN_BYTES..=Self::MAX_BYTES).contains(&bytes.len()),
            "the secret holds {} bytes; it must hold {} to {}",
            bytes.len(),
            Self::MIN_BYTES,
            Self::MAX_BYTES
        );
        Ok(Self(bytes.into()))
    }

    /// Reads the secret from the file at `path`.
    ///
    /// # Errors
    /// The file cannot be read, or holds no valid secret.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the webhook secret file {}", path.display()))?;
        Self::parse(&text).with_context(|| {
            format!(
                "{} holds no Standard Webhooks secret (make one with: echo \"whsec_$(openssl rand -base64 32)\")",
                path.display()
            )
        })
    }

    /// The `webhook-signature` header of `body` sent as `id` at
    /// `timestamp`.
    ///
    /// # Errors
    /// None in practice: HMAC takes keys of any length.
    pub fn signature(
        &self,
        id: &str,
        timestamp: i64,
        body: &str,
    ) -> Result<String, hmac::digest::InvalidLength> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())?;
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// Where events go and what signs them.
#[derive(Debug)]
pub struct WebhookSettings {
    /// `--notification-webhook-url`, http or https.
    pub url: url::Url,
    pub secret: WebhookSecret,
}

/// The URL as logs show it: scheme, host and port, without a path or query
/// that may carry a receiver's token.
pub fn redacted(url: &url::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        _ => format!("{}://(no host)", url.scheme()),
    }
}

/// Posts events to one receiver.
pub struct HttpWebhookSender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: http::Uri,
    secret: WebhookSecret,
}

impl HttpWebhookSender {
    /// Checks the settings; connects only when an event is sent.
    ///
    /// # Errors
    /// A URL hyper cannot use, or no TLS configuration.
    pub fn new(settings: WebhookSettings) -> anyhow::Result<Self> {
        let url: http::Uri = settings
            .url
            .as_str()
            .parse()
            .context("--notification-webhook-url is not a URL hyper can use")?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .context("cannot set up TLS for the notification webhook")?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            url,
            secret: settings.secret,
        })
    }
}

impl WebhookSender for HttpWebhookSender {
    async fn send(&self, event: &WebhookEvent) -> Result<(), BoxError> {
        let id = event.id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = self.secret.signature(&id, timestamp, &event.payload)?;
        let request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(event.payload.clone())))?;
        let response = tokio::time::timeout(SEND_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| format!("no answer from the webhook within {SEND_TIMEOUT:?}"))??;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the webhook answered {status}").into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_whsec_and_24_to_64_bytes_of_base64() {
        let of = |bytes: usize| format!("whsec_{}", BASE64.encode(vec![7u8; bytes]));
        assert!(WebhookSecret::parse(&of(32)).is_ok());
        assert!(WebhookSecret::parse(&format!("{}\n", of(24))).is_ok());
        assert!(WebhookSecret::parse(&of(64)).is_ok());
        assert!(WebhookSecret::parse(&of(23)).is_err());
        assert!(WebhookSecret::parse(&of(65)).is_err());
        assert!(WebhookSecret::parse(&BASE64.encode([7u8; 32])).is_err());
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
    }

    #[test]
    fn the_signature_matches_the_specifications_example() {
        // The example of the Standard Webhooks reference libraries' tests.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        let signature = signature.unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_is_never_printed() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret([REDACTED])");
    }
}
