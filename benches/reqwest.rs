//! What the reqwest adapter adds to a request, against the bare client, end to end over
//! loopback in the same run.
//!
//! One axum endpoint (`GET /` answering `ok`) is served on `127.0.0.1:0` by a tokio runtime
//! with one worker thread. The criterion thread drives the clients on a current-thread runtime
//! of its own, one keep-alive connection each, sending `GET /` and reading the body:
//!
//! 1. `bare`: a plain `reqwest::Client`.
//! 2. `bare + traceparent`: the bare client sending a fixed `traceparent` header: what the
//!    propagated header alone costs (written by the client, parsed by the server), for
//!    reference.
//! 3. `middleware, empty`: the same client in a `reqwest_middleware::ClientWithMiddleware`
//!    with no middleware: the chain's own cost (a boxed future), for reference.
//! 4. `unitel`: `unitel::instrument_reqwest(reqwest::Client::new())` under
//!    `configure_telemetry` (console off, `AlwaysOn` sampler, a batch span processor exporting
//!    to an exporter that counts and discards, a `ManualReader` so the histogram is aggregated,
//!    no other exporter): a sampled CLIENT span with its attributes, the injected
//!    `traceparent`, and `http.client.request.duration`.
//!
//! A second group, `reqwest_canned`, sends the same request through the middleware chain to a
//! last middleware that answers at once with a canned `200 ok`: no socket, no server, so the
//! adapter's own cost (span, context injection, metric, export) stands out from the noise of
//! loopback I/O. `chain` is the canned answer alone, `unitel` adds `HttpClientMiddleware` in
//! front of it.
//!
//! After criterion's pass, outside its timing, the variants are measured again interleaved
//! (rounds of 1000 requests each, in turn, which cancels the drift of a busy machine), in wall
//! time and in CPU time of all the process's threads (client, server, span processor; Linux
//! only). The bench prints the per-request medians and what `unitel` adds over `bare` in µs,
//! then checks that every instrumented request recorded one duration and exported one span
//! (less any the SDK's batch processor dropped from its full queue, which it says).
//!
//! Run it pinned to one CPU (`taskset -c 0 cargo bench --bench reqwest`): every thread's work
//! is then on the one CPU, wall time matches CPU time, and the difference is the adapter's CPU
//! cost per request, server included.

#![allow(missing_docs)]

mod common;

use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::ManualReader;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanData, SpanExporter};
use reqwest_middleware::{ClientBuilder, Middleware, Next};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The interleaved pass: rounds, requests per variant and round, and the pause after each.
const ROUNDS: usize = 12;
const PER_ROUND: usize = 1000;
const SETTLE: Duration = Duration::from_millis(150);

/// Spans exported so far.
static EXPORTED: AtomicU64 = AtomicU64::new(0);
/// Requests sent through the adapter so far.
static INSTRUMENTED: AtomicU64 = AtomicU64::new(0);

/// What the `bare + traceparent` variant sends.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Counts the spans of each batch and drops them.
#[derive(Debug)]
struct CountAndDiscard;

impl SpanExporter for CountAndDiscard {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        EXPORTED.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// A client variant: sends `GET /` and reads the body.
enum Client {
    Bare(reqwest::Client),
    BareWithHeader(reqwest::Client),
    Chain(reqwest_middleware::ClientWithMiddleware),
    Unitel(reqwest_middleware::ClientWithMiddleware),
}

impl Client {
    async fn get(&self, url: &str) {
        let response = match self {
            Client::Bare(c) => c.get(url).send().await.expect("request"),
            Client::BareWithHeader(c) => c
                .get(url)
                .header("traceparent", TRACEPARENT)
                .send()
                .await
                .expect("request"),
            Client::Chain(c) => c.get(url).send().await.expect("request"),
            Client::Unitel(c) => {
                INSTRUMENTED.fetch_add(1, Ordering::Relaxed);
                c.get(url).send().await.expect("request")
            }
        };
        assert!(response.status().is_success(), "{}", response.status());
        let body = response.bytes().await.expect("body");
        assert_eq!(&body[..], b"ok");
    }
}

/// Answers every request with `200 ok`, without sending it.
struct Canned;

impl Middleware for Canned {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        _req: reqwest::Request,
        _extensions: &'life1 mut http::Extensions,
        _next: Next<'life2>,
    ) -> Pin<
        Box<
            dyn Future<Output = reqwest_middleware::Result<reqwest::Response>>
                + Send
                + 'async_trait,
        >,
    >
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(Ok(reqwest::Response::from(
            http::Response::new("ok"),
        ))))
    }
}

struct Variant {
    name: &'static str,
    client: Client,
    samples: Vec<f64>,
}

fn reqwest_bench(c: &mut Criterion) {
    let reader = Arc::new(ManualReader::builder().build());
    let guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOn)
            .with_span_processor(BatchSpanProcessor::builder(CountAndDiscard).build())
            .with_metric_reader(reader.clone()),
    )
    .expect("configure");

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("local addr"));
    let app = Router::new().route("/", get(|| async { "ok" }));
    server.spawn(async move { axum::serve(listener, app).await.expect("serve") });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let mut variants = [
        Variant::new("bare", Client::Bare(reqwest::Client::new())),
        Variant::new(
            "bare + traceparent",
            Client::BareWithHeader(reqwest::Client::new()),
        ),
        Variant::new(
            "middleware, empty",
            Client::Chain(reqwest::Client::new().into()),
        ),
        Variant::new(
            "unitel",
            Client::Unitel(unitel::instrument_reqwest(reqwest::Client::new())),
        ),
    ];
    // Connect each client once, outside the timing.
    for variant in &mut variants {
        runtime.block_on(variant.client.get(&url));
    }

    let mut g = c.benchmark_group("reqwest");
    for variant in &mut variants {
        let Variant {
            name,
            client,
            samples,
        } = variant;
        g.bench_function(format!("GET /{name}"), |b| {
            b.iter_custom(|iters| {
                let elapsed = runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        client.get(&url).await;
                    }
                    start.elapsed()
                });
                samples.push(elapsed.as_secs_f64() * 1e6 / iters as f64);
                elapsed
            })
        });
    }
    g.finish();

    canned(c, &runtime, &url);

    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench")
        && !args.iter().any(|a| a == "--profile-time" || a == "--list");
    if benching {
        report(&runtime, &url, &mut variants);
        if std::thread::available_parallelism().map_or(1, usize::from) > 1 {
            eprintln!(
                "note: not pinned to one CPU; wall times depend on thread placement \
                 (run under `taskset -c 0` for repeatable figures)\n"
            );
        }
    }

    // Every instrumented request exported one span and recorded one duration.
    let instrumented = INSTRUMENTED.load(Ordering::Relaxed);
    let recorded = common::histogram_count(&reader, "http.client.request.duration").unwrap_or(0);
    drop(guard);
    let exported = EXPORTED.load(Ordering::Relaxed);
    eprintln!(
        "unitel: {instrumented} requests, {exported} spans exported, {recorded} durations recorded"
    );
    if recorded != instrumented {
        eprintln!("  WARNING: not one duration per request");
    }
    if exported > instrumented {
        eprintln!("  WARNING: more spans than requests");
    } else if exported < instrumented {
        // The SDK's batch processor drops what does not fit its queue (2048 spans by default)
        // while its thread is behind: the canned group ends a span every 2-3 µs on one CPU.
        eprintln!(
            "  {} spans dropped by the batch span processor's full queue (not by the adapter)",
            instrumented - exported
        );
    }
}

impl Variant {
    fn new(name: &'static str, client: Client) -> Variant {
        Variant {
            name,
            client,
            samples: Vec::new(),
        }
    }
}

/// The middleware chain with a canned answer, with and without the adapter.
fn canned(c: &mut Criterion, runtime: &tokio::runtime::Runtime, url: &str) {
    let chain = ClientBuilder::new(reqwest::Client::new())
        .with(Canned)
        .build();
    let unitel = ClientBuilder::new(reqwest::Client::new())
        .with(unitel::HttpClientMiddleware::new())
        .with(Canned)
        .build();
    let mut g = c.benchmark_group("reqwest_canned");
    for (name, client) in [("chain", chain), ("unitel", unitel)] {
        g.bench_function(format!("GET /{name}"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        if name == "unitel" {
                            INSTRUMENTED.fetch_add(1, Ordering::Relaxed);
                        }
                        let response = client.get(url).send().await.expect("canned");
                        criterion::black_box(response);
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

/// Measures the variants again, interleaved, and prints both passes' figures and what unitel
/// adds over the bare client.
///
/// Each block of requests is followed by a pause longer than any deferred work (the batch span
/// processor's export), which falls into the block's CPU window: the CPU time is that of every
/// thread of the process from the block's start to the pause's end.
fn report(runtime: &tokio::runtime::Runtime, url: &str, variants: &mut [Variant]) {
    let pass = common::interleaved(variants.len(), ROUNDS, PER_ROUND, SETTLE, |i, calls| {
        let variant = &mut variants[i];
        runtime.block_on(async {
            for _ in 0..calls {
                variant.client.get(url).await;
            }
        });
    });

    let criterion = variants
        .iter_mut()
        .map(|v| common::median(&mut v.samples))
        .collect();
    let columns = common::columns(criterion, pass);
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    common::print_table("reqwest", ROUNDS, PER_ROUND, &names, &columns);
    let show = common::show;
    for (pass, figures) in &columns {
        let added = |i: usize| Some(figures.get(i).copied()?? - figures[0]?);
        eprintln!(
            "{pass:>11}: added over bare: unitel {} µs (for reference: the traceparent header \
             alone {} µs, the empty middleware chain {} µs); goal <= 1 µs",
            show(added(3)),
            show(added(1)),
            show(added(2)),
        );
    }
    eprintln!();
}

criterion_group! { name = benches; config = common::criterion(); targets = reqwest_bench }
criterion_main!(benches);
