//! [`TelemetryGuard`]: flushes and shuts the pipeline down, within a bounded time, and says
//! what that lost.

use crate::diagnostics::{dropped_at, DropReason, Output, Signal};
use crate::error::{Error, Lost};
use crate::export::Exports;
use crate::logfile::FileSink;
use crate::state::{self, State};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// What only shutdown needs of the pipeline, beside the running state.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) file: Option<Arc<FileSink>>,
    pub(crate) logger_provider: Option<SdkLoggerProvider>,
    /// Kept alive with the pipeline (the export runtime lives here); at shutdown, what its
    /// queues still hold is counted.
    pub(crate) exports: Exports,
    pub(crate) shutdown_timeout: Duration,
}

/// What one OTLP part of the pipeline (`traces`, `metrics`, `logs`) said when it was shut down.
type Outcome = (&'static str, OTelSdkResult);

impl Pipeline {
    /// Flushes and closes every part at once, each on a thread of its own and bounded by
    /// `timeout`, so that one stuck part (a collector that never answers) cannot hold back
    /// another (the log file). Each OTLP part leaves what it said in `outcomes` as it ends.
    fn flush_and_close(&self, state: &State, timeout: Duration, outcomes: &Mutex<Vec<Outcome>>) {
        let done = |outcome: Outcome| crate::sync::lock(outcomes).push(outcome);
        // The file finishes a little before the timeout, so that what it could not write is
        // counted before shutdown reads the counters.
        let margin = (timeout / 10).min(Duration::from_millis(100));
        let file_deadline = Instant::now() + timeout.saturating_sub(margin);
        // The scope joins every part.
        std::thread::scope(|s| {
            if let Some(file) = &self.file {
                spawn_or_run(s, move || {
                    // Writes out every queued line it can by the deadline, and counts the rest.
                    file.close(file_deadline);
                });
            }
            if let Some(tp) = &state.tracer_provider {
                spawn_or_run(s, move || {
                    done(("traces", tp.shutdown_with_timeout(timeout)))
                });
            }
            if let Some(mp) = &state.meter_provider {
                spawn_or_run(s, move || {
                    done(("metrics", mp.shutdown_with_timeout(timeout)))
                });
            }
            if let Some(lp) = &self.logger_provider {
                spawn_or_run(s, move || done(("logs", lp.shutdown_with_timeout(timeout))));
            }
        })
    }

    /// The OTLP parts shutdown waits for.
    fn parts(&self, state: &State) -> Vec<&'static str> {
        let mut parts = Vec::new();
        if state.tracer_provider.is_some() {
            parts.push("traces");
        }
        if state.meter_provider.is_some() {
            parts.push("metrics");
        }
        if self.logger_provider.is_some() {
            parts.push("logs");
        }
        parts
    }
}

/// Runs `f` on a scoped thread, or here if no thread can be started. A panic in `f` is caught
/// (shutdown must not take the application down): that part then reports nothing.
fn spawn_or_run<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    f: impl FnOnce() + Send + 'scope,
) {
    // Shared, so that it can still run here when the thread does not start.
    let f = Arc::new(Mutex::new(Some(f)));
    let on_thread = Arc::clone(&f);
    let run = |f: &Mutex<Option<_>>| {
        if let Some(f) = crate::sync::lock(f).take() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        }
    };
    let spawned = std::thread::Builder::new()
        .name("unitel-shutdown".into())
        .spawn_scoped(s, move || run(&on_thread));
    if spawned.is_err() {
        run(&f);
    }
}

/// The drop counters of the outputs that deliver (OTLP, the log file), per signal and
/// reason. What is dropped before any output (a callback's panic in the final collection) or
/// in the Prometheus exposition is not shutdown's loss, and was said where it happened.
struct Counts(Vec<(Output, Signal, DropReason, u64)>);

impl Counts {
    fn now() -> Counts {
        let mut counts = Vec::new();
        for output in [Output::Otlp, Output::LogFile] {
            for signal in [Signal::Spans, Signal::Metrics, Signal::Logs] {
                for reason in DropReason::ALL {
                    counts.push((output, signal, reason, dropped_at(output, signal, reason)));
                }
            }
        }
        Counts(counts)
    }
}

/// Shuts `pipeline` down (`state` is already stopped), waiting at most its timeout, and
/// reports what was lost meanwhile: every drop counted during shutdown, and what the export
/// queues still hold when it ends.
fn shut_down(pipeline: &Arc<Pipeline>, state: &'static State) -> Result<(), Error> {
    let timeout = pipeline.shutdown_timeout;
    let before = Counts::now();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let (worker, left) = (Arc::clone(pipeline), Arc::clone(&outcomes));
    // On its own thread: whatever an exporter does, the caller waits at most `timeout`,
    // and a caller on a runtime thread never blocks the thread an exporter needs.
    let mut timed_out = match std::thread::Builder::new()
        .name("unitel-shutdown".into())
        .spawn(move || {
            worker.flush_and_close(state, timeout, &left);
            let _ = tx.send(());
        }) {
        Ok(_) => rx.recv_timeout(timeout).is_err(),
        Err(_) => {
            pipeline.flush_and_close(state, timeout, &outcomes);
            false
        }
    };
    let outcomes = std::mem::take(&mut *crate::sync::lock(&outcomes));
    let mut errors = Vec::new();
    for part in pipeline.parts(state) {
        match outcomes.iter().find(|(name, _)| *name == part) {
            Some((_, Ok(()))) => {}
            Some((_, Err(OTelSdkError::Timeout(_)))) | None => {
                timed_out = true;
                errors.push((part, format!("still flushing at the {timeout:?} timeout")));
            }
            Some((_, Err(err))) => errors.push((part, format!("failed to flush ({err})"))),
        }
    }
    // Whatever is still queued now will never be sent.
    pipeline.exports.count_still_queued();
    let after = Counts::now();
    let mut lost = Vec::new();
    for (&(output, signal, reason, was), &(_, _, _, is)) in before.0.iter().zip(&after.0) {
        if is > was {
            let cause = (output == Output::Otlp && reason == DropReason::ExportFailed)
                .then(|| pipeline.exports.last_failure(signal))
                .flatten();
            lost.push(Lost {
                signal: signal.otlp_name(),
                output: output.as_str(),
                reason: reason.as_str(),
                count: is - was,
                cause,
            });
        }
    }
    // A part that gave up at its deadline (the log file finishes a little early) timed out.
    timed_out |= lost
        .iter()
        .any(|l| l.reason == DropReason::ShutdownTimeout.as_str());
    // An SDK error for a signal whose losses are already listed adds nothing.
    errors.retain(|(signal, _)| !lost.iter().any(|l| l.signal == *signal));
    if lost.is_empty() && errors.is_empty() && !timed_out {
        return Ok(());
    }
    Err(Error::Shutdown {
        timeout,
        timed_out,
        lost,
        failures: errors,
    })
}

/// Flushes and shuts telemetry down when dropped (or on [`shutdown`](Self::shutdown) or
/// [`shutdown_async`](Self::shutdown_async)).
///
/// Shutdown is bounded by the configured timeout (default 5 s), runs on its own thread so it
/// cannot deadlock an async runtime, and never panics. What it could not deliver (still queued
/// at the timeout, failed to export, not written to the log file) is counted in
/// [`dropped_at`](crate::dropped_at) and named in the [`Error::Shutdown`] it returns. Dropping
/// the guard prints nothing, unless data was lost: then one line on standard error says what.
/// After shutdown, every recording call is a silent no-op.
///
/// Dropping the guard blocks the dropping thread for up to the timeout. In async code, await
/// [`shutdown_async`](Self::shutdown_async) instead: it does not block the runtime, and the
/// guard's drop afterwards does nothing.
#[must_use = "telemetry shuts down when the guard is dropped; keep it alive in main"]
#[derive(Debug)]
pub struct TelemetryGuard {
    pipeline: Arc<Pipeline>,
}

impl TelemetryGuard {
    pub(crate) fn new(pipeline: Pipeline) -> Self {
        TelemetryGuard {
            pipeline: Arc::new(pipeline),
        }
    }

    /// Where the Prometheus `/metrics` endpoint listens, when it is on (useful with port 0).
    pub fn prometheus_addr(&self) -> Option<std::net::SocketAddr> {
        state::installed()?.prometheus_addr
    }

    /// Flushes spans, metrics and logs and shuts the pipeline down, blocking the calling
    /// thread for at most the shutdown timeout. A second call returns
    /// [`Error::AlreadyShutDown`].
    ///
    /// # Errors
    /// [`Error::Shutdown`] when data was lost meanwhile (each signal named, with counts), the
    /// timeout ran out, or an exporter failed.
    pub fn shutdown(&self) -> Result<(), Error> {
        match state::installed() {
            Some(state) if state.stop() => shut_down(&self.pipeline, state),
            _ => Err(Error::AlreadyShutDown),
        }
    }

    /// [`shutdown`](Self::shutdown) for async code: the work runs on a thread of its own and
    /// the returned future completes when it is done, so the awaiting task's runtime (even a
    /// `current_thread` one) keeps running other tasks meanwhile. Needs no particular runtime.
    ///
    /// Shutdown starts at this call, whether or not the future is polled; the guard's drop
    /// afterwards does nothing. If the future is dropped before it completes and data was
    /// lost, one line on standard error says what.
    pub fn shutdown_async(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let slot = Arc::new(Mutex::new(Slot::default()));
        let state = match state::installed() {
            Some(state) if state.stop() => state,
            _ => {
                crate::sync::lock(&slot).result = Some(Err(Error::AlreadyShutDown));
                return Pending { slot };
            }
        };
        let pipeline = Arc::clone(&self.pipeline);
        let done = Arc::clone(&slot);
        let work = move || {
            let result = shut_down(&pipeline, state);
            let mut slot = crate::sync::lock(&done);
            if slot.abandoned {
                say_lost(&result);
                return;
            }
            slot.result = Some(result);
            if let Some(waker) = slot.waker.take() {
                drop(slot);
                waker.wake();
            }
        };
        // Only moved into the thread if it starts; otherwise run here.
        let work = Arc::new(Mutex::new(Some(work)));
        let on_thread = Arc::clone(&work);
        let spawned = std::thread::Builder::new()
            .name("unitel-shutdown".into())
            .spawn(move || {
                if let Some(work) = crate::sync::lock(&on_thread).take() {
                    work();
                }
            });
        if spawned.is_err() {
            if let Some(work) = crate::sync::lock(&work).take() {
                work();
            }
        }
        Pending { slot }
    }
}

/// Prints what shutdown lost, as the guard's drop does.
fn say_lost(result: &Result<(), Error>) {
    if let Err(err @ Error::Shutdown { .. }) = result {
        eprintln!("unitel: {err}");
    }
}

/// Where [`TelemetryGuard::shutdown_async`]'s thread leaves its result.
#[derive(Default)]
struct Slot {
    result: Option<Result<(), Error>>,
    waker: Option<Waker>,
    /// The future was dropped: the thread says what was lost itself.
    abandoned: bool,
}

/// The future of [`TelemetryGuard::shutdown_async`].
struct Pending {
    slot: Arc<Mutex<Slot>>,
}

impl Future for Pending {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = crate::sync::lock(&self.slot);
        match slot.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut slot = crate::sync::lock(&self.slot);
        match slot.result.take() {
            // Done, but never awaited: nobody else will say it.
            Some(result) => say_lost(&result),
            None => slot.abandoned = true,
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if state::installed().is_some_and(|s| !s.is_stopped()) {
            say_lost(&self.shutdown());
        }
    }
}
