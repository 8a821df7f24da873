//! What the database adapters (sqlx, redis) share: one CLIENT span and one
//! `db.client.operation.duration` measurement per operation, after the stable database
//! semantic conventions.
//!
//! An adapter makes one [`DbInstruments`] per component, one [`DbTarget`] per connection (the
//! system, the database and the server, fixed for the connection's life) and one
//! [`DbOperation`] per query or command; the operation ends with [`DbOperation::end`], or with
//! no error when it is dropped (a stream dropped after its first row, a cancelled future).
//!
//! An adapter that sees the same query again and again (sqlx: a query's text) can bind the
//! duration's success attributes once ([`DbInstruments::bind`], through `Histogram::sdk`: the
//! SDK histogram `Histogram::record` uses) and hand the binding to
//! each operation ([`DbOperation::with_bound`]): a successful measurement then hashes no
//! attributes.

use crate::registry::exemplars;
use crate::{get_telemetry, Attributes, Histogram, InstrumentOptions, UnifiedTelemetry};
use opentelemetry::metrics::BoundHistogram;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

pub(crate) const DB_SYSTEM_NAME: &str = "db.system.name";
pub(crate) const DB_NAMESPACE: &str = "db.namespace";
pub(crate) const DB_OPERATION_NAME: &str = "db.operation.name";
pub(crate) const DB_COLLECTION_NAME: &str = "db.collection.name";
pub(crate) const DB_QUERY_SUMMARY: &str = "db.query.summary";
pub(crate) const DB_QUERY_TEXT: &str = "db.query.text";
pub(crate) const DB_OPERATION_BATCH_SIZE: &str = "db.operation.batch.size";
pub(crate) const DB_RESPONSE_STATUS_CODE: &str = "db.response.status_code";
pub(crate) const SERVER_ADDRESS: &str = "server.address";
pub(crate) const SERVER_PORT: &str = "server.port";
pub(crate) const ERROR_TYPE: &str = "error.type";

/// The name of the duration histogram.
pub(crate) const DURATION: &str = "db.client.operation.duration";
/// Bucket boundaries of `db.client.operation.duration`, in seconds (the convention's advice).
pub(crate) const DURATION_BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// The tracer and the duration histogram of one adapter's component (`sqlx`, `redis`).
#[derive(Debug, Clone)]
pub(crate) struct DbInstruments {
    telemetry: UnifiedTelemetry,
    duration: Histogram,
}

impl DbInstruments {
    /// The instruments of the component `component`.
    pub(crate) fn new(component: &str) -> Self {
        let telemetry = get_telemetry(component);
        DbInstruments {
            duration: telemetry.histogram_with_options(
                DURATION,
                InstrumentOptions::new()
                    .with_unit("s")
                    .with_description("Duration of database client operations.")
                    .with_boundaries(DURATION_BUCKETS),
            ),
            telemetry,
        }
    }
}

/// `db.client.operation.duration` bound to the attributes that a successful operation of one
/// query on one target records ([`DbInstruments::bind`]): its measurement hashes no attributes.
/// Made once per query and target, and handed to each of its operations
/// ([`DbOperation::with_bound`]).
#[cfg_attr(not(feature = "sqlx"), allow(dead_code))]
#[derive(Debug, Clone)]
pub(crate) struct DbBoundDuration(BoundHistogram<f64>);

#[cfg_attr(not(feature = "sqlx"), allow(dead_code))]
impl DbInstruments {
    /// The duration histogram bound to what a successful operation of `query` on `target`
    /// records; `None` while telemetry is not running.
    pub(crate) fn bind(&self, target: &DbTarget, query: &DbQuery) -> Option<DbBoundDuration> {
        // The same SDK instrument `Histogram::record` uses (whichever comes first builds it).
        let sdk = self.duration.sdk()?;
        let attrs = DurationAttrs {
            target,
            query,
            error: None,
        };
        Some(DbBoundDuration(attrs.with_slice(|kvs| sdk.bind(kvs))))
    }
}

/// What every operation of one connection (or pool) shares: the database system, the database
/// and the server. Fixed for the connection's life.
#[derive(Debug, Clone)]
pub(crate) struct DbTarget {
    /// `db.system.name`: `sqlite`, `postgresql`, `redis`.
    pub(crate) system: &'static str,
    /// `db.namespace`: the database name (SQL), the database index (redis).
    pub(crate) namespace: Option<Arc<str>>,
    /// `server.address`: a host name, an IP address or a Unix socket path; never credentials.
    pub(crate) address: Option<Arc<str>>,
    /// `server.port`.
    pub(crate) port: Option<u16>,
}

/// What one operation is, as far as it can be told without the database's help.
#[derive(Debug, Default)]
pub(crate) struct DbQuery {
    /// `db.operation.name` (`SELECT`, `GET`, `PIPELINE`).
    pub(crate) operation: Option<Arc<str>>,
    /// `db.collection.name`: the one table a statement touches, when there is exactly one.
    pub(crate) collection: Option<Arc<str>>,
    /// `db.query.summary` (`SELECT users`); the span's name when present.
    pub(crate) summary: Option<Arc<str>>,
    /// `db.query.text`, already free of literals and values. Span only, never a metric.
    pub(crate) text: Option<Arc<str>>,
    /// `db.operation.batch.size` (two or more, or nothing).
    pub(crate) batch_size: Option<usize>,
}

/// Why an operation failed, in the words the conventions use.
#[derive(Debug)]
pub(crate) struct DbError {
    /// `db.response.status_code`: the SQLSTATE, the SQLite result code, the redis error prefix.
    pub(crate) status_code: Option<Cow<'static, str>>,
    /// `error.type`: the status code, or a low-cardinality class (`io`, `pool_timeout`).
    pub(crate) error_type: Cow<'static, str>,
    /// The span status description: nothing the application sent (no literal, no value).
    pub(crate) description: Cow<'static, str>,
}

/// One operation between its start and its end: its CLIENT span (not attached; a child of
/// the current span) and its start time.
#[derive(Debug)]
pub(crate) struct DbOperation {
    instruments: DbInstruments,
    target: Arc<DbTarget>,
    query: DbQuery,
    /// `None` while telemetry is off, and after the end.
    cx: Option<Context>,
    /// Where a successful end is measured, when bound ([`with_bound`](Self::with_bound)).
    bound: Option<DbBoundDuration>,
    start: Instant,
    ended: bool,
}

impl DbOperation {
    /// Starts the span (every attribute known now is given at creation, for the sampler).
    #[cfg_attr(not(feature = "sqlx"), allow(dead_code))]
    pub(crate) fn start(
        instruments: &DbInstruments,
        target: &Arc<DbTarget>,
        query: DbQuery,
    ) -> Self {
        Self::begin(instruments, target, query, None)
    }

    /// [`start`](Self::start), with the span named `name` instead of after the general rule
    /// (the Redis conventions name a command's span after the command alone: `GET`).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn start_named(
        instruments: &DbInstruments,
        target: &Arc<DbTarget>,
        query: DbQuery,
        name: Cow<'static, str>,
    ) -> Self {
        Self::begin(instruments, target, query, Some(name))
    }

    fn begin(
        instruments: &DbInstruments,
        target: &Arc<DbTarget>,
        query: DbQuery,
        name: Option<Cow<'static, str>>,
    ) -> Self {
        let start = Instant::now();
        let cx = if crate::state::active().is_some() {
            let name = name.unwrap_or_else(|| span_name(target, &query));
            let mut attrs: Vec<KeyValue> = Vec::with_capacity(9);
            attrs.push(KeyValue::new(DB_SYSTEM_NAME, target.system));
            push_common(&mut attrs, target, &query);
            if let Some(text) = &query.text {
                attrs.push(KeyValue::new(DB_QUERY_TEXT, arc_value(text)));
            }
            if let Some(size) = query.batch_size {
                attrs.push(KeyValue::new(
                    DB_OPERATION_BATCH_SIZE,
                    i64::try_from(size).unwrap_or(i64::MAX),
                ));
            }
            instruments
                .telemetry
                .span(name)
                .kind(SpanKind::Client)
                .attributes_owned(attrs)
                .start_context()
        } else {
            None
        };
        DbOperation {
            instruments: instruments.clone(),
            target: target.clone(),
            query,
            cx,
            bound: None,
            start,
            ended: false,
        }
    }

    /// Measures a successful end through `bound`, which [`DbInstruments::bind`] made for this
    /// operation's target and query (a failed end is measured with its error attributes).
    #[cfg_attr(not(feature = "sqlx"), allow(dead_code))]
    pub(crate) fn with_bound(mut self, bound: Option<DbBoundDuration>) -> Self {
        self.bound = bound;
        self
    }

    /// The span's context, to make it current while the operation's future is polled.
    pub(crate) fn context(&self) -> Option<&Context> {
        self.cx.as_ref()
    }

    /// Ends the span (with error status and attributes when `error` is given) and records the
    /// duration.
    pub(crate) fn end(mut self, error: Option<DbError>) {
        self.finish(error.as_ref());
    }

    fn finish(&mut self, error: Option<&DbError>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let Some(cx) = self.cx.take() else {
            return;
        };
        let elapsed = self.start.elapsed().as_secs_f64();
        let span = cx.span();
        if let Some(error) = error {
            if span.is_recording() {
                if let Some(code) = &error.status_code {
                    span.set_attribute(KeyValue::new(DB_RESPONSE_STATUS_CODE, code.clone()));
                }
                span.set_attribute(KeyValue::new(ERROR_TYPE, error.error_type.clone()));
                span.set_status(Status::error(error.description.clone()));
            }
        }
        span.end();
        match (error, &self.bound) {
            (None, Some(bound)) => {
                bound.0.record(elapsed);
                self.instruments.duration.offer_in(Some(&cx), elapsed, || {
                    let attrs = DurationAttrs {
                        target: &self.target,
                        query: &self.query,
                        error: None,
                    };
                    attrs.with_slice(|kvs| exemplars::key(kvs.iter()))
                });
            }
            _ => self.instruments.duration.record_in(
                Some(&cx),
                elapsed,
                DurationAttrs {
                    target: &self.target,
                    query: &self.query,
                    error,
                },
            ),
        }
    }
}

impl Drop for DbOperation {
    fn drop(&mut self) {
        self.finish(None);
    }
}

/// The span name after the conventions: `db.query.summary`; else `{db.operation.name}
/// {target}`, the target being the collection, else the namespace, else `address:port`;
/// else the target alone; else `db.system.name`.
fn span_name(target: &DbTarget, query: &DbQuery) -> Cow<'static, str> {
    if let Some(summary) = &query.summary {
        return Cow::Owned(summary.to_string());
    }
    let place: Option<Cow<'_, str>> = match (&query.collection, &target.namespace) {
        (Some(collection), _) => Some(Cow::Borrowed(&**collection)),
        (None, Some(namespace)) => Some(Cow::Borrowed(&**namespace)),
        (None, None) => target.address.as_ref().map(|address| match target.port {
            Some(port) => Cow::Owned(format!("{address}:{port}")),
            None => Cow::Borrowed(&**address),
        }),
    };
    match (&query.operation, place) {
        (Some(operation), Some(place)) => Cow::Owned(format!("{operation} {place}")),
        (Some(operation), None) => Cow::Owned(operation.to_string()),
        (None, Some(place)) => Cow::Owned(place.into_owned()),
        (None, None) => Cow::Borrowed(target.system),
    }
}

/// The attributes both the span and the metric carry, but `db.system.name`.
fn push_common(out: &mut impl Extend<KeyValue>, target: &DbTarget, query: &DbQuery) {
    if let Some(namespace) = &target.namespace {
        out.extend([KeyValue::new(DB_NAMESPACE, arc_value(namespace))]);
    }
    if let Some(operation) = &query.operation {
        out.extend([KeyValue::new(DB_OPERATION_NAME, arc_value(operation))]);
    }
    if let Some(collection) = &query.collection {
        out.extend([KeyValue::new(DB_COLLECTION_NAME, arc_value(collection))]);
    }
    if let Some(summary) = &query.summary {
        out.extend([KeyValue::new(DB_QUERY_SUMMARY, arc_value(summary))]);
    }
    if let Some(address) = &target.address {
        out.extend([KeyValue::new(SERVER_ADDRESS, arc_value(address))]);
    }
    if let Some(port) = target.port {
        out.extend([KeyValue::new(SERVER_PORT, i64::from(port))]);
    }
}

/// A shared string as an attribute value (a reference count, no copy).
pub(crate) fn arc_value(value: &Arc<str>) -> Value {
    Value::String(StringValue::from(value.clone()))
}

/// The attributes of `db.client.operation.duration`, built on the stack (no `db.query.text`:
/// the conventions keep it off metrics).
struct DurationAttrs<'a> {
    target: &'a DbTarget,
    query: &'a DbQuery,
    error: Option<&'a DbError>,
}

impl Attributes for DurationAttrs<'_> {
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        out.extend([KeyValue::new(DB_SYSTEM_NAME, self.target.system)]);
        push_common(out, self.target, self.query);
        if let Some(error) = self.error {
            if let Some(code) = &error.status_code {
                out.extend([KeyValue::new(DB_RESPONSE_STATUS_CODE, code.clone())]);
            }
            out.extend([KeyValue::new(ERROR_TYPE, error.error_type.clone())]);
        }
    }

    fn len_hint(&self) -> usize {
        let (t, q) = (self.target, self.query);
        1 + usize::from(t.namespace.is_some())
            + usize::from(q.operation.is_some())
            + usize::from(q.collection.is_some())
            + usize::from(q.summary.is_some())
            + usize::from(t.address.is_some())
            + usize::from(t.port.is_some())
            + self
                .error
                .map_or(0, |e| 1 + usize::from(e.status_code.is_some()))
    }

    fn with_slice<R>(&self, f: impl FnOnce(&mut [KeyValue]) -> R) -> R {
        let mut kvs: SmallVec<[KeyValue; 9]> = SmallVec::new();
        self.extend_into(&mut kvs);
        f(&mut kvs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(namespace: Option<&str>, address: Option<&str>) -> DbTarget {
        DbTarget {
            system: "postgresql",
            namespace: namespace.map(Arc::from),
            address: address.map(Arc::from),
            port: Some(5432),
        }
    }

    #[test]
    fn span_name_follows_the_conventions() {
        let summary = DbQuery {
            operation: Some("SELECT".into()),
            summary: Some("SELECT users orders".into()),
            ..DbQuery::default()
        };
        assert_eq!(
            span_name(&target(Some("shop"), None), &summary),
            "SELECT users orders"
        );
        let collection = DbQuery {
            operation: Some("DELETE".into()),
            collection: Some("users".into()),
            ..DbQuery::default()
        };
        assert_eq!(
            span_name(&target(Some("shop"), None), &collection),
            "DELETE users"
        );
        let operation = DbQuery {
            operation: Some("VACUUM".into()),
            ..DbQuery::default()
        };
        assert_eq!(
            span_name(&target(Some("shop"), None), &operation),
            "VACUUM shop"
        );
        assert_eq!(
            span_name(&target(None, Some("db.local")), &operation),
            "VACUUM db.local:5432"
        );
        assert_eq!(span_name(&target(None, None), &operation), "VACUUM");
        assert_eq!(
            span_name(&target(Some("shop"), None), &DbQuery::default()),
            "shop"
        );
        assert_eq!(
            span_name(&target(None, None), &DbQuery::default()),
            "postgresql"
        );
    }

    #[test]
    fn metric_attributes_have_no_query_text() {
        let query = DbQuery {
            operation: Some("SELECT".into()),
            text: Some("SELECT * FROM users WHERE id = ?".into()),
            ..DbQuery::default()
        };
        let target = target(Some("shop"), Some("127.0.0.1"));
        let error = DbError {
            status_code: Some("42P01".into()),
            error_type: "42P01".into(),
            description: "42P01".into(),
        };
        let attrs = DurationAttrs {
            target: &target,
            query: &query,
            error: Some(&error),
        };
        let keys = attrs.with_slice(|kvs| {
            kvs.iter()
                .map(|kv| kv.key.as_str().to_owned())
                .collect::<Vec<_>>()
        });
        assert_eq!(attrs.len_hint(), keys.len());
        assert!(!keys.iter().any(|k| k == DB_QUERY_TEXT), "{keys:?}");
        assert!(
            keys.iter().any(|k| k == DB_RESPONSE_STATUS_CODE),
            "{keys:?}"
        );
        assert!(keys.iter().any(|k| k == ERROR_TYPE), "{keys:?}");
    }
}
