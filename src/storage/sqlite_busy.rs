//! How a SQLite connection waits for the write lock another one holds.
//!
//! SQLite's own busy handler (what sqlx's `busy_timeout` installs) sleeps
//! 1, 2, 5, 10, 15, 20, 25 … 100 ms between tries. authd's write
//! transactions hold the lock for well under a millisecond, so a writer
//! that found it taken slept many times longer than it had to wait, and
//! concurrent sign-ins were bound by those sleeps (and their p99 by the
//! 25–100 ms ones), not by the CPU. This handler tries again after 20 µs,
//! doubling up to 1 ms, and gives up after the same 5 seconds sqlx's
//! default gave. SQLite offers no way to be woken when the lock is free
//! (`sqlite3_unlock_notify` is for shared-cache mode only), hence a poll.

use std::ffi::{c_int, c_void};
use std::time::Duration;

use sea_orm::sqlx;
use sqlx::sqlite::SqliteConnection;

/// How long a writer waits for the lock in all before the statement fails
/// with "database is locked".
const GIVE_UP_AFTER: Duration = Duration::from_secs(5);
const FIRST_PAUSE: Duration = Duration::from_micros(20);
const LONGEST_PAUSE: Duration = Duration::from_millis(1);

/// Replaces the connection's busy handler with [`retry_soon`]. For the
/// pool's `after_connect`.
pub(super) async fn install(connection: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    // SAFETY: the handle is locked, so no statement runs on the connection
    // while its handler is replaced; the handler is a plain function that
    // reads no user data (the pointer passed is null) and cannot unwind.
    let status = unsafe {
        libsqlite3_sys::sqlite3_busy_handler(
            handle.as_raw_handle().as_ptr(),
            Some(retry_soon),
            std::ptr::null_mut(),
        )
    };
    if status == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(
            format!("cannot set SQLite's busy handler (code {status})").into(),
        ))
    }
}

/// Called by SQLite, on the connection's own worker thread, each time the
/// lock it wants is taken; `tries` counts the calls for this one wait.
/// Nonzero means "try again", zero "give up".
extern "C" fn retry_soon(_: *mut c_void, tries: c_int) -> c_int {
    match pause_before_try(u32::try_from(tries).unwrap_or(u32::MAX)) {
        Some(pause) => {
            std::thread::sleep(pause);
            1
        }
        None => 0,
    }
}

/// The pause before the next try, after `tries` failed ones, or none once
/// the pauses so far add up to [`GIVE_UP_AFTER`].
fn pause_before_try(tries: u32) -> Option<Duration> {
    let pause = |try_number: u32| {
        FIRST_PAUSE
            .saturating_mul(1 << try_number.min(16))
            .min(LONGEST_PAUSE)
    };
    // The doubling reaches the longest pause within 6 tries; past those
    // every pause is the longest, so the sum so far is closed-form.
    let doubling = (0..tries.min(6)).map(pause).sum::<Duration>();
    let waited = doubling + LONGEST_PAUSE.saturating_mul(tries.saturating_sub(6));
    (waited < GIVE_UP_AFTER).then(|| pause(tries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pauses_start_short_double_and_stop_at_the_longest() {
        let first: Vec<_> = (0..8)
            .map(|tries| pause_before_try(tries).unwrap())
            .collect();
        let micros: Vec<_> = first.iter().map(Duration::as_micros).collect();
        assert_eq!(micros, [20, 40, 80, 160, 320, 640, 1000, 1000]);
    }

    #[test]
    fn a_writer_gives_up_once_it_has_waited_five_seconds_in_all() {
        let mut waited = Duration::ZERO;
        let mut tries = 0;
        while let Some(pause) = pause_before_try(tries) {
            waited += pause;
            tries += 1;
        }
        assert!(waited >= GIVE_UP_AFTER, "gave up after {waited:?}");
        assert!(waited < GIVE_UP_AFTER + LONGEST_PAUSE, "waited {waited:?}");
        assert_eq!(pause_before_try(u32::MAX), None);
    }
}
