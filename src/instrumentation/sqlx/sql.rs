//! The SQL scanner behind the sqlx adapter: one pass over a query's text that gives the
//! sanitized `db.query.text`, the `db.query.summary`, and, when they are unambiguous,
//! `db.operation.name` and `db.collection.name`.
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

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
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

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, dialect: Dialect) -> Self {
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

// ---------------------------------------------------------------------------------------------
// The summary

/// Where the summarizer is in a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The first token of a statement.
    Start,
    /// The first token inside parentheses: a query or an expression.
    ParenStart,
    /// Nothing expected; `FROM`, `JOIN`, `INTO`, `USING`, `SELECT` still count.
    Idle,
    /// Nothing more to learn until `;` (`GRANT`, a function body, ...).
    Rest,
    /// In `WITH ...`, until the statement's own operation.
    With,
    /// After `EXPLAIN`: its options, then the statement.
    Explain,
    /// After `CREATE`/`DROP`/`ALTER`/`TRUNCATE`: modifiers and the object type.
    Ddl(Verb),
    /// `CREATE INDEX`: the index's name, then `ON` and the table.
    IndexName,
    /// A table name is expected.
    Name(NameCtx),
    /// `UPDATE OR <word>`: skip the word, then the name.
    NameSkipOne(NameCtx),
    /// In a name (maybe qualified).
    InName(NameCtx),
    /// In a name, after a dot.
    InNameDot(NameCtx),
    /// After a table name: an alias, a comma, or the end of the table reference.
    AfterName { ctx: NameCtx, words: u8 },
    /// After `AS` in a table reference.
    Alias(NameCtx),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Create,
    Drop,
    Alter,
    Truncate,
}

/// What kind of table reference is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NameCtx {
    /// A comma brings another name (`FROM a, b`, `DROP TABLE a, b`).
    list: bool,
    /// The name is a table (a collection); `CALL`'s procedure is not.
    table: bool,
    /// A `(` right after the name is a column list or arguments (`INTO t(a, b)`,
    /// `CALL p(1)`); else the name was a table function's (`FROM generate_series(1, 3)`).
    keep_before_paren: bool,
    /// Nothing more to learn after the name (`CREATE INDEX i ON t ...`).
    last: bool,
}

const FROM_LIST: NameCtx = NameCtx {
    list: true,
    table: true,
    keep_before_paren: false,
    last: false,
};
const ONE_TABLE: NameCtx = NameCtx {
    list: false,
    table: true,
    keep_before_paren: false,
    last: false,
};
const INTO_TABLE: NameCtx = NameCtx {
    list: false,
    table: true,
    keep_before_paren: true,
    last: false,
};

#[derive(Clone, Copy, Debug)]
struct Frame {
    /// The state to go back to at the closing parenthesis.
    saved: State,
    /// A query (`(SELECT ...)`): its `FROM` names tables. Else an expression
    /// (`EXTRACT(YEAR FROM d)`).
    query: bool,
}

#[derive(Debug)]
struct Part {
    text: String,
    /// A table name (a candidate for `db.collection.name`).
    table: bool,
}

#[derive(Debug)]
struct Summarizer {
    state: State,
    stack: Vec<Frame>,
    /// Parentheses opened past [`MAX_DEPTH`] and not closed yet.
    too_deep: usize,
    /// The name being read.
    name: String,
    /// The current statement's operations and targets, in order.
    parts: Vec<Part>,
    /// The index in `parts` of the current statement's own operation.
    main: Option<usize>,
    /// Whether the current statement has any token.
    started: bool,
    /// Every statement's parts, in order.
    all: Vec<Part>,
    /// Each finished statement's own operation.
    operations: Vec<Option<String>>,
}

impl Default for Summarizer {
    fn default() -> Self {
        Summarizer {
            state: State::Start,
            stack: Vec::new(),
            too_deep: 0,
            name: String::new(),
            parts: Vec::new(),
            main: None,
            started: false,
            all: Vec::new(),
            operations: Vec::new(),
        }
    }
}

/// Words that end a table reference (so they are not its alias).
const CLAUSE_WORDS: &[&str] = &[
    "where",
    "group",
    "order",
    "having",
    "limit",
    "offset",
    "union",
    "intersect",
    "except",
    "on",
    "using",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "outer",
    "cross",
    "natural",
    "window",
    "fetch",
    "for",
    "returning",
    "set",
    "values",
    "select",
    "default",
    "tablesample",
    "indexed",
    "not",
    "with",
    "from",
    "into",
    "as",
    "do",
    "overriding",
    "partition",
    "add",
    "rename",
    "drop",
    "alter",
    "owner",
    "cascade",
    "restrict",
    "to",
    "lateral",
    "when",
];

/// Words between `CREATE`/`DROP`/`ALTER` and the object type; part of the operation.
const DDL_MODIFIERS: &[&str] = &[
    "or",
    "replace",
    "temp",
    "temporary",
    "unlogged",
    "unique",
    "global",
    "local",
    "virtual",
    "materialized",
    "recursive",
    "foreign",
];

/// Other object types named after `CREATE`/`DROP`/`ALTER`; part of the operation.
const OBJECT_TYPES: &[&str] = &[
    "index",
    "trigger",
    "schema",
    "database",
    "function",
    "procedure",
    "extension",
    "type",
    "domain",
    "role",
    "user",
    "policy",
];

/// Parentheses deeper than this are counted, not tracked.
const MAX_DEPTH: usize = 64;

fn after_name(ctx: NameCtx) -> State {
    if ctx.last {
        State::Rest
    } else {
        State::AfterName { ctx, words: 0 }
    }
}

fn is(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

fn is_any(word: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| word.eq_ignore_ascii_case(k))
}

impl Summarizer {
    /// Takes one token; returns whether it was read as (part of) a table name.
    fn feed(&mut self, token: Token<'_>) -> bool {
        if matches!(token, Token::Space(_) | Token::Comment) {
            return false;
        }
        if token == Token::Punct(";") {
            self.commit_name();
            self.end_statement();
            return false;
        }
        self.started = true;
        // A token may be looked at again in the state it leads to; a bounded number of times.
        for _ in 0..4 {
            match self.step(token) {
                Step::Done(named) => return named,
                Step::Again => {}
            }
        }
        false
    }

    fn step(&mut self, token: Token<'_>) -> Step {
        use Token::{Punct, Quoted, Word};
        match (self.state, token) {
            (State::Rest, Punct(")")) => {
                self.close();
                Step::Done(false)
            }
            (State::Rest, Punct("(")) => {
                self.open(State::Rest);
                Step::Done(false)
            }
            (State::Rest, _) => Step::Done(false),

            (State::Start, Word(w)) => {
                self.statement_word(w);
                Step::Done(false)
            }
            (State::Start, _) => {
                self.state = State::Idle;
                Step::Again
            }

            (State::ParenStart, Word(w)) if is_query_start(w) => {
                if let Some(frame) = self.stack.last_mut() {
                    frame.query = true;
                }
                if is(w, "values") {
                    self.state = State::Idle;
                } else {
                    self.statement_word(w);
                }
                Step::Done(false)
            }
            (State::ParenStart, _) => {
                self.state = State::Idle;
                Step::Again
            }

            (State::With, Word(w)) if is_query_start(w) && !is(w, "with") => {
                self.statement_word(w);
                Step::Done(false)
            }
            (State::With, Punct("(")) => {
                self.open(State::With);
                Step::Done(false)
            }
            (State::With, Punct(")")) => {
                self.close();
                Step::Done(false)
            }
            (State::With, _) => Step::Done(false),

            (State::Explain, Word(w))
                if is_any(w, &["analyze", "analyse", "verbose", "query", "plan"]) =>
            {
                Step::Done(false)
            }
            (State::Explain, Punct("(")) => {
                self.open(State::Explain);
                Step::Done(false)
            }
            (State::Explain, Word(w)) => {
                self.statement_word(w);
                Step::Done(false)
            }
            (State::Explain, _) => {
                self.state = State::Idle;
                Step::Again
            }

            (State::Ddl(verb), Word(w)) => {
                self.ddl_word(verb, w);
                Step::Done(false)
            }
            (State::Ddl(Verb::Truncate), Quoted { .. }) => {
                self.state = State::Name(FROM_LIST);
                Step::Again
            }
            (State::Ddl(_), _) => {
                self.state = State::Rest;
                Step::Again
            }

            (State::IndexName, Word(w)) if is(w, "on") => {
                self.state = State::Name(NameCtx {
                    keep_before_paren: true,
                    last: true,
                    ..ONE_TABLE
                });
                Step::Done(false)
            }
            (State::IndexName, Punct("(")) => {
                self.state = State::Rest;
                Step::Again
            }
            (State::IndexName, _) => Step::Done(false),

            (State::NameSkipOne(ctx), _) => {
                self.state = State::Name(ctx);
                Step::Done(false)
            }
            (State::Name(ctx), Word(w)) => {
                if is_any(w, &["only", "if", "not", "exists", "lateral"]) {
                    Step::Done(false)
                } else if is(w, "or") {
                    self.state = State::NameSkipOne(ctx);
                    Step::Done(false)
                } else if is_any(w, &["select", "values", "with", "set", "where", "default"])
                    || is_any(w, &["stdin", "stdout"])
                {
                    self.state = State::Idle;
                    Step::Again
                } else {
                    self.name.clear();
                    self.name.push_str(w);
                    self.state = State::InName(ctx);
                    Step::Done(true)
                }
            }
            (State::Name(ctx), Quoted { text, .. }) => {
                self.name.clear();
                self.name.push_str(text);
                self.state = State::InName(ctx);
                Step::Done(true)
            }
            (State::Name(ctx), Punct("(")) => {
                self.open(State::AfterName { ctx, words: 0 });
                Step::Done(false)
            }
            (State::Name(_), _) => {
                self.state = State::Idle;
                Step::Again
            }

            (State::InName(ctx), Punct(".")) => {
                self.state = State::InNameDot(ctx);
                Step::Done(false)
            }
            (State::InName(ctx), Punct("(")) if !ctx.keep_before_paren => {
                // A table function (`generate_series(1, 3)`), not a table.
                self.name.clear();
                self.open(State::AfterName { ctx, words: 0 });
                Step::Done(false)
            }
            (State::InName(ctx), _) => {
                self.commit_name_as(ctx.table);
                self.state = after_name(ctx);
                Step::Again
            }
            (State::InNameDot(ctx), Word(w) | Quoted { text: w, .. }) => {
                self.name.push('.');
                self.name.push_str(w);
                self.state = State::InName(ctx);
                Step::Done(true)
            }
            (State::InNameDot(ctx), _) => {
                self.commit_name_as(ctx.table);
                self.state = after_name(ctx);
                Step::Again
            }

            (State::AfterName { ctx, .. }, Word(w)) if is(w, "as") => {
                self.state = State::Alias(ctx);
                Step::Done(false)
            }
            (State::AfterName { ctx, .. }, Punct(",")) => {
                self.state = if ctx.list {
                    State::Name(ctx)
                } else {
                    State::Idle
                };
                Step::Done(false)
            }
            (State::AfterName { ctx, words: 0 }, Word(w)) if !is_any(w, CLAUSE_WORDS) => {
                self.state = State::AfterName { ctx, words: 1 };
                Step::Done(false)
            }
            (State::AfterName { ctx, words: 0 }, Quoted { .. }) => {
                self.state = State::AfterName { ctx, words: 1 };
                Step::Done(false)
            }
            (State::AfterName { ctx, words }, Punct("(")) => {
                self.open(State::AfterName { ctx, words });
                Step::Done(false)
            }
            (State::AfterName { .. }, _) => {
                self.state = State::Idle;
                Step::Again
            }
            (State::Alias(ctx), Word(w)) if !is_any(w, CLAUSE_WORDS) => {
                self.state = State::AfterName { ctx, words: 1 };
                Step::Done(false)
            }
            (State::Alias(ctx), Quoted { .. }) => {
                self.state = State::AfterName { ctx, words: 1 };
                Step::Done(false)
            }
            (State::Alias(_), _) => {
                self.state = State::Idle;
                Step::Again
            }

            (State::Idle, token) => {
                self.idle(token);
                Step::Done(false)
            }
        }
    }

    /// Outside any expected name: the keywords that bring a table, `SELECT`, parentheses.
    fn idle(&mut self, token: Token<'_>) {
        match token {
            Token::Word(w) => {
                let in_query = self.stack.last().is_none_or(|f| f.query);
                if is(w, "select") {
                    self.operation(w);
                } else if in_query && (is(w, "from") || is(w, "using")) {
                    self.state = State::Name(FROM_LIST);
                } else if in_query && is(w, "join") {
                    self.state = State::Name(ONE_TABLE);
                } else if in_query && is(w, "into") {
                    self.state = State::Name(INTO_TABLE);
                }
            }
            Token::Punct("(") => self.open(State::Idle),
            Token::Punct(")") => self.close(),
            _ => {}
        }
    }

    /// The first word of a statement (or of a query in parentheses, or after `WITH`'s
    /// definitions or `EXPLAIN`).
    fn statement_word(&mut self, w: &str) {
        let depth0 = self.stack.is_empty();
        if is(w, "with") {
            self.state = State::With;
            return;
        }
        let query = is_query_start(w) || is(w, "replace") || is(w, "merge");
        if !query && !depth0 {
            self.state = State::Idle;
            return;
        }
        self.operation(w);
        self.state = if is(w, "update") {
            State::Name(ONE_TABLE)
        } else if is(w, "create") {
            State::Ddl(Verb::Create)
        } else if is(w, "drop") {
            State::Ddl(Verb::Drop)
        } else if is(w, "alter") {
            State::Ddl(Verb::Alter)
        } else if is(w, "truncate") {
            State::Ddl(Verb::Truncate)
        } else if is(w, "explain") {
            State::Explain
        } else if is(w, "copy") {
            State::Name(INTO_TABLE)
        } else if is(w, "call") {
            State::Name(NameCtx {
                table: false,
                ..INTO_TABLE
            })
        } else if query {
            State::Idle
        } else {
            // BEGIN, COMMIT, SET, PRAGMA, VACUUM, GRANT, ...: nothing more to learn.
            State::Rest
        };
    }

    /// A word after `CREATE`/`DROP`/`ALTER`/`TRUNCATE`.
    fn ddl_word(&mut self, verb: Verb, w: &str) {
        if is_any(w, DDL_MODIFIERS) {
            self.extend_operation(w);
            return;
        }
        let table_like = is_any(w, &["table", "view", "sequence"]);
        if table_like || is_any(w, OBJECT_TYPES) {
            self.extend_operation(w);
        }
        self.state = match verb {
            _ if table_like => State::Name(NameCtx {
                list: matches!(verb, Verb::Drop | Verb::Truncate),
                table: true,
                keep_before_paren: true,
                last: false,
            }),
            Verb::Create if is(w, "index") => State::IndexName,
            Verb::Truncate if is(w, "only") => State::Name(FROM_LIST),
            Verb::Truncate => {
                // The word is the first name (`TRUNCATE users`).
                self.name.clear();
                self.name.push_str(w);
                State::InName(FROM_LIST)
            }
            _ => State::Rest,
        };
    }

    fn open(&mut self, saved: State) {
        if self.stack.len() >= MAX_DEPTH {
            // Too deep to follow: nothing more is learnt until it closes again.
            self.too_deep += 1;
            self.state = State::Rest;
            return;
        }
        self.stack.push(Frame {
            saved,
            query: false,
        });
        self.state = State::ParenStart;
    }

    fn close(&mut self) {
        self.commit_name();
        if self.too_deep > 0 {
            self.too_deep -= 1;
            return;
        }
        if let Some(frame) = self.stack.pop() {
            self.state = frame.saved;
        }
    }

    fn operation(&mut self, w: &str) {
        if self.main.is_none() && self.stack.is_empty() {
            self.main = Some(self.parts.len());
        }
        self.parts.push(Part {
            text: w.to_owned(),
            table: false,
        });
    }

    fn extend_operation(&mut self, w: &str) {
        if let Some(part) = self.parts.last_mut() {
            part.text.push(' ');
            part.text.push_str(w);
        }
    }

    /// Ends the name being read, if any, as a table (or a procedure).
    fn commit_name(&mut self) {
        if let State::InName(ctx) | State::InNameDot(ctx) = self.state {
            self.commit_name_as(ctx.table);
        }
    }

    fn commit_name_as(&mut self, table: bool) {
        if self.name.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.name);
        self.parts.push(Part { text, table });
    }

    fn end_statement(&mut self) {
        if self.started {
            let main = self
                .main
                .and_then(|i| self.parts.get(i))
                .map(|p| p.text.clone());
            self.operations.push(main);
            self.all.append(&mut self.parts);
        }
        self.parts.clear();
        self.main = None;
        self.started = false;
        self.stack.clear();
        self.too_deep = 0;
        self.state = State::Start;
    }

    /// `(summary, operation, collection)`.
    fn finish(mut self) -> (Option<String>, Option<String>, Option<String>) {
        self.commit_name();
        self.end_statement();
        let mut summary = String::new();
        for part in &self.all {
            let extra = usize::from(!summary.is_empty()) + part.text.len();
            if summary.len() + extra > MAX_SUMMARY {
                break;
            }
            if !summary.is_empty() {
                summary.push(' ');
            }
            summary.push_str(&part.text);
        }
        let operation = match self.operations.split_first() {
            Some((Some(first), rest)) if rest.iter().all(|o| o.as_deref() == Some(first)) => {
                Some(first.clone())
            }
            _ => None,
        };
        // A collection only when exactly one table is named (however often) and nothing else.
        let mut tables = self.all.iter().filter(|p| p.table).map(|p| &p.text);
        let collection = match tables.next() {
            Some(first) if tables.all(|t| t == first) && first.len() <= MAX_SUMMARY => {
                Some(first.clone())
            }
            _ => None,
        };
        (
            (!summary.is_empty()).then_some(summary),
            operation,
            collection,
        )
    }
}

enum Step {
    Done(bool),
    Again,
}

/// Words that start a query (inside parentheses too).
fn is_query_start(w: &str) -> bool {
    is_any(
        w,
        &["select", "with", "insert", "update", "delete", "values"],
    )
}

#[cfg(test)]
mod tests;
