//! Correlated logs: the facade's `log_*` calls and every `tracing` event (user code, libraries,
//! `log` records) become one [`LogEvent`] shape, stamped with the current trace and span ids,
//! and go to the outputs of the running state: the console (text), the JSON lines (the log
//! file and the application's sinks) and OTLP.

mod console;
mod layer;
mod otlp;

pub(crate) use self::layer::EventLayer;

use crate::attributes::Attributes;
use crate::event::{with_scratch, LogEvent, Scratch};
use crate::registry::Component;
use crate::spans::current_ids;
use crate::state::{self, LogOutputs};
use std::io::Write;
use tracing::Level;

/// Logs `message` with `fields` (and `error` with its causes) for `component` at `level`,
/// stamped with the current span's ids. The facade's one way into the logs.
#[inline]
pub(crate) fn log(
    component: &Component,
    level: Level,
    message: &str,
    fields: &impl Attributes,
    error: Option<&(dyn std::error::Error + 'static)>,
) {
    let Some(outputs) = state::active_logs() else {
        return;
    };
    if !enabled(component, level) {
        return;
    }
    let event = LogEvent {
        time: std::time::SystemTime::now(),
        level,
        target: component.name(),
        component: component.name(),
        ids: current_ids(),
    };
    with_scratch(|scratch| {
        scratch.message.push_str(message);
        fields.with_slice(|kvs| {
            for kv in kvs.iter() {
                scratch.field_value(kv.key.as_str(), &kv.value);
            }
        });
        if let Some(err) = error {
            scratch.error(err);
        }
        emit(outputs, &event, scratch);
    });
}

/// Formats once per output kind and writes. Never blocks on the file (lines are batched in
/// front of the non-blocking writer, and dropped and counted if it falls far behind).
fn emit(outputs: &LogOutputs, event: &LogEvent<'_>, scratch: &mut Scratch) {
    if outputs.console {
        scratch.out.clear();
        console::write_line(event, scratch);
        let _ = std::io::stdout().lock().write_all(scratch.out.as_bytes());
    }
    if !outputs.json.is_empty() {
        scratch.out.clear();
        crate::logfile::write_log(event, &outputs.service, scratch);
        outputs.json.write(&scratch.out);
    }
    if let Some(logger) = &outputs.otel {
        otlp::emit(logger, event, scratch);
    }
}

/// Whether a log at `level` from `component` passes the filter (computed once per component).
#[inline]
fn enabled(component: &Component, level: Level) -> bool {
    component
        .max_log_level(max_log_level)
        .is_some_and(|max| rank(level) <= max)
}

/// 1 = ERROR .. 5 = TRACE; 0 lets nothing through.
fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// The most verbose level at which the running log filter lets `target` through (0 =
/// nothing); `None` while telemetry is not running.
fn max_log_level(target: &str) -> Option<u8> {
    use tracing_core::{field::FieldSet, metadata::Kind, Metadata};
    struct Probe;
    impl tracing_core::Callsite for Probe {
        fn set_interest(&self, _: tracing_core::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            &PROBE_META
        }
    }
    static PROBE: Probe = Probe;
    static PROBE_META: Metadata<'static> = Metadata::new(
        "unitel log",
        "unitel",
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(&["message"], tracing_core::identify_callsite!(&PROBE)),
        Kind::EVENT,
    );
    let dispatch = state::active()?.dispatch.as_ref()?;
    let mut max = 0;
    for level in [
        Level::ERROR,
        Level::WARN,
        Level::INFO,
        Level::DEBUG,
        Level::TRACE,
    ] {
        let meta = Metadata::new(
            "unitel log",
            target,
            level,
            None,
            None,
            None,
            FieldSet::new(&["message"], tracing_core::identify_callsite!(&PROBE)),
            Kind::EVENT,
        );
        if dispatch.enabled(&meta) {
            max = rank(level);
        }
    }
    Some(max)
}
