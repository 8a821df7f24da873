//! The crate's one public error type.

use crate::diagnostics::{DropReason, Output, Signal};
use std::path::PathBuf;

/// Everything that can go wrong while configuring or shutting down telemetry, or reading its
/// log files back.
///
/// Recording calls (spans, metrics, logs) never return errors: bad input there is dropped,
/// counted (see [`dropped`](crate::dropped)) and reported once.
///
/// The message says what is wrong and what would be accepted, and the underlying error is
/// kept as [`source()`](std::error::Error::source); the variants let a program react:
///
/// ```
/// use unitel::{Error, TelemetryConfig};
///
/// // As if the deployment had set OTEL_TRACES_SAMPLER=sometimes:
/// let config = TelemetryConfig::from_vars([("OTEL_TRACES_SAMPLER", "sometimes")]);
/// let err = unitel::configure_telemetry(config).unwrap_err();
/// assert!(matches!(err, Error::InvalidEnv { variable: "OTEL_TRACES_SAMPLER", .. }));
/// eprintln!("{err}"); // OTEL_TRACES_SAMPLER="sometimes" is not valid: expected one of always_on, ...
/// # assert!(err.to_string().starts_with(r#"OTEL_TRACES_SAMPLER="sometimes" is not valid: expected one of always_on"#), "{err}");
/// ```
///
/// What shutdown could not deliver is [`Error::Shutdown`], with one [`Lost`] entry per
/// signal, output and reason (example: [`TelemetryGuard`](crate::TelemetryGuard)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable holds a value that is not accepted.
    #[error("{variable}={value:?} is not valid: expected {accepted}")]
    InvalidEnv {
        /// The variable's name, e.g. `OTEL_TRACES_SAMPLER`.
        variable: &'static str,
        /// The value that was found.
        value: String,
        /// What would have been accepted.
        accepted: &'static str,
    },
    /// A builder setting holds a value that is not accepted.
    #[error("{setting}: {value:?} is not valid: expected {accepted}")]
    InvalidSetting {
        /// The builder method, e.g. `TelemetryConfig::with_sampler`.
        setting: &'static str,
        /// The value that was given.
        value: String,
        /// What would have been accepted.
        accepted: &'static str,
    },
    /// The log filter directives do not parse.
    #[error("{setting}: invalid log filter directives {value:?} (RUST_LOG syntax, e.g. \"info,my_crate=debug\")")]
    InvalidLogFilter {
        /// `RUST_LOG` or `TelemetryConfig::with_log_filter`.
        setting: &'static str,
        /// The directives that were given.
        value: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The JSON log file cannot be created or written.
    #[error("TelemetryConfig::with_log_file: cannot write log files in {}: check the directory exists or can be created and is writable", directory.display())]
    LogFile {
        /// The directory the log files go to.
        directory: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// An exporter could not be built (bad endpoint, TLS setup, no thread for its runtime).
    #[error(
        "cannot build the {signal} exporter: check the OTLP endpoint, protocol and TLS settings"
    )]
    Exporter {
        /// `traces`, `metrics`, `logs`, or `all`.
        signal: &'static str,
        /// The exporter's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A TLS file (the CA certificate, the client certificate or its key) cannot be read or
    /// used.
    #[error("{setting}={}: the file {problem}", path.display())]
    Tls {
        /// The variable or builder method that named the file, e.g.
        /// `OTEL_EXPORTER_OTLP_CERTIFICATE`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it and what is expected.
        problem: String,
        /// What the file system said, when the file cannot be read.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The Prometheus endpoint cannot listen on its address.
    #[error("TelemetryConfig::with_prometheus: cannot listen on {addr}: is the port taken? use another address, or port 0 for any free port")]
    Prometheus {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A setting needs a cargo feature that is not enabled.
    #[error("{setting} needs the `{feature}` feature of unitel: enable it in Cargo.toml")]
    FeatureDisabled {
        /// The feature, e.g. `otlp`.
        feature: &'static str,
        /// The setting that asked for it.
        setting: &'static str,
    },
    /// `configure_telemetry` ran before in this process; telemetry is configured once.
    #[error("configure_telemetry was already called in this process: configure telemetry once, at start-up, and keep the guard")]
    AlreadyConfigured,
    /// Another global `tracing` subscriber or `log` logger is already installed.
    #[error("a global tracing subscriber is already installed: unitel installs its own; remove the other `set_global_default`/`init()` call")]
    SubscriberAlreadySet(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// `shutdown` was called on a guard that had already shut down.
    #[error("telemetry was already shut down")]
    AlreadyShutDown,
    /// Shutdown did not deliver everything: data was lost while it ran, it ran out of its
    /// timeout, or an exporter failed. Every lost item is also counted in
    /// [`dropped_at`](crate::dropped_at).
    ///
    /// Its message names each signal that lost data, with counts and causes, e.g. `shutdown
    /// lost data: spans: 2006 still queued for export at the 5s timeout, 12 failed to export
    /// (connection refused); logs: ...`.
    #[error("{}", shutdown_message(*timeout, *timed_out, lost, failures))]
    Shutdown {
        /// The shutdown timeout.
        timeout: std::time::Duration,
        /// Whether shutdown ran out of its timeout before everything was flushed and closed.
        timed_out: bool,
        /// What was lost while shutting down: one entry per signal, output and reason.
        lost: Vec<Lost>,
        /// What went wrong for a signal that lost nothing counted, e.g. `(Signal::Metrics,
        /// ShutdownFailure::StillFlushing)`: a metric export still running at the timeout.
        failures: Vec<(Signal, ShutdownFailure)>,
    },
    /// A line is not a record of the log-file format (`docs/log-format.md`).
    #[error("not a unitel log record: {reason}")]
    InvalidRecord {
        /// What is wrong with it: which key is missing or holds what.
        reason: String,
        /// The JSON parser's complaint, when the line is not JSON.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A log file cannot be read, or one of its lines is not a record.
    #[error("cannot read the log file {}{}", path.display(), line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    ReadLogFile {
        /// The file (or directory) being read.
        path: PathBuf,
        /// The 1-based line at fault, when it is a line.
        line: Option<usize>,
        /// What went wrong: an I/O error or [`Error::InvalidRecord`].
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// Items of one signal lost at shutdown by one output for one reason: an entry of
/// [`Error::Shutdown`], and what [`dropped_at`](crate::dropped_at)`(output, signal, reason)`
/// grew by while shutting down. Example: [`TelemetryGuard`](crate::TelemetryGuard).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lost {
    /// Spans, metric data points or log records.
    pub signal: Signal,
    /// The output that lost them: [`Output::Otlp`] or [`Output::LogFile`].
    pub output: Output,
    /// Why: [`DropReason::ShutdownTimeout`] (still queued when the timeout ran out),
    /// [`DropReason::ExportFailed`], [`DropReason::WriteFailed`], ...
    pub reason: DropReason,
    /// How many items.
    pub count: u64,
    /// What the exporter or the file system said, when known.
    pub cause: Option<String>,
}

impl Lost {
    /// `2006 still queued for export at the 5s timeout`, `12 failed to export (cause)`.
    fn describe(&self, timeout: std::time::Duration) -> String {
        let what = match (self.reason, self.output) {
            (DropReason::ShutdownTimeout, Output::Otlp) => {
                format!("still queued for export at the {timeout:?} timeout")
            }
            (DropReason::ShutdownTimeout, Output::LogFile) => {
                format!("still queued for the log file at the {timeout:?} timeout")
            }
            (DropReason::ExportFailed, _) => "failed to export".to_owned(),
            (DropReason::WriteFailed, _) => "could not be written to the log file".to_owned(),
            (DropReason::QueueFull, output) => {
                format!("dropped at the full {} queue", output.as_str())
            }
            (reason, output) => format!("dropped by {} ({})", output.as_str(), reason.as_str()),
        };
        match &self.cause {
            Some(cause) => format!("{} {what} ({cause})", self.count),
            None => format!("{} {what}", self.count),
        }
    }
}

/// How shutting one signal's exporter down went wrong, when it lost nothing counted: an entry
/// of [`Error::Shutdown`]'s `failures` (example of handling that error:
/// [`TelemetryGuard`](crate::TelemetryGuard)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownFailure {
    /// It was still flushing when the shutdown timeout ran out (a metric export still running
    /// is not a queue, so its data points are not counted).
    #[error("still flushing at the shutdown timeout")]
    StillFlushing,
    /// It failed: the SDK's error.
    #[error("failed to flush")]
    Failed(#[source] opentelemetry_sdk::error::OTelSdkError),
}

/// [`Error::Shutdown`]'s message: each signal that lost data, then failures that lost nothing
/// counted, then the timeout if nothing else says it. The failures' causes are written out:
/// one error cannot hold several as its `source()`.
fn shutdown_message(
    timeout: std::time::Duration,
    timed_out: bool,
    lost: &[Lost],
    failures: &[(Signal, ShutdownFailure)],
) -> String {
    let mut parts = Vec::new();
    for signal in [Signal::Spans, Signal::Metrics, Signal::Logs] {
        let losses: Vec<String> = lost
            .iter()
            .filter(|l| l.signal == signal)
            .map(|l| l.describe(timeout))
            .collect();
        if !losses.is_empty() {
            parts.push(format!("{}: {}", signal.as_str(), losses.join(", ")));
        }
    }
    for (signal, failure) in failures {
        let what = match failure {
            ShutdownFailure::StillFlushing => format!("still flushing at the {timeout:?} timeout"),
            ShutdownFailure::Failed(err) => format!("failed to flush ({err})"),
        };
        parts.push(format!("{}: {what}", signal.as_str()));
    }
    let says_timeout = lost.iter().any(|l| l.reason == DropReason::ShutdownTimeout)
        || failures
            .iter()
            .any(|(_, f)| matches!(f, ShutdownFailure::StillFlushing));
    let mut message = if lost.is_empty() {
        "telemetry shutdown".to_owned()
    } else {
        "shutdown lost data".to_owned()
    };
    if !parts.is_empty() {
        message.push_str(": ");
        message.push_str(&parts.join("; "));
    }
    if timed_out && !says_timeout {
        message.push_str(&format!(
            "{}did not finish within the {timeout:?} timeout; what was still being flushed was dropped",
            if parts.is_empty() { " " } else { "; " }
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lost(signal: Signal, output: Output, reason: DropReason, n: u64) -> Lost {
        Lost {
            signal,
            output,
            reason,
            count: n,
            cause: None,
        }
    }

    #[test]
    fn the_shutdown_message_names_each_signal_with_counts_and_causes() {
        let mut failed = lost(Signal::Spans, Output::Otlp, DropReason::ExportFailed, 12);
        failed.cause = Some("connection refused".into());
        let err = Error::Shutdown {
            timeout: Duration::from_secs(5),
            timed_out: true,
            lost: vec![
                lost(
                    Signal::Logs,
                    Output::Otlp,
                    DropReason::ShutdownTimeout,
                    1536,
                ),
                lost(
                    Signal::Spans,
                    Output::Otlp,
                    DropReason::ShutdownTimeout,
                    2006,
                ),
                failed,
                lost(Signal::Logs, Output::LogFile, DropReason::WriteFailed, 3),
            ],
            failures: vec![(Signal::Metrics, ShutdownFailure::StillFlushing)],
        };
        assert_eq!(
            err.to_string(),
            "shutdown lost data: spans: 2006 still queued for export at the 5s timeout, \
             12 failed to export (connection refused); logs: 1536 still queued for export at the \
             5s timeout, 3 could not be written to the log file; metrics: still flushing at the 5s timeout"
        );
    }

    #[test]
    fn a_failure_keeps_the_sdk_error_as_its_source_and_the_message_says_it() {
        let failure = ShutdownFailure::Failed(
            opentelemetry_sdk::error::OTelSdkError::InternalFailure("broken pipe".into()),
        );
        let source = std::error::Error::source(&failure).map(|s| s.to_string());
        assert!(source.is_some_and(|s| s.contains("broken pipe")));
        let err = Error::Shutdown {
            timeout: Duration::from_secs(5),
            timed_out: false,
            lost: vec![],
            failures: vec![(Signal::Logs, failure)],
        };
        assert_eq!(
            err.to_string(),
            "telemetry shutdown: logs: failed to flush (Operation failed: broken pipe)"
        );
    }

    #[test]
    fn a_timeout_that_lost_nothing_counted_is_said() {
        let err = Error::Shutdown {
            timeout: Duration::from_millis(300),
            timed_out: true,
            lost: vec![],
            failures: vec![],
        };
        assert_eq!(
            err.to_string(),
            "telemetry shutdown did not finish within the 300ms timeout; what was still being \
             flushed was dropped"
        );
    }
}
