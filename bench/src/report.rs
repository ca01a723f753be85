//! The figures of a run: a Markdown report (the tables of BENCHMARKS.md)
//! and an SVG plot of Verify and the no-op against concurrency.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use crate::ceilings::Argon2Implementation;
use crate::load::{Concurrency, Outcome};
use crate::memory::{AFTER_KIB, BurstMemory, CONSTANT_KIB};

/// The verified-token cache's default capacity (authd's
/// `--verified-token-cache`).
const CACHE_CAPACITY: f64 = 50_000.0;

/// One line of the main table.
pub struct Row {
    name: String,
    concurrency: Concurrency,
    throughput: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    errors: u64,
    first_error: Option<String>,
    comparison: Comparison,
}

/// What a row is measured against.
enum Comparison {
    /// Nothing: it is a ceiling itself.
    Ceiling,
    /// Nothing: it is what another row is compared with.
    Baseline,
    /// Another case or ceiling, its figure, and the ratio to reach if any.
    Against(String, f64, Option<f64>),
}

impl Row {
    fn new(name: &str, concurrency: Concurrency, outcome: &Outcome) -> Self {
        Self {
            name: name.into(),
            concurrency,
            throughput: outcome.throughput(),
            p50: outcome.millis(0.5),
            p99: outcome.millis(0.99),
            p999: outcome.millis(0.999),
            errors: outcome.errors,
            first_error: outcome.first_error.clone(),
            comparison: Comparison::Ceiling,
        }
    }

    /// A case measured against a ceiling, with the ratio it should reach.
    pub fn against(
        name: &str,
        concurrency: Concurrency,
        outcome: &Outcome,
        ceiling: &str,
        value: f64,
        target: f64,
    ) -> Self {
        Self {
            comparison: Comparison::Against(ceiling.into(), value, Some(target)),
            ..Self::new(name, concurrency, outcome)
        }
    }

    /// A case beside another, with no ratio to reach.
    pub fn beside(
        name: &str,
        concurrency: Concurrency,
        outcome: &Outcome,
        other: &str,
        value: f64,
    ) -> Self {
        Self {
            comparison: Comparison::Against(other.into(), value, None),
            ..Self::new(name, concurrency, outcome)
        }
    }

    /// A ceiling itself.
    pub fn ceiling(name: &str, concurrency: Concurrency, outcome: &Outcome) -> Self {
        Self::new(name, concurrency, outcome)
    }

    /// What other rows are compared with.
    pub fn baseline(name: &str, concurrency: Concurrency, outcome: &Outcome) -> Self {
        Self {
            comparison: Comparison::Baseline,
            ..Self::new(name, concurrency, outcome)
        }
    }
}

/// Login goodput under a flood, at least this share of its capacity...
const GOODPUT_TARGET: f64 = 0.8;
/// ...when offered this many times its capacity.
const GOODPUT_TARGET_FACTOR: u32 = 10;
/// The hash time of admitted calls, at most this many times its idle value.
const HASH_TIME_TARGET: f64 = 1.5;
/// Verify's p99 beside the flood.
const VERIFY_P99_TARGET_MS: f64 = 5.0;

/// Login's rate flat out, and the mean hash time inside authd then and
/// with one Login at a time.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    pub rate: f64,
    pub idle_hash_time: Duration,
    pub flat_out_hash_time: Duration,
}

/// Login offered at a multiple of its capacity, with Verify at 1,000/s
/// beside.
pub struct OverloadRow {
    /// Where the Logins come from.
    pub source: &'static str,
    pub factor: u32,
    /// Measured just before.
    pub capacity: Capacity,
    /// Logins started per second.
    pub offered: f64,
    /// Logins answered with a token within the measured window, per second.
    pub goodput: f64,
    pub served: Outcome,
    pub refused: Outcome,
    /// The mean hash time of the admitted calls.
    pub hash_time: Duration,
    /// CPU time authd and the bench (load generator) used per second.
    pub authd_cores: f64,
    pub bench_cores: f64,
    pub verify: Outcome,
}

pub struct SweepPoint {
    pub concurrency: Concurrency,
    pub noop: Outcome,
    pub verify: Outcome,
}

pub struct Report {
    concurrency: Concurrency,
    duration: Duration,
    quick: bool,
    pub rows: Vec<Row>,
    pub sweep: Vec<SweepPoint>,
    pub signature_verify: Duration,
    pub hash_rates: Vec<(Argon2Implementation, f64)>,
    pub argon2_agree: bool,
    pub login_vs_reference: f64,
    /// The mean time of one hash inside authd during the Login case.
    pub login_hash_time: Duration,
    pub verify_p99_vs_noop: f64,
    pub cache_hit_rate: f64,
    pub cache_entry_bytes: f64,
    pub distinct_tokens: usize,
    pub token_bytes: usize,
    pub idle_resident_kib: u64,
    /// Revocations in force, and resident memory with them.
    pub revoked_million: (usize, u64),
    /// Verify at 1,000/s, and the Login running meanwhile.
    pub verify_under_login: Option<(Outcome, Outcome)>,
    /// Verify at 1,000/s, and Refresh flat out beside it.
    pub verify_under_refresh: Option<(Outcome, Outcome)>,
    /// Login under a flood, by source and factor of its capacity.
    pub overload: Vec<OverloadRow>,
    pub cold_start: Duration,
    /// Resident memory at idle, at its peak during Register and Login, and
    /// 10 s after.
    pub hashing_memory: Option<BurstMemory>,
    /// CPU time per call in the proxy cases, by row name.
    cpu_per_call: Vec<(String, CpuPerCall)>,
    /// Lines said after the main table (e.g. cases skipped, and why).
    pub notes: Vec<String>,
    /// More rows of the "other figure" table: figure, measured, target.
    pub more_figures: Vec<(String, String, String)>,
    /// Properties (not timings) the run found broken, which fail it.
    pub broken: Vec<String>,
}

/// The CPU time each process spent per successful call of a case.
#[derive(Debug, Clone, Copy)]
pub struct CpuPerCall {
    pub authd: Duration,
    pub nginx: Option<Duration>,
    /// The load generator, and the app behind nginx.
    pub bench: Duration,
}

impl Report {
    pub fn new(concurrency: Concurrency, duration: Duration, quick: bool) -> Self {
        Self {
            concurrency,
            duration,
            quick,
            rows: Vec::new(),
            sweep: Vec::new(),
            signature_verify: Duration::ZERO,
            hash_rates: Vec::new(),
            argon2_agree: false,
            login_vs_reference: 0.0,
            login_hash_time: Duration::ZERO,
            verify_p99_vs_noop: 0.0,
            cache_hit_rate: 0.0,
            cache_entry_bytes: 0.0,
            distinct_tokens: 0,
            token_bytes: 0,
            idle_resident_kib: 0,
            revoked_million: (0, 0),
            verify_under_login: None,
            verify_under_refresh: None,
            overload: Vec::new(),
            cold_start: Duration::ZERO,
            hashing_memory: None,
            cpu_per_call: Vec::new(),
            notes: Vec::new(),
            more_figures: Vec::new(),
            broken: Vec::new(),
        }
    }

    /// A row, and the CPU time per call its case took.
    pub fn add_measured(&mut self, row: Row, cpu: CpuPerCall) {
        self.cpu_per_call.push((row.name.clone(), cpu));
        self.rows.push(row);
    }

    pub fn hash_rate(&self, implementation: Argon2Implementation) -> f64 {
        self.hash_rates
            .iter()
            .find(|(measured, _)| *measured == implementation)
            .map_or(0.0, |(_, rate)| *rate)
    }

    /// The first failed call of any case, if one failed.
    pub fn errors(&self) -> Option<String> {
        let rows = self
            .rows
            .iter()
            .filter(|row| row.errors > 0)
            .map(|row| (row.name.as_str(), row.errors, row.first_error.as_deref()));
        let others = [
            self.verify_under_login
                .as_ref()
                .map(|(verify, _)| ("Verify during Login", verify)),
            self.verify_under_login
                .as_ref()
                .map(|(_, login)| ("Login under Verify", login)),
            self.verify_under_refresh
                .as_ref()
                .map(|(verify, _)| ("Verify during Refresh", verify)),
            self.verify_under_refresh
                .as_ref()
                .map(|(_, refresh)| ("Refresh under Verify", refresh)),
        ]
        .into_iter()
        .flatten()
        .chain(self.overload.iter().flat_map(|row| {
            [
                ("Login under a flood", &row.served),
                ("Verify beside a Login flood", &row.verify),
            ]
        }))
        .chain(self.sweep.iter().flat_map(|point| {
            [
                ("sweep no-op", &point.noop),
                ("sweep Verify", &point.verify),
            ]
        }))
        .filter(|(_, outcome)| outcome.errors > 0)
        .map(|(name, outcome)| (name, outcome.errors, outcome.first_error.as_deref()));
        rows.chain(others)
            .map(|(name, errors, first)| {
                format!("{name}: {errors} failed, first: {}", first.unwrap_or("?"))
            })
            .reduce(|all, one| format!("{all}; {one}"))
    }

    pub fn write(&self, directory: &Path) -> anyhow::Result<()> {
        std::fs::write(directory.join("report.md"), self.markdown())?;
        if !self.sweep.is_empty() {
            self.plot(&directory.join("verify.svg"))?;
        }
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Machine: {}", machine());
        let _ = writeln!(
            out,
            "Run: {} s per case after {} s of warm-up, main concurrency {} (connections × calls in flight){}.\n",
            self.duration.as_secs_f64(),
            self.duration.as_secs_f64() / 5.0,
            self.concurrency,
            if self.quick {
                "; QUICK RUN, figures meaningless"
            } else {
                ""
            }
        );
        self.main_table(&mut out);
        for note in &self.notes {
            let _ = writeln!(out, "{note}\n");
        }
        self.cpu_table(&mut out);
        self.overload_table(&mut out);
        self.ceiling_table(&mut out);
        self.other_figures(&mut out);
        out
    }

    fn main_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "| Case | Concurrency | Calls/s | p50 ms | p99 ms | p99.9 ms | Errors | Compared with | Ratio | Target |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|---:|---|");
        for row in &self.rows {
            let (against, ratio, target) = match &row.comparison {
                Comparison::Against(name, value, target) => {
                    let ratio = row.throughput / value;
                    (
                        format!("{name} ({value:.0}/s)"),
                        format!("{ratio:.2}"),
                        target.map_or_else(String::new, |target| {
                            format!("≥ {target} {}", verdict(ratio >= target))
                        }),
                    )
                }
                Comparison::Ceiling => ("(ceiling)".into(), String::new(), String::new()),
                Comparison::Baseline => (String::new(), String::new(), String::new()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {against} | {ratio} | {target} |",
                row.name, row.concurrency, row.throughput, row.p50, row.p99, row.p999, row.errors
            );
        }
        out.push('\n');
    }

    fn cpu_table(&self, out: &mut String) {
        if self.cpu_per_call.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "| CPU per call (µs) | server (authd, or the bare tonic server) | nginx | bench (load generator, app) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        let micros = |time: Duration| format!("{:.1}", time.as_secs_f64() * 1e6);
        for (case, cpu) in &self.cpu_per_call {
            let _ = writeln!(
                out,
                "| {case} | {} | {} | {} |",
                micros(cpu.authd),
                cpu.nginx.map_or_else(String::new, micros),
                micros(cpu.bench)
            );
        }
        out.push('\n');
    }

    fn overload_table(&self, out: &mut String) {
        if self.overload.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "| Logins from | Offered | Offered/s | Goodput/s | ÷ C (C/s) | Refused, p99 ms | Served p50 / p99 ms | Hash ms: idle / flat out / flood | Flood ÷ idle | Verify p50 / p99 ms | Cores: authd / bench |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.overload {
            let goodput_ratio = row.goodput / row.capacity.rate;
            let goodput_target = if row.factor == GOODPUT_TARGET_FACTOR {
                format!(" {}", verdict(goodput_ratio >= GOODPUT_TARGET))
            } else {
                String::new()
            };
            let hash_ratio =
                row.hash_time.as_secs_f64() / row.capacity.idle_hash_time.as_secs_f64();
            let millis = |time: Duration| time.as_secs_f64() * 1000.0;
            let _ = writeln!(
                out,
                "| {} | {}× | {:.0} | {:.0} | {goodput_ratio:.2}{goodput_target} ({:.0}) | {}, {:.2} | {:.0} / {:.0} | {:.1} / {:.1} / {:.1} | {hash_ratio:.2} {} | {:.2} / {:.2} {} | {:.2} / {:.2} |",
                row.source,
                row.factor,
                row.offered,
                row.goodput,
                row.capacity.rate,
                row.refused.calls,
                row.refused.millis(0.99),
                row.served.millis(0.5),
                row.served.millis(0.99),
                millis(row.capacity.idle_hash_time),
                millis(row.capacity.flat_out_hash_time),
                millis(row.hash_time),
                verdict(hash_ratio <= HASH_TIME_TARGET),
                row.verify.millis(0.5),
                row.verify.millis(0.99),
                verdict(row.verify.millis(0.99) < VERIFY_P99_TARGET_MS),
                row.authd_cores,
                row.bench_cores,
            );
        }
        let _ = writeln!(
            out,
            "\nTargets: goodput ≥ {GOODPUT_TARGET} C at {GOODPUT_TARGET_FACTOR}×; the mean hash time of admitted calls ≤ {HASH_TIME_TARGET}× its idle value (one Login at a time); Verify at 1,000/s beside, p99 < {VERIFY_P99_TARGET_MS} ms.\n"
        );
    }

    fn ceiling_table(&self, out: &mut String) {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let crate_rate = self.hash_rate(Argon2Implementation::Crate);
        let reference_rate = self.hash_rate(Argon2Implementation::Reference);
        let engine_rate = self.hash_rate(Argon2Implementation::Engine);
        let _ = writeln!(out, "| Ceiling | Figure |");
        let _ = writeln!(out, "|---|---:|");
        let _ = writeln!(
            out,
            "| Ed25519 signature check, one thread | {:.1} µs ({:.0}/s on {cores} cores) |",
            self.signature_verify.as_secs_f64() * 1e6,
            cores as f64 / self.signature_verify.as_secs_f64()
        );
        for (implementation, rate) in &self.hash_rates {
            let _ = writeln!(
                out,
                "| argon2id hashes/s on {cores} threads: {} | {rate:.1} ({:.2}× the crate, {:.2}× libargon2) |",
                implementation.label(),
                rate / crate_rate,
                rate / reference_rate
            );
        }
        let _ = writeln!(
            out,
            "| The three implementations give the same hash | {} |",
            if self.argon2_agree { "yes" } else { "NO" }
        );
        let _ = writeln!(
            out,
            "| Login ÷ libargon2's rate, just before | {:.2} (≥ 0.95 {}) |",
            self.login_vs_reference,
            verdict(self.login_vs_reference >= 0.95)
        );
        let _ = writeln!(
            out,
            "| One hash inside authd during Login (mean); the same on an idle core | {:.1} ms; {:.1} ms |\n",
            self.login_hash_time.as_secs_f64() * 1000.0,
            cores as f64 / engine_rate * 1000.0
        );
    }

    fn other_figures(&self, out: &mut String) {
        let _ = writeln!(out, "| Other figure | Measured | Target |");
        let _ = writeln!(out, "|---|---:|---|");
        let _ = writeln!(
            out,
            "| Verify p99 ÷ no-op p99, tokens seen before, {} | {:.2} | ≤ 1.2 {} |",
            self.concurrency,
            self.verify_p99_vs_noop,
            verdict(self.verify_p99_vs_noop <= 1.2)
        );
        let _ = writeln!(
            out,
            "| Verified-token cache hit rate, tokens seen before | {:.1} % | |",
            self.cache_hit_rate * 100.0
        );
        let _ = writeln!(
            out,
            "| Verified-token cache: bytes per entry; memory at its cap of {CACHE_CAPACITY} | {:.0} B; {:.1} MiB | |",
            self.cache_entry_bytes,
            self.cache_entry_bytes * CACHE_CAPACITY / 1_048_576.0
        );
        if let Some((verify, login)) = &self.verify_under_login {
            let _ = writeln!(
                out,
                "| Verify at 1,000/s while Login runs flat out ({:.0} logins/s): p50 / p99 / p99.9 | {:.2} / {:.2} / {:.2} ms | p99 < 5 ms {} |",
                login.throughput(),
                verify.millis(0.5),
                verify.millis(0.99),
                verify.millis(0.999),
                verdict(verify.millis(0.99) < 5.0)
            );
        }
        if let Some((verify, refresh)) = &self.verify_under_refresh {
            let _ = writeln!(
                out,
                "| Verify at 1,000/s while Refresh runs flat out ({:.0} refreshes/s): p50 / p99 / p99.9 | {:.2} / {:.2} / {:.2} ms | p99 < 5 ms {} |",
                refresh.throughput(),
                verify.millis(0.5),
                verify.millis(0.99),
                verify.millis(0.999),
                verdict(verify.millis(0.99) < 5.0)
            );
        }
        let _ = writeln!(
            out,
            "| Access token size | {} B | < 1024 B {} |",
            self.token_bytes,
            verdict(self.token_bytes < 1024)
        );
        let (revoked, with_revoked) = self.revoked_million;
        let per_entry = (with_revoked.saturating_sub(self.idle_resident_kib) * 1024) as f64
            / revoked.max(1) as f64;
        let _ = writeln!(
            out,
            "| Resident memory: idle; with {revoked} revoked tokens (per entry) | {:.1} MiB; {:.1} MiB ({per_entry:.0} B) | |",
            self.idle_resident_kib as f64 / 1024.0,
            with_revoked as f64 / 1024.0
        );
        if let Some(memory) = &self.hashing_memory {
            let mib = |kib: u64| kib as f64 / 1024.0;
            let _ = writeln!(
                out,
                "| Resident memory, {} hash slots × {:.0} MiB: idle / peak during Register and Login / 10 s after | {:.1} / {:.1} / {:.1} MiB | peak ≤ idle + slots × memory + {:.0} MiB ({:.1}) {}; after ≤ idle + {:.0} MiB {} |",
                memory.slots,
                mib(memory.memory_kib),
                mib(memory.idle_kib),
                mib(memory.peak_kib),
                mib(memory.after_kib),
                mib(CONSTANT_KIB),
                mib(memory.bound_kib()),
                verdict(memory.peak_kib <= memory.bound_kib()),
                mib(AFTER_KIB),
                verdict(memory.after_kib <= memory.idle_kib + AFTER_KIB)
            );
        }
        let _ = writeln!(
            out,
            "| Cold start to SERVING, existing SQLite database (median of 5) | {:.0} ms | < 200 ms {} |",
            self.cold_start.as_secs_f64() * 1000.0,
            verdict(self.cold_start < Duration::from_millis(200))
        );
        let _ = writeln!(
            out,
            "| Distinct tokens prepared for the every-token-new case | {} | |",
            self.distinct_tokens
        );
        for (figure, measured, target) in &self.more_figures {
            let _ = writeln!(out, "| {figure} | {measured} | {target} |");
        }
    }

    /// Throughput and p99 of Verify and the no-op against concurrency.
    fn plot(&self, path: &Path) -> anyhow::Result<()> {
        let labels: Vec<String> = self
            .sweep
            .iter()
            .map(|point| point.concurrency.to_string())
            .collect();
        let root = SVGBackend::new(path, (1100, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(550);
        let series =
            |pick: fn(&SweepPoint) -> &Outcome, value: fn(&Outcome) -> f64| -> Vec<(usize, f64)> {
                self.sweep
                    .iter()
                    .enumerate()
                    .map(|(x, point)| (x, value(pick(point))))
                    .collect()
            };
        let charts = [
            (
                left,
                "Calls per second",
                Outcome::throughput as fn(&Outcome) -> f64,
            ),
            (right, "p99 latency (ms)", |outcome: &Outcome| {
                outcome.millis(0.99)
            }),
        ];
        for (area, title, value) in charts {
            let noop = series(|point| &point.noop, value);
            let verify = series(|point| &point.verify, value);
            let top = noop
                .iter()
                .chain(&verify)
                .map(|(_, y)| *y)
                .fold(0.0, f64::max)
                * 1.1;
            let mut chart = ChartBuilder::on(&area)
                .caption(title, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0..labels.len().saturating_sub(1), 0.0..top.max(1e-3))?;
            chart
                .configure_mesh()
                .x_labels(labels.len())
                .x_label_formatter(&|x| labels.get(*x).cloned().unwrap_or_default())
                .x_desc("connections × calls in flight")
                .draw()?;
            for (points, name, color) in [(noop, "no-op RPC", BLUE), (verify, "Verify", RED)] {
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                chart.draw_series(
                    points
                        .into_iter()
                        .map(|point| Circle::new(point, 3, color.filled())),
                )?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
        root.present()?;
        Ok(())
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "✅" } else { "❌" }
}

/// CPU model, cores, memory and kernel, from `/proc` (Linux).
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map_or("unknown CPU", |rest| {
            rest.trim_start_matches([' ', '\t', ':'])
        });
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    format!(
        "{model}, {} cores, {:.0} GiB, Linux {}",
        std::thread::available_parallelism().map_or(1, usize::from),
        memory_kib as f64 / 1_048_576.0,
        read("/proc/sys/kernel/osrelease").trim()
    )
}
