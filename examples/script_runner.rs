//! A traced command-line script, configured only by the `OTEL_*` environment variables: seed
//! 004, the Python Script Runner's OpenTelemetry integration.
//!
//! One run is one trace, with the seed's span and event names:
//!
//! ```text
//! ScriptRunner (root span)
//! ├── extract_metadata (span)         #[tracing::instrument]
//! ├── validate_dependencies (span)    #[tracing::instrument]
//! ├── setup_environment (span)        #[tracing::instrument]
//! ├── execute_script (span)           telemetry.trace(..)
//! │   ├── cpu_monitoring (event)
//! │   ├── memory_monitoring (event)
//! │   └── io_monitoring (event)
//! ├── collect_metrics (span)          #[tracing::instrument]
//! └── upload_traces (span)            telemetry.trace(..)
//! ```
//!
//! The script itself is a small ETL job: it writes an input file of records in a temporary
//! directory, sums them into an output file, and reports the process's CPU time, memory and I/O
//! (read from `/proc/self` on Linux) as the three monitoring events. Its last line is the trace id:
//! `trace id: <32 hex> (sampled)`, or `(not sampled: ...)` when the sampler dropped the trace.
//!
//! ```text
//! cargo run --example script_runner                    # no collector: spans printed as JSON lines
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=my-etl-pipeline \
//! OTEL_RESOURCE_ATTRIBUTES=pipeline.name=daily_etl,team=data-engineering \
//!     cargo run --example script_runner                # push to a collector (Jaeger, Tempo, ...)
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//!     cargo run --example script_runner                # the same over grpc
//! ```
//!
//! Nothing is set in the code but the default service name (`script_runner`, when neither
//! `OTEL_SERVICE_NAME` nor `service.name` in `OTEL_RESOURCE_ATTRIBUTES` names one) and, when no
//! collector and no exporter are named, the console exporter. The seed's variables:
//!
//! | variable | here |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | the collector; without it, spans are printed on standard output |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` (default), `http/json`, `grpc` |
//! | `OTEL_SERVICE_NAME` | the service; default `script_runner` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | the seed's `tracing_attributes`: `pipeline.name=daily_etl,team=data-engineering` |
//! | `OTEL_TRACES_EXPORTER` | `otlp`, `console`, `none` |
//! | `OTEL_PROPAGATORS` | `tracecontext,baggage` (default) |
//! | `OTEL_SDK_DISABLED` | `true`: nothing is recorded; the script still runs |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | the sampler, below |
//! | `TRACEPARENT`, `TRACESTATE`, `BAGGAGE` | the trace to continue (seed 004's "trace context from environment") |
//!
//! Sampling strategies (the decision is made once, for the root span; every child follows it):
//!
//! ```text
//! OTEL_TRACES_SAMPLER=always_on                                 # every run is traced
//! OTEL_TRACES_SAMPLER=always_off                                # none: "trace id: ... (not sampled ...)"
//! OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1  # 10% of runs, chosen by trace id
//! OTEL_TRACES_SAMPLER=parentbased_always_on                     # the default: follow TRACEPARENT's
//!                                                               # sampled flag, trace new roots
//! OTEL_TRACES_SAMPLER=parentbased_always_off                    # follow TRACEPARENT, drop new roots
//! OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1
//! ```
//!
//! Run it a few times with `traceidratio` and `OTEL_TRACES_SAMPLER_ARG=0.5`: about half the
//! runs say `(sampled)`. The seed's `tailbased` is refused at start-up, naming the variable:
//! tail sampling is the collector's job (the OpenTelemetry Collector's `tail_sampling`
//! processor), so sample `always_on` here and decide there.
//!
//! Chaining scripts into one trace (seed 004's "multi-service workflow"): the script reads
//! its parent's context with `TraceContext::from_env()`, and the lines before the last give
//! this run's as `TraceContext::to_env()` writes it: `TRACEPARENT=00-...` (then `TRACESTATE=`
//! and `BAGGAGE=` when this run was given them). Run the next script with them in its
//! environment and its `ScriptRunner` span is a child of this run's root span:
//!
//! ```text
//! TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 cargo run --example script_runner
//! ```
//!
//! A script that starts the next one itself hands them over the same way:
//! `Command::new("next-step").envs(TraceContext::current().to_env())`.
//!
//! What to look at: the `trace id:` line, then that trace in your backend (or, without one, the
//! JSON span records printed before it: one per span, with `parent_span_id` and `events`).
//! `#[tracing::instrument]` needs `tracing` among your own dependencies (`tracing = "0.1"`).

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use unitel::{get_telemetry, Exporter, TelemetryConfig, TraceContext, UnifiedTelemetry};

/// The service name when the environment names none (also the script's name in its metadata).
const DEFAULT_SERVICE_NAME: &str = "script_runner";

/// How many records the demo ETL job writes, reads back and sums.
const RECORDS: u64 = 20_000;

fn main() -> ExitCode {
    // Everything from the OTEL_* variables; the name is ours only if they name no service
    // (neither OTEL_SERVICE_NAME nor service.name in OTEL_RESOURCE_ATTRIBUTES).
    let config = TelemetryConfig::from_env().with_default_service_name(DEFAULT_SERVICE_NAME);
    // Where spans go, said in one line. With no collector and no exporter named, print the
    // spans on standard output rather than record them for nobody.
    let exporter = var("OTEL_TRACES_EXPORTER");
    let config = match traces_destination() {
        Some(destination) => {
            println!("exporting spans to {destination}");
            config
        }
        None => {
            println!(
                "no OTEL_EXPORTER_OTLP_ENDPOINT: spans printed on standard output \
                 (OTEL_TRACES_EXPORTER=console)"
            );
            config.with_traces_exporter(&[Exporter::Console])
        }
    };
    let (sampler, default) = sampler_from_env();
    let default = if default { " (the default)" } else { "" };
    println!("sampler: {sampler}{default}");

    // An invalid variable (OTEL_TRACES_SAMPLER=tailbased, a ratio of 2, ...) stops here, named.
    let guard = match unitel::configure_telemetry(config) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("script_runner: {e}");
            return ExitCode::from(2);
        }
    };

    let telemetry = get_telemetry("script_runner");
    // What upload_traces records: the exporters named, else the default chosen above.
    let exporter = exporter.unwrap_or_else(|| {
        let otlp = traces_destination().is_some();
        if otlp { "otlp" } else { "console" }.to_owned()
    });
    let (trace, result) = run(&telemetry, &exporter);

    // Flush everything before exiting: the batch processor would otherwise still hold the
    // spans of a script this short. Waits at most the shutdown timeout (5 s).
    if let Err(e) = guard.shutdown() {
        eprintln!("script_runner: {e}");
        return ExitCode::FAILURE;
    }

    let code = match result {
        Ok(summary) => {
            println!(
                "✅ script completed: {} records, sum {}, in {:.3}s",
                summary.records, summary.sum, summary.execution_time_seconds
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("❌ script failed: {e}");
            ExitCode::FAILURE
        }
    };
    // The last lines: how to continue this trace, and its id (seed: `result.trace_id`).
    for (name, value) in &trace.continue_with {
        println!("{name}={value}");
    }
    match (&trace.trace_id, trace.sampled) {
        (Some(id), true) => println!("trace id: {id} (sampled)"),
        (Some(id), false) => {
            let parent = if trace.continued {
                ", following TRACEPARENT"
            } else {
                ""
            };
            println!("trace id: {id} (not sampled by {sampler}{parent}: nothing was exported)")
        }
        (None, _) => println!("trace id: none (telemetry is disabled: OTEL_SDK_DISABLED)"),
    }
    code
}

/// What the run says about its trace once the root span has ended.
struct TraceInfo {
    trace_id: Option<String>,
    /// Whether the run continues a trace from `TRACEPARENT`.
    continued: bool,
    /// The environment that makes a next script continue this trace under the root span:
    /// `TRACEPARENT`, and `TRACESTATE` and `BAGGAGE` when this run was given them.
    continue_with: Vec<(String, String)>,
    sampled: bool,
}

/// The script's result (seed: `result.metrics`).
struct Summary {
    records: u64,
    sum: u64,
    execution_time_seconds: f64,
}

/// The whole run under the `ScriptRunner` root span.
fn run(telemetry: &UnifiedTelemetry, exporter: &str) -> (TraceInfo, std::io::Result<Summary>) {
    // A trace handed down by whoever started this script (another script, a CI job): its
    // TRACEPARENT (with TRACESTATE and BAGGAGE) makes this run part of that trace, and decides
    // sampling for the parent-based samplers. Absent (or malformed, which is said once on
    // standard error), this run starts a trace of its own.
    let incoming = TraceContext::from_env();
    let root = telemetry
        .span("ScriptRunner")
        .parent(&incoming)
        .attr("process.pid", i64::from(std::process::id()))
        .start();
    let trace = TraceInfo {
        trace_id: root.trace_id(),
        continued: incoming.trace_id().is_some(),
        // TRACEPARENT, TRACESTATE and BAGGAGE, as `Command::envs` takes them.
        continue_with: root.context().to_env(),
        // False when the sampler dropped the trace: the spans below then record nothing.
        sampled: root.is_recording(),
    };

    let started = Instant::now();
    let result = run_steps(telemetry, exporter, started);
    match &result {
        Ok(summary) => {
            root.set_attribute("script.success", true);
            root.set_attribute("execution_time_seconds", summary.execution_time_seconds);
        }
        Err(e) => {
            root.set_attribute("script.success", false);
            root.record_error(e);
        }
    }
    drop(root);
    (trace, result)
}

/// The seed's steps, in order; the first that fails ends the run.
fn run_steps(
    telemetry: &UnifiedTelemetry,
    exporter: &str,
    started: Instant,
) -> std::io::Result<Summary> {
    let metadata = extract_metadata();
    validate_dependencies(&std::env::temp_dir())?;
    let workdir = setup_environment(&metadata)?;
    let (records, sum) = execute_script(telemetry, workdir.path())?;
    let summary = collect_metrics(records, sum, started.elapsed());
    upload_traces(telemetry, exporter);
    Ok(summary)
}

/// What the script is. `#[tracing::instrument]` makes a span named after the function, a child
/// of the current span (here the facade's `ScriptRunner`), with the listed fields.
#[tracing::instrument(fields(script.name = DEFAULT_SERVICE_NAME, script.version = env!("CARGO_PKG_VERSION")))]
fn extract_metadata() -> String {
    let name = format!("{DEFAULT_SERVICE_NAME}-{}", std::process::id());
    tracing::info!(script = %name, "metadata extracted");
    name
}

/// The script needs a writable temporary directory; `?` on an error fails the run, and `err`
/// marks the span as failed with the error's message.
#[tracing::instrument(err, skip_all, fields(temp.dir = %temp.display()))]
fn validate_dependencies(temp: &Path) -> std::io::Result<()> {
    let metadata = std::fs::metadata(temp)?;
    if metadata.permissions().readonly() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is read-only", temp.display()),
        ));
    }
    tracing::info!("dependencies satisfied");
    Ok(())
}

/// A work directory with the input file, removed when the returned guard is dropped.
#[tracing::instrument(err, fields(records = RECORDS as i64))]
fn setup_environment(script: &str) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix(script).tempdir()?;
    let mut input = BufWriter::new(std::fs::File::create(dir.path().join("input.csv"))?);
    for id in 0..RECORDS {
        writeln!(input, "{id},{}", id % 97)?;
    }
    input.flush()?;
    tracing::info!("environment ready");
    Ok(dir)
}

/// The script's work, in a facade span: read the records, sum them, write the result. The
/// monitoring events are added on the span itself (`span.add_event`), as the seed's
/// `span.add_event("checkpoint", {...})`.
fn execute_script(telemetry: &UnifiedTelemetry, dir: &Path) -> std::io::Result<(u64, u64)> {
    let span = telemetry.trace("execute_script");
    let input = BufReader::new(std::fs::File::open(dir.join("input.csv"))?);
    let (mut records, mut sum) = (0u64, 0u64);
    for line in input.lines() {
        let line = line?;
        let value = line.rsplit(',').next().and_then(|v| v.parse::<u64>().ok());
        sum += value.unwrap_or(0);
        records += 1;
    }
    std::fs::write(
        dir.join("output.csv"),
        format!("records,sum\n{records},{sum}\n"),
    )?;
    span.set_attribute("records.processed", records as i64);

    let usage = ProcessUsage::now();
    span.add_event("cpu_monitoring", &usage.cpu());
    span.add_event("memory_monitoring", &usage.memory());
    span.add_event("io_monitoring", &usage.io());
    telemetry.log_info_with("script executed", &[("records", records as i64)]);
    Ok((records, sum))
}

/// The run's figures, on the span and in the summary.
#[tracing::instrument(skip_all, fields(records = records as i64, execution_time_seconds))]
fn collect_metrics(records: u64, sum: u64, elapsed: Duration) -> Summary {
    let execution_time_seconds = elapsed.as_secs_f64();
    tracing::Span::current().record("execution_time_seconds", execution_time_seconds);
    Summary {
        records,
        sum,
        execution_time_seconds,
    }
}

/// The seed's last step. Spans go to the exporter when they end and are sent in batches, so
/// this run's spans (this one and the root included) leave when the guard shuts down, after
/// the root span has ended: this span marks the hand-off and names the exporter.
fn upload_traces(telemetry: &UnifiedTelemetry, exporter: &str) {
    let span = telemetry.trace("upload_traces");
    span.set_attribute("exporter", exporter.to_owned());
}

/// A non-empty environment variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Where spans go, when the environment says: the collector (its scheme, host and port only:
/// no credentials, no query), or the exporters `OTEL_TRACES_EXPORTER` names. `None` when it
/// says nothing.
fn traces_destination() -> Option<String> {
    let endpoint =
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".to_owned());
    match (var("OTEL_TRACES_EXPORTER"), endpoint) {
        (Some(exporters), Some(endpoint)) => Some(format!(
            "OTEL_TRACES_EXPORTER={exporters} (otlp: {} over {protocol})",
            without_credentials(&endpoint)
        )),
        (Some(exporters), None) => Some(format!("OTEL_TRACES_EXPORTER={exporters}")),
        (None, Some(endpoint)) => Some(format!(
            "{} over {protocol}",
            without_credentials(&endpoint)
        )),
        (None, None) => None,
    }
}

/// `scheme://host:port` of an endpoint: never print `user:password@` or a query string.
fn without_credentials(endpoint: &str) -> String {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("", endpoint));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if scheme.is_empty() {
        host.to_owned()
    } else {
        format!("{scheme}://{host}")
    }
}

/// The sampler the environment asks for (`OTEL_TRACES_SAMPLER`, with its ratio), and whether
/// it is the default because none is named.
fn sampler_from_env() -> (String, bool) {
    let Some(name) = var("OTEL_TRACES_SAMPLER") else {
        return ("parentbased_always_on".to_owned(), true);
    };
    let name = name.trim().to_ascii_lowercase();
    match var("OTEL_TRACES_SAMPLER_ARG") {
        Some(arg) if name.ends_with("traceidratio") => (format!("{name} {}", arg.trim()), false),
        _ => (name, false),
    }
}

/// The process's resource use, from `/proc/self` (Linux); what cannot be read is left out.
#[derive(Default)]
struct ProcessUsage {
    cpu_time_ms: Option<i64>,
    rss_bytes: Option<i64>,
    peak_rss_bytes: Option<i64>,
    read_bytes: Option<i64>,
    write_bytes: Option<i64>,
}

impl ProcessUsage {
    fn now() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let kib = |key: &str| field(&status, key).map(|kb| kb * 1024);
        ProcessUsage {
            cpu_time_ms: cpu_time_ms(),
            rss_bytes: kib("VmRSS"),
            peak_rss_bytes: kib("VmHWM"),
            read_bytes: field(&io, "rchar"),
            write_bytes: field(&io, "wchar"),
        }
    }

    fn cpu(&self) -> Vec<(&'static str, i64)> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
        let mut attrs = vec![("cpu.logical_count", cpus)];
        attrs.extend(self.cpu_time_ms.map(|ms| ("process.cpu.time_ms", ms)));
        attrs
    }

    fn memory(&self) -> Vec<(&'static str, i64)> {
        let rss = self.rss_bytes.map(|b| ("process.memory.rss_bytes", b));
        let peak = self
            .peak_rss_bytes
            .map(|b| ("process.memory.peak_rss_bytes", b));
        rss.into_iter().chain(peak).collect()
    }

    fn io(&self) -> Vec<(&'static str, i64)> {
        let read = self.read_bytes.map(|b| ("process.io.read_bytes", b));
        let written = self.write_bytes.map(|b| ("process.io.write_bytes", b));
        read.into_iter().chain(written).collect()
    }
}

/// The number after `key:` in a `/proc` file (`VmRSS:   5120 kB` gives 5120).
fn field(text: &str, key: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// User plus system CPU time of the whole process, from `/proc/self/stat` (fields 14 and 15,
/// in clock ticks of 10 ms: Linux reports them in USER_HZ, 100 per second).
fn cpu_time_ms() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name in parentheses, the fields start at the third one.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: i64 = fields.next()?.parse().ok()?;
    let system: i64 = fields.next()?.parse().ok()?;
    Some((user + system) * 10)
}
