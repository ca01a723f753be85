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

use std::io::{self, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer: short enough that someone
/// watching the log sees no lag.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);

/// What the buffer holds before the line that would overflow it writes it
/// out: several times what gathers in a [`FLUSH_INTERVAL`] at full speed
/// (about 40,000 lines a second of 150 bytes).
const BUFFER_BYTES: usize = 256 * 1024;

/// The writer the log layer formats into: each line is one `write_all`.
#[derive(Debug, Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Lines not written yet, in order.
    lines: Mutex<Vec<u8>>,
    /// Held while a batch is written, and taken before `lines` is let go
    /// (hand over hand): batches reach stderr in the order they were taken,
    /// and lines are copied in while a batch is written.
    writing: Mutex<()>,
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
            shared: Arc::new(Shared {
                lines: Mutex::new(Vec::with_capacity(BUFFER_BYTES)),
                writing: Mutex::new(()),
            }),
        };
        let (stop, stopped) = mpsc::channel();
        let shared = Arc::clone(&writer.shared);
        let flusher = std::thread::Builder::new()
            .name("authd-log".into())
            .spawn(move || {
                // Swapped with the shared buffer, so both keep their capacity.
                let mut batch = Vec::with_capacity(BUFFER_BYTES);
                loop {
                    let stopping = match stopped.recv_timeout(FLUSH_INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    shared.write_out(shared.lines(), &mut batch);
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
}

impl Shared {
    fn lines(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding a lock leaves whole lines behind at worst.
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the buffered lines (swapping `batch` in) and writes them to
    /// stderr, after any batch taken before.
    fn write_out(&self, mut lines: MutexGuard<'_, Vec<u8>>, batch: &mut Vec<u8>) {
        if lines.is_empty() {
            return;
        }
        std::mem::swap(&mut *lines, batch);
        let writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        drop(lines);
        // Nowhere to report a failed write to stderr.
        let _ = io::stderr().lock().write_all(batch);
        drop(writing);
        batch.clear();
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
        self.write_all(line)?;
        Ok(line.len())
    }

    fn write_all(&mut self, line: &[u8]) -> io::Result<()> {
        let mut lines = self.shared.lines();
        if lines.len() + line.len() > BUFFER_BYTES {
            // Full: this thread writes the batch out, and waits for stderr
            // as a slow reader of the log makes it.
            let mut batch = Vec::with_capacity(BUFFER_BYTES);
            self.shared.write_out(lines, &mut batch);
            lines = self.shared.lines();
        }
        lines.extend_from_slice(line);
        Ok(())
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
