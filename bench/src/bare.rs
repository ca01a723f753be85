//! The ceiling under authd's own no-op: a bare tonic server answering the
//! gRPC health check and nothing else, with none of authd's layers (request
//! id, log line and span, metrics, CORS, deadlines, grpc-web), in a process
//! of its own as authd is. `bench --serve-bare ADDRESS` runs it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::ServingStatus;

use crate::server::{free_loopback_address, serving};

/// Serves until killed.
pub async fn serve(address: SocketAddr) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let incoming = TcpIncoming::from(TcpListener::bind(address).await?).with_nodelay(Some(true));
    Server::builder()
        .add_service(health)
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// The bare server, in a child process of the bench.
pub struct BareServer {
    child: Child,
    address: SocketAddr,
}

impl BareServer {
    pub async fn start() -> anyhow::Result<Self> {
        let address = free_loopback_address()?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve-bare")
            .arg(address.to_string())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the bare tonic server")?;
        let endpoint = Endpoint::from_shared(format!("http://{address}"))?;
        let started = Instant::now();
        while !serving(&endpoint).await {
            if let Some(status) = child.try_wait()? {
                bail!("the bare tonic server exited ({status})");
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("the bare tonic server did not serve within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Self { child, address })
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the bare tonic server has exited")
    }

    pub async fn channels(&self, connections: usize) -> anyhow::Result<Vec<Channel>> {
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            channels.push(
                Endpoint::from_shared(format!("http://{}", self.address))?
                    .tcp_nodelay(true)
                    .connect()
                    .await?,
            );
        }
        Ok(channels)
    }
}
