//! nginx in front of an app, asking authd about every request (forward
//! auth), run from `deploy/nginx/authd.conf` as shipped: only its three
//! documented addresses are replaced with this run's. Killed when dropped.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::server::free_loopback_address;

/// The deployment file, and the addresses it is written with: nginx's own,
/// authd's and the app's.
const SITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/nginx/authd.conf");
const PROXY_ADDRESS: &str = "127.0.0.1:8080";
const AUTHD_ADDRESS: &str = "127.0.0.1:50051";
const APP_ADDRESS: &str = "127.0.0.1:8000";

pub struct Nginx {
    process: Child,
    address: SocketAddr,
}

impl Nginx {
    /// nginx on `deploy/nginx/authd.conf` in front of `app`, asking `authd`,
    /// with its configuration and logs in `dir`; `None` if nginx is not
    /// installed.
    pub async fn start(
        dir: &Path,
        authd: SocketAddr,
        app: SocketAddr,
    ) -> anyhow::Result<Option<Self>> {
        let Some(binary) = installed() else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir)?;
        let address = free_loopback_address()?;
        let site = std::fs::read_to_string(SITE).with_context(|| format!("cannot read {SITE}"))?;
        let site = with_addresses(
            &site,
            &[
                (PROXY_ADDRESS, address),
                (AUTHD_ADDRESS, authd),
                (APP_ADDRESS, app),
            ],
        )?;
        std::fs::write(dir.join("authd.conf"), site)?;
        std::fs::write(dir.join("nginx.conf"), main_configuration(dir))?;
        let error_log = dir.join("error.log");
        let mut process = Command::new(&binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            // Where to log before the configuration is read: not /var/log.
            .arg("-e")
            .arg(&error_log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let started = Instant::now();
        while tokio::net::TcpStream::connect(address).await.is_err() {
            let log = || std::fs::read_to_string(&error_log).unwrap_or_default();
            if let Some(status) = process.try_wait()? {
                bail!("nginx exited at start ({status}):\n{}", log());
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("nginx did not listen within 10 s:\n{}", log());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Some(Self { process, address }))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.process.id().context("nginx has exited")
    }
}

/// nginx on the `PATH`, or where Debian puts it (`/usr/sbin`, often not on a
/// developer's `PATH`).
fn installed() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|directory| directory.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// The main configuration a package provides around a site, with everything
/// nginx writes kept in `dir`. One process in the foreground
/// (`master_process off`): killing it stops nginx whole, and it needs no
/// user to switch to.
fn main_configuration(dir: &Path) -> String {
    let dir = dir.display();
    let mut http = format!("access_log {dir}/access.log;\n");
    for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let _ = writeln!(http, "{kind}_temp_path {dir}/{kind};");
    }
    format!(
        "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
         events {{ worker_connections 1024; }}\nhttp {{\n{http}include {dir}/authd.conf;\n}}\n"
    )
}

/// `text` with every occurrence of each documented address replaced, in one
/// pass (a replacement is never replaced again). Each must occur: a file
/// that no longer names one would send the bench elsewhere.
fn with_addresses(text: &str, addresses: &[(&str, SocketAddr)]) -> anyhow::Result<String> {
    let mut found = Vec::new();
    for (documented, actual) in addresses {
        let before = found.len();
        found.extend(
            text.match_indices(documented)
                .map(|(at, _)| (at, documented.len(), actual)),
        );
        if found.len() == before {
            bail!("{SITE} does not use {documented}");
        }
    }
    found.sort_unstable_by_key(|(at, _, _)| *at);
    let (mut replaced, mut from) = (String::with_capacity(text.len()), 0);
    for (at, length, actual) in found {
        replaced.push_str(&text[from..at]);
        let _ = write!(replaced, "{actual}");
        from = at + length;
    }
    replaced.push_str(&text[from..]);
    Ok(replaced)
}

/// The app behind nginx: an empty 200 to every request, served by the
/// bench's own runtime. Stopped when dropped.
pub struct App {
    pub address: SocketAddr,
    server: JoinHandle<()>,
}

impl App {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let router = axum::Router::new().fallback(async || ());
        let server = tokio::spawn(async move {
            // Ends only when aborted; an error would show as failed calls.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { address, server })
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}
