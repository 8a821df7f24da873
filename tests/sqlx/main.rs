//! The sqlx adapter against real databases: PostgreSQL (`UNITEL_TEST_POSTGRES_URL`, started by
//! `scripts/test.sh`) and bundled SQLite (in memory and in a temporary file). The pool,
//! connection and transaction paths; `query`, `query_as`, `raw_sql`, `execute`, `fetch`,
//! `fetch_one`, `fetch_optional`, `fetch_all`, `fetch_many`; streams finished and dropped
//! early; parents by `instrument` and by a held span; the duration metric; errors (a missing
//! table, a unique violation, a refused connection); secrets (the password of the connection
//! URL, SQL literals, bound values quoted back by the database) looked for in every span, log
//! line, metric and `Debug` print. With telemetry off (a child process) the wrapper is the bare
//! pool.
//!
//! Each test's pool records under its own component, so its metric points are its own. Tables
//! on PostgreSQL are named per test and run, so tests can run in parallel with other runs.
//!
//! The pools here switch sqlx's own statement logging off (`disable_statement_logging`): sqlx
//! logs every statement's full text, literals included, through `tracing` at target
//! `sqlx::query` (DEBUG, and WARN when slow), and the capture lets every level through. The
//! ignored test `sqlx_statement_logs_keep_literals_out` shows that path.

#[path = "../support/mod.rs"]
mod support;

use futures_core::Stream;
use opentelemetry::Value as OtelValue;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions as _, Executor as _, Postgres, Row as _, Sqlite};
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use unitel::testing::{capture, Capture, CapturedSpan, PointValue};
use unitel::{get_telemetry, instrument_sqlx, InstrumentedPool, SpanKind, Status};

const DURATION: &str = "db.client.operation.duration";
const BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// Every attribute the adapter may set; anything else on a database span is a leak.
const ALLOWED: [&str; 10] = [
    "db.system.name",
    "db.namespace",
    "db.operation.name",
    "db.collection.name",
    "db.query.summary",
    "db.query.text",
    "db.response.status_code",
    "error.type",
    "server.address",
    "server.port",
];

// ---------------------------------------------------------------------------------------------
// Helpers

fn pg_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&support::postgres_url())
        .expect("UNITEL_TEST_POSTGRES_URL is a postgres URL")
        .disable_statement_logging()
}

async fn pg_pool(component: &str) -> InstrumentedPool<Postgres> {
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(pg_options())
        .await
        .expect("connect to UNITEL_TEST_POSTGRES_URL");
    instrument_sqlx(pool).component(component)
}

async fn sqlite_memory(component: &str) -> InstrumentedPool<Sqlite> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .expect("in-memory SQLite")
        .disable_statement_logging();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("in-memory SQLite");
    InstrumentedPool::new(pool).component(component)
}

/// A table name no other test (or run) uses.
fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{tag}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Dynamic SQL (a per-test table name), asserted safe.
fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

/// The spans of `component`, oldest first.
fn db_spans(cap: &Capture, component: &str) -> Vec<CapturedSpan> {
    cap.spans()
        .into_iter()
        .filter(|s| s.component == component)
        .collect()
}

fn names(spans: &[CapturedSpan]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

/// The one span named `name` among `spans`.
fn only<'a>(spans: &'a [CapturedSpan], name: &str) -> &'a CapturedSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name:?} among {:?}", names(spans));
    found[0]
}

fn the_span(cap: &Capture, name: &str) -> CapturedSpan {
    cap.span(name)
        .unwrap_or_else(|| panic!("no span {name:?}: {:?}", names(&cap.spans())))
}

fn string_attr(span: &CapturedSpan, key: &str) -> Option<String> {
    match span.attr(key)? {
        OtelValue::String(s) => Some(s.as_str().to_owned()),
        other => panic!("{key} of {} is not a string: {other:?}", span.name),
    }
}

fn int_attr(span: &CapturedSpan, key: &str) -> Option<i64> {
    match span.attr(key)? {
        OtelValue::I64(v) => Some(*v),
        other => panic!("{key} of {} is not an integer: {other:?}", span.name),
    }
}

/// What every database span carries: kind, component, parent, no stray attribute, the name
/// after the summary.
fn assert_db_span(span: &CapturedSpan, component: &str, parent: Option<&CapturedSpan>) {
    assert_eq!(span.kind, SpanKind::Client, "{}", span.name);
    assert_eq!(span.component, component, "{}", span.name);
    match parent {
        Some(parent) => support::assert_child_of(span, parent),
        None => assert_eq!(span.parent_span_id, None, "{} is a root", span.name),
    }
    support::assert_attributes_within(span, &ALLOWED);
    if let Some(summary) = string_attr(span, "db.query.summary") {
        assert_eq!(summary, span.name, "the span is named after its summary");
    }
}

/// The PostgreSQL target attributes, from the test URL.
fn assert_pg_target(span: &CapturedSpan) {
    let options = pg_options();
    assert_eq!(
        string_attr(span, "db.system.name").as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        string_attr(span, "db.namespace").as_deref(),
        options.get_database(),
        "{}",
        span.name
    );
    assert_eq!(
        string_attr(span, "server.address").as_deref(),
        Some(options.get_host())
    );
    assert_eq!(
        int_attr(span, "server.port"),
        Some(i64::from(options.get_port()))
    );
}

fn assert_sqlite_target(span: &CapturedSpan, namespace: &str) {
    assert_eq!(
        string_attr(span, "db.system.name").as_deref(),
        Some("sqlite")
    );
    assert_eq!(
        string_attr(span, "db.namespace").as_deref(),
        Some(namespace)
    );
    assert_eq!(span.attr("server.address"), None);
    assert_eq!(span.attr("server.port"), None);
}

/// `(operation, collection, text)` of a span.
fn query_attrs(span: &CapturedSpan) -> (Option<String>, Option<String>, Option<String>) {
    (
        string_attr(span, "db.operation.name"),
        string_attr(span, "db.collection.name"),
        string_attr(span, "db.query.text"),
    )
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// The count of `component`'s duration point with exactly `attrs`, after checking its
/// buckets.
fn duration_count(cap: &Capture, component: &str, attrs: &[(&str, &str)]) -> u64 {
    match cap.point(component, DURATION, attrs) {
        Some(PointValue::Histogram { count, bounds, .. }) => {
            assert_eq!(bounds, BUCKETS, "{DURATION} buckets");
            count
        }
        Some(other) => panic!("{DURATION} is not a histogram: {other:?}"),
        None => panic!(
            "no {DURATION} point {attrs:?} for {component}; points: {:#?}",
            cap.metrics()
                .into_iter()
                .filter(|p| p.component == component)
                .map(|p| p.attributes)
                .collect::<Vec<_>>()
        ),
    }
}

/// No duration point of `component` carries `db.query.text`, and each has a unit of seconds.
fn assert_metric_has_no_text(cap: &Capture, component: &str) {
    let points: Vec<_> = cap
        .metrics()
        .into_iter()
        .filter(|p| p.component == component && p.name == DURATION)
        .collect();
    assert!(!points.is_empty(), "no {DURATION} for {component}");
    for p in points {
        assert_eq!(p.unit, "s");
        assert!(
            !p.attributes.iter().any(|(k, _)| k == "db.query.text"),
            "db.query.text on a metric: {:?}",
            p.attributes
        );
    }
}

/// The next item of a stream.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

// ---------------------------------------------------------------------------------------------
// SQLite

#[tokio::test]
async fn sqlite_queries_are_children_of_the_caller_with_every_attribute() {
    let cap = capture();
    // The default component.
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .unwrap()
        .disable_statement_logging();
    let pool = instrument_sqlx(
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap(),
    );
    sqlx::query(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE)",
    )
    .execute(&pool)
    .await
    .expect("CREATE TABLE");

    let found = get_telemetry("app")
        .span("request")
        .instrument(async {
            sqlx::query("INSERT INTO users (name, email) VALUES (?, ?)")
                .bind("Lovelace-s3cret")
                .bind("ada-s3cret@example.com")
                .execute(&pool)
                .await
                .expect("INSERT");
            let rows = sqlx::query("SELECT name FROM users WHERE id = ?")
                .bind(1_i64)
                .fetch_all(&pool)
                .await
                .expect("fetch_all");
            let (name,): (String,) = sqlx::query_as("SELECT name FROM users WHERE id = ?")
                .bind(1_i64)
                .fetch_one(&pool)
                .await
                .expect("fetch_one");
            let none = sqlx::query("SELECT name FROM users WHERE id = ?")
                .bind(99_i64)
                .fetch_optional(&pool)
                .await
                .expect("fetch_optional");
            (rows.len(), name, none.is_none())
        })
        .await;
    assert_eq!(found, (1, "Lovelace-s3cret".to_owned(), true));

    let request = the_span(&cap, "request");
    let spans = db_spans(&cap, "sqlx");
    assert_eq!(
        names(&spans),
        [
            "CREATE TABLE users",
            "INSERT users",
            "SELECT users",
            "SELECT users",
            "SELECT users"
        ]
    );
    assert_db_span(&spans[0], "sqlx", None);
    for span in &spans[1..] {
        assert_db_span(span, "sqlx", Some(&request));
        assert_eq!(span.status, Status::Unset, "{}", span.name);
    }
    for span in &spans {
        assert_sqlite_target(span, ":memory:");
    }
    assert_eq!(
        query_attrs(&spans[0]),
        (
            some("CREATE TABLE"),
            some("users"),
            some("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE)")
        )
    );
    assert_eq!(
        query_attrs(&spans[1]),
        (
            some("INSERT"),
            some("users"),
            some("INSERT INTO users (name, email) VALUES (?, ?)")
        )
    );
    assert_eq!(
        query_attrs(&spans[4]),
        (
            some("SELECT"),
            some("users"),
            some("SELECT name FROM users WHERE id = ?")
        )
    );

    let select = [
        ("db.system.name", "sqlite"),
        ("db.namespace", ":memory:"),
        ("db.operation.name", "SELECT"),
        ("db.collection.name", "users"),
        ("db.query.summary", "SELECT users"),
    ];
    assert!(duration_count(&cap, "sqlx", &select) >= 3);
    assert_metric_has_no_text(&cap, "sqlx");
    support::assert_no_secret(&cap, &["ada-s3cret", "Lovelace"]);
}

#[tokio::test]
async fn sqlite_file_database_is_named_by_its_path_and_its_streams_end_their_spans() {
    let cap = capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shop.sqlite");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .disable_statement_logging();
    let pool = InstrumentedPool::new(
        SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("SQLite file"),
    )
    .component("sqlx-file");
    sqlx::raw_sql(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, price REAL);\n\
         INSERT INTO items (price) VALUES (987.125), (12345.75), (20);",
    )
    .execute(&pool)
    .await
    .expect("raw_sql");

    // A stream read to its end, then one dropped after its first row.
    let all = {
        let mut rows = sqlx::query("SELECT price FROM items ORDER BY id").fetch(&pool);
        let mut n = 0;
        while let Some(row) = next(&mut rows).await {
            row.expect("row");
            n += 1;
        }
        n
    };
    assert_eq!(all, 3);
    let before = db_spans(&cap, "sqlx-file").len();
    {
        let mut rows = sqlx::query("SELECT id FROM items WHERE price > ?")
            .bind(1.0)
            .fetch(&pool);
        assert!(next(&mut rows).await.is_some());
        assert_eq!(
            db_spans(&cap, "sqlx-file").len(),
            before,
            "the span of a stream still read is open"
        );
    }
    // `fetch_many` through the executor itself, two statements.
    {
        let mut results = (&pool).fetch_many("SELECT 1; SELECT 2");
        let mut n = 0;
        while let Some(item) = next(&mut results).await {
            item.expect("fetch_many");
            n += 1;
        }
        assert!(n >= 2);
    }

    let namespace = path.display().to_string();
    let spans = db_spans(&cap, "sqlx-file");
    assert_eq!(
        names(&spans),
        [
            "CREATE TABLE items INSERT items",
            "SELECT items",
            "SELECT items",
            "SELECT SELECT"
        ]
    );
    for span in &spans {
        assert_db_span(span, "sqlx-file", None);
        assert_sqlite_target(span, &namespace);
        assert_eq!(span.status, Status::Unset);
    }
    // Two statements: no single operation; one table.
    assert_eq!(
        query_attrs(&spans[0]),
        (
            None,
            some("items"),
            some("CREATE TABLE items (id INTEGER PRIMARY KEY, price REAL);\nINSERT INTO items (price) VALUES (?), (?), (?);")
        )
    );
    assert_eq!(
        string_attr(&spans[2], "db.query.text").as_deref(),
        Some("SELECT id FROM items WHERE price > ?")
    );
    // Two statements with one operation.
    assert_eq!(
        query_attrs(&spans[3]),
        (some("SELECT"), None, some("SELECT ?; SELECT ?"))
    );
    assert_eq!(
        duration_count(
            &cap,
            "sqlx-file",
            &[
                ("db.system.name", "sqlite"),
                ("db.namespace", namespace.as_str()),
                ("db.operation.name", "SELECT"),
                ("db.collection.name", "items"),
                ("db.query.summary", "SELECT items"),
            ]
        ),
        2
    );
    support::assert_no_secret(&cap, &["987.125", "12345.75"]);
}

#[tokio::test]
async fn sqlite_errors_carry_sqlite_result_codes_and_no_found_row_is_not_an_error() {
    let cap = capture();
    let pool = sqlite_memory("sqlx-lite-errors").await;
    sqlx::query("CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT UNIQUE)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO accounts (email) VALUES (?)")
        .bind("s3cret-one@example.com")
        .execute(&pool)
        .await
        .unwrap();

    let missing = sqlx::query("SELECT * FROM no_such_table WHERE id = 424242")
        .fetch_all(&pool)
        .await
        .expect_err("missing table");
    assert!(matches!(missing, sqlx::Error::Database(_)), "{missing:?}");
    let dup = sqlx::query("INSERT INTO accounts (email) VALUES (?)")
        .bind("s3cret-one@example.com")
        .execute(&pool)
        .await
        .expect_err("unique violation");
    let code = match &dup {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        other => panic!("{other:?}"),
    };
    assert_eq!(code.as_deref(), Some("2067"));
    let not_found = sqlx::query("SELECT email FROM accounts WHERE id = ?")
        .bind(7_i64)
        .fetch_one(&pool)
        .await
        .expect_err("no row");
    assert!(matches!(not_found, sqlx::Error::RowNotFound));

    let spans = db_spans(&cap, "sqlx-lite-errors");
    let missing = only(&spans, "SELECT no_such_table");
    assert_db_span(missing, "sqlx-lite-errors", None);
    assert_eq!(
        string_attr(missing, "db.query.text").as_deref(),
        Some("SELECT * FROM no_such_table WHERE id = ?")
    );
    assert_eq!(
        string_attr(missing, "db.response.status_code").as_deref(),
        Some("1")
    );
    assert_eq!(string_attr(missing, "error.type").as_deref(), Some("1"));
    assert_eq!(
        missing.status,
        Status::Error {
            description: "database error 1".into()
        }
    );
    let inserts: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "INSERT accounts")
        .collect();
    assert_eq!(inserts.len(), 2);
    assert_eq!(inserts[0].status, Status::Unset);
    assert_eq!(
        string_attr(inserts[1], "db.response.status_code").as_deref(),
        Some("2067")
    );
    assert_eq!(
        inserts[1].status,
        Status::Error {
            description: "unique violation 2067".into()
        }
    );
    let select = only(&spans, "SELECT accounts");
    assert_eq!(select.status, Status::Unset, "RowNotFound is an answer");
    assert_eq!(select.attr("error.type"), None);

    let failed = [
        ("db.system.name", "sqlite"),
        ("db.namespace", ":memory:"),
        ("db.operation.name", "INSERT"),
        ("db.collection.name", "accounts"),
        ("db.query.summary", "INSERT accounts"),
        ("db.response.status_code", "2067"),
        ("error.type", "2067"),
    ];
    assert_eq!(duration_count(&cap, "sqlx-lite-errors", &failed), 1);
    assert_eq!(
        duration_count(&cap, "sqlx-lite-errors", &failed[..5]),
        1,
        "the successful INSERT"
    );
    support::assert_no_secret(&cap, &["s3cret-one", "424242"]);
}

#[tokio::test]
async fn prepared_statements_keep_their_text_and_arguments() {
    let cap = capture();
    let component = "sqlx-lite-prepared";
    let pool = sqlite_memory(component).await;
    sqlx::query("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kv (k, v) VALUES (?, ?), (?, ?)")
        .bind(1)
        .bind("one")
        .bind(2)
        .bind("two")
        .execute(&pool)
        .await
        .unwrap();
    // `prepare` passes through (no span); the statement then runs through the wrapper.
    let mut conn = pool.acquire().await.unwrap();
    let statement = (&mut *conn)
        .prepare(sqlx::SqlStr::from_static("SELECT v FROM kv WHERE k = ?"))
        .await
        .expect("prepare");
    let v: String = sqlx::Statement::query(&statement)
        .bind(2)
        .fetch_one(&mut *conn)
        .await
        .expect("prepared query")
        .get(0);
    assert_eq!(v, "two");
    let spans = db_spans(&cap, component);
    assert_eq!(names(&spans), ["CREATE TABLE kv", "INSERT kv", "SELECT kv"]);
    assert_eq!(
        query_attrs(&spans[2]),
        (
            some("SELECT"),
            some("kv"),
            some("SELECT v FROM kv WHERE k = ?")
        )
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[tokio::test]
async fn postgres_pool_connection_and_transaction_paths_under_a_held_span() {
    let cap = capture();
    let component = "sqlx-pg-paths";
    let pool = pg_pool(component).await;
    let table = unique("orders");
    let telemetry = get_telemetry("app");

    let parent = telemetry.trace("checkout");
    sqlx::query(sql(format!(
        "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, item TEXT NOT NULL, qty INT NOT NULL)"
    )))
    .execute(&pool)
    .await
    .expect("CREATE TABLE");
    let insert = format!("INSERT INTO {table} (item, qty) VALUES ($1, $2)");

    // A connection: `&mut *conn` and `&mut conn`.
    let mut conn = pool.acquire().await.expect("acquire");
    sqlx::query(sql(insert.clone()))
        .bind("apple")
        .bind(1)
        .execute(&mut *conn)
        .await
        .expect("insert on conn");
    sqlx::query(sql(insert.clone()))
        .bind("pear")
        .bind(2)
        .execute(&mut conn)
        .await
        .expect("insert on &mut conn");
    // A transaction on the connection, committed.
    let mut tx = conn.begin().await.expect("begin on conn");
    sqlx::query(sql(insert.clone()))
        .bind("plum")
        .bind(3)
        .execute(&mut *tx)
        .await
        .expect("insert in conn tx");
    tx.commit().await.expect("commit on conn");
    drop(conn);

    // Transactions from the pool: one committed, one rolled back.
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query(sql(insert.clone()))
        .bind("fig")
        .bind(4)
        .execute(&mut *tx)
        .await
        .expect("insert in tx");
    tx.commit().await.expect("commit");
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query(sql(insert.clone()))
        .bind("kiwi")
        .bind(5)
        .execute(&mut tx)
        .await
        .expect("insert in tx 2");
    tx.rollback().await.expect("rollback");

    let rows = sqlx::query(sql(format!("SELECT item, qty FROM {table} ORDER BY id")))
        .fetch_all(&pool)
        .await
        .expect("select");
    let items: Vec<String> = rows.iter().map(|r| r.get::<String, _>("item")).collect();
    assert_eq!(items, ["apple", "pear", "plum", "fig"]);
    drop(parent);

    let checkout = the_span(&cap, "checkout");
    let spans = db_spans(&cap, component);
    let create = format!("CREATE TABLE {table}");
    let ins = format!("INSERT {table}");
    let sel = format!("SELECT {table}");
    assert_eq!(
        names(&spans),
        [
            create.as_str(),
            &ins,
            &ins,
            "BEGIN",
            &ins,
            "COMMIT",
            "BEGIN",
            &ins,
            "COMMIT",
            "BEGIN",
            &ins,
            "ROLLBACK",
            &sel
        ]
    );
    for span in &spans {
        assert_db_span(span, component, Some(&checkout));
        assert_pg_target(span);
        assert_eq!(span.status, Status::Unset, "{}", span.name);
    }
    assert_eq!(
        query_attrs(&spans[1]),
        (some("INSERT"), Some(table.clone()), Some(insert.clone()))
    );
    for (i, op) in [(3, "BEGIN"), (5, "COMMIT"), (11, "ROLLBACK")] {
        assert_eq!(query_attrs(&spans[i]), (some(op), None, None));
        assert_eq!(
            string_attr(&spans[i], "db.query.summary").as_deref(),
            Some(op)
        );
    }

    let options = pg_options();
    let port = options.get_port().to_string();
    let insert_point = [
        ("db.system.name", "postgresql"),
        ("db.namespace", options.get_database().unwrap()),
        ("server.address", options.get_host()),
        ("server.port", port.as_str()),
        ("db.operation.name", "INSERT"),
        ("db.collection.name", table.as_str()),
        ("db.query.summary", ins.as_str()),
    ];
    assert_eq!(duration_count(&cap, component, &insert_point), 5);
    let commit_point = [
        ("db.system.name", "postgresql"),
        ("db.namespace", options.get_database().unwrap()),
        ("server.address", options.get_host()),
        ("server.port", port.as_str()),
        ("db.operation.name", "COMMIT"),
        ("db.query.summary", "COMMIT"),
    ];
    assert_eq!(duration_count(&cap, component, &commit_point), 2);
    assert_metric_has_no_text(&cap, component);
    support::assert_no_secret(&cap, &[&support::postgres_password(), "apple", "kiwi"]);

    sqlx::query(sql(format!("DROP TABLE {table}")))
        .execute(pool.inner())
        .await
        .expect("drop");
}

#[tokio::test]
async fn postgres_streams_end_their_spans_when_finished_or_dropped() {
    let cap = capture();
    let component = "sqlx-pg-streams";
    let pool = pg_pool(component).await;
    let telemetry = get_telemetry("app");

    let (read, first) = telemetry
        .span("report")
        .instrument(async {
            let mut all = sqlx::query("SELECT n FROM generate_series(1, $1) AS s(n)")
                .bind(50)
                .fetch(&pool);
            let mut read = 0;
            while let Some(row) = next(&mut all).await {
                row.expect("row");
                read += 1;
            }
            drop(all);
            let mut early =
                sqlx::query_as::<_, (i32,)>("SELECT n FROM generate_series(1, $1) AS s(n)")
                    .bind(100_000)
                    .fetch(&pool);
            let first = next(&mut early).await.expect("a row").expect("ok").0;
            (read, first)
        })
        .await;
    assert_eq!((read, first), (50, 1));

    // The pool still works: the dropped stream gave its connection back in a usable state.
    let n: (i64,) = sqlx::query_as("SELECT count(*) FROM generate_series(1, 3)")
        .fetch_one(&pool)
        .await
        .expect("after the dropped stream");
    assert_eq!(n.0, 3);

    let report = the_span(&cap, "report");
    let spans = db_spans(&cap, component);
    assert_eq!(names(&spans), ["SELECT", "SELECT", "SELECT"]);
    for span in &spans[..2] {
        assert_db_span(span, component, Some(&report));
        assert_pg_target(span);
        assert_eq!(span.status, Status::Unset);
        assert_eq!(
            string_attr(span, "db.query.text").as_deref(),
            Some("SELECT n FROM generate_series(?, $1) AS s(n)")
        );
    }
    assert_db_span(&spans[2], component, None);
    assert_eq!(
        string_attr(&spans[2], "db.query.text").as_deref(),
        Some("SELECT count(*) FROM generate_series(?, ?)")
    );
}

#[tokio::test]
async fn postgres_errors_carry_the_sqlstate_and_no_value_from_the_database() {
    let cap = capture();
    let component = "sqlx-pg-errors";
    let pool = pg_pool(component).await;
    let table = unique("accounts");
    sqlx::query(sql(format!(
        "CREATE TABLE {table} (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE)"
    )))
    .execute(&pool)
    .await
    .expect("CREATE TABLE");
    let insert = format!("INSERT INTO {table} (email) VALUES ($1)");
    sqlx::query(sql(insert.clone()))
        .bind("dup-s3cret@example.com")
        .execute(&pool)
        .await
        .expect("first insert");

    let telemetry = get_telemetry("app");
    let (missing, dup, bad_input) = telemetry
        .span("failing")
        .instrument(async {
            let missing = sqlx::query("SELECT * FROM unitel_no_such_table WHERE id = $1")
                .bind(1)
                .fetch_optional(&pool)
                .await
                .expect_err("missing table");
            // The database quotes the value back in DETAIL: `Key (email)=(...) already exists`.
            let dup = sqlx::query(sql(insert.clone()))
                .bind("dup-s3cret@example.com")
                .execute(&pool)
                .await
                .expect_err("unique violation");
            // And in the message: `invalid input syntax for type integer: "..."`.
            let bad_input = sqlx::query("SELECT $1::text::int")
                .bind("not-a-number-s3cret")
                .fetch_one(&pool)
                .await
                .expect_err("bad input");
            (missing, dup, bad_input)
        })
        .await;
    let code = |e: &sqlx::Error| match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        other => panic!("{other:?}"),
    };
    assert_eq!(code(&missing).as_deref(), Some("42P01"));
    assert_eq!(code(&dup).as_deref(), Some("23505"));
    assert_eq!(code(&bad_input).as_deref(), Some("22P02"));

    let failing = the_span(&cap, "failing");
    let spans = db_spans(&cap, component);
    let ins = format!("INSERT {table}");
    let missing = only(&spans, "SELECT unitel_no_such_table");
    let dup = spans
        .iter()
        .rfind(|s| s.name == ins)
        .expect("the failed INSERT");
    let bad = only(&spans, "SELECT");
    for (span, code, description) in [
        (missing, "42P01", "database error 42P01"),
        (dup, "23505", "unique violation 23505"),
        (bad, "22P02", "database error 22P02"),
    ] {
        assert_db_span(span, component, Some(&failing));
        assert_pg_target(span);
        assert_eq!(
            string_attr(span, "db.response.status_code").as_deref(),
            Some(code)
        );
        assert_eq!(string_attr(span, "error.type").as_deref(), Some(code));
        assert_eq!(
            span.status,
            Status::Error {
                description: description.into()
            }
        );
    }
    let options = pg_options();
    let port = options.get_port().to_string();
    let point = [
        ("db.system.name", "postgresql"),
        ("db.namespace", options.get_database().unwrap()),
        ("server.address", options.get_host()),
        ("server.port", port.as_str()),
        ("db.operation.name", "INSERT"),
        ("db.collection.name", table.as_str()),
        ("db.query.summary", ins.as_str()),
        ("db.response.status_code", "23505"),
        ("error.type", "23505"),
    ];
    assert_eq!(duration_count(&cap, component, &point), 1);
    support::assert_no_secret(
        &cap,
        &["dup-s3cret", "not-a-number", &support::postgres_password()],
    );

    sqlx::query(sql(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await
        .expect("drop");
}

#[tokio::test]
async fn refused_connection_is_an_error_and_the_password_stays_unseen() {
    let cap = capture();
    let component = "sqlx-pg-refused";
    // A port nothing listens on: bound, then closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let password = "hunter2-refused";
    let options =
        PgConnectOptions::from_str(&format!("postgres://app:{password}@127.0.0.1:{port}/shop"))
            .expect("URL")
            .disable_statement_logging();
    let pool = instrument_sqlx(
        PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options),
    )
    .component(component);

    let error = sqlx::query("SELECT 1")
        .fetch_one(&pool)
        .await
        .expect_err("nothing listens");
    let spans = db_spans(&cap, component);
    let span = only(&spans, "SELECT");
    assert_db_span(span, component, None);
    assert_eq!(string_attr(span, "db.namespace").as_deref(), Some("shop"));
    assert_eq!(
        string_attr(span, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(int_attr(span, "server.port"), Some(i64::from(port)));
    assert_eq!(span.attr("db.response.status_code"), None);
    let expected = match &error {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection_refused"
        }
        sqlx::Error::PoolTimedOut => "pool_timeout",
        other => panic!("unexpected error for a refused connection: {other:?}"),
    };
    assert_eq!(string_attr(span, "error.type").as_deref(), Some(expected));
    assert!(matches!(span.status, Status::Error { .. }));
    let port_text = port.to_string();
    assert_eq!(
        duration_count(
            &cap,
            component,
            &[
                ("db.system.name", "postgresql"),
                ("db.namespace", "shop"),
                ("server.address", "127.0.0.1"),
                ("server.port", port_text.as_str()),
                ("db.operation.name", "SELECT"),
                ("db.query.summary", "SELECT"),
                ("error.type", expected),
            ]
        ),
        1
    );
    support::assert_no_secret(&cap, &[password]);
    let debug = format!("{pool:?}");
    assert!(!debug.contains(password), "{debug}");
    assert!(debug.contains("postgresql"), "{debug}");
}

#[tokio::test]
async fn literals_and_the_password_never_leave_the_process() {
    let cap = capture();
    let component = "sqlx-pg-secrets";
    let pool = pg_pool(component).await;
    let table = unique("people");
    sqlx::query(sql(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, email TEXT, pin INT, note TEXT)"
    )))
    .execute(&pool)
    .await
    .expect("CREATE TABLE");
    let insert = format!(
        "INSERT INTO {table} (id, email, pin, note) \
         VALUES (1, 'literal-s3cret@example.com', 424242, $$dollar s3cret$$) -- by s3cret-comment"
    );
    sqlx::raw_sql(sql(insert))
        .execute(&pool)
        .await
        .expect("INSERT");
    let select = format!(
        "SELECT id FROM {table} WHERE email = 'literal-s3cret@example.com' AND pin = 424242 /* s3cret-comment */"
    );
    let mut conn = pool.acquire().await.expect("acquire");
    let id: (i32,) = sqlx::query_as(sql(select))
        .fetch_one(&mut *conn)
        .await
        .expect("SELECT");
    assert_eq!(id.0, 1);
    let tx = pool.begin().await.expect("begin");

    let spans = db_spans(&cap, component);
    let ins = only(&spans, &format!("INSERT {table}"));
    assert_eq!(
        string_attr(ins, "db.query.text"),
        Some(format!(
            "INSERT INTO {table} (id, email, pin, note) VALUES (?, ?, ?, ?)  "
        ))
    );
    let sel = only(&spans, &format!("SELECT {table}"));
    assert_eq!(
        string_attr(sel, "db.query.text"),
        Some(format!(
            "SELECT id FROM {table} WHERE email = ? AND pin = ?  "
        ))
    );
    let password = support::postgres_password();
    support::assert_no_secret(
        &cap,
        &[
            &password,
            "literal-s3cret",
            "424242",
            "dollar s3cret",
            "s3cret-comment",
        ],
    );
    for debug in [
        format!("{pool:?}"),
        format!("{conn:?}"),
        format!("{tx:?}"),
        format!("{:?}", &*conn),
    ] {
        assert!(!debug.contains(&password), "{debug}");
        assert!(debug.contains("postgresql"), "{debug}");
    }
    drop(tx);
    drop(conn);
    sqlx::query(sql(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await
        .expect("drop");
}

#[tokio::test]
async fn sqlx_query_log_lines_of_a_query_belong_to_its_span() {
    let cap = capture();
    let component = "sqlx-pg-logs";
    // sqlx's own statement log on (a parameterised query: no literal in it).
    let options = PgConnectOptions::from_str(&support::postgres_url()).expect("URL");
    let pool = instrument_sqlx(
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("connect"),
    )
    .component(component);
    let n: (i32,) = sqlx::query_as("SELECT $1::int4 + 1")
        .bind(41)
        .fetch_one(&pool)
        .await
        .expect("query");
    assert_eq!(n.0, 42);
    // A stream, read to its end.
    let mut rows = sqlx::query("SELECT n FROM generate_series(1, $1) AS s(n)")
        .bind(3)
        .fetch(&pool);
    while let Some(row) = next(&mut rows).await {
        row.expect("row");
    }
    drop(rows);

    let spans = db_spans(&cap, component);
    assert_eq!(names(&spans), ["SELECT", "SELECT"]);
    let lines: Vec<_> = cap
        .logs()
        .into_iter()
        .filter(|l| l.target == "sqlx::query")
        .collect();
    assert_eq!(lines.len(), 2, "sqlx logged each statement once");
    for (line, span) in lines.iter().zip(&spans) {
        assert_eq!(line.trace_id.as_deref(), Some(span.trace_id.as_str()));
        assert_eq!(
            line.span_id.as_deref(),
            Some(span.span_id.as_str()),
            "{:?}",
            line.json
        );
    }
}

/// sqlx's own statement log carries the statement's whole text, literals included (target
/// `sqlx::query`: every statement at DEBUG, slow ones at WARN, which the default `info`
/// filter lets through). unitel's log layer sanitizes those fields: the line stays, its
/// literals do not.
#[tokio::test]
async fn sqlx_statement_logs_keep_literals_out() {
    let cap = capture();
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .unwrap()
        // Every statement is "slow": the WARN line the default filter lets through.
        .log_slow_statements(log::LevelFilter::Warn, Duration::ZERO);
    let pool = instrument_sqlx(
        SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap(),
    )
    .component("sqlx-statement-logs");
    sqlx::query("SELECT 'statement-log-s3cret' AS a, 1 AS b, 2 AS c")
        .fetch_one(&pool)
        .await
        .unwrap();
    support::assert_no_secret(&cap, &["statement-log-s3cret"]);
}

// ---------------------------------------------------------------------------------------------
// Off

#[test]
fn with_telemetry_off_the_wrapper_is_the_bare_pool() {
    if support::in_parent("with_telemetry_off_the_wrapper_is_the_bare_pool", &[]) {
        return;
    }
    // The child: telemetry was never configured.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let pool = sqlite_memory("sqlx-off").await;
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .execute(&pool)
            .await
            .expect("create");
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("INSERT INTO t (v) VALUES (?)")
            .bind("x")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        let mut conn = pool.acquire().await.expect("acquire");
        let (v,): (String,) = sqlx::query_as("SELECT v FROM t WHERE id = 1")
            .fetch_one(&mut *conn)
            .await
            .expect("select");
        assert_eq!(v, "x");
        drop(conn);
        let err = sqlx::query("SELECT * FROM missing")
            .execute(&pool)
            .await
            .expect_err("missing");
        assert!(matches!(err, sqlx::Error::Database(_)));

        let pg = pg_pool("sqlx-off").await;
        let (n,): (i64,) = sqlx::query_as("SELECT $1::int8 * 2")
            .bind(21_i64)
            .fetch_one(&pg)
            .await
            .expect("pg");
        assert_eq!(n, 42);
    });
}
