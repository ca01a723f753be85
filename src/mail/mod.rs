//! Mail delivery: the SMTP adapter of the domain's `MailSender` port, on
//! lettre (tokio, rustls). The outbox's worker (`app::tasks`) calls it; the
//! mails themselves are composed by the domain and stored in the outbox.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::domain::{BoxError, MailKind, MailSender, MailTemplates, OutboxMail};

/// How long one SMTP command may take before the attempt counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one mail's whole sending may take (connection, commands, body).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and as whom mail is sent.
#[derive(Clone)]
pub struct SmtpSettings {
    /// lettre's connection URL: `smtps://user:pass@host:465` (TLS),
    /// `smtp://host:587?tls=required` (STARTTLS), `smtp://host:25` (plain,
    /// for a relay on the same host or network).
    pub url: String,
    /// A password for the URL's user, when it is not in the URL.
    pub password: Option<String>,
    /// The From header, e.g. `authd <no-reply@example.com>`.
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &redacted(&self.url))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password at all.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(unparsable SMTP URL)".into(),
    }
}

/// The domain of `--mail-from`'s address: the right-hand side of the
/// Message-IDs authd writes.
///
/// # Errors
/// `from` is not a mailbox.
pub fn sender_domain(from: &str) -> anyhow::Result<String> {
    let mailbox = from
        .parse::<Mailbox>()
        .with_context(|| format!("--mail-from {from:?} is not a mail address"))?;
    Ok(mailbox.email.domain().to_owned())
}

/// Sends mail to one SMTP server.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    /// Checks the settings; connects only when a mail is sent.
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
        let from = settings
            .from
            .parse::<Mailbox>()
            .with_context(|| format!("--mail-from {:?} is not a mail address", settings.from))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .with_context(|| format!("--smtp-url {} is not an SMTP URL", redacted(&settings.url)))?
            .timeout(Some(SMTP_TIMEOUT));
        // lettre takes credentials from the URL only when it has a password;
        // else the user is the URL's, the password the separate setting's.
        if let Some(password) = &settings.password {
            let url = url::Url::parse(&settings.url).context("--smtp-url is not a URL")?;
            let user = percent_encoding::percent_decode_str(url.username())
                .decode_utf8()
                .context("--smtp-url's user is not UTF-8")?
                .into_owned();
            builder = builder.credentials(Credentials::new(user, password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

impl MailSender for SmtpSender {
    async fn send(&self, mail: &OutboxMail) -> Result<(), BoxError> {
        let message = Message::builder()
            .message_id(Some(format!("<{}>", mail.message_id)))
            .from(self.from.clone())
            .to(mail.recipient.parse::<Mailbox>()?)
            .subject(mail.subject.clone())
            .date(mail.created_at.into())
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))?;
        tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message))
            .await
            .map_err(|_| format!("no answer from the SMTP server within {SEND_TIMEOUT:?}"))??;
        Ok(())
    }
}

/// The mail templates: the shipped ones, each part replaced by the file of
/// its name in `directory` when there is one (`verify_email.subject`,
/// `verify_email.txt`, `verify_email.html`).
///
/// # Errors
/// A file that exists but cannot be read, or a template the domain
/// refuses (an unknown `{{value}}`).
pub fn load_templates(directory: Option<&Path>) -> anyhow::Result<MailTemplates> {
    let Some(directory) = directory else {
        return Ok(MailTemplates::default());
    };
    let mut unreadable = None;
    let templates = MailTemplates::with_replacements(|kind: MailKind, part| {
        let path = directory.join(format!("{}.{part}", kind.name()));
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                unreadable.get_or_insert((path, error));
                None
            }
        }
    })
    .with_context(|| format!("bad mail template in {}", directory.display()))?;
    if let Some((path, error)) = unreadable {
        anyhow::bail!("cannot read the mail template {}: {error}", path.display());
    }
    Ok(templates)
}
