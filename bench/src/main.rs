//! authd's benchmark: starts authd processes on loopback, prepares users and
//! tokens, drives each case at a set concurrency, measures the ceilings in
//! the same run, and writes the table and plot of BENCHMARKS.md.
//!
//! `cargo run --release -p authd-bench` (see BENCHMARKS.md).

mod bare;
mod ceilings;
mod client;
mod clients;
mod feed;
mod load;
mod mail;
mod memory;
mod nginx;
mod node;
mod overload;
mod passkeys;
mod postgres;
mod report;
mod revocations;
mod second_factor;
mod server;
mod smtp_sink;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use authd::grpc::pb::complete_login_request::Proof;
use authd::proxy::FORWARD_AUTH_PATH;
use clap::Parser;
use tonic::transport::Channel;

use ceilings::{Argon2Implementation, DEFAULT_HASHING, HashParameters};
use load::{Concurrency, Outcome, closed_loop, open_loop};
use report::{CpuPerCall, Report, Row, SweepPoint};
use server::{CHEAP_HASHING, RateLimits, Server};

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
        default_value = "verify,stack,revocations,passwords,second-factor,passkeys,mail,overload,sessions,feed,node,introspection,startup,proxies"
    )]
    cases: Vec<CaseGroup>,
    /// Serve the bare tonic no-op on this address and nothing else (the
    /// bench starts itself this way for the `stack` cases).
    #[arg(long, hide = true)]
    serve_bare: Option<std::net::SocketAddr>,
    /// Where the report (`report.md`) and plot (`verify.svg`) go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CaseGroup {
    /// Nothing beyond the ceilings (e.g. to compare compiler flags).
    Ceilings,
    Verify,
    /// What every request passes through: authd's no-op and Verify beside
    /// a bare tonic no-op server, and authd's no-op without its log line.
    Stack,
    Revocations,
    Passwords,
    /// CompleteLogin with a TOTP code and with a recovery code beside Login
    /// at the default argon2 cost, in turns; the access token's size with
    /// one factor and with two.
    SecondFactor,
    /// FinishPasskeyLogin (no argon2) beside Login at the default argon2
    /// cost and beside Verify, in turns, with the CPU each takes.
    Passkeys,
    /// The mail outbox against an SMTP sink in the bench (and the sink
    /// alone); RequestPasswordReset for existing accounts and unknown names,
    /// interleaved; ChangePassword with and without mail, in turns.
    Mail,
    /// Login goodput and latency at 1, 2, 4 and 10× its capacity, from one
    /// and from many client addresses, with Verify at 1,000/s beside.
    Overload,
    /// Refresh (rotation) flat out, and Verify beside it.
    Sessions,
    /// The revocation feed: logout to watcher, on one instance and across
    /// two on PostgreSQL (skipped if it is unreachable); fan-out to 100
    /// watchers.
    Feed,
    /// @authd/client's Node verifier (run by Node, which must be
    /// installed): checks/s beside jose's `jwtVerify` alone, and logout to
    /// refusal.
    Node,
    /// RFC 7662 introspection beside Verify over gRPC and REST.
    Introspection,
    Startup,
    /// Envoy's `Check` beside Verify; forward auth through nginx (skipped
    /// if nginx is not installed).
    Proxies,
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

    /// An authd on the SQLite file `database` (created if missing).
    async fn start(&self, database: &str, args: &[&str]) -> anyhow::Result<Server> {
        let url = format!("sqlite://{}?mode=rwc", self.path(database).display());
        self.start_on(&url, args).await
    }

    /// An authd on the database at `url`.
    async fn start_on(&self, url: &str, args: &[&str]) -> anyhow::Result<Server> {
        Server::start(
            &self.wrapper,
            &self.binary,
            url,
            &self.path("authd.log"),
            args,
            &[],
            RateLimits::Off,
        )
        .await
    }

    /// An authd on the SQLite file `database`, with `env` set.
    async fn start_with_env(
        &self,
        database: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        self.start_with_limits(database, args, env, RateLimits::Off)
            .await
    }

    /// An authd on the SQLite file `database`, with `env` set and its rate
    /// limits as given.
    async fn start_with_limits(
        &self,
        database: &str,
        args: &[&str],
        env: &[(&str, &str)],
        rate_limits: RateLimits,
    ) -> anyhow::Result<Server> {
        let url = format!("sqlite://{}?mode=rwc", self.path(database).display());
        Server::start(
            &self.wrapper,
            &self.binary,
            &url,
            &self.path("authd.log"),
            args,
            env,
            rate_limits,
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

    /// Rounds of a comparison measured in turns: one in a quick run.
    fn turns(&self) -> usize {
        if self.quick { 1 } else { TURNS }
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

/// authd's allocator, so that the bare tonic server this binary also runs
/// (`--serve-bare`) differs from authd by its layers only.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    if let Some(address) = options.serve_bare {
        return bare::serve(address).await;
    }
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
            CaseGroup::Stack => stack_cases(&run, &mut report).await?,
            CaseGroup::Revocations => revocation_cases(&run, &mut report).await?,
            CaseGroup::Passwords => password_cases(&run, &mut report).await?,
            CaseGroup::SecondFactor => second_factor_cases(&run, &mut report).await?,
            CaseGroup::Passkeys => passkey_cases(&run, &mut report).await?,
            CaseGroup::Mail => mail::cases(&run, &mut report).await?,
            CaseGroup::Overload => overload::cases(&run, &mut report).await?,
            CaseGroup::Sessions => session_cases(&run, &mut report).await?,
            CaseGroup::Feed => feed_cases(&run, &mut report).await?,
            CaseGroup::Node => node_cases(&run, &mut report).await?,
            CaseGroup::Introspection => introspection_cases(&run, &mut report).await?,
            CaseGroup::Startup => startup_cases(&run, &mut report).await?,
            CaseGroup::Proxies => proxy_cases(&run, &mut report).await?,
        }
    }

    std::fs::create_dir_all(&options.out)?;
    report.write(&options.out)?;
    println!("{}", report.markdown());
    if let Some(failure) = report.errors() {
        anyhow::bail!("calls failed: {failure}");
    }
    if !report.broken.is_empty() {
        anyhow::bail!("{}", report.broken.join("; "));
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
        Argon2Implementation::Engine,
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
        // Few enough at once that admission (by expected wait) refuses none.
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

    let http = http_client(run)?;
    let rest = http_token_case(run, &http, server.url(), &tokens, clients::rest_verify).await;
    report.rows.push(Row::against(
        "Verify over REST (POST /verify, HTTP/1.1)",
        run.concurrency,
        &rest,
        "gRPC Verify",
        grpc_verify,
        0.5,
    ));
    let web = http_token_case(run, &http, server.url(), &tokens, clients::grpc_web_verify).await;
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
    grpc_token_case(run, channels, concurrency, tokens, clients::verify).await
}

/// `call(channel, token)` from every worker, over the tokens in turn.
async fn grpc_token_case<C, Fut>(
    run: &Run,
    channels: &[Channel],
    concurrency: Concurrency,
    tokens: &Arc<Vec<String>>,
    call: C,
) -> Outcome
where
    C: Fn(Channel, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let (channels, tokens) = (channels.to_vec(), Arc::clone(tokens));
    closed_loop(concurrency, run.warmup, run.duration, move |worker, n| {
        let token = tokens[n as usize % tokens.len()].clone();
        call(channels[worker % channels.len()].clone(), token)
    })
    .await
}

/// An HTTP/1.1 client with a connection for each worker of the main
/// concurrency, never through a proxy from the environment.
fn http_client(run: &Run) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(run.concurrency.total())
        .no_proxy()
        .build()?)
}

/// `call(http, url, token)` from every worker of the main concurrency (over
/// HTTP/1.1, a connection each), over the tokens in turn.
async fn http_token_case<C, Fut>(
    run: &Run,
    http: &reqwest::Client,
    url: String,
    tokens: &Arc<Vec<String>>,
    call: C,
) -> Outcome
where
    C: Fn(reqwest::Client, String, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let (http, tokens) = (http.clone(), Arc::clone(tokens));
    closed_loop(run.concurrency, run.warmup, run.duration, move |_, n| {
        let token = tokens[n as usize % tokens.len()].clone();
        call(http.clone(), url.clone(), token)
    })
    .await
}

/// authd's server stack against a bare tonic server: the no-op through
/// every layer, the same without the log line (`RUST_LOG=off`), and Verify,
/// each beside a bare tonic 0.14 no-op in a process of its own, measured in
/// turns.
async fn stack_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let logged = run.start("stack.db", &CHEAP_HASHING).await?;
    let quiet = run
        .start_with_env("stack-quiet.db", &CHEAP_HASHING, &[("RUST_LOG", "warn")])
        .await?;
    let bare = bare::BareServer::start().await?;
    let tokens = Arc::new(mint_tokens(&logged, "stack", run.scaled(250), 4).await?);
    let quiet_tokens = Arc::new(mint_tokens(&quiet, "stack", run.scaled(250), 4).await?);
    let connections = run.concurrency.connections;
    let (logged_channels, quiet_channels, bare_channels) = (
        logged.channels(connections).await?,
        quiet.channels(connections).await?,
        bare.channels(connections).await?,
    );
    let (logged_pid, quiet_pid, bare_pid) = (logged.pid()?, quiet.pid()?, bare.pid()?);
    let [bare_noop, noop, quiet_noop, verify, quiet_verify] =
        in_turns(run.turns(), Measured::outcome, async |case| {
            let (server, calls): (u32, Pin<Box<dyn Future<Output = Outcome> + '_>>) = match case {
                0 => (
                    bare_pid,
                    Box::pin(noop_case(run, &bare_channels, run.concurrency)),
                ),
                1 => (
                    logged_pid,
                    Box::pin(noop_case(run, &logged_channels, run.concurrency)),
                ),
                2 => (
                    quiet_pid,
                    Box::pin(noop_case(run, &quiet_channels, run.concurrency)),
                ),
                3 => (
                    logged_pid,
                    Box::pin(verify_case(run, &logged_channels, run.concurrency, &tokens)),
                ),
                _ => (
                    quiet_pid,
                    Box::pin(verify_case(
                        run,
                        &quiet_channels,
                        run.concurrency,
                        &quiet_tokens,
                    )),
                ),
            };
            with_cpu(run, server, None, calls).await
        })
        .await?;
    let ceiling = bare_noop.outcome.throughput();
    report.add_measured(
        Row::ceiling(
            "No-op on a bare tonic 0.14 server (health check, no layers, own process)",
            run.concurrency,
            &bare_noop.outcome,
        ),
        bare_noop.cpu,
    );
    report.add_measured(
        Row::beside(
            "No-op through authd's layers (health check)",
            run.concurrency,
            &noop.outcome,
            "bare tonic no-op",
            ceiling,
        ),
        noop.cpu,
    );
    report.add_measured(
        Row::beside(
            "No-op through authd's layers, RUST_LOG=warn (no line per request)",
            run.concurrency,
            &quiet_noop.outcome,
            "bare tonic no-op",
            ceiling,
        ),
        quiet_noop.cpu,
    );
    report.add_measured(
        Row::against(
            "Verify, tokens seen before, against the bare tonic no-op",
            run.concurrency,
            &verify.outcome,
            "bare tonic no-op",
            ceiling,
            0.8,
        ),
        verify.cpu,
    );
    report.add_measured(
        Row::beside(
            "Verify, tokens seen before, RUST_LOG=warn",
            run.concurrency,
            &quiet_verify.outcome,
            "bare tonic no-op",
            ceiling,
        ),
        quiet_verify.cpu,
    );
    for (case, with, without) in [
        ("a no-op", &noop, &quiet_noop),
        ("Verify", &verify, &quiet_verify),
    ] {
        let share = 1.0 - with.outcome.throughput() / without.outcome.throughput();
        report.more_figures.push((
            format!("The log line's share of {case}: 1 − (default logging ÷ RUST_LOG=warn)"),
            format!("{:.1} %", share * 100.0),
            format!("≤ 10 % {}", mark(share <= 0.10)),
        ));
    }
    logged.stop().await?;
    quiet.stop().await
}

/// Measures `N` cases (`measure(0)` to `measure(N - 1)`) in turns, `turns`
/// rounds of each, so that the machine's drift (shared CPUs) falls on all
/// alike; each case's median round by throughput.
async fn in_turns<T, const N: usize>(
    turns: usize,
    outcome: fn(&T) -> &Outcome,
    mut measure: impl AsyncFnMut(usize) -> anyhow::Result<T>,
) -> anyhow::Result<[T; N]> {
    let mut rounds: [Vec<T>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..turns {
        for (case, measured) in rounds.iter_mut().enumerate() {
            measured.push(measure(case).await?);
        }
    }
    Ok(rounds.map(|mut measured| {
        measured.sort_by(|a, b| outcome(a).throughput().total_cmp(&outcome(b).throughput()));
        measured.swap_remove(measured.len() / 2)
    }))
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
        sides.push((server, tokens, channels));
    }
    let [empty, full] = in_turns(
        run.turns(),
        |outcome| outcome,
        async |side| {
            let (_, tokens, channels) = &sides[side];
            Ok(verify_case(run, channels, run.concurrency, tokens).await)
        },
    )
    .await?;
    for (server, _, _) in sides {
        server.stop().await?;
    }
    report.rows.push(Row::against(
        &format!(
            "Verify with {revoked} revoked tokens (gRPC, median of {})",
            run.turns()
        ),
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

/// Register, Login (gRPC and REST) against the argon2 ceiling, resident
/// memory around them, and Verify's latency while Login runs flat out.
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
    // Idle once the start-up hash's memory is given back.
    let pid = server.pid()?;
    tokio::time::sleep(authd::hashing::ARGON2_MEMORY_LINGER * 2).await;
    let idle_kib = memory::status_kib(pid, "VmRSS")?;
    memory::reset_peak(pid)?;
    let ceiling = hash_rate(Argon2Implementation::Engine);
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
        "authd's argon2 engine, just before",
        ceiling,
        // Issue 13: the name is looked up before hashing, so a hash is all
        // Register adds to the insert.
        0.9,
    ));
    let (usernames, tokens): (Vec<String>, Vec<String>) =
        std::mem::take(&mut *registered.lock().expect("lock"))
            .into_iter()
            .unzip();
    let (usernames, tokens) = (Arc::new(usernames), Arc::new(tokens));

    let [ceiling, reference] = <[f64; 2]>::try_from(ceilings::hash_rates(
        &[
            Argon2Implementation::Engine,
            Argon2Implementation::Reference,
        ],
        run.hashing,
        cores,
        run.duration,
    ))
    .expect("two rates");
    let hashed_before = server.hash_totals().await?;
    let login = login_case(
        run.warmup,
        password_time,
        channels.clone(),
        hashing,
        Arc::clone(&usernames),
    )
    .await;
    report.login_hash_time = hashed_before.mean_until(server.hash_totals().await?);
    report.rows.push(Row::against(
        "Login (gRPC)",
        hashing,
        &login,
        "authd's argon2 engine, just before",
        ceiling,
        0.9,
    ));
    report.login_vs_reference = login.throughput() / reference;
    let peak_kib = memory::status_kib(pid, "VmHWM")?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    report.hashing_memory = Some(memory::BurstMemory {
        slots: cores as u64,
        memory_kib: run.hashing.memory_kib.into(),
        idle_kib,
        peak_kib,
        after_kib: memory::status_kib(pid, "VmRSS")?,
    });
    let ceiling = hash_rate(Argon2Implementation::Engine);
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
        "authd's argon2 engine, just before",
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

/// The concurrency Login is measured at beside the cheaper sign-ins: enough
/// to keep the hash slots busy.
const HASHING_CONCURRENCY: Concurrency = Concurrency {
    connections: 1,
    in_flight: 8,
};

/// An authd at the run's argon2 cost (`database` its SQLite file) with an
/// account for each of [`HASHING_CONCURRENCY`]'s calls: what "a login" is
/// measured on.
async fn password_accounts(
    run: &Run,
    database: &str,
) -> anyhow::Result<(Server, Vec<Channel>, Arc<Vec<String>>)> {
    let hashing_args = run.hashing_args();
    let hashing_args: Vec<&str> = hashing_args.iter().map(String::as_str).collect();
    let server = run.start(database, &hashing_args).await?;
    let channels = server.channels(HASHING_CONCURRENCY.connections).await?;
    let mut usernames = Vec::with_capacity(HASHING_CONCURRENCY.total());
    for n in 0..HASHING_CONCURRENCY.total() {
        let username = format!("password-{n}");
        clients::register(channels[0].clone(), username.clone()).await?;
        usernames.push(username);
    }
    Ok((server, channels, Arc::new(usernames)))
}

/// The second factor against the first: Login at the default argon2 cost
/// (what "a login" costs), CompleteLogin with a TOTP code, and with a
/// recovery code (ten argon2 checks at 1 MiB), in turns, each at Login's
/// concurrency, with the CPU time authd spent per call; then the access
/// token's size with one factor and with two, which must stay under 1 KiB.
async fn second_factor_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let hashing = HASHING_CONCURRENCY;
    let (passwords, password_channels, usernames) =
        password_accounts(run, "second-factor-passwords.db").await?;
    let password_token = clients::login(password_channels[0].clone(), usernames[0].clone()).await?;

    // The accounts with TOTP log in cheaply: their tickets are made before
    // each turn, outside the timing, and the turns measure CompleteLogin
    // alone. Every call spends an account's time step (or a recovery code)
    // and a ticket, so each turn has accounts of its own.
    let mfa = run.start("second-factor.db", &CHEAP_HASHING).await?;
    let channels = mfa.channels(hashing.connections).await?;
    let turns = run.turns();
    let totp_calls = run.scaled(1500);
    let recovery_calls = run.scaled(300);
    let mut enrolled = second_factor::enroll_many(&channels, "mfa", turns * totp_calls + 1).await?;
    let sizing = enrolled.pop().context("an enrolled account")?;
    let enrolled = Arc::new(enrolled);
    let (password_pid, mfa_pid) = (passwords.pid()?, mfa.pid()?);
    let (mut totp_turn, mut recovery_turn) = (0, 0);
    let [login, totp, recovery] = in_turns(turns, Measured::outcome, async |case| {
        if case == 0 {
            let calls = login_case(
                run.warmup,
                run.duration,
                password_channels.clone(),
                hashing,
                Arc::clone(&usernames),
            );
            return with_cpu(run, password_pid, None, calls).await;
        }
        let (first, count) = if case == 1 {
            totp_turn += 1;
            ((totp_turn - 1) * totp_calls, totp_calls)
        } else {
            recovery_turn += 1;
            ((recovery_turn - 1) * recovery_calls, recovery_calls)
        };
        let accounts: Vec<&str> = enrolled[first..first + count]
            .iter()
            .map(|account| account.username.as_str())
            .collect();
        let tickets = Arc::new(second_factor::tickets(&channels, &accounts).await?);
        let (channels, enrolled) = (channels.clone(), Arc::clone(&enrolled));
        let calls = load::each_once(hashing, count / 5, count, move |worker, n| {
            let account = &enrolled[first + n];
            let proof = if case == 1 {
                Proof::TotpCode(account.code_now())
            } else {
                Proof::RecoveryCode(account.recovery_codes[0].clone())
            };
            let channel = channels[worker % channels.len()].clone();
            let ticket = tickets[n].clone();
            async move {
                second_factor::complete(channel, ticket, proof)
                    .await
                    .map(drop)
            }
        });
        with_cpu_throughout(mfa_pid, count, calls).await
    })
    .await?;

    let median = format!("median of {turns}");
    let login_rate = login.outcome.throughput();
    let login_name =
        format!("Login (gRPC, default argon2 cost, in turns with CompleteLogin, {median})");
    report.add_measured(
        Row::baseline(&login_name, hashing, &login.outcome),
        login.cpu,
    );
    for (measured, proof) in [(&totp, "a TOTP code"), (&recovery, "a recovery code")] {
        report.add_measured(
            Row::beside(
                &format!("CompleteLogin with {proof} (gRPC, a ticket each, {median})"),
                hashing,
                &measured.outcome,
                "Login, default argon2 cost, in turns",
                login_rate,
            ),
            measured.cpu,
        );
        let (time, login_time) = (1e3 / measured.outcome.throughput(), 1e3 / login_rate);
        let time_ratio = time / login_time;
        report.more_figures.push((
            format!("CompleteLogin with {proof} ÷ Login at the default argon2 cost: time per call flat out (1 ÷ calls/s, {hashing})"),
            format!("{time:.2} ms ÷ {login_time:.2} ms = {time_ratio:.3}"),
            format!("< 0.1 {}", mark(time_ratio < 0.1)),
        ));
        let (cpu, login_cpu) = (
            measured.cpu.authd.as_secs_f64() * 1e6,
            login.cpu.authd.as_secs_f64() * 1e6,
        );
        let cpu_ratio = cpu / login_cpu;
        report.more_figures.push((
            format!("CompleteLogin with {proof} ÷ Login at the default argon2 cost: CPU time per call in authd"),
            format!("{cpu:.0} µs ÷ {login_cpu:.0} µs = {cpu_ratio:.3}"),
            format!("< 0.1 {}", mark(cpu_ratio < 0.1)),
        ));
    }

    let ticket = second_factor::tickets(&channels, &[sizing.username.as_str()]).await?;
    let two_factor_token = second_factor::complete(
        channels[0].clone(),
        ticket[0].clone(),
        Proof::TotpCode(sizing.code_now()),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    for (token, factors) in [
        (&password_token, "password only"),
        (&two_factor_token, "password and TOTP"),
    ] {
        let bytes = token.len();
        report.more_figures.push((
            format!(
                "Access token, {factors}: bytes (claims: {})",
                second_factor::claims(token)?
            ),
            format!("{bytes} B"),
            format!("< 1024 B {}", mark(bytes < 1024)),
        ));
        if bytes >= 1024 {
            report.broken.push(format!(
                "the access token, {factors}, is {bytes} bytes (≥ 1 KiB)"
            ));
        }
    }
    passwords.stop().await?;
    mfa.stop().await
}

/// A passkey sign-in against a password one and against Verify: Login at
/// the default argon2 cost on an authd of its own, then FinishPasskeyLogin
/// (each call a ceremony started and signed before the turn, outside the
/// timing) and Verify on a second authd, in turns at Login's concurrency,
/// with the CPU time authd spent per call. A passkey sign-in does no argon2
/// work, so it should run at ten times Login's rate or more.
async fn passkey_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let hashing = HASHING_CONCURRENCY;
    let (passwords, password_channels, usernames) =
        password_accounts(run, "passkey-passwords.db").await?;

    // authd's default origin for a fresh start is the page it serves
    // itself, http://localhost:PORT, on the RP id `localhost`.
    let with_passkeys = run.start("passkeys.db", &CHEAP_HASHING).await?;
    let origin = passkeys::default_origin(with_passkeys.address.port())?;
    let channels = with_passkeys.channels(hashing.connections).await?;
    let count = run.scaled(1500);
    let mut accounts = passkeys::enroll_many(&channels, &origin, "passkey", count).await?;
    let tokens = Arc::new(mint_tokens(&with_passkeys, "verify", run.scaled(250), 4).await?);
    let (password_pid, passkey_pid) = (passwords.pid()?, with_passkeys.pid()?);
    let [login, passkey, verify] =
        in_turns(run.turns(), Measured::outcome, async |case| match case {
            0 => {
                let calls = login_case(
                    run.warmup,
                    run.duration,
                    password_channels.clone(),
                    hashing,
                    Arc::clone(&usernames),
                );
                with_cpu(run, password_pid, None, calls).await
            }
            1 => {
                let signed =
                    Arc::new(passkeys::signed_assertions(&channels, &origin, &mut accounts).await?);
                let channels = channels.clone();
                let calls = load::each_once(hashing, count / 5, count, move |worker, n| {
                    let channel = channels[worker % channels.len()].clone();
                    let signed = signed[n].clone();
                    async move { passkeys::finish(channel, signed).await.map(drop) }
                });
                with_cpu_throughout(passkey_pid, count, calls).await
            }
            _ => {
                let calls = verify_case(run, &channels, hashing, &tokens);
                with_cpu(run, passkey_pid, None, calls).await
            }
        })
        .await?;

    let median = format!("median of {}", run.turns());
    let login_rate = login.outcome.throughput();
    report.add_measured(
        Row::baseline(
            &format!(
                "Login (gRPC, default argon2 cost, in turns with FinishPasskeyLogin, {median})"
            ),
            hashing,
            &login.outcome,
        ),
        login.cpu,
    );
    report.add_measured(
        Row::beside(
            &format!("FinishPasskeyLogin (gRPC, a ceremony each, {median})"),
            hashing,
            &passkey.outcome,
            "Login, default argon2 cost, in turns",
            login_rate,
        ),
        passkey.cpu,
    );
    report.add_measured(
        Row::beside(
            &format!("Verify (gRPC, in turns with FinishPasskeyLogin, {median})"),
            hashing,
            &verify.outcome,
            "Login, default argon2 cost, in turns",
            login_rate,
        ),
        verify.cpu,
    );
    let (passkey_rate, verify_rate) = (passkey.outcome.throughput(), verify.outcome.throughput());
    let over_login = passkey_rate / login_rate;
    report.more_figures.push((
        format!(
            "FinishPasskeyLogin ÷ Login at the default argon2 cost: calls/s flat out ({hashing})"
        ),
        format!("{passkey_rate:.0} ÷ {login_rate:.0} = {over_login:.1}"),
        format!("≥ 10 {}", mark(over_login >= 10.0)),
    ));
    report.more_figures.push((
        format!("FinishPasskeyLogin ÷ Verify: calls/s flat out ({hashing})"),
        format!(
            "{passkey_rate:.0} ÷ {verify_rate:.0} = {:.3}",
            passkey_rate / verify_rate
        ),
        "(no target)".into(),
    ));
    let cpu = |measured: &Measured| measured.cpu.authd.as_secs_f64() * 1e6;
    report.more_figures.push((
        "FinishPasskeyLogin ÷ Login at the default argon2 cost: CPU time per call in authd".into(),
        format!(
            "{:.0} µs ÷ {:.0} µs = {:.3}",
            cpu(&passkey),
            cpu(&login),
            cpu(&passkey) / cpu(&login)
        ),
        format!("≤ 0.1 {}", mark(cpu(&passkey) <= 0.1 * cpu(&login))),
    ));
    passwords.stop().await?;
    with_passkeys.stop().await
}

/// Runs `case`, `calls` calls all told, and measures the CPU time authd and
/// the bench spent per call over all of them (a warm-up counted in calls
/// rather than time cannot be cut out of the process's CPU time).
async fn with_cpu_throughout(
    authd: u32,
    calls: usize,
    case: impl Future<Output = Outcome>,
) -> anyhow::Result<Measured> {
    let bench = std::process::id();
    let (authd_start, bench_start) = (server::cpu_time(authd)?, server::cpu_time(bench)?);
    let outcome = case.await;
    let calls = u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
    Ok(Measured {
        cpu: CpuPerCall {
            authd: server::cpu_time(authd)?.saturating_sub(authd_start) / calls,
            bench: server::cpu_time(bench)?.saturating_sub(bench_start) / calls,
            nginx: None,
        },
        outcome,
    })
}

/// Refresh flat out, each caller rotating its own session's token (every
/// call a read of the token, its session and user, a conditional retire and
/// a transaction adding the successor), beside the hash rate Login is bound
/// by; then Verify at a steady 1,000/s while Refresh runs flat out.
async fn session_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let server = run.start("sessions.db", &CHEAP_HASHING).await?;
    let channels = server.channels(run.concurrency.connections).await?;
    let mut sessions = Vec::with_capacity(run.concurrency.total());
    for n in 0..run.concurrency.total() {
        let channel = channels[n % channels.len()].clone();
        sessions.push(clients::register_session(channel, format!("session-{n}")).await?);
    }
    let (access, refresh): (Vec<String>, Vec<String>) = sessions
        .into_iter()
        .map(|(access, refresh, _)| (access, refresh))
        .unzip();
    let access = Arc::new(access);
    // Worker `w` holds the refresh token of session `w`, and replaces it
    // with the one each call returns.
    let refresh: Arc<Vec<tokio::sync::Mutex<String>>> =
        Arc::new(refresh.into_iter().map(tokio::sync::Mutex::new).collect());
    let refresh_case = {
        let (channels, refresh) = (channels.clone(), Arc::clone(&refresh));
        move |duration: Duration| {
            let (channels, refresh) = (channels.clone(), Arc::clone(&refresh));
            closed_loop(run.concurrency, run.warmup, duration, move |worker, _| {
                let (channel, refresh) = (
                    channels[worker % channels.len()].clone(),
                    Arc::clone(&refresh),
                );
                async move {
                    let mut held = refresh[worker].lock().await;
                    *held = clients::refresh(channel, held.clone()).await?;
                    Ok(())
                }
            })
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let hash_rate = ceilings::hash_rate(
        Argon2Implementation::Engine,
        DEFAULT_HASHING,
        cores,
        run.duration,
    );
    let refreshed = refresh_case(run.duration).await;
    report.rows.push(Row::beside(
        "Refresh (gRPC, rotation; SQLite)",
        run.concurrency,
        &refreshed,
        "argon2 hashes/s at the default parameters (what Login is bound by)",
        hash_rate,
    ));

    let background = tokio::spawn(refresh_case(run.duration * 2));
    tokio::time::sleep(run.warmup).await;
    let verify_channel = server.channels(1).await?.remove(0);
    let verify = open_loop(1000.0, run.duration, 1000, move |n| {
        clients::verify(
            verify_channel.clone(),
            access[n as usize % access.len()].clone(),
        )
    })
    .await;
    let during = background.await?;
    report.verify_under_refresh = Some((verify, during));
    server.stop().await
}

/// The revocation feed: how soon a logout reaches a watcher, on the same
/// instance (SQLite) and from another instance on PostgreSQL; what a
/// hundred watchers get and cost.
async fn feed_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let args: Vec<&str> = CHEAP_HASHING
        .iter()
        .chain(&feed::FEED_ARGS)
        .copied()
        .collect();
    let server = run.start("feed.db", &args).await?;
    let sessions = feed::sessions(&server, "feed", run.scaled(1000)).await?;
    let same = feed::propagation(&server, &server, &sessions).await?;
    report.more_figures.push((
        "Logout to a watcher of the same instance (SQLite): p50 / p99 / max".into(),
        same.describe(),
        format!("p99 < 100 ms {}", mark(same.p99_ms() < 100.0)),
    ));
    let verifier = client::verifier(&server).await?;
    let sessions = feed::sessions(&server, "client", run.scaled(1000)).await?;
    let refused =
        feed::Propagation::from(client::propagation(&verifier, &server, &sessions).await?);
    report.more_figures.push((
        "Logout to authd-client refusing the token, same instance (SQLite): p50 / p99 / max".into(),
        refused.describe(),
        format!("p99 < 100 ms {}", mark(refused.p99_ms() < 100.0)),
    ));
    client_checks(run, report, &server, &verifier).await?;
    drop(verifier);
    let watchers = 100;
    let fanout = feed::fanout(
        &server,
        watchers,
        feed::sessions(&server, "fanout", run.scaled(2000)).await?,
    )
    .await?;
    report.more_figures.push((
        format!("Feed to {watchers} watchers while Logout runs flat out (8 callers): changes made/s; delivered/s, all watchers"),
        format!(
            "{:.0}; {:.0}",
            fanout.produced_per_second, fanout.delivered_per_second
        ),
        String::new(),
    ));
    report.more_figures.push((
        format!("Resident memory per idle watcher (of {})", fanout.watchers),
        format!("{:.1} KiB", fanout.bytes_per_watcher / 1024.0),
        String::new(),
    ));
    server.stop().await?;

    let admin = std::env::var("BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match postgres::Scratch::create(&admin, run.scratch.path()).await {
        Ok(scratch) => {
            let key_file = scratch.secrets_key_file.display().to_string();
            let args: Vec<&str> = args
                .iter()
                .copied()
                .chain(["--secrets-key-file", &key_file])
                .collect();
            let first = run.start_on(&scratch.url, &args).await?;
            let second = run.start_on(&scratch.url, &args).await?;
            let sessions = feed::sessions(&second, "feed", run.scaled(1000)).await?;
            let across = feed::propagation(&first, &second, &sessions).await?;
            report.more_figures.push((
                "Logout on a second instance to a watcher of the first (PostgreSQL): p50 / p99 / max".into(),
                across.describe(),
                format!("p99 < 100 ms {}", mark(across.p99_ms() < 100.0)),
            ));
            let verifier = client::verifier(&first).await?;
            let sessions = feed::sessions(&second, "client", run.scaled(1000)).await?;
            let refused =
                feed::Propagation::from(client::propagation(&verifier, &second, &sessions).await?);
            report.more_figures.push((
                "Logout on a second instance to authd-client (of the first) refusing the token (PostgreSQL): p50 / p99 / max".into(),
                refused.describe(),
                format!("p99 < 100 ms {}", mark(refused.p99_ms() < 100.0)),
            ));
            drop(verifier);
            first.stop().await?;
            second.stop().await?;
            scratch.drop_database().await?;
        }
        Err(error) => report.notes.push(format!(
            "PostgreSQL unreachable at {admin} ({error:#}): the two-instance feed case was skipped"
        )),
    }
    Ok(())
}

/// A check in authd-client against a signature check and against a remote
/// Verify at the main concurrency.
async fn client_checks(
    run: &Run,
    report: &mut Report,
    server: &Server,
    verifier: &authd_client::Verifier,
) -> anyhow::Result<()> {
    let fresh = mint_tokens(server, "client-new", run.scaled(500).div_ceil(10), 10).await?;
    let seen = &fresh[..1];
    let repeat = if run.quick { 1_000 } else { 200_000 };
    let seen_before = client::time_per_check(verifier, seen, repeat).await?;
    let seen_rate = client::checks_per_second(verifier, &seen[0], run.duration).await;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    report.more_figures.push((
        format!(
            "authd-client, a token seen before: one check on one thread; checks/s on {cores} cores"
        ),
        format!("{:.2} µs; {seen_rate:.0}", seen_before.as_secs_f64() * 1e6),
        format!("< 2 µs {}", mark(seen_before < Duration::from_micros(2))),
    ));
    let new = client::time_per_check(verifier, &fresh[1..], 1).await?;
    let ratio = new.as_secs_f64() / report.signature_verify.as_secs_f64();
    report.more_figures.push((
        "authd-client, a new token: one check on one thread ÷ one Ed25519 verify_strict".into(),
        format!(
            "{:.1} µs ÷ {:.1} µs = {ratio:.2}",
            new.as_secs_f64() * 1e6,
            report.signature_verify.as_secs_f64() * 1e6
        ),
        format!("≤ 1.2 {}", mark(ratio <= 1.2)),
    ));
    let channels = server.channels(run.concurrency.connections).await?;
    let tokens = Arc::new(vec![seen[0].clone()]);
    let remote = verify_case(run, &channels, run.concurrency, &tokens).await;
    let local = {
        let (verifier, token) = (verifier.clone(), seen[0].clone());
        closed_loop(run.concurrency, run.warmup, run.duration, move |_, _| {
            let (verifier, token) = (verifier.clone(), token.clone());
            async move {
                verifier
                    .verify(&token)
                    .await
                    .map(drop)
                    .map_err(|error| error.reason().to_owned())
            }
        })
        .await
    };
    report.rows.push(Row::beside(
        "Verify in-process with authd-client, a token seen before",
        run.concurrency,
        &local,
        "authd's gRPC Verify, same concurrency",
        remote.throughput(),
    ));
    Ok(())
}

/// @authd/client's Node verifier, in a Node process following this authd's
/// feed: checks/s for a token seen before and for every token new, each
/// beside jose's `jwtVerify` alone (on the same token; on as many other
/// new ones); then logout to
/// refusal, from the Logout's answer (in the Node process) to the
/// verifier's first `TOKEN_REVOKED`.
async fn node_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    node::prepare().await?;
    let args: Vec<&str> = CHEAP_HASHING
        .iter()
        .chain(&feed::FEED_ARGS)
        .copied()
        .collect();
    let server = run.start("node.db", &args).await?;
    let seen = mint_tokens(&server, "node-seen", 1, 1).await?;
    let fresh = mint_tokens(&server, "node-new", run.scaled(40_000) / 50, 50).await?;
    let logouts: Vec<String> = feed::sessions(&server, "node-logout", run.scaled(1000))
        .await?
        .into_iter()
        .map(|session| session.access)
        .collect();
    let turns = run.turns();
    let measured = node::measure(
        &run.path("node.json"),
        &node::Parameters {
            url: server.url(),
            feed_token: feed::FEED_TOKEN,
            duration: run.duration,
            warmup: run.warmup,
            turns,
            seen: &seen[0],
            fresh: &fresh,
            logouts: &logouts,
        },
    )
    .await?;
    server.stop().await?;

    let node = &measured.node;
    let beside = |verifier: &node::Rate, other: &node::Rate| {
        let (verifier_rate, other_rate) = (verifier.per_second(), other.per_second());
        format!(
            "{verifier_rate:.0} ({:.1} µs) ÷ {other_rate:.0} ({:.1} µs) = {:.2}",
            1e6 / verifier_rate,
            1e6 / other_rate,
            verifier_rate / other_rate
        )
    };
    report.more_figures.push((
        format!(
            "Node {node} verifier (@authd/client), a token seen before: checks/s (µs each) on one thread ÷ jose's jwtVerify alone, same token, local key set (median of {turns})"
        ),
        beside(&measured.verifier_seen, &measured.jose_seen),
        String::new(),
    ));
    report.more_figures.push((
        format!(
            "Node verifier, a token seen before ÷ Node's Ed25519 check alone (node:crypto verify, key imported once), same token (median of {turns})"
        ),
        beside(&measured.verifier_seen, &measured.signature_seen),
        String::new(),
    ));
    report.more_figures.push((
        format!(
            "Node verifier, every token new: checks/s (µs each) on one thread, {} tokens once each ÷ jose's jwtVerify, {} others",
            measured.verifier_new.checks, measured.jose_new.checks
        ),
        beside(&measured.verifier_new, &measured.jose_new),
        String::new(),
    ));
    let refused = feed::Propagation::from(measured.refused_after);
    report.more_figures.push((
        "Logout to the Node verifier refusing the token, same instance (SQLite): p50 / p99 / max"
            .into(),
        refused.describe(),
        format!("p99 < 100 ms {}", mark(refused.p99_ms() < 100.0)),
    ));
    Ok(())
}

/// RFC 7662 introspection (`POST /oauth2/introspect`, a form, the caller's
/// credential as a Bearer) against Verify over gRPC and over REST, on the
/// same tokens seen before, in turns, with the CPU time authd spent per
/// call.
async fn introspection_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let args: Vec<&str> = CHEAP_HASHING
        .iter()
        .copied()
        .chain([
            "--public-url",
            "http://127.0.0.1",
            "--introspection-token",
            clients::INTROSPECTION_TOKEN,
        ])
        .collect();
    let server = run.start("introspection.db", &args).await?;
    let tokens = Arc::new(mint_tokens(&server, "introspection", run.scaled(250), 4).await?);
    let channels = server.channels(run.concurrency.connections).await?;
    let http = http_client(run)?;
    let authd = server.pid()?;
    let median = format!("median of {}", run.turns());
    let [grpc, rest, introspection] = in_turns(run.turns(), Measured::outcome, async |case| {
        let calls: Pin<Box<dyn Future<Output = Outcome> + '_>> = match case {
            0 => Box::pin(verify_case(run, &channels, run.concurrency, &tokens)),
            1 => Box::pin(http_token_case(
                run,
                &http,
                server.url(),
                &tokens,
                clients::rest_verify,
            )),
            _ => Box::pin(http_token_case(
                run,
                &http,
                server.url(),
                &tokens,
                clients::introspect,
            )),
        };
        with_cpu(run, authd, None, calls).await
    })
    .await?;
    let grpc_rate = grpc.outcome.throughput();
    report.add_measured(
        Row::beside(
            &format!("Introspection (POST /oauth2/introspect, HTTP/1.1, {median})"),
            run.concurrency,
            &introspection.outcome,
            "gRPC Verify, same tokens, in turns",
            grpc_rate,
        ),
        introspection.cpu,
    );
    report.add_measured(
        Row::beside(
            &format!(
                "Verify over REST (POST /verify, HTTP/1.1, in turns with introspection, {median})"
            ),
            run.concurrency,
            &rest.outcome,
            "gRPC Verify, same tokens, in turns",
            grpc_rate,
        ),
        rest.cpu,
    );
    report.add_measured(
        Row::baseline(
            &format!("Verify, tokens seen before (gRPC, in turns with introspection, {median})"),
            run.concurrency,
            &grpc.outcome,
        ),
        grpc.cpu,
    );
    report.more_figures.push((
        "Introspection ÷ REST POST /verify: calls/s, both HTTP/1.1, same tokens, in turns".into(),
        format!(
            "{:.0} ÷ {:.0} = {:.2}",
            introspection.outcome.throughput(),
            rest.outcome.throughput(),
            introspection.outcome.throughput() / rest.outcome.throughput()
        ),
        String::new(),
    ));
    server.stop().await
}

fn mark(met: bool) -> &'static str {
    if met { "✅" } else { "❌" }
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

/// Envoy's `Check` against Verify on the same tokens, in turns; then forward
/// auth through nginx (`deploy/nginx/authd.conf`) beside authd's own
/// `/auth/forward` and beside nginx alone in front of the same app, in turns.
/// Each with the CPU time authd, nginx and the bench spent per call.
async fn proxy_cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let server = run.start("proxies.db", &CHEAP_HASHING).await?;
    let tokens = Arc::new(mint_tokens(&server, "proxies", run.scaled(250), 4).await?);
    let channels = server.channels(run.concurrency.connections).await?;
    let authd = server.pid()?;
    let median = format!("median of {}", run.turns());

    let [verify, check] = in_turns(run.turns(), Measured::outcome, async |case| {
        let calls = async {
            match case {
                0 => verify_case(run, &channels, run.concurrency, &tokens).await,
                _ => {
                    grpc_token_case(run, &channels, run.concurrency, &tokens, clients::check).await
                }
            }
        };
        with_cpu(run, authd, None, calls).await
    })
    .await?;
    report.add_measured(
        Row::against(
            &format!("Check (Envoy ext_authz, gRPC, {median})"),
            run.concurrency,
            &check.outcome,
            "Verify, same tokens, in turns",
            verify.outcome.throughput(),
            0.8,
        ),
        check.cpu,
    );
    let verify_name = format!("Verify, tokens seen before (gRPC, in turns with Check, {median})");
    report.add_measured(
        Row::baseline(&verify_name, run.concurrency, &verify.outcome),
        verify.cpu,
    );

    let app = nginx::App::start().await?;
    let Some(nginx) = nginx::Nginx::start(&run.path("nginx"), server.address, app.address).await?
    else {
        let note = "nginx not installed: forward-auth cases skipped";
        eprintln!("{note}");
        report.notes.push(note.into());
        return server.stop().await;
    };
    let http = http_client(run)?;
    let urls = [
        format!("{}/orders", nginx.url()),
        format!("{}{FORWARD_AUTH_PATH}", server.url()),
        // Public in the deployment file: nginx passes it to the app without
        // asking authd.
        format!("{}/healthz", nginx.url()),
    ];
    let nginx_pid = nginx.pid()?;
    let [through, direct, alone] = in_turns(run.turns(), Measured::outcome, async |case| {
        let calls = http_token_case(run, &http, urls[case].clone(), &tokens, clients::get_bearer);
        with_cpu(run, authd, Some(nginx_pid), calls).await
    })
    .await?;
    report.add_measured(
        Row::beside(
            &format!("Forward auth through nginx (auth_request, HTTP/1.1, {median})"),
            run.concurrency,
            &through.outcome,
            "authd's /auth/forward directly",
            direct.outcome.throughput(),
        ),
        through.cpu,
    );
    let direct_name = format!("GET {FORWARD_AUTH_PATH} on authd directly (HTTP/1.1, {median})");
    report.add_measured(
        Row::baseline(&direct_name, run.concurrency, &direct.outcome),
        direct.cpu,
    );
    let alone_name =
        format!("nginx alone: the same requests to its public /healthz (HTTP/1.1, {median})");
    report.add_measured(
        Row::baseline(&alone_name, run.concurrency, &alone.outcome),
        alone.cpu,
    );
    drop((nginx, app));
    server.stop().await
}

/// A case's outcome, and the CPU time each process spent per call in it.
struct Measured {
    outcome: Outcome,
    cpu: CpuPerCall,
}

impl Measured {
    fn outcome(&self) -> &Outcome {
        &self.outcome
    }
}

/// Runs `case`, and measures the CPU time that authd, nginx (if given) and
/// the bench itself spent per successful call after the warm-up.
async fn with_cpu(
    run: &Run,
    authd: u32,
    nginx: Option<u32>,
    case: impl Future<Output = Outcome>,
) -> anyhow::Result<Measured> {
    let processes: Vec<u32> = [Some(authd), Some(std::process::id()), nginx]
        .into_iter()
        .flatten()
        .collect();
    let cpu_times = |processes: &[u32]| -> anyhow::Result<Vec<Duration>> {
        processes.iter().map(|&pid| server::cpu_time(pid)).collect()
    };
    let after_warmup = {
        let (processes, warmup) = (processes.clone(), run.warmup);
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            cpu_times(&processes)
        })
    };
    let outcome = case.await;
    let end = cpu_times(&processes)?;
    let start = after_warmup.await??;
    let calls = u32::try_from((outcome.calls - outcome.errors).max(1)).unwrap_or(u32::MAX);
    let per_call: Vec<Duration> = end
        .iter()
        .zip(&start)
        .map(|(end, start)| end.saturating_sub(*start) / calls)
        .collect();
    Ok(Measured {
        cpu: CpuPerCall {
            authd: per_call[0],
            bench: per_call[1],
            nginx: per_call.get(2).copied(),
        },
        outcome,
    })
}
