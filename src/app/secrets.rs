//! The keyring secrets at rest are sealed with, from the configured key
//! files, or by default: beside a SQLite file, or for this run alone with an
//! in-memory database. PostgreSQL has no default: its instances must share
//! one key, which only the operator can hand them all.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Settings;
use crate::secrets::{
    SecretsKey, SecretsKeyring, create_key_file, loose_permissions, read_key_file,
};
use crate::storage::sqlite_file;

/// Where the key that seals came from.
pub(crate) enum KeyOrigin {
    /// `--secrets-key-file`.
    Configured(PathBuf),
    /// The default beside a SQLite file, and whether this start made it.
    BesideDatabase { path: PathBuf, created: bool },
    /// Made for this run's in-memory database, gone with it.
    Ephemeral,
}

impl KeyOrigin {
    /// Logs where the key is (never the key), for the server's start; the
    /// operator's commands say nothing unless something is wrong.
    pub(crate) fn log(&self, keyring: &SecretsKeyring) {
        let key_id = keyring.current_key_id();
        match self {
            Self::Configured(path) => {
                tracing::info!(path = %path.display(), %key_id, "secrets key file");
            }
            Self::BesideDatabase { path, created } => tracing::info!(
                path = %path.display(),
                %key_id,
                created,
                "secrets key file beside the database: without it the database's sealed \
                 secrets cannot be opened; back it up, apart from the database's backups"
            ),
            Self::Ephemeral => tracing::info!(
                %key_id,
                "secrets key: an ephemeral one, for this in-memory database's lifetime"
            ),
        }
    }
}

/// Builds the keyring from `--secrets-key-file` and
/// `--previous-secrets-key-file`, or the default for the database: a SQLite
/// file's sibling `<file>.secrets-key`, created if absent; an ephemeral key
/// for in-memory SQLite; none for PostgreSQL, which fails saying how to
/// make one.
pub(crate) fn keyring(settings: &Settings) -> anyhow::Result<(SecretsKeyring, KeyOrigin)> {
    let (current, origin) = match &settings.secrets_key_file {
        Some(path) => (read_configured(path)?, KeyOrigin::Configured(path.clone())),
        None => default_key(&settings.database_url)?,
    };
    let previous = settings
        .previous_secrets_key_files
        .iter()
        .map(|path| read_configured(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((SecretsKeyring::new(current, previous), origin))
}

fn read_configured(path: &Path) -> anyhow::Result<SecretsKey> {
    let key = read_key_file(path)?;
    warn_if_shared(path);
    Ok(key)
}

fn default_key(database_url: &str) -> anyhow::Result<(SecretsKey, KeyOrigin)> {
    if !database_url.starts_with("sqlite:") {
        anyhow::bail!(
            "no secrets key: with PostgreSQL, every instance needs the same key file to \
             seal and open the secrets in the database. Make one with \
             `openssl rand -base64 32 > authd-secrets.key` (then `chmod 600` it), and give it \
             to every instance with --secrets-key-file authd-secrets.key (or \
             AUTHD_SECRETS_KEY_FILE)"
        );
    }
    let Some(database) = sqlite_file(database_url)? else {
        return Ok((SecretsKey::generate()?, KeyOrigin::Ephemeral));
    };
    let path = default_path(&database);
    let (key, created) = create_key_file(&path)
        .context("cannot set up the default secrets key beside the SQLite database")?;
    if !created {
        warn_if_shared(&path);
    }
    Ok((key, KeyOrigin::BesideDatabase { path, created }))
}

/// `<database file>.secrets-key`, absolute so that the log says where.
fn default_path(database: &Path) -> PathBuf {
    let database = std::path::absolute(database).unwrap_or_else(|_| database.to_owned());
    let mut name = database.file_name().unwrap_or_default().to_owned();
    name.push(".secrets-key");
    database.with_file_name(name)
}

/// Warns rather than refuses: secret stores mount files with modes of
/// their own (Kubernetes' default is 0644), and refusing those would stop
/// a deployment that is otherwise sound.
fn warn_if_shared(path: &Path) {
    if let Some(mode) = loose_permissions(path) {
        tracing::warn!(
            path = %path.display(),
            mode = %format_args!("{mode:04o}"),
            "the secrets key file may be read by other users: make it 0600 (or 0400)"
        );
    }
}
