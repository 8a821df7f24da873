//! The summary of a query's text: its operations and tables in order, its own operation, and
//! its one table, from the tokens, by a small state machine with a stack of parentheses.

use super::lex::Token;
use super::MAX_SUMMARY;

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
pub(super) struct Summarizer {
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
    pub(super) fn feed(&mut self, token: Token<'_>) -> bool {
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
    pub(super) fn finish(mut self) -> (Option<String>, Option<String>, Option<String>) {
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
