//! Resident memory around a burst of logins, read from `/proc` of the real
//! binary: its peak stays within idle + hashing slots × argon2 memory + a
//! small constant, and once the burst is over it comes back to idle
//! (README, "Hashing"; the bound the Kubernetes example's limits follow).

use std::time::{Duration, Instant};

use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::{LoginRequest, RegisterRequest};
use clap::Parser as _;
use tonic::transport::Channel;

use crate::helpers::{PASSWORD, TestDatabase, cpu_heavy, spawn_authd_process, terminate};

const SLOTS: u64 = 2;
/// What the bound allows beyond the argon2 memory of the slots, with a
/// generous margin over the few MiB measured (BENCHMARKS.md).
const CONSTANT_KIB: u64 = 24 * 1024;
/// How close to idle resident memory comes back after the burst (a few
/// MiB measured: glibc's per-thread arenas keep some of the requests' small
/// allocations).
const AFTER_KIB: u64 = 10 * 1024;
const LOGINS: usize = 120;
const AT_ONCE: usize = 16;

/// A field of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resident memory once the first hashes' memory has been given back.
async fn settled_kib(pid: u32) -> u64 {
    tokio::time::sleep(authd::hashing::ARGON2_MEMORY_LINGER * 2).await;
    status_kib(pid, "VmRSS")
}

#[tokio::test]
async fn resident_memory_is_bounded_during_a_login_burst_and_comes_back_after() {
    let _heavy = cpu_heavy().await;
    let database = TestDatabase::create().await;
    let memory_kib = u64::from(
        authd::config::Cli::parse_from(["authd"])
            .settings
            .argon2_memory_kib,
    );
    let (mut child, address, _) = spawn_authd_process(&[
        "--database-url",
        &database.url,
        "--hash-concurrency",
        &SLOTS.to_string(),
        "--login-rate-per-address",
        "off",
        "--register-rate-per-address",
        "off",
        "--login-failures-per-username",
        "off",
    ])
    .await;
    let pid = child.id().expect("pid");
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    AuthServiceClient::new(channel.clone())
        .register(RegisterRequest {
            username: "memory-user".into(),
            password: PASSWORD.into(),
            email: String::new(),
        })
        .await
        .expect("registered");
    let idle = settled_kib(pid).await;
    // Resets VmHWM to the current resident size, so that it reads the peak
    // of the burst alone (Linux 4.0+).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");

    let started = Instant::now();
    let mut burst = tokio::task::JoinSet::new();
    for worker in 0..AT_ONCE {
        let channel = channel.clone();
        burst.spawn(async move {
            let mut client = AuthServiceClient::new(channel);
            let mut served = 0;
            for _ in (worker..LOGINS).step_by(AT_ONCE) {
                let login = client
                    .login(LoginRequest {
                        username: "memory-user".into(),
                        password: PASSWORD.into(),
                    })
                    .await;
                match login {
                    Ok(_) => served += 1,
                    Err(status) if status.code() == tonic::Code::ResourceExhausted => {}
                    Err(status) => panic!("login failed: {status:?}"),
                }
            }
            served
        });
    }
    let mut sampled = 0;
    let mut served = 0;
    while !burst.is_empty() {
        sampled = sampled.max(status_kib(pid, "VmRSS"));
        tokio::select! {
            done = burst.join_next() => served += done.expect("a worker").expect("worker"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let burst_time = started.elapsed();
    let peak = status_kib(pid, "VmHWM").max(sampled);
    assert!(served >= LOGINS / 2, "only {served} logins served");

    let bound = idle + SLOTS * memory_kib + CONSTANT_KIB;
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let now = status_kib(pid, "VmRSS");
        if now <= idle + AFTER_KIB || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let figures = format!(
        "idle {idle} KiB, peak {peak} KiB (bound {bound}), after {after} KiB; \
         {served} logins in {burst_time:?}"
    );
    eprintln!("{figures}");
    assert!(peak <= bound, "peak over the bound: {figures}");
    assert!(
        after <= idle + AFTER_KIB,
        "memory kept after the burst: {figures}"
    );
    assert!(terminate(&mut child).await.success());
}
