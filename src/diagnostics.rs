//! The crate's own diagnostics: counts of what was dropped and why, and once-only messages.
//!
//! Bad input never fails a recording call. It is dropped, counted here, and described once on
//! standard error (never through `tracing`, so a diagnostic cannot loop back into telemetry).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The kind of telemetry that was dropped.
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

/// Why telemetry was dropped.
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
    pub(crate) const ALL: [DropReason; 4] = [
        DropReason::InvalidInput,
        DropReason::QueueFull,
        DropReason::ExportFailed,
        DropReason::CallbackPanicked,
    ];

    /// The label used in metrics and messages: `invalid_input`, `queue_full`, `export_failed`,
    /// `callback_panicked`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::InvalidInput => "invalid_input",
            DropReason::QueueFull => "queue_full",
            DropReason::ExportFailed => "export_failed",
            DropReason::CallbackPanicked => "callback_panicked",
        }
    }
}

const SIGNALS: usize = 3;
const REASONS: usize = DropReason::ALL.len();

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ROW: [AtomicU64; REASONS] = [ZERO; REASONS];
static DROPPED: [[AtomicU64; REASONS]; SIGNALS] = [ROW; SIGNALS];

fn slot(signal: Signal, reason: DropReason) -> &'static AtomicU64 {
    &DROPPED[signal as usize][reason as usize]
}

/// How many items of `signal` were dropped for `reason` since the process started.
pub fn dropped(signal: Signal, reason: DropReason) -> u64 {
    slot(signal, reason).load(Ordering::Relaxed)
}

/// Counts `n` dropped items and, the first time `reported` is seen unset, describes the
/// problem on standard error. For the paths that drop under load (full queues, failed exports):
/// each call site owns its `reported` flag, so there is no lock and no allocation per drop.
#[cold]
pub(crate) fn drop_counted(
    signal: Signal,
    reason: DropReason,
    n: u64,
    reported: &std::sync::atomic::AtomicBool,
    message: &dyn Fn() -> String,
) {
    slot(signal, reason).fetch_add(n, Ordering::Relaxed);
    if !reported.load(Ordering::Relaxed) && !reported.swap(true, Ordering::Relaxed) {
        eprintln!("unitel: {} (reported once)", message());
    }
}

/// Counts one dropped item and describes the problem on standard error the first time this
/// `key` is seen (bad input, where the key names the instrument or value at fault).
#[cold]
pub(crate) fn drop_once(
    signal: Signal,
    reason: DropReason,
    key: &str,
    message: &dyn Fn() -> String,
) {
    slot(signal, reason).fetch_add(1, Ordering::Relaxed);
    report_once(key, message);
}

/// Prints `message` to standard error once per `key` for the life of the process.
#[cold]
pub(crate) fn report_once(key: &str, message: &dyn Fn() -> String) {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut seen = crate::sync::lock(&SEEN);
    let seen = seen.get_or_insert_with(HashSet::new);
    // Bounded: past this many distinct problems, stay quiet rather than grow.
    if seen.len() < 1024 && seen.insert(key.to_owned()) {
        eprintln!("unitel: {} (reported once)", message());
    }
}
