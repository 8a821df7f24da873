//! What a request costs through unitel's HTTP server layer, against no telemetry and against
//! the usual hand-wired alternative, end to end over loopback.
//!
//! One axum endpoint (`GET /users/{id}` answering `ok`) is served on `127.0.0.1:0` several
//! times in the same process, each server on its own tokio runtime with one worker thread:
//!
//! 1. `none`: the plain router.
//! 2. `unitel`: `configure_telemetry` (console off, `AlwaysOn` sampler, JSON log file on, the
//!    discarding batch span processor of `benches/common`, no other exporter) and the router
//!    with `.layer(HttpServerLayer::new())`: a sampled SERVER span with the HTTP attributes,
//!    exported in batches to the discarding exporter, and its JSON span record in the file. The
//!    layer records the two HTTP server metrics too, but no metric reader is configured, so
//!    they are not aggregated.
//! 3. `tower-http`: what people wire by hand: tower-http's `TraceLayer::new_for_http()` under
//!    tracing-opentelemetry (an SDK provider, `AlwaysOn`, the same discarding batch processor)
//!    and a JSON `tracing_subscriber::fmt` layer writing to a file through tracing-appender's
//!    non-blocking writer, filtered `info,tower_http=debug` as tower-http's examples do.
//!    `new_for_http()` logs two lines per request (request started, response finished).
//! 4. `tower-http 1 line`: the same with `.on_request(())`, so that it writes one line per
//!    request, like unitel's one span record: the stricter comparison.
//!
//! unitel installs the global tracing dispatcher, so each alternative gets its own: the
//! worker threads of its runtime set it as their thread default when they start.
//!
//! The client is a raw HTTP/1.1 keep-alive `TcpStream` (`TCP_NODELAY`) in the criterion
//! thread, one per server, writing the same request and reading exactly one response per
//! iteration: the least client-side noise there is. What is timed is a whole round trip, so the
//! telemetry's cost shows as the difference to `none`.
//!
//! After criterion's pass, outside its timing, the bench measures the variants again
//! interleaved (rounds of 1000 requests each, in turn, which cancels the drift of a busy
//! machine), in wall time and in CPU time of all the process's threads (server, client, span
//! processor, log writer; Linux only). It prints the per-request medians of the passes, the
//! cost each telemetry stack adds over `none` in µs, and the ratio unitel-added /
//! alternative-added (the goal: at most 0.5). Then it flushes the files and checks that each
//! stack recorded every request (a span record, or a response line inside a `request` span).
//!
//! Run it pinned to one CPU (`taskset -c 0 cargo bench --bench http_server --features axum`).
//! Unpinned, on a small or virtualized machine, whether the client and server threads share a
//! CPU decides each figure (a cross-CPU wake-up costs tens of µs on a VM) and flips from run to
//! run; pinned, every thread's work is on the one CPU, wall time matches CPU time, and the
//! figures repeat within a few percent. The added cost is then the telemetry's CPU cost per
//! request, which is what bounds a loaded server's throughput.

#![allow(missing_docs)]

mod common;

use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use tower_http::trace::TraceLayer;
use tracing_subscriber::layer::SubscriberExt as _;

/// Worker threads per server runtime.
const WORKERS: usize = 1;
/// The interleaved pass: rounds, requests per variant and round, and the pause after each.
const ROUNDS: usize = 12;
const PER_ROUND: usize = 1000;
const SETTLE: Duration = Duration::from_millis(150);

fn router() -> Router {
    Router::new().route("/users/{id}", get(|| async { "ok" }))
}

/// A server on its own runtime; it runs until the runtime is dropped.
struct Server {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Serves `app`; with `dispatch`, the runtime's threads record through it instead of the
    /// global dispatcher.
    fn start(name: &str, app: Router, dispatch: Option<tracing::Dispatch>) -> Server {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder
            .worker_threads(WORKERS)
            .thread_name(name)
            .enable_all();
        if let Some(dispatch) = dispatch {
            builder.on_thread_start(move || {
                // The thread keeps it for its whole life.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            });
        }
        let runtime = builder.build().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        runtime.spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Server { addr, runtime }
    }
}

/// A keep-alive HTTP/1.1 connection sending one fixed request at a time.
struct Client {
    stream: TcpStream,
    request: Vec<u8>,
    buf: [u8; 2048],
    /// Requests answered so far.
    sent: u64,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let request = format!(
            "GET /users/42 HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: unitel-bench/1.0\r\n\
             Accept: */*\r\n\r\n"
        );
        let mut client = Client {
            stream,
            request: request.into_bytes(),
            buf: [0; 2048],
            sent: 0,
        };
        client.get();
        client
    }

    /// Sends the request and reads exactly its response (a `200` with a `content-length`).
    fn get(&mut self) {
        self.stream.write_all(&self.request).expect("write");
        let mut filled = 0;
        loop {
            let n = self.stream.read(&mut self.buf[filled..]).expect("read");
            assert!(n > 0, "the server closed the connection");
            filled += n;
            let received = &self.buf[..filled];
            if let Some(head) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let body = content_length(&received[..head]);
                if filled >= head + 4 + body {
                    assert_eq!(filled, head + 4 + body, "one response at a time");
                    assert!(received.starts_with(b"HTTP/1.1 200 "), "not a 200");
                    self.sent += 1;
                    return;
                }
            }
            assert!(filled < self.buf.len(), "response too long");
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    let head = std::str::from_utf8(head).expect("ascii head");
    head.split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().expect("content-length"))
        })
        .expect("a content-length")
}

/// A hand-wired stack: tracing-opentelemetry over an SDK provider with the discarding batch
/// processor, and a JSON fmt layer to `file` through the non-blocking writer.
fn alternative(
    file: &Path,
) -> (
    tracing::Dispatch,
    SdkTracerProvider,
    tracing_appender::non_blocking::WorkerGuard,
) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_span_processor(common::discarding_processor())
        .build();
    let appender = tracing_appender::rolling::never(
        file.parent().expect("a directory"),
        file.file_name().expect("a file name"),
    );
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info,tower_http=debug"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("alternative")))
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
    (tracing::Dispatch::new(subscriber), provider, guard)
}

/// One variant: its server, its connection, and the criterion samples it got (per request).
struct Variant {
    name: &'static str,
    server: Server,
    client: Client,
    samples: Vec<f64>,
}

impl Variant {
    fn new(name: &'static str, server: Server) -> Variant {
        let client = Client::connect(server.addr);
        Variant {
            name,
            server,
            client,
            samples: Vec::new(),
        }
    }
}

fn http_server(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let unitel_log = dir.path().join("unitel.log");
    let guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOn)
            .with_log_file(&unitel_log)
            .with_span_processor(common::discarding_processor()),
    )
    .expect("configure");

    let alt_log = dir.path().join("tower-http.log");
    let (alt_dispatch, alt_provider, alt_guard) = alternative(&alt_log);
    let one_line_log = dir.path().join("tower-http-1-line.log");
    let (one_line_dispatch, one_line_provider, one_line_guard) = alternative(&one_line_log);

    let mut variants = [
        Variant::new("none", Server::start("none", router(), None)),
        Variant::new(
            "unitel",
            Server::start(
                "unitel",
                router().layer(unitel::HttpServerLayer::new()),
                None,
            ),
        ),
        Variant::new(
            "tower-http",
            Server::start(
                "tower-http",
                router().layer(TraceLayer::new_for_http()),
                Some(alt_dispatch),
            ),
        ),
        Variant::new(
            "tower-http 1 line",
            Server::start(
                "tower-http-1",
                router().layer(TraceLayer::new_for_http().on_request(())),
                Some(one_line_dispatch),
            ),
        ),
    ];

    let mut g = c.benchmark_group("http_server");
    for variant in &mut variants {
        let Variant {
            name,
            client,
            samples,
            ..
        } = variant;
        g.bench_function(format!("GET /users/{{id}}/{name}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    client.get();
                }
                let elapsed = start.elapsed();
                samples.push(elapsed.as_secs_f64() * 1e6 / iters as f64);
                elapsed
            })
        });
    }
    g.finish();

    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench")
        && !args.iter().any(|a| a == "--profile-time" || a == "--list");
    if benching {
        report(&mut variants);
        if std::thread::available_parallelism().map_or(1, usize::from) > 1 {
            eprintln!(
                "note: not pinned to one CPU; wall times depend on thread placement \
                 (run under `taskset -c 0` for repeatable figures)\n"
            );
        }
    }

    // Flush every file, then check that each stack recorded every request.
    let [none, unitel_variant, alt, one_line] = variants;
    drop(none);
    drop(unitel_variant.server.runtime);
    drop(guard);
    let unitel_lines = count_lines(&unitel_log, |line| line.contains(r#""type":"span""#));
    for (variant, guard, provider, log) in [
        (alt, alt_guard, alt_provider, &alt_log),
        (one_line, one_line_guard, one_line_provider, &one_line_log),
    ] {
        variant
            .server
            .runtime
            .shutdown_timeout(Duration::from_secs(1));
        drop(guard);
        provider.shutdown().expect("provider shutdown");
        let recorded = count_lines(log, |line| {
            line.contains("finished processing request") && line.contains(r#""name":"request""#)
        });
        let lines = count_lines(log, |_| true);
        eprintln!(
            "{}: {} requests, {recorded} response lines inside a `request` span, {lines} lines",
            variant.name, variant.client.sent
        );
        if recorded != variant.client.sent {
            eprintln!(
                "  WARNING: not one recorded span per request (a lossy writer dropped lines?)"
            );
        }
    }
    eprintln!(
        "unitel: {} requests, {unitel_lines} span records in its JSON file",
        unitel_variant.client.sent
    );
    if unitel_lines != unitel_variant.client.sent {
        eprintln!("  WARNING: not one span record per request");
    }
}

/// Measures the variants again, interleaved, and prints both passes' figures.
///
/// Each block of requests is followed by a pause longer than any deferred work (unitel's
/// 100 ms log flush), which falls into the block's CPU window: the CPU time is that of every
/// thread of the process (server, client, span processor, log writer) from the block's start
/// to the pause's end.
fn report(variants: &mut [Variant]) {
    let pass = common::interleaved(variants.len(), ROUNDS, PER_ROUND, SETTLE, |i, calls| {
        let client = &mut variants[i].client;
        for _ in 0..calls {
            client.get();
        }
    });

    let criterion = variants
        .iter_mut()
        .map(|v| common::median(&mut v.samples))
        .collect();
    let columns = common::columns(criterion, pass);
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    common::print_table("http_server", ROUNDS, PER_ROUND, &names, &columns);
    let show = common::show;
    for (pass, figures) in &columns {
        let added = |i: usize| Some(figures.get(i).copied()?? - figures[0]?);
        let ratio = |alt: usize| Some(added(1)? / added(alt)?);
        eprintln!(
            "{pass:>11}: added over none: unitel {} µs, tower-http {} µs (1 line: {} µs); \
             unitel-added / tower-http-added = {} (1 line: {}), goal <= 0.5",
            show(added(1)),
            show(added(2)),
            show(added(3)),
            show(ratio(2)),
            show(ratio(3)),
        );
    }
    eprintln!();
}

fn count_lines(path: &Path, keep: impl Fn(&str) -> bool) -> u64 {
    let Ok(file) = std::fs::File::open(path) else {
        return 0;
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|line| keep(line))
        .count() as u64
}

criterion_group! { name = benches; config = common::criterion(); targets = http_server }
criterion_main!(benches);
