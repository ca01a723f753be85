//! authd's resident memory around bursts of hashes, from `/proc` (Linux):
//! at idle, at its peak during Register and Login flat out, and 10 s after.

use anyhow::Context as _;

/// What the stated bound allows beyond idle + slots × argon2 memory
/// (README, "Hashing"; `deploy/kubernetes/authd.yaml` follows from it).
pub const CONSTANT_KIB: u64 = 16 * 1024;
/// How close to idle memory must come back after a burst: what is left is
/// the small allocations of requests that glibc's per-thread arenas keep
/// (about half a MiB for each thread that served), not argon2's.
pub const AFTER_KIB: u64 = 8 * 1024;

/// Resident memory around the hashing cases.
pub struct BurstMemory {
    /// Hashes authd computes at once (its default: one per CPU).
    pub slots: u64,
    pub memory_kib: u64,
    pub idle_kib: u64,
    pub peak_kib: u64,
    pub after_kib: u64,
}

impl BurstMemory {
    /// idle + slots × argon2 memory + [`CONSTANT_KIB`].
    pub fn bound_kib(&self) -> u64 {
        self.idle_kib + self.slots * self.memory_kib + CONSTANT_KIB
    }
}

/// A field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Sets the peak (`VmHWM`) back to the present resident size, so that it
/// reads the peak of what follows alone.
pub fn reset_peak(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("clear_refs")
}
