//! The human-readable console line, ending in the trace and span ids.
//!
//! What each part may hold and how it is escaped, so that no text can pass for another part,
//! a field or the ids: `format::text` and `docs/log-format.md` ("The console line").

use crate::event::{level_str, FieldValue, LogEvent, Scratch};
use crate::format::{self, text, time};
use std::fmt::Write;

/// Formats the console line (with its newline) into `s.out`:
/// `2026-11-21T05:10:04.123456Z  INFO api_gateway: message key=value [trace:..] [span:..]`.
pub(super) fn write_line(record: &LogEvent<'_>, s: &mut Scratch) {
    let Scratch {
        message,
        text: buf,
        fields,
        error_chain,
        out,
        ..
    } = s;
    time::write_rfc3339(out, record.time);
    let _ = write!(out, " {:>5} ", level_str(record.level));
    text::write_token(out, record.component);
    out.push_str(": ");
    text::write_message(out, message);
    for (key, value) in fields.iter() {
        out.push(' ');
        text::write_token(out, &buf[key.clone()]);
        out.push('=');
        match value {
            FieldValue::Str(r) => text::write_token(out, &buf[r.clone()]),
            FieldValue::I64(v) => format::write_i64(out, *v),
            FieldValue::U64(v) => format::write_u64(out, *v),
            FieldValue::F64(v) => {
                let _ = write!(out, "{v}");
            }
            FieldValue::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
        }
    }
    if !error_chain.is_empty() {
        out.push_str(" error=");
        let mut chain = String::new();
        for (i, r) in error_chain.iter().enumerate() {
            if i > 0 {
                chain.push_str(": ");
            }
            chain.push_str(&buf[r.clone()]);
        }
        text::write_token(out, &chain);
    }
    if let Some(ids) = record.ids {
        out.push_str(" [trace:");
        format::write_hex(out, &ids.trace_id.to_bytes());
        out.push_str("] [span:");
        format::write_hex(out, &ids.span_id.to_bytes());
        out.push(']');
    }
    out.push('\n');
}
