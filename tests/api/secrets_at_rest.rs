//! Secrets at rest: the signing keys' private halves are stored sealed
//! under a key that is not in the database; a database from before sealing
//! is sealed in place; `authd keys reseal` moves everything to a new key.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use authd::app::Application;
use authd::domain::{SigningKeyStore as _, generate_signing_key};
use authd::secrets::{SecretsKeyring, create_key_file, read_key_file};
use authd::storage::{Database, DatabaseSettings};
use jsonwebtoken::{EncodingKey, Header};
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::json;

use crate::helpers::{
    PASSWORD, TestApp, TestDatabase, authd_command, postgres_admin_url, secrets_key_file_of,
    spawn_authd_process_logged, terminate, unique_username,
};
use crate::keys::{kid_of, rotate};

/// What every Ed25519 private key in PKCS#8 DER holds just before its
/// 32-byte seed, in v1 (`302e020100…`) and v2 (`3051020101…`, ed25519-dalek's
/// and so authd's) alike: the algorithm's OID, then the seed's OCTET STRING
/// headers.
const PKCS8_ED25519_MARKER: [u8; 9] = [0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// A stored signing key as the database holds it.
struct StoredKey {
    kid: String,
    private_key: Vec<u8>,
    public_key: Vec<u8>,
}

async fn stored_keys(database: &TestDatabase) -> Vec<StoredKey> {
    let connection = database.connect().await;
    let backend = connection.get_database_backend();
    let rows = connection
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT kid, private_key, public_key FROM signing_keys",
        ))
        .await
        .expect("signing keys");
    connection.close().await.expect("close");
    rows.iter()
        .map(|row| StoredKey {
            kid: row.try_get("", "kid").expect("kid"),
            private_key: row.try_get("", "private_key").expect("private key"),
            public_key: row.try_get("", "public_key").expect("public key"),
        })
        .collect()
}

/// Opens a stored key's private half with `keyring`, checking that it is
/// the private half of the stored public key; returns its seed.
fn open_seed(key: &StoredKey, keyring: &SecretsKeyring) -> [u8; 32] {
    let der = keyring
        .open(
            &key.private_key,
            format!("signing-key:{}", key.kid).as_bytes(),
        )
        .expect("the stored key opens");
    assert_eq!(der[7..16], PKCS8_ED25519_MARKER, "PKCS#8 Ed25519 inside");
    let seed: [u8; 32] = der[16..48].try_into().expect("a 32-byte seed");
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    assert_eq!(public.as_bytes().as_slice(), key.public_key, "{}", key.kid);
    seed
}

/// The whole database as its tools dump it (`sqlite3 .dump`, `pg_dump`),
/// lowercased: blobs appear there in hex.
async fn dump(database: &TestDatabase) -> Vec<u8> {
    let output = match &database.postgres_name {
        Some(_) => {
            tokio::process::Command::new("pg_dump")
                .args(["--data-only", &database.url])
                .output()
                .await
        }
        None => {
            tokio::process::Command::new("sqlite3")
                .args([&*sqlite_path(&database.url), ".dump"])
                .output()
                .await
        }
    }
    .expect("the database's dump tool runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = output.stdout.to_ascii_lowercase();
    assert!(
        contains(&dump, b"signing_keys"),
        "a dump of authd's database"
    );
    dump
}

/// On SQLite, the raw bytes of the database's files, for anything a dump
/// would not show (free pages, the write-ahead log); nothing on PostgreSQL.
fn database_files(database: &TestDatabase) -> Vec<u8> {
    if database.postgres_name.is_some() {
        return Vec::new();
    }
    let file = sqlite_path(&database.url);
    [file.clone(), format!("{file}-wal")]
        .iter()
        .flat_map(|path| std::fs::read(path).unwrap_or_default())
        .collect()
}

fn sqlite_path(url: &str) -> String {
    url.trim_start_matches("sqlite://")
        .split('?')
        .next()
        .expect("a path")
        .to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Asserts that `dump` shows none of `seeds` nor any PKCS#8 Ed25519 key,
/// in hex or raw.
fn assert_no_private_key_in(dump: &[u8], seeds: &[[u8; 32]]) {
    let needles = seeds.iter().map(|seed| seed.as_slice());
    for needle in needles.chain([PKCS8_ED25519_MARKER.as_slice()]) {
        assert!(
            !contains(dump, hex(needle).as_bytes()),
            "{} in hex",
            hex(needle)
        );
        assert!(!contains(dump, needle), "{} in raw bytes", hex(needle));
    }
}

/// A migrated database holding one signing key stored the way authd did
/// before sealing: its PKCS#8 in clear. Returns the key's id and a token it
/// signed for a user that exists nowhere (Verify checks the token alone).
async fn database_with_a_clear_key() -> (Arc<TestDatabase>, String, String) {
    let database = Arc::new(TestDatabase::create().await);
    let storage = Database::connect(&DatabaseSettings {
        url: database.url.clone(),
        max_connections: 1,
        connect_timeout: std::time::Duration::from_secs(5),
    })
    .await
    .expect("connect");
    storage.migrate().await.expect("migrate");
    let key = generate_signing_key(chrono::Utc::now() - chrono::Duration::hours(1)).expect("key");
    storage
        .insert_signing_key(&key)
        .await
        .expect("stored in clear");
    let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid.clone());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "authd", "aud": "authd", "sub": uuid::Uuid::now_v7().to_string(),
        "username": "from-before", "iat": now, "nbf": now - 60, "exp": now + 600,
        "jti": uuid::Uuid::new_v4().simple().to_string(),
    });
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ed_der(&key.private_key),
    )
    .expect("sign");
    let stored = stored_keys(&database).await;
    assert!(
        contains(&stored[0].private_key, &PKCS8_ED25519_MARKER),
        "in clear, as before"
    );
    (database, key.kid, token)
}

#[tokio::test]
async fn with_sqlite_the_default_key_is_made_private_beside_the_database_and_kept_across_restarts()
{
    if postgres_admin_url().is_some() {
        eprintln!("skipped: the default key file is SQLite's");
        return;
    }
    let app = TestApp::spawn().await;
    let key_file = secrets_key_file_of(&app.database.url);
    let metadata = std::fs::metadata(&key_file).expect("a key file beside the database");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let key_text = std::fs::read_to_string(&key_file).expect("key");
    let name = unique_username();
    let token = app.registered_token(&name).await;

    let app = app.restart().await;

    assert_eq!(
        std::fs::read_to_string(&key_file).expect("key"),
        key_text,
        "the same key"
    );
    app.verify(&token)
        .await
        .expect("a token from before the restart verifies");
    let after = app
        .login(&name, PASSWORD)
        .await
        .expect("login")
        .access_token;
    assert_eq!(
        kid_of(&after),
        kid_of(&token),
        "the same signing key, opened again"
    );
}

#[tokio::test]
async fn postgresql_without_a_secrets_key_refuses_to_start_and_says_how_to_make_one() {
    // Refused before any connection: this database need not exist.
    let output = authd_command()
        .env_remove("AUTHD_SECRETS_KEY_FILE")
        .args(["--database-url", "postgres://postgres@127.0.0.1:1/authd"])
        .output()
        .await
        .expect("runs");

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("openssl rand -base64 32 > authd-secrets.key"),
        "{stderr}"
    );
    assert!(lines[0].contains("--secrets-key-file"), "{stderr}");
    assert!(!lines[0].contains("cannot connect"), "{stderr}");
}

#[tokio::test]
async fn a_missing_short_or_garbled_key_file_stops_the_start_naming_the_file() {
    let directory = tempfile::tempdir().expect("dir");
    let database = TestDatabase::create().await;
    let missing = directory.path().join("missing.key");
    let short = directory.path().join("short.key");
    std::fs::write(&short, "AAAAAAAAAAAAAAAAAAAAAA==\n").expect("write");
    let garbled = directory.path().join("garbled.key");
    std::fs::write(&garbled, "hunter2 hunter2 hunter2\n").expect("write");

    for (path, reason) in [
        (&missing, "No such file"),
        (&short, "16 bytes where 32 are needed"),
        (&garbled, "not base64"),
    ] {
        let output = authd_command()
            .args(["--database-url", &database.url, "--secrets-key-file"])
            .arg(path)
            .output()
            .await
            .expect("runs");

        assert_eq!(output.status.code(), Some(1), "{reason}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last_line = stderr.lines().last().unwrap_or_default();
        assert!(last_line.contains(&path.display().to_string()), "{stderr}");
        assert!(last_line.contains(reason), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[tokio::test]
async fn a_key_file_others_may_read_is_used_with_a_warning() {
    let directory = tempfile::tempdir().expect("dir");
    let key_file = directory.path().join("authd-secrets.key");
    create_key_file(&key_file).expect("key file");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let database = TestDatabase::create().await;
    let migrated = authd_command()
        .args(["--database-url", &database.url, "migrate"])
        .output()
        .await
        .expect("runs");
    assert!(migrated.status.success());

    let output = authd_command()
        .args([
            "--database-url",
            &database.url,
            "keys",
            "reseal",
            "--secrets-key-file",
        ])
        .arg(&key_file)
        .output()
        .await
        .expect("runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|line| line.contains("WARN"))
        .unwrap_or_else(|| panic!("no warning in {stderr}"));
    assert!(warning.contains("mode=0644"), "{warning}");
    assert!(
        warning.contains(&key_file.display().to_string()),
        "{warning}"
    );
}

#[tokio::test]
async fn a_database_dump_holds_no_private_key_in_clear() {
    let app = TestApp::spawn().await;
    app.registered_token(&unique_username()).await;
    rotate(&app.database.url, "1h").await;

    let keyring = app.database.secrets_keyring();
    let stored = stored_keys(&app.database).await;
    assert_eq!(stored.len(), 2, "the first key and a rotated one");
    let seeds: Vec<[u8; 32]> = stored.iter().map(|key| open_seed(key, &keyring)).collect();
    for key in &stored {
        assert!(keyring.is_current(&key.private_key), "{} sealed", key.kid);
    }
    assert_no_private_key_in(&dump(&app.database).await, &seeds);
    assert_no_private_key_in(&database_files(&app.database), &seeds);
}

#[tokio::test]
async fn a_database_with_keys_in_clear_is_sealed_at_start_and_its_tokens_keep_verifying() {
    let (database, kid, token) = database_with_a_clear_key().await;

    let app = TestApp::spawn_on(Arc::clone(&database), |_| {}).await;

    app.verify(&token)
        .await
        .expect("a token from before sealing verifies");
    let name = unique_username();
    let new_token = app.registered_token(&name).await;
    assert_eq!(kid_of(&new_token), kid, "the same key signs");
    let stored = stored_keys(&database).await;
    assert_eq!(stored.len(), 1);
    let seed = open_seed(&stored[0], &database.secrets_keyring());
    // The dump only: sealing in place leaves the old page in SQLite's files
    // until it is reused (SECURITY.md says so).
    assert_no_private_key_in(&dump(&database).await, &[seed]);

    let app = app.restart().await;
    app.verify(&token)
        .await
        .expect("and after a restart, from the sealed key");
    app.verify(&new_token).await.expect("new tokens too");
}

#[tokio::test]
async fn instances_starting_together_on_keys_in_clear_seal_each_key_once() {
    let (database, kid, token) = database_with_a_clear_key().await;

    let (first, second) = tokio::join!(
        TestApp::spawn_on(Arc::clone(&database), |_| {}),
        TestApp::spawn_on(Arc::clone(&database), |_| {}),
    );

    let keyring = database.secrets_keyring();
    let stored = stored_keys(&database).await;
    assert_eq!(stored.len(), 1);
    open_seed(&stored[0], &keyring);
    for app in [&first, &second] {
        app.verify(&token).await.expect("verifies");
        let signed = app.registered_token(&unique_username()).await;
        assert_eq!(kid_of(&signed), kid);
    }
}

#[tokio::test]
async fn reseal_moves_every_key_to_the_new_secrets_key_and_the_old_one_is_then_not_needed() {
    let directory = tempfile::tempdir().expect("dir");
    let old_key = directory.path().join("old.key");
    let new_key = directory.path().join("new.key");
    create_key_file(&old_key).expect("old key");
    create_key_file(&new_key).expect("new key");
    let new_id = read_key_file(&new_key).expect("new key").id().to_string();
    let app =
        TestApp::spawn_with(|settings| settings.secrets_key_file = Some(old_key.clone())).await;
    let name = unique_username();
    let token = app.registered_token(&name).await;
    let now = crate::second_factor::steady_now().await;
    let with_totp = crate::second_factor::enroll_at(&app, now, -1).await;
    let database = Arc::clone(&app.database);
    let mut settings = app.settings.clone();
    drop(app);
    let reseal = || async {
        let output = authd_command()
            .args([
                "--database-url",
                &database.url,
                "keys",
                "reseal",
                "--secrets-key-file",
            ])
            .arg(&new_key)
            .arg("--previous-secrets-key-file")
            .arg(&old_key)
            .output()
            .await
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.is_empty(), "an operator command logged: {stderr}");
        String::from_utf8(output.stdout).expect("utf-8")
    };

    assert_eq!(
        reseal().await,
        format!(
            "resealed 1 signing keys and 1 TOTP secrets under secrets key {new_id} (0 and 0 already were)\n"
        )
    );
    assert_eq!(
        reseal().await,
        format!(
            "resealed 0 signing keys and 0 TOTP secrets under secrets key {new_id} (1 and 1 already were)\n"
        ),
        "a second run has nothing left to do"
    );

    settings.listen = "127.0.0.1:0".parse().expect("address");
    settings.secrets_key_file = Some(old_key.clone());
    let refused = Application::build(settings.clone())
        .await
        .err()
        .expect("the old key alone no longer opens the signing key");
    let message = format!("{refused:#}");
    assert!(
        message.contains(&format!("sealed under secrets key {new_id}")),
        "{message}"
    );

    let app = TestApp::spawn_on(database, |settings| {
        settings.secrets_key_file = Some(new_key.clone());
    })
    .await;
    app.verify(&token).await.expect("tokens from before verify");
    let after = app
        .login(&name, PASSWORD)
        .await
        .expect("login")
        .access_token;
    assert_eq!(kid_of(&after), kid_of(&token));
    // The TOTP secret opens under the new key alone.
    let ticket = crate::second_factor::ticket(&app, &with_totp.username).await;
    app.client
        .clone()
        .complete_login(authd::grpc::pb::CompleteLoginRequest {
            ticket,
            proof: Some(authd::grpc::pb::complete_login_request::Proof::TotpCode(
                crate::second_factor::code(&with_totp.secret, now, 0),
            )),
        })
        .await
        .expect("the resealed TOTP secret still checks codes");
}

#[tokio::test]
async fn an_in_memory_database_gets_a_key_of_its_own_lifetime() {
    if postgres_admin_url().is_some() {
        eprintln!("skipped: in-memory databases are SQLite's");
        return;
    }
    let (mut authd, _, _, log) =
        spawn_authd_process_logged(&[], &["--database-url", "sqlite::memory:"]).await;
    terminate(&mut authd).await;

    let log = log.lock().expect("log").join("\n");
    let line = log
        .lines()
        .find(|line| line.contains("secrets key"))
        .unwrap_or_else(|| panic!("no line about the secrets key in:\n{log}"));
    assert!(line.contains("ephemeral"), "{line}");
    assert!(!line.contains("path="), "no key file: {line}");
}
