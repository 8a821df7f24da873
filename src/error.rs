//! The crate's one public error type.

use std::path::PathBuf;

/// Everything that can go wrong while configuring or shutting down telemetry, or reading its
/// log files back.
///
/// Recording calls (spans, metrics, logs) never return errors: bad input there is dropped,
/// counted (see [`dropped`](crate::dropped)) and reported once.
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
    /// Flushing did not finish within the shutdown timeout; data still queued was lost.
    #[error("telemetry shutdown did not finish within {timeout:?}; data still queued was dropped")]
    ShutdownTimeout {
        /// The timeout that passed.
        timeout: std::time::Duration,
    },
    /// An exporter or processor failed while flushing at shutdown.
    #[error("telemetry shutdown: {what} failed to flush")]
    Shutdown {
        /// Which part failed: `traces`, `metrics` or `logs`.
        what: &'static str,
        /// The SDK's error.
        #[source]
        source: opentelemetry_sdk::error::OTelSdkError,
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
