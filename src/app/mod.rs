//! Builds the application from its settings and serves it. The binary and
//! the tests start authd the same way: `Application::build`, then
//! `run_until_stopped`. Each step has its own file: the routes and their
//! health names, the server and its layers, the background tasks, and the
//! shutdown sequence.

mod health;
mod routes;
mod secrets;
mod server;
mod shutdown;
mod tasks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::config::Settings;
use crate::domain::{
    Authenticator, FileKey, PasswordHasher, RateLimiter, Revocations, RevocationsFrom,
    SecondFactorSettings, TokenService, load_or_create_signing_keys,
};
use crate::mail::SmtpSender;
use crate::metrics;
use crate::secrets::SecretsKeyring;
use crate::storage::Database;
use crate::webhook::HttpWebhookSender;
use health::HealthStatus;

pub use shutdown::shutdown_signal;

/// A bound, ready-to-serve authd.
pub struct Application {
    settings: Settings,
    listener: TcpListener,
    auth: Arc<Authenticator<Database>>,
    health: HealthStatus,
    routes: Routes,
    /// What delivers the outboxes: SMTP, the webhook, both or neither.
    senders: tasks::Senders,
}

impl Application {
    /// Connects to and migrates the database, loads keys and revocations,
    /// and binds the listener. Fails with a message fit for an operator.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        metrics::handle();
        // Before anything else: a relying party browsers would refuse stops
        // start-up with its reason. (Built again once the port is bound.)
        settings.relying_party(settings.listen.port())?;
        // Before the database: a PostgreSQL deployment without a key stops
        // here, before it has changed anything.
        let (secrets, key_origin) = secrets::keyring(&settings)?;
        // Read and checked before anything else starts, so that a bad
        // directory stops authd here rather than when a mail is due.
        let templates = crate::mail::load_templates(settings.mail_templates_dir.as_deref())?;
        let sender = settings
            .smtp()?
            .map(|smtp| SmtpSender::new(&smtp).map(Arc::new))
            .transpose()?;
        // The secret file is read here: a missing or malformed secret stops
        // start-up, not the first event.
        let webhook = settings
            .webhook()?
            .map(|webhook| HttpWebhookSender::new(webhook).map(Arc::new))
            .transpose()?;
        let database = connect_and_migrate(&settings).await?;
        key_origin.log(&secrets);
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|error| cannot_listen(&settings, &error))?;
        // The default WebAuthn origin names the port actually bound.
        let port = listener
            .local_addr()
            .map_or(settings.listen.port(), |address| address.port());
        let factors = settings.second_factors(port)?;
        let listening = listener.local_addr().unwrap_or(settings.listen);
        let mail = settings.mail(listening, templates)?;
        let auth = Arc::new(
            authenticator(database, secrets, factors, &settings)
                .await?
                .with_mail(mail),
        );
        auth.take_up_revocations(RevocationsFrom::InForce)
            .await
            .context("cannot load revocations")?;
        let (health, health_service) = HealthStatus::serving().await;
        let routes = routes::routes(&auth, health_service, &settings)?;
        Ok(Self {
            settings,
            listener,
            auth,
            health,
            routes,
            senders: tasks::Senders {
                mail: sender,
                webhook,
            },
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.settings.listen)
    }

    /// Serves until `shutdown` completes, then lets in-flight RPCs finish.
    /// `shutdown` resolves to how long to keep serving while health reports
    /// NOT_SERVING, so load balancers stop sending new calls first; then
    /// authd stops accepting and gives in-flight calls up to
    /// `--shutdown-timeout` to finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = Duration> + Send,
    ) -> anyhow::Result<()> {
        match (
            &self.settings.smtp_url,
            &self.settings.notification_webhook_url,
        ) {
            (None, None) => tracing::info!(
                "mail: off (no --smtp-url, no --notification-webhook-url); email verification and password reset answer MAIL_NOT_CONFIGURED"
            ),
            (smtp, webhook) => {
                if let Some(url) = smtp {
                    tracing::info!(smtp = %crate::mail::redacted(url), "mail: the outbox sends");
                }
                if let Some(url) = webhook {
                    tracing::info!(
                        webhook = %crate::webhook::redacted(url),
                        "notification webhook: the outbox posts signed events"
                    );
                }
            }
        }
        tracing::info!(
            listen = %self.local_addr(),
            database = %self.settings.database_url_redacted(),
            web_root = %self
                .settings
                .web_root
                .as_deref()
                .map_or_else(|| "off".into(), |path| path.display().to_string()),
            "authd serving gRPC, grpc-web and REST"
        );
        let mut tasks = tasks::spawn(
            &self.auth,
            self.health.clone(),
            &self.settings,
            self.senders.clone(),
        );
        let shutdown_timeout = self.settings.shutdown_timeout;
        let shutdown = shutdown::sequence(
            shutdown,
            Arc::clone(self.auth.tokens().revocations()),
            self.health,
            tasks.health,
            shutdown_timeout,
        );
        let serving = server::serve(&self.settings, self.listener, self.routes, shutdown.stop);
        let served = tokio::select! {
            served = serving => served,
            () = shutdown.give_up => {
                tracing::warn!(timeout = ?shutdown_timeout, "shutdown timeout: dropping the calls still in flight");
                Ok(())
            }
        };
        tasks.set.abort_all();
        tracing::info!("authd stopped");
        served.context("gRPC server failed")
    }
}

/// The domain service on `database`, with its signing keys, password hasher,
/// rate limits and the keyring of its secrets at rest.
pub(crate) async fn authenticator(
    database: Database,
    secrets: SecretsKeyring,
    factors: SecondFactorSettings,
    settings: &Settings,
) -> anyhow::Result<Authenticator<Database>> {
    let files = settings
        .signing_key_files
        .iter()
        .map(|path| FileKey::load(path))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot load the signing key files")?;
    let keys = load_or_create_signing_keys(&database, &secrets)
        .await
        .context("cannot load the token signing keys")?;
    let revocations =
        Revocations::new(settings.token_lifetime).context("cannot set up revocations")?;
    let tokens = TokenService::new(files, &keys, settings.tokens(), Arc::new(revocations))
        .context("cannot set up token signing")?;
    let hasher = PasswordHasher::new(&settings.hashing()).context("invalid argon2 parameters")?;
    Ok(Authenticator::new(
        database,
        hasher,
        Arc::new(tokens),
        RateLimiter::new(settings.rate_limits()),
        settings.sessions(),
        factors,
        secrets,
    ))
}

/// Applies the migrations and exits: `authd migrate`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    connect_and_migrate(settings).await?;
    tracing::info!(database = %settings.database_url_redacted(), "migrations applied");
    Ok(())
}

/// Why the listener cannot be bound, and for an address in use the likely
/// reason: an authd stopped a moment ago keeps serving while it drains.
fn cannot_listen(settings: &Settings, error: &std::io::Error) -> anyhow::Error {
    let listen = settings.listen;
    if error.kind() == std::io::ErrorKind::AddrInUse {
        anyhow::anyhow!(
            "cannot listen on {listen}: {error}; another authd may still be draining on that \
             address (after SIGTERM it serves for --shutdown-drain, then lets calls finish \
             for up to --shutdown-timeout): wait for it to exit, or choose another --listen"
        )
    } else {
        anyhow::anyhow!("cannot listen on {listen}: {error}")
    }
}

/// The keyring of the operator's commands. Call it once their database is
/// open, so that no default key file is made beside a database that is not
/// there.
pub(crate) fn secrets_keyring(settings: &Settings) -> anyhow::Result<SecretsKeyring> {
    secrets::keyring(settings).map(|(keyring, _)| keyring)
}

/// The database of the operator's commands (`authd users ...`, `authd keys
/// ...`): one that exists and is migrated, never created or migrated here,
/// so that a command run with the wrong URL or in the wrong directory says
/// so instead of working on an empty database.
pub(crate) async fn open_existing(settings: &Settings) -> anyhow::Result<Database> {
    let url = settings.database_url_redacted();
    Database::open_existing(&settings.database())
        .await
        .with_context(|| format!("database {url}"))
}

pub(crate) async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<Database> {
    let url = settings.database_url_redacted();
    let database = Database::connect(&settings.database())
        .await
        .with_context(|| format!("database {url}"))?;
    database
        .migrate()
        .await
        .with_context(|| format!("database {url}"))?;
    Ok(database)
}
