//! The JSON log file's line sink: whole lines gathered into batches in one bounded queue, and
//! one writer thread that writes them to the file itself.
//!
//! Handing every line to a writer thread on its own costs an allocation, a queue operation and
//! often a wake-up of the thread — more than formatting the line. Lines are appended instead to
//! the batch being filled (a short lock and a copy); a batch goes to the writer when it grows
//! past [`BATCH_BYTES`], and the writer takes what is there every [`FLUSH_INTERVAL`]. A batch
//! only ever holds whole lines, so records never interleave.
//!
//! Nothing here blocks the application on the disk: every byte not yet written — the batch
//! being filled, the full batches and the one being written — counts against one bound,
//! [`MAX_PENDING_BYTES`]; past it, new lines are dropped and counted (`QueueFull`). The writer
//! sees every write error: the lines of a failed write are counted (`WriteFailed`). When the
//! file's path stops naming the open file (its directory or the file was deleted, or it was
//! renamed away), the writer recreates it. Closing waits for the writer until a deadline and
//! counts what is still unwritten then (`ShutdownTimeout`), even when a write never returns.

use super::rolling::{lines, Progress, RollingFile};
use crate::diagnostics::{count, drop_counted, report_once, DropReason, Output, Signal};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A batch is handed to the writer when it reaches this size.
const BATCH_BYTES: usize = 64 * 1024;
/// Room for a batch and the line that takes it past [`BATCH_BYTES`] (up to 64 KiB), so that
/// filling a batch never reallocates it.
const BATCH_CAPACITY: usize = 2 * BATCH_BYTES;
/// Lines wait at most this long before the writer takes them.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Past this many bytes not yet written, new lines are dropped (the writer is stuck or slower
/// than the application).
const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;
/// Emptied batches kept for reuse.
const SPARE_BATCHES: usize = 4;

/// The log file's line sink, shared by log records and span records.
#[derive(Debug)]
pub(crate) struct FileSink {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer: a full batch, or closing.
    wake: Condvar,
    /// Wakes `close`: the writer has written everything.
    done: Condvar,
    /// Lines of the batch being written that are not written yet.
    in_flight_lines: AtomicU64,
    /// `close` gave up at its deadline and counted what was left: the writer must stop, and
    /// recording calls are no-ops. Set under the queue's lock; read while writing too.
    abandoned: AtomicBool,
    /// The configured log file path (without a rotation's date), for messages.
    path: PathBuf,
}

#[derive(Debug, Default)]
struct Queue {
    filling: Vec<u8>,
    /// Lines in `filling`, counted as they come: `close` must count what is left at once
    /// when it gives up at its deadline, not scan up to 16 MiB then.
    filling_lines: u64,
    /// Full batches, with their line counts.
    full: VecDeque<(Vec<u8>, u64)>,
    spare: Vec<Vec<u8>>,
    /// Bytes not yet written: `filling`, `full` and the batch being written.
    bytes: usize,
    /// `close` has begun: the writer writes what is queued, then stops.
    closing: bool,
    /// The writer has written everything and stopped.
    finished: bool,
}

impl FileSink {
    /// Starts the writer thread for `file`, configured as `path`.
    pub(super) fn start(file: RollingFile, path: PathBuf) -> std::io::Result<Arc<FileSink>> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
            in_flight_lines: AtomicU64::new(0),
            abandoned: AtomicBool::new(false),
            path,
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("unitel-log-writer".into())
            .spawn(move || writer.run_writer(file))?;
        Ok(Arc::new(FileSink { shared }))
    }

    /// Appends one line (with its newline). Never blocks on the disk: past
    /// [`MAX_PENDING_BYTES`] not yet written, the line is dropped and counted.
    #[inline]
    pub(crate) fn write_line(&self, line: &[u8]) {
        let mut queue = crate::sync::lock(&self.shared.queue);
        if queue.finished || self.shared.abandoned.load(Ordering::Acquire) {
            // Shut down: recording calls are no-ops from here on.
            return;
        }
        if queue.bytes + line.len() > MAX_PENDING_BYTES {
            drop(queue);
            static REPORTED: AtomicBool = AtomicBool::new(false);
            drop_counted(
                Output::LogFile,
                Signal::Logs,
                DropReason::QueueFull,
                1,
                &REPORTED,
                &|| {
                    format!(
                        "the JSON log file {} is 16 MiB behind (the disk or the pipe's reader is \
                         slower than the application, or stuck); lines are being dropped",
                        self.shared.path.display()
                    )
                },
            );
            return;
        }
        if queue.filling.capacity() == 0 {
            queue.filling = queue
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(BATCH_CAPACITY));
        }
        queue.filling.extend_from_slice(line);
        queue.filling_lines += 1;
        queue.bytes += line.len();
        if queue.filling.len() >= BATCH_BYTES {
            let batch = std::mem::take(&mut queue.filling);
            let lines = std::mem::take(&mut queue.filling_lines);
            queue.full.push_back((batch, lines));
            drop(queue);
            self.shared.wake.notify_one();
        }
    }

    /// Lets the writer write everything queued, waiting for it until `deadline`. Lines still
    /// unwritten then (the disk or the pipe's reader is stuck) are counted as dropped,
    /// `ShutdownTimeout`, and the writer stops; this returns by the deadline even when a
    /// write never returns.
    pub(crate) fn close(&self, deadline: Instant) {
        let shared = &self.shared;
        let mut queue = crate::sync::lock(&shared.queue);
        queue.closing = true;
        shared.wake.notify_all();
        let abandoned = || shared.abandoned.load(Ordering::Acquire);
        while !queue.finished && !abandoned() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            if left.is_zero() {
                break;
            }
            queue = shared
                .done
                .wait_timeout(queue, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if queue.finished || abandoned() {
            return;
        }
        shared.abandoned.store(true, Ordering::Release);
        let queued = queue.filling_lines + queue.full.iter().map(|(_, n)| n).sum::<u64>();
        let lost = queued + shared.in_flight_lines.swap(0, Ordering::AcqRel);
        queue.filling = Vec::new();
        queue.filling_lines = 0;
        queue.full.clear();
        queue.bytes = 0;
        drop(queue);
        // Counted without a word: shutdown names it in its error, or in the guard's one line.
        count(
            Output::LogFile,
            Signal::Logs,
            DropReason::ShutdownTimeout,
            lost,
        );
    }
}

impl Shared {
    /// The writer thread: takes full batches as they come, and what is being filled every
    /// [`FLUSH_INTERVAL`] or when closing; stops when closing and everything is written.
    fn run_writer(&self, mut file: RollingFile) {
        let mut queue = crate::sync::lock(&self.queue);
        let mut waited = false;
        loop {
            if self.abandoned.load(Ordering::Acquire) {
                return;
            }
            let (batch, batch_lines) = match queue.full.pop_front() {
                Some(full) => full,
                None if !queue.filling.is_empty() && (waited || queue.closing) => (
                    std::mem::take(&mut queue.filling),
                    std::mem::take(&mut queue.filling_lines),
                ),
                None if queue.closing => {
                    queue.finished = true;
                    drop(queue);
                    self.done.notify_all();
                    return;
                }
                None => {
                    queue = self
                        .wake
                        .wait_timeout(queue, FLUSH_INTERVAL)
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|p| p.into_inner().0);
                    waited = true;
                    continue;
                }
            };
            waited = false;
            self.in_flight_lines.store(batch_lines, Ordering::Release);
            drop(queue);
            let result = file.write_batch(
                &batch,
                Progress {
                    unwritten_lines: &self.in_flight_lines,
                    abandoned: &self.abandoned,
                },
            );
            queue = crate::sync::lock(&self.queue);
            if self.abandoned.load(Ordering::Acquire) {
                // `close` counted this batch already.
                return;
            }
            self.in_flight_lines.store(0, Ordering::Release);
            queue.bytes = queue.bytes.saturating_sub(batch.len());
            let mut batch = batch;
            match result {
                Ok(reopened) => {
                    if reopened {
                        drop(queue);
                        self.say_reopened(&file);
                        queue = crate::sync::lock(&self.queue);
                    }
                }
                Err(failure) => {
                    let lost = lines(&batch[failure.unwritten_from.min(batch.len())..]);
                    drop(queue);
                    self.count_write_failure(&file, &failure.error, lost);
                    queue = crate::sync::lock(&self.queue);
                }
            }
            if queue.spare.len() < SPARE_BATCHES && batch.capacity() <= BATCH_CAPACITY {
                batch.clear();
                queue.spare.push(batch);
            }
        }
    }

    fn say_reopened(&self, file: &RollingFile) {
        let path = file.current_path();
        report_once(&format!("log file reopened {}", path.display()), &|| {
            format!(
                "the JSON log file {} was deleted or renamed away, or could not be opened; \
                 writing goes on in a new file at that path (its directory recreated when \
                 missing)",
                path.display()
            )
        });
    }

    fn count_write_failure(&self, file: &RollingFile, error: &std::io::Error, lost: u64) {
        static REPORTED: AtomicBool = AtomicBool::new(false);
        drop_counted(
            Output::LogFile,
            Signal::Logs,
            DropReason::WriteFailed,
            lost,
            &REPORTED,
            &|| {
                format!(
                    "cannot write the JSON log file {}: {error}; lines are being dropped",
                    file.current_path().display()
                )
            },
        );
    }
}
