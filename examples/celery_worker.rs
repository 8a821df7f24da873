//! Seed 002: Ghostworks' Celery worker, in Rust. The API enqueues tasks with their trace
//! context, a worker runs them, and every task is correlated with the request that asked for it.
//!
//! ```text
//! cargo run --example celery_worker                    # in-process queue, a demo run that exits
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example celery_worker   # real Redis lists
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --example celery_worker   # push by OTLP
//! cargo run --example celery_worker -- --serve   # keep the worker and /metrics up until Ctrl-C
//! ```
//!
//! The API side (component `api`) handles six requests, each a SERVER span such as
//! `POST /auth/register`. Each enqueues one Celery task: a PRODUCER span
//! `apply_async/<task>` (as the seed's Celery instrumentation names it) wraps the task in a
//! [`JobEnvelope`], which carries the span's `traceparent`, and pushes it serialized as JSON
//! onto the task's queue: a Redis list (`LPUSH <prefix><queue>`, through `instrument_redis`)
//! when `REDIS_URL` is set, an in-process channel otherwise. `CELERY_QUEUE_PREFIX` (default
//! `ghostworks:`) prefixes the list keys.
//!
//! The worker (component `worker`) pops each message (`BRPOP` on Redis) and runs the task in a
//! CONSUMER span `run/<task>` that continues the producer's trace: same trace id, parent
//! `apply_async/<task>`. Inside it run the seed's own spans — `email.send_verification`,
//! `email.send_password_reset`, `email.send_workspace_invitation`, `data.process_batch`,
//! `data.export` — with `task.id`, `task.name`, `queue`, and `user.id`, `email.type`,
//! `email.success` on the email tasks. Two tasks fail: their spans get an error status and the
//! worker logs the error with its cause. The task's payload (email addresses, tokens) is never
//! recorded anywhere: not in an attribute, a log line, or a Redis span.
//!
//! The seed's metrics, under the seed's names (Prometheus on `/metrics`; OTLP when an endpoint
//! is set): `celery_tasks_processed_total{name,status,queue}` (`status` is `success` or
//! `failure`), `celery_task_duration_seconds{name,queue}` (a histogram in seconds),
//! `email_tasks_total{task_type,success}` and `data_processing_tasks_total{task_type}`.
//!
//! What to look at: the `queued ...` lines name each request's trace id; the console lines of
//! the worker's task carry the same `[trace:..]`; the demo run ends by printing what Prometheus
//! scrapes, and the `unitel logs` command that shows the failed verification email's trace,
//! request to worker, from `logs/celery_worker.log`. With `--serve`, `/metrics` stays up on
//! `127.0.0.1:9464` (or `OTEL_EXPORTER_PROMETHEUS_PORT`) and the worker keeps waiting for
//! tasks; with Redis you can push one yourself (a message without `traceparent` starts a trace
//! of its own):
//!
//! ```text
//! redis-cli LPUSH ghostworks:data_processing '{"payload":{"id":"t-1","task":"process_batch","queue":"data_processing","kwargs":{"batch_id":"b-1","records":10}},"headers":{}}'
//! ```

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands as _;
use serde_json::{json, Value};
use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use unitel::{
    get_telemetry, Counter, Histogram, InstrumentOptions, InstrumentedRedis, JobEnvelope, JobTrace,
    SpanBuilder, SpanKind, TelemetryConfig, UnifiedTelemetry,
};

/// The queues, as Ghostworks' Celery routes name them.
const EMAIL: &str = "email";
const DATA_PROCESSING: &str = "data_processing";

/// The email tasks: the task's name, the seed's span name, and `email.type`.
const EMAIL_TASKS: [(&str, &str, &str); 3] = [
    (
        "send_verification_email",
        "email.send_verification",
        "verification",
    ),
    (
        "send_password_reset_email",
        "email.send_password_reset",
        "password_reset",
    ),
    (
        "send_workspace_invitation",
        "email.send_workspace_invitation",
        "workspace_invitation",
    ),
];

/// How long one `BRPOP` waits for a task before asking again.
const POP_TIMEOUT: Duration = Duration::from_secs(5);

// ----- The message -----

/// A Celery task message: the task's id, name and queue, and its keyword arguments.
#[derive(Debug, Clone)]
struct TaskMessage {
    id: String,
    task: String,
    queue: String,
    kwargs: Value,
}

/// The envelope as JSON: `{"payload": {...}, "headers": {"traceparent": ...}}`. With unitel's
/// `serde` feature, `serde_json::to_string(&job)` gives this same shape.
fn encode(job: &JobEnvelope<TaskMessage>) -> String {
    let task = &job.payload;
    json!({
        "payload": {"id": task.id, "task": task.task, "queue": task.queue, "kwargs": task.kwargs},
        "headers": job.headers(),
    })
    .to_string()
}

/// The envelope back from JSON; `None` for a message that is not one.
fn decode(text: &str) -> Option<JobEnvelope<TaskMessage>> {
    let message: Value = serde_json::from_str(text).ok()?;
    let payload = &message["payload"];
    let field = |name: &str| payload[name].as_str().map(str::to_owned);
    let task = TaskMessage {
        id: field("id")?,
        task: field("task")?,
        queue: field("queue")?,
        kwargs: payload["kwargs"].clone(),
    };
    // The trace context headers; a message without them gives the worker a trace of its own.
    let headers = message["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())));
    Some(JobEnvelope::from_parts(task, headers))
}

/// A random UUID4 text, like Celery's task ids (without a uuid dependency).
fn task_id() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let random = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let (a, b) = (random(), random());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

// ----- The broker: Redis lists, or an in-process channel -----

/// Where the API puts tasks.
enum Publisher {
    Redis {
        redis: InstrumentedRedis<MultiplexedConnection>,
        prefix: String,
    },
    InProcess(mpsc::UnboundedSender<String>),
}

/// Where the worker takes them from.
enum Consumer {
    Redis {
        redis: InstrumentedRedis<MultiplexedConnection>,
        keys: Vec<String>,
    },
    InProcess(mpsc::UnboundedReceiver<String>),
}

impl Publisher {
    /// Pushes `message` onto `queue`: with Redis, a CLIENT span `LPUSH` under the current span
    /// (the producer's), which records neither the key nor the message.
    async fn publish(&mut self, queue: &str, message: String) -> Result<(), Box<dyn Error>> {
        match self {
            Publisher::Redis { redis, prefix } => {
                redis
                    .lpush::<_, _, ()>(format!("{prefix}{queue}"), message)
                    .await?
            }
            Publisher::InProcess(sender) => sender.send(message)?,
        }
        Ok(())
    }
}

impl Consumer {
    /// The next message of any queue; `None` once the in-process channel is closed.
    async fn next(&mut self) -> Option<String> {
        match self {
            Consumer::Redis { redis, keys } => loop {
                // Like Celery's Redis transport: BRPOP on every queue, again after a timeout.
                let popped: redis::RedisResult<Option<(String, String)>> = redis::cmd("BRPOP")
                    .arg(&keys[..])
                    .arg(POP_TIMEOUT.as_secs())
                    .query_async(redis)
                    .await;
                match popped {
                    Ok(Some((_key, message))) => return Some(message),
                    Ok(None) => continue,
                    Err(err) => {
                        get_telemetry("worker").log_error_with_cause(
                            "could not take a task from Redis",
                            &err,
                            (),
                        );
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            },
            Consumer::InProcess(receiver) => receiver.recv().await,
        }
    }
}

/// Redis lists when `REDIS_URL` is set, an in-process channel otherwise; says which.
async fn connect_broker() -> Result<(Publisher, Consumer), Box<dyn Error>> {
    let Ok(url) = std::env::var("REDIS_URL") else {
        println!("queue: in-process (set REDIS_URL to use Redis lists)");
        let (sender, receiver) = mpsc::unbounded_channel();
        return Ok((Publisher::InProcess(sender), Consumer::InProcess(receiver)));
    };
    let prefix = std::env::var("CELERY_QUEUE_PREFIX").unwrap_or_else(|_| "ghostworks:".into());
    let client = redis::Client::open(url)?;
    // Two connections: a BRPOP blocks its connection. The worker's waits longer than the
    // client's default response timeout (500 ms), so it gets a longer one.
    let producer = client.get_multiplexed_async_connection().await?;
    let consumer = client
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(POP_TIMEOUT + Duration::from_secs(2))),
        )
        .await?;
    // Where, never the URL itself: it may hold a password.
    println!(
        "queue: Redis at {} (lists {prefix}{EMAIL}, {prefix}{DATA_PROCESSING})",
        client.get_connection_info().addr()
    );
    let keys = [EMAIL, DATA_PROCESSING]
        .map(|q| format!("{prefix}{q}"))
        .to_vec();
    Ok((
        Publisher::Redis {
            redis: unitel::instrument_redis(producer, &client),
            prefix,
        },
        Consumer::Redis {
            redis: unitel::instrument_redis(consumer, &client),
            keys,
        },
    ))
}

// ----- The API side -----

/// A request to the API that enqueues one task.
struct Request {
    method: &'static str,
    route: &'static str,
    task: &'static str,
    queue: &'static str,
    kwargs: Value,
}

/// What the demo run asks for. The second verification email bounces and the Parquet export
/// is not supported: those two tasks fail.
fn demo_requests() -> Vec<Request> {
    let request = |method, route, task, queue, kwargs| Request {
        method,
        route,
        task,
        queue,
        kwargs,
    };
    vec![
        request(
            "POST",
            "/auth/register",
            "send_verification_email",
            EMAIL,
            json!({"user_id": "u-1001", "email": "ada@users.ghostworks.test", "verification_token": "vt-7f3a91c2"}),
        ),
        request(
            "POST",
            "/auth/register",
            "send_verification_email",
            EMAIL,
            json!({"user_id": "u-1002", "email": "bounce@users.ghostworks.test", "verification_token": "vt-0b44d8e1"}),
        ),
        request(
            "POST",
            "/auth/password-reset",
            "send_password_reset_email",
            EMAIL,
            json!({"user_id": "u-1001", "email": "ada@users.ghostworks.test", "reset_token": "rt-52e0c6aa"}),
        ),
        request(
            "POST",
            "/workspaces/{id}/invitations",
            "send_workspace_invitation",
            EMAIL,
            json!({"inviter_id": "u-1001", "invitee_email": "grace@users.ghostworks.test", "invitation_token": "it-9d1f03b7"}),
        ),
        request(
            "POST",
            "/imports",
            "process_batch",
            DATA_PROCESSING,
            json!({"batch_id": "b-77", "records": 250}),
        ),
        request(
            "POST",
            "/exports",
            "export_data",
            DATA_PROCESSING,
            json!({"export_id": "e-12", "format": "parquet"}),
        ),
    ]
}

/// A task the API enqueued, and the trace of the request that did.
struct Queued {
    task: &'static str,
    id: String,
    queue: &'static str,
    trace_id: String,
}

/// One API request: a SERVER span, and inside it the PRODUCER span that enqueues the task.
async fn handle_request(
    api: &UnifiedTelemetry,
    publisher: &mut Publisher,
    request: Request,
) -> Queued {
    let server = api
        .span(format!("{} {}", request.method, request.route))
        .kind(SpanKind::Server)
        .attr("http.request.method", request.method)
        .attr("http.route", request.route)
        .start();
    let trace_id = server.trace_id().unwrap_or_default();
    let id = task_id();
    server
        .instrument(async {
            let task = TaskMessage {
                id: id.clone(),
                task: request.task.to_owned(),
                queue: request.queue.to_owned(),
                kwargs: request.kwargs,
            };
            // The envelope carries this span's context: the worker's span will be its child.
            let (producer, job) = task_attrs(api.span(format!("apply_async/{}", task.task)), &task)
                .attr("celery.action", "apply_async")
                .produce(task);
            producer
                .instrument(async {
                    if let Err(err) = publisher.publish(request.queue, encode(&job)).await {
                        unitel::current_span().record_error(err.as_ref());
                        api.log_error_with_cause("could not enqueue the task", err.as_ref(), ());
                    }
                })
                .await;
            api.log_info_with("task queued", &[("task.name", request.task)]);
        })
        .await;
    Queued {
        task: request.task,
        id,
        queue: request.queue,
        trace_id,
    }
}

// ----- The worker -----

/// The seed's `WorkerTelemetry`: its metrics, made once.
struct WorkerTelemetry {
    tasks_processed: Counter,
    task_duration: Histogram,
    email_tasks: Counter,
    data_processing_tasks: Counter,
}

impl WorkerTelemetry {
    fn new(worker: &UnifiedTelemetry) -> Self {
        // Counters get no unit "1" (the seed's): Prometheus would add `_ratio` to the name. The
        // names already end in `_total`, so Prometheus adds nothing: they are exposed as named.
        let count = |description| {
            InstrumentOptions::new()
                .with_unit("{task}")
                .with_description(description)
        };
        WorkerTelemetry {
            tasks_processed: worker.counter_with_options(
                "celery_tasks_processed_total",
                count("Total number of Celery tasks processed"),
            ),
            // Unit `s`: the name already ends in `_seconds`, so it stays as it is. Buckets in
            // seconds (the default ones suit milliseconds).
            task_duration: worker.histogram_with_options(
                "celery_task_duration_seconds",
                InstrumentOptions::new()
                    .with_unit("s")
                    .with_description("Duration of Celery task execution")
                    .with_boundaries([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            ),
            email_tasks: worker
                .counter_with_options("email_tasks_total", count("Total email tasks processed")),
            data_processing_tasks: worker.counter_with_options(
                "data_processing_tasks_total",
                count("Total data processing tasks"),
            ),
        }
    }

    fn record_task_processed(&self, name: &str, status: &str, queue: &str, seconds: f64) {
        let labels = [("name", name), ("status", status), ("queue", queue)];
        self.tasks_processed.add(1, &labels);
        self.task_duration
            .record(seconds, &[("name", name), ("queue", queue)]);
    }

    fn record_email_task(&self, task_type: &str, success: bool) {
        let success = if success { "true" } else { "false" };
        self.email_tasks
            .add(1, &[("task_type", task_type), ("success", success)]);
    }
}

/// How a task ended, for the summary.
struct Outcome {
    task: String,
    id: String,
    status: &'static str,
    duration: Duration,
}

/// Takes tasks until told to stop (a running task is finished first).
async fn run_worker(
    mut consumer: Consumer,
    mut stop: watch::Receiver<bool>,
    done: mpsc::UnboundedSender<Outcome>,
) {
    let worker = get_telemetry("worker");
    let telemetry = WorkerTelemetry::new(&worker);
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = consumer.next() => message,
        };
        let Some(message) = message else { break };
        let Some(job) = decode(&message) else {
            worker.log_warning("dropped a message that is not a task");
            continue;
        };
        let _ = done.send(run_task(&worker, &telemetry, job).await);
    }
}

/// One task: a CONSUMER span in the producer's trace, the task's own span inside it, and the
/// seed's metrics.
async fn run_task(
    worker: &UnifiedTelemetry,
    telemetry: &WorkerTelemetry,
    job: JobEnvelope<TaskMessage>,
) -> Outcome {
    let started = Instant::now();
    let task = &job.payload;
    let result = task_attrs(worker.span(format!("run/{}", task.task)), task)
        .consume(&job, JobTrace::Continue)
        .attr("celery.action", "run")
        .instrument(async {
            worker.log_info_with("Task starting", &[("task.name", task.task.as_str())]);
            let email = EMAIL_TASKS.iter().find(|(name, ..)| *name == task.task);
            let result = match (email, task.task.as_str()) {
                (Some(&(_, span, email_type)), _) => {
                    send_email(worker, telemetry, task, span, email_type).await
                }
                (None, "process_batch") => process_batch(worker, telemetry, task).await,
                (None, "export_data") => export_data(worker, telemetry, task).await,
                _ => Err(TaskError::new("unknown task")),
            };
            // Celery's FAILURE state: the run span fails too.
            if let Err(err) = &result {
                unitel::current_span().record_error(err);
            }
            result
        })
        .await;
    let status = if result.is_ok() { "success" } else { "failure" };
    let duration = started.elapsed();
    telemetry.record_task_processed(&task.task, status, &task.queue, duration.as_secs_f64());
    Outcome {
        task: task.task.clone(),
        id: task.id.clone(),
        status,
        duration,
    }
}

/// The attributes every Celery span of this example has (the seed's).
fn task_attrs(span: SpanBuilder, task: &TaskMessage) -> SpanBuilder {
    span.attr("task.id", task.id.as_str())
        .attr("task.name", task.task.as_str())
        .attr("queue", task.queue.as_str())
}

/// The three email tasks. Ghostworks' code also set `email.recipient`: an address is personal
/// data, so it stays out of the telemetry here; `user.id` identifies the user.
async fn send_email(
    worker: &UnifiedTelemetry,
    telemetry: &WorkerTelemetry,
    task: &TaskMessage,
    span_name: &'static str,
    email_type: &'static str,
) -> Result<(), TaskError> {
    let user_id = task.kwargs["user_id"]
        .as_str()
        .or(task.kwargs["inviter_id"].as_str())
        .unwrap_or_default();
    task_attrs(worker.span(span_name), task)
        .attr("user.id", user_id)
        .attr("email.type", email_type)
        .instrument(async {
            worker.log_info_with("Sending email", &[("email.type", email_type)]);
            let to = task.kwargs["email"]
                .as_str()
                .or(task.kwargs["invitee_email"].as_str());
            let sent = match to {
                Some(to) => deliver(to).await,
                None => Err(TaskError::new("the task names no recipient")),
            };
            let span = unitel::current_span();
            span.set_attribute("email.success", sent.is_ok());
            telemetry.record_email_task(email_type, sent.is_ok());
            match &sent {
                Ok(()) => worker.log_info_with("Email sent", &[("email.type", email_type)]),
                Err(err) => {
                    span.record_error(err);
                    worker.log_error_with_cause(
                        "Failed to send email",
                        err,
                        &[("email.type", email_type), ("user.id", user_id)],
                    );
                }
            }
            sent
        })
        .await
}

/// The mail server, simulated: it bounces `bounce@...`.
async fn deliver(to: &str) -> Result<(), TaskError> {
    tokio::time::sleep(Duration::from_millis(15)).await;
    if to.starts_with("bounce@") {
        // The error names no address: error messages end up in spans and logs.
        return Err(TaskError::caused_by(
            "the mail server rejected the message",
            "550 5.1.1 mailbox unavailable",
        ));
    }
    Ok(())
}

async fn process_batch(
    worker: &UnifiedTelemetry,
    telemetry: &WorkerTelemetry,
    task: &TaskMessage,
) -> Result<(), TaskError> {
    let records = task.kwargs["records"].as_i64().unwrap_or_default();
    task_attrs(worker.span("data.process_batch"), task)
        .attr("data.records", records)
        .instrument(async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            telemetry
                .data_processing_tasks
                .add(1, &[("task_type", "batch")]);
            worker.log_info_with("Batch processed", &[("data.records", records)]);
            Ok(())
        })
        .await
}

async fn export_data(
    worker: &UnifiedTelemetry,
    telemetry: &WorkerTelemetry,
    task: &TaskMessage,
) -> Result<(), TaskError> {
    let format = task.kwargs["format"].as_str().unwrap_or("csv");
    task_attrs(worker.span("data.export"), task)
        .attr("export.format", format)
        .instrument(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            telemetry
                .data_processing_tasks
                .add(1, &[("task_type", "export")]);
            if format != "csv" {
                let err = TaskError::caused_by("export failed", "the exporter writes csv only");
                unitel::current_span().record_error(&err);
                worker.log_error_with_cause("Export failed", &err, &[("export.format", format)]);
                return Err(err);
            }
            Ok(())
        })
        .await
}

/// Why a task failed, with its cause (logged as the seed's `exc_info=True`).
#[derive(Debug)]
struct TaskError {
    message: &'static str,
    cause: Option<std::io::Error>,
}

impl TaskError {
    fn new(message: &'static str) -> Self {
        TaskError {
            message,
            cause: None,
        }
    }

    fn caused_by(message: &'static str, cause: &str) -> Self {
        TaskError {
            message,
            cause: Some(std::io::Error::other(cause.to_owned())),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_ref().map(|e| e as _)
    }
}

// ----- main -----

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let log_file = "logs/celery_worker.log";
    // The demo run serves /metrics on a free port (it prints what is scraped, then exits);
    // --serve on 9464 or OTEL_EXPORTER_PROMETHEUS_PORT.
    let port = match std::env::var("OTEL_EXPORTER_PROMETHEUS_PORT") {
        Ok(port) => port.parse()?,
        Err(_) if serve => 9464,
        Err(_) => 0,
    };
    let mut config = TelemetryConfig::from_env()
        .with_service_version(env!("CARGO_PKG_VERSION"))
        .with_log_file(log_file)
        .with_prometheus(([127, 0, 0, 1], port));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        config = config.with_service_name("ghostworks-worker");
    }
    // OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables are read by from_env().
    let guard = unitel::configure_telemetry(config)?;
    // When serving, Ctrl-C and SIGTERM: the handlers are installed by this call, so a signal
    // that comes while the first tasks still run stops the worker once they are done. (The
    // demo keeps the default handling: Ctrl-C ends it at once.)
    let signal = serve.then(unitel::shutdown_signal);
    match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(_) => println!("export: OTLP to OTEL_EXPORTER_OTLP_ENDPOINT, console, {log_file}"),
        Err(_) => println!(
            "export: console and {log_file} (set OTEL_EXPORTER_OTLP_ENDPOINT to push by OTLP)"
        ),
    }

    let (mut publisher, consumer) = connect_broker().await?;
    let (stop_worker, stop_requested) = watch::channel(false);
    let (done, mut outcomes) = mpsc::unbounded_channel();
    let worker = tokio::spawn(run_worker(consumer, stop_requested, done));

    // The API handles its requests; each names its trace.
    let api = get_telemetry("api");
    let mut queued = Vec::new();
    for request in demo_requests() {
        let (method, route) = (request.method, request.route);
        let task = handle_request(&api, &mut publisher, request).await;
        println!(
            "queued {} id={} queue={} trace={} ({method} {route})",
            task.task, task.id, task.queue, task.trace_id
        );
        queued.push(task);
    }

    // The worker runs them.
    let mut failed = Vec::new();
    for _ in 0..queued.len() {
        let Some(outcome) = outcomes.recv().await else {
            break;
        };
        print_outcome(&outcome);
        if outcome.status == "failure" {
            failed.push(outcome.id);
        }
    }
    println!(
        "{} tasks: {} success, {} failure",
        queued.len(),
        queued.len() - failed.len(),
        failed.len()
    );

    if let Some(signal) = signal {
        if let Some(addr) = guard.prometheus_addr() {
            println!("serving Prometheus metrics on http://{addr}/metrics; the worker waits for tasks; Ctrl-C to stop");
        }
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                Some(outcome) = outcomes.recv() => print_outcome(&outcome),
            }
        }
        println!("stopping: the worker finishes its task, then everything is flushed");
    } else {
        println!("what Prometheus scrapes from /metrics:");
        let text = unitel::prometheus_text().await.unwrap_or_default();
        for line in text.lines().filter(|l| {
            l.starts_with("celery_tasks_processed_total")
                || l.starts_with("celery_task_duration_seconds_count")
                || l.starts_with("email_tasks_total")
                || l.starts_with("data_processing_tasks_total")
        }) {
            println!("  {line}");
        }
    }

    let _ = stop_worker.send(true);
    worker.await?;
    drop(publisher);
    guard.shutdown_async().await?;

    // The failed verification email: its trace, from the request to the worker's error log.
    let bounced = queued
        .iter()
        .find(|q| failed.contains(&q.id) && q.queue == EMAIL);
    if let Some(task) = bounced {
        println!(
            "the failed {} task's trace, request to worker: cargo run --features cli --bin unitel -- logs {log_file} --trace {}",
            task.task, task.trace_id
        );
    }
    Ok(())
}

fn print_outcome(outcome: &Outcome) {
    println!(
        "ran {} id={}: {} in {:.1} ms",
        outcome.task,
        outcome.id,
        outcome.status,
        outcome.duration.as_secs_f64() * 1000.0
    );
}
