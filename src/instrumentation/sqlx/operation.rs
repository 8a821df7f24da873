//! One query's way through the adapter: its text read once per thread (the cache), the query
//! rebuilt from its parts so the text can be read before the driver takes it, the span current
//! while the driver's future or stream is polled, and the error told in the conventions' words.

use crate::format::sql::{self, Dialect};
use crate::instrumentation::db::{
    DbBoundDuration, DbError, DbInstruments, DbOperation, DbQuery, DbTarget,
};
use futures_core::Stream;
use opentelemetry::Context;
use sqlx::error::{BoxDynError, ErrorKind};
use sqlx::{Database, Error, Execute, SqlStr};
use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{self, ready, Poll};

/// What every query through one pool (and its connections and transactions) shares.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) instruments: DbInstruments,
    pub(super) target: Arc<DbTarget>,
    pub(super) dialect: Dialect,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only what the spans carry: never the connect options (they hold the password).
        f.debug_struct("Shared")
            .field("system", &self.target.system)
            .field("namespace", &self.target.namespace)
            .field("address", &self.target.address)
            .field("port", &self.target.port)
            .finish()
    }
}

impl Shared {
    /// Starts an operation that has no text of its own (`BEGIN`, `COMMIT`, `ROLLBACK`): its
    /// operation name is its summary.
    pub(super) fn start_without_text(&self, operation: &'static str) -> DbOperation {
        let name: Arc<str> = Arc::from(operation);
        DbOperation::start(
            &self.instruments,
            &self.target,
            DbQuery {
                operation: Some(name.clone()),
                summary: Some(name),
                ..DbQuery::default()
            },
        )
    }
}

/// Starts the operation of a query whose text is `sql`, on `shared`'s pool.
pub(super) fn start(shared: &Arc<Shared>, sql: &str) -> DbOperation {
    let (query, name, bound) = lookup(shared, sql);
    let (instruments, target) = (&shared.instruments, &shared.target);
    match name {
        Some(name) => DbOperation::start_named(instruments, target, query, Cow::Borrowed(name)),
        None => DbOperation::start(instruments, target, query),
    }
    .with_bound(bound)
}

/// Bytes of span names the process may keep for good.
const NAME_BUDGET: usize = 64 * 1024;

/// The span name `summary`, shared for the process: a summary has low cardinality by design,
/// so each distinct one is kept once (within [`NAME_BUDGET`]) and a span takes it without a
/// copy. `None` past the budget: the span copies its name, as a span with no summary does.
fn shared_name(summary: &str) -> Option<&'static str> {
    static NAMES: Mutex<(Vec<&'static str>, usize)> = Mutex::new((Vec::new(), 0));
    let mut names = crate::sync::lock(&NAMES);
    let (known, used) = &mut *names;
    if let Some(name) = known.iter().find(|n| **n == summary) {
        return Some(name);
    }
    if *used + summary.len() > NAME_BUDGET {
        return None;
    }
    *used += summary.len();
    let name: &'static str = Box::leak(Box::from(summary));
    known.push(name);
    Some(name)
}

// ---------------------------------------------------------------------------------------------
// The per-thread cache of what a query's text tells

/// What the scanner found in one text, and the duration histogram bound to it, for one pool.
struct Entry {
    /// Where the text was seen (a `&'static str` is seen at one address every time).
    addr: usize,
    /// The pool's (kept alive by the entry, so its address is not another pool's).
    shared: Arc<Shared>,
    source: Box<str>,
    operation: Option<Arc<str>>,
    collection: Option<Arc<str>>,
    summary: Option<Arc<str>>,
    text: Option<Arc<str>>,
    /// The span name, when shared ([`shared_name`]).
    name: Option<&'static str>,
    bound: Option<DbBoundDuration>,
}

impl Entry {
    fn new(shared: &Arc<Shared>, sql: &str, addr: usize) -> Self {
        let found = sql::analyze(sql, shared.dialect);
        let mut entry = Entry {
            addr,
            shared: shared.clone(),
            source: sql.into(),
            operation: found.operation.map(Arc::from),
            collection: found.collection.map(Arc::from),
            summary: found.summary.clone().map(Arc::from),
            text: (!found.text.trim().is_empty()).then(|| Arc::from(found.text)),
            name: found.summary.as_deref().and_then(shared_name),
            bound: None,
        };
        entry.bound = shared.instruments.bind(&shared.target, &entry.query());
        entry
    }

    fn query(&self) -> DbQuery {
        DbQuery {
            operation: self.operation.clone(),
            collection: self.collection.clone(),
            summary: self.summary.clone(),
            text: self.text.clone(),
            batch_size: None,
        }
    }
}

/// Slots per thread: `1 << BITS`.
const BITS: u32 = 6;
const SLOTS: usize = 1 << BITS;

/// Texts longer than this are scanned on every call rather than kept (a generated bulk
/// statement would otherwise pin its copy per thread).
const MAX_CACHED: usize = 8 * 1024;

thread_local! {
    /// Direct-mapped by the text's address and length and the pool; a hit is checked by
    /// content.
    static CACHE: RefCell<[Option<Entry>; SLOTS]> =
        const { RefCell::new([const { None }; SLOTS]) };
}

/// A query's attributes, its shared span name, and its bound duration.
type Found = (DbQuery, Option<&'static str>, Option<DbBoundDuration>);

/// What `sql` tells, and the duration bound to it for `shared`'s pool: from this thread's
/// cache when the same text (usually a `&'static str`) was seen at the same address for the
/// same pool before; else scanned, and kept.
fn lookup(shared: &Arc<Shared>, sql: &str) -> Found {
    let addr = sql.as_ptr() as usize;
    let pool = Arc::as_ptr(shared) as usize;
    let slot = crate::sync::address_slot(addr, sql.len() ^ pool.rotate_left(29), BITS);
    let hit = CACHE
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let entry = cache[slot].as_ref()?;
            (entry.addr == addr && Arc::ptr_eq(&entry.shared, shared) && *entry.source == *sql)
                .then(|| (entry.query(), entry.name, entry.bound.clone()))
        })
        .ok()
        .flatten();
    if let Some(hit) = hit {
        return hit;
    }
    let entry = Entry::new(shared, sql, addr);
    let found = (entry.query(), entry.name, entry.bound.clone());
    if sql.len() <= MAX_CACHED {
        let _ = CACHE.try_with(|cache| {
            if let Ok(mut cache) = cache.try_borrow_mut() {
                cache[slot] = Some(entry);
            }
        });
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The query, taken apart and put back together

/// A query taken apart so that its text can be read before the driver takes it, then handed to
/// the driver exactly as it was: the same text, prepared statement, arguments (or the error
/// binding them gave) and persistence.
pub(super) struct Rebuilt<DB: Database> {
    sql: SqlStr,
    statement: Option<DB::Statement>,
    arguments: Option<Result<Option<DB::Arguments>, BoxDynError>>,
    persistent: bool,
}

impl<DB: Database> Rebuilt<DB> {
    pub(super) fn new<'q, E: Execute<'q, DB>>(mut query: E) -> Self {
        let persistent = query.persistent();
        let statement = query.statement().cloned();
        let arguments = Some(query.take_arguments());
        let sql = query.sql();
        Rebuilt {
            sql,
            statement,
            arguments,
            persistent,
        }
    }

    pub(super) fn text(&self) -> &str {
        self.sql.as_str()
    }
}

impl<'q, DB: Database> Execute<'q, DB> for Rebuilt<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        self.arguments.take().unwrap_or(Ok(None))
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

// ---------------------------------------------------------------------------------------------
// The driver's future and stream, inside the span

/// The driver's future with the operation's span current while it is polled; the span ends
/// when it completes, or (with no error) when it is dropped.
pub(super) struct TracedFuture<F> {
    /// `None` once dropped inside the span.
    inner: Option<F>,
    op: Option<DbOperation>,
}

impl<F> TracedFuture<F> {
    pub(super) fn new(inner: F, op: DbOperation) -> Self {
        TracedFuture {
            inner: Some(inner),
            op: Some(op),
        }
    }
}

fn attach(op: Option<&DbOperation>) -> Option<opentelemetry::ContextGuard> {
    op.and_then(DbOperation::context)
        .map(|cx| Context::attach(cx.clone()))
}

impl<F, T> Future for TracedFuture<F>
where
    F: Future<Output = Result<T, Error>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Pending;
        };
        let output = {
            let _attached = attach(this.op.as_ref());
            ready!(Pin::new(inner).poll(cx))
        };
        if let Some(op) = this.op.take() {
            op.end(output.as_ref().err().and_then(classify));
        }
        Poll::Ready(output)
    }
}

impl<F> Drop for TracedFuture<F> {
    fn drop(&mut self) {
        if self.op.is_some() {
            // What the driver does when dropped (a rollback queued, a log line) is inside.
            let _attached = attach(self.op.as_ref());
            self.inner = None;
        }
    }
}

/// The driver's stream with the operation's span current while it is polled; the span ends
/// at the stream's end, at its first error, or (with no error) when it is dropped.
pub(super) struct TracedStream<S> {
    inner: Option<S>,
    op: Option<DbOperation>,
}

impl<S> TracedStream<S> {
    pub(super) fn new(inner: S, op: DbOperation) -> Self {
        TracedStream {
            inner: Some(inner),
            op: Some(op),
        }
    }
}

impl<S, T> Stream for TracedStream<S>
where
    S: Stream<Item = Result<T, Error>> + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let item = {
            let _attached = attach(this.op.as_ref());
            ready!(Pin::new(inner).poll_next(cx))
        };
        match &item {
            None => {
                if let Some(op) = this.op.take() {
                    op.end(None);
                }
            }
            Some(Err(error)) => {
                if let Some(op) = this.op.take() {
                    op.end(classify(error));
                }
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.as_ref().map_or((0, Some(0)), Stream::size_hint)
    }
}

impl<S> Drop for TracedStream<S> {
    fn drop(&mut self) {
        if self.op.is_some() {
            let _attached = attach(self.op.as_ref());
            self.inner = None;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The operation's error in the conventions' words, or `None` when it did not fail:
/// [`Error::RowNotFound`] (from `fetch_one`) is the database answering with no row, not a
/// failed operation.
///
/// Nothing is taken from an error's message: the database's messages and details can quote
/// values (`Key (email)=(...) already exists`, `invalid input syntax for type integer: "..."`).
pub(super) fn classify(error: &Error) -> Option<DbError> {
    let (error_type, description): (&'static str, &'static str) = match error {
        Error::RowNotFound => return None,
        Error::Database(db) => {
            let kind = match db.kind() {
                ErrorKind::UniqueViolation => "unique violation",
                ErrorKind::ForeignKeyViolation => "foreign key violation",
                ErrorKind::NotNullViolation => "not null violation",
                ErrorKind::CheckViolation => "check violation",
                ErrorKind::ExclusionViolation => "exclusion violation",
                _ => "database error",
            };
            return Some(match db.code() {
                Some(code) => {
                    let code: Cow<'static, str> = Cow::Owned(code.into_owned());
                    DbError {
                        description: Cow::Owned(format!("{kind} {code}")),
                        status_code: Some(code.clone()),
                        error_type: code,
                    }
                }
                None => DbError {
                    status_code: None,
                    error_type: Cow::Borrowed("_OTHER"),
                    description: Cow::Borrowed(kind),
                },
            });
        }
        Error::Io(io) => (
            io_error_type(io.kind()),
            "I/O error talking to the database",
        ),
        Error::Tls(_) => ("tls", "TLS error"),
        Error::Protocol(_) => ("protocol", "unexpected data from the database"),
        Error::PoolTimedOut => ("pool_timeout", "timed out waiting for a pool connection"),
        Error::PoolClosed => ("pool_closed", "the pool is closed"),
        Error::WorkerCrashed => ("worker_crashed", "the connection's worker crashed"),
        Error::Configuration(_) => ("configuration", "configuration error"),
        Error::InvalidArgument(_) => ("invalid_argument", "invalid argument"),
        Error::TypeNotFound { .. } => ("type_not_found", "type not found"),
        Error::ColumnIndexOutOfBounds { .. } | Error::ColumnNotFound(_) => {
            ("column_not_found", "column not found")
        }
        Error::ColumnDecode { .. } | Error::Decode(_) => ("decode", "could not decode a value"),
        Error::Encode(_) => ("encode", "could not encode an argument"),
        Error::AnyDriverError(_) => ("any_driver", "Any driver error"),
        Error::InvalidSavePointStatement => ("invalid_savepoint", "invalid savepoint statement"),
        Error::BeginFailed => ("begin_failed", "could not begin the transaction"),
        _ => ("_OTHER", "error"),
    };
    Some(DbError {
        status_code: None,
        error_type: Cow::Borrowed(error_type),
        description: Cow::Borrowed(description),
    })
}

/// `error.type` of an I/O error: its kind, for the common ones.
fn io_error_type(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => "connection_refused",
        K::ConnectionReset => "connection_reset",
        K::ConnectionAborted => "connection_aborted",
        K::NotConnected => "not_connected",
        K::BrokenPipe => "broken_pipe",
        K::TimedOut => "timeout",
        K::UnexpectedEof => "unexpected_eof",
        K::NotFound => "not_found",
        K::PermissionDenied => "permission_denied",
        K::AddrNotAvailable => "address_not_available",
        _ => "io",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(dialect: Dialect) -> Arc<Shared> {
        Arc::new(Shared {
            instruments: DbInstruments::new("sqlx-cache-test"),
            target: Arc::new(DbTarget {
                system: "sqlite",
                namespace: None,
                address: None,
                port: None,
            }),
            dialect,
        })
    }

    #[test]
    fn the_cache_answers_by_address_content_and_pool() {
        static SQL: &str = "SELECT name FROM users WHERE id = ?";
        let lite = shared(Dialect::Sqlite);
        let (a, name, _) = lookup(&lite, SQL);
        assert_eq!(name, Some("SELECT users"));
        let (b, again, _) = lookup(&lite, SQL);
        assert!(std::ptr::eq(name.unwrap(), again.unwrap()));
        assert_eq!(a.summary.as_deref(), Some("SELECT users"));
        assert!(Arc::ptr_eq(
            a.summary.as_ref().unwrap(),
            b.summary.as_ref().unwrap()
        ));
        // Another pool (here another dialect), another entry.
        let pg = shared(Dialect::Postgres);
        let (c, _, _) = lookup(&pg, "SELECT \"x\" FROM t WHERE a = 1");
        let (d, _, _) = lookup(&lite, "SELECT \"x\" FROM t WHERE a = 1");
        assert_eq!(c.text.as_deref(), Some("SELECT \"x\" FROM t WHERE a = ?"));
        assert_eq!(d.text.as_deref(), Some("SELECT ? FROM t WHERE a = ?"));
        let (e, _, _) = lookup(&pg, SQL);
        assert!(!Arc::ptr_eq(
            a.summary.as_ref().unwrap(),
            e.summary.as_ref().unwrap()
        ));
        // Same address, other content: not a hit.
        let mut owned = String::from("SELECT a FROM one");
        let (first, _, _) = lookup(&pg, &owned);
        owned.replace_range(14.., "two");
        let (second, _, _) = lookup(&pg, &owned);
        assert_eq!(first.collection.as_deref(), Some("one"));
        assert_eq!(second.collection.as_deref(), Some("two"));
        // Nothing to say: no text.
        assert!(lookup(&pg, "  ").0.text.is_none());
    }

    #[test]
    fn errors_are_classes_without_messages() {
        assert!(classify(&Error::RowNotFound).is_none());
        let e = classify(&Error::PoolTimedOut).unwrap();
        assert_eq!(e.error_type, "pool_timeout");
        assert!(e.status_code.is_none());
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused s3cr3t");
        let e = classify(&Error::Io(refused)).unwrap();
        assert_eq!(e.error_type, "connection_refused");
        assert!(!e.description.contains("s3cr3t"));
        let e = classify(&Error::Protocol("s3cr3t".into())).unwrap();
        assert_eq!(e.error_type, "protocol");
        assert!(!e.description.contains("s3cr3t"));
    }
}
