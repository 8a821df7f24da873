//! Exporting without the application's runtime, and counting what is dropped.
//!
//! The SDK exports from its own threads (batch span and log processors, the periodic metric
//! reader) by polling the exporter's future with a plain executor. tonic needs a tokio reactor
//! and the async reqwest client panics with "no reactor" there, so every OTLP exporter is wrapped
//! in [`OnRuntime`], whose exports run on unitel's own small tokio runtime: the application's
//! runtime — `current_thread`, `multi_thread`, or none — is never used or blocked. The metric
//! exporter is driven there to completion; span and log batches are handed to it by
//! [`Pipelined`] without waiting for the collector, several at once: each batch is first made
//! into what is sent ([`TakesSpans`], [`TakesLogs`]: the encoded request body for
//! http/protobuf, the records themselves for opentelemetry-otlp's exporters) while the batch
//! processor still holds it.
//!
//! [`Admission`] sits in front of a batch processor and keeps its queue from overflowing, so
//! every span or log record that cannot be queued is dropped *and counted* (the SDK's own drop
//! counts are private).

use crate::diagnostics::{drop_counted, DropReason, Output, Signal};
use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// unitel's own runtime for exporter I/O: one worker thread, named `unitel-export`, on which
/// telemetry is suppressed (nothing the exporters' libraries log or trace is exported again).
#[derive(Debug)]
pub(crate) struct ExportRuntime {
    runtime: tokio::runtime::Runtime,
    /// Per signal, why its last export failed (for the shutdown error).
    failures: [Mutex<Option<String>>; 3],
}

impl ExportRuntime {
    pub(crate) fn new() -> std::io::Result<Arc<Self>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("unitel-export")
            .enable_all()
            .on_thread_start(|| {
                // For the life of the thread: spans and logs made here are not exported.
                std::mem::forget(Context::enter_telemetry_suppressed_scope());
            })
            .build()?;
        Ok(Arc::new(ExportRuntime {
            runtime,
            failures: Default::default(),
        }))
    }

    /// Why the last export of `signal` failed, if one did.
    pub(crate) fn last_failure(&self, signal: Signal) -> Option<String> {
        crate::sync::lock(&self.failures[signal as usize]).clone()
    }

    /// Runs `f` with the runtime's context entered (building a tonic channel needs it).
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.runtime.enter();
        f()
    }

    /// Drives an export to completion on this runtime's reactor, from an SDK thread. A panic
    /// in the exporter becomes an error: telemetry never takes the application down.
    pub(crate) fn run<F>(&self, fut: F) -> OTelSdkResult
    where
        F: Future<Output = OTelSdkResult> + Send,
    {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        let panicked = || {
            Err(OTelSdkError::InternalFailure(
                "the exporter panicked".into(),
            ))
        };
        let _suppressed = Context::enter_telemetry_suppressed_scope();
        if tokio::runtime::Handle::try_current().is_ok() {
            // Called from inside some tokio runtime (a flush from application code): blocking
            // that thread on another runtime would panic, so wait on a plain thread instead.
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _suppressed = Context::enter_telemetry_suppressed_scope();
                    self.runtime.block_on(fut)
                })
                .join()
                .unwrap_or_else(|_| panicked())
            })
        } else {
            catch_unwind(AssertUnwindSafe(|| self.runtime.block_on(fut)))
                .unwrap_or_else(|_| panicked())
        }
    }
}

/// An exporter whose I/O runs on the [`ExportRuntime`].
#[derive(Debug)]
pub(crate) struct OnRuntime<E> {
    pub(crate) inner: E,
    pub(crate) runtime: Arc<ExportRuntime>,
    /// The admission counter to release when a batch is done.
    pub(crate) in_flight: Option<Arc<AtomicUsize>>,
    /// `OTEL_BSP_EXPORT_TIMEOUT` and friends: one export may take at most this long.
    pub(crate) timeout: Option<Duration>,
    /// The transport's account of the last failure, when the exporter's own error is vaguer.
    pub(crate) last_error: Option<Arc<super::transport::LastError>>,
    /// Whether the endpoint is reached over TLS (for the failure's explanation).
    pub(crate) tls: bool,
}

/// Items of a batch the collector took but rejected (OTLP's partial success), and why.
#[derive(Debug)]
pub(crate) struct Rejected {
    pub(crate) items: u64,
    pub(crate) why: String,
}

/// How a sent batch ended: delivered (perhaps with some items rejected), or failed.
pub(crate) type Delivery = Result<Option<Rejected>, OTelSdkError>;

impl<E> OnRuntime<E> {
    /// Releases the batch's places in the queue and counts what was lost: the whole batch if
    /// it failed, the rejected items if the collector took it in part. Only the places still
    /// held are counted: what shutdown already counted as still queued is not counted twice.
    fn finished(
        &self,
        signal: Signal,
        items: usize,
        delivery: Result<Option<&Rejected>, &OTelSdkError>,
    ) {
        let released = match &self.in_flight {
            Some(in_flight) => in_flight
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                    Some(held.saturating_sub(items))
                })
                // The closure never refuses: `Ok` always holds what was there before.
                .unwrap_or_else(|held| held)
                .min(items),
            None => items,
        };
        match delivery {
            Ok(None) => {}
            Ok(Some(rejected)) => {
                static REPORTED: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];
                let why = format!(
                    "the collector rejected {} {} of a batch: {:?}",
                    rejected.items,
                    signal.as_str(),
                    rejected.why
                );
                let lost = rejected.items.min(released as u64);
                self.lost(signal, lost, &why, &REPORTED, || why.clone());
            }
            Err(err) => {
                static REPORTED: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];
                let cause = self.last_error.as_ref().and_then(|e| e.take());
                let mut why = once_each(&err.to_string());
                if let Some(cause) = &cause {
                    why = format!("{why} ({cause})");
                }
                // The SDK's "Operation failed: " says nothing the shutdown error does not.
                let failure = why.strip_prefix("Operation failed: ").unwrap_or(&why);
                self.lost(signal, released as u64, failure, &REPORTED, || {
                    let mut message = format!("exporting {} failed: {why}", signal.as_str());
                    if let Some(why) = super::tls::explain(&message, self.tls) {
                        message.push_str("; ");
                        message.push_str(why);
                    }
                    message.push_str("; the batch was dropped");
                    message
                });
            }
        }
    }

    /// Counts `n` items of `signal` as failed, keeps `failure` for the shutdown error, and
    /// says `message` the first time `reported` is seen.
    fn lost(
        &self,
        signal: Signal,
        n: u64,
        failure: &str,
        reported: &[AtomicBool; 3],
        message: impl Fn() -> String,
    ) {
        *crate::sync::lock(&self.runtime.failures[signal as usize]) = Some(failure.to_owned());
        if n > 0 {
            drop_counted(
                Output::Otlp,
                signal,
                DropReason::ExportFailed,
                n,
                &reported[signal as usize],
                &message,
            );
        }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for OnRuntime<E> {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        let result = self
            .runtime
            .run(with_timeout(self.timeout, self.inner.export(metrics)));
        if let Err(err) = &result {
            self.finished(Signal::Metrics, data_points(metrics), Err(err));
        }
        std::future::ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.runtime.enter(|| self.inner.force_flush())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.runtime
            .enter(|| self.inner.shutdown_with_timeout(timeout))
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// Batches sent at once by one span or log exporter. The SDK's batch processor hands over one batch
/// and waits for it before it takes the next; [`Pipelined`] sends each on the export runtime
/// and returns, so the next batch is encoded and sent while the collector answers the last.
pub(crate) const EXPORTS_IN_FLIGHT: usize = 4;

/// How long a flush waits for the batches being sent when no export timeout is set (the
/// spec's default export timeout).
pub(crate) const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The batches an exporter is sending.
#[derive(Debug, Default)]
pub(crate) struct Sending {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Sending {
    /// Takes a place, waiting while `max` batches are being sent (the batch processor then
    /// waits, as it would for its own export: the queue in front of it fills, and counts).
    fn start(&self, max: usize) {
        let mut n = crate::sync::lock(&self.count);
        while *n >= max {
            n = self.changed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
    }

    fn done(&self) {
        let mut n = crate::sync::lock(&self.count);
        *n = n.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Waits until no batch is being sent, at most `timeout`; whether none is.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        let n = crate::sync::lock(&self.count);
        let (n, _) = self
            .changed
            .wait_timeout_while(n, timeout, |n| *n > 0)
            .unwrap_or_else(|e| e.into_inner());
        *n == 0
    }
}

/// A span exporter that sends each batch on the export runtime without waiting for the
/// collector's answer, at most [`EXPORTS_IN_FLIGHT`] at once. A batch is counted when it
/// finishes (its queue places released, a failure counted as dropped); flushing
/// ([`Admission`]'s `force_flush`) and shutdown wait for the batches being sent.
#[derive(Debug)]
pub(crate) struct Pipelined<E> {
    inner: Arc<OnRuntime<E>>,
    pub(crate) sending: Arc<Sending>,
}

impl<E: Sends> Pipelined<E> {
    pub(crate) fn new(inner: OnRuntime<E>) -> Self {
        Pipelined {
            inner: Arc::new(inner),
            sending: Arc::default(),
        }
    }

    /// Sends a batch of `items` of `signal` on the export runtime, bounded by the export
    /// timeout; the batch is finished when that completes. Waits first while
    /// [`EXPORTS_IN_FLIGHT`] are out.
    fn send(
        &self,
        signal: Signal,
        items: usize,
        batch: E::Taken,
    ) -> std::future::Ready<OTelSdkResult> {
        self.sending.start(EXPORTS_IN_FLIGHT);
        let mut sent = Sent {
            signal,
            inner: Some(Arc::clone(&self.inner)),
            sending: Arc::clone(&self.sending),
            items,
            result: None,
        };
        let inner = Arc::clone(&self.inner);
        self.inner.runtime.runtime.spawn(async move {
            let delivery = with_timeout(inner.timeout, inner.inner.send(batch)).await;
            sent.result.replace(delivery);
        });
        std::future::ready(Ok(()))
    }

    /// Waits for the batches being sent, then shuts the exporter down, all within `timeout`.
    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        let started = std::time::Instant::now();
        let idle = self.sending.wait_idle(timeout);
        let left = timeout.saturating_sub(started.elapsed());
        let result = self
            .inner
            .runtime
            .enter(|| self.inner.inner.shutdown_with_timeout(left));
        match idle {
            true => result,
            false => Err(OTelSdkError::Timeout(timeout)),
        }
    }

    /// Sets the exporter's resource once no batch holds it (the provider sets the resource
    /// when it is built, before any batch).
    fn set_resource(&mut self, resource: &Resource) {
        self.sending.wait_idle(Duration::from_secs(5));
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.inner.set_resource(resource);
        }
    }
}

/// Finishes a batch sent by [`Pipelined`] when dropped: with its result, or as failed if the
/// exporter panicked on the way.
struct Sent<E> {
    signal: Signal,
    inner: Option<Arc<OnRuntime<E>>>,
    sending: Arc<Sending>,
    items: usize,
    result: Option<Delivery>,
}

impl<E> Drop for Sent<E> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let result = self.result.take().unwrap_or_else(|| {
                Err(OTelSdkError::InternalFailure(
                    "the exporter panicked".into(),
                ))
            });
            inner.finished(self.signal, self.items, result.as_ref().map(Option::as_ref));
        }
        // After the exporter's last reference here is gone: `set_resource` waits for this.
        self.sending.done();
    }
}

/// A span or log exporter as [`Pipelined`] drives it: what a batch becomes while the SDK still
/// holds it (`take`, on the batch processor's thread), and how that is sent (`send`, on the
/// export runtime).
pub(crate) trait Sends: std::fmt::Debug + Send + Sync + 'static {
    /// A batch as it is sent.
    type Taken: Send + 'static;
    /// Sends a batch; `Ok(Some(..))` when the collector took it but rejected some items.
    fn send(&self, batch: Self::Taken) -> impl Future<Output = Delivery> + Send;
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult;
    fn set_resource(&mut self, resource: &Resource);
}

/// A [`Sends`] for span batches.
pub(crate) trait TakesSpans: Sends {
    fn take(&self, batch: Vec<SpanData>) -> Self::Taken;
}

/// A [`Sends`] for log batches, which the SDK lends for the call only.
pub(crate) trait TakesLogs: Sends {
    fn take(&self, batch: &LogBatch<'_>) -> Self::Taken;
}

impl<E: TakesSpans> SpanExporter for Pipelined<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let items = batch.len();
        let taken = self.inner.inner.take(batch);
        self.send(Signal::Spans, items, taken)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shutdown(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        Pipelined::set_resource(self, resource);
    }
}

impl<E: TakesLogs> LogExporter for Pipelined<E> {
    fn export(&self, batch: LogBatch<'_>) -> impl Future<Output = OTelSdkResult> + Send {
        let items = batch.iter().count();
        let taken = self.inner.inner.take(&batch);
        self.send(Signal::Logs, items, taken)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shutdown(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        Pipelined::set_resource(self, resource);
    }
}

/// `a: b: b` → `a: b`: the grpc exporter renders an error's source chain after its message,
/// which often repeats it.
fn once_each(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// Bounds an export by `timeout` (it runs on the export runtime, which has a timer).
async fn with_timeout<T, F: Future<Output = Result<T, OTelSdkError>>>(
    timeout: Option<Duration>,
    fut: F,
) -> Result<T, OTelSdkError> {
    match timeout {
        Some(t) => tokio::time::timeout(t, fut)
            .await
            .unwrap_or(Err(OTelSdkError::Timeout(t))),
        None => fut.await,
    }
}

fn data_points(metrics: &ResourceMetrics) -> usize {
    fn count<T>(data: &MetricData<T>) -> usize {
        match data {
            MetricData::Gauge(g) => g.data_points().count(),
            MetricData::Sum(s) => s.data_points().count(),
            MetricData::Histogram(h) => h.data_points().count(),
            MetricData::ExponentialHistogram(h) => h.data_points().count(),
        }
    }
    metrics
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .map(|m| match m.data() {
            AggregatedMetrics::F64(d) => count(d),
            AggregatedMetrics::U64(d) => count(d),
            AggregatedMetrics::I64(d) => count(d),
        })
        .sum()
}

/// Admits items into a batch processor while its queue has room; counts the rest as dropped.
#[derive(Debug)]
pub(crate) struct Admission<P> {
    pub(crate) inner: P,
    pub(crate) in_flight: Arc<AtomicUsize>,
    pub(crate) capacity: usize,
    /// The batches its exporter is still sending after handing them over ([`Pipelined`]):
    /// a flush waits for them, at most `flush_timeout`.
    pub(crate) sending: Arc<Sending>,
    pub(crate) flush_timeout: Duration,
}

impl<P> Admission<P> {
    /// `result` of the processor's flush, once the batches it handed over are sent too (at
    /// most `flush_timeout`).
    fn flushed(&self, result: OTelSdkResult) -> OTelSdkResult {
        match self.sending.wait_idle(self.flush_timeout) {
            true => result,
            false => Err(OTelSdkError::Timeout(self.flush_timeout)),
        }
    }

    /// Takes a place in the queue, or counts a drop.
    #[inline]
    fn admit(&self, signal: Signal) -> bool {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) < self.capacity {
            return true;
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        static REPORTED: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];
        drop_counted(
            Output::Otlp,
            signal,
            DropReason::QueueFull,
            1,
            &REPORTED[signal as usize],
            &|| {
                format!(
                "the {} export queue is full ({} waiting): the exporter is slower than the application; items are dropped and counted",
                signal.as_str(),
                self.capacity
            )
            },
        );
        false
    }
}

impl<P: SpanProcessor> SpanProcessor for Admission<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx)
    }

    fn on_end(&self, mut span: SpanData) {
        if span.span_context.is_sampled() && self.admit(Signal::Spans) {
            crate::attributes::dedup_span_keys(&mut span);
            self.inner.on_end(span)
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flushed(self.inner.force_flush())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

impl<P: LogProcessor> LogProcessor for Admission<P> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &opentelemetry::InstrumentationScope) {
        if self.admit(Signal::Logs) {
            self.inner.emit(record, scope)
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flushed(self.inner.force_flush())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_repeated_cause_is_said_once() {
        assert_eq!(
            super::once_each("export failed: transport error: bad cert: bad cert"),
            "export failed: transport error: bad cert"
        );
        assert_eq!(super::once_each("a: b: a"), "a: b: a");
    }
}
