//! The process-wide pipeline: built once by [`configure_telemetry`], torn down by the
//! [`TelemetryGuard`].

use crate::config::{LogFileConfig, LogRotation, TelemetryConfig};
use crate::logs::file::FileSink;
use crate::logs::layer::EventLayer;
use crate::logs::LogOutputs;
use crate::spans::record::SpanRecordProcessor;
use crate::Error;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tracing::Dispatch;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

/// The instrumentation scope of spans that come from `tracing` (the tracing-opentelemetry
/// layer's tracer); their component is their target.
pub(crate) const TRACING_SCOPE: &str = "tracing";

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();

#[derive(Debug)]
pub(crate) struct Pipeline {
    disabled: bool,
    shut_down: AtomicBool,
    pub(crate) tracer_provider: Option<SdkTracerProvider>,
    pub(crate) meter_provider: Option<SdkMeterProvider>,
    pub(crate) logs: LogOutputs,
    dispatch: Option<Dispatch>,
    pub(crate) exports: crate::export::Exports,
    shutdown_timeout: Duration,
}

/// The running pipeline, or `None` when not configured, disabled or shut down. One atomic load
/// and a branch: the whole cost of a disabled call.
#[inline]
pub(crate) fn active() -> Option<&'static Pipeline> {
    let p = PIPELINE.get()?;
    (!p.disabled && !p.shut_down.load(Ordering::Relaxed)).then_some(p)
}

/// Configured with telemetry disabled: nothing will ever be recorded in this process.
#[inline]
pub(crate) fn is_disabled() -> bool {
    PIPELINE.get().is_some_and(|p| p.disabled)
}

#[inline]
pub(crate) fn active_logs() -> Option<&'static LogOutputs> {
    active().map(|p| &p.logs)
}

/// The most verbose level at which the log filter lets `target` through (0 = nothing).
pub(crate) fn max_log_level(target: &str) -> Option<u8> {
    use tracing_core::{field::FieldSet, metadata::Kind, Level, Metadata};
    struct Probe;
    impl tracing_core::Callsite for Probe {
        fn set_interest(&self, _: tracing_core::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            &PROBE_META
        }
    }
    static PROBE: Probe = Probe;
    static PROBE_META: Metadata<'static> = Metadata::new(
        "unitel log",
        "unitel",
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(&["message"], tracing_core::identify_callsite!(&PROBE)),
        Kind::EVENT,
    );
    let dispatch = active()?.dispatch.as_ref()?;
    let mut max = 0;
    for level in [
        Level::ERROR,
        Level::WARN,
        Level::INFO,
        Level::DEBUG,
        Level::TRACE,
    ] {
        let meta = Metadata::new(
            "unitel log",
            target,
            level,
            None,
            None,
            None,
            FieldSet::new(&["message"], tracing_core::identify_callsite!(&PROBE)),
            Kind::EVENT,
        );
        if dispatch.enabled(&meta) {
            max = crate::handle::level_rank(level);
        }
    }
    Some(max)
}

/// Flushes and shuts telemetry down when dropped (or on [`shutdown`](Self::shutdown)).
///
/// Shutdown is bounded by the configured timeout (default 5 s), runs on its own thread so it
/// cannot deadlock an async runtime, never panics and prints nothing. After it, every
/// recording call is a silent no-op.
#[must_use = "telemetry shuts down when the guard is dropped; keep it alive in main"]
#[derive(Debug)]
pub struct TelemetryGuard {
    _private: (),
}

impl TelemetryGuard {
    /// Where the Prometheus `/metrics` endpoint listens, when it is on (useful with port 0).
    pub fn prometheus_addr(&self) -> Option<std::net::SocketAddr> {
        PIPELINE.get()?.exports.prometheus_addr()
    }

    /// Flushes spans, metrics and logs and shuts the pipeline down, waiting at most the
    /// shutdown timeout. A second call returns [`Error::AlreadyShutDown`].
    pub fn shutdown(&self) -> Result<(), Error> {
        match PIPELINE.get() {
            Some(p) => p.shutdown(),
            None => Err(Error::AlreadyShutDown),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = PIPELINE.get() {
            if !p.shut_down.load(Ordering::Acquire) {
                let _ = p.shutdown();
            }
        }
    }
}

impl Pipeline {
    fn shutdown(&'static self) -> Result<(), Error> {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyShutDown);
        }
        let timeout = self.shutdown_timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        let work = move || {
            let _ = tx.send(self.flush_and_close(timeout));
        };
        // On its own thread: whatever an exporter does, the caller waits at most `timeout`,
        // and a caller on a runtime thread never blocks the thread an exporter needs.
        match std::thread::Builder::new()
            .name("unitel-shutdown".into())
            .spawn(work)
        {
            Ok(_) => rx
                .recv_timeout(timeout)
                .unwrap_or(Err(Error::ShutdownTimeout { timeout })),
            Err(_) => self.flush_and_close(timeout),
        }
    }

    fn flush_and_close(&self, timeout: Duration) -> Result<(), Error> {
        let mut result = Ok(());
        if let Some(tp) = &self.tracer_provider {
            if let Err(source) = tp.shutdown_with_timeout(timeout) {
                result = Err(Error::Shutdown {
                    what: "traces",
                    source,
                });
            }
        }
        if let Some(mp) = &self.meter_provider {
            if let Err(source) = mp.shutdown_with_timeout(timeout) {
                result = result.and(Err(Error::Shutdown {
                    what: "metrics",
                    source,
                }));
            }
        }
        if let Some(otel) = &self.logs.otel {
            if let Err(source) = otel.provider.shutdown_with_timeout(timeout) {
                result = result.and(Err(Error::Shutdown {
                    what: "logs",
                    source,
                }));
            }
        }
        // Hands over the last batch; dropping the worker guard then writes out every queued
        // line (bounded by tracing-appender).
        if let Some(file) = &self.logs.file {
            file.close();
        }
        result
    }
}

/// Builds the pipeline and installs it for the whole process. Call it once, early in `main`,
/// and keep the guard until the end.
///
/// It installs the global `tracing` subscriber (and the `log` bridge), the global
/// OpenTelemetry tracer and meter providers, and the W3C trace-context propagator.
///
/// # Errors
/// An invalid environment variable or setting (named in the error), an unwritable log
/// directory, a second call, or another global `tracing` subscriber already installed.
pub fn configure_telemetry(config: TelemetryConfig) -> Result<TelemetryGuard, Error> {
    static CONFIGURING: Mutex<()> = Mutex::new(());
    let _lock = crate::sync::lock(&CONFIGURING);
    if PIPELINE.get().is_some() {
        return Err(Error::AlreadyConfigured);
    }
    let pipeline = build(config)?;
    if let Some(dispatch) = &pipeline.dispatch {
        tracing::dispatcher::set_global_default(dispatch.clone())
            .map_err(|e| Error::SubscriberAlreadySet(Box::new(e)))?;
        // `log` records from libraries become tracing events, correlated like the rest. Another
        // `log` logger may already be installed; that is not fatal.
        if tracing_log::LogTracer::init().is_err() {
            crate::diagnostics::report_once("log-tracer", &|| {
                "a `log` logger is already installed; records of the `log` crate will not be correlated".into()
            });
        }
    }
    if let Some(tp) = &pipeline.tracer_provider {
        opentelemetry::global::set_tracer_provider(tp.clone());
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
    }
    if let Some(mp) = &pipeline.meter_provider {
        opentelemetry::global::set_meter_provider(mp.clone());
    }
    if PIPELINE.set(pipeline).is_err() {
        return Err(Error::AlreadyConfigured);
    }
    crate::handle::register_pending_observables();
    Ok(TelemetryGuard { _private: () })
}

fn build(mut config: TelemetryConfig) -> Result<Pipeline, Error> {
    if let Some(err) = config.env_error.take() {
        return Err(err);
    }
    let shutdown_timeout = config.resolved_shutdown_timeout();
    if config.is_disabled() {
        return Ok(Pipeline {
            disabled: true,
            shut_down: AtomicBool::new(false),
            tracer_provider: None,
            meter_provider: None,
            logs: LogOutputs {
                console: false,
                file: None,
                capture: None,
                otel: None,
            },
            dispatch: None,
            exports: Default::default(),
            shutdown_timeout,
        });
    }

    let sampler = config.resolved_sampler();
    if let Some(r) = sampler.ratio() {
        if !(0.0..=1.0).contains(&r) {
            return Err(Error::InvalidSetting {
                setting: "TelemetryConfig::with_sampler",
                value: format!("{sampler:?}"),
                accepted: "a ratio from 0 to 1",
            });
        }
    }
    let (filter_setting, directives) = config.resolved_log_filter();
    let filter = EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::INFO.into())
        .parse(directives)
        .map_err(|source| Error::InvalidLogFilter {
            setting: filter_setting,
            value: directives.to_owned(),
            source,
        })?;

    let file = match &config.log_file {
        Some(file) if file.path.is_none() => {
            return Err(Error::InvalidSetting {
                setting: "TelemetryConfig::with_log_rotation / with_max_log_files",
                value: "no log file".into(),
                accepted:
                    "a log file path set with TelemetryConfig::with_log_file(\"logs/app.log\")",
            })
        }
        Some(file) => {
            let (writer, guard) = open_log_file(file)?;
            Some(FileSink::new(writer, guard))
        }
        None => None,
    };
    let capture = config.capture.clone();
    let resource = config.resource();

    let mut tracer_builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_sampler(sampler.to_sdk());
    if file.is_some() || capture.is_some() {
        tracer_builder = tracer_builder.with_span_processor(SpanRecordProcessor {
            file: file.clone(),
            capture: capture.clone(),
            stdout: false,
        });
    }
    if let Some(capture) = &capture {
        tracer_builder = tracer_builder.with_span_processor(capture.span_processor());
    }
    for processor in std::mem::take(&mut config.span_processors) {
        tracer_builder = tracer_builder.with_span_processor(processor);
    }
    let mut meter_builder = SdkMeterProvider::builder().with_resource(resource.clone());
    if let Some(capture) = &capture {
        meter_builder = meter_builder.with_reader(capture.metric_reader());
    }
    let (tracer_builder, meter_builder, mut exports) = crate::export::build(
        &config.resolved_export(),
        &resource,
        tracer_builder,
        meter_builder,
    )?;
    let tracer_provider = tracer_builder.build();
    let meter_provider = meter_builder.build();
    crate::export::register_self_metrics(&meter_provider);

    let otel_layer = {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(tracer_provider.tracer(TRACING_SCOPE))
            .with_error_records_to_exceptions(true)
    };
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(EventLayer::default());

    Ok(Pipeline {
        disabled: false,
        shut_down: AtomicBool::new(false),
        tracer_provider: Some(tracer_provider),
        meter_provider: Some(meter_provider),
        logs: LogOutputs {
            console: config.console_enabled() || exports.console_logs,
            file,
            capture,
            otel: exports
                .logger_provider
                .take()
                .map(crate::logs::OtelLogs::new),
        },
        dispatch: Some(Dispatch::new(subscriber)),
        exports,
        shutdown_timeout,
    })
}

fn open_log_file(
    file: &LogFileConfig,
) -> Result<(tracing_appender::non_blocking::NonBlocking, WorkerGuard), Error> {
    use tracing_appender::rolling::{RollingFileAppender, Rotation};
    let path = file.path.as_deref().unwrap_or(std::path::Path::new(""));
    let directory = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => ".".into(),
    };
    let invalid = |what: &str| Error::LogFile {
        directory: directory.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned()),
    };
    let prefix = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("the log file path has no file name (e.g. logs/app.log)"))?;
    std::fs::create_dir_all(&directory).map_err(|source| Error::LogFile {
        directory: directory.clone(),
        source,
    })?;
    let mut builder = RollingFileAppender::builder()
        .rotation(match file.rotation {
            LogRotation::Never => Rotation::NEVER,
            LogRotation::Hourly => Rotation::HOURLY,
            LogRotation::Daily => Rotation::DAILY,
        })
        .filename_prefix(prefix);
    if let Some(ext) = path.extension().and_then(|s| s.to_str()) {
        builder = builder.filename_suffix(ext);
    }
    if let Some(n) = file.max_files {
        builder = builder.max_log_files(n.max(1));
    }
    let appender = builder.build(&directory).map_err(|e| Error::LogFile {
        directory: directory.clone(),
        source: std::io::Error::other(e),
    })?;
    // Messages are batches of up to 64 KiB (see logs::file), so a short queue is plenty.
    Ok(NonBlockingBuilder::default()
        .buffered_lines_limit(256)
        .lossy(true)
        .thread_name("unitel-log-writer")
        .finish(appender))
}
