//! The tokens of a query's text: one pass, byte by byte, that never splits a character (every
//! byte of 0x80 and above belongs to an identifier) and never fails.

use super::Dialect;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// Whitespace, kept as it is.
    Space(&'a str),
    /// A comment; its content is never looked at again.
    Comment,
    /// A keyword or a bare identifier.
    Word(&'a str),
    /// `TRUE` or `FALSE`: a literal, but a word to the summary.
    Bool(&'a str),
    /// An identifier in quotes (with its quotes). `sqlite_double`: SQLite's `"..."`, which may
    /// be a string.
    Quoted { text: &'a str, sqlite_double: bool },
    /// A string, number, blob, bit string or dollar-quoted string.
    Literal,
    /// A bind parameter: `$1`, `?`, `?3`, `:name`, `@name`, `$name`.
    Param(&'a str),
    /// One ASCII punctuation character, or `::`.
    Punct(&'a str),
}

pub(super) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str, dialect: Dialect) -> Self {
        Lexer {
            src,
            pos: 0,
            dialect,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.src.as_bytes().get(i).copied()
    }

    /// The end of a `'...'` string whose body starts at `i` (after the quote): after the closing
    /// quote, or the end of the text. `backslash`: `\` escapes the next byte (`E'...'`).
    fn string_end(&self, mut i: usize, backslash: bool) -> usize {
        let b = self.src.as_bytes();
        while i < b.len() {
            match b[i] {
                b'\\' if backslash => i += 2,
                b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
                b'\'' => return i + 1,
                _ => i += 1,
            }
        }
        b.len()
    }

    /// The end of an identifier quoted with `open`/`close` starting at `start`, or `None` when it
    /// is not closed.
    fn quoted_end(&self, start: usize, close: u8, doubled: bool) -> Option<usize> {
        let b = self.src.as_bytes();
        let mut i = start + 1;
        while i < b.len() {
            if b[i] == close {
                if doubled && b.get(i + 1) == Some(&close) {
                    i += 2;
                    continue;
                }
                return Some(i + 1);
            }
            i += 1;
        }
        None
    }

    fn ident_end(&self, mut i: usize, dollar: bool) -> usize {
        let b = self.src.as_bytes();
        while i < b.len() && (is_ident_continue(b[i]) && (dollar || b[i] != b'$')) {
            i += 1;
        }
        i
    }

    fn number_end(&self, start: usize) -> usize {
        let b = self.src.as_bytes();
        let hex = b.get(start) == Some(&b'0') && matches!(b.get(start + 1), Some(b'x' | b'X'));
        let mut i = start;
        while i < b.len() {
            let c = b[i];
            let sign = (c == b'+' || c == b'-')
                && !hex
                && i >= start + 2
                && matches!(b[i - 1], b'e' | b'E')
                && (b[i - 2].is_ascii_digit() || b[i - 2] == b'.');
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || sign {
                i += 1;
            } else {
                break;
            }
        }
        i
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_continue(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let b = self.src.as_bytes();
        let start = self.pos;
        let c = *b.get(start)?;
        let next = self.at(start + 1);
        let (end, token) = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                let mut i = start + 1;
                while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                    i += 1;
                }
                (i, Token::Space(&self.src[start..i]))
            }
            b'-' if next == Some(b'-') => {
                let end = self.src[start..].find('\n').map_or(b.len(), |n| start + n);
                (end, Token::Comment)
            }
            b'/' if next == Some(b'*') => {
                let mut depth = 1usize;
                let mut i = start + 2;
                while i < b.len() && depth > 0 {
                    match (b[i], b.get(i + 1)) {
                        (b'/', Some(b'*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (b'*', Some(b'/')) => {
                            depth -= 1;
                            i += 2;
                        }
                        _ => i += 1,
                    }
                }
                (i, Token::Comment)
            }
            b'\'' => (self.string_end(start + 1, false), Token::Literal),
            b'"' => self.quoted(start, b'"', true),
            b'`' if self.dialect == Dialect::Sqlite => self.quoted(start, b'`', true),
            b'[' if self.dialect == Dialect::Sqlite => self.quoted(start, b']', false),
            b'0'..=b'9' => (self.number_end(start), Token::Literal),
            b'.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                (self.number_end(start), Token::Literal)
            }
            b'?' => {
                let mut i = start + 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                (i, Token::Param(&self.src[start..i]))
            }
            b'$' => self.dollar(start),
            b':' if next == Some(b':') => (start + 2, Token::Punct(&self.src[start..start + 2])),
            b':' | b'@' if next.is_some_and(is_ident_start) => {
                let end = self.ident_end(start + 1, true);
                (end, Token::Param(&self.src[start..end]))
            }
            c if is_ident_start(c) => self.word(start),
            _ => (start + 1, Token::Punct(&self.src[start..start + 1])),
        };
        // Every arm moves forward; `min` keeps a skipped escape from running past the end.
        self.pos = end.clamp(start + 1, b.len());
        Some(token)
    }
}

impl<'a> Lexer<'a> {
    fn quoted(&self, start: usize, close: u8, doubled: bool) -> (usize, Token<'a>) {
        match self.quoted_end(start, close, doubled) {
            Some(end) => (
                end,
                Token::Quoted {
                    text: &self.src[start..end],
                    sqlite_double: close == b'"' && self.dialect == Dialect::Sqlite,
                },
            ),
            None => (self.src.len(), Token::Literal),
        }
    }

    /// `$1`, `$$...$$`, `$tag$...$tag$`, SQLite's `$name`, or a lone `$`.
    fn dollar(&self, start: usize) -> (usize, Token<'a>) {
        let b = self.src.as_bytes();
        match self.at(start + 1) {
            Some(d) if d.is_ascii_digit() => {
                let mut i = start + 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                (i, Token::Param(&self.src[start..i]))
            }
            Some(b'$') => (self.dollar_end(start, start + 2), Token::Literal),
            Some(c) if is_ident_start(c) => {
                let end = self.ident_end(start + 1, false);
                if self.at(end) == Some(b'$') {
                    (self.dollar_end(start, end + 1), Token::Literal)
                } else {
                    (end, Token::Param(&self.src[start..end]))
                }
            }
            _ => (start + 1, Token::Punct(&self.src[start..start + 1])),
        }
    }

    /// The end of a dollar-quoted string whose tag is `src[start..body]`.
    fn dollar_end(&self, start: usize, body: usize) -> usize {
        let tag = &self.src[start..body];
        match self.src[body..].find(tag) {
            Some(n) => body + n + tag.len(),
            None => self.src.len(),
        }
    }

    /// A word, or a literal with a one-letter prefix (`E'..'`, `X'..'`, `B'..'`, `N'..'`,
    /// `U&'..'`), or `TRUE`/`FALSE`.
    fn word(&self, start: usize) -> (usize, Token<'a>) {
        let end = self.ident_end(start, true);
        let word = &self.src[start..end];
        match (
            word.as_bytes(),
            self.at(end),
            self.at(end + 1),
            self.at(end + 2),
        ) {
            ([b'e' | b'E'], Some(b'\''), _, _) => (self.string_end(end + 1, true), Token::Literal),
            ([b'x' | b'X' | b'b' | b'B' | b'n' | b'N'], Some(b'\''), _, _) => {
                (self.string_end(end + 1, false), Token::Literal)
            }
            ([b'u' | b'U'], Some(b'&'), Some(b'\''), _) => {
                (self.string_end(end + 2, false), Token::Literal)
            }
            _ if word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false") => {
                (end, Token::Bool(word))
            }
            _ => (end, Token::Word(word)),
        }
    }
}
