//! The operator's commands: `authd keys ...` and `authd users ...`, run
//! against the configured database, which must exist and be migrated (they
//! never create or migrate one). Each prints what it did, and logs nothing
//! unless something is wrong.

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};

use crate::app::{open_existing, secrets_keyring};
use crate::config::{Settings, UsersCommand};
use crate::domain::{
    AccountAdmin, Reseal, StateChange, add_signing_key, reseal_signing_keys, reseal_totp_secrets,
};
use crate::domain::{AuthError, SigningKeyStore as _, UserRecord};

/// Adds a signing key that instances start signing with after the
/// activation delay, long enough for instances with these settings to
/// publish it in their JWKS first (they verify with it at once, whatever
/// their settings: a token naming a key they do not hold makes them reload
/// the keys): `authd keys rotate`. Prints the new key id, and when it signs:
/// not before the activation, and at the latest one key refresh interval
/// later, when every instance with these settings has reloaded its keys.
pub async fn rotate_keys(settings: &Settings) -> anyhow::Result<()> {
    let database = open_existing(settings).await?;
    let secrets = secrets_keyring(settings)?;
    let activates_at = Utc::now() + settings.key_activation_delay();
    let kid = add_signing_key(&database, &secrets, activates_at)
        .await
        .context("cannot store the new key")?;
    println!("{kid}\t{}", upcoming(activates_at, settings));
    Ok(())
}

/// Seals every secret in the database under the current secrets key: the
/// ones a previous key sealed and any still in clear (`authd keys
/// reseal`). Prints how many it sealed and under which key.
pub async fn reseal(settings: &Settings) -> anyhow::Result<()> {
    let database = open_existing(settings).await?;
    let secrets = secrets_keyring(settings)?;
    let keys = database
        .signing_keys()
        .await
        .context("cannot read the keys")?;
    let mut resealed = reseal_signing_keys(&database, &secrets, &keys, Reseal::NotCurrent)
        .await
        .context("cannot reseal the signing keys")?;
    reseal_totp_secrets(&database, &secrets, &mut resealed)
        .await
        .context("cannot reseal the TOTP secrets")?;
    println!(
        "resealed {} signing keys and {} TOTP secrets under secrets key {} ({} and {} already were)",
        resealed.signing_keys,
        resealed.totp_secrets,
        secrets.current_key_id(),
        resealed.signing_keys_unchanged,
        resealed.totp_secrets_unchanged
    );
    Ok(())
}

/// Lists the stored signing keys, saying which one signs: `authd keys list`.
pub async fn list_keys(settings: &Settings) -> anyhow::Result<()> {
    let database = open_existing(settings).await?;
    let keys = database
        .signing_keys()
        .await
        .context("cannot read the keys")?;
    let now = Utc::now();
    // Latest activation first, as instances choose: the first active one
    // signs (the oldest when none is active yet).
    let signing = keys
        .iter()
        .position(|key| key.activates_at <= now)
        .unwrap_or(keys.len().saturating_sub(1));
    println!("kid\talgorithm\tcreated\tsigns from\tstate");
    for (index, key) in keys.iter().enumerate() {
        let refreshed_by = key.activates_at + refresh_interval(settings);
        let state = if index < signing {
            upcoming(key.activates_at, settings)
        } else if index > signing {
            "verifies its tokens until they expire".to_owned()
        } else if index + 1 < keys.len() && now < refreshed_by {
            // Its predecessor may still sign where keys were not reloaded.
            format!("signing (everywhere by {})", refreshed_by.to_rfc3339())
        } else {
            "signing".to_owned()
        };
        println!(
            "{}\t{}\t{}\t{}\t{}",
            key.kid,
            key.algorithm,
            key.created_at.to_rfc3339(),
            key.activates_at.to_rfc3339(),
            state
        );
    }
    Ok(())
}

/// When a key activating at `activates_at` signs: instances take it up at
/// their first key refresh after that.
fn upcoming(activates_at: DateTime<Utc>, settings: &Settings) -> String {
    format!(
        "signs not before {}, by {} at the latest (instances reloading keys every {})",
        activates_at.to_rfc3339(),
        (activates_at + refresh_interval(settings)).to_rfc3339(),
        humantime::format_duration(settings.key_refresh_interval)
    )
}

fn refresh_interval(settings: &Settings) -> TimeDelta {
    TimeDelta::from_std(settings.key_refresh_interval).unwrap_or(TimeDelta::MAX)
}

/// Runs `authd users ...`.
pub async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    let accounts = AccountAdmin::new(open_existing(settings).await?);
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
            println!(
                "password\t{}",
                if account.password_hash.is_some() {
                    "set"
                } else {
                    "none (signs in with passkeys only)"
                }
            );
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
            println!("passkeys\t{}", details.passkeys.len());
            for passkey in &details.passkeys {
                println!(
                    "passkey\t{}\t{}\tcreated {}\tlast used {}\t{}",
                    passkey.id,
                    passkey.name,
                    passkey.created_at.to_rfc3339(),
                    passkey
                        .last_used_at
                        .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339()),
                    if passkey.backed_up {
                        "backed up"
                    } else {
                        "not backed up"
                    }
                );
            }
        }
        UsersCommand::Disable { name } => {
            let StateChange { account, changed } = accounts
                .disable(&name)
                .await?
                .ok_or_else(|| missing(&name))?;
            if changed {
                println!(
                    "disabled {} ({}); every session ended",
                    account.username, account.id
                );
            } else {
                println!(
                    "{} ({}) is already {}; nothing changed",
                    account.username,
                    account.id,
                    state(&account)
                );
            }
        }
        UsersCommand::Enable { name } => {
            let StateChange { account, changed } = accounts
                .enable(&name)
                .await?
                .ok_or_else(|| missing(&name))?;
            if changed {
                println!("enabled {} ({})", account.username, account.id);
            } else {
                println!(
                    "{} ({}) is already enabled; nothing changed",
                    account.username, account.id
                );
            }
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
        UsersCommand::MfaReset { name } => {
            let (account, had_totp, passkeys) = match accounts.reset_second_factors(&name).await {
                Err(AuthError::LastSignInMethod) => anyhow::bail!(
                    "{name} has no password: its passkeys are its only way to sign in, so nothing \
                     was removed (`authd users delete {name}` frees the name to sign up again)"
                ),
                outcome => outcome?.ok_or_else(|| missing(&name))?,
            };
            if passkeys > 0 {
                println!(
                    "removed {passkeys} passkey(s) of {} ({})",
                    account.username, account.id
                );
            }
            if had_totp {
                println!(
                    "removed TOTP and the recovery codes of {} ({}); every session ended",
                    account.username, account.id
                );
            } else if passkeys > 0 {
                println!("every session of {} ended", account.username);
            } else {
                println!(
                    "{} ({}) had no second factor; every session ended",
                    account.username, account.id
                );
            }
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
