//! The `tracing` layer that turns every event (user code, libraries, `log` records) into a
//! correlated [`LogEvent`].

use crate::event::{with_scratch, FieldValue, LogEvent, Scratch};
use crate::format::sql;
use crate::spans::{current_ids, Ids};
use crate::state;
use opentelemetry::trace::TraceContextExt;
use std::borrow::Cow;
use std::sync::OnceLock;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Writes `tracing` events to the log outputs, stamped with the trace and span ids.
#[derive(Debug, Default)]
pub(crate) struct EventLayer {
    dispatch: OnceLock<WeakDispatch>,
}

impl EventLayer {
    fn ids(&self, event: &Event<'_>) -> Option<Ids> {
        if let Some(parent) = event.parent() {
            // An explicit parent: ask tracing-opentelemetry for that span's context, the
            // supported way (its `OtelData` is private).
            let dispatch = self.dispatch.get()?.upgrade()?;
            let cx = tracing_opentelemetry::get_otel_context(parent, &dispatch)?;
            let ids = Ids::of(cx.span().span_context());
            ids
        } else if event.is_contextual() {
            current_ids()
        } else {
            None
        }
    }
}

impl<S> Layer<S> for EventLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(outputs) = state::active_logs() else {
            return;
        };
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let record = LogEvent {
            time: std::time::SystemTime::now(),
            level: *meta.level(),
            target: meta.target(),
            component: meta.target(),
            ids: self.ids(event),
        };
        let scrub = Scrub::of(meta.target());
        with_scratch(|scratch| {
            event.record(&mut Visitor { scratch, scrub });
            if scrub == Scrub::Userinfo {
                if let Cow::Owned(clean) = redact_userinfo(&scratch.message) {
                    scratch.message = clean;
                }
            }
            super::emit(outputs, &record, scratch);
        });
    }
}

/// The libraries whose own log lines carry secrets, and what is taken out of them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scrub {
    /// Nothing known: the event as it is.
    None,
    /// sqlx's statement log (target `sqlx::query`): its `summary` and `db.statement` fields
    /// hold the SQL as sent, literals included; every literal becomes `?`.
    Sql,
    /// The HTTP client stack (hyper, hyper-util, h2, reqwest): its DEBUG and TRACE lines print
    /// connection-pool keys and URLs with their userinfo (`user:password@host`).
    Userinfo,
}

impl Scrub {
    fn of(target: &str) -> Scrub {
        if target == "sqlx::query" {
            return Scrub::Sql;
        }
        match target.split("::").next().unwrap_or(target) {
            "hyper" | "hyper_util" | "h2" | "reqwest" => Scrub::Userinfo,
            _ => Scrub::None,
        }
    }
}

/// `text` with the userinfo of every authority in it (`user:password@host`, and `user@host`
/// after `//`) replaced by `REDACTED:REDACTED`; borrowed when there was none.
fn redact_userinfo(text: &str) -> Cow<'_, str> {
    const DELIMITERS: &[char] = &[
        ' ', '\t', '\n', '(', ')', ',', '"', '\'', '/', '<', '>', '[', ']', '{', '}', '=',
    ];
    let mut out = String::new();
    let mut done = 0;
    for (at, _) in text.match_indices('@') {
        if at < done {
            continue;
        }
        let start = text[done..at]
            .rfind(DELIMITERS)
            .map_or(done, |i| done + i + 1);
        let userinfo = &text[start..at];
        let after_slashes = text[..start].ends_with("//");
        if userinfo.is_empty() || !(userinfo.contains(':') || after_slashes) {
            continue;
        }
        out.push_str(&text[done..start]);
        out.push_str("REDACTED:REDACTED");
        done = at;
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

struct Visitor<'a> {
    scratch: &'a mut Scratch,
    scrub: Scrub,
}

impl Visitor<'_> {
    /// Whether `field` holds SQL text to sanitize.
    fn is_sql(&self, field: &Field) -> bool {
        self.scrub == Scrub::Sql && matches!(field.name(), "summary" | "db.statement")
    }
}

/// The `log` crate's metadata, carried as fields by tracing-log, is not an event field.
fn is_log_metadata(field: &Field) -> bool {
    field.name().starts_with("log.")
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.is_sql(field) {
            let clean = sql::sanitize(value);
            self.scratch.field_str(field.name(), clean.trim());
            return;
        }
        match field.name() {
            "message" => self.scratch.message.push_str(value),
            name if name.starts_with("log.") => {}
            name => self.scratch.field_str(name, value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if self.is_sql(field) {
            let clean = sql::sanitize(&format!("{value:?}"));
            self.scratch.field_str(field.name(), clean.trim());
            return;
        }
        match field.name() {
            "message" => {
                let _ = write!(self.scratch.message, "{value:?}");
            }
            name if name.starts_with("log.") => {}
            name => self.scratch.field_debug(name, value),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if is_log_metadata(field) {
            return;
        }
        self.scratch.field(field.name(), FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if is_log_metadata(field) {
            return;
        }
        self.scratch.field(field.name(), FieldValue::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if is_log_metadata(field) {
            return;
        }
        self.scratch.field(field.name(), FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if is_log_metadata(field) {
            return;
        }
        self.scratch.field(field.name(), FieldValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The first error becomes the event's error (message and causes), as `log_error`'s
        // does. Under the name `error` that is all it is: every output writes the error once,
        // not as a field too. Under another name it stays a field as well.
        let became_the_error = self.scratch.error_chain.is_empty();
        if became_the_error {
            self.scratch.error(value);
        }
        if !(became_the_error && field.name() == "error") {
            let r = self.scratch.push_fmt(format_args!("{value}"));
            let k = self.scratch.push_fmt(format_args!("{}", field.name()));
            self.scratch.push_field(k, FieldValue::Str(r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_in_pool_keys_and_urls_is_redacted() {
        assert_eq!(
            redact_userinfo("reuse idle connection for (\"http\", user:s3cret@127.0.0.1:8080)"),
            "reuse idle connection for (\"http\", REDACTED:REDACTED@127.0.0.1:8080)"
        );
        assert_eq!(
            redact_userinfo("redirecting 'https://bob:pw@a.example/x' to 'https://c@b.example/'"),
            "redirecting 'https://REDACTED:REDACTED@a.example/x' to 'https://REDACTED:REDACTED@b.example/'"
        );
        // No userinfo: borrowed as it is (an address, a bare `@`).
        for text in ["mail bob@example.com", "at @ noon", "no at all", "@:"] {
            assert!(
                matches!(redact_userinfo(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        assert_eq!(
            Scrub::of("hyper_util::client::legacy::pool"),
            Scrub::Userinfo
        );
        assert_eq!(Scrub::of("reqwest"), Scrub::Userinfo);
        assert_eq!(Scrub::of("hyperion::x"), Scrub::None);
        assert_eq!(Scrub::of("sqlx::query"), Scrub::Sql);
        assert_eq!(Scrub::of("sqlx::pool"), Scrub::None);
    }
}
