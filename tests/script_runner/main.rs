//! End to end: examples/script_runner.rs (seed 004), configured only by `OTEL_*` variables,
//! run as a child process against the real collector (rotel).
//!
//! - Over http/protobuf and over grpc, the trace id the script prints arrives as seed 004's
//!   tree: the `ScriptRunner` root span, its six children (the `#[tracing::instrument]` ones
//!   from the `tracing` scope, the facade's from the script's) each with the root as parent,
//!   `execute_script`'s `cpu_monitoring`, `memory_monitoring` and `io_monitoring` events with
//!   their figures, `OTEL_RESOURCE_ATTRIBUTES` on the resource, and the log lines of the run
//!   carrying the ids of the spans they were written in.
//! - The samplers decide what arrives: `always_off`, `traceidratio` 0, `parentbased_always_off`
//!   for a new root and an unsampled `TRACEPARENT` send no span, and say "not sampled", while
//!   `traceidratio` 1 and `parentbased_always_off` under a sampled `TRACEPARENT` arrive (the
//!   latter in the caller's trace, under the caller's span). Absence is asserted only after
//!   the later positive runs arrived.
//! - With no `OTEL_*` variable at all it exits 0, prints a trace id, and prints the spans on
//!   standard output (the console exporter) as the same tree, under the default service name;
//!   disabled, it still runs; an invalid sampler (the seed's `tailbased`) is refused, named.

#[path = "../otlp/rotel.rs"]
mod rotel;
#[path = "../support/mod.rs"]
mod support;

use rotel::{attr, Received, Rotel, SpanRec};
use std::process::{Command, Output};
use std::time::Duration;

/// The children of `ScriptRunner` in seed 004's architecture, and whether the example makes
/// each with `#[tracing::instrument]` (scope `tracing`) or the facade (scope `script_runner`).
const CHILDREN: [(&str, bool); 6] = [
    ("extract_metadata", true),
    ("validate_dependencies", true),
    ("setup_environment", true),
    ("execute_script", false),
    ("collect_metrics", true),
    ("upload_traces", false),
];

const EVENTS: [&str; 3] = ["cpu_monitoring", "memory_monitoring", "io_monitoring"];

/// Runs the example with only `env` set among the telemetry variables (every `OTEL_*`,
/// `TRACEPARENT`, `TRACESTATE`, `BAGGAGE` and `RUST_LOG` of this process removed), killed if it
/// takes more than 30 s.
fn run_script(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(support::example_binary_named("script_runner"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("OTEL_")
            || ["TRACEPARENT", "TRACESTATE", "BAGGAGE", "RUST_LOG"].contains(&name.as_ref())
        {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.envs(env.iter().copied());
    support::output_within(
        &mut cmd,
        "examples/script_runner.rs",
        Duration::from_secs(30),
    )
}

/// What the script's `trace id:` line says: the id, and whether the trace was sampled.
#[derive(Debug)]
struct Printed {
    trace_id: String,
    sampled: bool,
    line: String,
}

/// Runs the script, asserts it succeeded, and reads its `trace id:` line.
fn run_ok(env: &[(&str, &str)]) -> (Printed, String) {
    let out = run_script(env);
    let stdout = support::assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "the script panicked:\n{stderr}"
    );
    assert!(
        stdout.contains("✅ script completed: 20000 records"),
        "{stdout}"
    );
    (printed(&stdout), stdout)
}

fn printed(stdout: &str) -> Printed {
    let line = stdout
        .lines()
        .last()
        .filter(|l| l.starts_with("trace id: "))
        .unwrap_or_else(|| panic!("the last line is not the trace id:\n{stdout}"));
    let trace_id = line["trace id: ".len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a trace id: {line}"
    );
    let sampled = line.ends_with("(sampled)");
    assert!(
        sampled || line.contains("(not sampled by "),
        "says neither sampled nor not sampled: {line}"
    );
    Printed {
        trace_id,
        sampled,
        line: line.to_owned(),
    }
}

/// A 32-hex trace id no other run uses.
fn fresh_trace_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 96))
}

/// Waits until rotel holds the seven spans of `trace_id` from `service`, and returns them.
fn arrived(rotel: &Rotel, service: &str, trace_id: &str) -> (Vec<SpanRec>, Received) {
    rotel.wait_for(Duration::from_secs(20), |received| {
        let spans: Vec<SpanRec> = received
            .spans_of(service)
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        // The root and every child.
        (spans.len() > CHILDREN.len()).then(|| {
            let everything = Received {
                spans: received.spans.clone(),
                metrics: Vec::new(),
                logs: received.logs.clone(),
            };
            (spans, everything)
        })
    })
}

fn named<'a>(spans: &'a [SpanRec], name: &str) -> &'a SpanRec {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "one span {name:?} wanted in {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// Seed 004's tree: the root (whose parent is `parent`, empty for a new trace), its children
/// with the root as parent and from the scope that made them, the events with their figures,
/// and nothing else in the trace. Returns the root.
fn assert_seed_tree<'a>(spans: &'a [SpanRec], parent: &str) -> &'a SpanRec {
    assert_eq!(spans.len(), 1 + CHILDREN.len(), "{spans:#?}");
    let root = named(spans, "ScriptRunner");
    assert_eq!(root.parent_id, parent, "the root's parent: {root:#?}");
    assert_eq!(root.scope, "script_runner");
    assert_eq!(attr(&root.attrs, "script.success"), Some("Bool(true)"));
    assert!(
        attr(&root.attrs, "execution_time_seconds").is_some_and(|v| v.starts_with("Double(")),
        "{root:#?}"
    );
    for (name, instrumented) in CHILDREN {
        let span = named(spans, name);
        assert_eq!(
            span.parent_id, root.span_id,
            "{name} is a child of ScriptRunner"
        );
        let scope = if instrumented {
            "tracing"
        } else {
            "script_runner"
        };
        assert_eq!(span.scope, scope, "{name} made by {scope}: {span:#?}");
        assert_eq!(span.kind, "SPAN_KIND_INTERNAL");
        assert_eq!(span.status_code, "STATUS_CODE_UNSET", "{span:#?}");
        if instrumented {
            assert_eq!(attr(&span.attrs, "target"), Some("Str(script_runner)"));
        }
    }

    // The #[tracing::instrument] fields.
    let metadata = named(spans, "extract_metadata");
    assert_eq!(
        attr(&metadata.attrs, "script.name"),
        Some("Str(script_runner)")
    );
    assert_eq!(
        attr(&metadata.attrs, "script.version"),
        Some(format!("Str({})", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(
        attr(&named(spans, "setup_environment").attrs, "records"),
        Some("Int(20000)")
    );
    let collected = named(spans, "collect_metrics");
    assert_eq!(attr(&collected.attrs, "records"), Some("Int(20000)"));
    assert!(
        attr(&collected.attrs, "execution_time_seconds").is_some_and(|v| v.starts_with("Double(")),
        "a field recorded after the span started: {collected:#?}"
    );

    // The monitoring events, on execute_script, in the seed's order, with figures.
    let executed = named(spans, "execute_script");
    assert_eq!(
        attr(&executed.attrs, "records.processed"),
        Some("Int(20000)")
    );
    let names: Vec<&str> = executed.events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, EVENTS, "{executed:#?}");
    let event = |name: &str| &executed.events.iter().find(|(n, _)| n == name).unwrap().1;
    let positive = |attrs: &rotel::Attrs, key: &str| {
        let value = attr(attrs, key).unwrap_or_else(|| panic!("no {key} in {attrs:?}"));
        let n: i64 = value
            .trim_start_matches("Int(")
            .trim_end_matches(')')
            .parse()
            .unwrap_or_else(|_| panic!("{key}: not an Int: {value}"));
        assert!(n > 0, "{key} = {n}");
    };
    positive(event("cpu_monitoring"), "cpu.logical_count");
    if cfg!(target_os = "linux") {
        // /proc/self: the script read and wrote its 20,000-record files.
        assert!(attr(event("cpu_monitoring"), "process.cpu.time_ms").is_some());
        positive(event("memory_monitoring"), "process.memory.rss_bytes");
        positive(event("memory_monitoring"), "process.memory.peak_rss_bytes");
        positive(event("io_monitoring"), "process.io.read_bytes");
        positive(event("io_monitoring"), "process.io.write_bytes");
    }
    root
}

/// A full run into rotel over `protocol`: the printed trace arrives as seed 004's tree, with
/// the resource attributes, and with its log lines carrying the ids of their spans.
fn delivers_the_seed_tree(protocol: &str) {
    let rotel = Rotel::get();
    let (endpoint, protocol_var) = match protocol {
        "grpc" => (&rotel.grpc, "grpc"),
        _ => (&rotel.http, "http/protobuf"),
    };
    let endpoint = format!("http://{endpoint}");
    let service = support::unique(&format!("script-runner-{protocol}"));
    let (printed, stdout) = run_ok(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol_var),
        ("OTEL_SERVICE_NAME", &service),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "pipeline.name=daily_etl,team=data-engineering,deployment.environment.name=ci",
        ),
    ]);
    assert!(printed.sampled, "{}", printed.line);
    assert!(
        stdout.contains(&format!(
            "exporting spans to {endpoint} over {protocol_var}"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("sampler: parentbased_always_on (the default)"));
    // The line to continue the trace names the root span.
    let traceparent = stdout
        .lines()
        .find_map(|l| l.strip_prefix("TRACEPARENT="))
        .unwrap_or_else(|| panic!("no TRACEPARENT line:\n{stdout}"));

    let (spans, received) = arrived(rotel, &service, &printed.trace_id);
    let root = assert_seed_tree(&spans, "");
    assert_eq!(
        attr(&named(&spans, "upload_traces").attrs, "exporter"),
        Some("Str(otlp)")
    );
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", printed.trace_id, root.span_id)
    );
    for span in &spans {
        for (key, value) in [
            ("service.name", service.as_str()),
            ("pipeline.name", "daily_etl"),
            ("team", "data-engineering"),
            ("deployment.environment.name", "ci"),
        ] {
            assert_eq!(
                attr(&span.resource, key),
                Some(format!("Str({value})").as_str()),
                "resource of {}: {:?}",
                span.name,
                span.resource
            );
        }
    }

    // Logs: each line written inside a step carries that step's span.
    let logs = received.logs_of(&service);
    for (body, span) in [
        ("metadata extracted", "extract_metadata"),
        ("dependencies satisfied", "validate_dependencies"),
        ("environment ready", "setup_environment"),
        ("script executed", "execute_script"),
    ] {
        let log = logs
            .iter()
            .find(|l| l.body == format!("Str({body})"))
            .unwrap_or_else(|| panic!("no log {body:?} in {logs:#?}"));
        assert_eq!(log.trace_id, printed.trace_id, "{log:#?}");
        assert_eq!(log.span_id, named(&spans, span).span_id, "{log:#?}");
    }
}

#[test]
fn http_run_arrives_as_the_seed_tree() {
    delivers_the_seed_tree("http");
}

#[test]
fn grpc_run_arrives_as_the_seed_tree() {
    delivers_the_seed_tree("grpc");
}

#[test]
fn samplers_decide_which_runs_arrive() {
    let rotel = Rotel::get();
    let endpoint = format!("http://{}", rotel.http);
    let run = |service: &str, vars: &[(&str, &str)]| {
        let mut env = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", service),
        ];
        env.extend_from_slice(vars);
        run_ok(&env)
    };

    // The runs that must send nothing; each says so, and names the sampler.
    let unsampled_parent = fresh_trace_id();
    let dropped_traceparent = format!("00-{unsampled_parent}-00f067aa0ba902b7-00");
    let negatives = [
        (
            "always-off",
            vec![("OTEL_TRACES_SAMPLER", "always_off")],
            "not sampled by always_off:",
        ),
        (
            "ratio-0",
            vec![
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0"),
            ],
            "not sampled by traceidratio 0:",
        ),
        (
            "parentbased-off-root",
            vec![("OTEL_TRACES_SAMPLER", "parentbased_always_off")],
            "not sampled by parentbased_always_off:",
        ),
        (
            "unsampled-parent",
            vec![("TRACEPARENT", dropped_traceparent.as_str())],
            "not sampled by parentbased_always_on, following TRACEPARENT:",
        ),
    ];
    let mut dropped = Vec::new();
    for (name, vars, says) in &negatives {
        let service = support::unique(&format!("script-runner-{name}"));
        let (printed, _) = run(&service, vars);
        assert!(!printed.sampled, "{name}: {}", printed.line);
        assert!(printed.line.contains(says), "{name}: {}", printed.line);
        dropped.push((service, printed.trace_id));
    }
    // The unsampled TRACEPARENT's trace is continued, just not recorded.
    assert_eq!(dropped[3].1, unsampled_parent);

    // Positive runs, after the negative ones: ratio 1 records a new root, and
    // parentbased_always_off follows a sampled TRACEPARENT into the caller's trace.
    let ratio_service = support::unique("script-runner-ratio-1");
    let (ratio, _) = run(
        &ratio_service,
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1"),
        ],
    );
    assert!(ratio.sampled, "{}", ratio.line);
    let caller_trace = fresh_trace_id();
    let caller_span = "00f067aa0ba902b7";
    let sampled_traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let child_service = support::unique("script-runner-parentbased-off-child");
    let (child, child_stdout) = run(
        &child_service,
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_always_off"),
            ("TRACEPARENT", &sampled_traceparent),
            ("TRACESTATE", "congo=t61rcWkgMzE"),
            ("BAGGAGE", "workflow.id=nightly-42"),
        ],
    );
    assert!(child.sampled, "{}", child.line);
    assert_eq!(child.trace_id, caller_trace, "the caller's trace continued");

    let (spans, _) = arrived(rotel, &ratio_service, &ratio.trace_id);
    assert_seed_tree(&spans, "");
    let (spans, received) = arrived(rotel, &child_service, &caller_trace);
    let root = assert_seed_tree(&spans, caller_span);
    assert_eq!(root.trace_state, "congo=t61rcWkgMzE", "{root:#?}");
    // The lines that hand the trace on to a next script: under this run's root span, with the
    // tracestate and baggage it was given, just before the trace id line.
    let lines: Vec<&str> = child_stdout.lines().collect();
    assert_eq!(
        lines[lines.len().saturating_sub(4)..lines.len() - 1],
        [
            format!("TRACEPARENT=00-{caller_trace}-{}-01", root.span_id).as_str(),
            "TRACESTATE=congo=t61rcWkgMzE",
            "BAGGAGE=workflow.id=nightly-42",
        ],
        "{child_stdout}"
    );

    // Every run flushed before it exited and the later ones have arrived: the unsampled ones
    // sent nothing, under their service or their trace id.
    for (service, trace_id) in &dropped {
        let sent: Vec<_> = received
            .spans
            .iter()
            .filter(|s| &s.service == service || &s.trace_id == trace_id)
            .map(|s| &s.name)
            .collect();
        assert!(sent.is_empty(), "{service} sent spans {sent:?}");
    }
}

#[test]
fn runs_without_any_otel_variable_and_prints_the_spans() {
    let (printed, stdout) = run_ok(&[]);
    assert!(printed.sampled, "{}", printed.line);
    assert!(
        stdout.contains("no OTEL_EXPORTER_OTLP_ENDPOINT: spans printed on standard output"),
        "{stdout}"
    );
    // The console exporter: one JSON span record per span, the same tree, under the default
    // service name.
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|r: &serde_json::Value| r["type"] == "span")
        .collect();
    assert_eq!(records.len(), 1 + CHILDREN.len(), "{stdout}");
    let root = records
        .iter()
        .find(|r| r["name"] == "ScriptRunner")
        .unwrap_or_else(|| panic!("no root span record:\n{stdout}"));
    assert!(root["parent_span_id"].is_null(), "{root}");
    for record in &records {
        assert_eq!(record["service"], "script_runner", "{record}");
        assert_eq!(record["trace_id"], printed.trace_id.as_str(), "{record}");
    }
    for (name, _) in CHILDREN {
        let child = records
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} record:\n{stdout}"));
        assert_eq!(child["parent_span_id"], root["span_id"], "{child}");
    }
    let executed = records
        .iter()
        .find(|r| r["name"] == "execute_script")
        .unwrap();
    let events: Vec<&str> = executed["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(events, EVENTS, "{executed}");
    let upload = records.iter().find(|r| r["name"] == "upload_traces");
    assert_eq!(upload.unwrap()["attributes"]["exporter"], "console");
    // The correlated console lines carry the same trace id.
    let tag = format!("[trace:{}]", printed.trace_id);
    assert!(
        support::console_lines(&stdout)
            .iter()
            .any(|l| l.contains("script_runner: script executed") && l.contains(&tag)),
        "{stdout}"
    );
}

#[test]
fn disabled_still_runs_and_an_invalid_sampler_is_refused() {
    let stdout = support::assert_ok(&run_script(&[("OTEL_SDK_DISABLED", "true")]));
    assert!(stdout.contains("✅ script completed"), "{stdout}");
    assert!(
        stdout.ends_with("trace id: none (telemetry is disabled: OTEL_SDK_DISABLED)\n"),
        "{stdout}"
    );

    // Seed 004's `tailbased` is a collector's job: refused at start-up, naming the variable.
    let out = run_script(&[("OTEL_TRACES_SAMPLER", "tailbased")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("OTEL_TRACES_SAMPLER") && stderr.contains("parentbased_traceidratio"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("script completed"));
}
