//! One log event, as every output sees it (the console, the JSON lines, OTLP): the facade's
//! `log_*` calls and `tracing` events both become a [`LogEvent`] plus a [`Scratch`] holding its
//! message, fields and error chain.

use crate::attributes::key_bit;
use crate::spans::Ids;
use opentelemetry::Value;
use std::cell::RefCell;
use std::fmt::Write;
use std::ops::Range;
use std::time::SystemTime;
use tracing::Level;

/// The fixed part of a log event.
#[derive(Debug)]
pub(crate) struct LogEvent<'a> {
    pub(crate) time: SystemTime,
    pub(crate) level: Level,
    pub(crate) target: &'a str,
    pub(crate) component: &'a str,
    /// The span it happened in.
    pub(crate) ids: Option<Ids>,
}

/// A field's value; strings live in [`Scratch::text`].
#[derive(Debug, Clone)]
pub(crate) enum FieldValue {
    Str(Range<usize>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// Message, fields and error chain of one event, in reusable buffers (one per thread).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) message: String,
    pub(crate) text: String,
    pub(crate) fields: Vec<(Range<usize>, FieldValue)>,
    /// The error's message followed by its causes, outermost first.
    pub(crate) error_chain: Vec<Range<usize>>,
    /// Output buffer for the formatters.
    pub(crate) out: String,
    /// A bit per key in `fields` ([`key_bit`]): a key whose bit is clear is new, so a field is
    /// added without comparing keys unless its bit was taken.
    key_bits: u64,
}

impl Scratch {
    pub(crate) fn clear(&mut self) {
        self.message.clear();
        self.text.clear();
        self.fields.clear();
        self.error_chain.clear();
        self.out.clear();
        self.key_bits = 0;
    }

    fn push_text(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    pub(crate) fn push_fmt(&mut self, args: std::fmt::Arguments<'_>) -> Range<usize> {
        let start = self.text.len();
        let _ = self.text.write_fmt(args);
        start..self.text.len()
    }

    /// Adds a field whose key is `text[key]`. A key given twice keeps its first place and
    /// takes the last value, in every output (the last one wins, as OpenTelemetry says of
    /// attributes); the one comparison of keys is skipped while [`key_bit`]s differ.
    pub(crate) fn push_field(&mut self, key: Range<usize>, value: FieldValue) {
        let Scratch {
            text,
            fields,
            key_bits,
            ..
        } = self;
        let name = &text[key.clone()];
        let bit = key_bit(name);
        if *key_bits & bit != 0 {
            if let Some(field) = fields.iter_mut().find(|(k, _)| text[k.clone()] == *name) {
                field.1 = value;
                return;
            }
        }
        *key_bits |= bit;
        fields.push((key, value));
    }

    pub(crate) fn field_str(&mut self, key: &str, value: &str) {
        let k = self.push_text(key);
        let v = self.push_text(value);
        self.push_field(k, FieldValue::Str(v));
    }

    pub(crate) fn field_debug(&mut self, key: &str, value: &dyn std::fmt::Debug) {
        let k = self.push_text(key);
        let v = self.push_fmt(format_args!("{value:?}"));
        self.push_field(k, FieldValue::Str(v));
    }

    pub(crate) fn field(&mut self, key: &str, value: FieldValue) {
        let k = self.push_text(key);
        self.push_field(k, value);
    }

    pub(crate) fn field_value(&mut self, key: &str, value: &Value) {
        match value {
            Value::Bool(b) => self.field(key, FieldValue::Bool(*b)),
            Value::I64(i) => self.field(key, FieldValue::I64(*i)),
            Value::F64(f) => self.field(key, FieldValue::F64(*f)),
            Value::String(s) => self.field_str(key, s.as_str()),
            other => {
                let k = self.push_text(key);
                let v = self.push_fmt(format_args!("{other}"));
                self.push_field(k, FieldValue::Str(v));
            }
        }
    }

    /// Records `err` and its `source()` chain.
    pub(crate) fn error(&mut self, err: &(dyn std::error::Error + 'static)) {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
        // Bounded, in case a source chain loops.
        while let Some(e) = next.take() {
            if self.error_chain.len() == 32 {
                break;
            }
            let r = self.push_fmt(format_args!("{e}"));
            self.error_chain.push(r);
            next = e.source();
        }
    }
}

/// Runs `f` with this thread's scratch buffers, cleared. Re-entrant: a log call made while
/// formatting (from a `Debug` impl, say) gets fresh buffers instead of a panic.
pub(crate) fn with_scratch(f: impl FnOnce(&mut Scratch)) {
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    }
    let mut f = Some(f);
    let _ = SCRATCH.try_with(|cell| {
        if let Ok(mut scratch) = cell.try_borrow_mut() {
            scratch.clear();
            if let Some(f) = f.take() {
                f(&mut scratch);
            }
            if scratch.out.capacity() > 64 * 1024 {
                // Do not keep one huge event's buffers for the life of the thread.
                *scratch = Scratch::default();
            }
        }
    });
    if let Some(f) = f {
        f(&mut Scratch::default());
    }
}

pub(crate) fn level_str(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_and_values(s: &Scratch) -> Vec<(&str, String)> {
        s.fields
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    FieldValue::Str(r) => s.text[r.clone()].to_owned(),
                    other => format!("{other:?}"),
                };
                (&s.text[k.clone()], value)
            })
            .collect()
    }

    #[test]
    fn a_key_given_twice_keeps_its_first_place_and_last_value() {
        let mut s = Scratch::default();
        s.field_str("a", "1");
        s.field("b", FieldValue::I64(2));
        s.field_value("a", &Value::from("3"));
        s.field_debug("c", &4);
        s.field("b", FieldValue::Bool(true));
        assert_eq!(
            keys_and_values(&s),
            [
                ("a", "3".to_owned()),
                ("b", "Bool(true)".to_owned()),
                ("c", "4".to_owned())
            ]
        );
        // Different keys with the same bit stay apart; a cleared scratch forgets its keys.
        let mut s = Scratch::default();
        for key in ["ab", "cb", "ab"] {
            s.field_str(key, key);
        }
        assert_eq!(keys_and_values(&s).len(), 2);
        s.clear();
        s.field_str("ab", "x");
        assert_eq!(keys_and_values(&s), [("ab", "x".to_owned())]);
    }
}
