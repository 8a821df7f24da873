//! [`TelemetryGuard`]: flushes and shuts the pipeline down, within a bounded time, and says
//! what that lost.

use crate::diagnostics::{dropped_at, DropReason, Output, Signal};
use crate::error::{Error, Lost, ShutdownFailure};
use crate::export::Exports;
use crate::logfile::FileSink;
use crate::state::{self, State};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
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

/// A provider that flushes and closes its exporters: one OTLP part of the pipeline.
trait Part: Sync {
    fn close(&self, timeout: Duration) -> OTelSdkResult;
}

impl Part for SdkTracerProvider {
    fn close(&self, timeout: Duration) -> OTelSdkResult {
        self.shutdown_with_timeout(timeout)
    }
}

impl Part for SdkMeterProvider {
    fn close(&self, timeout: Duration) -> OTelSdkResult {
        self.shutdown_with_timeout(timeout)
    }
}

impl Part for SdkLoggerProvider {
    fn close(&self, timeout: Duration) -> OTelSdkResult {
        self.shutdown_with_timeout(timeout)
    }
}

/// What each part said when it was shut down, by signal: `None` while it has not finished.
type Outcomes = Mutex<Vec<(Signal, Option<OTelSdkResult>)>>;

impl Pipeline {
    /// The parts shutdown closes and waits for, by signal.
    fn parts<'a>(&'a self, state: &'a State) -> Vec<(Signal, &'a dyn Part)> {
        let parts: [(Signal, Option<&dyn Part>); 3] = [
            (
                Signal::Spans,
                state.tracer_provider.as_ref().map(|p| p as _),
            ),
            (
                Signal::Metrics,
                state.meter_provider.as_ref().map(|p| p as _),
            ),
            (Signal::Logs, self.logger_provider.as_ref().map(|p| p as _)),
        ];
        parts
            .into_iter()
            .filter_map(|(signal, part)| Some((signal, part?)))
            .collect()
    }

    /// One unfinished outcome per part, for [`flush_and_close`](Self::flush_and_close) to fill.
    fn outcomes(&self, state: &State) -> Outcomes {
        Mutex::new(
            self.parts(state)
                .into_iter()
                .map(|(signal, _)| (signal, None))
                .collect(),
        )
    }

    /// Flushes and closes every part at once, each on a thread of its own and bounded by
    /// `timeout`, so that one stuck part (a collector that never answers) cannot hold back
    /// another (the log file). Each part leaves what it said in `outcomes` as it ends; one that
    /// panics says so.
    fn flush_and_close(&self, state: &State, timeout: Duration, outcomes: &Outcomes) {
        // The file finishes a little before the timeout, so that what it could not write is
        // counted before shutdown reads the counters.
        let margin = (timeout / 10).min(Duration::from_millis(100));
        let file_deadline = Instant::now() + timeout.saturating_sub(margin);
        // The scope joins every part.
        std::thread::scope(|s| {
            let spawn = |builder: std::thread::Builder, run| builder.spawn_scoped(s, run).map(drop);
            if let Some(file) = &self.file {
                // Writes out every queued line it can by the deadline, and counts the rest.
                on_thread_or_here(move || file.close(file_deadline), spawn);
            }
            for (signal, part) in self.parts(state) {
                let close = move || {
                    let said = catch_unwind(AssertUnwindSafe(|| part.close(timeout)))
                        .unwrap_or_else(|_| {
                            Err(OTelSdkError::InternalFailure(
                                "the exporter panicked while shutting down".into(),
                            ))
                        });
                    let mut outcomes = crate::sync::lock(outcomes);
                    if let Some((_, outcome)) = outcomes.iter_mut().find(|(s, _)| *s == signal) {
                        *outcome = Some(said);
                    }
                };
                on_thread_or_here(close, spawn);
            }
        })
    }
}

/// Runs `f` on a `unitel-shutdown` thread that `spawn` starts (scoped or not), or here if no
/// thread can be started: `f` waits in a shared slot until one of the two takes it. A panic in
/// `f` is caught: shutdown must not take the application down.
fn on_thread_or_here<'f>(
    f: impl FnOnce() + Send + 'f,
    spawn: impl FnOnce(std::thread::Builder, Box<dyn FnOnce() + Send + 'f>) -> std::io::Result<()>,
) {
    fn take_and_run(slot: &Mutex<Option<impl FnOnce()>>) {
        let f = crate::sync::lock(slot).take();
        if let Some(f) = f {
            let _ = catch_unwind(AssertUnwindSafe(f));
        }
    }
    let slot = Arc::new(Mutex::new(Some(f)));
    let on_thread = Arc::clone(&slot);
    let builder = std::thread::Builder::new().name("unitel-shutdown".into());
    if spawn(builder, Box::new(move || take_and_run(&on_thread))).is_err() {
        take_and_run(&slot);
    }
}

/// The drop counters of the outputs that deliver (OTLP, the log file), for every signal and
/// reason, in the order of [`Counts::slots`]. What is dropped before any output (a callback's
/// panic in the final collection) or in the Prometheus exposition is not shutdown's loss, and
/// was said where it happened.
struct Counts(Vec<u64>);

impl Counts {
    /// Every counter read, in a fixed order.
    fn slots() -> impl Iterator<Item = (Output, Signal, DropReason)> {
        [Output::Otlp, Output::LogFile]
            .into_iter()
            .flat_map(|output| {
                [Signal::Spans, Signal::Metrics, Signal::Logs]
                    .into_iter()
                    .flat_map(move |signal| {
                        DropReason::ALL
                            .into_iter()
                            .map(move |reason| (output, signal, reason))
                    })
            })
    }

    fn now() -> Counts {
        Counts(
            Counts::slots()
                .map(|(output, signal, reason)| dropped_at(output, signal, reason))
                .collect(),
        )
    }
}

/// Shuts `pipeline` down (`state` is already stopped), waiting at most its timeout, and
/// reports what was lost meanwhile: every drop counted during shutdown, and what the export
/// queues still hold when it ends.
fn shut_down(pipeline: &Arc<Pipeline>, state: &'static State) -> Result<(), Error> {
    let timeout = pipeline.shutdown_timeout;
    let before = Counts::now();
    let outcomes = Arc::new(pipeline.outcomes(state));
    let (tx, rx) = std::sync::mpsc::channel();
    let (worker, left) = (Arc::clone(pipeline), Arc::clone(&outcomes));
    // On its own thread: whatever an exporter does, the caller waits at most `timeout`,
    // and a caller on a runtime thread never blocks the thread an exporter needs. Run here
    // when no thread starts, it has sent before the wait below.
    on_thread_or_here(
        move || {
            worker.flush_and_close(state, timeout, &left);
            let _ = tx.send(());
        },
        |builder, run| builder.spawn(run).map(drop),
    );
    let mut timed_out = rx.recv_timeout(timeout).is_err();
    let mut failures = Vec::new();
    for (signal, outcome) in crate::sync::lock(&outcomes).iter_mut() {
        match outcome.take() {
            Some(Ok(())) => {}
            Some(Err(OTelSdkError::Timeout(_))) | None => {
                timed_out = true;
                failures.push((*signal, ShutdownFailure::StillFlushing));
            }
            Some(Err(err)) => failures.push((*signal, ShutdownFailure::Failed(err))),
        }
    }
    // Whatever is still queued now will never be sent.
    pipeline.exports.count_still_queued();
    let after = Counts::now();
    let mut lost = Vec::new();
    for ((output, signal, reason), (&was, &is)) in
        Counts::slots().zip(before.0.iter().zip(&after.0))
    {
        if is > was {
            let cause = (output == Output::Otlp && reason == DropReason::ExportFailed)
                .then(|| pipeline.exports.last_failure(signal))
                .flatten();
            lost.push(Lost {
                signal,
                output,
                reason,
                count: is - was,
                cause,
            });
        }
    }
    // A part that gave up at its deadline (the log file finishes a little early) timed out.
    timed_out |= lost.iter().any(|l| l.reason == DropReason::ShutdownTimeout);
    // An SDK error for a signal whose losses are already listed adds nothing.
    failures.retain(|(signal, _)| !lost.iter().any(|l| l.signal == *signal));
    if lost.is_empty() && failures.is_empty() && !timed_out {
        return Ok(());
    }
    Err(Error::Shutdown {
        timeout,
        timed_out,
        lost,
        failures,
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
///
/// Shut down explicitly to learn what could not be delivered:
///
/// ```
/// use unitel::{Error, TelemetryConfig};
///
/// let guard = unitel::configure_telemetry(TelemetryConfig::from_env())?;
/// // ... the batch job runs ...
/// match guard.shutdown() {
///     Ok(()) => {}
///     Err(Error::Shutdown { lost, .. }) => {
///         for lost in &lost {
///             eprintln!("telemetry lost {} {} ({:?})", lost.count, lost.signal.as_str(), lost.reason);
///         }
///     }
///     Err(other) => eprintln!("telemetry: {other}"),
/// }
/// unitel::get_telemetry("billing").log_info("not recorded"); // after shutdown: a no-op
/// # assert!(matches!(guard.shutdown(), Err(Error::AlreadyShutDown)));
/// # Ok::<(), unitel::Error>(())
/// ```
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
    ///
    /// ```
    /// # async fn serve() {}
    /// #[tokio::main]
    /// async fn main() -> Result<(), unitel::Error> {
    ///     let guard = unitel::configure_telemetry(unitel::TelemetryConfig::from_env())?;
    ///     // axum::serve(listener, app).with_graceful_shutdown(unitel::shutdown_signal()).await
    ///     serve().await;
    ///     guard.shutdown_async().await // flushes without blocking the runtime's threads
    /// }
    /// ```
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
        on_thread_or_here(work, |builder, run| builder.spawn(run).map(drop));
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
