//! The running state every signal reads: installed once by `configure_telemetry`, read on every
//! recording call.
//!
//! [`active`] is the whole cost of a call while telemetry is not running: one atomic load and a
//! branch. This module imports nothing of the crate, so every signal can read it without
//! knowing how the pipeline was built.

use opentelemetry_sdk::logs::SdkLogger;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tracing::Dispatch;

static STATE: OnceLock<State> = OnceLock::new();

/// What the signals need of the running pipeline.
#[derive(Debug)]
pub(crate) struct State {
    /// Configured with telemetry disabled: nothing is ever recorded in this process.
    pub(crate) disabled: bool,
    shut_down: AtomicBool,
    pub(crate) tracer_provider: Option<SdkTracerProvider>,
    pub(crate) meter_provider: Option<SdkMeterProvider>,
    pub(crate) logs: LogOutputs,
    /// The `tracing` dispatcher, asked which log levels its filter lets through.
    pub(crate) dispatch: Option<Dispatch>,
    /// Where `/metrics` is served, when it is (then `prometheus_text()` answers too).
    pub(crate) prometheus_addr: Option<std::net::SocketAddr>,
    /// Which contexts cross process boundaries (`OTEL_PROPAGATORS`).
    pub(crate) propagators: Propagators,
}

/// The propagators in use: W3C Trace Context and W3C Baggage, both on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Propagators {
    pub(crate) trace_context: bool,
    pub(crate) baggage: bool,
}

impl Default for Propagators {
    fn default() -> Self {
        Propagators {
            trace_context: true,
            baggage: true,
        }
    }
}

/// The propagators of the installed state; both before `configure_telemetry` runs, so a
/// process that only forwards contexts needs no configuration.
#[inline]
pub(crate) fn propagators() -> Propagators {
    STATE.get().map(|s| s.propagators).unwrap_or_default()
}

impl State {
    /// A state in which nothing is recorded (`OTEL_SDK_DISABLED`).
    pub(crate) fn disabled() -> State {
        State {
            disabled: true,
            shut_down: AtomicBool::new(false),
            tracer_provider: None,
            meter_provider: None,
            logs: LogOutputs::default(),
            dispatch: None,
            prometheus_addr: None,
            propagators: Propagators::default(),
        }
    }

    /// A running state.
    pub(crate) fn running(
        tracer_provider: SdkTracerProvider,
        meter_provider: SdkMeterProvider,
        logs: LogOutputs,
        dispatch: Dispatch,
    ) -> State {
        State {
            disabled: false,
            tracer_provider: Some(tracer_provider),
            meter_provider: Some(meter_provider),
            logs,
            dispatch: Some(dispatch),
            ..State::disabled()
        }
    }

    /// Stops recording; `false` if it had already stopped.
    pub(crate) fn stop(&self) -> bool {
        !self.shut_down.swap(true, Ordering::AcqRel)
    }

    /// Whether recording has stopped (shutdown began).
    pub(crate) fn is_stopped(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }
}

/// Where log records go.
#[derive(Debug, Default)]
pub(crate) struct LogOutputs {
    /// Human-readable lines on standard output.
    pub(crate) console: bool,
    /// JSON lines (the log file, and sinks added with `with_json_sink`).
    pub(crate) json: JsonSinks,
    /// The `service` every JSON record carries (the resource's `service.name`), already
    /// JSON-encoded (`"orders"`, quoted and escaped) so records copy it as it is.
    pub(crate) service: Box<str>,
    /// OTLP log export.
    pub(crate) otel: Option<SdkLogger>,
}

/// A receiver of whole JSON lines (each with its newline).
pub(crate) type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The receivers of JSON lines, log records and span records alike. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct JsonSinks(Vec<LineSink>);

impl JsonSinks {
    pub(crate) fn new(sinks: Vec<LineSink>) -> Self {
        JsonSinks(sinks)
    }

    /// Adds a sink.
    pub(crate) fn push(&mut self, sink: LineSink) {
        self.0.push(sink);
    }

    /// Whether a line would go anywhere (formatting can be skipped when not).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands `line` to every sink.
    #[inline]
    pub(crate) fn write(&self, line: &str) {
        for sink in &self.0 {
            sink(line);
        }
    }
}

impl std::fmt::Debug for JsonSinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonSinks({})", self.0.len())
    }
}

/// Installs the state for the rest of the process; `false` if one is installed already.
pub(crate) fn install(state: State) -> bool {
    STATE.set(state).is_ok()
}

/// The installed state, running or not.
pub(crate) fn installed() -> Option<&'static State> {
    STATE.get()
}

/// The running state, or `None` when not configured, disabled or shut down. One atomic load
/// and a branch: the whole cost of a disabled call.
#[inline]
pub(crate) fn active() -> Option<&'static State> {
    let s = STATE.get()?;
    (!s.disabled && !s.shut_down.load(Ordering::Relaxed)).then_some(s)
}

/// Configured with telemetry disabled: nothing will ever be recorded in this process.
#[inline]
pub(crate) fn is_disabled() -> bool {
    STATE.get().is_some_and(|s| s.disabled)
}

/// The log outputs of the running state.
#[inline]
pub(crate) fn active_logs() -> Option<&'static LogOutputs> {
    active().map(|s| &s.logs)
}
