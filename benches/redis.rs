//! What the redis adapter adds to a command: a `GET` of a small key against the local Redis
//! (`UNITEL_TEST_REDIS_URL`), through a bare `MultiplexedConnection` and through the same
//! connection wrapped in `InstrumentedRedis`, in one run.
//!
//! Telemetry is configured as a service would run it: console off, `AlwaysOn` sampler, spans
//! exported in batches (the SDK's `BatchSpanProcessor`, its queue raised to 65536 so that the
//! tight loops here lose few spans) to an exporter that counts and discards them, and a metric
//! reader, so that `db.client.operation.duration` is aggregated too. Every wrapped `GET` makes
//! one sampled CLIENT span and one histogram measurement.
//!
//! Everything runs on a current-thread tokio runtime in the criterion thread:
//!
//! 1. criterion: `redis/get/bare` and `redis/get/wrapped`, each timed over a loop of `GET`s
//!    inside one `block_on`, over the network.
//! 2. the wrapper around a connection that answers at once (no network), bare against wrapped:
//!    the added cost with no round-trip noise around it; and the same wrapper before telemetry
//!    is configured (`redis/ready/off`), the cost of the wrapper while telemetry is off.
//! 3. the same four, interleaved: rounds of 2000 `GET`s per variant, in turn (which cancels the
//!    drift of a busy machine), in wall time and in CPU time of this process's threads (the
//!    criterion thread, the span processor's thread; Linux only). The server's CPU is not in
//!    it, so the CPU difference is the telemetry's own cost.
//!
//! It prints the medians and the µs each adds per call, then checks that every wrapped call
//! was recorded (span count and histogram count). Run it pinned to one CPU for repeatable
//! figures: `UNITEL_TEST_REDIS_URL=redis://127.0.0.1:56379/ taskset -c 0 cargo bench --bench
//! redis`.

#![allow(missing_docs)]

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::ManualReader;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanExporter};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use unitel::InstrumentedRedis;

/// The interleaved pass: rounds, calls per variant and round, and the pause after each.
const ROUNDS: usize = 15;
const PER_ROUND: usize = 2000;
const SETTLE: Duration = Duration::from_millis(50);
/// The key read by every `GET`, and its value.
const KEY: &str = "unitel-bench:redis:get";
const VALUE: &str = "small value";

/// Counts the spans it gets, and drops them.
#[derive(Debug, Clone, Default)]
struct Counting(Arc<AtomicU64>);

impl SpanExporter for Counting {
    fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// A connection that answers every command at once with `Nil`: the wrapper's cost alone.
#[derive(Clone)]
struct Ready;

impl ConnectionLike for Ready {
    fn req_packed_command<'a>(&'a mut self, _cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(std::future::ready(Ok(Value::Nil)))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _pipeline: &'a Pipeline,
        _offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(std::future::ready(Ok(vec![Value::Nil; count])))
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// One `GET` of the key; `black_box` keeps the reply.
async fn get(connection: &mut impl ConnectionLike) {
    let reply: Option<String> = redis::cmd("GET")
        .arg(KEY)
        .query_async(connection)
        .await
        .expect("GET");
    black_box(reply);
}

/// `n` `GET`s on `connection` inside one `block_on`; returns the wall time.
fn run(
    runtime: &tokio::runtime::Runtime,
    connection: &mut impl ConnectionLike,
    n: u64,
) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for _ in 0..n {
            get(connection).await;
        }
        start.elapsed()
    })
}

fn redis_get(c: &mut Criterion) {
    let url = std::env::var("UNITEL_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "UNITEL_TEST_REDIS_URL is not set: this bench needs a running Redis \
             (scripts/test.sh starts one; e.g. UNITEL_TEST_REDIS_URL=redis://127.0.0.1:56379/)"
        )
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = redis::Client::open(url).expect("UNITEL_TEST_REDIS_URL is a redis URL");
    let connection: MultiplexedConnection = runtime
        .block_on(client.get_multiplexed_async_connection())
        .expect("connect to UNITEL_TEST_REDIS_URL");
    let mut bare = connection.clone();
    let mut wrapped = InstrumentedRedis::new(connection, client.get_connection_info());
    runtime.block_on(async {
        let _: () = redis::cmd("SET")
            .arg(KEY)
            .arg(VALUE)
            .query_async(&mut bare)
            .await
            .expect("SET");
    });
    let mut ready_bare = Ready;
    let mut ready_wrapped = InstrumentedRedis::new(Ready, client.get_connection_info());
    let wrapped_calls = AtomicU64::new(0);

    let mut g = c.benchmark_group("redis");
    g.bench_function("ready/bare", |b| {
        b.iter_custom(|n| run(&runtime, &mut ready_bare, n))
    });
    // Before telemetry is configured: the wrapper's whole cost is a check that it is off.
    g.bench_function("ready/off", |b| {
        b.iter_custom(|n| run(&runtime, &mut ready_wrapped, n))
    });

    let exported = Counting::default();
    let reader = Arc::new(ManualReader::builder().build());
    let guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOn)
            .with_span_processor(
                BatchSpanProcessor::builder(exported.clone())
                    .with_batch_config(
                        BatchConfigBuilder::default()
                            .with_max_queue_size(1 << 16)
                            .build(),
                    )
                    .build(),
            )
            .with_metric_reader(reader.clone()),
    )
    .expect("configure");
    g.bench_function("get/bare", |b| {
        b.iter_custom(|n| run(&runtime, &mut bare, n))
    });
    g.bench_function("get/wrapped", |b| {
        b.iter_custom(|n| {
            wrapped_calls.fetch_add(n, Ordering::Relaxed);
            run(&runtime, &mut wrapped, n)
        })
    });
    g.bench_function("ready/wrapped", |b| {
        b.iter_custom(|n| {
            wrapped_calls.fetch_add(n, Ordering::Relaxed);
            run(&runtime, &mut ready_wrapped, n)
        })
    });
    g.finish();

    // The interleaved pass: over the network, then without it.
    let names = ["get/bare", "get/wrapped", "ready/bare", "ready/wrapped"];
    let pass = common::interleaved(names.len(), ROUNDS, PER_ROUND, SETTLE, |i, calls| {
        let n = calls as u64;
        match i {
            0 => run(&runtime, &mut bare, n),
            1 => run(&runtime, &mut wrapped, n),
            2 => run(&runtime, &mut ready_bare, n),
            _ => run(&runtime, &mut ready_wrapped, n),
        };
        if i % 2 == 1 {
            wrapped_calls.fetch_add(n, Ordering::Relaxed);
        }
    });
    let show = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
    let (wall, cpu) = (pass.wall, pass.cpu);
    let added = |of: &[Option<f64>], bare: usize| Some(of[bare + 1]? - of[bare]?);
    eprintln!();
    eprintln!(
        "redis GET, µs per call (medians of {ROUNDS} interleaved rounds of {PER_ROUND}; CPU = \
         CPU time of this process's threads, the server's excluded)"
    );
    eprintln!("  {:<15} {:>10} {:>10}", "", "wall", "CPU");
    for (i, name) in names.iter().enumerate() {
        eprintln!("  {name:<15} {:>10} {:>10}", show(wall[i]), show(cpu[i]));
    }
    for (bare, what) in [(0, "over the network"), (2, "without it")] {
        eprintln!(
            "  added per call {what}: wall {} µs, CPU {} µs (goal <= 1 µs)",
            show(added(&wall, bare)),
            show(added(&cpu, bare)),
        );
    }
    eprintln!();

    let measured = common::histogram_count(&reader, "db.client.operation.duration");
    drop(guard); // flushes the span processor
    let calls = wrapped_calls.load(Ordering::Relaxed);
    let spans = exported.0.load(Ordering::Relaxed);
    eprintln!(
        "recorded: {calls} wrapped calls, {spans} spans exported ({} dropped by the batch \
         processor's full queue), {measured:?} measured",
        calls.saturating_sub(spans)
    );
    assert!(spans > calls / 2, "most wrapped calls exported their span");
    assert_eq!(measured, Some(calls), "one measurement per wrapped call");
}

criterion_group! { name = benches; config = common::criterion(); targets = redis_get }
criterion_main!(benches);
