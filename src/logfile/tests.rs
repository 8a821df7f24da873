//! The writer and the reader agree: what is encoded parses back to the same values.

use super::encode::{encode_service, write_log, write_span};
use super::parse_line;
use super::records::{ErrorRecord, Record};
use crate::event::{FieldValue, LogEvent, Scratch};
use crate::spans::Ids;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::time::{Duration, UNIX_EPOCH};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

#[test]
fn a_log_record_round_trips() {
    let time = UNIX_EPOCH + Duration::from_micros(1_763_702_710_123_456);
    let event = LogEvent {
        time,
        level: tracing::Level::WARN,
        target: "orders::db",
        component: "orders",
        ids: Some(Ids {
            trace_id: TraceId::from_hex(TRACE).unwrap(),
            span_id: SpanId::from_hex(SPAN).unwrap(),
            flags: TraceFlags::SAMPLED,
        }),
    };
    let mut scratch = Scratch::default();
    scratch
        .message
        .push_str("line one\r\n{\"type\":\"log\"} forged?");
    scratch.field_str("user", "ada \"quoted\"");
    scratch.field("attempt", FieldValue::I64(-3));
    scratch.field("ok", FieldValue::Bool(false));
    let err = std::io::Error::other("disk full");
    scratch.error(&err);
    write_log(&event, &encode_service("orders"), &mut scratch);
    assert_eq!(
        scratch.out.matches('\n').count(),
        1,
        "one line: {}",
        scratch.out
    );

    let Record::Log(log) = parse_line(&scratch.out).unwrap() else {
        panic!("not a log record: {}", scratch.out);
    };
    assert_eq!(log.timestamp, time);
    assert_eq!(log.service.as_deref(), Some("orders"));
    assert_eq!(log.level, tracing::Level::WARN);
    assert_eq!(
        (log.target.as_str(), log.component.as_str()),
        ("orders::db", "orders")
    );
    assert_eq!(log.message, "line one\r\n{\"type\":\"log\"} forged?");
    assert_eq!(log.trace_id.map(|t| t.to_string()).as_deref(), Some(TRACE));
    assert_eq!(log.span_id.map(|s| s.to_string()).as_deref(), Some(SPAN));
    assert_eq!(log.fields["user"], "ada \"quoted\"");
    assert_eq!(log.fields["attempt"], -3);
    assert_eq!(log.fields["ok"], false);
    assert_eq!(
        log.error,
        Some(ErrorRecord {
            message: "disk full".into(),
            causes: vec![]
        })
    );
}

#[test]
fn a_span_record_round_trips() {
    let start = UNIX_EPOCH + Duration::from_micros(1_763_702_710_000_001);
    let span = SpanData {
        span_context: SpanContext::new(
            TraceId::from_hex(TRACE).unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from_hex("b7ad6b7169203331").unwrap(),
        parent_span_is_remote: false,
        span_kind: SpanKind::Consumer,
        name: "process_job".into(),
        start_time: start,
        end_time: start + Duration::from_micros(2_500),
        attributes: vec![KeyValue::new("job.id", 7), KeyValue::new("queue", "high")],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::error("payment \"declined\""),
        instrumentation_scope: InstrumentationScope::builder("worker").build(),
    };
    let mut out = String::new();
    write_span(&span, &encode_service("orders"), &mut out);

    let Record::Span(record) = parse_line(&out).unwrap() else {
        panic!("not a span record: {out}");
    };
    assert_eq!(record.service.as_deref(), Some("orders"));
    assert_eq!(record.name, "process_job");
    assert_eq!(record.component, "worker");
    assert_eq!(record.trace_id.to_string(), TRACE);
    assert_eq!(record.span_id.to_string(), SPAN);
    assert_eq!(
        record.parent_span_id.map(|s| s.to_string()).as_deref(),
        Some("b7ad6b7169203331")
    );
    assert_eq!(record.kind, SpanKind::Consumer);
    assert_eq!(
        (record.start_time, record.end_time),
        (span.start_time, span.end_time)
    );
    assert_eq!(record.duration, Duration::from_micros(2_500));
    assert_eq!(record.status, Status::error("payment \"declined\""));
    assert_eq!(record.attributes["job.id"], 7);
    assert_eq!(record.attributes["queue"], "high");
    assert!(record.events.is_empty());
}

#[test]
fn lines_that_are_not_records_say_why() {
    for (line, why) in [
        ("not json", "JSON"),
        ("[1,2]", "JSON object"),
        (r#"{"type":"metric"}"#, "`type`"),
        (r#"{"type":"log","level":"INFO"}"#, "`timestamp`"),
        (
            r#"{"timestamp":"2026-11-21T05:10:04.123456Z","type":"log","level":"LOUD","target":"t","component":"c","message":"m","trace_id":null,"span_id":null,"fields":{}}"#,
            "`level`",
        ),
        (
            r#"{"timestamp":"2026-11-21T05:10:04.123456Z","type":"log","level":"INFO","target":"t","component":"c","message":"m","trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736","span_id":null,"fields":{}}"#,
            "`trace_id`",
        ),
    ] {
        let err = parse_line(line).expect_err(line).to_string();
        assert!(err.contains(why), "{line}: {err}");
    }
}
