//! Export: OTLP push (traces, metrics, logs), Prometheus pull, console exporters, and the
//! crate's own `unitel.dropped` counter.

mod console;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "prometheus")]
mod prometheus;
#[cfg(feature = "otlp")]
mod protobuf;
#[cfg(feature = "otlp")]
mod runtime;
#[cfg(feature = "otlp")]
mod tls;
#[cfg(feature = "otlp")]
mod transport;
#[cfg(feature = "otlp")]
mod wire;

#[cfg(feature = "prometheus")]
pub use self::prometheus::{prometheus_text, PrometheusText};

#[cfg(feature = "otlp")]
use crate::config::{BatchSettings, OtlpProtocol};
use crate::config::{ExportSettings, Exporter};
use crate::diagnostics::{dropped_at, DropReason, Output, Signal};
use crate::error::Error;
use crate::logfile::SpanRecordProcessor;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{MeterProviderBuilder, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::TracerProviderBuilder;
use opentelemetry_sdk::Resource;
use std::time::Duration;

/// What the export settings produced, kept by the pipeline.
#[derive(Debug, Default)]
pub(crate) struct Exports {
    pub(crate) logger_provider: Option<SdkLoggerProvider>,
    /// `OTEL_LOGS_EXPORTER=console`: the correlated console lines, whatever `with_console` says.
    pub(crate) console_logs: bool,
    /// Where `/metrics` is served, if anywhere: set exactly when the Prometheus reader is
    /// installed.
    pub(crate) prometheus_addr: Option<std::net::SocketAddr>,
    /// Kept alive as long as the pipeline: the exporters' I/O runs on it.
    #[cfg(feature = "otlp")]
    runtime: Option<std::sync::Arc<runtime::ExportRuntime>>,
    /// The admission counters of the OTLP span and log queues: what each still holds (queued,
    /// or in an export that has not finished).
    #[cfg(feature = "otlp")]
    queues: Vec<(Signal, std::sync::Arc<std::sync::atomic::AtomicUsize>)>,
}

#[cfg(any(not(feature = "otlp"), not(feature = "prometheus")))]
fn feature_missing(feature: &'static str, setting: &'static str) -> Error {
    Error::FeatureDisabled { feature, setting }
}

/// The exporters of one signal: the configured list, else OTLP (implicitly: only when an
/// endpoint is set).
fn selection(list: &Option<Vec<Exporter>>) -> (Vec<Exporter>, bool) {
    match list {
        Some(list) => (list.clone(), true),
        None => (vec![Exporter::Otlp], false),
    }
}

/// The batch span processor in front of `exporter`, its queue bounded and counted by
/// `in_flight`.
#[cfg(feature = "otlp")]
fn span_processor<E: runtime::TakesSpans>(
    mut exporter: runtime::OnRuntime<E>,
    bsp: &BatchSettings,
    in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> runtime::Admission<opentelemetry_sdk::trace::BatchSpanProcessor> {
    exporter.timeout = bsp.export_timeout;
    let mut config = opentelemetry_sdk::trace::BatchConfigBuilder::default();
    if let Some(d) = bsp.schedule_delay {
        config = config.with_scheduled_delay(d);
    }
    config = config.with_max_queue_size(bsp.queue_size());
    if let Some(n) = bsp.max_export_batch_size {
        config = config.with_max_export_batch_size(n.min(bsp.queue_size()));
    }
    let exporter = runtime::Pipelined::new(exporter);
    let sending = std::sync::Arc::clone(&exporter.sending);
    runtime::Admission {
        inner: opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
            .with_batch_config(config.build())
            .build(),
        in_flight,
        capacity: bsp.queue_size(),
        sending,
        flush_timeout: bsp.export_timeout.unwrap_or(runtime::DEFAULT_FLUSH_TIMEOUT),
    }
}

/// The batch log processor in front of `exporter`, its queue bounded and counted by
/// `in_flight`.
#[cfg(feature = "otlp")]
fn log_processor<E: runtime::TakesLogs>(
    mut exporter: runtime::OnRuntime<E>,
    blrp: &BatchSettings,
    in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> runtime::Admission<opentelemetry_sdk::logs::BatchLogProcessor> {
    exporter.timeout = blrp.export_timeout;
    let mut config = opentelemetry_sdk::logs::BatchConfigBuilder::default();
    if let Some(d) = blrp.schedule_delay {
        config = config.with_scheduled_delay(d);
    }
    config = config.with_max_queue_size(blrp.queue_size());
    if let Some(n) = blrp.max_export_batch_size {
        config = config.with_max_export_batch_size(n.min(blrp.queue_size()));
    }
    let exporter = runtime::Pipelined::new(exporter);
    let sending = std::sync::Arc::clone(&exporter.sending);
    runtime::Admission {
        inner: opentelemetry_sdk::logs::BatchLogProcessor::builder(exporter)
            .with_batch_config(config.build())
            .build(),
        in_flight,
        capacity: blrp.queue_size(),
        sending,
        flush_timeout: blrp
            .export_timeout
            .unwrap_or(runtime::DEFAULT_FLUSH_TIMEOUT),
    }
}

/// Adds the configured exporters to the providers being built.
#[cfg_attr(not(feature = "otlp"), allow(unused_variables))]
pub(crate) fn build(
    settings: &ExportSettings,
    resource: &Resource,
    mut tracer: TracerProviderBuilder,
    mut meter: MeterProviderBuilder,
) -> Result<(TracerProviderBuilder, MeterProviderBuilder, Exports), Error> {
    let mut exports = Exports::default();

    let (traces, explicit) = selection(&settings.traces_exporter);
    for exporter in traces {
        match exporter {
            Exporter::Otlp => {
                #[cfg(feature = "otlp")]
                if let Some(target) =
                    otlp::resolve(Signal::Spans, &settings.traces, &settings.otlp, explicit)?
                {
                    let rt = exports.runtime()?;
                    let in_flight = exports.queue(Signal::Spans);
                    let queue = std::sync::Arc::clone(&in_flight);
                    tracer = tracer.with_span_processor(match target.protocol {
                        OtlpProtocol::HttpProtobuf => span_processor(
                            otlp::protobuf_exporter(Signal::Spans, &target, &rt, queue)?,
                            &settings.bsp,
                            in_flight,
                        ),
                        _ => span_processor(
                            otlp::span_exporter(&target, &rt, queue)?,
                            &settings.bsp,
                            in_flight,
                        ),
                    });
                }
                #[cfg(not(feature = "otlp"))]
                if explicit
                    || settings.otlp.endpoint.is_some()
                    || settings.traces.endpoint.is_some()
                {
                    return Err(feature_missing("otlp", "OTLP trace export"));
                }
            }
            Exporter::Console => {
                tracer = tracer.with_span_processor(SpanRecordProcessor::stdout(
                    &crate::config::service_name(resource),
                ));
            }
            Exporter::Prometheus | Exporter::None => {}
        }
    }

    let (mut metrics, explicit) = selection(&settings.metrics_exporter);
    if settings.prometheus.is_some() && !metrics.contains(&Exporter::Prometheus) {
        metrics.push(Exporter::Prometheus);
    }
    let interval = settings
        .metric_export_interval
        .unwrap_or(Duration::from_secs(60));
    for exporter in metrics {
        match exporter {
            Exporter::Otlp => {
                #[cfg(feature = "otlp")]
                if let Some(target) =
                    otlp::resolve(Signal::Metrics, &settings.metrics, &settings.otlp, explicit)?
                {
                    let rt = exports.runtime()?;
                    let mut exporter = otlp::metric_exporter(&target, &rt)?;
                    exporter.timeout = settings.metric_export_timeout;
                    meter = meter.with_reader(
                        PeriodicReader::builder(Watched(exporter))
                            .with_interval(interval)
                            .build(),
                    );
                }
                #[cfg(not(feature = "otlp"))]
                if explicit
                    || settings.otlp.endpoint.is_some()
                    || settings.metrics.endpoint.is_some()
                {
                    return Err(feature_missing("otlp", "OTLP metric export"));
                }
            }
            Exporter::Prometheus => {
                #[cfg(feature = "prometheus")]
                {
                    let (reader, exposition) = prometheus::reader();
                    let addr = settings
                        .prometheus
                        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9464)));
                    exports.prometheus_addr = Some(prometheus::serve(exposition, addr)?);
                    meter = meter.with_reader(reader);
                }
                #[cfg(not(feature = "prometheus"))]
                return Err(feature_missing(
                    "prometheus",
                    "with_prometheus / OTEL_METRICS_EXPORTER=prometheus",
                ));
            }
            Exporter::Console => {
                meter = meter.with_reader(
                    PeriodicReader::builder(Watched(console::ConsoleMetrics))
                        .with_interval(interval)
                        .build(),
                );
            }
            Exporter::None => {}
        }
    }

    let (logs, explicit) = selection(&settings.logs_exporter);
    for exporter in logs {
        match exporter {
            Exporter::Otlp => {
                #[cfg(feature = "otlp")]
                if let Some(target) =
                    otlp::resolve(Signal::Logs, &settings.logs, &settings.otlp, explicit)?
                {
                    let rt = exports.runtime()?;
                    let in_flight = exports.queue(Signal::Logs);
                    let queue = std::sync::Arc::clone(&in_flight);
                    let processor = match target.protocol {
                        OtlpProtocol::HttpProtobuf => log_processor(
                            otlp::protobuf_exporter(Signal::Logs, &target, &rt, queue)?,
                            &settings.blrp,
                            in_flight,
                        ),
                        _ => log_processor(
                            otlp::log_exporter(&target, &rt, queue)?,
                            &settings.blrp,
                            in_flight,
                        ),
                    };
                    exports.logger_provider = Some(
                        SdkLoggerProvider::builder()
                            .with_resource(resource.clone())
                            .with_log_processor(processor)
                            .build(),
                    );
                }
                #[cfg(not(feature = "otlp"))]
                if explicit || settings.otlp.endpoint.is_some() || settings.logs.endpoint.is_some()
                {
                    return Err(feature_missing("otlp", "OTLP log export"));
                }
            }
            Exporter::Console => exports.console_logs = true,
            Exporter::Prometheus | Exporter::None => {}
        }
    }
    Ok((tracer, meter, exports))
}

impl Exports {
    /// At shutdown: counts everything the OTLP span and log queues still hold as lost
    /// (`ShutdownTimeout`), silently (shutdown's error or line says it). Each item is taken from
    /// its counter once, so an export that finishes later counts nothing more.
    pub(crate) fn count_still_queued(&self) {
        #[cfg(feature = "otlp")]
        for (signal, in_flight) in &self.queues {
            let n = in_flight.swap(0, std::sync::atomic::Ordering::Relaxed);
            crate::diagnostics::count(Output::Otlp, *signal, DropReason::ShutdownTimeout, n as u64);
        }
    }

    /// Why the last OTLP export of `signal` failed, if one did.
    #[cfg_attr(not(feature = "otlp"), allow(unused_variables))]
    pub(crate) fn last_failure(&self, signal: Signal) -> Option<String> {
        #[cfg(feature = "otlp")]
        if let Some(rt) = &self.runtime {
            return rt.last_failure(signal);
        }
        None
    }
}

#[cfg(feature = "otlp")]
impl Exports {
    /// The export runtime, started on first need.
    fn runtime(&mut self) -> Result<std::sync::Arc<runtime::ExportRuntime>, Error> {
        if let Some(rt) = &self.runtime {
            return Ok(rt.clone());
        }
        let rt = runtime::ExportRuntime::new().map_err(|source| Error::Exporter {
            signal: "all",
            source: Box::new(source),
        })?;
        self.runtime = Some(rt.clone());
        Ok(rt)
    }

    /// A new admission counter for `signal`'s export queue, kept so that
    /// [`count_still_queued`](Self::count_still_queued) counts what it holds at shutdown.
    fn queue(&mut self, signal: Signal) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        let in_flight = std::sync::Arc::default();
        self.queues
            .push((signal, std::sync::Arc::clone(&in_flight)));
        in_flight
    }
}

/// The instrumentation scope of the crate's own metrics.
pub(crate) const SELF_SCOPE: &str = "unitel";

/// Registers `unitel.dropped` (Prometheus: `unitel_dropped_total{signal,reason,output}`): what
/// was dropped, by signal, reason and output, read from the crate's counters at each
/// collection. Every reason an output can drop for is reported from the start, at zero; any
/// other count once it is not zero.
pub(crate) fn register_self_metrics(provider: &SdkMeterProvider) {
    let meter = provider.meter(SELF_SCOPE);
    let _counter = meter
        .u64_observable_counter("unitel.dropped")
        .with_description("Telemetry items unitel dropped, by signal, reason and output")
        .with_callback(|observer| {
            for output in Output::ALL {
                for signal in [Signal::Spans, Signal::Metrics, Signal::Logs] {
                    for reason in DropReason::ALL {
                        let count = dropped_at(output, signal, reason);
                        if count > 0 || output.can_drop(signal, reason) {
                            observer.observe(
                                count,
                                &[
                                    KeyValue::new("signal", signal.as_str()),
                                    KeyValue::new("reason", reason.as_str()),
                                    KeyValue::new("output", output.as_str()),
                                ],
                            );
                        }
                    }
                }
            }
        })
        .build();
}

/// A metric exporter that notes, at each export, the instruments past their cardinality limit
/// (`crate::metrics::note_overflow`) before handing the collection on.
#[derive(Debug)]
struct Watched<E>(E);

impl<E: opentelemetry_sdk::metrics::exporter::PushMetricExporter>
    opentelemetry_sdk::metrics::exporter::PushMetricExporter for Watched<E>
{
    fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        crate::metrics::note_overflow(metrics);
        self.0.export(metrics)
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn shutdown(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown()
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.0.temporality()
    }
}
