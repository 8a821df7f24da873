//! Text for a terminal: the console line (`docs/log-format.md`, "The console line") and the
//! `unitel` CLI's lines, which both read `TIME LEVEL ... message key=value ...`.
//!
//! The rule that keeps every part of such a line what it looks like:
//!
//! - **Invisible and moving characters** are written as escapes in every part: line breaks and
//!   tabs as `\n`, `\r`, `\t`; other control characters (C0, DEL, C1: U+0085 included), format
//!   characters (Unicode category Cf: bidi overrides, embeddings, isolates and marks, zero-width
//!   spaces and joiners, U+FEFF, soft hyphens, tags, ...) and the line and paragraph separators
//!   U+2028 and U+2029 as `\u{202e}`. One event is one line, no text can move the cursor,
//!   recolour the screen, reorder what follows it or hide in plain sight.
//! - **Keys, string values and the component** are bare when they are a simple token (letters,
//!   digits and ASCII punctuation other than `"`, `\`, `=`, `[`, `]`; no space), and quoted
//!   otherwise, with `"` and `\` escaped inside: `"a b=c d"="two words"`. A field boundary (a
//!   space, then `key=`) is never part of one.
//! - **The message** is free text, readable as it is, except that a `=` which follows anything
//!   but a space (where it would end a key) is written `\=`: `x = 5` stays, `order=42` becomes
//!   `order\=42`. So a message cannot pass for fields.
//! - **The console's own markers**, `[trace:` and `[span:`, are written `\[trace:` and
//!   `\[span:` wherever they occur in a message, a quoted key or value (the ids that end a
//!   console line are the only unescaped ones).
//!
//! Each writer scans the bytes once; a run that needs nothing (the common case: plain ASCII
//! without those characters) is appended in one copy.
//!
//! This file is compiled into the `unitel` binary too (`src/cli/mod.rs`), so the CLI and the
//! console escape alike: it must not use anything else of the crate.

/// How a piece of text is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Only invisible characters escaped ([`escaped`]).
    Plain,
    /// A message: invisible characters, the markers, and `=` that could end a key.
    Message,
    /// The inside of a quoted key or value: invisible characters, the markers, `"` and `\`.
    Quoted,
}

/// What is written in place of a character.
enum Escape {
    /// A backslash, then the character itself (`\=`, `\[`, `\"`, `\\`).
    Backslash,
    /// A fixed escape (`\n`, `\r`, `\t`).
    Fixed(&'static str),
    /// `\u{..}` with the code point in hex.
    Code(char),
}

/// Appends a log message: free text, with invisible characters escaped, `[trace:`/`[span:`
/// written `\[trace:`/`\[span:`, and a `=` that follows anything but a space written `\=`.
pub(crate) fn write_message(out: &mut String, s: &str) {
    write(out, s, Mode::Message);
}

/// Appends a key, a string value or a component: bare when it is a simple token (see
/// [`is_token`]), else quoted, with `"`, `\`, the markers and invisible characters escaped.
pub(crate) fn write_token(out: &mut String, s: &str) {
    write_token_or_quoted(out, s, false);
}

/// [`write_token`] for a list inside braces (`{k=v,k2=v2}`, the console metrics): `,`, `{`
/// and `}` quote too.
pub(crate) fn write_token_in_braces(out: &mut String, s: &str) {
    write_token_or_quoted(out, s, true);
}

fn write_token_or_quoted(out: &mut String, s: &str, braces: bool) {
    if is_token(s, braces) {
        out.push_str(s);
    } else {
        out.push('"');
        write(out, s, Mode::Quoted);
        out.push('"');
    }
}

/// Whether `s` can be written bare as a key or value: not empty, and every character a letter
/// or digit, or ASCII punctuation other than `"`, `\`, `=`, `[` and `]` (and `,`, `{`, `}`
/// when `braces`).
fn is_token(s: &str, braces: bool) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| match b {
            b'"' | b'\\' | b'=' | b'[' | b']' => false,
            b',' | b'{' | b'}' => !braces,
            0x21..=0x7e => true,
            0..=0x7f => false,
            // Non-ASCII: decided per character below.
            _ => true,
        })
        && (s.is_ascii()
            || s.chars()
                .all(|c| c.is_ascii() || (c.is_alphanumeric() && !is_invisible(c))))
}

/// `s` with its invisible characters (control, format, line and paragraph separators) escaped
/// and nothing else, borrowed when it has none: a span name or an error message in the CLI,
/// whose painter takes a `&str`.
#[allow(dead_code)] // The CLI's: the library writes every part of its lines into a buffer.
pub(crate) fn escaped(s: &str) -> std::borrow::Cow<'_, str> {
    if next_escape(s, 0, Mode::Plain).is_none() {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    write(&mut out, s, Mode::Plain);
    out.into()
}

/// Whether `c` is a character a terminal does not show as itself: a control character (C0,
/// DEL, C1), a format character (Unicode category Cf) or the line or paragraph separator.
#[inline]
pub(crate) fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0xAD
            | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F)
}

fn write(out: &mut String, s: &str, mode: Mode) {
    let mut from = 0;
    while let Some((at, escape)) = next_escape(s, from, mode) {
        out.push_str(&s[from..at]);
        match escape {
            Escape::Backslash => {
                out.push('\\');
                // An ASCII character: `[`, `=`, `"` or `\`.
                out.push(char::from(s.as_bytes()[at]));
                from = at + 1;
            }
            Escape::Fixed(text) => {
                out.push_str(text);
                from = at + 1;
            }
            Escape::Code(c) => {
                push_code(out, c);
                from = at + c.len_utf8();
            }
        }
    }
    out.push_str(&s[from..]);
}

/// Appends `\u{..}` for `c`, in lowercase hex.
fn push_code(out: &mut String, c: char) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u{");
    let n = c as u32;
    let digits = ((32 - n.leading_zeros()).max(1)).div_ceil(4);
    for i in (0..digits).rev() {
        out.push(char::from(HEX[((n >> (4 * i)) & 0xf) as usize]));
    }
    out.push('}');
}

/// The first character at or after `from` that `mode` escapes, and how.
#[inline]
fn next_escape(s: &str, from: usize, mode: Mode) -> Option<(usize, Escape)> {
    let bytes = s.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'[' if mode != Mode::Plain => {
                let rest = &bytes[i..];
                if rest.starts_with(b"[trace:") || rest.starts_with(b"[span:") {
                    return Some((i, Escape::Backslash));
                }
            }
            b'=' if mode == Mode::Message && i > 0 && bytes[i - 1] != b' ' => {
                return Some((i, Escape::Backslash));
            }
            b'"' | b'\\' if mode == Mode::Quoted => return Some((i, Escape::Backslash)),
            0x20..=0x7e => {}
            b'\n' => return Some((i, Escape::Fixed("\\n"))),
            b'\r' => return Some((i, Escape::Fixed("\\r"))),
            b'\t' => return Some((i, Escape::Fixed("\\t"))),
            0..=0x7f => return Some((i, Escape::Code(char::from(b)))),
            _ => {
                // A non-ASCII character starts here (`i` is on a boundary: every step before
                // moved by whole characters).
                let c = s[i..].chars().next()?;
                if is_invisible(c) {
                    return Some((i, Escape::Code(c)));
                }
                i += c.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(s: &str) -> String {
        let mut out = String::new();
        write_message(&mut out, s);
        out
    }

    fn token(s: &str) -> String {
        let mut out = String::new();
        write_token(&mut out, s);
        out
    }

    #[test]
    fn plain_text_is_copied_as_it_is() {
        for s in [
            "request handled",
            "x = 5",
            "café → 日本",
            "[worker 3] started",
            "",
        ] {
            assert_eq!(message(s), s);
        }
        for s in [
            "status",
            "http.route",
            "/orders/{id}",
            "a::b",
            "Zoë",
            "-1.5e3",
            "200",
        ] {
            assert_eq!(token(s), s);
        }
    }

    #[test]
    fn a_message_cannot_pass_for_fields_or_ids() {
        assert_eq!(
            message("x [trace:4bf9] [span:00f0]"),
            "x \\[trace:4bf9] \\[span:00f0]"
        );
        assert_eq!(message("admin=true"), "admin\\=true");
        assert_eq!(message("a \"b c\"=d"), "a \"b c\"\\=d");
        assert_eq!(message("=x, y = z"), "=x, y = z");
        assert_eq!(message("a\\=b"), "a\\\\=b");
    }

    #[test]
    fn keys_and_values_that_are_not_tokens_are_quoted() {
        assert_eq!(token("a b=c d"), "\"a b=c d\"");
        assert_eq!(token(""), "\"\"");
        assert_eq!(token("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(token("[trace:1]"), "\"\\[trace:1]\"");
        assert_eq!(token("x\u{200b}"), "\"x\\u{200b}\"");
        let mut braces = String::new();
        write_token_in_braces(&mut braces, "a,b}");
        assert_eq!(braces, "\"a,b}\"");
    }

    #[test]
    fn invisible_characters_are_escaped_everywhere() {
        let evil = "a\nb\r\t\u{1b}[2J\u{7f}\u{85}\u{9b}\u{2028}\u{2029}\u{202e}\u{2066}\u{200e}\u{61c}\u{200b}\u{2060}\u{feff}\u{ad}\u{e0041}z";
        let want = "a\\nb\\r\\t\\u{1b}[2J\\u{7f}\\u{85}\\u{9b}\\u{2028}\\u{2029}\\u{202e}\\u{2066}\\u{200e}\\u{61c}\\u{200b}\\u{2060}\\u{feff}\\u{ad}\\u{e0041}z";
        assert_eq!(message(evil), want);
        assert_eq!(escaped(evil), want);
        assert!(matches!(
            escaped("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
        assert_eq!(token(evil), format!("\"{want}\""));
        assert_eq!(message("\u{0}"), "\\u{0}");
    }
}
