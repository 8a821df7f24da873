//! Log records for OTLP export, made from the same [`LogEvent`] the console and the file get,
//! so they carry the same trace and span ids (an event's explicit parent included).

use crate::event::{FieldValue, LogEvent, Scratch};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry_sdk::logs::SdkLogger;
use tracing::Level;

/// Hands the event to the OTLP log pipeline through `logger`.
///
/// Events on the exporters' own threads are not exported again: those threads run in
/// OpenTelemetry's suppressed context (the SDK's batch threads, unitel's export runtime), and
/// `SdkLogger::emit` drops records made there, so there is no feedback loop.
pub(super) fn emit(logger: &SdkLogger, record: &LogEvent<'_>, scratch: &Scratch) {
    let mut log = logger.create_log_record();
    log.set_timestamp(record.time);
    log.set_observed_timestamp(record.time);
    let (number, text) = match record.level {
        Level::TRACE => (Severity::Trace, "TRACE"),
        Level::DEBUG => (Severity::Debug, "DEBUG"),
        Level::INFO => (Severity::Info, "INFO"),
        Level::WARN => (Severity::Warn, "WARN"),
        Level::ERROR => (Severity::Error, "ERROR"),
    };
    log.set_severity_number(number);
    log.set_severity_text(text);
    log.set_body(AnyValue::from(scratch.message.clone()));
    // Exported as the instrumentation scope of the record.
    log.set_target(record.component.to_owned());
    for (key, value) in &scratch.fields {
        let key = scratch.text[key.clone()].to_owned();
        let value = match value {
            FieldValue::Str(r) => AnyValue::from(scratch.text[r.clone()].to_owned()),
            FieldValue::I64(v) => AnyValue::Int(*v),
            FieldValue::U64(v) => AnyValue::Int(i64::try_from(*v).unwrap_or(i64::MAX)),
            FieldValue::F64(v) => AnyValue::Double(*v),
            FieldValue::Bool(v) => AnyValue::Boolean(*v),
        };
        log.add_attribute(key, value);
    }
    if let Some((first, causes)) = scratch.error_chain.split_first() {
        log.add_attribute("exception.message", scratch.text[first.clone()].to_owned());
        if !causes.is_empty() {
            let causes = causes
                .iter()
                .map(|r| AnyValue::from(scratch.text[r.clone()].to_owned()))
                .collect::<Vec<_>>();
            log.add_attribute("exception.causes", AnyValue::ListAny(Box::new(causes)));
        }
    }
    if let Some(ids) = record.ids {
        log.set_trace_context(ids.trace_id, ids.span_id, Some(ids.flags));
    }
    logger.emit(log);
}
