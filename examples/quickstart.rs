//! A simulated service on embedded defaults (no servers, no environment needed).
//!
//! Each request opens a span, calls a nested operation, and hands a job to a background worker
//! over a channel together with its trace context, so the worker's spans join the request's
//! trace. Counters and histograms are recorded, logs are written at several levels (one error
//! with its cause), the console lines carry `[trace:..] [span:..]`, and JSON lines go to
//! `./logs/quickstart.log`.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::error::Error;
use std::fmt;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use unitel::{get_telemetry, TelemetryConfig, TraceContext, UnifiedTelemetry};

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

fn main() -> Result<(), Box<dyn Error>> {
    let log_file = "logs/quickstart.log";
    let guard = unitel::configure_telemetry(
        TelemetryConfig::from_env()
            .with_service_name("quickstart")
            .with_service_version(env!("CARGO_PKG_VERSION"))
            .with_environment("development")
            .with_log_file(log_file),
    )?;

    let (jobs, inbox) = mpsc::channel::<Job>();
    let worker = thread::Builder::new()
        .name("background-worker".into())
        .spawn(move || run_worker(inbox))?;

    let api = get_telemetry("api_gateway");
    let mut first_trace = None;
    for request in 1..=3u32 {
        let trace_id = handle_request(&api, request, &jobs);
        first_trace.get_or_insert(trace_id);
    }

    drop(jobs);
    let _ = worker.join();

    // Flush the log file and exporters before reading the file.
    guard.shutdown()?;

    if let Some(Some(trace_id)) = first_trace {
        println!();
        println!("trace {trace_id}: its logs and spans (request and worker) are in {log_file}");
        println!("  grep {trace_id} {log_file}");
    }
    Ok(())
}

/// One request: a span, a nested operation, a job for the worker, metrics and logs.
fn handle_request(api: &UnifiedTelemetry, request: u32, jobs: &mpsc::Sender<Job>) -> Option<String> {
    let started = Instant::now();
    let span = api
        .trace("handle_request")
        .attr("http.request.method", "POST")
        .attr("request.id", i64::from(request));
    api.log_info_with("request received", &[("path", "/orders")]);

    let order_id = validate_order(request);
    span.set_attribute("order.id", order_id as i64);

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
    api.histogram("request_duration_ms")
        .record(started.elapsed().as_secs_f64() * 1000.0, &[("endpoint", "/orders")]);
    api.log_info_with("request done", &[("status", status)]);
    span.trace_id()
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
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "provider timed out after 3 ms"),
                };
                _step.record_error(&err);
                worker.log_error_with_cause("charge failed, will retry", &err, &[("job.id", i64::from(job.id))]);
                worker.counter("jobs_failed").add(1, ());
            } else {
                worker.counter("jobs_completed").add(1, ());
            }
        }
        if job.order_id > 2000 {
            worker.log_warning("large order id, flagged for review");
        }
        worker
            .histogram("job_duration_ms")
            .record(3.0 + f64::from(job.id), ());
        queue_depth.add(-1, ());
        drop(span);
    }
}
