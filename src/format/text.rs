//! Escaping for the human-readable console line.

/// Appends `s` with line breaks and other control characters written as escapes (`\n`, `\r`,
/// `\u{1b}`), so one event is always exactly one console line and cannot move the cursor.
pub(crate) fn write_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
}

/// Appends a field value: bare when it is a simple token, quoted (with `"` escaped) otherwise.
pub(crate) fn write_value(out: &mut String, s: &str) {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':' | '+'));
    if bare {
        out.push_str(s);
    } else {
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
                out.push(c);
            } else {
                write_escaped(out, c.encode_utf8(&mut [0; 4]));
            }
        }
        out.push('"');
    }
}
