//! An authd process under test: started from its binary on a SQLite file,
//! on a loopback port, and stopped when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Argon2 parameters so cheap that making thousands of tokens takes
/// seconds; only for servers whose Login is not what is measured.
pub const CHEAP_HASHING: [&str; 4] = ["--argon2-memory-kib", "8", "--argon2-iterations", "1"];

/// Rate limits would refuse a load generator on one address.
const NO_RATE_LIMITS: [&str; 6] = [
    "--login-rate-per-address",
    "off",
    "--register-rate-per-address",
    "off",
    "--login-failures-per-username",
    "off",
];

/// Whether authd counts calls against its per-address and per-username
/// budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimits {
    /// Off: a load generator on one address would exhaust them at once.
    Off,
    /// authd's defaults, for loads spread over many client addresses.
    Default,
}

pub struct Server {
    child: Child,
    pub address: SocketAddr,
    /// From spawning the process to its first SERVING health answer.
    pub startup: Duration,
}

impl Server {
    /// Starts `binary` on the database at `database_url` with `args` added,
    /// and waits until it serves.
    pub async fn start(
        wrapper: &[String],
        binary: &Path,
        database_url: &str,
        log: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        rate_limits: RateLimits,
    ) -> anyhow::Result<Self> {
        let address = free_loopback_address()?;
        let log_file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let spawned = Instant::now();
        let mut command = match wrapper {
            [program, arguments @ ..] => {
                let mut command = Command::new(program);
                command.args(arguments).arg(binary);
                command
            }
            [] => Command::new(binary),
        };
        let mut child = command
            .arg("--listen")
            .arg(address.to_string())
            .arg("--database-url")
            .arg(database_url)
            .args(["--shutdown-drain", "0s", "--shutdown-timeout", "5s"])
            .args(if rate_limits == RateLimits::Off {
                &NO_RATE_LIMITS[..]
            } else {
                &[]
            })
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let endpoint = Endpoint::from_shared(format!("http://{address}"))?;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("authd exited at start ({status}); see {}", log.display());
            }
            if spawned.elapsed() > Duration::from_secs(60) {
                bail!("authd did not serve within a minute; see {}", log.display());
            }
            if serving(&endpoint).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(Self {
            child,
            address,
            startup: spawned.elapsed(),
        })
    }

    /// `connections` separate HTTP/2 connections.
    pub async fn channels(&self, connections: usize) -> anyhow::Result<Vec<Channel>> {
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            channels.push(
                Endpoint::from_shared(self.url())?
                    .tcp_nodelay(true)
                    .connect()
                    .await?,
            );
        }
        Ok(channels)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("authd has exited")
    }

    /// Resident memory in KiB, from `/proc` (Linux).
    pub fn resident_kib(&self) -> anyhow::Result<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")
    }

    /// The sum of every series of a Prometheus metric whose labels contain
    /// `labels` (e.g. `result="hit"`).
    pub async fn metric(&self, name: &str, labels: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("{}/metrics", self.url()))
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|line| line.starts_with(name) && line.contains(labels))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// authd's password hashes so far, from `/metrics`.
    pub async fn hash_totals(&self) -> anyhow::Result<HashTotals> {
        Ok(HashTotals {
            seconds: self
                .metric("authd_password_hash_duration_seconds_sum", "")
                .await?,
            count: self
                .metric("authd_password_hash_duration_seconds_count", "")
                .await?,
        })
    }

    /// Stops authd with SIGTERM and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
        }
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("authd did not stop within 10 s")??;
        Ok(())
    }
}

pub async fn serving(endpoint: &Endpoint) -> bool {
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok_and(|response| response.get_ref().status == ServingStatus::Serving as i32)
}

/// What `/proc` counts CPU time in (`USER_HZ`: 100 on x86 and arm64).
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The CPU time a process has used so far, all threads, user and system,
/// from `/proc/PID/stat` (Linux).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name in parentheses: state (field 3), ... utime
    // (14), stime (15).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("no command name in /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks = |field: usize| -> anyhow::Result<u64> {
        Ok(fields.get(field - 3).context("short /proc stat")?.parse()?)
    };
    let ticks = ticks(14)? + ticks(15)?;
    Ok(Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SECOND))
}

/// A loopback address nothing listens on now.
pub fn free_loopback_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The authd binary: the given path, or the one cargo builds beside this
/// bench (same profile) when the bench runs under `cargo run`.
pub fn authd_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let release = !cfg!(debug_assertions);
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "--locked", "-p", "authd", "--bin", "authd"]);
        if release {
            build.arg("--release");
        }
        if !build.status()?.success() {
            bail!("cargo could not build authd");
        }
    }
    let beside = std::env::current_exe()?.with_file_name("authd");
    if !beside.exists() {
        bail!(
            "no authd binary at {}: run the bench with `cargo run`, or pass --authd",
            beside.display()
        );
    }
    Ok(beside)
}

/// The time authd spent hashing passwords, and how many hashes, at one
/// reading of `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct HashTotals {
    seconds: f64,
    count: f64,
}

impl HashTotals {
    /// The mean time of the hashes done between this reading and `later`.
    pub fn mean_until(self, later: Self) -> Duration {
        Duration::from_secs_f64(
            (later.seconds - self.seconds) / (later.count - self.count).max(1.0),
        )
    }
}
