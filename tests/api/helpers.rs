//! `TestApp`: a running authd with a typed client, on a fresh database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use authd::app::Application;
use authd::config::{Cli, Settings};
use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::{
    ChangePasswordRequest, ChangePasswordResponse, DeleteAccountRequest, DeleteAccountResponse,
    ListSessionsRequest, LoginRequest, LoginResponse, LogoutRequest, LogoutResponse,
    RefreshRequest, RefreshResponse, RegisterRequest, RegisterResponse, RevokeSessionRequest,
    RevokeSessionResponse, Session, VerifyRequest, VerifyResponse,
};
use clap::Parser as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

/// Held by the tests that hash with real argon2 costs (floods, deadlines,
/// timing), so that they never compete with each other for the CPU.
static CPU_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until no other CPU-heavy test runs; hold the guard for the test.
pub async fn cpu_heavy() -> tokio::sync::MutexGuard<'static, ()> {
    CPU_HEAVY.lock().await
}

/// Puts back authd's default argon2 costs (OWASP's 19 MiB, 2 passes), for
/// tests whose timing must be real; hold [`cpu_heavy`] while they run.
pub fn default_argon2(settings: &mut Settings) {
    let defaults = Cli::parse_from(["authd"]).settings;
    settings.argon2_memory_kib = defaults.argon2_memory_kib;
    settings.argon2_iterations = defaults.argon2_iterations;
    settings.argon2_parallelism = defaults.argon2_parallelism;
}

/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// The token lifetime every test app uses.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Which database the suite runs on.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Runs a statement on the PostgreSQL server as its administrator.
pub async fn postgres_admin(sql: &str) {
    let admin_url = postgres_admin_url().expect("TEST_DATABASE_URL is set");
    let admin = sea_orm::Database::connect(&admin_url)
        .await
        .expect("TEST_DATABASE_URL must reach PostgreSQL");
    admin.execute_unprepared(sql).await.expect(sql);
    admin.close().await.expect("close");
}

/// The secrets key file of every test on PostgreSQL, where authd needs one:
/// instances on one database share it, as a deployment's do. Made once, in
/// Cargo's temporary directory for tests.
pub fn shared_secrets_key_file() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("authd-test-secrets.key");
    authd::secrets::create_key_file(&path).expect("test secrets key file");
    path
}

/// The key file the server uses for `database_url` when none is given:
/// beside a SQLite file (the server makes it); on PostgreSQL the tests'
/// shared one.
pub fn secrets_key_file_of(database_url: &str) -> PathBuf {
    match database_url.strip_prefix("sqlite://") {
        Some(rest) => {
            let file = rest.split('?').next().expect("a path");
            PathBuf::from(format!("{file}.secrets-key"))
        }
        None => shared_secrets_key_file(),
    }
}

/// A database of one test: a SQLite file in a temporary directory, or a
/// fresh PostgreSQL database.
pub struct TestDatabase {
    pub url: String,
    /// The PostgreSQL database name, or none on SQLite.
    pub postgres_name: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDatabase {
    pub async fn create() -> Self {
        match postgres_admin_url() {
            Some(admin_url) => {
                let name = format!("authd_test_{}", uuid::Uuid::new_v4().simple());
                postgres_admin(&format!("CREATE DATABASE {name}")).await;
                let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    postgres_name: Some(name),
                    _dir: None,
                }
            }
            None => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("authd.db").display()
                );
                Self {
                    url,
                    postgres_name: None,
                    _dir: Some(dir),
                }
            }
        }
    }

    /// A direct connection, for looking behind the service's back.
    pub async fn connect(&self) -> DatabaseConnection {
        sea_orm::Database::connect(&self.url)
            .await
            .expect("connect to test database")
    }

    /// The keyring the server seals this database's secrets with (on
    /// SQLite, once the server has made its key file).
    pub fn secrets_keyring(&self) -> authd::secrets::SecretsKeyring {
        let key = authd::secrets::read_key_file(&secrets_key_file_of(&self.url))
            .expect("the server's secrets key");
        authd::secrets::SecretsKeyring::new(key, Vec::new())
    }

    /// Runs a query and returns one column of the first row.
    pub async fn query_value<T: sea_orm::TryGetable>(&self, sql: &str, column: &str) -> T {
        let connection = self.connect().await;
        let backend = connection.get_database_backend();
        let row = connection
            .query_one_raw(Statement::from_string(backend, sql))
            .await
            .expect("query")
            .expect("a row");
        let value = row.try_get("", column).expect("column");
        connection.close().await.expect("close");
        value
    }
}

/// Settings for tests: authd's defaults, but an ephemeral port, cheap
/// argon2 parameters (the defaults are covered by a test of their own) and
/// quick health checks and catch-ups.
pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Cli::parse_from(["authd"]).settings;
    settings.listen = "127.0.0.1:0".parse().expect("address");
    settings.database_url = database_url.to_owned();
    if postgres_admin_url().is_some() {
        settings.secrets_key_file = Some(shared_secrets_key_file());
    }
    settings.database_max_connections = 5;
    settings.database_timeout = Duration::from_secs(2);
    settings.token_lifetime = TOKEN_LIFETIME;
    settings.revocation_refresh_interval = Duration::from_millis(100);
    settings.argon2_memory_kib = 256;
    settings.argon2_iterations = 1;
    settings.shutdown_drain = Duration::ZERO;
    settings.shutdown_timeout = Duration::from_secs(10);
    settings.health_check_interval = Duration::from_millis(100);
    settings.revocation_feed_tokens = vec![FEED_TOKEN.into()];
    settings.revocation_checkpoint_interval = Duration::from_millis(200);
    settings
}

/// The revocation feed's credential in tests.
pub const FEED_TOKEN: &str = "test-feed-credential";

/// A running authd and a client connected to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, for REST and grpc-web.
    pub base_url: String,
    /// An HTTP/1.1 client (REST and grpc-web), no cookie store: tests look
    /// at cookies themselves.
    pub http: reqwest::Client,
    pub client: AuthServiceClient<Channel>,
    pub channel: Channel,
    pub database: Arc<TestDatabase>,
    pub settings: Settings,
    /// Sends the drain time that starts a graceful shutdown.
    shutdown: Option<oneshot::Sender<Duration>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts authd on a fresh database with adjusted settings.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_on(Arc::new(TestDatabase::create().await), configure).await
    }

    /// Starts authd on a database the test has prepared, with adjusted
    /// settings.
    pub async fn spawn_on(
        database: Arc<TestDatabase>,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = test_settings(&database.url);
        configure(&mut settings);
        Self::start(settings, database).await
    }

    async fn start(settings: Settings, database: Arc<TestDatabase>) -> Self {
        let application = Application::build(settings.clone())
            .await
            .expect("authd starts");
        let address = application.local_addr();
        let (shutdown, stopped) = oneshot::channel::<Duration>();
        let server = tokio::spawn(
            application.run_until_stopped(async { stopped.await.unwrap_or(Duration::ZERO) }),
        );
        let channel = Channel::from_shared(format!("http://{address}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to authd");
        Self {
            base_url: format!("http://{address}"),
            http: reqwest::Client::builder()
                .http1_only()
                .build()
                .expect("HTTP client"),
            client: AuthServiceClient::new(channel.clone()),
            channel,
            database,
            settings,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Starts authd with other names for the identity headers it gives
    /// proxies.
    pub async fn spawn_with_identity_headers(user_id: &str, username: &str) -> Self {
        Self::spawn_with(|settings| {
            settings.user_id_header = user_id.parse().expect("header name");
            settings.username_header = username.parse().expect("header name");
        })
        .await
    }

    /// A second instance on the same database, with the same settings.
    pub async fn spawn_beside(&self) -> Self {
        self.spawn_beside_with(|_| {}).await
    }

    /// A second instance on the same database, with adjusted settings.
    pub async fn spawn_beside_with(&self, configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().expect("address");
        configure(&mut settings);
        Self::start(settings, Arc::clone(&self.database)).await
    }

    /// An HTTP client whose connections come from another loopback address.
    pub fn http_from(&self, address: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .http1_only()
            .local_address(address.parse::<std::net::IpAddr>().expect("address"))
            .build()
            .expect("HTTP client")
    }

    /// Stops the server gracefully and starts a new one on the same database.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// Restarts on the same database with adjusted settings.
    pub async fn restart_with(mut self, configure: impl FnOnce(&mut Settings)) -> Self {
        self.stop().await;
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().expect("address");
        configure(&mut settings);
        Self::start(settings, Arc::clone(&self.database)).await
    }

    /// Starts a graceful shutdown: NOT_SERVING for `drain`, then no new
    /// connections.
    pub fn begin_shutdown(&mut self, drain: Duration) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(drain);
        }
    }

    /// Shuts down gracefully and waits until the server has stopped.
    pub async fn stop(&mut self) {
        self.begin_shutdown(Duration::ZERO);
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    pub async fn register(
        &self,
        username: &str,
        password: &str,
    ) -> Result<RegisterResponse, Status> {
        self.client
            .clone()
            .register(RegisterRequest {
                username: username.into(),
                password: password.into(),
                email: String::new(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Registers a user that must succeed; returns its access token.
    pub async fn registered_token(&self, username: &str) -> String {
        self.register(username, PASSWORD)
            .await
            .expect("registration succeeds")
            .access_token
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse, Status> {
        self.client
            .clone()
            .login(LoginRequest {
                username: username.into(),
                password: password.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Login with a client deadline (`grpc-timeout`). The client gives up
    /// on its own then too, with CANCELLED.
    pub async fn login_within(
        &self,
        username: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<LoginResponse, Status> {
        let mut request = Request::new(LoginRequest {
            username: username.into(),
            password: password.into(),
        });
        request.set_timeout(timeout);
        self.client
            .clone()
            .login(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Logout with `authorization: Bearer <token>`.
    pub async fn logout(&self, token: &str) -> Result<LogoutResponse, Status> {
        self.logout_with_authorization(&format!("Bearer {token}"))
            .await
    }

    /// Logout with exactly this `authorization` value.
    pub async fn logout_with_authorization(&self, value: &str) -> Result<LogoutResponse, Status> {
        let mut request = Request::new(LogoutRequest {});
        request.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(value).expect("ASCII metadata"),
        );
        self.client
            .clone()
            .logout(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<RefreshResponse, Status> {
        self.client
            .clone()
            .refresh(RefreshRequest {
                refresh_token: refresh_token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// ListSessions as the owner of `token`.
    pub async fn list_sessions(&self, token: &str) -> Result<Vec<Session>, Status> {
        self.client
            .clone()
            .list_sessions(with_bearer(ListSessionsRequest {}, token))
            .await
            .map(|response| response.into_inner().sessions)
    }

    /// RevokeSession as the owner of `token`.
    pub async fn revoke_session(
        &self,
        token: &str,
        session_id: &str,
    ) -> Result<RevokeSessionResponse, Status> {
        let request = RevokeSessionRequest {
            session_id: session_id.into(),
        };
        self.client
            .clone()
            .revoke_session(with_bearer(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    /// ChangePassword as the owner of `token`.
    pub async fn change_password(
        &self,
        token: &str,
        current_password: &str,
        new_password: &str,
    ) -> Result<ChangePasswordResponse, Status> {
        let request = ChangePasswordRequest {
            current_password: current_password.into(),
            new_password: new_password.into(),
            second: None,
        };
        self.client
            .clone()
            .change_password(with_bearer(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    /// DeleteAccount as the owner of `token`.
    pub async fn delete_account(
        &self,
        token: &str,
        password: &str,
    ) -> Result<DeleteAccountResponse, Status> {
        let request = DeleteAccountRequest {
            password: password.into(),
            second: None,
        };
        self.client
            .clone()
            .delete_account(with_bearer(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn verify(&self, token: &str) -> Result<VerifyResponse, Status> {
        self.client
            .clone()
            .verify(VerifyRequest {
                access_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

impl TestApp {
    /// A GET request to a path of the HTTP surface.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base_url))
    }

    /// A POST request to a path of the HTTP surface.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base_url))
    }

    /// POSTs a JSON body to a REST endpoint.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.post(path)
            .json(&body)
            .send()
            .await
            .expect("REST request")
    }

    /// `POST /user/register` with a username and password.
    pub async fn rest_register(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/user/register",
            serde_json::json!({"username": username, "password": password}),
        )
        .await
    }

    /// `POST /login` with a username and password.
    pub async fn rest_login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/login",
            serde_json::json!({"username": username, "password": password}),
        )
        .await
    }

    /// `POST /logout` with `Authorization: Bearer <token>`.
    pub async fn rest_logout(&self, token: &str) -> reqwest::Response {
        self.post("/logout")
            .bearer_auth(token)
            .send()
            .await
            .expect("REST request")
    }
}

/// Polls Verify until it refuses `token` with `expected`, for at most ten
/// seconds.
pub async fn wait_until_refused(app: &TestApp, token: &str, expected: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match app.verify(token).await {
            Err(status)
                if status.code() == Code::Unauthenticated && reason(&status) == expected =>
            {
                return;
            }
            outcome => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "still accepted: {outcome:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A gRPC request with `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII metadata"),
    );
    request
}

/// The reason and status of a problem+json response, checking its shape.
pub async fn problem(response: reqwest::Response) -> (u16, String, serde_json::Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "status {status}");
    let body: serde_json::Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank", "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    let reason = body["reason"].as_str().expect("reason").to_owned();
    (status, reason, body)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.begin_shutdown(Duration::ZERO);
    }
}

/// The `authd` binary with a clean environment, logging at `info` (and on
/// PostgreSQL with the tests' secrets key).
pub fn authd_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"));
    command
        .env_clear()
        .env("RUST_LOG", "info")
        .kill_on_drop(true);
    if postgres_admin_url().is_some() {
        command.env("AUTHD_SECRETS_KEY_FILE", shared_secrets_key_file());
    }
    command
}

/// Starts the `authd` binary with `args` (plus an ephemeral port) and waits
/// until it serves; returns the process, its address and its log line.
pub async fn spawn_authd_process(args: &[&str]) -> (tokio::process::Child, String, String) {
    spawn_authd_process_with_env(&[], args).await
}

/// [`spawn_authd_process`] with these environment variables set for authd.
pub async fn spawn_authd_process_with_env(
    env: &[(&str, &str)],
    args: &[&str],
) -> (tokio::process::Child, String, String) {
    let (child, address, serving, _log) = spawn_authd_process_logged(env, args).await;
    (child, address, serving)
}

/// The log lines of a spawned authd, as they come.
pub type ProcessLog = Arc<std::sync::Mutex<Vec<String>>>;

/// [`spawn_authd_process_with_env`], also keeping its log lines: those up
/// to the "serving" one, then the rest as they come.
pub async fn spawn_authd_process_logged(
    env: &[(&str, &str)],
    args: &[&str],
) -> (tokio::process::Child, String, String, ProcessLog) {
    use tokio::io::{AsyncBufReadExt as _, BufReader};
    let mut child = authd_command()
        .envs(env.iter().copied())
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("authd starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let log = ProcessLog::default();
    let serving = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            log.lock().expect("log").push(line.clone());
            if line.contains("authd serving") {
                return line;
            }
        }
        panic!("authd exited before serving");
    })
    .await
    .expect("authd starts serving");
    // Keep reading, so that a full pipe never blocks authd's logging.
    let kept = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().expect("log").push(line);
        }
    });
    let address = serving
        .split("listen=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address in the log line")
        .to_owned();
    (child, address, serving, log)
}

/// Sends SIGTERM to a spawned authd and waits (30 s at most) for it to exit.
pub async fn terminate(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops after SIGTERM")
        .expect("exit status")
}

/// The `google.rpc.ErrorInfo` reason of a status, checking its domain.
pub fn reason(status: &Status) -> String {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("status without ErrorInfo: {status:?}"));
    assert_eq!(info.domain, "authd");
    info.reason
}

/// Asserts the code and the ErrorInfo reason of a failed call.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    outcome: Result<T, Status>,
    code: Code,
    expected_reason: &str,
) -> Status {
    let status = outcome.expect_err("the call must be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status), expected_reason, "{status:?}");
    status
}

/// The fields named by the `google.rpc.BadRequest` details.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| violation.field)
                .collect()
        })
        .unwrap_or_default()
}

/// A username no other test uses.
pub fn unique_username() -> String {
    format!("user-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A token whose signature no longer matches: one character in the middle
/// of the signature changed (never the last one, whose spare bits a
/// decoder might ignore).
pub fn with_broken_signature(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let position = bytes.len() - 20;
    bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII token")
}
