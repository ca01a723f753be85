//! authd's benchmark: starts authd processes on loopback, prepares users and
//! tokens, drives each case at a set concurrency, measures the ceilings in
//! the same run, and writes the table and plot of BENCHMARKS.md.
//!
//! `cargo run --release -p authd-bench` (see BENCHMARKS.md).

mod ceilings;
mod clients;
mod load;
mod report;
mod revocations;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tonic::transport::Channel;

use ceilings::{Argon2Implementation, DEFAULT_HASHING, HashParameters};
use load::{Concurrency, Outcome, closed_loop, open_loop, open_loop_split};
use report::{Report, Row, SweepPoint};
use server::{CHEAP_HASHING, Server};

#[derive(Debug, Parser)]
struct Options {
    /// The authd binary [default: built by cargo beside this bench].
    #[arg(long)]
    authd: Option<PathBuf>,
    /// Seconds each case is measured, after a warm-up of a fifth of it.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// HTTP/2 connections for the gRPC cases.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Calls in flight on each connection.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// A short run that only checks that every case works end to end (CI).
    #[arg(long)]
    quick: bool,
    /// A program to run authd under, with its arguments (e.g. `valgrind
    /// --tool=callgrind`, to profile).
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_terminator = ";")]
    authd_wrapper: Vec<String>,
    /// Only these groups of cases (the ceilings are always measured).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "verify,revocations,passwords,startup"
    )]
    cases: Vec<CaseGroup>,
    /// Where the report (`report.md`) and plot (`verify.svg`) go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CaseGroup {
    /// Nothing beyond the ceilings (e.g. to compare compiler flags).
    Ceilings,
    Verify,
    Revocations,
    Passwords,
    Startup,
}

/// Everything a case needs to know about the run.
struct Run {
    binary: PathBuf,
    wrapper: Vec<String>,
    scratch: tempfile::TempDir,
    duration: Duration,
    warmup: Duration,
    concurrency: Concurrency,
    quick: bool,
    /// What Login and Register hash with, and the ceiling is measured at.
    hashing: HashParameters,
}

impl Run {
    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    async fn start(&self, database: &str, args: &[&str]) -> anyhow::Result<Server> {
        Server::start(
            &self.wrapper,
            &self.binary,
            &self.path(database),
            &self.path("authd.log"),
            args,
        )
        .await
    }

    /// authd's arguments for [`Run::hashing`].
    fn hashing_args(&self) -> Vec<String> {
        let HashParameters {
            memory_kib,
            iterations,
            parallelism,
        } = self.hashing;
        [
            ("--argon2-memory-kib", memory_kib),
            ("--argon2-iterations", iterations),
            ("--argon2-parallelism", parallelism),
        ]
        .into_iter()
        .flat_map(|(name, value)| [name.to_owned(), value.to_string()])
        .collect()
    }

    /// How many of a thing to prepare: less in a quick run.
    fn scaled(&self, full: usize) -> usize {
        if self.quick {
            (full / 100).max(10)
        } else {
            full
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let duration = Duration::from_secs_f64(if options.quick { 0.5 } else { options.duration });
    let run = Run {
        binary: server::authd_binary(options.authd.clone())?,
        wrapper: options.authd_wrapper.clone(),
        scratch: tempfile::tempdir()?,
        duration,
        warmup: duration / 5,
        concurrency: Concurrency {
            connections: options.connections,
            in_flight: options.in_flight,
        },
        quick: options.quick,
        // A quick run only checks that everything works: tiny hashes.
        hashing: if options.quick {
            HashParameters {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            }
        } else {
            DEFAULT_HASHING
        },
    };
    let mut report = Report::new(run.concurrency, duration, options.quick);

    ceilings(&run, &mut report);
    for group in &options.cases {
        match group {
            CaseGroup::Ceilings => {}
            CaseGroup::Verify => verify_cases(&run, &mut report).await?,
            CaseGroup::Revocations => revocation_cases(&run, &mut report).await?,
            CaseGroup::Passwords => password_cases(&run, &mut report).await?,
            CaseGroup::Startup => startup_cases(&run, &mut report).await?,
        }
    }

    std::fs::create_dir_all(&options.out)?;
    report.write(&options.out)?;
    println!("{}", report.markdown());
    if let Some(failure) = report.errors() {
        anyhow::bail!("calls failed: {failure}");
    }
    Ok(())
}

fn ceilings(run: &Run, report: &mut Report) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let time = if run.quick {
        Duration::from_millis(100)
    } else {
        run.duration
    };
    report.signature_verify = ceilings::signature_verify_time(time.min(Duration::from_secs(2)));
    let parameters = run.hashing;
    report.argon2_agree = ceilings::implementations_agree(parameters);
    let implementations = [
        Argon2Implementation::Crate,
        Argon2Implementation::CrateReusedMemory,
        Argon2Implementation::Reference,
    ];
    let rates = ceilings::hash_rates(&implementations, parameters, cores, time);
    report.hash_rates = implementations.into_iter().zip(rates).collect();
}

/// Tokens for `users` users, `per_user` each (one from Register, the rest
/// from Login).
async fn mint_tokens(
    server: &Server,
    prefix: &str,
    users: usize,
    per_user: usize,
) -> anyhow::Result<Vec<String>> {
    let channels = server.channels(4).await?;
    let mut tokens = Vec::with_capacity(users * per_user);
    let mut batch = tokio::task::JoinSet::new();
    for user in 0..users {
        let channel = channels[user % channels.len()].clone();
        let username = format!("{prefix}-{user}");
        batch.spawn(async move {
            let mut tokens = vec![clients::register(channel.clone(), username.clone()).await?];
            for _ in 1..per_user {
                tokens.push(clients::login(channel.clone(), username.clone()).await?);
            }
            Ok::<_, tonic::Status>(tokens)
        });
        // Within the hash queue (8 per CPU), so that none is refused.
        if batch.len() >= 12 {
            tokens.extend(batch.join_next().await.expect("a task")??);
        }
    }
    while let Some(minted) = batch.join_next().await {
        tokens.extend(minted??);
    }
    Ok(tokens)
}

/// Verify against the no-op ceiling, with tokens seen many times and with
/// every token new, over gRPC, REST and grpc-web; and the sweep for the plot.
async fn verify_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let server = run.start("verify.db", &CHEAP_HASHING).await?;
    report.idle_resident_kib = server.resident_kib()?;
    // 1,000 sessions, each token checked many times (several services see
    // every request of a user).
    let tokens = Arc::new(mint_tokens(&server, "verify", run.scaled(250), 4).await?);
    report.token_bytes = tokens.iter().map(String::len).max().unwrap_or(0);
    let channels = server.channels(run.concurrency.connections).await?;

    let noop = noop_case(run, &channels, run.concurrency).await;
    let hits_before = server
        .metric("authd_verified_token_cache_lookups_total", "hit")
        .await?;
    let misses_before = server
        .metric("authd_verified_token_cache_lookups_total", "miss")
        .await?;
    let verify = verify_case(run, &channels, run.concurrency, &tokens).await;
    let hits = server
        .metric("authd_verified_token_cache_lookups_total", "hit")
        .await?
        - hits_before;
    let misses = server
        .metric("authd_verified_token_cache_lookups_total", "miss")
        .await?
        - misses_before;
    report.cache_hit_rate = hits / (hits + misses).max(1.0);
    report.rows.push(Row::against(
        "Verify, tokens seen before (gRPC)",
        run.concurrency,
        &verify,
        "no-op RPC",
        noop.throughput(),
        0.8,
    ));
    report.rows.push(Row::ceiling(
        "No-op RPC (gRPC health check)",
        run.concurrency,
        &noop,
    ));
    report.verify_p99_vs_noop = verify.millis(0.99) / noop.millis(0.99);
    let grpc_verify = verify.throughput();

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(run.concurrency.total())
        .build()?;
    let rest = {
        let (http, base, tokens) = (http.clone(), server.url(), Arc::clone(&tokens));
        closed_loop(run.concurrency, run.warmup, run.duration, move |_, n| {
            let token = tokens[n as usize % tokens.len()].clone();
            clients::rest_verify(http.clone(), base.clone(), token)
        })
        .await
    };
    report.rows.push(Row::against(
        "Verify over REST (POST /verify, HTTP/1.1)",
        run.concurrency,
        &rest,
        "gRPC Verify",
        grpc_verify,
        0.5,
    ));
    let web = {
        let (http, base, tokens) = (http.clone(), server.url(), Arc::clone(&tokens));
        closed_loop(run.concurrency, run.warmup, run.duration, move |_, n| {
            let token = tokens[n as usize % tokens.len()].clone();
            clients::grpc_web_verify(http.clone(), base.clone(), token)
        })
        .await
    };
    report.rows.push(Row::against(
        "Verify over grpc-web (HTTP/1.1)",
        run.concurrency,
        &web,
        "gRPC Verify",
        grpc_verify,
        0.7,
    ));

    // Every token new: more tokens than calls in the run, so none repeats
    // (many per user: registering is bound by SQLite's one writer).
    let expected_calls = (grpc_verify * (run.duration + run.warmup).as_secs_f64() * 1.3) as usize;
    let distinct =
        Arc::new(mint_tokens(&server, "distinct", expected_calls.div_ceil(50).max(2), 50).await?);
    let resident_before = server.resident_kib()?;
    let hits_before = server
        .metric("authd_verified_token_cache_lookups_total", "hit")
        .await?;
    let fresh = verify_once_each(run, &channels, &distinct).await;
    let repeated = server
        .metric("authd_verified_token_cache_lookups_total", "hit")
        .await?
        - hits_before;
    let cached = (fresh.calls as f64).min(50_000.0);
    report.cache_entry_bytes =
        (server.resident_kib()?.saturating_sub(resident_before) * 1024) as f64 / cached.max(1.0);
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let signature_ceiling = cores / report.signature_verify.as_secs_f64();
    let ceiling = noop.throughput().min(signature_ceiling);
    report.rows.push(Row::against(
        &format!("Verify, every token new (gRPC; {repeated} repeats)"),
        run.concurrency,
        &fresh,
        "min(no-op, cores ÷ signature check)",
        ceiling,
        0.8,
    ));
    report.distinct_tokens = distinct.len();

    let sweep: Vec<Concurrency> = if run.quick {
        vec![Concurrency {
            connections: 1,
            in_flight: 1,
        }]
    } else {
        [(1, 1), (1, 4), (1, 16), (2, 16), (4, 16), (8, 16)]
            .map(|(connections, in_flight)| Concurrency {
                connections,
                in_flight,
            })
            .to_vec()
    };
    for concurrency in sweep {
        let channels = server.channels(concurrency.connections).await?;
        let noop = noop_case(run, &channels, concurrency).await;
        let verify = verify_case(run, &channels, concurrency, &tokens).await;
        report.sweep.push(SweepPoint {
            concurrency,
            noop,
            verify,
        });
    }
    server.stop().await
}

async fn noop_case(run: &Run, channels: &[Channel], concurrency: Concurrency) -> Outcome {
    let channels = channels.to_vec();
    closed_loop(concurrency, run.warmup, run.duration, move |worker, _| {
        clients::noop(channels[worker % channels.len()].clone())
    })
    .await
}

async fn verify_case(
    run: &Run,
    channels: &[Channel],
    concurrency: Concurrency,
    tokens: &Arc<Vec<String>>,
) -> Outcome {
    let (channels, tokens) = (channels.to_vec(), Arc::clone(tokens));
    closed_loop(concurrency, run.warmup, run.duration, move |worker, n| {
        let token = tokens[n as usize % tokens.len()].clone();
        clients::verify(channels[worker % channels.len()].clone(), token)
    })
    .await
}

/// Each token verified once, in order, until the time is up.
async fn verify_once_each(run: &Run, channels: &[Channel], tokens: &Arc<Vec<String>>) -> Outcome {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (channels, tokens) = (channels.to_vec(), Arc::clone(tokens));
    closed_loop(
        run.concurrency,
        run.warmup,
        run.duration,
        move |worker, _| {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let token = tokens[index % tokens.len()].clone();
            clients::verify(channels[worker % channels.len()].clone(), token)
        },
    )
    .await
}

/// Verify with 100,000 revoked tokens against an empty set, and the memory
/// a million revocations take.
async fn revocation_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let revoked = run.scaled(100_000);
    // Both servers run side by side and are measured in turns, so that the
    // machine's drift (shared CPUs) falls on both alike; the median counts.
    let mut sides = Vec::new();
    for (database, count) in [("empty.db", 0), ("revoked.db", revoked)] {
        prepare_database(run, database, count).await?;
        let server = run.start(database, &CHEAP_HASHING).await?;
        let tokens = Arc::new(mint_tokens(&server, "revoked", run.scaled(250), 4).await?);
        let channels = server.channels(run.concurrency.connections).await?;
        sides.push((server, tokens, channels, Vec::new()));
    }
    for _ in 0..TURNS {
        for (_, tokens, channels, outcomes) in &mut sides {
            outcomes.push(verify_case(run, channels, run.concurrency, tokens).await);
        }
    }
    let mut medians = Vec::new();
    for (server, _, _, mut outcomes) in sides {
        server.stop().await?;
        outcomes.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
        medians.push(outcomes.swap_remove(TURNS / 2));
    }
    let [empty, full] = <[Outcome; 2]>::try_from(medians).expect("two sides");
    report.rows.push(Row::against(
        &format!("Verify with {revoked} revoked tokens (gRPC, median of {TURNS})"),
        run.concurrency,
        &full,
        "Verify, no revoked tokens",
        empty.throughput(),
        0.95,
    ));

    let million = run.scaled(1_000_000);
    prepare_database(run, "million.db", million).await?;
    let server = run.start("million.db", &CHEAP_HASHING).await?;
    let with_million = server.resident_kib()?;
    report.revoked_million = (million, with_million);
    server.stop().await
}

/// Rounds of a comparison measured in turns.
const TURNS: usize = 3;

/// A migrated database with `revoked` revocations in force.
async fn prepare_database(run: &Run, database: &str, revoked: usize) -> anyhow::Result<()> {
    let server = run.start(database, &CHEAP_HASHING).await?;
    server.stop().await?;
    revocations::insert(&run.path(database), revoked).await
}

/// Register, Login (gRPC and REST) against the argon2 ceiling, Verify's
/// latency while Login runs flat out, and Login overloaded four times.
async fn password_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let hashing_args = run.hashing_args();
    let hashing_args: Vec<&str> = hashing_args.iter().map(String::as_str).collect();
    let server = run.start("passwords.db", &hashing_args).await?;
    let channels = server.channels(run.concurrency.connections).await?;
    // Measured again right before each case: on shared CPUs the rate drifts
    // within a run.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let hash_rate =
        |implementation| ceilings::hash_rate(implementation, run.hashing, cores, run.duration);
    let ceiling = hash_rate(Argon2Implementation::Crate);
    // Enough in flight to keep every hash slot busy, few enough to queue.
    let hashing = Concurrency {
        connections: 1,
        in_flight: 8,
    };
    let password_time = run.duration * 2;

    let registered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let register = {
        let (channels, registered) = (channels.clone(), Arc::clone(&registered));
        closed_loop(hashing, run.warmup, password_time, move |worker, n| {
            let (channel, registered) = (
                channels[worker % channels.len()].clone(),
                Arc::clone(&registered),
            );
            async move {
                let username = format!("user{n}");
                let token = clients::register(channel, username.clone())
                    .await
                    .map_err(|status| status.to_string())?;
                registered.lock().expect("lock").push((username, token));
                Ok(())
            }
        })
        .await
    };
    report.rows.push(Row::against(
        "Register (gRPC: hash + insert + token)",
        hashing,
        &register,
        "argon2 crate, just before",
        ceiling,
        0.8,
    ));
    let (usernames, tokens): (Vec<String>, Vec<String>) =
        std::mem::take(&mut *registered.lock().expect("lock"))
            .into_iter()
            .unzip();
    let (usernames, tokens) = (Arc::new(usernames), Arc::new(tokens));

    let [ceiling, reference] = <[f64; 2]>::try_from(ceilings::hash_rates(
        &[Argon2Implementation::Crate, Argon2Implementation::Reference],
        run.hashing,
        cores,
        run.duration,
    ))
    .expect("two rates");
    let hash_seconds = server
        .metric("authd_password_hash_duration_seconds_sum", "")
        .await?;
    let hash_count = server
        .metric("authd_password_hash_duration_seconds_count", "")
        .await?;
    let login = login_case(
        run.warmup,
        password_time,
        channels.clone(),
        hashing,
        Arc::clone(&usernames),
    )
    .await;
    let hash_seconds = server
        .metric("authd_password_hash_duration_seconds_sum", "")
        .await?
        - hash_seconds;
    let hash_count = server
        .metric("authd_password_hash_duration_seconds_count", "")
        .await?
        - hash_count;
    report.login_hash_time = Duration::from_secs_f64(hash_seconds / hash_count.max(1.0));
    report.rows.push(Row::against(
        "Login (gRPC)",
        hashing,
        &login,
        "argon2 crate, just before",
        ceiling,
        0.9,
    ));
    report.login_vs_reference = login.throughput() / reference;
    let ceiling = hash_rate(Argon2Implementation::Crate);
    let http = reqwest::Client::new();
    let rest_login = {
        let (base, usernames) = (server.url(), Arc::clone(&usernames));
        closed_loop(hashing, run.warmup, password_time, move |_, n| {
            clients::rest_login(
                http.clone(),
                base.clone(),
                usernames[n as usize % usernames.len()].clone(),
            )
        })
        .await
    };
    report.rows.push(Row::against(
        "Login (REST, HTTP/1.1)",
        hashing,
        &rest_login,
        "argon2 crate, just before",
        ceiling,
        0.9,
    ));

    // Verify at a steady 1,000/s on the same instance while Login is flat out.
    let background = tokio::spawn(login_case(
        run.warmup,
        password_time,
        channels.clone(),
        hashing,
        Arc::clone(&usernames),
    ));
    tokio::time::sleep(run.warmup).await;
    let verify_channel = server.channels(1).await?.remove(0);
    let verify = {
        let tokens = Arc::clone(&tokens);
        open_loop(1000.0, run.duration, 1000, move |n| {
            clients::verify(
                verify_channel.clone(),
                tokens[n as usize % tokens.len()].clone(),
            )
        })
        .await
    };
    let during = background.await?;
    report.verify_under_login = Some((verify, during));

    // Login offered at four times what the hashes can serve (a quick run's
    // tiny hashes would ask for more calls than the bench can start).
    let offered = (4.0 * ceiling).min(2000.0);
    let overload_channel = channels[0].clone();
    let (accepted, refused) = {
        let usernames = Arc::clone(&usernames);
        open_loop_split(offered, run.duration, usize::MAX, move |n| {
            let (channel, username) = (
                overload_channel.clone(),
                usernames[n as usize % usernames.len()].clone(),
            );
            async move {
                match clients::login(channel, username).await {
                    Ok(_) => Ok(true),
                    Err(status) if clients::is_overload(&status) => Ok(false),
                    Err(status) => Err(status.to_string()),
                }
            }
        })
        .await
    };
    report.overload = Some((offered, accepted, refused));
    server.stop().await
}

async fn login_case(
    warmup: Duration,
    duration: Duration,
    channels: Vec<Channel>,
    concurrency: Concurrency,
    usernames: Arc<Vec<String>>,
) -> Outcome {
    closed_loop(concurrency, warmup, duration, move |worker, n| {
        let (channel, username) = (
            channels[worker % channels.len()].clone(),
            usernames[n as usize % usernames.len()].clone(),
        );
        async move {
            clients::login(channel, username)
                .await
                .map(drop)
                .map_err(|status| status.to_string())
        }
    })
    .await
}

/// Cold start on an existing database: process start to first SERVING.
async fn startup_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    prepare_database(run, "startup.db", 0).await?;
    let mut startups = Vec::new();
    for _ in 0..if run.quick { 1 } else { 5 } {
        let server = run.start("startup.db", &[]).await?;
        startups.push(server.startup);
        server.stop().await?;
    }
    startups.sort();
    report.cold_start = startups[startups.len() / 2];
    Ok(())
}
