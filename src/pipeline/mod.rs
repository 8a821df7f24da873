//! Building the pipeline from a [`TelemetryConfig`] and installing it for the whole process:
//! [`configure_telemetry`], and the [`TelemetryGuard`] that tears it down.

mod guard;
#[cfg(feature = "signal")]
mod signal;

pub use self::guard::TelemetryGuard;
#[cfg(feature = "signal")]
pub use self::signal::{shutdown_requested, shutdown_signal};

use self::guard::Pipeline;
use crate::config::TelemetryConfig;
use crate::diagnostics::report_once;
use crate::error::Error;
use crate::logfile::SpanRecordProcessor;
use crate::logs::EventLayer;
use crate::spans::TRACING_SCOPE;
use crate::state::{self, LogOutputs, State};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::{Arc, Mutex};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

/// Builds the pipeline and installs it for the whole process. Call it once, early in `main`,
/// and keep the guard until the end.
///
/// It installs the global `tracing` subscriber (and the `log` bridge), the global
/// OpenTelemetry tracer and meter providers, and the W3C trace-context propagator.
///
/// ```
/// use unitel::{configure_telemetry, Error, TelemetryConfig};
///
/// fn main() -> Result<(), Error> {
///     // Bind the guard to a name: `let _ = ...` would drop it, and shut down, at once.
///     let _guard = configure_telemetry(TelemetryConfig::from_env().with_service_name("orders"))?;
///
///     // Once per process: a second call is an error, not a second pipeline.
///     let again = configure_telemetry(TelemetryConfig::new());
///     assert!(matches!(again, Err(Error::AlreadyConfigured)));
///
///     unitel::get_telemetry("orders").log_info("service started");
///     Ok(())
/// } // the guard flushes spans, metrics and logs here
/// ```
///
/// [`TelemetryConfig`] has the settings, [`TelemetryGuard`] the shutdown; in tests, use
/// [`testing::capture`](crate::testing::capture) instead.
///
/// # Errors
/// An invalid environment variable or setting (named in the error), an unwritable log
/// directory, a second call, or another global `tracing` subscriber already installed.
pub fn configure_telemetry(config: TelemetryConfig) -> Result<TelemetryGuard, Error> {
    static CONFIGURING: Mutex<()> = Mutex::new(());
    let _lock = crate::sync::lock(&CONFIGURING);
    if state::installed().is_some() {
        return Err(Error::AlreadyConfigured);
    }
    let (state, pipeline) = build(config)?;
    if let Some(dispatch) = &state.dispatch {
        tracing::dispatcher::set_global_default(dispatch.clone())
            .map_err(|e| Error::SubscriberAlreadySet(Box::new(e)))?;
        // `log` records from libraries become tracing events, correlated like the rest. Another
        // `log` logger may already be installed; that is not fatal.
        if tracing_log::LogTracer::init().is_err() {
            report_once("log-tracer", &|| {
                "a `log` logger is already installed; records of the `log` crate will not be correlated".into()
            });
        }
    }
    if let Some(tp) = &state.tracer_provider {
        opentelemetry::global::set_tracer_provider(tp.clone());
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
    }
    if let Some(mp) = &state.meter_provider {
        opentelemetry::global::set_meter_provider(mp.clone());
    }
    if !state::install(state) {
        return Err(Error::AlreadyConfigured);
    }
    crate::registry::register_pending_observables();
    Ok(TelemetryGuard::new(pipeline))
}

fn build(mut config: TelemetryConfig) -> Result<(State, Pipeline), Error> {
    if let Some(err) = config.env_error.take() {
        return Err(err);
    }
    let shutdown_timeout = config.resolved_shutdown_timeout();
    if config.is_disabled() {
        let pipeline = Pipeline {
            file: None,
            logger_provider: None,
            exports: Default::default(),
            shutdown_timeout,
        };
        let mut state = State::disabled();
        state.propagators = config.propagators();
        return Ok((state, pipeline));
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
    let filter = log_filter(filter_setting, directives)?;

    let file = match &config.log_file {
        Some(file) if file.path.is_none() => {
            return Err(Error::InvalidSetting {
                setting: "TelemetryConfig::with_log_rotation / with_max_log_files",
                value: "no log file".into(),
                accepted:
                    "a log file path set with TelemetryConfig::with_log_file(\"logs/app.log\")",
            })
        }
        Some(file) => Some(crate::logfile::open(file)?),
        None => None,
    };
    // Log records and span records go to the same JSON sinks: the application's own and
    // the file.
    let mut json = std::mem::take(&mut config.json_sinks);
    if let Some(file) = &file {
        let file = file.clone();
        json.push(Arc::new(move |line: &str| file.write_line(line.as_bytes())));
    }
    let resource = config.resource();
    let service = crate::config::service_name(&resource);

    let mut tracer_builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_sampler(sampler.to_sdk());
    if !json.is_empty() {
        tracer_builder =
            tracer_builder.with_span_processor(SpanRecordProcessor::new(json.clone(), &service));
    }
    for processor in std::mem::take(&mut config.span_processors) {
        tracer_builder = tracer_builder.with_span_processor(processor);
    }
    let mut meter_builder = SdkMeterProvider::builder().with_resource(resource.clone());
    if let Some(limit) = config.cardinality_limit {
        if !(1..=1_000_000).contains(&limit) {
            return Err(Error::InvalidSetting {
                setting: "TelemetryConfig::with_metric_cardinality_limit",
                value: limit.to_string(),
                accepted: "a number of attribute sets per instrument from 1 to 1000000",
            });
        }
        // Every instrument but the crate's own counter of drops, whose series are few and
        // fixed, and must stay readable whatever the limit.
        meter_builder =
            meter_builder.with_view(move |i: &opentelemetry_sdk::metrics::Instrument| {
                if i.scope().name() == crate::export::SELF_SCOPE && i.name() == "unitel.dropped" {
                    return None;
                }
                opentelemetry_sdk::metrics::Stream::builder()
                    .with_cardinality_limit(limit)
                    .build()
                    .ok()
            });
    }
    crate::metrics::set_cardinality_limit(
        config
            .cardinality_limit
            .unwrap_or(crate::metrics::DEFAULT_CARDINALITY_LIMIT),
    );
    crate::registry::exemplars::set_enabled(config.exemplars.unwrap_or(true));
    for reader in std::mem::take(&mut config.metric_readers) {
        meter_builder = meter_builder.with_reader(reader);
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

    let extras = config.tracing_span_extras;
    let otel_layer = {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::Layer as _;
        tracing_opentelemetry::layer()
            .with_tracer(tracer_provider.tracer(TRACING_SCOPE))
            .with_error_records_to_exceptions(true)
            .with_location(extras)
            .with_threads(extras)
            .with_tracked_inactivity(extras)
            .with_filter(SpanEvents { all: extras })
    };
    let subscriber = tracing_subscriber::registry()
        .with(Suppressed)
        .with(filter)
        .with(otel_layer)
        .with(EventLayer::default());

    let logger_provider = exports.logger_provider.take();
    let logs = LogOutputs {
        console: config.console_enabled() || exports.console_logs,
        json,
        service: crate::logfile::encode_service(&service),
        otel: logger_provider.as_ref().map(|provider| {
            use opentelemetry::logs::LoggerProvider as _;
            provider.logger("unitel")
        }),
    };
    let mut state = State::running(
        tracer_provider,
        meter_provider,
        logs,
        Dispatch::new(subscriber),
    );
    state.prometheus_addr = exports.prometheus_addr.take();
    state.propagators = config.propagators();
    let pipeline = Pipeline {
        file,
        logger_provider,
        exports,
        shutdown_timeout,
    };
    Ok((state, pipeline))
}

/// Turns `tracing` off on threads where OpenTelemetry telemetry is suppressed: the export
/// runtime and the SDK's batch threads. The exporter stack's own events (hyper, h2, rustls,
/// tonic, at DEBUG and TRACE) therefore never reach the console, the log file or a collector,
/// whatever `RUST_LOG` says, and cannot feed back into the export they describe.
///
/// It sits under the level filter, so a callsite the filter turns off stays off for good; only
/// enabled callsites pay the one thread-local read.
#[derive(Debug, Clone, Copy)]
struct Suppressed;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Suppressed {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(
        &self,
        _: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        !opentelemetry::Context::is_current_telemetry_suppressed()
    }
}

/// Which events tracing-opentelemetry copies onto their span as span events: all of them with
/// [`TelemetryConfig::with_tracing_span_extras`], otherwise only ERROR events (they mark the
/// span as failed). Spans always pass. Every event is still a log record (the `EventLayer`).
#[derive(Debug, Clone, Copy)]
struct SpanEvents {
    all: bool,
}

impl SpanEvents {
    fn wants(self, meta: &tracing::Metadata<'_>) -> bool {
        self.all || !meta.is_event() || *meta.level() == tracing::Level::ERROR
    }
}

impl<S> tracing_subscriber::layer::Filter<S> for SpanEvents {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        self.wants(meta)
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.wants(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
}

/// The level filter: an [`EnvFilter`], told of spans only when a directive names one
/// (`[span]`, `[{field}]`). Otherwise it does not need them, and `EnvFilter` would still take
/// a lock on every new, entered, exited and closed span.
#[derive(Debug)]
struct LogLevelFilter {
    filter: EnvFilter,
    spans: bool,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogLevelFilter {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing_subscriber::Layer::<S>::register_callsite(&self.filter, meta)
    }

    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        cx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        tracing_subscriber::Layer::<S>::enabled(&self.filter, meta, cx)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        tracing_subscriber::Layer::<S>::max_level_hint(&self.filter)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        cx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if self.spans {
            self.filter.on_new_span(attrs, id, cx);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        cx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if self.spans {
            self.filter.on_record(id, values, cx);
        }
    }

    fn on_enter(&self, id: &tracing::span::Id, cx: tracing_subscriber::layer::Context<'_, S>) {
        if self.spans {
            self.filter.on_enter(id, cx);
        }
    }

    fn on_exit(&self, id: &tracing::span::Id, cx: tracing_subscriber::layer::Context<'_, S>) {
        if self.spans {
            self.filter.on_exit(id, cx);
        }
    }

    fn on_close(&self, id: tracing::span::Id, cx: tracing_subscriber::layer::Context<'_, S>) {
        if self.spans {
            self.filter.on_close(id, cx);
        }
    }
}

/// Parses `RUST_LOG`-syntax `directives` given by `setting`, stricter than `EnvFilter`: each
/// directive is trimmed, and a bare directive (no `=`) must be a level (`info`, `WARN`, `3`)
/// or plainly a target (`my_crate::db`, `[span]`). `EnvFilter` alone reads `garbage` or
/// `  info  ` as a target at TRACE, which silently turns off every other log line.
fn log_filter(setting: &'static str, directives: &str) -> Result<LogLevelFilter, Error> {
    use tracing_subscriber::filter::{LevelFilter, ParseError};
    let invalid = |source: ParseError| Error::InvalidLogFilter {
        setting,
        value: directives.to_owned(),
        source,
    };
    let trimmed: Vec<&str> = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    for directive in &trimmed {
        let plain_target =
            directive.contains('=') || directive.contains("::") || directive.contains('[');
        if !plain_target {
            directive
                .parse::<LevelFilter>()
                .map_err(|e| invalid(ParseError::from(e)))?;
        }
    }
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(trimmed.join(","))
        .map_err(invalid)?;
    Ok(LogLevelFilter {
        filter,
        // Span names and field values are both written in brackets.
        spans: directives.contains('['),
    })
}
