//! A simulated service on embedded defaults (no servers, no environment needed).
//!
//! Each request opens a span, calls a nested operation, stores the order in SQLite (in memory,
//! through the sqlx adapter), asks a local inventory endpoint over HTTP (through the reqwest
//! adapter; the endpoint, served in-process by axum with the server layer, reads SQLite too),
//! and hands a job to a background worker over a channel together with its trace context, so
//! the worker's spans join the request's trace. With `REDIS_URL` set, each request also counts
//! itself in Redis (through the redis adapter). Counters and histograms are recorded, logs are
//! written at several levels (one error with its cause), the console lines carry
//! `[trace:..] [span:..]`, and JSON lines go to `./logs/quickstart.log`.
//!
//! ```text
//! cargo run --example quickstart
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --example quickstart   # also push by OTLP
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example quickstart   # Redis spans too
//! cargo run --example quickstart -- --serve    # keep serving Prometheus /metrics until Ctrl-C
//! ```

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands as _;
use reqwest_middleware::ClientWithMiddleware;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::Sqlite;
use std::error::Error;
use std::fmt;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use unitel::logfile::{LogRecord, Record, SpanRecord};
use unitel::opentelemetry::trace::SpanId;
use unitel::{get_telemetry, InstrumentedPool, InstrumentedRedis, Status, TelemetryConfig};
use unitel::{TraceContext, UnifiedTelemetry};

/// A job handed to the worker, with the trace it belongs to.
struct Job {
    id: u32,
    order_id: u64,
    trace: TraceContext,
}

#[derive(Debug)]
struct PaymentError {
    source: std::io::Error,
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payment provider rejected the charge")
    }
}

impl Error for PaymentError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// The service's clients, each through its unitel adapter.
struct Shop {
    /// SQLite, in memory.
    db: InstrumentedPool<Sqlite>,
    /// The HTTP client, and the local inventory endpoint it calls.
    http: ClientWithMiddleware,
    inventory: String,
    /// Redis, when `REDIS_URL` is set.
    redis: Option<InstrumentedRedis<MultiplexedConnection>>,
}

fn main() -> Result<(), Box<dyn Error>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let log_file = "logs/quickstart.log";
    let mut config = TelemetryConfig::from_env()
        .with_service_name("quickstart")
        .with_service_version(env!("CARGO_PKG_VERSION"))
        .with_environment("development")
        .with_log_file(log_file);
    if serve {
        let port = std::env::var("OTEL_EXPORTER_PROMETHEUS_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(9464);
        config = config.with_prometheus(([127, 0, 0, 1], port));
    }
    // OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) are read by from_env().
    let guard = unitel::configure_telemetry(config)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let shop = runtime.block_on(open_shop())?;

    let (jobs, inbox) = mpsc::channel::<Job>();
    let worker = thread::Builder::new()
        .name("background-worker".into())
        .spawn(move || run_worker(inbox))?;

    let api = get_telemetry("api_gateway");
    let mut traces = Vec::new();
    for request in 1..=3u32 {
        traces.push(runtime.block_on(handle_request(&api, &shop, request, &jobs)));
    }

    if serve {
        serve_until_ctrl_c(&runtime, &guard, &api, &shop, &jobs)?;
    }

    drop(jobs);
    let _ = worker.join();
    drop(shop);
    drop(runtime);

    // Flush the log file and exporters before reading the file.
    guard.shutdown()?;

    // Request 2's job fails: show its trace, rebuilt from the JSON file alone.
    if let Some(Some(trace_id)) = traces.get(1) {
        println!();
        println!("trace {trace_id} (request 2, whose job failed) is in {log_file}:");
        print_trace(log_file, trace_id)?;
        // The last line: the command that shows all of it, from a clone of this repository
        // (or `unitel logs ...` after `cargo install unitel --features cli`).
        println!("see all of it: cargo run --features cli --bin unitel -- logs {log_file} --trace {trace_id}");
    }
    Ok(())
}

/// Opens the database, starts the inventory endpoint, and connects to Redis when asked to.
async fn open_shop() -> Result<Shop, Box<dyn Error>> {
    // One connection, kept: an in-memory SQLite database lives as long as its connection.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await?;
    let db = InstrumentedPool::new(pool);
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount_cents INTEGER NOT NULL)")
        .execute(&db)
        .await?;
    sqlx::query("CREATE TABLE stock (item INTEGER PRIMARY KEY, available INTEGER NOT NULL)")
        .execute(&db)
        .await?;
    sqlx::query("INSERT INTO stock (item, available) VALUES (1007, 3), (2007, 0), (3007, 12)")
        .execute(&db)
        .await?;

    // The inventory endpoint: another service in real life, here on loopback in-process.
    let app = Router::new()
        .route("/inventory/{item}", get(inventory))
        .with_state(db.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let inventory = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, unitel::instrument_axum(app)).await });

    let redis = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let client = redis::Client::open(url)?;
            let connection = client.get_multiplexed_async_connection().await?;
            Some(InstrumentedRedis::new(
                connection,
                client.get_connection_info(),
            ))
        }
        Err(_) => None,
    };
    Ok(Shop {
        db,
        http: unitel::instrument_reqwest(reqwest::Client::new()),
        inventory,
        redis,
    })
}

/// `GET /inventory/{item}`: the stock of one item, from the database.
async fn inventory(
    State(db): State<InstrumentedPool<Sqlite>>,
    Path(item): Path<i64>,
) -> Result<String, StatusCode> {
    let available: Option<i64> = sqlx::query_scalar("SELECT available FROM stock WHERE item = ?")
        .bind(item)
        .fetch_optional(&db)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    match available {
        Some(n) => Ok(n.to_string()),
        None => Err(StatusCode::NOT_FOUND),
    }
}

/// Keeps handling a request a second, so the metrics move, until Ctrl-C.
fn serve_until_ctrl_c(
    runtime: &tokio::runtime::Runtime,
    guard: &unitel::TelemetryGuard,
    api: &UnifiedTelemetry,
    shop: &Shop,
    jobs: &mpsc::Sender<Job>,
) -> Result<(), Box<dyn Error>> {
    if let Some(addr) = guard.prometheus_addr() {
        println!("\nserving Prometheus metrics on http://{addr}/metrics (curl it, or point a scrape job at it); Ctrl-C to stop");
    }
    runtime.block_on(async {
        let mut request = 4;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    handle_request(api, shop, request, jobs).await;
                    request += 1;
                }
            }
        }
    });
    println!("\nCtrl-C: flushing and stopping");
    Ok(())
}

/// Prints the trace's spans as a tree, each with the log lines written inside it.
fn print_trace(log_file: &str, trace_id: &str) -> Result<(), Box<dyn Error>> {
    let records: Vec<Record> = unitel::logfile::read_records(log_file)?
        .into_iter()
        .filter(|r| r.trace_id().is_some_and(|id| id.to_string() == trace_id))
        .collect();
    let spans: Vec<&SpanRecord> = records.iter().filter_map(Record::as_span).collect();
    let logs: Vec<&LogRecord> = records.iter().filter_map(Record::as_log).collect();
    fn walk(spans: &[&SpanRecord], logs: &[&LogRecord], parent: Option<SpanId>, depth: usize) {
        for span in spans.iter().filter(|s| s.parent_span_id == parent) {
            let ms = span.duration.as_nanos() as f64 / 1e6;
            let status = match span.status {
                Status::Unset => "unset",
                Status::Ok => "ok",
                Status::Error { .. } => "error",
            };
            println!(
                "  {:indent$}{}.{} ({ms:.1} ms, {status})",
                "",
                span.component,
                span.name,
                indent = depth * 2
            );
            for log in logs.iter().filter(|l| l.span_id == Some(span.span_id)) {
                println!(
                    "  {:indent$}  {} {}",
                    "",
                    log.level,
                    log.message,
                    indent = depth * 2
                );
            }
            walk(spans, logs, Some(span.span_id), depth + 1);
        }
    }
    walk(&spans, &logs, None, 0);
    Ok(())
}

/// One request: a span, a nested operation, a database write, an HTTP call, a job for the
/// worker, metrics and logs.
async fn handle_request(
    api: &UnifiedTelemetry,
    shop: &Shop,
    request: u32,
    jobs: &mpsc::Sender<Job>,
) -> Option<String> {
    let started = Instant::now();
    let span = api
        .trace("handle_request")
        .attr("http.request.method", "POST")
        .attr("request.id", i64::from(request));
    let trace_id = span.trace_id();
    span.instrument(async {
        api.log_info_with("request received", &[("path", "/orders")]);

        let order_id = validate_order(request);
        unitel::current_span().set_attribute("order.id", order_id as i64);

        // A child span per query and per HTTP call, from the adapters.
        let stored = sqlx::query("INSERT INTO orders (id, amount_cents) VALUES (?, ?)")
            .bind(order_id as i64)
            .bind(i64::from(request) * 1250)
            .execute(&shop.db)
            .await;
        if let Err(err) = stored {
            api.log_error_with_cause("order not stored", &err, ());
        }
        let item = order_id;
        match shop
            .http
            .get(format!("{}/inventory/{item}", shop.inventory))
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                api.log_info_with("inventory checked", &[("status", i64::from(status))]);
            }
            Err(_) => api.log_warning("inventory unreachable"),
        }
        if let Some(redis) = &shop.redis {
            let mut redis = redis.clone();
            let seen: redis::RedisResult<i64> = redis.incr("quickstart:requests", 1).await;
            if let Ok(seen) = seen {
                api.log_debug_with("requests counted in Redis", &[("seen", seen)]);
            }
        }

        jobs.send(Job {
            id: request,
            order_id,
            trace: TraceContext::current(),
        })
        .ok();
        api.log_debug("job queued for the worker");

        let status = if request == 2 { "202" } else { "200" };
        api.counter("requests_total")
            .add(1, &[("method", "POST"), ("status", status)]);
        api.histogram("request_duration_ms").record(
            started.elapsed().as_secs_f64() * 1000.0,
            &[("endpoint", "/orders")],
        );
        api.log_info_with("request done", &[("status", status)]);
    })
    .await;
    trace_id
}

/// A nested operation, written with plain `tracing`: it joins the facade's span.
#[tracing::instrument]
fn validate_order(request: u32) -> u64 {
    thread::sleep(Duration::from_millis(2));
    tracing::info!(request, "order validated");
    u64::from(request) * 1000 + 7
}

fn run_worker(inbox: mpsc::Receiver<Job>) {
    let worker = get_telemetry("background_worker");
    let queue_depth = worker.up_down_counter("jobs_in_flight");
    for job in inbox {
        // Continue the request's trace on this thread.
        let _context = job.trace.attach();
        let span = worker
            .trace("process_job")
            .attr("job.id", i64::from(job.id))
            .attr("order.id", job.order_id as i64);
        queue_depth.add(1, ());
        worker.log_info_with("processing job", &[("job.id", i64::from(job.id))]);

        {
            let _step = worker.trace("charge_payment");
            thread::sleep(Duration::from_millis(3));
            if job.id == 2 {
                let err = PaymentError {
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "provider timed out after 3 ms",
                    ),
                };
                _step.record_error(&err);
                worker.log_error_with_cause(
                    "charge failed, will retry",
                    &err,
                    &[("job.id", i64::from(job.id))],
                );
                worker.counter("jobs_failed").add(1, ());
            } else {
                worker.counter("jobs_completed").add(1, ());
            }
        }
        if job.order_id > 2000 {
            worker.log_warning("large order id, flagged for review");
        }
        worker
            .histogram("job_duration_seconds")
            .record(0.003 + f64::from(job.id) / 1000.0, ());
        queue_depth.add(-1, ());
        drop(span);
    }
}
