//! What the sqlx adapter adds to a query: an SQLite in-memory point query,
//! `sqlx::query("SELECT name FROM users WHERE id = ?").bind(id).fetch_one(..)`, through a bare
//! `SqlitePool` and through the same pool wrapped in `InstrumentedPool`, in one run.
//!
//! Telemetry is configured as a service would run it: console off, `AlwaysOn` sampler, spans
//! exported in batches (the SDK's `BatchSpanProcessor`) to an exporter that counts and discards
//! them, and a metric reader, so that `db.client.operation.duration` is aggregated too. Every
//! instrumented query makes one sampled CLIENT span (with the query's sanitized text, summary,
//! operation and table, from the per-thread cache after the first call) and one histogram
//! measurement. sqlx's own statement logging is off on both pools.
//!
//! Everything runs on a current-thread tokio runtime in the criterion thread; sqlx runs each
//! SQLite connection on a worker thread of its own, so a query is a round trip between threads.
//!
//! 1. criterion: `sqlx/sqlite_point/bare` and `sqlx/sqlite_point/instrumented`, each timed over
//!    a loop of queries inside one `block_on`.
//! 2. the same, interleaved: rounds of 2000 queries per variant, in turn (which cancels the
//!    drift of a busy machine), in wall time and in CPU time of all this process's threads (the
//!    criterion thread, SQLite's worker, the span processor's thread; Linux only).
//!
//! It prints the medians and the µs the adapter adds per call, then checks that every
//! instrumented query was recorded (spans exported, histogram count). Run it pinned to one CPU
//! for repeatable figures: `taskset -c 0 cargo bench --bench sqlx`.

#![allow(missing_docs)]

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::ManualReader;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanData, SpanExporter};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{ConnectOptions as _, Executor, Row as _, Sqlite};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use unitel::InstrumentedPool;

/// The interleaved pass: rounds, calls per variant and round, and the pause after each.
const ROUNDS: usize = 15;
const PER_ROUND: usize = 2000;
const SETTLE: Duration = Duration::from_millis(50);
/// Rows in the table; the queries cycle through them.
const ROWS: i64 = 100;

/// Counts the spans it gets, and drops them.
#[derive(Debug, Clone, Default)]
struct Counting(Arc<AtomicU64>);

impl SpanExporter for Counting {
    fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// One point query; `black_box` keeps the name.
async fn point<'a, E>(executor: E, id: i64)
where
    E: Executor<'a, Database = Sqlite>,
{
    let row = sqlx::query("SELECT name FROM users WHERE id = ?")
        .bind(id)
        .fetch_one(executor)
        .await
        .expect("point query");
    black_box(row.get::<&str, _>(0).len());
}

/// `n` point queries inside one `block_on`; returns the wall time.
fn run<P>(runtime: &tokio::runtime::Runtime, pool: &P, n: u64) -> Duration
where
    for<'a> &'a P: Executor<'a, Database = Sqlite>,
{
    runtime.block_on(async {
        let start = Instant::now();
        for i in 0..n {
            point(pool, 1 + (i as i64 % ROWS)).await;
        }
        start.elapsed()
    })
}

fn sqlite_point(c: &mut Criterion) {
    let exported = Counting::default();
    let reader = Arc::new(ManualReader::builder().build());
    let guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOn)
            .with_span_processor(BatchSpanProcessor::builder(exported.clone()).build())
            .with_metric_reader(reader.clone()),
    )
    .expect("configure");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let open = || async {
        let pool: sqlx::SqlitePool;
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .expect("in-memory SQLite")
            .disable_statement_logging();
        pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("in-memory SQLite");
        sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .execute(&pool)
            .await
            .expect("CREATE TABLE");
        for id in 1..=ROWS {
            sqlx::query("INSERT INTO users (id, name) VALUES (?, ?)")
                .bind(id)
                .bind(format!("user {id}"))
                .execute(&pool)
                .await
                .expect("INSERT");
        }
        pool
    };
    // Two pools with the same data: one bare, one instrumented.
    let bare: sqlx::SqlitePool = runtime.block_on(open());
    let instrumented = InstrumentedPool::new(runtime.block_on(open()));
    let instrumented_calls = AtomicU64::new(0);

    let mut g = c.benchmark_group("sqlx");
    g.bench_function("sqlite_point/bare", |b| {
        b.iter_custom(|n| run(&runtime, &bare, n))
    });
    g.bench_function("sqlite_point/instrumented", |b| {
        b.iter_custom(|n| {
            instrumented_calls.fetch_add(n, Ordering::Relaxed);
            run(&runtime, &instrumented, n)
        })
    });
    g.finish();

    // The interleaved pass.
    let pass = common::interleaved(2, ROUNDS, PER_ROUND, SETTLE, |i, calls| {
        let calls = calls as u64;
        match i {
            0 => run(&runtime, &bare, calls),
            _ => {
                instrumented_calls.fetch_add(calls, Ordering::Relaxed);
                run(&runtime, &instrumented, calls)
            }
        };
    });
    let show = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
    let wall = [pass.wall[0], pass.wall[1]];
    let cpu = [pass.cpu[0], pass.cpu[1]];
    let added = |pair: [Option<f64>; 2]| Some(pair[1]? - pair[0]?);
    eprintln!();
    eprintln!(
        "sqlx SQLite in-memory point query (fetch_one), µs per call (medians of {ROUNDS} \
         interleaved rounds of {PER_ROUND}; CPU = CPU time of all this process's threads)"
    );
    eprintln!("  {:<13} {:>10} {:>10}", "", "wall", "CPU");
    eprintln!(
        "  {:<13} {:>10} {:>10}",
        "bare",
        show(wall[0]),
        show(cpu[0])
    );
    eprintln!(
        "  {:<13} {:>10} {:>10}",
        "instrumented",
        show(wall[1]),
        show(cpu[1])
    );
    eprintln!(
        "  added per call: wall {} µs, CPU {} µs (goal <= 1 µs)",
        show(added(wall)),
        show(added(cpu)),
    );
    eprintln!();

    // Every instrumented call was recorded: its span exported, its duration measured.
    let measured = common::histogram_count(&reader, "db.client.operation.duration");
    drop(guard); // flushes the span processor
    let calls = instrumented_calls.load(Ordering::Relaxed);
    let spans = exported.0.load(Ordering::Relaxed);
    // (The setup ran on each pool before it was wrapped.)
    assert_eq!(spans, calls, "one exported span per instrumented call");
    assert_eq!(
        measured,
        Some(calls),
        "one measurement per instrumented call"
    );
    eprintln!(
        "recorded: {calls} instrumented calls, {spans} spans exported, {measured:?} measured"
    );
}

criterion_group! { name = benches; config = common::criterion(); targets = sqlite_point }
criterion_main!(benches);
