//! The crate's own diagnostics: counts of what was dropped and why, and once-only messages.
//!
//! Bad input never fails a recording call. It is dropped, counted here, and described once on
//! standard error (never through `tracing`, so a diagnostic cannot loop back into telemetry).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The kind of telemetry that was dropped (example: [`dropped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// Spans.
    Spans,
    /// Metric measurements.
    Metrics,
    /// Log records.
    Logs,
}

/// Why telemetry was dropped (example: [`dropped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The value was not acceptable: NaN, an infinity, a negative histogram value, an
    /// instrument name the SDK rejects.
    InvalidInput,
    /// A bounded queue was full (the log file writer, an export queue).
    QueueFull,
    /// The exporter failed to deliver it.
    ExportFailed,
    /// An observable instrument's callback panicked: that collection has no value for the
    /// instrument (counted once per panic). Every other instrument is still collected.
    CallbackPanicked,
    /// Writing failed: the log file's disk is full, or the file could not be written or
    /// reopened.
    WriteFailed,
    /// Still queued when shutdown's timeout ran out (a collector that never answers, a log
    /// file nothing reads).
    ShutdownTimeout,
    /// A metric instrument reached its cardinality limit: measurements with new attribute
    /// sets are folded into one series marked `otel.metric.overflow`.
    CardinalityLimit,
    /// Two instruments or series would share one name in an output (a gauge asked for under a
    /// counter's name; two keys equal once made valid Prometheus names): the later one is
    /// not exported there.
    NameConflict,
}

/// Where telemetry was dropped: before any output, or by which output.
///
/// [`dropped`] adds up every output (example there); [`dropped_at`] tells them apart, as does
/// the `output` label of `unitel_dropped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Output {
    /// Before any output: at the recording call (invalid input, a name conflict) or at
    /// collection (a callback's panic, the cardinality limit).
    Pipeline,
    /// An OTLP exporter: its queue, its exports, what shutdown left unsent.
    Otlp,
    /// The JSON log file: its writer's queue, its writes, what shutdown left unwritten.
    LogFile,
    /// The Prometheus exposition: a series that cannot be exposed next to another.
    Prometheus,
}

impl Output {
    /// Every output, in the order `unitel_dropped_total` reports them.
    pub(crate) const ALL: [Output; 4] = [
        Output::Pipeline,
        Output::Otlp,
        Output::LogFile,
        Output::Prometheus,
    ];

    /// The label used in metrics and messages: `pipeline`, `otlp`, `log_file`, `prometheus`.
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Pipeline => "pipeline",
            Output::Otlp => "otlp",
            Output::LogFile => "log_file",
            Output::Prometheus => "prometheus",
        }
    }

    /// Whether this output can drop `signal` for `reason`: `unitel_dropped_total` reports
    /// these even while they are zero, so that `rate()` has a series from the start.
    pub(crate) fn can_drop(self, signal: Signal, reason: DropReason) -> bool {
        let metrics_only = matches!(
            reason,
            DropReason::CallbackPanicked | DropReason::CardinalityLimit | DropReason::NameConflict
        );
        (signal == Signal::Metrics || !metrics_only) && self.reasons().contains(&reason)
    }

    fn reasons(self) -> &'static [DropReason] {
        match self {
            Output::Pipeline => &[
                DropReason::InvalidInput,
                DropReason::CallbackPanicked,
                DropReason::CardinalityLimit,
                DropReason::NameConflict,
            ],
            Output::Otlp => &[
                DropReason::QueueFull,
                DropReason::ExportFailed,
                DropReason::ShutdownTimeout,
            ],
            Output::LogFile => &[
                DropReason::QueueFull,
                DropReason::WriteFailed,
                DropReason::ShutdownTimeout,
            ],
            Output::Prometheus => &[DropReason::NameConflict],
        }
    }
}

impl Signal {
    /// The label used in metrics and messages: `spans`, `metrics`, `logs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Spans => "spans",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

impl Signal {
    /// The OTLP name of the signal, in endpoint paths (`/v1/traces`) and messages.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn otlp_name(self) -> &'static str {
        match self {
            Signal::Spans => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

impl DropReason {
    /// Every reason, in the order `unitel_dropped_total` reports them.
    pub(crate) const ALL: [DropReason; 8] = [
        DropReason::InvalidInput,
        DropReason::QueueFull,
        DropReason::ExportFailed,
        DropReason::CallbackPanicked,
        DropReason::WriteFailed,
        DropReason::ShutdownTimeout,
        DropReason::CardinalityLimit,
        DropReason::NameConflict,
    ];

    /// The label used in metrics and messages: `invalid_input`, `queue_full`, `export_failed`,
    /// `callback_panicked`, `write_failed`, `shutdown_timeout`, `cardinality_limit`,
    /// `name_conflict`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::InvalidInput => "invalid_input",
            DropReason::QueueFull => "queue_full",
            DropReason::ExportFailed => "export_failed",
            DropReason::CallbackPanicked => "callback_panicked",
            DropReason::WriteFailed => "write_failed",
            DropReason::ShutdownTimeout => "shutdown_timeout",
            DropReason::CardinalityLimit => "cardinality_limit",
            DropReason::NameConflict => "name_conflict",
        }
    }
}

const SIGNALS: usize = 3;
const REASONS: usize = DropReason::ALL.len();
const OUTPUTS: usize = Output::ALL.len();

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ROW: [AtomicU64; REASONS] = [ZERO; REASONS];
#[allow(clippy::declare_interior_mutable_const)]
const TABLE: [[AtomicU64; REASONS]; SIGNALS] = [ROW; SIGNALS];
static DROPPED: [[[AtomicU64; REASONS]; SIGNALS]; OUTPUTS] = [TABLE; OUTPUTS];

fn slot(output: Output, signal: Signal, reason: DropReason) -> &'static AtomicU64 {
    &DROPPED[output as usize][signal as usize][reason as usize]
}

/// How many items of `signal` were dropped for `reason` since the process started, by every
/// output together ([`dropped_at`] tells them apart).
///
/// Recording calls never fail: what cannot be recorded is dropped, counted here and described
/// once on standard error. The same counts are the metric `unitel_dropped_total{signal,
/// reason, output}`, for an alert.
///
/// ```
/// use unitel::{dropped, DropReason, Signal};
/// # let _capture = unitel::testing::capture();
///
/// let latency = unitel::get_telemetry("api_gateway").histogram("request_duration_ms");
/// let before = dropped(Signal::Metrics, DropReason::InvalidInput);
/// latency.record(f64::NAN, ()); // a division by zero upstream: dropped, not recorded
/// assert_eq!(dropped(Signal::Metrics, DropReason::InvalidInput), before + 1);
/// ```
pub fn dropped(signal: Signal, reason: DropReason) -> u64 {
    Output::ALL
        .iter()
        .map(|&output| dropped_at(output, signal, reason))
        .sum()
}

/// How many items of `signal` `output` dropped for `reason` since the process started: a log
/// line the file writer could not keep up with is `dropped_at(Output::LogFile, Signal::Logs,
/// DropReason::QueueFull)`, one the OTLP log queue refused is `dropped_at(Output::Otlp, ...)`.
/// Example of the total: [`dropped`].
pub fn dropped_at(output: Output, signal: Signal, reason: DropReason) -> u64 {
    slot(output, signal, reason).load(Ordering::Relaxed)
}

/// Counts `n` dropped items without a word: for losses that something else reports (what
/// shutdown leaves behind is named in its error, or in the guard's one line).
pub(crate) fn count(output: Output, signal: Signal, reason: DropReason, n: u64) {
    slot(output, signal, reason).fetch_add(n, Ordering::Relaxed);
}

/// Counts `n` dropped items and, the first time `reported` is seen unset, describes the
/// problem on standard error. For the paths that drop under load (full queues, failed exports):
/// each call site owns its `reported` flag, so there is no lock and no allocation per drop.
#[cold]
pub(crate) fn drop_counted(
    output: Output,
    signal: Signal,
    reason: DropReason,
    n: u64,
    reported: &std::sync::atomic::AtomicBool,
    message: &dyn Fn() -> String,
) {
    count(output, signal, reason, n);
    if !reported.load(Ordering::Relaxed) && !reported.swap(true, Ordering::Relaxed) {
        eprintln!("unitel: {} (reported once)", message());
    }
}

/// Counts `n` dropped items and describes the problem on standard error the first time this
/// `key` is seen (bad input, where the key names the instrument or value at fault).
#[cold]
pub(crate) fn drop_once(
    output: Output,
    signal: Signal,
    reason: DropReason,
    n: u64,
    key: &str,
    message: &dyn Fn() -> String,
) {
    count(output, signal, reason, n);
    report_once(key, message);
}

/// Counts one dropped item and describes the problem, both only the first time this `key` is
/// seen: for a problem that is one loss however often it is noticed (an instrument past its
/// cardinality limit, seen again at every collection).
#[cold]
pub(crate) fn drop_first(
    output: Output,
    signal: Signal,
    reason: DropReason,
    key: &str,
    message: &dyn Fn() -> String,
) {
    if report_once(key, message) {
        count(output, signal, reason, 1);
    }
}

/// Prints `message` to standard error once per `key` for the life of the process; whether it
/// was printed now.
#[cold]
pub(crate) fn report_once(key: &str, message: &dyn Fn() -> String) -> bool {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut seen = crate::sync::lock(&SEEN);
    let seen = seen.get_or_insert_with(HashSet::new);
    // Bounded: past this many distinct problems, stay quiet rather than grow.
    let first = seen.len() < 1024 && seen.insert(key.to_owned());
    if first {
        eprintln!("unitel: {} (reported once)", message());
    }
    first
}
