//! The JSON log file: whole lines gathered into batches in front of tracing-appender's
//! non-blocking writer.
//!
//! Handing every line to the non-blocking writer on its own costs an allocation, a channel
//! message and often a futex wake of the writer thread — more than formatting the line. Lines are
//! appended instead to a shared buffer (a short lock and a copy), and the buffer is handed over
//! as one message when it grows past [`BATCH_BYTES`] or, from a small flusher thread, every
//! [`FLUSH_INTERVAL`]. A batch only ever holds whole lines, so records never interleave.
//! Nothing here blocks on the disk: when the writer falls behind by [`MAX_PENDING_BYTES`], lines
//! are dropped and counted.

use crate::diagnostics::{drop_counted, DropReason, Output, Signal};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, WorkerGuard};

/// A batch is handed to the writer when it reaches this size.
const BATCH_BYTES: usize = 64 * 1024;
/// Lines wait at most this long before the flusher hands them over.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Past this many bytes waiting, new lines are dropped (the writer is stuck or the disk is full).
const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;

/// The log file's line sink, shared by log records and span records.
#[derive(Debug)]
pub(crate) struct FileSink {
    shared: Arc<Shared>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Vec<u8>>,
    wake: Condvar,
    closed: AtomicBool,
    writer: Mutex<Option<(NonBlocking, WorkerGuard)>>,
    errors: ErrorCounter,
}

impl FileSink {
    pub(crate) fn new(writer: NonBlocking, guard: WorkerGuard) -> Arc<FileSink> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::with_capacity(BATCH_BYTES)),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            errors: writer.error_counter(),
            writer: Mutex::new(Some((writer, guard))),
        });
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("unitel-log-flush".into())
                .spawn(move || shared.run_flusher())
                .ok()
        };
        Arc::new(FileSink {
            shared,
            flusher: Mutex::new(flusher),
        })
    }

    /// Appends one line (with its newline).
    #[inline]
    pub(crate) fn write_line(&self, line: &[u8]) {
        let mut pending = crate::sync::lock(&self.shared.pending);
        if pending.len() + line.len() > MAX_PENDING_BYTES {
            drop(pending);
            static REPORTED: AtomicBool = AtomicBool::new(false);
            drop_counted(
                Output::LogFile,
                Signal::Logs,
                DropReason::QueueFull,
                1,
                &REPORTED,
                &|| "the JSON log file writer is behind by 16 MiB; lines are being dropped".into(),
            );
            return;
        }
        pending.extend_from_slice(line);
        if pending.len() >= BATCH_BYTES {
            let batch = std::mem::replace(&mut *pending, Vec::with_capacity(BATCH_BYTES));
            drop(pending);
            self.shared.hand_over(batch);
        }
    }

    /// Hands over what is pending, stops the flusher and lets the writer finish (bounded by
    /// tracing-appender's own shutdown timeout).
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(flusher) = crate::sync::lock(&self.flusher).take() {
            let _ = flusher.join();
        }
        self.shared.flush();
        drop(crate::sync::lock(&self.shared.writer).take());
    }
}

impl Shared {
    fn run_flusher(&self) {
        let mut pending = crate::sync::lock(&self.pending);
        while !self.closed.load(Ordering::Acquire) {
            pending = self
                .wake
                .wait_timeout(pending, FLUSH_INTERVAL)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
            if !pending.is_empty() {
                let batch = std::mem::take(&mut *pending);
                drop(pending);
                self.hand_over(batch);
                pending = crate::sync::lock(&self.pending);
            }
        }
    }

    fn flush(&self) {
        let batch = std::mem::take(&mut *crate::sync::lock(&self.pending));
        if !batch.is_empty() {
            self.hand_over(batch);
        }
    }

    /// Queues `batch` on the non-blocking writer. If its queue is full it drops the whole
    /// message; every line in it is then counted as dropped, like the lines refused above.
    fn hand_over(&self, batch: Vec<u8>) {
        if let Some((writer, _)) = crate::sync::lock(&self.writer).as_mut() {
            let refused_before = self.errors.dropped_lines();
            let _ = writer.write_all(&batch);
            if self.errors.dropped_lines() != refused_before {
                static REPORTED: AtomicBool = AtomicBool::new(false);
                let lines = batch.iter().filter(|&&b| b == b'\n').count() as u64;
                drop_counted(
                    Output::LogFile,
                    Signal::Logs,
                    DropReason::QueueFull,
                    lines,
                    &REPORTED,
                    &|| {
                        "the JSON log file's writer queue is full (the disk is slower than the application); lines are being dropped".into()
                    },
                );
            }
        }
    }
}
