//! The redis adapter: a connection wrapper that gives every redis 1.x command, pipeline and
//! transaction a CLIENT span and a `db.client.operation.duration` measurement, after the
//! database semantic conventions and their Redis page.
//!
//! Built on the shared database operation (`super::db`) and `state::active` (so that a
//! command costs one branch while telemetry is off).

mod command;
mod names;
mod outcome;

use self::command::{Name, Packed, Shape, Text, OTHER};
use super::db::{DbBoundDuration, DbInstruments, DbOperation, DbQuery, DbTarget};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{self, Poll};

/// The component whose tracer and meter the wrapper uses unless told otherwise.
const DEFAULT_COMPONENT: &str = "redis";
/// `db.system.name`.
const SYSTEM: &str = "redis";
/// The span name and `db.operation.name` of a pipeline and of a transaction.
const PIPELINE: &str = "PIPELINE";
const MULTI: &str = "MULTI";

/// A redis connection whose commands are recorded: one CLIENT span and one
/// `db.client.operation.duration` measurement per command, pipeline or transaction.
///
/// It wraps any connection, async ([`redis::aio::ConnectionLike`]: `MultiplexedConnection`,
/// `ConnectionManager`) or sync ([`redis::ConnectionLike`]: `Connection`), and is one itself,
/// so typed commands ([`redis::AsyncCommands`], [`redis::Commands`]), [`redis::cmd`] and
/// [`redis::pipe`] work on it unchanged. It is `Clone` when the connection is, so a
/// `MultiplexedConnection` or `ConnectionManager` is wrapped once and cloned per task: the
/// clones share what the wrapper learns, such as the duration histogram bound to each command
/// (wrapping anew per request would bind it anew each time).
///
/// ```no_run
/// use redis::AsyncCommands as _;
///
/// # async fn run() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1/")?;
/// let connection = client.get_multiplexed_async_connection().await?;
/// let mut redis = unitel::instrument_redis(connection, &client);
///
/// redis.set::<_, _, ()>("greeting", "hello").await?; // span `SET`
/// let greeting: String = redis.get("greeting").await?; // span `GET`
/// let (a, b): (i64, i64) = redis::pipe()
///     .atomic()
///     .incr("a", 1)
///     .incr("b", 1)
///     .query_async(&mut redis) // span `MULTI`, db.operation.batch.size = 2
///     .await?;
/// # Ok(()) }
/// ```
///
/// | setting | default |
/// |---|---|
/// | [`component`](Self::component) | `"redis"` |
/// | [`with_query_text`](Self::with_query_text) | off |
///
/// # The span
///
/// A child of the caller's current span, current itself while the connection's future is
/// polled (or while the sync call runs). Its kind is CLIENT and its name is the command:
///
/// - a command: its name in upper case (`GET`, `HGETALL`, `JSON.SET`); for the commands with
///   subcommands (`CONFIG`, `CLIENT`, `ACL`, `XINFO`, `OBJECT`, `SCRIPT`, `FUNCTION`, `MEMORY`,
///   `CLUSTER`, `COMMAND`, `MODULE`, `SLOWLOG`, `LATENCY`, `PUBSUB`, `XGROUP`) the two words
///   when the subcommand is a known one (`CONFIG GET`, `CLIENT SETNAME`). A first argument
///   that is not a plain word (a letter, then letters, digits, `_`, `-`, `.`; 32 bytes at most)
///   is named `_OTHER`: the raw bytes are never used.
/// - a pipeline of two or more commands (or none): `PIPELINE`; a pipeline of one command is
///   that command (the conventions model a batch of one as a single operation).
/// - a transaction ([`Pipeline::atomic`], sent as `MULTI` .. `EXEC`): `MULTI`.
///
/// Attributes, all given at creation (for samplers):
///
/// | attribute | value |
/// |---|---|
/// | `db.system.name` | `redis` |
/// | `db.operation.name` | the span name; for a pipeline or transaction whose commands all have the same name, that name after `PIPELINE ` or `MULTI ` (`PIPELINE SET`), as the Redis conventions ask |
/// | `db.namespace` | the database index of the connection info (`"0"`), as the connection was opened: a later `SELECT` is not followed |
/// | `server.address`, `server.port` | the host and port of the connection info; for a Unix socket, its path and no port |
/// | `db.operation.batch.size` | the number of commands of a pipeline, or of a transaction without its `MULTI` and `EXEC` (not set for one) |
/// | `db.query.text` | only with [`with_query_text`](Self::with_query_text) |
///
/// No argument of a command is ever recorded: no key, no value, no password.
///
/// # Errors
///
/// A command fails when the server answers with an error, or when the client gets no answer.
/// The span's status is then `Error` and it carries `error.type`; its status description is
/// the same short word, never the error's message (redis error messages can quote the
/// arguments).
///
/// - A server error (`WRONGTYPE`, `ERR`, `NOPERM`, `EXECABORT` for a discarded transaction):
///   the error prefix is `db.response.status_code` and `error.type`. A prefix that is not an
///   upper-case word (a script's `error_reply` can start with anything) is `_OTHER`. For a
///   pipeline or a transaction, the first failed command's prefix.
/// - No answer: `error.type` is `connection_refused`, `timeout`, `connection_dropped` or `io`
///   for I/O errors, `parse` for a reply the client could not read, and the snake-case name of
///   the client library's [`redis::ErrorKind`] for the rest (`_OTHER` when unnamed).
///
/// A future dropped before it completes ends its span without an error.
///
/// # The metric
///
/// `db.client.operation.duration` (histogram, `s`, buckets 0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
/// 1, 5, 10) on the component's meter, with `db.system.name`, `db.operation.name`,
/// `db.namespace`, `server.address`, `server.port`, and on failure
/// `db.response.status_code` and `error.type`. Never `db.query.text`.
///
/// # Off
///
/// While telemetry is not configured, disabled or shut down, a command goes straight to the
/// connection: nothing is read from it and nothing is recorded.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Clone)]
pub struct InstrumentedRedis<C> {
    inner: C,
    shared: Arc<Shared>,
}

/// What every clone of one wrapper shares.
#[derive(Clone)]
struct Shared {
    component: Box<str>,
    instruments: DbInstruments,
    target: Arc<DbTarget>,
    query_text: bool,
    /// The duration histogram bound to each known command's success attributes, made on the
    /// command's first success: a measurement then hashes no attributes.
    bound: OnceLock<Box<[OnceLock<DbBoundDuration>]>>,
}

/// `InstrumentedRedis::new(connection, client.get_connection_info())`: records every command
/// of `connection`, which `client` opened (see [`InstrumentedRedis`]).
///
/// ```no_run
/// # async fn run() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1/")?;
/// let manager = client.get_connection_manager().await?;
/// let redis = unitel::instrument_redis(manager, &client);
/// # let _ = redis;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub fn instrument_redis<C>(connection: C, client: &redis::Client) -> InstrumentedRedis<C> {
    InstrumentedRedis::new(connection, client.get_connection_info())
}

impl<C> InstrumentedRedis<C> {
    /// Wraps `connection`, opened with `info` (`client.get_connection_info()`), on the
    /// component `redis`, without `db.query.text`.
    ///
    /// Only the address, the port and the database index are taken from `info`; its
    /// credentials are neither kept nor read.
    pub fn new(connection: C, info: &ConnectionInfo) -> Self {
        InstrumentedRedis {
            inner: connection,
            shared: Arc::new(Shared {
                component: DEFAULT_COMPONENT.into(),
                instruments: DbInstruments::new(DEFAULT_COMPONENT),
                target: Arc::new(target(info)),
                query_text: false,
                bound: OnceLock::new(),
            }),
        }
    }

    /// The unitel component whose tracer and meter record the commands (default `redis`):
    /// the spans' instrumentation scope and the metric's meter.
    pub fn component(mut self, component: &str) -> Self {
        let shared = Arc::make_mut(&mut self.shared);
        shared.component = component.into();
        shared.instruments = DbInstruments::new(component);
        shared.bound = OnceLock::new();
        self
    }

    /// Records `db.query.text` on the spans (off by default): each command's name followed by
    /// one `?` per argument, keys included (`SET ? ?`); the commands of a pipeline separated by
    /// `; ` (`MULTI; INCR ?; INCR ?; EXEC` for a transaction); at most 2048 bytes, cut after a
    /// whole command or argument with `...`. Never on the metric.
    pub fn with_query_text(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.shared).query_text = on;
        self
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The wrapped connection, to call what the wrapper does not forward (pub/sub); commands
    /// sent through it are not recorded.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// The wrapped connection, unwrapped.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

/// Prints where the connection goes, never the connection itself (its options may hold a
/// password).
impl<C> std::fmt::Debug for InstrumentedRedis<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = &self.shared;
        let target = &shared.target;
        f.debug_struct("InstrumentedRedis")
            .field("connection", &std::any::type_name::<C>())
            .field("component", &&*shared.component)
            .field("server.address", &target.address.as_deref())
            .field("server.port", &target.port)
            .field("db.namespace", &target.namespace.as_deref())
            .field("query_text", &shared.query_text)
            .finish()
    }
}

/// The server and database of `info`, without its credentials.
fn target(info: &ConnectionInfo) -> DbTarget {
    let (address, port): (Option<Arc<str>>, Option<u16>) = match info.addr() {
        ConnectionAddr::Tcp(host, port) => (Some(host.as_str().into()), Some(*port)),
        ConnectionAddr::TcpTls { host, port, .. } => (Some(host.as_str().into()), Some(*port)),
        ConnectionAddr::Unix(path) => (Some(path.to_string_lossy().into()), None),
        _ => (None, None),
    };
    let mut db = itoa::Buffer::new();
    DbTarget {
        system: SYSTEM,
        namespace: Some(db.format(info.redis_settings().db()).into()),
        address,
        port,
    }
}

/// An operation about to start: what it is, its span name, and the slot of its bound
/// duration (a known command's index in `names::KNOWN`).
struct Query {
    query: DbQuery,
    span_name: Cow<'static, str>,
    bound: Option<usize>,
}

impl Shared {
    fn start(&self, query: Query) -> DbOperation {
        let bound = query.bound.and_then(|slot| self.bound(slot, &query.query));
        DbOperation::start_named(
            &self.instruments,
            &self.target,
            query.query,
            query.span_name,
        )
        .with_bound(bound)
    }

    /// The duration bound to `query`'s success attributes, made on first use of `slot`;
    /// `None` while telemetry is not running.
    fn bound(&self, slot: usize, query: &DbQuery) -> Option<DbBoundDuration> {
        let slots = self.bound.get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(names::KNOWN.len())
                .collect()
        });
        let cell = slots.get(slot)?;
        if let Some(bound) = cell.get() {
            return Some(bound.clone());
        }
        let bound = self.instruments.bind(&self.target, query)?;
        Some(cell.get_or_init(|| bound).clone())
    }

    /// One command.
    fn single(&self, shape: &Shape<'_>) -> Query {
        let name = Name::of(shape);
        let text = self.query_text.then(|| {
            let mut text = Text::default();
            text.command(&name, shape.args);
            Arc::from(text.finish())
        });
        Query {
            query: DbQuery {
                operation: Some(name.shared()),
                text,
                ..DbQuery::default()
            },
            span_name: name.span_name(),
            bound: name.known(),
        }
    }

    /// A pipeline (not of one command) or a transaction of `shapes`, without `MULTI`/`EXEC`.
    fn batch<'a>(&self, shapes: impl Iterator<Item = Shape<'a>>, transaction: bool) -> Query {
        let kind = if transaction { MULTI } else { PIPELINE };
        let mut text = self.query_text.then(Text::default);
        if let Some(text) = &mut text {
            if transaction {
                text.word(MULTI);
            }
        }
        let mut count = 0_usize;
        let mut common: Option<Name> = None;
        let mut same = true;
        for shape in shapes {
            let name = Name::of(&shape);
            if let Some(text) = &mut text {
                text.command(&name, shape.args);
            }
            match &common {
                None => common = Some(name),
                Some(first) => same &= *first == name,
            }
            count += 1;
        }
        if let Some(text) = &mut text {
            if transaction {
                text.word("EXEC");
            }
        }
        let operation: Arc<str> = match common {
            Some(name) if same && name.as_str() != OTHER => {
                Arc::from(format!("{kind} {}", name.as_str()))
            }
            _ => Arc::from(kind),
        };
        Query {
            query: DbQuery {
                operation: Some(operation),
                text: text.map(|t| Arc::from(t.finish())),
                batch_size: (count != 1).then_some(count),
                ..DbQuery::default()
            },
            span_name: Cow::Borrowed(kind),
            bound: None,
        }
    }
}

/// The future of a recorded async command: the connection's future, with the command's span
/// current whenever it is polled; the operation ends when it completes.
struct Traced<'a, T> {
    inner: RedisFuture<'a, T>,
    /// `None` once ended.
    op: Option<DbOperation>,
    transaction: bool,
}

impl<T: outcome::Reply> Future for Traced<'_, T> {
    type Output = RedisResult<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<RedisResult<T>> {
        let this = &mut *self;
        let poll = match this.op.as_ref().and_then(DbOperation::context) {
            Some(span) => {
                let _attached = span.clone().attach();
                this.inner.as_mut().poll(cx)
            }
            None => this.inner.as_mut().poll(cx),
        };
        let Poll::Ready(result) = poll else {
            return Poll::Pending;
        };
        if let Some(op) = this.op.take() {
            op.end(outcome::of_result(&result, this.transaction));
        }
        Poll::Ready(result)
    }
}

impl<C: redis::aio::ConnectionLike> redis::aio::ConnectionLike for InstrumentedRedis<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if crate::state::active().is_none() {
            return self.inner.req_packed_command(cmd);
        }
        let op = self.shared.start(self.shared.single(&Shape::of_cmd(cmd)));
        Box::pin(Traced {
            inner: self.inner.req_packed_command(cmd),
            op: Some(op),
            transaction: false,
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if crate::state::active().is_none() {
            return self.inner.req_packed_commands(pipeline, offset, count);
        }
        let transaction = pipeline.is_transaction();
        let mut commands = pipeline.cmd_iter();
        let query = match (transaction, pipeline.len(), commands.next()) {
            (false, 1, Some(only)) => self.shared.single(&Shape::of_cmd(only)),
            _ => self
                .shared
                .batch(pipeline.cmd_iter().map(Shape::of_cmd), transaction),
        };
        let op = self.shared.start(query);
        Box::pin(Traced {
            inner: self.inner.req_packed_commands(pipeline, offset, count),
            op: Some(op),
            transaction,
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl<C: redis::ConnectionLike> InstrumentedRedis<C> {
    /// Runs `call` on the connection inside the operation of `query`.
    fn record<T: outcome::Reply>(
        &mut self,
        query: Query,
        transaction: bool,
        call: impl FnOnce(&mut C) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let op = self.shared.start(query);
        let result = {
            let _attached = op.context().map(|span| span.clone().attach());
            call(&mut self.inner)
        };
        op.end(outcome::of_result(&result, transaction));
        result
    }
}

impl<C: redis::ConnectionLike> redis::ConnectionLike for InstrumentedRedis<C> {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        if crate::state::active().is_none() {
            return self.inner.req_packed_command(cmd);
        }
        let shape = Packed::new(cmd).next().unwrap_or_default();
        let query = self.shared.single(&shape);
        self.record(query, false, |inner| inner.req_packed_command(cmd))
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        if crate::state::active().is_none() {
            return self.inner.req_packed_commands(cmd, offset, count);
        }
        // `Pipeline::query` sends a transaction as `MULTI`, the commands, `EXEC`, and skips
        // the replies of all but `EXEC` (offset = commands + 1, count = 1).
        let mut commands = Packed::new(cmd);
        let first = commands.clone().next().unwrap_or_default();
        let transaction =
            offset > 0 && first.name.is_some_and(|n| n.eq_ignore_ascii_case(b"MULTI"));
        let query = if transaction {
            self.shared
                .batch(commands.skip(1).take(offset - 1), transaction)
        } else if count == 1 && offset == 0 {
            self.shared.single(&commands.next().unwrap_or_default())
        } else {
            self.shared.batch(commands, transaction)
        };
        self.record(query, transaction, |inner| {
            inner.req_packed_commands(cmd, offset, count)
        })
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        if crate::state::active().is_none() {
            return self.inner.req_command(cmd);
        }
        let query = self.shared.single(&Shape::of_cmd(cmd));
        self.record(query, false, |inner| inner.req_command(cmd))
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }

    fn supports_pipelining(&self) -> bool {
        self.inner.supports_pipelining()
    }

    fn check_connection(&mut self) -> bool {
        self.inner.check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
}
