//! Seed 000, FastWorker: a task queue whose client submits tasks and whose workers run them,
//! traced and measured the way FastWorker's OpenTelemetry integration does it.
//!
//! - **One trace per task.** `client.submit_task` (a PRODUCER span) wraps the task in a
//!   [`JobEnvelope`] carrying its trace context; the worker's `worker.execute_task` (a
//!   CONSUMER span) is its child, in the same trace. Both carry FastWorker's attributes:
//!   `task.id`, `task.name`, `task.priority`, and on the worker's span `worker.id`.
//! - **FastWorker's metrics**, through [`unitel::TaskMetrics`]: the counters
//!   `fastworker.tasks.submitted`, `.completed`, `.failed`, the histogram
//!   `fastworker.tasks.duration` (seconds), the gauges `fastworker.workers.active` and
//!   `fastworker.queue.size` (by priority). Prometheus scrapes them as
//!   `fastworker_tasks_submitted_total` and so on, so the seed's PromQL works unchanged:
//!   `rate(fastworker_tasks_failed_total[5m])`,
//!   `histogram_quantile(0.95, rate(fastworker_tasks_duration_bucket[5m]))`, ...
//! - **Some tasks fail** (`generate_report` times out on every other run), so
//!   `fastworker.tasks.failed` has data and the failed task's span holds the error and its cause.
//!
//! The queue is in-process (FastWorker's client, control plane and subworkers talk over nng;
//! here they are tokio tasks sharing a priority queue), so it runs with no servers at all:
//!
//! ```text
//! cargo run --example fastworker                  # a batch of tasks, then exits (a few seconds)
//! cargo run --example fastworker -- --serve       # keeps submitting tasks until Ctrl-C/SIGTERM
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --example fastworker   # push by OTLP
//! FASTWORKER_TELEMETRY_ENABLED=false cargo run --example fastworker                # telemetry off
//! ```
//!
//! Configured from the environment like FastWorker:
//!
//! | variable | here |
//! |---|---|
//! | `FASTWORKER_TELEMETRY_ENABLED` | `false` (or `0`, `no`) turns telemetry off through `with_disabled`. Unset, telemetry is **on** here, so the demo shows something; FastWorker's default is off: write `.with_disabled(var != "true")` to keep that |
//! | `OTEL_SERVICE_NAME` | the service name; `fastworker` when unset, as in FastWorker (`with_default_service_name`) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | where spans, metrics and logs are pushed. unitel speaks http/protobuf by default (port 4318); for FastWorker's `:4317` add `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`. Unset: nothing is pushed, and the spans are in `logs/fastworker.log` |
//! | `OTEL_TRACES_SAMPLER` (`_ARG`) | the sampler, e.g. `parentbased_traceidratio` with `0.05`, as in the seed |
//! | `OTEL_EXPORTER_PROMETHEUS_PORT`, `_HOST`, `OTEL_METRICS_EXPORTER` | the pull endpoint: on `127.0.0.1:9464` unless these say otherwise (port `0` picks a free port; `OTEL_METRICS_EXPORTER=otlp` alone turns it off) |
//!
//! What to look at: the console lines of the client (`task submitted`) and of the worker
//! (`task failed`) for one task end in the same `[trace:..]`; the last lines name the trace of
//! a failed task and the `unitel logs` command that shows its two spans as a tree; the
//! metrics URL printed at the start serves the seed's metrics while it runs.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use unitel::{
    get_telemetry, JobEnvelope, JobTrace, TaskMetrics, TelemetryConfig, UnifiedTelemetry,
};

/// The queue's name in the metrics' `queue` attribute.
const QUEUE: &str = "default";
/// The JSON log file: every log line and one record per span, read by `unitel logs`.
const LOG_FILE: &str = "logs/fastworker.log";
/// How many subworkers run tasks.
const WORKERS: usize = 3;
/// How many tasks the demo run submits.
const BATCH: u64 = 9;

/// FastWorker's four priorities; workers take the most urgent task first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    Critical,
    High,
    Normal,
    Low,
}

impl Priority {
    const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// A task as the client hands it over: what to run, and how urgently.
#[derive(Debug, Clone)]
struct Task {
    id: String,
    name: &'static str,
    priority: Priority,
    /// Which run of the task this is (decides its duration, and whether a report fails).
    seq: u64,
}

/// What a worker says back about one task.
#[derive(Debug)]
struct Outcome {
    task: Task,
    worker_id: String,
    /// The trace the worker ran the task in: the one the client submitted it in.
    trace_id: Option<String>,
    error: Option<String>,
}

/// A task that failed, with its cause (the span's `exception` event and the error log show
/// both).
#[derive(Debug)]
struct TaskError {
    what: &'static str,
    source: std::io::Error,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// The control plane's queue: one lane per priority. Each task travels in a [`JobEnvelope`],
/// which carries the `traceparent` of the span that submitted it, exactly as it would in a
/// message over the network (`JobEnvelope` serializes with the `serde` feature).
struct TaskQueue {
    lanes: Mutex<[VecDeque<JobEnvelope<Task>>; 4]>,
    ready: Notify,
    closed: AtomicBool,
    metrics: TaskMetrics,
}

impl TaskQueue {
    fn new(metrics: TaskMetrics) -> Self {
        // Every lane's size is known from the start (zero), so the gauge has all four series.
        for priority in Priority::ALL {
            metrics.set_queue_size(QUEUE, priority.as_str(), 0);
        }
        TaskQueue {
            lanes: Mutex::default(),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
            metrics,
        }
    }

    fn push(&self, job: JobEnvelope<Task>) {
        let priority = job.payload.priority;
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let lane = &mut lanes[priority as usize];
        lane.push_back(job);
        // fastworker.queue.size, by priority, as FastWorker's control plane reports it.
        self.metrics
            .set_queue_size(QUEUE, priority.as_str(), lane.len() as u64);
        drop(lanes);
        self.ready.notify_one();
    }

    /// The most urgent task, once there is one; `None` once the queue is closed and empty.
    async fn pop(&self) -> Option<JobEnvelope<Task>> {
        loop {
            // Registered before looking, so a push in between is not missed.
            let ready = self.ready.notified();
            {
                let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
                for (lane, priority) in lanes.iter_mut().zip(Priority::ALL) {
                    if let Some(job) = lane.pop_front() {
                        self.metrics
                            .set_queue_size(QUEUE, priority.as_str(), lane.len() as u64);
                        return Some(job);
                    }
                }
                if self.closed.load(Ordering::Acquire) {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// No more tasks come: workers run the ones still queued, then stop.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_waiters();
    }
}

/// FastWorker's `Client`: submits tasks to the queue.
struct Client {
    telemetry: UnifiedTelemetry,
    metrics: TaskMetrics,
    queue: Arc<TaskQueue>,
    submitted: u64,
}

impl Client {
    /// `client.delay(name, priority=...)`: a `client.submit_task` span, the
    /// `fastworker.tasks.submitted` count, and the task on the queue with the span's context.
    fn submit(&mut self, name: &'static str, priority: Priority) -> String {
        self.submitted += 1;
        let task = Task {
            id: format!("task-{}", self.submitted),
            name,
            priority,
            seq: self.submitted,
        };
        let id = task.id.clone();
        // `produce` starts a PRODUCER span and wraps the task with that span's context.
        let (span, job) = self
            .telemetry
            .span("client.submit_task")
            .attrs(&[
                ("task.id", id.as_str()),
                ("task.name", name),
                ("task.priority", priority.as_str()),
            ])
            .produce(task);
        self.metrics.submitted(name, QUEUE, priority.as_str());
        self.queue.push(job);
        self.telemetry.log_info_with(
            "task submitted",
            &[("task.id", id.as_str()), ("task.name", name)],
        );
        drop(span); // submitted: the span ends here, the worker's span continues its trace
        id
    }
}

/// One subworker: takes tasks off the queue until it closes.
async fn run_worker(
    worker_id: String,
    queue: Arc<TaskQueue>,
    metrics: TaskMetrics,
    outcomes: mpsc::UnboundedSender<Outcome>,
) {
    let telemetry = get_telemetry("worker");
    while let Some(job) = queue.pop().await {
        let task = job.payload.clone();
        // A CONSUMER span, child of the client's `client.submit_task` (JobTrace::Link would
        // start a trace of its own, linked to it, for very long queues).
        let span = telemetry
            .span("worker.execute_task")
            .consume(&job, JobTrace::Continue)
            .attrs(&[
                ("task.id", task.id.as_str()),
                ("task.name", task.name),
                ("task.priority", task.priority.as_str()),
                ("worker.id", worker_id.as_str()),
            ]);
        let outcome = span
            .instrument(async {
                // fastworker.workers.active goes up until the run ends; the run's end counts
                // it completed or failed and records fastworker.tasks.duration. Ended inside
                // the span, so the measurements keep this trace as their exemplar.
                let run = metrics.start(task.name, QUEUE, task.priority.as_str());
                let result = execute(&task).await;
                let error = match result {
                    Ok(()) => {
                        run.completed();
                        None
                    }
                    Err(err) => {
                        run.failed();
                        unitel::current_span().record_error(&err);
                        telemetry.log_error_with_cause(
                            "task failed",
                            &err,
                            &[("task.id", task.id.as_str()), ("worker.id", &worker_id)],
                        );
                        Some(err.to_string())
                    }
                };
                Outcome {
                    trace_id: unitel::current_trace_id(),
                    worker_id: worker_id.clone(),
                    task,
                    error,
                }
            })
            .await;
        let _ = outcomes.send(outcome);
    }
}

/// The task's body: some work, and for every other report a timeout.
async fn execute(task: &Task) -> Result<(), TaskError> {
    let (base_ms, spread_ms) = match task.name {
        "send_email" => (20, 40),
        "resize_image" => (80, 120),
        _ => (200, 200),
    };
    let ms = base_ms + (task.seq * 37) % spread_ms;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if task.name == "generate_report" && task.seq.is_multiple_of(2) {
        return Err(TaskError {
            what: "report query failed",
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("database did not answer within {ms} ms"),
            ),
        });
    }
    Ok(())
}

/// The `seq`-th task of the demo: a mix of names and priorities.
fn plan(seq: u64) -> (&'static str, Priority) {
    let name = ["send_email", "resize_image", "generate_report"][(seq % 3) as usize];
    let priority = Priority::ALL[((seq / 3) % 4) as usize];
    (name, priority)
}

/// Whether FastWorker's own switch, or unitel's (`OTEL_SDK_DISABLED`), turns telemetry off.
fn telemetry_disabled() -> bool {
    let var = |name| std::env::var(name).unwrap_or_default().to_ascii_lowercase();
    matches!(
        var("FASTWORKER_TELEMETRY_ENABLED").as_str(),
        "false" | "0" | "no"
    ) || var("OTEL_SDK_DISABLED") == "true"
}

/// The configuration, from the environment as FastWorker reads it.
fn config() -> TelemetryConfig {
    // OTEL_SDK_DISABLED, OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER, ...
    let mut config = TelemetryConfig::from_env()
        // FastWorker's service name, unless OTEL_SERVICE_NAME (or service.name in
        // OTEL_RESOURCE_ATTRIBUTES) names the service otherwise.
        .with_default_service_name("fastworker")
        .with_log_file(LOG_FILE);

    // FastWorker's own switch: every telemetry call becomes a near-free no-op.
    if telemetry_disabled() {
        config = config.with_disabled(true);
    }

    // The Prometheus pull endpoint, where the seed's PromQL is asked: on 127.0.0.1:9464 unless
    // the OTEL_* variables choose (a port, a host, or exporters without `prometheus`).
    let chosen = [
        "OTEL_METRICS_EXPORTER",
        "OTEL_EXPORTER_PROMETHEUS_PORT",
        "OTEL_EXPORTER_PROMETHEUS_HOST",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    if !chosen {
        config = config.with_prometheus(([127, 0, 0, 1], 9464));
    }
    config
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let guard = unitel::configure_telemetry(config())?;
    // Serving stops on Ctrl-C/SIGTERM. The handlers are installed by this call, so a signal
    // during the rest of start-up is not missed; the future is awaited once serving. (The demo
    // run installs none: Ctrl-C ends it at once.)
    let stop = serve.then(unitel::shutdown_signal);

    // Say where everything goes.
    let disabled = telemetry_disabled();
    if disabled {
        println!("telemetry off (FASTWORKER_TELEMETRY_ENABLED=false or OTEL_SDK_DISABLED=true): tasks run, nothing is recorded");
    } else if let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        println!(
            "spans, metrics and logs: OTLP to {}",
            without_userinfo(&endpoint)
        );
    } else {
        println!(
            "no OTEL_EXPORTER_OTLP_ENDPOINT: nothing is pushed; spans and logs are in {LOG_FILE}"
        );
    }
    if let Some(addr) = guard.prometheus_addr() {
        println!("metrics: http://{addr}/metrics");
    }

    // The control plane's queue, its workers, and a client. One set of task metrics for all
    // of them, as FastWorker has one meter.
    let metrics = TaskMetrics::new(&get_telemetry("fastworker"), "fastworker");
    let queue = Arc::new(TaskQueue::new(metrics.clone()));
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let workers: Vec<_> = (1..=WORKERS)
        .map(|n| {
            tokio::spawn(run_worker(
                format!("worker-{n}"),
                Arc::clone(&queue),
                metrics.clone(),
                outcomes_tx.clone(),
            ))
        })
        .collect();
    drop(outcomes_tx);
    let mut client = Client {
        telemetry: get_telemetry("client"),
        metrics,
        queue: Arc::clone(&queue),
        submitted: 0,
    };

    // A batch of tasks, and what became of them.
    for seq in 1..=BATCH {
        let (name, priority) = plan(seq);
        client.submit(name, priority);
    }
    let mut tally = Tally::default();
    let mut first_failure = None;
    for _ in 0..BATCH {
        let Some(outcome) = outcomes.recv().await else {
            break;
        };
        tally.count(&outcome);
        if outcome.error.is_some() && first_failure.is_none() {
            first_failure = Some(outcome);
        }
    }
    println!(
        "{BATCH} tasks ran on {WORKERS} workers: {} completed, {} failed",
        tally.completed, tally.failed
    );
    let failed_trace = first_failure.and_then(|outcome| {
        let trace_id = outcome.trace_id?;
        println!(
            "trace {trace_id} ({} {}, priority {}, failed on {}: {})",
            outcome.task.id,
            outcome.task.name,
            outcome.task.priority.as_str(),
            outcome.worker_id,
            outcome.error.unwrap_or_default()
        );
        Some(trace_id)
    });

    if let Some(stop) = stop {
        if let Some(addr) = guard.prometheus_addr() {
            println!("serving http://{addr}/metrics and submitting tasks until Ctrl-C/SIGTERM; try rate(fastworker_tasks_failed_total[5m])");
        }
        submit_until_stopped(&mut client, &mut outcomes, &mut tally, stop).await;
        println!("stopping: workers finish the queued tasks");
    }

    // Stop the workers, then flush what is still buffered (the spans of the last tasks, the
    // final metric values) before the process exits.
    queue.close();
    for worker in workers {
        let _ = worker.await;
    }
    while let Some(outcome) = outcomes.recv().await {
        tally.count(&outcome);
    }
    if serve {
        println!(
            "stopped: tasks submitted {}, completed {}, failed {}",
            client.submitted, tally.completed, tally.failed
        );
    }
    match guard.shutdown_async().await {
        // Lost telemetry is worth saying, not worth failing a worker's clean exit for.
        Err(err) => eprintln!("telemetry not fully flushed: {err}"),
        Ok(()) => {
            if let Some(trace_id) = failed_trace {
                println!("see the failed task's trace: cargo run --features cli --bin unitel -- logs {LOG_FILE} --trace {trace_id}");
            }
        }
    }
    Ok(())
}

/// How many tasks ended, and how.
#[derive(Debug, Default)]
struct Tally {
    completed: u64,
    failed: u64,
}

impl Tally {
    fn count(&mut self, outcome: &Outcome) {
        match outcome.error {
            None => self.completed += 1,
            Some(_) => self.failed += 1,
        }
    }
}

/// Serving: a task every 150 ms, so the rates and the latency histogram keep moving, until
/// `stop` (Ctrl-C or SIGTERM).
async fn submit_until_stopped(
    client: &mut Client,
    outcomes: &mut mpsc::UnboundedReceiver<Outcome>,
    tally: &mut Tally,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_millis(150));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let (name, priority) = plan(client.submitted + 1);
                client.submit(name, priority);
            }
            Some(outcome) = outcomes.recv() => tally.count(&outcome),
        }
    }
}

/// `endpoint` without a `user:password@`, should it have one: fit to print.
fn without_userinfo(endpoint: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => endpoint.to_owned(),
    }
}
