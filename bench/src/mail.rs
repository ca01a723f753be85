//! The mail cases (issue 21), against an SMTP sink in the bench process
//! ([`Sink`]): the outbox draining a backlog beside the sink's own rate;
//! RequestPasswordReset for accounts with a verified address and for
//! unknown names, interleaved call by call, whose latency distributions
//! must not differ; and ChangePassword with and without mail (each change
//! then queues a notice in its own transaction), in turns.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::{
    ChangePasswordRequest, RegisterRequest, RequestPasswordResetRequest, VerifyEmailRequest,
};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tonic::Code;
use tonic::transport::Channel;

use crate::clients::{self, PASSWORD};
use crate::load::{Concurrency, Outcome, closed_loop, open_loop_split};
use crate::report::{Report, Row};
use crate::server::CHEAP_HASHING;
use crate::smtp_sink::{self, Sink};
use crate::{Measured, Run, in_turns, mark, with_cpu};

/// The password ChangePassword alternates with [`PASSWORD`].
const OTHER_PASSWORD: &str = "bench-Other-pa55word-for-load";

/// Registrations or verifications at once: few enough that admission (by
/// expected wait) refuses none.
const PREPARING_AT_ONCE: usize = 12;

/// How many times a VerifyEmail refused with INTERNAL is sent, and the
/// wait before the next attempt (times the attempts so far).
const VERIFY_ATTEMPTS: usize = 10;
const VERIFY_RETRY_AFTER: Duration = Duration::from_millis(20);

/// How long the sink may take to receive what authd queued while preparing.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// RequestPasswordReset calls per second, both kinds together: well under
/// what the background jobs (64 at most pending, then SERVER_BUSY) drain,
/// so that every call is answered and none is refused.
const RESET_RATE: f64 = 400.0;

/// ChangePassword's concurrency: a few users changing their passwords at
/// once, not a flood.
const CHANGE_CONCURRENCY: Concurrency = Concurrency {
    connections: 1,
    in_flight: 4,
};

/// Accounts ChangePassword goes round: more than it changes in a second.
const CHANGE_ACCOUNTS: usize = 600;

/// The Kolmogorov–Smirnov coefficient c(α) at α = 0.01: √(−ln(α/2)/2).
const KS_COEFFICIENT_1_PERCENT: f64 = 1.628;

pub async fn cases(run: &Run, report: &mut Report) -> anyhow::Result<()> {
    let sink = Sink::start().await?;
    outbox_cases(run, report, &sink).await?;
    reset_cases(run, report, &sink).await?;
    change_password_cases(run, report, &sink).await
}

/// authd's arguments to send mail through `sink`, cheap argon2, and `more`.
fn mail_args<'a>(sink_url: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    CHEAP_HASHING
        .iter()
        .copied()
        .chain([
            "--smtp-url",
            sink_url,
            "--mail-from",
            "authd bench <bench@example.com>",
        ])
        .chain(more.iter().copied())
        .collect()
}

/// The outbox draining a backlog of verification mails (one per Register
/// with an address, queued on an instance whose worker never looks again),
/// from the first mail the sink accepts to the last; then the sink's own
/// rate for the same mails through lettre, one sender and eight.
async fn outbox_cases(run: &Run, report: &mut Report, sink: &Sink) -> anyhow::Result<()> {
    let count = run.scaled(1000);
    let url = sink.url();
    // The worker looks at start, when the outbox is empty, and not again
    // within the run.
    let filling = run
        .start(
            "outbox.db",
            &mail_args(&url, &["--mail-poll-interval", "1h"]),
        )
        .await?;
    let channels = filling.channels(4).await?;
    register_many(&channels, "outbox", count, true).await?;
    filling.stop().await?;

    let before = sink.count();
    let draining = run.start("outbox.db", &mail_args(&url, &[])).await?;
    let authd = draining.pid()?;
    let cpu_start = crate::server::cpu_time(authd)?;
    sink.wait_for(before + count, DELIVERY_TIMEOUT).await?;
    let cpu = crate::server::cpu_time(authd)?.saturating_sub(cpu_start);
    // The sink answers before authd records the mail sent.
    let mut sent = draining.metric("authd_mails_sent_total", "").await?;
    for _ in 0..50 {
        if sent as usize >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        sent = draining.metric("authd_mails_sent_total", "").await?;
    }
    let failed = draining
        .metric("authd_mail_failed_attempts_total", "")
        .await?;
    draining.stop().await?;
    if sent as usize != count || failed > 0.0 {
        report.broken.push(format!(
            "the outbox sent {sent:.0} of {count} mails, with {failed:.0} failed attempts"
        ));
    }
    let mails = sink.mails_from(before);
    let (first, last) = (
        mails.first().context("no mail")?.at,
        mails.last().context("no mail")?.at,
    );
    let window = (last - first).as_secs_f64().max(1e-6);
    let outbox_rate = (mails.len() - 1).max(1) as f64 / window;
    let cpu_per_mail = cpu.as_secs_f64() * 1e6 / mails.len() as f64;

    let alone = smtp_sink::replay(sink.address, &mails, 1).await?;
    let eight = smtp_sink::replay(sink.address, &mails, 8).await?;
    report.more_figures.push((
        format!(
            "Outbox: mails/s to the SMTP sink, a backlog of {count} verification mails drained (first to last accepted); CPU per mail in authd"
        ),
        format!("{outbox_rate:.0}/s; {cpu_per_mail:.0} µs"),
        String::new(),
    ));
    report.more_figures.push((
        "SMTP sink alone: the same mails through lettre as authd sends them (a connection each), 1 sender; 8 senders".into(),
        format!("{alone:.0}/s; {eight:.0}/s"),
        "(ceiling)".into(),
    ));
    report.more_figures.push((
        "Outbox ÷ the sink alone, 1 sender (as the outbox sends)".into(),
        format!("{outbox_rate:.0} ÷ {alone:.0} = {:.2}", outbox_rate / alone),
        String::new(),
    ));
    Ok(())
}

/// RequestPasswordReset for accounts with a verified address (by
/// username) and for names no account has, alternating call by call in one
/// open-loop load, so that the machine's drift falls on both alike; their
/// latency distributions side by side and the two-sample
/// Kolmogorov–Smirnov statistic between them.
async fn reset_cases(run: &Run, report: &mut Report, sink: &Sink) -> anyhow::Result<()> {
    let url = sink.url();
    // Budgets no account reaches in the run, still counted (a write each),
    // as they are in production.
    let budgets = [
        "--password-reset-mails-per-account",
        "100000/1h",
        "--password-reset-mails-per-address",
        "100000/1h",
    ];
    let server = run.start("reset.db", &mail_args(&url, &budgets)).await?;
    let channels = server.channels(run.concurrency.connections).await?;
    let (accounts, refused) = verified_accounts(&channels, sink, "reset", run.scaled(300)).await?;
    verify_refusals(report, accounts.len(), refused);
    let usernames: Arc<Vec<String>> = Arc::new(
        accounts
            .into_iter()
            .map(|account| account.username)
            .collect(),
    );

    let per_kind = run.scaled(2000);
    let duration = Duration::from_secs_f64(2.0 * per_kind as f64 / RESET_RATE);
    let warmup = duration / 5;
    let before = sink.count();
    let split = {
        let (channels, usernames) = (channels.clone(), Arc::clone(&usernames));
        open_loop_split(RESET_RATE, warmup, duration, 256, move |n| {
            let existing = names_an_account(n);
            let name = if existing {
                usernames[(n / 2) as usize % usernames.len()].clone()
            } else {
                format!("nobody-{n}")
            };
            let channel = channels[n as usize % channels.len()].clone();
            async move { request_reset(channel, name).await.map(|()| existing) }
        })
        .await
    };
    let total_calls = ((warmup + duration).as_secs_f64() * RESET_RATE) as u64;
    let sent_existing = (0..total_calls).filter(|&n| names_an_account(n)).count();
    let (existing, unknown) = (split.first, split.second);
    let delivered = sink
        .wait_for(before + sent_existing, DELIVERY_TIMEOUT)
        .await;
    let reset_mails = sink
        .mails_from(before)
        .iter()
        .filter(|mail| mail.link_token("reset-password?token=").is_ok())
        .count();
    server.stop().await?;

    let describe = |outcome: &Outcome| {
        format!(
            "{:.2} / {:.2} / {:.2} / {:.2}",
            outcome.millis(0.5),
            outcome.millis(0.9),
            outcome.millis(0.99),
            outcome.latency.mean() / 1000.0
        )
    };
    report.more_figures.push((
        format!(
            "RequestPasswordReset, accounts with a verified address ({} calls, by username, {} accounts): p50 / p90 / p99 / mean ms",
            existing.latency.len(),
            usernames.len()
        ),
        describe(&existing),
        String::new(),
    ));
    report.more_figures.push((
        format!(
            "RequestPasswordReset, unknown names ({} calls, interleaved with the above, {RESET_RATE:.0}/s both together): p50 / p90 / p99 / mean ms",
            unknown.latency.len()
        ),
        describe(&unknown),
        String::new(),
    ));
    let (n, m) = (existing.latency.len() as f64, unknown.latency.len() as f64);
    let statistic = kolmogorov_smirnov(&existing.latency, &unknown.latency);
    let critical = KS_COEFFICIENT_1_PERCENT * ((n + m) / (n * m)).sqrt();
    report.more_figures.push((
        "RequestPasswordReset, existing ÷ unknown: two-sample Kolmogorov–Smirnov D, against its critical value at α = 0.01".into(),
        format!("D = {statistic:.4}, c = {critical:.4}"),
        format!(
            "D < c: no difference found {}",
            mark(statistic < critical)
        ),
    ));
    report.more_figures.push((
        "RequestPasswordReset: reset mails the sink received ÷ requests for existing accounts (none for unknown names)".into(),
        format!("{reset_mails} ÷ {sent_existing}"),
        format!("equal {}", mark(reset_mails == sent_existing)),
    ));
    if existing.errors + unknown.errors > 0 {
        report.broken.push(format!(
            "RequestPasswordReset: {} calls failed, first: {}",
            existing.errors + unknown.errors,
            existing.first_error.as_deref().unwrap_or("?")
        ));
    }
    if let Err(error) = delivered {
        report.broken.push(format!("reset mails: {error:#}"));
    }
    Ok(())
}

/// How many VerifyEmail calls, made one at a time while preparing, were
/// refused with INTERNAL and sent again.
fn verify_refusals(report: &mut Report, verified: usize, refused: usize) {
    report.more_figures.push((
        format!("VerifyEmail, one at a time while the outbox sends (preparing {verified} accounts): refused with INTERNAL, then sent again"),
        refused.to_string(),
        format!("0 {}", mark(refused == 0)),
    ));
}

/// The two-sample Kolmogorov–Smirnov statistic: the largest distance
/// between the two empirical distribution functions, read from the
/// histograms (three significant digits, the same buckets on both sides).
fn kolmogorov_smirnov(a: &Histogram<u64>, b: &Histogram<u64>) -> f64 {
    let mut counts: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for value in a.iter_recorded() {
        counts.entry(value.value_iterated_to()).or_default().0 += value.count_at_value();
    }
    for value in b.iter_recorded() {
        counts.entry(value.value_iterated_to()).or_default().1 += value.count_at_value();
    }
    let (total_a, total_b) = (a.len().max(1) as f64, b.len().max(1) as f64);
    let (mut seen_a, mut seen_b, mut largest) = (0, 0, 0.0_f64);
    for (count_a, count_b) in counts.into_values() {
        seen_a += count_a;
        seen_b += count_b;
        largest = largest.max((seen_a as f64 / total_a - seen_b as f64 / total_b).abs());
    }
    largest
}

/// ChangePassword at [`CHANGE_CONCURRENCY`] on an authd without mail and on
/// one whose accounts have verified addresses (each change queues a notice
/// in its transaction, which the outbox sends to the sink meanwhile), in
/// turns. Each call changes the next account's password, from one password
/// to the other and back: an account changed again within the second gets
/// a token issued a second later than the last (authd issues a new token
/// after its account's revocation cutoff), and sixty such seconds ahead it
/// is not valid yet; with [`CHANGE_ACCOUNTS`] accounts each changes about
/// once a second or less.
async fn change_password_cases(run: &Run, report: &mut Report, sink: &Sink) -> anyhow::Result<()> {
    let concurrency = CHANGE_CONCURRENCY;
    let count = run.scaled(CHANGE_ACCOUNTS);
    let url = sink.url();
    let plain = run.start("change-plain.db", &CHEAP_HASHING).await?;
    let plain_channels = plain.channels(concurrency.connections).await?;
    let plain_accounts = register_many(&plain_channels, "change-plain", count, false).await?;
    let mailing = run.start("change-mail.db", &mail_args(&url, &[])).await?;
    let mail_channels = mailing.channels(concurrency.connections).await?;
    let (mail_accounts, refused) =
        verified_accounts(&mail_channels, sink, "change-mail", count).await?;
    verify_refusals(report, mail_accounts.len(), refused);
    let sides = [
        (
            plain.pid()?,
            plain_channels,
            Arc::new(slots(plain_accounts)),
        ),
        (
            mailing.pid()?,
            mail_channels,
            Arc::new(slots(mail_accounts)),
        ),
    ];
    let changed_with_mail = Arc::new(AtomicUsize::new(0));
    let notices_from = sink.count();
    let unchanged = Arc::new(AtomicUsize::new(0));
    let [without, with] = in_turns(run.turns(), Measured::outcome, async |case| {
        let (pid, channels, accounts) = &sides[case];
        let changed = if case == 1 {
            &changed_with_mail
        } else {
            &unchanged
        };
        let calls = change_case(run, channels, accounts, changed);
        with_cpu(run, *pid, None, calls).await
    })
    .await?;
    // The outbox sends on after the turns with mail, through the turns
    // without: what it has left when they end, counted at the sink
    // (`authd_mails_queued` is only set between the outbox's rounds, and
    // one round lasts until the backlog is gone).
    let backlog = changed_with_mail
        .load(Ordering::Relaxed)
        .saturating_sub(sink.count() - notices_from);
    plain.stop().await?;
    mailing.stop().await?;

    let median = format!("median of {}", run.turns());
    report.add_measured(
        Row::baseline(
            &format!("ChangePassword, no mail configured (gRPC, cheap argon2, {median})"),
            concurrency,
            &without.outcome,
        ),
        without.cpu,
    );
    report.add_measured(
        Row::beside(
            &format!(
                "ChangePassword, a notice queued to a verified address, outbox sending (gRPC, cheap argon2, {median})"
            ),
            concurrency,
            &with.outcome,
            "ChangePassword, no mail, in turns",
            without.outcome.throughput(),
        ),
        with.cpu,
    );
    let ratio = |quantile: f64| with.outcome.millis(quantile) / without.outcome.millis(quantile);
    report.more_figures.push((
        format!("ChangePassword with mail ÷ without ({concurrency}, in turns): p50; p99; calls/s"),
        format!(
            "{:.2}; {:.2}; {:.2}",
            ratio(0.5),
            ratio(0.99),
            with.outcome.throughput() / without.outcome.throughput()
        ),
        String::new(),
    ));
    report.more_figures.push((
        "ChangePassword with mail: notices queued in all its turns; not yet at the sink when the last turn ended".into(),
        format!(
            "{}; {backlog}",
            changed_with_mail.load(Ordering::Relaxed)
        ),
        String::new(),
    ));
    Ok(())
}

/// ChangePassword flat out, each call on the next of `accounts` in turn,
/// from its password to the other; `changed` counts the successes.
async fn change_case(
    run: &Run,
    channels: &[Channel],
    accounts: &Arc<Vec<Mutex<Account>>>,
    changed: &Arc<AtomicUsize>,
) -> Outcome {
    let (channels, accounts, changed) =
        (channels.to_vec(), Arc::clone(accounts), Arc::clone(changed));
    let next = Arc::new(AtomicUsize::new(0));
    closed_loop(
        CHANGE_CONCURRENCY,
        run.warmup,
        run.duration,
        move |worker, _| {
            let channel = channels[worker % channels.len()].clone();
            let (accounts, changed, next) = (
                Arc::clone(&accounts),
                Arc::clone(&changed),
                Arc::clone(&next),
            );
            async move {
                // The next account no other call is changing.
                let (account, token, current) = loop {
                    let n = next.fetch_add(1, Ordering::Relaxed) % accounts.len();
                    let mut account = lock(&accounts[n]);
                    if !account.busy {
                        account.busy = true;
                        break (n, account.token.clone(), account.password);
                    }
                };
                let next = if current == PASSWORD {
                    OTHER_PASSWORD
                } else {
                    PASSWORD
                };
                let changed_to = change_password(channel, &token, current, next).await;
                let mut account = lock(&accounts[account]);
                account.busy = false;
                account.token = changed_to?;
                account.password = next;
                changed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        },
    )
    .await
}

fn lock(account: &Mutex<Account>) -> std::sync::MutexGuard<'_, Account> {
    // Held only to read or write the account, never across a call; a
    // poisoned lock still holds a whole account.
    account
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn slots(accounts: Vec<Account>) -> Vec<Mutex<Account>> {
    accounts.into_iter().map(Mutex::new).collect()
}

/// An account, its session's access token and its password now.
struct Account {
    username: String,
    token: String,
    password: &'static str,
    /// In a ChangePassword call now.
    busy: bool,
}

/// `count` accounts named `{prefix}-{n}`, with the address
/// `{prefix}-{n}@example.com` when `with_address`.
async fn register_many(
    channels: &[Channel],
    prefix: &str,
    count: usize,
    with_address: bool,
) -> anyhow::Result<Vec<Account>> {
    let mut accounts = Vec::with_capacity(count);
    let mut batch = JoinSet::new();
    for n in 0..count {
        let channel = channels[n % channels.len()].clone();
        let username = format!("{prefix}-{n}");
        let email = if with_address {
            format!("{username}@example.com")
        } else {
            String::new()
        };
        batch.spawn(async move {
            let token = AuthServiceClient::new(channel)
                .register(RegisterRequest {
                    username: username.clone(),
                    password: PASSWORD.into(),
                    email,
                })
                .await?
                .into_inner()
                .access_token;
            Ok::<_, tonic::Status>(Account {
                username,
                token,
                password: PASSWORD,
                busy: false,
            })
        });
        if batch.len() >= PREPARING_AT_ONCE {
            accounts.push(batch.join_next().await.context("a task")???);
        }
    }
    while let Some(account) = batch.join_next().await {
        accounts.push(account??);
    }
    Ok(accounts)
}

/// `count` accounts registered with an address, each verified as its owner
/// would: the token of the link in the mail the sink received. One
/// VerifyEmail at a time, each tried again (up to [`VERIFY_ATTEMPTS`], a
/// little later each time) when
/// refused with INTERNAL: on SQLite it fails so ("database is locked") when
/// another write commits during it, e.g. the outbox marking a mail sent
/// (see BENCHMARKS.md, issue 21). Also how many calls were so refused.
async fn verified_accounts(
    channels: &[Channel],
    sink: &Sink,
    prefix: &str,
    count: usize,
) -> anyhow::Result<(Vec<Account>, usize)> {
    let before = sink.count();
    let accounts = register_many(channels, prefix, count, true).await?;
    sink.wait_for(before + count, DELIVERY_TIMEOUT).await?;
    let mut client = AuthServiceClient::new(channels[0].clone());
    let mut refused = 0;
    for mail in sink.mails_from(before) {
        let token = mail.link_token("verify-email?token=")?;
        for attempt in 1..=VERIFY_ATTEMPTS {
            match client
                .verify_email(VerifyEmailRequest {
                    token: token.clone(),
                })
                .await
            {
                Ok(_) => break,
                Err(status) if status.code() == Code::Internal && attempt < VERIFY_ATTEMPTS => {
                    refused += 1;
                    // Long enough for the write it collided with to commit.
                    tokio::time::sleep(VERIFY_RETRY_AFTER * attempt as u32).await;
                }
                Err(status) => return Err(status).context("VerifyEmail"),
            }
        }
    }
    Ok((accounts, refused))
}

async fn request_reset(channel: Channel, username_or_email: String) -> Result<(), String> {
    AuthServiceClient::new(channel)
        .request_password_reset(RequestPasswordResetRequest { username_or_email })
        .await
        .map(drop)
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}

/// ChangePassword from `current` to `new`; the new session's access token.
async fn change_password(
    channel: Channel,
    token: &str,
    current: &str,
    new: &str,
) -> Result<String, String> {
    let request = clients::with_bearer(
        ChangePasswordRequest {
            current_password: current.into(),
            new_password: new.into(),
            ..ChangePasswordRequest::default()
        },
        token,
    )
    .map_err(|error| error.to_string())?;
    AuthServiceClient::new(channel)
        .change_password(request)
        .await
        .map(|response| response.into_inner().access_token)
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}

/// Whether the load's call `n` names an account (else a name no account
/// has): half of the calls, in an order unrelated to `n`'s parity. The
/// load's calls are 2.5 ms apart, and tokio's timer rounds each start to
/// its millisecond: with even calls for accounts, every account's call
/// started on a millisecond and every other call half-way, and the timer's
/// rounding alone made the two kinds' latencies (counted from the
/// scheduled start) differ by half a millisecond.
fn names_an_account(n: u64) -> bool {
    // Fibonacci hashing's top bit.
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 63 == 1
}
