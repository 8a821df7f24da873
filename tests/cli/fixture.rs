//! The fixture logs: JSON log files the crate itself wrote, each service in a child process of
//! its own (a process configures telemetry once).
//!
//! The test binary re-executes itself filtered to [`CHILD_TEST`], with [`ROLE`] naming the
//! part to play. Each child configures telemetry for its service, writes its traces through the
//! facade into `<root>/<dir>/app.log`, writes what the tests need to know (trace and span ids)
//! into `<root>/<role>.facts`, and shuts down.
//!
//! - `api` → `payments` → `ledger`: one request across three services. api's SERVER span
//!   "GET /orders/{id}" calls payments (a CLIENT span whose `traceparent` the payments child
//!   continues, while the CLIENT span is open); payments calls ledger the same way and fails
//!   with an error log carrying its cause. Each service also writes unrelated traces, among
//!   them two whose ids share the prefix [`AMBIGUOUS_PREFIX`] (continued from hand-written
//!   `traceparent`s) and one clearly slower than every other ("build report").
//! - `rot0`, `rot1`, `rot2`: one log rotated by hand between the runs: `app.log.2.gz`
//!   (compressed), `app.log.1`, then the live `app.log`; the trace "import batch" goes on from
//!   `app.log.1` into `app.log`.
//! - `follow`: the lines `--follow` is fed, a trace written in two halves.
//! - `many`: 1500 one-span traces and one trace of 3000 log lines written in a tight loop.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};
use unitel::{get_telemetry, SpanKind, Status, TelemetryConfig, TraceContext};

/// The test that plays a role when [`ROLE`] is set, and does nothing otherwise.
pub(crate) const CHILD_TEST: &str = "fixture_child";
/// Which role a child plays.
const ROLE: &str = "UNITEL_CLI_FIXTURE";
/// The fixture's root directory, for a child.
const ROOT: &str = "UNITEL_CLI_ROOT";
/// The `traceparent` a child continues.
const PARENT: &str = "UNITEL_CLI_TRACEPARENT";

/// The prefix two of api's traces share.
pub(crate) const AMBIGUOUS_PREFIX: &str = "abcdef01";
/// Those two traces.
pub(crate) const AMBIGUOUS: [&str; 2] = [
    "abcdef01aaaaaaaaaaaaaaaaaaaaaaaa",
    "abcdef01bbbbbbbbbbbbbbbbbbbbbbbb",
];
/// How many one-span traces `many` writes, and how many log lines its big trace has.
pub(crate) const MANY_TRACES: usize = 1500;
pub(crate) const BIG_TRACE_LOGS: usize = 3000;

/// The logs, written once per run of the test binary.
#[derive(Debug)]
pub(crate) struct Fixture {
    pub(crate) root: PathBuf,
    facts: HashMap<String, String>,
}

impl Fixture {
    /// The directory of one service's (or one scenario's) log.
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A fact a child wrote: `request` (the request's trace id), `client_span`, ...
    pub(crate) fn id(&self, key: &str) -> &str {
        self.facts
            .get(key)
            .unwrap_or_else(|| panic!("no fact {key:?} in {:?}", self.facts))
    }
}

/// The fixture, built by the first test that asks.
pub(crate) fn get() -> &'static Fixture {
    static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();
    match FIXTURE.get_or_init(build) {
        Ok(fixture) => fixture,
        Err(e) => panic!("the fixture logs could not be written:\n{e}"),
    }
}

fn build() -> Result<Fixture, String> {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-fixtures");
    remove_stale(&base);
    let root = base.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;

    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let root = &root;
        let chains = [
            s.spawn(move || spawn(root, "api", None)),
            s.spawn(move || rotation(root)),
            s.spawn(move || spawn(root, "follow", None)),
            s.spawn(move || spawn(root, "many", None)),
        ];
        chains
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a fixture thread panicked".into()))
            })
            .collect()
    });
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if !errors.is_empty() {
        return Err(errors.join("\n\n"));
    }
    let mut facts = HashMap::new();
    for role in [
        "api", "payments", "ledger", "rot0", "rot1", "rot2", "follow", "many",
    ] {
        facts.extend(read_facts(&root, role)?);
    }
    Ok(Fixture { root, facts })
}

/// Fixture directories of earlier runs, left behind (a static is never dropped), once they
/// are an hour old.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The rotation scenario: three runs of one service, the log rotated by hand between them.
fn rotation(root: &Path) -> Result<(), String> {
    let dir = root.join("rotated");
    let live = dir.join("app.log");
    let io = |e: std::io::Error| format!("rotating {}: {e}", dir.display());
    spawn(root, "rot0", None)?;
    // logrotate with `compress`: app.log → app.log.2 → app.log.2.gz
    let plain = std::fs::read(&live).map_err(io)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).map_err(io)?;
    std::fs::write(dir.join("app.log.2.gz"), gz.finish().map_err(io)?).map_err(io)?;
    std::fs::remove_file(&live).map_err(io)?;
    spawn(root, "rot1", None)?;
    std::fs::rename(&live, dir.join("app.log.1")).map_err(io)?;
    let resume = read_facts(root, "rot1")?
        .remove("import_parent")
        .ok_or("rot1 wrote no import_parent")?;
    spawn(root, "rot2", Some(&resume))
}

/// Runs `role` in a child process and waits for it.
fn spawn(root: &Path, role: &str, traceparent: Option<&str>) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("the test binary: {e}"))?;
    let mut command = Command::new(exe);
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(ROOT, root)
        .env_remove(PARENT)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    if let Some(traceparent) = traceparent {
        command.env(PARENT, traceparent);
    }
    let out = command
        .output()
        .map_err(|e| format!("spawn the {role} child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("1 passed") {
        return Err(format!(
            "the {role} child failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn read_facts(root: &Path, role: &str) -> Result<HashMap<String, String>, String> {
    let path = root.join(format!("{role}.facts"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// What a child tells the tests, written when it is done.
#[derive(Default)]
struct Facts(Vec<(String, String)>);

impl Facts {
    fn set(&mut self, key: &str, value: Option<String>) {
        let value = value.unwrap_or_else(|| panic!("{key}: no id (is telemetry on?)"));
        self.0.push((key.to_owned(), value));
    }

    fn write(&self, root: &Path, role: &str) {
        let text: String = self.0.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        std::fs::write(root.join(format!("{role}.facts")), text).expect("write the facts");
    }
}

/// In a child: plays the role [`ROLE`] names. Does nothing in the test run itself.
pub(crate) fn child_main() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let root = PathBuf::from(std::env::var(ROOT).expect("UNITEL_CLI_ROOT"));
    let parent = || {
        let traceparent = std::env::var(PARENT).expect("UNITEL_CLI_TRACEPARENT");
        TraceContext::from_traceparent(&traceparent).expect("a valid traceparent")
    };
    let mut facts = Facts::default();
    let (dir, service) = match role.as_str() {
        "api" | "payments" | "ledger" => (role.as_str(), role.as_str()),
        "rot0" | "rot1" | "rot2" => ("rotated", "worker"),
        "follow" => ("follow-src", "batch"),
        "many" => ("many", "bulk"),
        other => panic!("no role {other:?}"),
    };
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_service_name(service)
            .with_console(false)
            .with_log_file(root.join(dir).join("app.log")),
    )
    .expect("configure telemetry");
    match role.as_str() {
        "api" => api(&root, &mut facts),
        "payments" => payments(&root, &parent(), &mut facts),
        "ledger" => ledger(&parent(), &mut facts),
        "rot0" => {
            let worker = get_telemetry("exporter");
            let span = worker.trace("nightly export");
            facts.set("export", span.trace_id());
            pause();
            worker.log_info_with("exported 3 files", &[("files", 3)]);
        }
        "rot1" => {
            let worker = get_telemetry("importer");
            let span = worker.trace("import batch");
            facts.set("import", span.trace_id());
            facts.set("import_parent", span.context().to_traceparent());
            pause();
            worker.log_info("import started");
            pause();
        }
        "rot2" => {
            let worker = get_telemetry("importer");
            {
                let _span = worker.span("resume import").parent(&parent()).start();
                pause();
                worker.log_info("import resumed");
                pause();
            }
            let span = worker.trace("cleanup");
            facts.set("cleanup", span.trace_id());
            worker.log_info("cleaned up");
        }
        "follow" => follow(&mut facts),
        "many" => many(&mut facts),
        _ => unreachable!(),
    }
    facts.write(&root, &role);
    guard.shutdown().expect("flush the log file");
}

/// A few milliseconds between steps, so that every record has a time of its own.
fn pause() {
    std::thread::sleep(Duration::from_millis(3));
}

/// An error with a cause, as a service's code would have.
#[derive(Debug)]
struct Failed {
    message: &'static str,
    cause: Option<Box<Failed>>,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

fn api(root: &Path, facts: &mut Facts) {
    let orders = get_telemetry("orders");
    let http = get_telemetry("http_client");
    let started = Instant::now();
    {
        let server = orders
            .span("GET /orders/{id}")
            .kind(SpanKind::Server)
            .attr("http.request.method", "GET")
            .attr("http.route", "/orders/{id}")
            .start();
        facts.set("request", server.trace_id());
        facts.set("request_root", server.span_id());
        orders.log_info_with("request received", &[("order.id", 42)]);
        pause();
        {
            let _load = orders.trace("load_order");
            pause();
            orders.log_info_with("order loaded", &[("rows", 1)]);
            pause();
        }
        pause();
        {
            let call = http
                .span("POST payments/charge")
                .kind(SpanKind::Client)
                .attr("http.request.method", "POST")
                .attr("url.full", "http://payments/charge")
                .start();
            facts.set("client_span", call.span_id());
            let traceparent = call.context().to_traceparent().expect("a sampled span");
            if let Err(e) = spawn(root, "payments", Some(&traceparent)) {
                panic!("{e}");
            }
            pause();
            call.set_attribute("http.response.status_code", 502);
            call.set_status(Status::error("payments answered 502"));
        }
        pause();
        orders.log_warning_with("payment failed, answering 502", &[("order.id", 42)]);
        server.set_attribute("http.response.status_code", 502);
        pause();
    }
    let request_took = started.elapsed();
    pause();
    {
        let probe = orders
            .span("GET /health")
            .kind(SpanKind::Server)
            .attr("http.request.method", "GET")
            .attr("http.route", "/health")
            .start();
        facts.set("health", probe.trace_id());
        pause();
        // A message that would clear the screen if printed as it is, pass for a field and
        // reverse what follows it; a key that would read as three fields.
        orders.log_info_with(
            "probe from \x1b[2Jterminal role=admin \u{202e}txt.exe\u{2028}",
            &[("a b=c d", "\u{200b}x")],
        );
        probe.set_status(Status::Ok);
        pause();
    }
    for (i, id) in AMBIGUOUS.iter().enumerate() {
        pause();
        let parent = TraceContext::from_traceparent(&format!("00-{id}-00000000000000a{i}-01"))
            .expect("a valid traceparent");
        let _job = orders
            .span(format!("ambiguous job {i}"))
            .parent(&parent)
            .start();
        orders.log_info("ambiguous job ran");
        pause();
    }
    pause();
    {
        let report = orders.trace("build report");
        facts.set("slow", report.trace_id());
        orders.log_info("report started");
        // Clearly the slowest trace: longer than the request, child processes and all.
        std::thread::sleep(request_took + Duration::from_millis(60));
        orders.log_info("report built");
    }
}

fn payments(root: &Path, parent: &TraceContext, facts: &mut Facts) {
    let payments = get_telemetry("payments");
    let ledger = get_telemetry("ledger_client");
    {
        let settle = payments.trace("settle batch");
        facts.set("settlement", settle.trace_id());
        payments.log_info_with("settled", &[("payments", 3)]);
        pause();
    }
    pause();
    let server = payments
        .span("POST /charge")
        .kind(SpanKind::Server)
        .parent(parent)
        .attr("http.request.method", "POST")
        .attr("http.route", "/charge")
        .start();
    facts.set("payments_server", server.span_id());
    pause();
    payments.log_info_with("charging card", &[("amount", 1999)]);
    pause();
    {
        let call = ledger
            .span("ledger.append")
            .kind(SpanKind::Client)
            .attr("server.address", "ledger")
            .start();
        facts.set("ledger_client", call.span_id());
        let traceparent = call.context().to_traceparent().expect("a sampled span");
        if let Err(e) = spawn(root, "ledger", Some(&traceparent)) {
            panic!("{e}");
        }
        pause();
    }
    pause();
    let err = Failed {
        message: "payment provider rejected the charge",
        cause: Some(Box::new(Failed {
            message: "provider timed out after 3 ms",
            cause: None,
        })),
    };
    payments.log_error_with_cause("charge failed", &err, &[("amount", 1999)]);
    server.record_error(&err);
    pause();
}

fn ledger(parent: &TraceContext, facts: &mut Facts) {
    let ledger = get_telemetry("ledger");
    {
        let compact = ledger.trace("compact ledger");
        facts.set("compaction", compact.trace_id());
        ledger.log_info("compacted");
        pause();
    }
    pause();
    let _server = ledger
        .span("append entry")
        .kind(SpanKind::Server)
        .parent(parent)
        .start();
    pause();
    ledger.log_info_with("entry appended", &[("entry.id", "e-7")]);
    pause();
}

fn follow(facts: &mut Facts) {
    let batch = get_telemetry("batch");
    {
        let other = batch.trace("other job");
        facts.set("follow_other", other.trace_id());
        batch.log_info("other job ran");
        pause();
    }
    pause();
    let job = batch.trace("batch job");
    facts.set("follow", job.trace_id());
    pause();
    {
        let _one = batch.trace("step one");
        pause();
        batch.log_info("first half: step one started");
        pause();
    }
    pause();
    {
        let _two = batch.trace("step two");
        pause();
        batch.log_warning("second half: step two started");
        pause();
    }
    pause();
}

fn many(facts: &mut Facts) {
    let bulk = get_telemetry("bulk");
    for _ in 0..MANY_TRACES {
        let _tick = bulk.trace("tick job");
    }
    let big = bulk.trace("big job");
    facts.set("big", big.trace_id());
    // A tight loop: neighbouring lines may share a microsecond.
    for i in 0..BIG_TRACE_LOGS {
        bulk.log_info_with("tick", &[("i", i as i64)]);
    }
}
