//! Helpers shared by the integration suites.
//!
//! `configure_telemetry` installs process-wide state once, so a test that needs its own
//! configuration runs its body in a child process: the test re-executes its own test binary
//! filtered to itself, with `UNITEL_CHILD` naming it. The parent asserts on the child's exit
//! status and output; a child that hangs is killed after a deadline and fails the test.

#![allow(dead_code, unreachable_pub)]

pub mod prometheus;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// In the parent: runs test `name` in a child process with `env` set and returns its output.
/// In the child (the one named by `UNITEL_CHILD`): returns `None`, and the caller runs the body.
pub fn child(name: &str, env: &[(&str, &str)]) -> Option<Output> {
    if std::env::var("UNITEL_CHILD").as_deref() == Ok(name) {
        return None;
    }
    Some(spawn_child(name, env, None, Duration::from_secs(60)))
}

/// In the parent: runs test `name` in a child process with `env`, asserts that it ran exactly
/// that one test (a misspelt name cannot pass by running nothing), passed, and printed no panic
/// message from any thread; returns its stdout. In the child: `None`; the caller runs the body.
pub fn run_child(name: &str, env: &[(&str, &str)]) -> Option<String> {
    run_child_saying(name, env).map(|(stdout, _)| stdout)
}

/// [`run_child`] that returns the child's stderr too, for what the crate says there: its
/// stdout and stderr in the parent, `None` in the child.
pub fn run_child_saying(name: &str, env: &[(&str, &str)]) -> Option<(String, String)> {
    let (stdout, stderr) = run_child_with_stderr(name, env)?;
    assert!(
        !stderr.contains("panicked"),
        "child {name} panicked somewhere:\n{stderr}"
    );
    Some((stdout, stderr))
}

/// [`run_child`] for a child whose panics are the test (a panicking callback the crate must
/// survive): asserts it ran exactly that one test and passed, and returns its stdout and stderr.
pub fn run_child_with_stderr(name: &str, env: &[(&str, &str)]) -> Option<(String, String)> {
    let out = child(name, env)?;
    let stdout = assert_ok(&out);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "child {name} did not run exactly one test:\n{stdout}"
    );
    Some((stdout, String::from_utf8_lossy(&out.stderr).into_owned()))
}

/// Asserts that `needle` is in `stderr` exactly once: a problem the crate says once.
pub fn assert_said_once(stderr: &str, needle: &str) {
    let said = stderr.matches(needle).count();
    assert_eq!(
        said, 1,
        "{needle:?} said {said} times on stderr, not once:\n{stderr}"
    );
}

/// Everything a non-blocking reader (a [`fifo_reader`]) can read now, without waiting.
#[cfg(unix)]
pub fn read_available(reader: &mut std::fs::File) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("read the pipe: {e}"),
        }
    }
    bytes
}

/// Makes a named pipe at `path` (with `mkfifo`), failing the test if it cannot.
pub fn mkfifo(path: &std::path::Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {} failed: {made}", path.display());
}

/// Opens the named pipe at `path` for reading without blocking and never reads it: a log file
/// written there finds the pipe full once it holds what the kernel buffers. Open it before the
/// log file is, so the pipe has a reader when `configure_telemetry` opens it.
#[cfg(unix)]
pub fn fifo_reader(path: &std::path::Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .expect("open fifo for reading")
}

/// Sets attribute `a` twice on live spans (the SDK appends every `set_attribute`): `set live`
/// (`a`: 1, 0, 3 and `b`: 2, with an event giving `a` twice) and a `tracing` span `tracing
/// twice` recording `a` as 1 then 3. Every output must show `a` once, as 3.
pub fn set_attributes_twice_on_live_spans(telemetry: &unitel::UnifiedTelemetry) {
    {
        let span = telemetry.trace("set live").attr("a", 1);
        span.set_attribute("b", 2);
        span.set_attributes(&[("a", 0), ("a", 3)]);
        span.add_event("event", &[("a", 1), ("b", 2), ("a", 3)]);
    }
    let span =
        unitel::tracing::info_span!("tracing twice", a = unitel::tracing::field::Empty, b = 2);
    span.record("a", 1);
    span.record("a", 3);
}

/// [`run_child`] for tests that need nothing from the child's output: `true` in the parent.
pub fn in_parent(name: &str, env: &[(&str, &str)]) -> bool {
    run_child(name, env).is_some()
}

/// A service name no other test run uses (the collector's output is shared by all tests).
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// The trace id the quickstart names at the end of its output (`trace <32 hex> ...`).
pub fn quickstart_trace_id(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        l.strip_prefix("trace ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned)
    })
}

/// Like [`child`], with a working directory.
pub fn child_in(name: &str, env: &[(&str, &str)], dir: &std::path::Path) -> Option<Output> {
    if std::env::var("UNITEL_CHILD").as_deref() == Ok(name) {
        return None;
    }
    Some(spawn_child(name, env, Some(dir), Duration::from_secs(60)))
}

fn spawn_child(
    name: &str,
    env: &[(&str, &str)],
    dir: Option<&std::path::Path>,
    deadline: Duration,
) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("UNITEL_CHILD", name);
    for var in [
        "OTEL_SDK_DISABLED",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_ENVIRONMENT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    output_within(&mut cmd, &format!("child test {name}"), deadline)
}

/// Runs `command` to its end with standard input closed, and returns what it wrote; kills it
/// and fails the test (naming it `what`) if it runs longer than `deadline`, which is how a
/// hang or a deadlock shows up.
pub fn output_within(command: &mut Command, what: &str, deadline: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {deadline:?} (deadlock?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Asserts the child succeeded, showing its output otherwise; returns its stdout.
pub fn assert_ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// Reads every record of the JSON log at `path` (a log file with its rotated files, or a
/// directory: every file in it) through `unitel::logfile::read_records`, panicking with the
/// reader's error (which names the file and line) when one is not a valid record.
pub fn read_records(path: &std::path::Path) -> Vec<unitel::logfile::Record> {
    unitel::logfile::read_records(path).unwrap_or_else(|e| {
        // The error and its whole `source()` chain: the reader's error names the file and
        // line, its causes say what is wrong with the line.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        panic!("reading the log at {}: {message}", path.display())
    })
}

/// Lines of `stdout` that look like unitel console lines (from their timestamp on: the test
/// harness may print `test name ... ` before the first one).
pub fn console_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| {
            let b = l.as_bytes();
            (0..l.len().saturating_sub(28)).find_map(|i| {
                let ts = &b[i..];
                (ts[..4].iter().all(u8::is_ascii_digit)
                    && ts[4] == b'-'
                    && ts[7] == b'-'
                    && ts[10] == b'T'
                    && ts[26] == b'Z')
                    .then(|| &l[i..])
            })
        })
        .collect()
}

/// The text after `marker ` on the line that has it (child tests print values this way).
pub fn marked(stdout: &str, marker: &str) -> Option<String> {
    let tag = format!("{marker} ");
    stdout.lines().find_map(|l| {
        l.split_once(tag.as_str())
            .map(|(_, rest)| rest.trim().to_owned())
    })
}

/// The numbers after `marker` on its line of `stdout`, exactly `N` of them (panics otherwise,
/// showing what was there).
#[allow(dead_code)]
pub fn marked_counts<const N: usize>(stdout: &str, marker: &str) -> [u64; N] {
    let line = marked(stdout, marker).unwrap_or_else(|| panic!("no {marker} line in:\n{stdout}"));
    let counts: Vec<u64> = line
        .split_whitespace()
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{marker}: not a number in {line:?}"))
        })
        .collect();
    counts
        .try_into()
        .unwrap_or_else(|c| panic!("{marker}: {N} numbers wanted, got {c:?}"))
}

/// Keeps every span that ends, for tests that configure telemetry themselves (with settings
/// `unitel::testing::capture()` does not take).
#[allow(dead_code)]
#[derive(Debug, Default, Clone)]
pub struct EndedSpans(
    pub std::sync::Arc<std::sync::Mutex<Vec<unitel::opentelemetry_sdk::trace::SpanData>>>,
);

impl unitel::opentelemetry_sdk::trace::SpanProcessor for EndedSpans {
    fn on_start(
        &self,
        _: &mut unitel::opentelemetry_sdk::trace::Span,
        _: &unitel::opentelemetry::Context,
    ) {
    }
    fn on_end(&self, span: unitel::opentelemetry_sdk::trace::SpanData) {
        if let Ok(mut spans) = self.0.lock() {
            spans.push(span);
        }
    }
    fn force_flush(&self) -> unitel::opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(
        &self,
        _: std::time::Duration,
    ) -> unitel::opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// The quickstart example binary, built by `cargo test` beside the test binaries.
pub fn example_binary() -> std::path::PathBuf {
    example_binary_named("quickstart")
}

/// An example's binary, built by `cargo test` beside the test binaries.
pub fn example_binary_named(name: &str) -> std::path::PathBuf {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("profile dir");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} missing: run through `cargo test`, which builds the examples",
        bin.display()
    );
    bin
}

/// The span called `name` among `spans`; panics naming the spans there are.
pub fn span_named(
    spans: &[unitel::testing::CapturedSpan],
    name: &str,
) -> unitel::testing::CapturedSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no span {name:?} in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
        .clone()
}

// ----- HTTP -----

/// An HTTP response read by [`http_get`].
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` over a fresh connection with extra header lines, sent as given (so malformed
/// values go out as they are), read to the end (`Connection: close`).
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of the response head"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    let response = Response {
        status,
        headers,
        body: String::from_utf8(body).map_err(|_| bad("body is not UTF-8"))?,
    };
    if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        if len != response.body.len() {
            return Err(bad(&format!(
                "Content-Length {len} but {} body bytes",
                response.body.len()
            )));
        }
    }
    Ok(response)
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// Asserts that none of `secrets` appears in any span the capture holds (name, attributes,
/// status, events), any JSON line it saw (logs and span records), or any metric point, and
/// that there were spans to search.
pub fn assert_no_secret(cap: &unitel::testing::Capture, secrets: &[&str]) {
    let spans = cap.spans();
    assert!(!spans.is_empty(), "no span to search for secrets");
    let mut haystack: Vec<String> = spans.iter().map(|s| format!("{s:?}")).collect();
    haystack.extend(cap.raw_lines());
    haystack.extend(cap.metrics().iter().map(|p| format!("{p:?}")));
    for secret in secrets {
        assert!(!secret.is_empty(), "an empty secret matches everything");
        for text in &haystack {
            assert!(!text.contains(secret), "secret {secret:?} leaked in {text}");
        }
    }
}

/// Asserts that every attribute of `span` is one of `allowed`, so an adapter that starts
/// recording something new (a header, a query text) fails the suite until it is reviewed.
#[track_caller]
pub fn assert_attributes_within(span: &unitel::testing::CapturedSpan, allowed: &[&str]) {
    for kv in &span.attributes {
        assert!(
            allowed.contains(&kv.key.as_str()),
            "unexpected attribute {} on {}",
            kv.key,
            span.name
        );
    }
}

/// Asserts that `span` is `parent`'s child, in its trace.
#[track_caller]
pub fn assert_child_of(
    span: &unitel::testing::CapturedSpan,
    parent: &unitel::testing::CapturedSpan,
) {
    assert_eq!(
        span.trace_id, parent.trace_id,
        "{} in the caller's trace",
        span.name
    );
    assert_eq!(
        span.parent_span_id.as_deref(),
        Some(parent.span_id.as_str()),
        "{} is a child of {}",
        span.name,
        parent.name
    );
}

/// A fake collector for fault injection: answers every request with `status`, or never
/// answers when `status` is 0. Returns its address.
pub fn fault_collector(status: u16) -> String {
    collector_answering(status, &[])
}

/// [`fault_collector`] whose answers carry `body` (a protobuf message).
pub fn collector_answering(status: u16, body: &'static [u8]) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 65536];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if status != 0 {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} Answer\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(body);
                        return;
                    }
                }
                if status == 0 {
                    std::thread::sleep(Duration::from_secs(60));
                }
            });
        }
    });
    addr
}

/// The real PostgreSQL's URL, as scripts/test.sh exports it; fails the test when it is not set
/// (the test needs the server, it does not skip).
pub fn postgres_url() -> String {
    std::env::var("UNITEL_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "UNITEL_TEST_POSTGRES_URL is not set: this test needs a running PostgreSQL \
             (scripts/test.sh starts one and sets it, e.g. \
             postgres://user:password@127.0.0.1:55432/unitel_test)"
        )
    })
}

/// The password in [`postgres_url`]: what must never be seen in telemetry or output.
pub fn postgres_password() -> String {
    let url = postgres_url();
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password.to_owned())
        .expect("UNITEL_TEST_POSTGRES_URL has user:password@");
    assert!(
        password.len() >= 4,
        "the test password is too short to look for"
    );
    password
}

/// The real Redis's URL, as scripts/test.sh exports it; fails the test when it is not set.
pub fn redis_url() -> String {
    std::env::var("UNITEL_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "UNITEL_TEST_REDIS_URL is not set: this test needs a running Redis \
             (scripts/test.sh starts one and sets it, e.g. redis://127.0.0.1:56379/)"
        )
    })
}

/// A program under test running in a child process: killed and reaped when dropped, whatever
/// the test does. Its standard output and standard error are read line by line as it writes
/// them (standard error's lines marked `[stderr] `): in order on a channel for
/// [`wait_for`](Self::wait_for), and all of them kept for failure messages
/// ([`output`](Self::output)).
pub struct Running {
    what: String,
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long [`Running`] waits for a line or an exit before it fails the test.
const RUNNING_DEADLINE: Duration = Duration::from_secs(30);

impl Running {
    /// Starts `command` (named `what` in failures) with standard input closed and both output
    /// streams read.
    pub fn spawn(what: &str, command: &mut Command) -> Running {
        use std::io::BufRead as _;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, lines) = std::sync::mpsc::channel();
        let streams: [(Box<dyn Read + Send>, &str); 2] = [
            (Box::new(child.stdout.take().expect("stdout")), ""),
            (Box::new(child.stderr.take().expect("stderr")), "[stderr] "),
        ];
        for (stream, mark) in streams {
            let (tx, output) = (tx.clone(), output.clone());
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let line = format!("{mark}{line}");
                    if let Ok(mut output) = output.lock() {
                        output.push(line.clone());
                    }
                    let _ = tx.send(line);
                }
            });
        }
        Running {
            what: what.to_owned(),
            child,
            lines,
            output,
        }
    }

    /// The process id, to signal it.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything it has written so far, one line per line.
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.join("\n")).unwrap_or_default()
    }

    /// The first line not read yet that `found` accepts, waiting up to 30 s; fails the test
    /// with all the output when none comes or the process ends first.
    #[track_caller]
    pub fn wait_for<T>(&mut self, mut found: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + RUNNING_DEADLINE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(t) = found(&line) {
                        return t;
                    }
                }
                Err(_) => break,
            }
        }
        let status = self.child.try_wait();
        panic!(
            "{} never wrote the line waited for (exit status: {status:?}); it wrote:\n{}",
            self.what,
            self.output()
        );
    }

    /// [`wait_for`](Self::wait_for) a line starting with `prefix`; the rest of that line.
    #[track_caller]
    pub fn wait_for_prefix(&mut self, prefix: &str) -> String {
        self.wait_for(|line| line.strip_prefix(prefix).map(str::to_owned))
    }

    /// Fails the test if the process has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early with {status}:\n{}",
                self.what,
                self.output()
            );
        }
    }

    /// Sends `signal` (`TERM`, `INT`, ...) with `kill`.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
    }

    /// Waits up to 30 s for the process to exit; its status and everything it wrote, the last
    /// lines included (read until its output closes, which a grandchild holding it may delay).
    #[track_caller]
    pub fn finish(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + RUNNING_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {RUNNING_DEADLINE:?}:\n{}",
                self.what,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while self.lines.recv_timeout(Duration::from_secs(10)).is_ok() {}
        (status, self.output())
    }

    /// SIGTERM, as `docker stop` and Kubernetes send it, then [`finish`](Self::finish).
    #[track_caller]
    pub fn terminate(self) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        self.finish()
    }
}
