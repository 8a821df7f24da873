//! Correlated logs: one [`Record`] shape for the facade's `log_*` calls and for `tracing`
//! events, written to the console (text), the JSON file and the test capture.

pub(crate) mod file;
pub(crate) mod layer;
mod otel;
pub(crate) mod record;

pub(crate) use self::otel::OtelLogs;
pub(crate) use self::record::{with_scratch, FieldValue, Record, Scratch};

use crate::testing::CaptureSinks;
use std::io::Write;
use std::sync::Arc;

/// Where log records go.
#[derive(Debug)]
pub(crate) struct LogOutputs {
    pub(crate) console: bool,
    pub(crate) file: Option<Arc<file::FileSink>>,
    pub(crate) capture: Option<CaptureSinks>,
    /// OTLP log export.
    pub(crate) otel: Option<otel::OtelLogs>,
}

impl LogOutputs {
    /// Formats once per output kind and writes. Never blocks on the file (lines are batched in
    /// front of the non-blocking writer, and dropped and counted if it falls far behind).
    pub(crate) fn emit(&self, record: &Record<'_>, scratch: &mut Scratch) {
        if self.console {
            scratch.out.clear();
            record::format_console(record, scratch);
            let _ = std::io::stdout().lock().write_all(scratch.out.as_bytes());
        }
        if self.file.is_some() || self.capture.is_some() {
            scratch.out.clear();
            record::format_json(record, scratch);
            if let Some(file) = &self.file {
                file.write_line(scratch.out.as_bytes());
            }
            if let Some(capture) = &self.capture {
                capture.push_line(&scratch.out);
            }
        }
        if let Some(otel) = &self.otel {
            otel.emit(record, scratch);
        }
    }
}
