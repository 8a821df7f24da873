//! The SQL scanner: one pass over a query's text that gives the sanitized `db.query.text`, the
//! `db.query.summary`, and, when they are unambiguous, `db.operation.name` and
//! `db.collection.name`. The sqlx adapter reads queries with it, and the log layer cleans
//! sqlx's own statement log lines (target `sqlx::query`) with it, whether or not the adapter
//! is used: SQL text reaches no output with its literals.
//!
//! Hand-written (no parser, no regex), byte by byte: every byte of 0x80 and above belongs to
//! an identifier, so every token boundary is at an ASCII byte or at an end, and slicing never
//! splits a character. Nothing here can panic on any input (property tests below).
//!
//! What is kept and what becomes `?` in `db.query.text`:
//!
//! | in the text | becomes |
//! |---|---|
//! | `'...'` (with `''`), `E'...'` (with `\'`), `X'..'`, `B'..'`, `N'..'`, `U&'..'` | `?` |
//! | `$$...$$`, `$tag$...$tag$` | `?` |
//! | numbers: `42`, `3.14`, `.5`, `1e-5`, `0x1F`, `1_000` | `?` |
//! | `TRUE`, `FALSE` | `?` |
//! | `-- comment`, `/* comment */` (nested) | one space |
//! | `"identifier"` (PostgreSQL), `` `identifier` ``, `[identifier]` (SQLite) | kept |
//! | `"..."` (SQLite, which reads it as a string when no column has that name) | `?`, unless a table name |
//! | `$1`, `?`, `?2`, `:name`, `@name`, `$name` | kept |
//! | keywords, identifiers, operators, `NULL`, whitespace | kept |
//!
//! An unterminated string or quoted identifier runs to the end of the text and becomes `?`. A
//! query with nothing to replace (parameterised, no literal, no comment) comes out exactly as
//! it went in. The text is cut at [`MAX_TEXT`] bytes, at a character boundary; the summary at
//! [`MAX_SUMMARY`] bytes, between its parts; the scan stops after [`MAX_SCAN`] bytes.

mod lex;
mod summary;

use self::lex::{Lexer, Token};
use self::summary::Summarizer;

/// Longest `db.query.text`, in bytes.
pub(crate) const MAX_TEXT: usize = 2048;
/// Longest `db.query.summary`, in bytes (the conventions' 255 characters, counted in bytes).
pub(crate) const MAX_SUMMARY: usize = 255;
/// How much of a query is scanned at most; the text is cut long before.
pub(crate) const MAX_SCAN: usize = 64 * 1024;

/// How the database reads quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Dialect {
    /// `"x"` is always an identifier; `[` is an operator (array subscripts).
    #[cfg_attr(not(feature = "sqlx"), allow(dead_code))]
    Postgres,
    /// `"x"` may be a string; `` `x` `` and `[x]` are identifiers.
    Sqlite,
}

/// What a query's text tells.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Analysis {
    /// The text with every literal replaced by `?` and comments dropped, cut at [`MAX_TEXT`].
    pub(crate) text: String,
    /// Operations and targets in order (`SELECT users orders`), or `None` when none was found.
    pub(crate) summary: Option<String>,
    /// The statement's operation, when the text has one statement (or several with the same).
    pub(crate) operation: Option<String>,
    /// The one table the text names, when it names exactly one.
    pub(crate) collection: Option<String>,
}

/// Scans `sql` once.
pub(crate) fn analyze(sql: &str, dialect: Dialect) -> Analysis {
    let scan = &sql[..floor_boundary(sql, MAX_SCAN)];
    let mut text = String::with_capacity(scan.len().min(MAX_TEXT));
    let mut full = false;
    let mut summary = Summarizer::default();
    for token in Lexer::new(scan, dialect) {
        let named = summary.feed(token);
        if full {
            continue;
        }
        let piece = match token {
            Token::Space(t) | Token::Word(t) | Token::Param(t) | Token::Punct(t) => t,
            Token::Quoted {
                text,
                sqlite_double,
            } => {
                if sqlite_double && !named {
                    "?"
                } else {
                    text
                }
            }
            Token::Literal => "?",
            Token::Bool(_) => "?",
            Token::Comment => " ",
        };
        if text.len() + piece.len() <= MAX_TEXT {
            text.push_str(piece);
        } else {
            full = true;
            // Only what is kept anyway may be cut; a `?` or a space is not worth it.
            if !matches!(token, Token::Literal | Token::Bool(_) | Token::Comment) && piece != "?" {
                let room = MAX_TEXT - text.len();
                text.push_str(&piece[..floor_boundary(piece, room)]);
            }
        }
    }
    let (summary, operation, collection) = summary.finish();
    Analysis {
        text,
        summary,
        operation,
        collection,
    }
}

/// `sql` with every literal replaced by `?` and comments dropped, for text of any database
/// (the SQLite reading, which also takes `"..."` for a possible string).
pub(crate) fn sanitize(sql: &str) -> String {
    analyze(sql, Dialect::Sqlite).text
}

/// The largest index `<= max` that is a character boundary of `s`.
pub(crate) fn floor_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests;
