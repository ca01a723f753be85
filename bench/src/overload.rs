//! Login under a flood of calls that will be refused: what authd still
//! serves (goodput) and how long admitted calls take, at 1, 2, 4 and 10
//! times the Login capacity measured just before, from one client address
//! and from thousands, with Verify at a steady 1,000/s beside.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::{Concurrency, Outcome, closed_loop, open_loop, open_loop_split};
use crate::report::{Capacity, OverloadRow, Report};
use crate::server::{self, RateLimits, Server};
use crate::{Run, clients, mint_tokens};

/// Multiples of the Login capacity offered.
const FACTORS: [u32; 4] = [1, 2, 4, 10];

/// Distinct client addresses of the many-address source: over the whole
/// group each sends fewer than ten Logins, far within authd's default
/// budget of 60 a minute, so every refusal comes from admission.
const ADDRESSES: u32 = 4096;

/// Connections the flood is spread over. Their 128 streams each hold the
/// calls the hash queue admits (2 s of hashes, about 500 here) and the
/// refusals in flight beside them; fewer would hold the excess in the
/// client, where authd's admission never sees it.
const FLOOD_CONNECTIONS: usize = 16;

/// Logins in flight that keep every hash slot busy (two per core here),
/// few enough that admission refuses none: the capacity C.
const FLAT_OUT: Concurrency = Concurrency {
    connections: 1,
    in_flight: 8,
};

/// One Login at a time: the hash time at rest.
const ONE_AT_A_TIME: Concurrency = Concurrency {
    connections: 1,
    in_flight: 1,
};

/// authd's default `--hash-queue-timeout`. At twice the capacity the queue
/// takes this long to fill, so the flood's warm-up lasts at least as long.
const QUEUE_BOUND: Duration = Duration::from_secs(2);

/// A quick run's tiny hashes make the capacity thousands per second, more
/// than the bench can start beside a debug authd: its flood is capped.
const QUICK_MAX_OFFERED: f64 = 300.0;

/// Users logging in; their tokens are what Verify checks.
const USERS: usize = 64;

/// Where the Logins come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Everything from 127.0.0.1 with the per-address limits off, as behind
    /// a proxy authd is not told about.
    OneAddress,
    /// authd reads the client address from `x-forwarded-for` and keeps its
    /// default budgets; each call comes from one of [`ADDRESSES`] addresses.
    ManyAddresses,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Self::OneAddress => "one address",
            Self::ManyAddresses => "many addresses",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Self::OneAddress => &[],
            Self::ManyAddresses => &["--client-address-header", "x-forwarded-for"],
        }
    }

    fn rate_limits(self) -> RateLimits {
        match self {
            Self::OneAddress => RateLimits::Off,
            Self::ManyAddresses => RateLimits::Default,
        }
    }

    /// The address the `n`th call reports, if any.
    fn address(self, n: u64) -> Option<IpAddr> {
        match self {
            Self::OneAddress => None,
            Self::ManyAddresses => {
                let host = u32::try_from(n % u64::from(ADDRESSES)).unwrap_or(0);
                Some(IpAddr::V4(Ipv4Addr::from(
                    u32::from(Ipv4Addr::new(10, 0, 0, 0)) + host,
                )))
            }
        }
    }
}

/// The accounts every Login uses, and tokens for Verify.
struct Accounts {
    usernames: Arc<Vec<String>>,
    tokens: Arc<Vec<String>>,
}

/// For each source, on one authd: the hash time at rest, then for each
/// factor the capacity C just before and Login offered at factor × C.
pub async fn cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let hashing_args = run.hashing_args();
    let hashing_args: Vec<&str> = hashing_args.iter().map(String::as_str).collect();
    let accounts = prepare(run, &hashing_args).await?;
    for source in [Source::OneAddress, Source::ManyAddresses] {
        let rows = source_rows(run, source, &hashing_args, &[], &FACTORS, &accounts).await?;
        report.overload.extend(rows);
    }
    Ok(())
}

/// On one authd for `source`: the hash time at rest, then for each factor
/// the capacity C just before and Login offered at factor × C.
async fn source_rows(
    run: &Run,
    source: Source,
    hashing_args: &[&str],
    env: &[(&str, &str)],
    factors: &[u32],
    accounts: &Accounts,
) -> anyhow::Result<Vec<OverloadRow>> {
    let args: Vec<&str> = hashing_args.iter().chain(source.args()).copied().collect();
    let server = run
        .start_with_limits("overload.db", &args, env, source.rate_limits())
        .await?;
    let (_, idle) = window_during(&server, run.warmup, run.duration, {
        logins(run, &server, ONE_AT_A_TIME, source, accounts).await?
    })
    .await?;
    let mut rows = Vec::with_capacity(factors.len());
    for &factor in factors {
        let (capacity, flat_out) = window_during(&server, run.warmup, run.duration, {
            logins(run, &server, FLAT_OUT, source, accounts).await?
        })
        .await?;
        let capacity = Capacity {
            rate: capacity.throughput(),
            idle_hash_time: idle.hash_time,
            flat_out_hash_time: flat_out.hash_time,
        };
        rows.push(flood(run, &server, source, factor, capacity, accounts).await?);
    }
    server.stop().await?;
    Ok(rows)
}

/// Registers the accounts on an authd without rate limits; the authd of
/// each source then opens the same database, and so the same signing keys.
async fn prepare(run: &Run, hashing_args: &[&str]) -> anyhow::Result<Accounts> {
    let server = run.start("overload.db", hashing_args).await?;
    let users = run.scaled(USERS);
    let tokens = mint_tokens(&server, "overload", users, 1).await?;
    server.stop().await?;
    Ok(Accounts {
        usernames: Arc::new((0..users).map(|user| format!("overload-{user}")).collect()),
        tokens: Arc::new(tokens),
    })
}

/// Logins in a closed loop at `concurrency` for the run's duration after
/// its warm-up, each from the source's next address.
async fn logins(
    run: &Run,
    server: &Server,
    concurrency: Concurrency,
    source: Source,
    accounts: &Accounts,
) -> anyhow::Result<impl Future<Output = Outcome> + use<>> {
    let channels = server.channels(concurrency.connections).await?;
    let usernames = Arc::clone(&accounts.usernames);
    Ok(closed_loop(
        concurrency,
        run.warmup,
        run.duration,
        move |worker, n| {
            let (channel, username) = (
                channels[worker % channels.len()].clone(),
                usernames[n as usize % usernames.len()].clone(),
            );
            async move {
                clients::login_from(channel, username, source.address(n))
                    .await
                    .map(drop)
                    .map_err(|status| status.to_string())
            }
        },
    ))
}

/// Login offered open-loop at `factor` × the capacity per second over
/// [`FLOOD_CONNECTIONS`] connections, and Verify at 1,000/s on a connection
/// of its own during the measured window.
async fn flood(
    run: &Run,
    server: &Server,
    source: Source,
    factor: u32,
    capacity: Capacity,
    accounts: &Accounts,
) -> anyhow::Result<OverloadRow> {
    let offered = if run.quick {
        (f64::from(factor) * capacity.rate).min(QUICK_MAX_OFFERED)
    } else {
        f64::from(factor) * capacity.rate
    };
    let warmup = if run.quick {
        run.warmup
    } else {
        run.warmup.max(QUEUE_BOUND)
    };
    let channels = server.channels(FLOOD_CONNECTIONS).await?;
    let verify_channel = server.channels(1).await?.remove(0);
    let usernames = Arc::clone(&accounts.usernames);
    let logins = tokio::spawn(open_loop_split(
        offered,
        warmup,
        run.duration,
        usize::MAX,
        move |n| {
            let (channel, username) = (
                channels[n as usize % channels.len()].clone(),
                usernames[n as usize % usernames.len()].clone(),
            );
            async move {
                match clients::login_from(channel, username, source.address(n)).await {
                    Ok(_) => Ok(true),
                    Err(status) if clients::is_overload(&status) => Ok(false),
                    Err(status) => Err(status.to_string()),
                }
            }
        },
    ));
    let tokens = Arc::clone(&accounts.tokens);
    let verify = async move {
        tokio::time::sleep(warmup).await;
        open_loop(1000.0, run.duration, 1000, move |n| {
            clients::verify(
                verify_channel.clone(),
                tokens[n as usize % tokens.len()].clone(),
            )
        })
        .await
    };
    let (verify, window) = window_during(server, warmup, run.duration, verify).await?;
    let logins = logins.await?;
    Ok(OverloadRow {
        source: source.label(),
        factor,
        capacity,
        offered,
        goodput: logins.first_delivered as f64 / run.duration.as_secs_f64(),
        served: logins.first,
        refused: logins.second,
        hash_time: window.hash_time,
        authd_cores: window.authd_cores,
        bench_cores: window.bench_cores,
        verify,
    })
}

/// What authd did in a measured window: the mean time of the hashes it
/// finished (from its `/metrics`), and the cores it and the bench used.
#[derive(Debug, Clone, Copy)]
struct Window {
    hash_time: Duration,
    authd_cores: f64,
    bench_cores: f64,
}

/// Runs `case`, and what authd did from `warmup` after its start to
/// `duration` after that.
async fn window_during<T>(
    server: &Server,
    warmup: Duration,
    duration: Duration,
    case: impl Future<Output = T>,
) -> anyhow::Result<(T, Window)> {
    let pid = server.pid()?;
    let reading = async |after: Duration| {
        tokio::time::sleep(after).await;
        let cpu = (
            server::cpu_time(pid)?,
            server::cpu_time(std::process::id())?,
            Instant::now(),
        );
        anyhow::Ok((server.hash_totals().await?, cpu))
    };
    let (outcome, start, end) = tokio::join!(case, reading(warmup), reading(warmup + duration));
    let (hashed_before, (authd_before, bench_before, from)) = start?;
    let (hashed_after, (authd_after, bench_after, to)) = end?;
    let elapsed = (to - from).as_secs_f64();
    Ok((
        outcome,
        Window {
            hash_time: hashed_before.mean_until(hashed_after),
            authd_cores: (authd_after - authd_before).as_secs_f64() / elapsed,
            bench_cores: (bench_after - bench_before).as_secs_f64() / elapsed,
        },
    ))
}
