//! The JSON log file: its format, written and read back (`docs/log-format.md`, below).
//!
//! One JSON object per line, of two kinds told apart by `type`: a log record per log event and
//! a span record per closed span, so a whole trace can be rebuilt from the files alone. This
//! module is the one place that format lives (`docs/log-format.md` describes it):
//!
//! - writing: every record goes through one encoder and one set of sinks — the log file,
//!   behind a batching non-blocking writer, and any sink added with
//!   [`TelemetryConfig::with_json_sink`](crate::TelemetryConfig::with_json_sink);
//! - reading: [`parse_line`] turns a line into a typed [`Record`], [`log_files`] finds a
//!   log's files (rotated ones included) in name order, and [`read_records`] does both.
//!

#![doc = include_str!("../../docs/log-format.md")]

mod encode;
mod files;
mod read;
mod records;
mod rolling;
mod scan;
mod sink;
mod span_records;

pub use self::files::log_files;
pub use self::read::{parse_line, read_records};
pub use self::records::{
    format_timestamp, parse_timestamp, ErrorRecord, LogRecord, Record, SpanEventRecord, SpanRecord,
};
pub use self::scan::{decompressed, open_log_file, LineScan, ScanSummary, MAX_LINE_BYTES};

pub(crate) use self::encode::{encode_service, write_log};
pub(crate) use self::files::open;
pub(crate) use self::sink::FileSink;
pub(crate) use self::span_records::SpanRecordProcessor;

#[cfg(test)]
mod tests;
