//! The sqlx adapter: a CLIENT span and `db.client.operation.duration` for every query run
//! through an [`InstrumentedPool`], or a connection or transaction taken from it, after the
//! stable database semantic conventions.
//!
//! Built on the shared database operation (`instrumentation::db`), which uses
//! `SpanBuilder::start_context`, `SpanBuilder::attributes_owned`, `state::active` and, to bind
//! the duration's attributes once per query, the registry's `InstrumentCell::sdk`. `sql.rs` is
//! the SQL scanner (sanitized text, summary), `operation.rs` the per-query path (the per-thread
//! cache of what a text tells, the traced future and stream, errors).

mod operation;

use self::operation::{start, Rebuilt, Shared, TracedFuture, TracedStream};
use super::db::{DbInstruments, DbTarget};
use crate::format::sql::Dialect;
use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire as _, Database, Either, Error, Execute, Executor, Pool, SqlStr, Transaction};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// The component whose tracer and meter the adapter uses unless told otherwise.
const DEFAULT_COMPONENT: &str = "sqlx";

/// The databases the adapter knows: [`sqlx::Sqlite`] and [`sqlx::Postgres`]. Sealed. Example:
/// [`instrument_sqlx`].
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub trait InstrumentedDatabase: Database + sealed::Sealed {}

impl InstrumentedDatabase for sqlx::Sqlite {}
impl InstrumentedDatabase for sqlx::Postgres {}

mod sealed {
    /// What the adapter reads from a pool's connect options: `(namespace, address, port)`.
    pub(super) type Where = (Option<String>, Option<String>, Option<u16>);

    /// How a database is named and where a pool's connect options say it is.
    pub trait Sealed: sqlx::Database {
        /// `db.system.name`.
        const SYSTEM: &'static str;
        /// Whether `"..."` may be a string (SQLite) rather than always an identifier.
        const SQLITE: bool;
        /// Reads namespace, address and port; never credentials.
        fn locate(options: &<Self::Connection as sqlx::Connection>::Options) -> Where;
    }

    impl Sealed for sqlx::Sqlite {
        const SYSTEM: &'static str = "sqlite";
        const SQLITE: bool = true;
        fn locate(options: &sqlx::sqlite::SqliteConnectOptions) -> Where {
            let file = options.get_filename().to_string_lossy();
            let memory = file == ":memory:"
                || file.starts_with("file:sqlx-in-memory-")
                || (file.starts_with("file:") && file.contains("mode=memory"));
            let namespace = if memory {
                ":memory:".to_owned()
            } else {
                file.into_owned()
            };
            (Some(namespace), None, None)
        }
    }

    impl Sealed for sqlx::Postgres {
        const SYSTEM: &'static str = "postgresql";
        const SQLITE: bool = false;
        fn locate(options: &sqlx::postgres::PgConnectOptions) -> Where {
            let namespace = options.get_database().map(str::to_owned);
            let port = options.get_port();
            let host = options.get_host();
            // A Unix socket: its path, as libpq builds it; no port.
            let socket = match options.get_socket() {
                Some(dir) => Some(dir.display().to_string()),
                None => host.starts_with('/').then(|| host.to_owned()),
            };
            match socket {
                Some(dir) => (namespace, Some(format!("{dir}/.s.PGSQL.{port}")), None),
                None => (namespace, Some(host.to_owned()), Some(port)),
            }
        }
    }
}

fn shared<DB: InstrumentedDatabase>(pool: &Pool<DB>, component: &str) -> Shared {
    let (namespace, address, port) = DB::locate(&pool.connect_options());
    Shared {
        instruments: DbInstruments::new(component),
        target: Arc::new(DbTarget {
            system: DB::SYSTEM,
            namespace: namespace.map(Arc::from),
            address: address.map(Arc::from),
            port,
        }),
        dialect: if DB::SQLITE {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        },
    }
}

/// Wraps `pool` so that every query run through it gets a CLIENT span and is measured in
/// `db.client.operation.duration` (see [`InstrumentedPool`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// # let capture = unitel::testing::capture();
/// // DATABASE_URL in production (`sqlx::PgPool::connect(&url)`); SQLite here.
/// let pool = unitel::instrument_sqlx(sqlx::SqlitePool::connect("sqlite::memory:").await?);
/// sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)").execute(&pool).await?;
///
/// let telemetry = unitel::get_telemetry("orders");
/// let pending: (i64,) = telemetry
///     .trace("count_pending")
///     .instrument(async {
///         // A CLIENT span `SELECT orders`, child of count_pending, with the sanitized query.
///         sqlx::query_as("SELECT count(*) FROM orders WHERE status = ?")
///             .bind("pending")
///             .fetch_one(&pool)
///             .await
///     })
///     .await?;
/// # assert_eq!(pending.0, 0);
/// # let (parent, query) = (capture.span("count_pending").unwrap(), capture.span("SELECT orders").unwrap());
/// # assert_eq!(query.parent_span_id, Some(parent.span_id));
/// # assert_eq!(query.kind, unitel::SpanKind::Client);
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub fn instrument_sqlx<DB: InstrumentedDatabase>(pool: Pool<DB>) -> InstrumentedPool<DB> {
    InstrumentedPool::new(pool)
}

/// A [`sqlx::Pool`] whose queries are traced and measured: `&InstrumentedPool` is an
/// [`Executor`], so query code runs unchanged (`query(..).fetch_all(&pool)`), and
/// [`acquire`](Self::acquire) and [`begin`](Self::begin) give a connection and a transaction
/// that trace their queries too. Everything else is the pool's: it dereferences to it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use unitel::InstrumentedPool;
///
/// let pool = InstrumentedPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?);
/// sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
///     .execute(&pool)
///     .await?;
///
/// let mut tx = pool.begin().await?;
/// sqlx::query("INSERT INTO users (name) VALUES (?)")
///     .bind("Ada")
///     .execute(&mut *tx)
///     .await?;
/// tx.commit().await?;
///
/// let mut conn = pool.acquire().await?;
/// let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM users")
///     .fetch_all(&mut *conn)
///     .await?;
/// # assert_eq!(names.len(), 1);
/// # Ok(())
/// # }
/// ```
///
/// | setting | default |
/// |---|---|
/// | [`component`](Self::component) | `"sqlx"` |
///
/// # The span
///
/// One CLIENT span per query (per `execute`, `fetch`, `fetch_all`, `fetch_one`,
/// `fetch_optional`, `fetch_many`, `execute_many` call), a child of the span current when the
/// query is run (for `query(..).fetch_all(&pool).await`, when it is first polled) and current
/// itself while the driver works, so logs and spans made inside belong to it. It covers the
/// whole call: waiting for a pool connection, preparing, running, reading the rows. A stream
/// (`fetch`, `fetch_many`) ends its span at its end, at its first error, or when dropped.
/// [`begin`](Self::begin), [`commit`](InstrumentedTransaction::commit) and
/// [`rollback`](InstrumentedTransaction::rollback) have spans too (`BEGIN`, `COMMIT`,
/// `ROLLBACK`); `prepare` and `prepare_with` are passed through without one.
///
/// Named `{db.query.summary}` (`SELECT users`, `INSERT orders SELECT carts`), else after the
/// conventions' fallbacks. Attributes:
///
/// | attribute | value |
/// |---|---|
/// | `db.system.name` | `postgresql`, `sqlite` |
/// | `db.namespace` | PostgreSQL: the database named in the connect options (not the schema). SQLite: the database file as given, `:memory:` for an in-memory database |
/// | `server.address`, `server.port` | PostgreSQL: the host and port of the connect options; for a Unix socket, the socket's path and no port. SQLite: none |
/// | `db.query.text` | the query's text, every literal replaced by `?` and comments dropped (a parameterised query's text is kept as it is); at most 2048 bytes |
/// | `db.query.summary` | operations and tables in order (`SELECT users orders`), at most 255 bytes |
/// | `db.operation.name` | the statement's operation (`SELECT`, `CREATE TABLE`), when the text has one statement, or several with the same operation |
/// | `db.collection.name` | the table, when the text names exactly one |
/// | `db.response.status_code` | on a database error: its code (the SQLSTATE, `23505`; SQLite's extended result code, `2067`) |
/// | `error.type` | on failure: the database error's code, else a class: `pool_timeout`, `pool_closed`, `connection_refused` (and other I/O kinds), `io`, `tls`, `protocol`, `encode`, `decode`, ... |
///
/// Operations, tables and the summary keep the case they were written in. No credentials are
/// read: user and password stay in the connect options.
///
/// Span status: `Error` when the call failed, described without the database's message (it
/// can quote values): `unique violation 23505`. A `fetch_one` that finds no row
/// ([`sqlx::Error::RowNotFound`]) is not a failed operation: the database answered.
///
/// # The metric
///
/// `db.client.operation.duration` (histogram, `s`, buckets 0.001 .. 10 s) on the component's
/// meter, with the span's attributes but `db.query.text`.
///
/// # sqlx's own statement log
///
/// sqlx logs each statement through `tracing` at target `sqlx::query` (at DEBUG, and at WARN
/// when it takes a second or more) with the statement's raw text, literals included, and
/// unitel's log outputs take `tracing` events. The span already has the sanitized text and the
/// duration: turn sqlx's log off on the connect options
/// ([`disable_statement_logging`](sqlx::ConnectOptions::disable_statement_logging)), or filter
/// the target out (`RUST_LOG=info,sqlx::query=off`).
///
/// # Off
///
/// While telemetry is not configured, disabled or shut down, a query goes straight to the pool
/// (one atomic load more than the bare call).
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub struct InstrumentedPool<DB: Database> {
    pool: Pool<DB>,
    shared: Arc<Shared>,
}

impl<DB: Database> Clone for InstrumentedPool<DB> {
    fn clone(&self) -> Self {
        InstrumentedPool {
            pool: self.pool.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<DB: Database> std::fmt::Debug for InstrumentedPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the pool's connect options: they hold the password.
        f.debug_struct("InstrumentedPool")
            .field("db", &self.shared)
            .field("size", &self.pool.size())
            .field("num_idle", &self.pool.num_idle())
            .field("is_closed", &self.pool.is_closed())
            .finish()
    }
}

impl<DB: InstrumentedDatabase> InstrumentedPool<DB> {
    /// Wraps `pool`; its connect options are read once, for the database's name and address.
    pub fn new(pool: Pool<DB>) -> Self {
        let shared = Arc::new(shared(&pool, DEFAULT_COMPONENT));
        InstrumentedPool { pool, shared }
    }

    /// The unitel component whose tracer and meter record the queries (default `sqlx`): the
    /// spans' instrumentation scope and the metric's meter.
    pub fn component(mut self, component: &str) -> Self {
        Arc::make_mut(&mut self.shared).instruments = DbInstruments::new(component);
        self
    }

    /// A connection from the pool whose queries are traced (`&mut *conn` or `&mut conn` as the
    /// executor). Waiting for it has no span of its own; a query run on the pool itself covers
    /// the wait in its span.
    pub async fn acquire(&self) -> Result<InstrumentedConnection<DB>, Error> {
        let conn = self.pool.acquire().await?;
        Ok(InstrumentedConnection {
            inner: Instrumented {
                conn,
                shared: self.shared.clone(),
            },
        })
    }

    /// A connection from the pool with a transaction begun on it, in a `BEGIN` span.
    pub async fn begin(&self) -> Result<InstrumentedTransaction<'static, DB>, Error> {
        let shared = self.shared.clone();
        let tx = begin(&shared, self.pool.begin()).await?;
        Ok(InstrumentedTransaction {
            inner: Instrumented { conn: tx, shared },
        })
    }
}

impl<DB: Database> InstrumentedPool<DB> {
    /// The pool.
    pub fn inner(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The pool, unwrapped.
    pub fn into_inner(self) -> Pool<DB> {
        self.pool
    }
}

impl<DB: Database> Deref for InstrumentedPool<DB> {
    type Target = Pool<DB>;

    fn deref(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// Runs a `begin` future in a `BEGIN` span (while telemetry records).
async fn begin<T, F>(shared: &Shared, begin: F) -> Result<T, Error>
where
    F: std::future::Future<Output = Result<T, Error>> + Send,
{
    if crate::state::active().is_none() {
        return begin.await;
    }
    let op = shared.start_without_text("BEGIN");
    TracedFuture::new(Box::pin(begin), op).await
}

/// A connection from [`InstrumentedPool::acquire`]: `&mut conn` and `&mut *conn` are executors
/// whose queries are traced like the pool's. It returns to the pool when dropped. Example:
/// [`InstrumentedPool`].
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub struct InstrumentedConnection<DB: Database> {
    inner: Instrumented<PoolConnection<DB>>,
}

/// A transaction from [`InstrumentedPool::begin`] (or [`InstrumentedConnection::begin`]):
/// `&mut tx` and `&mut *tx` are executors whose queries are traced like the pool's, and
/// [`commit`](Self::commit) and [`rollback`](Self::rollback) have spans. Dropped without
/// either, sqlx rolls it back, with no span. Example: [`InstrumentedPool`].
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub struct InstrumentedTransaction<'c, DB: Database> {
    inner: Instrumented<Transaction<'c, DB>>,
}

/// The traced side of an [`InstrumentedConnection`] or [`InstrumentedTransaction`]: what
/// `&mut *conn` and `&mut *tx` give, an [`Executor`] when borrowed mutably. The sqlx value
/// inside (a [`PoolConnection`] or a [`Transaction`]) is [`inner_mut`](Self::inner_mut), for
/// what is not a query (`ping`, `close`, a nested savepoint of your own); queries run on it
/// directly are not traced. Example of `&mut *tx` and `&mut *conn`: [`InstrumentedPool`].
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub struct Instrumented<C> {
    conn: C,
    shared: Arc<Shared>,
}

impl<C> Instrumented<C> {
    /// The sqlx connection or transaction.
    pub fn inner(&self) -> &C {
        &self.conn
    }

    /// The sqlx connection or transaction; queries run on it directly are not traced.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C> std::fmt::Debug for Instrumented<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented")
            .field("db", &self.shared)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> std::fmt::Debug for InstrumentedConnection<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedConnection")
            .field("db", &self.inner.shared)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> std::fmt::Debug for InstrumentedTransaction<'_, DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedTransaction")
            .field("db", &self.inner.shared)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> Deref for InstrumentedConnection<DB> {
    type Target = Instrumented<PoolConnection<DB>>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl<DB: Database> DerefMut for InstrumentedConnection<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl<'c, DB: Database> Deref for InstrumentedTransaction<'c, DB> {
    type Target = Instrumented<Transaction<'c, DB>>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl<DB: Database> DerefMut for InstrumentedTransaction<'_, DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl<DB: InstrumentedDatabase> InstrumentedConnection<DB> {
    /// Begins a transaction on this connection, in a `BEGIN` span.
    pub async fn begin(&mut self) -> Result<InstrumentedTransaction<'_, DB>, Error> {
        let shared = self.inner.shared.clone();
        let tx = begin(&shared, (&mut self.inner.conn).begin()).await?;
        Ok(InstrumentedTransaction {
            inner: Instrumented { conn: tx, shared },
        })
    }

    /// The pool connection, unwrapped.
    pub fn into_inner(self) -> PoolConnection<DB> {
        self.inner.conn
    }
}

impl<'c, DB: InstrumentedDatabase> InstrumentedTransaction<'c, DB> {
    /// Commits the transaction (or releases the savepoint), in a `COMMIT` span.
    pub async fn commit(self) -> Result<(), Error> {
        let Instrumented { conn, shared } = self.inner;
        end_transaction(&shared, "COMMIT", conn.commit()).await
    }

    /// Rolls the transaction back (or to the savepoint), in a `ROLLBACK` span.
    pub async fn rollback(self) -> Result<(), Error> {
        let Instrumented { conn, shared } = self.inner;
        end_transaction(&shared, "ROLLBACK", conn.rollback()).await
    }

    /// Begins a nested transaction (a savepoint), in a `BEGIN` span.
    pub async fn begin(&mut self) -> Result<InstrumentedTransaction<'_, DB>, Error> {
        let shared = self.inner.shared.clone();
        let tx = begin(&shared, (&mut self.inner.conn).begin()).await?;
        Ok(InstrumentedTransaction {
            inner: Instrumented { conn: tx, shared },
        })
    }

    /// The sqlx transaction, unwrapped.
    pub fn into_inner(self) -> Transaction<'c, DB> {
        self.inner.conn
    }
}

async fn end_transaction<F>(shared: &Shared, operation: &'static str, end: F) -> Result<(), Error>
where
    F: std::future::Future<Output = Result<(), Error>> + Send,
{
    if crate::state::active().is_none() {
        return end.await;
    }
    let op = shared.start_without_text(operation);
    TracedFuture::new(Box::pin(end), op).await
}

/// Implements [`Executor`] for `$ty`, whose queries go to `$inner` (an executor of the same
/// database), traced with `$shared`. `$this` is `self`.
///
/// Only the methods sqlx requires are written, as sqlx's own executors do: `execute`,
/// `execute_many`, `fetch`, `fetch_all` (through `fetch_many`), `fetch_one` (through
/// `fetch_optional`) and `prepare` are the trait's defaults, so each query is one span.
macro_rules! traced_executor {
    (
        $db:ty: impl<$($lt:lifetime),*> Executor<$c:lifetime> for $ty:ty;
        |$this:ident| ($inner:expr, $shared:expr)
    ) => {
        impl<$($lt),*> Executor<$c> for $ty {
            type Database = $db;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxStream<'e, Result<Either<<$db as Database>::QueryResult, <$db as Database>::Row>, Error>>
            where
                $c: 'e,
                E: 'q + Execute<'q, $db>,
            {
                let $this = self;
                let (inner, shared) = ($inner, $shared);
                if crate::state::active().is_none() {
                    return inner.fetch_many(query);
                }
                let query = Rebuilt::new(query);
                let op = start(shared, query.text());
                Box::pin(TracedStream::new(inner.fetch_many(query), op))
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxFuture<'e, Result<Option<<$db as Database>::Row>, Error>>
            where
                $c: 'e,
                E: 'q + Execute<'q, $db>,
            {
                let $this = self;
                let (inner, shared) = ($inner, $shared);
                if crate::state::active().is_none() {
                    return inner.fetch_optional(query);
                }
                let query = Rebuilt::new(query);
                let op = start(shared, query.text());
                Box::pin(TracedFuture::new(inner.fetch_optional(query), op))
            }

            fn prepare_with<'e>(
                self,
                sql: SqlStr,
                parameters: &'e [<$db as Database>::TypeInfo],
            ) -> BoxFuture<'e, Result<<$db as Database>::Statement, Error>>
            where
                $c: 'e,
            {
                let $this = self;
                let (inner, _) = ($inner, $shared);
                inner.prepare_with(sql, parameters)
            }

            /// Passed through, with no span (what sqlx's query macros ask at compile time).
            #[doc(hidden)]
            fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<$db>, Error>>
            where
                $c: 'e,
            {
                let $this = self;
                let (inner, _) = ($inner, $shared);
                inner.describe(sql)
            }
        }
    };
}

/// The executors of one database: the pool, a connection, a transaction, and what `&mut *conn`
/// and `&mut *tx` give. Written per database rather than generic over it: a generic impl
/// would need `for<'x> &'x mut DB::Connection: Executor<'x>`, which sends the compiler into
/// an overflow wherever a pool's database is not yet inferred (sqlx's own comment in
/// `pool/executor.rs`), in code that does not even use the adapter.
macro_rules! traced_executors {
    ($db:ty) => {
        traced_executor! {
            $db: impl<'p> Executor<'p> for &'p InstrumentedPool<$db>;
            |this| (&this.pool, &this.shared)
        }

        traced_executor! {
            $db: impl<'c> Executor<'c> for &'c mut Instrumented<PoolConnection<$db>>;
            |this| (&mut *this.conn, &this.shared)
        }

        traced_executor! {
            $db: impl<'t, 'c> Executor<'t> for &'t mut Instrumented<Transaction<'c, $db>>;
            |this| (&mut *this.conn, &this.shared)
        }

        traced_executor! {
            $db: impl<'c> Executor<'c> for &'c mut InstrumentedConnection<$db>;
            |this| (&mut *this.inner.conn, &this.inner.shared)
        }

        traced_executor! {
            $db: impl<'t, 'c> Executor<'t> for &'t mut InstrumentedTransaction<'c, $db>;
            |this| (&mut *this.inner.conn, &this.inner.shared)
        }
    };
}

traced_executors!(sqlx::Sqlite);
traced_executors!(sqlx::Postgres);
