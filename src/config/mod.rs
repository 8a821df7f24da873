//! [`TelemetryConfig`]: what `configure_telemetry` builds.

mod endpoint;
mod env;
mod export;
mod extend;
mod sampler;

pub(crate) use self::export::ExportSettings;
pub use self::export::{
    BatchSettings, Exporter, OtlpCompression, OtlpProtocol, OtlpSettings, Propagator,
};
pub(crate) use self::extend::{BoxedSpanProcessor, SharedMetricReader};
pub use self::sampler::Sampler;
pub(crate) use self::sampler::SAMPLER_NAMES;
#[cfg(feature = "otlp")]
pub(crate) use self::{
    endpoint::{redact, Endpoint, Scheme},
    export::{check_header, shown_name, Sourced},
};

use crate::state::JsonSinks;
use opentelemetry::KeyValue;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often the JSON log file starts a new file, for
/// [`TelemetryConfig::with_log_rotation`] (example: [logs](TelemetryConfig#logs)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogRotation {
    /// One file, never rotated (the default).
    #[default]
    Never,
    /// A new file every hour: `name.YYYY-MM-DD-HH.ext`.
    Hourly,
    /// A new file every day: `name.YYYY-MM-DD.ext`.
    Daily,
}

/// Where and how the JSON log file is written.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogFileConfig {
    /// `None` when only rotation or retention was set, without `with_log_file`.
    pub(crate) path: Option<PathBuf>,
    pub(crate) rotation: LogRotation,
    pub(crate) max_files: Option<usize>,
}

/// Everything `configure_telemetry` needs, with defaults that work with no servers.
///
/// Start from [`TelemetryConfig::from_env`] (reads the `OTEL_*` variables and `RUST_LOG`) or
/// [`TelemetryConfig::new`] (ignores the environment), then override with the `with_*` methods.
/// **An explicit `with_*` call always wins over the environment**, whatever the order.
/// [`from_env`](Self::from_env) shows the usual start-up; below, one group of settings per
/// concern, then every setting in a table.
///
/// # Service identity and sampling
///
/// ```
/// use unitel::{Sampler, TelemetryConfig};
/// # use std::sync::{Arc, Mutex};
///
/// // `from_vars` reads variables from a list, as `from_env` reads the process environment.
/// let config = TelemetryConfig::from_vars([("OTEL_SERVICE_NAME", "orders-legacy")])
///     .with_service_name("orders") // wins over OTEL_SERVICE_NAME
///     .with_service_version("2.4.1")
///     .with_environment("staging")
///     .with_resource_attribute("service.namespace", "shop")
///     .with_sampler(Sampler::ParentBasedTraceIdRatio(0.25)); // a quarter of new traces
/// # let lines = Arc::new(Mutex::new(String::new()));
/// # let sink = lines.clone();
/// # let config = config.with_console(false).with_json_sink(move |line| sink.lock().unwrap().push_str(line));
/// # let _guard = unitel::configure_telemetry(config).unwrap();
/// # unitel::get_telemetry("orders").log_info("started");
/// # assert!(lines.lock().unwrap().contains(r#""service":"orders""#), "{}", lines.lock().unwrap());
/// ```
///
/// # Logs
///
/// ```
/// use unitel::{LogRotation, TelemetryConfig};
///
/// let config = TelemetryConfig::new()
///     .with_console(true) // human-readable lines on standard output (the default)
///     .with_log_file("logs/orders.log") // JSON lines: log records and closed spans
///     .with_log_rotation(LogRotation::Daily) // logs/orders.2026-11-21.log, ...
///     .with_max_log_files(7)
///     .with_log_filter("info,orders=debug,sqlx=warn"); // RUST_LOG syntax; wins over RUST_LOG
/// # let _ = config;
/// ```
///
/// The files are read back with [`logfile::read_records`](crate::logfile::read_records).
///
/// # OTLP export
///
/// Setting an endpoint is enough to push traces, metrics and logs
/// (`.with_otlp_endpoint("http://127.0.0.1:4318")`); the rest is tuning:
///
/// ```
/// use std::time::Duration;
/// use unitel::{BatchSettings, Exporter, OtlpCompression, OtlpProtocol, OtlpSettings, TelemetryConfig};
///
/// let api_key = std::env::var("COLLECTOR_API_KEY").unwrap_or_default();
/// let config = TelemetryConfig::new()
///     .with_otlp(
///         OtlpSettings::new()
///             .with_endpoint("https://collector.example:4317")
///             .with_protocol(OtlpProtocol::Grpc)
///             .with_header("x-api-key", api_key) // never printed, not even by `Debug`
///             .with_compression(OtlpCompression::Gzip)
///             .with_timeout(Duration::from_secs(5)),
///     )
///     .with_logs_exporter(&[Exporter::None]) // logs stay in the console and the log file
///     .with_metric_export_interval(Duration::from_secs(15))
///     .with_batch_span_processor(BatchSettings::new().with_max_queue_size(32_768));
/// # let _ = config;
/// ```
///
/// Per-signal endpoints and TLS files: [`OtlpSettings`].
///
/// # Prometheus
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), unitel::Error> {
/// let guard = unitel::configure_telemetry(
///     unitel::TelemetryConfig::new().with_prometheus(([127, 0, 0, 1], 0)), // port 0: any free port
/// )?;
/// let addr = guard.prometheus_addr().expect("Prometheus is on");
/// println!("scrape http://{addr}/metrics");
///
/// unitel::get_telemetry("orders").counter("orders_placed").add(1, &[("payment", "card")]);
/// # let text = unitel::prometheus_text().await.unwrap();
/// # let line = text.lines().find(|l| l.starts_with("orders_placed_total{")).unwrap();
/// # assert!(line.contains(r#"payment="card""#) && line.ends_with(" 1"), "{text}");
/// # Ok(())
/// # }
/// ```
///
/// To serve the same text from your own router instead, see [`prometheus_text`](crate::prometheus_text).
///
/// # Every setting
///
/// | setting | builder | environment | default |
/// |---|---|---|---|
/// | disable everything | [`with_disabled`](Self::with_disabled) | `OTEL_SDK_DISABLED` (`true`/`false`) | `false` |
/// | service name | [`with_service_name`](Self::with_service_name) | `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES` | [`with_default_service_name`](Self::with_default_service_name), else `unknown_service:<executable>` |
/// | service version | [`with_service_version`](Self::with_service_version) | `service.version` in `OTEL_RESOURCE_ATTRIBUTES` | none |
/// | environment | [`with_environment`](Self::with_environment) | `deployment.environment.name` in `OTEL_RESOURCE_ATTRIBUTES`, else `OTEL_ENVIRONMENT` | none |
/// | resource attributes | [`with_resource_attribute`](Self::with_resource_attribute) | `OTEL_RESOURCE_ATTRIBUTES` | none |
/// | sampler | [`with_sampler`](Self::with_sampler) | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `parentbased_always_on` |
/// | console output | [`with_console`](Self::with_console) | — | on |
/// | JSON log file | [`with_log_file`](Self::with_log_file) | — | off |
/// | rotation | [`with_log_rotation`](Self::with_log_rotation) | — | never |
/// | files kept | [`with_max_log_files`](Self::with_max_log_files) | — | all |
/// | log filter | [`with_log_filter`](Self::with_log_filter) | `RUST_LOG` | `info` |
/// | tracing-opentelemetry's extras on `tracing` spans | [`with_tracing_span_extras`](Self::with_tracing_span_extras) | — | off |
/// | shutdown timeout | [`with_shutdown_timeout`](Self::with_shutdown_timeout) | — | 5 s |
/// | OTLP (all signals) | [`with_otlp`](Self::with_otlp), [`with_otlp_endpoint`](Self::with_otlp_endpoint) | `OTEL_EXPORTER_OTLP_*` | no endpoint: nothing pushed |
/// | OTLP per signal | [`with_otlp_traces`](Self::with_otlp_traces), [`with_otlp_metrics`](Self::with_otlp_metrics), [`with_otlp_logs`](Self::with_otlp_logs) | `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_*` | the generic settings |
/// | exporters per signal | [`with_traces_exporter`](Self::with_traces_exporter), [`with_metrics_exporter`](Self::with_metrics_exporter), [`with_logs_exporter`](Self::with_logs_exporter) | `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER` | `otlp` when an endpoint is set |
/// | metric push interval | [`with_metric_export_interval`](Self::with_metric_export_interval) | `OTEL_METRIC_EXPORT_INTERVAL` (ms) | 60 s |
/// | attribute sets per instrument | [`with_metric_cardinality_limit`](Self::with_metric_cardinality_limit) | — | 2000 |
/// | exemplars on counters and histograms | [`with_exemplars`](Self::with_exemplars) | `OTEL_METRICS_EXEMPLAR_FILTER` (`trace_based`/`always_off`) | on (`trace_based`) |
/// | span batching | [`with_batch_span_processor`](Self::with_batch_span_processor) | `OTEL_BSP_*` | see [`BatchSettings`] |
/// | log batching | [`with_batch_log_processor`](Self::with_batch_log_processor) | `OTEL_BLRP_*` | see [`BatchSettings`] |
/// | Prometheus `/metrics` | [`with_prometheus`](Self::with_prometheus) | `OTEL_METRICS_EXPORTER=prometheus`, `OTEL_EXPORTER_PROMETHEUS_HOST`/`_PORT` | off; `127.0.0.1:9464` when asked for |
/// | your own span processors | [`with_span_processor`](Self::with_span_processor) | — | none |
/// | your own metric readers | [`with_metric_reader`](Self::with_metric_reader) | — | none |
/// | your own JSON-line sinks | [`with_json_sink`](Self::with_json_sink) | — | none |
///
/// The full list, with examples: `docs/configuration.md`.
#[derive(Debug, Default)]
pub struct TelemetryConfig {
    pub(crate) disabled: bool,
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) env_resource: Vec<KeyValue>,
    pub(crate) resource: Vec<KeyValue>,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) console: Option<bool>,
    pub(crate) log_file: Option<LogFileConfig>,
    pub(crate) log_filter: Option<String>,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) cardinality_limit: Option<usize>,
    /// Whether counters and histograms keep exemplars (`None`: yes).
    pub(crate) exemplars: Option<bool>,
    /// Export settings from the environment.
    pub(crate) env_export: ExportSettings,
    /// Export settings from the builder; they win over `env_export` field by field.
    pub(crate) export: ExportSettings,
    /// Builder values, kept apart so they win over the environment read later or earlier.
    pub(crate) explicit: Explicit,
    /// The first invalid environment value, reported by `configure_telemetry`.
    pub(crate) env_error: Option<crate::error::Error>,
    /// Extension points: processors, readers and line sinks of the application's own.
    pub(crate) span_processors: Vec<BoxedSpanProcessor>,
    pub(crate) metric_readers: Vec<SharedMetricReader>,
    pub(crate) json_sinks: JsonSinks,
    /// `OTEL_PROPAGATORS`; `None` keeps the default (tracecontext, baggage).
    pub(crate) env_propagators: Option<Vec<Propagator>>,
    /// tracing-opentelemetry's extras on `tracing` spans and events (see
    /// [`TelemetryConfig::with_tracing_span_extras`]).
    pub(crate) tracing_span_extras: bool,
}

/// Values set through the builder; they override whatever the environment says.
#[derive(Debug, Default)]
pub(crate) struct Explicit {
    pub(crate) disabled: Option<bool>,
    pub(crate) service_name: Option<String>,
    /// The name used when neither the builder nor the environment names the service.
    pub(crate) default_service_name: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) log_filter: Option<String>,
    pub(crate) propagators: Option<Vec<Propagator>>,
}

impl TelemetryConfig {
    /// Defaults only; the environment is not read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defaults, then the `OTEL_*` variables and `RUST_LOG` from the process environment.
    ///
    /// The usual start-up: the environment says where telemetry goes (`OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_TRACES_SAMPLER`, `RUST_LOG`, ...), the code names the service.
    ///
    /// ```
    /// fn main() -> Result<(), unitel::Error> {
    ///     let _guard = unitel::configure_telemetry(
    ///         unitel::TelemetryConfig::from_env()
    ///             .with_default_service_name("orders") // unless OTEL_SERVICE_NAME says otherwise
    ///             .with_service_version(env!("CARGO_PKG_VERSION"))
    ///             .with_log_filter("info,orders=debug"),
    ///     )?;
    ///     // ... run the service; dropping the guard flushes what is left ...
    ///     Ok(())
    /// }
    /// ```
    ///
    /// An invalid value is not lost: `configure_telemetry` returns it as an
    /// [`Error::InvalidEnv`](crate::Error::InvalidEnv) naming the variable.
    ///
    /// Variables are read as the platform stores them: one the crate does not read may hold
    /// anything, and one it reads (`OTEL_*`, `RUST_LOG`) whose value is not UTF-8 is an
    /// `InvalidEnv` error naming it.
    pub fn from_env() -> Self {
        // std::env::vars() would panic on any variable that is not UTF-8, even an unrelated one.
        let vars: std::collections::HashMap<String, std::ffi::OsString> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .collect();
        let mut config = Self::new();
        env::apply(&mut config, &|name| vars.get(name).cloned());
        config
    }

    /// Like [`from_env`](Self::from_env), but reads the variables from the given pairs instead
    /// of the process environment (for tests, or settings kept in a file).
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let mut config = Self::new();
        env::apply(&mut config, &|name| vars.get(name).map(Into::into));
        config
    }

    /// The context propagators used by the carriers, the server layer and job envelopes
    /// (`OTEL_PROPAGATORS`; default: trace context and baggage). An empty list propagates
    /// nothing.
    pub fn with_propagators(mut self, propagators: &[Propagator]) -> Self {
        self.explicit.propagators = Some(propagators.to_vec());
        self
    }

    /// The propagators in effect: the builder's, else the environment's, else both.
    pub(crate) fn propagators(&self) -> crate::state::Propagators {
        match self
            .explicit
            .propagators
            .as_ref()
            .or(self.env_propagators.as_ref())
        {
            Some(list) => crate::state::Propagators {
                trace_context: list.contains(&Propagator::TraceContext),
                baggage: list.contains(&Propagator::Baggage),
            },
            None => crate::state::Propagators::default(),
        }
    }

    /// Turns every telemetry call into a near-free no-op (`OTEL_SDK_DISABLED`): no spans,
    /// metrics or logs are recorded, and no subscriber is installed.
    pub fn with_disabled(mut self, disabled: bool) -> Self {
        self.explicit.disabled = Some(disabled);
        self
    }

    /// The `service.name` resource attribute.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.explicit.service_name = Some(name.into());
        self
    }

    /// The `service.name` to use when the environment names none (neither `OTEL_SERVICE_NAME`
    /// nor `service.name` in `OTEL_RESOURCE_ATTRIBUTES`), instead of
    /// `unknown_service:<executable>`: for a program that has a sensible name of its own, which
    /// its deployments may still rename. [`with_service_name`](Self::with_service_name) wins
    /// over both.
    ///
    /// ```
    /// // `fastworker` unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise.
    /// let config = unitel::TelemetryConfig::from_env().with_default_service_name("fastworker");
    /// # let _ = config;
    /// ```
    pub fn with_default_service_name(mut self, name: impl Into<String>) -> Self {
        self.explicit.default_service_name = Some(name.into());
        self
    }

    /// The `service.version` resource attribute.
    pub fn with_service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// The `deployment.environment.name` resource attribute (`production`, `staging`, ...).
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.explicit.environment = Some(environment.into());
        self
    }

    /// One more resource attribute; it wins over the same key in `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn with_resource_attribute(
        mut self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<opentelemetry::Value>,
    ) -> Self {
        self.resource.push(KeyValue::new(key, value));
        self
    }

    /// The trace sampler. Ratios must be in `0.0..=1.0`.
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.explicit.sampler = Some(sampler);
        self
    }

    /// Human-readable log lines on standard output (on by default).
    pub fn with_console(mut self, enabled: bool) -> Self {
        self.console = Some(enabled);
        self
    }

    /// JSON lines written to `path` through a non-blocking writer: log events and one record
    /// per closed span (see `docs/log-format.md`). `logs/orders.log` writes to the `logs`
    /// directory, creating it if needed; with rotation, the date goes before the extension.
    pub fn with_log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file.get_or_insert_with(Default::default).path = Some(path.into());
        self
    }

    /// How often the JSON log file rotates (default [`LogRotation::Never`]).
    pub fn with_log_rotation(mut self, rotation: LogRotation) -> Self {
        self.log_file.get_or_insert_with(Default::default).rotation = rotation;
        self
    }

    /// How many rotated log files are kept; older ones are deleted (default: all).
    pub fn with_max_log_files(mut self, max_files: usize) -> Self {
        self.log_file.get_or_insert_with(Default::default).max_files = Some(max_files);
        self
    }

    /// Whether `tracing` spans (from `#[tracing::instrument]` and libraries) carry
    /// tracing-opentelemetry's extras, as they do with its defaults. Off by default, because
    /// they more than double the cost of such a span and of an event inside one:
    ///
    /// - on each span, its code location (`code.file.path`, `code.module.name`,
    ///   `code.line.number`), the thread it started on (`thread.id`, `thread.name`), and the
    ///   time it was entered and not (`busy_ns`, `idle_ns`);
    /// - every event inside a `tracing` span copied onto the span as a span event (with its
    ///   fields, level, target and code location). Off, only ERROR events are: they still mark
    ///   the span as failed and record an error field as an `exception` event. Every event
    ///   still becomes a log record carrying the span's trace and span ids, whichever this is.
    ///
    /// The span's `target` attribute, its fields, its parent and its ids are the same either way.
    pub fn with_tracing_span_extras(mut self, enabled: bool) -> Self {
        self.tracing_span_extras = enabled;
        self
    }

    /// Which log events are kept, in `RUST_LOG` syntax (`info,sqlx=warn,my_crate=debug`).
    /// A component's logs have the component as their target. Default `info`.
    pub fn with_log_filter(mut self, directives: impl Into<String>) -> Self {
        self.explicit.log_filter = Some(directives.into());
        self
    }

    /// How long dropping the guard (or `shutdown`) may take to flush (default 5 s).
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Adds a span processor of your own (a custom exporter behind the SDK's
    /// `BatchSpanProcessor`, say) next to the configured exporters. It sees every sampled span
    /// the facade and `tracing` make; its drops are its own to count.
    pub fn with_span_processor(
        mut self,
        processor: impl opentelemetry_sdk::trace::SpanProcessor + 'static,
    ) -> Self {
        self.span_processors
            .push(BoxedSpanProcessor(Box::new(processor)));
        self
    }

    /// Adds a metric reader of your own next to the configured exporters. It is shared: keep a
    /// clone of the `Arc` to collect from it yourself (an SDK `ManualReader` read in a test), or
    /// hand over a `PeriodicReader` around an exporter of yours.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use unitel::opentelemetry_sdk::metrics::ManualReader;
    ///
    /// let reader = Arc::new(ManualReader::default());
    /// let config = unitel::TelemetryConfig::new().with_metric_reader(reader.clone());
    /// // ... configure_telemetry(config), record, then `reader.collect(&mut resource_metrics)`
    /// # drop(config);
    /// ```
    pub fn with_metric_reader(
        mut self,
        reader: Arc<impl opentelemetry_sdk::metrics::reader::MetricReader>,
    ) -> Self {
        self.metric_readers.push(SharedMetricReader(reader));
        self
    }

    /// Hands every JSON line of the log-file format to `sink` as well — log records and span
    /// records, each with its newline (`docs/log-format.md`) — whether or not a log file is
    /// written. It runs on the thread that made the record, so keep it quick and never block
    /// in it (push to a buffer or a bounded channel).
    pub fn with_json_sink(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.json_sinks.push(Arc::new(sink));
        self
    }

    /// OTLP settings for all signals (endpoint, protocol, headers, timeout, compression, TLS).
    pub fn with_otlp(mut self, settings: OtlpSettings) -> Self {
        self.export.otlp = settings;
        self
    }

    /// Pushes traces, metrics and logs to this OTLP endpoint (`http://127.0.0.1:4318` for
    /// http/protobuf, `http://127.0.0.1:4317` with `OtlpProtocol::Grpc`).
    pub fn with_otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.export.otlp.endpoint = Some(export::Sourced::new(
            endpoint.into(),
            "TelemetryConfig::with_otlp_endpoint",
        ));
        self
    }

    /// OTLP settings for traces only; they win over [`with_otlp`](Self::with_otlp).
    pub fn with_otlp_traces(mut self, settings: OtlpSettings) -> Self {
        self.export.traces = settings;
        self
    }

    /// OTLP settings for metrics only.
    pub fn with_otlp_metrics(mut self, settings: OtlpSettings) -> Self {
        self.export.metrics = settings;
        self
    }

    /// OTLP settings for logs only.
    pub fn with_otlp_logs(mut self, settings: OtlpSettings) -> Self {
        self.export.logs = settings;
        self
    }

    /// Where spans go: any of `Otlp`, `Console`, `None`.
    pub fn with_traces_exporter(mut self, exporters: &[Exporter]) -> Self {
        self.export.traces_exporter = Some(exporters.to_vec());
        self
    }

    /// Where metrics go: any of `Otlp`, `Prometheus`, `Console`, `None`.
    pub fn with_metrics_exporter(mut self, exporters: &[Exporter]) -> Self {
        self.export.metrics_exporter = Some(exporters.to_vec());
        self
    }

    /// Where logs go: any of `Otlp`, `Console`, `None`.
    pub fn with_logs_exporter(mut self, exporters: &[Exporter]) -> Self {
        self.export.logs_exporter = Some(exporters.to_vec());
        self
    }

    /// How often metrics are pushed by OTLP (default 60 s).
    pub fn with_metric_export_interval(mut self, interval: Duration) -> Self {
        self.export.metric_export_interval = Some(interval);
        self
    }

    /// How many attribute sets each metric instrument keeps apart (default 2000, the SDK's).
    ///
    /// Past the limit, measurements with a new attribute set are added to one series marked
    /// `otel.metric.overflow=true` (Prometheus: `otel_metric_overflow="true"`): their values
    /// are kept, their attributes lost. Each instrument that reaches the limit is said once on
    /// standard error and counted once in `unitel::dropped(Signal::Metrics,
    /// DropReason::CardinalityLimit)`. Memory per instrument grows with the limit. Accepted:
    /// 1 to 1,000,000; anything else is a start-up error.
    pub fn with_metric_cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = Some(limit);
        self
    }

    /// Whether counters and histograms keep exemplars: for each series (and histogram bucket),
    /// the value, time, trace id and span id of the latest measurement made inside a sampled
    /// span, shown by Prometheus when it scrapes OpenMetrics. On by default (the spec's
    /// `trace_based` filter); `OTEL_METRICS_EXEMPLAR_FILTER=always_off` or `false` here turns it
    /// off. Outside a sampled span a measurement keeps nothing either way.
    pub fn with_exemplars(mut self, enabled: bool) -> Self {
        self.exemplars = Some(enabled);
        self
    }

    /// Batching of spans before export.
    pub fn with_batch_span_processor(mut self, settings: BatchSettings) -> Self {
        self.export.bsp = settings;
        self
    }

    /// Batching of log records before export.
    pub fn with_batch_log_processor(mut self, settings: BatchSettings) -> Self {
        self.export.blrp = settings;
        self
    }

    /// Serves `GET /metrics` for Prometheus on `addr` (use `127.0.0.1:9464`; port 0 picks a
    /// free port, see [`TelemetryGuard::prometheus_addr`](crate::TelemetryGuard::prometheus_addr)).
    /// It listens on all interfaces only if you pass `0.0.0.0`.
    pub fn with_prometheus(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.export.prometheus = Some(addr.into());
        self
    }

    /// The export settings in force: builder values over the environment's.
    pub(crate) fn resolved_export(&self) -> ExportSettings {
        self.export.or(&self.env_export)
    }

    // Resolved values: builder first, then environment, then default.

    pub(crate) fn is_disabled(&self) -> bool {
        self.explicit.disabled.unwrap_or(self.disabled)
    }

    pub(crate) fn resolved_sampler(&self) -> Sampler {
        self.explicit.sampler.or(self.sampler).unwrap_or_default()
    }

    pub(crate) fn resolved_log_filter(&self) -> (&'static str, &str) {
        match (&self.explicit.log_filter, &self.log_filter) {
            (Some(f), _) => ("TelemetryConfig::with_log_filter", f),
            (None, Some(f)) => ("RUST_LOG", f),
            (None, None) => ("default", "info"),
        }
    }

    pub(crate) fn console_enabled(&self) -> bool {
        self.console.unwrap_or(true)
    }

    pub(crate) fn resolved_shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout.unwrap_or(Duration::from_secs(5))
    }

    /// The resource: defaults < `OTEL_RESOURCE_ATTRIBUTES` < `OTEL_SERVICE_NAME` /
    /// `OTEL_ENVIRONMENT` < builder calls.
    pub(crate) fn resource(&self) -> opentelemetry_sdk::Resource {
        use opentelemetry_sdk::Resource;
        let mut attrs: Vec<KeyValue> = Vec::new();
        let mut set = |kv: KeyValue| {
            attrs.retain(|existing| existing.key != kv.key);
            attrs.push(kv);
        };
        let fallback = self.explicit.default_service_name.clone();
        set(KeyValue::new(
            "service.name",
            fallback.unwrap_or_else(default_service_name),
        ));
        if let Some(env) = &self.environment {
            set(KeyValue::new("deployment.environment.name", env.clone()));
        }
        for kv in &self.env_resource {
            set(kv.clone());
        }
        if let Some(name) = &self.service_name {
            set(KeyValue::new("service.name", name.clone()));
        }
        for kv in &self.resource {
            set(kv.clone());
        }
        if let Some(name) = &self.explicit.service_name {
            set(KeyValue::new("service.name", name.clone()));
        }
        if let Some(version) = &self.service_version {
            set(KeyValue::new("service.version", version.clone()));
        }
        if let Some(env) = &self.explicit.environment {
            set(KeyValue::new("deployment.environment.name", env.clone()));
        }
        Resource::builder_empty()
            .with_attributes([
                KeyValue::new("telemetry.sdk.name", "opentelemetry"),
                KeyValue::new("telemetry.sdk.language", "rust"),
                KeyValue::new("telemetry.sdk.version", "0.33"),
                KeyValue::new("telemetry.distro.name", "unitel"),
                KeyValue::new("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
            ])
            .with_attributes(attrs)
            .build()
    }
}

/// The resource's `service.name`: what every JSON log-file record carries as `service`.
pub(crate) fn service_name(resource: &opentelemetry_sdk::Resource) -> Box<str> {
    resource
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .map(|name| name.as_str().into())
        .unwrap_or_else(|| "unknown_service".into())
}

fn default_service_name() -> String {
    match std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
    {
        Some(exe) => format!("unknown_service:{exe}"),
        None => "unknown_service".to_owned(),
    }
}
