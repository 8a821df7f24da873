//! Helpers shared by the integration suites.
//!
//! `configure_telemetry` installs process-wide state once, so a test that needs its own
//! configuration runs its body in a child process: the test re-executes its own test binary
//! filtered to itself, with `UNITEL_CHILD` naming it. The parent asserts on the child's exit
//! status and output; a child that hangs is killed after a deadline and fails the test.

#![allow(dead_code, unreachable_pub)]

use std::io::Read;
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
    let out = child(name, env)?;
    let stdout = assert_ok(&out);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "child {name} did not run exactly one test:\n{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "child {name} panicked somewhere:\n{stderr}"
    );
    Some(stdout)
}

/// [`run_child`] for tests that need nothing from the child's output: `true` in the parent.
pub fn in_parent(name: &str, env: &[(&str, &str)]) -> bool {
    run_child(name, env).is_some()
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
        .env("UNITEL_CHILD", name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
    let mut child = cmd.spawn().expect("spawn child test process");
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
            panic!("child test {name} did not finish within {deadline:?} (deadlock?)");
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

/// The quickstart example binary, built by `cargo test` beside the test binaries.
pub fn example_binary() -> std::path::PathBuf {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/quickstart
    let exe = std::env::current_exe().expect("test binary");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("profile dir");
    let bin = profile_dir
        .join("examples")
        .join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} missing: run through `cargo test`, which builds the examples",
        bin.display()
    );
    bin
}
