//! Command line and environment configuration. Every option has an
//! environment variable of the same meaning; `authd --help` lists them all.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use http::{HeaderName, HeaderValue};

use crate::domain::{
    CLOCK_LEEWAY, HashingSettings, MailSettings, MailTemplates, PasskeySettings, Rate,
    RateLimitSettings, RelyingParty, SecondFactorSettings, SessionSettings, TokenSettings,
};
use crate::hashing::Argon2Implementation;
use crate::mail::SmtpSettings;
use crate::proxy::IdentityHeaders;
use crate::storage::DatabaseSettings;
use crate::telemetry::LogFormat;
use crate::webhook::{WebhookSecret, WebhookSettings};

/// authd: register, log in, log out and verify access tokens over gRPC.
#[derive(Debug, Parser)]
#[command(name = "authd", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How log lines are written: `text` for people, `json` for log shippers.
    #[arg(
        long,
        env = "AUTHD_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub settings: Settings,
}

/// What to do; serving is the default. The options work before or after
/// the subcommand; `keys` and `users` use the database ones (and `keys`
/// the key refresh interval and the secrets keys), and open an existing,
/// migrated database only.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Apply database migrations, then serve (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage the token signing keys kept in the database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage accounts in the database. Running instances honour a change
    /// at once where PostgreSQL announces it, and otherwise within
    /// `--revocation-refresh-interval`.
    #[command(subcommand)]
    Users(UsersCommand),
}

/// `authd users ...`
#[derive(Debug, Clone, Subcommand)]
pub enum UsersCommand {
    /// List accounts in name order, a page at a time.
    List {
        /// Only names containing this (case-insensitive).
        #[arg(long)]
        filter: Option<String>,
        /// Start after this name (the last one of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Show an account and its live sessions.
    Show {
        /// The account's username (compared case-insensitively).
        name: String,
    },
    /// Disable an account: its sessions end, and Login, Refresh and its
    /// tokens are refused with ACCOUNT_DISABLED. An account disabled already
    /// stays as it is.
    Disable {
        /// The account's username (compared case-insensitively).
        name: String,
    },
    /// Enable a disabled account again; its ended sessions stay ended.
    Enable {
        /// The account's username (compared case-insensitively).
        name: String,
    },
    /// End every session of an account.
    Logout {
        /// The account's username (compared case-insensitively).
        name: String,
    },
    /// Remove every second factor of an account (TOTP, its recovery
    /// codes, its passkeys) and end its sessions, for a user who lost them: its next
    /// Login asks for the password alone.
    MfaReset {
        /// The account's username (compared case-insensitively).
        name: String,
    },
    /// Delete an account and end its sessions; the name becomes free.
    Delete {
        /// The account's username (compared case-insensitively).
        name: String,
    },
}

/// `authd keys ...`
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key, signing not before twice this command's
    /// `--key-refresh-interval` from now, and at the latest one interval
    /// later (instances take it up at their next key refresh). Every
    /// instance verifies with it after its next key refresh, or as soon as
    /// it meets a token naming it, whatever its own interval; older keys
    /// keep verifying until their last token has expired.
    Rotate,
    /// List the stored signing keys, marking the one signing now.
    List,
    /// Seal every secret in the database under the current
    /// `--secrets-key-file`: those a `--previous-secrets-key-file` sealed,
    /// and any still in clear. Prints how many; afterwards the previous key
    /// is no longer needed.
    Reseal,
}

/// Everything the service needs to start.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Database URL: `sqlite://FILE?mode=rwc` (embedded, one instance; a
    /// relative FILE is in the working directory) or
    /// `postgres://USER@HOST/DB` (production, several instances). Serving
    /// and `migrate` create and migrate the database; `keys` and `users`
    /// only open one that exists and is migrated.
    #[arg(
        global = true,
        help_heading = "Database",
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://authd.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Database connection pool size.
    #[arg(
        global = true,
        help_heading = "Database",
        long,
        env = "AUTHD_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10
    )]
    pub database_max_connections: u32,

    /// Longest wait for a database connection before answering UNAVAILABLE.
    #[arg(global = true, help_heading = "Database", long, env = "AUTHD_DATABASE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub database_timeout: Duration,

    /// Address to serve gRPC on.
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,

    /// How long an access token is valid (e.g. `15m`, `1h`); a session's
    /// refresh token renews it.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_TOKEN_LIFETIME", default_value = "15m", value_parser = parse_token_lifetime)]
    pub token_lifetime: Duration,

    /// A session not refreshed for this long ends (its refresh token is
    /// refused; access tokens never outlive it).
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_SESSION_IDLE_TIMEOUT", default_value = "14d", value_parser = parse_token_lifetime)]
    pub session_idle_timeout: Duration,

    /// No session lasts longer than this, however often it is refreshed;
    /// then the user logs in again.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_SESSION_LIFETIME", default_value = "90d", value_parser = parse_token_lifetime)]
    pub session_lifetime: Duration,

    /// How long after a refresh the refresh token it replaced is still
    /// accepted once more (racing tabs, a retried request) instead of
    /// ending the session as a reused token.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_REFRESH_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub refresh_grace: Duration,

    /// How recent an authentication must be for sensitive operations
    /// (enrolling a second factor; see REAUTHENTICATION_REQUIRED).
    #[arg(global = true, help_heading = "Second factors", long, env = "AUTHD_REAUTHENTICATION_MAX_AGE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub reauthentication_max_age: Duration,

    /// The issuer authenticator apps show next to the account name
    /// (the `otpauth://` URI's `issuer`); no `:`.
    #[arg(global = true, help_heading = "Second factors", long, env = "AUTHD_TOTP_ISSUER", default_value = "authd", value_parser = parse_totp_issuer)]
    pub totp_issuer: String,

    /// How long a Login that needs a second factor may take to complete it
    /// (the ticket's lifetime).
    #[arg(global = true, help_heading = "Second factors", long, env = "AUTHD_MFA_TICKET_LIFETIME", default_value = "5m", value_parser = parse_token_lifetime)]
    pub mfa_ticket_lifetime: Duration,

    /// Wrong TOTP and recovery codes (and refused passkey assertions as a
    /// second factor) per account, shared by every instance on the
    /// database: CAPACITY/PERIOD or `off`. A right one refills it.
    #[arg(global = true, help_heading = "Second factors", long, env = "AUTHD_SECOND_FACTOR_FAILURES_PER_ACCOUNT", default_value = "10/15m", value_parser = parse_rate)]
    pub second_factor_failures_per_account: RateOrOff,

    /// The WebAuthn relying party id passkeys are bound to: the site's
    /// domain (no scheme, no port). Changing it orphans every passkey.
    #[arg(
        global = true,
        help_heading = "Passkeys",
        long,
        env = "AUTHD_WEBAUTHN_RP_ID",
        default_value = "localhost",
        value_parser = parse_rp_id
    )]
    pub webauthn_rp_id: String,

    /// A page origin passkey ceremonies may come from (repeatable; the
    /// variable takes them comma-separated); its host must be the RP id or
    /// a subdomain of it. Default: `http://localhost:PORT`, PORT the one
    /// authd listens on.
    #[arg(global = true, help_heading = "Passkeys", long, env = "AUTHD_WEBAUTHN_ORIGIN", value_delimiter = ',', value_parser = parse_webauthn_origin)]
    pub webauthn_origin: Vec<url::Url>,

    /// How long a passkey ceremony may take from its start to its finish.
    #[arg(global = true, help_heading = "Passkeys", long, env = "AUTHD_PASSKEY_CEREMONY_LIFETIME", default_value = "5m", value_parser = parse_token_lifetime)]
    pub passkey_ceremony_lifetime: Duration,

    /// How many verified tokens to remember, so that a token checked again
    /// skips its signature check (about 400 bytes each); 0 turns it off.
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_VERIFIED_TOKEN_CACHE",
        default_value_t = 50_000
    )]
    pub verified_token_cache: usize,

    /// PEM file with a PKCS#8 Ed25519 private key to sign with, instead of
    /// the keys in the database (for keys from a secret store). Repeat it to
    /// keep verifying tokens signed by earlier keys: the first one signs.
    #[arg(
        global = true,
        help_heading = "Keys",
        long = "signing-key-file",
        env = "AUTHD_SIGNING_KEY_FILES",
        value_delimiter = ','
    )]
    pub signing_key_files: Vec<PathBuf>,

    /// File holding the key that seals secrets in the database (the signing
    /// keys' private halves): 32 random bytes in base64, as `openssl rand
    /// -base64 32 > authd-secrets.key` makes them. Every instance on one
    /// database needs the same file. Required with PostgreSQL; with a SQLite
    /// file, `<database file>.secrets-key` is created on first start and
    /// used.
    #[arg(
        global = true,
        help_heading = "Secrets at rest",
        long,
        env = "AUTHD_SECRETS_KEY_FILE"
    )]
    pub secrets_key_file: Option<PathBuf>,

    /// A key file `--secrets-key-file` replaced: values it sealed still
    /// open, and `authd keys reseal` seals them again under the current key,
    /// after which it can go. Repeat it, or separate with commas.
    #[arg(
        global = true,
        help_heading = "Secrets at rest",
        long = "previous-secrets-key-file",
        env = "AUTHD_PREVIOUS_SECRETS_KEY_FILES",
        value_delimiter = ','
    )]
    pub previous_secrets_key_files: Vec<PathBuf>,

    /// How often the signing keys are reloaded from the database, so that
    /// rotated keys reach every instance and its JWKS (a token naming a key
    /// not loaded yet reloads them at once, at most once a second).
    #[arg(global = true, help_heading = "Keys", long, env = "AUTHD_KEY_REFRESH_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub key_refresh_interval: Duration,

    /// How often revocations recorded by other instances on the same
    /// database are taken up: the longest a logout elsewhere takes to reach
    /// this instance.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_REVOCATION_REFRESH_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub revocation_refresh_interval: Duration,

    /// Where clients reach authd, e.g. `https://auth.example.com`: the
    /// base of every absolute URL it publishes (the discovery documents,
    /// `jwks_uri`) and the default `--issuer`. Off by default: discovery
    /// then answers 404, and tokens say `iss: authd`.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<url::Url>,

    /// The `iss` claim of issued tokens; only tokens with it (or a
    /// `--previous-issuer`) are accepted [default: `--public-url` without
    /// its trailing slash, else `authd`].
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_ISSUER")]
    pub issuer: Option<String>,

    /// An issuer whose tokens are still accepted, never issued: after a
    /// change of `--issuer` or `--public-url`, keep the old one here for a
    /// token lifetime. Repeat it, or separate with commas.
    #[arg(
        global = true,
        help_heading = "Serving",
        long = "previous-issuer",
        env = "AUTHD_PREVIOUS_ISSUERS",
        value_delimiter = ','
    )]
    pub previous_issuers: Vec<String>,

    /// The `aud` claim of issued tokens; only tokens with it are accepted.
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_AUDIENCE",
        default_value = "authd"
    )]
    pub audience: String,

    /// Argon2id memory cost in KiB (OWASP's recommendation: 19456).
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_ARGON2_MEMORY_KIB",
        default_value_t = 19456
    )]
    pub argon2_memory_kib: u32,

    /// Argon2id iterations (OWASP's recommendation: 2).
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_ARGON2_ITERATIONS",
        default_value_t = 2
    )]
    pub argon2_iterations: u32,

    /// Argon2id parallelism (OWASP's recommendation: 1).
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_ARGON2_PARALLELISM",
        default_value_t = 1
    )]
    pub argon2_parallelism: u32,

    /// What computes argon2: `argon2-rust` (a port of the C reference, about
    /// twice as fast) or `rustcrypto` (the `argon2` crate's own, older and
    /// more widely reviewed). Both read and write the same stored hashes, so
    /// either can be chosen at any restart (BENCHMARKS.md, "argon2").
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_ARGON2_ENGINE", default_value_t = Argon2Implementation::default())]
    pub argon2_engine: Argon2Implementation,

    /// Password hashes computed at once [default: the number of CPUs].
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_HASH_CONCURRENCY"
    )]
    pub hash_concurrency: Option<NonZeroUsize>,

    /// Longest a Login or Register may expect to wait for its password hash,
    /// its turn included, reckoned from the hashes ahead of it and the
    /// recently measured hash time. Calls expected to take longer, or more
    /// than three quarters of the client's remaining `grpc-timeout`, are
    /// refused at once with RESOURCE_EXHAUSTED / 503 and when to retry.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_HASH_QUEUE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub hash_queue_timeout: Duration,

    /// Login attempts per client address: CAPACITY/PERIOD (the budget
    /// refills evenly over the period) or `off`.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_LOGIN_RATE_PER_ADDRESS", default_value = "60/1m", value_parser = parse_rate)]
    pub login_rate_per_address: RateOrOff,

    /// Registrations per client address: CAPACITY/PERIOD or `off`.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_REGISTER_RATE_PER_ADDRESS", default_value = "20/1h", value_parser = parse_rate)]
    pub register_rate_per_address: RateOrOff,

    /// Failed logins per username, shared by every instance on the database:
    /// CAPACITY/PERIOD or `off`. The default allows at most 100 in any hour
    /// (OWASP ASVS), far more than a person mistyping.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_LOGIN_FAILURES_PER_USERNAME", default_value = "50/1h", value_parser = parse_rate)]
    pub login_failures_per_username: RateOrOff,

    /// Header a trusted reverse proxy sets to the client address (e.g.
    /// `x-forwarded-for`; its last entry counts). Off by default: rate limits
    /// then count the TCP peer.
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_CLIENT_ADDRESS_HEADER"
    )]
    pub client_address_header: Option<HeaderName>,

    /// Longest time a request may take before it is answered with an error
    /// (REST 503; gRPC also honours a shorter `grpc-timeout` from the client,
    /// with DEADLINE_EXCEEDED).
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Concurrent HTTP/2 streams per connection, advertised to clients.
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_MAX_CONCURRENT_STREAMS",
        default_value_t = 128
    )]
    pub max_concurrent_streams: u32,

    /// On SIGTERM, how long to keep serving while health reports NOT_SERVING,
    /// so that load balancers stop sending calls first (Ctrl-C skips it).
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_SHUTDOWN_DRAIN", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_drain: Duration,

    /// How long in-flight calls may take to finish once authd stops
    /// accepting; calls still running then are dropped.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Browser origins allowed to call authd (CORS), comma-separated, e.g.
    /// `https://app.example.com`. None by default: browsers may then call
    /// authd only from pages it serves itself.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_allowed_origins: Vec<HeaderValue>,

    /// Name of the cookie the REST gateway keeps the access token in.
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_COOKIE_NAME",
        default_value = "authd_token"
    )]
    pub cookie_name: String,

    /// A credential services present (`authorization: Bearer <token>`) to
    /// watch the revocation feed (`WatchRevocations`); repeat it, or
    /// separate with commas, to accept several while rotating. None: the
    /// feed is off.
    #[arg(
        global = true,
        help_heading = "Serving",
        long = "revocation-feed-token",
        env = "AUTHD_REVOCATION_FEED_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub revocation_feed_tokens: Vec<String>,

    /// A credential services present (`Authorization: Bearer <token>`) to
    /// introspect tokens (`POST /oauth2/introspect`, RFC 7662); repeat it,
    /// or separate with commas, to accept several while rotating. None:
    /// introspection is off.
    #[arg(
        global = true,
        help_heading = "Serving",
        long = "introspection-token",
        env = "AUTHD_INTROSPECTION_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub introspection_tokens: Vec<String>,

    /// How often the revocation feed says it is alive when nothing changes,
    /// so that a verifier can tell a quiet feed from a dead one.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_REVOCATION_CHECKPOINT_INTERVAL", default_value = "5s", value_parser = parse_checkpoint_interval)]
    pub revocation_checkpoint_interval: Duration,

    /// Name of the cookie the REST gateway keeps the refresh token in; it is
    /// sent only to `/token/...`.
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_REFRESH_COOKIE_NAME",
        default_value = "authd_refresh"
    )]
    pub refresh_cookie_name: String,

    /// Header that carries the user id to the upstream of an allowed request,
    /// set by the proxy checks (`/auth/forward`, Envoy's `Check`).
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_USER_ID_HEADER",
        default_value = "x-authd-user-id"
    )]
    pub user_id_header: HeaderName,

    /// Header that carries the user name to the upstream of an allowed
    /// request (`Remote-User` carries it too).
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_USERNAME_HEADER",
        default_value = "x-authd-username"
    )]
    pub username_header: HeaderName,

    /// Header that carries how the user authenticated to the upstream of an
    /// allowed request: the token's `amr`, comma-separated (`pwd,otp,mfa`).
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_AMR_HEADER",
        default_value = "x-authd-amr"
    )]
    pub amr_header: HeaderName,

    /// Header that carries the assurance level reached to the upstream of an
    /// allowed request: the token's `acr` (`aal1`, `aal2`).
    #[arg(
        global = true,
        help_heading = "Serving",
        long,
        env = "AUTHD_ACR_HEADER",
        default_value = "x-authd-acr"
    )]
    pub acr_header: HeaderName,

    /// Serve the files in this directory (e.g. the demo page, `web/dist`)
    /// at `/`. Off by default.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_WEB_ROOT")]
    pub web_root: Option<PathBuf>,

    /// The SMTP server mail is sent through, as lettre's URL:
    /// `smtps://USER:PASS@HOST:465` (TLS), `smtp://USER@HOST:587?tls=required`
    /// (STARTTLS), `smtp://HOST:25` (plain: a relay on the same host or
    /// network only). Off by default: authd then sends no mail, and the
    /// calls that need one answer MAIL_NOT_CONFIGURED.
    #[arg(
        global = true,
        help_heading = "Mail",
        long,
        env = "AUTHD_SMTP_URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,

    /// The SMTP password, when it is not in `--smtp-url` (whose user it is
    /// for); best given in the environment.
    #[arg(
        global = true,
        help_heading = "Mail",
        long,
        env = "AUTHD_SMTP_PASSWORD",
        hide_env_values = true
    )]
    pub smtp_password: Option<String>,

    /// The From of every mail, e.g. `authd <no-reply@example.com>`;
    /// required with `--smtp-url`.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// A directory whose files replace the shipped mail templates, part by
    /// part: `verify_email.subject`, `verify_email.txt`, `verify_email.html`
    /// (`{{name}}` takes a value; the README lists them). Checked at start.
    #[arg(
        global = true,
        help_heading = "Mail",
        long,
        env = "AUTHD_MAIL_TEMPLATES_DIR"
    )]
    pub mail_templates_dir: Option<PathBuf>,

    /// How long the link of an email verification mail works; a newer
    /// mail voids it sooner.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_EMAIL_VERIFICATION_LIFETIME", default_value = "24h", value_parser = parse_token_lifetime)]
    pub email_verification_lifetime: Duration,

    /// Verification mails (SetEmail, ResendEmailVerification) per account,
    /// shared by every instance on the database: CAPACITY/PERIOD or `off`.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_VERIFICATION_MAILS_PER_ACCOUNT", default_value = "5/1h", value_parser = parse_rate)]
    pub verification_mails_per_account: RateOrOff,

    /// Verification mails per email address (Register's too), shared by
    /// every instance: CAPACITY/PERIOD or `off`. Keeps anyone from flooding
    /// an inbox from many accounts.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_VERIFICATION_MAILS_PER_ADDRESS", default_value = "5/1h", value_parser = parse_rate)]
    pub verification_mails_per_address: RateOrOff,

    /// How long the link of a password reset mail works; a newer request
    /// voids it sooner, and it works once.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_PASSWORD_RESET_LIFETIME", default_value = "30m", value_parser = parse_token_lifetime)]
    pub password_reset_lifetime: Duration,

    /// Password reset mails per account, shared by every instance on the
    /// database: CAPACITY/PERIOD or `off`. A request beyond it is answered
    /// as any other and mails nothing.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_PASSWORD_RESET_MAILS_PER_ACCOUNT", default_value = "5/1h", value_parser = parse_rate)]
    pub password_reset_mails_per_account: RateOrOff,

    /// Password reset mails per email address, shared by every instance:
    /// CAPACITY/PERIOD or `off`. A request beyond it is answered as any
    /// other and mails nothing.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_PASSWORD_RESET_MAILS_PER_ADDRESS", default_value = "5/1h", value_parser = parse_rate)]
    pub password_reset_mails_per_address: RateOrOff,

    /// Post a signed JSON event (Standard Webhooks) to this http(s) URL for
    /// each mail authd would send (verification, password reset, security
    /// notices), through the same outbox; works with or without
    /// `--smtp-url`, so a team can send the mails itself. Needs
    /// `--notification-webhook-secret-file`.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_NOTIFICATION_WEBHOOK_URL", value_parser = parse_webhook_url, hide_env_values = true)]
    pub notification_webhook_url: Option<url::Url>,

    /// The file holding the webhook's signing secret, `whsec_` and the
    /// base64 of 24 to 64 random bytes; make one with
    /// `echo "whsec_$(openssl rand -base64 32)"`.
    #[arg(
        global = true,
        help_heading = "Mail",
        long,
        env = "AUTHD_NOTIFICATION_WEBHOOK_SECRET_FILE"
    )]
    pub notification_webhook_secret_file: Option<PathBuf>,

    /// How often the outbox looks for mails to send: the longest a mail
    /// waits in it while the SMTP server is up.
    #[arg(global = true, help_heading = "Mail", long, env = "AUTHD_MAIL_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub mail_poll_interval: Duration,

    /// How often the database is pinged to keep gRPC health current.
    #[arg(global = true, help_heading = "Serving", long, env = "AUTHD_HEALTH_CHECK_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub health_check_interval: Duration,
}

impl Settings {
    pub fn database(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.clone(),
            max_connections: self.database_max_connections,
            connect_timeout: self.database_timeout,
        }
    }

    /// How long after `authd keys rotate` the new key starts signing: two
    /// refresh intervals, so every instance with these settings publishes
    /// it in its JWKS at least one interval before it signs. (Instances
    /// verify with it whatever their interval: a token naming a key they do
    /// not hold makes them reload the keys.)
    pub fn key_activation_delay(&self) -> Duration {
        self.key_refresh_interval * 2
    }

    /// The JWKS's `Cache-Control: max-age`: no longer than the time between
    /// a key's publication and its first signature, so that a verifier
    /// honouring it fetches every key before the key signs. The JWKS shows a
    /// rotated key at most one refresh interval after `authd keys rotate`
    /// added it, and the key signs one activation delay after that; the
    /// clock leeway covers clocks that differ between machines.
    pub fn jwks_max_age(&self) -> Duration {
        self.key_activation_delay()
            .saturating_sub(self.key_refresh_interval)
            .saturating_sub(CLOCK_LEEWAY)
    }

    /// `Cache-Control` of the JWKS and of the discovery documents that name
    /// it: public, for [`jwks_max_age`](Self::jwks_max_age) in whole
    /// seconds, rounded down.
    pub fn jwks_cache_control(&self) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "public, max-age={}",
            self.jwks_max_age().as_secs()
        ))
        .unwrap_or(HeaderValue::from_static("no-cache"))
    }

    pub fn identity_headers(&self) -> IdentityHeaders {
        IdentityHeaders {
            user_id: self.user_id_header.clone(),
            username: self.username_header.clone(),
            amr: self.amr_header.clone(),
            acr: self.acr_header.clone(),
        }
    }

    pub fn rate_limits(&self) -> RateLimitSettings {
        RateLimitSettings {
            login_per_address: self.login_rate_per_address,
            register_per_address: self.register_rate_per_address,
            login_failures_per_username: self.login_failures_per_username,
            second_factor_failures_per_account: self.second_factor_failures_per_account,
            verification_mails_per_account: self.verification_mails_per_account,
            verification_mails_per_address: self.verification_mails_per_address,
            reset_mails_per_account: self.password_reset_mails_per_account,
            reset_mails_per_address: self.password_reset_mails_per_address,
        }
    }

    pub fn sessions(&self) -> SessionSettings {
        SessionSettings {
            idle_timeout: self.session_idle_timeout,
            lifetime: self.session_lifetime,
            refresh_grace: self.refresh_grace,
        }
    }

    /// The passkeys' relying party, with `--webauthn-origin` or, without
    /// one, `http://localhost:PORT` for the port authd listens on. Fails
    /// with an operator's message when an origin is not on the RP id.
    fn passkeys(&self, port: u16) -> anyhow::Result<PasskeySettings> {
        Ok(PasskeySettings {
            relying_party: self.relying_party(port)?,
            ceremony_lifetime: self.passkey_ceremony_lifetime,
        })
    }

    pub fn relying_party(&self, port: u16) -> anyhow::Result<RelyingParty> {
        let origins = if self.webauthn_origin.is_empty() {
            let default = url::Url::parse(&format!("http://localhost:{port}"))?;
            vec![default]
        } else {
            self.webauthn_origin.clone()
        };
        RelyingParty::new(&self.webauthn_rp_id, &origins).map_err(|error| {
            let hint = if self.webauthn_origin.is_empty() {
                " (the default origin; set --webauthn-origin for this RP id)"
            } else {
                ""
            };
            anyhow::anyhow!("{error}{hint}")
        })
    }

    /// Second factors and passkeys; `port` as for
    /// [`relying_party`](Self::relying_party).
    pub fn second_factors(&self, port: u16) -> anyhow::Result<SecondFactorSettings> {
        Ok(SecondFactorSettings {
            totp_issuer: self.totp_issuer.clone(),
            ticket_lifetime: self.mfa_ticket_lifetime,
            reauthentication_max_age: self.reauthentication_max_age,
            passkeys: self.passkeys(port)?,
        })
    }

    /// Where mail goes, or `None` when `--smtp-url` is not set.
    pub fn smtp(&self) -> anyhow::Result<Option<SmtpSettings>> {
        let Some(url) = &self.smtp_url else {
            return Ok(None);
        };
        let Some(from) = &self.mail_from else {
            anyhow::bail!("--smtp-url needs --mail-from (AUTHD_MAIL_FROM): the mails' sender");
        };
        Ok(Some(SmtpSettings {
            url: url.clone(),
            password: self.smtp_password.clone(),
            from: from.clone(),
        }))
    }

    /// Where notification events go and their secret (read from its file),
    /// or `None` when `--notification-webhook-url` is not set.
    ///
    /// # Errors
    /// The URL without a secret file, or a file without a valid secret.
    pub fn webhook(&self) -> anyhow::Result<Option<WebhookSettings>> {
        let Some(url) = &self.notification_webhook_url else {
            return Ok(None);
        };
        let Some(path) = &self.notification_webhook_secret_file else {
            anyhow::bail!(
                "--notification-webhook-url needs --notification-webhook-secret-file \
                 (AUTHD_NOTIFICATION_WEBHOOK_SECRET_FILE): a file holding the signing secret; \
                 make one with: echo \"whsec_$(openssl rand -base64 32)\""
            );
        };
        Ok(Some(WebhookSettings {
            url: url.clone(),
            secret: WebhookSecret::read(path)?,
        }))
    }

    /// How mails are composed: links under `--public-url`, else under
    /// `http://` and the address authd listens on (`listening`, the port
    /// actually bound); sent only with `--smtp-url`, posted as events only
    /// with `--notification-webhook-url`.
    pub fn mail(
        &self,
        listening: SocketAddr,
        templates: MailTemplates,
    ) -> anyhow::Result<MailSettings> {
        let link_base = match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{listening}"),
        };
        let message_id_domain = match self.smtp()? {
            Some(smtp) => crate::mail::sender_domain(&smtp.from)?,
            None => MailSettings::default().message_id_domain,
        };
        Ok(MailSettings {
            smtp: self.smtp_url.is_some(),
            webhook: self.notification_webhook_url.is_some(),
            templates,
            link_base,
            message_id_domain,
            verification_lifetime: self.email_verification_lifetime,
            reset_lifetime: self.password_reset_lifetime,
        })
    }

    /// The `iss` of new tokens: `--issuer`, else `--public-url` as
    /// discovery documents spell it (no trailing slash), else `authd`.
    pub fn issuer(&self) -> String {
        match (&self.issuer, &self.public_url) {
            (Some(issuer), _) => issuer.clone(),
            (None, Some(url)) => url.as_str().trim_end_matches('/').to_owned(),
            (None, None) => "authd".to_owned(),
        }
    }

    pub fn tokens(&self) -> TokenSettings {
        TokenSettings {
            issuer: self.issuer(),
            previous_issuers: self.previous_issuers.clone(),
            audience: self.audience.clone(),
            lifetime: self.token_lifetime,
            verified_token_cache: self.verified_token_cache,
        }
    }

    pub fn hashing(&self) -> HashingSettings {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let max_concurrent = self.hash_concurrency.map_or(cpus, NonZeroUsize::get);
        HashingSettings {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
            max_concurrent,
            // A call is cut off at the request timeout anyway.
            max_wait: self.hash_queue_timeout.min(self.request_timeout),
            implementation: self.argon2_engine,
        }
    }

    /// The database URL without its password, for logs.
    pub fn database_url_redacted(&self) -> String {
        match url::Url::parse(&self.database_url) {
            Ok(mut url) if url.password().is_some() => {
                // Only fails for URLs that cannot have a password at all.
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(_) => self.database_url.clone(),
            Err(_) => "(unparsable database URL)".into(),
        }
    }
}

/// An absolute http(s) URL with nothing after its path: no query, no
/// fragment, no credentials.
fn parse_public_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| error.to_string())?;
    if !matches!(url.scheme(), "https" | "http")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err("must be an http(s) URL without query, fragment or credentials".into());
    }
    Ok(url)
}

/// Token lifetimes from one second to what `expires_in` (u32 seconds) holds.
fn parse_webhook_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| error.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

fn parse_token_lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if lifetime < Duration::from_secs(1) || lifetime.as_secs() > u64::from(u32::MAX) {
        return Err("must be between 1s and 136 years".into());
    }
    Ok(lifetime)
}

/// A rate limit, `None` when `off`. An alias rather than `Option<Rate>` in
/// the fields, because clap reads an `Option` field as "may be absent".
pub type RateOrOff = Option<Rate>;

/// A checkpoint interval of at least 10 ms: a shorter one would flood the
/// feed's watchers with checkpoints.
fn parse_checkpoint_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if interval < Duration::from_millis(10) {
        return Err("must be at least 10ms".into());
    }
    Ok(interval)
}

/// `off`, or a [`Rate`] such as `60/1m`.
fn parse_totp_issuer(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(':') {
        return Err("the TOTP issuer must be non-empty and contain no ':' (authenticator apps split the label there)".into());
    }
    Ok(text.to_owned())
}

fn parse_rate(text: &str) -> Result<RateOrOff, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse().map(Some)
}

/// An origin as browsers send it: scheme, host and optional port, nothing
/// else (RFC 6454).
fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let url = url::Url::parse(text).map_err(|error| error.to_string())?;
    let origin = url.origin().ascii_serialization();
    if origin != text.trim_end_matches('/') {
        return Err(format!(
            "not an origin (scheme://host[:port]); did you mean {origin}?"
        ));
    }
    HeaderValue::from_str(&origin).map_err(|error| error.to_string())
}

/// A bare domain name: what browsers compare an origin's host against.
fn parse_rp_id(text: &str) -> Result<String, String> {
    match url::Host::parse(text) {
        Ok(url::Host::Domain(domain)) if domain == text && !domain.ends_with('.') => Ok(domain),
        _ => Err(
            "must be a lower-case domain name such as example.com, not a URL or an IP address"
                .into(),
        ),
    }
}

/// A WebAuthn origin: http(s), a domain name (browsers offer no passkeys
/// on IP addresses), nothing after the port.
fn parse_webauthn_origin(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| error.to_string())?;
    if !matches!(url.scheme(), "https" | "http") || url.domain().is_none() {
        return Err(
            "must be an http(s) origin on a domain name, e.g. https://app.example.com".into(),
        );
    }
    let origin = url.origin().ascii_serialization();
    if origin != text.trim_end_matches('/') {
        return Err(format!(
            "not an origin (scheme://host[:port]); did you mean {origin}?"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(database_url: &str) -> Settings {
        Cli::parse_from(["authd", "--database-url", database_url]).settings
    }

    #[test]
    fn database_passwords_stay_out_of_logs() {
        assert_eq!(
            settings("postgres://app:s3cr%40t@db:5432/auth").database_url_redacted(),
            "postgres://app:***@db:5432/auth"
        );
        assert_eq!(
            settings("postgres://app@db/auth").database_url_redacted(),
            "postgres://app@db/auth"
        );
        assert_eq!(
            settings("sqlite://authd.db?mode=rwc").database_url_redacted(),
            "sqlite://authd.db?mode=rwc"
        );
    }

    #[test]
    fn cors_origins_must_be_bare_origins() {
        assert_eq!(
            parse_origin("https://app.example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:5173/").unwrap(),
            "http://127.0.0.1:5173"
        );
        assert!(parse_origin("https://app.example.com/path").is_err());
        assert!(parse_origin("*").is_err());
    }

    #[test]
    fn defaults_are_owasp_argon2_and_no_cors() {
        let settings = Cli::parse_from(["authd"]).settings;
        let hashing = settings.hashing();
        assert_eq!(
            (hashing.memory_kib, hashing.iterations, hashing.parallelism),
            (19456, 2, 1)
        );
        assert!(settings.cors_allowed_origins.is_empty());
        assert!(settings.web_root.is_none());
    }

    #[test]
    fn the_jwks_is_cached_for_less_than_a_key_takes_to_sign_after_it_is_published() {
        let mut settings = Cli::parse_from(["authd"]).settings;
        for (interval, max_age) in [(60, 50), (3600, 3590), (5, 0)] {
            settings.key_refresh_interval = Duration::from_secs(interval);
            assert_eq!(settings.jwks_max_age(), Duration::from_secs(max_age));
            assert!(
                settings.key_refresh_interval + settings.jwks_max_age()
                    <= settings.key_activation_delay()
            );
        }
    }

    #[test]
    fn hashes_wait_two_seconds_at_most_and_never_past_the_request_timeout() {
        let defaults = Cli::parse_from(["authd"]).settings;
        assert_eq!(defaults.hashing().max_wait, Duration::from_secs(2));
        let hurried = Cli::parse_from(["authd", "--request-timeout", "500ms"]).settings;
        assert_eq!(hurried.hashing().max_wait, Duration::from_millis(500));
    }

    #[test]
    fn mail_links_are_under_the_public_url_else_the_listen_address() {
        let mail = |args: &[&str]| {
            Cli::parse_from(std::iter::once("authd").chain(args.iter().copied()))
                .settings
                .mail("127.0.0.1:8080".parse().unwrap(), MailTemplates::default())
                .unwrap()
        };
        let off = mail(&[]);
        assert_eq!(off.link_base, "http://127.0.0.1:8080");
        assert!(!off.delivers());
        let on = mail(&[
            "--public-url",
            "https://example.com/auth/",
            "--smtp-url",
            "smtp://127.0.0.1:25",
            "--mail-from",
            "authd <no-reply@mail.example.com>",
        ]);
        assert_eq!(on.link_base, "https://example.com/auth");
        assert_eq!(on.message_id_domain, "mail.example.com");
        assert!(on.smtp && !on.webhook && on.delivers());
    }

    #[test]
    fn the_issuer_is_the_flag_else_the_public_url_else_authd() {
        let issuer = |args: &[&str]| {
            Cli::parse_from(std::iter::once("authd").chain(args.iter().copied()))
                .settings
                .issuer()
        };
        assert_eq!(issuer(&[]), "authd");
        assert_eq!(
            issuer(&["--public-url", "https://auth.example.com"]),
            "https://auth.example.com"
        );
        assert_eq!(
            issuer(&["--public-url", "https://example.com/auth/"]),
            "https://example.com/auth"
        );
        assert_eq!(
            issuer(&["--public-url", "https://a.example", "--issuer", "mine"]),
            "mine"
        );
        for refused in [
            "ftp://a.example",
            "https://a.example/?x=1",
            "https://u:p@a.example",
            "a.example",
        ] {
            assert!(
                Cli::try_parse_from(["authd", "--public-url", refused]).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_argon2_engine_is_argon2_rust_unless_rustcrypto_is_asked_for() {
        let defaults = Cli::parse_from(["authd"]).settings;
        assert_eq!(
            defaults.hashing().implementation,
            Argon2Implementation::Argon2Rust
        );
        let chosen = Cli::parse_from(["authd", "--argon2-engine", "rustcrypto"]).settings;
        assert_eq!(
            chosen.hashing().implementation,
            Argon2Implementation::RustCrypto
        );
        assert!(Cli::try_parse_from(["authd", "--argon2-engine", "libargon2"]).is_err());
    }

    #[test]
    fn passkeys_default_to_localhost_and_the_port_authd_listens_on() {
        let defaults = Cli::parse_from(["authd"]).settings;
        assert_eq!(defaults.webauthn_rp_id, "localhost");
        let party = defaults.relying_party(50051).unwrap();
        assert_eq!(party.origins()[0].as_str(), "http://localhost:50051/");
    }

    #[test]
    fn webauthn_origins_repeat_and_must_be_on_the_rp_id() {
        let settings = Cli::parse_from([
            "authd",
            "--webauthn-rp-id",
            "example.com",
            "--webauthn-origin",
            "https://example.com",
            "--webauthn-origin",
            "https://app.example.com:8443",
        ])
        .settings;
        assert_eq!(settings.relying_party(0).unwrap().origins().len(), 2);
        let off = Cli::parse_from([
            "authd",
            "--webauthn-rp-id",
            "example.com",
            "--webauthn-origin",
            "https://example.org",
        ])
        .settings;
        let error = off.relying_party(0).unwrap_err().to_string();
        assert!(
            error.contains("https://example.org") && error.contains("example.com"),
            "{error}"
        );
        let defaulted = Cli::parse_from(["authd", "--webauthn-rp-id", "example.com"]).settings;
        let error = defaulted.relying_party(8080).unwrap_err().to_string();
        assert!(error.contains("--webauthn-origin"), "{error}");
    }

    #[test]
    fn webauthn_origins_and_rp_ids_that_are_not_bare_domains_are_refused() {
        for (flag, refused) in [
            ("--webauthn-origin", "https://example.com/path"),
            ("--webauthn-origin", "http://127.0.0.1:8080"),
            ("--webauthn-origin", "ftp://example.com"),
            ("--webauthn-rp-id", "https://example.com"),
            ("--webauthn-rp-id", "127.0.0.1"),
            ("--webauthn-rp-id", "Example.com"),
        ] {
            assert!(
                Cli::try_parse_from(["authd", flag, refused]).is_err(),
                "{flag} {refused}"
            );
        }
    }

    #[test]
    fn token_lifetimes_outside_expires_in_are_refused() {
        assert!(parse_token_lifetime("0s").is_err());
        assert!(parse_token_lifetime("200years").is_err());
        assert_eq!(parse_token_lifetime("15m"), Ok(Duration::from_secs(900)));
    }
}
