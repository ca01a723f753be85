//! @authd/client's Node verifier, in a Node process of its own
//! (`bench/node/verifier-bench.mjs`): checks per second for a token seen
//! before and for every token new, beside jose's `jwtVerify` alone and
//! Node's Ed25519 signature check alone; and how soon after a Logout the
//! verifier refuses the token.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::process::Command;

/// What the Node process is given.
pub struct Parameters<'a> {
    pub url: String,
    pub feed_token: &'a str,
    pub duration: Duration,
    pub warmup: Duration,
    /// Rounds of the seen-before cases, in turns.
    pub turns: usize,
    /// The token seen before.
    pub seen: &'a str,
    /// Tokens checked once each: the first half by the verifier, the
    /// second by jose.
    pub fresh: &'a [String],
    /// Access tokens to log out, one at a time.
    pub logouts: &'a [String],
}

/// Checks made in a time.
pub struct Rate {
    pub checks: u64,
    pub seconds: f64,
}

impl Rate {
    pub fn per_second(&self) -> f64 {
        self.checks as f64 / self.seconds
    }

    fn from_json(value: &Value) -> anyhow::Result<Self> {
        Ok(Self {
            checks: value["checks"].as_u64().context("no checks")?,
            seconds: value["seconds"].as_f64().context("no seconds")?,
        })
    }
}

/// What the Node process measured.
pub struct Results {
    /// `node --version`.
    pub node: String,
    pub verifier_seen: Rate,
    pub jose_seen: Rate,
    /// `node:crypto`'s Ed25519 verify alone, on the token seen before.
    pub signature_seen: Rate,
    pub verifier_new: Rate,
    pub jose_new: Rate,
    /// From each Logout's answer to the verifier's first refusal, in
    /// microseconds.
    pub refused_after: Histogram<u64>,
}

fn node_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

fn client_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript")
}

/// Checks that Node is there, and installs what the script imports: the
/// built `clients/typescript` and the bench's own packages (jose), each
/// only if missing.
pub async fn prepare() -> anyhow::Result<()> {
    let version = Command::new("node").arg("--version").output().await;
    match version {
        Ok(output) if output.status.success() => {}
        Ok(output) => bail!(
            "the node cases need Node.js 20 or later: `node --version` failed ({})",
            output.status
        ),
        Err(error) => bail!(
            "the node cases need Node.js 20 or later and npm on PATH (`node`: {error}); install them or leave `node` out of --cases"
        ),
    }
    let client = client_directory();
    if !client.join("node_modules").exists() || !client.join("dist/node/index.js").exists() {
        npm(
            &client,
            &["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        )
        .await?;
        npm(&client, &["run", "build"]).await?;
    }
    let bench = node_directory();
    if !bench.join("node_modules").exists() {
        npm(
            &bench,
            &["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        )
        .await?;
    }
    Ok(())
}

async fn npm(directory: &Path, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("npm {} (in {})", args.join(" "), directory.display());
    let status = Command::new("npm")
        .args(args)
        .current_dir(directory)
        // Its progress would mix with the report on stdout.
        .stdout(Stdio::null())
        .status()
        .await
        .context("cannot run npm")?;
    if !status.success() {
        bail!(
            "npm {} in {} failed ({status})",
            args.join(" "),
            directory.display()
        );
    }
    Ok(())
}

/// Runs the Node cases with `parameters` (written to `file`).
pub async fn measure(file: &Path, parameters: &Parameters<'_>) -> anyhow::Result<Results> {
    let given = json!({
        "url": parameters.url,
        "feedToken": parameters.feed_token,
        // The bench's servers keep authd's default issuer and audience.
        "issuer": "authd",
        "audience": "authd",
        "durationMs": parameters.duration.as_secs_f64() * 1000.0,
        "warmupMs": parameters.warmup.as_secs_f64() * 1000.0,
        "turns": parameters.turns,
        "seen": parameters.seen,
        "fresh": parameters.fresh,
        "logouts": parameters.logouts,
    });
    std::fs::write(file, given.to_string())?;
    let script = node_directory().join("verifier-bench.mjs");
    let child = Command::new("node")
        .arg(&script)
        .arg(file)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run node {}", script.display()))?;
    let output = tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .context("the Node cases took over 10 minutes")??;
    if !output.status.success() {
        bail!(
            "node {} failed ({}); its error is above",
            script.display(),
            output.status
        );
    }
    let results: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "node printed no JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let mut refused_after = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for micros in results["refusedAfterMicros"]
        .as_array()
        .context("no refusedAfterMicros")?
    {
        refused_after.saturating_record(micros.as_u64().context("not microseconds")?.max(1));
    }
    Ok(Results {
        node: results["node"].as_str().unwrap_or("?").to_owned(),
        verifier_seen: Rate::from_json(&results["verifierSeen"])?,
        jose_seen: Rate::from_json(&results["joseSeen"])?,
        signature_seen: Rate::from_json(&results["signatureSeen"])?,
        verifier_new: Rate::from_json(&results["verifierNew"])?,
        jose_new: Rate::from_json(&results["joseNew"])?,
        refused_after,
    })
}
