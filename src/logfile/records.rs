//! The records of the log file, typed: what a reader gets back from a line.

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use serde_json::{Map, Value};
use std::time::{Duration, SystemTime};
use tracing::Level;

/// One line of the log file: a log record or a span record. Read with
/// [`read_records`](super::read_records) or [`parse_line`](super::parse_line) (examples there).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Record {
    /// A log event (`"type":"log"`).
    Log(LogRecord),
    /// A closed span (`"type":"span"`).
    Span(SpanRecord),
}

impl Record {
    /// The service that wrote it, when the record says.
    pub fn service(&self) -> Option<&str> {
        match self {
            Record::Log(log) => log.service.as_deref(),
            Record::Span(span) => span.service.as_deref(),
        }
    }

    /// The trace the record belongs to (a log record outside any span has none).
    pub fn trace_id(&self) -> Option<TraceId> {
        match self {
            Record::Log(log) => log.trace_id,
            Record::Span(span) => Some(span.trace_id),
        }
    }

    /// When it was written: the event's time, or the span's end.
    pub fn timestamp(&self) -> SystemTime {
        match self {
            Record::Log(log) => log.timestamp,
            Record::Span(span) => span.end_time,
        }
    }

    /// The log record, if it is one.
    pub fn as_log(&self) -> Option<&LogRecord> {
        match self {
            Record::Log(log) => Some(log),
            Record::Span(_) => None,
        }
    }

    /// The span record, if it is one.
    pub fn as_span(&self) -> Option<&SpanRecord> {
        match self {
            Record::Span(span) => Some(span),
            Record::Log(_) => None,
        }
    }
}

/// A log event: the facade's `log_*` calls, `tracing` events and `log` records
/// (example: [`parse_line`](super::parse_line)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LogRecord {
    /// When the event happened.
    pub timestamp: SystemTime,
    /// The service that wrote it (the resource's `service.name`); `None` in files written
    /// before records carried it.
    pub service: Option<String>,
    /// Its level.
    pub level: Level,
    /// The `tracing` target; for the facade's logs, the component.
    pub target: String,
    /// The facade's component; for `tracing` and `log` events, their target.
    pub component: String,
    /// The message.
    pub message: String,
    /// The trace it happened in; `None` outside any span.
    pub trace_id: Option<TraceId>,
    /// The span it happened in; `None` outside any span.
    pub span_id: Option<SpanId>,
    /// The event's own fields.
    pub fields: Map<String, Value>,
    /// The error recorded with it, if any.
    pub error: Option<ErrorRecord>,
}

/// An error recorded with a log event (by
/// [`log_error_with_cause`](crate::UnifiedTelemetry::log_error_with_cause), example there):
/// its message and its `source()` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorRecord {
    /// The error's `Display`.
    pub message: String,
    /// Its causes, outermost first.
    pub causes: Vec<String>,
}

/// A closed span (example: [`read_records`](super::read_records)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SpanRecord {
    /// The service that wrote it (the resource's `service.name`); `None` in files written
    /// before records carried it.
    pub service: Option<String>,
    /// The span name.
    pub name: String,
    /// The facade component that made it; for a `tracing` span, its target.
    pub component: String,
    /// Its trace.
    pub trace_id: TraceId,
    /// Its id.
    pub span_id: SpanId,
    /// Its parent's id; `None` for a root span. The parent may live in another process.
    pub parent_span_id: Option<SpanId>,
    /// Its kind.
    pub kind: SpanKind,
    /// When it started.
    pub start_time: SystemTime,
    /// When it ended (the record's `timestamp`).
    pub end_time: SystemTime,
    /// How long it lasted.
    pub duration: Duration,
    /// Its status, with the error description when it failed.
    pub status: Status,
    /// Its attributes.
    pub attributes: Map<String, Value>,
    /// Its events, in order.
    pub events: Vec<SpanEventRecord>,
}

/// An event recorded on a span ([`add_event`](crate::SpanRef::add_event);
/// [`record_error`](crate::SpanRef::record_error) adds one named `exception`). Example of both:
/// [`Span`](crate::Span).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SpanEventRecord {
    /// The event name.
    pub name: String,
    /// When it happened.
    pub timestamp: SystemTime,
    /// Its attributes.
    pub attributes: Map<String, Value>,
}

/// Parses a timestamp as the format writes it: RFC 3339 in UTC
/// (`2026-11-21T05:23:30.123481Z`, with any number of fractional digits, or none).
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    crate::format::time::parse_rfc3339(text)
}

/// Writes a time as the format does: `2026-11-21T05:23:30.123481Z`.
pub fn format_timestamp(time: SystemTime) -> String {
    let mut out = String::with_capacity(27);
    crate::format::time::write_rfc3339(&mut out, time);
    out
}
