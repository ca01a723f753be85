//! Log lines to stderr, written in batches.
//!
//! Hand-rolled because the usual writer, `tracing-appender`'s non-blocking
//! one, costs what this avoids: it hands every line to its thread through a
//! channel (an allocation, and a wake-up of the thread whenever it had
//! caught up), and writes each line with a system call of its own. With a
//! line per request that was one `write`, half a `futex` and half a
//! `sched_yield` per request, a fifth of a no-op's time on two cores
//! (BENCHMARKS.md, "The server stack"). Here a line is copied into one
//! shared buffer under a lock; a thread of its own writes what has gathered
//! every [`FLUSH_INTERVAL`], and a line that finds the buffer full writes it
//! out itself, so lines wait, but are never dropped.

use std::io::{self, BufWriter, Stderr, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer: short enough that someone
/// watching the log sees no lag.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);

/// What the buffer holds before the line that fills it writes it out.
const BUFFER_BYTES: usize = 256 * 1024;

/// The writer the log layer formats into: each line is one `write_all`.
#[derive(Debug, Clone)]
pub struct BatchedStderr {
    buffer: Arc<Mutex<BufWriter<Stderr>>>,
}

/// Writes what is still buffered, and stops the flushing thread, when
/// dropped.
#[derive(Debug)]
pub struct FlushGuard {
    stop: Option<mpsc::Sender<()>>,
    flusher: Option<JoinHandle<()>>,
}

impl BatchedStderr {
    /// The writer, and the guard whose drop writes the last lines. Fails
    /// only if the flushing thread cannot start.
    pub fn start() -> io::Result<(Self, FlushGuard)> {
        let writer = Self {
            buffer: Arc::new(Mutex::new(BufWriter::with_capacity(
                BUFFER_BYTES,
                io::stderr(),
            ))),
        };
        let (stop, stopped) = mpsc::channel();
        let flushing = writer.clone();
        let flusher = std::thread::Builder::new()
            .name("authd-log".into())
            .spawn(move || {
                loop {
                    let stopping = match stopped.recv_timeout(FLUSH_INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    // Nowhere to report a failed write to stderr.
                    let _ = flushing.lock().flush();
                    if stopping {
                        break;
                    }
                }
            })?;
        let guard = FlushGuard {
            stop: Some(stop),
            flusher: Some(flusher),
        };
        Ok((writer, guard))
    }

    fn lock(&self) -> MutexGuard<'_, BufWriter<Stderr>> {
        // A panic while holding the lock leaves whole lines behind at worst.
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

impl Write for &BatchedStderr {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.lock().write(line)
    }

    fn write_all(&mut self, line: &[u8]) -> io::Result<()> {
        self.lock().write_all(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        // The flushing thread's job: a flush per line would undo the batching.
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = &'a BatchedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}
