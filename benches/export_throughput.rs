//! Export throughput into a real collector (rotel on loopback), run by hand:
//!
//! ```text
//! cargo bench --bench export_throughput
//! UNITEL_TPUT_SECS=30 UNITEL_TPUT_RATES=25000,50000,75000,100000 cargo bench --bench export_throughput
//! ```
//!
//! Four application threads record spans (3 attributes), each with one correlated log record
//! inside it, at a paced rate (the rate is per signal: 50,000 means 50,000 spans/s and 50,000
//! log records/s together), for `UNITEL_TPUT_SECS` seconds (30 for the recorded figures). Each
//! configuration runs in its own process (this binary re-executed), at each rate of
//! `UNITEL_TPUT_RATES`:
//!
//! - `unitel`: `configure_telemetry` with the OTLP variables only (default batching);
//! - `bare`: the opentelemetry-sdk setup a hand-wired service uses: default
//!   `BatchSpanProcessor` and `BatchLogProcessor` with the same opentelemetry-otlp exporters
//!   (their export futures driven on a tokio runtime, as they need one), spans and log records
//!   made through the OpenTelemetry API;
//! - `ceiling`: what rotel ingests from a trivial sender: the same exporters sending prebuilt
//!   batches of 512 spans and 512 log records, four exports in flight, as fast as they go.
//!
//! For each run it reports what was sent, dropped (unitel's counters; the bare SDK does not
//! expose its own, so there dropped = sent − received) and received (rotel's debug log, one
//! `spans=N` / `logs=N` line per batch it takes in), and checks sent − dropped − received = 0.
//! It also reports the peak memory (`VmHWM`) and where the CPU went, per item received (span
//! or log record), in three parts that add up to the run's cost:
//!
//! - `app`: the application threads recording (their own `/proc/thread-self/schedstat`, read
//!   as each one finishes);
//! - `export`: the export threads (`unitel-*`, `OpenTelemetry*`), read from
//!   `/proc/self/task/*/schedstat` just before shutdown;
//! - `rotel`: the collector process (utime + stime of `/proc/<pid>/stat`), read before the run
//!   and after rotel has taken in everything it is going to;
//!
//! and the machine's idle fraction (`/proc/stat`, idle + iowait) while the application threads
//! were recording (for the ceiling: while it sent): whether a step was CPU-bound or had cores
//! to spare. The highest rate with zero drops is the configuration's throughput.
//!
//! `UNITEL_TPUT_CHILD=pacing UNITEL_TPUT_RATE=100000` on the bench binary runs the pacer alone,
//! recording nothing: its `app_cpu_ns` is the pacer's share of `app`.

#![allow(missing_docs)]

#[path = "../tests/otlp/rotel.rs"]
mod rotel;

mod common;

use rotel::Rotel;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD: &str = "UNITEL_TPUT_CHILD";
const THREADS: usize = 4;

fn main() {
    if let Ok(config) = std::env::var(CHILD) {
        child(&config);
        return;
    }
    // `cargo bench` passes `--bench`; anything else (a filter) picks configurations.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let secs: u64 = env_or("UNITEL_TPUT_SECS", 30);
    let rates: Vec<u64> = std::env::var("UNITEL_TPUT_RATES")
        .unwrap_or_else(|_| "25000,50000,75000,100000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let protocols: Vec<String> = std::env::var("UNITEL_TPUT_PROTOCOLS")
        .unwrap_or_else(|_| "http/protobuf,grpc".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    // Bounded by `timeout` in case this process is killed; stopped when `rotel` drops.
    let rotel = rotel::start("basic", &["traces", "logs"], Duration::from_secs(3600));
    let rotel_pid = agent_pid(&rotel);
    println!(
        "export throughput: {THREADS} threads, {secs} s per run, rotel {} / {}; cores: {}",
        rotel.http,
        rotel.grpc,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<14} {:<8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>5} {:>7}",
        "protocol",
        "config",
        "rate/s",
        "spans",
        "logs",
        "drop_sp",
        "drop_lg",
        "recv_sp",
        "recv_lg",
        "spans/s",
        "logs/s",
        "app_ns",
        "exp_ns",
        "rot_ns",
        "sum_ns",
        "idle%",
        "hwm_MB"
    );
    println!(
        "(CPU in ns per item received, span or log record; idle: the machine's, while recording)"
    );
    let want = |c: &str| filter.is_empty() || filter.iter().any(|f| c.contains(f.as_str()));
    for protocol in &protocols {
        let endpoint = match protocol.as_str() {
            "grpc" => format!("http://{}", rotel.grpc),
            _ => format!("http://{}", rotel.http),
        };
        let mut best = Vec::new();
        for config in ["unitel", "bare"] {
            if !want(config) {
                continue;
            }
            let mut highest = None;
            for &rate in &rates {
                let r = run(&rotel, rotel_pid, config, protocol, &endpoint, rate, secs);
                if r.zero_drops() {
                    highest = Some(r.clone());
                }
            }
            best.push((config, highest));
        }
        if want("ceiling") {
            let r = run(&rotel, rotel_pid, "ceiling", protocol, &endpoint, 0, secs);
            best.push(("ceiling", Some(r)));
        }
        println!("-- {protocol}: highest rate with zero drops (received per second)");
        for (config, r) in best {
            match r {
                Some(r) => {
                    let [app, export, rotel, sum] = r.cpu_parts();
                    println!(
                        "   {config:<8} {:>9.0} spans/s {:>9.0} logs/s  cpu ns/item: app {app:>5.0} + export {export:>5.0} + rotel {rotel:>5.0} = {sum:>5.0}  idle {:>4.1} %  VmHWM {:>6.1} MB",
                        r.received_spans as f64 / r.secs,
                        r.received_logs as f64 / r.secs,
                        r.idle_percent(),
                        r.hwm_kb as f64 / 1024.0
                    );
                }
                None => println!("   {config:<8} no rate without drops"),
            }
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run: what the child said and what rotel received.
#[derive(Debug, Clone, Default)]
struct Outcome {
    secs: f64,
    sent_spans: u64,
    sent_logs: u64,
    dropped_spans: u64,
    dropped_logs: u64,
    received_spans: u64,
    received_logs: u64,
    export_cpu_ns: u64,
    app_cpu_ns: u64,
    rotel_cpu_ns: u64,
    /// The machine's idle CPU time while recording, and all its CPUs' time, in `/proc/stat` ticks.
    idle_ticks: u64,
    total_ticks: u64,
    hwm_kb: u64,
    /// The bare SDK does not expose its drop counts: its drops are what did not arrive.
    counted: bool,
}

impl Outcome {
    fn zero_drops(&self) -> bool {
        self.dropped_spans == 0
            && self.dropped_logs == 0
            && self.received_spans == self.sent_spans
            && self.received_logs == self.sent_logs
    }

    /// `cpu_ns` per item received.
    fn per_item(&self, cpu_ns: u64) -> f64 {
        cpu_ns as f64 / (self.received_spans + self.received_logs).max(1) as f64
    }

    /// CPU per item received: application, export, rotel, and their sum.
    fn cpu_parts(&self) -> [f64; 4] {
        let parts = [self.app_cpu_ns, self.export_cpu_ns, self.rotel_cpu_ns];
        let [app, export, rotel] = parts.map(|ns| self.per_item(ns));
        [app, export, rotel, self.per_item(parts.iter().sum())]
    }

    fn idle_percent(&self) -> f64 {
        100.0 * self.idle_ticks as f64 / self.total_ticks.max(1) as f64
    }
}

fn run(
    rotel: &Rotel,
    rotel_pid: Option<u32>,
    config: &str,
    protocol: &str,
    endpoint: &str,
    rate: u64,
    secs: u64,
) -> Outcome {
    let before = received(rotel);
    let rotel_before = rotel_pid.and_then(process_cpu_ns);
    let out = Command::new(std::env::current_exe().expect("bench executable"))
        .env(CHILD, config)
        .env("UNITEL_TPUT_RATE", rate.to_string())
        .env("UNITEL_TPUT_SECS", secs.to_string())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_SERVICE_NAME", format!("tput-{config}"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut o = Outcome {
        secs: secs as f64,
        counted: config == "unitel",
        ..Outcome::default()
    };
    for field in text.split_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match k {
            "sent_spans" => o.sent_spans = v,
            "sent_logs" => o.sent_logs = v,
            "dropped_spans" => o.dropped_spans = v,
            "dropped_logs" => o.dropped_logs = v,
            "export_cpu_ns" => o.export_cpu_ns = v,
            "app_cpu_ns" => o.app_cpu_ns = v,
            "idle_ticks" => o.idle_ticks = v,
            "total_ticks" => o.total_ticks = v,
            "hwm_kb" => o.hwm_kb = v,
            "elapsed_ms" => o.secs = v as f64 / 1e3,
            _ => {}
        }
    }
    if !out.status.success() {
        println!("   {config} at {rate}/s failed: {}", out.status);
    }
    // Wait until rotel has taken in everything it is going to.
    let mut last = received(rotel);
    let mut stable_since = Instant::now();
    let start = Instant::now();
    while stable_since.elapsed() < Duration::from_millis(1500)
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
        let now = received(rotel);
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    if let (Some(a), Some(b)) = (rotel_before, rotel_pid.and_then(process_cpu_ns)) {
        o.rotel_cpu_ns = b.saturating_sub(a);
    }
    o.received_spans = last.0 - before.0;
    o.received_logs = last.1 - before.1;
    if config == "ceiling" {
        o.sent_spans = o.received_spans;
        o.sent_logs = o.received_logs;
    }
    if !o.counted && config != "ceiling" {
        o.dropped_spans = o.sent_spans.saturating_sub(o.received_spans);
        o.dropped_logs = o.sent_logs.saturating_sub(o.received_logs);
    }
    let unaccounted_spans = o.sent_spans as i64 - o.dropped_spans as i64 - o.received_spans as i64;
    let unaccounted_logs = o.sent_logs as i64 - o.dropped_logs as i64 - o.received_logs as i64;
    let cpu = o.cpu_parts();
    println!(
        "{:<14} {:<8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8.0} {:>8.0} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>5.1} {:>7.1}{}",
        protocol,
        config,
        if rate == 0 {
            "max".to_owned()
        } else {
            rate.to_string()
        },
        o.sent_spans,
        o.sent_logs,
        o.dropped_spans,
        o.dropped_logs,
        o.received_spans,
        o.received_logs,
        o.received_spans as f64 / o.secs,
        o.received_logs as f64 / o.secs,
        cpu[0],
        cpu[1],
        cpu[2],
        cpu[3],
        o.idle_percent(),
        o.hwm_kb as f64 / 1024.0,
        if unaccounted_spans != 0 || unaccounted_logs != 0 {
            format!("  UNACCOUNTED: spans {unaccounted_spans}, logs {unaccounted_logs}")
        } else {
            String::new()
        }
    );
    o
}

// ----- the collector -----

/// Spans and log records rotel received so far: the sum of the `spans=N` and `logs=N` of its
/// `Received traces.` / `Received logs.` lines.
fn received(rotel: &Rotel) -> (u64, u64) {
    let (mut spans, mut logs) = (0, 0);
    for line in rotel.output().lines() {
        let count = |key: &str| {
            line.rfind(key).and_then(|i| {
                line[i + key.len()..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            })
        };
        if line.contains("Received traces") {
            spans += count(" spans=").unwrap_or(0);
        } else if line.contains("Received logs") {
            logs += count(" logs=").unwrap_or(0);
        }
    }
    (spans, logs)
}

/// The pid of the rotel-agent listening on `rotel.http` (it runs under `timeout`, whose
/// command line names it too): the process whose program is rotel-agent.
fn agent_pid(rotel: &Rotel) -> Option<u32> {
    let pid = std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let entry = entry.ok()?;
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let mut args = cmdline.split(|&b| b == 0).map(String::from_utf8_lossy);
        let agent = args.next()?.ends_with("rotel-agent");
        (agent && args.any(|a| a == rotel.http.as_str())).then_some(pid)
    });
    if pid.is_none() {
        println!("rotel-agent's pid not found: no rotel CPU figures");
    }
    pid
}

/// CPU time (utime + stime) process `pid` has used so far, in ns.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may hold spaces: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 1_000_000_000 / clock_ticks_per_sec())
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on every Linux this runs on).
fn clock_ticks_per_sec() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// The machine's idle time (idle + iowait) so far, in ticks, and its number of CPUs
/// (`/proc/stat`). The busy columns are not used: they are sampled at the timer tick, and in
/// this VM a load that sleeps and wakes thousands of times a second is mostly missed by them
/// (their sum fell a third short of the wall-clock time), while idle time is measured.
fn machine_idle_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut lines = stat.lines();
    let idle = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(4)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    let cpus = lines
        .take_while(|l| l.starts_with("cpu"))
        .filter(|l| l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    (idle, cpus as u64)
}

// ----- the child: one configuration at one rate -----

fn child(config: &str) {
    let rate: u64 = env_or("UNITEL_TPUT_RATE", 50_000);
    let secs: u64 = env_or("UNITEL_TPUT_SECS", 30);
    let duration = Duration::from_secs(secs);
    let (sent_spans, sent_logs, cpu, dropped, window) = match config {
        "unitel" => unitel_child(rate, duration),
        "bare" => bare_child(rate, duration),
        "ceiling" => ceiling_child(duration),
        // By hand only: the pacing loop alone, recording nothing (its CPU is in `app`).
        "pacing" => {
            let (n, window) = paced(rate, duration, |i| {
                std::hint::black_box(i);
            });
            (n, n, 0, (0, 0), window)
        }
        other => panic!("unknown configuration {other}"),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "sent_spans={sent_spans} sent_logs={sent_logs} dropped_spans={} dropped_logs={} export_cpu_ns={cpu} app_cpu_ns={} idle_ticks={} total_ticks={} hwm_kb={} elapsed_ms={}",
        dropped.0,
        dropped.1,
        window.app_cpu_ns,
        window.idle_ticks,
        window.total_ticks,
        hwm_kb(),
        window.elapsed.as_millis()
    );
}

/// The recording window: how long it took, the application threads' CPU, and the machine's
/// idle CPU ticks over it and all its CPUs' ticks (CPUs × wall-clock time).
#[derive(Debug)]
struct Window {
    elapsed: Duration,
    app_cpu_ns: u64,
    idle_ticks: u64,
    total_ticks: u64,
}

impl Window {
    /// Starts the window now: call [`WindowStart::end`] when it ends.
    fn start() -> WindowStart {
        clock_ticks_per_sec();
        WindowStart(Instant::now(), machine_idle_ticks().0)
    }
}

/// When a [`Window`] began, and the machine's idle CPU ticks then.
struct WindowStart(Instant, u64);

impl WindowStart {
    /// Ends the window, whose application threads used `app_cpu_ns`.
    fn end(self, app_cpu_ns: u64) -> Window {
        let elapsed = self.0.elapsed();
        let (idle, cpus) = machine_idle_ticks();
        Window {
            elapsed,
            app_cpu_ns,
            idle_ticks: idle.saturating_sub(self.1),
            total_ticks: (elapsed.as_secs_f64() * (cpus * clock_ticks_per_sec()) as f64) as u64,
        }
    }
}

/// CPU time this thread has used so far, in ns (Linux).
fn this_thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `record` (one span with its log record) from [`THREADS`] threads at `rate` per second
/// in all for `duration`; returns how many were recorded and the window they took.
fn paced(rate: u64, duration: Duration, record: impl Fn(u64) + Sync) -> (u64, Window) {
    let per_thread = rate as f64 / THREADS as f64;
    let start = Instant::now();
    let total = AtomicU64::new(0);
    let cpu = AtomicU64::new(0);
    let window = Window::start();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let record = &record;
            let (total, cpu) = (&total, &cpu);
            s.spawn(move || {
                let mut n: u64 = 0;
                loop {
                    let elapsed = start.elapsed();
                    if elapsed >= duration {
                        break;
                    }
                    let due = (elapsed.as_secs_f64() * per_thread) as u64;
                    if n >= due {
                        // Ahead of schedule: wait a millisecond, then record what fell due
                        // (at 100,000/s, 25 items a thread). Waiting for each next item
                        // instead woke every thread every ~90 µs, which cost 3.9 µs of CPU
                        // per item on the cores the export and rotel need.
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    while n < due {
                        record(t as u64 * 1_000_000_000 + n);
                        n += 1;
                    }
                }
                total.fetch_add(n, Ordering::Relaxed);
                cpu.fetch_add(this_thread_cpu_ns(), Ordering::Relaxed);
            });
        }
    });
    let window = window.end(cpu.into_inner());
    (total.into_inner(), window)
}

/// Spans and log records sent, export threads' CPU (ns), dropped (spans, logs), the window.
type ChildResult = (u64, u64, u64, (u64, u64), Window);

fn unitel_child(rate: u64, duration: Duration) -> ChildResult {
    let guard =
        unitel::configure_telemetry(unitel::TelemetryConfig::from_env().with_console(false))
            .expect("configure");
    let telemetry = unitel::get_telemetry("tput");
    let (n, window) = paced(rate, duration, |i| {
        let _span = telemetry.trace_with(
            "work",
            &[
                KeyValue::new("item.id", i as i64),
                KeyValue::new("item.kind", "order"),
                KeyValue::new("item.ok", true),
            ],
        );
        telemetry.log_info("item handled");
    });
    let cpu = export_threads_cpu_ns();
    let _ = guard.shutdown();
    // The OTLP output drops for these three reasons only (`Output::reasons` in
    // src/diagnostics.rs; `DropReason` has no public list), and it is the only output here.
    let dropped = |signal| {
        use unitel::DropReason::{ExportFailed, QueueFull, ShutdownTimeout};
        [QueueFull, ExportFailed, ShutdownTimeout]
            .into_iter()
            .map(|r| unitel::dropped_at(unitel::Output::Otlp, signal, r))
            .sum::<u64>()
    };
    (
        n,
        n,
        cpu,
        (
            dropped(unitel::Signal::Spans),
            dropped(unitel::Signal::Logs),
        ),
        window,
    )
}

/// A tokio runtime for the exporters' I/O (tonic and hyper need one).
fn io_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("OpenTelemetry.io")
        .enable_all()
        .build()
        .expect("runtime")
}

fn protocol_is_grpc() -> bool {
    std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() == Ok("grpc")
}

fn endpoint(signal: &str) -> String {
    let base = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").expect("endpoint");
    if protocol_is_grpc() {
        base
    } else {
        format!("{base}/v1/{signal}")
    }
}

/// The opentelemetry-otlp exporters, as a hand-wired service builds them.
fn exporters(
    rt: &tokio::runtime::Runtime,
) -> (
    Blocking<opentelemetry_otlp::SpanExporter>,
    Blocking<opentelemetry_otlp::LogExporter>,
) {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let _enter = rt.enter();
    let handle = rt.handle().clone();
    let client = || {
        opentelemetry_http::hyper::HyperClient::with_default_connector(
            Duration::from_secs(10),
            None,
        )
    };
    let (spans, logs) = if protocol_is_grpc() {
        (
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint("traces"))
                .build(),
            opentelemetry_otlp::LogExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint("logs"))
                .build(),
        )
    } else {
        (
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint("traces"))
                .with_http_client(client())
                .build(),
            opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_endpoint(endpoint("logs"))
                .with_http_client(client())
                .build(),
        )
    };
    (
        Blocking(spans.expect("span exporter"), handle.clone()),
        Blocking(logs.expect("log exporter"), handle),
    )
}

/// Drives an exporter's futures on the I/O runtime from the SDK's batch threads (which poll
/// them with a plain executor).
#[derive(Debug)]
struct Blocking<E>(E, tokio::runtime::Handle);

impl opentelemetry_sdk::trace::SpanExporter for Blocking<opentelemetry_otlp::SpanExporter> {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.1.block_on(self.0.export(batch))
    }
    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource)
    }
}

impl opentelemetry_sdk::logs::LogExporter for Blocking<opentelemetry_otlp::LogExporter> {
    async fn export(
        &self,
        batch: opentelemetry_sdk::logs::LogBatch<'_>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.1.block_on(self.0.export(batch))
    }
    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource)
    }
}

fn bare_child(rate: u64, duration: Duration) -> ChildResult {
    let rt = io_runtime();
    let (spans, logs) = exporters(&rt);
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("tput-bare")
        .build();
    let tracer_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_processor(opentelemetry_sdk::trace::BatchSpanProcessor::builder(spans).build())
        .build();
    let logger_provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(opentelemetry_sdk::logs::BatchLogProcessor::builder(logs).build())
        .build();
    let tracer = tracer_provider.tracer("tput");
    let logger = logger_provider.logger("tput");
    let (n, window) = paced(rate, duration, |i| {
        let mut span = tracer.start("work");
        span.set_attribute(KeyValue::new("item.id", i as i64));
        span.set_attribute(KeyValue::new("item.kind", "order"));
        span.set_attribute(KeyValue::new("item.ok", true));
        let cx = opentelemetry::Context::current_with_span(span);
        let _attached = cx.clone().attach();
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_severity_text("INFO");
        record.set_body("item handled".into());
        logger.emit(record);
        cx.span().end();
    });
    let cpu = export_threads_cpu_ns();
    let _ = tracer_provider.shutdown();
    let _ = logger_provider.shutdown();
    (n, n, cpu, (0, 0), window)
}

fn ceiling_child(duration: Duration) -> ChildResult {
    use opentelemetry_sdk::logs::LogExporter as _;
    use opentelemetry_sdk::trace::SpanExporter as _;
    let rt = io_runtime();
    let (spans, logs) = exporters(&rt);
    let (mut spans, mut logs) = (spans.0, logs.0);
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("tput-ceiling")
        .build();
    spans.set_resource(&resource);
    logs.set_resource(&resource);
    // One span and one log record, made by the SDK, copied into batches of 512.
    let captured = Arc::new(std::sync::Mutex::new(None));
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(Capture(captured.clone()))
        .build();
    let mut span = provider.tracer("tput").start("work");
    span.set_attribute(KeyValue::new("item.id", 1_i64));
    span.set_attribute(KeyValue::new("item.kind", "order"));
    span.set_attribute(KeyValue::new("item.ok", true));
    span.end();
    let span = captured.lock().expect("capture").take().expect("span");
    let batch: Vec<_> = (0..512).map(|_| span.clone()).collect();
    let logger_provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder().build();
    let mut record = logger_provider.logger("tput").create_log_record();
    record.set_severity_number(Severity::Info);
    record.set_body("item handled".into());
    record.set_timestamp(std::time::SystemTime::now());
    record.set_observed_timestamp(std::time::SystemTime::now());
    let scope = opentelemetry::InstrumentationScope::builder("tput").build();
    let spans = Arc::new(spans);
    let logs = Arc::new(logs);
    let stop = Arc::new(AtomicBool::new(false));
    let window = Window::start();
    let (sent_spans, sent_logs) = rt.block_on(async {
        let mut tasks = Vec::new();
        for k in 0..4 {
            let (spans, logs, stop, batch, record, scope) = (
                spans.clone(),
                logs.clone(),
                stop.clone(),
                batch.clone(),
                record.clone(),
                scope.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let records: Vec<_> = (0..512).map(|_| (&record, &scope)).collect();
                let (mut s, mut l) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    if k % 2 == 0 {
                        if spans.export(batch.clone()).await.is_ok() {
                            s += 512;
                        }
                    } else if logs
                        .export(opentelemetry_sdk::logs::LogBatch::new(&records))
                        .await
                        .is_ok()
                    {
                        l += 512;
                    }
                }
                (s, l)
            }));
        }
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let (mut s, mut l) = (0, 0);
        for t in tasks {
            let (a, b) = t.await.expect("sender");
            s += a;
            l += b;
        }
        (s, l)
    });
    // No application threads: the senders are the export threads.
    let window = window.end(0);
    let cpu = export_threads_cpu_ns();
    (sent_spans, sent_logs, cpu, (0, 0), window)
}

#[derive(Debug)]
struct Capture(Arc<std::sync::Mutex<Option<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Capture {
    async fn export(
        &self,
        mut batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        *self.0.lock().expect("capture") = batch.pop();
        Ok(())
    }
}

/// CPU time of the export threads alive now (`unitel-*`, `OpenTelemetry*`), in ns.
fn export_threads_cpu_ns() -> u64 {
    common::threads_cpu_ns(&["unitel-", "OpenTelemetry"]).unwrap_or(0)
}

/// Peak resident memory of this process, in kB.
fn hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
