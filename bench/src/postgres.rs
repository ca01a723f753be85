//! A scratch PostgreSQL database for the cases that need two instances on
//! one database, created on a server the bench can reach and dropped after,
//! with the secrets key file its instances share.

use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait as _, Database};

pub struct Scratch {
    admin: String,
    name: String,
    /// The scratch database's URL.
    pub url: String,
    /// The `--secrets-key-file` every instance on it needs.
    pub secrets_key_file: PathBuf,
}

impl Scratch {
    /// Creates a database on the server of `admin` (a URL whose user may
    /// create databases), and a secrets key file in `directory`.
    pub async fn create(admin: &str, directory: &Path) -> anyhow::Result<Self> {
        let secrets_key_file = directory.join("authd-secrets.key");
        authd::secrets::create_key_file(&secrets_key_file)?;
        let name = format!("authd_bench_{}", std::process::id());
        let connection = Database::connect(admin).await?;
        connection
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        connection
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let (server, _) = admin
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("no database in {admin}"))?;
        Ok(Self {
            admin: admin.to_owned(),
            url: format!("{server}/{name}"),
            name,
            secrets_key_file,
        })
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        Database::connect(&self.admin)
            .await?
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}
