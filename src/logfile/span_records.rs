//! One JSON record per closed span, so a trace can be rebuilt from the log file alone.
//!
//! This is a span processor in the SDK's pipeline, so it sees the facade's own spans and the
//! spans tracing-opentelemetry builds from `tracing` spans alike.

use super::encode::{encode_service, write_span};
use crate::state::JsonSinks;
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// Writes a span record to its sinks when a span ends.
#[derive(Debug)]
pub(crate) struct SpanRecordProcessor {
    sinks: JsonSinks,
    /// The `service` value, encoded.
    service: Box<str>,
}

impl SpanRecordProcessor {
    /// Span records of `service` go to `sinks` (the log file, the application's JSON sinks).
    pub(crate) fn new(sinks: JsonSinks, service: &str) -> Self {
        SpanRecordProcessor {
            sinks,
            service: encode_service(service),
        }
    }

    /// The `console` trace exporter: span records on standard output.
    pub(crate) fn stdout(service: &str) -> Self {
        SpanRecordProcessor::new(
            JsonSinks::new(vec![Arc::new(|line: &str| {
                use std::io::Write as _;
                let _ = std::io::stdout().lock().write_all(line.as_bytes());
            })]),
            service,
        )
    }
}

impl SpanProcessor for SpanRecordProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        thread_local! {
            static BUF: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let write = |out: &mut String| {
            out.clear();
            write_span(&span, &self.service, out);
            self.sinks.write(out);
        };
        let _ = BUF.try_with(|buf| match buf.try_borrow_mut() {
            Ok(mut out) => write(&mut out),
            Err(_) => write(&mut String::new()),
        });
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
