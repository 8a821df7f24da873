//! The real collector: rotel, started by scripts/test.sh (or, when the tests run without it, by
//! this module), printing what it receives with `--debug-log-verbosity detailed`. This parses
//! that output into spans, metric points and log records.
//!
//! `benches/export_throughput.rs` includes this file too (`#[path]`), for [`start`]: it uses
//! nothing but the standard library.

#![allow(unreachable_pub, dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where rotel listens and where its output goes.
#[derive(Debug)]
pub struct Rotel {
    pub grpc: String,
    pub http: String,
    log: PathBuf,
    /// The `timeout` running the rotel this module started: stopped on drop, and bounded by
    /// its lifetime should this process end without dropping it.
    own: Option<std::sync::Mutex<std::process::Child>>,
}

impl Drop for Rotel {
    fn drop(&mut self) {
        if let Some(own) = &self.own {
            let mut timeout = own.lock().unwrap_or_else(|e| e.into_inner());
            // TERM, which `timeout` passes on to rotel; a kill would end `timeout` alone and
            // leave rotel running. (rotel writes its pid file only when it daemonizes.)
            let _ = Command::new("kill").arg(timeout.id().to_string()).status();
            let _ = timeout.wait();
        }
    }
}

impl Rotel {
    /// The rotel of this test run: scripts/test.sh's (UNITEL_TEST_ROTEL_*), else one started
    /// here for this test binary (bounded by `timeout`, so it never outlives the run for long).
    ///
    /// Only a test's parent process may ask: a child (tests/support) that did would start a
    /// rotel of its own when the script's is not there, and leave it behind.
    pub fn get() -> &'static Rotel {
        if let Ok(child) = std::env::var("UNITEL_CHILD") {
            panic!("the child test {child} asked for rotel: ask in the parent, pass what the child needs");
        }
        static ROTEL: OnceLock<Rotel> = OnceLock::new();
        ROTEL.get_or_init(|| {
            if let (Ok(grpc), Ok(http), Ok(log)) = (
                std::env::var("UNITEL_TEST_ROTEL_GRPC"),
                std::env::var("UNITEL_TEST_ROTEL_HTTP"),
                std::env::var("UNITEL_TEST_ROTEL_LOG"),
            ) {
                return Rotel {
                    grpc,
                    http,
                    log: log.into(),
                    own: None,
                };
            }
            start(
                "detailed",
                &["traces", "metrics", "logs"],
                Duration::from_secs(300),
            )
        })
    }

    /// Everything rotel printed so far, without colour codes.
    pub fn output(&self) -> String {
        let raw = std::fs::read(&self.log).unwrap_or_default();
        strip_ansi(&String::from_utf8_lossy(&raw))
    }

    /// Parses the output until `check` finds what it wants, for up to `timeout`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Received) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            let received = parse(&self.output());
            if let Some(t) = check(&received) {
                return t;
            }
            if start.elapsed() > timeout {
                panic!("rotel did not receive the expected data within {timeout:?}; it has {} spans, {} metric points, {} logs", received.spans.len(), received.metrics.len(), received.logs.len());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Starts a rotel of this process's own on two free loopback ports, printing the `signals` it
/// receives (`traces`, `metrics`, `logs`) at `verbosity` (`basic`: a line per batch with its
/// count; `detailed`: every item) into its log, and returns once it listens. It runs under
/// `timeout`, so it ends after `lifetime` even if this process dies; dropping the returned
/// `Rotel` stops it.
pub fn start(verbosity: &str, signals: &[&str], lifetime: Duration) -> Rotel {
    let agent = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|p| std::path::Path::new(p).exists())
        .expect("rotel is not installed: run scripts/test.sh, which installs and starts it (or pip install rotel)");
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    };
    let (grpc, http) = (
        format!("127.0.0.1:{}", port()),
        format!("127.0.0.1:{}", port()),
    );
    let dir = std::env::temp_dir().join(format!("unitel-rotel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("rotel dir");
    let log = dir.join("rotel.log");
    let out = std::fs::File::create(&log).expect("rotel log");
    let child = Command::new("timeout")
        .arg(lifetime.as_secs().to_string())
        .arg(&agent)
        .args([
            "start",
            "--otlp-grpc-endpoint",
            &grpc,
            "--otlp-http-endpoint",
            &http,
        ])
        .args(["--exporter", "blackhole"])
        .args(signals.iter().flat_map(|s| ["--debug-log", s]))
        .args(["--debug-log-verbosity", verbosity])
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("start rotel");
    let rotel = Rotel {
        grpc,
        http,
        log,
        own: Some(std::sync::Mutex::new(child)),
    };
    let start = Instant::now();
    while !rotel.output().contains("Starting Rotel") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "rotel did not start: {}",
            rotel.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rotel
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Attributes as printed: key and `Type(value)`, e.g. `("k", "Str(v)")`.
pub type Attrs = Vec<(String, String)>;

pub fn attr<'a>(attrs: &'a Attrs, key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[derive(Debug, Clone, Default)]
pub struct SpanRec {
    pub service: String,
    pub resource: Attrs,
    pub scope: String,
    pub trace_id: String,
    pub parent_id: String,
    pub span_id: String,
    pub name: String,
    pub kind: String,
    pub status_code: String,
    pub status_message: String,
    pub attrs: Attrs,
    pub events: Vec<(String, Attrs)>,
    /// The span's `tracestate` (empty when none).
    pub trace_state: String,
    /// Links: trace id and span id.
    pub links: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct PointRec {
    pub service: String,
    pub scope: String,
    pub metric: String,
    pub data_type: String,
    pub attrs: Attrs,
    pub value: Option<f64>,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub bounds: Vec<f64>,
    pub buckets: Vec<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct LogRec {
    pub service: String,
    pub scope: String,
    pub severity_text: String,
    pub severity_number: String,
    pub body: String,
    pub attrs: Attrs,
    pub trace_id: String,
    pub span_id: String,
}

#[derive(Debug, Default)]
pub struct Received {
    pub spans: Vec<SpanRec>,
    pub metrics: Vec<PointRec>,
    pub logs: Vec<LogRec>,
}

impl Received {
    pub fn spans_of(&self, service: &str) -> Vec<&SpanRec> {
        self.spans.iter().filter(|s| s.service == service).collect()
    }
    pub fn points_of(&self, service: &str, metric: &str) -> Vec<&PointRec> {
        self.metrics
            .iter()
            .filter(|p| p.service == service && p.metric == metric)
            .collect()
    }
    pub fn logs_of(&self, service: &str) -> Vec<&LogRec> {
        self.logs.iter().filter(|l| l.service == service).collect()
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Section {
    Resource,
    SpanAttrs,
    EventAttrs,
    PointAttrs,
    LogAttrs,
    Link,
    Other,
}

/// Parses rotel's `detailed` debug output.
pub fn parse(text: &str) -> Received {
    let mut r = Received::default();
    let mut resource: Attrs = Vec::new();
    let mut service = String::new();
    let mut scope = String::new();
    let mut metric = String::new();
    let mut data_type = String::new();
    let mut section = Section::Other;
    // Which record the indented lines belong to.
    enum Cur {
        None,
        Span,
        Point,
        Log,
    }
    let mut cur = Cur::None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("ResourceSpans #")
            || t.starts_with("ResourceMetrics #")
            || t.starts_with("ResourceLog #")
        {
            resource.clear();
            service.clear();
            section = Section::Resource;
            cur = Cur::None;
            continue;
        }
        if let Some(s) = t.strip_prefix("InstrumentationScope") {
            scope = s.split_whitespace().next().unwrap_or("").to_owned();
            section = Section::Other;
            continue;
        }
        if t.starts_with("ScopeSpans #")
            || t.starts_with("ScopeMetrics #")
            || t.starts_with("ScopeLogs #")
        {
            section = Section::Other;
            continue;
        }
        if t.starts_with("Span #") {
            r.spans.push(SpanRec {
                service: service.clone(),
                resource: resource.clone(),
                scope: scope.clone(),
                ..Default::default()
            });
            cur = Cur::Span;
            section = Section::Other;
            continue;
        }
        if t.starts_with("Metric #") {
            metric.clear();
            data_type.clear();
            cur = Cur::None;
            section = Section::Other;
            continue;
        }
        if t.starts_with("NumberDataPoints #") || t.starts_with("HistogramDataPoints #") {
            r.metrics.push(PointRec {
                service: service.clone(),
                scope: scope.clone(),
                metric: metric.clone(),
                data_type: data_type.clone(),
                ..Default::default()
            });
            cur = Cur::Point;
            section = Section::Other;
            continue;
        }
        if t.starts_with("LogRecord #") {
            r.logs.push(LogRec {
                service: service.clone(),
                scope: scope.clone(),
                ..Default::default()
            });
            cur = Cur::Log;
            section = Section::Other;
            continue;
        }
        if let Some(kv) = t.strip_prefix("-> ") {
            let Some((k, v)) = kv.split_once(": ") else {
                if kv.starts_with("Attributes:") {
                    section = Section::EventAttrs;
                }
                continue;
            };
            let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
            match section {
                Section::Resource => {
                    if k == "service.name" {
                        service = v
                            .trim_start_matches("Str(")
                            .trim_end_matches(')')
                            .to_owned();
                    }
                    resource.push((k, v));
                }
                Section::SpanAttrs => {
                    if let Some(s) = r.spans.last_mut() {
                        s.attrs.push((k, v));
                    }
                }
                Section::EventAttrs => {
                    if let Some(e) = r.spans.last_mut().and_then(|s| s.events.last_mut()) {
                        e.1.push((k, v));
                    }
                }
                Section::PointAttrs => {
                    if let Some(p) = r.metrics.last_mut() {
                        p.attrs.push((k, v));
                    }
                }
                Section::LogAttrs => {
                    if let Some(l) = r.logs.last_mut() {
                        l.attrs.push((k, v));
                    }
                }
                Section::Link => {
                    if let Some(link) = r.spans.last_mut().and_then(|s| s.links.last_mut()) {
                        match k.as_str() {
                            "Trace ID" => link.0 = v,
                            "ID" => link.1 = v,
                            _ => {}
                        }
                    }
                }
                Section::Other => match (k.as_str(), &cur) {
                    ("Name", Cur::None) => metric = v,
                    ("DataType", Cur::None) => data_type = v,
                    ("Name", Cur::Span) => {
                        // The name of a span event.
                        if let Some(s) = r.spans.last_mut() {
                            s.events.push((v, Vec::new()));
                        }
                    }
                    _ => {}
                },
            }
            continue;
        }
        if t.starts_with("SpanEvent #") {
            section = Section::Other;
            continue;
        }
        if t.starts_with("SpanLink #") {
            if let Some(s) = r.spans.last_mut() {
                s.links.push(Default::default());
            }
            section = Section::Link;
            continue;
        }
        match t {
            "Attributes:" => {
                section = match cur {
                    Cur::Span => Section::SpanAttrs,
                    Cur::Log => Section::LogAttrs,
                    _ => Section::Other,
                };
                continue;
            }
            "Data point attributes:" => {
                section = Section::PointAttrs;
                continue;
            }
            "Events:" | "Links:" => {
                section = Section::Other;
                continue;
            }
            "Descriptor:" => {
                section = Section::Other;
                cur = Cur::None;
                continue;
            }
            _ => {}
        }
        let Some((k, v)) = t.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim().to_owned());
        match cur {
            Cur::Span => {
                let Some(s) = r.spans.last_mut() else {
                    continue;
                };
                match k {
                    "Trace ID" => s.trace_id = v,
                    "Parent ID" => s.parent_id = v,
                    "ID" => s.span_id = v,
                    "Name" => s.name = v,
                    "Kind" => s.kind = v,
                    "Status code" => s.status_code = v,
                    "Status message" => s.status_message = v,
                    "TraceState" => s.trace_state = v,
                    _ => {}
                }
            }
            Cur::Point => {
                let Some(p) = r.metrics.last_mut() else {
                    continue;
                };
                match k {
                    "Value" => p.value = v.parse().ok(),
                    "Count" => p.count = v.parse().ok(),
                    "Sum" => p.sum = v.parse().ok(),
                    _ if k.starts_with("ExplicitBounds #") => {
                        if let Ok(b) = v.parse() {
                            p.bounds.push(b)
                        }
                    }
                    _ if k.starts_with("Buckets #") => {
                        // "Buckets #3, Count: 1"
                        if let Some(n) = t
                            .rsplit("Count:")
                            .next()
                            .and_then(|c| c.trim().parse().ok())
                        {
                            p.buckets.push(n);
                        }
                    }
                    _ => {}
                }
            }
            Cur::Log => {
                let Some(l) = r.logs.last_mut() else { continue };
                match k {
                    "SeverityText" => l.severity_text = v,
                    "SeverityNumber" => l.severity_number = v,
                    "Body" => l.body = v,
                    "Trace ID" => l.trace_id = v,
                    "Span ID" => l.span_id = v,
                    _ => {}
                }
            }
            Cur::None => {}
        }
    }
    r
}
