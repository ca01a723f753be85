//! The operator's commands: `authd keys ...` and `authd users ...`, run
//! against the configured database. Each prints what it did.

use anyhow::Context as _;
use chrono::Utc;

use crate::app::connect_and_migrate;
use crate::config::{Settings, UsersCommand};
use crate::domain::{AccountAdmin, generate_signing_key};
use crate::domain::{SigningKeyStore as _, UserRecord};

/// Adds a signing key that instances start signing with after the
/// activation delay, long enough for instances with these settings to
/// publish it in their JWKS first (they verify with it at once, whatever
/// their settings: a token naming a key they do not hold makes them reload
/// the keys): `authd keys rotate`. Prints the new key id.
pub async fn rotate_keys(settings: &Settings) -> anyhow::Result<()> {
    let database = connect_and_migrate(settings).await?;
    let activates_at = Utc::now() + settings.key_activation_delay();
    let key = generate_signing_key(activates_at).context("cannot generate a key")?;
    database
        .insert_signing_key(&key)
        .await
        .context("cannot store the new key")?;
    println!("{}\tsigns from {}", key.kid, activates_at.to_rfc3339());
    Ok(())
}

/// Lists the stored signing keys: `authd keys list`.
pub async fn list_keys(settings: &Settings) -> anyhow::Result<()> {
    let database = connect_and_migrate(settings).await?;
    let keys = database
        .signing_keys()
        .await
        .context("cannot read the keys")?;
    println!("kid\talgorithm\tcreated\tsigns from");
    for key in keys {
        println!(
            "{}\t{}\t{}\t{}",
            key.kid,
            key.algorithm,
            key.created_at.to_rfc3339(),
            key.activates_at.to_rfc3339()
        );
    }
    Ok(())
}

/// Runs `authd users ...`.
pub async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    let accounts = AccountAdmin::new(connect_and_migrate(settings).await?);
    let missing = |name: &str| anyhow::anyhow!("no account named {name:?}");
    match command {
        UsersCommand::List {
            filter,
            after,
            limit,
        } => {
            let page = accounts
                .list(filter.as_deref(), after.as_deref(), limit)
                .await?;
            println!("username\tid\tcreated\tstate");
            for account in &page {
                println!(
                    "{}\t{}\t{}\t{}",
                    account.username,
                    account.id,
                    account.created_at.to_rfc3339(),
                    state(account)
                );
            }
            if page.len() as u64 == limit
                && let Some(last) = page.last()
            {
                println!("(more: --after {})", last.username_canonical);
            }
        }
        UsersCommand::Show { name } => {
            let details = accounts.show(&name).await?.ok_or_else(|| missing(&name))?;
            let account = &details.account;
            println!("username\t{}", account.username);
            println!("id\t{}", account.id);
            println!("created\t{}", account.created_at.to_rfc3339());
            println!("state\t{}", state(account));
            println!("sessions\t{}", details.sessions.len());
            for session in &details.sessions {
                println!(
                    "session\t{}\tstarted {}\tlast used {}\t{}\t{}",
                    session.id,
                    session.created_at.to_rfc3339(),
                    session.last_used_at.to_rfc3339(),
                    session.client_address,
                    session.user_agent
                );
            }
        }
        UsersCommand::Disable { name } => {
            let account = accounts
                .disable(&name)
                .await?
                .ok_or_else(|| missing(&name))?;
            println!(
                "disabled {} ({}); every session ended",
                account.username, account.id
            );
        }
        UsersCommand::Enable { name } => {
            let account = accounts
                .enable(&name)
                .await?
                .ok_or_else(|| missing(&name))?;
            println!("enabled {} ({})", account.username, account.id);
        }
        UsersCommand::Logout { name } => {
            let account = accounts
                .logout(&name)
                .await?
                .ok_or_else(|| missing(&name))?;
            println!(
                "ended every session of {} ({})",
                account.username, account.id
            );
        }
        UsersCommand::Delete { name } => {
            let account = accounts
                .delete(&name)
                .await?
                .ok_or_else(|| missing(&name))?;
            println!(
                "deleted {} ({}); every session ended",
                account.username, account.id
            );
        }
    }
    Ok(())
}

fn state(account: &UserRecord) -> String {
    account.disabled_at.map_or_else(
        || "active".to_owned(),
        |at| format!("disabled since {}", at.to_rfc3339()),
    )
}
