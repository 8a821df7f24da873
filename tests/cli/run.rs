//! Running the `unitel` binary, and reading the fixture files the way the tests expect the
//! tool to read them.

use std::ffi::OsStr;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use unitel::logfile::{parse_line, Record};
use unitel::opentelemetry::trace::TraceId;

/// What a run of `unitel` left.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) args: Vec<String>,
    /// The exit code (`None`: killed by a signal).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts exit code 0 and no panic; returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self}");
        self.no_panic();
        &self.stdout
    }

    /// Asserts exit code `code` with stdout empty and no panic; returns stderr.
    #[track_caller]
    pub(crate) fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "{self}");
        assert_eq!(self.stdout, "", "nothing on stdout when failing: {self}");
        self.no_panic();
        &self.stderr
    }

    #[track_caller]
    pub(crate) fn no_panic(&self) {
        assert!(!self.stderr.contains("panicked"), "{self}");
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unitel {}\n  exit code {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// `unitel` with the colour variables of the test's environment removed.
pub(crate) fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_unitel"));
    command
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("TERM");
    command
}

/// Runs `unitel args…` with nothing on standard input.
pub(crate) fn unitel<S: AsRef<OsStr>>(args: &[S]) -> Run {
    run(command(args), args, None)
}

/// Runs `unitel args…` with `input` on standard input.
pub(crate) fn unitel_stdin<S: AsRef<OsStr>>(args: &[S], input: Vec<u8>) -> Run {
    run(command(args), args, Some(input))
}

pub(crate) fn run<S: AsRef<OsStr>>(
    mut command: Command,
    args: &[S],
    input: Option<Vec<u8>>,
) -> Run {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn unitel");
    let writer = input.map(|input| {
        let mut stdin = child.stdin.take().expect("piped stdin");
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        })
    });
    let out = child.wait_with_output().expect("wait for unitel");
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Run {
        args: args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect(),
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A line of a fixture file: its bytes, and what `parse_line` makes of it.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) raw: Vec<u8>,
    pub(crate) record: Record,
}

/// Every line of `files`, in order, parsed (the fixture files hold no malformed line).
pub(crate) fn lines_of(files: &[PathBuf]) -> Vec<Line> {
    let mut lines = Vec::new();
    for file in files {
        let reader = unitel::logfile::open_log_file(file)
            .unwrap_or_else(|e| panic!("open {}: {e}", file.display()));
        for raw in std::io::BufReader::new(reader).split(b'\n') {
            let raw = raw.unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
            if raw.is_empty() {
                continue;
            }
            let record = parse_line(&raw).unwrap_or_else(|e| {
                panic!("{}: {e}: {}", file.display(), String::from_utf8_lossy(&raw))
            });
            lines.push(Line { raw, record });
        }
    }
    lines
}

/// The lines of `files` that belong to the trace `id`.
pub(crate) fn trace_lines(files: &[PathBuf], id: &str) -> Vec<Line> {
    let id = TraceId::from_hex(id).expect("a trace id");
    lines_of(files)
        .into_iter()
        .filter(|l| l.record.trace_id() == Some(id))
        .collect()
}

/// The records of those lines.
pub(crate) fn records(lines: &[Line]) -> Vec<Record> {
    lines.iter().map(|l| l.record.clone()).collect()
}

/// The live log file of a fixture directory.
pub(crate) fn app_log(dir: &Path) -> PathBuf {
    dir.join("app.log")
}
