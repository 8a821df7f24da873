//! JSON writing: string escaping and OpenTelemetry values.
//!
//! Every string goes through [`write_str`], which escapes quotes, backslashes and all control
//! characters, so no message or field can end a record early or forge another one; and the
//! characters a terminal does not show as themselves (C1 controls, bidi and zero-width format
//! characters, the line and paragraph separators: [`text::is_invisible`]) as `\u202e`, so a
//! record printed as it is (`tail -f`, the `console` trace exporter) shows them for what they
//! are. A JSON reader gets the same string back.

use super::text;
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
            // The first bytes of every invisible character: U+0080..U+00BF (C1 controls, the
            // soft hyphen), U+0600..U+2FFF (Arabic marks, U+180E, U+200B.., U+2028..),
            // U+F000..U+FFFF (U+FEFF, U+FFF9..) and beyond U+FFFF (tags, ...). Other text
            // (accented Latin, Cyrillic, CJK) is copied without a look.
            0xc2 | 0xd8..=0xe2 | 0xef..=0xf3 => {
                if let Some(c) = s[i..].chars().next().filter(|c| text::is_invisible(*c)) {
                    out.push_str(&s[start..i]);
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                    start = i + c.len_utf8();
                }
                continue;
            }
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

/// Appends a number. NaN and the infinities, which JSON cannot hold, become the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"` (the spelling of OTLP's JSON encoding), so the line
/// stays valid JSON and the three stay told apart.
pub(crate) fn write_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v > 0.0 {
        out.push_str("\"Infinity\"");
    } else {
        out.push_str("\"-Infinity\"");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_escaped_and_read_back_the_same() {
        let s = "a\u{85}\u{2028}\u{202e}\u{200b}\u{feff}\u{e0041}é→日z";
        let mut out = String::new();
        write_str(&mut out, s);
        assert_eq!(
            out,
            "\"a\\u0085\\u2028\\u202e\\u200b\\ufeff\\udb40\\udc41é→日z\""
        );
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
    }
}
