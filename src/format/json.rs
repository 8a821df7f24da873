//! JSON writing: string escaping and OpenTelemetry values.
//!
//! Every string goes through [`write_str`], which escapes quotes, backslashes and all control
//! characters, so no message or field can end a record early or forge another one.

use opentelemetry::{Array, Value};
use std::fmt::Write;

/// Appends `s` as a quoted JSON string.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    write_escaped(out, s);
    out.push('"');
}

/// Appends `s` escaped for the inside of a JSON string.
pub(crate) fn write_escaped(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Appends a number; NaN and infinities (which JSON cannot hold) become `null`.
pub(crate) fn write_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

/// Appends an OpenTelemetry attribute value as JSON.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::I64(i) => super::write_i64(out, *i),
        Value::F64(f) => write_f64(out, *f),
        Value::String(s) => write_str(out, s.as_str()),
        Value::Array(array) => {
            out.push('[');
            match array {
                Array::Bool(v) => {
                    write_list(out, v, |o, b| o.push_str(if *b { "true" } else { "false" }))
                }
                Array::I64(v) => write_list(out, v, |o, i| super::write_i64(o, *i)),
                Array::F64(v) => write_list(out, v, |o, f| write_f64(o, *f)),
                Array::String(v) => write_list(out, v, |o, s| write_str(o, s.as_str())),
                _ => write_str(out, &array.to_string()),
            }
            out.push(']');
        }
        other => write_str(out, &other.to_string()),
    }
}

fn write_list<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
}
