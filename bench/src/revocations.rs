//! Revocations written straight into a stopped authd's SQLite database, as
//! many as a busy service accumulates, far faster than by logging out.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ConnectionTrait as _, Database, TransactionTrait as _};

const ROWS_PER_STATEMENT: usize = 1000;

/// Adds `count` revocations of random token ids (like authd's: 16 random
/// bytes, base64url) that expire in an hour.
pub async fn insert(database: &Path, count: usize) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let connection = Database::connect(format!("sqlite://{}", database.display())).await?;
    let transaction = connection.begin().await?;
    let expires_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 3600;
    let mut inserted = 0;
    while inserted < count {
        let rows = ROWS_PER_STATEMENT.min(count - inserted);
        let mut values = Vec::with_capacity(rows);
        for _ in 0..rows {
            let mut id = [0u8; 16];
            getrandom::fill(&mut id)?;
            values.push(format!(
                "('{}', randomblob(16), {expires_at}, '2026-01-01T00:00:00+00:00')",
                URL_SAFE_NO_PAD.encode(id)
            ));
        }
        transaction
            .execute_unprepared(&format!(
                "INSERT INTO revoked_tokens (jti, user_id, expires_at, revoked_at) VALUES {}",
                values.join(",")
            ))
            .await?;
        inserted += rows;
    }
    transaction.commit().await?;
    connection.close().await?;
    Ok(())
}
