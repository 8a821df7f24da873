//! Task metrics for workers, with the names seed 000's dashboards query.

use crate::{
    Counter, Gauge, Histogram, InstrumentOptions, IntoValue as _, UnifiedTelemetry, UpDownCounter,
};
use opentelemetry::KeyValue;
use std::time::Instant;

/// Bucket boundaries of `<prefix>.tasks.duration`, in seconds: the semantic conventions'
/// HTTP boundaries, extended to five minutes for jobs.
const DURATION_BUCKETS: [f64; 18] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// The metrics of a task queue and its workers, named after `prefix` as FastWorker names them:
///
/// | instrument | kind | attributes |
/// |---|---|---|
/// | `<prefix>.tasks.submitted` | counter | `task.name`, `queue`, `priority` |
/// | `<prefix>.tasks.completed` | counter | `task.name`, `queue`, `priority` |
/// | `<prefix>.tasks.failed` | counter | `task.name`, `queue`, `priority` |
/// | `<prefix>.tasks.retried` | counter | `task.name`, `queue`, `priority` |
/// | `<prefix>.tasks.duration` | histogram, seconds | `task.name`, `queue`, `priority` |
/// | `<prefix>.workers.active` | gauge (up-down) | `queue` |
/// | `<prefix>.queue.size` | gauge | `queue`, `priority` |
///
/// With the prefix `fastworker`, Prometheus sees `fastworker_tasks_submitted_total`,
/// `fastworker_tasks_duration_bucket` and so on, so seed 000's queries work unchanged. The
/// duration carries no unit in its name (the seed's queries do not have one); it is recorded
/// in seconds.
///
/// ```
/// let telemetry = unitel::get_telemetry("worker");
/// let tasks = unitel::TaskMetrics::new(&telemetry, "fastworker");
/// tasks.submitted("send_email", "default", "high");
/// let run = tasks.start("send_email", "default", "high");
/// // ... the task runs ...
/// run.completed();
/// ```
#[derive(Debug, Clone)]
pub struct TaskMetrics {
    submitted: Counter,
    completed: Counter,
    failed: Counter,
    retried: Counter,
    duration: Histogram,
    active: UpDownCounter,
    queue_size: Gauge,
}

impl TaskMetrics {
    /// The task metrics of `telemetry`'s component, named `<prefix>.tasks.*`,
    /// `<prefix>.workers.active` and `<prefix>.queue.size`.
    pub fn new(telemetry: &UnifiedTelemetry, prefix: &str) -> Self {
        let name = |suffix: &str| format!("{prefix}.{suffix}");
        let describe = |what: &'static str| InstrumentOptions::new().with_description(what);
        TaskMetrics {
            submitted: telemetry
                .counter_with_options(name("tasks.submitted"), describe("Tasks submitted")),
            completed: telemetry.counter_with_options(
                name("tasks.completed"),
                describe("Tasks completed successfully"),
            ),
            failed: telemetry.counter_with_options(name("tasks.failed"), describe("Tasks failed")),
            retried: telemetry.counter_with_options(
                name("tasks.retried"),
                describe("Task attempts that failed and were retried"),
            ),
            duration: telemetry.histogram_with_options(
                name("tasks.duration"),
                describe("Task execution duration, in seconds").with_boundaries(DURATION_BUCKETS),
            ),
            active: telemetry.up_down_counter_with_options(
                name("workers.active"),
                describe("Workers running a task"),
            ),
            queue_size: telemetry.gauge_with_options(
                name("queue.size"),
                describe("Tasks waiting, by queue and priority"),
            ),
        }
    }

    /// Counts a task handed to `queue`.
    pub fn submitted(&self, task: &str, queue: &str, priority: &str) {
        self.submitted.add(1, &task_attrs(task, queue, priority));
    }

    /// A worker starts running a task: `<prefix>.workers.active` goes up until the run ends.
    pub fn start(&self, task: &str, queue: &str, priority: &str) -> TaskRun {
        self.active.add(1, &[("queue", queue)]);
        TaskRun {
            metrics: self.clone(),
            attrs: task_attrs(task, queue, priority),
            started: Instant::now(),
            ended: false,
        }
    }

    /// Sets how many tasks wait in `queue` at `priority`.
    pub fn set_queue_size(&self, queue: &str, priority: &str, size: u64) {
        self.queue_size
            .set(size as f64, &[("queue", queue), ("priority", priority)]);
    }
}

/// The attributes of a task; names that repeat (literals) are shared, not copied per call.
fn task_attrs(task: &str, queue: &str, priority: &str) -> [KeyValue; 3] {
    [
        KeyValue::new("task.name", task.to_value()),
        KeyValue::new("queue", queue.to_value()),
        KeyValue::new("priority", priority.to_value()),
    ]
}

/// One run of a task. End it with [`completed`](Self::completed), [`failed`](Self::failed) or
/// [`retried`](Self::retried); dropped without one (a panic unwound through it, the task was
/// cancelled) it counts as failed. Made by [`TaskMetrics::start`] (example: [`TaskMetrics`]).
#[derive(Debug)]
#[must_use = "a task run is counted when it ends; call completed(), failed() or retried()"]
pub struct TaskRun {
    metrics: TaskMetrics,
    attrs: [KeyValue; 3],
    started: Instant,
    ended: bool,
}

impl TaskRun {
    /// The task succeeded: counts it completed and records its duration.
    pub fn completed(mut self) {
        self.end(Outcome::Completed);
    }

    /// The task failed for good: counts it failed and records its duration.
    pub fn failed(mut self) {
        self.end(Outcome::Failed);
    }

    /// This attempt failed and the task will run again: counts a retry and records the
    /// attempt's duration.
    pub fn retried(mut self) {
        self.end(Outcome::Retried);
    }

    fn end(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let m = &self.metrics;
        let counter = match outcome {
            Outcome::Completed => &m.completed,
            Outcome::Failed => &m.failed,
            Outcome::Retried => &m.retried,
        };
        counter.add(1, &self.attrs);
        m.duration
            .record(self.started.elapsed().as_secs_f64(), &self.attrs);
        m.active.add(-1, &[self.attrs[1].clone()]);
    }
}

enum Outcome {
    Completed,
    Failed,
    Retried,
}

impl Drop for TaskRun {
    fn drop(&mut self) {
        self.end(Outcome::Failed);
    }
}
