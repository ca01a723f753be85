//! The mails authd writes, from templates: a subject, a plain-text body and
//! an HTML body per kind of mail, shipped in the binary and replaceable
//! file by file (`--mail-templates-dir`, read at start-up by `crate::mail`).
//!
//! The engine is a `{{name}}` substitution, on purpose: the templates hold
//! no logic, only a few named values, and a full engine (conditions, loops,
//! includes, filters) would be more code to trust with values that come from
//! users. Values are HTML-escaped in the HTML body, and a template naming a
//! value its kind does not have is refused when loaded, not when a mail is
//! due.

/// The kinds of mail, each with the file names of its parts and the values
/// its templates may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// The link that verifies an email address.
    VerifyEmail,
    /// The link that lets the account's holder choose a new password.
    ResetPassword,
    /// A change to how the account signs in, told to its verified address.
    SecurityNotice,
}

impl MailKind {
    /// Every kind, for loading.
    pub const ALL: [Self; 3] = [Self::VerifyEmail, Self::ResetPassword, Self::SecurityNotice];

    /// The base of its files' names: `NAME.subject`, `NAME.txt`, `NAME.html`.
    pub fn name(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::SecurityNotice => "security_notice",
        }
    }

    /// The values its templates may name.
    fn values(self) -> &'static [&'static str] {
        match self {
            Self::VerifyEmail => &["username", "email", "link", "valid_for"],
            Self::ResetPassword => &["username", "link", "valid_for"],
            Self::SecurityNotice => &["username", "event", "event_sentence", "when", "client"],
        }
    }

    fn builtin(self) -> MailTemplate {
        match self {
            Self::VerifyEmail => MailTemplate {
                subject: include_str!("mail_templates/verify_email.subject").into(),
                text: include_str!("mail_templates/verify_email.txt").into(),
                html: include_str!("mail_templates/verify_email.html").into(),
            },
            Self::ResetPassword => MailTemplate {
                subject: include_str!("mail_templates/reset_password.subject").into(),
                text: include_str!("mail_templates/reset_password.txt").into(),
                html: include_str!("mail_templates/reset_password.html").into(),
            },
            Self::SecurityNotice => MailTemplate {
                subject: include_str!("mail_templates/security_notice.subject").into(),
                text: include_str!("mail_templates/security_notice.txt").into(),
                html: include_str!("mail_templates/security_notice.html").into(),
            },
        }
    }
}

/// The three parts of one kind of mail, unrendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A mail rendered, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a template was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("{file}: `{{{{` without its `}}}}`")]
    Unclosed { file: String },
    #[error("{file}: no value `{name}` (it may use {allowed})")]
    UnknownValue {
        file: String,
        name: String,
        allowed: String,
    },
}

/// Every kind's templates.
#[derive(Debug, Clone)]
pub struct MailTemplates {
    verify_email: MailTemplate,
    reset_password: MailTemplate,
    security_notice: MailTemplate,
}

impl Default for MailTemplates {
    fn default() -> Self {
        Self {
            verify_email: MailKind::VerifyEmail.builtin(),
            reset_password: MailKind::ResetPassword.builtin(),
            security_notice: MailKind::SecurityNotice.builtin(),
        }
    }
}

impl MailTemplates {
    /// The shipped templates, each part replaced by `replacement` when it
    /// gives one (`kind`, `"subject" | "txt" | "html"`) → text.
    ///
    /// # Errors
    /// A part naming a value its kind does not have, or with an unclosed
    /// `{{`.
    pub fn with_replacements(
        mut replacement: impl FnMut(MailKind, &str) -> Option<String>,
    ) -> Result<Self, TemplateError> {
        let mut templates = Self::default();
        for kind in MailKind::ALL {
            let template = templates.get_mut(kind);
            for (part, text) in [
                ("subject", &mut template.subject),
                ("txt", &mut template.text),
                ("html", &mut template.html),
            ] {
                if let Some(replaced) = replacement(kind, part) {
                    *text = replaced;
                }
                check(&format!("{}.{part}", kind.name()), text, kind.values())?;
            }
        }
        Ok(templates)
    }

    fn get_mut(&mut self, kind: MailKind) -> &mut MailTemplate {
        match kind {
            MailKind::VerifyEmail => &mut self.verify_email,
            MailKind::ResetPassword => &mut self.reset_password,
            MailKind::SecurityNotice => &mut self.security_notice,
        }
    }

    fn get(&self, kind: MailKind) -> &MailTemplate {
        match kind {
            MailKind::VerifyEmail => &self.verify_email,
            MailKind::ResetPassword => &self.reset_password,
            MailKind::SecurityNotice => &self.security_notice,
        }
    }

    /// Renders a kind of mail with `values` (the kind's names, each once).
    /// A name without a value renders empty: the templates were checked on
    /// loading, so that only happens when a caller forgets one.
    pub fn render(&self, kind: MailKind, values: &[(&str, &str)]) -> RenderedMail {
        let template = self.get(kind);
        let value = |name: &str| {
            values
                .iter()
                .find_map(|(key, value)| (*key == name).then_some(*value))
                .unwrap_or_default()
        };
        RenderedMail {
            // One line: a value with a line break must not start a header.
            subject: substitute(&template.subject, |name, out| {
                out.push_str(&value(name).replace(['\r', '\n'], " "));
            })
            .trim()
            .to_owned(),
            text: substitute(&template.text, |name, out| out.push_str(value(name))),
            html: substitute(&template.html, |name, out| escape_html(value(name), out)),
        }
    }
}

/// Checks that every `{{name}}` of `text` is one of `allowed`.
fn check(file: &str, text: &str, allowed: &[&str]) -> Result<(), TemplateError> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError::Unclosed { file: file.into() });
        };
        let name = after[..end].trim();
        if !allowed.contains(&name) {
            return Err(TemplateError::UnknownValue {
                file: file.into(),
                name: name.into(),
                allowed: allowed.join(", "),
            });
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Copies `text`, writing each `{{name}}` through `write`. Only called on
/// checked templates; an unclosed `{{` is copied as it is.
fn substitute(text: &str, write: impl Fn(&str, &mut String)) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        write(after[..end].trim(), &mut out);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Escapes what HTML gives meaning to, in text and in quoted attributes.
fn escape_html(value: &str, out: &mut String) {
    for character in value.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: [(&str, &str); 4] = [
        ("username", "ada"),
        ("email", "ada@example.com"),
        (
            "link",
            "https://auth.example.com/verify-email#token=authd_ev_x&y=1",
        ),
        ("valid_for", "24 hours"),
    ];

    #[test]
    fn the_shipped_verification_mail_names_the_link_in_both_bodies() {
        let mail = MailTemplates::default().render(MailKind::VerifyEmail, &VALUES);

        assert_eq!(mail.subject, "Verify your email address");
        assert!(
            mail.text
                .contains("https://auth.example.com/verify-email#token=authd_ev_x&y=1")
        );
        assert!(mail.text.contains("within 24 hours"));
        assert!(mail.html.contains(
            r#"<a href="https://auth.example.com/verify-email#token=authd_ev_x&amp;y=1">"#
        ));
    }

    #[test]
    fn the_shipped_reset_mails_carry_their_values_and_every_template_loads() {
        let templates = MailTemplates::with_replacements(|_, _| None).unwrap();
        let reset = templates.render(
            MailKind::ResetPassword,
            &[
                ("username", "ada"),
                (
                    "link",
                    "https://auth.example.com/#/reset-password?token=authd_pr_x",
                ),
                ("valid_for", "30 minutes"),
            ],
        );
        assert_eq!(reset.subject, "Reset your password");
        assert!(reset.text.contains("within 30 minutes"));
        assert!(reset.text.contains("#/reset-password?token=authd_pr_x"));
        assert!(
            reset.html.contains(
                r#"<a href="https://auth.example.com/#/reset-password?token=authd_pr_x">"#
            )
        );
        let notice = templates.render(
            MailKind::SecurityNotice,
            &[
                ("username", "ada"),
                ("event", "your password was reset"),
                ("event_sentence", "The password of your account was reset."),
                ("when", "Monday 14 December 2026, 10:00:00 UTC"),
                ("client", "address 192.0.2.1, <Firefox>"),
            ],
        );
        assert_eq!(notice.subject, "Security notice: your password was reset");
        assert!(notice.text.contains("From: address 192.0.2.1, <Firefox>"));
        assert!(notice.html.contains("&lt;Firefox&gt;"));
    }

    #[test]
    fn values_are_html_escaped_in_the_html_body_only() {
        let values = [("username", r#"<script>"x"&'y'</script>"#)];
        let templates = MailTemplates::with_replacements(|kind, part| match (kind, part) {
            (MailKind::VerifyEmail, "txt" | "html") => Some("Hi {{ username }}!".into()),
            _ => None,
        })
        .unwrap();

        let mail = templates.render(MailKind::VerifyEmail, &values);

        assert_eq!(mail.text, r#"Hi <script>"x"&'y'</script>!"#);
        assert_eq!(
            mail.html,
            "Hi &lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;!"
        );
    }

    #[test]
    fn a_value_with_a_line_break_cannot_add_a_header_through_the_subject() {
        let templates = MailTemplates::with_replacements(|_, part| {
            (part == "subject").then(|| "Welcome {{username}}".into())
        })
        .unwrap();

        let mail = templates.render(MailKind::VerifyEmail, &[("username", "ada\r\nBcc: eve@x")]);

        assert_eq!(mail.subject, "Welcome ada  Bcc: eve@x");
    }

    #[test]
    fn a_replacement_naming_an_unknown_value_is_refused_when_loaded() {
        let refused = MailTemplates::with_replacements(|_, part| {
            (part == "html").then(|| "{{password}}".into())
        })
        .unwrap_err();

        assert_eq!(
            refused.to_string(),
            "verify_email.html: no value `password` (it may use username, email, link, valid_for)"
        );
        assert!(matches!(
            MailTemplates::with_replacements(|_, _| Some("{{link".into())),
            Err(TemplateError::Unclosed { .. })
        ));
    }
}
